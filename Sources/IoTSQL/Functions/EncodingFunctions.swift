/// encode and decode with the 'base64' scheme.
///
/// Policy: the scheme must be the string 'base64' (any case), else Undefined; a constant other
/// scheme, or a scheme that is no constant (a field, a SET variable), is a compile error.
/// `encode(*, 'base64')` receives the payload as `.binary(bytes)` from the compiler, so the raw
/// bytes are encoded; any other value is encoded from its String form
/// (Null, Undefined: Undefined). `decode` gives the parsed document when the decoded bytes are
/// JSON, else the decoded text; input that is not base64, or bytes that are not UTF-8, give Null.
enum EncodingFunctions {
  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "encode", family: "encoding", arity: 2...2, minimumVersion: .v2016_03_23,
      signature: "encode(value, 'base64') -> String",
      help: "The base64 of value's String form; encode(*, 'base64') encodes the raw payload bytes.",
      prepare: { constants, _ throws(FunctionPrepareError) in
        try checkScheme(constants, function: "encode")
        return nil
      }
    ) { call in
      guard isBase64Scheme(call[1]) else { return .undefined }
      switch call[0] {
      case .binary(let bytes): return .string(Base64.encode(bytes))
      default:
        guard let text = Coercions.toText(call[0]) else { return .undefined }
        return .string(Base64.encode(Array(text.utf8)))
      }
    },
    FunctionSpec(
      name: "decode", family: "encoding", arity: 2...6, minimumVersion: .v2016_03_23,
      signature: "decode(value, 'base64') -> Any",
      help: "Decodes base64: a JSON document becomes its value, other text a String; bad input Null.",
      documentedArity: 2...2,
      prepare: { constants, _ throws(FunctionPrepareError) in
        try checkScheme(constants, function: "decode")
        return nil
      }
    ) { call in
      guard call.count == 2, isBase64Scheme(call[1]) else { return .undefined }
      guard let text = Coercions.toText(call[0]) else { return .undefined }
      guard let bytes = Base64.decode(text) else { return .null }
      if let document = try? JSONReader.parse(bytes, options: .for(call.version)) { return document }
      guard let decoded = String(validating: bytes, as: UTF8.self) else { return .null }
      return .string(decoded)
    },
  ]

  private static func isBase64Scheme(_ value: Value) -> Bool {
    guard case .string(let scheme) = value else { return false }
    return scheme.lowercased() == "base64"
  }

  private static func checkScheme(_ constants: [Value?], function: String) throws(FunctionPrepareError) {
    guard constants.count > 1 else { return }
    // "encodingScheme: A literal string" (AWS's encode and decode), and the SET page excludes
    // parameters that switch a function's mode from variables: a field or a variable is refused.
    guard let scheme = constants[1] else {
      throw FunctionPrepareError(
        argument: 1,
        message: "the scheme of \(function)() must be a literal string ('base64')")
    }
    guard case .string(let scheme) = scheme else { return }
    if scheme.lowercased() == "proto" {
      throw FunctionPrepareError(
        argument: 1,
        message:
          "\(function)() with 'proto' needs a descriptor in the AWS service S3, which this engine does not call"
      )
    }
    if scheme.lowercased() != "base64" {
      throw FunctionPrepareError(
        argument: 1, message: "unknown \(function) scheme '\(scheme)'; the only scheme is 'base64'")
    }
    if constants.count > 2 {
      throw FunctionPrepareError(
        argument: 2,
        message: "function '\(function)' with 'base64' takes 2 arguments but \(constants.count) were given",
        isAlwaysUndefined: true)
    }
  }
}

/// RFC 4648 base64 with the standard alphabet: `decode()`'s, and every input field that carries
/// bytes as base64 (a replay line's `payload_base64`, an error record's `base64OriginalPayload`,
/// MQTT 5 correlation data), so that each refuses the same text. (Foundation's decoder took `====`
/// as one zero byte and `aG=k` as `h$`: bytes made up from text that is not base64.)
public enum Base64 {
  private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
  private static let values: [UInt8] = {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
    return table
  }()

  /// `bytes` in base64 with `=` padding.
  public static func encode(_ bytes: [UInt8]) -> String {
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index + 2 < bytes.count {
      let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
      output.append(alphabet[Int(chunk >> 18 & 63)])
      output.append(alphabet[Int(chunk >> 12 & 63)])
      output.append(alphabet[Int(chunk >> 6 & 63)])
      output.append(alphabet[Int(chunk & 63)])
      index += 3
    }
    let rest = bytes.count - index
    if rest > 0 {
      let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
      output.append(alphabet[Int(chunk >> 18 & 63)])
      output.append(alphabet[Int(chunk >> 12 & 63)])
      output.append(rest == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
      output.append(UInt8(ascii: "="))
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// Decodes base64, padded or not (as Java's basic decoder); nil for any other character, a
  /// misplaced `=`, or a dangling single character. With `requiringPadding`, also nil unless the
  /// text is whole groups of four (padded as the encoders of JSON tools pad it).
  public static func decode(_ text: String, requiringPadding: Bool = false) -> [UInt8]? {
    var bytes = Array(text.utf8)
    if requiringPadding, bytes.count % 4 != 0 { return nil }
    if bytes.count % 4 == 0, bytes.last == UInt8(ascii: "=") {
      bytes.removeLast()
      if bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
    }
    guard bytes.count % 4 != 1 else { return nil }
    var output: [UInt8] = []
    output.reserveCapacity(bytes.count * 3 / 4)
    var accumulator: UInt32 = 0
    var bits = 0
    for byte in bytes {
      let value = values[Int(byte)]
      guard value != 0xFF else { return nil }
      accumulator = accumulator << 6 | UInt32(value)
      bits += 6
      if bits >= 8 {
        bits -= 8
        output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
      }
    }
    return output
  }
}
