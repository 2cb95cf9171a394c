/// Splits IoT-SQL text into tokens, one at a time, on demand (the lexical rules of Grammar/IoTSQL.ebnf).
///
/// The lexer works on the UTF-8 bytes and tracks line and column as it goes: columns count Unicode
/// scalars, so a caret placed `column - 1` characters into the line sits under the token. It reads only
/// as far as the parser asks, which lets a template stop at the `}` that closes `${...}` without
/// looking at the text after it.
public struct Lexer: Sendable {
  /// The whole text; positions are relative to its start.
  let source: String
  /// Its UTF-8 bytes.
  let bytes: [UInt8]
  /// The next byte to read.
  private(set) var offset: Int
  /// The line of `offset`, 1-based.
  private(set) var line: Int
  /// The column of `offset`, 1-based, in Unicode scalars.
  private(set) var column: Int

  /// A lexer over `source` that starts at its beginning.
  public init(_ source: String) {
    self.source = source
    self.bytes = Array(source.utf8)
    self.offset = 0
    self.line = 1
    self.column = 1
  }

  /// A lexer over `source` that starts at byte `offset`, with line and column computed over the
  /// whole text. The offset is clamped to the text and moved back to the start of a character.
  init(_ source: String, from offset: Int) {
    self.init(source)
    var target = min(max(0, offset), bytes.count)
    while target > 0, target < bytes.count, Lexer.isContinuation(bytes[target]) { target -= 1 }
    while self.offset < target { step() }
  }

  /// Moves forward to byte `target` of the text (clamped to it; never backwards), counting lines
  /// and columns on the way: a caller that visits several places in order, as a template's
  /// `${...}` parts, walks the text once instead of once per place.
  mutating func advance(to target: Int) {
    let target = min(target, bytes.count)
    while offset < target { step() }
  }

  /// Every token of `source`, the final `.end` included; throws at the first lexical error.
  public static func tokens(of source: String) throws(SQLError) -> [Token] {
    var lexer = Lexer(source)
    var tokens: [Token] = []
    while true {
      let token = try lexer.next()
      tokens.append(token)
      if token.kind == .end { return tokens }
    }
  }

  /// The current position.
  var location: SourceLocation { SourceLocation(offset: offset, line: line, column: column) }

  /// The source text of `range`.
  func text(_ range: SourceRange) -> String {
    let start = min(max(0, range.start.offset), bytes.count)
    let end = min(max(start, range.end.offset), bytes.count)
    return String(decoding: bytes[start..<end], as: UTF8.self)
  }

  // MARK: - Scanning

