import Foundation
import Testing

@testable import IoTSQL

/// One row of an operator table: `left op right` gives `expected`.
struct OperatorRow: Sendable, CustomTestStringConvertible {
  var op: BinaryOperator
  var left: Value
  var right: Value
  var expected: Value
  var version: SQLVersion = .v2016_03_23

  init(
    _ left: Value, _ op: BinaryOperator, _ right: Value, _ expected: Value,
    _ version: SQLVersion = .v2016_03_23
  ) {
    self.op = op
    self.left = left
    self.right = right
    self.expected = expected
    self.version = version
  }

  var testDescription: String { "\(left) \(op.rawValue) \(right) [\(version.rawValue)]" }
}

private let undefined = Value.undefined

@Test(arguments: [
  // AND / OR: Booleans or "true"/"false" strings in any case; anything else Undefined.
  OperatorRow(.bool(true), .and, .bool(true), .bool(true)),
  OperatorRow(.bool(true), .and, .bool(false), .bool(false)),
  OperatorRow(str("TRUE"), .and, str("true"), .bool(true)),
  OperatorRow(str("False"), .or, .bool(true), .bool(true)),
  OperatorRow(.bool(false), .or, .bool(false), .bool(false)),
  OperatorRow(undefined, .and, .bool(false), undefined),
  OperatorRow(undefined, .or, .bool(true), undefined),
  OperatorRow(.int(1), .and, .bool(true), undefined),
  OperatorRow(.null, .or, .bool(true), undefined),
  OperatorRow(str("yes"), .and, .bool(true), undefined),
  // Ordering: both sides to Decimal; strings only when numeric.
  OperatorRow(str("10"), .greater, str("9"), .bool(true)),
  OperatorRow(str("b"), .greater, str("a"), undefined),
  OperatorRow(str("1"), .less, .int(2), .bool(true)),
  OperatorRow(.int(1), .lessOrEqual, dec("1.0"), .bool(true)),
  OperatorRow(dec("2.5"), .greaterOrEqual, .int(3), .bool(false)),
  OperatorRow(str("5E-12"), .greater, .int(0), .bool(true)),
  OperatorRow(str(" 5"), .greater, .int(0), undefined),
  OperatorRow(.bool(true), .greater, .bool(false), undefined),
  OperatorRow(.null, .less, .int(1), undefined),
  OperatorRow(undefined, .less, .int(1), undefined),
  OperatorRow(.array([]), .less, .int(1), undefined),
  // = and <>: no coercion, numbers numerically, mismatched types unequal, Undefined propagates.
  OperatorRow(str("1"), .equal, .int(1), .bool(false)),
  OperatorRow(str("1"), .notEqual, .int(1), .bool(true)),
  OperatorRow(.int(1), .equal, dec("1.0"), .bool(true)),
  OperatorRow(.int(2), .equal, .int(2), .bool(true)),
  OperatorRow(str("a"), .equal, str("A"), .bool(false)),
  OperatorRow(str("é"), .equal, str("e\u{301}"), .bool(false)),
  OperatorRow(.array([.int(1), .int(2)]), .equal, .array([.int(1), dec("2.0")]), .bool(true)),
  OperatorRow(.array([.int(1), .int(2)]), .equal, .array([.int(2), .int(1)]), .bool(false)),
  OperatorRow(.array([.int(1), .int(2)]), .notEqual, .array([.int(2), .int(1)]), .bool(true)),
  OperatorRow(
    obj([("a", .int(1)), ("b", .int(2))]), .equal, obj([("b", .int(2)), ("a", .int(1))]), .bool(true)),
  OperatorRow(obj([("a", .int(1))]), .notEqual, obj([("a", .int(2))]), .bool(true)),
  OperatorRow(.null, .equal, .null, .bool(true)),
  OperatorRow(.null, .notEqual, .null, .bool(false)),
  OperatorRow(.bool(true), .equal, str("true"), .bool(false)),
  OperatorRow(.null, .equal, .int(0), .bool(false)),
  OperatorRow(undefined, .equal, undefined, undefined),
  OperatorRow(.int(1), .notEqual, undefined, undefined),
  // IN: true when an element is =; a right side that is not an array gives Undefined.
  OperatorRow(.int(2), .in, .array([.int(1), dec("2.0")]), .bool(true)),
  OperatorRow(str("2"), .in, .array([.int(1), .int(2)]), .bool(false)),
  OperatorRow(.int(2), .in, .int(2), undefined),
  OperatorRow(undefined, .in, .array([.int(1)]), undefined),
  OperatorRow(.null, .in, .array([.null]), .bool(true)),
  // +: a String on either side concatenates.
  OperatorRow(str("1"), .add, .int(2), str("12")),
  OperatorRow(str("a"), .add, .int(1), str("a1")),
  OperatorRow(.int(1), .add, str("a"), str("1a")),
  OperatorRow(str("1"), .add, str("2"), str("12")),
  OperatorRow(str("x"), .add, .bool(true), str("xtrue")),
  OperatorRow(str("x"), .add, .array([.int(1), str("a")]), str("x[1,\"a\"]")),
  OperatorRow(str("x"), .add, .null, undefined),
  OperatorRow(str("x"), .add, undefined, undefined),
  OperatorRow(.int(1), .add, .int(2), .int(3)),
  OperatorRow(dec("0.1"), .add, dec("0.2"), dec("0.3")),
  OperatorRow(dec("1.5"), .add, dec("1.5"), .int(3)),
  OperatorRow(dec("1.5"), .add, dec("1.5"), dec("3"), .v2015_10_08),
  OperatorRow(.array([.int(1)]), .add, .array([.int(2)]), undefined),
  OperatorRow(.bool(true), .add, .int(1), undefined),
  OperatorRow(.null, .add, .int(1), undefined),
  OperatorRow(.int(Int.max), .add, .int(1), dec("9223372036854775808")),
  // - * / %: numeric strings parsed.
  OperatorRow(str("10"), .subtract, .int(3), .int(7)),
  OperatorRow(str("10"), .subtract, .int(3), dec("7"), .v2015_10_08),
  OperatorRow(str("a"), .subtract, .int(3), undefined),
  OperatorRow(.int(Int.min), .subtract, .int(1), dec("-9223372036854775809")),
  OperatorRow(.int(Int.max), .multiply, .int(2), dec("18446744073709551614")),
  OperatorRow(dec("1.5"), .multiply, .int(2), .int(3)),
  OperatorRow(str("2.5"), .multiply, str("2"), .int(5)),
  OperatorRow(.int(6), .divide, .int(3), .int(2)),
  OperatorRow(.int(6), .divide, .int(3), .int(2), .v2015_10_08),
  OperatorRow(.int(7), .divide, .int(2), .int(3)),
  OperatorRow(.int(-7), .divide, .int(2), .int(-3)),
  OperatorRow(.int(7), .divide, .int(-2), .int(-3)),
  OperatorRow(.int(7), .divide, .int(2), .int(3), .v2015_10_08),
  OperatorRow(.int(215), .divide, .int(9), .int(23)),
  OperatorRow(.int(2), .divide, .int(3), .int(0)),
  OperatorRow(.int(7), .divide, dec("2.0"), dec("3.5"), .v2015_10_08),
  OperatorRow(.int(7), .divide, dec("2.0"), dec("3.5")),
  OperatorRow(str("7"), .divide, .int(2), dec("3.5")),
  OperatorRow(dec("123456789012345678901234567890"), .divide, .int(7), dec("17636684144620811271604938270")),
  OperatorRow(
    dec("-123456789012345678901234567890"), .divide, .int(7), dec("-17636684144620811271604938270")),
  OperatorRow(dec("12345678901234567890"), .divide, .int(7), .int(1_763_668_414_462_081_127)),
  // Exactly, not a quotient rounded to 34 digits and then truncated (it gave 5E33).
  OperatorRow(
    dec("9999999999999999999999999999999999"), .divide, .int(2), dec("4999999999999999999999999999999999")),
  OperatorRow(
    dec("-9999999999999999999999999999999999"), .divide, .int(2), dec("-4999999999999999999999999999999999")),
  OperatorRow(dec("12345678901234567890"), .divide, .int(0), undefined),
  OperatorRow(.int(1), .divide, .int(0), undefined),
  OperatorRow(dec("1.5"), .divide, .int(0), undefined),
  OperatorRow(str("1"), .divide, str("0"), undefined),
  OperatorRow(.int(Int.min), .divide, .int(-1), dec("9223372036854775808")),
  OperatorRow(.int(8), .remainder, .int(3), .int(2)),
  OperatorRow(.int(-8), .remainder, .int(3), .int(-2)),
  OperatorRow(.int(8), .remainder, .int(0), undefined),
  OperatorRow(.int(Int.min), .remainder, .int(-1), .int(0)),
  OperatorRow(dec("8.5"), .remainder, .int(3), dec("2.5")),
  OperatorRow(dec("-8.5"), .remainder, .int(3), dec("-2.5")),
  OperatorRow(str("8"), .remainder, str("3"), .int(2)),
  OperatorRow(.bool(true), .multiply, .int(2), undefined),
  OperatorRow(.null, .subtract, .int(2), undefined),
  OperatorRow(undefined, .multiply, .int(2), undefined),
  // AWS's Decimal range, 1E-999 to 9.999…E999: below it a result is 0, beyond it Undefined.
  OperatorRow(dec("1E-100"), .multiply, dec("1E-100"), dec("1E-200")),
  OperatorRow(dec("1E-500"), .multiply, dec("1E-500"), .int(0)),
  OperatorRow(dec("1E100"), .multiply, dec("1E100"), dec("1E200")),
  OperatorRow(dec("1E500"), .multiply, dec("1E500"), undefined),
  OperatorRow(dec("1E-120"), .divide, .int(3), dec("3.333333333333333333333333333333333E-121")),
])
func binaryOperatorTable(_ row: OperatorRow) {
  #expect(Operators.binary(row.op, row.left, row.right, version: row.version) == row.expected)
}

