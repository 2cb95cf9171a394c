import Foundation
import RulesEngine

/// The real clock: wall time for timestamps, a monotonic clock for latencies.
public final class SystemClock: EngineClock {
  /// Creates the clock.
  public init() {}

  /// Now, in epoch milliseconds.
  public func nowMs() -> Int { Int(Date().timeIntervalSince1970 * 1000) }

  /// A monotonic reading in nanoseconds.
  public func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
  }

  /// Sleeps.
  public func sleep(milliseconds: Int) async throws {
    try await Task.sleep(nanoseconds: UInt64(max(0, milliseconds)) * 1_000_000)
  }
}
