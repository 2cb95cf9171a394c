import Foundation

/// Decimal arithmetic that never traps, rounded to the 34 significant digits of AWS's decimals.
///
/// Foundation's `Decimal` traps on some underflows (a product whose exponents sum below -128) and
/// returns NaN on overflow or division by zero: every operation here checks first and returns nil
/// instead, which the operators turn into Undefined.
enum DecimalMath {
  /// 10^34: a significand at or above it has more than 34 digits.
  static let significandLimit = Decimal(sign: .plus, exponent: 34, significand: 1)
  /// The range of `Int` as decimals.
  static let intMax = Decimal(Int.max)
  static let intMin = Decimal(Int.min)

  /// `a + b`, or nil on overflow.
  static func add(_ a: Decimal, _ b: Decimal) -> Decimal? {
    var a = a
    var b = b
    var result = Decimal()
    let error = NSDecimalAdd(&result, &a, &b, .bankers)
    guard error != .overflow, !result.isNaN else { return nil }
    return rounded34(result)
  }

  /// `a - b`, or nil on overflow.
  static func subtract(_ a: Decimal, _ b: Decimal) -> Decimal? {
    var a = a
    var b = b
    var result = Decimal()
    let error = NSDecimalSubtract(&result, &a, &b, .bankers)
    guard error != .overflow, !result.isNaN else { return nil }
    return rounded34(result)
  }

  /// `a * b`, or nil on overflow; a product too small to represent is 0.
  static func multiply(_ a: Decimal, _ b: Decimal) -> Decimal? {
    if a.isZero || b.isZero { return Decimal(0) }
    let exponentSum = a.exponent + b.exponent
    if exponentSum < -128 {
      // Foundation traps here: multiply the significands, then place the exponent ourselves.
      guard let product = multiplySafely(a.significand, b.significand) else { return nil }
      return placed(
        sign: a.sign == b.sign ? .plus : .minus, significand: product.significand,
        exponent: product.exponent + exponentSum)
    }
    guard let product = multiplySafely(a, b) else { return nil }
    return rounded34(product)
  }

  private static func multiplySafely(_ a: Decimal, _ b: Decimal) -> Decimal? {
    var a = a
    var b = b
    var result = Decimal()
    let error = NSDecimalMultiply(&result, &a, &b, .bankers)
    guard error != .overflow, !result.isNaN else { return nil }
    return result
  }

  /// `a / b` to 34 significant digits, half to even; nil when `b` is zero or the quotient is beyond
  /// the range. Long division in 128-bit integers: Foundation's `NSDecimalDivide` on Linux gives
  /// wrong quotients (`8.333093E36 / 139.61363` came out as 8.333093E34) and short ones (12 digits
  /// of `7 / 123456789012345678901234`).
  static func divide(_ a: Decimal, _ b: Decimal) -> Decimal? {
    if b.isZero { return nil }
    if a.isZero { return Decimal(0) }
    if let x = WideDecimal(a), let y = WideDecimal(b) { return quotient(x, y) }
    return foundationDivide(a, b)
  }

  /// `x / y` exactly rounded: whole digits of the quotient, then more (four at a time while there
  /// is room) until there are 35, the last of which, with whether anything remains, rounds.
  private static func quotient(_ x: WideDecimal, _ y: WideDecimal) -> Decimal? {
    let divisor = y.significand
    var (digits, remainder) = x.significand.quotientAndRemainder(dividingBy: divisor)
    var exponent = x.exponent - y.exponent
    // Both significands are below 10^34: `remainder * 10^4` stays below 2^128.
    while remainder != 0, digits < SmallDecimal.limit34 {
      let step: UInt128 = digits < limit30 ? 10_000 : 10
      let next = (remainder * step).quotientAndRemainder(dividingBy: divisor)
      digits = digits * step + next.quotient
      remainder = next.remainder
      exponent -= step == 10 ? 1 : 4
    }
    if digits >= SmallDecimal.limit34 {
      let (kept, last) = digits.quotientAndRemainder(dividingBy: 10)
      digits = kept
      exponent += 1
      if last > 5 || (last == 5 && (remainder != 0 || kept % 2 == 1)) { digits += 1 }
    }
    return made(negative: x.negative != y.negative, significand: digits, exponent: exponent)
  }

