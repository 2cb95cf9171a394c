import Synchronization

/// A JSON syntax error, with the byte offset of the offending byte.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Byte offset into the input.
  public var offset: Int
  /// What is wrong: `unexpected byte 0x7d`, `lone surrogate`, `nesting deeper than 512`.
  public var message: String

  /// Creates an error.
  public init(offset: Int, message: String) {
    self.offset = offset
    self.message = message
  }

  /// `offset 17: unexpected byte 0x7d`.
  public var description: String { "offset \(offset): \(message)" }

  /// Whether the bytes follow JSON's grammar but are more than is read as JSON here: nesting past
  /// the limit, or a lone surrogate escape (`"\ud800"`). Such a payload is Binary, not a typo.
  public var isBeyondLimits: Bool {
    message.hasPrefix(Self.nestingPrefix) || message.hasPrefix(Self.loneSurrogatePrefix)
  }

  static let nestingPrefix = "nesting deeper than "
  static let loneSurrogatePrefix = "lone surrogate "
}

/// How numbers are read.
public struct JSONReadOptions: Sendable {
  /// Under 2016-03-23 a whole-number decimal (`10.0`) is read as an Int.
  public var wholeDecimalsAsInt: Bool
  /// The deepest nesting accepted (arrays and objects); deeper is an error, never a stack overflow.
  public var maxDepth: Int

  /// Creates options.
  public init(wholeDecimalsAsInt: Bool = true, maxDepth: Int = 512) {
    self.wholeDecimalsAsInt = wholeDecimalsAsInt
    self.maxDepth = maxDepth
  }

  /// The options for a SQL version.
  public static func `for`(_ version: SQLVersion) -> JSONReadOptions {
    JSONReadOptions(wholeDecimalsAsInt: version >= .v2016_03_23)
  }
}

/// What is known of a JSON payload's bytes before the VM reads them: a source that validated them
/// as part of a larger document (the replay's envelope) says whether they are exactly what the
/// writer gives for them, so `SELECT *` of a rule that reads no field passes them on without reading
/// them again. Numbers are read as 2016-03-23 reads them (`29.0` is the Int 29).
public enum PayloadForm: Sendable, Equatable {
  /// Not known: the VM reads the payload.
  case unknown
  /// Valid JSON spelled as the writer spells it: `SELECT *` passes the bytes on.
  case canonical
  /// Valid JSON spelled as the writer spells it but for whitespace between tokens and numbers it
  /// spells shorter (`29.0`, `21.50`).
  case respellsNumbers
}

/// The member paths a program reads from the payload, e.g. `["temp"]`, `["a", "b"]`.
public struct PathTable: Sendable, Equatable {
  /// The paths, each a chain of member names from the payload's root; the VM refers to them by index.
  public var paths: [[String]] {
    didSet {
      shared = PathNames.interned(paths)
      names = shared.value
      paths = names.paths
    }
  }
  /// The same names as bytes, for the reader's comparisons (derived from `paths`).
  private(set) var names: PathNames
  /// The handle that keeps `names` in the intern table.
  private var shared: Interned<PathNames>

  /// Creates a table.
  public init(paths: [[String]] = []) {
    let shared = PathNames.interned(paths)
    self.shared = shared
    self.names = shared.value
    self.paths = shared.value.paths
  }

  /// Tables are equal when their paths are.
  public static func == (lhs: PathTable, rhs: PathTable) -> Bool { lhs.paths == rhs.paths }
}

/// What a selective read found in a payload.
public struct PayloadView: Sendable {
  /// How the payload parsed.
  public enum Kind: Sendable, Equatable {
    /// A JSON object.
    case object
    /// Valid JSON that is not an object (an array, a number, a string...).
    case otherJSON
    /// Not valid JSON: a Binary value.
    case binary
  }

