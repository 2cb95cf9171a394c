import Foundation
import Testing

@testable import IoTSQL

/// The conformance fixtures: cases written from the AWS IoT SQL reference, one JSON file a guide page.
///
/// Each file is an array of cases:
///
///     {"page": "<AWS guide page URL>", "name": "...", "sql": "...", "topic": "a/b",
///      "payload": <JSON> | "payload_text": "<exact bytes as text>" | "payload_base64": "...",
///      "sql_version": "2015-10-08"?, "context": {"clientid", "principal", "accountid", "traceid",
///      "sourceip", "timestamp_ms"}?,
///      "expect": {"payload": <JSON>} | {"text": "<exact output text>"} | {"payload_base64": "..."}
///              | {"no_match": true} | {"error": "parse" | "compile"} | {"empty": true}
///              | {"template": "<rendered text>"}}
///
/// A case with `"template": "${...}"` renders that substitution template for the message (with the
/// statement's SET variables) and expects `{"template": ...}`.
///
/// `payload` is written out as compact JSON; `payload_text` gives the exact bytes when their spelling
/// matters (`10.0` under 2015-10-08). An expected `payload` is compared structurally, numbers by value
/// (so `10` equals `10.0`); `text` compares the output bytes exactly.
private let conformanceFolder = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().appendingPathComponent("Conformance")

/// One case of a fixture file.
struct ConformanceCase: Sendable, CustomTestStringConvertible {
  /// The fixture file's name without extension.
  var file: String
  /// The case's name, unique within its file.
  var name: String
  /// The AWS guide page the case is written from.
  var page: String
  /// The statement.
  var sql: String
  /// The topic the message is published to.
  var topic: String
  /// The payload bytes.
  var payload: [UInt8]
  /// The rule's SQL version.
  var version: SQLVersion
  /// The pinned context fields.
  var context: OrderedObject
  /// The expected outcome object.
  var expect: OrderedObject
  /// A substitution template to render, for `{"template": ...}` expectations.
  var template: String?
  /// Set when the case itself could not be read: the test fails with this message.
  var problem: String?

  var testDescription: String { "\(file)/\(name)" }
}

/// Every case of every fixture file, in file order.
let conformanceCases: [ConformanceCase] = {
  let names = (try? FileManager.default.contentsOfDirectory(atPath: conformanceFolder.path)) ?? []
  var cases: [ConformanceCase] = []
  for fileName in names.filter({ $0.hasSuffix(".json") }).sorted() {
    let file = String(fileName.dropLast(5))
    let url = conformanceFolder.appendingPathComponent(fileName)
    let bad = { (message: String) in
      ConformanceCase(
        file: file, name: "(file)", page: "", sql: "", topic: "", payload: [], version: .default,
        context: [:],
        expect: [:], problem: message)
    }
    guard let data = FileManager.default.contents(atPath: url.path) else {
      cases.append(bad("cannot read \(fileName)"))
      continue
    }
    let document: Value
    do {
      document = try JSONReader.parse([UInt8](data), options: JSONReadOptions(wholeDecimalsAsInt: false))
    } catch {
      cases.append(bad("\(fileName) is not JSON: \(error)"))
      continue
    }
    guard case .array(let items) = document else {
      cases.append(bad("\(fileName) is not an array of cases"))
      continue
    }
    for (index, item) in items.enumerated() {
      cases.append(ConformanceCase.read(item, file: file, index: index))
    }
  }
  return cases
}()

extension ConformanceCase {
  /// Reads one case; a malformed one becomes a case whose `problem` says what is wrong.
  static func read(_ item: Value, file: String, index: Int) -> ConformanceCase {
    var result = ConformanceCase(
      file: file, name: "#\(index)", page: "", sql: "", topic: "", payload: [], version: .default,
      context: [:], expect: [:])
    guard case .object(let fields) = item else {
      result.problem = "case \(index) is not an object"
      return result
    }
    func string(_ key: String) -> String? {
      if case .string(let text)? = fields[key] { return text }
      return nil
    }
    if let name = string("name") { result.name = name }
    result.template = string("template")
    guard let page = string("page"), let sql = string("sql"), let topic = string("topic") else {
      result.problem = "case \(index) needs \"page\", \"name\", \"sql\" and \"topic\" strings"
      return result
    }
    result.page = page
    result.sql = sql
    result.topic = topic
    if let text = string("payload_text") {
      result.payload = Array(text.utf8)
    } else if let encoded = string("payload_base64") {
      guard let data = Data(base64Encoded: encoded) else {
        result.problem = "\"payload_base64\" is not base64"
        return result
      }
      result.payload = [UInt8](data)
    } else if let value = fields["payload"] {
      JSONWriter.write(value, into: &result.payload)
    } else {
      result.problem = "case needs \"payload\", \"payload_text\" or \"payload_base64\""
      return result
    }
    if let name = string("sql_version") {
      guard let version = SQLVersion(string: name) else {
        result.problem = "unknown sql_version \(name)"
        return result
      }
      result.version = version
    }
    if case .object(let context)? = fields["context"] { result.context = context }
    guard case .object(let expect)? = fields["expect"], expect.count == 1 else {
      result.problem = "case needs an \"expect\" object with one member"
      return result
    }
    result.expect = expect
    return result
  }

