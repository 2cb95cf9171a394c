import Foundation

/// Numbers between JSON text and `Value`: building a `Decimal` from digits, and spelling one out.
///
/// `Decimal` is built from its significand and exponent (`Decimal(sign:exponent:significand:)`), never
/// from a string: that is about 40 times faster than `Decimal(string:)`.
enum JSONNumber {
  /// AWS's decimals carry 34 significant digits; longer literals are rounded (half to even) to 34.
  static let maximumDigits = 34
  /// The exponent range of `Foundation.Decimal` (after trailing zeros are folded into the exponent).
  static let exponentRange = -128...127
  /// Plain notation for adjusted exponents in this range (up to 34 integer digits, as AWS's integers,
  /// and up to 20 zeros after the point), scientific (`5E-21`) outside it.
  static let plainRange = -20...33

  private static let tenPow19 = Decimal(UInt64(10_000_000_000_000_000_000))

  // MARK: Building values

  /// The value of `significand × 10^exponent` with the engine's number rules: an Int when
  /// `allowInt` and the value is whole and fits in 64 bits, else a Decimal. `significand` has no
  /// trailing zeros (or is zero). Returns nil when the exponent is beyond Decimal's range.
  static func value(negative: Bool, significand: UInt128, exponent: Int, allowInt: Bool) -> Value? {
    if significand == 0 { return allowInt ? .int(0) : .decimal(Decimal(0)) }
    if allowInt, exponent >= 0,
      let whole = wholeInt(negative: negative, significand: significand, exponent: exponent)
    {
      return .int(whole)
    }
    if exponentRange.contains(exponent) {
      return .decimal(
        Decimal(sign: negative ? .minus : .plus, exponent: exponent, significand: decimal(significand)))
    }
    // Beyond 127 the exponent is fitted by growing the significand (Foundation's initializer would
    // overflow computing it), so the Decimal is laid out directly.
    return SmallDecimal.decimal(negative: negative, significand: significand, exponent: exponent).map(
      Value.decimal)
  }

  /// 10^38: Decimal's significand (eight 16-bit words) holds any 38-digit integer.
  static let widestSignificand: UInt128 = (0..<38).reduce(1) { product, _ in product * 10 }

  /// The decimal a number's text stands for (JSON's number syntax, with leading zeros allowed:
  /// `007`, `-00.5`), through the JSON reader rather than `Decimal(string:)`, which fails for
  /// exponents beyond 127 that Decimal holds (`5E128`): rounded to 34 digits; beyond the range the
  /// nearest value Decimal holds, and `saturated` is then true. Nil for other text.
  static func decimal(parsing text: String) -> (value: Decimal, saturated: Bool)? {
    var utf8 = Array(text.utf8)
    let sign = utf8.first == UInt8(ascii: "-") ? 1 : 0
    var zeros = 0
    while sign + zeros + 1 < utf8.count, utf8[sign + zeros] == UInt8(ascii: "0"),
      utf8[sign + zeros + 1] &- 0x30 < 10
    {
      zeros += 1
    }
    if zeros > 0 { utf8.removeSubrange(sign..<(sign + zeros)) }
    let read: (Value?, Bool) = utf8.withUnsafeBufferPointer { buffer in
      guard let base = buffer.baseAddress else { return (nil, false) }
      var values: [Value] = []
      var scanner = JSONScanner(
        base: base, count: buffer.count, options: JSONReadOptions(wholeDecimalsAsInt: false), names: .empty,
        checksCanonical: false, reusing: &values)
      let value = scanner.buildDocument()
      return (value, scanner.saturated)
    }
    switch read.0 {
    case .int(let int)?: return (Decimal(int), false)
    case .decimal(let decimal)?: return (decimal, read.1)
    default: return nil
    }
  }

