import Foundation
import Testing

@testable import IoTSQL

private let v1 = JSONReadOptions(wholeDecimalsAsInt: false)
private let v2 = JSONReadOptions(wholeDecimalsAsInt: true)

private func decimal(_ text: String) -> Value { .decimal(SQLDecimal(string: text)!) }

private func navigate(_ value: Value, _ path: [String]) -> Value {
  path.reduce(value) { $0.member($1) }
}

// Measured in release mode (a throwaway loop in iotrules-bench, not committed; 2 cores shared with
// other builds, load average about 2, 2026-11-28): read() of the 162-byte `sensorPayload` below with
// the 3 paths temp.c, device, humidity ≈ 0.73 µs; parse() of it (whole document) ≈ 2.2 µs; write()
// of {"device":"d-17","t":22,"ok":true} into a reserved buffer ≈ 0.19 µs, of
// {"device":"d-17","t":22.5,"ok":true} into an empty one ≈ 0.31 µs.
let sensorPayload = #"""
  {"device":"sensor-0042","ts":1732780800123,"temp":{"c":21.5,"f":70.7},"humidity":48,"battery":3.71,"flags":["ok","calibrated"],"loc":{"lat":48.8566,"lon":2.3522}}
  """#

@Suite struct JSONReaderTests {
  @Test(arguments: [
    #"{"a":1,"b":[true,null],"c":"x"}"#,
    #"[]"#, #"{}"#, #"[[],{},[{}]]"#, #""""#, #"0"#, #"-12"#, #"true"#, #"null"#,
    #"{"s":"tab\tquote\"back\\slash/ é 日本 🎉 \u0001"}"#,
    #"[1.5,-0.25,0.000001,5E-21,1.5E40,123456789012345678901234]"#,
    sensorPayload,
  ])
  func roundTripsCanonicalDocuments(text: String) throws {
    let bytes = Array(text.utf8)
    let value = try JSONReader.parse(bytes)
    var out: [UInt8] = []
    JSONWriter.write(value, into: &out)
    #expect(String(decoding: out, as: UTF8.self) == text)
    let view = JSONReader.read(bytes, paths: PathTable(), wholeDocument: true, options: v2)
    #expect(view.isCanonical)
    #expect(view.document == value)
  }

  @Test func keepsKeyOrderAndLastValueOfRepeatedKeys() throws {
    let value = try JSONReader.parse(#"{"z":1,"a":2,"m":{"y":1,"b":2},"z":3}"#)
    guard case .object(let object) = value else {
      Issue.record("not an object")
      return
    }
    #expect(object.keys == ["z", "a", "m"])
    #expect(object["z"] == .int(3))
    #expect(JSONWriter.string(value) == #"{"z":3,"a":2,"m":{"y":1,"b":2}}"#)
  }

  @Test func repeatedKeysInLargeObjects() throws {
    let members = (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
    let value = try JSONReader.parse("{\(members),\"k3\":99,\"k19\":-1}")
    guard case .object(let object) = value else {
      Issue.record("not an object")
      return
    }
    #expect(object.count == 20)
    #expect(object.keys[3] == "k3" && object["k3"] == .int(99) && object["k19"] == .int(-1))
  }

  /// Member names are the same only when their code points are (RFC 8259, 8.3; AWS's Java): `é`
  /// (U+00E9) and `e` + U+0301, one character to Swift's `==`, are two members, whichever way the
  /// object is read (small, past the hashed size, objects of one shape sharing keys, escaped).
  @Test func canonicallyEquivalentNamesAreDistinct() throws {
    let composed = "\u{E9}"
    let decomposed = "e\u{301}"
    func names(_ value: Value) -> [[UInt8]] {
      guard case .object(let object) = value else { return [] }
      return object.keys.map { Array($0.utf8) }
    }
    let small = try JSONReader.parse("{\"\(composed)\":1,\"\(decomposed)\":2}")
    #expect(names(small) == [Array(composed.utf8), Array(decomposed.utf8)])
    #expect(small.member(composed) == .int(1) && small.member(decomposed) == .int(2))
    #expect(JSONWriter.string(small) == "{\"\(composed)\":1,\"\(decomposed)\":2}")
    let escaped = try JSONReader.parse(#"{"\u00e9":1,"e\u0301":2}"#)
    #expect(names(escaped) == names(small))
    let members = (0..<12).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
    let large = try JSONReader.parse("{\(members),\"\(composed)\":1,\"\(decomposed)\":2,\"\(composed)\":3}")
    #expect(large.member(composed) == .int(3) && large.member(decomposed) == .int(2))
    guard case .object(let largeObject) = large else { return }
    #expect(largeObject.count == 14)
    let shaped = try JSONReader.parse("[{\"\(composed)\":1},{\"\(decomposed)\":2}]")
    guard case .array(let elements) = shaped else { return }
    #expect(elements.map(names) == [[Array(composed.utf8)], [Array(decomposed.utf8)]])
    #expect(OrderedObject([(composed, .int(1))]) != OrderedObject([(decomposed, .int(1))]))
    #expect(!Operators.isTrue(Operators.equals(elements[0], elements[1])))
  }

  @Test func tellsIntFromDecimal() throws {
    #expect(try JSONReader.parse("1") == .int(1))
    #expect(try JSONReader.parse("-0") == .int(0))
    #expect(try JSONReader.parse("1.0", options: v1) == decimal("1"))
    #expect(try JSONReader.parse("1.0", options: v2) == .int(1))
    #expect(try JSONReader.parse("1E2", options: v1) == decimal("100"))
    #expect(try JSONReader.parse("1E2", options: v2) == .int(100))
    #expect(try JSONReader.parse("1.5", options: v2) == decimal("1.5"))
    #expect(try JSONReader.parse("22.50", options: v1) == decimal("22.5"))
    #expect(try JSONReader.parse("-0.0", options: v1) == decimal("0"))
    #expect(try JSONReader.parse("0.0", options: v2) == .int(0))
    #expect(try JSONReader.parse("1e-3", options: v2) == decimal("0.001"))
    #expect(try JSONReader.parse("12.5E+1", options: v2) == .int(125))
    #expect(try JSONReader.parse("0.00000000000000000000000000000000000000000001") == decimal("1E-44"))
  }

  /// Valid JSON beyond AWS's Decimal range (1E-999 to 9.999…E999) is the nearest value held, with
  /// its sign; the document stays JSON.
  @Test func numbersBeyondTheDecimalRangeSaturate() throws {
    let largest = Value.decimal(SQLDecimal.greatestMagnitude)
    let smallest = Value.decimal(SQLDecimal.leastMagnitude)
    #expect(try JSONReader.parse("1E1000") == largest)
    #expect(try JSONReader.parse("-1e1999") == .decimal(-SQLDecimal.greatestMagnitude))
    #expect(try JSONReader.parse("[0.5E-1000]") == .array([smallest]))
    #expect(try JSONReader.parse("-5e-2000") == .decimal(-SQLDecimal.leastMagnitude))
    #expect(try JSONReader.parse("1" + String(repeating: "0", count: 1000)) == largest)
    // The whole range holds: doubles' extremes, and AWS's own bounds.
    #expect(try JSONReader.parse("1.7976931348623157e308") == dec("1.7976931348623157E308"))
    #expect(try JSONReader.parse("-4.9e-324") == dec("-4.9E-324"))
    #expect(try JSONReader.parse("9.999e999") == dec("9.999E999"))
    #expect(try JSONReader.parse("1e-999") == dec("1E-999"))
    #expect(JSONWriter.string(try JSONReader.parse("[1E150, 2.5e-300]")) == "[1E150,2.5E-300]")
    // The selective reader too: the payload is an object, its other fields read.
    let view = JSONReader.read(
      Array(#"{"x":1e2000,"t":1}"#.utf8), paths: PathTable(paths: [["x"], ["t"]]), wholeDocument: false,
      options: JSONReadOptions(), checksCanonical: true)
    #expect(view.kind == .object && view.values == [largest, .int(1)])
    // Compact otherwise: `SELECT *` passes the bytes on, the number as written.
    #expect(view.isCanonical)
    let spaced = JSONReader.read(
      Array(#"{"x": 1e2000}"#.utf8), paths: PathTable(paths: [["x"]]), wholeDocument: false,
      options: JSONReadOptions(), checksCanonical: true)
    #expect(!spaced.isCanonical)
    // Below 1E-999 in magnitude: the smallest magnitude, with the sign.
    #expect(try JSONReader.parse("-9.99e-1000") == dec("-1E-999"))
    // An exponent of 8 digits or more is read whole: `1` and 2,000,000 zeros, `e-20000000`, is
    // 1E-18000000, not 1 (its exponent stopped at 2,000,000).
    #expect(try JSONReader.parse("1" + String(repeating: "0", count: 2_000_000) + "e-20000000") == smallest)
  }

  @Test func bigIntegersBecomeDecimals() throws {
    #expect(try JSONReader.parse("9223372036854775807") == .int(Int.max))
    #expect(try JSONReader.parse("-9223372036854775808") == .int(Int.min))
    #expect(try JSONReader.parse("9223372036854775808") == decimal("9223372036854775808"))
    #expect(try JSONReader.parse("-9223372036854775809") == decimal("-9223372036854775809"))
    #expect(try JSONReader.parse("92233720368547758080.0", options: v2) == decimal("92233720368547758080"))
    let digits34 = "1234567890123456789012345678901234"
    #expect(try JSONReader.parse(digits34) == decimal(digits34))
    // More than 34 significant digits: rounded half to even to 34, always a number.
    #expect(try JSONReader.parse(digits34 + "5") == decimal("1234567890123456789012345678901234E1"))
    #expect(try JSONReader.parse(digits34 + "51") == decimal("1234567890123456789012345678901235E2"))
    #expect(
      try JSONReader.parse("1234567890123456789012345678901235" + "5")
        == decimal("1234567890123456789012345678901236E1"))
    #expect(try JSONReader.parse(String(repeating: "9", count: 40)) == decimal("1E40"))
    #expect(try JSONReader.parse("0." + digits34 + "49") == decimal("0." + digits34))
    #expect(try JSONReader.parse("1" + String(repeating: "0", count: 60)) == decimal("1E60"))
  }

  @Test(
    arguments: [
      ("", 0, "unexpected end of input, expected a value"),
      (" ", 1, "unexpected end of input, expected a value"),
      ("{} x", 3, "unexpected byte 0x78, after the end of the document"),
      ("[1]]", 3, "unexpected byte 0x5d, after the end of the document"),
      ("\u{FEFF}", 3, "unexpected end of input, expected a value"),
      ("\u{FEFF}\u{FEFF}{}", 3, "unexpected byte 0xef, expected a value"),
      (" \u{FEFF}{}", 1, "unexpected byte 0xef, expected a value"),
      (#"{"a":1,}"#, 7, "unexpected byte 0x7d, expected a member name"),
      ("[1,]", 3, "unexpected byte 0x5d, expected a value"),
      ("[1 2]", 3, "unexpected byte 0x32, expected ',' or ']'"),
      (#"{"a":1 "b":2}"#, 7, "unexpected byte 0x22, expected ',' or '}'"),
      (#"{"a" 1}"#, 5, "unexpected byte 0x31, expected ':' after a member name"),
      ("{1:2}", 1, "unexpected byte 0x31, expected a member name"),
      ("01", 1, "leading zero in a number"),
      ("-01", 2, "leading zero in a number"),
      ("-", 1, "unexpected end of input, expected a digit after '-'"),
      ("-a", 1, "unexpected byte 0x61, expected a digit after '-'"),
      ("+1", 0, "unexpected byte 0x2b, expected a value"),
      (".5", 0, "unexpected byte 0x2e, expected a value"),
      ("1.", 2, "unexpected end of input, expected a digit after '.'"),
      ("1.e5", 2, "unexpected byte 0x65, expected a digit after '.'"),
      ("1e", 2, "unexpected end of input, expected a digit in the exponent"),
      ("[1e+]", 4, "unexpected byte 0x5d, expected a digit in the exponent"),
      ("tru", 3, "unexpected end of input, expected the literal 'true'"),
      ("trUe", 2, "unexpected byte 0x55, expected the literal 'true'"),
      ("nul", 3, "unexpected end of input, expected the literal 'null'"),
      ("not json", 1, "unexpected byte 0x6f, expected the literal 'null'"),
      ("NaN", 0, "unexpected byte 0x4e, expected a value"),
      ("\"a\u{1}\"", 2, "control character 0x01 in a string"),
      ("\"a\nb\"", 2, "control character 0x0a in a string"),
      (#""\x""#, 1, "invalid escape '\\x' in a string"),
      (#""\'""#, 1, "invalid escape '\\'' in a string"),
      (#""\uD800""#, 1, "lone surrogate \\uD800 (no low surrogate follows)"),
      (#""ab\uDC00""#, 3, "lone surrogate \\uDC00 (a low surrogate first)"),
      (#""\uD800\u0041""#, 1, "lone surrogate \\uD800 (no low surrogate follows)"),
      (#""\uD800\n""#, 1, "lone surrogate \\uD800 (no low surrogate follows)"),
      (#""\u12G4""#, 5, "invalid hex digit 0x47 in a \\u escape"),
      ("\"abc", 4, "unexpected end of input, in a string"),
      (#"{"a":[1,{"b":"#, 13, "unexpected end of input, expected a value"),
    ] as [(String, Int, String)])
  func rejectsWithOffset(text: String, offset: Int, message: String) {
    #expect(throws: JSONError(offset: offset, message: message)) { try JSONReader.parse(text) }
    let view = JSONReader.read(
      Array(text.utf8), paths: PathTable(paths: [["a"]]), wholeDocument: false, options: v2)
    #expect(view.kind == .binary)
    #expect(view.error == JSONError(offset: offset, message: message))
    #expect(view.values == [.undefined])
  }

  @Test(
    arguments: [
      ([0x22, 0xC0, 0x80, 0x22], 1, "invalid UTF-8: overlong encoding (byte 0xc0)"),
      ([0x22, 0x41, 0xE0, 0x80, 0x80, 0x22], 2, "invalid UTF-8: overlong encoding"),
      ([0x22, 0xF0, 0x80, 0x80, 0x80, 0x22], 1, "invalid UTF-8: overlong encoding"),
      ([0x22, 0xED, 0xA0, 0x80, 0x22], 1, "invalid UTF-8: encoded surrogate"),
      ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1, "invalid UTF-8: code point above U+10FFFF"),
      ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1, "invalid UTF-8: code point above U+10FFFF (byte 0xf5)"),
      ([0x22, 0xFF, 0x22], 1, "invalid UTF-8: byte 0xff"),
      ([0x22, 0x80, 0x22], 1, "invalid UTF-8: unexpected continuation byte 0x80"),
      ([0x22, 0xC3, 0x22], 1, "invalid UTF-8: incomplete sequence"),
      ([0x22, 0xE2, 0x82, 0x41, 0x22], 1, "invalid UTF-8: incomplete sequence"),
      ([0x22, 0xE2, 0x82], 3, "unexpected end of input, in a UTF-8 sequence"),
      ([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D], 2, "invalid UTF-8: incomplete sequence"),
    ] as [([UInt8], Int, String)])
  func rejectsInvalidUTF8(bytes: [UInt8], offset: Int, message: String) {
    #expect(throws: JSONError(offset: offset, message: message)) { try JSONReader.parse(bytes) }
    let view = JSONReader.read(bytes, paths: PathTable(), wholeDocument: true, options: v2)
    #expect(view.kind == .binary && view.document == .binary(bytes) && view.error?.offset == offset)
  }

  @Test func acceptsValidUTF8AndEscapes() throws {
    #expect(
      try JSONReader.parse(#""\u00e9\uD83C\uDF89\/\b\f\n\r\t\"\\""#) == .string("é🎉/\u{8}\u{c}\n\r\t\"\\"))
    #expect(
      try JSONReader.parse("\"\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}\"")
        == .string("\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}"))
  }

  @Test func limitsNesting() throws {
    let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
    #expect(throws: JSONError(offset: 512, message: "nesting deeper than 512")) { try JSONReader.parse(deep) }
    let deepObject = String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600)
    #expect(throws: JSONError(offset: 512 * 5, message: "nesting deeper than 512")) {
      try JSONReader.parse(deepObject)
    }
    let selective = JSONReader.read(
      Array(deepObject.utf8), paths: PathTable(paths: [["a", "a", "a"]]), wholeDocument: false, options: v2)
    #expect(selective.kind == .binary && selective.error?.offset == 512 * 5)
    let allowed = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
    _ = try JSONReader.parse(allowed)
    let shallow = JSONReadOptions(wholeDecimalsAsInt: true, maxDepth: 2)
    #expect(throws: JSONError(offset: 2, message: "nesting deeper than 2")) {
      try JSONReader.parse("[[[]]]", options: shallow)
    }
  }

  @Test func everyPrefixOfAValidDocumentErrorsCleanly() {
    let documents = [
      sensorPayload, #"{"a":[1,2.5e3,{"b":"\u00e9\uD83C\uDF89"}],"c":null,"d":true,"e":"日本"}"#,
    ]
    for text in documents {
      let bytes = Array(text.utf8)
      for length in 0..<bytes.count {
        let prefix = Array(bytes[..<length])
        #expect(throws: JSONError.self) { try JSONReader.parse(prefix) }
        let view = JSONReader.read(
          prefix, paths: PathTable(paths: [["a"], ["temp", "c"]]), wholeDocument: false, options: v2)
        #expect(view.kind == .binary && view.error != nil)
      }
    }
  }

  @Test func randomBytesNeverCrashAndBothReadersAgree() {
    var generator = SeededGenerator(state: 20_261_128)
    let alphabet =
      Array(#"{}[]:,"\ -+.eE0123456789abtrufnlsu"#.utf8) + [0x00, 0x0A, 0x80, 0xC3, 0xA9, 0xED, 0xF4, 0xFF]
    let paths = PathTable(paths: [["a"], ["a", "b"], ["b"]])
    for round in 0..<3000 {
      let length = Int.random(in: 0...40, using: &generator)
      var bytes: [UInt8]
      if round % 2 == 0 {
        bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
      } else {
        // Mutations of a valid document reach deeper states.
        bytes = Array(#"{"a":{"b":[1,-2.5e3,"x\u00e9"]},"b":true}"#.utf8)
        for _ in 0..<Int.random(in: 1...3, using: &generator) {
          let index = Int.random(in: 0..<bytes.count, using: &generator)
          bytes[index] = UInt8.random(in: 0...255, using: &generator)
        }
      }
      let full: Result<Value, JSONError> = Result { () throws(JSONError) -> Value in
        try JSONReader.parse(bytes)
      }
      let view = JSONReader.read(bytes, paths: paths, wholeDocument: false, options: v2)
      switch full {
      case .success(let value):
        #expect(view.kind != .binary)
        #expect(view.values == paths.paths.map { navigate(value, $0) })
      case .failure(let error):
        #expect(view.kind == .binary && view.error == error, "\(bytes)")
      }
    }
  }

  @Test(arguments: [
    #"{"a":1,"b":{"c":2,"d":[3]},"e":"x"}"#,
    #"{"b":{"c":2},"a":5,"b":7}"#,
    #"{"b":7,"b":{"c":[1],"d":{"e":null}}}"#,
    #"{"b":{"c":1},"b":{"d":2}}"#,
    #"{"a\u0062":1,"b":{"c\"":2,"c":3}}"#,
    #" { "a" : [ {"b":1} ] , "b" : { "c" : 1.50 } } "#,
    #"[{"a":1}]"#,
    #""a""#,
    #"{"x":{"a":1,"a":2},"a":{"b":{"c":{"d":true}}}}"#,
    sensorPayload,
  ])
  func selectiveReadEqualsFullParse(text: String) throws {
    let bytes = Array(text.utf8)
    let full = try JSONReader.parse(bytes, options: v1)
    let paths = PathTable(paths: [
      ["a"], ["b"], ["b", "c"], ["b", "c", "x"], ["b", "d", "e"], ["ab"], ["b", "c\""], ["a", "0"],
      ["temp", "c"], ["loc"], ["loc", "lon"], ["ts"], ["missing"], ["a", "b", "c", "d"],
    ])
    let view = JSONReader.read(bytes, paths: paths, wholeDocument: false, options: v1)
    let whole = JSONReader.read(bytes, paths: paths, wholeDocument: true, options: v1)
    let expected = paths.paths.map { navigate(full, $0) }
    #expect(view.values == expected)
    #expect(whole.values == expected)
    #expect(view.document == nil && whole.document == full)
    #expect(view.isCanonical == whole.isCanonical)
    if case .object = full {
      #expect(view.kind == .object)
    } else {
      #expect(view.kind == .otherJSON && view.values.allSatisfy(\.isUndefined))
    }
  }

  /// A read with no paths (the `SELECT *` of an archive rule) skips the whole document: strings with
  /// escapes or non-ASCII text anywhere are validated in place, numbers the writer spells shorter are
  /// respelled, and invalid UTF-8 deep inside still makes the payload Binary at its offset.
  @Test func readWithoutPathsValidatesEveryStringAndKeepsRespelling() throws {
    let text = #"{"t":29.0,"u":"°C","tags":["é","a\"b",{"n":"日本\n"}],"m":{"x":21.50}}"#
    let view = JSONReader.read(
      Array(text.utf8), paths: PathTable(), wholeDocument: false, options: v2, checksCanonical: true)
    #expect(view.kind == .object && !view.isCanonical && view.respellsNumbers)
    #expect(
      String(decoding: JSONReader.respellingNumbers(Array(text.utf8), options: v2), as: UTF8.self)
        == #"{"t":29,"u":"°C","tags":["é","a\"b",{"n":"日本\n"}],"m":{"x":21.5}}"#)
    var broken = Array(#"{"t":1,"tags":[{"n":"日本"}]}"#.utf8)
    let offset = try #require(broken.firstIndex(of: 0xE6))
    broken[offset + 1] = 0x41
    let binary = JSONReader.read(
      broken, paths: PathTable(), wholeDocument: false, options: v2, checksCanonical: true)
    #expect(binary.kind == .binary && binary.error?.offset == offset)
    #expect(binary.error?.message == "invalid UTF-8: incomplete sequence")
  }

  /// A UTF-8 byte order mark before a JSON document is skipped (RFC 8259 §8.1, as the JVM's Jackson
  /// does), on every path: parsing, the selective read, the skipping read; such bytes are not
  /// canonical, so `SELECT *` writes the document without it. Only at the very start, and only one.
  @Test func byteOrderMarkBeforeADocumentIsSkipped() throws {
    let bytes = Array("\u{FEFF}{\"a\":1,\"b\":{\"c\":[2]}}".utf8)
    #expect(
      try JSONReader.parse(bytes, options: v2)
        == .object(
          OrderedObject([("a", .int(1)), ("b", .object(OrderedObject([("c", .array([.int(2)]))])))])))
    for paths in [PathTable(), PathTable(paths: [["a"]]), PathTable(paths: [["b", "c"], ["a"]])] {
      for whole in [false, true] {
        let view = JSONReader.read(
          bytes, paths: paths, wholeDocument: whole, options: v2, checksCanonical: true)
        #expect(view.kind == .object && !view.isCanonical && !view.respellsNumbers)
      }
    }
    let tracked = JSONReader.read(
      bytes, paths: PathTable(paths: [["b", "c"], ["a"]]), wholeDocument: false, options: v2)
    #expect(tracked.values == [.array([.int(2)]), .int(1)])
    let program = try Compiler.compile("SELECT * FROM 't'")
    var machine = VirtualMachine()
    let outcome = machine.evaluate(program, context: EvaluationContext(topic: "t", payload: bytes))
    #expect(outcome.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"a":1,"b":{"c":[2]}}"#)
    let fields = try Compiler.compile("SELECT a, get(b.c, 0) AS x FROM 't'")
    let projected = machine.evaluate(fields, context: EvaluationContext(topic: "t", payload: bytes))
    #expect(projected.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"a":1,"x":2}"#)
  }

  /// Under 2015-10-08 a whole decimal keeps its point (`4.0`, `4.00` → `4.0`) when numbers beside it
  /// are respelled (`2.50` → `2.5`); under 2016-03-23 it is its integer.
  @Test func respellingKeepsWholeDecimalsUnderTheFirstVersion() throws {
    let text = #"{"x":4.0,"y":2.50,"z":[7.00,1.10]}"#
    let view = JSONReader.read(
      Array(text.utf8), paths: PathTable(), wholeDocument: false, options: v1, checksCanonical: true)
    #expect(view.kind == .object && view.respellsNumbers)
    #expect(
      String(decoding: JSONReader.respellingNumbers(Array(text.utf8), options: v1), as: UTF8.self)
        == #"{"x":4.0,"y":2.5,"z":[7.0,1.1]}"#)
    #expect(
      String(decoding: JSONReader.respellingNumbers(Array(text.utf8), options: v2), as: UTF8.self)
        == #"{"x":4,"y":2.5,"z":[7,1.1]}"#)
    let program = try Compiler.compile("SELECT * FROM 't'", version: .v2015_10_08)
    var machine = VirtualMachine()
    let outcome = machine.evaluate(program, context: EvaluationContext(topic: "t", payload: Array(text.utf8)))
    #expect(
      outcome.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"x":4.0,"y":2.5,"z":[7.0,1.1]}"#)
  }

  /// Objects in an array with the keys of the object before them share its key array; any other
  /// object (fewer keys, more, another order, a repeated key) gets its own, with its own keys.
  @Test func siblingObjectsShareTheirKeys() throws {
    let text =
      #"[{"v":1,"u":2},{"v":3,"u":4},{"v":5},{"v":6,"u":7,"w":8},{"u":9,"v":10},{"v":1,"v":2},{"v":0,"u":0}]"#
    guard case .array(let elements) = try JSONReader.parse(Array(text.utf8)) else {
      Issue.record("not an array")
      return
    }
    let objects = elements.compactMap { element -> OrderedObject? in
      if case .object(let object) = element { return object }
      return nil
    }
    #expect(
      objects.map(\.keys) == [
        ["v", "u"], ["v", "u"], ["v"], ["v", "u", "w"], ["u", "v"], ["v"], ["v", "u"],
      ])
    #expect(objects.map { $0["v"] } == [.int(1), .int(3), .int(5), .int(6), .int(10), .int(2), .int(0)])
    func storage(_ keys: [String]) -> UnsafePointer<String>? { keys.withUnsafeBufferPointer(\.baseAddress) }
    #expect(storage(objects[0].keys) == storage(objects[1].keys))
    #expect(storage(objects[1].keys) != storage(objects[2].keys))
    #expect(storage(objects[5].keys) != storage(objects[2].keys))
  }

  @Test func selectiveReadFallsBackForManyOrEmptyPaths() throws {
    let text = Array(#"{"k3":3,"k70":70}"#.utf8)
    let many = PathTable(paths: (0..<80).map { ["k\($0)"] })
    let view = JSONReader.read(text, paths: many, wholeDocument: false, options: v2)
    #expect(view.values[3] == .int(3) && view.values[70] == .int(70) && view.values[0] == .undefined)
    #expect(view.document == nil)
    let root = JSONReader.read(text, paths: PathTable(paths: [[]]), wholeDocument: false, options: v2)
    #expect(root.values == [try JSONReader.parse(text)])
  }

  @Test(
    arguments: [
      (#"{"a":1,"b":[true,null]}"#, v2, true),
      (#"{"s":"\u001f\n\\\"/é"}"#, v2, true),
      (#"{"a":10.0}"#, v1, true),
      (#"{"a":10.0}"#, v2, false),
      (#"{"a":0.0}"#, v1, true),
      (#"{"a":1E-21}"#, v2, true),
      (#"{"a":1e-21}"#, v2, false),
      (#"{"a":1.5E40}"#, v2, true),
      (#"{"a":0.000000000005}"#, v2, true),
      (#"{"a":5E-12}"#, v2, false),
      (#"{"a":123456789012345678901234}"#, v2, true),
      (#"{"a":9223372036854775807}"#, v2, true),
      (#"{"a": 1}"#, v2, false),
      ("{\"a\":1}\n", v2, false),
      (#"{"a":1,"a":2}"#, v2, false),
      (#"{"x":{"a":1,"a":2}}"#, v2, false),
      (#"{"a":"\/"}"#, v2, false),
      (#"{"a":"\u0041"}"#, v2, false),
      (#"{"a":"\u001F"}"#, v2, false),
      (#"{"a":"\u000a"}"#, v2, false),
      (#"{"a":1.50}"#, v2, false),
      (#"{"a":1E2}"#, v1, false),
      (#"{"a":-0}"#, v2, false),
      (#"{"a":1.0E1}"#, v1, false),
      (#"{"a":12345678901234567890123456789012345}"#, v2, false),
      (#"[1,2]"#, v2, true),
    ] as [(String, JSONReadOptions, Bool)])
  func detectsCanonicalPayloads(text: String, options: JSONReadOptions, canonical: Bool) throws {
    let bytes = Array(text.utf8)
    let whole = JSONReader.read(
      bytes, paths: PathTable(paths: [["a"]]), wholeDocument: true, options: options)
    let selective = JSONReader.read(
      bytes, paths: PathTable(paths: [["b"]]), wholeDocument: false, options: options)
    #expect(whole.isCanonical == canonical)
    #expect(selective.isCanonical == canonical)
    var out: [UInt8] = []
    JSONWriter.write(try #require(whole.document), into: &out)
    #expect((out == bytes) == canonical)
  }

  @Test func canonicalCheckCoversLargeObjects() throws {
    let members = (0..<200).map { #""key\#($0)":\#($0)"# }
    let unique = Array("{\(members.joined(separator: ","))}".utf8)
    let repeated = Array("{\(members.joined(separator: ",")),\"key3\":3}".utf8)
    let nested = Array("{\"x\":{\(members.joined(separator: ","))},\"y\":[{\"key3\":1,\"key3\":1}]}".utf8)
    let paths = PathTable(paths: [["key3"]])
    for (bytes, canonical) in [(unique, true), (repeated, false), (nested, false)] {
      let selective = JSONReader.read(bytes, paths: paths, wholeDocument: false, options: v2)
      let whole = JSONReader.read(bytes, paths: paths, wholeDocument: true, options: v2)
      #expect(selective.isCanonical == canonical && whole.isCanonical == canonical)
      #expect(selective.values == whole.values)
    }
  }

  @Test func tracksPathsDeeperThanEightLevels() throws {
    let names = (0..<12).map { "n\($0)" }
    var text = "42"
    for name in names.reversed() { text = #"{"other":[1],"\#(name)":\#(text),"z":{}}"# }
    let bytes = Array(text.utf8)
    let paths = PathTable(paths: [names, Array(names[..<10]) + ["z"], Array(names[..<9]), names + ["x"]])
    let full = try JSONReader.parse(bytes)
    let view = JSONReader.read(bytes, paths: paths, wholeDocument: false, options: v2)
    #expect(view.values == paths.paths.map { navigate(full, $0) })
    #expect(
      view.values[0] == .int(42) && view.values[1] == .object(OrderedObject()) && view.values[3] == .undefined
    )
  }

  @Test func binaryPayloads() {
    let bytes: [UInt8] = [0x00, 0x01, 0xFF]
    let view = JSONReader.read(
      bytes, paths: PathTable(paths: [["a"], ["b"]]), wholeDocument: true, options: v2)
    #expect(view.kind == .binary && view.values == [.undefined, .undefined])
    #expect(view.document == .binary(bytes) && !view.isCanonical)
    #expect(view.error == JSONError(offset: 0, message: "unexpected byte 0x00, expected a value"))
    #expect(view.error?.description == "offset 0: unexpected byte 0x00, expected a value")
    let number = JSONReader.read(
      Array("80".utf8), paths: PathTable(paths: [["a"]]), wholeDocument: true, options: v2)
    #expect(
      number.kind == .otherJSON && number.document == .int(80) && number.values == [.undefined]
        && number.isCanonical)
  }
}

/// The skipping fast path (`JSONScanner.skipValue`) against the general loop: random documents and
/// corruptions of them must read the same way whether a value is skipped or built.
@Suite struct JSONSkipEquivalenceTests {
  static func randomValue(_ random: inout SeededGenerator, depth: Int) -> String {
    let space = [" ", "", "", "", "\n", "\t"]
    func ws() -> String { space[Int(random.next() % UInt64(space.count))] }
    let kind = depth > 5 ? Int(random.next() % 6) : Int(random.next() % 9)
    switch kind {
    case 0:
      let strings = [
        "", "a", "plain text", #"esc\"aped"#, #"\u0041"#, #"\/"#, "é", "日本", "\u{1F389}", "12345678901",
      ]
      return "\"" + strings[Int(random.next() % UInt64(strings.count))] + "\""
    case 1:
      let numbers = [
        "0", "-0", "7", "-12", "10.0", "1.50", "0.25", "0.000000000005", "1E2", "1e-21", "1.5E40",
        "123456789012345678901234", "9223372036854775807", "3.14159", "-0.5",
        "12345678901234567890123456789012345", "21.50", "-3.0", "-0.0", "0.10", "100.000", "1.0E2", "0.00",
        "12345678901234567890.0", "0.0000000000000000000000000000000000010",
      ]
      return numbers[Int(random.next() % UInt64(numbers.count))]
    case 2: return ["true", "false", "null"][Int(random.next() % 3)]
    case 3, 4, 5:
      return String(random.next() % 1000)
    case 6, 7:
      let count = Int(random.next() % 5)
      let keys = ["a", "b", "c", "a", "key", "k2"]
      let members = (0..<count).map { _ in
        ws() + "\"" + keys[Int(random.next() % UInt64(keys.count))] + "\"" + ws() + ":" + ws()
          + randomValue(&random, depth: depth + 1) + ws()
      }
      return "{" + members.joined(separator: ",") + "}"
    default:
      let count = Int(random.next() % 5)
      let elements = (0..<count).map { _ in ws() + randomValue(&random, depth: depth + 1) + ws() }
      return "[" + elements.joined(separator: ",") + "]"
    }
  }

  /// A view that is canonical passes its bytes through; one that respells numbers gives the bytes
  /// with those numbers respelled: either way exactly what writing the parsed document gives.
  static func checkOutput(_ view: PayloadView, _ bytes: [UInt8], _ options: JSONReadOptions) -> Bool {
    guard view.isCanonical || view.respellsNumbers else { return true }
    guard let document = try? JSONReader.parse(bytes, options: options) else { return false }
    var written: [UInt8] = []
    JSONWriter.write(document, into: &written)
    return written == (view.isCanonical ? bytes : JSONReader.respellingNumbers(bytes, options: options))
  }

  @Test func skippedAndBuiltReadsAgree() throws {
    var random = SeededGenerator(state: 42)
    var corrupted = 0
    var respelled = 0
    var knownForms = 0
    let envelopePaths = PathTable(paths: [["topic"], ["payload"]])
    for round in 0..<3000 {
      var text = Self.randomValue(&random, depth: 0)
      if round % 2 == 0 {
        // An object root with the names the paths ask for, repeated sometimes.
        let keys = ["a", "b", "k2", "b", "other"]
        let members = (0..<Int(random.next() % 6)).map { _ in
          "\"" + keys[Int(random.next() % UInt64(keys.count))] + "\":" + Self.randomValue(&random, depth: 1)
        }
        text = "{" + members.joined(separator: ",") + "}"
      }
      var bytes = Array(text.utf8)
      if round % 3 == 1, !bytes.isEmpty {
        // A corruption: a truncation or a byte replaced by a JSON-significant one.
        if random.next() % 2 == 0 {
          bytes.removeLast(Int(random.next() % UInt64(bytes.count)) + 1)
        } else {
          let specials = Array(#"{}[]:,"\ 0-.eE"#.utf8) + [0x01, 0xC3, 0xFF]
          bytes[Int(random.next() % UInt64(bytes.count))] =
            specials[Int(random.next() % UInt64(specials.count))]
        }
        corrupted += 1
      }
      for options in [v1, v2] {
        let built = JSONReader.read(bytes, paths: PathTable(), wholeDocument: true, options: options)
        let skipped = JSONReader.read(bytes, paths: PathTable(), wholeDocument: false, options: options)
        let tracked = JSONReader.read(
          bytes, paths: PathTable(paths: [["a"], ["b", "c"]]), wholeDocument: false, options: options)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(skipped.kind == built.kind, "\(text)")
        #expect(skipped.isCanonical == built.isCanonical, "\(text)")
        #expect(skipped.error?.offset == built.error?.offset, "\(text)")
        #expect(skipped.error?.message == built.error?.message, "\(text)")
        #expect(tracked.kind == built.kind && tracked.isCanonical == built.isCanonical, "\(text)")
        // A skipped value respells only numbers the builder respells too (it leaves a few, such as
        // a whole decimal beyond 18 digits, to building).
        #expect(!skipped.respellsNumbers || built.respellsNumbers, "\(text)")
        #expect(!tracked.respellsNumbers || built.respellsNumbers, "\(text)")
        for view in [built, skipped, tracked] {
          #expect(Self.checkOutput(view, bytes, options), "\(text)")
          if view.respellsNumbers { respelled += 1 }
        }
        // Inside an envelope, a container's form is found by the reading that defers it: known only
        // as the reading of the container alone finds it (2016-03-23 numbers), and often known.
        if built.kind != .binary, let first = bytes.first(where: { $0 > 0x20 }),
          first == 0x7B || first == 0x5B
        {
          var view = PayloadView(kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)
          JSONReader.readDeferringContainers(
            Array(#"{"topic" : "t", "payload":"#.utf8) + bytes + Array("}".utf8), paths: envelopePaths,
            options: options, findingForms: true, into: &view)
          let form = view.deferredForm(ofPath: 1)
          #expect(form == .unknown || options.wholeDecimalsAsInt, "\(text)")
          #expect(form != .canonical || built.isCanonical, "\(text)")
          #expect(form != .respellsNumbers || built.respellsNumbers, "\(text)")
          if form != .unknown {
            knownForms += 1
            // A payload of known form is read only as far as its last path: the same values.
            if case .object = built.document {
              let document = try #require(built.document)
              for paths in [
                [["a"]], [["b", "c"], ["a"]], [["k2"], ["b"], ["missing"]], [["b", "a"], ["other"]],
              ] {
                var early = PayloadView(
                  kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)
                JSONReader.read(
                  bytes, names: PathTable(paths: paths).names, wholeDocument: false, options: options,
                  checksCanonical: false, defersContainers: true, knownValid: true, into: &early)
                let values = early.values.indices.map { index -> Value in
                  guard !early.deferredRanges.isEmpty, early.deferredRanges[2 * index] >= 0 else {
                    return early.values[index]
                  }
                  let range = early.deferredRanges[2 * index]..<early.deferredRanges[2 * index + 1]
                  return JSONReader.build(bytes, range: range, options: options)
                }
                #expect(early.kind == .object, "\(text)")
                #expect(values == paths.map { navigate(document, $0) }, "\(text) \(paths)")
              }
            }
          }
        }
        // parse() builds by recursive descent first; it must agree with the general loop.
        var parsed: Value?
        var parseError: JSONError?
        do throws(JSONError) {
          parsed = try JSONReader.parse(bytes, options: options)
        } catch {
          parseError = error
        }
        if let parsed, let document = built.document, built.kind != .binary {
          // Written out, so key order and Int vs Decimal count (`==` on objects ignores order).
          var fromParse: [UInt8] = []
          var fromBuild: [UInt8] = []
          JSONWriter.write(parsed, into: &fromParse)
          JSONWriter.write(document, into: &fromBuild)
          #expect(fromParse == fromBuild, "\(text)")
        } else {
          #expect(parsed == nil && built.kind == .binary, "\(text)")
          #expect(parseError?.offset == built.error?.offset, "\(text)")
        }
        if case .object = built.document {
          let document = try #require(built.document)
          #expect(tracked.values == [navigate(document, ["a"]), navigate(document, ["b", "c"])], "\(text)")
        }
        // With containers deferred the tracked-root loop runs (built on demand here).
        for paths in [
          [["a"], ["b"], ["k2"]], [["b", "a"], ["b", "k2"], ["a", "key", "b"], ["k2"]], [["b"], ["b", "a"]],
          // More than PathNames.linearLimit paths: names are looked up in the hashed table.
          [["a"], ["b", "a"], ["b", "k2"], ["k2"], ["key"], ["c"], ["other"], ["a", "key", "b"]],
        ] {
          let view = JSONReader.read(
            bytes, paths: PathTable(paths: paths), wholeDocument: false, options: options,
            checksCanonical: true, defersContainers: true)
          #expect(view.kind == built.kind && view.isCanonical == built.isCanonical, "\(text)")
          #expect(view.error?.offset == built.error?.offset, "\(text)")
          #expect(Self.checkOutput(view, bytes, options), "\(text) \(paths)")
          if case .object = built.document {
            let document = try #require(built.document)
            let values = view.values.indices.map { index -> Value in
              guard !view.deferredRanges.isEmpty, view.deferredRanges[2 * index] >= 0 else {
                return view.values[index]
              }
              let range = view.deferredRanges[2 * index]..<view.deferredRanges[2 * index + 1]
              return JSONReader.build(bytes, range: range, options: options)
            }
            #expect(values == paths.map { navigate(document, $0) }, "\(text) \(paths)")
          }
        }
      }
    }
    #expect(corrupted == 1000)
    #expect(respelled > 100)
    #expect(knownForms > 300)
  }
}

/// A payload its source validated (``PayloadForm`` known) is read only as far as its last path.
@Suite struct KnownValidReadTests {
  @Test func theReadStopsAtTheLastPath() {
    // The tail is not JSON: were it read, the payload would be Binary. The known-valid read never
    // reaches it (a source guarantees there is nothing wrong there); the ordinary read does.
    let bytes = Array(#"{"a":1,"b":{"c":"x","d":2},"e":[1,2]"#.utf8) + Array(#", oops"#.utf8)
    let paths = PathTable(paths: [["b", "c"], ["a"]])
    var view = PayloadView(kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)
    JSONReader.read(
      bytes, names: paths.names, wholeDocument: false, options: JSONReadOptions(), checksCanonical: false,
      defersContainers: true, knownValid: true, into: &view)
    #expect(view.kind == .object)
    #expect(view.values == [.string("x"), .int(1)])
    let ordinary = JSONReader.read(bytes, paths: paths, wholeDocument: false, options: JSONReadOptions())
    #expect(ordinary.kind == .binary)
    // A path not in the payload keeps the read going to the end (where this tail fails it).
    JSONReader.read(
      bytes, names: PathTable(paths: [["a"], ["z"]]).names, wholeDocument: false, options: JSONReadOptions(),
      checksCanonical: false, defersContainers: true, knownValid: true, into: &view)
    #expect(view.kind == .binary)
    // Canonical checks need the whole payload: no early stop with them.
    JSONReader.read(
      bytes, names: paths.names, wholeDocument: false, options: JSONReadOptions(), checksCanonical: true,
      defersContainers: true, knownValid: true, into: &view)
    #expect(view.kind == .binary)
  }

  /// The replay's messages carry their payload's form, and the VM reads them only as far as the
  /// rule's paths: the outputs are those of an unknown-form read.
  @Test func theVMGivesTheSameOutputsForAKnownForm() throws {
    let payload = Array(
      #"{"deviceId":"d1","temp":31.5,"location":{"site":"s","floor":2},"r":[{"v":57},{"v":5}]}"#.utf8)
    for sql in [
      "SELECT deviceId, temp FROM 't' WHERE temp > 30",
      "SELECT location.site AS site, (SELECT VALUE v FROM r WHERE v > 50) AS high FROM 't'",
      "SELECT deviceId, missing FROM 't'", "SELECT * FROM 't' WHERE temp > 30",
      "SELECT VALUE location FROM 't'",
    ] {
      let program = try Compiler.compile(sql)
      var machine = VirtualMachine()
      var context = EvaluationContext(topic: "t", payload: payload)
      let unknown = machine.evaluate(program, context: context)?.payload
      for form in [PayloadForm.canonical, .respellsNumbers] {
        context.payloadForm = form
        #expect(machine.evaluate(program, context: context)?.payload == unknown, "\(sql)")
      }
    }
  }
}

@Suite struct TrackedRootBuildTests {
  /// A container a path ends at is built in the tracked-root loop when the caller does not defer it;
  /// a repeated name inside it still makes the payload non-canonical.
  @Test func builtContainersKeepTheCanonicalCheck() throws {
    let paths = PathTable(paths: [["a"]])
    let repeated = JSONReader.read(
      Array(#"{"a":{"x":1,"x":2},"b":3}"#.utf8), paths: paths, wholeDocument: false, options: v2)
    #expect(!repeated.isCanonical && repeated.values == [.object(["x": .int(2)])])
    let plain = JSONReader.read(
      Array(#"{"a":{"x":1,"y":[2]},"b":3}"#.utf8), paths: paths, wholeDocument: false, options: v2)
    #expect(plain.isCanonical && plain.values == [.object(["x": .int(1), "y": .array([.int(2)])])])
  }
}

/// Records of one array built by recursive descent: each has exactly its own keys, in its own order,
/// with its own values, whatever its neighbours' keys.
@Suite struct RecordShapeTests {
  static func records(_ json: String) throws -> [OrderedObject] {
    // `parse` builds by recursive descent (the fast path).
    guard case .array(let elements) = try JSONReader.parse(Array(json.utf8), options: v2) else {
      throw JSONError(offset: 0, message: "no array")
    }
    return elements.map { if case .object(let object) = $0 { object } else { OrderedObject() } }
  }

  @Test func eachRecordKeepsItsOwnKeys() throws {
    let records = try Self.records(
      #"[{"a":1,"b":2},{"a":3,"b":4},{"a":5},{"a":6,"b":7,"c":8},{"b":9,"a":10},{"b":11},{"a":12,"a":13},{},"#
        + #"{"a":14,"b":15,"a":16},{"a":17,"b":18}]"#)
    let expected: [[(String, Value)]] = [
      [("a", .int(1)), ("b", .int(2))], [("a", .int(3)), ("b", .int(4))], [("a", .int(5))],
      [("a", .int(6)), ("b", .int(7)), ("c", .int(8))], [("b", .int(9)), ("a", .int(10))], [("b", .int(11))],
      [("a", .int(13))], [], [("a", .int(16)), ("b", .int(15))], [("a", .int(17)), ("b", .int(18))],
    ]
    #expect(records.count == expected.count)
    for (record, members) in zip(records, expected) {
      #expect(record.keys == members.map(\.0))
      #expect(record.values == members.map(\.1))
    }
  }
}

/// Member names are found by a hash of their ends and a filter of their first byte and length; names
/// that share both (differing only in the middle) or share a first byte and a length are still told
/// apart by their bytes.
@Suite struct PathNameLookupTests {
  @Test(arguments: [3, 14])
  func namesSharingTheirEndsAreToldApart(count: Int) {
    let all =
      (0..<8).map { "abcdefgh_\($0)_stuvwxyz" } + ["ab", "ac", "a", "b", "abc", "abd", "abcd", "abce"]
    let names = Array(all.prefix(count))
    // Every name of the document is one of the paths' or shares its ends or first byte and length
    // with one; the values are the names' positions.
    let members = all.enumerated().map { "\"\($1)\":\($0)" } + [#""abcdefgh_x_stuvwxyz":99"#, #""ad":98"#]
    let bytes = Array(("{" + members.reversed().joined(separator: ",") + "}").utf8)
    let view = JSONReader.read(
      bytes, paths: PathTable(paths: names.map { [$0] }), wholeDocument: false, options: JSONReadOptions(),
      checksCanonical: true, defersContainers: true)
    #expect(view.kind != .binary)
    #expect(view.values == names.indices.map { Value.int($0) }, "\(view.values)")
  }
}

/// `JSONReader.memberSpan(named:in:)`, with which the replay source and `eval --batch` take a scalar
/// payload's bytes as written: the value the reader keeps, so the last of a repeated name, names
/// compared as decoded, strings holding braces and quotes skipped.
@Suite struct MemberSpanTests {
  @Test(
    arguments: [
      (#"{"topic":"a","payload":{"b":[1,{"c":"}"}]},"x":1}"#, #"{"b":[1,{"c":"}"}]}"#),
      (#"{ "payload" : "s\"t" , "topic":"a"}"#, #""s\"t""#),
      (#"{"topic":"a","payload":-12.5e3}"#, "-12.5e3"),
      (#"{"payloads":1,"payload":true}"#, "true"),
      (#"{"topic":"a"}"#, nil),
      (#"{"payload":{"a":1},"payload":5}"#, "5"),
      (#"{"payload":5,"payload":"six"}"#, #""six""#),
      (#"{"payload":5,"p\u0061yload":6}"#, "6"),
      (#"{"p\u0061yload":null,"topic":"a"}"#, "null"),
      (#"{"pay\"load":1,"payload":2,"pay":3}"#, "2"),
      ("\u{FEFF}" + #"{"payload": [1]}"#, "[1]"),
      ("[1]", nil),
    ] as [(String, String?)])
  func spanOfPayload(_ line: String, _ expected: String?) {
    let bytes = Array(line.utf8)
    let span = bytes.withUnsafeBufferPointer { JSONReader.memberSpan(named: "payload", in: $0) }
    #expect(span.map { String(decoding: bytes[$0], as: UTF8.self) } == expected)
  }
}
