/// A compiled date-time pattern: literal text and pattern-letter fields, in order.
///
/// Two dialects share the compiler: Joda-Time's (`parse_time` formats with it) and JDK 11
/// `DateTimeFormatter`'s (`time_to_epoch` parses with it). They differ in a few letters: Joda's `x`
/// is the ISO week year and `Z`/`ZZ`/`ZZZ` print `-0600`/`-06:00`/the zone id, where the JDK's
/// `x` is an offset.
struct DateTimePattern: Sendable {
  /// The pattern language.
  enum Dialect: Sendable {
    /// Joda-Time `DateTimeFormat`, plus the JDK letters `u L X V O` that Joda lacks.
    case joda
    /// JDK 11 `DateTimeFormatter.ofPattern`, optional sections `[...]` included.
    case jdk
  }

  /// One piece of the pattern.
  enum Element: Sendable, Equatable {
    case literal(String)
    case field(Character, count: Int)
    /// `[` (JDK dialect): what follows up to the matching ``optionalEnd`` is parsed when it can
    /// be, else skipped with nothing of it kept.
    case optionalStart
    /// `]`, or the end of the pattern for a section left open (as the JDK closes it).
    case optionalEnd
    /// `p` repeated (JDK dialect): the field that follows fills exactly this many characters, spaces
    /// before it (`ppd` reads ` 8` and `18`).
    case pad(Int)
  }

  /// Why a pattern is refused; `position` is the 0-based character offset.
  struct CompileError: Error, CustomStringConvertible, Equatable {
    var message: String
    var position: Int
    /// Set when the JDK would take the pattern and only this implementation does not: the rule
    /// cannot run as AWS's would. Otherwise the JDK refuses it too, and AWS's call is Undefined.
    var isUnsupportedHere = false
    var description: String { "invalid date-time pattern at offset \(position): \(message)" }
  }

  let dialect: Dialect
  let elements: [Element]
  /// The span of local time, in milliseconds, over which the formatted text cannot change in a
  /// fixed-offset zone: a day when the finest field is the day (`yyyy-MM-dd`), an hour, a minute, a
  /// second; 1 with fractions of a second.
  let constantSpanMs: Int

  init(dialect: Dialect, elements: [Element]) {
    self.dialect = dialect
    self.elements = elements
    var span = 86_400_000
    for case .field(let letter, _) in elements {
      switch letter {
      case "G", "C", "Y", "y", "u",
        "x" where dialect == .joda, "w", "e", "E", "D", "M", "L", "d":
        break
      case "z", "Z", "X", "x", "V", "O":
        break  // the offset and the zone's name: constant in a fixed-offset zone
      case "a", "H", "k", "K", "h": span = min(span, 3_600_000)
      case "m": span = min(span, 60_000)
      case "s": span = min(span, 1000)
      default: span = 1
      }
    }
    constantSpanMs = span
  }

  private static let jodaLetters = Set("GCYxwweEyDMdaKhHkmsSzZ" + "uLXVO")
  private static let jdkLetters = Set("GuyMLdDEaHhKkmsSnzZXxVOQqANv" + "YwWecg")
  /// JDK letters that exist but that `time_to_epoch` does not resolve: `F` (JDK 11 reads it as the
  /// aligned day of the week in the month, a bug later JDKs fixed) and `B` (JDK 16).
  private static let jdkUnsupported = Set("FB")

