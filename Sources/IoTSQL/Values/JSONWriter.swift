import Foundation

/// The writer: compact output as AWS writes it, or indented for people.
///
/// Compact output has no whitespace: `{"a":1,"b":[true,null]}`. Undefined members and array elements
/// are skipped and a bare Undefined writes nothing. Binary is written as a base64 string. Strings
/// escape `"`, `\` and the control characters (`\b \t \n \f \r` by name, the others as lowercase
/// `\u00xx`); everything else, `/` and non-ASCII included, is written as is, in UTF-8. Numbers are
/// spelled by ``numberText(_:)``; a Decimal NaN (which no JSON text can hold) is written as `null`.
public enum JSONWriter {
  /// Appends `value` as compact JSON. Undefined members and elements are skipped; a bare Undefined
  /// writes nothing; Binary is written as a base64 string.
  public static func write(_ value: Value, into buffer: inout [UInt8]) {
    switch value {
    case .undefined: return
    case .binary(let bytes):
      buffer.reserveCapacity(buffer.count + (bytes.count + 2) / 3 * 4 + 2)
      writeBase64(bytes, into: &buffer)
    case .string, .array, .object:
      // Through the sink, whose appends are cheaper than the array's; one copy at the end.
      ByteSink.withScratch { sink in
        writeCompact(value, into: &sink)
        sink.withBytes { buffer.append(contentsOf: $0) }
      }
    default: writeCompact(value, into: &buffer)
    }
  }

  /// `json` with U+2028, U+2029 and U+0085 written `\u2028`, `\u2029`, `\u0085`: the same JSON,
  /// but one line to a reader that splits on every Unicode line break (Python's `splitlines`,
  /// JavaScript's line terminators), where a raw one split a JSON line in two. Outside strings
  /// JSON has no such character, and their UTF-8 bytes (E2 80 A8/A9, C2 85) are never part of
  /// another character. `json` itself, not copied, when it holds none (`memchr` finds each lead
  /// byte: `°`, `€` and `’` share them, and a line holding one is not copied for it).
  public static func escapingLineSeparators(_ json: [UInt8]) -> [UInt8] {
    /// The length of the separator at `index` (3 or 2), or 0.
    func separator(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
      if bytes[index] == 0xE2, index + 2 < bytes.count, bytes[index + 1] == 0x80,
        bytes[index + 2] & 0xFE == 0xA8
      {
        return 3
      }
      if bytes[index] == 0xC2, index + 1 < bytes.count, bytes[index + 1] == 0x85 { return 2 }
      return 0
    }
    return json.withUnsafeBufferPointer { bytes -> [UInt8] in
      guard let base = bytes.baseAddress else { return json }
      /// The first occurrence of `lead` before `end` that starts a separator.
      func first(_ lead: Int32, before end: Int) -> Int? {
        var from = 0
        while from < end, let hit = memchr(base + from, lead, end - from) {
          let offset = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
          if separator(at: offset, in: bytes) > 0 { return offset }
          from = offset + 1
        }
        return nil
      }
      let wide = first(0xE2, before: bytes.count)
      guard let first = first(0xC2, before: wide ?? bytes.count) ?? wide else { return json }
      // Rare: copied from there, byte by byte.
      var escaped = Array(bytes[..<first])
      escaped.reserveCapacity(json.count + 16)
      var index = first
      while index < bytes.count {
        let length = separator(at: index, in: bytes)
        if length == 0 {
          escaped.append(bytes[index])
          index += 1
          continue
        }
        let code: StaticString = length == 2 ? "\\u0085" : (bytes[index + 2] == 0xA8 ? "\\u2028" : "\\u2029")
        code.withUTF8Buffer { escaped.append(contentsOf: $0) }
        index += length
      }
      return escaped
    }
  }

  /// `value` as compact JSON in a new array of exactly its size (empty for Undefined).
  static func bytes(_ value: Value) -> [UInt8] {
    ByteSink.withScratch { sink in
      writeCompact(value, into: &sink)
      return sink.array()
    }
  }

