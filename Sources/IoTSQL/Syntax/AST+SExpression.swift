import Foundation

/// A compact, position-free rendering of the syntax tree, for tests and debugging:
/// `SELECT a + b * 2 AS x FROM 't'` is `(select (item (+ a (* b 2)) as x)) (from 't')`.
extension Statement {
  var sExpression: String {
    var parts: [String] = []
    if !variables.isEmpty {
      parts.append(
        "(set " + variables.map { "(@\($0.name) \($0.value.sExpression))" }.joined(separator: " ") + ")")
    }
    parts.append(select.sExpression)
    if let from { parts.append("(from \(quoted(from.filter))\(from.isQuoted ? "" : " unquoted"))") }
    if let whereClause { parts.append("(where \(whereClause.sExpression))") }
    return parts.joined(separator: " ")
  }
}

extension SelectClause {
  var sExpression: String {
    switch self {
    case .value(let expression): "(select value \(expression.sExpression))"
    case .items(let items): "(select " + items.map(\.sExpression).joined(separator: " ") + ")"
    }
  }
}

extension SelectItem {
  var sExpression: String {
    let body =
      switch kind {
      case .star: "*"
      case .members(let base): "(.* \(base.sExpression))"
      case .expression(let expression): expression.sExpression
      }
    guard let alias else { return "(item \(body))" }
    return "(item \(body) as \(alias.joined(separator: ".")))"
  }
}

extension Expression {
  var sExpression: String { kind.sExpression }
}

extension ExpressionKind {
  var sExpression: String {
    switch self {
    case .literal(let value):
      switch value {
      case .int(let int): return "\(int)"
      case .decimal(let decimal): return "\(decimal)d"
      case .string(let string): return quoted(string)
      case .bool(let bool): return "\(bool)"
      case .null: return "null"
      default: return value.typeName
      }
    case .field(let name): return name
    case .variable(let name): return "@" + name
    case .wildcard: return "*"
    case .member(let base, let name): return "(. \(base.sExpression) \(name))"
    case .unary(let op, let operand): return "(\(op.rawValue) \(operand.sExpression))"
    case .binary(let op, let left, let right):
      return "(\(op.rawValue) \(left.sExpression) \(right.sExpression))"
    case .call(let name, let arguments):
      return "(\(name)" + arguments.map { " " + $0.sExpression }.joined() + ")"
    case .cast(let value, let type, _): return "(cast \(value.sExpression) \(type))"
    case .caseWhen(let subject, let branches, let otherwise):
      var text = "(case"
      if let subject { text += " " + subject.sExpression }
      for branch in branches { text += " (when \(branch.when.sExpression) \(branch.then.sExpression))" }
      if let otherwise { text += " (else \(otherwise.sExpression))" }
      return text + ")"
    case .object(let members):
      return "{" + members.map { "\(quoted($0.key)): \($0.value.sExpression)" }.joined(separator: ", ") + "}"
    case .array(let elements): return "[" + elements.map(\.sExpression).joined(separator: ", ") + "]"
    case .nested(let query):
      var text = "(nested \(query.select.sExpression) (from \(query.from.sExpression)"
      text += query.alias.map { " (as \($0)))" } ?? ")"
      if let whereClause = query.whereClause { text += " (where \(whereClause.sExpression))" }
      return text + ")"
    }
  }
}

/// `'text'` with `'` doubled, as IoT-SQL would write it.
private func quoted(_ text: String) -> String {
  "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}
