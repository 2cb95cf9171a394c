import RulesEngine
import Testing

@testable import Daemon

#if canImport(Glibc)
  import Glibc
#endif

/// `run` raises the soft open-files limit to the hard one (at most 65,536), and
/// never lowers it. (The process-wide limit is never lowered here: other tests run alongside.)
@Test func theOpenFilesLimitIsRaisedToTheHardOne() throws {
  var limit = rlimit()
  try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
  let before = Int(clamping: limit.rlim_cur)
  let hard = Int(clamping: limit.rlim_max)
  // A ceiling below the soft limit leaves it as it is.
  let kept = try #require(DescriptorLimit.raise(upTo: min(before, 64)))
  #expect(kept.before == before && kept.after == before)
  let raised = try #require(DescriptorLimit.raise())
  #expect(raised.after == max(min(hard, DescriptorLimit.ceiling), before))
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
  #expect(summary.line.contains("in 1.00 s (3 msg/s)"), "\(summary.line)")
  // A slow run's rate keeps a decimal (6 messages in 6.21 s said 0 msg/s).
  summary.dispatch.received = 6
  summary.seconds = 6.21
  #expect(summary.line.contains("in 6.21 s (1.0 msg/s)"), "\(summary.line)")
  summary.seconds = 0.5
  #expect(summary.line.contains("(12 msg/s)"), "\(summary.line)")
  // Records a Kafka source refused, consumed and committed, are said beside the messages.
  summary.replayed = false
  summary.refused = 2
  #expect(
    summary.line.hasPrefix("iotrules: 6 messages (and 2 records refused), 1 rule result"), "\(summary.line)")
  #expect(summary.metadata["refused"].map { "\($0)" } == "2")
}

/// The MQTT subscription record sits beside the dead-letter file, unless that is a device's (`/dev/null`,
/// `/proc/self/fd/1`): then in the working folder. A folder whose name only starts like one
/// (`/devices`) is an ordinary folder.
@Test func theSubscriptionRecordSitsBesideTheDeadLetterFile() {
  #expect(
    Daemon.subscriptionRecord(clientID: "plant a/1", deadLetterPath: "/devices/dead.jsonl")
      == "/devices/iotrules-subscriptions-plant%20a%2F1.state")
  #expect(
    Daemon.subscriptionRecord(clientID: "c", deadLetterPath: "/dev/null")
      == "./iotrules-subscriptions-c.state")
  #expect(
    Daemon.subscriptionRecord(clientID: "c", deadLetterPath: "/proc/self/fd/1")
      == "./iotrules-subscriptions-c.state")
  #expect(
    Daemon.subscriptionRecord(clientID: "c", deadLetterPath: "/procedures/dead.jsonl")
      == "/procedures/iotrules-subscriptions-c.state")
}