  /// `significand × 10^exponent` with its exponent brought into `Decimal`'s range when the value
  /// allows: `5E128` is `50 × 10^127` (Decimal's significand holds 38 digits, so up to about 1E165);
  /// below 10^-128 the last digits are rounded away. Nil when the value is beyond the range.
  static func fitted(_ significand: UInt128, _ exponent: Int) -> (UInt128, Int)? {
    if exponentRange.contains(exponent) { return (significand, exponent) }
    var significand = significand
    var exponent = exponent
    if exponent < exponentRange.lowerBound {
      // Below 10^-128 digits are rounded away (half to even): `1.2345E-125` keeps 1.2345E-125,
      // `1.5E-130` is 1.5E-130 to three places; nil when nothing is left.
      let dropped = exponentRange.lowerBound - exponent
      guard dropped < 39 else { return nil }
      let divisor = (0..<dropped).reduce(UInt128(1)) { product, _ in product * 10 }
      let (quotient, remainder) = significand.quotientAndRemainder(dividingBy: divisor)
      let half = divisor / 2
      let roundUp = remainder > half || (remainder == half && quotient % 2 == 1)
      significand = quotient + (roundUp ? 1 : 0)
      exponent = exponentRange.lowerBound
      return significand == 0 ? nil : (significand, exponent)
    }
    while exponent > exponentRange.upperBound {
      let (product, overflow) = significand.multipliedReportingOverflow(by: 10)
      guard !overflow, product < widestSignificand else { return nil }
      significand = product
      exponent -= 1
    }
    return (significand, exponent)
  }

  /// `significand × 10^exponent` as an Int, or nil when it does not fit.
  static func wholeInt(negative: Bool, significand: UInt128, exponent: Int) -> Int? {
    let limit = negative ? UInt128(UInt64(Int.max)) + 1 : UInt128(UInt64(Int.max))
    var magnitude = significand
    guard magnitude <= limit else { return nil }
    var remaining = exponent
    while remaining > 0 {
      let (product, overflow) = magnitude.multipliedReportingOverflow(by: 10)
      guard !overflow, product <= limit else { return nil }
      magnitude = product
      remaining -= 1
    }
    if negative {
      return magnitude == limit ? Int.min : -Int(UInt64(magnitude))
    }
    return Int(UInt64(magnitude))
  }

  /// A Decimal holding the integer `value` (exact up to 38 digits).
  static func decimal(_ value: UInt128) -> Decimal {
    if value <= UInt128(UInt64.max) { return Decimal(UInt64(value)) }
    let low = Decimal(UInt64(value % 10_000_000_000_000_000_000))
    let rest = value / 10_000_000_000_000_000_000
    if rest <= UInt128(UInt64.max) { return Decimal(UInt64(rest)) * tenPow19 + low }
    // Above 38 digits (only Decimal's own extremes): Foundation may round; `parts` checks.
    let middle = Decimal(UInt64(rest % 10_000_000_000_000_000_000))
    let top = Decimal(UInt64(rest / 10_000_000_000_000_000_000))
    return (top * tenPow19 + middle) * tenPow19 + low
  }

  /// The significand and exponent of the significant digits `digits` (values 0...9, no leading
  /// zero) times `10^exponent`, rounded half to even to `maximumDigits` digits, trailing zeros folded
  /// into the exponent.
  static func round(digits: [UInt8], exponent: Int) -> (significand: UInt128, exponent: Int) {
    var exponent = exponent
    var kept = digits
    if kept.count > maximumDigits {
      let dropped = kept[maximumDigits...]
      exponent += kept.count - maximumDigits
      kept.removeSubrange(maximumDigits...)
      let first = dropped.first!
      let restNonZero = dropped.dropFirst().contains { $0 != 0 }
      let roundUp = first > 5 || (first == 5 && (restNonZero || kept.last! % 2 == 1))
      if roundUp {
        var index = kept.count - 1
        while index >= 0 {
          if kept[index] == 9 {
            kept[index] = 0
            index -= 1
          } else {
            kept[index] += 1
            break
          }
        }
        if index < 0 { kept.insert(1, at: 0) }
      }
    }
    while let last = kept.last, last == 0, kept.count > 1 {
      kept.removeLast()
      exponent += 1
    }
    var significand: UInt128 = 0
    for digit in kept { significand = significand * 10 + UInt128(digit) }
    return (significand, exponent)
  }

  // MARK: Spelling numbers

