import Foundation
import IoTSQL
import RulesEngine
import Synchronization

/// An action that records what it receives, optionally after a delay or while a gate is closed, and
/// fails as a script says.
public final class RecordingAction: Action {
  /// `record`.
  public let kind = "record"
  /// `RecordingAction`.
  public let actionName = "RecordingAction"
  /// A name given in the rule file.
  public let resource: String
  /// Inputs received, in completion order.
  public let received = Mutex<[ActionInput]>([])
  /// Failures to return, in order, before succeeding (nil entries succeed).
  public let script = Mutex<[ActionError?]>([])
  /// Each perform waits this long.
  public let delayMs: Int
  /// While closed, performs wait (bounded by the test's own timeout).
  public let gateOpen = Mutex(true)
  /// Calls of `perform`, failures included.
  public let attempts = Mutex(0)
  /// Why `start` fails, if it does.
  public let startFailure: String?
  /// A path whose file, once there, lets `start` succeed (a secret that comes late).
  public let startsOnceThere: String?
  /// Performs running now, and the most at once.
  public let concurrency = Mutex((now: 0, most: 0))
  /// False for an action that reads only the result's value, as SQLite's does.
  public let readsPayloadBytes: Bool

  /// Creates an action.
  public init(
    resource: String = "memory", delayMs: Int = 0, failures: [ActionError?] = [], startFailure: String? = nil,
    startsOnceThere: String? = nil, readsPayloadBytes: Bool = true
  ) {
    self.resource = resource
    self.startsOnceThere = startsOnceThere
    self.readsPayloadBytes = readsPayloadBytes
    self.delayMs = delayMs
    self.startFailure = startFailure
    self.script.withLock { $0 = failures }
  }

  /// Nothing to open; fails with `startFailure` when there is one (and `startsOnceThere` is not).
  public func start() async throws {
    if let startFailure, !(startsOnceThere.map { FileManager.default.fileExists(atPath: $0) } ?? false) {
      throw ActionError(.permanent, startFailure)
    }
  }

  /// Records `input` unless the script says to fail.
  public func perform(_ input: ActionInput) async throws(ActionError) {
    attempts.withLock { $0 += 1 }
    concurrency.withLock {
      $0.now += 1
      $0.most = max($0.most, $0.now)
    }
    defer { concurrency.withLock { $0.now -= 1 } }
    var waited = 0
    while !gateOpen.withLock({ $0 }) && waited < 10_000 {
      try? await Task.sleep(nanoseconds: 1_000_000)
      waited += 1
    }
    if delayMs > 0 { try? await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000) }
    let failure = script.withLock { script -> ActionError? in
      guard !script.isEmpty else { return nil }
      return script.removeFirst()
    }
    if let failure { throw failure }
    received.withLock { $0.append(input) }
  }

  /// Nothing to close.
  public func shutdown() async {}

  /// The payloads received, as strings.
  public var payloads: [String] {
    received.withLock { $0.map { String(decoding: $0.evaluation.payload, as: UTF8.self) } }
  }
}

/// Builds `record` actions (configuration `{"name": "x", "delayMs": N, "fail": "transient"|"permanent",
/// "failTimes": N, "failStart": "why", "startsOnceThere": "path", "valueOnly": true}`) and keeps them by name for the test to
/// inspect.
public final class RecordingBuilder: ActionBuilding {
  /// Actions built, by `name`.
  public let actions = Mutex<[String: RecordingAction]>([:])
  /// Kinds handled by another builder.
  let fallback: (any ActionBuilding)?

  /// Creates a builder; other kinds go to `fallback`.
  public init(fallback: (any ActionBuilding)? = nil) { self.fallback = fallback }