@Test func decimalArithmeticRoundsTo34Digits() {
  let third = Operators.binary(.divide, .int(1), dec("3.00000000000000000001"), version: .v2016_03_23)
  #expect(third == dec("0.3333333333333333333322222222222222"))
  let sum = Operators.binary(.add, dec("0.1"), dec("0.2"), version: .v2016_03_23)
  #expect(sum == dec("0.3"))
}

/// Quotients to 34 digits exactly rounded, and exact remainders, however far apart the operands'
/// exponents (Foundation's division gave 8.333093E34 for the first, and 12 digits for the third;
/// the remainders, taken from that quotient, were 0, 0 and negative). Checked against Python's
/// decimal module with 34 digits, half to even.
@Test(arguments: [
  ("8.333093E36", BinaryOperator.divide, "139.61363", "5.968681567838326386900763199123180E34"),
  ("1", .divide, "5.515193E-33", "1.813173174538044271524133425611760E32"),
  ("7", .divide, "123456789012345678901234", "5.670000051030000464373030307284508E-23"),
  ("1", .divide, "9223372036854775807", "1.084202172485504434125002235952170E-19"),
  ("2", .divide, "3", "0.6666666666666666666666666666666667"),
  ("-2", .divide, "3", "-0.6666666666666666666666666666666667"),
  ("0.5", .divide, "0.25", "2"),
  ("1E35", .remainder, "3", "1"),
  ("1E40", .remainder, "7", "4"),
  ("5.392830E8", .remainder, "7.303194E-24", "5.973222E-24"),
  ("2.263336E35", .remainder, "192.33596", "152.75132"),
  ("413.41576", .remainder, "6.893250E-27", "6.87775E-27"),
  ("-7.5", .remainder, "2", "-1.5"),
  ("7.5", .remainder, "-2", "1.5"),
  ("1.5", .remainder, "7E10", "1.5"),
  // Above about 1E161 Foundation holds the number at exponent 127 with zeros appended: still exact.
  ("1E161", .remainder, "3", "1"),
  ("1E161", .remainder, "139.61363", "30.17940"),
  ("1E161", .remainder, "7E-128", "3E-128"),
])
func decimalQuotientsAndRemaindersAreExact(_ row: (String, BinaryOperator, String, String)) {
  let result = Operators.binary(row.1, dec(row.0), dec(row.2), version: .v2016_03_23)
  #expect(result == Coercions.normalized(dec(row.3), version: .v2016_03_23), "\(row)")
}

