import Foundation
import GRDB
import GRDBSQLite
import Logging
import RulesEngine
import Synchronization

/// One connection to a SQLite database, shared by every sqlite action that writes to it, whatever
/// their settings: 10,000 rules writing one database hold one connection,
/// not 10,000 (each held the file and its `-wal` open, and 130-200 KB: the daemon ran out of
/// descriptors and was stopped by libdispatch), and a reload's new rule versions take the
/// connection over from the old ones instead of opening a second set. SQLite lets one writer in at a
/// time anyway; through one connection the writers queue instead of waiting on its lock (two
/// connections for one rule with `busyTimeoutMs: 0` and one with the default locked each other out:
/// 3,644 retries a second, no other program there). The connection waits for another program's
/// lock as long as the most patient of its actions asks (`busyTimeoutMs`), and syncs as the most
/// careful asks (`synchronous`).
///
/// Taken with ``acquire(database:asking:logger:)`` and given back with
/// ``release(asked:)``; the last user's release closes it.
final class SQLiteDatabase: Sendable {
  /// What actions must share to share a connection: the database file, as ``file(of:)`` names it
  /// (`iot.db` and `./iot.db` had a connection each, and locked each other out); `database`, the
  /// first action's spelling, is what is opened.
  struct Key: Hashable {
    var database: String
    var file: String

    init(database: String) {
      self.database = database
      file = SQLiteDatabase.file(of: database)
    }

    static func == (lhs: Key, rhs: Key) -> Bool { lhs.file == rhs.file }

    func hash(into hasher: inout Hasher) { hasher.combine(file) }
  }

  /// The file a `database` setting names: its path made absolute and plain (`./iot.db` and
  /// `iot.db` alike); a `file:` URI as written.
  static func file(of database: String) -> String {
    database.hasPrefix("file:") ? database : URL(fileURLWithPath: database).standardizedFileURL.path
  }

  /// The connections in use, with their number of users.
  private static let inUse = Mutex<[Key: (database: SQLiteDatabase, users: Int)]>([:])

  /// The shared connection for `database` (made, not yet opened, for the first), its settings
  /// the most any of its users, this one too, asks.
  static func acquire(database: String, asking settings: Settings, logger: Logger) -> SQLiteDatabase {
    let key = Key(database: database)
    return inUse.withLock { table in
      if let entry = table[key] {
        table[key] = (entry.database, entry.users + 1)
        entry.database.join(settings)
        return entry.database
      }
      let made = SQLiteDatabase(key: key, settings: settings, logger: logger)
      table[key] = (made, 1)
      return made
    }
  }

  /// Gives the connection back (its user asked `settings`, which no longer count); the last
  /// user's release closes it, before another can be taken for the path (a moved database's
  /// `-wal` is dealt with before the path is opened again).
  func release(asked settings: Settings) {
    Self.inUse.withLock { table in
      if let entry = table[key], entry.database === self {
        guard entry.users == 1 else {
          table[key] = (self, entry.users - 1)
          leave(settings)
          return
        }
        table[key] = nil
      }
      close()
    }
  }

  /// Whether a connection of this process has the file at `path` open (its identity compared, so
  /// another spelling of the path counts too).
  static func holdsOpen(_ path: String) -> Bool {
    guard let identity = FileIdentity(path: path) else { return false }
    return inUse.withLock { table in
      table.values.contains { entry in
        let database = entry.database
        guard database.state.withLock({ $0 != nil }) else { return false }
        if database.openedFile.withLock({ $0.map { $0 == identity } ?? false }) { return true }
        // A `file:` URI's file, by the name SQLite opened (its escapes decoded, its query dropped).
        guard let name = database.uriFileName.withLock({ $0 }), let held = FileIdentity(path: name) else {
          return false
        }
        return held == identity
      }
    }
  }

