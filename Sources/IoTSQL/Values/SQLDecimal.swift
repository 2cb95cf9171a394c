/// A decimal number as AWS IoT SQL holds it: up to 34 significant digits (Java's DECIMAL128 context,
/// rounded half to even) and magnitudes from 1E-999 to 9.999…E999, the range the AWS guide gives.
///
/// A value is always kept in one form: the significand has no trailing zeros (zero is `0E0`,
/// positive), so equal numbers are equal structurally and hash alike, and `1.50` is `1.5`. The 34
/// digits (below 2^113), the exponent and the sign are packed into 16 bytes, so a `Value` stays 24
/// bytes a slot.
///
/// Arithmetic lives in ``DecimalMath`` (nil on overflow, zero below the range); this type builds,
/// compares and takes apart.
public struct SQLDecimal: Sendable, Hashable {
  /// The significand's low 64 bits.
  @usableFromInline var low: UInt64
  /// The significand's high 49 bits, the biased exponent in bits 49...61, the sign in bit 63.
  @usableFromInline var high: UInt64

  /// Significant digits kept.
  public static let maximumDigits = 34
  /// The largest power of ten of a leading digit (9.999…E999).
  public static let maximumAdjustedExponent = 999
  /// The smallest power of ten of a leading digit (1E-999).
  public static let minimumAdjustedExponent = -999

  static let exponentBias = 2048
  static let highMask: UInt64 = (1 << 49) - 1
  static let signBit: UInt64 = 1 << 63

  /// Builds from parts already in the kept form (no trailing zero, at most 34 digits, in range).
  @inline(__always)
  init(unchecked negative: Bool, significand: UInt128, exponent: Int) {
    low = UInt64(truncatingIfNeeded: significand)
    high =
      UInt64(truncatingIfNeeded: significand >> 64)
      | UInt64(truncatingIfNeeded: exponent + Self.exponentBias) << 49 | (negative ? Self.signBit : 0)
  }

  /// Zero.
  public static let zero = SQLDecimal(unchecked: false, significand: 0, exponent: 0)

  /// The whole number `int`, exactly.
  public init(_ int: Int) {
    self = Self.exact(negative: int < 0, significand: UInt128(int.magnitude), exponent: 0)!
  }

  /// The number a numeral stands for (JSON's number syntax, leading zeros allowed: `1.5`, `-2E-3`,
  /// `007`), rounded to 34 digits; beyond the range the nearest value held. Nil for other text.
  public init?(string: String) {
    guard let (value, _) = JSONNumber.decimal(parsing: string) else { return nil }
    self = value
  }

  /// The digits as a whole number (below 10^34; no trailing zero unless zero).
  public var significand: UInt128 { UInt128(high & Self.highMask) << 64 | UInt128(low) }
  /// The power of ten the significand is scaled by.
  public var exponent: Int { Int((high >> 49) & 0x1FFF) - Self.exponentBias }
  /// True below zero.
  public var isNegative: Bool { high & Self.signBit != 0 }
  /// True for zero.
  public var isZero: Bool { low == 0 && high & Self.highMask == 0 }

  /// `significand × 10^exponent` when that is held exactly (34 digits at most once trailing zeros are
  /// taken into the exponent, within the range); nil otherwise.
  public static func exact(negative: Bool, significand: UInt128, exponent: Int) -> SQLDecimal? {
    if significand == 0 { return .zero }
    var significand = significand
    var exponent = exponent
    while significand % 10 == 0 {
      significand /= 10
      exponent += 1
    }
    guard significand < powersOfTen[maximumDigits] else { return nil }
    let adjusted = exponent + digitCount(significand) - 1
    guard adjusted <= maximumAdjustedExponent, adjusted >= minimumAdjustedExponent else { return nil }
    return SQLDecimal(unchecked: negative, significand: significand, exponent: exponent)
  }

  /// What rounding a number to this type gives.
  public enum Rounded: Sendable, Equatable {
    /// The number, rounded to 34 digits.
    case value(SQLDecimal)
    /// Beyond 9.999…E999 in magnitude.
    case overflow
    /// Not zero, but below 1E-999 in magnitude.
    case underflow
  }

