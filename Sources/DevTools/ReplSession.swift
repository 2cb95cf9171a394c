import Foundation
import IoTSQL
import RulesEngine

/// The REPL without its terminal: it reads input line by line, keeps the current message (topic,
/// payload, client id, SQL version) and answers statements and dot-commands with text. `iotrules
/// repl` feeds it from libedit on a terminal and from standard input in script mode.
public final class ReplSession {
  /// One piece of output: text for standard output, or for standard error when `isError` (errors,
  /// warnings and notes, as `eval` writes them: a script's results on standard output are its
  /// results alone).
  public struct Output: Sendable, Equatable {
    /// The text, without a final newline.
    public var text: String
    /// True for errors.
    public var isError: Bool
  }

  /// The topic of the current message; nil takes an example topic from the statement's FROM.
  public var topic: String?
  /// The payload bytes of the current message.
  public var payload: [UInt8] = Array("{}".utf8)
  /// What `clientid()` returns.
  public var clientID: String?
  /// The other context pins `.context` set (principal, timestamp_ms, ...), in `eval --batch`'s
  /// `context` shape; empty for none. `clientid` is kept in `clientID`, which `.client` sets too.
  public private(set) var contextPins = OrderedObject()
  /// The SQL version statements compile for.
  public var version: SQLVersion = .default
  /// Colours.
  public var styler: Styler
  /// Where `.payload @file` and `.rule FILE` resolve relative paths.
  public var folder: String
  /// Set by `.quit`.
  public private(set) var finished = false
  /// True when some statement or command failed (script mode exits 65 then).
  public private(set) var hadError = false
  /// True once a file the script named could not be read (`.payload @FILE`, `.rule FILE`): the
  /// script's exit status is then 74, as every command's for an unreadable input.
  public private(set) var hadUnreadableInput = false
  /// The lines of a statement still being typed.
  public private(set) var pending: [String] = [] {
    didSet {
      // Lines are only appended or all dropped: each is scanned once (a pasted payload of 5,000
      // lines was scanned whole at each line, 47 s).
      if pending.count < scannedLines { (brackets, scannedLines) = (BracketState(), 0) }
      while scannedLines < pending.count {
        brackets.scan(pending[scannedLines], afterLine: scannedLines > 0)
        scannedLines += 1
      }
    }
  }
  /// Brackets, braces and string literals still open in `pending`, and how many of its lines that
  /// covers.
  private var brackets = BracketState()
  private var scannedLines = 0
  /// The last statement run, for `.explain` without SQL.
  public private(set) var lastStatement: String?
  /// Where the last statement started in a script, and the blanks before it: `.explain` without SQL
  /// places its errors there (they read `2:3:`, the statement's own line, which looked like the
  /// script's).
  private var lastStatementPlace = (line: 1, indent: "")
  /// How `.payload @FILE` reads a file: nil when Ctrl-C stopped the wait (an interactive session
  /// reads so, since a FIFO or a terminal may block the read).
  public var readFile: (String) -> Result<[UInt8], InputFile.Failure>? = { InputFile.read($0) }
  /// Set when the line taken last ended a statement, which ran (`SELECT a FROM 't'`: a `WHERE` on
  /// the next line is then a statement of its own, and said so); cleared by Ctrl-C.
  private var lineRan = false
  /// `lineRan` of the line before the one being taken.
  private var previousLineRan = false
  /// `previousLineRan` when the statement being typed started.
  private var statementFollowsARun = false
  /// In script mode, the name errors are placed in (`stdin`): a statement's error then reads
  /// `stdin:6:3: error: ...`, the script's own line, not the statement's. Nil on a terminal.
  public var scriptName: String?
  /// The number of the line being fed (1 for the first), for `scriptName`.
  public private(set) var lineNumber = 0
  /// The line the open (or last) statement started on.
  private var statementLine = 1
  /// The last source a diagnostic was shown in, with its lines.
  private var lastRenderedSource: (source: String, lines: Diagnostic.SourceLines)?
  /// Set when a line that is not UTF-8 was dropped: the lines after it that start no statement
  /// or command (and are not empty) belonged to its statement, and are skipped, each said (they
  /// ran as a statement of their own: `FROM 't'` failed with a note that the line before ran).
  private var skippingDropped = false
  /// On a terminal, set when a statement typed over lines, or a first line without FROM, was said
  /// in error before its end (at once, as more input cannot mend it): the lines after it that
  /// start no statement or command
  /// (and are not empty) are its own, taken without a word, up to an empty line or a `;` (a pasted
  /// statement with a typo failed again at each following `WHERE`, `AND` line, each with a note
  /// that the line before had run).
  private var continuingFailed = false

  /// Creates a session.
  public init(
    styler: Styler = Styler(enabled: false), folder: String = FileManager.default.currentDirectoryPath
  ) {
    self.styler = styler
    self.folder = folder
  }

  /// The prompt for the next line: `iot> `, or `...> ` inside a statement.
  public var prompt: String { pending.isEmpty && !continuingFailed ? "iot> " : "...> " }

  /// Takes one input line as bytes, refusing one that is not UTF-8 (said at its line and byte).
  public func feed(bytes line: [UInt8]) -> (outputs: [Output], entries: [String]) {
    if let offset = RuleFile.firstNonUTF8Offset(line) {
      return (refuseNotUTF8(byte: line[offset], at: offset), [])
    }
    return feed(String(decoding: line, as: UTF8.self))
  }

