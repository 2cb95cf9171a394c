/// A substitution template: text with `${expression}` parts, compiled once like the SQL and rendered
/// against the original message and the rule's SET variables (not against the SELECT output).
public struct Template: Sendable {
  /// One piece of the template.
  public enum Part: Sendable {
    /// Literal text.
    case text(String)
    /// A compiled `${...}` expression.
    case expression(Program)
  }

  /// The template text.
  public let source: String
  /// The literal and expression parts, in order.
  public var parts: [Part] {
    if renderers.isEmpty { return source.isEmpty ? [] : [.text(source)] }
    return renderers.map { renderer in
      if case .text(let text) = renderer { return .text(text) }
      return .expression(programs[renderer.programIndex!])
    }
  }
  /// Whether a part calls `get_secret`, alone or within an expression.
  public var callsGetSecret: Bool { getSecretCall != nil }
  /// Where in the template text the first `get_secret` call is, or nil for none.
  public var getSecretCall: SourceRange? {
    let getSecret = FunctionRegistry.index(of: "get_secret")
    for program in programs {
      if let address = program.instructions.firstIndex(where: { $0.opcode == .call && Int($0.a) == getSecret }
      ) {
        return program.sourceRange(at: address)
      }
    }
    return nil
  }
  /// Each `topic(n)` with a constant `n` the template calls, and where in its text.
  public var topicLevelsRead: [(level: Int, range: SourceRange)] { programs.flatMap(\.topicLevelsRead) }
  /// How `render` produces each part: `${topic()}` and `${topic(n)}` (the usual path and topic
  /// templates) read the topic directly; every other expression runs its program. Empty for a
  /// template without `${...}`: its text is `source` (no array for each of 10,000 rules whose
  /// archive path is plain text).
  let renderers: [Renderer]
  /// The program of each `${...}`, in order (a renderer holds its index: rendering copies no
  /// program, which would retain each of its fields).
  let programs: [Program]

  enum Renderer: Sendable {
    case text(String)
    case topic(program: Int)
    case topicLevel(Int, program: Int)
    /// `parse_time('pattern', timestamp()[, 'zone'])`, the usual archive path part: formats the
    /// message's timestamp without running the program.
    case timestampText(TimeFunctions.Prepared, program: Int)
    case program(Int)
    /// `get_secret` of constants: the operator's text, not a value (its program runs as any other).
    case secret(program: Int)

    /// The index of its program in `programs`; nil for text.
    var programIndex: Int? {
      switch self {
      case .text: nil
      case .topic(let index), .topicLevel(_, let index), .timestampText(_, let index), .program(let index),
        .secret(let index):
        index
      }
    }

    /// Whether what it writes is a value (a URL's checks judge it): any expression's but a secret's.
    var writesValue: Bool {
      if case .secret = self { return false }
      return programIndex != nil
    }
  }

  /// `topic()`, `topic(n)` with a literal n, or `parse_time` of `timestamp()` with a literal
  /// pattern (and zone), else nil; `program` is the index of the expression's program.
  static func shortcut(_ expression: Expression, program: Int) -> Renderer? {
    guard case .call(let name, let arguments) = expression.kind else { return nil }
    switch name.lowercased() {
    case "topic":
      if arguments.isEmpty { return .topic(program: program) }
      if arguments.count == 1, case .literal(.int(let level)) = arguments[0].kind {
        return .topicLevel(level, program: program)
      }
    case "parse_time":
      guard arguments.count == 2 || arguments.count == 3,
        case .literal(.string(let pattern)) = arguments[0].kind,
        case .call(let inner, let innerArguments) = arguments[1].kind, inner.lowercased() == "timestamp",
        innerArguments.isEmpty
      else { return nil }
      var zone: String?
      if arguments.count == 3 {
        guard case .literal(.string(let id)) = arguments[2].kind else { return nil }
        zone = id
      }
      return TimeFunctions.prepare(pattern: pattern, zone: zone).map { .timestampText($0, program: program) }
    case "get_secret":
      // A part that mixes in the message's data (`concat(get_secret('k'), topic(2))`) is a value.
      if arguments.allSatisfy({ if case .literal = $0.kind { true } else { false } }) {
        return .secret(program: program)
      }
    default: break
    }
    return nil
  }

  /// The program of a template that is exactly one `${expression}`, else nil: a caller may use the
  /// expression's value with its type instead of its text.
  public var soleExpression: Program? {
    guard renderers.count == 1, let index = renderers[0].programIndex else { return nil }
    return programs[index]
  }

