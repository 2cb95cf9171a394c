import Foundation
import Synchronization

/// A time zone as the time functions see it: a fixed offset (`UTC`, `+01:00`, `UTC+01:00`) or a
/// region of the tz database (`America/Belize`), whose offsets come from Foundation's `TimeZone`.
enum TimeZoneRule: Sendable {
  /// A fixed offset in seconds east of UTC, and the id it was written as.
  case fixed(seconds: Int, id: String)
  /// A tz-database region and the id it was written as.
  case region(TimeZone, id: String)

  /// UTC, the default zone of `parse_time`.
  static let utc = TimeZoneRule.fixed(seconds: 0, id: "UTC")

  /// The id as written (a bare offset as Joda-Time writes it: `+01:00` for `+0100`): what `VV`
  /// prints.
  var id: String {
    switch self {
    case .fixed(_, let id), .region(_, let id): id
    }
  }

  /// The id Joda-Time resolves this zone to, which `ZZZ` prints: `America/Los_Angeles` for
  /// `US/Pacific`, `Etc/GMT` for `GMT+0`; an id Joda does not know as written.
  var canonicalID: String { JodaZoneNames.zone(id)?.id ?? id }

  /// Seconds east of UTC at the instant `epochSeconds`.
  func offset(atEpochSeconds epochSeconds: Int) -> Int {
    switch self {
    case .fixed(let seconds, _): seconds
    case .region(let zone, _): zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(epochSeconds)))
    }
  }

  /// The instant of the local date-time `localSeconds` (seconds since 1970-01-01T00:00 local), as
  /// java.time resolves it: in an overlap the earlier instant, in a gap the local time moved
  /// forward by the length of the gap.
  func epochSeconds(fromLocal localSeconds: Int) -> Int {
    guard case .region = self else { return localSeconds - offset(atEpochSeconds: localSeconds) }
    let before = offset(atEpochSeconds: localSeconds - 86_400)
    let after = offset(atEpochSeconds: localSeconds + 86_400)
    let valid = Set([before, after]).filter { offset(atEpochSeconds: localSeconds - $0) == $0 }
    if let largest = valid.max() { return localSeconds - largest }
    return localSeconds - before
  }

  /// Ids of UTC, read as a fixed zone.
  static let utcAliases: Set<String> = [
    "UTC", "Z", "UT", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal",
  ]
  /// Ids of GMT, read as a fixed zone.
  static let gmtAliases: Set<String> = [
    "GMT", "Etc/GMT", "GMT+0", "GMT-0", "GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "Greenwich",
    "Etc/Greenwich",
  ]

  /// The zone's name at an instant as Joda-Time prints it, short (`z`: `CEST`) or long (`zzzz`:
  /// `Central European Summer Time`): the JDK's name of the id Joda resolves this one to, standard
  /// or daylight as the system's tz data has the instant, or the offset (`-05:00`) for a zone the
  /// JDK has no names for. Ids Joda does not know print the offset too, except the fixed ones
  /// (`UTC+01:00`, `UT`, `Z`), which print as written (`UT` and `Z` long as UTC's name).
  func name(atEpochSeconds epochSeconds: Int, long: Bool) -> String {
    let names: JodaZoneNames.Names?
    var daylight = false
    switch self {
    case .fixed(_, let id):
      guard let zone = JodaZoneNames.zone(id) else {
        return long && (id == "UT" || id == "Z") ? "Coordinated Universal Time" : id
      }
      names = zone.names
    case .region(let zone, let id):
      names = JodaZoneNames.zone(id)?.names
      daylight = zone.isDaylightSavingTime(for: Date(timeIntervalSince1970: Double(epochSeconds)))
    }
    guard let names else {
      return DateTimePattern.offset(
        offset(atEpochSeconds: epochSeconds), colon: true, zero: nil, seconds: true)
    }
    return long
      ? (daylight ? names.longDaylight : names.long) : (daylight ? names.shortDaylight : names.short)
  }

  /// The zone named `id`: `UTC`, `GMT`, `UT`, `Z`, those followed by an offset, a bare offset
  /// (`+01:00`, `-0530`, `+05`), or a tz-database region. Nil when there is none.
  static func named(_ id: String) -> TimeZoneRule? {
    if let cached = cache.withLock({ $0[id] }) { return cached }
    let rule = resolve(id)
    cache.withLock { table in
      if table.count >= 256 { table.removeAll() }
      table[id] = rule
    }
    return rule
  }

  private static let cache = Mutex<[String: TimeZoneRule?]>([:])

  private static func resolve(_ id: String) -> TimeZoneRule? {
    guard !id.isEmpty, id.count <= 64 else { return nil }
    if utcAliases.contains(id) || gmtAliases.contains(id) {
      return .fixed(seconds: 0, id: id)
    }
    for prefix in ["UTC", "GMT", "UT"] where id.hasPrefix(prefix) {
      let rest = id.dropFirst(prefix.count)
      if let first = rest.first, first == "+" || first == "-" {
        guard let seconds = parseOffset(Substring(rest)) else { return nil }
        return .fixed(seconds: seconds, id: id)
      }
    }
    if let first = id.first, first == "+" || first == "-" {
      // Joda-Time's id of the offset: `+01:00` for `+0100` or `+01`, and UTC for zero.
      guard let seconds = parseOffset(Substring(id)) else { return nil }
      guard seconds != 0 else { return utc }
      return .fixed(
        seconds: seconds, id: DateTimePattern.offset(seconds, colon: true, zero: nil, seconds: true))
    }
    // tz database names: letters, digits, `_`, `-`, `+` and `/` (`America/Port-au-Prince`,
    // `EST5EDT`, `W-SU`, `Etc/GMT+5`); never a path out of the database.
    guard
      id.unicodeScalars.allSatisfy({
        ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0)
          || "_-+/".unicodeScalars.contains($0)
      }),
      !id.hasPrefix("/"), !id.contains(".."), let zone = TimeZone(identifier: id)
    else { return nil }
    return .region(zone, id: id)
  }

  /// A whole offset text: `+h`, `+hh`, `+hhmm`, `+hh:mm`, `+hh:mm:ss`, at most ±23:59:59.
  static func parseOffset(_ text: Substring) -> Int? {
    var scanner = OffsetScanner(text: Array(text.utf8), position: 0)
    guard let seconds = scanner.scan(allowColon: true), scanner.position == scanner.text.count else {
      return nil
    }
    return seconds
  }
}

