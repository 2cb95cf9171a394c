import IoTSQL

/// One message from a source: what the rules match and evaluate, plus the handle that acknowledges it.
///
/// A message is copied into every action's queue and every result: its fields live in one shared
/// box, so a copy costs one reference count, and setting a field copies the box only when it is
/// shared (copy on write).
public struct Message: Sendable {
  struct Fields: Sendable {
    var topic: String
    var payload: [UInt8]
    var clientID: String?
    var receivedAtMs: Int
    var mqttProperties: [String: Value]
    var userProperties: [(key: String, value: String)]
    var origin: String
    /// When not negative, `origin` is a file and this its line: formatted only if asked for.
    var originLine: Int
    var acknowledge: @Sendable (Acknowledgement) -> Void
  }

  var storage: SharedFields<Fields>

  /// The MQTT topic (or the topic taken from a Kafka record).
  public var topic: String {
    get { storage.fields.topic }
    set { storage.fields.topic = newValue }
  }
  /// The payload bytes, JSON or not.
  public var payload: [UInt8] {
    get { storage.fields.payload }
    set { storage.fields.payload = newValue }
  }
  /// The publisher's client id, when the source knows it (`clientid()` is "n/a" otherwise).
  public var clientID: String? {
    get { storage.fields.clientID }
    set { storage.fields.clientID = newValue }
  }
  /// Receive time in epoch milliseconds (`timestamp()`), stamped by the source from the `Clock`.
  public var receivedAtMs: Int {
    get { storage.fields.receivedAtMs }
    set { storage.fields.receivedAtMs = newValue }
  }
  /// MQTT 5 publish properties by AWS's names (`content_type`, `response_topic`, ...).
  public var mqttProperties: [String: Value] {
    get { storage.fields.mqttProperties }
    set { storage.fields.mqttProperties = newValue }
  }
  /// MQTT 5 user properties, in order.
  public var userProperties: [(key: String, value: String)] {
    get { storage.fields.userProperties }
    set { storage.fields.userProperties = newValue }
  }
  /// Where the message came from, for error messages: `sensors.jsonl:17`, `orders/2@8812`.
  public var origin: String {
    get {
      storage.fields.originLine < 0
        ? storage.fields.origin : "\(storage.fields.origin):\(storage.fields.originLine)"
    }
    set {
      storage.fields.origin = newValue
      storage.fields.originLine = -1
    }
  }
  /// Called exactly once when every action of every matching rule has succeeded or handed its
  /// failure to an error path (`.done`), or when the message could not be kept safe (`.failed`):
  /// then the source must not commit it (it will be redelivered).
  public var acknowledge: @Sendable (Acknowledgement) -> Void {
    get { storage.fields.acknowledge }
    set { storage.fields.acknowledge = newValue }
  }

  /// Creates a message. With `originLine`, the origin is `origin:originLine` (a file and a line),
  /// put together only when read: most messages never need it.
  public init(
    topic: String, payload: [UInt8], clientID: String? = nil, receivedAtMs: Int,
    mqttProperties: [String: Value] = [:], userProperties: [(key: String, value: String)] = [],
    origin: String = "", originLine: Int? = nil,
    acknowledge: @escaping @Sendable (Acknowledgement) -> Void = { _ in }
  ) {
    storage = SharedFields(
      Fields(
        topic: topic, payload: payload, clientID: clientID, receivedAtMs: receivedAtMs,
        mqttProperties: mqttProperties, userProperties: userProperties, origin: origin,
        originLine: originLine.map { max($0, 0) } ?? -1, acknowledge: acknowledge))
  }

  /// The evaluation context of this message.
  public func evaluationContext(secrets: (any SecretStore)? = nil) -> EvaluationContext {
    // Field by field: a copy of the whole box's fields would retain and release each of them.
    EvaluationContext(
      topic: storage.fields.topic, payload: storage.fields.payload, clientID: storage.fields.clientID,
      timestampMs: storage.fields.receivedAtMs, mqttProperties: storage.fields.mqttProperties,
      userProperties: storage.fields.userProperties, secrets: secrets)
  }
}

/// How a message ended.
public enum Acknowledgement: Sendable, Equatable {
  /// Every action succeeded or handed its failure to an error path: the source may commit it.
  case done
  /// Some failure could not be written anywhere (not even the dead-letter file): keep the message.
  case failed
}
