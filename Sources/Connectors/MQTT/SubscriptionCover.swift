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
  /// Beyond this many distinct filters only covered filters are removed: finding partial overlaps
  /// compares every pair.
  static let pairwiseLimit = 256

  /// `filters` without duplicates, covered filters and partial overlaps, in their first order.
  static func minimal(_ filters: [String]) -> [String] {
    var seen = Set<String>()
    var levels: [[Substring]] = []
    for filter in filters where seen.insert(filter).inserted {
      levels.append(filter.split(separator: "/", omittingEmptySubsequences: false))
    }
    var changed = true
    while changed {
      changed = false
      levels = removingCovered(levels)
      guard levels.count <= pairwiseLimit else { break }
      search: for i in levels.indices {
        for j in levels.indices where j > i && intersects(levels[i], levels[j]) {
          levels[i] = join(levels[i], levels[j])
          levels.remove(at: j)
          changed = true
          break search
        }
      }
    }
    return levels.map { $0.joined(separator: "/") }
  }

  /// The filters (distinct) that no other filter of the list covers. Each is looked up in a tree of
  /// all of them, following only the branches that can cover it (its own levels, `+`, `#`): a few
  /// steps a filter, whatever their number.
  static func removingCovered(_ filters: [[Substring]]) -> [[Substring]] {
    final class Node {
      var children: [Substring: Node] = [:]
      var ends: [Int] = []
    }
    let root = Node()
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
    func coveredByOther(_ filter: [Substring], _ self_: Int, _ position: Int, _ node: Node) -> Bool {
      let system = position == 0 && filter.first?.hasPrefix("$") == true
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
  static func covers(_ outer: [Substring], _ inner: [Substring]) -> Bool {
    if let first = outer.first, first == "+" || first == "#", inner.first?.hasPrefix("$") == true {
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
  static func intersects(_ a: [Substring], _ b: [Substring]) -> Bool {
    if let first = a.first, let second = b.first {
      let aWild = first == "+" || first == "#"
      let bWild = second == "+" || second == "#"
      if (aWild && second.hasPrefix("$")) || (bWild && first.hasPrefix("$")) { return false }
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
  static func join(_ a: [Substring], _ b: [Substring]) -> [Substring] {
    var result: [Substring] = []
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
