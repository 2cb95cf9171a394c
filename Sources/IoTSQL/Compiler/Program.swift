import Synchronization

/// A compiled statement: immutable and `Sendable`, shared by every task that evaluates the rule.
///
/// What the statement compiles to (`Code`: instructions, constants, paths, source map) is interned:
/// rules generated from one template (`SELECT * FROM 'fleet/17/+/data' WHERE temp > 30` for each
/// site) compile to equal code, and keep one copy of it between them.
public struct Program: Sendable {
  /// The SQL text it was compiled from.
  public let source: String
  /// The SQL version it was compiled for.
  public let version: SQLVersion
  /// The FROM topic filter, when the statement has one.
  public let topicFilter: String?
  /// Warnings the checker found (errors throw instead).
  public let warnings: [Diagnostic]
  /// The compiled code, shared with every program that compiled to the same.
  let code: Code
  /// The handle that keeps `code` in the intern table (`code` is stored beside it: reading it through
  /// the handle would cost a retain per access on the VM's path).
  private let shared: Interned<Code>

  init(source: String, version: SQLVersion, topicFilter: String?, warnings: [Diagnostic], code: Code) {
    self.source = source
    self.version = version
    self.topicFilter = topicFilter
    self.warnings = warnings
    self.shared = Code.interned(code)
    self.code = shared.value
  }

  /// The SET variable names, in order (templates compiled for this program may read them).
  public var variableNames: [String] { code.variableNames }
  /// The instructions.
  public var instructions: [Instruction] { code.instructions }
  /// The constant pool.
  public var constants: [Value] { code.constants }
  /// The payload paths the program reads.
  public var paths: PathTable { code.paths }
  /// True when the program needs the whole payload (`*`), not only `paths`.
  public var readsWholePayload: Bool { code.readsWholePayload }
  /// The source range of each instruction, parallel to `instructions`.
  public var sourceMap: [SourceRange] { code.packedSourceMap.map { $0.range(in: source) } }
  /// The source range of the instruction at `address`.
  public func sourceRange(at address: Int) -> SourceRange {
    code.packedSourceMap[address].range(in: source)
  }
  /// True when the program calls `topic()` (any level).
  public var readsTopic: Bool {
    let topic = FunctionRegistry.index(of: "topic")
    return instructions.contains { $0.opcode == .call && Int($0.a) == topic }
  }

  /// Each `topic(n)` with a constant `n` the program calls: the level and where the call is.
  public var topicLevelsRead: [(level: Int, range: SourceRange)] {
    let topic = FunctionRegistry.index(of: "topic")
    let instructions = self.instructions
    // A call a jump reaches takes a value the constant before it is not the only source of (the
    // last branch of `topic(CASE ... ELSE 3 END)`).
    let targets = Set(instructions.filter(\.opcode.isJump).map { Int($0.a) })
    var found: [(level: Int, range: SourceRange)] = []
    for address in instructions.indices.dropFirst() where !targets.contains(address) {
      let call = instructions[address]
      let argument = instructions[address - 1]
      guard call.opcode == .call, Int(call.a) == topic, call.b == 1, argument.opcode == .constant,
        case .int(let level) = constants[Int(argument.a)]
      else { continue }
      found.append((level, sourceRange(at: address)))
    }
    return found
  }

  /// Why `topic(level)` is Undefined for every message `filter` matches (it has fewer levels, and
  /// no `#`), or nil: what `check` warns of in a statement and its templates.
  public static func unreachableTopicLevel(_ level: Int, filter: String) -> String? {
    guard let parsed = try? TopicFilter(filter), parsed.levels.last != "#", level > parsed.levels.count else {
      return nil
    }
    return "topic(\(level)) is always Undefined: FROM '\(filter)' matches topics of \(parsed.levels.count) "
      + "level\(parsed.levels.count == 1 ? "" : "s") only"
  }

  /// The program with `more` warnings.
  func adding(warnings more: [Diagnostic]) -> Program {
    Program(source: source, version: version, topicFilter: topicFilter, warnings: warnings + more, code: code)
  }

  /// Prepared state of function calls (compiled regular expressions), by the call's operand C.
  var prepared: [(any Sendable)?] { code.prepared }
  /// True when the program can pass the payload's bytes through (`SELECT *`): only then does the
  /// reader need to find out whether the payload is canonical.
  var passesThrough: Bool { code.passesThrough }
  /// The key lists of `makeRecord` instructions (operand C): a SELECT list's output keys, shared
  /// by every result instead of built per message.
  var keyLists: [[String]] { code.keyLists }
  /// Per key list, the payload path index of each `outputRecord` item (see ``Opcode/outputRecord``).
  var recordSlots: [[Int]] { code.recordSlots }
  /// Per key list of an `outputRecord`, its keys written out as the writer writes a member's name.
  var recordNames: [EncodedNames] { code.recordNames }

  /// Member names written out once, when the program is made: `"name":` each, one after the other.
  struct EncodedNames: Sendable {
    /// The names' bytes, each quoted, escaped and followed by its colon.
    let bytes: [UInt8]
    /// Where each name's bytes end in `bytes` (the next one's start).
    let ends: [Int]

    /// Writes each of `names`.
    init(_ names: [String]) {
      var bytes: [UInt8] = []
      var ends: [Int] = []
      ends.reserveCapacity(names.count)
      for name in names {
        JSONWriter.writeString(name, into: &bytes)
        bytes.append(0x3A)
        ends.append(bytes.count)
      }
      self.bytes = bytes
      self.ends = ends
    }

