import Foundation
import IoTSQL

/// The error record handed to an error action or the dead-letter file, in AWS's error-action shape:
/// one record per rule and message, listing every failed action.
public struct ErrorRecord: Sendable, Equatable {
  /// One failed action.
  public struct Failure: Sendable, Equatable {
    /// `SqliteAction`, `FileAction`, ...
    public var failedAction: String
    /// The database and table, the path, the topic or URL.
    public var failedResource: String
    /// Why it failed.
    public var errorMessage: String
    /// True for the failure of the error action the record was on its way to (written, in a
    /// dead-letter record only, as `"errorAction": true`: not an AWS field), which otherwise read
    /// as one more of the rule's actions.
    public var isErrorAction: Bool

    /// Creates a failure.
    public init(
      failedAction: String, failedResource: String, errorMessage: String, isErrorAction: Bool = false
    ) {
      self.failedAction = failedAction
      self.failedResource = failedResource
      self.errorMessage = errorMessage
      self.isErrorAction = isErrorAction
    }
  }

  /// The rule.
  public var ruleName: String
  /// The message's topic.
  public var topic: String
  /// A trace id for the message (generated when the source has none), written twice: as `traceId`
  /// and under AWS's name, `cloudwatchTraceId`, so a consumer written for AWS's records finds it.
  public var traceId: String
  /// The publisher's client id, or `n/a`.
  public var clientId: String
  /// The original payload in base64.
  public var base64OriginalPayload: String
  /// The failed actions.
  public var failures: [Failure]
  /// When the record was made, epoch milliseconds.
  public var timestamp: Int
  /// Where the message came from (`sensors.jsonl:17`): not an AWS field, written as `origin`.
  public var origin: String
  /// When the message arrived, epoch milliseconds (nil: unknown): not an AWS field, written as
  /// `receivedAt`, so that a replayed record's `timestamp()` is the message's, not the record's.
  public var receivedAt: Int?
  /// The message's MQTT 5 properties by their context names (`content_type`, `format_indicator`,
  /// `response_topic`, `correlation_data`): written as `mqtt_properties` when it had any, as the
  /// MQTT spool writes them and the replay source reads them, so a replayed record is the message.
  public var mqttProperties: [String: Value] = [:]
  /// The message's MQTT 5 user properties, in order, each a key and a value: written as
  /// `user_properties`, `[[key, value], ...]`, when it had any.
  public var userProperties: [[String]] = []

  /// Creates a record.
  public init(
    ruleName: String, topic: String, traceId: String, clientId: String, base64OriginalPayload: String,
    failures: [Failure], timestamp: Int, origin: String = "", receivedAt: Int? = nil
  ) {
    self.ruleName = ruleName
    self.topic = topic
    self.traceId = traceId
    self.clientId = clientId
    self.base64OriginalPayload = base64OriginalPayload
    self.failures = failures
    self.timestamp = timestamp
    self.origin = origin
    self.receivedAt = receivedAt
  }

  /// The members written after AWS's fields and `timestamp`: `origin`, `receivedAt` and the
  /// message's properties, those it has.
  private var extraMembers: [(String, Value)] {
    var members: [(String, Value)] = []
    if !origin.isEmpty { members.append(("origin", .string(origin))) }
    if let receivedAt { members.append(("receivedAt", .int(receivedAt))) }
    if !mqttProperties.isEmpty {
      members.append(
        (
          "mqtt_properties",
          .object(OrderedObject(mqttProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        ))
    }
    if !userProperties.isEmpty {
      members.append(("user_properties", .array(userProperties.map { .array($0.map { .string($0) }) })))
    }
    return members
  }

  /// The record as an IoT-SQL value (an object, keys in AWS's order).
  public var value: Value {
    var failureValues: [Value] = []
    for failure in failures {
      var fields: [(String, Value)] = [
        ("failedAction", .string(failure.failedAction)),
        ("failedResource", .string(failure.failedResource)),
        ("errorMessage", .string(failure.errorMessage)),
      ]
      if failure.isErrorAction { fields.append(("errorAction", .bool(true))) }
      failureValues.append(.object(OrderedObject(fields)))
    }
    var members: [(String, Value)] = [
      ("ruleName", .string(ruleName)), ("topic", .string(topic)), ("traceId", .string(traceId)),
      ("cloudwatchTraceId", .string(traceId)), ("clientId", .string(clientId)),
      ("base64OriginalPayload", .string(base64OriginalPayload)),
      ("failures", .array(failureValues)), ("timestamp", .int(timestamp)),
    ]
    members += extraMembers
    return .object(OrderedObject(members))
  }

  /// The record as one line of compact JSON (no newline).
  public var json: String {
    var text = "{\"ruleName\":\(Self.quote(ruleName)),\"topic\":\(Self.quote(topic)),"
    text += "\"traceId\":\(Self.quote(traceId)),\"cloudwatchTraceId\":\(Self.quote(traceId)),"
    text += "\"clientId\":\(Self.quote(clientId)),"
    text += "\"base64OriginalPayload\":\(Self.quote(base64OriginalPayload)),\"failures\":["
    text += failures.map {
      "{\"failedAction\":\(Self.quote($0.failedAction)),\"failedResource\":\(Self.quote($0.failedResource)),"
        + "\"errorMessage\":\(Self.quote($0.errorMessage))\($0.isErrorAction ? ",\"errorAction\":true" : "")}"
    }.joined(separator: ",")
    text += "],\"timestamp\":\(timestamp)"
    for (key, value) in extraMembers {
      var bytes: [UInt8] = []
      JSONWriter.write(value, into: &bytes)
      text += ",\"\(key)\":" + Self.escapingLineBreaks(bytes)
    }
    return text + "}"
  }

  /// Compact JSON from ``JSONWriter`` with U+0085, U+2028 and U+2029 escaped as ``quote(_:)``
  /// escapes them: a device's user property or a source file's name held them raw, and a record
  /// read by `splitlines()` broke in two.
  static func escapingLineBreaks(_ bytes: [UInt8]) -> String {
    String(decoding: JSONWriter.escapingLineSeparators(bytes), as: UTF8.self)
  }

  /// Whether `scalar` is a bidirectional control (U+061C, U+200E, U+200F, U+202A...U+202E,
  /// U+2066...U+2069): raw in a log line or record, one from a topic or a value (`\u{202E}lmth.exe`)
  /// reversed how the rest of the line shows. Written as escapes in logs and records.
  public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
  }

  /// `text` as a JSON string literal (U+0085, U+2028, U+2029 and the bidirectional controls escaped
  /// too).
  public static func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      // Valid raw in JSON, but line breaks to `splitlines()` and JavaScript's older parsers: a
      // record or log line read by them broke in two (NEL too, for `splitlines()`).
      case "\u{85}": out += "\\u0085"
      case "\u{2028}": out += "\\u2028"
      case "\u{2029}": out += "\\u2029"
      default:
        if scalar.value < 0x20 || Self.isBidiControl(scalar) {
          out += String(format: "\\u%04x", scalar.value)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }

  /// The evaluation an error action receives: the record as its payload and value.
  public var evaluation: Evaluation {
    Evaluation(output: Array(json.utf8), value: value)
  }
}
