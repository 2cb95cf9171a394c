import CRdKafka
import Dispatch
import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// The Kafka source: a consumer-group member with at-least-once delivery.
///
/// Automatic commit and automatic offset storing are off. An offset is stored only when its message
/// and every earlier message of its partition are acknowledged `.done`; stored offsets are committed
/// every `commitIntervalMs`, before partitions are revoked in a rebalance, and on shutdown. A group
/// with no committed offset starts from the earliest one (`auto.offset.reset=earliest`, overridable).
///
/// librdkafka is polled on a dedicated thread (never a Swift concurrency thread); each message is
/// handed to the engine there. While the engine is full the thread pauses every assigned partition
/// and keeps polling (messages fetched before the pause wait, in order, for room): the group's
/// rebalances and heartbeats stay served however long the actions take, so the member is never
/// dropped for exceeding `max.poll.interval.ms`, and the engine's bounded queue still limits how
/// far the consumer reads ahead.
public final class KafkaSource: MessageSource, @unchecked Sendable {
  /// The value of the last header named `name` (nil without one); a header with a null value reads
  /// as an empty string, as it does through get_user_properties().
  static func lastHeader(_ name: String, in headers: [(name: String, value: String?)]) -> String? {
    headers.last { $0.name.isExactly(name) }.map { $0.value ?? "" }
  }

  /// What this source reads.
  public let options: KafkaSourceOptions
  private let logger: Logger
  private let now: @Sendable () -> Int
  /// Per assigned partition, its lag as last measured by the consumer thread (see `sampledMetrics`).
  let lags = LagTable()

  /// Creates a source; nothing connects until `run`.
  public init(
    options: KafkaSourceOptions, logger: Logger = Logger(label: "iotrules.kafka"),
    now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970 * 1000) }
  ) {
    self.options = options
    self.logger = logger
    self.now = now
  }

  /// Joins the group and delivers until cancelled; then waits (bounded) for outstanding
  /// acknowledgements, commits, and leaves the group.
  public func run(deliver: @escaping @Sendable (Message) async -> Void) async throws {
    try await run(intake: MessageIntake(deliver: deliver))
  }

  /// Joins the group and hands each message to `intake` on the consumer thread (evaluated right
  /// there while the engine has room) until cancelled; then drains, commits and leaves.
  public func run(intake: MessageIntake) async throws {
    let consumer = try KafkaConsumer(options: options, logger: logger, now: now, intake: intake, lags: lags)
    try consumer.subscribe()
    await withTaskCancellationHandler {
      await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
          consumer.pollLoop()
          finished.resume()
        }
      }
    } onCancel: {
      consumer.requestStop()
    }
    lags.values.withLock { $0.removeAll() }
    if let fatal = consumer.fatalError.withLock({ $0 }) {
      throw ConnectorError("the Kafka consumer stopped on a fatal error: \(fatal)")
    }
  }

  /// The consumer lag of each assigned partition, in Prometheus text: its high watermark (as the
  /// last fetch saw it) minus the next offset to commit, that is, the messages of the partition not
  /// yet done (not yet read, or read and not yet through their actions), as
  /// `kafka-consumer-groups --describe` counts LAG once the commit is made. Measured every second
  /// on the consumer thread; a partition joins once a fetch has told its high watermark.
  public var sampledMetrics: String {
    let lags = lags.values.withLock { $0 }.sorted {
      ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition)
    }
    var text =
      "# HELP \(Self.lagMetric) Messages of an assigned partition not yet done: its high watermark minus the next offset to commit.\n"
    text += "# TYPE \(Self.lagMetric) gauge\n"
    for (partition, lag) in lags {
      text += "\(Self.lagMetric){topic=\"\(partition.topic)\",partition=\"\(partition.partition)\"} \(lag)\n"
    }
    return text
  }

  /// The lag gauge's name.
  public static let lagMetric = "iotrules_kafka_consumer_lag"
}

/// Each assigned partition's consumer lag, written by the consumer thread, read by scrapes.
final class LagTable: Sendable {
  let values = Mutex<[TopicPartition: Int64]>([:])
}

