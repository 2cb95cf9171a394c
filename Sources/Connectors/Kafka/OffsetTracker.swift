import RulesEngine
import Synchronization

/// A topic and partition.
struct TopicPartition: Hashable, Sendable {
  var topic: String
  var partition: Int32
}

/// Tracks delivered offsets per partition and tells which offset may be stored: an offset is
/// storable only when its message and every earlier delivered message of that partition are done.
///
/// Acknowledgements arrive on any thread; the consumer thread takes the storable offsets. A partition
/// revoked and assigned again starts a new epoch: acknowledgements from the old one are ignored (the
/// new owner redelivers those messages). A `.failed` message blocks its partition: nothing at or after
/// it is stored until the partition is reassigned, so it is redelivered after a restart or rebalance.
final class OffsetTracker: Sendable {
  private struct Partition {
    var epoch: Int
    var offsets: [Int64] = []
    var done: [Bool] = []
    var head = 0
    var blocked = false
    /// The next offset to store (last contiguous done + 1), when it changed since taken.
    var storable: Int64?
  }

  private struct State {
    var partitions: [TopicPartition: Partition] = [:]
    var nextEpoch = 1
    var outstanding = 0
  }

  private let state = Mutex(State())

  /// Starts tracking `partitions` afresh (on assignment).
  func assign(_ partitions: [TopicPartition]) {
    state.withLock { state in
      for partition in partitions {
        if let old = state.partitions[partition] { state.outstanding -= old.offsets.count - old.head }
        state.partitions[partition] = Partition(epoch: state.nextEpoch)
        state.nextEpoch += 1
      }
    }
  }

  /// Stops tracking `partitions` (on revocation); returns their storable offsets to store first.
  func revoke(_ partitions: [TopicPartition]) -> [(TopicPartition, Int64)] {
    state.withLock { state in
      var result: [(TopicPartition, Int64)] = []
      for partition in partitions {
        guard let old = state.partitions.removeValue(forKey: partition) else { continue }
        state.outstanding -= old.offsets.count - old.head
        if let offset = old.storable { result.append((partition, offset)) }
      }
      return result
    }
  }

  /// Records a delivered message; returns the epoch to pass back with its acknowledgement.
  func delivered(_ partition: TopicPartition, offset: Int64) -> Int {
    state.withLock { state in
      if state.partitions[partition] == nil {
        // Consumed before the assignment was seen (should not happen); track it anyway.
        state.partitions[partition] = Partition(epoch: state.nextEpoch)
        state.nextEpoch += 1
      }
      state.partitions[partition]!.offsets.append(offset)
      state.partitions[partition]!.done.append(false)
      state.outstanding += 1
      return state.partitions[partition]!.epoch
    }
  }

  /// Records an acknowledgement.
  func acknowledge(_ partition: TopicPartition, offset: Int64, epoch: Int, _ acknowledgement: Acknowledgement)
  {
    state.withLock { state in
      guard var entry = state.partitions[partition], entry.epoch == epoch else { return }
      // Offsets of one partition are delivered in increasing order: binary search the live range.
      var low = entry.head
      var high = entry.offsets.count - 1
      var found: Int?
      while low <= high {
        let middle = (low + high) / 2
        if entry.offsets[middle] == offset {
          found = middle
          break
        } else if entry.offsets[middle] < offset {
          low = middle + 1
        } else {
          high = middle - 1
        }
      }
      guard let index = found, !entry.done[index] else { return }
      if acknowledgement == .failed { entry.blocked = true }
      entry.done[index] = true
      if !entry.blocked {
        while entry.head < entry.offsets.count && entry.done[entry.head] {
          entry.storable = entry.offsets[entry.head] + 1
          entry.head += 1
          state.outstanding -= 1
        }
        if entry.head > 4096 && entry.head * 2 > entry.offsets.count {
          entry.offsets.removeFirst(entry.head)
          entry.done.removeFirst(entry.head)
          entry.head = 0
        }
      }
      state.partitions[partition] = entry
    }
  }

  /// The offsets that became storable since the last call.
  func takeStorable() -> [(TopicPartition, Int64)] {
    state.withLock { state in
      var result: [(TopicPartition, Int64)] = []
      for key in state.partitions.keys {
        if let offset = state.partitions[key]!.storable {
          result.append((key, offset))
          state.partitions[key]!.storable = nil
        }
      }
      return result
    }
  }

  /// Delivered messages not yet acknowledged (or behind a failed one).
  var outstanding: Int { state.withLock { $0.outstanding } }
}
