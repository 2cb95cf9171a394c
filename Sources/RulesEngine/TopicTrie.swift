import IoTSQL

#if canImport(Glibc)
  import Glibc
#endif

/// Every rule's FROM filter in one trie, so matching a topic costs the depth of the topic, not the
/// number of rules.
///
/// Matching follows MQTT (`+` is one level, `#` the rest) with AWS's readings where they differ:
/// `a/#` matches `a/b` and `a/b/c` but not `a`; a topic that starts with `$` is not matched by a
/// filter whose first level is a wildcard. Levels are compared byte for byte, as MQTT compares topic
/// names (no Unicode normalisation), and a topic is matched without splitting it into strings.
public struct TopicTrie<Element: Sendable>: Sendable {
  /// One level of some filter. Nodes hold no arrays of their own: levels live in one shared byte
  /// buffer, children form a sibling chain and the elements that end or `#`-end at a node form a
  /// chain in `chained`, so a trie of 10,000 filters costs tens of bytes per node, not an allocation
  /// per level, child or element.
  struct Node: Sendable {
    /// The level that leads here from the parent: a range of `levelBytes`.
    var levelStart: Int32 = 0
    var levelCount: Int32 = 0
    /// The first child (-1: none); each child links to the next by `nextSibling`.
    var firstChild: Int32 = -1
    var nextSibling: Int32 = -1
    /// The `+` child (-1: none).
    var plus: Int32 = -1
    var childCount: Int32 = 0
    /// Children by the hash of their level once there are more than `maxFew`: the first child
    /// with that hash (another child whose level has the same hash is found along the chain).
    var many: [UInt64: Int32]?
    /// The elements whose filter ends here (first and last link in `chained`; -1: none).
    var elements = Chain()
    /// The elements whose filter ends with `#` here.
    var hash = Chain()

    static var maxFew: Int32 { 8 }
  }

  /// A chain of elements: links in `chained`, in insertion order.
  struct Chain: Sendable {
    var first: Int32 = -1
    var last: Int32 = -1
  }

  var nodes: [Node] = [Node()]
  var levelBytes: [UInt8] = []
  /// Every element, with the next link of its chain (-1: the end).
  var chained: [(element: Element, next: Int32)] = []

  /// The number of filters inserted.
  public private(set) var count = 0

  /// Creates an empty trie.
  public init() {}

