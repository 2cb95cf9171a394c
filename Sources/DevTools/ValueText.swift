import Foundation
import IoTSQL

/// Comparing and printing values for tests and the REPL.
public enum ValueText {
  /// Pretty JSON (two-space indent); Undefined and Binary described in words.
  public static func pretty(_ value: Value) -> String {
    switch value {
    case .undefined: return "Undefined"
    case .binary(let bytes):
      // Text when the bytes are text (as a rule test expects it, and `eval` prints it), base64
      // otherwise (as a test writes it: `base64:...`).
      if let text = String(validating: bytes, as: UTF8.self),
        !text.unicodeScalars.contains(where: {
          $0.value < 0x20 && $0 != "\n" && $0 != "\t" || $0.value == 0x7F
        })
      {
        return "Binary (not JSON), \(bytes.count) bytes: " + text
      }
      return "Binary, \(bytes.count) bytes: base64:" + Data(bytes).base64EncodedString()
    default: return JSONWriter.prettyString(value)
    }
  }

  /// The value with object keys sorted at every level, so diffs do not show key order.
  public static func canonical(_ value: Value) -> Value {
    switch value {
    case .array(let elements): return .array(elements.map(canonical))
    case .object(let object):
      var sorted = OrderedObject()
      for key in object.keys.sorted() { sorted[key] = canonical(object[key]!) }
      return .object(sorted)
    default: return value
    }
  }

  /// Equal as the JSON a rule sends: objects in any key order, but a whole number and a decimal
  /// apart (`2` is not `2.0`: the bytes differ, and a consumer that decodes an integer refuses
  /// `2.0`); decimals by value (the writer prints `2.50` as `2.5`).
  public static func equivalent(_ lhs: Value, _ rhs: Value) -> Bool {
    switch (lhs, rhs) {
    case (.int, .int), (.decimal, .decimal):
      return number(lhs) == number(rhs)
    case (.int, .decimal), (.decimal, .int):
      return false
    case (.string(let left), .string(let right)):
      // By code points, as the engine compares them: `é` is not `e` + U+0301.
      return OrderedObject.sameName(left, right)
    case (.array(let left), .array(let right)):
      return left.count == right.count && zip(left, right).allSatisfy { equivalent($0, $1) }
    case (.object(let left), .object(let right)):
      let leftKeys = left.members.filter { $0.1 != .undefined }.map(\.0)
      let rightKeys = right.members.filter { $0.1 != .undefined }.map(\.0)
      guard Set(leftKeys.map { Array($0.utf8) }) == Set(rightKeys.map { Array($0.utf8) }) else {
        return false
      }
      return leftKeys.allSatisfy { equivalent(left[$0]!, right[$0]!) }
    default:
      return lhs == rhs
    }
  }

  static func number(_ value: Value) -> SQLDecimal? {
    switch value {
    case .int(let whole): SQLDecimal(whole)
    case .decimal(let decimal): decimal
    default: nil
    }
  }
}

/// A line diff of two texts (longest common subsequence), for test failures.
public enum LineDiff {
  /// Unchanged lines shown before and after each change.
  public static let context = 3

