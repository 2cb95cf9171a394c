import Actions
import Connectors
import Dispatch
import Foundation
import IoTSQL
import Logging
import Prometheus
import RulesEngine
import ServiceLifecycle
import Synchronization

/// The daemon's configuration (`iotrules run` options).
public struct DaemonConfiguration: Sendable {
  /// Rule folders or files.
  public var rulePaths: [String]
  /// The source: `file:PATH`, `-`, `mqtt://host:port`, `mqtts://host:port` or
  /// `kafka://host:port[,host:port]/topicA[,topicB]?group=G`.
  public var source: String
  /// How the MQTT and Kafka connectors connect (flags of `iotrules run`).
  public var connectors = ConnectorSettings()
  /// The dead-letter file.
  public var deadLetterPath: String = DeadLetterFile.defaultPath
  /// The metrics port (nil: no server).
  public var metricsPort: Int?
  /// The IPv4 address the metrics port listens on.
  public var metricsAddress = "127.0.0.1"
  /// Keep reading the source at its end.
  public var follow = false
  /// A replay's longest line: a longer one is reported and skipped.
  public var maxLineBytes = ReplaySource.defaultMaxLineBytes
  /// The most messages in flight.
  public var maxInFlight = 1024
  /// The most payload bytes in flight (a message larger than this is taken alone).
  public var maxInFlightBytes = Dispatcher.defaultMaxInFlightBytes
  /// How often rule files are polled for changes, in milliseconds.
  public var reloadPollMs = 1000
  /// Vets each rule changed on reload: a reason it returns keeps the running version (logged).
  public var reloadGate: ReloadGate?
  /// Where `get_secret()` in action templates reads secrets (HTTP headers, Kafka headers).
  public var secrets: (any SecretStore)?
  /// Called once the rules are loaded, and after each reload that changed them: `iotrules run` hands
  /// the memory that loading freed back to the system there (loading 10,000 rules leaves ~2 MB of
  /// freed pages that the allocator would otherwise keep for ten seconds).
  public var afterRulesLoaded: (@Sendable () -> Void)?
  /// The daemon's health board (`/healthz`, `/readyz`); a test or an embedding program may read it.
  public var health = Health()

  /// Creates a configuration.
  public init(rulePaths: [String], source: String) {
    self.rulePaths = rulePaths
    self.source = source
  }

  /// A count of bytes as a flag spells it: a whole number, optionally followed by a binary unit
  /// `K`, `M` or `G` (`KiB`, `MB`... alike, any case; 1 K = 1,024 bytes). Nil for anything else,
  /// zero, or a count beyond `Int`.
  public static func byteCount(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let number = Int(digits), number > 0 else { return nil }
    let shift: Int
    switch trimmed.dropFirst(digits.count).lowercased() {
    case "", "b": shift = 0
    case "k", "kb", "kib": shift = 10
    case "m", "mb", "mib": shift = 20
    case "g", "gb", "gib": shift = 30
    default: return nil
    }
    let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
    return overflow ? nil : value
  }
}

/// The connector flags of `iotrules run`: MQTT login and TLS, subscriptions, Kafka settings, and the
/// broker the `republish` action uses when the source is not MQTT.
public struct ConnectorSettings: Sendable {
  /// The MQTT client id; stable, so the broker keeps the persistent session across restarts.
  public var clientID = "iotrules"
  /// The MQTT user name (also taken from `mqtt://user@host`).
  public var username: String?
  /// The environment variable holding the MQTT password.
  public var passwordEnvironmentVariable: String?
  /// The file holding the MQTT password.
  public var passwordFile: String?
  /// PEM CA certificates for `mqtts://`.
  public var caFile: String?
  /// PEM client certificate for mutual TLS.
  public var certificateFile: String?
  /// PEM client key for mutual TLS.
  public var keyFile: String?
  /// MQTT 5 (default) or 3.1.1.
  public var protocolVersion: MQTTOptions.ProtocolVersion = .v5
  /// Start a clean session instead of the persistent one.
  public var cleanSession = false
  /// Subscribe as `$share/NAME/<filter>`.
  public var sharedGroup: String?
  /// Also subscribe to `$aws/rules/#`, AWS's Basic Ingest topics (off by default: a broker that
  /// refuses the subscription would stop the source).
  public var basicIngest = false
  /// The subscription QoS (0 or 1; default 1).
  public var qos = 1
  /// Extra librdkafka settings for the Kafka source.
  public var kafkaConfig: [(key: String, value: String)] = []
  /// Where the rules' topic comes from in a Kafka record: `key`, `header:NAME` or `topic`.
  public var kafkaTopicFrom = "key"
  /// The broker `republish` publishes on when the source is not MQTT (`--mqtt URL`).
  public var republishBroker: String?

  /// Creates the defaults.
  public init() {}

  /// MQTT options for `url` with these flags applied.
  public func mqttOptions(url: String, clientID: String) throws(ConnectorError) -> MQTTOptions {
    var options = try MQTTOptions(url: url, clientID: clientID)
    if let username { options.username = username }
    options.passwordEnvironmentVariable = passwordEnvironmentVariable
    options.passwordFile = passwordFile
    options.caFile = caFile
    options.certificateFile = certificateFile
    options.keyFile = keyFile
    options.protocolVersion = protocolVersion
    options.persistentSession = !cleanSession
    return options
  }
}

/// Where messages come from, parsed from `--source`.
enum SourceSpec {
  case replay(ReplaySource.Input)
  case mqtt(MQTTOptions)
  case kafka(KafkaSourceOptions)

  init(_ configuration: DaemonConfiguration) throws {
    let text = configuration.source
    let settings = configuration.connectors
    if text.hasPrefix("mqtt://") || text.hasPrefix("mqtts://") {
      self = .mqtt(try settings.mqttOptions(url: text, clientID: settings.clientID))
    } else if text.hasPrefix("kafka://") {
      self = .kafka(
        try KafkaSourceOptions(
          url: text, config: settings.kafkaConfig,
          topicFrom: try KafkaSourceOptions.TopicFrom(settings.kafkaTopicFrom)))
    } else if let input = ReplaySource.input(parsing: text) {
      self = .replay(input)
    } else {
      throw RuleStoreError(message: Self.unknown(text))
    }
  }

  /// Why `text` names no source, or nil (the scheme is known; its settings are read later).
  static func problem(_ text: String) -> String? {
    if text.hasPrefix("mqtt://") || text.hasPrefix("mqtts://") {
      // A broker URL that cannot be connected to, said before the rules load (it was an I/O
      // error, exit 74, after them).
      do {
        _ = try MQTTOptions(url: text)
        return nil
      } catch {
        return error.message
      }
    }
    let known =
      text.hasPrefix("mqtt://") || text.hasPrefix("mqtts://") || text.hasPrefix("kafka://")
      || ReplaySource.input(parsing: text) != nil
    return known ? nil : unknown(text)
  }

