/// The binding strength of IoT-SQL operators: the one precedence table of the language, mirrored in
/// Grammar/README.md and Grammar/IoTSQL.ebnf. Levels run from the loosest (`or`) to the tightest
/// (`postfix`); the parser climbs them in `Parser.parseBinary(_:)`.
///
/// | level | operators | associativity |
/// |---|---|---|
/// | or | `OR` | left |
/// | and | `AND` | left |
/// | not | prefix `NOT` | prefix |
/// | comparison | `=` `<>` `!=` `<` `<=` `>` `>=` `IN` | none (`a = b = c` is an error) |
/// | additive | `+` `-` | left |
/// | multiplicative | `*` `/` `%` | left |
/// | unary | prefix `-` | prefix |
/// | postfix | `.name` | left |
public enum Precedence: Int, Sendable, Comparable, CaseIterable {
  /// `OR`.
  case or = 1
  /// `AND`.
  case and
  /// Prefix `NOT`: `NOT a = b` is `NOT (a = b)`.
  case not
  /// `=`, `<>` (also written `!=`), `<`, `<=`, `>`, `>=`, `IN`; they do not chain.
  case comparison
  /// `+`, `-`.
  case additive
  /// `*`, `/`, `%`.
  case multiplicative
  /// Prefix `-`: `-a.b` is `-(a.b)`, `-a * b` is `(-a) * b`.
  case unary
  /// Member access `.name`, the tightest.
  case postfix

  /// How operators of one level group.
  public enum Associativity: String, Sendable {
    /// `a - b - c` is `(a - b) - c`.
    case left
    /// Two operators of the level cannot follow each other without parentheses.
    case none
    /// A prefix operator.
    case prefix
  }

  /// How this level's operators group.
  public var associativity: Associativity {
    switch self {
    case .or, .and, .additive, .multiplicative, .postfix: .left
    case .comparison: .none
    case .not, .unary: .prefix
    }
  }

  /// The next tighter level (the level of a left-associative operator's right operand).
  public var tighter: Precedence { Precedence(rawValue: rawValue + 1) ?? .postfix }

  /// Orders levels from loosest to tightest.
  public static func < (lhs: Precedence, rhs: Precedence) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension BinaryOperator {
  /// The level of this infix operator in the precedence table.
  public var precedence: Precedence {
    switch self {
    case .or: .or
    case .and: .and
    case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .in: .comparison
    case .add, .subtract: .additive
    case .multiply, .divide, .remainder: .multiplicative
    }
  }

  /// The operator a token spells, if any: a symbol (`!=` reads as `<>`) or the keywords `AND`, `OR`,
  /// `IN`.
  init?(_ kind: Token.Kind) {
    switch kind {
    case .symbol(let text):
      switch text {
      case "=": self = .equal
      case "<>", "!=": self = .notEqual
      case "<": self = .less
      case "<=": self = .lessOrEqual
      case ">": self = .greater
      case ">=": self = .greaterOrEqual
      case "+": self = .add
      case "-": self = .subtract
      case "*": self = .multiply
      case "/": self = .divide
      case "%": self = .remainder
      default: return nil
      }
    case .keyword(.and): self = .and
    case .keyword(.or): self = .or
    case .keyword(.in): self = .in
    default: return nil
    }
  }
}