  /// True when the text has no `${...}`: it renders to itself.
  public var isConstant: Bool { constantText != nil }

  /// What a template without `${...}` renders to: its text as written; nil for others.
  public var constantText: String? {
    var text = ""
    for renderer in renderers {
      guard case .text(let part) = renderer else { return nil }
      text += part
    }
    return renderers.isEmpty ? source : text
  }

  /// The literal text before the first `${`: for a path, the fixed folder a rendered path must stay in.
  public var literalPrefix: String {
    if renderers.isEmpty { return source }
    if case .text(let text)? = renderers.first { return text }
    return ""
  }

  /// Compiles `text`; `variables` are the rule's SET variable names. Errors carry positions within
  /// the template text: every part's problems (an unknown function, one the SQL version lacks), as
  /// the statement's are all reported, up to a part that does not parse (its end is not known).
  public static func compile(_ text: String, version: SQLVersion = .default, variables: [String] = [])
    throws(SQLError) -> Template
  {
    var renderers: [Renderer] = []
    var programs: [Program] = []
    var diagnostics: [Diagnostic] = []
    do throws(SQLError) {
      try walk(text) { literal in
        renderers.append(.text(String(decoding: literal, as: UTF8.self)))
      } expression: { expression in
        do throws(SQLError) {
          let program = try Compiler.compileExpression(
            expression, source: text, version: version, variables: variables)
          renderers.append(shortcut(expression, program: programs.count) ?? .program(programs.count))
          programs.append(program)
        } catch {
          diagnostics += error.diagnostics
        }
      }
    } catch {
      throw SQLError(diagnostics + error.diagnostics, source: text)
    }
    if !diagnostics.isEmpty { throw SQLError(diagnostics, source: text) }
    if renderers.count == 1, case .text = renderers[0] { renderers = [] }
    return Template(source: text, renderers: renderers.compacted(), programs: programs.compacted())
  }

  /// The byte ranges of `text` outside its `${...}` parts, in order; nil when a part does not
  /// parse.
  public static func literalRanges(of text: String) -> [Range<Int>]? {
    var ranges: [Range<Int>] = []
    do {
      try walk(text) {
        ranges.append($0.indices)
      } expression: { _ in
      }
    } catch {
      return nil
    }
    return ranges
  }

  /// Walks `text`'s parts in order: each run of literal text as its bytes (indexed as in the
  /// text's UTF-8), each `${...}` parsed; throws at the first part that does not parse. One lexer walks the text once for every
  /// part's line and column (one started afresh at each `${` walked the text from its start:
  /// 200,000 parts took minutes to compile, 40,000 a `check` of an archive path 97 s).
  private static func walk(
    _ text: String, literal: (ArraySlice<UInt8>) -> Void, expression: (Expression) -> Void
  ) throws(SQLError) {
    var cursor = Lexer(text)
    let bytes = cursor.bytes
    var start = 0
    var index = 0
    while index < bytes.count {
      guard bytes[index] == UInt8(ascii: "$"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "{")
      else {
        index += 1
        continue
      }
      if index > start { literal(bytes[start..<index]) }
      cursor.advance(to: index + 2)
      let (parsed, end) = try Parser.parseTemplateExpression(startingAt: cursor)
      expression(parsed)
      index = end
      start = end
    }
    if start < bytes.count { literal(bytes[start...]) }
  }

  /// Renders: each `${...}` is replaced by the String form of its value (objects and arrays as
  /// compact JSON, Undefined and Null as nothing). Throws when an evaluation limit stopped a part,
  /// or the text would pass ``EvaluationLimits/resultBytes``.
  public func render(context: EvaluationContext, variables: [Value] = []) throws(EvaluationStopped) -> String
  {
    var machine = VirtualMachine()
    return try render(context: context, variables: variables, using: &machine)
  }

  /// Renders with a caller's VM, to reuse its stack; `prefix` comes first in the result (an
  /// archive's root before the rendered path: one string made, not two).
  public func render(
    context: EvaluationContext, variables: [Value], using machine: inout VirtualMachine, prefix: String = ""
  ) throws(EvaluationStopped) -> String {
    var unmarked: [Range<Int>]?
    return try render(
      context: context, variables: variables, using: &machine, prefix: prefix, marking: &unmarked)
  }

