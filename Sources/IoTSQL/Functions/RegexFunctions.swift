import Foundation
import Synchronization
import _FoundationICU

/// Counts the regular-expression matches stopped for exceeding their work budget.
///
/// A match that runs past the budget (ICU's time limit, counted in steps of the match engine, or its
/// backtracking stack limit) gives Undefined and adds one here; the daemon reads the counter and logs
/// the increase, so nothing is dropped silently.
public enum RegexBudget {
  private static let counter = Atomic<Int>(0)

  /// How many matches have been stopped since the process started.
  public static var overruns: Int { counter.load(ordering: .relaxed) }

  /// What `eval` and the REPL say when `count` matches of an evaluation were stopped: their
  /// Undefined looks like no match, or a member missing.
  public static func note(stopped count: Int) -> String {
    "\(count) regular-expression match(es) stopped by the step budget (catastrophic backtracking?) gave Undefined"
  }

  /// The work limit of one match over `length` UTF-16 units, in ICU time-limit units (about 10,000
  /// engine steps each, some 0.3 ms here): 100 for short texts, so `(a+)+$` on 34 `a`s and a `!`
  /// stops within about 30 ms, growing with the square of the length up to 2,000, so that a pattern
  /// that retries from every position, as `[0-9]+$` over 1,500 digits and an `x` does, still ends as
  /// in Java (with a fixed 100 it was Undefined beyond about 1,400 characters).
  static func timeLimit(length: Int) -> Int32 {
    Int32(min(2_000, max(100, length / 100 * (length / 100))))
  }

  /// The backtracking stack of one match, in bytes.
  static let stackLimit: Int32 = 1 << 20

  static func recordOverrun() {
    counter.add(1, ordering: .relaxed)
    threadCount.pointee += 1
  }

  /// How many matches this thread has had stopped: read before and after an evaluation, how many
  /// were the evaluation's (the process's count is every thread's).
  public static var thisThread: Int { threadCount.pointee }

  /// This thread's count, made at its first use and freed with the thread.
  private static var threadCount: UnsafeMutablePointer<Int> {
    if let count = pthread_getspecific(threadKey) { return count.assumingMemoryBound(to: Int.self) }
    let count = malloc(MemoryLayout<Int>.size)!.bindMemory(to: Int.self, capacity: 1)
    count.initialize(to: 0)
    pthread_setspecific(threadKey, count)
    return count
  }

  private static let threadKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
  }()
}

/// `regexp_matches`, `regexp_replace` and `regexp_substr`, with Java (`java.util.regex`) syntax as
/// AWS uses it, run by ICU's engine whose syntax is Java's.
///
/// A constant pattern compiles once, when the rule compiles (`prepare`), and an invalid one is a
/// compile error on that argument; other patterns compile per call through a small cache, and an
/// invalid one gives Undefined.
enum RegexFunctions {
  /// The rows of the catalogue.
  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "regexp_matches", family: "regex", arity: 2...2,
      signature: "regexp_matches(string, regex) -> Boolean",
      help: "True when the Java regular expression matches somewhere in the string.",
      prepare: { arguments, _ throws(FunctionPrepareError) in try prepare(arguments, replacement: nil) },
      implementation: { call in
        guard let subject = text(of: call[0]), let regex = regex(for: call, argument: 1) else {
          return .undefined
        }
        return regex.firstMatch(in: Array(subject.utf16)).map { .bool($0 != nil) } ?? .undefined
      }),
    FunctionSpec(
      name: "regexp_replace", family: "regex", arity: 3...3,
      signature: "regexp_replace(string, regex, replacement) -> String",
      help: "Replaces every match; $1, ${name} refer to groups and \\$ is a literal dollar.",
      prepare: { arguments, _ throws(FunctionPrepareError) in try prepare(arguments, replacement: 2) },
      implementation: { call in
        guard let subject = text(of: call[0]), let regex = regex(for: call, argument: 1),
          let replacementText = text(of: call[2])
        else { return .undefined }
        let prepared = call.prepared as? PreparedRegex
        let replacement: Replacement
        if let constant = prepared?.replacement {
          replacement = constant
        } else {
          // An invalid replacement is Undefined whether the pattern matches or not, as the table
          // says and as a constant one is (Java would give the subject when nothing matches).
          guard
            case .success(let parsed) = Replacement.parse(
              replacementText, groups: regex.groupCount, names: regex.groupNames)
          else { return .undefined }
          replacement = parsed
        }
        return regex.replaceAll(in: Array(subject.utf16), with: replacement).map { .string($0) } ?? .undefined
      }),
    FunctionSpec(
      name: "regexp_substr", family: "regex", arity: 2...2,
      signature: "regexp_substr(string, regex) -> String",
      help: "The first match of the regular expression; the empty string when nothing matches.",
      prepare: { arguments, _ throws(FunctionPrepareError) in try prepare(arguments, replacement: nil) },
      implementation: { call in
        guard let subject = text(of: call[0]), let regex = regex(for: call, argument: 1) else {
          return .undefined
        }
        let units = Array(subject.utf16)
        guard let found = regex.firstMatch(in: units) else { return .undefined }
        guard let range = found else { return .string("") }
        return .string(String(utf16Units: units[range]))
      }),
  ]

  /// What `prepare` hands the implementation: the compiled constant pattern and, for
  /// `regexp_replace`, the parsed constant replacement.
  /// A class: each call finds it with a cast from `any Sendable`, which for a struct copies it out.
  final class PreparedRegex: Sendable {
    let regex: CompiledRegex?
    let replacement: Replacement?

    init(regex: CompiledRegex?, replacement: Replacement? = nil) {
      self.regex = regex
      self.replacement = replacement
    }
  }

  /// The String form of an argument; nil for Null, Undefined and values without one.
  static func text(of value: Value) -> String? {
    if case .string(let text) = value { return text }
    return Coercions.toText(value)
  }

  static func prepare(_ arguments: [Value?], replacement replacementIndex: Int?) throws(FunctionPrepareError)
    -> (any Sendable)?
  {
    guard arguments.count > 1, let constant = arguments[1], let pattern = text(of: constant) else {
      return nil
    }
    let regex: CompiledRegex
    switch CompiledRegex.compile(pattern) {
    case .success(let compiled): regex = compiled
    case .failure(let error): throw FunctionPrepareError(argument: 1, message: error.description)
    }
    var replacement: Replacement?
    if let replacementIndex, arguments.count > replacementIndex, let constant = arguments[replacementIndex],
      let replacementText = text(of: constant)
    {
      switch Replacement.parse(replacementText, groups: regex.groupCount, names: regex.groupNames) {
      case .success(let parsed): replacement = parsed
      case .failure(let error):
        throw FunctionPrepareError(
          argument: replacementIndex, message: "invalid replacement: \(error.message)")
      }
    }
    return PreparedRegex(regex: regex, replacement: replacement)
  }

  /// The compiled pattern of a call: prepared at compile time, or compiled now through the cache.
  static func regex(for call: borrowing FunctionCall, argument: Int) -> CompiledRegex? {
    if let prepared = call.prepared as? PreparedRegex, let regex = prepared.regex { return regex }
    guard let pattern = text(of: call[argument]) else { return nil }
    return cache.regex(for: pattern)
  }

  static let cache = RegexCache(capacity: 64)
}