/// The librdkafka consumer handle and its poll loop. All C pointers stay here.
private final class KafkaConsumer: @unchecked Sendable {
  let options: KafkaSourceOptions
  let logger: Logger
  let now: @Sendable () -> Int
  let intake: MessageIntake
  let tracker = OffsetTracker()
  let stopRequested = Atomic<Bool>(false)
  /// Where the lags measured here go (the source's, read when the metrics are scraped).
  let lags: LagTable
  /// The offsets last handed to librdkafka to commit, by partition (consumer thread only).
  private var storedOffsets: [TopicPartition: Int64] = [:]
  /// Set when a stop's last commit got no answer (consumer thread only): the revocation that
  /// closing brings does not wait for one again.
  private var coordinatorSilent = false
  /// A fatal librdkafka error (a fenced static member, say): the consumer can do nothing more, so the
  /// loop drains, commits what is done and stops, and `run` throws it.
  let fatalError = Mutex<String?>(nil)
  private var handle: OpaquePointer!
  private var retained: Unmanaged<KafkaConsumer>?
  /// Topic names by librdkafka's topic handle (consumer thread only): one String per topic, not per
  /// message.
  private var topicNames: [OpaquePointer: String] = [:]
  /// The partition log of the last message (consumer thread only).
  private var lastLog: PartitionLog?
  /// Partitions paused because a message reached no error path (consumer thread only): a pause for
  /// backpressure never resumes them; a revocation does.
  private var failedPartitions: Set<TopicPartition> = []
  /// Partitions this consumer asked librdkafka to pause and has not resumed (consumer thread only).
  /// librdkafka keeps a partition's pause across a revocation and a later assignment, and in
  /// librdkafka 2.0 a pause or resume moves the partition's op version even when it changes nothing:
  /// one issued just after an assignment can outdate the assignment's start of fetching, which
  /// librdkafka then drops without a word, and the partition is never fetched again (seen once in
  /// CI: a partition reassigned, resumed in the assignment callback, silent for 30 s). So a
  /// partition is resumed only when paused, and before it is revoked (then an assignment needs no
  /// resume), and paused only once it is fetching (see `fetching`); nothing is paused or resumed
  /// between an assign call and the first message of that assignment.
  private var pausedInLibrary: Set<TopicPartition> = []
  /// Assigned partitions a message was read from since their assignment: librdkafka started
  /// fetching them, so a pause no longer races that start (consumer thread only).
  private var fetching: Set<TopicPartition> = []
  /// Whether the engine is full and the fetching partitions are paused for it (consumer thread only).
  private var backpressure = false
  /// The partitions of this member's assignment as its rebalance callbacks told it (consumer
  /// thread only).
  private var owned: Set<TopicPartition> = []
  /// Whether the group assigned this member partitions (and has not revoked them all since).
  private var assigned = false
  /// While the engine is full, the messages read and not delivered yet, in order, from `waitingHead`
  /// on (consumer thread only): a revocation does not wait for them.
  private var waiting: [(message: Message, log: PartitionLog)] = []
  private var waitingHead = 0
  /// The name this consumer reports its state under (see ``Health``).
  var component: String { "kafka source group \(options.group)" }
  /// The name paused partitions are reported under: the daemon is unhealthy while they are.
  var pausedComponent: String { "kafka source group \(options.group) paused partitions" }
  /// The name "every broker is down" is reported under once partitions are assigned (not ready).
  var brokersComponent: String { "kafka source group \(options.group) brokers" }
  /// Whether librdkafka said every broker is down since the assignment (consumer thread only):
  /// probed every 5 s until one answers.
  private var brokersDown = false
  /// The name a subscribed topic that cannot be read is reported under.
  func topicComponent(_ topic: String) -> String { "kafka source group \(options.group) topic \(topic)" }
  /// Topics reported as not available (consumer thread only).
  private var unavailableTopics: Set<String> = []

