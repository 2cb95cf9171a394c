import Foundation
import IoTSQL
import Yams

/// A position in a rule file: 1-based line and column (columns count characters).
public struct FilePosition: Sendable, Equatable, CustomStringConvertible {
  /// 1-based line.
  public var line: Int
  /// 1-based column, in characters.
  public var column: Int

  /// Creates a position.
  public init(line: Int, column: Int) {
    self.line = line
    self.column = column
  }

  /// `line:column`.
  public var description: String { "\(line):\(column)" }
}

/// A value read from a rule file (JSON or YAML), with the position of every node and key, so that
/// errors, SQL errors included, point into the file.
public struct RuleNode: Sendable {
  /// The value kinds of a rule file.
  public indirect enum Kind: Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as written.
    case number(String)
    /// A string.
    case string(String)
    /// An array.
    case array([RuleNode])
    /// An object, members in file order.
    case object([Member])
  }

  /// One member of an object.
  public struct Member: Sendable {
    /// The key.
    public var key: String
    /// Where the key starts.
    public var keyPosition: FilePosition
    /// The value.
    public var value: RuleNode

    /// Creates a member.
    public init(key: String, keyPosition: FilePosition, value: RuleNode) {
      self.key = key
      self.keyPosition = keyPosition
      self.value = value
    }
  }

  /// The value.
  public var kind: Kind
  /// Where the value starts.
  public var position: FilePosition
  /// For strings: the file position of each UTF-8 byte of the decoded string (plus one past the end),
  /// so a position inside the string maps back to the file even through escapes.
  public var stringPositions: [FilePosition]
  /// For a value written as a plain (unquoted) YAML scalar: its text as written, which the YAML 1.2
  /// core schema read as `kind` (`123` a number, `no` a string). Nil for JSON and quoted YAML.
  public var plainText: String?

  /// Creates a node (a string's byte positions, when not given, are all its own position).
  public init(
    kind: Kind, position: FilePosition, stringPositions: [FilePosition] = [], plainText: String? = nil
  ) {
    self.kind = kind
    self.position = position
    self.stringPositions = stringPositions
    self.plainText = plainText
  }

  /// The kinds of value a setting expects, for ``readingHint(expecting:)``.
  public enum Expectation: Sendable {
    /// Text (a name, a template).
    case string
    /// `true` or `false`.
    case boolean
    /// A number.
    case number
  }

  /// Words to add to an error that says this node is not of the `expected` kind, when the file
  /// probably meant one: how the value was read and what to write (`; YAML reads the unquoted 123
  /// as a number: write '123' for the text`). Empty when there is nothing to add.
  public func readingHint(expecting expected: Expectation) -> String {
    switch (expected, kind) {
    case (.string, .number), (.string, .bool), (.string, .null):
      guard let text = plainText, !text.isEmpty else { return "" }
      return "; YAML reads the unquoted \(text) as \(kindName): write '\(text)' for the text"
    case (.boolean, .string(let text)):
      if ["true", "false"].contains(text.lowercased()) {
        return plainText == nil
          ? "; \"\(text)\" in quotes is text: write \(text.lowercased()) without quotes"
          : "; YAML 1.2 reads \(text) as text (true, True and TRUE are Booleans): write \(text.lowercased())"
      }
      // YAML 1.1's Booleans, text under the YAML 1.2 core schema.
      let yaml11 = ["y", "yes", "on", "n", "no", "off"]
      guard plainText != nil, let index = yaml11.firstIndex(of: text.lowercased()) else { return "" }
      return "; YAML 1.2 reads \(text) as text, not as a Boolean as YAML 1.1 did: write \(index < 3)"
    case (.number, .string(let text)):
      // (Spelled as JSON spells a number, which YAML reads as one too: `0x10` is no JSON number.)
      if plainText == nil, text.wholeMatch(of: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/) != nil {
        return "; \"\(text)\" in quotes is text: write \(text) without quotes"
      }
      // YAML 1.1's digit separators (`1_000`), text under the YAML 1.2 core schema.
      let digits = text.filter { $0 != "_" }
      guard plainText != nil, digits.count < text.count, !digits.isEmpty,
        RuleDocument.coreSchemaNumber(digits) != nil
      else { return "" }
      return "; YAML 1.2 reads \(text) as text, not as a number: write \(digits)"
    default:
      return ""
    }
  }

  /// The member `key` of an object.
  public subscript(key: String) -> RuleNode? {
    if case .object(let members) = kind { return members.first(where: { $0.key == key })?.value }
    return nil
  }

  /// The members of an object, or nil.
  public var members: [Member]? {
    if case .object(let members) = kind { return members }
    return nil
  }

  /// The string, or nil.
  public var string: String? {
    if case .string(let text) = kind { return text }
    return nil
  }

  /// The Boolean, or nil.
  public var bool: Bool? {
    if case .bool(let value) = kind { return value }
    return nil
  }

  /// The number as an integer, or nil: also for a fraction and for a whole number beyond `Int`
  /// (`1e19`, `99999999999999999999`), which callers report as out of their range.
  public var int: Int? {
    if case .number(let text) = kind {
      return Int(text) ?? Double(text).flatMap { Int(exactly: $0) }
    }
    return nil
  }

  /// The number as a Double, or nil.
  public var double: Double? {
    if case .number(let text) = kind { return Double(text) }
    return nil
  }

  /// A short name of the kind for messages: `a string`, `an object`.
  public var kindName: String {
    switch kind {
    case .null: "null"
    case .bool: "a Boolean"
    case .number: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  /// True when this node, or one inside it, has a member whose key is at `position`.
  public func holdsKey(at position: FilePosition) -> Bool {
    switch kind {
    case .object(let members):
      members.contains { $0.keyPosition == position || $0.value.holdsKey(at: position) }
    case .array(let elements): elements.contains { $0.holdsKey(at: position) }
    default: false
    }
  }

  /// This node without the members, at any depth, whose key is in `keys`.
  func removingMembers(keyed keys: Set<String>) -> RuleNode {
    var node = self
    switch kind {
    case .object(let members):
      node.kind = .object(
        members.filter { !keys.contains($0.key) }.map { member in
          var member = member
          member.value = member.value.removingMembers(keyed: keys)
          return member
        })
    case .array(let elements): node.kind = .array(elements.map { $0.removingMembers(keyed: keys) })
    default: break
    }
    return node
  }

  /// The file position of the UTF-8 byte `offset` of this string's decoded text.
  public func position(ofStringOffset offset: Int) -> FilePosition {
    guard !stringPositions.isEmpty else { return position }
    return stringPositions[max(0, min(offset, stringPositions.count - 1))]
  }
}

/// An error while reading a rule file, with where.
public struct RuleSyntaxError: Error, Sendable {
  /// Where.
  public var position: FilePosition
  /// What.
  public var message: String
  /// For a repeated key, where its first use is.
  public var firstUse: FilePosition? = nil
}

/// Reads rule files into `RuleNode` trees.
public enum RuleDocument {
  /// Parses JSON text with positions.
  public static func parseJSON(_ bytes: [UInt8]) throws(RuleSyntaxError) -> RuleNode {
    try refusingDuplicates { (duplicates) throws(RuleSyntaxError) in
      try parseJSON(bytes, duplicates: &duplicates)
    }
  }

  /// What `parse` reads, its first repeated key thrown: the strict reading.
  private static func refusingDuplicates(
    _ parse: (inout [RuleSyntaxError]) throws(RuleSyntaxError) -> RuleNode
  ) throws(RuleSyntaxError) -> RuleNode {
    var duplicates: [RuleSyntaxError] = []
    let node = try parse(&duplicates)
    if let first = duplicates.first { throw first }
    return node
  }

  /// Parses a rule or test file's bytes as YAML when its name ends `.yaml` or `.yml`, else as
  /// JSON, collecting repeated keys in `duplicates`.
  public static func parse(_ bytes: [UInt8], file: String, duplicates: inout [RuleSyntaxError])
    throws(RuleSyntaxError) -> RuleNode
  {
    file.hasSuffix(".yaml") || file.hasSuffix(".yml")
      ? try parseYAML(bytes, duplicates: &duplicates) : try parseJSON(bytes, duplicates: &duplicates)
  }

  /// Parses JSON text with positions, a key repeated in an object kept at its first use and each
  /// later use appended to `duplicates` (`duplicate key 'k' (first at 2:3)`), so that a caller goes
  /// on to report the file's other problems.
  public static func parseJSON(_ bytes: [UInt8], duplicates: inout [RuleSyntaxError]) throws(RuleSyntaxError)
    -> RuleNode
  {
    try checkUTF8(bytes)
    var parser = PositionedJSONParser(bytes: bytes)
    let node = try parser.parseDocument()
    duplicates += parser.duplicates
    return node
  }

  /// Parses the bytes of a YAML file: an invalid UTF-8 sequence is an error at its position, and a
  /// byte-order mark is dropped, so columns on the first line are those an editor shows.
  public static func parseYAML(_ bytes: [UInt8]) throws(RuleSyntaxError) -> RuleNode {
    try refusingDuplicates { (duplicates) throws(RuleSyntaxError) in
      try parseYAML(bytes, duplicates: &duplicates)
    }
  }

  /// Parses the bytes of a CloudFormation template in YAML as ``parseYAML(_:)-([UInt8])`` does,
  /// its functions' short forms read as their long ones: `!Ref Role` as `{"Ref": "Role"}`,
  /// `!GetAtt Role.Arn` as `{"Fn::GetAtt": ["Role", "Arn"]}`, `!Sub '...'` as `{"Fn::Sub": "..."}`.
  public static func parseCloudFormationYAML(_ bytes: [UInt8]) throws(RuleSyntaxError) -> RuleNode {
    try refusingDuplicates { (duplicates) throws(RuleSyntaxError) in
      try parseYAML(bytes, duplicates: &duplicates, cloudFormation: true)
    }
  }

  /// Parses the bytes of a YAML file as ``parseYAML(_:)-([UInt8])`` does, a key repeated in a
  /// mapping kept at its first use and each later use appended to `duplicates`, so that a caller
  /// goes on to report the file's other problems.
  public static func parseYAML(
    _ bytes: [UInt8], duplicates: inout [RuleSyntaxError], cloudFormation: Bool = false
  ) throws(RuleSyntaxError) -> RuleNode {
    try checkUTF8(bytes)
    let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes[3...] : bytes[...]
    return try parseYAML(
      String(decoding: body, as: UTF8.self), duplicates: &duplicates, cloudFormation: cloudFormation)
  }

  /// Refuses NEL (U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029) in a YAML file:
  /// the YAML reader (libyaml, YAML 1.1) takes them as line breaks, so a file with one in a
  /// comment failed with a message about another line, and one inside a quoted string (the SQL's)
  /// silently became a space and moved every later position. YAML 1.2 and JSON read them as
  /// characters; in a rule file they are written escaped (`"\u2028"` in a double-quoted string).
  static func refuseOldLineBreaks(_ text: String) throws(RuleSyntaxError) {
    guard text.utf8.contains(where: { $0 == 0xC2 || $0 == 0xE2 }) else { return }
    var line = 1
    var column = 1
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x0A:
        line += 1
        column = 1
        continue
      case 0x85, 0x2028, 0x2029:
        throw RuleSyntaxError(
          position: FilePosition(line: line, column: column),
          message:
            "YAML: \(scalar.codePointName) is read as a line break by the YAML reader (YAML 1.1): write it escaped in a double-quoted string (\"\(scalar.escapeSpelling)\"), or drop it"
        )
      default: column += 1
      }
    }
  }

  /// Refuses an alias used as a mapping key (`*a: 1`, `{*a: 1}`) and an explicit `?` key before
  /// Yams composes the file: to find duplicate keys Yams hashes each key whole, so a key that is an
  /// alias of nested aliases expands there, before any budget applies (a file under 1 KB took
  /// minutes). Rule files need neither. A flow collection used as a key (`[*a, *a]: 1`) is refused
  /// for the same reason: its aliases expand in the key. Quoted text, block scalars (`|`, `>`) and
  /// comments are skipped; a key is what starts a line (after indentation and `- `) or follows
  /// `{`, `[` or `,`.
  static func refuseAliasKeys(_ text: String) throws(RuleSyntaxError) {
    let bytes = Array(text.utf8)
    var index = 0
    var line = 1
    var lineStart = 0
    var atKey = true
    // Per open flow collection: where it opened, and whether at a key's place.
    var openCollections: [(index: Int, line: Int, lineStart: Int, atKey: Bool)] = []
    // The last byte that was not a space: a quote opens a quoted scalar only at a value's start.
    var previous: UInt8 = 0x0A
    func column(_ at: Int, lineStart start: Int? = nil) -> Int {
      1 + bytes[(start ?? lineStart)..<at].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }
    /// Whether a scalar or collection starting after `previous` starts a value.
    func startsValue(after previous: UInt8) -> Bool {
      previous == UInt8(ascii: ":") || previous == UInt8(ascii: "-") || previous == UInt8(ascii: "?")
    }
    func isName(_ byte: UInt8) -> Bool {
      !(byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ",")
        || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "{")
        || byte == UInt8(ascii: "}"))
    }
    while index < bytes.count {
      let byte = bytes[index]
      switch byte {
      case 0x0A:
        line += 1
        index += 1
        lineStart = index
        atKey = true
        continue
      case 0x20, 0x09, 0x0D:
        index += 1
        continue
      case UInt8(ascii: "-")
      where atKey && (index + 1 == bytes.count || [0x20, 0x0A].contains(bytes[index + 1])):
        previous = byte
        index += 1
        continue
      case let bracket
      where (bracket == UInt8(ascii: "{") || bracket == UInt8(ascii: "["))
        && (atKey || !openCollections.isEmpty
          || startsValue(after: previous)):
        // A flow collection (within plain text, a bracket is text: `see [docs]`).
        openCollections.append((index, line, lineStart, atKey))
        atKey = true
        previous = byte
        index += 1
        continue
      case let bracket
      where (bracket == UInt8(ascii: "}") || bracket == UInt8(ascii: "]")) && !openCollections.isEmpty:
        if let opened = openCollections.popLast(), opened.atKey {
          var after = index + 1
          while after < bytes.count, bytes[after] == 0x20 || bytes[after] == 0x09 { after += 1 }
          if after < bytes.count, bytes[after] == UInt8(ascii: ":") {
            throw RuleSyntaxError(
              position: FilePosition(
                line: opened.line, column: column(opened.index, lineStart: opened.lineStart)),
              message: "YAML: a collection as a mapping key is not supported in rule files")
          }
        }
      case UInt8(ascii: ",") where !openCollections.isEmpty:
        atKey = true
        previous = byte
        index += 1
        continue
      case let indicator
      where (indicator == UInt8(ascii: "|") || indicator == UInt8(ascii: ">")) && openCollections.isEmpty
        && [UInt8(ascii: ":"), UInt8(ascii: "-")].contains(previous):
        // A block scalar: its lines are text, whatever they hold (`*Important*: ...`), down to the
        // first line indented no deeper than the key (or the `- `) it belongs to.
        var keyColumn = lineStart
        var dashColumn = -1
        while keyColumn < bytes.count {
          if bytes[keyColumn] == 0x20 {
            keyColumn += 1
          } else if bytes[keyColumn] == UInt8(ascii: "-"), keyColumn + 1 < bytes.count,
            bytes[keyColumn + 1] == 0x20
          {
            dashColumn = keyColumn - lineStart
            keyColumn += 2
          } else {
            break
          }
        }
        let limit = keyColumn == index ? dashColumn : keyColumn - lineStart
        while index < bytes.count, bytes[index] != 0x0A { index += 1 }
        while index < bytes.count {
          // At a line's end: is the next line part of the scalar?
          var indent = index + 1
          while indent < bytes.count, bytes[indent] == 0x20 { indent += 1 }
          let blank = indent >= bytes.count || bytes[indent] == 0x0A || bytes[indent] == 0x0D
          guard blank || indent - (index + 1) > limit else { break }
          line += 1
          index += 1
          lineStart = index
          while index < bytes.count, bytes[index] != 0x0A { index += 1 }
        }
        continue
      case UInt8(ascii: "#") where index == lineStart || [0x20, 0x09].contains(bytes[index - 1]):
        while index < bytes.count, bytes[index] != 0x0A { index += 1 }
        continue
      case let quote
      where (quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\""))
        && (atKey || startsValue(after: previous)):
        // A quoted scalar (a quote elsewhere is text: `it's`), possibly over several lines.
        index += 1
        while index < bytes.count {
          if bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
          } else if byte == UInt8(ascii: "\""), bytes[index] == UInt8(ascii: "\\") {
            index += 1
            // An escaped line break still ends a line.
            if index < bytes.count, bytes[index] == 0x0A {
              line += 1
              lineStart = index + 1
            }
          } else if bytes[index] == byte {
            if byte == UInt8(ascii: "'"), index + 1 < bytes.count, bytes[index + 1] == byte {
              index += 1
            } else {
              break
            }
          }
          index += 1
        }
        index += 1
        atKey = false
        previous = byte
        continue
      case UInt8(ascii: "?")
      where atKey && (index + 1 == bytes.count || [0x20, 0x0A].contains(bytes[index + 1])):
        throw RuleSyntaxError(
          position: FilePosition(line: line, column: column(index)),
          message: "YAML: an explicit '?' key is not supported in rule files")
      case let mark where mark == UInt8(ascii: "&") || mark == UInt8(ascii: "!"):
        // An anchor or a tag changes nothing about what follows: before a key (`&k [*a]: 1`,
        // `!!seq [..]: 1`) its place is still a key's, before a value (`v: &a [...]`) a value's.
        while index < bytes.count, isName(bytes[index]) { index += 1 }
        continue
      case UInt8(ascii: "*") where atKey:
        var end = index + 1
        while end < bytes.count, isName(bytes[end]), bytes[end] != UInt8(ascii: ":") { end += 1 }
        var after = end
        while after < bytes.count, bytes[after] == 0x20 || bytes[after] == 0x09 { after += 1 }
        if end > index + 1, after < bytes.count, bytes[after] == UInt8(ascii: ":") {
          throw RuleSyntaxError(
            position: FilePosition(line: line, column: column(index)),
            message: "YAML: an alias as a mapping key is not supported in rule files")
        }
      default:
        break
      }
      atKey = false
      previous = byte
      index += 1
    }
  }

  /// Fails at the first byte that does not start a valid UTF-8 sequence (overlong forms,
  /// surrogates and values past U+10FFFF included), with its line and column as the JSON parser
  /// counts them (a leading byte-order mark takes no column).
  static func checkUTF8(_ bytes: [UInt8]) throws(RuleSyntaxError) {
    // UTF-16 (a byte-order mark, or a NUL beside the first character): said as such, where the
    // first odd byte alone left the reader guessing (`invalid UTF-8 (byte 0xff)`).
    if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF])
      || (bytes.count >= 2 && (bytes[0] == 0) != (bytes[1] == 0))
    {
      throw RuleSyntaxError(
        position: FilePosition(line: 1, column: 1),
        message:
          "the file is UTF-16 (as Windows PowerShell's '>' writes text): rule and test files must be UTF-8; save it as UTF-8"
      )
    }
    var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    let start = index
    while index < bytes.count {
      let byte = bytes[index]
      if byte < 0x80 {
        index += 1
        continue
      }
      let length: Int
      var low: UInt8 = 0x80
      var high: UInt8 = 0xBF
      switch byte {
      case 0xC2...0xDF: length = 2
      case 0xE0: (length, low) = (3, 0xA0)
      case 0xE1...0xEC, 0xEE...0xEF: length = 3
      case 0xED: (length, high) = (3, 0x9F)
      case 0xF0: (length, low) = (4, 0x90)
      case 0xF1...0xF3: length = 4
      case 0xF4: (length, high) = (4, 0x8F)
      default: length = 0
      }
      var valid = length > 0 && index + length <= bytes.count
      if valid {
        for offset in 1..<length {
          let next = bytes[index + offset]
          let (from, to): (UInt8, UInt8) = offset == 1 ? (low, high) : (0x80, 0xBF)
          if next < from || next > to {
            valid = false
            break
          }
        }
      }
      if !valid {
        var line = 1
        var column = 1
        for earlier in bytes[start..<index] {
          if earlier == UInt8(ascii: "\n") {
            line += 1
            column = 1
          } else if earlier & 0xC0 != 0x80 {
            column += 1
          }
        }
        throw RuleSyntaxError(
          position: FilePosition(line: line, column: column),
          message: String(format: "invalid UTF-8 (byte 0x%02x): rule and test files must be UTF-8", byte))
      }
      index += length
    }
  }

  /// libyaml's `problem` in a rule author's words where its own are obscure: a tab where YAML wants
  /// spaces, and its nesting limit.
  static func explained(_ problem: String, at line: Int, _ column: Int, in text: String) -> String {
    if problem.hasPrefix("Maximum nesting level reached") {
      return "nested too deeply (libyaml's limit)"
    }
    if problem == "found character that cannot start any token" {
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      if line >= 1, line <= lines.count {
        let characters = Array(lines[line - 1])
        if column >= 1, column <= characters.count, characters[column - 1] == "\t" {
          return "a tab, which YAML does not allow for indentation: indent with spaces"
        }
      }
    }
    return problem
  }

  /// Parses YAML text (the same schema as JSON) with positions.
  public static func parseYAML(_ text: String) throws(RuleSyntaxError) -> RuleNode {
    try refusingDuplicates { (duplicates) throws(RuleSyntaxError) in
      try parseYAML(text, duplicates: &duplicates)
    }
  }

  /// The most repeated keys of a YAML file reported: each costs the file's parse again.
  static let maxYAMLDuplicates = 16

  /// Parses YAML text, a repeated key kept at its first use and its later uses appended to
  /// `duplicates`. The YAML reader stops at a repeated key, so its later use is masked (its
  /// characters replaced by as many of the private use area's, no column moves) and the text read
  /// again; the masked member is then left out of the tree.
  public static func parseYAML(
    _ text: String, duplicates: inout [RuleSyntaxError], cloudFormation: Bool = false
  ) throws(RuleSyntaxError) -> RuleNode {
    var text = text
    var masked: Set<String> = []
    while true {
      do {
        let node = try parseYAMLOnce(text, cloudFormation: cloudFormation)
        return masked.isEmpty ? node : node.removingMembers(keyed: masked)
      } catch let error as RepeatedYAMLKey {
        guard masked.count < maxYAMLDuplicates,
          let (masking, key) = mask(error.at, in: text, number: masked.count)
        else { throw error.problem }
        duplicates.append(error.problem)
        masked.insert(key)
        text = masking
      } catch let error as RuleSyntaxError {
        throw error
      } catch {
        throw RuleSyntaxError(position: FilePosition(line: 1, column: 1), message: "\(error)")
      }
    }
  }

  /// A repeated key the YAML reader stopped at: the problem as said, and where its later use is.
  struct RepeatedYAMLKey: Error {
    var problem: RuleSyntaxError
    var at: FilePosition?
  }

  /// `text` with the key at `position` replaced by as many private-use characters (U+E000 + `number`,
  /// then U+E000s), and that key, or nil when no key is found there.
  static func mask(_ position: FilePosition?, in text: String, number: Int) -> (String, String)? {
    guard let position else { return nil }
    var lines = scalarLines(text)
    let row = position.line - 1
    guard lines.indices.contains(row), position.column >= 1, position.column <= lines[row].count else {
      return nil
    }
    let rest = lines[row][(position.column - 1)...]
    guard let (_, after) = keyToken(rest) else { return nil }
    let length = rest.count - after.count
    guard length > 0, let lead = Unicode.Scalar(0xE000 + UInt32(number)), let fill = Unicode.Scalar(0xE000)
    else { return nil }
    let key = [lead] + Array(repeating: fill, count: length - 1)
    lines[row].replaceSubrange((position.column - 1)..<(position.column - 1 + length), with: key)
    var out = String.UnicodeScalarView()
    for (index, line) in lines.enumerated() {
      if index > 0 { out.append("\n") }
      out.append(contentsOf: line)
    }
    var name = String.UnicodeScalarView()
    name.append(contentsOf: key)
    return (String(out), String(name))
  }

  /// One reading of YAML text; a repeated key is thrown as ``RepeatedYAMLKey``.
  static func parseYAMLOnce(_ text: String, cloudFormation: Bool = false) throws -> RuleNode {
    try refuseOldLineBreaks(text)
    try refuseAliasKeys(text)
    let node: Yams.Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      // The problem at its position, and what was being read (Yams's own description repeats the
      // position and quotes the line, which the caller's message does already).
      switch error {
      case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
        .composer(let context, let problem, let mark, _):
        let reading = context.map { "\($0.text) at \($0.mark.line):\($0.mark.column): " } ?? ""
        throw RuleSyntaxError(
          position: FilePosition(line: mark.line, column: mark.column),
          message: "YAML: \(reading)\(Self.explained(problem, at: mark.line, mark.column, in: text))")
      case .duplicatedKeysInMapping(let duplicates, let context):
        // Yams says where the mapping starts; the second use of the key is what to point at.
        let key = duplicates.first ?? ""
        let uses = Self.keyLines(key, in: text, from: context.mark.line, column: context.mark.column)
        let at = uses.count > 1 ? uses[1] : FilePosition(line: context.mark.line, column: context.mark.column)
        let first = uses.first.map { " (first at \($0.line):\($0.column))" } ?? ""
        throw RepeatedYAMLKey(
          problem: RuleSyntaxError(
            position: at, message: "YAML: duplicate key '\(RuleFile.escapedName(key))'\(first)",
            firstUse: uses.first),
          at: uses.count > 1 ? uses[1] : nil)
      case .reader(let problem, let offset, let value, _):
        // A character YAML does not allow (a control character): where it is, named.
        let position =
          offset.map { Self.position(ofCharacter: $0, in: text) } ?? FilePosition(line: 1, column: 1)
        let named = Unicode.Scalar(UInt32(bitPattern: value)).map {
          " (\($0.codePointName)): write it escaped in a double-quoted string (\"\($0.escapeSpelling)\")"
        }
        throw RuleSyntaxError(position: position, message: "YAML: \(problem)\(named ?? "")")
      default:
        throw RuleSyntaxError(position: FilePosition(line: 1, column: 1), message: "YAML: \(error)")
      }
    } catch {
      throw RuleSyntaxError(position: FilePosition(line: 1, column: 1), message: "\(error)")
    }
    guard var node else {
      throw RuleSyntaxError(position: FilePosition(line: 1, column: 1), message: "the file is empty")
    }
    let limit = expansionLimit(ofBytes: text.utf8.count)
    if cloudFormation {
      // Under the same budget as `convert`: an alias bomb is left whole, for it to refuse.
      var visits = limit
      node = cloudFormationLongForms(node, budget: &visits)
    }
    var budget = limit
    return try convert(node, lines: scalarLines(text), budget: &budget, limit: limit)
  }

  /// CloudFormation's functions written `!Name` for `Fn::Name` (`!Ref` and `!Condition` are their
  /// own names).
  static let cloudFormationFunctions: Set<String> = [
    "Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub",
    "Transform", "And", "Equals", "If", "Not", "Or", "Length", "ToJsonString",
  ]

  /// `node` with CloudFormation's short forms of its functions (the tags `!Ref`, `!GetAtt`,
  /// `!Sub`, `!Join`...) as the long forms a JSON template writes: a one-member mapping of the
  /// function's name (`Ref`, `Condition`, `Fn::GetAtt`...) at the tag's place. `!GetAtt A.B` is
  /// `["A", "B"]`, as CloudFormation splits it at its first dot. Other tags stay, to be refused.
  static func cloudFormationLongForms(_ node: Yams.Node, budget: inout Int) -> Yams.Node {
    budget -= 1
    guard budget >= 0 else { return node }
    func longName(_ tag: Tag) -> String? {
      let name = tag.description
      guard name.hasPrefix("!"), !name.hasPrefix("!!") else { return nil }
      let bare = String(name.dropFirst())
      if bare == "Ref" || bare == "Condition" { return bare }
      return cloudFormationFunctions.contains(bare) ? "Fn::" + bare : nil
    }
    func wrapped(_ name: String, _ value: Yams.Node, at mark: Mark?) -> Yams.Node {
      .mapping(
        Yams.Node.Mapping(
          [(.scalar(Yams.Node.Scalar(name, .implicit, .plain, mark)), value)], .implicit, .any, mark))
    }
    switch node {
    case .scalar(var scalar):
      guard let name = longName(scalar.tag) else { return node }
      scalar.tag = .implicit
      if name == "Fn::GetAtt", let dot = scalar.string.firstIndex(of: ".") {
        let parts = [scalar.string[..<dot], scalar.string[scalar.string.index(after: dot)...]].map {
          Yams.Node.scalar(Yams.Node.Scalar(String($0), .implicit, .plain, scalar.mark))
        }
        return wrapped(
          name, .sequence(Yams.Node.Sequence(parts, .implicit, .any, scalar.mark)), at: scalar.mark)
      }
      return wrapped(name, .scalar(scalar), at: scalar.mark)
    case .sequence(let sequence):
      let name = longName(sequence.tag)
      let elements = Yams.Node.Sequence(
        sequence.map { cloudFormationLongForms($0, budget: &budget) }, name == nil ? sequence.tag : .implicit,
        sequence.style,
        sequence.mark)
      return name.map { wrapped($0, .sequence(elements), at: sequence.mark) } ?? .sequence(elements)
    case .mapping(let mapping):
      let name = longName(mapping.tag)
      let pairs = Yams.Node.Mapping(
        mapping.map { ($0.key, cloudFormationLongForms($0.value, budget: &budget)) },
        name == nil ? mapping.tag : .implicit,
        mapping.style, mapping.mark)
      return name.map { wrapped($0, .mapping(pairs), at: mapping.mark) } ?? .mapping(pairs)
    case .alias:
      return node
    }
  }

  /// The file position of each UTF-8 byte of a literal block scalar's text (`|`): its lines are
  /// the file's lines after the header, at the block's indentation.
  static func literalPositions(_ text: String, mark: FilePosition, lines: [[Unicode.Scalar]])
    -> [FilePosition]
  {
    var positions: [FilePosition] = []
    positions.reserveCapacity(text.utf8.count + 1)
    var line = mark.line + 1
    let indent = blockIndent(header: mark, lines: lines)
    var column = indent + 1
    for byte in text.utf8 {
      positions.append(FilePosition(line: line, column: column))
      if byte == UInt8(ascii: "\n") {
        line += 1
        column = indent + 1
      } else if byte & 0xC0 != 0x80 {
        column += 1  // continuation bytes share their character's column
      }
    }
    positions.append(FilePosition(line: line, column: column))
    return positions
  }

  /// The file position of each UTF-8 byte of a flow scalar's text (plain, single- or double-quoted)
  /// or a folded block's (`>`), found by walking the file from the scalar's start alongside the
  /// text: quotes, escapes (`\"`, `\n`, `\u00e9`, an escaped line break), doubled single quotes,
  /// and line breaks folded into a space are stepped over, so an error inside a multi-line or
  /// escaped SQL string points at its own character.
  static func alignedPositions(
    _ text: String, style: Yams.Node.Scalar.Style, mark: FilePosition, lines source: [[Unicode.Scalar]]
  ) -> [FilePosition] {
    var line = mark.line - 1
    var column = mark.column - 1
    if style == .folded {
      line += 1
      column = 0
    } else if style == .singleQuoted || style == .doubleQuoted {
      column += 1
    }
    func here() -> FilePosition { FilePosition(line: line + 1, column: column + 1) }
    func current() -> Unicode.Scalar? {
      guard source.indices.contains(line), column < source[line].count else { return nil }
      return source[line][column]
    }
    // A folded block's lines keep what is indented beyond the block's own indentation.
    let blockIndent = style == .folded ? Self.blockIndent(header: mark, lines: source) : Int.max
    /// Past the end of the line: on to the next one, past its indentation.
    func nextLine() {
      line += 1
      column = 0
      while column < blockIndent, let blank = current(), blank == " " || blank == "\t" { column += 1 }
    }
    var positions: [FilePosition] = []
    positions.reserveCapacity(text.utf8.count + 1)
    for scalar in text.unicodeScalars {
      // A bounded search: at most a few lines of quoting, escapes and folding per character.
      var found: FilePosition?
      var steps = 0
      while found == nil && steps < 4096 && line < source.count {
        steps += 1
        guard let next = current() else {
          // A line break: folded into a space (or kept as a newline after a blank line).
          let breakPosition = here()
          nextLine()
          if scalar == " " || scalar == "\n" { found = breakPosition }
          continue
        }
        if style == .doubleQuoted && next == "\\" {
          let (meaning, length) = Self.escape(in: source[line][...], at: column)
          if meaning == nil && column + 1 >= source[line].count {
            nextLine()  // an escaped line break: nothing in the text
            continue
          }
          if meaning == scalar { found = here() }
          column += length
          continue
        }
        if style == .singleQuoted && next == "'" && scalar == "'" {
          found = here()
          column += 2
          continue
        }
        if next == scalar { found = here() }
        column += 1
      }
      let position = found ?? positions.last ?? mark
      for _ in 0..<String(scalar).utf8.count { positions.append(position) }
    }
    positions.append(line < source.count ? here() : (positions.last ?? mark))
    return positions
  }

  /// The scalar a YAML double-quoted escape stands for (its `\\` at `index` of `text`) and its
  /// length with the `\\`; nil for one it does not know, or an escaped line break.
  static func escape(in text: ArraySlice<Unicode.Scalar>, at index: Int) -> (Unicode.Scalar?, Int) {
    guard index + 1 < text.endIndex else { return (nil, 1) }
    let code = text[index + 1]
    if let scalar = simpleEscapes[code] { return (scalar, 2) }
    let digits = code == "x" ? 2 : code == "u" ? 4 : code == "U" ? 8 : 0
    guard digits > 0, index + 2 + digits <= text.endIndex else { return (nil, 2) }
    let hex = String(String.UnicodeScalarView(text[(index + 2)..<(index + 2 + digits)]))
    return (UInt32(hex, radix: 16).flatMap(Unicode.Scalar.init), 2 + digits)
  }

  /// YAML's one-letter double-quoted escapes.
  static let simpleEscapes: [Unicode.Scalar: Unicode.Scalar] = [
    "n": "\n", "t": "\t", "\"": "\"", "\\": "\\", "/": "/", "0": "\0", "r": "\r", " ": " ",
    "a": "\u{07}", "b": "\u{08}", "e": "\u{1B}", "f": "\u{0C}", "v": "\u{0B}", "\t": "\t",
    "N": "\u{85}", "_": "\u{A0}", "L": "\u{2028}", "P": "\u{2029}",
  ]

  /// The line and column (in Unicode scalars, from 1, as libyaml's marks count) of the character
  /// `offset` characters into `text`.
  static func position(ofCharacter offset: Int, in text: String) -> FilePosition {
    var line = 1
    var column = 1
    for character in text.prefix(max(0, offset)) {
      if character.isNewline {
        line += 1
        column = 1
      } else {
        column += character.unicodeScalars.count
      }
    }
    return FilePosition(line: line, column: column)
  }

  /// Where `key` is written as a key of the mapping Yams found it repeated in (its mark at `from`,
  /// `column`), in the file's order: in block style each line whose key starts at the mapping's
  /// column (after indentation and `- `; an anchor or tag may come first, a space may come before
  /// the `:`), else in flow style each key of the `{...}` around the mark.
  static func keyLines(_ key: String, in text: String, from: Int, column: Int) -> [FilePosition] {
    let lines = scalarLines(text)
    var found: [FilePosition] = []
    for (index, line) in lines.enumerated() where index + 1 >= from {
      let indent = line.prefix(while: { $0 == " " || $0 == "-" }).count
      var rest = line.dropFirst(indent)
      // `&anchor ` and `!tag ` before the key.
      while let first = rest.first, first == "&" || first == "!" {
        rest = rest.drop(while: { $0 != " " }).drop(while: { $0 == " " })
      }
      let start = line.count - rest.count
      guard indent + 1 == column || start + 1 == column else { continue }
      if let (name, after) = keyToken(rest), name == key, after.first(where: { $0 != " " }) == ":" {
        found.append(FilePosition(line: index + 1, column: start + 1))
      }
    }
    if found.count >= 2 { return found }
    let flow = flowKeyLines(key, lines: lines, line: from, column: column) ?? []
    return flow.count > found.count ? flow : found
  }

  /// The key at the start of `text` (plain, `'single'` or `"double"` quoted, escapes decoded) and
  /// what follows it, or nil.
  static func keyToken(_ text: ArraySlice<Unicode.Scalar>) -> (String, ArraySlice<Unicode.Scalar>)? {
    guard let first = text.first else { return nil }
    if first == "\"" || first == "'" {
      var name = String.UnicodeScalarView()
      var index = text.startIndex + 1
      while index < text.endIndex {
        let scalar = text[index]
        if scalar == first {
          // `''` inside single quotes is one quote.
          if first == "'", index + 1 < text.endIndex, text[index + 1] == "'" {
            name.append("'")
            index += 2
            continue
          }
          return (String(name), text[(index + 1)...])
        }
        if first == "\"", scalar == "\\" {
          let (meaning, length) = escape(in: text, at: index)
          guard let meaning else { return nil }
          name.append(meaning)
          index += length
          continue
        }
        name.append(scalar)
        index += 1
      }
      return nil
    }
    // Plain: up to `: `, a `:` at the end, or a flow indicator.
    var end = text.startIndex
    while end < text.endIndex {
      let scalar = text[end]
      if scalar == "," || scalar == "{" || scalar == "}" || scalar == "[" || scalar == "]" { break }
      if scalar == ":" {
        let next = end + 1
        if next == text.endIndex || text[next] == " " || text[next] == "\t" || text[next] == ","
          || text[next] == "}"
        {
          break
        }
      }
      end += 1
    }
    let name = String(String.UnicodeScalarView(text[..<end])).trimmingCharacters(in: .whitespaces)
    return name.isEmpty ? nil : (name, text[end...])
  }

  /// The keys named `key` of the flow mapping (`{...}`) that holds the position (`line`, `column`),
  /// in order, or nil when there is no such mapping.
  static func flowKeyLines(_ key: String, lines: [[Unicode.Scalar]], line: Int, column: Int)
    -> [FilePosition]?
  {
    guard lines.indices.contains(line - 1) else { return nil }
    // The `{` at or before the mark on its line.
    let markLine = lines[line - 1]
    guard let open = markLine[..<min(markLine.count, max(0, column))].lastIndex(of: "{") else { return nil }
    var found: [FilePosition] = []
    var depth = 0
    var atKey = false
    // The quote of the quoted scalar being read (it may run over lines), or nil.
    var quote: Unicode.Scalar?
    // The last scalar outside quotes that was not a blank: a quote starts a quoted scalar only
    // where a key or value starts (`don't` is plain text).
    var previous: Unicode.Scalar = "{"
    var (row, index) = (line - 1, open)
    while row < lines.count {
      let current = lines[row]
      while index < current.count {
        let scalar = current[index]
        if let open = quote {
          if open == "\"" && scalar == "\\" {
            index += 2
            continue
          }
          if scalar == open {
            if open == "'", index + 1 < current.count, current[index + 1] == "'" {
              index += 2
              continue
            }
            quote = nil
            previous = scalar
          }
          index += 1
          continue
        }
        if scalar == " " || scalar == "\t" {
          index += 1
          continue
        }
        // A comment: ` #` to the end of the line.
        if scalar == "#", index == 0 || current[index - 1] == " " || current[index - 1] == "\t" { break }
        if depth == 1 && atKey {
          atKey = false
          if let (name, after) = keyToken(current[index...]), name == key,
            after.first(where: { $0 != " " }) == ":"
          {
            found.append(FilePosition(line: row + 1, column: index + 1))
          }
        }
        switch scalar {
        case "{", "[":
          depth += 1
          if depth == 1 { atKey = true }
        case "}", "]":
          depth -= 1
          if depth == 0 { return found }
        case ",":
          if depth == 1 { atKey = true }
        case "\"", "'":
          if ["{", "[", ",", ":", "?"].contains(previous) { quote = scalar }
        default: break
        }
        previous = scalar
        index += 1
      }
      row += 1
      index = 0
    }
    return found
  }

  /// The text's lines as Unicode scalars, made once for every scalar of the file: split at `\n`,
  /// a line's `\r` of CRLF dropped (a `Character` would keep `\r\n` as one).
  static func scalarLines(_ text: String) -> [[Unicode.Scalar]] {
    text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
      line.last == "\r" ? Array(line.dropLast()) : Array(line)
    }
  }

  /// The column (from 0) where a block scalar's content lines start: with an indentation indicator
  /// (`|2`, `>-1`, after a tag or anchor: `!!str |2`), its parent's indentation plus the indicator,
  /// as YAML counts it: a mapping value's parent is its key's column (`- value: |2` counts from
  /// `value`, a header on a line of its own from the key on the line above), a sequence entry's its
  /// `-`. Without one, the first line that is not blank.
  static func blockIndent(header mark: FilePosition, lines: [[Unicode.Scalar]]) -> Int {
    let headerLine = mark.line - 1
    guard lines.indices.contains(headerLine) else { return 0 }
    let line = lines[headerLine]
    var index = max(0, mark.column - 1)
    func skipSpaces() { while index < line.count, line[index] == " " || line[index] == "\t" { index += 1 } }
    // Past a tag or an anchor before the indicator.
    skipSpaces()
    while index < line.count, line[index] == "!" || line[index] == "&" {
      while index < line.count, line[index] != " " && line[index] != "\t" { index += 1 }
      skipSpaces()
    }
    var indicator: Int?
    if index < line.count, line[index] == "|" || line[index] == ">" {
      for scalar in line[(index + 1)...].prefix(2) {
        if let digit = Int(String(scalar)), digit > 0 { indicator = digit }
      }
    }
    guard let indicator else {
      for line in lines[(headerLine + 1)...] where line.contains(where: { $0 != " " && $0 != "\t" }) {
        return line.prefix(while: { $0 == " " }).count
      }
      return 0
    }
    return parentIndent(lines: lines, line: headerLine, before: max(0, mark.column - 1)) + indicator
  }

  /// The indentation of the node that holds the value starting at column `before` of `line`: the
  /// column of its key (past the line's indentation and any `- ` entries), or of the `-` of the
  /// sequence entry it is; for a value on a line of its own, that of the line above's last key.
  static func parentIndent(lines: [[Unicode.Scalar]], line: Int, before column: Int) -> Int {
    let text = lines[line].prefix(column)
    var end = text.count
    while end > 0, text[end - 1] == " " || text[end - 1] == "\t" { end -= 1 }
    if end == 0 {
      // The header begins its line: the node above holds it (blank and comment lines skipped).
      var above = line - 1
      while above >= 0 {
        let trimmed = lines[above].drop(while: { $0 == " " })
        if !trimmed.isEmpty, trimmed.first != "#" {
          return parentIndent(lines: lines, line: above, before: lines[above].count)
        }
        above -= 1
      }
      return 0
    }
    if text[end - 1] == "-" { return end - 1 }
    // A key: past the indentation and the `- ` of sequence entries the mapping sits in.
    var start = 0
    while start < end {
      if text[start] == " " {
        start += 1
      } else if text[start] == "-", start + 1 < end, text[start + 1] == " " {
        start += 2
      } else {
        break
      }
    }
    return start
  }

  /// At most this many values and bytes of text (one each) in a YAML document once its aliases are
  /// expanded: a few lines of nested aliases (a "billion laughs" file), or a long anchored text
  /// repeated, would otherwise expand to billions and take the memory of `check` or of a running
  /// daemon's reload. A 1 MiB file without aliases stays well below it.
  static let maximumYAMLExpansion = 4_000_000

  /// The expansion allowed a document of `bytes`: 64 Ki values and bytes plus 8 for each of its own
  /// bytes, at most `maximumYAMLExpansion`. Aliases that share an action's settings between rules
  /// stay far below; a 735-byte file of nested aliases took 25 s and 300 MB to reach the absolute
  /// limit, and is refused at once.
  static func expansionLimit(ofBytes bytes: Int) -> Int {
    min(maximumYAMLExpansion, 65_536 + 8 * bytes)
  }

  /// Converts a composed YAML node (aliases already resolved to their anchors' nodes) to a
  /// The JSON spelling of a plain scalar that YAML 1.2's core schema reads as a number, or nil:
  /// `[-+]?[0-9]+` (`010` is 10, `+5` is 5), `0x` hex and `0o` octal (`0x10` is 16, `0o17` is 15),
  /// and `[-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?` (`.5` is 0.5, `1.` is 1.0). `.inf` and
  /// `.nan` have no JSON spelling and stay text, as does a hex or octal number beyond 64 bits.
  static func coreSchemaNumber(_ text: String) -> String? {
    let bytes = Array(text.utf8)
    func digits(_ range: Range<Int>, _ isDigit: (UInt8) -> Bool) -> Bool {
      !range.isEmpty && bytes[range].allSatisfy(isDigit)
    }
    let decimalDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    if bytes.count > 2, bytes[0] == UInt8(ascii: "0"),
      bytes[1] == UInt8(ascii: "x") || bytes[1] == UInt8(ascii: "o")
    {
      let radix = bytes[1] == UInt8(ascii: "x") ? 16 : 8
      // Digits only: `UInt64(_:radix:)` would also take a sign (`0x+1f`).
      guard bytes[2...].allSatisfy({ Character(UnicodeScalar($0)).hexDigitValue.map { $0 < radix } ?? false })
      else { return nil }
      return UInt64(String(decoding: bytes[2...], as: UTF8.self), radix: radix).map { "\($0)" }
    }
    var index = 0
    let negative = bytes.first == UInt8(ascii: "-")
    if negative || bytes.first == UInt8(ascii: "+") { index = 1 }
    let integerStart = index
    while index < bytes.count, decimalDigit(bytes[index]) { index += 1 }
    let integer = integerStart..<index
    var fraction = index..<index
    var sawPoint = false
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      sawPoint = true
      index += 1
      let start = index
      while index < bytes.count, decimalDigit(bytes[index]) { index += 1 }
      fraction = start..<index
    }
    guard !integer.isEmpty || !fraction.isEmpty else { return nil }
    var exponent = ""
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      var start = index + 1
      if start < bytes.count, bytes[start] == UInt8(ascii: "-") || bytes[start] == UInt8(ascii: "+") {
        start += 1
      }
      guard digits(start..<bytes.count, decimalDigit) else { return nil }
      exponent = "e" + String(decoding: bytes[(index + 1)...], as: UTF8.self)
      index = bytes.count
    }
    guard index == bytes.count, !sawPoint || !fraction.isEmpty || !integer.isEmpty else { return nil }
    // JSON's spelling: no `+`, no leading zeros, a digit on each side of a point.
    var whole = String(decoding: bytes[integer], as: UTF8.self).drop { $0 == "0" }
    if whole.isEmpty { whole = "0" }
    let sign = negative ? "-" : ""
    // A point with no digits after it (`5.`) is still a float: `5.0`, a Decimal, as in JSON.
    let point =
      fraction.isEmpty ? (sawPoint ? ".0" : "") : "." + String(decoding: bytes[fraction], as: UTF8.self)
    return sign + whole + point + exponent
  }

  /// Refuses `!!binary` (its base64 text would be taken as the value: a file named `b3V0...`) and
  /// application tags (`!custom`), which have no meaning in a rule file, on a scalar, a sequence or
  /// a mapping alike (`file: !custom {...}` passed).
  static func refuseMeaninglessTag(_ tag: String, at mark: FilePosition) throws(RuleSyntaxError) {
    guard
      tag == "tag:yaml.org,2002:binary" || tag.hasPrefix("!") && tag.count > 1
        || tag.hasPrefix("tag:") && !tag.hasPrefix("tag:yaml.org,2002:")
    else { return }
    let shown = tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst(18) : Substring(tag)
    throw RuleSyntaxError(
      position: mark,
      message:
        "YAML: the tag '\(shown)' has no meaning in a rule file (!!str, !!int, !!float, !!bool and !!null do)"
    )
  }

  /// `RuleNode`, spending `budget` (of `limit`) one a value and one a byte of text.
  static func convert(_ node: Yams.Node, lines: [[Unicode.Scalar]], budget: inout Int, limit: Int)
    throws(RuleSyntaxError) -> RuleNode
  {
    let mark =
      node.mark.map { FilePosition(line: $0.line, column: $0.column) } ?? FilePosition(line: 1, column: 1)
    budget -= 1
    if case .scalar(let scalar) = node { budget -= scalar.string.utf8.count }
    if budget < 0 {
      throw RuleSyntaxError(
        position: mark,
        message:
          "YAML: the document holds more than \(limit) values and bytes of text once its aliases are expanded (64 Ki and 8 for each byte of the file, at most \(maximumYAMLExpansion)): a file this large, or aliases that repeat this much"
      )
    }
    switch node {
    case .scalar(let scalar):
      let text = scalar.string
      // The YAML 1.2 core schema on plain scalars (`yes` stays a string); an explicit `!!str`
      // keeps any text a string, and `!!bool`, `!!int`, `!!float`, `!!null` read a quoted one.
      let tag = scalar.tag.description
      try refuseMeaninglessTag(tag, at: mark)
      let typed = ["bool", "int", "float", "null"].contains { tag == "tag:yaml.org,2002:" + $0 }
      // What the file wrote unquoted, for hints when the schema read it as another kind than meant.
      let plain = scalar.style == .plain && !typed && !tag.hasSuffix(":str") ? text : nil
      if !tag.hasSuffix(":str") && (scalar.style == .plain || typed) {
        if tag.hasSuffix(":null") || ["null", "Null", "NULL", "~", ""].contains(text) {
          return RuleNode(kind: .null, position: mark, plainText: plain)
        }
        if ["true", "false", "True", "False", "TRUE", "FALSE"].contains(text) {
          return RuleNode(kind: .bool(text.lowercased() == "true"), position: mark, plainText: plain)
        }
        if let number = coreSchemaNumber(text) {
          return RuleNode(kind: .number(number), position: mark, plainText: plain)
        }
        // The core schema's other floats: JSON holds no infinity or NaN (they were read as text).
        if [
          ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN",
          ".NAN",
        ]
        .contains(text) {
          throw RuleSyntaxError(
            position: mark,
            message:
              "YAML: '\(text)' is a float that JSON cannot hold (no infinity or NaN); quote it for the text")
        }
        if scalar.style != .plain {
          // An explicit tag on quoted text that is not of its type (`!!int "abc"`).
          throw RuleSyntaxError(
            position: mark, message: "YAML: '\(text)' is no \(tag.split(separator: ":").last ?? "")")
        }
      }
      let positions =
        scalar.style == .literal
        ? literalPositions(text, mark: mark, lines: lines)
        : alignedPositions(text, style: scalar.style, mark: mark, lines: lines)
      // Continuation bytes share their character's column.
      return RuleNode(kind: .string(text), position: mark, stringPositions: positions, plainText: plain)
    case .sequence(let sequence):
      try refuseMeaninglessTag(sequence.tag.description, at: mark)
      var elements: [RuleNode] = []
      for element in sequence {
        elements.append(try convert(element, lines: lines, budget: &budget, limit: limit))
      }
      return RuleNode(kind: .array(elements), position: mark, stringPositions: [])
    case .mapping(let mapping):
      try refuseMeaninglessTag(mapping.tag.description, at: mark)
      var members: [RuleNode.Member] = []
      // In document order, a merge key's members where it stands; `merged` marks them.
      var entries: [(member: RuleNode.Member, merged: Bool)] = []
      for (key, value) in mapping {
        let keyMark = key.mark.map { FilePosition(line: $0.line, column: $0.column) } ?? mark
        guard key.scalar != nil else {
          // (Written out, a collection key is as large as its aliases make it.)
          throw RuleSyntaxError(
            position: keyMark, message: "YAML: a mapping key must be a plain value, not a collection")
        }
        if key.scalar?.style == .plain, key.string == "<<" {
          // A merge key (`<<: *defaults`, `<<: [*a, *b]`): the mappings' members, under the
          // mapping's own keys and the earlier mappings of a list, which win.
          let sources = value.sequence.map(Array.init) ?? [value]
          for source in sources {
            guard source.mapping != nil else {
              throw RuleSyntaxError(
                position: keyMark, message: "YAML: '<<' merges a mapping or a list of mappings")
            }
            guard
              case .object(let more) = try convert(source, lines: lines, budget: &budget, limit: limit).kind
            else {
              continue
            }
            entries += more.map { ($0, true) }
          }
          continue
        }
        entries.append(
          (
            RuleNode.Member(
              key: key.scalar?.string ?? "", keyPosition: keyMark,
              value: try convert(value, lines: lines, budget: &budget, limit: limit)), false
          ))
      }
      let own = Set(entries.lazy.filter { !$0.merged }.map(\.member.key))
      var taken: Set<String> = []
      for entry in entries
      where !entry.merged || (!own.contains(entry.member.key) && taken.insert(entry.member.key).inserted) {
        members.append(entry.member)
      }
      return RuleNode(kind: .object(members), position: mark, stringPositions: [])
    case .alias:
      return RuleNode(kind: .null, position: mark, stringPositions: [])
    }
  }
}

