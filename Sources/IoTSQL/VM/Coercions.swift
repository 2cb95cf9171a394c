import Foundation

/// The implicit conversions of the AWS tables (used by operators and function arguments) and the
/// explicit `cast()` table. They differ: see Grammar/README.md.
public enum Coercions {
  /// Implicit conversion to a number: Int stays Int, Decimal stays Decimal, a numeric string (the
  /// strict pattern) becomes Decimal (or Int when whole and V2), Null stays Null, the rest Undefined.
  public static func toNumber(_ value: Value, version: SQLVersion) -> Value {
    switch value {
    case .int, .decimal, .null: return value
    case .string(let text):
      guard let decimal = parseDecimal(text) else { return .undefined }
      return normalized(.decimal(decimal), version: version)
    default: return .undefined
    }
  }

  /// Implicit conversion to String; `nil` when there is none (Null, Undefined, Binary).
  public static func toText(_ value: Value) -> String? {
    switch value {
    case .string(let text): return text
    case .int(let int): return String(int)
    case .decimal(let decimal): return numberText(decimal)
    case .bool(let bool): return bool ? "true" : "false"
    case .array, .object: return jsonText(value)
    case .null, .undefined, .binary: return nil
    }
  }

  /// Implicit conversion to Boolean; `nil` when there is none.
  public static func toBool(_ value: Value) -> Bool? {
    switch value {
    case .bool(let bool): return bool
    case .string(let text): return booleanText(text)
    default: return nil
    }
  }

  /// Under 2016-03-23 a whole-number Decimal becomes an Int; otherwise the value is returned unchanged.
  public static func normalized(_ value: Value, version: SQLVersion) -> Value {
    guard version >= .v2016_03_23, case .decimal(let decimal) = value,
      let int = DecimalMath.exactInt(decimal)
    else { return value }
    return .int(int)
  }

  /// `cast(value AS type)`.
  public static func cast(_ value: Value, to type: CastType, version: SQLVersion) -> Value {
    switch type {
    case .string:
      return toText(value).map(Value.string) ?? .undefined
    case .int:
      switch value {
      case .int: return value
      case .decimal(let decimal): return DecimalMath.integerValue(DecimalMath.rounded(decimal, .down))
      case .bool(let bool): return .int(bool ? 1 : 0)
      case .string(let text):
        guard let decimal = parseDecimal(text) else { return .undefined }
        return DecimalMath.integerValue(DecimalMath.rounded(decimal, .down))
      default: return .undefined
      }
    case .decimal:
      switch value {
      case .int(let int): return normalized(.decimal(SQLDecimal(int)), version: version)
      case .decimal: return normalized(value, version: version)
      case .bool(let bool): return normalized(.decimal(SQLDecimal(bool ? 1 : 0)), version: version)
      case .string(let text):
        guard let decimal = parseDecimal(text) else { return .undefined }
        return normalized(.decimal(decimal), version: version)
      default: return .undefined
      }
    case .double:
      let double: Double
      switch value {
      case .int(let int): double = Double(int)
      case .decimal(let decimal): double = DecimalMath.toDouble(decimal)
      case .bool(let bool): double = bool ? 1 : 0
      case .string:
        guard let parsed = toDouble(value) else { return .undefined }
        double = parsed
      default: return .undefined
      }
      return doubleResult(double, version: version)
    case .bool:
      switch value {
      case .int(let int): return .bool(int != 0)
      case .decimal(let decimal): return .bool(!decimal.isZero)
      case .bool: return value
      case .string(let text): return booleanText(text).map(Value.bool) ?? .undefined
      default: return .undefined
      }
    }
  }

  // MARK: - Numbers as text

  /// The text of a number as this engine writes it: Int in digits; Decimal in plain notation when
  /// its magnitude is between 1E-6 and 1E21 (a whole Decimal gets `.0`, as 2015-10-08 shows `10.0`),
  /// otherwise scientific (`5E-12`, `1E+40`); a whole Decimal of 19 to 34 digits (an Int beyond 64
  /// bits, for AWS) in digits only. Empty for non-numbers.
  public static func numberText(_ value: Value) -> String {
    switch value {
    case .int(let int): return String(int)
    case .decimal(let decimal): return numberText(decimal)
    default: return ""
    }
  }

