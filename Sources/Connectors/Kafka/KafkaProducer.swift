import CRdKafka
import Foundation
import Logging
import RulesEngine
import Synchronization

/// A Kafka producer whose `produce` returns only after the broker's delivery reports.
///
/// Delivery reports run inside `rd_kafka_poll` on the producer's own thread; each report completes
/// its record's slot in the batch it came with (passed through librdkafka's per-message opaque
/// pointer), and the batch's waiter resumes once every record has its report. A batch is handed to
/// librdkafka at once, so many records share one request and its round trip.
///
/// Defaults (`settings(bootstrapServers:config:)`): `acks=all`, idempotence where the settings allow
/// it (a retried request neither duplicates nor reorders records of a partition), `linger.ms=1` (the
/// action hands whole batches at once: 5 ms made a replay of 100,000 results 2.4 s instead of
/// 1.55 s), and `message.timeout.ms=30000`: a record the broker has not acknowledged in 30 s fails
/// (transiently) into its action's retries and error path, so a broker that is down never holds a
/// message, or a shutdown, for librdkafka's default 5 minutes. `config` overrides any of them.
public final class KafkaProducer: @unchecked Sendable {
  /// One record to produce.
  public struct Record: Sendable {
    /// The topic.
    public var topic: String
    /// The key; nil for none.
    public var key: [UInt8]?
    /// The value.
    public var value: [UInt8]
    /// The partition; nil lets librdkafka's partitioner choose (by key hash).
    public var partition: Int32?
    /// Headers, in order.
    public var headers: [(key: String, value: String)]
    /// The topic as errors name it: `topic` with any secret in it masked (a failed delivery's
    /// message quoted a secret-bearing topic whole, in logs and error records).
    public var shownTopic: String

    /// Creates a record; `shownTopic` is `topic` unless given.
    public init(
      topic: String, key: [UInt8]? = nil, value: [UInt8], partition: Int32? = nil,
      headers: [(key: String, value: String)] = [], shownTopic: String? = nil
    ) {
      self.shownTopic = shownTopic ?? topic
      self.topic = topic
      self.key = key
      self.value = value
      self.partition = partition
      self.headers = headers
    }
  }

  /// The results of one batch of records, filled in as their delivery reports arrive.
  public final class Batch: Sendable {
    private let state:
      Mutex<(results: [ActionError?], remaining: Int, waiter: CheckedContinuation<[ActionError?], Never>?)>

    init(count: Int) {
      state = Mutex(([ActionError?](repeating: nil, count: count), count, nil))
    }

    func complete(_ index: Int, _ error: ActionError?) {
      let done = state.withLock { state -> (CheckedContinuation<[ActionError?], Never>, [ActionError?])? in
        state.results[index] = error
        state.remaining -= 1
        guard state.remaining == 0, let waiter = state.waiter else { return nil }
        state.waiter = nil
        return (waiter, state.results)
      }
      if let (waiter, results) = done { waiter.resume(returning: results) }
    }

    /// One result per record, in order (nil for delivered), once every report is in.
    public func results() async -> [ActionError?] {
      await withCheckedContinuation { continuation in
        let ready = state.withLock { state -> [ActionError?]? in
          if state.remaining == 0 { return state.results }
          state.waiter = continuation
          return nil
        }
        if let ready { continuation.resume(returning: ready) }
      }
    }
  }

  /// What a record's opaque pointer carries to its delivery report.
  private final class Pending {
    let batch: Batch
    let index: Int
    let topic: String
    init(_ batch: Batch, index: Int, topic: String) {
      self.batch = batch
      self.index = index
      self.topic = topic
    }
  }

  /// `host:port` pairs.
  public let bootstrapServers: String
  /// The producer's place in `KafkaProducers` (its servers and settings), or "" outside it.
  let poolKey: String
  private let logger: Logger
  private let handle: OpaquePointer
  /// Says on the health board when no broker can be reached (the client's opaque, retained until
  /// `close`).
  fileprivate let brokers: BrokerWatch
  private let retainedBrokers: Unmanaged<BrokerWatch>

