/// A JSON object that keeps its members in insertion order, as AWS writes them back out.
///
/// Lookups are linear: IoT payloads have a handful of keys, and a linear scan over a small array beats
/// hashing. Setting an existing key replaces its value in place. What sets or compares many members
/// at once (``init(_:)``, ``merge(_:)``, `==`) hashes the keys beyond 16 members.
public struct OrderedObject: Sendable, Equatable {
  /// The keys, in order.
  public private(set) var keys: [String]
  /// The values, parallel to `keys`.
  public private(set) var values: [Value]

  /// An empty object.
  public init() {
    keys = []
    values = []
  }

  /// An object with the given members; a repeated key keeps its first position and its last value.
  /// Beyond 16 members the keys are found by hashing (an object literal of 10,000 keys took seconds).
  public init(_ members: [(String, Value)]) {
    self.init()
    keys.reserveCapacity(members.count)
    values.reserveCapacity(members.count)
    if members.count <= 16 {
      for (key, value) in members { self[key] = value }
      return
    }
    setHashing(members)
  }

  /// An object from parallel arrays whose keys the caller knows to be distinct (no lookups).
  init(distinctKeys keys: [String], values: [Value]) {
    self.keys = keys
    self.values = values
  }

  /// The number of members.
  public var count: Int { keys.count }

  /// True when there are no members.
  public var isEmpty: Bool { keys.isEmpty }

  /// The members, in order.
  public var members: Zip2Sequence<[String], [Value]> { zip(keys, values) }

  /// The value for `key`, or nil. Setting nil removes the member.
  public subscript(key: String) -> Value? {
    get {
      for index in keys.indices where Self.sameName(keys[index], key) { return values[index] }
      return nil
    }
    set {
      if let index = keys.firstIndex(where: { Self.sameName($0, key) }) {
        if let newValue {
          values[index] = newValue
        } else {
          keys.remove(at: index)
          values.remove(at: index)
        }
      } else if let newValue {
        keys.append(key)
        values.append(newValue)
      }
    }
  }

  /// Sets each member of `other` as the subscript would, in order: an existing key keeps its place
  /// and takes the new value, a new one is appended. Beyond 16 members in all, the keys are found by
  /// hashing once (`SELECT *, x` or `transform` over a payload of 16,000 keys took seconds a message).
  public mutating func merge(_ other: OrderedObject) {
    if keys.count + other.count <= 16 {
      for (key, value) in other.members { self[key] = value }
      return
    }
    reserveCapacity(keys.count + other.count)
    setHashing(other.members)
  }

  /// Sets each member as the subscript would, finding keys by hashing.
  private mutating func setHashing<Members: Sequence<(String, Value)>>(_ members: Members) {
    var positions = positionsByKey()
    for (key, value) in members {
      if let index = positions[MemberName(key)] {
        values[index] = value
      } else {
        positions[MemberName(key)] = keys.count
        keys.append(key)
        values.append(value)
      }
    }
  }

  /// Each key's position (the first, were a key repeated).
  func positionsByKey() -> [MemberName: Int] {
    var positions: [MemberName: Int] = [:]
    positions.reserveCapacity(keys.count)
    for (index, key) in keys.enumerated() where positions[MemberName(key)] == nil {
      positions[MemberName(key)] = index
    }
    return positions
  }

  /// True when two member names are the same: the same Unicode scalars, as JSON (RFC 8259, 8.3)
  /// and AWS's Java compare them. Swift's `==` on strings would also take canonically equivalent
  /// names as one (`é` and `e` + U+0301), merging two members of a payload.
  @inline(__always)
  public static func sameName(_ left: String, _ right: String) -> Bool {
    // The same two words are the same bytes (a small string holds them, a large one points at
    // them with its length): the usual hit, a name against the program's constant, costs no walk.
    if MemoryLayout<String>.size == 16,
      unsafeBitCast(left, to: (UInt64, UInt64).self) == unsafeBitCast(right, to: (UInt64, UInt64).self)
    {
      return true
    }
    return left.utf8.count == right.utf8.count && left.utf8.elementsEqual(right.utf8)
  }

  /// Replaces the value of the member at `index` (a position the caller found).
  mutating func replaceValue(at index: Int, with value: Value) {
    values[index] = value
  }

  /// Makes room for `capacity` members without reallocating.
  mutating func reserveCapacity(_ capacity: Int) {
    keys.reserveCapacity(capacity)
    values.reserveCapacity(capacity)
  }

  /// Appends a member without looking for an existing key (the caller knows it is new).
  public mutating func appendUnchecked(_ key: String, _ value: Value) {
    keys.append(key)
    values.append(value)
  }

  /// Objects are equal when they have the same keys and values, in any order (AWS's `=` on objects).
  public static func == (lhs: OrderedObject, rhs: OrderedObject) -> Bool {
    guard lhs.count == rhs.count else { return false }
    if lhs.count > 16 {
      // Hashed once: a lookup per key would make two objects of 16,000 keys take a second.
      let positions = rhs.positionsByKey()
      for (key, value) in lhs.members {
        guard let index = positions[MemberName(key)], rhs.values[index] == value else { return false }
      }
      return true
    }
    for (key, value) in lhs.members {
      guard let other = rhs[key], other == value else { return false }
    }
    return true
  }
}

extension OrderedObject: ExpressibleByDictionaryLiteral {
  /// An object from a literal, keys in the order written (a repeated key keeps its last value).
  public init(dictionaryLiteral elements: (String, Value)...) {
    self.init(elements)
  }
}

/// A member name as a dictionary key: equal and hashed by its UTF-8 bytes (see
/// ``OrderedObject/sameName(_:_:)``), where a `String` key would merge canonically equivalent names.
struct MemberName: Hashable {
  /// The name.
  let text: String

  init(_ text: String) { self.text = text }

  static func == (left: MemberName, right: MemberName) -> Bool {
    OrderedObject.sameName(left.text, right.text)
  }

  func hash(into hasher: inout Hasher) {
    var text = text
    text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
  }
}
