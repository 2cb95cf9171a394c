#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What one evaluation of a statement may make and take: a rule cannot hold a daemon's memory or
/// a worker for good. Function results and `+` concatenations are counted as they are made (a
/// string's UTF-8 bytes, 16 bytes an array element, 32 an object member), so `SET @a = concat(@b,
/// @b)` doubled thirty times stops at the limit instead of asking for gigabytes; function calls,
/// SELECT members set and nested-query steps are counted too, and every 32 of them the CPU time
/// since the 32nd is checked, so a nested query that runs a costly regular expression over
/// thousands of elements stops after a second. A stopped evaluation has no result:
/// ``VirtualMachine/evaluationLimitError`` says why.
public enum EvaluationLimits {
  /// Bytes of values one evaluation may make (see above).
  public static let producedBytes = 64 << 20
  /// Nanoseconds of CPU time one evaluation may take, counted from its 32nd call or step.
  public static let nanoseconds: UInt64 = 1_000_000_000
  /// Calls and steps between two looks at the clock.
  static let stepsBetweenChecks = 32

  /// The running count of one evaluation.
  struct Meter {
    private var produced = 0
    private var steps = 0
    private var started: UInt64 = 0

    /// Counts a value just made; the reason to stop, or nil.
    @inline(__always) mutating func add(_ value: Value) -> String? {
      switch value {
      case .string(let text): produced &+= text.utf8.count
      case .array(let elements): produced &+= elements.count &* 16
      case .object(let object): produced &+= object.count &* 32
      case .binary(let bytes): produced &+= bytes.count
      default: break
      }
      return step()
    }

    /// Counts `count` elements just added to an array; the reason to stop, or nil.
    @inline(__always) mutating func add(elements count: Int) -> String? {
      produced &+= count &* 16
      return produced > EvaluationLimits.producedBytes ? tooMuch() : nil
    }

    /// Counts a call or a step; the reason to stop, or nil.
    @inline(__always) mutating func step() -> String? {
      if produced > EvaluationLimits.producedBytes { return tooMuch() }
      steps &+= 1
      guard steps % EvaluationLimits.stepsBetweenChecks == 0 else { return nil }
      return checkClock()
    }

    private func tooMuch() -> String {
      "the evaluation made more than \(EvaluationLimits.producedBytes >> 20) MiB of values (strings, arrays, objects); it was stopped"
    }

    @inline(never) private mutating func checkClock() -> String? {
      let now = Self.cpuNanoseconds()
      if started == 0 {
        started = now
        return nil
      }
      guard now &- started > EvaluationLimits.nanoseconds else { return nil }
      return
        "the evaluation took more than \(EvaluationLimits.nanoseconds / 1_000_000_000) s of CPU time (\(steps) function calls, SELECT members and nested-query steps); it was stopped"
    }

    /// The thread's CPU time: an evaluation runs on one thread without suspending, and a machine
    /// busy with other work does not make it look longer than it is.
    private static func cpuNanoseconds() -> UInt64 {
      var time = timespec()
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
      return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
  }
}