/// Reads `±h[h][[:]mm[[:]ss]]` from UTF-8 bytes.
struct OffsetScanner {
  let text: [UInt8]
  var position: Int

  mutating func scan(allowColon: Bool) -> Int? {
    guard position < text.count, text[position] == UInt8(ascii: "+") || text[position] == UInt8(ascii: "-")
    else { return nil }
    let negative = text[position] == UInt8(ascii: "-")
    position += 1
    guard let hours = digits(min: 1, max: 2) else { return nil }
    var total = hours * 3600
    for unit in [60, 1] {
      let save = position
      if allowColon, position < text.count, text[position] == UInt8(ascii: ":") { position += 1 }
      guard let value = digits(min: 2, max: 2), value < 60 else {
        position = save
        break
      }
      total += value * unit
    }
    // Joda-Time's range (java.time's ZoneOffset stops at 18 hours).
    guard total < 24 * 3600 else { return nil }
    return negative ? -total : total
  }

  private mutating func digits(min: Int, max: Int) -> Int? {
    var value = 0
    var count = 0
    while count < max, position < text.count, text[position] >= 48, text[position] <= 57 {
      value = value * 10 + Int(text[position] - 48)
      position += 1
      count += 1
    }
    if count < min {
      position -= count
      return nil
    }
    return value
  }
}
