/// A compiled statement: immutable and `Sendable`, shared by every task that evaluates the rule.
public struct Program: Sendable {
  /// The SQL text it was compiled from.
  public let source: String
  /// The SQL version it was compiled for.
  public let version: SQLVersion
  /// The FROM topic filter, when the statement has one.
  public let topicFilter: String?
  /// The SET variable names, in order (templates compiled for this program may read them).
  public let variableNames: [String]
  /// The instructions.
  public let instructions: [Instruction]
  /// The constant pool.
  public let constants: [Value]
  /// The payload paths the program reads.
  public let paths: PathTable
  /// True when the program needs the whole payload (`*`), not only `paths`.
  public let readsWholePayload: Bool
  /// The source range of each instruction, parallel to `instructions`.
  public var sourceMap: [SourceRange] { packedSourceMap.map(\.range) }
  /// `sourceMap` in 32-bit fields (half the room: a rule keeps its program as long as it runs).
  let packedSourceMap: [PackedRange]

  /// The source range of the instruction at `address`.
  public func sourceRange(at address: Int) -> SourceRange { packedSourceMap[address].range }
  /// Prepared state of function calls (compiled regular expressions), by the call's operand C.
  let prepared: [(any Sendable)?]
  /// True when the program can pass the payload's bytes through (`SELECT *`): only then does the
  /// reader need to find out whether the payload is canonical.
  let passesThrough: Bool
  /// The key lists of `makeRecord` instructions (operand C): a SELECT list's output keys, shared
  /// by every result instead of built per message.
  let keyLists: [[String]]
  /// Warnings the checker found (errors throw instead).
  public let warnings: [Diagnostic]
}

/// A ``SourceRange`` in 32-bit fields.
struct PackedRange: Sendable {
  let startOffset, startLine, startColumn, endOffset, endLine, endColumn: Int32

  init(_ range: SourceRange) {
    // SQL text is far below 2 GiB; clamp rather than trap if it were not.
    func narrow(_ value: Int) -> Int32 { Int32(clamping: value) }
    startOffset = narrow(range.start.offset)
    startLine = narrow(range.start.line)
    startColumn = narrow(range.start.column)
    endOffset = narrow(range.end.offset)
    endLine = narrow(range.end.line)
    endColumn = narrow(range.end.column)
  }

  var range: SourceRange {
    SourceRange(
      start: SourceLocation(offset: Int(startOffset), line: Int(startLine), column: Int(startColumn)),
      end: SourceLocation(offset: Int(endOffset), line: Int(endLine), column: Int(endColumn)))
  }
}
