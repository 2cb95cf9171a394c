import Foundation
import Testing

@testable import IoTSQL

@Test(arguments: [
  CallRow("chr", [.int(65)], str("A")),
  CallRow("chr", [.int(49)], str("1")),
  CallRow("chr", [dec("65.9")], str("A")),
  CallRow("chr", [str("66")], str("B")),
  CallRow("chr", [.int(128)], .undefined),
  CallRow("chr", [.int(-1)], .undefined),
  CallRow("chr", [.bool(true)], .undefined),
  CallRow("chr", [.null], .undefined),
  CallRow("concat", [], .undefined),
  CallRow("concat", [.int(1)], .int(1)),
  CallRow(
    "concat", [.array([.int(1), .int(2), .int(3)]), .int(4)], .array([.int(1), .int(2), .int(3), .int(4)])),
  CallRow(
    "concat", [.array([.int(1), .int(2), .int(3)]), str("hello")],
    .array([.int(1), .int(2), .int(3), str("hello")])),
  CallRow("concat", [str("con"), str("cat")], str("concat")),
  CallRow("concat", [.int(1), str("hello")], str("1hello")),
  CallRow("concat", [str("he"), str("is"), str("man")], str("heisman")),
  CallRow(
    "concat", [.array([.int(1), .int(2), .int(3)]), str("hello"), .array([.int(4), .int(5), .int(6)])],
    .array([.int(1), .int(2), .int(3), str("hello"), .int(4), .int(5), .int(6)])),
  CallRow("concat", [str("a"), .null], .undefined),
  CallRow("concat", [str("a"), .undefined], .undefined),
  CallRow("concat", [.int(1), .int(2)], .undefined),
  CallRow("endswith", [str("cat"), str("at")], .bool(true)),
  CallRow("endswith", [str("cat"), str("ca")], .bool(false)),
  CallRow("endswith", [.int(123), .int(23)], .bool(true)),
  CallRow("endswith", [str("cat"), .null], .undefined),
  CallRow("startswith", [str("ranger"), str("ran")], .bool(true)),
  CallRow("startswith", [.bool(true), str("tr")], .bool(true)),
  CallRow("startswith", [.undefined, str("a")], .undefined),
  CallRow("indexof", [str("abcd"), str("bc")], .int(1)),
  CallRow("indexof", [str("abcd"), str("x")], .int(-1)),
  CallRow("indexof", [.int(12345), .int(34)], .int(2)),
  CallRow("indexof", [str("a😀b"), str("b")], .int(3)),
  CallRow("indexof", [.null, str("a")], .undefined),
  CallRow("indexof", [.array([.int(10), .int(20)]), .int(0)], .undefined),
  CallRow("indexof", [str("[1]"), .array([.int(1)])], .undefined),
  CallRow("length", [str("hi")], .int(2)),
  CallRow("length", [.bool(false)], .int(5)),
  CallRow("length", [str("€")], .int(1)),
  CallRow("length", [.array([.int(1)])], .int(3)),
  CallRow("length", [.null], .undefined),
  CallRow("lower", [str("HELLO")], str("hello")),
  CallRow("lower", [.array([str("HELLO")])], str("[\"hello\"]")),
  CallRow("upper", [str("hello")], str("HELLO")),
  CallRow("upper", [.array([str("hello")])], str("[\"HELLO\"]")),
  CallRow("upper", [.undefined], .undefined),
  CallRow("lpad", [str("hello"), .int(2)], str("  hello")),
  CallRow("lpad", [.int(1), .int(3)], str("   1")),
  CallRow("lpad", [str("a"), dec("2.9")], str("  a")),
  CallRow("lpad", [str("a"), str("1")], str(" a")),
  CallRow("lpad", [str("a"), .int(-5)], str("a")),
  CallRow("lpad", [str("a"), .bool(true)], .undefined),
  CallRow("lpad", [str("a"), str("x")], .undefined),
  CallRow("lpad", [.null, .int(1)], .undefined),
  CallRow("rpad", [str("hello"), .int(2)], str("hello  ")),
  CallRow("rpad", [.int(1), .int(3)], str("1   ")),
  CallRow("ltrim", [str(" h i ")], str("h i ")),
  CallRow("ltrim", [str("\t x")], str("x")),
  CallRow("rtrim", [str(" h i ")], str(" h i")),
  CallRow("trim", [str(" hi ")], str("hi")),
  // trim takes all white space as Java's String.trim() does (every character up to U+0020);
  // ltrim and rtrim only spaces and tabs, as the guide says.
  CallRow("trim", [str("\t\n hi")], str("hi")),
  CallRow("trim", [str("23.5\r\n")], str("23.5")),
  CallRow("trim", [str("\u{1}x\u{0}\u{B}")], str("x")),
  CallRow("trim", [str("\u{A0}x ")], str("\u{A0}x")),
  CallRow("ltrim", [str("\n x")], str("\n x")),
  CallRow("rtrim", [str("x\r\n")], str("x\r\n")),
  CallRow("trim", [.int(5)], str("5")),
  CallRow("trim", [.null], .undefined),
  CallRow("numbytes", [str("hi")], .int(2)),
  CallRow("numbytes", [str("€")], .int(3)),
  CallRow("numbytes", [.undefined], .undefined),
  CallRow("replace", [str("abcd"), str("bc"), str("x")], str("axd")),
  CallRow("replace", [str("abcdabcd"), str("b"), str("x")], str("axcdaxcd")),
  CallRow("replace", [.int(1212), .int(2), .bool(true)], str("1true1true")),
  CallRow("replace", [str("ab"), str(""), str("-")], str("-a-b-")),
  // Final_Sigma, as Java's toLowerCase: a capital sigma that ends a word becomes ς.
  CallRow("lower", [str("ΟΔΟΣ")], str("οδος")),
  CallRow("lower", [str("ΟΔΟΣ ΚΑΙ ΑΣ.")], str("οδος και ας.")),
  CallRow("lower", [str("ΣΑΣ")], str("σας")),
  CallRow("lower", [str("Σ")], str("σ")),
  CallRow("lower", [str("AΣ'Σ")], str("aσ'ς")),
  CallRow("replace", [str("aaa"), str("aa"), str("b")], str("ba")),
  // Results past 8 MiB (no Java string holds what one 128 KB message can ask for) are Undefined.
  CallRow(
    "replace",
    [str(String(repeating: "a", count: 4_000)), str(""), str(String(repeating: "b", count: 4_000))],
    .undefined),
  CallRow(
    "replace",
    [str(String(repeating: "a", count: 4_000)), str("a"), str(String(repeating: "b", count: 4_000))],
    .undefined),
  CallRow("replace", [str("ab"), .null, str("-")], .undefined),
  CallRow("substring", [str("012345"), .int(0)], str("012345")),
  CallRow("substring", [str("012345"), .int(2)], str("2345")),
  CallRow("substring", [str("012345"), dec("2.745")], str("2345")),
  CallRow("substring", [.int(123), .int(2)], str("3")),
  CallRow("substring", [str("012345"), .int(-1)], str("012345")),
  CallRow("substring", [.bool(true), dec("1.2")], str("rue")),
  CallRow("substring", [.bool(false), str("-2.411E247")], str("false")),
  CallRow("substring", [str("012345"), .int(1), .int(3)], str("12")),
  CallRow("substring", [str("012345"), .int(-50), .int(50)], str("012345")),
  CallRow("substring", [str("012345"), .int(3), .int(1)], str("")),
  CallRow("substring", [str("012345"), str("1E300")], str("")),
  CallRow("substring", [str("012345"), .bool(true)], .undefined),
  CallRow("substring", [.null, .int(1)], .undefined),
])
func stringFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}

/// The UTF-16 decoding the substring and regexp functions use against the standard library's.
struct UTF16TextTests {
  @Test func decodesAsTheStandardLibraryDoes() {
    var random = SeededGenerator(state: 7)
    let interesting: [UInt16] = [
      0x41, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0xFFFD, 0xFFFF, 0xD83C, 0xDF89, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0,
    ]
    for round in 0..<2000 {
      let count = Int(random.next() % 12)
      let units = (0..<count).map { _ in
        round % 2 == 0
          ? interesting[Int(random.next() % UInt64(interesting.count))]
          : UInt16(truncatingIfNeeded: random.next())
      }
      let expected = String(decoding: units, as: UTF16.self)
      #expect(Array(String(utf16Units: units).utf8) == Array(expected.utf8), "\(units)")
    }
    #expect(String(utf16Units: Array("caf\u{E9} \u{1F389}".utf16)) == "caf\u{E9} \u{1F389}")
  }
}