/// Patterns that are not constants, compiled once per distinct text while they stay in use.
final class RegexCache: Sendable {
  private let entries = Mutex<[String: (regex: CompiledRegex?, lastUse: UInt64)]>([:])
  private let clock = Atomic<UInt64>(0)
  let capacity: Int

  init(capacity: Int) { self.capacity = capacity }

  /// The compiled `pattern`, or nil when it is invalid (cached too).
  func regex(for pattern: String) -> CompiledRegex? {
    let now = clock.add(1, ordering: .relaxed).newValue
    if let hit = entries.withLock({ table -> CompiledRegex?? in
      guard let entry = table[pattern] else { return nil }
      table[pattern]?.lastUse = now
      return .some(entry.regex)
    }) {
      return hit
    }
    let compiled = try? CompiledRegex.compile(pattern, locatingErrors: false).get()
    entries.withLock { table in
      if table.count >= capacity, let oldest = table.min(by: { $0.value.lastUse < $1.value.lastUse }) {
        table.removeValue(forKey: oldest.key)
      }
      table[pattern] = (compiled, now)
    }
    return compiled
  }
}

/// Why a pattern did not compile: ICU's error and the position in the pattern.
struct RegexCompileError: Error, CustomStringConvertible {
  /// ICU's error code.
  var code: UErrorCode
  /// The 0-based UTF-16 offset in the pattern where ICU noticed the error, when it knows.
  var offset: Int?

  var description: String {
    let reason: String
    switch code {
    case U_REGEX_MISMATCHED_PAREN: reason = "unbalanced parenthesis"
    case U_REGEX_MISSING_CLOSE_BRACKET: reason = "unclosed character class"
    case U_REGEX_RULE_SYNTAX: reason = "syntax error"
    case U_REGEX_BAD_ESCAPE_SEQUENCE: reason = "unknown escape sequence"
    case U_REGEX_BAD_INTERVAL: reason = "malformed {m,n} repetition"
    case U_REGEX_MAX_LT_MIN: reason = "repetition maximum is below its minimum"
    case U_REGEX_INVALID_RANGE: reason = "character range out of order"
    case U_REGEX_NUMBER_TOO_BIG: reason = "number too large"
    case U_REGEX_PROPERTY_SYNTAX: reason = "malformed Unicode property"
    case U_REGEX_INVALID_FLAG: reason = "unknown inline flag"
    case U_REGEX_LOOK_BEHIND_LIMIT: reason = "look-behind without a bounded length"
    case U_REGEX_INVALID_CAPTURE_GROUP_NAME: reason = "invalid group name"
    case U_REGEX_INVALID_BACK_REF: reason = "reference to a group that does not exist"
    case U_REGEX_PATTERN_TOO_BIG:
      reason = "longer than \(CompiledRegex.maximumPatternLength) characters (the limit of iotrules)"
    default: reason = String(cString: swift_u_errorName(code))
    }
    if let offset { return "invalid regular expression at offset \(offset): \(reason)" }
    return "invalid regular expression: \(reason)"
  }
}