  /// The kind.
  public var kind: Kind
  /// One value per path of the table (`.undefined` when missing, or for any path of a non-object).
  public var values: [Value]
  /// The whole document, when it was asked for (`.binary(bytes)` for binary payloads).
  public var document: Value?
  /// True when writing `document` back out would give exactly the input bytes (compact, same
  /// number spellings, same escapes), so `SELECT *` may pass the bytes through; a number beyond
  /// `Decimal`'s range, which the document holds as the nearest value, is passed on as written.
  public var isCanonical: Bool
  /// True when the writer would reproduce the bytes but for whitespace between tokens (`{"a": 1}`)
  /// and numbers it spells shorter (`21.50`, `29.0`): `SELECT *` then writes the bytes without that
  /// whitespace and with those numbers respelled instead of building the document (see
  /// ``JSONReader/respellingNumbers(_:options:)``).
  public var respellsNumbers = false
  /// Why the payload is binary, for logs and the REPL.
  public var error: JSONError?
  /// Byte ranges (start, end per path; start -1 when none) of arrays and objects the reader
  /// validated but left for the VM to build when a path is loaded (`values` holds Undefined there).
  var deferredRanges: [Int] = []
  /// The paths whose deferred container was found canonical, and those found canonical but for
  /// numbers the writer spells shorter, when the read was asked to find out (see
  /// ``deferredForm(ofPath:)``).
  var deferredCanonical: UInt64 = 0
  var deferredRespelled: UInt64 = 0

  /// What the read found out about the form of the container deferred at path `index`: known only
  /// when the read was asked (``JSONReader/readDeferringContainers(_:paths:options:findingForms:into:)``)
  /// and read numbers as 2016-03-23 does.
  public func deferredForm(ofPath index: Int) -> PayloadForm {
    guard index < 64 else { return .unknown }
    if deferredCanonical & (1 << UInt64(index)) != 0 { return .canonical }
    if deferredRespelled & (1 << UInt64(index)) != 0 { return .respellsNumbers }
    return .unknown
  }

  /// The byte range of the array or object at path `index`, when the read deferred it (see
  /// ``JSONReader/readDeferringContainers(_:paths:options:into:)``); nil otherwise.
  public func deferredRange(ofPath index: Int) -> Range<Int>? {
    guard 2 * index + 1 < deferredRanges.count, deferredRanges[2 * index] >= 0 else { return nil }
    return deferredRanges[2 * index]..<deferredRanges[2 * index + 1]
  }

  /// Resets what a read finds out, leaving the arrays to the reader (which resets their elements in
  /// place when the path count is the same).
  mutating func reset() {
    kind = .otherJSON
    document = nil
    isCanonical = false
    respellsNumbers = false
    error = nil
    deferredCanonical = 0
    deferredRespelled = 0
  }

  /// Empties the view, keeping its arrays' storage.
  mutating func clear() {
    reset()
    if !values.isEmpty { values.removeAll(keepingCapacity: true) }
    if !deferredRanges.isEmpty { deferredRanges.removeAll(keepingCapacity: true) }
  }

  /// Makes the view that of a payload that is not JSON: every path Undefined.
  mutating func setBinary(count: Int, error: JSONError) {
    clear()
    kind = .binary
    values.append(contentsOf: repeatElement(.undefined, count: count))
    self.error = error
  }

  /// Creates a view.
  public init(kind: Kind, values: [Value], document: Value?, isCanonical: Bool, error: JSONError?) {
    self.kind = kind
    self.values = values
    self.document = document
    self.isCanonical = isCanonical
    self.error = error
  }
}

/// A path table's paths with their member names as UTF-8 bytes in one buffer, so the reader compares
/// a payload's member name with a path's without touching `String`. Immutable and shared: a read
/// holds one reference, not one per array.
final class PathNames: Sendable, Hashable {
  /// The paths.
  let paths: [[String]]
  /// Every name's bytes, one after the other.
  let bytes: [UInt8]
  /// Per path, the index of its first name in `spans`.
  let firsts: [Int]
  /// Per path, its number of names.
  let counts: [Int]
  /// Per name, its offset in `bytes` and its length.
  let spans: [Int]
  /// True when the selective scan can track the paths: at most 64, none empty.
  let trackable: Bool
  /// One bit per (level, length, first byte) of the paths' names (``filterBit(level:first:length:)``):
  /// a member name whose bit is clear is no path's name at its level, found without comparing it.
  let nameFilter: UInt64

