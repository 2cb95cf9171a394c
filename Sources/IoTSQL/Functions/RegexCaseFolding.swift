extension CompiledRegex {
  /// What Java's case properties hold under `i`: a letter of either case (`\p{Lu}`, `\p{Ll}`,
  /// `\p{Lt}` are every cased letter; the ASCII `\p{Lower}`, `\p{Upper}` every ASCII letter), and
  /// for the `Character.isLowerCase`-like ones anything cased, `Ⅰ` and `ª` too
  /// (``javaOnlyProperties``' `javaCasedUnderI`).
  static let caseInsensitiveProperties: [String: String] = {
    var table = ["{Lower}": "{Alpha}", "{Upper}": "{Alpha}"]
    for name in [
      "Lu", "Ll", "Lt", "IsLu", "IsLl", "IsLt", "gc=Lu", "gc=Ll", "gc=Lt", "general_category=Lu",
      "general_category=Ll", "general_category=Lt",
    ] {
      table["{\(name)}"] = "{LC}"
    }
    for name in [
      "IsLowercase", "IsUppercase", "IsTitlecase", "javaLowerCase", "javaUpperCase", "javaTitleCase",
    ] {
      table["{\(name)}"] = "{javaCasedUnderI}"
    }
    return table
  }()

  /// What the property `{name}` holds under `i` when that differs (``caseInsensitiveProperties``);
  /// Java reads a binary property's name after `Is` in any case (`IsLOWERCASE`, `IsTitleCase`).
  static func caseInsensitiveProperty(_ name: String) -> String? {
    if let holds = caseInsensitiveProperties[name] { return holds }
    guard name.hasPrefix("{Is"), name.hasSuffix("}") else { return nil }
    let property = name.dropFirst(3).dropLast().uppercased()
    return ["LOWERCASE", "UPPERCASE", "TITLECASE"].contains(property) ? "{javaCasedUnderI}" : nil
  }

  /// `pattern` with Java's case-insensitive matching spelled out where ICU's would differ.
  ///
  /// Java's `(?i)` (`CASE_INSENSITIVE`) folds ASCII letters only unless `u` (`UNICODE_CASE`) is on
  /// too; ICU's `i` always folds all of Unicode (`É` matches `é`, the Kelvin sign matches `k`, `ß`
  /// matches `ss`). So where Java's `i` is on and its `u` off, ICU's `i` is left off and each ASCII
  /// letter is written as both its cases: `a` becomes `[aA]`, inside a set `a-f` becomes `a-fA-F`,
  /// and a `\Q...\E` quote becomes its escaped characters. Where both are on, ICU's `i` is on (its
  /// folding is then Java's). Flags follow Java's scopes: `(?i)` to the end of its group, `(?i:...)`
  /// within it. A letter written as an escape (`\x41`) folds as the letter does; a case property
  /// holds both cases (`\p{Lu}` becomes `\p{LC}`, as Java reads it under `i`); a back-reference,
  /// another property and a character by name (`\N{...}`) keep ICU's `i` outside a set; other
  /// escapes with an argument and group names are copied as they are; a comment (`#` under `x`) is
  /// copied as it is.
  ///
  /// Returns `pattern` itself when it never turns `i` on.
  static func asciiCaseFolding(_ pattern: String) -> String {
    guard pattern.contains("(?") else { return pattern }
    let scalars = Array(pattern.unicodeScalars)
    let count = scalars.count
    var javaI = false
    var javaU = false
    // Comments mode (`x`): a `#` starts a comment to the end of the line, copied as it is.
    var javaX = false
    // The flags to restore at each open group's `)`.
    var saved: [(i: Bool, u: Bool, x: Bool)] = []
    var output = String.UnicodeScalarView()
    var depth = 0  // nesting of [...]
    var turnsCaseOn = false
    var index = 0

    func isLetter(_ scalar: Unicode.Scalar) -> Bool {
      ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }
    func otherCase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
      Unicode.Scalar(UInt8(scalar.value) ^ 0x20)
    }
    /// The other case of the letters of the range `low-high` (none when it holds no letter).
    func appendOtherCases(_ low: Unicode.Scalar, _ high: Unicode.Scalar) {
      for (first, last) in [("a", "z"), ("A", "Z")] as [(Unicode.Scalar, Unicode.Scalar)] {
        let from = max(low.value, first.value)
        let to = min(high.value, last.value)
        if from <= to, let a = Unicode.Scalar(from ^ 0x20), let b = Unicode.Scalar(to ^ 0x20) {
          output.append(contentsOf: a == b ? [a] : [a, "-", b])
        }
      }
    }
    /// The character a literal or a numeric escape (`\x41`, `\x{41}`, `\u0041`, `\0101`) at `start`
    /// stands for, and the index after it; nil for anything else (syntax, other escapes).
    func atom(at start: Int) -> (Unicode.Scalar, Int)? {
      let scalar = scalars[start]
      guard scalar == "\\" else {
        if "[]()\\".unicodeScalars.contains(scalar)
          || (scalar == "^" && start > 0 && scalars[start - 1] == "[")
        {
          return nil
        }
        return (scalar, start + 1)
      }
      guard start + 1 < count else { return nil }
      var digits = String.UnicodeScalarView()
      var end = start + 2
      let radix: Int
      switch scalars[start + 1] {
      case "x" where start + 2 < count && scalars[start + 2] == "{":
        end = argumentEnd(from: start + 2, open: "{", close: "}")
        digits.append(contentsOf: scalars[(start + 3)..<max(start + 3, end - 1)])
        radix = 16
      case "x", "u":
        end = min(start + (scalars[start + 1] == "x" ? 4 : 6), count)
        digits.append(contentsOf: scalars[(start + 2)..<end])
        radix = 16
      case "0":
        while end < count, end < start + 5, ("0"..."7").contains(scalars[end]) { end += 1 }
        digits.append(contentsOf: scalars[(start + 2)..<end])
        radix = 8
      case "t": return ("\t", end)
      case "n": return ("\n", end)
      case "r": return ("\r", end)
      case "f": return ("\u{C}", end)
      case "a": return ("\u{7}", end)
      case "e": return ("\u{1B}", end)
      case let escaped
      where escaped.isASCII && !escaped.properties.isAlphabetic && !("0"..."9").contains(escaped):
        // An escaped punctuation mark or space stands for itself (`\.`, `\-`, `\]`).
        return (escaped, end)
      default: return nil
      }
      guard let value = UInt32(String(digits), radix: radix), let decoded = Unicode.Scalar(value) else {
        return nil
      }
      return (decoded, end)
    }
    /// The index just after the `close` that ends an argument opened at `start`, or `start` when
    /// none opens there.
    func argumentEnd(from start: Int, open: Unicode.Scalar, close: Unicode.Scalar) -> Int {
      guard start < count, scalars[start] == open else { return start }
      var end = start + 1
      while end < count, scalars[end] != close { end += 1 }
      return min(end + 1, count)
    }

    while index < count {
      let scalar = scalars[index]
      let folding = javaI && !javaU
      if javaX, scalar == "#" {
        var end = index
        while end < count, scalars[end] != "\n" { end += 1 }
        output.append(contentsOf: scalars[index..<end])
        index = end
        continue
      }
      if folding, let (value, end) = atom(at: index) {
        if depth > 0, end + 1 < count, scalars[end] == "-", scalars[end + 1] != "]" {
          // A range in a set: as written, then the other case of its letters (a range whose end is
          // no character, `a-\d`, is left as written, for the error it is).
          guard let (high, highEnd) = atom(at: end + 1) else {
            output.append(contentsOf: scalars[index..<end])
            index = end
            continue
          }
          output.append(contentsOf: scalars[index..<highEnd])
          appendOtherCases(value, high)
          index = highEnd
          continue
        }
        if isLetter(value) {
          if depth == 0 { output.append("[") }
          output.append(contentsOf: scalars[index..<end])
          output.append(otherCase(value))
          if depth == 0 { output.append("]") }
          index = end
          continue
        }
      }
      if scalar == "\\", index + 1 < count {
        let next = scalars[index + 1]
        if next == "Q" {
          var end = index + 2
          while end < count, !(scalars[end] == "\\" && end + 1 < count && scalars[end + 1] == "E") {
            end += 1
          }
          if folding {
            // The quoted text, character by character: letters in both cases, the rest escaped.
            for quoted in scalars[(index + 2)..<end] {
              if isLetter(quoted) {
                output.append(
                  contentsOf: depth > 0
                    ? [quoted, otherCase(quoted)] : ["[", quoted, otherCase(quoted), "]"])
              } else if quoted.isASCII, !quoted.properties.isAlphabetic, !("0"..."9").contains(quoted) {
                output.append(contentsOf: ["\\", quoted])
              } else {
                output.append(quoted)
              }
            }
          } else {
            output.append(contentsOf: scalars[index..<min(end + 2, count)])
          }
          index = min(end + 2, count)
          continue
        }
        var end = index + 2
        switch next {
        case "x":
          end = end < count && scalars[end] == "{" ? argumentEnd(from: end, open: "{", close: "}") : end + 2
        case "u": end += 4
        case "c": end += 1
        case "0":
          while end < count, end < index + 5, ("0"..."7").contains(scalars[end]) { end += 1 }
        case "p", "P", "N":
          end = end < count && scalars[end] == "{" ? argumentEnd(from: end, open: "{", close: "}") : end + 1
          let name = String(String.UnicodeScalarView(scalars[(index + 2)..<min(end, count)]))
          if folding, next != "N", let holds = Self.caseInsensitiveProperty(name) {
            // Java's case properties without case: `\p{Lu}` holds every cased letter.
            output.append(contentsOf: ["\\", next])
            output.append(contentsOf: holds.unicodeScalars)
            index = end
            continue
          }
          if folding, depth == 0, next == "N" || Self.posixClasses[String(name.dropFirst().dropLast())] == nil
          {
            // Any other property, and a character by name, fold as ICU's `i` folds them (Java folds
            // them too); a POSIX class is ASCII and closed under case already.
            output.append(contentsOf: "(?i:".unicodeScalars)
            output.append(contentsOf: scalars[index..<min(end, count)])
            output.append(")")
            index = min(end, count)
            continue
          }
        case "k": end = argumentEnd(from: end, open: "<", close: ">")
        case "1"..."9": while end < count, ("0"..."9").contains(scalars[end]) { end += 1 }
        default: break
        }
        end = min(end, count)
        // Java compares a back-reference without case: it keeps ICU's `i`.
        let keepsCase = folding && depth == 0 && "123456789k".unicodeScalars.contains(next)
        if keepsCase { output.append(contentsOf: "(?i:".unicodeScalars) }
        output.append(contentsOf: scalars[index..<end])
        if keepsCase { output.append(")") }
        index = end
        continue
      }
      if depth == 0, scalar == "(" {
        if index + 1 < count, scalars[index + 1] == "?" {
          var end = index + 2
          while end < count, "idmsuxU-".unicodeScalars.contains(scalars[end]) { end += 1 }
          if end > index + 2, end < count, scalars[end] == ")" || scalars[end] == ":" {
            // An inline flag group: Java's flags tracked, ICU's `i` set to what Java's `i` and `u`
            // make of it.
            let letters = scalars[(index + 2)..<end]
            let on = letters.prefix { $0 != "-" }
            let off = letters.dropFirst(on.count)
            // Java applies the flags turned on, then those turned off (`(?i-i)` leaves `i` off).
            let (i, u, x) = (
              off.contains("i") ? false : on.contains("i") ? true : javaI,
              // `U` (UNICODE_CHARACTER_CLASS) sets and clears `u` with it, as Java's flags do.
              off.contains("u") || off.contains("U")
                ? false : on.contains("u") || on.contains("U") ? true : javaU,
              off.contains("x") ? false : on.contains("x") ? true : javaX
            )
            if i, !javaI { turnsCaseOn = true }
            var keptOn = on.filter { $0 != "i" }
            var keptOff = off.filter { $0 != "i" && $0 != "-" }
            if i && u, !(javaI && javaU) { keptOn.append("i") }
            if !(i && u), javaI && javaU { keptOff.append("i") }
            if scalars[end] == ":" { saved.append((javaI, javaU, javaX)) }
            (javaI, javaU, javaX) = (i, u, x)
            if scalars[end] == ":" || !keptOn.isEmpty || !keptOff.isEmpty {
              output.append(contentsOf: ["(", "?"])
              output.append(contentsOf: keptOn)
              if !keptOff.isEmpty {
                output.append("-")
                output.append(contentsOf: keptOff)
              }
              output.append(scalars[end])
            }
            index = end + 1
            continue
          }
          if index + 3 < count, scalars[index + 2] == "<", scalars[index + 3] != "=",
            scalars[index + 3] != "!"
          {
            // A named group: its name is copied as it is.
            let end = argumentEnd(from: index + 2, open: "<", close: ">")
            saved.append((javaI, javaU, javaX))
            output.append(contentsOf: scalars[index..<end])
            index = end
            continue
          }
        }
        saved.append((javaI, javaU, javaX))
        output.append(scalar)
        index += 1
        continue
      }
      if depth == 0, scalar == ")" {
        if let outer = saved.popLast() { (javaI, javaU, javaX) = outer }
      } else if scalar == "[" {
        depth += 1
        // A `]` first in a set (`[]a]`, `[^]a]`) is a character to Java: the set goes on.
        var first = index + 1
        if first < count, scalars[first] == "^" { first += 1 }
        if first < count, scalars[first] == "]" {
          output.append(contentsOf: scalars[index..<first])
          output.append(contentsOf: ["\\", "]"])
          index = first + 1
          continue
        }
      } else if scalar == "]", depth > 0 {
        depth -= 1
      }
      output.append(scalar)
      index += 1
    }
    return turnsCaseOn ? String(output) : pattern
  }
}