/// A compiled ICU regular expression. The template is never matched itself: each match borrows a
/// clone from a small pool, so one compiled pattern serves any number of threads.
final class CompiledRegex: @unchecked Sendable {
  // @unchecked: `template` is only read (cloned) after init, and the clones move between threads
  // only through the mutex-protected pool; a clone is used by one thread at a time.
  private let template: OpaquePointer
  private let pool = Mutex<[UnsafeSendablePointer]>([])
  /// The number of capturing groups.
  let groupCount: Int
  /// The named groups and their numbers.
  let groupNames: [String: Int]

  private init(template: OpaquePointer, groupCount: Int, groupNames: [String: Int]) {
    self.template = template
    self.groupCount = groupCount
    self.groupNames = groupNames
  }

  deinit {
    for matcher in pool.withLock({ $0 }) { swift_uregex_close(matcher.pointer) }
    swift_uregex_close(template)
  }

  /// The longest pattern compiled, in UTF-16 units (as Java counts): past it, a pattern is refused
  /// (30 ms to compile at the worst here).
  static let maximumPatternLength = 10_000

  /// Compiles `pattern` with Java's rules (unknown letter escapes are errors, as in Java). With
  /// `locatingErrors` (a pattern whose error is said), a pattern ICU refuses after its translation
  /// is compiled once more as written, for the error's place in it; a message's pattern, whose
  /// error no one reads, is not (a second compile a message).
  static func compile(_ pattern: String, locatingErrors: Bool = true) -> Result<
    CompiledRegex, RegexCompileError
  > {
    var status = U_ZERO_ERROR
    var parseError = UParseError()
    // ICU refuses an empty pattern; Java (and so AWS) takes it as matching the empty string, and so
    // is one of flags alone (`(?i-u)`), which the translation may leave empty.
    // ICU's compile time grows with the square of a pattern's groups, and no evaluation limit
    // reaches into it: `(a*)*` 25,000 times (125 KB, one message) took 6 s, 100,000 times 100 s.
    guard pattern.utf16.count <= maximumPatternLength else {
      return .failure(RegexCompileError(code: U_REGEX_PATTERN_TOO_BIG, offset: nil))
    }
    // A range Java refuses (its end a class: `[a-\d]`) is refused here too, where ICU reads it.
    guard let translated = javaClasses(asciiCaseFolding(pattern)) else {
      return .failure(RegexCompileError(code: U_REGEX_INVALID_RANGE, offset: nil))
    }
    func open(_ text: String) -> OpaquePointer? {
      let units = Array((text.isEmpty ? "(?:)" : text).utf16)
      let flags = UInt32(UREGEX_ERROR_ON_UNKNOWN_ESCAPES.rawValue)
      return units.withUnsafeBufferPointer { buffer in
        swift_uregex_open(buffer.baseAddress, Int32(buffer.count), flags, &parseError, &status)
      }
    }
    let opened = open(translated)
    guard status.rawValue <= U_ZERO_ERROR.rawValue, let opened else {
      if let opened { swift_uregex_close(opened) }
      let code = status
      var offset = place(of: parseError, in: translated)
      // ICU's offset is in the translated pattern (`\s\w)x` said 37): the written one, where it
      // fails alike, says where in the text that was written, else no offset is said.
      if translated != pattern, locatingErrors {
        status = U_ZERO_ERROR
        parseError = UParseError()
        let written = open(pattern)
        if let written { swift_uregex_close(written) }
        offset = status == code ? place(of: parseError, in: pattern) : nil
      }
      return .failure(RegexCompileError(code: code, offset: offset))
    }
    let groups = Int(swift_uregex_groupCount(opened, &status))
    var names: [String: Int] = [:]
    for name in namedGroups(in: pattern) {
      var lookup = U_ZERO_ERROR
      let nameUnits = Array(name.utf16)
      let number = nameUnits.withUnsafeBufferPointer {
        swift_uregex_groupNumberFromName(opened, $0.baseAddress, Int32($0.count), &lookup)
      }
      if lookup.rawValue <= U_ZERO_ERROR.rawValue { names[name] = Int(number) }
    }
    return .success(CompiledRegex(template: opened, groupCount: groups, groupNames: names))
  }

  /// Where in `text` ICU's `error` is, in code points from its start, or nil when ICU does not say.
  /// ICU counts from the start of the error's line, when it gives one (a `(?x)` pattern's
  /// comments end at line breaks): its lines begin after CR, LF, NEL or U+2028, CR LF as one.
  static func place(of error: UParseError, in text: String) -> Int? {
    guard error.offset >= 0 else { return nil }
    guard error.line > 1 else { return Int(error.offset) }
    var line: Int32 = 1
    let scalars = Array(text.unicodeScalars)
    for (index, scalar) in scalars.enumerated() {
      let breaks =
        scalar == "\r" || scalar == "\u{85}" || scalar == "\u{2028}"
        || (scalar == "\n" && (index == 0 || scalars[index - 1] != "\r"))
      guard breaks else { continue }
      line += 1
      // The line's characters begin after its break, the LF of a CR LF too (ICU counts it nowhere).
      let lineFeed = scalar == "\r" && index + 1 < scalars.count && scalars[index + 1] == "\n"
      if line == error.line { return index + (lineFeed ? 2 : 1) + Int(error.offset) }
    }
    return nil
  }