  private static func unknown(_ text: String) -> String {
    "unknown source '\(text)': use file:PATH, -, mqtt://host:port, mqtts://host:port or kafka://host:port/topic?group=G"
  }
}

extension DaemonConfiguration {
  /// Why `--source` names no source it knows, or nil: a usage error, said before anything starts.
  public static func sourceProblem(_ text: String) -> String? { SourceSpec.problem(text) }
}

/// Stands in for the MQTT publisher where rules are only checked, never run.
public struct CheckOnlyPublisher: Publisher {
  /// Creates the stand-in.
  public init() {}

  /// Always fails: checked rules do not publish.
  public func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties)
    async throws(ActionError)
  {
    throw ActionError(.permanent, "rules loaded by 'check' do not publish")
  }
}

/// The background connection to a `--mqtt` republish broker: started at most once, shared by the
/// source (which waits for the broker's first answer) and reloads (which do not wait).
final class RepublisherConnect: Sendable {
  struct State {
    /// The connecting task, once started.
    var task: Task<Void, Never>?
    /// The broker answered: connected, or an attempt failed (to be retried), or it refused.
    var answered = false
    /// Why the broker refused the client, when it did.
    var refused: String?
    /// Nobody waits for the first answer any more: a refusal from now on is logged where it happens.
    var unwatched = false
  }

  /// The state, under its lock.
  let state = Mutex(State())
}

/// The rule paths hold no rule file when the daemon starts: nothing runs.
public struct NoRuleFilesError: Error, Sendable, CustomStringConvertible {
  /// The paths given.
  public var paths: [String]

  /// Names the paths.
  public var description: String {
    "no rule files (*.json, *.yaml, *.yml) in \(paths.joined(separator: ", ")): nothing to run "
      + "(every message would be acknowledged with nothing written)"
  }
}

/// Rule files that failed to load when the daemon starts: a replay does not run then, nor does any
/// source when no rule loaded.
public struct InvalidRulesError: Error, Sendable, CustomStringConvertible {
  /// Files that failed.
  public var failed: Int
  /// True for a replay without `--follow`.
  public var batch: Bool
  /// True when a file failed because it could not be read (an I/O problem: exit 74, as `check`).
  public var unreadable = false

  /// Says what failed and why nothing runs.
  public var description: String {
    let files = failed == 1 ? "1 rule file" : "\(failed) rule files"
    return batch
      ? "\(files) failed to load (errors above); a replay does not run with broken rules: do what "
        + "the errors say and run again"
      : "\(files) failed to load (errors above) and no rule loaded: nothing to run"
  }
}

/// Statistics of a finished run.
public struct DaemonSummary: Sendable {
  /// Counts from the dispatcher.
  public var dispatch: DispatchStatistics
  /// Counts from the replay source (zero for MQTT and Kafka).
  public var replay: ReplaySource.Counts
  /// True when the source was a replay (file or standard input).
  public var replayed = true
  /// Wall time in seconds from the start of the source (the rules loaded) to the end of the drain.
  public var seconds: Double
  /// Wall time in seconds from the start to the start of the source: loading the rules, opening
  /// the connections.
  public var startSeconds: Double = 0
  /// The rules loaded at the start.
  public var rulesLoaded = 0
  /// Records the source refused (a Kafka record whose key is no topic): consumed and committed,
  /// seen by no rule.
  public var refused = 0

  /// A rate as the summary says it: whole from 1 up, to one decimal below (6 messages in 6.21 s
  /// were `0 msg/s`).
  static func rateText(_ rate: Double) -> String {
    rate >= 1 || rate == 0
      ? "\(Int(rate))" : rate >= 0.1 ? String(format: "%.1f", rate) : String(format: "%.2g", rate)
  }

  /// The summary's counts as log metadata (a JSON log's last record: a shipper of JSON lines sees
  /// how the run ended).
  public var metadata: Logger.Metadata {
    var fields: Logger.Metadata = [
      "messages": .stringConvertible(dispatch.received), "results": .stringConvertible(dispatch.passed),
      "actionWrites": .stringConvertible(dispatch.actionsSucceeded),
      "acknowledged": .stringConvertible(dispatch.acknowledged),
      "notAcknowledged": .stringConvertible(dispatch.failed), "retries": .stringConvertible(dispatch.retries),
      "errorRecords": .stringConvertible(dispatch.errorRecords),
      "deadLettered": .stringConvertible(dispatch.deadLettered),
      "evaluationsStopped": .stringConvertible(dispatch.evaluationsStopped),
      "forMissingRules": .stringConvertible(dispatch.forMissingRules),
      "seconds": .stringConvertible(seconds),
      "startSeconds": .stringConvertible(startSeconds), "rulesLoaded": .stringConvertible(rulesLoaded),
    ]
    if replayed {
      fields["lines"] = .stringConvertible(replay.lines)
      fields["malformed"] = .stringConvertible(replay.malformed)
    } else {
      fields["refused"] = .stringConvertible(refused)
    }
    return fields
  }

  /// The one-line summary printed on exit.
  public var line: String {
    /// `1 message`, `2 messages`.
    func count(_ number: Int, _ singular: String, _ plural: String? = nil) -> String {
      "\(number) \(number == 1 ? singular : plural ?? singular + "s")"
    }
    let rate = seconds > 0 ? Double(dispatch.received) / seconds : 0
    let intake =
      replayed
      ? "\(count(replay.lines, "line")), \(count(dispatch.received, "message")) (\(replay.malformed) malformed)"
      : count(dispatch.received, "message")
        + (refused > 0 ? " (and \(count(refused, "record")) refused)" : "")
    // Said only when some were: a rule stopped by its limits gives no result, and the log says
    // so at most once a minute per rule.
    let stopped =
      dispatch.evaluationsStopped > 0
      ? " (\(count(dispatch.evaluationsStopped, "evaluation")) stopped by limits)" : ""
    // A redriven record whose rule is gone: logged once per rule name, counted here.
    let missing =
      dispatch.forMissingRules > 0
      ? " (\(count(dispatch.forMissingRules, "message")) for rules not loaded, to no rule)" : ""
    return "iotrules: \(intake)\(missing), "
      + "\(count(dispatch.passed, "rule result"))\(stopped), \(count(dispatch.actionsSucceeded, "action write")), "
      + "\(dispatch.acknowledged) acknowledged, \(dispatch.failed) not acknowledged, "
      + "\(count(dispatch.retries, "retry", "retries")), \(count(dispatch.errorRecords, "error record")), "
      + "\(dispatch.deadLettered) dead-lettered in \(String(format: "%.2f", seconds)) s (\(Self.rateText(rate)) msg/s), "
      + "after \(String(format: "%.2f", startSeconds)) s starting (\(count(rulesLoaded, "rule")) loaded)"
  }
}

/// Names a warning has been given for, so that it is given once a name.
final class SaidNames: Sendable {
  let names = Mutex<Set<String>>([])
}