  /// The file a `file:` URI's connection opened, as SQLite names it; nil for a plain path (its
  /// file is ``openedFile``).
  let uriFileName = Mutex<String?>(nil)

  /// The number of users of the connection for `key` (tests).
  static func users(of key: Key) -> Int { inUse.withLock { $0[key]?.users ?? 0 } }

  let key: Key
  /// The database path or URI.
  var database: String { key.database }

  /// The connection's lock wait and sync mode.
  struct Settings: Equatable {
    var busyTimeoutMs: Int
    var fullSync: Bool
    /// `PRAGMA synchronous`'s value for it.
    var synchronous: String { fullSync ? "FULL" : "NORMAL" }
  }
  /// What each user asked, and the settings the open connection was given (nil: not opened yet);
  /// it runs with those that serve every user (``serving(_:)``).
  private let settings: Mutex<(asked: [Settings], applied: Settings?)>

  /// The settings that serve every one of `asked`.
  static func serving(_ asked: [Settings]) -> Settings {
    Settings(
      busyTimeoutMs: asked.map(\.busyTimeoutMs).max() ?? 0, fullSync: asked.contains(where: \.fullSync))
  }

  /// A user asking `asked` joins; an open connection takes the settings that serve it before its
  /// next write.
  private func join(_ asked: Settings) { settings.withLock { $0.asked.append(asked) } }

  /// A user that asked `asked` leaves: the settings go back to what the others ask (a removed
  /// rule's long wait held the others' writes for good).
  private func leave(_ asked: Settings) {
    settings.withLock { settings in
      if let index = settings.asked.firstIndex(of: asked) { settings.asked.remove(at: index) }
    }
  }

  /// The settings the connection runs with (tests).
  var currentSettings: Settings { settings.withLock { Self.serving($0.asked) } }
  /// Where the connection says what no result's outcome carries: rows of a moved database left in
  /// its renamed-aside `-wal`.
  let logger: Logger
  /// The open connection, once a batch opened it.
  let state = Mutex<DatabaseQueue?>(nil)
  /// Opened connections so far: an action's remembered columns hold for one of them.
  private let generation = Atomic<Int>(0)
  /// Held while the connection is checked, retired or opened: no action opens the path while
  /// another deals with the old connection's `-wal`.
  private let opening = Mutex<Void>(())
  /// Set when the database could not be switched to WAL at opening (another connection held it):
  /// each batch tries again first.
  let walPending = Atomic<Bool>(false)
  /// The column lists (per table) whose INSERTs the connection keeps prepared.
  let prepared = SQLiteAction.PreparedLists()

  private init(key: Key, settings: Settings, logger: Logger) {
    self.key = key
    self.settings = Mutex(([settings], nil))
    self.logger = logger
  }

  /// A write waiting for the connection's next transaction.
  struct GroupedWrite: Sendable {
    let queue: DatabaseQueue
    let work: @Sendable (Database) throws -> any Sendable
    let continuation: CheckedContinuation<any Sendable, any Error>
  }

  /// The writes waiting for the next transaction, and whether a task is running them.
  let waitingWrites = Mutex<(writes: [GroupedWrite], draining: Bool)>(([], false))
  /// The transactions of grouped writes so far (tests).
  let groupTransactions = Atomic<Int>(0)