  /// `pattern` with Java's ASCII meaning of `\d`, `\w`, `\s` and their negations spelled out
  /// (ICU's are Unicode: `\w` would match `é`, which Java's does not), and `[:` read as Java reads it
  /// (a set starting with a colon, not ICU's POSIX class `[:alpha:]`), and a `}` that closes no `{`
  /// escaped (a literal to Java, an error to ICU). Escaped backslashes and
  /// `\Q...\E` quotes are kept as they are; inside `[...]` a negation becomes a nested set, which
  /// ICU supports.
  ///
  /// Inside a set, a `-` that Java reads as a character (after a nested set, a class or a range,
  /// at the start, or before `[`) is escaped: ICU would read `[[a-c]-[b]]`, `[a-c--b]` and
  /// `[\p{L}-[a]]` as set differences, where Java's sets hold the `-`. Java's properties ICU lacks
  /// (`javaAlphabetic`, `javaIdeographic`, `IsWord`, `L1`) are spelled out as sets.
  ///
  /// Java's flags `U` (`UNICODE_CHARACTER_CLASS`) and `u` (`UNICODE_CASE`), which ICU does not
  /// know, are taken out of inline flag groups (`(?U)`, `(?iu:...)`, not inside `\Q...\E` or a
  /// set): ICU's classes and case folding are Unicode already, so after a group that sets `U` (until
  /// one that clears it) the classes are left as ICU's.
  static func javaClasses(_ pattern: String) -> String? {
    guard
      pattern.contains("\\") || pattern.contains("[:") || pattern.contains("}") || pattern.contains("(?")
        || pattern.contains("-") || pattern.contains("&") || pattern.contains("[]") || pattern.contains("[^]")
    else { return pattern }
    // After a flag group that sets `U`, classes are ICU's (Unicode) as Java's are.
    var unicodeClasses = false
    // Whether a flag group may set `s` (DOTALL): then a `.` is one character of the text, as Java
    // reads it, where ICU's takes a CR LF pair as one (`(?s)a.{2}b` on `a\r\nb`).
    let dotAll = setsDotAll(pattern)
    // The space is written `\x20`: a literal one would vanish in `(?x)` mode.
    let whitespace = "\\x20\\t\\n\\x0B\\f\\r"
    let classes: [Unicode.Scalar: (inside: String, outside: String)] = [
      "d": ("0-9", "[0-9]"), "D": ("[^0-9]", "[^0-9]"),
      "w": ("a-zA-Z_0-9", "[a-zA-Z_0-9]"), "W": ("[^a-zA-Z_0-9]", "[^a-zA-Z_0-9]"),
      "s": (whitespace, "[\(whitespace)]"), "S": ("[^\(whitespace)]", "[^\(whitespace)]"),
    ]
    // Scalar by scalar: a combining mark after `]` must not hide the bracket.
    let scalars = Array(pattern.unicodeScalars)
    var output = String.UnicodeScalarView()
    var depth = 0  // nesting of [...]
    var braceOpen = false  // after a `{` outside [...]: a repetition `{n,m}` or `\p{...}`
    // Inside [...], as Java's parser reads a set item by item: the last item is a character that a
    // `-` may make the start of a range; the next character ends a range.
    var startsRange = false
    var endsRange = false
    // A character of a set: after it, a `-` may make a range, unless it ended one.
    func character() {
      startsRange = !endsRange
      endsRange = false
    }
    // A class, a nested set, `&&` or `^`: a `-` after it is a character.
    func notCharacter() {
      startsRange = false
      endsRange = false
    }
    var index = 0
    while index < scalars.count {
      let scalar = scalars[index]
      if scalar == "-", depth > 0 {
        let next = index + 1 < scalars.count ? scalars[index + 1] : nil
        if endsRange {
          // The end of a range (`!--`): escaped, or ICU reads `--` as a difference.
          output.append(contentsOf: "\\-".unicodeScalars)
          notCharacter()
        } else if startsRange, let next, next != "]", next != "[" {
          // A range; to a class it is an error to Java (`[a-\d]`, `[z-\p{L}]`).
          if next == "\\", index + 2 < scalars.count,
            "dDwWsShHvVpP".unicodeScalars.contains(scalars[index + 2])
          {
            return nil
          }
          output.append(scalar)
          startsRange = false
          endsRange = true
        } else {
          // A character to Java (it may start a range: `[--a]`).
          output.append(contentsOf: "\\-".unicodeScalars)
          character()
        }
        index += 1
        continue
      }
      if scalar == "&", depth > 0 {
        if index + 1 < scalars.count, scalars[index + 1] == "&" {
          output.append(contentsOf: "&&".unicodeScalars)
          notCharacter()
          index += 2
          continue
        }
        // One `&` is a character to Java, an intersection to ICU (`[[ab]&[bc]]`).
        output.append(contentsOf: "\\&".unicodeScalars)
        character()
        index += 1
        continue
      }
      if scalar == "\\", index + 1 < scalars.count {
        let next = scalars[index + 1]
        if next == "p" || next == "P", let (set, end) = javaOnlyProperty(scalars, from: index + 2) {
          // A property of Java's that ICU lacks, as a set (negated for `\P`).
          output.append(contentsOf: (next == "P" ? "[^" + set + "]" : "[" + set + "]").unicodeScalars)
          notCharacter()
          index = end
          continue
        }
        if depth > 0 {
          if classes[next] != nil || "pPhHvV".unicodeScalars.contains(next) {
            notCharacter()
          } else if next != "Q" {
            // A character written as an escape, copied whole (`\x{41}`, `\u0041`, `\0101`, `\cA`):
            // its digits are not characters of their own.
            let end = Self.escapeEnd(scalars, from: index)
            output.append(contentsOf: scalars[index..<end])
            character()
            index = end
            continue
          }
        }
        if next == "Q" {
          // Quoted up to `\E` (or the end), as Java reads it: nothing inside is an escape.
          var end = index + 2
          while end < scalars.count,
            !(scalars[end] == "\\" && end + 1 < scalars.count && scalars[end + 1] == "E")
          {
            end += 1
          }
          let stop = min(end + 2, scalars.count)
          output.append(contentsOf: scalars[index..<stop])
          if depth > 0 { character() }
          index = stop
          continue
        }
        if next == "R", depth == 0 {
          // Java's line break (JDK 9 on) is a plain alternation, which gives back the `\n` of a
          // `\r\n` when what follows needs it; ICU's `\R` does not (`\R\W` on CR LF and a letter).
          // Quantified, Java's takes a whole CR LF each time (`\R{2,}` is no single CR LF): atomic.
          let quantified = index + 2 < scalars.count && "?*+{".unicodeScalars.contains(scalars[index + 2])
          output.append(contentsOf: (quantified ? "(?>" : "(?:").unicodeScalars)
          output.append(contentsOf: "\\r\\n|[\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}])".unicodeScalars)
          index += 2
          continue
        }
        if next == "p" || next == "P", index + 2 < scalars.count, ("A"..."Z").contains(scalars[index + 2]) {
          // Java's one-letter category (`\pL`, `\PN`): ICU wants it in braces.
          output.append(contentsOf: ["\\", next, "{", scalars[index + 2], "}"])
          index += 3
          continue
        }
        if unicodeClasses, classes[next] != nil {
          output.append(scalar)
          output.append(next)
        } else if let replacement = classes[next] {
          output.append(contentsOf: (depth > 0 ? replacement.inside : replacement.outside).unicodeScalars)
        } else if next == "p" || next == "P", !unicodeClasses,
          let (set, end) = posixClass(scalars, from: index + 2)
        {
          // Java's POSIX classes are ASCII (`\p{Punct}` holds `$+<=>^`|~`, which ICU's Unicode
          // punctuation does not): spelled out as a set, negated for `\P`, nested inside `[...]`.
          output.append(contentsOf: (next == "P" ? "[^" + set + "]" : "[" + set + "]").unicodeScalars)
          index = end
          continue
        } else if next == "p" || next == "P", index + 2 < scalars.count, scalars[index + 2] == "{" {
          // Any other property, copied whole: its name is no characters of a set (a `-` after
          // its `}` is a character to Java, not a range).
          var end = index + 3
          while end < scalars.count, scalars[end] != "}" { end += 1 }
          end = min(end + 1, scalars.count)
          output.append(contentsOf: scalars[index..<end])
          index = end
          continue
        } else {
          output.append(scalar)
          output.append(next)
        }
        index += 2
        continue
      }
      if scalar == "(", depth == 0, index + 1 < scalars.count, scalars[index + 1] == "?" {
        // An inline flag group (`(?iU)`, `(?-u:`): Java's `u` and `U`, unknown to ICU, are taken out.
        var end = index + 2
        while end < scalars.count, "idmsuxU-".unicodeScalars.contains(scalars[end]) { end += 1 }
        let flags = scalars[(index + 2)..<end]
        if end < scalars.count, scalars[end] == ")" || scalars[end] == ":",
          flags.contains("u") || flags.contains("U")
        {
          let on = flags.prefix { $0 != "-" }
          if on.contains("U") { unicodeClasses = true }
          if flags.dropFirst(on.count).contains("U") { unicodeClasses = false }
          let kept = flags.filter { $0 != "u" && $0 != "U" }
          let setsNothing = kept.allSatisfy { $0 == "-" }
          if scalars[end] == ")" && setsNothing {
            index = end + 1
            continue
          }
          output.append(contentsOf: "(?".unicodeScalars)
          if !setsNothing { output.append(contentsOf: kept) }
          index = end
          continue
        }
      }
      if scalar == "[" {
        depth += 1
        notCharacter()
        // `[:alpha:]` is a POSIX class to ICU but, to Java, the set of `:`, `a`, `l`, `p`, `h`:
        // the colon is escaped so that ICU reads it as Java does.
        if index + 1 < scalars.count, scalars[index + 1] == ":" {
          output.append(contentsOf: "[\\:".unicodeScalars)
          character()
          index += 2
          continue
        }
        var start = index + 1
        if start < scalars.count, scalars[start] == "^" { start += 1 }
        if start < scalars.count, scalars[start] == "]" {
          // A `]` first in a set is a character to Java (`[]a]`, `[^]a]`).
          output.append(contentsOf: (start == index + 2 ? "[^\\]" : "[\\]").unicodeScalars)
          character()
          index = start + 1
          continue
        }
        if start == index + 2 {
          output.append(contentsOf: "[^".unicodeScalars)
          index += 2
          continue
        }
      } else if scalar == "]", depth > 0 {
        depth -= 1
        notCharacter()
      } else if depth > 0 {
        character()
      } else if scalar == ".", dotAll {
        // Whatever `.` matches where it stands (not a line end, outside `s`), one code point of it.
        output.append(contentsOf: "(?:(?=.)[\\x{0}-\\x{10FFFF}])".unicodeScalars)
        index += 1
        continue
      } else if scalar == "{", depth == 0 {
        braceOpen = true
      } else if scalar == "}", depth == 0 {
        // A `}` that closes nothing is a literal to Java, an error to ICU.
        if !braceOpen {
          output.append(contentsOf: "\\}".unicodeScalars)
          index += 1
          continue
        }
        braceOpen = false
      }
      output.append(scalar)
      index += 1
    }
    return String(output)
  }

