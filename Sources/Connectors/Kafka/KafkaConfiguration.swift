import CRdKafka
import Foundation
import IoTSQL
import Logging
import Synchronization

/// Where a Kafka source reads: `kafka://host:port[,host:port]/topicA[,topicB]?group=G`, plus extra
/// librdkafka settings (`--kafka-config key=value`: SASL, SSL, `auto.offset.reset=latest`, ...).
public struct KafkaSourceOptions: Sendable {
  /// Which part of a record becomes the topic the rules match.
  public enum TopicFrom: Sendable, Equatable {
    /// The record key (the default, as MQTT-to-Kafka bridges write it); the Kafka topic name when a
    /// record has no key.
    case key
    /// A record header; the Kafka topic name when the header is absent.
    case header(String)
    /// The Kafka topic name.
    case topic

    /// Parses `key`, `header:NAME` or `topic`.
    public init(_ text: String) throws(ConnectorError) {
      if text == "key" {
        self = .key
      } else if text == "topic" {
        self = .topic
      } else if text.hasPrefix("header:"), text.count > 7 {
        self = .header(String(text.dropFirst(7)))
      } else {
        throw ConnectorError("--kafka-topic-from must be key, topic or header:NAME, not '\(text)'")
      }
    }
  }

  /// `host:port` pairs.
  public var bootstrapServers: [String]
  /// The topics to consume.
  public var topics: [String]
  /// The consumer group id.
  public var group: String
  /// Extra librdkafka settings, applied after the defaults (so they can override them).
  public var config: [(key: String, value: String)]
  /// Where the rules' topic comes from.
  public var topicFrom: TopicFrom
  /// The header whose value becomes `clientid()` when present (default `clientid`).
  public var clientIDHeader: String
  /// How often stored offsets are committed, in milliseconds (default 1000).
  public var commitIntervalMs: Int
  /// On shutdown, how long to wait for delivered messages to be acknowledged before the final commit
  /// (default 10 s); what is not acknowledged by then is redelivered after a restart.
  public var shutdownDrainSeconds: Double

  /// Creates options.
  public init(
    bootstrapServers: [String], topics: [String], group: String, config: [(key: String, value: String)] = [],
    topicFrom: TopicFrom = .key, clientIDHeader: String = "clientid", commitIntervalMs: Int = 1000,
    shutdownDrainSeconds: Double = 10
  ) {
    self.bootstrapServers = bootstrapServers
    self.topics = topics
    self.group = group
    self.config = config
    self.topicFrom = topicFrom
    self.clientIDHeader = clientIDHeader
    self.commitIntervalMs = commitIntervalMs
    self.shutdownDrainSeconds = shutdownDrainSeconds
  }