  /// Runs `work` in the connection's next transaction, together with the writes of every other
  /// action that arrived meanwhile, each in a savepoint of its own (group commit): 500 rules
  /// writing a few rows each to one database made a transaction, a commit and its `-wal` pages,
  /// for every two or three rows. A write that fails for itself (a constraint, a schema change)
  /// is rolled back alone and the others commit; one that takes the transaction down (a full disk,
  /// an I/O error, a lock) fails them all, none of them committed.
  func groupWrite<T: Sendable>(
    through queue: DatabaseQueue, _ work: @escaping @Sendable (Database) throws -> T
  )
    async throws -> T
  {
    // No transaction running: this write runs at once, on the caller's task (a task more for each
    // transaction cost a rule writing alone 5%); what arrives meanwhile goes to a drain.
    let leads = waitingWrites.withLock { waiting -> Bool in
      guard !waiting.draining else { return false }
      waiting.draining = true
      return true
    }
    if leads {
      let erased: @Sendable (Database) throws -> any Sendable = { try work($0) }
      let outcome = await runTogether([(queue, erased)])[0]
      let more = waitingWrites.withLock { waiting -> Bool in
        if waiting.writes.isEmpty { waiting.draining = false }
        return waiting.draining
      }
      if more { Task { await self.drainWrites() } }
      return try outcome.get() as! T
    }
    let value = try await withCheckedThrowingContinuation {
      (continuation: CheckedContinuation<any Sendable, any Error>) in
      let leadsNow = waitingWrites.withLock { waiting -> Bool in
        waiting.writes.append(GroupedWrite(queue: queue, work: { try work($0) }, continuation: continuation))
        defer { waiting.draining = true }
        return !waiting.draining
      }
      if leadsNow { Task { await self.drainWrites() } }
    }
    return value as! T
  }

  /// Runs the waiting writes, a transaction for all those waiting at a time, until none waits.
  private func drainWrites() async {
    while true {
      let writes = waitingWrites.withLock { waiting -> [GroupedWrite] in
        if waiting.writes.isEmpty { waiting.draining = false }
        defer { waiting.writes = [] }
        return waiting.writes
      }
      if writes.isEmpty { return }
      // Usually one queue; writes for a connection opened again after the file was replaced go
      // in a transaction of their own.
      var start = 0
      while start < writes.count {
        var end = start + 1
        while end < writes.count, writes[end].queue === writes[start].queue { end += 1 }
        let outcomes = await runTogether(writes[start..<end].map { ($0.queue, $0.work) })
        for (write, outcome) in zip(writes[start..<end], outcomes) {
          write.continuation.resume(with: outcome)
        }
        start = end
      }
    }
  }

  /// Runs `writes` (all on one queue) in one transaction; returns each one's outcome.
  private func runTogether(
    _ writes: [(queue: DatabaseQueue, work: @Sendable (Database) throws -> any Sendable)]
  ) async -> [Result<any Sendable, any Error>] {
    let works = writes.map(\.work)
    groupTransactions.add(1, ordering: .relaxed)
    do {
      return try await writes[0].queue.write { db -> [Result<any Sendable, any Error>] in
        // Alone: no savepoint; its failure rolls the transaction back, as before grouping.
        if works.count == 1 { return [.success(try works[0](db))] }
        var outcomes: [Result<any Sendable, any Error>] = []
        outcomes.reserveCapacity(works.count)
        for work in works {
          var value: (any Sendable)?
          do {
            try db.inSavepoint {
              value = try work(db)
              return .commit
            }
            outcomes.append(.success(value!))
          } catch {
            // SQLite rolled the whole transaction back (an `ON CONFLICT ROLLBACK` constraint, a
            // trigger's RAISE(ROLLBACK), a full disk): none of the group is written.
            guard db.isInsideTransaction else { throw RolledBack(culprit: outcomes.count, error: error) }
            guard Self.failsAlone(error) else { throw error }
            outcomes.append(.failure(error))
          }
        }
        return outcomes
      }
    } catch let rolledBack as RolledBack {
      // The batch that failed gets its own error; the others, rolled back with it through no fault
      // of theirs, are run again at once without it, using none of their attempts (a trigger's
      // RAISE(ROLLBACK) in one rule's table sent other rules' rows down their error paths, or
      // spent their retries). Each run leaves one batch out: at most as many runs as batches.
      var outcomes = [Result<any Sendable, any Error>](
        repeating: .failure(rolledBack.error), count: writes.count)
      let others = writes.indices.filter { $0 != rolledBack.culprit }
      guard !others.isEmpty else { return outcomes }
      for (index, outcome) in zip(others, await runTogether(others.map { writes[$0] })) {
        outcomes[index] = outcome
      }
      return outcomes
    } catch {
      return writes.map { _ in .failure(error) }
    }
  }

