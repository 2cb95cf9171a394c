import Actions
import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// The result of loading rule files: the rules that loaded and the problems of those that did not.
public struct RuleLoadResult: Sendable {
  /// Valid rules.
  public var rules: [Rule]
  /// Positioned problems, by file.
  public var errors: [RuleFileError]
  /// The files read.
  public var files: [String]
  /// Files whose new version was refused because another file's rule holds its name: they are
  /// read again at the next reload (the other file may have let the name go), not kept as seen.
  public var clashed: Set<String> = []
  /// New files whose rules wait while a gone file's rule still runs (a rename that also changes
  /// the name, during a deploy still under way): read again at the next reload, which retires the
  /// gone rule and starts theirs in one swap, never running both.
  public var held: Set<String> = []
  /// Files found gone whose rules keep running because a file that claims their name does not
  /// load (a rule moved into a broken file), or because new files are held (one may be the rule
  /// renamed): still watched, as if not gone yet.
  public var keptGone: Set<String> = []
}

/// Finds and loads rule files; on reload keeps unchanged rules' running instances and, for a broken
/// file, the previous version of its rule.
public enum RuleStore {
  /// The rule files under `paths` (files as given, folders listed non-recursively), sorted. A
  /// rule's test file named directly (`check Rules/*.json`) is no rule and is left out; a file met
  /// twice (a folder and a file in it, a folder and a link to it) counts once.
  public static func ruleFiles(in paths: [String]) throws -> [String] {
    var files: [String] = []
    for path in paths {
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw RuleStoreError(message: "\(path): no such file or folder")
      }
      if isFolder.boolValue {
        files += try entries(of: path, where: RuleFile.isRuleFile)
      } else if !RuleFile.isTestFile(path) {
        files.append(path)
      }
    }
    // Byte for byte: `café.json` spelled with U+00E9 and with `e` + U+0301 are two files.
    var seen = RuleFile.SameFiles()
    return files.filter { seen.firstTime($0) }
  }

  /// The names in `folder` that `keep` accepts, hidden ones left out, sorted, as `folder/name`.
  static func entries(of folder: String, where keep: (String) -> Bool) throws -> [String] {
    let base = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
    if let problem = RuleFile.folderProblem(folder) { throw RuleStoreError(message: "\(folder): \(problem)") }
    return try FileManager.default.contentsOfDirectory(atPath: folder)
      .filter { keep($0) && !$0.hasPrefix(".") }.sorted().map { "\(base)/\($0)" }
  }

  /// What `check` and `run` say of a test file with no rule beside it.
  public static func orphanTestDiagnostic(_ test: String) -> RuleDiagnostic {
    let looked = RuleFile.ruleFilePaths(ofTest: test)
    return RuleDiagnostic(
      file: test, position: FilePosition(line: 1, column: 1),
      message:
        "no rule file beside this test file (looked for \(looked[0]), .yaml, .yml): its cases cannot run; "
        + "rename it with its rule, or remove it")
  }

  /// What `check` and `run` say of the subfolders of `paths` that hold rule files: rules are read
  /// from a folder itself, so such files would pass CI unchecked, or not run, without a word. A
  /// subfolder that is one of `paths` too (`check . sub`, however spelt or linked) is read, and not
  /// noted. Likewise of the files in a folder of `paths` whose ending is a rule file's in other
  /// letters (`B.JSON`, `c.Yml`): a folder's rule files end in `.json`, `.yaml` or `.yml`.
  public static func subfolderNotes(in paths: [String]) -> [String] {
    /// The file's identity (device and inode), which every spelling of a path and every link share.
    func identity(_ path: String) -> [UInt64]? {
      var info = stat()
      guard stat(path, &info) == 0 else { return nil }
      return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }
    let named = Set(paths.compactMap(identity))
    var notes: [String] = []
    // A folder named twice (`check rules ./rules`) is noted once.
    var seen: Set<[UInt64]> = []
    for path in paths where identity(path).map({ seen.insert($0).inserted }) ?? true {
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue,
        let names = try? FileManager.default.contentsOfDirectory(atPath: path)
      else { continue }
      let base = path.hasSuffix("/") ? String(path.dropLast()) : path
      let otherCase = names.filter {
        !$0.hasPrefix(".") && !RuleFile.isRuleFile($0) && !RuleFile.isTestFile($0)
          && RuleFile.isRuleFile($0.lowercased())
      }.sorted()
      if !otherCase.isEmpty {
        let shown = otherCase.prefix(3).joined(separator: ", ") + (otherCase.count > 3 ? ", ..." : "")
        notes.append(
          "\(path) holds \(otherCase.count) file(s) named as rule files but for the case of their ending (\(shown)), not read: a folder's rule files end in .json, .yaml or .yml, in lower case (rename them if they are rules)"
        )
      }
      for name in names.sorted() where !name.hasPrefix(".") {
        let folder = base + "/" + name
        var inner: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &inner), inner.boolValue,
          identity(folder).map({ !named.contains($0) }) ?? true,
          let found = try? RuleStore.ruleFiles(in: [folder]), !found.isEmpty
        else { continue }
        notes.append(
          "\(folder) holds \(found.count) *.json/*.yaml file(s), not read: rules are read from the folder named, not its subfolders (name it too if they are rules)"
        )
      }
    }
    return notes
  }

  /// The rule test files under `paths` (in a folder, or named) with no rule file beside them: a rule
  /// renamed or removed without its tests, whose cases no longer run.
  public static func orphanTestFiles(in paths: [String]) -> [String] {
    var tests: [String] = []
    for path in paths {
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
      if isFolder.boolValue {
        tests += (try? entries(of: path, where: RuleFile.isTestFile)) ?? []
      } else if RuleFile.isTestFile(path) {
        tests.append(path)
      }
    }
    return tests.filter { test in
      !RuleFile.ruleFilePaths(ofTest: test).contains { FileManager.default.fileExists(atPath: $0) }
    }
  }

  /// Loads every file; `previous` (file → rule) gives rules to keep when a file is unchanged or broken.
  /// A file in `unchanged` (its stamp is the one it was loaded with) keeps its previous rule without
  /// being read: a reload after one edit among 10,000 rule files reads one file.
  /// `gate`, when given, is asked about every rule newly compiled from a changed file: a reason it
  /// returns keeps the previous version (or leaves a new rule out) and is reported as an error.
  /// A file in `deferred` (still being written, or gone while a new file is) is not read: its
  /// previous rule stays, if it has one, unless the file is in `gone` (deferred because it is
  /// missing) and another file's rule now has its name: that is a rename, and the gone file's rule
  /// retires as the other takes the name.
  /// A file in `unchangedClashes` (refused for a name clash before, unchanged since) takes no name
  /// from a gone file.
  /// A file in `retiring` (gone, its removal applying now; not in `files`) takes its rule with it,
  /// unless a file that does not load claims the rule's name: then it keeps running
  /// (``RuleLoadResult/keptGone``) until that file loads; so it does while new files are held.
  public static func load(
    files: [String], builder: any ActionBuilding, previous: [String: Rule] = [:],
    unchanged: Set<String> = [], deferred: Set<String> = [], gone: Set<String> = [],
    retiring: Set<String> = [], unchangedClashes: Set<String> = [], gate: ReloadGate? = nil
  ) -> RuleLoadResult {
    var errors: [RuleFileError] = []
    var loaded: [(file: String, rule: Rule)] = []
    // Files that claim a name and do not load (broken, or refused by the gate), with their error.
    var unloaded: [(error: Int, file: String, name: String, position: FilePosition)] = []
    for file in files {
      if let old = previous[file], unchanged.contains(file) || deferred.contains(file) {
        loaded.append((file, old))
      } else if deferred.contains(file) {
        continue
      } else {
        var claim: (name: String, position: FilePosition)?
        if let rule = load(
          file: file, builder: builder, previous: previous[file], gate: gate, errors: &errors, claim: &claim)
        {
          loaded.append((file, rule))
        } else if let claim, !errors.isEmpty {
          unloaded.append((errors.count - 1, file, claim.name, claim.position))
        }
      }
    }
    // A clash with a file that does not load is said with its other problems (as `check` says it),
    // not only once it is fixed.
    for (index, file, name, position) in unloaded {
      let others =
        loaded.filter { $0.rule.name == name && !gone.contains($0.file) }.map(\.file)
        + unloaded.filter { $0.name == name && $0.file != file }.map(\.file)
      guard !others.isEmpty else { continue }
      errors[index].diagnostics.append(
        nameClaimDiagnostic(file: file, name: name, position: position, others: files.filter(others.contains))
      )
    }
    // A rule moved into a file that does not load keeps running from its gone file: retiring it
    // would leave its messages to no rule, where a broken edit in place keeps the previous version.
    let deploying = gone
    var gone = gone
    var keptGone: Set<String> = []
    let loadedNames = Set(loaded.map(\.rule.name))
    for file in retiring.sorted() {
      guard let old = previous[file], !loadedNames.contains(old.name),
        let (index, _, _, _) = unloaded.first(where: { $0.name == old.name })
      else { continue }
      loaded.append((file, old))
      gone.insert(file)
      keptGone.insert(file)
      errors[index].diagnostics.append(
        RuleDiagnostic(
          file: errors[index].diagnostics.first?.file ?? file, position: FilePosition(line: 1, column: 1),
          message: "rule '\(old.name)' keeps running from \(file), which is gone, until this file loads"))
    }
    // A name belongs to the file whose running rule has it: a file that newly claims it (a new
    // file, or an edit) does not push that rule out; it is refused, keeping its own previous version
    // when that one's name is free. Otherwise the first file in order takes the name. A gone file
    // yields its rule's name to a file there that claims it (a rename: `b.json` moved to `a.json`,
    // the same `ruleName`, was refused as a clash with the gone file at every poll until its
    // removal applied).
    // (Not a file refused for the clash before and unchanged since: a SIGHUP while a running
    // rule's file was briefly gone handed the name to a duplicate of it, for good.)
    let claimedByPresent = Set(
      loaded.lazy.filter { !gone.contains($0.file) && !unchangedClashes.contains($0.file) }.map(\.rule.name))
    func renamedAway(_ file: String, _ rule: Rule) -> Bool {
      gone.contains(file) && claimedByPresent.contains(rule.name)
    }
    // While a gone file's rule runs on (a deploy still under way), a new file's rule with a name of
    // its own waits: it may be that rule renamed (`mv a.json b.json`), and the two would each write
    // every message. It starts at the reload that retires the gone one.
    // (Not one whose name a present file's running rule has: it is refused for the clash, as it
    // was; held, it counted as loading fine, and its refusal as a new error once the gone one retired.)
    var held: Set<String> = []
    if loaded.contains(where: { deploying.contains($0.file) && !renamedAway($0.file, $0.rule) }) {
      // A retiring file's rule name too: a new file claiming it is that rule moved (its `ruleName`
      // kept), which takes over now as the gone file retires.
      let goneNames = Set(loaded.filter { gone.contains($0.file) }.map(\.rule.name))
        .union(retiring.compactMap { previous[$0]?.name })
      let runningNames = Set(
        loaded.lazy.filter { !gone.contains($0.file) && previous[$0.file]?.name == $0.rule.name }.map(
          \.rule.name))
      for (file, rule) in loaded
      where previous[file] == nil && !gone.contains(file) && !goneNames.contains(rule.name)
        && !runningNames.contains(rule.name)
      {
        held.insert(file)
      }
      loaded.removeAll { held.contains($0.file) }
      // A gone file whose removal applies now runs on while new files wait: one may be its rule
      // renamed, which would start only at the next look (retired now, its rule's messages went to
      // no rule meanwhile). It retires with the others, at the reload that starts them.
      if !held.isEmpty {
        let names = Set(loaded.map(\.rule.name))
        for file in retiring.sorted() where !keptGone.contains(file) {
          guard let old = previous[file], !names.contains(old.name) else { continue }
          loaded.append((file, old))
          gone.insert(file)
          keptGone.insert(file)
        }
      }
    }
    var owners: [String: String] = [:]
    for (file, rule) in loaded
    where previous[file]?.name == rule.name && owners[rule.name] == nil && !renamedAway(file, rule) {
      owners[rule.name] = file
    }
    var rules: [Rule] = []
    var taken: Set<String> = []
    var clashed: Set<String> = []
    for (file, rule) in loaded where !renamedAway(file, rule) {
      if let owner = owners[rule.name], owner != file {
        clashed.insert(file)
        let clash = RuleDiagnostic(
          file: file, position: rule.namePosition,
          message: "rule name '\(rule.name)' is already used by \(owner)")
        if let old = previous[file], old !== rule, owners[old.name] == nil || owners[old.name] == file,
          !taken.contains(old.name)
        {
          owners[old.name] = file
          taken.insert(old.name)
          rules.append(old)
          // Led by what keeps running, as a broken new version's problems are.
          errors.append(RuleFileError([keptPrevious(old, file: file, problems: 1), clash]))
        } else {
          errors.append(RuleFileError([clash]))
        }
        continue
      }
      guard !taken.contains(rule.name) else {
        clashed.insert(file)
        errors.append(
          RuleFileError([
            RuleDiagnostic(
              file: file, position: rule.namePosition,
              message: "rule name '\(rule.name)' is already used by \(owners[rule.name] ?? "another file")")
          ]))
        continue
      }
      owners[rule.name] = file
      taken.insert(rule.name)
      rules.append(rule)
    }
    return RuleLoadResult(
      rules: rules, errors: errors, files: files, clashed: clashed, held: held, keptGone: keptGone)
  }

  /// What leads a refused new version's problems on a reload: the rule that keeps running.
  static func keptPrevious(_ old: Rule, file: String, problems count: Int) -> RuleDiagnostic {
    RuleDiagnostic(
      file: file, position: FilePosition(line: 1, column: 1),
      message:
        "rule '\(old.name)' kept the previous version: the file has \(count) problem\(count == 1 ? "" : "s")")
  }

  /// Reads and compiles `file`: the new rule, the previous one when the bytes did not change or the
  /// new version is broken or refused by `gate` (the error is appended), or nil without either.
  static func load(
    file: String, builder: any ActionBuilding, previous old: Rule?, gate: ReloadGate?,
    errors: inout [RuleFileError], claim: inout (name: String, position: FilePosition)?
  ) -> Rule? {
    /// A broken or unreadable new version: its problems, led on a reload by what keeps running.
    /// (With the warnings found beside them, logged among them as `check` shows them.)
    func refuse(_ problems: [RuleDiagnostic], unreadable: Bool = false, warnings: [RuleDiagnostic] = [])
      -> Rule?
    {
      guard let old else {
        var error = RuleFileError(problems, warnings: warnings)
        error.unreadable = unreadable
        errors.append(error)
        return nil
      }
      errors.append(
        RuleFileError(
          [keptPrevious(old, file: file, problems: problems.count)] + problems, warnings: warnings))
      return old
    }
    let bytes: [UInt8]
    switch read(file) {
    case .success(let read): bytes = read
    case .failure(let problem) where old != nil && problem.unreadable && isGone(file):
      // A running rule's file gone since the folder was listed (a checkout rewriting it): as if
      // not listed, not a broken file; the rule runs on, and the next look sees whether it is gone.
      // (A link left dangling is still said: it may stay so.)
      return old
    case .failure(let problem):
      return refuse(
        [RuleDiagnostic(file: file, position: FilePosition(line: 1, column: 1), message: problem.message)],
        unreadable: problem.unreadable)
    }
    if let old, old.fingerprint == RuleFile.fingerprint(bytes) {
      // The rule file is as it was, but its tests beside it may have changed (that is what a reload
      // saw): they are run again, and a failure is reported, as `check` reports it. The rule keeps
      // running, being the version those tests were last passed by or not.
      if let gate, let refusal = gate(old) {
        errors.append(
          RuleFileError(
            [
              RuleDiagnostic(
                file: file, position: FilePosition(line: 1, column: 1),
                message:
                  "rule '\(old.name)' is unchanged and keeps running, but its tests fail: \(refusal.reason)")
            ] + refusal.diagnostics))
      }
      return old
    }
    do {
      let rule = try RuleFile.load(file: file, bytes: bytes, builder: builder)
      if let gate, let refusal = gate(rule) {
        claim = (rule.name, rule.namePosition)
        let kept = old != nil ? "kept the previous version" : "not loaded"
        errors.append(
          RuleFileError(
            [
              RuleDiagnostic(
                file: file, position: FilePosition(line: 1, column: 1),
                message: "rule '\(rule.name)' \(kept): \(refusal.reason)")
            ] + refusal.diagnostics))
        return old
      }
      return rule
    } catch {
      // (A file that does not parse claims the name its text names.)
      claim = RuleFile.nameClaimedByBrokenFile(file: file, bytes: bytes)
      return refuse(error.diagnostics, warnings: error.warnings)
    }
  }

  /// What `check` and `run` say of a file that does not load (broken, or its tests fail) and claims
  /// a name that `others` claim too: fixed, it would clash with them.
  public static func nameClaimDiagnostic(
    file: String, name: String, position: FilePosition, others: [String]
  ) -> RuleDiagnostic {
    RuleDiagnostic(
      file: file, position: position,
      message:
        "rule name '\(RuleFile.escapedName(name))' is also claimed by \(others.joined(separator: ", ")): "
        + "fixed, this file would clash with \(others.count == 1 ? "it" : "them"); give each rule its own name"
    )
  }
}

