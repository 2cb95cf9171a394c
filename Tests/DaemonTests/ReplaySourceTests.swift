import Actions
import Foundation
import IoTSQL
import RulesEngine
import Synchronization
import Testing

@testable import Connectors

struct ReplaySourceTests {
  /// The messages a replay of `path` delivers (each acknowledged), and its malformed lines' messages.
  func replayed(_ path: String) async throws -> (messages: [Message], malformed: [String]) {
    let malformed = Mutex<[String]>([])
    let source = ReplaySource(input: .file(path), clock: SystemClock()) { _, message in
      malformed.withLock { $0.append(message) }
    }
    let messages = Mutex<[Message]>([])
    try await source.run { message in
      messages.withLock { $0.append(message) }
      message.acknowledge(.done)
    }
    return (messages.withLock { $0 }, malformed.withLock { $0 })
  }

  /// An error record (a dead-letter file's line) replays as its message, for its rule only:
  /// `base64OriginalPayload` is the payload and `ruleName` the one rule; a record beside a payload
  /// of another kind, or with a ruleName that is no name, is malformed.
  @Test func errorRecordsReplayForTheirRule() async throws {
    let folder = temporaryFolder("replay-records")
    write(
      [
        #"{"ruleName": "hot", "topic": "a/b", "clientId": "c1", "base64OriginalPayload": "eyJ4IjoxfQ==", "failures": []}"#,
        #"{"ruleName": "hot", "topic": "a/c", "base64OriginalPayload": "eyJ4IjoxfQ==", "payload": 1}"#,
        #"{"ruleName": 7, "topic": "a/d", "base64OriginalPayload": "e30="}"#,
        #"{"topic": "a/e", "base64OriginalPayload": "%%%"}"#,
      ].joined(separator: "\n"), to: folder + "/dl.jsonl")
    let (received, errors) = try await replayed(folder + "/dl.jsonl")
    #expect(received.count == 1)
    #expect(received.first?.onlyRule == "hot" && received.first?.clientID == "c1")
    #expect(received.first.map { String(decoding: $0.payload, as: UTF8.self) } == #"{"x":1}"#)
    #expect(errors.count == 3, "\(errors)")
    #expect(
      errors.first?.hasSuffix(
        "both 'base64OriginalPayload' (an error record's) and 'payload' or 'payload_base64': give one")
        == true)
    #expect(errors.dropFirst().first?.hasSuffix("'ruleName' must be a rule's name (a string)") == true)
    #expect(errors.last?.hasSuffix("'base64OriginalPayload' is not valid base64") == true)
  }

  /// `payload_base64` is RFC 4648 base64 in whole groups of four: Foundation's decoder took `====`
  /// as a zero byte and `aG=k` as `h$`, bytes made up from text that is not base64. A scalar field
  /// holding an array or object is refused: it read as absent (the arrival time for the timestamp).
  @Test func badBase64AndContainersInScalarFieldsAreMalformed() async throws {
    let folder = temporaryFolder("replay-strict")
    write(
      [
        #"{"topic": "y/1", "payload_base64": "===="}"#,
        #"{"topic": "y/2", "payload_base64": "aG=k"}"#,
        #"{"topic": "y/3", "payload_base64": "aGVsbG8=="}"#,
        #"{"topic": "y/4", "payload_base64": "aGk"}"#,
        #"{"topic": "y/5", "payload_base64": "aGk="}"#,
        #"{"topic": "o/1", "timestamp": [1717200000000], "payload": 1}"#,
        #"{"topic": "o/2", "clientId": {"id": "dev-7"}, "payload": 1}"#,
        #"{"topic": "o/3", "payload_base64": ["aGk="]}"#,
        #"{"topic": "o/4", "payload_base64": {"x": 1}, "payload": 1}"#,
        #"{"topic": "o/5", "ruleName": ["r"], "payload": 1}"#,
      ].joined(separator: "\n"), to: folder + "/in.jsonl")
    let (received, errors) = try await replayed(folder + "/in.jsonl")
    #expect(received.map(\.topic) == ["y/5"])
    #expect(received.first?.payload == Array("hi".utf8))
    #expect(
      errors.map { $0.components(separatedBy: ": ").dropFirst().joined(separator: ": ") } == [
        "'payload_base64' is not valid base64", "'payload_base64' is not valid base64",
        "'payload_base64' is not valid base64", "'payload_base64' is not valid base64",
        "'timestamp' must be whole epoch milliseconds, not an array",
        "'clientId' must be a string, not an object",
        "'payload_base64' must be a base64 string, not an array",
        "'payload_base64' must be a base64 string, not an object",
        "'ruleName' must be a rule's name (a string), not an array",
      ], "\(errors)")
  }

  /// A payload follows JSON's grammar but is more than is read as JSON (nested past 512, a lone
  /// surrogate escape): its message carries the bytes, a Binary payload as `eval` takes them; the
  /// line, one level deeper than its payload, was refused at 512 levels, which `eval` reads. A
  /// payload with a syntax error is still a malformed line.
  @Test func aPayloadBeyondJSONsLimitsIsBinaryNotAMalformedLine() async throws {
    let folder = temporaryFolder("replay-beyond")
    func nested(_ depth: Int) -> String {
      String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }
    write(
      [
        #"{"topic": "d/512", "payload": "# + nested(512) + #"}"#,
        #"{"topic": "d/600", "clientId": "c", "payload": "# + nested(600) + #", "timestamp": 5}"#,
        #"{"topic": "d/s", "payload": {"a": "\ud800"}}"#,
        #"{"topic": "d/bad", "payload": {"a": }}"#,
        #"{"topic": "d/both", "payload": {"a": "\ud800"}, "payload_base64": "aGk="}"#,
        #"{"topic": "d/props", "payload": 1, "user_properties": {"k": "\ud800"}}"#,
      ].joined(separator: "\n"), to: folder + "/in.jsonl")
    let (received, errors) = try await replayed(folder + "/in.jsonl")
    #expect(received.map(\.topic) == ["d/512", "d/600", "d/s"], "\(errors)")
    #expect(
      received.map { String(decoding: $0.payload, as: UTF8.self) } == [
        nested(512), nested(600), #"{"a": "\ud800"}"#,
      ])
    #expect(received.dropFirst().map(\.payloadForm) == [.unknown, .unknown])
    #expect(received.dropFirst().first?.clientID == "c" && received.dropFirst().first?.receivedAtMs == 5)
    #expect(errors.count == 3, "\(errors)")
    #expect(errors.first?.contains(":4:") == true && errors.first?.contains("invalid JSON") == true)
    #expect(errors.dropFirst().first?.hasSuffix("both 'payload' and 'payload_base64': give one") == true)
    #expect(errors.last?.contains(":6:") == true && errors.last?.contains("lone surrogate") == true)
  }

  /// The error record of a 16 MiB payload replays: its base64 is a third longer, and a line past
  /// 16 MiB was skipped as too long (the message dropped out of its replay, exit 0).
  @Test func theRecordOfASixteenMiBPayloadReplays() async throws {
    let folder = temporaryFolder("replay-big-record")
    let payload = [UInt8](repeating: UInt8(ascii: "a"), count: 16 << 20)
    let record = ErrorRecord(
      ruleName: "r", topic: "big/1", traceId: "t", clientId: "c",
      base64OriginalPayload: Base64.encode(payload),
      failures: [], timestamp: 1_700_000_016_000, receivedAt: 1_700_000_000_000)
    write(record.json, to: folder + "/dl.jsonl")
    let (received, errors) = try await replayed(folder + "/dl.jsonl")
    #expect(errors.isEmpty, "\(errors.map { $0.prefix(200) })")
    #expect(received.first?.payload.count == 16 << 20)
  }

  /// An error record keeps its message's time and MQTT 5 properties, and replays as that message:
  /// a replayed record lost them (`get_user_properties('site')` was Undefined, `timestamp()` the
  /// record's time); a line's own properties are read in the MQTT spool's shape, and bad ones refused.
  @Test func errorRecordsKeepTheMessagesTimeAndProperties() async throws {
    let folder = temporaryFolder("replay-properties")
    var record = ErrorRecord(
      ruleName: "r", topic: "up/1", traceId: "t", clientId: "c", base64OriginalPayload: "e30=", failures: [],
      timestamp: 1_700_000_016_000, receivedAt: 1_700_000_000_000)
    record.mqttProperties = ["content_type": .string("application/json")]
    record.userProperties = [["site", "plant-a"], ["site", "b"]]
    #expect(
      record.json.hasSuffix(
        #""receivedAt":1700000000000,"mqtt_properties":{"content_type":"application/json"},"user_properties":[["site","plant-a"],["site","b"]]}"#
      ))
    write(
      [
        record.json,
        #"{"topic": "a/b", "payload": 1, "user_properties": {"k": "v"}, "mqtt_properties": {"response_topic": "r/1"}}"#,
        #"{"topic": "a/c", "payload": 1, "mqtt_properties": {"qos": "1"}}"#,
        #"{"topic": "a/d", "payload": 1, "user_properties": [["k"]]}"#,
        #"{"topic": "a/e", "payload": 1, "receivedAt": "yesterday"}"#,
        // As an MQTT source gives them, and as eval's pins are checked.
        #"{"topic": "a/f", "payload": 1, "mqtt_properties": {"format_indicator": "bogus"}}"#,
        #"{"topic": "a/g", "payload": 1, "mqtt_properties": {"correlation_data": "%%%"}}"#,
        // AWS's {"key", "value"} objects, as eval --batch and rule tests take them.
        #"{"topic": "a/h", "payload": 1, "user_properties": [{"key": "k", "value": "a"}, ["k", "b"]]}"#,
        #"{"topic": "a/i", "payload": 1, "user_properties": [{"key": "k", "value": "a", "x": 1}]}"#,
        // Optional fields written as null are fields not written (a serializer writing them all).
        #"{"topic": "a/j", "payload": 1, "timestamp": null, "clientId": null, "payload_base64": null, "#
          + #""mqtt_properties": null, "user_properties": null, "ruleName": null, "receivedAt": null}"#,
      ].joined(separator: "\n"), to: folder + "/dl.jsonl")
    var (received, errors) = try await replayed(folder + "/dl.jsonl")
    let nulls = received.removeLast()
    #expect(
      nulls.topic == "a/j" && nulls.clientID == nil && nulls.userProperties.isEmpty && nulls.onlyRule == nil)
    let objects = received.removeLast()
    #expect(objects.userProperties.map { [$0.key, $0.value] } == [["k", "a"], ["k", "b"]])
    #expect(
      errors.removeLast().contains(
        "'user_properties' must be an array of [key, value] pairs or {\"key\", \"value\"} objects"))
    #expect(received.count == 2)
    #expect(received.first?.receivedAtMs == 1_700_000_000_000)
    #expect(received.first?.mqttProperties == ["content_type": .string("application/json")])
    #expect(
      received.first?.userProperties.map { [$0.key, $0.value] } == [["site", "plant-a"], ["site", "b"]])
    #expect(received.last?.userProperties.map { [$0.key, $0.value] } == [["k", "v"]])
    #expect(received.last?.mqttProperties == ["response_topic": .string("r/1")])
    #expect(errors.count == 5, "\(errors)")
    #expect(errors.first?.contains("not 'qos'") == true)
    #expect(errors.dropFirst().first?.contains("'user_properties' must be") == true)
    #expect(errors.dropFirst(2).first?.hasSuffix("'receivedAt' must be whole epoch milliseconds") == true)
    #expect(errors.dropFirst(3).first?.contains("UTF8_DATA or UNSPECIFIED_BYTES, not 'bogus'") == true)
    #expect(errors.last?.contains("'mqtt_properties.correlation_data' must be base64") == true)
  }

  /// Stopped (the task cancelled) while the engine is full, a file's replay hands over no more of
  /// the block it read: the messages not taken are not counted, and the replay says the line to
  /// start again from (a block of 256 lines kept being taken, one by one as room came).
  @Test func aStopWhileFullHandsOverNoMoreOfTheBlock() async throws {
    let folder = temporaryFolder("replay-stop-full")
    // Line 10 is no JSON: past the stop, it is not said either.
    write(
      (1...20).map { $0 == 10 ? "not json" : #"{"topic": "a/b", "payload": {"n": \#($0)}}"# }.joined(
        separator: "\n"),
      to: folder + "/in.jsonl")
    let notices = Mutex<[String]>([])
    let source = ReplaySource(
      input: .file(folder + "/in.jsonl"), clock: SystemClock(),
      onMalformed: { line, _ in notices.withLock { $0.append("malformed \(line)") } },
      onNotice: { notice in notices.withLock { $0.append(notice) } })
    let taken = Mutex(0)
    let cancelled = Mutex(false)
    // An engine with room for 5: it takes 5, then each later message only once the task is
    // cancelled (a stop), when it takes none.
    let intake = MessageIntake(
      deliver: { _ in },
      deliverBatch: { messages, stopping in
        var count = 0
        for _ in messages {
          if taken.withLock({ $0 }) >= 5 {
            // Full: wait for room, which comes only after the stop.
            for _ in 0..<400 where !cancelled.withLock({ $0 }) {
              try? await Task.sleep(nanoseconds: 5_000_000)
            }
            if stopping && Task.isCancelled { return count }
          }
          taken.withLock { $0 += 1 }
          count += 1
        }
        return count
      })
    let run = Task { try await source.run(intake: intake) }
    for _ in 0..<400 where taken.withLock({ $0 }) < 5 { try await Task.sleep(nanoseconds: 5_000_000) }
    run.cancel()
    cancelled.withLock { $0 = true }
    try await run.value
    #expect(taken.withLock { $0 } == 5)
    #expect(source.currentCounts.delivered == 5 && source.currentCounts.malformed == 0)
    #expect(!notices.withLock { $0 }.contains("malformed 10"))
    #expect(
      notices.withLock { $0 }.contains {
        $0.hasSuffix("in.jsonl: stopped before line 6; that line and any after it were not processed")
      }, "\(notices.withLock { $0 })")
  }

  @Test func linesBecomeMessagesAndMalformedLinesAreCountedWithTheirNumber() async throws {
    let folder = temporaryFolder("replay")
    write(
      [
        #"{"topic": "a/b", "payload": {"x": 1}, "clientId": "c1", "timestamp": 1717200000000}"#,
        "",
        #"{"topic": "a/c", "payload_base64": "AAEC"}"#,
        #"{"topic": "a/d", "payload": {"x": "#,
        #"{"payload": 1}"#,
        #"{"topic": "a/e", "payload": [1, 2]}"#,
        #"{"topic": "a/f", "payload": "caf\u00e9 1.50", "payload": {"é": [1.50]}}"#,
        #"{"topic": "a/g", "payload": 1.50}"#,
        #"{"topic": "", "payload": 1}"#,
        #"{"topic": "a/+", "payload": 1}"#,
        #"{"topic": "a/h", "payload": {"x": 1}, "payload_base64": "AAEC"}"#,
        #"{"topic": "a/i", "payload": 2, "payload_base64": "AAEC"}"#,
        #"{"topic": "a/j", "payload": null, "payload_base64": "AAEC"}"#,
        #"{"topic": 5, "payload": 1}"#,
        #"{"topic": ["a/k"], "payload": 1}"#,
        #"{"topic": {"a": "k"}, "payload": 1}"#,
      ].joined(separator: "\n"), to: folder + "/in.jsonl")
    let malformed = Mutex<[Int]>([])
    let source = ReplaySource(input: .file(folder + "/in.jsonl"), clock: SystemClock()) { line, message in
      malformed.withLock { $0.append(line) }
      #expect(message.hasPrefix("\(folder)/in.jsonl:\(line):"))
      switch line {
      // A line cut short: file:line:column of where the JSON stops making sense.
      case 4: #expect(message.hasPrefix("\(folder)/in.jsonl:4:35: invalid JSON: unexpected end of input"))
      case 5: #expect(message.hasSuffix("missing string 'topic'"))
      case 9: #expect(message.hasSuffix("'topic' is empty"))
      case 10: #expect(message.contains("topic 'a/+' contains a wildcard"))
      case 11, 12: #expect(message.hasSuffix("both 'payload' and 'payload_base64': give one"))
      // Present but not a string: said so, not "missing".
      case 14: #expect(message.hasSuffix("'topic' must be a string, not a number"), "\(message)")
      case 15: #expect(message.hasSuffix("'topic' must be a string, not an array"), "\(message)")
      case 16: #expect(message.hasSuffix("'topic' must be a string, not an object"), "\(message)")
      default: break
      }
    }
    let messages = Mutex<[Message]>([])
    try await source.run { message in
      messages.withLock { $0.append(message) }
      message.acknowledge(.done)
    }
    let received = messages.withLock { $0 }
    #expect(received.map(\.topic) == ["a/b", "a/c", "a/e", "a/f", "a/g", "a/j"])
    // `"payload": null` beside payload_base64 (a serializer writing every field) is no conflict.
    #expect(received.last?.payload == [0, 1, 2])
    // An inline payload keeps its original bytes.
    #expect(String(decoding: received[0].payload, as: UTF8.self) == #"{"x": 1}"#)
    #expect(received[0].clientID == "c1")
    #expect(received[0].receivedAtMs == 1_717_200_000_000)
    #expect(received[0].origin == "\(folder)/in.jsonl:1")
    #expect(received[1].payload == [0, 1, 2])
    #expect(String(decoding: received[2].payload, as: UTF8.self) == "[1, 2]")
    // A repeated key keeps its last value, as everywhere in JSON here; a scalar keeps its spelling.
    #expect(String(decoding: received[3].payload, as: UTF8.self) == #"{"é": [1.50]}"#)
    #expect(String(decoding: received[4].payload, as: UTF8.self) == "1.50")
    #expect(malformed.withLock { $0 } == [4, 5, 9, 10, 11, 12, 14, 15, 16])
    #expect(
      source.currentCounts
        == ReplaySource.Counts(lines: 15, delivered: 6, malformed: 9, acknowledged: 6, failed: 0))
  }

  /// A UTF-8 byte order mark at a line's start (Windows tools write one at a file's start, and
  /// files joined with `cat` carry one at each join) is not part of the line, whatever its payload
  /// (one before a scalar payload made the line "missing 'payload'", one before an object did not);
  /// one inside a line is, and makes it malformed.
  @Test func aByteOrderMarkAtALinesStartIsSkipped() async throws {
    let folder = temporaryFolder("replay-bom")
    let bom = "\u{FEFF}"
    write(
      bom + #"{"topic": "a/1", "payload": {"x": 1}}"# + "\n" + bom + #"{"topic": "a/2", "payload": 2}"# + "\n"
        + bom + #"{"topic": "a/3", "payload": true}"# + "\n" + #"{"topic": "a/4", \#(bom)"payload": 4}"#,
      to: folder + "/in.jsonl")
    let malformed = Mutex<[Int]>([])
    let source = ReplaySource(input: .file(folder + "/in.jsonl"), clock: SystemClock()) { line, _ in
      malformed.withLock { $0.append(line) }
    }
    let topics = Mutex<[String]>([])
    try await source.run { message in
      topics.withLock { $0.append(message.topic) }
      message.acknowledge(.done)
    }
    #expect(topics.withLock { $0 } == ["a/1", "a/2", "a/3"])
    #expect(malformed.withLock { $0 } == [4])
  }

  /// The envelope's reading tells `SELECT *` whether an inline payload is spelled as the writer
  /// spells it, so a rule that reads no field passes it on without reading it again: the output is
  /// the same as when the payload is read on its own.
  @Test func inlinePayloadFormsSpareSelectStarASecondReading() async throws {
    let folder = temporaryFolder("replay-forms")
    let payloads: [(String, PayloadForm)] = [
      (#"{"x":1,"s":"°C \"q\"","a":[{"v":2.5}]}"#, .canonical),
      (#"{"x":29.0,"y":[21.50,-3.0]}"#, .respellsNumbers),
      (#"{"x": 1}"#, .respellsNumbers),
      (#"{"x":1,"x":2}"#, .unknown),
      (#"{"s":"\u00e9"}"#, .unknown),
      (#"[1,{"b":true},null]"#, .canonical),
      (#"{"big":12345678901234567890.0}"#, .unknown),
    ]
    write(
      payloads.map { #"{ "topic" : "a/b",  "payload":"# + $0.0 + "}" }.joined(separator: "\n"),
      to: folder + "/in.jsonl")
    let source = ReplaySource(input: .file(folder + "/in.jsonl"), clock: SystemClock()) { _, message in
      Issue.record("unexpected malformed line: \(message)")
    }
    let messages = Mutex<[Message]>([])
    try await source.run { message in
      messages.withLock { $0.append(message) }
      message.acknowledge(.done)
    }
    let received = messages.withLock { $0 }
    #expect(received.map(\.payloadForm) == payloads.map(\.1))
    let program = try Compiler.compile("SELECT * FROM 'a/#'")
    var machine = VirtualMachine()
    for message in received {
      let known = machine.evaluate(program, context: message.evaluationContext())?.payload
      var unknown = message.evaluationContext()
      unknown.payload = message.payload
      #expect(unknown.payloadForm == .unknown)
      #expect(known == machine.evaluate(program, context: unknown)?.payload)
    }
    #expect(String(decoding: received[1].evaluationContext().payload, as: UTF8.self) == payloads[1].0)
    #expect(
      machine.evaluate(program, context: received[1].evaluationContext())?.payload
        == Array(#"{"x":29,"y":[21.5,-3]}"#.utf8))
  }

  @Test func overLongLinesAreReportedAndSkippedWithoutBufferingThem() async throws {
    let folder = temporaryFolder("replay-long")
    // Line 2 ends within a read; line 4 is longer than a whole read buffer (64 KiB) and the limit.
    let long = String(repeating: "x", count: 200_000)
    write(
      [
        #"{"topic": "a/1", "payload": {}}"#,
        #"{"topic": "a/2", "payload": {"pad": "\#(String(repeating: "y", count: 300))"}}"#,
        #"{"topic": "a/3", "payload": {}}"#,
        #"{"topic": "a/4", "payload": "\#(long)"}"#,
        #"{"topic": "a/5", "payload": {}}"#,
      ].joined(separator: "\n"), to: folder + "/in.jsonl")
    let malformed = Mutex<[(Int, String)]>([])
    let source = ReplaySource(input: .file(folder + "/in.jsonl"), clock: SystemClock(), maxLineBytes: 256) {
      line, message in malformed.withLock { $0.append((line, message)) }
    }
    let topics = Mutex<[String]>([])
    try await source.run { message in
      topics.withLock { $0.append(message.topic) }
      message.acknowledge(.done)
    }
    #expect(topics.withLock { $0 } == ["a/1", "a/3", "a/5"])
    #expect(malformed.withLock { $0.map(\.0) } == [2, 4])
    #expect(
      malformed.withLock { $0[0].1 }
        == "\(folder)/in.jsonl:2: line longer than 256 bytes (--max-line-bytes); skipped")
    #expect(source.currentCounts.malformed == 2)
    #expect(source.currentCounts.lines == 5)
  }

  /// A line's payload is the value a JSON reader keeps: the last of a repeated `payload`, a name
  /// written with escapes read as decoded, whatever kind of value each is (a repeated scalar payload
  /// gave the first one, an escaped name made the line "missing 'payload'"), as `eval --batch` reads
  /// the same line.
  @Test func aRepeatedPayloadKeepsItsLastValue() async throws {
    let folder = temporaryFolder("replay-repeated")
    write(
      #"{"topic": "a/1", "payload": {"x": 1}, "payload": 5}"# + "\n"
        + #"{"topic": "a/2", "payload": 5, "payload": "six"}"#
        + "\n" + #"{"topic": "a/3", "payload": 5, "payload": {"y": 2}}"# + "\n"
        + #"{"topic": "a/4", "p\u0061yload": true}"# + "\n",
      to: folder + "/in.jsonl")
    let source = ReplaySource(input: .file(folder + "/in.jsonl"), clock: SystemClock()) { line, reason in
      Issue.record("line \(line) refused: \(reason)")
    }
    let payloads = Mutex<[String]>([])
    try await source.run { message in
      payloads.withLock { $0.append(message.topic + " " + String(decoding: message.payload, as: UTF8.self)) }
      message.acknowledge(.done)
    }
    #expect(payloads.withLock { $0 } == ["a/1 5", #"a/2 "six""#, #"a/3 {"y": 2}"#, "a/4 true"])
  }

  /// A file replayed to its end is read as far as it reached when the replay began: the records an
  /// error action of the same rules appends to the file being replayed are not read in the same run
  /// (read, failing again and appended again, they made a replay of an error file endless).
  @Test(.timeLimit(.minutes(3))) func aReplayEndsWhereTheFileEndedWhenItBegan() async throws {
    let folder = temporaryFolder("replay-snapshot")
    let path = folder + "/in.jsonl"
    write((1...300).map { #"{"topic": "t/\#($0)", "payload": {}}"# + "\n" }.joined(), to: path)
    let appender = try #require(FileHandle(forWritingAtPath: path))
    defer { try? appender.close() }
    let source = ReplaySource(input: .file(path), clock: SystemClock()) { line, reason in
      Issue.record("line \(line) refused: \(reason)")
    }
    let topics = Mutex<[String]>([])
    try await source.run { message in
      topics.withLock { $0.append(message.topic) }
      if message.topic.hasPrefix("t/") {
        _ = try? appender.seekToEnd()
        appender.write(Data(#"{"topic": "again/1", "payload": {}}"#.utf8 + [0x0A]))
      }
      message.acknowledge(.done)
    }
    let read = topics.withLock { $0 }
    #expect(
      read.count == 300 && read == (1...300).map { "t/\($0)" }, "\(read.count) messages, \(read.suffix(3))")
    #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 600)
  }

  /// `--follow` as `tail -F`: a file truncated in place is read again from its start, a file
  /// replaced under its name is opened anew; each change is said, nothing is read twice or missed.
  @Test(.timeLimit(.minutes(3))) func followsATruncatedOrReplacedFile() async throws {
    let followed = FollowedFile("replay-rotate")
    #expect(try await followed.waitFor(2))
    // logrotate's copytruncate: the same file, emptied, then written again.
    let handle = try #require(FileHandle(forWritingAtPath: followed.path))
    try handle.truncate(atOffset: 0)
    try handle.close()
    try await Task.sleep(nanoseconds: 200_000_000)
    let again = try #require(FileHandle(forWritingAtPath: followed.path))
    try again.seekToEnd()
    again.write(Data(FollowedFile.line(3).utf8))
    try again.close()
    #expect(try await followed.waitFor(3))
    // Renamed away and created anew.
    try FileManager.default.moveItem(atPath: followed.path, toPath: followed.path + ".1")
    write(FollowedFile.line(4) + FollowedFile.line(5), to: followed.path)
    #expect(try await followed.waitFor(5))
    await followed.stop()
    let path = followed.path
    #expect(
      followed.topics.all == [
        "t/1@\(path):1", "t/2@\(path):2", "t/3@\(path):1", "t/4@\(path):1", "t/5@\(path):2",
      ])
    let said = followed.notices.all
    #expect(said.count == 2, "\(said)")
    #expect(said.first?.contains("the file was truncated; reading it from its first line") == true, "\(said)")
    #expect(said.last?.contains("the file was replaced under its name") == true, "\(said)")
    #expect(followed.source.currentCounts.malformed == 0)
  }

  /// A writer may append to its file after it was renamed away, until it reopens it (logrotate's
  /// `postrotate` signal): those lines are read, and a line it finishes there is taken whole,
  /// before the new file. (The new file was opened at the first empty read: a slow writer's lines
  /// written after the rename were lost, and a half-written line was said malformed.)
  @Test(.timeLimit(.minutes(3))) func readsWhatTheWriterAppendsAfterTheRename() async throws {
    let followed = FollowedFile("replay-rotate-wait", rotationQuietMs: 3_000)
    #expect(try await followed.waitFor(2))
    let old = try #require(FileHandle(forWritingAtPath: followed.path))
    try old.seekToEnd()
    old.write(Data(#"{"topic": "t/3", "#.utf8))
    try FileManager.default.moveItem(atPath: followed.path, toPath: followed.path + ".1")
    write(FollowedFile.line(5), to: followed.path)
    try await Task.sleep(nanoseconds: 300_000_000)
    old.write(Data(#""payload": {}}"#.utf8 + [0x0A]))
    try await Task.sleep(nanoseconds: 300_000_000)
    old.write(Data(FollowedFile.line(4).utf8))
    try old.close()
    for _ in 0..<500 where followed.topics.all.count < 5 { try await Task.sleep(nanoseconds: 10_000_000) }
    await followed.stop()
    #expect(followed.topics.all.map { $0.prefix { $0 != "@" } } == (1...5).map { "t/\($0)" })
    #expect(followed.source.currentCounts.malformed == 0)
  }

  /// A stop while the file renamed away is still awaited says the new file's lines were not read
  /// (nothing was said: the file read was read to its end).
  @Test(.timeLimit(.minutes(3))) func aStopWhileTheRenamedFileIsAwaitedSaysSo() async throws {
    let followed = FollowedFile("replay-rotate-stop", rotationQuietMs: 60_000)
    #expect(try await followed.waitFor(2))
    try FileManager.default.moveItem(atPath: followed.path, toPath: followed.path + ".1")
    write(FollowedFile.line(3), to: followed.path)
    try await Task.sleep(nanoseconds: 500_000_000)
    await followed.stop()
    #expect(followed.topics.all.count == 2)
    #expect(
      followed.notices.all.contains {
        $0.hasSuffix("not processed, nor any line of the new file at \(followed.path)")
          && $0.contains("renamed since to \(followed.path).1")
      }, "\(followed.notices.all)")
  }

  /// A followed file not there yet is waited for, as `tail -F` waits (it was exit 74 at once), and
  /// a stop meanwhile ends the wait; without `follow` it is an error still.
  @Test(.timeLimit(.minutes(1))) func waitsForAFollowedFileToAppear() async throws {
    let path = temporaryFolder("replay-follow-late") + "/late/in.jsonl"
    let notices = Lines()
    let topics = Lines()
    let source = ReplaySource(
      input: .file(path), follow: true, clock: SystemClock(), onNotice: { notices.append($0) })
    let health = Health()
    let intake = MessageIntake(
      deliver: { message in
        topics.append(message.topic)
        message.acknowledge(.done)
      }, health: health)
    let run = Task { try await source.run(intake: intake) }
    for _ in 0..<200 where notices.all.isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }
    // Not ready meanwhile (it said ready while the source read nothing).
    let probe = health.probe(readiness: true)
    #expect(!probe.passes && probe.body.contains("waiting for \(path) to appear"), "\(probe.body)")
    #expect(
      notices.all == ["\(path): no such file yet; waiting for it to appear (looked for ten times a second)"])
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    write(FollowedFile.line(1) + FollowedFile.line(2), to: path)
    for _ in 0..<300 where topics.all.count < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
    #expect(topics.all == ["t/1", "t/2"])
    #expect(notices.all.last == "\(path) has appeared; following it", "\(notices.all)")
    #expect(health.probe(readiness: true).passes)
    run.cancel()
    _ = try? await run.value
    // A stop while it waits ends the run.
    let never = ReplaySource(input: .file(path + ".never"), follow: true, clock: SystemClock()) { _, _ in }
    let waiting = Task { try await never.run { _ in } }
    try await Task.sleep(nanoseconds: 150_000_000)
    waiting.cancel()
    try await waiting.value
    let unfollowed = ReplaySource(input: .file(path + ".never"), clock: SystemClock()) { _, _ in }
    await #expect(throws: ReplayError.self) { try await unfollowed.run { _ in } }
  }

  /// A followed file rotated twice while the reader is still behind on the first (a backlog behind
  /// a slow action): every file is read, in order. (The middle one was never read.)
  @Test(.timeLimit(.minutes(3))) func readsEveryFileOfRotationsDuringABacklog() async throws {
    let path = temporaryFolder("replay-rotate-twice") + "/in.jsonl"
    let pad = String(repeating: "x", count: 1_000)
    func line(_ n: Int) -> String { #"{"topic": "t/\#(n)", "payload": {"pad": "\#(pad)"}}"# + "\n" }
    write((1...3_000).map(line).joined(), to: path)
    let topics = Lines()
    let source = ReplaySource(input: .file(path), follow: true, clock: SystemClock(), rotationQuietMs: 200)
    let run = Task {
      try await source.run { message in
        // A slow action: the reader stays behind.
        try? await Task.sleep(nanoseconds: 1_000_000)
        topics.append(message.topic)
        message.acknowledge(.done)
      }
    }
    for _ in 0..<200 where topics.all.isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }
    try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
    write((3_001...3_010).map(line).joined(), to: path)
    // At the name for 1.5 s: the path is looked at ten times a second.
    try await Task.sleep(nanoseconds: 1_500_000_000)
    try FileManager.default.moveItem(atPath: path + ".1", toPath: path + ".2")
    try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
    write((3_011...3_020).map(line).joined(), to: path)
    #expect(topics.all.count < 3_000, "no backlog left: the test shows nothing")
    for _ in 0..<6_000 where topics.all.count < 3_020 { try await Task.sleep(nanoseconds: 10_000_000) }
    run.cancel()
    _ = try? await run.value
    let read = topics.all
    let inOrder = read == (1...3_020).map { "t/\($0)" }
    let missing = Set((1...3_020).map { "t/\($0)" }).subtracting(read)
    #expect(inOrder, "\(read.count) messages; missing \(missing.count): \(missing.sorted().prefix(3))")
  }

  /// A stop while a followed file renamed away is still being read (logrotate's `create` during a
  /// backlog) names the file read by its new name and says the new file at the path was not read:
  /// it named the path, and a replay from that line skipped the rest of the old file.
  @Test func aStopInARenamedFileNamesIt() throws {
    let folder = temporaryFolder("replay-stop-renamed")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/in.jsonl"
    write(FollowedFile.line(1), to: path)
    let source = ReplaySource(input: .file(path), clock: SystemClock()) { _, _ in }
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    #expect(
      source.stoppedNotice("line 2", fd: fd)
        == "\(path): stopped before line 2; that line and any after it were not processed")
    try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
    #expect(
      source.stoppedNotice("line 2", fd: fd)
        == "\(path): stopped before line 2 of the file read, renamed since to \(path).1; that line and any after it were not processed"
    )
    write(FollowedFile.line(1), to: path)
    #expect(
      source.stoppedNotice("line 2", fd: fd)
        == "\(path): stopped before line 2 of the file read, renamed since to \(path).1; that line and any after it were not processed, nor any line of the new file at \(path)"
    )
  }

  /// Lines appended just before the file is renamed away (logrotate's `create`) are read from the
  /// old file before the new one is opened, as `tail -F` reads them: they were lost.
  @Test(.timeLimit(.minutes(3))) func readsARenamedFileToItsEnd() async throws {
    let followed = FollowedFile("replay-renamed")
    #expect(try await followed.waitFor(2))
    // At its end-of-file polls now: lines 3 and 4 come, and the file is renamed, between two looks.
    try await Task.sleep(nanoseconds: 120_000_000)
    let handle = try #require(FileHandle(forWritingAtPath: followed.path))
    try handle.seekToEnd()
    handle.write(Data((FollowedFile.line(3) + FollowedFile.line(4)).utf8))
    try handle.close()
    try FileManager.default.moveItem(atPath: followed.path, toPath: followed.path + ".1")
    write(FollowedFile.line(5), to: followed.path)
    #expect(try await followed.waitFor(5))
    await followed.stop()
    #expect(followed.topics.all.map { $0.prefix { $0 != "@" } } == (1...5).map { "t/\($0)" })
  }

  /// A file truncated and at once written past where it was read (copytruncate, then a burst of
  /// writes before the next look) is read again from its start: its size alone does not show it,
  /// and reading on from the old offset lost the lines before it without a word.
  @Test(.timeLimit(.minutes(3))) func followsAFileTruncatedAndRegrown() async throws {
    let followed = FollowedFile("replay-regrown")
    #expect(try await followed.waitFor(2))
    try await Task.sleep(nanoseconds: 120_000_000)
    // Truncated and written again in one go, longer than before.
    let handle = try #require(FileHandle(forWritingAtPath: followed.path))
    try handle.truncate(atOffset: 0)
    handle.write(Data((3...7).map(FollowedFile.line).joined().utf8))
    try handle.close()
    #expect(try await followed.waitFor(7))
    await followed.stop()
    #expect(followed.topics.all.map { $0.prefix { $0 != "@" } } == (1...7).map { "t/\($0)" })
    #expect(followed.notices.all.count == 1, "\(followed.notices.all)")
    #expect(followed.source.currentCounts.malformed == 0)
  }

  /// A replay of a file cancelled (SIGTERM) stops at the line it reached, saying which: the lines
  /// read but not handed over stay unprocessed, to be run again, and the stop waits for what is in
  /// flight only. (It delivered every line of the 64 KiB block read, however slow the actions.)
  /// Lines of 128 bytes end each block at a line's end: stopped while handing over a block's last
  /// lines, nothing of the block was left, and the stop went unsaid (exit 0, an incomplete replay
  /// told by nothing).
  @Test(.timeLimit(.minutes(3)), arguments: [1, ReplaySource.maxBatch + 1])
  func aCancelledFileReplayStopsAtTheLineItReached(waitingMessage: Int) async throws {
    let path = temporaryFolder("replay-stop") + "/in.jsonl"
    let lines = (1...1_000).map { number in
      let line = #"{"topic": "t", "payload": \#(number), "pad": ""#
      return line + String(repeating: "x", count: 127 - line.utf8.count - 2) + "\"}\n"
    }
    #expect(lines.allSatisfy { $0.utf8.count == 128 } && 128 * 512 == 1 << 16)
    write(lines.joined(), to: path)
    let notices = Lines()
    let received = Mutex(0)
    let released = Mutex(false)
    let source = ReplaySource(
      input: .file(path), clock: SystemClock(), onMalformed: { _, _ in }, onNotice: { notices.append($0) })
    let run = Task {
      try await source.run { message in
        // The waiting message waits until the test has cancelled the run.
        if received.withLock({
          $0 += 1; return $0
        }) == waitingMessage {
          for _ in 0..<1_000 where !released.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(2)) }
        }
        message.acknowledge(.done)
      }
    }
    for _ in 0..<1_000 where received.withLock({ $0 }) < waitingMessage {
      try await Task.sleep(for: .milliseconds(2))
    }
    run.cancel()
    released.withLock { $0 = true }
    try await run.value
    // The block of lines handed over when the run was cancelled, and no more.
    let count = received.withLock { $0 }
    #expect(count == (waitingMessage == 1 ? 1 : 2) * ReplaySource.maxBatch)
    #expect(
      notices.all == [
        "\(path): stopped before line \(count + 1); that line and any after it were not processed"
      ])
  }

  @Test func parsesSourceArguments() {
    #expect(ReplaySource.input(parsing: "-") == .standardInput)
    #expect(ReplaySource.input(parsing: "file:x.jsonl") == .file("x.jsonl"))
    #expect(ReplaySource.input(parsing: "mqtt://x") == nil)
  }
}

/// A replay following a file that starts with lines 1 and 2: the topics it delivers (`t/N@origin`)
/// and the notices it gives.
private struct FollowedFile {
  let path: String
  let notices = Lines()
  let topics = Lines()
  let source: ReplaySource
  let run: Task<Void, any Error>

  static func line(_ n: Int) -> String { #"{"topic": "t/\#(n)", "payload": {}}"# + "\n" }

  init(_ name: String, rotationQuietMs: Int = 300) {
    path = temporaryFolder(name) + "/in.jsonl"
    write(Self.line(1) + Self.line(2), to: path)
    let notices = notices
    let topics = topics
    let source = ReplaySource(
      input: .file(path), follow: true, clock: SystemClock(), rotationQuietMs: rotationQuietMs,
      onNotice: { notices.append($0) })
    self.source = source
    run = Task {
      try await source.run { message in
        topics.append(message.topic + "@" + message.origin)
        message.acknowledge(.done)
      }
    }
  }

  /// Whether `count` messages came within two seconds.
  func waitFor(_ count: Int) async throws -> Bool {
    for _ in 0..<200 {
      if topics.all.count >= count { return true }
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    return false
  }

  func stop() async {
    run.cancel()
    _ = try? await run.value
  }
}

/// Lines collected from any task.
private final class Lines: Sendable {
  let lines = Mutex<[String]>([])
  func append(_ line: String) { lines.withLock { $0.append(line) } }
  var all: [String] { lines.withLock { $0 } }
}
