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

  /// The id as written: what `ZZZ` and `VV` print.
  var id: String {
    switch self {
    case .fixed(_, let id), .region(_, let id): id
    }
  }

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

  /// Ids Joda-Time names `UTC` / `Coordinated Universal Time`.
  static let utcAliases: Set<String> = [
    "UTC", "Z", "UT", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal",
  ]
  /// Ids Joda-Time names `GMT` / `Greenwich Mean Time`.
  static let gmtAliases: Set<String> = [
    "GMT", "Etc/GMT", "GMT+0", "GMT-0", "GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "Greenwich",
    "Etc/Greenwich",
  ]

  /// The short name at an instant: `CST`, `CEST`, `UTC`; a fixed offset prints its id, except the
  /// aliases of UTC and GMT, which print `UTC` and `GMT` as Joda-Time does (`Etc/UTC`, `Zulu`).
  func shortName(atEpochSeconds epochSeconds: Int) -> String {
    switch self {
    case .fixed(_, let id):
      if Self.utcAliases.contains(id) && id != "UT" && id != "Z" { return "UTC" }
      return Self.gmtAliases.contains(id) ? "GMT" : id
    case .region(let zone, let id):
      let date = Date(timeIntervalSince1970: Double(epochSeconds))
      let daylight = zone.isDaylightSavingTime(for: date)
      let offset = zone.secondsFromGMT(for: date)
      if let name = TimeZoneNames.abbreviation(zone: id, offset: offset, daylight: daylight) { return name }
      // No letters for this offset (the tz database writes `-03`): Joda-Time prints the JDK's name
      // (`BRT`), or the JDK's form of the offset for a zone it has no name for (`GMT+04:00`).
      // (The system's localized short name follows the zone's rules of today, not of the instant:
      // `GMT-3` for São Paulo in its summer of 2018, at -02:00.)
      if let name = JDKZoneNames.short(id, daylight: daylight) { return name }
      return "GMT" + DateTimePattern.offset(offset, colon: true, zero: "", seconds: true)
    }
  }

  /// The long name at an instant: `Central Standard Time`; a fixed offset prints its id.
  func longName(atEpochSeconds epochSeconds: Int) -> String {
    switch self {
    case .fixed(_, let id):
      if Self.utcAliases.contains(id) { return "Coordinated Universal Time" }
      return Self.gmtAliases.contains(id) ? "Greenwich Mean Time" : id
    case .region(let zone, let id):
      let date = Date(timeIntervalSince1970: Double(epochSeconds))
      let daylight = zone.isDaylightSavingTime(for: date)
      if let name = JDKZoneNames.long(id, daylight: daylight) { return name }
      return zone.localizedName(for: daylight ? .daylightSaving : .standard, locale: TimeZoneNames.english)
        ?? id
    }
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
      guard let seconds = parseOffset(Substring(id)) else { return nil }
      return .fixed(seconds: seconds, id: id)
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

  /// A whole offset text: `+h`, `+hh`, `+hhmm`, `+hh:mm`, `+hh:mm:ss`, at most ±18 hours.
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
    guard total <= 18 * 3600 else { return nil }
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

/// Short zone names as java.time prints them (`CET`, `IST`, `AEST`), which ICU's English names
/// often lack (`GMT+1`): read from the system's tz database files, keyed by offset and daylight.
enum TimeZoneNames {
  static let english = Locale(identifier: "en_US")

  private struct Key: Hashable {
    var offset: Int
    var daylight: Bool
  }

  private static let cache = Mutex<[String: [Key: String]]>([:])

  static func abbreviation(zone id: String, offset: Int, daylight: Bool) -> String? {
    let table =
      cache.withLock { $0[id] }
      ?? {
        let loaded = load(id)
        cache.withLock { $0[id] = loaded }
        return loaded
      }()
    return table[Key(offset: offset, daylight: daylight)]
  }

  /// Reads the TZif file of `id`; the abbreviation of the latest transition to each (offset,
  /// daylight) pair wins. Numeric abbreviations (`-03`) are skipped.
  private static func load(_ id: String) -> [Key: String] {
    guard !id.contains(".."), let data = FileManager.default.contents(atPath: "/usr/share/zoneinfo/" + id)
    else {
      return [:]
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 44, bytes[0..<4].elementsEqual(Array("TZif".utf8)) else { return [:] }
    func int32(_ at: Int) -> Int {
      guard at + 4 <= bytes.count else { return 0 }
      return Int(
        Int32(
          bitPattern: UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8
            | UInt32(bytes[at + 3])))
    }
    func counts(_ base: Int) -> (utc: Int, std: Int, leap: Int, time: Int, type: Int, chars: Int) {
      (
        int32(base + 20), int32(base + 24), int32(base + 28), int32(base + 32), int32(base + 36),
        int32(base + 40)
      )
    }
    var base = 0
    var header = counts(0)
    var timeSize = 4
    if bytes[4] >= UInt8(ascii: "2") {
      base =
        44 + header.time * 4 + header.time + header.type * 6 + header.chars + header.leap * 8 + header.std
        + header.utc
      guard base + 44 <= bytes.count else { return [:] }
      header = counts(base)
      timeSize = 8
    }
    let transitionTypes = base + 44 + header.time * timeSize
    let types = transitionTypes + header.time
    let characters = types + header.type * 6
    guard characters + header.chars <= bytes.count else { return [:] }
    func entry(_ index: Int) -> (Key, String)? {
      guard index >= 0, index < header.type else { return nil }
      let at = types + index * 6
      let start = characters + Int(bytes[at + 5])
      guard start < characters + header.chars else { return nil }
      var end = start
      while end < characters + header.chars, bytes[end] != 0 { end += 1 }
      let name = String(decoding: bytes[start..<end], as: UTF8.self)
      guard let first = name.unicodeScalars.first, CharacterSet.letters.contains(first) else { return nil }
      return (Key(offset: int32(at), daylight: bytes[at + 4] != 0), name)
    }
    var table: [Key: String] = [:]
    for index in 0..<header.type {
      if let (key, name) = entry(index), table[key] == nil { table[key] = name }
    }
    for transition in 0..<header.time {
      if let (key, name) = entry(Int(bytes[transitionTypes + transition])) { table[key] = name }
    }
    return table
  }
}
