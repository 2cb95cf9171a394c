import Foundation
import GRDB
import IoTSQL
import RulesEngine
import Testing

@testable import Actions

struct SQLiteActionTests {
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

  @Test func hostileKeysAreRefusedNotInterpolated() async throws {
    let folder = temporaryFolder()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/iot.db", "table": "t"}"#), context: context)
    let results = await action.performBatch([
      input(object([("a\"; DROP TABLE t; --", .int(1))]), json: "{}"),
      input(object([("a", .string("'); DROP TABLE t; --"))]), json: "{}"),
    ])
    #expect(results[0]?.kind == .permanent)
    #expect(results[0]?.message.contains("not a valid column name") == true)
    #expect(results[1] == nil)
    let queue = try DatabaseQueue(path: "\(folder)/iot.db")
    #expect(
      try await queue.read { db in try String.fetchOne(db, sql: "SELECT a FROM t") } == "'); DROP TABLE t; --"
    )
  }

  @Test func readOnlyDatabaseIsAPermanentFailure() async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/ro.db"
    let setup = try DatabaseQueue(path: path)
    try await setup.write { db in try db.execute(sql: "CREATE TABLE t (a)") }
    try setup.close()
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "file:\#(path)?mode=ro", "table": "t"}"#), context: context)
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .permanent)
    #expect(error?.message.contains("readonly") == true, "\(String(describing: error))")
  }

  @Test func lockedDatabaseIsATransientFailure() async throws {
    let folder = temporaryFolder()
    let path = "\(folder)/locked.db"
    var holderConfiguration = Configuration()
    holderConfiguration.allowsUnsafeTransactions = true
    let holder = try DatabaseQueue(path: path, configuration: holderConfiguration)
    try await holder.write { db in try db.execute(sql: "CREATE TABLE t (a)") }
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(path)", "table": "t", "busyTimeoutMs": 50}"#),
      context: context)
    try holder.inDatabase { db in try db.execute(sql: "BEGIN EXCLUSIVE") }
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .transient)
    #expect(error?.message.contains("locked") == true, "\(String(describing: error))")
    try holder.inDatabase { db in try db.execute(sql: "ROLLBACK") }
    #expect(await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0] == nil)
  }

  @Test func databaseUnderARegularFileFails() async throws {
    let folder = temporaryFolder()
    _ = FileManager.default.createFile(atPath: "\(folder)/plain", contents: Data("x".utf8))
    let action = try SQLiteAction(
      configuration: configuration(#"{"database": "\#(folder)/plain/iot.db", "table": "t"}"#),
      context: context)
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .permanent)
    #expect(error?.message.contains("Not a directory") == true, "\(String(describing: error))")
  }

  @Test(arguments: [
    (#"{"table": "t"}"#, "missing key 'database'"),
    (#"{"database": "x.db", "table": "bad name"}"#, "invalid table name 'bad name'"),
    (#"{"database": "x.db", "table": "t", "colums": {}}"#, "unknown key 'colums'"),
    (#"{"database": "x.db", "table": "t", "columns": {"1x": "a"}}"#, "invalid column name '1x'"),
  ])
  func configurationErrors(_ text: String, _ expected: String) {
    do {
      _ = try SQLiteAction(configuration: configuration(text), context: context)
      Issue.record("no error for \(text)")
    } catch {
      #expect(error.message.contains(expected), "\(error.message)")
    }
  }
}

extension ActionError: Equatable {
  public static func == (lhs: ActionError, rhs: ActionError) -> Bool {
    lhs.kind == rhs.kind && lhs.message == rhs.message
  }
}
