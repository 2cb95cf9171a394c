import Foundation

extension DateTimePattern {
  /// Why a text did not parse; `position` is the 0-based character offset.
  struct ParseError: Error, Equatable {
    var message: String
    var position: Int
  }

  /// What the fields of a text said, before they are resolved to an instant.
  private struct Parsed {
    var era: Int?
    var yearOfEra: Int?
    var year: Int?
    var month: Int?
    var day: Int?
    var dayOfYear: Int?
    var weekday: Int?
    /// `e`, `c` as numbers: the day of the week counted from Sunday, 1 to 7 (java.time's week of
    /// `Locale.US`, Sunday first and a first week of at least one day).
    var localWeekday: Int?
    /// `Y`.
    var weekBasedYear: Int?
    /// `w`.
    var weekOfWeekBasedYear: Int?
    /// `W`.
    var weekOfMonth: Int?
    /// `g`.
    var modifiedJulianDay: Int?
    var hour: Int?
    var clockHour: Int?
    var hourOfHalfDay: Int?
    var clockHourOfHalfDay: Int?
    var afternoon: Bool?
    var minute: Int?
    var second: Int?
    var nanosecond: Int?
    /// `A`.
    var milliOfDay: Int?
    /// `N`.
    var nanoOfDay: Int?
    /// `Q`, `q`: checked against the date.
    var quarter: Int?
    var offset: Int?
    var zone: TimeZoneRule?
  }

  /// The zone names one form of java.time's zone text parser reads, each to the zone it parses to,
  /// and the zone ids it does not read (`JavaZoneTextData.swift`, generated from the JDK).
  struct ZoneText: Sendable {
    /// Name to zone id.
    let names: [String: String]
    /// Ids it refuses (`Etc/GMT+5`; `EST` with `zzzz`).
    let rejectedIds: Set<String>
    /// The length in characters of the longest name.
    let longestName: Int

