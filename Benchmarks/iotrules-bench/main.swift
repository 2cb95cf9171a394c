// iotrules-bench: the engine's side of `make bench`. Benchmarks/bench.py drives it and runs the Python
// counterparts in the same run.
//
//   iotrules-bench rules FILE SQL...        payloads (one a line) through each statement: parse the
//                                           payload, evaluate, serialize; prints `msgs/s` per statement
//   iotrules-bench functions FILE EXPR...   each expression as a template over each payload: calls/s
//   iotrules-bench sqlite-action FEED SQL DB
//                                           the sqlite action alone: the rule's results over the
//                                           replay lines of FEED are built first, then written to a
//                                           new table in DB in batches of 4,096 (the dispatcher's
//                                           largest): rows/s of the writing alone
//   iotrules-bench sqlite-ceiling ROWS DB [PER]
//                                           the database's own rate: ROWS rows of the daemon
//                                           benchmark's shape, built before the clock starts,
//                                           inserted through SQLite's C API with one prepared
//                                           statement of PER rows (default 1), 1,000 a
//                                           transaction, WAL and synchronous=NORMAL
//
// Output: one JSON object a line, {"sql" | "expression", "per_second", "outputs", "seconds",
// "allocations_per_message"} (the last when jemalloc keeps statistics: one untimed pass's requests
// to the allocator, divided by its messages).
import Actions
import CJemallocConfig
import Foundation
import GRDBSQLite
import IoTSQL
import RulesEngine

/// What one measurement gives: messages per second, outputs, seconds, and allocations per message
/// (nil without jemalloc's statistics).
struct Measurement {
  var rate: Double
  var outputs: Int
  var seconds: Double
  var allocations: Double?
}

/// How long each measurement runs at least: `IOTRULES_BENCH_SECONDS` (default 1.5). Short runs,
/// many of them interleaved, compare two builds on a shared machine (`Benchmarks/ab_core.py`).
let benchSeconds = ProcessInfo.processInfo.environment["IOTRULES_BENCH_SECONDS"].flatMap(Double.init) ?? 1.5

/// Runs `body` over the payloads until at least `minimum` seconds have passed. After a warm-up pass,
/// one untimed pass counts the allocator's requests (the whole process's: this thread is its only
/// busy one).
func measure(payloads: [[UInt8]], minimum: Double = benchSeconds, _ body: ([UInt8]) -> Int) -> Measurement {
  let clock = ContinuousClock()
  // Warm-up pass.
  var sink = 0
  for payload in payloads { sink &+= body(payload) }
  var allocations: Double?
  let before = iotrules_allocation_count()
  for payload in payloads { sink &+= body(payload) }
  let after = iotrules_allocation_count()
  if before >= 0, after >= before, !payloads.isEmpty {
    allocations = Double(after - before) / Double(payloads.count)
  }
  var processed = 0
  var outputs = 0
  let start = clock.now
  var elapsed = 0.0
  while elapsed < minimum {
    for payload in payloads { outputs &+= body(payload) }
    processed += payloads.count
    let duration = clock.now - start
    elapsed = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  }
  if sink == -1 { print("") }
  return Measurement(
    rate: Double(processed) / elapsed, outputs: outputs, seconds: elapsed, allocations: allocations)
}

func readPayloads(_ path: String) -> [[UInt8]] {
  guard let data = FileManager.default.contents(atPath: path) else {
    FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
    exit(74)
  }
  return data.split(separator: UInt8(ascii: "\n")).map { [UInt8]($0) }
}

func report(_ key: String, _ text: String, _ result: Measurement) {
  var object: OrderedObject = [
    key: .string(text), "per_second": .int(Int(result.rate)), "outputs": .int(result.outputs),
    "seconds": .decimal(SQLDecimal(string: String(format: "%.3f", result.seconds)) ?? 0),
  ]
  if let allocations = result.allocations {
    object["allocations_per_message"] = .decimal(SQLDecimal(string: String(format: "%.2f", allocations)) ?? 0)
  }
  print(JSONWriter.string(.object(object)))
}