  /// Builds a recording action.
  public func makeAction(kind: String, configuration: RuleNode, context: ActionBuildContext)
    throws(ActionConfigurationError) -> any Action
  {
    guard kind == "record" else {
      if let fallback {
        return try fallback.makeAction(kind: kind, configuration: configuration, context: context)
      }
      throw ActionConfigurationError("unknown action kind '\(kind)'")
    }
    let name = configuration["name"]?.string ?? "default"
    let times = configuration["failTimes"]?.int ?? (configuration["fail"] == nil ? 0 : 1_000)
    let kindText = configuration["fail"]?.string
    let failure: ActionError? =
      switch kindText {
      case "transient": ActionError(.transient, "\(name) failed (transient)")
      case "permanent": ActionError(.permanent, "\(name) failed (permanent)")
      default: nil
      }
    let action = RecordingAction(
      resource: name, delayMs: configuration["delayMs"]?.int ?? 0,
      failures: failure.map { Array(repeating: $0, count: times) } ?? [],
      startFailure: configuration["failStart"]?.string,
      startsOnceThere: configuration["startsOnceThere"]?.string,
      readsPayloadBytes: configuration["valueOnly"]?.bool != true)
    actions.withLock { $0[name] = action }
    return action
  }

  /// The action named `name`.
  public func action(_ name: String) -> RecordingAction? { actions.withLock { $0[name] } }
}

/// A dead-letter sink in memory that can be told to fail.
public final class MemoryDeadLetter: DeadLetterSink {
  /// Records written.
  public let records = Mutex<[ErrorRecord]>([])
  /// When true, writes throw.
  public let failing = Mutex(false)

  /// Creates a sink.
  public init(failing: Bool = false) { self.failing.withLock { $0 = failing } }

  /// Keeps the record, or throws when failing.
  public func write(_ record: ErrorRecord) async throws {
    if failing.withLock({ $0 }) { throw ActionError(.permanent, "dead-letter sink is failing") }
    records.withLock { $0.append(record) }
  }
}

/// A clock whose sleeps take a millisecond whatever they ask, and whose time is fixed.
public final class FastClock: EngineClock {
  /// Now.
  public let now: Int
  /// Creates a clock at `now`.
  public init(now: Int = 1_700_000_000_000) { self.now = now }
  /// The fixed time.
  public func nowMs() -> Int { now }
  /// Real monotonic time.
  public func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
  /// Sleeps one millisecond.
  public func sleep(milliseconds: Int) async throws { try await Task.sleep(nanoseconds: 1_000_000) }
}

/// A clock at a fixed time that a test moves on (`advance`); sleeps are one millisecond.
public final class SteppingClock: EngineClock {
  private let now: Mutex<Int>
  private let start: Int
  /// Creates a clock at `now`.
  public init(now: Int = 1_700_000_000_000) {
    self.now = Mutex(now)
    self.start = now
  }
  /// The current time.
  public func nowMs() -> Int { now.withLock { $0 } }
  /// Moves the clock on, its monotonic time too.
  public func advance(milliseconds: Int) { now.withLock { $0 += milliseconds } }
  /// Real monotonic time, plus what `advance` added.
  public func monotonicNanoseconds() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds + UInt64(now.withLock { $0 } - start) * 1_000_000
  }
  /// Sleeps one millisecond.
  public func sleep(milliseconds: Int) async throws { try await Task.sleep(nanoseconds: 1_000_000) }
}

/// Collects acknowledgements.
public final class AckCollector: Sendable {
  /// (origin, outcome) in arrival order.
  public let acks = Mutex<[(String, Acknowledgement)]>([])
  /// Creates a collector.
  public init() {}

  /// A message that reports to this collector.
  public func message(topic: String, payload: String, origin: String, clientID: String? = "client-1")
    -> Message
  {
    Message(
      topic: topic, payload: Array(payload.utf8), clientID: clientID, receivedAtMs: 1_700_000_000_000,
      origin: origin,
      acknowledge: { outcome in self.acks.withLock { $0.append((origin, outcome)) } })
  }

  /// Acknowledgements so far.
  public var count: Int { acks.withLock { $0.count } }

  /// Waits (at most `timeoutMs`) until `count` acknowledgements arrived.
  public func wait(for count: Int, timeoutMs: Int = 10_000) async -> Bool {
    for _ in 0..<(timeoutMs / 5) {
      if self.count >= count { return true }
      try? await Task.sleep(nanoseconds: 5_000_000)
    }
    return self.count >= count
  }
}

/// Loads a rule from JSON text with `builder`.
public func loadRule(_ json: String, file: String = "test_rule.json", builder: any ActionBuilding) throws
  -> Rule
{
  try RuleFile.load(file: file, bytes: Array(json.utf8), builder: builder)
}