  /// Why `server` is no `host:port` a client can connect to (a port that is not a number from 1 to
  /// 65535: librdkafka takes `h:abc` as port 0 and retries it for ever), or nil.
  public static func serverProblem<Text: StringProtocol>(_ server: Text) -> String? {
    guard let colon = server.lastIndex(of: ":"), colon != server.startIndex else {
      return "'\(server)' is not host:port"
    }
    guard let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
      return "'\(server)' has no port from 1 to 65535"
    }
    return nil
  }

  /// Why librdkafka would refuse `pattern` (a topic list item starting with `^`), or nil. The
  /// client compiles it with the C library's POSIX extended regular expressions, only when it
  /// subscribes: a run with a broken pattern loaded its rules and then failed with "Invalid
  /// argument or configuration", naming neither the pattern nor what is wrong with it.
  static func patternProblem(_ pattern: String) -> String? {
    // Java's digit class (a Java client's pattern) is a letter to glibc, which knows `\w` and
    // `\s` but reads `\d` as `d`.
    for (written, posix) in [("\\d", "[0-9]"), ("\\D", "[^0-9]")] where pattern.contains(written) {
      return "'\(written)' is the letter \(written.dropFirst()) in a POSIX extended regular expression, as "
        + "librdkafka reads it: write \(posix)"
    }
    var compiled = regex_t()
    let status = regcomp(&compiled, pattern, REG_EXTENDED | REG_NOSUB)
    guard status != 0 else {
      regfree(&compiled)
      return nil
    }
    var text = [CChar](repeating: 0, count: 256)
    regerror(status, &compiled, &text, text.count)
    let reason = KafkaConfigBuilder.text(text)
    return "not a POSIX extended regular expression (\(reason))"
  }

  /// Parses `kafka://host:port[,host:port]/topicA[,topicB]?group=G`.
  public init(url: String, config: [(key: String, value: String)] = [], topicFrom: TopicFrom = .key)
    throws(ConnectorError)
  {
    guard url.hasPrefix("kafka://") else {
      throw ConnectorError("'\(url)' is not a Kafka URL; expected kafka://host:port/topic?group=G")
    }
    let rest = url.dropFirst("kafka://".count)
    // An '@' before the query (a password may hold '/' or '?'; topics never hold '@').
    let beforeGroup = rest.range(of: "?group=").map { rest[..<$0.lowerBound] } ?? rest
    if beforeGroup.contains("@") {
      // Said without the URL, which may hold a password (librdkafka would log it as a broker name).
      throw ConnectorError(
        "a Kafka URL takes no user or password (user@host): give SASL credentials with --kafka-config sasl.username=... and sasl.password=..."
      )
    }
    let (beforeQuery, query) = rest.split(separator: "?", maxSplits: 1).map(String.init).splitPair
    guard let slash = beforeQuery.firstIndex(of: "/") else {
      throw ConnectorError("no topic in '\(url)'; expected kafka://host:port/topic?group=G")
    }
    let hosts = beforeQuery[..<slash].split(separator: ",").map(String.init)
    let topics = beforeQuery[beforeQuery.index(after: slash)...].split(separator: ",").map(String.init)
    guard !hosts.isEmpty, hosts.allSatisfy({ $0.contains(":") }) else {
      throw ConnectorError("'\(url)' needs host:port bootstrap servers")
    }
    if let problem = hosts.lazy.compactMap(Self.serverProblem).first {
      throw ConnectorError("bootstrap server \(problem) in '\(url)'")
    }
    guard !topics.isEmpty else { throw ConnectorError("no topic in '\(url)'") }
    // A name librdkafka would subscribe to and the broker refuse, or auto-create as written.
    for topic in topics {
      if topic.hasPrefix("^") {
        if let problem = Self.patternProblem(topic) {
          throw ConnectorError("topic pattern '\(topic)' in '\(url)': \(problem)")
        }
      } else if let problem = KafkaTopicName.problem(topic) {
        throw ConnectorError(
          "topic '\(topic)' in '\(url)': \(problem) (a regular expression of topics starts with '^')")
      }
    }
    var group: String?
    for item in (query ?? "").split(separator: "&") {
      let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      if pair.count == 2 && pair[0] == "group" {
        if let group, group != pair[1] {
          throw ConnectorError("two consumer groups in '\(url)' ('\(group)' and '\(pair[1])'): give one")
        }
        group = pair[1]
      } else {
        throw ConnectorError("unknown parameter '\(item)' in '\(url)'; only group=G is read")
      }
    }
    if query?.contains("#") == true {
      throw ConnectorError("'#' in '\(url)': a group or topic name holds none")
    }
    guard let group, !group.isEmpty else {
      throw ConnectorError("no consumer group in '\(url)'; add ?group=NAME")
    }
    self.init(bootstrapServers: hosts, topics: topics, group: group, config: config, topicFrom: topicFrom)
  }

  /// Why the source refuses `--kafka-config` to set `key`, or nil: the offsets are iotrules' to
  /// commit (acknowledged ones only), and the group and servers come from the URL (given here too,
  /// they would replace the URL's silently while logs and /readyz name the URL's).
  public static func managedSettingProblem(_ key: String, value: String) -> String? {
    switch key {
    case "enable.auto.commit", "enable.auto.offset.store":
      // `false`, iotrules's own value, is often in a copied consumer configuration: no conflict.
      if value == "false" { return nil }
      return
        "the Kafka setting '\(key)' is managed by iotrules (acknowledged offsets only; only false is accepted)"
    case "group.id", "bootstrap.servers", "metadata.broker.list":
      // (`metadata.broker.list` is librdkafka's other name for `bootstrap.servers`.)
      return
        "the Kafka setting '\(key)' comes from the source URL (kafka://HOST:PORT/TOPIC?group=GROUP); drop it from --kafka-config"
    default:
      return nil
    }
  }

  /// Parses a `key=value` setting.
  public static func setting(_ text: String) throws(ConnectorError) -> (key: String, value: String) {
    guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
      // Not said: it may be a secret.
      throw ConnectorError("a setting is not key=value (its text is not shown: it may hold a secret)")
    }
    return (String(text[..<equals]), String(text[text.index(after: equals)...]))
  }
}

extension Array where Element == String {
  fileprivate var splitPair: (String, String?) { (self.first ?? "", count > 1 ? self[1] : nil) }
}