  /// A batch's failure that ended its group's transaction: the batch at `culprit` failed with `error`.
  struct RolledBack: Error {
    let culprit: Int
    let error: any Error
  }

  /// Whether a write's failure is its own (its savepoint rolled back, the others go on): any but
  /// SQLite's failures of the database itself (full, I/O, busy or locked, out of memory,
  /// read-only, corrupt), which the next write would meet too or which end the transaction.
  static func failsAlone(_ error: any Error) -> Bool {
    guard let error = error as? DatabaseError else { return true }
    switch error.resultCode.primaryResultCode {
    case .SQLITE_CONSTRAINT, .SQLITE_ERROR, .SQLITE_MISMATCH, .SQLITE_TOOBIG, .SQLITE_RANGE: return true
    default: return false
    }
  }

  /// Switches the database to WAL when opening could not (another connection held it then), and
  /// gives the connection the settings an action asked since it opened.
  func switchToWALIfPending(_ queue: DatabaseQueue) async {
    if settings.withLock({ Self.serving($0.asked) != $0.applied }) {
      // Read and marked on the connection's queue, in its order: two batches that read the
      // settings before either applied them could leave the older ones in force.
      try? await queue.writeWithoutTransaction { db in
        let current = self.settings.withLock { settings -> Settings? in
          let wanted = Self.serving(settings.asked)
          guard wanted != settings.applied else { return nil }
          settings.applied = wanted
          return wanted
        }
        guard let current else { return }
        try db.execute(sql: "PRAGMA busy_timeout = \(current.busyTimeoutMs)")
        try db.execute(sql: "PRAGMA synchronous = \(current.synchronous)")
      }
    }
    guard walPending.load(ordering: .relaxed) else { return }
    let mode = try? await queue.writeWithoutTransaction { db in
      try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
    }
    if mode?.lowercased() == "wal" { walPending.store(false, ordering: .relaxed) }
  }

  /// Closes the connection (its last user is done).
  func close() {
    // Under `opening`, as the idle settling retires a moved file under it: a close in between
    // found neither the connection nor the retired one (never closed, its rows' place not said).
    opening.withLock { _ in
      let queue = state.withLock { state -> DatabaseQueue? in
        defer { state = nil }
        return state
      }
      defer { retryRetired(closing: true) }
      guard let queue else { return }
      if movedAway() {
        // Moved, replaced or deleted since the last batch.
        retire(queue)
      } else {
        try? queue.close()
      }
    }
  }

  /// Whether the file at the path is no longer the one opened (moved, replaced or deleted); false
  /// for a `file:` URI, and before the file was first known.
  private func movedAway() -> Bool {
    guard !database.hasPrefix("file:"), let opened = openedFile.withLock({ $0 }) else { return false }
    return fileIdentity().map { $0 != opened } ?? true
  }

  /// The database's file identity (device, inode) when it was opened; nil for a `file:` URI.
  let openedFile = Mutex<FileIdentity?>(nil)

  /// The identity of the file at the database path, or nil when there is none.
  func fileIdentity() -> FileIdentity? { FileIdentity(path: database) }

  /// The identities of the open database's `-wal` and `-shm` files. A database replaced or deleted
  /// under the daemon leaves them at its path: SQLite does not checkpoint a moved database when
  /// its connection closes, so it does not delete them either, and a connection opened at the path
  /// would replay the old database's pages into the new file (a restored backup came back holding
  /// the old rows and schema). They are removed once the old connection is closed, when they are
  /// still the files it used.
  let openedSidecars = Mutex<[String: FileIdentity]>([:])

