#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What one evaluation of a statement may make and take: a rule cannot hold a daemon's memory or
/// a worker for good. A value a call, a `+` or a cast makes may be at most 16 MiB (a string's UTF-8
/// bytes, 16 bytes an array element, 32 an object member), so `SET @a = concat(@b, @b)` doubled
/// thirty times stops instead of asking for gigabytes; the values an evaluation keeps (in SET
/// variables, array literals and nested-query results, and every value of 1 MiB or more) may be at
/// most 64 MiB together; function calls, SELECT members set and nested-query steps are counted,
/// and every 32 of them the time since the 32nd is checked (the clock, then the thread's CPU time
/// once the clock says a second passed, so a busy machine stops nothing), so a nested query that
/// runs a costly regular expression over thousands of elements stops after a second. A call on 64 KiB
/// or more of arguments is timed on its own as well (31 costly calls, `md2` over 12 MB each, went by
/// unchecked for 48 s), and so is every regular-expression call (30 matches of `(a|aa)*c` over
/// 4,000 characters each, each within ICU's budget, took 14 s). The result may be at most 64 MiB written as JSON: values a rule repeats are
/// shared, not copied, so a nested array of one 20 KB string 65,536 times costs kilobytes until it is
/// written out (it was 1.3 GB of output, 15 GB resident). A stopped evaluation has no result:
/// ``VirtualMachine/evaluationLimitError`` says why. A template part is held to the same limits, and
/// its value to the same 64 MiB: a stopped part fails its rendering with ``EvaluationStopped``.
public enum EvaluationLimits {
  /// Bytes one value made by a call, a `+` or a cast may hold (see above).
  public static let valueBytes = 16 << 20
  /// Bytes of values one evaluation may keep (see above).
  public static let keptBytes = 64 << 20
  /// Nanoseconds of CPU time one evaluation may take, counted from its 32nd call or step.
  public static let nanoseconds: UInt64 = 1_000_000_000
  /// Calls and steps between two looks at the clock.
  static let stepsBetweenChecks = 32
  /// Bytes of arguments from which a call is timed on its own.
  static let heavyArgumentBytes = 64 << 10
  /// Bytes the result may take written as JSON.
  public static let resultBytes = 64 << 20

  /// Why `value` is too large a result (more than ``resultBytes`` written as JSON), or nil. Counts
  /// as the writer would write (about), and stops counting at the limit: a result that shares one
  /// value many times costs at most that many steps to judge.
  @inline(never) static func resultProblem(_ value: Value) -> String? {
    // The usual result, a few levels of scalars, strings, arrays and objects, bounded in one pass
    // from above; only a result past that bound, or too large to bound so, is counted exactly.
    var nodes = 4_096
    if let bound = roughBound(value, depth: 8, nodes: &nodes), bound < resultBytes { return nil }
    return walkedResultProblem(value)
  }

  /// At least the bytes `value` takes written as JSON (a string's or key's byte may be six, as
  /// `\u0001`; a number is at most about 1,050, `-0.000…1E-999` with a whole significand), or nil
  /// past `nodes` values or `depth` levels, or for binary: then ``walkedResultProblem`` counts.
  private static func roughBound(_ value: Value, depth: Int, nodes: inout Int) -> Int? {
    nodes &-= 1
    guard nodes >= 0 else { return nil }
    switch value {
    case .string(let text): return 6 &* text.utf8.count &+ 2
    case .binary: return nil
    case .array(let elements):
      guard depth > 0 else { return nil }
      var total = 2 &+ elements.count
      for element in elements {
        guard let bound = roughBound(element, depth: depth - 1, nodes: &nodes) else { return nil }
        total &+= bound
      }
      return total
    case .object(let object):
      guard depth > 0 else { return nil }
      var total = 2
      for index in object.keys.indices {
        guard let bound = roughBound(object.values[index], depth: depth - 1, nodes: &nodes) else {
          return nil
        }
        total &+= 6 &* object.keys[index].utf8.count &+ 4 &+ bound
      }
      return total
    default: return 1_100
    }
  }

  @inline(never) private static func walkedResultProblem(_ value: Value) -> String? {
    var budget = resultBytes
    guard exceeds(value, &budget) else { return nil }
    return
      "the result is more than \(resultBytes >> 20) MiB written as JSON (a value repeated in it counts each time); the evaluation was stopped"
  }

  /// Why a template part's value is too large to render (more than ``resultBytes`` written as
  /// JSON, which bounds its text too), or nil.
  static func templateValueProblem(_ value: Value) -> String? {
    switch value {
    // The usual part, a short string: within the limit however it is written (six bytes a byte).
    case .string(let text) where text.utf8.count < resultBytes / 6: return nil
    case .array, .object, .string, .binary:
      var budget = resultBytes
      guard exceeds(value, &budget) else { return nil }
      return
        "a template's value is more than \(resultBytes >> 20) MiB written as JSON (a value repeated in it counts each time); the rendering was stopped"
    default: return nil
    }
  }

  private static func exceeds(_ value: Value, _ budget: inout Int) -> Bool {
    switch value {
    case .string(let text): budget &-= escapedCount(text) &+ 2
    case .binary(let bytes): budget &-= bytes.count / 3 &* 4 &+ 6
    case .array(let elements):
      budget &-= 2 &+ elements.count
      if budget < 0 { return true }
      for element in elements where exceeds(element, &budget) { return true }
    case .object(let object):
      budget &-= 2
      for (key, member) in object.members {
        budget &-= escapedCount(key) &+ 4
        if exceeds(member, &budget) { return true }
      }
    default: budget &-= 8
    }
    return budget < 0
  }