/// Checks librdkafka settings without making a client.
public enum KafkaSettings {
  /// Why librdkafka refuses `key` = `value` (an unknown property, an invalid value), or nil when it
  /// takes it.
  public static func problem(key: String, value: String) -> String? {
    // A file librdkafka reads when it makes the client: said with its path, each one (its own
    // refusal names neither, `...x509 certificate routines::system lib`, and stops at the first).
    if fileKeys.contains(key), !value.isEmpty, !(key == "ssl.ca.location" && value == "probe"),
      access(value, R_OK) != 0
    {
      let reason = String(cString: strerror(errno))
      // The path, unless the value is no path (a PEM key given where its file was meant: a secret).
      let isPath = value.utf8.count <= PATH_MAX && !value.contains("\n") && !value.contains("-----BEGIN")
      return isPath ? "cannot read '\(value)': \(reason)" : "cannot read the file it names: \(reason)"
    }
    let conf = rd_kafka_conf_new()!
    defer { rd_kafka_conf_destroy(conf) }
    var errorText = [CChar](repeating: 0, count: 512)
    guard rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK else {
      return nil
    }
    let message = KafkaConfigBuilder.text(errorText)
    // librdkafka names an alias by its own name (`linger.ms` as "queue.buffering.max.ms").
    if message.contains("property \""), !message.contains("\"\(key)\"") {
      return message + " (librdkafka's name for \(key))"
    }
    return message
  }

  /// The settings that name a file librdkafka reads when it makes a client.
  static let fileKeys: Set<String> = [
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.keystore.location",
    "ssl.crl.location", "sasl.kerberos.keytab",
  ]

  /// Why librdkafka refuses to make a client (a consumer, or a producer) of `settings` taken
  /// together, though it takes each alone (idempotence with `acks=1`, `message.timeout.ms` below
  /// `linger.ms`, a CA file that is not there), or nil. No broker is contacted: the client is made
  /// without servers, silent, and destroyed at once.
  /// With Kerberos (GSSAPI, librdkafka's default mechanism for a `SASL_*` protocol), making a
  /// client runs `sasl.kerberos.kinit.cmd`, a command the rule file names: the probe turns that
  /// refresh off (`sasl.kerberos.min.time.before.relogin` 0), so `check` runs nothing while the
  /// command's template is still judged.
  public static func clientProblem(consumer: Bool, settings: [(key: String, value: String)]) -> String? {
    if let problem = kinitProblem(settings) { return problem }
    // Rules share settings: each set is tried once (a client made per action of 10,000 rules).
    // Only sets it takes are kept: a refusal may name a file made since (`ssl.ca.location`).
    let key = ([consumer ? "c" : "p"] + settings.map { "\($0.key)=\($0.value)" }).joined(separator: "\u{0}")
    if triedSettings.withLock({ $0.contains(key) }) { return nil }
    let problem = makesNoClient(consumer: consumer, settings: settings)
    if problem == nil {
      triedSettings.withLock { tried in
        if tried.count >= 1_024 { tried.removeAll() }
        tried.insert(key)
      }
    }
    return problem
  }

  /// What librdkafka says of a Kerberos kinit command naming a property that is not set, judged
  /// here (the probe turns kinit off, and with it librdkafka's own judging): the usual cause is a
  /// SASL protocol without `sasl.mechanism`, whose default is GSSAPI.
  static func kinitProblem(_ settings: [(key: String, value: String)]) -> String? {
    func last(_ keys: String...) -> String? { settings.last { keys.contains($0.key) }?.value }
    let sasl = last("security.protocol")?.lowercased().hasPrefix("sasl") ?? false
    guard let mechanism = last("sasl.mechanisms", "sasl.mechanism") ?? (sasl ? "GSSAPI" : nil),
      mechanism.uppercased() == "GSSAPI", last("sasl.kerberos.min.time.before.relogin") != "0"
    else { return nil }
    let defaults = rd_kafka_conf_new()!
    defer { rd_kafka_conf_destroy(defaults) }
    func value(_ key: String) -> String? {
      if let given = last(key) { return given }
      var size = 0
      guard rd_kafka_conf_get(defaults, key, nil, &size) == RD_KAFKA_CONF_OK, size > 1 else { return nil }
      var text = [CChar](repeating: 0, count: size)
      guard rd_kafka_conf_get(defaults, key, &text, &size) == RD_KAFKA_CONF_OK else { return nil }
      return KafkaConfigBuilder.text(text)
    }
    guard let command = value("sasl.kerberos.kinit.cmd") else { return nil }
    var rest = Substring(command)
    while let open = rest.range(of: "%{") {
      guard let close = rest[open.upperBound...].firstIndex(of: "}") else { break }
      let name = String(rest[open.upperBound..<close])
      if (value(name) ?? "").isEmpty {
        let hint =
          last("sasl.mechanisms", "sasl.mechanism") == nil
          ? " (a SASL protocol without sasl.mechanism is Kerberos, GSSAPI: for SCRAM or PLAIN set sasl.mechanism)"
          : ""
        return "Invalid sasl.kerberos.kinit.cmd value: Property not available: \"\(name)\"\(hint)"
      }
      rest = rest[rest.index(after: close)...]
    }
    return nil
  }

