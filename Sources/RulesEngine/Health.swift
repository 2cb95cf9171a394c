import Foundation
import Synchronization

/// The daemon's own account of whether it works: components report a problem (a broker connection
/// lost, the dead-letter file failing) and clear it once it is over. `/healthz` and `/readyz` read
/// it, so that a supervisor restarts a daemon that cannot make progress and a load balancer or an
/// operator sees one that is waiting for something.
public final class Health: Sendable {
  /// How bad a problem is.
  public enum Level: Sendable {
    /// Not ready: waiting for something outside (a broker, the first partition assignment) or
    /// shutting down. `/readyz` fails; `/healthz` does not (a restart would not help).
    case notReady
    /// Unhealthy: the daemon cannot make progress by itself (nothing takes its error records, so
    /// messages are held unacknowledged). Both `/healthz` and `/readyz` fail.
    case unhealthy
  }

  /// One component's current problem.
  public struct Problem: Sendable, Equatable {
    /// Who reports it, for example `mqtt source mqtt://127.0.0.1:1883`.
    public var component: String
    /// What is wrong, in words.
    public var message: String
    /// How bad it is.
    public var level: Level
    /// When the component first reported a problem (kept while it only changes its words).
    public var since: Date
  }

  private let problemsByComponent = Mutex<[String: Problem]>([:])

  /// Creates a board with no problem.
  public init() {}

  /// Records `component`'s problem, replacing the one it had (whose start time is kept).
  public func report(_ component: String, _ message: String, level: Level = .notReady) {
    problemsByComponent.withLock { problems in
      let since = problems[component]?.since ?? Date()
      problems[component] = Problem(component: component, message: message, level: level, since: since)
    }
  }

  /// Forgets `component`'s problem, if it had one.
  public func clear(_ component: String) {
    problemsByComponent.withLock { _ = $0.removeValue(forKey: component) }
  }

  /// The current problems, by component name.
  public var problems: [Problem] {
    problemsByComponent.withLock { Array($0.values) }.sorted { $0.component < $1.component }
  }

  /// The board as Prometheus gauges, for alerts: `iotrules_ready` and `iotrules_healthy` (1 or 0, as
  /// `/readyz` and `/healthz` answer) and `iotrules_health_problem{component, level}` 1 per problem.
  public func prometheusText() -> String {
    let problems = self.problems
    let healthy = !problems.contains { $0.level == .unhealthy }
    var text = """
      # HELP iotrules_ready 1 when /readyz passes (no problem reported), else 0.
      # TYPE iotrules_ready gauge
      iotrules_ready \(problems.isEmpty ? 1 : 0)
      # HELP iotrules_healthy 1 when /healthz passes (no unhealthy problem), else 0.
      # TYPE iotrules_healthy gauge
      iotrules_healthy \(healthy ? 1 : 0)
      # HELP iotrules_health_problem 1 for each component with a problem, by level.
      # TYPE iotrules_health_problem gauge

      """
    for problem in problems {
      let level = problem.level == .unhealthy ? "unhealthy" : "not_ready"
      text +=
        "iotrules_health_problem{component=\"\(CounterStore.escape(problem.component))\",level=\"\(level)\"} 1\n"
    }
    return text
  }

  /// What an HTTP probe answers: whether it passes, and a body of one line per problem that counts.
  ///
  /// - Parameter readiness: `/readyz` (every problem counts) rather than `/healthz` (only
  ///   `unhealthy` ones do).
  public func probe(readiness: Bool, now: Date = Date()) -> (passes: Bool, body: String) {
    let counted = problems.filter { readiness || $0.level == .unhealthy }
    if counted.isEmpty { return (true, readiness ? "ready\n" : "ok\n") }
    let formatter = ISO8601DateFormatter()
    let lines = counted.map { problem in
      let seconds = max(0, Int(now.timeIntervalSince(problem.since)))
      // One line a problem: a line break or control character in it (a file name, a broker's
      // words) is spelled out.
      let text = RuleFile.printable("\(problem.component): \(problem.message)", keepsLineBreaks: false)
      return "\(text) (since \(formatter.string(from: problem.since)), \(seconds) s)"
    }
    return (false, (readiness ? "not ready\n" : "unhealthy\n") + lines.joined(separator: "\n") + "\n")
  }
}