extension Daemon {
  /// Where an MQTT source keeps the filters its client id is subscribed to across runs (a JSON
  /// array).
  static func subscriptionRecord(clientID: String, deadLetterPath: String) -> String {
    stateFile("iotrules-subscriptions-", clientID: clientID, deadLetterPath: deadLetterPath)
  }

  /// Where an MQTT source journals the messages it took and has not finished (``MQTTSpool``).
  static func spool(clientID: String, deadLetterPath: String) -> String {
    stateFile("iotrules-spool-", clientID: clientID, deadLetterPath: deadLetterPath)
  }

  /// The spools beside `spool` of other client ids that hold messages (a client id changed, a
  /// shared group scaled down): their messages run only under their own client id.
  static func otherSpools(than spool: String) -> [(path: String, clientID: String, bytes: Int)] {
    let url = URL(fileURLWithPath: spool)
    let folder = url.deletingLastPathComponent().path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.sorted().compactMap { name in
      let path = folder + "/" + name
      guard name.hasPrefix("iotrules-spool-"), name.hasSuffix(".state"), name != url.lastPathComponent,
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > 0,
        // A daemon of that client id runs: its messages are in flight, not left.
        !MQTTSource.spoolIsInUse(path)
      else { return nil }
      let spelled = name.dropFirst("iotrules-spool-".count).dropLast(".state".count)
      return (path, String(spelled).removingPercentEncoding ?? String(spelled), size)
    }
  }

  /// A file of the daemon's own state for a client id: beside the dead-letter file (the daemon's
  /// durable state), or in the working folder when that is a device. The client id is spelled
  /// with letters, digits, `.`, `_` and `-`, others as `%XX`.
  static func stateFile(_ prefix: String, clientID: String, deadLetterPath: String) -> String {
    let folder = URL(fileURLWithPath: deadLetterPath).deletingLastPathComponent().path
    let name = clientID.utf8.map { byte -> String in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
        return String(UnicodeScalar(byte))
      default:
        return String(format: "%%%02X", byte)
      }
    }.joined()
    let isDevice = ["/dev", "/proc"].contains { folder == $0 || folder.hasPrefix($0 + "/") }
    let base = isDevice ? "." : folder
    // Not `.json`: a rules folder that holds the dead-letter file (`--rules .`) would load it.
    return base + "/" + prefix + name + ".state"
  }
}

/// A service that runs a closure.
struct ClosureService: Service, CustomStringConvertible {
  let description: String
  let body: @Sendable () async throws -> Void
  func run() async throws { try await body() }
}

/// Runs the daemon: actions, then dispatch, then hot reload and metrics, then the source, in one
/// `ServiceGroup`; SIGTERM/SIGINT (or the end of a replay) shut down in reverse: intake stops, what
/// is in flight drains, actions close last.
public enum Daemon {
  /// The name the daemon reports its own state under (starting, shutting down).
  public static let component = "daemon"
  /// What the daemon reports from the first stop signal, or the end of its source, on.
  static let shuttingDown = "shutting down: intake stopped, draining what is in flight"

  /// Starts everything and returns when the run is over.
  ///
  /// - Parameter builder: the action table; by default every action, `republish` publishing on the
  ///   MQTT source's broker (its own connection) or on `connectors.republishBroker`.
  public static func run(
    _ configuration: DaemonConfiguration, builder: (any ActionBuilding)? = nil,
    registry: PrometheusCollectorRegistry? = nil, logger: Logger
  ) async throws -> DaemonSummary {
    let started = Date()
    let refusedBefore = CounterStore.shared.messagesRefused.load(ordering: .relaxed)
    // A SIGHUP's default is to end the process: one that comes while the rules load (logrotate's,
    // a deploy script's) must not. It reloads once the rules are running (below).
    signal(SIGHUP, SIG_IGN)
    // SIGTERM and SIGINT likewise: their default ended a daemon still loading its rules (seconds,
    // with thousands and their tests) with no word, no record and no summary. The stop signals
    // seen so far, from the start on (a signal within 300 ms of the first is the same stop:
    // coreutils `timeout` signals the daemon and then its whole process group, and a supervisor
    // may do likewise), and the service group once it exists: a first signal before the group
    // runs stops it gracefully as it starts (it drains what little it read); a second exits at once.
    let stops = Mutex<(count: Int, firstAt: UInt64, group: ServiceGroup?)>((0, 0, nil))
    /// Counts a stop signal: 1 for the first, 2 and more for later ones, nil for the same stop.
    @Sendable func countStop() -> (seen: Int, group: ServiceGroup?)? {
      let now = DispatchTime.now().uptimeNanoseconds
      return stops.withLock { state in
        if state.count == 0 {
          (state.count, state.firstAt) = (1, now)
          return (1, state.group)
        } else if now - state.firstAt >= 300_000_000 {
          state.count += 1
          return (state.count, state.group)
        }
        return nil
      }
    }
    @Sendable func exitAtOnce(_ number: Int32, unacknowledged: Int) -> Never {
      logger.error(
        "second stop signal: exiting without draining",
        metadata: ["unacknowledged": .stringConvertible(unacknowledged)])
      // At once: atexit work could wait on the very tasks that are stuck.
      _exit(128 + number)
    }
    let earlyStopSources = [SIGTERM, SIGINT].map { number in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        guard let (seen, _) = countStop() else { return }
        if seen > 1 { exitAtOnce(number, unacknowledged: 0) }
        logger.info(
          "stopping: a signal came while the daemon starts; it stops as soon as it has started",
          metadata: ["signal": .string(number == SIGTERM ? "SIGTERM" : "SIGINT")])
      }
      source.resume()
      return source
    }
    // (Cancelled again, harmlessly, once the run's own handlers take over below.)
    defer { for source in earlyStopSources { source.cancel() } }
    // A write to a pipe whose reader is gone (`--dead-letter /dev/stdout | ...`) fails with EPIPE
    // and takes its path, as any failed write does, and a log line to one is dropped: by default
    // SIGPIPE ended the process on the spot, with messages in flight and no summary.
    signal(SIGPIPE, SIG_IGN)
    let clock = SystemClock()
    let spec = try SourceSpec(configuration)
    let settings = configuration.connectors
    // Before any action opens a file or a socket (and before the archive sizes its share).
    let limit = DescriptorLimit.raise()
    // Below this the daemon cannot run: libdispatch, its own descriptors, the sources and the
    // dead-letter file leave the actions next to nothing, and at 16 to 20 libdispatch stopped the
    // process with SIGILL mid-run (messages in flight, no summary). Said at once instead.
    if let (_, after) = limit, after < DescriptorLimit.minimum {
      let why =
        DescriptorLimit.hard.map { $0 > after } ?? false
        ? "and could not be raised" : "and the hard limit allows no more"
      throw RuleStoreError(
        message:
          "the open-files limit is \(after), \(why): iotrules needs at least \(DescriptorLimit.minimum); raise it (ulimit -n, LimitNOFILE=)"
      )
    }
    if let (before, after) = limit, after < 4_096 {
      let raised = after > before ? "raised from \(before) to the hard limit" : "the hard limit"
      logger.warning(
        "the open-files limit is \(after) (\(raised)): a daemon with many webhook, database and archive actions may run out; raise the hard limit (ulimit -Hn, LimitNOFILE=)"
      )
    }
    if settings.qos != 0 && settings.qos != 1 {
      throw RuleStoreError(message: "the subscription QoS must be 0 or 1, not \(settings.qos)")
    }
    // The last error path is checked before anything depends on it.
    let deadLetter = DeadLetterFile(path: configuration.deadLetterPath)
    try deadLetter.prepare()
    // No archive writes the daemon's own files, whatever a message renders: resolved once, here,
    // before any rule loads.
    FileArchiveAction.ProtectedPaths.shared.protectDaemonFiles(
      rulePaths: configuration.rulePaths, deadLetter: configuration.deadLetterPath,
      secretsFolder: (configuration.secrets as? SecretFolder)?.folder)
    if case .replay(.file(let path)) = spec {
      // An archive appending to the file being replayed sends its own lines again (with --follow,
      // without end); an error action writing there, its records.
      FileArchiveAction.ProtectedPaths.shared.protect(
        path, .file, as: "the file '\(path)' being replayed (--source), whose lines are read as messages")
    }
    var subscriptionRecord: String?
    var spoolPath: String?
    if case .mqtt(let options) = spec {
      let record = Self.subscriptionRecord(
        clientID: options.clientID, deadLetterPath: configuration.deadLetterPath)
      subscriptionRecord = record
      let spool = Self.spool(clientID: options.clientID, deadLetterPath: configuration.deadLetterPath)
      spoolPath = spool
      FileArchiveAction.ProtectedPaths.shared.protect(
        spool, .file, as: "the MQTT spool '\(spool)', whose messages a start runs again")
      FileArchiveAction.ProtectedPaths.shared.protect(
        spool + ".lock", .file, as: "the MQTT spool's lock '\(spool).lock'")
      for other in Self.otherSpools(than: spool) {
        logger.warning(
          "the MQTT spool \(other.path) of client id '\(other.clientID)' holds \(other.bytes) bytes of messages a run took and did not finish: run with --client-id '\(other.clientID)' to run them again"
        )
      }
      if options.persistentSession {
        FileArchiveAction.ProtectedPaths.shared.protect(
          record, .file, as: "the MQTT subscription record '\(record)', whose filters a start unsubscribes")
      }
    }
    // What `/healthz` and `/readyz` answer: not ready until the source runs.
    let health = configuration.health
    health.report(Self.component, "starting: the source is not running yet")
    // A kafka action whose brokers cannot be reached says so there too.
    KafkaProducer.healthBoard.withLock { $0 = health }
    let dispatcher = Dispatcher(
      ruleSet: .empty, maxInFlight: configuration.maxInFlight,
      maxInFlightBytes: configuration.maxInFlightBytes,
      deadLetter: deadLetter,
      clock: clock, logger: logger, health: health)

