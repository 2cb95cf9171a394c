import Foundation

/// The one pass behind ``JSONReader``: it validates a whole document byte by byte, materialises only
/// the values asked for, and finds out on the way whether the writer would reproduce the bytes.
///
/// It is iterative: nesting lives in small explicit stacks, so a deep document costs memory bounded by
/// `maxDepth`, never native stack. Three modes mix in one document:
/// - *skip*: validate only, allocate nothing;
/// - *track*: an object on the way to a requested path (always the root and some of its descendants);
///   its member names are compared with the paths' components;
/// - *build*: a value being materialised, with one frame per open array or object.
struct JSONScanner {
  /// What to do with the root value.
  enum RootMode {
    /// Materialise the whole document.
    case build
    /// Track the paths from the root object; skip everything else.
    case track
  }

  /// An open array or object being built.
  struct BuildFrame {
    var isObject: Bool
    var array: [Value] = []
    var object = OrderedObject()
    var pendingKey = ""
    /// Key → position, made once an object grows past a few members (duplicate detection).
    var positions: [MemberName: Int]? = nil
  }

  let base: UnsafePointer<UInt8>
  let count: Int
  let options: JSONReadOptions
  var pos = 0
  /// Still true when `JSONWriter.write` of the document would give exactly the input bytes.
  var canonical = true
  /// Set when more member names were open than `keyRecordCapacity`: duplicates may have been missed,
  /// so a true `canonical` must be confirmed by a building pass.
  var keyRecordsOverflowed = false
  /// Set (with `canonical` still true) when the writer would reproduce the bytes except for
  /// whitespace between tokens, which it writes none of (`{"a": 1}`, as Python's `json.dumps`
  /// writes by default), and numbers it spells shorter: a fraction's trailing zeros dropped
  /// (`21.50` → `21.5`), a whole decimal as its integer (`29.0` → `29`).
  /// ``JSONReader/respellingNumbers(_:options:)`` then gives the output.
  var respelled = false
  /// Set when a number beyond `Decimal`'s range was read as the nearest value it holds (see
  /// ``DecimalMath/saturated(negative:overflow:)``). Its spelling does not change `canonical`: the
  /// bytes, which keep the number as written, are what `SELECT *` should pass on.
  var saturated = false

  // Requested paths (at most 64, none empty) and what was found for them.
  let names: PathNames
  var values: [Value]
  var document: Value? = nil
  /// When set, an array or object that only ends paths is validated and skipped, and its byte range
  /// recorded in `deferredRanges` (start, end per path; -1 when none) for the VM to build on first use.
  var defersContainers = false
  var deferredRanges: [Int] = []
  /// Storage for `deferredRanges` a caller handed back from an earlier read (one allocation, kept).
  var spareRanges: [Int] = []
  var deferredMask: UInt64 = 0
  /// When set, the tight loop checks each container it defers for canonical spelling on its own
  /// and records the paths of those it finds so (`deferredCanonical`, or `deferredRespelled` when
  /// numbers need respelling); the general loop finds out nothing.
  var findsDeferredForms = false
  /// When set, the bytes are known to be valid JSON with no repeated member name (a source
  /// validated them: ``PayloadForm``), so the tight loop stops as soon as every path has its value:
  /// the rest needs no validating and cannot hold a later value for a path. Not with canonical checks.
  var stopsWhenFound = false
  /// The paths the tight loop has not met yet (with `stopsWhenFound`).
  var unresolved: UInt64 = 0
  /// Set when the tight loop stopped before the end (`stopsWhenFound`).
  var stoppedEarly = false
  var deferredCanonical: UInt64 = 0
  var deferredRespelled: UInt64 = 0
  var deferredStart = 0
  var deferredDepth = 0

  // Build state.
  var frames: [BuildFrame] = []
  /// The keys of the object `buildValue` built last, which the next object shares while its keys
  /// are the same.
  var lastKeys: [String] = []
  var targetIsRoot = false
  var targetMask: UInt64 = 0
  var targetLevel = 0

  /// A scanner of the whole document (no paths).
  init(base: UnsafePointer<UInt8>, count: Int, options: JSONReadOptions) {
    var values: [Value] = []
    self.init(base: base, count: count, options: options, names: .empty, reusing: &values)
  }

  /// A scanner whose `values` take over `buffer`'s storage (left empty), so a caller that hands the
  /// values back each time allocates them once.
  init(
    base: UnsafePointer<UInt8>, count: Int, options: JSONReadOptions, names: PathNames,
    checksCanonical: Bool = true, reusing buffer: inout [Value]
  ) {
    self.canonical = checksCanonical
    self.base = base
    self.count = count
    self.options = options
    self.names = names
    var values: [Value] = []
    swap(&values, &buffer)
    let pathCount = names.paths.count
    if values.count == pathCount {
      // The previous message's values, same table: reset in place.
      for index in 0..<pathCount { values[index] = .undefined }
    } else {
      values.removeAll(keepingCapacity: true)
      values.append(contentsOf: repeatElement(.undefined, count: pathCount))
    }
    self.values = values
  }

  // MARK: Errors

  func endError(_ what: String) -> JSONError {
    JSONError(offset: count, message: "unexpected end of input, \(what)")
  }

  func unexpected(_ what: String) -> JSONError {
    JSONError(offset: pos, message: "unexpected byte \(Self.hex(base[pos])), \(what)")
  }

