/// Where the writer and the number formatter put bytes: `[UInt8]`, or the writer's own ``ByteSink``.
protocol ByteOutput: ~Copyable {
  /// The number of bytes written so far.
  var count: Int { get }
  /// Appends one byte.
  mutating func append(_ byte: UInt8)
  /// Appends a run of bytes.
  mutating func append(bytes: UnsafeBufferPointer<UInt8>)
  /// Inserts one byte at `index` (the number formatter's decimal point).
  mutating func insert(_ byte: UInt8, at index: Int)
  /// Sets the byte at `index`, which is below `count`.
  mutating func set(_ byte: UInt8, at index: Int)
}

extension ByteOutput where Self: ~Copyable {
  /// Appends a literal's UTF-8 bytes.
  @inline(__always)
  mutating func append(ascii text: StaticString) {
    append(bytes: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
  }
}

extension Array: ByteOutput where Element == UInt8 {
  @inline(__always)
  mutating func append(bytes: UnsafeBufferPointer<UInt8>) { append(contentsOf: bytes) }

  @inline(__always)
  mutating func set(_ byte: UInt8, at index: Int) { self[index] = byte }
}

/// A byte buffer for writing JSON: it starts in caller-provided scratch memory (the stack) and moves to
/// the heap only when that is full, and an append is a compare and a store, without the uniqueness
/// and capacity checks of `Array.append`. Copy the bytes out with ``withBytes(_:)`` or ``array()``,
/// and the sink frees any heap storage when it ends (it cannot be copied).
struct ByteSink: ByteOutput, ~Copyable {
  private var base: UnsafeMutablePointer<UInt8>
  private(set) var count = 0
  private var capacity: Int
  private var onHeap = false

  /// A sink writing into `scratch` first.
  init(scratch: UnsafeMutableBufferPointer<UInt8>) {
    base = scratch.baseAddress!
    capacity = scratch.count
  }

  @inline(__always)
  mutating func append(_ byte: UInt8) {
    if count == capacity { grow(to: count + 1) }
    base[count] = byte
    count += 1
  }

  @inline(__always)
  mutating func append(bytes: UnsafeBufferPointer<UInt8>) {
    guard let source = bytes.baseAddress, bytes.count > 0 else { return }
    let length = bytes.count
    if count + length > capacity { grow(to: count + length) }
    let target = base + count
    if length <= 16 {
      // Short runs (keys, short strings, number digits) without a call to memmove: two loads that
      // may overlap, both done before either store.
      let from = UnsafeRawPointer(source)
      let to = UnsafeMutableRawPointer(target)
      if length >= 8 {
        let head = from.loadUnaligned(as: UInt64.self)
        let tail = from.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
        to.storeBytes(of: head, as: UInt64.self)
        to.storeBytes(of: tail, toByteOffset: length - 8, as: UInt64.self)
      } else if length >= 4 {
        let head = from.loadUnaligned(as: UInt32.self)
        let tail = from.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self)
        to.storeBytes(of: head, as: UInt32.self)
        to.storeBytes(of: tail, toByteOffset: length - 4, as: UInt32.self)
      } else {
        let first = source[0]
        let middle = source[length >> 1]
        let last = source[length - 1]
        target[0] = first
        target[length >> 1] = middle
        target[length - 1] = last
      }
    } else {
      target.update(from: source, count: length)
    }
    count += length
  }

  mutating func insert(_ byte: UInt8, at index: Int) {
    if count == capacity { grow(to: count + 1) }
    (base + index + 1).update(from: base + index, count: count - index)
    base[index] = byte
    count += 1
  }

  @inline(__always)
  mutating func set(_ byte: UInt8, at index: Int) { base[index] = byte }

  @inline(never)
  private mutating func grow(to minimum: Int) {
    let newCapacity = Swift.max(minimum, capacity * 2)
    let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    storage.initialize(from: base, count: count)
    if onHeap { base.deallocate() }
    base = storage
    capacity = newCapacity
    onHeap = true
  }

  /// Appends the UTF-8 of `text`.
  @inline(__always)
  mutating func append(utf8 text: String) {
    var text = text
    text.withUTF8 { append(bytes: $0) }
  }

  /// The bytes written, as a new array of exactly that size.
  func array() -> [UInt8] {
    Array(UnsafeBufferPointer(start: base, count: count))
  }

  /// Calls `body` with the bytes written.
  func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
    body(UnsafeBufferPointer(start: base, count: count))
  }

  deinit {
    if onHeap { base.deallocate() }
  }

  /// Runs `body` with a sink over 1 KiB of stack scratch, releasing it afterwards.
  @inline(__always)
  static func withScratch<Result, Failure: Error>(_ body: (inout ByteSink) throws(Failure) -> Result)
    throws(Failure) -> Result
  {
    try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch throws(Failure) in
      var sink = ByteSink(scratch: scratch)
      return try body(&sink)
    }
  }
}