  /// Notes the identities of the `-wal` and `-shm` files the open connection uses, once each exists.
  func noteSidecars() {
    openedSidecars.withLock { known in
      guard known.count < 2 else { return }
      for suffix in ["-wal", "-shm"] where known[suffix] == nil {
        if let identity = FileIdentity(path: database + suffix) { known[suffix] = identity }
      }
    }
  }

  /// Closes the connection to a database that is no longer the file at the path. Its committed
  /// rows still in the `-wal` file are first checkpointed into its own file (SQLite skips that when
  /// a moved database's connection closes: a database renamed away kept none of the rows the
  /// `-wal` held, rows already acknowledged), then that `-wal`, which would be replayed into
  /// whatever is opened at the path next, is removed. When another process's read transaction
  /// keeps the checkpoint from completing, the `-wal` and `-shm` are renamed aside instead (the
  /// connection keeps them open), so the path is free, and the checkpoint is tried again before
  /// each later batch and at shutdown; the files are removed once it completes. A shutdown before
  /// that closes the connection and leaves them, `<database>-wal.retired-<inode>`, holding those rows.
  func retire(_ queue: DatabaseQueue) {
    if Self.checkpointed(queue) {
      try? queue.close()
      removeStaleSidecars()
      return
    }
    let known = openedSidecars.withLock { known in
      defer { known = [:] }
      return known
    }
    var renamed: [String] = []
    // Named by the moved database's inode (`find / -inum N` finds it), one number for both files.
    let inode = openedFile.withLock { $0?.inode }
    for (suffix, identity) in known.sorted(by: { $0.key < $1.key }) {
      guard let now = FileIdentity(path: database + suffix), now == identity else { continue }
      let aside = "\(database)\(suffix).retired-\(inode ?? identity.inode)"
      if rename(database + suffix, aside) == 0 { renamed.append(aside) } else { unlink(database + suffix) }
    }
    // The files went with the database (`mv iot.db*`) or were replaced: nothing was set aside.
    if !renamed.isEmpty {
      logger.warning(
        "database \(database) was moved or replaced while rows it committed were still in its -wal, and the checkpoint into the moved file did not complete (another process reading it, or a full disk): its -wal and -shm are set aside as \(renamed.joined(separator: " and ")), and the checkpoint is tried again before each batch and at shutdown"
      )
    }
    retiring.withLock { $0.append((queue, renamed)) }
  }

  /// Connections to databases moved away whose checkpoint has not completed yet, and their
  /// `-wal` and `-shm` files, renamed aside (see ``retire(_:)``).
  let retiring = Mutex<[(queue: DatabaseQueue, sidecars: [String])]>([])

  /// Tries again the checkpoints ``retire(_:)`` could not complete; at shutdown (`closing`) the
  /// connections are closed either way, and the files of an incomplete one kept.
  func retryRetired(closing: Bool) {
    let pending = retiring.withLock { list in
      defer { list = [] }
      return list
    }
    var kept: [(queue: DatabaseQueue, sidecars: [String])] = []
    for entry in pending {
      if Self.checkpointed(entry.queue) {
        try? entry.queue.close()
        for path in entry.sidecars { unlink(path) }
        if !entry.sidecars.isEmpty {
          logger.info(
            "database \(database): the moved file's checkpoint completed; \(entry.sidecars.joined(separator: " and ")) removed"
          )
        }
      } else if closing {
        try? entry.queue.close()
        if entry.sidecars.isEmpty { continue }
        logger.error(
          "database \(database): the moved file's checkpoint did not complete before shutdown: rows it committed are only in \(entry.sidecars.joined(separator: " and ")); put them beside the moved database as its -wal and -shm to read them"
        )
      } else {
        kept.append(entry)
      }
    }
    if !kept.isEmpty { retiring.withLock { $0 += kept } }
  }

