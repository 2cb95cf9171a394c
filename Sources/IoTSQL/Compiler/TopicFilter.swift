// API CONTRACT: the bodies are being written; the public surface is fixed.

/// An MQTT topic filter as AWS reads it (`+` one level, `#` the rest, and `a/#` does not match `a`).
public struct TopicFilter: Sendable, Equatable, Hashable {
  /// The filter text.
  public let text: String
  /// Its levels.
  public let levels: [Substring]

  /// Validates a filter: `+` and `#` alone in their level, `#` last, no NUL, at most 256 bytes and
  /// 8 levels (AWS's limits). The error message says what is wrong.
  public init(_ text: String) throws(TopicFilterError) {
    self.text = text
    self.levels = text.split(separator: "/", omittingEmptySubsequences: false)
  }

  /// True when `topic` matches. Topics starting with `$` are not matched by a leading wildcard.
  public func matches(_ topic: String) -> Bool { false }
}

/// Why a topic filter is invalid.
public struct TopicFilterError: Error, Sendable, CustomStringConvertible {
  /// The message, e.g. `'#' must be the last level of a topic filter`.
  public var message: String
  /// The 0-based character offset in the filter text of the problem.
  public var offset: Int

  /// Creates an error.
  public init(_ message: String, offset: Int) {
    self.message = message
    self.offset = offset
  }

  /// The message.
  public var description: String { message }
}