/// A strict JSON parser for rule files that records positions (not the hot path: payloads go
/// through IoTSQL's reader).
struct PositionedJSONParser {
  let bytes: [UInt8]
  var index = 0
  var line = 1
  var column = 1
  var depth = 0
  /// Each later use of a key already in its object, in file order.
  var duplicates: [RuleSyntaxError] = []

  init(bytes: [UInt8]) {
    self.bytes = bytes
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
  }

  var position: FilePosition { FilePosition(line: line, column: column) }

  func fail(_ message: String) -> RuleSyntaxError {
    RuleSyntaxError(position: position, message: message)
  }

  /// Past one byte. A line ends at LF, CRLF or a lone CR (old Mac line ends), as editors and the
  /// YAML reader count them: a file of CR line ends was read as one line, its errors at 1:79.
  mutating func advance() {
    let byte = bytes[index]
    index += 1
    if byte == 0x0A || (byte == 0x0D && (index == bytes.count || bytes[index] != 0x0A)) {
      line += 1
      column = 1
    } else if byte & 0xC0 != 0x80 {
      column += 1
    }
  }

  mutating func skipWhitespace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { advance() }
  }

  mutating func parseDocument() throws(RuleSyntaxError) -> RuleNode {
    skipWhitespace()
    let node = try parseValue()
    skipWhitespace()
    if index < bytes.count { throw fail("unexpected text after the JSON document") }
    return node
  }

  func describe(_ byte: UInt8) -> String {
    byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02x", byte)
  }

  /// The character at `at`, as `describe` says a byte; one that is not ASCII by its code point (a
  /// typographic quote pasted from a document or a chat said "found byte 0xe2"), and a quote that is
  /// not JSON's says which is.
  func describe(at start: Int) -> String {
    guard bytes[start] >= 0x80 else { return describe(bytes[start]) }
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes[start...].makeIterator()
    guard case .valid(let encoded) = parser.parseScalar(from: &iterator) else {
      return describe(bytes[start])
    }
    let scalar = UTF8.decode(encoded)
    let shown = RuleFile.isInvisible(scalar) ? scalar.escapeSpelling : String(scalar)
    let quote = [
      0x2018, 0x2019, 0x201A, 0x201B, 0x201C, 0x201D, 0x201E, 0x201F, 0x00AB, 0x00BB, 0xFF02, 0xFF07,
    ]
    .contains(scalar.value)
    return "'\(shown)' (\(scalar.codePointName))"
      + (quote ? ", a typographic quote: JSON's quote is '\"'" : "")
  }

  mutating func parseValue() throws(RuleSyntaxError) -> RuleNode {
    guard index < bytes.count else { throw fail("unexpected end of file, expected a value") }
    let start = position
    switch bytes[index] {
    case UInt8(ascii: "{"):
      depth += 1
      if depth > 64 { throw fail("nesting deeper than 64") }
      advance()
      var members: [RuleNode.Member] = []
      // The duplicate check scans the few members of a rule's objects, and keeps a set of the keys
      // once an object grows past that (the scan alone was quadratic: a 1 MiB object of 92,000
      // keys took half a minute; a set for every small object raised loading's peak memory).
      var keys: [ExactText: FilePosition]?
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
        advance()
        depth -= 1
        return RuleNode(kind: .object(members), position: start, stringPositions: [])
      }
      while true {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
          throw fail(
            index < bytes.count
              ? "expected a key string, found \(describe(at: index))"
              : "unexpected end of file in an object")
        }
        let keyPosition = position
        let (key, _) = try parseString()
        // Keys are the same when their scalars are (as in a payload: `é` and `e` + U+0301 are two
        // keys), not when Swift's `==` finds them canonically equivalent.
        if keys == nil, members.count >= 16 {
          keys = Dictionary(
            members.map { (ExactText($0.key), $0.keyPosition) }, uniquingKeysWith: { a, _ in a })
        }
        // A repeated key keeps its first value; the later one is read (its syntax matters) and
        // reported, not kept, so that the rest of the file is still checked.
        let first =
          keys.map { $0[ExactText(key)] } ?? members.first(where: { $0.key.isExactly(key) })?.keyPosition
        if let first {
          duplicates.append(
            RuleSyntaxError(
              position: keyPosition,
              message:
                "duplicate key '\(RuleFile.escapedName(key))' (first at \(first.line):\(first.column))",
              firstUse: first))
        } else {
          keys?[ExactText(key)] = keyPosition
        }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
          throw fail("expected ':' after the key")
        }
        advance()
        skipWhitespace()
        let value = try parseValue()
        if first == nil { members.append(RuleNode.Member(key: key, keyPosition: keyPosition, value: value)) }
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of file in an object") }
        if bytes[index] == UInt8(ascii: ",") {
          advance()
          continue
        }
        if bytes[index] == UInt8(ascii: "}") {
          advance()
          break
        }
        throw fail("expected ',' or '}', found \(describe(at: index))")
      }
      depth -= 1
      return RuleNode(kind: .object(members), position: start, stringPositions: [])
    case UInt8(ascii: "["):
      depth += 1
      if depth > 64 { throw fail("nesting deeper than 64") }
      advance()
      var elements: [RuleNode] = []
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
        advance()
        depth -= 1
        return RuleNode(kind: .array(elements), position: start, stringPositions: [])
      }
      while true {
        skipWhitespace()
        elements.append(try parseValue())
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of file in an array") }
        if bytes[index] == UInt8(ascii: ",") {
          advance()
          continue
        }
        if bytes[index] == UInt8(ascii: "]") {
          advance()
          break
        }
        throw fail("expected ',' or ']', found \(describe(at: index))")
      }
      depth -= 1
      return RuleNode(kind: .array(elements), position: start, stringPositions: [])
    case UInt8(ascii: "\""):
      let (text, positions) = try parseString()
      return RuleNode(kind: .string(text), position: start, stringPositions: positions)
    case UInt8(ascii: "t"): return try literal("true", .bool(true), start)
    case UInt8(ascii: "f"): return try literal("false", .bool(false), start)
    case UInt8(ascii: "n"): return try literal("null", .null, start)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      let begin = index
      while index < bytes.count,
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index])
          || [0x2D, 0x2B, 0x2E, 0x65, 0x45].contains(bytes[index])
      {
        advance()
      }
      let text = String(decoding: bytes[begin..<index], as: UTF8.self)
      // JSON's grammar, read by the engine's own strict reader, not Swift's: `01`, `1.`, `.5`, `+1`
      // and `1e` are refused, as `jq` and the AWS CLI refuse them.
      guard (try? JSONReader.parse(Array(bytes[begin..<index]))) != nil else {
        throw RuleSyntaxError(position: start, message: "invalid number '\(text)'")
      }
      return RuleNode(kind: .number(text), position: start, stringPositions: [])
    default:
      throw fail("unexpected \(describe(at: index)), expected a value")
    }
  }

  mutating func literal(_ word: String, _ kind: RuleNode.Kind, _ start: FilePosition) throws(RuleSyntaxError)
    -> RuleNode
  {
    for expected in word.utf8 {
      guard index < bytes.count, bytes[index] == expected else {
        throw RuleSyntaxError(position: start, message: "invalid literal, expected '\(word)'")
      }
      advance()
    }
    return RuleNode(kind: kind, position: start, stringPositions: [])
  }

  /// Reads a string at `index` (on its opening quote): the text and the file position of each of its
  /// UTF-8 bytes.
  mutating func parseString() throws(RuleSyntaxError) -> (String, [FilePosition]) {
    advance()
    var out: [UInt8] = []
    var positions: [FilePosition] = []
    while true {
      guard index < bytes.count else { throw fail("unterminated string") }
      let byte = bytes[index]
      let here = position
      if byte == UInt8(ascii: "\"") {
        positions.append(here)
        advance()
        break
      }
      if byte < 0x20 { throw fail("control character in a string (write it as an escape)") }
      if byte != UInt8(ascii: "\\") {
        out.append(byte)
        positions.append(here)
        advance()
        continue
      }
      advance()
      guard index < bytes.count else { throw fail("unterminated escape") }
      let escape = bytes[index]
      advance()
      var scalarValue: UInt32
      switch escape {
      case UInt8(ascii: "\""): scalarValue = 0x22
      case UInt8(ascii: "\\"): scalarValue = 0x5C
      case UInt8(ascii: "/"): scalarValue = 0x2F
      case UInt8(ascii: "b"): scalarValue = 0x08
      case UInt8(ascii: "f"): scalarValue = 0x0C
      case UInt8(ascii: "n"): scalarValue = 0x0A
      case UInt8(ascii: "r"): scalarValue = 0x0D
      case UInt8(ascii: "t"): scalarValue = 0x09
      case UInt8(ascii: "u"):
        scalarValue = try hex4()
        if (0xD800..<0xDC00).contains(scalarValue) {
          guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
            bytes[index + 1] == UInt8(ascii: "u")
          else {
            throw RuleSyntaxError(position: here, message: "lone surrogate in a \\u escape")
          }
          advance()
          advance()
          let low = try hex4()
          guard (0xDC00..<0xE000).contains(low) else {
            throw RuleSyntaxError(position: here, message: "lone surrogate in a \\u escape")
          }
          scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..<0xE000).contains(scalarValue) {
          throw RuleSyntaxError(position: here, message: "lone surrogate in a \\u escape")
        }
      default:
        throw RuleSyntaxError(
          position: here, message: "invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
      }
      let encoded = Array(String(Character(Unicode.Scalar(scalarValue)!)).utf8)
      out.append(contentsOf: encoded)
      positions.append(contentsOf: repeatElement(here, count: encoded.count))
    }
    guard let text = String(validating: out, as: UTF8.self) else {
      throw fail("invalid UTF-8 in a string")
    }
    return (text, positions)
  }

  mutating func hex4() throws(RuleSyntaxError) -> UInt32 {
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard index < bytes.count, let digit = hexValue(bytes[index]) else {
        throw fail("expected four hex digits in a \\u escape")
      }
      value = value * 16 + digit
      advance()
    }
    return value
  }

  func hexValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
  }
}
