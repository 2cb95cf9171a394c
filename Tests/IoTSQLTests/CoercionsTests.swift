import Foundation
import Testing

@testable import IoTSQL

@Test(arguments: [
  ("0", true), ("-1.2", true), ("5E-12", true), ("5e12", true), ("12.5E-3", true), ("-0", true),
  ("007", true), (" 5", false), ("5 ", false), ("+5", false), (".5", false), ("5.", false),
  ("1E+2", false), ("1E", false), ("-", false), ("", false), ("0x1F", false), ("NaN", false),
  ("Infinity", false), ("1.2.3", false), ("1,5", false), ("١٢", false), ("1e-", false), ("--1", false),
])
func numericStringPattern(_ text: String, _ matches: Bool) {
  #expect(Coercions.isNumeric(text) == matches)
}

@Test(arguments: [
  (Value.int(3), SQLVersion.v2016_03_23, Value.int(3)),
  (dec("1.5"), .v2016_03_23, dec("1.5")),
  (str("10"), .v2016_03_23, .int(10)),
  (str("10"), .v2015_10_08, dec("10")),
  (str("10.0"), .v2016_03_23, .int(10)),
  (str("-1.2"), .v2016_03_23, dec("-1.2")),
  (str("5E-12"), .v2016_03_23, dec("0.000000000005")),
  (str("123456789012345678901234567890"), .v2016_03_23, dec("123456789012345678901234567890")),
  (str("abc"), .v2016_03_23, .undefined),
  (.null, .v2016_03_23, .null),
  (.bool(true), .v2016_03_23, .undefined),
  (.array([]), .v2016_03_23, .undefined),
  (.undefined, .v2016_03_23, .undefined),
])
func implicitToNumber(_ value: Value, _ version: SQLVersion, _ expected: Value) {
  #expect(Coercions.toNumber(value, version: version) == expected)
}

@Test(arguments: [
  (Value.int(-7), "-7" as String?),
  (dec("0.3"), "0.3"),
  (dec("1.5707963267948966"), "1.5707963267948966"),
  (dec("5E-12"), "5E-12"),
  (.bool(false), "false"),
  (str("x"), "x"),
  (.array([.int(1), str("a"), .null, .bool(true)]), "[1,\"a\",null,true]"),
  (obj([("k", str("v\"q")), ("n", .array([]))]), "{\"k\":\"v\\\"q\",\"n\":[]}"),
  (.null, nil), (.undefined, nil), (.binary([1, 2]), nil),
])
func implicitToText(_ value: Value, _ expected: String?) {
  #expect(Coercions.toText(value) == expected)
}

@Test(arguments: [
  (Value.bool(true), true as Bool?), (str("TRUE"), true), (str("false"), false), (str("no"), nil),
  (.int(1), nil), (dec("0"), nil), (.null, nil), (.undefined, nil),
])
func implicitToBool(_ value: Value, _ expected: Bool?) {
  #expect(Coercions.toBool(value) == expected)
}

@Test(arguments: [
  (dec("10.0"), SQLVersion.v2016_03_23, Value.int(10)),
  (dec("10.0"), .v2015_10_08, dec("10")),
  (dec("10.5"), .v2016_03_23, dec("10.5")),
  (dec("1E30"), .v2016_03_23, dec("1E30")),
  (str("10"), .v2016_03_23, str("10")),
])
func wholeNumberRule(_ value: Value, _ version: SQLVersion, _ expected: Value) {
  #expect(Coercions.normalized(value, version: version) == expected)
}

@Test(arguments: [
  (Value.int(10), "10"), (dec("10"), "10.0"), (dec("0.3"), "0.3"), (dec("-2.5"), "-2.5"),
  (dec("0.000001"), "0.000001"), (dec("0.0000001"), "1E-7"),
  // A whole number of 19 to 34 digits is one of AWS's Ints: digits only.
  (dec("1E21"), "1000000000000000000000"), (dec("123456789012345678901"), "123456789012345678901"),
  (dec("-1.25E30"), "-1250000000000000000000000000000"), (dec("1E34"), "1E+34"),
  (dec("1.5E21"), "1500000000000000000000"), (dec("1.25E20"), "125000000000000000000"),
  (dec("0"), "0.0"), (str("x"), ""),
])
func numberText(_ value: Value, _ expected: String) {
  #expect(Coercions.numberText(value) == expected)
}

