import CFileOps
import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// Appends one JSON line per result to a file whose path is a template.
///
/// Configuration: `{"file": {"path": "archive/${topic(2)}/${parse_time('yyyy-MM-dd', timestamp())}.jsonl",
/// "root": "archive", "rotate": {"maxBytes": N, "maxAgeSeconds": N}, "fsync": "batch", "closeIdleSeconds": 60}}`.
/// - `path`: a template. Without `root`, the archive root is its folder part before the first
///   `${`; with `root`, `path` is relative to it.
/// - A rendered path that would leave the root (`..`, `.`, an absolute path, NUL, an empty segment)
///   is a permanent failure, never a write outside the root.
/// - `rotate`: the current file is renamed `NAME.<UTC time of the rotation>`
///   (`a.jsonl.20261204T142310.123Z`, `-0001` and up after it when that name is taken) when a line
///   would take it past `maxBytes`, or once it is `maxAgeSeconds` old (from its creation, the file
///   system's birth time, so a restart or a reload does not make it young again; from when the
///   daemon first opened it where the file system keeps no birth time): names that sort as text in
///   the order of rotation and are never used twice. A file is rotated by age on time, within a
///   second, whether or not another line comes for it.
/// - `fsync`: `batch` (default: once per batch and file), `always` (each line) or `never`.
/// - `closeIdleSeconds`: a file no line was written to for this long is closed (default 60), so a
///   file removed or moved away (yesterday's, uploaded) frees its space and a finished file is not
///   held open; the next line for it opens it again.
/// - A binary result is written as `{"payload_base64":"..."}` (the base64 of its bytes), an empty one as
///   `{"payload_base64":""}`.
public final class FileArchiveAction: BatchAction {
  /// When to fsync.
  public enum SyncMode: String, Sendable {
    /// Once per batch and file.
    case batch
    /// After every line.
    case always
    /// Never (the OS decides).
    case never
  }

  struct OpenFile {
    var descriptor: Int32
    var size: Int
    /// When the file began (its birth time, else when the daemon first opened it; kept across a
    /// close for the open-files limit or idleness): its age.
    var openedAtMs: Int
    /// When lines were last written to it: a file idle for `closeIdleSeconds` is closed.
    var lastWriteMs: Int
    /// The file's device and inode: a kept age is the same file's only.
    var identity: FileIdentity
    /// When a line was last given to it (a count of lines, ``lineCount``): the least recently used file
    /// is the one closed for the open-files limit.
    var lastUse = 0
  }

  /// `file`.
  public var kind: String { "file" }
  /// `FileAction`.
  public var actionName: String { "FileAction" }
  /// The path template.
  public var resource: String { pathText }
  /// The path template as written.
  public let pathText: String
  /// The archive root.
  public var root: String { rootPrefix == "/" ? "/" : String(rootPrefix.dropLast()) }
  /// The root and its slash, before every rendered path.
  let rootPrefix: String
  /// Whether `root` was given (`path` is then below it as written), rather than taken from `path`.
  let rootIsExplicit: Bool
  /// Whether the path's own text names a hidden file or folder as its `index`-th segment below the
  /// root (`.state/${x}`): else a rendered one there is refused, as a value rendered empty or
  /// beginning with '.' made it (`.state/${x}.jsonl` without an x is still refused). Worked out
  /// when a rendering names one (rare), not kept with each of 10,000 rules' actions.
  ///
  /// A value holding `/` adds segments, so a hidden segment of the text is found where it must be:
  /// counted from the start when only text comes before it, from the end when only text follows
  /// (`${dev}/.state/x.jsonl` with `dev` = `a/b`), else at its own place.
  func allowsHiddenName(inSegment index: Int, of count: Int) -> Bool {
    let segments = relative.source.splitExactly("/")
    let isText = { (segment: Substring) in !segment.contains("${") }
    for (place, segment) in segments.enumerated() where Self.isHiddenName(segment) {
      let fromStart = segments[..<place].allSatisfy(isText)
      let fromEnd = segments[(place + 1)...].allSatisfy(isText)
      let expected = fromStart || !fromEnd ? place : count - (segments.count - place)
      if expected == index { return true }
    }
    return false
  }
  /// The template of the path below the root.
  public let relative: Template
  /// Rotation by size.
  public let maxBytes: Int?
  /// Rotation by age.
  public let maxAgeSeconds: Int?
  /// When to fsync.
  public let sync: SyncMode
  /// How long a file may go without a line before it is closed.
  public let closeIdleSeconds: Int
  /// The default ``closeIdleSeconds``.
  public static let defaultCloseIdleSeconds = 60
  let clock: any EngineClock
  /// What closes idle files and rotates aged ones on time: the daemon's actions have the process's
  /// (``ArchiveSweeper/shared``); without one (previews, tests calling ``sweep()``) nothing does.
  let sweeper: ArchiveSweeper?
  /// Whether the sweeper watches this action: set while it has a file open or an age kept, changed
  /// under the `files` lock.
  let isWatched = Atomic<Bool>(false)
  /// Set by ``shutdown()`` (under the `files` lock): a sweep after it does nothing.
  let isShutDown = Atomic<Bool>(false)
  let files = Mutex<[String: OpenFile]>([:])
  /// Held by every archive action of the process while it writes, checks sizes and rotates (its
  /// fsyncs wait outside): two rules archiving to one file then see each other's lines before
  /// they count toward `maxBytes`, never rotate the file at once (one rename could replace the
  /// other's freshly rotated file, lines and all), and a failed write cuts back only its own bytes.
  /// It keeps the order of use (``UseOrder``) of each action with ``UseOrder/minimumFiles`` files
  /// open or more, which a batch takes out and puts back: here, not in each action (10,000 rules'
  /// actions grew a size class, and the daemon's peak memory by 0.8 MB).
  static let writing = Mutex<[ObjectIdentifier: UseOrder]>([:])
  /// The archive actions in a round (lines written, then their fsyncs), with the rounds waiting for
  /// each: one action's rounds go one at a time. Linux reports a write-back error once per open
  /// file, to whichever fsync comes first, so two overlapping rounds of one action (an error action
  /// called by several lanes) could hand one round's error to the other and acknowledge lost lines.
  /// One table for all actions, keyed by the action: no memory of its own for each of 10,000 rules.
  static let rounds = Mutex<[ObjectIdentifier: [CheckedContinuation<Void, Never>]]>([:])

