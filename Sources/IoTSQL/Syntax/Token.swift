/// A lexical token of IoT-SQL.
public struct Token: Sendable, Equatable {
  /// What kind of token.
  public enum Kind: Sendable, Equatable {
    /// A keyword (upper-cased in `Keyword`).
    case keyword(Keyword)
    /// A bare name: a field, a function or a cast type.
    case identifier(String)
    /// `@name`.
    case variable(String)
    /// A single- or double-quoted string, escapes resolved.
    case string(String)
    /// An integer literal, as written.
    case integer(String)
    /// A decimal literal (a dot or an exponent), as written.
    case decimal(String)
    /// Punctuation or an operator: `( ) [ ] { } , . : * / % + - = <> != < <= > >=`.
    case symbol(String)
    /// The end of the text.
    case end
  }

  /// The kind and its payload.
  public var kind: Kind
  /// Where it is.
  public var range: SourceRange

  /// Creates a token.
  public init(_ kind: Kind, _ range: SourceRange) {
    self.kind = kind
    self.range = range
  }
}

/// The reserved words; matched case-insensitively.
public enum Keyword: String, Sendable, CaseIterable {
  /// Words of the statement and of expressions.
  case select = "SELECT", value = "VALUE", from = "FROM", `where` = "WHERE", `as` = "AS", and = "AND",
    or = "OR", not = "NOT", `case` = "CASE", when = "WHEN", then = "THEN", `else` = "ELSE", end = "END",
    null = "NULL", `true` = "TRUE", `false` = "FALSE", set = "SET", `in` = "IN"
}
