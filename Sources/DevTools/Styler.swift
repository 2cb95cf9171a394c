import IoTSQL

/// ANSI colours for the REPL, or none: plain when output is not a terminal or `NO_COLOR` is set.
public struct Styler: Sendable {
  /// True when escape sequences are written.
  public var enabled: Bool

  /// Creates a styler.
  public init(enabled: Bool) { self.enabled = enabled }

  /// The rule of <https://no-color.org>: colour only on a terminal, never when `NO_COLOR` is set to
  /// a non-empty value or `TERM` is `dumb`.
  public static func decide(isTerminal: Bool, environment: [String: String]) -> Styler {
    let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
    return Styler(enabled: isTerminal && !noColor && environment["TERM"] != "dumb")
  }

  /// `text` without the colour codes this styler writes (`ESC [` digits and `;`, then `m`); any
  /// other escape, a statement's own text, stays (everything from an ESC to the next `m` went, the
  /// rest of an error's line and its caret with it).
  public static func plain(_ text: String) -> String {
    guard text.utf8.contains(0x1B) else { return text }
    let source = Array(text.utf8)
    var bytes: [UInt8] = []
    var index = 0
    while index < source.count {
      if source[index] == 0x1B, index + 1 < source.count, source[index + 1] == UInt8(ascii: "[") {
        var end = index + 2
        while end < source.count, source[end] == UInt8(ascii: ";") || (0x30...0x39).contains(source[end]) {
          end += 1
        }
        if end < source.count, source[end] == UInt8(ascii: "m") {
          index = end + 1
          continue
        }
      }
      bytes.append(source[index])
      index += 1
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  func wrap(_ text: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

  /// Red bold, for `error:`.
  public func error(_ text: String) -> String { wrap(text, "1;31") }
  /// Yellow, for warnings.
  public func warning(_ text: String) -> String { wrap(text, "33") }
  /// Dim, for notes such as "no match".
  public func dim(_ text: String) -> String { wrap(text, "2") }
  /// Bold, for headings.
  public func bold(_ text: String) -> String { wrap(text, "1") }
  /// Cyan, for object keys.
  public func key(_ text: String) -> String { wrap(text, "36") }
  /// Green, for strings.
  public func string(_ text: String) -> String { wrap(text, "32") }
  /// Yellow, for numbers.
  public func number(_ text: String) -> String { wrap(text, "33") }
  /// Magenta, for true, false and null.
  public func literal(_ text: String) -> String { wrap(text, "35") }

  /// A value as pretty JSON (two-space indent), coloured by kind.
  public func pretty(_ value: Value, indent: String = "") -> String {
    switch value {
    case .undefined: return dim("Undefined")
    case .binary: return dim(ValueText.pretty(value))
    case .null: return literal("null")
    case .bool(let flag): return literal(flag ? "true" : "false")
    case .int, .decimal: return number(JSONWriter.numberText(value))
    case .string: return string(JSONWriter.string(value))
    case .array(let elements):
      if elements.isEmpty { return "[]" }
      let inner = indent + "  "
      return "[\n"
        + elements.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
    case .object(let object):
      let members = object.members.filter { $0.1 != .undefined }
      if members.isEmpty { return "{}" }
      let inner = indent + "  "
      return "{\n"
        + members.map { inner + key(JSONWriter.string(.string($0.0))) + ": " + pretty($0.1, indent: inner) }
        .joined(separator: ",\n") + "\n\(indent)}"
    }
  }
}
