import Dispatch
import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// The MQTT source: a persistent-session subscription to the union of the rules' FROM filters.
///
/// Backpressure: libmosquitto calls the message handler on its network thread. The handler evaluates
/// the message right there while the engine has room, and otherwise blocks that thread until the
/// engine has accepted the message into its bounded queue (`MessageIntake.deliverBlocking`), so a
/// full engine stops reading the socket and the broker holds the rest (in the session, once its
/// sending buffers are full). libmosquitto 2.0 sends a QoS 1 PUBACK when the PUBLISH arrives, before
/// the handler runs, and offers no way to send it later: the handler journals each message in the
/// ``spool`` first, and a start runs again what an earlier run did not finish. A thread blocked
/// longer than one and a half keepalive periods also misses its PINGREQ: the broker drops the
/// connection and libmosquitto reconnects once the handler returns (the persistent session keeps
/// what arrives meanwhile).
///
/// Client id: MQTT does not tell a subscriber who published a message. When a publisher sets the
/// MQTT 5 user property named `clientIDProperty` (default `clientid`), its value becomes the
/// message's `clientid()`; otherwise `clientid()` is "n/a".
public final class MQTTSource: MessageSource, @unchecked Sendable {
  /// How this source connects.
  public let options: MQTTOptions
  /// The user property read as the publisher's client id.
  public let clientIDProperty: String
  /// The shared-subscription group (`$share/NAME/filter`), or nil.
  public let sharedGroup: String?
  /// The subscription QoS (1 by default).
  public let qos: Int
  private let logger: Logger
  private let now: @Sendable () -> Int
  private let filters: Mutex<[String]>
  private let connection = Mutex<MQTTConnection?>(nil)
  /// The publishers made on this source's broker: told when the source reconnects.
  private let publishers = Publishers()
  /// The file that keeps, across runs, the filters this client id is subscribed to in its
  /// persistent session (a JSON array), or nil. A broker keeps a session's subscriptions, and
  /// MQTT has no way to list them: a filter an earlier run subscribed and no rule wants now would
  /// stay, and bring a message it shares with a wanted filter twice, every message, for ever.
  public let subscriptionRecord: String?
  /// The journal of the messages taken and not yet finished (``MQTTSpool``), or nil for none: a
  /// start runs again what an earlier run took and did not finish.
  public let spool: String?

  /// True when another process holds the spool at `path` (a daemon of that client id runs).
  public static func spoolIsInUse(_ path: String) -> Bool { MQTTSpool.isInUse(path) }

