/// A log line budget for a storm of one kind of event (an action's failures, refused records): at
/// most `linesPerMinute` lines a minute; past them the events are only counted, and the next line
/// logged says how many were not.
public struct LogBudget: Sendable {
  /// The lines logged a minute at most.
  public static let linesPerMinute = 10
  /// When the current minute began (monotonic nanoseconds).
  var startNanoseconds: UInt64
  /// The lines logged in the current minute.
  var logged = 0
  /// The events not logged since the last line.
  var unlogged = 0

  /// A budget whose first minute begins at `startNanoseconds`.
  public init(startNanoseconds: UInt64) { self.startNanoseconds = startNanoseconds }

  /// The events not logged since the last line: said once the stream ends (no later line says them).
  public var unloggedSinceLastLine: Int { unlogged }

  /// Whether an event at `now` (monotonic nanoseconds) is logged, and how many before it were not.
  public mutating func turn(now: UInt64) -> (logs: Bool, unlogged: Int) {
    if now &- startNanoseconds >= 60_000_000_000 { (startNanoseconds, logged) = (now, 0) }
    guard logged < Self.linesPerMinute else {
      unlogged += 1
      return (false, 0)
    }
    logged += 1
    defer { unlogged = 0 }
    return (true, unlogged)
  }
}