  init(
    options: KafkaSourceOptions, logger: Logger, now: @escaping @Sendable () -> Int,
    intake: MessageIntake, lags: LagTable
  ) throws(ConnectorError) {
    self.options = options
    self.logger = logger
    self.now = now
    self.intake = intake
    self.lags = lags
    intake.health.report(component, "waiting for a partition assignment in group \(options.group)")
    let settings: [(key: String, value: String)] =
      [
        ("bootstrap.servers", options.bootstrapServers.joined(separator: ",")),
        ("group.id", options.group),
        // What the brokers' logs and quotas know the client by (librdkafka's default is `rdkafka`).
        ("client.id", "iotrules"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        // librdkafka stops fetching for a second once its local queue holds queued.min.messages
        // (default 100,000, counted over all partitions forwarded to the consumer): catching up on
        // small records then runs in bursts at ~130,000 msg/s. The byte limit
        // (queued.max.messages.kbytes, 64 MiB) bounds payload bytes only: with small records
        // librdkafka's overhead per record sets the memory (the README says what to lower).
        ("queued.min.messages", "1000000"),
      ]
      // A regular expression subscribes to topics created later too, seen at a metadata refresh:
      // every 30 s, not librdkafka's 5 minutes (--kafka-config may set another).
      + (options.topics.contains { $0.hasPrefix("^") }
        ? [("topic.metadata.refresh.interval.ms", "30000")] : [])
      + options.config
    for (key, value) in options.config {
      if let problem = KafkaSourceOptions.managedSettingProblem(key, value: value) {
        throw ConnectorError(problem)
      }
    }
    let conf = try KafkaConfigBuilder.make(settings)
    let unmanaged = Unmanaged.passRetained(self)
    retained = unmanaged
    rd_kafka_conf_set_opaque(conf, unmanaged.toOpaque())
    rd_kafka_conf_set_rebalance_cb(conf) { handle, error, partitions, opaque in
      guard let opaque, let partitions else { return }
      Unmanaged<KafkaConsumer>.fromOpaque(opaque).takeUnretainedValue()
        .rebalance(handle: handle, error: error, partitions: partitions)
    }
    // The client's own errors (brokers down, a fatal error) come here, on the polling thread;
    // partition and topic errors still come as consumer messages (`read`).
    rd_kafka_conf_set_error_cb(conf) { _, error, reason, opaque in
      guard let opaque else { return }
      Unmanaged<KafkaConsumer>.fromOpaque(opaque).takeUnretainedValue()
        .clientError(
          rd_kafka_resp_err_t(rawValue: error),
          KafkaSecretValues.masked(reason.map { String(cString: $0) } ?? ""))
    }
    do {
      handle = try KafkaConfigBuilder.client(RD_KAFKA_CONSUMER, conf)
    } catch {
      unmanaged.release()
      throw error
    }
    rd_kafka_poll_set_consumer(handle)
  }

  func subscribe() throws(ConnectorError) {
    let list = rd_kafka_topic_partition_list_new(Int32(options.topics.count))
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for topic in options.topics {
      rd_kafka_topic_partition_list_add(list, topic, iotrules_kafka_partition_unassigned())
    }
    let error = rd_kafka_subscribe(handle, list)
    if error != RD_KAFKA_RESP_ERR_NO_ERROR {
      close()
      throw ConnectorError("cannot subscribe to \(options.topics): \(KafkaConfigBuilder.errorText(error))")
    }
  }

  func requestStop() { stopRequested.store(true, ordering: .releasing) }

  private static func partitions(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
    -> [TopicPartition]
  {
    (0..<Int(list.pointee.cnt)).map { index in
      let element = list.pointee.elems[index]
      return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
  }

  private func rebalance(
    handle: OpaquePointer?, error: rd_kafka_resp_err_t,
    partitions list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
  ) {
    let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
    let partitions = Self.partitions(list)
    defer {
      // Another member may have moved them on meanwhile: their offsets count again from the next store.
      for partition in partitions { storedOffsets[partition] = nil }
    }
    if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
      assigned = true
      logger.info(
        "assigned \(partitions.map { "\($0.topic)/\($0.partition)" }) in group \(options.group)\(memberSuffix())"
      )
      if cooperative {
        release(partitions.filter(owned.contains))
      } else {
        // An eager assignment replaces the whole of the last one, which librdkafka may end
        // without a revocation first (a rejoin while that assignment's callback was pending).
        release(Array(owned))
        let gone = owned.subtracting(partitions)
        drainRevoked(gone)
        _ = tracker.revoke(Array(gone))
        for partition in gone { storedOffsets[partition] = nil }
        owned = []
      }
      owned.formUnion(partitions)
      tracker.assign(partitions)
      // Nothing is resumed (or paused) after this call: a pause or resume now could outdate the
      // start of fetching that it orders (see `pausedInLibrary`).
      if cooperative {
        if let failure = rd_kafka_incremental_assign(handle, list) { rd_kafka_error_destroy(failure) }
      } else {
        rd_kafka_assign(handle, list)
      }
      for topic in Set(partitions.map(\.topic)) where unavailableTopics.remove(topic) != nil {
        intake.health.clear(topicComponent(topic))
      }
      intake.health.clear(component)
    } else {
      logger.info(
        "revoked \(partitions.map { "\($0.topic)/\($0.partition)" }) in group \(options.group)\(memberSuffix())"
      )
      // A paused partition that another member takes is no longer this one's problem.
      release(partitions)
      owned.subtract(partitions)
      drainRevoked(Set(partitions))
      store(tracker.revoke(partitions))
      // A lost assignment (this member was dropped from the group) can commit nothing.
      if rd_kafka_assignment_lost(handle) == 0, !coordinatorSilent { commitWaiting(atMost: 5) }
      if cooperative {
        if let failure = rd_kafka_incremental_unassign(handle, list) { rd_kafka_error_destroy(failure) }
      } else {
        rd_kafka_assign(handle, nil)
        assigned = false
        // Eager: everything is revoked until the group's next assignment.
        intake.health.report(
          component, "rebalancing: waiting for the new assignment in group \(options.group)")
      }
    }
  }

  /// Waits, at most a third of the group's session timeout (and of `max.poll.interval.ms`, and at
  /// most `shutdownDrainSeconds`), until the messages of `partitions` already in the engine are
  /// done, as Kafka Connect flushes before it lets partitions go: they were written on alongside
  /// the new owner's, and under an eager rebalance their offsets, not committed, were read again
  /// by this member too. Bounded well within the group's patience: a longer wait had the member
  /// dropped from the group (a rebalance closed without it, over and over). Messages read and not
  /// delivered yet are not waited for (never delivered now: they come again); nor is anything
  /// waited for when the assignment is lost (nothing can be committed) or the source stops.
  private func drainRevoked(_ partitions: Set<TopicPartition>) {
    guard !partitions.isEmpty, !stopRequested.load(ordering: .acquiring),
      rd_kafka_assignment_lost(handle) == 0
    else { return }
    // Not yet handed to the engine, counted as `awaited` counts them (a blocked partition's not
    // at all: counted here, they hid the others' messages in the engine, and nothing waited), and
    // counted again at each look: a partition blocked meanwhile leaves both counts.
    let undeliveredLogs = waiting[waitingHead...].filter { partitions.contains($0.log.partition) }.map(\.log)
    var undelivered = tracker.countAwaited(undeliveredLogs)
    let seconds = min(
      options.shutdownDrainSeconds, Self.configured("session.timeout.ms", options.config, 45_000) / 3_000,
      Self.configured("max.poll.interval.ms", options.config, 300_000) / 3_000)
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(seconds, 0) * 1e9)
    var awaited = tracker.awaited(in: partitions)
    while awaited > undelivered && DispatchTime.now().uptimeNanoseconds < deadline
      && !stopRequested.load(ordering: .acquiring)
    {
      usleep(2_000)
      awaited = tracker.awaited(in: partitions)
      undelivered = tracker.countAwaited(undeliveredLogs)
    }
    if awaited > undelivered {
      logger.warning(
        "\(awaited - undelivered) messages of the revoked partitions were not done within \(KafkaSource.secondsText(seconds)) s (retrying, or slow actions): their new owner reads them again, and both may write them"
      )
    }
  }

  /// The value of the librdkafka setting `key` in `config` (the last given) as a number, or
  /// `otherwise`.
  static func configured(_ key: String, _ config: [(key: String, value: String)], _ otherwise: Double)
    -> Double
  {
    config.last { $0.key == key }.flatMap { Double($0.value) } ?? otherwise
  }

  /// " as member ID": which member of the group this consumer is (the group coordinator's name for
  /// it), so that the lines of several daemons in one group tell who holds what; empty before the
  /// group named it.
  private func memberSuffix() -> String {
    guard let id = rd_kafka_memberid(handle) else { return "" }
    defer { rd_kafka_mem_free(handle, id) }
    let text = String(cString: id)
    return text.isEmpty ? "" : " as member \(text)"
  }

  /// Lets `partitions` go from this member's last assignment, while they are still assigned:
  /// resumes those it paused (librdkafka would keep them paused into a later assignment of them)
  /// and waits until librdkafka has, and clears their failure and fetching marks. Those that were
  /// fetching are resumed even when `pausedInLibrary` says they are not paused: a resume of ours can
  /// be outdated by librdkafka's own pause at the start of a rebalance, and for a partition about to
  /// be stopped an extra resume costs nothing.
  private func release(_ partitions: [TopicPartition]) {
    guard !partitions.isEmpty else { return }
    let stopping = partitions.filter { fetching.contains($0) || pausedInLibrary.contains($0) }
    if !stopping.isEmpty { _ = Self.withList(stopping) { rd_kafka_resume_partitions(handle, $0) } }
    pausedInLibrary.subtract(partitions)
    fetching.subtract(partitions)
    failedPartitions.subtract(partitions)
    reportPaused()
  }

  /// Reports the partitions paused after a failure (the daemon is unhealthy while this member holds
  /// any), or clears the report when there are none.
  private func reportPaused() {
    guard !failedPartitions.isEmpty else {
      intake.health.clear(pausedComponent)
      return
    }
    let names = failedPartitions.map { "\($0.topic)/\($0.partition)" }.sorted()
    intake.health.report(
      pausedComponent, "\(names) paused: a message reached no error path", level: .unhealthy)
  }

  /// When the topics reported as not readable were last looked up (consumer thread only).
  private var lastTopicCheck: UInt64 = 0

  /// Looks the topics reported as not readable up again (every 2 s while there are any): one whose
  /// metadata now has partitions and no error is cleared, whether or not this member is assigned
  /// any of them (with more members than partitions it may be given none).
  private func recheckUnavailableTopics(now: UInt64) {
    guard now &- lastTopicCheck >= 2_000_000_000 else { return }
    lastTopicCheck = now
    // One request for the cluster's topics (bounded wait: the poll loop is blocked meanwhile).
    var metadata: UnsafePointer<rd_kafka_metadata>?
    guard rd_kafka_metadata(handle, 1, nil, &metadata, 500) == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
      return
    }
    defer { rd_kafka_metadata_destroy(metadata) }
    for index in 0..<Int(metadata.pointee.topic_cnt) {
      let entry = metadata.pointee.topics[index]
      let topic = String(cString: entry.topic)
      if unavailableTopics.contains(topic), entry.err == RD_KAFKA_RESP_ERR_NO_ERROR, entry.partition_cnt > 0 {
        unavailableTopics.remove(topic)
        intake.health.clear(topicComponent(topic))
      }
    }
  }