  /// Compiles `pattern`: letters are fields, `'...'` is quoted text (`''` a single quote), other
  /// characters are literals.
  static func compile(_ pattern: String, dialect: Dialect) -> Result<DateTimePattern, CompileError> {
    let characters = Array(pattern)
    var elements: [Element] = []
    var literal = ""
    var index = 0
    var openSections = 0
    func flush() {
      if !literal.isEmpty { elements.append(.literal(literal)) }
      literal = ""
    }
    while index < characters.count {
      let character = characters[index]
      if character == "'" {
        if index + 1 < characters.count, characters[index + 1] == "'" {
          literal.append("'")
          index += 2
          continue
        }
        var end = index + 1
        var closed = false
        while end < characters.count {
          if characters[end] == "'" {
            if end + 1 < characters.count, characters[end + 1] == "'" {
              literal.append("'")
              end += 2
              continue
            }
            closed = true
            break
          }
          literal.append(characters[end])
          end += 1
        }
        // Joda-Time takes an unclosed quote as quoting the rest of the pattern; the JDK refuses it.
        guard closed || dialect == .joda else {
          return .failure(CompileError(message: "unterminated quoted text", position: index))
        }
        index = end + 1
      } else if dialect == .jdk, character == "p" {
        var width = 1
        while index + width < characters.count, characters[index + width] == "p" { width += 1 }
        guard index + width < characters.count, characters[index + width].isASCII,
          characters[index + width].isLetter
        else {
          return .failure(
            CompileError(message: "pad letter 'p' must be followed by a pattern letter", position: index))
        }
        flush()
        elements.append(.pad(width))
        index += width
      } else if character.isASCII, character.isLetter {
        var count = 1
        while index + count < characters.count, characters[index + count] == character { count += 1 }
        switch dialect {
        case .joda:
          guard jodaLetters.contains(character) else {
            return .failure(CompileError(message: "unknown pattern letter '\(character)'", position: index))
          }
        case .jdk:
          if jdkUnsupported.contains(character) {
            return .failure(
              CompileError(
                message: "pattern letter '\(character)' is not supported by time_to_epoch", position: index,
                isUnsupportedHere: true))
          }
          guard jdkLetters.contains(character) else {
            return .failure(CompileError(message: "unknown pattern letter '\(character)'", position: index))
          }
          if character == "V", count != 2 {
            return .failure(
              CompileError(message: "pattern letter 'V' must appear twice (VV)", position: index))
          }
          if character == "v", count != 1, count != 4 {
            return .failure(
              CompileError(
                message: "pattern letter 'v' must appear once (v) or four times (vvvv)", position: index))
          }
          if character == "c", count == 2 {
            return .failure(
              CompileError(message: "pattern letter 'c' may not appear twice (cc)", position: index))
          }
          if let limit = jdkMaximumCount[character], count > limit {
            return .failure(CompileError(message: "too many pattern letters '\(character)'", position: index))
          }
        }
        flush()
        elements.append(.field(character, count: count))
        index += count
      } else if dialect == .jdk, character == "[" {
        // Sections are parsed by recursion: 6,000 nested ones (from a payload) overflowed the stack.
        guard openSections < maximumSectionDepth else {
          return .failure(
            CompileError(
              message: "optional sections nested deeper than \(maximumSectionDepth)", position: index))
        }
        flush()
        elements.append(.optionalStart)
        openSections += 1
        index += 1
      } else if dialect == .jdk, character == "]" {
        guard openSections > 0 else {
          return .failure(CompileError(message: "']' without a '[' before it", position: index))
        }
        flush()
        elements.append(.optionalEnd)
        openSections -= 1
        index += 1
      } else {
        if dialect == .jdk, "{}#".contains(character) {
          return .failure(CompileError(message: "'\(character)' is not supported", position: index))
        }
        literal.append(character)
        index += 1
      }
    }
    flush()
    // Joda-Time refuses an empty pattern, and one of empty quotes (`'`) makes a formatter that
    // prints nothing and says so.
    if dialect == .joda, elements.isEmpty {
      return .failure(CompileError(message: "the pattern has nothing to print", position: 0))
    }
    // The JDK closes the sections left open at the end of the pattern.
    elements += repeatElement(.optionalEnd, count: openSections)
    return .success(DateTimePattern(dialect: dialect, elements: elements))
  }

  /// Why a `time_to_epoch` pattern never gives a date, or nil: no year (or the week-based year `Y`,
  /// written for the year, `YYYY-MM-dd`, the classic slip, without the week `w` and a day of the
  /// week that a date from it needs), or a year without a month and day or a day of the year
  /// (`MMM d HH:mm:ss`, `HH:mm`, `yyyy-MM`); a modified Julian day `g` is a date.
  var givesNoDate: String? {
    var letters = Set<Character>()
    for case .field(let letter, _) in elements { letters.insert(letter) }
    if letters.contains("g") { return nil }
    if letters.isDisjoint(with: "yu") {
      guard letters.contains("Y") else {
        return "the pattern has no year ('yyyy'), and a text gives a date only with one"
      }
      guard !letters.contains("w") || letters.isDisjoint(with: "Eec") else { return nil }
      return "pattern letter 'Y' is the week-based year, which gives a date only with a week ('w') and a "
        + "day of the week ('e', 'c' or 'E'); the year is 'y'"
    }
    let month = !letters.isDisjoint(with: "ML")
    let weekday = !letters.isDisjoint(with: "Eec")
    if letters.contains("D") || month && (letters.contains("d") || letters.contains("W") && weekday) {
      return nil
    }
    return "the pattern has no \(month ? "day ('dd')" : "month and day ('MM-dd')") or day of the year "
      + "('DDD'), and a text gives a date only with them"
  }

  /// How deep optional sections (`[...]`) may nest.
  static let maximumSectionDepth = 32