/// The sqlite action alone over pre-built results: what the database and the action's own code
/// cost, without the replay, the rule and the dispatcher before them.
func benchSQLiteAction(feed: String, sql: String, database: String) async {
  let program: Program
  do {
    program = try Compiler.compile(sql)
  } catch {
    FileHandle.standardError.write(Data((error.description + "\n").utf8))
    exit(65)
  }
  var machine = VirtualMachine()
  var inputs: [ActionInput] = []
  for line in readPayloads(feed) {
    guard case .object(let record)? = try? JSONReader.parse(line), case .string(let topic)? = record["topic"],
      let payload = record["payload"]
    else { continue }
    var timestamp = 0
    if case .int(let value)? = record["timestamp"] { timestamp = value }
    let message = Message(
      topic: topic, payload: Array(JSONWriter.string(payload).utf8), receivedAtMs: timestamp)
    // As the daemon evaluates a rule whose actions all take the value (`Rule.evaluate`): the result
    // is kept as a value, not written out and parsed again by the action.
    guard
      let evaluation = machine.evaluate(
        program, context: message.evaluationContext(), serializesPayload: false, keepsValue: true)
    else { continue }
    inputs.append(ActionInput(ruleName: "bench", evaluation: evaluation, message: message))
  }
  let action: SQLiteAction
  do {
    let configuration = try RuleDocument.parseJSON(
      Array(JSONWriter.string(.object(["database": .string(database), "table": .string("high_temps")])).utf8))
    action = try SQLiteAction(
      configuration: configuration,
      context: ActionBuildContext(ruleName: "bench", version: .default, variableNames: []))
  } catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(65)
  }
  let clock = ContinuousClock()
  let start = clock.now
  var failed = 0
  var index = 0
  while index < inputs.count {
    let batch = Array(inputs[index..<min(index + 4096, inputs.count)])
    failed += await action.performBatch(batch).count { $0 != nil }
    index += batch.count
  }
  await action.shutdown()
  let duration = clock.now - start
  let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  if failed > 0 {
    FileHandle.standardError.write(Data("\(failed) rows failed\n".utf8))
    exit(1)
  }
  let object: OrderedObject = [
    "rows": .int(inputs.count), "per_second": .int(Int(Double(inputs.count) / seconds)),
    "seconds": .decimal(SQLDecimal(string: String(format: "%.3f", seconds)) ?? 0),
  ]
  print(JSONWriter.string(.object(object)))
}

/// The rate at which SQLite itself takes the daemon benchmark's rows, with nothing but its C API in
/// the loop, `perStatement` rows a statement: the ceiling for any rule that writes one row per
/// message into one table that way.
func benchSQLiteCeiling(rows count: Int, database: String, perStatement: Int) {
  let rows = (0..<count).map { index in
    (
      device: Array("dev-\(index % 16 < 10 ? "0" : "")\(index % 16)".utf8), temp: 31.5, humidity: 50.0,
      ts: Int64(1_717_200_000_000 + index)
    )
  }
  for suffix in ["", "-wal", "-shm"] { unlink(database + suffix) }
  func check(_ code: Int32, _ what: String) {
    if code != SQLITE_OK && code != SQLITE_DONE {
      FileHandle.standardError.write(Data("sqlite-ceiling: \(what) failed (\(code))\n".utf8))
      exit(1)
    }
  }
  let clock = ContinuousClock()
  let start = clock.now
  var db: OpaquePointer?
  check(sqlite3_open(database, &db), "open")
  check(
    sqlite3_exec(
      db,
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE high_temps (deviceId, temp, humidity, ts)",
      nil, nil, nil), "schema")
  // One statement inserts `perStatement` rows (1000 is a multiple of it, so every transaction's
  // rows fill whole statements).
  func prepare(_ rowCount: Int) -> OpaquePointer? {
    var statement: OpaquePointer?
    let sql =
      "INSERT INTO high_temps VALUES " + Array(repeating: "(?,?,?,?)", count: rowCount).joined(separator: ",")
    check(sqlite3_prepare_v2(db, sql, -1, &statement, nil), "prepare")
    return statement
  }
  let statement = prepare(perStatement)
  var index = 0
  while index < rows.count {
    check(sqlite3_exec(db, "BEGIN", nil, nil, nil), "begin")
    let end = min(index + 1000, rows.count)
    var next = index
    while next < end {
      let group = rows[next..<min(next + perStatement, end)]
      let target = group.count == perStatement ? statement : prepare(group.count)
      for (offset, row) in group.enumerated() {
        let first = Int32(4 * offset)
        row.device.withUnsafeBufferPointer { text in
          _ = text.withMemoryRebound(to: CChar.self) {
            sqlite3_bind_text(target, first + 1, $0.baseAddress, Int32($0.count), nil)
          }
        }
        sqlite3_bind_double(target, first + 2, row.temp)
        sqlite3_bind_double(target, first + 3, row.humidity)
        sqlite3_bind_int64(target, first + 4, row.ts)
      }
      check(sqlite3_step(target), "insert")
      sqlite3_reset(target)
      if target != statement { sqlite3_finalize(target) }
      next += group.count
    }
    check(sqlite3_exec(db, "COMMIT", nil, nil, nil), "commit")
    index = end
  }
  sqlite3_finalize(statement)
  sqlite3_close(db)
  let duration = clock.now - start
  let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  let object: OrderedObject = [
    "rows": .int(count), "per_second": .int(Int(Double(count) / seconds)),
    "seconds": .decimal(SQLDecimal(string: String(format: "%.3f", seconds)) ?? 0),
  ]
  print(JSONWriter.string(.object(object)))
}

