import Foundation
import Synchronization
import Testing

@testable import RulesEngine

/// Counters are found again by name (they survive reloads) and rendered per rule and action.
struct CounterStoreTests {
  @Test func countersAreTheSameObjectsByName() {
    let store = CounterStore()
    let rule = store.rule("r1")
    #expect(store.rule("r1") === rule)
    let first = store.action(rule: "r1", label: "file[0]")
    let second = store.action(rule: "r1", label: "sqlite[1]")
    #expect(first !== second)
    #expect(store.action(rule: "r1", label: "file[0]") === first)
    #expect(store.action(rule: "r1", label: "sqlite[1]") === second)
    #expect(store.action(rule: "r2", label: "file[0]") !== first)
  }

  /// A scrape reads the counters from the last counted to the first (a rule's `passed` before its
  /// `matched`, an action's `error_path` before its `failed`, acknowledged before received), so that
  /// while the engine counts none shows a later count ahead of the one it follows (read in the
  /// text's order, a scrape under load showed matched 30031 and passed 30032).
  @Test func aScrapeNeverShowsALaterCountAheadOfAnEarlierOne() throws {
    let store = CounterStore()
    let rule = store.rule("r")
    let action = store.action(rule: "r", label: "sqlite[0]")
    rule.loaded.store(true, ordering: .relaxed)
    action.loaded.store(true, ordering: .relaxed)
    let done = Atomic<Bool>(false)
    let counting = Thread {
      for _ in 0..<3_000_000 where !done.load(ordering: .relaxed) {
        store.messagesReceived.add()
        rule.matched.add()
        rule.passed.add()
        action.failed.add()
        action.errorPath.add()
        store.messagesAcknowledged.add()
      }
      done.store(true, ordering: .relaxed)
    }
    counting.start()
    defer { done.store(true, ordering: .relaxed) }
    func value(_ name: String, in text: String) -> Int? {
      text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
        .flatMap { $0.split(separator: " ").last }.flatMap { Int($0) }
    }
    var scrapes = 0
    while scrapes < 300, !done.load(ordering: .relaxed) {
      let text = store.prometheusText()
      scrapes += 1
      let matched = try #require(value(MetricNames.ruleMatched, in: text))
      let passed = try #require(value(MetricNames.rulePassed, in: text))
      let failed = try #require(value(MetricNames.actionFailed, in: text))
      let errorPath = try #require(value(MetricNames.actionErrorPath, in: text))
      let received = try #require(value(MetricNames.messagesReceived, in: text))
      let acknowledged = try #require(value(MetricNames.messagesAcknowledged, in: text))
      #expect(passed <= matched && failed <= passed && errorPath <= failed, "\(scrapes): \(text)")
      #expect(acknowledged <= errorPath && matched <= received, "\(scrapes)")
    }
    #expect(scrapes > 0)
  }

  @Test func prometheusTextListsEveryActionOfEveryRule() {
    let store = CounterStore()
    store.rule("b").matched.add(3)
    store.action(rule: "b", label: "file[0]").succeeded.add(2)
    store.action(rule: "b", label: "errorAction").deadLettered.add()
    store.action(rule: "a", label: "sqlite[0]").failed.add(5)
    // Only what ran is shown: a rule (or action) whose file never loaded is not.
    store.rule("never_loaded").matched.add(1)
    store.action(rule: "b", label: "http[9]").failed.add(1)
    for rule in ["a", "b"] { store.rule(rule).loaded.store(true, ordering: .relaxed) }
    for (rule, label) in [("b", "file[0]"), ("b", "errorAction"), ("a", "sqlite[0]")] {
      store.action(rule: rule, label: label).loaded.store(true, ordering: .relaxed)
    }
    let text = store.prometheusText()
    #expect(!text.contains("never_loaded") && !text.contains("http[9]"))
    #expect(text.contains(#"iotrules_rule_matched_total{rule="b"} 3"#))
    #expect(text.contains(#"iotrules_action_succeeded_total{rule="b",action="file[0]"} 2"#))
    #expect(text.contains(#"iotrules_action_dead_lettered_total{rule="b",action="errorAction"} 1"#))
    #expect(text.contains(#"iotrules_action_failed_total{rule="a",action="sqlite[0]"} 5"#))
    // Rules sorted by name, a rule's actions in creation order.
    let lines = text.split(separator: "\n").filter { $0.hasPrefix("iotrules_action_succeeded_total") }
    #expect(
      lines.map { String($0.split(separator: " ")[0]) } == [
        #"iotrules_action_succeeded_total{rule="a",action="sqlite[0]"}"#,
        #"iotrules_action_succeeded_total{rule="b",action="file[0]"}"#,
        #"iotrules_action_succeeded_total{rule="b",action="errorAction"}"#,
      ])
  }

  @Test func latencyHistogramIsCumulativePrometheusText() {
    let store = CounterStore()
    var tally = LatencyHistogram.Tally()
    for milliseconds in [1, 5, 7, 300, 20_000] { tally.add(nanoseconds: Int64(milliseconds) * 1_000_000) }
    store.latency.add(tally)
    store.latency.add(LatencyHistogram.Tally())
    let text = store.prometheusText()
    let name = "iotrules_message_latency_seconds"
    #expect(text.contains("# TYPE \(name) histogram\n"))
    // Bounds are inclusive (5 ms falls in le="0.005"); buckets count everything below them.
    #expect(text.contains("\(name)_bucket{le=\"0.005\"} 2\n"))
    #expect(text.contains("\(name)_bucket{le=\"0.01\"} 3\n"))
    #expect(text.contains("\(name)_bucket{le=\"0.25\"} 3\n"))
    #expect(text.contains("\(name)_bucket{le=\"0.5\"} 4\n"))
    #expect(text.contains("\(name)_bucket{le=\"10.0\"} 4\n"))
    #expect(text.contains("\(name)_bucket{le=\"+Inf\"} 5\n"))
    #expect(text.contains("\(name)_count 5\n"))
    #expect(text.contains("\(name)_sum 20.313\n"))
  }

  /// A batch's messages that no action took share one latency, counted once for them all.
  @Test func latencyOfManyAtOnceCountsEach() {
    let store = CounterStore()
    var tally = LatencyHistogram.Tally()
    tally.add(nanoseconds: 2_000_000, count: 3)
    tally.add(nanoseconds: 300_000_000)
    store.latency.add(tally)
    let text = store.prometheusText()
    let name = "iotrules_message_latency_seconds"
    #expect(text.contains("\(name)_bucket{le=\"0.005\"} 3\n"), "\(text)")
    #expect(text.contains("\(name)_count 4\n"))
    #expect(text.contains("\(name)_sum 0.306\n"), "\(text)")
  }

  /// The sum grows by the messages in flight, in seconds each second: past Int64 nanoseconds (104
  /// days at a full bound of 1,024) it stays positive, not wrapped (read as a counter reset).
  @Test func latencySumDoesNotWrap() {
    let store = CounterStore()
    for _ in 0..<3 {
      var tally = LatencyHistogram.Tally()
      tally.add(nanoseconds: Int64.max / 2)
      store.latency.add(tally)
    }
    let sum = store.prometheusText().split(separator: "\n").first {
      $0.hasPrefix("iotrules_message_latency_seconds_sum ")
    }
    let seconds = sum.flatMap { Double($0.split(separator: " ")[1]) } ?? -1
    #expect(seconds > 1.3e10, "\(String(describing: sum))")
  }
}
