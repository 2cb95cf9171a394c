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
  // AWS's Int has up to 34 digits: beyond 64 bits the functions still work (two's complement).
  CallRow("bitnot", [dec("1E30")], dec("-1000000000000000000000000000001")),
  CallRow("bitand", [dec("12345678901234567891"), .int(1)], .int(1)),
  CallRow("bitor", [dec("12345678901234567890"), .int(1)], dec("12345678901234567891")),
  CallRow("bitxor", [dec("9223372036854775808"), .int(1)], dec("9223372036854775809")),
  CallRow("bitnot", [dec("12345678901234567890")], dec("-12345678901234567891")),
  CallRow("bitand", [str("12345678901234567891"), .int(3)], .int(3)),
  CallRow("bitand", [dec("-12345678901234567891"), .int(-1)], dec("-12345678901234567891")),
  CallRow("bitor", [.int(Int.min), dec("-9223372036854775809")], .int(-1)),
  CallRow("bitand", [.int(Int.min), dec("-9223372036854775809")], dec("-18446744073709551616")),
  CallRow("bitnot", [.int(Int.min)], .int(Int.max)),
  // 34 digits at most, in the arguments and the result.
  CallRow("bitnot", [dec("9999999999999999999999999999999999")], .undefined),
  CallRow("bitand", [dec("1E34"), .int(1)], .undefined),
  CallRow(
    "bitor", [dec("9999999999999999999999999999999999"), dec("1267650600228229401496703205376")], .undefined),
])
func bitwiseFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}