  /// The compact writer, over any byte output.
  static func writeCompact<Output: ByteOutput & ~Copyable>(_ value: Value, into buffer: inout Output) {
    switch value {
    case .undefined: return
    case .null: buffer.append(ascii: "null")
    case .bool(let flag): buffer.append(ascii: flag ? "true" : "false")
    case .int(let number): JSONNumber.appendInt(number, into: &buffer)
    case .decimal(let number): JSONNumber.appendDecimal(number, into: &buffer)
    case .string(let text): writeString(text, into: &buffer)
    case .binary(let bytes): writeBase64(bytes, into: &buffer)
    case .array(let elements):
      buffer.append(0x5B)
      var first = true
      for element in elements where !element.isUndefined {
        if !first { buffer.append(0x2C) }
        first = false
        writeCompact(element, into: &buffer)
      }
      buffer.append(0x5D)
    case .object(let object):
      buffer.append(0x7B)
      var first = true
      for index in 0..<object.count {
        let member = object.values[index]
        if member.isUndefined { continue }
        if !first { buffer.append(0x2C) }
        first = false
        writeString(object.keys[index], into: &buffer)
        buffer.append(0x3A)
        writeCompact(member, into: &buffer)
      }
      buffer.append(0x7D)
    }
  }

  /// `value` as compact JSON text.
  public static func string(_ value: Value) -> String {
    var buffer: [UInt8] = []
    buffer.reserveCapacity(64)
    write(value, into: &buffer)
    return String(decoding: buffer, as: UTF8.self)
  }

  /// `value` as indented JSON text (two spaces), for terminals: one member or element a line,
  /// `"key": value`, empty arrays and objects as `[]` and `{}`.
  public static func prettyString(_ value: Value) -> String {
    var buffer: [UInt8] = []
    writePretty(value, indent: 0, into: &buffer)
    return String(decoding: buffer, as: UTF8.self)
  }

  /// The text of a number as this engine writes it in JSON. String conversions (`'x' + 1.5` is
  /// `"x1.5"`, `cast(1E40 AS String)` is `"1E+40"`) use `Coercions.numberText`, which
  /// differs beyond the plain range (see Grammar/README.md, "Number text").
  ///
  /// - An Int is its decimal digits, with `-` when negative.
  /// - A Decimal is its value with trailing zeros removed (Decimal `22.50` is `22.5`, `0.30` is `0.3`),
  ///   in plain notation while its adjusted exponent (the power of ten of its first digit) is within
  ///   -20...33, that is up to 34 integer digits and up to 20 zeros after the point: `0.000001`,
  ///   `123.45`, `0.000000000005`. A whole Decimal that fits in 64 bits keeps one fractional zero
  ///   (`10.0`), so it reads back as a Decimal and stays visibly one, as AWS writes 2015-10-08
  ///   decimals; larger whole Decimals are plain digits (`123456789012345678901234`), as AWS writes
  ///   its 34-digit integers. Zero is `0.0`.
  /// - Beyond that range, scientific notation: first digit, `.` and the other digits when there are
  ///   any, `E`, and the exponent with `-` but never `+` (`5E-21`, `1.5E25`), which AWS's
  ///   numeric-string pattern accepts.
  /// - A Decimal NaN is `NaN`. Other values give their compact JSON text.
  public static func numberText(_ value: Value) -> String {
    var buffer: [UInt8] = []
    switch value {
    case .int(let number): JSONNumber.appendInt(number, into: &buffer)
    case .decimal(let number): JSONNumber.appendDecimal(number, into: &buffer)
    default: write(value, into: &buffer)
    }
    return String(decoding: buffer, as: UTF8.self)
  }

  // MARK: Pieces

  private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

  static func writeString<Output: ByteOutput & ~Copyable>(_ text: String, into buffer: inout Output) {
    buffer.append(0x22)
    // `withUTF8` reads a native string in place and a small one (most keys and short values) from a
    // copy on the stack; `utf8.withContiguousStorageIfAvailable` fails for small strings.
    var text = text
    text.withUTF8 { writeEscaped($0, into: &buffer) }
    buffer.append(0x22)
  }

