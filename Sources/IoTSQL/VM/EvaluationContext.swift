import Foundation

/// What a rule sees of the message besides its payload: the context functions read it.
///
/// `IoTSQL` never reads a clock or a socket: the source fills this in (the replay source, a broker
/// connector, or `eval`'s pinned `context`).
public struct EvaluationContext: Sendable {
  /// The fields, in one box shared by copies: the VM copies a context into every function call,
  /// and a copy then costs one reference count. A setter copies the box only when it is shared.
  struct Fields: Sendable {
    var topic: String
    var payload: [UInt8]
    var payloadForm = PayloadForm.unknown
    var clientID: String?
    var principal: String?
    var accountID: String?
    var traceID: String?
    var sourceIP: String?
    var timestampMs: Int
    var mqttProperties: [String: Value]
    var userProperties: [(key: String, value: String)]
    var secrets: (any SecretStore)?
    var randomness: PinnedRandomness?
  }

  var storage: SharedFields<Fields>

  /// The MQTT topic the message was published to.
  public var topic: String {
    get { storage.fields.topic }
    set { storage.fields.topic = newValue }
  }
  /// The payload bytes, JSON or not.
  public var payload: [UInt8] {
    get { storage.fields.payload }
    set {
      storage.fields.payload = newValue
      storage.fields.payloadForm = .unknown
    }
  }
  /// What the source found out about the payload's bytes (``PayloadForm``); `.unknown` again
  /// whenever the payload is set.
  public var payloadForm: PayloadForm {
    get { storage.fields.payloadForm }
    set { storage.fields.payloadForm = newValue }
  }
  /// The publisher's client id; nil when the message did not come over MQTT (`clientid()` is "n/a").
  public var clientID: String? {
    get { storage.fields.clientID }
    set { storage.fields.clientID = newValue }
  }
  /// The authenticated principal, when known.
  public var principal: String? {
    get { storage.fields.principal }
    set { storage.fields.principal = newValue }
  }
  /// The account id, when configured.
  public var accountID: String? {
    get { storage.fields.accountID }
    set { storage.fields.accountID = newValue }
  }
  /// The trace id of an MQTT message; nil elsewhere (`traceid()` is Undefined).
  public var traceID: String? {
    get { storage.fields.traceID }
    set { storage.fields.traceID = newValue }
  }
  /// The publisher's IP address, when known.
  public var sourceIP: String? {
    get { storage.fields.sourceIP }
    set { storage.fields.sourceIP = newValue }
  }
  /// Receive time in epoch milliseconds: `timestamp()`.
  public var timestampMs: Int {
    get { storage.fields.timestampMs }
    set { storage.fields.timestampMs = newValue }
  }
  /// MQTT 5 publish properties by AWS's names (`content_type`, `format_indicator`, `response_topic`,
  /// `correlation_data`): `get_mqtt_property(name)`.
  public var mqttProperties: [String: Value] {
    get { storage.fields.mqttProperties }
    set { storage.fields.mqttProperties = newValue }
  }
  /// MQTT 5 user properties in order; keys may repeat: `get_user_properties()`.
  public var userProperties: [(key: String, value: String)] {
    get { storage.fields.userProperties }
    set { storage.fields.userProperties = newValue }
  }
  /// Where `get_secret()` reads secrets; nil means none are configured.
  public var secrets: (any SecretStore)? {
    get { storage.fields.secrets }
    set { storage.fields.secrets = newValue }
  }

  /// What `newuuid()` and `rand()` give instead of random values (a rule test, a pinned
  /// `context`); nil for random ones.
  public var randomness: PinnedRandomness? {
    get { storage.fields.randomness }
    set { storage.fields.randomness = newValue }
  }

  /// Creates a context; only the topic and payload are required.
  public init(
    topic: String, payload: [UInt8], clientID: String? = nil, principal: String? = nil,
    accountID: String? = nil, traceID: String? = nil, sourceIP: String? = nil, timestampMs: Int = 0,
    mqttProperties: [String: Value] = [:], userProperties: [(key: String, value: String)] = [],
    secrets: (any SecretStore)? = nil
  ) {
    storage = SharedFields(
      Fields(
        topic: topic,
        payload: payload,
        clientID: clientID,
        principal: principal,
        accountID: accountID,
        traceID: traceID,
        sourceIP: sourceIP,
        timestampMs: timestampMs,
        mqttProperties: mqttProperties,
        userProperties: userProperties,
        secrets: secrets))
  }
}