  /// The settings `clientProblem` found a client could be made of, by kind.
  private static let triedSettings = Mutex<Set<String>>([])

  /// Makes the client of `clientProblem` and says why librdkafka would not.
  private static func makesNoClient(consumer: Bool, settings: [(key: String, value: String)]) -> String? {
    let conf = rd_kafka_conf_new()!
    var errorText = [CChar](repeating: 0, count: 512)
    func text() -> String {
      KafkaConfigBuilder.text(errorText)
    }
    for (key, value) in settings where key != "bootstrap.servers" && key != "metadata.broker.list" {
      guard rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
        rd_kafka_conf_destroy(conf)
        return text()
      }
    }
    // Not a word of its own: it has no servers to reach, and is gone at once; no kinit. A `debug`
    // setting logs whatever the level: its lines are dropped here (they went to standard error raw,
    // among the records of `--log-format json`).
    _ = rd_kafka_conf_set(conf, "log_level", "0", &errorText, errorText.count)
    rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
    _ = rd_kafka_conf_set(conf, "sasl.kerberos.min.time.before.relogin", "0", &errorText, errorText.count)
    guard
      let handle = rd_kafka_new(
        consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, &errorText, errorText.count)
    else {
      rd_kafka_conf_destroy(conf)
      return text()
    }
    rd_kafka_destroy(handle)
    return nil
  }
}

/// The secret values of the process's librdkafka settings, masked (`***`) in librdkafka's own
/// messages: its error for a bad `sasl.oauthbearer.config` quoted the value, from the token it could
/// not read on ("Unrecognized sasl.oauthbearer.config beginning at: ..."), into the log.
public enum KafkaSecretValues {
  /// The settings librdkafka itself keeps secret, whose values are masked whatever their source.
  static let sensitiveKeys: Set<String> = [
    "sasl.password", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret", "ssl.key.password",
    "ssl.keystore.password", "ssl.key.pem", "ssl_key", "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
  ]
  /// The values in the order noted, and longest first (as they are masked): a whole value, and for
  /// `sasl.oauthbearer.config` the rest of it from each of its tokens on (what librdkafka quotes);
  /// none shorter than 4 bytes (masking every `1` in a line would say where the secret is, and
  /// garble it). At most 1,000, the newest kept.
  static let values = Mutex<(noted: [String], longestFirst: [String])>(([], []))

  /// Notes the value of setting `key` as secret (a client property read through `get_secret`, a
  /// key librdkafka keeps secret).
  public static func note(_ value: String, of key: String) {
    var kept = [value]
    if key == "sasl.oauthbearer.config" {
      let scalars = Array(value.unicodeScalars)
      for index in scalars.indices.dropFirst()
      where !scalars[index].properties.isWhitespace && scalars[index - 1].properties.isWhitespace {
        var rest = String.UnicodeScalarView()
        rest.append(contentsOf: scalars[index...])
        kept.append(String(rest))
      }
    }
    kept = kept.filter { $0.utf8.count >= 4 }
    guard !kept.isEmpty else { return }
    values.withLock { values in
      for piece in kept where !values.noted.contains(piece) { values.noted.append(piece) }
      if values.noted.count > 1_000 { values.noted.removeFirst(values.noted.count - 1_000) }
      values.longestFirst = values.noted.sorted { $0.utf8.count > $1.utf8.count }
    }
  }

  /// `text` with every noted value masked, byte for byte.
  static func masked(_ text: String) -> String {
    values.withLock { $0.longestFirst }.reduce(text) { $0.replacingExactly($1, with: "***") }
  }
}

/// Builds librdkafka configurations; the pointers stay inside the Kafka wrapper files.
enum KafkaConfigBuilder {
  /// The logger of librdkafka's own messages (made on first use, after the daemon set up logging).
  static let librdkafkaLogger = Logger(label: "iotrules.kafka.librdkafka")