extension RuleDiagnostic {
  /// The diagnostic's place as log metadata, for a JSON log's readers: `file`, `line`, `column`.
  func logMetadata(event: String) -> Logger.Metadata {
    [
      "event": .string(event), "file": .string(file), "line": .stringConvertible(position.line),
      "column": .stringConvertible(position.column),
    ]
  }
}

extension RuleFileError {
  /// Logs the file's errors and, among them in file order, the warnings found beside them, as
  /// `check` shows them (the warnings were left out: a template that reads the message's `temp`
  /// showed up only once the file's error was fixed).
  func log(to logger: Logger, event: String) {
    func warn(_ warning: RuleDiagnostic) {
      logger.warning("\(RuleChecker.warningText(warning))", metadata: warning.logMetadata(event: event))
    }
    // The errors in their order (a reload's "kept the previous version" first, a failing test's
    // places in the test file); each warning before the first error of its file that it precedes.
    var waiting = warnings[...]
    for diagnostic in diagnostics {
      while let warning = waiting.first, warning.file == diagnostic.file,
        RuleDiagnostic.inFileOrder(warning, diagnostic)
      {
        warn(warning)
        waiting = waiting.dropFirst()
      }
      logger.error("\(diagnostic.description)", metadata: diagnostic.logMetadata(event: event))
    }
    waiting.forEach(warn)
  }
}