  /// Whether a checkpoint of `queue`'s `-wal` completed (every frame in the database file). Passive:
  /// it waits for no reader, so a batch is not held up while a reader keeps it from completing.
  static func checkpointed(_ queue: DatabaseQueue) -> Bool {
    let row = try? queue.writeWithoutTransaction { db in
      try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
    }
    guard let row, let busy: Int = row[0], let log: Int = row[1], let done: Int = row[2] else { return false }
    return busy == 0 && log == done
  }

  /// Removes the closed connection's `-wal` and `-shm` files when they are still at the path.
  func removeStaleSidecars() {
    let known = openedSidecars.withLock { known in
      defer { known = [:] }
      return known
    }
    for (suffix, identity) in known {
      if let now = FileIdentity(path: database + suffix), now == identity { unlink(database + suffix) }
    }
  }

  /// The connection, opened at the first batch and again when the file at the path was replaced,
  /// and the number of that opening.
  func openQueue() throws(ActionError) -> (queue: DatabaseQueue, generation: Int) {
    let opened = try opening.withLock { (_) throws(ActionError) -> (queue: DatabaseQueue, generation: Int) in
      let queue = try openQueueHoldingLock()
      return (queue, generation.load(ordering: .relaxed))
    }
    noteUse()
    return opened
  }

  /// When a batch last asked for the connection (monotonic nanoseconds), and whether the task that
  /// settles it once idle (``settleWhenIdle()``) runs.
  private let idle = Mutex<(lastUse: UInt64, settling: Bool)>((0, false))

  /// How long the connection goes unused before it is settled.
  static let settleAfterNanoseconds: UInt64 = 300_000_000

  /// Notes a batch's use of the connection, and starts the task that settles it once idle.
  private func noteUse() {
    let now = DispatchTime.now().uptimeNanoseconds
    let start = idle.withLock { idle -> Bool in
      idle.lastUse = now
      defer { idle.settling = true }
      return !idle.settling
    }
    if start { Task.detached { await self.settleWhenIdle() } }
  }

  /// Once no batch has asked for the connection for ``settleAfterNanoseconds``, settles it
  /// (``settle()``), again after each later use, and until it is settled (a reader holding an old
  /// snapshot keeps a checkpoint from completing: tried again, waiting up to 10 s between tries).
  private func settleWhenIdle() async {
    var wait = Self.settleAfterNanoseconds
    var retry = Self.settleAfterNanoseconds
    while true {
      try? await Task.sleep(nanoseconds: wait)
      let now = DispatchTime.now().uptimeNanoseconds
      let seen = idle.withLock { $0.lastUse }
      if now &- seen < Self.settleAfterNanoseconds {
        wait = Self.settleAfterNanoseconds - (now &- seen)
        continue
      }
      let settled = await settle()
      let done = idle.withLock { idle -> Bool in
        // A use since the settling began: it is settled again after that one.
        guard settled, idle.lastUse == seen else { return false }
        idle.settling = false
        return true
      }
      if done { return }
      retry = settled ? Self.settleAfterNanoseconds : min(retry * 2, 10_000_000_000)
      wait = retry
    }
  }

  /// Settles the idle connection: a database moved, replaced or deleted since its last batch is
  /// retired now, its rows checkpointed into the moved file (``retire(_:)``), not when the next
  /// batch comes, hours later maybe (a database renamed away held none of its rows, all still in
  /// the `-wal` at the old path, which a `gzip` of the renamed file left behind); else its `-wal`
  /// is checkpointed into the file, so that a move from now on takes every row with it. True when
  /// nothing is left to do (the checkpoint completed, or the connection is closed).
  private func settle() async -> Bool {
    // Under `opening` only what touches the path (a moved file's retiring, rare); the usual
    // checkpoint waits on the connection's queue, behind a write under way, holding no lock and
    // no thread (under `opening`, every other action's next batch waited for it on a thread).
    let unmoved = opening.withLock { _ -> DatabaseQueue?? in
      if retiring.withLock({ !$0.isEmpty }) { retryRetired(closing: false) }
      guard let queue = state.withLock({ $0 }) else { return .some(nil) }
      guard movedAway() else { return .some(queue) }
      // (The connection changes only under `opening`: still this one.)
      state.withLock { $0 = nil }
      retire(queue)
      return .some(nil)
    }
    guard let queue = unmoved ?? nil else { return retiring.withLock { $0.isEmpty } }
    let completed = try? await queue.writeWithoutTransaction { db -> Bool in
      let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
      guard let row, let busy: Int = row[0], let log: Int = row[1], let done: Int = row[2] else {
        return false
      }
      return busy == 0 && log == done
    }
    // Not run: closed meanwhile (a shutdown), nothing left to settle.
    return completed ?? state.withLock { $0 !== queue }
  }

