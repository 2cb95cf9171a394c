/// Version 4 UUIDs from the standard library's system generator (the `getrandom` system call on
/// Linux, no file descriptor). Foundation's `UUID()` read its randomness through a descriptor and,
/// while the process was out of them, gave `00000000-0000-4000-8000-000000000000` to every call:
/// `newuuid()` and every error record's trace id were one and the same.
public enum RandomUUID {
  /// A new version 4 (random) UUID in lower case: `8-4-4-4-12` hexadecimal digits.
  public static func string() -> String {
    var generator = SystemRandomNumberGenerator()
    return string(high: generator.next(), low: generator.next())
  }

  /// The UUID of 128 bits, `high` first, with the version (4) and variant (RFC 9562) bits set.
  static func string(high: UInt64, low: UInt64) -> String {
    let high = (high & ~0xF000) | 0x4000
    let low = (low & ~(0xC000 << 48)) | (0x8000 << 48)
    return String(unsafeUninitializedCapacity: 36) { buffer in
      var position = 0
      for word in [high, low] {
        for index in 0..<16 {
          if position == 8 || position == 13 || position == 18 || position == 23 {
            buffer[position] = UInt8(ascii: "-")
            position += 1
          }
          let digit = UInt8((word >> UInt64(60 - 4 * index)) & 0xF)
          buffer[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
          position += 1
        }
      }
      return position
    }
  }
}
