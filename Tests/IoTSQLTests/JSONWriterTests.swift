import Foundation
import Testing

@testable import IoTSQL

@Suite struct JSONWriterTests {
  private func decimal(_ text: String) -> Value { .decimal(SQLDecimal(string: text)!) }

  @Test func writesCompactObjectsSkippingUndefined() {
    let value = Value.object(
      OrderedObject([
        ("a", .int(1)), ("gone", .undefined), ("b", .array([.bool(true), .undefined, .null])),
        ("c", .object(OrderedObject())), ("d", .array([])),
      ]))
    #expect(JSONWriter.string(value) == #"{"a":1,"b":[true,null],"c":{},"d":[]}"#)
    #expect(JSONWriter.string(.undefined) == "")
    #expect(JSONWriter.string(.array([.undefined])) == "[]")
    #expect(JSONWriter.string(.object(OrderedObject([("x", .undefined)]))) == "{}")
    var buffer: [UInt8] = [0x41]
    JSONWriter.write(.undefined, into: &buffer)
    JSONWriter.write(.bool(false), into: &buffer)
    #expect(buffer == Array("Afalse".utf8))
  }

  @Test(
    arguments: [
      ([], #""""#), ([0x66], #""Zg==""#), ([0x66, 0x6F], #""Zm8=""#), ([0x66, 0x6F, 0x6F], #""Zm9v""#),
      ([0x00, 0xFF, 0xFE, 0x7F], #""AP/+fw==""#),
    ] as [([UInt8], String)])
  func writesBinaryAsBase64(bytes: [UInt8], text: String) {
    #expect(JSONWriter.string(.binary(bytes)) == text)
    #expect(JSONWriter.string(.binary(bytes)) == "\"" + Data(bytes).base64EncodedString() + "\"")
  }

  /// The digits are written two at a time: every length, each side of each power of ten, both ends
  /// of Int and of 64-bit magnitudes agree with Swift's own spelling.
  @Test func writesEveryIntegerLengthAsSwiftSpellsIt() {
    var numbers: [Int] = [0, 1, 9, Int.max, Int.min, Int.min + 1]
    var power = 1
    for _ in 0..<18 {
      power *= 10
      numbers += [power - 1, power, power + 1, -power, -(power - 1)]
    }
    for number in numbers {
      #expect(JSONWriter.string(.int(number)) == String(number))
    }
    for magnitude in [UInt64.max, UInt64.max - 1, 10_000_000_000_000_000_000, 9_999_999_999_999_999_999] {
      var buffer: [UInt8] = []
      JSONNumber.appendDigits(magnitude, into: &buffer)
      #expect(String(decoding: buffer, as: UTF8.self) == String(magnitude))
    }
  }

  @Test func escapesStringsLikeAWS() {
    let text = "q\"b\\n\nt\tr\rb\u{8}f\u{c}c\u{1}\u{1f} / é 日本 🎉 \u{7f}"
    #expect(
      JSONWriter.string(.string(text)) == #""q\"b\\n\nt\tr\rb\bf\fc\u0001\u001f / é 日本 🎉 "# + "\u{7f}\"")
    #expect(JSONWriter.string(.object(OrderedObject([("k\"\n", .string(""))]))) == #"{"k\"\n":""}"#)
  }

  @Test(
    arguments: [
      (Value.int(0), "0"), (.int(-5), "-5"), (.int(Int.max), "9223372036854775807"),
      (.int(Int.min), "-9223372036854775808"),
      (dec("0.3"), "0.3"),
      (.decimal(DecimalMath.add(SQLDecimal(string: "0.1")!, SQLDecimal(string: "0.2")!)!), "0.3"),
      (.decimal(SQLDecimal.exact(negative: false, significand: 2250, exponent: -2)!), "22.5"),
      (dec("-1.25"), "-1.25"),
      (.decimal(SQLDecimal(10)), "10.0"),
      (.decimal(.zero), "0.0"),
      (.decimal(DecimalMath.multiply(SQLDecimal(string: "1.5")!, 2)!), "3.0"),
      (dec("-9223372036854775808"), "-9223372036854775808.0"),
      (dec("9223372036854775808"), "9223372036854775808"),
      (dec("123456789012345678901234"), "123456789012345678901234"),
      (dec("1E33"), "1000000000000000000000000000000000"),
      (dec("1E34"), "1E34"),
      (dec("1.5E40"), "1.5E40"),
      (dec("0.000001"), "0.000001"),
      (dec("5E-12"), "0.000000000005"),
      (dec("1E-20"), "0.00000000000000000001"),
      (dec("5E-21"), "5E-21"),
      (dec("-1.234E-30"), "-1.234E-30"),
      (dec("12345678901234567890.123456789"), "12345678901234567890.123456789"),
      (.decimal(DecimalMath.divide(1, 3)!), "0.3333333333333333333333333333333333"),
      (.decimal(.greatestMagnitude), "9.999999999999999999999999999999999E999"),
      (.decimal(-.greatestMagnitude), "-9.999999999999999999999999999999999E999"),
      (.decimal(.leastMagnitude), "1E-999"),
      (.string("1"), #""1""#),
    ] as [(Value, String)])
  func spellsNumbers(value: Value, text: String) {
    #expect(JSONWriter.numberText(value) == text)
    #expect(JSONWriter.string(value) == text)
  }

  @Test func numberTextReadsBackAsTheSameValue() throws {
    var generator = SeededGenerator(state: 7)
    for _ in 0..<500 {
      let significand =
        UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator)
      let exponent = Int.random(in: -900...900, using: &generator)
      let number = SQLDecimal.exact(
        negative: Bool.random(using: &generator), significand: UInt128(significand), exponent: exponent)!
      let text = JSONWriter.numberText(.decimal(number))
      let back = try JSONReader.parse(text, options: JSONReadOptions(wholeDecimalsAsInt: false))
      #expect(back == .decimal(number), "\(text)")
      #expect(JSONWriter.numberText(back) == text)
    }
  }

  @Test func writesIndentedText() {
    let value = Value.object(
      OrderedObject([
        ("a", .int(1)), ("b", .array([.bool(true), .object(OrderedObject()), .undefined])),
        ("c", .object(OrderedObject([("d", .array([])), ("e", .string("x"))]))),
      ]))
    let expected = """
      {
        "a": 1,
        "b": [
          true,
          {}
        ],
        "c": {
          "d": [],
          "e": "x"
        }
      }
      """
    #expect(JSONWriter.prettyString(value) == expected)
    #expect(JSONWriter.prettyString(.int(3)) == "3")
    #expect(JSONWriter.prettyString(.undefined) == "")
  }

  @Test func writeThenReadRoundTrips() throws {
    let value = Value.object(
      OrderedObject([
        ("device", .string("d-17")), ("t", decimal("22.5")), ("ok", .bool(true)),
        ("tags", .array([.string("a\"b"), .null, .int(-3)])),
        ("nested", .object(OrderedObject([("x", decimal("0.001"))]))),
      ]))
    var buffer: [UInt8] = []
    JSONWriter.write(value, into: &buffer)
    #expect(try JSONReader.parse(buffer) == value)
    let view = JSONReader.read(buffer, paths: PathTable(), wholeDocument: true, options: .init())
    #expect(view.isCanonical)
  }

  /// U+2028, U+2029 and U+0085 are escaped wherever they are; the characters that share their lead
  /// bytes (`°`, `€`, `’`), and a lead byte at the very end, are left as they are, and a line
  /// without any comes back as it was.
  @Test func lineSeparatorsAreEscapedAndNothingElse() {
    func escaped(_ text: String) -> String {
      String(decoding: JSONWriter.escapingLineSeparators(Array(text.utf8)), as: UTF8.self)
    }
    #expect(escaped(#"{"t":"21°C, 5€, it’s"}"#) == #"{"t":"21°C, 5€, it’s"}"#)
    #expect(escaped("\u{2028}a\u{2029}b\u{85}") == #"\u2028a\u2029b\u0085"#)
    #expect(escaped("°\u{85}€\u{2028}’") == #"°\u0085€\u2028’"#)
    #expect(escaped("x\u{2029}") == #"x\u2029"#)
    #expect(JSONWriter.escapingLineSeparators([0x61, 0xE2]) == [0x61, 0xE2])
    #expect(JSONWriter.escapingLineSeparators([0x61, 0xE2, 0x80]) == [0x61, 0xE2, 0x80])
    #expect(JSONWriter.escapingLineSeparators([0xC2]) == [0xC2])
    #expect(JSONWriter.escapingLineSeparators([]) == [])
  }
}
