/// The engine's own strict RFC 8259 reader (the hot path).
///
/// It reads bytes, never `String`: UTF-8 is validated as it goes (no overlongs, no surrogates, nothing
/// above U+10FFFF), escapes must be valid and surrogate escapes paired, numbers follow the RFC's grammar
/// (no leading zeros, no `+`, no bare `.`), nothing may follow the document, and nesting deeper than
/// ``JSONReadOptions/maxDepth`` is an error. Each error gives the byte offset of the offending byte (the
/// first byte of a bad escape or UTF-8 sequence; the input's length for an input that ends too soon).
///
/// Numbers: `1` is an Int, `1.0` and `1E2` are Decimals (an Int under
/// ``JSONReadOptions/wholeDecimalsAsInt`` when whole and within 64 bits), integers beyond 64 bits are
/// Decimals, and more than 34 significant digits are rounded half to even to 34, as AWS's decimals.
/// An exponent beyond Decimal's range (about 10^±128) is an error.
///
/// Objects keep their key order; a repeated key keeps its first position and its last value.
public enum JSONReader {
  /// Parses a whole document or throws a positioned error.
  public static func parse(_ bytes: [UInt8], options: JSONReadOptions = .init()) throws(JSONError) -> Value {
    guard !bytes.isEmpty else {
      throw JSONError(offset: 0, message: "unexpected end of input, expected a value")
    }
    return try bytes.withUnsafeBufferPointer { buffer throws(JSONError) -> Value in
      var fast = JSONScanner(base: buffer.baseAddress!, count: buffer.count, options: options)
      if let value = fast.buildDocument() { return value }
      var scanner = JSONScanner(base: buffer.baseAddress!, count: buffer.count, options: options)
      _ = try scanner.scanDocument(mode: .build)
      return scanner.document!
    }
  }

  /// Builds the value at `range` of `bytes`, a range a selective read validated and deferred.
  static func build(_ bytes: [UInt8], range: Range<Int>, options: JSONReadOptions) -> Value {
    bytes.withUnsafeBufferPointer { buffer -> Value in
      build(buffer.baseAddress! + range.lowerBound, count: range.count, options: options)
    }
  }

  /// Builds the validated value of the `count` bytes at `start`.
  private static func build(_ start: UnsafePointer<UInt8>, count: Int, options: JSONReadOptions) -> Value {
    var fast = JSONScanner(base: start, count: count, options: options)
    if let value = fast.buildDocument() { return value }
    var scanner = JSONScanner(base: start, count: count, options: options)
    guard (try? scanner.scanDocument(mode: .build)) != nil, let value = scanner.document else {
      return .undefined
    }
    return value
  }

