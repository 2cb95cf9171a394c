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
  public let sourceMap: [SourceRange]
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
