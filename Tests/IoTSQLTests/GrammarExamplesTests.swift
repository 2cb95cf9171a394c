import Foundation
import Testing

@testable import IoTSQL

/// The Grammar folder, found from this file's path.
private let grammarFolder = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Grammar")

/// The example files, sorted by name.
private let exampleFiles: [URL] = {
  let folder = grammarFolder.appendingPathComponent("examples")
  let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
  return names.filter { $0.hasSuffix(".sql") }.sorted().map { folder.appendingPathComponent($0) }
}()

private func contents(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

@Suite struct GrammarExamplesTests {
  @Test func thereAreEnoughExamples() {
    #expect(exampleFiles.count >= 25)
  }

  @Test(arguments: exampleFiles.map(\.lastPathComponent))
  func exampleParses(name: String) throws {
    let sql = try contents(grammarFolder.appendingPathComponent("examples/\(name)"))
    do {
      let statement = try Parser.parse(sql)
      #expect(statement.range.start.offset == 0)
    } catch {
      Issue.record("\(name): \(error)")
    }
  }

  /// Every construct of the grammar appears in at least one example.
  @Test func examplesCoverEveryConstruct() throws {
    var seen = Set<String>()
    for file in exampleFiles {
      let statement = try Parser.parse(try contents(file))
      seen.formUnion(Constructs.of(statement))
    }
    let expected = Set([
      "set", "select-value", "star", "star-alias", "alias", "dotted-alias", "from", "from-unquoted",
      "no-from",
      "where", "int", "decimal", "string", "bool", "null", "array", "object", "field", "variable", "member",
      "unary-", "unaryNOT", "call", "wildcard-argument", "cast", "case-simple", "case-searched", "case-else",
      "nested", "nested-value", "nested-where", "path-members",
    ]).union(BinaryOperator.allCases.map { "binary" + $0.rawValue })
    #expect(expected.subtracting(seen).sorted() == [])
  }

  /// Each production in a parse function's doc comment is written the same way in IoTSQL.ebnf.
  @Test func parserDocCommentsQuoteTheGrammar() throws {
    let grammar = normalized(
      try contents(grammarFolder.appendingPathComponent("IoTSQL.ebnf")), dropComments: true)
    let parserFile = grammarFolder.deletingLastPathComponent()
      .appendingPathComponent("Sources/IoTSQL/Syntax/Parser.swift")
    let lines = try contents(parserFile).split(separator: "\n").map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    var productions: [String] = []
    var current = ""
    for line in lines where line.hasPrefix("/// `") && line.hasSuffix("`") {
      current += " " + line.dropFirst(5).dropLast()
      if current.hasSuffix(";") {
        productions.append(normalized(current, dropComments: false))
        current = ""
      }
    }
    #expect(productions.count >= 25)
    for production in productions {
      #expect(grammar.contains(production), "not in IoTSQL.ebnf: \(production)")
    }
  }

  /// Every operator appears in the README's precedence table on the row of its level.
  @Test func readmePrecedenceTableMatchesTheCode() throws {
    let readme = try contents(grammarFolder.appendingPathComponent("README.md"))
    let rows = readme.split(separator: "\n").filter {
      $0.hasPrefix("| ") && $0.dropFirst(2).first?.isNumber == true
    }
    #expect(rows.count == Precedence.allCases.count)
    for op in BinaryOperator.allCases {
      let row = rows.first { $0.hasPrefix("| \(op.precedence.rawValue) |") }
      #expect(row?.contains("`\(op.rawValue)`") == true, "\(op) not on row \(op.precedence.rawValue)")
    }
  }

  private func normalized(_ text: String, dropComments: Bool) -> String {
    var text = text
    if dropComments {
      while let open = text.range(of: "(*"),
        let close = text.range(of: "*)", range: open.upperBound..<text.endIndex)
      {
        text.removeSubrange(open.lowerBound..<close.upperBound)
      }
    }
    return text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
  }
}

/// The names of the constructs a statement uses.
enum Constructs {
  static func of(_ statement: Statement) -> Set<String> {
    var names = Set<String>()
    if !statement.variables.isEmpty { names.insert("set") }
    statement.variables.forEach { visit($0.value, &names) }
    select(statement.select, &names)
    if let from = statement.from {
      names.insert(from.isQuoted ? "from" : "from-unquoted")
    } else {
      names.insert("no-from")
    }
    if let whereClause = statement.whereClause {
      names.insert("where")
      visit(whereClause, &names)
    }
    return names
  }

  private static func select(_ clause: SelectClause, _ names: inout Set<String>) {
    switch clause {
    case .value(let expression):
      names.insert("select-value")
      visit(expression, &names)
    case .items(let items):
      for item in items {
        switch item.kind {
        case .star: names.insert(item.alias == nil ? "star" : "star-alias")
        case .members(let base):
          names.insert("path-members")
          visit(base, &names)
        case .expression(let expression): visit(expression, &names)
        }
        if let alias = item.alias { names.insert(alias.count > 1 ? "dotted-alias" : "alias") }
      }
    }
  }

  private static func visit(_ expression: IoTSQL.Expression, _ names: inout Set<String>) {
    switch expression.kind {
    case .literal(let value):
      switch value {
      case .int: names.insert("int")
      case .decimal: names.insert("decimal")
      case .string: names.insert("string")
      case .bool: names.insert("bool")
      case .null: names.insert("null")
      default: break
      }
    case .field: names.insert("field")
    case .variable: names.insert("variable")
    case .wildcard: names.insert("wildcard-argument")
    case .member(let base, _):
      names.insert("member")
      visit(base, &names)
    case .unary(let op, let operand):
      names.insert("unary" + op.rawValue)
      visit(operand, &names)
    case .binary(let op, let left, let right):
      names.insert("binary" + op.rawValue)
      visit(left, &names)
      visit(right, &names)
    case .call(_, let arguments):
      names.insert("call")
      arguments.forEach { visit($0, &names) }
    case .cast(let value, _, _):
      names.insert("cast")
      visit(value, &names)
    case .caseWhen(let subject, let branches, let otherwise):
      names.insert(subject == nil ? "case-searched" : "case-simple")
      if let subject { visit(subject, &names) }
      for branch in branches {
        visit(branch.when, &names)
        visit(branch.then, &names)
      }
      if let otherwise {
        names.insert("case-else")
        visit(otherwise, &names)
      }
    case .object(let members):
      names.insert("object")
      members.forEach { visit($0.value, &names) }
    case .array(let elements):
      names.insert("array")
      elements.forEach { visit($0, &names) }
    case .nested(let query):
      names.insert("nested")
      if case .value = query.select { names.insert("nested-value") }
      select(query.select, &names)
      visit(query.from, &names)
      if let whereClause = query.whereClause {
        names.insert("nested-where")
        visit(whereClause, &names)
      }
    }
  }
}