  /// FNV-1a over a level's bytes: stable, and cheap for the short levels topics have.
  static func levelHash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
  }

  /// True when node `index`'s level is `level`, byte for byte.
  func levelEquals(_ index: Int32, _ level: UnsafeBufferPointer<UInt8>) -> Bool {
    let node = nodes[Int(index)]
    guard Int(node.levelCount) == level.count else { return false }
    guard let other = level.baseAddress, level.count > 0 else { return true }
    return levelBytes.withUnsafeBufferPointer { bytes in
      memcmp(bytes.baseAddress! + Int(node.levelStart), other, level.count) == 0
    }
  }

  func child(of parent: Int, _ level: UnsafeBufferPointer<UInt8>) -> Int? {
    if let many = nodes[parent].many {
      guard let candidate = many[Self.levelHash(level)] else { return nil }
      if levelEquals(candidate, level) { return Int(candidate) }
      // Two levels with one 64-bit hash: rare enough to walk the chain.
    }
    var candidate = nodes[parent].firstChild
    while candidate >= 0 {
      if levelEquals(candidate, level) { return Int(candidate) }
      candidate = nodes[Int(candidate)].nextSibling
    }
    return nil
  }

  mutating func addChild(of parent: Int, _ level: UnsafeBufferPointer<UInt8>) -> Int {
    let index = Int32(nodes.count)
    nodes.append(
      Node(
        levelStart: Int32(levelBytes.count), levelCount: Int32(level.count),
        nextSibling: nodes[parent].firstChild))
    levelBytes.append(contentsOf: level)
    nodes[parent].firstChild = index
    nodes[parent].childCount += 1
    if nodes[parent].many != nil {
      let hash = Self.levelHash(level)
      if nodes[parent].many![hash] == nil { nodes[parent].many![hash] = index }
    } else if nodes[parent].childCount > Node.maxFew {
      var table: [UInt64: Int32] = [:]
      var existing = nodes[parent].firstChild
      while existing >= 0 {
        let node = nodes[Int(existing)]
        let hash = levelBytes.withUnsafeBufferPointer {
          Self.levelHash(
            UnsafeBufferPointer(rebasing: $0[Int(node.levelStart)..<Int(node.levelStart + node.levelCount)]))
        }
        // The chain runs newest first: the oldest child with a hash keeps it, as when added later.
        table[hash] = existing
        existing = node.nextSibling
      }
      nodes[parent].many = table
    }
    return Int(index)
  }

  /// Adds `element` under `filter` (already validated by `TopicFilter`).
  public mutating func insert(_ filter: String, _ element: Element) {
    var filter = filter
    filter.withUTF8 { bytes in insert(bytes, element) }
  }

  private mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, _ element: Element) {
    var current = 0
    var start = 0
    while true {
      var end = start
      while end < bytes.count && bytes[end] != UInt8(ascii: "/") { end += 1 }
      let level = UnsafeBufferPointer(rebasing: bytes[start..<end])
      if level.count == 1, level[0] == UInt8(ascii: "#") {
        append(element, to: \.hash, of: current)
        return
      }
      if level.count == 1, level[0] == UInt8(ascii: "+") {
        if nodes[current].plus < 0 {
          nodes.append(Node())
          nodes[current].plus = Int32(nodes.count - 1)
        }
        current = Int(nodes[current].plus)
      } else {
        current = child(of: current, level) ?? addChild(of: current, level)
      }
      guard end < bytes.count else { break }
      start = end + 1
    }
    append(element, to: \.elements, of: current)
  }

  private mutating func append(_ element: Element, to chain: WritableKeyPath<Node, Chain>, of node: Int) {
    let link = Int32(chained.count)
    chained.append((element, -1))
    let last = nodes[node][keyPath: chain].last
    if last >= 0 { chained[Int(last)].next = link } else { nodes[node][keyPath: chain].first = link }
    nodes[node][keyPath: chain].last = link
    count += 1
  }

  func forEach(in chain: Chain, _ body: (Element) -> Void) {
    var link = chain.first
    while link >= 0 {
      body(chained[Int(link)].element)
      link = chained[Int(link)].next
    }
  }

  /// Drops the slack that growing by inserts left in the trie's storage: call it once the trie is
  /// complete (a rule set's trie lives until the next reload).
  public mutating func compact() {
    nodes = nodes.compacted()
    levelBytes = levelBytes.compacted()
    chained = chained.compacted()
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
    // holds one entry per wildcard branch still to explore. An entry of level L pushes at most two
    // of level L + 1, so it never holds more than one entry per level plus two: a topic's byte
    // count plus four is room enough, taken on the native stack (no allocation per message).
    withUnsafeTemporaryAllocation(of: (node: Int, start: Int).self, capacity: bytes.count + 4) { stack in
      var count = 1
      stack[0] = (0, 0)
      while count > 0 {
        count -= 1
        let (index, start) = stack[count]
        if start < 0 {
          forEach(in: nodes[index].elements, body)
          continue
        }
        var end = start
        while end < bytes.count && bytes[end] != slash { end += 1 }
        let next = end < bytes.count ? end + 1 : -1
        // `#` needs at least one more level here: `a/#` does not match `a`.
        if !(start == 0 && isSystem) {
          forEach(in: nodes[index].hash, body)
          if nodes[index].plus >= 0 {
            stack[count] = (Int(nodes[index].plus), next)
            count += 1
          }
        }
        if let child = child(of: index, UnsafeBufferPointer(rebasing: bytes[start..<end])) {
          stack[count] = (child, next)
          count += 1
        }
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
