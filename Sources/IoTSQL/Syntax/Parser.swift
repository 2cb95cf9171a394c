// CONTRACT STUB: the parser helper replaces the body; the signature is fixed.

/// The recursive-descent parser of Grammar/IoTSQL.ebnf.
public struct Parser {
  /// Parses one statement; every syntax error carries line:column and points at the offending token.
  public static func parse(_ source: String) throws(SQLError) -> Statement {
    throw SQLError(
      [Diagnostic(stage: .parse, "parser not implemented", at: SourceRange(at: .start))], source: source)
  }

  /// Parses one expression alone (for `${...}` templates); `offset` places it in a larger text.
  public static func parseExpression(_ source: String) throws(SQLError) -> Expression {
    throw SQLError(
      [Diagnostic(stage: .parse, "parser not implemented", at: SourceRange(at: .start))], source: source)
  }
}

extension Parser {
  /// Parses the expression of a `${...}` template part starting at byte `offset` of `text`.
  public static func parseTemplateExpression(in text: String, from offset: Int) throws(SQLError) -> (
    expression: Expression, end: Int
  ) {
    throw SQLError(
      [Diagnostic(stage: .parse, "parser not implemented", at: SourceRange(at: .start))], source: text)
  }
}
