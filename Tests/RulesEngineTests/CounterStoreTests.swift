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

  @Test func prometheusTextListsEveryActionOfEveryRule() {
    let store = CounterStore()
    store.rule("b").matched.add(3)
    store.action(rule: "b", label: "file[0]").succeeded.add(2)
    store.action(rule: "b", label: "errorAction").deadLettered.add()
    store.action(rule: "a", label: "sqlite[0]").failed.add(5)
    let text = store.prometheusText()
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
}
