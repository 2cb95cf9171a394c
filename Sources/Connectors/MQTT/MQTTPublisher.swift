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
  private let logger: Logger
  private let connection = Mutex<MQTTConnection?>(nil)
  /// Why the last `start` failed (the broker refused the client), for what `publish` says.
  private let startFailure = Mutex<String?>(nil)
  private let health: Health?

  /// Creates a publisher; `start()` connects. Its connection is reported to `health` (as
  /// `mqtt republish URL`) while it is not up.
  public init(
    options: MQTTOptions, logger: Logger = Logger(label: "iotrules.mqtt.publisher"), health: Health? = nil
  ) {
    self.options = options
    self.logger = logger
    self.health = health
  }

  /// Connects (retrying a refused connection with backoff); libmosquitto reconnects by itself later.
  public func start() async throws {
    if connection.withLock({ $0 }) != nil { return }
    let client = try MQTTConnection(
      options: options, logger: logger, onMessage: nil, health: health,
      component: "mqtt republish \(options.url)")
    do {
      try await client.connect()
    } catch {
      client.close()
      if !(error is CancellationError) { startFailure.withLock { $0 = "\(error)" } }
      throw error
    }
    startFailure.withLock { $0 = nil }
    connection.withLock { $0 = client }
  }

  /// Publishes and returns when the broker has the message at `qos`.
  public func publish(
    topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties
  ) async throws(ActionError) {
    guard let client = connection.withLock({ $0 }) else {
      let why = startFailure.withLock { $0 } ?? "not connected yet"
      throw ActionError(.transient, "the MQTT broker \(options.url) for republish: \(why)")
    }
    try await client.publish(topic: topic, payload: payload, qos: qos, retain: retain, properties: properties)
  }

  /// The daemon stops: PUBACK waits end now, and later ones wait a few seconds at most.
  public func hurry() {
    connection.withLock { $0 }?.hurry()
  }

  /// Disconnects.
  public func shutdown() {
    let client = connection.withLock { state -> MQTTConnection? in
      defer { state = nil }
      return state
    }
    client?.close()
  }
}
