import Foundation
import Testing

@testable import IoTSQL

private let decimalFolder = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().appendingPathComponent("Decimal")

/// AWS's decimals: 34 digits rounded half to even, 1E-999 to 9.999…E999 (``SQLDecimal``,
/// ``DecimalMath``), and the fast path of small significands, which must give what the general
/// path gives.
@Suite struct DecimalTests {
  static let posix = Locale(identifier: "en_US_POSIX")

  /// Hand-picked operands: small, large, tiny, whole, negative, and 64-bit edges.
  static let texts = [
    "0", "0.1", "0.2", "-0.3", "1.8", "32", "23.8", "29.0", "-29.5", "0.000001", "123456789.123456789",
    "18446744073709551615", "-18446744073709551615", "9223372036854775807", "-9223372036854775808",
    "1E-100", "1E-30", "5E+100", "1.5E+120", "-2.5", "3.5", "0.5", "99999999999999999.99",
    "1E+19", "12345678901234567890.5", "1E-990", "-7E+990", "9.999999999999999999999999999999999E999",
  ]

  static func operands() -> [Value] {
    var values = texts.map { Value.decimal(SQLDecimal(string: $0)!) }
    values += [.int(0), .int(1), .int(-7), .int(Int.max), .int(Int.min), .int(30)]
    var generator = SeededGenerator(state: 42)
    for _ in 0..<40 {
      let significand = UInt64.random(
        in: 0...UInt64.max >> UInt64.random(in: 0...60, using: &generator), using: &generator)
      let exponent = Int.random(in: -25...25, using: &generator)
      let negative = Bool.random(using: &generator)
      values.append(
        .decimal(SQLDecimal.exact(negative: negative, significand: UInt128(significand), exponent: exponent)!)
      )
    }
    return values
  }

  /// The general path of `Operators.arithmetic`, written out.
  static func general(_ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion) -> Value {
    let x = Coercions.toDecimal(a)!
    let y = Coercions.toDecimal(b)!
    let result: SQLDecimal?
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

  @Test(arguments: [BinaryOperator.add, .subtract, .multiply])
  func fastPathMatchesTheGeneralPath(_ op: BinaryOperator) {
    let values = Self.operands()
    for a in values {
      for b in values {
        if case .int = a, case .int = b { continue }
        for version in SQLVersion.allCases {
          let fast = Operators.binary(op, a, b, version: version)
          let general = Self.general(op, a, b, version: version)
          #expect(fast == general, "\(a) \(op) \(b)")
          #expect(JSONWriter.string(fast) == JSONWriter.string(general), "\(a) \(op) \(b)")
        }
      }
    }
  }

  /// 4,000 operations over the whole range against Python's `decimal` set up as AWS's decimals
  /// (`Tests/tools/decimal_cases.py` wrote them): cancellations, ties, far-apart exponents, both
  /// ends of the range.
  @Test func arithmeticMatchesPythonsDecimal() throws {
    let text = try String(contentsOf: decimalFolder.appendingPathComponent("arithmetic.txt"), encoding: .utf8)
    var checked = 0
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ").map(String.init)
      try #require(fields.count == 4, "\(line)")
      let a = try #require(SQLDecimal(string: fields[1]))
      let b = try #require(SQLDecimal(string: fields[2]))
      let result: SQLDecimal?
      switch fields[0] {
      case "+": result = DecimalMath.add(a, b)
      case "-": result = DecimalMath.subtract(a, b)
      case "*": result = DecimalMath.multiply(a, b)
      case "/": result = DecimalMath.divide(a, b)
      default: result = DecimalMath.remainder(a, b)
      }
      let expected = fields[3] == "undefined" ? nil : SQLDecimal(string: fields[3])
      #expect(expected != nil || fields[3] == "undefined", "\(line)")
      #expect(result == expected, "\(line): got \(result.map(\.description) ?? "undefined")")
      checked += 1
    }
    #expect(checked == 4000)
  }

  @Test func comparisonMatchesFoundation() {
    let values = Self.operands()
    for a in values {
      for b in values {
        // Foundation's Decimal, the oracle, holds 1E-128 to about 1E165.
        let inFoundationsRange = { (value: Value) in
          (-120..<150).contains(Coercions.toDecimal(value)!.adjustedExponent)
        }
        guard inFoundationsRange(a), inFoundationsRange(b) else { continue }
        let x = Decimal(string: Coercions.toDecimal(a)!.description, locale: Self.posix)!
        let y = Decimal(string: Coercions.toDecimal(b)!.description, locale: Self.posix)!
        let expected = x < y ? -1 : (x == y ? 0 : 1)
        #expect(Operators.compare(a, b) == expected, "\(a) vs \(b)")
        #expect(Operators.strictlyEqual(a, b) == (expected == 0), "\(a) = \(b)")
      }
    }
    #expect(SQLDecimal(string: "1E999")! > SQLDecimal(string: "9.9E998")!)
    #expect(SQLDecimal(string: "-1E-999")! < .zero)
    #expect(SQLDecimal(string: "1.50")! == SQLDecimal(string: "1.5")!)
  }

