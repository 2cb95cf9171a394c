import Testing

@testable import IoTSQL

/// The first error of a statement that must not compile, as `line:column: message`.
private func firstError(_ sql: String, version: SQLVersion = .default) -> String? {
  do {
    _ = try Compiler.compile(sql, version: version)
    return nil
  } catch {
    let first = error.first
    return "\(first.range.start): \(first.message)"
  }
}

/// The warnings of a statement that compiles.
private func warnings(_ sql: String) throws -> [String] {
  try Compiler.compile(sql).warnings.map { "\($0.range.start): \($0.message)" }
}

@Suite("Checker: positioned compile errors and warnings")
struct CheckerTests {
  @Test(
    "errors name the position and the problem",
    arguments: [
      ("SELECT lowr(a) FROM 't'", "1:8: unknown function 'lowr'; did you mean 'lower'?"),
      // Another system's name: its IoT SQL function, not the nearest spelling (`now` was `cos`).
      ("SELECT now() FROM 't'", "1:8: unknown function 'now'; did you mean 'timestamp'?"),
      ("SELECT pow(2, 3) FROM 't'", "1:8: unknown function 'pow'; did you mean 'power'?"),
      ("SELECT nvl(a, 0) FROM 't'", "1:8: unknown function 'nvl'; did you mean 'get_or_default'?"),
      (
        "SELECT count(*) AS n FROM 't'",
        "1:8: unknown function 'count': IoT SQL has no aggregate functions, a rule sees one message at a time (an array's elements: a nested query, `(SELECT VALUE ... FROM array)`)"
      ),
      (
        "SELECT a FROM 'a/#/b'",
        "1:18: invalid topic filter 'a/#/b': '#' must be the last level of a topic filter"
      ),
      (
        "SELECT a FROM 't' WHERE a == 1",
        "1:28: expected an expression after '=' (IoT SQL compares with a single '=')"
      ),
      (
        "SELECT +5 AS a FROM 't'",
        "1:8: expected an expression after SELECT (IoT SQL has no unary '+': remove it)"
      ),
      (
        "SELECT -(+a) AS a FROM 't'",
        "1:10: expected an expression after '(' (IoT SQL has no unary '+': remove it)"
      ),
      // Unquoted, at the character itself (it was one to the right); after a two-byte character,
      // by characters; with escapes, at the literal (its text is not the filter's).
      (
        "SELECT a FROM a/#/b",
        "1:17: invalid topic filter 'a/#/b': '#' must be the last level of a topic filter"
      ),
      (
        "SELECT a FROM 'é/#/b'",
        "1:18: invalid topic filter 'é/#/b': '#' must be the last level of a topic filter"
      ),
      (
        "SELECT a FROM '\\u0061/#/b'",
        "1:15: invalid topic filter 'a/#/b': '#' must be the last level of a topic filter"
      ),
      (
        "SET @x = 1, @x = 2 SELECT @x FROM 't'",
        "1:13: variable '@x' is assigned twice; SET variables are assigned once"
      ),
      ("SELECT @y FROM 't'", "1:8: unknown variable '@y'; assign it in the SET clause before use"),
      (
        "SELECT cast(a AS Blob) FROM 't'",
        "1:18: unknown cast type 'Blob'; expected String, Int, Decimal, Double or Boolean"
      ),
      (
        "SELECT a\nFROM 't'\nWHERE upperr(b) = 'X'",
        "3:7: unknown function 'upperr'; did you mean 'upper'?"
      ),
      (
        "SELECT a FROM '$share/g/x'",
        "1:15: '$share/GROUP/filter' is an MQTT shared subscription, not a topic filter: messages are never "
          + "published to such a topic, so the rule would match nothing (to split a stream among "
          + "daemons, run each with --shared-group GROUP)"
      ),
      // The column counts Unicode scalars: a combining mark is one.
      (
        "SELECT a FROM 'e\u{301}/a#'",
        "1:19: invalid topic filter 'e\u{301}/a#': '#' must stand alone in its level of a topic filter"
      ),
      // What brokers refuse to subscribe (mosquitto: malformed UTF-8; the daemon exited 74).
      (
        "SELECT a FROM 'ctl/\u{7}b'",
        "1:20: invalid topic filter 'ctl/\u{7}b': a topic filter cannot contain the control character U+0007, which an MQTT string must not hold (brokers refuse it)"
      ),
    ])
  func errors(sql: String, expected: String) {
    #expect(firstError(sql) == expected)
  }

