import Foundation
import Testing

@testable import IoTSQL

/// The line and column of byte `offset`, computed independently of the lexer.
private func location(of offset: Int, in text: String) -> IoTSQL.SourceLocation {
  var line = 1
  var column = 1
  for byte in Array(text.utf8)[..<offset] {
    if byte == 0x0A {
      line += 1
      column = 1
    } else if byte & 0xC0 != 0x80 {
      column += 1
    }
  }
  return IoTSQL.SourceLocation(offset: offset, line: line, column: column)
}

/// Parses `sql`; it must either succeed or fail with one well-positioned parse error.
private func expectParsesOrFailsWithPosition(_ sql: String, _ comment: Comment? = nil) {
  do {
    _ = try Parser.parse(sql)
  } catch {
    #expect(!error.diagnostics.isEmpty, comment)
    let diagnostic = error.first
    #expect(diagnostic.stage == .parse, comment)
    #expect(!diagnostic.message.isEmpty && !diagnostic.message.hasSuffix("."), "\(diagnostic.message)")
    let start = diagnostic.range.start
    guard start.offset >= 0, start.offset <= sql.utf8.count else {
      Issue.record("offset \(start.offset) outside the text: \(sql)")
      return
    }
    #expect(start == location(of: start.offset, in: sql), comment)
    #expect(
      diagnostic.range.end.offset >= start.offset && diagnostic.range.end.offset <= sql.utf8.count, comment)
  }
}

private let examplesFolder = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Grammar/examples")

private let examples: [String] = {
  let names = (try? FileManager.default.contentsOfDirectory(atPath: examplesFolder.path)) ?? []
  return names.filter { $0.hasSuffix(".sql") }.sorted().compactMap {
    try? String(contentsOf: examplesFolder.appendingPathComponent($0), encoding: .utf8)
  }
}()

@Suite struct ParserRobustnessTests {
  @Test func everyPrefixOfEveryExample() {
    #expect(examples.count >= 25)
    for sql in examples {
      let bytes = Array(sql.utf8)
      for end in 0...bytes.count {
        // Only whole characters: a prefix is a valid String.
        guard end == bytes.count || bytes[end] & 0xC0 != 0x80 else { continue }
        expectParsesOrFailsWithPosition(String(decoding: bytes[..<end], as: UTF8.self))
      }
    }
  }

  @Test(arguments: 0..<4)
  func randomTokenSoups(seed: UInt64) {
    var generator = SeededGenerator(state: seed)
    let pieces = [
      "SELECT", "VALUE", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END",
      "NULL", "TRUE", "false", "SET", "IN", "cast", "get", "a", "b", "@v", "*", "(", ")", "[", "]", "{", "}",
      ",", ".", ":", "+", "-", "/", "%", "=", "<>", "!=", "<", "<=", ">", ">=", "1", "2.5", "3e4", "'s'",
      "\"d\"", "'un", "\\", "#", "é", "\n", "'a''b'", "'\\u00e9'", "@", "!", "$", ";", "--", "topic/#",
    ]
    for _ in 0..<2_000 {
      let count = Int.random(in: 0...24, using: &generator)
      var sql = Bool.random(using: &generator) ? "SELECT " : ""
      for _ in 0..<count {
        sql += pieces.randomElement(using: &generator)!
        sql += Int.random(in: 0..<4, using: &generator) == 0 ? "" : " "
      }
      expectParsesOrFailsWithPosition(sql, "\(sql)")
    }
  }

  @Test func mutatedExamples() {
    var generator = SeededGenerator(state: 42)
    let alphabet = Array("()[]{},.:*/%+-=<>!'\"\\@#aZ9 \n")
    for sql in examples {
      for _ in 0..<60 {
        var characters = Array(sql)
        let index = Int.random(in: 0..<characters.count, using: &generator)
        switch Int.random(in: 0..<3, using: &generator) {
        case 0: characters.remove(at: index)
        case 1: characters.insert(alphabet.randomElement(using: &generator)!, at: index)
        default: characters[index] = alphabet.randomElement(using: &generator)!
        }
        expectParsesOrFailsWithPosition(String(characters))
      }
    }
  }

  /// `offset`: where, inside `open`, the token that opens a level is.
  @Test(arguments: [
    ("(", ")", "1", 0),
    ("[", "]", "1", 0),
    ("{'k': ", "}", "1", 0),
    ("f(", ")", "1", 1),
    ("cast(", " AS Int)", "1", 4),
    ("CASE WHEN true THEN ", " END", "1", 0),
    ("- ", "", "1", 0),
    ("NOT ", "", "a", 0),
    ("(SELECT VALUE ", " FROM e)", "1", 0),
    ("1 + (", ")", "1", 4),
    ("a.b * (", ").c", "1", 6),
  ])
  func deepNestingIsAPositionedErrorNotACrash(open: String, close: String, core: String, offset: Int) {
    let depth = 10_000
    let sql =
      "SELECT " + String(repeating: open, count: depth) + core + String(repeating: close, count: depth)
    do {
      _ = try Parser.parse(sql)
      Issue.record("parsed \(depth) levels of \(open)")
    } catch {
      #expect(error.first.message == "expression nested too deeply (more than 256 levels)")
      let expectedOffset = 7 + Parser.maximumDepth * open.utf8.count + offset
      #expect(error.first.range.start.offset == expectedOffset)
      #expect(error.first.range.start == location(of: expectedOffset, in: sql))
    }
  }