    // The source, and the MQTT publisher republish uses.
    let source: any MessageSource
    var replay: ReplaySource?
    var mqttSource: MQTTSource?
    var publisher: MQTTPublisher?
    // Malformed replay lines are logged under a budget, as action failures are: a stream of them
    // (one line in a thousand at 20,000 a second) wrote a log line each.
    let malformedLog = MalformedLineLog(startNanoseconds: clock.monotonicNanoseconds())
    switch spec {
    case .replay(let input):
      let replaySource = ReplaySource(
        input: input, follow: configuration.follow, clock: clock, maxLineBytes: configuration.maxLineBytes,
        onMalformed: { line, message in
          CounterStore.shared.malformedLines.wrappingAdd(1, ordering: .relaxed)
          let (logs, unlogged) = malformedLog.turn(now: clock.monotonicNanoseconds())
          guard logs else { return }
          // The file beside its line, as a rule file's error carries it, for a JSON log's readers.
          var metadata: Logger.Metadata = [
            "file": .string(input.name), "line": .stringConvertible(line), "error": "\(message)",
          ]
          if unlogged > 0 { metadata["unloggedBefore"] = .stringConvertible(unlogged) }
          logger.warning("malformed line", metadata: metadata)
        },
        onNotice: { notice in logger.warning("\(notice)") })
      replay = replaySource
      source = replaySource
    case .mqtt(let options):
      logger.info("MQTT source \(options)")
      let mqtt = MQTTSource(
        options: options, filters: [], sharedGroup: settings.sharedGroup, qos: settings.qos,
        logger: Logger(label: "iotrules.mqtt"),
        subscriptionRecord: subscriptionRecord, spool: spoolPath)
      mqttSource = mqtt
      source = mqtt
      publisher = mqtt.makePublisher(health: health)
    case .kafka(let options):
      logger.info(
        "Kafka source \(options.bootstrapServers.joined(separator: ",")) topics \(options.topics) group \(options.group)"
      )
      source = KafkaSource(options: options, logger: Logger(label: "iotrules.kafka"))
    }
    // (`run` refuses `--mqtt` beside an MQTT source: republish publishes on the source's broker.)
    if publisher == nil, let url = settings.republishBroker {
      var options = try settings.mqttOptions(url: url, clientID: settings.clientID + "-pub")
      options.persistentSession = false
      publisher = MQTTPublisher(
        options: options, logger: Logger(label: "iotrules.mqtt.publisher"), health: health)
    }
    let builder =
      builder ?? ActionFactory.withConnectors(publisher: publisher, secrets: configuration.secrets)
    let mqttSubscriber = mqttSource
    let republisher = publisher

