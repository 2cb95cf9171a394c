import Foundation
import Testing

@testable import IoTSQL

@Test(arguments: [
  CallRow("encode", [str("hello"), str("base64")], str("aGVsbG8=")),
  CallRow("encode", [.binary([0xFF, 0x00, 0x80]), str("base64")], str("/wCA")),
  CallRow("encode", [.binary(Array("{\"a\": 1}".utf8)), str("base64")], str("eyJhIjogMX0=")),
  CallRow("encode", [.int(80), str("BASE64")], str("ODA=")),
  CallRow("encode", [obj([("a", .int(1))]), str("base64")], str("eyJhIjoxfQ==")),
  CallRow("encode", [str(""), str("base64")], str("")),
  CallRow("encode", [str("ab"), str("base64")], str("YWI=")),
  CallRow("encode", [.null, str("base64")], .undefined),
  CallRow("encode", [str("x"), str("hex")], .undefined),
  CallRow("decode", [str("aGVsbG8="), str("base64")], str("hello")),
  CallRow("decode", [str("aGVsbG8"), str("base64")], str("hello")),
  CallRow("decode", [str("not base64!"), str("base64")], .null),
  CallRow("decode", [str("a"), str("base64")], .null),
  CallRow("decode", [str("/w=="), str("base64")], .null),
  CallRow("decode", [.null, str("base64")], .undefined),
  CallRow("decode", [str("aGVsbG8="), str("hex")], .undefined),
])
func encodingFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}

@Test(.enabled(if: jsonReaderAvailable, "needs the JSON reader of branch json"))
func decodeParsesJSONDocuments() {
  let document = invoke("decode", [str("eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="), str("base64")])
  #expect(document.member("temperature") == .int(33))
  #expect(
    invoke("decode", [invoke("encode", [.binary(Array("80".utf8)), str("base64")]), str("base64")])
      == .int(80))
}

@Test func base64RoundTrip() {
  for length in 0..<40 {
    let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    #expect(Base64.decode(Base64.encode(bytes)) == bytes)
  }
}

@Test func encodeAndDecodeRejectConstantUnknownSchemes() throws {
  let encode = try #require(FunctionRegistry.lookup("encode")?.prepare)
  let decode = try #require(FunctionRegistry.lookup("decode")?.prepare)
  do {
    _ = try encode([nil, str("hex")], .v2016_03_23)
    Issue.record("hex accepted")
  } catch {
    #expect(error.message == "unknown encode scheme 'hex'; the only scheme is 'base64'")
    #expect(error.argument == 1)
  }
  do {
    _ = try decode([nil, str("proto"), str("b"), str("k"), str("p"), str("m")], .v2016_03_23)
    Issue.record("proto accepted")
  } catch {
    #expect(error.message.contains("needs a descriptor in the AWS service S3"))
  }
  #expect(try decode([nil, str("base64")], .v2016_03_23) == nil)
}

/// "encodingScheme: A literal string" (encode, decode) and "parameters that switch the mode of a
/// function" take no variable (the SET page, naming transform's): a field or SET variable there is a
/// compile error at the argument, not a scheme read per message.
@Test(arguments: [
  ("SELECT encode('hi', b) AS a FROM 't'", "1:21", "the scheme of encode() must be a literal string"),
  (
    "SET @b = 'base64' SELECT decode('aGk=', @b) AS d FROM 't'", "1:41",
    "the scheme of decode() must be a literal"
  ),
  (
    "SELECT transform(m, {'k': 1}, r) AS x FROM 't'", "1:18",
    "the mode of transform() must be a literal string"
  ),
  (
    "SET @m = 'enrichArray' SELECT transform(@m, {}, r) AS x FROM 't'", "1:41",
    "the mode of transform() must be"
  ),
])
func modeArgumentsMustBeLiterals(_ sql: String, _ position: String, _ message: String) {
  do {
    _ = try Compiler.compile(sql)
    Issue.record("compiled: \(sql)")
  } catch {
    #expect(error.description.contains(position) && error.description.contains(message), "\(error)")
  }
}

@Test func literalSchemesAndModesStillCompile() throws {
  _ = try Compiler.compile("SELECT encode(*, 'BASE64') AS a, decode(s, 'base64') AS d FROM 't'")
  _ = try Compiler.compile("SELECT transform('enrichArray', {'k': 1}, r) AS x FROM 't'")
}

/// `decode(value, 'base64')` with more arguments is a call with the wrong number of arguments, as
/// `encode`'s is: a warning at the extra argument, and the call is Undefined (the rule still runs).
@Test func decodeWithExtraArgumentsWarnsAndIsUndefined() throws {
  let program = try Compiler.compile("SELECT decode('aGk=', 'base64', 'x') AS d, 1 AS one FROM 't'")
  #expect(
    program.warnings.map { "\($0.range.start): \($0.message)" } == [
      "1:33: function 'decode' with 'base64' takes 2 arguments but 3 were given; the call is always Undefined"
    ])
  var machine = VirtualMachine()
  let result = machine.evaluate(program, context: EvaluationContext(topic: "t", payload: Array("{}".utf8)))
  #expect(result.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"one":1}"#)
}
