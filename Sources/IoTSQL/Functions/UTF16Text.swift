extension String {
  /// The text of the UTF-16 code units `units`, each lone surrogate replaced by U+FFFD, exactly as
  /// `String(decoding: units, as: UTF16.self)` gives it. That initializer took the standard
  /// library's generic path, about two allocations per character (`regexp_substr` of a 32-character
  /// match: 69); this one transcodes into one buffer.
  init<Units: Collection<UInt16>>(utf16Units units: Units) {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(units.count * 3)
    var iterator = units.makeIterator()
    var next = iterator.next()
    while let unit = next {
      next = iterator.next()
      var scalar = UInt32(unit)
      if (0xD800...0xDBFF).contains(unit), let low = next, (0xDC00...0xDFFF).contains(low) {
        scalar = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
        next = iterator.next()
      } else if (0xD800...0xDFFF).contains(unit) {
        scalar = 0xFFFD
      }
      // Never a surrogate here (a lone one became U+FFFD): always a scalar.
      UTF8.encode(Unicode.Scalar(scalar)!) { bytes.append($0) }
    }
    self = String(decoding: bytes, as: UTF8.self)
  }
}
