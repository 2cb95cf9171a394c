/// A whole IoT-SQL statement: `[SET ...] SELECT ... [FROM 'filter'] [WHERE ...]`.
public struct Statement: Sendable, Equatable {
  /// `SET @a = expr, ...`, in order (empty when there is no SET clause).
  public var variables: [VariableAssignment]
  /// The SELECT clause.
  public var select: SelectClause
  /// The FROM topic filter, when present.
  public var from: TopicFilterSource?
  /// The WHERE condition, when present.
  public var whereClause: Expression?
  /// The whole statement.
  public var range: SourceRange
  /// Warnings the parser found (a number literal beyond the Decimal range).
  public var warnings: [Diagnostic] = []

  /// Creates a statement.
  public init(
    variables: [VariableAssignment], select: SelectClause, from: TopicFilterSource?,
    whereClause: Expression?, range: SourceRange
  ) {
    self.variables = variables
    self.select = select
    self.from = from
    self.whereClause = whereClause
    self.range = range
  }
}

/// `@name = expression` in a SET clause.
public struct VariableAssignment: Sendable, Equatable {
  /// The name without `@`.
  public var name: String
  /// The value.
  public var value: Expression
  /// From `@` to the end of the expression.
  public var range: SourceRange

  /// Creates an assignment.
  public init(name: String, value: Expression, range: SourceRange) {
    self.name = name
    self.value = value
    self.range = range
  }
}

/// The FROM clause of a statement: a quoted MQTT topic filter.
public struct TopicFilterSource: Sendable, Equatable {
  /// The filter text, quotes removed.
  public var filter: String
  /// The string literal (or the raw filter text when unquoted).
  public var range: SourceRange
  /// False when the filter was written without quotes (`FROM topic/#`, as some AWS pages show); the
  /// checker warns about it, since the FROM page requires a quoted string.
  public var isQuoted: Bool
  /// True when the literal holds escapes (`'\u0061/#'`): its text is not the filter's, character
  /// for character.
  public var isEscaped: Bool
  /// True when the literal is in double quotes (`FROM "a/#"`): a string all the same, but the FROM
  /// page asks for single quotes, so the checker warns.
  public var isDoubleQuoted: Bool

  /// Creates a FROM clause.
  public init(
    filter: String, range: SourceRange, isQuoted: Bool = true, isEscaped: Bool = false,
    isDoubleQuoted: Bool = false
  ) {
    self.filter = filter
    self.range = range
    self.isQuoted = isQuoted
    self.isEscaped = isEscaped
    self.isDoubleQuoted = isDoubleQuoted
  }
}

/// What a SELECT produces.
public enum SelectClause: Sendable, Equatable {
  /// `SELECT VALUE expr`: the value itself is the output.
  case value(Expression)
  /// `SELECT item, item, ...`: an object.
  case items([SelectItem])
}

extension SelectClause {
  /// The expressions it evaluates, in order (`*` items are none).
  public var expressions: [Expression] {
    switch self {
    case .value(let expression): return [expression]
    case .items(let items):
      return items.compactMap {
        if case .expression(let expression) = $0.kind { return expression }
        return nil
      }
    }
  }
}

extension SelectClause {
  /// The output names it computes from other names of the message: those ``computedNames`` holds
  /// whose items do not read the name themselves (`round(temp) AS temp` reads `temp`: the message
  /// has it, and a WHERE on it is the message's, as meant).
  public var namesComputedFromOthers: Set<String> {
    guard case .items(let items) = self else { return [] }
    var reading: Set<String> = []
    for item in items {
      guard case .expression(let expression) = item.kind, let alias = item.alias?.first else { continue }
      if expression.fieldsRead.contains(where: { $0.name == alias }) { reading.insert(alias) }
    }
    return computedNames.subtracting(reading)
  }

  /// The output names it computes (an alias of anything but the field of that name), less those it
  /// also copies unchanged: names a WHERE or a template reads from the message, not from here.
  public var computedNames: Set<String> {
    guard case .items(let items) = self else { return [] }
    var written: Set<String> = []
    var copied: Set<String> = []
    for item in items {
      guard case .expression(let expression) = item.kind else { continue }
      let bareName: String? = if case .field(let name) = expression.kind { name } else { nil }
      if let alias = item.alias?.first {
        if let bareName, bareName == alias, item.alias?.count == 1 {
          copied.insert(alias)
        } else {
          written.insert(alias)
        }
      } else if let bareName {
        copied.insert(bareName)
      } else if case .member(_, let last) = expression.kind {
        written.insert(last)
      }
    }
    return written.subtracting(copied)
  }
}

extension Expression {
  /// The fields of the message it reads by their bare names (`f` of `f > 1` or `f.x`), each with
  /// its place, in order; not those a nested query reads from its elements.
  public var fieldsRead: [(name: String, range: SourceRange)] {
    var found: [(name: String, range: SourceRange)] = []
    func visit(_ expression: Expression) {
      switch expression.kind {
      case .literal, .variable, .wildcard: break
      case .field(let name): found.append((name, expression.range))
      case .member(let base, _): visit(base)
      case .unary(_, let operand): visit(operand)
      case .binary(_, let left, let right):
        visit(left)
        visit(right)
      case .call(_, let arguments): arguments.forEach(visit)
      case .cast(let operand, _, _): visit(operand)
      case .caseWhen(let subject, let branches, let otherwise):
        subject.map(visit)
        for branch in branches {
          visit(branch.when)
          visit(branch.then)
        }
        otherwise.map(visit)
      case .object(let members): members.forEach { visit($0.value) }
      case .array(let elements): elements.forEach(visit)
      case .nested(let query): visit(query.from)
      }
    }
    visit(self)
    return found
  }
}

