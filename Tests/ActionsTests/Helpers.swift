import Foundation
import IoTSQL
import RulesEngine

func temporaryFolder() -> String {
  let path = NSTemporaryDirectory() + "iotrules-actions-" + UUID().uuidString
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func configuration(_ json: String) -> RuleNode {
  try! RuleDocument.parseJSON(Array(json.utf8))
}

let context = ActionBuildContext(ruleName: "test_rule", version: .default, variableNames: [])

func input(_ value: Value, json: String, topic: String = "sensors/d1/data", payload: String? = nil)
  -> ActionInput
{
  ActionInput(
    ruleName: "test_rule", evaluation: Evaluation(output: Array(json.utf8), value: value),
    message: Message(topic: topic, payload: Array((payload ?? json).utf8), receivedAtMs: 1_717_243_200_000))
}

func object(_ members: [(String, Value)]) -> Value { .object(OrderedObject(members)) }
