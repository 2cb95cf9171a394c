import Foundation
import Logging
import RulesEngine

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"time":..., "level":..., "label":..., "message":..., <metadata>}`.
public struct JSONLogHandler: LogHandler {
  /// The logger label.
  public let label: String
  /// Metadata for every record.
  public var metadata: Logger.Metadata = [:]
  /// The lowest level written.
  public var logLevel: Logger.Level = .info

  /// Creates a handler.
  public init(label: String) { self.label = label }

  /// Metadata by key.
  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  /// Writes one record.
  public func log(event: LogEvent) {
    var text = "{\"time\":\"\(Self.timestamp(Date()))\","
    text += "\"level\":\(ErrorRecord.quote(event.level.rawValue)),\"label\":\(ErrorRecord.quote(label)),"
    text += "\"source\":\(ErrorRecord.quote(event.source)),"
    text += "\"message\":\(ErrorRecord.quote(event.message.description))"
    let merged = metadata.merging(event.metadata ?? [:]) { $1 }
    for key in merged.keys.sorted() {
      text += ",\(ErrorRecord.quote(key)):\(Self.json(merged[key]!))"
    }
    text += "}\n"
    // One record at a time: a large one goes out in several writes, which records from other
    // threads must not fall between (a JSON shipper then sees two broken lines).
    // By `write(2)`: a reader gone or a full disk drops the text (`FileHandle.write` stopped the
    // process).
    Self.writing.withLock { StandardStreams.error(text) }
  }

  /// Held while a record is written.
  static let writing = NSLock()

  /// `2026-12-02T16:24:46.123Z`: UTC with milliseconds (records of one second stay in order, and
  /// line up with other services' logs).
  static func timestamp(_ date: Date) -> String {
    let milliseconds = Int((date.timeIntervalSince1970 * 1000).rounded(.down))
    // The clock is past 1970: plain division is the floor.
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
      parts.tm_hour, parts.tm_min, parts.tm_sec, milliseconds % 1000)
  }

  /// A metadata value as JSON: a count or flag given as itself (`.stringConvertible(12)`) is a
  /// number or Boolean, text is a string, arrays and dictionaries nest.
  static func json(_ value: Logger.MetadataValue) -> String {
    switch value {
    case .string(let text): return ErrorRecord.quote(text)
    case .stringConvertible(let convertible):
      switch convertible {
      case let int as Int: return "\(int)"
      case let bool as Bool: return "\(bool)"
      case let double as Double where double.isFinite: return "\(double)"
      default: return ErrorRecord.quote(convertible.description)
      }
    case .array(let items): return "[" + items.map(json).joined(separator: ",") + "]"
    case .dictionary(let members):
      return "{"
        + members.keys.sorted().map { ErrorRecord.quote($0) + ":" + json(members[$0]!) }.joined(
          separator: ",")
        + "}"
    }
  }
}