  private static let jdkMaximumCount: [Character: Int] = [
    "G": 5, "M": 5, "L": 5, "d": 2, "D": 3, "E": 5, "a": 1, "H": 2, "h": 2, "K": 2, "k": 2, "m": 2, "s": 2,
    "S": 9, "z": 4, "Z": 5, "X": 5, "x": 5, "O": 4, "Q": 5, "q": 5, "A": 19, "N": 19, "w": 2, "W": 1,
    "e": 5, "c": 5, "Y": 19, "g": 19,
  ]

  static let monthNames = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November",
    "December",
  ]
  static let monthShortNames = monthNames.map { String($0.prefix(3)) }
  /// ISO order: Monday first.
  static let dayNames = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
  static let dayShortNames = dayNames.map { String($0.prefix(3)) }
}

/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01).
enum CivilCalendar {
  /// Day number of a date.
  static func days(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let monthIndex = (month + 9) % 12
    let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  /// The date of a day number.
  static func date(days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }

  static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

  static func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: isLeap(year) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
  }

  /// ISO day of week, 1 = Monday ... 7 = Sunday.
  static func weekday(days: Int) -> Int {
    let shifted = (days + 3) % 7
    return (shifted < 0 ? shifted + 7 : shifted) + 1
  }

  /// The day of the week counted from Sunday, 1 = Sunday ... 7 = Saturday: java.time's for
  /// `Locale.US`, whose weeks begin on Sunday and whose first week of a month or year is the one
  /// holding its first day.
  static func usWeekday(days: Int) -> Int { weekday(days: days) % 7 + 1 }

  /// Where the first week beginning on a Sunday starts, as a 0-based day of the month or year, for
  /// its `day`-th day falling on `usWeekday` (java.time's `startOfWeekOffset`).
  static func usWeekOffset(day: Int, usWeekday: Int) -> Int {
    let weekStart = ((day - usWeekday) % 7 + 7) % 7
    return weekStart > 0 ? 7 - weekStart : 0
  }

  /// The week holding the `day`-th day of a month or year whose first week starts at `offset`.
  static func usWeek(offset: Int, day: Int) -> Int { (7 + offset + day - 1) / 7 }

  /// The week of the month (`W`, `Locale.US`) of a date.
  static func usWeekOfMonth(days: Int) -> Int {
    let day = date(days: days).day
    return usWeek(offset: usWeekOffset(day: day, usWeekday: usWeekday(days: days)), day: day)
  }

  /// The week-based year and week (`Y`, `w`, `Locale.US`) of a date: the last days of December
  /// are in week 1 of the next year when that week holds its January 1.
  static func usWeekOfWeekBasedYear(days: Int) -> (year: Int, week: Int) {
    let year = date(days: days).year
    let dayOfYear = days - Self.days(year: year, month: 1, day: 1) + 1
    let offset = usWeekOffset(day: dayOfYear, usWeekday: usWeekday(days: days))
    let week = usWeek(offset: offset, day: dayOfYear)
    let weeksInYear = usWeek(offset: offset, day: (isLeap(year) ? 366 : 365) + 1)
    return week >= weeksInYear ? (year + 1, week - weeksInYear + 1) : (year, week)
  }

  /// The day number of ISO day `weekday` of week `week` of a week-based year (`Locale.US`), a week
  /// past the year's last clamped to it, as java.time's smart resolver does.
  static func usWeekDate(weekBasedYear: Int, week: Int, weekday: Int) -> Int {
    let first = days(year: weekBasedYear, month: 1, day: 1)
    let offset = usWeekOffset(day: 1, usWeekday: usWeekday(days: first))
    let lastWeek = usWeek(offset: offset, day: (isLeap(weekBasedYear) ? 366 : 365) + 1) - 1
    return first - offset + (weekday % 7) + (min(week, lastWeek) - 1) * 7
  }

  /// The ISO week-based year and week of a date.
  static func isoWeek(year: Int, days: Int) -> (weekYear: Int, week: Int) {
    let dayOfYear = days - Self.days(year: year, month: 1, day: 1) + 1
    let week = (dayOfYear - weekday(days: days) + 10) / 7
    if week < 1 { return (year - 1, weeksInYear(year - 1)) }
    if week > weeksInYear(year) { return (year + 1, 1) }
    return (year, week)
  }

  static func weeksInYear(_ year: Int) -> Int {
    let januaryFirst = weekday(days: days(year: year, month: 1, day: 1))
    return januaryFirst == 4 || (januaryFirst == 3 && isLeap(year)) ? 53 : 52
  }
}
