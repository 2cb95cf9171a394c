import Foundation
import Testing

@testable import IoTSQL

@Test(arguments: [
  CallRow("bitand", [.int(13), .int(5)], .int(5)),
  CallRow("bitor", [.int(8), .int(5)], .int(13)),
  CallRow("bitxor", [.int(13), .int(5)], .int(8)),
  CallRow("bitnot", [.int(13)], .int(-14)),
  CallRow("bitnot", [.int(-1)], .int(0)),
  CallRow("bitand", [dec("13.9"), str("5")], .int(5)),
  CallRow("bitor", [dec("-1.5"), .int(0)], .int(-2)),
  CallRow("bitxor", [str("12.7"), .int(1)], .int(13)),
  CallRow("bitnot", [str("13")], .int(-14)),
  CallRow("bitand", [str("x"), .int(1)], .undefined),
  CallRow("bitand", [.bool(true), .int(1)], .undefined),
  CallRow("bitor", [.null, .int(1)], .undefined),
  CallRow("bitxor", [.int(1), .undefined], .undefined),
  CallRow("bitnot", [.array([])], .undefined),
  CallRow("bitnot", [dec("1E30")], .undefined),
])
func bitwiseFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}
