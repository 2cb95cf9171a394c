/// One built-in function: a row of the catalogue.
///
/// Each family file (`MathFunctions.swift`, `StringFunctions.swift`, ...) contributes an array of
/// specs; `FunctionRegistry.all` concatenates them. The checker validates names, arity, version and
/// constant arguments from these rows, so the VM never sees a bad call.
public struct FunctionSpec: Sendable {
  /// The documented spelling (`isUndefined`); lookups ignore case.
  public var name: String
  /// The family, for `.functions` listings: "math", "string", "context", ...
  public var family: String
  /// How many arguments are accepted; `Int.max` as upper bound for variadic functions.
  public var arity: ClosedRange<Int>
  /// The first SQL version that has the function.
  public var minimumVersion: SQLVersion
  /// True when the same arguments give the same result for every message: calls with constant
  /// arguments are folded at compile time. False for context functions, `timestamp`, `rand`, ...
  public var isDeterministic: Bool
  /// `lpad(string, count) -> String`.
  public var signature: String
  /// One line of help.
  public var help: String
  /// Set for functions that need an AWS service this engine does not call: the compile error text.
  public var unavailableReason: String?
  /// The arity the signature documents, when `arity` is wider only so that a mode this engine
  /// lacks is refused with its own error (`decode`'s 'proto', six arguments): what a call with
  /// the wrong count is told. Nil: `arity`.
  public var documentedArity: ClosedRange<Int>?
  /// Optional compile-time hook, given the arguments that are constants (nil for the others). It
  /// returns state the implementation receives in `FunctionCall.prepared` (a compiled regular
  /// expression), or throws a message that becomes a compile diagnostic on the call.
  public var prepare: (@Sendable ([Value?], SQLVersion) throws(FunctionPrepareError) -> (any Sendable)?)?
  /// Computes the result. Never throws: type problems give `.undefined`.
  public var implementation: @Sendable (borrowing FunctionCall) -> Value

  /// Creates a spec.
  public init(
    name: String, family: String, arity: ClosedRange<Int>, minimumVersion: SQLVersion = .v2015_10_08,
    isDeterministic: Bool = true, signature: String, help: String, unavailableReason: String? = nil,
    documentedArity: ClosedRange<Int>? = nil,
    prepare: (@Sendable ([Value?], SQLVersion) throws(FunctionPrepareError) -> (any Sendable)?)? = nil,
    implementation: @escaping @Sendable (borrowing FunctionCall) -> Value
  ) {
    self.documentedArity = documentedArity
    self.name = name
    self.family = family
    self.arity = arity
    self.minimumVersion = minimumVersion
    self.isDeterministic = isDeterministic
    self.signature = signature
    self.help = help
    self.unavailableReason = unavailableReason
    self.prepare = prepare
    self.implementation = implementation
  }
}

/// A constant argument a function refuses at compile time.
public struct FunctionPrepareError: Error, Sendable {
  /// Which argument (0-based), so the diagnostic points at it.
  public var argument: Int
  /// The message, e.g. `invalid regular expression: unclosed group`.
  public var message: String
  /// True when the call is still valid SQL whose result is always Undefined (too many arguments
  /// for the mode a constant chose): the compiler warns instead of refusing the statement.
  public var isAlwaysUndefined: Bool

  /// Creates an error.
  public init(argument: Int, message: String, isAlwaysUndefined: Bool = false) {
    self.argument = argument
    self.message = message
    self.isAlwaysUndefined = isAlwaysUndefined
  }
}

/// The arguments and context of one call.
public struct FunctionCall: ~Copyable {
  /// Where the evaluated arguments are: an array given to the public init, or the VM's stack in
  /// place (the VM keeps it alive and unchanged during the call).
  private enum Arguments {
    case slice(ArraySlice<Value>)
    case stack(UnsafeBufferPointer<Value>)
  }

  private let storage: Arguments
  /// The message being evaluated.
  public let context: EvaluationContext
  /// The rule's SQL version.
  public let version: SQLVersion
  /// What `FunctionSpec.prepare` returned at compile time, if anything.
  public let prepared: (any Sendable)?

  /// Creates a call.
  public init(
    arguments: ArraySlice<Value>, context: EvaluationContext, version: SQLVersion,
    prepared: (any Sendable)?
  ) {
    self.storage = .slice(arguments)
    self.context = context
    self.version = version
    self.prepared = prepared
  }