  static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return "0x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
  }

  // MARK: The document

  /// Past a UTF-8 byte order mark at the start of the document. RFC 8259 (§8.1) lets a parser
  /// ignore one and the JVM's JSON readers (Jackson) do, so a device whose UTF-8 encoder writes one
  /// (.NET's `Encoding.UTF8`) sends JSON, not bytes. Such bytes are never the writer's: not canonical.
  @inline(__always) mutating func skipByteOrderMark() {
    guard pos == 0, count >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF else { return }
    pos = 3
    canonical = false
  }

  /// Scans the whole document: the root value, then nothing but whitespace.
  /// Returns true when the root is an object.
  mutating func scanDocument(mode: RootMode) throws(JSONError) -> Bool {
    skipByteOrderMark()
    // Each scratch buffer stays within the 1 KiB that `withUnsafeTemporaryAllocation` puts on the
    // stack: byte-sized depth entries (a key-record index is at most `keyRecordCapacity`), 32-bit
    // key records.
    let depthCapacity = max(0, min(options.maxDepth, count)) + 1
    return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: depthCapacity) {
      kinds throws(JSONError) -> Bool in
      try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: depthCapacity) {
        keyBases throws(JSONError) -> Bool in
        try withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * Self.keyRecordCapacity) {
          keyRecords throws(JSONError) -> Bool in
          if mode == .track, !names.paths.isEmpty {
            let initial = canonical
            if scanTrackedRoot(keyRecords: keyRecords.baseAddress!) { return true }
            // Rescan from the start with the general loop (it positions the errors).
            pos = 0
            canonical = initial
            skipByteOrderMark()
            respelled = false
            keyRecordsOverflowed = false
            deferredRanges = []
            deferredCanonical = 0
            deferredRespelled = 0
            for index in values.indices { values[index] = .undefined }
          }
          return try scan(
            mode: mode, kinds: kinds.baseAddress!, keyBases: keyBases.baseAddress!,
            keyRecords: keyRecords.baseAddress!)
        }
      }
    }
  }

  /// The common case in tight loops: a root object and the objects on the way to the requested
  /// paths. Member names are matched as they pass, the values that end paths materialised
  /// (containers validated and deferred, or built when the caller does not defer them), everything
  /// else skipped by ``Skipper``. Returns false, with state to reset, for anything it leaves to the
  /// general loop: a root that is not an object, escaped or non-ASCII member names, a member that
  /// both ends a path and leads to another, unusual skipped values, and every error.
  private mutating func scanTrackedRoot(keyRecords: UnsafeMutablePointer<UInt32>) -> Bool {
    var cursor = Skipper(
      base: base, count: count, p: pos, canonical: canonical, top: 0, keyRecords: keyRecords,
      wholeDecimalsAsInt: options.wholeDecimalsAsInt)
    cursor.skipSpace()
    guard cursor.p < count, base[cursor.p] == 0x7B else { return false }
    let all = names.paths.count == 64 ? UInt64.max : (1 << UInt64(names.paths.count)) - 1
    unresolved = all
    guard scanTrackedObject(&cursor, level: 0, mask: all, maxDepth: min(options.maxDepth, 64)) else {
      return false
    }
    if !stoppedEarly {
      cursor.skipSpace()
      guard cursor.p == count else { return false }
    }
    pos = cursor.p
    canonical = cursor.canonical
    respelled = cursor.respelled
    if cursor.overflowed { keyRecordsOverflowed = true }
    return true
  }

  /// The object at `cursor.p`, whose members' names are the `level`-th names of the paths in `mask`.
  private mutating func scanTrackedObject(
    _ cursor: inout Skipper, level: Int, mask: UInt64, maxDepth: Int
  ) -> Bool {
    guard cursor.depth < maxDepth else { return false }
    cursor.p += 1
    cursor.depth += 1
    cursor.objects |= 1 << UInt64(cursor.depth - 1)
    cursor.setKeyBase(cursor.top)
    cursor.skipSpace()
    guard cursor.p < count else { return false }
    if base[cursor.p] == 0x7D {
      cursor.p += 1
    } else {
      while true {
        let nameStart = cursor.p + 1
        guard cursor.skipMember() else { return false }
        cursor.skipSpace()
        guard cursor.p < count else { return false }
        let (ending, continuing) = names.matches(
          base + nameStart, cursor.nameLength, level: level, mask: mask)
        let byte = base[cursor.p]
        // The paths through this member start over (a repeated name keeps its last value).
        Self.forEachPath(in: ending | continuing) { index in
          values[index] = .undefined
          if !deferredRanges.isEmpty { deferredRanges[2 * index] = -1 }
        }
        deferredCanonical &= ~(ending | continuing)
        deferredRespelled &= ~(ending | continuing)
        if ending != 0 {
          guard continuing == 0 else { return false }
          if defersContainers, byte == 0x7B || byte == 0x5B {
            let start = cursor.p
            let (outerCanonical, outerRespelled) = (cursor.canonical, cursor.respelled)
            if findsDeferredForms {
              cursor.canonical = true
              cursor.respelled = false
            }
            guard cursor.run(maxDepth: maxDepth, stopDepth: cursor.depth) else { return false }
            if findsDeferredForms {
              if cursor.canonical, !cursor.overflowed {
                if cursor.respelled { deferredRespelled |= ending } else { deferredCanonical |= ending }
              }
              cursor.canonical = outerCanonical && cursor.canonical
              cursor.respelled = outerRespelled || cursor.respelled
            }
            if deferredRanges.isEmpty { startDeferredRanges() }
            let end = cursor.p
            Self.forEachPath(in: ending) { index in
              deferredRanges[2 * index] = start
              deferredRanges[2 * index + 1] = end
            }
          } else {
            // Materialised now by recursive descent (which keeps `canonical` up to date too).
            pos = cursor.p
            canonical = cursor.canonical
            respelled = cursor.respelled
            guard let value = buildValue(depth: cursor.depth) else { return false }
            cursor.p = pos
            cursor.canonical = canonical
            cursor.respelled = respelled
            Self.forEachPath(in: ending) { values[$0] = value }
          }
          unresolved &= ~ending
          if stopsWhenFound, unresolved == 0 {
            stoppedEarly = true
            return true
          }
        } else if continuing != 0, byte == 0x7B {
          guard scanTrackedObject(&cursor, level: level + 1, mask: continuing, maxDepth: maxDepth) else {
            return false
          }
          if stoppedEarly { return true }
        } else if byte == 0x22 {
          guard cursor.skipValueString() else { return false }
        } else if byte == 0x2D || byte &- 0x30 < 10 {
          guard cursor.skipNumber() else { return false }
        } else {
          guard cursor.run(maxDepth: maxDepth, stopDepth: cursor.depth) else { return false }
        }
        cursor.skipSpace()
        guard cursor.p < count else { return false }
        if base[cursor.p] == 0x2C {
          cursor.p += 1
          cursor.skipSpace()
          continue
        }
        guard base[cursor.p] == 0x7D else { return false }
        cursor.p += 1
        break
      }
    }
    cursor.top = cursor.keyBase()
    cursor.depth -= 1
    return true
  }

  /// Builds the whole document by recursive descent: the fast way for the common shapes (nesting up
  /// to 64, objects of up to 32 members). Returns nil, for the general loop to rescan, on anything
  /// else and on every error (so errors keep their positions). Validates as strictly as the general
  /// loop: strings and numbers go through the same scanners.
  mutating func buildDocument() -> Value? {
    skipByteOrderMark()
    guard let value = buildValue(depth: 0) else { return nil }
    skipWhitespace()
    return pos == count ? value : nil
  }

  /// Builds the value at `position` as ``buildDocument()`` builds one, or nil where it would.
  mutating func buildValue(at position: Int) -> Value? {
    pos = position
    return buildValue(depth: 0)
  }

  private mutating func buildValue(depth: Int) -> Value? {
    skipWhitespace()
    guard pos < count else { return nil }
    switch base[pos] {
    case 0x22:
      return (try? scanString(decode: true)).map { .string($0!) }
    case 0x2D, 0x30...0x39:
      return (try? scanNumber(materialize: true)) ?? nil
    case 0x74:
      return (try? scanLiteral("true")) != nil ? .bool(true) : nil
    case 0x66:
      return (try? scanLiteral("false")) != nil ? .bool(false) : nil
    case 0x6E:
      return (try? scanLiteral("null")) != nil ? .null : nil
    case 0x5B:
      guard depth < min(options.maxDepth, 64) else { return nil }
      pos += 1
      skipWhitespace()
      guard pos < count else { return nil }
      var elements: [Value] = []
      if base[pos] == 0x5D {
        pos += 1
        return .array(elements)
      }
      elements.reserveCapacity(4)
      while true {
        guard let element = buildValue(depth: depth + 1) else { return nil }
        elements.append(element)
        skipWhitespace()
        guard pos < count else { return nil }
        if base[pos] == 0x2C {
          pos += 1
        } else if base[pos] == 0x5D {
          pos += 1
          return .array(elements)
        } else {
          return nil
        }
      }
    case 0x7B:
      guard depth < min(options.maxDepth, 64) else { return nil }
      pos += 1
      skipWhitespace()
      guard pos < count else { return nil }
      var keys: [String] = []
      var values: [Value] = []
      if base[pos] == 0x7D {
        pos += 1
        return .object(OrderedObject(distinctKeys: keys, values: values))
      }
      values.reserveCapacity(4)
      // Objects in an array usually have the same keys in the same order: while this object's keys
      // are those of the last object built, it shares that one's key array instead of making its own.
      let shape = lastKeys
      var sharing = !shape.isEmpty
      if !sharing { keys.reserveCapacity(4) }
      while true {
        guard pos < count, base[pos] == 0x22, values.count < 32,
          let key = (try? scanString(decode: true)) ?? nil
        else { return nil }
        skipWhitespace()
        guard pos < count, base[pos] == 0x3A else { return nil }
        pos += 1
        guard let value = buildValue(depth: depth + 1) else { return nil }
        if sharing, values.count < shape.count, OrderedObject.sameName(shape[values.count], key) {
          values.append(value)
        } else {
          if sharing {
            keys = Array(shape[..<values.count])
            keys.reserveCapacity(4)
            sharing = false
          }
          // A repeated key keeps its first position and its last value.
          if let index = keys.firstIndex(where: { OrderedObject.sameName($0, key) }) {
            canonical = false
            values[index] = value
          } else {
            keys.append(key)
            values.append(value)
          }
        }
        skipWhitespace()
        guard pos < count else { return nil }
        if base[pos] == 0x2C {
          pos += 1
          skipWhitespace()
        } else if base[pos] == 0x7D {
          pos += 1
          if sharing {
            if values.count == shape.count {
              return .object(OrderedObject(distinctKeys: shape, values: values))
            }
            keys = Array(shape[..<values.count])
          }
          lastKeys = keys
          return .object(OrderedObject(distinctKeys: keys, values: values))
        } else {
          return nil
        }
      }
    default:
      return nil
    }
  }

  /// The duplicate check of an object that is not built: true when the `length`-byte name at `name`
  /// (at `offset` in the document) repeats one of `keyRecords[first..<top]`, the names the object
  /// has had so far. The name is then recorded above them, or `overflowed` set when there is no room.
  @inline(__always)
  static func recordName(
    _ name: UnsafePointer<UInt8>, _ length: Int, offset: Int, keyRecords: UnsafeMutablePointer<UInt32>,
    first: Int, top: inout Int, overflowed: inout Bool
  ) -> Bool {
    let base = name - offset
    var repeated = false
    var index = first
    while index < top {
      if Int(keyRecords[2 * index + 1]) == length, equal(base + Int(keyRecords[2 * index]), name, length) {
        repeated = true
        break
      }
      index += 1
    }
    if top < keyRecordCapacity, offset + length <= Int(UInt32.max) {
      keyRecords[2 * top] = UInt32(truncatingIfNeeded: offset)
      keyRecords[2 * top + 1] = UInt32(truncatingIfNeeded: length)
      top += 1
    } else {
      overflowed = true
    }
    return repeated
  }

  /// Calls `body` with the index of every set bit of `mask` (a set of paths), lowest first.
  @inline(__always)
  static func forEachPath(in mask: UInt64, _ body: (Int) -> Void) {
    var bits = mask
    while bits != 0 {
      body(bits.trailingZeroBitCount)
      bits &= bits - 1
    }
  }

  /// How many member names of open, unbuilt objects are remembered to detect duplicates; beyond
  /// that, ``keyRecordsOverflowed`` is set.
  static let keyRecordCapacity = 128

  private mutating func scan(
    mode: RootMode, kinds: UnsafeMutablePointer<UInt8>, keyBases: UnsafeMutablePointer<UInt8>,
    keyRecords: UnsafeMutablePointer<UInt32>
  ) throws(JSONError) -> Bool {
    let objectKind: UInt8 = 1
    var depth = 0
    // Tracked objects are the outermost `trackDepth` open containers; their path masks.
    var trackDepth = 0
    var trackMasks: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
      0, 0, 0, 0, 0, 0, 0, 0
    )
    var deepTrackMasks: [UInt64] = []
    // The paths that continue through the member value about to be scanned, and its level.
    var pendingMask: UInt64 = 0
    var pendingLevel = 0
    var keyTop = 0
    var rootIsObject = false
    var skipped = false

    func setTrackMask(_ level: Int, _ mask: UInt64) {
      switch level {
      case 0: trackMasks.0 = mask
      case 1: trackMasks.1 = mask
      case 2: trackMasks.2 = mask
      case 3: trackMasks.3 = mask
      case 4: trackMasks.4 = mask
      case 5: trackMasks.5 = mask
      case 6: trackMasks.6 = mask
      case 7: trackMasks.7 = mask
      default:
        while deepTrackMasks.count <= level - 8 { deepTrackMasks.append(0) }
        deepTrackMasks[level - 8] = mask
      }
    }
    func trackMask(_ level: Int) -> UInt64 {
      switch level {
      case 0: trackMasks.0
      case 1: trackMasks.1
      case 2: trackMasks.2
      case 3: trackMasks.3
      case 4: trackMasks.4
      case 5: trackMasks.5
      case 6: trackMasks.6
      case 7: trackMasks.7
      default: deepTrackMasks[level - 8]
      }
    }

    if mode == .build { targetIsRoot = true }
    skipWhitespace()
    if pos < count, base[pos] == 0x7B { rootIsObject = true }

    // Each turn scans one value, then the separators and closing brackets after it.
    while true {
      skipWhitespace()
      guard pos < count else { throw endError("expected a value") }
      let byte = base[pos]

      // Decide what this value is for.
      let building = !frames.isEmpty || (depth == 0 && mode == .build)
      var startBuild = false
      var pushTracked: UInt64 = 0
      if !building {
        if pendingMask != 0 {
          var endsHere: UInt64 = 0
          Self.forEachPath(in: pendingMask) { index in
            if names.counts[index] == pendingLevel + 1 { endsHere |= 1 << UInt64(index) }
          }
          if defersContainers, endsHere == pendingMask, byte == 0x7B || byte == 0x5B {
            deferredMask = pendingMask
            deferredStart = pos
            deferredDepth = depth
          } else if endsHere != 0 {
            startBuild = true
            targetMask = pendingMask
            targetLevel = pendingLevel
          } else if byte == 0x7B {
            pushTracked = pendingMask
          }
          pendingMask = 0
        } else if depth == 0, mode == .track, byte == 0x7B, !names.paths.isEmpty {
          pushTracked = names.paths.count == 64 ? UInt64.max : (1 << UInt64(names.paths.count)) - 1
        }
      }
      let materialize = building || startBuild

      // A value nothing asks for: validated by the tight loop of `skipValue`, which leaves to
      // this loop only what it does not handle (and every error, which this loop then positions).
      if !materialize, pushTracked == 0,
        Self.skipValue(
          base: base, count: count, pos: &pos, canonical: &canonical, respelled: &respelled,
          overflowed: &keyRecordsOverflowed, maxDepth: min(options.maxDepth - depth, 64),
          keyRecords: keyRecords, keyTop: keyTop,
          wholeDecimalsAsInt: options.wholeDecimalsAsInt)
      {
        if deferredMask != 0, depth == deferredDepth { recordDeferred() }
        if depth == 0 {
          skipWhitespace()
          if pos < count { throw unexpected("after the end of the document") }
          return rootIsObject
        }
        skipped = true
      }

      var closeNow = false
      if !skipped {
        switch byte {
        case 0x7B, 0x5B:  // { [
          let isObject = byte == 0x7B
          guard depth < options.maxDepth else {
            throw JSONError(offset: pos, message: JSONError.nestingPrefix + "\(options.maxDepth)")
          }
          depth += 1
          kinds[depth] = isObject ? objectKind : 0
          if materialize {
            if frames.isEmpty { frames.reserveCapacity(8) }
            frames.append(BuildFrame(isObject: isObject))
          } else if pushTracked != 0 {
            setTrackMask(trackDepth, pushTracked)
            trackDepth += 1
          }
          if isObject { keyBases[depth] = UInt8(truncatingIfNeeded: keyTop) }
          pos += 1
          skipWhitespace()
          guard pos < count else {
            throw endError(isObject ? "expected a member name or '}'" : "expected a value or ']'")
          }
          if base[pos] == (isObject ? 0x7D : 0x5D) {
            closeNow = true
          } else if isObject {
            let level = trackDepth == depth ? trackDepth - 1 : -1
            (pendingMask, pendingLevel) = try scanMember(
              level: level, mask: level >= 0 ? trackMask(level) : 0, keyRecords: keyRecords,
              keyBase: Int(keyBases[depth]), keyTop: &keyTop)
            continue
          } else {
            continue
          }
        case 0x22:
          if materialize {
            let string = try scanString(decode: true)
            try deliver(.string(string!))
          } else {
            _ = try scanString(decode: false)
          }
        case 0x2D, 0x30...0x39:
          let value = try scanNumber(materialize: materialize)
          if materialize { try deliver(value!) }
        case 0x74:
          try scanLiteral("true")
          if materialize { try deliver(.bool(true)) }
        case 0x66:
          try scanLiteral("false")
          if materialize { try deliver(.bool(false)) }
        case 0x6E:
          try scanLiteral("null")
          if materialize { try deliver(.null) }
        default:
          throw unexpected("expected a value")
        }
      }
      skipped = false

      // After a value: separators and closers, until the next value starts or the document ends.
      while true {
        if !closeNow {
          if depth == 0 {
            skipWhitespace()
            if pos < count { throw unexpected("after the end of the document") }
            return rootIsObject
          }
          skipWhitespace()
          guard pos < count else {
            throw endError(kinds[depth] == objectKind ? "expected ',' or '}'" : "expected ',' or ']'")
          }
        }
        let next = base[pos]
        let isObject = kinds[depth] == objectKind
        if !closeNow, next == 0x2C {
          pos += 1
          if isObject {
            skipWhitespace()
            guard pos < count else { throw endError("expected a member name") }
            let level = trackDepth == depth && frames.isEmpty ? trackDepth - 1 : -1
            (pendingMask, pendingLevel) = try scanMember(
              level: level, mask: level >= 0 ? trackMask(level) : 0, keyRecords: keyRecords,
              keyBase: Int(keyBases[depth]), keyTop: &keyTop)
          }
          break
        }
        if closeNow || next == (isObject ? 0x7D : 0x5D) {
          closeNow = false
          pos += 1
          if isObject { keyTop = Int(keyBases[depth]) }
          depth -= 1
          if !frames.isEmpty {
            let frame = frames.removeLast()
            try deliver(frame.isObject ? .object(frame.object) : .array(frame.array))
          } else if trackDepth > depth {
            trackDepth = depth
          }
          if deferredMask != 0, depth == deferredDepth { recordDeferred() }
          continue
        }
        throw unexpected(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
      }
    }
  }

  /// Validates the value at `pos` that nothing asks for and moves past it, with its state in
  /// locals and strings read eight bytes at a time. It handles the common shapes only: plain ASCII
  /// strings, numbers whose canonical spelling is settled without building them, nesting up to
  /// `maxDepth` (at most 64). For anything else, including every error, it returns false and leaves
  /// `pos`, `canonical` and `overflowed` as they were, for the general loop to scan the value.
  ///
  /// Like the general loop it keeps `canonical` (whitespace, duplicate member names) up to date;
  /// member names go on `keyRecords` above `keyTop` while their object is open.
  static func skipValue(
    base: UnsafePointer<UInt8>, count: Int, pos: inout Int, canonical: inout Bool, respelled: inout Bool,
    overflowed: inout Bool, maxDepth: Int, keyRecords: UnsafeMutablePointer<UInt32>, keyTop: Int,
    wholeDecimalsAsInt: Bool
  ) -> Bool {
    var skipper = Skipper(
      base: base, count: count, p: pos, canonical: canonical, top: keyTop, keyRecords: keyRecords,
      wholeDecimalsAsInt: wholeDecimalsAsInt)
    guard skipper.run(maxDepth: maxDepth) else { return false }
    pos = skipper.p
    canonical = skipper.canonical
    if skipper.respelled { respelled = true }
    if skipper.overflowed { overflowed = true }
    return true
  }

  /// The state of one ``skipValue(base:count:pos:canonical:respelled:overflowed:maxDepth:keyRecords:keyTop:wholeDecimalsAsInt:)``.
  private struct Skipper {
    let base: UnsafePointer<UInt8>
    let count: Int
    var p: Int
    var canonical: Bool
    /// See ``JSONScanner/respelled``.
    var respelled = false
    var top: Int
    let keyRecords: UnsafeMutablePointer<UInt32>
    var overflowed = false
    /// Whole decimals read as Int (2016-03-23): `10.0` is then never spelled as written.
    let wholeDecimalsAsInt: Bool
    /// The length of the member name `skipMember` read last.
    var nameLength = 0
    var depth = 0
    /// Bit d: the container at local depth d + 1 is an object.
    var objects: UInt64 = 0
    /// Each open object's first key record, 8 bits per level (a record index is below 128).
    var keyBases: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    init(
      base: UnsafePointer<UInt8>, count: Int, p: Int, canonical: Bool, top: Int,
      keyRecords: UnsafeMutablePointer<UInt32>, wholeDecimalsAsInt: Bool
    ) {
      self.wholeDecimalsAsInt = wholeDecimalsAsInt
      self.base = base
      self.count = count
      self.p = p
      self.canonical = canonical
      self.top = top
      self.keyRecords = keyRecords
    }

    @inline(always) mutating func skipSpace() {
      while p < count {
        let byte = base[p]
        guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
        // The writer writes none: its spelling is these bytes without it (see `respelled`).
        respelled = true
        p += 1
      }
    }

    /// Past a plain ASCII string whose opening quote is at `p`; false for escapes, control
    /// characters, non-ASCII bytes or a missing end.
    @inline(always) mutating func skipString() -> Bool {
      p = JSONScanner.plainASCIIEnd(base, from: p + 1, count: count)
      if p + 8 <= count {
        // A special byte within the eight-byte run: the string ends here only at a quote.
        guard base[p] == 0x22 else { return false }
        p += 1
        return true
      }
      while p < count {
        let byte = base[p]
        if byte == 0x22 {
          p += 1
          return true
        }
        guard byte >= 0x20, byte < 0x80, byte != 0x5C else { return false }
        p += 1
      }
      return false
    }

    /// Past the string value whose opening quote is at `p`: plain ASCII in the tight loop, escapes
    /// and UTF-8 through the general validator. False only when the string is not valid.
    @inline(always) mutating func skipValueString() -> Bool {
      let start = p
      return skipString() || skipStringSlowly(from: start)
    }

    @inline(never) mutating func skipStringSlowly(from start: Int) -> Bool {
      var values: [Value] = []
      var scanner = JSONScanner(
        base: base, count: count, options: JSONReadOptions(), names: .empty, checksCanonical: canonical,
        reusing: &values)
      scanner.pos = start
      guard (try? scanner.scanStringEscapes()) != nil else { return false }
      p = scanner.pos
      canonical = scanner.canonical
      return true
    }

    /// Sets the key base of the object at `depth` (levels 1...64, 8 to a word).
    @inline(always) mutating func setKeyBase(_ value: Int) {
      let level = depth - 1
      let shift = UInt64((level & 7) * 8)
      let mask: UInt64 = ~(0xFF << shift)
      let bits = UInt64(value) << shift
      switch level >> 3 {
      case 0: keyBases.0 = keyBases.0 & mask | bits
      case 1: keyBases.1 = keyBases.1 & mask | bits
      case 2: keyBases.2 = keyBases.2 & mask | bits
      case 3: keyBases.3 = keyBases.3 & mask | bits
      case 4: keyBases.4 = keyBases.4 & mask | bits
      case 5: keyBases.5 = keyBases.5 & mask | bits
      case 6: keyBases.6 = keyBases.6 & mask | bits
      default: keyBases.7 = keyBases.7 & mask | bits
      }
    }

    @inline(always) func keyBase() -> Int {
      let level = depth - 1
      let word: UInt64
      switch level >> 3 {
      case 0: word = keyBases.0
      case 1: word = keyBases.1
      case 2: word = keyBases.2
      case 3: word = keyBases.3
      case 4: word = keyBases.4
      case 5: word = keyBases.5
      case 6: word = keyBases.6
      default: word = keyBases.7
      }
      return Int((word >> UInt64((level & 7) * 8)) & 0xFF)
    }

    /// A member name and its colon at `p`, recorded for the duplicate check while canonical.
    @inline(always) mutating func skipMember() -> Bool {
      guard p < count, base[p] == 0x22 else { return false }
      let start = p + 1
      guard skipString() else { return false }
      nameLength = p - 1 - start
      if canonical,
        JSONScanner.recordName(
          base + start, nameLength, offset: start, keyRecords: keyRecords, first: keyBase(), top: &top,
          overflowed: &overflowed)
      {
        canonical = false
      }
      skipSpace()
      guard p < count, base[p] == 0x3A else { return false }
      p += 1
      return true
    }

    /// A number at `p` whose canonical spelling is settled here.
    @inline(always) mutating func skipNumber() -> Bool {
      let negative = base[p] == 0x2D
      if negative { p += 1 }
      guard p < count else { return false }
      let intStart = p
      if base[p] == 0x30 {
        p += 1
        if p < count, base[p] &- 0x30 < 10 { return false }
      } else if base[p] &- 0x31 < 9 {
        p += 1
        while p < count, base[p] &- 0x30 < 10 { p += 1 }
      } else {
        return false
      }
      let intLength = p - intStart
      if p < count, base[p] == 0x2E {
        p += 1
        let fracStart = p
        while p < count, base[p] &- 0x30 < 10 { p += 1 }
        let fracLength = p - fracStart
        guard fracLength > 0 else { return false }
        if p < count, base[p] | 0x20 == 0x65 { return false }
        if canonical {
          // The writer's spelling of a plain decimal: no trailing zero (it folds them, so such a
          // number is never spelled as written), within the digit and exponent limits; anything
          // else is settled by building it.
          let integerIsZero = intLength == 1 && base[intStart] == 0x30
          if base[p - 1] == 0x30 {
            // Trailing zeros, which the writer drops: a whole decimal becomes its integer (under
            // 2015-10-08 it keeps one fractional zero: settled by building).
            var trailing = 0
            while trailing < fracLength && base[p - 1 - trailing] == 0x30 { trailing += 1 }
            let kept = fracLength - trailing
            guard wholeDecimalsAsInt || kept > 0 else { return false }
            let respellable =
              kept == 0
              ? intLength <= 18 && !(negative && integerIsZero)
              : JSONScanner.spelledAsWritten(
                integerIsZero: integerIsZero, intLength: intLength, fraction: base + fracStart,
                fracLength: kept)
            if respellable { respelled = true } else { canonical = false }
            return intLength <= 100 && fracLength <= 100
          }
          return JSONScanner.spelledAsWritten(
            integerIsZero: integerIsZero, intLength: intLength, fraction: base + fracStart,
            fracLength: fracLength)
        }
        return intLength <= 100 && fracLength <= 100
      }
      if p < count, base[p] | 0x20 == 0x65 { return false }
      guard intLength <= 18 else { return false }
      if negative, intLength == 1, base[intStart] == 0x30 { canonical = false }
      return true
    }

    /// Each turn: one value, then separators and closers until the next value or the end.
    /// Scans one value at `p`, nested up to `maxDepth` counting from the outermost container at
    /// `stopDepth` (the current depth): done when the depth is back there after a value.
    mutating func run(maxDepth: Int, stopDepth: Int = 0) -> Bool {
      while true {
        skipSpace()
        guard p < count else { return false }
        let byte = base[p]
        switch byte {
        case 0x22:
          guard skipValueString() else { return false }
        case 0x7B, 0x5B:
          guard depth < maxDepth else { return false }
          depth += 1
          p += 1
          skipSpace()
          guard p < count else { return false }
          if byte == 0x7B {
            objects |= 1 << UInt64(depth - 1)
            setKeyBase(top)
            if base[p] == 0x7D {
              p += 1
              depth -= 1
            } else {
              guard skipMember() else { return false }
              continue
            }
          } else {
            objects &= ~(1 << UInt64(depth - 1))
            if base[p] == 0x5D {
              p += 1
              depth -= 1
            } else {
              continue
            }
          }
        case 0x2D, 0x30...0x39:
          guard skipNumber() else { return false }
        case 0x74:
          guard p + 4 <= count, base[p + 1] == 0x72, base[p + 2] == 0x75, base[p + 3] == 0x65 else {
            return false
          }
          p += 4
        case 0x66:
          guard p + 5 <= count, base[p + 1] == 0x61, base[p + 2] == 0x6C, base[p + 3] == 0x73,
            base[p + 4] == 0x65
          else { return false }
          p += 5
        case 0x6E:
          guard p + 4 <= count, base[p + 1] == 0x75, base[p + 2] == 0x6C, base[p + 3] == 0x6C else {
            return false
          }
          p += 4
        default:
          return false
        }
        // After a value.
        while true {
          if depth == stopDepth { return true }
          skipSpace()
          guard p < count else { return false }
          let next = base[p]
          let isObject = objects & (1 << UInt64(depth - 1)) != 0
          if next == 0x2C {
            p += 1
            if isObject {
              skipSpace()
              guard skipMember() else { return false }
            }
            break
          }
          guard next == (isObject ? 0x7D : 0x5D) else { return false }
          p += 1
          if isObject { top = keyBase() }
          depth -= 1
        }
      }
    }
  }

  /// Makes `deferredRanges` one (-1, -1) pair per path, in the spare storage when there is one.
  private mutating func startDeferredRanges() {
    swap(&deferredRanges, &spareRanges)
    deferredRanges.removeAll(keepingCapacity: true)
    deferredRanges.append(contentsOf: repeatElement(-1, count: 2 * names.paths.count))
  }

  /// Records the byte range of the container that just closed for the paths it ends.
  private mutating func recordDeferred() {
    if deferredRanges.isEmpty { startDeferredRanges() }
    Self.forEachPath(in: deferredMask) { index in
      deferredRanges[2 * index] = deferredStart
      deferredRanges[2 * index + 1] = pos
    }
    deferredMask = 0
  }

  /// Hands a materialised value to its parent frame, or to the paths and document it was built for.
  private mutating func deliver(_ value: Value) throws(JSONError) {
    if frames.isEmpty {
      if targetIsRoot {
        document = value
        targetIsRoot = false
      } else {
        Self.forEachPath(in: targetMask) { index in
          var found = value
          for name in names.paths[index][(targetLevel + 1)...] { found = found.member(name) }
          values[index] = found
        }
        targetMask = 0
      }
      return
    }
    let top = frames.count - 1
    if !frames[top].isObject {
      // Room for a few elements at once: growing one by one reallocates twice for three elements.
      if frames[top].array.isEmpty { frames[top].array.reserveCapacity(4) }
      frames[top].array.append(value)
      return
    }
    let key = frames[top].pendingKey
    if frames[top].object.isEmpty { frames[top].object.reserveCapacity(4) }
    if frames[top].positions == nil, frames[top].object.count >= 8 {
      frames[top].positions = frames[top].object.positionsByKey()
    }
    if frames[top].positions != nil {
      if let index = frames[top].positions![MemberName(key)] {
        canonical = false
        frames[top].object.replaceValue(at: index, with: value)
      } else {
        frames[top].positions![MemberName(key)] = frames[top].object.count
        frames[top].object.appendUnchecked(key, value)
      }
    } else if frames[top].object[key] != nil {
      canonical = false
      frames[top].object[key] = value
    } else {
      frames[top].object.appendUnchecked(key, value)
    }
  }

  /// Scans `"name" :` at `pos`. In a built object the name becomes the pending key; in a tracked
  /// object (`level` ≥ 0) it selects the paths that go on through the member, which are reset to
  /// Undefined (a repeated name keeps its last value). Elsewhere it is only checked for duplicates.
  private mutating func scanMember(
    level: Int, mask: UInt64, keyRecords: UnsafeMutablePointer<UInt32>, keyBase: Int, keyTop: inout Int
  ) throws(JSONError) -> (UInt64, Int) {
    guard base[pos] == 0x22 else { throw unexpected("expected a member name") }
    var result: UInt64 = 0
    if !frames.isEmpty {
      frames[frames.count - 1].pendingKey = try scanString(decode: true)!
    } else {
      let start = pos + 1
      let escaped = try scanStringEscapes()
      let end = pos - 1
      // Duplicate names in objects that are not built (built ones are checked as they are set).
      if canonical,
        Self.recordName(
          base + start, end - start, offset: start, keyRecords: keyRecords, first: keyBase, top: &keyTop,
          overflowed: &keyRecordsOverflowed)
      {
        canonical = false
      }
      if level >= 0, mask != 0 {
        let (ending, continuing): (UInt64, UInt64)
        if escaped {
          let decoded = Self.unescape(UnsafeBufferPointer(start: base + start, count: end - start))
          (ending, continuing) = decoded.withUnsafeBufferPointer {
            names.matches($0.baseAddress ?? base, $0.count, level: level, mask: mask)
          }
        } else {
          (ending, continuing) = names.matches(base + start, end - start, level: level, mask: mask)
        }
        result = ending | continuing
        Self.forEachPath(in: result) { index in
          values[index] = .undefined
          if !deferredRanges.isEmpty { deferredRanges[2 * index] = -1 }
        }
      }
    }
    skipWhitespace()
    guard pos < count else { throw endError("expected ':'") }
    guard base[pos] == 0x3A else { throw unexpected("expected ':' after a member name") }
    pos += 1
    return (result, level)
  }

  // MARK: Tokens

  /// Byte equality for short runs such as member names (cheaper than a call to `memcmp`).
  @inline(__always)
  static func equal(_ left: UnsafePointer<UInt8>, _ right: UnsafePointer<UInt8>, _ length: Int) -> Bool {
    var index = 0
    while index + 8 <= length {
      if UnsafeRawPointer(left + index).loadUnaligned(as: UInt64.self)
        != UnsafeRawPointer(right + index).loadUnaligned(as: UInt64.self)
      {
        return false
      }
      index += 8
    }
    while index < length {
      if left[index] != right[index] { return false }
      index += 1
    }
    return true
  }

  @inline(__always)
  mutating func skipWhitespace() {
    while pos < count {
      let byte = base[pos]
      guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
      // The writer writes none: its spelling is these bytes without it (see `respelled`).
      respelled = true
      pos += 1
    }
  }

  mutating func scanLiteral(_ word: StaticString) throws(JSONError) {
    let text = word.utf8Start
    for index in 0..<word.utf8CodeUnitCount {
      guard pos < count else { throw endError("expected the literal '\(word)'") }
      guard base[pos] == text[index] else {
        // Text that merely starts like a literal ("not json", "trUe") reads as that literal.
        throw JSONError(
          offset: pos, message: "unexpected byte \(Self.hex(base[pos])), expected the literal '\(word)'")
      }
      pos += 1
    }
  }

  /// Scans a string at `pos` (its opening quote) and returns its text when `decode` is true.
  mutating func scanString(decode: Bool) throws(JSONError) -> String? {
    let start = pos + 1
    let escaped = try scanStringEscapes()
    guard decode else { return nil }
    let content = UnsafeBufferPointer(start: base + start, count: pos - 1 - start)
    if !escaped { return String(decoding: content, as: UTF8.self) }
    return String(decoding: Self.unescape(content), as: UTF8.self)
  }

  /// Past plain string bytes from `index`, eight at a time: the index of the first quote, backslash,
  /// control character or (when `stopsAtNonASCII`: the reader validates UTF-8 itself, the writer
  /// copies it) non-ASCII byte, or where fewer than eight bytes are left before it.
  @inline(__always)
  static func plainASCIIEnd(
    _ base: UnsafePointer<UInt8>, from index: Int, count: Int, stopsAtNonASCII: Bool = true
  ) -> Int {
    let high: UInt64 = 0x8080_8080_8080_8080
    let ones: UInt64 = 0x0101_0101_0101_0101
    var index = index
    while index + 8 <= count {
      let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
      let quote = word ^ (ones &* 0x22)
      let backslash = word ^ (ones &* 0x5C)
      var special =
        ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
      if stopsAtNonASCII { special |= word }
      let flags = special & high
      // The lowest flagged byte is exact (a borrow only flags bytes above a real match).
      if flags != 0 { return index + flags.trailingZeroBitCount >> 3 }
      index += 8
    }
    return index
  }

  /// Validates a string from its opening quote at `pos` to past its closing quote; returns whether it
  /// holds escapes.
  mutating func scanStringEscapes() throws(JSONError) -> Bool {
    pos += 1
    var escaped = false
    while true {
      pos = Self.plainASCIIEnd(base, from: pos, count: count)
      guard pos < count else { throw endError("in a string") }
      let byte = base[pos]
      if byte == 0x22 {
        pos += 1
        return escaped
      } else if byte == 0x5C {
        escaped = true
        try scanEscape()
      } else if byte < 0x20 {
        throw JSONError(offset: pos, message: "control character \(Self.hex(byte)) in a string")
      } else if byte < 0x80 {
        pos += 1
      } else {
        try scanMultibyte()
      }
    }
  }

  /// Validates one escape sequence at `pos` (its backslash).
  private mutating func scanEscape() throws(JSONError) {
    let start = pos
    guard pos + 1 < count else { throw endError("in an escape sequence") }
    let letter = base[pos + 1]
    switch letter {
    case 0x22, 0x5C, 0x62, 0x66, 0x6E, 0x72, 0x74:  // " \ b f n r t
      pos += 2
    case 0x2F:  // the writer leaves '/' alone
      canonical = false
      pos += 2
    case 0x75:
      pos += 2
      let unit = try scanHex4()
      if canonical {
        // The writer spells only other control characters as \u00xx, in lowercase.
        let hasShortForm = unit == 0x08 || unit == 0x09 || unit == 0x0A || unit == 0x0C || unit == 0x0D
        let spelled = Self.hexSpelling(unit)
        if unit >= 0x20 || hasShortForm || !(0..<4).allSatisfy({ base[start + 2 + $0] == spelled[$0] }) {
          canonical = false
        }
      }
      if (0xDC00...0xDFFF).contains(unit) {
        throw JSONError(
          offset: start,
          message: JSONError.loneSurrogatePrefix + "\\u\(Self.hexText(unit)) (a low surrogate first)")
      }
      if (0xD800...0xDBFF).contains(unit) {
        guard pos + 1 < count, base[pos] == 0x5C, base[pos + 1] == 0x75 else {
          if pos >= count || (pos + 1 >= count && base[pos] == 0x5C) {
            throw endError("after a high surrogate")
          }
          throw JSONError(
            offset: start,
            message: JSONError.loneSurrogatePrefix + "\\u\(Self.hexText(unit)) (no low surrogate follows)")
        }
        pos += 2
        let low = try scanHex4()
        guard (0xDC00...0xDFFF).contains(low) else {
          throw JSONError(
            offset: start,
            message: JSONError.loneSurrogatePrefix + "\\u\(Self.hexText(unit)) (no low surrogate follows)")
        }
      }
    default:
      throw JSONError(offset: start, message: "invalid escape '\\\(Self.printable(letter))' in a string")
    }
  }

  private mutating func scanHex4() throws(JSONError) -> UInt16 {
    var unit: UInt16 = 0
    for _ in 0..<4 {
      guard pos < count else { throw endError("in a \\u escape") }
      let byte = base[pos]
      let digit: UInt8
      switch byte {
      case 0x30...0x39: digit = byte - 0x30
      case 0x41...0x46: digit = byte - 0x41 + 10
      case 0x61...0x66: digit = byte - 0x61 + 10
      default:
        throw JSONError(offset: pos, message: "invalid hex digit \(Self.hex(byte)) in a \\u escape")
      }
      unit = unit << 4 | UInt16(digit)
      pos += 1
    }
    return unit
  }

  static func hexSpelling(_ unit: UInt16) -> [UInt8] {
    let digits = Array("0123456789abcdef".utf8)
    return [12, 8, 4, 0].map { digits[Int((unit >> UInt16($0)) & 15)] }
  }

  static func hexText(_ unit: UInt16) -> String {
    String(decoding: hexSpelling(unit), as: UTF8.self).uppercased()
  }

  static func printable(_ byte: UInt8) -> String {
    (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : hex(byte)
  }

  /// Validates one multi-byte UTF-8 sequence at `pos` (RFC 3629: no overlongs, no surrogates, nothing
  /// above U+10FFFF). Errors point at the sequence's first byte.
  private mutating func scanMultibyte() throws(JSONError) {
    let start = pos
    let lead = base[pos]
    let length: Int
    var secondRange: ClosedRange<UInt8> = 0x80...0xBF
    var secondProblem = "incomplete sequence"
    switch lead {
    case 0xC2...0xDF: length = 2
    case 0xE0:
      length = 3
      secondRange = 0xA0...0xBF
      secondProblem = "overlong encoding"
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED:
      length = 3
      secondRange = 0x80...0x9F
      secondProblem = "encoded surrogate"
    case 0xF0:
      length = 4
      secondRange = 0x90...0xBF
      secondProblem = "overlong encoding"
    case 0xF1...0xF3: length = 4
    case 0xF4:
      length = 4
      secondRange = 0x80...0x8F
      secondProblem = "code point above U+10FFFF"
    case 0xC0, 0xC1:
      throw JSONError(offset: start, message: "invalid UTF-8: overlong encoding (byte \(Self.hex(lead)))")
    case 0xF5...0xF7:
      throw JSONError(
        offset: start, message: "invalid UTF-8: code point above U+10FFFF (byte \(Self.hex(lead)))")
    case 0x80...0xBF:
      throw JSONError(offset: start, message: "invalid UTF-8: unexpected continuation byte \(Self.hex(lead))")
    default:
      throw JSONError(offset: start, message: "invalid UTF-8: byte \(Self.hex(lead))")
    }
    guard start + 1 < count else { throw endError("in a UTF-8 sequence") }
    let second = base[start + 1]
    if !secondRange.contains(second) {
      let problem = (0x80...0xBF).contains(second) ? secondProblem : "incomplete sequence"
      throw JSONError(offset: start, message: "invalid UTF-8: \(problem)")
    }
    for index in 2..<length {
      guard start + index < count else { throw endError("in a UTF-8 sequence") }
      guard (0x80...0xBF).contains(base[start + index]) else {
        throw JSONError(offset: start, message: "invalid UTF-8: incomplete sequence")
      }
    }
    pos = start + length
  }

  /// The bytes of a validated string body with its escapes resolved.
  static func unescape(_ content: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(content.count)
    var index = 0
    func hex4(_ at: Int) -> UInt32 {
      var unit: UInt32 = 0
      for offset in 0..<4 {
        let byte = content[at + offset]
        let digit: UInt8 =
          byte <= 0x39 ? byte - 0x30 : (byte >= 0x61 ? byte - 0x61 + 10 : byte - 0x41 + 10)
        unit = unit << 4 | UInt32(digit)
      }
      return unit
    }
    while index < content.count {
      let byte = content[index]
      guard byte == 0x5C else {
        out.append(byte)
        index += 1
        continue
      }
      let letter = content[index + 1]
      index += 2
      switch letter {
      case 0x62: out.append(0x08)
      case 0x66: out.append(0x0C)
      case 0x6E: out.append(0x0A)
      case 0x72: out.append(0x0D)
      case 0x74: out.append(0x09)
      case 0x75:
        var scalar = hex4(index)
        index += 4
        if (0xD800...0xDBFF).contains(scalar) {
          let low = hex4(index + 2)
          index += 6
          scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        out.append(contentsOf: UTF8.encode(UnicodeScalar(scalar)!)!)
      default: out.append(letter)
      }
    }
    return out
  }

  // MARK: Numbers

  /// Scans a number at `pos`; returns its value when `materialize` is true. Numbers whose value is
  /// not needed are still checked for range and canonical spelling.
  mutating func scanNumber(materialize: Bool) throws(JSONError) -> Value? {
    let start = pos
    let negative = base[pos] == 0x2D
    if negative { pos += 1 }
    guard pos < count else { throw endError("expected a digit after '-'") }
    let intStart = pos
    if base[pos] == 0x30 {
      pos += 1
      if pos < count, (0x30...0x39).contains(base[pos]) {
        throw JSONError(offset: pos, message: "leading zero in a number")
      }
    } else if (0x31...0x39).contains(base[pos]) {
      pos += 1
      while pos < count, (0x30...0x39).contains(base[pos]) { pos += 1 }
    } else {
      throw unexpected("expected a digit after '-'")
    }
    let intEnd = pos
    var fracStart = pos
    var fracEnd = pos
    var hasFraction = false
    if pos < count, base[pos] == 0x2E {
      hasFraction = true
      pos += 1
      fracStart = pos
      while pos < count, (0x30...0x39).contains(base[pos]) { pos += 1 }
      fracEnd = pos
      if fracEnd == fracStart {
        if pos >= count { throw endError("expected a digit after '.'") }
        throw unexpected("expected a digit after '.'")
      }
    }
    var hasExponent = false
    var exponent = 0
    if pos < count, base[pos] == 0x65 || base[pos] == 0x45 {
      hasExponent = true
      pos += 1
      var exponentNegative = false
      if pos < count, base[pos] == 0x2B || base[pos] == 0x2D {
        exponentNegative = base[pos] == 0x2D
        pos += 1
      }
      let digitsStart = pos
      while pos < count, (0x30...0x39).contains(base[pos]) {
        // Saturating far above any exponent a payload's digits can offset (a payload is at most
        // 16 MiB): stopped near 1,000,000, `1` and 9,000,000 zeros `e-10000000` read as a huge number.
        if exponent < 1 << 40 { exponent = exponent * 10 + Int(base[pos] - 0x30) }
        pos += 1
      }
      if pos == digitsStart {
        if pos >= count { throw endError("expected a digit in the exponent") }
        throw unexpected("expected a digit in the exponent")
      }
      if exponentNegative { exponent = -exponent }
    }
    let intLength = intEnd - intStart

    // Integers of up to 18 digits: the common case, always an Int, canonical unless "-0".
    if !hasFraction, !hasExponent, intLength <= 18 {
      if negative, intLength == 1, base[intStart] == 0x30 { canonical = false }
      guard materialize else { return nil }
      var value = 0
      for index in intStart..<intEnd { value = value &* 10 &+ Int(base[index] &- 0x30) }
      return .int(negative ? -value : value)
    }

    // Plain decimals the writer spells the same way: no exponent, no trailing zero, at most 34
    // significant digits, adjusted exponent in the plain range.
    let fastCanonical =
      hasFraction && !hasExponent && base[fracEnd - 1] != 0x30
      && Self.spelledAsWritten(
        integerIsZero: intLength == 1 && base[intStart] == 0x30, intLength: intLength,
        fraction: base + fracStart,
        fracLength: fracEnd - fracStart)
    if !materialize && fastCanonical { return nil }
    // Not asked for and not checked for canonical spelling: only the range remains to check, and
    // without an exponent part 100 digits on either side of the point are well within it.
    if !materialize, !canonical, !hasExponent, intLength <= 100, fracEnd - fracStart <= 100 { return nil }

    let wasSaturated = saturated
    saturated = false
    let value = try makeNumber(
      start: start, negative: negative, digitRanges: (intStart, intEnd, fracStart, fracEnd),
      exponent: exponent, isInteger: !hasFraction && !hasExponent)
    let thisSaturated = saturated
    saturated = saturated || wasSaturated
    // A number beyond Decimal's range keeps its spelling: `SELECT *` passes it through as written
    // (each such number, not only the first).
    if canonical, !fastCanonical, !thisSaturated {
      var spelled: [UInt8] = []
      JSONWriter.write(value, into: &spelled)
      if !spelled.elementsEqual(UnsafeBufferPointer(start: base + start, count: pos - start)) {
        // Respelled when the writer's spelling is the number without its fraction's trailing zeros.
        let kept = Self.respelledLength(
          base + start, pos - start, wholeDecimalsAsInt: options.wholeDecimalsAsInt)
        if kept < pos - start, spelled.elementsEqual(UnsafeBufferPointer(start: base + start, count: kept)) {
          respelled = true
        } else {
          canonical = false
        }
      }
    }
    return value
  }

  /// True when the writer spells a plain decimal (no exponent, its last fraction digit not zero) as
  /// written: at most 34 significant digits, its adjusted exponent within the plain range.
  @inline(__always)
  static func spelledAsWritten(
    integerIsZero: Bool, intLength: Int, fraction: UnsafePointer<UInt8>, fracLength: Int
  ) -> Bool {
    if integerIsZero {
      var zeros = 0
      while zeros < fracLength && fraction[zeros] == 0x30 { zeros += 1 }
      return fracLength - zeros <= JSONNumber.maximumDigits && zeros + 1 <= -JSONNumber.plainRange.lowerBound
    }
    return intLength + fracLength <= JSONNumber.maximumDigits
      && intLength - 1 <= JSONNumber.plainRange.upperBound
  }

  /// The length of the number token at `token` once its fraction's trailing zeros are dropped, and
  /// its point when nothing of the fraction is left (under 2015-10-08, without `wholeDecimalsAsInt`,
  /// a whole decimal keeps its point and one zero: `4.00` is written `4.0`); the whole length with an
  /// exponent or no point.
  static func respelledLength(_ token: UnsafePointer<UInt8>, _ length: Int, wholeDecimalsAsInt: Bool) -> Int {
    var point = -1
    for index in 0..<length {
      switch token[index] {
      case 0x2E: point = index
      case 0x65, 0x45: return length
      default: break
      }
    }
    guard point >= 0 else { return length }
    var end = length
    while end - 1 > point, token[end - 1] == 0x30 { end -= 1 }
    guard end == point + 1 else { return end }
    return wholeDecimalsAsInt ? point : point + 2
  }

  private mutating func makeNumber(
    start: Int, negative: Bool, digitRanges: (Int, Int, Int, Int), exponent: Int, isInteger: Bool
  ) throws(JSONError) -> Value {
    let (intStart, intEnd, fracStart, fracEnd) = digitRanges
    var significand: UInt64 = 0
    var digitCount = 0
    var overflow = false
    var leading = true
    var index = intStart
    while index < fracEnd {
      if index == intEnd { index = fracStart }
      guard index < fracEnd else { break }
      let digit = base[index] &- 0x30
      index += 1
      if leading && digit == 0 { continue }
      leading = false
      if digitCount == 19 {
        overflow = true
        break
      }
      significand = significand * 10 + UInt64(digit)
      digitCount += 1
    }
    var finalSignificand: UInt128
    var finalExponent = exponent - (fracEnd - fracStart)
    if overflow {
      var digits: [UInt8] = []
      for range in [intStart..<intEnd, fracStart..<fracEnd] {
        for index in range {
          let digit = base[index] &- 0x30
          if digits.isEmpty && digit == 0 { continue }
          digits.append(digit)
        }
      }
      (finalSignificand, finalExponent) = JSONNumber.round(digits: digits, exponent: finalExponent)
    } else {
      while significand != 0, significand % 10 == 0 {
        significand /= 10
        finalExponent += 1
      }
      finalSignificand = UInt128(significand)
    }
    guard
      let value = JSONNumber.value(
        negative: negative, significand: finalSignificand, exponent: finalExponent,
        allowInt: isInteger || options.wholeDecimalsAsInt)
    else {
      // Valid JSON beyond the Decimal range (1E-999 to 9.999…E999): the nearest value it
      // holds, so the payload stays JSON and keeps its order and sign in comparisons.
      saturated = true
      return .decimal(DecimalMath.saturated(negative: negative, overflow: finalExponent > 0))
    }
    return value
  }
}
