import RulesEngine
import Synchronization

/// A topic and partition.
struct TopicPartition: Hashable, Sendable {
  var topic: String
  var partition: Int32
}

/// The delivered offsets of one assigned partition. Its fields are read and written only under the
/// owning `OffsetTracker`'s lock; a message's acknowledgement holds its log directly, so the hot path
/// never looks a partition up by name.
final class PartitionLog: @unchecked Sendable {
  let partition: TopicPartition
  var offsets: [Int64] = []
  var done: [Bool] = []
  var head = 0
  /// A `.failed` message blocks the partition until it is assigned again: nothing more is recorded
  /// (the source pauses the partition; what it delivered meanwhile is redelivered after reassignment).
  var blocked = false
  /// Set when the partition is revoked (or assigned afresh): later acknowledgements are ignored.
  var retired = false
  /// The last offset delivered into this log.
  var lastOffset: Int64?
  /// The next offset to store (last contiguous done + 1), when it changed since taken.
  var storable: Int64?
  /// Whether this log is in the tracker's list of logs with a new storable offset.
  var listed = false

  init(_ partition: TopicPartition) { self.partition = partition }
}

/// Tracks delivered offsets per partition and tells which offset may be stored: an offset is
/// storable only when its message and every earlier delivered message of that partition are done.
///
/// Acknowledgements arrive on any thread; the consumer thread takes the storable offsets. A partition
/// revoked and assigned again gets a new log: acknowledgements to the old one are ignored (the new
/// owner redelivers those messages). A `.failed` message blocks its partition: nothing at or after
/// it is stored until the partition is reassigned, so it is redelivered after a restart or rebalance.
final class OffsetTracker: Sendable {
  private struct State {
    var partitions: [TopicPartition: PartitionLog] = [:]
    /// Logs whose storable offset moved since the last `takeStorable`.
    var changed: [PartitionLog] = []
    /// Logs blocked since the last `takeBlocked`.
    var blocked: [PartitionLog] = []
    var outstanding = 0
  }

  private let state = Mutex(State())

  /// Starts tracking `partitions` afresh (on assignment).
  func assign(_ partitions: [TopicPartition]) {
    state.withLock { state in
      for partition in partitions {
        if let old = state.partitions[partition] { Self.retire(old, &state) }
        state.partitions[partition] = PartitionLog(partition)
      }
    }
  }

  /// Stops tracking `partitions` (on revocation); returns their storable offsets to store first.
  func revoke(_ partitions: [TopicPartition]) -> [(TopicPartition, Int64)] {
    state.withLock { state in
      var result: [(TopicPartition, Int64)] = []
      for partition in partitions {
        guard let old = state.partitions.removeValue(forKey: partition) else { continue }
        if let offset = old.storable { result.append((partition, offset)) }
        Self.retire(old, &state)
      }
      return result
    }
  }

  private static func retire(_ log: PartitionLog, _ state: inout State) {
    if !log.blocked { state.outstanding -= log.offsets.count - log.head }
    log.retired = true
    log.storable = nil
  }

  /// Records a delivered message; returns the log to pass back with its acknowledgement. An offset
  /// at or below the partition's last one (the consumer went back: an offset reset after the log was
  /// truncated or the topic recreated, a seek) starts a fresh log: offsets in a log only increase,
  /// which its binary search and its storable offset rely on. The old log's outstanding messages
  /// then count no more (like a revocation), and `wentBack` says so, for the source to log. A blocked
  /// partition stays blocked: nothing of it is stored until it is assigned again.
  func delivered(_ partition: TopicPartition, offset: Int64) -> (log: PartitionLog, wentBack: Int64?) {
    state.withLock { state in
      var wentBack: Int64?
      if let existing = state.partitions[partition] {
        if let last = existing.lastOffset, offset <= last, !existing.blocked {
          wentBack = last
          Self.retire(existing, &state)
          state.partitions[partition] = PartitionLog(partition)
        }
      } else {
        // Consumed before the assignment was seen (should not happen); track it anyway.
        state.partitions[partition] = PartitionLog(partition)
      }
      let log = state.partitions[partition]!
      Self.append(offset, to: log, &state)
      return (log, wentBack)
    }
  }

  private static func append(_ offset: Int64, to log: PartitionLog, _ state: inout State) {
    log.lastOffset = offset
    // A blocked partition stores nothing more, so what it delivers needs no record: it is
    // redelivered after reassignment (and memory does not grow while it stays blocked).
    guard !log.blocked else { return }
    log.offsets.append(offset)
    log.done.append(false)
    state.outstanding += 1
  }

  /// Records a delivered message in `log` when that log is still the partition's current one and
  /// the offset is past its last; returns false, recording nothing, otherwise (a rebalance retired
  /// the log, or the consumer went back: see `delivered(_:offset:)`).
  func delivered(to log: PartitionLog, offset: Int64) -> Bool {
    state.withLock { state in
      guard !log.retired, offset > (log.lastOffset ?? -1) else { return false }
      Self.append(offset, to: log, &state)
      return true
    }
  }

