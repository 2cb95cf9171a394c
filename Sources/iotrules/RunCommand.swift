import Actions
import ArgumentParser
import Daemon
import DevTools
import Foundation
import Logging
import Metrics
import Prometheus

/// `iotrules run`: runs the rules over a source until it ends or SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run the rules of a folder over a message source.",
    discussion: """
      Sources: file:PATH (JSON lines: {"topic", "payload" | "payload_base64", "clientId"?, "timestamp"?}) \
      or - for standard input. Rule files are reloaded when they change and on SIGHUP; SIGTERM and \
      SIGINT stop intake, drain what is in flight and close the actions.
      """)

  @Option(name: .long, help: "A folder of rule files (*.json, *.yaml, *.yml); may be repeated.")
  var rules: [String] = []

  @Option(name: .long, help: "The message source: file:PATH or -.")
  var source: String

  @Option(name: .customLong("dead-letter"), help: "Where error records go when no error action takes them.")
  var deadLetter: String = DeadLetterFile.defaultPath

  @Option(name: .customLong("metrics-port"), help: "Serve /metrics and /healthz on 127.0.0.1:PORT.")
  var metricsPort: Int?

  @Option(name: .customLong("log-format"), help: "text or json.")
  var logFormat: String = "text"

  @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  @Option(name: .customLong("max-in-flight"), help: "The most unacknowledged messages.")
  var maxInFlight: Int = 1024

  @Flag(name: .long, help: "Keep reading the source at its end.")
  var follow = false

  @Option(name: .customLong("reload-interval-ms"), help: "How often rule files are polled for changes.")
  var reloadIntervalMs: Int = 1000

  @Flag(
    name: .customLong("skip-tests"),
    help: "Reload a changed rule even when the tests beside it (<rule>.test.json) fail.")
  var skipTests = false

  func validate() throws {
    if rules.isEmpty { throw ValidationError("give at least one --rules folder") }
    if !["text", "json"].contains(logFormat) { throw ValidationError("--log-format is text or json") }
    if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level '\(logLevel)'") }
  }

  func run() async throws {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    let json = logFormat == "json"
    LoggingSystem.bootstrap { label in
      var handler: any LogHandler =
        json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    let logger = Logger(label: "iotrules")
    var configuration = DaemonConfiguration(rulePaths: rules, source: source)
    configuration.deadLetterPath = deadLetter
    configuration.metricsPort = metricsPort
    configuration.follow = follow
    configuration.maxInFlight = maxInFlight
    configuration.reloadPollMs = max(10, reloadIntervalMs)
    if !skipTests { configuration.reloadGate = { rule in RuleTestGate.check(rule) } }
    let summary: DaemonSummary
    do {
      summary = try await Daemon.run(configuration, registry: registry, logger: logger)
    } catch {
      FileHandle.standardError.write(Data("iotrules: error: \(error)\n".utf8))
      throw ExitCode(74)
    }
    print(summary.line)
    if summary.dispatch.failed > 0 { throw ExitCode(74) }
  }
}
