import IoTSQL
import Testing

@testable import RulesEngine

struct TopicTrieTests {
  static let cases: [(filter: String, topic: String, matches: Bool)] = [
    ("sensors/+/data", "sensors/dev1/data", true),
    ("sensors/+/data", "sensors/dev1/status", false),
    ("sensors/+/data", "sensors/dev1/data/x", false),
    ("sensors/+/data", "sensors//data", true),
    ("sensors/#", "sensors/dev1", true),
    ("sensors/#", "sensors/dev1/data", true),
    ("sensors/#", "sensors", false),
    ("#", "a/b/c", true),
    ("#", "$aws/things/x", false),
    ("+/status", "$SYS/status", false),
    ("$SYS/#", "$SYS/broker/load", true),
    ("a/b", "a/b", true),
    ("a/b", "a/b/", false),
    ("a/+", "a/", true),
    ("+", "a", true),
    ("+", "a/b", false),
    ("a/+/#", "a/b", false),
    ("a/+/#", "a/b/c", true),
    // Levels are compared byte by byte, as MQTT requires: no Unicode normalisation.
    ("caf\u{E9}/+", "cafe\u{301}/x", false),
    ("cafe\u{301}/+", "cafe\u{301}/x", true),
    // A `/` followed by a combining mark still ends a level.
    ("a/+", "a/\u{301}b", true),
    ("a", "a/\u{301}", false),
  ]

  /// The daemon's trie and `TopicFilter` (what `eval`, rule tests and the REPL match with) agree.
  @Test(arguments: cases)
  func matching(_ item: (filter: String, topic: String, matches: Bool)) throws {
    var trie = TopicTrie<Int>()
    trie.insert(item.filter, 1)
    #expect(trie.matches(item.topic) == (item.matches ? [1] : []), "\(item.filter) vs \(item.topic)")
    #expect(
      try TopicFilter(item.filter).matches(item.topic) == item.matches, "\(item.filter) vs \(item.topic)")
  }

  @Test func manyFiltersOneMatch() {
    var trie = TopicTrie<Int>()
    for index in 0..<10_000 { trie.insert("fleet/\(index)/+/data", index) }
    trie.insert("sensors/+/data", -1)
    #expect(trie.count == 10_001)
    #expect(trie.matches("sensors/d1/data") == [-1])
    #expect(trie.matches("fleet/42/x/data") == [42])
    #expect(trie.matches("fleet/42/x/other").isEmpty)
  }

  @Test func everyMatchingFilterReported() {
    var trie = TopicTrie<String>()
    for filter in ["a/b/c", "a/+/c", "a/#", "+/+/+", "#", "a/b"] { trie.insert(filter, filter) }
    #expect(Set(trie.matches("a/b/c")) == ["a/b/c", "a/+/c", "a/#", "+/+/+", "#"])
  }

  @Test func deepTopicsBranchAtEveryLevel() {
    // Every level offers both `+` and its own name, and empty levels take the fewest bytes: the
    // walk's stack (sized from the topic's bytes) holds its most entries.
    var trie = TopicTrie<String>()
    let levels = 2_000
    let plain = Array(repeating: "", count: levels).joined(separator: "/")
    var wild = Array(repeating: "", count: levels)
    for index in stride(from: 0, to: levels, by: 2) { wild[index] = "+" }
    let mixed = wild.joined(separator: "/")
    let all = Array(repeating: "+", count: levels).joined(separator: "/")
    for filter in [plain, mixed, all, "#", "+/#"] { trie.insert(filter, filter) }
    #expect(Set(trie.matches(plain)) == [plain, mixed, all, "#", "+/#"])
    #expect(Set(trie.matches(plain + "/x")) == ["#", "+/#"])
    #expect(trie.matches("") == ["#"])
  }

  @Test(arguments: [1, 7, 8, 9, 20])
  func childrenBeforeAndAfterTheTableSwitch(_ count: Int) {
    var trie = TopicTrie<Int>()
    for index in 0..<count { trie.insert("site/level\(index)", index) }
    for index in 0..<count { #expect(trie.matches("site/level\(index)") == [index]) }
    #expect(trie.matches("site/level\(count)").isEmpty)
    trie.insert("site/level0", 100)
    #expect(trie.matches("site/level0") == [0, 100])
  }
}

struct TopicTrieByteTests {
  @Test func levelsCompareByteForByteWithoutNormalisation() {
    var trie = TopicTrie<Int>()
    trie.insert("caf\u{E9}/+", 1)  // é precomposed
    #expect(trie.matches("caf\u{E9}/x") == [1])
    #expect(trie.matches("cafe\u{301}/x").isEmpty)  // e + combining accent: other bytes
    // A slash followed by a combining mark is still a level separator.
    trie.insert("a/+", 2)
    #expect(trie.matches("a/\u{301}b") == [2])
  }

  @Test func hashedChildrenWithManySiblings() {
    var trie = TopicTrie<Int>()
    for index in 0..<100 { trie.insert("s/\(index)/#", index) }
    for index in 0..<100 { #expect(trie.matches("s/\(index)/x") == [index]) }
    #expect(trie.matches("s/100/x").isEmpty)
    #expect(trie.matches("s/1").isEmpty)
  }
}

struct TopicTrieChainTests {
  @Test func elementsOfOneFilterComeBackInInsertionOrder() {
    var trie = TopicTrie<Int>()
    for element in [3, 1, 2] { trie.insert("a/#", element) }
    for element in [6, 4, 5] { trie.insert("a/b", element) }
    #expect(trie.matches("a/b") == [3, 1, 2, 6, 4, 5])
    trie.compact()
    #expect(trie.matches("a/b") == [3, 1, 2, 6, 4, 5])
  }

  /// Two levels whose hashes collide: the table holds the first, the other is found along the chain.
  @Test func aHashCollisionFallsBackToTheChain() throws {
    var trie = TopicTrie<Int>()
    for index in 0..<20 { trie.insert("s/l\(index)", index) }
    var many = try #require(trie.nodes[1].many)
    let hash17 = "l17".utf8.withContiguousStorageIfAvailable { TopicTrie<Int>.levelHash($0) }!
    let hash3 = "l3".utf8.withContiguousStorageIfAvailable { TopicTrie<Int>.levelHash($0) }!
    many[hash17] = many[hash3]  // as if l17 hashed like l3, and l3 came first
    trie.nodes[1].many = many
    #expect(trie.matches("s/l17") == [17])
    #expect(trie.matches("s/l3") == [3])
    #expect(trie.matches("s/l20").isEmpty)
  }
}