  /// A new `rd_kafka_conf_t` with `settings` applied in order; throws naming the bad key.
  static func make(_ settings: [(key: String, value: String)]) throws(ConnectorError) -> OpaquePointer {
    let conf = rd_kafka_conf_new()!
    // librdkafka's own log lines ("1/1 brokers are down", SASL failures) go through the daemon's
    // logger, in its format (JSON with --log-format json), not to stderr as `%3|...` lines.
    rd_kafka_conf_set_log_cb(conf) { client, level, facility, text in
      let name = client.map { String(cString: rd_kafka_name($0)) } ?? "librdkafka"
      let line = KafkaSecretValues.masked(
        "\(name) \(facility.map { String(cString: $0) } ?? ""): \(text.map { String(cString: $0) } ?? "")")
      // syslog levels: 0-3 error, 4 warning, 5-6 notice and info, 7 debug.
      switch level {
      case ...3: KafkaConfigBuilder.librdkafkaLogger.error("\(line)")
      case 4: KafkaConfigBuilder.librdkafkaLogger.warning("\(line)")
      case 5, 6: KafkaConfigBuilder.librdkafkaLogger.info("\(line)")
      default: KafkaConfigBuilder.librdkafkaLogger.debug("\(line)")
      }
    }
    var errorText = [CChar](repeating: 0, count: 512)
    for (key, value) in settings {
      if KafkaSecretValues.sensitiveKeys.contains(key) { KafkaSecretValues.note(value, of: key) }
      let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
      if result != RD_KAFKA_CONF_OK {
        rd_kafka_conf_destroy(conf)
        let message = KafkaConfigBuilder.text(errorText)
        throw ConnectorError("Kafka setting '\(key)': \(message)")
      }
    }
    return conf
  }

  /// Whether a broker of `handle`'s client answers now: a metadata request, waited for at most
  /// 500 ms (100 ms timed out even with the broker back).
  static func brokerAnswers(_ handle: OpaquePointer) -> Bool {
    var metadata: UnsafePointer<rd_kafka_metadata>? = nil
    let error = rd_kafka_metadata(handle, 0, nil, &metadata, 500)
    if let metadata { rd_kafka_metadata_destroy(metadata) }
    return error == RD_KAFKA_RESP_ERR_NO_ERROR
  }

  /// Creates a client of `type` from `conf` (which it consumes, also on failure).
  static func client(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws(ConnectorError) -> OpaquePointer {
    var errorText = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
      rd_kafka_conf_destroy(conf)
      let message = KafkaConfigBuilder.text(errorText)
      throw ConnectorError("cannot create the Kafka client: \(message)")
    }
    return handle
  }

  static func errorText(_ error: rd_kafka_resp_err_t) -> String {
    String(cString: rd_kafka_err2str(error))
  }

  /// The C string a library call wrote into `buffer` (up to its first NUL).
  static func text(_ buffer: [CChar]) -> String {
    // librdkafka's words, which may quote a setting's value: its secrets masked.
    KafkaSecretValues.masked(
      String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
  }

  /// `handle`'s fatal error as librdkafka says it, with its code's text (`reason` when librdkafka
  /// gives no words).
  static func fatalError(of handle: OpaquePointer, orElse reason: String = "") -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    let cause = rd_kafka_fatal_error(handle, &buffer, buffer.count)
    let said = text(buffer)
    return "\(said.isEmpty ? reason : said) (\(errorText(cause)))"
  }
}

/// Kafka's rule for topic names.
public enum KafkaTopicName {
  /// Why `name` cannot be a Kafka topic (1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`), or nil.
  /// The kafka action checks a topic rendered from message data (`${topic(2)}`) here before
  /// producing, so it fails at once with its own text, not after librdkafka's timeout.
  public static func problem(_ name: String) -> String? {
    if name.isEmpty { return "an empty topic" }
    if name == "." || name == ".." { return "not a valid Kafka topic name" }
    if name.utf8.count > 249 { return "longer than Kafka's 249 characters" }
    return characterProblem(name, naming: false)
  }

  /// Why `name` holds a character no Kafka topic takes (only `a-z A-Z 0-9 . _ -`), or nil; with
  /// `naming`, the first such character is named (not for a rendered topic, which may hold a
  /// secret).
  public static func characterProblem(_ name: String, naming: Bool = true) -> String? {
    guard
      let first = name.unicodeScalars.first(where: { scalar in
        !(scalar.isASCII
          && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == "." || scalar == "_" || scalar == "-"))
      })
    else { return nil }
    let rule = "a Kafka topic takes only letters, digits, '.', '_' and '-'"
    guard naming else { return rule }
    let shown =
      first.value < 0x20 || first.value == 0x7F ? String(format: "U+%04X", first.value) : "'\(first)'"
    return rule + " (not \(shown))"
  }
}
