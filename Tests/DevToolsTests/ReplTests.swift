import DevTools
import Foundation
import IoTSQL
import TestSupport
import Testing

@Suite("REPL") struct ReplTests {
  @Test("a script through a pipe: no prompts, plain output, multi-line statements")
  func scriptThroughPipe() throws {
    let script = """
      .payload {"deviceId": "d1", "temp": 35, "t": {"c": 21.5}}
      .topic sensors/7/data
      SELECT deviceId, t.c * 9 / 5 + 32 AS f
        FROM 'sensors/+/data'
        WHERE temp > 30
      SELECT temp FROM 'sensors/+/data' WHERE temp > 100
      SELECT VALUE missing FROM 'sensors/#'
      .quit
      SELECT 1 AS never FROM 'x'

      """
    let (status, out, err) = try runBinary(["repl"], input: script)
    #expect(status == 0)
    #expect(err == "")
    #expect(
      out == """
        payload: 48 bytes, Object
        topic: sensors/7/data
        {
          "deviceId": "d1",
          "f": 70.7
        }
        no match: the WHERE clause is not true for this message
        Undefined (the outgoing payload is empty)

        """)
  }

  @Test("errors carry a caret under the column, a dot-command's its script line; a failed script exits 65")
  func scriptErrors() throws {
    let (status, out, err) = try runBinary(["repl"], input: "SELECT tiemstamp() FROM 'a'\n.bogus\n")
    #expect(status == 65)
    #expect(out == "")
    #expect(
      err == """
        stdin:1:8: error: unknown function 'tiemstamp'; did you mean 'timestamp'?
        SELECT tiemstamp() FROM 'a'
               ^
        stdin:2: error: unknown command '.bogus'; .help lists them

        """)
    // A refused topic fails the script too; --topic is checked as eval checks it.
    let (topicStatus, _, topicErr) = try runBinary(["repl"], input: ".topic b/+\nSELECT 1 AS a FROM 'x'\n")
    #expect(topicStatus == 65)
    #expect(topicErr.hasPrefix("stdin:1: error: the topic 'b/+' contains a wildcard"), "\(topicErr)")
    #expect(try runBinary(["repl", "--topic", "a/#"], input: "").0 == 64)
    // A WHERE on its own line after a one-line statement (which ran) says why it stands alone.
    let (whereStatus, whereOut, whereErr) = try runBinary(
      ["repl"], input: ".payload {\"a\": 2}\nSELECT a FROM 't'\n  WHERE a > 1\n")
    #expect(whereStatus == 65)
    #expect(whereOut.contains("\"a\": 2"), "\(whereOut)")
    #expect(
      whereErr.contains(
        "note: the line before was a whole statement and ran (a line with SELECT and FROM ends one): write WHERE on that line"
      ), "\(whereErr)")
    // A prefix no function has is an error, as `iotrules functions zzz` says.
    let (functionsStatus, _, functionsErr) = try runBinary(["repl"], input: ".functions zzz\n")
    #expect(functionsStatus == 65)
    #expect(functionsErr == "stdin:1: error: no function starts with 'zzz'\n", "\(functionsErr)")
  }

  @Test("an open .payload ends where a command or a statement starts; a payload may span lines")
  func openPayloadEnds() throws {
    let script = """
      .payload {bad
      .payload
      SELECT 1 AS one FROM 'x'
      .payload {"a":
        1}
      SELECT a FROM 'x'
      """
    let (status, out, _) = try runBinary(["repl"], input: script)
    #expect(status == 0)
    #expect(
      out == """
        payload: 4 bytes, not JSON (Binary)
        payload: 4 bytes, not JSON (Binary)
        {bad
        {
          "one": 1
        }
        payload: 10 bytes, Object
        {
          "a": 1
        }

        """)
  }

  @Test("an open statement ends where the next SELECT starts; one typed over lines waits for its WHERE")
  func openStatementEnds() throws {
    let script = """
      SELECT 1 AS x
      SELECT 2 AS y FROM 'q'
      SELECT 3 AS z
        FROM 'q'
        WHERE 1 = 1
      """
    let (status, out, _) = try runBinary(["repl"], input: script)
    #expect(status == 0)
    #expect(
      out == """
        {
          "x": 1
        }
        {
          "y": 2
        }
        {
          "z": 3
        }

        """)
  }

  /// A dot-command ends the open statement (it was read as SQL, and never ran); a nested query
  /// over lines stays one statement: its SELECT and WHERE are not the outer statement's.
  @Test func commandsAndNestedQueriesOverLines() throws {
    let script = """
      .payload {"a": 1, "r": [1, 2, 3]}
      SELECT a AS x
      .topic foo/bar
      SELECT topic() AS t FROM '#'
      SELECT (
        SELECT VALUE v * 10 FROM r AS v WHERE v > 1
      ) AS big FROM 'foo/+'
      SELECT (SELECT VALUE v * 10 FROM r AS v
        WHERE v > 2) AS big
      FROM 'foo/#'
      WHERE EXISTS (SELECT * FROM r AS v WHERE v = 3)
      """
    let (status, out, err) = try runBinary(["repl"], input: script)
    #expect(status == 0, "\(err)")
    let compact = out.filter { !$0.isWhitespace }
    #expect(
      compact == #"payload:24bytes,Object{"x":1}topic:foo/bar{"t":"foo/bar"}{"big":[20,30]}{"big":[30]}"#,
      "\(out)")
    // A script saved with a byte-order mark runs as one without (it was an error at 1:1).
    let (bomStatus, bom, _) = try runBinary(["repl"], input: "\u{FEFF}SELECT 1 AS a FROM 'x'\n")
    #expect(bomStatus == 0 && bom.filter { !$0.isWhitespace } == #"{"a":1}"#, "\(bom)")
    // A bracket left open in error does not take the statements after it.
    let (_, next, _) = try runBinary(
      ["repl", "--payload", #"{"b": 1, "c": 2}"#],
      input: "SELECT (a FROM 't'\nSELECT b FROM 't'\nSELECT c FROM 't'\n")
    #expect(next.filter { !$0.isWhitespace } == #"{"b":1}{"c":2}"#, "\(next)")
  }

  /// A line starting with a name that begins with a keyword (`set_point`, `select_mode`), or a
  /// first line holding one (`from1`), goes on with the statement: they split it (the first line
  /// ran alone, ignoring the WHERE that followed).
  @Test func namesThatBeginWithAKeywordDoNotSplitAStatement() throws {
    let session = ReplSession()
    _ = session.feed(#".payload {"a": 1, "set_point": 20, "from1": 1, "b": 2}"#)
    func answers(_ lines: [String]) -> String {
      var text = ""
      for line in lines + [""] { text += session.feed(line).outputs.map(\.text).joined() }
      return text.filter { !$0.isWhitespace }
    }
    #expect(answers(["SELECT a,", "  set_point AS sp", "FROM 't'"]) == #"{"a":1,"sp":20}"#)
    #expect(answers(["SELECT a,", "select_mode", "FROM 't'"]) == #"{"a":1}"#)
    #expect(answers(["SELECT from1, b", "FROM 't' WHERE b = 3"]).hasPrefix("nomatch"))
  }

  /// A history entry is one line, except where a line break is a string literal's: recalled, `'x`
  /// and `  y'` ran as `'x y'`.
  @Test func historyKeepsTheLineBreaksOfStrings() {
    #expect(ReplSession.historyLine(of: "SELECT a,\n  b\nFROM 't'  ") == "SELECT a, b FROM 't'")
    #expect(ReplSession.historyLine(of: "SELECT 'x\n  y' AS s\nFROM 't'") == "SELECT 'x\n  y' AS s FROM 't'")
    #expect(
      ReplSession.historyLine(of: ".payload {\"a\": \"p\n q\",\n  \"b\": 1}")
        == ".payload {\"a\": \"p\n q\", \"b\": 1}")
    // A doubled quote closes and opens again: the break after it is outside the string.
    #expect(ReplSession.historyLine(of: "SELECT 'it''s'\n  AS s FROM 't'") == "SELECT 'it''s' AS s FROM 't'")
    let session = ReplSession()
    #expect(session.isInString(typing: "SELECT 'de"))
    #expect(!session.isInString(typing: "SELECT 'a' AS de"))
    _ = session.feed("SELECT 'open")
    #expect(session.isInString(typing: "still"))
    #expect(!session.isInString(typing: "closed' AS s"))
  }

  /// A match stopped by the regular-expression step budget is said, as `eval` says it: its
  /// Undefined looked like a member missing, or no match.
  @Test func aRegexStoppedByItsBudgetIsSaid() {
    let session = ReplSession()
    _ = session.feed(#".payload {"s": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}"#)
    let answer = session.feed("SELECT regexp_matches(s, '(a+)+b') AS m FROM 'x'").outputs.map(\.text).joined()
    #expect(answer.contains("1 regular-expression match(es) stopped by the step budget"), "\(answer)")
    let plain = session.feed("SELECT regexp_matches(s, 'a+!') AS m FROM 'x'").outputs.map(\.text).joined()
    #expect(!plain.contains("step budget"), "\(plain)")
    // And for `.rule`, whose SQL (or a template) it may be.
    let folder = temporaryFolder("repl-regex-rule")
    try? #"{"sql": "SELECT regexp_matches(s, '(a+)+b') AS m FROM 'x'", "actions": [{"file": {"path": "o"}}]}"#
      .write(toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    let rule = session.feed(".rule \(folder)/r.json").outputs.map(\.text).joined()
    #expect(rule.contains("1 regular-expression match(es) stopped by the step budget"), "\(rule)")
  }

  /// `.topic -` goes back to a topic made from the statement's FROM (it set the topic `-`).
  @Test func theTopicCanBeTakenFromTheFROMAgain() {
    let session = ReplSession()
    _ = session.feed(".topic a/b")
    _ = session.feed(".topic -")
    let answer = session.feed("SELECT topic() AS t FROM 'x/+'").outputs.map(\.text).joined()
    #expect(answer.contains("x/"), "\(answer)")
    #expect(session.feed(".topic").outputs.map(\.text).joined().contains("from the statement's FROM"))
  }

  /// `.client -` (or `""`) takes the client id away (`""` set a client id of two quotes).
  @Test func theClientIDCanBeTakenAway() {
    let session = ReplSession()
    _ = session.feed(".client dev-1")
    #expect(session.feed("SELECT clientid() AS c FROM 'a'").outputs.map(\.text).joined().contains("dev-1"))
    for none in ["-", "\"\""] {
      _ = session.feed(".client \(none)")
      #expect(session.feed("SELECT clientid() AS c FROM 'a'").outputs.map(\.text).joined().contains("n/a"))
    }
  }

  /// `.context` pins what the context functions return, in `eval --batch`'s shape: its clientid is
  /// `.client`'s; a wrong pin is refused and leaves the pins as they were; `-` unpins.
  @Test func contextPinsTheContextFunctions() {
    let session = ReplSession()
    let sql =
      "SELECT timestamp() AS t, principal() AS p, clientid() AS c, get_user_properties('k') AS k FROM 'a'"
    func answer() -> String { session.feed(sql).outputs.map(\.text).joined().filter { !$0.isWhitespace } }
    #expect(
      session.feed(".context").outputs.map(\.text) == [
        "context: none pinned (timestamp() is the time of each statement)"
      ])
    let pinned = session.feed(
      #".context {"timestamp_ms": 1700000000000, "principal": "p1", "clientid": "c9", "user_properties": {"k": "v"}}"#
    )
    #expect(!pinned.outputs.contains { $0.isError }, "\(pinned)")
    let expected = #"{"t":1700000000000,"p":"p1","c":"c9","k":["v"]}"#
    #expect(answer() == expected)
    #expect(session.feed(".client").outputs.map(\.text) == ["client id: c9"])
    #expect(
      session.feed(".context").outputs.map(\.text) == [
        #"context: {"clientid":"c9","timestamp_ms":1700000000000,"principal":"p1","user_properties":{"k":"v"}}"#
      ])
    for wrong in [
      #".context {"timestamp_ms": "soon"}"#, ".context [1]", ".context nope", #".context {"who": 1}"#,
    ] {
      let refused = session.feed(wrong)
      #expect(refused.outputs.contains { $0.isError }, "\(wrong): \(refused)")
      #expect(answer() == expected, "\(wrong)")
    }
    _ = session.feed(".context -")
    let unpinned = answer()
    #expect(
      unpinned.contains(#""c":"n/a""#) && !unpinned.contains("1700000000000") && !unpinned.contains("p1"),
      "\(unpinned)")
  }

  /// A `.context` object may span lines, as a `.payload` may.
  @Test func contextSpansLines() throws {
    let (status, out, err) = try runBinary(
      ["repl"], input: ".context {\n  \"timestamp_ms\": 42\n}\nSELECT timestamp() AS t FROM 'a'\n")
    #expect(status == 0 && err == "", "\(err)")
    #expect(out.filter { !$0.isWhitespace }.hasSuffix(#"{"t":42}"#), "\(out)")
  }

  /// `.rule` of a disabled rule says it is disabled before what it would do (it was previewed as if
  /// it ran).
  @Test func aDisabledRuleIsSaidDisabled() throws {
    let folder = temporaryFolder("repl-dis")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data(#"{"sql": "SELECT * FROM 'a'", "ruleDisabled": true, "actions": []}"#.utf8).write(
      to: URL(fileURLWithPath: folder + "/dis.json"))
    let session = ReplSession()
    let outputs = session.feed(".rule \(folder)/dis.json").outputs
    let said = outputs.map(\.text)
    #expect(
      said.first?.contains("note: rule dis is disabled (ruleDisabled): run skips it") == true, "\(said)")
    #expect(outputs.first?.isError == true)
  }

  /// On a terminal, a statement typed (or pasted) over lines that fails before its end is said at
  /// once, and the lines after it are its own up to its end, an empty line or `;`: they failed
  /// again each as a statement, with a note that the line before had run.
  @Test func aStatementInErrorOverLinesKeepsItsFollowingLines() {
    let session = ReplSession()
    var said: [String] = []
    for line in ["SELECT a,", "  FROM 't'", "  WHERE a = 1", "  AND b = 2", ""] {
      said += session.feed(line).outputs.map(\.text)
    }
    let text = said.joined(separator: "\n")
    #expect(said.count == 1 && text.contains("2:3: error: expected an expression after ','"), "\(text)")
    #expect(session.prompt == "iot> ")
    // Going on, the prompt says so; a `;` ends it, and so does a statement or a command at once.
    _ = session.feed("SELECT a,")
    _ = session.feed("FROM 't'")
    #expect(session.prompt == "...> ")
    #expect(session.feed("WHERE a = 1;").outputs.isEmpty)
    #expect(session.prompt == "iot> ")
    _ = session.feed("SELECT a,")
    _ = session.feed("FROM 't'")
    let next = session.feed("SELECT 1 AS b FROM 't'").outputs.map(\.text).joined(separator: "\n")
    #expect(next.contains("\"b\": 1") && !next.contains("error"), "\(next)")
    _ = session.feed("SELECT a,")
    _ = session.feed("FROM 't'")
    #expect(session.feed(".version").outputs.first?.text.contains("2016-03-23") == true)
    // So is a first line in error that has no FROM yet (a typo on a pasted statement's first line).
    said = []
    for line in ["SELECT tiemstamp() AS t, a", "  FROM 'x/y'", "  WHERE temp > 3", ""] {
      said += session.feed(line).outputs.map(\.text)
    }
    #expect(said.count == 1 && said[0].contains("unknown function 'tiemstamp'"), "\(said)")
    // A one-line statement ran whole: a clause after it is still its own, with the note.
    _ = session.feed("SELECT a FROM 't' WHERE a = = 1")
    let alone = session.feed("AND b = 2").outputs.map(\.text).joined(separator: "\n")
    #expect(alone.contains("expected SELECT or SET, found AND"), "\(alone)")
  }

  /// `.explain` says the statement's warnings before its listing, as `explain --sql` does.
  @Test func explainSaysTheWarnings() {
    let outputs = ReplSession().feed(".explain SELECT 7/2 AS z FROM 't'").outputs
    #expect(outputs.count == 2, "\(outputs)")
    #expect(outputs.first?.isError == true && outputs.first?.text.contains("warning: 7 / 2 is 3") == true)
    #expect(outputs.last?.text.contains("OutputRecord") == true)
  }

  /// A clause typed after Ctrl-C dropped the statement it continued is said as an error of its
  /// own, without the note that the line before ran (nothing ran); after a statement that ran on
  /// the line before, the note says why the clause stands alone.
  @Test func aClauseAfterCtrlCIsNotSaidToFollowAStatementThatRan() {
    let session = ReplSession()
    _ = session.feed("SELECT a,")
    _ = session.feed("b")
    session.cancel()
    let dropped = session.feed("FROM 't'").outputs.map(\.text).joined(separator: "\n")
    #expect(dropped.contains("error: expected SELECT or SET, found FROM"), "\(dropped)")
    #expect(!dropped.contains("the line before was a whole statement"), "\(dropped)")
    _ = session.feed("SELECT a FROM 't'")
    let after = session.feed("WHERE a > 1").outputs.map(\.text).joined(separator: "\n")
    #expect(after.contains("note: the line before was a whole statement and ran"), "\(after)")
    // In a script, where a statement in error runs at its end (the next line), the note still comes.
    let script = ReplSession()
    script.scriptName = "stdin"
    var said = ""
    for line in ["SELECT a FROM 't'", "WHERE a > 1", "", "SELECT 1 AS b FROM 't'"] {
      said += script.feed(line).outputs.map(\.text).joined(separator: "\n")
    }
    #expect(said.contains("note: the line before was a whole statement and ran"), "\(said)")
  }

  /// `.rule` shows what `check` warns of in the rule, before what it does (they were hidden).
  @Test func aRuleShowsItsWarnings() throws {
    let folder = temporaryFolder("repl-warn")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data(
      #"{"sql": "SELECT 9 / 5 AS f FROM 'a'", "actions": [{"file": {"root": "~/x", "path": "a.jsonl"}}]}"#
        .utf8
    ).write(to: URL(fileURLWithPath: folder + "/w.json"))
    let session = ReplSession()
    let said = session.feed(".rule \(folder)/w.json").outputs
    #expect(
      said.prefix(2).map { $0.isError } == [true, true]
        && said.first?.text.hasPrefix("\(folder)/w.json:1:17: warning: 9 / 5 is 1") == true
        && said.dropFirst().first?.text.hasPrefix(
          "\(folder)/w.json:1:69: warning: rule 'w': 'root' '~/x' begins") == true,
      "\(said)")
    #expect(said.last?.text.hasPrefix("rule w: output") == true, "\(said)")
  }

  /// `.rule` of a test file says which rule file to give, as `explain` does (it said a rule file
  /// holds an object).
  @Test func aTestFileIsNoRule() {
    let session = ReplSession()
    let said = session.feed(".rule \(packageRoot)/Rules/high_temp.test.json").outputs.map(\.text)
    #expect(
      said.first?.hasSuffix(
        "Rules/high_temp.test.json is a rule test file: give .rule its rule file (\(packageRoot)/Rules/high_temp.json)"
      )
        == true, "\(said)")
  }

  /// `.explain` without SQL, after a statement that failed, places the errors where the statement
  /// was written in the script (they read `2:3:`, which looked like the script's line 2).
  @Test func explainOfTheLastStatementPlacesItsErrors() {
    let session = ReplSession()
    session.scriptName = "stdin"
    var said: [String] = []
    for line in [".topic t", "SELECT a,", "  nofn(a) AS b", "  FROM 't'", "", ".explain"] {
      said += session.feed(line).outputs.filter(\.isError).map(\.text)
    }
    // `.explain ;` too: its `;` ends an empty statement, nothing of its own.
    said += session.feed(".explain ;").outputs.filter(\.isError).map(\.text)
    #expect(said.count == 3, "\(said)")
    #expect(said.allSatisfy { $0.hasPrefix("stdin:3:3: error: unknown function 'nofn'") }, "\(said)")
  }

  /// `.explain` of a statement written over several lines lists the whole statement, its end found
  /// as a statement's is (it listed the first line alone, then failed on the FROM).
  @Test func explainTakesAStatementOverSeveralLines() {
    let session = ReplSession()
    session.scriptName = "stdin"
    var outputs: [ReplSession.Output] = []
    for line in [
      ".explain SELECT deviceId, temp", "  FROM 'sensors/+/data'", "  WHERE temp > 30", "",
      ".explain SET @x = temp * 2", "SELECT @x AS y FROM 'b'",
      // Ended by `;`, as a statement is (the `;` was compiled: unexpected character ';').
      ".explain SELECT a", "FROM 't';", ".explain SELECT b FROM 't' ;",
    ] {
      outputs += session.feed(line).outputs
    }
    outputs += session.finish()
    #expect(outputs.allSatisfy { !$0.isError }, "\(outputs.map(\.text))")
    let listings = outputs.map(\.text).filter { $0.contains("addr  opcode") }
    #expect(listings.count == 4, "\(outputs.map(\.text))")
    #expect(
      listings.first?.contains("NoMatch") == true
        && listings.dropFirst().first?.contains("output {y}") == true)
    // A `.explain` in error ends where a statement starts, as a statement in error does (it took
    // the statements after it, which never ran).
    let script = ReplSession()
    script.scriptName = "stdin"
    var said: [ReplSession.Output] = []
    for line in [
      ".explain SELECT a +", "SELECT 2 AS two FROM 't'", ".explain SELECT (a FROM 't'",
      "SELECT 3 AS three FROM 't'",
    ] {
      said += script.feed(line).outputs
    }
    said += script.finish()
    #expect(said.filter(\.isError).count == 2, "\(said.map(\.text))")
    #expect(
      said.contains { $0.text.contains("\"two\": 2") } && said.contains { $0.text.contains("\"three\": 3") })
  }

  /// A dot-command left open (`.context {`) is blamed on its own line, not on the line after that
  /// ends it and runs; `.quit` with an argument is an error, not a quit; a statement without FROM
  /// gets `eval`'s note.
  @Test func openCommandsAndStatementsWithoutFrom() {
    let script = ReplSession()
    script.scriptName = "stdin"
    var outputs: [(text: String, isError: Bool)] = []
    for line in [
      ".context {", "SELECT 1 AS s FROM 't'", ".quit now", "SELECT topic() AS t;", "SELECT 2 AS u;",
    ] {
      outputs += script.feed(line).outputs.map { ($0.text, $0.isError) }
    }
    let errors = outputs.filter { $0.isError && $0.text.contains("error:") }.map(\.text)
    #expect(errors.count == 2, "\(outputs)")
    #expect(errors.first?.hasPrefix("stdin:1: error: .context takes a JSON object") == true, "\(errors)")
    #expect(errors.last == "stdin:3: error: .quit takes no argument, not 'now'", "\(errors)")
    #expect(!script.finished)
    // (Said where the topic is read: not for `SELECT 2 AS u`; on standard error, as `eval` says
    // it, so that a script's standard output holds its results alone.)
    #expect(
      outputs.filter {
        $0.isError && $0.text.contains("note: without FROM, a rule runs only on messages published to")
          && $0.text.contains("evaluated as if 'repl' came that way")
      }.count == 1, "\(outputs)")
  }

  /// In a script an error gives the script's line, and a statement in error takes its next lines
  /// up to its end (no second error for a `WHERE` after a broken `FROM`); on a terminal, the
  /// statement's own line, at once.
  @Test func scriptErrorsGiveTheScriptsLine() {
    let lines = [
      ".topic a/b", "", "-- a comment", "SELECT temp,", "  FROM 'a/+'", "WHERE temp > 1", "",
      "  SELECT (1 + ) FROM 'a'", "", ".explain SELECT (2 + ) FROM 'a'", "SELECT (3 + ) FROM 'a'", ".quit",
    ]
    let script = ReplSession()
    script.scriptName = "stdin"
    var placed: [String] = []
    var whole: [String] = []
    for line in lines {
      let errors = script.feed(line).outputs.filter(\.isError).map(\.text)
      whole += errors
      placed += errors.map { String($0.prefix { $0 != "\n" }) }
    }
    // The script's line is echoed as it was written, so the caret sits under the column given.
    #expect(
      whole.dropFirst().first
        == "stdin:8:15: error: expected an expression after '+'\n  SELECT (1 + ) FROM 'a'\n              ^",
      "\(whole)")
    #expect(
      whole.dropFirst(2).first
        == "stdin:10:22: error: expected an expression after '+'\n.explain SELECT (2 + ) FROM 'a'\n                     ^",
      "\(whole)")
    #expect(
      placed == [
        "stdin:5:3: error: expected an expression after ',' (a SELECT list does not end with ','; remove it)",
        "stdin:8:15: error: expected an expression after '+'",
        "stdin:10:22: error: expected an expression after '+'",
        "stdin:11:13: error: expected an expression after '+'",
      ])
    // The place a message names besides its own (a bracket left open) is the script's too.
    let opened = ReplSession()
    opened.scriptName = "stdin"
    var openedErrors: [String] = []
    for line in ["", "", "SELECT 'x' AS e,", "\t(a", "FROM 'x'", ".quit"] {
      openedErrors += opened.feed(line).outputs.filter(\.isError).map {
        String($0.text.prefix { $0 != "\n" })
      }
    }
    #expect(
      openedErrors == ["stdin:5:1: error: expected ')' to close the expression opened at 4:2, found FROM"],
      "\(openedErrors)")
    let typed = ReplSession()
    var typedErrors: [String] = []
    for line in lines.prefix(5) { typedErrors += typed.feed(line).outputs.filter(\.isError).map(\.text) }
    #expect(
      typedErrors.first?.hasPrefix("2:3: error: expected an expression after ','") == true, "\(typedErrors)")
  }

  @Test("a SET goes on into the SELECT on its next line; a SELECT after a whole statement starts anew")
  func setOverLines() {
    let session = ReplSession()
    #expect(session.feed("SET @x = 2").outputs.isEmpty)
    // Waits for a WHERE that could still come; an empty line runs it, SET and SELECT as one.
    #expect(session.feed("  SELECT @x AS q FROM 'x'").outputs.isEmpty)
    let ran = session.feed("")
    #expect(ran.entries == ["SET @x = 2\n  SELECT @x AS q FROM 'x'"])
    #expect(ran.outputs.map(\.text) == ["{\n  \"q\": 2\n}"])
    // A whole statement still ends where the next SELECT starts.
    #expect(session.feed("SELECT 1 AS a").outputs.isEmpty)
    let both = session.feed("SELECT 2 AS b FROM 'x'")
    #expect(both.outputs.count == 2)
    // Both go into the history (the first was left out).
    #expect(both.entries == ["SELECT 1 AS a", "SELECT 2 AS b FROM 'x'"])
  }

  /// A statement typed over lines goes on after its WHERE line: an `AND` line is part of it (it ran
  /// at its WHERE line, printed a wrong match, and the `AND` line failed as a statement of its own).
  @Test("a WHERE typed over lines takes its AND lines; an empty line or the next statement runs it")
  func whereOverLines() {
    let session = ReplSession()
    _ = session.feed(#".payload {"a": 1, "b": 2}"#)
    for line in ["SELECT a", "FROM 't'", "WHERE a = 1", "  AND b = 3"] {
      #expect(session.feed(line).outputs.isEmpty, "\(line)")
    }
    let ran = session.feed("")
    #expect(ran.outputs.map(\.text) == ["no match: the WHERE clause is not true for this message"])
    #expect(!session.hadError)
    // The next statement ends it as well.
    for line in ["SELECT a", "FROM 't'", "WHERE a = 1", "  OR b = 3"] { _ = session.feed(line) }
    let next = session.feed("SELECT b FROM 't'")
    #expect(next.outputs.map(\.text) == ["{\n  \"a\": 1\n}", "{\n  \"b\": 2\n}"])
  }

  /// A topic or client id with a control character is spelled out when shown back (`.client
  /// <ESC>[2J` cleared the terminal), as `test` spells them.
  @Test func settingsShownBackSpellControlCharacters() {
    let session = ReplSession()
    for (command, shown) in [(".client", "client id: "), (".topic", "topic: ")] {
      let set = session.feed(command + " a\u{1B}[2Jb").outputs.map(\.text).joined()
      #expect(set.contains(shown + "a\\u001B[2Jb") && !set.contains("\u{1B}"), "\(set)")
      let asked = session.feed(command).outputs.map(\.text).joined()
      #expect(asked == shown + "a\\u001B[2Jb", "\(asked)")
    }
  }

  /// A script line that is not UTF-8 is refused at its line and byte (read with U+FFFD in place of
  /// its bytes, `.payload <FF FE>` set a payload of other bytes).
  @Test func aLineThatIsNotUTF8IsRefused() {
    let session = ReplSession()
    session.scriptName = "stdin"
    let refused = session.feed(bytes: Array(".payload ".utf8) + [0xFF, 0xFE]).outputs.map(\.text).joined()
    #expect(
      refused == "stdin:1:10: error: the line is not UTF-8 text (byte 0xFF); it was not read", "\(refused)")
    #expect(session.hadError)
    // Within a statement, the statement goes too: run without the line, it answered for another one.
    _ = session.feed("SELECT 1 AS a")
    _ = session.feed("FROM 't'")
    let dropped = session.feed(bytes: Array("WHERE 1 = 2 -- ".utf8) + [0xFF]).outputs.map(\.text).joined()
    #expect(dropped.hasSuffix("it was not read; the statement it belonged to is dropped"), "\(dropped)")
    #expect(session.feed("").outputs.isEmpty)
    // The dropped statement's later lines are skipped, each said, up to the next statement: they
    // ran as one of their own (`FROM 't'`: an error, and a note that the line before had run).
    _ = session.feed("SELECT a,")
    _ = session.feed(bytes: Array("'".utf8) + [0xFF] + Array("' AS b".utf8))
    #expect(
      session.feed("FROM 't'").outputs.map(\.text) == [
        "stdin:8: note: skipped, the rest of the statement dropped above"
      ])
    #expect(session.feed("SELECT 2 AS c FROM 't'").outputs.map(\.text).joined().contains("\"c\": 2"))
    // The payload is still the default one.
    #expect(
      session.feed(bytes: Array(".payload".utf8)).outputs.map(\.text).joined().hasPrefix(
        "payload: 2 bytes, Object"))
  }

  /// An action the daemon would refuse fails the script, as it fails a rule test's case.
  @Test func aRefusedActionFailsTheScript() throws {
    let folder = temporaryFolder("repl-refused")
    try #"{"sql": "SELECT upper(d) AS dev FROM 'a/+'", "actions": [{"file": {"path": "o/${dev}.jsonl"}}]}"#
      .write(toFile: folder + "/b.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(
      ["repl"], input: ".payload {\"d\": \"x\"}\n.topic a/b\n.rule \(folder)/b.json\n")
    #expect(status == 65)
    #expect(out.contains("\"refused\": \"rendered path '.jsonl' has a hidden name"), "\(out)")
    // A sqlite row the daemon would refuse (a key column the result lacks), as `run` refuses it.
    try #"""
    {"sql": "SELECT d AS dev FROM 'a/+'", "actions": [{"sqlite": {"database": "d.db", "table": "t", "key": "site"}}]}
    """#.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    let (sqliteStatus, sqliteOut, _) = try runBinary(
      ["repl"], input: ".payload {\"d\": \"x\"}\n.topic a/b\n.rule \(folder)/s.json\n")
    #expect(sqliteStatus == 65)
    #expect(sqliteOut.contains("\"refused\": \"the result has no key column 'site'"), "\(sqliteOut)")
  }

  @Test(".rule shows the output and what each action receives")
  func ruleCommand() throws {
    let script = """
      .payload {"deviceId": "dev-42", "temp": 21.5}
      .topic sensors/42/data
      .rule \(packageRoot)/Rules/archive_all.json
      .rule \(packageRoot)/Rules/high_temp.json
      """
    let (status, out, _) = try runBinary(["repl"], input: script)
    #expect(status == 0)
    #expect(out.contains("action file[0] receives"))
    #expect(out.contains(#""path": "archive/42/"#))
    #expect(out.contains("rule high_temp: no match: the WHERE clause is not true for this message"))
    // A rule file that cannot be read is an unreadable input, at the script's line: exit 74.
    let missing = packageRoot + "/Rules/nope.json"
    let (missingStatus, _, missingErr) = try runBinary(["repl"], input: ".rule \(missing)\n")
    #expect(missingStatus == 74)
    #expect(
      missingErr == "stdin:1: error: \(missing): no such file or folder\n",
      "\(missingErr)")
  }

  @Test(
    "statement completeness",
    arguments: [
      ("SELECT a FROM 'x'", true), ("SELECT a", false), ("SELECT a;", true), ("SELECT a,", false),
      ("SELECT a\nFROM 'x'", false), ("SELECT a\nFROM 'x'\nWHERE b > 1", false), ("SELECT (a", false),
      ("SELECT 'open", false), ("SELECT ) FROM 'x'", true),
      // A `;` in a string is its text; escapes and doubled quotes read as the lexer reads them.
      ("SELECT 'x;", false), ("SELECT \"x;", false), (#"SELECT 'a\'b' FROM 'x'"#, true),
      (#"SELECT "a\"b" FROM 'x'"#, true), ("SELECT 'it''s' FROM 'x'", true),
      ("SELECT 'it''s FROM 'x'", false),
      // A member named `from` is no FROM.
      ("SELECT a.from AS b", false), ("SELECT a.from AS b FROM 'x'", true),
    ])
  func completeness(text: String, complete: Bool) {
    #expect(ReplSession.isComplete(text, version: .default) == complete)
  }

  @Test("completion of keywords, functions, commands and payload paths")
  func completion() {
    let payload = Array(#"{"temp": 1, "nested": {"inner": 2, "other": 3}}"#.utf8)
    #expect(Completer.candidates(for: "SEL", atLineStart: true, payload: payload) == ["SELECT"])
    #expect(Completer.candidates(for: "whe", atLineStart: false, payload: payload) == ["where", "when"])
    #expect(Completer.candidates(for: "upp", atLineStart: false, payload: payload) == ["upper"])
    #expect(Completer.candidates(for: "EXI", atLineStart: false, payload: payload) == ["EXISTS"])
    // `cast`, which the catalogue lists with the functions, though it is syntax.
    #expect(Completer.candidates(for: "cas", atLineStart: false, payload: payload) == ["case", "cast"])
    #expect(Completer.candidates(for: "nested.o", atLineStart: false, payload: payload) == ["nested.other"])
    #expect(Completer.candidates(for: "te", atLineStart: false, payload: payload) == ["temp"])
    #expect(Completer.candidates(for: ".pa", atLineStart: true, payload: payload) == [".payload"])
  }

  @Test("NO_COLOR and non-terminals turn colour off")
  func colourDecision() {
    #expect(Styler.decide(isTerminal: true, environment: [:]).enabled)
    #expect(!Styler.decide(isTerminal: true, environment: ["NO_COLOR": "1"]).enabled)
    #expect(Styler.decide(isTerminal: true, environment: ["NO_COLOR": ""]).enabled)
    #expect(!Styler.decide(isTerminal: false, environment: [:]).enabled)
    // What goes to a standard error that is no terminal loses its colour codes.
    let styler = Styler(enabled: true)
    let error = styler.error("error:") + " x " + styler.dim("é")
    #expect(error != "error: x é")
    #expect(Styler.plain(error) == "error: x é")
    #expect(Styler.plain("plain") == "plain")
    // Only its own codes: a statement's escape and what follows it stay.
    #expect(Styler.plain("SELECT '\u{1B}[2J' AS a" + styler.dim("^")) == "SELECT '\u{1B}[2J' AS a^")
    #expect(Styler.plain("a\u{1B}]0;t\u{07}b") == "a\u{1B}]0;t\u{07}b")
  }

  @Test("on a pseudo-terminal: editing, completion, colour, history across sessions")
  func terminal() throws {
    let folder = temporaryFolder("repl-pty")
    let history = folder + "/history"
    let environment = ["IOTRULES_HISTORY": history, "HOME": folder]
    let first = try TerminalSession(["repl"], environment: environment)
    #expect(first.waitFor("iot> "))
    first.send(#".payload {"temp": 35, "nested": {"inner": 7}}"# + "\r")
    #expect(first.waitFor("Object"))
    // Completion: `nes` → `nested`, then `nested.in` → `nested.inner`; a typo erased with Backspace.
    var mark = first.screen.endIndex
    // libedit redraws the completed word's remainder after the cursor: `nes` + `ted`, `.in` + `ner`.
    first.send("SELECT nes\t")
    #expect(first.waitFor("ted", from: mark))
    first.send(".in\t")
    #expect(first.waitFor("ner", from: mark))
    first.send("XY\u{7f}\u{7f} FROM 'a/b'\r")
    // The result, coloured: a cyan key and a yellow number.
    #expect(first.waitFor("\u{1B}[33m7\u{1B}[0m", from: mark))
    #expect(first.screen[mark...].contains("\u{1B}[36m\"inner\"\u{1B}[0m"))
    mark = first.screen.endIndex
    first.send("SELECT VALUE temp\r")
    #expect(first.waitFor("...> ", from: mark))
    first.send("FROM 'a/b'\r\r")
    #expect(first.waitFor("35", from: mark))
    // Wait for the next prompt: libedit flushes typed-ahead input when it re-enters raw mode.
    #expect(first.waitForPrompt(after: "35", from: mark))
    first.send(".quit\r")
    #expect(first.finish() == 0)
    // libedit's history file escapes spaces as \040.
    let saved = try String(contentsOfFile: history, encoding: .utf8).replacingOccurrences(
      of: "\\040", with: " ")
    #expect(saved.contains("SELECT nested.inner FROM 'a/b'"))
    #expect(saved.contains("SELECT VALUE temp FROM 'a/b'"))

    // A new session recalls the history with the Up arrow; NO_COLOR leaves the output plain.
    let second = try TerminalSession(["repl"], environment: environment.merging(["NO_COLOR": "1"]) { $1 })
    #expect(second.waitFor("iot> "))
    second.send(#".payload {"temp": 35, "nested": {"inner": 7}}"# + "\r")
    #expect(second.waitFor("Object"))
    mark = second.screen.endIndex
    second.send("\u{1B}[A\u{1B}[A\u{1B}[A\r")
    #expect(second.waitFor("\"inner\": 7", from: mark))
    #expect(!second.screen.contains("\u{1B}[36m"))
    #expect(second.waitForPrompt(after: "\"inner\": 7", from: mark))
    usleep(300_000)  // the prompt is drawn a moment before the editor switches the terminal to raw mode
    second.send("\u{04}")
    #expect(second.finish() == 0)

    // A statement ended by Ctrl-D runs, on a line of its own, and is remembered as one ended by an
    // empty line is (it ran but was left out of the history).
    let third = try TerminalSession(["repl"], environment: environment.merging(["NO_COLOR": "1"]) { $1 })
    #expect(third.waitFor("iot> "))
    mark = third.screen.endIndex
    third.send("SELECT 2 AS two\r")
    #expect(third.waitFor("...> ", from: mark))
    let secondLine = third.screen.endIndex
    third.send("  FROM 't'\r")
    #expect(third.waitFor("...> ", from: secondLine))
    usleep(300_000)
    third.waitForRawMode()
    third.send("\u{04}")
    #expect(third.finish() == 0)
    let shown = third.screen[mark...]
    #expect(shown.contains("\n{") && shown.contains("\"two\": 2"), "\(shown.debugDescription)")
    let remembered = try String(contentsOfFile: history, encoding: .utf8).replacingOccurrences(
      of: "\\040", with: " ")
    #expect(remembered.contains("SELECT 2 AS two FROM 't'"), "\(remembered)")
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test(
    "on a pseudo-terminal: a Tab in a string or pasted is text; a recalled string keeps its lines; a resize is taken mid-line"
  )
  func tabsHistoryAndResize() throws {
    let folder = temporaryFolder("repl-tabs")
    let environment = ["IOTRULES_HISTORY": folder + "/history", "HOME": folder, "NO_COLOR": "1"]
    let session = try TerminalSession(
      ["repl", "--payload", #"{"deviceId": "d1"}"#], environment: environment)
    #expect(session.waitFor("iot> "))
    #expect(session.waitForRawMode())
    // Typed inside a string literal: the Tab is the string's (it completed `'devi` into `deviceId`).
    var mark = session.screen.endIndex
    session.send("SELECT 'devi")
    #expect(session.waitFor("devi", from: mark))
    session.send("\t")
    usleep(200_000)
    session.send("ce' = concat('devi', chr(9), 'ce') AS same FROM 'x'\r")
    #expect(session.waitFor("\"same\": true", from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: "\"same\": true", from: mark))
    // After characters beyond ASCII (the cursor counted in characters) and a backslash (which
    // libedit's shell quoting took out of the word): still the string's, and the backslash stays.
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    session.send("SELECT 'éééééééé' AS e, 'a\\b d")
    #expect(session.waitFor("b d", from: mark))
    session.send("\t")
    usleep(200_000)
    session.send("x' AS s FROM 'x'\r")
    #expect(session.waitFor("d\\tx\"", from: mark), "\(session.screen[mark...])")
    #expect(session.screen[mark...].contains(#""s": "a\"#), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: "d\\tx\"", from: mark))
    // Pasted (more input behind it): a Tab between words is a blank (it was dropped with a bell).
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    session.send("SELECT\t1 AS a,\t'p\tq' AS b FROM 'x'\r")
    #expect(session.waitFor("\"b\": \"p\\tq\"", from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: "\"b\"", from: mark))
    // Typed at a word, outside strings, it still completes.
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    session.send("SELECT devi")
    #expect(session.waitFor("devi", from: mark))
    session.send("\t")
    #expect(session.waitFor("ceId", from: mark))
    session.send(" FROM 'x'\r")
    #expect(session.waitFor("\"deviceId\": \"d1\"", from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: "\"deviceId\": \"d1\"", from: mark))
    // A statement with a string over two lines, recalled: the same string, run at once.
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    session.send("SELECT 'x\r")
    #expect(session.waitFor("...> ", from: mark))
    #expect(session.waitForRawMode())
    session.send("  y' AS s FROM 'x';\r")
    #expect(session.waitFor(#""s": "x\n  y""#, from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: #""s": "x\n  y""#, from: mark))
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    session.send("\u{1B}[A\r")
    #expect(session.waitFor(#""s": "x\n  y""#, from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: #""s": "x\n  y""#, from: mark))
    // Narrowed mid-line: the line is drawn again in the new width, and Ctrl-A goes to its start
    // on the row above (it kept the old width, and went to a column past the new edge).
    #expect(session.waitForRawMode())
    var size = winsize(ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0)
    _ = ioctl(session.master, UInt(TIOCSWINSZ), &size)
    mark = session.screen.endIndex
    session.send("SELECT 'abcdefghijklmnopqrstuvwxyz0123456789' AS s FROM 'x'")
    #expect(session.waitFor("FROM 'x'", from: mark))
    size.ws_col = 40
    _ = ioctl(session.master, UInt(TIOCSWINSZ), &size)
    // (This pty is not the process's controlling terminal: its SIGWINCH is sent here.)
    kill(session.process.processIdentifier, SIGWINCH)
    mark = session.screen.endIndex
    #expect(
      session.waitFor("iot> SELECT 'abcdefghijklmnopqrstuvwxyz0", from: mark), "\(session.screen[mark...])")
    mark = session.screen.endIndex
    session.send("\u{01}")
    #expect(session.waitFor("\u{1B}[A\u{1B}[6G", from: mark), "\(session.screen[mark...].debugDescription)")
    session.send("\u{05}\r")
    #expect(session.waitFor("\"abcdefghijklmnopqrstuvwxyz0123456789\"", from: mark))
    #expect(session.waitForPrompt(after: "0123456789\"", from: mark))
    #expect(session.waitForRawMode())
    session.send("\u{04}")
    #expect(session.finish() == 0)
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("on a pseudo-terminal: Ctrl-C stops a long result being written, and the session goes on")
  func interruptStopsALongResult() throws {
    let folder = temporaryFolder("repl-flood")
    let payload = folder + "/big.json"
    try Data(#"{"arr": [\#((0..<200_000).map(String.init).joined(separator: ","))]}"#.utf8).write(
      to: URL(fileURLWithPath: payload))
    let session = try TerminalSession(
      ["repl"], environment: ["IOTRULES_HISTORY": folder + "/history", "HOME": folder, "NO_COLOR": "1"])
    #expect(session.waitFor("iot> "))
    #expect(session.waitForRawMode())
    var mark = session.screen.endIndex
    session.send(".payload @\(payload)\r")
    #expect(session.waitFor("Object", from: mark))
    #expect(session.waitForPrompt(after: "Object", from: mark))
    #expect(session.waitForRawMode())
    mark = session.screen.endIndex
    // Unread, the terminal fills and the writer waits; then Ctrl-C (its signal: this pty is not
    // the process's controlling terminal). 2.4 MB were written whole before.
    session.send("SELECT arr FROM 'x'\r")
    usleep(1_500_000)
    kill(session.process.processIdentifier, SIGINT)
    #expect(session.waitFor("^C: the rest of the output is dropped", from: mark))
    #expect(session.waitForPrompt(after: "dropped", from: mark))
    #expect(session.screen[mark...].utf8.count < 1 << 20, "\(session.screen[mark...].utf8.count)")
    #expect(!session.screen[mark...].contains("199999"))
    #expect(session.waitForRawMode())
    session.send("\u{04}")
    #expect(session.finish() == 0)
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("on a pseudo-terminal: Ctrl-C drops the line and the open statement, and the session goes on")
  func interruptDropsTheLine() throws {
    let folder = temporaryFolder("repl-interrupt")
    let history = folder + "/history"
    let session = try TerminalSession(
      ["repl"],
      environment: ["IOTRULES_HISTORY": history, "HOME": folder, "LANG": "C.UTF-8", "NO_COLOR": "1"])
    #expect(session.waitFor("iot> "))
    var mark = session.screen.endIndex
    session.send("SELECT temp AS kept_out\r")
    #expect(session.waitFor("...> ", from: mark))
    usleep(300_000)  // the prompt is drawn a moment before the editor switches the terminal to raw mode
    session.send("FROM 'a")
    #expect(session.waitFor("FROM 'a", from: mark))
    // What a terminal's Ctrl-C does: SIGINT to the process (this pty is not its controlling terminal).
    mark = session.screen.endIndex
    kill(session.process.processIdentifier, SIGINT)
    #expect(session.waitFor("^C", from: mark))
    #expect(session.waitForPrompt(after: "^C", from: mark))
    // A second Ctrl-C on an empty line does not end the session either.
    usleep(300_000)
    mark = session.screen.endIndex
    kill(session.process.processIdentifier, SIGINT)
    #expect(session.waitFor("^C", from: mark))
    #expect(session.waitForPrompt(after: "^C", from: mark))
    usleep(300_000)
    mark = session.screen.endIndex
    session.send("SELECT VALUE 41 + 1 FROM 'a/b'\r")
    #expect(session.waitFor("42", from: mark))
    #expect(session.waitForPrompt(after: "42", from: mark))
    // Typed characters beyond ASCII arrive whole (the editor reads UTF-8 in the terminal's locale).
    usleep(300_000)
    mark = session.screen.endIndex
    session.send("SELECT VALUE upper('é€😀') FROM 'a/b'\r")
    #expect(session.waitFor("\"É€😀\"", from: mark))
    #expect(session.waitForPrompt(after: "\"É€😀\"", from: mark))
    // The dropped statement neither ran (no error) nor joined the next one.
    #expect(!session.screen.contains("error"))
    #expect(!session.screen.contains("kept_out\r\n42"))
    // A typed byte that is not UTF-8 is refused, as in a script (it ran as U+FFFD).
    usleep(300_000)
    mark = session.screen.endIndex
    // Latin-1 `é`, cut short by the quote after it: the byte named is its own, and the quote stays.
    session.send(bytes: Array("SELECT VALUE 'caf".utf8) + [0xE9] + Array("' FROM 'a/b'\r".utf8))
    #expect(session.waitFor("the line is not UTF-8 text (byte 0xE9)", from: mark))
    #expect(session.waitForPrompt(after: "it was not read", from: mark))
    // Deleted before Enter, the bad byte is gone: the line runs.
    usleep(300_000)
    mark = session.screen.endIndex
    session.send(bytes: Array("SELECT VALUE 'x".utf8) + [0xE9, 0x7F] + Array("y' FROM 'a/b'\r".utf8))
    #expect(session.waitFor("\"xy\"", from: mark))
    #expect(session.waitForPrompt(after: "\"xy\"", from: mark))
    // A character typed from the last 256 code points is one, not an escaped byte (2 UTF-16 units,
    // as AWS's length counts).
    usleep(300_000)
    mark = session.screen.endIndex
    session.send("SELECT VALUE length('\u{10FF80}') FROM 'a/b'\r")
    #expect(session.waitFor("\n2", from: mark), "\(session.screen[mark...])")
    #expect(session.waitForPrompt(after: "\n2", from: mark))
    // SIGTERM ends the session with the terminal as it was before the editor's raw mode.
    kill(session.process.processIdentifier, SIGTERM)
    let deadline = Date().addingTimeInterval(10)
    while session.process.isRunning && Date() < deadline { session.pump() }
    var settings = termios()
    #expect(tcgetattr(session.master, &settings) == 0)
    #expect(settings.c_lflag & tcflag_t(ICANON) != 0 && settings.c_lflag & tcflag_t(ECHO) != 0)
    #expect(session.finish() == SIGTERM)
    let saved = (try? String(contentsOfFile: history, encoding: .utf8)) ?? ""
    #expect(!saved.contains("kept_out"))
    #expect(saved.replacingOccurrences(of: "\\040", with: " ").contains("SELECT VALUE 41 + 1 FROM 'a/b'"))
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test(".payload alone previews 2,000 bytes, cut before a character that straddles the limit")
  func payloadPreviewCutsBetweenCharacters() {
    let session = ReplSession()
    // 1,999 bytes, then three-byte euros: the 2,000-byte cut falls inside the first one.
    let text = "{\"s\":\"" + String(repeating: "a", count: 1_993) + "€€€€\"}"
    session.payload = Array(text.utf8)
    let shown = session.feed(".payload").outputs.map(\.text).joined()
    #expect(
      shown.contains(String(repeating: "a", count: 1_993) + "\n")
        || shown.contains(String(repeating: "a", count: 1_993) + " …"), "\(shown.suffix(80))")
    #expect(shown.contains("more bytes"), "\(shown.suffix(80))")
    // Bytes that are not text say so, long or short, and show in base64 as `SELECT *` shows them.
    session.payload = [0xFF] + [UInt8](repeating: 0x41, count: 3_000)
    let binary = session.feed(".payload").outputs.map(\.text).joined()
    #expect(binary.contains("(not UTF-8 text)"), "\(binary.prefix(200))")
    #expect(
      binary.contains(
        "base64:" + Data(session.payload.prefix(2_000)).base64EncodedString() + " … (1001 more bytes)"),
      "\(binary.suffix(80))")
    session.payload = Array("hello".utf8) + [0x00, 0xFF]
    #expect(session.feed(".payload").outputs.map(\.text).joined().contains("base64:aGVsbG8A/w=="))
    // A payload's escape sequences are spelled out, not sent to the terminal.
    session.payload = Array("x\u{1B}]0;PWNED\u{07} y\u{1B}[2J".utf8)
    let escaped = session.feed(".payload").outputs.map(\.text).joined()
    #expect(!escaped.contains("\u{1B}]") && !escaped.contains("\u{1B}[2J"), "\(escaped.debugDescription)")
    #expect(escaped.contains("\\u001B]0;PWNED\\u0007 y\\u001B[2J"), "\(escaped.debugDescription)")
  }

  /// `.payload @FILE` took a 17 MB file that `eval --payload-file` refuses: one limit, one message.
  @Test(".payload @FILE refuses a file over 16 MiB as eval --payload-file does")
  func payloadFileLimit() throws {
    let folder = temporaryFolder("repl-big-payload")
    let big = folder + "/big.bin"
    #expect(FileManager.default.createFile(atPath: big, contents: nil))
    let handle = try #require(FileHandle(forWritingAtPath: big))
    try handle.truncate(atOffset: 17_000_000)
    try handle.close()
    let (status, _, err) = try runBinary(["repl"], input: ".payload {\"a\": 1}\n.payload @\(big)\n.payload\n")
    #expect(status == 65)
    #expect(err == "stdin:2: error: \(big): longer than 16 MiB, the most read\n", "\(err)")
    let (evalStatus, _, evalErr) = try runBinary([
      "eval", "--sql", "SELECT * FROM 't'", "--topic", "t", "--payload-file", big,
    ])
    #expect(evalStatus == 65)
    #expect(evalErr == "iotrules: error: \(big): longer than 16 MiB, the most read\n", "\(evalErr)")
    // The payload before it stays.
    let session = ReplSession()
    _ = session.feed(".payload {\"a\": 1}")
    _ = session.feed(".payload @\(big)")
    // (Compared aside: a failure would print all 17 million bytes.)
    let kept = session.payload == Array("{\"a\": 1}".utf8)
    #expect(kept, "a payload of \(session.payload.count) bytes")
    #expect(session.hadError && !session.hadUnreadableInput)
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// The splitter followed brackets but not quotes: a `;` or an empty line inside a string ended
  /// the statement (`stdin:1:8: error: unterminated string literal`).
  @Test("a string literal goes on over lines: a ';', an empty line or a SELECT inside it is its text")
  func stringsSpanLines() throws {
    let script = #"""
      SELECT 'x;
      y' AS s
      FROM 't'

      SELECT 'p

      q' AS s FROM 't'
      SELECT "a\"
      SELECT b" AS d, 'it''s;' AS e, 'c\';' AS f FROM 't'
      """#
    let (status, out, err) = try runBinary(["repl"], input: script + "\n")
    #expect(status == 0, "\(err)")
    #expect(err == "", "\(err)")
    #expect(
      out == #"""
        {
          "s": "x;\ny"
        }
        {
          "s": "p\n\nq"
        }
        {
          "d": "a\"\nSELECT b",
          "e": "it's;",
          "f": "c';"
        }

        """#, "\(out)")
    // A dot-command still ends a statement whose quote was left open, which then fails.
    let (openStatus, openOut, openErr) = try runBinary(
      ["repl"], input: "SELECT 'open\n\n.topic z\n.topic\n")
    #expect(openStatus == 65)
    #expect(openErr.hasPrefix("stdin:1:8: error: unterminated string literal"), "\(openErr)")
    #expect(openOut == "topic: z\ntopic: z\n", "\(openOut)")
  }
}
