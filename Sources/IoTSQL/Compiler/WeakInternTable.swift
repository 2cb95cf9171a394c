import Synchronization

/// An interned object and the handle its owners hold: the table references the handle weakly and
/// the handle holds the object strongly. The object itself is never weakly referenced, so retaining
/// it on a hot path (a read per message) takes the runtime's fast path; a weakly referenced object
/// moves its count to a side table, where every retain and release is a slower call.
final class Interned<Object: AnyObject & Sendable>: Sendable {
  /// The shared object.
  let value: Object

  init(_ value: Object) { self.value = value }
}

/// Immutable objects by value, weakly held: `intern` gives the handle of an equal object some owner
/// already holds instead of a new copy, and an object lives only as long as its owners. Dead entries
/// are swept when the table has doubled since the last sweep.
struct WeakInternTable<Object: AnyObject & Hashable & Sendable>: ~Copyable {
  private struct Entry {
    weak var handle: Interned<Object>?
  }
  /// One entry by hash: no array for each of 10,000 distinct objects.
  private var first: [Int: Entry] = [:]
  /// Further entries whose hash another object already has (rare).
  private var colliding: [Int: [Entry]] = [:]
  private var entries = 0
  private var sweepAt = 64

  /// The handle of `object`, or of an equal object already in the table.
  mutating func intern(_ object: Object) -> Interned<Object> {
    let key = object.hashValue
    if let existing = first[key]?.handle, existing.value == object { return existing }
    for entry in colliding[key] ?? [] {
      if let other = entry.handle, other.value == object { return other }
    }
    let handle = Interned(object)
    if first[key]?.handle == nil {
      first[key] = Entry(handle: handle)
    } else {
      colliding[key, default: []].append(Entry(handle: handle))
    }
    entries += 1
    if entries >= sweepAt {
      sweep()
      sweepAt = max(64, entries * 2)
    }
    return handle
  }

  private mutating func sweep() {
    first = first.filter { $0.value.handle != nil }
    colliding = colliding.compactMapValues { bucket in
      let live = bucket.filter { $0.handle != nil }
      return live.isEmpty ? nil : live
    }
    entries = first.count + colliding.values.reduce(0) { $0 + $1.count }
  }
}