  /// The text of a decimal; see `numberText(_:)`.
  public static func numberText(_ decimal: SQLDecimal) -> String {
    if decimal.isZero { return "0.0" }
    let negative = decimal.isNegative
    var digits = Array(decimal.significand.description.utf8)  // no sign, no point: an integer
    var exponent = decimal.exponent
    while digits.count > 1, digits.last == UInt8(ascii: "0") {
      digits.removeLast()
      exponent += 1
    }
    let adjusted = exponent + digits.count - 1  // the power of ten of the leading digit
    var text = negative ? "-" : ""
    if exponent >= 0 && adjusted >= 18 && adjusted < JSONNumber.maximumDigits
      && DecimalMath.exactInt(decimal) == nil
    {
      // A whole number beyond 64 bits is one of AWS's Ints (up to 34 digits), written "in standard
      // notation": digits only (`12345678901234567890`, not `...890.0` or `1.2E+19`).
      text += String(decoding: digits, as: UTF8.self) + String(repeating: "0", count: exponent)
    } else if adjusted >= -6 && adjusted < 21 {
      if exponent >= 0 {
        text += String(decoding: digits, as: UTF8.self) + String(repeating: "0", count: exponent) + ".0"
      } else if adjusted >= 0 {
        let split = digits.count + exponent
        text +=
          String(decoding: digits[..<split], as: UTF8.self) + "."
          + String(decoding: digits[split...], as: UTF8.self)
      } else {
        text += "0." + String(repeating: "0", count: -adjusted - 1) + String(decoding: digits, as: UTF8.self)
      }
    } else {
      text += String(decoding: digits[..<1], as: UTF8.self)
      if digits.count > 1 { text += "." + String(decoding: digits[1...], as: UTF8.self) }
      text += adjusted < 0 ? "E\(adjusted)" : "E+\(adjusted)"
    }
    return text
  }

  // MARK: - Numeric strings

  /// True when `text` matches `^-?\d+(\.\d+)?((?i)E-?\d+)?$` (ASCII digits only).
  public static func isNumeric(_ text: String) -> Bool {
    let utf8 = text.utf8
    return utf8.withContiguousStorageIfAvailable { matchesNumericPattern($0) }
      ?? matchesNumericPattern(Array(utf8))
  }

  static func matchesNumericPattern<C: RandomAccessCollection>(_ bytes: C) -> Bool
  where C.Element == UInt8, C.Index == Int {
    var index = bytes.startIndex
    let end = bytes.endIndex
    func digits() -> Bool {
      let start = index
      while index < end, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
      return index > start
    }
    if index < end, bytes[index] == 0x2D { index += 1 }  // -
    guard digits() else { return false }
    if index < end, bytes[index] == 0x2E {  // .
      index += 1
      guard digits() else { return false }
    }
    if index < end, bytes[index] == 0x45 || bytes[index] == 0x65 {  // E e
      index += 1
      if index < end, bytes[index] == 0x2D { index += 1 }
      guard digits() else { return false }
    }
    return index == end
  }

  /// A numeric string as a Decimal rounded to 34 digits (beyond the range, the nearest value held);
  /// nil when it does not match the pattern.
  public static func parseDecimal(_ text: String) -> SQLDecimal? {
    // Beyond the range, the nearest value held, as a payload's number (`sign('1E2000')` is 1,
    // `ceil('1E-2000')` is 1).
    guard isNumeric(text) else { return nil }
    return JSONNumber.decimal(parsing: text)?.value
  }

  /// "true" / "false" in any case.
  static func booleanText(_ text: String) -> Bool? {
    let utf8 = text.utf8
    if utf8.count == 4, text.lowercased() == "true" { return true }
    if utf8.count == 5, text.lowercased() == "false" { return false }
    return nil
  }

  // MARK: - Argument conversions shared by the functions

  /// The double nearest to `decimal` (what a SQLite REAL column stores).
  public static func nearestDouble(_ decimal: SQLDecimal) -> Double {
    DecimalMath.toDouble(decimal)
  }

  /// A Double from Int, Decimal or a numeric string (the double-precision functions); nil otherwise.
  static func toDouble(_ value: Value) -> Double? {
    switch value {
    case .int(let int): return Double(int)
    case .decimal(let decimal): return DecimalMath.toDouble(decimal)
    // Through the 34-digit Decimal, as the data-types page converts a string argument: `"-0"` is 0
    // (a Decimal has no negative zero) and 35 digits or more are rounded there first.
    case .string(let text): return parseDecimal(text).map(DecimalMath.toDouble)
    default: return nil
    }
  }

  /// The result of a double-precision function: a Decimal from the double's shortest text
  /// (whole-number rule applied), Undefined for NaN, infinities and out-of-range magnitudes.
  static func doubleResult(_ double: Double, version: SQLVersion) -> Value {
    guard let decimal = DecimalMath.fromDouble(double) else { return .undefined }
    return normalized(.decimal(decimal), version: version)
  }

  /// A Decimal from Int, Decimal or a numeric string; nil otherwise (Null included).
  static func toDecimal(_ value: Value) -> SQLDecimal? {
    switch value {
    case .int(let int): return SQLDecimal(int)
    case .decimal(let decimal): return decimal
    case .string(let text): return parseDecimal(text)
    default: return nil
    }
  }

