/// Byte-exact text operations. Swift's `String` compares, hashes, searches and splits by grapheme
/// clusters under canonical equivalence: `"caf\u{E9}" == "cafe\u{301}"`, and a `"` or `/` followed by
/// a combining mark (U+0301) is no `"` or `/` Character. Wherever data a device sends is quoted,
/// split, masked or used as a key, that merged distinct names (two topics, files, columns) and let a
/// quote or separator through unseen (an SQL identifier ended early, a path escaped its checks).
/// These work on UTF-8 bytes, as MQTT, SQLite, file systems and AWS's Java compare.
public struct ExactText: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
  /// The text.
  public let text: String

  /// Wraps `text`.
  public init(_ text: String) { self.text = text }

  /// Wraps the text of a substring.
  public init(_ text: Substring) { self.text = String(text) }

  /// Wraps a literal (`"#"`).
  public init(stringLiteral value: String) { text = value }

  /// Equal when the UTF-8 bytes are.
  public static func == (left: ExactText, right: ExactText) -> Bool {
    left.text.utf8.elementsEqual(right.text.utf8)
  }

  /// Hashes the UTF-8 bytes.
  public func hash(into hasher: inout Hasher) {
    var text = text
    text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
  }

  /// The text.
  public var description: String { text }
}

extension String {
  /// Every occurrence of `target` replaced by `replacement`, matched byte for byte (UTF-8).
  public func replacingExactly(_ target: String, with replacement: String) -> String {
    let bytes = Array(utf8)
    let needle = Array(target.utf8)
    guard !needle.isEmpty, bytes.count >= needle.count else { return self }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    var changed = false
    while index < bytes.count {
      if bytes[index] == needle[0], index + needle.count <= bytes.count,
        bytes[index..<index + needle.count].elementsEqual(needle)
      {
        out += replacement.utf8
        index += needle.count
        changed = true
      } else {
        out.append(bytes[index])
        index += 1
      }
    }
    return changed ? String(decoding: out, as: UTF8.self) : self
  }
}

extension Substring {
  /// Whether the bytes are `.`.
  public var isExactlyDot: Bool { utf8.elementsEqual(CollectionOfOne(UInt8(ascii: "."))) }
  /// Whether the bytes are `..`.
  public var isExactlyDotDot: Bool { utf8.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) }
}

extension StringProtocol {
  /// Whether the UTF-8 bytes start with `prefix`'s.
  public func startsExactly(with prefix: some StringProtocol) -> Bool { utf8.starts(with: prefix.utf8) }

  /// Whether the UTF-8 bytes are `other`'s.
  public func isExactly(_ other: some StringProtocol) -> Bool { utf8.elementsEqual(other.utf8) }

  /// The parts between the `separator` bytes (an ASCII character), empty ones kept.
  public func splitExactly(_ separator: Unicode.Scalar) -> [Substring] {
    String(self).utf8.split(separator: UInt8(separator.value), omittingEmptySubsequences: false).map {
      Substring($0)
    }
  }
}
