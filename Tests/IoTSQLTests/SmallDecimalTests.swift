import Foundation
import Testing

@testable import IoTSQL

/// The fast decimal path must give exactly what the Foundation path gives.
@Suite struct SmallDecimalTests {
  static let posix = Locale(identifier: "en_US_POSIX")

  /// Hand-picked operands: small, large, tiny, whole, negative, and 64-bit edges.
  static let texts = [
    "0", "0.1", "0.2", "-0.3", "1.8", "32", "23.8", "29.0", "-29.5", "0.000001", "123456789.123456789",
    "18446744073709551615", "-18446744073709551615", "9223372036854775807", "-9223372036854775808",
    "1E-100", "1E-30", "5E+100", "1.5E+120", "-2.5", "3.5", "0.5", "99999999999999999.99",
    "1E+19", "12345678901234567890.5",
  ]

  static func operands() -> [Value] {
    var values = texts.map { text -> Value in
      let decimal = Decimal(string: text, locale: posix)!
      return .decimal(decimal)
    }
    values += [.int(0), .int(1), .int(-7), .int(Int.max), .int(Int.min), .int(30)]
    var generator = SeededGenerator(state: 42)
    for _ in 0..<40 {
      let significand = UInt64.random(
        in: 0...UInt64.max >> UInt64.random(in: 0...60, using: &generator), using: &generator)
      let exponent = Int.random(in: -25...25, using: &generator)
      let sign: FloatingPointSign = Bool.random(using: &generator) ? .minus : .plus
      values.append(.decimal(Decimal(sign: sign, exponent: exponent, significand: Decimal(significand))))
    }
    return values
  }

  /// The Foundation path of `Operators.arithmetic`, written out.
  static func slow(_ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion) -> Value {
    let x = Coercions.toDecimal(a)!
    let y = Coercions.toDecimal(b)!
    let result: Decimal?
    switch op {
    case .add: result = DecimalMath.add(x, y)
    case .subtract: result = DecimalMath.subtract(x, y)
    default: result = DecimalMath.multiply(x, y)
    }
    guard let result else { return .undefined }
    // Ints beyond 64 bits (whole Decimals) with Ints make Ints in both versions.
    let integral =
      (Operators.isWideInt(a) || Operators.isWideInt(b)) && Operators.isIntegral(a) && Operators.isIntegral(b)
    return Coercions.normalized(.decimal(result), version: integral ? .v2016_03_23 : version)
  }

  @Test func layoutIsKnownHere() {
    #expect(SmallDecimal.layoutIsKnown)
  }

  @Test(arguments: [BinaryOperator.add, .subtract, .multiply])
  func arithmeticMatchesFoundation(_ op: BinaryOperator) {
    let values = Self.operands()
    for a in values {
      for b in values {
        if case .int = a, case .int = b { continue }
        for version in SQLVersion.allCases {
          let fast = Operators.binary(op, a, b, version: version)
          let slow = Self.slow(op, a, b, version: version)
          if slow.isUndefined, case .decimal(let value) = fast {
            // Foundation's arithmetic overflows at exponent 128; the fast path fits such a result
            // into Decimal's range by a wider significand (up to about 3.4E165).
            #expect(value.exponent == 127, "\(a) \(op) \(b)")
            continue
          }
          #expect(fast == slow, "\(a) \(op) \(b)")
          #expect(JSONWriter.string(fast) == JSONWriter.string(slow), "\(a) \(op) \(b)")
        }
      }
    }
  }

  @Test func comparisonMatchesFoundation() {
    let values = Self.operands()
    for a in values {
      for b in values {
        let x = Coercions.toDecimal(a)!
        let y = Coercions.toDecimal(b)!
        let expected = x < y ? -1 : (x == y ? 0 : 1)
        #expect(Operators.compare(a, b) == expected, "\(a) vs \(b)")
        #expect(Operators.strictlyEqual(a, b) == (expected == 0), "\(a) = \(b)")
      }
    }
  }