  /// `significand × 10^exponent` rounded half to even to 34 digits; `sticky` says that something
  /// non-zero, less than one unit of the last digit, is to be added (it only breaks ties, so it is
  /// used only when digits are dropped).
  static func rounded(negative: Bool, significand: UInt128, exponent: Int, sticky: Bool = false) -> Rounded {
    if significand == 0 { return .value(.zero) }
    var significand = significand
    var exponent = exponent
    let digits = digitCount(significand)
    if digits > maximumDigits {
      let dropped = digits - maximumDigits
      let (upper, rest) = significand.quotientAndRemainder(dividingBy: powersOfTen[dropped - 1])
      let (kept, last) = upper.quotientAndRemainder(dividingBy: 10)
      let below = rest != 0 || sticky
      significand = kept
      exponent += dropped
      if last > 5 || (last == 5 && (below || kept % 2 == 1)) { significand += 1 }
    }
    while significand % 10 == 0 {
      significand /= 10
      exponent += 1
    }
    let adjusted = exponent + digitCount(significand) - 1
    if adjusted > maximumAdjustedExponent { return .overflow }
    if adjusted < minimumAdjustedExponent { return .underflow }
    return .value(SQLDecimal(unchecked: negative, significand: significand, exponent: exponent))
  }

  /// A 256-bit significand rounded as ``rounded(negative:significand:exponent:sticky:)``.
  static func rounded(negative: Bool, wide: UInt256, exponent: Int) -> Rounded {
    var wide = wide
    var exponent = exponent
    var sticky = false
    // Three digits at a time while beyond 128 bits: what is left keeps at least 36 digits, so the
    // digit that rounds is still there and what went below it is only `sticky`.
    while wide.high != 0 {
      let remainder = wide.divide(by: 1000)
      sticky = sticky || remainder != 0
      exponent += 3
    }
    return rounded(negative: negative, significand: wide.low, exponent: exponent, sticky: sticky)
  }

  /// The number of decimal digits of `value` (1 for zero).
  @inline(__always)
  static func digitCount(_ value: UInt128) -> Int {
    let estimate = ((128 - value.leadingZeroBitCount) * 1233) >> 12
    return value >= powersOfTen[estimate] ? estimate + 1 : max(estimate, 1)
  }

  /// 10^0 ... 10^38, every power of ten below 2^128.
  static let powersOfTen: [UInt128] = {
    var powers: [UInt128] = [1]
    for _ in 1...38 { powers.append(powers.last! * 10) }
    return powers
  }()

  /// The largest magnitude held: 34 nines, E999.
  public static let greatestMagnitude = SQLDecimal(
    unchecked: false, significand: powersOfTen[maximumDigits] - 1,
    exponent: maximumAdjustedExponent - maximumDigits + 1)
  /// The smallest non-zero magnitude held: 1E-999.
  public static let leastMagnitude = SQLDecimal(
    unchecked: false, significand: 1, exponent: minimumAdjustedExponent)

  /// The power of ten of the leading digit (`123.4` → 2); 0 for zero.
  var adjustedExponent: Int { exponent + Self.digitCount(significand) - 1 }
}

extension SQLDecimal: Comparable {
  /// Orders by value.
  public static func < (lhs: SQLDecimal, rhs: SQLDecimal) -> Bool { compare(lhs, rhs) < 0 }

  /// -1, 0 or 1 as `a` is below, equal to or above `b`.
  public static func compare(_ a: SQLDecimal, _ b: SQLDecimal) -> Int {
    let aSign = a.isZero ? 0 : (a.isNegative ? -1 : 1)
    let bSign = b.isZero ? 0 : (b.isNegative ? -1 : 1)
    if aSign != bSign { return aSign < bSign ? -1 : 1 }
    if aSign == 0 { return 0 }
    let magnitudes = compareMagnitudes(a, b)
    return aSign > 0 ? magnitudes : -magnitudes
  }

