import Foundation
import Testing

@testable import IoTSQL

private let values = obj([("data1", .int(1)), ("data2", .int(2))])
private let elements = Value.array([obj([("a", .int(3))]), obj([("b", .int(4))]), obj([("c", .int(5))])])

@Test(arguments: [
  CallRow("get", [.array([str("a"), str("b"), str("c")]), .int(1)], str("b")),
  CallRow("get", [obj([("a", str("b"))]), str("a")], str("b")),
  CallRow("get", [str("abc"), .int(1)], str("b")),
  CallRow("get", [.array([str("a"), str("b")]), str("1")], str("b")),
  CallRow("get", [.array([str("a"), str("b")]), dec("0.6")], str("b")),
  CallRow("get", [.array([str("a"), str("b")]), .int(2)], .undefined),
  CallRow("get", [.array([str("a"), str("b")]), .int(-1)], .undefined),
  CallRow("get", [.array([str("a")]), .bool(true)], .undefined),
  CallRow("get", [str("abc"), .int(3)], .undefined),
  CallRow("get", [obj([("1", str("x"))]), .int(1)], .undefined),
  CallRow("get", [obj([("a", .int(1))]), str("b")], .undefined),
  CallRow("get", [.int(5), .int(0)], .undefined),
  CallRow("get", [.null, .int(0)], .undefined),
  CallRow("get_or_default", [.undefined, .int(1)], .int(1)),
  CallRow("get_or_default", [.null, .int(1)], .int(1)),
  CallRow("get_or_default", [.int(0), .int(1)], .int(0)),
  // The default is optional: without it, Null and Undefined give Undefined.
  CallRow("get_or_default", [.null], .undefined),
  CallRow("get_or_default", [.undefined], .undefined),
  CallRow("get_or_default", [.string("x")], .string("x")),
  CallRow("isNull", [.int(5)], .bool(false)),
  CallRow("isNull", [.null], .bool(true)),
  CallRow("isNull", [.undefined], .bool(false)),
  CallRow("isUndefined", [.int(5)], .bool(false)),
  CallRow("isUndefined", [.undefined], .bool(true)),
  CallRow("isUndefined", [.null], .bool(false)),
  CallRow(
    "transform", [str("enrichArray"), values, elements],
    .array([
      obj([("a", .int(3)), ("data1", .int(1)), ("data2", .int(2))]),
      obj([("b", .int(4)), ("data1", .int(1)), ("data2", .int(2))]),
      obj([("c", .int(5)), ("data1", .int(1)), ("data2", .int(2))]),
    ])),
  CallRow(
    "transform", [str("enrichArray"), obj([("key", .int(1))]), elements],
    .array([
      obj([("a", .int(3)), ("key", .int(1))]), obj([("b", .int(4)), ("key", .int(1))]),
      obj([("c", .int(5)), ("key", .int(1))]),
    ])),
  CallRow(
    "transform", [str("enrichArray"), obj([("a", .int(9))]), .array([obj([("a", .int(3))]), .int(7)])],
    .array([obj([("a", .int(9))]), .int(7)])),
  CallRow("transform", [str("other"), values, elements], .undefined),
  CallRow("transform", [str("enrichArray"), .array([]), elements], .undefined),
  CallRow("transform", [str("enrichArray"), values, values], .undefined),
])
func collectionFunction(_ row: CallRow) {
  #expect(invoke(row.name, row.arguments, version: row.version) == row.expected)
}

@Test func isUndefinedOfAFailedCall() {
  #expect(invoke("isUndefined", [invoke("floor", [.array([.int(1), .int(2), .int(3)])])]) == .bool(true))
}

@Test func transformRefusesResultsOver128KiB() {
  let big = str(String(repeating: "x", count: 70 * 1024))
  let result = invoke("transform", [str("enrichArray"), obj([("pad", big)]), .array([obj([]), obj([])])])
  #expect(result == .undefined)
}

@Test func transformRejectsAConstantUnknownMode() throws {
  let prepare = try #require(FunctionRegistry.lookup("transform")?.prepare)
  #expect(throws: FunctionPrepareError.self) { _ = try prepare([str("merge"), nil, nil], .v2016_03_23) }
  #expect(try prepare([str("enrichArray"), nil, nil], .v2016_03_23) == nil)
}

@Test func transformOfWideObjectsMatchesSettingEachMember() {
  let attributes = OrderedObject((0..<300).map { ("k\($0)", Value.int($0)) })
  let own = OrderedObject([("k7", .int(-7)), ("mine", .bool(true))])
  var expected = own
  for (key, value) in attributes.members { expected[key] = value }
  let result = invoke(
    "transform", [str("enrichArray"), .object(attributes), .array([.object(own), .int(1)])])
  #expect(result == .array([.object(expected), .int(1)]))
  if case .array(let elements) = result, case .object(let first) = elements[0] {
    #expect(first.keys == expected.keys)
  }
}

@Test func transformWhoseResultMustPassTheLimitIsUndefined() {
  // 40 elements each take the 4 KiB object: more than 128 KiB however the elements look.
  let attributes = obj([("pad", str(String(repeating: "x", count: 4 * 1024)))])
  #expect(
    invoke("transform", [str("enrichArray"), attributes, .array(Array(repeating: obj([]), count: 40))])
      == .undefined)
  // 20 of them stay under it.
  #expect(
    invoke("transform", [str("enrichArray"), attributes, .array(Array(repeating: obj([]), count: 20))])
      != .undefined)
}
