import Testing

@testable import Connectors

struct OffsetTrackerTests {
  let p0 = TopicPartition(topic: "t", partition: 0)
  let p1 = TopicPartition(topic: "t", partition: 1)

  @Test func storesOnlyContiguousDoneOffsets() {
    let tracker = OffsetTracker()
    tracker.assign([p0])
    let logs = (10..<15).map { (offset: Int64($0), log: tracker.delivered(p0, offset: Int64($0)).log) }
    #expect(tracker.outstanding == 5)
    // 11 and 12 done, 10 not yet: nothing is storable.
    tracker.acknowledge(logs[1].log, offset: 11, .done)
    tracker.acknowledge(logs[2].log, offset: 12, .done)
    #expect(tracker.takeStorable().isEmpty)
    // Five outstanding, of which three are not acknowledged (10, 13, 14): what shutdown says.
    #expect(tracker.unacknowledged == 3)
    tracker.acknowledge(logs[0].log, offset: 10, .done)
    let stored = tracker.takeStorable()
    #expect(stored.count == 1 && stored[0].0 == p0 && stored[0].1 == 13)
    #expect(tracker.outstanding == 2)
    #expect(tracker.unacknowledged == 2)
    // Taken once: nothing new until another acknowledgement moves it.
    #expect(tracker.takeStorable().isEmpty)
    tracker.acknowledge(logs[4].log, offset: 14, .done)
    #expect(tracker.takeStorable().isEmpty)
    tracker.acknowledge(logs[3].log, offset: 13, .done)
    #expect(tracker.takeStorable().map(\.1) == [15])
    #expect(tracker.outstanding == 0)
  }

  /// Messages done behind one that is not count toward the wait that pauses the source; once it is
  /// done, none is left waiting.
  @Test func aPartitionWaitingBehindAnUnfinishedMessageIsFound() {
    let tracker = OffsetTracker()
    tracker.assign([p0, p1])
    let first = tracker.delivered(p0, offset: 100).log
    for offset in 101...110 {
      let log = tracker.delivered(p0, offset: Int64(offset)).log
      tracker.acknowledge(log, offset: Int64(offset), .done)
    }
    let other = tracker.delivered(p1, offset: 5).log
    #expect(tracker.waitingBehind(limit: 10)?.partition == p0)
    #expect(tracker.waitingBehind(limit: 10)?.offset == 100)
    #expect(tracker.waitingBehind(limit: 11) == nil)
    tracker.acknowledge(first, offset: 100, .done)
    #expect(tracker.waitingBehind(limit: 0)?.partition == p1)
    tracker.acknowledge(other, offset: 5, .done)
    #expect(tracker.waitingBehind(limit: 0) == nil)
  }

  @Test func aFailedMessageBlocksItsPartitionOnly() {
    let tracker = OffsetTracker()
    tracker.assign([p0, p1])
    let a = tracker.delivered(p0, offset: 0).log
    let b = tracker.delivered(p0, offset: 1).log
    let c = tracker.delivered(p1, offset: 7).log
    tracker.acknowledge(a, offset: 0, .failed)
    tracker.acknowledge(b, offset: 1, .done)
    tracker.acknowledge(c, offset: 7, .done)
    let stored = tracker.takeStorable()
    #expect(stored.count == 1 && stored[0].0 == p1 && stored[0].1 == 8)
    // The blocked partition is handed to the source once (to pause it), and is no longer waited for.
    #expect(tracker.takeBlocked() == [p0])
    #expect(tracker.takeBlocked().isEmpty)
    #expect(tracker.outstanding == 0)
  }

  @Test func aBlockRevokedBeforeTheSourceTookItPausesNothing() {
    let tracker = OffsetTracker()
    tracker.assign([p0, p1])
    let a = tracker.delivered(p0, offset: 0).log
    let b = tracker.delivered(p1, offset: 0).log
    tracker.acknowledge(a, offset: 0, .failed)
    tracker.acknowledge(b, offset: 0, .failed)
    // A rebalance comes first: p0 goes (to this member again: a fresh log, not blocked), p1 stays.
    _ = tracker.revoke([p0])
    tracker.assign([p0])
    #expect(tracker.takeBlocked() == [p1])
    #expect(tracker.oldestUndone().blocked == [p1])
  }

