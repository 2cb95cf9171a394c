import Foundation
import Testing

@testable import IoTSQL

/// The statement's tree, without positions.
private func tree(_ sql: String) throws -> String { try Parser.parse(sql).sExpression }

/// The expression's tree, without positions.
private func expr(_ text: String) throws -> String { try Parser.parseExpression(text).sExpression }

/// The first parse error of `sql` as `line:column: message`, or nil when it parses.
private func parseError(_ sql: String) -> String? {
  do {
    _ = try Parser.parse(sql)
    return nil
  } catch {
    #expect(error.first.stage == .parse)
    #expect(error.first.severity == .error)
    return "\(error.first.range.start): \(error.first.message)"
  }
}

@Suite struct ParserTests {
  // MARK: Statements

  @Test(arguments: [
    ("SELECT * FROM 'a/b'", "(select (item *)) (from 'a/b')"),
    ("select * from \"a/+/c\"", "(select (item *)) (from 'a/+/c')"),
    ("SELECT * AS message FROM 't'", "(select (item * as message)) (from 't')"),
    ("SELECT *, topic() AS t FROM 't/#'", "(select (item *) (item (topic) as t)) (from 't/#')"),
    ("SELECT a, b AS bar.baz.c FROM 't'", "(select (item a) (item b as bar.baz.c)) (from 't')"),
    // Members named from and where, right after their '.'.
    ("SELECT a AS b.from FROM 't'", "(select (item a as b.from)) (from 't')"),
    ("SELECT a AS b.where.c FROM 't' WHERE x", "(select (item a as b.where.c)) (from 't') (where x)"),
    ("SELECT VALUE n FROM 't'", "(select value n) (from 't')"),
    ("SELECT VALUE * FROM 't'", "(select value *) (from 't')"),
    // `*` is a value: a member of it, in parentheses, in an operation; a nested query over it.
    ("SELECT VALUE *.m FROM 't'", "(select value (. * m)) (from 't')"),
    // An operand: the element of a nested query over scalars, a payload that is a number.
    (
      "SELECT (SELECT VALUE 2 * * FROM l WHERE * > 1) FROM 't'",
      "(select (item (nested (select value (* 2 *)) (from l) (where (> * 1))))) (from 't')"
    ),
    ("SELECT *.a AS r, (*).b FROM 't'", "(select (item (. * a) as r) (item (. * b))) (from 't')"),
    (
      "SELECT (SELECT * FROM *) AS w FROM 't'",
      "(select (item (nested (select (item *)) (from [*])) as w)) (from 't')"
    ),
    (
      "SELECT f(SELECT VALUE v FROM a, 1) FROM 't'",
      "(select (item (f (nested (select value v) (from a)) 1))) (from 't')"
    ),
    ("SELECT a", "(select (item a))"),
    ("SELECT a WHERE b > 1", "(select (item a)) (where (> b 1))"),
    ("SELECT a FROM 't' WHERE b = 'x'", "(select (item a)) (from 't') (where (= b 'x'))"),
    ("SELECT * FROM topic/#", "(select (item *)) (from 'topic/#' unquoted)"),
    ("SELECT * FROM a/+/c WHERE x", "(select (item *)) (from 'a/+/c' unquoted) (where x)"),
    // A filter that begins with a reserved word is a filter: only the bare word is refused.
    ("SELECT * FROM where/x", "(select (item *)) (from 'where/x' unquoted)"),
    ("SELECT * FROM from/# WHERE x", "(select (item *)) (from 'from/#' unquoted) (where x)"),
    ("SELECT * FROM select-x", "(select (item *)) (from 'select-x' unquoted)"),
    ("SET @a = 1 SELECT @a AS a FROM 't'", "(set (@a 1)) (select (item @a as a)) (from 't')"),
    (
      "SET @c = (f - 32) * 5 / 9, @d = @c.x SELECT @c AS celsius, humidity",
      "(set (@c (/ (* (- f 32) 5) 9)) (@d (. @c x))) (select (item @c as celsius) (item humidity))"
    ),
    (
      "SELECT x AS value, y AS end.case FROM 't'",
      "(select (item x as value) (item y as end.case)) (from 't')"
    ),
    (
      "SELECT a.value, b.select.from FROM 't'",
      "(select (item (. a value)) (item (. (. b select) from))) (from 't')"
    ),
    // VALUE is the keyword only when an expression or `*` follows; otherwise a field (AWS's SiteWise
    // guide reads `value.doubleValue`).
    ("SELECT value FROM 't'", "(select (item value)) (from 't')"),
    ("SELECT value, x FROM 't'", "(select (item value) (item x)) (from 't')"),
    ("SELECT value.doubleValue AS v FROM 't'", "(select (item (. value doubleValue) as v)) (from 't')"),
    ("SELECT value + 1 AS v FROM 't'", "(select (item (+ value 1) as v)) (from 't')"),
    ("SELECT VALUE value FROM 't'", "(select value value) (from 't')"),
    ("SELECT value * 2 AS d FROM 't'", "(select (item (* value 2) as d)) (from 't')"),
    // `VALUE * - 1` reads either way: in capitals the keyword, as AWS's guide spells it.
    ("SELECT VALUE * - 1 FROM 't'", "(select value (- * 1)) (from 't')"),
    ("SELECT VALUE * * 2 FROM 't'", "(select value (* * 2)) (from 't')"),
    ("SELECT value * - 1 FROM 't'", "(select (item (* value (- 1)))) (from 't')"),
    ("SELECT Value * 2 FROM 't'", "(select (item (* Value 2))) (from 't')"),
    ("SELECT VALUE * WHERE a", "(select value *) (where a)"),
    ("SELECT VALUE -x FROM 't'", "(select value (- x)) (from 't')"),
    ("SELECT a FROM 't' WHERE value > 0", "(select (item a)) (from 't') (where (> value 0))"),
    (
      "SELECT (SELECT VALUE (value.doubleValue) FROM payload.values) AS w FROM 't'",
      "(select (item (nested (select value (. value doubleValue)) (from (. payload values))) as w)) (from 't')"
    ),
  ])
  func statements(sql: String, expected: String) throws {
    #expect(try tree(sql) == expected)
  }