  /// Refuses a line that is not UTF-8, `byte` its first bad byte (at `offset`, when known): read
  /// with U+FFFD in its place, it would run as something else than what was written (a payload of
  /// other bytes, a string literal that differs), so it is refused, as `eval` refuses such a --sql.
  public func refuseNotUTF8(byte: UInt8, at offset: Int?) -> [Output] {
    lineNumber += 1
    let hex = String(byte, radix: 16, uppercase: true)
    // The statement it belonged to goes too: run without the line, it would answer for another
    // statement (a WHERE left out matches).
    let dropped = pending.isEmpty ? "" : "; the statement it belonged to is dropped"
    pending = []
    skippingDropped = true
    let place = scriptName.map { "\($0):\(lineNumber):\(offset.map { "\($0 + 1): " } ?? " ")" } ?? ""
    return fail(
      place + styler.error("error:") + " the line is not UTF-8 text (byte 0x\(hex)); it was not read"
        + dropped)
  }

  /// Takes one input line. Returns the output, and the complete entries (for history) the line
  /// ended: none, one, or two when it ended an open statement and made one of its own (the open
  /// one was left out of the history).
  public func feed(_ line: String) -> (outputs: [Output], entries: [String]) {
    lineNumber += 1
    previousLineRan = lineRan
    lineRan = false
    return take(line)
  }

  private func take(_ line: String) -> (outputs: [Output], entries: [String]) {
    let trimmed = line.trimmingCharacters(in: .whitespaces)
    if continuingFailed {
      continuingFailed = false
      if trimmed.isEmpty { return ([], []) }
      if !trimmed.hasPrefix("."), !Self.startsStatement(trimmed) {
        continuingFailed = !trimmed.hasSuffix(";")
        return ([], [])
      }
    }
    if skippingDropped {
      if trimmed.isEmpty || trimmed.hasPrefix(".") || Self.startsStatement(trimmed) {
        skippingDropped = false
      } else {
        let place = scriptName.map { "\($0):\(lineNumber): " } ?? ""
        return (
          [Output(text: place + "note: skipped, the rest of the statement dropped above", isError: true)], []
        )
      }
    }
    if pending.isEmpty {
      statementLine = lineNumber
      if trimmed.isEmpty || trimmed.hasPrefix("--") { return ([], []) }
      if trimmed.hasPrefix(".") && !Self.commandContinues(trimmed) && !explainContinues(trimmed) {
        return (command(trimmed), [trimmed])
      }
    }
    if let first = pending.first, first.hasPrefix("."),
      trimmed.hasPrefix(".") || (Self.takesJSON(first) && Self.startsStatement(trimmed))
        || (first.hasPrefix(".explain ") && explainEndsBefore(trimmed))
    {
      // An open `.payload`, `.context` or `.explain` ends where a new command (or, after a payload, a
      // statement; after `.explain`'s SQL, a statement as it would end a statement) starts: a JSON
      // text never has a line starting so. Run it as it is, then the line.
      let text = pending.joined(separator: "\n")
      pending = []
      let ended = command(text)
      let next = take(line)
      return (ended + next.outputs, [text] + next.entries)
    }
    // Inside a string literal of SQL (a statement's, or `.explain`'s), a line is the string's
    // text: an empty line, a `;` at its end, a `SELECT` at its start. Only a dot-command ends the
    // statement there (a quote left open by mistake must not swallow `.quit`).
    let inString = brackets.quote != nil && !(pending.first.map(Self.takesJSON) ?? false)
    if !pending.isEmpty && trimmed.isEmpty && !inString {
      // An empty line ends a statement that is still open: run what there is, errors and all.
      let text = pending.joined(separator: "\n")
      pending = []
      return (text.hasPrefix(".") ? command(text) : run(text), [text])
    }
    if let first = pending.first, !first.hasPrefix("."),
      Self.startsStatement(trimmed) && !inString
        // Inside open brackets a SELECT is a nested query's, unless what is open is in error
        // before its end (`SELECT (a FROM 't'` never closes: the next statement must still run).
        && (!brackets.isOpen || Self.failsBeforeItsEnd(pending.joined(separator: "\n"), version: version))
        && !Self.awaitsSelect(pending.joined(separator: "\n"), line: trimmed)
        // A dot-command ends the open statement (`.topic x` is no SQL, and `.b` alone may go on
        // with a path); so does any line starting with `.` in a script whose statement waits, in
        // error, for its end (not inside a string: there it is the string's text).
        || Self.isCommand(trimmed)
        || trimmed.hasPrefix(".") && scriptName != nil && !inString
          && Self.failsBeforeItsEnd(pending.joined(separator: "\n"), version: version)
    {
      // A new statement starts while one is open (`SELECT a AS x`, which could still have gone on
      // with FROM): the open one ends here, run as it is, then the new line.
      let text = pending.joined(separator: "\n")
      pending = []
      let ended = run(text)
      let next = take(line)
      return (ended + next.outputs, [text] + next.entries)
    }
    // Whether the statement starting here follows one that ran on the line before (said with its
    // error): taken now, as a statement in error in a script runs only at its end.
    if pending.isEmpty { statementFollowsARun = previousLineRan }
    pending.append(line)
    let text = pending.joined(separator: "\n")
    if text.hasPrefix(".") {
      if Self.isMultilineCommand(text) && brackets.isOpen { return ([], []) }
      if explainContinues(text) { return ([], []) }
      pending = []
      return (command(text), [text])
    }
    // (A string still open, or brackets without a `;` after them: not complete, without compiling
    // what there is.)
    if brackets.quote != nil
      || brackets.isOpen && !text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(";")
    {
      return ([], [])
    }
    guard Self.isComplete(text, version: version) else { return ([], []) }
    // In a script, a statement already in error waits for its end (an empty line, `;`, the next
    // statement or command, the end of the script): its next lines (a `WHERE` after a broken
    // `FROM`) then belong to it rather than fail again as statements of their own.
    let failsBeforeItsEnd = Self.failsBeforeItsEnd(text, version: version)
    if scriptName != nil, failsBeforeItsEnd { return ([], []) }
    // (Not after a one-line statement with FROM, whole as typed: a line after it is its own.)
    continuingFailed =
      failsBeforeItsEnd && (pending.count > 1 || !Set(Self.bareWords(text)).contains("FROM"))
    pending = []
    defer { lineRan = true }
    return (run(text), [text])
  }

