import Actions
import Daemon
import DevTools
import Foundation
import IoTSQL
import Logging
import RulesEngine
import TestSupport
import Testing

@Suite("rule tests") struct RuleTestRunnerTests {
  @Test("every example rule in Rules/ has tests, and they pass")
  func exampleRules() throws {
    let plan = RuleTestPlan.collect([packageRoot + "/Rules"])
    #expect(plan.untested.isEmpty)
    #expect(plan.pairs.count == 2)
    let results = plan.run()
    #expect(results.count >= 9)
    for result in results where !result.passed { Issue.record("\(result.name): \(result.failure!)") }
  }

  @Test("the CLI: exit 0 on Rules, 1 with a diff on a failing case, JUnit written")
  func commandLine() throws {
    let (status, out, _) = try runBinary(["test", packageRoot + "/Rules"])
    #expect(status == 0)
    #expect(out.hasSuffix("9 passed, 0 failed (9 case(s) in 2 file(s))\n"))

    let folder = temporaryFolder("ruletest")
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/high_temp.json")
    try """
    [{"name": "wrong humidity", "topic": "sensors/1/data", "payload": {"deviceId": "d", "temp": 40, "humidity": 5},
      "timestamp": 5, "expect": {"output": {"deviceId": "d", "temp": 40, "humidity": 6, "ts": 5}}},
     {"name": "cool", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}},
     {"name": "esc\\u001b[31m red \\"\\u0301 q=\\"1", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"output": {}}},
     {"name": "non\\uffffchar", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"output": {}}},
     {"name": "tab\\tname", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}},
     {"name": "tab name", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}}]
    """.write(toFile: folder + "/high_temp.test.json", atomically: true, encoding: .utf8)
    let (failStatus, failOut, _) = try runBinary(["test", folder, "--junit", folder + "/report.xml"])
    #expect(failStatus == 1)
    // A control character in a case name is spelled out, not sent to the terminal.
    #expect(failOut.contains("FAIL high_temp: esc\\u001B[31m red \"\u{301} q=\"1  ("), "\(failOut)")
    #expect(!failOut.contains("\u{1B}"))
    #expect(failOut.contains("FAIL high_temp: wrong humidity  (\(folder)/high_temp.test.json:1:2)"))
    #expect(failOut.contains("    -   \"humidity\": 6,\n    +   \"humidity\": 5,"))
    #expect(failOut.hasSuffix("3 passed, 3 failed (6 case(s) in 1 file(s))\n"))
    let report = try String(contentsOfFile: folder + "/report.xml", encoding: .utf8)
    // A quote followed by a combining mark is escaped too (the XML was not well formed).
    // (XML 1.0 holds no ESC: the report spells it as the console does.)
    #expect(report.contains("name=\"esc\\u001B[31m red &quot;\u{301} q=&quot;1\""), "\(report)")
    #expect(report.contains(#"<testsuites name="iotrules test" tests="6" failures="3" errors="0" time="0."#))
    // Nor U+FFFE or U+FFFF (not XML characters either: a parser refused the whole report).
    #expect(report.contains(#"name="non\uFFFFchar""#), "\(report)")
    // A tab in an attribute is a reference: written as is, a parser reads a space (two cases
    // had one name).
    #expect(report.contains(#"name="tab&#9;name""#), "\(report)")
    // Seconds to the millisecond, as the common JUnit schema takes them.
    let times = report.components(separatedBy: "time=\"").dropFirst().map { $0.prefix { $0 != "\"" } }
    #expect(
      times.count == 8 && times.allSatisfy { $0.split(separator: ".").last?.count == 3 }, "\(times)")
    #expect(report.contains(#"<failure message="output differs (- expected, + actual):">"#))
    // Each case with its file and line, for CI annotations.
    #expect(
      report.contains(
        #"<testcase classname="high_temp" name="cool" file="\#(folder)/high_temp.test.json" line="3" "#),
      "\(report)")
    // A report path that is a folder: the system's reason, exit 74.
    let (folderStatus, folderOut, folderError) = try runBinary([
      "test", packageRoot + "/Rules", "--junit", folder,
    ])
    #expect(folderStatus == 74)
    // A path that cannot be read is in the report too: what could be read alone looked green.
    let (missingStatus, _, _) = try runBinary([
      "test", packageRoot + "/Rules", folder + "/nowhere", "--junit", folder + "/missing.xml",
    ])
    #expect(missingStatus == 74)
    let missingReport = try String(contentsOfFile: folder + "/missing.xml", encoding: .utf8)
    #expect(missingReport.contains(#"tests="10" failures="0" errors="1""#), "\(missingReport)")
    #expect(
      missingReport.contains(#"<error message="\#(folder)/nowhere: no such file or folder"/>"#),
      "\(missingReport)")
    #expect(folderOut.contains(" passed, 0 failed"), "\(folderOut)")
    #expect(folderError.contains("cannot write the JUnit report \(folder): Is a directory"))
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// A test file that does not parse fails at its first problem, which the console, the JUnit report
  /// and a CI annotation point at (it was line 1).
  @Test func aBrokenTestFileFailsAtItsProblem() throws {
    let folder = temporaryFolder("ruletest-broken")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/high_temp.json")
    try "[{\"name\": \"a\",\n  \"topic\": }]\n".write(
      toFile: folder + "/high_temp.test.json", atomically: true, encoding: .utf8)
    let results = RuleTestPlan.collect([folder]).run()
    #expect(results.map(\.name) == ["(load)"])
    #expect(results.first?.position == FilePosition(line: 2, column: 12), "\(results)")
  }

  @Test("a rule copied from AWS: get-topic-rule output, roleArn, and $$ shown as the topic published to")
  func awsShapedRule() throws {
    let folder = temporaryFolder("ruletest-aws")
    try #"""
    {"ruleArn": "arn:aws:iot:us-east-1:123456789012:rule/shadow",
     "rule": {"ruleName": "shadow", "sql": "SELECT a FROM 'things/+/data'", "createdAt": "2024-06-01T10:00:00Z",
              "actions": [{"republish": {"topic": "$$aws/things/${topic(2)}/shadow/update",
                                         "roleArn": "arn:aws:iam::123456789012:role/r"}}]}}
    """#.write(toFile: folder + "/shadow.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "shadow", "topic": "things/d7/data", "payload": {"a": 1},
      "expect": {"actions": [{"kind": "republish", "topic": "$aws/things/d7/shadow/update"}]}},
     {"name": "basic ingest", "topic": "$aws/rules/shadow/things/d8/data", "payload": {"a": 2},
      "expect": {"actions": [{"kind": "republish", "topic": "$aws/things/d8/shadow/update"}]}},
     {"name": "another rule's ingest", "topic": "$aws/rules/other/things/d8/data", "payload": {"a": 3},
      "expect": {"no_match": true}}]
    """#.write(toFile: folder + "/shadow.test.json", atomically: true, encoding: .utf8)
    try #"""
    {"sql": "SELECT a FROM 'things/+/data'",
     "actions": [{"republish": {"topic": "${deviceId}/x"}}]}
    """#.write(toFile: folder + "/hostile.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "a device id that would reach Basic Ingest", "topic": "things/d9/data",
      "payload": {"a": 4, "deviceId": "$aws/rules/shadow"},
      "expect": {"actions": [{"kind": "republish", "topic": "$aws/rules/shadow/x",
                              "refused": "the topic renders a leading '$' but its template does not start with '$$': the daemon refuses it (permanent failure, to the error path)"}]}},
     {"name": "a device id with a wildcard", "topic": "things/d9/data",
      "payload": {"a": 5, "deviceId": "a/#"},
      "expect": {"actions": [{"kind": "republish", "topic": "a/#/x",
                              "refused": "the topic 'a/#/x' contains a wildcard: the daemon refuses it (permanent failure, to the error path)"}]}}]
    """#.write(toFile: folder + "/hostile.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 0, "\(out)")
    #expect(out.hasSuffix("5 passed, 0 failed (5 case(s) in 2 file(s))\n"))
  }

