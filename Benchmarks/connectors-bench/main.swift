// The connector figures (`make bench-connectors`): `iotrules run` end to end on MQTT against
// `mosquitto_sub` on the same stream in the same run, on Kafka against `kcat -C` on the same topic,
// and the latency from publish to action at a fixed rate. Every peer runs on 127.0.0.1 and is
// stopped by its PID; every wait is bounded.
//
// Usage: connectors-bench IOTRULES_BINARY [--messages N] [--kafka-messages N] [--kafka-action-messages N]
//        [--rate R] [--seconds S]
import Connectors
import Foundation
import RulesEngine
import Synchronization
import TestSupport

struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Monotonic nanoseconds, the same clock in every process of the machine.
func monotonicNanoseconds() -> UInt64 {
  var time = timespec()
  clock_gettime(CLOCK_MONOTONIC, &time)
  return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// A time stamp shared with a callback.
final class Stamp: Sendable {
  private let value = Mutex<UInt64>(0)
  func set(_ nanoseconds: UInt64) { value.withLock { $0 = nanoseconds } }
  func get() -> UInt64 { value.withLock { $0 } }
}

func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }

func arguments() -> (binary: String, options: [String: Int]) {
  var options = [
    "--messages": 200_000, "--kafka-messages": 200_000, "--kafka-action-messages": 100_000, "--rate": 10_000,
    "--seconds": 5,
  ]
  let list = Array(CommandLine.arguments.dropFirst())
  guard let binary = list.first else {
    FileHandle.standardError.write(Data("usage: connectors-bench IOTRULES_BINARY [--messages N] ...\n".utf8))
    exit(64)
  }
  var index = 1
  while index + 1 < list.count {
    if options[list[index]] != nil, let value = Int(list[index + 1]) { options[list[index]] = value }
    index += 2
  }
  return (binary, options)
}

/// The newlines in `data`, counted over its raw bytes: the harness shares the machine with what it
/// measures, so it must stay cheap (a closure per byte through `Data`'s iterator is not).
func newlines(in data: Data) -> Int {
  data.withUnsafeBytes { bytes in
    var count = 0
    for byte in bytes where byte == 10 { count += 1 }
    return count
  }
}

/// Counts the lines of a growing file, reading only what was appended.
final class LineCounter {
  let path: String
  var offset: UInt64 = 0
  var lines = 0
  init(path: String) { self.path = path }

  func poll() -> Int {
    guard let handle = FileHandle(forReadingAtPath: path) else { return lines }
    defer { try? handle.close() }
    try? handle.seek(toOffset: offset)
    let data = handle.readDataToEndOfFile()
    offset += UInt64(data.count)
    lines += newlines(in: data)
    return lines
  }

  /// Polls every millisecond until `count` lines or `timeout` seconds; returns the time the count
  /// was first seen and the time the first line was seen.
  func wait(for count: Int, timeout: Double) -> (first: UInt64?, last: UInt64?) {
    let deadline = monotonicNanoseconds() + UInt64(timeout * 1e9)
    var first: UInt64?
    while monotonicNanoseconds() < deadline {
      let seen = poll()
      if seen > 0 && first == nil { first = monotonicNanoseconds() }
      if seen >= count { return (first, monotonicNanoseconds()) }
      usleep(1000)
    }
    return (first, nil)
  }
}

/// A started `iotrules run` with its log in `folder`.
func startDaemon(_ binary: String, folder: URL, _ extra: [String]) throws -> pid_t {
  try ProcessSupport.spawn(
    binary,
    [
      "run", "--rules", folder.appendingPathComponent("rules").path, "--dead-letter",
      folder.appendingPathComponent("dead-letter.jsonl").path,
    ] + extra,
    logFile: folder.appendingPathComponent("daemon.log").path)
}

