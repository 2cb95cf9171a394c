import Dispatch
import IoTSQL

/// What an action receives for one matching message: the rule's output and the original message.
///
/// A class: one input goes to every action of its rule, into lanes, batches and retries, and a copy
/// is then one reference count instead of one for each of its five references. Not final: the
/// dispatcher's tracker of a rule's actions for one message is the input itself (one object a
/// message, not two); nothing outside this module can subclass it.
public class ActionInput: @unchecked Sendable {
  // Unchecked: every stored property is an immutable `let` of a Sendable type; a non-final class
  // must say so itself.
  /// The rule that matched.
  public let ruleName: String
  /// The SELECT output (payload bytes and value) and the SET variables templates read.
  public let evaluation: Evaluation
  /// The original message, for templates and error records.
  public let message: Message

  /// Creates an input.
  public init(ruleName: String, evaluation: Evaluation, message: Message) {
    self.ruleName = ruleName
    self.evaluation = evaluation
    self.message = message
  }
}

/// Why an action failed, and whether trying again could help.
public struct ActionError: Error, Sendable, CustomStringConvertible {
  /// Transient failures are retried under the action's policy; permanent ones go straight to the
  /// error path.
  public enum Kind: Sendable, Equatable {
    /// Worth retrying: a locked database, a refused connection, HTTP 429/5xx.
    case transient
    /// Not worth retrying: a template that renders an invalid path, HTTP 400, a read-only database.
    case permanent
  }

  /// Transient or permanent.
  public var kind: Kind
  /// What failed, for the error record's `errorMessage`.
  public var message: String
  /// The earliest time to retry, in milliseconds from now, when the peer said (HTTP `Retry-After`;
  /// 0 for a 429 without one, which asks to slow down all the same); a retry policy waits at least
  /// this long, and the topic's later results wait with it. Nil when the peer said nothing.
  public var retryAfterMs: Int?
  /// The resource as rendered for this result (the file path, the topic, the URL), for the error
  /// record's `failedResource`; nil when the action's configured resource says it.
  public var resource: String?
  /// Set when the result was not sent at all: an action that keeps a topic's order failed it with
  /// an earlier result of its topic (``KeyedGroupAction``, failing fast). It is no attempt of its
  /// own: retries do not count it against the result's attempts.
  public var unsent = false
  /// Set when the peer answered (an HTTP 429 or 5xx): it is there, refusing this result or busy for
  /// a moment. Once the daemon is stopping, such a failure does not fail the action's later
  /// results unsent, as one that got no answer (a timeout, a refused connection) does.
  public var answered = false
  /// The system's error number, when a system call failed (a file action's `ENOSPC`); nil otherwise.
  public var code: Int32?

  /// Creates an error.
  public init(_ kind: Kind, _ message: String, retryAfterMs: Int? = nil, resource: String? = nil) {
    self.kind = kind
    self.message = message
    self.retryAfterMs = retryAfterMs
    self.resource = resource
  }

  /// The error with `resource` set, unless it names one already.
  public func about(_ resource: String) -> ActionError {
    var error = self
    if error.resource == nil { error.resource = resource }
    return error
  }

  /// The message.
  public var description: String { message }
}

