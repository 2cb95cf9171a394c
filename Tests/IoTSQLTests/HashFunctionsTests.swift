import Testing

@testable import IoTSQL

/// Fixed vectors: RFC 1319 (MD2), RFC 1321 (MD5), FIPS 180 examples (SHA family), and the AWS guide.
struct HashFunctionsTests {
  struct Vector: Sendable, CustomStringConvertible {
    let function: String
    let input: String
    let hex: String
    var description: String { "\(function)(\(input.prefix(20)))" }
  }

  static let alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  static let digits80 = String(repeating: "1234567890", count: 8)
  static let fips448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

  static let vectors: [Vector] = [
    // AWS IoT SQL reference examples.
    Vector(function: "md5", input: "hello", hex: "5d41402abc4b2a76b9719d911017c592"),
    Vector(function: "md2", input: "hello", hex: "a9046c73e00331af68917d3804f70655"),
    // RFC 1319 test suite.
    Vector(function: "md2", input: "", hex: "8350e5a3e24c153df2275c9f80692773"),
    Vector(function: "md2", input: "a", hex: "32ec01ec4a6dac72c0ab96fb34c0b5d1"),
    Vector(function: "md2", input: "abc", hex: "da853b0d3f88d99b30283a69e6ded6bb"),
    Vector(function: "md2", input: "message digest", hex: "ab4f496bfb2a530b219ff33031fe06b0"),
    Vector(function: "md2", input: "abcdefghijklmnopqrstuvwxyz", hex: "4e8ddff3650292ab5a4108c3aa47940b"),
    Vector(function: "md2", input: alphanumeric, hex: "da33def2a42df13975352846c30338cd"),
    Vector(function: "md2", input: digits80, hex: "d5976f79d83d3a0dc9806c3c66f3efd8"),
    // RFC 1321 test suite.
    Vector(function: "md5", input: "", hex: "d41d8cd98f00b204e9800998ecf8427e"),
    Vector(function: "md5", input: "a", hex: "0cc175b9c0f1b6a831c399e269772661"),
    Vector(function: "md5", input: "abc", hex: "900150983cd24fb0d6963f7d28e17f72"),
    Vector(function: "md5", input: "message digest", hex: "f96b697d7cb7938d525a2f31aaf161d0"),
    Vector(function: "md5", input: "abcdefghijklmnopqrstuvwxyz", hex: "c3fcd3d76192e4007dfb496cca67e13b"),
    Vector(function: "md5", input: alphanumeric, hex: "d174ab98d277d9f5a5611c2c9f419d9f"),
    Vector(function: "md5", input: digits80, hex: "57edf4a22be3c955ac49da2e2107b67a"),
    // FIPS 180 examples.
    Vector(function: "sha1", input: "", hex: "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    Vector(function: "sha1", input: "abc", hex: "a9993e364706816aba3e25717850c26c9cd0d89d"),
    Vector(function: "sha1", input: fips448, hex: "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    Vector(function: "sha224", input: "", hex: "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"),
    Vector(function: "sha224", input: "abc", hex: "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
    Vector(
      function: "sha224", input: fips448, hex: "75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525"),
    Vector(
      function: "sha256", input: "",
      hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    Vector(
      function: "sha256", input: "abc",
      hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    Vector(
      function: "sha256", input: fips448,
      hex: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    Vector(
      function: "sha384", input: "",
      hex: "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
    Vector(
      function: "sha384", input: "abc",
      hex: "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
    Vector(
      function: "sha512", input: "",
      hex:
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    ),
    Vector(
      function: "sha512", input: "abc",
      hex:
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    ),
    // Multi-byte UTF-8 is hashed as its bytes.
    Vector(function: "md5", input: "€", hex: "bca53fde466a76b7bee3e18997e94a7a"),
  ]

  static func call(_ name: String, _ arguments: [Value]) -> Value {
    let spec = FunctionRegistry.lookup(name)!
    let call = FunctionCall(
      arguments: arguments[...], context: EvaluationContext(topic: "t", payload: []),
      version: .v2016_03_23, prepared: nil)
    return spec.implementation(call)
  }

  @Test(arguments: vectors)
  func knownVector(_ vector: Vector) {
    #expect(Self.call(vector.function, [.string(vector.input)]) == .string(vector.hex))
  }

  @Test func millionAsUnderSHA256AndSHA1() {
    let million = String(repeating: "a", count: 1_000_000)
    #expect(
      Self.call("sha256", [.string(million)])
        == .string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"))
    #expect(Self.call("sha1", [.string(million)]) == .string("34aa973cd4c4daa4f61eeb2bdbad27316534016f"))
  }

  @Test func blockBoundaryLengths() {
    // 55, 56, 63, 64 bytes straddle the one-block/two-block padding boundary of MD5 and SHA-256;
    // 111/112 do the same for SHA-512. Each must differ from its neighbours and be stable.
    var seen = Set<String>()
    for length in [55, 56, 63, 64, 111, 112, 127, 128] {
      let input = Value.string(String(repeating: "x", count: length))
      for name in ["md2", "md5", "sha1", "sha224", "sha256", "sha384", "sha512"] {
        guard case .string(let hex) = Self.call(name, [input]) else {
          Issue.record("\(name) gave no string")
          continue
        }
        #expect(seen.insert(hex).inserted)
      }
    }
  }

  @Test func binaryIsHashedAsItsBytes() {
    #expect(Self.call("md5", [.binary(Array("hello".utf8))]) == .string("5d41402abc4b2a76b9719d911017c592"))
  }

  @Test(arguments: ["md2", "md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
  func nullAndUndefinedGiveUndefined(_ name: String) {
    #expect(Self.call(name, [.null]) == .undefined)
    #expect(Self.call(name, [.undefined]) == .undefined)
    #expect(FunctionRegistry.lookup(name)?.family == "hash")
    #expect(FunctionRegistry.lookup(name)?.arity == 1...1)
  }
}
