import RulesEngine
import Testing

@testable import Daemon

#if canImport(Glibc)
  import Glibc
#endif

/// `run` raises the soft open-files limit to the hard one (at most 65,536), and never lowers it.
@Test func theOpenFilesLimitIsRaisedToTheHardOne() throws {
  var limit = rlimit()
  try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
  let hard = Int(clamping: limit.rlim_max)
  let expected = min(hard, DescriptorLimit.ceiling)
  if expected > 1_024 {
    // A soft limit below the hard one, as a login shell's 1,024.
    var lowered = limit
    lowered.rlim_cur = 1_024
    try #require(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0)
    #expect(DescriptorLimit.current == 1_024)
  }
  let raised = try #require(DescriptorLimit.raise())
  #expect(raised.after == max(expected, raised.before))
  #expect(DescriptorLimit.current == raised.after)
  // Again: nothing to raise.
  let again = try #require(DescriptorLimit.raise())
  #expect(again.before == again.after && again.after == raised.after)
}

/// The exit summary says how many evaluations were stopped by their limits, when some were: such a
/// rule gives no result, and the log says so at most once a minute per rule.
@Test func theSummarySaysEvaluationsStopped() {
  var dispatch = DispatchStatistics()
  dispatch.received = 3
  dispatch.passed = 1
  var summary = DaemonSummary(dispatch: dispatch, replay: .init(), seconds: 1)
  #expect(summary.line.contains("1 rule result, 0 action writes"))
  summary.dispatch.evaluationsStopped = 2
  #expect(summary.line.contains("1 rule result (2 evaluations stopped by limits), 0 action writes"))
  #expect(summary.metadata["evaluationsStopped"].map { "\($0)" } == "2")
}