  /// The members named `names` (strings) of each element of the array at `range` of `bytes`, a
  /// range a selective read validated and deferred, without building the elements: `names.count`
  /// values an element, in order, each built as ``build(_:range:options:)`` builds it (Undefined
  /// where the element has no such member or is no object; a repeated name gives its last value,
  /// as an object built keeps it). An object at `range` is one element (`isObject`).
  static func projectMembers(
    _ bytes: [UInt8], range: Range<Int>, names: [Value], options: JSONReadOptions
  ) -> (values: [Value], count: Int, isObject: Bool) {
    let stride = names.count
    var values: [Value] = []
    var count = 0
    var isObject = false
    bytes.withUnsafeBufferPointer { buffer in
      let base = buffer.baseAddress!
      var p = range.lowerBound
      let end = range.upperBound
      // One scanner builds every member taken (one made per member cost more than the rest).
      var builder = JSONScanner(base: base, count: end, options: options)
      // The bytes are valid JSON: each step only finds where a token ends.
      func skipSpace() {
        while p < end, base[p] == 0x20 || base[p] == 0x0A || base[p] == 0x0D || base[p] == 0x09 { p += 1 }
      }
      func skipString() {
        p += 1
        while base[p] != 0x22 { p += base[p] == 0x5C ? 2 : 1 }
        p += 1
      }
      func skipValue() {
        switch base[p] {
        case 0x22: skipString()
        case 0x5B, 0x7B:
          var depth = 0
          repeat {
            switch base[p] {
            case 0x22:
              skipString()
              continue
            case 0x5B, 0x7B: depth += 1
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
            p += 1
          } while depth > 0
        default:
          while p < end, base[p] != 0x2C, base[p] != 0x5D, base[p] != 0x7D, base[p] > 0x20 { p += 1 }
        }
      }
      // Which of `names` the member name at `start` (its text between the quotes) is.
      func nameIndex(_ start: Int, _ length: Int) -> Int? {
        let written = UnsafeBufferPointer(start: base + start, count: length)
        let escaped = written.contains(0x5C)
        let decoded = escaped ? JSONScanner.unescape(written) : []
        for (index, name) in names.enumerated() {
          guard case .string(let wanted) = name else { continue }
          if escaped ? wanted.utf8.elementsEqual(decoded) : wanted.utf8.elementsEqual(written) {
            return index
          }
        }
        return nil
      }
      func takeMembers(of element: Int) {
        p += 1
        skipSpace()
        guard base[p] != 0x7D else {
          p += 1
          return
        }
        while true {
          let nameStart = p + 1
          skipString()
          let nameLength = p - 1 - nameStart
          skipSpace()
          p += 1
          skipSpace()
          let valueStart = p
          skipValue()
          if let index = nameIndex(nameStart, nameLength) {
            values[element * stride + index] =
              builder.buildValue(at: valueStart)
              ?? build(base + valueStart, count: p - valueStart, options: options)
          }
          skipSpace()
          let byte = base[p]
          p += 1
          guard byte == 0x2C else { return }
          skipSpace()
        }
      }
      skipSpace()
      guard p < end else { return }
      if base[p] == 0x7B {
        isObject = true
        count = 1
        values = Array(repeating: .undefined, count: stride)
        takeMembers(of: 0)
        return
      }
      p += 1
      skipSpace()
      guard base[p] != 0x5D else { return }
      values.reserveCapacity(stride * 4)
      while true {
        values.append(contentsOf: repeatElement(.undefined, count: stride))
        if base[p] == 0x7B { takeMembers(of: count) } else { skipValue() }
        count += 1
        skipSpace()
        guard base[p] == 0x2C else { return }
        p += 1
        skipSpace()
      }
    }
    return (values, count, isObject)
  }

  /// Parses text.
  public static func parse(_ text: String, options: JSONReadOptions = .init()) throws(JSONError) -> Value {
    try parse(Array(text.utf8), options: options)
  }

  /// Validates the whole payload and materialises only the values at `paths` (plus the whole
  /// document when `wholeDocument` is true). A payload that is not valid JSON gives `.binary`.
  ///
  /// Values that no path reaches are validated and skipped without allocating. `isCanonical` is
  /// computed in the same pass (payloads with more than 128 member names open at once, where the
  /// skipping scan cannot hold every name for its duplicate check, are confirmed by a second pass).
  public static func read(
    _ bytes: [UInt8], paths: PathTable, wholeDocument: Bool, options: JSONReadOptions
  ) -> PayloadView {
    read(bytes, paths: paths, wholeDocument: wholeDocument, options: options, checksCanonical: true)
  }

  /// ``read(_:paths:wholeDocument:options:)`` that validates an array or object ending a path but
  /// does not build it: its value stays Undefined and ``PayloadView/deferredRange(ofPath:)`` gives its
  /// bytes (the replay source takes an inline payload this way). The view goes into `view`, whose
  /// arrays' storage it reuses: a source that keeps one view reads each line without allocating them.
  ///
  /// With `findingForms`, each deferred container is also checked for canonical spelling (see
  /// ``PayloadView/deferredForm(ofPath:)``), the rest of the document not.
  public static func readDeferringContainers(
    _ bytes: [UInt8], paths: PathTable, options: JSONReadOptions, findingForms: Bool = false,
    into view: inout PayloadView
  ) {
    bytes.withUnsafeBufferPointer {
      readDeferringContainers($0, paths: paths, options: options, findingForms: findingForms, into: &view)
    }
  }

  /// ``readDeferringContainers(_:paths:options:findingForms:into:)`` of bytes in place (the replay
  /// source reads each line where it lies in its read buffer, without copying it first).
  public static func readDeferringContainers(
    _ bytes: UnsafeBufferPointer<UInt8>, paths: PathTable, options: JSONReadOptions,
    findingForms: Bool = false,
    into view: inout PayloadView
  ) {
    read(
      bytes, names: paths.names, wholeDocument: false, options: options, checksCanonical: false,
      defersContainers: true, findsDeferredForms: findingForms && options.wholeDecimalsAsInt,
      knownValid: false,
      into: &view)
  }

  /// ``read(_:paths:wholeDocument:options:)`` into a new view. Without `checksCanonical`,
  /// `isCanonical` is false and the work of finding it out is skipped.
  static func read(
    _ bytes: [UInt8], paths: PathTable, wholeDocument: Bool, options: JSONReadOptions,
    checksCanonical: Bool, defersContainers: Bool = false
  ) -> PayloadView {
    var view = PayloadView(kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)
    read(
      bytes, names: paths.names, wholeDocument: wholeDocument, options: options,
      checksCanonical: checksCanonical, defersContainers: defersContainers, into: &view)
    return view
  }

  /// Reads into `view`, reusing its arrays' storage: the VM keeps one view and reads every message
  /// into it, so a message costs no allocation for them.
  ///
  /// With `knownValid` (the bytes are valid JSON without repeated member names, as a source that
  /// validated them says: ``PayloadForm``), the read stops once every path has its value; not with
  /// `wholeDocument` or `checksCanonical`, which need the rest.
  static func read(
    _ bytes: [UInt8], names: PathNames, wholeDocument: Bool, options: JSONReadOptions,
    checksCanonical: Bool, defersContainers: Bool, findsDeferredForms: Bool = false, knownValid: Bool = false,
    into view: inout PayloadView
  ) {
    bytes.withUnsafeBufferPointer { buffer in
      read(
        buffer, names: names, wholeDocument: wholeDocument, options: options,
        checksCanonical: checksCanonical,
        defersContainers: defersContainers, findsDeferredForms: findsDeferredForms, knownValid: knownValid,
        into: &view)
    }
    // The whole document of bytes that are not JSON is those bytes (the buffer's reading leaves it out).
    if wholeDocument, view.kind == .binary { view.document = .binary(bytes) }
  }

  /// ``read(_:names:wholeDocument:options:checksCanonical:defersContainers:findsDeferredForms:knownValid:into:)``
  /// of bytes in place; a binary view's document is left nil, for the caller that has the bytes as
  /// an array to set.
  static func read(
    _ buffer: UnsafeBufferPointer<UInt8>, names: PathNames, wholeDocument: Bool, options: JSONReadOptions,
    checksCanonical: Bool, defersContainers: Bool, findsDeferredForms: Bool, knownValid: Bool,
    into view: inout PayloadView
  ) {
    view.reset()
    guard let start = buffer.baseAddress, !buffer.isEmpty else {
      view.setBinary(
        count: names.paths.count,
        error: JSONError(offset: 0, message: "unexpected end of input, expected a value"))
      return
    }
    // The selective scan tracks up to 64 non-empty paths; anything else reads the whole document.
    let selective = !wholeDocument && names.trackable
    var scanner = JSONScanner(
      base: start, count: buffer.count, options: options, names: selective ? names : .empty,
      checksCanonical: checksCanonical, reusing: &view.values)
    swap(&scanner.spareRanges, &view.deferredRanges)
    scanner.defersContainers = selective && defersContainers
    scanner.findsDeferredForms = findsDeferredForms
    // A deferred container's form is known once it is scanned: the rest is not needed for it.
    scanner.stopsWhenFound = knownValid && !checksCanonical
    var isObject = false
    var failure: JSONError?
    do throws(JSONError) {
      isObject = try scanner.scanDocument(mode: selective ? .track : .build)
    } catch {
      failure = error
    }
    // The arrays' storage goes back to the view, for this read's results and the next read.
    swap(&view.values, &scanner.values)
    if scanner.deferredRanges.isEmpty {
      swap(&view.deferredRanges, &scanner.spareRanges)
      view.deferredRanges.removeAll(keepingCapacity: true)
    } else {
      swap(&view.deferredRanges, &scanner.deferredRanges)
    }
    if let failure {
      view.setBinary(count: names.paths.count, error: failure)
      return
    }
    var canonical = scanner.canonical
    var respelled = scanner.respelled
    if checksCanonical, canonical, scanner.keyRecordsOverflowed {
      // Objects too large for the duplicate check of the skipping scan: decide by building.
      var builder = JSONScanner(base: start, count: buffer.count, options: options)
      canonical = (try? builder.scanDocument(mode: .build)) != nil && builder.canonical
      respelled = builder.respelled
    }
    if !selective {
      let document = scanner.document!
      view.values.removeAll(keepingCapacity: true)
      for path in names.paths { view.values.append(path.reduce(document) { $0.member($1) }) }
    }
    view.kind = isObject ? .object : .otherJSON
    view.document = wholeDocument ? scanner.document : nil
    view.deferredCanonical = scanner.deferredCanonical
    view.deferredRespelled = scanner.deferredRespelled
    // `canonical` starts out false without `checksCanonical`.
    view.isCanonical = canonical && !respelled
    view.respellsNumbers = canonical && respelled
  }

  /// What the writer gives for a payload read with ``PayloadView/respellsNumbers`` set: its bytes
  /// without whitespace between tokens and with each number's fraction stripped of trailing zeros
  /// (and of its point when nothing is left). Strings are copied as they are; numbers are cut to
  /// ``JSONScanner/respelledLength(_:_:wholeDecimalsAsInt:)`` under the `options` the payload was
  /// read with (2015-10-08 writes a whole decimal `4.0`).
  public static func respellingNumbers(_ bytes: [UInt8], options: JSONReadOptions) -> [UInt8] {
    bytes.withUnsafeBufferPointer { buffer -> [UInt8] in
      let base = buffer.baseAddress!
      let count = buffer.count
      var out: [UInt8] = []
      out.reserveCapacity(count)
      var copied = 0
      var index = 0
      while index < count {
        let byte = base[index]
        if byte == 0x22 {
          index += 1
          while index < count, base[index] != 0x22 { index += base[index] == 0x5C ? 2 : 1 }
          index += 1
        } else if byte == 0x2D || byte &- 0x30 < 10 {
          let start = index
          index += 1
          while index < count {
            let next = base[index]
            guard next &- 0x30 < 10 || next == 0x2E || next | 0x20 == 0x65 || next == 0x2B || next == 0x2D
            else {
              break
            }
            index += 1
          }
          let kept = JSONScanner.respelledLength(
            base + start, index - start, wholeDecimalsAsInt: options.wholeDecimalsAsInt)
          if kept < index - start {
            out.append(contentsOf: UnsafeBufferPointer(start: base + copied, count: start + kept - copied))
            copied = index
          }
        } else if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
          out.append(contentsOf: UnsafeBufferPointer(start: base + copied, count: index - copied))
          index += 1
          copied = index
        } else {
          index += 1
        }
      }
      out.append(contentsOf: UnsafeBufferPointer(start: base + copied, count: count - copied))
      return out
    }
  }
}

