import Foundation
import Testing

@testable import IoTSQL

/// Calls a catalogue function the way the VM does.
func invoke(
  _ name: String, _ arguments: [Value], version: SQLVersion = .v2016_03_23,
  context: EvaluationContext = EvaluationContext(topic: "things/myThings/thingOne", payload: [])
) -> Value {
  guard let spec = FunctionRegistry.lookup(name) else {
    Issue.record("no function \(name)")
    return .undefined
  }
  return spec.implementation(
    FunctionCall(arguments: arguments[...], context: context, version: version, prepared: nil))
}

/// A decimal value from its text.
func dec(_ text: String) -> Value { .decimal(SQLDecimal(string: text)!) }

/// A string value.
func str(_ text: String) -> Value { .string(text) }

/// An object value.
func obj(_ members: [(String, Value)]) -> Value { .object(OrderedObject(members)) }

/// True once the JSON helper's reader is merged (it is a stub that always throws before).
let jsonReaderAvailable = (try? JSONReader.parse("1")) != nil
