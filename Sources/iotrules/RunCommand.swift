import Actions
import ArgumentParser
import CFileOps
import CJemallocConfig
import Connectors
import Daemon
import DevTools
import Foundation
import IoTSQL
import Logging
import Metrics
import Prometheus
import RulesEngine

/// `iotrules run`: runs the rules over a source until it ends or SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run the rules of a folder over a message source.",
    discussion: """
      Sources: file:PATH (JSON lines: {"topic", "payload" | "payload_base64", "clientId"?, "timestamp"?, \
      "mqtt_properties"?, "user_properties"?}, or error records) \
      or - for standard input; mqtt://host:port or mqtts://host:port (subscribes to the union of the \
      rules' FROM filters, updated on reload); kafka://host:port[,host:port]/topicA[,topicB]?group=G. \
      Rule files are reloaded when they change and on SIGHUP; SIGTERM and SIGINT stop intake, drain \
      what is in flight and close the actions. The MQTT password is read from --password-env or \
      --password-file and never logged.
      """)

  @Option(
    name: .long, help: "A folder of rule files (*.json, *.yaml, *.yml), or one rule file; may be repeated.")
  var rules: [String]

  @Option(
    name: .customLong("source"),
    help: "The message source: file:PATH, -, mqtt://host:port, mqtts://host:port or kafka://….")
  var sourceGiven: String

  /// Whether the source is an MQTT broker.
  var sourceIsMQTT: Bool { source.hasPrefix("mqtt://") || source.hasPrefix("mqtts://") }

  /// Whether the run connects to an MQTT broker: its source's, or `--mqtt`'s for republish.
  var hasMQTTConnection: Bool { sourceIsMQTT || mqttBroker != nil }

  /// The source, its scheme in lower case (`MQTT://host:1883` as `mqtt://host:1883`, as a broker
  /// URL's scheme is read anywhere: `--mqtt MQTT://...` was taken, `--source MQTT://...` refused).
  var source: String {
    guard let end = sourceGiven.range(of: "://") else { return sourceGiven }
    let scheme = sourceGiven[..<end.lowerBound].lowercased()
    guard ["mqtt", "mqtts", "kafka"].contains(scheme) else { return sourceGiven }
    return scheme + sourceGiven[end.lowerBound...]
  }

  @Option(
    name: .customLong("client-id"),
    help: "MQTT client id (stable: the broker keeps the session; default: iotrules).")
  var clientIDGiven: String?

  /// The MQTT client id.
  var clientID: String { clientIDGiven ?? Self.defaultClientID }

  /// The client id when none is given.
  static let defaultClientID = "iotrules"

  @Option(name: .long, help: "MQTT user name.")
  var username: String?

  @Option(name: .customLong("password-env"), help: "The environment variable holding the MQTT password.")
  var passwordEnv: String?

  @Option(name: .customLong("password-file"), help: "A file holding the MQTT password.")
  var passwordFile: String?

  @Option(name: .customLong("ca-file"), help: "PEM CA certificates for mqtts://.")
  var caFile: String?

  @Option(name: .customLong("cert-file"), help: "PEM client certificate (mutual TLS).")
  var certFile: String?

  @Option(name: .customLong("key-file"), help: "PEM client private key (mutual TLS).")
  var keyFile: String?

  @Option(name: .customLong("mqtt-version"), help: "5 (default) or 3.1.1.")
  var mqttVersionGiven: String?

  /// The MQTT protocol version's name.
  var mqttVersion: String { mqttVersionGiven ?? "5" }

  @Flag(name: .customLong("clean-session"), help: "Start a clean MQTT session instead of the persistent one.")
  var cleanSession = false

  @Option(name: .customLong("shared-group"), help: "Subscribe as $share/NAME/<filter> to split the load.")
  var sharedGroup: String?

  // Numbers take a value that begins with `-` (`--qos -1`), for the range's own error: ArgumentParser
  // read `-1` as an option and said the value was missing.
  @Option(
    name: .customLong("qos"), parsing: .unconditional, help: "MQTT subscription QoS, 0 or 1 (default: 1).")
  var qosGiven: Int?

  /// The MQTT subscription QoS.
  var qos: Int { qosGiven ?? 1 }

  @Flag(
    name: .customLong("basic-ingest"),
    help: "Also subscribe to $aws/rules/# (AWS Basic Ingest: $aws/rules/RULE/TOPIC reaches rule RULE).")
  var basicIngest = false

  @Option(name: .customLong("kafka-config"), help: "A librdkafka setting key=value; may be repeated.")
  var kafkaConfig: [String] = []

  @Option(
    name: .customLong("kafka-config-file"),
    help:
      "A file of librdkafka settings, key=value a line (# comments), read before --kafka-config: secrets such as sasl.password stay out of the command line."
  )
  var kafkaConfigFile: String?

  @Option(
    name: .customLong("kafka-topic-from"),
    help: "Where the rule topic comes from: key, header:NAME or topic (default: key).")
  var kafkaTopicFromGiven: String?

  /// Where a Kafka record's rule topic comes from.
  var kafkaTopicFrom: String { kafkaTopicFromGiven ?? "key" }

  @Option(name: .customLong("mqtt"), help: "The broker republish uses when the source is not MQTT.")
  var mqttBroker: String?

  @Option(name: .customLong("dead-letter"), help: "Where error records go when no error action takes them.")
  var deadLetter: String = DeadLetterFile.defaultPath

  @Option(
    name: .customLong("metrics-port"), parsing: .unconditional,
    help: "Serve /metrics, /healthz and /readyz on PORT (of --metrics-address, 127.0.0.1 by default).")
  var metricsPort: Int?

  @Option(
    name: .customLong("metrics-address"),
    help:
      "The IPv4 address --metrics-port listens on (0.0.0.0 for a Kubernetes probe or a scrape from another host; default: 127.0.0.1)."
  )
  var metricsAddressGiven: String?

  /// The address the metrics endpoint listens on.
  var metricsAddress: String { metricsAddressGiven ?? "127.0.0.1" }

  @Option(name: .customLong("log-format"), help: "text or json.")
  var logFormat: String = "text"

  @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  @Option(
    name: .customLong("max-in-flight"), parsing: .unconditional,
    help:
      "The most unacknowledged messages; also what one fsync round or transaction covers (4096 makes an fsynced archive faster, for about 1 KB of memory a message)."
  )
  var maxInFlight: Int = 1024

  @Option(
    name: .customLong("max-in-flight-bytes"),
    help: "The most payload bytes unacknowledged (K, M, G: binary units); a larger message is taken alone.")
  var maxInFlightBytes: String = "64M"

  @Flag(name: .long, help: "Keep reading the source at its end.")
  var follow = false

  @Option(
    name: .customLong("max-line-bytes"),
    help:
      "A replay's longest line (K, M, G: binary units; default: 24M); a longer one is reported and skipped. Raise it to replay the error record of a payload over 16 MiB."
  )
  var maxLineBytesGiven: String?

  /// A replay's longest line, as given.
  var maxLineBytes: String { maxLineBytesGiven ?? "24M" }

  @Option(
    name: .customLong("reload-interval-ms"), parsing: .unconditional,
    help: "How often rule files are polled for changes, in milliseconds (10 to 86400000).")
  var reloadIntervalMs: Int = 1000

  @Flag(
    name: .customLong("skip-tests"),
    help:
      "Load a rule at start, and reload a changed one, even when the tests beside it (<rule>.test.json) fail."
  )
  var skipTests = false

  @Option(
    name: .customLong("secrets-dir"),
    help:
      "A folder of secret files for get_secret(id) in action templates; else IOTRULES_SECRET_<ID> variables.")
  var secretsDir: String?

  /// The librdkafka settings given, each with where: `--kafka-config-file`'s lines (blank ones and
  /// `#` comments left out, a line's CR LF ending too), then `--kafka-config`'s, which come later
  /// and so win. A file that cannot be read is unreadable input (exit 74).
  func kafkaSettingTexts() throws -> [(place: String, text: String)] {
    var texts: [(place: String, text: String)] = []
    if let kafkaConfigFile {
      let data: [UInt8]
      switch RegularFile.read(kafkaConfigFile, limit: 1 << 20) {
      case .success(let bytes): data = bytes
      case .failure(let problem):
        Console.err("iotrules: error: --kafka-config-file \(kafkaConfigFile): \(problem.reason)")
        throw ExitCodes.io
      }
      for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        .enumerated()
      {
        var text = String(decoding: line, as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        let trimmed = text.drop { $0 == " " || $0 == "\t" }
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        texts.append(("--kafka-config-file \(kafkaConfigFile):\(index + 1)", String(trimmed)))
      }
    }
    return texts + kafkaConfig.map { ("--kafka-config", $0) }
  }

  /// The librdkafka settings of `kafkaSettingTexts()`, each checked where the Kafka source reads
  /// them (a usage error otherwise), and then together. Called by `validate()` and again by `run()`,
  /// whose settings are the ones checked (a file changed in between is checked again).
  func checkedKafkaSettings() throws -> [(key: String, value: String)] {
    var settings: [(key: String, value: String)] = []
    // A value is never said: it may be a secret (sasl.password), misspelt key and all.
    for (place, setting) in try kafkaSettingTexts() {
      do { settings.append(try KafkaSourceOptions.setting(setting)) } catch {
        throw ValidationError("\(place): \(error.description)")
      }
      // A property librdkafka does not know, or a value it refuses, or one iotrules sets itself:
      // said before anything starts; only for a Kafka source, the one that reads them.
      guard source.hasPrefix("kafka://") else { continue }
      let (key, value) = settings.last!
      if let problem = KafkaSourceOptions.managedSettingProblem(key, value: value) {
        throw ValidationError("\(place) '\(key)': \(problem)")
      }
      if let problem = KafkaSettings.problem(key: key, value: value) {
        throw ValidationError("\(place) '\(key)': \(problem)")
      }
    }
    // Taken together too, as the consumer will be made (they exited 74 after the rules loaded).
    if source.hasPrefix("kafka://"), !settings.isEmpty,
      let problem = KafkaSettings.clientProblem(
        consumer: true, settings: [("group.id", "iotrules"), ("enable.auto.commit", "false")] + settings)
    {
      throw ValidationError("--kafka-config: librdkafka refuses these settings together: \(problem)")
    }
    return settings
  }

  func validate() throws {
    if maxInFlight < 1 {
      throw ValidationError("--max-in-flight must be at least 1, not \(maxInFlight)")
    }
    var parsed = in_addr()
    if inet_pton(AF_INET, metricsAddress, &parsed) != 1 {
      throw ValidationError(
        "--metrics-address is an IPv4 address (127.0.0.1, 0.0.0.0), not '\(metricsAddress)'")
    }
    if let metricsPort, !(0...65_535).contains(metricsPort) {
      throw ValidationError("--metrics-port is a TCP port, 0 (any free one) to 65535, not \(metricsPort)")
    }
    if !(10...86_400_000).contains(reloadIntervalMs) {
      throw ValidationError(
        "--reload-interval-ms must be between 10 and 86400000 (a day), not \(reloadIntervalMs)")
    }
    if deadLetter.isEmpty { throw ValidationError("--dead-letter names a file; it is empty") }

    if Self.repeatsSource(CommandLine.arguments) {
      throw ValidationError(
        "--source is given more than once: one run reads one source (run a daemon for each: an MQTT source with its own --client-id, a Kafka one in its own group)"
      )
    }
    if let problem = DaemonConfiguration.sourceProblem(source) { throw ValidationError(problem) }
    // Before any option's own value is judged: the option itself has no use here.
    if let problem = inapplicableOptionProblem() { throw ValidationError(problem) }
    if let mqttBroker {
      do throws(ConnectorError) {
        _ = try MQTTOptions(url: mqttBroker)
      } catch {
        throw ValidationError("--mqtt: \(error.message)")
      }
    }
    if source.hasPrefix("file:")
      ? Self.sameFile(String(source.dropFirst(5)), deadLetter)
      : source == "-" && Self.isStandardInput(deadLetter)
    {
      // A redrive of the dead-letter file into itself: a record failing again is appended to the
      // file being read (with --follow, read again, without end).
      throw ValidationError(
        "--source \(source == "-" ? "- (standard input)" : source) is the dead-letter file (--dead-letter \(deadLetter)): records failing again would "
          + "be appended to the file being replayed; replay a copy, or give another --dead-letter")
    }
    if DaemonConfiguration.byteCount(maxInFlightBytes) == nil {
      throw ValidationError(
        "--max-in-flight-bytes takes a positive whole number of bytes, optionally with K, M or G, not '\(maxInFlightBytes)'"
      )
    }
    if DaemonConfiguration.byteCount(maxLineBytes) == nil {
      throw ValidationError(
        "--max-line-bytes takes a positive whole number of bytes, optionally with K, M or G, not '\(maxLineBytes)'"
      )
    }
    if !["text", "json"].contains(logFormat) { throw ValidationError("--log-format is text or json") }
    if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level '\(logLevel)'") }
    if MQTTOptions.ProtocolVersion(rawValue: mqttVersion) == nil {
      throw ValidationError("--mqtt-version is 5 or 3.1.1")
    }
    if qos != 0 && qos != 1 { throw ValidationError("--qos is 0 or 1") }
    // TLS files with a plain-TCP broker (with none, `inapplicableOptionProblem` said so): a mistyped
    // scheme would run in plain TCP, the operator believing TLS on.
    let tlsOptions = [("--ca-file", caFile), ("--cert-file", certFile), ("--key-file", keyFile)]
      .filter { $0.1 != nil }.map(\.0)
    // Schemes in any case, as the broker URL is read (`MQTT://`).
    if let option = tlsOptions.first, let broker = sourceIsMQTT ? source : mqttBroker,
      broker.lowercased().hasPrefix("mqtt://")
    {
      throw ValidationError(
        "\(option) is for TLS, but the broker URL '\(broker)' is plain TCP (mqtt://): write mqtts:// to use TLS"
      )
    }
    // An MQTT string is UTF-8: bytes that are not would go out with U+FFFD in their place (the
    // broker keeping the session under another id).
    for option in ["--client-id", "--username", "--shared-group"] {
      if let problem = utf8Problem(option) { throw ValidationError(problem + ": an MQTT string is UTF-8") }
    }
    if clientID.isEmpty && hasMQTTConnection {
      throw ValidationError(
        "--client-id is empty: the broker keeps the session under it, and republish connects as <id>-pub")
    }
    if hasMQTTConnection, let (character, offset) = TopicFilter.unwantedCharacter(in: clientID) {
      throw ValidationError(
        "--client-id holds the \(character) at byte \(offset), which an MQTT string must not hold (libmosquitto refuses it)"
      )
    }
    if let sharedGroup {
      // MQTT 5 (4.8.2): a share name is not empty and holds no '/', '+' or '#' (`team/x` made
      // `$share/team/x/<filter>`, another filter, without a word; `a+` was refused by the broker).
      if sharedGroup.isEmpty || sharedGroup.contains(where: { "/+#".contains($0) }) {
        throw ValidationError(
          "--shared-group '\(sharedGroup)': a share name is not empty and holds no '/', '+' or '#' (it is NAME in $share/NAME/<filter>)"
        )
      }
      if let (character, offset) = TopicFilter.unwantedCharacter(in: sharedGroup) {
        throw ValidationError(
          "--shared-group holds the \(character) at byte \(offset), which an MQTT string must not hold")
      }
    }
    if (certFile == nil) != (keyFile == nil) {
      throw ValidationError(
        "\(certFile == nil ? "--key-file" : "--cert-file") needs \(certFile == nil ? "--cert-file" : "--key-file") too: a client certificate is a certificate file and its key file"
      )
    }
    if passwordEnv != nil && passwordFile != nil {
      throw ValidationError("give --password-env or --password-file, not both")
    }
    // Said before anything loads, as the broker URL's problems are.
    if let passwordEnv, ProcessInfo.processInfo.environment[passwordEnv] == nil {
      throw ValidationError(
        "--password-env \(passwordEnv): the environment variable \(passwordEnv) is not set")
    }
    let settings = try checkedKafkaSettings()
    let topicFrom: KafkaSourceOptions.TopicFrom
    do { topicFrom = try KafkaSourceOptions.TopicFrom(kafkaTopicFrom) } catch {
      throw ValidationError(error.description)
    }
    // A Kafka URL's own problems (no group, a topic Kafka cannot have, a setting iotrules manages)
    // are usage errors too.
    if source.hasPrefix("kafka://") {
      do { _ = try KafkaSourceOptions(url: source, config: settings, topicFrom: topicFrom) } catch {
        throw ValidationError(error.description)
      }
    }
  }

  /// Why an option given does nothing in this run, or nil: one for another kind of source, or for
  /// an MQTT connection the run does not have (a `--follow` on a broker, a `--qos 0` on a replay,
  /// a `--metrics-address` without its port were taken without a word, while the TLS files were
  /// refused).
  func inapplicableOptionProblem() -> String? {
    let sourceIsKafka = source.hasPrefix("kafka://")
    let sourceIsFile = !sourceIsMQTT && !sourceIsKafka
    let sourceKind = sourceIsMQTT ? "an MQTT broker" : sourceIsKafka ? "Kafka" : "a file"
    let groups: [(options: [(String, Bool)], applies: Bool, forWhat: String)] = [
      (
        [
          ("--qos", qosGiven != nil), ("--clean-session", cleanSession),
          ("--shared-group", sharedGroup != nil),
          ("--basic-ingest", basicIngest),
        ], sourceIsMQTT, "an MQTT source (mqtt:// or mqtts://), and this run's source is \(sourceKind)"
      ),
      (
        [
          ("--client-id", clientIDGiven != nil), ("--username", username != nil),
          ("--password-env", passwordEnv != nil), ("--password-file", passwordFile != nil),
          ("--mqtt-version", mqttVersionGiven != nil),
        ], hasMQTTConnection,
        "an MQTT connection, and this run has none (the source is not MQTT and no --mqtt is given)"
      ),
      // (A mistyped scheme would run in plain TCP, the operator believing TLS on.)
      (
        [("--ca-file", caFile != nil), ("--cert-file", certFile != nil), ("--key-file", keyFile != nil)],
        hasMQTTConnection,
        "an mqtts:// broker, and this run has none (the source is not MQTT and no --mqtt is given)"
      ),
      (
        [
          ("--kafka-config", !kafkaConfig.isEmpty), ("--kafka-config-file", kafkaConfigFile != nil),
          ("--kafka-topic-from", kafkaTopicFromGiven != nil),
        ], sourceIsKafka, "a Kafka source (kafka://...), and this run's source is \(sourceKind)"
      ),
      (
        [("--follow", follow), ("--max-line-bytes", maxLineBytesGiven != nil)], sourceIsFile,
        "a file source (file:PATH or -), and this run's source is \(sourceKind)"
      ),
    ]
    for group in groups where !group.applies {
      if let (option, _) = group.options.first(where: \.1) { return "\(option) is for \(group.forWhat)" }
    }
    if sourceIsMQTT, mqttBroker != nil {
      return
        "--mqtt is the broker republish uses when the source is not MQTT: with an MQTT source, republish publishes on the source's broker"
    }
    if metricsAddressGiven != nil, metricsPort == nil {
      return
        "--metrics-address is where --metrics-port listens, and no --metrics-port is given: add --metrics-port PORT to serve /metrics, /healthz and /readyz"
    }
    return nil
  }

  /// Whether `arguments` (the process's, program name first) run `run` with `--source` given more
  /// than once (the last one was taken, the others without a word: one run reads one source).
  static func repeatsSource(_ arguments: [String]) -> Bool {
    let given = arguments.dropFirst()
    guard given.first == "run" else { return false }
    let options = given.prefix { $0 != "--" }
    return options.filter { $0 == "--source" || $0.hasPrefix("--source=") }.count > 1
  }

  /// Whether standard input is the file at `path` (`--source - < dead-letter.jsonl`).
  static func isStandardInput(_ path: String) -> Bool {
    var input = stat()
    return isOpen(path, as: STDIN_FILENO) && fstat(STDIN_FILENO, &input) == 0
      && input.st_mode & S_IFMT == S_IFREG
  }

  /// Whether `arguments` (the process's, program name first) run `run` with `--log-format json`.
  static func logsJSON(_ arguments: [String]) -> Bool {
    let given = arguments.dropFirst()
    guard given.first == "run" else { return false }
    return zip(given, given.dropFirst()).contains { $0 == "--log-format" && $1 == "json" }
      || given.contains("--log-format=json")
  }

  /// Whether the file at `path` is the one open as `descriptor` (a regular file, a pipe, a
  /// terminal): `/dev/stdout` and `/proc/self/fd/1` name standard output.
  static func isOpen(_ path: String, as descriptor: Int32) -> Bool {
    var open = stat()
    var named = stat()
    return fstat(descriptor, &open) == 0 && stat(path, &named) == 0 && open.st_dev == named.st_dev
      && open.st_ino == named.st_ino
  }

  /// Whether two paths name one file: the same device and inode when both exist, else the same
  /// absolute path.
  static func sameFile(_ first: String, _ second: String) -> Bool {
    var one = stat()
    var other = stat()
    if stat(first, &one) == 0, stat(second, &other) == 0 {
      return one.st_dev == other.st_dev && one.st_ino == other.st_ino
    }
    return URL(fileURLWithPath: first).standardizedFileURL.path
      == URL(fileURLWithPath: second).standardizedFileURL.path
  }

  func run() async throws {
    // A folder that cannot be read is unreadable input (74), as a rule path or a --ca-file is.
    if let secretsDir {
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: secretsDir, isDirectory: &isFolder) else {
        Console.err("iotrules: error: --secrets-dir \(secretsDir): no such file or folder")
        throw ExitCodes.io
      }
      guard isFolder.boolValue else {
        Console.err("iotrules: error: --secrets-dir \(secretsDir): is a file, not a folder")
        throw ExitCodes.io
      }
    }
    let level = Logger.Level(rawValue: logLevel) ?? .info
    let json = logFormat == "json"
    LoggingSystem.bootstrap { label in
      var handler: any LogHandler =
        json ? JSONLogHandler(label: label) : TextLogHandler(label: label)
      handler.logLevel = level
      return handler
    }
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    let logger = Logger(label: "iotrules")
    if sharedGroup != nil, clientID == Self.defaultClientID {
      // Two members under one id take the connection from each other at the broker, about once a
      // second, and the broker says nothing of why (mosquitto closes the older connection).
      logger.warning(
        "--shared-group with the client id '\(clientID)': give each member of the group its own --client-id, or two members take the broker's connection from each other, about once a second"
      )
    }
    if qos == 0 {
      // The session kept across a restart brings its subscriptions back, not what came meanwhile.
      logger.warning(
        "--qos 0: a broker may queue nothing for a QoS 0 subscription while the daemon is away (a restart, a reconnect: mosquitto queues them only with queue_qos0_messages), so what is published meanwhile is lost, QoS 1 messages too; --qos 1, the default, has the broker keep them"
      )
    }
    var configuration = DaemonConfiguration(rulePaths: rules, source: source)
    configuration.deadLetterPath = deadLetter
    configuration.metricsPort = metricsPort
    configuration.metricsAddress = metricsAddress
    configuration.follow = follow
    configuration.maxInFlight = maxInFlight
    if let bytes = DaemonConfiguration.byteCount(maxInFlightBytes) { configuration.maxInFlightBytes = bytes }
    if let bytes = DaemonConfiguration.byteCount(maxLineBytes) { configuration.maxLineBytes = bytes }
    configuration.reloadPollMs = reloadIntervalMs
    var connectors = ConnectorSettings()
    connectors.clientID = clientID
    connectors.username = username
    connectors.passwordEnvironmentVariable = passwordEnv
    connectors.passwordFile = passwordFile
    connectors.caFile = caFile
    connectors.certificateFile = certFile
    connectors.keyFile = keyFile
    connectors.protocolVersion = MQTTOptions.ProtocolVersion(rawValue: mqttVersion) ?? .v5
    connectors.cleanSession = cleanSession
    connectors.sharedGroup = sharedGroup
    connectors.basicIngest = basicIngest
    connectors.qos = qos
    connectors.kafkaConfig = try checkedKafkaSettings()
    connectors.kafkaTopicFrom = kafkaTopicFrom
    connectors.republishBroker = mqttBroker
    configuration.connectors = connectors
    if !skipTests { configuration.reloadGate = { rule in RuleTestGate.check(rule) } }
    configuration.secrets = SecretFolder(folder: secretsDir)
    configuration.afterRulesLoaded = { iotrules_release_free_memory() }
    /// The run's last word: with `--log-format json` a log record like every other line, so a
    /// shipper that reads JSON lines does not choke on the one that matters most.
    func fail(_ error: any Error, status: Int32) -> ExitCode {
      if json {
        logger.critical("\(error)", metadata: ["exitStatus": .stringConvertible(Int(status))])
      } else {
        // Escaped as the text log's records are: a path with a line break stays on its line.
        Console.err("iotrules: error: \(TextLogHandler.safeMessage("\(error)"))")
      }
      return ExitCode(status)
    }
    if source == "-" && iotrules_stdin_closed_at_start() != 0 {
      // Its descriptor number is the first one the process opens (the runtime's epoll one),
      // which was read as the stream: the run waited for ever.
      throw fail(StandardInputClosed(), status: 74)
    }
    let summary: DaemonSummary
    do {
      summary = try await Daemon.run(configuration, registry: registry, logger: logger)
    } catch let error as InvalidRulesError {
      // A file that cannot be read is an I/O problem, as `check` says it.
      throw fail(error, status: error.unreadable ? 74 : 65)
    } catch let error as NoRuleFilesError {
      throw fail(error, status: 66)
    } catch {
      throw fail(error, status: 74)
    }
    // Standard output that is the dead-letter stream (`--dead-letter /dev/stdout | consumer`)
    // carries records only: a summary line there would be a line its reader cannot parse; on
    // standard error it goes among the log's records, unless they are JSON (the `run ended`
    // record says it).
    if Self.isOpen(deadLetter, as: STDOUT_FILENO) {
      if !json { Console.err(summary.line) }
    } else {
      Console.out(summary.line)
    }
    // With JSON logs the summary is also the log's last record, at info or the level asked for
    // (with `--log-level warning` and the dead-letter stream on standard output, the counts went
    // nowhere).
    // Its `exitStatus` too, as a failed start's record says it (74: messages not acknowledged, or
    // the summary lost with standard output, which the last record then says: a shipper reading
    // `run ended` alone read 0).
    let status: Int32 = summary.dispatch.failed > 0 || Console.outputFailed ? 74 : 0
    if json {
      var metadata = summary.metadata
      metadata["exitStatus"] = .stringConvertible(Int(status))
      logger.log(level: max(.info, logger.logLevel), "run ended", metadata: metadata)
    }
    if status != 0 { throw ExitCode(status) }
  }
}

/// `--source -` with standard input closed when the process started.
struct StandardInputClosed: Error, CustomStringConvertible {
  var description: String { "reading standard input: Bad file descriptor (it is closed)" }
}
