import Foundation
import RulesEngine

#if canImport(Glibc)
  import Glibc
#endif

/// The process's own gauges, as Prometheus client libraries name them, measured when scraped: when
/// it started, its CPU time, resident memory and open descriptors against their limit (which the
/// archive's budget and a metrics server out of descriptors turn on); and the build.
enum ProcessMetrics {
  /// When the process started, seconds since the epoch (read once, at the first scrape or before).
  static let startTimeSeconds: Double = {
    // /proc/self/stat's 22nd field is the start in clock ticks after boot; btime in /proc/stat is
    // the boot. Without them, now (the daemon reads this at its start).
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    guard ticks > 0, let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
      let end = stat.lastIndex(of: ")"),
      let started = stat[stat.index(after: end)...].split(separator: " ").dropFirst(19).first.flatMap({
        Double($0)
      }),
      let boot = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n")
        .first(where: { $0.hasPrefix("btime ") }).flatMap({ Double($0.dropFirst(6)) })
    else { return Date().timeIntervalSince1970 }
    return boot + started / ticks
  }()

  /// The families, in Prometheus text.
  static func text(rules: [Rule]) -> String {
    // One rule set, read once: a reload between two reads could show more disabled than loaded.
    let rulesLoaded = rules.count
    let rulesDisabled = rules.reduce(0) { $0 + ($1.disabled ? 1 : 0) }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    let cpu =
      Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
      + Double(usage.ru_stime.tv_usec) / 1e6
    // statm: size, resident, ... in pages.
    let resident =
      (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ").dropFirst()
      .first.flatMap { Int($0) }.map { $0 * Int(sysconf(Int32(_SC_PAGESIZE))) } ?? 0
    let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1
    var limit = rlimit()
    let maxFDs =
      getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
    let families: [(String, String, String, String)] = [
      (
        "process_start_time_seconds", "gauge", "When the process started, seconds since the epoch.",
        "\(startTimeSeconds)"
      ),
      (
        "process_cpu_seconds_total", "counter", "User and system CPU time the process used, in seconds.",
        "\(cpu)"
      ),
      ("process_resident_memory_bytes", "gauge", "Resident memory of the process, in bytes.", "\(resident)"),
      ("process_open_fds", "gauge", "Descriptors the process has open.", "\(open)"),
      ("process_max_fds", "gauge", "The process's soft limit of open descriptors.", "\(maxFDs)"),
      (
        "iotrules_rules_loaded", "gauge", "Rules in the running set, disabled ones included.",
        "\(rulesLoaded)"
      ),
      (
        "iotrules_rules_disabled", "gauge",
        "Rules in the running set that their file disables (ruleDisabled): loaded, and run on no message.",
        "\(rulesDisabled)"
      ),
    ]
    var text = ""
    for (name, type, help, value) in families {
      text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
    }
    text += "# HELP iotrules_build_info The running build: 1, with its version as a label.\n"
    text +=
      "# TYPE iotrules_build_info gauge\niotrules_build_info{version=\"\(IoTRulesVersion.current)\"} 1\n"
    return text
  }
}
