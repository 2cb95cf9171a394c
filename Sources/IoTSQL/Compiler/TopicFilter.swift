/// An MQTT topic filter as AWS IoT reads it: `+` matches one level, `#` the remaining levels, and,
/// unlike plain MQTT, `a/#` does not match `a` itself. Matching is case-sensitive and exact per level,
/// byte by byte as MQTT requires: `café` spelled with U+00E9 and with `e` + U+0301 are two levels
/// (Swift's `==` on strings would take them as one), and a `/` is a separator even when a combining
/// mark follows it.
public struct TopicFilter: Sendable, Equatable, Hashable {
  /// The filter text.
  public let text: String
  /// Its levels.
  public let levels: [Substring]

  /// AWS's limits on a topic: 256 bytes of UTF-8 and 8 levels (7 slashes).
  public static let maxBytes = 256
  /// The deepest topic AWS accepts.
  public static let maxLevels = 8

  /// Validates a filter: not empty, `+` and `#` alone in their level, `#` last, no NUL, control
  /// character or noncharacter (which MQTT 5 says a string should not hold: mosquitto refuses such
  /// a subscription as malformed), at most 256 bytes and 8 levels. The error says what is wrong and
  /// where.
  public init(_ text: String) throws(TopicFilterError) {
    if text.isEmpty { throw TopicFilterError("a topic filter cannot be empty", offset: 0) }
    if text.utf8.count > Self.maxBytes {
      throw TopicFilterError("a topic filter is limited to \(Self.maxBytes) bytes", offset: 0)
    }
    let levels = text.splitExactly("/")
    if levels.count > Self.maxLevels {
      throw TopicFilterError("a topic filter is limited to \(Self.maxLevels) levels", offset: 0)
    }
    var offset = 0
    for (index, level) in levels.enumerated() {
      if let nul = level.unicodeScalars.firstIndex(of: "\0") {
        throw TopicFilterError(
          "a topic filter cannot contain NUL",
          offset: offset + level.unicodeScalars.distance(from: level.unicodeScalars.startIndex, to: nul))
      }
      if let at = level.unicodeScalars.firstIndex(where: Self.isUnwanted) {
        throw TopicFilterError(
          "a topic filter cannot contain the \(Self.named(level.unicodeScalars[at])), which an MQTT string must not "
            + "hold (brokers refuse it)",
          offset: offset + level.unicodeScalars.distance(from: level.unicodeScalars.startIndex, to: at))
      }
      // Byte tests: `contains("#")` with a string argument is Foundation's substring search, which
      // was a tenth of loading 10,000 rules.
      if level.utf8.contains(UInt8(ascii: "#")) {
        if !level.isExactly("#") {
          throw TopicFilterError("'#' must stand alone in its level of a topic filter", offset: offset)
        }
        if index != levels.count - 1 {
          throw TopicFilterError("'#' must be the last level of a topic filter", offset: offset)
        }
      }
      if level.utf8.contains(UInt8(ascii: "+")), !level.isExactly("+") {
        throw TopicFilterError("'+' must stand alone in its level of a topic filter", offset: offset)
      }
      offset += level.unicodeScalars.count + 1
    }
    self.text = text
    self.levels = levels
  }

  /// The first control character (U+0001–U+001F, U+007F–U+009F) or noncharacter (U+FDD0–U+FDEF,
  /// U+xFFFE, U+xFFFF) of `text`, which an MQTT string should not hold: what it is
  /// (`control character U+000A`) and its byte offset; nil when there is none.
  public static func unwantedCharacter(in text: String) -> (String, offset: Int)? {
    var offset = 0
    for scalar in text.unicodeScalars {
      if isUnwanted(scalar) { return (named(scalar), offset) }
      offset += String(scalar).utf8.count
    }
    return nil
  }

  /// `control character U+000A` or `noncharacter U+FFFE`.
  static func named(_ scalar: Unicode.Scalar) -> String {
    let control = scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    return "\(control ? "control character" : "noncharacter") \(scalar.codePointName)"
  }

  /// True for a control character (NUL included) or a noncharacter.
  static func isUnwanted(_ scalar: Unicode.Scalar) -> Bool {
    let value = scalar.value
    return value < 0x20 || (0x7F...0x9F).contains(value) || (0xFDD0...0xFDEF).contains(value)
      || value & 0xFFFE == 0xFFFE
  }

  /// Two filters are the same when their bytes are.
  public static func == (left: TopicFilter, right: TopicFilter) -> Bool { left.text.isExactly(right.text) }

  /// Hashes the filter's bytes.
  public func hash(into hasher: inout Hasher) { hasher.combine(ExactText(text)) }

