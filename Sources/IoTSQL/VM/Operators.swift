// CONTRACT STUB: the semantics helper replaces the bodies; the signatures are fixed.

/// The operator tables of the AWS IoT SQL reference: what each operator gives for each pair of types.
/// None of them throws: a combination the tables do not list gives `.undefined`.
public enum Operators {
  /// `a op b` for every binary operator (AND/OR are evaluated eagerly: AWS has no short-circuit).
  public static func binary(_ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion) -> Value {
    .undefined
  }

  /// `-a` and `NOT a`.
  public static func unary(_ op: UnaryOperator, _ a: Value, version: SQLVersion) -> Value {
    .undefined
  }

  /// The equality CASE uses to pick a branch: `=`'s table, `.undefined` when either side is Undefined.
  public static func equals(_ a: Value, _ b: Value) -> Value {
    .undefined
  }

  /// True only for `.bool(true)` or the string "true" in any case: what lets WHERE pass.
  public static func isTrue(_ a: Value) -> Bool {
    false
  }
}