  /// Lines prefixed `  ` (both), `- ` (expected only) and `+ ` (actual only); unchanged lines more
  /// than ``context`` lines from a change are left out, each run of them said in one line,
  /// `  … 494 unchanged lines` (a 500-key output with one wrong value showed every line). Lines are
  /// the same when their scalars are; a `-` and a `+` line that would look the same on a terminal
  /// (`é` against `e` + U+0301, a no-break or zero-width space) show their invisible and combining
  /// scalars spelled out (`e\u0301`), so the diff shows where they differ.
  public static func unified(expected: String, actual: String) -> String {
    let left = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let right = actual.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    // A member's line is the same with or without the comma after it: a member added or gone after
    // it adds or drops the comma, which showed an unchanged line as removed and added.
    let same = { (a: String, b: String) in
      (a.hasSuffix(",") ? a.utf8.dropLast() : a.utf8[...]).elementsEqual(
        b.hasSuffix(",") ? b.utf8.dropLast() : b.utf8[...])
    }
    // The common head and tail as they are; the table only between them.
    var head = 0
    while head < min(left.count, right.count), same(left[head], right[head]) { head += 1 }
    var tail = 0
    while tail < min(left.count, right.count) - head,
      same(left[left.count - 1 - tail], right[right.count - 1 - tail])
    {
      tail += 1
    }
    var lines: [(mark: String, text: String)] = left[..<head].map { ("  ", $0) }
    lines += middle(Array(left[head..<(left.count - tail)]), Array(right[head..<(right.count - tail)]), same)
    lines += left[(left.count - tail)...].map { ("  ", $0) }
    let removed = Set(lines.filter { $0.mark == "- " }.map { visible($0.text) })
    let added = Set(lines.filter { $0.mark == "+ " }.map { visible($0.text) })
    let lookAlike = removed.intersection(added)
    return collapsed(lines).map { line in
      line.mark == "  " || !lookAlike.contains(visible(line.text))
        ? line.mark + line.text : line.mark + spelled(line.text)
    }.joined(separator: "\n")
  }

  /// `lines` with each run of unchanged lines further than ``context`` from every change replaced
  /// by one line that counts them (a run of one is kept: its count would take its place).
  static func collapsed(_ lines: [(mark: String, text: String)]) -> [(mark: String, text: String)] {
    var shown = [Bool](repeating: false, count: lines.count)
    for (index, line) in lines.enumerated() where line.mark != "  " {
      for near in max(0, index - context)...min(lines.count - 1, index + context) { shown[near] = true }
    }
    var out: [(mark: String, text: String)] = []
    var index = 0
    while index < lines.count {
      var end = index
      while end < lines.count, !shown[end] { end += 1 }
      if end - index > 1 {
        out.append(("  ", "… \(end - index) unchanged lines"))
        index = end
      } else {
        out.append(lines[index])
        index += 1
      }
    }
    return out
  }

  /// The lines of a minimal diff of `left` and `right` (longest common subsequence); past a
  /// million table cells (a 20,000-line document took 3 GB) every left line as removed, then
  /// every right line as added.
  static func middle(_ left: [String], _ right: [String], _ same: (String, String) -> Bool)
    -> [(mark: String, text: String)]
  {
    guard left.count * right.count <= 1_000_000 else {
      return left.map { ("- ", $0) } + right.map { ("+ ", $0) }
    }
    var table = [[Int]](repeating: [Int](repeating: 0, count: right.count + 1), count: left.count + 1)
    for i in stride(from: left.count - 1, through: 0, by: -1) {
      for j in stride(from: right.count - 1, through: 0, by: -1) {
        table[i][j] =
          same(left[i], right[j]) ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
      }
    }
    var lines: [(mark: String, text: String)] = []
    var i = 0
    var j = 0
    while i < left.count || j < right.count {
      if i < left.count, j < right.count, same(left[i], right[j]) {
        lines.append(("  ", left[i]))
        i += 1
        j += 1
      } else if i < left.count, j == right.count || table[i + 1][j] >= table[i][j + 1] {
        lines.append(("- ", left[i]))
        i += 1
      } else {
        lines.append(("+ ", right[j]))
        j += 1
      }
    }
    return lines
  }

