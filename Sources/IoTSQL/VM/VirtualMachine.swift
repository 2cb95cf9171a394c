// API CONTRACT: the bodies are being written; the public surface is fixed.

/// The result of a rule that matched: what its actions receive.
public struct Evaluation: Sendable {
  /// The outgoing payload bytes: compact JSON, the passed-through bytes of `SELECT *`, or empty for a
  /// bare Undefined.
  public var payload: [UInt8]
  /// The outgoing value (`.binary` for passed-through non-JSON bytes, `.undefined` for an empty payload).
  public var value: Value
  /// The SET variables' values, in `Program.variableNames` order: templates read them.
  public var variables: [Value]
}

/// Runs programs. A VM is a cheap value that keeps its stack between runs: give each task its own.
public struct VirtualMachine: Sendable {
  /// Creates a VM.
  public init() {}

  /// Evaluates `program` on one message: nil when WHERE is not true (no match), else the output.
  /// It does not check the topic against FROM: the rule set's trie has done that.
  public mutating func evaluate(_ program: Program, context: EvaluationContext) -> Evaluation? {
    nil
  }
}