/// An action: a destination for rule results, with the lifecycle configure → validate → start →
/// perform* → shutdown.
///
/// `perform` may be called concurrently for different messages; an action that must keep order
/// (one partition, one topic) serialises internally. `perform` returns only when the result is
/// safely written (a committed transaction, a delivery report, a 2xx), so the dispatcher can
/// acknowledge the message.
///
/// Actions are classes: a rule holds each through a two-word reference rather than a five-word
/// existential, which with 10,000 rules loaded is a third of a megabyte.
public protocol Action: AnyObject, Sendable {
  /// The kind as written in rule files: `sqlite`, `file`, `republish`, `kafka`, `http`.
  var kind: String { get }
  /// The AWS-style action name for error records: `SqliteAction`, `FileAction`, `RepublishAction`...
  var actionName: String { get }
  /// The target, for error records' `failedResource`: a database path and table, a topic, a URL.
  var resource: String { get }
  /// Opens connections or files. Called once before the first `perform`.
  func start() async throws
  /// Delivers one result.
  func perform(_ input: ActionInput) async throws(ActionError)
  /// Flushes and closes. Called once after the last `perform`.
  func shutdown() async
  /// The run is ending (the source ended, a stop signal) or the rule was replaced: results held
  /// back to gather a batch go out now, and those still to come go out without that wait. Nothing
  /// by default.
  func hurry() async
  /// False when the action reads only the result's value, never its payload bytes (SQLite): a rule
  /// whose actions all say so skips writing the result out, and a rule with one builds the
  /// result's value rather than parse it back out of bytes written directly. True by default.
  var readsPayloadBytes: Bool { get }
  /// True when a later result must wait while an earlier one is retried, so that the results
  /// arrive in their order even through retries: a SQLite row written again after a lock must not
  /// overwrite a later row of its key (the retry of `{"dev":"a","t":1}` wrote `t=1` over the `t=2`
  /// committed meanwhile). False by default: the lane goes on with later results meanwhile.
  var retriesKeepOrder: Bool { get }
  /// True when a failed attempt leaves nothing behind (SQLite's transaction is rolled back), so a
  /// result failed unsent at a stop is said not written, not possibly arrived. False by default
  /// (a webhook or a broker may have taken a request it never answered).
  var failedAttemptsLeaveNothing: Bool { get }
  /// Why this action and `other`, another rule's, cannot both write where they do (two sqlite
  /// actions keying one table by different columns: one of them fails every result), or nil. For
  /// `check`, which compares the actions of every rule it loads. None by default.
  func conflict(with other: any Action) -> String?
  /// What two actions that may conflict have alike (a sqlite action's database file and table), or
  /// nil for an action that conflicts with none: `check` compares an action only with those of
  /// its key, not with every action of every rule (5,000 rules took 4 s, each doubling 3.5 times
  /// more). Nil by default.
  var conflictKey: String? { get }
  /// Warnings about this action's configuration within its rule (a republish topic that can match
  /// the rule's own FROM filter, an archive rooted at `/`): valid, but likely not meant. None by
  /// default.
  func configurationWarnings(in context: ActionBuildContext) -> [ActionConfigurationWarning]
}

extension Action {
  /// Most actions send or store the payload bytes.
  public var readsPayloadBytes: Bool { true }

  /// No conflicts.
  public func conflict(with other: any Action) -> String? { nil }

  /// No conflicts.
  public var conflictKey: String? { nil }

  /// Most actions let later results go on while earlier ones retry.
  public var retriesKeepOrder: Bool { false }

  /// Most actions cannot tell whether a failed attempt arrived.
  public var failedAttemptsLeaveNothing: Bool { false }

  /// Most actions hold nothing back on a timer of their own.
  public func hurry() async {}

  /// No warnings.
  public func configurationWarnings(in context: ActionBuildContext) -> [ActionConfigurationWarning] { [] }
}

/// A warning about a valid action configuration, placed at the value of one of its keys.
public struct ActionConfigurationWarning: Sendable, Equatable {
  /// The configuration key whose value the warning is about (`topic`, `path`).
  public var key: String
  /// What may go wrong, and what to do.
  public var message: String

  /// Creates a warning.
  public init(key: String, message: String) {
    self.key = key
    self.message = message
  }
}

/// A source of messages: replay file, MQTT subscription, Kafka consumer group.
///
/// `run` hands each message to `deliver`, which suspends while the engine is full (backpressure):
/// the source must not read ahead of it unboundedly. `run` returns when the input ends (replay) or
/// when the task is cancelled (graceful shutdown), after it has stopped intake.
public protocol MessageSource: Sendable {
  /// Reads messages until the input ends or the task is cancelled.
  func run(deliver: @escaping @Sendable (Message) async -> Void) async throws
  /// Reads messages into `intake` until the input ends or the task is cancelled. A source with its
  /// own thread (MQTT, Kafka) uses `intake.deliverBlocking`; the default calls `run(deliver:)`.
  func run(intake: MessageIntake) async throws
  /// The source's own metrics as they are now, in Prometheus text (the Kafka consumer's lag); empty
  /// by default. Read when the metrics are scraped.
  var sampledMetrics: String { get }
}

extension MessageSource {
  /// No metrics of its own.
  public var sampledMetrics: String { "" }

  /// Calls `run(deliver:)` with the intake's suspending door.
  public func run(intake: MessageIntake) async throws {
    try await run(deliver: intake.deliver)
  }
}