/// One item of a SELECT list.
public struct SelectItem: Sendable, Equatable {
  /// `*` or an expression.
  public enum Kind: Sendable, Equatable {
    /// `*`: every member of the current object (the payload, or the element in a nested query).
    case star
    /// `base.*`: every member of the object `base` is (none when it is no object), as `*` takes
    /// the payload's: `SELECT state.reported.*, timestamp() AS ts`.
    case members(Expression)
    /// An expression.
    case expression(Expression)
  }

  /// The item.
  public var kind: Kind
  /// `AS a.b.c`, split at the dots; nil without AS.
  public var alias: [String]?
  /// The whole item, alias included.
  public var range: SourceRange

  /// Creates an item.
  public init(kind: Kind, alias: [String]?, range: SourceRange) {
    self.kind = kind
    self.alias = alias
    self.range = range
  }
}

/// A nested query `(SELECT [VALUE] ... FROM path [WHERE ...])` over a value of the current message.
public struct NestedQuery: Sendable, Equatable {
  /// What each element produces.
  public var select: SelectClause
  /// The array or object iterated.
  public var from: Expression
  /// `FROM arr AS a`: the name under which the query reads its element itself (`WHERE a = 3` over
  /// an array of numbers); the element's members stay readable by their own names.
  public var alias: String?
  /// The per-element condition.
  public var whereClause: Expression?

  /// Creates a nested query.
  public init(select: SelectClause, from: Expression, alias: String? = nil, whereClause: Expression?) {
    self.select = select
    self.from = from
    self.alias = alias
    self.whereClause = whereClause
  }
}

/// An expression with its source range.
public struct Expression: Sendable, Equatable {
  /// The node.
  public var kind: ExpressionKind
  /// Where it is written.
  public var range: SourceRange

  /// Creates an expression.
  public init(_ kind: ExpressionKind, _ range: SourceRange) {
    self.kind = kind
    self.range = range
  }

  /// True for a literal that is no object (a scalar or an array): a key below it replaces it.
  var isNonObjectLiteral: Bool {
    switch kind {
    case .literal(.object): return false
    case .literal, .array: return true
    default: return false
    }
  }

  /// True for a literal number, string, Boolean or null (not an array or object).
  var isScalarLiteral: Bool {
    guard case .literal(let value) = kind else { return false }
    switch value {
    case .array, .object: return false
    default: return true
    }
  }
}

/// The expression nodes.
public indirect enum ExpressionKind: Sendable, Equatable {
  /// A literal: number, string, `true`, `false`, `null`.
  case literal(Value)
  /// A bare name: a member of the current object (payload or nested-query element).
  case field(String)
  /// `@name`: a SET variable.
  case variable(String)
  /// `*` where a value is expected (a function argument): the whole current object or payload.
  case wildcard
  /// `base.name`.
  case member(Expression, String)
  /// `-x` or `NOT x`.
  case unary(UnaryOperator, Expression)
  /// `a op b`.
  case binary(BinaryOperator, Expression, Expression)
  /// `name(args)`; `name` is as written (functions are matched case-insensitively).
  case call(name: String, arguments: [Expression])
  /// `cast(x AS type)`; the type name as written.
  case cast(Expression, type: String, typeRange: SourceRange)
  /// `CASE [subject] WHEN a THEN b ... [ELSE c] END`; no subject is the searched form.
  case caseWhen(subject: Expression?, branches: [CaseBranch], otherwise: Expression?)
  /// `{'k': v, ...}`.
  case object([ObjectLiteralMember])
  /// `[a, b, ...]`.
  case array([Expression])
  /// `(SELECT ...)`.
  case nested(NestedQuery)
}

/// `WHEN condition THEN result`.
public struct CaseBranch: Sendable, Equatable {
  /// The compared value (simple CASE) or the condition (searched CASE).
  public var when: Expression
  /// The result.
  public var then: Expression

  /// Creates a branch.
  public init(when: Expression, then: Expression) {
    self.when = when
    self.then = then
  }
}

/// `'key': value` in an object literal.
public struct ObjectLiteralMember: Sendable, Equatable {
  /// The key.
  public var key: String
  /// The value.
  public var value: Expression

  /// Creates a member.
  public init(key: String, value: Expression) {
    self.key = key
    self.value = value
  }
}

/// Prefix operators.
public enum UnaryOperator: String, Sendable {
  /// Arithmetic negation.
  case negate = "-"
  /// Logical NOT.
  case not = "NOT"
  /// `EXISTS (nested query)`: whether the query's result holds an element; the operand is always a
  /// nested query.
  case exists = "EXISTS"
}

/// Infix operators; `Precedence.swift` holds their binding strength.
public enum BinaryOperator: String, Sendable, CaseIterable {
  /// Logical.
  case or = "OR", and = "AND"
  /// Comparison.
  case equal = "=", notEqual = "<>", less = "<", lessOrEqual = "<=", greater = ">",
    greaterOrEqual = ">="
  /// Membership: `x IN array`.
  case `in` = "IN"
  /// Arithmetic.
  case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
}