  /// Stops fetching `partitions`, blocked by a message that reached no error path: nothing more of
  /// them is delivered until they are assigned again (a restart or a rebalance), which redelivers
  /// from the failed message on.
  private func pause(_ partitions: [TopicPartition]) {
    guard !partitions.isEmpty else { return }
    failedPartitions.formUnion(partitions)
    let error = setPaused(partitions, true)
    reportPaused()
    logger.error(
      "paused \(partitions.map { "\($0.topic)/\($0.partition)" }): a message could not be delivered to any error path; they resume from it when assigned again (restart or rebalance)\(error == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : " (pause failed: \(KafkaConfigBuilder.errorText(error)))")"
    )
  }

  private func store(_ offsets: [(TopicPartition, Int64)]) {
    guard !offsets.isEmpty else { return }
    let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for (partition, offset) in offsets {
      rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
      storedOffsets[partition] = offset
    }
    let error = rd_kafka_offsets_store(handle, list)
    if error != RD_KAFKA_RESP_ERR_NO_ERROR {
      logger.warning("storing offsets failed: \(KafkaConfigBuilder.errorText(error))")
    }
  }

  /// Measures each assigned partition's lag: its high watermark as the last fetch saw it (no request
  /// to the broker) minus the next offset to commit: the oldest message read and not yet done, else
  /// (all read are done) the position it reads from next; for a partition paused by a failure, the
  /// offset last stored. A partition whose watermark (or position) is not known yet is left out.
  private func measureLags() {
    var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
    guard rd_kafka_assignment(handle, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else {
      return
    }
    defer { rd_kafka_topic_partition_list_destroy(assignment) }
    _ = rd_kafka_position(handle, assignment)
    let (undone, blocked) = tracker.oldestUndone()
    var measured: [TopicPartition: Int64] = [:]
    for index in 0..<Int(assignment.pointee.cnt) {
      let element = assignment.pointee.elems[index]
      let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
      var low: Int64 = -1
      var high: Int64 = -1
      guard
        rd_kafka_get_watermark_offsets(handle, element.topic, element.partition, &low, &high)
          == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0
      else { continue }
      let next = blocked.contains(partition) ? storedOffsets[partition] : undone[partition] ?? element.offset
      guard let next, next >= 0 else { continue }
      measured[partition] = max(0, high - next)
    }
    lags.values.withLock { $0 = measured }
  }

  /// Commits what is stored, waiting `seconds` at most for the group coordinator's answer (a
  /// revocation's commit, a stop's). A synchronous one, with the brokers gone, waited out the
  /// group's session (`session.timeout.ms`: 49 s, or 91 s at 90,000, past a service manager's
  /// stop timeout) before the process could end. Returns whether an answer came.
  @discardableResult
  private func commitWaiting(atMost seconds: Double) -> Bool {
    guard let queue = rd_kafka_queue_new(handle) else {
      commit(async: false)
      return true
    }
    defer { rd_kafka_queue_destroy(queue) }
    func said(_ error: rd_kafka_resp_err_t) -> Bool {
      if error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET {
        logger.warning(
          "committing offsets in group \(options.group) failed: \(KafkaConfigBuilder.errorText(error)); the messages done since the last commit will be delivered again"
        )
      }
      return true
    }
    let started = rd_kafka_commit_queue(handle, nil, queue, nil, nil)
    guard started == RD_KAFKA_RESP_ERR_NO_ERROR else { return said(started) }
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      guard let event = rd_kafka_queue_poll(queue, 100) else { continue }
      defer { rd_kafka_event_destroy(event) }
      if rd_kafka_event_type(event) == RD_KAFKA_EVENT_OFFSET_COMMIT {
        return said(rd_kafka_event_error(event))
      }
    }
    logger.warning(
      "committing offsets in group \(options.group): no answer from the group's coordinator in \(Int(seconds)) s (are the brokers \(options.bootstrapServers.joined(separator: ",")) down?); the messages done since the last commit will be delivered again"
    )
    return false
  }

