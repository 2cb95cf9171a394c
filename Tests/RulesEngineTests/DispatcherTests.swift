import Foundation
import IoTSQL
import Logging
import Synchronization
import TestSupport
import Testing

@testable import RulesEngine
@testable import TestSupport

/// These run real rules through the real compiler and VM, with in-memory actions.
struct DispatcherTests {
  func setUp(
    _ rules: [String], maxInFlight: Int = 64, maxInFlightBytes: Int = Dispatcher.defaultMaxInFlightBytes,
    deadLetter: any DeadLetterSink = MemoryDeadLetter(), clock: any EngineClock = FastClock(),
    logger: Logger = Logger(label: "test")
  ) throws -> (Dispatcher, RecordingBuilder) {
    let builder = RecordingBuilder()
    var loaded: [Rule] = []
    for (index, text) in rules.enumerated() {
      loaded.append(try loadRule(text, file: "rule_\(index).json", builder: builder))
    }
    let dispatcher = Dispatcher(
      ruleSet: RuleSet(rules: loaded), maxInFlight: maxInFlight, maxInFlightBytes: maxInFlightBytes,
      deadLetter: deadLetter, clock: clock, logger: logger)
    return (dispatcher, builder)
  }

  @Test func matchingMessagesReachEveryActionAndAreAcknowledged() async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "SELECT temp FROM 'sensors/+/data' WHERE temp > 30", "actions": [{"record": {"name": "a"}}, {"record": {"name": "b"}}]}"#
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "sensors/d1/data", payload: #"{"temp": 35}"#, origin: "1"))
    await dispatcher.deliver(acks.message(topic: "sensors/d1/data", payload: #"{"temp": 20}"#, origin: "2"))
    await dispatcher.deliver(acks.message(topic: "other/d1/data", payload: #"{"temp": 40}"#, origin: "3"))
    #expect(await acks.wait(for: 3))
    await dispatcher.drain()
    #expect(builder.action("a")?.payloads == [#"{"temp":35}"#])
    #expect(builder.action("b")?.payloads == [#"{"temp":35}"#])
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
    #expect(dispatcher.stats.received == 3)
    #expect(dispatcher.stats.passed == 1)
  }

  /// A rule with an action that reads the result's value (as SQLite's does) beside one that sends
  /// its bytes has the VM build the value; both get the same result as a rule with either alone.
  @Test func aRuleWithAValueActionGetsItsResultBuilt() async throws {
    let sql = "SELECT a, topic() AS t, (SELECT VALUE v FROM r) AS vs FROM 's'"
    let texts = [
      #"{"sql": "\#(sql)", "actions": [{"record": {"name": "bytes"}}, {"record": {"name": "value", "valueOnly": true}}]}"#,
      #"{"sql": "\#(sql)", "actions": [{"record": {"name": "alone"}}]}"#,
    ]
    let (dispatcher, builder) = try setUp(texts)
    let rules = try texts.map { try loadRule($0, file: "r.json", builder: RecordingBuilder()) }
    #expect(rules.map(\.readsResultValue) == [true, false])
    #expect(rules.map(\.readsPayloadBytes) == [true, true])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "s", payload: #"{"a":1.50,"r":[{"v":"x"}]}"#, origin: "1"))
    #expect(await acks.wait(for: 1))
    await dispatcher.drain()
    let expected = #"{"a":1.5,"t":"s","vs":["x"]}"#
    for name in ["bytes", "value", "alone"] {
      #expect(builder.action(name)?.payloads == [expected], "\(name)")
      let values = builder.action(name)?.received.withLock { $0.map(\.evaluation.value) }
      #expect(values == [try JSONReader.parse(Array(expected.utf8))], "\(name)")
    }
  }

  /// A message whose evaluation a rule had to stop (``EvaluationLimits``) gets no result from that
  /// rule, is counted as its evaluation error and acknowledged; the other rules run as usual.
  @Test func stoppedEvaluationsAreCountedAndTheOtherRulesRun() async throws {
    let doubling =
      "SET @v0 = 'xy', "
      + (1...30).map { "@v\($0) = concat(@v\($0 - 1), @v\($0 - 1))" }.joined(separator: ", ")
      + " SELECT length(@v30) AS n FROM 's'"
    let (dispatcher, builder) = try setUp([
      #"{"ruleName": "greedy", "sql": "\#(doubling)", "actions": [{"record": {"name": "a"}}]}"#,
      #"{"sql": "SELECT 1 AS one FROM 's'", "actions": [{"record": {"name": "b"}}]}"#,
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "s", payload: "{}", origin: "f:1"))
    #expect(await acks.wait(for: 1))
    await dispatcher.drain()
    #expect(builder.action("a")?.payloads ?? [] == [])
    #expect(builder.action("b")?.payloads == [#"{"one":1}"#])
    let greedy = try #require(dispatcher.ruleSet.rules.first { $0.name == "greedy" })
    #expect(greedy.counters.evaluationErrors.load(ordering: .relaxed) == 1)
    // The summary says it too (the log says so at most once a minute per rule).
    #expect(dispatcher.stats.evaluationsStopped == 1)
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
  }

  /// The log of a rule whose evaluation is stopped by its limits (a string doubled 30 times), loaded
  /// from `file` with the statement's line breaks escaped on line 2, after it takes one message
  /// on `topic`.
  private func logOfAStoppedEvaluation(from filter: String, file: String, topic: String) async throws
    -> LogLines
  {
    let doubling =
      "SET @v0 = 'xy', "
      + (1...30).map { "@v\($0) = concat(@v\($0 - 1), @v\($0 - 1))" }.joined(separator: ",\n  ")
      + "\nSELECT length(@v30) AS n FROM '\(filter)'"
    let rule = try loadRule(
      #"{"ruleName": "greedy_in_file", "actions": [],\#n "sql": "\#(doubling.replacingOccurrences(of: "\n", with: "\\n"))"}"#,
      file: file, builder: RecordingBuilder())
    let log = LogLines()
    let dispatcher = Dispatcher(
      ruleSet: RuleSet(rules: [rule]), deadLetter: MemoryDeadLetter(), clock: FastClock(), logger: log.logger)
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: topic, payload: "{}", origin: "f:1"))
    #expect(await acks.wait(for: 1))
    await dispatcher.drain()
    return log
  }

  /// The log of a stopped evaluation names the place in the rule's file, as `check` does, not in
  /// the statement (a YAML rule's SQL starts lines below the file's top).
  @Test func aStoppedEvaluationIsLoggedAtItsPlaceInTheFile() async throws {
    let log = try await logOfAStoppedEvaluation(from: "s", file: "rules/big.json", topic: "s")
    let said = log.messages.first { $0.contains("gave no result") } ?? ""
    // The SQL is on the file's line 2 (its line breaks are `\n` escapes): the statement's line 24
    // is a column of that line.
    #expect(said.contains("(at rules/big.json:2:"), "\(said)")
    #expect(said.contains(": concat(@v23, @v23))"), "\(said)")
  }

  /// A topic beyond 256 bytes (AWS IoT's limit) is clipped where the log quotes it: a replayed 1 MB
  /// topic made 1 MB log lines, past what log shippers take. 256 bytes are quoted whole.
  @Test func aLongTopicIsClippedInTheLog() async throws {
    let long = "a/" + String(repeating: "é", count: 50_000)
    let log = try await logOfAStoppedEvaluation(from: "#", file: "r.json", topic: long)
    let metadata = try #require(log.metadata { $0.contains("gave no result") }.first)
    let shown = "\(metadata["topic"] ?? "")"
    #expect(
      shown.hasPrefix("a/éé") && shown.hasSuffix("… (100002 bytes)") && shown.utf8.count < 300, "\(shown)")
    let said = log.messages.first { $0.contains("gave no result") } ?? ""
    #expect(said.utf8.count < 1_000 && said.contains("(topic '\(shown)')"), "\(said.prefix(400))")
    let limit = Message(topic: String(repeating: "t", count: 307), payload: [], receivedAtMs: 0)
    #expect(limit.loggedTopic == limit.topic)
  }

  /// AWS's Basic Ingest: `$aws/rules/NAME/TOPIC` reaches the rule NAME alone, when its filter
  /// matches TOPIC, and `topic()` is TOPIC.
  @Test func basicIngestTopicsReachTheNamedRuleOnly() async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "SELECT topic() AS t, topic(2) AS d FROM 'sensors/+/data'", "actions": [{"record": {"name": "a"}}]}"#,
      #"{"sql": "SELECT topic() AS t FROM 'sensors/#'", "actions": [{"record": {"name": "b"}}]}"#,
      #"{"sql": "SELECT * FROM '#'", "ruleDisabled": true, "actions": [{"record": {"name": "c"}}]}"#,
    ])
    let acks = AckCollector()
    let noRuleBefore = CounterStore.shared.messagesForMissingRules.load(ordering: .relaxed)
    await dispatcher.deliver(
      acks.message(topic: "$aws/rules/rule_0/sensors/d1/data", payload: "{}", origin: "1"))
    await dispatcher.deliver(acks.message(topic: "$aws/rules/rule_0/other/d1", payload: "{}", origin: "2"))
    await dispatcher.deliver(
      acks.message(topic: "$aws/rules/nosuch/sensors/d1/data", payload: "{}", origin: "3"))
    await dispatcher.deliver(acks.message(topic: "$aws/rules/rule_1", payload: "{}", origin: "4"))
    await dispatcher.deliver(acks.message(topic: "sensors/d2/data", payload: "{}", origin: "5"))
    // Rule names compare by bytes: U+212A KELVIN SIGN is no `K`, `r` + U+0301 no `r`.
    await dispatcher.deliver(
      acks.message(topic: "$aws/rules/rule_0\u{301}/sensors/d1/data", payload: "{}", origin: "6"))
    // A disabled rule takes none either, said as one of no rule is (it was counted nowhere).
    await dispatcher.deliver(
      acks.message(topic: "$aws/rules/rule_2/sensors/d1/data", payload: "{}", origin: "7"))
    #expect(await acks.wait(for: 7))
    await dispatcher.drain()
    // Two topics: no order between them.
    #expect(
      builder.action("a")?.payloads.sorted() == [
        #"{"t":"sensors/d1/data","d":"d1"}"#, #"{"t":"sensors/d2/data","d":"d2"}"#,
      ])
    #expect(builder.action("b")?.payloads == [#"{"t":"sensors/d2/data"}"#])
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
    #expect(dispatcher.stats.matched == 3)
    // The ones naming no rule are logged (once per name), and so is the one with no topic after
    // its rule's name (once per topic); one whose rule exists but does not match its topic is not.
    #expect(
      dispatcher.unknownIngestNames.withLock { $0 } == [
        "nosuch", "rule_0\u{301}", "$aws/rules/rule_1", "rule_2",
      ])
    // And counted (the summary's "for rules not loaded, to no rule"), in /metrics too, where a
    // daemon that runs for months shows them (AWS's RuleNotFound). The store is the process's:
    // other tests may count there meanwhile.
    #expect(dispatcher.stats.forMissingRules == 4)
    let noRule = CounterStore.shared.messagesForMissingRules.load(ordering: .relaxed) - noRuleBefore
    #expect(noRule >= 4, "\(noRule)")
    let text = CounterStore.shared.prometheusText()
    #expect(text.contains("# TYPE iotrules_messages_no_rule_total counter\niotrules_messages_no_rule_total "))
  }

  /// Past 1,000 names of no rule, a device's ever new names are no longer logged one by one: that
  /// is said once, and their messages are counted still (logging stopped without a word or a count).
  @Test func basicIngestNamesPastTheLimitAreSaidOnceAndCounted() async throws {
    let logs = LogLines()
    let (dispatcher, _) = try setUp(
      [#"{"sql": "SELECT 1 AS a FROM 'x'", "actions": [{"record": {"name": "a"}}]}"#], logger: logs.logger)
    let acks = AckCollector()
    for index in 0..<1_010 {
      await dispatcher.deliver(
        acks.message(topic: "$aws/rules/n\(index)/x", payload: "{}", origin: "\(index)"))
    }
    #expect(await acks.wait(for: 1_010))
    await dispatcher.drain()
    #expect(dispatcher.stats.forMissingRules == 1_010)
    let lines = logs.messages
    #expect(lines.filter { $0.contains("names no rule") }.count == 1_000)
    #expect(
      lines.filter { $0.contains("more than 1,000 Basic Ingest rule names") }.count == 1, "\(lines.suffix(3))"
    )
  }

  /// A rule without FROM is reached only through Basic Ingest, whatever the topic after its name;
  /// so is one whose FROM is a Basic Ingest filter (AWS takes it; no rule is subscribed to those).
  @Test(arguments: ["SELECT topic() AS t", "SELECT topic() AS t FROM '$aws/rules/rule_0'"])
  func ruleWithoutFromTakesOnlyItsBasicIngestTopics(sql: String) async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "\#(sql)", "actions": [{"record": {"name": "a"}}]}"#
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "$aws/rules/rule_0/any/topic", payload: "{}", origin: "1"))
    await dispatcher.deliver(acks.message(topic: "any/topic", payload: "{}", origin: "2"))
    await dispatcher.deliver(acks.message(topic: "$aws/rules/other/any/topic", payload: "{}", origin: "3"))
    #expect(await acks.wait(for: 3))
    await dispatcher.drain()
    #expect(builder.action("a")?.payloads == [#"{"t":"any/topic"}"#])
  }

  @Test func perTopicOrderIsKept() async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "SELECT n FROM 'seq/+'", "actions": [{"record": {"name": "a", "delayMs": 1}}]}"#
    ])
    let acks = AckCollector()
    for index in 0..<200 {
      await dispatcher.deliver(
        acks.message(topic: "seq/\(index % 4)", payload: #"{"n": \#(index)}"#, origin: "\(index)"))
    }
    #expect(await acks.wait(for: 200, timeoutMs: 30_000))
    let received = builder.action("a")!.received.withLock { $0 }
    for topic in 0..<4 {
      let numbers = received.filter { $0.message.topic == "seq/\(topic)" }.map {
        String(decoding: $0.evaluation.payload, as: UTF8.self)
      }
      #expect(numbers == stride(from: topic, to: 200, by: 4).map { #"{"n":\#($0)}"# })
    }
    // Different topics ran concurrently.
    #expect(builder.action("a")!.concurrency.withLock { $0.most } > 1)
  }

  @Test func fullEngineSuspendsDeliver() async throws {
    let (dispatcher, builder) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "slow"}}]}"#], maxInFlight: 4)
    let slow = builder.action("slow")!
    slow.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    let delivered = Mutex(0)
    let producer = Task {
      for index in 0..<10 {
        await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(index)"))
        delivered.withLock { $0 += 1 }
      }
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    #expect(delivered.withLock { $0 } == 4)
    #expect(dispatcher.inFlight == 4)
    #expect(acks.count == 0)
    slow.gateOpen.withLock { $0 = true }
    await producer.value
    #expect(await acks.wait(for: 10))
    #expect(slow.received.withLock { $0.count } == 10)
  }

  /// Payload bytes in flight are bounded too: big messages wait for room though few are in flight,
  /// one larger than the whole budget is taken alone, and a batch is taken as far as it fits.
  @Test func payloadBytesInFlightAreBounded() async throws {
    let (dispatcher, builder) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "slow"}}]}"#], maxInFlight: 100,
      maxInFlightBytes: 1_000)
    let slow = builder.action("slow")!
    slow.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    func payload(_ bytes: Int) -> String { #"{"p":""# + String(repeating: "x", count: bytes - 8) + #""}"# }
    let delivered = Mutex(0)
    let producer = Task {
      // Alone in the engine, 5,000 bytes pass; then 400-byte messages wait until it is done.
      await dispatcher.deliver(acks.message(topic: "a", payload: payload(5_000), origin: "big"))
      delivered.withLock { $0 += 1 }
      for index in 0..<4 {
        await dispatcher.deliver(acks.message(topic: "a", payload: payload(400), origin: "\(index)"))
        delivered.withLock { $0 += 1 }
      }
      await dispatcher.deliver(
        batch: (4..<10).map { acks.message(topic: "a", payload: payload(400), origin: "\($0)") })
      delivered.withLock { $0 += 6 }
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    #expect(delivered.withLock { $0 } == 1)
    #expect(dispatcher.inFlight == 1)
    #expect(dispatcher.inFlightBytes == 5_000)
    slow.gateOpen.withLock { $0 = true }
    await producer.value
    #expect(await acks.wait(for: 11))
    await dispatcher.drain()
    #expect(dispatcher.inFlightBytes == 0)
    #expect(slow.received.withLock { $0.count } == 11)
    // While the gate is shut again, at most two 400-byte messages are in flight.
    slow.gateOpen.withLock { $0 = false }
    let second = Task {
      await dispatcher.deliver(
        batch: (10..<16).map { acks.message(topic: "a", payload: payload(400), origin: "\($0)") })
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    #expect(dispatcher.inFlight == 2)
    #expect(dispatcher.inFlightBytes == 800)
    slow.gateOpen.withLock { $0 = true }
    _ = await second.value
    #expect(await acks.wait(for: 17))
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
  }

  /// A batch larger than the engine's room is taken in parts, waiting for room between them; every
  /// action of every rule sees the batch's results in order, and messages no rule takes are
  /// acknowledged too.
  @Test func batchesAreTakenInPartsAndKeepOrderPerAction() async throws {
    let (dispatcher, builder) = try setUp(
      [
        #"{"sql": "SELECT n FROM 'seq/a'", "actions": [{"record": {"name": "a"}}, {"record": {"name": "b"}}]}"#,
        #"{"sql": "SELECT n FROM 'seq/+' WHERE n % 2 = 0", "actions": [{"record": {"name": "c"}}]}"#,
      ], maxInFlight: 8)
    let gate = builder.action("a")!
    gate.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    let messages = (0..<40).map { index in
      acks.message(
        topic: index % 5 == 4 ? "other" : "seq/a", payload: #"{"n": \#(index)}"#, origin: "\(index)")
    }
    let handedOver = Mutex(false)
    let producer = Task {
      await dispatcher.deliver(batch: messages)
      handedOver.withLock { $0 = true }
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    // Action a holds its results: the engine is full and the rest of the batch waits.
    #expect(!handedOver.withLock { $0 })
    #expect(dispatcher.inFlight == 8)
    gate.gateOpen.withLock { $0 = true }
    await producer.value
    #expect(await acks.wait(for: 40))
    await dispatcher.drain()
    let taken = (0..<40).filter { $0 % 5 != 4 }
    func numbers(_ name: String) -> [String] {
      builder.action(name)!.received.withLock { $0 }.map {
        String(decoding: $0.evaluation.payload, as: UTF8.self)
      }
    }
    #expect(numbers("a") == taken.map { #"{"n":\#($0)}"# })
    #expect(numbers("b") == taken.map { #"{"n":\#($0)}"# })
    #expect(numbers("c") == taken.filter { $0 % 2 == 0 }.map { #"{"n":\#($0)}"# })
    #expect(acks.acks.withLock { $0.count == 40 && $0.allSatisfy { $0.1 == .done } })
    #expect(dispatcher.stats.received == 40)
    #expect(dispatcher.stats.matched == 64)
    #expect(dispatcher.stats.passed == 48)
  }

  @Test func tryDeliverTakesWhileThereIsRoomAndRefusesWhenFull() async throws {
    let (dispatcher, builder) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "slow"}}]}"#], maxInFlight: 2)
    let slow = builder.action("slow")!
    slow.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    #expect(dispatcher.tryDeliver(acks.message(topic: "a", payload: #"{"n":1}"#, origin: "1")))
    #expect(dispatcher.tryDeliver(acks.message(topic: "a", payload: #"{"n":2}"#, origin: "2")))
    // Full: refused, and nothing of it was taken.
    #expect(!dispatcher.tryDeliver(acks.message(topic: "a", payload: #"{"n":3}"#, origin: "3")))
    #expect(dispatcher.stats.received == 2)
    // A source thread blocks in deliverBlocking until the engine has room, then the message is in.
    let intake = dispatcher.intake
    let third = acks.message(topic: "a", payload: #"{"n":3}"#, origin: "3")
    let returned = Mutex(false)
    let thread = Thread {
      intake.deliverBlocking(third)
      returned.withLock { $0 = true }
    }
    thread.start()
    try await Task.sleep(nanoseconds: 200_000_000)
    #expect(!returned.withLock { $0 })
    slow.gateOpen.withLock { $0 = true }
    #expect(await acks.wait(for: 3))
    #expect(returned.withLock { $0 })
    #expect(slow.payloads == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
  }

  @Test func acknowledgedOnlyWhenEveryActionFinished() async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "fast"}}, {"record": {"name": "gated"}}]}"#
    ])
    builder.action("gated")!.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    // Each topic of an action runs in a task of its own: a loaded machine may take a while.
    for _ in 0..<1_000 where builder.action("fast")!.received.withLock({ $0.isEmpty }) {
      try await Task.sleep(nanoseconds: 5_000_000)
    }
    #expect(builder.action("fast")!.received.withLock { $0.count } == 1)
    #expect(acks.count == 0)
    builder.action("gated")!.gateOpen.withLock { $0 = true }
    #expect(await acks.wait(for: 1))
  }

  @Test func transientFailuresAreRetried() async throws {
    let (dispatcher, builder) = try setUp([
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "flaky", "fail": "transient", "failTimes": 2, "retry": {"attempts": 3}}}]}"#
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: #"{"x":1}"#, origin: "1"))
    #expect(await acks.wait(for: 1))
    #expect(builder.action("flaky")!.attempts.withLock { $0 } == 3)
    #expect(builder.action("flaky")!.payloads == [#"{"x":1}"#])
    #expect(dispatcher.stats.retries == 2)
    #expect(acks.acks.withLock { $0[0].1 } == .done)
  }

  /// An error action that succeeds on a retry is no action write of the summary, as one that
  /// succeeds at once is not (the summary said "1 action write" where no action had written).
  @Test func anErrorActionsRetriedWriteIsNoActionWrite() async throws {
    let (dispatcher, builder) = try setUp([
      #"""
      {"sql": "SELECT * FROM 'sensors/#'",
       "actions": [{"record": {"name": "p", "fail": "permanent"}}],
       "errorAction": {"record": {"name": "errors", "fail": "transient", "failTimes": 1, "retry": {"attempts": 2, "initialBackoffMs": 1}}}}
      """#
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "sensors/d1", payload: #"{"v":1}"#, origin: "f:1"))
    #expect(await acks.wait(for: 1))
    #expect(builder.action("errors")!.received.withLock { $0.count } == 1)
    #expect(dispatcher.stats.actionsSucceeded == 0)
  }

  @Test func failuresGoToTheRuleErrorActionAsOneRecord() async throws {
    let (dispatcher, builder) = try setUp([
      #"""
      {"sql": "SELECT * FROM 'sensors/#'", "ruleName": "two_fail",
       "actions": [{"record": {"name": "t", "fail": "transient", "retry": {"attempts": 2}}}, {"record": {"name": "p", "fail": "permanent"}},
                   {"record": {"name": "ok"}}],
       "errorAction": {"record": {"name": "errors"}}}
      """#
    ])
    let acks = AckCollector()
    // An MQTT message's own trace id (traceid()) is its record's, as in AWS.
    var message = acks.message(topic: "sensors/d1", payload: #"{"v":1}"#, origin: "f:1")
    message.traceID = "5f0c6bd4-0000-4000-8000-000000000001"
    await dispatcher.deliver(message)
    #expect(await acks.wait(for: 1))
    let records = builder.action("errors")!.received.withLock { $0 }
    #expect(records.count == 1)
    guard case .object(let record)? = records.first?.evaluation.value else {
      Issue.record("no record")
      return
    }
    #expect(record["ruleName"] == .string("two_fail"))
    #expect(record["topic"] == .string("sensors/d1"))
    #expect(record["clientId"] == .string("client-1"))
    #expect(record["base64OriginalPayload"] == .string("eyJ2IjoxfQ=="))
    #expect(record["traceId"] == .string("5f0c6bd4-0000-4000-8000-000000000001"))
    // The error action's own write counts as its success (`/metrics`), not as one of the rules'
    // action writes in the summary.
    let rule = try #require(dispatcher.ruleSet.rules.first)
    #expect(rule.errorAction?.counters.succeeded.load(ordering: .relaxed) == 1)
    #expect(dispatcher.stats.actionsSucceeded == 1)
    guard case .array(let failures)? = record["failures"] else {
      Issue.record("no failures")
      return
    }
    // In the rule's order of actions: t failed last (after its retry), p at once.
    #expect(failures.map { $0.member("failedResource") } == [.string("t"), .string("p")])
    #expect(
      failures.map { $0.member("errorMessage") }.contains(.string("t failed (transient) (after 2 attempts)")))
    #expect(
      record.keys == [
        "ruleName", "topic", "traceId", "cloudwatchTraceId", "clientId", "base64OriginalPayload", "failures",
        "timestamp", "origin", "receivedAt",
      ])
    #expect(record["cloudwatchTraceId"] == record["traceId"])
    #expect(acks.acks.withLock { $0[0].1 } == .done)
    #expect(builder.action("ok")!.received.withLock { $0.count } == 1)
  }

  /// Delivers `{"n": 0}` ... on `topic`, a few at a time (so that they spread over batches), and
  /// waits until all are acknowledged.
  func deliverNumbered(_ count: Int, topic: String, to dispatcher: Dispatcher) async throws -> AckCollector {
    let acks = AckCollector()
    for index in 0..<count {
      await dispatcher.deliver(acks.message(topic: topic, payload: #"{"n": \#(index)}"#, origin: "\(index)"))
      if index % 3 == 0 { try await Task.sleep(nanoseconds: 1_000_000) }
    }
    #expect(await acks.wait(for: count, timeoutMs: 30_000))
    return acks
  }

  /// Error records reach a slow error action in message order, whichever batch of the failing
  /// action their messages were in.
  @Test func errorRecordsKeepMessageOrderAcrossBatches() async throws {
    let (dispatcher, builder) = try setUp([
      #"""
      {"sql": "SELECT n FROM 'seq'", "actions": [{"record": {"name": "p", "fail": "permanent"}}],
       "errorAction": {"record": {"name": "errors", "delayMs": 3}}}
      """#
    ])
    _ = try await deliverNumbered(30, topic: "seq", to: dispatcher)
    let order = builder.action("errors")!.received.withLock { $0 }.map { input -> String in
      guard case .object(let record) = input.evaluation.value,
        case .string(let payload)? = record["base64OriginalPayload"]
      else { return "?" }
      return String(decoding: Data(base64Encoded: payload) ?? Data(), as: UTF8.self)
    }
    #expect(order == (0..<30).map { #"{"n": \#($0)}"# })
  }

  /// Failures that come out of retries go down their error paths one at a time, behind the lane's
  /// earlier ones, as first-attempt failures do (a task each had up to 8 error-action rounds at
  /// once, out of order).
  @Test func failuresAfterRetriesReachTheErrorActionOneAtATime() async throws {
    let (dispatcher, builder) = try setUp([
      #"""
      {"sql": "SELECT n FROM 'seq'", "actions": [{"record": {"name": "p", "fail": "transient", "retry": {"attempts": 2, "initialBackoffMs": 1}}}],
       "errorAction": {"record": {"name": "errors", "delayMs": 3}}}
      """#
    ])
    let acks = try await deliverNumbered(30, topic: "seq", to: dispatcher)
    let errors = try #require(builder.action("errors"))
    #expect(errors.received.withLock { $0.count } == 30)
    #expect(errors.concurrency.withLock { $0.most } == 1)
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
  }

  @Test func actionErrorActionComesFirst() async throws {
    let (dispatcher, builder) = try setUp([
      #"""
      {"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent", "errorAction": {"record": {"name": "own"}}}}],
       "errorAction": {"record": {"name": "rule"}}}
      """#
    ])
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    #expect(await acks.wait(for: 1))
    #expect(builder.action("own")!.received.withLock { $0.count } == 1)
    #expect(builder.action("rule")!.received.withLock { $0.count } == 0)
  }

  @Test func failingErrorActionGoesToDeadLetter() async throws {
    let deadLetter = MemoryDeadLetter()
    let (dispatcher, _) = try setUp(
      [
        #"""
        {"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}],
         "errorAction": {"record": {"name": "broken", "fail": "permanent"}}}
        """#
      ], deadLetter: deadLetter)
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    #expect(await acks.wait(for: 1))
    let records = deadLetter.records.withLock { $0 }
    #expect(records.count == 1)
    #expect(records.first?.failures.map(\.failedResource) == ["p", "broken"])
    // The error action's own failure is marked: it read as one more action of the rule.
    #expect(records.first?.failures.map(\.isErrorAction) == [false, true])
    let json = try #require(records.first?.json)
    #expect(
      json.contains(
        #""failedResource":"broken","errorMessage":"broken failed (permanent)","errorAction":true}"#),
      "\(json)")
    #expect(json.contains(#""failedResource":"p","errorMessage":"p failed (permanent)"}"#), "\(json)")
    #expect(acks.acks.withLock { $0[0].1 } == .done)
  }

  /// An error action that fails transiently through its whole retry schedule rests: the records
  /// behind that one go to the dead-letter file at once, saying why, instead of each waiting out
  /// the same schedule; the next record after the rest tries it again.
  @Test func anErrorActionThatKeepsFailingRests() async throws {
    let deadLetter = MemoryDeadLetter()
    let clock = SteppingClock()
    let (dispatcher, builder) = try setUp(
      [
        #"""
        {"sql": "SELECT * FROM '+'", "actions": [{"record": {"name": "p", "fail": "permanent"}}],
         "errorAction": {"record": {"name": "down", "fail": "transient", "retry": {"attempts": 3, "initialBackoffMs": 1}}}}
        """#
      ], deadLetter: deadLetter, clock: clock)
    let acks = AckCollector()
    // The first record alone (records failing together go to the error action as one batch).
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "a"))
    #expect(await acks.wait(for: 1))
    for topic in ["b", "c"] {
      await dispatcher.deliver(acks.message(topic: topic, payload: "{}", origin: topic))
    }
    #expect(await acks.wait(for: 3))
    #expect(builder.action("down")!.attempts.withLock { $0 } == 3)
    let records = deadLetter.records.withLock { $0 }
    #expect(records.count == 3)
    let skipped = records.compactMap { $0.failures.last?.errorMessage }.filter {
      $0.hasPrefix("not attempted: the error action failed for an earlier record")
    }
    #expect(skipped.count == 2, "\(records.map(\.failures))")
    // Counted as failures of the error action, as records given up without an attempt: p's three,
    // the error action's three attempts, and these two (an error action that is down counted
    // one failure per rest, however many records went past it).
    #expect(dispatcher.stats.actionFailures == 8, "\(dispatcher.stats.actionFailures)")
    // After the rest, it is tried again.
    clock.advance(milliseconds: Dispatcher.errorActionRestMs)
    await dispatcher.deliver(acks.message(topic: "d", payload: "{}", origin: "d"))
    #expect(await acks.wait(for: 4))
    #expect(builder.action("down")!.attempts.withLock { $0 } == 6)
  }

  @Test func noErrorActionMeansDeadLetter() async throws {
    let deadLetter = MemoryDeadLetter()
    let (dispatcher, _) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}]}"#],
      deadLetter: deadLetter)
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    #expect(await acks.wait(for: 1))
    #expect(deadLetter.records.withLock { $0.count } == 1)
  }

  /// Two rules that fail on one message write one record each, with the message's one trace id;
  /// a rule without actions that took it too does not hold its acknowledgement back.
  @Test func failuresOfOneMessageShareItsTraceID() async throws {
    let deadLetter = MemoryDeadLetter()
    let (dispatcher, _) = try setUp(
      [
        #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}]}"#,
        #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "q", "fail": "permanent"}}]}"#,
        #"{"sql": "SELECT * FROM 'a'", "actions": []}"#,
      ],
      deadLetter: deadLetter)
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "2"))
    #expect(await acks.wait(for: 2))
    let records = deadLetter.records.withLock { $0 }
    #expect(records.count == 4)
    let ids = Dictionary(grouping: records, by: \.traceId)
    #expect(ids.count == 2)
    #expect(ids.values.allSatisfy { Set($0.map(\.ruleName)) == ["rule_0", "rule_1"] })
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
  }

  /// Of a batch's records that the dead-letter file did not take, each one written once it takes
  /// records again acknowledges its message at once, not when the last held one is written too
  /// (the log said "the held message is acknowledged" while the queue stayed full).
  @Test func aHeldRecordWrittenAcknowledgesItsMessageAlone() async throws {
    let deadLetter = RefusingDeadLetter(refusing: ["{\"n\":1}", "{\"n\":2}"])
    let (dispatcher, _) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}]}"#],
      deadLetter: deadLetter)
    let acks = AckCollector()
    await dispatcher.deliver(
      batch: (1...2).map { acks.message(topic: "a", payload: "{\"n\":\($0)}", origin: "\($0)") })
    for _ in 0..<500 where dispatcher.health.problems.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
    #expect(acks.acks.withLock { $0.isEmpty })
    deadLetter.refused.withLock { _ = $0.remove("{\"n\":1}") }
    #expect(await acks.wait(for: 1))
    try await Task.sleep(for: .milliseconds(100))
    #expect(acks.acks.withLock { $0.map(\.0) } == ["1"])
    #expect(dispatcher.inFlight == 1)
    deadLetter.refused.withLock { _ = $0.remove("{\"n\":2}") }
    #expect(await acks.wait(for: 2))
    #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
    #expect(deadLetter.written.withLock { $0 } == ["{\"n\":1}", "{\"n\":2}"])
  }

  /// A record the dead-letter file does not take is held: its message stays unacknowledged and in
  /// flight, the daemon unhealthy, until a write succeeds (then it is acknowledged) or the run ends
  /// (then it is left unacknowledged, for the source to deliver again).
  @Test func failingDeadLetterHoldsTheMessageUntilAWriteSucceeds() async throws {
    let deadLetter = MemoryDeadLetter(failing: true)
    let (dispatcher, _) = try setUp(
      [#"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}]}"#],
      deadLetter: deadLetter)
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    // Bounded: until the first write has failed (the daemon reports it), however loaded the machine.
    for _ in 0..<500 where dispatcher.health.problems.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
    try await Task.sleep(for: .milliseconds(100))
    #expect(acks.acks.withLock { $0.isEmpty })
    #expect(dispatcher.inFlight == 1)
    // The daemon is unhealthy while nothing takes its error records (`/healthz` fails) ...
    let problem = try #require(dispatcher.health.problems.first)
    #expect(problem.component == Dispatcher.deadLetterComponent && problem.level == .unhealthy)
    #expect(problem.message.contains("dead-letter sink is failing"), "\(problem.message)")
    #expect(!dispatcher.health.probe(readiness: false).passes)
    // ... and once the file takes records again, the held one is written, its message
    // acknowledged, and the daemon healthy.
    deadLetter.failing.withLock { $0 = false }
    #expect(await acks.wait(for: 1))
    #expect(acks.acks.withLock { $0[0].1 } == .done)
    #expect(deadLetter.records.withLock { $0.count } == 1)
    #expect(dispatcher.health.problems.isEmpty)
    #expect(dispatcher.health.probe(readiness: false) == (true, "ok\n"))
    // A run that ends while the file still fails leaves the message unacknowledged.
    deadLetter.failing.withLock { $0 = true }
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "2"))
    await dispatcher.drain()
    #expect(await acks.wait(for: 2))
    #expect(acks.acks.withLock { $0[1].1 } == .failed)
    #expect(dispatcher.stats.failed == 1)
  }

  /// While one record is held, another record's successful write (a small one where a large one
  /// does not fit) leaves the daemon unhealthy; the held one's success clears it.
  @Test func healthStaysUnhealthyWhileARecordIsHeld() async throws {
    final class RefusesRule: DeadLetterSink, Sendable {
      let refusing = Mutex(true)
      func write(_ record: ErrorRecord) async throws {
        if record.ruleName == "rule_0", refusing.withLock({ $0 }) { throw ActionError(.transient, "no room") }
      }
    }
    let sink = RefusesRule()
    let builder = RecordingBuilder()
    let rules = try [
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}]}"#,
      #"{"sql": "SELECT * FROM 'b'", "actions": [{"record": {"name": "q", "fail": "permanent"}}]}"#,
    ].enumerated().map { try loadRule($1, file: "rule_\($0).json", builder: builder) }
    let dispatcher = Dispatcher(ruleSet: RuleSet(rules: rules), deadLetter: sink, clock: FastClock())
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "held"))
    for _ in 0..<500 where dispatcher.health.problems.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
    await dispatcher.deliver(acks.message(topic: "b", payload: "{}", origin: "written"))
    #expect(await acks.wait(for: 1))
    #expect(!dispatcher.health.problems.isEmpty)
    sink.refusing.withLock { $0 = false }
    #expect(await acks.wait(for: 2))
    #expect(dispatcher.health.problems.isEmpty)
  }

  /// A failing and a succeeding dead-letter write racing, then successes: healthy every time (the
  /// flag and the report change together, so no report outlives the success that should clear it).
  @Test func deadLetterHealthSurvivesRacingWrites() async {
    struct ByRule: DeadLetterSink {
      func write(_ record: ErrorRecord) async throws {
        if record.ruleName == "fail" { throw ActionError(.permanent, "refused") }
      }
    }
    let dispatcher = Dispatcher(
      ruleSet: .empty, deadLetter: ByRule(), clock: FastClock(),
      logger: Logger(label: "quiet", factory: { _ in SwiftLogNoOpLogHandler() }))
    // As at the end of a run: a failed write is not held and tried again, it returns.
    dispatcher.endHolding()
    func record(_ rule: String) -> ErrorRecord {
      ErrorRecord(
        ruleName: rule, topic: "t", traceId: "x", clientId: "n/a", base64OriginalPayload: "", failures: [],
        timestamp: 0)
    }
    var stuck = 0
    for _ in 0..<10_000 {
      await withTaskGroup(of: Void.self) { group in
        group.addTask { _ = await dispatcher.writeDeadLetter(record("fail"), origins: []) }
        group.addTask { _ = await dispatcher.writeDeadLetter(record("ok"), origins: []) }
      }
      _ = await dispatcher.writeDeadLetter(record("ok"), origins: [])
      if !dispatcher.health.problems.isEmpty {
        stuck += 1
        dispatcher.health.clear(Dispatcher.deadLetterComponent)
      }
    }
    #expect(stuck == 0)
  }

  @Test func healthBoardKeepsWhenAProblemStartedAndSaysWhichCount() {
    let health = Health()
    #expect(health.probe(readiness: true) == (true, "ready\n"))
    let start = Date()
    health.report("mqtt source x", "connecting")
    let first = health.problems.first
    health.report("mqtt source x", "disconnected; reconnecting")
    #expect(health.problems.count == 1)
    #expect(health.problems.first?.since == first?.since)
    #expect(health.problems.first?.message == "disconnected; reconnecting")
    // Not ready is no reason to restart: liveness passes, readiness names it.
    #expect(health.probe(readiness: false) == (true, "ok\n"))
    let ready = health.probe(readiness: true, now: start.addingTimeInterval(5))
    #expect(!ready.passes)
    #expect(
      ready.body.hasPrefix("not ready\nmqtt source x: disconnected; reconnecting (since "), "\(ready.body)")
    health.report("dead-letter file", "failing", level: .unhealthy)
    let live = health.probe(readiness: false)
    #expect(!live.passes && live.body.hasPrefix("unhealthy\ndead-letter file: failing (since "))
    #expect(!live.body.contains("mqtt source"))
    let gauges = health.prometheusText()
    #expect(gauges.contains("\niotrules_ready 0\n") && gauges.contains("\niotrules_healthy 0\n"), "\(gauges)")
    #expect(gauges.contains(#"iotrules_health_problem{component="dead-letter file",level="unhealthy"} 1"#))
    health.report("quote \" and \\", "x")
    #expect(health.prometheusText().contains(#"{component="quote \" and \\",level="not_ready"} 1"#))
    health.clear("quote \" and \\")
    health.clear("dead-letter file")
    health.clear("mqtt source x")
    health.clear("never reported")
    #expect(health.problems.isEmpty)
  }

  /// A rule a swap removes leaves `/metrics` (its series stayed, frozen, until a restart); back
  /// under its name, it shows again, its counts going on.
  @Test func aRemovedRulesSeriesLeaveTheMetrics() throws {
    let builder = RecordingBuilder()
    let kept = try loadRule(
      #"{"ruleName": "series_kept", "sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "k"}}]}"#,
      file: "k.json", builder: builder)
    let removed = try loadRule(
      #"{"ruleName": "series_removed", "sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "r"}}]}"#,
      file: "r.json", builder: builder)
    let dispatcher = Dispatcher(
      ruleSet: RuleSet(rules: [kept, removed]), deadLetter: MemoryDeadLetter(), clock: FastClock())
    func running(_ rule: Rule) -> Bool {
      rule.counters.loaded.load(ordering: .relaxed)
        && rule.actions[0].counters.loaded.load(ordering: .relaxed)
    }
    #expect(running(removed))
    dispatcher.swap(to: RuleSet(rules: [kept]))
    #expect(!running(removed) && running(kept))
    #expect(!CounterStore.shared.prometheusText().contains("series_removed"))
    dispatcher.swap(to: RuleSet(rules: [kept, removed]))
    #expect(CounterStore.shared.prometheusText().contains(#"rule="series_removed""#))
  }

  @Test func swapIsAtomicPerMessage() async throws {
    let builder = RecordingBuilder()
    let first = try loadRule(
      #"{"sql": "SELECT 1 AS v FROM 'a'", "actions": [{"record": {"name": "one"}}]}"#, file: "r.json",
      builder: builder)
    let second = try loadRule(
      #"{"sql": "SELECT 2 AS v FROM 'a'", "actions": [{"record": {"name": "two"}}]}"#, file: "r.json",
      builder: builder)
    let dispatcher = Dispatcher(
      ruleSet: RuleSet(rules: [first]), deadLetter: MemoryDeadLetter(), clock: FastClock())
    let acks = AckCollector()
    let producer = Task {
      for index in 0..<500 {
        await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(index)"))
      }
    }
    try await Task.sleep(nanoseconds: 2_000_000)
    let old = dispatcher.swap(to: RuleSet(rules: [second]))
    await producer.value
    await old.waitUntilIdle()
    #expect(await acks.wait(for: 500))
    let one = builder.action("one")!.received.withLock { $0.count }
    let two = builder.action("two")!.received.withLock { $0.count }
    #expect(one + two == 500)
  }

  /// A dispatcher running one rule whose one action, a recording one, the test gates.
  func gatedRule() throws -> (Dispatcher, Rule, RecordingAction) {
    let builder = RecordingBuilder()
    let rule = try loadRule(
      #"{"sql": "SELECT 1 AS v FROM 'a'", "actions": [{"record": {"name": "held"}}]}"#, file: "r.json",
      builder: builder)
    let dispatcher = Dispatcher(
      ruleSet: RuleSet(rules: [rule]), deadLetter: MemoryDeadLetter(), clock: FastClock())
    return (dispatcher, rule, try #require(builder.action("held")))
  }

  /// A rule kept by one reload and retired by the next has results of messages evaluated against
  /// both sets: the wait before its actions shut down covers the earlier set's too (a rename and
  /// a SIGHUP while a webhook retried shut its client down, and results went to the dead-letter
  /// file, `not started`).
  @Test func anIdleWaitCoversTheSetsItReplaced() async throws {
    let (dispatcher, kept, gated) = try gatedRule()
    gated.gateOpen.withLock { $0 = false }
    let acks = AckCollector()
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
    // Kept, then retired.
    dispatcher.swap(to: RuleSet(rules: [kept]))
    let old = dispatcher.swap(to: RuleSet(rules: []))
    let idle = Task {
      await old.waitUntilIdle()
      return gated.received.withLock { $0.count }
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    gated.gateOpen.withLock { $0 = true }
    // Idle only once the first set's message was done (it was idle at once, with nothing written).
    #expect(await idle.value == 1)
    #expect(await acks.wait(for: 1))
  }

  /// The chain of replaced sets holds the busy ones only, however many reloads come under steady
  /// traffic (the outgoing set, always busy, kept its whole history: every old rule and action).
  @Test func theChainOfReplacedSetsHoldsTheBusyOnesOnly() async throws {
    let (dispatcher, rule, gated) = try gatedRule()
    let acks = AckCollector()
    for round in 1...5 {
      // One message in flight in the outgoing set at each swap; the earlier ones done.
      gated.gateOpen.withLock { $0 = false }
      await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(round)"))
      let outgoing = dispatcher.swap(to: RuleSet(rules: [rule]))
      #expect(dispatcher.ruleSet.replacedChainLength == 1, "round \(round)")
      gated.gateOpen.withLock { $0 = true }
      // (A message is acknowledged before it leaves its set.)
      await outgoing.waitUntilIdle()
      #expect(await acks.wait(for: round))
    }
    // Two busy at once: both kept, in order; then neither.
    gated.gateOpen.withLock { $0 = false }
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "6"))
    dispatcher.swap(to: RuleSet(rules: [rule]))
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "7"))
    let outgoing = dispatcher.swap(to: RuleSet(rules: [rule]))
    #expect(dispatcher.ruleSet.replacedChainLength == 2)
    gated.gateOpen.withLock { $0 = true }
    await outgoing.waitUntilIdle()
    #expect(await acks.wait(for: 7))
    dispatcher.swap(to: RuleSet(rules: [rule]))
    #expect(dispatcher.ruleSet.replacedChainLength == 0)
  }
}

/// Records how long each retry waits.
private final class SleepLog: EngineClock, Sendable {
  let sleeps = Mutex<[Int]>([])
  func nowMs() -> Int { 1_700_000_000_000 }
  func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
  func sleep(milliseconds: Int) async throws { sleeps.withLock { $0.append(milliseconds) } }
}

/// Fails once with HTTP 429's Retry-After, then succeeds.
private final class TooManyRequestsOnce: Action, Sendable {
  let calls = Mutex(0)
  var kind: String { "busy" }
  var actionName: String { "BusyAction" }
  var resource: String { "busy" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    let call = calls.withLock { count -> Int in
      count += 1
      return count
    }
    if call == 1 { throw ActionError(.transient, "HTTP 429", retryAfterMs: 2_000) }
  }
  func shutdown() async {}
}

/// A transient failure's Retry-After is waited for (up to the policy's longest backoff).
@Test func retryHonoursRetryAfter() async throws {
  let clock = SleepLog()
  let action = TooManyRequestsOnce()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 10, maxBackoffMs: 5_000), clock: clock)
  let acks = AckCollector()
  await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
  #expect(await acks.wait(for: 1))
  #expect(clock.sleeps.withLock { $0 } == [2_000])
  #expect(action.calls.withLock { $0 } == 2)
}

/// A clock whose sleeps last until cancelled (a backoff of an hour).
private final class EndlessSleeps: EngineClock, Sendable {
  let started = Mutex(0)
  func nowMs() -> Int { 1_700_000_000_000 }
  func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
  func sleep(milliseconds: Int) async throws {
    started.withLock { $0 += 1 }
    try await Task.sleep(nanoseconds: 3_600_000_000_000)
  }
}

/// Always fails, transiently (after `delayNanoseconds`, as a timeout does), and counts its attempts.
private final class AlwaysTransient: Action, Sendable {
  let calls = Mutex(0)
  /// The origins of the results performed, once per attempt.
  let attempted = Mutex<[String]>([])
  let delayNanoseconds: UInt64
  let message: String
  /// What `failedAttemptsLeaveNothing` says (a database's rolled-back write).
  let rollsBack: Bool
  init(delayNanoseconds: UInt64 = 0, message: String = "down", rollsBack: Bool = false) {
    self.delayNanoseconds = delayNanoseconds
    self.message = message
    self.rollsBack = rollsBack
  }
  var failedAttemptsLeaveNothing: Bool { rollsBack }
  var kind: String { "flaky" }
  var actionName: String { "FlakyAction" }
  var resource: String { "flaky" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    calls.withLock { $0 += 1 }
    attempted.withLock { $0.append(input.message.origin) }
    if delayNanoseconds > 0 { try? await Task.sleep(nanoseconds: delayNanoseconds) }
    throw ActionError(.transient, message)
  }
  func shutdown() async {}
}

/// `stopRetrying` ends a backoff at once; the retry makes exactly one more attempt and the
/// record goes down its error path, saying why it stopped early.
@Test func stopRetryingEndsBackoffsWithOneLastAttempt() async throws {
  let clock = EndlessSleeps()
  let action = AlwaysTransient()
  let deadLetter = MemoryDeadLetter()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 100, initialBackoffMs: 1_000, maxBackoffMs: 3_600_000), clock: clock,
    deadLetter: deadLetter)
  let acks = AckCollector()
  await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
  for _ in 0..<500 where clock.started.withLock({ $0 }) == 0 { try await Task.sleep(nanoseconds: 2_000_000) }
  #expect(clock.started.withLock { $0 } == 1)
  #expect(action.calls.withLock { $0 } == 1)
  dispatcher.stopRetrying()
  #expect(await acks.wait(for: 1))
  #expect(action.calls.withLock { $0 } == 2)
  #expect(clock.started.withLock { $0 } == 1)
  let message = deadLetter.records.withLock { $0.first?.failures.first?.errorMessage }
  #expect(message == "down (after 2 attempts; retries stopped at shutdown)")
}

/// An action whose failed attempts leave nothing (SQLite rolls a failed write back) says a result
/// failed unsent at a stop was not written, not that an earlier attempt may have arrived (a
/// database locked past the stop: every record said so, the table empty).
@Test func aStopSaysARolledBackActionsUnsentResultsWereNotWritten() async throws {
  let action = AlwaysTransient(delayNanoseconds: 50_000_000, message: "database is locked", rollsBack: true)
  let (_, acks, deadLetter) = try await stopOnceStarted(action, attempts: 3, messages: 20) {
    action.calls.withLock { $0 } > 0
  }
  #expect(await acks.wait(for: 20, timeoutMs: 20_000))
  let messages = deadLetter.records.withLock { $0.compactMap { $0.failures.first?.errorMessage } }
  #expect(messages.contains { $0.contains("not written: the daemon is stopping") }, "\(messages.prefix(3))")
  #expect(
    !messages.contains { $0.contains("not sent (again)") || $0.contains("may have arrived") },
    "\(messages.prefix(3))")
}

/// Once stopping, an action that fails transiently is not tried again for the results queued
/// behind it: they go down their error path at once, and the stop waits for one timeout, not one
/// (or two) per message in flight, one after another.
@Test func aStopWaitsForOneTimeoutPerActionNotOnePerMessage() async throws {
  let action = AlwaysTransient(delayNanoseconds: 50_000_000, message: "timed out")
  let logged = LogLines()
  let (dispatcher, acks, deadLetter) = try await stopOnceStarted(
    action, attempts: 3, messages: 40, logger: logged.logger
  ) {
    action.calls.withLock { $0 } > 0
  }
  #expect(await acks.wait(for: 40, timeoutMs: 20_000))
  // The round after the stop is no retry with a backoff: said as what it is.
  let lines = logged.messages
  #expect(lines.contains { $0.contains("the daemon is stopping: one last attempt") }, "\(lines)")
  #expect(!lines.contains("action failed transiently, retrying"), "\(lines)")
  // Before: 40 messages x up to 3 attempts of 50 ms, one after another (about 2 to 6 s).
  #expect(action.calls.withLock { $0 } <= 6, "\(action.calls.withLock { $0 })")
  #expect(deadLetter.records.withLock { $0.count } == 40)
  let messages = deadLetter.records.withLock { $0.compactMap { $0.failures.first?.errorMessage } }
  #expect(
    messages.contains { $0.contains("not sent (again): the daemon is stopping") }, "\(messages.prefix(3))")
  // One attempted before the stop says what its own attempt met, not only another result's failure.
  #expect(
    messages.contains { $0.contains("not sent (again)") && $0.hasSuffix("its own last attempt: timed out") },
    "\(messages.prefix(3))")
  // Not attempted is no attempt: said without an attempt count, and no retry counted for it.
  #expect(
    !messages.contains { $0.contains("not attempted") && $0.contains("attempts") }, "\(messages.prefix(3))")
  // A retry is a result sent again, counted when it is: not a round the stop left unsent.
  let attempted = action.attempted.withLock { $0 }
  #expect(dispatcher.stats.retries == attempted.count - Set(attempted).count, "\(attempted)")
}

/// Once stopping, behind a webhook that answers every request with a 503, the last round ends at
/// the first result still refused: the rest go down their error paths unsent, saying so, and the
/// stop waits one answer per topic (a webhook answering 504 after 29 s held it one answer per
/// queued result when each was tried).
@Test func aStopEndsBehindAnAnsweringRefusal() async throws {
  let action = SlowFailingGroups(delayNanoseconds: 5_000_000) { _ in
    var error = ActionError(.transient, "answered HTTP 503", retryAfterMs: 30_000)
    error.answered = true
    return error
  }
  let (_, acks, deadLetter) = try await stopOnceStarted(action, attempts: 5, messages: 10) {
    action.calls.withLock { $0 } > 0
  }
  #expect(await acks.wait(for: 10, timeoutMs: 20_000))
  let messages = deadLetter.records.withLock { $0.compactMap { $0.failures.first?.errorMessage } }
  #expect(messages.count == 10)
  #expect(messages.contains { $0.contains("not sent") && $0.contains("retries stopped at shutdown") })
  #expect(action.calls.withLock { $0 } < 10)
}

/// A result not sent at all (its request never got a connection) has had no attempt: with
/// `attempts: 1` it still gets its one (a replay's end behind a webhook with one hung request sent
/// such results down their error paths unsent).
@Test func anUnsentResultGetsItsAttemptEvenWithOne() async throws {
  let action = SlowFailingGroups(delayNanoseconds: 1_000_000) { call in
    guard call == 0 else { return nil }
    var error = ActionError(.transient, "not sent: the intake has ended")
    error.unsent = true
    return error
  }
  let deadLetter = MemoryDeadLetter()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 1, initialBackoffMs: 10, maxBackoffMs: 100), clock: FastClock(),
    deadLetter: deadLetter)
  let acks = AckCollector()
  await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
  #expect(await acks.wait(for: 1))
  #expect(deadLetter.records.withLock { $0.isEmpty })
  #expect(action.calls.withLock { $0 } == 2)
  // No attempt failed (iotrules_action_failed_total counted each unsent round).
  #expect(dispatcher.stats.actionFailures == 0)
}

/// Once stopping, a failure the peer answered (a 503, a 429) is no sign the action is gone: the
/// results behind it are still tried, and the refused one gets its last attempt (one 503 at a
/// SIGTERM sent 29 of 40 results down their error paths unsent).
@Test func aStopTriesOnAfterAnAnsweredFailure() async throws {
  // The first request answered with a refusal for the moment (a webhook's 503), the others delivered.
  let action = SlowFailingGroups(delayNanoseconds: 20_000_000) { call in
    guard call == 0 else { return nil }
    var error = ActionError(.transient, "answered HTTP 503")
    error.answered = true
    return error
  }
  let (_, acks, deadLetter) = try await stopOnceStarted(action, attempts: 3, messages: 40) {
    action.calls.withLock { $0 } > 0
  }
  #expect(await acks.wait(for: 40, timeoutMs: 20_000))
  #expect(
    deadLetter.records.withLock { $0.count } == 0,
    "\(deadLetter.records.withLock { $0.prefix(2).map { $0.failures.map(\.errorMessage) } })")
}

/// A burst of answered refusals (six 503s, then a webhook that takes everything) costs the results
/// it refused their attempts, not the topic's backlog: each result behind keeps its own attempts,
/// as in AWS (all 20 went to the dead-letter file after four requests). A webhook that stops
/// answering still ends the backlog fast (see `aStopWaitsForOneTimeoutPerActionNotOnePerMessage`).
@Test(arguments: [true, false])
func answeredRefusalsKeepEachResultsAttempts(_ answered: Bool) async throws {
  let (origins, _, failures) = try await refusedRun(count: 20, failures: 6) {
    var error = ActionError(.transient, answered ? "answered HTTP 503" : "timed out")
    error.answered = answered
    return error
  }
  if answered {
    // Each refused result kept its own attempts while the ones behind it were sent: none lost.
    #expect(origins.isEmpty, "\(origins)")
  } else {
    // No answer twice running: the endpoint is failing, and the rest end unsent.
    #expect(origins.count == 20, "\(origins)")
    // Each counts as a failure, its own attempt or not (4 were counted against 20 error records:
    // `iotrules_action_failed_total` stayed flat through the outage).
    #expect(failures >= 20, "\(failures)")
  }
}

/// A peer asking to wait (429, Retry-After) gets nothing more of the topic until then: the results
/// behind wait unsent and arrive in order after it (a backlog sent behind a Retry-After was mostly
/// refused again and dead-lettered).
@Test func aRetryAfterHoldsTheTopicsLaterResults() async throws {
  let (origins, acknowledged, _) = try await refusedRun(count: 5, failures: 2) {
    var error = ActionError(.transient, "answered HTTP 429", retryAfterMs: 1)
    error.answered = true
    return error
  }
  #expect(origins.isEmpty)
  #expect(acknowledged == ["0", "1", "2", "3", "4"])
}

/// `count` messages of one topic through a keyed-group action whose first `failures` requests end
/// with `failure`, under three attempts: the origins dead-lettered, and those acknowledged in order.
private func refusedRun(count: Int, failures: Int, _ failure: @escaping @Sendable () -> ActionError)
  async throws -> (deadLettered: [String], acknowledged: [String], failures: Int)
{
  let action = SlowFailingGroups(delayNanoseconds: 1_000_000) { call in call < failures ? failure() : nil }
  let deadLetter = MemoryDeadLetter()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 1, maxBackoffMs: 2), clock: FastClock(),
    deadLetter: deadLetter)
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: (0..<count).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  #expect(await acks.wait(for: count, timeoutMs: 20_000))
  return (
    deadLetter.records.withLock { $0.map(\.origin) }, acks.acks.withLock { $0.map(\.0) },
    dispatcher.stats.actionFailures
  )
}

/// A keyed-group action (as the http action is) whose requests take `delayNanoseconds` and end as
/// `outcome` says for each call in turn (by default a transient failure, a timeout), failing the rest
/// of its group fast when asked to, as the http action does.
private final class SlowFailingGroups: KeyedGroupAction, Sendable {
  let calls = Mutex(0)
  /// The origins of the results it was asked to send, in order.
  let sent = Mutex<[String]>([])
  let delayNanoseconds: UInt64
  let outcome: @Sendable (Int) -> ActionError?
  init(
    delayNanoseconds: UInt64 = 50_000_000,
    outcome: @escaping @Sendable (Int) -> ActionError? = { _ in ActionError(.transient, "timed out") }
  ) {
    self.delayNanoseconds = delayNanoseconds
    self.outcome = outcome
  }
  var kind: String { "slowgroup" }
  var actionName: String { "SlowGroupAction" }
  var resource: String { "slowgroup" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performGroup([input])[0] { throw error }
  }
  func performGroup(_ inputs: [ActionInput]) async -> [ActionError?] {
    await performGroup(inputs, failingFast: { _ in false }, delivered: { _ in })
  }
  func performGroup(
    _ inputs: [ActionInput], failingFast: @Sendable (ActionError) -> Bool, delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    var results: [ActionError?] = []
    var failed: ActionError?
    for offset in inputs.indices {
      if let failed {
        var unsent = ActionError(.transient, "not sent: \(failed.message)")
        unsent.unsent = true
        results.append(unsent)
        continue
      }
      let call = calls.withLock { count in
        defer { count += 1 }
        return count
      }
      sent.withLock { $0.append(inputs[offset].message.origin) }
      try? await Task.sleep(nanoseconds: delayNanoseconds)
      let error = outcome(call)
      if let error, error.kind == .transient, failingFast(error) { failed = error }
      if error == nil { delivered(offset) }
      results.append(error)
    }
    return results
  }
  func shutdown() async {}
}

/// A topic's group begun before the stop fails fast once the stop comes: its later results are not
/// sent one timeout after another (a webhook that stopped answering held a stop for a minute, 30
/// results of one topic each waiting out its timeout).
@Test func aGroupBegunBeforeTheStopFailsFastOnceItComes() async throws {
  let action = SlowFailingGroups()
  let (_, acks, deadLetter) = try await stopOnceStarted(action, attempts: 1, messages: 40) {
    action.calls.withLock { $0 } >= 2
  }
  #expect(await acks.wait(for: 40, timeoutMs: 20_000))
  // Before: all 40 attempted, 50 ms each, one after another.
  #expect(action.calls.withLock { $0 } <= 5, "\(action.calls.withLock { $0 })")
  #expect(deadLetter.records.withLock { $0.count } == 40)
}

/// A batch action whose first batch fails transiently; it records every batch it gets.
private final class FirstBatchFails: BatchAction, Sendable {
  let batches = Mutex<[[String]]>([])
  var kind: String { "flakybatch" }
  var actionName: String { "FlakyBatchAction" }
  var resource: String { "flakybatch" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] {
    let call = batches.withLock { batches -> Int in
      batches.append(inputs.map(\.message.origin))
      return batches.count
    }
    return inputs.map { _ in call == 1 ? ActionError(.transient, "busy", retryAfterMs: 5) : nil }
  }
  func shutdown() async {}
}

/// The results of a batch that failed transiently are retried together, as one batch again, in
/// their order (each on its own jittered schedule, they came back one by one and scrambled).
@Test func aFailedBatchIsRetriedTogetherInOrder() async throws {
  let action = FirstBatchFails()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 10, maxBackoffMs: 1_000), clock: FastClock())
  let acks = AckCollector()
  await dispatcher.deliver(batch: (0..<10).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  #expect(await acks.wait(for: 10))
  let batches = action.batches.withLock { $0 }
  #expect(batches.count == 2, "\(batches)")
  #expect(batches.first == (0..<10).map { "\($0)" })
  #expect(batches.last == batches.first)
  #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
  #expect(dispatcher.stats.retries == 10)
}

/// The failures of one batch reach a batch error action as one batch, in message order, and are
/// retried together (a file error action wrote and synced each record alone: 2,000 a second), also
/// when they came out of retries.
@Test(arguments: [1, 2]) func failuresReachABatchErrorActionTogether(attempts: Int) async throws {
  let recorder = FirstBatchFails()
  let errorAction = ConfiguredAction(
    action: recorder, retry: RetryPolicy(attempts: 2, initialBackoffMs: 1, maxBackoffMs: 10),
    errorAction: nil,
    ruleName: "r", label: "errorAction")
  let deadLetter = MemoryDeadLetter()
  let dispatcher = try retryingDispatcher(
    AlwaysTransient(), RetryPolicy(attempts: attempts, initialBackoffMs: 1, maxBackoffMs: 1),
    clock: FastClock(),
    deadLetter: deadLetter, errorAction: errorAction)
  let acks = AckCollector()
  await dispatcher.deliver(batch: (0..<10).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  #expect(await acks.wait(for: 10))
  let batches = recorder.batches.withLock { $0 }
  #expect(batches == [(0..<10).map { "\($0)" }, (0..<10).map { "\($0)" }], "\(batches)")
  #expect(deadLetter.records.withLock { $0.isEmpty })
  #expect(dispatcher.stats.errorRecords == 10)
  #expect(acks.acks.withLock { $0.allSatisfy { $0.1 == .done } })
}

/// Fails messages from origin "a" transiently at first and then permanently, the others always
/// transiently.
private final class PermanentOnSecondTry: Action, Sendable {
  let calls = Mutex<[String: Int]>([:])
  var kind: String { "flaky" }
  var actionName: String { "FlakyAction" }
  var resource: String { "flaky" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    let origin = input.message.origin
    let call = calls.withLock { calls -> Int in
      calls[origin, default: 0] += 1
      return calls[origin]!
    }
    throw ActionError(origin == "a" && call >= 2 ? .permanent : .transient, "down")
  }
  func shutdown() async {}
}

/// A failure that ends in a round of retries goes down its error path after that round, not after
/// the last round of the others retried with it (it held its message in flight meanwhile).
@Test func aFailureEndingInARetryRoundIsSentAfterThatRound() async throws {
  let recorder = FirstBatchFails()
  _ = await recorder.performBatch([])  // its first batch (failing) is spent
  let errorAction = ConfiguredAction(
    action: recorder, retry: RetryPolicy(attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1), errorAction: nil,
    ruleName: "r", label: "errorAction")
  let dispatcher = try retryingDispatcher(
    PermanentOnSecondTry(), RetryPolicy(attempts: 4, initialBackoffMs: 1, maxBackoffMs: 2),
    clock: FastClock(),
    errorAction: errorAction)
  let acks = AckCollector()
  await dispatcher.deliver(batch: ["a", "b"].map { acks.message(topic: "a", payload: "{}", origin: $0) })
  #expect(await acks.wait(for: 2))
  let batches = recorder.batches.withLock { $0 }
  #expect(batches == [[], ["a"], ["b"]], "\(batches)")
}

/// Holds its results for the topic `slow` until the gate opens; the others succeed at once.
private final class SlowTopic: Action, Sendable {
  let open = Mutex(false)
  var kind: String { "slow" }
  var actionName: String { "SlowAction" }
  var resource: String { "slow" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    guard input.message.topic == "slow" else { return }
    for _ in 0..<2_000 where !open.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
  }
  func shutdown() async {}
}

/// One topic's slow results do not hold the acknowledgements of the other topics of their batch
/// (a Kafka source commits what is acknowledged: a webhook slow on one key held every partition).
@Test func aSlowTopicDoesNotHoldTheOthersAcknowledgements() async throws {
  let action = SlowTopic()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1), clock: FastClock(),
    sql: "SELECT * FROM '#'")
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: [("slow", "1"), ("fast", "2"), ("fast", "3"), ("other", "4")].map {
      acks.message(topic: $0.0, payload: "{}", origin: $0.1)
    })
  #expect(await acks.wait(for: 3, timeoutMs: 3_000))
  #expect(Set(acks.acks.withLock { $0.map(\.0) }) == ["2", "3", "4"])
  action.open.withLock { $0 = true }
  #expect(await acks.wait(for: 4))
}

/// One topic's slow result holds neither the other topics' later results nor their
/// acknowledgements: the lane went on to its next batch only once every topic of the one before
/// was done, so a webhook request hanging for its timeout held every device of the action.
@Test func aSlowTopicDoesNotHoldTheOthersLaterResults() async throws {
  let action = SlowTopic()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1), clock: FastClock(),
    sql: "SELECT * FROM '#'")
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: [("slow", "1"), ("fast", "2")].map { acks.message(topic: $0.0, payload: "{}", origin: $0.1) })
  #expect(await acks.wait(for: 1, timeoutMs: 3_000))
  for round in 0..<3 {
    await dispatcher.deliver(
      batch: [("slow", "s\(round)"), ("fast", "f\(round)"), ("other", "o\(round)")].map {
        acks.message(topic: $0.0, payload: "{}", origin: $0.1)
      })
    #expect(await acks.wait(for: 3 + 2 * round, timeoutMs: 3_000))
  }
  #expect(Set(acks.acks.withLock { $0.map(\.0) }) == ["2", "f0", "o0", "f1", "o1", "f2", "o2"])
  action.open.withLock { $0 = true }
  #expect(await acks.wait(for: 11))
  // The slow topic's results in their order.
  #expect(acks.acks.withLock { $0.map(\.0).suffix(4) } == ["1", "s0", "s1", "s2"])
}

/// Holds each result until the test opens its origin; a keyed-group action (told) or not.
private final class GatedResults: KeyedGroupAction, Sendable {
  let opened = Mutex<Set<String>>([])
  var kind: String { "gated" }
  var actionName: String { "GatedResults" }
  var resource: String { "gated" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    for _ in 0..<2_000 where !opened.withLock({ $0.contains(input.message.origin) }) {
      try? await Task.sleep(for: .milliseconds(5))
    }
  }
  func performGroup(_ inputs: [ActionInput]) async -> [ActionError?] {
    await performGroup(inputs, failingFast: { _ in false }, delivered: { _ in })
  }
  func performGroup(
    _ inputs: [ActionInput], failingFast: @Sendable (ActionError) -> Bool, delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    for (index, input) in inputs.enumerated() {
      try? await perform(input)
      delivered(index)
    }
    return inputs.map { _ in nil }
  }
  func shutdown() async {}
}

/// The same, as a plain action (results performed one by one).
private final class GatedPlainResults: Action, Sendable {
  let gate = GatedResults()
  var kind: String { "gated" }
  var actionName: String { "GatedPlainResults" }
  var resource: String { "gated" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) { try await gate.perform(input) }
  func shutdown() async {}
}

/// A topic's results are acknowledged one by one as they are delivered, not when the last of the
/// lane's batch for that topic is: a webhook answering a backlog of 1,000 results a second each
/// held every acknowledgement, and a Kafka source's commits, for 1,000 seconds.
@Test(arguments: [true, false]) func aTopicsDeliveredResultsAreAcknowledgedAtOnce(keyed: Bool) async throws {
  let keyedAction = GatedResults()
  let plain = GatedPlainResults()
  let gate = keyed ? keyedAction : plain.gate
  let dispatcher = try retryingDispatcher(
    keyed ? keyedAction : plain, RetryPolicy(attempts: 1), clock: FastClock(), sql: "SELECT * FROM '#'")
  let acks = AckCollector()
  await dispatcher.deliver(batch: ["1"].map { acks.message(topic: "t", payload: "{}", origin: $0) })
  await dispatcher.deliver(
    batch: ["2", "3", "4"].map { acks.message(topic: "t", payload: "{}", origin: $0) })
  gate.opened.withLock { $0 = ["1", "2"] }
  #expect(await acks.wait(for: 2, timeoutMs: 3_000))
  try await Task.sleep(for: .milliseconds(50))
  #expect(acks.acks.withLock { $0.map(\.0) } == ["1", "2"])
  gate.opened.withLock { $0 = ["1", "2", "3", "4"] }
  #expect(await acks.wait(for: 4))
  #expect(acks.acks.withLock { $0.map(\.0) } == ["1", "2", "3", "4"])
}

/// Fails each result's first attempt (a webhook restarting), then holds it until its gate opens.
private final class FlakyThenGated: Action, Sendable {
  let gate = GatedResults()
  let tried = Mutex<Set<String>>([])
  var kind: String { "flaky" }
  var actionName: String { "FlakyThenGated" }
  var resource: String { "flaky" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    let first = tried.withLock { $0.insert(input.message.origin).inserted }
    if first { throw ActionError(.transient, "restarting") }
    try await gate.perform(input)
  }
  func shutdown() async {}
}

/// A round of retries acknowledges each result as it is delivered, as the first attempt does: a
/// round over a slow webhook held every acknowledgement until its end. The retry is counted before
/// its acknowledgement (which can end a run, whose summary then said 0 retries).
@Test func aRetryRoundAcknowledgesEachDeliveredResultAtOnce() async throws {
  let action = FlakyThenGated()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 1, maxBackoffMs: 1), clock: FastClock())
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: ["1", "2", "3"].map { acks.message(topic: "a", payload: "{}", origin: $0) })
  for _ in 0..<400 where action.tried.withLock({ $0.count }) < 3 {
    try await Task.sleep(for: .milliseconds(5))
  }
  try await Task.sleep(for: .milliseconds(30))
  action.gate.opened.withLock { $0 = ["1"] }
  #expect(await acks.wait(for: 1, timeoutMs: 3_000))
  #expect(dispatcher.stats.retries >= 1)
  try await Task.sleep(for: .milliseconds(50))
  #expect(acks.acks.withLock { $0.map(\.0) } == ["1"])
  #expect(dispatcher.stats.retries == 1)
  action.gate.opened.withLock { $0 = ["1", "2", "3"] }
  #expect(await acks.wait(for: 3))
  #expect(acks.acks.withLock { $0.map(\.0) } == ["1", "2", "3"])
  #expect(dispatcher.stats.retries == 3)
}

/// A lane's task cancelled while a topic's group is performed still hears every result (the
/// wake-ups end at the cancellation; the parts left are taken once the group is done).
@Test func aCancelledPerformStillTellsEveryResult() async throws {
  let action = GatedPlainResults()
  let dispatcher = try retryingDispatcher(action, RetryPolicy(attempts: 1), clock: FastClock())
  let configured = try #require(dispatcher.ruleSet.rules.first?.actions.first)
  let program = try Compiler.compile("SELECT * FROM 'a'")
  var machine = VirtualMachine()
  let acks = AckCollector()
  var inputs: [ActionInput] = []
  for origin in ["1", "2", "3"] {
    let message = acks.message(topic: "a", payload: "{}", origin: origin)
    let result = machine.evaluate(program, context: message.evaluationContext())
    let evaluation = try #require(result)
    inputs.append(ActionInput(ruleName: "r", evaluation: evaluation, message: message))
  }
  let told = Mutex<[Int]>([])
  let performing = Task { [inputs] in
    await dispatcher.perform(inputs, on: configured) { indices, _ in told.withLock { $0 += indices } }
  }
  performing.cancel()
  action.gate.opened.withLock { $0 = ["1", "2", "3"] }
  _ = await performing.value
  #expect(told.withLock { $0.sorted() } == [0, 1, 2])
}

/// A dispatcher over one rule `SELECT * FROM 'a'` whose one action is `action` under `retry`.
/// Delivers `messages` messages of topic `a` (origins `0`, `1`, ...) to `action` under a policy of
/// `attempts`, then stops retrying once `started` holds (looked at every 2 ms, for at most a
/// second): the dispatcher, its acknowledgements and its dead-letter records, for a test of what a
/// stop does to an action that is failing.
private func stopOnceStarted(
  _ action: any Action, attempts: Int, messages: Int, logger: Logger = Logger(label: "test"),
  started: () -> Bool
) async throws -> (Dispatcher, AckCollector, MemoryDeadLetter) {
  let deadLetter = MemoryDeadLetter()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: attempts, initialBackoffMs: 10, maxBackoffMs: 100), clock: FastClock(),
    deadLetter: deadLetter, logger: logger)
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: (0..<messages).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  for _ in 0..<500 where !started() { try await Task.sleep(nanoseconds: 2_000_000) }
  dispatcher.stopRetrying()
  return (dispatcher, acks, deadLetter)
}

private func retryingDispatcher(
  _ action: any Action, _ retry: RetryPolicy, clock: any EngineClock,
  deadLetter: MemoryDeadLetter = MemoryDeadLetter(), maxInFlight: Int = 1024,
  errorAction: ConfiguredAction? = nil, sql: String = "SELECT * FROM 'a'",
  logger: Logger = Logger(label: "test")
) throws -> Dispatcher {
  let configured = ConfiguredAction(
    action: action, retry: retry, errorAction: errorAction, ruleName: "r", label: "\(action.kind)[0]")
  let rule = Rule(
    name: "r", description: "", disabled: false, program: try Compiler.compile(sql),
    actions: [configured], errorAction: nil, file: "r.json",
    fingerprint: FileFingerprint(hash: 0, length: 0))
  return Dispatcher(
    ruleSet: RuleSet(rules: [rule]), maxInFlight: maxInFlight, deadLetter: deadLetter, clock: clock,
    logger: logger)
}

/// A pipelined action whose batches complete when the test opens their gates.
private final class GatedPipeline: PipelinedBatchAction, Sendable {
  let submitted = Mutex<[[String]]>([])
  let opened = Mutex<Set<Int>>([])
  var kind: String { "gated" }
  var actionName: String { "GatedPipeline" }
  var resource: String { "gated" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] { await submitBatch(inputs)() }
  func submitBatch(_ inputs: [ActionInput]) -> @Sendable () async -> [ActionError?] {
    let number = submitted.withLock { submitted -> Int in
      submitted.append(inputs.map(\.message.origin))
      return submitted.count
    }
    return { [self] in
      for _ in 0..<2_000 where !opened.withLock({ $0.contains(number) }) {
        try? await Task.sleep(for: .milliseconds(5))
      }
      return inputs.map { _ in nil }
    }
  }
  func shutdown() async {}
}

/// A pipelined action gets the next batch before the last one's results are in, and the results
/// are taken in submission order.
@Test(.timeLimit(.minutes(3))) func pipelinedBatchesOverlapAndFinishInOrder() async throws {
  let action = GatedPipeline()
  let total = ActionLane.maxBatch + 488
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 1), clock: FastClock(), maxInFlight: 2 * ActionLane.maxBatch)
  let acks = AckCollector()
  await dispatcher.deliver(
    batch: (0..<total).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  // Two batches (the largest, then 488) are out while neither has its results.
  for _ in 0..<400 where action.submitted.withLock({ $0.count }) < 2 {
    try await Task.sleep(for: .milliseconds(5))
  }
  #expect(action.submitted.withLock { $0.map(\.count) } == [ActionLane.maxBatch, 488])
  #expect(action.submitted.withLock { $0.flatMap { $0 } } == (0..<total).map { "\($0)" })
  // The second batch's results come first: nothing is finished before the first batch's.
  _ = action.opened.withLock { $0.insert(2) }
  try await Task.sleep(for: .milliseconds(100))
  #expect(acks.acks.withLock { $0.count } == 0)
  _ = action.opened.withLock { $0.insert(1) }
  #expect(await acks.wait(for: total))
  #expect(acks.acks.withLock { $0.map(\.0) } == (0..<total).map { "\($0)" })
}

/// Two versions of one action writing to one destination: each perform appends its message's
/// origin to the shared log, after `delayMs`.
private final class SinkLog: Sendable {
  let entries = Mutex<[Int]>([])
}

private final class SharedSink: Action, Sendable {
  let log: SinkLog
  let delayMs: Int
  let resource: String
  init(log: SinkLog, delayMs: Int, resource: String = "sink") {
    self.log = log
    self.delayMs = delayMs
    self.resource = resource
  }
  var kind: String { "sink" }
  var actionName: String { "SharedSink" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    try? await Task.sleep(for: .milliseconds(delayMs))
    log.entries.withLock { $0.append(Int(input.message.origin) ?? -1) }
  }
  func shutdown() async {}
}

/// A reload that replaces a rule while its action works through a backlog: the new version's
/// results reach the destination after the old version's, one topic in order (the new lane went
/// at once, overtaking the backlog), also when the new version added an action before it (lanes
/// are paired by destination, not by place: the new lane waited on the added one's), and when the
/// new rule has another name (`mv a.json b.json`: paired with the gone rule that wrote there), and
/// when the old lane was idle at the handover and its backlog came between the handover and the
/// swap (the new lane did not wait for a lane idle at the handover).
@Test(arguments: [(false, false, false), (true, false, false), (false, true, false), (false, false, true)])
func aReplacedRulesBacklogGoesBeforeTheNewVersionsResults(
  addingOneInFront: Bool, renamed: Bool, inTheGap: Bool
) async throws {
  let log = SinkLog()
  let elsewhere = SinkLog()
  func version(_ delayMs: Int, front: Bool = false, name: String = "r") throws -> Rule {
    let added = ConfiguredAction(
      action: SharedSink(log: elsewhere, delayMs: 0, resource: "elsewhere"), retry: RetryPolicy(),
      errorAction: nil, ruleName: name, label: "sink[0]")
    let configured = ConfiguredAction(
      action: SharedSink(log: log, delayMs: delayMs), retry: RetryPolicy(), errorAction: nil, ruleName: name,
      label: front ? "sink[1]" : "sink[0]")
    return Rule(
      name: name, description: "", disabled: false, program: try Compiler.compile("SELECT * FROM 'a'"),
      actions: front ? [added, configured] : [configured], errorAction: nil, file: "\(name).json",
      fingerprint: FileFingerprint(hash: 0, length: 0))
  }
  let old = try version(2)
  let dispatcher = Dispatcher(
    ruleSet: RuleSet(rules: [old]), maxInFlight: 1024, deadLetter: MemoryDeadLetter(), clock: FastClock())
  let acks = AckCollector()
  func backlog() async {
    for n in 0..<40 { await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(n)")) }
  }
  if !inTheGap { await backlog() }
  let new = try version(0, front: addingOneInFront, name: renamed ? "b" : "r")
  // Renamed, beside another new rule writing there too (listed first): each waits for the gone
  // rule's lane (the first one alone did, and the renamed rule overtook the backlog).
  let another = try version(0, name: "another")
  let fresh = renamed ? [another, new] : [new]
  dispatcher.handOver(from: [old], to: fresh)
  if inTheGap { await backlog() }
  dispatcher.swap(to: RuleSet(rules: fresh))
  for n in 40..<60 { await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(n)")) }
  #expect(await acks.wait(for: 60, timeoutMs: 30_000))
  let entries = log.entries.withLock { $0 }
  #expect(Array(entries.prefix(40)) == Array(0..<40) && entries.dropFirst(40).allSatisfy { $0 >= 40 })
  #expect(entries.count == (renamed ? 80 : 60))
}

/// Two reloads while the first version works through its backlog, the middle version's lane idle
/// at the second handover and given messages before the second swap: they wait for the first
/// version's backlog (its own wait was forgotten at the second handover, and they overtook it),
/// and the last version's results come after both.
@Test func anIdleMiddleVersionKeepsItsWaitUntilTheSwap() async throws {
  let log = SinkLog()
  func version(_ delayMs: Int) throws -> Rule {
    let configured = ConfiguredAction(
      action: SharedSink(log: log, delayMs: delayMs), retry: RetryPolicy(), errorAction: nil, ruleName: "r",
      label: "sink[0]")
    return Rule(
      name: "r", description: "", disabled: false, program: try Compiler.compile("SELECT * FROM 'a'"),
      actions: [configured], errorAction: nil, file: "r.json",
      fingerprint: FileFingerprint(hash: 0, length: 0))
  }
  let first = try version(2)
  let dispatcher = Dispatcher(
    ruleSet: RuleSet(rules: [first]), maxInFlight: 1024, deadLetter: MemoryDeadLetter(), clock: FastClock())
  let acks = AckCollector()
  func deliver(_ range: Range<Int>) async {
    for n in range { await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(n)")) }
  }
  await deliver(0..<40)
  let middle = try version(0)
  dispatcher.handOver(from: [first], to: [middle])
  dispatcher.swap(to: RuleSet(rules: [middle]))
  let last = try version(0)
  dispatcher.handOver(from: [middle], to: [last])
  await deliver(40..<50)
  dispatcher.swap(to: RuleSet(rules: [last]))
  await deliver(50..<60)
  #expect(await acks.wait(for: 60, timeoutMs: 30_000))
  let entries = log.entries.withLock { $0 }
  #expect(entries == Array(0..<60), "\(entries)")
}

/// A rule of one `SharedSink` action named `name`, writing to `resource` (its log).
private func sinkRule(_ name: String, _ log: SinkLog, resource: String, delayMs: Int) throws -> Rule {
  let configured = ConfiguredAction(
    action: SharedSink(log: log, delayMs: delayMs, resource: resource), retry: RetryPolicy(),
    errorAction: nil,
    ruleName: name, label: "sink[0]")
  return Rule(
    name: name, description: "", disabled: false, program: try Compiler.compile("SELECT * FROM 'a'"),
    actions: [configured], errorAction: nil, file: "\(name).json",
    fingerprint: FileFingerprint(hash: 0, length: 0))
}

/// Lanes are paired by destination across every version still working, whatever the rules'
/// names: a version that wrote elsewhere between two that write here (A1 to `x`, A2 to `y`, A3
/// to `x` again), and two rule files swapped (a to `x` and b to `y`, then a to `y` and b to `x`),
/// each let a new lane overtake an old one's backlog when versions were paired by name.
@Test(arguments: [false, true]) func aNewLaneWaitsForEveryOldLaneOfItsDestination(swapped: Bool) async throws
{
  let x = SinkLog()
  let y = SinkLog()
  let first =
    swapped
    ? [try sinkRule("a", x, resource: "x", delayMs: 2), try sinkRule("b", y, resource: "y", delayMs: 2)]
    : [try sinkRule("r", x, resource: "x", delayMs: 2)]
  let dispatcher = Dispatcher(
    ruleSet: RuleSet(rules: first), maxInFlight: 1024, deadLetter: MemoryDeadLetter(), clock: FastClock())
  let acks = AckCollector()
  func deliver(_ range: Range<Int>) async {
    for n in range { await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(n)")) }
  }
  await deliver(0..<40)
  var current = first
  func reload(to next: [Rule]) {
    dispatcher.handOver(from: current, to: next)
    dispatcher.swap(to: RuleSet(rules: next))
    current = next
  }
  if swapped {
    reload(to: [
      try sinkRule("a", y, resource: "y", delayMs: 0), try sinkRule("b", x, resource: "x", delayMs: 0),
    ])
  } else {
    reload(to: [try sinkRule("r", y, resource: "y", delayMs: 0)])
    reload(to: [try sinkRule("r", x, resource: "x", delayMs: 0)])
  }
  await deliver(40..<60)
  #expect(await acks.wait(for: 60, timeoutMs: 30_000))
  #expect(x.entries.withLock { $0 } == Array(0..<60))
  #expect(y.entries.withLock { $0 } == (swapped ? Array(0..<60) : []))
}

/// A pipelined action each of whose batches fails transiently after 50 ms (a delivery timeout).
private final class TimingOutPipeline: PipelinedBatchAction, Sendable {
  let submitted = Mutex(0)
  var kind: String { "timingout" }
  var actionName: String { "TimingOutPipeline" }
  var resource: String { "timingout" }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] { await submitBatch(inputs)() }
  func submitBatch(_ inputs: [ActionInput]) -> @Sendable () async -> [ActionError?] {
    submitted.withLock { $0 += 1 }
    let count = inputs.count
    return {
      try? await Task.sleep(for: .milliseconds(50))
      return Array(repeating: ActionError(.transient, "timed out"), count: count)
    }
  }
  func shutdown() async {}
}

/// Once stopping, a pipelined action that failed transiently gets no more batches, its retries
/// included: the stop waits for the one delivery timeout in flight (the retry's last attempt waited
/// out a second one: 60 s for a Kafka broker away).
@Test func aStoppingPipelinedActionGetsNoMoreBatchesAfterAFailure() async throws {
  let action = TimingOutPipeline()
  let (dispatcher, acks, deadLetter) = try await stopOnceStarted(action, attempts: 3, messages: 1) {
    action.submitted.withLock { $0 } > 0
  }
  #expect(await acks.wait(for: 1, timeoutMs: 20_000))
  #expect(action.submitted.withLock { $0 } == 1)
  // A later message is not submitted either.
  await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "1"))
  #expect(await acks.wait(for: 2, timeoutMs: 20_000))
  #expect(action.submitted.withLock { $0 } == 1)
  let messages = deadLetter.records.withLock { $0.compactMap { $0.failures.first?.errorMessage } }
  #expect(
    messages.count == 2 && messages[1].contains("not sent (again): the daemon is stopping"), "\(messages)")
}

/// An error action that fails for every record of a storm logs its failure as actions do: the
/// first of the minute, then counted (it logged one error line a record); every record is still
/// dead-lettered.
@Test func errorActionFailuresAreLoggedAtMostTenAMinute() async throws {
  let logged = LogLines()
  let builder = RecordingBuilder()
  let rule = try loadRule(
    #"{"sql": "SELECT * FROM 'a'", "actions": [{"record": {"name": "p", "fail": "permanent"}}], "errorAction": {"record": {"name": "e", "fail": "permanent"}}}"#,
    file: "storm.json", builder: builder)
  let deadLetter = MemoryDeadLetter()
  let dispatcher = Dispatcher(
    ruleSet: RuleSet(rules: [rule]), deadLetter: deadLetter, clock: FastClock(),
    logger: logged.logger)
  let acks = AckCollector()
  let count = Dispatcher.failureLinesPerMinute + 15
  for index in 0..<count {
    await dispatcher.deliver(acks.message(topic: "a", payload: "{}", origin: "\(index)"))
  }
  #expect(await acks.wait(for: count))
  await dispatcher.drain()
  #expect(deadLetter.records.withLock { $0.count } == count)
  #expect(
    logged.messages.filter { $0 == "error action failed" }.count
      == Dispatcher.failureLinesPerMinute)
  // Each failure's line names the resource its record names (which database, file or URL).
  #expect(logged.metadata(of: "action failed").first?["resource"]?.description == "p")
  #expect(logged.metadata(of: "error action failed").first?["resource"]?.description == "e")
  // And the record's traceId (AWS's cloudwatchTraceId "refers to the error logs"), as does the
  // error action's own failure: a record finds its log lines.
  // What no later line said, for the run's end to say: 15 of the action's, 15 of its error action's.
  #expect(
    dispatcher.unloggedFailures().map { "\($0.rule) \($0.action) \($0.count)" } == [
      "storm record[0] 15", "storm record[errorAction] 15",
    ])
  let traceIds = Set(deadLetter.records.withLock { $0.map(\.traceId) })
  #expect(traceIds.count == count)
  for line in ["action failed", "error action failed"] {
    let logged = logged.metadata(of: line).compactMap { $0["traceId"]?.description }
    #expect(logged.count == Dispatcher.failureLinesPerMinute && traceIds.isSuperset(of: logged), "\(line)")
  }
}

/// A failure storm does not flood the log: the first failures of each action and minute are logged,
/// the rest counted, and the next line logged says how many were not.
@Test func failureLinesAreLimitedPerActionAndMinute() {
  let clock = SteppingClock()
  let dispatcher = Dispatcher(ruleSet: .empty, deadLetter: MemoryDeadLetter(), clock: clock)
  var turns: [(Bool, Int)] = []
  for _ in 0..<(Dispatcher.failureLinesPerMinute + 5) {
    turns.append(dispatcher.failureLogTurn(rule: "r", action: "sqlite[0]"))
  }
  #expect(turns.prefix(Dispatcher.failureLinesPerMinute).allSatisfy { $0 == (true, 0) })
  #expect(turns.suffix(5).allSatisfy { $0 == (false, 0) })
  // Another action of the same rule has its own allowance.
  #expect(dispatcher.failureLogTurn(rule: "r", action: "file[1]") == (true, 0))
  // A minute later: logged again, saying how many were not.
  clock.advance(milliseconds: 60_000)
  #expect(dispatcher.failureLogTurn(rule: "r", action: "sqlite[0]") == (true, 5))
  #expect(dispatcher.failureLogTurn(rule: "r", action: "sqlite[0]") == (true, 0))
  // Rounds of retries have a budget of their own, and are no failures the run's end says.
  for _ in 0..<(Dispatcher.failureLinesPerMinute + 3) {
    _ = dispatcher.failureLogTurn(rule: "r", action: "sqlite[0]", retries: true)
  }
  #expect(dispatcher.failureLogTurn(rule: "r", action: "sqlite[0]") == (true, 0))
  #expect(dispatcher.unloggedFailures().isEmpty)
}

/// A clock whose backoffs last until the test opens them (bounded: 10 s).
private final class GatedSleeps: EngineClock, Sendable {
  let started = Mutex(0)
  let open = Mutex(false)
  func nowMs() -> Int { 1_700_000_000_000 }
  func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
  func sleep(milliseconds: Int) async throws {
    started.withLock { $0 += 1 }
    for _ in 0..<2_000 where !open.withLock({ $0 }) { try await Task.sleep(nanoseconds: 5_000_000) }
  }
}

/// A batch action whose first batch fails transiently and that keeps its order through retries
/// (as a SQLite action does); it records every batch it gets.
private final class OrderedFirstBatchFails: BatchAction, Sendable {
  let inner = FirstBatchFails()
  var kind: String { "orderedbatch" }
  var actionName: String { "OrderedBatchAction" }
  var resource: String { "orderedbatch" }
  var retriesKeepOrder: Bool { true }
  func start() async throws {}
  func perform(_ input: ActionInput) async throws(ActionError) { try await inner.perform(input) }
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] { await inner.performBatch(inputs) }
  func shutdown() async {}
}

/// An action that keeps its order through retries gets no later result while earlier ones wait
/// for their retry: a keyed SQLite table's retried row wrote an older value over a newer one.
@Test func laterResultsWaitBehindARetryWhenTheActionKeepsItsOrder() async throws {
  let action = OrderedFirstBatchFails()
  let clock = GatedSleeps()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 10, maxBackoffMs: 1_000), clock: clock)
  let acks = AckCollector()
  await dispatcher.deliver(batch: (0..<3).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  for _ in 0..<2_000 where clock.started.withLock({ $0 }) == 0 {
    try await Task.sleep(nanoseconds: 5_000_000)
  }
  await dispatcher.deliver(batch: (3..<6).map { acks.message(topic: "a", payload: "{}", origin: "\($0)") })
  // Time for the later batch to be written, were it not held.
  try await Task.sleep(nanoseconds: 100_000_000)
  #expect(action.inner.batches.withLock { $0.count } == 1)
  clock.open.withLock { $0 = true }
  #expect(await acks.wait(for: 6))
  #expect(action.inner.batches.withLock { $0 } == [["0", "1", "2"], ["0", "1", "2"], ["3", "4", "5"]])
}

/// A peer that asked to wait (HTTP 429, `Retry-After`) gets nothing more of the topic until its
/// retry, from later batches either: the next batch's results went out during the wait, hundreds
/// a second, to a webhook that had asked for a pause. Other topics go on meanwhile.
@Test func aRetryAfterHoldsTheTopicAcrossBatches() async throws {
  let action = SlowFailingGroups(delayNanoseconds: 0) { call in
    guard call == 0 else { return nil }
    var error = ActionError(.transient, "answered HTTP 429", retryAfterMs: 50)
    error.answered = true
    return error
  }
  let clock = GatedSleeps()
  let dispatcher = try retryingDispatcher(
    action, RetryPolicy(attempts: 3, initialBackoffMs: 10, maxBackoffMs: 1_000), clock: clock,
    sql: "SELECT * FROM '+'")
  let acks = AckCollector()
  await dispatcher.deliver(batch: [acks.message(topic: "a", payload: "{}", origin: "a0")])
  for _ in 0..<2_000 where clock.started.withLock({ $0 }) == 0 {
    try await Task.sleep(nanoseconds: 5_000_000)
  }
  await dispatcher.deliver(
    batch: ["a1", "b0", "a2"].map { acks.message(topic: "\($0.first!)", payload: "{}", origin: $0) })
  #expect(await acks.wait(for: 1))
  // Time for the later batch to be sent, were topic a not held.
  try await Task.sleep(nanoseconds: 100_000_000)
  #expect(action.sent.withLock { $0 } == ["a0", "b0"])
  clock.open.withLock { $0 = true }
  #expect(await acks.wait(for: 4))
  #expect(action.sent.withLock { $0 } == ["a0", "b0", "a0", "a1", "a2"])
}

/// A dead-letter sink that refuses the records of some payloads.
private final class RefusingDeadLetter: DeadLetterSink {
  let refused: Mutex<Set<String>>
  let written = Mutex<[String]>([])
  init(refusing: Set<String>) { refused = Mutex(refusing) }
  func write(_ record: ErrorRecord) async throws {
    let payload = String(decoding: Data(base64Encoded: record.base64OriginalPayload) ?? Data(), as: UTF8.self)
    if refused.withLock({ $0.contains(payload) }) { throw ActionError(.transient, "no room") }
    written.withLock { $0.append(payload) }
  }
}
