import Synchronization

/// Immutable objects by value, weakly held: `intern` gives an equal object some owner already holds
/// instead of a new copy, and an object lives only as long as its owners. Dead entries are swept
/// when the table has doubled since the last sweep.
struct WeakInternTable<Object: AnyObject & Hashable>: ~Copyable {
  private struct Entry {
    weak var object: Object?
  }
  /// One entry by hash: no array for each of 10,000 distinct objects.
  private var first: [Int: Entry] = [:]
  /// Further entries whose hash another object already has (rare).
  private var colliding: [Int: [Entry]] = [:]
  private var entries = 0
  private var sweepAt = 64

  /// `object`, or an equal object already in the table.
  mutating func intern(_ object: Object) -> Object {
    let key = object.hashValue
    if let existing = first[key]?.object, existing == object { return existing }
    for entry in colliding[key] ?? [] {
      if let other = entry.object, other == object { return other }
    }
    if first[key]?.object == nil {
      first[key] = Entry(object: object)
    } else {
      colliding[key, default: []].append(Entry(object: object))
    }
    entries += 1
    if entries >= sweepAt {
      sweep()
      sweepAt = max(64, entries * 2)
    }
    return object
  }

  private mutating func sweep() {
    first = first.filter { $0.value.object != nil }
    colliding = colliding.compactMapValues { bucket in
      let live = bucket.filter { $0.object != nil }
      return live.isEmpty ? nil : live
    }
    entries = first.count + colliding.values.reduce(0) { $0 + $1.count }
  }
}
