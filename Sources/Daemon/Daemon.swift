import Actions
import Connectors
import Dispatch
import Foundation
import Logging
import Metrics
import Prometheus
import RulesEngine
import ServiceLifecycle

/// The daemon's configuration (`iotrules run` options).
public struct DaemonConfiguration: Sendable {
  /// Rule folders or files.
  public var rulePaths: [String]
  /// The source: `file:PATH` or `-`.
  public var source: String
  /// The dead-letter file.
  public var deadLetterPath: String = DeadLetterFile.defaultPath
  /// The metrics port (nil: no server).
  public var metricsPort: Int?
  /// Keep reading the source at its end.
  public var follow = false
  /// The most messages in flight.
  public var maxInFlight = 1024
  /// How often rule files are polled for changes, in milliseconds.
  public var reloadPollMs = 1000
  /// Vets each rule changed on reload: a reason it returns keeps the running version (logged).
  public var reloadGate: ReloadGate?

  /// Creates a configuration.
  public init(rulePaths: [String], source: String) {
    self.rulePaths = rulePaths
    self.source = source
  }
}

/// Statistics of a finished run.
public struct DaemonSummary: Sendable {
  /// Counts from the dispatcher.
  public var dispatch: DispatchStatistics
  /// Counts from the replay source.
  public var replay: ReplaySource.Counts
  /// Wall time in seconds.
  public var seconds: Double

  /// The one-line summary printed on exit.
  public var line: String {
    let rate = seconds > 0 ? Double(dispatch.received) / seconds : 0
    return "iotrules: \(replay.lines) lines, \(dispatch.received) messages (\(replay.malformed) malformed), "
      + "\(dispatch.passed) rule results, \(dispatch.actionsSucceeded) action writes, \(dispatch.acknowledged) acknowledged, "
      + "\(dispatch.failed) not acknowledged, \(dispatch.retries) retries, \(dispatch.errorRecords) error records, "
      + "\(dispatch.deadLettered) dead-lettered in \(String(format: "%.2f", seconds)) s (\(Int(rate)) msg/s)"
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
  /// Starts everything and returns when the run is over.
  public static func run(
    _ configuration: DaemonConfiguration, builder: any ActionBuilding = ActionFactory.standard,
    registry: PrometheusCollectorRegistry? = nil, logger: Logger
  ) async throws -> DaemonSummary {
    let started = Date()
    let clock = SystemClock()
    guard let input = ReplaySource.input(parsing: configuration.source) else {
      throw RuleStoreError(message: "unknown source '\(configuration.source)': use file:PATH or -")
    }
    let dispatcher = Dispatcher(
      ruleSet: .empty, maxInFlight: configuration.maxInFlight,
      deadLetter: DeadLetterFile(path: configuration.deadLetterPath),
      clock: clock, logger: logger)
    let reloader = RuleReloader(
      paths: configuration.rulePaths, builder: builder, dispatcher: dispatcher, logger: logger,
      gate: configuration.reloadGate)
    let loaded = try await reloader.initialLoad()
    for error in loaded.errors {
      for diagnostic in error.diagnostics { logger.error("\(diagnostic.description)") }
    }
    logger.info(
      "rules loaded", metadata: ["rules": "\(loaded.rules.count)", "errors": "\(loaded.errors.count)"])

    let source = ReplaySource(input: input, follow: configuration.follow, clock: clock) { line, message in
      logger.warning("malformed line", metadata: ["line": "\(line)", "error": "\(message)"])
    }
    var metricsServer: MetricsServer?
    if let port = configuration.metricsPort, let registry {
      let server = try MetricsServer(port: port, registry: registry)
      server.start()
      metricsServer = server
      logger.info("metrics on http://127.0.0.1:\(server.port)/metrics")
    }

    // SIGHUP forces a reload.
    signal(SIGHUP, SIG_IGN)
    let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    hangup.setEventHandler {
      Task { await reloader.reload(force: true) }
    }
    hangup.resume()
    defer { hangup.cancel() }

    let actionsService = ClosureService(description: "actions") {
      try? await gracefulShutdown()
      await reloader.shutdownAll()
    }
    let dispatchService = ClosureService(description: "dispatch") {
      try? await gracefulShutdown()
      await dispatcher.drain()
    }
    let reloadService = ClosureService(description: "reload") {
      try? await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
          try await Task.sleep(nanoseconds: UInt64(configuration.reloadPollMs) * 1_000_000)
          await reloader.reload()
        }
      }
    }
    let sourceService = ClosureService(description: "source") {
      try await cancelWhenGracefulShutdown {
        try await source.run { message in await dispatcher.deliver(message) }
      }
    }
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: [
          .init(service: actionsService), .init(service: dispatchService), .init(service: reloadService),
          .init(service: sourceService, successTerminationBehavior: .gracefullyShutdownGroup),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
      try await group.run()
    } catch {
      metricsServer?.stop()
      throw error
    }
    metricsServer?.stop()
    return DaemonSummary(
      dispatch: dispatcher.stats, replay: source.currentCounts, seconds: Date().timeIntervalSince(started))
  }
}

/// `iotrules check`: loads, compiles and validates rule files without running them.
public enum RuleChecker {
  /// One file's outcome.
  public struct FileResult: Sendable {
    /// The file.
    public var file: String
    /// The rule name when valid.
    public var rule: String?
    /// Problems.
    public var diagnostics: [RuleDiagnostic]
  }

  /// Checks every rule file under `paths`.
  public static func check(paths: [String], builder: any ActionBuilding = ActionFactory.standard) throws
    -> [FileResult]
  {
    let files = try RuleStore.ruleFiles(in: paths)
    var results: [FileResult] = []
    var names: [String: String] = [:]
    for file in files {
      guard let data = FileManager.default.contents(atPath: file) else {
        results.append(
          FileResult(
            file: file, rule: nil,
            diagnostics: [
              RuleDiagnostic(
                file: file, position: FilePosition(line: 1, column: 1), message: "cannot read the file")
            ]))
        continue
      }
      do {
        let rule = try RuleFile.load(file: file, bytes: Array(data), builder: builder)
        if let other = names[rule.name] {
          results.append(
            FileResult(
              file: file, rule: nil,
              diagnostics: [
                RuleDiagnostic(
                  file: file, position: FilePosition(line: 1, column: 1),
                  message: "rule name '\(rule.name)' is already used by \(other)")
              ]))
          continue
        }
        names[rule.name] = file
        results.append(FileResult(file: file, rule: rule.name, diagnostics: []))
      } catch {
        results.append(FileResult(file: file, rule: nil, diagnostics: error.diagnostics))
      }
    }
    return results
  }

  /// The results as JSON for machines.
  public static func json(_ results: [FileResult]) -> String {
    let files = results.map { result in
      let errors = result.diagnostics.map {
        "{\"line\":\($0.position.line),\"column\":\($0.position.column),\"message\":\(ErrorRecord.quote($0.message))}"
      }
      let rule = result.rule.map { ErrorRecord.quote($0) } ?? "null"
      return
        "{\"file\":\(ErrorRecord.quote(result.file)),\"rule\":\(rule),\"valid\":\(result.diagnostics.isEmpty),\"errors\":[\(errors.joined(separator: ","))]}"
    }
    let invalid = results.filter { !$0.diagnostics.isEmpty }.count
    return
      "{\"files\":[\(files.joined(separator: ","))],\"valid\":\(results.count - invalid),\"invalid\":\(invalid)}"
  }
}
