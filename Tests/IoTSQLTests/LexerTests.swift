import Foundation
import Testing

@testable import IoTSQL

/// The token kinds of `source`, `.end` excluded.
private func kinds(_ source: String) throws -> [Token.Kind] {
  try Lexer.tokens(of: source).map(\.kind).dropLast()
}

/// The first diagnostic of lexing `source`, as `line:column: message`.
private func lexError(_ source: String) -> String? {
  do {
    _ = try Lexer.tokens(of: source)
    return nil
  } catch {
    return "\(error.first.range.start): \(error.first.message)"
  }
}

@Suite struct LexerTests {
  @Test func keywordsAreCaseInsensitive() throws {
    #expect(
      try kinds("select Value FrOm where") == [
        .keyword(.select), .keyword(.value), .keyword(.from), .keyword(.where),
      ])
    for keyword in Keyword.allCases {
      #expect(try kinds(keyword.rawValue.lowercased()) == [.keyword(keyword)])
    }
  }

  @Test func identifiersAndVariables() throws {
    #expect(
      try kinds("a _b c9 selected @v @temp_1 @9") == [
        .identifier("a"), .identifier("_b"), .identifier("c9"), .identifier("selected"),
        .variable("v"), .variable("temp_1"), .variable("9"),
      ])
  }

  @Test func numbers() throws {
    #expect(
      try kinds("0 15 1.5 5E-12 2e+3 1e5 007") == [
        .integer("0"), .integer("15"), .decimal("1.5"), .decimal("5E-12"), .decimal("2e+3"), .decimal("1e5"),
        .integer("007"),
      ])
    // A number's dot must be followed by a digit: `0.v` would be a member of a number literal,
    // always Undefined, and `1.` is a number cut short; both are errors at the number.
    #expect(throws: SQLError.self) { try kinds("0.v") }
  }

  @Test(arguments: [
    (#"'abc'"#, "abc"),
    (#""abc""#, "abc"),
    (#"'it''s'"#, "it's"),
    (#"''"#, ""),
    (#"''''"#, "'"),
    (#""say \"hi\"""#, #"say "hi""#),
    (#"'a\\b'"#, #"a\b"#),
    (#"'\'\"\/'"#, #"'"/"#),
    (#"'\n\t\r\b\f'"#, "\n\t\r\u{8}\u{C}"),
    (#"'\u00e9\u20AC'"#, "é€"),
    (#"'\ud83d\ude00'"#, "😀"),
    (#""don''t""#, "don''t"),
    ("'two\nlines'", "two\nlines"),
    ("'é€😀'", "é€😀"),
  ])
  func strings(source: String, value: String) throws {
    #expect(try kinds(source) == [.string(value)])
  }

  @Test func symbols() throws {
    let text = "( ) [ ] { } , . : * / % + - = <> != < <= > >="
    #expect(try kinds(text) == text.split(separator: " ").map { .symbol(String($0)) })
    #expect(try kinds("a<>b") == [.identifier("a"), .symbol("<>"), .identifier("b")])
    #expect(try kinds("- -1") == [.symbol("-"), .symbol("-"), .integer("1")])
  }

  @Test func aReservedWordAgainstANumberEndsIt() throws {
    #expect(
      try kinds("1AND x") == [.integer("1"), .keyword(.and), .identifier("x")])
    #expect(try kinds("2.5as y") == [.decimal("2.5"), .keyword(.as), .identifier("y")])
    #expect(try kinds("1E5or") == [.decimal("1E5"), .keyword(.or)])
    #expect(try kinds("1ELSE 2END") == [.integer("1"), .keyword(.else), .integer("2"), .keyword(.end)])
    let tokens = try Lexer.tokens(of: "x>30AND").dropLast()
    #expect(tokens.map { "\($0.range.start.column)-\($0.range.end.column)" } == ["1-2", "2-3", "3-5", "5-8"])
  }

  @Test func positionsCountLinesAndCharacters() throws {
    let tokens = try Lexer.tokens(of: "SELECT 'é€' AS x,\r\n  b\n\tFROM")
    let starts = tokens.map { "\($0.range.start.line):\($0.range.start.column)@\($0.range.start.offset)" }
    #expect(starts == ["1:1@0", "1:8@7", "1:13@15", "1:16@18", "1:17@19", "2:3@24", "3:2@27", "3:6@31"])
    #expect(tokens[1].range.end.column == 12)
  }

  @Test(arguments: [
    ("SELECT 'abc", "1:8: unterminated string literal"),
    ("SELECT \"abc'", "1:8: unterminated string literal"),
    ("SELECT 'abc\\", "1:8: unterminated string literal"),
    ("SELECT a\n  # b", "2:3: unexpected character '#'"),
    ("SELECT a ! b", "1:10: unexpected character '!'; write NOT (or <> for 'not equal')"),
    (
      "SELECT a;",
      "1:9: unexpected character ';' (a rule is one statement: remove the ';' and anything after it)"
    ),
    ("SELECT é", "1:8: unexpected character 'é'"),
    ("SELECT \u{7}", "1:8: unexpected character U+0007"),
    ("SELECT 'a\\qb'", "1:10: unknown escape sequence '\\q' in string literal"),
    // The whole character after the backslash; a control character by its code point.
    ("SELECT '\\日'", "1:9: unknown escape sequence '\\日' in string literal"),
    ("SELECT '\\\u{1}'", "1:9: unknown escape sequence '\\U+0001' in string literal"),
    ("SELECT '\\u12G4'", "1:9: expected four hexadecimal digits after '\\u'"),
    ("SELECT '\\ud83d'", "1:9: unpaired surrogate in '\\u' escape"),
    ("SELECT '\\ude00'", "1:9: unpaired surrogate in '\\u' escape"),
    ("SELECT 12abc", "1:8: malformed number '12abc'"),
    ("SELECT 1e", "1:8: malformed number '1e'"),
    ("SELECT 1EAND", "1:8: malformed number '1EAND'"),
    ("SELECT 1ANDx", "1:8: malformed number '1ANDx'"),
    ("SELECT 1. AS x", "1:8: malformed number '1.': a digit must follow the '.'"),
    ("SELECT 2.e5", "1:8: malformed number '2.': a digit must follow the '.'"),
    ("SELECT @", "1:8: expected a variable name after '@'"),
    ("SELECT @ x", "1:8: expected a variable name after '@'"),
    ("SELECT a --1", "1:10: comments are not supported in IoT-SQL ('--')"),
    ("SELECT a\n/* x */", "2:1: comments are not supported in IoT-SQL ('/*')"),
  ])
  func errors(source: String, expected: String) {
    #expect(lexError(source) == expected)
  }

  @Test func startsInsideALargerText() throws {
    var lexer = Lexer("ab\ncd ${x + 1}", from: 8)
    let token = try lexer.next()
    #expect(token.kind == .identifier("x"))
    #expect(token.range.start == SourceLocation(offset: 8, line: 2, column: 6))
  }
}