  /// Whether `pattern` has an inline flag group that sets `s` (`(?s)`, `(?is:`, `(?s-i)`); a text
  /// that only looks like one (escaped, quoted, in a set) counts too, which costs speed alone.
  static func setsDotAll(_ pattern: String) -> Bool {
    let scalars = Array(pattern.unicodeScalars)
    var index = 0
    while index + 1 < scalars.count {
      if scalars[index] == "(", scalars[index + 1] == "?" {
        var end = index + 2
        while end < scalars.count, "idmsuxU".unicodeScalars.contains(scalars[end]) {
          if scalars[end] == "s" { return true }
          end += 1
        }
      }
      index += 1
    }
    return false
  }

  /// Java's POSIX character classes, all ASCII (without its `UNICODE_CHARACTER_CLASS` flag), as the
  /// inside of an ICU set written in hex escapes (ICU reads `{...}` in a set as a string).
  static let posixClasses: [String: String] = [
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": "\\x21-\\x2F\\x3A-\\x40\\x5B-\\x60\\x7B-\\x7E",
    "Graph": "\\x21-\\x7E", "Print": "\\x20-\\x7E", "Blank": "\\x20\\t",
    "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": "\\x20\\t\\n\\x0B\\f\\r",
  ]

  /// Java's properties that ICU lacks or reads otherwise, as the inside of an ICU set:
  /// `javaAlphabetic` and `javaIdeographic` (`Character.isAlphabetic`, `isIdeographic`), `L1`
  /// (Latin-1), `LD` (letter or digit), `javaLowerCase` and `javaUpperCase`.
  static let javaOnlyProperties: [String: String] = {
    var table = [
      "javaAlphabetic": "\\p{Alphabetic}", "javaIdeographic": "\\p{Ideographic}", "L1": "\\x00-\\xFF",
      // Java's letter-or-digit category.
      "LD": "\\p{L}\\p{Nd}",
      // `Character.isLowerCase` and `isUpperCase` count Other_Lowercase and Other_Uppercase (`ª`,
      // `Ⅰ`); ICU's java properties do not.
      "javaLowerCase": "\\p{Lowercase}", "javaUpperCase": "\\p{Uppercase}",
      // What those, and `IsLowercase`, `IsUppercase`, `IsTitlecase`, hold under `(?i)` (the case
      // folding names them so): anything cased.
      "javaCasedUnderI": "\\p{Lowercase}\\p{Uppercase}\\p{Lt}",
    ]
    for name in ["javaAlphabetic", "javaIdeographic", "L1", "LD"] { table["Is" + name] = table[name] }
    return table
  }()