  /// 10^30: a quotient below it has room for four more digits under 10^34.
  private static let limit30 = SmallDecimal.limit34 / 10_000

  /// `significand × 10^exponent` (at most 10^34) as a Decimal: 0 when it is too small for any digit
  /// to stay above 1E-128, nil when it is too large.
  private static func made(negative: Bool, significand: UInt128, exponent: Int) -> Decimal? {
    if significand == 0 { return Decimal(0) }
    var significand = significand
    var exponent = exponent
    if significand == SmallDecimal.limit34 {
      significand /= 10
      exponent += 1
    }
    if let decimal = SmallDecimal.decimal(negative: negative, significand: significand, exponent: exponent) {
      return decimal
    }
    return exponent < 0 ? Decimal(0) : nil
  }

  /// Foundation's quotient, where its storage's layout is not the known one.
  private static func foundationDivide(_ a: Decimal, _ b: Decimal) -> Decimal? {
    var a = a
    var b = b
    var result = Decimal()
    let error = NSDecimalDivide(&result, &a, &b, .bankers)
    if underflowed(error, result) { return dividedNearTheBottom(a, b) }
    guard error != .overflow, error != .divideByZero, !result.isNaN else { return nil }
    return rounded34(result)
  }

  /// Whether a division's quotient was too small for Foundation to place: it says underflow, or
  /// gives NaN for no other reason (overflow and division by zero are said).
  private static func underflowed(_ error: NSDecimalNumber.CalculationError, _ quotient: Decimal) -> Bool {
    error == .underflow || (quotient.isNaN && error != .overflow && error != .divideByZero)
  }

  /// `a / b` for a quotient whose digits Foundation cannot place (`1E-100 / 3` needs exponent -134):
  /// divided with the dividend 10^64 times larger, then put back 64 places down, where digits below
  /// 1E-128 are rounded away as a product's are (all of them: 0).
  private static func dividedNearTheBottom(_ a: Decimal, _ b: Decimal) -> Decimal? {
    let shift = 64
    guard a.exponent + shift <= 127 else { return nil }
    var raised = Decimal(sign: a.sign, exponent: a.exponent + shift, significand: a.significand)
    var b = b
    var quotient = Decimal()
    let error = NSDecimalDivide(&quotient, &raised, &b, .bankers)
    // Still too small to place even so: far below 1E-128, no digit is left.
    if underflowed(error, quotient) { return Decimal(0) }
    guard error != .overflow, error != .divideByZero, !quotient.isNaN else { return nil }
    return placed(sign: quotient.sign, significand: quotient.significand, exponent: quotient.exponent - shift)
  }

  /// `significand × 10^exponent` (a whole significand), rounded to 34 digits; below 1E-128, the
  /// lowest exponent Foundation holds, the digits under it are rounded away (half to even), and a
  /// number with none left is 0. (Foundation's own initializer gives 0 for any exponent below it.)
  static func placed(sign: FloatingPointSign, significand: Decimal, exponent: Int) -> Decimal? {
    var whole = significand
    var exponent = exponent
    if exponent < -128 {
      let dropped = -128 - exponent
      guard dropped <= 40 else { return Decimal(0) }
      var scaled = Decimal()
      _ = NSDecimalMultiplyByPowerOf10(&scaled, &whole, Int16(-dropped), .bankers)
      NSDecimalRound(&whole, &scaled, 0, .bankers)
      exponent = -128
    }
    if whole.isZero { return Decimal(0) }
    let value = Decimal(sign: sign, exponent: exponent, significand: whole)
    return value.isNaN ? nil : rounded34(value)
  }