  private func commit(async: Bool) {
    let error = rd_kafka_commit(handle, nil, async ? 1 : 0)
    if error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET {
      logger.warning(
        "committing offsets in group \(options.group) failed: \(KafkaConfigBuilder.errorText(error))")
    }
  }

  /// Pauses (or resumes) the partitions that are fetching but those paused after a failure: the
  /// engine is full (or has room again). A partition assigned meanwhile is paused once it fetches
  /// (`read`), not before (see `pausedInLibrary`).
  private func setBackpressure(_ on: Bool) {
    backpressure = on
    let partitions =
      on ? fetching.subtracting(failedPartitions) : pausedInLibrary.subtracting(failedPartitions)
    let error = setPaused(Array(partitions), on)
    if error != RD_KAFKA_RESP_ERR_NO_ERROR {
      logger.warning(
        "\(on ? "pausing" : "resuming") partitions for backpressure failed: \(KafkaConfigBuilder.errorText(error))"
      )
    }
  }

  /// Pauses (or resumes) those of `partitions` not paused (or paused) already, and waits until
  /// librdkafka has done so; keeps `pausedInLibrary` in step.
  @discardableResult
  private func setPaused(_ partitions: [TopicPartition], _ on: Bool) -> rd_kafka_resp_err_t {
    let changing = partitions.filter { pausedInLibrary.contains($0) != on }
    guard !changing.isEmpty else { return RD_KAFKA_RESP_ERR_NO_ERROR }
    if on { pausedInLibrary.formUnion(changing) } else { pausedInLibrary.subtract(changing) }
    return Self.withList(changing) {
      on ? rd_kafka_pause_partitions(handle, $0) : rd_kafka_resume_partitions(handle, $0)
    }
  }

