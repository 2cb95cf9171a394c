import Foundation
import Testing

@testable import IoTSQL

private struct Secrets: SecretStore {
  func secret(named id: String) -> String? {
    switch id {
    case "API_KEY": return "{\"API_KEY_VALUE\": \"s3cr3t\"}"
    case "plain": return "hunter2"
    default: return nil
    }
  }
}

private let full = EvaluationContext(
  topic: "things/myThings/thingOne", payload: [], clientID: "client-1", principal: "ba67293a",
  accountID: "123456789012", traceID: "12345678-1234-1234-1234-123456789012", sourceIP: "10.0.0.7",
  timestampMs: 1_481_825_251_155,
  mqttProperties: [
    "content_type": str("application/json"), "format_indicator": str("UTF8_DATA"), "message_expiry": .int(30),
  ],
  userProperties: [(key: "env", value: "prod"), (key: "env", value: "test"), (key: "id", value: "7")],
  secrets: Secrets())
private let bare = EvaluationContext(topic: "Buildings/Building5/Floor2/Room201/Lights", payload: [])

/// One context call.
struct ContextRow: Sendable, CustomTestStringConvertible {
  var name: String
  var arguments: [Value]
  var context: EvaluationContext
  var expected: Value
  init(_ name: String, _ arguments: [Value], _ context: EvaluationContext, _ expected: Value) {
    self.name = name
    self.arguments = arguments
    self.context = context
    self.expected = expected
  }
  var testDescription: String { "\(name)(\(arguments)) on \(context.topic)" }
}

@Test(arguments: [
  ContextRow("topic", [], full, str("things/myThings/thingOne")),
  ContextRow("topic", [.int(1)], full, str("things")),
  ContextRow("topic", [.int(3)], full, str("thingOne")),
  ContextRow("topic", [.int(3)], bare, str("Floor2")),
  ContextRow("topic", [str("2")], full, str("myThings")),
  ContextRow("topic", [.int(0)], full, .undefined),
  ContextRow("topic", [.int(4)], full, .undefined),
  ContextRow("topic", [.null], full, .undefined),
  ContextRow("clientid", [], full, str("client-1")),
  ContextRow("clientid", [], bare, str("n/a")),
  ContextRow("principal", [], full, str("ba67293a")),
  ContextRow("principal", [], bare, .undefined),
  ContextRow("accountid", [], full, str("123456789012")),
  ContextRow("accountid", [], bare, .undefined),
  ContextRow("traceid", [], full, str("12345678-1234-1234-1234-123456789012")),
  ContextRow("traceid", [], bare, .undefined),
  ContextRow("sourceip", [], full, str("10.0.0.7")),
  ContextRow("sourceip", [], bare, .undefined),
  ContextRow("timestamp", [], full, .int(1_481_825_251_155)),
  ContextRow("get_mqtt_property", [str("content_type")], full, str("application/json")),
  ContextRow("get_mqtt_property", [str("format_indicator")], full, str("UTF8_DATA")),
  ContextRow("get_mqtt_property", [str("response_topic")], full, .undefined),
  ContextRow("get_mqtt_property", [str("format_indicator")], bare, str("UNSPECIFIED_BYTES")),
  ContextRow("get_mqtt_property", [str("content_type")], bare, .undefined),
  ContextRow("get_mqtt_property", [str("message_expiry")], full, .undefined),
  ContextRow("get_mqtt_property", [str("Content_Type")], full, .undefined),
  ContextRow("get_mqtt_property", [.int(1)], full, .undefined),
  ContextRow("get_user_properties", [str("env")], full, .array([str("prod"), str("test")])),
  ContextRow("get_user_properties", [str("id")], full, .array([str("7")])),
  ContextRow("get_user_properties", [str("none")], full, .undefined),
  ContextRow(
    "get_user_properties", [], full,
    .array([obj([("env", str("prod"))]), obj([("env", str("test"))]), obj([("id", str("7"))])])),
  ContextRow("get_user_properties", [], bare, .undefined),
  ContextRow("get_secret", [str("plain")], full, str("hunter2")),
  ContextRow("get_secret", [str("plain"), str("SecretString"), str("arn:role")], full, str("hunter2")),
  ContextRow("get_secret", [str("plain"), str("SecretBinary"), str("arn:role")], full, str("aHVudGVyMg==")),
  ContextRow("get_secret", [str("missing"), str("SecretString")], full, .undefined),
  ContextRow("get_secret", [str("plain")], bare, .undefined),
  ContextRow("get_secret", [str("plain"), str("Other")], full, .undefined),
  ContextRow("get_secret", [.int(1)], full, .undefined),
])
func contextFunction(_ row: ContextRow) {
  #expect(invoke(row.name, row.arguments, context: row.context) == row.expected)
}