/// Where a source hands its messages: the engine's suspending door and, when the engine offers
/// one, its non-suspending one.
public struct MessageIntake: Sendable {
  /// Takes a message, suspending while the engine is full.
  public let deliver: @Sendable (Message) async -> Void
  /// Takes a message at once and returns true when the engine has room; false, taking nothing,
  /// when it is full.
  public let tryDeliver: @Sendable (Message) -> Bool
  /// Takes messages in order, suspending while the engine is full; with its second argument, once
  /// the task is cancelled it takes no more after a wait (a source that can read them again).
  /// Returns how many it took.
  public let deliverBatch: @Sendable ([Message], Bool) async -> Int
  /// Where a source reports what keeps it from delivering (a lost connection, no partitions yet).
  public let health: Health

  /// Creates an intake; without `tryDeliver` every message goes through `deliver`, without
  /// `deliverBatch` a batch goes through `deliver` one message at a time.
  public init(
    deliver: @escaping @Sendable (Message) async -> Void,
    tryDeliver: @escaping @Sendable (Message) -> Bool = { _ in false },
    deliverBatch: (@Sendable ([Message], Bool) async -> Int)? = nil, health: Health = Health()
  ) {
    self.health = health
    self.deliver = deliver
    self.tryDeliver = tryDeliver
    self.deliverBatch =
      deliverBatch ?? { messages, stopping in
        for (index, message) in messages.enumerated() {
          if stopping && Task.isCancelled { return index }
          await deliver(message)
        }
        return messages.count
      }
  }

  /// For a source's own thread, never a Swift concurrency thread: takes the message, blocking the
  /// thread while the engine is full. With room, the message is evaluated right here, without a
  /// task switch; when full, the thread waits for `deliver` (that wait is the backpressure).
  public func deliverBlocking(_ message: Message) {
    if tryDeliver(message) { return }
    let accepted = DispatchSemaphore(value: 0)
    let deliver = self.deliver
    Task {
      await deliver(message)
      accepted.signal()
    }
    accepted.wait()
  }
}

/// Publishes on a broker connection a source may share (MQTT republish uses the source's connection).
public protocol Publisher: Sendable {
  /// Publishes and returns when the broker has the message at the requested QoS.
  func publish(
    topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties
  ) async throws(ActionError)

  /// Whether published messages keep their user properties (MQTT 5): republish's hop count then
  /// travels with each message; without them (MQTT 3.1.1) the daemon remembers what it republished.
  var carriesUserProperties: Bool { get }
}

extension Publisher {
  /// MQTT 5, unless the publisher says otherwise.
  public var carriesUserProperties: Bool { true }
}

/// MQTT 5 properties of a republished message (all optional).
public struct PublishProperties: Sendable, Equatable {
  /// Content type.
  public var contentType: String?
  /// Correlation data (bytes).
  public var correlationData: [UInt8]?
  /// Message expiry in seconds.
  public var messageExpiry: UInt32?
  /// 0 unspecified bytes, 1 UTF-8.
  public var payloadFormatIndicator: UInt8?
  /// Response topic.
  public var responseTopic: String?
  /// User properties, in order.
  public var userProperties: [(key: String, value: String)]

  /// Creates properties.
  public init(
    contentType: String? = nil, correlationData: [UInt8]? = nil, messageExpiry: UInt32? = nil,
    payloadFormatIndicator: UInt8? = nil, responseTopic: String? = nil,
    userProperties: [(key: String, value: String)] = []
  ) {
    self.contentType = contentType
    self.correlationData = correlationData
    self.messageExpiry = messageExpiry
    self.payloadFormatIndicator = payloadFormatIndicator
    self.responseTopic = responseTopic
    self.userProperties = userProperties
  }

  /// Equal when every field is equal.
  public static func == (lhs: PublishProperties, rhs: PublishProperties) -> Bool {
    lhs.contentType == rhs.contentType && lhs.correlationData == rhs.correlationData
      && lhs.messageExpiry == rhs.messageExpiry && lhs.payloadFormatIndicator == rhs.payloadFormatIndicator
      && lhs.responseTopic == rhs.responseTopic
      && lhs.userProperties.elementsEqual(rhs.userProperties, by: { $0 == $1 })
  }
}
