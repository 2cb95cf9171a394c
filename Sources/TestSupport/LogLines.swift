import Logging
import Synchronization

/// Log records kept for a test to read: hand out `logger`, then read `lines` (`level message`),
/// `messages` (the message alone) or `metadata(of:)`.
public final class LogLines: Sendable {
  private let recorded = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

  /// Creates an empty record.
  public init() {}

  /// Each record as `level message`.
  public var lines: [String] { recorded.withLock { $0.map { "\($0.level) \($0.message)" } } }

  /// Each record's message.
  public var messages: [String] { recorded.withLock { $0.map(\.message) } }

  /// The metadata of each record whose message is `message`, in order.
  public func metadata(of message: String) -> [Logger.Metadata] {
    recorded.withLock { $0.filter { $0.message == message }.map(\.metadata) }
  }

  /// The metadata of each record whose message `matches`, in order.
  public func metadata(where matches: (String) -> Bool) -> [Logger.Metadata] {
    recorded.withLock { $0.filter { matches($0.message) }.map(\.metadata) }
  }

  /// A logger, at every level, whose records are kept here.
  public var logger: Logger { Logger(label: "test") { _ in Handler(lines: self) } }

  private struct Handler: LogHandler {
    let lines: LogLines
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      let merged = metadata.merging(event.metadata ?? [:]) { $1 }
      lines.recorded.withLock { $0.append((event.level, "\(event.message)", merged)) }
    }
  }
}
