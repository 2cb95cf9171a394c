import Connectors
import IoTSQL
import RulesEngine
import Synchronization

/// The `kafka` action: produces the rule's result to a Kafka topic and succeeds only after the
/// broker's delivery report. The results queued for it are produced together (one request carries
/// many records) and each succeeds or fails on its own report. Actions with the same servers and
/// `clientProperties` share one producer (`KafkaProducers`).
///
/// Rule file: `{"kafka": {"bootstrapServers": "broker:9092", "topic": "alerts", "key": "${topic(2)}",
/// "partition": "0", "headers": [{"key": "source", "value": "${clientid()}"}],
/// "clientProperties": {"compression.type": "lz4"}}}`. As in AWS's Kafka action, the servers may be
/// given as `clientProperties`' `bootstrap.servers` instead, and `destinationArn` is taken and ignored.
public final class KafkaAction: PipelinedBatchAction {
  /// The action's settings as written in a rule file.
  public struct Configuration: Decodable, Sendable, Equatable {
    /// `host:port[,host:port]` (required, here or as `clientProperties["bootstrap.servers"]`).
    public var bootstrapServers: String
    /// Topic template (required).
    public var topic: String
    /// Key template; no key by default (librdkafka's partitioner then spreads records).
    public var key: String?
    /// Partition template rendering to a whole number; by default the partitioner chooses (by key).
    public var partition: String?
    /// Record headers, in order; keys and values are templates (as in AWS).
    public var headers: [RepublishAction.KeyValue]
    /// Extra librdkafka producer settings (SASL, SSL, compression...).
    public var clientProperties: [String: String]
    /// The loop guard: each record carries the header `iotrules-hops`, one more than the incoming
    /// message's (a Kafka source gives its records' headers); past `maxHops` the result fails
    /// permanently (`0`: no header and no guard, as AWS produces). A rule whose kafka action wrote
    /// to the topic its source reads went round without end, and two such actions doubled every turn.
    public var maxHops: Int
    /// What was wrong with the servers as decoded (missing, or given twice with different values),
    /// said by `check(into:)` with the action's other problems rather than thrown alone.
    var serversProblem: String?

    /// Creates a configuration.
    public init(
      bootstrapServers: String, topic: String, key: String? = nil, partition: String? = nil,
      headers: [RepublishAction.KeyValue] = [], clientProperties: [String: String] = [:],
      maxHops: Int = RepublishAction.Configuration.defaultMaxHops
    ) {
      self.bootstrapServers = bootstrapServers
      self.topic = topic
      self.key = key
      self.partition = partition
      self.headers = headers
      self.clientProperties = clientProperties
      self.maxHops = maxHops
    }

    private enum CodingKeys: String, CodingKey {
      case bootstrapServers, topic, key, partition, headers, clientProperties, maxHops
    }

    /// Decodes; `partition` may be written as a number or a template string.
    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      var properties = try container.decodeIfPresent([String: String].self, forKey: .clientProperties) ?? [:]
      // AWS's Kafka action names the servers in `clientProperties` (`bootstrap.servers`); taken from
      // there, they are set once, as `bootstrapServers`.
      let fromProperties = properties.removeValue(forKey: "bootstrap.servers")
      let given = try container.decodeIfPresent(String.self, forKey: .bootstrapServers)
      // Noted, not thrown: `check` says it beside the action's other problems.
      if let given, let fromProperties, given != fromProperties {
        serversProblem = "differs from clientProperties' bootstrap.servers ('\(fromProperties)'): give one"
      } else if given == nil, fromProperties == nil {
        serversProblem = "missing"
      }
      bootstrapServers = given ?? fromProperties ?? ""
      topic = try container.decode(String.self, forKey: .topic)
      key = try container.decodeIfPresent(String.self, forKey: .key)
      if let number = try? container.decodeIfPresent(Int.self, forKey: .partition) {
        partition = String(number)
      } else {
        partition = try container.decodeIfPresent(String.self, forKey: .partition)
      }
      headers = try container.decodeIfPresent([RepublishAction.KeyValue].self, forKey: .headers) ?? []
      clientProperties = properties
      maxHops =
        try container.decodeIfPresent(Int.self, forKey: .maxHops)
        ?? RepublishAction.Configuration.defaultMaxHops
    }

