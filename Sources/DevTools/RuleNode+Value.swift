import IoTSQL
import RulesEngine

extension RuleNode {
  /// The node as an IoT SQL value: numbers read as JSON numbers, objects keep their key order.
  public var value: Value {
    switch kind {
    case .null: return .null
    case .bool(let flag): return .bool(flag)
    case .number(let text):
      return (try? JSONReader.parse(Array(text.utf8), options: JSONReadOptions(wholeDecimalsAsInt: false)))
        ?? .string(text)
    case .string(let text): return .string(text)
    case .array(let elements): return .array(elements.map(\.value))
    case .object(let members):
      var object = OrderedObject()
      for member in members { object[member.key] = member.value.value }
      return .object(object)
    }
  }
}
