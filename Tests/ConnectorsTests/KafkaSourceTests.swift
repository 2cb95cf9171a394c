import Foundation
import Logging
import RulesEngine
import Synchronization
import TestSupport
import Testing

@testable import Connectors

@Suite("Kafka source and producer against librdkafka's mock cluster", .serialized)
struct KafkaSourceTests {
  /// The group and the brokers come from the source URL: given again in --kafka-config they would
  /// replace the URL's silently (the log and /readyz naming the URL's group all the same).
  @Test func urlSettingsAreNotReplacedByKafkaConfig() async throws {
    for key in ["group.id", "bootstrap.servers", "metadata.broker.list"] {
      var options = try KafkaSourceOptions(url: "kafka://127.0.0.1:1/t?group=g")
      options.config = [(key, "other")]
      do {
        try await KafkaSource(options: options).run { _ in }
        Issue.record("\(key) accepted")
      } catch {
        #expect("\(error)".contains("'\(key)' comes from the source URL"), "\(error)")
      }
    }
  }

  @Test("kafka:// URLs parse with their group; bad ones say what is missing")
  func urlParsing() throws {
    let options = try KafkaSourceOptions(url: "kafka://a:9092,b:9093/orders,events?group=rules")
    #expect(options.bootstrapServers == ["a:9092", "b:9093"])
    #expect(options.topics == ["orders", "events"])
    #expect(options.group == "rules")
    #expect(options.topicFrom == .key)
    #expect(try KafkaSourceOptions.TopicFrom("header:mqtt-topic") == .header("mqtt-topic"))
    #expect(throws: ConnectorError.self) { try KafkaSourceOptions(url: "kafka://a:9092/orders") }
    #expect(throws: ConnectorError.self) { try KafkaSourceOptions(url: "kafka://a:9092?group=g") }
    #expect(throws: ConnectorError.self) { try KafkaSourceOptions.TopicFrom("value") }
    // A port librdkafka would take as 0 (and retry for ever), an empty group, a '#' in the query.
    for (url, said) in [
      ("kafka://a:abc/t?group=g", "bootstrap server 'a:abc' has no port from 1 to 65535"),
      ("kafka://a:99999/t?group=g", "bootstrap server 'a:99999' has no port"),
      ("kafka://a:9092/t?group=", "no consumer group"),
      ("kafka://a:9092/t?group=g#x", "'#' in"),
      // A topic Kafka cannot have (a broker would refuse it, or a mock create it as written).
      ("kafka://a:9092/read ings?group=g", "topic 'read ings' in"),
      ("kafka://a:9092/a/b?group=g", "a Kafka topic takes only letters"),
      // A pattern librdkafka compiles only as it subscribes (the run had loaded its rules, then
      // failed with "Invalid argument or configuration" and exit 74).
      ("kafka://a:9092/^read(ings?group=g", "topic pattern '^read(ings' in"),
      ("kafka://a:9092/t,^x[?group=g", "not a POSIX extended regular expression"),
      // A Java client's digit class, which glibc reads as the letter.
      ("kafka://a:9092/^sensor\\d+?group=g", "'\\d' is the letter d in a POSIX extended regular expression"),
    ] {
      #expect {
        try KafkaSourceOptions(url: url)
      } throws: { error in
        "\(error)".contains(said)
      }
    }
    #expect(KafkaSourceOptions.serverProblem("[::1]:9092") == nil)
    // librdkafka names an alias by its own name: the name given is said beside it.
    #expect(
      KafkaSettings.problem(key: "linger.ms", value: "zz")?.hasSuffix("(librdkafka's name for linger.ms)")
        == true)
    #expect(KafkaSettings.problem(key: "foo.bar", value: "1")?.contains("librdkafka's name") == false)
    // A regular expression (librdkafka's pattern subscription) is not a name.
    #expect(try KafkaSourceOptions(url: "kafka://a:9092/^read.*?group=g").topics == ["^read.*"])
    // A password in the URL would reach the logs as part of a broker's name: refused, unsaid.
    #expect {
      try KafkaSourceOptions(url: "kafka://user:s3cret@a:9092/orders?group=g")
    } throws: { error in
      "\(error)".contains("takes no user or password") && !"\(error)".contains("s3cret")
    }
    for url in ["kafka://u:s3cret@a:9092?group=g", "kafka://u:s3/cr?et@a:9092/t?group=g"] {
      #expect {
        try KafkaSourceOptions(url: url)
      } throws: { error in
        !"\(error)".contains("s3")
      }
    }
    #expect(try KafkaSourceOptions.setting("sasl.mechanism=PLAIN") == ("sasl.mechanism", "PLAIN"))
  }

  /// A file setting that cannot be read is said with its path, unless the value is no path (a PEM
  /// key given where its file was meant: a secret, not printed); a text without '=' is not said.
  @Test func unreadableFileSettingsAreSaidWithoutSecrets() {
    #expect(
      KafkaSettings.problem(key: "ssl.ca.location", value: "no/ca.pem")
        == "cannot read 'no/ca.pem': No such file or directory")
    #expect(KafkaSettings.problem(key: "ssl.ca.location", value: "probe") == nil)
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----"
    #expect(
      KafkaSettings.problem(key: "ssl.key.location", value: pem)
        == "cannot read the file it names: No such file or directory")
    #expect {
      try KafkaSourceOptions.setting("sasl.passwordhunter2")
    } throws: { error in
      !"\(error)".contains("hunter2")
    }
  }

  private func produce(
    _ producer: KafkaProducer, topic: String, range: Range<Int>, partitions: Int32
  ) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
      for index in range {
        group.addTask {
          try await producer.produce(
            topic: topic, key: Array("sensors/\(index % 4)/temp".utf8), value: Array("m\(index)".utf8),
            partition: Int32(index) % partitions, headers: [("clientid", "dev-\(index)")])
        }
      }
      try await group.waitForAll()
    }
  }

  /// Produces one message at a time, each after the previous one's delivery report: the partition's
  /// offsets then follow the index order exactly. (Concurrent `produce` calls reach librdkafka in
  /// whatever order their tasks run, so a test that checks order must not use them.)
  private func produceInOrder(_ producer: KafkaProducer, topic: String, range: Range<Int>) async throws {
    for index in range {
      try await producer.produce(
        topic: topic, key: Array("sensors/\(index % 4)/temp".utf8), value: Array("m\(index)".utf8),
        partition: 0, headers: [("clientid", "dev-\(index)")])
    }
  }

  /// The offsets of `collector`'s messages on one partition, in delivery order.
  /// Runs a source with `options`, acknowledging every message, until `count` have come (or
  /// `seconds` have passed) and a moment more; returns what came.
  private func collect(
    _ options: KafkaSourceOptions, count: Int, within seconds: Double,
    logger: Logger = Logger(label: "iotrules.kafka")
  ) async throws -> Collector {
    let collector = Collector()
    let run = Task {
      try await KafkaSource(options: options, logger: logger).run { message in
        await collector.deliver(message)
        message.acknowledge(.done)
      }
    }
    _ = await eventually(within: seconds) { collector.count >= count }
    try await Task.sleep(for: .milliseconds(300))
    run.cancel()
    try await run.value
    return collector
  }

  private func offsets(_ collector: Collector) -> [Int] {
    collector.messages.withLock { $0.map { Int($0.origin.split(separator: "@").last ?? "") ?? -1 } }
  }

  @Test("clientid() is the last clientid header; one with a null value is an empty string, not n/a")
  func lastHeaderWins() {
    #expect(
      KafkaSource.lastHeader("clientid", in: [("clientid", "a"), ("h", "x"), ("clientid", "b")]) == "b")
    #expect(KafkaSource.lastHeader("clientid", in: [("clientid", "a"), ("clientid", nil)]) == "")
    #expect(KafkaSource.lastHeader("clientid", in: [("h", "x")]) == nil)
    // Header names compare by bytes.
    #expect(KafkaSource.lastHeader("caf\u{E9}", in: [("cafe\u{301}", "x")]) == nil)
  }

  @Test(
    "a revocation's wait is said whole or to a tenth of a second (10000 ms / 3 said 3.3333333333333335 s)")
  func secondsAreSaidToATenth() {
    #expect(
      [10.0, 10_000 / 3_000, 0.25, 45_000 / 3_000].map(KafkaSource.secondsText) == ["10", "3.3", "0.3", "15"])
  }

  @Test("an empty value or key is produced empty, not null (a null value is a tombstone)")
  func emptyIsNotNull() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("out", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await producer.produce(topic: "out", key: [], value: [], partition: 0)
    try await producer.produce(topic: "out", key: nil, value: Array("x".utf8), partition: 0)
    // kcat prints -1 for a null key or value, else its length.
    let kcat = try ProcessSupport.locate("kcat", package: "kcat")
    let printed = try ProcessSupport.run(
      "/usr/bin/timeout",
      [
        "30", kcat, "-C", "-b", cluster.bootstrapServers, "-t", "out", "-o", "beginning", "-e", "-q", "-f",
        "%K %S\n",
      ])
    #expect(printed.split(separator: "\n") == ["0 0", "-1 1"], "\(printed)")
  }

  @Test("a partition the topic does not have fails permanently, naming the partition asked for")
  func anUnknownPartitionIsNamed() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("four", partitions: 4)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await producer.produce(topic: "four", key: nil, value: [1], partition: 3)
    do {
      try await producer.produce(topic: "four", key: nil, value: [1], partition: 7)
      Issue.record("produced to partition 7 of 4")
    } catch {
      #expect(error.kind == .permanent)
      #expect(
        error.message.hasPrefix("producing to 'four' partition 7 on \(cluster.bootstrapServers) failed: "),
        "\(error.message)")
    }
  }

  @Test(
    "consumes a topic: rule topic from the key (the Kafka topic for an empty one), client id from a header, origin topic/partition@offset, the record's own time"
  )
  func consumes() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("readings", partitions: 4)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    let before = Int(Date().timeIntervalSince1970 * 1000)
    try await produce(producer, topic: "readings", range: 0..<100, partitions: 4)
    try await producer.produce(topic: "readings", key: [], value: Array("empty key".utf8), partition: 0)
    let after = Int(Date().timeIntervalSince1970 * 1000)

    let collector = Collector()
    var options = try KafkaSourceOptions(
      url: "kafka://\(cluster.bootstrapServers)/readings?group=\(unique("g"))")
    options.shutdownDrainSeconds = 2
    // The reading clock is far from the records' time: timestamp() must be the record's.
    let source = KafkaSource(options: options, now: { 42 })
    let run = Task {
      try await source.run { message in
        await collector.deliver(message)
        message.acknowledge(.done)
      }
    }
    #expect(await eventually(within: 30) { collector.count >= 101 })
    run.cancel()
    try await run.value
    let messages = collector.messages.withLock { $0 }
    #expect(
      Set(messages.map { String(decoding: $0.payload, as: UTF8.self) })
        == Set((0..<100).map { "m\($0)" } + ["empty key"]))
    let m5 = try #require(messages.first { $0.payload == Array("m5".utf8) })
    #expect(m5.topic == "sensors/1/temp")
    #expect(m5.clientID == "dev-5")
    #expect(m5.origin.hasPrefix("readings/1@"))
    #expect(m5.userProperties.map(\.key) == ["clientid"] && m5.userProperties.map(\.value) == ["dev-5"])
    #expect(messages.allSatisfy { (before - 1000...after + 1000).contains($0.receivedAtMs) })
    let unkeyed = try #require(messages.first { $0.payload == Array("empty key".utf8) })
    #expect(unkeyed.topic == "readings")
  }

  @Test(
    "a key or header naming no topic (a wildcard, NUL, bytes not UTF-8) is refused, counted and committed; the rest go on"
  )
  func refusesKeysThatNameNoTopic() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("keyed", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    let keys: [[UInt8]] = [
      Array("a/1".utf8), Array("a/+/b".utf8), [0x61, 0x2F, 0xFF, 0xFE], Array("k/#".utf8), Array("a/2".utf8),
    ]
    for (index, key) in keys.enumerated() {
      try await producer.produce(topic: "keyed", key: key, value: Array("m\(index)".utf8), partition: 0)
    }
    let refusedBefore = CounterStore.shared.messagesRefused.load(ordering: .relaxed)
    let group = unique("refuse")
    func options() throws -> KafkaSourceOptions {
      var options = try KafkaSourceOptions(
        url: "kafka://\(cluster.bootstrapServers)/keyed?group=\(group)",
        config: [("group.instance.id", "member-1"), ("session.timeout.ms", "6000")])
      options.shutdownDrainSeconds = 0.5
      options.commitIntervalMs = 100
      return options
    }
    let logs = LogLines()
    let collector = try await collect(try options(), count: 2, within: 30, logger: logs.logger)
    #expect(collector.messages.withLock { $0.map(\.topic) } == ["a/1", "a/2"])
    #expect(CounterStore.shared.messagesRefused.load(ordering: .relaxed) - refusedBefore >= 3)
    // Each said with its place, and where else a topic can come from.
    #expect(
      logs.messages.filter {
        $0.hasPrefix("record keyed/0@")
          && $0.contains("(keys that are no topics: --kafka-topic-from topic or header:NAME)")
      }.count == 3, "\(logs.messages)")
    // And as a field, for JSON logs.
    let origins = logs.metadata { $0.hasPrefix("record keyed/0@") }.compactMap { $0["origin"]?.description }
    #expect(origins.count == 3 && origins.allSatisfy { $0.hasPrefix("keyed/0@") }, "\(origins)")
    // Committed with the others: a restart of the group reads nothing again.
    try await producer.produce(topic: "keyed", key: Array("a/3".utf8), value: Array("m5".utf8), partition: 0)
    let again = try await collect(try options(), count: 1, within: 45)
    #expect(again.messages.withLock { $0.map(\.topic) } == ["a/3"])
  }

  @Test(
    "the consumer lag of each assigned partition counts the messages not yet done: read and unacknowledged, then none once they are",
    .timeLimit(.minutes(2)))
  func reportsConsumerLag() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("lagging", partitions: 2)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produce(producer, topic: "lagging", range: 0..<20, partitions: 2)
    let held = Collector()
    var options = try KafkaSourceOptions(
      url: "kafka://\(cluster.bootstrapServers)/lagging?group=\(unique("g"))")
    options.shutdownDrainSeconds = 1
    let source = KafkaSource(options: options)
    // Taken, not acknowledged: each partition's 10 messages are read and not done.
    let run = Task { try await source.run(deliver: held.deliver) }
    func lag(_ partition: Int) -> Int? {
      let prefix = "\(KafkaSource.lagMetric){topic=\"lagging\",partition=\"\(partition)\"} "
      return source.sampledMetrics.split(separator: "\n").first { $0.hasPrefix(prefix) }
        .flatMap { Int($0.dropFirst(prefix.count)) }
    }
    #expect(
      await eventually(within: 30) { held.count == 20 && lag(0) == 10 && lag(1) == 10 },
      "\(source.sampledMetrics)")
    for message in held.messages.withLock({ $0 }).prefix(15) { message.acknowledge(.done) }
    #expect(await eventually(within: 30) { (lag(0) ?? 0) + (lag(1) ?? 0) == 5 }, "\(source.sampledMetrics)")
    for message in held.messages.withLock({ $0 }) { message.acknowledge(.done) }
    #expect(await eventually(within: 30) { lag(0) == 0 && lag(1) == 0 }, "\(source.sampledMetrics)")
    run.cancel()
    try await run.value
    #expect(source.sampledMetrics.hasPrefix("# HELP \(KafkaSource.lagMetric) "))
    #expect(!source.sampledMetrics.contains("partition="), "a stopped source holds no partition")
  }

  @Test(
    "health: the assignment ends the wait; a message that reached no path pauses its partition and makes the daemon unhealthy",
    .timeLimit(.minutes(2)))
  func reportsItsStateToHealth() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("watched", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produceInOrder(producer, topic: "watched", range: 0..<10)
    let health = Health()
    let collector = Collector()
    let intake = MessageIntake(
      deliver: { message in
        collector.messages.withLock { $0.append(message) }
        message.acknowledge(message.payload == Array("m3".utf8) ? .failed : .done)
      }, health: health)
    let group = unique("watch")
    var options = try KafkaSourceOptions(url: "kafka://\(cluster.bootstrapServers)/watched?group=\(group)")
    options.shutdownDrainSeconds = 2
    let run = Task { try await KafkaSource(options: options).run(intake: intake) }
    let paused = "kafka source group \(group) paused partitions"
    #expect(await eventually(within: 30) { health.problems.contains { $0.component == paused } })
    let problems = health.problems
    // Assigned: no longer waiting; the paused partition is the one problem, and it is unhealthy.
    #expect(problems.map(\.component) == [paused], "\(problems)")
    #expect(problems.first?.level == .unhealthy)
    #expect(problems.first?.message == "[\"watched/0\"] paused: a message reached no error path")
    run.cancel()
    try await run.value
  }

  @Test(
    "health: a subscribed topic that cannot be read makes the daemon not ready until it can",
    .timeLimit(.minutes(2)))
  func refusedTopicIsNotReady() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    cluster.refuseTopic("later", true)
    let health = Health()
    let intake = MessageIntake(deliver: { message in message.acknowledge(.done) }, health: health)
    let group = unique("refused")
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["later"], group: group,
      config: [("topic.metadata.refresh.interval.ms", "500")], shutdownDrainSeconds: 2)
    let run = Task { try await KafkaSource(options: options).run(intake: intake) }
    let component = "kafka source group \(group) topic later"
    #expect(await eventually(within: 30) { health.problems.contains { $0.component == component } })
    let problem = try #require(health.problems.first { $0.component == component })
    #expect(problem.level == .notReady)
    #expect(problem.message.contains("later"), "\(problem.message)")
    // Looked up again every 2 s, and still not readable.
    try await Task.sleep(for: .seconds(4.5))
    #expect(health.problems.contains { $0.component == component })
    // Readable again (the mock cluster made the topic when first asked for it).
    cluster.refuseTopic("later", false)
    // (Its assignment, which ends the wait for one, can take the mock cluster half a minute.)
    #expect(
      await eventually(within: 30) { !health.problems.contains { $0.component == component } },
      "\(health.problems)")
    run.cancel()
    try await run.value
  }

  @Test(
    "health: a regular expression no topic matches yet is a warning, and the first matching topic's assignment makes the daemon ready",
    .timeLimit(.minutes(2)))
  func aPatternWithoutTopicsWaitsForOne() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    let health = Health()
    let intake = MessageIntake(deliver: { message in message.acknowledge(.done) }, health: health)
    let logs = LogLines()
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: [#"^reg\..*"#], group: unique("pattern"),
      // (The mock cluster holds a rejoin in its joining state up to the session timeout.)
      config: [("topic.metadata.refresh.interval.ms", "500"), ("session.timeout.ms", "6000")],
      shutdownDrainSeconds: 2)
    let run = Task { try await KafkaSource(options: options, logger: logs.logger).run(intake: intake) }
    #expect(
      await eventually(within: 30) {
        logs.messages.contains { $0.hasPrefix(#"no topic matches ^reg\..* yet"#) }
      })
    #expect(!health.probe(readiness: true).passes)
    try cluster.createTopic("reg.a", partitions: 1)
    // Ready once assigned (a topic's problem under the pattern's name held it not ready for good).
    #expect(
      await eventually(within: 60) { health.probe(readiness: true).passes }, "\(health.problems)")
    #expect(!logs.lines.contains { $0.hasPrefix("error") }, "\(logs.lines)")
    run.cancel()
    try await run.value
  }

  @Test(
    "health: every broker down after the assignment makes the daemon not ready until one answers",
    .timeLimit(.minutes(3)))
  func brokersDownIsNotReady() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("flaky", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produceInOrder(producer, topic: "flaky", range: 0..<3)
    let health = Health()
    let collector = Collector()
    let intake = MessageIntake(
      deliver: { message in
        await collector.deliver(message)
        message.acknowledge(.done)
      }, health: health)
    let group = unique("down")
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["flaky"], group: group,
      config: [("session.timeout.ms", "6000")], shutdownDrainSeconds: 1)
    let run = Task { try await KafkaSource(options: options).run(intake: intake) }
    #expect(await eventually(within: 30) { collector.count >= 3 })
    #expect(health.problems.isEmpty, "\(health.problems)")
    // Not ready while the broker is down: as "every broker down" once assigned, or, when the group
    // lost the assignment meanwhile (the mock's session ends under load), as waiting for one.
    cluster.setBroker(1, up: false)
    #expect(
      await eventually(within: 30) { !health.probe(readiness: true).passes }, "\(health.problems)")
    let brokers = "kafka source group \(group) brokers"
    if let problem = health.problems.first(where: { $0.component == brokers }) {
      #expect(problem.level == .notReady)
      #expect(problem.message.hasPrefix("cannot reach any broker of "), "\(problem.message)")
    }
    cluster.setBroker(1, up: true)
    try await produceInOrder(producer, topic: "flaky", range: 3..<6)
    #expect(await eventually(within: 60) { collector.count >= 6 }, "\(collector.count)")
    #expect(
      await eventually(within: 60) { health.probe(readiness: true).passes }, "\(health.problems)")
    run.cancel()
    try await run.value
  }

  @Test(
    "a stop whose brokers are gone waits a few seconds for its last commit, not the group's session, and says what comes again",
    .timeLimit(.minutes(2)))
  func aStopWithTheBrokersGoneDoesNotWaitOutTheSession() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("gone", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produceInOrder(producer, topic: "gone", range: 0..<3)
    let collector = Collector()
    let logs = LogLines()
    // Acknowledged only once the broker is down: the stop's commit has them to commit.
    var options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["gone"], group: unique("gone"),
      config: [("session.timeout.ms", "60000")], shutdownDrainSeconds: 1)
    options.commitIntervalMs = 60_000
    let run = Task {
      try await KafkaSource(options: options, logger: logs.logger).run(deliver: collector.deliver)
    }
    #expect(await eventually(within: 30) { collector.count >= 3 })
    cluster.setBroker(1, up: false)
    try await Task.sleep(for: .milliseconds(500))
    for message in collector.messages.withLock({ $0 }) { message.acknowledge(.done) }
    let stopping = ContinuousClock.now
    run.cancel()
    try await run.value
    // A synchronous commit waited out the 60 s session.
    #expect(ContinuousClock.now - stopping < .seconds(30))
    #expect(
      logs.messages.contains {
        $0.hasPrefix("committing offsets in group ")
          && $0.hasSuffix("the messages done since the last commit will be delivered again")
      }, "\(logs.messages)")
  }

  @Test(
    "health: a paused partition that another member takes is no longer this member's problem",
    .timeLimit(.minutes(3)))
  func pausedPartitionFollowsItsOwner() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("moving", partitions: 2)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    // m0...m9 on partition 0 (m3 reaches no path with the first member), m10...m19 on partition 1.
    try await produce(producer, topic: "moving", range: 0..<10, partitions: 1)
    for index in 10..<20 {
      try await producer.produce(
        topic: "moving", key: [], value: Array("m\(index)".utf8), partition: 1, headers: [])
    }
    let first = Health()
    let second = Health()
    let taken = Collector()
    let group = unique("move")
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["moving"], group: group,
      config: [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")], shutdownDrainSeconds: 2)
    let runFirst = Task {
      try await KafkaSource(options: options).run(
        intake: MessageIntake(
          deliver: { message in message.acknowledge(message.payload == Array("m3".utf8) ? .failed : .done) },
          health: first))
    }
    let paused = "kafka source group \(group) paused partitions"
    #expect(await eventually(within: 30) { first.problems.map(\.component) == [paused] })
    let runSecond = Task {
      try await KafkaSource(options: options).run(
        intake: MessageIntake(
          deliver: { message in
            taken.messages.withLock { $0.append(message) }
            message.acknowledge(.done)
          }, health: second))
    }
    // Partition 1 gets a message now and then until the second member takes one: the first member
    // may have committed the whole of partition 1 before the group rebalanced, and the second,
    // given it, then had nothing to read (the wait below ran out once so).
    let feeding = Task {
      for index in 20..<140 where taken.count == 0 && !Task.isCancelled {
        try? await producer.produce(
          topic: "moving", key: [], value: Array("m\(index)".utf8), partition: 1, headers: [])
        try? await Task.sleep(for: .milliseconds(500))
      }
    }
    // The group settles with a partition each: the second member reads partition 1 (from its start,
    // or what came since the first member's commit), or partition 0 from the uncommitted m3.
    // (A rebalance of the mock cluster's among the suite's parallel tests took past 30 s once.)
    #expect(await eventually(within: 60) { taken.count > 0 && second.problems.isEmpty }, "\(second.problems)")
    // Done feeding before the producer closes.
    feeding.cancel()
    await feeding.value
    // Settled once the first member's problem matches where partition 0 went: while the group
    // rebalances, the first member may hold no partition and the second not have read partition 0
    // yet (under load that window lasted past a fixed one-second wait).
    func movedAway() -> Bool { taken.messages.withLock { $0.contains { $0.origin.hasPrefix("moving/0@") } } }
    #expect(
      await eventually(within: 30) { first.problems.map(\.component) == (movedAway() ? [] : [paused]) },
      "moved away: \(movedAway()), problems: \(first.problems)")
    runFirst.cancel()
    runSecond.cancel()
    try await runFirst.value
    try await runSecond.value
    // A consumer that closed leaves nothing behind.
    #expect(first.problems.isEmpty && second.problems.isEmpty, "\(first.problems) \(second.problems)")
  }

  @Test(
    "health: a topic readable again is cleared on every member, also one given none of its partitions",
    .timeLimit(.minutes(2)))
  func readableTopicClearsOnEveryMember() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    cluster.refuseTopic("single", true)
    let group = unique("pair")
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["single"], group: group,
      config: [("topic.metadata.refresh.interval.ms", "500")], shutdownDrainSeconds: 2)
    let boards = [Health(), Health()]
    let runs = boards.map { health in
      Task {
        try await KafkaSource(options: options).run(
          intake: MessageIntake(deliver: { message in message.acknowledge(.done) }, health: health))
      }
    }
    let component = "kafka source group \(group) topic single"
    #expect(
      await eventually(within: 30) {
        boards.allSatisfy { $0.problems.contains { $0.component == component } }
      })
    cluster.refuseTopic("single", false)
    #expect(
      await eventually(within: 30) {
        boards.allSatisfy { !$0.problems.contains { $0.component == component } }
      },
      "\(boards.map(\.problems))")
    for run in runs { run.cancel() }
    for run in runs { try await run.value }
  }

  @Test(
    "while the engine is full the consumer pauses and keeps polling: a stall past max.poll.interval.ms costs no group membership and nothing comes twice",
    .timeLimit(.minutes(2)))
  func backpressureKeepsTheMembership() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("slow", partitions: 2)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produce(producer, topic: "slow", range: 0..<200, partitions: 2)

    let collector = Collector()
    let taken = Locked(0)
    let open = Locked(false)
    @Sendable func take(_ message: Message) {
      collector.messages.withLock { $0.append(message) }
      message.acknowledge(.done)
    }
    // The engine takes 50 messages, then is full for 13 s (more than twice max.poll.interval.ms).
    let intake = MessageIntake(
      deliver: { message in
        for _ in 0..<1_000 where !open.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
        take(message)
      },
      tryDeliver: { message in
        let room =
          open.withLock { $0 }
          || taken.withLock { count in
            count += 1
            return count <= 50
          }
        if room { take(message) }
        return room
      })
    let options = KafkaSourceOptions(
      bootstrapServers: [cluster.bootstrapServers], topics: ["slow"], group: unique("slow"),
      config: [
        ("max.poll.interval.ms", "6000"), ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
      ], shutdownDrainSeconds: 2)
    let run = Task { try await KafkaSource(options: options).run(intake: intake) }
    #expect(await eventually(within: 20) { collector.count >= 50 })
    try await Task.sleep(for: .seconds(13))
    #expect(collector.count == 50)
    open.withLock { $0 = true }
    #expect(await eventually(within: 30) { collector.count >= 200 })
    // A member dropped from the group would have been handed its partitions again from the last
    // commit: the first 50 again.
    try await Task.sleep(for: .seconds(2))
    run.cancel()
    try await run.value
    let payloads = collector.payloads
    #expect(payloads.count == 200)
    #expect(Set(payloads) == Set((0..<200).map { "m\($0)" }))
  }

  @Test(
    "a producer looks each new topic up once, up to its bound, and close waits for a lookup under way",
    .timeLimit(.minutes(3)))
  func producerLooksTopicsUp() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    producer.lookUp(topics: ["looked-a", "looked-b", "looked-a"])
    producer.lookUp(topics: ["looked-b", "looked-c"])
    #expect(producer.lookedUpTopics == ["looked-a", "looked-b", "looked-c"])
    // A topic met first by a lookup (created by it on the mock) takes records as any other.
    try await producer.produce(topic: "looked-c", key: nil, value: Array("one".utf8))
    producer.close()
    // After close nothing more is taken up.
    producer.lookUp(topics: ["late"])
    #expect(producer.lookedUpTopics == ["looked-a", "looked-b", "looked-c"])

    // Nothing listens here: each lookup would wait out its 1 s. Closing at once must neither free
    // the client under the worker nor wait for all 4,096 topics.
    let refused = try KafkaProducer(
      bootstrapServers: "127.0.0.1:1", config: [("message.timeout.ms", "1000")])
    refused.lookUp(topics: (0..<5_000).map { "topic-\($0)" })
    #expect(refused.lookedUpTopics.count == KafkaProducer.maxLookedUpTopics)
    refused.close(timeoutMs: 100)
  }

  @Test("restart resumes from the committed offset: only acknowledged, contiguous offsets are committed")
  func resumesFromCommittedOffsets() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("jobs", partitions: 1)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    try await produceInOrder(producer, topic: "jobs", range: 0..<50)
    // Static membership: a plain rejoin with the same group id can hang on the mock (platform notes).
    let group = unique("resume")
    func options() throws -> KafkaSourceOptions {
      var options = try KafkaSourceOptions(
        url: "kafka://\(cluster.bootstrapServers)/jobs?group=\(group)",
        config: [("group.instance.id", "member-1"), ("session.timeout.ms", "6000")], topicFrom: .topic)
      options.shutdownDrainSeconds = 0.5
      options.commitIntervalMs = 100
      return options
    }
    // First run: message m30 is never acknowledged; everything else is.
    let first = Collector()
    let firstRun = Task {
      try await KafkaSource(options: try options()).run { message in
        await first.deliver(message)
        if message.payload != Array("m30".utf8) { message.acknowledge(.done) }
      }
    }
    #expect(await eventually(within: 30) { first.count >= 50 })
    firstRun.cancel()
    try await firstRun.value
    // The source delivers one partition in offset order, and the producer wrote m<i> at offset i.
    #expect(offsets(first) == Array(0..<50))
    #expect(first.payloads == (0..<50).map { "m\($0)" })

    try await produceInOrder(producer, topic: "jobs", range: 50..<60)
    let second = try await collect(try options(), count: 30, within: 45)
    #expect(second.count >= 30)
    // Redelivery starts at the first unacknowledged offset, m30, and nothing before it comes again.
    #expect(offsets(second) == Array(30..<60))
    #expect(second.payloads == (30..<60).map { "m\($0)" })
  }

  @Test("two consumers in one group split the partitions with nothing lost")
  func groupSplitsPartitions() async throws {
    let cluster = try KafkaMockCluster()
    defer { cluster.stop() }
    try cluster.createTopic("stream", partitions: 4)
    let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
    defer { producer.close() }
    let group = unique("split")
    let a = Collector()
    let b = Collector()
    func start(_ collector: Collector) throws -> Task<Void, any Error> {
      var options = try KafkaSourceOptions(url: "kafka://\(cluster.bootstrapServers)/stream?group=\(group)")
      options.shutdownDrainSeconds = 1
      // As the other group tests: a join the mock leaves hanging is settled after 6 s, not the default
      // 45 s session (one CI run spent more than the 90 s below on it).
      options.config += [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")]
      let source = KafkaSource(options: options)
      return Task {
        try await source.run { message in
          await collector.deliver(message)
          message.acknowledge(.done)
        }
      }
    }
    let runA = try start(a)
    let runB = try start(b)
    // Keep producing until both members have received something: then both hold partitions.
    var next = 0
    // Group joins and rebalances of the mock take seconds, more on a loaded machine.
    let deadline = ContinuousClock.now + .seconds(90)
    while (a.count == 0 || b.count == 0) && ContinuousClock.now < deadline {
      try await produce(producer, topic: "stream", range: next..<(next + 8), partitions: 4)
      next += 8
      try await Task.sleep(for: .milliseconds(250))
    }
    #expect(a.count > 0 && b.count > 0)
    let warmUp = next
    try await produce(producer, topic: "stream", range: warmUp..<(warmUp + 200), partitions: 4)
    let expected = Set((0..<(warmUp + 200)).map { "m\($0)" })
    #expect(await eventually(within: 30) { Set(a.payloads + b.payloads).isSuperset(of: expected) })
    runA.cancel()
    runB.cancel()
    try await runA.value
    try await runB.value
    // In the steady phase each partition went to exactly one member.
    func partitions(_ collector: Collector) -> Set<String> {
      Set(
        collector.messages.withLock { messages in
          messages.filter { Int(String(decoding: $0.payload.dropFirst(), as: UTF8.self))! >= warmUp }
            .map { String($0.origin.split(separator: "@")[0]) }
        })
    }
    #expect(partitions(a).isDisjoint(with: partitions(b)))
    #expect(partitions(a).union(partitions(b)).count == 4)
  }
}