  /// Drops the statement being typed (Ctrl-C): the next line starts a new one.
  public func cancel() {
    pending = []
    continuingFailed = false
    lineRan = false
    statementFollowsARun = false
  }

  /// Ends the input: a statement still open runs.
  public func finish() -> [Output] { end().outputs }

  /// Ends the input: a statement still open runs, and is the entry for history (a statement
  /// ended by Ctrl-D is remembered as one ended by an empty line is).
  public func end() -> (outputs: [Output], entries: [String]) {
    guard !pending.isEmpty else { return ([], []) }
    let text = pending.joined(separator: "\n")
    pending = []
    return (text.hasPrefix(".") ? command(text) : run(text), [text])
  }

  /// True when `text` is a `SET` with no `SELECT` yet and `line` starts that `SELECT`: the same
  /// statement goes on (`SET @x = 2` on one line, `SELECT @x FROM 'x'` on the next).
  static func awaitsSelect(_ text: String, line: String) -> Bool {
    guard leadingWord(line) == "SELECT", leadingWord(text.drop(while: { $0.isWhitespace })) == "SET"
    else { return false }
    let words = text.split { !isWordCharacter($0) }
    return !words.contains { $0.uppercased() == "SELECT" }
  }

  /// True when `line` starts with a dot-command's name as a word (`.topic x`, `.help`).
  static func isCommand(_ line: String) -> Bool {
    let name = line.prefix { !$0.isWhitespace }
    return name == ".exit" || commands.contains { $0.name == name }
  }

  /// True when `line` starts with `SELECT` or `SET` (any case) as a word.
  static func startsStatement(_ line: String) -> Bool {
    let word = leadingWord(line)
    return word == "SELECT" || word == "SET"
  }

  /// A letter, a digit or `_`: a character of a word, as the lexer reads one (`set_point` and
  /// `from1` are names, not `SET` and `FROM`).
  static func isWordCharacter(_ character: Character) -> Bool {
    character.isLetter || character.isNumber || character == "_"
  }

  /// The word `text` starts with, in capitals (empty when it starts with another character).
  static func leadingWord(_ text: some StringProtocol) -> String {
    text.prefix(while: isWordCharacter).uppercased()
  }

  /// True when `line` starts a statement that ends the open `.explain`'s, as it would end an open
  /// statement (outside a string and brackets, or after an error; not the SELECT a SET awaits): a
  /// `.explain` in error took the statements after it.
  func explainEndsBefore(_ line: String) -> Bool {
    guard Self.startsStatement(line), brackets.quote == nil else { return false }
    let sql = String(pending.joined(separator: "\n").dropFirst(".explain ".count))
    return (!brackets.isOpen || Self.failsBeforeItsEnd(sql, version: version))
      && !Self.awaitsSelect(sql, line: line)
  }

  /// True for `.explain SQL` whose statement is not complete as a statement would not be (its FROM
  /// and WHERE may come on lines of their own: the listing was of the first line alone).
  func explainContinues(_ text: String) -> Bool {
    guard text.hasPrefix(".explain ") else { return false }
    let sql = String(text.dropFirst(".explain ".count))
    return !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
      && !Self.isComplete(sql, version: version)
  }

  /// True for a `.payload`, `.context` or `.explain` whose JSON or SQL is still open.
  static func commandContinues(_ text: String) -> Bool {
    isMultilineCommand(text) && continues(text)
  }

  /// True for a `.payload`, `.context` or `.explain`, whose JSON or SQL may span lines.
  static func isMultilineCommand(_ text: String) -> Bool {
    takesJSON(text) || text.hasPrefix(".explain")
  }

  /// True for a `.payload` or `.context`, whose argument is JSON text.
  static func takesJSON(_ text: String) -> Bool {
    text.hasPrefix(".payload") || text.hasPrefix(".context")
  }

  /// True when brackets, braces or quotes are still open (a statement or payload goes on).
  static func continues(_ text: String) -> Bool {
    var state = BracketState()
    state.scan(text, afterLine: false)
    return state.isOpen
  }

