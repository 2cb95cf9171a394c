import Foundation

/// The fast path of decimal arithmetic: a decimal whose significand fits in 64 bits, as
/// `significand × 10^exponent`.
///
/// Foundation's `Decimal` operations cost about a microsecond each (they normalise through arrays of
/// 16-bit words). Payload numbers such as `23.8` and literals such as `1.8` have small significands,
/// so comparisons, `+ - *`, rounding and the whole-number test are done here in 64- and 128-bit
/// integers, exactly, and turned back into a `Decimal` by writing its storage. Whenever the exact
/// result would need more than 34 significant digits, or an exponent outside Decimal's range, the
/// operation gives nil and the caller takes the Foundation path: results are identical either way.
///
/// Reading and writing the storage relies on Foundation's layout (a 32-bit header: exponent in the
/// low byte, then the `isCompact` bit, the sign bit and a 4-bit word count; then eight little-endian
/// 16-bit words). ``layoutIsKnown`` checks that layout once against Foundation's own values; when it
/// does not hold, every fast path is off.
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

  /// The parts of `decimal`, or nil for NaN, a significand beyond 64 bits, or an unknown layout.
  @inline(__always)
  init?(_ decimal: Decimal) {
    guard Self.layoutIsKnown, let parts = Self.read(decimal) else { return nil }
    self = parts
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

  /// The storage's header and its significand's two 64-bit halves.
  @inline(__always)
  static func storage(of decimal: Decimal) -> (header: UInt32, low: UInt64, high: UInt64) {
    withUnsafeBytes(of: decimal) { raw in
      (
        raw.loadUnaligned(as: UInt32.self), raw.loadUnaligned(fromByteOffset: 4, as: UInt64.self),
        raw.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
      )
    }
  }

  private static func read(_ decimal: Decimal) -> SmallDecimal? {
    let (header, low, high) = storage(of: decimal)
    let length = (header >> 12) & 0xF
    let negative = header & 0x800 != 0
    if length == 0 {
      // Zero, or NaN (Foundation marks NaN as a negative zero-length number).
      return negative ? nil : SmallDecimal(negative: false, significand: 0, exponent: 0)
    }
    guard length <= 4, high == 0 else { return nil }
    return SmallDecimal(
      negative: negative, significand: low, exponent: Int(Int8(truncatingIfNeeded: header)))
  }

  /// `significand × 10^exponent` as a Decimal with trailing zeros folded into the exponent (the
  /// compact form Foundation's own operations give); nil when the significand has more than 34
  /// digits or the exponent is outside -128...127.
  static func decimal(negative: Bool, significand: UInt128, exponent: Int) -> Decimal? {
    guard layoutIsKnown else { return nil }
    return makeDecimal(negative: negative, significand: significand, exponent: exponent)
  }

  private static func makeDecimal(negative: Bool, significand: UInt128, exponent: Int) -> Decimal? {
    if significand == 0 { return Decimal() }
    var significand = significand
    var exponent = exponent
    while significand % 10 == 0 {
      significand /= 10
      exponent += 1
    }
    guard significand < limit34,
      let (fittedSignificand, fittedExponent) = JSONNumber.fitted(significand, exponent)
    else { return nil }
    significand = fittedSignificand
    exponent = fittedExponent
    let bits = 128 - significand.leadingZeroBitCount
    let length = UInt32((bits + 15) / 16)
    let header =
      UInt32(UInt8(bitPattern: Int8(exponent))) | length << 12 | (negative ? 0x800 : 0) | 0x400
    var result = Decimal()
    withUnsafeMutableBytes(of: &result) { raw in
      raw.storeBytes(of: header, as: UInt32.self)
      raw.storeBytes(of: UInt64(truncatingIfNeeded: significand), toByteOffset: 4, as: UInt64.self)
      raw.storeBytes(of: UInt64(truncatingIfNeeded: significand >> 64), toByteOffset: 12, as: UInt64.self)
    }
    return result
  }

  /// 10^34: significands at or above it need rounding, which the Foundation path does.
  static let limit34: UInt128 = {
    var value: UInt128 = 1
    for _ in 0..<34 { value *= 10 }
    return value
  }()

  /// Powers of ten that fit in 64 bits: 10^0 ... 10^19.
  static let powers: [UInt64] = {
    var result: [UInt64] = [1]
    for _ in 1...19 { result.append(result.last! * 10) }
    return result
  }()

  /// True when Foundation's storage is laid out as this type reads and writes it.
  ///
  /// Decimals are read from text with `locale: nil` here and everywhere in the engine: the separator
  /// is then `.` without a `Locale`, whose first use opens ICU's number formatting and keeps ~3 MB
  /// more resident in a daemon that never formats a number for a locale.
  static let layoutIsKnown: Bool = {
    guard MemoryLayout<Decimal>.size == 20 else { return false }
    let samples: [(String, Bool, UInt64, Int)] = [
      ("29.5", false, 295, -1), ("-29.5", true, 295, -1), ("18446744073709551615", false, UInt64.max, 0),
      ("-0.000123", true, 123, -6), ("70000", false, 7, 4), ("1E-100", false, 1, -100),
    ]
    for (text, negative, significand, exponent) in samples {
      guard let decimal = Decimal(string: text, locale: nil),
        let parts = read(decimal), parts.negative == negative, parts.significand == significand,
        parts.exponent == exponent,
        let made = makeDecimal(negative: negative, significand: UInt128(significand), exponent: exponent),
        made == decimal, made.description == decimal.description
      else { return false }
    }
    guard read(Decimal.nan) == nil, let zero = read(Decimal(0)), zero.significand == 0 else { return false }
    let wide = makeDecimal(negative: false, significand: UInt128(UInt64.max) * 1000 + 1, exponent: -3)
    return wide == Decimal(string: "18446744073709551615.001", locale: nil)
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

  // MARK: Rounding and whole numbers

  /// Rounds to `scale` decimal places with `mode` (the modes of `NSDecimalRound`: `.down` toward
  /// negative infinity, `.up` toward positive infinity, `.plain` halves away from zero, `.bankers`
  /// halves to even).
  func rounded(scale: Int, _ mode: NSDecimalNumber.RoundingMode) -> (Bool, UInt128, Int)? {
    let dropped = -scale - exponent
    if dropped <= 0 || significand == 0 { return (negative, UInt128(significand), exponent) }
    var quotient: UInt64
    var remainderOrder: Int  // remainder compared with half a unit: -1 below, 0 at, 1 above
    var exact: Bool
    if dropped > 19 {
      quotient = 0
      exact = false
      remainderOrder = -1  // significand < 2^64 < 10^20 / 2
    } else {
      let divisor = Self.powers[dropped]
      quotient = significand / divisor
      let remainder = significand % divisor
      exact = remainder == 0
      let twice = UInt128(remainder) * 2
      remainderOrder = twice < UInt128(divisor) ? -1 : (twice == UInt128(divisor) ? 0 : 1)
    }
    if !exact {
      let up: Bool
      switch mode {
      case .down: up = negative
      case .up: up = !negative
      case .plain: up = remainderOrder >= 0
      case .bankers: up = remainderOrder > 0 || (remainderOrder == 0 && quotient % 2 == 1)
      @unknown default: return nil
      }
      if up { quotient += 1 }
    }
    return (negative && quotient != 0, UInt128(quotient), -scale)
  }

  /// The Int equal to this value, or nil when it is not whole or does not fit.
  var exactInt: Int? {
    if significand == 0 { return 0 }
    var significand = significand
    var exponent = exponent
    while exponent < 0 {
      guard significand % 10 == 0 else { return nil }
      significand /= 10
      exponent += 1
    }
    return JSONNumber.wholeInt(negative: negative, significand: UInt128(significand), exponent: exponent)
  }
}

/// A non-zero decimal's parts with its whole 128-bit significand, at most 34 digits: what exact
/// division and remainder work on.
struct WideDecimal {
  var negative: Bool
  var significand: UInt128
  var exponent: Int

  /// The parts of `decimal`; nil for zero, NaN, an unknown layout, or more than 34 significant
  /// digits. A number above about 1E161 is held at exponent 127 with zeros appended to its
  /// significand: they are taken back into the exponent (exactly, and beyond 127 here).
  init?(_ decimal: Decimal) {
    guard SmallDecimal.layoutIsKnown, var parts = Self.read(decimal) else { return nil }
    while parts.significand >= SmallDecimal.limit34, parts.significand % 10 == 0 {
      parts.significand /= 10
      parts.exponent += 1
    }
    guard parts.significand != 0, parts.significand < SmallDecimal.limit34 else { return nil }
    self = parts
  }

  private init(negative: Bool, significand: UInt128, exponent: Int) {
    self.negative = negative
    self.significand = significand
    self.exponent = exponent
  }

  /// Reads the storage (see ``SmallDecimal``): words beyond the header's count are ignored.
  private static func read(_ decimal: Decimal) -> WideDecimal? {
    let (header, low, high) = SmallDecimal.storage(of: decimal)
    let length = Int((header >> 12) & 0xF)
    guard length > 0, length <= 8 else { return nil }
    var significand = UInt128(high) << 64 | UInt128(low)
    if length < 8 { significand &= (UInt128(1) << (16 * length)) - 1 }
    return WideDecimal(
      negative: header & 0x800 != 0, significand: significand, exponent: Int(Int8(truncatingIfNeeded: header))
    )
  }
}

extension SmallDecimal {
  /// 10^n as a 128-bit integer, for n in 0...19.
  static func power128(_ n: Int) -> UInt128 { UInt128(powers[n]) }
}