func waitForLog(_ path: String, containing text: String, timeout: Double) throws {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if let log = try? String(contentsOfFile: path, encoding: .utf8), log.contains(text) { return }
    usleep(20_000)
  }
  throw BenchError("'\(text)' did not appear in \(path) within \(timeout) s")
}

func writeRule(_ folder: URL, _ name: String, _ json: String) throws {
  let rules = folder.appendingPathComponent("rules")
  try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
  try json.write(to: rules.appendingPathComponent(name), atomically: true, encoding: .utf8)
}

func payload(_ index: Int) -> [UInt8] {
  Array(
    #"{"deviceId":"dev-\#(index % 16)","seq":\#(index),"temp":\#(20 + index % 17),"humidity":\#(40 + index % 23),"status":"ok","site":"plant-7"}"#
      .utf8)
}

/// MQTT: the daemon archiving every message to a file, and mosquitto_sub, on one stream of `count`
/// QoS 0 messages published at full speed. Rates are counted from the first publish.
func mqttThroughput(binary: String, count: Int) async throws -> String {
  let broker = try MosquittoBroker()
  defer { broker.stop() }
  let folder = try ProcessSupport.temporaryFolder("bench-mqtt")
  let archive = folder.appendingPathComponent("archive.jsonl").path
  try writeRule(
    folder, "archive.json",
    #"{"sql": "SELECT * FROM 'bench/#'", "actions": [{"file": {"path": "\#(archive)", "fsync": "never"}}]}"#)
  let daemon = try startDaemon(
    binary, folder: folder, ["--source", broker.url, "--client-id", "bench-daemon", "--clean-session"])
  defer { ProcessSupport.stop(pid: daemon) }
  try waitForLog(folder.appendingPathComponent("daemon.log").path, containing: "subscribed on", timeout: 30)
  let subscriber = Process()
  subscriber.executableURL = URL(
    fileURLWithPath: try ProcessSupport.locate("mosquitto_sub", package: "mosquitto-clients"))
  subscriber.arguments = [
    "-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "bench/#", "-q", "1", "-C", "\(count)",
  ]
  subscriber.standardOutput = FileHandle.nullDevice
  let subscriberDone = Stamp()
  subscriber.terminationHandler = { _ in subscriberDone.set(monotonicNanoseconds()) }
  try subscriber.run()
  defer { if subscriber.isRunning { kill(subscriber.processIdentifier, SIGKILL) } }
  try await Task.sleep(for: .seconds(1))

  let publisher = MQTTPublisher(
    options: MQTTOptions(host: "127.0.0.1", port: broker.port, clientID: "bench-pub"))
  try await publisher.start()
  defer { publisher.shutdown() }
  let start = monotonicNanoseconds()
  for index in 0..<count {
    try await publisher.publish(
      topic: "bench/dev-\(index % 16)/data", payload: payload(index), qos: 0, retain: false,
      properties: PublishProperties())
  }
  let published = monotonicNanoseconds()
  let counter = LineCounter(path: archive)
  let (_, daemonDone) = counter.wait(for: count, timeout: 120)
  let deadline = Date().addingTimeInterval(60)
  while subscriberDone.get() == 0 && Date() < deadline { usleep(1000) }
  let subscriberEnd = subscriberDone.get()
  guard let daemonDone else {
    throw BenchError("MQTT: the daemon archived \(counter.poll()) of \(count) messages within 120 s")
  }
  guard subscriberEnd != 0 else { throw BenchError("MQTT: mosquitto_sub did not receive \(count) messages") }
  let publishRate = Double(count) / seconds(published - start)
  let daemonRate = Double(count) / seconds(daemonDone - start)
  let subscriberRate = Double(count) / seconds(subscriberEnd - start)
  return String(
    format:
      "MQTT QoS 0, %d msgs of %d bytes: publisher %.0f msg/s; iotrules run (rule archiving to a file) %.0f msg/s; "
      + "mosquitto_sub %.0f msg/s (same stream, same run); ratio %.2f",
    count, payload(0).count, publishRate, daemonRate, subscriberRate, daemonRate / subscriberRate)
}

/// Kafka: `count` records of librdkafka's mock cluster (hosted here), read by
/// `kcat -C` and then by the daemon archiving to a file (16 partitions keep each under the mock's 5 MiB); each rate from its first record to its last.
func kafkaThroughput(binary: String, count: Int) async throws -> String {
  let cluster = try KafkaMockCluster()
  defer { cluster.stop() }
  try cluster.createTopic("bench", partitions: 16)
  let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
  defer { producer.close() }
  let window = 2000
  var next = 0
  while next < count {
    let batch = next..<min(next + window, count)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for index in batch {
        group.addTask {
          try await producer.produce(
            topic: "bench", key: Array("bench/dev-\(index % 16)/data".utf8), value: payload(index),
            partition: Int32(index % 16))
        }
      }
      try await group.waitForAll()
    }
    next = batch.upperBound
  }

  // kcat reads the whole topic; its rate runs from its first output line to its last.
  let kcat = Process()
  kcat.executableURL = URL(fileURLWithPath: try ProcessSupport.locate("kcat", package: "kcat"))
  // kcat gets the fetch setting iotrules uses by default (`queued.min.messages`): both read with
  // the same librdkafka configuration.
  kcat.arguments = [
    "-C", "-b", cluster.bootstrapServers, "-t", "bench", "-o", "beginning", "-e", "-q", "-f", "%s\n",
    "-X", "queued.min.messages=1000000",
  ]
  let pipe = Pipe()
  kcat.standardOutput = pipe
  try kcat.run()
  var kcatLines = 0
  var kcatFirst: UInt64?
  var kcatLast: UInt64 = 0
  let reader = pipe.fileHandleForReading
  while true {
    let data = reader.availableData
    if data.isEmpty { break }
    let now = monotonicNanoseconds()
    if kcatFirst == nil { kcatFirst = now }
    kcatLines += newlines(in: data)
    kcatLast = now
  }
  kcat.waitUntilExit()
  guard kcatLines == count, let kcatFirst else {
    throw BenchError("Kafka: kcat read \(kcatLines) of \(count) records")
  }

  let folder = try ProcessSupport.temporaryFolder("bench-kafka")
  let archive = folder.appendingPathComponent("archive.jsonl").path
  try writeRule(
    folder, "archive.json",
    #"{"sql": "SELECT * FROM 'bench/#'", "actions": [{"file": {"path": "\#(archive)", "fsync": "never"}}]}"#)
  let daemon = try startDaemon(
    binary, folder: folder,
    ["--source", "kafka://\(cluster.bootstrapServers)/bench?group=bench-\(UUID().uuidString.prefix(6))"])
  defer { ProcessSupport.stop(pid: daemon) }
  let counter = LineCounter(path: archive)
  let (daemonFirst, daemonLast) = counter.wait(for: count, timeout: 180)
  guard let daemonFirst, let daemonLast else {
    throw BenchError("Kafka: the daemon archived \(counter.poll()) of \(count) records within 180 s")
  }
  let kcatRate = Double(count) / seconds(max(kcatLast - kcatFirst, 1))
  let daemonRate = Double(count) / seconds(max(daemonLast - daemonFirst, 1))
  return String(
    format:
      "Kafka mock, %d records, 16 partitions: iotrules run (archive to a file) %.0f msg/s; kcat -C %.0f msg/s; ratio %.2f "
      + "(first record to last; the daemon's 3 s group join excluded)",
    count, daemonRate, kcatRate, daemonRate / kcatRate)
}

/// The kafka action: `count` replayed messages through a rule whose action produces each to a topic
/// of the mock cluster (hosted here), against `kcat -P` producing the same payloads with the same
/// producer settings (acks=all, idempotence, linger 1 ms). Each rate is the whole process's wall
/// time: start, produce every record, have every delivery report, exit.
func kafkaActionThroughput(binary: String, count: Int) async throws -> String {
  let cluster = try KafkaMockCluster()
  defer { cluster.stop() }
  try cluster.createTopic("out", partitions: 1)
  try cluster.createTopic("kcat-out", partitions: 1)
  let folder = try ProcessSupport.temporaryFolder("bench-kafka-action")
  let feed = folder.appendingPathComponent("feed.jsonl")
  let payloads = folder.appendingPathComponent("payloads.txt")
  var feedText = ""
  var payloadText = ""
  for index in 0..<count {
    let body = String(decoding: payload(index), as: UTF8.self)
    feedText += #"{"topic":"bench/dev-\#(index % 16)/data","payload":\#(body)}"# + "\n"
    payloadText += body + "\n"
  }
  try feedText.write(to: feed, atomically: true, encoding: .utf8)
  try payloadText.write(to: payloads, atomically: true, encoding: .utf8)
  try writeRule(
    folder, "produce.json",
    #"{"sql": "SELECT * FROM 'bench/#'", "actions": [{"kafka": {"bootstrapServers": "\#(cluster.bootstrapServers)", "topic": "out"}}]}"#
  )

  func timed(_ path: String, _ arguments: [String]) throws -> (seconds: Double, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    let start = monotonicNanoseconds()
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let elapsed = seconds(monotonicNanoseconds() - start)
    guard process.terminationStatus == 0 else {
      throw BenchError("\(path) exited with \(process.terminationStatus)")
    }
    return (elapsed, String(decoding: output, as: UTF8.self))
  }

  let kcat = try timed(
    try ProcessSupport.locate("kcat", package: "kcat"),
    [
      "-P", "-b", cluster.bootstrapServers, "-t", "kcat-out", "-l", payloads.path, "-X", "acks=all", "-X",
      "enable.idempotence=true", "-X", "linger.ms=1",
    ])
  let daemon = try timed(
    binary,
    [
      "run", "--rules", folder.appendingPathComponent("rules").path, "--source", "file:" + feed.path,
      "--dead-letter", folder.appendingPathComponent("dead-letter.jsonl").path, "--log-level", "error",
    ])
  guard daemon.output.contains("\(count) acknowledged"), daemon.output.contains(" 0 error records") else {
    throw BenchError("kafka action: not every result was delivered: \(daemon.output)")
  }
  let daemonRate = Double(count) / daemon.seconds
  let kcatRate = Double(count) / kcat.seconds
  return String(
    format:
      "Kafka action, %d replayed messages, mock cluster: iotrules run (rule -> kafka action) %.0f msg/s; "
      + "kcat -P (same payloads, same producer settings) %.0f msg/s; ratio %.2f (whole processes)",
    count, daemonRate, kcatRate, daemonRate / kcatRate)
}

/// Latency from publish to action: the rule republishes each message and this process, which
/// published it with its send time, times its arrival. Messages go out at `rate` per second, in
/// bursts every millisecond, for `duration` seconds.
///
/// With `direct`, no daemon runs and this process subscribes to what it publishes: the latency of
/// the broker, the machine and this harness alone, the floor under the daemon's figure.
func latency(binary: String, rate: Int, duration: Int, direct: Bool) async throws -> String {
  let broker = try MosquittoBroker()
  defer { broker.stop() }
  let folder = try ProcessSupport.temporaryFolder("bench-latency")
  var daemon: Int32?
  if !direct {
    try writeRule(
      folder, "echo.json",
      #"{"sql": "SELECT * FROM 'lat/#'", "actions": [{"republish": {"topic": "latout/${topic(2)}", "qos": 0}}]}"#
    )
    daemon = try startDaemon(
      binary, folder: folder, ["--source", broker.url, "--client-id", "bench-latency", "--clean-session"])
    try waitForLog(folder.appendingPathComponent("daemon.log").path, containing: "subscribed on", timeout: 30)
  }
  defer { if let daemon { ProcessSupport.stop(pid: daemon) } }

  let samples = Mutex<[UInt64]>([])
  samples.withLock { $0.reserveCapacity(rate * duration) }
  let watcher = MQTTSource(
    options: MQTTOptions(
      host: "127.0.0.1", port: broker.port, clientID: "bench-watch", persistentSession: false),
    filters: [direct ? "lat/#" : "latout/#"], qos: 0)
  // Timed on the network thread as each message arrives, without a task switch.
  let record: @Sendable (Message) -> Bool = { message in
    let now = monotonicNanoseconds()
    // Payload: {"t":NANOSECONDS,"i":INDEX}
    let text = String(decoding: message.payload, as: UTF8.self)
    if let start = text.range(of: "\"t\":"), let end = text[start.upperBound...].firstIndex(of: ","),
      let sent = UInt64(text[start.upperBound..<end])
    {
      samples.withLock { $0.append(now &- sent) }
    }
    return true
  }
  let watching = Task {
    try await watcher.run(intake: MessageIntake(deliver: { _ = record($0) }, tryDeliver: record))
  }
  defer { watching.cancel() }
  try await Task.sleep(for: .seconds(1))
  let publisher = MQTTPublisher(
    options: MQTTOptions(host: "127.0.0.1", port: broker.port, clientID: "bench-lat-pub"))
  try await publisher.start()
  defer { publisher.shutdown() }
  let total = rate * duration
  let perTick = max(1, rate / 1000)
  let start = monotonicNanoseconds()
  var sent = 0
  var tick: UInt64 = 0
  while sent < total {
    let due = start + tick * 1_000_000
    let now = monotonicNanoseconds()
    if due > now { try await Task.sleep(for: .nanoseconds(Int64(due - now))) }
    for _ in 0..<perTick where sent < total {
      let body = #"{"t":\#(monotonicNanoseconds()),"i":\#(sent),"deviceId":"dev-\#(sent % 16)","temp":21.5}"#
      try await publisher.publish(
        topic: "lat/dev-\(sent % 16)", payload: Array(body.utf8), qos: 0, retain: false,
        properties: PublishProperties())
      sent += 1
    }
    tick += 1
  }
  let achieved = Double(sent) / seconds(monotonicNanoseconds() - start)
  let deadline = Date().addingTimeInterval(10)
  while samples.withLock({ $0.count }) < total && Date() < deadline {
    try await Task.sleep(for: .milliseconds(10))
  }
  let sorted = samples.withLock { $0 }.sorted()
  guard !sorted.isEmpty else { throw BenchError("latency: no republished message arrived") }
  func percentile(_ p: Double) -> Double {
    Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
  }
  return String(
    format:
      "Latency %@, QoS 0, %.0f msg/s for %d s: p50 %.2f ms, p99 %.2f ms, "
      + "p99.9 %.2f ms, max %.2f ms (%d of %d received)",
    direct
      ? "publish -> broker -> subscriber (no daemon, the floor)"
      : "publish -> rule -> republish -> subscriber",
    achieved, duration, percentile(0.5), percentile(0.99), percentile(0.999), percentile(1), sorted.count,
    total)
}

let (binary, options) = arguments()
do {
  print(try await mqttThroughput(binary: binary, count: options["--messages"]!))
  print(try await kafkaThroughput(binary: binary, count: options["--kafka-messages"]!))
  print(try await kafkaActionThroughput(binary: binary, count: options["--kafka-action-messages"]!))
  for direct in [true, false] {
    print(
      try await latency(
        binary: binary, rate: options["--rate"]!, duration: options["--seconds"]!, direct: direct))
  }
} catch {
  FileHandle.standardError.write(Data("connectors-bench: \(error)\n".utf8))
  exit(1)
}
