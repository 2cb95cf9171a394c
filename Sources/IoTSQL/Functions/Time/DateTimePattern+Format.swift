extension DateTimePattern {
  /// The broken-down fields of one instant in one zone.
  struct Fields {
    var year: Int
    var month: Int
    var day: Int
    var dayOfYear: Int
    var weekday: Int
    var weekYear: Int
    var week: Int
    var hour: Int
    var minute: Int
    var second: Int
    var millisecond: Int
    var offset: Int
    var epochSeconds: Int

    init(epochMilliseconds: Int, zone: TimeZoneRule) {
      let epochSeconds = Self.floorDivide(epochMilliseconds, 1000)
      self.epochSeconds = epochSeconds
      millisecond = epochMilliseconds - epochSeconds * 1000
      offset = zone.offset(atEpochSeconds: epochSeconds)
      let local = epochSeconds + offset
      let days = Self.floorDivide(local, 86_400)
      let secondOfDay = local - days * 86_400
      (year, month, day) = CivilCalendar.date(days: days)
      dayOfYear = days - CivilCalendar.days(year: year, month: 1, day: 1) + 1
      weekday = CivilCalendar.weekday(days: days)
      (weekYear, week) = CivilCalendar.isoWeek(year: year, days: days)
      hour = secondOfDay / 3600
      minute = secondOfDay / 60 % 60
      second = secondOfDay % 60
    }

    static func floorDivide(_ value: Int, _ divisor: Int) -> Int {
      let quotient = value / divisor
      return value % divisor < 0 ? quotient - 1 : quotient
    }
  }

  /// Formats the instant `epochMilliseconds` in `zone`.
  func format(epochMilliseconds: Int, zone: TimeZoneRule) -> String {
    let fields = Fields(epochMilliseconds: epochMilliseconds, zone: zone)
    var out = ""
    for element in elements {
      switch element {
      case .literal(let text): out += text
      case .field(let letter, let count): append(letter, count, fields, zone, to: &out)
      case .optionalStart, .optionalEnd, .pad: break  // JDK patterns only, which are never formatted
      }
    }
    return out
  }

  private func append(
    _ letter: Character, _ count: Int, _ f: Fields, _ zone: TimeZoneRule, to out: inout String
  ) {
    let yearOfEra = f.year <= 0 ? 1 - f.year : f.year
    // ASCII, not Character: a `switch` over Characters compares strings case by case.
    switch letter.asciiValue ?? 0 {
    case UInt8(ascii: "G"):
      out +=
        count >= 4 && dialect == .jdk
        ? (f.year <= 0 ? "Before Christ" : "Anno Domini") : (f.year <= 0 ? "BC" : "AD")
    // Joda-Time's century of era and two-digit years count from year 0 both ways: year -99 (100 BC)
    // is in century 0, and year -1 is `01` with `yy`, `YY` and `xx` alike.
    case UInt8(ascii: "C"): out += Self.padded(abs(f.year) / 100, count)
    case UInt8(ascii: "y"): out += Self.year(dialect == .joda ? f.year : yearOfEra, count)
    case UInt8(ascii: "Y"): out += Self.year(count == 2 && dialect == .joda ? f.year : yearOfEra, count)
    case UInt8(ascii: "u"): out += Self.year(f.year, count)
    case UInt8(ascii: "x") where dialect == .joda: out += Self.year(f.weekYear, count)
    case UInt8(ascii: "w"): out += Self.padded(f.week, count)
    case UInt8(ascii: "e"): out += Self.padded(f.weekday, count)
    case UInt8(ascii: "E"):
      out += count >= 4 ? Self.dayNames[f.weekday - 1] : Self.dayShortNames[f.weekday - 1]
    case UInt8(ascii: "M"), UInt8(ascii: "L"):
      switch count {
      case 1, 2: out += Self.padded(f.month, count)
      case 3: out += Self.monthShortNames[f.month - 1]
      case 5 where dialect == .jdk: out += String(Self.monthNames[f.month - 1].prefix(1))
      default: out += Self.monthNames[f.month - 1]
      }
    case UInt8(ascii: "d"): out += Self.padded(f.day, count)
    case UInt8(ascii: "D"): out += Self.padded(f.dayOfYear, count)
    case UInt8(ascii: "a"): out += f.hour < 12 ? "AM" : "PM"
    case UInt8(ascii: "H"): out += Self.padded(f.hour, count)
    case UInt8(ascii: "k"): out += Self.padded(f.hour == 0 ? 24 : f.hour, count)
    case UInt8(ascii: "K"): out += Self.padded(f.hour % 12, count)
    case UInt8(ascii: "h"): out += Self.padded(f.hour % 12 == 0 ? 12 : f.hour % 12, count)
    case UInt8(ascii: "m"): out += Self.padded(f.minute, count)
    case UInt8(ascii: "s"): out += Self.padded(f.second, count)
    case UInt8(ascii: "S"): out += Self.fraction(f.millisecond, count)
    case UInt8(ascii: "z"):
      out += zone.name(atEpochSeconds: f.epochSeconds, long: count >= 4)
    case UInt8(ascii: "Z"):
      switch (dialect, count) {
      case (.joda, 1): out += Self.offset(f.offset, colon: false, zero: nil)
      case (.joda, 2): out += Self.offset(f.offset, colon: true, zero: nil)
      case (.joda, _): out += zone.canonicalID
      case (.jdk, 4):
        out += f.offset == 0 ? "GMT" : "GMT" + Self.offset(f.offset, colon: true, zero: nil, seconds: true)
      case (.jdk, 5): out += Self.offset(f.offset, colon: true, zero: "Z", seconds: true)
      default: out += Self.offset(f.offset, colon: false, zero: nil)
      }
    case UInt8(ascii: "X"), UInt8(ascii: "x"):
      let zero: String? = letter == "X" ? "Z" : nil
      switch count {
      case 1:
        if f.offset == 0, let zero {
          out += zero
        } else {
          let text = Self.offset(f.offset, colon: false, zero: nil)
          out += f.offset % 3600 == 0 ? String(text.prefix(3)) : text
        }
      case 2, 4: out += Self.offset(f.offset, colon: false, zero: zero, seconds: count == 4)
      default: out += Self.offset(f.offset, colon: true, zero: zero, seconds: count == 5)
      }
    case UInt8(ascii: "V"): out += zone.id
    case UInt8(ascii: "O"):
      if f.offset == 0 {
        out += "GMT"
      } else if count >= 4 {
        out += "GMT" + Self.offset(f.offset, colon: true, zero: nil, seconds: true)
      } else {
        let magnitude = abs(f.offset)
        out += "GMT" + (f.offset < 0 ? "-" : "+") + String(magnitude / 3600)
        if magnitude % 3600 != 0 { out += ":" + Self.padded(magnitude / 60 % 60, 2) }
      }
    default: break
    }
  }

  static func padded(_ value: Int, _ width: Int) -> String {
    let digits = String(value.magnitude)
    // UTF-8 length: digits are ASCII, and `count` would walk grapheme clusters.
    let length = digits.utf8.count
    let body = length >= width ? digits : String(repeating: "0", count: width - length) + digits
    return value < 0 ? "-" + body : body
  }

  /// `yy` is the last two digits of the magnitude (year -1 is `01`); other counts pad to the count.
  static func year(_ value: Int, _ count: Int) -> String {
    count == 2 ? padded(abs(value) % 100, 2) : padded(value, count)
  }

  /// The milliseconds as a fraction of the second in `count` digits, truncated, as Joda-Time prints
  /// it: at most 15 digits, except that a zero fraction is `count` zeros.
  static func fraction(_ milliseconds: Int, _ count: Int) -> String {
    let digits = milliseconds == 0 ? count : min(count, 15)
    let text = padded(milliseconds, 3)
    return digits <= 3 ? String(text.prefix(digits)) : text + String(repeating: "0", count: digits - 3)
  }

  /// `+hhmm`, `+hh:mm`, with `:ss` or `ss` when `seconds` is set and the seconds are not zero.
  static func offset(_ seconds: Int, colon: Bool, zero: String?, seconds showSeconds: Bool = false) -> String
  {
    if seconds == 0, let zero { return zero }
    let magnitude = abs(seconds)
    var text =
      (seconds < 0 ? "-" : "+") + padded(magnitude / 3600, 2) + (colon ? ":" : "")
      + padded(magnitude / 60 % 60, 2)
    if showSeconds, magnitude % 60 != 0 { text += (colon ? ":" : "") + padded(magnitude % 60, 2) }
    return text
  }
}