  private static func compareMagnitudes(_ a: SQLDecimal, _ b: SQLDecimal) -> Int {
    let x = a.significand
    let y = b.significand
    if a.exponent == b.exponent { return x < y ? -1 : (x == y ? 0 : 1) }
    let xDigits = digitCount(x)
    let yDigits = digitCount(y)
    let xAdjusted = a.exponent + xDigits - 1
    let yAdjusted = b.exponent + yDigits - 1
    if xAdjusted != yAdjusted { return xAdjusted < yAdjusted ? -1 : 1 }
    // Same leading power: both padded to 34 digits.
    let xPadded = x * powersOfTen[maximumDigits - xDigits]
    let yPadded = y * powersOfTen[maximumDigits - yDigits]
    return xPadded < yPadded ? -1 : (xPadded == yPadded ? 0 : 1)
  }
}

extension SQLDecimal {
  /// The number with its sign turned (zero stays zero).
  public static prefix func - (value: SQLDecimal) -> SQLDecimal {
    if value.isZero { return value }
    var result = value
    result.high ^= signBit
    return result
  }

  /// The magnitude.
  public var magnitude: SQLDecimal {
    var result = self
    result.high &= ~Self.signBit
    return result
  }
}

extension SQLDecimal {
  /// The `Int` equal to this number, or nil when it has a fraction or does not fit in 64 bits.
  public var exactInt: Int? { DecimalMath.exactInt(self) }

  /// True when this number has no fractional part (`12.0` is `12`: trailing zeros are not kept).
  public var isWhole: Bool { DecimalMath.isWhole(self) }
}

extension SQLDecimal: CustomStringConvertible {
  /// The number as the JSON writer spells it (`22.5`, `10.0`, `1.5E40`).
  public var description: String {
    var bytes: [UInt8] = []
    JSONNumber.appendDecimal(self, into: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension SQLDecimal: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
  /// A whole number literal.
  public init(integerLiteral value: Int) { self.init(value) }

  /// A literal with a fraction, as its double's shortest text reads (`31.5`).
  public init(floatLiteral value: Double) { self = DecimalMath.fromDouble(value) ?? .zero }
}

/// An unsigned 256-bit integer, as far as decimal arithmetic needs one: products of two 34-digit
/// significands and sums aligned across up to 70 digits.
struct UInt256: Equatable {
  var high: UInt128
  var low: UInt128

  init(high: UInt128 = 0, low: UInt128) {
    self.high = high
    self.low = low
  }

  /// `a × b`, exactly.
  static func product(_ a: UInt128, _ b: UInt128) -> UInt256 {
    let (high, low) = a.multipliedFullWidth(by: b)
    return UInt256(high: high, low: low)
  }

  /// `value × 10^power` for a power up to 76 (the result must fit).
  static func scaled(_ value: UInt128, by power: Int) -> UInt256 {
    if power <= 38 { return product(value, SQLDecimal.powersOfTen[power]) }
    var result = product(value, SQLDecimal.powersOfTen[38])
    var remaining = power - 38
    while remaining > 0 {
      let step = min(remaining, 19)
      result.multiply(by: UInt64(SQLDecimal.powersOfTen[step]))
      remaining -= step
    }
    return result
  }

  /// Multiplies in place by a 64-bit factor (the result must fit).
  mutating func multiply(by factor: UInt64) {
    let factor = UInt128(factor)
    let (carry, lowProduct) = low.multipliedFullWidth(by: factor)
    high = high &* factor &+ carry
    low = lowProduct
  }

  /// Divides in place by a 64-bit divisor; returns the remainder.
  mutating func divide(by divisor: UInt64) -> UInt64 {
    let divisor = UInt128(divisor)
    let (highQuotient, highRemainder) = high.quotientAndRemainder(dividingBy: divisor)
    let (lowQuotient, remainder) = divisor.dividingFullWidth((high: highRemainder, low: low))
    high = highQuotient
    low = lowQuotient
    return UInt64(remainder)
  }

  static func + (a: UInt256, b: UInt256) -> UInt256 {
    let (low, carry) = a.low.addingReportingOverflow(b.low)
    return UInt256(high: a.high &+ b.high &+ (carry ? 1 : 0), low: low)
  }

  static func - (a: UInt256, b: UInt256) -> UInt256 {
    let (low, borrow) = a.low.subtractingReportingOverflow(b.low)
    return UInt256(high: a.high &- b.high &- (borrow ? 1 : 0), low: low)
  }

  static func < (a: UInt256, b: UInt256) -> Bool { a.high != b.high ? a.high < b.high : a.low < b.low }
}