  @Test func fromClauseRecordsQuotingAndRange() throws {
    let quoted = try Parser.parse("SELECT * FROM 'a/b'")
    #expect(quoted.from?.isQuoted == true)
    #expect(quoted.from?.range.start.column == 15)
    #expect(quoted.from?.range.end.column == 20)
    let raw = try Parser.parse("SELECT *\nFROM  a/b\nWHERE x")
    #expect(
      raw.from
        == TopicFilterSource(
          filter: "a/b",
          range: SourceRange(
            start: SourceLocation(offset: 15, line: 2, column: 7),
            end: SourceLocation(offset: 18, line: 2, column: 10)),
          isQuoted: false))
  }

  // MARK: Expressions

  @Test(arguments: [
    // precedence and associativity
    ("a OR b AND c", "(OR a (AND b c))"),
    ("a AND b OR c AND d", "(OR (AND a b) (AND c d))"),
    ("NOT a = b", "(NOT (= a b))"),
    ("NOT a AND b", "(AND (NOT a) b)"),
    ("NOT NOT a", "(NOT (NOT a))"),
    ("a OR NOT b", "(OR a (NOT b))"),
    ("a + b * c", "(+ a (* b c))"),
    ("a - b - c", "(- (- a b) c)"),
    ("a / b % c * d", "(* (% (/ a b) c) d)"),
    ("a + b = c - d", "(= (+ a b) (- c d))"),
    ("a != b", "(<> a b)"),
    ("a <> b", "(<> a b)"),
    ("a < b", "(< a b)"), ("a <= b", "(<= a b)"), ("a > b", "(> a b)"), ("a >= b", "(>= a b)"),
    ("a in [1, 2]", "(IN a [1, 2])"),
    ("x IN arr AND y", "(AND (IN x arr) y)"),
    ("-a.b", "(- (. a b))"),
    ("-a * b", "(* (- a) b)"),
    ("- -5", "(- (- 5))"),
    ("-5", "(- 5)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("a * (b + c)", "(* a (+ b c))"),
    // literals
    ("15", "15"),
    ("1.5", "1.5d"),
    ("5E-12", "0.000000000005d"),
    ("2e3", "2000.0d"),
    ("123456789012345678901234567890", "123456789012345678901234567890d"),
    ("'it''s' + \"x\\ty\"", "(+ 'it''s' 'x\ty')"),
    ("TRUE AND false OR Null", "(OR (AND true false) null)"),
    ("[]", "[]"),
    ("[1, 'a', [b], {}]", "[1, 'a', [b], {}]"),
    ("{'k': v, \"k2\": 2, bare: 3, value: 4}", "{'k': v, 'k2': 2, 'bare': 3, 'value': 4}"),
    ("{'a': {'b': [1]}}.a.b", "(. (. {'a': {'b': [1]}} a) b)"),
    // paths
    ("a.b.c", "(. (. a b) c)"),
    ("decode(x, 'base64').temp", "(. (decode x 'base64') temp)"),
    ("get(a, 0).v", "(. (get a 0) v)"),
    ("@v.x.y", "(. (. @v x) y)"),
    ("(SELECT VALUE n FROM e).x", "(. (nested (select value n) (from e)) x)"),
    ("state.reported.end", "(. (. state reported) end)"),
    // calls and cast
    ("topic()", "(topic)"),
    ("Concat(a, 'b', 3)", "(Concat a 'b' 3)"),
    ("get(*, 'my-key')", "(get * 'my-key')"),
    ("md5(*)", "(md5 *)"),
    ("cast(topic(2) AS DECIMAL)", "(cast (topic 2) DECIMAL)"),
    ("CAST(x + 1 AS int) * 2", "(* (cast (+ x 1) int) 2)"),
    (
      "get((SELECT v FROM e WHERE n = 'temperature'), 0).v",
      "(. (get (nested (select (item v)) (from e) (where (= n 'temperature'))) 0) v)"
    ),
    // CASE
    (
      "CASE color WHEN 'green' THEN 'go' WHEN 'red' THEN 'stop' ELSE 'caution' END",
      "(case color (when 'green' 'go') (when 'red' 'stop') (else 'caution'))"
    ),
    ("case when t > 30 then 'hot' end", "(case (when (> t 30) 'hot'))"),
    ("CASE a + 1 WHEN 2 THEN CASE WHEN b THEN 1 END END", "(case (+ a 1) (when 2 (case (when b 1))))"),
    // nested queries
    ("(SELECT v FROM e WHERE n = 'light')", "(nested (select (item v)) (from e) (where (= n 'light')))"),
    (
      "(select a, b AS c.d, * from data2)", "(nested (select (item a) (item b as c.d) (item *)) (from data2))"
    ),
    (
      "(SELECT VALUE (SELECT VALUE x FROM inner) FROM outer.list)",
      "(nested (select value (nested (select value x) (from inner))) (from (. outer list)))"
    ),
    (
      "(SELECT a.v FROM arr AS a WHERE a.v > 1)",
      "(nested (select (item (. a v))) (from arr (as a)) (where (> (. a v) 1)))"
    ),
    // The element's name without AS, as SQL's table alias.
    (
      "(SELECT VALUE a FROM arr a WHERE a > 1)",
      "(nested (select value a) (from arr (as a)) (where (> a 1)))"
    ),
    // EXISTS: only before "(", in any case; elsewhere a field name.
    (
      "EXISTS (SELECT * FROM arr as a WHERE a = 3)",
      "(EXISTS (nested (select (item *)) (from arr (as a)) (where (= a 3))))"
    ),
    ("NOT exists(SELECT * FROM e)", "(NOT (EXISTS (nested (select (item *)) (from e))))"),
    ("exists + 1", "(+ exists 1)"),
  ])
  func expressions(text: String, expected: String) throws {
    #expect(try expr(text) == expected)
  }

  @Test func bigIntegerBecomesDecimalAndSmallStaysInt() throws {
    #expect(try Parser.parseExpression("9223372036854775807").kind == .literal(.int(Int.max)))
    #expect(
      try Parser.parseExpression("9223372036854775808").kind
        == .literal(.decimal(SQLDecimal(string: "9223372036854775808")!)))
  }

  /// Within AWS's range (1E-999 to 9.999…E999) a literal is held as written (the guide's
  /// `substring(false, -2.411E247)` is "false"); beyond it, the nearest value held, with a
  /// positioned warning.
  @Test func numberBeyondTheDecimalRangeWarnsAndSaturates() throws {
    let within = try Compiler.compile(
      "SELECT substring(false, -2.411E247) AS a, 1e-999 AS b, 2.411E247 AS c FROM 't'")
    #expect(within.warnings.isEmpty)
    var machine = VirtualMachine()
    let output = machine.evaluate(within, context: EvaluationContext(topic: "t", payload: Array("{}".utf8)))
    #expect(
      output.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"a":"false","b":1E-999,"c":2.411E247}"#
    )
    let program = try Compiler.compile("SELECT -2.411E1247 AS a, 1e-1999 AS b FROM 't'")
    #expect(
      program.warnings.map { "\($0.range.start): \($0.message)" } == [
        "1:9: number '2.411E1247' is beyond the Decimal range (1E-999 to 9.999…E999); it is taken as "
          + "9.999999999999999999999999999999999E+999",
        "1:26: number '1e-1999' is beyond the Decimal range (1E-999 to 9.999…E999); it is taken as 1E-999",
      ])
    let beyond = machine.evaluate(program, context: EvaluationContext(topic: "t", payload: Array("{}".utf8)))
    #expect(
      beyond.map { String(decoding: $0.payload, as: UTF8.self) }
        == #"{"a":-9.999999999999999999999999999999999E999,"b":1E-999}"#)
    let digits = String(repeating: "9", count: 1001)
    #expect(try Compiler.compile("SELECT \(digits) AS a FROM 't'").warnings.count == 1)
    #expect(try Compiler.compile("SELECT \(digits.dropLast(2)) AS a FROM 't'").warnings.isEmpty)
  }

  /// A `,` that ends an object or array literal is taken, with a warning at it, as AWS takes it
  /// (the SQL its IoT toolbox sample builds, `{..., 'correlationData': get_mqtt_property(...),}`).
  @Test func aTrailingCommaEndsALiteral() throws {
    let program = try Compiler.compile("SELECT {'a': [1, 2,], 'b': 3,} AS o FROM 't'")
    #expect(
      program.warnings.map { "\($0.range.start): \($0.message)" } == [
        "1:19: a ',' ends an array here: nothing follows it",
        "1:29: a ',' ends an object here: nothing follows it",
      ])
    var machine = VirtualMachine()
    let result = machine.evaluate(program, context: EvaluationContext(topic: "t", payload: Array("{}".utf8)))
    #expect(result.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"o":{"a":[1,2],"b":3}}"#)
    #expect(parseError("SELECT {'a': 1,,} FROM 't'") != nil)
    #expect(parseError("SELECT [,] FROM 't'") != nil)
  }

  /// `path.*` as a SELECT item takes that object's members, as `*` takes the payload's (shadow
  /// rules deployed on AWS write `SELECT state.reported.*, timestamp() AS time`); nothing when it
  /// is no object; refused anywhere else.
  @Test func aPathsMembersAsASelectItem() throws {
    var machine = VirtualMachine()
    func run(_ sql: String, _ payload: String) throws -> String? {
      let program = try Compiler.compile(sql)
      let context = EvaluationContext(topic: "t", payload: Array(payload.utf8), timestampMs: 5)
      return machine.evaluate(program, context: context).map { String(decoding: $0.payload, as: UTF8.self) }
    }
    #expect(
      try run(
        "SELECT state.reported.*, timestamp() AS time FROM 't'", #"{"state":{"reported":{"a":1,"b":[2]}}}"#)
        == #"{"a":1,"b":[2],"time":5}"#)
    #expect(
      try run("SELECT s.*, s.* AS whole, x FROM 't'", #"{"s":{"a":1},"x":2}"#)
        == #"{"a":1,"whole":{"a":1},"x":2}"#)
    #expect(try run("SELECT missing.*, n.*, x FROM 't'", #"{"n":3,"x":2}"#) == #"{"x":2}"#)
    #expect(try run("SELECT {'k': 1, 'j': a}.* FROM 't'", #"{"a":2}"#) == #"{"k":1,"j":2}"#)
    #expect(
      try run("SELECT (SELECT v.* FROM arr) AS o FROM 't'", #"{"arr":[{"v":{"k":1}}]}"#)
        == #"{"o":[{"k":1}]}"#)
    for refused in [
      "SELECT 1 AS x FROM 't' WHERE a.* = 1", "SELECT b + a.* FROM 't'", "SELECT VALUE a.* FROM 't'",
    ] {
      #expect(
        parseError(refused)?.contains("'.*' takes an object's members only as a whole SELECT item") == true,
        "\(refused)")
    }
  }

  @Test func castRecordsTypeRange() throws {
    let expression = try Parser.parseExpression("cast(x AS Int)")
    guard case .cast(_, let type, let typeRange) = expression.kind else {
      Issue.record("not a cast: \(expression)")
      return
    }
    #expect(type == "Int")
    #expect(typeRange.start.column == 11)
    #expect(typeRange.end.column == 14)
    #expect(expression.range.end.column == 15)
  }

  // MARK: Positions

  @Test func rangesCoverTheirSource() throws {
    let sql = "SELECT  upper(a.b) AS x,\n  1 + 2 FROM 't' WHERE\n  NOT c"
    let statement = try Parser.parse(sql)
    guard case .items(let items) = statement.select, case .expression(let first) = items[0].kind,
      case .expression(let second) = items[1].kind
    else {
      Issue.record("unexpected shape")
      return
    }
    func text(_ range: SourceRange) -> String {
      String(decoding: Array(sql.utf8)[range.start.offset..<range.end.offset], as: UTF8.self)
    }
    #expect(text(first.range) == "upper(a.b)")
    #expect(text(items[0].range) == "upper(a.b) AS x")
    #expect(text(second.range) == "1 + 2")
    #expect(second.range.start == SourceLocation(offset: 27, line: 2, column: 3))
    #expect(text(statement.whereClause!.range) == "NOT c")
    #expect(statement.whereClause!.range.start.line == 3)
    #expect(text(statement.range) == sql)
  }

  @Test func multiLineErrorPositions() {
    let sql = "SELECT a,\n       b +\n       FROM 't'"
    #expect(parseError(sql) == "3:8: expected an expression after '+'")
    #expect(parseError("SELECT\n\tCASE x\n\t\tELSE 1 END") == "3:3: CASE needs at least one WHEN")
    #expect(
      parseError("SELECT 'é€😀', x y") == "1:17: expected FROM, WHERE or the end of the statement, found 'y'")
  }

  @Test func renderedErrorHasCaret() {
    do {
      _ = try Parser.parse("SELECT a, FROM 't'")
      Issue.record("parsed")
    } catch {
      #expect(
        error.description
          == "1:11: error: expected an expression after ',' (a SELECT list does not end with ','; remove it)\nSELECT a, FROM 't'\n          ^"
      )
    }
  }

  /// A long line is shown around the error, cut with `…` (a 20 KB generated statement was echoed
  /// whole, its caret after 20,000 spaces).
  @Test func aLongLineIsShownAroundTheError() {
    let sql = "SELECT " + (0..<3000).map { "a\($0)" }.joined(separator: ", ") + ", FROM 't'"
    do {
      _ = try Parser.parse(sql)
      Issue.record("parsed")
    } catch {
      let lines = error.description.split(separator: "\n", omittingEmptySubsequences: false)
      #expect(lines.count == 3)
      #expect(lines[1].hasPrefix("…") && lines[1].hasSuffix("a2999, FROM 't'"), "\(lines[1])")
      #expect(lines[1].unicodeScalars.count <= 2 * 80 + 1)
      // The caret under the F of FROM.
      let caret = lines[2].count - 1
      #expect(Array(lines[1])[caret...].starts(with: "FROM"), "\(error.description)")
    }
  }

  @Test func caretFollowsTabsAndEndOfLine() {
    // The caret line copies the tabs before the column, so it lines up however tabs expand.
    do {
      _ = try Parser.parse("SELECT\n\tCASE x\n\t\tELSE 1 END")
      Issue.record("parsed")
    } catch {
      #expect(error.description.hasSuffix("\n\t\tELSE 1 END\n\t\t^"))
    }
    // Past the end of the line, the caret still sits one column after the last character.
    do {
      _ = try Parser.parse("SELECT a +")
      Issue.record("parsed")
    } catch {
      #expect(error.description.hasSuffix("\nSELECT a +\n          ^"))
    }
  }

  /// CRLF statements show their line (the split by Characters never cut "\r\n", so the line was
  /// not found); a lone CR, a blank to the lexer, shows as a space under which the caret counts.
  @Test func caretUnderCRLFAndLoneCR() {
    do {
      _ = try Compiler.compile("SELECT\r\n  lenght(a)\r\nFROM 'a/b'")
      Issue.record("compiled")
    } catch {
      #expect(error.description.hasSuffix("\n  lenght(a)\n  ^"), "\(error.description)")
    }
    do {
      _ = try Parser.parse("SELECT a,\r  b,\r  ) FROM 'a/b'")
      Issue.record("parsed")
    } catch {
      #expect(
        error.description.hasSuffix("\nSELECT a,   b,   ) FROM 'a/b'\n                 ^"),
        "\(error.description)")
    }
  }

  @Test func caretCountsTerminalCells() {
    // Wide (CJK, emoji) characters take two cells, combining marks none: the caret stays under 'x'.
    for (sql, caret) in [
      ("SELECT '温度' x FROM 't'", String(repeating: " ", count: 14) + "^"),
      ("SELECT '😀' x FROM 't'", String(repeating: " ", count: 12) + "^"),
      ("SELECT 'e\u{301}' x FROM 't'", String(repeating: " ", count: 11) + "^"),
      ("SELECT 'ｆｕｌｌ' x FROM 't'", String(repeating: " ", count: 18) + "^"),
      // A family (three emoji joined by ZWJ) and two flags (pairs of regional indicators): one
      // glyph each, two cells.
      (
        "SELECT '\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}' x FROM 't'",
        String(repeating: " ", count: 12) + "^"
      ),
      ("SELECT '\u{1F1EB}\u{1F1F7}\u{1F1EB}\u{1F1F7}' x FROM 't'", String(repeating: " ", count: 14) + "^"),
      // A skin tone modifies the emoji before it.
      ("SELECT '\u{1F44D}\u{1F3FD}' x FROM 't'", String(repeating: " ", count: 12) + "^"),
    ] {
      do {
        _ = try Parser.parse(sql)
        Issue.record("parsed \(sql)")
      } catch {
        #expect(error.description.hasSuffix("\n\(sql)\n\(caret)"), "\(error.description)")
      }
    }
  }

  // MARK: Errors

  @Test(arguments: [
    (
      "SELECT a, FROM 't'",
      "1:11: expected an expression after ',' (a SELECT list does not end with ','; remove it)"
    ),
    ("SELECT a FROM 't' x", "1:19: expected WHERE or the end of the statement, found 'x'"),
    ("SELECT a b FROM 't'", "1:10: expected FROM, WHERE or the end of the statement, found 'b'"),
    (
      "SELECT DISTINCT a FROM 't'",
      "1:8: SELECT DISTINCT is not part of AWS IoT SQL: a rule gives one result a message"
    ),
    (
      "SELECT distinct * FROM 't'",
      "1:8: SELECT DISTINCT is not part of AWS IoT SQL: a rule gives one result a message"
    ),
    ("SELECT a FROM 't' WHERE b c", "1:27: expected the end of the statement, found 'c'"),
    (
      "SELECT VALUE * AS x FROM 't'",
      "1:16: SELECT VALUE takes one expression, with no alias and no other item"
    ),
    (
      "SELECT VALUE *, a FROM 't'", "1:15: SELECT VALUE takes one expression, with no alias and no other item"
    ),
    (
      "SELECT VALUE * -1 AS x FROM 't'",
      "1:19: SELECT VALUE takes one expression, with no alias and no other item; 'VALUE *' starts SELECT VALUE: "
        + "for a field named VALUE, write (VALUE * ...)"
    ),
    (
      "SELECT VALUE a AS x FROM 't'",
      "1:16: SELECT VALUE takes one expression, with no alias and no other item"
    ),
    (
      "SELECT value - 1 AS v FROM 't'",
      "1:18: SELECT VALUE takes one expression, with no alias and no other item; 'value -' starts SELECT VALUE: for a field named value, write (value - ...)"
    ),
    (
      "SELECT VALUE -x AS y FROM 't'",
      "1:17: SELECT VALUE takes one expression, with no alias and no other item"
    ),
    (
      "SELECT a AS b. FROM 't'",
      "1:14: expected a member name after '.' in the alias, found FROM (the alias ends with '.')"
    ),
    (
      "SELECT a AS b.FROM 't'",
      "1:14: expected a member name after '.' in the alias, found FROM (the alias ends with '.')"
    ),
    (
      "SELECT a AS b. WHERE FROM 't'",
      "1:14: expected a member name after '.' in the alias, found WHERE (the alias ends with '.')"
    ),
    (
      "SELECT 'abc FROM 't'",
      "1:19: expected FROM, WHERE or the end of the statement, found 't' (the string before it, 'abc FROM ', may be missing its closing quote)"
    ),
    ("SELECT a FROM 't", "1:15: unterminated string literal"),
    ("SELECT CASE a ELSE 1 END FROM 't'", "1:15: CASE needs at least one WHEN"),
    ("SELECT CASE END", "1:13: CASE needs at least one WHEN"),
    ("SELECT # FROM 't'", "1:8: unexpected character '#'"),
    ("", "1:1: expected SELECT or SET, found the end of the statement"),
    ("FROM 't'", "1:1: expected SELECT or SET, found FROM"),
    ("SELECT", "1:7: expected an expression after SELECT"),
    ("SELECT FROM 't'", "1:8: expected an expression after SELECT"),
    ("SELECT VALUE (", "1:15: expected an expression after '('"),
    ("SET @a = 1 SET @b = 2 SELECT 1", "1:12: SET may appear only once, before SELECT"),
    ("SELECT 1 FROM 't' SET @a = 1", "1:19: SET must come before SELECT"),
    ("SELECT 1 SET @a = 1", "1:10: SET must come before SELECT"),
    ("SET a = 1 SELECT 1", "1:5: expected a variable '@name' after SET, found 'a'"),
    ("SET @a 1 SELECT 1", "1:8: expected '=' after '@a', found '1'"),
    ("SET @a = 1, SELECT 1", "1:13: expected a variable '@name' after ',', found SELECT"),
    ("SET @a = 1 x SELECT 1", "1:12: expected ',' or SELECT after a SET assignment, found 'x'"),
    ("SELECT (a + b FROM 't'", "1:15: expected ')' to close the expression opened at 1:8, found FROM"),
    ("SELECT f(a b) FROM 't'", "1:12: expected ',' or ')' after an argument of 'f', found 'b'"),
    ("SELECT f(a,) FROM 't'", "1:12: expected an expression after ','"),
    ("SELECT [1, 2 FROM 't'", "1:14: expected ',' or ']' to close the array opened at 1:8, found FROM"),
    ("SELECT {'a' 1} FROM 't'", "1:13: expected ':' after the key the string 'a', found '1'"),
    ("SELECT {1: 2} FROM 't'", "1:9: expected a key (a string or a name) after '{', found '1'"),
    ("SELECT {'a': 1 FROM 't'", "1:16: expected ',' or '}' to close the object opened at 1:8, found FROM"),
    ("SELECT CASE a WHEN 1 'x' END", "1:22: expected THEN after the WHEN expression, found the string 'x'"),
    (
      "SELECT CASE a WHEN 1 THEN 2 FROM 't'",
      "1:29: expected WHEN, ELSE or END to close the CASE at 1:8, found FROM"
    ),
    ("SELECT CASE a WHEN 1 THEN 2 ELSE 3 WHEN", "1:36: expected END to close the CASE at 1:8, found WHEN"),
    ("SELECT CASE a b WHEN 1 THEN 2 END", "1:15: expected WHEN after the CASE value, found 'b'"),
    ("SELECT cast(a) FROM 't'", "1:14: expected AS and a type name in cast(), found ')'"),
    ("SELECT cast(a AS) FROM 't'", "1:17: expected a type name after AS, found ')'"),
    ("SELECT cast(a AS int FROM 't'", "1:22: expected ')' to close cast() opened at 1:12, found FROM"),
    ("SELECT a AS FROM 't'", "1:13: expected an alias name after AS, found FROM"),
    ("SELECT a AS 'x' FROM 't'", "1:13: expected an alias name after AS, found the string 'x'"),
    // After '.' every keyword is a member name, so `a.FROM` is a path.
    ("SELECT a. FROM 't'", "1:16: expected FROM, WHERE or the end of the statement, found the string 't'"),
    ("SELECT a.", "1:10: expected a member name after '.', found the end of the statement"),
    (
      "SELECT a.0 FROM 't'",
      "1:10: expected a member name after '.', found '0' (use get() for keys that are not names)"
    ),
    // A digit member inside a path is said as one, not as a malformed number `0.` or `1x`.
    (
      "SELECT * FROM 't' WHERE mydata.item2.0.my-key = 'v'",
      "1:38: expected a member name after '.', found '0' (use get() for keys that are not names)"
    ),
    (
      "SELECT a.1x FROM 't'",
      "1:10: expected a member name after '.', found '1x' (use get() for keys that are not names)"
    ),
    (
      "SELECT a.0.5 FROM 't'",
      "1:10: expected a member name after '.', found '0' (use get() for keys that are not names)"
    ),
    (
      "SELECT a + b.* FROM 't'",
      "1:13: '.*' takes an object's members only as a whole SELECT item (SELECT state.reported.*, ...)"
    ),
    (
      "SELECT ${topic()} AS t FROM 't/#'",
      "1:8: '${' opens a substitution template, which belongs in an action's settings; in SQL write the expression itself (topic(), not ${topic()})"
    ),
    (
      "SELECT a FROM a/b' WHERE a = 1",
      "1:15: the topic filter a/b' ends with a quote but does not start with one: write it in single quotes, FROM 'a/b'"
    ),
    // No indexing in IoT SQL; no number starting with '.'.
    (
      "SELECT a[0] AS x FROM 't'",
      "1:9: expected FROM, WHERE or the end of the statement, found '[' (IoT SQL has no indexing: get(a, 0) reads an array's element)"
    ),
    (
      "SELECT upper(a.b[1]) FROM 't'",
      "1:17: expected ',' or ')' after an argument of 'upper', found '[' (IoT SQL has no indexing: get(a, 0) reads an array's element)"
    ),
    ("SELECT 1 + .5 AS r FROM 't'", "1:12: malformed number '.5': a number starts with a digit (write 0.5)"),
    // A `[` that opened an array literal gets no indexing hint, nor one where no expression ended.
    ("SELECT a FROM 't' WHERE [", "1:26: expected an expression after '['"),
    ("SELECT a AS [x] FROM 't'", "1:13: expected an alias name after AS, found '['"),
    (
      "SELECT a FROM 't' WHERE a > .25",
      "1:29: malformed number '.25': a number starts with a digit (write 0.25)"
    ),
    (
      "SELECT -state.reported.* FROM 't'",
      "1:23: '.*' takes the members of an object (state.reported.*), not of an operation, a scalar or an array"
    ),
    (
      "SELECT 'x'.* FROM 't'",
      "1:11: '.*' takes the members of an object (state.reported.*), not of an operation, a scalar or an array"
    ),
    (
      "SELECT value*.5 AS d FROM 't'", "1:14: malformed number '.5': a number starts with a digit (write 0.5)"
    ),
    (
      "SELECT get(select, 0) AS x FROM 't'",
      "1:12: expected an expression after '(' (a field named 'select' is read with get(*, 'select'))"
    ),
    (
      "SELECT isNull(select.x) AS r FROM 't'",
      "1:15: expected an expression after '(' (a field named 'select' is read with get(*, 'select'))"
    ),
    (
      "SELECT a = b = c",
      "1:14: comparisons do not chain: put one of the two comparisons in parentheses (`(a = b) = c`)"
    ),
    (
      "SELECT a < b IN c",
      "1:14: comparisons do not chain: put one of the two comparisons in parentheses (`(a < b) IN c`)"
    ),
    // Clauses of other SQLs, and a misspelt FROM or WHERE, are named.
    (
      "SELECT a FROM 't' GROUP BY a",
      "1:19: expected WHERE or the end of the statement, found 'GROUP' (IoT SQL has no GROUP BY: a rule sees one message at a time)"
    ),
    (
      "SELECT a FORM 't'",
      "1:10: expected FROM, WHERE or the end of the statement, found 'FORM'; did you mean FROM?"
    ),
    ("SELECT a FROM 't' WHERE x > 1 HERE", "1:31: expected the end of the statement, found 'HERE'"),
    (
      "SELECT select FROM 't'",
      "1:8: expected an expression after SELECT (a field named 'select' is read with get(*, 'select'))"
    ),
    (
      "SELECT a FROM 't' WHERE a IN (1,2)",
      "1:32: expected ')' to close the expression opened at 1:30, found ','; a list is an array, [1, 2]"
    ),
    ("SELECT a = NOT b", "1:12: NOT must be in parentheses after '='"),
    ("SELECT a FROM", "1:14: expected a topic filter after FROM, found the end of the statement"),
    ("SELECT a FROM WHERE b", "1:15: expected a topic filter after FROM, found WHERE"),
    ("SELECT a FROM from", "1:15: expected a topic filter after FROM, found FROM"),
    ("SELECT (SELECT a) FROM 't'", "1:17: expected FROM in the nested query, found ')'"),
    (
      "SELECT EXISTS (a) FROM 't'",
      "1:16: EXISTS takes a nested query: EXISTS (SELECT ... FROM ... [WHERE ...])"
    ),
    (
      "SELECT (SELECT a FROM b AS 'c') FROM 't'",
      "1:28: expected a name for the element after AS, found the string 'c'"
    ),
    (
      "SELECT (SELECT a FROM b WHERE c FROM 't'",
      "1:33: expected ')' to close the nested query opened at 1:8, found FROM"
    ),
    ("SELECT +1", "1:8: expected an expression after SELECT (IoT SQL has no unary '+': remove it)"),
    (
      "SELECT a FROM 't';",
      "1:18: unexpected character ';' (a rule is one statement: remove the ';' and anything after it)"
    ),
    // What users of other SQLs write, with what IoT SQL writes instead.
    ("SELECT a FROM 't' WHERE a > 0 && b", "1:31: unexpected character '&'; write AND"),
    ("SELECT b || 'y' FROM 't'", "1:10: unexpected character '|'; write OR, or concat(a, b) to join strings"),
    ("SELECT a FROM 't' WHERE !a", "1:25: unexpected character '!'; write NOT (or <> for 'not equal')"),
    (
      "SELECT `a` FROM 't'",
      "1:8: unexpected character '`' (IoT SQL quotes no names: write the name as it is, or get(*, 'name') for one that is no plain name)"
    ),
    (
      "SELECT a FROM 't' WHERE b LIKE 'x%'",
      "1:27: expected the end of the statement, found 'LIKE' (IoT SQL has no LIKE: use regexp_matches(a, '^pattern$'), startswith(a, 'x') or endswith(a, 'x'))"
    ),
    (
      "SELECT a FROM 't' WHERE a BETWEEN 1 AND 2",
      "1:27: expected the end of the statement, found 'BETWEEN' (IoT SQL has no BETWEEN: write a >= low AND a <= high)"
    ),
    (
      "SELECT a FROM 't' WHERE a IS NULL",
      "1:27: expected the end of the statement, found 'IS' (IoT SQL has no IS NULL: use isNull(a), isUndefined(a), or NOT isNull(a))"
    ),
    // An item that starts with `*` is `*` alone: the operator after it ends the list.
    (
      "SELECT * * 2 AS x FROM 't'",
      "1:10: expected FROM, WHERE or the end of the statement, found '*' (a SELECT item that starts with '*' is '*' alone, the payload's members: write (* * ...) AS name for an operation on the payload)"
    ),
    (
      "SELECT a FROM 't' WHERE b NOT IN ['y']",
      "1:27: expected the end of the statement, found NOT (NOT goes before what it negates: NOT (a IN b))"
    ),
    (
      "SELECT a FROM t/1;",
      "1:18: unexpected character ';' (a rule is one statement: remove the ';' and anything after it)"
    ),
    (
      "SELECT a FROM t/1,t/2",
      "1:18: unexpected character ',' in the topic filter (a rule reads one topic filter: match several topics with a wildcard, '+' or '#')"
    ),
    (
      "SELECT a FROM 't/1', 't/2'",
      "1:20: expected WHERE or the end of the statement, found ',' (a rule reads one topic filter: match several topics with a wildcard, '+' or '#')"
    ),
    ("SELECT a -- comment", "1:10: comments are not supported in IoT-SQL ('--')"),
    ("SELECT a /* c */", "1:10: comments are not supported in IoT-SQL ('/*')"),
    ("SELECT - -1, -(-1)", nil),
  ])
  func errors(sql: String, expected: String?) {
    #expect(parseError(sql) == expected)
  }

  @Test func parseExpressionRequiresTheEnd() {
    #expect(throws: SQLError.self) { try Parser.parseExpression("a b") }
    do {
      _ = try Parser.parseExpression("a b")
    } catch {
      #expect(error.first.message == "expected the end of the expression, found 'b'")
      #expect(error.first.range.start.column == 3)
    }
  }

  // MARK: Templates

  @Test func templateExpressionInsideText() throws {
    let text = "prefix/${topic(2)}/x\n${ upper(a.b) + '}' }tail #"
    let first = try Parser.parseTemplateExpression(in: text, from: 9)
    #expect(first.expression.sExpression == "(topic 2)")
    #expect(first.end == 18)
    #expect(first.expression.range.start == SourceLocation(offset: 9, line: 1, column: 10))
    let second = try Parser.parseTemplateExpression(in: text, from: 23)
    #expect(second.expression.sExpression == "(+ (upper (. a b)) '}')")
    #expect(second.expression.range.start == SourceLocation(offset: 24, line: 2, column: 4))
    #expect(Array(text.utf8)[second.end...].elementsEqual("tail #".utf8))
    let object = try Parser.parseTemplateExpression(in: "${{'a': 1}.a}", from: 2)
    #expect(object.expression.sExpression == "(. {'a': 1} a)")
    #expect(object.end == 13)
  }

  @Test(arguments: [
    ("${}", 2, "1:3: expected an expression after '${'"),
    ("${a", 2, "1:1: this '${' is never closed: expected '}' after its expression"),
    ("x ${ unbalanced", 4, "1:3: this '${' is never closed: expected '}' after its expression"),
    ("x\n${a b}", 4, "2:5: expected '}' to close the template expression, found 'b'"),
    ("${a + }", 2, "1:7: expected an expression after '+'"),
    ("é${'x}", 4, "1:4: unterminated string literal"),
  ])
  func templateErrors(text: String, offset: Int, expected: String) {
    do {
      _ = try Parser.parseTemplateExpression(in: text, from: offset)
      Issue.record("parsed")
    } catch {
      #expect("\(error.first.range.start): \(error.first.message)" == expected)
      #expect(error.source == text)
    }
  }

  @Test func templateOffsetInsideACharacterIsAnError() {
    #expect(throws: SQLError.self) { try Parser.parseTemplateExpression(in: "é${a}", from: 1) }
  }
}