  /// A producer's reachability on the daemon's health board: not ready from librdkafka's "all
  /// brokers down" until a record is delivered or a broker answers the poll thread's metadata
  /// request (every 5 s meanwhile).
  final class BrokerWatch: Sendable {
    let health: Health?
    let servers: String
    let logger: Logger
    let down = Atomic<Bool>(false)
    /// This producer's number: two producers for one cluster (other client properties) report apart.
    let number: Int
    var component: String { "kafka action \(servers) #\(number)" }
    private static let made = Atomic<Int>(0)

    init(health: Health?, servers: String, logger: Logger) {
      self.health = health
      self.servers = servers
      self.logger = logger
      number = Self.made.add(1, ordering: .relaxed).newValue
    }

    /// The fatal error librdkafka raised (an idempotent producer's broken sequence, a cluster
    /// authorization failure), once it has: the producer fails every record from then on and must
    /// be made again (``KafkaProducers/replace(_:)``).
    let fatal = Mutex<String?>(nil)

    /// An error of the client as a whole (librdkafka no longer logs these once a callback takes
    /// them): a failed connection is said by librdkafka's own log line already.
    func clientError(_ error: rd_kafka_resp_err_t, _ reason: String, client: OpaquePointer?) {
      if error == RD_KAFKA_RESP_ERR__FATAL {
        let why =
          client.map { KafkaConfigBuilder.fatalError(of: $0, orElse: reason) }
          ?? "\(reason) (\(KafkaConfigBuilder.errorText(error)))"
        fatal.withLock { $0 = why }
        logger.error(
          "Kafka producer for \(servers): fatal error: \(why); it is made again for the next records")
        health?.report(
          component, "fatal error: \(why); the producer is made again for the next records", level: .unhealthy
        )
        return
      }
      if error == RD_KAFKA_RESP_ERR__TRANSPORT || error == RD_KAFKA_RESP_ERR__RESOLVE { return }
      guard error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN else {
        logger.warning("Kafka producer: \(reason) (\(KafkaConfigBuilder.errorText(error)))")
        return
      }
      if !down.exchange(true, ordering: .relaxed) {
        logger.warning("Kafka producer: cannot reach any broker of \(servers) (\(reason))")
      }
      health?.report(
        component,
        "cannot reach any broker of \(servers) (\(reason)): each attempt of a record waits up to message.timeout.ms, then the action's retry or error path takes it"
      )
    }

    /// A record was delivered, or a broker answered a metadata request.
    func reachable() {
      guard down.load(ordering: .relaxed), down.exchange(false, ordering: .relaxed) else { return }
      health?.clear(component)
      logger.info("Kafka producer: a broker of \(servers) answers again")
    }
  }

  /// Where producers made from now on report brokers they cannot reach: the daemon's health board
  /// (`/readyz`); nil (the default) reports nowhere.
  public static let healthBoard = Mutex<Health?>(nil)
  private let stopRequested = Atomic<Bool>(false)
  /// Held while records are handed to librdkafka and while closing: no record is produced on a
  /// destroyed handle.
  private let closed = Mutex(false)
  private let pollThreadDone = DispatchSemaphore(value: 0)
  /// Topics looked up ahead of librdkafka's periodic scan (`lookUp(topics:)`): every topic taken,
  /// those still to do, whether the one worker thread runs, and whether `close` has begun.
  private let lookups = Mutex<(seen: Set<String>, pending: [String], working: Bool, closed: Bool)>(
    ([], [], false, false))
  /// Left by the lookup worker as it ends: `close` waits for it before it frees the client.
  private let lookupWorkerDone = DispatchGroup()
  /// Beyond this many distinct topics, new ones wait for librdkafka's scan (bounded memory).
  public static let maxLookedUpTopics = 4_096

