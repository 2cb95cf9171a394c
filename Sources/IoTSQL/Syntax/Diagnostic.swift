import Foundation

/// One problem found in SQL text, with where it is.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
  /// How bad it is.
  public enum Severity: String, Sendable {
    /// The statement cannot run.
    case error
    /// The statement runs but probably not as meant.
    case warning
  }

  /// Which stage found it; the eval protocol reports it as `kind`.
  public enum Stage: String, Sendable {
    /// The lexer or the parser.
    case parse
    /// The checker or the compiler.
    case compile
    /// The VM: an evaluation stopped by its limits (``EvaluationLimits``).
    case runtime
  }

  /// Error or warning.
  public var severity: Severity
  /// Parse, compile or runtime.
  public var stage: Stage
  /// One sentence, lower case, no final period: `expected an expression after ','`.
  public var message: String
  /// The offending token or node.
  public var range: SourceRange
  /// A second place the message names as `at LINE:COLUMN` (the bracket an unclosed one opened at).
  public var related: SourceLocation?

  /// Creates a diagnostic.
  public init(
    _ severity: Severity = .error, stage: Stage, _ message: String, at range: SourceRange,
    related: SourceLocation? = nil
  ) {
    self.severity = severity
    self.stage = stage
    self.message = message
    self.range = range
    self.related = related
  }

  /// The message with its `related` place written by `place` (a rule file's line and column
  /// instead of the statement's), so both places of a message are in the same terms.
  public func message(placing place: (SourceLocation) -> String) -> String {
    guard let related, let found = message.range(of: " at \(related)") else { return message }
    return message.replacingCharacters(in: found, with: " at " + place(related))
  }

  /// `1:24: error: expected an expression after ','`.
  public var description: String { "\(range.start): \(severity.rawValue): \(message)" }

  /// The lines of a source as diagnostics show them, split once for all of its diagnostics (each
  /// split the whole source again: 5,000 warnings of a generated one-line statement took 13 s).
  public struct SourceLines: Sendable {
    /// Per line, its scalars.
    let lines: [[Unicode.Scalar]]

    /// Splits `source`. Lines end at LF, as the lexer counts them (by scalars: `"\r\n"` is one
    /// Character, which a split by Characters never cut). A CR before the LF is dropped; any other
    /// CR, a blank to the lexer, shows as a space so that the caret keeps its column.
    public init(_ source: String) {
      lines = source.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
        let scalars = line.last == "\r" ? line.dropLast() : line
        return scalars.map { $0 == "\r" ? " " : $0 }
      }
    }
  }

  /// The diagnostic, then the line of `source` it points into, then a caret under its column.
  public func rendered(in source: String, prefix: String = "") -> String {
    rendered(in: SourceLines(source), prefix: prefix)
  }

  /// The diagnostic, then the line of `source` it points into, then a caret under its column.
  public func rendered(in source: SourceLines, prefix: String = "") -> String {
    var text = prefix + description
    let index = range.start.line - 1
    if source.lines.indices.contains(index) {
      // The caret line copies the tabs before the column and puts as many spaces as a terminal
      // gives each other character (two for a wide one, none for a combining mark or for what
      // joins the emoji before it), so the caret sits under the token however tabs expand and
      // whatever the script.
      let width = max(0, range.start.column - 1)
      // A long line (a statement generated on one line, 100 KB of it) is shown around the column,
      // cut with `…` at either side, not whole with a caret after thousands of spaces.
      let all = source.lines[index]
      let low = all.count > Self.longLine ? max(0, min(width, all.count) - Self.context) : 0
      let high = all.count > Self.longLine ? min(all.count, max(width, low) + Self.context) : all.count
      var indent = low > 0 ? " " : ""
      var joins = false
      var openFlag = false
      for scalar in all[low..<max(low, min(width, high))] {
        let indicator = (0x1F1E6...0x1F1FF).contains(scalar.value)
        // A skin tone modifies the emoji before it.
        let modifier = (0x1F3FB...0x1F3FF).contains(scalar.value)
        if scalar == "\t" {
          indent += "\t"
        } else if !joins && !modifier && !(indicator && openFlag) {
          indent += String(repeating: " ", count: Self.cells(scalar))
        }
        joins = scalar == "\u{200D}"
        openFlag = indicator && !openFlag
      }
      indent += String(repeating: " ", count: max(0, width - all.count))
      let shown =
        (low > 0 ? "…" : "") + String(String.UnicodeScalarView(all[low..<high]))
        + (high < all.count ? "…" : "")
      text += "\n" + shown + "\n" + indent + "^"
    }
    return text
  }

  /// Lines longer than this many scalars are shown around the column, `context` each side.
  static let longLine = 200
  static let context = 80
}

extension Diagnostic {
  /// The terminal cells `scalar` takes: 0 for a combining mark or a zero-width character, 2 for an
  /// East Asian wide or fullwidth character or an emoji shown as one, else 1.
  /// (The caret line gives none to a scalar after a zero-width joiner, or to the second regional
  /// indicator of a flag: they join the glyph before them.)
  static func cells(_ scalar: Unicode.Scalar) -> Int {
    switch scalar.properties.generalCategory {
    case .nonspacingMark, .enclosingMark, .format: return 0
    default: break
    }
    if scalar.properties.isEmojiPresentation { return 2 }
    switch scalar.value {
    case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
      0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
      0xFFE0...0xFFE6, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
      return 2
    default: return 1
    }
  }
}

/// Thrown when SQL text does not compile: every diagnostic found, errors first.
public struct SQLError: Error, Sendable, CustomStringConvertible {
  /// What was found, in source order.
  public var diagnostics: [Diagnostic]
  /// The statement text, so the error can be rendered with a caret.
  public var source: String

  /// Creates an error.
  public init(_ diagnostics: [Diagnostic], source: String) {
    self.diagnostics = diagnostics
    self.source = source
  }

  /// The first error, which the one-line reports name.
  public var first: Diagnostic { diagnostics.first(where: { $0.severity == .error }) ?? diagnostics[0] }

  /// Every error, in source order (the first diagnostic when none is an error): what a report that
  /// places each problem on its own says.
  public var errors: [Diagnostic] {
    let errors = diagnostics.filter { $0.severity == .error }
    return errors.isEmpty ? [first] : errors
  }

  /// Every diagnostic with its line and caret.
  public var description: String {
    let lines = Diagnostic.SourceLines(source)
    return diagnostics.map { $0.rendered(in: lines) }.joined(separator: "\n")
  }
}
