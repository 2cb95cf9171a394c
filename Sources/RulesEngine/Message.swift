import IoTSQL

/// One message from a source: what the rules match and evaluate, plus the handle that acknowledges it.
///
/// A message is copied into every action's queue and every result: its fields live in one shared
/// box, so a copy costs one reference count, and setting a field copies the box only when it is
/// shared (copy on write).
public struct Message: Sendable {
  struct Fields: Sendable {
    /// What rules evaluate the message against: its topic, payload, client id, timestamp and MQTT
    /// properties live here, made once with the message (evaluating it makes no context of its own).
    var context: EvaluationContext
    var origin: String
    /// When not negative, `origin` is a file and this its line: formatted only if asked for.
    var originLine: Int
    var acknowledge: @Sendable (Acknowledgement) -> Void
    /// The one rule this message is for (a replayed error record's `ruleName`), or nil: every rule.
    var onlyRule: String? = nil
  }

  /// The box of a message's fields. A class of this module rather than IoTSQL's generic
  /// `SharedFields`: across modules the generic one ran unspecialised, each message's boxing looking
  /// up the box class's metadata in the runtime's cache (3% of a replay's intake).
  final class Storage: @unchecked Sendable {
    // Unchecked: only the owner of a uniquely referenced box writes (see `storage`).
    @exclusivity(unchecked) var fields: Fields
    init(_ fields: Fields) { self.fields = fields }
  }

  private var box: Storage

  /// The fields; writing through it first copies a shared box. Reading borrows them.
  var storage: Storage {
    _read { yield box }
    _modify {
      if !isKnownUniquelyReferenced(&box) { box = Storage(box.fields) }
      yield &box
    }
  }

  /// The MQTT topic (or the topic taken from a Kafka record).
  public var topic: String {
    get { storage.fields.context.topic }
    set { storage.fields.context.topic = newValue }
  }
  /// The payload bytes, JSON or not.
  public var payload: [UInt8] {
    get { storage.fields.context.payload }
    set { storage.fields.context.payload = newValue }
  }
  /// The payload's size in bytes (read without a reference count on the bytes).
  var payloadCount: Int { storage.fields.context.payload.count }
  /// The publisher's client id, when the source knows it (`clientid()` is "n/a" otherwise).
  public var clientID: String? {
    get { storage.fields.context.clientID }
    set { storage.fields.context.clientID = newValue }
  }
  /// Receive time in epoch milliseconds (`timestamp()`), stamped by the source from the `Clock`.
  public var receivedAtMs: Int {
    get { storage.fields.context.timestampMs }
    set { storage.fields.context.timestampMs = newValue }
  }
  /// What the source found out about the payload's bytes while reading them (the replay's envelope
  /// does); `.unknown` again whenever the payload is set.
  public var payloadForm: PayloadForm {
    get { storage.fields.context.payloadForm }
    set { storage.fields.context.payloadForm = newValue }
  }
  /// MQTT 5 publish properties by AWS's names (`content_type`, `response_topic`, ...).
  public var mqttProperties: [String: Value] {
    get { storage.fields.context.mqttProperties }
    set { storage.fields.context.mqttProperties = newValue }
  }
  /// MQTT 5 user properties, in order.
  public var userProperties: [(key: String, value: String)] {
    get { storage.fields.context.userProperties }
    set { storage.fields.context.userProperties = newValue }
  }
  /// The message's trace id (`traceid()`, and `traceId` in its error records): an MQTT message has
  /// one, as in AWS; a message of another source has none (its error records make one up).
  public var traceID: String? {
    get { storage.fields.context.traceID }
    set { storage.fields.context.traceID = newValue }
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
  /// The line of the file it came from (a replay's), or nil.
  public var originLine: Int? { storage.fields.originLine < 0 ? nil : storage.fields.originLine }
  /// The one rule the message goes to, when it matches it (a replayed error record is driven again
  /// through the rule that failed it only: the others had taken the message); nil: every rule.
  public var onlyRule: String? {
    get { storage.fields.onlyRule }
    set { storage.fields.onlyRule = newValue }
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
    box = Storage(
      Fields(
        context: EvaluationContext(
          topic: topic, payload: payload, clientID: clientID, timestampMs: receivedAtMs,
          mqttProperties: mqttProperties, userProperties: userProperties),
        origin: origin, originLine: originLine.map { max($0, 0) } ?? -1, acknowledge: acknowledge))
  }

  /// A message whose evaluation context is `context` (a preview's message: a rule test case's,
  /// the REPL's), its topic, payload, client id and other context values as given.
  public init(context: EvaluationContext) {
    self.init(topic: context.topic, payload: context.payload, receivedAtMs: context.timestampMs)
    storage.fields.context = context
  }

  /// The evaluation context of this message: the message's own (a copy costs a reference count),
  /// or with `secrets` a copy that reads them.
  public func evaluationContext(secrets: (any SecretStore)? = nil) -> EvaluationContext {
    guard let secrets else { return storage.fields.context }
    var context = storage.fields.context
    context.secrets = secrets
    return context
  }
}

/// How a message ended.
public enum Acknowledgement: Sendable, Equatable {
  /// Every action succeeded or handed its failure to an error path: the source may commit it.
  case done
  /// Some failure could not be written anywhere (not even the dead-letter file): keep the message.
  case failed
}