  /// `partitions` as a librdkafka list (offsets unset), for `body`.
  private static func withList<Result>(
    _ partitions: [TopicPartition], _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Result
  ) -> Result {
    let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for partition in partitions {
      rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)
    }
    return body(list)
  }

  /// How long the consumer thread waits for room in a full engine before pausing its partitions.
  static let stallBeforePauseMs = 1_000

  /// Hands `message` to the engine's suspending door; the semaphore is signalled once it is taken.
  private func hand(_ message: Message) -> DispatchSemaphore {
    let accepted = DispatchSemaphore(value: 0)
    let deliver = intake.deliver
    Task {
      await deliver(message)
      accepted.signal()
    }
    return accepted
  }

  /// The consumer thread: poll, deliver while the engine has room (paused and still polling while
  /// it has none), store and commit; on stop, drain, commit and leave the group.
  func pollLoop() {
    var lastCommit = DispatchTime.now().uptimeNanoseconds
    var lastStore = lastCommit
    var lastLagMeasure: UInt64 = 0
    var lastBrokerProbe: UInt64 = 0
    let interval = UInt64(max(options.commitIntervalMs, 1)) * 1_000_000
    // Offsets are handed to librdkafka every few milliseconds, not per message: a store is a list
    // built and a lock taken in the C library; commits only ever send the latest stored offsets.
    let storeInterval = min(interval, 5_000_000)
    var sinceClock = 0
    // While the engine is full: the message handed to `deliver` and not yet taken (nothing else is
    // delivered before it), and the messages read after it, in order (`backpressure` says whether
    // the partitions are paused for that).
    var handed: DispatchSemaphore?
    // A partition holding too many messages behind an unfinished one (see `OffsetTracker`):
    // the partitions pause, as when the engine is full, until that message is done.
    var held = false
    while !stopRequested.load(ordering: .acquiring) {
      if !unavailableTopics.isEmpty { recheckUnavailableTopics(now: DispatchTime.now().uptimeNanoseconds) }
      if let pending = handed, pending.wait(timeout: .now()) == .success { handed = nil }
      while handed == nil && waitingHead < waiting.count {
        let next = waiting[waitingHead]
        waitingHead += 1
        // Revoked meanwhile: the partition's new owner reads it again.
        if tracker.isRetired(next.log) { continue }
        if !intake.tryDeliver(next.message) { handed = hand(next.message) }
      }
      let backlog = handed != nil || waitingHead < waiting.count || held
      if !backlog {
        if !waiting.isEmpty {
          waiting.removeAll(keepingCapacity: true)
          waitingHead = 0
        }
        if backpressure { setBackpressure(false) }
      } else if !backpressure {
        setBackpressure(true)
      }
      let message = rd_kafka_consumer_poll(handle, backlog ? 2 : 100)
      if let message {
        if let (value, log) = read(message) {
          if backlog {
            waiting.append((value, log))
          } else if !intake.tryDeliver(value) {
            // The engine is full: wait for room a while, as a blocking intake would (a short stall
            // is cheaper than pausing, which drops librdkafka's prefetched records), but not so
            // long that the group gives up on this member: then the partitions pause.
            let pending = hand(value)
            if pending.wait(timeout: .now() + .milliseconds(Self.stallBeforePauseMs)) != .success {
              handed = pending
            }
          }
        }
        rd_kafka_message_destroy(message)
        // The clock is read every 32 messages while they stream, and whenever the queue is empty.
        sinceClock += 1
        if sinceClock < 32 { continue }
      }
      sinceClock = 0
      let now = DispatchTime.now().uptimeNanoseconds
      if message == nil || now - lastStore >= storeInterval {
        store(tracker.takeStorable())
        pause(tracker.takeBlocked())
        lastStore = now
        let behind = tracker.waitingBehind()
        if let behind, !held {
          logger.warning(
            "\(OffsetTracker.longestWait) messages of \(behind.partition.topic)/\(behind.partition.partition) wait behind offset \(behind.offset), not done yet (retrying, or its error path failing): the partitions pause until it is, as nothing after it can be committed"
          )
        } else if behind == nil, held {
          logger.info("the message holding the partitions is done: they resume")
        }
        held = behind != nil
      }
      if now - lastCommit >= interval {
        store(tracker.takeStorable())
        commit(async: true)
        lastCommit = now
      }
      if now - lastLagMeasure >= 1_000_000_000 {
        measureLags()
        lastLagMeasure = now
      }
      // Every 5 s at most: the probe holds this thread up to 500 ms (what librdkafka fetched
      // already still reaches the engine meanwhile, at 90% of its pace or better).
      if brokersDown, now - lastBrokerProbe >= 5_000_000_000 {
        lastBrokerProbe = now
        if KafkaConfigBuilder.brokerAnswers(handle) {
          brokersDown = false
          intake.health.clear(brokersComponent)
          logger.info("Kafka consumer: a broker answers again")
        }
      }
    }
    // Read but never delivered: not waited for (nothing after them in their partitions was
    // delivered either, so no offset at or past them is stored; they come again).
    let never = Array(waiting[waitingHead...].map(\.log))
    var undelivered = tracker.countAwaited(never)
    let deadline = Date().addingTimeInterval(options.shutdownDrainSeconds)
    while tracker.outstanding > undelivered && Date() < deadline {
      // Polling keeps the group's callbacks served (a revocation stores and commits what is done);
      // a message read now is not delivered: its offset is never stored, so it comes again.
      if let message = rd_kafka_consumer_poll(handle, 5) { rd_kafka_message_destroy(message) }
      // A revocation meanwhile retires some of them.
      undelivered = tracker.countAwaited(never)
    }
    if tracker.outstanding > undelivered {
      // Those still held, and those done after one of them in their partition: its committed
      // offset stops at the first held one, so they come again too.
      let held = tracker.unacknowledged - undelivered
      let behind = tracker.outstanding - undelivered - held
      let after =
        behind > 0
        ? ", and so will \(behind) acknowledged after them in their partitions (a partition's committed offset stops at its first unacknowledged message)"
        : ""
      logger.warning(
        "\(held) Kafka messages were not acknowledged before shutdown; they will be redelivered\(after)")
    }
    store(tracker.takeStorable())
    coordinatorSilent = !commitWaiting(atMost: 5)
    close()
  }

  /// An error of the client as a whole. A fatal one stops the consumer; before any assignment, brokers
  /// that cannot be reached are why nothing comes, and /readyz says so (librdkafka's log lines
  /// already said each failed connection).
  fileprivate func clientError(_ error: rd_kafka_resp_err_t, _ reason: String) {
    if error == RD_KAFKA_RESP_ERR__FATAL {
      stopOnFatalError()
    } else if !assigned,
      error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || error == RD_KAFKA_RESP_ERR__TRANSPORT
        || error == RD_KAFKA_RESP_ERR__RESOLVE
    {
      intake.health.report(
        component,
        "waiting for a partition assignment in group \(options.group): cannot reach the brokers \(options.bootstrapServers.joined(separator: ",")) (\(reason))"
      )
    } else {
      logger.warning("Kafka consumer: \(reason) (\(KafkaConfigBuilder.errorText(error)))")
      if error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN {
        // Not ready, as an MQTT source whose broker is away: nothing new can come (what was
        // fetched already goes on). No callback says when a broker is back: probed every 5 s.
        brokersDown = true
        intake.health.report(
          brokersComponent,
          "cannot reach any broker of \(options.bootstrapServers.joined(separator: ",")) (\(reason)); reconnecting"
        )
      }
    }
  }

  private func stopOnFatalError() {
    // librdkafka may report one fatal error both to the error callback and as a consumer message.
    guard fatalError.withLock({ $0 == nil }) else { return }
    let reason = KafkaConfigBuilder.fatalError(of: handle)
    logger.critical("Kafka consumer fatal error: \(reason); stopping")
    fatalError.withLock { $0 = reason }
    requestStop()
  }

  /// The message of a record, recorded as delivered in its partition's log; nil for an error.
  private func read(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> (Message, PartitionLog)? {
    let record = message.pointee
    if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
      if record.err == RD_KAFKA_RESP_ERR__FATAL {
        stopOnFatalError()
        return nil
      }
      if record.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
        // Where, when the error is a partition's (a corrupt record, an offset out of range);
        // librdkafka goes on fetching after it.
        // (A topic's own error, such as "not available", has no offset: the topic alone.)
        let position =
          record.rkt.map {
            let topic = String(cString: rd_kafka_topic_name($0))
            return record.offset >= 0 ? " at \(topic)/\(record.partition)@\(record.offset)" : " on \(topic)"
          }
          ?? ""
        let text = String(cString: rd_kafka_message_errstr(message))
        let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) }
        if record.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, let topic, topic.hasPrefix("^") {
          // A regular expression no topic matches yet: what it is for (topics made later), not an
          // error; the source waits for its assignment, which `/readyz` says. (Reported as a
          // topic's, it held `/readyz` at "not ready" after matching topics came: none has its name.)
          logger.warning(
            "no topic matches \(topic) yet: one created later is read once the metadata refresh finds it (topic.metadata.refresh.interval.ms)"
          )
          return nil
        }
        logger.error("Kafka consumer error\(position): \(text) (\(KafkaConfigBuilder.errorText(record.err)))")
        // A subscribed topic that does not exist or may not be read: nothing comes from it until
        // that changes, so the daemon is not ready until an assignment of one of its partitions, or
        // the metadata looked up every 2 s (`recheckUnavailableTopics`), says it is readable.
        if record.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
          || record.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
          let topic
        {
          unavailableTopics.insert(topic)
          intake.health.report(topicComponent(topic), text)
        }
      }
      return nil
    }
    let kafkaTopic: String
    if let rkt = record.rkt, let known = topicNames[rkt] {
      kafkaTopic = known
    } else {
      kafkaTopic = String(cString: rd_kafka_topic_name(record.rkt))
      if let rkt = record.rkt { topicNames[rkt] = kafkaTopic }
    }
    let payload = record.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: record.len)) } ?? []
    let keyBytes = record.key.map { UnsafeRawBufferPointer(start: $0, count: record.key_len) }
    // The record's headers, in order (a header without a value has a nil one), read once: they are
    // the message's user properties (`get_user_property()`), as an MQTT 5 message's are, and the
    // last of a name gives the client id or rule topic a header is configured to carry.
    var headerList: [(name: String, value: String?)] = []
    // The value of the last header the rule topic is configured to come from, as sent.
    var topicHeaderBytes: UnsafeRawBufferPointer?
    var headers: OpaquePointer? = nil
    if rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
      var index = 0
      var name: UnsafePointer<CChar>? = nil
      var value: UnsafeRawPointer? = nil
      var size = 0
      while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
        if let name {
          let bytes = value.map { UnsafeRawBufferPointer(start: $0, count: size) }
          let headerName = String(cString: name)
          if case .header(let topicHeader) = options.topicFrom, headerName.isExactly(topicHeader) {
            topicHeaderBytes = bytes
          }
          headerList.append((headerName, bytes.map { String(decoding: $0, as: UTF8.self) }))
        }
        index += 1
      }
    }
    func header(_ name: String) -> String? { KafkaSource.lastHeader(name, in: headerList) }
    // The rule topic's bytes and where they come from; an empty key or header names no topic
    // either: the Kafka topic, as for none.
    let named: (bytes: UnsafeRawBufferPointer, source: String)?
    switch options.topicFrom {
    case .key: named = keyBytes.map { ($0, "its key") }
    case .header(let name): named = topicHeaderBytes.map { ($0, "its header '\(name)'") }
    case .topic: named = nil
    }
    var topic = kafkaTopic
    // Why the key or header names no topic: the record is refused (said, counted, committed).
    var topicProblem: String?
    if let named, !named.bytes.isEmpty {
      // Keys that are no topics (phone numbers, `order#17`) say where else a topic can come from.
      let elsewhere =
        options.topicFrom == .key
        ? " (keys that are no topics: --kafka-topic-from topic or header:NAME)" : ""
      topicProblem = Self.topicProblem(named.bytes).map { "\(named.source) \($0)\(elsewhere)" }
      topic = String(decoding: named.bytes, as: UTF8.self)
    }
    let partition = TopicPartition(topic: kafkaTopic, partition: record.partition)
    let offset = record.offset
    // The log of the last partition seen, reused while messages keep coming from it (no lookup by
    // name); `delivered(to:)` refuses a log retired by a rebalance meanwhile.
    let log: PartitionLog
    if let last = lastLog, last.partition == partition, tracker.delivered(to: last, offset: offset) {
      log = last
    } else {
      let (fresh, wentBack) = tracker.delivered(partition, offset: offset)
      // The first message of this assignment: librdkafka fetches the partition, and a pause for
      // backpressure can no longer outdate the start of that (see `pausedInLibrary`).
      if fetching.insert(partition).inserted, backpressure, !failedPartitions.contains(partition) {
        setPaused([partition], true)
      }
      if let wentBack {
        logger.warning(
          "\(kafkaTopic)/\(record.partition) went back from offset \(wentBack) to \(offset) (an offset reset or a seek): its offsets are tracked afresh; messages still in flight from before are not committed"
        )
      }
      log = fresh
      lastLog = log
    }
    if let topicProblem {
      refuse(origin: "\(kafkaTopic)/\(record.partition)@\(offset)", topicProblem)
      tracker.acknowledge(log, offset: offset, .done)
      return nil
    }
    let tracker = self.tracker
    // timestamp() is the record's own time (as the broker or producer stamped it) when it has one:
    // a redelivered record keeps its time, and a backlog is filed under the days it was produced.
    var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
    let recordTime = rd_kafka_message_timestamp(message, &timestampType)
    let receivedAt =
      timestampType != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && recordTime >= 0 ? Int(recordTime) : now()
    let userProperties = headerList.map { (key: $0.name, value: $0.value ?? "") }
    let value = Message(
      topic: topic, payload: payload, clientID: header(options.clientIDHeader), receivedAtMs: receivedAt,
      userProperties: userProperties, origin: "\(kafkaTopic)/\(record.partition)@\(offset)",
      acknowledge: { acknowledgement in
        tracker.acknowledge(log, offset: offset, acknowledgement)
      })
    return (value, log)
  }

  /// Why a record key's or header's bytes name no topic, or nil: MQTT and AWS take a topic of UTF-8
  /// text with no wildcard (a key `a/+/b` ran as a topic, which the replay refuses; bytes that
  /// are not UTF-8 became U+FFFD, so that different keys ran as one topic and one ordering lane).
  static func topicProblem(_ bytes: UnsafeRawBufferPointer) -> String? {
    if bytes.contains(where: { $0 == 0x2B || $0 == 0x23 || $0 == 0 }) {
      return "contains a wildcard (+ or #) or NUL: a message's topic is a name, not a filter"
    }
    if String(validating: bytes, as: UTF8.self) == nil { return "is not UTF-8 text" }
    return nil
  }

  /// Refused records' log lines (consumer thread only).
  private var refusedLog = LogBudget(startNanoseconds: DispatchTime.now().uptimeNanoseconds)

  /// Counts a record no rule can see (its key or header names no topic) and says so: the first ten
  /// a minute each with their place, then a count in the next minute's first line. Its offset is
  /// committed: the partition goes on, and the record stays in Kafka at the place given.
  private func refuse(origin: String, _ problem: String) {
    CounterStore.shared.messagesRefused.wrappingAdd(1, ordering: .relaxed)
    let (logs, before) = refusedLog.turn(now: DispatchTime.now().uptimeNanoseconds)
    guard logs else { return }
    logger.warning(
      "record \(origin) refused: \(RuleFile.printable(problem, keepsLineBreaks: false)); no rule sees it, its offset is committed\(before > 0 ? " (and \(before) more refused since the last line)" : ""); counted in \(MetricNames.messagesRefused)",
      // Its place as a field too, as an action's failure gives it (`--log-format json`).
      metadata: ["origin": "\(origin)", "refusedSince": .stringConvertible(before)]
    )
  }

  /// Leaves the group and destroys the client, waiting 5 s at most for the group's coordinator:
  /// `rd_kafka_consumer_close` waits up to the group's session with the brokers gone. Closed in
  /// the background, its revocation served here (it stores and commits what is done).
  private func close() {
    guard let handle else { return }
    var closed = false
    if let queue = rd_kafka_queue_new(handle) {
      if let failure = rd_kafka_consumer_close_queue(handle, queue) {
        rd_kafka_error_destroy(failure)
      } else {
        let deadline = Date().addingTimeInterval(5)
        // Served as events, not callbacks: a record fetched meanwhile comes to this queue too,
        // and serving it by callback aborted the process inside librdkafka (`rd_kafka_q_serve:
        // assert: res != RD_KAFKA_OP_RES_PASS`: a message has no callback). Such a record is
        // dropped (never delivered, its offset never stored: it comes again); the revocation
        // is served as its callback would be.
        while rd_kafka_consumer_closed(handle) == 0, Date() < deadline {
          guard let event = rd_kafka_queue_poll(queue, 100) else { continue }
          if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE,
            let partitions = rd_kafka_event_topic_partition_list(event)
          {
            rebalance(handle: handle, error: rd_kafka_event_error(event), partitions: partitions)
          } else if rd_kafka_event_type(event) == RD_KAFKA_EVENT_ERROR {
            // As the error callback takes them (an event carries a fatal error's own code).
            clientError(
              rd_kafka_event_error_is_fatal(event) != 0
                ? RD_KAFKA_RESP_ERR__FATAL : rd_kafka_event_error(event),
              rd_kafka_event_error_string(event).map { String(cString: $0) } ?? "")
          }
          rd_kafka_event_destroy(event)
        }
        closed = rd_kafka_consumer_closed(handle) != 0
        if !closed {
          logger.warning(
            "leaving group \(options.group): no answer from the group's coordinator in 5 s; the group sees this member leave when its session (session.timeout.ms) ends"
          )
        }
      }
      rd_kafka_queue_destroy(queue)
    }
    if closed {
      rd_kafka_destroy(handle)
      retained?.release()
    } else {
      // Its destruction waits out the session too: on a thread of its own, which the process's
      // exit may cut short, holding this consumer (its callbacks' opaque) until it is done.
      let client = ClientToDestroy(handle: handle, retained: retained)
      Thread {
        rd_kafka_destroy_flags(client.handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
        client.retained?.release()
      }.start()
    }
    // Gone: what it reported is no longer anyone's state (the revoke on closing reported a
    // rebalance).
    intake.health.clear(component)
    intake.health.clear(pausedComponent)
    intake.health.clear(brokersComponent)
    for topic in unavailableTopics { intake.health.clear(topicComponent(topic)) }
    self.handle = nil
    retained = nil
  }
}

/// A client handed to the thread that destroys it, with the reference its callbacks hold.
private struct ClientToDestroy: @unchecked Sendable {
  let handle: OpaquePointer
  let retained: Unmanaged<KafkaConsumer>?
}

extension KafkaSource {
  /// `seconds` as a log line says it: whole, or to a tenth (`3.3`, not `3.3333333333333335`).
  static func secondsText(_ seconds: Double) -> String {
    let tenths = (seconds * 10).rounded()
    return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
  }
}