/// One row of the cast tables.
struct CastRow: Sendable, CustomTestStringConvertible {
  var value: Value
  var type: CastType
  var version: SQLVersion
  var expected: Value
  init(_ value: Value, _ type: CastType, _ expected: Value, _ version: SQLVersion = .v2016_03_23) {
    self.value = value
    self.type = type
    self.version = version
    self.expected = expected
  }
  var testDescription: String { "cast(\(value) AS \(type)) [\(version.rawValue)]" }
}

@Test(arguments: [
  // To Decimal (2016-03-23 only): whole results become Int.
  CastRow(.int(5), .decimal, .int(5)),
  CastRow(dec("10.0"), .decimal, .int(10)),
  CastRow(dec("2.5"), .decimal, dec("2.5")),
  CastRow(.bool(true), .decimal, .int(1)),
  CastRow(.bool(false), .decimal, .int(0)),
  CastRow(str("-1.2"), .decimal, dec("-1.2")),
  CastRow(str("5E-12"), .decimal, dec("5E-12")),
  CastRow(str("abc"), .decimal, .undefined),
  CastRow(.array([]), .decimal, .undefined),
  CastRow(obj([]), .decimal, .undefined),
  CastRow(.null, .decimal, .undefined),
  CastRow(.undefined, .decimal, .undefined),
  // To Int: rounded down.
  CastRow(.int(7), .int, .int(7)),
  CastRow(dec("2.7"), .int, .int(2)),
  CastRow(dec("-2.7"), .int, .int(-3)),
  CastRow(.bool(true), .int, .int(1)),
  CastRow(.bool(false), .int, .int(0), .v2015_10_08),
  CastRow(str("3.9"), .int, .int(3)),
  CastRow(str("1E2"), .int, .int(100)),
  CastRow(str("x"), .int, .undefined),
  CastRow(dec("1E30"), .int, dec("1E30")),
  CastRow(.null, .int, .undefined),
  CastRow(.array([.int(1)]), .int, .undefined),
  // To Double: a double-precision Decimal.
  CastRow(.int(2), .double, .int(2)),
  CastRow(.int(2), .double, dec("2"), .v2015_10_08),
  CastRow(dec("0.1"), .double, dec("0.1")),
  CastRow(str("1.5"), .double, dec("1.5")),
  CastRow(.bool(true), .double, .int(1)),
  CastRow(.null, .double, .undefined),
  // To Boolean.
  CastRow(.int(0), .bool, .bool(false)),
  CastRow(.int(-3), .bool, .bool(true)),
  CastRow(dec("0.0"), .bool, .bool(false)),
  CastRow(dec("0.1"), .bool, .bool(true)),
  CastRow(.bool(true), .bool, .bool(true)),
  CastRow(str("TRUE"), .bool, .bool(true)),
  CastRow(str("false"), .bool, .bool(false)),
  CastRow(str("1"), .bool, .undefined),
  CastRow(.array([]), .bool, .undefined),
  CastRow(.null, .bool, .undefined),
  // To String.
  CastRow(.int(5), .string, str("5")),
  CastRow(dec("2.5"), .string, str("2.5")),
  CastRow(.bool(true), .string, str("true")),
  CastRow(str("x"), .string, str("x")),
  CastRow(.array([.int(1), str("b")]), .string, str("[1,\"b\"]")),
  CastRow(obj([("a", .null)]), .string, str("{\"a\":null}")),
  CastRow(.null, .string, .undefined),
  CastRow(.undefined, .string, .undefined),
  CastRow(.binary([0x41]), .string, .undefined),
])
func castTable(_ row: CastRow) {
  #expect(Coercions.cast(row.value, to: row.type, version: row.version) == row.expected)
}

@Test func castTypeNamesPerVersion() {
  #expect(CastType(name: "NVARCHAR", version: .v2015_10_08) == .string)
  #expect(CastType(name: "Integer", version: .v2015_10_08) == .int)
  #expect(CastType(name: "double", version: .v2015_10_08) == .double)
  #expect(CastType(name: "Decimal", version: .v2015_10_08) == nil)
  #expect(CastType(name: "Bool", version: .v2015_10_08) == nil)
  #expect(CastType(name: "boolean", version: .v2015_10_08) == nil)
  #expect(CastType(name: "DECIMAL", version: .v2016_03_23) == .decimal)
  #expect(CastType(name: "Bool", version: .v2016_03_23) == .bool)
  #expect(CastType(name: "float", version: .v2016_03_23) == nil)
}