  /// Brackets, braces and string literals open after the text scanned so far. Strings are read as
  /// the lexer reads them: between `'` or `"`, a backslash taking the character after it (`'it\'s'`),
  /// `''` inside single quotes a quote (it closes the string and opens it again). JSON's strings
  /// (`.payload`) read the same.
  struct BracketState {
    var depth = 0
    var quote: Unicode.Scalar?
    var escaped = false

    /// True when something is still open.
    var isOpen: Bool { quote != nil || depth > 0 }

    /// Scans `text`, after the line break that joins it to what came before when `afterLine`.
    mutating func scan(_ text: String, afterLine: Bool) {
      if afterLine { step("\n") }
      // By scalars, as the lexer reads bytes: a quote or backslash followed by a combining mark
      // is one Character, but still a quote or a backslash to the lexer.
      for scalar in text.unicodeScalars { step(scalar) }
    }

    mutating func step(_ scalar: Unicode.Scalar) {
      if let open = quote {
        if escaped {
          escaped = false
        } else if scalar == "\\" {
          escaped = true
        } else if scalar == open {
          quote = nil
        }
        return
      }
      switch scalar {
      case "'", "\"": quote = scalar
      case "(", "[", "{": depth += 1
      case ")", "]", "}": depth -= 1
      default: break
      }
    }
  }

  /// An entry (its lines) as one line of history: lines joined by a space, their blanks around
  /// it dropped, except where a line break is inside a string literal (SQL's, or a payload's JSON),
  /// which keeps the break and the blanks as they are part of the string (recalled, `'x` and `  y'`
  /// ran as `'x y'`).
  public static func historyLine(of entry: String) -> String {
    var state = BracketState()
    var result = ""
    // By scalars, as the brackets are scanned: "\r\n" is one Character.
    let lines = entry.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
    for (index, line) in lines.enumerated() {
      let text = String(String.UnicodeScalarView(line))
      if index == 0 {
        result = text
      } else if state.quote != nil {
        result += "\n" + text
      } else {
        // Blanks dropped in place: the whole entry trimmed at each line (a pasted payload of
        // thousands) copied it as many times.
        while let last = result.unicodeScalars.last, CharacterSet.whitespaces.contains(last) {
          result.unicodeScalars.removeLast()
        }
        let next = text.trimmingCharacters(in: .whitespaces)
        result += result.isEmpty || next.isEmpty ? next : " " + next
      }
      state.scan(text, afterLine: index > 0)
    }
    return result.trimmingCharacters(in: .whitespaces)
  }

  /// Whether text typed at the cursor (`line` up to it) is inside a string literal, counting the
  /// open statement's lines: a Tab there is the string's, not a completion.
  public func isInString(typing line: String) -> Bool {
    var state = brackets
    state.scan(line, afterLine: !pending.isEmpty)
    return state.quote != nil
  }

  /// True when `text` is a whole statement: it ends with `;`; or it is one line that compiles and
  /// has a FROM (outside parentheses: a nested query's do not count); or its first error is not at
  /// its end (more input cannot fix it). Otherwise it waits for more lines: a statement typed over
  /// lines ends with `;`, an empty line, the next statement or command, or the end of a script, as
  /// `SELECT a` may go on with `FROM ...`, `FROM 'x'` with `WHERE ...`, and `WHERE a = 1` with
  /// `AND b = 3` (it ran at its WHERE line, and the `AND` line failed on its own, after a wrong answer).
  public static func isComplete(_ text: String, version: SQLVersion) -> Bool {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    var state = BracketState()
    state.scan(trimmed, afterLine: false)
    // A `;` inside a string literal is the string's.
    if state.quote != nil { return false }
    if trimmed.hasSuffix(";") { return true }
    if state.isOpen { return false }
    if let offset = firstErrorOffset(trimmed, version: version) { return offset < trimmed.utf8.count }
    return Set(bareWords(trimmed)).contains("FROM") && !trimmed.contains("\n")
  }

  /// True when `text`, not ended by `;`, has an error before its last character.
  static func failsBeforeItsEnd(_ text: String, version: SQLVersion) -> Bool {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.hasSuffix(";") { return false }
    return firstErrorOffset(trimmed, version: version).map { $0 < trimmed.utf8.count } ?? false
  }

  /// Where the first error of `sql` is (a UTF-8 offset), or nil when it compiles.
  static func firstErrorOffset(_ sql: String, version: SQLVersion) -> Int? {
    do {
      _ = try Compiler.compile(sql, version: version)
      return nil
    } catch {
      return error.first.range.start.offset
    }
  }

  /// The upper-cased words of `text` outside string literals (read as ``BracketState`` reads them)
  /// and brackets.
  static func bareWords(_ text: String) -> [String] {
    var words: [String] = []
    var current = String.UnicodeScalarView()
    var state = BracketState()
    // A word right after a `.` is a member's name (`a.from`), no keyword.
    var previous: Unicode.Scalar = " "
    var isMember = false
    for scalar in text.unicodeScalars {
      let quoted = state.quote != nil
      state.step(scalar)
      // A string's text, or its closing quote.
      if quoted { continue }
      defer { previous = scalar }
      if state.quote == nil,
        scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "_"
      {
        if state.depth == 0 {
          if current.isEmpty { isMember = previous == "." }
          current.append(scalar)
        }
        continue
      }
      if !current.isEmpty, !isMember { words.append(String(current).uppercased()) }
      current = String.UnicodeScalarView()
    }
    if !current.isEmpty, !isMember { words.append(String(current).uppercased()) }
    return words
  }

