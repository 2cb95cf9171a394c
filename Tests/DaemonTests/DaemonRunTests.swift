import Foundation
import RulesEngine
import TestSupport
import Testing

/// The built binary over real files: the sample stream, error paths with real failures, SIGTERM, and
/// hot reload under traffic.
struct DaemonRunTests {
  /// A replay is a batch: with a rule file that does not load it does not run (exit 65), rather than
  /// give an incomplete result with exit 0.
  @Test func replayRefusesBrokenRules() async throws {
    let folder = temporaryFolder("broken-rules")
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/ok.json")
    write(#"{"sql": "SELECT * FROM"}"#, to: folder + "/rules/bad.json")
    write(#"{"topic": "a/1", "payload": {"n": 1}}"# + "\n", to: folder + "/feed.jsonl")
    let (status, _, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(status == 65)
    #expect(errors.contains("rules/bad.json:1:23: error: expected a topic filter after FROM"), "\(errors)")
    #expect(
      errors.contains(
        "iotrules: error: 1 rule file failed to load (errors above); a replay does not run with broken rules"),
      "\(errors)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.jsonl"))
    // A rule file that cannot be read (a link to nothing) is an I/O problem: 74, as `check` says.
    try FileManager.default.removeItem(atPath: folder + "/rules/bad.json")
    try FileManager.default.createSymbolicLink(
      atPath: folder + "/rules/gone.json", withDestinationPath: folder + "/nowhere.json")
    let (unreadable, _, said) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(
      unreadable == 74 && said.contains("rules/gone.json:1:1: error: cannot read it"), "\(unreadable) \(said)"
    )
  }

  /// A dead-letter file replays as it is: each record's message goes again through the rule that
  /// failed it, and only that rule (the others had taken it), with its payload as it came; a record
  /// for a rule that is not loaded is said once and goes nowhere.
  @Test func aDeadLetterFileIsDrivenAgainThroughItsRulesOnly() async throws {
    let folder = temporaryFolder("redrive")
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "out/a.jsonl"}}]}"#,
      to: folder + "/rules/a.json")
    // b's path renders a hidden name (no `x` in the messages): its results are dead-lettered.
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "bout/${x}.jsonl"}}]}"#,
      to: folder + "/rules/b.json")
    write(
      #"{"topic": "a/1", "payload": {"n": 1}}"# + "\n" + #"{"topic": "a/2", "payload_base64": "AP8="}"#
        + "\n",
      to: folder + "/feed.jsonl")
    let first = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(first.0 == 0, "\(first.2)")
    // b is mended; the dead-letter file (plus a record of a rule that is gone) is replayed.
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "bout/b.jsonl"}}]}"#,
      to: folder + "/rules/b.json")
    let records = try String(contentsOfFile: folder + "/dl.jsonl", encoding: .utf8)
    #expect(records.split(separator: "\n").count == 2, "\(records)")
    write(
      records + #"{"ruleName": "gone", "topic": "a/3", "base64OriginalPayload": "e30="}"# + "\n"
        + #"{"ruleName": "gone", "topic": "a/4", "base64OriginalPayload": "e30="}"# + "\n",
      to: folder + "/again.jsonl")
    let (status, output, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:again.jsonl", "--dead-letter", "dl2.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(
      errors.contains(
        "again.jsonl:3: the record is for rule 'gone', which is not loaded, is disabled or does not match topic 'a/3'"
      ),
      "\(errors)")
    // Said once, counted twice.
    #expect(!errors.contains("again.jsonl:4:"), "\(errors)")
    #expect(
      output.contains("4 lines, 4 messages (0 malformed) (2 messages for rules not loaded, to no rule), "),
      "\(output)")
    // a took each message once (the first run); b has both, the binary one as its base64 line.
    let a = try String(contentsOfFile: folder + "/out/a.jsonl", encoding: .utf8)
    #expect(a.split(separator: "\n").count == 2, "\(a)")
    let b = try String(contentsOfFile: folder + "/bout/b.jsonl", encoding: .utf8)
    #expect(b == #"{"n":1}"# + "\n" + #"{"payload_base64":"AP8="}"# + "\n", "\(b)")
  }

  /// Tests gate the first load as they gate reloads: a rule whose tests fail is not loaded (a replay
  /// then does not run); `--skip-tests` loads it.
  @Test func rulesWhoseTestsFailDoNotLoad() async throws {
    let folder = temporaryFolder("failing-tests")
    write(
      #"{"sql": "SELECT n FROM 'a/#' WHERE n > 1", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/pick.json")
    write(
      #"[{"name": "one passes", "topic": "a/1", "payload": {"n": 1}, "expect": {"output": {"n": 1}}}]"#,
      to: folder + "/rules/pick.test.json")
    write(#"{"topic": "a/1", "payload": {"n": 2}}"# + "\n", to: folder + "/feed.jsonl")
    let arguments = ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"]
    let (status, _, errors) = try await runIotrules(arguments, in: folder)
    #expect(status == 65)
    #expect(
      errors.contains("rules/pick.json:1:1: error: rule 'pick' not loaded: 1 of 1 test(s)"), "\(errors)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.jsonl"))
    let (skipped, _, _) = try await runIotrules(arguments + ["--skip-tests"], in: folder)
    #expect(skipped == 0)
    #expect(FileManager.default.fileExists(atPath: folder + "/out.jsonl"))
    // `check` passes only what `run` loads: the failing tests make the rule invalid there too.
    let (checked, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(checked == 65)
    #expect(
      output.contains("rules/pick.json:1:1: error: `run` would not load this rule: 1 of 1 test(s)"),
      "\(output)")
    #expect(try await runIotrules(["check", "--skip-tests", "rules"], in: folder).0 == 0)
  }

  /// With JSON logs a run's end is a record with its counts, and a rule file's error carries its
  /// place as fields; text logs do not repeat the place the line starts with.
  @Test func jsonLogsEndWithTheSummaryAndPlaceErrors() async throws {
    let folder = temporaryFolder("json-summary")
    write(
      #"{"sql": "SELECT n FROM 'a/#'", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/good.json")
    write(#"{"sql": "SELECT n FROM 'a/#'" "actions": []}"#, to: folder + "/other/bad.json")
    write(#"{"topic": "a/1", "payload": {"n": 2}}"# + "\n" + "{bad\n", to: folder + "/feed.jsonl")
    let (status, _, errors) = try await runIotrules(
      [
        "run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl", "--log-format",
        "json",
      ],
      in: folder)
    #expect(status == 0)
    let records = errors.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    let end = try #require(records.last, "\(errors)")
    #expect(end["message"] as? String == "run ended" && end["exitStatus"] as? Int == 0, "\(end)")
    #expect(end["messages"] as? Int == 1 && end["actionWrites"] as? Int == 1, "\(end)")
    #expect((end["time"] as? String)?.count == "2026-12-02T16:24:46.123Z".count, "\(end)")
    // A malformed line names its file beside its line.
    let malformed = try #require(records.first { $0["message"] as? String == "malformed line" }, "\(errors)")
    #expect(malformed["file"] as? String == "feed.jsonl" && malformed["line"] as? Int == 2, "\(malformed)")
    // A stream of malformed lines is logged under a budget, as action failures are: the first of a
    // minute, then counted, the rest said once the run ends (each was a line of its own).
    write(String(repeating: "{bad\n", count: 25), to: folder + "/bad.jsonl")
    let (_, badOutput, badErrors) = try await runIotrules(
      [
        "run", "--rules", "rules", "--source", "file:bad.jsonl", "--dead-letter", "dl.jsonl", "--log-format",
        "json",
      ],
      in: folder)
    let badRecords = badErrors.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    #expect(
      badRecords.filter { $0["message"] as? String == "malformed line" }.count == LogBudget.linesPerMinute,
      "\(badErrors)")
    let unsaid = try #require(
      badRecords.first { $0["message"] as? String == "malformed lines not logged" }, "\(badErrors)")
    #expect(unsaid["count"] as? Int == 25 - LogBudget.linesPerMinute, "\(unsaid)")
    #expect(badOutput.contains("(25 malformed)") || badErrors.contains("\"malformed\":25"), "\(badOutput)")
    let (_, _, broken) = try await runIotrules(
      ["run", "--rules", "other", "--source", "file:feed.jsonl", "--log-format", "json"], in: folder)
    let error = try #require(
      broken.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
      }
      .first { $0["level"] as? String == "error" }, "\(broken)")
    #expect(
      error["file"] as? String == "other/bad.json" && error["line"] as? Int == 1
        && error["column"] as? Int == 31, "\(error)")
    let (_, _, text) = try await runIotrules(
      ["run", "--rules", "other", "--source", "file:feed.jsonl"], in: folder)
    #expect(text.contains("event=load [Daemon] other/bad.json:1:31: error:"), "\(text)")
  }

  /// A test file whose rule was renamed away is said by `run` too (as `check` fails it): the rule
  /// would otherwise stop being tested without a word.
  @Test func aTestFileWithoutItsRuleIsSaidByRun() async throws {
    let folder = temporaryFolder("orphan-tests")
    write(
      #"{"sql": "SELECT n FROM 'a/#'", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/renamed.json")
    write("[]", to: folder + "/rules/old.test.json")
    write(#"{"topic": "a/1", "payload": {"n": 2}}"# + "\n", to: folder + "/feed.jsonl")
    let arguments = ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"]
    let (status, _, errors) = try await runIotrules(arguments, in: folder)
    #expect(status == 0)
    #expect(
      errors.contains(
        "rules/old.test.json:1:1: error: no rule file beside this test file (looked for rules/old.json"),
      "\(errors)")
    #expect(FileManager.default.fileExists(atPath: folder + "/out.jsonl"))
  }

  /// A broken test file is said once: the rule's line says the file is broken, then each problem
  /// follows once, in line order, naming its case.
  @Test func aBrokenTestFileIsSaidOnceInOrder() async throws {
    let folder = temporaryFolder("broken-tests")
    write(
      #"{"sql": "SELECT n FROM 'a/#'", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/pick.json")
    write(
      """
      [{"name": "no expectation", "topic": "a/1", "payload": {"n": 1}, "expext": {}},
       {"name": "odd", "topic": "a/1", "expect": {"file": 1}}]
      """, to: folder + "/rules/pick.test.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 65)
    #expect(
      output == """
        rules/pick.json:1:1: error: `run` would not load this rule: its test file rules/pick.test.json is broken (3 problems)
        rules/pick.test.json:1:2: error: case 'no expectation': missing 'expect', one of {"output": ...}, {"empty_output": true}, {"no_match": true}, {"actions": [...]}
        rules/pick.test.json:1:66: error: case 'no expectation': unknown key 'expext'; did you mean 'expect'?; expected clientId, context, expect, name, payload, payload_base64, timestamp, topic
        rules/pick.test.json:2:45: error: case 'odd': unknown expectation 'file'; expected output, empty_output, no_match or actions
        0 valid, 1 invalid

        """)
  }

  /// A dead-letter path that cannot take records stops the daemon at start (exit 74), before any
  /// message depends on it; a good one is not created until a record comes.
  @Test func anUnusableDeadLetterPathIsSaidAtStart() async throws {
    let folder = temporaryFolder("dead-letter-dir")
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"file": {"path": "out.jsonl"}}]}"#,
      to: folder + "/rules/r.json")
    write(#"{"topic":"q/1","payload":{"n":1}}"# + "\n", to: folder + "/feed.jsonl")
    try FileManager.default.createDirectory(atPath: folder + "/dl", withIntermediateDirectories: true)
    let arguments = ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter"]
    let (status, _, errors) = try await runIotrules(arguments + ["dl"], in: folder)
    #expect(status == 74)
    #expect(errors.contains("cannot use dead-letter file dl: it is a directory"), "\(errors)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.jsonl"))
    #expect(try await runIotrules(arguments + ["good/dl.jsonl"], in: folder).0 == 0)
    #expect(!FileManager.default.fileExists(atPath: folder + "/good/dl.jsonl"))
  }

  /// A replay whose failures the dead-letter file refuses ends (exit 74, those messages
  /// unacknowledged) however many there are: held, they would fill the in-flight bound and the
  /// replay would never reach its end.
  @Test func aReplayEndsWhenTheDeadLetterFileRefusesRecords() async throws {
    let (port, holder) = try ProcessSupport.refusingPort()
    defer { close(holder) }
    let folder = temporaryFolder("dead-letter-full")
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "http://127.0.0.1:\#(port)/x", "retry": {"attempts": 1}}}]}"#,
      to: folder + "/rules/r.json")
    write(
      (1...10).map { #"{"topic":"q/1","payload":{"n":\#($0)}}"# }.joined(separator: "\n") + "\n",
      to: folder + "/feed.jsonl")
    // A replay that never ends is killed after runIotrules's timeout (no status). Alone the run takes 0.1 s;
    // among the parallel tests on two cores it has taken 35 s, so the test does not time it.
    let (status, out, errors) = try await runIotrules(
      [
        "run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "/dev/full",
        "--max-in-flight", "2", "--log-format", "json",
      ],
      in: folder)
    #expect(status == 74)
    #expect(out.contains("0 acknowledged, 10 not acknowledged"), "\(out)")
    // The JSON log's last record says the exit status, as a failed start's does.
    let last = errors.split(separator: "\n").last.flatMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    #expect(last?["message"] as? String == "run ended" && last?["exitStatus"] as? Int == 74, "\(errors)")
    // Said as a replay's, at once, not as if the run were ending.
    #expect(
      errors.contains("dead-letter write failed in a replay: the message is not acknowledged"), "\(errors)")
    #expect(!errors.contains("as the run ends"), "\(errors)")
  }

  /// A start that fails after the rules loaded shuts down the actions they started: a replay with
  /// a broken rule beside an http rule exits 65 saying why, and a metrics port in use exits 74 saying
  /// so, before any action starts (both stopped a debug build, exit 132, on the http client's
  /// missing shutdown).
  @Test func aStartThatFailsAfterTheLoadSaysWhy() async throws {
    let folder = temporaryFolder("start-fails")
    write(
      #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"http": {"url": "http://127.0.0.1:9/x"}}]}"#,
      to: folder + "/rules/h.json")
    write(#"{"topic": "a/1", "payload": {}}"# + "\n", to: folder + "/in.jsonl")
    let (port, holder) = try ProcessSupport.refusingPort()
    defer { close(holder) }
    let (busy, _, busyErrors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:in.jsonl", "--metrics-port", "\(port)"], in: folder)
    #expect(busy == 74, "\(busyErrors)")
    #expect(busyErrors.contains("metrics: cannot listen on 127.0.0.1:\(port)"), "\(busyErrors)")
    write(#"{"sql": "SELECT FROM", "actions": []}"#, to: folder + "/rules/broken.json")
    let (broken, _, brokenErrors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:in.jsonl"], in: folder)
    #expect(broken == 65, "\(brokenErrors)")
    #expect(brokenErrors.contains("a replay does not run with broken rules"), "\(brokenErrors)")
  }

  /// A folder without rule files is an error for `check` (a mistyped path in CI must not pass).
  @Test func checkOfAnEmptyFolderFails() async throws {
    let folder = temporaryFolder("check-empty")
    try FileManager.default.createDirectory(atPath: folder + "/rules", withIntermediateDirectories: true)
    let (status, _, errors) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 66)
    #expect(errors.contains("no rule files (*.json, *.yaml, *.yml) in rules"), "\(errors)")
    // Also beside a folder with a valid rule.
    write(#"{"sql": "SELECT * FROM 'a'", "actions": []}"#, to: folder + "/good/r.json")
    let (both, _, said) = try await runIotrules(["check", "good", "rules"], in: folder)
    #expect(both == 66)
    #expect(said.contains("no rule files (*.json, *.yaml, *.yml) in rules"), "\(said)")
    #expect(try await runIotrules(["check", "good"], in: folder).0 == 0)

    // `run` refuses it too (exit 66): it would acknowledge every message with nothing written.
    write(#"{"topic":"q/1","payload":{"n":1}}"# + "\n", to: folder + "/feed.jsonl")
    let (ran, _, why) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl"], in: folder)
    #expect(ran == 66)
    #expect(why.contains("no rule files (*.json, *.yaml, *.yml) in rules: nothing to run"), "\(why)")
    // Beside a folder of rules too (it started, and ran the other folder's rules alone).
    let (besides, _, besidesWhy) = try await runIotrules(
      ["run", "--rules", "good", "--rules", "rules", "--source", "file:feed.jsonl"], in: folder)
    #expect(besides == 66)
    #expect(
      besidesWhy.contains("no rule files (*.json, *.yaml, *.yml) in rules: nothing to run"), "\(besidesWhy)")
    // A test file named beside its rule holds no rule, and is no empty path (`check` takes it).
    write(
      #"{"cases": [{"topic": "a", "payload": {"n": 1}, "expect": {"output": {"n": 1}}}]}"#,
      to: folder + "/tested/r.test.json")
    write(#"{"sql": "SELECT * FROM 'a'", "actions": []}"#, to: folder + "/tested/r.json")
    let (named, _, namedWhy) = try await runIotrules(
      ["run", "--rules", "tested/r.json", "--rules", "tested/r.test.json", "--source", "file:feed.jsonl"],
      in: folder)
    #expect(named == 0, "\(namedWhy)")
    // Options out of range are usage errors (64), not traps.
    for bad in [
      ["--metrics-port", "70000"], ["--metrics-port", "-1"], ["--reload-interval-ms", "0"],
      // Its sleep's nanoseconds overflowed, a trap after the rules loaded.
      ["--reload-interval-ms", "18446744073710"],
      // A broker URL that cannot be connected to: an I/O error (74) once the rules had loaded.
      ["--source", "mqtt://"], ["--source", "mqtt://127.0.0.1:1/path"],
      ["--source", "mqtt://127.0.0.1:99999"],
      ["--source", "mqtt://u:p@127.0.0.1:1"], ["--mqtt", "mqtt://127.0.0.1:0"],
      ["--source", "mqtt://u:secret@127.0.0.1:99999"],
      ["--dead-letter", ""],
      // A Kafka URL or setting that cannot work, said before anything starts.
      ["--source", "kafka://127.0.0.1:1/t"], ["--source", "kafka://127.0.0.1:1/a/b?group=g"],
      ["--source", "kafka://127.0.0.1:1/t?group=g", "--kafka-config", "foo.bar=1"],
    ] {
      let source = bad.contains("--source") ? [] : ["--source", "file:feed.jsonl"]
      let (status, _, said) = try await runIotrules(["run", "--rules", "good"] + source + bad, in: folder)
      #expect(status == 64, "\(bad): \(said)")
      #expect(!said.contains("more than once"), "\(bad): \(said)")
      // A password given in the URL is never quoted back.
      #expect(!said.contains("secret"), "\(bad): \(said)")
    }
    // A negative number is the range's error, not "Missing value" (read as an option).
    for (bad, reason) in [
      (["--max-in-flight", "-5"], "must be at least 1, not -5"), (["--metrics-port", "-1"], "not -1"),
      (["--reload-interval-ms", "-1"], "not -1"),
    ] {
      let (status, _, said) = try await runIotrules(
        ["run", "--rules", "good", "--source", "file:feed.jsonl"] + bad, in: folder)
      #expect(status == 64 && said.contains(reason), "\(bad): \(said)")
    }
    // So is an option this run has no use for, said rather than taken without a word (a `--qos 0`
    // on a replay, a `--follow` on a broker, `--metrics-address` without its port, a second
    // `--source`: the last one was read).
    let mqtt = "mqtt://127.0.0.1:1"
    for (options, reason) in [
      (["--source", "file:feed.jsonl", "--qos", "0"], "--qos is for an MQTT source"),
      (["--source", "-", "--follow", "--basic-ingest"], "--basic-ingest is for an MQTT source"),
      (
        ["--source", "kafka://127.0.0.1:1/t?group=g", "--shared-group", "g"],
        "--shared-group is for an MQTT source"
      ),
      (["--source", "file:feed.jsonl", "--username", "u"], "--username is for an MQTT connection"),
      (
        ["--source", "file:feed.jsonl", "--password-file", "/nonexistent"],
        "--password-file is for an MQTT connection"
      ),
      (["--source", mqtt, "--follow"], "--follow is for a file source"),
      // A scheme in any case, as a broker URL's is read (it was an unknown source).
      (["--source", "MQTT://127.0.0.1:1", "--follow"], "--follow is for a file source"),
      (["--source", mqtt, "--max-line-bytes", "1"], "--max-line-bytes is for a file source"),
      (["--source", mqtt, "--kafka-topic-from", "topic"], "--kafka-topic-from is for a Kafka source"),
      (
        ["--source", "file:feed.jsonl", "--kafka-config", "fetch.min.bytes=1"],
        "--kafka-config is for a Kafka source"
      ),
      (
        ["--source", mqtt, "--mqtt", "mqtt://127.0.0.1:2"],
        "--mqtt is the broker republish uses when the source"
      ),
      (["--source", "file:feed.jsonl", "--metrics-address", "0.0.0.0"], "no --metrics-port is given"),
      (["--source", "file:absent.jsonl", "--source", "file:feed.jsonl"], "--source is given more than once"),
    ] {
      let (status, _, said) = try await runIotrules(["run", "--rules", "good"] + options, in: folder)
      #expect(status == 64 && said.contains(reason), "\(options): \(status) \(said)")
    }
    // An MQTT connection's options serve the republish broker of a replay too.
    let (republishing, _, republishingSaid) = try await runIotrules(
      [
        "run", "--rules", "good", "--source", "file:feed.jsonl", "--mqtt", "mqtt://127.0.0.1:1",
        "--client-id", "r",
        "--mqtt-version", "3.1.1", "--username", "u",
      ], in: folder)
    #expect(republishing == 0, "\(republishingSaid)")
    // So is a source of no known kind; a replay file that is not there cannot be read (74), said
    // as every command says it.
    let (unknown, _, unknownSaid) = try await runIotrules(
      ["run", "--rules", "good", "--source", "bogus://x"], in: folder)
    #expect(unknown == 64, "\(unknownSaid)")
    #expect(unknownSaid.contains("unknown source 'bogus://x'"), "\(unknownSaid)")
    let (missing, _, missingSaid) = try await runIotrules(
      ["run", "--rules", "good", "--source", "file:absent.jsonl"], in: folder)
    #expect(missing == 74, "\(missingSaid)")
    #expect(missingSaid.contains("iotrules: error: absent.jsonl: no such file or folder"), "\(missingSaid)")
    // With JSON logs, that last word is a JSON record too.
    let (jsonStatus, jsonOut, jsonErr) = try await runIotrules(
      ["run", "--rules", "good", "--source", "file:absent.jsonl", "--log-format", "json"], in: folder)
    #expect(jsonStatus == 74)
    let lines = (jsonOut + jsonErr).split(separator: "\n")
    #expect(!lines.isEmpty)
    for line in lines {
      #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "\(line)")
    }
    let last = try #require(
      lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        .first { $0["level"] as? String == "critical" })
    #expect(last["message"] as? String == "absent.jsonl: no such file or folder")
    #expect(last["exitStatus"] as? Int == 74)
    #expect(last["source"] as? String == "iotrules", "\(last)")
    // Counts are JSON numbers, not text.
    let loaded = try #require(
      lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        .first { $0["message"] as? String == "rules loaded" })
    #expect(loaded["rules"] as? Int == 1 && loaded["errors"] as? Int == 0, "\(loaded)")
    // Every line of standard error is a record: a usage error, and a run whose dead-letter stream
    // is standard output (the summary is the `run ended` record). (A lost standard output:
    // Tests/cli/test_eval.py.)
    write(#"{"topic":"a/1","payload":{"n":1}}"# + "\n", to: folder + "/feed.jsonl")
    for (arguments, status, said) in [
      (["--source", "file:feed.jsonl", "--dead-letter", "feed.jsonl"], 64, "is the dead-letter file"),
      (["--source", "file:feed.jsonl", "--dead-letter", "/dev/stdout"], 0, "run ended"),
    ] {
      let (ran, _, errors) = try await runIotrules(
        ["run", "--rules", "good"] + arguments + ["--log-format=json"], in: folder)
      let records = errors.split(separator: "\n").map {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
      }
      #expect(!records.isEmpty && records.allSatisfy { $0 != nil }, "\(arguments): \(errors)")
      #expect(ran == Int32(status), "\(arguments): \(errors)")
      let last = records.last.flatMap { $0 }
      #expect((last?["message"] as? String)?.contains(said) == true, "\(arguments): \(errors)")
    }
  }

  /// Two daemons archiving to one file, rotating it by size, lose no line: a rotation never
  /// replaces a rotated file the other process made meanwhile (a plain rename did: about 1 line in
  /// 250 was lost, while both counted every line written).
  @Test func twoProcessesRotatingOneArchiveLoseNothing() async throws {
    let folder = temporaryFolder("two-rotators")
    let count = 20_000
    for name in ["a", "b"] {
      write(
        #"{"sql": "SELECT seq, '\#(name)' AS r FROM 'd/#'", "actions": [{"file": {"path": "arch/out.jsonl", "rotate": {"maxBytes": 1000}, "fsync": "never"}}]}"#,
        to: folder + "/rules-\(name)/r.json")
    }
    write(
      (0..<count).map { #"{"topic":"d/1","payload":{"seq":\#($0)}}"# }.joined(separator: "\n") + "\n",
      to: folder + "/feed.jsonl")
    func arguments(_ name: String) -> [String] {
      ["run", "--rules", "rules-\(name)", "--source", "file:feed.jsonl", "--dead-letter", "dl-\(name).jsonl"]
    }
    let forA = arguments("a")
    let forB = arguments("b")
    async let first = runIotrules(forA, in: folder)
    async let second = runIotrules(forB, in: folder)
    let (a, b) = try await (first, second)
    #expect(a.0 == 0 && b.0 == 0, "\(a.2) \(b.2)")
    var seen: [String: Int] = [:]
    let names = try FileManager.default.contentsOfDirectory(atPath: folder + "/arch")
    for name in names where name.hasPrefix("out.jsonl") {
      for line in try String(contentsOfFile: folder + "/arch/" + name, encoding: .utf8).split(separator: "\n")
      {
        seen[String(line), default: 0] += 1
      }
    }
    var missing = 0
    for r in ["a", "b"] {
      for seq in 0..<count where seen[#"{"seq":\#(seq),"r":"\#(r)"}"#] != 1 { missing += 1 }
    }
    #expect(missing == 0, "\(missing) lines missing or repeated in \(names.count) files")
    #expect(seen.count == 2 * count)
  }

  @Test func sampleStreamToRowsAndArchiveFiles() async throws {
    let folder = temporaryFolder("e2e")
    let (status, output, errors) = try await runIotrules(
      [
        "run", "--rules", packageRoot + "/Rules", "--source",
        "file:" + packageRoot + "/Rules/samples/sensors.jsonl",
        "--dead-letter", "data/dead-letter.jsonl",
      ], in: folder)
    #expect(status == 0, "\(errors)")
    // What the sample holds, read independently.
    var hot: [(String, Double)] = []
    var sensorMessages = 0
    var binary = 0
    for line in try String(contentsOfFile: packageRoot + "/Rules/samples/sensors.jsonl", encoding: .utf8)
      .split(separator: "\n")
    {
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let topic = object["topic"] as? String
      else { continue }
      if let encoded = object["payload_base64"] as? String {
        guard Data(base64Encoded: encoded) != nil else { continue }
        binary += 1
      } else if object["payload"] == nil {
        continue
      }
      sensorMessages += 1
      if topic.hasSuffix("/data"), let payload = object["payload"] as? [String: Any],
        let temp = payload["temp"] as? Double,
        temp > 30
      {
        hot.append((payload["deviceId"] as! String, temp))
      }
    }
    #expect(output.contains("\(sensorMessages) messages (5 malformed)"), "\(output)")
    #expect(output.contains("\(sensorMessages) acknowledged"))
    let rows = try sqliteQuery(
      folder + "/data/iot.db", "SELECT deviceId, temp, humidity, ts FROM high_temps ORDER BY rowid")
    #expect(rows.count == hot.count)
    #expect(rows.first?.hasPrefix("[\"\(hot[0].0)\", \(hot[0].1), ") == true, "\(rows.first ?? "")")
    // The archive: one folder per device, one file per day, every sensor message once.
    let devices = try FileManager.default.contentsOfDirectory(atPath: folder + "/archive").sorted()
    #expect(devices == (1...8).map { String(format: "dev-%02d", $0) })
    var archived = 0
    var archivedBinary = 0
    for device in devices {
      for file in try FileManager.default.contentsOfDirectory(atPath: folder + "/archive/" + device) {
        #expect(file.hasPrefix("2024-06-0") && file.hasSuffix(".jsonl"))
        let lines = try String(contentsOfFile: folder + "/archive/\(device)/\(file)", encoding: .utf8).split(
          separator: "\n")
        archived += lines.count
        archivedBinary += lines.filter { $0.hasPrefix("{\"payload_base64\":") }.count
      }
    }
    #expect(archived == sensorMessages)
    #expect(archivedBinary == binary)
    #expect(!FileManager.default.fileExists(atPath: folder + "/data/dead-letter.jsonl"))
  }

  /// A message cannot write the daemon's own files through an archive whose root holds them: a
  /// rule JSON payload on `devices/rules/evil`, with the path `${topic(2)}/${topic(3)}.json` run
  /// where `rules/` is, made `rules/evil.json`, which the daemon loaded ("rules reloaded"). Its
  /// result is refused, naming the path and why, and goes to the dead-letter file; the other is
  /// archived; the load warns about the root.
  @Test func aMessageCannotWriteTheDaemonsOwnFiles() async throws {
    let folder = temporaryFolder("own-files")
    write(
      #"{"sql": "SELECT * FROM 'devices/#'", "actions": [{"file": {"path": "${topic(2)}/${topic(3)}.json"}}]}"#,
      to: folder + "/rules/archive.json")
    let rule = #"{"sql": "SELECT * FROM 'x'", "actions": []}"#
    write(
      #"{"topic": "devices/rules/evil", "payload": \#(rule)}"# + "\n"
        + #"{"topic": "devices/dev1/a", "payload": {"n": 1}}"# + "\n",
      to: folder + "/feed.jsonl")
    let (status, _, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(errors.contains("holds the rules folder 'rules'"), "\(errors)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/rules") == ["archive.json"])
    #expect(try String(contentsOfFile: folder + "/dev1/a.json", encoding: .utf8) == #"{"n":1}"# + "\n")
    let records = try String(contentsOfFile: folder + "/dl.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(records.count == 1)
    #expect(
      records.first?.contains(
        "rendered path './rules/evil.json' is in the rules folder 'rules', whose files the daemon loads (--rules): the archive never writes the daemon's own files"
      ) == true, "\(records)")
  }

  /// Nor the file being replayed: an archive path rendered to it appended each message back to
  /// the input (with `--follow`, read again without end), and one written as it, without a
  /// template, too. Each such result is refused and goes to the dead-letter file; the input stays
  /// as it was.
  @Test func aMessageCannotWriteTheFileBeingReplayed() async throws {
    let folder = temporaryFolder("replayed-file")
    write(
      #"{"sql": "SELECT * FROM 'h/+'", "actions": [{"file": {"path": "in/${topic(2)}.jsonl"}}, {"file": {"path": "in/a.jsonl"}}]}"#,
      to: folder + "/rules/loop.json")
    let input =
      #"{"topic": "h/a", "payload": {"v": 1}}"# + "\n" + #"{"topic": "h/b", "payload": {"v": 2}}"# + "\n"
    try FileManager.default.createDirectory(atPath: folder + "/in", withIntermediateDirectories: true)
    write(input, to: folder + "/in/a.jsonl")
    let (status, _, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:in/a.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(try String(contentsOfFile: folder + "/in/a.jsonl", encoding: .utf8) == input)
    #expect(try String(contentsOfFile: folder + "/in/b.jsonl", encoding: .utf8) == #"{"v":2}"# + "\n")
    let records = try String(contentsOfFile: folder + "/dl.jsonl", encoding: .utf8).split(separator: "\n")
    // One record a message: h/a's names both actions, h/b's the constant one.
    #expect(records.count == 2, "\(records)")
    let failures = records.map {
      $0.components(separatedBy: "the file 'in/a.jsonl' being replayed (--source)").count - 1
    }
    #expect(failures == [2, 1], "\(records)")
  }

  /// Nor the files another rule's actions own: a sqlite database and its journals (an archive
  /// that made `x.db` first ruined it for the database), a rule's error-action file (whose lines a
  /// replay sends: a forged record there was sent as the rule's). That rule's own error action
  /// writes its file as before.
  @Test func aMessageCannotWriteAnotherRulesFiles() async throws {
    let folder = temporaryFolder("rule-files")
    write(
      #"{"sql": "SELECT * FROM 'dev/#'", "actions": [{"file": {"root": "data", "path": "${f}"}}]}"#,
      to: folder + "/rules/arch.json")
    write(
      #"{"sql": "SELECT n FROM 'cmd/#'", "actions": [{"sqlite": {"database": "data/x.db", "table": "t"}}, {"http": {"url": "http://127.0.0.1:9/", "retry": {"attempts": 1}}}], "errorAction": {"file": {"path": "data/errors/cmd.jsonl"}}}"#,
      to: folder + "/rules/cmd.json")
    let forged = #"{"ruleName":"cmd","topic":"cmd/open","payload":{"op":"FORGED"}}"#
    let lines = ["x.db", "x.db-wal", "x.db-journal", "errors/cmd.jsonl"].map {
      #"{"topic": "dev/1", "payload": {"f": "\#($0)", "forged": \#(forged)}}"#
    }
    write(
      (lines + [
        #"{"topic": "dev/2", "payload": {"f": "ok.jsonl"}}"#, #"{"topic": "cmd/1", "payload": {"n": 1}}"#,
      ])
      .joined(separator: "\n") + "\n",
      to: folder + "/feed.jsonl")
    let (status, _, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter", "dl.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(try sqliteQuery(folder + "/data/x.db", "SELECT count(*) FROM t") == ["[1]"])
    let errorFile = try String(contentsOfFile: folder + "/data/errors/cmd.jsonl", encoding: .utf8)
    #expect(errorFile.split(separator: "\n").count == 1 && !errorFile.contains("FORGED"), "\(errorFile)")
    #expect(FileManager.default.fileExists(atPath: folder + "/data/ok.jsonl"))
    let records = try String(contentsOfFile: folder + "/dl.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(records.count == 4, "\(records)")
    for (record, what) in zip(records, ["database", "database", "database", "error-action file"]) {
      #expect(
        record.contains("the archive never writes the daemon's own files") && record.contains(what),
        "\(record)")
    }
  }

  @Test func realFailuresReachTheirErrorPaths() async throws {
    let folder = temporaryFolder("errors")
    // A read-only database, an archive folder that is a file, a hostile topic level, and an error
    // action that itself fails.
    let python = Process()
    python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    python.arguments = [
      // A file format write version above 2 (byte 18 of the header): SQLite opens the file
      // read-only, whoever runs the test (file permissions do not stop root).
      "python3", "-c",
      "import sqlite3; sqlite3.connect('\(folder)/ro.db').execute('create table t (v)'); "
        + "f = open('\(folder)/ro.db', 'r+b'); f.seek(18); f.write(bytes([3])); f.close()",
    ]
    try python.run()
    python.waitUntilExit()
    // A file where a rendered folder goes (one where the root's folders go is refused at load).
    write("", to: folder + "/blocked/ok")
    write(
      #"{"sql": "SELECT v FROM 'in/+'", "actions": [{"sqlite": {"database": "\#(folder)/ro.db", "table": "t"}}], "errorAction": {"file": {"path": "\#(folder)/errors/ro.jsonl"}}}"#,
      to: folder + "/rules/read_only.json")
    write(
      #"{"sql": "SELECT v FROM 'in/+'", "actions": [{"file": {"path": "\#(folder)/blocked/${topic(2)}/x.jsonl"}}], "errorAction": {"file": {"path": "\#(folder)/errors/blocked.jsonl"}}}"#,
      to: folder + "/rules/not_a_folder.json")
    write(
      #"{"sql": "SELECT v FROM 'in/+'", "actions": [{"file": {"path": "\#(folder)/arch/${topic(2)}/x.jsonl"}}], "errorAction": {"file": {"path": "\#(folder)/errors/hostile.jsonl"}}}"#,
      to: folder + "/rules/hostile.json")
    write(
      #"{"sql": "SELECT v FROM 'in/+'", "actions": [{"file": {"path": "\#(folder)/blocked/${topic(2)}/x.jsonl"}}], "errorAction": {"file": {"path": "\#(folder)/blocked/${topic(2)}/errors.jsonl"}}}"#,
      to: folder + "/rules/broken_error_action.json")
    write(
      [
        #"{"topic": "in/ok", "payload": {"v": 1}, "clientId": "c1"}"#,
        #"{"topic": "in/..", "payload": {"v": 2}}"#,
      ].joined(separator: "\n"),
      to: folder + "/input.jsonl")
    let (status, output, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--dead-letter", "dead.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(output.contains("2 messages (0 malformed)") && output.contains("2 acknowledged"), "\(output)")
    func records(_ path: String) -> [[String: Any]] {
      ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
      }
    }
    let readOnly = records(folder + "/errors/ro.jsonl")
    #expect(readOnly.count == 2)
    let first = try #require(readOnly.first)
    #expect(first["ruleName"] as? String == "read_only")
    #expect(first["topic"] as? String == "in/ok")
    #expect(first["clientId"] as? String == "c1")
    #expect(first["base64OriginalPayload"] as? String == Data(#"{"v": 1}"#.utf8).base64EncodedString())
    #expect(first["traceId"] is String && first["timestamp"] is Int)
    let failure = try #require((first["failures"] as? [[String: Any]])?.first)
    #expect(failure["failedAction"] as? String == "SqliteAction")
    #expect(failure["failedResource"] as? String == "\(folder)/ro.db#t")
    #expect((failure["errorMessage"] as? String)?.contains("readonly") == true)
    let blocked = records(folder + "/errors/blocked.jsonl")
    #expect(blocked.count == 2)
    // The failed resource is the file as rendered for that message, not the path template; a
    // rendering refused (`..` + `.jsonl` names a hidden file) is not echoed as the resource.
    #expect(
      Set(blocked.compactMap { ($0["failures"] as? [[String: Any]])?.first?["failedResource"] as? String })
        == ["\(folder)/blocked/ok/x.jsonl", "\(folder)/blocked/${topic(2)}/x.jsonl"])
    #expect(
      blocked.contains {
        (($0["failures"] as? [[String: Any]])?.first?["errorMessage"] as? String)?.contains(
          "has a '..' segment") == true
      })
    let hostile = records(folder + "/errors/hostile.jsonl")
    #expect(hostile.count == 1)
    #expect(hostile.first?["topic"] as? String == "in/..")
    #expect(
      ((hostile.first?["failures"] as? [[String: Any]])?.first?["errorMessage"] as? String)?.contains(
        "has a '..' segment") == true)
    #expect(FileManager.default.fileExists(atPath: folder + "/arch/ok/x.jsonl"))
    let dead = records(folder + "/dead.jsonl")
    #expect(dead.count == 2)
    #expect((dead.first?["failures"] as? [[String: Any]])?.count == 2)
  }

  /// AWS lets SET variables into error action substitution templates: the record's path reads the
  /// rule's `@dev`, at rule level and in an action's own error action (both rendered empty once).
  @Test func errorActionTemplatesReadTheRulesSETVariables() async throws {
    let folder = temporaryFolder("error-set")
    // Files where the rendered folders go: both actions fail.
    write("", to: folder + "/blocked/D1")
    write("", to: folder + "/blocked/own-D1")
    write(
      #"{"sql": "SET @dev = upper(topic(2)) SELECT v FROM 'in/+'", "actions": [{"file": {"path": "\#(folder)/blocked/${@dev}/x.jsonl"}}, {"file": {"path": "\#(folder)/blocked/own-${@dev}/x.jsonl", "errorAction": {"file": {"path": "\#(folder)/errors/own-${@dev}.jsonl"}}}}], "errorAction": {"file": {"path": "\#(folder)/errors/rule-${@dev}-${clientid()}.jsonl"}}}"#,
      to: folder + "/rules/set_paths.json")
    write(#"{"topic": "in/d1", "payload": {"v": 1}, "clientId": "c1"}"#, to: folder + "/input.jsonl")
    let (status, output, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--dead-letter", "dead.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(output.contains("1 acknowledged"), "\(output)")
    let written = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/errors")) ?? []
    #expect(Set(written) == ["rule-D1-c1.jsonl", "own-D1.jsonl"], "\(written)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/dead.jsonl"))
  }

  /// A template part whose value is past 64 MiB written (a SET variable repeating one string
  /// 65,536 times) fails its action to the error path, named; a column stored 131 MB, a path
  /// rendered 131 MB, before.
  @Test func templateValuesPast64MiBFailTheirActions() async throws {
    let folder = temporaryFolder("template-limit")
    let sixteen = { (name: String) in Array(repeating: name, count: 16).joined(separator: ", ") }
    let sql =
      "SET @a = [\(sixteen("s"))], @b = [\(sixteen("@a"))], @c = [\(sixteen("@b"))], @d = [\(sixteen("@c"))] "
      + "SELECT n FROM 'in/+'"
    write(
      #"{"sql": "\#(sql)", "actions": [{"sqlite": {"database": "\#(folder)/db.sqlite", "table": "t", "columns": {"n": "${n}", "d": "${@d}"}}}, {"file": {"path": "\#(folder)/arch/${@d}.jsonl"}}], "errorAction": {"file": {"path": "\#(folder)/errors.jsonl"}}}"#,
      to: folder + "/rules/huge.json")
    write(
      #"{"topic": "in/d1", "payload": {"n": 1, "s": "\#(String(repeating: "z", count: 2_000))"}}"#,
      to: folder + "/input.jsonl")
    let (status, output, errors) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--dead-letter", "dead.jsonl"], in: folder)
    #expect(status == 0, "\(errors)")
    #expect(output.contains("1 acknowledged") && output.contains("1 error record"), "\(output)")
    let record = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/errors.jsonl")))
        as? [String: Any])
    let messages = ((record["failures"] as? [[String: Any]]) ?? []).compactMap {
      $0["errorMessage"] as? String
    }
    #expect(
      messages == [
        "column 'd': a template's value is more than 64 MiB written as JSON (a value repeated in it counts each time); the rendering was stopped (at @d in the template)",
        "path: a template's value is more than 64 MiB written as JSON (a value repeated in it counts each time); the rendering was stopped (at @d in the template)",
      ], "\(messages)")
    #expect((try? FileManager.default.contentsOfDirectory(atPath: folder + "/arch")) ?? [] == [])
  }

  /// `--dead-letter /dev/stdout | consumer`: standard output carries the records and nothing else;
  /// the summary line goes to standard error.
  @Test func aDeadLetterStreamOnStandardOutputHoldsOnlyRecords() async throws {
    let folder = temporaryFolder("dead-stdout")
    write(
      #"{"sql": "SELECT n FROM 'a/+'", "actions": [{"sqlite": {"database": "x.db", "table": "t", "key": "deviceId"}}]}"#,
      to: folder + "/rules/r.json")
    write(
      (0..<3).map { #"{"topic": "a/b", "payload": {"n": \#($0)}}"# }.joined(separator: "\n"),
      to: folder + "/input.jsonl")
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--dead-letter", "/dev/stdout"], in: folder)
    #expect(await process.wait(seconds: 60) == 0, "\(process.stderr)")
    let lines = process.stdout.split(separator: "\n")
    #expect(lines.count == 3, "\(process.stdout)")
    #expect(lines.allSatisfy { $0.hasPrefix(#"{"ruleName":"r""#) }, "\(process.stdout)")
    #expect(process.stderr.contains("3 dead-lettered"), "\(process.stderr)")
  }

  /// A dead-letter pipe whose reader is gone (`--dead-letter /dev/stdout | ...`): the write fails
  /// with EPIPE and the message is kept unacknowledged, logged with its record, exit 74; SIGPIPE
  /// had ended the process on the spot (status 141 in a shell), with no word.
  @Test func aDeadLetterPipeWithoutReaderIsAFailedWriteNotADeath() async throws {
    let folder = temporaryFolder("epipe")
    write("", to: folder + "/arch/b")
    write(
      #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"file": {"path": "arch/${topic(2)}/x.jsonl"}}]}"#,
      to: folder + "/rules/r.json")
    write(#"{"topic": "a/b", "payload": {"i": 1}}"#, to: folder + "/input.jsonl")
    // Standard output becomes a pipe whose reader has exited.
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--dead-letter", "/dev/stdout"], in: folder,
      shellPrefix: "exec 1> >(exit 0); sleep 0.3")
    let status = await process.wait(seconds: 60)
    #expect(process.process.terminationReason == .exit, "\(String(describing: status))")
    #expect(status == 74, "\(process.stderr)")
    #expect(process.stderr.contains("write /dev/stdout: Broken pipe"), "\(process.stderr)")
    #expect(process.stderr.contains(#"\"origin\":\"input.jsonl:1\""#), "\(process.stderr)")
    // JSON logs into a pipe whose reader is gone too: the lines are dropped, the run goes on and
    // says its outcome by its status (FileHandle's write had stopped it: SIGILL).
    let logsGone = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--log-format", "json"], in: folder,
      shellPrefix: "exec 2> >(exit 0); sleep 0.3")
    let logsStatus = await logsGone.wait(seconds: 60)
    #expect(logsGone.process.terminationReason == .exit, "\(String(describing: logsStatus))")
    #expect(logsStatus == 0)
    #expect(FileManager.default.fileExists(atPath: folder + "/dead-letter.jsonl"))
  }

  /// Too few open files to run (at 16 to 20 libdispatch stopped the process with SIGILL mid-run):
  /// refused at start, saying how to raise the limit.
  @Test func tooFewOpenFilesIsRefusedAtStart() async throws {
    let folder = temporaryFolder("nofile")
    write(
      #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"file": {"path": "arch/${topic(2)}.jsonl"}}]}"#,
      to: folder + "/rules/r.json")
    write(#"{"topic": "a/b", "payload": {"i": 1}}"#, to: folder + "/input.jsonl")
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:input.jsonl"], in: folder,
      shellPrefix: "ulimit -n 40 || exit 70")
    let status = await process.wait(seconds: 60)
    #expect(status == 74, "\(process.stderr)")
    #expect(
      process.stderr.contains(
        "the open-files limit is 40, and the hard limit allows no more: iotrules needs at least 64"),
      "\(process.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/arch"))
  }

  /// SIGTERM while the rules load (seconds, with thousands of rules and their tests): the daemon
  /// starts, stops at once and says so, exit 0 (it died of the signal, 143, with no word).
  @Test func sigtermWhileTheRulesLoadStopsCleanly() async throws {
    let folder = temporaryFolder("sigterm-load")
    for index in 0..<1_000 {
      write(
        #"{"sql": "SELECT n FROM 'load/\#(index)'", "actions": [{"file": {"path": "out/\#(index).jsonl"}}]}"#,
        to: folder + "/rules/r\(index).json")
      write(
        #"{"cases": [{"topic": "load/\#(index)", "payload": {"n": 1}, "expect": {"output": {"n": 1}}}]}"#,
        to: folder + "/rules/r\(index).test.json")
    }
    write(#"{"topic": "load/1", "payload": {"n": 1}}"# + "\n", to: folder + "/input.jsonl")
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:input.jsonl", "--follow", "--log-format", "json"],
      in: folder)
    #expect(await process.waitUntilHandling(SIGTERM))
    process.signal(SIGTERM)
    let status = await process.wait(seconds: 120)
    #expect(process.process.terminationReason == .exit, "\(String(describing: status)) \(process.stderr)")
    #expect(status == 0, "\(process.stderr)")
    #expect(process.stderr.contains("\"message\":\"run ended\""), "\(process.stderr)")
    // Stopped before it started: the replay took no line (it took a block or two), and says so.
    if process.stderr.contains("a signal came while the daemon starts") {
      #expect(process.stdout.contains(" 0 messages"), "\(process.stdout)")
      #expect(process.stderr.contains("stopped before line 1;"), "\(process.stderr)")
      #expect(!FileManager.default.fileExists(atPath: folder + "/out/1.jsonl"))
    }
  }

  @Test func sigtermMidStreamDrains() async throws {
    let folder = temporaryFolder("sigterm")
    var lines = ""
    for index in 0..<300_000 {
      lines += #"{"topic":"s/\#(index % 7)","payload":{"n":\#(index),"temp":\#(index % 50)}}"# + "\n"
    }
    write(lines, to: folder + "/big.jsonl")
    write(
      #"{"sql": "SELECT n, temp FROM 's/+' WHERE temp > 25", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#,
      to: folder + "/rules/hot.json")
    // --follow: the run cannot end before the signal, however late this test's task gets a thread
    // under parallel tests (a fixed wait of 1.5 s once saw all 300,000 lines done first).
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:big.jsonl", "--follow"], in: folder)
    for _ in 0..<2_000 where !FileManager.default.fileExists(atPath: folder + "/out.db") {
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    #expect(process.process.isRunning, "finished before SIGTERM: \(process.stdout)")
    // Twice back to back, as `timeout` does (the daemon, then its process group): one stop, drained.
    process.signal(SIGTERM)
    process.signal(SIGTERM)
    let status = await process.wait(seconds: 60)
    #expect(status == 0, "\(process.stderr)")
    let summary = process.stdout
    // Everything taken in was finished: messages = acknowledged, rows = rule results.
    let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    #expect(numbers.count > 6, "\(summary)")
    let messages = numbers[1]
    let results = numbers[3]
    let acknowledged = numbers[5]
    #expect(messages > 0 && messages <= 300_000, "\(summary)")
    #expect(acknowledged == messages, "\(summary)")
    let rows = try sqliteQuery(folder + "/out.db", "SELECT count(*), count(DISTINCT n) FROM t")
    #expect(rows == ["[\(results), \(results)]"], "\(summary)")
  }

  /// Runs `arguments` reading `text` from a pipe kept open, sends SIGTERM after `seconds` (the process
  /// must still run then) and returns the process with its exit status.
  func sigtermAfter(seconds: Double, _ arguments: [String], in folder: String, writing text: String)
    async throws -> (Subprocess, Int32?)
  {
    let input = Pipe()
    let process = try Subprocess(arguments, in: folder, standardInput: input)
    input.fileHandleForWriting.write(Data(text.utf8))
    // The time counts from the daemon's start, not the process's.
    #expect(await process.waitUntilHandling(SIGTERM))
    try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    #expect(process.process.isRunning, "finished before SIGTERM: \(process.stdout)")
    process.signal(SIGTERM)
    let status = await process.wait(seconds: 30)
    try input.fileHandleForWriting.close()
    return (process, status)
  }

  /// `--follow` on a pipe ends where the pipe does (nothing can be appended to it): the run ends
  /// with the last line, even one without its newline, as `tail -f` does on a pipe.
  @Test func followingAPipeEndsWithIt() async throws {
    let folder = temporaryFolder("follow-pipe")
    write(
      #"{"sql": "SELECT n FROM 's/+'", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#,
      to: folder + "/rules/r.json")
    let input = Pipe()
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "-", "--follow"], in: folder, standardInput: input)
    input.fileHandleForWriting.write(
      Data((#"{"topic":"s/1","payload":{"n":1}}"# + "\n" + #"{"topic":"s/2","payload":{"n":2}}"#).utf8))
    try input.fileHandleForWriting.close()
    let status = await process.wait(seconds: 30)
    #expect(status == 0, "\(process.stderr)")
    #expect(process.stdout.contains("2 lines, 2 messages"), "\(process.stdout)")
    #expect(try sqliteQuery(folder + "/out.db", "SELECT n FROM t ORDER BY n") == ["[1]", "[2]"])
  }

  /// A FIFO as the replay file: the run waits for its writer, stops on SIGTERM while it waits (the
  /// open blocked until a writer came, deaf to signals), and reads what a writer sends until it
  /// closes, as `cat` does.
  @Test func replayingAFIFOWaitsForItsWriterAndStopsOnSIGTERM() async throws {
    let folder = temporaryFolder("fifo")
    write(
      #"{"sql": "SELECT n FROM 's/+'", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#,
      to: folder + "/rules/r.json")
    #expect(mkfifo(folder + "/feed.fifo", 0o600) == 0)
    let waiting = try Subprocess(["run", "--rules", "rules", "--source", "file:feed.fifo"], in: folder)
    // Started (its signal handling with it) once the rules are loaded, however slow the machine.
    for _ in 0..<2_000 where !waiting.stderr.contains("rules loaded") {
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    try await Task.sleep(nanoseconds: 500_000_000)
    #expect(waiting.process.isRunning, "\(waiting.stdout) \(waiting.stderr)")
    waiting.signal(SIGTERM)
    #expect(await waiting.wait(seconds: 20) == 0, "\(waiting.stderr)")
    #expect(waiting.stdout.contains("0 lines, 0 messages"), "\(waiting.stdout)")

    let reading = try Subprocess(["run", "--rules", "rules", "--source", "file:feed.fifo"], in: folder)
    // Opened for writing once the run has it open for reading (ENXIO until then).
    var writer: Int32 = -1
    for _ in 0..<2_000 where writer < 0 {
      writer = open(folder + "/feed.fifo", O_WRONLY | O_NONBLOCK)
      if writer < 0 { try await Task.sleep(nanoseconds: 10_000_000) }
    }
    #expect(writer >= 0)
    let lines = #"{"topic":"s/1","payload":{"n":1}}"# + "\n" + #"{"topic":"s/2","payload":{"n":2}}"# + "\n"
    #expect(lines.withCString { Glibc.write(writer, $0, strlen($0)) } == lines.utf8.count)
    close(writer)
    #expect(await reading.wait(seconds: 30) == 0, "\(reading.stderr)")
    #expect(reading.stdout.contains("2 lines, 2 messages"), "\(reading.stdout)")
    #expect(try sqliteQuery(folder + "/out.db", "SELECT n FROM t ORDER BY n") == ["[1]", "[2]"])
  }

  /// `--source -` waiting on a silent pipe still stops on SIGTERM (a blocked read never saw it).
  @Test func sigtermStopsAReplayWaitingOnStandardInput() async throws {
    let folder = temporaryFolder("sigterm-stdin")
    write(
      #"{"sql": "SELECT n FROM 's/+'", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#,
      to: folder + "/rules/r.json")
    let (process, status) = try await sigtermAfter(
      seconds: 1.5, ["run", "--rules", "rules", "--source", "-"], in: folder,
      writing: #"{"topic":"s/1","payload":{"n":1}}"# + "\n")
    #expect(status == 0, "\(process.stderr)")
    #expect(process.stdout.contains(", 1 message (0 malformed)"), "\(process.stdout)")
    #expect(try sqliteQuery(folder + "/out.db", "SELECT n FROM t") == ["[1]"])
  }

  /// SIGTERM during a long retry schedule: the backoffs end at once, each retry makes one last
  /// attempt and its record reaches the error path; the daemon does not wait out the schedule.
  @Test func sigtermCutsRetryBackoffsShort() async throws {
    // Held, never listening: every attempt is refused, and no other test's server takes the port.
    let (port, holder) = try ProcessSupport.refusingPort()
    defer { close(holder) }
    let folder = temporaryFolder("sigterm-retry")
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "http://127.0.0.1:\#(port)/in", "retry": {"attempts": 100, "initialBackoffMs": 500, "maxBackoffMs": 2000}}}]}"#,
      to: folder + "/rules/r.json")
    let lines = (1...3).map { #"{"topic":"q/\#($0)","payload":{"n":\#($0)}}"# }.joined(separator: "\n") + "\n"
    let started = Date()
    let (process, status) = try await sigtermAfter(
      seconds: 1.5, ["run", "--rules", "rules", "--source", "-", "--follow", "--dead-letter", "dl.jsonl"],
      in: folder, writing: lines)
    #expect(status == 0, "\(process.stderr)")
    // The schedule left would take minutes (100 attempts up to 2 s apart); stopping takes the last
    // attempts only. Alone this run takes 1.5 s; among the parallel tests on two cores it has taken
    // 12 to 22 s, and 64 s with two test runs at once, so the bound only tells a stop from the
    // schedule's three minutes.
    #expect(Date().timeIntervalSince(started) < 150)
    #expect(process.stdout.contains("3 acknowledged, 0 not acknowledged"), "\(process.stdout)")
    #expect(process.stdout.contains("3 dead-lettered"), "\(process.stdout)")
    let records = ((try? String(contentsOfFile: folder + "/dl.jsonl", encoding: .utf8)) ?? "")
      .split(separator: "\n")
    #expect(records.count == 3)
    // Each made its last attempt, or (a result whose retry had not begun when the action's last
    // attempt at the stop failed; rare, under load) was not sent again: both at once, both said.
    #expect(
      records.allSatisfy {
        $0.contains("retries stopped at shutdown") || $0.contains("not sent (again): the daemon is stopping")
      }, "\(records)")
    #expect(records.contains { $0.contains("retries stopped at shutdown") }, "\(records)")
  }

  /// An http batch held open for more results (`maxDelayMs` a minute) goes out as soon as the
  /// intake stops: at the end of a replay and on SIGTERM, the run does not wait out the delay (a
  /// service manager's stop timeout would kill it first, losing results read from a pipe).
  @Test func openHTTPBatchesGoOutWhenTheIntakeStops() async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    let path = "/batch-\(UUID().uuidString)"
    let rule =
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "\#(server.url(path))", "batch": {"maxSize": 100, "maxDelayMs": 60000}}}]}"#
    func ours() -> [String] {
      server.requests.filter { $0.uri == path }.map { String(decoding: $0.body, as: UTF8.self) }
    }

    let replay = temporaryFolder("batch-replay-end")
    write(rule, to: replay + "/rules/r.json")
    write(
      (1...3).map { #"{"topic":"q/1","payload":{"n":\#($0)}}"# }.joined(separator: "\n") + "\n",
      to: replay + "/feed.jsonl")
    let (status, out, err) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl"], in: replay, timeout: 40)
    #expect(status == 0, "the replay ended without waiting a minute: \(out) \(err)")
    #expect(out.contains("3 action writes"), "\(out)")
    #expect(ours() == [#"[{"n":1},{"n":2},{"n":3}]"#])

    let stopped = temporaryFolder("batch-sigterm")
    write(rule, to: stopped + "/rules/r.json")
    let input = Pipe()
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "-", "--follow", "--metrics-port", "0"], in: stopped,
      standardInput: input)
    input.fileHandleForWriting.write(Data((#"{"topic":"q/2","payload":{"n":4}}"# + "\n").utf8))
    for _ in 0..<100 where !process.stderr.contains("metrics on") {
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    try await Task.sleep(nanoseconds: 1_000_000_000)
    #expect(ours().count == 1, "held in its batch until the intake stops")
    process.signal(SIGTERM)
    let stoppedStatus = await process.wait(seconds: 40)
    try input.fileHandleForWriting.close()
    #expect(stoppedStatus == 0, "\(process.stdout) \(process.stderr)")
    #expect(process.stdout.contains("1 action write,"), "\(process.stdout)")
    #expect(ours().last == #"[{"n":4}]"#)
  }

  /// The end of a replay over a healthy webhook slower than results come: every result is sent,
  /// none fails unsent for want of one of the action's 8 connections (a stop used to end those
  /// waits: of 400, 336 went down the error path).
  @Test func theEndOfAReplayWaitsForASlowWebhook() async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    server.setFallback(.stall(milliseconds: 100))
    let path = "/slow-\(UUID().uuidString)"
    let folder = temporaryFolder("replay-slow-webhook")
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "\#(server.url(path))"}}], "errorAction": {"file": {"path": "errors.jsonl"}}}"#,
      to: folder + "/rules/r.json")
    write(
      (0..<200).map { #"{"topic":"q/\#($0 % 50)","payload":{"n":\#($0)}}"# }.joined(separator: "\n") + "\n",
      to: folder + "/feed.jsonl")
    let (status, out, err) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl"], in: folder, timeout: 120)
    #expect(status == 0, "\(out) \(err)")
    #expect(out.contains("200 action writes"), "\(out)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/errors.jsonl"))
    #expect(server.requests.filter { $0.uri == path }.count == 200)
  }

  /// A second SIGTERM while the drain waits on a stuck action exits at once (128 + the signal).
  @Test func secondSignalExitsWithoutDraining() async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    // Stuck for five minutes (each attempt ends at the longest timeoutMs, a minute, and the next
    // is stuck too): under parallel tests this test's task can wait for a thread, and a ten-second
    // stall once ended (the request answered, the run over) before the first signal, a one-minute
    // one with two test runs at once.
    server.setFallback(.stall(milliseconds: 300_000))
    let folder = temporaryFolder("sigterm-twice")
    // A path of this test's own: under parallel tests another test's daemon, given a "free" port
    // that this server took since, can send it requests; only this daemon's request counts.
    let path = "/in-\(UUID().uuidString)"
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "\#(server.url(path))", "timeoutMs": 60000}}]}"#,
      to: folder + "/rules/r.json")
    let input = Pipe()
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "-", "--follow"], in: folder, standardInput: input)
    input.fileHandleForWriting.write(Data((#"{"topic":"q/1","payload":{"n":1}}"# + "\n").utf8))
    func ours() -> Int { server.requests.filter { $0.uri == path }.count }
    for _ in 0..<100 where ours() == 0 { try await Task.sleep(nanoseconds: 100_000_000) }
    #expect(ours() == 1)
    process.signal(SIGTERM)
    try await Task.sleep(nanoseconds: 500_000_000)
    #expect(
      process.process.isRunning, "the first signal drains, waiting on the stuck request: \(process.stdout)")
    process.signal(SIGTERM)
    let status = await process.wait(seconds: 30)
    try input.fileHandleForWriting.close()
    #expect(status == 128 + SIGTERM, "\(process.stderr)")
    #expect(process.stderr.contains("second stop signal: exiting without draining"), "\(process.stderr)")
  }

  /// A webhook that always refuses one result (HTTP 500 for it alone) does not take the results
  /// of its topic behind it down the error path: they were failed unsent while it was retried, and
  /// are sent once it has run out of attempts. A webhook that answers every result with a 500 is
  /// there and refusing: each result has its own attempts, as in AWS (the rest went down their
  /// error paths unsent after one more attempt, which a burst of 503s turned into a lost backlog).
  @Test func oneRefusedResultDoesNotFailTheResultsBehindIt() async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    let id = UUID().uuidString
    server.route("/\(id)/poison", .serverError)
    server.route("/\(id)/down", .serverError)
    let folder = temporaryFolder("poison")
    write(
      #"{"sql": "SELECT * FROM 'p/+'", "actions": [{"http": {"url": "\#(server.url("/\(id)"))/${kind}/${n}", "confirmationUrl": "\#(server.url("/\(id)"))", "retry": {"attempts": 3, "initialBackoffMs": 10}}}], "errorAction": {"file": {"path": "errors.jsonl"}}}"#,
      to: folder + "/rules/r.json")
    let lines = (0..<20).map { n in
      #"{"topic": "p/1", "payload": {"kind": "\#(n == 0 ? "poison" : "fine")", "n": \#(n)}}"#
    }
    write(lines.joined(separator: "\n") + "\n", to: folder + "/feed.jsonl")
    let (status, out, err) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl"], in: folder)
    #expect(status == 0, "\(err)")
    let ours = server.requests.map(\.uri).filter { $0.hasPrefix("/\(id)/") }
    #expect(ours.filter { $0.hasPrefix("/\(id)/poison/") }.count == 3)
    #expect(Set(ours.filter { $0.hasPrefix("/\(id)/fine/") }) == Set((1..<20).map { "/\(id)/fine/\($0)" }))
    #expect(out.contains("19 action writes"), "\(out)")
    let records = try String(contentsOfFile: folder + "/errors.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(records.count == 1 && records[0].contains("answered HTTP 500 (after 3 attempts)"), "\(records)")

    // Every result refused: three attempts each.
    let down = temporaryFolder("down")
    write(
      #"{"sql": "SELECT * FROM 'p/+'", "actions": [{"http": {"url": "\#(server.url("/\(id)/down"))/${n}", "confirmationUrl": "\#(server.url("/\(id)/down"))", "retry": {"attempts": 3, "initialBackoffMs": 10}}}], "errorAction": {"file": {"path": "errors.jsonl"}}}"#,
      to: down + "/rules/r.json")
    write(lines.joined(separator: "\n") + "\n", to: down + "/feed.jsonl")
    let (downStatus, _, downErr) = try await runIotrules(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl"], in: down)
    #expect(downStatus == 0, "\(downErr)")
    let downRecords = try String(contentsOfFile: down + "/errors.jsonl", encoding: .utf8).split(
      separator: "\n")
    #expect(downRecords.count == 20)
    let sent = server.requests.filter { $0.uri.hasPrefix("/\(id)/down/") }.count
    #expect(sent == 60, "\(sent) requests")
    #expect(downRecords.filter { $0.contains("answered HTTP 500 (after 3 attempts)") }.count == 20)
  }

  /// SIGTERM while lines already read from standard input wait behind a slow action: they are
  /// processed (a pipe cannot give them again), not dropped.
  @Test func sigtermProcessesTheLinesAlreadyRead() async throws {
    let server = try LoopbackHTTPServer()
    defer { server.stop() }
    server.setFallback(.stall(milliseconds: 300))
    let folder = temporaryFolder("sigterm-read")
    write(
      #"{"sql": "SELECT n FROM 'q/+'", "actions": [{"http": {"url": "\#(server.url("/in"))"}}]}"#,
      to: folder + "/rules/r.json")
    let lines = (1...8).map { #"{"topic":"q/\#($0)","payload":{"n":\#($0)}}"# }.joined(separator: "\n") + "\n"
    let (process, status) = try await sigtermAfter(
      seconds: 1, ["run", "--rules", "rules", "--source", "-", "--follow", "--max-in-flight", "2"],
      in: folder,
      writing: lines)
    #expect(status == 0, "\(process.stderr)")
    #expect(process.stdout.contains("8 lines, 8 messages"), "\(process.stdout)")
    #expect(server.requests.count == 8)
  }

  @Test func hotReloadUnderTrafficLosesNothing() async throws {
    let folder = temporaryFolder("reload")
    let ruleV1 =
      #"{"sql": "SELECT n, 1 AS version FROM 'r/+'", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#
    let ruleV2 =
      #"{"sql": "SELECT n, 2 AS version FROM 'r/+'", "actions": [{"sqlite": {"database": "out.db", "table": "t"}}]}"#
    write(ruleV1, to: folder + "/rules/versioned.json")
    write("", to: folder + "/feed.jsonl")
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", "file:feed.jsonl", "--follow", "--reload-interval-ms", "50"],
      in: folder)
    let feed = FileHandle(forWritingAtPath: folder + "/feed.jsonl")!
    var sent = 0
    func send(_ count: Int) async throws {
      for _ in 0..<count {
        feed.write(Data((#"{"topic":"r/\#(sent % 3)","payload":{"n":\#(sent)}}"# + "\n").utf8))
        sent += 1
        if sent % 50 == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
      }
    }
    try await send(1000)
    // Version 1 has written rows before the edit (on a loaded machine the daemon may not have read
    // a line yet): at most 10 s.
    for _ in 0..<200 {
      if let count = try? sqliteQuery(folder + "/out.db", "SELECT count(*) FROM t"), count != ["[0]"] {
        break
      }
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    write(ruleV2, to: folder + "/rules/versioned.json")
    try await send(1000)
    // Version 2 is loaded before the broken edit replaces it (a reload takes two polls that see the
    // same file): at most 20 s.
    for _ in 0..<400 where !process.stderr.contains("rules reloaded") {
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    // A broken edit keeps version 2 running.
    write(
      #"{"sql": "SELECT n, 3 AS version FROM 'r/+'", "actions": [{"sqlite": {"table": "t"}}]}"#,
      to: folder + "/rules/versioned.json")
    try await send(1000)
    // Every line is through before the stop, which ends the intake (a fixed second was short on a
    // loaded machine): at most 30 s.
    for _ in 0..<300 {
      if (try? sqliteQuery(folder + "/out.db", "SELECT count(*) FROM t")) == ["[3000]"] { break }
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    process.signal(SIGTERM)
    let status = await process.wait(seconds: 60)
    try feed.close()
    #expect(status == 0, "\(process.stderr)")
    #expect(
      process.stderr.contains("rules/versioned.json:1:69: error: sqlite action: missing key 'database'"),
      "\(process.stderr)")
    let rows = try sqliteQuery(
      folder + "/out.db", "SELECT count(*), count(DISTINCT n), min(n), max(n) FROM t")
    #expect(rows == ["[3000, 3000, 0, 2999]"])
    let versions = try sqliteQuery(
      folder + "/out.db", "SELECT version, count(*) FROM t GROUP BY version ORDER BY version")
    #expect(versions.count == 2, "\(versions)")
    #expect(versions.first?.hasPrefix("[1, ") == true && versions.last?.hasPrefix("[2, ") == true)
    #expect(process.stdout.contains("3000 messages"))
  }
}
