import IoTSQL
import Synchronization

/// An immutable snapshot of the loaded rules and their topic trie; a reload swaps one snapshot for
/// another, and each message is evaluated against exactly one.
public final class RuleSet: Sendable {
  /// The rules, sorted by name.
  public let rules: [Rule]
  /// Rule indices by FROM filter.
  public let trie: TopicTrie<Int>
  let activity = Mutex<(active: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))
  /// The set this one replaced, while messages evaluated against it (or against a set before it)
  /// were still in flight: a rule kept by a reload and retired by a later one has results of both
  /// sets' messages, and its actions were shut down under the earlier set's retries.
  private let replaced = Mutex<RuleSet?>(nil)

  /// Builds a snapshot; disabled rules are kept (for `check` and reload diffs) but not in the trie.
  public init(rules: [Rule]) {
    self.rules = rules.sorted { $0.name < $1.name }
    var trie = TopicTrie<Int>()
    for (index, rule) in self.rules.enumerated() where !rule.disabled && !rule.topicFilter.isEmpty {
      trie.insert(rule.topicFilter, index)
    }
    trie.compact()
    self.trie = trie
  }

  /// Calls `rule` with each rule's counters and `action` with each action's, error actions too.
  private func visitCounters(rule: (RuleCounters) -> Void, action: (ActionCounters) -> Void) {
    func visit(_ configured: ConfiguredAction) {
      action(configured.counters)
      if let errorAction = configured.errorAction { visit(errorAction) }
    }
    for each in rules {
      rule(each.counters)
      each.actions.forEach(visit)
      if let errorAction = each.errorAction { visit(errorAction) }
    }
  }

  /// Marks every rule's and action's counters as running, for `/metrics`.
  func markCountersLoaded() {
    visitCounters(
      rule: { $0.loaded.store(true, ordering: .relaxed) },
      action: { $0.loaded.store(true, ordering: .relaxed) })
  }

  /// Marks the counters of this set's rules and actions that `next` does not run as retired: a
  /// removed or renamed rule's series leave `/metrics` (they stayed, frozen, until a restart, and
  /// rule churn grew the series without end). Its counters stay kept by name: a rule back under
  /// its name goes on counting from where it was.
  func retireCounters(keeping next: RuleSet) {
    var kept = Set<ObjectIdentifier>()
    next.visitCounters(
      rule: { kept.insert(ObjectIdentifier($0)) }, action: { kept.insert(ObjectIdentifier($0)) })
    visitCounters(
      rule: { if !kept.contains(ObjectIdentifier($0)) { $0.loaded.store(false, ordering: .relaxed) } },
      action: { if !kept.contains(ObjectIdentifier($0)) { $0.loaded.store(false, ordering: .relaxed) } })
  }

  /// The empty rule set.
  public static let empty = RuleSet(rules: [])

  /// The rule named `name`.
  public func rule(named name: String) -> Rule? { index(named: name[...]).map { rules[$0] } }

  /// The index of the rule named `name` (the rules are sorted by name).
  func index(named name: Substring) -> Int? {
    var low = 0
    var high = rules.count
    while low < high {
      let middle = (low + high) / 2
      // By bytes, as the rules are sorted (names are ASCII): U+212A KELVIN SIGN is no `K`.
      if rules[middle].name.utf8.lexicographicallyPrecedes(name.utf8) {
        low = middle + 1
      } else {
        high = middle
      }
    }
    return low < rules.count && rules[low].name.utf8.elementsEqual(name.utf8) ? low : nil
  }

  /// Calls `body` with the index of every enabled rule `topic` goes to: those whose FROM filter
  /// matches it, or, for a Basic Ingest topic (`$aws/rules/NAME/TOPIC`), the rule `NAME` alone when
  /// its filter matches `TOPIC` or it has no FROM.
  @inline(__always)
  func forEachMatch(_ topic: String, _ body: (Int) -> Void) {
    if topic.utf8.first == UInt8(ascii: "$"), let ingest = BasicIngest.split(topic) {
      // The rule's topic goes through the trie like any other (the same byte-wise matching), and
      // only the named rule is kept.
      guard let named = index(named: ingest.rule), !rules[named].disabled else { return }
      // A rule without FROM takes every topic sent to it this way.
      if rules[named].topicFilter.isEmpty {
        body(named)
        return
      }
      trie.forEachMatch(String(ingest.topic)) { index in
        if index == named { body(index) }
      }
      return
    }
    trie.forEachMatch(topic, body)
  }

  func enter(_ count: Int = 1) { activity.withLock { $0.active += count } }

  func leave(_ count: Int = 1) {
    let waiters: [CheckedContinuation<Void, Never>] = activity.withLock { state in
      state.active -= count
      guard state.active == 0 else { return [] }
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume() }
  }

  /// Records that this set replaces `previous`, which no message enters any more. The chain it
  /// starts keeps only the sets with messages in flight, linked newest first: the idle ones are
  /// left out at each swap (no message enters a replaced set, so they stay idle), and the chain is
  /// as long as the sets still busy, not as the reloads (one kept its whole history under steady
  /// traffic: the outgoing set is always busy). A set already in the chain, or this one, is not
  /// linked again (a swap back to an earlier set).
  func replacing(_ previous: RuleSet) {
    var busy: [RuleSet] = []
    var seen: Set<ObjectIdentifier> = [ObjectIdentifier(self)]
    var next: RuleSet? = previous
    while let set = next, seen.insert(ObjectIdentifier(set)).inserted {
      if set.activity.withLock({ $0.active }) > 0 { busy.append(set) }
      next = set.replaced.withLock { $0 }
    }
    // An idle set's own link stays as it was: a wait going through it still reaches the busy ones.
    for (index, set) in busy.enumerated() {
      set.replaced.withLock { $0 = index + 1 < busy.count ? busy[index + 1] : nil }
    }
    replaced.withLock { $0 = busy.first }
  }

  /// How many replaced sets the chain from this one holds.
  var replacedChainLength: Int {
    var count = 0
    var next = replaced.withLock { $0 }
    while let set = next {
      count += 1
      next = set.replaced.withLock { $0 }
    }
    return count
  }

  /// Returns when no message evaluated against this snapshot, or against a set it replaced, is
  /// still in flight (so its retired actions can be shut down).
  public func waitUntilIdle() async {
    var next: RuleSet? = self
    while let set = next {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let ready = set.activity.withLock { state -> Bool in
          if state.active == 0 { return true }
          state.waiters.append(continuation)
          return false
        }
        if ready { continuation.resume() }
      }
      // No message enters a replaced set: once idle, it stays so.
      next = set.replaced.withLock { $0 }
    }
  }
}
