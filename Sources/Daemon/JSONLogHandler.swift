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
    var text = "{\"time\":\(ErrorRecord.quote(ISO8601DateFormatter().string(from: Date()))),"
    text += "\"level\":\(ErrorRecord.quote(event.level.rawValue)),\"label\":\(ErrorRecord.quote(label)),"
    text += "\"message\":\(ErrorRecord.quote(event.message.description))"
    let merged = metadata.merging(event.metadata ?? [:]) { $1 }
    for key in merged.keys.sorted() {
      text += ",\(ErrorRecord.quote(key)):\(ErrorRecord.quote(merged[key]!.description))"
    }
    text += "}\n"
    FileHandle.standardError.write(Data(text.utf8))
  }
}