  /// The sign, integer significand and exponent of `decimal` (NaN is not asked for).
  static func parts(_ decimal: Decimal) -> (negative: Bool, significand: UInt128, exponent: Int) {
    if let small = SmallDecimal(decimal) {
      return (small.negative, UInt128(small.significand), small.exponent)
    }
    let negative = decimal.sign == .minus
    let exponent = decimal.exponent
    // Foundation keeps the significand as eight little-endian 16-bit words after a 4-byte header on
    // every platform; reading them avoids `description` (about 1 µs). The result is checked, and a
    // layout that ever differs falls back to the slow, public way.
    let significand = withUnsafeBytes(of: decimal) { raw -> UInt128 in
      var value: UInt128 = 0
      guard raw.count >= 20 else { return 0 }
      for word in (0..<8).reversed() {
        value = value << 16 | UInt128(raw.loadUnaligned(fromByteOffset: 4 + 2 * word, as: UInt16.self))
      }
      return value
    }
    if Decimal(sign: negative ? .minus : .plus, exponent: exponent, significand: self.decimal(significand))
      == decimal
    {
      return (negative, significand, exponent)
    }
    var slow: UInt128 = 0
    for byte in decimal.significand.description.utf8 where (0x30...0x39).contains(byte) {
      slow = slow &* 10 &+ UInt128(byte - 0x30)
    }
    return (negative, slow, exponent)
  }

  /// Appends the decimal digits of `value`.
  static func appendDigits<Output: ByteOutput & ~Copyable>(_ value: UInt128, into buffer: inout Output) {
    if value <= UInt128(UInt64.max) {
      appendDigits(UInt64(value), into: &buffer)
      return
    }
    let high = value / 10_000_000_000_000_000_000
    appendDigits(high, into: &buffer)
    var low = UInt64(value % 10_000_000_000_000_000_000)
    let start = buffer.count
    for _ in 0..<19 { buffer.append(0) }
    var index = buffer.count - 1
    while index >= start {
      buffer.set(UInt8(truncatingIfNeeded: low % 10) + 0x30, at: index)
      low /= 10
      index -= 1
    }
  }

  /// Appends the decimal digits of `value`.
  static func appendDigits<Output: ByteOutput & ~Copyable>(_ value: UInt64, into buffer: inout Output) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { scratch in
      var value = value
      var index = 20
      repeat {
        index -= 1
        scratch[index] = UInt8(truncatingIfNeeded: value % 10) + 0x30
        value /= 10
      } while value != 0
      buffer.append(bytes: UnsafeBufferPointer(rebasing: scratch[index..<20]))
    }
  }

  /// Appends an Int in decimal digits.
  static func appendInt<Output: ByteOutput & ~Copyable>(_ value: Int, into buffer: inout Output) {
    if value < 0 { buffer.append(0x2D) }
    appendDigits(UInt64(value.magnitude), into: &buffer)
  }

  /// Appends a Decimal with the rule of ``JSONWriter/numberText(_:)``.
  static func appendDecimal<Output: ByteOutput & ~Copyable>(_ decimal: Decimal, into buffer: inout Output) {
    if decimal.isNaN {
      buffer.append(ascii: "NaN")
      return
    }
    var (negative, significand, exponent) = parts(decimal)
    if significand == 0 {
      buffer.append(ascii: "0.0")
      return
    }
    while significand % 10 == 0 {
      significand /= 10
      exponent += 1
    }
    if negative { buffer.append(0x2D) }
    let start = buffer.count
    appendDigits(significand, into: &buffer)
    let count = buffer.count - start
    let adjusted = count - 1 + exponent
    if !plainRange.contains(adjusted) {
      if count > 1 { buffer.insert(0x2E, at: start + 1) }
      buffer.append(0x45)
      appendInt(adjusted, into: &buffer)
    } else if exponent >= 0 {
      for _ in 0..<exponent { buffer.append(0x30) }
      if wholeInt(negative: negative, significand: significand, exponent: exponent) != nil {
        buffer.append(ascii: ".0")
      }
    } else if adjusted >= 0 {
      buffer.insert(0x2E, at: start + adjusted + 1)
    } else {
      // "0." and the zeros after the point, inserted back to front before the digits.
      for _ in 0..<(-adjusted - 1) { buffer.insert(0x30, at: start) }
      buffer.insert(0x2E, at: start)
      buffer.insert(0x30, at: start)
    }
  }
}