  /// Creates a producer for `bootstrapServers` with extra librdkafka `config` (see the type's defaults).
  public init(
    bootstrapServers: String, config: [(key: String, value: String)] = [],
    logger: Logger = Logger(label: "iotrules.kafka.producer"), poolKey: String = ""
  ) throws(ConnectorError) {
    self.bootstrapServers = bootstrapServers
    self.poolKey = poolKey
    self.logger = logger
    let conf = try KafkaConfigBuilder.make(Self.settings(bootstrapServers: bootstrapServers, config: config))
    let brokers = BrokerWatch(
      health: Self.healthBoard.withLock { $0 }, servers: bootstrapServers, logger: logger)
    self.brokers = brokers
    let retainedBrokers = Unmanaged.passRetained(brokers)
    self.retainedBrokers = retainedBrokers
    rd_kafka_conf_set_opaque(conf, retainedBrokers.toOpaque())
    // The client's own errors (all brokers down), on the poll thread.
    rd_kafka_conf_set_error_cb(conf) { client, error, reason, opaque in
      guard let opaque else { return }
      Unmanaged<BrokerWatch>.fromOpaque(opaque).takeUnretainedValue()
        .clientError(
          rd_kafka_resp_err_t(rawValue: error),
          KafkaSecretValues.masked(reason.map { String(cString: $0) } ?? ""),
          client: client)
    }
    rd_kafka_conf_set_dr_msg_cb(conf) { _, message, clientOpaque in
      guard let message, let opaque = message.pointee._private else { return }
      let pending = Unmanaged<Pending>.fromOpaque(opaque).takeRetainedValue()
      let error = message.pointee.err
      if error == RD_KAFKA_RESP_ERR_NO_ERROR, let clientOpaque {
        Unmanaged<BrokerWatch>.fromOpaque(clientOpaque).takeUnretainedValue().reachable()
      }
      let watch = clientOpaque.map { Unmanaged<BrokerWatch>.fromOpaque($0).takeUnretainedValue() }
      pending.batch.complete(
        pending.index,
        error == RD_KAFKA_RESP_ERR_NO_ERROR
          ? nil
          : ActionError(
            KafkaProducer.isPermanent(error) ? .permanent : .transient,
            "Kafka delivery to \(KafkaProducer.destination(pending.topic, message.pointee.partition >= 0 ? message.pointee.partition : nil)) failed: \(KafkaConfigBuilder.errorText(error))"
              + KafkaProducer.fatalCause(error, watch?.fatal.withLock { $0 })))
    }
    do {
      handle = try KafkaConfigBuilder.client(RD_KAFKA_PRODUCER, conf)
    } catch {
      retainedBrokers.release()
      throw error
    }
    Thread.detachNewThread { [self] in
      var lastProbe = DispatchTime.now().uptimeNanoseconds
      while !stopRequested.load(ordering: .acquiring) {
        rd_kafka_poll(handle, 100)
        // While all brokers are down, one is asked every 5 s (no callback says when one is back,
        // and an idle producer delivers nothing that would show it).
        let now = DispatchTime.now().uptimeNanoseconds
        if brokers.down.load(ordering: .relaxed), now - lastProbe >= 5_000_000_000 {
          lastProbe = now
          if KafkaConfigBuilder.brokerAnswers(handle) { brokers.reachable() }
        }
      }
      pollThreadDone.signal()
    }
  }

