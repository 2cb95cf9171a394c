/// The message digests of the hashing functions, written here because swift-crypto has neither MD2
/// nor SHA-224. One-shot: each takes all the bytes and returns the digest.
enum Digest {
  /// Lower-case hexadecimal of `bytes`.
  static func hex(_ bytes: [UInt8]) -> String {
    String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
      for (index, byte) in bytes.enumerated() {
        buffer[2 * index] = hexDigit(byte >> 4)
        buffer[2 * index + 1] = hexDigit(byte & 0x0f)
      }
      return bytes.count * 2
    }
  }

  @inline(__always) private static func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? 48 + nibble : 87 + nibble
  }

  /// Merkle–Damgård padding: 0x80, zeros, then the bit length in `lengthBytes` bytes, to a multiple
  /// of `blockSize`.
  static func padded(
    _ message: [UInt8], blockSize: Int, lengthBytes: Int, bigEndian: Bool
  ) -> [UInt8] {
    var data = message
    data.reserveCapacity(message.count + blockSize + lengthBytes)
    data.append(0x80)
    while (data.count + lengthBytes) % blockSize != 0 { data.append(0) }
    let bitLength = UInt64(message.count) &* 8
    var lengthField = [UInt8](repeating: 0, count: lengthBytes)
    for index in 0..<8 {
      let byte = UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(index)))
      if bigEndian { lengthField[lengthBytes - 1 - index] = byte } else { lengthField[index] = byte }
    }
    data.append(contentsOf: lengthField)
    return data
  }
}
