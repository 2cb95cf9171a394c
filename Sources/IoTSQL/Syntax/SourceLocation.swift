/// A position in SQL text: a UTF-8 byte offset and the 1-based line and column (columns count
/// characters, so a caret lines up under the character).
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
  /// Byte offset from the start of the text.
  public var offset: Int
  /// 1-based line.
  public var line: Int
  /// 1-based column, in characters.
  public var column: Int

  /// Creates a location.
  public init(offset: Int, line: Int, column: Int) {
    self.offset = offset
    self.line = line
    self.column = column
  }

  /// The start of a text.
  public static let start = SourceLocation(offset: 0, line: 1, column: 1)

  /// `line:column`.
  public var description: String { "\(line):\(column)" }
}

/// A half-open range of SQL text.
public struct SourceRange: Sendable, Equatable, Hashable {
  /// The first character.
  public var start: SourceLocation
  /// Just past the last character.
  public var end: SourceLocation

  /// Creates a range.
  public init(start: SourceLocation, end: SourceLocation) {
    self.start = start
    self.end = end
  }

  /// An empty range at `location`.
  public init(at location: SourceLocation) {
    self.init(start: location, end: location)
  }

  /// The smallest range covering both.
  public func union(_ other: SourceRange) -> SourceRange {
    SourceRange(
      start: start.offset <= other.start.offset ? start : other.start,
      end: end.offset >= other.end.offset ? end : other.end)
  }
}
