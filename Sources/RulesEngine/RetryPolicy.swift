/// How an action retries transient failures: exponential backoff with full jitter, capped.
public struct RetryPolicy: Sendable, Equatable {
  /// Total attempts including the first (1 means no retry).
  public var attempts: Int
  /// The backoff before the first retry, in milliseconds.
  public var initialBackoffMs: Int
  /// The largest backoff, in milliseconds.
  public var maxBackoffMs: Int

  /// Creates a policy.
  public init(attempts: Int = 3, initialBackoffMs: Int = 100, maxBackoffMs: Int = 5_000) {
    self.attempts = attempts
    self.initialBackoffMs = initialBackoffMs
    self.maxBackoffMs = maxBackoffMs
  }

  /// The default: 3 attempts, 100 ms doubling to at most 5 s.
  public static let `default` = RetryPolicy()

  /// The longest backoff a rule file may ask for: a day.
  public static let longestBackoffMs = 86_400_000

  /// The delay before retry number `retry` (1-based): a random value between half and all of
  /// `min(maxBackoffMs, initialBackoffMs * 2^(retry-1))`.
  public func backoffMs(retry: Int, random: Double) -> Int {
    let exponent = min(max(retry - 1, 0), 30)
    let (grown, overflow) = max(initialBackoffMs, 0).multipliedReportingOverflow(by: 1 << exponent)
    let ceiling = min(max(maxBackoffMs, 0), overflow ? Int.max : grown, Self.longestBackoffMs)
    return Int(Double(ceiling) * (0.5 + 0.5 * min(max(random, 0), 1)))
  }
}

/// Time for the engine: `RulesEngine` never reads the clock itself. Clocks are classes, so an action
/// holds its clock in two words.
public protocol EngineClock: AnyObject, Sendable {
  /// Now, in epoch milliseconds.
  func nowMs() -> Int
  /// A monotonic reading in nanoseconds, for latencies.
  func monotonicNanoseconds() -> UInt64
  /// Sleeps `milliseconds`; throws when the task is cancelled.
  func sleep(milliseconds: Int) async throws
}

/// Where error records go when no error action takes them: the dead-letter file.
public protocol DeadLetterSink: Sendable {
  /// Writes one record durably, or throws.
  func write(_ record: ErrorRecord) async throws
  /// Writes `records` durably, in their order; for each, nil when written, else why not. A sink
  /// that can make several durable at once (one fsync) does so; by default they go one at a time.
  func write(_ records: [ErrorRecord]) async -> [(any Error)?]
}

extension DeadLetterSink {
  /// One record at a time, through ``write(_:)-(ErrorRecord)``.
  public func write(_ records: [ErrorRecord]) async -> [(any Error)?] {
    var outcomes: [(any Error)?] = []
    for record in records {
      do {
        try await write(record)
        outcomes.append(nil)
      } catch {
        outcomes.append(error)
      }
    }
    return outcomes
  }
}