  private static func writeEscaped<Output: ByteOutput & ~Copyable>(
    _ utf8: UnsafeBufferPointer<UInt8>, into buffer: inout Output
  ) {
    do {
      guard let base = utf8.baseAddress else { return }
      let count = utf8.count
      var runStart = 0
      var index = 0
      while true {
        index = JSONScanner.plainASCIIEnd(base, from: index, count: count, stopsAtNonASCII: false)
        guard index < count else { break }
        let byte = utf8[index]
        guard byte < 0x20 || byte == 0x22 || byte == 0x5C else {
          index += 1
          continue
        }
        if runStart < index {
          buffer.append(bytes: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
        }
        runStart = index + 1
        buffer.append(0x5C)
        switch byte {
        case 0x22, 0x5C: buffer.append(byte)
        case 0x08: buffer.append(0x62)
        case 0x09: buffer.append(0x74)
        case 0x0A: buffer.append(0x6E)
        case 0x0C: buffer.append(0x66)
        case 0x0D: buffer.append(0x72)
        default:
          buffer.append(ascii: "u00")
          buffer.append(hexDigits[Int(byte >> 4)])
          buffer.append(hexDigits[Int(byte & 15)])
        }
        index += 1
      }
      if runStart < utf8.count { buffer.append(bytes: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
    }
  }

  private static let base64Alphabet: [UInt8] = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// Appends `bytes` as a quoted base64 string (standard alphabet, with padding).
  static func writeBase64<Output: ByteOutput & ~Copyable>(_ bytes: [UInt8], into buffer: inout Output) {
    buffer.append(0x22)
    var index = 0
    while index + 3 <= bytes.count {
      let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
      buffer.append(base64Alphabet[Int((chunk >> 18) & 63)])
      buffer.append(base64Alphabet[Int((chunk >> 12) & 63)])
      buffer.append(base64Alphabet[Int((chunk >> 6) & 63)])
      buffer.append(base64Alphabet[Int(chunk & 63)])
      index += 3
    }
    let remaining = bytes.count - index
    if remaining > 0 {
      var chunk = UInt32(bytes[index]) << 16
      if remaining == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
      buffer.append(base64Alphabet[Int((chunk >> 18) & 63)])
      buffer.append(base64Alphabet[Int((chunk >> 12) & 63)])
      buffer.append(remaining == 2 ? base64Alphabet[Int((chunk >> 6) & 63)] : 0x3D)
      buffer.append(0x3D)
    }
    buffer.append(0x22)
  }

  private static func writePretty(_ value: Value, indent: Int, into buffer: inout [UInt8]) {
    func newline(_ level: Int) {
      buffer.append(0x0A)
      for _ in 0..<(2 * level) { buffer.append(0x20) }
    }
    switch value {
    case .array(let elements):
      let present = elements.filter { !$0.isUndefined }
      guard !present.isEmpty else {
        buffer.append(contentsOf: "[]".utf8)
        return
      }
      buffer.append(0x5B)
      for (index, element) in present.enumerated() {
        if index > 0 { buffer.append(0x2C) }
        newline(indent + 1)
        writePretty(element, indent: indent + 1, into: &buffer)
      }
      newline(indent)
      buffer.append(0x5D)
    case .object(let object):
      let present = object.members.filter { !$0.1.isUndefined }
      guard !present.isEmpty else {
        buffer.append(contentsOf: "{}".utf8)
        return
      }
      buffer.append(0x7B)
      for (index, (key, member)) in present.enumerated() {
        if index > 0 { buffer.append(0x2C) }
        newline(indent + 1)
        writeString(key, into: &buffer)
        buffer.append(contentsOf: ": ".utf8)
        writePretty(member, indent: indent + 1, into: &buffer)
      }
      newline(indent)
      buffer.append(0x7D)
    default:
      write(value, into: &buffer)
    }
  }
}