  /// True when the filter has no wildcard: it matches one topic only.
  public var isLiteral: Bool { !levels.contains("+") && !levels.contains("#") }

  /// True when `topic` matches. Topics starting with `$` are not matched by a leading wildcard.
  public func matches(_ topic: String) -> Bool {
    if topic.utf8.first == UInt8(ascii: "$"), let first = levels.first, first == "+" || first == "#" {
      return false
    }
    var filterIndex = 0
    var topicLevels = topic.splitExactly("/")[...]
    while filterIndex < levels.count {
      let level = levels[filterIndex]
      if level == "#" { return !topicLevels.isEmpty }
      guard let topicLevel = topicLevels.first else { return false }
      if level != "+" && !level.isExactly(topicLevel) { return false }
      topicLevels = topicLevels.dropFirst()
      filterIndex += 1
    }
    return topicLevels.isEmpty
  }
}

extension TopicFilter {
  /// A topic the filter matches, for `eval` and the REPL when none is given: each `+` or `#` level
  /// as `x` (levels split at the `/` bytes).
  public static func exampleTopic(_ filter: String) -> String {
    filter.splitExactly("/").map { $0 == "+" || $0 == "#" ? "x" : String($0) }.joined(separator: "/")
  }

  /// Why `topic` cannot be a message's topic (a name, not a filter, as MQTT and AWS require), or nil:
  /// the words `eval`, rule tests and the REPL say it with.
  public static func nameProblem(_ topic: String) -> String? {
    if topic.isEmpty { return "is empty: a message's topic is a name" }
    if topic.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") || $0 == 0 }) {
      return "'\(topic)' contains a wildcard (+ or #) or NUL: a message's topic is a name, not a filter"
    }
    return nil
  }
}

/// Why a topic filter is invalid.
public struct TopicFilterError: Error, Sendable, CustomStringConvertible {
  /// The message, e.g. `'#' must be the last level of a topic filter`.
  public var message: String
  /// The 0-based offset in Unicode scalars in the filter text of the problem.
  public var offset: Int

  /// Creates an error.
  public init(_ message: String, offset: Int) {
    self.message = message
    self.offset = offset
  }

  /// The message.
  public var description: String { message }
}

/// AWS IoT's Basic Ingest: a message published to `$aws/rules/RULE_NAME/TOPIC` goes straight to the
/// rule `RULE_NAME`, which sees `TOPIC`: its FROM filter is matched against it and `topic()` returns
/// it (the three-level prefix "is not available to the topic() function", as AWS puts it).
public enum BasicIngest {
  /// The reserved prefix.
  public static let prefix = "$aws/rules/"

  /// True for a FROM filter of Basic Ingest topics (`$aws/rules/...`), to which no rule is
  /// subscribed: such a rule runs as one without FROM.
  public static func isIngestFilter(_ filter: String) -> Bool {
    filter.startsExactly(with: prefix) || filter.isExactly("$aws/rules")
  }

  /// The rule name and the rule's topic of a Basic Ingest topic; nil for any other topic (also for
  /// `$aws/rules/NAME` with nothing after the name).
  public static func split(_ topic: String) -> (rule: Substring, topic: Substring)? {
    guard topic.utf8.starts(with: prefix.utf8) else { return nil }
    let rest = topic.utf8.dropFirst(prefix.utf8.count)
    guard let slash = rest.firstIndex(of: UInt8(ascii: "/")), slash > rest.startIndex else { return nil }
    let after = topic.utf8.index(after: slash)
    guard after < topic.utf8.endIndex else { return nil }
    return (Substring(topic.utf8[rest.startIndex..<slash]), Substring(topic.utf8[after...]))
  }

  /// What `eval` and the REPL say when they run a statement without FROM on `topic`, which is
  /// not a Basic Ingest topic; nil when it is one.
  public static func noFromNote(topic: String) -> String? {
    guard split(topic) == nil else { return nil }
    return
      "note: without FROM, a rule runs only on messages published to '$aws/rules/<rule>/<topic>' (Basic Ingest); "
      + "evaluated as if '\(topic)' came that way"
  }

  /// The topic a rule sees: without the Basic Ingest prefix when there is one.
  public static func ruleTopic(_ topic: String) -> String {
    guard topic.utf8.first == UInt8(ascii: "$"), let parts = split(topic) else { return topic }
    return String(parts.topic)
  }
}

extension Program {
  /// True when a message on `topic` passes the statement's FROM filter, read from the topic a rule
  /// sees (Basic Ingest's prefix dropped); true without FROM.
  public func fromMatches(_ topic: String) -> Bool {
    guard let topicFilter, let filter = try? TopicFilter(topicFilter) else { return true }
    return filter.matches(BasicIngest.ruleTopic(topic))
  }
}
