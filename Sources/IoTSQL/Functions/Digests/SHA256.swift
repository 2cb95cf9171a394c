extension Digest {
  /// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
  private static let sha256Constants: [UInt32] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4,
    0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe,
    0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f,
    0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da, 0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
    0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc,
    0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
    0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070, 0x19a4_c116,
    0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7,
    0xc671_78f2,
  ]

  /// SHA-256 (FIPS 180-4): 32 bytes.
  static func sha256(_ message: [UInt8]) -> [UInt8] {
    sha256Family(
      message,
      initial: [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c,
        0x1f83_d9ab, 0x5be0_cd19,
      ])
  }

  /// SHA-224 (FIPS 180-4): SHA-256 with other initial values, cut to 28 bytes.
  static func sha224(_ message: [UInt8]) -> [UInt8] {
    Array(
      sha256Family(
        message,
        initial: [
          0xc105_9ed8, 0x367c_d507, 0x3070_dd17, 0xf70e_5939, 0xffc0_0b31, 0x6858_1511,
          0x64f9_8fa7, 0xbefa_4fa4,
        ]
      ).prefix(28))
  }

  private static func sha256Family(_ message: [UInt8], initial: [UInt32]) -> [UInt8] {
    let data = padded(message, blockSize: 64, lengthBytes: 8, bigEndian: true)
    let k = sha256Constants
    var h = initial
    var w = [UInt32](repeating: 0, count: 64)
    // Unchecked buffers: the indices are fixed by the block layout; bounds checks cost half the time.
    data.withUnsafeBufferPointer { data in
      k.withUnsafeBufferPointer { k in
        w.withUnsafeMutableBufferPointer { w in
          for blockStart in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
              let at = blockStart + i * 4
              w[i] =
                UInt32(data[at]) << 24 | UInt32(data[at + 1]) << 16 | UInt32(data[at + 2]) << 8
                | UInt32(data[at + 3])
            }
            for i in 16..<64 {
              let s0 = rotateRight(w[i - 15], 7) ^ rotateRight(w[i - 15], 18) ^ (w[i - 15] >> 3)
              let s1 = rotateRight(w[i - 2], 17) ^ rotateRight(w[i - 2], 19) ^ (w[i - 2] >> 10)
              w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var a = h[0]
            var b = h[1]
            var c = h[2]
            var d = h[3]
            var e = h[4]
            var f = h[5]
            var g = h[6]
            var hh = h[7]
            for i in 0..<64 {
              let s1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)
              let choice = (e & f) ^ (~e & g)
              let temp1 = hh &+ s1 &+ choice &+ k[i] &+ w[i]
              let s0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)
              let majority = (a & b) ^ (a & c) ^ (b & c)
              let temp2 = s0 &+ majority
              hh = g
              g = f
              f = e
              e = d &+ temp1
              d = c
              c = b
              b = a
              a = temp1 &+ temp2
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
            h[5] = h[5] &+ f
            h[6] = h[6] &+ g
            h[7] = h[7] &+ hh
          }
        }
      }
    }
    return bigEndianBytes(h)
  }
}