  /// The producer's settings: the defaults, then `config`. Idempotence is on by default only when
  /// `config` allows it: librdkafka refuses to create an idempotent producer with `acks` other than
  /// `all`, no retries, or more than 5 requests in flight (an AWS rule with `"acks": "1"` must still
  /// start). Without idempotence, one request in flight per connection keeps a partition's order
  /// through retries (unless `config` sets that too).
  static func settings(bootstrapServers: String, config: [(key: String, value: String)]) -> [(
    key: String, value: String
  )] {
    let given = Dictionary(config.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    // librdkafka takes `request.required.acks` as another name for `acks`.
    let acks = given["acks"] ?? given["request.required.acks"]
    // librdkafka reads `ALL` as `all` (`"acks": "ALL"` turned idempotence off).
    let acksAll = acks.map { ["all", "-1"].contains($0.lowercased()) } ?? true
    let retries = given["retries"] ?? given["message.send.max.retries"]
    let inFlight = given["max.in.flight.requests.per.connection"] ?? given["max.in.flight"]
    let allowsIdempotence =
      acksAll && retries.map { Int($0) != 0 } ?? true && inFlight.map { (Int($0) ?? 0) <= 5 } ?? true
    var defaults: [(key: String, value: String)] = [
      ("bootstrap.servers", bootstrapServers), ("linger.ms", "1"), ("message.timeout.ms", "30000"),
      // What the brokers' logs and quotas know the client by (librdkafka's default is `rdkafka`).
      ("client.id", "iotrules"),
      // A keyed record goes to the partition the Java client (AWS's Kafka action) picks, murmur2
      // of the key: librdkafka's default hashes it with CRC32, so most keys went elsewhere (a key's
      // order broke when a rule moved from AWS, a compacted topic kept its old value).
      ("partitioner", "murmur2_random"),
    ]
    if acks == nil { defaults.append(("acks", "all")) }
    if given["enable.idempotence"] == nil {
      if allowsIdempotence {
        defaults.append(("enable.idempotence", "true"))
      } else if inFlight == nil {
        defaults.append(("max.in.flight.requests.per.connection", "1"))
      }
    }
    return defaults + config
  }

  /// The producer's fatal error (see `BrokerWatch.fatal`), once librdkafka raised one: the
  /// producer fails every record, and the kafka action makes another for its next records.
  public var fatalReason: String? { brokers.fatal.withLock { $0 } }

  /// What follows a record's failure when the producer had a fatal error (the record failed with
  /// it, or was purged from the queue for it): its cause, and that a new producer takes later records.
  static func fatalCause(_ error: rd_kafka_resp_err_t, _ fatal: String?) -> String {
    guard error == RD_KAFKA_RESP_ERR__FATAL || fatal != nil else { return "" }
    return " (the producer's fatal error: \(fatal ?? "not said"); a new producer is made for later records)"
  }

  /// Why librdkafka would refuse to make a producer of `config` with this type's defaults (see
  /// ``KafkaSettings/clientProblem(consumer:settings:)``), or nil.
  public static func configurationProblem(_ config: [(key: String, value: String)]) -> String? {
    KafkaSettings.clientProblem(consumer: false, settings: settings(bootstrapServers: "", config: config))
  }

  /// A record's topic, with the partition asked for when one was (`Unknown partition` named none).
  static func destination(_ topic: String, _ partition: Int32?) -> String {
    partition.map { "'\(topic)' partition \($0)" } ?? "'\(topic)'"
  }

  /// Errors that the same record meets again however often it is retried: the broker refuses the
  /// record itself (too large, invalid, a keyless record to a compacted topic, a timestamp out of
  /// range, a policy) or the topic to this client.
  static func isPermanent(_ error: rd_kafka_resp_err_t) -> Bool {
    error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
      || error == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || error == RD_KAFKA_RESP_ERR_INVALID_MSG
      || error == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || error == RD_KAFKA_RESP_ERR__INVALID_ARG
      || error == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION
      || error == RD_KAFKA_RESP_ERR_INVALID_RECORD || error == RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP
      || error == RD_KAFKA_RESP_ERR_POLICY_VIOLATION || error == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE
  }

  /// Produces one record and returns after its delivery report (see `produce(_:)`).
  public func produce(
    topic: String, key: [UInt8]?, value: [UInt8], partition: Int32? = nil,
    headers: [(key: String, value: String)] = []
  ) async throws(ActionError) {
    let results = await produce([
      Record(topic: topic, key: key, value: value, partition: partition, headers: headers)
    ])
    if let error = results[0] { throw error }
  }

  /// Hands every record to librdkafka at once and returns after all their delivery reports: one
  /// result per record, in order (nil for delivered). A full local queue or a failed delivery is
  /// transient; an unknown partition, an invalid topic or an oversized record is permanent.
  public func produce(_ records: [Record]) async -> [ActionError?] {
    await enqueue(records).results()
  }

  /// Hands every record to librdkafka now, in order, and returns their batch, whose `results()`
  /// waits for the delivery reports: the caller may enqueue the next records meanwhile.
  public func enqueue(_ records: [Record]) -> Batch {
    let batch = Batch(count: records.count)
    closed.withLock { isClosed in
      // After a full queue the rest of the batch is not handed over either: each would take a place
      // freed meanwhile and go out before the refused one, which its retry sends later still.
      var full: String?
      for (index, record) in records.enumerated() {
        if isClosed {
          batch.complete(
            index, ActionError(.transient, "the Kafka producer for \(bootstrapServers) is closed"))
          continue
        }
        if let full {
          batch.complete(
            index,
            ActionError(
              .transient,
              "producing to '\(record.shownTopic)' on \(bootstrapServers) not handed over: \(full) (kept back to keep the batch's order)"
            ))
          continue
        }
        let error = produce(record, pending: Pending(batch, index: index, topic: record.shownTopic))
        if error == RD_KAFKA_RESP_ERR__QUEUE_FULL {
          full = "an earlier record of its batch, to '\(record.shownTopic)', found the queue full"
        }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
          batch.complete(
            index,
            ActionError(
              Self.isPermanent(error) ? .permanent : .transient,
              "producing to \(Self.destination(record.shownTopic, record.partition)) on \(bootstrapServers) failed: \(KafkaConfigBuilder.errorText(error))"
                + Self.fatalCause(error, fatalReason)
            ))
        }
      }
    }
    return batch
  }