  /// How many of these messages' logs (one entry a message) still await acknowledgements: not
  /// retired, not blocked (the messages `outstanding` counts).
  func countAwaited(_ logs: [PartitionLog]) -> Int {
    state.withLock { _ in logs.reduce(0) { $0 + ($1.retired || $1.blocked ? 0 : 1) } }
  }

  /// How many delivered messages of `partitions` are not done yet (a blocked partition's none).
  func awaited(in partitions: Set<TopicPartition>) -> Int {
    state.withLock { state in
      partitions.reduce(0) { sum, partition in
        guard let log = state.partitions[partition], !log.blocked else { return sum }
        return sum + log.done[log.head...].lazy.filter { !$0 }.count
      }
    }
  }

  /// Whether a rebalance (or a partition going back) retired `log`.
  func isRetired(_ log: PartitionLog) -> Bool { state.withLock { _ in log.retired } }

  /// Records an acknowledgement.
  func acknowledge(_ log: PartitionLog, offset: Int64, _ acknowledgement: Acknowledgement) {
    state.withLock { state in
      guard !log.retired, !log.blocked else { return }
      // Offsets of one partition are delivered in increasing order: binary search the live range.
      var low = log.head
      var high = log.offsets.count - 1
      var found: Int?
      while low <= high {
        let middle = (low + high) / 2
        if log.offsets[middle] == offset {
          found = middle
          break
        } else if log.offsets[middle] < offset {
          low = middle + 1
        } else {
          high = middle - 1
        }
      }
      guard let index = found, !log.done[index] else { return }
      if acknowledgement == .failed {
        // Nothing at or after this offset is stored; the rest of the log is no longer waited for.
        log.blocked = true
        state.outstanding -= log.offsets.count - log.head
        log.offsets = []
        log.done = []
        log.head = 0
        state.blocked.append(log)
        return
      }
      log.done[index] = true
      let before = log.head
      while log.head < log.offsets.count && log.done[log.head] {
        log.head += 1
      }
      guard log.head > before else { return }
      state.outstanding -= log.head - before
      log.storable = log.offsets[log.head - 1] + 1
      if !log.listed {
        log.listed = true
        state.changed.append(log)
      }
      if log.head > 4096 && log.head * 2 > log.offsets.count {
        log.offsets.removeFirst(log.head)
        log.done.removeFirst(log.head)
        log.head = 0
      }
    }
  }

  /// The offsets that became storable since the last call.
  func takeStorable() -> [(TopicPartition, Int64)] {
    state.withLock { state in
      guard !state.changed.isEmpty else { return [] }
      var result: [(TopicPartition, Int64)] = []
      for log in state.changed {
        log.listed = false
        if !log.retired, let offset = log.storable {
          result.append((log.partition, offset))
          log.storable = nil
        }
      }
      state.changed.removeAll(keepingCapacity: true)
      return result
    }
  }

  /// The partitions blocked by a `.failed` acknowledgement since the last call (the source pauses
  /// them), but those revoked (or assigned afresh) since: their block went with their log.
  func takeBlocked() -> [TopicPartition] {
    state.withLock { state in
      defer { state.blocked.removeAll() }
      return state.blocked.filter { !$0.retired }.map(\.partition)
    }
  }

  /// The most messages one partition may hold behind its oldest unfinished one before the source
  /// pauses (one message in long retries would otherwise let the log of the later ones, none of
  /// which can be committed, grow without bound: 3,000,000 of them were held behind one).
  static let longestWait = 250_000

  /// A partition whose log holds more than `limit` messages from its oldest unfinished one, with
  /// that message's offset; nil when none does.
  func waitingBehind(limit: Int = longestWait) -> (partition: TopicPartition, offset: Int64)? {
    state.withLock { state in
      for log in state.partitions.values where !log.blocked && log.offsets.count - log.head > limit {
        return (log.partition, log.offsets[log.head])
      }
      return nil
    }
  }

  /// Per partition, the offset of its oldest delivered message not yet done (partitions whose
  /// delivered messages are all done are absent), and the blocked partitions.
  func oldestUndone() -> (offsets: [TopicPartition: Int64], blocked: Set<TopicPartition>) {
    state.withLock { state in
      var offsets: [TopicPartition: Int64] = [:]
      var blocked: Set<TopicPartition> = []
      for (partition, log) in state.partitions {
        if log.blocked {
          blocked.insert(partition)
        } else if log.head < log.offsets.count {
          offsets[partition] = log.offsets[log.head]
        }
      }
      return (offsets, blocked)
    }
  }

  /// Delivered messages not yet acknowledged, on partitions that are not blocked (a blocked
  /// partition's messages are redelivered after reassignment: shutdown does not wait for them).
  var outstanding: Int { state.withLock { $0.outstanding } }

  /// Of the messages `outstanding` counts, those not acknowledged yet (the others were, but follow
  /// one of these in their partition, so their offsets cannot be stored either).
  var unacknowledged: Int {
    state.withLock { state in
      state.partitions.values.reduce(0) { total, log in
        log.retired || log.blocked ? total : total + log.done[log.head...].lazy.filter { !$0 }.count
      }
    }
  }
}
