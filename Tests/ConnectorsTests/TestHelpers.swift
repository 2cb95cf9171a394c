import Connectors
import Foundation
import RulesEngine
import Synchronization

/// Messages a source delivered, in order.
final class Collector: Sendable {
  let messages = Mutex<[Message]>([])

  var count: Int { messages.withLock { $0.count } }
  var payloads: [String] { messages.withLock { $0.map { String(decoding: $0.payload, as: UTF8.self) } } }

  var deliver: @Sendable (Message) async -> Void {
    { [self] message in messages.withLock { $0.append(message) } }
  }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
  let deadline = ContinuousClock.now + .seconds(seconds)
  while ContinuousClock.now < deadline {
    if condition() { return true }
    try? await Task.sleep(for: .milliseconds(20))
  }
  return condition()
}

/// Subscribing is asynchronous: publishes a probe on `topic` every 20 ms until `received` holds or
/// `seconds` pass; returns whether it held.
func probe(
  _ publisher: MQTTPublisher, topic: String, qos: Int = 1, within seconds: Double = 10,
  until received: () -> Bool
) async -> Bool {
  await eventually(within: seconds) {
    Task {
      try? await publisher.publish(topic: topic, payload: [1], qos: qos, retain: false, properties: .init())
    }
    return received()
  }
}

/// Publishes `count` messages with at most `window` in flight (flow control: QoS 1 waits for PUBACK).
func publishAll(
  _ publisher: MQTTPublisher, topic: (Int) -> String, payload: (Int) -> String, count: Int, qos: Int = 1,
  window: Int = 32
) async throws {
  let items = (0..<count).map { (topic($0), Array(payload($0).utf8)) }
  try await withThrowingTaskGroup(of: Void.self) { group in
    for (index, item) in items.enumerated() {
      if index >= window { try await group.next() }
      group.addTask {
        try await publisher.publish(
          topic: item.0, payload: item.1, qos: qos, retain: false, properties: PublishProperties())
      }
    }
    try await group.waitForAll()
  }
}

/// A unique suffix for client ids and group ids.
func unique(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }

/// A value behind a lock that escaping closures can share.
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>
  init(_ value: Value) { mutex = Mutex(value) }
  func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}
