import IoTSQL
import Testing

@testable import RulesEngine
@testable import TestSupport

struct RuleFileTests {
  func errors(_ text: String, file: String = "Rules/test_rule.json") -> [String] {
    do {
      _ = try RuleFile.load(file: file, bytes: Array(text.utf8), builder: RecordingBuilder())
      return []
    } catch {
      return error.diagnostics.map(\.description)
    }
  }

  /// A rule in error still carries its SQL's and templates' warnings, so that one `check` shows
  /// everything to fix (they appeared only once the error was fixed).
  @Test func warningsComeWithErrors() {
    let text =
      #"{"sql": "SELECT temp * 2 AS temp FROM 'a/+'", "actions": [{"record": {"t": "${temp}"}}], "bogus": 1}"#
    do {
      _ = try RuleFile.load(file: "r.json", bytes: Array(text.utf8), builder: RecordingBuilder())
      Issue.record("loaded")
    } catch {
      #expect(
        error.diagnostics.contains { $0.message.hasPrefix("unknown key 'bogus'") }, "\(error.diagnostics)")
      #expect(
        error.warnings.contains { $0.message.contains("reads the incoming message's 'temp'") },
        "\(error.warnings)")
    }
  }

  /// The SQL's own warnings come with its errors too (they were dropped when the statement did not
  /// compile).
  @Test func sqlWarningsComeWithSQLErrors() {
    let text = #"{"sql": "SELECT upper(1,2,3) AS u, nosuch() FROM 'a'", "actions": []}"#
    do {
      _ = try RuleFile.load(file: "r.json", bytes: Array(text.utf8), builder: RecordingBuilder())
      Issue.record("loaded")
    } catch {
      #expect(error.diagnostics.map(\.description) == ["r.json:1:36: error: unknown function 'nosuch'"])
      #expect(
        error.warnings.map(\.position) == [
          FilePosition(line: 1, column: 17), FilePosition(line: 1, column: 67),
        ])
      #expect(
        error.warnings.map(\.message) == [
          "function 'upper' takes 1 argument but 3 were given; the call is always Undefined",
          "rule 'r' has no actions: its results go nowhere, and its messages are acknowledged with nothing written",
        ])
    }
  }

  @Test func jsonSyntaxErrorHasPosition() {
    #expect(
      errors("{\n  \"sql\": \"SELECT * FROM 'a'\",\n  \"actions\": [}\n") == [
        "Rules/test_rule.json:3:15: error: unexpected '}', expected a value"
      ])
  }

  @Test func structuralErrors() {
    let text = """
      {
        "sql": "SELECT * FROM 'a'",
        "ruleName": "bad-name",
        "actoins": [],
        "ruleDisabled": "yes"
      }
      """
    #expect(
      errors(text) == [
        "Rules/test_rule.json:3:15: error: invalid rule name 'bad-name': it must match [a-zA-Z0-9_]{1,128}",
        "Rules/test_rule.json:4:3: error: unknown key 'actoins'; did you mean 'actions'?; expected one of actions, awsIotSqlVersion, description, errorAction, ruleDisabled, ruleName, sql",
        "Rules/test_rule.json:5:19: error: 'ruleDisabled' must be true or false",
      ])
    #expect(errors("{\"description\": \"x\"}").contains("Rules/test_rule.json:1:1: error: missing key 'sql'"))
    // A name with a newline does not split the error line.
    #expect(
      errors(#"{"sql": "SELECT * FROM 'a'", "ruleName": "line\nbreak\u001b[31m"}"#) == [
        #"Rules/test_rule.json:1:42: error: invalid rule name 'line\u000Abreak\u001B[31m': it must match [a-zA-Z0-9_]{1,128}"#
      ])
    // The SQL version: a string, one of AWS's names.
    #expect(
      errors(#"{"sql": "SELECT * FROM 'a'", "awsIotSqlVersion": 2016}"#) == [
        #"Rules/test_rule.json:1:50: error: 'awsIotSqlVersion' must be a string, not a number; expected "2015-10-08", "2016-03-23" or "beta" (AWS's name for the newest)"#
      ])
    #expect(
      errors(#"{"sql": "SELECT * FROM 'a'", "awsIotSqlVersion": "2016"}"#) == [
        #"Rules/test_rule.json:1:50: error: unknown 'awsIotSqlVersion' '2016'; expected "2015-10-08", "2016-03-23" or "beta" (AWS's name for the newest)"#
      ])
    // A YAML `>` scalar's line break, escaped, on the one line.
    #expect(
      errors(#"{"sql": "SELECT * FROM 'a'", "awsIotSqlVersion": "2016-03-23\n"}"#) == [
        #"Rules/test_rule.json:1:50: error: unknown 'awsIotSqlVersion' '2016-03-23\u000A' (a YAML '>' or '|' scalar ends in a line break; '>-' and '|-' do not); expected "2015-10-08", "2016-03-23" or "beta" (AWS's name for the newest)"#
      ])
  }

  @Test func fileNameMustBeAValidRuleName() {
    #expect(
      errors("{\"sql\": \"SELECT * FROM 'a'\"}", file: "Rules/high-temp.json").first?.hasSuffix(
        "invalid rule name 'high-temp': it must match [a-zA-Z0-9_]{1,128} (the name comes from the file "
          + "name: rename the file or set 'ruleName')") == true)
  }

  @Test func actionsAreChecked() {
    let text = """
      {"sql": "SELECT * FROM 'a'",
       "actions": [
         {"republish": {"topic": "x"}},
         {"record": {}, "extra": {}},
         {"record": {"retry": {"attempts": 0}}}
       ]}
      """
    let found = errors(text)
    #expect(
      found.contains {
        $0.hasPrefix("Rules/test_rule.json:3:") && $0.contains("unknown action kind 'republish'")
      })
    #expect(found.contains { $0.hasPrefix("Rules/test_rule.json:4:4:") && $0.contains("exactly one key") })
    #expect(
      found.contains {
        $0.hasPrefix("Rules/test_rule.json:5:38:")
          && $0.contains("'retry.attempts' must be between 1 and 100")
      })
  }

  /// A retry policy's numbers say what they must be; a first backoff above the longest is refused.
  @Test func retryPolicyMistakesAreSaid() {
    let negative = errors(
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"attempts": -1}}}]}"#)
    #expect(
      negative.count == 1 && negative[0].contains("'retry.attempts' must be a whole number between 1 and 100")
    )
    let inverted = errors(
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"initialBackoffMs": 9000, "maxBackoffMs": 1000}}}]}"#
    )
    #expect(
      inverted.count == 1
        && inverted[0].contains("'retry.initialBackoffMs' (9000) is more than 'retry.maxBackoffMs' (1000)"),
      "\(inverted)")
    // A longest backoff written alone below the default first one lowers it.
    #expect(
      errors(#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"maxBackoffMs": 0}}}]}"#)
        .isEmpty)
    #expect(
      errors(
        #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"attempts": 5, "maxBackoffMs": 50}}}]}"#
      )
      .isEmpty)
  }

  /// A number beyond 64 bits (or a huge backoff) is an error at its position, never a crash of
  /// `check` or of a running daemon's reload.
  @Test func hugeNumbersAreErrorsNotCrashes() {
    for number in ["1e19", "1e400", "99999999999999999999", "-1e300"] {
      let found = errors(
        #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"attempts": \#(number)}}}]}"#)
      #expect(found.count == 1 && found[0].contains("'retry.attempts' must be a whole number"), "\(found)")
    }
    let found = errors(
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"retry": {"initialBackoffMs": 86400001}}}]}"#)
    #expect(found.count == 1 && found[0].contains("'retry.initialBackoffMs' must be at most 86400000"))
    // Whatever a policy holds, its backoff neither traps nor leaves a day.
    let wild = RetryPolicy(attempts: 100, initialBackoffMs: Int.max / 2, maxBackoffMs: Int.max)
    #expect(wild.backoffMs(retry: 40, random: 1) == RetryPolicy.longestBackoffMs)
    #expect(
      RetryPolicy(attempts: 3, initialBackoffMs: -5, maxBackoffMs: -1).backoffMs(retry: 2, random: 1) == 0)
  }

  @Test func unknownRetryKeyIsNamed() {
    let found = errors(
      "{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"record\": {\"retry\": {\"jitter\": true}}}]}")
    #expect(
      found == [
        "Rules/test_rule.json:1:64: error: unknown key 'retry.jitter'; expected attempts, initialBackoffMs, "
          + "maxBackoffMs"
      ])
  }

  @Test func tooManyActions() {
    let actions = Array(repeating: "{\"record\": {}}", count: 11).joined(separator: ",")
    #expect(
      errors("{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [\(actions)]}").contains {
        $0.contains("at most 10 actions")
      })
  }

  @Test func stringOffsetsMapThroughEscapes() throws {
    // Offsets inside the decoded string map to the file even after an escape.
    let text = "{\n  \"sql\": \"SELECT \\\"a b\\\" FROM 'x'\"\n}"
    let root = try RuleDocument.parseJSON(Array(text.utf8))
    let sql = try #require(root["sql"])
    #expect(sql.string == "SELECT \"a b\" FROM 'x'")
    #expect(sql.position(ofStringOffset: 0) == FilePosition(line: 2, column: 11))
    #expect(sql.position(ofStringOffset: 7) == FilePosition(line: 2, column: 18))  // the `\"` escape
    #expect(sql.position(ofStringOffset: 8) == FilePosition(line: 2, column: 20))  // `a`
    #expect(sql.position(ofStringOffset: 13) == FilePosition(line: 2, column: 26))  // `F`
  }

  /// Keys are the same when their scalars are: `é` and `e` + U+0301 are two keys (a test's payload
  /// may hold both, as the engine keeps both), in small objects and in large ones (a set of keys).
  @Test func canonicallyEquivalentKeysAreTwoKeys() throws {
    let fillers = (0..<20).map { "\"k\($0)\": 0, " }.joined()
    for prefix in ["", fillers] {
      let root = try RuleDocument.parseJSON(Array("{\(prefix)\"\u{E9}\": 1, \"e\u{301}\": 2}".utf8))
      guard case .object(let members) = root.kind else {
        Issue.record("not an object")
        continue
      }
      #expect(members.suffix(2).map { Array($0.key.unicodeScalars) } == [["\u{E9}"], ["e", "\u{301}"]])
    }
    let error = #expect(throws: RuleSyntaxError.self) {
      try RuleDocument.parseJSON(Array("{\(fillers)\"\u{E9}\": 1, \"\u{E9}\": 2}".utf8))
    }
    #expect(error?.message == "duplicate key '\u{E9}' (first at 1:192)")
  }

  /// A repeated key is reported with the file's other problems, JSON and YAML alike, each said with
  /// where its first use is (it stopped the check of the whole file: the `path` error was hidden).
  @Test func aDuplicateKeyHidesNoOtherProblem() {
    #expect(
      errors(
        #"{"sql": "SELECT * FROM 't'", "description": "x", "description": "y", "actions": [{"record": {"retry": {"attempts": 0}}}]}"#,
        file: "r/d.json") == [
          "r/d.json:1:50: error: duplicate key 'description' (first at 1:30)",
          "r/d.json:1:116: error: 'retry.attempts' must be between 1 and 100",
        ])
    // Three uses in YAML: the later two, each at its place; the keys after them still read.
    #expect(
      errors(
        "sql: \"SELECT * FROM 't'\"\ndescription: x\ndescription: y\ndescription: z\nbogus: 1\n",
        file: "r/d.yaml") == [
          "r/d.yaml:3:1: error: YAML: duplicate key 'description' (first at 2:1)",
          "r/d.yaml:4:1: error: YAML: duplicate key 'description' (first at 2:1)",
          "r/d.yaml:5:1: error: unknown key 'bogus'; expected one of actions, awsIotSqlVersion, description, errorAction, ruleDisabled, ruleName, sql",
        ])
    // The first use is what the rest is judged with.
    let rule = try? RuleFile.load(
      file: "r/k.yaml", bytes: Array("sql: \"SELECT 1 FROM 'a'\"\ndescription: x\ndescription: y\n".utf8),
      builder: RecordingBuilder())
    #expect(rule == nil)
    var duplicates: [RuleSyntaxError] = []
    let node = try? RuleDocument.parseYAML(
      Array("{a: 1, a: 2, a: 3, b: {c: 1, c: 2}}".utf8), duplicates: &duplicates)
    #expect(node?["a"]?.int == 1)
    #expect(node?.members?.map(\.key) == ["a", "b"])
    #expect(node?["b"]?.members?.map(\.key) == ["c"])
    #expect(duplicates.map(\.message).count == 3)
    // Past the 16 repeats a YAML file is read again for, every one found is still said.
    let many = "sql: \"SELECT * FROM 't'\"\n" + (0..<20).map { "description: d\($0)\n" }.joined()
    let said = errors(many, file: "r/m.yaml")
    #expect(said.count == 17, "\(said)")
    #expect(said.first == "r/m.yaml:3:1: error: YAML: duplicate key 'description' (first at 2:1)")
  }

  /// A value of the wrong kind that the file probably meant as the right one is said with how it was
  /// read and what to write: YAML's unquoted `123` is a number, `no` and `1_000` are text under the
  /// YAML 1.2 core schema (YAML 1.1 read a Boolean and a number), JSON's `"false"` is text.
  @Test func aValueReadAsAnotherKindSaysHow() {
    #expect(
      errors(
        "ruleName: 123\nsql: \"SELECT * FROM 't'\"\nruleDisabled: no\ndescription: null\n"
          + "actions:\n  - record: {retry: {attempts: 1_000}}\n",
        file: "r/y.yaml") == [
          "r/y.yaml:1:11: error: 'ruleName' must be a string; YAML reads the unquoted 123 as a number: write '123' for the text",
          "r/y.yaml:3:15: error: 'ruleDisabled' must be true or false; YAML 1.2 reads no as text, not as a Boolean as YAML 1.1 did: write false",
          "r/y.yaml:4:14: error: 'description' must be a string; YAML reads the unquoted null as null: write 'null' for the text",
          "r/y.yaml:6:32: error: 'retry.attempts' must be a whole number between 1 and 100; YAML 1.2 reads 1_000 as text, not as a number: write 1000",
        ])
    #expect(
      errors(
        #"{"sql": "SELECT * FROM 't'", "ruleDisabled": "False", "actions": [{"record": {"retry": {"attempts": "3"}}}]}"#,
        file: "r/j.json") == [
          #"r/j.json:1:46: error: 'ruleDisabled' must be true or false; "False" in quotes is text: write false without quotes"#,
          #"r/j.json:1:101: error: 'retry.attempts' must be a whole number between 1 and 100; "3" in quotes is text: write 3 without quotes"#,
        ])
    // Text that JSON would not read as a number either has no hint (write 0x10 without quotes: no).
    let at = FilePosition(line: 1, column: 1)
    #expect(RuleNode(kind: .string("0x10"), position: at).readingHint(expecting: .number) == "")
    #expect(
      RuleNode(kind: .string("-2.5e3"), position: at).readingHint(expecting: .number)
        == #"; "-2.5e3" in quotes is text: write -2.5e3 without quotes"#)
    // An unquoted true in other letters is YAML 1.2's text, not quoted text.
    #expect(
      errors("sql: \"SELECT * FROM 't'\"\nruleDisabled: tRUE\n", file: "r/t.yaml") == [
        "r/t.yaml:2:15: error: 'ruleDisabled' must be true or false; YAML 1.2 reads tRUE as text (true, True and TRUE are Booleans): write true"
      ])
    // Quoted YAML text and text no Boolean or number reads as have no hint.
    #expect(
      errors("sql: \"SELECT * FROM 't'\"\nruleDisabled: \"yes\"\nruleName: [a]\n", file: "r/q.yaml") == [
        "r/q.yaml:2:15: error: 'ruleDisabled' must be true or false",
        "r/q.yaml:3:11: error: 'ruleName' must be a string",
      ])
  }

  /// A YAML alias repeats its anchor's node: the node's problem is said once, at the anchor, not
  /// once for each use.
  @Test func anAliasedProblemIsSaidOnce() {
    #expect(
      errors(
        "sql: \"SELECT * FROM 'a'\"\nactions:\n  - record: &p {name: x, retry: {attempts: 0}}\n  - record: *p\n",
        file: "r/a.yaml") == ["r/a.yaml:3:44: error: 'retry.attempts' must be between 1 and 100"])
  }

  /// Numbers follow JSON's grammar: what `jq` and the AWS CLI refuse is refused at its place.
  @Test func numbersFollowJSONsGrammar() throws {
    for good in ["0", "-0", "12", "-1.5", "1e3", "1E+3", "2.5e-7", "0.0"] {
      #expect((try? RuleDocument.parseJSON(Array(#"{"n": \#(good)}"#.utf8)))?["n"]?.double != nil, "\(good)")
    }
    // `0x10` is the number 0, then an `x` where a `,` or `}` should be.
    for bad in ["01", "00", "1.", ".5", "+1", "1e", "1e+", "-", "1.e3", "0x10", "1-2"] {
      let error = #expect(throws: RuleSyntaxError.self, "\(bad)") {
        try RuleDocument.parseJSON(Array(#"{"n": \#(bad)}"#.utf8))
      }
      #expect(error?.position == FilePosition(line: 1, column: bad == "0x10" ? 8 : 7), "\(bad)")
    }
  }

  /// libyaml's obscure problems in a rule author's words: a tab indenting, its nesting limit.
  @Test func yamlProblemsAreExplained() {
    for (text, position, message) in [
      ("sql: x\nactions:\n\t- a: 1\n", FilePosition(line: 3, column: 1), "a tab, which YAML does not allow"),
      ("a: " + String(repeating: "[", count: 2000), FilePosition(line: 1, column: 5), "nested too deeply"),
      // YAML 1.1's other line breaks, which libyaml reads as such (a quoted one became a space).
      (
        "# note\u{2028}more\nsql: SELECT 'x\u{2029}y' FROM 'a'\n", FilePosition(line: 1, column: 7),
        "U+2028 is read as a line break"
      ),
      ("sql: \"SELECT 'x\u{85}' FROM 'a'\"\n", FilePosition(line: 1, column: 16), "(\"\\u0085\")"),
    ] {
      let error = #expect(throws: RuleSyntaxError.self) { try RuleDocument.parseYAML(text) }
      #expect(error?.position == position, "\(String(describing: error))")
      #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }
  }

  @Test func yamlPositions() throws {
    let text = "sql: \"SELECT * FROM 'a'\"\nactions:\n  - record:\n      name: x\n"
    let root = try RuleDocument.parseYAML(text)
    let sql = try #require(root["sql"])
    #expect(sql.position(ofStringOffset: 7) == FilePosition(line: 1, column: 14))
    #expect(root.members?.map(\.key) == ["sql", "actions"])
    #expect(root.members?[1].keyPosition == FilePosition(line: 2, column: 1))
  }

  /// YAML tags and merge keys read as YAML means them: `!!str` keeps a number a string, `!!bool`
  /// reads a quoted one, `<<` merges an anchored mapping under the mapping's own keys.
  @Test func yamlTagsAndMergeKeys() throws {
    let text = """
      description: !!str 123
      ruleDisabled: !!bool "false"
      base: &base {a: 1, b: 2}
      more: &more {b: 20, c: 30}
      one:
        <<: *base
        a: 10
      two:
        <<: [*more, *base]
        d: 4

      """
    let root = try RuleDocument.parseYAML(text)
    #expect(root["description"]?.string == "123")
    guard case .bool(false) = root["ruleDisabled"]?.kind else {
      Issue.record("ruleDisabled: \(String(describing: root["ruleDisabled"]?.kind))")
      return
    }
    func numbers(_ key: String) -> [String: String] {
      var found: [String: String] = [:]
      for member in root[key]?.members ?? [] {
        if case .number(let text) = member.value.kind { found[member.key] = text }
      }
      return found
    }
    #expect(numbers("one") == ["a": "10", "b": "2"])
    #expect(numbers("two") == ["b": "20", "c": "30", "a": "1", "d": "4"])
    // Merged members stand where the merge key does, in document order.
    #expect(root["one"]?.members?.map(\.key) == ["b", "a"])
    #expect(root["two"]?.members?.map(\.key) == ["b", "c", "a", "d"])
    // A merged member keeps its own position, in the anchored mapping.
    #expect(
      root["one"]?.members?.first(where: { $0.key == "b" })?.keyPosition == FilePosition(line: 3, column: 20))
    #expect(
      errors("sql: SELECT 1 FROM 'a'\nx:\n  <<: 5\n", file: "r/m.yaml") == [
        "r/m.yaml:3:3: error: YAML: '<<' merges a mapping or a list of mappings"
      ])
    // `!!binary` would be taken as its base64 text (a file named `b3V0L3guanNvbmw=`), and an
    // application tag means nothing here: both refused where they stand. A plain date stays text.
    #expect(
      errors("sql: SELECT 1 FROM 'a'\ndescription: !!binary b3V0L3guanNvbmw=\n", file: "r/b.yaml") == [
        "r/b.yaml:2:14: error: YAML: the tag '!!binary' has no meaning in a rule file (!!str, !!int, !!float, !!bool and !!null do)"
      ])
    #expect(
      errors("sql: SELECT 1 FROM 'a'\ndescription: !custom x\n", file: "r/c.yaml") == [
        "r/c.yaml:2:14: error: YAML: the tag '!custom' has no meaning in a rule file (!!str, !!int, !!float, !!bool and !!null do)"
      ])
    // On a list or a mapping as on a scalar (they passed).
    #expect(
      errors("sql: SELECT 1 FROM 'a'\nactions: !custom []\n", file: "r/s.yaml") == [
        "r/s.yaml:2:10: error: YAML: the tag '!custom' has no meaning in a rule file (!!str, !!int, !!float, !!bool and !!null do)"
      ])
    #expect(
      errors("sql: SELECT 1 FROM 'a'\nactions:\n  - file: !!binary {path: x.jsonl}\n", file: "r/m.yaml") == [
        "r/m.yaml:3:11: error: YAML: the tag '!!binary' has no meaning in a rule file (!!str, !!int, !!float, !!bool and !!null do)"
      ])
    #expect(try RuleDocument.parseYAML("description: 2024-01-01\n")["description"]?.string == "2024-01-01")
  }

  /// Plain scalars read as YAML 1.2's core schema reads numbers, spelled as JSON spells them.
  @Test func yamlNumbersFollowTheCoreSchema() throws {
    let cases: [(String, RuleNode.Kind)] = [
      ("0x10", .number("16")), ("0o17", .number("15")), ("010", .number("10")), ("+5", .number("5")),
      ("-0012.50", .number("-12.50")), (".5", .number("0.5")), ("1.", .number("1.0")),
      ("1.e5", .number("1.0e5")), ("0x+1f", .string("0x+1f")), ("0o-0", .string("0o-0")),
      ("1E+3", .number("1e+3")),
      ("-2.5e-3", .number("-2.5e-3")), ("'.inf'", .string(".inf")), ("\".nan\"", .string(".nan")),
      ("0x1p3", .string("0x1p3")), ("1_000", .string("1_000")), ("0o8", .string("0o8")),
      ("12abc", .string("12abc")),
      ("0xFFFFFFFFFFFFFFFFF", .string("0xFFFFFFFFFFFFFFFFF")), (".", .string(".")),
    ]
    for (text, expected) in cases {
      let node = try RuleDocument.parseYAML("v: \(text)\n")["v"]
      switch (node?.kind, expected) {
      case (.number(let found)?, .number(let spelled)): #expect(found == spelled, "\(text)")
      case (.string(let found)?, .string(let spelled)): #expect(found == spelled, "\(text)")
      default: Issue.record("\(text): \(String(describing: node?.kind))")
      }
    }
    #expect(try RuleDocument.parseYAML("v: 0x100\n")["v"]?.int == 256)
    // The core schema's nulls, all of them; other spellings are text.
    for text in ["null", "Null", "NULL", "~", ""] {
      #expect(try RuleDocument.parseYAML("v: \(text)\n")["v"]?.kindName == "null", "\(text)")
    }
    #expect(try RuleDocument.parseYAML("v: nULL\n")["v"]?.string == "nULL")
    // The core schema's infinities and NaN are floats JSON cannot hold: refused, where they were
    // read as text (a test payload's `{x: .inf}` sent the string ".inf"); quoted, they are text.
    for text in [".inf", "-.Inf", "+.INF", ".NaN"] {
      #expect {
        try RuleDocument.parseYAML("v: \(text)\n")
      } throws: {
        ($0 as? RuleSyntaxError)?.message
          == "YAML: '\(text)' is a float that JSON cannot hold (no infinity or NaN); quote it for the text"
      }
    }
  }

  /// An explicit tag on quoted text of another type is an error, not a string.
  @Test func yamlWrongTagIsAnError() {
    #expect(
      errors("sql: SELECT 1 FROM 'a'\nruleDisabled: !!bool \"maybe\"\n", file: "r/t.yaml") == [
        "r/t.yaml:2:15: error: YAML: 'maybe' is no bool"
      ])
  }

  /// Nested aliases that expand past 64 Ki values and bytes of text plus 8 for each byte of the
  /// file (a "billion laughs" file) are an error, not gigabytes and minutes spent expanding them;
  /// aliases that share an action's settings between a rule's actions stay far below.
  @Test func yamlAliasBombIsRefused() throws {
    var lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    var previous = "a"
    for name in ["b", "c", "d", "e", "f", "g", "h"] {
      lines.append(
        "\(name): &\(name) [" + Array(repeating: "*" + previous, count: 9).joined(separator: ", ") + "]")
      previous = name
    }
    lines.append("sql: SELECT * FROM 'a'")
    let bomb = lines.joined(separator: "\n") + "\n"
    let found = errors(bomb, file: "r/bomb.yaml")
    #expect(found.count == 1)
    let limit = 65_536 + 8 * bomb.utf8.count
    #expect(
      found.first?.contains(
        "the document holds more than \(limit) values and bytes of text once its aliases are expanded")
        == true, "\(found)")
    let shared = """
      sql: SELECT * FROM 'a'
      actions:
        - record: &settings {a: 1, b: [1, 2, 3], c: {d: "x"}}
        - record: *settings
        - record: *settings
      """
    _ = try loadRule(shared, file: "r/shared.yaml", builder: RecordingBuilder())
    // A long anchored text repeated counts by its bytes, not as one value each time.
    let long = "t: &t " + String(repeating: "x", count: 200_000)
    let copies =
      "u: &u [" + Array(repeating: "*t", count: 10).joined(separator: ", ") + "]\n" + "v: ["
      + Array(repeating: "*u", count: 10).joined(separator: ", ") + "]\n"
    #expect(errors(long + "\n" + copies + "sql: SELECT * FROM 'a'\n", file: "r/long.yaml").count == 1)
  }

  /// An alias as a mapping key, and an explicit `?` key, are refused before Yams hashes the key
  /// whole (an alias of nested aliases expanded there, before any budget); quotes and comments
  /// holding the same characters are not keys.
  @Test func yamlAliasKeysAreRefused() {
    #expect(
      errors("a: &a [1, 2]\nb:\n  *a : 1\nsql: SELECT * FROM 'x'\n", file: "r/k.yaml") == [
        "r/k.yaml:3:3: error: YAML: an alias as a mapping key is not supported in rule files"
      ])
    #expect(
      errors("a: &a [1]\nb: [{*a: 1}]\n", file: "r/f.yaml") == [
        "r/f.yaml:2:6: error: YAML: an alias as a mapping key is not supported in rule files"
      ])
    #expect(
      errors("a: &a [1]\n? *a\n: 1\n", file: "r/q.yaml") == [
        "r/q.yaml:2:1: error: YAML: an explicit '?' key is not supported in rule files"
      ])
    // Not keys: an alias as a value or list item, quoted text, a comment, an apostrophe in text.
    let fine = """
      description: it's fine # *a: 2
      extra: ['*a: 1', "*a: 2"]
      defaults: &d {path: x.jsonl}
      sql: "SELECT * FROM 'a/#'"
      actions:
        - file: *d
        - file:
            <<: *d
            fsync: never

      """
    let found = errors(fine, file: "r/fine.yaml")
    // Parsed: what remains are schema errors of this test's builder, none from YAML.
    #expect(!found.isEmpty && !found.contains { $0.contains("YAML") }, "\(found)")
  }

  /// A flow collection as a key expands its aliases there as an alias key does (a 230-byte file
  /// took 19 s and wrote a 100 MB error): refused where it opens, however deep.
  @Test func yamlCollectionKeysAreRefused() {
    var anchors = ["&a [l, l, l, l, l, l, l, l, l]"]
    for (name, previous) in zip(["b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e"]) {
      anchors.append("&\(name) [" + Array(repeating: "*" + previous, count: 9).joined(separator: ", ") + "]")
    }
    let bomb = "[" + anchors.joined(separator: ", ") + "]: 1\nsql: \"SELECT * FROM 't'\"\nactions: []\n"
    #expect(
      errors(bomb, file: "r/key.yaml") == [
        "r/key.yaml:1:1: error: YAML: a collection as a mapping key is not supported in rule files"
      ])
    #expect(
      errors("sql: x\nb: {k: [1, {[*a, 2]: 3}]}\n", file: "r/deep.yaml") == [
        "r/deep.yaml:2:13: error: YAML: a collection as a mapping key is not supported in rule files"
      ])
    // An anchor or a tag before the collection changes nothing.
    for text in ["&k [*a, 2]: 1\n", "!!seq [*a]: 1\n", "b: {&k [*a]: 1}\n", "v: &a [{*b: 1}]\n"] {
      #expect(
        errors(text, file: "r/tagged.yaml").first?.contains("YAML: a") == true
          && errors(text, file: "r/tagged.yaml").first?.contains("mapping key is not supported") == true,
        "\(text): \(errors(text, file: "r/tagged.yaml"))")
    }
    // Brackets in plain text are text, and a collection as a value is no key.
    let fine =
      "description: see [docs] here, {x}\nextra: {a: [1, 2], b: {c: d}}\nsql: \"SELECT * FROM 'a'\"\n"
    #expect(!errors(fine, file: "r/fine.yaml").contains { $0.contains("YAML") })
  }

  /// The lines of a block scalar are text, whatever they look like; an escaped line break in a
  /// double-quoted string still counts as a line for the positions after it.
  @Test func yamlBlockScalarsAreText() {
    let text = """
      description: |
        *Important*: rotates daily.
        ? what
          *x: y
      notes:
        - >-
          *y: z
        - key: |
            *z: w
      sql: "SELECT * FROM 'a'"

      """
    #expect(
      !errors(text, file: "r/block.yaml").contains { $0.contains("YAML") },
      "\(errors(text, file: "r/block.yaml"))")
    // After the block, keys are keys again.
    #expect(
      errors("description: |\n  text\n*a: 1\n", file: "r/after.yaml") == [
        "r/after.yaml:3:1: error: YAML: an alias as a mapping key is not supported in rule files"
      ])
    #expect(
      errors("description: \"x\\\n  y\"\n*a: 1\n", file: "r/escaped.yaml") == [
        "r/escaped.yaml:3:1: error: YAML: an alias as a mapping key is not supported in rule files"
      ])
  }

  /// SQL in a YAML string points at its own character whatever the style: escapes, doubled
  /// quotes, and lines folded into one.
  @Test(arguments: [
    // Double-quoted with a `\n` escape: the error stays on line 1.
    (#"sql: "SELECT a,\n  tiemstamp() FROM 'a'""# + "\n", "1:20"),
    // Double-quoted with `\"` escapes before the error.
    (
      "description: x\nruleDisabled: false\n" + #"sql: "SELECT a, \"b\", tiemstamp() FROM 'a'""# + "\n",
      "3:24"
    ),
    // Plain, over two lines.
    ("sql: SELECT a,\n  tiemstamp() FROM 'a'\n", "2:3"),
    // Single-quoted over two lines, with a doubled quote before the error.
    ("sql: 'SELECT ''x'' AS a,\n  tiemstamp() FROM ''a'''\n", "2:3"),
    // Folded block.
    ("sql: >\n  SELECT a,\n    b, tiemstamp()\n  FROM 'a'\n", "3:8"),
    // Literal block.
    ("sql: |\n  SELECT a,\n    tiemstamp()\n  FROM 'a'\n", "3:5"),
    // CRLF line ends, one line and folded.
    ("ruleName: r\r\nsql: SELECT a, tiemstamp() FROM 'a'\r\n", "2:16"),
    ("sql: >\r\n  SELECT a,\r\n  b,\r\n   tiemstamp() FROM 'a'\r\n", "4:4"),
    // A literal block whose first line is blank; an explicit indentation indicator; a folded block
    // with chomping and a more-indented line.
    ("sql: |\n\n  SELECT a, tiemstamp() FROM 'a'\n", "3:13"),
    ("sql: |2\n    SELECT a, tiemstamp() FROM 'a'\n", "2:15"),
    // The indicator after a tag or an anchor, and a header on a line of its own, count from the key.
    ("sql: !!str |2\n    SELECT a,\n      tiemstamp(b)\n    FROM 't'\n", "3:7"),
    ("sql: &q |2\n    SELECT a,\n      tiemstamp(b)\n    FROM 't'\n", "3:7"),
    ("sql:\n  |1\n   SELECT a,\n     tiemstamp(b)\n   FROM 't'\n", "4:6"),
    ("sql:\n  # the statement\n\n  !!str |1-\n   SELECT a,\n     tiemstamp(b)\n   FROM 't'\n", "6:6"),
    ("sql: >-\n  SELECT a,\n   tiemstamp() FROM 'a'\n", "3:4"),
    // An escaped line break and a \u escape.
    (#"sql: "SELECT '\u00e9', \"# + "\n" + #"   tiemstamp() FROM 'a'""# + "\n", "2:4"),
  ])
  func yamlSQLErrorsPointAtTheirCharacter(_ text: String, _ at: String) {
    let found = errors(text, file: "r/y.yaml")
    #expect(found.first?.hasPrefix("r/y.yaml:\(at): error: ") == true, "\(found)")
  }

  /// A block scalar's indentation indicator counts from its parent's indentation, as YAML does: a
  /// key's column past the `- ` of the entry it sits in (the line's indentation was counted, two
  /// columns short), a sequence entry's `-`.
  @Test func blockIndentCountsFromTheParentNode() {
    func indent(_ text: String, header: FilePosition) -> Int {
      RuleDocument.blockIndent(header: header, lines: RuleDocument.scalarLines(text))
    }
    let headers = "      headers:\n        - value: |2-\n            a${x}\n          key: X-A\n"
    #expect(indent(headers, header: FilePosition(line: 2, column: 18)) == 12)
    #expect(indent("items:\n  - |1\n    text\n", header: FilePosition(line: 2, column: 5)) == 3)
    #expect(indent("a:\n  b: >2\n      text\n", header: FilePosition(line: 2, column: 6)) == 4)
    // No indicator: the first line that is not blank.
    #expect(indent("a: |\n\n     text\n", header: FilePosition(line: 1, column: 4)) == 5)
  }

  /// A JSON rule file's lines end at LF, CRLF or a lone CR alike, as in an editor and a YAML file.
  @Test(arguments: ["\n", "\r\n", "\r"])
  func jsonLineEndsOfEveryKindCount(_ end: String) {
    let text =
      ["{", #"  "sql": "SELECT * FROM 'a'","#, #"  "actions": [ {"file": {"path": "o.jsonl"}} ,]"#, "}"]
      .joined(separator: end) + end
    #expect(errors(text).first?.hasPrefix("Rules/test_rule.json:3:47: error: ") == true, "\(errors(text))")
    let sql = ["{", #"  "actions": [],"#, #"  "sql": "SELECT tiemstamp() FROM 'a/b'""#, "}"].joined(
      separator: end)
    #expect(errors(sql).first?.hasPrefix("Rules/test_rule.json:3:18: error: ") == true, "\(errors(sql))")
  }

  @Test func sqlErrorsMapToTheFile() {
    // Needs the real compiler: the error inside the SQL string lands on its file line and column.
    let text = "{\n  \"description\": \"x\",\n  \"sql\": \"SELECT tiemstamp() FROM 'a/b'\"\n}"
    let found = errors(text)
    #expect(found.count == 1)
    #expect(found.first?.hasPrefix("Rules/test_rule.json:3:18: error: ") == true, "\(found)")
  }

  /// A message naming a second place (the bracket left open) names it in the file's terms too.
  @Test func bothPlacesOfAnSQLErrorMapToTheFile() {
    #expect(
      errors("{\n  \"sql\": \"SELECT (a + b FROM 'a/b'\"\n}") == [
        "Rules/test_rule.json:2:25: error: expected ')' to close the expression opened at 2:18, found FROM"
      ])
    #expect(
      errors("sql: |\n  SELECT CASE a\n    WHEN 1 THEN 2\n  FROM 'a/b'\n", file: "r/c.yaml") == [
        "r/c.yaml:4:3: error: expected WHEN, ELSE or END to close the CASE at 2:10, found FROM"
      ])
  }

  /// A byte that is not UTF-8 is an error where it is, in JSON and YAML alike, never replaced
  /// quietly; a byte-order mark takes no column.
  @Test func invalidUTF8IsAnErrorAtItsByte() {
    func errors(_ bytes: [UInt8], file: String) -> [String] {
      do {
        _ = try RuleFile.load(file: file, bytes: bytes, builder: RecordingBuilder())
        return []
      } catch {
        return error.diagnostics.map(\.description)
      }
    }
    let json = Array("{\n  \"description\": \"caf\u{e9} ".utf8) + [0xFF] + Array("\",\n}".utf8)
    #expect(
      errors(json, file: "r/u.json") == [
        "r/u.json:2:24: error: invalid UTF-8 (byte 0xff): rule and test files must be UTF-8"
      ])
    let yaml = Array("sql: SELECT * FROM 'a'\ndescription: x".utf8) + [0xC3, 0x28] + Array("\n".utf8)
    #expect(
      errors(yaml, file: "r/u.yaml") == [
        "r/u.yaml:2:15: error: invalid UTF-8 (byte 0xc3): rule and test files must be UTF-8"
      ])
    // A UTF-16 file, with a byte-order mark or without, is said to be one.
    let text = #"{"sql": "SELECT * FROM 'a'"}"#
    let littleEndian: [UInt8] = text.utf16.flatMap { unit -> [UInt8] in
      [UInt8(unit & 0xFF), UInt8(unit >> 8)]
    }
    let bigEndian: [UInt8] = text.utf16.flatMap { unit -> [UInt8] in [UInt8(unit >> 8), UInt8(unit & 0xFF)] }
    for bytes in [[0xFF, 0xFE] + littleEndian, bigEndian] {
      #expect(
        errors(bytes, file: "r/w.json") == [
          "r/w.json:1:1: error: the file is UTF-16 (as Windows PowerShell's '>' writes text): rule and test files must be UTF-8; save it as UTF-8"
        ])
    }
    // Overlong and surrogate forms are refused too.
    #expect(errors(Array("{\"a\": \"".utf8) + [0xC0, 0x80] + Array("\"}".utf8), file: "r/o.json").count == 1)
    #expect(
      errors(Array("{\"a\": \"".utf8) + [0xED, 0xA0, 0x80] + Array("\"}".utf8), file: "r/s.json").count == 1)
    let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    #expect(
      errors(bom + Array("sql: \"SELECT tiemstamp() FROM 'a'\"\n".utf8), file: "r/b.yaml") == [
        "r/b.yaml:1:14: error: unknown function 'tiemstamp'; did you mean 'timestamp'?"
      ])
    #expect(
      errors(bom + Array("{\"sql\": \"SELECT tiemstamp() FROM 'a'\"}".utf8), file: "r/b.json") == [
        "r/b.json:1:17: error: unknown function 'tiemstamp'; did you mean 'timestamp'?"
      ])
  }

  /// A YAML syntax error says where, once, and what was being read.
  @Test func yamlSyntaxError() {
    let text = "sql: \"SELECT * FROM 'a'\"\nactions:\n  - file:\n      path: x\n     bad: 1\n"
    #expect(
      errors(text, file: "r/bad.yaml") == [
        "r/bad.yaml:5:6: error: YAML: while parsing a block mapping at 3:5: did not find expected key"
      ])
  }

  /// A control character YAML does not allow is pointed at and named (it was placed at 1:1).
  @Test func yamlControlCharactersArePlaced() {
    #expect(
      errors("sql: \"SELECT 1 FROM 'a'\"\ndescription: \"caf\u{E9} a\u{1B}b\"\n", file: "r/c.yaml") == [
        "r/c.yaml:2:21: error: YAML: control characters are not allowed (U+001B): write it escaped in a double-quoted string (\"\\u001B\")"
      ])
    // Columns count scalars, as every other position: two combining marks are two.
    #expect(
      errors("sql: \"SELECT 1 FROM 'a'\"\ndescription: \"e\u{301}\u{301}x\u{7F}\"\n", file: "r/c.yaml").first?
        .hasPrefix("r/c.yaml:2:19: error:") == true)
  }

  /// A duplicate key points at its second use; a second document at its marker; one position each.
  @Test func yamlDuplicateKeyAndSecondDocument() {
    #expect(
      errors("description: x\nsql: SELECT 1 FROM 'a'\nsql: SELECT 2 FROM 'a'\n", file: "r/d.yaml") == [
        "r/d.yaml:3:1: error: YAML: duplicate key 'sql' (first at 2:1)"
      ])
    // A key of a nested mapping with the same name is not the duplicate.
    #expect(
      errors("sql: SELECT 1 FROM 'a'\nextra:\n  - sql: q\nsql: b\n", file: "r/n.yaml").last
        == "r/n.yaml:4:1: error: YAML: duplicate key 'sql' (first at 1:1)")
    // The second use, however it is written: a space before the colon, a tag or an anchor first,
    // an escaped spelling, or in a flow mapping (each pointed at its first use, or the wrong way round).
    let sql = "sql: \"SELECT 1 FROM 'a'\"\n"
    for (text, said) in [
      (
        sql + "actions: []\nruleName: a\nruleName : b\n",
        "4:1: error: YAML: duplicate key 'ruleName' (first at 3:1)"
      ),
      (sql + "!!str sql: x\n", "2:7: error: YAML: duplicate key 'sql' (first at 1:1)"),
      (sql + "&x sql: x\n", "2:4: error: YAML: duplicate key 'sql' (first at 1:1)"),
      (sql + "\"s\\x71l\": x\n", "2:1: error: YAML: duplicate key 'sql' (first at 1:1)"),
      (
        sql + "actions:\n  - file: {path: o/x.jsonl,\n           path: o/y.jsonl}\n",
        "4:12: error: YAML: duplicate key 'path' (first at 3:12)"
      ),
      (
        sql + "actions:\n  - file: {path: a, retry: {attempts: 1, 'attempts': 2}}\n",
        "3:42: error: YAML: duplicate key 'attempts' (first at 3:29)"
      ),
      // Apostrophes in plain text, escaped quotes, comments and escapes do not mislead it.
      (
        sql + "actions:\n  - file: {a: don't, path: x, b: won't, path: y}\n",
        "3:41: error: YAML: duplicate key 'path' (first at 3:22)"
      ),
      (
        sql + "actions:\n  - file: {path: \"a\\\", path: c\", path: d}\n",
        "3:34: error: YAML: duplicate key 'path' (first at 3:12)"
      ),
      (
        sql + "actions:\n  - file: {path: a, # x, path: z {\n           path: b}\n",
        "4:12: error: YAML: duplicate key 'path' (first at 3:12)"
      ),
      (sql + "\"\\e[1m\": 1\n\"\\e[1m\": 2\n", "3:1: error: YAML: duplicate key '\\u001B[1m' (first at 2:1)"),
    ] {
      // Beside the file's other problems (the test builder has no file action).
      #expect(errors(text, file: "r/k.yaml").contains("r/k.yaml:" + said), "\(text)")
    }
    #expect(
      errors("sql: SELECT 1 FROM 'a'\n---\nsql: b\n", file: "r/m.yaml") == [
        "r/m.yaml:2:1: error: YAML: expected a single document in the stream at 1:1: but found another document"
      ])
  }

  @Test func yamlRuleLoadsAndMapsSQLErrors() throws {
    let rule = try RuleFile.load(
      file: "r/yaml_rule.yaml",
      bytes: Array("sql: SELECT * FROM 'a/b'\nactions:\n  - record:\n      name: y\n".utf8),
      builder: RecordingBuilder())
    #expect(rule.name == "yaml_rule")
    #expect(rule.actions.count == 1)
    #expect(
      errors("description: x\nsql: \"SELECT tiemstamp() FROM 'a'\"\n", file: "r/bad.yml").first?.hasPrefix(
        "r/bad.yml:2:14: error: ") == true)
  }

  @Test func validRuleLoads() throws {
    let rule = try loadRule(
      """
      {"sql": "SELECT * FROM 'sensors/+/data'", "ruleName": "copy_all",
       "actions": [{"record": {"name": "a", "retry": {"attempts": 5, "initialBackoffMs": 10, "maxBackoffMs": 20}}}],
       "errorAction": {"record": {"name": "err"}}}
      """, builder: RecordingBuilder())
    #expect(rule.name == "copy_all")
    #expect(rule.topicFilter == "sensors/+/data")
    #expect(rule.actions.first?.retry == RetryPolicy(attempts: 5, initialBackoffMs: 10, maxBackoffMs: 20))
    #expect(rule.errorAction != nil)
  }

  @Test func awsWrappedPayloadLoads() throws {
    let rule = try loadRule(
      """
      {"ruleName": "wrapped", "topicRulePayload": {"sql": "SELECT * FROM 'a/#'", "awsIotSqlVersion": "2015-10-08",
       "actions": [{"record": {}}]}, "tags": "team=data&env=prod"}
      """, builder: RecordingBuilder())
    #expect(rule.name == "wrapped")
    #expect(rule.program.version == .v2015_10_08)
    #expect(rule.warnings.isEmpty)
    // A second, different name inside the payload would be ignored: refused where it is.
    #expect(
      errors(#"{"ruleName": "outer", "topicRulePayload": {"sql": "SELECT * FROM 'a'", "ruleName": "inner"}}"#)
        == [
          "Rules/test_rule.json:1:84: error: 'ruleName' is given twice, beside 'topicRulePayload' and in it, with different values: give one"
        ])
    // A missing 'sql' is said at the wrapped rule, not at the file's start.
    #expect(
      errors("{\"ruleArn\": \"arn:x\",\n \"rule\": {\"ruleName\": \"r\", \"actions\": []}}")
        == ["Rules/test_rule.json:2:10: error: missing key 'sql'"])
    // boto3's get_topic_rule adds `ResponseMetadata` beside the get-topic-rule output.
    let dumped = try loadRule(
      #"{"ruleArn": "arn:x", "rule": {"ruleName": "r", "sql": "SELECT * FROM 'a'", "awsIotSqlVersion": "2016-03-23", "actions": [{"record": {}}]}, "ResponseMetadata": {"HTTPStatusCode": 200}}"#,
      builder: RecordingBuilder())
    #expect(dumped.name == "r")
  }

  /// A warning that names a second place in the SQL (`first at`) names it in the file, as the
  /// warning's own place is: it named the place within the statement (`1:8` for `3:10`).
  @Test func aWarningsSecondPlaceIsInTheFile() throws {
    let rule = try loadRule(
      "description: pad\nsql: |\n  SELECT a AS x.y,\n         b AS x, c AS x\n  FROM 'a/b'\nactions: [{record: {}}]\n",
      file: "r/dup.yaml", builder: RecordingBuilder())
    #expect(
      rule.warnings.map { "\($0.position): \($0.message)" } == [
        "4:10: key 'x' replaces key 'x.y' (set at 3:10) in this SELECT: the earlier value is lost; name one with AS",
        "4:18: key 'x' appears twice in this SELECT (first at 4:10); the last value wins: name one with AS",
      ])
  }

  /// A template that reads a name the SELECT computes reads the message's field of that name (as in
  /// AWS): a warning at the template's expression; a name the SELECT copies unchanged, or a SET variable, is none.
  @Test func templatesReadingComputedNamesWarn() throws {
    let rule = try loadRule(
      """
      {"sql": "SET @f = temp * 1.8 + 32 SELECT deviceId, temp * 1.8 + 32 AS temp, s.inner FROM 'a/#'",
       "actions": [{"record": {"name": "x/${temp}/${deviceId}/${@f}"}}, {"record": {"name": "${inner}"}}]}
      """, builder: RecordingBuilder())
    #expect(
      rule.warnings.map(\.position) == [FilePosition(line: 2, column: 39), FilePosition(line: 2, column: 90)])
    #expect(
      rule.warnings.first?.message.hasPrefix(
        "the template reads the incoming message's 'temp', not the SELECT's 'temp' (templates see the message and SET variables, as in AWS)"
      )
        == true)
    let plain = try loadRule(
      #"{"sql": "SELECT deviceId, temp FROM 'a/#'", "actions": [{"record": {"name": "${temp}-${deviceId}"}}]}"#,
      builder: RecordingBuilder())
    #expect(plain.warnings.isEmpty)
  }

  /// The compiler's warnings about a template's expressions are the rule's warnings, at their place
  /// in the file, as the SQL's are.
  @Test func templateExpressionWarningsAreReported() throws {
    let rule = try loadRule(
      """
      {"sql": "SELECT * FROM 'a/#'",
       "actions": [{"record": {"name": "x/${upper(a, b)}"}}], "errorAction": {"record": {"n": "${lower()}"}}}
      """, builder: RecordingBuilder())
    #expect(
      rule.warnings.map(\.position) == [FilePosition(line: 2, column: 39), FilePosition(line: 2, column: 92)])
    #expect(
      rule.warnings.first?.message
        == "in template: function 'upper' takes 1 argument but 2 were given; the call is always Undefined")
  }

  /// A template reading a topic level past the FROM filter's (no `#`) is empty for every message:
  /// said at the call (a republish to `out/${topic(3)}` under `FROM 'a/b'` failed every result).
  @Test func aTopicLevelPastTheFilterWarns() throws {
    let rule = try loadRule(
      #"{"sql": "SELECT * FROM 'a/b'", "actions": [{"record": {"name": "out/${topic(3)}"}}]}"#,
      builder: RecordingBuilder())
    #expect(
      rule.warnings.map(\.message) == [
        "in template: topic(3) is always Undefined: FROM 'a/b' matches topics of 2 levels only"
      ])
    #expect(rule.warnings.first?.position == FilePosition(line: 1, column: 71))
    for sql in ["SELECT * FROM 'a/#'", "SELECT * FROM 'a/+/c'"] {
      let fine = try loadRule(
        #"{"sql": "\#(sql)", "actions": [{"record": {"name": "out/${topic(3)}"}}]}"#,
        builder: RecordingBuilder())
      #expect(fine.warnings.isEmpty, "\(sql)")
    }
  }

  /// A rule without actions is valid, as in AWS, but its results go nowhere: an enabled one says so,
  /// at its `actions` (or its start when it has none).
  @Test func aRuleWithoutActionsWarns() throws {
    let empty = try loadRule(#"{"sql": "SELECT * FROM 'a/#'", "actions": []}"#, builder: RecordingBuilder())
    #expect(
      empty.warnings.map(\.message) == [
        "rule 'test_rule' has no actions: its results go nowhere, and its messages are acknowledged with nothing written"
      ])
    #expect(empty.warnings.first?.position == FilePosition(line: 1, column: 43))
    let missing = try loadRule(#"{"sql": "SELECT * FROM 'a/#'"}"#, builder: RecordingBuilder())
    #expect(missing.warnings.first?.position == FilePosition(line: 1, column: 1))
    let disabled = try loadRule(
      #"{"sql": "SELECT * FROM 'a/#'", "ruleDisabled": true}"#, builder: RecordingBuilder())
    #expect(disabled.warnings.isEmpty)
  }

  /// AWS's API runs a rule without `awsIotSqlVersion` as 2015-10-08; here the default is 2016-03-23:
  /// a rule copied in AWS's shape without the key says so.
  @Test func awsShapedRuleWithoutVersionWarns() throws {
    let rule = try loadRule(
      """
      {"ruleName": "wrapped", "topicRulePayload": {"sql": "SELECT * FROM 'a/#'", "actions": [{"record": {}}]}}
      """, builder: RecordingBuilder())
    #expect(rule.program.version == .v2016_03_23)
    #expect(
      rule.warnings.map(\.message) == [
        "'topicRulePayload' without 'awsIotSqlVersion': this rule runs as 2016-03-23 here, while AWS's API runs it as 2015-10-08; say which"
      ])
    #expect(rule.warnings.first?.position == FilePosition(line: 1, column: 25))
  }

  /// AWS IoT refuses a rule whose SQL is over 256 KB; here it runs, with a warning at the `sql` key.
  @Test func sqlOverAWSQuotaWarns() throws {
    let items = (0..<30_000).map { "abcdef\($0)" }.joined(separator: ", ")
    let sql = "SELECT \(items) FROM 'a/#'"
    #expect(sql.utf8.count > RuleFile.maxSQLBytes)
    let rule = try loadRule(
      #"{"sql": "\#(sql)", "actions": [{"record": {}}]}"#, builder: RecordingBuilder())
    #expect(
      rule.warnings.map(\.message) == [
        "the SQL is \(sql.utf8.count) bytes; AWS IoT refuses a statement over 256 KB (262144 bytes of UTF-8)"
      ])
    #expect(rule.warnings.first?.position == FilePosition(line: 1, column: 9))
    let small = try loadRule(
      #"{"sql": "SELECT a FROM 'a/#'", "actions": [{"record": {}}]}"#, builder: RecordingBuilder())
    #expect(small.warnings.isEmpty)
  }

  /// What `aws iot get-topic-rule` prints loads as it is: the rule inside `rule`, its read-only
  /// `ruleArn` and `createdAt` ignored.
  @Test func awsGetTopicRuleOutputLoads() throws {
    let rule = try loadRule(
      """
      {"ruleArn": "arn:aws:iot:us-east-1:123456789012:rule/fromAws",
       "rule": {"ruleName": "fromAws", "sql": "SELECT * FROM 'a/#'", "createdAt": "2024-06-01T10:00:00Z",
                "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23", "actions": [{"record": {}}]}}
      """, builder: RecordingBuilder())
    #expect(rule.name == "fromAws")
    #expect(rule.topicFilter == "a/#")
  }

  @Test func backoffGrowsAndIsCapped() {
    let policy = RetryPolicy(attempts: 5, initialBackoffMs: 100, maxBackoffMs: 250)
    #expect(policy.backoffMs(retry: 1, random: 1) == 100)
    #expect(policy.backoffMs(retry: 2, random: 1) == 200)
    #expect(policy.backoffMs(retry: 3, random: 1) == 250)
    #expect(policy.backoffMs(retry: 3, random: 0) == 125)
  }

  /// The name a file that does not parse claims, read from its text.
  @Test func aNameIsReadFromTheTextOfAFileThatDoesNotParse() {
    func claim(_ text: String, _ file: String = "f.json") -> String? {
      RuleFile.nameWrittenIn(file: file, bytes: Array(text.utf8)).map {
        "\($0.name) \($0.position.line):\($0.position.column)"
      }
    }
    #expect(claim(#"{"ruleName": "r", "sql": ,}"#) == "r 1:14")
    #expect(claim("{\n  \"é\": 1, \"ruleName\":\"r\\u00e9\",") == "ré 2:22")
    #expect(claim("rule:\n  ruleName: 'it''s' \n  sql: [", "f.yaml") == "it's 2:13")
    #expect(claim("{ruleName: x, sql: [", "f.yaml") == "x 1:12")
    #expect(claim("sql: \"SELECT get(*, 'ruleName') FROM 'a'\n", "g.yaml") == "g 1:1")
    // Two names, or one that is no string: no claim.
    #expect(claim(#"{"ruleName": "a", "rule": {"ruleName": "b"}"#) == nil)
    #expect(claim(#"{"ruleName": 5,"#) == nil)
  }
}
