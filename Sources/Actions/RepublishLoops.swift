import IoTSQL
import Synchronization

/// The static shape of republish topics, to find rules that republish onto their own FROM filter.
///
/// A topic template's levels are literal text or contain a `${…}` substitution. A substituted level
/// may render to any text, slashes included, so it stands for one or more arbitrary levels. Two
/// shapes overlap when some concrete topic is both a rendering of the template and a match of the
/// filter.
extension RepublishAction {
  /// One level of a topic template's static shape.
  public enum ShapeLevel: Sendable, Equatable {
    /// A level of literal text.
    case literal(String)
    /// A level with a substitution: one or more levels of any text.
    case substituted
  }

  /// The levels of `template` (a republish `topic`, `$$` for a leading `$`), split at `/` outside
  /// `${…}`.
  public static func topicShape(_ template: String) -> [ShapeLevel] {
    let (text, dollar) = unescapeTopic(template)
    var levels: [ShapeLevel] = []
    var current = String.UnicodeScalarView()
    var substituted = false
    var depth = 0
    var previous: Unicode.Scalar?
    // By scalars, as the broker splits bytes: `/` followed by a combining mark still ends a level.
    for character in text.unicodeScalars {
      if depth > 0 {
        if character == "{" { depth += 1 } else if character == "}" { depth -= 1 }
      } else if character == "{" && previous == "$" {
        depth = 1
        substituted = true
      } else if character == "/" {
        levels.append(substituted ? .substituted : .literal(String(current)))
        current = String.UnicodeScalarView()
        substituted = false
        previous = character
        continue
      }
      current.append(character)
      previous = character
    }
    levels.append(substituted ? .substituted : .literal(String(current)))
    if dollar, case .literal(let first) = levels[0] { levels[0] = .literal("$" + first) }
    return levels
  }

  /// True when some topic that `template` can render also matches the topic `filter` as rules
  /// match it (`+` one level, `#` one level or more: AWS's `a/#` does not match `a`).
  public static func topicTemplate(_ template: String, canMatch filter: String) -> Bool {
    TopicShape(template).canMatch(TopicShape.levels(of: filter))
  }

  /// A republish topic template read once, to be matched against many filters.
  public struct TopicShape: Sendable {
    let levels: [ShapeLevel]
    /// Whether every rendering starts with `$`, which a leading wildcard does not match, nor a
    /// first level that does not start with `$` (`$$${topic(2)}/x` renders `$…/x` whatever the value).
    let startsWithDollar: Bool

    /// The shape of `template` (a republish `topic`).
    public init(_ template: String) {
      levels = RepublishAction.topicShape(template)
      var dollar = RepublishAction.unescapeTopic(template).1
      if case .literal(let first) = levels[0], first.startsExactly(with: "$") { dollar = true }
      startsWithDollar = dollar
    }

    /// A topic filter's levels, as ``canMatch(_:)`` takes them.
    public static func levels(of filter: String) -> [String] { filter.splitExactly("/").map(String.init) }

    /// True when some topic this template can render also matches the filter of `filterLevels`.
    public func canMatch(_ filterLevels: [String]) -> Bool {
      if startsWithDollar, !filterLevels[0].startsExactly(with: "$") { return false }
      // Most pairs differ in their first level: told at once, without the search.
      if case .literal(let first) = levels[0], filterLevels[0] != "+", filterLevels[0] != "#",
        !filterLevels[0].isExactly(first)
      {
        return false
      }
      let shape = levels
      struct Key: Hashable {
        let shape: Int
        let filter: Int
        let started: Bool
      }
      var memo: [Key: Bool] = [:]
      func overlaps(_ i: Int, _ j: Int, _ started: Bool) -> Bool {
        let key = Key(shape: i, filter: j, started: started)
        if let known = memo[key] { return known }
        let result: Bool
        if j < filterLevels.count && filterLevels[j] == "#" {
          // A level left to match it, or more of the substituted level's.
          result = i < shape.count || started
        } else if started {
          // The substituted level at i has produced at least one level: end it, or produce another.
          result = overlaps(i + 1, j, false) || (j < filterLevels.count && overlaps(i, j + 1, true))
        } else if i == shape.count {
          result = j == filterLevels.count
        } else if j == filterLevels.count {
          result = false
        } else {
          switch shape[i] {
          case .literal(let text):
            result =
              (filterLevels[j] == "+" || filterLevels[j].isExactly(text)) && overlaps(i + 1, j + 1, false)
          case .substituted:
            result = overlaps(i, j + 1, true)
          }
        }
        memo[key] = result
        return result
      }
      return overlaps(0, 0, false)
    }
  }
}

/// The hop counts of messages this process republished lately, by topic and payload: how a
/// republished message that comes back without user properties (MQTT 3.1.1 carries none) is known
/// for what it is, so that the hop limit stops a loop there too. Bounded: at most `capacity`
/// entries, each kept `lifetimeMs`.
final class HopLedger: Sendable {
  struct Key: Hashable {
    let topic: String
    let payloadHash: Int
  }

  /// The ledger every republish action of the process shares.
  static let shared = HopLedger()

  let capacity = 4096
  let lifetimeMs = 60_000
  let entries = Mutex<[Key: (hops: Int, atMs: Int)]>([:])

  static func key(_ topic: String, _ payload: [UInt8]) -> Key {
    var hasher = Hasher()
    hasher.combine(payload.count)
    payload.withUnsafeBytes { hasher.combine(bytes: $0) }
    return Key(topic: topic, payloadHash: hasher.finalize())
  }

  /// Notes that `payload` was republished to `topic` at hop `hops`.
  func record(topic: String, payload: [UInt8], hops: Int, nowMs: Int) {
    let key = Self.key(topic, payload)
    entries.withLock { entries in
      if entries.count >= capacity {
        entries = entries.filter { nowMs - $0.value.atMs < lifetimeMs }
        // Still full of recent ones: the oldest half goes.
        if entries.count >= capacity {
          let cutoff = entries.values.map(\.atMs).sorted()[entries.count / 2]
          entries = entries.filter { $0.value.atMs > cutoff }
        }
      }
      entries[key] = (hops, nowMs)
    }
  }

  /// The hop count of a message on `topic` with `payload` this process republished lately, if any.
  func hops(topic: String, payload: [UInt8], nowMs: Int) -> Int? {
    let key = Self.key(topic, payload)
    return entries.withLock { entries in
      guard let entry = entries[key], nowMs - entry.atMs < lifetimeMs else { return nil }
      return entry.hops
    }
  }
}