extension RuleStore {
  /// The largest rule file read, 1 MiB: a rule is a statement and ten actions, and loading costs
  /// about twenty times the file's size in memory, so a stray data export left in the folder must
  /// not take gigabytes (at every reload) to be found no rule.
  public static let maxRuleFileBytes = 1 << 20

  /// True when nothing is at `file` (not even a symbolic link).
  static func isGone(_ file: String) -> Bool {
    var info = stat()
    return lstat(file, &info) != 0 && errno == ENOENT
  }

  /// The bytes of a rule file, or why it cannot be read (missing, unreadable, not a regular file,
  /// larger than `maxRuleFileBytes`).
  public static func read(_ file: String) -> Result<[UInt8], RuleStoreError> {
    switch RegularFile.read(file, limit: maxRuleFileBytes) {
    case .success(let bytes): return .success(bytes)
    case .failure(let unreadable) where unreadable.tooLarge:
      // Refused by its size before it is read; one that grew past the limit while read, by that.
      let message =
        unreadable.size.map {
          "the file is \($0) bytes; a rule file is at most \(maxRuleFileBytes) bytes (1 MiB)"
        }
        ?? "the file is larger than a rule file's \(maxRuleFileBytes) bytes (1 MiB)"
      return .failure(RuleStoreError(message: message))
    case .failure(let unreadable):
      // Why, as every command says it: `cannot read it (Permission denied)`.
      return .failure(RuleStoreError(message: "cannot read it (\(unreadable.reason))", unreadable: true))
    }
  }
}

/// Decides whether a freshly compiled rule may replace the running one: nil to accept, else why not
/// (`iotrules run` passes one that runs the rule's tests).
public typealias ReloadGate = @Sendable (Rule) -> GateRefusal?