  // MARK: - Statements

  /// An error; in a script, one that does not say where (a dot-command's `error: ...`) gets the
  /// script's name and the line its command started on in front (`stdin:4: error: unknown command
  /// '.bogus'`; a `.context {` left open blamed the line after, which then ran).
  func fail(_ text: String) -> [Output] {
    hadError = true
    if let scriptName, text.hasPrefix(styler.error("error:")) {
      return [Output(text: "\(scriptName):\(statementLine): " + text, isError: true)]
    }
    return [Output(text: text, isError: true)]
  }

  func run(_ statement: String) -> [Output] {
    // The blanks the statement starts with, which the positions below do not count.
    let indent = String(statement.prefix { $0 == " " || $0 == "\t" })
    var sql = statement.trimmingCharacters(in: .whitespacesAndNewlines)
    while sql.hasSuffix(";") { sql = String(sql.dropLast()).trimmingCharacters(in: .whitespaces) }
    if sql.isEmpty { return [] }
    lastStatement = sql
    lastStatementPlace = (statementLine, indent)
    let program: Program
    do {
      program = try Compiler.compile(sql, version: version)
    } catch {
      var text = error.diagnostics.map { rendered($0, in: sql, placed: true, lead: indent) }.joined(
        separator: "\n")
      // A clause on a line of its own after a one-line statement, which ran as it was.
      let first = Self.leadingWord(sql)
      if statementFollowsARun, ["WHERE", "FROM", "AND", "OR"].contains(first) {
        text +=
          "\nnote: the line before was a whole statement and ran (a line with SELECT and FROM ends one): write \(first) on that line, end statements with ';', or leave FROM for the next line"
      }
      return fail(text)
    }
    var outputs = program.warnings.map {
      Output(text: rendered($0, in: sql, placed: true, lead: indent), isError: true)
    }
    let topicName = topic ?? program.topicFilter.flatMap(Self.exampleTopic) ?? "repl"
    if !program.fromMatches(topicName), let filter = program.topicFilter {
      outputs.append(
        Output(
          text: styler.dim("no match: topic '\(topicName)' does not match FROM '\(filter)'"), isError: false))
      return outputs
    }
    // As `eval` says it, where the topic is read: a rule without FROM sees only its Basic Ingest
    // topic's messages (and with no `.topic`, the session's is made up: `repl`).
    if program.topicFilter == nil, program.readsTopic, let note = BasicIngest.noFromNote(topic: topicName) {
      outputs.append(Output(text: styler.dim(note), isError: true))
    }
    var machine = VirtualMachine()
    let overrunsBefore = RegexBudget.overruns
    let result = machine.evaluate(program, context: context(topic: topicName))
    outputs += budgetNote(since: overrunsBefore)
    if let error = machine.fieldsOfNonJSONError {
      outputs.append(
        Output(
          text: styler.dim(
            "note: the payload is not JSON (\(error)): the fields read are Undefined, as in AWS"),
          isError: true))
    }
    guard let evaluation = result else {
      if let diagnostic = machine.evaluationLimitDiagnostic {
        // Placed as a compile error is, with the line and a caret (a script's line and column):
        // it named the line that ended the statement, and a place inside the SQL.
        return outputs + fail(rendered(diagnostic, in: sql, placed: true, lead: indent))
      }
      outputs.append(
        Output(text: styler.dim("no match: the WHERE clause is not true for this message"), isError: false))
      return outputs
    }
    let value = evaluation.value
    if case .undefined = value {
      outputs.append(Output(text: styler.dim("Undefined (the outgoing payload is empty)"), isError: false))
    } else {
      outputs.append(Output(text: styler.pretty(value), isError: false))
    }
    return outputs
  }

  /// The diagnostic with its line of SQL and a caret; `placed`, for a statement of a script, puts
  /// the script's name and line in front (`stdin:6:3:`) instead of the statement's `3:3:`.
  /// `lines` says on which line of its input `source` starts, `lead` what comes before it on that
  /// line (`.explain SQL`: the command's name; a statement: its indent), which the echoed line
  /// shows and the column counts.
  func rendered(
    _ diagnostic: Diagnostic, in source: String, placed: Bool = false, lines: Int = 0, lead: String = ""
  ) -> String {
    var diagnostic = diagnostic
    var source = source
    var columns = lead.count
    if placed, scriptName != nil {
      // A second place the message names (`opened at 2:2`) in the script's terms as well.
      let leadColumns = columns
      diagnostic.message = diagnostic.message(placing: { location in
        let line = statementLine + lines + location.line - 1
        let column = location.line == 1 ? leadColumns + location.column : location.column
        return "\(line):\(column)"
      })
    }
    if placed, scriptName != nil, columns > 0, diagnostic.range.start.line == 1 {
      // The script's line is echoed whole (`lead` too): the caret then sits under the column the
      // position gives.
      source = lead + source
      diagnostic.range.start.column += columns
      if diagnostic.range.end.line == 1 { diagnostic.range.end.column += columns }
      columns = 0
    }
    // The lines of the statement, split once for all of its diagnostics (each split it again:
    // 2,000 warnings of one generated statement took seconds).
    // By bytes: `==` takes `é` and `e` + U+0301 for one text, whose lines differ.
    if !(lastRenderedSource?.source.utf8.elementsEqual(source.utf8) ?? false) {
      lastRenderedSource = (source, Diagnostic.SourceLines(source))
    }
    var text = diagnostic.rendered(in: lastRenderedSource!.lines)
    let start = diagnostic.range.start
    if placed, let scriptName, text.hasPrefix("\(start): ") {
      let line = statementLine + lines + start.line - 1
      let column = start.line == 1 ? columns + start.column : start.column
      text = "\(scriptName):\(line):\(column): " + text.dropFirst("\(start): ".count)
    }
    let label = "\(diagnostic.severity.rawValue):"
    let paint = diagnostic.severity == .error ? styler.error(label) : styler.warning(label)
    return text.replacingOccurrences(of: label, with: paint)
  }

