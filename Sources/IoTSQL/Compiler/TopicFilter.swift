/// An MQTT topic filter as AWS IoT reads it: `+` matches one level, `#` the remaining levels, and,
/// unlike plain MQTT, `a/#` does not match `a` itself. Matching is case-sensitive and exact per level.
public struct TopicFilter: Sendable, Equatable, Hashable {
  /// The filter text.
  public let text: String
  /// Its levels.
  public let levels: [Substring]

  /// AWS's limits on a topic: 256 bytes of UTF-8 and 8 levels (7 slashes).
  public static let maxBytes = 256
  /// The deepest topic AWS accepts.
  public static let maxLevels = 8

  /// Validates a filter: not empty, `+` and `#` alone in their level, `#` last, no NUL, at most
  /// 256 bytes and 8 levels. The error says what is wrong and where.
  public init(_ text: String) throws(TopicFilterError) {
    if text.isEmpty { throw TopicFilterError("a topic filter cannot be empty", offset: 0) }
    if text.utf8.count > Self.maxBytes {
      throw TopicFilterError("a topic filter is limited to \(Self.maxBytes) bytes", offset: 0)
    }
    let levels = text.split(separator: "/", omittingEmptySubsequences: false)
    if levels.count > Self.maxLevels {
      throw TopicFilterError("a topic filter is limited to \(Self.maxLevels) levels", offset: 0)
    }
    var offset = 0
    for (index, level) in levels.enumerated() {
      if let nul = level.firstIndex(of: "\0") {
        throw TopicFilterError(
          "a topic filter cannot contain NUL",
          offset: offset + level.distance(from: level.startIndex, to: nul))
      }
      if level.contains("#") {
        if level != "#" {
          throw TopicFilterError("'#' must stand alone in its level of a topic filter", offset: offset)
        }
        if index != levels.count - 1 {
          throw TopicFilterError("'#' must be the last level of a topic filter", offset: offset)
        }
      }
      if level.contains("+"), level != "+" {
        throw TopicFilterError("'+' must stand alone in its level of a topic filter", offset: offset)
      }
      offset += level.count + 1
    }
    self.text = text
    self.levels = levels
  }

  /// True when the filter has no wildcard: it matches one topic only.
  public var isLiteral: Bool { !levels.contains("+") && !levels.contains("#") }

  /// True when `topic` matches. Topics starting with `$` are not matched by a leading wildcard.
  public func matches(_ topic: String) -> Bool {
    if topic.hasPrefix("$"), let first = levels.first, first == "+" || first == "#" { return false }
    var filterIndex = 0
    var topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)[...]
    while filterIndex < levels.count {
      let level = levels[filterIndex]
      if level == "#" { return !topicLevels.isEmpty }
      guard let topicLevel = topicLevels.first else { return false }
      if level != "+" && level != topicLevel { return false }
      topicLevels = topicLevels.dropFirst()
      filterIndex += 1
    }
    return topicLevels.isEmpty
  }
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
