/// Every rule's FROM filter in one trie, so matching a topic costs the depth of the topic, not the
/// number of rules.
///
/// Matching follows MQTT (`+` is one level, `#` the rest) with AWS's readings where they differ:
/// `a/#` matches `a/b` and `a/b/c` but not `a`; a topic that starts with `$` is not matched by a
/// filter whose first level is a wildcard. Levels are compared byte for byte, as MQTT compares topic
/// names (no Unicode normalisation), and a topic is matched without splitting it into strings.
public struct TopicTrie<Element: Sendable>: Sendable {
  struct Node: Sendable {
    /// The level that leads here from the parent, in UTF-8.
    var level: [UInt8] = []
    /// Children by position in `nodes` while there are few (most nodes have one).
    var few: [Int] = []
    /// Children by the hash of their level once there are many.
    var many: [UInt64: [Int]]?
    var plus: Int?
    var hash: [Element] = []
    var elements: [Element] = []

    static var maxFew: Int { 8 }
  }

  var nodes: [Node] = [Node()]

  /// The number of filters inserted.
  public private(set) var count = 0

  /// Creates an empty trie.
  public init() {}

  /// FNV-1a over a level's bytes: stable, and cheap for the short levels topics have.
  static func levelHash<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
  }

  func child<Bytes: Collection<UInt8>>(of parent: Int, _ level: Bytes) -> Int? {
    if let many = nodes[parent].many {
      for candidate in many[Self.levelHash(level)] ?? [] where nodes[candidate].level.elementsEqual(level) {
        return candidate
      }
      return nil
    }
    for candidate in nodes[parent].few where nodes[candidate].level.elementsEqual(level) { return candidate }
    return nil
  }

  mutating func addChild(of parent: Int, _ level: [UInt8]) -> Int {
    nodes.append(Node(level: level))
    let index = nodes.count - 1
    if nodes[parent].many != nil {
      nodes[parent].many![Self.levelHash(level), default: []].append(index)
    } else if nodes[parent].few.count < Node.maxFew {
      nodes[parent].few.append(index)
    } else {
      var table: [UInt64: [Int]] = [:]
      for existing in nodes[parent].few + [index] {
        table[Self.levelHash(nodes[existing].level), default: []].append(existing)
      }
      nodes[parent].many = table
      nodes[parent].few = []
    }
    return index
  }

  /// Adds `element` under `filter` (already validated by `TopicFilter`).
  public mutating func insert(_ filter: String, _ element: Element) {
    var current = 0
    let levels = Array(filter.utf8).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    for level in levels {
      if level.elementsEqual("#".utf8) {
        nodes[current].hash.append(element)
        count += 1
        return
      }
      if level.elementsEqual("+".utf8) {
        if let next = nodes[current].plus {
          current = next
        } else {
          nodes.append(Node())
          nodes[current].plus = nodes.count - 1
          current = nodes.count - 1
        }
        continue
      }
      current = child(of: current, level) ?? addChild(of: current, Array(level))
    }
    nodes[current].elements.append(element)
    count += 1
  }

  /// Calls `body` with every element whose filter matches `topic`.
  public func forEachMatch(_ topic: String, _ body: (Element) -> Void) {
    var topic = topic
    topic.withUTF8 { bytes in forEachMatch(bytes, body) }
  }

  func forEachMatch(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Element) -> Void) {
    let slash = UInt8(ascii: "/")
    let isSystem = bytes.first == UInt8(ascii: "$")
    // (node, offset where the next level starts, or -1 once every level is matched); the stack
    // holds one entry per wildcard branch still to explore.
    var stack: [(node: Int, start: Int)] = [(0, 0)]
    while let (index, start) = stack.popLast() {
      if start < 0 {
        for element in nodes[index].elements { body(element) }
        continue
      }
      var end = start
      while end < bytes.count && bytes[end] != slash { end += 1 }
      let next = end < bytes.count ? end + 1 : -1
      // `#` needs at least one more level here: `a/#` does not match `a`.
      if !(start == 0 && isSystem) {
        for element in nodes[index].hash { body(element) }
        if let plus = nodes[index].plus { stack.append((plus, next)) }
      }
      if let child = child(of: index, UnsafeBufferPointer(rebasing: bytes[start..<end])) {
        stack.append((child, next))
      }
    }
  }

  /// Every element whose filter matches `topic`.
  public func matches(_ topic: String) -> [Element] {
    var result: [Element] = []
    forEachMatch(topic) { result.append($0) }
    return result
  }
}