  /// A case pins the other context functions as an `eval --batch` request does (a rule reading
  /// `principal()` or an MQTT 5 property could not be tested with values).
  @Test("a rule without tests that does not load fails as (load), at its problem; a disabled rule is noted")
  func brokenRuleWithoutTests() throws {
    let folder = temporaryFolder("ruletest-untested")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/high_temp.json")
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.test.json", toPath: folder + "/high_temp.test.json")
    try "{\"sql\": \"SELECT * FROM 'a'\",\n \"actions\": [{\"republish\": {\"topic\": \"b\", \"qos\": 2}}]}\n"
      .write(toFile: folder + "/badaction.json", atomically: true, encoding: .utf8)
    try "{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [\n".write(
      toFile: folder + "/truncated.json", atomically: true, encoding: .utf8)
    try "{\"sql\": \"SELECT * FROM 'a'\", \"actions\": []}\n".write(
      toFile: folder + "/untested.json", atomically: true, encoding: .utf8)
    let results = RuleTestPlan.collect([folder]).run()
    let broken = results.filter { !$0.passed }
    #expect(broken.map(\.file) == [folder + "/badaction.json", folder + "/truncated.json"], "\(broken)")
    #expect(broken.allSatisfy { $0.name == "(load)" && $0.failure!.hasPrefix("the rule does not load:") })
    #expect(broken.first?.position.line == 2, "\(broken)")
    let (status, out, _) = try runBinary(["test", folder, "--junit", folder + "/report.xml"])
    #expect(status == 1, "\(out)")
    #expect(out.contains("FAIL badaction: (load)  (\(folder)/badaction.json:2:"), "\(out)")
    #expect(out.contains("FAIL truncated: (load)"), "\(out)")
    #expect(
      out.contains("no tests: \(folder)/untested.json") && !out.contains("no tests: \(folder)/bad"), "\(out)")
    let report = try String(contentsOfFile: folder + "/report.xml", encoding: .utf8)
    #expect(
      report.contains(#"<testcase classname="badaction" name="(load)" file="\#(folder)/badaction.json""#),
      "\(report)")
    // Alone, it fails the same way (it was "no rule tests found", exit 65, with no error shown).
    let (aloneStatus, aloneOut, _) = try runBinary(["test", folder + "/truncated.json"])
    #expect(aloneStatus == 1 && aloneOut.contains("FAIL truncated: (load)"), "\(aloneOut)")

