extension Digest {
  /// SHA-1 (FIPS 180-4): 20 bytes.
  static func sha1(_ message: [UInt8]) -> [UInt8] {
    let data = padded(message, blockSize: 64, lengthBytes: 8, bigEndian: true)
    var h: [UInt32] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0]
    var w = [UInt32](repeating: 0, count: 80)
    for blockStart in stride(from: 0, to: data.count, by: 64) {
      for i in 0..<16 {
        let at = blockStart + i * 4
        w[i] =
          UInt32(data[at]) << 24 | UInt32(data[at + 1]) << 16 | UInt32(data[at + 2]) << 8
          | UInt32(data[at + 3])
      }
      for i in 16..<80 { w[i] = rotateLeft(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
      var a = h[0]
      var b = h[1]
      var c = h[2]
      var d = h[3]
      var e = h[4]
      for i in 0..<80 {
        let f: UInt32
        let k: UInt32
        switch i {
        case 0..<20:
          f = (b & c) | (~b & d)
          k = 0x5a82_7999
        case 20..<40:
          f = b ^ c ^ d
          k = 0x6ed9_eba1
        case 40..<60:
          f = (b & c) | (b & d) | (c & d)
          k = 0x8f1b_bcdc
        default:
          f = b ^ c ^ d
          k = 0xca62_c1d6
        }
        let temp = rotateLeft(a, 5) &+ f &+ e &+ k &+ w[i]
        e = d
        d = c
        c = rotateLeft(b, 30)
        b = a
        a = temp
      }
      h[0] = h[0] &+ a
      h[1] = h[1] &+ b
      h[2] = h[2] &+ c
      h[3] = h[3] &+ d
      h[4] = h[4] &+ e
    }
    return bigEndianBytes(h)
  }
}
