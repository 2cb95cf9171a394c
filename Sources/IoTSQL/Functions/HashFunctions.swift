/// The hashing functions: `md2`, `md5`, `sha1`, `sha224`, `sha256`, `sha384`, `sha512`.
///
/// Each returns the lower-case hexadecimal digest of the UTF-8 bytes of its argument's String form.
/// A Binary argument is hashed as its bytes. Null and Undefined give Undefined, as does a value with
/// no String form.
enum HashFunctions {
  /// The rows of the catalogue.
  static let specs: [FunctionSpec] = [
    spec("md2", Digest.md2, "MD2 (RFC 1319)"),
    spec("md5", Digest.md5, "MD5 (RFC 1321)"),
    spec("sha1", Digest.sha1, "SHA-1"),
    spec("sha224", Digest.sha224, "SHA-224"),
    spec("sha256", Digest.sha256, "SHA-256"),
    spec("sha384", Digest.sha384, "SHA-384"),
    spec("sha512", Digest.sha512, "SHA-512"),
  ]

  private static func spec(
    _ name: String, _ digest: @escaping @Sendable ([UInt8]) -> [UInt8], _ title: String
  ) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "hash", arity: 1...1, signature: "\(name)(value) -> String",
      help: "The lower-case hex \(title) digest of the value's UTF-8 String form.",
      implementation: { call in
        guard let bytes = bytes(of: call[0]) else { return .undefined }
        return .string(Digest.hex(digest(bytes)))
      })
  }

  /// The bytes a hash function digests: a Binary's bytes, otherwise the UTF-8 of the String form.
  static func bytes(of value: Value) -> [UInt8]? {
    switch value {
    case .undefined, .null: return nil
    case .binary(let bytes): return bytes
    case .string(let text): return Array(text.utf8)
    default: return Coercions.toText(value).map { Array($0.utf8) }
    }
  }
}