  /// Java's binary properties (after `Is`, by their upper-case names) whose meaning ICU's differ
  /// from: Java's word characters (letters and other alphabetics, marks, decimal digits, connector
  /// punctuation, the joiners), and its hex digits, which hold every decimal digit.
  static let javaBinaryProperties: [String: String] = [
    "WORD": "\\p{Alphabetic}\\p{Mn}\\p{Me}\\p{Mc}\\p{Nd}\\p{Pc}\\p{Join_Control}",
    "HEX_DIGIT": "\\p{Nd}\\p{Hex_Digit}", "HEXDIGIT": "\\p{Nd}\\p{Hex_Digit}",
  ]

  /// The set of the Java property (``javaOnlyProperties``, ``javaBinaryProperties``) named in
  /// `{Name}` at `start` (just after `\p` or `\P`), and the index after its `}`; nil for any other.
  private static func javaOnlyProperty(_ scalars: [Unicode.Scalar], from start: Int) -> (String, Int)? {
    guard let (text, end) = propertyName(scalars, from: start) else { return nil }
    // Java's binary properties after `Is`, in any case (`\p{IsWord}`, `\p{ISHEX_DIGIT}`).
    let binary = text.hasPrefix("Is") ? javaBinaryProperties[text.dropFirst(2).uppercased()] : nil
    guard let set = javaOnlyProperties[text] ?? binary else { return nil }
    return (set, end)
  }

