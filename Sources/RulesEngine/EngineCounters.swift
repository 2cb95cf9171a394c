import IoTSQL
import Synchronization

/// The counters of one rule: plain atomics (a registry lookup per rule would make loading 10,000
/// rules quadratic), kept by name in `CounterStore` so they survive reloads.
public final class RuleCounters: Sendable {
  /// Messages whose topic matched FROM.
  public let matched = Atomic<Int>(0)
  /// Results that passed WHERE.
  public let passed = Atomic<Int>(0)
  /// Messages whose fields the rule read although the payload is not JSON (AWS's `ParseError`: the
  /// fields were Undefined; `get(*, 'key')` is not seen), and messages whose evaluation was
  /// stopped by ``EvaluationLimits`` (no result). AWS's SQL has no other evaluation error: a type
  /// problem is Undefined.
  public let evaluationErrors = Atomic<Int>(0)
  /// Set while a version of the rule runs (is in a dispatcher's rule set): only such rules are in
  /// `/metrics` (a file that never loaded showed its rule and actions at zero; a removed rule's
  /// series stayed for good).
  public let loaded = Atomic<Bool>(false)
  /// The rule's action counters, a chain in creation order (changed only under `CounterStore`'s
  /// lock: a chain costs no array and no second dictionary for each of 10,000 rules).
  nonisolated(unsafe) var firstAction: ActionCounters?
}

/// The counters of one action of one rule.
public final class ActionCounters: Sendable {
  /// The action's label (`sqlite[0]`, `file[1]`, `errorAction`).
  public let label: String
  /// The next action counters of the same rule (see `RuleCounters.firstAction`).
  nonisolated(unsafe) var next: ActionCounters?
  /// Results written.
  public let succeeded = Atomic<Int>(0)
  /// Results an attempt failed for.
  public let failed = Atomic<Int>(0)
  /// Results sent again after a transient failure, once per retry.
  public let retried = Atomic<Int>(0)
  /// Failures handed to an error action.
  public let errorPath = Atomic<Int>(0)
  /// Failures written to the dead-letter file.
  public let deadLettered = Atomic<Int>(0)
  /// Set while the action runs (see ``RuleCounters/loaded``).
  public let loaded = Atomic<Bool>(false)

  init(label: String) { self.label = label }
}

extension Atomic where Value == Int {
  /// Adds `amount`, releasing: a scrape that reads it acquiring sees every count made before it
  /// (``CounterStore/prometheusText()`` relies on that; on x86 it costs nothing more than relaxed).
  @inlinable func add(_ amount: Int = 1) { wrappingAdd(amount, ordering: .releasing) }
}

/// The time from a message's arrival in the engine to its acknowledgement, as a Prometheus
/// histogram. A batch of finished messages is tallied apart and added under one lock (the metrics
/// library's histogram took a lock and searched its buckets as `Duration`s for every message: 3%
/// of a replay's CPU).
public final class LatencyHistogram: Sendable {
  /// Bucket upper bounds in nanoseconds: 5 ms to 10 s, the metrics library's default for timers.
  static let bounds: [Int64] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000].map {
    $0 * 1_000_000
  }
  /// Per bucket (not cumulative), the last one past every bound; the sum in seconds (a Double, as
  /// Prometheus keeps it: nanoseconds in an Int64 wrapped negative after 104 days of a full
  /// in-flight bound's waits, read as a counter reset).
  let state = Mutex<(counts: [Int], sum: Double)>((Array(repeating: 0, count: bounds.count + 1), 0))

  /// Counts of one batch, before they are added.
  struct Tally {
    /// Inline (no allocation for each finished batch, often of one message): one per bound and one
    /// past them.
    var counts = InlineArray<12, Int>(repeating: 0)
    var sum: Int64 = 0

    /// Counts one latency, or `count` of the same.
    mutating func add(nanoseconds: Int64, count: Int = 1) {
      var bucket = 0
      while bucket < LatencyHistogram.bounds.count, nanoseconds > LatencyHistogram.bounds[bucket] {
        bucket += 1
      }
      counts[bucket] += count
      sum &+= nanoseconds &* Int64(count)
    }
  }

  /// Adds a batch's counts.
  func add(_ tally: Tally) {
    state.withLock { state in
      for index in tally.counts.indices { state.counts[index] += tally.counts[index] }
      state.sum += Double(tally.sum) / 1e9
    }
  }

  /// The histogram as Prometheus text exposition.
  func prometheusText() -> String {
    let (counts, sum) = state.withLock { ($0.counts, $0.sum) }
    let name = MetricNames.latency
    var text = "# HELP \(name) From a message's arrival in the engine to its acknowledgement.\n"
    text += "# TYPE \(name) histogram\n"
    var cumulative = 0
    for (index, bound) in Self.bounds.enumerated() {
      cumulative += counts[index]
      text += "\(name)_bucket{le=\"\(Double(bound) / 1e9)\"} \(cumulative)\n"
    }
    cumulative += counts[Self.bounds.count]
    text += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
    text += "\(name)_sum \(sum)\n\(name)_count \(cumulative)\n"
    return text
  }
}