    /// Appends name `index` as `"name":` to `output`.
    @inline(__always)
    func write<Output: ByteOutput & ~Copyable>(_ index: Int, into output: inout Output) {
      let start = index == 0 ? 0 : ends[index - 1]
      bytes.withUnsafeBufferPointer {
        output.append(bytes: UnsafeBufferPointer(rebasing: $0[start..<ends[index]]))
      }
    }
  }

  /// What a statement compiles to, apart from its text and warnings.
  final class Code: Sendable, Hashable {
    let variableNames: [String]
    let instructions: [Instruction]
    let constants: [Value]
    let paths: PathTable
    let readsWholePayload: Bool
    /// `sourceMap` as byte offsets (a third of the room: a rule keeps its program as long as it runs;
    /// lines and columns are worked out from the text when an error or a listing needs them).
    let packedSourceMap: [PackedRange]
    /// Derived from the instructions and constants: not compared.
    let prepared: [(any Sendable)?]
    let passesThrough: Bool
    let keyLists: [[String]]
    /// Derived: true when the program loads a payload path (`passthroughPlus`' paths only say
    /// whether the payload has its keys).
    let readsFields: Bool
    /// Derived: true when `outputRecord` or `outputPath` may copy a path's array or object as its bytes, so the
    /// reader finds out how the containers it defers are spelled.
    let copiesContainers: Bool
    /// Derived: per key list of an `outputRecord`, its items' payload path indexes (-1: a value on
    /// the stack), read from its constants once rather than per message.
    let recordSlots: [[Int]]
    /// Derived: per key list of an `outputRecord`, its keys as written (empty for other key lists).
    let recordNames: [EncodedNames]

    init(
      variableNames: [String], instructions: [Instruction], constants: [Value], paths: PathTable,
      readsWholePayload: Bool, packedSourceMap: [PackedRange], prepared: [(any Sendable)?],
      passesThrough: Bool, keyLists: [[String]]
    ) {
      self.variableNames = variableNames
      self.instructions = instructions
      self.constants = constants
      self.paths = paths
      self.readsWholePayload = readsWholePayload
      self.packedSourceMap = packedSourceMap
      self.prepared = prepared
      self.passesThrough = passesThrough
      self.keyLists = keyLists
      var slots = [[Int]](repeating: [], count: keyLists.count)
      var names = [EncodedNames](repeating: EncodedNames([]), count: keyLists.count)
      for instruction in instructions where instruction.opcode == .outputRecord {
        let first = Int(instruction.a) + Int(instruction.b)
        slots[Int(instruction.c)] = constants[first..<(first + Int(instruction.b))].map {
          if case .int(let slot) = $0 { slot } else { -1 }
        }
        names[Int(instruction.c)] = EncodedNames(keyLists[Int(instruction.c)])
      }
      self.recordSlots = slots
      self.recordNames = names
      // A record of computed items only (`SELECT get(*, 'a') AS b, topic() AS t`) reads no path:
      // it was said to read fields of a payload that is not JSON, where the same items on the
      // general path were not.
      let recordReadsPaths = slots.contains { $0.contains { $0 >= 0 } }
      self.readsFields =
        recordReadsPaths || instructions.contains { $0.opcode == .loadPath || $0.opcode == .outputPath }
      self.copiesContainers = recordReadsPaths || instructions.contains { $0.opcode == .outputPath }
    }

    static func == (a: Code, b: Code) -> Bool {
      a === b
        || (a.instructions == b.instructions && a.packedSourceMap == b.packedSourceMap
          && a.constants.count == b.constants.count
          && zip(a.constants, b.constants).allSatisfy { Value.identical($0, $1) }
          && a.paths.paths == b.paths.paths && a.keyLists == b.keyLists && a.variableNames == b.variableNames
          && a.readsWholePayload == b.readsWholePayload && a.passesThrough == b.passesThrough)
    }

    /// Everything `==` compares, so that 10,000 programs differing only in a constant or a
    /// position do not fall into one bucket (interning them was quadratic).
    func hash(into hasher: inout Hasher) {
      hasher.combine(instructions.count)
      for instruction in instructions {
        hasher.combine(instruction.opcode.rawValue)
        hasher.combine(instruction.a)
        hasher.combine(instruction.b)
        hasher.combine(instruction.c)
      }
      for constant in constants {
        switch constant {
        case .int(let value): hasher.combine(value)
        case .decimal(let value): hasher.combine(value)
        case .string(let value): hasher.combine(value)
        case .bool(let value): hasher.combine(value)
        default: hasher.combine(0)
        }
      }
      for range in packedSourceMap {
        hasher.combine(range.startOffset)
        hasher.combine(range.endOffset)
      }
      hasher.combine(paths.paths)
      hasher.combine(keyLists)
      hasher.combine(variableNames)
    }

    /// The interned codes, held weakly: a code lives as long as some program holds it.
    private static let table = Mutex(WeakInternTable<Code>())

    /// `code`, or an equal code some live program already holds.
    static func interned(_ code: Code) -> Interned<Code> {
      table.withLock { $0.intern(code) }
    }
  }
}

/// A ``SourceRange`` as its two byte offsets in 32-bit fields; its lines and columns follow from the
/// text (every program with this code has the same offsets, not necessarily the same lines).
struct PackedRange: Sendable, Equatable {
  let startOffset, endOffset: Int32

  init(_ range: SourceRange) {
    // SQL text is far below 2 GiB; clamp rather than trap if it were not.
    startOffset = Int32(clamping: range.start.offset)
    endOffset = Int32(clamping: range.end.offset)
  }

  /// The range with its lines and columns in `source`.
  func range(in source: String) -> SourceRange {
    SourceRange(
      start: Lexer(source, from: Int(startOffset)).location, end: Lexer(source, from: Int(endOffset)).location
    )
  }
}