  /// The evaluation context: the topic, the payload, and the pinned fields.
  var evaluationContext: EvaluationContext {
    var context = EvaluationContext(topic: topic, payload: payload, timestampMs: 1_481_825_251_155)
    for (key, value) in self.context.members {
      switch (key, value) {
      case ("clientid", .string(let text)): context.clientID = text
      case ("principal", .string(let text)): context.principal = text
      case ("accountid", .string(let text)): context.accountID = text
      case ("traceid", .string(let text)): context.traceID = text
      case ("sourceip", .string(let text)): context.sourceIP = text
      case ("timestamp_ms", .int(let ms)): context.timestampMs = ms
      default: break
      }
    }
    return context
  }
}

/// What running a case gave, in the vocabulary of `expect`.
enum ConformanceOutcome: Equatable, CustomStringConvertible {
  case error(Diagnostic.Stage, String)
  case noMatch
  case output([UInt8])
  case rendered(String)

  var description: String {
    switch self {
    case .error(let stage, let message): "\(stage.rawValue) error: \(message)"
    case .noMatch: "no match"
    case .rendered(let text): "template \"\(text)\""
    case .output(let bytes):
      bytes.isEmpty
        ? "empty payload"
        : String(validating: bytes, as: UTF8.self).map { "payload \($0)" }
          ?? "binary payload \(Data(bytes).base64EncodedString())"
    }
  }
}

/// Runs a case as `iotrules eval` does: compile, match the topic against FROM, evaluate.
func run(_ fixture: ConformanceCase) -> ConformanceOutcome {
  let program: Program
  do {
    program = try Compiler.compile(fixture.sql, version: fixture.version)
  } catch {
    return .error(error.first.stage, error.first.description)
  }
  if !program.fromMatches(fixture.topic) { return .noMatch }
  var machine = VirtualMachine()
  let context = fixture.evaluationContext
  guard let evaluation = machine.evaluate(program, context: context) else { return .noMatch }
  if let text = fixture.template {
    let template: Template
    do {
      template = try Template.compile(text, version: fixture.version, variables: program.variableNames)
    } catch {
      return .error(error.first.stage, "template: " + error.first.description)
    }
    do {
      return .rendered(
        try template.render(context: context, variables: evaluation.variables, using: &machine))
    } catch {
      return .error(.runtime, "template: " + error.diagnostic.description)
    }
  }
  return .output(evaluation.payload)
}

/// Structural equality of JSON values, numbers by value (Int 10 equals Decimal 10.0), object members
/// in any order.
func sameJSON(_ left: Value, _ right: Value) -> Bool {
  switch (left, right) {
  case (.int, .int), (.int, .decimal), (.decimal, .int), (.decimal, .decimal):
    return numericValue(left) == numericValue(right)
  case (.array(let a), .array(let b)):
    return a.count == b.count && zip(a, b).allSatisfy { sameJSON($0, $1) }
  case (.object(let a), .object(let b)):
    guard a.count == b.count else { return false }
    return a.members.allSatisfy { key, value in b[key].map { sameJSON(value, $0) } ?? false }
  default:
    return left == right
  }
}

private func numericValue(_ value: Value) -> SQLDecimal? {
  switch value {
  case .int(let number): SQLDecimal(number)
  case .decimal(let number): number
  default: nil
  }
}

@Suite struct ConformanceTests {
  @Test func thereAreAtLeastTwoHundredCases() {
    #expect(conformanceCases.count >= 200)
  }

  @Test func caseNamesAreUniqueWithinAFile() {
    var seen = Set<String>()
    for fixture in conformanceCases where fixture.problem == nil {
      #expect(seen.insert(fixture.testDescription).inserted, "repeated case name \(fixture.testDescription)")
    }
  }

  @Test(arguments: conformanceCases)
  func conformance(_ fixture: ConformanceCase) {
    if let problem = fixture.problem {
      Issue.record("\(fixture.file): \(problem)")
      return
    }
    let outcome = run(fixture)
    let context = "\(fixture.testDescription) [\(fixture.page)]\n  sql: \(fixture.sql)\n  got: \(outcome)"
    guard let (kind, expected) = Array(fixture.expect.members).first else { return }
    switch (kind, expected) {
    case ("error", .string(let stage)):
      guard case .error(let actual, _) = outcome else {
        Issue.record("expected a \(stage) error\n\(context)")
        return
      }
      #expect(actual.rawValue == stage, "expected a \(stage) error\n\(context)")
    case ("no_match", .bool(true)):
      #expect(outcome == .noMatch, "expected no match\n\(context)")
    case ("empty", .bool(true)):
      #expect(outcome == .output([]), "expected an empty payload\n\(context)")
    case ("text", .string(let text)):
      #expect(outcome == .output(Array(text.utf8)), "expected exactly \(text)\n\(context)")
    case ("template", .string(let text)):
      #expect(outcome == .rendered(text), "expected template \(text)\n\(context)")
    case ("payload_base64", .string(let encoded)):
      let bytes = Data(base64Encoded: encoded).map { [UInt8]($0) }
      #expect(bytes != nil && outcome == .output(bytes!), "expected bytes \(encoded)\n\(context)")
    case ("payload", let value):
      guard case .output(let bytes) = outcome, !bytes.isEmpty else {
        Issue.record("expected payload \(JSONWriter.string(value))\n\(context)")
        return
      }
      guard let actual = try? JSONReader.parse(bytes, options: JSONReadOptions(wholeDecimalsAsInt: false))
      else {
        Issue.record("the output is not JSON\n\(context)")
        return
      }
      #expect(sameJSON(actual, value), "expected payload \(JSONWriter.string(value))\n\(context)")
    default:
      Issue.record("unknown expectation \(kind)\n\(context)")
    }
  }
}