  /// `openQueue`, with `opening` held.
  private func openQueueHoldingLock() throws(ActionError) -> DatabaseQueue {
    if retiring.withLock({ !$0.isEmpty }) { retryRetired(closing: false) }
    if let queue = state.withLock({ $0 }) {
      // A database deleted or replaced under the daemon (an operator's `rm`, a restore) would take
      // every later row into the unlinked file: open the one at the path again instead.
      guard !database.hasPrefix("file:") else { return queue }
      let now = fileIdentity()
      guard let opened = openedFile.withLock({ $0 }) else {
        // SQLite creates the file on its first write: known from then on.
        openedFile.withLock { $0 = now }
        return queue
      }
      if let now, now == opened {
        noteSidecars()
        return queue
      }
      let stale = state.withLock { state -> DatabaseQueue? in
        guard state === queue else { return nil }
        state = nil
        return queue
      }
      if let stale { retire(stale) }
      return try openQueueHoldingLock()
    }
    if !database.hasPrefix("file:") { try FileSystem.makeParentFolders(of: database) }
    var configuration = Configuration()
    let opening = settings.withLock { settings -> Settings in
      let wanted = Self.serving(settings.asked)
      settings.applied = wanted
      return wanted
    }
    configuration.busyMode = .timeout(Double(opening.busyTimeoutMs) / 1000)
    configuration.label = database
    let synchronous = opening.synchronous
    configuration.prepareDatabase { [self] db in
      // A read-only database cannot switch modes: its writes fail later with SQLITE_READONLY.
      // Another connection holding the database keeps it in its mode for now (SQLite then says the
      // old mode, without an error): the switch is tried again before each batch until it takes,
      // rather than run the whole time in rollback mode, where a reader blocks every write.
      let mode = try? String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
      walPending.store(
        mode?.lowercased() != "wal" && sqlite3_db_readonly(db.sqliteConnection, "main") == 0,
        ordering: .relaxed)
      _ = try? db.execute(sql: "PRAGMA synchronous = \(synchronous)")
      // The -wal grows while a reader holds an old snapshot; once checkpointed it is cut back to
      // 64 MiB instead of keeping its largest size until the daemon stops.
      _ = try? db.execute(sql: "PRAGMA journal_size_limit = 67108864")
    }
    do {
      let queue = try DatabaseQueue(path: database, configuration: configuration)
      generation.add(1, ordering: .relaxed)
      if !database.hasPrefix("file:") {
        openedFile.withLock { $0 = fileIdentity() }
        noteSidecars()
      } else {
        let name = queue.inDatabase { db in
          sqlite3_db_filename(db.sqliteConnection, "main").map { String(cString: $0) }
        }
        uriFileName.withLock { $0 = name.flatMap { $0.isEmpty ? nil : $0 } }
      }
      return state.withLock { state in
        if let existing = state { return existing }
        state = queue
        return queue
      }
    } catch {
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: database, isDirectory: &isFolder), isFolder.boolValue {
        throw SQLiteAction.actionError(error, "cannot open \(database), a folder, not a database file")
      }
      throw SQLiteAction.actionError(error, "cannot open \(database)")
    }
  }

}