  /// Reads the next token, skipping white space (space, tab, line feed, carriage return, form feed).
  public mutating func next() throws(SQLError) -> Token {
    skipWhitespace()
    let start = location
    guard offset < bytes.count else { return Token(.end, SourceRange(at: start)) }
    let byte = bytes[offset]
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
      let name = scanWord()
      let range = SourceRange(start: start, end: location)
      if let keyword = Keyword(rawValue: name.uppercased()) { return Token(.keyword(keyword), range) }
      return Token(.identifier(name), range)
    case UInt8(ascii: "0")...UInt8(ascii: "9"):
      return try scanNumber(from: start)
    case UInt8(ascii: "'"), UInt8(ascii: "\""):
      let value = try scanString(from: start)
      return Token(.string(value), SourceRange(start: start, end: location))
    case UInt8(ascii: "@"):
      step()
      guard offset < bytes.count, Lexer.isWordByte(bytes[offset]) else {
        throw error("expected a variable name after '@'", SourceRange(start: start, end: location))
      }
      let name = scanWord()
      return Token(.variable(name), SourceRange(start: start, end: location))
    default:
      return try scanSymbol(from: start)
    }
  }

  /// Skips white space.
  mutating func skipWhitespace() {
    while offset < bytes.count, Lexer.isWhitespace(bytes[offset]) { step() }
  }

  /// The raw text of an unquoted topic filter: every byte up to white space or the end. Empty when
  /// the text ends here.
  mutating func scanRawFilter() -> (text: String, range: SourceRange) {
    skipWhitespace()
    let start = location
    while offset < bytes.count, !Lexer.isWhitespace(bytes[offset]) { step() }
    let range = SourceRange(start: start, end: location)
    return (text(range), range)
  }

  /// Letters, digits and `_`.
  private mutating func scanWord() -> String {
    let start = offset
    while offset < bytes.count, Lexer.isWordByte(bytes[offset]) { step() }
    return String(decoding: bytes[start..<offset], as: UTF8.self)
  }

  /// `digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ]`, not followed by a letter, digit or `_`.
  private mutating func scanNumber(from start: SourceLocation) throws(SQLError) -> Token {
    var isDecimal = false
    skipDigits()
    if start.offset > 0, bytes[start.offset - 1] == UInt8(ascii: "."),
      offset < bytes.count, bytes[offset] == UInt8(ascii: ".") || Lexer.isWordByte(bytes[offset])
    {
      // A path's digit member (`a.0.b`, `mydata.item2.0.my-key`, `a.1x`): a key that is no name,
      // said as one rather than as a malformed number.
      while offset < bytes.count, Lexer.isWordByte(bytes[offset]) { step() }
      let range = SourceRange(start: start, end: location)
      throw error(
        "expected a member name after '.', found '\(text(range))' (use get() for keys that are not names)",
        range)
    }
    if offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "."), Lexer.isDigit(bytes[offset + 1]) {
      isDecimal = true
      step()
      skipDigits()
    } else if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
      // `1.` or `1.e5`: not a number (a fraction needs a digit after the point), and a member of a
      // number literal is no use; said at the number rather than at what follows it.
      step()
      let range = SourceRange(start: start, end: location)
      throw error("malformed number '\(text(range))': a digit must follow the '.'", range)
    }
    if offset < bytes.count, bytes[offset] | 0x20 == UInt8(ascii: "e") {
      var lookahead = offset + 1
      if lookahead < bytes.count,
        bytes[lookahead] == UInt8(ascii: "+") || bytes[lookahead] == UInt8(ascii: "-")
      {
        lookahead += 1
      }
      if lookahead < bytes.count, Lexer.isDigit(bytes[lookahead]) {
        isDecimal = true
        while offset < lookahead { step() }
        skipDigits()
      }
    }
    if offset < bytes.count, Lexer.isWordByte(bytes[offset]) {
      // A reserved word written against the number ends it (`temp>30AND x`, minified rules); any
      // other word makes the whole a malformed number (`30x`, `1e`).
      let numberEnd = (offset, column)
      let word = scanWord()
      guard Keyword(rawValue: word.uppercased()) != nil else {
        let range = SourceRange(start: start, end: location)
        throw error("malformed number '\(text(range))'", range)
      }
      (offset, column) = numberEnd
    }
    let range = SourceRange(start: start, end: location)
    let written = text(range)
    return Token(isDecimal ? .decimal(written) : .integer(written), range)
  }

  private mutating func skipDigits() {
    while offset < bytes.count, Lexer.isDigit(bytes[offset]) { step() }
  }

  /// A string between `'` or `"`; see Grammar/README.md for the escapes.
  private mutating func scanString(from start: SourceLocation) throws(SQLError) -> String {
    let quote = bytes[offset]
    step()
    var value: [UInt8] = []
    while true {
      guard offset < bytes.count else {
        throw error("unterminated string literal", SourceRange(start: start, end: location))
      }
      let byte = bytes[offset]
      if byte == quote {
        step()
        // '' inside single quotes is one quote (SQL's doubling).
        if quote == UInt8(ascii: "'"), offset < bytes.count, bytes[offset] == quote {
          value.append(quote)
          step()
          continue
        }
        return String(decoding: value, as: UTF8.self)
      }
      if byte == UInt8(ascii: "\\") {
        try scanEscape(into: &value)
        continue
      }
      value.append(byte)
      step()
    }
  }

  /// One backslash escape, appended as UTF-8.
  private mutating func scanEscape(into value: inout [UInt8]) throws(SQLError) {
    let start = location
    step()
    guard offset < bytes.count else { return }  // the missing quote is reported by the caller
    let byte = bytes[offset]
    let simple: UInt8? =
      switch byte {
      case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "/"): byte
      case UInt8(ascii: "n"): 0x0A
      case UInt8(ascii: "t"): 0x09
      case UInt8(ascii: "r"): 0x0D
      case UInt8(ascii: "b"): 0x08
      case UInt8(ascii: "f"): 0x0C
      default: nil
      }
    if let simple {
      value.append(simple)
      step()
      return
    }
    guard byte == UInt8(ascii: "u") else {
      // The whole character after the backslash (one byte of `\日` showed as U+FFFD), a control
      // character by its code point (it printed as nothing).
      step()
      while offset < bytes.count, Lexer.isContinuation(bytes[offset]) { step() }
      let range = SourceRange(start: start, end: location)
      let shown =
        byte < 0x20 || byte == 0x7F ? "\\" + (Unicode.Scalar(byte).codePointName) : text(range)
      throw error("unknown escape sequence '\(shown)' in string literal", range)
    }
    step()
    var scalar = try scanHex4(escapeStart: start)
    if (0xD800...0xDBFF).contains(scalar) {
      // A high surrogate must be followed by \u and a low surrogate: together they are one scalar.
      guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"),
        bytes[offset + 1] == UInt8(ascii: "u")
      else {
        throw error("unpaired surrogate in '\\u' escape", SourceRange(start: start, end: location))
      }
      step()
      step()
      let low = try scanHex4(escapeStart: start)
      guard (0xDC00...0xDFFF).contains(low) else {
        throw error("unpaired surrogate in '\\u' escape", SourceRange(start: start, end: location))
      }
      scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
    } else if (0xDC00...0xDFFF).contains(scalar) {
      throw error("unpaired surrogate in '\\u' escape", SourceRange(start: start, end: location))
    }
    value.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
  }

  /// Four hexadecimal digits of a `\u` escape.
  private mutating func scanHex4(escapeStart: SourceLocation) throws(SQLError) -> UInt32 {
    var result: UInt32 = 0
    for _ in 0..<4 {
      guard offset < bytes.count, let digit = Lexer.hexValue(bytes[offset]) else {
        throw error(
          "expected four hexadecimal digits after '\\u'", SourceRange(start: escapeStart, end: location))
      }
      result = result * 16 + digit
      step()
    }
    return result
  }

  /// What a user of another SQL or language meant by a character IoT SQL lacks, or "".
  static func hint(forUnexpected byte: UInt8, next: UInt8?) -> String {
    switch byte {
    case UInt8(ascii: "&") where next == UInt8(ascii: "&"): "; write AND"
    case UInt8(ascii: "|") where next == UInt8(ascii: "|"): "; write OR, or concat(a, b) to join strings"
    case UInt8(ascii: "!"): "; write NOT (or <> for 'not equal')"
    case UInt8(ascii: ";"): " (a rule is one statement: remove the ';' and anything after it)"
    case UInt8(ascii: "`"):
      " (IoT SQL quotes no names: write the name as it is, or get(*, 'name') for one that is no plain name)"
    default: ""
    }
  }

  /// Punctuation and operators; anything else is an unexpected character.
  private mutating func scanSymbol(from start: SourceLocation) throws(SQLError) -> Token {
    let byte = bytes[offset]
    let next: UInt8? = offset + 1 < bytes.count ? bytes[offset + 1] : nil
    var length = 0
    switch byte {
    case UInt8(ascii: "<"):
      length = (next == UInt8(ascii: "=") || next == UInt8(ascii: ">")) ? 2 : 1
    case UInt8(ascii: ">"):
      length = next == UInt8(ascii: "=") ? 2 : 1
    case UInt8(ascii: "!"):
      length = next == UInt8(ascii: "=") ? 2 : 0
    case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"),
      UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "*"),
      UInt8(ascii: "/"), UInt8(ascii: "%"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "="):
      length = 1
    default:
      length = 0
    }
    // IoT-SQL has no comments; reject their openers rather than read `a -- x` as `a - (-x)`.
    if (byte == UInt8(ascii: "-") && next == UInt8(ascii: "-"))
      || (byte == UInt8(ascii: "/") && next == UInt8(ascii: "*"))
    {
      step()
      step()
      let range = SourceRange(start: start, end: location)
      throw error("comments are not supported in IoT-SQL ('\(text(range))')", range)
    }
    if byte == UInt8(ascii: "$"), next == UInt8(ascii: "{") {
      // A template copied from an action: in the statement the expression is written as it is.
      step()
      step()
      throw error(
        "'${' opens a substitution template, which belongs in an action's settings; in SQL write the "
          + "expression itself (topic(), not ${topic()})", SourceRange(start: start, end: location))
    }
    guard length > 0 else {
      step()
      while offset < bytes.count, Lexer.isContinuation(bytes[offset]) { step() }
      let range = SourceRange(start: start, end: location)
      throw error(
        "unexpected character \(Lexer.describeCharacter(text(range)))\(Self.hint(forUnexpected: byte, next: next))",
        range)
    }
    for _ in 0..<length { step() }
    let range = SourceRange(start: start, end: location)
    return Token(.symbol(text(range)), range)
  }

  // MARK: - Helpers

  /// Moves past one byte, keeping line and column.
  private mutating func step() {
    let byte = bytes[offset]
    offset += 1
    if byte == 0x0A {
      line += 1
      column = 1
    } else if !Lexer.isContinuation(byte) {
      column += 1
    }
  }

  private func error(_ message: String, _ range: SourceRange) -> SQLError {
    SQLError([Diagnostic(stage: .parse, message, at: range)], source: source)
  }

  /// `'#'`, or `U+0007` for a control or invisible character.
  static func describeCharacter(_ text: String) -> String {
    guard let scalar = text.unicodeScalars.first else { return "''" }
    if scalar.properties.isWhitespace || scalar.value < 0x20 || scalar.value == 0x7F
      || scalar.properties.generalCategory == .format
    {
      return scalar.codePointName
    }
    return "'\(text)'"
  }

  static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
  static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
  static func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
  }
  static func isWordByte(_ byte: UInt8) -> Bool {
    isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
      || byte == UInt8(ascii: "_")
  }
  static func hexValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
  }
}

extension Unicode.Scalar {
  /// The code point as messages name it: `U+000A`, `U+1F600` (four hex digits at least).
  public var codePointName: String { "U+" + hexDigits }

  /// The scalar as a `\u` escape of at least four hex digits: `\u001B`, `\u0301`.
  public var escapeSpelling: String { "\\u" + hexDigits }

  private var hexDigits: String {
    let hex = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - hex.count)) + hex
  }
}
