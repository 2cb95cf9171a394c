import IoTSQL

/// One message from a source: what the rules match and evaluate, plus the handle that acknowledges it.
public struct Message: Sendable {
  /// The MQTT topic (or the topic taken from a Kafka record).
  public var topic: String
  /// The payload bytes, JSON or not.
  public var payload: [UInt8]
  /// The publisher's client id, when the source knows it (`clientid()` is "n/a" otherwise).
  public var clientID: String?
  /// Receive time in epoch milliseconds (`timestamp()`), stamped by the source from the `Clock`.
  public var receivedAtMs: Int
  /// MQTT 5 publish properties by AWS's names (`content_type`, `response_topic`, ...).
  public var mqttProperties: [String: Value]
  /// MQTT 5 user properties, in order.
  public var userProperties: [(key: String, value: String)]
  /// Where the message came from, for error messages: `sensors.jsonl:17`, `orders/2@8812`.
  public var origin: String
  /// Called exactly once when every action of every matching rule has succeeded or handed its
  /// failure to an error path (`.done`), or when the message could not be kept safe (`.failed`):
  /// then the source must not commit it (it will be redelivered).
  public var acknowledge: @Sendable (Acknowledgement) -> Void

  /// Creates a message.
  public init(
    topic: String, payload: [UInt8], clientID: String? = nil, receivedAtMs: Int,
    mqttProperties: [String: Value] = [:], userProperties: [(key: String, value: String)] = [],
    origin: String = "", acknowledge: @escaping @Sendable (Acknowledgement) -> Void = { _ in }
  ) {
    self.topic = topic
    self.payload = payload
    self.clientID = clientID
    self.receivedAtMs = receivedAtMs
    self.mqttProperties = mqttProperties
    self.userProperties = userProperties
    self.origin = origin
    self.acknowledge = acknowledge
  }

  /// The evaluation context of this message.
  public func evaluationContext(secrets: (any SecretStore)? = nil) -> EvaluationContext {
    EvaluationContext(
      topic: topic, payload: payload, clientID: clientID, timestampMs: receivedAtMs,
      mqttProperties: mqttProperties, userProperties: userProperties, secrets: secrets)
  }
}

/// How a message ended.
public enum Acknowledgement: Sendable, Equatable {
  /// Every action succeeded or handed its failure to an error path: the source may commit it.
  case done
  /// Some failure could not be written anywhere (not even the dead-letter file): keep the message.
  case failed
}