  /// What a terminal shows of `text`: invisible scalars dropped, other spaces as a space, and
  /// canonically equivalent spellings as one (a `Set` of strings compares them so).
  static func visible(_ text: String) -> String {
    var scalars = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      switch scalar.properties.generalCategory {
      case .format, .control: continue
      // U+FFFE, U+FFFF and the other noncharacters: no glyph either.
      case _ where scalar.properties.isNoncharacterCodePoint: continue
      case .spaceSeparator: scalars.append(" ")
      default: scalars.append(scalar)
      }
    }
    return String(scalars)
  }

  /// `text` with its invisible, space and combining scalars other than the ASCII space spelled out.
  static func spelled(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar.properties.generalCategory {
      case _ where scalar == " ": out.unicodeScalars.append(scalar)
      case .format, .control, .spaceSeparator, .nonspacingMark, .enclosingMark:
        out += scalar.escapeSpelling
      case _ where scalar.properties.isNoncharacterCodePoint: out += scalar.escapeSpelling
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}

/// JUnit XML for CI.
public enum JUnitReport {
  /// One `<testsuite>` per test file, one `<testcase>` per case (with `file` and `line`, which CI
  /// annotations use), `<failure>` with the diff; then each path given that could not be read
  /// (`unreadable`, "PATH: why") as an `<error>` of its own suite (a report of the paths that
  /// could be read alone looked green).
  public static func xml(_ results: [RuleTestResult], unreadable: [String] = []) -> String {
    var files: [String] = []
    for result in results where !files.contains(result.file) { files.append(result.file) }
    let failures = results.filter { !$0.passed }.count
    let total = results.reduce(0) { $0 + $1.seconds }
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out +=
      "<testsuites name=\"iotrules test\" tests=\"\(results.count + unreadable.count)\" failures=\"\(failures)\" errors=\"\(unreadable.count)\" time=\(seconds(total))>\n"
    for file in files {
      let cases = results.filter { $0.file == file }
      let failed = cases.filter { !$0.passed }.count
      out +=
        "  <testsuite name=\(quote(file)) tests=\"\(cases.count)\" failures=\"\(failed)\" errors=\"0\" time=\(seconds(cases.reduce(0) { $0 + $1.seconds }))>\n"
      for result in cases {
        out +=
          "    <testcase classname=\(quote(result.rule)) name=\(quote(result.name)) file=\(quote(result.file)) line=\"\(result.position.line)\" time=\(seconds(result.seconds))"
        if let failure = result.failure {
          let headline = failure.split(separator: "\n").first.map(String.init) ?? failure
          out +=
            ">\n      <failure message=\(quote(headline))>\(escape(failure))</failure>\n    </testcase>\n"
        } else {
          out += "/>\n"
        }
      }
      out += "  </testsuite>\n"
    }
    if !unreadable.isEmpty {
      out +=
        "  <testsuite name=\"(unreadable paths)\" tests=\"\(unreadable.count)\" failures=\"0\" errors=\"\(unreadable.count)\" time=\"0.000\">\n"
      for problem in unreadable {
        out +=
          "    <testcase classname=\"(unreadable paths)\" name=\(quote(problem)) time=\"0.000\">\n      <error message=\(quote(problem))/>\n    </testcase>\n"
      }
      out += "  </testsuite>\n"
    }
    return out + "</testsuites>\n"
  }

  /// Seconds to the millisecond, as the common JUnit schema's time pattern takes them (at most
  /// three decimals).
  static func seconds(_ value: Double) -> String { "\"" + String(format: "%.3f", value) + "\"" }

  /// An attribute value: a tab or line break in it as a character reference (a parser reads one
  /// written as is as a space: cases `a<tab>b` and `a b` had one name).
  static func quote(_ text: String) -> String {
    var out = "\""
    // Byte for byte: a quote followed by a combining mark is no `"` Character (the XML broke).
    for scalar in escape(text).unicodeScalars {
      switch scalar {
      case "\"": out += "&quot;"
      case "\t": out += "&#9;"
      case "\n": out += "&#10;"
      case "\r": out += "&#13;"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }

  static func escape(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
      default:
        // XML 1.0 cannot carry other control characters, U+FFFE or U+FFFF at all (its Char
        // production); a parser refuses the whole report for one. Spelled as the console spells
        // them (`\u0001`): as `?`, `a\u0001` and `a?` had one name.
        if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
          out += scalar.escapeSpelling
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out
  }
}
