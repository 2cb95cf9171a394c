import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization
import Testing

@testable import Connectors

@Suite("MQTT spool") struct MQTTSpoolTests {
  func spoolPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString).state").path
  }

  func lines(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
  }

  /// What is not done comes back at the next open, in order, with everything the rules read of it;
  /// a line a kill cut short is skipped; once nothing is open the file is empty.
  @Test func unfinishedMessagesComeBackWhole() throws {
    let path = spoolPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let first = MQTTSpool(path: path, logger: Logger(label: "test"))
    #expect(try first.open().isEmpty)
    var message = Message(
      topic: "plant/a", payload: [0xFF, 0x00, 0x7B], clientID: "dev-1", receivedAtMs: 1_700_000_000_123,
      mqttProperties: ["content_type": .string("application/cbor")],
      userProperties: [("k", "v1"), ("k", "v2")])
    message.traceID = "trace-1"
    let numbers = (0..<3).compactMap { index -> UInt64? in
      var copy = message
      copy.topic = "plant/\(index)"
      return first.keep(copy)
    }
    #expect(numbers == [1, 2, 3])
    first.finish(2)
    #expect(lines(path).count == 4)
    first.close()
    // A kill in the middle of a write.
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(#"{"seq":4,"topic":"pla"#.utf8))
    try handle.close()

    let second = MQTTSpool(path: path, logger: Logger(label: "test"))
    let left = try second.open()
    #expect(left.map(\.sequence) == [1, 3])
    #expect(left.map(\.message.topic) == ["plant/0", "plant/2"])
    let back = try #require(left.first?.message)
    #expect(back.payload == [0xFF, 0x00, 0x7B])
    #expect(back.clientID == "dev-1" && back.traceID == "trace-1" && back.receivedAtMs == 1_700_000_000_123)
    #expect(back.mqttProperties == ["content_type": .string("application/cbor")])
    #expect(back.userProperties.map { "\($0.key)=\($0.value)" } == ["k=v1", "k=v2"])
    // Rewritten with the open ones alone; numbering goes on after the highest seen.
    #expect(lines(path).count == 2)
    #expect(second.keep(message) == 5)
    for number: UInt64 in [1, 3, 5] { second.finish(number) }
    #expect(lines(path).isEmpty)
    second.close()
    #expect(try MQTTSpool(path: path, logger: Logger(label: "test")).open().isEmpty)
  }

  /// One process a spool: a second that opens it is refused while the first holds it, and said
  /// to be in use; once the first lets it go, it opens.
  @Test func aSpoolInUseIsRefused() throws {
    let path = spoolPath()
    defer {
      try? FileManager.default.removeItem(atPath: path)
      try? FileManager.default.removeItem(atPath: path + ".lock")
    }
    let first = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try first.open()
    #expect(MQTTSpool.isInUse(path))
    #expect {
      try MQTTSpool(path: path, logger: Logger(label: "test")).open()
    } throws: {
      "\($0)".contains("is in use by another iotrules run")
    }
    first.close()
    #expect(!MQTTSpool.isInUse(path))
    #expect(try MQTTSpool(path: path, logger: Logger(label: "test")).open().isEmpty)
  }

  /// Another daemon's start probing the lock (taking it shared for a moment) does not leave this
  /// one without its spool: the open waits it out, and the leftover message is run again.
  @Test func aMomentaryProbeOfTheLockIsWaitedOut() throws {
    let path = spoolPath()
    defer {
      try? FileManager.default.removeItem(atPath: path)
      try? FileManager.default.removeItem(atPath: path + ".lock")
    }
    let first = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try first.open()
    _ = first.keep(Message(topic: "left", payload: [1], receivedAtMs: 0))
    first.close()
    let probe = open(path + ".lock", O_RDONLY | O_CLOEXEC)
    defer { close(probe) }
    #expect(flock(probe, LOCK_SH | LOCK_NB) == 0)
    let release = Thread {
      usleep(50_000)
      flock(probe, LOCK_UN)
    }
    release.start()
    let left = try MQTTSpool(path: path, logger: Logger(label: "test")).open()
    #expect(left.map(\.message.topic) == ["left"])
  }

  /// A line cut short inside its number is no line: `{"done":1` of `{"done":12}` does not end
  /// message 1 (it was read as 1, and message 1 was lost).
  @Test func aTornDoneLineEndsNothing() throws {
    let path = spoolPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let spool = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try spool.open()
    for _ in 1...12 { _ = spool.keep(Message(topic: "t", payload: [1], receivedAtMs: 0)) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(#"{"done":1"#.utf8))
    try handle.close()
    spool.close()
    let left = try MQTTSpool(path: path, logger: Logger(label: "test")).open()
    #expect(left.map(\.sequence) == Array(1...12))
    // A number twice (a file put together by hand) runs twice, and opens.
    let line = #"{"seq":7,"topic":"t","payload_base64":"AQ==","timestamp":0}"# + "\n"
    try Data((line + line).utf8).write(to: URL(fileURLWithPath: path))
    #expect(try MQTTSpool(path: path, logger: Logger(label: "test")).open().map(\.sequence) == [7, 7])
  }

  /// Open messages past the compaction size are not rewritten at every message done: the file
  /// grows to twice what they take first (it was read and rewritten whole each time, 17 s of CPU
  /// for 80 messages of 300 KB in flight).
  @Test func openMessagesPastTheCompactionSizeAreNotRewrittenEachTime() throws {
    let path = spoolPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let spool = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try spool.open()
    let big = [UInt8](repeating: 0x61, count: MQTTSpool.compactionBytes / 2)
    for _ in 0..<3 { _ = spool.keep(Message(topic: "held", payload: big, receivedAtMs: 0)) }
    let held = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    for _ in 0..<20 {
      let number = try #require(spool.keep(Message(topic: "small", payload: [1], receivedAtMs: 0)))
      spool.finish(number)
    }
    let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    #expect(size > held, "\(size) \(held)")
    #expect(lines(path).count == 3 + 40)
  }

  /// A stop during the start's rerun ends it: the messages not run stay in the spool (it ran them
  /// all first, however long that took).
  @Test(.timeLimit(.minutes(3))) func aStopEndsTheRerun() async throws {
    let path = spoolPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let earlier = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try earlier.open()
    for index in 0..<100 { _ = earlier.keep(Message(topic: "t/\(index)", payload: [1], receivedAtMs: 0)) }
    earlier.close()
    let delivered = Mutex(0)
    let intake = MessageIntake(deliver: { message in
      delivered.withLock { $0 += 1 }
      try? await Task.sleep(nanoseconds: 20_000_000)
    })
    // Port 9 on loopback: nothing answers, and the rerun comes before any connection.
    let source = MQTTSource(
      options: MQTTOptions(host: "127.0.0.1", port: 9, clientID: "rerun"), filters: ["t/#"], spool: path)
    let run = Task { try await source.run(intake: intake) }
    // Once the rerun has begun (on a loaded machine the task started past a fixed 200 ms): at
    // most 30 s.
    for _ in 0..<3_000 where delivered.withLock({ $0 }) == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
    try await Task.sleep(nanoseconds: 100_000_000)
    run.cancel()
    _ = try? await run.value
    let count = delivered.withLock { $0 }
    #expect(count > 0 && count < 50, "\(count)")
    #expect(try MQTTSpool(path: path, logger: Logger(label: "test")).open().count == 100)
  }

  /// Past the compaction size with a message still open, the file keeps that message alone.
  @Test func aLongRunningSpoolIsCompacted() throws {
    let path = spoolPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let spool = MQTTSpool(path: path, logger: Logger(label: "test"))
    _ = try spool.open()
    let big = [UInt8](repeating: 0x61, count: MQTTSpool.compactionBytes / 4)
    let held = try #require(spool.keep(Message(topic: "held", payload: [1], receivedAtMs: 0)))
    for _ in 0..<6 {
      let number = try #require(spool.keep(Message(topic: "big", payload: big, receivedAtMs: 0)))
      spool.finish(number)
    }
    let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    #expect(size < MQTTSpool.compactionBytes / 2, "\(size)")
    spool.close()
    #expect(
      try MQTTSpool(path: path, logger: Logger(label: "test")).open().map(\.sequence) == [held])
  }
}