  @Test(arguments: [
    NSDecimalNumber.RoundingMode.plain, .down, .up, .bankers,
  ])
  func roundingMatchesFoundation(_ mode: NSDecimalNumber.RoundingMode) {
    for value in Self.operands() {
      guard case .decimal(var decimal) = value else { continue }
      for scale in [-2, 0, 1, 3] {
        var expected = Decimal()
        NSDecimalRound(&expected, &decimal, scale, mode)
        #expect(DecimalMath.rounded(decimal, scale: scale, mode) == expected, "\(decimal) \(scale) \(mode)")
      }
      let text = decimal.description
      let whole =
        DecimalMath.isWhole(decimal) && decimal >= DecimalMath.intMin && decimal <= DecimalMath.intMax
      #expect(DecimalMath.exactInt(decimal) == (whole ? Int(text) : nil), "\(text)")
    }
  }

  /// Near 1E-128, Foundation's floor, a quotient or product keeps the digits above it (rounded half to
  /// even) and is 0 only when none is left; a remainder whose quotient is that small is the dividend.
  /// (Foundation's divide gave NaN, so `1E-100 / 3` was Undefined, and its initializer gave 0.)
  @Test(arguments: [
    ("1E-100", BinaryOperator.divide, "3", "3.333333333333333333333333333E-101"),
    ("-1E-100", .divide, "3", "-3.333333333333333333333333333E-101"),
    ("1E-127", .divide, "10", "1E-128"),
    ("1E-120", .divide, "7", "1.4285714E-121"),
    ("1E-100", .divide, "7E30", "0"),
    ("1E-120", .divide, "1E40", "0"),
    ("1E-80", .divide, "-1E100", "0"),
    ("1E-128", .divide, "1E30", "0"),
    ("1E-127", .divide, "3", "3E-128"),
    ("1.234E-64", .multiply, "1.5E-62", "1.85E-126"),
    ("1.234E-64", .multiply, "1.5E-65", "0"),
    ("1E-127", .multiply, "1.5E-1", "2E-128"),
    ("1E-127", .remainder, "3", "1E-127"),
    ("-1E-127", .remainder, "3", "-1E-127"),
    ("7", .remainder, "2", "1"),
  ])
  func arithmeticNearTheBottomOfTheRange(_ a: String, _ op: BinaryOperator, _ b: String, _ expected: String) {
    let result = Operators.binary(
      op, .decimal(Decimal(string: a)!), .decimal(Decimal(string: b)!), version: .default)
    #expect(JSONWriter.string(result) == expected, "\(a) \(op) \(b)")
  }

  @Test func zeroPointThreeAndWriterSpelling() {
    let sum = Operators.binary(
      .add, .decimal(Decimal(string: "0.1")!), .decimal(Decimal(string: "0.2")!), version: .default)
    #expect(JSONWriter.string(sum) == "0.3")
    let product = Operators.binary(
      .multiply, .decimal(Decimal(string: "23.8")!), .decimal(Decimal(string: "1.8")!), version: .default)
    #expect(JSONWriter.string(product) == "42.84")
    let whole = Operators.binary(
      .add, .decimal(Decimal(string: "0.5")!), .decimal(Decimal(string: "0.5")!), version: .v2015_10_08)
    #expect(JSONWriter.string(whole) == "1.0")
  }

  /// The exact fast path of `DecimalMath.toDouble` gives the correctly rounded double, as parsing the
  /// decimal's text does.
  @Test func nearestDoubles() {
    var texts =
      Self.texts + ["31.5", "1E22", "1E-22", "9007199254740991", "9007199254740993", "1E23", "0.3E-20"]
    var random = SeededGenerator(state: 7)
    for _ in 0..<500 {
      let digits = String(random.next() % 10_000_000_000_000)
      let scale = Int(random.next() % 30)
      texts.append(scale == 0 ? digits : "\(digits)E-\(scale)")
    }
    for text in texts {
      guard let decimal = Decimal(string: text, locale: Self.posix) else { continue }
      #expect(Coercions.nearestDouble(decimal) == Double(decimal.description), "\(text)")
    }
  }
}