extension JSONReader {
  /// The byte range of the value of the top-level member `name` of the object in `bytes`, which
  /// must be valid JSON (a byte order mark before it is skipped, as the reader skips one): the last
  /// such member when the name repeats, as the reader keeps the last value, with names compared as
  /// decoded (`"p\u0061yload"` is `payload`). Nil when `bytes` is no object or has no such member.
  /// A source that validated a line takes a scalar member's bytes as written this way.
  public static func memberSpan(named name: String, in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
    let wanted = Array(name.utf8)
    var index = 0
    if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
    func skipSpace() {
      while index < bytes.count,
        bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D
      {
        index += 1
      }
    }
    /// Past the string whose opening quote is at `index`; true when it holds an escape.
    func skipString() -> Bool {
      var escaped = false
      index += 1
      while index < bytes.count, bytes[index] != 0x22 {
        if bytes[index] == 0x5C {
          escaped = true
          index += 2
        } else {
          index += 1
        }
      }
      index += 1
      return escaped
    }
    func skipValue() {
      var depth = 0
      repeat {
        guard index < bytes.count else { return }
        switch bytes[index] {
        case 0x22: _ = skipString()
        case 0x7B, 0x5B:
          depth += 1
          index += 1
        case 0x7D, 0x5D:
          depth -= 1
          index += 1
        case 0x2C, 0x3A, 0x20, 0x09, 0x0A, 0x0D:
          index += 1
        default:
          while index < bytes.count, !",}] \t\r\n".utf8.contains(bytes[index]) { index += 1 }
        }
      } while depth > 0
    }
    skipSpace()
    guard index < bytes.count, bytes[index] == 0x7B else { return nil }
    index += 1
    var found: Range<Int>?
    while index < bytes.count {
      skipSpace()
      guard index < bytes.count, bytes[index] == 0x22 else { return found }
      let keyStart = index
      let escaped = skipString()
      let key = UnsafeBufferPointer(rebasing: bytes[keyStart..<index])
      skipSpace()
      index += 1  // ':'
      skipSpace()
      let valueStart = index
      skipValue()
      let matches =
        escaped
        ? (try? parse(Array(key))) == .string(name)
        : key.count == wanted.count + 2 && key.dropFirst().prefix(wanted.count).elementsEqual(wanted)
      if matches { found = valueStart..<index }
      skipSpace()
      guard index < bytes.count, bytes[index] == 0x2C else { return found }
      index += 1
    }
    return found
  }
}