    // Its port taken before any action starts: a port in use stops the start with nothing to undo.
    var metricsServer: MetricsServer?
    if let port = configuration.metricsPort, let registry {
      // The queue depth as it is when scraped (a gauge recorded as messages come and go would
      // cost a write per message, or go stale between samples).
      let server = try MetricsServer(
        port: port, address: configuration.metricsAddress, registry: registry, health: health
      ) {
        "# HELP \(MetricNames.queueDepth) Messages taken and not yet acknowledged.\n"
          + "# TYPE \(MetricNames.queueDepth) gauge\n\(MetricNames.queueDepth) \(dispatcher.inFlight)\n"
          + source.sampledMetrics
          + ProcessMetrics.text(rules: dispatcher.ruleSet.rules)
      }
      metricsServer = server
      // Answering from now: a load of thousands of rules (and their tests) took seconds, during
      // which probes got no answer at all instead of `/readyz`'s 503 "starting".
      server.start()
      logger.info("metrics on http://\(configuration.metricsAddress):\(server.port)/metrics")
    }
    let reloader = RuleReloader(
      paths: configuration.rulePaths, builder: builder, dispatcher: dispatcher, logger: logger,
      gate: configuration.reloadGate,
      removalDelay: .milliseconds(min(configuration.reloadPollMs, RuleReloader.longestRemovalDelayMs)))
    let loaded: RuleLoadResult
    do {
      loaded = try await reloader.initialLoad()
    } catch {
      metricsServer?.stop()
      throw error
    }
    /// A start that fails after the first load (a broken rule in a replay, the broker refusing
    /// the subscriptions) shuts down the actions that load started: an http action's client must
    /// be shut down before it goes (a debug build stopped on it, exit 132, instead of saying why).
    func abandonStart(_ error: any Error) async -> any Error {
      for rule in loaded.rules {
        for action in rule.allActions { await action.shutdown() }
      }
      metricsServer?.stop()
      return error
    }
    for error in loaded.errors { error.log(to: logger, event: "load") }
    logger.info(
      "rules loaded",
      metadata: [
        "rules": .stringConvertible(loaded.rules.count), "errors": .stringConvertible(loaded.errors.count),
      ])
    // A replay is a batch: with a broken rule it would give an incomplete result and exit 0. A
    // long-running source starts with the rules that load (a broken file is fixed by hot reload),
    // unless none does.
    let isBatch: Bool
    if case .replay = spec { isBatch = !configuration.follow } else { isBatch = false }
    // A batch leaves a message whose record the dead-letter file refused unacknowledged at once: held,
    // such messages would fill the in-flight bound and the replay would never reach its end.
    if isBatch { dispatcher.holdsFailedDeadLetters = false }
    if !loaded.errors.isEmpty && (isBatch || loaded.rules.isEmpty) {
      var error = InvalidRulesError(failed: loaded.errors.count, batch: isBatch)
      error.unreadable = loaded.errors.contains(where: \.unreadable)
      throw await abandonStart(error)
    }
    // No rule file at all (a mistyped or empty folder): every message would be acknowledged with
    // nothing written (Kafka offsets committed, MQTT PUBACKs sent), as `check` refuses it too.
    if loaded.rules.isEmpty && loaded.errors.isEmpty {
      throw await abandonStart(NoRuleFilesError(paths: configuration.rulePaths))
    }
    // So with one path of several (`--rules team-a --rules team-b`, one mistyped or not cloned yet).
    // (A test file named directly holds no rule: `check` takes it beside its rule.)
    let empty = configuration.rulePaths.filter {
      !RuleFile.isTestFile($0) && (try? RuleStore.ruleFiles(in: [$0]).isEmpty) == true
    }
    if !empty.isEmpty { throw await abandonStart(NoRuleFilesError(paths: empty)) }
    if !loaded.rules.isEmpty && !loaded.rules.contains(where: { !$0.disabled }) {
      logger.warning("every rule is disabled: messages are acknowledged with nothing written")
    }
    let loops = RuleChecker.republishLoops(among: loaded.rules.filter { !$0.disabled })
    for rule in loaded.rules {
      for warning in rule.warnings + (loops[rule.name] ?? []) {
        logger.warning("\(RuleChecker.warningText(warning))", metadata: warning.logMetadata(event: "load"))
      }
    }
    /// The union of the enabled rules' FROM filters (the MQTT source de-duplicates them), and
    /// Basic Ingest's `$aws/rules/#` when asked for and any rule is enabled (one without FROM
    /// too: a folder of Basic Ingest rules alone subscribed to nothing).
    let basicIngest = configuration.connectors.basicIngest
    @Sendable func currentFilters() -> [String] {
      let enabled = dispatcher.ruleSet.rules.filter { !$0.disabled }
      let filters = enabled.filter { !$0.topicFilter.isEmpty }.map(\.topicFilter)
      return enabled.isEmpty || !basicIngest ? filters : filters + [BasicIngest.prefix + "#"]
    }
    // On MQTT, a rule without FROM is reached only through `$aws/rules/#`: said at the start, and
    // at the reload that brings one (once a rule).
    let saidIngestOnly = SaidNames()
    @Sendable func sayIngestOnlyRules() {
      guard mqttSubscriber != nil, !basicIngest else { return }
      let ingestOnly = dispatcher.ruleSet.rules.filter { !$0.disabled && $0.topicFilter.isEmpty }.map(\.name)
      let new = saidIngestOnly.names.withLock { said in ingestOnly.filter { said.insert($0).inserted } }
      guard !new.isEmpty else { return }
      logger.warning(
        "rules without FROM (or with a Basic Ingest FROM) get messages only through Basic Ingest, which the MQTT source subscribes to with --basic-ingest: \(new.joined(separator: ", "))"
      )
    }
    sayIngestOnlyRules()
    // Under a shared group every filter is subscribed as `$share/NAME/<filter>`: mosquitto 2.0
    // delivers nothing to one whose filter starts with '$' (`$aws/things/+/shadow/update`, `$SYS/#`),
    // and such a rule got nothing without a word.
    let saidDollarShared = SaidNames()
    @Sendable func sayDollarFiltersShared() {
      guard mqttSubscriber != nil, let group = settings.sharedGroup else { return }
      let dollar = dispatcher.ruleSet.rules.filter {
        !$0.disabled && $0.topicFilter.utf8.first == UInt8(ascii: "$")
      }.map(
        \.name)
      let new = saidDollarShared.names.withLock { said in dollar.filter { said.insert($0).inserted } }
      guard !new.isEmpty else { return }
      logger.warning(
        "under --shared-group these rules' FROM filters start with '$' and are subscribed as $share/\(group)/$...; mosquitto 2.0 delivers nothing to such a shared subscription (run them on a daemon outside the group): \(new.joined(separator: ", "))"
      )
    }
    sayDollarFiltersShared()
    if let mqttSubscriber {
      do {
        try await mqttSubscriber.updateFilters(currentFilters())
      } catch {
        throw await abandonStart(error)
      }
    }
    /// The background connection to a republish broker that is not the source's (`--mqtt`).
    let connectingRepublisher = RepublisherConnect()
    /// Connects to the `--mqtt` broker once an enabled rule republishes (an unused broker is not
    /// connected to, nor reported while away). With `waits` (the source, before it reads), returns
    /// once the broker answered (connected, or an attempt failed) or 10 s passed: the connection
    /// then goes on in the background and the source does not wait for it: meanwhile republish
    /// fails transiently into its retries and error path, and every other action goes on. Returns
    /// why, when the broker refused the client at once.
    @Sendable func connectRepublisherIfUsed(waits: Bool) async throws -> String? {
      // Connected only when a rule republishes (at the start, or at the reload that brings one):
      // a broker may tie the credentials to the source's client id and refuse `<id>-pub`.
      guard let publisher = republisher,
        dispatcher.ruleSet.rules.contains(where: {
          !$0.disabled && $0.allActions.contains { $0.kind == "republish" }
        })
      else { return nil }
      connectingRepublisher.state.withLock { state in
        if !waits { state.unwatched = true }
        guard state.task == nil else { return }
        // Said when first used (at the start, or at the reload that brings a republish rule).
        logger.info("republish broker \(publisher.options)")
        state.task = Task {
          do {
            try await publisher.start(onRetry: {
              connectingRepublisher.state.withLock { $0.answered = true }
            })
            connectingRepublisher.state.withLock { $0.answered = true }
          } catch is CancellationError {
          } catch {
            let unwatched = connectingRepublisher.state.withLock { state -> Bool in
              (state.answered, state.refused) = (true, "\(error)")
              return state.unwatched
            }
            if unwatched {
              logger.error(
                "republish broker \(publisher.options.url): \(error) (republish fails permanently until a restart)"
              )
            }
          }
        }
      }
      guard waits else { return nil }
      // A broker that takes the connection and never answers does not hold the source for long.
      for _ in 0..<1_000 {
        if connectingRepublisher.state.withLock({ $0.answered }) { break }
        try await Task.sleep(for: .milliseconds(10))
      }
      return connectingRepublisher.state.withLock { state -> String? in
        state.unwatched = true
        return state.refused
      }
    }
    /// Reloads one at a time (SIGHUP and polling alike), none once shutdown began; on a change,
    /// brings the MQTT subscriptions in line with the new rules.
    let reloads = ReloadQueue()
    @Sendable func reload(force: Bool) async {
      await reloads.run {
        // Polling waits for a changed file to stay the same one poll; SIGHUP loads what is there.
        guard await reloader.reload(force: force, settle: !force) != nil else { return }
        configuration.afterRulesLoaded?()
        // Not waited for: the rules are live already, and a reload must not hold a stop up.
        _ = try? await connectRepublisherIfUsed(waits: false)
        guard let mqttSource = mqttSubscriber else { return }
        sayIngestOnlyRules()
        sayDollarFiltersShared()
        do {
          let filters = currentFilters()
          try await mqttSource.updateFilters(filters)
          logger.info("MQTT subscriptions now \(mqttSource.subscriptionFilters(for: filters))")
        } catch {
          // The new filters are kept: every (re)connection subscribes them (a broker away now).
          logger.warning(
            "updating the MQTT subscriptions after a reload failed: \(error); the new filters are subscribed at the next (re)connection"
          )
        }
      }
    }