  /// Creates a source; nothing connects until `run`.
  ///
  /// - Parameters:
  ///   - filters: the rules' FROM topic filters; duplicates are subscribed once.
  ///   - sharedGroup: subscribe every filter as `$share/NAME/filter` so several daemons split the load.
  ///   - subscriptionRecord: see ``subscriptionRecord``.
  ///   - spool: see ``spool``.
  ///   - now: epoch milliseconds for `timestamp()`; the wall clock by default.
  public init(
    options: MQTTOptions, filters: [String], sharedGroup: String? = nil, qos: Int = 1,
    clientIDProperty: String = "clientid", logger: Logger = Logger(label: "iotrules.mqtt"),
    subscriptionRecord: String? = nil, spool: String? = nil,
    now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970 * 1000) }
  ) {
    var options = options
    options.subscribesAtQoS0 = qos == 0
    self.options = options
    self.subscriptionRecord = options.persistentSession ? subscriptionRecord : nil
    self.spool = spool
    self.filters = Mutex(filters)
    self.sharedGroup = sharedGroup
    self.qos = qos
    self.clientIDProperty = clientIDProperty
    self.logger = logger
    self.now = now
  }

  /// The subscription filters as sent to the broker: de-duplicated, with the shared-group prefix.
  public func subscriptionFilters(for filters: [String]) -> [String] {
    // Overlapping subscriptions would bring a message once per subscription: see SubscriptionCover.
    SubscriptionCover.minimal(filters).map { filter in sharedGroup.map { "$share/\($0)/\(filter)" } ?? filter
    }
  }

  /// Replaces the subscriptions (hot reload): subscribes what is new, then unsubscribes what is gone
  /// (only once every new filter is granted). Throws naming every filter that failed.
  public func updateFilters(_ newFilters: [String]) async throws {
    filters.withLock { $0 = newFilters }
    if let connection = connection.withLock({ $0 }) {
      try await subscribe(connection, to: subscriptionFilters(for: newFilters))
    }
  }

  /// Sets `client`'s subscriptions, then records those it has.
  private func subscribe(_ client: MQTTConnection, to filters: [String]) async throws {
    defer { record(client) }
    try await client.setSubscriptions(filters, qos: qos)
  }

  /// Before the first subscribe of a run whose session the broker kept: takes the filters the
  /// record says earlier runs subscribed as subscribed, so that those no rule wants now are
  /// unsubscribed.
  private func adoptEarlierSubscriptions(of client: MQTTConnection, wanted: [String]) {
    guard let path = subscriptionRecord, client.sessionWasPresent else { return }
    guard let data = FileManager.default.contents(atPath: path) else {
      logger.warning(
        "the broker kept this client id's session, and \(path) does not say which filters earlier runs subscribed: one no rule wants now stays subscribed (a message it shares with a wanted filter comes twice) until a start with --clean-session"
      )
      return
    }
    guard let earlier = try? JSONDecoder().decode([String].self, from: data) else {
      logger.warning(
        "\(path) is not a JSON array of topic filters: earlier subscriptions are not unsubscribed")
      return
    }
    let wantedSet = Set(wanted.map { ExactText($0) })
    let stale = earlier.filter { !wantedSet.contains(ExactText($0)) }
    guard !stale.isEmpty else { return }
    logger.info(
      "unsubscribing from \(stale): earlier runs under this client id subscribed them, and no rule wants them now"
    )
    client.adoptSubscriptions(stale, qos: qos)
  }

  /// Writes the filters `client` is subscribed to, or asked for, into the record (a new file
  /// renamed over it).
  private func record(_ client: MQTTConnection) {
    guard let path = subscriptionRecord else { return }
    let filters = client.subscribedOrAsked
    do {
      let encoder = JSONEncoder()
      encoder.outputFormatting = .withoutEscapingSlashes
      let data = try encoder.encode(filters)
      let temporary = path + ".new"
      try data.write(to: URL(fileURLWithPath: temporary))
      if rename(temporary, path) != 0 {
        throw ConnectorError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
      }
    } catch {
      logger.warning(
        "cannot keep the subscribed filters in \(path) (\(error)): a later run whose rules drop one will not unsubscribe it"
      )
    }
  }

  /// Connects, subscribes, and hands each message to `deliver` until the task is cancelled; then it
  /// disconnects (the persistent session keeps what arrives meanwhile).
  public func run(deliver: @escaping @Sendable (Message) async -> Void) async throws {
    try await run(intake: MessageIntake(deliver: deliver))
  }

  /// Connects, subscribes, and hands each message to `intake` on the network thread (evaluated
  /// right there while the engine has room) until the task is cancelled; then it disconnects.
  ///
  /// A message acknowledged `.failed` (it reached no path: even the dead-letter write failed) ends
  /// the run: the source disconnects and acknowledges nothing more, so the broker's persistent
  /// session keeps what arrives until the daemon runs again (the daemon drains and exits non-zero).
  public func run(intake: MessageIntake) async throws {
    let now = self.now
    let clientIDProperty = self.clientIDProperty
    let origin = options.url
    let logger = self.logger
    // Parks the run until cancelled, or until a message could not be kept.
    let (stream, continuation) = AsyncStream<Never>.makeStream()
    let stopped = Atomic<Bool>(false)
    // Closed when the last message it holds is acknowledged, after the run (the drain).
    let spool = self.spool.map { MQTTSpool(path: $0, logger: logger) }
    // Ends a message: done, its spool line is closed; one that reached no path stays in the spool
    // and stops the source, so that the broker keeps the ones after it.
    let acknowledger: @Sendable (String, UInt64?) -> @Sendable (Acknowledgement) -> Void = { topic, number in
      { acknowledgement in
        if acknowledgement == .done, let number { spool?.finish(number) }
        // PUBACK went when the message arrived (libmosquitto's own).
        guard acknowledgement == .failed,
          stopped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        else { return }
        logger.error(
          "stopping the MQTT source: a message on \(topic) reached no path (its error path and the dead-letter file failed); the broker's session keeps what arrives until iotrules runs again"
        )
        continuation.finish()
      }
    }
    let handler: @Sendable (MQTTIncoming) -> Void = { incoming in
      // A retained message sent because this client subscribed is no publish: a rule runs once
      // per publish, as on AWS IoT, not again at each (re)subscription. (MQTT 5 subscriptions ask
      // for none; an MQTT 3.1.1 broker marks them with the retain flag, which live messages lack.)
      if incoming.retain {
        logger.debug(
          "skipped a retained message on \(incoming.topic): sent on subscribing, not published now")
        return
      }
      // The last of that name, as a Kafka record's last `clientid` header.
      let clientID = incoming.userProperties.last(where: { $0.key == clientIDProperty })?.value
      var message = Message(
        topic: incoming.topic, payload: incoming.payload, clientID: clientID, receivedAtMs: now(),
        mqttProperties: incoming.properties, userProperties: incoming.userProperties,
        origin: "\(origin) \(incoming.topic)")
      // `traceid()` of an MQTT message is its UUID, as in AWS; its error records carry the same.
      message.traceID = RandomUUID.string()
      message.acknowledge = acknowledger(incoming.topic, spool?.keep(message))
      intake.deliverBlocking(message)
    }
    if let spool {
      // What an earlier run took and did not finish runs first (its broker had the PUBACK).
      var left: [(sequence: UInt64, message: Message)] = []
      do {
        left = try spool.open()
      } catch {
        // As a write that fails later: the messages run, unprotected, and the run goes on.
        let remedy =
          (error as? SpoolError)?.isInUse == true
          ? "the broker gives the session to one of the two at each connect: give each daemon its own --client-id"
          : "the spool is kept beside the --dead-letter file: give that a folder the daemon can write"
        logger.error("\(error); messages run without it, and a crash loses those in flight (\(remedy))")
      }
      if !left.isEmpty {
        logger.warning(
          "running again \(left.count) message(s) an earlier run took from the broker and did not finish (MQTT spool \(spool.path))"
        )
      }
      for (number, var message) in left {
        // A stop ends the rerun: those not run stay in the spool for the next start.
        if Task.isCancelled { break }
        message.origin = "\(origin) \(message.topic) (spool)"
        message.acknowledge = acknowledger(message.topic, number)
        await intake.deliver(message)
      }
      if Task.isCancelled { return }
    }
    let client = try MQTTConnection(
      options: options, logger: logger, onMessage: handler, health: intake.health,
      component: "mqtt source \(options.url)")
    connection.withLock { $0 = client }
    // The list, not the source: no cycle through the connection, and no weak reference (whose side
    // table LeakSanitizer reports as lost).
    client.onReconnect { [publishers] in publishers.brokerIsBack() }
    do {
      try await client.connect()
      let wanted = subscriptionFilters(for: filters.withLock { $0 })
      adoptEarlierSubscriptions(of: client, wanted: wanted)
      try await subscribe(client, to: wanted)
      let granted = Set(client.grantedSubscriptions.keys)
      let asked = wanted.filter { !granted.contains($0) }
      let taken = wanted.filter { granted.contains($0) }
      // With none granted yet, not "subscribed ... to []": nothing is.
      logger.info(
        taken.isEmpty && !asked.isEmpty
          ? "asked to subscribe on \(options.url) to \(asked), not granted yet"
          : "subscribed on \(options.url) to \(taken)\(asked.isEmpty ? "" : "; asked, not granted yet: \(asked)")"
      )
      // Park until cancelled (or stopped); the network thread does the work.
      await withTaskCancellationHandler {
        for await _ in stream {}
      } onCancel: {
        continuation.finish()
      }
    } catch {
      await close(client)
      throw error
    }
    await close(client)
  }

  /// Disconnects on a thread of its own: closing joins the network thread, which may be waiting for
  /// the engine to take a message, and the engine needs Swift's concurrency threads (one, on a
  /// one-core machine) to make room.
  private func close(_ client: MQTTConnection) async {
    connection.withLock { $0 = nil }
    await withCheckedContinuation { (closed: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        client.close()
        closed.resume()
      }
    }
  }

  /// A publisher with the same broker, credentials and TLS as this source, on its own connection
  /// (client id `<id>-pub`), reporting its connection to `health`. See `MQTTPublisher` for why it is
  /// not the same socket. When the source reconnects, an away publisher tries at once.
  public func makePublisher(health: Health? = nil) -> MQTTPublisher {
    var publisherOptions = options
    publisherOptions.clientID = options.clientID + "-pub"
    publisherOptions.persistentSession = false
    // Named as the source's: connected first, while the broker is down at start it is the only
    // connection said, and a run without republish named only republish.
    let publisher = MQTTPublisher(
      options: publisherOptions, logger: logger, health: health,
      component: "mqtt source \(options.url) (its republish connection)")
    publishers.append(publisher)
    return publisher
  }
}

/// The publishers made on a source's broker, which its connection tells when it reconnects.
final class Publishers: Sendable {
  private let list = Mutex<[MQTTPublisher]>([])

  /// Adds one.
  func append(_ publisher: MQTTPublisher) { list.withLock { $0.append(publisher) } }

  /// Tells each that the broker is back.
  func brokerIsBack() {
    for publisher in list.withLock({ $0 }) { publisher.brokerIsBack() }
  }
}