  @Test func aBlockedPartitionRecordsNothingUntilAssignedAgain() {
    let tracker = OffsetTracker()
    tracker.assign([p0])
    let first = tracker.delivered(p0, offset: 0).log
    tracker.acknowledge(first, offset: 0, .failed)
    // Messages fetched before the pause took effect: neither counted nor kept.
    for offset in Int64(1)...1_000 {
      let log = tracker.delivered(p0, offset: offset).log
      tracker.acknowledge(log, offset: offset, .done)
    }
    #expect(tracker.outstanding == 0)
    #expect(tracker.takeStorable().isEmpty)
    #expect(first.offsets.isEmpty)
    // Assigned again (restart or rebalance): redelivered from the failed message on.
    tracker.assign([p0])
    let again = tracker.delivered(p0, offset: 0).log
    #expect(tracker.outstanding == 1)
    tracker.acknowledge(again, offset: 0, .done)
    #expect(tracker.takeStorable().map(\.1) == [1])
  }

  @Test func revocationReturnsWhatWasStorableAndIgnoresLateAcknowledgements() {
    let tracker = OffsetTracker()
    tracker.assign([p0])
    let first = tracker.delivered(p0, offset: 0).log
    let second = tracker.delivered(p0, offset: 1).log
    tracker.acknowledge(first, offset: 0, .done)
    let revoked = tracker.revoke([p0])
    #expect(revoked.count == 1 && revoked[0].1 == 1)
    #expect(tracker.outstanding == 0)
    // Reassigned: the old owner's late acknowledgement stores nothing; the new one counts.
    tracker.assign([p0])
    tracker.acknowledge(second, offset: 1, .done)
    #expect(tracker.takeStorable().isEmpty)
    // The consumer's cached log of the old assignment is refused; the current one is taken.
    #expect(!tracker.delivered(to: first, offset: 1))
    let again = tracker.delivered(p0, offset: 1).log
    #expect(tracker.delivered(to: again, offset: 2))
    tracker.acknowledge(again, offset: 1, .done)
    tracker.acknowledge(again, offset: 2, .done)
    #expect(tracker.takeStorable().map(\.1) == [3])
  }

  @Test func aPartitionThatGoesBackIsTrackedAfresh() {
    let tracker = OffsetTracker()
    tracker.assign([p0])
    let old = (100..<103).map { tracker.delivered(p0, offset: Int64($0)).log }
    tracker.acknowledge(old[0], offset: 100, .done)
    #expect(tracker.takeStorable().map(\.1) == [101])
    // An offset reset to earliest (the log was truncated): offsets start again lower.
    let (fresh, wentBack) = tracker.delivered(p0, offset: 5)
    #expect(wentBack == 102)
    #expect(fresh !== old[0])
    #expect(tracker.outstanding == 1)
    // The cached old log refuses the lower offsets; acknowledgements from before count no more.
    #expect(!tracker.delivered(to: old[0], offset: 6))
    tracker.acknowledge(old[1], offset: 101, .done)
    #expect(tracker.takeStorable().isEmpty)
    #expect(tracker.delivered(to: fresh, offset: 6))
    tracker.acknowledge(fresh, offset: 6, .done)
    #expect(tracker.takeStorable().isEmpty)
    tracker.acknowledge(fresh, offset: 5, .done)
    #expect(tracker.takeStorable().map(\.1) == [7])
    #expect(tracker.outstanding == 0)
    // A repeated offset goes back too.
    #expect(tracker.delivered(p0, offset: 6).wentBack == 6)
  }

  @Test func longRunsCompactWithoutLosingPlace() {
    let tracker = OffsetTracker()
    tracker.assign([p0])
    var pending: [(PartitionLog, Int64)] = []
    for offset in Int64(0)..<20_000 {
      pending.append((tracker.delivered(p0, offset: offset).log, offset))
      if pending.count == 100 {
        // Acknowledge a window in reverse order.
        for (log, offset) in pending.reversed() { tracker.acknowledge(log, offset: offset, .done) }
        pending.removeAll()
      }
    }
    #expect(tracker.takeStorable().map(\.1) == [20_000])
    #expect(tracker.outstanding == 0)
  }
}
