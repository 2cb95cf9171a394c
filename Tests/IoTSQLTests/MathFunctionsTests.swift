import Foundation
import Testing

@testable import IoTSQL

/// One call and its result.
struct CallRow: Sendable, CustomTestStringConvertible {
  var name: String
  var arguments: [Value]
  var expected: Value
  var version: SQLVersion
  init(_ name: String, _ arguments: [Value], _ expected: Value, _ version: SQLVersion = .v2016_03_23) {
    self.name = name
    self.arguments = arguments
    self.expected = expected
    self.version = version
  }
  var testDescription: String { "\(name)(\(arguments)) [\(version.rawValue)]" }
}

private let wrongTypes: [Value] = [.bool(true), .array([.int(1)]), obj([]), .null, .undefined, str("x")]

@Test(
  arguments: [
    // Guide examples.
    CallRow("abs", [.int(-5)], .int(5)),
    CallRow("abs", [str("-5.123")], dec("5.123")),
    CallRow("abs", [dec("-2.5")], dec("2.5")),
    CallRow("abs", [.int(Int.min)], dec("9223372036854775808")),
    CallRow("acos", [.int(0)], dec("1.5707963267948966")),
    CallRow("acos", [.int(2)], .undefined),
    CallRow("asin", [.int(0)], .int(0)),
    CallRow("asin", [.int(0)], dec("0"), .v2015_10_08),
    CallRow("atan", [.int(0)], .int(0)),
    CallRow("atan2", [.int(1), .int(0)], dec("1.5707963267948966")),
    CallRow("atan2", [str("1"), str("0")], dec("1.5707963267948966")),
    CallRow("atan2", [.bool(true), .int(0)], .undefined),
    CallRow("cos", [.int(0)], .int(1)),
    CallRow("cosh", [dec("2.3")], dec("5.037220649268761")),
    CallRow("sinh", [dec("2.3")], dec("4.936961805545957")),
    CallRow("tanh", [dec("2.3")], dec("0.9800963962661914")),
    CallRow("tan", [.int(3)], dec("-0.1425465430742778")),
    CallRow("sin", [.int(0)], .int(0)),
    CallRow("exp", [.int(1)], dec("2.718281828459045")),
    CallRow("ln", [dec("2.718281828459045")], .int(1)),
    CallRow("ln", [.int(0)], .undefined),
    CallRow("ln", [.int(-1)], .undefined),
    CallRow("log", [.int(100)], .int(2)),
    CallRow("log", [.int(100)], dec("2"), .v2015_10_08),
    CallRow("power", [.int(2), .int(5)], .int(32)),
    CallRow("power", [str("2"), dec("0.5")], dec("1.4142135623730951")),
    CallRow("power", [.int(-8), dec("0.5")], .undefined),
    CallRow("power", [.int(10), .int(400)], .undefined),
    // Every double is within AWS's Decimal range: its digits are kept, 0 only when the double is.
    CallRow("power", [.int(2), .int(500)], dec("3.273390607896142E150")),
    CallRow("power", [.int(2), .int(1000)], dec("1.0715086071862673E301")),
    CallRow("exp", [dec("354.23")], dec("6.92044983040748E153")),
    CallRow("exp", [.int(-294)], dec("2.0769322043867094E-128")),
    CallRow("exp", [.int(-300)], dec("5.148200222412013E-131")),
    CallRow("exp", [.int(-2300)], .int(0)),
    CallRow("power", [.int(10), .int(-150)], dec("1E-150")),
    CallRow("power", [dec("0.1"), .int(200)], dec("1.0000000000000112E-200")),
    CallRow("sqrt", [.int(9)], .int(3)),
    CallRow("sqrt", [.int(-9)], .undefined),
    CallRow("ceil", [dec("1.2")], .int(2)),
    CallRow("ceil", [dec("-1.2")], .int(-1)),
    CallRow("ceil", [.int(4)], .int(4)),
    CallRow("ceil", [str("1.2")], .int(2)),
    CallRow("floor", [dec("1.2")], .int(1)),
    CallRow("floor", [dec("-1.2")], .int(-2)),
    CallRow("floor", [dec("1.2")], .int(1), .v2015_10_08),
    CallRow("round", [dec("1.2")], .int(1)),
    CallRow("round", [dec("1.5")], .int(2)),
    CallRow("round", [dec("1.7")], .int(2)),
    CallRow("round", [dec("-1.1")], .int(-1)),
    CallRow("round", [dec("-1.5")], .int(-2)),
    CallRow("round", [dec("2.5")], .int(3)),
    CallRow("round", [str("-2.5")], .int(-3)),
    CallRow("round", [dec("1E30")], dec("1E30")),
    CallRow("sign", [.int(-7)], .int(-1)),
    CallRow("sign", [.int(0)], .int(0)),
    CallRow("sign", [.int(13)], .int(1)),
    CallRow("sign", [dec("-0.5")], .int(-1)),
    CallRow("sign", [str("2.5")], .int(1)),
    CallRow("trunc", [dec("2.3"), .int(0)], .int(2)),
    CallRow("trunc", [dec("2.3123"), .int(2)], dec("2.31")),
    CallRow("trunc", [dec("2.888"), .int(2)], dec("2.88")),
    CallRow("trunc", [dec("2.00"), .int(5)], .int(2)),
    CallRow("trunc", [dec("-2.888"), .int(2)], dec("-2.88")),
    CallRow("trunc", [dec("2.888"), .int(-3)], .int(2)),
    CallRow("trunc", [dec("2.888"), dec("1.9")], dec("2.8")),
    CallRow("trunc", [.int(7), .int(2)], .int(7)),
    CallRow("trunc", [str("2.888"), .int(1)], dec("2.8")),
    CallRow("trunc", [dec("2.888"), str("1")], .undefined),
    CallRow("trunc", [.bool(true), .int(1)], .undefined),
    CallRow("mod", [.int(8), .int(3)], .int(2)),
    CallRow("remainder", [.int(8), .int(3)], .int(2)),
    CallRow("mod", [dec("8.5"), .int(3)], dec("2.5")),
    CallRow("mod", [str("8"), str("3")], .int(2)),
    CallRow("mod", [.int(8), .int(0)], .undefined),
    CallRow("mod", [.bool(true), .int(3)], .undefined),
    CallRow("nanvl", [.int(8), .int(3)], .int(8)),
    CallRow("nanvl", [.undefined, .int(3)], .int(3)),
    CallRow("nanvl", [.null, str("x")], str("x")),
    CallRow("nanvl", [str("a"), .int(3)], str("a")),
  ]
    + ["abs", "acos", "cos", "sqrt", "ceil", "floor", "round", "sign", "exp", "ln", "log"].flatMap { name in
      wrongTypes.map { CallRow(name, [$0], .undefined) }
    })
func mathFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}

@Test func randIsInUnitInterval() {
  for _ in 0..<100 {
    guard case .decimal(let value) = invoke("rand", []) else {
      // A whole result (exactly 0) is an Int under 2016-03-23.
      #expect(invoke("rand", []) != .undefined)
      continue
    }
    #expect(value >= 0 && value < 1)
  }
  #expect(FunctionRegistry.lookup("rand")?.isDeterministic == false)
}