  /// The name in `{Name}` at `start` (just after `\p` or `\P`; at most 32 scalars, longer than any
  /// the tables hold) and the index after its `}`; nil without one.
  private static func propertyName(_ scalars: [Unicode.Scalar], from start: Int) -> (String, Int)? {
    guard start < scalars.count, scalars[start] == "{" else { return nil }
    var end = start + 1
    var name = String.UnicodeScalarView()
    while end < scalars.count, scalars[end] != "}", name.count <= 32 {
      name.append(scalars[end])
      end += 1
    }
    guard end < scalars.count, scalars[end] == "}" else { return nil }
    return (String(name), end + 1)
  }

  /// Where the escape of one character at `start` (its backslash) ends: `\xhh`, `\x{h...}`,
  /// `\uhhhh`, `\0` and up to three octal digits, `\cX`, or a backslash and one character.
  private static func escapeEnd(_ scalars: [Unicode.Scalar], from start: Int) -> Int {
    var end = min(start + 2, scalars.count)
    guard start + 1 < scalars.count else { return end }
    func take(_ count: Int, while accepted: (Unicode.Scalar) -> Bool) {
      var taken = 0
      while taken < count, end < scalars.count, accepted(scalars[end]) {
        end += 1
        taken += 1
      }
    }
    let hex: (Unicode.Scalar) -> Bool = { $0.properties.isASCIIHexDigit }
    switch scalars[start + 1] {
    case "x":
      if end < scalars.count, scalars[end] == "{" {
        take(Int.max) { $0 != "}" }
        end = min(end + 1, scalars.count)
      } else {
        take(2, while: hex)
      }
    case "u": take(4, while: hex)
    case "0": take(3) { ("0"..."7").contains($0) }
    case "c": take(1) { _ in true }
    default: break
    }
    return end
  }

  /// The set of the POSIX class named in `{Name}` at `start` (just after `\p` or `\P`), and the
  /// index after its `}`; nil for any other property.
  private static func posixClass(_ scalars: [Unicode.Scalar], from start: Int) -> (String, Int)? {
    guard let (name, end) = propertyName(scalars, from: start), let set = posixClasses[name] else {
      return nil
    }
    return (set, end)
  }

  /// The names of `(?<name>...)` groups, read from the pattern text.
  private static func namedGroups(in pattern: String) -> [String] {
    var names: [String] = []
    let characters = Array(pattern)
    var index = 0
    while index < characters.count {
      if characters[index] == "\\" {
        index += 2
        continue
      }
      if characters[index] == "(", index + 3 < characters.count, characters[index + 1] == "?",
        characters[index + 2] == "<", characters[index + 3].isLetter
      {
        var end = index + 3
        var name = ""
        while end < characters.count, characters[end].isLetter || characters[end].isNumber {
          name.append(characters[end])
          end += 1
        }
        names.append(name)
        index = end
        continue
      }
      index += 1
    }
    return names
  }

  /// What a matcher's text is set to between uses (made once, not per call).
  private static let emptyText: [UInt16] = [0]

  /// Runs `body` with a matcher set to `text`, bounded by the budget.
  private func withMatcher<R>(_ text: [UInt16], _ body: (OpaquePointer) -> R) -> R? {
    var status = U_ZERO_ERROR
    let matcher: OpaquePointer
    if let pooled = pool.withLock({ $0.popLast() }) {
      matcher = pooled.pointer
    } else {
      guard let clone = swift_uregex_clone(template, &status), status.rawValue <= U_ZERO_ERROR.rawValue else {
        return nil
      }
      swift_uregex_setStackLimit(clone, RegexBudget.stackLimit, &status)
      matcher = clone
    }
    swift_uregex_setTimeLimit(matcher, RegexBudget.timeLimit(length: text.count), &status)
    let result = text.withUnsafeBufferPointer { buffer -> R? in
      var status = U_ZERO_ERROR
      // ICU wants a non-null pointer even for an empty text.
      return Self.emptyText.withUnsafeBufferPointer { fallback in
        swift_uregex_setText(
          matcher, buffer.baseAddress ?? fallback.baseAddress, Int32(buffer.count), &status)
        guard status.rawValue <= U_ZERO_ERROR.rawValue else { return nil }
        let value = body(matcher)
        swift_uregex_setText(matcher, fallback.baseAddress, 0, &status)
        return value
      }
    }
    let keep = pool.withLock { matchers -> Bool in
      guard matchers.count < 8 else { return false }
      matchers.append(UnsafeSendablePointer(pointer: matcher))
      return true
    }
    if !keep { swift_uregex_close(matcher) }
    return result
  }

  /// The outcome of one search step: found, not found, or stopped by the budget or an error.
  private enum Step {
    case found(Range<Int>)
    case notFound
    case failed
  }

