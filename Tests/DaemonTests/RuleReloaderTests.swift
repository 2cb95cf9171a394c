import Foundation
import Logging
import RulesEngine
import TestSupport
import Testing

@testable import Daemon

/// Polling: the folder digest notices every change a reload must see, and nothing else reloads.
struct RuleReloaderTests {
  static let rule = #"{"sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#

  func reloader(
    _ folder: String, logger: Logger = Logger(label: "test"), gate: ReloadGate? = nil,
    removalDelay: Duration = .zero
  ) -> (RuleReloader, Dispatcher) {
    let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock())
    let reloader = RuleReloader(
      paths: [folder], builder: RecordingBuilder(), dispatcher: dispatcher, logger: logger, gate: gate,
      removalDelay: removalDelay)
    return (reloader, dispatcher)
  }

  @Test func theDigestChangesWithEveryEntryAndOnlyThen() throws {
    let folder = temporaryFolder("digest")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, _) = reloader(folder)
    let first = reloader.digest()
    #expect(reloader.digest() == first)
    write(Self.rule, to: folder + "/two.json")
    let added = reloader.digest()
    #expect(added != first)
    // Same bytes, same size: only the modification time differs.
    let later = Date(timeIntervalSinceNow: 5)
    try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: folder + "/two.json")
    let touched = reloader.digest()
    #expect(touched != added)
    // Renamed: same stamps under another name.
    try FileManager.default.moveItem(atPath: folder + "/two.json", toPath: folder + "/three.json")
    #expect(reloader.digest() != touched)
    try FileManager.default.removeItem(atPath: folder + "/three.json")
    #expect(reloader.digest() != touched)
    // Hidden files are not rules: they do not count.
    let now = reloader.digest()
    write("x", to: folder + "/.swp")
    #expect(reloader.digest() == now)
    // A file of another kind counts by its name: its coming does, its growing (notes, a dead-letter
    // file with `--rules .`, appended to at every poll) does not: that kept a removed rule running.
    write("x", to: folder + "/notes.txt")
    let noted = reloader.digest()
    #expect(noted != now)
    write("xy", to: folder + "/notes.txt")
    try FileManager.default.setAttributes(
      [.modificationDate: Date(timeIntervalSinceNow: 9)], ofItemAtPath: folder + "/notes.txt")
    #expect(reloader.digest() == noted)
    write(Self.rule, to: folder + "/one.test.yaml")
    #expect(reloader.digest() != noted)
  }

  /// A symlinked rule whose target is gone, then the link removed too (a ConfigMap update passes
  /// through this): the removal reloads, and the rule stops. And a `chmod` alone (a file made
  /// readable after it was written) is a change a reload reads.
  @Test func danglingLinksAndModeChangesAreNoticed() async throws {
    let folder = temporaryFolder("dangling")
    let store = temporaryFolder("store")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: store + "/two.json")
    try FileManager.default.createSymbolicLink(
      atPath: folder + "/two.json", withDestinationPath: store + "/two.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one", "two"])
    try FileManager.default.removeItem(atPath: store + "/two.json")
    // Unreadable now: the previous version keeps running.
    _ = await reloader.reload()
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one", "two"])
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    #expect(await reloader.reload() != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(chmod(folder + "/one.json", 0o600) == 0)
    #expect(await reloader.reload() != nil)
  }

  /// A name belongs to the rule running under it: a new file claiming it is refused (not the
  /// running one), and an edit that claims it keeps its file's previous version running.
  @Test func aRunningRuleKeepsItsNameAgainstNewClaims() async throws {
    let folder = temporaryFolder("names")
    let named =
      #"{"sql": "SELECT * FROM 'a/+'", "ruleName": "alerts", "actions": [{"record": {"name": "a"}}]}"#
    write(named, to: folder + "/zeta.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/b.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    let running = dispatcher.ruleSet.rules
    #expect(Set(running.map(\.name)) == ["b", "alerts"])
    write(named.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/alpha.json")
    let added = try #require(await reloader.reload())
    #expect(
      added.errors.map(\.description).joined().contains(
        "alpha.json:1:44: error: rule name 'alerts' is already used by \(folder)/zeta.json"),
      "\(added.errors)"
    )
    #expect(Set(dispatcher.ruleSet.rules.map(\.file)) == [folder + "/b.json", folder + "/zeta.json"])
    #expect(dispatcher.ruleSet.rules.allSatisfy { $0 === running[0] || $0 === running[1] })
    write(named.replacingOccurrences(of: "a/+", with: "d/+"), to: folder + "/b.json")
    let edited = try #require(await reloader.reload())
    #expect(edited.errors.count == 2)
    #expect(dispatcher.ruleSet.rules.count == 2)
    #expect(dispatcher.ruleSet.rules.allSatisfy { $0 === running[0] || $0 === running[1] })
  }

  /// A file refused because another file's rule holds its name is read again once the name is
  /// free: it was kept as seen, and the version on disk never ran until a SIGHUP.
  @Test func aFileRefusedForANameClashLoadsOnceTheNameIsFree() async throws {
    let folder = temporaryFolder("clash-freed")
    write(Self.rule, to: folder + "/a.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    let claim = Self.rule.replacingOccurrences(of: "\"sql\"", with: "\"ruleName\": \"Y\", \"sql\"")
    write(claim.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/b.json")
    #expect(await reloader.reload() != nil)
    write(claim.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/a.json")
    let clash = try #require(await reloader.reload())
    // Said as a broken version is: what keeps running first.
    #expect(
      clash.errors.flatMap(\.diagnostics).map(\.message) == [
        "rule 'a' kept the previous version: the file has 1 problem",
        "rule name 'Y' is already used by \(folder)/b.json",
      ])
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["a/+", "b/+"])
    try FileManager.default.removeItem(atPath: folder + "/b.json")
    // Polling: the removal applies at once, a.json's new version once it has been seen settled.
    var polls = 0
    while polls < 3, dispatcher.ruleSet.rules.map(\.topicFilter) != ["c/+"] {
      _ = await reloader.reload(settle: true)
      polls += 1
    }
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter) == ["c/+"])
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["Y"])
    #expect(await reloader.reload(settle: true) == nil)
  }

  /// A new version whose action cannot start is a broken version: the running one stays (it was
  /// swapped in, and every later message went to the error path).
  @Test func aVersionWhoseActionCannotStartKeepsThePreviousOne() async throws {
    let folder = temporaryFolder("start-fails")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    let running = try #require(dispatcher.ruleSet.rules.first)
    write(
      #"{"sql": "SELECT * FROM 'b/+'", "actions": [{"record": {"name": "b", "failStart": "no such property"}}]}"#,
      to: folder + "/one.json")
    write(
      #"{"sql": "SELECT * FROM 'n/+'", "actions": [{"record": {"name": "n", "failStart": "bad"}}]}"#,
      to: folder + "/new.json")
    let result = try #require(await reloader.reload())
    #expect(dispatcher.ruleSet.rules.count == 1 && dispatcher.ruleSet.rules.first === running)
    let said = result.errors.map(\.description).joined(separator: "\n")
    #expect(
      said.contains("rule 'one' kept the previous version: an action cannot start: no such property"),
      "\(said)")
    #expect(said.contains("rule 'new' not loaded: an action cannot start: bad"), "\(said)")
    #expect(result.rules.map(\.name) == ["one"])
  }

  /// A rule whose action cannot start at the first load (a secret not there yet) is tried again
  /// at every poll, its file unchanged, and loads once it can start; the same failure is not said
  /// again meanwhile. (Only a change to the rule files read it again.)
  @Test func aRuleWhoseActionCouldNotStartIsTriedAgainAtThePolls() async throws {
    let folder = temporaryFolder("start-later")
    write(Self.rule, to: folder + "/one.json")
    write(
      #"{"sql": "SELECT * FROM 'b/+'", "actions": [{"record": {"name": "late", "failStart": "no secret", "#
        + #""startsOnceThere": "\#(folder)/secret"}}]}"#, to: folder + "/late.json")
    // A broken file beside it: its errors are not said again at each retry, nor the reload counted.
    write(#"{"sql": "SELECT * FROM 'c/+' WHERE", "actions": []}"#, to: folder + "/broken.json")
    let logs = LogLines()
    let (reloader, dispatcher) = reloader(folder, logger: logs.logger)
    let first = try await reloader.initialLoad()
    #expect(
      first.errors.map(\.description).contains(
        "\(folder)/late.json:1:1: error: rule 'late' not loaded: an action cannot start: no secret"))
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    for _ in 0..<3 { _ = await reloader.reload(settle: true) }
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(logs.messages.isEmpty, "\(logs.messages)")
    // An edit that fails the same way is said.
    write(
      #"{"sql": "SELECT * FROM 'b/#'", "actions": [{"record": {"name": "late", "failStart": "no secret", "#
        + #""startsOnceThere": "\#(folder)/secret"}}]}"#, to: folder + "/late.json")
    for _ in 0..<2 { _ = await reloader.reload(settle: true) }
    #expect(
      logs.messages.filter { $0.contains("rule 'late' not loaded: an action cannot start") }.count == 1,
      "\(logs.messages)")
    // The next poll tries it (every other poll did: its reset stamp looked like a change not yet
    // settled).
    write("s", to: folder + "/secret")
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["late", "one"])
  }

  /// A broken edit or an unreadable file says that the previous version keeps running, before its
  /// positioned errors (the errors alone left an operator guessing).
  @Test func aBrokenEditSaysThePreviousVersionKeepsRunning() async throws {
    let folder = temporaryFolder("broken-edit")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    let running = try #require(dispatcher.ruleSet.rules.first)
    write(#"{"sql": "SELECT * FROM 'a/+'" "actions": []}"#, to: folder + "/one.json")
    let result = try #require(await reloader.reload())
    #expect(dispatcher.ruleSet.rules.first === running)
    let said = result.errors.map(\.description).joined(separator: "\n")
    #expect(
      said.hasPrefix(
        "\(folder)/one.json:1:1: error: rule 'one' kept the previous version: the file has 1 problem\n\(folder)/one.json:1:31: error:"
      ), "\(said)")
    #expect(result.errors.count == 1)
  }

  /// A broken file is remembered as failing (for `iotrules_rule_files_failing`) until it loads,
  /// though a reload after another file's edit does not read it again; a file removed drops out.
  @Test func failingFilesAreRememberedUntilTheyLoad() async throws {
    let folder = temporaryFolder("failing-files")
    write(Self.rule, to: folder + "/one.json")
    write("{ broken", to: folder + "/two.json")
    write("{ broken", to: folder + "/three.json")
    let (reloader, _) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(reloader.failingFiles == [folder + "/two.json", folder + "/three.json"])
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/one.json")
    _ = try #require(await reloader.reload())
    #expect(reloader.failingFiles == [folder + "/two.json", folder + "/three.json"])
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    try FileManager.default.removeItem(atPath: folder + "/three.json")
    let fixed = try #require(await reloader.reload())
    #expect(fixed.errors.isEmpty)
    #expect(reloader.failingFiles.isEmpty)
  }

  /// A reload with no error of its own says in its log that a broken edit from before still fails
  /// (`failing=`, as the gauge counts), beside its own `errors=`: `errors=0` alone read as all well.
  @Test func aReloadLogsTheFilesStillFailing() async throws {
    let folder = temporaryFolder("failing-logged")
    write(Self.rule, to: folder + "/one.json")
    let log = LogLines()
    let reloader = RuleReloader(
      paths: [folder], builder: RecordingBuilder(),
      dispatcher: Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock()),
      logger: log.logger)
    _ = try await reloader.initialLoad()
    write("{ broken", to: folder + "/one.json")
    _ = try #require(await reloader.reload())
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    _ = try #require(await reloader.reload())
    let reloads = log.metadata(of: "rules reloaded").map {
      ($0["errors"]?.description, $0["failing"]?.description)
    }
    #expect(reloads.count == 2 && reloads[0] == ("1", "1") && reloads[1] == ("0", "1"), "\(reloads)")
    write(Self.rule, to: folder + "/one.json")
    _ = try #require(await reloader.reload())
    #expect(log.metadata(of: "rules reloaded").last?["failing"]?.description == "0")
  }

  /// A file broken from the start, unchanged, is read again at each reload (it never loaded) but
  /// said once: another file's edits are no reloads with errors, and the log does not repeat it
  /// (an alert on reload errors could not tell a bad deploy), nor by a SIGHUP. Its own edit, still
  /// broken, is said.
  @Test func anUnchangedBrokenFileIsSaidOnce() async throws {
    let folder = temporaryFolder("broken-said-once")
    write(Self.rule, to: folder + "/one.json")
    write("{ broken", to: folder + "/two.json")
    let log = LogLines()
    let reloader = RuleReloader(
      paths: [folder], builder: RecordingBuilder(),
      dispatcher: Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock()),
      logger: log.logger)
    _ = try await reloader.initialLoad()
    for target in ["b/+", "c/+"] {
      write(Self.rule.replacingOccurrences(of: "a/+", with: target), to: folder + "/one.json")
      _ = try #require(await reloader.reload())
    }
    // SIGHUP reads every file again: the same broken file is not said again either (each
    // `systemctl reload` said it and counted a reload with errors).
    for _ in 0..<2 { _ = try #require(await reloader.reload(force: true)) }
    let reloads = log.metadata(of: "rules reloaded").map {
      ($0["errors"]?.description, $0["failing"]?.description)
    }
    #expect(reloads.count == 4 && reloads.allSatisfy { $0 == ("0", "1") }, "\(reloads)")
    #expect(log.messages.filter { $0.contains("two.json") }.isEmpty, "\(log.lines)")
    write("{ broken again", to: folder + "/two.json")
    _ = try #require(await reloader.reload())
    #expect(log.metadata(of: "rules reloaded").last?["errors"]?.description == "1")
    #expect(log.messages.filter { $0.contains("two.json") }.count == 1, "\(log.lines)")
  }

  /// A changed rule refused by its tests, read again unchanged by a SIGHUP, is said once too, its
  /// test file's places included: each `systemctl reload` said the failing case again, at error
  /// level, and counted a reload with errors.
  @Test func anUnchangedVersionItsTestsRefuseIsSaidOnce() async throws {
    let folder = temporaryFolder("tests-said-once")
    write(Self.rule, to: folder + "/one.json")
    let log = LogLines()
    let (reloader, _) = reloader(
      folder, logger: log.logger,
      gate: { rule in
        rule.topicFilter == "b/+"
          ? GateRefusal(
            reason: "1 of 1 test(s) in one.test.json failed: 'x'",
            diagnostics: [
              RuleDiagnostic(
                file: folder + "/one.test.json", position: FilePosition(line: 1, column: 2),
                message: "test 'x' of rule 'one' failed")
            ]) : nil
      })
    _ = try await reloader.initialLoad()
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/one.json")
    _ = try #require(await reloader.reload())
    #expect(log.messages.filter { $0.contains("test 'x' of rule 'one' failed") }.count == 1, "\(log.lines)")
    for _ in 0..<2 { _ = await reloader.reload(force: true) }
    #expect(log.messages.filter { $0.contains("test 'x' of rule 'one' failed") }.count == 1, "\(log.lines)")
    #expect(log.messages.filter { $0.contains("kept the previous version") }.count == 1, "\(log.lines)")
    #expect(log.metadata(of: "rules reloaded").dropFirst().allSatisfy { $0["errors"]?.description == "0" })
  }

  /// A file refused for a name clash, unchanged, is said once too: each edit of another file said
  /// it again and counted a reload with errors.
  @Test func anUnchangedNameClashIsSaidOnce() async throws {
    let folder = temporaryFolder("clash-said-once")
    let named = #"{"ruleName": "x", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#
    write(named, to: folder + "/a.json")
    write(named, to: folder + "/b.json")
    write(Self.rule, to: folder + "/one.json")
    let log = LogLines()
    let reloader = RuleReloader(
      paths: [folder], builder: RecordingBuilder(),
      dispatcher: Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock()),
      logger: log.logger)
    _ = try await reloader.initialLoad()
    let saidAtStart = log.messages.filter { $0.contains("already used by") }.count
    for target in ["b/+", "c/+"] {
      write(Self.rule.replacingOccurrences(of: "a/+", with: target), to: folder + "/one.json")
      _ = try #require(await reloader.reload())
    }
    let reloads = log.metadata(of: "rules reloaded").map {
      ($0["errors"]?.description, $0["failing"]?.description)
    }
    #expect(reloads.count == 2 && reloads.allSatisfy { $0 == ("0", "1") }, "\(reloads)")
    #expect(log.messages.filter { $0.contains("already used by") }.count == saidAtStart, "\(log.lines)")
    #expect(reloader.failingFiles == [folder + "/b.json"])
  }

  /// A file refused at start for a name clash, then free of it through another file's edit, is no
  /// longer failing (it never ran, so the reload reads it again).
  @Test func aNameClashAtStartStopsFailingOnceResolved() async throws {
    let folder = temporaryFolder("failing-clash")
    let named = #"{"ruleName": "x", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#
    write(named, to: folder + "/a.json")
    write(named, to: folder + "/b.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(reloader.failingFiles == [folder + "/b.json"])
    write(named.replacingOccurrences(of: "\"x\"", with: "\"y\""), to: folder + "/a.json")
    _ = try #require(await reloader.reload())
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["x", "y"])
    #expect(reloader.failingFiles.isEmpty)
  }

  /// A rule path that disappears (a folder renamed away and back, a file named by `--rules`
  /// deleted) keeps the running rules: loading what was left retired every rule, those of the
  /// other paths too.
  @Test func aMissingRulePathKeepsTheRunningRules() async throws {
    let root = temporaryFolder("paths-missing")
    write(Self.rule, to: root + "/rules/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: root + "/extra/two.json")
    let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock())
    let reloader = RuleReloader(
      paths: [root + "/rules", root + "/extra/two.json"], builder: RecordingBuilder(), dispatcher: dispatcher,
      logger: Logger(label: "test"))
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.count == 2)
    try FileManager.default.moveItem(atPath: root + "/rules", toPath: root + "/rules.away")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    try FileManager.default.moveItem(atPath: root + "/rules.away", toPath: root + "/rules")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    try FileManager.default.removeItem(atPath: root + "/extra/two.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
  }

  /// A rule folder replaced by a file or a named pipe (`mv rules rules.old; mv file rules`), or a
  /// rule file by a folder, is a path gone: the running rules stay (they were all retired, their
  /// messages acknowledged with nothing written), and come back to life with the folder.
  @Test func aRulePathOfAnotherKindKeepsTheRunningRules() async throws {
    let root = temporaryFolder("paths-kind")
    write(Self.rule, to: root + "/rules/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: root + "/extra/two.json")
    let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock())
    let reloader = RuleReloader(
      paths: [root + "/rules", root + "/extra/two.json"], builder: RecordingBuilder(), dispatcher: dispatcher,
      logger: Logger(label: "test"))
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: root + "/rules", toPath: root + "/rules.away")
    write("garbage", to: root + "/rules")
    for _ in 0..<2 { #expect(await reloader.reload(settle: true) == nil) }
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    try FileManager.default.removeItem(atPath: root + "/rules")
    #expect(mkfifo(root + "/rules", 0o600) == 0)
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    try FileManager.default.removeItem(atPath: root + "/rules")
    try FileManager.default.moveItem(atPath: root + "/rules.away", toPath: root + "/rules")
    try FileManager.default.moveItem(atPath: root + "/extra/two.json", toPath: root + "/two.away")
    try FileManager.default.createDirectory(
      atPath: root + "/extra/two.json", withIntermediateDirectories: false)
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: root + "/extra/two.json/three.json")
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    // A rule file replaced by a named pipe: not read (it would hold the reload), the rule stays.
    try FileManager.default.removeItem(atPath: root + "/extra/two.json")
    #expect(mkfifo(root + "/extra/two.json", 0o600) == 0)
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
  }

  /// `git checkout` of a branch that renames a rule file deletes it, then writes the new one: a poll
  /// between the two kept the rule's messages from any rule (acknowledged with nothing written).
  /// The rule now runs on until the new file loads; a folder left with no rule file at all keeps
  /// every running rule, as a folder that is gone does.
  @Test func aCheckoutThatRenamesRulesLeavesNoGap() async throws {
    let folder = temporaryFolder("checkout")
    write(
      #"{"ruleName": "k", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#,
      to: folder + "/k.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/other.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/k.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["k", "other"])
    // A slow checkout: other files still change at the next polls, so the removal waits on.
    for round in 0..<3 {
      write("{}", to: folder + "/notes-\(round).txt")
      #expect(await reloader.reload(settle: true) == nil)
      #expect(dispatcher.ruleSet.rules.map(\.name) == ["k", "other"])
    }
    write(
      #"{"ruleName": "k", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#,
      to: folder + "/zz_k.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["k", "other"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/zz_k.json", folder + "/other.json"])
    // Every file gone at once: the rules stay, at any poll, until one is back.
    for file in ["zz_k.json", "other.json"] {
      try FileManager.default.removeItem(atPath: folder + "/" + file)
    }
    for _ in 0..<3 { #expect(await reloader.reload(settle: true) == nil) }
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["k", "other"])
    // Failing while it lasts, in `iotrules_rule_files_failing` (one failed reload said it before).
    #expect(reloader.failingCount == 1)
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/other.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(reloader.failingCount == 0)
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["other"])
    // The folder gone (a volume unmounted): failing as long, then back.
    try FileManager.default.moveItem(atPath: folder, toPath: folder + ".away")
    for _ in 0..<3 { #expect(await reloader.reload(settle: true) == nil) }
    #expect(reloader.failingCount == 1)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["other"])
    try FileManager.default.moveItem(atPath: folder + ".away", toPath: folder)
    _ = await reloader.reload(settle: true)
    #expect(reloader.failingCount == 0)
  }

  /// With several rule paths, one of them left with no rule file (cloned anew) keeps its rules, as
  /// when all are: they were retired, and their messages acknowledged with nothing written.
  @Test func onePathOfSeveralEmptiedKeepsItsRules() async throws {
    let folder = temporaryFolder("emptied")
    write(
      #"{"ruleName": "ra", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#,
      to: folder + "/A/ra.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/B/rb.json")
    let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock())
    let reloader = RuleReloader(
      paths: [folder + "/A", folder + "/B/"], builder: RecordingBuilder(), dispatcher: dispatcher,
      logger: Logger(label: "test"))
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["ra", "rb"])
    try FileManager.default.moveItem(atPath: folder + "/A/ra.json", toPath: folder + "/ra.json")
    for _ in 0..<3 { #expect(await reloader.reload(settle: true) == nil) }
    #expect(await reloader.reload(force: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["ra", "rb"])
    // B emptied too, then A back: B's rules stay still.
    try FileManager.default.moveItem(atPath: folder + "/B/rb.json", toPath: folder + "/rb.json")
    try FileManager.default.moveItem(atPath: folder + "/ra.json", toPath: folder + "/A/ra.json")
    for _ in 0..<3 { _ = await reloader.reload(settle: true) }
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["ra", "rb"])
    #expect(reloader.failingCount == 1)
    #expect(
      RuleReloader.emptiedPaths(
        ["x", "y/", "z/f.json"], before: ["x/a.json", "y/b.json", "z/f.json"], now: ["x/c.json"])
        == ["y/", "z/f.json"])
    // A file named directly and again through its folder is kept under one spelling: the folder
    // still holds it (every spelling made absolute).
    let here = FileManager.default.currentDirectoryPath
    #expect(
      RuleReloader.emptiedPaths(
        ["rules", here + "/rules/a.json"], before: [here + "/rules/a.json", "rules/b.json"],
        now: [here + "/rules/a.json"]) == [])
  }

  /// Polling loads a changed file only once it stays the same for a poll: a file still being
  /// written is not loaded half-written. A removal waits for a second poll too; SIGHUP does not wait
  /// for a changed file.
  @Test func pollingWaitsForAChangedFileToSettle() async throws {
    let folder = temporaryFolder("settle")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    #expect(await reloader.reload(settle: true) == nil)
    // Still growing: wait again.
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/#"), to: folder + "/two.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["a/+", "b/#"])
    #expect(await reloader.reload(settle: true) == nil)
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one", "two"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/three.json")
    #expect(await reloader.reload(force: true, settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.count == 2)
  }

  /// A file renamed with its `ruleName` (`b.json` to `a.json`) while other files keep changing: the
  /// new file takes the name once it settles, the gone file's rule retiring in the same swap. It
  /// was refused as a clash with the gone file (logged, counted as a failed reload) at every poll
  /// until the removal applied.
  @Test func aRenamedFileTakesItsRuleNameFromTheGoneFile() async throws {
    let folder = temporaryFolder("rename-name")
    let named = #"{"ruleName": "A", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#
    write(named, to: folder + "/b.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "z/+"), to: folder + "/other.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: folder + "/b.json", toPath: folder + "/a.json")
    write("{}", to: folder + "/notes-0.txt")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.file).sorted() == [folder + "/b.json", folder + "/other.json"])
    write("{}", to: folder + "/notes-1.txt")
    let renamed = try #require(await reloader.reload(settle: true))
    #expect(renamed.errors.isEmpty)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["A", "other"])
    #expect(dispatcher.ruleSet.rules.map(\.file).sorted() == [folder + "/a.json", folder + "/other.json"])
    write("{}", to: folder + "/notes-2.txt")
    #expect(await reloader.reload(settle: true).map(\.errors.isEmpty) ?? true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["A", "other"])
  }

  /// A file refused for a name clash, unchanged since, takes no name from a running rule's file
  /// that a SIGHUP finds briefly gone (a checkout): the SIGHUP handed the name to it, for good,
  /// and the restored file was then refused as the clash.
  @Test func aClashingFileTakesNoNameFromAFileBrieflyGone() async throws {
    let folder = temporaryFolder("clash-gone")
    func named(_ record: String) -> String {
      #"{"ruleName": "A", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "\#(record)"}}]}"#
    }
    write(named("a"), to: folder + "/a.json")
    write(named("a2"), to: folder + "/a2.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
    try FileManager.default.removeItem(atPath: folder + "/a.json")
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
    write(named("a"), to: folder + "/a.json")
    for _ in 0..<3 { _ = await reloader.reload(settle: true) }
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
  }

  /// A SIGHUP while a rule file is briefly gone (a deploy's checkout rewriting it, `systemctl
  /// reload` meanwhile) keeps its rule running: the removal applies once a later look finds the file
  /// still gone, as a poll's does. The SIGHUP retired it, and its messages until the next poll
  /// went to no rule.
  @Test func aSIGHUPWhileAFileIsGoneKeepsItsRule() async throws {
    let folder = temporaryFolder("sighup-gone")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    // Back, changed, before the next poll: the new version loads once it settles, with no gap.
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/two.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["a/+", "b/+"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["a/+", "c/+"])
    // Gone for good: the poll after the SIGHUP finds it still gone and retires it.
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
  }

  /// A poll that comes right after a SIGHUP does not shorten a gone file's wait: the rule retires
  /// once the file has been gone a poll interval (`removalDelay`). Deleted for a deploy, a SIGHUP
  /// sent, the files written again 0.3 s later: the poll a few milliseconds after the SIGHUP had
  /// retired their rules, and 1,500 messages were acknowledged with nothing written.
  @Test func aPollRightAfterASIGHUPWaitsAPollIntervalToRetire() async throws {
    let folder = temporaryFolder("sighup-then-poll")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    let (reloader, dispatcher) = reloader(folder, removalDelay: .milliseconds(400))
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    let clock = ContinuousClock()
    let gone = clock.now
    _ = await reloader.reload(force: true)
    _ = await reloader.reload(settle: true)
    if clock.now - gone < .milliseconds(400) {
      #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "two"])
    }
    try await Task.sleep(for: .milliseconds(450))
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
  }

  /// A SIGHUP that finds a rule file gone says so, and that its rule runs on until a later look
  /// (it said nothing, and an operator's `systemctl reload` seemed to have done nothing).
  @Test func aSIGHUPSaysAGoneFilesRuleRunsOn() async throws {
    let folder = temporaryFolder("sighup-gone-said")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    write("{ broken", to: folder + "/three.json")
    let log = LogLines()
    let reloader = RuleReloader(
      paths: [folder], builder: RecordingBuilder(),
      dispatcher: Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock()),
      logger: log.logger)
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    // A file that never loaded has no rule to run on: not said.
    try FileManager.default.removeItem(atPath: folder + "/three.json")
    _ = await reloader.reload(force: true)
    let said = log.metadata(
      of:
        "rule file gone: its rule runs on until the next look (a poll, or another SIGHUP) finds the file still gone"
    )
    #expect(said.map { $0["rule"]?.description } == ["two"], "\(log.lines)")
  }

  /// A file rewritten at every poll waits alone: the others' changes load, and its running version
  /// stays until it settles.
  @Test func aFileStillChangingDoesNotHoldUpTheOthers() async throws {
    let folder = temporaryFolder("settle-each")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/one.json")
    #expect(await reloader.reload(settle: true) == nil)
    write(Self.rule.replacingOccurrences(of: "a/+", with: "cc/+"), to: folder + "/one.json")
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["a/+", "b/+"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter).sorted() == ["b/+", "cc/+"])
    #expect(await reloader.reload(settle: true) == nil)
  }

  /// A rename is a removal and a new file: the old rule runs until the new file has settled, so
  /// no message goes to no rule in between.
  @Test func aRenamedFileKeepsItsRuleRunningUntilTheNewNameLoads() async throws {
    let folder = temporaryFolder("settle-rename")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: folder + "/one.json", toPath: folder + "/uno.json")
    #expect(await reloader.reload(settle: true) == nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["uno"])
  }

  /// A rename that changes the rule's name (`mv a.json b.json`) during a deploy still under way
  /// (other files change at every poll): the new file's rule waits until the gone one retires, so
  /// the two never run together (each wrote every message of the deploy's seconds twice).
  @Test func aRenameDuringASlowDeployNeverRunsBothRules() async throws {
    let folder = temporaryFolder("slow-rename")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "z/+"), to: folder + "/other.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: folder + "/one.json", toPath: folder + "/uno.json")
    for round in 0..<4 {
      write(
        Self.rule.replacingOccurrences(of: "a/+", with: "z\(round)/+"), to: folder + "/other.json")
      _ = await reloader.reload(settle: true)
      #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "other"], "round \(round)")
    }
    // The deploy over: the next poll finds it quiet, and the rename swaps in one step.
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["other", "uno"])
    #expect(dispatcher.ruleSet.rules.first { $0.name == "other" }?.topicFilter == "z3/+")
  }

  /// A renamed file's gone rule, gone long enough, retiring while another file's removal is still
  /// too fresh to apply: the new file's rule waits for that other one, and so the gone rule runs on
  /// with it (it retired alone, and its messages went to no rule until the next look).
  @Test func aRenamedRuleRunsOnWhileItsNewFileWaitsForAnotherRemoval() async throws {
    let folder = temporaryFolder("rename-beside-removal")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "z/+"), to: folder + "/other.json")
    let (reloader, dispatcher) = reloader(folder, removalDelay: .milliseconds(300))
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: folder + "/one.json", toPath: folder + "/uno.json")
    _ = await reloader.reload(settle: true)
    try await Task.sleep(for: .milliseconds(400))
    try FileManager.default.removeItem(atPath: folder + "/other.json")
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "other"])
    // Quiet now: `one` has been gone long enough, `other` not yet.
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["one", "other"])
    try await Task.sleep(for: .milliseconds(400))
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["uno"])
  }

  /// A rule's file deleted, and long after it a new file with its `ruleName` written beside another
  /// file's fresh removal: the new file takes the rule over as the gone one retires (held for the
  /// other removal, neither ran until the next look).
  @Test func aRuleMovedLaterBesideAnotherRemovalTakesOverAtOnce() async throws {
    let folder = temporaryFolder("moved-beside-removal")
    let named = Self.rule.replacingOccurrences(of: #"{"sql""#, with: #"{"ruleName": "one", "sql""#)
    write(named, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "z/+"), to: folder + "/other.json")
    let (reloader, dispatcher) = reloader(folder, removalDelay: .milliseconds(300))
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/one.json")
    _ = await reloader.reload(settle: true)
    try await Task.sleep(for: .milliseconds(400))
    write(named, to: folder + "/uno.json")
    try FileManager.default.removeItem(atPath: folder + "/other.json")
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.file).sorted() == [folder + "/one.json", folder + "/other.json"])
    // `one.json` long gone, `other.json` not yet, `uno.json` settled.
    _ = await reloader.reload(settle: true)
    #expect(dispatcher.ruleSet.rules.map(\.file).sorted() == [folder + "/other.json", folder + "/uno.json"])
  }

  /// A rule moved into a new file that does not load (`ruleName` kept, the SQL broken): the gone
  /// file's rule keeps running, as a broken edit in place keeps the previous version, until the new
  /// file loads (it was retired, and its messages acknowledged with nothing written).
  /// So too when the new file does not parse (a trailing comma, a YAML file cut short): its
  /// `ruleName` is read from its text (the rule was retired, for want of a name to match).
  @Test(arguments: [
    ("b.json", #"{"ruleName": "r2", "sql": "SELECT * FROM 'a/+' WHERE n >>> 3", "actions": []}"#),
    ("b.json", #"{"ruleName": "r2", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}],}"#),
    (
      "b.json",
      #"{"ruleName" : "r\u0032", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}"#
    ),
    ("b.yaml", "ruleName: r2 # moved\nsql: \"SELECT * FROM 'a/+'\nactions: []\n"),
    ("b.yaml", "rule:\n  ruleName: 'r2'\n  sql: [\n"),
  ])
  func aRuleMovedIntoABrokenFileKeepsRunning(brokenFile: String, broken: String) async throws {
    let folder = temporaryFolder("moved-broken")
    let named = #"{"ruleName": "r2", "sql": "SELECT * FROM 'a/+'", "actions": [{"record": {"name": "a"}}]}"#
    write(named, to: folder + "/a.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.removeItem(atPath: folder + "/a.json")
    write(broken, to: folder + "/" + brokenFile)
    for _ in 0..<4 { _ = await reloader.reload(settle: true) }
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
    let broken = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
    let said = broken?.errors.flatMap(\.diagnostics).map(\.message) ?? []
    #expect(
      said.contains { $0.contains("rule 'r2' keeps running from \(folder)/a.json, which is gone") }, "\(said)"
    )
    try FileManager.default.removeItem(atPath: folder + "/" + brokenFile)
    write(named, to: folder + "/b.json")
    for _ in 0..<3 { _ = await reloader.reload(settle: true) }
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/b.json"])
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["r2"])
  }

  /// SIGHUP right after a rename (`mv one.json uno.json && systemctl reload`): the new file waits
  /// for the poll that retires the gone one, so both rules never run together (each wrote every
  /// message twice until then); a SIGHUP with no file gone loads a new file at once.
  @Test func aSIGHUPAfterARenameNeverRunsBothRules() async throws {
    let folder = temporaryFolder("sighup-rename")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    try FileManager.default.moveItem(atPath: folder + "/one.json", toPath: folder + "/uno.json")
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["uno"])
    // A second SIGHUP finishes the rename too, as the poll does (a long poll interval, reloads by
    // SIGHUP only).
    try FileManager.default.moveItem(atPath: folder + "/uno.json", toPath: folder + "/eins.json")
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["uno"])
    _ = await reloader.reload(force: true)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["eins"])
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/dos.json")
    #expect(await reloader.reload(force: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name).sorted() == ["dos", "eins"])
  }

  /// A file with no running rule (it was broken) is not read while it is being written either.
  @Test func aBrokenFileBeingRewrittenIsNotReadHalfWritten() async throws {
    let folder = temporaryFolder("settle-broken")
    write(Self.rule, to: folder + "/one.json")
    write("{ not json", to: folder + "/two.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/one.json")
    #expect(await reloader.reload(settle: true) == nil)
    // one.json settles; two.json is written on (it would have been read now, half-written).
    write(Self.rule.replacingOccurrences(of: "a/+", with: "bb/+"), to: folder + "/two.json")
    let result = await reloader.reload(settle: true)
    #expect(result?.errors.isEmpty == true)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter) == ["c/+"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter) == ["c/+", "bb/+"])
  }

  /// A reloader of `paths` whose gate stands for a rule's tests: they pass while the file `tests`
  /// says "fixed".
  func testedReloader(_ paths: [String], tests: String) -> (RuleReloader, Dispatcher) {
    let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: FastClock())
    let reloader = RuleReloader(
      paths: paths, builder: RecordingBuilder(), dispatcher: dispatcher, logger: Logger(label: "test"),
      gate: { _ in
        (try? String(contentsOfFile: tests, encoding: .utf8)) == "fixed"
          ? nil : GateRefusal(reason: "tests fail")
      })
    return (reloader, dispatcher)
  }

  /// A rule file removed while its test file stays: the rule stops running, which the reload
  /// counts as failing (`iotrules_rule_files_failing`, an `errors` reload), not only in a log line.
  @Test func aTestFileLeftWithoutItsRuleCountsAsFailing() async throws {
    let folder = temporaryFolder("tests-orphaned")
    write(Self.rule, to: folder + "/one.json")
    write("{}", to: folder + "/one.test.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    write("fixed", to: folder + "/gate")
    let (reloader, dispatcher) = testedReloader([folder], tests: folder + "/gate")
    _ = try await reloader.initialLoad()
    #expect(reloader.failingCount == 0)
    try FileManager.default.removeItem(atPath: folder + "/one.json")
    // Polling: a removal applies once a second look finds the file still gone; the first look finds
    // the test file alone already, and the reload that retires the rule still counts as `errors`
    // (it counted as `ok`).
    #expect(await reloader.reload(settle: true) == nil)
    #expect(reloader.orphanTests == [folder + "/one.test.json"])
    #expect(await reloader.reload(settle: true) != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["two"])
    #expect(reloader.lastReloadHadErrors)
    #expect(reloader.failingCount == 1)
    // Counted once: the next reload with nothing wrong of its own is `ok`.
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/two.json")
    #expect(await reloader.reload() != nil)
    #expect(!reloader.lastReloadHadErrors)
    #expect(reloader.failingCount == 1)
    try FileManager.default.removeItem(atPath: folder + "/one.test.json")
    _ = await reloader.reload(force: true)
    #expect(reloader.failingCount == 0)
  }

  /// A file refused for its rule's name stays failing, said once, while another file is removed:
  /// held back for the gone file's rule like a new rule, it counted as loading fine (the gauge at 0
  /// for a poll), and its refusal as a new error of the reload that retired the gone rule.
  @Test func aClashingFileStaysFailingWhileAnotherFileIsRemoved() async throws {
    let folder = temporaryFolder("clash-removal")
    write(#"{"ruleName": "a", "sql": "SELECT * FROM 'a/+'", "actions": []}"#, to: folder + "/a.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "x/+"), to: folder + "/x.json")
    let logs = LogLines()
    let (reloader, dispatcher) = reloader(folder, logger: logs.logger)
    _ = try await reloader.initialLoad()
    write(#"{"ruleName": "a", "sql": "SELECT * FROM 'd/+'", "actions": []}"#, to: folder + "/dup.json")
    for _ in 0..<3 { _ = await reloader.reload(settle: true) }
    #expect(reloader.failingCount == 1)
    let said = logs.messages.filter { $0.contains("rule name 'a' is already used by") }.count
    #expect(said == 1, "\(logs.messages)")
    try FileManager.default.removeItem(atPath: folder + "/x.json")
    for round in 0..<3 {
      _ = await reloader.reload(settle: true)
      #expect(reloader.failingCount == 1, "round \(round)")
      #expect(!reloader.lastReloadHadErrors, "round \(round)")
    }
    #expect(dispatcher.ruleSet.rules.map(\.file) == [folder + "/a.json"])
    #expect(
      logs.messages.filter { $0.contains("rule name 'a' is already used by") }.count == said,
      "\(logs.messages)")
  }

  /// With a rule file named directly (not its folder), its test file is watched too.
  @Test func aTestFileBesideARuleFileNamedDirectlyIsWatched() async throws {
    let folder = temporaryFolder("tests-direct")
    write(Self.rule, to: folder + "/one.json")
    write("broken", to: folder + "/one.test.json")
    let (reloader, dispatcher) = testedReloader([folder + "/one.json"], tests: folder + "/one.test.json")
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.isEmpty)
    write("fixed", to: folder + "/one.test.json")
    #expect(await reloader.reload() != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
  }

  /// A rule's test file is part of the rule's stamp: a rule left out for failing tests loads once
  /// its tests are fixed, without SIGHUP.
  @Test func fixingARulesTestsReloadsIt() async throws {
    let folder = temporaryFolder("tests")
    write(Self.rule, to: folder + "/one.json")
    write("broken", to: folder + "/one.test.json")
    let (reloader, dispatcher) = testedReloader([folder], tests: folder + "/one.test.json")
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.isEmpty)
    write("fixed", to: folder + "/one.test.json")
    #expect(await reloader.reload() != nil)
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
  }

  /// A test file that starts failing beside an unchanged, running rule is reported (as `check`
  /// reports it), by a poll and by SIGHUP's full reload alike; the rule keeps running.
  @Test func breakingARunningRulesTestsIsReported() async throws {
    let folder = temporaryFolder("tests-break")
    write(Self.rule, to: folder + "/one.json")
    write("fixed", to: folder + "/one.test.json")
    let (reloader, dispatcher) = testedReloader([folder], tests: folder + "/one.test.json")
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    write("broken", to: folder + "/one.test.json")
    let polled = try #require(await reloader.reload())
    let messages = polled.errors.flatMap { $0.diagnostics.map(\.message) }
    #expect(messages == ["rule 'one' is unchanged and keeps running, but its tests fail: tests fail"])
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    let forced = try #require(await reloader.reload(force: true))
    #expect(forced.errors.flatMap { $0.diagnostics.map(\.message) } == messages)
  }

  @Test func aReloadHappensOnlyWhenARuleFileChanged() async throws {
    let folder = temporaryFolder("reloader")
    write(Self.rule, to: folder + "/one.json")
    let (reloader, dispatcher) = reloader(folder)
    _ = try await reloader.initialLoad()
    #expect(dispatcher.ruleSet.rules.map(\.name) == ["one"])
    #expect(await reloader.reload() == nil)
    // A file that is not a rule changes the digest, not the rules.
    write("notes", to: folder + "/README.md")
    #expect(await reloader.reload() == nil)
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    let result = try #require(await reloader.reload())
    #expect(result.rules.map(\.name).sorted() == ["one", "two"])
    #expect(dispatcher.ruleSet.rules.map(\.topicFilter) == ["a/+", "b/+"])
    let kept = dispatcher.ruleSet.rules[0]
    #expect(await reloader.reload() == nil)
    #expect(await reloader.reload(force: true) != nil)
    #expect(dispatcher.ruleSet.rules[0] === kept)
  }

  /// A file whose stamp did not change keeps its rule without being read (here it is not even there
  /// any more); every other file is read.
  @Test func filesWithUnchangedStampsAreNotRead() throws {
    let folder = temporaryFolder("unchanged")
    write(Self.rule, to: folder + "/one.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "b/+"), to: folder + "/two.json")
    let builder = RecordingBuilder()
    let first = RuleStore.load(files: [folder + "/one.json", folder + "/two.json"], builder: builder)
    #expect(first.errors.isEmpty)
    let previous = Dictionary(uniqueKeysWithValues: first.rules.map { ($0.file, $0) })
    try FileManager.default.removeItem(atPath: folder + "/two.json")
    write(Self.rule.replacingOccurrences(of: "a/+", with: "c/+"), to: folder + "/one.json")
    let second = RuleStore.load(
      files: [folder + "/one.json", folder + "/two.json"], builder: builder, previous: previous,
      unchanged: [folder + "/two.json"])
    #expect(second.errors.isEmpty)
    #expect(second.rules.map(\.topicFilter) == ["c/+", "b/+"])
    #expect(second.rules[1] === previous[folder + "/two.json"])
    // Without the stamp's word, a file gone since it was listed (a checkout rewriting it, a SIGHUP
    // meanwhile) keeps its previous rule, and is no broken file (it was an error, counted as a
    // failing file, on every such deploy); a link there that leads nowhere is said.
    let third = RuleStore.load(
      files: [folder + "/one.json", folder + "/two.json"], builder: builder, previous: previous)
    #expect(third.errors.isEmpty)
    #expect(third.rules[1] === previous[folder + "/two.json"])
    try FileManager.default.createSymbolicLink(
      atPath: folder + "/two.json", withDestinationPath: folder + "/nowhere.json")
    let fourth = RuleStore.load(
      files: [folder + "/one.json", folder + "/two.json"], builder: builder, previous: previous)
    #expect(fourth.errors.count == 1)
    #expect(fourth.rules[1] === previous[folder + "/two.json"])
  }
}