@Test(.enabled(if: jsonReaderAvailable, "needs the JSON reader of branch json"))
func getSecretReadsAKeyOfAJSONSecret() {
  let args = [str("API_KEY"), str("SecretString"), str("API_KEY_VALUE"), str("arn:role")]
  #expect(invoke("get_secret", args, context: full) == str("s3cr3t"))
  let plain = [str("plain"), str("SecretString"), str("k"), str("arn:role")]
  #expect(invoke("get_secret", plain, context: full) == .undefined)
}

@Test func sqlVersionAndUUID() throws {
  #expect(invoke("sql_version", [], version: .v2015_10_08) == str("2015-10-08"))
  #expect(invoke("sql_version", []) == str("2016-03-23"))
  guard case .string(let first) = invoke("newuuid", []), case .string(let second) = invoke("newuuid", [])
  else {
    Issue.record("newuuid is not a string")
    return
  }
  #expect(first.count == 36 && first == first.lowercased() && first != second)
  #expect(UUID(uuidString: first) != nil)
}

/// Version 4 UUIDs, spelled as AWS's: the version digit 4, the variant bits 10, lower case.
@Test func randomUUIDsAreVersion4() {
  #expect(
    RandomUUID.string(high: .max, low: .max) == "ffffffff-ffff-4fff-bfff-ffffffffffff")
  #expect(RandomUUID.string(high: 0, low: 0) == "00000000-0000-4000-8000-000000000000")
  #expect(
    RandomUUID.string(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
      == "01234567-89ab-4def-bedc-ba9876543210")
  let many = (0..<1_000).map { _ in RandomUUID.string() }
  #expect(Set(many).count == 1_000)
  for uuid in many.prefix(50) {
    let digits = Array(uuid)
    #expect(digits.count == 36 && digits[14] == "4" && "89ab".contains(digits[19]))
    #expect(UUID(uuidString: uuid)?.uuidString.lowercased() == uuid)
  }
}

/// UUIDs drawn from many threads at once, across many refills of the shared random words: each is
/// drawn once.
@Test func randomUUIDsFromManyThreadsAreDistinct() async {
  let drawn = await withTaskGroup(of: [String].self) { group in
    for _ in 0..<8 { group.addTask { (0..<500).map { _ in RandomUUID.string() } } }
    return await group.reduce(into: [String]()) { $0 += $1 }
  }
  #expect(drawn.count == 4_000 && Set(drawn).count == 4_000)
}

@Test(arguments: [
  "topic", "clientid", "principal", "accountid", "traceid", "sourceip", "timestamp", "newuuid", "sql_version",
  "get_mqtt_property", "get_user_properties", "get_secret",
])
func contextFunctionsAreNotFolded(_ name: String) throws {
  let spec = try #require(FunctionRegistry.lookup(name))
  #expect(spec.isDeterministic == false)
  #expect(spec.family == "context")
}

/// Basic Ingest topics: the rule name and the rule's topic; anything else is no Basic Ingest topic.
@Test func basicIngestSplit() throws {
  let parts = try #require(BasicIngest.split("$aws/rules/BuildingManager/Buildings/Building5"))
  #expect(parts.rule == "BuildingManager" && parts.topic == "Buildings/Building5")
  for topic in [
    "$aws/rules/r", "$aws/rules/r/", "$aws/rules//a", "$aws/things/x/shadow", "aws/rules/r/a", "$aws/rules",
  ] {
    #expect(BasicIngest.split(topic) == nil, "\(topic)")
  }
  #expect(BasicIngest.ruleTopic("$aws/rules/r/a/b") == "a/b")
  #expect(BasicIngest.ruleTopic("$aws/things/x") == "$aws/things/x")
  // Templates see the rule's topic too.
  let template = try Template.compile("${topic()}|${topic(1)}|${upper(topic(2))}")
  let context = EvaluationContext(topic: "$aws/rules/r/site/dev-1", payload: [])
  #expect(try template.render(context: context, variables: []) == "site/dev-1|site|DEV-1")
}

/// Topic levels by byte offsets agree with splitting on "/", empty levels included, and the path for
/// a String without contiguous UTF-8 agrees with the fast one.
@Test func topicLevelsAgreeWithSplitting() {
  let topics = ["a/b/c", "a//c", "/a", "a/", "/", "", "naïve/ü/x", "sensors/dev-01/data/extra/levels"]
  for topic in topics {
    let levels = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    for index in 0...(levels.count + 1) {
      let expected = index >= 1 && index <= levels.count ? levels[index - 1] : nil
      #expect(ContextFunctions.topicLevel(topic, index).map(String.init) == expected, "\(topic) \(index)")
      let range = ContextFunctions.levelRange(Array(topic.utf8), index)
      let viaBytes = index >= 1 ? range.map { String(decoding: Array(topic.utf8)[$0], as: UTF8.self) } : nil
      #expect(viaBytes == expected, "\(topic) \(index)")
    }
  }
}