  /// Renders, and says which UTF-8 byte ranges of the result the values wrote (the rest is the
  /// template's own text): what a check that values did not change a URL's structure needs. A part
  /// that is a secret alone (`${get_secret('k')}`) counts as the template's own text: the operator's, sent as
  /// written (a URL's `key=${get_secret('k')}` holding `a%2Bb` went out as `a%252Bb`).
  public func renderMarkingValues(context: EvaluationContext, variables: [Value] = [])
    throws(EvaluationStopped)
    -> (text: String, valueRanges: [Range<Int>])
  {
    var machine = VirtualMachine()
    return try renderMarkingValues(context: context, variables: variables, using: &machine)
  }

  /// ``renderMarkingValues(context:variables:)`` with a caller's VM: a budget the caller shares
  /// (``VirtualMachine/shareBudget()``) covers this rendering too.
  public func renderMarkingValues(
    context: EvaluationContext, variables: [Value], using machine: inout VirtualMachine
  ) throws(EvaluationStopped) -> (text: String, valueRanges: [Range<Int>]) {
    var ranges: [Range<Int>]? = []
    let text = try render(
      context: context, variables: variables, using: &machine, prefix: "", marking: &ranges)
    return (text, ranges ?? [])
  }

  /// Renders; when `ranges` is not nil, appends to it the byte range each value wrote.
  private func render(
    context: EvaluationContext, variables: [Value], using machine: inout VirtualMachine, prefix: String,
    marking ranges: inout [Range<Int>]?
  ) throws(EvaluationStopped) -> String {
    if renderers.isEmpty { return prefix.isEmpty ? source : prefix + source }
    // The parts share one budget of CPU time, as a statement's calls do.
    let began = machine.shareBudget()
    defer { if began { machine.endSharedBudget() } }
    // The parts' bytes go into one buffer and make one string: appending to a String checks its
    // capacity, uniqueness and encoding flags for every part.
    return try ByteSink.withScratch { sink throws(EvaluationStopped) in
      sink.append(utf8: prefix)
      for index in renderers.indices {
        let start = sink.count
        defer {
          if ranges != nil, sink.count > start, renderers[index].writesValue {
            ranges!.append(start..<sink.count)
          }
        }
        switch renderers[index] {
        case .text(let text): sink.append(utf8: text)
        case .topic: sink.append(utf8: BasicIngest.ruleTopic(context.topic))
        case .topicLevel(let level, _):
          var topic = BasicIngest.ruleTopic(context.topic)
          topic.withUTF8 { bytes in
            if let range = ContextFunctions.levelRange(bytes, level) {
              sink.append(bytes: UnsafeBufferPointer(rebasing: bytes[range]))
            }
          }
        case .timestampText(let prepared, _):
          if let text = TimeFunctions.format(context.timestampMs, with: prepared) { sink.append(utf8: text) }
        case .program(let program), .secret(let program):
          let value = try machine.evaluateExpression(
            programs[program], context: context, variables: variables)
          // Bytes are their text when they are UTF-8 (read once, as they are checked); others would
          // be written with U+FFFD in their place: different payloads one path, one topic, one text.
          guard case .binary(let bytes) = value else {
            sink.append(utf8: Self.text(of: value))
            break
          }
          guard let text = String(validating: bytes, as: UTF8.self) else {
            let part = programs[program]
            throw EvaluationStopped(
              reason:
                "the value is bytes that are not UTF-8 text (a binary payload: encode(*, 'base64') writes it as text); the rendering was stopped",
              at: part.sourceRange(at: part.instructions.count - 1))
          }
          sink.append(utf8: text)
        }
        // Each part is within the limit; together they may not pass it either, a topic's parts
        // too (10,000 `${topic()}` of a 60 KB topic made 600 MB).
        if sink.count > EvaluationLimits.resultBytes {
          throw EvaluationStopped(
            reason:
              "the rendered template is more than \(EvaluationLimits.resultBytes >> 20) MiB; the rendering was stopped"
          )
        }
      }
      return sink.withBytes { String(decoding: $0, as: UTF8.self) }
    }
  }

  /// The String form a template writes for a value.
  public static func text(of value: Value) -> String {
    switch value {
    case .undefined, .null: ""
    case .string(let text): text
    case .binary(let bytes): String(decoding: bytes, as: UTF8.self)
    default: Coercions.toText(value) ?? JSONWriter.string(value)
    }
  }
}