    configuration.afterRulesLoaded?()

    // SIGHUP forces a reload (ignored as a signal since the start).
    let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    hangup.setEventHandler {
      Task { await reload(force: true) }
    }
    hangup.resume()
    defer { hangup.cancel() }
    // SIGTERM and SIGINT start the graceful shutdown (the service group's own handlers, and the
    // group's trigger for one that comes before they are installed); here the first also cuts
    // retries' backoffs short, so a long retry schedule cannot hold the drain up, and a second
    // one stops at once, as a user pressing ^C twice expects.
    @Sendable func firstStop(_ number: Int32?) {
      if let number {
        logger.info(
          "stopping: intake stops, the messages in flight drain",
          metadata: [
            "signal": .string(number == SIGTERM ? "SIGTERM" : "SIGINT"),
            "inFlight": .stringConvertible(dispatcher.inFlight),
          ])
      }
      // Not ready from the first signal on (a Kafka source drains for a while before the
      // dispatch service hears of the shutdown).
      health.report(Self.component, Self.shuttingDown)
      dispatcher.stopRetrying()
      republisher?.hurry()
    }
    let stopSignals = [SIGTERM, SIGINT].map { number in
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        guard let (seen, group) = countStop() else { return }
        if seen > 1 { exitAtOnce(number, unacknowledged: dispatcher.inFlight) }
        firstStop(number)
        if let group { Task { await group.triggerGracefulShutdown() } }
      }
      source.resume()
      return source
    }
    // From here on these count the signals (an early one counted already).
    for source in earlyStopSources { source.cancel() }
    defer { for source in stopSignals { source.cancel() } }

    let actionsService = ClosureService(description: "actions") {
      try? await gracefulShutdown()
      // A reload still running finishes first; none starts after (its actions would stay open).
      await reloads.close()
      // Shut down in order, the dispatch service has drained already; when the group is cancelled
      // instead (a source failed), every service ends at once: wait for the work in flight here.
      await dispatcher.drain()
      await reloader.shutdownAll()
      // Not awaited: a blocking connect cannot be interrupted (a host that drops SYNs holds it for
      // two minutes); a connection it makes after the shutdown is closed at once.
      connectingRepublisher.state.withLock { $0.task }?.cancel()
      republisher?.shutdown()
    }
    let dispatchService = ClosureService(description: "dispatch") {
      try? await gracefulShutdown()
      health.report(Self.component, Self.shuttingDown)
      // The intake has stopped: batches held open for more results go out now.
      await reloader.hurryAll()
      await dispatcher.drain()
    }
    let reloadService = ClosureService(description: "reload") {
      try? await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
          try await Task.sleep(nanoseconds: UInt64(configuration.reloadPollMs) * 1_000_000)
          await reload(force: false)
        }
      }
      // Shutdown began: a SIGHUP from now on is ignored.
      await reloads.close()
    }
    let sourceStarted = Mutex(Date())
    let sourceService = ClosureService(description: "source") {
      try await cancelWhenGracefulShutdown {
        if republisher != nil {
          // Connected first when a rule republishes (the source's broker, or --mqtt's), for a
          // while at most: the source's own connection retries while the broker is unreachable,
          // and SIGTERM or SIGINT ends the wait and the run, with its summary.
          let refused: String?
          do {
            refused = try await connectRepublisherIfUsed(waits: true)
          } catch is CancellationError {
            return
          }
          // Refused at the first attempt (credentials): the run stops, as with an MQTT source.
          if let refused { throw ConnectorError(refused) }
        }
        sourceStarted.withLock { $0 = Date() }
        health.clear(Self.component)
        // A stop that came while the daemon started: the source starts stopped, taking nothing
        // (a replay says from which line to run again), where the group's cancellation, arriving a
        // moment later, let a replay take a block or two first.
        if stops.withLock({ $0.count > 0 }) { withUnsafeCurrentTask { $0?.cancel() } }
        do {
          try await source.run(intake: dispatcher.intake)
        } catch is CancellationError {
          // Stopped while the MQTT source was still connecting (its broker unreachable): the run
          // ends with its summary.
          return
        }
      }
    }
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: [
          .init(service: actionsService), .init(service: dispatchService), .init(service: reloadService),
          .init(service: sourceService, successTerminationBehavior: .gracefullyShutdownGroup),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    if stops.withLock({ state in
      state.group = group
      return state.count > 0
    }) {
      // A signal came before the group: it stops as it starts.
      firstStop(nil)
      await group.triggerGracefulShutdown()
    }
    do {
      try await group.run()
    } catch {
      metricsServer?.stop()
      connectingRepublisher.state.withLock { $0.task }?.cancel()
      publisher?.shutdown()
      throw error
    }
    metricsServer?.stop()
    // The failures of the last minute past each action's budget: no later line said them.
    for (rule, action, count) in dispatcher.unloggedFailures() {
      logger.warning(
        "action failures not logged",
        metadata: [
          "rule": "\(rule)", "action": "\(action)", "count": .stringConvertible(count),
          "note":
            "past the first \(LogBudget.linesPerMinute) of a minute they are counted: each is in its error record (an error action's, the dead-letter file's, or, where even that failed, the error-level line that gave the record whole)",
        ])
    }
    let unsaid = malformedLog.unsaid
    if unsaid > 0 {
      logger.warning(
        "malformed lines not logged",
        metadata: [
          "count": .stringConvertible(unsaid),
          "note":
            "past the first \(LogBudget.linesPerMinute) of a minute they are counted: in the summary and iotrules_replay_malformed_lines_total",
        ])
    }
    let sourceStart = sourceStarted.withLock { $0 }
    var summary = DaemonSummary(
      dispatch: dispatcher.stats, replay: replay?.currentCounts ?? ReplaySource.Counts(),
      seconds: Date().timeIntervalSince(sourceStart))
    summary.startSeconds = sourceStart.timeIntervalSince(started)
    summary.rulesLoaded = loaded.rules.count
    summary.replayed = replay != nil
    summary.refused = CounterStore.shared.messagesRefused.load(ordering: .relaxed) - refusedBefore
    return summary
  }
}

