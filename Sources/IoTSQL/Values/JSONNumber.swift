import Foundation

/// Numbers between JSON text and `Value`: building a ``SQLDecimal`` from digits, and spelling one out.
enum JSONNumber {
  /// AWS's decimals carry 34 significant digits; longer literals are rounded (half to even) to 34.
  static let maximumDigits = SQLDecimal.maximumDigits
  /// Plain notation for adjusted exponents in this range (up to 34 integer digits, as AWS's integers,
  /// and up to 20 zeros after the point), scientific (`5E-21`) outside it.
  static let plainRange = -20...33

  // MARK: Building values

  /// The value of `significand × 10^exponent` with the engine's number rules: an Int when
  /// `allowInt` and the value is whole and fits in 64 bits, else a Decimal. `significand` has at
  /// most 34 digits. Returns nil when the number is beyond the Decimal range.
  static func value(negative: Bool, significand: UInt128, exponent: Int, allowInt: Bool) -> Value? {
    if significand == 0 { return allowInt ? .int(0) : .decimal(.zero) }
    if allowInt, exponent >= 0,
      let whole = wholeInt(negative: negative, significand: significand, exponent: exponent)
    {
      return .int(whole)
    }
    return SQLDecimal.exact(negative: negative, significand: significand, exponent: exponent).map(
      Value.decimal)
  }

  /// The decimal a number's text stands for (JSON's number syntax, with leading zeros allowed:
  /// `007`, `-00.5`), through the JSON reader: rounded to 34 digits; beyond the range the nearest
  /// value held, and `saturated` is then true. Nil for other text.
  static func decimal(parsing text: String) -> (value: SQLDecimal, saturated: Bool)? {
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
    case .int(let int)?: return (SQLDecimal(int), false)
    case .decimal(let decimal)?: return (decimal, read.1)
    default: return nil
    }
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

  /// The two digits of 00 to 99, one pair after the other.
  private static let digitPairs: StaticString =
    """
    0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
    5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899
    """

  /// Appends the decimal digits of `value`, two at a time (a 13-digit timestamp in 7 steps, not 13).
  static func appendDigits<Output: ByteOutput & ~Copyable>(_ value: UInt64, into buffer: inout Output) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { scratch in
      let pairs = digitPairs.utf8Start
      var value = value
      var index = 20
      while value >= 100 {
        let pair = Int(truncatingIfNeeded: value % 100) &* 2
        value /= 100
        index -= 2
        scratch[index] = pairs[pair]
        scratch[index + 1] = pairs[pair + 1]
      }
      if value >= 10 {
        let pair = Int(truncatingIfNeeded: value) &* 2
        index -= 2
        scratch[index] = pairs[pair]
        scratch[index + 1] = pairs[pair + 1]
      } else {
        index -= 1
        scratch[index] = UInt8(truncatingIfNeeded: value) &+ 0x30
      }
      buffer.append(bytes: UnsafeBufferPointer(rebasing: scratch[index..<20]))
    }
  }

  /// Appends an Int in decimal digits.
  static func appendInt<Output: ByteOutput & ~Copyable>(_ value: Int, into buffer: inout Output) {
    if value < 0 { buffer.append(0x2D) }
    appendDigits(UInt64(value.magnitude), into: &buffer)
  }

  /// Appends a Decimal with the rule of ``JSONWriter/numberText(_:)``.
  static func appendDecimal<Output: ByteOutput & ~Copyable>(_ decimal: SQLDecimal, into buffer: inout Output)
  {
    if decimal.isZero {
      buffer.append(ascii: "0.0")
      return
    }
    let negative = decimal.isNegative
    let significand = decimal.significand
    let exponent = decimal.exponent
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