  /// `a % b` as Java's `BigDecimal.remainder`: `a - trunc(a / b) * b`, the sign of `a`, exactly
  /// (it has no more digits than `b`). Taken in integers: with `a`'s exponent the larger,
  /// `a.significand × 10^shift mod b.significand` by modular arithmetic; otherwise `b` scaled to
  /// `a`'s exponent, or `a` itself when `b` is the larger.
  static func remainder(_ a: Decimal, _ b: Decimal) -> Decimal? {
    if b.isZero { return nil }
    if a.isZero { return Decimal(0) }
    guard let x = WideDecimal(a), let y = WideDecimal(b) else { return foundationRemainder(a, b) }
    if x.exponent <= y.exponent {
      var scaled = y.significand
      for _ in 0..<(y.exponent - x.exponent) {
        let (product, overflow) = scaled.multipliedReportingOverflow(by: 10)
        if overflow || product > x.significand { return rounded34(a) }
        scaled = product
      }
      if scaled > x.significand { return rounded34(a) }
      return made(negative: x.negative, significand: x.significand % scaled, exponent: x.exponent)
    }
    let modulus = y.significand
    // 10^shift mod the modulus, four digits at a time (products stay below 10^38).
    var power = 1 % modulus
    var remaining = x.exponent - y.exponent
    while remaining > 0 {
      let step = min(remaining, 4)
      power = power * SmallDecimal.power128(step) % modulus
      remaining -= step
    }
    let product = (x.significand % modulus).multipliedFullWidth(by: power)
    let rest = modulus.dividingFullWidth(product).remainder
    return made(negative: x.negative, significand: rest, exponent: y.exponent)
  }

  /// Foundation's remainder, where its storage's layout is not the known one.
  private static func foundationRemainder(_ a: Decimal, _ b: Decimal) -> Decimal? {
    var a = a
    var b = b
    var quotient = Decimal()
    let error = NSDecimalDivide(&quotient, &a, &b, .bankers)
    // A quotient too small for Foundation to place is below 1 in magnitude: nothing is taken away.
    if underflowed(error, quotient) { return rounded34(a) }
    guard error != .overflow, !quotient.isNaN else { return nil }
    let whole = truncated(quotient)
    guard let product = multiply(whole, b) else { return nil }
    return subtract(a, product)
  }

  /// The value a number beyond `Decimal`'s range is taken as: the largest magnitude (34 digits) on
  /// overflow, the smallest non-zero one on underflow, with the number's sign.
  static func saturated(negative: Bool, overflow: Bool) -> Decimal {
    let magnitude = overflow ? largestMagnitude : smallestMagnitude
    return negative ? -magnitude : magnitude
  }

  /// 1E-128, the smallest non-zero magnitude Decimal holds (`Decimal.leastNonzeroMagnitude` says
  /// 1E-127 on Linux).
  static let smallestMagnitude =
    SmallDecimal.decimal(negative: false, significand: 1, exponent: -128)
    ?? Decimal.leastNonzeroMagnitude

  /// `Decimal.greatestFiniteMagnitude` to 34 digits.
  static let largestMagnitude = rounded34(Decimal.greatestFiniteMagnitude)

  /// Rounds to 34 significant digits, half to even (IEEE 754 decimal128, as Java's DECIMAL128).
  static func rounded34(_ value: Decimal) -> Decimal {
    let significand = value.significand
    if significand < significandLimit { return value }
    let digits = significand.description.utf8.count
    var value = value
    var result = Decimal()
    NSDecimalRound(&result, &value, -(value.exponent + digits - 34), .bankers)
    return result
  }

  /// Rounds to `scale` decimal places with `mode`.
  static func rounded(_ value: Decimal, scale: Int = 0, _ mode: NSDecimalNumber.RoundingMode) -> Decimal {
    if let small = SmallDecimal(value),
      let (negative, significand, exponent) = small.rounded(scale: scale, mode),
      let result = SmallDecimal.decimal(negative: negative, significand: significand, exponent: exponent)
    {
      return result
    }
    var value = value
    var result = Decimal()
    NSDecimalRound(&result, &value, scale, mode)
    return result
  }

  /// Toward zero, to `scale` places.
  static func truncated(_ value: Decimal, scale: Int = 0) -> Decimal {
    rounded(value, scale: scale, value.sign == .minus ? .up : .down)
  }

  /// True when `value` has no fractional part.
  static func isWhole(_ value: Decimal) -> Bool {
    value.exponent >= 0 || value.isZero || rounded(value, .down) == value
  }

  /// The `Int` equal to `value`, or nil when it is not whole or does not fit.
  static func exactInt(_ value: Decimal) -> Int? {
    if let small = SmallDecimal(value) { return small.exactInt }
    guard isWhole(value), value >= intMin, value <= intMax else { return nil }
    return Int(value.description)
  }