/// The log budget of malformed replay lines: the first ``LogBudget/linesPerMinute`` of a minute are
/// logged, the rest counted (the next line logged says how many were not, the run's end the rest).
final class MalformedLineLog: Sendable {
  private let budget: Mutex<LogBudget>

  init(startNanoseconds: UInt64) { budget = Mutex(LogBudget(startNanoseconds: startNanoseconds)) }

  /// Whether a malformed line at `now` is logged, and how many before it were not.
  func turn(now: UInt64) -> (logs: Bool, unlogged: Int) { budget.withLock { $0.turn(now: now) } }

  /// The lines not logged since the last one logged.
  var unsaid: Int { budget.withLock { $0.unloggedSinceLastLine } }
}

/// `iotrules check`: loads, compiles and validates rule files without running them.
public enum RuleChecker {
  /// One file's outcome.
  public struct FileResult: Sendable {
    /// The file.
    public var file: String
    /// The rule's name when it compiled (also when its tests fail); nil when it did not.
    public var rule: String?
    /// Problems.
    public var diagnostics: [RuleDiagnostic]
    /// Warnings about a valid rule (a republish that can loop back into the rule).
    public var warnings: [RuleDiagnostic] = []
    /// True for a valid rule its file disables (`ruleDisabled`): `run` loads it and skips it.
    public var disabled = false
    /// True when the file could not be read at all.
    public var unreadable = false

    /// Creates a result.
    public init(
      file: String, rule: String?, diagnostics: [RuleDiagnostic], warnings: [RuleDiagnostic] = [],
      unreadable: Bool = false
    ) {
      self.file = file
      self.rule = rule
      self.diagnostics = diagnostics
      self.warnings = warnings
      self.unreadable = unreadable
    }
  }

  /// A warning line, `file:line:column: warning: message`.
  public static func warningText(_ warning: RuleDiagnostic) -> String {
    "\(warning.file):\(warning.position.line):\(warning.position.column): warning: \(warning.message)"
  }

  /// A file's warnings and errors in file order (a stable sort: at one place, the warnings first,
  /// as found).
  public static func inFileOrder(_ result: FileResult) -> [(isWarning: Bool, diagnostic: RuleDiagnostic)] {
    let all =
      result.warnings.map { (isWarning: true, diagnostic: $0) }
      + result.diagnostics.map { (isWarning: false, diagnostic: $0) }
    return all.enumerated().sorted {
      let (left, right) = ($0.element.diagnostic.position, $1.element.diagnostic.position)
      return (left.line, left.column, $0.offset) < (right.line, right.column, $1.offset)
    }.map(\.element)
  }

  /// A file's warnings and errors as text lines, in file order.
  public static func lines(of result: FileResult) -> [String] {
    inFileOrder(result).map { $0.isWarning ? warningText($0.diagnostic) : $0.diagnostic.description }
  }

  /// Checks every rule file under `paths`.
  ///
  /// - Parameter gate: what `run` asks of a rule before loading it (its tests beside it pass); a
  ///   rule it refuses is reported invalid, with why, so that `check` passes only what `run` loads.
  ///   With a gate, a test file without its rule beside it is invalid too (its cases cannot run).
  public static func check(
    paths: [String],
    builder: any ActionBuilding = ActionFactory.withConnectors(publisher: CheckOnlyPublisher()),
    gate: ReloadGate? = nil
  ) throws
    -> [FileResult]
  {
    let files = try RuleStore.ruleFiles(in: paths)
    var results: [FileResult] = []
    var names: [String: String] = [:]
    // Every file's claim to a name, in file order, and the results of the files that claim one
    // and do not load (broken, or refused by the gate): a clash is said with their other problems.
    var claimants: [String: [String]] = [:]
    var unloaded: [(result: Int, name: String, position: FilePosition)] = []
    // The actions of the rules loaded so far, with their rule's name and result: each new one is
    // compared with them (``Action/conflict(with:)``).
    // By ``Action/conflictKey``: only actions of one key can conflict.
    var loadedActions: [String: [(action: any Action, rule: String, file: String, label: String)]] = [:]
    // The enabled rules loaded, with their results: their republish actions are followed across
    // rules for loops (``republishLoops(among:)``).
    var enabled: [(rule: Rule, result: Int)] = []
    for file in files {
      /// The file refused as a whole (its problem has no place of its own in the text), with the
      /// places of the cause elsewhere (a failing test case).
      func refuse(
        _ message: String, causes: [RuleDiagnostic] = [], rule: String? = nil, unreadable: Bool = false,
        warnings: [RuleDiagnostic] = []
      ) {
        results.append(
          FileResult(
            file: file, rule: rule,
            diagnostics: [
              RuleDiagnostic(file: file, position: FilePosition(line: 1, column: 1), message: message)
            ] + causes, warnings: warnings, unreadable: unreadable))
      }
      let data: [UInt8]
      switch RuleStore.read(file) {
      case .success(let bytes): data = bytes
      case .failure(let problem):
        refuse(problem.message, unreadable: problem.unreadable)
        continue
      }
      do {
        let rule = try RuleFile.load(file: file, bytes: data, builder: builder)
        claimants[rule.name, default: []].append(file)
        // A name another file holds first: its tests (found by the name) are not this rule's.
        if let other = names[rule.name] {
          results.append(
            FileResult(
              file: file, rule: rule.name,
              diagnostics: [
                RuleDiagnostic(
                  file: file, position: rule.namePosition,
                  message: "rule name '\(rule.name)' is already used by \(other)")
              ], warnings: rule.warnings))
          continue
        }
        // Gated before its name is taken, as `run` does: a rule `run` would not load leaves the
        // name to the next file that claims it.
        if let refusal = gate?(rule) {
          // Its warnings too: they often say why a test fails (a template reading a computed name).
          refuse(
            "`run` would not load this rule: \(refusal.reason)", causes: refusal.diagnostics, rule: rule.name,
            warnings: rule.warnings)
          unloaded.append((results.count - 1, rule.name, rule.namePosition))
          continue
        }
        names[rule.name] = file
        var result = FileResult(file: file, rule: rule.name, diagnostics: [], warnings: rule.warnings)
        // Each action against the actions before it, of this rule too.
        for configured in rule.actions {
          guard let key = configured.action.conflictKey else { continue }
          for earlier in loadedActions[key] ?? [] {
            guard let conflict = configured.action.conflict(with: earlier.action) else { continue }
            let there =
              earlier.file == file
              ? "\(earlier.label) of this rule" : "rule '\(earlier.rule)', \(earlier.file)"
            result.warnings.append(
              RuleDiagnostic(
                file: file, position: rule.namePosition,
                message: "rule '\(rule.name)' \(configured.label): \(conflict) (\(there))"))
          }
          loadedActions[key, default: []].append((configured.action, rule.name, file, configured.label))
        }
        result.disabled = rule.disabled
        results.append(result)
        if !rule.disabled { enabled.append((rule, results.count - 1)) }
      } catch {
        results.append(
          FileResult(file: file, rule: nil, diagnostics: error.diagnostics, warnings: error.warnings))
        // As `run` reads it: a file that does not parse claims the name its text names.
        if let claim = RuleFile.nameClaimedByBrokenFile(file: file, bytes: data) {
          claimants[claim.name, default: []].append(file)
          unloaded.append((results.count - 1, claim.name, claim.position))
        }
      }
    }
    let loops = republishLoops(among: enabled.map(\.rule))
    for (rule, index) in enabled { results[index].warnings += loops[rule.name] ?? [] }
    // As `run` says it: the file that does not load is the one refused, and the other loads.
    for (index, name, position) in unloaded {
      let file = results[index].file
      let others = (claimants[name] ?? []).filter { $0 != file }
      guard !others.isEmpty else { continue }
      results[index].diagnostics.append(
        RuleStore.nameClaimDiagnostic(file: file, name: name, position: position, others: others))
    }
    // Tests whose rule was renamed or removed would stop running without a word; `iotrules test`
    // fails them too.
    if gate != nil {
      for test in RuleStore.orphanTestFiles(in: paths) {
        results.append(
          FileResult(file: test, rule: nil, diagnostics: [RuleStore.orphanTestDiagnostic(test)]))
      }
    }
    return results
  }