/// Every rule's and action's counters by name, and the message latency; `prometheusText()` renders
/// them for `/metrics`.
public final class CounterStore: Sendable {
  /// The process-wide store.
  public static let shared = CounterStore()
  let rules = Mutex<[String: RuleCounters]>([:])
  /// The latency of every message the engine finished.
  let latency = LatencyHistogram()
  /// Messages taken from sources.
  public let messagesReceived = Atomic<Int>(0)
  /// Messages acknowledged done.
  public let messagesAcknowledged = Atomic<Int>(0)
  /// Messages that could not be kept safe (acknowledged failed: the source keeps them).
  public let messagesFailed = Atomic<Int>(0)
  /// Replay lines skipped as malformed.
  public let malformedLines = Atomic<Int>(0)
  /// Records a source refused before any rule saw them (a Kafka key or header naming no topic).
  public let messagesRefused = Atomic<Int>(0)
  /// Messages addressed to one rule that does not take them (AWS's `RuleNotFound`): a Basic Ingest
  /// topic naming no running rule, or no rule at all (`$aws/rules/NAME` without a topic after it),
  /// a replayed error record of a rule removed, renamed, disabled or no longer matching its topic.
  public let messagesForMissingRules = Atomic<Int>(0)
  /// Reloads of the rule set in which every file read loaded.
  public let reloads = Atomic<Int>(0)
  /// Reloads in which a file failed to load (its previous version, if any, kept running), or a
  /// rule path was gone.
  public let reloadsWithErrors = Atomic<Int>(0)
  /// Rule files whose latest version failed to load (a gauge).
  public let ruleFilesFailing = Atomic<Int>(0)

  /// Creates an empty store.
  public init() {}

  /// The counters of rule `name` (the same object across reloads).
  public func rule(_ name: String) -> RuleCounters {
    rules.withLock { Self.rule(name, in: &$0) }
  }

  /// The counters of action `label` of rule `rule` (the same object across reloads).
  public func action(rule: String, label: String) -> ActionCounters {
    rules.withLock { rules in
      let counters = Self.rule(rule, in: &rules)
      var last: ActionCounters?
      var next = counters.firstAction
      while let action = next {
        if action.label == label { return action }
        last = action
        next = action.next
      }
      let created = ActionCounters(label: label)
      if let last { last.next = created } else { counters.firstAction = created }
      return created
    }
  }

  private static func rule(_ name: String, in rules: inout [String: RuleCounters]) -> RuleCounters {
    if let existing = rules[name] { return existing }
    let counters = RuleCounters()
    rules[name] = counters
    return counters
  }

  /// Every rule's action counters in creation order, read under the lock.
  private func actionSnapshot() -> [(String, [ActionCounters])] {
    rules.withLock { rules in
      rules.map { name, counters in
        var list: [ActionCounters] = []
        var next = counters.firstAction
        while let action = next {
          list.append(action)
          next = action.next
        }
        return (name, list)
      }
    }
  }

