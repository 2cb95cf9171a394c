import Logging
import RulesEngine
import Synchronization

/// Publishes on an MQTT broker: QoS 0 returns once libmosquitto has queued the message, QoS 1 once
/// the broker's PUBACK arrived.
///
/// It uses the source's broker, credentials and TLS (`MQTTSource.makePublisher()`) but its own
/// socket: the source's network thread is deliberately blocked while the engine is full, and a
/// republish waiting for a PUBACK on that same socket would then wait for ever (the engine cannot
/// drain because its actions wait, and the socket is not read because the engine is full).
public final class MQTTPublisher: Publisher, @unchecked Sendable {
  /// How this publisher connects.
  public let options: MQTTOptions

  /// Under MQTT 3.1.1 a message carries no user property.
  public var carriesUserProperties: Bool { options.protocolVersion == .v5 }
  private let logger: Logger
  private let state = Mutex(State())
  private let health: Health?

  /// The connection and what is known while there is none.
  private struct State {
    var connection: MQTTConnection?
    /// Why the last connection attempt failed while `start` retries (`Connection refused`).
    var lastAttempt: String?
    /// Why `start` gave up (the broker refused the client): republish fails permanently then.
    var startFailure: String?
    /// `hurry` was called: a connection made after it is hurried too.
    var hurried = false
    /// `shutdown` was called: a connection made after it is closed at once.
    var closed = false
  }

  /// Creates a publisher; `start()` connects. Its connection is reported to `health` (as
  /// `component`, by default `mqtt republish URL`) while it is not up, and its log lines say it.
  public init(
    options: MQTTOptions, logger: Logger = Logger(label: "iotrules.mqtt.publisher"), health: Health? = nil,
    component: String? = nil
  ) {
    self.options = options
    self.logger = logger
    self.health = health
    self.component = component ?? "mqtt republish \(options.url)"
  }

  /// What health reports and log lines call its connection.
  let component: String

  /// Connects (retrying a refused connection with backoff); libmosquitto reconnects by itself later.
  /// `onRetry` is told of each failed attempt that will be tried again.
  public func start(onRetry: (@Sendable () -> Void)? = nil) async throws {
    if state.withLock({ $0.connection }) != nil { return }
    let client = try MQTTConnection(
      options: options, logger: logger, onMessage: nil, health: health,
      component: component)
    do {
      try await client.connect { [self] reason in
        state.withLock { $0.lastAttempt = reason }
        onRetry?()
      }
    } catch {
      client.close()
      if !(error is CancellationError) { state.withLock { $0.startFailure = "\(error)" } }
      throw error
    }
    // A stop that came while connecting (the connect itself cannot be interrupted) closes the
    // connection made after it.
    let (closed, hurried) = state.withLock { state -> (Bool, Bool) in
      if !state.closed {
        state.connection = client
        state.startFailure = nil
      }
      return (state.closed, state.hurried)
    }
    if closed {
      client.close()
    } else if hurried {
      client.hurry()
    }
  }

  /// The broker is back (the source's connection to it was accepted again): reconnects now if
  /// away, rather than at the end of its backoff.
  public func brokerIsBack() {
    state.withLock { $0.connection }?.retryConnectingNow()
  }

  /// Publishes and returns when the broker has the message at `qos`.
  public func publish(
    topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties
  ) async throws(ActionError) {
    let (connection, lastAttempt, startFailure) = state.withLock {
      ($0.connection, $0.lastAttempt, $0.startFailure)
    }
    guard let client = connection else {
      // Refused for good (until a restart): no retry can succeed.
      if let startFailure {
        throw ActionError(.permanent, "the MQTT broker \(options.url) for republish: \(startFailure)")
      }
      let why = lastAttempt.map { "not connected yet (\($0); retrying)" } ?? "not connected yet"
      throw ActionError(.transient, "the MQTT broker \(options.url) for republish: \(why)")
    }
    try await client.publish(topic: topic, payload: payload, qos: qos, retain: retain, properties: properties)
  }

  /// The daemon stops: PUBACK waits end now, and later ones wait a few seconds at most.
  public func hurry() {
    state.withLock { state -> MQTTConnection? in
      state.hurried = true
      return state.connection
    }?.hurry()
  }

  /// Disconnects; a connection `start` makes after this is closed at once.
  public func shutdown() {
    let client = state.withLock { state -> MQTTConnection? in
      defer {
        state.connection = nil
        state.closed = true
      }
      return state.connection
    }
    client?.close()
  }
}