  /// The loops that republish actions make through two rules or more (a rule back onto its own
  /// FROM filter is warned of by its action): by rule name, a warning for each republish action
  /// that starts one (of the rules named in `starting`, all when nil), naming the shortest way
  /// round. Each message goes round until the hop guard stops it. Not looked for past 2,000,000
  /// pairs of an action and a rule, nor past as many steps of the search.
  public static func republishLoops(among rules: [Rule], starting: Set<String>? = nil) -> [String:
    [RuleDiagnostic]]
  {
    let republishes = rules.map { rule in
      rule.actions.compactMap { configured in
        (configured.action as? RepublishAction).map {
          (label: configured.label, action: $0, shape: RepublishAction.TopicShape($0.configuration.topic))
        }
      }
    }
    let count = republishes.reduce(0) { $0 + $1.count }
    guard count > 0, count * rules.count <= 2_000_000 else { return [:] }
    let filters = rules.map {
      $0.topicFilter.isEmpty ? nil : RepublishAction.TopicShape.levels(of: $0.topicFilter)
    }
    // The other rules whose FROM filter each republish action can match, and so each rule's.
    let reaches = republishes.indices.map { from in
      republishes[from].map { republish in
        rules.indices.filter { to in to != from && filters[to].map(republish.shape.canMatch) == true }
      }
    }
    let edges = reaches.map { Array(Set($0.joined())).sorted() }
    var steps = 0
    var loops: [String: [RuleDiagnostic]] = [:]
    for (start, actions) in republishes.enumerated() where starting?.contains(rules[start].name) ?? true {
      for ((label, action, _), firsts) in zip(actions, reaches[start]) {
        // Breadth first from the rules this action reaches, back to this rule: the shortest way.
        var came: [Int: Int] = [:]
        for first in firsts { came[first] = start }
        var queue = firsts
        var head = 0
        var back: Int?
        while head < queue.count, back == nil, steps < 2_000_000 {
          let at = queue[head]
          head += 1
          steps += edges[at].count
          if edges[at].contains(start) {
            back = at
            break
          }
          for next in edges[at] where came[next] == nil {
            came[next] = at
            queue.append(next)
          }
        }
        guard let last = back else { continue }
        var way = [last]
        while let before = came[way[0]], before != start { way.insert(before, at: 0) }
        let names = ([start] + way + [start]).map { "'\(rules[$0].name)'" }.joined(separator: " → ")
        let hops = action.configuration.maxHops
        let stops =
          hops == 0
          ? "maxHops is 0 here: only another republish's guard stops it"
          : "the \(RepublishAction.hopProperty) user property, or under MQTT 3.1.1 the daemon's own record of what it republished, stops each message after \(hops) hops, to the error path"
        let rule = rules[start]
        loops[rule.name, default: []].append(
          RuleDiagnostic(
            file: rule.file, position: rule.namePosition,
            message:
              "rule '\(rule.name)' \(label): the republish topic '\(action.configuration.topic)' can match the FROM filter '\(rules[way[0]].topicFilter)' of rule '\(rules[way[0]].name)', and republished messages come back round: \(names) (\(stops))"
          ))
      }
    }
    return loops
  }

  /// The results as JSON for machines.
  public static func json(_ results: [FileResult]) -> String {
    let files = results.map { result in
      // Each with its own file: a rule's test file holds the failing cases that make the rule invalid.
      func entry(_ diagnostic: RuleDiagnostic, _ severity: String) -> String {
        "{\"file\":\(ErrorRecord.quote(diagnostic.file)),\"line\":\(diagnostic.position.line),"
          + "\"column\":\(diagnostic.position.column),\"severity\":\"\(severity)\","
          + "\"message\":\(ErrorRecord.quote(diagnostic.message))}"
      }
      let errors = result.diagnostics.map { entry($0, "error") }
      let warnings = result.warnings.map { entry($0, "warning") }
      let rule = result.rule.map { ErrorRecord.quote($0) } ?? "null"
      return
        "{\"file\":\(ErrorRecord.quote(result.file)),\"rule\":\(rule),\"valid\":\(result.diagnostics.isEmpty),\"errors\":[\(errors.joined(separator: ","))],\"warnings\":[\(warnings.joined(separator: ","))]}"
    }
    let invalid = results.filter { !$0.diagnostics.isEmpty }.count
    return
      "{\"files\":[\(files.joined(separator: ","))],\"valid\":\(results.count - invalid),\"invalid\":\(invalid)}"
  }
}