/// Where `get_secret()` reads secrets: the daemon's secret folder and environment, or a test's.
public protocol SecretStore: Sendable {
  /// The secret named `id`, or nil when there is none.
  func secret(named id: String) -> String?
  /// Told when a `get_secret` call found the secret `id` but gives nothing of it (Undefined), and
  /// why: a key the secret lacks, a type it does not know.
  func notGiven(_ id: String, because reason: String)
  /// Told the text a `get_secret` call gave (a secret, its member, its base64), for masking.
  func disclosed(_ text: String)
  /// When set, every `get_secret` call gives this text and reads no secret: previews and rule tests
  /// show `***`.
  var placeholder: String? { get }
}

extension SecretStore {
  /// Nothing to do by default.
  public func notGiven(_ id: String, because reason: String) {}
  /// Nothing to do by default.
  public func disclosed(_ text: String) {}
  /// None by default: secrets are read.
  public var placeholder: String? { nil }
}

/// The store of previews and rule tests: every `get_secret` call is `***`, no secret is read (a CI
/// run has none, and what a missing secret does depends on where the daemon runs, not on the rule).
public struct PlaceholderSecrets: SecretStore {
  private let text: String

  /// The store; `text` is what every secret shows as (`***`).
  public init(_ text: String = "***") { self.text = text }
  /// Never read.
  public func secret(named id: String) -> String? { nil }
  /// The text every secret shows as.
  public var placeholder: String? { text }
}

/// The MQTT 5 publish properties a context holds (``EvaluationContext/mqttProperties``), as an MQTT
/// source gives them and as a replay line or a pinned context must give them too.
public enum MQTTPublishProperties {
  /// AWS's names for them, as `get_mqtt_property` takes them.
  public static let names = ["content_type", "format_indicator", "response_topic", "correlation_data"]

  /// Why `value` is not the property `name` as a source gives it, or nil: a string, a format
  /// indicator one of MQTT's two, correlation data base64. Said after the property's name;
  /// `quote` marks the value quoted.
  public static func problem(of value: Value, named name: String, quote: String) -> String? {
    guard case .string(let text) = value else { return "must be a string, not \(value.typeName)" }
    if name == "format_indicator", text != "UTF8_DATA", text != "UNSPECIFIED_BYTES" {
      return "is UTF8_DATA or UNSPECIFIED_BYTES, not \(quote)\(text)\(quote)"
    }
    if name == "correlation_data", Base64.decode(text, requiringPadding: true) == nil {
      return "must be base64, as AWS gives it"
    }
    return nil
  }

  /// What user properties may be written as, for the messages that say so.
  public static let userPropertiesShape =
    "an array of [key, value] pairs or {\"key\", \"value\"} objects of strings, or an object of strings"

  /// The user properties (``EvaluationContext/userProperties``) `value` writes, in order, as a replay
  /// line, a pinned context (`eval --batch`, rule tests, the REPL) and a dead-letter record give
  /// them: ``userPropertiesShape`` (an array repeats a key; AWS's `{"key", "value"}` objects have
  /// no other member). Nil for anything else.
  public static func userProperties(_ value: Value) -> [(key: String, value: String)]? {
    var pairs: [(key: String, value: String)] = []
    switch value {
    case .object(let object):
      for (key, value) in object.members {
        guard case .string(let text) = value else { return nil }
        pairs.append((key, text))
      }
    case .array(let items):
      for item in items {
        if case .array(let both) = item, both.count == 2, case .string(let key) = both[0],
          case .string(let text) = both[1]
        {
          pairs.append((key, text))
        } else if case .object(let named) = item, named.count == 2, case .string(let key)? = named["key"],
          case .string(let text)? = named["value"]
        {
          pairs.append((key, text))
        } else {
          return nil
        }
      }
    default: return nil
    }
    return pairs
  }
}