/// A rule folder that cannot be read.
public struct RuleStoreError: Error, Sendable, CustomStringConvertible {
  /// What.
  public var message: String
  /// True when the file could not be read at all (`check` then exits 74, as for a missing path).
  public var unreadable = false
  /// The message.
  public var description: String { message }
}

/// Loads, starts and swaps rule sets for a running dispatcher (hot reload).
public final class RuleReloader: Sendable {
  let paths: [String]
  let builder: any ActionBuilding
  let dispatcher: Dispatcher
  let logger: Logger
  let gate: ReloadGate?
  /// Where the loaded rules' own files are protected from archive writes before they run
  /// (``FileArchiveAction/ProtectedPaths/protectActionFiles(of:)``).
  let protectedPaths: FileArchiveAction.ProtectedPaths
  /// Whether each rule path was a folder when the reloader was made: a folder replaced by a file
  /// (or a file by a folder) is a path gone, not a new set of rules.
  let pathIsFolder: [String: Bool]
  let lock = NSLock()
  nonisolated(unsafe) var fingerprint: [String: FileStamp] = [:]
  /// `digest()` when `fingerprint` was taken.
  nonisolated(unsafe) var lastDigest: UInt64 = 0
  /// The stamps of the files changed at the last poll, waiting to be seen unchanged once more.
  nonisolated(unsafe) var unsettled: [String: FileStamp] = [:]
  /// The loaded files found missing at the last look, each with the time of the first look that
  /// found it so: a removal applies once a later look finds the file still gone, with nothing else
  /// changed since, at least `removalDelay` after the first.
  nonisolated(unsafe) var missingSince: [String: ContinuousClock.Instant] = [:]
  /// How long a rule file must stay gone before its rule retires: the daemon's poll interval, at
  /// most ``longestRemovalDelayMs``, so that a SIGHUP's look, which a poll may follow within
  /// milliseconds, does not shorten the wait a checkout rewriting the file has (zero: a second
  /// look is enough).
  let removalDelay: Duration
  /// The longest `removalDelay`: with an hour between polls, a second SIGHUP still completes a
  /// rename a second after the first.
  public static let longestRemovalDelayMs = 1_000
  /// `digest()` at the last poll.
  nonisolated(unsafe) var pollDigest: UInt64 = 0
  /// The rule files whose latest load failed (a broken file with a running version is not read
  /// again until it changes, so its failure is remembered), for `/metrics`.
  nonisolated(unsafe) var failingFiles: Set<String> = []
  /// The stamps, as read, of the files the last load refused for a name clash: one still so is no
  /// rename of a file found gone (`RuleStore.load`'s `unchangedClashes`).
  nonisolated(unsafe) var clashedStamps: [String: FileStamp] = [:]
  /// The rule files whose rule's action could not start at the last load (a secret not there
  /// yet), with what was said: read again at every poll, changed or not (a secret's arrival
  /// changes no rule file), the same failure not said again.
  nonisolated(unsafe) var startFailures: [String: String] = [:]
  /// Each rule file's load errors as last said: an unchanged file read again because it never
  /// loaded, failing as it did, is not said again at each reload another file's change brings,
  /// nor counted as that reload's error (it stays in `iotrules_rule_files_failing`).
  nonisolated(unsafe) var loadErrorsSaid: [String: [String]] = [:]
  /// The test files without a rule beside them, last said.
  nonisolated(unsafe) var orphanTests: [String] = []
  /// Of `orphanTests`, those a reload has counted as its error: one found between reloads (a rule
  /// file's removal waits for a second look, which may find its test file first) counts in the
  /// next reload, not in none.
  nonisolated(unsafe) var countedOrphans: [String] = []
  /// Whether the last reload counted as `errors` in `iotrules_rule_reloads_total`.
  var lastReloadHadErrors: Bool { lock.withLock { lastReloadErrors } }
  /// Behind `lastReloadHadErrors`.
  nonisolated(unsafe) var lastReloadErrors = false
  /// What `iotrules_rule_files_failing` shows: the failing rule files, the test files without
  /// their rule, and the rule paths gone or emptied.
  var failingCount: Int { lock.withLock { failingFiles.count + orphanTests.count + missingPaths } }
  /// The rule paths the last look found gone (1 for any) or holding no rule file, the running rules
  /// kept: counted in `iotrules_rule_files_failing` while it lasts (a ConfigMap or volume gone
  /// showed only as one failed reload, and an alert on the gauge never saw it).
  nonisolated(unsafe) var missingPaths = 0
  /// Retired rule versions waiting for their messages to finish before their actions shut down,
  /// by number; each leaves when it is done.
  let retirements = Mutex<(next: Int, running: [Int: Task<Void, Never>])>((0, [:]))