@Test(arguments: [
  (UnaryOperator.not, Value.bool(true), Value.bool(false)),
  (.not, str("FALSE"), .bool(true)),
  (.not, .int(0), .undefined),
  (.not, .null, .undefined),
  (.not, .undefined, .undefined),
  (.negate, .int(5), .int(-5)),
  (.negate, .int(Int.min), dec("9223372036854775808")),
  (.negate, dec("1.5"), dec("-1.5")),
  (.negate, str("2"), .int(-2)),
  (.negate, str("x"), .undefined),
  (.negate, .bool(true), .undefined),
  (.negate, .null, .undefined),
])
func unaryOperatorTable(_ op: UnaryOperator, _ operand: Value, _ expected: Value) {
  #expect(Operators.unary(op, operand, version: .v2016_03_23) == expected)
}

@Test(arguments: [
  (Value.bool(true), true), (str("true"), true), (str("TrUe"), true), (.bool(false), false),
  (str("false"), false), (str("yes"), false), (.int(1), false), (.null, false), (.undefined, false),
])
func whereTruth(_ value: Value, _ expected: Bool) {
  #expect(Operators.isTrue(value) == expected)
}

@Test func caseEqualityIsUndefinedWithUndefined() {
  #expect(Operators.equals(.undefined, .int(1)) == .undefined)
  #expect(Operators.equals(str("yellow"), str("yellow")) == .bool(true))
  #expect(Operators.equals(.int(1), dec("1.0")) == .bool(true))
}
