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

/// `text`, or its first `keeping` bytes (whole characters) and how long it is, when it is a fifth
/// longer than that: a rendered value or a message's topic as an error or a log quotes it (a 5 MB
/// URL or topic made 5 MB log lines and error records, past what log shippers take).
public func clipped<Text: StringProtocol>(_ text: Text, keeping: Int = 200) -> String {
  guard text.utf8.count > keeping + keeping / 5 else { return String(text) }
  let bytes = Array(text.utf8.prefix(keeping + 1))
  var end = keeping
  while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }
  return String(decoding: bytes[..<end], as: UTF8.self) + "… (\(text.utf8.count) bytes)"
}

extension Message {
  /// The topic as logs quote it (``logged(topic:)``).
  public var loggedTopic: String { Self.logged(topic: topic) }

  /// `topic` as logs quote it: whole up to 307 bytes, else its first 256 (AWS IoT's limit) and its
  /// length; the message, its error record and its dead letter keep it whole.
  public static func logged(topic: String) -> String { clipped(topic, keeping: 256) }
}