  /// Waits until no other round of this action runs, in the order asked.
  func enterRound() async {
    let id = ObjectIdentifier(self)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let now = Self.rounds.withLock { rounds -> Bool in
        if rounds[id] == nil {
          rounds[id] = []
          return true
        }
        rounds[id]!.append(continuation)
        return false
      }
      if now { continuation.resume() }
    }
  }

  /// Begins this action's round when none runs or waits, without waiting; false otherwise.
  func tryEnterRound() -> Bool {
    let id = ObjectIdentifier(self)
    return Self.rounds.withLock { rounds -> Bool in
      guard rounds[id] == nil else { return false }
      rounds[id] = []
      return true
    }
  }

  /// Ends this action's round: the next waiting one starts.
  func leaveRound() {
    let id = ObjectIdentifier(self)
    let next = Self.rounds.withLock { rounds -> CheckedContinuation<Void, Never>? in
      guard let waiting = rounds[id], !waiting.isEmpty else {
        rounds[id] = nil
        return nil
      }
      rounds[id]!.removeFirst()
      return waiting[0]
    }
    next?.resume()
  }

  /// The system calls used (tests put failing ones here).
  let operations = Mutex(FileOperations.system)
  /// How many archive files the process keeps open, all file actions together: half its
  /// descriptor limit, at most 8,192 (and at least 8), so sockets and databases keep the other half
  /// (a floor of 64 took a limit of 64 whole: the process crashed, out of descriptors). Beyond it an
  /// action closes its least recently used file (with an fsync unless `fsync` is `never`) before
  /// opening another: a file a line, when the paths written in turn outnumber it (at most 512, 5,000
  /// devices' daily files ran at 390 lines/s with `fsync` `batch`).
  static let maxOpenFiles: Int = {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 32 }
    return maxOpenFiles(descriptorLimit: Int(clamping: min(limit.rlim_cur, 1 << 20)))
  }()

  /// `maxOpenFiles` for a descriptor limit.
  static func maxOpenFiles(descriptorLimit: Int) -> Int { min(8_192, max(8, descriptorLimit / 2)) }

  /// The archive files open in the process, against ``maxOpenFiles``; tests give an action its own.
  public final class OpenFileBudget: Sendable {
    /// The most files open at once.
    public let limit: Int
    let open = Atomic<Int>(0)
    /// A budget of `limit` files.
    public init(limit: Int) { self.limit = limit }
    /// The process's budget.
    public static let shared = OpenFileBudget(limit: FileArchiveAction.maxOpenFiles)
    /// True when no file may be opened before one is closed.
    var isSpent: Bool { open.load(ordering: .relaxed) >= limit }
    func opened() { open.add(1, ordering: .relaxed) }
    func closed() { open.subtract(1, ordering: .relaxed) }
  }

  /// The daemon's own files, which no archive action writes whatever a message renders: the rule
  /// files it loads (a rule JSON payload on `devices/rules/evil` rendered `rules/evil.json`, and the
  /// daemon loaded it), its dead-letter file (a forged record a replay would send), its secrets.
  /// `iotrules run` names them at start (``protectDaemonFiles(rulePaths:deadLetter:secretsFolder:)``);
  /// tests give an action a set of its own.
  public final class ProtectedPaths: Sendable {
    /// How much a protected path covers.
    public enum Extent: Sendable {
      /// The file at the path.
      case file
      /// The rule and test files directly in the folder at the path (a rules folder: its
      /// subfolders and other files are not read).
      case filesIn
      /// The folder at the path and everything below it.
      case everythingIn
    }

    struct Entry: Sendable {
      /// The path resolved once: absolute, without symbolic links, `.` or `..`.
      var resolved: String
      var extent: Extent
      /// What it is, as a refusal says it: `the dead-letter file 'dead-letter.jsonl' (--dead-letter)`.
      var what: String
      /// Refused to rendered paths only: an action that names the file with no template is one of
      /// its writers (a rule's error-action file, which several rules may share).
      var renderedOnly = false
    }

    let entries = Mutex<[Entry]>([])

    /// An empty set.
    public init() {}

    /// The process's set, which the daemon's archive actions check.
    public static let shared = ProtectedPaths()

    /// Protects `path`, resolved now (its symbolic links, `.` and `..`), to `extent`; `what` says
    /// what it is when a rendered path is refused for it.
    public func protect(_ path: String, _ extent: Extent, as what: String) {
      let entry = Entry(resolved: FileArchiveAction.resolved(path), extent: extent, what: what)
      entries.withLock { $0.append(entry) }
    }

    /// Protects the daemon's own files: the files of each rules folder (the rule files and their
    /// tests the daemon loads), or a rule file named alone with its tests; the dead-letter file;
    /// everything in the secrets folder.
    public func protectDaemonFiles(rulePaths: [String], deadLetter: String?, secretsFolder: String?) {
      for path in rulePaths {
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
          protect(path, .filesIn, as: "in the rules folder '\(path)', whose files the daemon loads (--rules)")
        } else {
          protect(path, .file, as: "the rule file '\(path)' the daemon loads (--rules)")
          for test in RuleFile.testFilePaths(of: path) {
            protect(test, .file, as: "the tests of the rule file '\(path)', which the daemon runs (--rules)")
          }
        }
      }
      if let deadLetter {
        protect(
          deadLetter, .file,
          as:
            "the dead-letter file '\(deadLetter)' (--dead-letter), whose lines a replay sends as error records"
        )
      }
      if let secretsFolder {
        protect(secretsFolder, .everythingIn, as: "in the secrets folder '\(secretsFolder)' (--secrets-dir)")
      }
    }

    /// Protects the files the loaded rules' actions own, before the rules run: each sqlite
    /// database with its `-wal`, `-shm` and `-journal` (an archive that made the file first, or
    /// appended to it, ruined the database), and each error-action file named with no template,
    /// against rendered paths (a forged line there is sent by a replay of the file, as a forged
    /// dead-letter record would be). A path is added once; those of rules since removed stay.
    public func protectActionFiles(of rules: [Rule]) {
      var wanted: [Entry] = []
      func visit(_ configured: ConfiguredAction, rule: String, isErrorAction: Bool) {
        if let sqlite = configured.action as? SQLiteAction,
          let path = SQLiteAction.filePath(of: sqlite.database),
          !path.isEmpty
        {
          for suffix in ["", "-wal", "-shm", "-journal"] {
            wanted.append(
              Entry(
                resolved: path + suffix, extent: .file,
                what: "the database '\(sqlite.database)' of rule \(rule)'s sqlite action, or its journal"))
          }
        }
        if isErrorAction, let file = configured.action as? FileArchiveAction,
          let below = file.relative.constantText
        {
          wanted.append(
            Entry(
              resolved: file.rootPrefix + below, extent: .file,
              what:
                "the error-action file '\(file.rootPrefix + below)' of rule \(rule), whose lines a replay sends",
              renderedOnly: true))
        }
        if let nested = configured.errorAction { visit(nested, rule: rule, isErrorAction: true) }
      }
      for rule in rules {
        for action in rule.actions { visit(action, rule: rule.name, isErrorAction: false) }
        if let errorAction = rule.errorAction { visit(errorAction, rule: rule.name, isErrorAction: true) }
      }
      guard !wanted.isEmpty else { return }
      var seen = Set(entries.withLock { $0.map(\.resolved) })
      var written = Set<String>()
      var added: [Entry] = []
      // Resolved once a path as written (10,000 rules may share one database).
      for var entry in wanted where written.insert(entry.resolved).inserted {
        entry.resolved = FileArchiveAction.resolved(entry.resolved)
        if seen.insert(entry.resolved).inserted { added.append(entry) }
      }
      entries.withLock { $0 += added }
    }

    /// Whether `name` is the name of a daemon's MQTT spool (`iotrules-spool-ID.state`), its lock
    /// (`.state.lock`) or its subscription record (`iotrules-subscriptions-ID.state`).
    static func isStateFileName(_ name: String) -> Bool {
      (name.hasPrefix("iotrules-spool-") && (name.hasSuffix(".state") || name.hasSuffix(".state.lock")))
        || (name.hasPrefix("iotrules-subscriptions-") && name.hasSuffix(".state"))
    }

    /// What protected file `path` (a path as the archive writes it) is, or is in; nil for none.
    /// `rendered`: the path came from a template (else the action names it as written).
    func protection(of path: String, rendered: Bool = true) -> String? {
      // Any daemon's state files, by their names: a second daemon's spool beside this one's (its
      // own `--client-id`) took forged lines, which it ran as broker messages at its next start.
      let name = path.split(separator: "/").last.map(String.init) ?? path
      if Self.isStateFileName(name) {
        return "an iotrules state file ('\(name)': an MQTT spool, its lock or a subscription record, "
          + "this daemon's or another's, whose contents a start acts on)"
      }
      let entries = self.entries.withLock { $0 }
      guard !entries.isEmpty else { return nil }
      let resolved = FileArchiveAction.resolved(path)
      let real = Array(resolved.utf8)
      let folder = real[..<(real.lastIndex(of: UInt8(ascii: "/")) ?? 0)]
      return entries.first { entry in
        if entry.renderedOnly && !rendered { return false }
        let protected = Array(entry.resolved.utf8)
        if real == protected { return true }
        switch entry.extent {
        case .file: return false
        case .filesIn:
          // The files the daemon reads there, its rule and test files: an archive may keep its
          // lines beside them (`--rules .`).
          return (folder.elementsEqual(protected) || (folder.isEmpty && protected == [UInt8(ascii: "/")]))
            && (RuleFile.isRuleFile(resolved) || RuleFile.isTestFile(resolved))
        case .everythingIn:
          return protected == [UInt8(ascii: "/")] || real.starts(with: protected + [UInt8(ascii: "/")])
        }
      }?.what
    }

    /// What protected file the file (`device`, `inode`) is, for a file with more than one name (a
    /// hard link to a rule file planted below the archive root took the archive's lines, as a
    /// symbolic link no longer can), or nil. Each protected file's identity is taken now (an editor
    /// replaces a rule file with a new one); a folder's files are listed (a rules folder's rule and
    /// test files; everything in the secrets folder, up to 10,000 entries).
    func protection(ofLinked device: UInt64, _ inode: UInt64, rendered: Bool = true) -> String? {
      func isIt(_ path: String) -> Bool {
        var info = stat()
        // Through a link: a rules folder of links to the files (a ConfigMap's `..data`).
        return stat(path, &info) == 0 && UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
      }
      for entry in entries.withLock({ $0 }) where rendered || !entry.renderedOnly {
        switch entry.extent {
        case .file:
          if isIt(entry.resolved) { return entry.what }
        case .filesIn:
          let names = (try? FileManager.default.contentsOfDirectory(atPath: entry.resolved)) ?? []
          for name in names where RuleFile.isRuleFile(name) || RuleFile.isTestFile(name) {
            // Its name: the folder's words are where it is (`in the rules folder 'rules', ...`).
            if isIt(entry.resolved + "/" + name) { return "'\(name)' \(entry.what)" }
          }
        case .everythingIn:
          guard let walk = FileManager.default.enumerator(atPath: entry.resolved) else { continue }
          var seen = 0
          while seen < 10_000, let name = walk.nextObject() as? String {
            seen += 1
            if isIt(entry.resolved + "/" + name) { return "'\(name)' \(entry.what)" }
          }
        }
      }
      return nil
    }
  }

  /// `path` made absolute from the working folder, without symbolic links, `.` or `..`: the longest
  /// part of it that exists is resolved by the file system (`realpath`), the rest, which is not
  /// there yet and so holds no link, by its text.
  static func resolved(_ path: String) -> String {
    var absolute = path
    if path.utf8.first != UInt8(ascii: "/") {
      var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
      guard getcwd(&buffer, buffer.count) != nil else { return path }
      absolute =
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
    }
    let parts = absolute.utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
    var existing = parts.count
    while existing > 0 {
      if let real = realpath("/" + parts[..<existing].joined(separator: "/"), nil) {
        defer { free(real) }
        var result = String(cString: real).utf8.split(separator: UInt8(ascii: "/")).map {
          String(decoding: $0, as: UTF8.self)
        }
        for part in parts[existing...] {
          if part == "." { continue }
          if part == ".." {
            _ = result.popLast()
          } else {
            result.append(part)
          }
        }
        return "/" + result.joined(separator: "/")
      }
      existing -= 1
    }
    var result: [String] = []
    for part in parts where part != "." {
      if part == ".." { _ = result.popLast() } else { result.append(part) }
    }
    return "/" + result.joined(separator: "/")
  }

  /// The budget this action's open files count against.
  let budget: OpenFileBudget

  /// The daemon's own files, which no rendered path may name (``ProtectedPaths``).
  let protectedPaths: ProtectedPaths

  /// Whether a file must be closed before another opens: this action's or the process's budget.
  func mustClose(_ files: [String: OpenFile]) -> Bool { files.count >= budget.limit || budget.isSpent }

  /// Lines given to this action's files so far: their order of use (a clock's milliseconds repeat
  /// from one batch to the next, and can step back).
  let lineCount = Atomic<Int>(0)

  /// The least recently used open file other than `path`, by a scan of every open file.
  static func leastRecentlyUsed(in files: [String: OpenFile], besides path: String) -> String? {
    files.lazy.filter { $0.key != path }.min(by: { $0.value.lastUse < $1.value.lastUse })?.key
  }

  /// The open files in their order of use, each use appended as it happens: the least recently
  /// used file is the first entry that is still its file's last use (an entry its file has used
  /// since, or closed, is dropped as it is met), found in amortised constant time. A scan of every
  /// open file for each line to a file not open cost 15 times the CPU at a limit of 20,000
  /// descriptors (8,192 files open) that it did at 256, over 20,000 paths.
  struct UseOrder {
    var entries: [(use: Int, path: String)] = []
    var head = 0

    /// Below this many open files, uses are not recorded: the scan is as quick.
    static let minimumFiles = 64

    /// Records that `path`, one of `files`, was given a line at `use` (uses increase).
    mutating func used(_ path: String, at use: Int, of files: [String: OpenFile]) {
      guard files.count >= Self.minimumFiles else {
        if !entries.isEmpty { (entries, head) = ([], 0) }
        return
      }
      // Entries of files used since pile up: rebuilt from the files once they outnumber them
      // well (a sort every few thousand lines), or when recording begins.
      if entries.isEmpty || entries.count - head > 4 * files.count + 1_024 {
        entries = files.map { (use: $0.value.lastUse, path: $0.key) }.sorted { $0.use < $1.use }
        head = 0
      } else {
        entries.append((use, path))
      }
    }

    /// The least recently used file of `files` other than `path`.
    mutating func leastRecentlyUsed(in files: [String: OpenFile], besides path: String) -> String? {
      if head > 1_024, head * 2 > entries.count {
        entries.removeFirst(head)
        head = 0
      }
      var index = head
      while index < entries.count {
        let entry = entries[index]
        if let file = files[entry.path], file.lastUse == entry.use {
          if entry.path != path { return entry.path }
        } else if index == head {
          head += 1
        }
        index += 1
      }
      // Uses not recorded (fewer than `minimumFiles` files): the scan.
      return FileArchiveAction.leastRecentlyUsed(in: files, besides: path)
    }
  }

  /// Builds the action from its configuration.
  public init(
    configuration: RuleNode, context: ActionBuildContext, clock: any EngineClock = SystemClock(),
    budget: OpenFileBudget = .shared, sweeper: ArchiveSweeper? = nil, protectedPaths: ProtectedPaths = .shared
  )
    throws(ActionConfigurationError)
  {
    let reader = ConfigurationReader(node: configuration, kind: "file")
    var problems = ConfigurationProblems()
    problems.attempt { () throws(ActionConfigurationError) in
      try reader.checkKeys(["path", "root", "rotate", "fsync", "closeIdleSeconds"])
    }
    let pathNode =
      problems.attempt { () throws(ActionConfigurationError) in try reader.string("path", required: true) }
      ?? nil
    let rootNode =
      problems.attempt { () throws(ActionConfigurationError) in try reader.string("root", required: false) }
      ?? nil
    var place: (root: String, relative: Template)?
    // A control character in the path's own text (a YAML `>` scalar's closing line break) is in
    // every rendering, and every one would be refused: said here, where it is written.
    let controls = pathNode.map { Self.controlCharacterProblems(of: $0, root: rootNode) } ?? []
    for problem in controls { problems.add(problem.message, at: problem.position) }
    if controls.isEmpty, let pathNode, let pathText = pathNode.string {
      place = problems.attempt { () throws(ActionConfigurationError) in
        try Self.place(of: pathNode, pathText, root: rootNode, reader: reader, context: context)
      }
    }
    // What is on the disk now that every write would fail on: a file where the root's folders go,
    // a device or a pipe at a path without templates.
    if let place, let pathNode, let pathText = pathNode.string {
      if let problem = FileSystem.folderProblem(place.root) {
        problems.add(
          "archive root '\(place.root)' \(problem): every result would fail",
          at: (rootNode ?? pathNode).position)
      } else if let below = place.relative.constantText,
        let problem = FileSystem.fileProblem(
          place.root == "." ? below : (place.root == "/" ? "" : place.root) + "/" + below,
          noun: "a regular file",
          followsLinks: false)
      {
        problems.add(
          "'path' \(pathText) \(problem): the archive writes regular files only", at: pathNode.position)
      } else if let (problem, ofPath) = Self.permissionProblem(
        root: place.root, below: place.relative.constantText)
      {
        problems.add(
          "\(problem): every result would fail", at: (ofPath ? pathNode : rootNode ?? pathNode).position)
      }
    }
    var maxBytes: Int?
    var maxAgeSeconds: Int?
    if let rotate = configuration["rotate"] {
      if let members = rotate.members {
        if members.isEmpty {
          // Nothing would rotate, which the rule's author did not mean.
          problems.add("'rotate' is empty: give maxBytes or maxAgeSeconds, or remove it", at: rotate.position)
        }
        for member in members where member.key != "maxBytes" && member.key != "maxAgeSeconds" {
          problems.add(
            "unknown key 'rotate.\(RuleFile.escapedName(member.key))'"
              + "\(FunctionRegistry.didYouMean(member.key, among: ["maxBytes", "maxAgeSeconds"])); expected maxBytes, maxAgeSeconds",
            at: member.keyPosition)
        }
        maxBytes =
          problems.attempt { () throws(ActionConfigurationError) in
            try reader.int("maxBytes", in: rotate, minimum: 1)
          } ?? nil
        // At most ten years: the age is compared in milliseconds.
        maxAgeSeconds =
          problems.attempt { () throws(ActionConfigurationError) in
            try reader.int("maxAgeSeconds", in: rotate, minimum: 1, maximum: 315_360_000)
          } ?? nil
      } else {
        problems.add("'rotate' must be an object", at: rotate.position)
      }
    }
    var sync = SyncMode.batch
    if let syncNode = configuration["fsync"] {
      if let text = syncNode.string, let mode = SyncMode(rawValue: text) {
        sync = mode
      } else {
        problems.add("'fsync' must be \"batch\", \"always\" or \"never\"", at: syncNode.position)
      }
    }
    let closeIdleSeconds =
      problems.attempt { () throws(ActionConfigurationError) in
        try reader.int("closeIdleSeconds", minimum: 1, maximum: 315_360_000)
      } ?? nil
    if place != nil, let pathNode {
      // A name of the path's own text too long for the file system (or to be rotated).
      let rotates = maxBytes != nil || maxAgeSeconds != nil
      for problem in Self.longNameProblems(of: pathNode, root: rootNode, rotates: rotates) {
        problems.add(problem.message, at: problem.position)
      }
    }
    do {
      try problems.throwIfAny()
    } catch {
      var error = error
      if let pathText = pathNode?.string {
        error.warnings = Self.warnings(
          root: place?.root ?? rootNode?.string ?? "", rootIsExplicit: rootNode != nil, pathText: pathText,
          relative: place?.relative, in: context)
      }
      throw error
    }
    self.closeIdleSeconds = closeIdleSeconds ?? Self.defaultCloseIdleSeconds
    self.sweeper = sweeper
    pathText = pathNode!.string!
    let root: String
    (root, relative) = place!
    rootPrefix = root == "/" ? "/" : root + "/"
    rootIsExplicit = rootNode != nil
    self.maxBytes = maxBytes
    self.maxAgeSeconds = maxAgeSeconds
    self.sync = sync
    self.clock = clock
    self.budget = budget
    self.protectedPaths = protectedPaths
  }

  /// The archive root and the template of the path below it: the explicit `root`, else the folder
  /// part of `path` before its first template. What every rendering would be refused for is an
  /// error here, at the path: `..`, `.` or an empty segment written out (segments with a template
  /// are judged once rendered).
  private static func place(
    of pathNode: RuleNode, _ pathText: String, root rootNode: RuleNode?, reader: ConfigurationReader,
    context: ActionBuildContext
  ) throws(ActionConfigurationError) -> (root: String, relative: Template) {
    if pathText.isEmpty {
      throw ActionConfigurationError("'path' must be a non-empty path", at: pathNode.position)
    }
    let root: String
    let relative: Template
    let relativeText: String
    if let rootNode {
      let rootText = rootNode.string!
      if rootText.isEmpty { throw ActionConfigurationError("'root' is empty", at: rootNode.position) }
      // A folder, not a template: `arch/${x}` would be one folder of that very name.
      if rootText.contains("${") {
        throw ActionConfigurationError(
          "'root' is a folder, not a template: '\(rootText)' would be one folder of that very name; templates go in 'path'",
          at: rootNode.position)
      }
      if pathText.hasPrefix("/") {
        throw ActionConfigurationError("with 'root', 'path' must be relative to it", at: pathNode.position)
      }
      root = rootText.count > 1 && rootText.hasSuffix("/") ? String(rootText.dropLast()) : rootText
      relative = try reader.template(pathNode, field: "file.path", context: context)
      relativeText = pathText
    } else {
      let bytes = Array(pathText.utf8)
      if let lastSlash = Self.rootEnd(ofPath: bytes) {
        root = lastSlash == 0 ? "/" : String(decoding: bytes[..<lastSlash], as: UTF8.self)
        relative = try reader.template(
          pathNode, field: "file.path", dropping: lastSlash + 1, context: context)
        relativeText = String(decoding: bytes[(lastSlash + 1)...], as: UTF8.self)
      } else {
        root = "."
        relative = try reader.template(pathNode, field: "file.path", context: context)
        relativeText = pathText
      }
    }
    let literalSegments = relativeText.splitExactly("/").filter { !$0.contains("${") }
    if relativeText.isEmpty
      || literalSegments.contains(where: { $0.isEmpty || $0.isExactlyDot || $0.isExactlyDotDot })
    {
      let problem =
        relativeText.isEmpty
        ? "names no file below the archive root '\(root)'"
        : Self.problem(inRelativePath: relativeText.replacingExactly("${", with: "x{"))
          ?? "is refused"
      throw ActionConfigurationError("'path' \(problem): every result would fail", at: pathNode.position)
    }
    return (root, relative)
  }

  /// The longest file or folder name, in bytes (`NAME_MAX` of ext4, XFS and btrfs).
  static let nameLimit = 255
  /// The bytes of a path the system takes (PATH_MAX, its NUL aside).
  static let pathLimit = 4_095

  /// The most a rotation adds to a file's name: `.20261204T142310.123Z-9999`, 26 bytes.
  static let rotationSuffixLength = 26
  /// The longest file name a rotating archive writes: one rotation can still rename.
  static var rotatableNameLimit: Int { nameLimit - rotationSuffixLength }

  /// The first control character in `bytes[ranges]`: its offset and code point (C0, DEL and the
  /// C1 controls U+0080...U+009F), or nil.
  static func firstControlCharacter(in bytes: [UInt8], ranges: [Range<Int>]) -> (offset: Int, scalar: UInt32)?
  {
    for range in ranges {
      for index in range {
        let byte = bytes[index]
        if byte < 0x20 || byte == 0x7F { return (index, UInt32(byte)) }
        if byte == 0xC2, index + 1 < range.upperBound, (0x80...0x9F).contains(bytes[index + 1]) {
          return (index, UInt32(bytes[index + 1]))
        }
      }
    }
    return nil
  }

  /// The rule's own text of `root` and `path` (the latter outside its `${...}`): each key, its node,
  /// its bytes and the byte ranges that are its own text.
  static func ownText(of pathNode: RuleNode, root rootNode: RuleNode?)
    -> [(key: String, node: RuleNode, bytes: [UInt8], ranges: [Range<Int>])]
  {
    [("root", rootNode), ("path", pathNode)].compactMap { key, node in
      guard let node, let text = node.string else { return nil }
      let bytes = Array(text.utf8)
      return (key, node, bytes, key == "root" ? [0..<bytes.count] : Template.literalRanges(of: text) ?? [])
    }
  }

  /// Where the root of a `path` given without `root` ends: its last `/` before its first `${`
  /// (`archive/x/${topic(2)}/day.jsonl`: `archive/x`), or nil when it has none (the root is `.`).
  static func rootEnd(ofPath bytes: [UInt8]) -> Int? {
    var firstTemplate = bytes.count
    for index in 0..<max(0, bytes.count - 1)
    where bytes[index] == UInt8(ascii: "$") && bytes[index + 1] == UInt8(ascii: "{") {
      firstTemplate = index
      break
    }
    return bytes[..<firstTemplate].lastIndex(of: UInt8(ascii: "/"))
  }

  /// A NUL or another control character in the text of `path` (outside its `${...}`) or of `root`:
  /// every rendering would hold it, and be refused (a YAML `path: >` ends in a line break, a JSON
  /// `\t` is a tab); each at its own place.
  static func controlCharacterProblems(of pathNode: RuleNode, root rootNode: RuleNode?)
    -> [ActionConfigurationError]
  {
    var found: [ActionConfigurationError] = []
    for (key, node, bytes, ranges) in ownText(of: pathNode, root: rootNode) {
      guard let (offset, scalar) = firstControlCharacter(in: bytes, ranges: ranges) else {
        // A character a listing does not show, below the root (where renderings are judged): a
        // constant `x\u{200B}.jsonl` passed check and every result failed.
        guard key == "path" else { continue }
        let start = rootNode == nil ? rootEnd(ofPath: bytes).map { $0 + 1 } ?? 0 : 0
        for range in ranges {
          let below = max(range.lowerBound, start)..<max(range.upperBound, start)
          guard let (at, unseen, kind) = firstUnseen(in: bytes[below]) else { continue }
          found.append(
            ActionConfigurationError(
              "'path' holds \(kind) (\(unseen.codePointName)) in its own text: every rendered path would hold it, "
                + "and the archive refuses such names, so every result would fail",
              at: node.position(ofStringOffset: below.lowerBound + at)))
          break
        }
        continue
      }
      let name = Unicode.Scalar(scalar).map(\.codePointName) ?? "U+\(scalar)"
      let message: String
      if scalar == 0 {
        message =
          "'\(key)' holds a NUL character (U+0000): no file name can hold one, and every result would fail"
      } else {
        let yaml =
          scalar == 0x0A && offset == bytes.count - 1
          ? RuleFile.yamlLineBreakHint : ""
        message =
          "'\(key)' holds a control character (\(name)) in its own text\(yaml): every rendered path would hold it, "
          + "and the archive refuses such names, so every result would fail"
      }
      found.append(ActionConfigurationError(message, at: node.position(ofStringOffset: offset)))
    }
    return found
  }

  /// Names in the text of `path` (outside its `${...}`) or of `root` longer than a file system
  /// takes (255 bytes), or, with `rotates`, a file name at the path's end too long to be rotated
  /// (229 bytes: a rotation adds up to 26): every write would fail. A name split by a `${...}` is
  /// left to be judged once rendered (a value may hold a `/`).
  static func longNameProblems(of pathNode: RuleNode, root rootNode: RuleNode?, rotates: Bool)
    -> [ActionConfigurationError]
  {
    var found: [ActionConfigurationError] = []
    for (key, node, bytes, ranges) in ownText(of: pathNode, root: rootNode) {
      for range in ranges {
        var start = range.lowerBound
        for index in range.lowerBound...range.upperBound
        where index == range.upperBound || bytes[index] == UInt8(ascii: "/") {
          defer { start = index + 1 }
          let length = index - start
          // The path's last name, after its last template: the file's own name.
          let isFileName = key == "path" && index == bytes.count
          let limit = isFileName && rotates ? rotatableNameLimit : nameLimit
          guard length > limit else { continue }
          let shown = String(decoding: bytes[start..<start + 16], as: UTF8.self) + "..."
          let message =
            limit == nameLimit
            ? "'\(key)' has a name of \(length) bytes in its own text ('\(shown)'): a file or folder name is at "
              + "most \(nameLimit) bytes, so every result would fail"
            : "'path' ends in a file name of \(length) bytes ('\(shown)'): a rotation adds up to "
              + "\(rotationSuffixLength) bytes ('.20261204T142310.123Z-0001') and a name is at most \(nameLimit), so "
              + "with 'rotate' a file name is at most \(rotatableNameLimit) bytes; every result would fail"
          found.append(ActionConfigurationError(message, at: node.position(ofStringOffset: start)))
        }
      }
    }
    return found
  }

  /// Files open on the first write. With `maxAgeSeconds` in the daemon, the files a path of this
  /// action could name that an earlier run left below the root are looked for (in the background)
  /// and rotated when their age comes, whether or not a line comes for them.
  public func start() async throws {
    guard let sweeper, maxAgeSeconds != nil else { return }
    sweeper.scanQueue.async { sweeper.findLeftFilesNow(of: self) }
  }

  /// What marks the files this action makes (``open(_:now:operations:)``): its root and path
  /// template, as written.
  var mark: String { rootPrefix + relative.source }

  /// Whether the file at `path` carries this action's mark: made by an archive with this root and
  /// path template.
  func isMarked(_ path: String) -> Bool { Self.mark(of: path) == mark }

  /// The mark of the file at `path` (``mark``), or nil.
  static func mark(of path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4_096)
    let length = iotrules_mark_of(path, &buffer, UInt(buffer.count))
    guard length > 0 else { return nil }
    return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// The path's pieces for ``couldName(_:pieces:)``: each text part's bytes, nil for each `${…}`.
  var pathPieces: [[UInt8]?] {
    relative.parts.map {
      if case .text(let literal) = $0 { return Array(literal.utf8) }
      return nil
    }
  }

  /// Whether `relative`, a path below the root, is one this action's path (its ``pathPieces``)
  /// could render: its text parts as written, each `${…}` any text within one segment (a value
  /// holding `/` is not recognised), and not a rotated name.
  func couldName(_ relative: String, pieces: [[UInt8]?]) -> Bool {
    guard !Self.isRotatedName(relative), refusal(ofRelative: relative[...]) == nil else { return false }
    let text = Array(relative.utf8)
    // Backtracking over the pieces: a wildcard takes 0 or more bytes other than '/'. Each (piece,
    // offset) pair that failed is noted and not tried again, so a name is matched in at most
    // pieces × length steps: a marked file renamed to a long name no rendering gives took
    // length^wildcards steps, and held the start scan of every archive action for hours.
    var failed = [Bool](repeating: false, count: (pieces.count + 1) * (text.count + 1))
    func matches(_ piece: Int, _ at: Int) -> Bool {
      guard piece < pieces.count else { return at == text.count }
      let key = piece * (text.count + 1) + at
      guard !failed[key] else { return false }
      let result = tryPiece(piece, at)
      if !result { failed[key] = true }
      return result
    }
    func tryPiece(_ piece: Int, _ at: Int) -> Bool {
      if let literal = pieces[piece] {
        guard text.count - at >= literal.count, text[at..<at + literal.count].elementsEqual(literal) else {
          return false
        }
        return matches(piece + 1, at + literal.count)
      }
      var end = at
      while true {
        if matches(piece + 1, end) { return true }
        guard end < text.count, text[end] != UInt8(ascii: "/") else { return false }
        end += 1
      }
    }
    return matches(0, 0)
  }

  /// Whether a name ends as a rotated one: `.20261204T142310.123Z`, maybe then `-0001`.
  static func isRotatedName(_ name: String) -> Bool {
    var bytes = Array(name.utf8)
    if bytes.count >= 5, bytes[bytes.count - 5] == UInt8(ascii: "-"),
      bytes.suffix(4).allSatisfy({ (0x30...0x39).contains($0) })
    {
      bytes.removeLast(5)
    }
    let shape = Array(".dddddddd'T'dddddd.ddd'Z'".utf8).filter { $0 != UInt8(ascii: "'") }
    guard bytes.count > shape.count else { return false }
    for (byte, expected) in zip(bytes.suffix(shape.count), shape) {
      if expected == UInt8(ascii: "d") ? !(0x30...0x39).contains(byte) : byte != expected { return false }
    }
    return true
  }

  /// Appends one result.
  public func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }

  /// Appends the results in order, then fsyncs each file touched (mode `batch`).
  public func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] {
    await enterRound()
    defer { leaveRound() }
    var results = [ActionError?](repeating: nil, count: inputs.count)
    var targets: [String?] = []
    targets.reserveCapacity(inputs.count)
    var machine = VirtualMachine()
    for (index, input) in inputs.enumerated() {
      switch resolve(input, using: &machine) {
      case .success(let path): targets.append(path)
      case .failure(let error):
        targets.append(nil)
        results[index] = error
      }
    }
    let now = clock.nowMs()
    let firstStamp = lineCount.add(inputs.count, ordering: .relaxed).oldValue
    let operations = self.operations.withLock { $0 }
    // The files to fsync after the lock is released, with the results each carries.
    let toSync = Self.writing.withLock { orders in
      files.withLock { files -> [String: (descriptor: Int32, indices: [Int])] in
        let id = ObjectIdentifier(self)
        var order = orders.removeValue(forKey: id) ?? UseOrder()
        defer { if !order.entries.isEmpty { orders[id] = order } }
        // Lines are gathered per file and written with one call per file and batch (or per line
        // with fsync "always"); a failed write fails exactly the results it carried.
        var pending: [String: PendingLines] = [:]
        // By path: the descriptor written in this batch and the results it carries, until its fsync.
        var touched: [String: (descriptor: Int32, indices: [Int])] = [:]
        func flush(_ path: String) {
          guard let group = pending.removeValue(forKey: path), !group.bytes.isEmpty, let file = files[path]
          else { return }
          func wrote(_ indices: [Int]) {
            files[path]!.lastWriteMs = now
            if touched[path]?.descriptor == file.descriptor {
              touched[path]!.indices += indices
            } else {
              touched[path] = (file.descriptor, indices)
            }
          }
          do throws(ActionError) {
            try FileSystem.writeAll(file.descriptor, group.bytes, path: path, operations: operations)
            wrote(group.indices)
          } catch {
            // writeAll cut the file back: none of these lines is in it.
            files[path]!.size -= group.bytes.count
            // Out of room (a full disk or quota, the file size limit): then line by line, so that
            // a line too large for the space left fails alone and the others are written (the
            // whole group failed, each attempt, while most of its lines would have fit). Any other
            // failure fails them all: retried line by line, it held the archive's locks a write
            // per line.
            guard group.indices.count > 1, let code = error.code, [ENOSPC, EDQUOT, EFBIG].contains(code)
            else {
              for index in group.indices { results[index] = error }
              return
            }
            var start = 0
            for (index, end) in zip(group.indices, group.ends) {
              let line = Array(group.bytes[start..<end])
              start = end
              do throws(ActionError) {
                try FileSystem.writeAll(file.descriptor, line, path: path, operations: operations)
                files[path]!.size += line.count
                wrote([index])
              } catch {
                results[index] = error
              }
            }
          }
        }
        /// A file closed for rotation or for the open-files limit: its lines of this batch are
        /// durable only if the fsync at closing succeeded.
        func closed(_ file: ClosedFile) {
          guard let written = touched[file.path], written.descriptor == file.descriptor else { return }
          touched[file.path] = nil
          guard let code = file.syncError else { return }
          let error = FileSystem.error(code, "fsync \(file.path)")
          for index in written.indices where results[index] == nil { results[index] = error }
        }
        // Another action (another rule archiving to the same file) or logrotate may have rotated
        // or grown a file since: a descriptor that no longer names the file at its path is closed
        // (the next line for it opens the new one), and a size is the file's own. Each file this
        // batch writes, every batch (once a second let logrotate's rename take a second of
        // acknowledged lines into the renamed file, which its compression then removed); before
        // any line of the batch, so none is pending.
        var written = Set<String>()
        var previous: String?
        for case let path? in targets where path != previous {
          previous = path
          written.insert(path)
        }
        // Files whose cut line (another writer's) could not be ended: their lines fail.
        var unended: [String: ActionError] = [:]
        for path in written {
          guard let file = files[path] else { continue }
          if var size = Self.currentState(of: file.descriptor, at: path) {
            // Cut back by another (logrotate's copytruncate took its lines): its age begins again.
            if size < file.size { files[path]!.openedAtMs = now }
            if size != file.size {
              // Written by another since (a second daemon, another rule, a tool), which may have
              // left the part of a line (killed while writing, cut back mid-line): ended as at
              // opening, or the next line was glued to it, acknowledged and unreadable.
              do throws(ActionError) {
                try FileSystem.endCutLine(file.descriptor, path: path, operations: operations)
                size = Self.currentState(of: file.descriptor, at: path) ?? size
              } catch {
                unended[path] = error
              }
            }
            files[path]!.size = size
          } else {
            if sync != .never { _ = operations.sync(file.descriptor) }
            Glibc.close(file.descriptor)
            budget.closed()
            files[path] = nil
          }
        }
        for (index, input) in inputs.enumerated() {
          guard let path = targets[index] else { continue }
          if let error = unended[path] {
            results[index] = error
            continue
          }
          let line = Self.line(for: input.evaluation)
          let count = line.count + 1
          // The usual case, an open file that takes the line as it is: one lookup in each table.
          if let open = files.index(forKey: path),
            !needsRotation(files.values[open], adding: count, now: now),
            sync != .always
          {
            files.values[open].size += count
            files.values[open].lastUse = firstStamp + index
            order.used(path, at: firstStamp + index, of: files)
            pending[path, default: PendingLines()].add(line, index)
            continue
          }
          do throws(ActionError) {
            if let file = files[path], needsRotation(file, adding: count, now: now) { flush(path) }
            if files[path] == nil && mustClose(files),
              let victim = order.leastRecentlyUsed(in: files, besides: path)
            {
              // The least recently used file is closed (with an fsync) to make room: its lines
              // of this batch are written first.
              flush(victim)
            }
            var closedFiles: [ClosedFile] = []
            defer { for file in closedFiles { closed(file) } }
            _ = try descriptor(
              for: path, adding: count, now: now, files: &files, order: &order, closed: &closedFiles,
              operations: operations)
            files[path]!.size += count
            files[path]!.lastUse = firstStamp + index
            order.used(path, at: firstStamp + index, of: files)
            pending[path, default: PendingLines()].add(line, index)
            if sync == .always {
              flush(path)
              if results[index] == nil, operations.sync(files[path]!.descriptor) != 0 {
                throw FileSystem.error(errno, "fsync \(path)")
              }
            }
          } catch {
            results[index] = error
          }
        }
        for path in Array(pending.keys) { flush(path) }
        return sync == .batch ? touched : [:]
      }
    }
    if !toSync.isEmpty {
      // The fsyncs wait on the archive's own threads, not on a Swift concurrency thread: the
      // engine goes on evaluating meanwhile (on a 2-core machine there are only two of those).
      // On the files' own descriptors, which stay open until the round ends: only this action
      // closes them, in a round of its own (a sweep, the shutdown). A `dup` of each, taken so that
      // nothing could close them meanwhile, doubled the descriptors the archive held (5,000 files
      // at a limit of 4,096: 3,854 open, and a limit of 1,024 left none to read the rules with).
      let descriptors = toSync.mapValues(\.descriptor)
      let failures = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
          continuation.resume(returning: Self.syncAll(descriptors, sync: operations.sync))
        }
      }
      for (path, written) in toSync {
        guard let code = failures[path] else { continue }
        let error = FileSystem.error(code, "fsync \(path)")
        for index in written.indices where results[index] == nil { results[index] = error }
      }
    }
    // Each failure names the file it was for (the error record's failedResource).
    for index in results.indices {
      if let error = results[index], let path = targets[index] { results[index] = error.about(path) }
    }
    return results
  }

  /// The lines of a batch waiting for one file's write, and the results they carry.
  struct PendingLines {
    var bytes: [UInt8] = []
    var indices: [Int] = []
    /// Where each line ends in `bytes` (after its newline), in `indices`' order.
    var ends: [Int] = []

    /// Adds `line` and its newline for the result at `index`.
    mutating func add(_ line: [UInt8], _ index: Int) {
      bytes += line
      bytes.append(UInt8(ascii: "\n"))
      indices.append(index)
      ends.append(bytes.count)
    }
  }

  /// A file closed during a batch, with the errno of its fsync (nil: synced, or fsync "never").
  struct ClosedFile {
    var path: String
    var descriptor: Int32
    var syncError: Int32?
  }

  final class SyncFailures: Sendable {
    let codes = Mutex<[String: Int32]>([:])
  }

  /// Fsyncs the files at once on the archive's fsync threads: the file system commits concurrent
  /// fsyncs together (16 files: about 10 ms instead of 70 ms one after the other). Returns errno by
  /// path of the files whose fsync failed.
  static func syncAll(
    _ files: [String: Int32], sync: @escaping @Sendable (Int32) -> Int32 = FileOperations.system.sync
  ) -> [String: Int32] {
    guard files.count > 1 else {
      guard let (path, fd) = files.first, sync(fd) != 0 else { return [:] }
      return [path: errno]
    }
    let failures = SyncFailures()
    SyncThreads.shared.runAll(
      files.map { path, fd in
        {
          if sync(fd) != 0 {
            let code = errno
            failures.codes.withLock { $0[path] = code }
          }
        }
      })
    return failures.codes.withLock { $0 }
  }

  /// A template path with its archive root at `/`: a value, from the topic or the payload, picks
  /// any file the daemon can write. One whose root holds the folder of the rule file being loaded
  /// (`${topic(2)}/${topic(3)}.json` run where `rules/` is): a value could name a rule file, which
  /// the daemon refuses at run time (``ProtectedPaths``), but a rule's archive has no business there.
  public func configurationWarnings(in context: ActionBuildContext) -> [ActionConfigurationWarning] {
    Self.warnings(
      root: root, rootIsExplicit: rootIsExplicit, pathText: pathText, relative: relative, in: context)
  }

  /// ``configurationWarnings(in:)`` of the settings read so far: also of a configuration in error,
  /// whose warnings are said beside its errors. `relative` is nil when the path could not be placed
  /// (only its text is judged then).
  static func warnings(
    root: String, rootIsExplicit: Bool, pathText: String, relative: Template?, in context: ActionBuildContext
  ) -> [ActionConfigurationWarning] {
    // The root as written (the path's text before its first template when no root is given).
    if let problem = unexpandedPathProblem(
      rootIsExplicit ? root : pathText, key: rootIsExplicit ? "root" : "path")
    {
      return [
        ActionConfigurationWarning(
          key: rootIsExplicit ? "root" : "path", message: "rule '\(context.ruleName)': \(problem)")
      ]
    }
    guard let relative, !relative.isConstant else { return [] }
    if root == "/" {
      return [
        ActionConfigurationWarning(
          key: "path",
          message:
            "rule '\(context.ruleName)': the file path '\(pathText)' has its archive root at '/': a template value "
            + "picks any file the daemon may write; put a folder before the first ${...} or give 'root'")
      ]
    }
    guard !context.ruleFile.isEmpty else { return [] }
    // A path whose text after its last ${...} fixes an ending no rule or test file has
    // (`${topic(2)}/${x}.jsonl`) names none, whatever the values.
    let ending: String
    if case .text(let text)? = relative.parts.last { ending = text } else { ending = "" }
    guard
      [".json", ".yaml", ".yml"].contains(where: { $0.hasSuffix(ending) || ending.hasSuffix($0) })
    else { return [] }
    let rules = FileSystem.folder(of: context.ruleFile)
    let realRules = Array(Self.resolved(rules).utf8)
    let realRoot = Array(Self.resolved(root).utf8)
    guard realRules == realRoot || realRules.starts(with: realRoot + [UInt8(ascii: "/")]) else { return [] }
    // The path's text before its first ${...} (`out/` of `out/${topic(2)}`) keeps every file out of
    // a rules folder it does not lead to: only files right in the folder are rule files.
    var leading = ""
    if case .text(let text)? = relative.parts.first { leading = text }
    let below = String(decoding: realRules.dropFirst(realRoot.count + 1), as: UTF8.self)
    if below.isEmpty {
      if leading.contains("/") { return [] }
    } else {
      let folder = below + "/"
      let reaches =
        folder.hasPrefix(leading)
        || (leading.hasPrefix(folder) && !leading.dropFirst(folder.count).contains("/"))
      if !reaches { return [] }
    }
    let place = root == "." ? "the working folder" : "'\(root)'"
    return [
      ActionConfigurationWarning(
        key: "path",
        message:
          "rule '\(context.ruleName)': the archive root of the file path '\(pathText)' is \(place), which holds the "
          + "rules folder '\(rules)': a template value could name a rule file there (`run` refuses to write the "
          + "daemon's own files); put a folder of the archive's own before the first ${...} or give 'root'")
    ]
  }

  /// Closes every file, once the round under way (its fsyncs use the files' descriptors) ends.
  public func shutdown() async {
    await enterRound()
    defer { leaveRound() }
    _ = Self.writing.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) }
    // The files it would have rotated on time go to the sweeper, which rotates them when their
    // age comes (a reload replaced or removed the rule), unless the rule's next version takes them.
    // Under the `files` lock, as a sweep: one that closed a file before keeps its age for this.
    var left: [String: (openedAtMs: Int, identity: FileIdentity)] = [:]
    files.withLock { files in
      isShutDown.store(true, ordering: .relaxed)
      left = keptAges.withLock { ages in
        defer { ages = [:] }
        return ages
      }
      for (path, file) in files {
        if maxAgeSeconds != nil, file.size > 0, Self.currentState(of: file.descriptor, at: path) != nil {
          left[path] = (file.openedAtMs, file.identity)
        }
        if sync != .never { fsync(file.descriptor) }
        close(file.descriptor)
        budget.closed()
      }
      files = [:]
    }
    if let sweeper, let maxAgeSeconds, !left.isEmpty {
      sweeper.adopt(
        left.mapValues {
          ArchiveSweeper.Orphan(
            rootPrefix: rootPrefix, openedAtMs: $0.openedAtMs, identity: $0.identity,
            maxAgeSeconds: maxAgeSeconds, sync: sync,
            clock: clock)
        })
    }
  }

  /// The line written for an evaluation (without its newline): its JSON payload (U+2028, U+2029
  /// and U+0085 written as escapes: the same JSON, one line to every reader), or a binary
  /// result as `{"payload_base64":"..."}`; an empty one (`SELECT VALUE` of an Undefined) as
  /// `{"payload_base64":""}`: zero bytes, never a blank line or `{}` (it was `{}`, which reads as a
  /// result with no member).
  public static func line(for evaluation: Evaluation) -> [UInt8] {
    // `isBinary` first: it answers without parsing a passed-through JSON payload; a binary value is stored.
    if evaluation.isBinary, case .binary(let bytes) = evaluation.value {
      return Array("{\"payload_base64\":\"\(Data(bytes).base64EncodedString())\"}".utf8)
    }
    if evaluation.payload.isEmpty { return Array(#"{"payload_base64":""}"#.utf8) }
    // A line to every reader: a raw U+2028 split it in two for Python's `splitlines`.
    return JSONWriter.escapingLineSeparators(evaluation.payload)
  }

  /// Renders the path and checks it stays inside the root.
  func resolve(_ input: ActionInput) -> Result<String, ActionError> {
    var machine = VirtualMachine()
    return resolve(input, using: &machine)
  }

  /// Renders the path with a caller's VM (one per batch).
  func resolve(_ input: ActionInput, using machine: inout VirtualMachine) -> Result<String, ActionError> {
    let rendering: String
    do {
      rendering = try relative.render(
        context: input.message.evaluationContext(), variables: input.evaluation.variables, using: &machine,
        prefix: rootPrefix)
    } catch {
      return .failure(ActionError(.permanent, "path: \(error.described(in: relative.source))"))
    }
    let path = composed(rendering)
    let rendered = path[path.utf8.index(path.startIndex, offsetBy: rootPrefix.utf8.count)...]
    if let refusal = refusal(ofRelative: rendered) { return .failure(ActionError(.permanent, refusal)) }
    return .success(path)
  }

  /// `path`, a rendering that starts with the root, as the daemon writes it: below the root in
  /// Unicode's composed form (NFC), as the sqlite action's column names, so `é` spelled as U+00E9
  /// or as `e` + U+0301 names one file, always the same one (the open files, kept by Swift
  /// strings, which take the two as equal, sent one spelling's lines to whichever file the other
  /// had opened first). The root, written in the configuration, is kept as it is.
  public func composed(_ path: String) -> String { Self.composing(path, below: rootPrefix) }

  /// `path` with what follows `prefix` in composed form; `path` itself when it does not begin with
  /// `prefix` (byte for byte).
  static func composing(_ path: String, below prefix: String) -> String {
    // Below U+0300 (UTF-8 bytes below 0xCC) every text is in composed form already (`café` with
    // U+00E9): no conversion, which costs a tenth of a non-ASCII archive's rate.
    let plain =
      path.utf8.withContiguousStorageIfAvailable { $0.allSatisfy { $0 < 0xCC } }
      ?? path.utf8.allSatisfy { $0 < 0xCC }
    guard !plain, path.startsExactly(with: prefix) else { return path }
    let below = String(decoding: path.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    return prefix + below.precomposedStringWithCanonicalMapping
  }

  /// What a rendering of the configuration's `path` begins with when the root is not explicit: the
  /// root's text (a root taken as '.' is not written).
  var writtenRoot: String { root == "." && !pathText.hasPrefix("./") ? "" : rootPrefix }

  /// `rendered`, the configuration's `path` as rendered for a message, as the daemon names the file
  /// (for previews): below the root in composed form, as `composed` makes a path that begins with
  /// the root (a preview's path, relative to an explicit root, was shown as rendered: a test
  /// naming the file the daemon writes failed).
  public func composed(configuredPath rendered: String) -> String {
    Self.composing(rendered, below: rootIsExplicit ? "" : writtenRoot)
  }

  /// Why the daemon refuses `rendered`, the configuration's `path` as rendered for a message, or nil
  /// (for previews: `iotrules test`, the REPL's `.rule`).
  public func refusal(ofConfiguredPath rendered: String) -> String? {
    if rootIsExplicit { return refusal(ofRelative: rendered[...]) }
    // The root is the literal text before the path's last '/' ahead of its first template, so the
    // rendering begins with it (a root taken as '.' is not written).
    // Bytes, as `resolve` slices: a value starting with a combining mark joins the root's '/' into
    // one Character.
    let written = writtenRoot
    guard rendered.utf8.starts(with: written.utf8) else { return refusal(ofRelative: rendered[...]) }
    return refusal(
      ofRelative: rendered[rendered.utf8.index(rendered.startIndex, offsetBy: written.utf8.count)...])
  }

  /// Why a rendered path below the archive root is refused (the error message), or nil.
  func refusal(ofRelative rendered: Substring) -> String? {
    // A path no file system takes (a value of kilobytes), said in a line of its own size: the
    // message shows its start, not all of it (one of 400 KB went whole into each error record).
    // (Names are measured only in a path long enough to hold one too long: not on every result.)
    var longestName = 0
    if rendered.utf8.count > Self.nameLimit {
      var name = 0
      for byte in rendered.utf8 {
        name = byte == UInt8(ascii: "/") ? 0 : name + 1
        longestName = max(longestName, name)
      }
    }
    let length = rootPrefix.utf8.count + rendered.utf8.count
    if length > Self.pathLimit || longestName > Self.nameLimit {
      let said =
        length > Self.pathLimit
        ? "is \(length) bytes long with the root (a path is at most \(Self.pathLimit))"
        : "has a name of \(longestName) bytes (a name is at most \(Self.nameLimit))"
      return "rendered path '\(clipped(rendered))' \(said); archive root is '\(root)'"
    }
    // One pass over the bytes finds both a refused path and whether a segment names a hidden file.
    var namesHidden = false
    let problem =
      rendered.utf8.withContiguousStorageIfAvailable { Self.problem(in: $0, namesHidden: &namesHidden) }
      ?? Self.problem(in: Array(rendered.utf8), namesHidden: &namesHidden)
    // (The rare case, a segment that begins with a dot: each such segment is judged.)
    let segments = namesHidden ? rendered.splitExactly("/") : []
    if problem == nil, namesHidden,
      let hidden = segments.enumerated().first(
        where: {
          Self.isHiddenName($0.element) && !allowsHiddenName(inSegment: $0.offset, of: segments.count)
        }
      )?.element
    {
      // `${deviceId}.jsonl` without a deviceId would write `.jsonl`, a file `ls` does not show.
      return
        "rendered path '\(rendered)' has a hidden name '\(hidden)' (a value of '\(pathText)' rendered empty before a '.', or began with '.'); archive root is '\(root)'"
    }
    if let problem {
      // The path's own text has neither (refused at load): a value made it, most often a missing
      // field rendered as nothing.
      // Below the root the text never begins with '/': a value did, empty or absolute.
      let said = problem == "is absolute" ? "begins with '/'" : problem
      let cause =
        problem == "is absolute" || problem == "has an empty segment"
        ? " (a value of '\(pathText)' rendered empty, or with a leading or doubled '/')" : ""
      return "rendered path '\(rendered)' \(said)\(cause); archive root is '\(root)'"
    }
    // With rotation, a value that renders a rotated file's name would write to a file closed for
    // good, and a `maxBytes` rotation would rename it on (`x.<stamp>.<stamp>`). (Asked only of a
    // name ending as one can: most end in a letter. Without rotation such a name is a name.)
    if maxBytes != nil || maxAgeSeconds != nil, let last = rendered.utf8.last,
      last == UInt8(ascii: "Z") || (0x30...0x39).contains(last), Self.isRotatedName(String(rendered))
    {
      return
        "rendered path '\(clipped(rendered))' ends as a rotated file's name does ('.20261204T142310.123Z'), and rotated files are closed for good; archive root is '\(root)'"
    }
    if maxBytes != nil || maxAgeSeconds != nil {
      // A name a rotation could not rename (its suffix would take it past NAME_MAX): refused
      // before a line is written to it, not after its first lines, at every later one.
      var length = 0
      for byte in rendered.utf8.reversed() {
        if byte == UInt8(ascii: "/") { break }
        length += 1
      }
      if length > Self.rotatableNameLimit {
        return
          "rendered path '\(rendered)' has a file name of \(length) bytes, which could never be rotated: a rotation adds "
          + "up to \(Self.rotationSuffixLength) bytes ('.20261204T142310.123Z-0001') and a name is at most "
          + "\(Self.nameLimit), so with 'rotate' a file name is at most \(Self.rotatableNameLimit) bytes; archive root is '\(root)'"
      }
    }
    return nil
  }

  /// Why a rendered relative path is refused, or nil.
  static func problem<Text: StringProtocol>(inRelativePath path: Text) -> String? {
    path.utf8.withContiguousStorageIfAvailable(problem(in:)) ?? problem(in: Array(path.utf8))
  }

  static func problem<Bytes: RandomAccessCollection<UInt8>>(in bytes: Bytes) -> String? {
    var namesHidden = false
    return problem(in: bytes, namesHidden: &namesHidden)
  }

  /// The first of `bytes`' characters that a listing does not show as itself, with its UTF-8
  /// offset and what it is: a line or paragraph separator (`splitlines()` breaks a listing there), a
  /// bidirectional control (U+202E shows `\u{202E}lmth.exe` as `exe.html` in `ls`), or a character
  /// shown as nothing (Unicode's Default_Ignorable_Code_Point: `a` and `a\u{200B}` made two folders
  /// `ls` showed alike), but for those that join, vary or compose the characters around them, which
  /// scripts and emoji use: the zero-width joiner and non-joiner, the variation selectors, a flag's
  /// tags, the combining grapheme joiner, the Hangul jamo fillers.
  static func firstUnseen<Bytes: RandomAccessCollection<UInt8>>(in bytes: Bytes)
    -> (offset: Int, scalar: Unicode.Scalar, kind: String)?
  {
    var offset = 0
    // Tags belong to a flag (U+1F3F4 and its tags); alone they are invisible.
    var flagged = false
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
      defer { offset += scalar.utf8.count }
      let tag = (0xE0020...0xE007F).contains(scalar.value)
      defer { flagged = scalar.value == 0x1F3F4 || (flagged && tag) }
      switch scalar.value {
      case 0x2028, 0x2029: return (offset, scalar, "a line separator")
      case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x061C:
        return (offset, scalar, "a bidirectional control character")
      // The joiners, the variation selectors (Mongolian's too), the combining grapheme joiner and
      // the Hangul jamo fillers, which compose what is written around them.
      case 0x200C, 0x200D, 0xFE00...0xFE0F, 0xE0100...0xE01EF, 0x180B...0x180D, 0x180F, 0x034F, 0x115F,
        0x1160:
        continue
      default:
        if scalar.properties.isDefaultIgnorableCodePoint, !(tag && flagged) {
          return (offset, scalar, "an invisible character")
        }
      }
    }
    return nil
  }

  /// `problem(in:)`, also setting `namesHidden` when a segment names a hidden file or folder (`.x`;
  /// `.` and `..` are problems of their own).
  static func problem<Bytes: RandomAccessCollection<UInt8>>(in bytes: Bytes, namesHidden: inout Bool)
    -> String?
  {
    if bytes.isEmpty { return "is empty" }
    // One pass: a NUL anywhere is the problem named first, then another control character (a
    // newline in a file name splits it in `find`'s output and in line-based shippers), then the
    // first bad segment.
    var segmentLength = 0
    var dots = 0
    var found: String?
    var control: UInt8?
    var nonASCII = false
    var previous: UInt8 = 0
    // Whether the current segment begins with a dot.
    var dotted = false
    for byte in bytes {
      if byte == 0 { return "contains NUL" }
      if byte < 0x20 || byte == 0x7F, control == nil { control = byte }
      // C1 controls, U+0080...U+009F (`0xC2 0x80...0x9F`: NEL, CSI), are control characters too.
      if previous == 0xC2, (0x80...0x9F).contains(byte), control == nil { control = byte }
      if byte >= 0x80 { nonASCII = true }
      previous = byte
      if byte == UInt8(ascii: "/") {
        if found == nil { found = segmentProblem(length: segmentLength, dots: dots) }
        segmentLength = 0
        dots = 0
        dotted = false
      } else {
        if segmentLength == 0 {
          dotted = byte == UInt8(ascii: ".")
        } else if dotted, segmentLength >= 2 || byte != UInt8(ascii: ".") {
          // Past `.` and `..`: a name that begins with a dot.
          namesHidden = true
        }
        segmentLength += 1
        if byte == UInt8(ascii: ".") { dots += 1 }
      }
    }
    if let control { return "contains a control character (\(Unicode.Scalar(control).codePointName))" }
    if nonASCII, let (_, scalar, kind) = Self.firstUnseen(in: bytes) {
      return "contains \(kind) (\(scalar.codePointName))"
    }
    if bytes.first == UInt8(ascii: "/") { return "is absolute" }
    return found ?? segmentProblem(length: segmentLength, dots: dots)
  }

  /// Why this process may not write where the archive writes, as things are now, or nil: the file of
  /// a path without templates, or the folder the first missing part would be made in (a root that
  /// does not exist yet, below a folder it may not write). A templated path's root that exists is
  /// judged only when it holds nothing yet: folders made in it beforehand may be writable. (The
  /// SQLite action says the same of its database; root writes anyway.) With whether it is said of
  /// `path` (its file or folder) rather than of the root.
  static func permissionProblem(root: String, below: String?) -> (String, ofPath: Bool)? {
    func denied(_ path: String, _ mode: Int32) -> String? {
      access(path, mode) == 0 ? nil : "'\(path)' is not writable (\(String(cString: strerror(errno))))"
    }
    let file = below.map { root == "." ? $0 : (root == "/" ? "" : root) + "/" + $0 }
    if let file, access(file, F_OK) == 0 { return denied(file, W_OK).map { ("'path': \($0)", true) } }
    let folder = FileSystem.nearestExisting(file.map { FileSystem.folder(of: $0) } ?? root)
    guard let problem = denied(folder, W_OK | X_OK) else { return nil }
    if let file {
      let made = FileSystem.folder(of: file)
      let said = folder == made ? "its folder \(problem)" : "its folder '\(made)' cannot be made: \(problem)"
      return ("'path': " + said, true)
    }
    guard folder == root else { return ("archive root '\(root)' cannot be made: \(problem)", false) }
    // Folders made in it beforehand may take the files.
    let entries = try? FileManager.default.contentsOfDirectory(atPath: root)
    return entries?.isEmpty == true ? ("archive root \(problem) and holds nothing yet", false) : nil
  }

  static func segmentProblem(length: Int, dots: Int) -> String? {
    if length == 0 { return "has an empty segment" }
    if length == 2 && dots == 2 { return "has a '..' segment" }
    if length == 1 && dots == 1 { return "has a '.' segment" }
    return nil
  }

  /// The descriptor to append `count` bytes to `path`, rotating it or closing the least recently
  /// used file (the open-files limit) first; the files it closed go to `closed` with their fsync's outcome.
  func descriptor(
    for path: String, adding count: Int, now: Int, files: inout [String: OpenFile],
    order: inout UseOrder, closed: inout [ClosedFile],
    operations: FileOperations = .system
  ) throws(ActionError) -> Int32 {
    func close(_ path: String, _ descriptor: Int32) {
      let syncError = sync != .never && operations.sync(descriptor) != 0 ? errno : nil
      Glibc.close(descriptor)
      budget.closed()
      closed.append(ClosedFile(path: path, descriptor: descriptor, syncError: syncError))
    }
    if var file = files[path] {
      if !needsRotation(file, adding: count, now: now) { return file.descriptor }
      close(path, file.descriptor)
      files[path] = nil
      try rotate(path, now: now, operations: operations)
      file = try open(path, now: now, operations: operations)
      files[path] = file
      return file.descriptor
    }
    if mustClose(files), let victim = order.leastRecentlyUsed(in: files, besides: path) {
      close(victim, files[victim]!.descriptor)
      if maxAgeSeconds != nil { keepAge(of: victim, files[victim]!) }
      files[victim] = nil
    } else if budget.isSpent {
      // Nothing of its own to close: another action's file goes (120 rules with a file each at a
      // limit of 100 opened 88, and the rest, error actions too, failed with EMFILE).
      closeAnotherActionsFile()
    }
    var file = try open(path, now: now, operations: operations)
    if file.size == 0 {
      // Empty (new, or emptied by another): its age is its lines', from the first.
      file.openedAtMs = now
    } else if let kept = takeAge(of: path), kept.identity == file.identity {
      // Closed for the open-files limit or idleness only, and still the file at its path (not
      // rotated by another writer meanwhile): its age goes on (reset, a file written to more
      // often than the limit allowed never reached `maxAgeSeconds`). The kept age, not the birth
      // time: a file emptied by logrotate's `copytruncate` began its age again (the older birth
      // time rotated its new lines seconds early).
      file.openedAtMs = kept.openedAtMs
    }
    if needsRotation(file, adding: count, now: now) {
      // Too big for the line, or old (a file left from before a restart): nothing of this batch
      // was written to it yet.
      Glibc.close(file.descriptor)
      budget.closed()
      try rotate(path, now: now, operations: operations)
      file = try open(path, now: now, operations: operations)
    }
    files[path] = file
    if let sweeper, !isWatched.exchange(true, ordering: .relaxed) { sweeper.watch(self) }
    return file.descriptor
  }

  /// Closes the least recently written file of another archive action of the same budget that is
  /// between rounds (its round is taken for the while: none of its batches, fsyncs or sweeps runs),
  /// to make room when the budget is spent and this action has no other file of its own to close.
  /// Called under ``writing``, so no two actions do this at once. False when none could be closed.
  @discardableResult
  func closeAnotherActionsFile() -> Bool {
    guard let sweeper else { return false }
    // The least recently written file of them all first (its action's oldest; looked at under
    // each one's lock, without its round: a batch of its own may add to it meanwhile).
    let others = sweeper.state.withLock { Array($0.actions.values) }
      .filter { $0 !== self && $0.budget === budget }
      .compactMap { other in
        other.files.withLock { $0.values.map(\.lastWriteMs).min() }.map { (other, $0) }
      }
      .sorted { $0.1 < $1.1 }
      .map(\.0)
    for other in others {
      guard other.tryEnterRound() else { continue }
      defer { other.leaveRound() }
      if other.closeLeastRecentlyWritten() { return true }
    }
    return false
  }

  /// Closes this action's least recently written file, its age kept (its lines were synced with
  /// their batch; the fsync here only closes it cleanly): another action makes room.
  func closeLeastRecentlyWritten() -> Bool {
    files.withLock { files in
      guard !isShutDown.load(ordering: .relaxed),
        let (path, file) = files.min(by: { $0.value.lastWriteMs < $1.value.lastWriteMs })
      else { return false }
      // A failure here is a write-back failure since its batch's fsync, which succeeded: said as a
      // sweep's closing says one.
      if sync != .never, operations.withLock({ $0 }).sync(file.descriptor) != 0 {
        let problem = FileSystem.error(errno, "fsync \(path) when closing it").message
        Self.logger.warning("file action '\(pathText)': \(problem)")
      }
      Glibc.close(file.descriptor)
      budget.closed()
      files[path] = nil
      if maxAgeSeconds != nil { keepAge(of: path, file) }
      return true
    }
  }

  /// Closes the files no line reached for `closeIdleSeconds` and rotates those `maxAgeSeconds` old,
  /// open or closed with their age kept, as the clock reads now. Returns false once the action has
  /// neither a file open nor an age kept: the sweeper then stops watching it (until it opens one).
  @discardableResult
  public func sweep() async -> Bool {
    await enterRound()
    defer { leaveRound() }
    let now = clock.nowMs()
    let operations = self.operations.withLock { $0 }
    var problems: [String] = []
    let watching = Self.writing.withLock { _ in
      files.withLock { files -> Bool in
        // Stopped: its files were closed and handed to the sweeper.
        if isShutDown.load(ordering: .relaxed) {
          isWatched.store(false, ordering: .relaxed)
          sweeper?.unwatch(self)
          return false
        }
        for (path, var file) in files {
          // Its size when it is still the file at its path; nil when it was moved away (another
          // rule's rotation, logrotate) or removed: closed now, not rotated, its space freed.
          let size = Self.currentState(of: file.descriptor, at: path)
          if let size { file.size = size }
          if size == 0, maxAgeSeconds != nil {
            // Emptied (logrotate's copytruncate took its lines): not rotated empty, and its age
            // begins again.
            file.openedAtMs = now
          }
          files[path] = file
          let old = needsRotation(file, adding: 0, now: now)
          guard size == nil || old || now - file.lastWriteMs >= closeIdleSeconds * 1000 else { continue }
          // Its lines were synced with their batch (fsync "batch" or "always"): this one only
          // reports a write-back failure since.
          if sync != .never, operations.sync(file.descriptor) != 0 {
            problems.append(FileSystem.error(errno, "fsync \(path) when closing it").message)
          }
          Glibc.close(file.descriptor)
          budget.closed()
          files[path] = nil
          guard size != nil, maxAgeSeconds != nil else { continue }
          if old {
            do throws(ActionError) {
              try rotate(path, now: now, operations: operations)
            } catch {
              // Its next line tries again, and fails to the error path if this persists.
              problems.append(error.message)
              keepAge(of: path, file)
            }
          } else {
            keepAge(of: path, file)
          }
        }
        if let maxAgeSeconds {
          // Files closed for idleness or the open-files limit whose age has come.
          let due = keptAges.withLock { ages in
            let due = ages.filter { now - $0.value.openedAtMs >= maxAgeSeconds * 1000 }
            for path in due.keys { ages[path] = nil }
            return due
          }
          for (path, kept) in due where files[path] == nil {
            var info = stat()
            guard stat(path, &info) == 0, FileIdentity(info) == kept.identity, info.st_size > 0 else {
              continue
            }
            do throws(ActionError) {
              try rotate(path, now: now, operations: operations)
            } catch {
              problems.append(error.message)
            }
          }
        }
        let watching = !files.isEmpty || !keptAges.withLock { $0.isEmpty }
        if !watching {
          isWatched.store(false, ordering: .relaxed)
          sweeper?.unwatch(self)
        }
        return watching
      }
    }
    for problem in problems {
      let turn = Self.sweepLogBudget.withLock { $0.turn(now: clock.monotonicNanoseconds()) }
      guard turn.logs else { continue }
      let unlogged = turn.unlogged > 0 ? " (\(turn.unlogged) more not logged)" : ""
      Self.logger.warning("file action '\(pathText)': \(problem)\(unlogged)")
    }
    return watching
  }

  /// The archive's log.
  static let logger = Logger(label: "iotrules.file")
  /// At most ten lines a minute about closing and rotating on time, all archive actions together.
  static let sweepLogBudget = Mutex(LogBudget(startNanoseconds: 0))

  /// When files closed for the open-files limit were opened, by path: their age goes on when they
  /// are opened again (only with `maxAgeSeconds`; at most ``keptAgesLimit``, the oldest dropped).
  let keptAges = Mutex<[String: (openedAtMs: Int, identity: FileIdentity)]>([:])
  /// The most ages ``keptAges`` holds.
  static let keptAgesLimit = 65_536

  func keepAge(of path: String, _ file: OpenFile) {
    keptAges.withLock { ages in
      if ages.count >= Self.keptAgesLimit {
        // Paths not written for long (yesterday's files): the older half goes.
        let cut = ages.values.map(\.openedAtMs).sorted()[ages.count / 2]
        ages = ages.filter { $0.value.openedAtMs >= cut }
      }
      ages[path] = (file.openedAtMs, file.identity)
    }
  }

  /// The age kept for `path` (closed for the open-files limit or idleness), or that of the file an
  /// earlier version of the rule left to the sweeper; nil without `maxAgeSeconds`.
  func takeAge(of path: String) -> (openedAtMs: Int, identity: FileIdentity)? {
    // Left by an earlier version of the rule (a reload): this one takes it over, also when it
    // rotates nothing on time (the sweeper rotated the file the version without `rotate` wrote).
    let orphan = sweeper?.takeOrphan(path)
    guard maxAgeSeconds != nil else { return nil }
    if let kept = keptAges.withLock({ $0.removeValue(forKey: path) }) { return kept }
    return orphan.map { ($0.openedAtMs, $0.identity) }
  }

  /// The size of the file open as `descriptor` when it is still the file at `path`; nil when the
  /// path names another file now, or none.
  static func currentState(of descriptor: Int32, at path: String) -> Int? {
    var open = stat()
    var named = stat()
    guard fstat(descriptor, &open) == 0, stat(path, &named) == 0,
      open.st_ino == named.st_ino && open.st_dev == named.st_dev
    else { return nil }
    return Int(open.st_size)
  }

  func needsRotation(_ file: OpenFile, adding count: Int, now: Int) -> Bool {
    let tooBig = maxBytes.map { file.size > 0 && file.size + count > $0 } ?? false
    // An empty file is not rotated for its age: the age of its lines begins with the first.
    let tooOld = maxAgeSeconds.map { file.size + count > 0 && now - file.openedAtMs >= $0 * 1000 } ?? false
    return tooBig || tooOld
  }

  func open(_ path: String, now: Int, operations: FileOperations = .system) throws(ActionError) -> OpenFile {
    try refuseLinksBelowRoot(path)
    // Never the daemon's own files (a message on `devices/rules/evil` rendering `rules/evil.json`
    // made a rule the daemon loaded), before any folder is made for it.
    if let what = protectedPaths.protection(of: path, rendered: !relative.isConstant) {
      throw ActionError(
        .permanent,
        "rendered path '\(path)' is \(what): the archive never writes the daemon's own files")
    }
    let folders = try makeParentFolders(of: path)
    var before = stat()
    let existed = stat(path, &before) == 0
    // Lines go to regular files only: a value naming a named pipe below the root held the open
    // (and every archive action behind the lock) until a reader came; a device would swallow
    // them. Not opened at all when the name is such a file; O_NONBLOCK in case it becomes one.
    if existed, before.st_mode & S_IFMT != S_IFREG { throw Self.notRegular(path, before.st_mode) }
    if let what = Self.sqliteFile(path) {
      throw ActionError(
        .permanent, "rendered path '\(path)' is \(what): the archive appends lines to files of its own only")
    }
    // A symbolic link as the file itself is refused too (ELOOP, permanent), and, below the root,
    // one anywhere on the way: the folders looked at above may have been swapped for links since
    // (a process writing in the root, racing the archive, had lines written outside it).
    let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK
    let fd =
      path.startsExactly(with: rootPrefix)
      ? iotrules_open_beneath(
        root, String(decoding: path.utf8.dropFirst(rootPrefix.utf8.count), as: UTF8.self), flags, 0o644)
      : Glibc.open(path, flags, 0o644)
    if fd < 0 {
      // A named pipe without a reader, opened without blocking.
      if errno == ENXIO { throw Self.notRegular(path, S_IFIFO) }
      if errno == EXDEV {
        throw ActionError(
          .permanent, "cannot open \(path): it leads outside the archive root '\(root)' (through a link)")
      }
      // A link put on the way since the folders were checked (said as the kernel's "Too many
      // levels of symbolic links").
      if errno == ELOOP, path.startsExactly(with: rootPrefix) {
        throw ActionError(
          .permanent,
          "cannot open \(path): a symbolic link is on its way below the archive root '\(root)' (a folder, or the file itself), and the archive follows none"
        )
      }
      throw FileSystem.error(errno, "cannot open \(path)")
    }
    var opened = stat()
    guard fstat(fd, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG else {
      Glibc.close(fd)
      throw Self.notRegular(path, opened.st_mode)
    }
    if opened.st_nlink > 1,
      let what = protectedPaths.protection(
        ofLinked: UInt64(opened.st_dev), UInt64(opened.st_ino), rendered: !relative.isConstant)
    {
      Glibc.close(fd)
      throw ActionError(
        .permanent,
        "rendered path '\(path)' is a hard link to \(what): the archive never writes the daemon's own files")
    }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    if existed {
      do throws(ActionError) {
        try FileSystem.endCutLine(fd, path: path, operations: operations)
      } catch {
        Glibc.close(fd)
        throw error
      }
    }
    if sync != .never {
      // The new file's entry (and new folders') reach the disk before any of its lines is
      // acknowledged: its lines' fsync alone does not make a new name durable.
      do throws(ActionError) {
        try FileSystem.syncEntries(of: path, created: folders, existed: existed, sync: operations.sync)
      } catch {
        Glibc.close(fd)
        throw error
      }
    }
    if !existed, sweeper != nil {
      // Marked as this archive's own: at a later start, only such files are looked for to be
      // rotated on time (never an operator's file that happens to match the path).
      let mark = Array(self.mark.utf8)
      _ = mark.withUnsafeBufferPointer { iotrules_mark(fd, $0.baseAddress, UInt($0.count)) }
    }
    var info = stat()
    fstat(fd, &info)
    budget.opened()
    // The file's age runs from its creation where the file system tells it (not from a time
    // ahead of the clock's: a test's clock, or a clock set back).
    var born: Int64 = 0
    let began = iotrules_birth_time_ms(fd, &born) == 0 ? min(now, Int(born)) : now
    return OpenFile(
      descriptor: fd, size: Int(info.st_size), openedAtMs: began, lastWriteMs: now,
      identity: FileIdentity(info))
  }

  /// SQLite's header, the first 16 bytes of every database file.
  static let sqliteHeader = Array("SQLite format 3\0".utf8)

  /// Whether `path` names a regular file that begins with SQLite's header: a database. One this
  /// process's SQLite connections hold is one without being read: closing any descriptor of a file
  /// drops every POSIX lock the process holds on it, the connection's too (a message naming the
  /// rules' database did, and a reader's close then deleted the -wal the daemon was writing).
  static func isSQLiteDatabase(_ path: String) -> Bool {
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size >= sqliteHeader.count else {
      return false
    }
    if SQLiteDatabase.holdsOpen(path) { return true }
    let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    var header = [UInt8](repeating: 0, count: sqliteHeader.count)
    return pread(fd, &header, header.count, 0) == header.count && header == sqliteHeader
  }

  /// What SQLite file `path` is, or nil: a database (its header says so, whatever its name), or
  /// the `-wal`, `-shm` or `-journal` file SQLite keeps beside one (named so, next to a database,
  /// whether or not it exists now). Lines appended to either corrupt the database.
  static func sqliteFile(_ path: String) -> String? {
    for suffix in ["-wal", "-shm", "-journal"] where path.utf8.reversed().starts(with: suffix.utf8.reversed())
    {
      let database = String(decoding: path.utf8.dropLast(suffix.utf8.count), as: UTF8.self)
      if isSQLiteDatabase(database) { return "the '\(suffix)' file of the SQLite database '\(database)'" }
    }
    return isSQLiteDatabase(path) ? "a SQLite database" : nil
  }

  /// The permanent failure of a path that names something other than a regular file.
  static func notRegular(_ path: String, _ mode: mode_t) -> ActionError {
    let kind = RegularFile.kind(ofMode: mode) ?? "not a regular file"
    return ActionError(
      .permanent, "cannot open \(path): it is \(kind); lines are appended to regular files only")
  }

  /// Ends the line a killed process left unfinished at the end of the file at `path`
  /// (``FileSystem/endCutLine(_:path:operations:)``, which warns), when it is still the file of
  /// `identity`; synced unless `sync` is `never`. A failure is logged: the file is rotated all the same.
  static func endCutLine(at path: String, identity: FileIdentity, sync: SyncMode, beneath rootPrefix: String)
  {
    let flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
    // Beneath the root through no link, as the action opens it.
    let fd =
      rootPrefix != "/" && path.startsExactly(with: rootPrefix)
      ? iotrules_open_beneath(
        String(rootPrefix.dropLast()),
        String(decoding: path.utf8.dropFirst(rootPrefix.utf8.count), as: UTF8.self),
        flags, 0)
      : Glibc.open(path, flags)
    guard fd >= 0 else { return }
    defer { Glibc.close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, FileIdentity(info) == identity else {
      return
    }
    do throws(ActionError) {
      try FileSystem.endCutLine(fd, path: path)
      if sync != .never, fsync(fd) != 0 { throw FileSystem.error(errno, "fsync \(path)") }
    } catch {
      logger.warning("file archive: \(error.message)")
    }
  }

  /// Whether a path segment names a hidden file: its first byte a `.`, and it is neither `.` nor `..`.
  static func isHiddenName(_ segment: Substring) -> Bool {
    segment.utf8.first == UInt8(ascii: ".") && !segment.isExactlyDot && !segment.isExactlyDotDot
  }

  /// Refuses a path whose folders below the archive root include a symbolic link: the rendered
  /// path is checked as text, and a link inside the root (`archive/dev7 -> ../elsewhere`) would
  /// take the lines out of it. (The root itself may be a link.) Checked when a file is opened.
  func refuseLinksBelowRoot(_ path: String) throws(ActionError) {
    guard path.startsExactly(with: rootPrefix) else { return }
    var prefix = rootPrefix == "/" ? "" : String(rootPrefix.dropLast())
    // Split at the `/` bytes: `link/\u{301}x` is the folder `link` then `\u{301}x` (one Character
    // `/\u{301}` hid the separator, and the link was followed).
    let folders = String(decoding: path.utf8.dropFirst(rootPrefix.utf8.count), as: UTF8.self)
      .splitExactly("/").filter { !$0.isEmpty }.dropLast()
    for folder in folders {
      prefix += "/" + folder
      var info = stat()
      guard lstat(prefix, &info) == 0 else { return }  // not there yet: made as a folder
      if info.st_mode & S_IFMT == S_IFLNK {
        throw ActionError(
          .permanent,
          "'\(prefix)' is a symbolic link: lines are written only below the archive root '\(root)', not through links"
        )
      }
    }
  }

  /// Makes the folders above `path` that are missing; returns those it made, outermost first.
  /// Below the root each is made in its parent opened beneath the root through no link: mkdir(2)
  /// by path followed a folder swapped for a link and made folders outside the root.
  func makeParentFolders(of path: String) throws(ActionError) -> [String] {
    var created: [String] = []
    try makeFolders(FileSystem.folder(of: path), created: &created)
    return created
  }

  private func makeFolders(_ folder: String, created: inout [String]) throws(ActionError) {
    guard rootPrefix != "/", folder.startsExactly(with: rootPrefix) else {
      // The root itself, or above it: made by path.
      if folder != "." && folder != "/" { try FileSystem.makeFolders(folder, created: &created) }
      return
    }
    var info = stat()
    if stat(folder, &info) == 0 {
      if info.st_mode & S_IFMT == S_IFDIR { return }
      throw FileSystem.error(ENOTDIR, "cannot create folder \(folder)")
    }
    try makeFolders(FileSystem.folder(of: folder), created: &created)
    let below = String(decoding: folder.utf8.dropFirst(rootPrefix.utf8.count), as: UTF8.self)
    if iotrules_mkdir_beneath(root, below, 0o755) != 0 {
      if errno != EEXIST { throw FileSystem.error(errno, "cannot create folder \(folder)") }
    } else {
      created.append(folder)
    }
  }

  /// Renames the file at `path` to its rotated name (``rotatedName(of:at:attempt:)``): the time of
  /// `now`, then `-0001` and up while that name is taken.
  func rotate(_ path: String, now batchTime: Int, operations: FileOperations = .system) throws(ActionError) {
    // Named for the time of this rotation, read now: the batch's time (`batchTime`, which decided
    // it) was seconds old by a batch's later rotations (23 of them named for one millisecond over
    // 0.63 s), and another daemon's rotations of the same file sorted between them.
    let now = max(clock.nowMs(), batchTime)
    // Never onto a rotated file that exists: another process archiving to the same path may have
    // taken the name since (a plain rename replaced that file, and its lines were lost). A file
    // system that cannot refuse to replace gets a plain rename, after a look for the name.
    // Rotations within one millisecond (a small `maxBytes`) go on from the last name taken: from
    // the first each time, a batch of 4,096 of them tried millions of taken names.
    var attempt = lastRotations.withLock { last in last[path].flatMap { $0.ms == now ? $0.next : nil } ?? 0 }
    defer {
      lastRotations.withLock { last in
        // Only the current millisecond's matter: older ones are dropped when many gather.
        if last.count >= 1_024 { last = last.filter { $0.value.ms == now } }
        last[path] = (now, attempt + 1)
      }
    }
    try Self.rotate(
      path, now: now, attempt: &attempt, sync: sync, operations: operations, beneath: rootPrefix)
  }

  /// Renames the file at `path` to its rotated name for `now`, trying `attempt` and up while a name
  /// is taken (`attempt` is left at the one used), then syncs its folder unless `sync` is `never`.
  /// Below `rootPrefix` (an action's root, with its `/`), the rename is made in the file's folder
  /// opened beneath the root through no link (a folder swapped for a link had a file outside the
  /// root renamed, and rotated files moved out).
  static func rotate(
    _ path: String, now: Int, attempt: inout Int, sync: SyncMode, operations: FileOperations,
    beneath rootPrefix: String? = nil
  ) throws(ActionError) {
    func rename(_ path: String, _ target: String, _ flags: UInt32) -> Int32 {
      guard let rootPrefix, rootPrefix != "/", path.startsExactly(with: rootPrefix) else {
        return flags == 0 ? Glibc.rename(path, target) : iotrules_rename_noreplace(path, target)
      }
      func below(_ text: String) -> String {
        String(decoding: text.utf8.dropFirst(rootPrefix.utf8.count), as: UTF8.self)
      }
      return iotrules_rename_beneath(String(rootPrefix.dropLast()), below(path), below(target), flags)
    }
    while true {
      let target = Self.rotatedName(of: path, at: now, attempt: attempt)
      if rename(path, target, 1) == 0 { break }  // RENAME_NOREPLACE
      let code = errno
      if code == ENOENT { return }
      if code == EEXIST && attempt < 9_999 {
        attempt += 1
        continue
      }
      guard code == EINVAL || code == ENOSYS else { throw FileSystem.error(code, "cannot rotate \(path)") }
      var info = stat()
      if stat(target, &info) == 0 && attempt < 9_999 {
        attempt += 1
        continue
      }
      if rename(path, target, 0) == 0 { break }
      if errno == ENOENT { return }
      throw FileSystem.error(errno, "cannot rotate \(path)")
    }
    // The rotated name, like the new file opened next, is durable once the folder is synced.
    if sync != .never { try FileSystem.syncFolders(holding: [path], sync: operations.sync) }
  }

  /// Per path this action rotated, the millisecond of its last rotation and the suffix to try first
  /// for another rotation of it in that millisecond.
  let lastRotations = Mutex<[String: (ms: Int, next: Int)]>([:])

  /// `path.20261204T142310.123Z` for a rotation at that UTC time (epoch milliseconds `now`), with
  /// `-0001` and up after it for the `attempt`-th name when the first is taken: names sort as
  /// text in the order of rotation (as the clock tells it), and one rotated away (uploaded, removed)
  /// is not used again, as a number counting up from the highest left was.
  static func rotatedName(of path: String, at now: Int, attempt: Int) -> String {
    let whole = now >= 0 ? now / 1000 : (now - 999) / 1000
    var seconds = time_t(whole)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func digits(_ value: Int32, _ count: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, count - text.count)) + text
    }
    var name =
      "\(path).\(digits(parts.tm_year + 1900, 4))\(digits(parts.tm_mon + 1, 2))\(digits(parts.tm_mday, 2))"
      + "T\(digits(parts.tm_hour, 2))\(digits(parts.tm_min, 2))\(digits(parts.tm_sec, 2))"
      + ".\(digits(Int32(now - whole * 1000), 3))Z"
    if attempt > 0 { name += "-" + digits(Int32(attempt), 4) }
    return name
  }
}

/// Closes idle archive files and rotates aged ones on time, once a second, for every file action
/// with a file open or an age kept (``FileArchiveAction/sweep()``): without it a file reached
/// `maxAgeSeconds` only when its next line came (a quiet device's last hour stayed unrotated), and
/// stayed open until then, its space held after a cleanup job removed it. One task for the process,
/// running only while some action is watched.
public final class ArchiveSweeper: Sendable {
  /// The process's sweeper.
  public static let shared = ArchiveSweeper()

  /// A file a stopped archive action (a rule a reload replaced or removed) left to be rotated when
  /// its age comes.
  struct Orphan: Sendable {
    /// The root of the archive that wrote it, with its `/`: it is rotated beneath it.
    var rootPrefix: String
    var openedAtMs: Int
    var identity: FileIdentity
    var maxAgeSeconds: Int
    var sync: FileArchiveAction.SyncMode
    var clock: any EngineClock
  }

  struct State {
    /// The actions watched.
    var actions: [ObjectIdentifier: FileArchiveAction] = [:]
    /// The files left by stopped actions, by path (at most ``orphanLimit``).
    var orphans: [String: Orphan] = [:]
    /// Whether the task runs.
    var running = false
  }

  /// The most orphans kept: past it, the ones that came first are let go.
  static let orphanLimit = 65_536

  let state = Mutex(State())

  /// Watches `action` (called under its `files` lock, once it opens a file).
  func watch(_ action: FileArchiveAction) {
    let start = state.withLock { state -> Bool in
      state.actions[ObjectIdentifier(action)] = action
      defer { state.running = true }
      return !state.running
    }
    if start { Task.detached { await self.run() } }
  }

  /// Stops watching `action` (called under its `files` lock, when it has nothing to sweep).
  func unwatch(_ action: FileArchiveAction) {
    state.withLock { _ = $0.actions.removeValue(forKey: ObjectIdentifier(action)) }
  }

  /// Takes over the files a stopping action leaves to rotate on time.
  func adopt(_ files: [String: Orphan]) {
    let start = state.withLock { state -> Bool in
      for (path, orphan) in files where state.orphans.count < Self.orphanLimit || state.orphans[path] != nil {
        state.orphans[path] = orphan
      }
      defer { state.running = true }
      return !state.running
    }
    if start { Task.detached { await self.run() } }
  }

  /// The file left at `path`, for the rule version that opens it next (it goes on with its age).
  func takeOrphan(_ path: String) -> Orphan? {
    state.withLock { $0.orphans.removeValue(forKey: path) }
  }

  /// A non-empty regular file found below an archive root at start.
  struct ListedFile: Sendable {
    var relative: String
    var identity: FileIdentity
  }

  /// The files below each archive root, listed when the first action rotating by age under it
  /// starts, and kept a minute for the others (10,000 rules under one root walk it once): a rule a
  /// later reload adds walks it again.
  let listings = Mutex<[String: (atNanoseconds: UInt64, files: [String: [ListedFile]])]>([:])
  /// How long a listing is kept.
  static let listingLifetimeNanoseconds: UInt64 = 60_000_000_000
  /// The most entries walked below one root.
  static let listingLimit = 100_000

  /// Where roots are listed and their files matched, one action at a time: 10,000 actions starting
  /// at once list their root once, on one thread.
  let scanQueue = DispatchQueue(label: "iotrules.archive-scan")

  /// Finds the files below `action`'s root that its path made in an earlier run and that it does
  /// not hold, and rotates each when its age (from its birth time) comes. On the scan queue.
  func findLeftFilesNow(of action: FileArchiveAction) {
    guard let maxAgeSeconds = action.maxAgeSeconds else { return }
    // Made by an archive of this root and path (its mark), not an operator's file, a source or a
    // rule file that happens to match, nor another rule's; and still a name the path renders.
    let listed = listing(of: action.root)[action.mark] ?? []
    let now = action.clock.nowMs()
    var found: [String: Orphan] = [:]
    let pieces = action.pathPieces
    for file in listed where action.couldName(file.relative, pieces: pieces) {
      let path = action.rootPrefix + file.relative
      var born: Int64 = 0
      guard iotrules_birth_time_ms_at(path, &born) == 0 else { continue }
      found[path] = Orphan(
        rootPrefix: action.rootPrefix, openedAtMs: min(now, Int(born)), identity: file.identity,
        maxAgeSeconds: maxAgeSeconds,
        sync: action.sync,
        clock: action.clock)
    }
    let held = action.files.withLock { Set($0.keys) }.union(action.keptAges.withLock { Set($0.keys) })
    let known = state.withLock { Set($0.orphans.keys) }
    found = found.filter { !held.contains($0.key) && !known.contains($0.key) }
    if !found.isEmpty { adopt(found) }
  }

  /// The non-empty regular files below `root` that an archive marked and that are not rotated
  /// ones, by mark (symbolic links not followed), at most ``listingLimit`` entries walked. On the
  /// scan queue.
  func listing(of root: String) -> [String: [ListedFile]] {
    let now = DispatchTime.now().uptimeNanoseconds
    if let listed = listings.withLock({ listings in
      listings = listings.filter { now &- $0.value.atNanoseconds < Self.listingLifetimeNanoseconds }
      return listings[root]?.files
    }) {
      return listed
    }
    var listed: [String: [ListedFile]] = [:]
    var walked = 0
    let prefix = root == "/" ? "/" : root + "/"
    var folders = [""]
    while let folder = folders.popLast(), walked < Self.listingLimit {
      guard let names = try? FileManager.default.contentsOfDirectory(atPath: prefix + folder) else {
        continue
      }
      for name in names where walked < Self.listingLimit {
        walked += 1
        let relative = folder.isEmpty ? name : folder + "/" + name
        var info = stat()
        guard lstat(prefix + relative, &info) == 0 else { continue }
        if info.st_mode & S_IFMT == S_IFDIR {
          folders.append(relative)
        } else if info.st_mode & S_IFMT == S_IFREG, info.st_size > 0, !FileArchiveAction.isRotatedName(name),
          let mark = FileArchiveAction.mark(of: prefix + relative)
        {
          listed[mark, default: []].append(
            ListedFile(relative: relative, identity: FileIdentity(info)))
        }
      }
    }
    return listings.withLock { listings in
      if let earlier = listings[root] { return earlier.files }
      listings[root] = (now, listed)
      return listed
    }
  }

  /// Sweeps every watched action and the files left by stopped ones once a second; ends when
  /// there are none.
  func run() async {
    while true {
      try? await Task.sleep(nanoseconds: 1_000_000_000)
      let actions = state.withLock { state -> [FileArchiveAction]? in
        if state.actions.isEmpty && state.orphans.isEmpty {
          state.running = false
          return nil
        }
        return Array(state.actions.values)
      }
      guard let actions else { return }
      for action in actions { await action.sweep() }
      sweepOrphans()
      let now = DispatchTime.now().uptimeNanoseconds
      listings.withLock { listings in
        if !listings.isEmpty {
          listings = listings.filter { now &- $0.value.atNanoseconds < Self.listingLifetimeNanoseconds }
        }
      }
    }
  }

  /// Rotates the files left by stopped actions whose age has come, each still the file at its path
  /// and not empty.
  func sweepOrphans() {
    let due = state.withLock { state -> [(path: String, orphan: Orphan)] in
      let due = state.orphans.filter {
        $0.value.clock.nowMs() - $0.value.openedAtMs >= $0.value.maxAgeSeconds * 1000
      }
      for path in due.keys { state.orphans[path] = nil }
      return due.map { ($0.key, $0.value) }
    }
    for (path, orphan) in due {
      FileArchiveAction.writing.withLock { _ in
        var info = stat()
        guard stat(path, &info) == 0, FileIdentity(info) == orphan.identity,
          info.st_size > 0
        else { return }
        // Found at start, it may end in part of a line a kill -9 cut short, and no line of this run
        // ended it (none came for it: yesterday's file): ended now, with the warning naming the
        // file, before it is rotated and closed for good.
        FileArchiveAction.endCutLine(
          at: path, identity: orphan.identity, sync: orphan.sync, beneath: orphan.rootPrefix)
        var attempt = 0
        do throws(ActionError) {
          try FileArchiveAction.rotate(
            path, now: orphan.clock.nowMs(), attempt: &attempt, sync: orphan.sync, operations: .system,
            beneath: orphan.rootPrefix)
        } catch {
          FileArchiveAction.logger.warning("file archive: \(error.message)")
        }
      }
    }
  }
}