  /// Hands one record to librdkafka; on success its delivery report will complete `pending`.
  private func produce(_ record: Record, pending: Pending) -> rd_kafka_resp_err_t {
    let opaque = Unmanaged.passRetained(pending)
    var headerList: OpaquePointer? = nil
    if !record.headers.isEmpty {
      headerList = rd_kafka_headers_new(record.headers.count)
      for header in record.headers {
        let bytes = Array(header.value.utf8)
        rd_kafka_header_add(headerList, header.key, -1, bytes, bytes.count)
      }
    }
    // An empty value or key goes as a pointer to no bytes, never NULL: librdkafka sends NULL as a
    // null value (a tombstone, which deletes its key on a compacted topic) or a null key. The
    // buffers hold a spare byte for that; the lengths are the real ones.
    let valueLength = record.value.count
    let keyLength = record.key?.count ?? 0
    let value = valueLength == 0 ? [0] : record.value
    let key = keyLength == 0 ? [0] : (record.key ?? [])
    let error = value.withUnsafeBytes { valueBuffer in
      key.withUnsafeBytes { keyBuffer in
        iotrules_kafka_produce(
          handle, record.topic, record.partition ?? iotrules_kafka_partition_unassigned(),
          record.key == nil ? nil : keyBuffer.baseAddress, keyLength, valueBuffer.baseAddress,
          valueLength, headerList, opaque.toOpaque())
      }
    }
    if error != RD_KAFKA_RESP_ERR_NO_ERROR {
      // Not taken by librdkafka: the headers and the opaque reference are still ours.
      if let headerList { rd_kafka_headers_destroy(headerList) }
      opaque.release()
    }
    return error
  }

  /// Looks `topics` up now, on one thread of the producer's, instead of at librdkafka's next
  /// periodic scan: a record for a topic the client has not met yet waits in its queue until the
  /// topic's partitions are known, and that scan runs once a second, so without this a short replay
  /// into Kafka spends most of its time waiting for its first delivery. Each topic is looked up
  /// once; beyond `maxLookedUpTopics` distinct topics, new ones wait for the scan.
  public func lookUp(topics: [String]) {
    let startWorker = lookups.withLock { state -> Bool in
      guard !state.closed else { return false }
      for topic in topics where state.seen.count < Self.maxLookedUpTopics && !state.seen.contains(topic) {
        state.seen.insert(topic)
        state.pending.append(topic)
      }
      guard !state.pending.isEmpty, !state.working else { return false }
      state.working = true
      lookupWorkerDone.enter()
      return true
    }
    guard startWorker else { return }
    Thread.detachNewThread { [self] in
      defer { lookupWorkerDone.leave() }
      while true {
        let next = lookups.withLock { state -> String? in
          guard !state.closed, !state.pending.isEmpty else {
            state.working = false
            return nil
          }
          return state.pending.removeFirst()
        }
        guard let next, let topic = rd_kafka_topic_new(handle, next, nil) else { return }
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        if rd_kafka_metadata(handle, 0, topic, &metadata, 1_000) == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata {
          rd_kafka_metadata_destroy(metadata)
        }
        rd_kafka_topic_destroy(topic)
      }
    }
  }

  /// The topics `lookUp(topics:)` has taken so far.
  public var lookedUpTopics: Set<String> { lookups.withLock { $0.seen } }