  private static func findNext(_ matcher: OpaquePointer) -> Step {
    var status = U_ZERO_ERROR
    let found = swift_uregex_findNext(matcher, &status)
    if status == U_REGEX_TIME_OUT || status == U_REGEX_STACK_OVERFLOW {
      RegexBudget.recordOverrun()
      return .failed
    }
    guard status.rawValue <= U_ZERO_ERROR.rawValue else { return .failed }
    guard found != 0 else { return .notFound }
    let start = Int(swift_uregex_start(matcher, 0, &status))
    let end = Int(swift_uregex_end(matcher, 0, &status))
    return .found(start..<end)
  }

  /// The first match in `text`: `.some(range)`, `.some(nil)` when there is none, nil when the
  /// budget ran out.
  func firstMatch(in text: [UInt16]) -> Range<Int>?? {
    let step = withMatcher(text) { Self.findNext($0) }
    switch step {
    case .found(let range): return .some(range)
    case .notFound: return .some(nil)
    case .failed, nil: return nil
    }
  }

  /// `text` with every match replaced, as Java's `Matcher.replaceAll`; nil when the budget ran out or
  /// the result would pass ``StringFunctions/resultLimit``.
  func replaceAll(in text: [UInt16], with replacement: Replacement) -> String? {
    let result = withMatcher(text) { matcher -> [UInt16]? in
      var output: [UInt16] = []
      output.reserveCapacity(text.count)
      var copied = 0
      while true {
        switch Self.findNext(matcher) {
        case .failed: return nil
        case .notFound:
          output.append(contentsOf: text[copied...])
          return output
        case .found(let range):
          output.append(contentsOf: text[copied..<range.lowerBound])
          for piece in replacement.pieces {
            switch piece {
            case .literal(let units): output.append(contentsOf: units)
            case .group(let number):
              var status = U_ZERO_ERROR
              let start = Int(swift_uregex_start(matcher, Int32(number), &status))
              let end = Int(swift_uregex_end(matcher, Int32(number), &status))
              // A group that did not take part in the match contributes nothing.
              if status.rawValue <= U_ZERO_ERROR.rawValue, start >= 0, end >= start {
                output.append(contentsOf: text[start..<end])
              }
            }
          }
          copied = range.upperBound
          if output.count > StringFunctions.resultLimit { return nil }
        }
      }
    }
    guard let units = result ?? nil else { return nil }
    return String(utf16Units: units)
  }
}

/// A C pointer moved between threads under a lock.
struct UnsafeSendablePointer: @unchecked Sendable {
  let pointer: OpaquePointer
}

/// A parsed `regexp_replace` replacement, with Java's rules: `$n` takes as many digits as still name
/// a group, `${name}` names a group, `\x` is a literal `x`.
struct Replacement: Sendable {
  enum Piece: Sendable {
    case literal([UInt16])
    case group(Int)
  }

  struct ParseError: Error {
    var message: String
  }

  var pieces: [Piece]

  /// Reads `text` as Java's `Matcher.appendReplacement` does, scalar by scalar (not by grapheme
  /// cluster: `$1` followed by a combining mark is group 1, then the mark).
  static func parse(_ text: String, groups: Int, names: [String: Int]) -> Result<Replacement, ParseError> {
    var pieces: [Piece] = []
    var literal: [UInt16] = []
    let scalars = Array(text.unicodeScalars)
    var index = 0
    func flush() {
      if !literal.isEmpty { pieces.append(.literal(literal)) }
      literal = []
    }
    func digit(at index: Int) -> Int? {
      guard index < scalars.count, ("0"..."9").contains(scalars[index]) else { return nil }
      return Int(scalars[index].value - 0x30)
    }
    while index < scalars.count {
      let scalar = scalars[index]
      if scalar == "\\" {
        guard index + 1 < scalars.count else {
          return .failure(ParseError(message: "character to be escaped is missing at the end"))
        }
        literal.append(contentsOf: scalars[index + 1].utf16)
        index += 2
      } else if scalar == "$" {
        index += 1
        guard index < scalars.count else {
          return .failure(ParseError(message: "'$' at the end is not a group reference"))
        }
        if scalars[index] == "{" {
          var name = String.UnicodeScalarView()
          index += 1
          while index < scalars.count, scalars[index] != "}" {
            name.append(scalars[index])
            index += 1
          }
          let groupName = String(name)
          guard index < scalars.count, !groupName.isEmpty else {
            return .failure(ParseError(message: "unterminated group name '${\(groupName)'"))
          }
          guard let number = names[groupName] else {
            return .failure(ParseError(message: "no group named '\(groupName)'"))
          }
          index += 1
          flush()
          pieces.append(.group(number))
        } else if let first = digit(at: index) {
          guard first <= groups else { return .failure(ParseError(message: "no group \(first)")) }
          var number = first
          index += 1
          while let next = digit(at: index), number * 10 + next <= groups {
            number = number * 10 + next
            index += 1
          }
          flush()
          pieces.append(.group(number))
        } else {
          return .failure(ParseError(message: "'$' must be followed by a group number or {name}"))
        }
      } else {
        literal.append(contentsOf: scalar.utf16)
        index += 1
      }
    }
    flush()
    return .success(Replacement(pieces: pieces))
  }
}
