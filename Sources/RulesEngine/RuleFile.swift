import Foundation
import IoTSQL

/// One problem in a rule file: `Rules/high_temp.json:3:41: error: ...`.
public struct RuleDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
  /// The file as given.
  public var file: String
  /// Where in the file.
  public var position: FilePosition
  /// What is wrong.
  public var message: String

  /// Creates a diagnostic.
  public init(file: String, position: FilePosition, message: String) {
    self.file = file
    self.position = position
    self.message = message
  }

  /// `file:line:column: error: message`.
  public var description: String {
    // A file name with a newline or another control character is spelled out: the line stays one.
    "\(RuleFile.escapedName(file)):\(position.line):\(position.column): error: \(message)"
  }

  /// True when `lhs` comes before `rhs` in their file (by line, then column).
  public static func inFileOrder(_ lhs: RuleDiagnostic, _ rhs: RuleDiagnostic) -> Bool {
    (lhs.position.line, lhs.position.column) < (rhs.position.line, rhs.position.column)
  }

  /// `list` in file order, each diagnostic once: a YAML alias repeats its anchor's node, and the
  /// node's problem was said at the anchor once for each use.
  static func inFileOrderOnce(_ list: [RuleDiagnostic]) -> [RuleDiagnostic] {
    var once: [RuleDiagnostic] = []
    // Equal diagnostics share a position: sorted by it, one kept already is among the last kept.
    for diagnostic in list.sorted(by: inFileOrder)
    where !once.reversed().prefix(while: { $0.position == diagnostic.position }).contains(diagnostic) {
      once.append(diagnostic)
    }
    return once
  }
}

/// Why a gate refuses a rule.
public struct GateRefusal: Sendable, Equatable {
  /// In one line, for the log: `2 of 5 test(s) in r.test.json failed: 'a', 'b'`.
  public var reason: String
  /// Where, when the cause has places of its own: each failing case at its line in the test file,
  /// each error of a broken test file.
  public var diagnostics: [RuleDiagnostic]

  /// Creates a refusal.
  public init(reason: String, diagnostics: [RuleDiagnostic] = []) {
    self.reason = reason
    self.diagnostics = diagnostics
  }
}

/// Every problem found in one rule file.
public struct RuleFileError: Error, Sendable, CustomStringConvertible {
  /// The diagnostics, in file order.
  public var diagnostics: [RuleDiagnostic]
  /// The warnings found beside them (the SQL's, the templates'), so that one `check` shows all.
  public var warnings: [RuleDiagnostic] = []
  /// True when the file could not be read at all (an I/O problem, not a broken rule: exit 74).
  public var unreadable = false

  /// Creates an error.
  public init(_ diagnostics: [RuleDiagnostic], warnings: [RuleDiagnostic] = []) {
    self.diagnostics = diagnostics
    self.warnings = warnings
  }

  /// One line per diagnostic.
  public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Reads one rule file (AWS `topicRulePayload` shape, JSON or YAML) into a `Rule`.
///
/// Keys: `sql` (required), `description`, `ruleDisabled`, `awsIotSqlVersion` (default 2016-03-23,
/// where AWS's API defaults to 2015-10-08), `actions` (at most 10, each an object with one key naming
/// its kind), `errorAction`, and `ruleName` (else the file's base name). A file may also wrap these in
/// `{"ruleName": ..., "topicRulePayload": {...}}`, the input of `aws iot create-topic-rule`, or be the
/// output of `aws iot get-topic-rule`, `{"ruleArn": ..., "rule": {"ruleName": ..., "sql": ...,
/// "createdAt": ..., ...}}` (the read-only `ruleArn`, `createdAt` are ignored). Inside an
/// action's configuration, `retry` (`attempts`, `initialBackoffMs`, `maxBackoffMs`) and `errorAction`
/// are read by the loader; the rest goes to the action factory.
public enum RuleFile {
  /// The most actions a rule may have, as AWS.
  public static let maxActions = 10
  /// AWS IoT's quota on a rule's SQL statement, in bytes of UTF-8 (256 KB): `check` warns beyond it.
  public static let maxSQLBytes = 262_144
  static let ruleKeys: Set<String> = [
    "sql", "description", "ruleDisabled", "awsIotSqlVersion", "actions", "errorAction", "ruleName",
  ]
  /// What `aws iot get-topic-rule` prints beside a rule's own keys: read-only, ignored.
  static let readOnlyKeys: Set<String> = ["ruleArn", "createdAt"]

  /// What may stand beside the rule's payload in AWS's documents, besides the payload's own key
  /// (`rule` in get-topic-rule's output, `topicRulePayload` in create-topic-rule's input): the
  /// name, the resource tags (of no meaning here), the ARN and `ResponseMetadata`, which boto3's
  /// `get_topic_rule` adds.
  public static let keysBesideWrapper: Set<String> = readOnlyKeys.union([
    "ruleName", "tags", "ResponseMetadata",
  ])

