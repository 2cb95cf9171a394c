import Foundation
import IoTSQL
import Logging
import RulesEngine

/// swift-log's text lines on standard error, made safe from the values they carry: control
/// characters in metadata are escaped (`\n`, `\r`, `\u{1B}`), and in the message, whose line
/// breaks are kept (a SQL error's caret line), each further line starts with `    | `. A value from
/// a message (a payload field in an action's error) then cannot start a line that reads as
/// another log record, nor move the terminal's cursor.
public struct TextLogHandler: LogHandler {
  private var inner: StreamLogHandler

  /// Creates a handler writing to standard error.
  public init(label: String) { inner = StreamLogHandler.standardError(label: label) }

  /// Metadata for every record.
  public var metadata: Logger.Metadata {
    get { own }
    set {
      own = newValue
      inner.metadata = newValue.mapValues(Self.escaped)
    }
  }
  /// The logger's own metadata as given; `inner` holds it escaped, as it is written.
  private var own: Logger.Metadata = [:]
  /// The logger's own metadata as it is written (escaped).
  var writtenMetadata: Logger.Metadata { inner.metadata }

  /// The lowest level written.
  public var logLevel: Logger.Level {
    get { inner.logLevel }
    set { inner.logLevel = newValue }
  }

  /// Metadata by key: a logger's own (`logger[metadataKey:]`), escaped as a record's is.
  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { own[key] }
    set {
      own[key] = newValue
      inner[metadataKey: key] = newValue.map(Self.escaped)
    }
  }

  /// Writes one record, escaped.
  public func log(event: LogEvent) {
    var event = event
    // A place the line already starts with (`rules/r.json:2:61: error: ...`) is not said twice; JSON
    // readers get it as fields.
    if let place = event.metadata, case .string(let file)? = place["file"], let line = place["line"],
      let column = place["column"], event.message.description.hasPrefix("\(file):\(line):\(column):")
    {
      event.metadata = place.filter { !["file", "line", "column"].contains($0.key) }
    }
    event.message = Logger.Message(stringLiteral: Self.safeMessage(event.message.description))
    event.metadata = event.metadata.map { $0.mapValues(Self.escaped) }
    inner.log(event: event)
  }

  /// A message's lines, each escaped, the further ones after `\n    | `: text from a file name or
  /// a message that cannot pass for a record of its own.
  public static func safeMessage(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { escaped(String($0)) }
      .joined(separator: "\n    | ")
  }

  static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
    escaped(value, inside: false)
  }

  /// `value` as a field (quoted as ``field(_:)`` says), or `inside` an array or dictionary, which
  /// swift-log writes quoted already (`["a b", "… 12 more"]`): control characters escaped only.
  private static func escaped(_ value: Logger.Metadata.Value, inside: Bool) -> Logger.Metadata.Value {
    func text(_ string: String) -> String { inside ? escaped(string) : field(string) }
    switch value {
    case .string(let string): return .string(text(string))
    case .stringConvertible(let item): return .string(text(item.description))
    case .array(let items): return .array(items.map { escaped($0, inside: true) })
    case .dictionary(let items): return .dictionary(items.mapValues { escaped($0, inside: true) })
    }
  }

  /// Whether `scalar` is written as an escape: C0 and C1 controls but the tab, DEL, the Unicode
  /// line and paragraph separators, and the bidirectional controls (``ErrorRecord/isBidiControl(_:)``).
  static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    (scalar.value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(scalar.value)
      || scalar.value == 0x2028 || scalar.value == 0x2029 || ErrorRecord.isBidiControl(scalar)
  }

  /// A metadata value as one field of the line (`key=value`): quoted, with `\\` and `"` escaped,
  /// when it holds a space, a tab, `=` or `"` (a topic `a/x origin=forged` read as a second field),
  /// and control characters escaped.
  static func field(_ text: String) -> String {
    guard text.utf8.contains(where: { $0 == 0x20 || $0 == 0x09 || $0 == 0x3D || $0 == 0x22 }) else {
      return escaped(text)
    }
    let inner = text.replacingExactly("\\", with: "\\\\").replacingExactly("\"", with: "\\\"")
    return "\"" + escaped(inner) + "\""
  }

  /// `text` with control characters written as escapes (a tab stays).
  static func escaped(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out.unicodeScalars.append(scalar)
      case _ where isControl(scalar):
        out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}
