import Foundation
import Logging
import RulesEngine
import Testing

@testable import Daemon

@Suite struct TextLogHandlerTests {
  /// A value from a message cannot forge a log record: metadata is one line, escaped; a message keeps
  /// its lines (a SQL error's caret) but each further one is marked as a continuation.
  @Test func valuesCannotForgeRecords() {
    let forged = "x\n2026-12-01T05:00:00+0000 critical iotrules: [Daemon] FORGED\u{1B}[2J"
    #expect(
      TextLogHandler.escaped(.string(forged))
        == .string(#""x\n2026-12-01T05:00:00+0000 critical iotrules: [Daemon] FORGED\u{1B}[2J""#))
    // Nor a field: a value with a space, '=' or '"' is quoted, its quotes and backslashes escaped.
    #expect(
      TextLogHandler.escaped(.string(#"a/x origin=forged.jsonl:99 rule=admin"#))
        == .string(#""a/x origin=forged.jsonl:99 rule=admin""#))
    #expect(TextLogHandler.escaped(.string(#"x\" rule=admin"#)) == .string(#""x\\\" rule=admin""#))
    // Also a quote followed by a combining mark (one Character, which no `"` matched).
    #expect(
      TextLogHandler.escaped(.string("x\"\u{301} rule=admin")) == .string("\"x\\\"\u{301} rule=admin\""))
    // A tab splits fields for a whitespace or logfmt reader as a space does: the value is quoted.
    #expect(TextLogHandler.escaped(.string("sensors/tab\there")) == .string("\"sensors/tab\there\""))
    #expect(TextLogHandler.escaped(.stringConvertible(42)) == .string("42"))
    // A logger's own metadata too.
    var handler = TextLogHandler(label: "t")
    handler[metadataKey: "connection"] = .string("mqtt republish mqtt://h")
    // Read back as given (set back, it is not escaped twice).
    #expect(handler[metadataKey: "connection"] == .string("mqtt republish mqtt://h"))
    #expect(handler.writtenMetadata["connection"] == .string("\"mqtt republish mqtt://h\""))
    handler.metadata = ["client": .string("a b")]
    #expect(handler.metadata == ["client": .string("a b")])
    #expect(handler.writtenMetadata == ["client": .string("\"a b\"")])
    #expect(TextLogHandler.escaped(.array([.string("a\rb")])) == .array([.string(#"a\rb"#)]))
    // Inside an array (which swift-log writes quoted), a value with spaces is not quoted again.
    #expect(TextLogHandler.escaped(.array([.string("… 12 more")])) == .array([.string("… 12 more")]))
    #expect(TextLogHandler.escaped("tab\tkept") == "tab\tkept")
    #expect(TextLogHandler.escaped("csi\u{9B}2J line\u{2028}sep") == #"csi\u{9B}2J line\u{2028}sep"#)
    // A bidirectional control from a topic reversed how the rest of the line showed (Trojan Source).
    #expect(
      TextLogHandler.escaped("topic=\u{202E}lmth.exe \u{2066}x\u{2069}")
        == #"topic=\u{202E}lmth.exe \u{2066}x\u{2069}"#)
    #expect(
      TextLogHandler.safeMessage("r.json:1:8: error: bad\n  SELECT x\n         ^")
        == "r.json:1:8: error: bad\n    |   SELECT x\n    |          ^")
    #expect(!TextLogHandler.safeMessage(forged).contains("\n2026"))
  }

  /// JSON log lines and error records escape U+2028, U+2029 and NEL (U+0085): valid raw in JSON,
  /// but line breaks to `splitlines()` readers, which broke a record in two (a rendered path's NEL
  /// in a dead-letter record's `errorMessage` did).
  @Test func jsonTextEscapesTheUnicodeLineSeparators() {
    #expect(ErrorRecord.quote("a\u{2028}b\u{2029}c\u{85}d") == #""a\u2028b\u2029c\u0085d""#)
    // Other C1 controls are no line breaks: kept as they are.
    #expect(ErrorRecord.quote("a\u{84}b") == "\"a\u{84}b\"")
    // Bidirectional controls are escaped: the same JSON, shown in its order.
    #expect(ErrorRecord.quote("\u{202E}lmth.exe\u{200F}\u{61C}") == #""\u202elmth.exe\u200f\u061c""#)
  }

  /// The members after AWS's fields (`origin`, `mqtt_properties`, `user_properties`) escape them as
  /// well: a device's user property held them raw and `splitlines()` broke its dead letter in six.
  @Test func errorRecordPropertiesEscapeTheUnicodeLineSeparators() throws {
    var record = ErrorRecord(
      ruleName: "r", topic: "t", traceId: "id", clientId: "c", base64OriginalPayload: "", failures: [],
      timestamp: 1, origin: "in\u{2028}.jsonl:1")
    record.userProperties = [["site", "a\u{2028}b\u{85}c\u{2029}d"]]
    record.mqttProperties = ["content_type": .string("x\u{2028}y\u{2005}é")]
    let line = record.json
    #expect(line.split(whereSeparator: \.isNewline).count == 1)
    #expect(line.contains(#""origin":"in\u2028.jsonl:1""#))
    #expect(line.contains(#"["site","a\u2028b\u0085c\u2029d"]"#))
    // Other characters beyond ASCII (U+2005 shares U+2028's first two bytes) are kept raw.
    #expect(line.contains("\"x\\u2028y\u{2005}é\""))
    let decoded = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    #expect((decoded?["user_properties"] as? [[String]]) == record.userProperties)
    #expect((decoded?["origin"] as? String) == record.origin)
  }

  /// JSON records carry milliseconds (records of one second stay in order against other logs).
  @Test func jsonTimestampsHaveMilliseconds() {
    #expect(
      JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_764_692_686.0071)) == "2025-12-02T16:24:46.007Z")
    #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
  }
}