    // A disabled rule's tests run, and the console says run skips it.
    let rule = try String(contentsOfFile: folder + "/high_temp.json", encoding: .utf8)
    try rule.replacingOccurrences(of: "\"ruleDisabled\": false", with: "\"ruleDisabled\": true")
      .write(toFile: folder + "/high_temp.json", atomically: true, encoding: .utf8)
    let (_, disabledOut, _) = try runBinary(["test", folder + "/high_temp.json"])
    #expect(
      disabledOut.contains(
        "note: rule high_temp is disabled (ruleDisabled): its tests ran, but run loads it and skips it"),
      "\(disabledOut)")
  }

  @Test("newuuid() and rand() give the same every run of a case, or what its context pins")
  func randomnessInTests() throws {
    let folder = temporaryFolder("ruletest-random")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try #"""
    {"sql": "SELECT newuuid() AS id, newuuid() AS id2, rand() < 0.1 AS sampled FROM 'a/+'",
     "actions": [{"file": {"path": "o/${newuuid()}.jsonl"}}]}
    """#.write(toFile: folder + "/ids.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "sequence", "topic": "a/b", "payload": {},
      "expect": {"output": {"id": "00000000-0000-4000-8000-000000000001", "id2": "00000000-0000-4000-8000-000000000002", "sampled": false}}},
     {"name": "path", "topic": "a/b", "payload": {},
      "expect": {"actions": [{"kind": "file", "path": "o/00000000-0000-4000-8000-000000000003.jsonl"}]}},
     {"name": "pinned", "topic": "a/b", "payload": {}, "context": {"newuuid": "u-1", "rand": 0.05},
      "expect": {"output": {"id": "u-1", "id2": "u-1", "sampled": true}}},
     {"name": "bad pin", "topic": "a/b", "payload": {}, "context": {"rand": 1},
      "expect": {"no_match": true}}]
    """#.write(toFile: folder + "/ids.test.json", atomically: true, encoding: .utf8)
    for _ in 0..<2 {
      let (status, out, _) = try runBinary(["test", folder])
      #expect(status == 1, "\(out)")
      #expect(out.hasSuffix("3 passed, 1 failed (4 case(s) in 1 file(s))\n"), "\(out)")
      #expect(out.contains(#""context.rand" must be a number from 0 up to (not including) 1"#), "\(out)")
    }
    // The sequences are the same in every instance; a pin holds for every call.
    let first = PinnedRandomness(repeatable: true)
    let second = PinnedRandomness(repeatable: true)
    #expect((0..<3).map { _ in first.nextDouble() } == (0..<3).map { _ in second.nextDouble() })
    #expect((0..<100).allSatisfy { _ in (0..<1).contains(first.nextDouble()) })
    #expect(PinnedRandomness(uuid: "x").nextUUID() == "x")
    // Outside tests, pinning one leaves the other random (an eval request pinning newuuid got the
    // same rand() every time).
    let pinned = PinnedRandomness(uuid: "x")
    #expect(Set((0..<4).map { _ in pinned.nextDouble() }).count == 4)
    #expect(PinnedRandomness(rand: 0.5).nextUUID() != PinnedRandomness(rand: 0.5).nextUUID())
  }

  @Test("a case's context pins principal, source ip, MQTT properties and user properties")
  func contextPins() throws {
    let folder = temporaryFolder("ruletest-context")
    try #"""
    {"sql": "SELECT principal() AS p, sourceip() AS ip, get_mqtt_property('content_type') AS ct, get_user_properties('site') AS site, clientid() AS c FROM 'a/+'",
     "actions": []}
    """#.write(toFile: folder + "/ctx.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "pinned", "topic": "a/b", "payload": {}, "clientId": "dev-1",
      "context": {"principal": "cert-1", "sourceip": "10.0.0.7", "mqtt_properties": {"content_type": "text/csv"},
                  "user_properties": [["site", "north"]]},
      "expect": {"output": {"p": "cert-1", "ip": "10.0.0.7", "ct": "text/csv", "site": ["north"], "c": "dev-1"}}},
     {"name": "bad", "topic": "a/b", "payload": {}, "context": {"mqtt_properties": {"contentType": "x"}},
      "expect": {"no_match": true}},
     {"name": "twice", "topic": "a/b", "payload": {}, "clientId": "a", "context": {"clientid": "b"},
      "expect": {"no_match": true}}]
    """#.write(toFile: folder + "/ctx.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    #expect(
      !out.contains("FAIL ctx: pinned") && out.hasSuffix("1 passed, 2 failed (3 case(s) in 1 file(s))\n"),
      "\(out)")
    #expect(out.contains("unknown MQTT property \"contentType\" in \"context.mqtt_properties\""), "\(out)")
    #expect(out.contains("case 'twice': give 'clientId' or context.clientid, not both"), "\(out)")
  }

  @Test("a kafka topic or partition the daemon would refuse shows 'refused' and fails the case")
  func refusedKafkaRecordsFail() throws {
    let folder = temporaryFolder("ruletest-refused-kafka")
    try #"""
    {"sql": "SELECT * FROM 'sensors/+/data'",
     "actions": [{"kafka": {"bootstrapServers": "127.0.0.1:9092", "topic": "k.${topic(2)}", "partition": "${p}"}}]}
    """#.write(toFile: folder + "/k.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "fine", "topic": "sensors/d1/data", "payload": {"p": 1},
      "expect": {"actions": [{"kind": "kafka", "topic": "k.d1", "partition": "1"}]}},
     {"name": "no partition", "topic": "sensors/d1/data", "payload": {},
      "expect": {"actions": [{"kind": "kafka", "topic": "k.d1", "partition": ""}]}},
     {"name": "bad partition", "topic": "sensors/d1/data", "payload": {"p": "abc"},
      "expect": {"actions": [{"kind": "kafka", "topic": "k.d1", "partition": "abc"}]}},
     {"name": "bad topic", "topic": "sensors/d 1/data", "payload": {"p": 0},
      "expect": {"actions": [{"kind": "kafka", "topic": "k.d 1", "partition": "0"}]}}]
    """#.write(toFile: folder + "/k.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    #expect(out.contains("the kafka partition renders 'abc', not a partition number"), "\(out)")
    #expect(
      out.contains(
        "the kafka topic renders 'k.d 1': a Kafka topic takes only letters, digits, '.', '_' and '-'"),
      "\(out)")
    #expect(out.hasSuffix("2 passed, 2 failed (4 case(s) in 1 file(s))\n"), "\(out)")
  }

  @Test("republish headers and http requests the daemon would refuse show 'refused' and fail the case")
  func refusedHeadersAndRequestsFail() throws {
    let folder = temporaryFolder("ruletest-refused-headers")
    try #"""
    {"sql": "SELECT * FROM 'sensors/+/data'",
     "actions": [{"republish": {"topic": "out/x", "headers": {"contentType": "${ct}", "responseTopic": "${rt}",
                                "userProperties": [{"key": "k", "value": "${get_secret('s')}"}]}}},
                 {"http": {"url": "https://hooks.example.com/in/${dev}?key=${get_secret('k')}", "confirmationUrl": "https://hooks.example.com/in/",
                           "headers": [{"key": "x-dev", "value": "${dev}"}]}}]}
    """#.write(toFile: folder + "/h.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "fine", "topic": "sensors/d1/data", "payload": {"ct": "text/plain", "rt": "replies/d1", "dev": "d1"},
      "expect": {"actions": [{"kind": "republish", "topic": "out/x"}, {"kind": "http", "url": "https://hooks.example.com/in/d1?key=***"}]}},
     {"name": "control character", "topic": "sensors/d1/data", "payload": {"ct": "a\u0001b", "dev": "d1"},
      "expect": {"actions": [{"kind": "republish", "topic": "out/x"}, {"kind": "http"}]}},
     {"name": "wildcard response topic", "topic": "sensors/d1/data", "payload": {"rt": "replies/#", "dev": "d1"},
      "expect": {"actions": [{"kind": "republish"}, {"kind": "http"}]}},
     {"name": "climbing url", "topic": "sensors/d1/data", "payload": {"dev": "../admin"},
      "expect": {"actions": [{"kind": "republish"}, {"kind": "http"}]}}]
    """#.write(toFile: folder + "/h.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    #expect(out.contains("republish contentType contains the control character U+0001 at byte 1"), "\(out)")
    #expect(out.contains("republish responseTopic rendered 'replies/#'"), "\(out)")
    // Also when a secret is in the URL (the message shows it as ***).
    #expect(out.contains("has a '.' or '..' path segment; refused"), "\(out)")
    #expect(out.hasSuffix("1 passed, 3 failed (4 case(s) in 1 file(s))\n"), "\(out)")
  }

  @Test("a template's get_secret shows as *** in rule tests: they read no secret, and judge no value it made")
  func secretsArePlaceholders() throws {
    let folder = temporaryFolder("ruletest-secrets")
    try #"""
    {"sql": "SELECT * FROM 'sensors/+/data'",
     "actions": [{"http": {"url": "https://hooks.example.com/in", "headers": [{"key": "authorization", "value": "Bearer ${get_secret('api-token')}"}]}},
                 {"kafka": {"bootstrapServers": "127.0.0.1:9092", "topic": "k.${get_secret('t', 'SecretString', 'topic', 'arn')}"}}]}
    """#.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "masked", "topic": "sensors/d1/data", "payload": {"p": 1},
      "expect": {"actions": [{"kind": "http", "headers": [{"key": "authorization", "value": "Bearer ***"}]},
                             {"kind": "kafka", "topic": "k.***"}]}}]
    """#.write(toFile: folder + "/s.test.json", atomically: true, encoding: .utf8)
    // The same with the secret in the environment: still ***.
    for environment in [[:], ["IOTRULES_SECRET_API_TOKEN": "s3cr3t"]] as [[String: String]] {
      let (status, out, _) = try runBinary(["test", folder], environment: environment)
      #expect(status == 0, "\(out)")
      #expect(!out.contains("s3cr3t"))
    }
  }

  @Test("a file path the daemon would refuse shows 'refused' and fails the case unless it expects that")
  func refusedArchivePathsFail() throws {
    let folder = temporaryFolder("ruletest-refused-path")
    try #"""
    {"sql": "SELECT * FROM 'sensors/+/data'",
     "actions": [{"file": {"path": "o/${dev}.jsonl"}}, {"file": {"path": "o/${missing}/x.jsonl"}},
                 {"file": {"root": "r", "path": "${dev}/x.jsonl"}}]}
    """#.write(toFile: folder + "/arch.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "no dev", "topic": "sensors/1/data", "payload": {"t": 1},
      "expect": {"actions": [{"kind": "file", "path": "o/.jsonl"}, {"kind": "file", "path": "o//x.jsonl"},
                             {"kind": "file", "path": "/x.jsonl"}]}},
     {"name": "dev given", "topic": "sensors/1/data", "payload": {"dev": "d1"},
      "expect": {"actions": [{"kind": "file", "path": "o/d1.jsonl"}, {"kind": "file", "path": "o//x.jsonl",
                              "refused": "rendered path '/x.jsonl' begins with '/' (a value of 'o/${missing}/x.jsonl' rendered empty, or with a leading or doubled '/'); archive root is 'o': the daemon refuses it (permanent failure, to the error path)"},
                             {"kind": "file", "path": "d1/x.jsonl"}]}},
     {"name": "any refusal", "topic": "sensors/1/data", "payload": {"dev": "d3"},
      "expect": {"actions": [{"kind": "file"}, {"kind": "file", "refused": true}, {"kind": "file", "refused": true}]}},
     {"name": "output only", "topic": "sensors/1/data", "payload": {"dev": "d2"}, "expect": {"output": {"dev": "d2"}}},
     {"name": "taken", "topic": "sensors/1/data", "payload": {"dev": "d4", "missing": "m"},
      "expect": {"actions": [{"kind": "file", "refused": false}, {"kind": "file", "refused": false}, {"kind": "file"}]}},
     {"name": "not taken", "topic": "sensors/1/data", "payload": {"dev": "d5"},
      "expect": {"actions": [{"kind": "file"}, {"kind": "file", "refused": false}, {"kind": "file"}]}},
     {"name": "part of the reason", "topic": "sensors/1/data", "payload": {"dev": "d6"},
      "expect": {"actions": [{"kind": "file"}, {"kind": "file", "refused": "begins with '/'"}, {"kind": "file"}]}},
     {"name": "another reason", "topic": "sensors/1/data", "payload": {"dev": "d7"},
      "expect": {"actions": [{"kind": "file"}, {"kind": "file", "refused": "hidden name"}, {"kind": "file"}]}}]
    """#.write(toFile: folder + "/arch.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    // The first case fails: each of its three writes would go to the error path.
    #expect(out.contains("FAIL arch: no dev"), "\(out)")
    #expect(out.contains("rendered path '.jsonl' has a hidden name '.jsonl'"), "\(out)")
    #expect(out.contains("rendered path '/x.jsonl' begins with '/'"), "\(out)")
    // A case that checks only the output fails too when a write would be refused.
    #expect(
      out.contains(
        "the output is as expected, but the daemon would refuse the file action: rendered path '/x.jsonl'"),
      "\(out)")
    // `"refused": true` expects a refusal, whatever its text: met by the second action, not the
    // third, which the daemon writes.
    #expect(out.contains("FAIL arch: any refusal"), "\(out)")
    #expect(out.contains("-     \"refused\": true\n"), "\(out)")
    // `"refused": false` expects the write taken: met where it is, not where the daemon refuses it.
    #expect(!out.contains("FAIL arch: taken"), "\(out)")
    #expect(out.contains("FAIL arch: not taken"), "\(out)")
    // A part of the reason's text expects the refusal too; a part of another reason does not.
    #expect(!out.contains("FAIL arch: part of the reason"), "\(out)")
    #expect(out.contains("FAIL arch: another reason"), "\(out)")
    #expect(out.hasSuffix("3 passed, 5 failed (8 case(s) in 1 file(s))\n"), "\(out)")
  }

  /// The preview judges a sqlite row by the daemon's own checks: `test` passed rows `run` always
  /// dead-lettered (a `rowid` key, keys apart only in case, a missing key column).
  @Test("a sqlite row the daemon would refuse shows 'refused' and fails the case unless it expects that")
  func refusedSQLiteRowsFail() throws {
    let folder = temporaryFolder("ruletest-refused-sqlite")
    try #"""
    {"sql": "SELECT a AS Temp, b AS temp, 1 AS rowid FROM 't'", "awsIotSqlVersion": "2016-03-23",
     "actions": [{"sqlite": {"database": "d.db", "table": "x"}}]}
    """#.write(toFile: folder + "/clash.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "ok?", "topic": "t", "payload": {"a": 1, "b": 2}, "expect": {"actions": [{"kind": "sqlite", "table": "x"}]}}]
    """#.write(toFile: folder + "/clash.test.json", atomically: true, encoding: .utf8)
    try #"""
    {"sql": "SELECT deviceId, a AS Temp, b AS temp FROM 'k'", "awsIotSqlVersion": "2016-03-23",
     "actions": [{"sqlite": {"database": "d.db", "table": "y", "key": "deviceId"}}]}
    """#.write(toFile: folder + "/keyed.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "no key", "topic": "k", "payload": {"a": 1}, "expect": {"actions": [{"kind": "sqlite"}]}},
     {"name": "case clash", "topic": "k", "payload": {"deviceId": "d", "a": 1, "b": 2}, "expect": {"output": {"deviceId": "d", "Temp": 1, "temp": 2}}},
     {"name": "refusal expected", "topic": "k", "payload": {"deviceId": null, "a": 1},
      "expect": {"actions": [{"kind": "sqlite", "refused": "key column 'deviceId' is null: every column of the action's \"key\" needs a value: the daemon refuses it (permanent failure, to the error path)"}]}},
     {"name": "fine", "topic": "k", "payload": {"deviceId": "d", "a": 1}, "expect": {"actions": [{"kind": "sqlite", "table": "y"}]}}]
    """#.write(toFile: folder + "/keyed.test.json", atomically: true, encoding: .utf8)
    try #"""
    {"sql": "SELECT * FROM 's/+'", "actions": [{"sqlite": {"database": "d.db", "table": "t"}}]}
    """#.write(toFile: folder + "/rowid.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "rowid key", "topic": "s/1", "payload": {"rowid": 5, "v": 1}, "expect": {"actions": [{"kind": "sqlite", "table": "t"}]}}]
    """#.write(toFile: folder + "/rowid.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    #expect(out.contains("FAIL clash: ok?"), "\(out)")
    #expect(out.contains("FAIL rowid: rowid key"), "\(out)")
    #expect(out.contains("key 'rowid' would make a column of table 't' named as SQLite's row id"), "\(out)")
    #expect(
      out.contains(
        #"+     "refused": "keys 'Temp' and 'temp' differ only in case: SQLite column names ignore case, so they cannot be stored as two columns: the daemon refuses it (permanent failure, to the error path)","#
      ), "\(out)")
    #expect(
      out.contains(
        "the result has no key column 'deviceId': every column of the action's \\\"key\\\" needs a value: the daemon refuses it"
      ), "\(out)")
    #expect(
      out.contains(
        "the output is as expected, but the daemon would refuse the sqlite action: keys 'Temp' and 'temp' differ only in case: SQLite column names ignore case, so they cannot be stored as two columns"
      ), "\(out)")
    #expect(out.hasSuffix("2 passed, 4 failed (6 case(s) in 3 file(s))\n"), "\(out)")
  }

  /// A column template that is one `${expression}` stores the value with its type: the preview
  /// showed `"5"` where the table holds the integer 5.
  @Test("the sqlite action's columns show what the table stores, typed")
  func sqliteColumnsAsStored() throws {
    let folder = temporaryFolder("ruletest-sqlite-columns")
    try #"""
    {"sql": "SELECT * FROM 't'", "awsIotSqlVersion": "2016-03-23",
     "actions": [{"sqlite": {"database": "d.db", "table": "x",
                             "columns": {"t": "${temp}", "s": "x${temp}", "n": "${missing}", "b": "${ok}",
                                         "o": "${o}", "r": "${r}"}}},
                 {"sqlite": {"database": "d.db", "table": "y", "key": "t", "update": "columns",
                             "columns": {"t": "${temp}", "n": "${missing}"}}}]}
    """#.write(toFile: folder + "/cols.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "typed", "topic": "t", "payload": {"temp": 5, "ok": true, "o": {"a": [1]}, "r": 2.5},
      "expect": {"actions": [{"kind": "sqlite", "columns": {"t": 5, "s": "x5", "n": null, "b": 1, "o": "{\"a\":[1]}", "r": 2.5}},
                             {"kind": "sqlite", "columns": {"t": 5}}]}},
     {"name": "as text", "topic": "t", "payload": {"temp": 5},
      "expect": {"actions": [{"kind": "sqlite", "columns": {"t": "5"}}, {"kind": "sqlite"}]}}]
    """#.write(toFile: folder + "/cols.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1, "\(out)")
    #expect(out.contains("FAIL cols: as text"), "\(out)")
    #expect(out.contains("    -       \"t\": \"5\"\n"), "\(out)")
    #expect(out.contains("    +       \"s\": \"x5\",\n    +       \"t\": 5\n"), "\(out)")
    #expect(out.hasSuffix("1 passed, 1 failed (2 case(s) in 1 file(s))\n"), "\(out)")
  }

  /// A binary value in a one-expression column is a BLOB, as `run` stores it: shown in base64, not
  /// refused as text that is not UTF-8, nor shown as text when it is (a TEXT column reads apart);
  /// an archive path is the file `run` writes, composed below an explicit root.
  @Test("a sqlite BLOB column and an archive path show what run writes")
  func blobColumnsAndComposedPaths() throws {
    let folder = temporaryFolder("ruletest-blob")
    try #"""
    {"sql": "SELECT * FROM 'dev/+/raw'",
     "actions": [{"sqlite": {"database": "d.db", "table": "x", "columns": {"topic": "${topic()}", "body": "${*}"}}}]}
    """#.write(toFile: folder + "/raw.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "not UTF-8", "topic": "dev/1/raw", "payload_base64": "AP8Q",
      "expect": {"actions": [{"kind": "sqlite", "columns": {"topic": "dev/1/raw", "body": "base64:AP8Q"}}]}},
     {"name": "text not JSON", "topic": "dev/2/raw", "payload_base64": "aMOpbGxv",
      "expect": {"actions": [{"kind": "sqlite", "columns": {"topic": "dev/2/raw", "body": "héllo"}}]}}]
    """#.write(toFile: folder + "/raw.test.json", atomically: true, encoding: .utf8)
    try #"""
    {"sql": "SELECT * FROM 'site/+'",
     "actions": [{"file": {"root": "archive", "path": "${site}/${topic(2)}.jsonl"}}]}
    """#.write(toFile: folder + "/site.json", atomically: true, encoding: .utf8)
    try #"""
    [{"name": "composed", "topic": "site/3", "payload": {"site": "Montre\u0301al"},
      "expect": {"actions": [{"kind": "file", "path": "Montr\u00e9al/3.jsonl"}]}}]
    """#.write(toFile: folder + "/site.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    // The second case expects text where the table holds a BLOB: it fails, showing base64.
    #expect(status == 1, "\(out)")
    #expect(!out.contains("FAIL raw: not UTF-8") && !out.contains("FAIL site: composed"), "\(out)")
    #expect(out.contains("FAIL raw: text not JSON"), "\(out)")
    #expect(out.contains("    +       \"body\": \"base64:aMOpbGxv\","), "\(out)")
    #expect(!out.contains("not UTF-8 text"), "\(out)")
    #expect(out.hasSuffix("2 passed, 1 failed (3 case(s) in 2 file(s))\n"), "\(out)")
  }

  /// A 500-key output with one wrong value gave a 500-line diff: unchanged lines far from a change
  /// are counted, not shown, as pytest and jest do.
  @Test("a diff shows each change with 3 lines of context; longer unchanged runs are counted")
  func diffContext() {
    let keys = (0..<500).map { "  \"k\($0)\": \($0)," }
    let expected = (["{"] + keys + ["}"]).joined(separator: "\n")
    var changed = keys
    changed[249] = "  \"k249\": -1,"
    changed[252] = "  \"k252\": -1,"
    let diff = LineDiff.unified(expected: expected, actual: (["{"] + changed + ["}"]).joined(separator: "\n"))
    #expect(
      diff.split(separator: "\n") == [
        "  … 247 unchanged lines",
        "    \"k246\": 246,", "    \"k247\": 247,", "    \"k248\": 248,",
        "-   \"k249\": 249,", "+   \"k249\": -1,",
        "    \"k250\": 250,", "    \"k251\": 251,",
        "-   \"k252\": 252,", "+   \"k252\": -1,",
        "    \"k253\": 253,", "    \"k254\": 254,", "    \"k255\": 255,",
        "  … 245 unchanged lines",
      ], "\(diff)")
    // A run of one unchanged line is shown: its count would take as much room.
    let short = LineDiff.unified(expected: "a\nb\nc\nd\ne\nf\ng\nh\ni", actual: "A\nb\nc\nd\ne\nf\ng\nh\nI")
    #expect(!short.contains("unchanged"), "\(short)")
    // A member that only lost its comma (the one after it is gone) is unchanged.
    let comma = LineDiff.unified(
      expected: "{\n  \"a\": 1,\n  \"b\": 2\n}", actual: "{\n  \"a\": 1\n}")
    #expect(comma == "  {\n    \"a\": 1,\n-   \"b\": 2\n  }", "\(comma)")
  }

  /// A Binary result is shown as its text when it is text (a test expects it so: the REPL's base64
  /// copied into a test failed), as `base64:...` otherwise.
  /// A test file past 4 MiB is refused by its size before it is read (an 80 MB one took 1.5 GB to
  /// load in `check`), saying how to split it; one at the limit is read.
  @Test func aTestFilePastFourMebibytesIsRefusedByItsSize() throws {
    let folder = temporaryFolder("ruletest-size")
    let caseText = #"{"name": "c", "topic": "a/b", "payload": {"x": 1}, "expect": {"no_match": true}}"#
    let padding = String(repeating: " ", count: RuleTestFile.maxBytes - caseText.utf8.count - 2)
    let atLimit = folder + "/fits.test.json"
    try ("[" + caseText + padding + "]").write(toFile: atLimit, atomically: true, encoding: .utf8)
    #expect(try RuleTestFile.loadCases(path: atLimit).0.cases.count == 1)
    let past = folder + "/big.test.json"
    try ("[" + caseText + padding + " ]").write(toFile: past, atomically: true, encoding: .utf8)
    #expect {
      try RuleTestFile.loadCases(path: past)
    } throws: {
      let said = ($0 as? RuleFileError)?.diagnostics.map(\.message) ?? []
      return said == [
        "the file is 4194305 bytes; a test file is at most 4194304 bytes (4 MiB): split its cases between \(folder)/big.test.json, .test.yaml and .test.yml"
      ]
    }
  }

  @Test func binaryIsShownAsATestWritesIt() {
    #expect(
      ValueText.pretty(.binary(Array("hello world".utf8))) == "Binary (not JSON), 11 bytes: hello world")
    #expect(ValueText.pretty(.binary([0xFF, 0x00])) == "Binary, 2 bytes: base64:/wA=")
    #expect(ValueText.pretty(.binary([0x41, 0x07])) == "Binary, 2 bytes: base64:QQc=")
    #expect(ValueText.pretty(.binary(Array("a\r\nb".utf8))) == "Binary, 4 bytes: base64:YQ0KYg==")
  }

  /// Text with control characters, which the REPL shows in base64, passes a case that expects it
  /// so (it failed: only bytes that are not UTF-8 compared as base64), or as its text; other bytes
  /// do not.
  @Test func base64MatchesAnyBytes() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("b64-\(UUID().uuidString)")
      .path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data(#"{"sql": "SELECT * FROM 'a'", "actions": []}"#.utf8).write(
      to: URL(fileURLWithPath: folder + "/r.json"))
    func run(_ expected: String) throws -> Int32 {
      let cases =
        #"{"cases": [{"name": "crlf", "topic": "a", "payload": "a\r\nb", "expect": {"output": "\#(expected)"}}]}"#
      try Data(cases.utf8).write(to: URL(fileURLWithPath: folder + "/r.test.json"))
      return try runBinary(["test", folder]).0
    }
    #expect(try run("base64:YQ0KYg==") == 0)
    #expect(try run("a\\r\\nb") == 0)
    #expect(try run("base64:YQ0K") == 1)
  }

  /// A diff of long documents stays small: the common head and tail are kept as they are, and a
  /// middle past a million table cells is shown removed, then added (20,000 lines took 3 GB).
  @Test(.timeLimit(.minutes(3))) func longDocumentsDiffWithoutAQuadraticTable() {
    let expected = (0..<20_000).map { "  \($0)," }.joined(separator: "\n")
    let actual = (1...20_000).map { "  \($0)," }.joined(separator: "\n")
    let lines = LineDiff.unified(expected: expected, actual: actual).split(separator: "\n")
    // No common head or tail, 400 million cells: every line removed, then every line added.
    #expect(lines.count == 40_000 && lines[0] == "-   0," && lines[20_000] == "+   1,")
    let edited = LineDiff.unified(
      expected: "{\n" + expected + "\n}",
      actual: "{\n" + expected.replacingExactly("  777,", with: "  778,") + "\n}")
    #expect(edited.split(separator: "\n").filter { !$0.hasPrefix("  ") } == ["-   777,", "+   778,"])
  }

  @Test(
    "a diff shows lines that look alike but differ (é against e + U+0301, no-break and zero-width spaces)")
  func lookAlikeLinesAreSpelledOut() {
    let diff = LineDiff.unified(
      expected: "{\n  \"s\": \"\u{E9}\",\n  \"t\": \"a b\",\n  \"u\": \"ab\"\n}",
      actual: "{\n  \"s\": \"e\u{301}\",\n  \"t\": \"a\u{A0}b\",\n  \"u\": \"ab\u{200B}\"\n}")
    #expect(
      diff.split(separator: "\n").map(String.init) == [
        "  {",
        "-   \"s\": \"\u{E9}\",",
        "-   \"t\": \"a b\",",
        "-   \"u\": \"ab\"",
        "+   \"s\": \"e\\u0301\",",
        "+   \"t\": \"a\\u00A0b\",",
        "+   \"u\": \"ab\\u200B\"",
        "  }",
      ])
    // A noncharacter (U+FFFE, U+FFFF) shows nothing either.
    #expect(
      LineDiff.unified(expected: "\"fffe\"", actual: "\"fffe\u{FFFE}\"")
        == "- \"fffe\"\n+ \"fffe\\uFFFE\"")
    // Lines that look different keep their characters as they are.
    #expect(
      LineDiff.unified(expected: "\"\u{E9}t\u{E9}\"", actual: "\"hiver\"")
        == "- \"\u{E9}t\u{E9}\"\n+ \"hiver\"")
  }

  @Test("an invalid case fails at its place; the file's other cases still run")
  func invalidCaseBesideOthers() throws {
    let folder = temporaryFolder("ruletest-invalid-case")
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/high_temp.json")
    try """
    [{"name": "cool", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}},
     {"name": "odd", "topic": "sensors/1/data", "payload": {"temp": 40}, "expect": {"nothing": 1}},
     {"name": "wrong", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"output": {}}}]
    """.write(toFile: folder + "/high_temp.test.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["test", folder])
    #expect(status == 1)
    // Reported by its own name (two invalid cases would not be one line of a JUnit report).
    #expect(out.contains("FAIL high_temp: odd  (\(folder)/high_temp.test.json:2:2)"), "\(out)")
    #expect(out.contains("2:81: case 'odd': unknown expectation 'nothing'"), "\(out)")
    #expect(out.contains("FAIL high_temp: wrong  (\(folder)/high_temp.test.json:3:2)"), "\(out)")
    #expect(out.hasSuffix("1 passed, 2 failed (3 case(s) in 1 file(s))\n"), "\(out)")
    // check and run still refuse the rule, and check shows all there is to fix at once: the
    // invalid case and the valid one that fails.
    let (checkStatus, checkOut, _) = try runBinary(["check", folder])
    #expect(checkStatus == 65)
    #expect(
      checkOut.contains(
        "its test file \(folder)/high_temp.test.json is broken (1 problem); 1 of 2 test(s) in \(folder)/high_temp.test.json failed: 'wrong'"
      ), "\(checkOut)")
    #expect(checkOut.contains("high_temp.test.json:2:81: error: case 'odd'"), "\(checkOut)")
    #expect(
      checkOut.contains("high_temp.test.json:3:2: error: test 'wrong' of rule 'high_temp' failed"),
      "\(checkOut)")
  }

  @Test(
    "a test file without a case fails, named: it was 'no rule tests found' (or, beside others, not a word; check passed it)"
  )
  func testFileWithoutCases() throws {
    for (name, text) in [("high_temp.test.json", "[]"), ("high_temp.test.yaml", "cases: []\n")] {
      let folder = temporaryFolder("ruletest-no-cases")
      try FileManager.default.copyItem(
        atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/high_temp.json")
      try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
      let (status, out, _) = try runBinary(["test", folder])
      #expect(status == 1, "\(out)")
      #expect(out.contains("FAIL high_temp: (no cases)  (\(folder)/\(name):1:1)"), "\(out)")
      #expect(out.contains("the test file holds no cases: write at least one, or remove the file"), "\(out)")
      // `check` (and `run`'s gate) agree: it passed the rule, whose tests never ran.
      let (checkStatus, checkOut, _) = try runBinary(["check", folder])
      #expect(checkStatus == 65, "\(checkOut)")
      #expect(checkOut.contains("its test file \(folder)/\(name) holds no cases"), "\(checkOut)")
      #expect(
        checkOut.contains(
          "\(name):1:1: error: the test file holds no cases: write at least one, or remove the file"),
        "\(checkOut)")
      #expect(try runBinary(["check", "--skip-tests", folder]).0 == 0)
    }
  }

  @Test("a repeated key in one case, or a name that is no string, fails that case alone")
  func repeatedKeyFailsItsCaseAlone() throws {
    let rule = try RulePreview.load(path: packageRoot + "/Rules/high_temp.json")
    for (suffix, text) in [
      (
        "json",
        """
        [{"name": "twice", "topic": "sensors/1/data", "payload": {"temp": 40}, "expect": {"output": {"a": 1, "a": 2}}},
         {"name": 5, "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}},
         {"name": "cool", "topic": "sensors/1/data", "payload": {"temp": 10}, "expect": {"no_match": true}}]
        """
      ),
      (
        "yaml",
        """
        - name: twice
          topic: sensors/1/data
          payload: {temp: 40}
          expect: {output: {a: 1, a: 2}}
        - name: 5
          topic: sensors/1/data
          payload: {temp: 10}
          expect: {no_match: true}
        - name: cool
          topic: sensors/1/data
          payload: {temp: 10}
          expect: {no_match: true}
        """
      ),
    ] {
      let path = temporaryFolder("ruletest-repeated") + "/h.test.\(suffix)"
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      let (tests, invalid) = try RuleTestFile.loadCases(path: path)
      #expect(tests.cases.map(\.name) == ["cool"], "\(suffix)")
      #expect(RuleTestRunner.run(tests, on: rule).allSatisfy { $0.passed })
      #expect(invalid.map(\.name) == ["twice", "case 2"], "\(suffix)")
      let said = invalid.flatMap(\.problems).map(\.message)
      #expect(said.first?.hasPrefix("case 'twice': ") == true, "\(said)")
      #expect(said.first?.contains("duplicate key 'a' (first at ") == true, "\(said)")
      #expect(said.last == "case 2: 'name' must be a string, not a number", "\(said)")
    }
    // A key repeated outside every case is the file's.
    let whole = temporaryFolder("ruletest-repeated") + "/w.test.json"
    try #"{"cases": [], "cases": []}"#.write(toFile: whole, atomically: true, encoding: .utf8)
    #expect(throws: RuleFileError.self) { try RuleTestFile.loadCases(path: whole) }
    // A key beside `cases` is read by nothing: a misspelt one's cases never ran.
    #expect {
      try RuleTestFile.parse(
        file: "m.test.json", bytes: Array(#"{"cases": [], "case": [{"name": "y"}]}"#.utf8))
    } throws: { error in
      (error as? RuleFileError)?.diagnostics.first?.message.hasPrefix(
        "unknown key 'case' beside 'cases'; did you mean 'cases'?") == true
    }
    // Keys that hold no cases are left alone (a YAML anchor's holder).
    let anchored = try RuleTestFile.parse(
      file: "a.test.yaml",
      bytes: Array(
        """
        common: &common
          topic: a
        cases:
          - <<: *common
            name: one
            payload: {"n": 1}
            expect: {output: {"n": 1}}
        """.utf8))
    #expect(anchored.cases.map(\.name) == ["one"])
    // A test file that is a symbolic link to nothing is one that cannot be read, not none.
    let folder = temporaryFolder("ruletest-dangling")
    try #"{"sql": "SELECT * FROM 't'", "actions": []}"#.write(
      toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(
      atPath: folder + "/r.test.json", withDestinationPath: folder + "/gone.test.json")
    #expect(RuleTestFile.companions(ofRule: folder + "/r.json") == [folder + "/r.test.json"])
  }

  @Test("context pins of MQTT properties are what a source gives: strings, MQTT's format values, base64")
  func mqttPropertyPinsAreChecked() throws {
    for (pins, expected) in [
      (#"{"format_indicator": 1}"#, "\"context.mqtt_properties.format_indicator\" must be a string, not Int"),
      (#"{"format_indicator": "bogus"}"#, "is UTF8_DATA or UNSPECIFIED_BYTES, not \"bogus\""),
      (#"{"correlation_data": "%%%"}"#, "must be base64"),
    ] {
      let line =
        #"[{"name": "c", "topic": "a", "payload": {}, "context": {"mqtt_properties": \#(pins)}, "expect": {"no_match": true}}]"#
      let path = temporaryFolder("ruletest-pins") + "/p.test.json"
      try line.write(toFile: path, atomically: true, encoding: .utf8)
      let (_, invalid) = try RuleTestFile.loadCases(path: path)
      #expect(
        invalid.flatMap(\.problems).contains { $0.message.contains(expected) },
        "\(invalid.flatMap(\.problems))")
    }
  }

  @Test("a misspelt field of an expected action is named, with the field it is closest to")
  func misspeltExpectedActionField() throws {
    let yaml = """
      - name: hot
        topic: sensors/3/data
        payload: {deviceId: d3, temp: 33, humidity: 1}
        expect:
          actions:
            - kind: sqlite
              tabel: high_temps
      """
    let tests = try RuleTestFile.parse(file: "high_temp.test.yaml", bytes: Array(yaml.utf8))
    let rule = try RulePreview.load(path: packageRoot + "/Rules/high_temp.json")
    let failure = try #require(RuleTestRunner.run(tests, on: rule).first?.failure)
    #expect(
      failure.hasPrefix("action 0 (sqlite) has no field 'tabel'; did you mean 'table'? (its fields: kind, "),
      "\(failure)")
    // An action left out of the list: the count is said first, with no hint from another action's
    // fields (the first line named the file action's missing 'table').
    let fanOut = try RulePreview.load(
      file: "f.json",
      bytes: Array(
        #"{"sql": "SELECT * FROM 'a'", "actions": [{"file": {"path": "x.jsonl"}}, {"sqlite": {"database": "d.db", "table": "t"}}]}"#
          .utf8))
    let partial = try RuleTestFile.parse(
      file: "f.test.json",
      bytes: Array(
        #"[{"name": "n", "topic": "a", "payload": {}, "expect": {"actions": [{"kind": "sqlite", "table": "t"}]}}]"#
          .utf8))
    let said = try #require(RuleTestRunner.run(partial, on: fanOut).first?.failure)
    #expect(
      said.hasPrefix("expected 1 action(s), the rule has 2 (list every action, in the rule's order):"),
      "\(said)")
  }

  @Test("check and run say a name clash with a file that does not load in the same run as its problems")
  func nameClashOfABrokenFile() throws {
    let folder = temporaryFolder("check-clash-broken")
    try #"{"sql": "SELECT , FROM 't'", "actions": []}"#
      .write(toFile: folder + "/a.json", atomically: true, encoding: .utf8)
    try #"{"ruleName": "a", "sql": "SELECT * FROM 't'", "actions": []}"#
      .write(toFile: folder + "/b.json", atomically: true, encoding: .utf8)
    // A rule whose tests fail, beside another file of its name whose rule passes them.
    try #"{"sql": "SELECT 1 AS t FROM 't'", "actions": []}"#
      .write(toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    try "sql: \"SELECT 2 AS t FROM 't'\"\nactions: []\n"
      .write(toFile: folder + "/r.yaml", atomically: true, encoding: .utf8)
    try #"[{"name": "two", "topic": "t", "expect": {"output": {"t": 2}}}]"#
      .write(toFile: folder + "/r.test.json", atomically: true, encoding: .utf8)
    // Two broken files of one name, one of which does not even parse: `check` said neither clash,
    // `run` both (a file that does not parse claims the name its text names).
    try #"{"sql": "SELECT * FROM 't'", "actions": ["#
      .write(toFile: folder + "/c.json", atomically: true, encoding: .utf8)
    try "sql: \"SELECT , FROM 't'\"\nactions: []\n".write(
      toFile: folder + "/c.yaml", atomically: true, encoding: .utf8)
    let results = try RuleChecker.check(paths: [folder], gate: RuleTestGate.check)
    func said(_ name: String) -> [String] {
      results.first { $0.file == "\(folder)/\(name)" }?.diagnostics.map(\.description) ?? ["none"]
    }
    #expect(
      said("a.json").contains(
        "\(folder)/a.json:1:1: error: rule name 'a' is also claimed by \(folder)/b.json: fixed, this file would clash with it; give each rule its own name"
      ), "\(said("a.json"))")
    #expect(said("b.json").isEmpty)
    #expect(
      said("r.json").contains(
        "\(folder)/r.json:1:1: error: rule name 'r' is also claimed by \(folder)/r.yaml: fixed, this file would clash with it; give each rule its own name"
      ), "\(said("r.json"))")
    #expect(said("r.yaml").isEmpty)
    for (file, other) in [("c.json", "c.yaml"), ("c.yaml", "c.json")] {
      #expect(
        said(file).contains(
          "\(folder)/\(file):1:1: error: rule name 'c' is also claimed by \(folder)/\(other): fixed, this file would clash with it; give each rule its own name"
        ), "\(said(file))")
    }
    // `run` loads the same rules and says the same of the files it leaves out.
    let loaded = RuleStore.load(
      files: try RuleStore.ruleFiles(in: [folder]), builder: ActionFactory.standard, gate: RuleTestGate.check)
    #expect(loaded.rules.map(\.file).sorted() == ["\(folder)/b.json", "\(folder)/r.yaml"])
    let logged = loaded.errors.flatMap(\.diagnostics).map(\.description)
    #expect(
      logged.contains {
        $0.hasPrefix("\(folder)/a.json:1:1: error: rule name 'a' is also claimed by \(folder)/b.json")
      })
    #expect(
      logged.contains {
        $0.hasPrefix("\(folder)/r.json:1:1: error: rule name 'r' is also claimed by \(folder)/r.yaml")
      })
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("check spells out a control character of a key or file name, in text and annotations")
  func controlCharactersAreSpelledOut() throws {
    let folder = temporaryFolder("check-control")
    try #"{"sql": "SELECT * FROM 't'", "a\nb": 1, "c\td": 2, "actions": []}"#
      .write(toFile: folder + "/k.json", atomically: true, encoding: .utf8)
    try #"{"sql": "SELECT * FROM 't'", "actions": [{"file": {"path": 5}}]}"#
      .write(toFile: folder + "/x\u{1B}y.json", atomically: true, encoding: .utf8)
    let (status, out, _) = try runBinary(["check", "--format", "github", folder])
    #expect(status == 65)
    #expect(out.contains("k.json:1:30: error: unknown key 'a\\u000Ab'; expected one of"), "\(out)")
    #expect(out.contains("k.json:1:41: error: unknown key 'c\\u0009d'; expected one of"), "\(out)")
    #expect(out.contains("::error file=\(folder)/x\\u001By.json,line=1,col=1,"), "\(out)")
    #expect(!out.contains("\u{1B}") && !out.contains("\t"), "\(out)")
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("invalid test files say where")
  func invalidTestFile() {
    #expect(throws: RuleFileError.self) {
      try RuleTestFile.parse(
        file: "t.test.json", bytes: Array(#"[{"topic": "a", "expect": {"maybe": 1}}]"#.utf8))
    }
    do {
      _ = try RuleTestFile.parse(
        file: "t.test.json", bytes: Array(#"[{"topic": "a", "expect": {"maybe": 1}}]"#.utf8))
    } catch {
      #expect(
        error.description
          == "t.test.json:1:28: error: case 1: unknown expectation 'maybe'; expected output, empty_output, no_match or actions"
      )
    }
    // A case with no topic says it is missing; one of another type, what it must be.
    for (text, said) in [
      (
        #"[{"payload": {}, "expect": {"no_match": true}}]"#, "t.test.json:1:2: error: case 1: missing 'topic'"
      ),
      (
        #"[{"topic": 5, "expect": {"no_match": true}}]"#,
        "t.test.json:1:12: error: case 1: 'topic' must be a string"
      ),
    ] {
      do {
        _ = try RuleTestFile.parse(file: "t.test.json", bytes: Array(text.utf8))
        Issue.record("accepted: \(text)")
      } catch {
        #expect(error.description == said, "\(error.description)")
      }
    }
    // Two cases with one name would be one line of a JUnit report.
    let twice = """
      [{"name": "hot", "topic": "a", "expect": {"no_match": true}},
       {"name": "hot", "topic": "b", "expect": {"no_match": true}}]
      """
    #expect(throws: RuleFileError.self) {
      try RuleTestFile.parse(file: "t.test.json", bytes: Array(twice.utf8))
    }
    do {
      _ = try RuleTestFile.parse(file: "t.test.json", bytes: Array(twice.utf8))
    } catch {
      #expect(
        error.description
          == "t.test.json:2:11: error: case 'hot': another case has this name (line 1); give each case its own"
      )
    }
  }

  @Test("YAML test files work as JSON ones")
  func yamlTests() throws {
    let yaml = """
      - name: hot
        topic: sensors/3/data
        payload: {deviceId: d3, temp: 33, humidity: 1}
        timestamp: 7
        expect:
          actions:
            - kind: sqlite
              table: high_temps
      """
    let tests = try RuleTestFile.parse(file: "high_temp.test.yaml", bytes: Array(yaml.utf8))
    let rule = try RulePreview.load(path: packageRoot + "/Rules/high_temp.json")
    let results = RuleTestRunner.run(tests, on: rule)
    #expect(results.count == 1)
    #expect(results[0].passed, "\(results[0].failure ?? "")")
  }

  @Test("empty_output expects a match with an empty payload, which no JSON output can say")
  func emptyOutputs() throws {
    let rule = try RulePreview.load(
      file: "v.json", bytes: Array(#"{"sql": "SELECT VALUE missing FROM 'a/b'", "actions": []}"#.utf8))
    let tests = try RuleTestFile.parse(
      file: "v.test.json",
      bytes: Array(
        #"""
        [{"name": "empty", "topic": "a/b", "payload": {"x": 1}, "expect": {"empty_output": true}},
         {"name": "not empty", "topic": "a/b", "payload": {"missing": 2}, "expect": {"empty_output": true}},
         {"name": "said as null", "topic": "a/b", "payload": {"x": 1}, "expect": {"output": null}}]
        """#.utf8))
    let failures = RuleTestRunner.run(tests, on: rule).map(\.failure)
    #expect(failures[0] == nil)
    #expect(failures[1]?.contains("- (an empty payload)\n+ 2") == true, "\(String(describing: failures[1]))")
    #expect(
      failures[2]?.contains("- null\n+ (an empty payload)") == true, "\(String(describing: failures[2]))")
    // `SELECT *` of an empty payload sends no bytes either.
    let star = try RulePreview.load(
      file: "s.json", bytes: Array(#"{"sql": "SELECT * FROM 'a/b'", "actions": []}"#.utf8))
    let none = try RuleTestFile.parse(
      file: "s.test.json",
      bytes: Array(#"[{"name": "no payload", "topic": "a/b", "expect": {"empty_output": true}}]"#.utf8))
    #expect(RuleTestRunner.run(none, on: star).map(\.failure) == [nil])
    #expect(throws: RuleFileError.self) {
      try RuleTestFile.parse(
        file: "w.test.json",
        bytes: Array(
          #"[{"name": "n", "topic": "a/b", "payload": {}, "expect": {"empty_output": false}}]"#.utf8))
    }
  }

  @Test("a test tells a whole number from a decimal, as the bytes sent do; key order does not matter")
  func wholeNumbersAndDecimalsDiffer() throws {
    func failures(sqlVersion: String, expecting output: String) throws -> [String] {
      let rule = try RulePreview.load(
        file: "scaled.json",
        bytes: Array(
          #"{"sql": "SELECT temp * 2 AS t, 'x' AS k FROM 'a/b'", "awsIotSqlVersion": "\#(sqlVersion)", "actions": []}"#
            .utf8))
      let tests = try RuleTestFile.parse(
        file: "scaled.test.json",
        bytes: Array(
          #"{"cases": [{"name": "n", "topic": "a/b", "payload": {"temp": 1.5}, "expect": {"output": \#(output)}}]}"#
            .utf8))
      return RuleTestRunner.run(tests, on: rule).compactMap(\.failure)
    }
    // 2016-03-23 sends a whole-number decimal as an integer: {"t":3,...}; 2015-10-08 keeps 3.0.
    #expect(try failures(sqlVersion: "2016-03-23", expecting: #"{"k": "x", "t": 3}"#).isEmpty)
    let wrong = try failures(sqlVersion: "2016-03-23", expecting: #"{"t": 3.0, "k": "x"}"#)
    #expect(wrong.count == 1)
    #expect(wrong.first?.contains("-   \"t\": 3.0") == true, "\(wrong)")
    #expect(wrong.first?.contains("+   \"t\": 3") == true, "\(wrong)")
    #expect(try failures(sqlVersion: "2015-10-08", expecting: #"{"t": 3.0, "k": "x"}"#).isEmpty)
    #expect(try failures(sqlVersion: "2015-10-08", expecting: #"{"t": 3, "k": "x"}"#).count == 1)
  }

  @Test("a reload keeps the running rule when the changed rule fails its tests")
  func reloadGate() throws {
    let folder = temporaryFolder("gate")
    let ruleFile = folder + "/high_temp.json"
    try FileManager.default.copyItem(atPath: packageRoot + "/Rules/high_temp.json", toPath: ruleFile)
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.test.json", toPath: folder + "/high_temp.test.json")
    let first = RuleStore.load(
      files: [ruleFile], builder: RulePreview.offlineBuilder, gate: RuleTestGate.check)
    #expect(first.errors.isEmpty)
    let running = try #require(first.rules.first)

    // WHERE temp > 50 breaks the "hot reading" cases: the old rule stays.
    let original = try String(contentsOfFile: ruleFile, encoding: .utf8)
    try original.replacingOccurrences(of: "temp > 30", with: "temp > 50").write(
      toFile: ruleFile, atomically: true, encoding: .utf8)
    let second = RuleStore.load(
      files: [ruleFile], builder: RulePreview.offlineBuilder, previous: [ruleFile: running],
      gate: RuleTestGate.check)
    #expect(second.rules.first === running)
    #expect(
      second.errors.map(\.description).first?.contains(
        "rule 'high_temp' kept the previous version: 2 of 5 test(s) in \(folder)/high_temp.test.json failed: 'a hot reading becomes a row', 'the sqlite action receives the row'"
      ) == true)

    // Without the gate (--skip-tests) the change goes in.
    let third = RuleStore.load(
      files: [ruleFile], builder: RulePreview.offlineBuilder, previous: [ruleFile: running])
    #expect(third.rules.first !== running)
    #expect(third.rules.first?.program.source.contains("temp > 50") == true)

    // A change that keeps the tests green is taken.
    try original.replacingOccurrences(of: "temp > 30", with: "temp > 30.5").write(
      toFile: ruleFile, atomically: true, encoding: .utf8)
    let fourth = RuleStore.load(
      files: [ruleFile], builder: RulePreview.offlineBuilder, previous: [ruleFile: running],
      gate: RuleTestGate.check)
    #expect(fourth.errors.isEmpty)
    #expect(fourth.rules.first !== running)
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("a case's topic is a message's topic: a filter or an empty topic is an error where it is written")
  func caseTopicIsAName() {
    for (topic, column) in [("sensors/+/data", 65), ("sensors/#", 65), ("", 65)] {
      let text =
        #"{"cases": [{"name": "c", "expect": {"no_match": true}, "topic": "\#(topic)", "payload": {}}]}"#
      do {
        _ = try RuleTestFile.parse(file: "r.test.json", bytes: Array(text.utf8))
        Issue.record("accepted the topic '\(topic)'")
      } catch {
        let found = error.diagnostics.first?.description ?? ""
        #expect(found.hasPrefix("r.test.json:1:\(column): error: case 'c': 'topic' "), "\(found)")
      }
    }
  }

  @Test("every test file beside a rule gates it, as iotrules test runs every one")
  func everyTestFileGates() throws {
    let folder = temporaryFolder("gate-both")
    let ruleFile = folder + "/high_temp.json"
    try FileManager.default.copyItem(atPath: packageRoot + "/Rules/high_temp.json", toPath: ruleFile)
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.test.json", toPath: folder + "/high_temp.test.json")
    try
      "cases:\n  - name: cold\n    topic: sensors/d/data\n    payload: {temp: 1}\n    expect: {output: {temp: 1}}\n"
      .write(toFile: folder + "/high_temp.test.yaml", atomically: true, encoding: .utf8)
    let loaded = RuleStore.load(
      files: [ruleFile], builder: RulePreview.offlineBuilder, gate: RuleTestGate.check)
    #expect(loaded.rules.isEmpty)
    #expect(loaded.errors.map(\.description).first?.contains("high_temp.test.yaml failed: 'cold'") == true)
    #expect(RuleTestPlan.collect([ruleFile]).pairs.count == 2)
    // A file met again, however spelt (a pre-commit list beside its folder), runs once: it ran
    // twice, its failures said and counted twice.
    let again = RuleTestPlan.collect([ruleFile, folder, folder + "/./high_temp.test.yaml", folder + "/"])
    #expect(again.pairs.count == 2)
    // Through a symbolic link to the folder too.
    let link = folder + "-link"
    try? FileManager.default.removeItem(atPath: link)
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: folder)
    defer { try? FileManager.default.removeItem(atPath: link) }
    #expect(RuleTestPlan.collect([folder, link, link + "/high_temp.json"]).pairs.count == 2)
    #expect(try RuleStore.ruleFiles(in: [folder, link]) == [ruleFile])
    let untested = folder + "/quiet.json"
    try FileManager.default.copyItem(atPath: packageRoot + "/Rules/high_temp.json", toPath: untested)
    #expect(
      RuleTestPlan.collect([untested, folder, folder + "/../" + (folder as NSString).lastPathComponent])
        .untested == [untested])
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("check reports each failing case at its line in the test file, in text and in JSON")
  func checkPointsAtFailingCases() throws {
    let folder = temporaryFolder("check-cases")
    try #"{"sql": "SELECT temp FROM 'a/b' WHERE temp > 3", "actions": []}"#
      .write(toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    try """
    {"cases": [
      {"name": "cold", "topic": "a/b", "payload": {"temp": 1}, "expect": {"no_match": true}},
      {"name": "warm", "topic": "a/b", "payload": {"temp": 5}, "expect": {"output": {"temp": 6}}}
    ]}
    """.write(toFile: folder + "/r.test.json", atomically: true, encoding: .utf8)
    let results = try RuleChecker.check(paths: [folder], gate: RuleTestGate.check)
    let errors = try #require(results.first?.diagnostics)
    #expect(errors.count == 2)
    #expect(errors[0].file == folder + "/r.json")
    #expect(errors[0].message.contains("1 of 2 test(s) in \(folder)/r.test.json failed: 'warm'"))
    #expect(errors[1].file == folder + "/r.test.json")
    #expect(errors[1].position == FilePosition(line: 3, column: 3))
    #expect(errors[1].message.hasPrefix("test 'warm' of rule 'r' failed: output differs"))
    let json = RuleChecker.json(results)
    #expect(
      json.contains(
        #"{"file":"\#(folder)/r.test.json","line":3,"column":3,"severity":"error","message":"test 'warm'"#))
    // The rule compiled: tools are told which rule the failing tests are of.
    #expect(json.contains(#"{"file":"\#(folder)/r.json","rule":"r","valid":false"#))
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("a name clash is reported at the ruleName value, before tests written for the name's holder")
  func nameClashBeforeTests() throws {
    let folder = temporaryFolder("check-clash")
    try #"{"sql": "SELECT temp FROM 'a/+'", "ruleName": "r", "actions": []}"#
      .write(toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    // The description mentions the key first: the position is the key's own value's.
    try """
    sql: SELECT temp FROM 'b/+'
    description: a copy; ruleName r is taken
    actions: []
    ruleName: r
    """.write(toFile: folder + "/r.yaml", atomically: true, encoding: .utf8)
    try """
    {"cases": [{"name": "passes", "topic": "a/1", "payload": {"temp": 1}, "expect": {"output": {"temp": 1}}}]}
    """.write(toFile: folder + "/r.test.json", atomically: true, encoding: .utf8)
    let results = try RuleChecker.check(paths: [folder], gate: RuleTestGate.check)
    let clash = try #require(results.first { $0.file == folder + "/r.yaml" })
    #expect(
      clash.diagnostics.map(\.description) == [
        "\(folder)/r.yaml:4:11: error: rule name 'r' is already used by \(folder)/r.json"
      ])
    #expect(clash.rule == "r")
    #expect(results.first { $0.file == folder + "/r.json" }?.diagnostics.isEmpty == true)
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("check fails a test file whose rule was renamed away, as test does; --skip-tests leaves it")
  func checkReportsOrphanTestFiles() throws {
    let folder = temporaryFolder("check-orphan")
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.json", toPath: folder + "/hot.json")
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.test.json", toPath: folder + "/hot.test.json")
    // The rule high_temp.json was renamed: its tests stayed behind.
    try FileManager.default.copyItem(
      atPath: packageRoot + "/Rules/high_temp.test.json", toPath: folder + "/high_temp.test.json")
    let (status, out, _) = try runBinary(["check", folder])
    #expect(status == 65)
    #expect(
      out.contains(
        "\(folder)/high_temp.test.json:1:1: error: no rule file beside this test file (looked for \(folder)/high_temp.json, .yaml, .yml)"
      ))
    #expect(out.contains("\(folder)/hot.json: ok (rule hot)"))
    #expect(out.hasSuffix("1 valid, 1 invalid\n"))
    let (jsonStatus, json, _) = try runBinary(["check", "--format", "json", folder])
    #expect(jsonStatus == 65)
    #expect(json.contains(#"{"file":"\#(folder)/high_temp.test.json","rule":null,"valid":false"#))
    // Named directly, alone, it is reported rather than taken for "no rule files".
    #expect(try runBinary(["check", folder + "/high_temp.test.json"]).0 == 65)
    // `test` names the rule it was written for.
    let (testStatus, testOut, _) = try runBinary(["test", folder])
    #expect(testStatus != 0)
    #expect(testOut.contains("high_temp: (no rule file)  (\(folder)/high_temp.test.json:1:1)"), "\(testOut)")
    let (skipped, skippedOut, _) = try runBinary(["check", "--skip-tests", folder])
    #expect(skipped == 0)
    #expect(!skippedOut.contains("high_temp.test.json"))
    // With its rule back, nothing is reported.
    try FileManager.default.copyItem(atPath: folder + "/hot.json", toPath: folder + "/high_temp.json")
    #expect(try runBinary(["check", folder]).0 == 0)
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test("explain FILE prints the program and every template")
  func explainFile() throws {
    let (status, out, _) = try runBinary(["explain", packageRoot + "/Rules/archive_all.json"])
    #expect(status == 0)
    #expect(
      out.hasPrefix("rule archive_all (\(packageRoot)/Rules/archive_all.json), SQL version 2016-03-23\n"))
    #expect(
      out.contains(
        "template file[0].path: archive/${topic(2)}/${parse_time('yyyy-MM-dd', timestamp())}.jsonl"))
    #expect(out.contains("template errorAction[errorAction].path") == false)
    #expect(out.contains("push parse_time(2 args)"))
  }
  @Test("expected and actual outputs compare strings and keys by code points: é is not e + U+0301")
  func outputsCompareByCodePoints() {
    let composed = "\u{E9}"
    let decomposed = "e\u{301}"
    #expect(!ValueText.equivalent(.string(composed), .string(decomposed)))
    #expect(ValueText.equivalent(.string(composed), .string(composed)))
    #expect(!ValueText.equivalent(.object([composed: .int(1)]), .object([decomposed: .int(1)])))
    #expect(
      ValueText.equivalent(
        .object(["a": .int(1), composed: .int(2)]), .object([composed: .int(2), "a": .int(1)])))
  }
}

/// A pinned context's user properties take the shapes a replay line takes, with the same refusals.
@Suite("pinned user properties") struct PinnedUserPropertiesTests {
  /// The pairs pinned, as `key=value`, or the problem's message.
  private func pinned(_ json: String) -> [String] {
    var context = EvaluationContext(topic: "a", payload: [])
    do {
      try ContextPins.apply(try JSONReader.parse(#"{"user_properties": "# + json + "}"), to: &context)
      return context.userProperties.map { "\($0.key)=\($0.value)" }
    } catch let problem as ContextPins.Problem {
      return [problem.message]
    } catch {
      return ["\(error)"]
    }
  }

  @Test func shapes() {
    #expect(pinned(#"{"a": "1", "b": "2"}"#) == ["a=1", "b=2"])
    #expect(pinned(#"[["a", "1"], {"key": "a", "value": "2"}]"#) == ["a=1", "a=2"])
    // An object beside its key and value holds something else: a typo (`vaule`) is not read past.
    let refused = "\"context.user_properties\" must be \(MQTTPublishProperties.userPropertiesShape)"
    #expect(pinned(#"[{"key": "a", "value": "1", "vaule": "2"}]"#) == [refused])
    #expect(pinned(#"[["a", 1]]"#) == [refused])
    #expect(pinned(#""a=1""#) == [refused])
  }
}