  /// The table without paths.
  static let empty = PathNames([])

  init(_ paths: [[String]]) {
    var bytes: [UInt8] = []
    var firsts: [Int] = []
    var counts: [Int] = []
    var spans: [Int] = []
    for path in paths {
      firsts.append(spans.count / 2)
      counts.append(path.count)
      for name in path {
        spans.append(bytes.count)
        spans.append(name.utf8.count)
        bytes.append(contentsOf: name.utf8)
      }
    }
    self.paths = paths
    (self.bytes, self.firsts, self.counts, self.spans) = (
      bytes.compacted(), firsts.compacted(), counts.compacted(), spans.compacted()
    )
    trackable = paths.count <= 64 && !paths.contains(where: \.isEmpty)
    var filter: UInt64 = 0
    for path in paths {
      for (level, name) in path.enumerated() {
        filter |= Self.filterBit(level: level, first: name.utf8.first ?? 0, length: name.utf8.count)
      }
    }
    nameFilter = filter
    (table, endsAt) = Self.indexNames(
      trackable: trackable, counts: self.counts, firsts: self.firsts, spans: self.spans, bytes: self.bytes)
  }

  /// One distinct (level, name) of the paths: the paths whose `level`-th name it is.
  struct NameEntry: Sendable {
    /// `nameHash(level, name)`; 0 marks an empty slot.
    var hash: UInt64 = 0
    var level: Int32 = 0
    var offset: Int32 = 0
    var length: Int32 = 0
    var mask: UInt64 = 0
  }

  /// Open-addressed (level, name) → paths, a power of two in size, at most half full.
  let table: [NameEntry]
  /// Per level, the paths that end there.
  let endsAt: [UInt64]

