import IoTSQL

/// One message from a source: what the rules match and evaluate, plus the handle that acknowledges it.
///
/// A message is copied into every action's queue and every result: its fields live in one shared,
/// immutable box, so a copy costs one reference count, and setting a field copies the box only when
/// it is shared (copy on write).
public struct Message: Sendable {
  final class Storage: Sendable {
    let topic: String
    let payload: [UInt8]
    let clientID: String?
    let receivedAtMs: Int
    let mqttProperties: [String: Value]
    let userProperties: [(key: String, value: String)]
    let origin: String
    let acknowledge: @Sendable (Acknowledgement) -> Void

    init(
      topic: String, payload: [UInt8], clientID: String?, receivedAtMs: Int, mqttProperties: [String: Value],
      userProperties: [(key: String, value: String)], origin: String,
      acknowledge: @escaping @Sendable (Acknowledgement) -> Void
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
  }

  var storage: Storage

  /// Rebuilds the box with one field changed.
  private mutating func change(
    topic: String? = nil, payload: [UInt8]? = nil, clientID: String?? = nil, receivedAtMs: Int? = nil,
    mqttProperties: [String: Value]? = nil, userProperties: [(key: String, value: String)]? = nil,
    origin: String? = nil, acknowledge: (@Sendable (Acknowledgement) -> Void)? = nil
  ) {
    let old = storage
    storage = Storage(
      topic: topic ?? old.topic, payload: payload ?? old.payload, clientID: clientID ?? old.clientID,
      receivedAtMs: receivedAtMs ?? old.receivedAtMs, mqttProperties: mqttProperties ?? old.mqttProperties,
      userProperties: userProperties ?? old.userProperties, origin: origin ?? old.origin,
      acknowledge: acknowledge ?? old.acknowledge)
  }

  /// The MQTT topic (or the topic taken from a Kafka record).
  public var topic: String {
    get { storage.topic }
    set { change(topic: newValue) }
  }
  /// The payload bytes, JSON or not.
  public var payload: [UInt8] {
    get { storage.payload }
    set { change(payload: newValue) }
  }
  /// The publisher's client id, when the source knows it (`clientid()` is "n/a" otherwise).
  public var clientID: String? {
    get { storage.clientID }
    set { change(clientID: .some(newValue)) }
  }
  /// Receive time in epoch milliseconds (`timestamp()`), stamped by the source from the `Clock`.
  public var receivedAtMs: Int {
    get { storage.receivedAtMs }
    set { change(receivedAtMs: newValue) }
  }
  /// MQTT 5 publish properties by AWS's names (`content_type`, `response_topic`, ...).
  public var mqttProperties: [String: Value] {
    get { storage.mqttProperties }
    set { change(mqttProperties: newValue) }
  }
  /// MQTT 5 user properties, in order.
  public var userProperties: [(key: String, value: String)] {
    get { storage.userProperties }
    set { change(userProperties: newValue) }
  }
  /// Where the message came from, for error messages: `sensors.jsonl:17`, `orders/2@8812`.
  public var origin: String {
    get { storage.origin }
    set { change(origin: newValue) }
  }
  /// Called exactly once when every action of every matching rule has succeeded or handed its
  /// failure to an error path (`.done`), or when the message could not be kept safe (`.failed`):
  /// then the source must not commit it (it will be redelivered).
  public var acknowledge: @Sendable (Acknowledgement) -> Void {
    get { storage.acknowledge }
    set { change(acknowledge: newValue) }
  }

  /// Creates a message.
  public init(
    topic: String, payload: [UInt8], clientID: String? = nil, receivedAtMs: Int,
    mqttProperties: [String: Value] = [:], userProperties: [(key: String, value: String)] = [],
    origin: String = "", acknowledge: @escaping @Sendable (Acknowledgement) -> Void = { _ in }
  ) {
    storage = Storage(
      topic: topic, payload: payload, clientID: clientID, receivedAtMs: receivedAtMs,
      mqttProperties: mqttProperties, userProperties: userProperties, origin: origin, acknowledge: acknowledge
    )
  }

  /// The evaluation context of this message.
  public func evaluationContext(secrets: (any SecretStore)? = nil) -> EvaluationContext {
    let storage = self.storage
    return EvaluationContext(
      topic: storage.topic, payload: storage.payload, clientID: storage.clientID,
      timestampMs: storage.receivedAtMs,
      mqttProperties: storage.mqttProperties, userProperties: storage.userProperties, secrets: secrets)
  }
}

/// How a message ended.
public enum Acknowledgement: Sendable, Equatable {
  /// Every action succeeded or handed its failure to an error path: the source may commit it.
  case done
  /// Some failure could not be written anywhere (not even the dead-letter file): keep the message.
  case failed
}