    /// From lines `name=zone id` and lines of one id.
    init(names: String, rejectedIds: String) {
      var table: [String: String] = [:]
      for line in names.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        table[String(line[..<equals])] = String(line[line.index(after: equals)...])
      }
      self.names = table
      self.rejectedIds = Set(rejectedIds.split(separator: "\n").map(String.init))
      longestName = table.keys.map(\.count).max() ?? 0
    }
  }

  /// What `z` to `zzz` read: short names (`PST`, `HKT`; an ambiguous one goes where the JDK sends
  /// it, `IST` to GMT's Africa/Abidjan, `BST` to Bougainville).
  static let shortZoneText = ZoneText(names: shortZoneNameData, rejectedIds: shortRejectedZoneIdData)
  /// What `zzzz` reads: full names (`Pacific Daylight Time`).
  static let fullZoneText = ZoneText(names: fullZoneNameData, rejectedIds: fullRejectedZoneIdData)
  /// The region ids java.time knows: the only ones any zone letter reads (`EST`, `posix/...` and
  /// the system database's other ids are not among them).
  static let javaZoneIds = Set(javaZoneIdData.split(separator: "\n").map(String.init))

  /// Parses the whole of `text` to epoch milliseconds. A text without a zone is read as UTC and
  /// missing time fields default to midnight; a text without a whole date is refused.
  func parse(_ text: String) -> Result<Int, ParseError> {
    let characters = Array(text)
    var position = 0
    var parsed = Parsed()
    if let error = parseElements(elements.indices, characters, &position, &parsed) { return .failure(error) }
    guard position == characters.count else {
      return .failure(ParseError(message: "unparsed text", position: position))
    }
    return resolve(parsed)
  }

  /// Parses the elements in `range` from `position`. An optional section is parsed on copies of
  /// the position and fields, kept only when the whole section parses (as java.time does: no
  /// backtracking into it later).
  private func parseElements(
    _ range: Range<Int>, _ characters: [Character], _ position: inout Int, _ parsed: inout Parsed
  ) -> ParseError? {
    var index = range.lowerBound
    while index < range.upperBound {
      switch elements[index] {
      case .literal(let literal):
        // Compared scalar by scalar, as java.time compares chars: `é` does not match `e` and a
        // combining accent, which Swift's `Character` equality would take as equal.
        let expected = Array(literal)
        guard position + expected.count <= characters.count,
          characters[position..<position + expected.count].elementsEqual(
            expected, by: { $0.unicodeScalars.elementsEqual($1.unicodeScalars) })
        else { return ParseError(message: "expected '\(literal)'", position: position) }
        position += expected.count
      case .field(let letter, let count):
        if let error = parseField(letter, count, index, characters, &position, &parsed) {
          return ParseError(message: error, position: position)
        }
      case .pad(let width):
        // java.time (strict): the next field fills exactly `width` characters, spaces first.
        guard case .field(let letter, let count) = elements[index + 1], position + width <= characters.count
        else { return ParseError(message: "expected \(width) characters", position: position) }
        let end = position + width
        while position < end, characters[position] == " " { position += 1 }
        if let error = parseField(letter, count, index + 1, Array(characters[..<end]), &position, &parsed) {
          return ParseError(message: error, position: position)
        }
        guard position == end else {
          return ParseError(message: "expected \(width) characters", position: position)
        }
        index += 1
      case .optionalStart:
        let end = sectionEnd(after: index)
        var sectionPosition = position
        var sectionParsed = parsed
        if parseElements((index + 1)..<end, characters, &sectionPosition, &sectionParsed) == nil {
          position = sectionPosition
          parsed = sectionParsed
        }
        index = end
      case .optionalEnd:
        break
      }
      index += 1
    }
    return nil
  }

  /// The index of the ``Element/optionalEnd`` that closes the section opened at `start`.
  private func sectionEnd(after start: Int) -> Int {
    var depth = 0
    for index in (start + 1)..<elements.count {
      switch elements[index] {
      case .optionalStart: depth += 1
      case .optionalEnd:
        if depth == 0 { return index }
        depth -= 1
      default: break
      }
    }
    return elements.count
  }

  /// The fixed width of a numeric field, nil for text fields and variable widths.
  private static func fixedWidth(_ letter: Character, _ count: Int) -> Int? {
    switch letter {
    case "y", "u": count == 2 ? 2 : nil
    case "M", "L", "d", "H", "h", "K", "k", "m", "s": count == 2 ? 2 : nil
    case "D": count == 3 ? 3 : nil
    case "Q", "q": count == 2 ? 2 : nil
    case "Y", "w": count == 2 ? 2 : nil
    case "W", "e", "c": count
    case "S": count
    default: nil
    }
  }

  private static func isNumeric(_ letter: Character, _ count: Int) -> Bool {
    switch letter {
    case "y", "u", "d", "D", "H", "h", "K", "k", "m", "s", "S", "n", "A", "N", "Y", "w", "W", "g": true
    case "M", "L", "Q", "q", "e", "c": count <= 2
    default: false
    }
  }

  private func parseField(
    _ letter: Character, _ count: Int, _ index: Int, _ text: [Character], _ position: inout Int,
    _ parsed: inout Parsed
  ) -> String? {
    if Self.isNumeric(letter, count) {
      let minimum: Int
      var maximum: Int
      if let width = Self.fixedWidth(letter, count) {
        minimum = width
        maximum = width
      } else if letter == "y" || letter == "u" || letter == "Y" {
        minimum = count
        maximum = 10
      } else if letter == "A" || letter == "N" || letter == "g" {
        // Milli and nano of day: at least as many digits as letters, up to 19 (java.time).
        minimum = count
        maximum = 19
      } else if letter == "Q" || letter == "q" {
        minimum = 1
        maximum = 19
      } else if count == 1, "MLdDHhKkms".contains(letter) {
        // One letter is java.time's `appendValue(field)`: 1 to 19 digits (`d/M/yyyy` reads
        // `7/012/2016` as 7 December; read as two digits at most, it was Undefined).
        minimum = 1
        maximum = 19
      } else if letter == "D" {
        // `DD`: 2 or 3 digits (`appendValue(DAY_OF_YEAR, 2, 3, NOT_NEGATIVE)`).
        minimum = 2
        maximum = 3
      } else {
        minimum = 1
        maximum = letter == "n" ? 9 : (letter == "D" ? 3 : 2)
      }
      // Adjacent value parsing: leave the digits the following fixed-width fields need.
      var reserved = 0
      for next in elements[(index + 1)...] {
        guard case .field(let nextLetter, let nextCount) = next, Self.isNumeric(nextLetter, nextCount),
          let width = Self.fixedWidth(nextLetter, nextCount)
        else { break }
        reserved += width
      }
      // A year's sign, as java.time reads it (strict): `-` for every count but 2, `+` with 4 or more
      // letters only (SignStyle.EXCEEDS_PAD), where it must come before more digits than letters;
      // a modified Julian day's `-` (SignStyle.NORMAL).
      let isYear = (letter == "y" || letter == "u" || letter == "Y") && count != 2
      let signed = isYear || letter == "g"
      var sign = 0
      if signed, position < text.count,
        text[position] == "-" || (text[position] == "+" && count >= 4 && isYear)
      {
        sign = text[position] == "-" ? -1 : 1
        position += 1
      }
      var available = 0
      while position + available < text.count, text[position + available].isASCII,
        text[position + available].isWholeNumber
      {
        available += 1
      }
      if minimum != maximum { maximum = min(maximum, available - reserved) }
      let take = min(maximum, available)
      guard take >= minimum else {
        return "expected \(minimum) digit\(minimum == 1 ? "" : "s") for '\(letter)'"
      }
      var value = 0
      for offset in 0..<take {
        let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
        let (sum, carried) = shifted.addingReportingOverflow(text[position + offset].wholeNumberValue!)
        guard !overflow, !carried else { return "too large a number for '\(letter)'" }
        value = sum
      }
      position += take
      if isYear, count >= 4, sign == 1 ? take <= count : sign == 0 && take > count {
        return sign == 1
          ? "a '+' needs more than \(count) digits for '\(letter)'"
          : "more than \(count) digits for '\(letter)' need a sign"
      }
      if sign == -1 {
        guard value != 0 else { return "expected a number other than -0" }
        value = -value
      }
      switch letter {
      case "y": return Self.store(count == 2 ? 2000 + value : value, in: &parsed.yearOfEra)
      case "u": return Self.store(count == 2 ? 2000 + value : value, in: &parsed.year)
      case "M", "L": return Self.store(value, in: &parsed.month)
      case "d": return Self.store(value, in: &parsed.day)
      case "D": return Self.store(value, in: &parsed.dayOfYear)
      case "H": return Self.store(value, in: &parsed.hour)
      case "k": return Self.store(value, in: &parsed.clockHour)
      case "K": return Self.store(value, in: &parsed.hourOfHalfDay)
      case "h": return Self.store(value, in: &parsed.clockHourOfHalfDay)
      case "m": return Self.store(value, in: &parsed.minute)
      case "s": return Self.store(value, in: &parsed.second)
      case "S":
        var nanos = value
        for _ in count..<9 { nanos *= 10 }
        return Self.store(nanos, in: &parsed.nanosecond)
      case "n": return Self.store(value, in: &parsed.nanosecond)
      case "A":
        guard value < 86_400_000 else { return "milli of day \(value) out of range" }
        return Self.store(value, in: &parsed.milliOfDay)
      case "N":
        guard value < 86_400_000_000_000 else { return "nano of day \(value) out of range" }
        return Self.store(value, in: &parsed.nanoOfDay)
      case "Q", "q": return Self.store(value, in: &parsed.quarter)
      case "Y": return Self.store(count == 2 ? 2000 + value : value, in: &parsed.weekBasedYear)
      case "w": return Self.store(value, in: &parsed.weekOfWeekBasedYear)
      case "W": return Self.store(value, in: &parsed.weekOfMonth)
      case "e", "c": return Self.store(value, in: &parsed.localWeekday)
      case "g": return Self.store(value, in: &parsed.modifiedJulianDay)
      default: return nil
      }
    }
    func match(_ candidates: [String]) -> Int? {
      var best: (index: Int, length: Int)?
      for (candidateIndex, candidate) in candidates.enumerated() {
        let expected = Array(candidate)
        if position + expected.count <= text.count,
          text[position..<position + expected.count].elementsEqual(expected),
          // The longest; of equal texts the last (java.time's table from text to value keeps
          // the last value of a text: narrow `S` is Sunday, `J` July).
          best == nil || expected.count >= best!.length
        {
          best = (candidateIndex, expected.count)
        }
      }
      guard let best else { return nil }
      position += best.length
      return best.index
    }
    switch letter {
    case "M", "L":
      let names =
        count == 3
        ? Self.monthShortNames : (count == 4 ? Self.monthNames : Self.monthNames.map { String($0.prefix(1)) })
      guard let month = match(names) else { return "expected a month name" }
      return Self.store(month + 1, in: &parsed.month)
    case "E", "e", "c":
      let names =
        count >= 4
        ? (count == 4 ? Self.dayNames : Self.dayNames.map { String($0.prefix(1)) }) : Self.dayShortNames
      guard let day = match(names) else { return "expected a day name" }
      return Self.store(day + 1, in: &parsed.weekday)
    case "Q", "q":
      // The text forms of java.time's English quarters: `Q3`, `3rd quarter`, and the narrow `3`.
      let names =
        count == 3
        ? ["Q1", "Q2", "Q3", "Q4"]
        : count == 4 ? ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"] : ["1", "2", "3", "4"]
      guard let quarter = match(names) else { return "expected a quarter" }
      return Self.store(quarter + 1, in: &parsed.quarter)
    case "a":
      guard let half = match(["AM", "PM"]) else { return "expected AM or PM" }
      return Self.store(half == 1, in: &parsed.afternoon)
    case "G":
      guard let era = match(count == 4 ? ["Before Christ", "Anno Domini"] : ["BC", "AD"]) else {
        return "expected an era"
      }
      return Self.store(era, in: &parsed.era)
    case "V", "z", "v":
      // `v` (generic names: `PT`, `Pacific Time`) reads what `z` reads: java.time parses both
      // through one table of a style's standard, daylight and generic names.
      let zoneText = letter == "V" ? nil : count == 4 ? Self.fullZoneText : Self.shortZoneText
      guard let zone = parseZone(text, &position, zoneText: zoneText) else {
        return "expected a time zone"
      }
      parsed.zone = zone
    case "Z", "X", "x", "O":
      guard let offset = parseOffsetField(letter, count, text, &position) else {
        return "expected a zone offset"
      }
      return Self.store(offset, in: &parsed.offset)
    default:
      return "pattern letter '\(letter)' cannot be parsed"
    }
    return nil
  }

  /// Stores the value of a field, refusing a different value for a field an earlier one of the
  /// pattern gave (java.time: `2015-12-18 2016` with `yyyy-MM-dd yyyy`).
  private static func store<Field: Equatable>(_ value: Field, in field: inout Field?) -> String? {
    if let earlier = field, earlier != value { return "a different value for a field already given" }
    field = value
    return nil
  }

  /// The longest zone id at `position` that names a zone (`America/Los_Angeles`, `UTC+01:00`,
  /// `Z`) or, with `zoneText`, the longest of its names there when it is longer (java.time's zone
  /// text parser takes the longest match of ids and names: `EST5EDT` is the id, `EST` New York),
  /// except the ids it does not read.
  private func parseZone(_ text: [Character], _ position: inout Int, zoneText: ZoneText?) -> TimeZoneRule? {
    switch Self.parseFixedZone(text, &position) {
    case .zone(let zone): return zone
    case .refused: return nil
    case .none: break
    }
    var named: (end: Int, zone: TimeZoneRule)?
    if let zoneText {
      var end = min(text.count, position + zoneText.longestName)
      while end > position {
        if let id = zoneText.names[String(text[position..<end])], let zone = TimeZoneRule.named(id) {
          named = (end, zone)
          break
        }
        end -= 1
      }
    }
    var end = position
    while end < text.count, text[end].isASCII,
      text[end].isLetter || text[end].isNumber || "/_+-:.~".contains(text[end])
    {
      end += 1
    }
    while end > position, end > named?.end ?? position {
      let candidate = String(text[position..<end])
      if zoneText?.rejectedIds.contains(candidate) != true, Self.javaZoneIds.contains(candidate),
        let zone = TimeZoneRule.named(candidate)
      {
        position = end
        return zone
      }
      end -= 1
    }
    guard let named else {
      // No id or name: `Z` is UTC.
      guard position < text.count, text[position] == "Z" else { return nil }
      position += 1
      return TimeZoneRule.utc
    }
    position = named.end
    return named.zone
  }

  /// How a zone's text starts, as java.time reads it before any id or name.
  private enum FixedZone {
    /// A zone of a fixed offset (`+05:00`, `UTC+05:00`), or a prefix alone (`UTC`, `GMT`).
    case zone(TimeZoneRule)
    /// A sign without an offset java.time reads (`+05`, `+5`, `+0500`): no zone.
    case refused
    /// Neither: an id or a name.
    case none
  }

  /// java.time's reading of a zone that starts with a sign, `UTC`, `GMT` or `UT`: an offset is
  /// `±HH:MM[:ss]` only, at most 18 hours; after a prefix, an offset it cannot read leaves the
  /// prefix alone as the zone (`GMT+5` is GMT, then `+5` is left unread), and `GMT0` is GMT.
  private static func parseFixedZone(_ text: [Character], _ position: inout Int) -> FixedZone {
    guard position < text.count else { return .none }
    if text[position] == "+" || text[position] == "-" {
      guard let (seconds, end) = signedOffset(text, from: position, form: 5) else { return .refused }
      defer { position = end }
      return .zone(
        seconds == 0 ? TimeZoneRule.utc : .fixed(seconds: seconds, id: String(text[position..<end])))
    }
    for prefix in ["UTC", "GMT", "UT"] {
      let letters = Array(prefix)
      guard position + letters.count <= text.count,
        Array(text[position..<position + letters.count]) == letters
      else { continue }
      let after = position + letters.count
      if prefix == "GMT", after < text.count, text[after] == "0" {
        position = after + 1
        return .zone(.fixed(seconds: 0, id: "GMT0"))
      }
      if after < text.count, text[after] == "+" || text[after] == "-",
        let (seconds, end) = signedOffset(text, from: after, form: 5)
      {
        position = end
        return .zone(.fixed(seconds: seconds, id: prefix + String(text[after..<end])))
      }
      position = after
      return .zone(.fixed(seconds: 0, id: prefix))
    }
    return .none
  }

  /// An offset as java.time's strict parser reads the letter's pattern: `X`/`x` `+HHmm` (minutes
  /// optional), two `+HHMM`, three `+HH:MM`, four `+HHMMss`, five `+HH:MM:ss` (seconds optional),
  /// `Z` to `ZZZ` `+HHMM`, `ZZZZZ` `+HH:MM:ss`; `X` and `ZZZZZ` read `Z` as zero; `O` reads `GMT` then
  /// `+H[H][:MM[:ss]]`, `OOOO` and `ZZZZ` `GMT` then `+HH:MM[:ss]`; at most 18 hours.
  private func parseOffsetField(_ letter: Character, _ count: Int, _ text: [Character], _ position: inout Int)
    -> Int?
  {
    // The text of a zero offset is read first, as zero, when the text starts with it: `x`'s `+00`
    // takes `+0030` as zero and leaves `30` unread.
    let zero: String? =
      letter == "X" || (letter == "Z" && count == 5)
      ? "Z"
      : letter == "x"
        ? ["+00", "+0000", "+00:00", "+0000", "+00:00"][min(count, 5) - 1]
        : letter == "Z" && count <= 3 ? "+0000" : nil
    if let zero {
      let characters = Array(zero)
      if position + characters.count <= text.count,
        Array(text[position..<position + characters.count]) == characters
      {
        position += characters.count
        return 0
      }
    }
    var at = position
    let localized = letter == "O" || (letter == "Z" && count == 4)
    if localized {
      guard at + 3 <= text.count, String(text[at..<at + 3]) == "GMT" else { return nil }
      at += 3
      guard at < text.count, text[at] == "+" || text[at] == "-" else {
        position = at
        return 0
      }
    }
    // `Z` to `ZZZ` are `xx`'s `+HHMM`; `ZZZZZ`, and `OOOO` and `ZZZZ` after their `GMT`, `xxxxx`'s
    // `+HH:MM:ss`; `O`'s is a form of its own (0).
    let form = localized ? (count == 1 ? 0 : 5) : letter == "Z" ? (count <= 3 ? 2 : 5) : count
    guard let (seconds, end) = Self.signedOffset(text, from: at, form: form) else { return nil }
    position = end
    return seconds
  }

  /// The signed offset at `start` in seconds, and where it ends, as java.time's strict parser reads
  /// the offset pattern of `form`, `X`'s letter count: 1 `+HHmm` (minutes optional), 2 `+HHMM`,
  /// 3 `+HH:MM`, 4 `+HHMMss`, 5 `+HH:MM:ss` (seconds optional), and 0 for `O`'s `+H[H][:MM[:ss]]`;
  /// at most 18 hours. Nil when there is none.
  private static func signedOffset(_ text: [Character], from start: Int, form: Int) -> (Int, Int)? {
    var at = start
    func digits(_ count: Int) -> Int? {
      guard at + count <= text.count else { return nil }
      var value = 0
      for character in text[at..<at + count] {
        guard character.isASCII, let digit = character.wholeNumberValue else { return nil }
        value = value * 10 + digit
      }
      at += count
      return value
    }
    // `:` (when `colon`) and two digits, taken only when all are there.
    func optionalPair(colon: Bool) -> Int? {
      let before = at
      if colon {
        guard at < text.count, text[at] == ":" else { return nil }
        at += 1
      }
      guard let value = digits(2) else {
        at = before
        return nil
      }
      return value
    }
    guard at < text.count, text[at] == "+" || text[at] == "-" else { return nil }
    let negative = text[at] == "-"
    at += 1
    var hours: Int
    var minutes = 0
    var seconds = 0
    if form == 0 {
      // One or two digits of hours, then `:MM` and `:ss` when there.
      guard let first = digits(1) else { return nil }
      hours = first
      if let second = digits(1) { hours = hours * 10 + second }
      if let value = optionalPair(colon: true) {
        minutes = value
        if let value = optionalPair(colon: true) { seconds = value }
      }
    } else {
      guard let value = digits(2) else { return nil }
      hours = value
      let colon = form == 3 || form == 5
      if let value = optionalPair(colon: colon) {
        minutes = value
        if form >= 4, let value = optionalPair(colon: colon) { seconds = value }
      } else if form >= 2 {
        return nil
      }
    }
    guard minutes < 60, seconds < 60 else { return nil }
    let total = hours * 3600 + minutes * 60 + seconds
    guard total <= 18 * 3600 else { return nil }
    return (negative ? -total : total, at)
  }

  private func resolve(_ parsed: Parsed) -> Result<Int, ParseError> {
    func failure(_ message: String) -> Result<Int, ParseError> {
      .failure(ParseError(message: message, position: 0))
    }
    var parsed = parsed
    // The day of the week counted from Sunday (`e`, `c`) is the ISO one, as java.time takes it first.
    if let local = parsed.localWeekday {
      guard (1...7).contains(local) else { return failure("day of week \(local) out of range") }
      if Self.store(local == 1 ? 7 : local - 1, in: &parsed.weekday) != nil {
        return failure("the days of the week given disagree")
      }
    }
    var year: Int?
    if let value = parsed.year {
      year = value
    } else if let yearOfEra = parsed.yearOfEra {
      guard yearOfEra >= 1 else { return failure("year of era out of range") }
      year = parsed.era == 0 ? 1 - yearOfEra : yearOfEra
    }
    if let year, abs(year) > 200_000_000 { return failure("year out of range") }
    if let month = parsed.month, !(1...12).contains(month) { return failure("month \(month) out of range") }
    if let day = parsed.day, !(1...31).contains(day) { return failure("day \(day) out of range") }
    let days: Int
    // Whether the date came from other fields than the year, month and day, which must then agree.
    var crossChecksDate = true
    if let julian = parsed.modifiedJulianDay {
      // The modified Julian day 40,587 is 1970-01-01.
      guard abs(julian) <= 73_000_000_000 else { return failure("modified Julian day out of range") }
      days = julian - 40_587
    } else if let weekBasedYear = parsed.weekBasedYear, year == nil {
      // java.time builds a date from a week-based year only with its week and a day of the week.
      guard let week = parsed.weekOfWeekBasedYear, let weekday = parsed.weekday else {
        return failure("a week-based year ('Y') gives a date only with its week ('w') and a day of the week")
      }
      guard abs(weekBasedYear) <= 200_000_000 else { return failure("year out of range") }
      guard (1...53).contains(week) else { return failure("week \(week) out of range") }
      days = CivilCalendar.usWeekDate(weekBasedYear: weekBasedYear, week: week, weekday: weekday)
      // Taken up (a week past the year's last was clamped), not checked against the date.
      (parsed.weekBasedYear, parsed.weekOfWeekBasedYear, parsed.weekday) = (nil, nil, nil)
    } else if let weekOfMonth = parsed.weekOfMonth, let weekday = parsed.weekday, let year,
      let month = parsed.month, parsed.day == nil, parsed.dayOfYear == nil
    {
      guard (0...6).contains(weekOfMonth) else { return failure("week of month \(weekOfMonth) out of range") }
      let first = CivilCalendar.days(year: year, month: month, day: 1)
      // As java.time's smart resolver, week 0 and weeks past the month's end leave the month.
      days =
        first + (weekOfMonth - 1) * 7 + (weekday % 7 + 1) - CivilCalendar.usWeekday(days: first)
      (parsed.weekOfMonth, parsed.weekday) = (nil, nil)
      crossChecksDate = false
    } else if let dayOfYear = parsed.dayOfYear {
      // As the JDK's resolver: the year and its day make the date, which a month or day also
      // given must agree with (`yyyy-MM-DDD` of `2024-03-070` is March 10th; of `2024-02-070`, none).
      guard let year else {
        return failure("the text gives no date: a year with a month and day, or a day of the year")
      }
      guard (1...(CivilCalendar.isLeap(year) ? 366 : 365)).contains(dayOfYear) else {
        return failure("day of year \(dayOfYear) out of range")
      }
      days = CivilCalendar.days(year: year, month: 1, day: 1) + dayOfYear - 1
    } else {
      crossChecksDate = false
      // As the JDK's resolver: a date needs its year and its month and day, or its day of the year
      // (`MMM d HH:mm:ss`, a syslog stamp, has none: no date of 1970 is made up).
      guard let year, let month = parsed.month, var day = parsed.day else {
        return failure("the text gives no date: a year with a month and day, or a day of the year")
      }
      // java.time's smart resolver moves 29-31 back to the month's last day.
      day = min(day, CivilCalendar.daysInMonth(year: year, month: month))
      days = CivilCalendar.days(year: year, month: month, day: day)
    }
    let date = CivilCalendar.date(days: days)
    guard abs(date.year) <= 200_000_000 else { return failure("year out of range") }
    if crossChecksDate {
      let dayOfYear = days - CivilCalendar.days(year: date.year, month: 1, day: 1) + 1
      guard year.map({ $0 == date.year }) ?? true, parsed.month.map({ $0 == date.month }) ?? true,
        parsed.day.map({ $0 == date.day }) ?? true, parsed.dayOfYear.map({ $0 == dayOfYear }) ?? true
      else { return failure("the date fields disagree") }
    }
    // What java.time checks against the date, however it was given: the day of the week, the
    // weeks (of `Locale.US`) and the quarter (a date defaulted here is checked too).
    if let weekday = parsed.weekday, weekday != CivilCalendar.weekday(days: days) {
      return failure("day of week does not match the date")
    }
    let week = CivilCalendar.usWeekOfWeekBasedYear(days: days)
    if parsed.weekBasedYear.map({ $0 != week.year }) ?? false
      || parsed.weekOfWeekBasedYear.map({ $0 != week.week }) ?? false
      || parsed.weekOfMonth.map({ $0 != CivilCalendar.usWeekOfMonth(days: days) }) ?? false
    {
      return failure("the week fields do not match the date")
    }
    if let quarter = parsed.quarter, quarter != (date.month - 1) / 3 + 1 {
      return failure("quarter \(quarter) does not match the date")
    }
    var hour = 0
    var excessDays = 0
    if let value = parsed.hour, value == 24, (parsed.minute ?? 0) == 0, (parsed.second ?? 0) == 0,
      (parsed.nanosecond ?? 0) == 0
    {
      // java.time's SMART resolver reads 24:00 as the midnight that ends the day.
      excessDays = 1
    } else if let value = parsed.hour {
      guard (0...23).contains(value) else {
        return .failure(ParseError(message: "hour \(value) out of range", position: 0))
      }
      hour = value
    } else if let value = parsed.clockHour {
      // SMART also takes clock hour 0 (as hour 0), here and for `h`; STRICT would not.
      guard (0...24).contains(value) else {
        return .failure(ParseError(message: "hour \(value) out of range", position: 0))
      }
      hour = value % 24
    } else if let value = parsed.hourOfHalfDay ?? parsed.clockHourOfHalfDay.map({ $0 % 12 }) {
      if let value = parsed.clockHourOfHalfDay, !(0...12).contains(value) {
        return .failure(ParseError(message: "hour \(value) out of range", position: 0))
      }
      guard (0...11).contains(value) else {
        return .failure(ParseError(message: "hour \(value) out of range", position: 0))
      }
      hour = value + (parsed.afternoon == true ? 12 : 0)
    }
    let hourGiven =
      parsed.hour != nil || parsed.clockHour != nil || parsed.hourOfHalfDay != nil
      || parsed.clockHourOfHalfDay != nil
    // An hour of the day and AM/PM must agree (java.time: `17 AM` with `HH a` is a conflict).
    if hourGiven, let afternoon = parsed.afternoon, afternoon != (hour >= 12) {
      return .failure(ParseError(message: "AM/PM does not match the hour", position: 0))
    }
    var minute = parsed.minute ?? 0
    var second = parsed.second ?? 0
    var nanosecond = parsed.nanosecond ?? 0
    guard (0...59).contains(minute) else {
      return .failure(ParseError(message: "minute \(minute) out of range", position: 0))
    }
    guard (0...59).contains(second) else {
      return .failure(ParseError(message: "second \(second) out of range", position: 0))
    }
    // `A` and `N` give the time of day (both: they must agree to the millisecond, `N` the finer);
    // any other time field given must agree with it, a fraction to the precision of the day field
    // (`A` with `SSSS` keeps the finer fraction), an hour of the half day (without AM/PM) modulo 12.
    var dayNanos = parsed.nanoOfDay
    if let milli = parsed.milliOfDay {
      if let nanos = dayNanos, nanos / 1_000_000 != milli {
        return .failure(ParseError(message: "milli of day and nano of day disagree", position: 0))
      }
      dayNanos = dayNanos ?? milli * 1_000_000
    }
    if let nanoOfDay = dayNanos {
      let derived = (
        hour: nanoOfDay / 3_600_000_000_000, minute: nanoOfDay / 60_000_000_000 % 60,
        second: nanoOfDay / 1_000_000_000 % 60, nanosecond: nanoOfDay % 1_000_000_000
      )
      let exactHour = parsed.hour != nil || parsed.clockHour != nil || parsed.afternoon != nil
      let precision = parsed.nanoOfDay != nil ? 1 : 1_000_000
      let agrees =
        (!hourGiven || (exactHour ? hour == derived.hour && excessDays == 0 : hour % 12 == derived.hour % 12))
        && (parsed.afternoon.map { $0 == (derived.hour >= 12) } ?? true)
        && (parsed.minute.map { $0 == derived.minute } ?? true)
        && (parsed.second.map { $0 == derived.second } ?? true)
        && (parsed.nanosecond.map { $0 / precision == derived.nanosecond / precision } ?? true)
      guard agrees else {
        return .failure(
          ParseError(message: "the time of day does not match the other time fields", position: 0))
      }
      (hour, minute, second) = (derived.hour, derived.minute, derived.second)
      nanosecond = parsed.nanosecond ?? derived.nanosecond
    } else if !hourGiven, let afternoon = parsed.afternoon, parsed.minute == nil, parsed.second == nil,
      parsed.nanosecond == nil
    {
      // AM or PM alone: java.time's smart resolver takes the middle of the half day.
      hour = afternoon ? 18 : 6
    }
    let local = (days + excessDays) * 86_400 + hour * 3600 + minute * 60 + second
    let epochSeconds: Int
    if let offset = parsed.offset {
      epochSeconds = local - offset
    } else {
      epochSeconds = (parsed.zone ?? .utc).epochSeconds(fromLocal: local)
    }
    return .success(epochSeconds * 1000 + nanosecond / 1_000_000)
  }
}
