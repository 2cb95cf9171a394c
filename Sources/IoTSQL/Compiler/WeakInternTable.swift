import Synchronization

/// Immutable objects by value, weakly held: `intern` gives an equal object some owner already holds
/// instead of a new copy, and an object lives only as long as its owners. Dead entries are swept
/// when the table has doubled since the last sweep.
struct WeakInternTable<Object: AnyObject & Hashable>: ~Copyable {
  private struct Entry {
    weak var object: Object?
  }
  private var buckets: [Int: [Entry]] = [:]
  private var entries = 0
  private var sweepAt = 64

  /// `object`, or an equal object already in the table.
  mutating func intern(_ object: Object) -> Object {
    let key = object.hashValue
    if let bucket = buckets[key] {
      for entry in bucket {
        if let existing = entry.object, existing == object { return existing }
      }
    }
    buckets[key, default: []].append(Entry(object: object))
    entries += 1
    if entries >= sweepAt {
      sweep()
      sweepAt = max(64, entries * 2)
    }
    return object
  }

  private mutating func sweep() {
    var kept: [Int: [Entry]] = [:]
    entries = 0
    for (key, bucket) in buckets {
      let live = bucket.filter { $0.object != nil }
      if !live.isEmpty {
        kept[key] = live
        entries += live.count
      }
    }
    buckets = kept
  }
}
