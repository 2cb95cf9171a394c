import Testing

@testable import IoTSQL

@Test func placeholderBuilds() { #expect(Value.null.typeName == "Null") }