  /// The counters as Prometheus text exposition.
  public func prometheusText() -> String {
    // Read in the reverse order of the engine's counting (a message is received, matched, passed,
    // written or failed, handed to an error path, acknowledged, then timed), so that no scrape shows
    // a later count ahead of the one it follows: read in the text's order, a rule's `passed` was
    // read after its `matched` and could be ahead of it under load (matched 30031, passed 30032).
    // (Loads acquiring, counts releasing: so on any processor, not only x86's ordered loads.)
    let latencyText = latency.prometheusText()
    let acknowledged = messagesAcknowledged.load(ordering: .acquiring)
    let notAcknowledged = messagesFailed.load(ordering: .acquiring)
    let actionSnapshot = actionSnapshot().sorted { $0.0 < $1.0 }
    let actionFamilies: [(String, String, (ActionCounters) -> Int)] = [
      (MetricNames.actionSucceeded, "Results an action wrote.", { $0.succeeded.load(ordering: .acquiring) }),
      (
        MetricNames.actionFailed,
        "Failed attempts, counted per result (each result of a failed batch), and results given up without an attempt of their own (behind an earlier failing result of their topic, an error action's records while it rests after failing, or at a stop): every result that takes an error path counts once at least.",
        { $0.failed.load(ordering: .acquiring) }
      ),
      (
        MetricNames.actionRetried, "Results sent again after a transient failure (once per retry).",
        { $0.retried.load(ordering: .acquiring) }
      ),
      (
        MetricNames.actionErrorPath, "Failures handed to an error action.",
        { $0.errorPath.load(ordering: .acquiring) }
      ),
      (
        MetricNames.actionDeadLettered, "Failures written to the dead-letter file.",
        { $0.deadLettered.load(ordering: .acquiring) }
      ),
    ]
    let loadedActions = actionSnapshot.map { rule, list in
      (rule, list.filter { $0.loaded.load(ordering: .acquiring) })
    }
    let actionValues = Self.readBackwards(actionFamilies.map(\.2), of: loadedActions.flatMap(\.1))
    let ruleSnapshot = rules.withLock { $0 }.filter { $0.value.loaded.load(ordering: .acquiring) }.sorted {
      $0.key < $1.key
    }
    let ruleFamilies: [(String, String, (RuleCounters) -> Int)] = [
      (
        MetricNames.ruleMatched, "Messages whose topic matched the rule's FROM.",
        { $0.matched.load(ordering: .acquiring) }
      ),
      (MetricNames.rulePassed, "Results that passed WHERE.", { $0.passed.load(ordering: .acquiring) }),
      (
        MetricNames.ruleEvaluationErrors,
        "Messages whose fields the rule read although the payload is not JSON (AWS's ParseError), or whose evaluation was stopped by a limit (no result).",
        { $0.evaluationErrors.load(ordering: .acquiring) }
      ),
    ]
    let ruleValues = Self.readBackwards(ruleFamilies.map(\.2), of: ruleSnapshot.map(\.value))
    // Counted after the message is received: read before it.
    let forMissingRules = messagesForMissingRules.load(ordering: .acquiring)
    var text = ""
    let totals: [(String, String, Int)] = [
      (
        MetricNames.messagesReceived, "Messages taken from the source.",
        messagesReceived.load(ordering: .acquiring)
      ),
      (
        MetricNames.messagesAcknowledged,
        "Messages acknowledged done: every action wrote or handed its failure on.",
        acknowledged
      ),
      (
        MetricNames.messagesFailed,
        "Messages not acknowledged (their acknowledgement to the source said failed): not even the dead-letter file took a record; the source keeps them.",
        notAcknowledged
      ),
      (
        MetricNames.malformedLines, "Replay lines skipped as malformed (each logged with its line number).",
        malformedLines.load(ordering: .acquiring)
      ),
      (
        MetricNames.messagesRefused,
        "Records a source refused before any rule saw them (a Kafka key or header that names no topic: a wildcard, NUL, not UTF-8), each logged with its place.",
        messagesRefused.load(ordering: .acquiring)
      ),
      (
        MetricNames.messagesForMissingRules,
        "Messages addressed to one rule that is not loaded or is disabled, so no rule took them (AWS's RuleNotFound): a Basic Ingest topic $aws/rules/NAME/... naming no running rule, or a replayed error record of a rule removed, renamed, disabled or no longer matching its topic; each name logged once.",
        forMissingRules
      ),
    ]
    for (name, help, value) in totals {
      text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
    }
    let reloadsName = MetricNames.ruleReloads
    text +=
      "# HELP \(reloadsName) Reloads of the rule set, by outcome (errors: a file failed to load, a rule path was gone, or a test file was left without its rule).\n"
    text += "# TYPE \(reloadsName) counter\n"
    text += "\(reloadsName){outcome=\"ok\"} \(reloads.load(ordering: .acquiring))\n"
    text += "\(reloadsName){outcome=\"errors\"} \(reloadsWithErrors.load(ordering: .acquiring))\n"
    let failingName = MetricNames.ruleFilesFailing
    text +=
      "# HELP \(failingName) Rule files whose latest load failed: a broken or refused version (a previous one, if any, keeps running), or tests failing beside a running rule; test files left without their rule; and rule paths gone or left with no rule file (the running rules kept).\n"
    text += "# TYPE \(failingName) gauge\n\(failingName) \(ruleFilesFailing.load(ordering: .acquiring))\n"
    for (family, (name, help, _)) in ruleFamilies.enumerated() {
      text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
      for (index, rule) in ruleSnapshot.enumerated() {
        text += "\(name){rule=\"\(Self.escape(rule.key))\"} \(ruleValues[family][index])\n"
      }
    }
    let overruns = MetricNames.regexBudgetOverruns
    text +=
      "# HELP \(overruns) Regular-expression matches stopped by their step budget (the call was Undefined).\n# TYPE \(overruns) counter\n\(overruns) \(RegexBudget.overruns)\n"
    for (family, (name, help, _)) in actionFamilies.enumerated() {
      text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
      var index = 0
      for (rule, list) in loadedActions {
        for counters in list {
          text +=
            "\(name){rule=\"\(Self.escape(rule))\",action=\"\(Self.escape(counters.label))\"} \(actionValues[family][index])\n"
          index += 1
        }
      }
    }
    return text + latencyText
  }

  /// Each reading of each counter set, `values[family][item]`, taken from the last family to the
  /// first: families in the order the engine counts them are then never read ahead of each other.
  static func readBackwards<Counters>(_ readings: [(Counters) -> Int], of items: [Counters]) -> [[Int]] {
    var values = [[Int]](repeating: [], count: readings.count)
    for family in readings.indices.reversed() { values[family] = items.map(readings[family]) }
    return values
  }

  static func escape(_ text: String) -> String {
    text.replacingExactly("\\", with: "\\\\").replacingExactly("\"", with: "\\\"")
      .replacingExactly("\n", with: "\\n")
  }
}
