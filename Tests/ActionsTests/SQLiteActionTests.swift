import Foundation
import GRDB
import IoTSQL
import Logging
import RulesEngine
import TestSupport
import Testing

@testable import Actions

struct SQLiteActionTests {
  /// A sqlite action on a new database holding table `name` with `columns` (SQL: types,
  /// constraints), and the database's path.
  func actionOnNewTable(_ name: String, columns: String, file: String) async throws -> (SQLiteAction, String)
  {
    let path = "\(temporaryFolder())/\(file)"
    try await DatabaseQueue(path: path).write { db in try db.execute(sql: "CREATE TABLE \(name) \(columns)") }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "\#(name)"}"#), context: context)
    return (action, path)
  }

  /// `check` compares only actions of one conflict key: those `conflict(with:)` can find in
  /// conflict have one (a table's name folded, a database's two spellings), others another.
  @Test func actionsThatMayConflictShareAKey() throws {
    func key(_ database: String, _ table: String, _ keyColumn: String = "dev") throws -> String? {
      try SQLiteAction(
        configuration: configuration(
          #"{"database": "\#(database)", "table": "\#(table)", "key": "\#(keyColumn)"}"#),
        context: context
      ).conflictKey
    }
    #expect(try key("k.db", "Latest") == key("./k.db", "latest", "site"))
    #expect(try key("k.db", "latest") != key("k.db", "latest2"))
    #expect(try key("k.db", "latest") != key("file:k.db", "latest"))
    let (one, two) = (
      try SQLiteAction(
        configuration: configuration(#"{"database": "k.db", "table": "LATEST", "key": "dev"}"#),
        context: context),
      try SQLiteAction(
        configuration: configuration(#"{"database": "./k.db", "table": "latest"}"#), context: context)
    )
    #expect(one.conflict(with: two) != nil && one.conflictKey == two.conflictKey)
  }

  @Test func autoColumnsCreateAndExtendTheTable() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/sub/iot.db", "table": "readings"}"#),
      context: context)
    let results = await action.performBatch([
      input(
        object([("deviceId", .string("d1")), ("temp", .decimal(31.5))]),
        json: #"{"deviceId":"d1","temp":31.5}"#),
      input(
        object([
          ("deviceId", .string("d2")), ("temp", .int(32)), ("extra", object([("a", .int(1))])),
          ("ok", .bool(true)),
        ]),
        json: #"{"deviceId":"d2","temp":32,"extra":{"a":1},"ok":true}"#),
    ])
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let queue = try DatabaseQueue(path: "\(folder)/sub/iot.db")
    let rows = try queue.read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, temp, extra, ok FROM readings ORDER BY rowid")
    }
    #expect(rows.count == 2)
    #expect(rows[0]["deviceId"] as String == "d1")
    #expect(rows[0]["temp"] as Double == 31.5)
    #expect(rows[0]["extra"] as String? == nil)
    #expect(rows[1]["extra"] as String == #"{"a":1}"#)
    #expect(rows[1]["ok"] as Int == 1)
    let mode = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
    #expect(mode == "wal")
  }

  /// Results whose keys come in many lists (optional fields, any order) are all written, and the
  /// connection keeps at most `PreparedLists.limit` of their statements prepared.
  @Test func manyKeyListsAreWrittenWithABoundedStatementCache() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/iot.db", "table": "readings"}"#),
      context: context)
    let names = (0..<8).map { "k\($0)" }
    var inputs: [ActionInput] = []
    // 300 results: each a different selection and order of the keys.
    for n in 0..<300 {
      var keys = names.enumerated().filter { (n >> $0.offset) & 1 == 1 || $0.offset == n % 8 }.map(\.element)
      if n % 2 == 1 { keys.reverse() }
      let members = keys.map { ($0, Value.int(n)) }
      inputs.append(
        input(object(members), json: "{" + keys.map { #""\#($0)":\#(n)"# }.joined(separator: ",") + "}"))
    }
    for start in stride(from: 0, to: inputs.count, by: 50) {
      let results = await action.performBatch(Array(inputs[start..<start + 50]))
      #expect(results.allSatisfy { $0 == nil })
    }
    #expect(action.sharedDatabase().prepared.count <= SQLiteAction.PreparedLists.limit)
    await action.shutdown()
    let queue = try DatabaseQueue(path: "\(folder)/iot.db")
    let rows = try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM readings ORDER BY rowid")
    }
    #expect(rows.count == 300)
    // Each row holds its own n under each of its keys, and NULL elsewhere.
    for (n, row) in rows.enumerated() {
      for (index, name) in names.enumerated() {
        let present = (n >> index) & 1 == 1 || index == n % 8
        #expect((row[name] as Int?) == (present ? n : nil), "row \(n) \(name)")
      }
    }
  }

  /// A sqlite action writing the table `readings` of `iot.db` in a new folder, the folder and the
  /// database's path.
  static func readingsAction(logs: LogLines? = nil) throws -> (SQLiteAction, folder: String, path: String) {
    let folder = temporaryFolder()
    let path = "\(folder)/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "readings"}"#), context: context,
      logger: logs?.logger ?? Logger(label: "test"))
    return (action, folder, path)
  }

  /// Another process's long read of the database at `path`: a transaction left open across
  /// accesses, holding its snapshot until the caller commits it.
  static func longReader(of path: String) throws -> DatabaseQueue {
    var configuration = Configuration()
    configuration.allowsUnsafeTransactions = true
    let reader = try DatabaseQueue(path: path, configuration: configuration)
    try reader.inDatabase { db in
      try db.beginTransaction(.deferred)
      _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM readings")
    }
    return reader
  }

  /// The result `{"n": n}`.
  static func row(_ n: Int) -> ActionInput { input(object([("n", .int(n))]), json: #"{"n":\#(n)}"#) }

  /// The `n` of the rows of `readings` in the database at `path`, in order.
  static func numbers(at path: String) async throws -> [Int] {
    try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT n FROM readings ORDER BY n")
    }
  }

  /// A database deleted under the action (or replaced) is opened anew at its path: the rows after
  /// do not go into the unlinked file.
  @Test func aDeletedDatabaseIsOpenedAgain() async throws {
    let (action, _, path) = try Self.readingsAction()
    #expect(await action.performBatch([Self.row(1)]).allSatisfy { $0 == nil })
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    #expect(await action.performBatch([Self.row(2), Self.row(3)]).allSatisfy { $0 == nil })
    await action.shutdown()
    #expect(try await Self.numbers(at: path) == [2, 3])
  }

  /// A database replaced under the action (an operator restoring a backup with `mv`) keeps what
  /// the new file holds: the old connection's `-wal` and `-shm`, left at the path, are not replayed
  /// into it (they brought the old rows and schema back over the restored ones).
  @Test func aReplacedDatabaseKeepsItsOwnContent() async throws {
    let (action, folder, path) = try Self.readingsAction()
    #expect(await action.performBatch([Self.row(1), Self.row(2)]).allSatisfy { $0 == nil })
    #expect(FileManager.default.fileExists(atPath: path + "-wal"))
    // The backup: its own schema, rows and a table the old database never had.
    let backup = "\(folder)/backup.db"
    try await DatabaseQueue(path: backup).write { db in
      try db.execute(sql: "CREATE TABLE readings (n, note); INSERT INTO readings VALUES (100, 'restored')")
      try db.execute(sql: "CREATE TABLE keep (k); INSERT INTO keep VALUES (1)")
    }
    #expect(rename(backup, path) == 0)
    #expect(await action.performBatch([Self.row(3)]).allSatisfy { $0 == nil })
    await action.shutdown()
    let queue = try DatabaseQueue(path: path)
    let (numbers, kept) = try await queue.read { db in
      (
        try Int.fetchAll(db, sql: "SELECT n FROM readings ORDER BY n"),
        try Int.fetchAll(db, sql: "SELECT k FROM keep")
      )
    }
    #expect(numbers == [3, 100])
    #expect(kept == [1])
  }

  /// Checking a rule whose database the process holds open (a reload) does not read the file:
  /// closing any descriptor of it would drop the open connection's POSIX locks, and another
  /// process's reader could then remove its `-wal` under it. Nor does the archive's look at a
  /// rendered path (a message naming the database's file), and a `file:` URI's file counts as held
  /// too (both opened the file and dropped the locks).
  @Test(arguments: [false, true]) func checkingARuleKeepsTheOpenConnectionsLocks(uri: Bool) async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/iot.db"
    let database = uri ? "file:\(path)?cache=private" : path
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(database)", "table": "readings"}"#), context: context)
    #expect(await action.performBatch([Self.row(1)]).allSatisfy { $0 == nil })
    func locks() throws -> Int {
      let inode = try #require(FileIdentity(path: path)).inode
      let text = try String(contentsOfFile: "/proc/locks", encoding: .utf8)
      return text.split(separator: "\n").filter { $0.contains(" \(getpid()) ") && $0.contains(":\(inode) ") }
        .count
    }
    // The connection's lock on the file: with the write on the connection's group-commit task, it
    // can show a moment after the batch's result, and the write's own locks go a moment after it
    // (seen in full runs): taken once the count holds still.
    var held = try locks()
    var still = 0
    for _ in 0..<400 where held == 0 || still < 5 {
      try await Task.sleep(nanoseconds: 10_000_000)
      let now = try locks()
      still = now == held ? still + 1 : 0
      held = now
    }
    #expect(held > 0)
    let again = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(database)", "table": "readings"}"#), context: context)
    #expect(try locks() == held)
    _ = again
    #expect(FileArchiveAction.sqliteFile(path) == "a SQLite database")
    #expect(FileArchiveAction.sqliteFile(path + "-wal")?.hasPrefix("the '-wal' file") == true)
    #expect(try locks() == held)
    await action.shutdown()
  }

  /// Two actions sharing the connection, both writing at once just after the file was replaced:
  /// one reopens while the other waits (the path is not opened while the old `-wal` is there),
  /// and neither batch fails for the connection closed under it.
  @Test func actionsSharingAReplacedDatabaseReopenItOnce() async throws {
    let (action, folder, path) = try Self.readingsAction()
    let other = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "readings"}"#), context: context)
    #expect(await action.performBatch([Self.row(1)]).allSatisfy { $0 == nil })
    #expect(await other.performBatch([Self.row(2)]).allSatisfy { $0 == nil })
    let backup = "\(folder)/backup.db"
    try await DatabaseQueue(path: backup).write { db in
      try db.execute(sql: "CREATE TABLE readings (n, note); INSERT INTO readings VALUES (100, 'restored')")
    }
    #expect(rename(backup, path) == 0)
    async let first = action.performBatch([Self.row(3)])
    async let second = other.performBatch([Self.row(4)])
    let (one, two) = await (first, second)
    #expect(one.allSatisfy { $0 == nil } && two.allSatisfy { $0 == nil }, "\(one) \(two)")
    await action.shutdown()
    await other.shutdown()
    let numbers = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT n FROM readings ORDER BY n")
    }
    #expect(numbers == [3, 4, 100])
  }

  /// A database renamed away under the action keeps every row committed to it, though they were
  /// still in its `-wal` (SQLite does not checkpoint a renamed database when its connection closes,
  /// and that `-wal` is removed so that it is not replayed into the next file at the path): found
  /// by the next batch, or at shutdown.
  @Test(arguments: [true, false])
  func aMovedDatabaseKeepsItsRows(nextBatch: Bool) async throws {
    let (action, folder, path) = try Self.readingsAction()
    #expect(await action.performBatch([Self.row(1), Self.row(2)]).allSatisfy { $0 == nil })
    #expect(FileManager.default.fileExists(atPath: path + "-wal"))
    #expect(rename(path, "\(folder)/moved.db") == 0)
    if nextBatch { #expect(await action.performBatch([Self.row(3)]).allSatisfy { $0 == nil }) }
    await action.shutdown()
    #expect(try await Self.numbers(at: "\(folder)/moved.db") == [1, 2])
    if nextBatch {
      #expect(try await Self.numbers(at: path) == [3])
    } else {
      #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }
  }

  /// A database renamed away while the action is idle holds its rows on its own (its file alone,
  /// without the `-wal` left at the old path) within a second, with no further batch and no
  /// shutdown: the idle connection is settled, its rows checkpointed into the file, or the moved
  /// file retired (and the old `-wal` removed). Every row was left in that `-wal` until the next
  /// message, hours later maybe: a `gzip` of the renamed file held none of them.
  @Test(arguments: [0, 800])
  func anIdleDatabaseMovedAwayHoldsItsRows(afterMilliseconds: Int) async throws {
    let (action, folder, path) = try Self.readingsAction()
    #expect(await action.performBatch([Self.row(1), Self.row(2)]).allSatisfy { $0 == nil })
    try await Task.sleep(nanoseconds: UInt64(afterMilliseconds) * 1_000_000)
    #expect(rename(path, "\(folder)/moved.db") == 0)
    let copy = "\(folder)/copy.db"
    var rows: [Int] = []
    for _ in 0..<60 where rows != [1, 2] {
      try await Task.sleep(nanoseconds: 50_000_000)
      try? FileManager.default.removeItem(atPath: copy)
      try FileManager.default.copyItem(atPath: "\(folder)/moved.db", toPath: copy)
      rows = (try? await Self.numbers(at: copy)) ?? []
    }
    #expect(rows == [1, 2])
    if afterMilliseconds == 0 {
      // Retired while idle: the -wal it left at the path is gone, not replayed into a new file.
      for _ in 0..<40 where FileManager.default.fileExists(atPath: path + "-wal") {
        try await Task.sleep(nanoseconds: 50_000_000)
      }
      #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }
    #expect(await action.performBatch([Self.row(3)]).allSatisfy { $0 == nil })
    await action.shutdown()
    #expect(try await Self.numbers(at: path) == [3])
  }

  /// A database moved away while another process reads an older snapshot of it: the checkpoint
  /// cannot complete yet, so its `-wal` is renamed aside (not removed: that left the moved file
  /// unreadable), the path's new database gets the next rows, and once the reader is done the next
  /// batch completes the checkpoint and removes the files set aside.
  @Test func aDatabaseMovedUnderAReaderKeepsItsRows() async throws {
    let logs = LogLines()
    let (action, folder, path) = try Self.readingsAction(logs: logs)
    #expect(await action.performBatch([Self.row(1), Self.row(2)]).allSatisfy { $0 == nil })
    let inode = try #require(FileIdentity(path: path)?.inode)
    let reader = try Self.longReader(of: path)
    #expect(await action.performBatch([Self.row(3)]).allSatisfy { $0 == nil })
    #expect(rename(path, "\(folder)/moved.db") == 0)
    #expect(await action.performBatch([Self.row(4)]).allSatisfy { $0 == nil })
    let aside = {
      (try? FileManager.default.contentsOfDirectory(atPath: folder))?.filter { $0.contains(".retired-") }
        ?? []
    }
    // Named by the moved database's inode, and said: no result's outcome carries it.
    #expect(Set(aside()) == ["iot.db-shm.retired-\(inode)", "iot.db-wal.retired-\(inode)"], "\(aside())")
    #expect(
      logs.lines.contains {
        $0.hasPrefix(
          "warning database \(path) was moved or replaced while rows it committed were still in its -wal")
          && $0.contains("iot.db-wal.retired-\(inode)")
      }, "\(logs.lines)")
    try reader.inDatabase { db in try db.commit() }
    try reader.close()
    #expect(await action.performBatch([Self.row(5)]).allSatisfy { $0 == nil })
    #expect(aside().isEmpty, "\(aside())")
    #expect(
      logs.lines.contains { $0.hasPrefix("info database \(path): the moved file's checkpoint completed") })
    await action.shutdown()
    #expect(try await Self.numbers(at: "\(folder)/moved.db") == [1, 2, 3])
    #expect(try await Self.numbers(at: path) == [4, 5])
  }

  /// A stop while the moved database's checkpoint still cannot complete leaves its rows in the
  /// files set aside, and says so at error level, naming them.
  @Test func aStopBeforeTheCheckpointSaysWhereTheRowsAre() async throws {
    let logs = LogLines()
    let (action, folder, path) = try Self.readingsAction(logs: logs)
    #expect(await action.performBatch([Self.row(1)]).allSatisfy { $0 == nil })
    let inode = try #require(FileIdentity(path: path)?.inode)
    let reader = try Self.longReader(of: path)
    #expect(await action.performBatch([Self.row(2)]).allSatisfy { $0 == nil })
    #expect(rename(path, "\(folder)/moved.db") == 0)
    await action.shutdown()
    #expect(
      logs.lines.contains {
        $0.hasPrefix("error database \(path): the moved file's checkpoint did not complete before shutdown")
          && $0.contains("\(path)-wal.retired-\(inode)")
      }, "\(logs.lines)")
    try reader.inDatabase { db in try db.commit() }
    try reader.close()
  }

  /// Actions writing one database share one connection (one descriptor for the file, one for its
  /// `-wal`), whatever their tables and settings: 10,000 rules each with its own ran the daemon
  /// out of descriptors. The last action to shut down closes it.
  @Test func actionsOfOneDatabaseShareOneConnection() async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/shared.db"
    func descriptors(to file: String) -> Int {
      let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
      return entries.filter {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == file
      }.count
    }
    var actions: [SQLiteAction] = []
    for index in 0..<40 {
      // Spelt two ways, one file: one connection (a connection each locked each other out).
      let spelt = index % 2 == 0 ? path : "\(folder)/./shared.db"
      let action = try SQLiteAction(
        configuration: configuration(#"{"database": "\#(spelt)", "table": "t\#(index % 4)"}"#),
        context: context)
      try await action.start()
      actions.append(action)
    }
    let key = SQLiteDatabase.Key(database: path)
    #expect(SQLiteDatabase.users(of: key) == 40)
    for (index, action) in actions.enumerated() {
      #expect(
        await action.performBatch([input(object([("n", .int(index))]), json: #"{"n":\#(index)}"#)]) == [nil])
    }
    #expect(descriptors(to: path) == 1)
    #expect(descriptors(to: path + "-wal") == 1)
    // Other settings, the same connection, with the most careful of them.
    let fullSync = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t0", "synchronous": "full"}"#),
      context: context)
    #expect(await fullSync.performBatch([input(object([("n", .int(99))]), json: #"{"n":99}"#)]) == [nil])
    #expect(descriptors(to: path) == 1)
    #expect(fullSync.sharedDatabase().currentSettings == .init(busyTimeoutMs: 1000, fullSync: true))
    await fullSync.shutdown()
    for action in actions.dropLast() { await action.shutdown() }
    // (SQLite keeps the closed connection's descriptor for reuse while another holds the file.)
    #expect(SQLiteDatabase.users(of: key) == 1, "still open for the last action")
    #expect(await actions.last!.performBatch([input(object([("n", .int(40))]), json: #"{"n":40}"#)]) == [nil])
    await actions.last!.shutdown()
    #expect(SQLiteDatabase.users(of: key) == 0)
    #expect(descriptors(to: path) == 0)
    let queue = try DatabaseQueue(path: path)
    let counts = try await queue.read { db in
      try (0..<4).map { try Int.fetchOne(db, sql: "SELECT count(*) FROM t\($0)") ?? 0 }
    }
    #expect(counts == [11, 10, 10, 11])
    try queue.close()
  }

  /// `"synchronous": "full"` fsyncs each commit (SQLite's FULL); the default is NORMAL; another
  /// value is refused where it is written.
  @Test func synchronousIsChosenPerAction() async throws {
    let folder = temporaryFolder()
    for (text, expected) in [(#", "synchronous": "full""#, 2), ("", 1)] {
      let action = try SQLiteAction(
        configuration: configuration(#"{"database": "\#(folder)/s\#(expected).db", "table": "t"\#(text)}"#),
        context: context)
      #expect(await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)]) == [nil])
      let queue = try action.openQueue()
      let mode = try await queue.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
      #expect(mode == expected)
      await action.shutdown()
    }
    #expect(throws: ActionConfigurationError.self) {
      try SQLiteAction(
        configuration: configuration(#"{"database": "x.db", "table": "t", "synchronous": "off"}"#),
        context: context)
    }
  }

  /// Two rules writing one table: the columns one of them remembers go out of date when the other
  /// adds one (or an operator drops the table). A single row then still lands: the schema is read
  /// afresh and the transaction runs again, instead of failing for good on "duplicate column name".
  @Test func anOutOfDateColumnCacheIsReadAgain() async throws {
    let folder = temporaryFolder()
    let text = #"{"database": "\#(folder)/shared.db", "table": "m"}"#
    let first = try SQLiteAction(configuration: configuration(text), context: context)
    let second = try SQLiteAction(configuration: configuration(text), context: context)
    #expect(await first.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)]) == [nil])
    #expect(
      await second.performBatch([input(object([("a", .int(2)), ("b", .int(2))]), json: #"{"a":2,"b":2}"#)])
        == [nil])
    #expect(
      await first.performBatch([input(object([("a", .int(3)), ("b", .int(3))]), json: #"{"a":3,"b":3}"#)])
        == [nil])
    let queue = try DatabaseQueue(path: "\(folder)/shared.db")
    let before = try queue.read { db in try Row.fetchAll(db, sql: "SELECT a, b FROM m ORDER BY rowid") }
    #expect(before.map { $0["a"] as Int } == [1, 2, 3])
    #expect(before.map { $0["b"] as Int? } == [nil, 2, 3])
    try await queue.write { db in try db.execute(sql: "DROP TABLE m") }
    #expect(await first.performBatch([input(object([("a", .int(4))]), json: #"{"a":4}"#)]) == [nil])
    await first.shutdown()
    await second.shutdown()
    let after = try await queue.read { db in try Int.fetchAll(db, sql: "SELECT a FROM m ORDER BY rowid") }
    #expect(after == [4])
  }

  /// A column template that is one `${expression}` stores the value with its type; text around it
  /// makes it text.
  @Test func columnTemplatesKeepTheirValuesTypes() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(
        #"""
        {"database": "\#(folder)/typed.db", "table": "t",
         "columns": {"temp": "${temp}", "n": "${n}", "label": "t=${temp}", "missing": "${nothing}",
                     "device": "${topic(2)}", "nested": "${o}"}}
        """#),
      context: context)
    let payload = #"{"temp":31.5,"n":7,"o":{"a":1}}"#
    let results = await action.performBatch([
      input(
        object([("temp", .decimal(31.5)), ("n", .int(7)), ("o", object([("a", .int(1))]))]), json: payload,
        payload: payload)
    ])
    #expect(results.allSatisfy { $0 == nil }, "\(results)")
    await action.shutdown()
    let queue = try DatabaseQueue(path: "\(folder)/typed.db")
    let row = try queue.read { db in
      try Row.fetchOne(
        db,
        sql:
          "SELECT typeof(temp) AS tt, temp, typeof(n) AS tn, n, typeof(label) AS tl, label, typeof(missing) AS tm, device, nested FROM t"
      )
    }
    #expect(row?["tt"] as String? == "real" && row?["temp"] as Double? == 31.5)
    #expect(row?["tn"] as String? == "integer" && row?["n"] as Int? == 7)
    #expect(row?["tl"] as String? == "text" && row?["label"] as String? == "t=31.5")
    #expect(row?["tm"] as String? == "null")
    #expect(row?["device"] as String? == "d1")
    #expect(row?["nested"] as String? == #"{"a":1}"#)
  }

  @Test func everyValueKindIsStoredAsItsColumnType() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/kinds.db", "table": "kinds"}"#),
      context: context)
    let results = await action.performBatch([
      input(
        object([
          ("s", .string("h\u{E9}llo")), ("empty", .string("")), ("n", .null), ("big", .int(Int.max)),
          ("blob", .binary([0, 1, 255])), ("noBytes", .binary([])),
          ("list", .array([.int(1), .string("x")])),
          ("long", .string("a string longer than fifteen bytes")), ("nul", .string("a\u{0}b")),
        ]),
        json: "{}")
    ])
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let queue = try DatabaseQueue(path: "\(folder)/kinds.db")
    let row = try queue.read { db in
      try Row.fetchOne(
        db,
        sql:
          "SELECT s, empty, n, big, blob, noBytes, list, typeof(empty), typeof(noBytes), typeof(n), long, "
          + "length(CAST(nul AS BLOB)) FROM kinds"
      )
    }
    let values = try #require(row)
    #expect(values["s"] as String == "h\u{E9}llo")
    #expect(values["empty"] as String == "")
    #expect(values["big"] as Int64 == Int64.max)
    #expect(values["blob"] as Data == Data([0, 1, 255]))
    #expect(values["list"] as String == #"[1,"x"]"#)
    #expect(values[7] as String == "text")
    #expect(values[8] as String == "blob")
    #expect(values[9] as String == "null")
    #expect(values["long"] as String == "a string longer than fifteen bytes")
    // Bound with its length: a NUL inside a string does not cut it.
    #expect(values[11] as Int == 3)
  }

  /// Automatic columns are bounded: a result with many new keys fails alone, permanently, and the
  /// table stays as it was for the results that follow (one hostile payload used to add 1,995
  /// columns, after which every new legitimate key failed).
  @Test func automaticColumnsAreBounded() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/wide.db", "table": "t"}"#), context: context)
    func keys(_ count: Int, _ prefix: String) -> Value {
      object((0..<count).map { ("\(prefix)\($0)", Value.int($0)) })
    }
    let hostile = SQLiteAction.newColumnsPerResult + 1
    let results = await action.performBatch([
      input(object([("deviceId", .string("d1")), ("temp", .int(20))]), json: "{}"),
      input(keys(hostile, "k"), json: "{}"),
      input(object([("deviceId", .string("d2")), ("humidity", .int(50))]), json: "{}"),
    ])
    #expect(results[0] == nil && results[2] == nil, "\(results)")
    #expect(results[1]?.kind == .permanent)
    #expect(
      results[1]?.message
        == "the result has \(hostile) keys table 't' has no column for; one result adds at most \(SQLiteAction.newColumnsPerResult) (name the columns to write with \"columns\")"
    )
    // A table is created with at most the limit of columns too.
    let other = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/wide.db", "table": "u"}"#), context: context)
    let created = await other.performBatch([
      input(keys(SQLiteAction.automaticColumnLimit + 1, "c"), json: "{}")
    ])
    #expect(created[0]?.message.contains("automatic columns stop at 256") == true, "\(created)")
    await action.shutdown()
    await other.shutdown()
    let columns = try await DatabaseQueue(path: "\(folder)/wide.db").read { db in
      try Row.fetchAll(db, sql: "PRAGMA table_info(t)").map { $0["name"] as String }
    }
    #expect(columns == ["deviceId", "temp", "humidity"])
    // Columns the rule names itself are not bounded: they are the author's, not a payload's.
    let names = (0..<40).map { "c\($0)" }
    let listed = names.map { "\"\($0)\": \"${n}\"" }.joined(separator: ", ")
    let configured = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(folder)/wide.db", "table": "t", "columns": {\#(listed)}}"#),
      context: context)
    let written = await configured.performBatch([input(object([("n", .int(1))]), json: #"{"n":1}"#)])
    await configured.shutdown()
    #expect(written == [nil], "\(written)")
  }

  /// A result that would take the table past its automatic columns by the columns the action knows
  /// already fails at once, without the write lock: another writer's lock does not make it wait
  /// (each such row took a savepoint and a read of the schema under the lock, and 5,000 of them held
  /// it for seconds, failing the other writer's rows as 'database is locked').
  @Test func resultsPastTheColumnCapFailWithoutTheWriteLock() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/cap.db", "table": "t", "busyTimeoutMs": 50}"#),
      context: context)
    func keys(_ range: Range<Int>, _ prefix: String) -> Value {
      object(range.map { ("\(prefix)\($0)", Value.int($0)) })
    }
    // 250 columns, 25 at a time.
    for start in stride(from: 0, to: 250, by: 25) {
      #expect(await action.performBatch([input(keys(start..<start + 25, "c"), json: "{}")]) == [nil])
    }
    var holding = Configuration()
    holding.allowsUnsafeTransactions = true
    let holder = try DatabaseQueue(path: "\(folder)/cap.db", configuration: holding)
    try holder.inDatabase { try $0.execute(sql: "BEGIN IMMEDIATE") }
    let results = await action.performBatch((0..<3).map { input(keys(0..<10, "n\($0)_"), json: "{}") })
    try holder.inDatabase { try $0.execute(sql: "ROLLBACK") }
    #expect(
      results.allSatisfy {
        $0?.kind == .permanent
          && $0?.message
            == "the result's 10 new key(s) would take table 't' to 260 columns; automatic columns stop at 256 (name the columns to write with \"columns\")"
      }, "\(results)")
    // A result within the cap still writes, once the lock is free.
    #expect(await action.performBatch([input(keys(0..<3, "d"), json: "{}")]) == [nil])
    await action.shutdown()
  }

  /// A decimal is a REAL, its nearest double; one beyond a double's range (AWS's decimals reach
  /// 1E999), or a whole number past 64 bits that a double would change, is kept as its text, not
  /// stored as infinity, 0 or other digits.
  @Test func decimalsBeyondADoublesRangeAreKeptAsText() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/wide.db", "table": "wide"}"#), context: context)
    let huge = try #require(SQLDecimal(string: "-1.5E400"))
    let tiny = try #require(SQLDecimal(string: "1.2345678901234567E-320"))
    let results = await action.performBatch([
      input(
        object([
          ("huge", .decimal(huge)), ("tiny", .decimal(tiny)), ("zero", .decimal(.zero)),
          ("max", .decimal(1.5e308)),
          ("long", .decimal(try #require(SQLDecimal(string: "-12345678901234567890")))),
          ("power", .decimal(try #require(SQLDecimal(string: "9223372036854775808")))),
          ("round", .decimal(try #require(SQLDecimal(string: "1E19")))),
          // A subnormal double that is the number itself loses nothing: a REAL.
          ("least", .decimal(try #require(SQLDecimal(string: "-1E-310")))),
        ]),
        json: "{}")
    ])
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let row = try DatabaseQueue(path: "\(folder)/wide.db").read { db in
      try Row.fetchOne(
        db,
        sql:
          "SELECT huge, typeof(huge), tiny, typeof(tiny), zero, typeof(zero), max, long, typeof(long), power, typeof(power), round, typeof(round), least, typeof(least) FROM wide"
      )
    }
    let values = try #require(row)
    #expect(values[0] as String == "-1.5E400")
    #expect(values[1] as String == "text")
    #expect(values[2] as String == "1.2345678901234567E-320")
    #expect(values[3] as String == "text")
    #expect(values[4] as Double == 0)
    #expect(values[5] as String == "real")
    #expect(values[6] as Double == 1.5e308)
    // Past 64 bits: the digits when a double would read back as other digits, else the double.
    #expect(values[7] as String == "-12345678901234567890")
    #expect(values[8] as String == "text")
    #expect(values[9] as String == "9223372036854775808")
    #expect(values[10] as String == "text")
    #expect(values[11] as Double == 1e19)
    #expect(values[12] as String == "real")
    #expect(values[13] as Double == Double("-1e-310"))
    #expect(values[14] as String == "real")
    // The least double as Java writes it (4.9E-324, two digits) is that double; 4.8E-324, which
    // reads back otherwise, is its text.
    for (text, real) in [("4.9E-324", true), ("5E-324", true), ("4.8E-324", false), ("-4.9E-324", true)] {
      guard case .real = SQLiteAction.stored(.decimal(try #require(SQLDecimal(string: text)))) else {
        #expect(!real, "\(text)")
        continue
      }
      #expect(real, "\(text)")
    }
    // A whole number whose double reads back as another is exact: an INTEGER within 64 bits (an
    // epoch in nanoseconds kept a Decimal by 2015-10-08), else text; a fraction is a REAL.
    for (text, expected) in [
      ("1700000000123456789.0", "integer 1700000000123456789"),
      ("-9223372036854775808.00", "integer -9223372036854775808"),
      ("12345678901234567890.0", "text 12345678901234567890"),
      ("10.0", "real 10.0"), ("1E19", "real 1e+19"), ("1.5", "real 1.5"), ("0.0", "real 0.0"),
      ("12345678901234567890.5", "real 1.2345678901234567e+19"),
    ] {
      let said =
        switch SQLiteAction.stored(.decimal(try #require(SQLDecimal(string: text)))) {
        case .integer(let int): "integer \(int)"
        case .real(let double): "real \(double)"
        case .text(let digits): "text \(digits)"
        default: "other"
        }
      #expect(said == expected, "\(text)")
    }
  }

  @Test func aConstraintViolationIsAPermanentFailureNamingTheTable() async throws {
    let (action, path) = try await actionOnNewTable(
      "strict", columns: "(deviceId TEXT NOT NULL CHECK (length(deviceId) < 5))", file: "strict.db")
    let results = await action.performBatch([
      input(object([("deviceId", .string("ok"))]), json: "{}"),
      input(object([("deviceId", .string("far too long"))]), json: "{}"),
    ])
    await action.shutdown()
    #expect(results[0] == nil)
    let error = try #require(results[1])
    #expect(error.kind == .permanent)
    #expect(error.message.contains("insert into strict"))
    #expect(error.message.contains("CHECK constraint failed"))
    let count = try await DatabaseQueue(path: path).read { db in
      try Int.fetchOne(db, sql: "SELECT count(*) FROM strict")
    }
    #expect(count == 1)
  }

  /// A row whose own conflict clause rolls back the whole transaction (`ON CONFLICT ROLLBACK`, a
  /// trigger's `RAISE(ROLLBACK, ...)`) fails alone, with its reason; the others are written in
  /// order (every row of the batch failed with "Transaction was aborted").
  @Test(arguments: [
    ("(seq INTEGER, v INTEGER NOT NULL ON CONFLICT ROLLBACK)", "", "NOT NULL constraint failed"),
    (
      "(seq INTEGER, v INTEGER)",
      "CREATE TRIGGER no4 BEFORE INSERT ON rb WHEN NEW.seq = 4 BEGIN SELECT RAISE(ROLLBACK, 'no 4'); END",
      "no 4"
    ),
  ])
  func aRowThatRollsTheTransactionBackFailsAlone(columns: String, trigger: String, reason: String)
    async throws
  {
    let (action, path) = try await actionOnNewTable("rb", columns: columns, file: "rollback.db")
    if !trigger.isEmpty {
      try await DatabaseQueue(path: path).write { db in try db.execute(sql: trigger) }
    }
    let results = await action.performBatch(
      (0..<10).map { seq in
        input(object([("seq", .int(seq)), ("v", seq == 4 ? .null : .int(seq))]), json: "{}")
      })
    await action.shutdown()
    #expect(results.enumerated().allSatisfy { $0.offset == 4 || $0.element == nil }, "\(results)")
    let failure = try #require(results[4])
    #expect(failure.kind == .permanent)
    #expect(failure.message.contains(reason), "\(failure.message)")
    let written = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT seq FROM rb ORDER BY rowid")
    }
    #expect(written == [0, 1, 2, 3, 5, 6, 7, 8, 9])
  }

  /// A key naming a generated column of the user's table fails its row with SQLite's own words
  /// (it was taken for a missing column: "duplicate column name"); the other rows are written.
  @Test func aKeyNamingAGeneratedColumnFailsWithSQLitesWords() async throws {
    let (action, path) = try await actionOnNewTable(
      "gen", columns: "(a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2))", file: "generated.db")
    let results = await action.performBatch([
      input(object([("a", .int(1))]), json: "{}"),
      input(object([("a", .int(2)), ("b", .int(9))]), json: "{}"),
    ])
    await action.shutdown()
    #expect(results[0] == nil)
    let error = try #require(results[1])
    #expect(error.message.contains("generated column"), "\(error.message)")
    let rows = try await DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT a, b FROM gen").map { [$0[0] as Int, $0[1] as Int] }
    }
    #expect(rows == [[1, 2]])
  }

  /// Performs `batch(index)` on each action while a first write holds their shared connection, so
  /// all wait behind it and share the next transaction; returns each action's results and the
  /// group transactions run meanwhile (the holding one included).
  func batchesBehindAHeldWrite(
    _ actions: [SQLiteAction], _ batch: @escaping @Sendable (Int) -> [ActionInput]
  ) async throws -> (results: [Int: [ActionError?]], transactions: Int) {
    let shared = actions[0].sharedDatabase()
    let queue = try actions[0].openQueue()
    let release = DispatchSemaphore(value: 0)
    let before = shared.groupTransactions.load(ordering: .relaxed)
    let holding = Task { try await shared.groupWrite(through: queue) { _ in release.wait() } }
    let batches = Task {
      await withTaskGroup(of: (Int, [ActionError?]).self) { group in
        for (index, action) in actions.enumerated() {
          group.addTask { (index, await action.performBatch(batch(index))) }
        }
        var results: [Int: [ActionError?]] = [:]
        for await (index, result) in group { results[index] = result }
        return results
      }
    }
    for _ in 0..<500 where shared.waitingWrites.withLock({ $0.writes.count }) < actions.count {
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    #expect(shared.waitingWrites.withLock { $0.writes.count } == actions.count)
    release.signal()
    try await holding.value
    let results = await batches.value
    return (results, shared.groupTransactions.load(ordering: .relaxed) - before)
  }

  /// The batches of several actions writing one database while a transaction runs go into the
  /// next one together, each in a savepoint: one action's failing batch is rolled back alone.
  @Test(.timeLimit(.minutes(3))) func actionsSharingADatabaseCommitTogether() async throws {
    let folder = temporaryFolder()
    try await DatabaseQueue(path: "\(folder)/iot.db").write { db in
      try db.execute(sql: "CREATE TABLE strict_t (deviceId TEXT NOT NULL, temp REAL)")
    }
    let actions = try (0..<8).map { index in
      try SQLiteAction(
        configuration: configuration(
          #"{"database": "\#(folder)/iot.db", "table": "\#(index == 3 ? "strict_t" : "t\(index)")"}"#),
        context: context)
    }
    let shared = actions[0].sharedDatabase()
    #expect(actions.allSatisfy { $0.sharedDatabase() === shared })
    let (results, transactions) = try await batchesBehindAHeldWrite(actions) { index in
      // Action 3's rows lack the NOT NULL deviceId.
      let row = index == 3 ? object([("temp", .int(1))]) : object([("deviceId", .string("d\(index)"))])
      return [input(row, json: ""), input(row, json: "")]
    }
    // The holding one, then one for the eight (the failing batch is then written again row by row,
    // outside the group).
    #expect(transactions == 2)
    for index in 0..<8 where index != 3 { #expect(results[index] == [nil, nil], "\(index)") }
    #expect(results[3]?.allSatisfy { $0?.kind == .permanent && $0!.message.contains("NOT NULL") } == true)
    for action in actions { await action.shutdown() }
    let counts = try await DatabaseQueue(path: "\(folder)/iot.db").read { db in
      try (0..<8).filter { $0 != 3 }.map { try Int.fetchOne(db, sql: "SELECT count(*) FROM t\($0)")! }
        + [Int.fetchOne(db, sql: "SELECT count(*) FROM strict_t")!]
    }
    #expect(counts == [2, 2, 2, 2, 2, 2, 2, 0])
  }

  /// A batch whose failure makes SQLite roll back the whole shared transaction (`ON CONFLICT
  /// ROLLBACK`) fails with its own error; the batches rolled back with it are written at once,
  /// without it, using none of their attempts (they failed transiently: with one attempt, down
  /// their error paths).
  @Test(.timeLimit(.minutes(3))) func aBatchThatRollsBackTheGroupFailsAlone() async throws {
    let folder = temporaryFolder()
    try await DatabaseQueue(path: "\(folder)/iot.db").write { db in
      try db.execute(
        sql: "CREATE TABLE strict_t (u UNIQUE ON CONFLICT ROLLBACK); INSERT INTO strict_t VALUES (1)")
    }
    let actions = try (0..<4).map { index in
      try SQLiteAction(
        configuration: configuration(
          #"{"database": "\#(folder)/iot.db", "table": "\#(index == 0 ? "strict_t" : "t\(index)")"}"#),
        context: context)
    }
    let (results, _) = try await batchesBehindAHeldWrite(actions) { _ in
      [input(object([("u", .int(1))]), json: "")]
    }
    #expect(results[0]?.first??.kind == .permanent && results[0]?.first??.message.contains("UNIQUE") == true)
    for index in 1..<4 { #expect(results[index] == [nil], "\(index)") }
    for action in actions { await action.shutdown() }
    let counts = try await DatabaseQueue(path: "\(folder)/iot.db").read { db in
      try (1..<4).map { try Int.fetchOne(db, sql: "SELECT count(*) FROM t\($0)")! }
    }
    #expect(counts == [1, 1, 1])
  }

  /// Rows with the same columns go in groups of `rowsPerStatement` per INSERT, the rest one by one;
  /// every row lands once, in order, with its own values, whatever the grouping. A row failing
  /// inside a group fails alone: the batch is written again row by row.
  @Test func rowsAreInsertedInGroupsAndOneBadRowFailsAlone() async throws {
    let (action, path) = try await actionOnNewTable(
      "g", columns: "(n INTEGER CHECK (n <> 77), label TEXT, extra TEXT)", file: "groups.db")
    let group = SQLiteAction.rowsPerStatement
    #expect(group > 1)
    // Every 40th row has another column set, breaking the run of the others.
    var inputs: [ActionInput] = []
    for n in 0..<(5 * group / 2 + 100) {
      let value: Value =
        n % 40 == 39
        ? object([("n", .int(n)), ("label", .string("odd \(n)")), ("extra", .string("x"))])
        : object([("n", .int(n)), ("label", .string("row \(n)"))])
      inputs.append(input(value, json: "{}"))
    }
    let clean = await action.performBatch(inputs.enumerated().filter { $0.offset != 77 }.map(\.element))
    #expect(clean.allSatisfy { $0 == nil })
    let results = await action.performBatch([inputs[77]] + inputs[70..<77] + inputs[78..<(70 + group + 5)])
    await action.shutdown()
    #expect(results[0]?.kind == .permanent)
    #expect(results[0]?.message.contains("CHECK constraint failed") == true)
    #expect(results.dropFirst().allSatisfy { $0 == nil })
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT n, label, extra FROM g ORDER BY rowid")
    }
    let expected = inputs.count - 1 + (group + 5 - 1)
    #expect(rows.count == expected)
    // The first batch, in order, each row with its own values.
    let numbers = (0..<inputs.count).filter { $0 != 77 }
    for (row, n) in zip(rows, numbers) {
      #expect(row["n"] as Int == n)
      #expect(row["label"] as String == (n % 40 == 39 ? "odd \(n)" : "row \(n)"))
      #expect((row["extra"] as String?) == (n % 40 == 39 ? "x" : nil))
    }
    // The second batch, without its bad row.
    let again = rows[(inputs.count - 1)...].map { $0["n"] as Int }
    #expect(again == Array(70..<77) + Array(78..<(70 + group + 5)))
  }

  /// Written again row by row, a failing row is rolled back with everything it did (a column it
  /// added too), and the rows after it still find or add the columns they need.
  @Test func aFailingRowTakesItsNewColumnWithIt() async throws {
    let (action, path) = try await actionOnNewTable(
      "s", columns: "(n INTEGER CHECK (n <> 77))", file: "savepoints.db")
    let results = await action.performBatch([
      input(object([("n", .int(1))]), json: "{}"),
      input(object([("n", .int(77)), ("extra", .string("lost"))]), json: "{}"),
      input(object([("n", .int(2))]), json: "{}"),
      input(object([("n", .int(3)), ("extra", .string("kept"))]), json: "{}"),
      input(object([("n", .int(77))]), json: "{}"),
      input(object([("n", .int(4)), ("other", .bool(true))]), json: "{}"),
    ])
    await action.shutdown()
    #expect(results.map { $0?.kind } == [nil, .permanent, nil, nil, .permanent, nil])
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT n, extra, other FROM s ORDER BY rowid")
    }
    #expect(rows.map { $0["n"] as Int } == [1, 2, 3, 4])
    #expect(rows.map { $0["extra"] as String? } == [nil, nil, "kept", nil])
    #expect(rows.map { $0["other"] as Int? } == [nil, nil, nil, 1])
  }

  /// However the bad rows are spread (one, a run, every third, all), exactly they fail and every
  /// other row lands once, in order.
  @Test(arguments: [[40], Array(10..<30), Array(stride(from: 0, to: 100, by: 3)), Array(0..<100), []])
  func exactlyTheBadRowsFail(_ bad: [Int]) async throws {
    let (action, path) = try await actionOnNewTable(
      "b", columns: "(n INTEGER, ok INTEGER CHECK (ok = 1))", file: "bad.db")
    let badSet = Set(bad)
    let results = await action.performBatch(
      (0..<100).map { n in
        input(object([("n", .int(n)), ("ok", .int(badSet.contains(n) ? 0 : 1))]), json: "{}")
      })
    await action.shutdown()
    #expect(results.indices.filter { results[$0] != nil } == bad)
    #expect(results.allSatisfy { $0 == nil || $0!.kind == .permanent })
    let numbers = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT n FROM b ORDER BY rowid")
    }
    #expect(numbers == (0..<100).filter { !badSet.contains($0) })
  }

  /// SQLite's column names ignore case: `Temp` is the column `temp`, and `temp` beside `Temp` in one
  /// result cannot be two columns.
  @Test func columnNamesIgnoreCase() async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/case.db"
    try await DatabaseQueue(path: path).write { db in try db.execute(sql: "CREATE TABLE t (temp, deviceId)") }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t"}"#), context: context)
    let results = await action.performBatch([
      input(object([("Temp", .int(21)), ("DEVICEID", .string("d1"))]), json: "{}"),
      input(object([("temp", .int(1)), ("Temp", .int(2))]), json: "{}"),
      input(object([("temp", .int(22)), ("Extra", .int(5))]), json: "{}"),
      input(object([("TEMP", .int(23)), ("extra", .int(6))]), json: "{}"),
    ])
    #expect(results[0] == nil)
    #expect(results[1]?.kind == .permanent)
    #expect(
      results[1]?.message
        == "keys 'temp' and 'Temp' differ only in case: SQLite column names ignore case, so they cannot be stored as two columns"
    )
    #expect(results[2] == nil && results[3] == nil)
    await action.shutdown()
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT temp, deviceId, extra FROM t ORDER BY rowid")
    }
    #expect(rows.map { $0["temp"] as Int } == [21, 22, 23])
    #expect(rows.map { $0["extra"] as Int? } == [nil, 5, 6])
    #expect(rows.first?["deviceId"] as String? == "d1")
    #expect(
      throws: ActionConfigurationError.self,
      performing: {
        try SQLiteAction(
          configuration: configuration(
            #"{"database": "x.db", "table": "t", "columns": {"a": "${a}", "A": "${b}"}}"#),
          context: context)
      })
  }

  /// Any key names a column, quoted (dynamoDBv2's attribute names: `device-id`, `New Col`, accents),
  /// and a hostile one is a name, never SQL; only an empty key, a control character or more than
  /// 128 bytes is refused.
  @Test func anyKeyIsAQuotedColumnNameNeverSQL() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/iot.db", "table": "t"}"#), context: context)
    let hostile = "a\"; DROP TABLE t; --"
    // A quote followed by a combining mark: one Character, but a quote to SQLite.
    let marked = "c\"\u{301}; DROP TABLE t; --"
    let results = await action.performBatch([
      input(object([(hostile, .int(1)), (marked, .int(1))]), json: "{}"),
      input(object([("a", .string("'); DROP TABLE t; --"))]), json: "{}"),
      input(
        object([("device-id", .string("d1")), ("New Col", .int(2)), ("température", .int(3))]), json: "{}"),
      // SQLite folds ASCII letters only: É and é are two columns, A and a one.
      input(object([("É", .int(4)), ("é", .int(5))]), json: "{}"),
      input(object([("tab\tkey", .int(6))]), json: "{}"),
      input(object([("", .int(7))]), json: "{}"),
      input(object([("A", .int(8)), ("a", .int(9))]), json: "{}"),
      // The decomposed spelling of température (e + U+0301): the same column, as Swift sees it.
      input(object([("tempe\u{301}rature", .int(10))]), json: "{}"),
      // A column named rowid hid the row id from every reader (NULL in every other row).
      input(object([("RowID", .int(11))]), json: "{}"),
    ])
    #expect(results[0...3].allSatisfy { $0 == nil }, "\(results)")
    #expect(results[4]?.message == "key 'tab\tkey' is not a valid column name: it holds a control character")
    #expect(results[5]?.message == "key '' is not a valid column name: it is empty")
    #expect(results[6]?.message.contains("differ only in case") == true)
    #expect(results[7] == nil, "\(String(describing: results[7]))")
    #expect(
      results[8]?.message
        == "key 'RowID' would make a column of table 't' named as SQLite's row id (rowid, oid, _rowid_), which hides it from every reader; a table made with that column takes it"
    )
    await action.shutdown()
    let queue = try DatabaseQueue(path: "\(folder)/iot.db")
    let names = try await queue.read { db in
      try Row.fetchAll(db, sql: "PRAGMA table_info(t)").map { $0["name"] as String }
    }
    #expect(names == [hostile, marked, "a", "device-id", "New Col", "température", "É", "é"])
    #expect(
      try await queue.read { db in try String.fetchOne(db, sql: "SELECT a FROM t WHERE a IS NOT NULL") }
        == "'); DROP TABLE t; --")
    #expect(
      try await queue.read { db in
        try Int.fetchOne(db, sql: #"SELECT "New Col" FROM t WHERE "New Col" IS NOT NULL"#)
      }
        == 2)
  }

  /// An action writing to `table` of a new database, where another process made the table with
  /// `sql`; and the database, for the test to read.
  private func action(onTable table: String, madeBy sql: String) async throws -> (SQLiteAction, DatabaseQueue)
  {
    let folder = temporaryFolder()
    let queue = try DatabaseQueue(path: "\(folder)/iot.db")
    try await queue.write { db in try db.execute(sql: sql) }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/iot.db", "table": "\#(table)"}"#),
      context: context)
    return (action, queue)
  }

  /// A table made with a column named as the row id (SNMP data's `oid`) takes it, as any other
  /// column: only making one is refused. (Every row of such a table was refused.)
  @Test func aTableMadeWithAnOIDColumnTakesIt() async throws {
    let (action, queue) = try await action(
      onTable: "snmp", madeBy: "CREATE TABLE snmp(oid TEXT, value INTEGER)")
    let results = await action.performBatch([
      input(object([("oid", .string("1.3.6.1.2.1.1.3.0")), ("value", .int(42))]), json: "{}"),
      input(object([("OID", .string("1.3.6.1.2.1.1.5.0")), ("rowid", .int(1))]), json: "{}"),
    ])
    await action.shutdown()
    #expect(results[0] == nil, "\(String(describing: results[0]))")
    #expect(results[1]?.message.hasPrefix("key 'rowid' would make a column of table 'snmp'") == true)
    #expect(
      try await queue.read { db in try String.fetchAll(db, sql: "SELECT oid FROM snmp") } == [
        "1.3.6.1.2.1.1.3.0"
      ])
  }

  /// A table whose column another process named in decomposed form (`cafe` + U+0301) still takes
  /// the key `café`, in a column of its own (SQLite compares names by their bytes; the action took
  /// the two as one column and every insert failed); both spellings in one result are said as such.
  @Test func decomposedColumnsOfAnotherProcess() async throws {
    let (action, queue) = try await action(onTable: "t", madeBy: "CREATE TABLE t (\"cafe\u{301}\", x)")
    let results = await action.performBatch([
      input(object([("caf\u{E9}", .int(1))]), json: "{}"),
      input(object([("caf\u{E9}", .int(2)), ("cafe\u{301}", .int(3))]), json: "{}"),
    ])
    await action.shutdown()
    #expect(results[0] == nil, "\(String(describing: results[0]))")
    #expect(results[1]?.message.contains("are one key in Unicode's composed form (NFC)") == true)
    let names = try await queue.read { db in
      try Row.fetchAll(db, sql: "PRAGMA table_info(t)").map { Array(($0["name"] as String).utf8) }
    }
    #expect(names == [Array("cafe\u{301}".utf8), Array("x".utf8), Array("caf\u{E9}".utf8)])
  }

  /// Results of one SELECT list share their key list: it is checked once, and a result with other
  /// keys after it is still checked; Undefined members are no columns.
  @Test func sharedKeyListsAreCheckedOnceAndOtherKeysStill() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/iot.db", "table": "t"}"#), context: context)
    // One SELECT list: its results share one key list.
    let program = try Compiler.compile("SELECT a, b FROM 't'")
    var machine = VirtualMachine()
    func shared(_ payload: String) throws -> Value {
      let evaluation = machine.evaluate(
        program, context: EvaluationContext(topic: "t", payload: Array(payload.utf8)))
      return try #require(evaluation).value
    }
    let results = await action.performBatch([
      input(try shared(#"{"a": 1, "b": "x"}"#), json: "{}"),
      input(object([("a", .int(2)), ("bad\u{1}key", .int(3))]), json: "{}"),
      input(try shared(#"{"a": 4}"#), json: "{}"),
      input(object([("A", .int(5)), ("a", .int(6))]), json: "{}"),
      input(try shared(#"{"a": 7, "b": "y"}"#), json: "{}"),
    ])
    #expect(results[0] == nil)
    #expect(results[1]?.message.contains("'bad\u{1}key' is not a valid column name") == true)
    #expect(results[2] == nil)
    #expect(results[3]?.message.contains("differ only in case") == true)
    #expect(results[4] == nil)
    let queue = try DatabaseQueue(path: "\(folder)/iot.db")
    let rows = try await queue.read { db in
      try Row.fetchAll(db, sql: "SELECT a, b FROM t ORDER BY rowid").map {
        ($0["a"] as Int, $0["b"] as String?)
      }
    }
    #expect(rows.map(\.0) == [1, 4, 7])
    #expect(rows.map(\.1) == ["x", nil, "y"])
  }

  @Test func readOnlyDatabaseIsAPermanentFailure() async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/ro.db"
    let setup = try DatabaseQueue(path: path)
    try await setup.write { db in try db.execute(sql: "CREATE TABLE t (a)") }
    try setup.close()
    // A file format write version above 2 (byte 18 of the header) makes SQLite open the file
    // read-only, whoever runs the test (file permissions do not stop root).
    let header = try #require(FileHandle(forUpdatingAtPath: path))
    try header.seek(toOffset: 18)
    try header.write(contentsOf: [3])
    try header.close()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t"}"#), context: context)
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .permanent)
    #expect(
      error?.message.hasSuffix("attempt to write a readonly database (SQLite code 8)") == true,
      "\(String(describing: error))")
  }

  /// A database with a table `t` that another connection (the holder) has begun a transaction on
  /// with `begin`, and an action on it that waits 50 ms for locks.
  func heldDatabase(_ begin: String) async throws -> (
    holder: DatabaseQueue, action: SQLiteAction, path: String
  ) {
    let path = "\(temporaryFolder())/held.db"
    var holderConfiguration = Configuration()
    holderConfiguration.allowsUnsafeTransactions = true
    let holder = try DatabaseQueue(path: path, configuration: holderConfiguration)
    try await holder.write { db in try db.execute(sql: "CREATE TABLE t (a)") }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t", "busyTimeoutMs": 50}"#),
      context: context)
    try holder.inDatabase { db in try db.execute(sql: begin) }
    return (holder, action, path)
  }

  /// Actions of one database with different lock waits share the connection, which waits as
  /// long as the most patient asks: two connections, one waiting 0 ms, locked each other out.
  @Test func actionsOfOneDatabaseWaitAsTheMostPatientAsks() async throws {
    let (holder, impatient, path) = try await heldDatabase("BEGIN IMMEDIATE")
    #expect(
      await impatient.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]?.kind
        == .transient)
    let patient = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t", "busyTimeoutMs": 60000}"#),
      context: context)
    try await patient.start()
    #expect(patient.sharedDatabase() === impatient.sharedDatabase())
    // The lock goes after 300 ms: the impatient action's write waits for it now.
    let released = Task {
      try await Task.sleep(nanoseconds: 300_000_000)
      try holder.inDatabase { db in try db.execute(sql: "ROLLBACK") }
    }
    #expect(await impatient.performBatch([input(object([("a", .int(2))]), json: #"{"a":2}"#)])[0] == nil)
    try await released.value
    // The patient one gone, the connection waits as the rest ask again (a removed rule's long wait
    // held the others' writes for good).
    await patient.shutdown()
    #expect(impatient.sharedDatabase().currentSettings == .init(busyTimeoutMs: 50, fullSync: false))
    try holder.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
    let started = Date()
    #expect(
      await impatient.performBatch([input(object([("a", .int(3))]), json: #"{"a":3}"#)])[0]?.kind
        == .transient)
    // A bound far from both waits: a loaded machine stalled a 50 ms wait past 2 s.
    #expect(Date().timeIntervalSince(started) < 30, "it waited the removed action's 60 s")
    try holder.inDatabase { db in try db.execute(sql: "ROLLBACK") }
    await impatient.shutdown()
  }

  /// Once a row fails transiently while a batch is written row by row (after another row's
  /// permanent failure), the rows after it are not written but fail with it, to be retried after
  /// it in their order: a later row of its key written first was overwritten by the retry's older one.
  @Test func rowsAfterATransientFailureWaitForItsRetry() async throws {
    let path = "\(temporaryFolder())/full.db"
    let setup = try DatabaseQueue(path: path)
    try await setup.write { db in try db.execute(sql: "CREATE TABLE t (a TEXT, b TEXT, CHECK (a <> 'bad'))") }
    try setup.close()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t"}"#), context: context)
    #expect(
      await action.performBatch([input(object([("a", .string("first"))]), json: #"{"a":"first"}"#)]) == [nil])
    // The database may grow two pages more: the big row meets a full database (transient).
    let queue = try #require(action.sharedDatabase().state.withLock { $0 })
    try queue.inDatabase { db in
      let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
      try db.execute(sql: "PRAGMA max_page_count = \(pages + 2)")
    }
    let big = String(repeating: "x", count: 200_000)
    let results = await action.performBatch([
      input(object([("a", .string("bad"))]), json: #"{"a":"bad"}"#),
      input(object([("a", .string("big")), ("b", .string(big))]), json: #"{"a":"big"}"#),
      input(object([("a", .string("later"))]), json: #"{"a":"later"}"#),
    ])
    #expect(results.map { $0?.kind } == [.permanent, .transient, .transient], "\(results)")
    let rows = try await queue.read { db in try String.fetchAll(db, sql: "SELECT a FROM t") }
    #expect(rows == ["first"])
    await action.shutdown()
  }

  @Test func lockedDatabaseIsATransientFailure() async throws {
    let (holder, action, _) = try await heldDatabase("BEGIN EXCLUSIVE")
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .transient)
    #expect(error?.message.contains("locked") == true, "\(String(describing: error))")
    try holder.inDatabase { db in try db.execute(sql: "ROLLBACK") }
    #expect(await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0] == nil)
  }

  /// A database another connection holds when the action opens it stays in its rollback journal
  /// for the moment (SQLite says the old mode, without an error); the next batches switch it to
  /// WAL, so readers do not block the writes for the whole run.
  @Test func aDatabaseBusyAtOpeningStillGoesToWAL() async throws {
    let (holder, action, path) = try await heldDatabase("BEGIN IMMEDIATE")
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .transient)
    // Why a mere reader may block it now is said (only 'database is locked' was).
    #expect(
      error?.message.contains("the database is not in WAL mode yet") == true, "\(String(describing: error))")
    try holder.inDatabase { db in try db.execute(sql: "COMMIT") }
    try holder.close()
    #expect(await action.performBatch([input(object([("a", .int(2))]), json: #"{"a":2}"#)])[0] == nil)
    let fresh = try DatabaseQueue(path: path)
    #expect(try await fresh.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    #expect(try await fresh.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 1)
    await action.shutdown()
  }

  @Test func databaseUnderARegularFileFails() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/plain/iot.db", "table": "t"}"#),
      context: context)
    // Made after the rule loaded (the load refuses one there already: `whatIsInTheWayIsRefused`).
    _ = FileManager.default.createFile(atPath: "\(folder)/plain", contents: Data("x".utf8))
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .permanent)
    #expect(error?.message.contains("Not a directory") == true, "\(String(describing: error))")
  }

  @Test(arguments: [
    (#"{"table": "t"}"#, "missing key 'database'"),
    (#"{"database": "x.db", "table": "bad name"}"#, "invalid table name 'bad name'"),
    (#"{"database": "x.db", "table": "t", "colums": {}}"#, "unknown key 'colums'"),
    // `retry` and `errorAction`, which every action takes, are suggested too.
    (#"{"database": "x.db", "table": "t", "retyr": {}}"#, "unknown key 'retyr'; did you mean 'retry'?"),
    (#"{"database": "x.db", "table": "t", "columns": {"": "a"}}"#, "invalid column name '': it is empty"),
    (#"{"database": "${topic(1)}.db", "table": "t"}"#, "'database' is a path, not a template"),
    // A YAML `database: |` ends in a line break: the rows went to a file `x.db⏎`.
    (
      #"{"database": "data/x.db\n", "table": "t"}"#,
      "'database' holds a control character (U+000A) in its own text (a YAML '>' or '|' scalar ends in a line break"
    ),
    (
      #"{"database": "x.db", "table": "t", "columns": {"c_${v}": "${v}"}}"#,
      "column name 'c_${v}' is a name, not a template"
    ),
    (#"{"database": ":memory:", "table": "t"}"#, "its rows would be lost at exit"),
    (#"{"database": "file:x?mode=memory", "table": "t"}"#, "its rows would be lost at exit"),
    (#"{"database": "file::memory:?cache=shared", "table": "t"}"#, "its rows would be lost at exit"),
    (#"{"database": "file:memdb1?vfs=memdb", "table": "t"}"#, "its rows would be lost at exit"),
    // SQLite decodes %HH in a URI's parameters: these are in memory too.
    (#"{"database": "file:x.db?mode=%6Demory", "table": "t"}"#, "its rows would be lost at exit"),
    (#"{"database": "file:y.db?vfs=mem%64b", "table": "t"}"#, "its rows would be lost at exit"),
    // An empty file: path is a temporary database, deleted at exit.
    (#"{"database": "file:", "table": "t"}"#, "names no file"),
    (#"{"database": "file:?mode=rwc", "table": "t"}"#, "names no file"),
    (#"{"database": "file://localhost?mode=rwc", "table": "t"}"#, "names no file"),
    // Another host: SQLite opens none (its error was lost, "SQL logic error" at every row).
    (
      #"{"database": "file://otherhost/tmp/x.db", "table": "t"}"#,
      "names the host 'otherhost': SQLite opens local files only"
    ),
    (
      #"{"database": "x.db", "table": "t", "columns": {"caf\u00e9": "${a}", "cafe\u0301": "${b}"}}"#,
      "are one column in Unicode's composed form (NFC)"
    ),
    (
      #"{"database": "x.db", "table": "t", "columns": {\#((0...2000).map { "\"k\($0)\": \"${a}\"" }.joined(separator: ", "))}}"#,
      "SQLite allows at most 2000"
    ),
    (#"{"database": "x.db", "table": "sqlite_master"}"#, "names starting with sqlite_ are SQLite's own"),
    (#"{"database": "/tmp", "table": "t"}"#, "'database' /tmp is a folder, not a database file"),
    // What SQLite would refuse at the first write, refused where it is written (check passed them).
    (#"{"database": "db/slash.db/", "table": "t"}"#, "ends in '/': it names a folder"),
    (#"{"database": "file:x.db?mode=rwx", "table": "t"}"#, "has mode=rwx, which SQLite does not know"),
    (#"{"database": "file:x.db?vfs=nosuchvfs", "table": "t"}"#, "names vfs=nosuchvfs, which this SQLite"),
    (#"{"database": "file:/nonexistent-iotrules/x.db", "table": "t"}"#, "a file: URI's folders are not made"),
    (
      #"{"database": "file:/tmp/iotrules-absent-\#(UInt64.random(in: 0...UInt64.max)).db?mode=rw", "table": "t"}"#,
      "opens an existing database only (mode=rw)"
    ),
  ])
  func configurationErrors(_ text: String, _ expected: String) {
    do {
      _ = try SQLiteAction(configuration: configuration(text), context: context)
      Issue.record("no error for \(text)")
    } catch {
      #expect(error.message.contains(expected), "\(error.message)")
    }
  }

  /// A plain path is a file's name whatever it holds: `mode=memory` in it is no URI parameter.
  @Test func aPlainPathHoldingURIWordsIsAFile() throws {
    let folder = temporaryFolder()
    for name in ["mode=memory.db", "vfs=memdb.db"] {
      #expect(throws: Never.self) {
        _ = try SQLiteAction(
          configuration: configuration(#"{"database": "\#(folder)/\#(name)", "table": "t"}"#),
          context: context)
      }
    }
  }

  /// What is at the database's path when the rule loads, and a URI that opens it read-only, fail
  /// every write: refused where they are written, as a folder there is, not sent down the error path
  /// message after message.
  @Test func whatIsInTheWayIsRefused() throws {
    let folder = temporaryFolder()
    _ = FileManager.default.createFile(atPath: "\(folder)/plain", contents: Data("x".utf8))
    _ = FileManager.default.createFile(atPath: "\(folder)/empty.db", contents: Data())
    let cases = [
      (#"{"database": "\#(folder)/plain", "table": "t"}"#, "is not a SQLite database"),
      (#"{"database": "/dev/null", "table": "t"}"#, "'database' /dev/null is a device, not a database file"),
      (
        #"{"database": "\#(folder)/plain/deeper/iot.db", "table": "t"}"#,
        "cannot be made: '\(folder)/plain' is a file, not a folder"
      ),
      (#"{"database": "file:\#(folder)/plain/iot.db", "table": "t"}"#, "is a file, not a folder"),
      (#"{"database": "file:x.db?mode=ro", "table": "t"}"#, "opens the database read-only (mode=ro)"),
      (#"{"database": "file:x.db?cache=shared&mode=r%6F", "table": "t"}"#, "read-only (mode=ro)"),
      (#"{"database": "file:x.db?immutable=1", "table": "t"}"#, "as immutable (immutable=1)"),
      (#"{"database": "file:x.db?immutable=Yes", "table": "t"}"#, "as immutable (immutable=Yes)"),
      // SQLite's reading: leading digits cut to a byte.
      (#"{"database": "file:x.db?immutable=1x", "table": "t"}"#, "as immutable (immutable=1x)"),
      (#"{"database": "file:x.db?immutable=257", "table": "t"}"#, "as immutable (immutable=257)"),
      (#"{"database": "file:\#(folder)?mode=rwc", "table": "t"}"#, "is a folder, not a database file"),
    ]
    expectRefused(cases) { (node: RuleNode) throws(ActionConfigurationError) in
      _ = try SQLiteAction(configuration: node, context: context)
    }
    // Writable spellings load.
    for database in [
      "file:\(folder)/a.db?mode=rwc", "file:\(folder)/b.db?immutable=0", "file:\(folder)/b.db?immutable=-1",
      "file:\(folder)/b.db?immutable=256", "\(folder)/new/sub/c.db",
      "file:\(folder)/d.db?cache=shared", "\(folder)/empty.db",
    ] {
      #expect(throws: Never.self) {
        _ = try SQLiteAction(
          configuration: configuration(#"{"database": "\#(database)", "table": "t"}"#), context: context)
      }
    }
  }

  /// `check` shows every problem of the action at once, each where it is.
  @Test func everyConfigurationProblemIsReported() {
    let text =
      #"{"database": "", "table": "a-b", "busyTimeoutMs": -1, "synchronous": "off", "x": 1, "columns": {"": "${a}", "d": 5, "e": "${(}"}}"#
    expectProblems([
      "1:77 unknown key 'x'", "1:14 'database' is empty", "1:27 invalid table name 'a-b'",
      "1:51 'busyTimeoutMs' must be", "1:70 'synchronous' must be", "1:97 invalid column name ''",
      "1:114 column 'd' must be a template string", "1:126 sqlite.columns.e: in template: ",
    ]) { () throws(ActionConfigurationError) in
      _ = try SQLiteAction(configuration: configuration(text), context: context)
    }
  }

  /// The results of `rows` (device, temp, optional humidity) as action inputs.
  func readings(_ rows: [(String?, Int, Int?)]) -> [ActionInput] {
    rows.map { device, temp, humidity in
      var members: [(String, Value)] = [
        ("deviceId", device.map(Value.string) ?? .null), ("temp", .int(temp)),
      ]
      if let humidity { members.append(("humidity", .int(humidity))) }
      return input(object(members), json: "{}")
    }
  }

  /// With `key`, a result whose key is in the table replaces its row, as DynamoDB's putItem: the
  /// columns it lacks are NULL afterwards; in one batch the later result wins; the key is made
  /// unique by the index `<table>:key`.
  @Test func aKeyedTableKeepsOneRowPerKeyReplacedByTheLatestResult() async throws {
    let path = "\(temporaryFolder())/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "latest", "key": "deviceId"}"#),
      context: context)
    #expect(action.key == SQLiteAction.RowKey(names: ["deviceId"], updatesColumns: false))
    var results = await action.performBatch(readings([("d1", 20, 50), ("d2", 21, 51), ("d1", 22, 52)]))
    #expect(results.allSatisfy { $0 == nil })
    results = await action.performBatch(readings([("d2", 30, nil)]))
    #expect(results.allSatisfy { $0 == nil })
    // 70 results of 5 devices: whole groups of 32 in one INSERT, each device's last one kept.
    results = await action.performBatch(readings((0..<70).map { ("g\($0 % 5)", $0, nil) }))
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let groups = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT temp FROM latest WHERE deviceId LIKE 'g%' ORDER BY deviceId")
    }
    #expect(groups == [65, 66, 67, 68, 69])
    let queue = try DatabaseQueue(path: path)
    let rows = try queue.read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, temp, humidity FROM latest ORDER BY deviceId")
    }
    #expect(rows.map { $0["deviceId"] as String }.prefix(2) == ["d1", "d2"])
    #expect(rows.map { $0["temp"] as Int }.prefix(2) == [22, 30])
    #expect(rows.map { $0["humidity"] as Int? }.prefix(2) == [52, nil])
    let index = try await queue.read { db in
      try String.fetchOne(
        db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'latest:key'")
    }
    #expect(index?.contains("UNIQUE") == true)
  }

  /// The key's index dropped by another connection while the action writes (the README's advice
  /// for re-keying a table) is made again before the next batch: the table keeps one row per key
  /// (in replace mode, `INSERT OR REPLACE` without a unique index stored every result as a new row).
  @Test func aDroppedKeyIndexIsMadeAgain() async throws {
    let path = "\(temporaryFolder())/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "latest", "key": "deviceId"}"#),
      context: context)
    #expect(await action.performBatch(readings([("d1", 20, 50), ("d2", 21, 51)])).allSatisfy { $0 == nil })
    let other = try DatabaseQueue(path: path)
    try await other.write { db in try db.execute(sql: #"DROP INDEX "latest:key""#) }
    #expect(await action.performBatch(readings([("d1", 22, 52), ("d2", 23, 53)])).allSatisfy { $0 == nil })
    // The table dropped and made anew by another process: keyed again too.
    try await other.write { db in
      try db.execute(sql: "DROP TABLE latest")
      try db.execute(sql: "CREATE TABLE latest (deviceId, temp, humidity)")
    }
    #expect(await action.performBatch(readings([("d1", 24, 54), ("d1", 25, 55)])).allSatisfy { $0 == nil })
    await action.shutdown()
    let rows = try other.read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, temp FROM latest ORDER BY deviceId")
    }
    #expect(rows.map { "\($0["deviceId"] as String)/\($0["temp"] as Int)" } == ["d1/25"])
    let index = try await other.read { db in
      try String.fetchOne(
        db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'latest'")
    }
    #expect(index == "latest:key")
  }

  /// `"update": "columns"` sets only the columns a result has (UpdateItem): the others keep their
  /// values; a composite key names its columns in a list.
  @Test func updateColumnsKeepsTheColumnsAResultLacks() async throws {
    let path = "\(temporaryFolder())/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(path)", "table": "latest", "key": ["deviceId", "temp"], "update": "columns"}"#),
      context: context)
    var results = await action.performBatch(readings([("d1", 20, 50), ("d2", 20, 51)]))
    #expect(results.allSatisfy { $0 == nil })
    results = await action.performBatch(readings([("d1", 20, nil), ("d2", 20, 61), ("d2", 25, nil)]))
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, temp, humidity FROM latest ORDER BY deviceId, temp")
    }
    #expect(
      rows.map { "\($0["deviceId"] as String)/\($0["temp"] as Int)/\($0["humidity"] as Int? ?? -1)" }
        == ["d1/20/50", "d2/20/61", "d2/25/-1"])
  }

  /// `"update": "columns"` updates a row of a table whose other columns are NOT NULL (a device
  /// registry's `name` beside the latest reading): SQLite checks NOT NULL on the INSERT half of an
  /// upsert before it finds the key's conflict, and every update failed. A new key still needs
  /// them: that row fails alone, with SQLite's reason; in a batch of 40 (groups of 32) too.
  @Test func updateColumnsUpdatesARowWhoseOtherColumnsAreNotNull() async throws {
    let path = "\(temporaryFolder())/iot.db"
    try await DatabaseQueue(path: path).write { db in
      try db.execute(
        sql: """
          CREATE TABLE devices (deviceId TEXT PRIMARY KEY, name TEXT NOT NULL, temp INTEGER, humidity INTEGER);
          INSERT INTO devices VALUES ('d1', 'Boiler room', NULL, NULL), ('d2', 'Roof', 1, 2);
          """)
    }
    let action = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(path)", "table": "devices", "key": "deviceId", "update": "columns"}"#),
      context: context)
    var results = await action.performBatch(readings([("d1", 20, 50), ("d3", 5, 5), ("d2", 21, nil)]))
    #expect(results[0] == nil && results[2] == nil, "\(results)")
    #expect(results[1]?.message.contains("NOT NULL constraint failed: devices.name") == true, "\(results)")
    results = await action.performBatch(readings((0..<40).map { ("d\($0 % 2 + 1)", 30 + $0, $0) }))
    #expect(results.allSatisfy { $0 == nil }, "\(results)")
    await action.shutdown()
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, name, temp, humidity FROM devices ORDER BY deviceId")
    }
    #expect(
      rows.map {
        "\($0["deviceId"] as String)/\($0["name"] as String)/\($0["temp"] as Int)/\($0["humidity"] as Int)"
      }
        == ["d1/Boiler room/68/38", "d2/Roof/69/39"])
  }

  /// A NOT NULL column that rolls the transaction back (`ON CONFLICT ROLLBACK`) is not updated
  /// around: the failure ended the transaction, and an UPDATE then would write outside it; the row
  /// fails alone, the others of its batch are written once.
  @Test func updateColumnsLeavesARollingBackNotNullAlone() async throws {
    let path = "\(temporaryFolder())/iot.db"
    try await DatabaseQueue(path: path).write { db in
      try db.execute(
        sql: """
          CREATE TABLE devices (deviceId TEXT PRIMARY KEY, name TEXT NOT NULL ON CONFLICT ROLLBACK, temp INTEGER, humidity INTEGER);
          INSERT INTO devices VALUES ('d1', 'Boiler room', NULL, NULL);
          """)
    }
    let action = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(path)", "table": "devices", "key": "deviceId", "update": "columns"}"#),
      context: context)
    let results = await action.performBatch(
      readings([("d1", 20, 50)]) + [
        input(object([("deviceId", .string("d9")), ("name", .string("new"))]), json: "{}")
      ])
    await action.shutdown()
    #expect(results[0]?.message.contains("NOT NULL constraint failed: devices.name") == true, "\(results)")
    #expect(results[1] == nil, "\(results)")
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT deviceId, name FROM devices ORDER BY deviceId")
    }
    #expect(
      rows.map { "\($0["deviceId"] as String)/\($0["name"] as String)" } == ["d1/Boiler room", "d9/new"])
  }

  /// With `columns` and `"update": "columns"`, a column whose template is Undefined is one the result
  /// does not have: it keeps its value (it was set to NULL), as a key a result lacks does without
  /// `columns`; appending, it is NULL.
  @Test func updatingAColumnWhoseTemplateIsUndefinedKeepsIt() async throws {
    let path = "\(temporaryFolder())/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(path)", "table": "cupd", "key": "id", "update": "columns", "columns": {"id": "${deviceId}", "temp": "${temp}", "hum": "${hum}"}}"#
      ),
      context: context)
    let first = #"{"deviceId": "a", "temp": 1, "hum": 50}"#
    let second = #"{"deviceId": "a", "temp": 3}"#
    #expect(await action.performBatch([input(.null, json: first)]).allSatisfy { $0 == nil })
    #expect(await action.performBatch([input(.null, json: second)]).allSatisfy { $0 == nil })
    await action.shutdown()
    let rows = try DatabaseQueue(path: path).read { db in
      try Row.fetchAll(db, sql: "SELECT id, temp, hum FROM cupd")
    }
    #expect(
      rows.map { "\($0["id"] as String)/\($0["temp"] as Int)/\($0["hum"] as Int? ?? -1)" } == ["a/3/50"])
  }

  /// A result without a value for a key column (missing or null) fails permanently, alone; with
  /// `columns`, an Undefined key template too.
  @Test func aResultWithoutItsKeyFailsAlone() async throws {
    let path = "\(temporaryFolder())/iot.db"
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "latest", "key": ["deviceId"]}"#),
      context: context)
    let missing = input(object([("temp", .int(1))]), json: "{}")
    let results = await action.performBatch(readings([("d1", 20, nil), (nil, 21, nil)]) + [missing])
    #expect(results[0] == nil)
    #expect(results[1]?.kind == .permanent)
    #expect(results[1]?.message.contains("key column 'deviceId' is null") == true, "\(results)")
    #expect(results[2]?.message.contains("the result has no key column 'deviceId'") == true, "\(results)")
    await action.shutdown()

    let templated = try SQLiteAction(
      configuration: configuration(
        #"{"database": "\#(path)", "table": "byTopic", "key": "device", "columns": {"device": "${missing}", "t": "${temp}"}}"#
      ),
      context: context)
    let failed = await templated.performBatch(readings([("d1", 20, nil)]))
    #expect(failed[0]?.message.contains("key column 'device' is null") == true, "\(failed)")
    await templated.shutdown()
    let count = try await DatabaseQueue(path: path).read { db in
      try Int.fetchOne(db, sql: "SELECT count(*) FROM latest")
    }
    #expect(count == 1)
  }

  /// An existing table whose rows share a key cannot take the key: its results fail permanently
  /// with a message that says why, and nothing is replaced.
  @Test func aTableWithDuplicateKeysIsRefusedInWords() async throws {
    let (_, path) = try await actionOnNewTable("t", columns: "(deviceId TEXT, temp INTEGER)", file: "dup.db")
    try await DatabaseQueue(path: path).write { db in
      try db.execute(sql: "INSERT INTO t VALUES ('d1', 1), ('d1', 2)")
    }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t", "key": "deviceId"}"#),
      context: context)
    let results = await action.performBatch(readings([("d1", 3, nil)]))
    #expect(results[0]?.kind == .permanent)
    #expect(
      results[0]?.message.contains(
        "cannot make 'deviceId' the key of table 't': rows in it share a key already")
        == true, "\(results)")
    await action.shutdown()
    let temps = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT temp FROM t ORDER BY rowid")
    }
    #expect(temps == [1, 2])
  }

  /// A STRICT table made by the user is widened with ANY columns (a column without a type is
  /// refused there: every result with a new key failed with "missing datatype").
  @Test func aStrictTableIsWidened() async throws {
    let (action, path) = try await actionOnNewTable(
      "st", columns: "(deviceId TEXT) STRICT", file: "strict.db")
    let results = await action.performBatch([
      input(object([("deviceId", .string("a")), ("temp", .decimal(SQLDecimal(21.5)))]), json: "{}")
    ])
    await action.shutdown()
    #expect(results == [nil])
    let row = try DatabaseQueue(path: path).read { db in
      try Row.fetchOne(db, sql: "SELECT deviceId, temp, typeof(temp) FROM st")
    }
    #expect(row?[0] as String? == "a")
    #expect(row?[1] as Double? == 21.5)
    #expect(row?[2] as String? == "real")
  }

  /// A unique index on the key's column and an expression (`lower(site)`) keeps only the pair
  /// unique: it is not taken for the key's index (its expression has no name and fell out), and the
  /// action makes its own, so the table keeps one row per key.
  @Test func anIndexOnAnExpressionIsNotTheKeys() async throws {
    let path = "\(temporaryFolder())/iot.db"
    try await DatabaseQueue(path: path).write { db in
      try db.execute(sql: "CREATE TABLE e (deviceId TEXT, temp INTEGER, site TEXT)")
      try db.execute(sql: "CREATE UNIQUE INDEX e_u ON e (deviceId, lower(site))")
    }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "e", "key": "deviceId"}"#),
      context: context)
    #expect(await action.performBatch(readings([("a", 1, nil)])) == [nil])
    #expect(await action.performBatch(readings([("a", 2, nil)])) == [nil])
    await action.shutdown()
    let temps = try await DatabaseQueue(path: path).read { db in
      try Int.fetchAll(db, sql: "SELECT temp FROM e")
    }
    #expect(temps == [2])
  }

  /// The key's index is compared with the key: a table another rule keys otherwise (or this rule
  /// before its key changed) fails in words, never replacing rows by another key; a unique index
  /// made by hand on the key's columns serves, and no second one is made; a table named like the
  /// index of another is no clash.
  @Test func aTableKeyedOtherwiseIsRefusedAndAMatchingIndexServes() async throws {
    let path = "\(temporaryFolder())/iot.db"
    func action(_ settings: String) throws -> SQLiteAction {
      try SQLiteAction(
        configuration: configuration(#"{"database": "\#(path)", \#(settings)}"#), context: context)
    }
    let byDevice = try action(#""table": "latest", "key": "deviceId""#)
    #expect(await byDevice.performBatch(readings([("d1", 1, nil)])) == [nil])
    await byDevice.shutdown()
    let byBoth = try action(#""table": "latest", "key": ["deviceId", "temp"], "update": "columns""#)
    let refused = await byBoth.performBatch(readings([("d1", 2, nil), ("d2", 3, nil)]))
    #expect(refused.allSatisfy { $0?.kind == .permanent }, "\(refused)")
    #expect(
      refused[0]?.message.contains(
        "table 'latest' is keyed by (deviceId) (its index \"latest:key\"), not by this action's key 'deviceId', 'temp'"
      )
        == true, "\(refused)")
    await byBoth.shutdown()
    // A plain table named as the other's index would have been, `latest_key`.
    let plain = try action(#""table": "latest_key""#)
    #expect(await plain.performBatch(readings([("d1", 1, nil)])) == [nil])
    await plain.shutdown()
    // A primary key made by hand on the key's columns (in another order) serves as it is.
    try await DatabaseQueue(path: path).write { db in
      try db.execute(sql: "CREATE TABLE pk (temp INTEGER, deviceId TEXT, PRIMARY KEY (temp, deviceId))")
    }
    let onPK = try action(#""table": "pk", "key": ["deviceId", "temp"]"#)
    #expect(await onPK.performBatch(readings([("d1", 1, 5), ("d1", 1, 6)])) == [nil, nil])
    await onPK.shutdown()
    let (indexes, humidity) = try await DatabaseQueue(path: path).read { db in
      (
        try String.fetchAll(
          db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pk'"),
        try Int.fetchAll(db, sql: "SELECT humidity FROM pk")
      )
    }
    #expect(indexes == ["sqlite_autoindex_pk_1"])
    #expect(humidity == [6])
  }

  /// A SELECT whose every result fails without `columns` is said at check: a SELECT VALUE that is
  /// never an object, more keys than automatic columns go to (check said ok, and every message
  /// went down the error path).
  @Test func aSelectNoRowCanTakeWarns() throws {
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "x.db", "table": "t"}"#), context: context)
    func warnings(_ sql: String) -> [String] {
      action.configurationWarnings(
        in: ActionBuildContext(ruleName: "r", version: .default, variableNames: [], sql: sql)
      ).map(\.message)
    }
    let noObject =
      "rule 'r': the SELECT VALUE gives no object, and without 'columns' each key of an object result is a column: every result would fail; give 'columns', or SELECT keys"
    for sql in [
      "SELECT VALUE concat('a', topic()) FROM 'p/+'", "SELECT VALUE temp * 2 FROM 'p/+'",
      "SELECT VALUE CASE WHEN a THEN 'x' ELSE 1 END FROM 'p/+'",
      "SELECT VALUE (SELECT VALUE v FROM r) FROM 'p'",
    ] {
      #expect(warnings(sql) == [noObject], "\(sql)")
    }
    for sql in [
      "SELECT VALUE state.reported FROM 'p/+'", "SELECT VALUE get(*, 'x') FROM 'p/+'",
      "SELECT VALUE {'a': 1} FROM 'p/+'", "SELECT VALUE CASE WHEN a THEN {'a': 1} ELSE 1 END FROM 'p/+'",
    ] {
      #expect(warnings(sql).isEmpty, "\(sql)")
    }
    let keys = (0..<300).map { "\($0) AS a\($0)" }.joined(separator: ", ")
    #expect(
      warnings("SELECT \(keys) FROM 'p'") == [
        "rule 'r': the SELECT gives 300 keys, each a column, and automatic columns stop at 256: every result would fail unless the table has these columns already; give 'columns'"
      ])
    #expect(
      warnings("SELECT \(keys.split(separator: ",").prefix(256).joined(separator: ",")) FROM 'p'").isEmpty)
  }

  /// A key column the SELECT's known keys lack is said at check (every result would fail); a
  /// SELECT whose keys are not known (`*`), or an error action (it receives records), says nothing.
  @Test func aKeyTheSelectNeverGivesWarns() throws {
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "x.db", "table": "t", "key": ["DeviceId", "site"]}"#),
      context: context)
    func warnings(_ sql: String, errorAction: Bool = false) -> [String] {
      action.configurationWarnings(
        in: ActionBuildContext(
          ruleName: "r", version: .default, variableNames: [], isErrorAction: errorAction, sql: sql)
      ).map(\.message)
    }
    #expect(
      warnings("SELECT deviceId, temp, upper(s) AS level FROM 'a/+'") == [
        "rule 'r': key column 'site' is not one of the SELECT's keys (deviceId, temp, level): every result would fail for want of it"
      ])
    #expect(warnings("SELECT deviceId, location.site FROM 'a/+'").isEmpty)
    #expect(warnings("SELECT *, 1 AS n FROM 'a/+'").isEmpty)
    #expect(warnings("SELECT deviceId FROM 'a/+'", errorAction: true).isEmpty)
  }

  /// A column named as the row id, by the SELECT, 'columns' or 'key', is said at check: only a
  /// table made with it takes it (check said ok, and every row of a new table failed).
  @Test func aColumnNamedAsTheRowIDWarns() throws {
    func warnings(_ settings: String, _ sql: String = "SELECT a FROM 'a/+'") throws -> [String] {
      let action = try SQLiteAction(
        configuration: configuration(#"{"database": "x.db", "table": "t", \#(settings)}"#), context: context)
      return action.configurationWarnings(
        in: ActionBuildContext(ruleName: "r", version: .default, variableNames: [], sql: sql)
      ).map { "\($0.key): \($0.message)" }
    }
    #expect(
      try warnings(#""key": "rowid""#, "SELECT rowid, v FROM 'a/+'") == [
        "key: rule 'r': column 'rowid' is one of SQLite's names for the row id (rowid, oid, _rowid_): only a table made with that column takes it (the action makes no such column)"
      ])
    #expect(
      try warnings(#""columns": {"OID": "${o}", "v": "${v}"}"#).map {
        $0.hasPrefix("columns: rule 'r': column 'OID'")
      }
        == [true])
    #expect(try warnings(#""busyTimeoutMs": 500"#, "SELECT _rowid_, v FROM 'a/+'").count == 1)
    #expect(try warnings(#""busyTimeoutMs": 500"#, "SELECT oidx, v FROM 'a/+'").isEmpty)
    // Keys of the SELECT that no column takes: one past 128 bytes, two that differ only in case.
    let long = String(repeating: "x", count: 129)
    let refused = try warnings(#""busyTimeoutMs": 500"#, "SELECT a AS x, b AS X, c AS \(long) FROM 'a/+'")
    #expect(refused.count == 2, "\(refused)")
    #expect(refused.first?.contains("is not a valid column name (longer than 128 bytes)") == true)
    #expect(refused.last?.contains("keys 'x' and 'X' name one SQLite column") == true)
    #expect(
      try warnings(#""columns": {"x": "${a}", "y": "${b}"}"#, "SELECT a AS x, b AS X FROM 'a/+'").isEmpty)
    // A path a shell would expand: no shell does here.
    let home = try SQLiteAction(
      configuration: configuration(#"{"database": "~/iot.db", "table": "t"}"#), context: context)
    #expect(
      home.configurationWarnings(
        in: ActionBuildContext(
          ruleName: "r", version: .default, variableNames: [], sql: "SELECT a FROM 'a/+'")
      ).map(\.message) == [
        "rule 'r': 'database' '~/iot.db' begins with '~', which no shell expands here: it names a folder '~' below the folder the daemon runs in; write the whole path"
      ])
    let other = try SQLiteAction(
      configuration: configuration(#"{"database": "~iot/data/iot.db", "table": "t"}"#), context: context)
    #expect(
      other.configurationWarnings(
        in: ActionBuildContext(
          ruleName: "r", version: .default, variableNames: [], sql: "SELECT a FROM 'a/+'")
      ).map(\.message) == [
        "rule 'r': 'database' '~iot/data/iot.db' begins with '~iot', which no shell expands here: it names a folder '~iot' below the folder the daemon runs in; write the whole path"
      ])
  }

  /// An error action's `columns` reach none of the error record's fields: its rows said a failure
  /// happened, not which, and kept no message (check said ok, and the rows were empty but a topic).
  @Test func anErrorActionsColumnsWarn() throws {
    func warnings(_ settings: String, errorAction: Bool) throws -> [String] {
      let action = try SQLiteAction(
        configuration: configuration(#"{"database": "x.db", "table": "t", \#(settings)}"#), context: context)
      return action.configurationWarnings(
        in: ActionBuildContext(
          ruleName: "r", version: .default, variableNames: [], isErrorAction: errorAction,
          sql: "SELECT a FROM 'a'")
      ).map { "\($0.key): \($0.message)" }
    }
    #expect(
      try warnings(#""columns": {"topic": "${topic()}"}"#, errorAction: true) == [
        "columns: rule 'r': an error action's 'columns' are templates over the incoming message, as every template is, and reach none of the error record's fields (ruleName, failures, base64OriginalPayload): leave 'columns' out to store the record's fields as columns"
      ])
    #expect(try warnings(#""columns": {"topic": "${topic()}"}"#, errorAction: false).isEmpty)
    #expect(try warnings(#""busyTimeoutMs": 500"#, errorAction: true).isEmpty)
  }

  /// `key` and `update` are checked where they are written.
  @Test func keySettingsAreChecked() throws {
    for (settings, expected) in [
      (#""key": []"#, "'key' must be a column name or a non-empty list of column names"),
      (#""key": [1]"#, "'key' must be a column name or a non-empty list of column names"),
      (#""key": ["a", "A"]"#, "key column 'A' is named twice"),
      (#""update": "columns""#, "'update' says what a result with a known key does: it needs 'key'"),
      (#""key": "a", "update": "merge""#, "'update' must be \"row\" or \"columns\""),
      (#""key": "b", "columns": {"a": "${a}"}"#, "key column 'b' is not one of 'columns'"),
      (#""key": "${deviceId}""#, #"key column '${deviceId}' is a template"#),
      // Rendered without the secret store, a secret was NULL.
      (
        #""columns": {"s": "${get_secret('e')}"}"#,
        "sqlite.columns.s: get_secret is read only in the http, kafka and republish actions' settings"
      ),
      (
        #""key": [\#((0..<65).map { "\"c\($0)\"" }.joined(separator: ","))]"#,
        "a key has at most 64 columns, this one has 65"
      ),
      (#""key": "${deviceId}""#, #"write "deviceId""#),
    ] {
      do {
        _ = try SQLiteAction(
          configuration: configuration(#"{"database": "x.db", "table": "t", \#(settings)}"#), context: context
        )
        Issue.record("accepted \(settings)")
      } catch {
        let messages = ([error] + error.further).map(\.message)
        #expect(messages.contains { $0.contains(expected) }, "\(settings): \(messages)")
      }
    }
  }
}

extension ActionError: Equatable {
  /// Same kind and message (what the tests compare).
  public static func == (lhs: ActionError, rhs: ActionError) -> Bool {
    lhs.kind == rhs.kind && lhs.message == rhs.message
  }
}