  @Test("a service function says which AWS service it needs")
  func serviceFunction() throws {
    let message = try #require(firstError("SELECT machinelearning_predict('a','b',*) FROM 't'"))
    #expect(message.hasPrefix("1:8: machinelearning_predict()"))
    #expect(message.contains("AWS service"))
  }

  @Test(
    "2015-10-08 lacks the newer constructs",
    arguments: [
      ("SELECT [1,2] AS a FROM 't'", "1:8: array literals need SQL version 2016-03-23"),
      ("SELECT (SELECT VALUE n FROM e) AS s FROM 't'", "1:8: nested queries need SQL version 2016-03-23"),
    ])
  func olderVersion(sql: String, expected: String) {
    #expect(firstError(sql, version: .v2015_10_08) == expected)
    #expect(firstError(sql) == nil)
  }

  /// A wrong count is told the arity the signature documents: decode takes 2 ('base64'), though 6
  /// are accepted so that 'proto' is refused with its own error ("2 to 6" was said).
  @Test func aWrongArgumentCountIsToldTheDocumentedArity() throws {
    #expect(
      try warnings("SELECT decode('eA==') AS r FROM 'a'") == [
        "1:8: function 'decode' takes 2 arguments but 1 was given; the call is always Undefined"
      ])
  }

  @Test("get_secret() in a statement is a warning (Undefined there); in a template it is not")
  func getSecretInStatement() throws {
    #expect(
      try warnings("SELECT get_secret('k') AS s FROM 'a'") == [
        "1:8: get_secret() is Undefined in a rule's SQL: secrets are read in the templates of an http, kafka or republish action's settings"
      ])
    let parts = try Template.compile("Bearer ${get_secret('k')}").parts
    #expect(parts.count == 2)
    for case .expression(let program) in parts { #expect(program.warnings.isEmpty) }
    // The secret's name is a constant: one from the message would let a device choose the secret.
    for template in ["${get_secret(name)}", "${get_secret('db_' + kind)}", "${get_secret(topic(2))}"] {
      #expect(throws: SQLError.self, "\(template)") { try Template.compile(template) }
    }
    // The secret's type switches its mode and the role ARN is a role: no variable, no field (AWS's
    // SET page); the key may come from anywhere.
    let role = "'arn:aws:iam::123456789012:role/r'"
    for template in [
      "${get_secret('k', @t)}", "${get_secret('k', kind)}", "${get_secret('k', 'SecretString', @r)}",
      "${get_secret('k', 'SecretString', 'key', role)}",
    ] {
      #expect(throws: SQLError.self, "\(template)") {
        try Template.compile(template, variables: ["t", "r"])
      }
    }
    for template in [
      "${get_secret('k', 'SecretString', \(role))}", "${get_secret('k', 'SecretString', key, \(role))}",
      "${get_secret('k', 'Secret' + 'Binary')}",
    ] {
      #expect(throws: Never.self, "\(template)") { try Template.compile(template) }
    }
  }

  /// A FROM of Basic Ingest topics compiles, warned, as a rule without FROM: AWS takes such rules
  /// (deployed for Basic Ingest and for other services' direct invocation); it was an error.
  @Test func aBasicIngestFilterIsARuleWithoutFrom() throws {
    for sql in [
      "SELECT a FROM '$aws/rules/r/#'", "SELECT a FROM '$aws/rules/fall_enricher'",
      "SELECT a FROM '$aws/rules'",
    ] {
      #expect(
        try warnings(sql) == [
          "1:15: rules are not subscribed to Basic Ingest topics: this rule runs as one without FROM, on the "
            + "messages published to '$aws/rules/<its name>/<topic>' only"
        ], "\(sql)")
      #expect(try Compiler.compile(sql).topicFilter == nil, "\(sql)")
    }
    #expect(try Compiler.compile("SELECT a FROM '$aws/rulesx/a'").topicFilter == "$aws/rulesx/a")
  }

  @Test("an eleventh SET variable runs, with a warning at it: AWS IoT refuses more than ten")
  func moreThanTenVariablesWarn() throws {
    let ten = (1...10).map { "@v\($0) = \($0)" }.joined(separator: ", ")
    #expect(try warnings("SET \(ten) SELECT @v10 AS r FROM 't'").isEmpty)
    let sql = "SET \(ten), @v11 = 11, @v12 = 12 SELECT @v12 AS r FROM 't'"
    let column = sql.distance(from: sql.startIndex, to: sql.range(of: "@v11")!.lowerBound) + 1
    #expect(
      try warnings(sql) == [
        "1:\(column): '@v11' is variable 11: AWS IoT refuses more than 10 SET variables in a statement"
      ])
  }

  @Test("an unquoted or double-quoted topic filter and a repeated object key are warnings, not errors")
  func warningsCompile() throws {
    #expect(
      try warnings("SELECT a FROM t") == [
        "1:15: write the topic filter in single quotes, FROM 't', as AWS requires"
      ])
    #expect(
      try warnings("SELECT a FROM \"t/#\"") == [
        "1:15: write the topic filter in single quotes, FROM 't/#', as AWS requires"
      ])
    #expect(
      try warnings("SELECT {'a': 1, 'a': 2} AS o FROM 't'") == [
        "1:8: key 'a' appears twice in this object; the last value wins"
      ])
    #expect(try warnings("SELECT a FROM 't'").isEmpty)
    // A quote inside an unquoted filter is a topic's character (`it's/x`): kept, doubled in the fix.
    #expect(
      try warnings("SELECT a FROM it's/x") == [
        "1:15: write the topic filter in single quotes, FROM 'it''s/x', as AWS requires"
      ])
    // Two SELECT items under one key (a path's last name, or AS), in a statement or a nested query.
    #expect(
      try warnings("SELECT inside.temp, outside.temp, 1 AS x.y, 2 AS x.y, 3 AS x FROM 't'") == [
        "1:21: key 'temp' appears twice in this SELECT (first at 1:8); the last value wins: name one with AS",
        "1:45: key 'x.y' appears twice in this SELECT (first at 1:35); the last value wins: name one with AS",
        "1:55: key 'x' replaces key 'x.y' (set at 1:45) in this SELECT: the earlier value is lost; name one with AS",
      ])
    // A key below an earlier one adds to it when that is an object (a way to extend one): not said.
    #expect(try warnings("SELECT b AS x, a AS x.y, c AS x.z FROM 't'").isEmpty)
    #expect(try warnings("SELECT a AS x.y, b AS x.z, c AS xy FROM 't'").isEmpty)
    // Below a literal that is no object, the key replaces it: said.
    #expect(
      try warnings("SELECT 1 AS a, 2 AS a.b, 'x' AS c, [1] AS d, 3 AS d.e, 4 AS c.f.g FROM 't'") == [
        "1:16: key 'a.b' replaces key 'a' (set at 1:8) in this SELECT: that value is no object to add 'b' to, so it is lost; name one with AS",
        "1:46: key 'd.e' replaces key 'd' (set at 1:36) in this SELECT: that value is no object to add 'e' to, so it is lost; name one with AS",
        "1:56: key 'c.f.g' replaces key 'c' (set at 1:26) in this SELECT: that value is no object to add 'g' to, so it is lost; name one with AS",
      ])
    // A WHERE that is a constant other than a Boolean, and a nested query's FROM written as a topic.
    #expect(
      try warnings("SELECT a FROM 't' WHERE 1") == [
        "1:25: this WHERE is never true, so the rule never runs its actions: only true (or the string 'true') lets a message through"
      ])
    #expect(try warnings("SELECT a FROM 't' WHERE 'yes'").count == 1)
    // A filter between typographic quotes is an error: it would match nothing, silently.
    #expect(
      firstError("SELECT * FROM \u{2018}a/b\u{2019}")
        == "1:15: \u{2018} and \u{2019} are typographic quotes, not SQL's: write the topic filter in single quotes, FROM 'a/b'"
    )
    #expect(
      firstError("SELECT * FROM \u{201C}a/b\u{201D};")?.hasSuffix("FROM 'a/b'") == true,
      "\(String(describing: firstError("SELECT * FROM \u{201C}a/b\u{201D};")))")
    // A WHERE that reads a name the SELECT computes reads the message's (it is evaluated first).
    let aliasRead = try warnings(
      "SELECT temp * 1.8 + 32 AS f, g.h AS k FROM 't' WHERE f > 80 AND f < 200 OR k.x = 1")
    #expect(aliasRead.count == 2, "\(aliasRead)")
    #expect(
      aliasRead.first?.hasPrefix("1:54: the WHERE reads the incoming message's 'f', not the SELECT's 'f'")
        == true)
    #expect(aliasRead.last?.hasPrefix("1:76: the WHERE reads the incoming message's 'k'") == true)
    // Not a name the SELECT copies, a variable, nor a nested query's element field.
    #expect(try warnings("SELECT temp, temp AS t2 FROM 't' WHERE temp > 1").isEmpty)
    #expect(try warnings("SELECT round(temp) AS temp FROM 't' WHERE temp > 30").isEmpty)
    #expect(try warnings("SET @f = a + 1 SELECT @f AS f FROM 't' WHERE @f > 1").isEmpty)
    #expect(try warnings("SELECT a + 1 AS v FROM 't' WHERE EXISTS (SELECT * FROM r WHERE v > 1)").isEmpty)
    #expect(try warnings("SELECT a FROM 't' WHERE false").isEmpty)
    #expect(try warnings("SELECT a FROM 't' WHERE 'TRUE'").isEmpty)
    #expect(
      try warnings("SELECT (SELECT VALUE a FROM 'e') AS x FROM 't'") == [
        "1:29: a nested query reads from a field of the message, not a topic: FROM 'e' is the string 'e', so the query gives Undefined; write FROM e"
      ])
    #expect(
      try warnings("SET @t = 'a/b' SELECT 1 AS r FROM @t") == [
        "1:35: FROM takes the topic filter itself, not a variable: FROM @t is the topic '@t' (SET variables are read in SELECT and WHERE); write the filter in single quotes"
      ])
    // The fix said works: unquoted, x/y divides and my-list subtracts.
    for (text, fix) in [
      ("x/y", "x.y"), ("x.y", "x.y"), ("my-list", "get(*, 'my-list')"), ("end", "get(*, 'end')"),
      ("a//b", "get(*, 'a//b')"), ("_r2", "_r2"),
    ] {
      #expect(Checker.fieldPath(text) == fix, "\(text)")
    }
    #expect(
      try warnings("SELECT (SELECT v, w AS v FROM r) AS q FROM 't'") == [
        "1:19: key 'v' appears twice in this SELECT (first at 1:16); the last value wins: name one with AS"
      ])
    #expect(try warnings("SELECT a.temp AS t1, b.temp AS t2, *, c FROM 't'").isEmpty)
    // IN with a scalar on its right is never true.
    #expect(
      try warnings("SELECT a FROM 't' WHERE a IN (1)") == [
        "1:30: IN needs an array on its right, which this is not: write a IN [...]"
      ])
    #expect(try warnings("SELECT a FROM 't' WHERE a IN [1, 2]").isEmpty)
    // An ordering against a string constant that is no number is always Undefined.
    #expect(
      try warnings("SELECT a FROM 't' WHERE b > 'a'") == [
        "1:29: '>' compares numbers (a string as the number it spells): 'a' is no number, so this is always Undefined, never true; compare strings with = or <>, or with functions (startswith, regexp_matches)"
      ])
    #expect(try warnings("SELECT a FROM 't' WHERE b > '10' AND c <= '-1.5' AND d = 'a'").isEmpty)
    // A hyphenated key written bare is a subtraction: said, with the get() that reads the key.
    #expect(
      try warnings("SELECT my-key AS v, a - b AS w FROM 't'") == [
        "1:8: 'my-key' reads as my - key; for a key with a hyphen write get(*, 'my-key')"
      ])
  }

  /// Values built by SET variables wrapping one another may nest 512 levels, as a payload: 60,000
  /// overflowed the stack when freed. Said once, at the first variable past the limit, and at a
  /// SELECT item that builds past it.
  @Test func valuesNestedPastTheLimitAreRefused() throws {
    func chain(_ count: Int, select: String = "1 AS y") -> String {
      "SET @v0 = 1, " + (1..<count).map { "@v\($0) = [@v\($0 - 1)]" }.joined(separator: ", ")
        + " SELECT \(select) FROM 'a'"
    }
    #expect(throws: Never.self) { try Compiler.compile(chain(513)) }
    for sql in [chain(514), chain(600), chain(513, select: "[@v512] AS y")] {
      #expect {
        try Compiler.compile(sql)
      } throws: { error in
        let errors = ((error as? SQLError)?.diagnostics ?? []).filter { $0.severity == .error }
        return errors.count == 1 && errors[0].message.contains("at most 512, as in a payload")
      }
    }
    let nested = "SET @a = [[1]], @b = {'x': [@a]} SELECT (SELECT VALUE [@b] FROM arr) AS n FROM 'a'"
    #expect(throws: Never.self) { try Compiler.compile(nested) }
  }

  @Test("a constant Int / Int that drops a fraction warns: the quotient is an Int, as AWS's table says")
  func truncatedQuotientsWarn() throws {
    #expect(
      try warnings("SELECT temp * (9 / 5) + 32 AS f, 6 / 3 AS a, 9 / 2.5 AS b, x / 9 AS c FROM 't'") == [
        "1:15: 9 / 5 is 1: an Int divided by an Int is an Int, truncated toward zero, as AWS's operator table "
          + "says; write 1.8 for the fraction"
      ])
    #expect(try warnings("SELECT -7 / 2 AS n FROM 't'").first?.hasPrefix("1:8: -7 / 2 is -3:") == true)
    // Inside calls, arrays and objects too; not a quotient without a fraction (Int.min / -1).
    #expect(try warnings("SELECT round(9 / 5) AS a, [7 / 2] AS b, {'x': 5 / 3} AS c FROM 't'").count == 3)
    #expect(try warnings("SELECT -9223372036854775808 / -1 AS n FROM 't'").isEmpty)
    // A whole Decimal written as one is an Int under 2016-03-23: the warning says so.
    #expect(
      try warnings("SELECT 9.0 / 5.00 AS f FROM 't'") == [
        "1:8: 9 / 5 is 1: an Int divided by an Int is an Int, truncated toward zero, as AWS's operator table "
          + "says (under 2016-03-23 a whole number is an Int even when written with a fraction); write 1.8 for the fraction"
      ])
    #expect(
      try warnings("SELECT -9.0 / 5 AS f FROM 't'").first?.contains(
        "(under 2016-03-23 a whole number is an Int even when written with a fraction)") == true)
    // Under 2015-10-08 a whole Decimal stays one: 9.0 / 5 is 1.8.
    #expect(try Compiler.compile("SELECT 9.0 / 5 AS f FROM 't'", version: .v2015_10_08).warnings.isEmpty)
  }

  @Test("topic(n) past the FROM filter's levels (without #) warns: it is Undefined for every message")
  func unreachableTopicLevelsWarn() throws {
    #expect(
      try warnings("SELECT topic(3) AS a, topic(2) AS b FROM 'a/b'") == [
        "1:8: topic(3) is always Undefined: FROM 'a/b' matches topics of 2 levels only"
      ])
    #expect(try warnings("SELECT topic(3) AS a FROM 'a/#'").isEmpty)
    // Not when the constant is one branch of the argument.
    #expect(try warnings("SELECT topic(CASE WHEN a = 1 THEN 1 ELSE 3 END) AS t FROM 'a/b'").isEmpty)
    #expect(try warnings("SELECT topic(1) AS a FROM 'a'").isEmpty)
  }

  @Test("a wrong argument count or an invalid constant regular expression warns; the call is Undefined")
  func undefinedCallsWarn() throws {
    #expect(
      try warnings("SELECT abs(1,2) FROM 't'") == [
        "1:8: function 'abs' takes 1 argument but 2 were given; the call is always Undefined"
      ])
    let regex = try warnings("SELECT regexp_matches(a, '(') FROM 't'")
    #expect(regex.count == 1)
    #expect(regex.first?.hasPrefix("1:26: invalid regular expression") == true)
    #expect(regex.first?.hasSuffix("; the call is always Undefined") == true)
    // The week-based year written for the year: the JDK takes the pattern, and no text gives a date.
    #expect(
      try warnings("SELECT time_to_epoch(s, 'YYYY-MM-dd') FROM 't'") == [
        "1:25: pattern letter 'Y' is the week-based year, which gives a date only with a week ('w') and a "
          + "day of the week ('e', 'c' or 'E'); the year is 'y'; the call is always Undefined"
      ])
    #expect(try warnings("SELECT time_to_epoch(s, 'YYYY-ww-e') FROM 't'").isEmpty)
    // A pattern without a whole date: no text gives one (a syslog stamp has no year).
    #expect(
      try warnings("SELECT time_to_epoch(s, 'MMM d HH:mm:ss') FROM 't'") == [
        "1:25: the pattern has no year ('yyyy'), and a text gives a date only with one; the call is always Undefined"
      ])
    #expect(
      try warnings("SELECT time_to_epoch(s, 'yyyy-MM') FROM 't'") == [
        "1:25: the pattern has no day ('dd') or day of the year ('DDD'), and a text gives a date only with them; "
          + "the call is always Undefined"
      ])
    // A zone or pattern the JDK refuses too: AWS's call is Undefined. One only this implementation
    // lacks stays an error.
    #expect(
      try warnings("SELECT parse_time('yyyy', t, 'Not/AZone') AS a, parse_time('qqq', t) AS b FROM 't'") == [
        "1:30: unknown time zone 'Not/AZone'; the call is always Undefined",
        "1:60: invalid date-time pattern at offset 0: unknown pattern letter 'q'; the call is always Undefined",
      ])
    #expect(throws: SQLError.self) { try Compiler.compile("SELECT time_to_epoch(s, 'yyyy-FF') FROM 't'") }
    for pattern in ["yyyy-DDD", "uuuu-MM-dd", "yyyy-MM-W-E", "g", "dd MMMM yyyy HH:mm[:ss]"] {
      #expect(try warnings("SELECT time_to_epoch(s, '\(pattern)') FROM 't'").isEmpty, "\(pattern)")
    }
    let program = try Compiler.compile(
      "SELECT abs(x, 2) AS a, regexp_replace(s, 'b', '$9') AS b, 1 AS k FROM 't'")
    var machine = VirtualMachine()
    let evaluation = machine.evaluate(
      program, context: EvaluationContext(topic: "t", payload: Array(#"{"x": -1, "s": "abc"}"#.utf8)))
    #expect(evaluation.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"k":1}"#)
  }
}