let arguments = CommandLine.arguments
if arguments.count >= 4, arguments[1] == "sqlite-ceiling", let rows = Int(arguments[2]), rows > 0 {
  let perStatement = arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1
  benchSQLiteCeiling(rows: rows, database: arguments[3], perStatement: max(1, min(perStatement, 1000)))
  exit(0)
}
if arguments.count == 5, arguments[1] == "sqlite-action" {
  await benchSQLiteAction(feed: arguments[2], sql: arguments[3], database: arguments[4])
  exit(0)
}
guard arguments.count >= 4, ["rules", "functions"].contains(arguments[1]) else {
  FileHandle.standardError.write(
    Data(
      "usage: iotrules-bench rules|functions FILE SQL-or-EXPRESSION... | sqlite-action FEED SQL DB | sqlite-ceiling ROWS DB\n"
        .utf8))
  exit(64)
}
let payloads = readPayloads(arguments[2])

/// Parse payload + evaluate + serialize, per statement. The VM and context are locals of a function:
/// as top-level globals every access would pay a dynamic exclusivity check, which the daemon
/// (whose VMs live in its own frames) never does.
func benchRules(_ statements: ArraySlice<String>) {
  var machine = VirtualMachine()
  for text in statements {
    let program: Program
    do {
      program = try Compiler.compile(text)
    } catch {
      FileHandle.standardError.write(Data((error.description + "\n").utf8))
      exit(65)
    }
    var context = EvaluationContext(
      topic: "sensors/dev-07/data", payload: [], clientID: "dev-07", timestampMs: 1_717_200_000_000)
    let result = measure(payloads: payloads) { payload in
      context.payload = payload
      context.timestampMs &+= 1
      guard let evaluation = machine.evaluate(program, context: context) else { return 0 }
      return evaluation.payload.count > 0 ? 1 : 0
    }
    report("sql", text, result)
  }
}

/// Each expression as a template over each payload.
func benchFunctions(_ expressions: ArraySlice<String>) {
  var machine = VirtualMachine()
  for text in expressions {
    let template: Template
    do {
      template = try Template.compile("${" + text + "}")
    } catch {
      FileHandle.standardError.write(Data((error.description + "\n").utf8))
      exit(65)
    }
    var context = EvaluationContext(topic: "sensors/dev-07/data", payload: [], timestampMs: 1_585_903_518_000)
    let result = measure(payloads: payloads) { payload in
      context.payload = payload
      return ((try? template.render(context: context, variables: [], using: &machine))?.utf8.count ?? 0) > 0
        ? 1 : 0
    }
    report("expression", text, result)
  }
}

if arguments[1] == "rules" {
  benchRules(arguments[3...])
} else {
  benchFunctions(arguments[3...])
}