  /// Creates a reloader; call `initialLoad()` first. `gate` vets every rule of the first load and
  /// every rule changed on reload.
  public init(
    paths: [String], builder: any ActionBuilding, dispatcher: Dispatcher, logger: Logger,
    gate: ReloadGate? = nil, protectedPaths: FileArchiveAction.ProtectedPaths = .shared,
    removalDelay: Duration = .zero
  ) {
    self.removalDelay = removalDelay
    self.protectedPaths = protectedPaths
    self.gate = gate
    self.paths = paths
    self.pathIsFolder = Dictionary(
      paths.map { path in
        var info = stat()
        return (path, stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
      },
      uniquingKeysWith: { first, _ in first })
    self.builder = builder
    self.dispatcher = dispatcher
    self.logger = logger
  }

  /// What polling compares to notice that a rule file changed: a hash of its modification time,
  /// size and inode (a file replaced by a rename gets a new one), its status-change time (a `chmod`
  /// that makes an unreadable file readable changes nothing else), and the same of the rule's test
  /// file beside it (`run` loads a rule only when its tests pass, so fixing the tests is a change to
  /// the rule). Zero for a file that cannot be read. One word, not seven: with 10,000 rule files the
  /// stamps took a megabyte.
  struct FileStamp: Equatable {
    var hash: UInt64 = 0
  }

  /// Mixes what `stat` says of a file's contents and status into `hash` (FNV-1a over the words).
  static func mix(_ info: stat, into hash: inout UInt64) {
    // Word by word, not over an array literal: the folder digest runs this on every poll and
    // allocates nothing.
    hash = (hash ^ UInt64(bitPattern: Int64(info.st_mtim.tv_sec))) &* 0x100_0000_01b3
    hash = (hash ^ UInt64(bitPattern: Int64(info.st_mtim.tv_nsec))) &* 0x100_0000_01b3
    hash = (hash ^ UInt64(bitPattern: Int64(info.st_size))) &* 0x100_0000_01b3
    hash = (hash ^ UInt64(info.st_ino)) &* 0x100_0000_01b3
    hash = (hash ^ UInt64(bitPattern: Int64(info.st_ctim.tv_sec))) &* 0x100_0000_01b3
    hash = (hash ^ UInt64(bitPattern: Int64(info.st_ctim.tv_nsec))) &* 0x100_0000_01b3
  }

  /// The `paths` that held a rule file in `before` and hold none in `now`, every spelling made
  /// absolute (a file named directly and again through its folder is kept under one spelling).
  static func emptiedPaths<Files: Collection<String>>(_ paths: [String], before: [String], now: Files)
    -> [String]
  {
    let folder = FileManager.default.currentDirectoryPath
    let (earlier, later) = (
      before.map { RuleFile.lexicalPath($0, from: folder) },
      now.map { RuleFile.lexicalPath($0, from: folder) }
    )
    return paths.filter { path in
      let base = RuleFile.lexicalPath(path, from: folder)
      func holds(_ file: String) -> Bool {
        file.utf8.elementsEqual(base.utf8) || file.startsExactly(with: base == "/" ? base : base + "/")
      }
      return earlier.contains(where: holds) && !later.contains(where: holds)
    }
  }

  /// The stamps of the rule files, to notice changes by polling. One `stat` a file: with 10,000 rule
  /// files, `FileManager.attributesOfItem` (a dictionary of every attribute per file) kept an idle
  /// daemon at 18% of a core with the default one-second poll. A path the loaded rules already hold
  /// is keyed by their copy of it, so the stamps add no second copy of every path.
  /// Throws when a path is missing or cannot be listed.
  func scan<Value>(sharingPathsOf known: [String: Value]) throws -> [String: FileStamp] {
    for path in paths {
      var info = stat()
      guard stat(path, &info) == 0, let wasFolder = pathIsFolder[path] else { continue }
      let kind = info.st_mode & S_IFMT
      if wasFolder && kind != S_IFDIR {
        // `mv rules rules.old; mv new rules` with a file, or a named pipe in its place: its
        // rules read as removed, every one retired.
        throw RuleStoreError(message: "\(path): was a folder of rule files and is no longer a folder")
      }
      if !wasFolder && kind != S_IFREG {
        // A folder would be read for rule files; a named pipe would hold the reload.
        throw RuleStoreError(message: "\(path): was a rule file and is no longer a regular file")
      }
    }
    let files = try RuleStore.ruleFiles(in: paths).map { file in
      known.index(forKey: file).map { known.keys[$0] } ?? file
    }
    return stamps(of: files)
  }

  /// The stamps of `files`, keyed by those very strings.
  func stamps(of files: [String]) -> [String: FileStamp] {
    var stamps: [String: FileStamp] = [:]
    stamps.reserveCapacity(files.count)
    for file in files {
      var info = stat()
      guard stat(file, &info) == 0 else {
        stamps[file] = FileStamp()
        continue
      }
      var hash: UInt64 = 0xcbf2_9ce4_8422_2325
      Self.mix(info, into: &hash)
      for (index, companion) in RuleFile.testFilePaths(of: file).enumerated()
      where stat(companion, &info) == 0 {
        hash = (hash ^ UInt64(index + 1)) &* 0x100_0000_01b3
        Self.mix(info, into: &hash)
      }
      let stamp = FileStamp(hash: hash | 1)
      stamps[file] = stamp
    }
    return stamps
  }

  /// A digest of the names and stamps of every entry of the rule folders (and of the rule files named
  /// directly), read with `readdir` and `fstatat`: an idle poll that finds the same digest allocates
  /// nothing (building every path, as `scan` does, made 10,000 strings a second). Any entry counts,
  /// rule file or not: a change elsewhere only costs a full scan that finds nothing.
  /// True when the entry name ends as a rule or test file's does (`.json`, `.yaml`, `.yml`).
  static func namesRuleOrTestFile(_ name: UnsafePointer<CChar>) -> Bool {
    let length = strlen(name)
    return [".json", ".yaml", ".yml"].contains { ending in
      let count = ending.utf8.count
      return length >= count
        && ending.utf8.enumerated().allSatisfy {
          UInt8(bitPattern: name[length - count + $0.offset]) == $0.element
        }
    }
  }

  func digest() -> UInt64 {
    var count: UInt64 = 0
    var sum: UInt64 = 0
    func add(_ name: UnsafePointer<CChar>, _ info: stat) {
      var hash: UInt64 = 0xcbf2_9ce4_8422_2325
      var byte = name
      while byte.pointee != 0 {
        hash = (hash ^ UInt64(UInt8(bitPattern: byte.pointee))) &* 0x100_0000_01b3
        byte += 1
      }
      Self.mix(info, into: &hash)
      // Order does not matter (readdir's is not stable): a sum of mixed entry hashes.
      hash ^= hash >> 33
      hash = hash &* 0xff51_afd7_ed55_8ccd
      hash ^= hash >> 33
      sum = sum &+ hash
      count += 1
    }
    for path in paths {
      var info = stat()
      guard stat(path, &info) == 0 else {
        count += 1 << 32
        continue
      }
      guard info.st_mode & S_IFMT == S_IFDIR else {
        add(path, info)
        // A rule file named directly: its test file counts too (a folder's entries hold it
        // already). A few strings a poll, for a path given by hand.
        for companion in RuleFile.testFilePaths(of: path) where stat(companion, &info) == 0 {
          add(companion, info)
        }
        continue
      }
      guard let folder = opendir(path) else { continue }
      defer { closedir(folder) }
      let descriptor = dirfd(folder)
      while let entry = readdir(folder) {
        withUnsafePointer(to: &entry.pointee.d_name) {
          $0.withMemoryRebound(to: CChar.self, capacity: 256) { name in
            guard name.pointee != CChar(UInt8(ascii: ".")) else { return }
            // A file of another kind beside them counts by its name alone: its coming and going
            // (a checkout writing its other files) is a change, but not its growing (a dead-letter
            // file or an archive with `--rules .`, notes appended to): one appended to at every
            // poll kept a removed rule running, and a new one from starting.
            guard Self.namesRuleOrTestFile(name) else {
              add(name, stat())
              return
            }
            // An entry that cannot be stat'ed (a symlink whose target is gone) still counts by
            // its name: removing it must change the digest.
            var entryInfo = stat()
            if fstatat(descriptor, name, &entryInfo, 0) != 0 { entryInfo = stat() }
            add(name, entryInfo)
          }
        }
      }
    }
    return sum &+ count &* 0x9e37_79b9_7f4a_7c15
  }

  /// Loads and starts the first rule set; returns the errors found.
  public func initialLoad() async throws -> RuleLoadResult {
    let files = try RuleStore.ruleFiles(in: paths)
    // Stamped before reading: a file edited while the rules load is read again at the next poll
    // (stamped after, its edit would go unnoticed). The stamps key the paths the rules will hold:
    // no second list of them.
    let digest = digest()
    let stamps = stamps(of: files)
    // Tests gate the first load as they gate reloads: a rule whose tests fail is not loaded.
    var result = RuleStore.load(files: files, builder: builder, gate: gate)
    // A rule whose action cannot start (a secret missing, a Kafka client refused) is not loaded,
    // said at its file as a reload says it, and its file is read again at the next look: every
    // such rule is said, and the others run (the first failure ended the start, naming no rule).
    var unstarted: [String: String] = [:]
    for rule in result.rules {
      guard let failure = await Self.start(rule) else { continue }
      let diagnostic = RuleDiagnostic(
        file: rule.file, position: FilePosition(line: 1, column: 1),
        message: "rule '\(rule.name)' not loaded: an action cannot start: \(failure)")
      result.errors.append(RuleFileError([diagnostic]))
      unstarted[rule.file] = diagnostic.message
    }
    result.rules.removeAll { unstarted[$0.file] != nil }
    lock.withLock {
      fingerprint = stamps
      lastDigest = digest
      startFailures = unstarted
      loadErrorsSaid = Self.texts(of: result.errors)
      clashedStamps = Dictionary(
        uniqueKeysWithValues: result.clashed.compactMap { file in stamps[file].map { (file, $0) } })
      for file in unstarted.keys where fingerprint[file] != nil { fingerprint[file] = FileStamp() }
    }
    noteFailures(result.errors, read: Set(files), present: files)
    protectedPaths.protectActionFiles(of: result.rules)
    dispatcher.swap(to: RuleSet(rules: result.rules))
    noteOrphanTests(event: "load")
    // Said at the start, which is no reload.
    lock.withLock { countedOrphans = orphanTests }
    for note in RuleStore.subfolderNotes(in: paths) { logger.warning("\(note)") }
    return result
  }

  /// The text of each diagnostic of `errors`, by file, as logged.
  static func texts(of errors: [RuleFileError]) -> [String: [String]] {
    var texts: [String: [String]] = [:]
    for error in errors {
      for diagnostic in error.diagnostics {
        texts[diagnostic.file, default: []].append(diagnostic.description)
      }
    }
    return texts
  }

  /// Keeps `failingFiles` (and its gauge) as the latest load left them: the files read take their
  /// outcome, the others keep theirs, and files gone drop out.

  func noteFailures(_ errors: [RuleFileError], read: Set<String>, present: [String]) {
    let failed = Set(errors.compactMap { $0.diagnostics.first?.file })
    lock.withLock {
      failingFiles = failingFiles.subtracting(read).union(failed.intersection(read)).intersection(present)
    }
    CounterStore.shared.ruleFilesFailing.store(failingCount, ordering: .relaxed)
  }

  /// Logs, once per change, the test files with no rule beside them when tests gate the rules: a
  /// rule renamed or removed without its tests would otherwise stop being tested without a word
  /// (`check` and `test` fail such a file). They count in `iotrules_rule_files_failing` while they
  /// last, as `check` counts them invalid, so an alert on the gauge sees a rule that stopped
  /// running that way. Returns how many are new since the last look.
  @discardableResult
  func noteOrphanTests(event: String) -> Int {
    guard gate != nil else { return 0 }
    let orphans = RuleStore.orphanTestFiles(in: paths)
    let new = lock.withLock { () -> [String] in
      defer { orphanTests = orphans }
      return orphans.filter { !orphanTests.contains($0) }
    }
    CounterStore.shared.ruleFilesFailing.store(failingCount, ordering: .relaxed)
    for test in new {
      let diagnostic = RuleStore.orphanTestDiagnostic(test)
      logger.error("\(diagnostic.description)", metadata: diagnostic.logMetadata(event: event))
    }
    return new.count
  }

  /// What a reload reads: the files, those whose stamps are the ones last read, those not read yet,
  /// the gone ones kept, the gone ones whose removal applies, and those refused for a clash and
  /// unchanged since.
  typealias ReloadPlan = (
    files: [String], sameStamps: Set<String>, deferred: Set<String>, gone: Set<String>, retiring: Set<String>,
    unchangedClashes: Set<String>
  )

  /// Reloads when a file changed (or `force`): checks the new rules, starts their actions, swaps
  /// atomically, then shuts down the retired actions once no message uses them.
  ///
  /// With `settle` (polling), a new or changed file is loaded only once a poll finds it as the one
  /// before did: a file still being written in place (`scp`, `cat >`, a slow generator) is not
  /// loaded half-written, though a cut-off YAML file often parses. A removal, likewise, applies
  /// once a second poll finds the file still gone, nothing else changed since and no new file
  /// waiting (a rename): `git checkout` deletes the files it renames before it writes them anew,
  /// and a poll in between retired their rules while the new files were not there yet (their
  /// messages were acknowledged with nothing written). With `force` (SIGHUP), every file is read at
  /// once, and a removal still waits for a later look that finds the file gone, and so do new
  /// files while one is gone (a rename swaps in one step, never running both). Rule paths that
  /// hold no rule file at all keep the running rules, as a path that is gone does (`rm -rf rules &&
  /// git clone` makes the folder before its files).
  @discardableResult
  public func reload(force: Bool = false, settle: Bool = false) async -> RuleLoadResult? {
    let digest = digest()
    // Quiet: nothing changed in the rule paths since the last poll (a checkout still writing is not).
    let quiet = lock.withLock {
      defer { pollDigest = digest }
      return digest == pollDigest
    }
    // Nothing changed, but a rule whose action could not start is tried again: the files' errors
    // were said already (each poll repeated them, and counted a failed reload).
    let retryOnly = !force && lock.withLock { digest == lastDigest }
    if retryOnly && lock.withLock({ startFailures.isEmpty }) { return nil }
    let times: [String: FileStamp]
    do {
      times = try scan(sharingPathsOf: lock.withLock { fingerprint })
    } catch {
      // A rule path gone (a folder renamed away and back, a file named by `--rules` deleted) or
      // unreadable: loading what is left would retire every rule it held, and their messages
      // would be acknowledged with nothing written. The running rules stay until it is back,
      // said once per change (the digest moves again when it returns).
      lock.withLock { (lastDigest, lastReloadErrors, missingPaths) = (digest, true, 1) }
      logger.error(
        "\(error); the running rules stay as they are until it is back", metadata: ["event": "reload"])
      CounterStore.shared.reloadsWithErrors.wrappingAdd(1, ordering: .relaxed)
      CounterStore.shared.ruleFilesFailing.store(failingCount, ordering: .relaxed)
      return nil
    }
    // Only a reload that lost a file can have emptied a path.
    let before = lock.withLock { Array(fingerprint.keys) }
    let emptied =
      before.allSatisfy { times[$0] != nil } ? [] : Self.emptiedPaths(paths, before: before, now: times.keys)
    if !emptied.isEmpty {
      // As for a path that is gone: nothing to load in it is no reason to retire its running rules,
      // with several paths as with one (one folder of two being cloned anew retired its rules, and
      // their messages were acknowledged with nothing written).
      lock.withLock { (lastDigest, lastReloadErrors, missingPaths) = (digest, true, emptied.count) }
      CounterStore.shared.ruleFilesFailing.store(failingCount, ordering: .relaxed)
      let said =
        emptied.count == 1
        ? "the rule path \(emptied[0]) holds" : "the rule paths (\(emptied.joined(separator: ", "))) hold"
      logger.error(
        "\(said) no rule file any more; the running rules stay as they are until one is back",
        metadata: ["event": "reload"])
      CounterStore.shared.reloadsWithErrors.wrappingAdd(1, ordering: .relaxed)
      return nil
    }
    if lock.withLock({
      defer { missingPaths = 0 }; return missingPaths > 0
    }) {
      CounterStore.shared.ruleFilesFailing.store(failingCount, ordering: .relaxed)
    }
    // What to load: the files, those whose stamps are the ones they were loaded with (none when
    // forced: SIGHUP reads all), and those not to read yet.
    let plan: ReloadPlan? =
      lock.withLock {
        if !force && times == fingerprint {
          lastDigest = digest
          unsettled = [:]
          missingSince = [:]
          return nil
        }
        var loading = times
        var deferred: Set<String> = []
        let seen = unsettled
        unsettled = [:]
        let missingNow = Set(fingerprint.keys.filter { times[$0] == nil })
        let now = ContinuousClock.now
        // Gone long enough, as a previous look found them: their removal may apply.
        let wasMissing = Set(missingSince.filter { now - $0.value >= removalDelay }.keys)
        // SIGHUP reads what is there at once, but a file gone retires its rule only as polling does:
        // a SIGHUP in the middle of a checkout (`systemctl reload` during a deploy) retired a rule
        // whose file was being rewritten, and its messages until the next poll were acknowledged
        // with nothing written.
        let defersRemovals = settle || force
        missingSince =
          defersRemovals
          ? Dictionary(uniqueKeysWithValues: missingNow.map { ($0, missingSince[$0] ?? now) }) : [:]
        if settle && !force {
          // A new or changed file loads once a poll finds it as the one before did. One still
          // changing waits, not read (its running version stays), without holding up the others;
          // `lastDigest` is left as it was, so the next poll looks again.
          for (file, stamp) in times where fingerprint[file] != stamp && seen[file] != stamp {
            unsettled[file] = stamp
            deferred.insert(file)
            loading[file] = fingerprint[file]
          }
        }
        if force && !missingNow.isSubset(of: wasMissing) {
          // SIGHUP right after a rename (`mv a.json b.json && systemctl reload`) would start the
          // new file's rule while the gone file's still runs (a removal waits for a later look):
          // both wrote every message until the next poll. New files wait for the next look (a
          // poll, or a second SIGHUP) that retires the gone ones, as a rename found by polling
          // swaps in one step.
          for (file, stamp) in times where fingerprint[file] == nil {
            unsettled[file] = stamp
            deferred.insert(file)
            loading[file] = nil
          }
        }
        if defersRemovals {
          // A rename is a removal and a new file: the removed file's rule runs on until the new
          // one loads, so no message falls between them; and a file gone at this poll only may be
          // on its way back (a checkout).
          for file in missingNow where !unsettled.isEmpty || !wasMissing.contains(file) || !quiet {
            loading[file] = fingerprint[file]
            deferred.insert(file)
          }
        }
        if settle && !force && loading == fingerprint { return nil }
        if unsettled.isEmpty && !loading.keys.contains(where: { times[$0] == nil }) { lastDigest = digest }
        defer { fingerprint = loading }
        return (
          loading.keys.sorted(), Set(loading.keys.filter { fingerprint[$0] == loading[$0] }),
          deferred, deferred.intersection(missingNow), missingNow.subtracting(deferred),
          Set(clashedStamps.filter { times[$0.key] == $0.value }.keys)
        )
      }
    guard let plan else {
      // No rule file to read, but a test file may have come or gone beside them.
      noteOrphanTests(event: "reload")
      return nil
    }
    // The running rules by file (the snapshot holds them all, disabled ones included).
    let previous = Dictionary(
      dispatcher.ruleSet.rules.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
    // Kept without reading: none when forced (SIGHUP reads all).
    let unchanged = force ? [] : plan.sameStamps
    let result = RuleStore.load(
      files: plan.files, builder: builder, previous: previous, unchanged: unchanged,
      deferred: plan.deferred, gone: plan.gone, retiring: plan.retiring,
      unchangedClashes: plan.unchangedClashes,
      gate: gate)
    if force {
      // SIGHUP (`systemctl reload`) after a file was removed said nothing of it, and its rule ran
      // on: said for each gone file whose rule this load keeps running (not one whose name another
      // file took now, nor one that never loaded).
      for file in plan.gone.sorted() {
        guard let kept = previous[file], result.rules.contains(where: { $0 === kept }) else { continue }
        logger.info(
          "rule file gone: its rule runs on until the next look (a poll, or another SIGHUP) finds the file still gone",
          metadata: ["event": "reload", "file": "\(file)", "rule": "\(kept.name)"])
      }
    }
    // An unchanged file that never loaded, or refused for a name clash, read again, failing as it
    // did when last said (a clash was said, and counted a failed reload, at each unrelated edit;
    // a broken file at each SIGHUP, which reads every file).
    let errorTexts = Self.texts(of: result.errors)
    let saidErrors = lock.withLock { loadErrorsSaid }
    let repeated = Set(
      errorTexts.keys.filter {
        (plan.sameStamps.contains($0) || plan.unchangedClashes.contains($0))
          && saidErrors[$0] == errorTexts[$0]
      })
    if !retryOnly { lock.withLock { loadErrorsSaid = errorTexts } }
    // An error is its file's (its first place): the places in other files it names, a failing
    // test's in the test file, are repeated with it.
    for error in result.errors where !retryOnly && !repeated.contains(error.diagnostics.first?.file ?? "") {
      error.log(to: logger, event: "reload")
    }
    let previousRules = Set(previous.values.map(ObjectIdentifier.init))
    var returned = result
    // Files not seen as loaded: the next reload reads them again (a clashing name may be free by
    // then, an action able to start).
    var rereads = result.clashed
    var fresh = returned.rules.filter { !previousRules.contains(ObjectIdentifier($0)) }
    let saidBefore = lock.withLock { startFailures }
    var unstarted: [String: String] = [:]
    for rule in fresh {
      guard let failure = await Self.start(rule) else { continue }
      // A version whose actions cannot start is a broken version: the previous one keeps running
      // (it was swapped in, and every message then went to the error path).
      let names = Set(returned.rules.filter { $0 !== rule }.map(\.name))
      let old = previous[rule.file].flatMap { names.contains($0.name) ? nil : $0 }
      returned.rules =
        old.map { old in returned.rules.map { $0 === rule ? old : $0 } }
        ?? returned.rules.filter { $0 !== rule }
      fresh.removeAll { $0 === rule }
      let kept = old != nil ? "kept the previous version" : "not loaded"
      let diagnostic = RuleDiagnostic(
        file: rule.file, position: FilePosition(line: 1, column: 1),
        message: "rule '\(rule.name)' \(kept): an action cannot start: \(failure)")
      returned.errors.append(RuleFileError([diagnostic]))
      // Tried again at every poll: the same failure is said once.
      if !retryOnly || saidBefore[rule.file] != diagnostic.message {
        logger.error("\(diagnostic.description)", metadata: diagnostic.logMetadata(event: "reload"))
      }
      unstarted[rule.file] = diagnostic.message
      rereads.insert(rule.file)
    }
    lock.withLock {
      startFailures = unstarted
      clashedStamps = Dictionary(
        uniqueKeysWithValues: result.clashed.compactMap { file in fingerprint[file].map { (file, $0) } })
      // Read at the next look, as settled (its stamp seen): a reset stamp alone looked like a
      // change yet to settle, and the retry came every other poll.
      for file in rereads where fingerprint[file] != nil {
        fingerprint[file] = FileStamp()
        unsettled[file] = times[file]
      }
      // Held back for a gone file's rule: read at the next look, as settled (its stamp seen).
      for file in returned.held {
        fingerprint[file] = FileStamp()
        unsettled[file] = times[file]
      }
      // Gone, but kept running for a file that does not load yet: still watched.
      for file in returned.keptGone { fingerprint[file] = FileStamp() }
    }
    // A new or changed rule's warnings, as at start (a republish that now loops back, ...).
    // Only a new rule with a republish action can close a new loop.
    let republishing = Set(
      fresh.filter { rule in !rule.disabled && rule.actions.contains { $0.action is RepublishAction } }.map(
        \.name))
    let loops =
      republishing.isEmpty
      ? [:]
      : RuleChecker.republishLoops(among: returned.rules.filter { !$0.disabled }, starting: republishing)
    for rule in fresh {
      for warning in rule.warnings + (loops[rule.name] ?? []) {
        logger.warning("\(RuleChecker.warningText(warning))", metadata: warning.logMetadata(event: "reload"))
      }
    }
    let kept = Set(returned.rules.map(ObjectIdentifier.init))
    let current = dispatcher.ruleSet.rules
    let replaced = current.filter { !kept.contains(ObjectIdentifier($0)) }
    // A new version's lanes start after the old version's have drained (one topic's results stay
    // in order at the destination).
    protectedPaths.protectActionFiles(of: fresh)
    dispatcher.handOver(from: replaced, to: fresh)
    let old = dispatcher.swap(to: RuleSet(rules: returned.rules))
    let retired = old.rules.filter { !kept.contains(ObjectIdentifier($0)) }
    // Read this time: all but the deferred and the unchanged that keep a running version (an
    // unchanged file that never loaded is read again, `RuleStore.load`).
    let read = plan.files.filter {
      !plan.deferred.contains($0) && !(unchanged.contains($0) && previous[$0] != nil)
    }
    noteFailures(returned.errors, read: Set(read), present: plan.files)
    // A test file this reload left without its rule is an error of the reload, as `check` says;
    // so is one found since the last reload, which no reload has counted yet.
    noteOrphanTests(event: "reload")
    let orphans = lock.withLock { () -> Int in
      defer { countedOrphans = orphanTests }
      return orphanTests.filter { !countedOrphans.contains($0) }.count
    }
    let ownErrors = returned.errors.filter { error in
      !(error.diagnostics.first.map { repeated.contains($0.file) } ?? false)
    }
    let hadErrors = !ownErrors.isEmpty || orphans > 0
    lock.withLock { lastReloadErrors = hadErrors }
    // A poll that only tried again rules whose actions still cannot start: nothing to count or
    // say (it would be every other poll).
    if retryOnly, fresh.isEmpty, retired.isEmpty, orphans == 0 { return returned }
    if hadErrors {
      CounterStore.shared.reloadsWithErrors.wrappingAdd(1, ordering: .relaxed)
    } else {
      CounterStore.shared.reloads.wrappingAdd(1, ordering: .relaxed)
    }
    // `changed`: rules new or changed; `retired`: versions replaced or whose file is gone;
    // `removed`: the names no rule has any more.
    let names = Set(returned.rules.map(\.name))
    let removed = Set(old.rules.map(\.name)).subtracting(names).sorted()
    var metadata: Logger.Metadata = [
      "rules": .stringConvertible(returned.rules.count), "changed": .stringConvertible(fresh.count),
      "retired": .stringConvertible(retired.count), "errors": .stringConvertible(ownErrors.count + orphans),
      // Files failing now, this reload's or earlier ones' (`iotrules_rule_files_failing`): a
      // reload with no error of its own can leave a broken file running its previous version.
      "failing": .stringConvertible(failingCount),
    ]
    // Names as lists (JSON logs: arrays), at most 100 each, so a reload says which rules it
    // touched, not only how many.
    func listed(_ list: [String]) -> Logger.Metadata.Value {
      .array(
        list.prefix(100).map { .string($0) }
          + (list.count > 100 ? [.string("… \(list.count - 100) more")] : []))
    }
    if !removed.isEmpty { metadata["removed"] = listed(removed) }
    if !fresh.isEmpty { metadata["changedRules"] = listed(fresh.map(\.name).sorted()) }
    if orphans > 0 { metadata["newOrphanTests"] = .stringConvertible(orphans) }
    logger.info("rules reloaded", metadata: metadata)
    if !returned.rules.contains(where: { !$0.disabled }) {
      logger.warning("no enabled rule is loaded: messages are acknowledged with nothing written")
    }
    if !retired.isEmpty {
      // Their actions shut down once the old set's messages are done, apart from this reload: a
      // message held there (its dead-letter write failing) must not hold the next reloads up.
      retirements.withLock { state in
        let number = state.next
        state.next += 1
        state.running[number] = Task { [self] in
          // No more results will join their batches than the old set's messages in flight.
          for rule in retired {
            for action in rule.allActions { await action.hurry() }
          }
          await old.waitUntilIdle()
          for rule in retired {
            for action in rule.allActions { await action.shutdown() }
          }
          _ = retirements.withLock { $0.running.removeValue(forKey: number) }
        }
      }
    }
    return returned
  }

  /// Starts every action of `rule`; on the first that cannot start, shuts down those started and
  /// returns its error.
  static func start(_ rule: Rule) async -> (any Error)? {
    var started: [any Action] = []
    for action in rule.allActions {
      do {
        try await action.start()
        started.append(action)
      } catch {
        for action in started { await action.shutdown() }
        return error
      }
    }
    return nil
  }

  /// Tells the current rules' actions that the intake has stopped (`Action.hurry`): what they hold
  /// back for a batch goes out now. Retired rule versions were told when they retired.
  public func hurryAll() async {
    for rule in dispatcher.ruleSet.rules {
      for action in rule.allActions { await action.hurry() }
    }
  }

  /// Shuts down the actions of retired rule versions and of the current rules (after the
  /// dispatcher drained).
  public func shutdownAll() async {
    for retiring in retirements.withLock({ Array($0.running.values) }) { await retiring.value }
    for rule in dispatcher.ruleSet.rules {
      for action in rule.allActions { await action.shutdown() }
    }
  }
}