  /// A call reading its arguments in place on the VM's stack.
  init(
    stack arguments: UnsafeBufferPointer<Value>, context: EvaluationContext, version: SQLVersion,
    prepared: (any Sendable)?
  ) {
    self.storage = .stack(arguments)
    self.context = context
    self.version = version
    self.prepared = prepared
  }

  /// The evaluated arguments (a copy when they are read in place on the VM's stack).
  public var arguments: ArraySlice<Value> {
    switch storage {
    case .slice(let slice): slice
    case .stack(let buffer): ArraySlice(buffer)
    }
  }

  /// The number of arguments.
  public var count: Int {
    switch storage {
    case .slice(let slice): slice.count
    case .stack(let buffer): buffer.count
    }
  }

  /// Argument `index`, 0-based; `.undefined` past the end.
  public subscript(index: Int) -> Value {
    switch storage {
    case .slice(let slice):
      let position = slice.startIndex + index
      return index >= 0 && position < slice.endIndex ? slice[position] : .undefined
    case .stack(let buffer):
      return index >= 0 && index < buffer.count ? buffer[index] : .undefined
    }
  }
}

/// The one catalogue of built-in functions.
public enum FunctionRegistry {
  /// Every function, in family order.
  public static let all: [FunctionSpec] = FunctionFamilies.all

  /// The implementations alone, in `all`'s order: the VM's call instruction indexes this.
  static let implementations: [@Sendable (borrowing FunctionCall) -> Value] = all.map(\.implementation)

  /// Whether each function (in `all`'s order) is timed on its own, whatever its arguments' size:
  /// the regular expressions, one of whose matches may take up to ICU's budget (0.6 s over a few
  /// kilobytes), so that 31 of them cannot pass before the evaluation's clock is first read.
  static let timedAlone: [Bool] = all.map { $0.family == "regex" }

  private static let byName: [String: Int] = {
    var table: [String: Int] = [:]
    for (index, spec) in all.enumerated() { table[spec.name.lowercased()] = index }
    return table
  }()

  /// The function named `name`, ignoring case.
  public static func lookup(_ name: String) -> FunctionSpec? {
    byName[name.lowercased()].map { all[$0] }
  }

  /// The index of `name` in `all`, ignoring case: what the compiled program stores.
  public static func index(of name: String) -> Int? { byName[name.lowercased()] }

  /// The closest known name, for "did you mean": another system's name for it, else by spelling
  /// (edit distance at most 2, or a shared prefix).
  public static func suggestion(for name: String) -> String? {
    otherSystemsNames[name.lowercased()] ?? closest(to: name, among: all.map(\.name))
  }

  /// Functions of other SQLs and rule engines (lowercased) with what IoT SQL writes instead: a
  /// short name's nearest by spelling misleads (`now` was `cos`, `pow` `cos`, `nvl` `nanvl`).
  static let otherSystemsNames: [String: String] = [
    "now": "timestamp", "current_timestamp": "timestamp", "unix_timestamp": "timestamp",
    "pow": "power", "len": "length", "char_length": "length", "character_length": "length",
    "strlen": "length", "nvl": "get_or_default", "ifnull": "get_or_default", "coalesce": "get_or_default",
    "topic_level": "topic", "json_extract": "get", "json_value": "get", "substr": "substring",
    "ucase": "upper", "lcase": "lower", "ceiling": "ceil", "uuid": "newuuid", "random": "rand",
  ]

  /// The name of `candidates` closest to `name` ignoring case (edit distance at most 2, or a third
  /// of its length; else the only one that begins with it, 4 characters or more), for a "did you
  /// mean": a function, a rule file's key, an action's kind.
  public static func closest(to name: String, among candidates: [String]) -> String? {
    let lowered = name.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
      let distance = editDistance(lowered, candidate.lowercased())
      if distance <= max(2, lowered.count / 3), best == nil || distance < best!.1 {
        best = (candidate, distance)
      }
    }
    if let best { return best.0 }
    // A name cut short of its unit (`maxAge` of `maxAgeSeconds`): the one candidate it begins.
    let begun = candidates.filter { lowered.count >= 4 && $0.lowercased().hasPrefix(lowered) }
    return begun.count == 1 ? begun[0] : nil
  }

  /// `; did you mean 'x'?` for the candidate closest to `name`, or nothing.
  public static func didYouMean(_ name: String, among candidates: [String]) -> String {
    closest(to: name, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
  }

  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}
