/// What a rule sees of the message besides its payload: the context functions read it.
///
/// `IoTSQL` never reads a clock or a socket: the source fills this in (the replay source, a broker
/// connector, or `eval`'s pinned `context`).
public struct EvaluationContext: Sendable {
  /// The MQTT topic the message was published to.
  public var topic: String
  /// The payload bytes, JSON or not.
  public var payload: [UInt8]
  /// The publisher's client id; nil when the message did not come over MQTT (`clientid()` is "n/a").
  public var clientID: String?
  /// The authenticated principal, when known.
  public var principal: String?
  /// The account id, when configured.
  public var accountID: String?
  /// The trace id of an MQTT message; nil elsewhere (`traceid()` is Undefined).
  public var traceID: String?
  /// The publisher's IP address, when known.
  public var sourceIP: String?
  /// Receive time in epoch milliseconds: `timestamp()`.
  public var timestampMs: Int
  /// MQTT 5 publish properties by AWS's names (`content_type`, `format_indicator`, `response_topic`,
  /// `correlation_data`, `message_expiry`): `get_mqtt_property(name)`.
  public var mqttProperties: [String: Value]
  /// MQTT 5 user properties in order; keys may repeat: `get_user_properties()`.
  public var userProperties: [(key: String, value: String)]
  /// Where `get_secret()` reads secrets; nil means none are configured.
  public var secrets: (any SecretStore)?

  /// Creates a context; only the topic and payload are required.
  public init(
    topic: String, payload: [UInt8], clientID: String? = nil, principal: String? = nil,
    accountID: String? = nil, traceID: String? = nil, sourceIP: String? = nil, timestampMs: Int = 0,
    mqttProperties: [String: Value] = [:], userProperties: [(key: String, value: String)] = [],
    secrets: (any SecretStore)? = nil
  ) {
    self.topic = topic
    self.payload = payload
    self.clientID = clientID
    self.principal = principal
    self.accountID = accountID
    self.traceID = traceID
    self.sourceIP = sourceIP
    self.timestampMs = timestampMs
    self.mqttProperties = mqttProperties
    self.userProperties = userProperties
    self.secrets = secrets
  }
}

/// A source of secrets for `get_secret()`: the daemon's environment or secrets folder.
public protocol SecretStore: Sendable {
  /// The secret named `id`, or nil when there is none.
  func secret(named id: String) -> String?
}