  /// A long flat chain (`a = 1 OR a = 1 OR ...`, `1 + 1 + ...`) deepens the tree one level an
  /// operator: past `maximumChain` it is a positioned error; 2,000 terms crashed every command and
  /// a running daemon's reload with a stack overflow in the checker. Up to the limit it compiles
  /// and runs, inside the deepest nesting allowed too.
  @Test(arguments: [" OR ", " AND ", " + ", " - ", " * "])
  func longChainsAreAPositionedErrorNotACrash(op: String) throws {
    let term = op == " OR " || op == " AND " ? "a = 1" : "a"
    let long =
      "SELECT * FROM 'x' WHERE "
      + Array(repeating: term, count: 5_000)
      .joined(separator: op)
    do {
      _ = try Compiler.compile(long)
      Issue.record("compiled a chain of 5,000")
    } catch {
      #expect(
        error.first.message.hasPrefix("too many operators in one expression (more than 512 on one path)"))
    }
    let fits =
      "SELECT * FROM 'x' WHERE " + String(repeating: "(", count: 200)
      + Array(repeating: "a", count: 300).joined(separator: " + ") + String(repeating: ")", count: 200)
      + " > 1 AND (" + Array(repeating: "b = 1", count: 200).joined(separator: " OR ") + ")"
    let program = try Compiler.compile(fits)
    var machine = VirtualMachine()
    let context = EvaluationContext(topic: "x", payload: Array(#"{"a":1,"b":1}"#.utf8))
    #expect(machine.evaluate(program, context: context) != nil)
  }

  /// Each member of a path deepens the tree as an operator does: a path of 1,900 members crashed
  /// the checker; past the limit it is a positioned error. An alias of more than 256 names (the
  /// result's nesting, written recursively) is refused too: 10,000 compiled, and crashed each run.
  @Test func longPathsAndDeepAliasesAreAPositionedError() throws {
    let fits = "SELECT a" + String(repeating: ".b", count: Parser.maximumChain) + " AS x FROM 'x'"
    _ = try Compiler.compile(fits)
    let long = "SELECT a" + String(repeating: ".b", count: 2_000) + " AS x FROM 'x'"
    #expect {
      _ = try Compiler.compile(long)
    } throws: { error in
      let first = (error as? SQLError)?.first
      return first?.message.hasPrefix("path too long (more than 512 members") == true
        && first?.range.start.column == 9 + 2 * Parser.maximumChain
    }
    let deepest = "SELECT 1 AS a" + String(repeating: ".b", count: Parser.maximumDepth - 1) + " FROM 'x'"
    let program = try Compiler.compile(deepest)
    var machine = VirtualMachine()
    #expect(machine.evaluate(program, context: EvaluationContext(topic: "x", payload: [])) != nil)
    #expect {
      _ = try Compiler.compile("SELECT 1 AS a" + String(repeating: ".b", count: 10_000) + " FROM 'x'")
    } throws: { error in
      (error as? SQLError)?.first.message.hasPrefix("alias too deep (more than 256 names)") == true
    }
  }

  @Test(arguments: [
    ("(", ")"), ("[", "]"), ("{'k': ", "}"), ("f(", ")"), ("cast(", " AS Int)"),
    ("CASE WHEN true THEN ", " END"),
    ("- ", ""), ("(SELECT VALUE ", " FROM e)"), ("1 + (", ")"), ("a.b * (", ").c"),
  ])
  func nestingAtTheLimitParses(open: String, close: String) throws {
    let depth = Parser.maximumDepth
    let sql = "SELECT " + String(repeating: open, count: depth) + "1" + String(repeating: close, count: depth)
    _ = try Parser.parse(sql)
  }

  @Test func longFlatExpressionsDoNotRecurse() throws {
    // A long sum is refused past `maximumChain` (its tree is as deep as it is long), as a long path
    // is (see above); lists are flat.
    let sum = "SELECT " + Array(repeating: "a", count: Parser.maximumChain).joined(separator: " + ")
    _ = try Parser.parse(sum)
    let list = "SELECT " + Array(repeating: "a", count: 20_000).joined(separator: ", ")
    _ = try Parser.parse(list)
  }

  @Test func deepTemplateIsAPositionedError() {
    let text =
      "x/${" + String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000) + "}"
    #expect(throws: SQLError.self) { try Parser.parseTemplateExpression(in: text, from: 4) }
  }
}