  /// The implicit conversion to Int of the data-types table: Decimal rounded to nearest (half away
  /// from zero), a numeric string parsed then truncated; saturated to Int's range; nil otherwise.
  static func toImplicitInt(_ value: Value) -> Int? {
    switch value {
    case .int(let int): return int
    case .decimal(let decimal): return DecimalMath.saturatingInt(decimal, .plain)
    case .string(let text):
      guard let decimal = parseDecimal(text) else { return nil }
      return DecimalMath.saturatingInt(decimal, decimal.isNegative ? .up : .down)
    default: return nil
    }
  }

  /// "Rounded down to the nearest Int" of the function tables: Int itself, Decimal and numeric
  /// strings floored, saturated to Int's range; nil otherwise.
  static func toFlooredInt(_ value: Value) -> Int? {
    switch value {
    case .int(let int): return int
    case .decimal(let decimal): return DecimalMath.saturatingInt(decimal, .down)
    case .string(let text):
      guard let decimal = parseDecimal(text) else { return nil }
      return DecimalMath.saturatingInt(decimal, .down)
    default: return nil
    }
  }

  // MARK: - Compact JSON text

  /// `value` as compact JSON (the String conversion of arrays and objects). Undefined members and
  /// elements are skipped; Binary is written as a base64 string; numbers as the payload writer
  /// spells them (the data types page: an object is "serialized to JSON", so `cast(obj AS String)`
  /// and `${obj}` hold what `SELECT obj` publishes: `1E+40` and `1.5E-10` were written there).
  static func jsonText(_ value: Value) -> String {
    var buffer: [UInt8] = []
    writeJSON(value, into: &buffer)
    return String(decoding: buffer, as: UTF8.self)
  }

  static func writeJSON(_ value: Value, into buffer: inout [UInt8]) {
    switch value {
    case .undefined: return
    case .null: buffer.append(contentsOf: "null".utf8)
    case .bool(let bool): buffer.append(contentsOf: (bool ? "true" : "false").utf8)
    case .int(let int): buffer.append(contentsOf: String(int).utf8)
    case .decimal(let decimal): JSONNumber.appendDecimal(decimal, into: &buffer)
    case .string(let text): writeJSONString(text, into: &buffer)
    case .binary(let bytes): writeJSONString(Base64.encode(bytes), into: &buffer)
    case .array(let elements):
      buffer.append(UInt8(ascii: "["))
      var first = true
      for element in elements where !element.isUndefined {
        if !first { buffer.append(UInt8(ascii: ",")) }
        first = false
        writeJSON(element, into: &buffer)
      }
      buffer.append(UInt8(ascii: "]"))
    case .object(let object):
      buffer.append(UInt8(ascii: "{"))
      var first = true
      for (key, member) in object.members where !member.isUndefined {
        if !first { buffer.append(UInt8(ascii: ",")) }
        first = false
        writeJSONString(key, into: &buffer)
        buffer.append(UInt8(ascii: ":"))
        writeJSON(member, into: &buffer)
      }
      buffer.append(UInt8(ascii: "}"))
    }
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  static func writeJSONString(_ text: String, into buffer: inout [UInt8]) {
    buffer.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): buffer.append(contentsOf: [0x5C, 0x22])
      case UInt8(ascii: "\\"): buffer.append(contentsOf: [0x5C, 0x5C])
      case 0x0A: buffer.append(contentsOf: [0x5C, UInt8(ascii: "n")])
      case 0x0D: buffer.append(contentsOf: [0x5C, UInt8(ascii: "r")])
      case 0x09: buffer.append(contentsOf: [0x5C, UInt8(ascii: "t")])
      case 0x08: buffer.append(contentsOf: [0x5C, UInt8(ascii: "b")])
      case 0x0C: buffer.append(contentsOf: [0x5C, UInt8(ascii: "f")])
      case 0..<0x20:
        buffer.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
        buffer.append(hexDigits[Int(byte >> 4)])
        buffer.append(hexDigits[Int(byte & 0xF)])
      default: buffer.append(byte)
      }
    }
    buffer.append(UInt8(ascii: "\""))
  }
}

/// The target types of `cast()`.
public enum CastType: String, Sendable, CaseIterable {
  /// `String`, `Nvarchar`, `Text`, `Ntext`, `varchar`.
  case string
  /// `Int`, `Integer`.
  case int
  /// `Decimal` (2016-03-23).
  case decimal
  /// `Double`: a Decimal of double precision.
  case double
  /// `Bool`, `Boolean` (2016-03-23).
  case bool

  /// The type named `name` (any case) in `version`, or nil.
  public init?(name: String, version: SQLVersion) {
    switch name.lowercased() {
    case "string", "nvarchar", "text", "ntext", "varchar": self = .string
    case "int", "integer": self = .int
    case "double": self = .double
    case "decimal" where version >= .v2016_03_23: self = .decimal
    case "bool" where version >= .v2016_03_23, "boolean" where version >= .v2016_03_23: self = .bool
    default: return nil
    }
  }
}
