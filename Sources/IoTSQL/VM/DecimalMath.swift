import Foundation

/// Decimal arithmetic as AWS's decimals do it: every result rounded half to even to 34 significant
/// digits (Java's `MathContext.DECIMAL128`), within 1E-999 to 9.999…E999.
///
/// Nothing traps: a result beyond the range is nil (the operators make it Undefined), a non-zero
/// result below it is 0. The work is done in 128- and 256-bit integers, exactly, then rounded once.
enum DecimalMath {
  /// The range of `Int` as decimals.
  static let intMax = SQLDecimal(Int.max)
  static let intMin = SQLDecimal(Int.min)

  /// `a + b`, or nil on overflow.
  static func add(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? { sum(a, b, negatingB: false) }

  /// `a - b`, or nil on overflow.
  static func subtract(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? { sum(a, b, negatingB: true) }

  /// `a ± b` exactly, then rounded. With `big` the operand whose leading digit is higher: when the
  /// other is below one unit of big written with 38 digits, it only decides which way big rounds,
  /// so it stands in as that one unit (`big ± 1` at 38 digits: no rounding boundary lies between
  /// the two, as big's last four digits there are zeros); otherwise both are aligned at the lower
  /// exponent, within 71 digits.
  private static func sum(_ a: SQLDecimal, _ b: SQLDecimal, negatingB: Bool) -> SQLDecimal? {
    let bNegative = b.isNegative != negatingB
    if b.isZero { return a }
    if a.isZero { return negatingB ? -b : b }
    let aParts = (negative: a.isNegative, significand: a.significand, exponent: a.exponent)
    let bParts = (negative: bNegative, significand: b.significand, exponent: b.exponent)
    let aDigits = SQLDecimal.digitCount(aParts.significand)
    let bDigits = SQLDecimal.digitCount(bParts.significand)
    let aTop = aParts.exponent + aDigits - 1
    let bTop = bParts.exponent + bDigits - 1
    let (big, bigDigits, small, smallTop) =
      aTop >= bTop ? (aParts, aDigits, bParts, bTop) : (bParts, bDigits, aParts, aTop)
    let bigTop = big.exponent + bigDigits - 1
    let sameSign = big.negative == small.negative
    if smallTop <= bigTop - 38 {
      let shift = 38 - bigDigits
      let scaled = big.significand * SQLDecimal.powersOfTen[shift]
      return finished(
        SQLDecimal.rounded(
          negative: big.negative, significand: sameSign ? scaled + 1 : scaled - 1,
          exponent: big.exponent - shift))
    }
    let exponent = min(big.exponent, small.exponent)
    let x = UInt256.scaled(big.significand, by: big.exponent - exponent)
    let y = UInt256.scaled(small.significand, by: small.exponent - exponent)
    if sameSign {
      return finished(SQLDecimal.rounded(negative: big.negative, wide: x + y, exponent: exponent))
    }
    if x == y { return .zero }
    let (negative, difference) = y < x ? (big.negative, x - y) : (small.negative, y - x)
    return finished(SQLDecimal.rounded(negative: negative, wide: difference, exponent: exponent))
  }

  /// A rounded result as an operation's: nil beyond the range, 0 below it.
  private static func finished(_ rounded: SQLDecimal.Rounded) -> SQLDecimal? {
    switch rounded {
    case .value(let value): value
    case .overflow: nil
    case .underflow: .zero
    }
  }

  /// `a * b`, or nil on overflow; a product too small to hold is 0.
  static func multiply(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? {
    if a.isZero || b.isZero { return .zero }
    let negative = a.isNegative != b.isNegative
    let product = UInt256.product(a.significand, b.significand)
    return finished(SQLDecimal.rounded(negative: negative, wide: product, exponent: a.exponent + b.exponent))
  }

  /// `a / b` to 34 significant digits, half to even; nil when `b` is zero or the quotient is beyond
  /// the range. Long division in 128-bit integers: the whole digits of the quotient, then more
  /// (four at a time while there is room) until there are 35, the last of which, with whether
  /// anything remains, rounds.
  static func divide(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? {
    if b.isZero { return nil }
    if a.isZero { return .zero }
    let divisor = b.significand
    var (digits, remainder) = a.significand.quotientAndRemainder(dividingBy: divisor)
    var exponent = a.exponent - b.exponent
    // Both significands are below 10^34: `remainder * 10^4` stays below 2^128.
    while remainder != 0, digits < limit34 {
      let step: UInt128 = digits < limit30 ? 10_000 : 10
      let next = (remainder * step).quotientAndRemainder(dividingBy: divisor)
      digits = digits * step + next.quotient
      remainder = next.remainder
      exponent -= step == 10 ? 1 : 4
    }
    // `digits` has at most 35 digits: the rounding below sees the 35th, and `remainder` as sticky.
    return finished(
      SQLDecimal.rounded(
        negative: a.isNegative != b.isNegative, significand: digits, exponent: exponent,
        sticky: remainder != 0))
  }

  /// `a / b` truncated toward zero, exactly, for whole `a` and `b` below 10^34 (Ints beyond 64
  /// bits: a quotient rounded to 34 digits first could round up, `9999…9 / 2` to 5E33); nil for a
  /// zero `b`, or operands not so.
  static func wholeQuotient(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? {
    guard !b.isZero, isWhole(a), isWhole(b) else { return nil }
    if a.isZero { return .zero }
    guard a.exponent <= 34, b.exponent <= 34 else { return nil }
    let (x, xOverflow) = a.significand.multipliedReportingOverflow(by: SQLDecimal.powersOfTen[a.exponent])
    let (y, yOverflow) = b.significand.multipliedReportingOverflow(by: SQLDecimal.powersOfTen[b.exponent])
    guard !xOverflow, !yOverflow, x < limit34, y < limit34 else { return nil }
    return SQLDecimal.exact(negative: a.isNegative != b.isNegative, significand: x / y, exponent: 0)
  }

  /// 10^34 and 10^30 (a quotient below the latter has room for four more digits under 10^34).
  private static let limit34 = SQLDecimal.powersOfTen[34]
  private static let limit30 = SQLDecimal.powersOfTen[30]

  /// `a % b` as Java's `BigDecimal.remainder`: `a - trunc(a / b) * b`, the sign of `a`, exactly
  /// (it has no more digits than `b`). Taken in integers: with `a`'s exponent the larger,
  /// `a.significand × 10^shift mod b.significand` by modular arithmetic; otherwise `b` scaled to
  /// `a`'s exponent, or `a` itself when `b` is the larger.
  static func remainder(_ a: SQLDecimal, _ b: SQLDecimal) -> SQLDecimal? {
    if b.isZero { return nil }
    if a.isZero { return .zero }
    let x = a.significand
    let y = b.significand
    if a.exponent <= b.exponent {
      var scaled = y
      for _ in 0..<(b.exponent - a.exponent) {
        let (product, overflow) = scaled.multipliedReportingOverflow(by: 10)
        if overflow || product > x { return a }
        scaled = product
      }
      if scaled > x { return a }
      return finished(
        SQLDecimal.rounded(negative: a.isNegative, significand: x % scaled, exponent: a.exponent))
    }
    let modulus = y
    // 10^shift mod the modulus, four digits at a time (products stay below 10^38).
    var power = 1 % modulus
    var remaining = a.exponent - b.exponent
    while remaining > 0 {
      let step = min(remaining, 4)
      power = power * SQLDecimal.powersOfTen[step] % modulus
      remaining -= step
    }
    let product = (x % modulus).multipliedFullWidth(by: power)
    let rest = modulus.dividingFullWidth(product).remainder
    return finished(SQLDecimal.rounded(negative: a.isNegative, significand: rest, exponent: b.exponent))
  }

  /// The value a number beyond the range is taken as: the largest magnitude (34 nines, E999) on
  /// overflow, the smallest non-zero one (1E-999) on underflow, with the number's sign.
  static func saturated(negative: Bool, overflow: Bool) -> SQLDecimal {
    let magnitude = overflow ? SQLDecimal.greatestMagnitude : SQLDecimal.leastMagnitude
    return negative ? -magnitude : magnitude
  }

  /// Rounds to `scale` decimal places with `mode` (the modes of `NSDecimalRound`: `.down` toward
  /// negative infinity, `.up` toward positive infinity, `.plain` halves away from zero, `.bankers`
  /// halves to even).
  static func rounded(_ value: SQLDecimal, scale: Int = 0, _ mode: NSDecimalNumber.RoundingMode) -> SQLDecimal
  {
    let dropped = -scale - value.exponent
    if dropped <= 0 || value.isZero { return value }
    let negative = value.isNegative
    let significand = value.significand
    var quotient: UInt128
    var remainderOrder: Int  // the remainder against half a unit: -1 below, 0 at, 1 above
    if dropped > SQLDecimal.maximumDigits {
      quotient = 0
      remainderOrder = -1  // below 10^34, less than half of 10^35
    } else {
      let divisor = SQLDecimal.powersOfTen[dropped]
      let remainder: UInt128
      (quotient, remainder) = significand.quotientAndRemainder(dividingBy: divisor)
      let twice = remainder * 2
      remainderOrder = twice < divisor ? -1 : (twice == divisor ? 0 : 1)
    }
    let up: Bool
    switch mode {
    case .down: up = negative
    case .up: up = !negative
    case .plain: up = remainderOrder >= 0
    case .bankers: up = remainderOrder > 0 || (remainderOrder == 0 && quotient % 2 == 1)
    @unknown default: up = false
    }
    if up { quotient += 1 }
    return finished(SQLDecimal.rounded(negative: negative, significand: quotient, exponent: -scale)) ?? value
  }

  /// Toward zero, to `scale` places.
  static func truncated(_ value: SQLDecimal, scale: Int = 0) -> SQLDecimal {
    rounded(value, scale: scale, value.isNegative ? .up : .down)
  }

  /// True when `value` has no fractional part (kept without trailing zeros, a number with a
  /// negative exponent has one).
  static func isWhole(_ value: SQLDecimal) -> Bool { value.exponent >= 0 || value.isZero }

  /// The `Int` equal to `value`, or nil when it is not whole or does not fit.
  static func exactInt(_ value: SQLDecimal) -> Int? {
    if value.isZero { return 0 }
    guard value.exponent >= 0 else { return nil }
    return JSONNumber.wholeInt(
      negative: value.isNegative, significand: value.significand, exponent: value.exponent)
  }

  /// A whole decimal as a value: an Int when it fits, else the Decimal.
  static func integerValue(_ value: SQLDecimal) -> Value {
    if let int = exactInt(value) { return .int(int) }
    return .decimal(value)
  }

  /// The exact number `significand × 10^exponent` as an operator's result: an Int under 2016-03-23
  /// when it is whole and fits (as ``Coercions/normalized(_:version:)``), else a Decimal; nil when it
  /// needs rounding to 34 digits or is out of range (the general path decides then).
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
    return SQLDecimal.exact(negative: negative, significand: significand, exponent: exponent).map(
      Value.decimal)
  }

  /// `value` saturated to `Int` after `mode` rounding: what clamped arguments need.
  static func saturatingInt(_ value: SQLDecimal, _ mode: NSDecimalNumber.RoundingMode) -> Int {
    let whole = rounded(value, mode)
    if whole >= intMax { return Int.max }
    if whole <= intMin { return Int.min }
    return exactInt(whole) ?? 0
  }

  /// A double as a decimal, built from its shortest round-trip text (every finite double is within
  /// the range); nil for NaN and infinities.
  static func fromDouble(_ double: Double) -> SQLDecimal? {
    guard double.isFinite else { return nil }
    if double == 0 { return .zero }
    return JSONNumber.decimal(parsing: "\(double)")?.value
  }

  /// The nearest double. A significand below 2^53 with a power of ten up to 10^22 takes one exact
  /// multiplication or division (both operands are exact doubles, so the one rounding is correct);
  /// anything else is read back from the decimal's digits (correctly rounded).
  static func toDouble(_ value: SQLDecimal) -> Double {
    let significand = value.significand
    let exponent = value.exponent
    if significand < 1 << 53, exponent.magnitude <= 22 {
      let magnitude = Double(UInt64(significand))
      let scaled =
        exponent >= 0 ? magnitude * exactPowersOfTen[exponent] : magnitude / exactPowersOfTen[-exponent]
      return value.isNegative ? -scaled : scaled
    }
    return Double("\(value.isNegative ? "-" : "")\(significand)e\(exponent)") ?? .nan
  }

  /// 10^0 ... 10^22, every one exactly representable as a double.
  private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
    (0..<exponent).reduce(1.0) { product, _ in product * 10 }
  }
}
