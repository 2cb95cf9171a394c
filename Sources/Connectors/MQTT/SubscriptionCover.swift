import IoTSQL

/// The subscriptions that deliver every message the rules' FROM filters want exactly once.
///
/// A broker sends a message once per matching subscription of a client when they overlap (mosquitto
/// does by default): with rules on `sensors/#` and `sensors/+/data`, each `sensors/d1/data` would
/// arrive twice and be processed twice. So a filter another one covers is not subscribed, and two
/// filters that overlap without one covering the other are replaced by one that covers both
/// (`a/+/c` and `a/b/+` by `a/+/+`); the rules' own matching drops what the wider filter brings in
/// beyond them. Matching here is the broker's (`a/#` covers `a`; a leading wildcard does not reach
/// `$` topics), not AWS's reading, which the rules apply.
enum SubscriptionCover {
  /// One level of a filter. Two are the same only when their bytes are, as a broker compares them:
  /// Swift's `==` and hashing of strings would take `café` with U+00E9 and with `e` + U+0301 as one
  /// level, and subscribe one filter for two rules that want different topics.
  typealias Level = ExactText

  /// `filters` without duplicates, covered filters and partial overlaps, in their first order.
  static func minimal(_ filters: [String]) -> [String] {
    var seen = Set<ExactText>()
    var levels: [[Level]] = []
    for filter in filters where seen.insert(ExactText(filter)).inserted {
      levels.append(filter.splitExactly("/").map { Level($0) })
    }
    while true {
      levels = removingCovered(levels)
      // A joined filter may overlap filters its parts did not: again until none overlaps.
      guard let merged = mergingOverlaps(levels) else { break }
      levels = merged
    }
    return levels.map { $0.map(\.text).joined(separator: "/") }
  }

  /// A tree of filters by their levels: each node knows the filters that end there.
  final class Tree {
    final class Node {
      var children: [Level: Node] = [:]
      var ends: [Int] = []
    }

    let root = Node()

    init(_ filters: [[Level]]) {
      for (index, filter) in filters.enumerated() {
        var node = root
        for level in filter {
          if let child = node.children[level] {
            node = child
          } else {
            let child = Node()
            node.children[level] = child
            node = child
          }
        }
        node.ends.append(index)
      }
    }

    /// The filters that may overlap `filter` (a superset: callers confirm with `intersects`). Only
    /// the branches a common topic could take are followed (its own level, `+`, `#`; every branch
    /// under its own `+`), so a filter of literal levels costs a few steps whatever the number.
    func candidates(overlapping filter: [Level]) -> [Int] {
      var found: [Int] = []
      func everything(below node: Node) {
        found += node.ends
        for child in node.children.values { everything(below: child) }
      }
      func walk(_ position: Int, _ node: Node) {
        if let hash = node.children["#"] { found += hash.ends }
        guard position < filter.count else {
          found += node.ends
          return
        }
        let level = filter[position]
        if level == "#" {
          everything(below: node)
        } else if level == "+" {
          for child in node.children.values { walk(position + 1, child) }
        } else {
          if let child = node.children[level] { walk(position + 1, child) }
          if let plus = node.children["+"] { walk(position + 1, plus) }
        }
      }
      walk(0, root)
      return found
    }
  }

  /// One pass in which each filter, in order, takes in the filters it overlaps (joined into one
  /// covering both, `a/+/c` and `a/b/+` into `a/+/+`); nil when no two overlap. The overlapping
  /// ones are found in a tree of all of them, not by comparing every pair: 10,000 rules' filters
  /// take a few milliseconds.
  static func mergingOverlaps(_ filters: [[Level]]) -> [[Level]]? {
    let tree = Tree(filters)
    var merged = filters
    var absorbed = [Bool](repeating: false, count: filters.count)
    var changed = false
    for index in filters.indices where !absorbed[index] {
      for other in tree.candidates(overlapping: filters[index]).sorted()
      where other != index && !absorbed[other] && intersects(merged[index], filters[other]) {
        merged[index] = join(merged[index], filters[other])
        absorbed[other] = true
        changed = true
      }
    }
    guard changed else { return nil }
    return merged.indices.filter { !absorbed[$0] }.map { merged[$0] }
  }

  /// The filters (distinct) that no other filter of the list covers. Each is looked up in a tree of
  /// all of them, following only the branches that can cover it (its own levels, `+`, `#`): a few
  /// steps a filter, whatever their number.
  static func removingCovered(_ filters: [[Level]]) -> [[Level]] {
    let root = Tree(filters).root
    func coveredByOther(_ filter: [Level], _ self_: Int, _ position: Int, _ node: Tree.Node) -> Bool {
      let system = position == 0 && filter.first?.isSystem == true
      if !system, let hash = node.children["#"], hash.ends.contains(where: { $0 != self_ }) { return true }
      guard position < filter.count else { return node.ends.contains { $0 != self_ } }
      let level = filter[position]
      if level == "#" { return false }
      if !system, let plus = node.children["+"], coveredByOther(filter, self_, position + 1, plus) {
        return true
      }
      if level != "+", let child = node.children[level] {
        return coveredByOther(filter, self_, position + 1, child)
      }
      return false
    }
    return filters.enumerated().filter { !coveredByOther($0.element, $0.offset, 0, root) }.map(\.element)
  }

  /// True when every topic `inner` matches, `outer` matches too (broker semantics).
  static func covers(_ outer: [Level], _ inner: [Level]) -> Bool {
    if let first = outer.first, first == "+" || first == "#", inner.first?.isSystem == true {
      return false
    }
    for (index, level) in outer.enumerated() {
      if level == "#" { return true }
      guard index < inner.count else { return false }
      let other = inner[index]
      if other == "#" { return false }
      if level == "+" { continue }
      if other == "+" || other != level { return false }
    }
    return outer.count == inner.count
  }

  /// True when some topic matches both filters (broker semantics).
  static func intersects(_ a: [Level], _ b: [Level]) -> Bool {
    if let first = a.first, let second = b.first {
      let aWild = first == "+" || first == "#"
      let bWild = second == "+" || second == "#"
      if (aWild && second.isSystem) || (bWild && first.isSystem) { return false }
    }
    var index = 0
    while index < a.count && index < b.count {
      let x = a[index]
      let y = b[index]
      if x == "#" || y == "#" { return true }
      if x != "+" && y != "+" && x != y { return false }
      index += 1
    }
    if a.count == b.count { return true }
    // One ends here: `a/#` also matches `a`.
    let longer = a.count > b.count ? a : b
    return longer[index] == "#"
  }

  /// A filter covering both: equal levels kept, differing ones `+`, and `#` from where the lengths
  /// differ or either has `#`.
  static func join(_ a: [Level], _ b: [Level]) -> [Level] {
    var result: [Level] = []
    var index = 0
    while index < a.count && index < b.count {
      let x = a[index]
      let y = b[index]
      if x == "#" || y == "#" { return result + ["#"] }
      result.append(x == y ? x : "+")
      index += 1
    }
    return a.count == b.count ? result : result + ["#"]
  }
}

extension ExactText {
  /// True for a level starting with `$` (a leading wildcard does not reach such topics).
  fileprivate var isSystem: Bool { text.utf8.first == UInt8(ascii: "$") }
}
