import Daemon
import Foundation
import RulesEngine
import TestSupport
import Testing

struct RulesFolderTests {
  @Test func everyRuleFileInRulesIsValid() throws {
    let results = try RuleChecker.check(paths: [packageRoot + "/Rules"])
    #expect(results.count >= 2)
    for result in results {
      #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
    }
    #expect(Set(results.compactMap(\.rule)).isSuperset(of: ["high_temp", "archive_all"]))
  }

  @Test func checkCommandReportsPositionsAndExit65() async throws {
    let folder = temporaryFolder("check")
    write(
      """
      {
        "sql": "SELECT * FROM 'a/#'",
        "actions": [{"sqlite": {"database": "x.db", "table": "bad name", "synchronous": "off"}}]
      }
      """, to: folder + "/rules/broken.json")
    write(
      #"{"sql": "SELECT * FROM 'b'", "actions": [{"file": {"path": "out/${topic()}.jsonl"}}]}"#,
      to: folder + "/rules/good.json")
    write(
      #"{"sql": "SELECT * FROM 'c'", "actions": [{"kafka": {"bootstrapServers": "127.0.0.1:9092", "topic": "t"}}, {"republish": {"topic": "d/${topic()}"}}]}"#,
      to: folder + "/rules/later.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 65)
    #expect(
      output == """
        rules/broken.json:3:56: error: sqlite action: invalid table name 'bad name': it must match [A-Za-z_][A-Za-z0-9_]{0,127}
        rules/broken.json:3:83: error: sqlite action: 'synchronous' must be "normal" or "full"
        rules/good.json: ok (rule good)
        rules/later.json: ok (rule later)
        2 valid, 1 invalid

        """)
    let (jsonStatus, json, _) = try await runIotrules(
      ["check", "--format", "json", "rules/good.json"], in: folder)
    #expect(jsonStatus == 0)
    #expect(
      json
        == #"{"files":[{"file":"rules/good.json","rule":"good","valid":true,"errors":[],"warnings":[]}],"valid":1,"invalid":0}"#
        + "\n")
    // For GitHub Actions: the text, and each problem as an annotation on its line (`%`, `:` and
    // `,` encoded as GitHub reads them).
    let (githubStatus, github, _) = try await runIotrules(
      ["check", "--format", "github", "rules"], in: folder)
    #expect(githubStatus == 65)
    #expect(github.hasPrefix("rules/broken.json:3:56: error: sqlite action: invalid table name"), "\(github)")
    #expect(
      github.contains(
        "::error file=rules/broken.json,line=3,col=83,title=iotrules check::sqlite action: 'synchronous' must be \"normal\" or \"full\"\n"
      ), "\(github)")
    #expect(
      github.contains("{0%2C127}") == false && github.contains("{0,127}"), "message text keeps its commas")
    // A path that gives no rule is annotated too, with no file (the job failed with nothing said).
    let (missingStatus, missing, _) = try await runIotrules(
      ["check", "--format", "github", "rules", "nowhere"], in: folder)
    #expect(missingStatus == 74)
    #expect(missing.contains("::error title=iotrules check::nowhere: no such file or folder\n"), "\(missing)")
  }

  /// GitHub annotations come in the text's order, file order: a warning after an error in the file
  /// is annotated after it (each file's warnings came first, then its errors).
  @Test func annotationsComeInFileOrder() async throws {
    let folder = temporaryFolder("github-order")
    try FileManager.default.createDirectory(atPath: folder + "/rules", withIntermediateDirectories: true)
    try #"{"sql": "SELECT * FROM 't'", "actions": []}"#.write(
      toFile: folder + "/rules/bad-name.json", atomically: true, encoding: .utf8)
    let (status, github, _) = try await runIotrules(["check", "--format", "github", "rules"], in: folder)
    #expect(status == 65)
    let annotations = github.split(separator: "\n").filter { $0.hasPrefix("::") }.map { $0.prefix(48) }
    #expect(
      annotations == [
        "::error file=rules/bad-name.json,line=1,col=1,ti",
        "::warning file=rules/bad-name.json,line=1,col=41",
      ], "\(github)")
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// An archive whose root is `/` under a template lets a value pick any file: check warns (the
  /// rule stays valid: the operator may mean it); a root folder before the template does not.
  /// `check` warns of rules that write one sqlite table with different keys, or keyed and not:
  /// whichever writes second fails every result (all three passed, and one failed at run time).
  @Test func rulesKeyingOneTableApartWarn() async throws {
    let folder = temporaryFolder("sqlite-keys-apart")
    for (name, key) in [
      ("a", #", "key": "dev""#), ("b", #", "key": "Dev""#), ("c", #", "key": "site""#), ("d", ""),
    ] {
      write(
        #"{"sql": "SELECT * FROM 'd/#'", "actions": [{"sqlite": {"database": "k.db", "table": "latest"\#(key)}}]}"#,
        to: folder + "/rules/\(name).json")
    }
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 0)
    let lines = output.split(separator: "\n").filter { $0.contains("warning:") }
    #expect(lines.count == 5, "\(output)")
    #expect(!output.contains("b.json:1:1: warning"), "same key, case apart: \(output)")
    #expect(
      output.contains(
        "rules/c.json:1:1: warning: rule 'c' sqlite[0]: table 'latest' of 'k.db' is keyed by (site) here and keyed by (dev) there: one of the two fails every result, whichever writes second (rule 'a', rules/a.json)"
      ), "\(output)")
    #expect(
      output.contains(
        "rules/d.json:1:1: warning: rule 'd' sqlite[0]: table 'latest' of 'k.db' is appended to without a key here"
      ), "\(output)")
    // Keys of the same columns in another order are one key (the index is found as a set); two
    // actions of one rule, and two spellings of one file, are compared too.
    let more = temporaryFolder("sqlite-keys-more")
    let sqlite = { (database: String, key: String) in
      #"{"sqlite": {"database": "\#(database)", "table": "t", "key": \#(key)}}"#
    }
    write(
      #"{"sql": "SELECT * FROM 'd/#'", "actions": [\#(sqlite("k.db", #"["dev", "site"]"#))]}"#,
      to: more + "/rules/e.json")
    write(
      #"{"sql": "SELECT * FROM 'd/#'", "actions": [\#(sqlite("./k.db", #"["site", "dev"]"#)), \#(sqlite("./k.db", #""dev""#))]}"#,
      to: more + "/rules/f.json")
    let (_, moreOutput, _) = try await runIotrules(["check", "rules"], in: more)
    let warned = moreOutput.split(separator: "\n").filter { $0.contains("warning:") }
    #expect(warned.count == 2, "\(moreOutput)")
    #expect(
      warned.allSatisfy { $0.hasPrefix("rules/f.json:1:1: warning: rule 'f' sqlite[1]") }, "\(moreOutput)")
    #expect(moreOutput.contains("(sqlite[0] of this rule)"), "\(moreOutput)")
  }

  /// A path a shell would expand (`~/`, `$HOME`) is said: no shell expands it here.
  @Test func anUnexpandedHomeWarns() async throws {
    let folder = temporaryFolder("home-paths")
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "$HOME/arch/${topic()}.jsonl"}}, {"file": {"root": "~/a", "path": "x.jsonl"}}]}"#,
      to: folder + "/rules/home.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 0)
    #expect(
      output.contains("warning: rule 'home': 'path' '$HOME/arch/${topic()}.jsonl' holds '$'"), "\(output)")
    #expect(output.contains("warning: rule 'home': 'root' '~/a' begins with '~'"), "\(output)")
  }

  /// An action's warnings come with its errors, and a rule without actions says so beside its SQL
  /// error: one `check` shows everything to fix (each appeared only once the error was fixed).
  @Test func actionWarningsComeWithTheirErrors() async throws {
    let folder = temporaryFolder("warnings-with-errors")
    write(
      #"{"sql": "SELECT d FROM 'a/+'", "actions": [{"sqlite": {"database": "~/iot.db", "table": "t", "key": "${d}"}}]}"#,
      to: folder + "/rules/home.json")
    write(
      #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"file": {"root": "/", "path": "${topic(2)}", "rotate": {}}}]}"#,
      to: folder + "/rules/wide.json")
    write(#"{"sql": "SELECT * FROM", "actions": []}"#, to: folder + "/rules/none.json")
    write(
      #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"republish": {"topic": "a/x", "qos": 5}}]}"#,
      to: folder + "/rules/loop.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 65)
    let lines = output.split(separator: "\n").map(String.init)
    #expect(
      lines.filter { $0.hasPrefix("rules/home.json") }.map { $0.prefix(70) } == [
        "rules/home.json:1:68: warning: rule 'home': 'database' '~/iot.db' begi",
        "rules/home.json:1:101: error: sqlite action: key column '${d}' is a te",
      ], "\(output)")
    #expect(
      lines.filter { $0.hasPrefix("rules/wide.json") }.map { $0.prefix(70) } == [
        "rules/wide.json:1:75: warning: rule 'wide': the file path '${topic(2)}",
        "rules/wide.json:1:100: error: file action: 'rotate' is empty: give max",
      ], "\(output)")
    #expect(
      lines.filter { $0.hasPrefix("rules/none.json") } == [
        "rules/none.json:1:23: error: expected a topic filter after FROM, found the end of the statement",
        "rules/none.json:1:37: warning: rule 'none' has no actions: its results go nowhere, and its messages are acknowledged with nothing written",
      ], "\(output)")
    #expect(
      lines.filter { $0.hasPrefix("rules/loop.json") }.map { $0.prefix(70) } == [
        "rules/loop.json:1:68: warning: rule 'loop': the republish topic 'a/x' ",
        "rules/loop.json:1:82: error: republish action: republish.qos: must be ",
      ], "\(output)")
  }

  @Test func anArchiveRootedAtSlashWarns() async throws {
    let folder = temporaryFolder("root-slash")
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "/${topic()}"}}]}"#,
      to: folder + "/rules/wide.json")
    write(
      #"{"sql": "SELECT * FROM 'a/#'", "actions": [{"file": {"path": "/var/tmp/a/${topic()}"}}]}"#,
      to: folder + "/rules/narrow.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 0)
    #expect(
      output.contains(
        "rules/wide.json:1:62: warning: rule 'wide': the file path '/${topic()}' has its archive root at '/'"),
      "\(output)")
    #expect(!output.contains("narrow.json:1"), "\(output)")
  }

  /// `check` warns about an archive whose root holds the rules folder (a path that begins with a
  /// template, checked where `rules/` is): a value could name a rule file.
  @Test func anArchiveRootHoldingTheRulesFolderWarns() async throws {
    let folder = temporaryFolder("own-files-check")
    write(
      #"{"sql": "SELECT * FROM 'devices/#'", "actions": [{"file": {"path": "${topic(2)}/${topic(3)}.json"}}]}"#,
      to: folder + "/rules/wide.json")
    write(
      #"{"sql": "SELECT * FROM 'devices/#'", "actions": [{"file": {"path": "archive/${topic(2)}.json"}}]}"#,
      to: folder + "/rules/narrow.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 0)
    #expect(
      output.contains(
        "rules/wide.json:1:68: warning: rule 'wide': the archive root of the file path '${topic(2)}/${topic(3)}.json' is the working folder, which holds the rules folder 'rules'"
      ), "\(output)")
    #expect(!output.contains("narrow.json:1"), "\(output)")
  }

  /// What in an archive path's own text every write would fail on is an error at its line and
  /// column: the line break a YAML `path: >` ends in (it loaded, and every result failed).
  @Test func aControlCharacterInAnArchivePathIsAnErrorWhereItIs() async throws {
    let folder = temporaryFolder("folded-path")
    write(
      "sql: SELECT * FROM 'devices/#'\nactions:\n  - file:\n      path: >\n        archive/${topic(2)}.jsonl\n",
      to: folder + "/folded/f.yaml")
    let folded = try await runIotrules(["check", "folded"], in: folder)
    #expect(folded.0 == 65)
    #expect(
      folded.1.contains(
        "folded/f.yaml:5:34: error: file action: 'path' holds a control character (U+000A) in its own text (a YAML '>' or '|' scalar ends in a line break; '>-' and '|-' do not)"
      ), "\(folded.1)")
  }

  /// One `check` shows everything to fix: the actions' warnings are kept when another action of the
  /// rule is wrong, in file order beside the error.
  @Test func actionWarningsBesideAnError() async throws {
    let folder = temporaryFolder("warnings-beside-error")
    write(
      """
      {"sql": "SELECT * FROM 'fr3/#'",
       "actions": [
         {"file": {"root": "/", "path": "${topic(2)}/x.jsonl"}},
         {"republish": {"topic": "fr3/${topic(2)}"}},
         {"sqlite": {"database": ":memory:", "table": "t"}}]}
      """, to: folder + "/rules/a.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 65)
    let lines = output.split(separator: "\n").map(String.init)
    #expect(lines.count == 4, "\(output)")
    #expect(
      lines.first?.hasPrefix("rules/a.json:3:35: warning: rule 'a': the file path '${topic(2)}/x.jsonl'")
        == true, "\(output)")
    #expect(
      lines.dropFirst().first?.hasPrefix(
        "rules/a.json:4:28: warning: rule 'a': the republish topic 'fr3/${topic(2)}' can match") == true,
      "\(output)")
    #expect(
      lines.dropFirst(2).first?.hasPrefix("rules/a.json:5:28: error: sqlite action:") == true, "\(output)")
  }

  @Test("a warning or name clash in a CRLF file is placed at its own line and column")
  func crlfFilePositions() throws {
    let folder = temporaryFolder("crlf")
    let lines = [
      "{", #"  "sql": "SELECT * FROM 'a/#'","#, #"  "ruleName": "R","#,
      #"  "actions": [{"republish": {"topic": "a/b"}}]"#, "}",
    ]
    write(lines.joined(separator: "\r\n") + "\r\n", to: folder + "/one.json")
    write(
      lines.joined(separator: "\r\n").replacingOccurrences(of: "a/b", with: "c/d"), to: folder + "/two.json")
    let results = try RuleChecker.check(paths: [folder])
    let said = results.flatMap { $0.warnings + $0.diagnostics }.map(\.description)
    // Counting Characters found no line break in "\r\n" (one Character): everything was on line 1.
    #expect(said.contains { $0.hasPrefix(folder + "/one.json:4:39:") }, "\(said)")
    #expect(said.contains { $0.hasPrefix(folder + "/two.json:3:15: error: rule name 'R'") }, "\(said)")
  }

  /// Republish actions that loop through several rules (`a` into `b`'s FROM, `b` into `c`'s, `c`
  /// back into `a`'s) are warned of on each rule of the loop, with the shortest way round; a rule
  /// that only feeds the loop, or a disabled one, is not part of one.
  @Test func republishLoopsThroughSeveralRulesAreWarnedOf() throws {
    let folder = temporaryFolder("loops")
    func rule(_ name: String, _ from: String, _ to: String, _ extra: String = "") {
      write(
        #"{"sql": "SELECT * FROM '\#(from)'", "actions": [{"republish": {"topic": "\#(to)"\#(extra)}}]\#(name == "off" ? #", "ruleDisabled": true"# : "")}"#,
        to: folder + "/\(name).json")
    }
    rule("a", "a/+", "b/${topic(2)}")
    rule("b", "b/#", "c/x")
    rule("c", "c/+", "a/y", #", "maxHops": 0"#)
    rule("feeder", "d/+", "a/z")
    // Would close a loop with `lone`, but is disabled.
    rule("off", "g/+", "f/x")
    rule("lone", "f/+", "g/h")
    let results = try RuleChecker.check(paths: [folder])
    let said = Dictionary(
      uniqueKeysWithValues: results.map { ($0.rule ?? "?", $0.warnings.map(\.message)) })
    #expect(
      said["a"]
        == [
          "rule 'a' republish[0]: the republish topic 'b/${topic(2)}' can match the FROM filter 'b/#' of rule 'b', and republished messages come back round: 'a' → 'b' → 'c' → 'a' (the iotrules-hops user property, or under MQTT 3.1.1 the daemon's own record of what it republished, stops each message after 8 hops, to the error path)"
        ], "\(said)")
    #expect(said["b"]?.first?.contains("'b' → 'c' → 'a' → 'b'") == true, "\(said)")
    #expect(
      said["c"]?.first?.hasSuffix("(maxHops is 0 here: only another republish's guard stops it)") == true)
    #expect(said["feeder"] == [] && said["off"] == [] && said["lone"] == [], "\(said)")
  }

  @Test("--max-in-flight-bytes reads whole numbers with binary units and refuses the rest")
  func byteCounts() {
    #expect(DaemonConfiguration.byteCount("65536") == 65_536)
    #expect(DaemonConfiguration.byteCount("64M") == 64 << 20)
    #expect(DaemonConfiguration.byteCount("512kib") == 512 << 10)
    #expect(DaemonConfiguration.byteCount("2GB") == 2 << 30)
    #expect(DaemonConfiguration.byteCount("100b") == 100)
    for bad in ["", "0", "-5", "1.5M", "12 parsecs", "M", "99999999999999999999", "9223372036854775807G"] {
      #expect(DaemonConfiguration.byteCount(bad) == nil, "\(bad)")
    }
  }

  @Test("a rule's test file named directly is left out, and a file met twice counts once")
  func ruleFilesNamedDirectly() throws {
    let root = packageRoot + "/Rules"
    let files = try RuleStore.ruleFiles(in: [
      root + "/high_temp.json", root + "/high_temp.test.json", root, "\(root)/./high_temp.json",
      "\(root)/../Rules//archive_all.json",
    ])
    #expect(files == [root + "/high_temp.json", root + "/archive_all.json"])
    #expect(RuleFile.lexicalPath("a/./b//../c.json", from: "/w/x") == "/w/x/a/c.json")
    #expect(RuleFile.lexicalPath("/../a/../../b.json", from: "/w") == "/b.json")
    #expect(RuleFile.lexicalPath("../r.json", from: "/w/x/") == "/w/r.json")
  }

  @Test("a file larger than 1 MiB is refused before it is read, with its size")
  func oversizedRuleFilesAreRefused() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString)")
      .path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let big = String(repeating: " ", count: RuleStore.maxRuleFileBytes) + #"{"sql": "SELECT * FROM 'a'"}"#
    try big.write(toFile: folder + "/big.json", atomically: true, encoding: .utf8)
    let results = try RuleChecker.check(paths: [folder])
    #expect(results.count == 1)
    #expect(results[0].diagnostics.first?.message.contains("a rule file is at most 1048576 bytes") == true)
  }

  /// A named pipe called `p.json` (or a folder called `f.json`) is refused as not a regular file,
  /// at once: opening the pipe used to wait for a writer, hanging `check`, `run` and every reload.
  @Test func namedPipesAndFoldersAreNotReadAsRuleFiles() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString)")
      .path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(mkfifo(folder + "/p.json", 0o600) == 0)
    try #"{"sql": "SELECT * FROM 'a'"}"#.write(toFile: folder + "/ok.json", atomically: true, encoding: .utf8)
    let started = ContinuousClock.now
    let results = try RuleChecker.check(paths: [folder])
    #expect(ContinuousClock.now - started < .seconds(5))
    let messages = results.flatMap {
      $0.diagnostics.map { "\($0.file.split(separator: "/").last!): \($0.message)" }
    }
    #expect(messages == ["p.json: cannot read it (not a regular file (a named pipe))"])
    #expect(results.filter { $0.diagnostics.isEmpty }.count == 1)
    #expect(results.filter(\.unreadable).count == 1)
    guard case .failure(let folderRead) = RegularFile.read(folder) else {
      Issue.record("a folder read as a file")
      return
    }
    #expect(folderRead.reason == "it is a folder")
    // A socket cannot be opened at all: said as what it is, not as "No such device or address".
    let path = folder + "/s.json"
    let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    try #require(server >= 0)
    defer { close(server) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    try #require(bound == 0)
    guard case .failure(let socketRead) = RegularFile.read(path) else {
      Issue.record("a socket read as a file")
      return
    }
    #expect(socketRead.reason == "not a regular file (a socket)")
    // A name that is not UTF-8 is listed with U+FFFD, which names no file: said so, not "No such file".
    var raw = Array((folder + "/bad").utf8) + [0xFF] + Array(".json".utf8) + [0]
    let descriptor = raw.withUnsafeMutableBufferPointer {
      $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o600) }
    }
    try #require(descriptor >= 0)
    close(descriptor)
    let listed = try RuleChecker.check(paths: [folder]).flatMap(\.diagnostics).map(\.message)
    #expect(listed.contains { $0.contains("not UTF-8") }, "\(listed)")
  }
}
