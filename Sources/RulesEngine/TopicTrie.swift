/// Every rule's FROM filter in one trie, so matching a topic costs the depth of the topic, not the
/// number of rules.
///
/// Matching follows MQTT (`+` is one level, `#` the rest) with AWS's readings where they differ:
/// `a/#` matches `a/b` and `a/b/c` but not `a`; a topic that starts with `$` is not matched by a
/// filter whose first level is a wildcard.
public struct TopicTrie<Element: Sendable>: Sendable {
  struct Node: Sendable {
    /// Children by level while there are few (most nodes have one): a dictionary costs ~200 bytes.
    var few: [(level: Substring, node: Int)] = []
    /// Children by level once there are many.
    var many: [Substring: Int]?
    var plus: Int?
    var hash: [Element] = []
    var elements: [Element] = []

    static var maxFew: Int { 8 }

    func child(_ level: Substring) -> Int? {
      if let many { return many[level] }
      for entry in few where entry.level == level { return entry.node }
      return nil
    }

    mutating func setChild(_ level: Substring, _ node: Int) {
      if many != nil {
        many![level] = node
      } else if few.count < Self.maxFew {
        few.append((level, node))
      } else {
        var table = [Substring: Int](minimumCapacity: few.count * 2)
        for entry in few { table[entry.level] = entry.node }
        table[level] = node
        many = table
        few = []
      }
    }
  }

  var nodes: [Node] = [Node()]

  /// The number of filters inserted.
  public private(set) var count = 0

  /// Creates an empty trie.
  public init() {}

  /// Adds `element` under `filter` (already validated by `TopicFilter`).
  public mutating func insert(_ filter: String, _ element: Element) {
    var current = 0
    let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
    for level in levels {
      if level == "#" {
        nodes[current].hash.append(element)
        count += 1
        return
      }
      if level == "+" {
        if let next = nodes[current].plus {
          current = next
        } else {
          nodes.append(Node())
          nodes[current].plus = nodes.count - 1
          current = nodes.count - 1
        }
        continue
      }
      if let next = nodes[current].child(level) {
        current = next
      } else {
        nodes.append(Node())
        nodes[current].setChild(level, nodes.count - 1)
        current = nodes.count - 1
      }
    }
    nodes[current].elements.append(element)
    count += 1
  }

  /// Calls `body` with every element whose filter matches `topic`.
  public func forEachMatch(_ topic: String, _ body: (Element) -> Void) {
    let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
    let isSystem = topic.utf8.first == UInt8(ascii: "$")
    // (node, depth) pairs still to explore; bounded by the number of wildcard branches.
    var stack: [(Int, Int)] = [(0, 0)]
    while let (index, depth) = stack.popLast() {
      let node = nodes[index]
      if depth == levels.count {
        for element in node.elements { body(element) }
        continue
      }
      let wildcardsAllowed = !(depth == 0 && isSystem)
      // `#` needs at least one more level here: `a/#` does not match `a`.
      if wildcardsAllowed {
        for element in node.hash { body(element) }
        if let plus = node.plus { stack.append((plus, depth + 1)) }
      }
      if let next = node.child(levels[depth]) { stack.append((next, depth + 1)) }
    }
  }

  /// Every element whose filter matches `topic`.
  public func matches(_ topic: String) -> [Element] {
    var result: [Element] = []
    forEachMatch(topic) { result.append($0) }
    return result
  }
}