  /// Said after a text that ends in a line break, most often a YAML block scalar's closing one.
  public static let yamlLineBreakHint =
    " (a YAML '>' or '|' scalar ends in a line break; '>-' and '|-' do not)"

  /// `name` as a message shows it: every control character spelled out, line breaks too
  /// (`line\u000Abreak`), so that an invalid name cannot split or forge a line of output.
  public static func escapedName(_ name: String) -> String {
    let shown = printable(name, keepsLineBreaks: false)
    // In a name (a key, a rule's, a file's), a character that shows as nothing or as a space is
    // spelled out too: `unknown key 'sql'` beside `missing key 'sql'` hid a zero-width space
    // pasted from a web page, and a YAML line indented with a no-break space read as a key.
    guard shown.unicodeScalars.contains(where: isInvisible) else { return shown }
    var out = String.UnicodeScalarView()
    for scalar in shown.unicodeScalars {
      if isInvisible(scalar) {
        out.append(contentsOf: scalar.escapeSpelling.unicodeScalars)
      } else {
        out.append(scalar)
      }
    }
    return String(out)
  }

  /// Spaces other than U+0020 and the characters that show as nothing: no-break and typographic
  /// spaces, zero-width ones (not the joiners U+200C and U+200D, which Persian, Hindi and emoji
  /// use, nor U+202F, in macOS's file names), directional marks and isolates, the byte order mark,
  /// the soft hyphen, fillers (Hangul's, Mongolian's variation selectors) and the tag characters.
  static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0xA0, 0xAD, 0x034F, 0x061C, 0x115F, 0x1160, 0x1680, 0x180B...0x180F, 0x2000...0x200B, 0x200E,
      0x200F, 0x2028...0x202E, 0x205F...0x2064, 0x2066...0x206F, 0x3000, 0x3164, 0xFEFF, 0xFFA0,
      0xE0000...0xE007F:
      return true
    default:
      return false
    }
  }

  /// Why `path` cannot be read as a rule path, in the system's words (`cannot read it (Permission
  /// denied)`, `no such file or folder`), or nil: it exists, and a folder can be listed.
  public static func folderProblem(_ path: String) -> String? {
    var info = stat()
    guard stat(path, &info) == 0 else {
      return errno == ENOENT
        ? "no such file or folder" : "cannot read it (\(String(cString: strerror(errno))))"
    }
    guard info.st_mode & S_IFMT == S_IFDIR else { return nil }
    guard let folder = opendir(path) else { return "cannot read it (\(String(cString: strerror(errno))))" }
    closedir(folder)
    return nil
  }

  /// The offset of the first byte of `bytes` that is not part of valid UTF-8, or nil when all is:
  /// where a command line, a script line or a file that must be text is refused.
  public static func firstNonUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while case .valid(let scalar) = parser.parseScalar(from: &iterator) { offset += scalar.count }
    return offset < bytes.count ? offset : nil
  }

  /// `text` with its control characters spelled `\u001B` (tab and line feed kept unless
  /// `keepsLineBreaks` is false): a key, name or file name holding NUL or an escape sequence must
  /// not reach a terminal or a CI log raw.
  public static func printable(_ text: String, keepsLineBreaks: Bool = true) -> String {
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      let value = scalar.value
      let kept = keepsLineBreaks && (value == 0x09 || value == 0x0A)
      if !kept && (value < 0x20 || (0x7F...0x9F).contains(value)) {
        out.append(contentsOf: scalar.escapeSpelling.unicodeScalars)
      } else {
        out.append(scalar)
      }
    }
    return String(out)
  }

  /// True for AWS's rule-name pattern `[a-zA-Z0-9_]{1,128}`.
  public static func isValidRuleName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 128
      && name.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
          || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
          || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
      }
  }

  /// `path` made absolute from `folder`, without `.`, `..` and empty segments, worked out from the
  /// text alone (as `URL.standardized` does): the same file named twice is loaded once. Foundation's
  /// file URLs asked the file system about every path (10,000 rules: two stat calls each).
  public static func lexicalPath(_ path: String, from folder: String) -> String {
    var segments: [Substring] = []
    for segment in (path.hasPrefix("/") ? path : folder + "/" + path).split(separator: "/") {
      if segment == "." { continue }
      if segment == ".." {
        if !segments.isEmpty { segments.removeLast() }
        continue
      }
      segments.append(segment)
    }
    return "/" + segments.joined(separator: "/")
  }

  /// Tells files met again, however the paths that lead to them are spelt: `./r.json` and
  /// `r.json`, a folder and a file in it, a folder and a symbolic link to it (`check R L` said each
  /// rule clashed with itself). A file is known by its folder as the file system resolves it
  /// (once per folder) and its name: two hard links are two files, as their rules are two.
  public struct SameFiles {
    private let here = FileManager.default.currentDirectoryPath
    private var folders: [Substring: String] = [:]
    private var seen: Set<ExactText> = []

    /// An empty record.
    public init() {}

    /// True when `path` is met for the first time.
    public mutating func firstTime(_ path: String) -> Bool {
      let lexical = RuleFile.lexicalPath(path, from: here)
      let slash = lexical.lastIndex(of: "/")!
      let folder = lexical[..<slash]
      let resolved: String
      if let known = folders[folder] {
        resolved = known
      } else {
        resolved =
          realpath(folder.isEmpty ? "/" : String(folder), nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
          } ?? String(folder)
        folders[folder] = resolved
      }
      return seen.insert(ExactText(resolved + lexical[slash...])).inserted
    }
  }

  /// True when `path` names a rule file (`.json`, `.yaml`, `.yml`), and not the rule tests beside one
  /// (`.test.json`, `.test.yaml`, `.test.yml`).
  public static func isRuleFile(_ path: String) -> Bool {
    (path.hasSuffix(".json") || path.hasSuffix(".yaml") || path.hasSuffix(".yml")) && !isTestFile(path)
  }

  /// The endings of a rule's test files, in the order they are looked for.
  public static let testSuffixes = [".test.json", ".test.yaml", ".test.yml"]

  /// Whether `path` names a rule's test file (`NAME.test.json`, `.test.yaml`, `.test.yml`).
  public static func isTestFile(_ path: String) -> Bool { testSuffixes.contains { path.hasSuffix($0) } }

  /// Where the tests of rule file `path` may be, in the order they are looked for:
  /// `Rules/a.json` → `Rules/a.test.json`, `.test.yaml`, `.test.yml`.
  public static func testFilePaths(of path: String) -> [String] {
    var stem = path
    if let dot = stem.lastIndex(of: "."), !stem[dot...].contains("/") { stem = String(stem[..<dot]) }
    return testSuffixes.map { stem + $0 }
  }

  /// Where the rule of test file `path` may be: `Rules/a.test.json` → `Rules/a.json`, `.yaml`,
  /// `.yml` (empty for a path that is no test file).
  public static func ruleFilePaths(ofTest path: String) -> [String] {
    guard let stem = stem(ofTest: path) else { return [] }
    return [stem + ".json", stem + ".yaml", stem + ".yml"]
  }

  /// Test file `path` without its ending (`Rules/a.test.yaml` → `Rules/a`), or nil for another file.
  public static func stem(ofTest path: String) -> String? {
    testSuffixes.first(where: { path.hasSuffix($0) }).map { String(path.dropLast($0.count)) }
  }

  /// The rule file of test file `path` as a message names it: the one that is there (a YAML rule's
  /// tests pointed at its .json), else the names it may have, joined with "or".
  public static func ruleFileNaming(ofTest path: String) -> String {
    let candidates = ruleFilePaths(ofTest: path)
    let present = candidates.filter { FileManager.default.fileExists(atPath: $0) }
    return (present.isEmpty ? candidates : present).joined(separator: " or ")
  }

  /// The base name without folder and extension.
  public static func baseName(_ path: String) -> String {
    let last = path.split(separator: "/").last.map(String.init) ?? path
    if let dot = last.lastIndex(of: ".") { return String(last[..<dot]) }
    return last
  }

  /// A document's `ruleName`: beside the rule's keys, or beside or in the AWS wrapper
  /// (`topicRulePayload`, else `rule`); nil when it has none, and the file's base name names the rule.
  static func ruleNameNode(_ root: RuleNode) -> RuleNode? {
    root["ruleName"] ?? (root["topicRulePayload"] ?? root["rule"])?["ruleName"]
  }

  /// The name of the rule in the file `file` holding `bytes`, as ``load(file:bytes:builder:)``
  /// names it (its `ruleName`, else the file's base name), read without compiling anything. A file
  /// that does not parse, or whose `ruleName` is not a string, gives its base name: the name its
  /// rule takes once fixed, unless the fix adds a `ruleName`.
  public static func declaredName(file: String, bytes: [UInt8]) -> String {
    claimedName(file: file, bytes: bytes)?.name ?? baseName(file)
  }

  /// The name the rule in `file` claims and where (its `ruleName`, else the file's base name at
  /// the file's start), read without compiling anything; nil when the file does not parse as an
  /// object or its `ruleName` is not a string. `check` and `run` use it to say a name clash of a
  /// file that does not load, in the same run as its other problems.
  public static func claimedName(file: String, bytes: [UInt8]) -> (name: String, position: FilePosition)? {
    var duplicates: [RuleSyntaxError] = []
    guard let parsed = try? RuleDocument.parse(bytes, file: file, duplicates: &duplicates),
      parsed.members != nil
    else { return nil }
    guard let node = ruleNameNode(parsed) else { return (baseName(file), FilePosition(line: 1, column: 1)) }
    guard let name = node.string else { return nil }
    return (name, node.position)
  }

  /// The name a file that does not load claims: ``claimedName(file:bytes:)``, or for a file that
  /// does not parse, ``nameWrittenIn(file:bytes:)``. `check` and `run` say its clashes by it.
  public static func nameClaimedByBrokenFile(file: String, bytes: [UInt8]) -> (
    name: String, position: FilePosition
  )? {
    claimedName(file: file, bytes: bytes) ?? nameWrittenIn(file: file, bytes: bytes)
  }

  /// The name a file that does not parse seems to claim, read from its text: the string after its
  /// `ruleName` key (`"ruleName": "r"` in JSON, `ruleName: r` or `'r'` in YAML), when every such key
  /// holds the same one; the file's base name when no `ruleName` is written; nil when they differ or
  /// one cannot be read. A reload uses it to keep running the rule of a gone file that was moved
  /// into this one (`mv a.json b.json`, then a broken edit): that rule was retired, its messages
  /// acknowledged with nothing written, until the file parsed.
  public static func nameWrittenIn(file: String, bytes: [UInt8]) -> (name: String, position: FilePosition)? {
    let key = Array("ruleName".utf8)
    let count = bytes.count
    func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
    var found: [(name: String, offset: Int)] = []
    var index = 0
    while index + key.count <= count {
      guard bytes[index] == key[0], bytes[index..<(index + key.count)].elementsEqual(key) else {
        index += 1
        continue
      }
      let quoted = index > 0 && bytes[index - 1] == UInt8(ascii: "\"")
      var cursor = index + key.count
      index = cursor
      if quoted {
        guard cursor < count, bytes[cursor] == UInt8(ascii: "\"") else { continue }
        cursor += 1
      } else if index - key.count > 0, !" \t\n\r{,".utf8.contains(bytes[index - key.count - 1]) {
        continue
      }
      while cursor < count, isBlank(bytes[cursor]) { cursor += 1 }
      guard cursor < count, bytes[cursor] == UInt8(ascii: ":") else { continue }
      cursor += 1
      while cursor < count, isBlank(bytes[cursor]) { cursor += 1 }
      guard cursor < count else { break }
      let start = cursor
      var name: String?
      if bytes[cursor] == UInt8(ascii: "\"") {
        // A JSON (or YAML double-quoted) string, its escapes read as JSON reads them.
        cursor += 1
        while cursor < count, bytes[cursor] != UInt8(ascii: "\""), bytes[cursor] != 0x0A {
          cursor += bytes[cursor] == UInt8(ascii: "\\") ? 2 : 1
        }
        if cursor < count, bytes[cursor] == UInt8(ascii: "\""),
          case .string(let text)? = try? JSONReader.parse(Array(bytes[start...cursor]))
        {
          name = text
        }
      } else if !quoted, bytes[cursor] == UInt8(ascii: "'") {
        // YAML's single-quoted string: '' is a quote.
        var text: [UInt8] = []
        cursor += 1
        while cursor < count, bytes[cursor] != 0x0A {
          if bytes[cursor] == UInt8(ascii: "'") {
            guard cursor + 1 < count, bytes[cursor + 1] == UInt8(ascii: "'") else {
              name = String(decoding: text, as: UTF8.self)
              break
            }
            cursor += 1
          }
          text.append(bytes[cursor])
          cursor += 1
        }
      } else if !quoted {
        // YAML's plain scalar, up to the line's end, a comment, or a flow mapping's `,` or `}`.
        while cursor < count, !"\n\r,}".utf8.contains(bytes[cursor]),
          !(bytes[cursor] == UInt8(ascii: "#") && isBlank(bytes[cursor - 1]))
        {
          cursor += 1
        }
        var end = cursor
        while end > start, isBlank(bytes[end - 1]) { end -= 1 }
        if end > start { name = String(decoding: bytes[start..<end], as: UTF8.self) }
      }
      guard let name else { return nil }
      found.append((name, start))
      index = max(index, cursor)
    }
    guard let first = found.first else { return (baseName(file), FilePosition(line: 1, column: 1)) }
    guard found.allSatisfy({ $0.name == first.name }) else { return nil }
    // The value's line and column, the column counted in characters.
    let before = bytes[..<first.offset]
    let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
    let line = before.count { $0 == 0x0A } + 1
    let column = bytes[lineStart..<first.offset].count { $0 & 0xC0 != 0x80 } + 1
    return (first.name, FilePosition(line: line, column: column))
  }

  /// Parses, compiles and validates; `file` is the path used in messages and for the default name.
  public static func load(file: String, bytes: [UInt8], builder: any ActionBuilding) throws(RuleFileError)
    -> Rule
  {
    var diagnostics: [RuleDiagnostic] = []
    func report(_ position: FilePosition, _ message: String) {
      diagnostics.append(RuleDiagnostic(file: file, position: position, message: message))
    }
    let start = FilePosition(line: 1, column: 1)
    var root: RuleNode
    // A repeated key is reported with the file's other problems: it does not hide them.
    var duplicates: [RuleSyntaxError] = []
    do {
      root = try RuleDocument.parse(bytes, file: file, duplicates: &duplicates)
    } catch {
      // The repeated keys found before it too (a YAML file past the 16 it reads again for them).
      throw RuleFileError(
        (duplicates + [error]).map { RuleDiagnostic(file: file, position: $0.position, message: $0.message) })
    }
    for duplicate in duplicates { report(duplicate.position, duplicate.message) }
    guard root.members != nil else {
      throw RuleFileError([
        RuleDiagnostic(
          file: file, position: root.position, message: "a rule file holds an object, found \(root.kindName)")
      ])
    }
    let explicitName = ruleNameNode(root)
    let outerName = root["ruleName"]
    var awsWrapper: (key: String, position: FilePosition)?
    // The create-topic-rule input wraps the rule in `topicRulePayload`, the get-topic-rule output in
    // `rule` (beside `ruleArn`).
    for wrapper in ["topicRulePayload", "rule"] {
      guard let payload = root[wrapper] else { continue }
      guard payload.members != nil else {
        throw RuleFileError([
          RuleDiagnostic(file: file, position: payload.position, message: "'\(wrapper)' must be an object")
        ])
      }
      for member in root.members! where member.key != wrapper && !keysBesideWrapper.contains(member.key) {
        report(member.keyPosition, "unknown key '\(escapedName(member.key))' beside '\(wrapper)'")
      }
      awsWrapper = (wrapper, root.members!.first { $0.key == wrapper }!.keyPosition)
      root = payload
      if let inner = root["ruleName"], let outer = outerName, inner.string != outer.string {
        // One would be silently ignored.
        report(
          inner.position,
          "'ruleName' is given twice, beside '\(wrapper)' and in it, with different values: give one")
      }
      break
    }
    for member in root.members! where !ruleKeys.contains(member.key) && !readOnlyKeys.contains(member.key) {
      report(
        member.keyPosition,
        "unknown key '\(escapedName(member.key))'\(FunctionRegistry.didYouMean(member.key, among: Array(ruleKeys)))"
          + "; expected one of \(ruleKeys.sorted().joined(separator: ", "))")
    }

    // Name.
    var name = baseName(file)
    if let node = explicitName {
      if let text = node.string {
        name = text
      } else {
        report(node.position, "'ruleName' must be a string" + node.readingHint(expecting: .string))
      }
    }
    if !isValidRuleName(name) {
      report(
        explicitName?.position ?? start,
        "invalid rule name '\(RuleFile.escapedName(name))': it must match [a-zA-Z0-9_]{1,128}"
          + (explicitName == nil
            ? " (the name comes from the file name: rename the file or set 'ruleName')" : ""))
    }

    var description = ""
    if let node = root["description"] {
      if let text = node.string {
        description = text
      } else {
        report(node.position, "'description' must be a string" + node.readingHint(expecting: .string))
      }
    }
    var disabled = false
    if let node = root["ruleDisabled"] {
      if let value = node.bool {
        disabled = value
      } else {
        report(node.position, "'ruleDisabled' must be true or false" + node.readingHint(expecting: .boolean))
      }
    }
    var version = SQLVersion.default
    if let node = root["awsIotSqlVersion"] {
      if let text = node.string, let parsed = SQLVersion(string: text) {
        version = parsed
      } else {
        let given =
          node.string.map { text in
            // Escaped (a YAML `>` ends the text in a line break, which broke the one-line error).
            let hint =
              text.hasSuffix("\n")
              ? yamlLineBreakHint : ""
            return "unknown 'awsIotSqlVersion' '\(escapedName(text))'\(hint)"
          }
          ?? "'awsIotSqlVersion' must be a string, not \(node.kindName)"
        report(
          node.position,
          "\(given); expected \"2015-10-08\", \"2016-03-23\" or \"beta\" (AWS's name for the newest)")
      }
    }

    // SQL.
    var program: Program?
    var sqlWarnings: [RuleDiagnostic] = []
    if let awsWrapper, root["awsIotSqlVersion"] == nil {
      // Copied from AWS's API without a version: AWS runs it as 2015-10-08, this daemon's default is
      // 2016-03-23, and some results differ (`10.0` stays a Decimal there).
      sqlWarnings.append(
        RuleDiagnostic(
          file: file, position: awsWrapper.position,
          message:
            "'\(awsWrapper.key)' without 'awsIotSqlVersion': this rule runs as 2016-03-23 here, while AWS's API runs it as 2015-10-08; say which"
        ))
    }
    if let sqlNode = root["sql"] {
      if let sql = sqlNode.string {
        if sql.utf8.count > maxSQLBytes {
          sqlWarnings.append(
            RuleDiagnostic(
              file: file, position: sqlNode.position,
              message:
                "the SQL is \(sql.utf8.count) bytes; AWS IoT refuses a statement over 256 KB (\(maxSQLBytes) bytes of UTF-8)"
            ))
        }
        do {
          let compiled = try Compiler.compile(sql, version: version)
          program = compiled
          // A place a warning names (`first at 3:10`) is the file's too, as for errors.
          sqlWarnings += compiled.warnings.map { warning in
            RuleDiagnostic(
              file: file, position: sqlNode.position(ofStringOffset: warning.range.start.offset),
              message: warning.message(placing: { sqlNode.position(ofStringOffset: $0.offset).description }))
          }
          if let text = compiled.topicFilter {
            do {
              _ = try TopicFilter(text)
            } catch {
              report(sqlNode.position, "invalid topic filter '\(text)': \(error.message)")
              program = nil
            }
          }
          // Without FROM the rule is reached only through Basic Ingest (`$aws/rules/NAME/...`), as
          // AWS allows: its filter stays empty and the trie never holds it.
        } catch {
          for diagnostic in error.diagnostics {
            let position = sqlNode.position(ofStringOffset: diagnostic.range.start.offset)
            let message = diagnostic.message(placing: {
              sqlNode.position(ofStringOffset: $0.offset).description
            })
            // The warnings too: shown beside the errors, so one run of `check` says everything.
            if diagnostic.severity == .error {
              report(position, message)
            } else {
              sqlWarnings.append(RuleDiagnostic(file: file, position: position, message: message))
            }
          }
        }
      } else {
        report(sqlNode.position, "'sql' must be a string" + sqlNode.readingHint(expecting: .string))
      }
    } else {
      // At the rule's object: inside a wrapper, that is not the file's start.
      report(root.position, "missing key 'sql'")
    }

    // Actions.
    let context = ActionBuildContext(
      ruleName: name, version: version, variableNames: program?.variableNames ?? [],
      topicFilter: program?.topicFilter ?? "", sql: program?.source ?? "", ruleFile: file)
    // Warnings about the actions' configurations, kept also when another part of the file is
    // wrong: one `check` shows everything to fix.
    func warn(_ position: FilePosition, _ message: String) {
      sqlWarnings.append(RuleDiagnostic(file: file, position: position, message: message))
    }
    var actions: [ConfiguredAction] = []
    if let node = root["actions"] {
      if case .array(let elements) = node.kind {
        // Past the limit each is still judged, to say everything at once, but not without end (a
        // file of 30,000 actions took 21 s to be refused).
        let judged = 10 * maxActions
        if elements.count > maxActions {
          report(
            node.position,
            "a rule has at most \(maxActions) actions, this one has \(elements.count)"
              + (elements.count > judged ? " (the first \(judged) are checked)" : ""))
        }
        for (index, element) in elements.prefix(judged).enumerated() {
          if let action = buildAction(
            element, label: "\(index)", context: context, builder: builder, report: report, warn: warn)
          {
            actions.append(action)
          }
        }
      } else {
        report(node.position, "'actions' must be an array")
      }
    }
    var errorAction: ConfiguredAction?
    if let node = root["errorAction"] {
      var errorContext = context
      errorContext.isErrorAction = true
      errorAction = buildAction(
        node, label: "errorAction", context: errorContext, builder: builder, report: report, warn: warn)
    }

    if let program {
      for key in ["actions", "errorAction"] {
        if let node = root[key] { sqlWarnings += templateWarnings(in: node, program: program, file: file) }
      }
    }
    // Judged by what the file says, not by the actions built: said beside the rule's errors too.
    let declaresNoAction =
      switch root["actions"]?.kind {
      case nil: true
      case .array(let elements)?: elements.isEmpty
      default: false
      }
    if declaresNoAction, !disabled {
      // Valid (AWS takes a rule without actions), but every result is then dropped unseen.
      sqlWarnings.append(
        RuleDiagnostic(
          file: file, position: root["actions"]?.position ?? start,
          message:
            "rule '\(name)' has no actions: its results go nowhere, and its messages are acknowledged with nothing written"
        ))
    }
    if !diagnostics.isEmpty || program == nil {
      if diagnostics.isEmpty { report(start, "the rule did not compile") }
      throw RuleFileError(
        RuleDiagnostic.inFileOrderOnce(diagnostics), warnings: RuleDiagnostic.inFileOrderOnce(sqlWarnings))
    }
    return Rule(
      name: name, description: description, disabled: disabled, program: program!,
      actions: actions, errorAction: errorAction, file: file, fingerprint: fingerprint(bytes),
      warnings: RuleDiagnostic.inFileOrderOnce(sqlWarnings),
      namePosition: explicitName?.position ?? start,
      sqlPositions: root["sql"].map { node in
        Dictionary(
          program!.sourceMap.map { ($0.start.offset, node.position(ofStringOffset: $0.start.offset)) },
          uniquingKeysWith: { first, _ in first })
      } ?? [:])
  }

  /// Warnings about the action templates under `node`, each template compiled once:
  /// - the compiler's about their expressions (a call whose arity makes it always Undefined, ...), as
  ///   for the SQL, at their place in the file;
  /// - then a template that reads a name the SELECT writes from something else (`SELECT temp * 1.8 +
  ///   32 AS temp` with `${temp}`, `SELECT avg AS level` with `${level}`): a template sees the
  ///   incoming message, as in AWS, not the SELECT's output, which EMQX and eKuiper users expect. A
  ///   name the SELECT copies unchanged (`SELECT temp`) is no surprise.
  static func templateWarnings(in node: RuleNode, program: Program, file: String) -> [RuleDiagnostic] {
    let computed = namesTheSelectComputes(program.source)
    var compilerWarnings: [RuleDiagnostic] = []
    var readWarnings: [RuleDiagnostic] = []
    func visit(_ node: RuleNode) {
      switch node.kind {
      case .string(let text) where text.contains("${"):
        guard
          let template = try? Template.compile(
            text, version: program.version, variables: program.variableNames)
        else { return }
        let (compiler, reads) = warnings(of: template, program: program, computed: computed)
        func placed(_ warning: Diagnostic, prefix: String = "") -> RuleDiagnostic {
          RuleDiagnostic(
            file: file, position: node.position(ofStringOffset: warning.range.start.offset),
            message: prefix + warning.message)
        }
        compilerWarnings += compiler.map { placed($0, prefix: "in template: ") }
        readWarnings += reads.map { placed($0) }
      case .array(let elements): elements.forEach(visit)
      case .object(let members): members.forEach { visit($0.value) }
      default: break
      }
    }
    visit(node)
    return compilerWarnings + readWarnings
  }

  /// The warnings of one template of a rule whose statement compiled to `program`, at their places
  /// in the template's text: the compiler's about its expressions and a `topic(n)` level the FROM
  /// never has (`compiler`), then each name the SELECT computes (`computed`:
  /// ``namesTheSelectComputes(_:)``) that the template reads from the message instead (`reads`).
  /// `check` places them in the rule file; `eval --template` in the template it was given.
  public static func warnings(of template: Template, program: Program, computed: Set<String>) -> (
    compiler: [Diagnostic], reads: [Diagnostic]
  ) {
    var compiler: [Diagnostic] = []
    var reads: [Diagnostic] = []
    // `out/${topic(3)}` under FROM 'a/b': empty for every message (a republish topic with an
    // empty level failed every result).
    if let filter = program.topicFilter {
      for read in template.topicLevelsRead {
        guard let problem = Program.unreachableTopicLevel(read.level, filter: filter) else { continue }
        compiler.append(Diagnostic(.warning, stage: .compile, problem, at: read.range))
      }
    }
    var reported: Set<String> = []
    for case .expression(let expression) in template.parts {
      for warning in expression.warnings {
        compiler.append(Diagnostic(.warning, stage: .compile, warning.message, at: warning.range))
      }
      for path in expression.paths.paths {
        guard let root = path.first, computed.contains(root), reported.insert(root).inserted else { continue }
        // At the expression within the text (its first instruction's place), not the template's start.
        guard let range = expression.sourceMap.min(by: { $0.start.offset < $1.start.offset }) else {
          continue
        }
        reads.append(
          Diagnostic(
            .warning, stage: .compile,
            "the template reads the incoming message's '\(root)', not the SELECT's '\(root)' (templates see the message and "
              + "SET variables, as in AWS): for the computed value, set it in a variable (SET @\(root) = ..., then ${@\(root)}) "
              + "or compute it in the template", at: range))
      }
    }
    return (compiler, reads)
  }

  /// The output names the SELECT of `sql` computes (``SelectClause/computedNames``).
  public static func namesTheSelectComputes(_ sql: String) -> Set<String> {
    (try? Parser.parse(sql))?.select.computedNames ?? []
  }

  /// Reads one action object `{"kind": {configuration}}`.
  static func buildAction(
    _ node: RuleNode, label: String, context: ActionBuildContext, builder: any ActionBuilding,
    report: (FilePosition, String) -> Void, warn: (FilePosition, String) -> Void
  ) -> ConfiguredAction? {
    guard let members = node.members, members.count == 1, let member = members.first else {
      report(
        node.position,
        "an action is an object with exactly one key naming its kind (sqlite, file, republish, kafka, http)")
      return nil
    }
    guard let configMembers = member.value.members else {
      report(member.value.position, "the configuration of '\(member.key)' must be an object")
      return nil
    }
    var retry = RetryPolicy.default
    var nestedError: ConfiguredAction?
    var ok = true
    if let retryNode = member.value["retry"] {
      if let retryMembers = retryNode.members {
        for item in retryMembers {
          guard ["attempts", "initialBackoffMs", "maxBackoffMs"].contains(item.key) else {
            report(
              item.keyPosition,
              "unknown key 'retry.\(item.key)'"
                + "\(FunctionRegistry.didYouMean(item.key, among: ["attempts", "initialBackoffMs", "maxBackoffMs"]))"
                + "; expected attempts, initialBackoffMs, maxBackoffMs")
            ok = false
            continue
          }
          guard let value = item.value.int, value >= 0 else {
            report(
              item.value.position,
              item.key == "attempts"
                ? "'retry.attempts' must be a whole number between 1 and 100"
                  + item.value.readingHint(expecting: .number)
                : "'retry.\(item.key)' must be a whole number of milliseconds from 0 to 86400000 (a day)"
                  + item.value.readingHint(expecting: .number))
            ok = false
            continue
          }
          switch item.key {
          case "attempts":
            if value < 1 || value > 100 {
              report(item.value.position, "'retry.attempts' must be between 1 and 100")
              ok = false
            }
            retry.attempts = value
          case "initialBackoffMs", "maxBackoffMs":
            if value > RetryPolicy.longestBackoffMs {
              report(item.value.position, "'retry.\(item.key)' must be at most 86400000 (a day)")
              ok = false
            }
            if item.key == "initialBackoffMs" {
              retry.initialBackoffMs = value
            } else {
              retry.maxBackoffMs = value
            }
          default: break
          }
        }
        // Both written, a first backoff longer than the longest is a mistake, said; one written
        // alone takes the other default with it (100 ms first, 5 s longest).
        if ok, retry.initialBackoffMs > retry.maxBackoffMs {
          if let written = retryNode["initialBackoffMs"], retryNode["maxBackoffMs"] != nil {
            report(
              written.position,
              "'retry.initialBackoffMs' (\(retry.initialBackoffMs)) is more than 'retry.maxBackoffMs' (\(retry.maxBackoffMs))"
            )
            ok = false
          } else if retryNode["initialBackoffMs"] == nil {
            retry.initialBackoffMs = retry.maxBackoffMs
          } else {
            // A first backoff written alone above the default longest (5 s) raises the longest.
            retry.maxBackoffMs = retry.initialBackoffMs
          }
        }
      } else {
        report(retryNode.position, "'retry' must be an object")
        ok = false
      }
    }
    if let errorNode = member.value["errorAction"] {
      if context.isErrorAction {
        report(
          errorNode.position,
          "an error action cannot have its own errorAction (its failures go to the dead-letter file)")
        ok = false
      } else {
        var errorContext = context
        errorContext.isErrorAction = true
        nestedError = buildAction(
          errorNode, label: "\(label).errorAction", context: errorContext, builder: builder, report: report,
          warn: warn)
        if nestedError == nil { ok = false }
      }
    }
    var configuration = member.value
    configuration.kind = .object(configMembers.filter { $0.key != "retry" && $0.key != "errorAction" })
    let action: any Action
    do {
      action = try builder.makeAction(kind: member.key, configuration: configuration, context: context)
    } catch {
      for problem in error.all {
        // One line: a setting's value quoted in the message may hold a line break (a header name
        // `"X-A\r\nB"`), which would split the diagnostic; spelled out like the other controls.
        report(
          problem.position ?? member.keyPosition,
          "\(member.key) action: \(RuleFile.printable(problem.message, keepsLineBreaks: false))")
      }
      for warning in error.warnings {
        warn(member.value[warning.key]?.position ?? member.keyPosition, warning.message)
      }
      return nil
    }
    for warning in action.configurationWarnings(in: context) {
      warn(member.value[warning.key]?.position ?? member.keyPosition, warning.message)
    }
    guard ok else { return nil }
    return ConfiguredAction(
      action: action, retry: retry, errorAction: nestedError, ruleName: context.ruleName,
      label: "\(member.key)[\(label)]")
  }

  /// A cheap fingerprint (FNV-1a 64 and the length) of the file's bytes.
  public static func fingerprint(_ bytes: [UInt8]) -> FileFingerprint {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
    return FileFingerprint(hash: hash, length: bytes.count)
  }
}

/// What a reload compares to tell whether a rule file's bytes changed: their FNV-1a 64 hash and
/// their length (held inline: a rule keeps it as long as it runs).
public struct FileFingerprint: Hashable, Sendable {
  /// FNV-1a 64 of the bytes.
  public var hash: UInt64
  /// The number of bytes.
  public var length: Int

  /// Creates a fingerprint.
  public init(hash: UInt64, length: Int) {
    self.hash = hash
    self.length = length
  }
}
