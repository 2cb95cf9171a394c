import Foundation

/// The fast path of decimal arithmetic: a number whose significand fits in 64 bits, as
/// `significand × 10^exponent`.
///
/// Payload numbers such as `23.8` and literals such as `1.8` have small significands, so
/// comparisons and `+ - *` of two of them are done here in 64- and 128-bit integers, exactly; the
/// caller turns an exact result into a value (``DecimalMath/value(negative:significand:exponent:version:)``)
/// or, when it would need rounding to 34 digits or leave the range, takes the general path of
/// ``DecimalMath``: results are identical either way.
struct SmallDecimal {
  var negative: Bool
  var significand: UInt64
  var exponent: Int

  @inline(__always)
  init(negative: Bool, significand: UInt64, exponent: Int) {
    self.negative = negative
    self.significand = significand
    self.exponent = exponent
  }

  /// An Int, exactly.
  @inline(__always)
  init(_ int: Int) {
    self.init(negative: int < 0, significand: UInt64(int.magnitude), exponent: 0)
  }

  /// The parts of `decimal`, or nil for a significand beyond 64 bits.
  @inline(__always)
  init?(_ decimal: SQLDecimal) {
    guard decimal.high & SQLDecimal.highMask == 0 else { return nil }
    self.init(negative: decimal.isNegative, significand: decimal.low, exponent: decimal.exponent)
  }

  /// An Int or a Decimal value; nil for other types and for decimals the fast path does not take.
  @inline(__always)
  init?(_ value: Value) {
    switch value {
    case .int(let int): self.init(int)
    case .decimal(let decimal): self.init(decimal)
    default: return nil
    }
  }

  var isZero: Bool { significand == 0 }

  /// Powers of ten that fit in 64 bits: 10^0 ... 10^19.
  static let powers: [UInt64] = {
    var result: [UInt64] = [1]
    for _ in 1...19 { result.append(result.last! * 10) }
    return result
  }()

  // MARK: Comparison

  /// -1, 0 or 1.
  static func compare(_ a: SmallDecimal, _ b: SmallDecimal) -> Int {
    let aSign = a.significand == 0 ? 0 : (a.negative ? -1 : 1)
    let bSign = b.significand == 0 ? 0 : (b.negative ? -1 : 1)
    if aSign != bSign { return aSign < bSign ? -1 : 1 }
    if aSign == 0 { return 0 }
    let magnitudeOrder = compareMagnitudes(a, b)
    return aSign > 0 ? magnitudeOrder : -magnitudeOrder
  }

  private static func compareMagnitudes(_ a: SmallDecimal, _ b: SmallDecimal) -> Int {
    if a.exponent == b.exponent {
      return a.significand < b.significand ? -1 : (a.significand == b.significand ? 0 : 1)
    }
    // Scale the one with the larger exponent; beyond 10^19 it is larger than any 64-bit significand.
    if a.exponent > b.exponent {
      let shift = a.exponent - b.exponent
      if shift > 19 { return 1 }
      let scaled = UInt128(a.significand) * UInt128(powers[shift])
      let other = UInt128(b.significand)
      return scaled < other ? -1 : (scaled == other ? 0 : 1)
    }
    return -compareMagnitudes(b, a)
  }

  // MARK: Arithmetic

  /// The exact result of `a + b` (or `a - b` when `subtract`) as sign, 128-bit significand and
  /// exponent; nil when it does not fit.
  static func add(_ a: SmallDecimal, _ b: SmallDecimal, subtract: Bool) -> (Bool, UInt128, Int)? {
    let bNegative = subtract ? !b.negative : b.negative
    if b.significand == 0 { return (a.negative, UInt128(a.significand), a.exponent) }
    if a.significand == 0 { return (bNegative, UInt128(b.significand), b.exponent) }
    let exponent = min(a.exponent, b.exponent)
    guard let x = scaled(a.significand, by: a.exponent - exponent),
      let y = scaled(b.significand, by: b.exponent - exponent)
    else { return nil }
    if a.negative == bNegative {
      let (sum, overflow) = x.addingReportingOverflow(y)
      return overflow ? nil : (a.negative, sum, exponent)
    }
    if x >= y { return (a.negative, x - y, exponent) }
    return (bNegative, y - x, exponent)
  }

  /// The exact product.
  static func multiply(_ a: SmallDecimal, _ b: SmallDecimal) -> (Bool, UInt128, Int) {
    (a.negative != b.negative, UInt128(a.significand) * UInt128(b.significand), a.exponent + b.exponent)
  }

  /// `significand × 10^shift` for a shift of up to 38 digits; nil when it would overflow.
  private static func scaled(_ significand: UInt64, by shift: Int) -> UInt128? {
    if shift == 0 { return UInt128(significand) }
    guard shift <= 19 else {
      guard shift <= 38 else { return nil }
      let once = UInt128(significand) * UInt128(powers[19])
      let (result, overflow) = once.multipliedReportingOverflow(by: UInt128(powers[shift - 19]))
      return overflow ? nil : result
    }
    return UInt128(significand) * UInt128(powers[shift])
  }
}