  @Test(arguments: [
    NSDecimalNumber.RoundingMode.plain, .down, .up, .bankers,
  ])
  func roundingMatchesFoundation(_ mode: NSDecimalNumber.RoundingMode) {
    for value in Self.operands() {
      guard case .decimal(let decimal) = value, (-120..<150).contains(decimal.adjustedExponent) else {
        continue
      }
      var foundation = Decimal(string: decimal.description, locale: Self.posix)!
      for scale in [-2, 0, 1, 3] {
        var expected = Decimal()
        NSDecimalRound(&expected, &foundation, scale, mode)
        let rounded = DecimalMath.rounded(decimal, scale: scale, mode)
        #expect(
          Decimal(string: rounded.description, locale: Self.posix) == expected, "\(decimal) \(scale) \(mode)")
      }
      let whole =
        DecimalMath.isWhole(decimal) && decimal >= DecimalMath.intMin && decimal <= DecimalMath.intMax
      #expect(DecimalMath.exactInt(decimal) == (whole ? Int(foundation.description) : nil), "\(decimal)")
    }
  }

  /// Near 1E-999, the bottom of the range: a result below it is 0; a remainder whose quotient is
  /// that small is the dividend. Beyond 9.999…E999 a result is Undefined.
  @Test(arguments: [
    ("1E-990", BinaryOperator.divide, "3", "3.333333333333333333333333333333333E-991"),
    ("-1E-990", .divide, "3", "-3.333333333333333333333333333333333E-991"),
    ("1E-998", .divide, "10", "1E-999"),
    ("1E-999", .divide, "10", "0"),
    ("1E-500", .divide, "1E600", "0"),
    ("1.234E-500", .multiply, "1.5E-499", "1.851E-999"),
    ("1.234E-500", .multiply, "1.5E-500", "0"),
    ("1E-999", .remainder, "3", "1E-999"),
    ("-1E-999", .remainder, "3", "-1E-999"),
    ("7", .remainder, "2", "1"),
    ("1E999", .multiply, "10", "undefined"),
    ("9E999", .add, "1E999", "undefined"),
    ("1E500", .divide, "1E-500", "undefined"),
    ("1.7976931348623157E308", .multiply, "2", "3.5953862697246314E308"),
    ("5E-324", .divide, "2", "2.5E-324"),
  ])
  func arithmeticAtTheEndsOfTheRange(_ a: String, _ op: BinaryOperator, _ b: String, _ expected: String) {
    let result = Operators.binary(
      op, .decimal(SQLDecimal(string: a)!), .decimal(SQLDecimal(string: b)!), version: .default)
    #expect((result.isUndefined ? "undefined" : JSONWriter.string(result)) == expected, "\(a) \(op) \(b)")
  }

  @Test func zeroPointThreeAndWriterSpelling() {
    let sum = Operators.binary(
      .add, .decimal(SQLDecimal(string: "0.1")!), .decimal(SQLDecimal(string: "0.2")!), version: .default)
    #expect(JSONWriter.string(sum) == "0.3")
    let product = Operators.binary(
      .multiply, .decimal(SQLDecimal(string: "23.8")!), .decimal(SQLDecimal(string: "1.8")!),
      version: .default)
    #expect(JSONWriter.string(product) == "42.84")
    let whole = Operators.binary(
      .add, .decimal(SQLDecimal(string: "0.5")!), .decimal(SQLDecimal(string: "0.5")!), version: .v2015_10_08)
    #expect(JSONWriter.string(whole) == "1.0")
  }

  /// One form per number: trailing zeros go into the exponent, zero has no sign, the layout keeps
  /// a `Value` at 24 bytes a slot.
  @Test func oneFormPerNumber() {
    #expect(SQLDecimal(string: "1.500")!.significand == 15)
    #expect(SQLDecimal(string: "1.500")!.exponent == -1)
    #expect(SQLDecimal(string: "-0.0")! == .zero)
    #expect((-SQLDecimal.zero).isNegative == false)
    #expect(SQLDecimal(string: "100")!.hashValue == SQLDecimal(100).hashValue)
    #expect(MemoryLayout<SQLDecimal>.size == 16)
    #expect(MemoryLayout<Value>.stride <= 24)
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
      guard let decimal = SQLDecimal(string: text) else { continue }
      #expect(Coercions.nearestDouble(decimal) == Double(text), "\(text)")
    }
  }
}