  /// A hash of the level, the length and at most the first and last eight bytes of the name (two
  /// loads, not a multiply per byte); never 0. Names that differ only in their middle share a hash:
  /// the table compares the bytes of every candidate anyway.
  @inline(__always)
  static func nameHash(level: Int, _ name: UnsafePointer<UInt8>, _ length: Int) -> UInt64 {
    let raw = UnsafeRawPointer(name)
    let head: UInt64
    let tail: UInt64
    if length >= 8 {
      head = raw.loadUnaligned(as: UInt64.self)
      tail = raw.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
    } else if length >= 4 {
      head = UInt64(raw.loadUnaligned(as: UInt32.self))
      tail = UInt64(raw.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
    } else if length > 0 {
      head = UInt64(name[0]) | UInt64(name[length >> 1]) << 8
      tail = UInt64(name[length - 1])
    } else {
      head = 0
      tail = 0
    }
    var hash =
      (head ^ UInt64(truncatingIfNeeded: length) << 56 ^ UInt64(truncatingIfNeeded: level) << 48)
      &* 0x9E37_79B9_7F4A_7C15
    hash = (hash ^ hash >> 29 ^ tail) &* 0xBF58_476D_1CE4_E5B9
    return (hash ^ hash >> 32) | 1
  }

  /// The bit of ``nameFilter`` for a name of `length` bytes at `level` whose first byte is `first`
  /// (0 for an empty name).
  @inline(__always)
  static func filterBit(level: Int, first: UInt8, length: Int) -> UInt64 {
    let mixed =
      UInt64(first) &+ UInt64(truncatingIfNeeded: length) &* 5 &+ UInt64(truncatingIfNeeded: level) &* 23
    return 1 << (mixed & 63)
  }

  /// Up to this many paths, `matches` compares names one by one.
  static let linearLimit = 4

  /// Builds `table` and `endsAt` (trackable tables of more than `linearLimit` paths).
  private static func indexNames(trackable: Bool, counts: [Int], firsts: [Int], spans: [Int], bytes: [UInt8])
    -> ([NameEntry], [UInt64])
  {
    // A few paths are compared one by one: no table (it would cost more memory than it saves time).
    guard trackable, counts.count > linearLimit else { return ([], []) }
    let depth = counts.max() ?? 0
    var endsAt = [UInt64](repeating: 0, count: depth)
    var size = 4
    while size < spans.count { size *= 2 }
    var table = [NameEntry](repeating: NameEntry(), count: size)
    bytes.withUnsafeBufferPointer { utf8 in
      let base = utf8.baseAddress ?? UnsafePointer(bitPattern: 1)!
      for path in 0..<counts.count {
        endsAt[counts[path] - 1] |= 1 << UInt64(path)
        for level in 0..<counts[path] {
          let offset = spans[2 * (firsts[path] + level)]
          let length = spans[2 * (firsts[path] + level) + 1]
          let hash = nameHash(level: level, base + offset, length)
          var slot = Int(hash & UInt64(size - 1))
          while table[slot].hash != 0 {
            let entry = table[slot]
            if entry.hash == hash, Int(entry.level) == level, Int(entry.length) == length,
              JSONScanner.equal(base + Int(entry.offset), base + offset, length)
            {
              break
            }
            slot = (slot + 1) & (size - 1)
          }
          if table[slot].hash == 0 {
            table[slot] = NameEntry(
              hash: hash, level: Int32(level), offset: Int32(offset), length: Int32(length), mask: 0)
          }
          table[slot].mask |= 1 << UInt64(path)
        }
      }
    }
    return (table, endsAt)
  }

  /// Of the paths in `mask` (which share their first `level` names), those whose `level`-th name
  /// is the `length` bytes at `name`: the ones that end with it and the ones that go on. Beyond
  /// `linearLimit` paths, one hash and one comparison, whatever the number of paths.
  @inline(__always)
  func matches(_ name: UnsafePointer<UInt8>, _ length: Int, level: Int, mask: UInt64) -> (
    ending: UInt64, continuing: UInt64
  ) {
    if nameFilter & Self.filterBit(level: level, first: length > 0 ? name[0] : 0, length: length) == 0 {
      return (0, 0)
    }
    if table.isEmpty {
      return bytes.withUnsafeBufferPointer { utf8 -> (UInt64, UInt64) in
        var ending: UInt64 = 0
        var continuing: UInt64 = 0
        var bits = mask
        while bits != 0 {
          let index = bits.trailingZeroBitCount
          bits &= bits - 1
          let entry = 2 * (firsts[index] + level)
          if spans[entry + 1] == length,
            length == 0 || JSONScanner.equal(utf8.baseAddress! + spans[entry], name, length)
          {
            if counts[index] == level + 1 {
              ending |= 1 << UInt64(index)
            } else {
              continuing |= 1 << UInt64(index)
            }
          }
        }
        return (ending, continuing)
      }
    }
    let hash = Self.nameHash(level: level, name, length)
    return table.withUnsafeBufferPointer { table -> (UInt64, UInt64) in
      let sizeMask = table.count - 1
      var slot = Int(truncatingIfNeeded: hash & UInt64(sizeMask))
      while true {
        let entry = table[slot]
        if entry.hash == 0 { return (0, 0) }
        if entry.hash == hash, Int(entry.level) == level, Int(entry.length) == length {
          let equal = bytes.withUnsafeBufferPointer { utf8 in
            length == 0 || JSONScanner.equal(utf8.baseAddress! + Int(entry.offset), name, length)
          }
          if equal {
            let found = entry.mask & mask
            let ends = endsAt[level]
            return (found & ends, found & ~ends)
          }
        }
        slot = (slot + 1) & sizeMask
      }
    }
  }

  static func == (lhs: PathNames, rhs: PathNames) -> Bool { lhs.paths == rhs.paths }

  func hash(into hasher: inout Hasher) { hasher.combine(paths) }

  /// The names of `paths`, shared with every table of the same paths (rules that read the same
  /// fields, whatever else they do, keep one copy of their names).
  static func interned(_ paths: [[String]]) -> Interned<PathNames> {
    table.withLock { $0.intern(PathNames(paths)) }
  }

  private static let table = Mutex(WeakInternTable<PathNames>())
}