  /// The bytes the JSON writer writes for `text`'s content: a quote or backslash takes two, a
  /// control character up to six (`\u0001`).
  static func escapedCount(_ text: String) -> Int {
    var count = 0
    for byte in text.utf8 {
      count &+= byte < 0x20 ? 6 : byte == 0x22 || byte == 0x5C ? 2 : 1
    }
    return count
  }

  /// The running count of one evaluation.
  struct Meter {
    private var kept = 0
    private var steps = 0
    private var startedWall: UInt64 = 0
    private var startedCPU: UInt64 = 0

    /// The bytes `value` holds, its elements' and members' own values left out.
    @inline(__always) static func footprint(_ value: Value) -> Int {
      switch value {
      case .string(let text): text.utf8.count
      case .array(let elements): elements.count &* 16
      case .object(let object): object.count &* 32
      case .binary(let bytes): bytes.count
      default: 0
      }
    }

    /// This meter's clock and count of steps, with no value kept: what a later run sharing its
    /// budget starts from (the values one template part kept are gone when the next one runs).
    var clockOnly: Meter {
      var meter = self
      meter.kept = 0
      return meter
    }

    /// `size` bytes in MiB, rounded up to a tenth (16.25 MiB is `16.3`, not the limit's `16`).
    static func mebibytes(_ size: Int) -> String {
      let tenths = (size &* 10 &+ (1 << 20) &- 1) >> 20
      return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }

    /// Counts a value just made by a call, a `+` or a cast; the reason to stop, or nil.
    @inline(__always) mutating func made(_ value: Value) -> String? {
      let size = Self.footprint(value)
      if size > EvaluationLimits.valueBytes {
        return
          "a value of \(Self.mebibytes(size)) MiB was made (at most \(EvaluationLimits.valueBytes >> 20) MiB a value); the evaluation was stopped"
      }
      // A large value is counted as kept as well: the stack may hold many of them at once (the
      // arguments of one call), which no variable or array shows.
      if size >= 1 << 20 {
        kept &+= size
        if kept > EvaluationLimits.keptBytes { return Self.keptTooMuch }
      }
      return step()
    }

    /// Counts a value kept (a SET variable, an array element, a nested-query result); the reason
    /// to stop, or nil.
    @inline(__always) mutating func keep(_ value: Value) -> String? {
      kept &+= 16 &+ Self.footprint(value)
      return kept > EvaluationLimits.keptBytes ? Self.keptTooMuch : nil
    }

    private static let keptTooMuch =
      "the evaluation kept more than \(EvaluationLimits.keptBytes >> 20) MiB of values (SET variables, arrays, nested-query results, values of 1 MiB or more); it was stopped"

    /// Whether a call on `arguments` is to be timed on its own (they hold 64 KiB or more).
    @inline(never) static func isHeavy(_ arguments: UnsafeBufferPointer<Value>) -> Bool {
      var bytes = 0
      for argument in arguments { bytes &+= footprint(argument) }
      return bytes >= EvaluationLimits.heavyArgumentBytes
    }

    /// Starts the clock before a heavy call, when it has not started yet.
    mutating func startClock() {
      if startedWall == 0 { _ = checkClock() }
    }

    /// Looks at the clock now (after a heavy call); the reason to stop, or nil.
    mutating func checkNow() -> String? { checkClock() }

    /// Counts a call or a step; the reason to stop, or nil.
    @inline(__always) mutating func step() -> String? {
      steps &+= 1
      guard steps % EvaluationLimits.stepsBetweenChecks == 0 else { return nil }
      return checkClock()
    }

    @inline(never) private mutating func checkClock() -> String? {
      let now = Self.nanoseconds(CLOCK_MONOTONIC)
      if startedWall == 0 {
        startedWall = now
        startedCPU = Self.nanoseconds(CLOCK_THREAD_CPUTIME_ID)
        return nil
      }
      // The cheap clock first; the thread's CPU time (a system call) only once it says a second
      // has passed, which on a busy machine the evaluation may not have had.
      guard now &- startedWall > EvaluationLimits.nanoseconds,
        Self.nanoseconds(CLOCK_THREAD_CPUTIME_ID) &- startedCPU > EvaluationLimits.nanoseconds
      else { return nil }
      return
        "the evaluation took more than \(EvaluationLimits.nanoseconds / 1_000_000_000) s of CPU time (\(steps) function calls, SELECT members and nested-query steps); it was stopped"
    }

    private static func nanoseconds(_ clock: clockid_t) -> UInt64 {
      var time = timespec()
      clock_gettime(clock, &time)
      return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
  }
}

/// Why an evaluation was stopped by ``EvaluationLimits``: what a template's rendering throws, for
/// the action to fail with (never a part rendered as nothing).
public struct EvaluationStopped: Error, Sendable {
  /// The limit reached, in words.
  public var reason: String
  /// Where, in the template's text: the operation stopped, or the part whose value was too large.
  public var range: SourceRange

  /// A stop for `reason` at `range` (by default the start of the text).
  public init(
    reason: String, at range: SourceRange = SourceRange(at: SourceLocation(offset: 0, line: 1, column: 1))
  ) {
    self.reason = reason
    self.range = range
  }

  /// The stop as a runtime diagnostic.
  public var diagnostic: Diagnostic { Diagnostic(stage: .runtime, reason, at: range) }

  /// The reason and the part of `template` (the template's text) it stopped at, for an action's
  /// error: `a value of 28 MiB was made ...; the evaluation was stopped (at concat(s, s) in the
  /// template)`. The reason alone when the stop is of the whole text (too long once rendered).
  public func described(in template: String) -> String {
    guard range.end.offset > range.start.offset else { return reason }
    return "\(reason) (at \(VirtualMachine.excerpt(of: range, in: template)) in the template)"
  }
}