    /// Checks the servers, the topic and a constant partition. Throws the first problem, carrying
    /// the others.
    public func validate() throws(ActionSettingsError) {
      var problems = SettingsProblems()
      check(into: &problems)
      try problems.throwIfAny()
    }

    /// Notes every problem `validate` reports.
    func check(into problems: inout SettingsProblems) {
      let servers = bootstrapServers.split(separator: ",")
      if let serversProblem {
        problems.add(field: "kafka.bootstrapServers", serversProblem)
      } else if servers.isEmpty || !servers.allSatisfy({ $0.contains(":") }) {
        problems.add(
          field: "kafka.bootstrapServers",
          "must be host:port[,host:port], not '\(bootstrapServers)'")
      } else if let problem = servers.lazy.compactMap(KafkaSourceOptions.serverProblem).first {
        problems.add(field: "kafka.bootstrapServers", problem)
      } else if let problem = servers.lazy.compactMap({
        ActionSettingsError.placeholderHostProblem(String($0.split(separator: ":")[0]))
      }).first {
        problems.add(field: "kafka.bootstrapServers", problem)
      }
      if topic.isEmpty {
        problems.add(field: "kafka.topic", "must not be empty")
      } else if !topic.contains("${"), let problem = KafkaTopicName.problem(topic) {
        problems.add(field: "kafka.topic", "'\(topic)': \(problem)")
      } else if let probe = TemplateProbe.probe(topic), let problem = KafkaTopicName.characterProblem(probe) {
        // Its own text is in every topic it renders (`iot/${topic(2)}`): every record would fail.
        problems.add(
          field: "kafka.topic", "'\(topic)': every topic it renders holds its text, and \(problem)")
      }
      // AWS's limit (`KafkaAction.headers`: 1 to 100 items): a rule taken there would be refused.
      if headers.count > 100 { problems.add(field: "kafka.headers", "at most 100 headers, as in AWS") }
      for (index, header) in headers.enumerated() {
        if let probe = TemplateProbe.probe(header.key), let problem = KafkaAction.headerKeyProblem(probe) {
          problems.add(field: "kafka.headers[\(index)].key", problem)
        } else if maxHops > 0, header.key == RepublishAction.hopProperty {
          // Sent beside the loop guard's own, it went twice (which one counts is the reader's guess).
          problems.add(
            field: "kafka.headers[\(index)].key",
            "'\(RepublishAction.hopProperty)' is the loop guard's own header (maxHops); set \"maxHops\": 0 to send it yourself"
          )
        }
      }
      if maxHops < 0 {
        problems.add(
          field: "kafka.maxHops",
          "must be 0 (no loop guard and no header, as AWS produces) or more, not \(maxHops)")
      }
      if let partition, !partition.contains("${"), KafkaAction.partitionNumber(partition) == nil {
        problems.add(field: "kafka.partition", "must be a whole number >= 0, not '\(partition)'")
      }
      for (key, problem) in KafkaAction.settingProblems(clientProperties) {
        problems.add(
          field: key.isEmpty ? "kafka.clientProperties" : "kafka.clientProperties[\"\(key)\"]", problem)
      }
    }
  }

  /// AWS's Kafka action takes the Java client's property names; librdkafka, which produces here,
  /// has its own. Translated: `sasl.scram.username` and `sasl.plain.username` (and the passwords)
  /// to `sasl.username` and `sasl.password`; AWS's serializers, which only say that the key is text
  /// and the value bytes, dropped (records carry the rendered key and the result's bytes as they
  /// are). What has no librdkafka meaning is a problem that says what to give instead (a Java
  /// KeyStore, Kerberos' realm and KDC). A value with a substitution template (`${get_secret(...)}`,
  /// as AWS's examples write passwords) is rendered when the action starts.
  /// Each setting keeps the name it was `written` with, which messages about it say.
  static func producerSettings(_ properties: [String: String]) -> (
    settings: [(key: String, value: String, written: String)], problems: [(key: String, message: String)]
  ) {
    var settings: [(key: String, value: String, written: String)] = []
    var problems: [(key: String, message: String)] = []
    for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
      switch key {
      case "sasl.scram.username", "sasl.plain.username": settings.append(("sasl.username", value, key))
      case "sasl.scram.password", "sasl.plain.password": settings.append(("sasl.password", value, key))
      case "key.serializer", "value.serializer":
        let expected = key == "key.serializer" ? "StringSerializer" : "ByteBufferSerializer"
        if value != expected && value != "org.apache.kafka.common.serialization.\(expected)" {
          problems.append(
            (key, "only \(expected) (AWS's one value): records carry the rendered key and the result's bytes")
          )
        }
      case "ssl.keystore.password" where properties["ssl.keystore.location"] != nil:
        // librdkafka's own PKCS#12 keystore (`ssl.keystore.location`) takes its password so.
        settings.append((key, value, key))
      case "ssl.truststore", "ssl.truststore.password", "ssl.keystore", "ssl.keystore.password":
        problems.append(
          (
            key,
            "a Java KeyStore, which librdkafka cannot read: give PEM files, ssl.ca.location (and ssl.certificate.location, ssl.key.location for a client certificate)"
          ))
      case "sasl.kerberos.krb5.realm", "sasl.kerberos.krb5.kdc":
        problems.append(
          (key, "librdkafka reads the realm and KDC from the system's krb5.conf: set them there"))
      default:
        settings.append((key, value, key))
      }
    }
    return (settings, problems)
  }

  /// The problems of `producerSettings`, and those of the translated settings librdkafka refuses
  /// (for a templated value, whose rendering is not known yet, only an unknown property).
  static func settingProblems(_ properties: [String: String]) -> [(key: String, message: String)] {
    var (settings, problems) = producerSettings(properties)
    for (key, value, written) in settings {
      // librdkafka takes it, and then refuses every record of a producer that never begins a
      // transaction ("Erroneous state"), each retried as transient.
      if key == "transactional.id" {
        problems.append(
          (
            written,
            "the kafka action does not use transactions (each record is acknowledged on its own): drop it"
          ))
        continue
      }
      // librdkafka's "never": the stop waits for every record's delivery report, so a record to a
      // broker that is down held SIGTERM (and a replay's end) for good.
      if key == "message.timeout.ms" || key == "delivery.timeout.ms",
        Int(value.split(whereSeparator: \.isWhitespace).joined()) == 0
      {
        problems.append(
          (
            written,
            "0 is librdkafka's 'never': a record no broker acknowledges would hold the daemon's stop and a replay's end for good; give a time in milliseconds (iotrules's default is 30000)"
          ))
        continue
      }
      // librdkafka's other name for `bootstrap.servers`: it replaced the action's servers while
      // logs and /readyz named `bootstrapServers`.
      if key == "metadata.broker.list" {
        problems.append(
          (written, "is librdkafka's other name for bootstrap.servers: give the servers as bootstrapServers"))
        continue
      }
      // Rendered once, when the action starts, with no message: only secrets can fill them
      // (`"linger.ms": "${topic(2)}"` rendered empty, and the rule did not load).
      if value.contains("${"), value.range(of: "get_secret", options: .caseInsensitive) == nil {
        problems.append(
          (
            written,
            "is rendered once, when the action starts, with no message: only ${get_secret(...)} belongs in a client property"
          ))
        continue
      }
      let probe = value.contains("${") ? "x" : value
      if let problem = KafkaSettings.problem(key: key, value: probe),
        !value.contains("${") || problem.contains("No such configuration property")
      {
        problems.append((written, problem))
      }
    }
    // Taken one by one, then together, as the producer will be made (secrets are not known yet:
    // not with them).
    if problems.isEmpty, !settings.contains(where: { $0.value.contains("${") }),
      let problem = KafkaProducer.configurationProblem(settings.map { ($0.key, $0.value) })
    {
      problems.append(("", "librdkafka refuses these settings together: \(problem)"))
    }
    return problems
  }

  /// The configuration.
  public let configuration: Configuration
  private let secrets: (any SecretStore)?
  private let topic: ActionTemplate
  /// The topic depends on the message: each new one is looked up as a batch first meets it.
  private let topicIsTemplate: Bool
  private let key: ActionTemplate?
  private let partition: ActionTemplate?
  private let headers: [(written: String, key: ActionTemplate, value: ActionTemplate)]
  /// The librdkafka settings of `clientProperties`, each value's template when it has one.
  private let settings: [(key: String, value: String, written: String, template: ActionTemplate?)]
  private let producer = Mutex<KafkaProducer?>(nil)

  /// `kafka`.
  public var kind: String { "kafka" }
  /// `KafkaAction`.
  public var actionName: String { "KafkaAction" }
  /// `servers/topic-template`.
  public var resource: String { "\(configuration.bootstrapServers)/\(configuration.topic)" }

  /// Validates and compiles the configuration.
  public init(
    configuration: Configuration, version: SQLVersion = .default, variables: [String] = [],
    secrets: (any SecretStore)? = nil
  ) throws(ActionSettingsError) {
    var problems = SettingsProblems()
    configuration.check(into: &problems)
    func compile(_ text: String?, _ field: String) -> ActionTemplate? {
      guard let text else { return nil }
      return problems.attempt { () throws(ActionSettingsError) in
        try ActionTemplate(text, field: "kafka.\(field)", version: version, variables: variables)
      }
    }
    let topic = compile(configuration.topic, "topic")
    key = compile(configuration.key, "key")
    partition = compile(configuration.partition, "partition")
    var headers: [(written: String, key: ActionTemplate, value: ActionTemplate)] = []
    for (index, header) in configuration.headers.enumerated() {
      if let key = compile(header.key, "headers[\(index)].key"),
        let value = compile(header.value, "headers[\(index)].value")
      {
        headers.append((header.key, key, value))
      }
    }
    var settings: [(key: String, value: String, written: String, template: ActionTemplate?)] = []
    for (key, value, written) in Self.producerSettings(configuration.clientProperties).settings {
      settings.append(
        (key, value, written, value.contains("${") ? compile(value, "clientProperties[\"\(written)\"]") : nil)
      )
    }
    try problems.throwIfAny()
    self.settings = settings
    self.configuration = configuration
    self.secrets = secrets
    topicIsTemplate = configuration.topic.contains("${")
    self.topic = topic!
    self.headers = headers
  }

  /// Takes the shared producer for the servers and settings (their templates rendered now: a
  /// secret that does not exist stops the start, naming the property).
  public func start() async throws {
    let now = Message(topic: "", payload: [], receivedAtMs: 0)
    let input = ActionInput(ruleName: "", evaluation: Evaluation(value: .undefined), message: now)
    var config: [(key: String, value: String)] = []
    var machine = VirtualMachine()
    for (key, value, written, template) in settings {
      let rendered =
        try template?.renderRequiringSecrets(
          input, secrets: secrets, field: "kafka clientProperties '\(written)'", using: &machine) ?? value
      // A value read from a secret stays out of librdkafka's messages in the log.
      if template != nil { KafkaSecretValues.note(rendered, of: key) }
      config.append((key, rendered))
    }
    let client = try KafkaProducers.acquire(bootstrapServers: configuration.bootstrapServers, config: config)
    producer.withLock { $0 = client }
    if !topicIsTemplate { client.lookUp(topics: [configuration.topic]) }
  }

  /// Produces the result and returns after the delivery report.
  public func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }

  /// Produces every result at once and returns after their delivery reports: one result each
  /// (nil for delivered). A result whose topic, partition or headers do not render fails alone.
  public func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] {
    await submitBatch(inputs)()
  }

  /// Hands every result to the producer now, in order, and returns the wait for their delivery
  /// reports (the dispatcher submits the next batch meanwhile; librdkafka keeps each partition's
  /// order, and idempotence keeps it through its retries).
  public func submitBatch(_ inputs: [ActionInput]) -> @Sendable () async -> [ActionError?] {
    // A producer with a fatal error fails every record: these go to a new one.
    let current = producer.withLock { state -> KafkaProducer? in
      if let client = state, client.fatalReason != nil { state = KafkaProducers.replace(client) }
      return state
    }
    guard let client = current else {
      let results = inputs.map { _ in
        ActionError(.transient, "the kafka action for \(resource) is not started")
      }
      return { results }
    }
    var failed = [ActionError?](repeating: nil, count: inputs.count)
    var records: [KafkaProducer.Record] = []
    var produced: [Int] = []
    for (index, input) in inputs.enumerated() {
      do {
        records.append(try record(for: input))
        produced.append(index)
      } catch {
        failed[index] = error
      }
    }
    if topicIsTemplate { client.lookUp(topics: records.map(\.topic)) }
    let batch = client.enqueue(records)
    let servers = configuration.bootstrapServers
    // Each record's topic as error records show it (rendered, secrets masked): a failed delivery
    // names the topic it was for, not the template.
    let shownTopics = records.map(\.shownTopic)
    return { [failed, produced, shownTopics, topicIsTemplate] in
      var results = failed
      for ((index, result), shownTopic) in zip(zip(produced, await batch.results()), shownTopics) {
        guard var error = result else { continue }
        if topicIsTemplate, error.resource == nil { error.resource = "\(servers)/\(shownTopic)" }
        results[index] = error
      }
      return results
    }
  }

  /// The record of one result (its topic, partition, key and headers rendered, and its topic as
  /// error records show it).
  func record(for input: ActionInput) throws(ActionError) -> KafkaProducer.Record {
    // A secret that is missing fails the record: left empty, it would send the record to another
    // topic, partition or key without a word.
    // What error records quote is the rendered text with any secret in it masked.
    // The record's templates share one budget of CPU time.
    var machine = VirtualMachine()
    _ = machine.shareBudget()
    let (renderedTopic, shownTopic) = try topic.renderShowing(
      input, secrets: secrets, field: "kafka topic", using: &machine)
    if let problem = KafkaTopicName.problem(renderedTopic) {
      throw ActionError(
        .permanent,
        "kafka topic template '\(configuration.topic)' rendered '\(clipped(shownTopic))': \(problem)")
    }
    var partitionNumber: Int32?
    if let partition {
      let (text, shown) = try partition.renderShowing(
        input, secrets: secrets, field: "kafka partition", using: &machine)
      // Rendered empty (the message has no such field): the partitioner chooses, as for no key.
      if text.isEmpty {
        partitionNumber = nil
      } else {
        guard let number = Self.partitionNumber(text) else {
          throw ActionError(
            .permanent,
            "kafka partition template '\(configuration.partition ?? "")' rendered '\(clipped(shown))', not a partition number"
          )
        }
        partitionNumber = number
      }
    }
    var renderedHeaders: [(key: String, value: String)] = []
    var outgoingHops: Int?
    if configuration.maxHops > 0 {
      let incomingHops = RepublishAction.claimedHops(of: input.message) ?? 0
      if incomingHops >= configuration.maxHops {
        throw ActionError(
          .permanent,
          "kafka record to '\(clipped(shownTopic))' refused: the message has already been produced by a rule \(incomingHops) times (maxHops \(configuration.maxHops)); does a rule's kafka action write to a topic its source reads?"
        )
      }
      outgoingHops = incomingHops + 1
    }
    for header in headers {
      let key = try header.key.renderRequiringSecrets(
        input, secrets: secrets, field: "kafka header key '\(header.written)'", using: &machine)
      if let problem = Self.headerKeyProblem(key) {
        throw ActionError(.permanent, "kafka header key '\(header.written)' \(problem)")
      }
      renderedHeaders.append(
        (
          key,
          try header.value.renderRequiringSecrets(
            input, secrets: secrets, field: "kafka header '\(header.written)'", using: &machine)
        ))
    }
    if let outgoingHops { renderedHeaders.append((RepublishAction.hopProperty, String(outgoingHops))) }
    var renderedKey: [UInt8]?
    if let key {
      // A key that renders empty (a field the message lacks) is no key: an empty one would put every
      // such record under one key of a compacted topic, and on one partition.
      let text = try key.renderRequiringSecrets(
        input, secrets: secrets, field: "kafka key", using: &machine)
      if !text.isEmpty { renderedKey = Array(text.utf8) }
    }
    return KafkaProducer.Record(
      topic: renderedTopic, key: renderedKey, value: input.evaluation.payload, partition: partitionNumber,
      headers: renderedHeaders, shownTopic: shownTopic)
  }

  /// Why a rendered header key cannot be sent, or nil: librdkafka takes and gives header names as
  /// C strings, so one with a NUL went cut short (`ab\0cd` as `ab`, two keys made one).
  public static func headerKeyProblem(_ key: String) -> String? {
    key.utf8.contains(0) ? "renders a NUL character, which a Kafka header name cannot hold" : nil
  }

  /// The partition `text` names (a whole number from 0), or nil.
  public static func partitionNumber(_ text: String) -> Int32? {
    Int32(text).flatMap { $0 >= 0 ? $0 : nil }
  }

  /// Flushes outstanding records and closes the producer.
  public func shutdown() async {
    let client = producer.withLock { state -> KafkaProducer? in
      defer { state = nil }
      return state
    }
    if let client { KafkaProducers.release(client) }
  }
}