  /// Waits up to `timeoutMs` for outstanding deliveries, then stops the poll thread and frees the
  /// client; whatever is still undelivered then fails (transiently), so every waiter resumes.
  public func close(timeoutMs: Int32 = 10_000) {
    let first = closed.withLock { closed -> Bool in
      defer { closed = true }
      return !closed
    }
    guard first else { return }
    let remaining = rd_kafka_flush(handle, timeoutMs)
    if remaining != RD_KAFKA_RESP_ERR_NO_ERROR {
      logger.warning(
        "Kafka producer closed with undelivered messages: \(KafkaConfigBuilder.errorText(remaining))")
    }
    stopRequested.store(true, ordering: .releasing)
    pollThreadDone.wait()
    // A lookup under way ends within its 1 s timeout; the worker starts no other once closed.
    lookups.withLock { $0.closed = true }
    lookupWorkerDone.wait()
    // Purged records get failed delivery reports, served by the flush (a report of an in-flight
    // request can come a little later than the purge).
    rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    _ = rd_kafka_flush(handle, 5_000)
    rd_kafka_destroy(handle)
    if brokers.down.load(ordering: .relaxed) { brokers.health?.clear(brokers.component) }
    retainedBrokers.release()
  }
}

/// Producers shared by every kafka action with the same servers and settings: one librdkafka client
/// (its threads, connections and buffers) per cluster and configuration, not one per rule.
public enum KafkaProducers {
  /// One shared producer: its users, its settings, and when it may be replaced next.
  private struct Entry {
    var producer: KafkaProducer
    var users: Int
    var config: [(key: String, value: String)]
    /// Replacements so far, and the earliest next one: a fatal error that comes back (a broker's
    /// ACL refusing idempotent writes) makes a producer a second, 2, 4 ... 64 s apart, not one
    /// per batch.
    var replacements = 0
    var nextReplacement: ContinuousClock.Instant?
  }

  private static let pool = Mutex<[String: Entry]>([:])

  /// The producer for `bootstrapServers` and `config`, created on first use; each call must be
  /// matched by a `release(_:)`.
  public static func acquire(bootstrapServers: String, config: [(key: String, value: String)])
    throws(ConnectorError) -> KafkaProducer
  {
    let key = ([bootstrapServers] + config.map { "\($0.key)=\($0.value)" }).joined(separator: "\u{0}")
    return try pool.withLock { (pool) throws(ConnectorError) -> KafkaProducer in
      if let entry = pool[key] {
        pool[key]!.users = entry.users + 1
        return entry.producer
      }
      let producer = try KafkaProducer(bootstrapServers: bootstrapServers, config: config, poolKey: key)
      pool[key] = Entry(producer: producer, users: 1, config: config)
      return producer
    }
  }

  /// The producer to use instead of `producer`, which had a fatal error (librdkafka: such a
  /// producer must be destroyed and made again): a new one with the same servers and settings,
  /// made by the first of its users to ask and shared by the others, which take it as they ask;
  /// the old one is closed. `producer` itself when a new one cannot be made, or too soon after the
  /// last replacement (its records fail again, saying why, into their retries).
  public static func replace(_ producer: KafkaProducer) -> KafkaProducer {
    let (current, retired) = pool.withLock { pool -> (KafkaProducer, KafkaProducer?) in
      guard let entry = pool[producer.poolKey] else { return (producer, nil) }
      guard entry.producer === producer else { return (entry.producer, nil) }
      let now = ContinuousClock.now
      if let next = entry.nextReplacement, now < next { return (producer, nil) }
      guard
        let made = try? KafkaProducer(
          bootstrapServers: producer.bootstrapServers, config: entry.config, poolKey: producer.poolKey)
      else { return (producer, nil) }
      pool[producer.poolKey]!.producer = made
      pool[producer.poolKey]!.nextReplacement = now + .seconds(1 << min(entry.replacements, 6))
      pool[producer.poolKey]!.replacements += 1
      return (made, producer)
    }
    if let retired {
      retired.brokers.health?.clear(retired.brokers.component)
      // Closing waits for its flush: not on the caller's task.
      Thread.detachNewThread { retired.close(timeoutMs: 1_000) }
    }
    return current
  }

  /// Gives back a producer from `acquire` (or `replace`); the last user's release flushes and
  /// closes the pool's producer for those servers and settings.
  public static func release(_ producer: KafkaProducer) {
    let last = pool.withLock { pool -> KafkaProducer? in
      guard let entry = pool[producer.poolKey] else { return nil }
      if entry.users > 1 {
        pool[producer.poolKey]!.users = entry.users - 1
        return nil
      }
      pool[producer.poolKey] = nil
      return entry.producer
    }
    last?.close()
  }
}
