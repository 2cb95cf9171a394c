#if canImport(Glibc)
  import Glibc
#endif

/// The process's limit on open files. `run` raises it at start: at the usual soft limit of 1,024 a
/// daemon with a few hundred webhook, database and archive actions ran out of descriptors, and
/// libdispatch, unable to open what it reads to watch its thread pool, stopped the process with
/// SIGILL (messages in flight and held error records were lost). MQTT takes any descriptor number:
/// its connections `poll` (libmosquitto's own loop `select`s, and gave up on a socket numbered 1,024
/// or more).
public enum DescriptorLimit {
  /// The most `raise` sets the soft limit to.
  public static let ceiling = 65_536

  /// The fewest open files `run` starts with (it ran at 32, crashed at 16 to 20).
  public static let minimum = 64

  /// The soft limit now, or nil when it cannot be read.
  public static var current: Int? { limits.map { Int(clamping: $0.rlim_cur) } }

  /// The hard limit, or nil when it cannot be read.
  public static var hard: Int? { limits.map { Int(clamping: $0.rlim_max) } }

  private static var limits: rlimit? {
    var limit = rlimit()
    return getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? limit : nil
  }

  /// Raises the soft limit to the hard one, at most `ceiling`; never lowers it. Returns the soft
  /// limit before and after (equal when it stayed), or nil when it cannot be read.
  @discardableResult public static func raise(upTo ceiling: Int = ceiling) -> (before: Int, after: Int)? {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
    let before = Int(clamping: limit.rlim_cur)
    let target = min(limit.rlim_max, rlim_t(ceiling))
    guard target > limit.rlim_cur else { return (before, before) }
    limit.rlim_cur = target
    let raised = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
    return (before, raised ? Int(clamping: target) : before)
  }
}