  /// A whole decimal as a value: an Int when it fits, else the Decimal.
  static func integerValue(_ value: Decimal) -> Value {
    if let int = exactInt(value) { return .int(int) }
    return .decimal(value)
  }

  /// The exact number `significand × 10^exponent` as an operator's result: an Int under 2016-03-23
  /// when it is whole and fits (as ``Coercions/normalized(_:version:)``), else a Decimal; nil when it
  /// needs rounding to 34 digits or is out of Decimal's range (the Foundation path decides then).
  static func value(negative: Bool, significand: UInt128, exponent: Int, version: SQLVersion) -> Value? {
    if version >= .v2016_03_23 {
      var whole = significand
      var scale = exponent
      while scale < 0, whole != 0, whole % 10 == 0 {
        whole /= 10
        scale += 1
      }
      if whole == 0 { return .int(0) }
      if scale >= 0, let int = JSONNumber.wholeInt(negative: negative, significand: whole, exponent: scale) {
        return .int(int)
      }
    }
    return SmallDecimal.decimal(negative: negative, significand: significand, exponent: exponent).map(
      Value.decimal)
  }

  /// `value` saturated to `Int` after `mode` rounding: what clamped arguments need.
  static func saturatingInt(_ value: Decimal, _ mode: NSDecimalNumber.RoundingMode) -> Int {
    let whole = rounded(value, mode)
    if whole >= intMax { return Int.max }
    if whole <= intMin { return Int.min }
    return Int(whole.description) ?? 0
  }

  /// A double as a decimal, built from its shortest round-trip text; nil for NaN, infinities and
  /// magnitudes beyond Foundation's decimal. Below 1E-128 the digits above it are kept (rounded half
  /// to even), and a double with none left is 0 (`exp(-300)` is 0, as `exp(-746)` is).
  static func fromDouble(_ double: Double) -> Decimal? {
    guard double.isFinite else { return nil }
    if double == 0 { return Decimal(0) }
    // The shortest round-trip text (`3.273390607896142e+150`) read as a payload's number is, so that
    // an exponent beyond 127 is fitted into Decimal's range.
    let text = "\(double)"
    guard let (decimal, saturated) = JSONNumber.decimal(parsing: text) else { return nil }
    if !saturated { return decimal }
    guard double.magnitude < 1, let (negative, significand, exponent) = parts(ofDoubleText: text) else {
      return nil
    }
    return SmallDecimal.decimal(negative: negative, significand: significand, exponent: exponent)
      ?? Decimal(0)
  }

  /// Sign, digits and exponent of a double's text (`-5.148200222412013e-131`).
  private static func parts(ofDoubleText text: String) -> (Bool, UInt128, Int)? {
    let negative = text.hasPrefix("-")
    let halves = text.dropFirst(negative ? 1 : 0).split(separator: "e", maxSplits: 1)
    let mantissa = halves[0]
    let fraction = mantissa.split(separator: ".", maxSplits: 1).dropFirst().first?.count ?? 0
    guard let digits = UInt128(mantissa.filter { $0 != "." }),
      let exponent = halves.count > 1 ? Int(halves[1]) : 0
    else { return nil }
    return (negative, digits, exponent - fraction)
  }

  /// The nearest double. A significand below 2^53 with a power of ten up to 10^22 takes one exact
  /// multiplication or division (both operands are exact doubles, so the one rounding is correct);
  /// anything else goes through the decimal's text.
  static func toDouble(_ value: Decimal) -> Double {
    if let small = SmallDecimal(value), small.significand < 1 << 53, small.exponent.magnitude <= 22 {
      let magnitude = Double(small.significand)
      let scaled =
        small.exponent >= 0
        ? magnitude * exactPowersOfTen[small.exponent] : magnitude / exactPowersOfTen[-small.exponent]
      return small.negative ? -scaled : scaled
    }
    return Double(value.description) ?? .nan
  }

  /// 10^0 ... 10^22, every one exactly representable as a double.
  private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
    (0..<exponent).reduce(1.0) { product, _ in product * 10 }
  }
}