  func context(topic: String) -> EvaluationContext {
    var context = EvaluationContext(
      topic: topic, payload: payload, clientID: clientID,
      timestampMs: Int((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    // Checked when pinned: they apply.
    try? ContextPins.apply(.object(contextPins), to: &context)
    return context
  }

  /// `.context JSON`: the object replaces the pins (its `clientid` sets the client id, as
  /// `.client` does; without one the client id stays). Refused whole when a pin is wrong.
  private func pinContext(_ text: String) -> [Output] {
    let value: Value
    do {
      value = try JSONReader.parse(Array(text.utf8), options: .for(version))
    } catch {
      return fail(styler.error("error:") + " .context takes a JSON object: \(error)")
    }
    var scratch = EvaluationContext(topic: "t", payload: [])
    do {
      try ContextPins.apply(value, to: &scratch)
    } catch {
      return fail(styler.error("error:") + " \(error.message)")
    }
    guard case .object(var pins) = value else { return [] }
    if pins["clientid"] != nil {
      clientID = scratch.clientID
      pins["clientid"] = nil
    }
    contextPins = pins
    return info(styler.dim(describeContext()))
  }

  /// The pins, and the client id, as one `context` object; what is not pinned is said.
  func describeContext() -> String {
    var shown = OrderedObject()
    if let clientID { shown["clientid"] = .string(clientID) }
    for (key, value) in contextPins.members { shown[key] = value }
    let time =
      contextPins["timestamp_ms"] == nil ? " (timestamp() is the time of each statement)" : ""
    return shown.isEmpty
      ? "context: none pinned\(time)" : "context: \(JSONWriter.string(.object(shown)))\(time)"
  }

  /// A topic that matches a filter: wildcards become `x`.
  static func exampleTopic(_ filter: String) -> String? { TopicFilter.exampleTopic(filter) }

  // MARK: - Dot-commands

  /// The dot-commands, for `.help` and completion.
  public static let commands: [(name: String, usage: String, help: String)] = [
    (".topic", ".topic [TOPIC | -]", "set (or show) the topic of the current message; - for the FROM's"),
    (".payload", ".payload [JSON | @FILE]", "set (or show) the payload: JSON text or a file's bytes"),
    (".client", ".client [ID | -]", "set (or show) what clientid() returns; - for none (n/a)"),
    (
      ".context", ".context [JSON | -]",
      "pin (or show) what context functions return, as eval --batch's \"context\"; - for none"
    ),
    (
      ".version", ".version [2015-10-08|2016-03-23|beta]",
      "set (or show) the SQL version (beta reads as 2016-03-23)"
    ),
    (".explain", ".explain [SQL]", "print the compiled program of SQL (or of the last statement)"),
    (".rule", ".rule FILE", "run a rule file on the current message and show what each action receives"),
    (".functions", ".functions [PREFIX]", "list functions with signatures and one line of help"),
    (".help", ".help", "this list"),
    (".quit", ".quit", "leave (Ctrl-D too)"),
  ]

  func info(_ text: String) -> [Output] { [Output(text: text, isError: false)] }

  func command(_ line: String) -> [Output] {
    let name = String(line.prefix { !$0.isWhitespace })
    let argument = String(line.dropFirst(name.count)).trimmingCharacters(in: .whitespacesAndNewlines)
    switch name {
    case ".topic":
      if argument.isEmpty {
        return info(
          "topic: "
            + (topic.map { RuleFile.printable($0, keepsLineBreaks: false) } ?? "(from the statement's FROM)"))
      }
      if let problem = TopicFilter.nameProblem(argument) {
        return fail(styler.error("error:") + " the topic \(problem)")
      }
      // `.topic -` (or `""`, `''`) goes back to a topic made from the statement's FROM, as
      // `.client -` takes the client id away (it set a topic `-`, which no FROM matched).
      if argument == "\"\"" || argument == "''" || argument == "-" {
        topic = nil
        return info(styler.dim("topic: (from the statement's FROM)"))
      }
      topic = argument
      return info(styler.dim("topic: \(RuleFile.printable(argument, keepsLineBreaks: false))"))
    case ".payload":
      if argument.isEmpty { return info(describePayload() + payloadPreview()) }
      if argument.hasPrefix("@") {
        let path = resolve(String(argument.dropFirst()))
        // Read as `eval --payload-file` reads it: one limit, one message.
        guard let read = readFile(path) else {
          // Ctrl-C while the file was read (a FIFO no one writes to): the payload stays as it was.
          return info(styler.dim("^C: \(path) was not read; the payload is as it was"))
        }
        switch read {
        case .success(let bytes): payload = bytes
        case .failure(let failure):
          // Too long is input refused (65); unreadable, an I/O error (74).
          if !failure.isTooLong { hadUnreadableInput = true }
          return fail(styler.error("error:") + " \(path): \(failure)")
        }
      } else {
        payload = Array(argument.utf8)
      }
      return info(styler.dim(describePayload()))
    case ".client":
      if argument.isEmpty {
        return info(
          "client id: "
            + (clientID.map { RuleFile.printable($0, keepsLineBreaks: false) } ?? "(none: clientid() is n/a)")
        )
      }
      // `.client ""` (or `''`, `-`) takes the client id away: clientid() is n/a again.
      if argument == "\"\"" || argument == "''" || argument == "-" {
        clientID = nil
        return info(styler.dim("client id: (none: clientid() is n/a)"))
      }
      clientID = argument
      return info(styler.dim("client id: \(RuleFile.printable(argument, keepsLineBreaks: false))"))
    case ".context":
      if argument.isEmpty { return info(describeContext()) }
      if argument == "-" {
        // None pinned: the client id too, as `.client -` takes it.
        contextPins = OrderedObject()
        clientID = nil
        return info(styler.dim(describeContext()))
      }
      return pinContext(argument)
    case ".version":
      if argument.isEmpty { return info("SQL version: \(version.rawValue)") }
      guard let parsed = SQLVersion(string: argument) else {
        return fail(
          styler.error("error:")
            + " unknown SQL version '\(argument)'; expected 2016-03-23, 2015-10-08 or beta")
      }
      version = parsed
      return info(styler.dim("SQL version: \(parsed.rawValue)"))
    case ".explain":
      // As a statement ends: its `;` (and blanks) dropped, the rest placed as written; `;` alone
      // ends an empty statement, nothing of its own to explain.
      var given = argument
      while let last = given.last, last == ";" || last.isWhitespace { given.removeLast() }
      let sql = given.isEmpty ? (lastStatement ?? "") : given
      guard !sql.isEmpty else {
        return fail(styler.error("error:") + " nothing to explain: give SQL or run a statement first")
      }
      // Placed as written: the last statement's where it was (`.explain`, `.explain ;`), the
      // command's own SQL after its name (in a script).
      func placed(_ diagnostic: Diagnostic) -> String {
        if given.isEmpty {
          let current = statementLine
          defer { statementLine = current }
          statementLine = lastStatementPlace.line
          return rendered(diagnostic, in: sql, placed: true, lead: lastStatementPlace.indent)
        }
        let lead = line.dropFirst(name.count).prefix { $0.isWhitespace }
        let leadLines = lead.filter(\.isNewline).count
        let leadText =
          leadLines == 0
          ? name + lead : String(lead.split(separator: "\n", omittingEmptySubsequences: false).last ?? "")
        return rendered(diagnostic, in: sql, placed: !argument.isEmpty, lines: leadLines, lead: leadText)
      }
      do {
        // Its warnings too, as `explain --sql` and running the statement say them.
        let program = try Compiler.compile(sql, version: version)
        return program.warnings.map { Output(text: placed($0), isError: true) }
          + info(Disassembler.listing(program))
      } catch {
        return fail(error.diagnostics.map(placed).joined(separator: "\n"))
      }
    case ".rule":
      guard !argument.isEmpty else { return fail(styler.error("error:") + " usage: .rule FILE") }
      return runRule(resolve(argument))
    case ".functions":
      let found = functions(prefix: argument)
      // As `iotrules functions zzz`, which exits 1: a misspelt prefix is an error.
      return found.isEmpty
        ? fail(styler.error("error:") + " no function starts with '\(argument)'") : info(found)
    case ".help":
      let width = Self.commands.map(\.usage.count).max() ?? 0
      var lines = ["Type SQL (it may go over several lines; an empty line or ';' ends it), or:"]
      for command in Self.commands {
        lines.append(
          "  " + command.usage.padding(toLength: width + 2, withPad: " ", startingAt: 0) + command.help)
      }
      lines.append("Tab completes keywords, functions and the payload's fields.")
      return info(lines.joined(separator: "\n"))
    case ".quit", ".exit":
      // `.quit now` is no `.quit`: said, as other commands say an argument too many.
      guard argument.isEmpty else {
        return fail(styler.error("error:") + " \(name) takes no argument, not '\(argument)'")
      }
      finished = true
      return []
    default:
      return fail(styler.error("error:") + " unknown command '\(name)'; .help lists them")
    }
  }

  func resolve(_ path: String) -> String {
    var expanded = path
    if expanded.hasPrefix("~/") {
      expanded = (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + expanded.dropFirst(1)
    }
    return expanded.hasPrefix("/") ? expanded : folder + "/" + expanded
  }

  func describePayload() -> String {
    guard let value = try? JSONReader.parse(payload, options: .for(version)) else {
      return "payload: \(payload.count) bytes, not JSON (Binary)"
    }
    return "payload: \(payload.count) bytes, \(value.typeName)"
  }

  /// The payload's text under its description (`.payload` alone), its first 2,000 bytes; of a
  /// payload that is not UTF-8, those bytes in base64 (`base64:...`, as `SELECT *` shows them).
  func payloadPreview() -> String {
    guard !payload.isEmpty else { return "" }
    // Cut before a character rather than inside one (the whole preview was dropped).
    var end = min(payload.count, 2000)
    if end < payload.count {
      var start = end
      while start > end - 4, start > 0, payload[start] & 0xC0 == 0x80 { start -= 1 }
      if payload[start] & 0xC0 != 0x80 { end = start }
    }
    let shown = payload.prefix(end)
    guard let text = String(validating: shown, as: UTF8.self) else {
      let bytes = payload.prefix(2000)
      return "\n" + styler.dim("(not UTF-8 text) ") + "base64:" + Data(bytes).base64EncodedString()
        + (payload.count > bytes.count ? styler.dim(" … (\(payload.count - bytes.count) more bytes)") : "")
    }
    // Control characters spelled out, as results are (a payload file's escape sequences retitled
    // and cleared the terminal).
    return "\n" + RuleFile.printable(text)
      + (payload.count > shown.count ? styler.dim(" … (\(payload.count - shown.count) more bytes)") : "")
  }

  /// The catalogue's entries whose names start with `prefix`, one block each; empty when none does.
  func functions(prefix: String) -> String {
    FunctionCatalogue.entries(prefix: prefix).map { entry in
      styler.bold(entry.signature) + styler.dim("  [\(entry.notes.joined(separator: ", "))]") + "\n    "
        + entry.help
    }.joined(separator: "\n")
  }

  func runRule(_ path: String) -> [Output] {
    let bytes: [UInt8]
    switch RegularFile.read(path) {
    case .success(let read): bytes = read
    case .failure(let unreadable):
      // As `.payload @FILE`: said at the script's line, and the script exits 74.
      hadUnreadableInput = true
      // Worded as every other command's missing input.
      let why =
        FileManager.default.fileExists(atPath: path)
        ? "cannot read it (\(unreadable))" : "no such file or folder"
      return fail(styler.error("error:") + " \(path): \(why)")
    }
    // A rule's test file is no rule: said as `explain` says it (it said an object was expected).
    if RuleFile.isTestFile(path) {
      return fail(
        styler.error("error:")
          + " \(path) is a rule test file: give .rule its rule file (\(RuleFile.ruleFileNaming(ofTest: path)))"
      )
    }
    let rule: RulePreview
    do {
      rule = try RulePreview.load(file: path, bytes: bytes)
    } catch {
      return fail(error.description.replacingOccurrences(of: "error:", with: styler.error("error:")))
    }
    let topicName = topic ?? rule.program.topicFilter.flatMap(Self.exampleTopic) ?? "repl"
    // As `check` says them (and as a statement's warnings are shown).
    let warnings = rule.warnings.map { warning in
      Output(
        text: "\(RuleFile.escapedName(warning.file)):\(warning.position.line):\(warning.position.column): "
          + "\(styler.warning("warning:")) \(warning.message)",
        isError: true)
    }
    // What it would do, and that `run` does not do it: the rule is disabled.
    let disabled =
      rule.disabled
      ? [
        Output(
          text: styler.dim("note: rule \(rule.name) is disabled (ruleDisabled): run skips it"), isError: true
        )
      ]
      : []
    return warnings + disabled + runPreview(rule, topic: topicName)
  }

  private func runPreview(_ rule: RulePreview, topic topicName: String) -> [Output] {
    let overrunsBefore = RegexBudget.overruns
    let outcome = rule.run(context(topic: topicName))
    return budgetNote(since: overrunsBefore) + previewOutputs(rule, outcome)
  }

  /// As `eval` says it and `run` logs it: the regular-expression matches stopped by their budget
  /// since `before` (their Undefined looks like no match, or a member missing), or nothing.
  private func budgetNote(since before: Int) -> [Output] {
    let overruns = RegexBudget.overruns - before
    return overruns > 0
      ? [Output(text: styler.dim("note: " + RegexBudget.note(stopped: overruns)), isError: true)] : []
  }

  private func previewOutputs(_ rule: RulePreview, _ outcome: RulePreview.Outcome) -> [Output] {
    switch outcome {
    case .noMatch(let reason):
      return info(styler.dim("rule \(rule.name): no match: \(reason)"))
    case .stopped(let reason):
      return fail("rule \(rule.name): \(styler.error("error:")) \(reason)")
    case .matched(_, let output, let actions):
      var lines = [styler.bold("rule \(rule.name): output"), styler.pretty(output)]
      for (index, action) in actions.enumerated() {
        lines.append(styler.bold("action \(rule.actions[index].label) receives"))
        lines.append(styler.pretty(action))
      }
      if actions.isEmpty { lines.append(styler.dim("(the rule has no actions)")) }
      // An action the daemon would refuse fails the script, as it fails a rule test's case.
      if actions.contains(where: {
        if case .object(let fields) = $0 { fields["refused"] != nil } else { false }
      }) {
        hadError = true
      }
      return info(lines.joined(separator: "\n"))
    }
  }
}
