import Foundation
import IoTSQL
import RulesEngine
import Testing

func temporaryFolder() -> String {
  let path = NSTemporaryDirectory() + "iotrules-actions-" + UUID().uuidString
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func configuration(_ json: String) -> RuleNode {
  try! RuleDocument.parseJSON(Array(json.utf8))
}

let context = ActionBuildContext(ruleName: "test_rule", version: .default, variableNames: [])

/// Expects `build` to fail with exactly the problems `expected` describes, in order: each a prefix
/// of `"line:column message"`.
func expectProblems(
  _ expected: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation,
  _ build: () throws(ActionConfigurationError) -> Void
) {
  do {
    try build()
    Issue.record("no error", sourceLocation: sourceLocation)
  } catch {
    let found = error.all.map { "\($0.position?.description ?? "?") \($0.message)" }
    #expect(found.count == expected.count, "\(found)", sourceLocation: sourceLocation)
    for (line, prefix) in zip(found, expected) {
      #expect(line.hasPrefix(prefix), "\(line)", sourceLocation: sourceLocation)
    }
  }
}

func input(_ value: Value, json: String, topic: String = "sensors/d1/data", payload: String? = nil)
  -> ActionInput
{
  ActionInput(
    ruleName: "test_rule", evaluation: Evaluation(output: Array(json.utf8), value: value),
    message: Message(topic: topic, payload: Array((payload ?? json).utf8), receivedAtMs: 1_717_243_200_000))
}

func object(_ members: [(String, Value)]) -> Value { .object(OrderedObject(members)) }

/// Expects `build` to refuse each configuration text, its message holding the expected words.
func expectRefused(
  _ cases: [(text: String, expected: String)], sourceLocation: Testing.SourceLocation = #_sourceLocation,
  _ build: (RuleNode) throws(ActionConfigurationError) -> Void
) {
  for (text, expected) in cases {
    do {
      try build(configuration(text))
      Issue.record("no error for \(text)", sourceLocation: sourceLocation)
    } catch {
      #expect(error.message.contains(expected), "\(error.message)", sourceLocation: sourceLocation)
    }
  }
}
