import Foundation
import Testing

@testable import IoTSQL

/// Expected values were checked against Joda-Time 2.10.14 (`parse_time`) and java.time (`time_to_epoch`),
/// on OpenJDK 17, when the rows were written.
struct TimeFunctionsTests {
  struct Row: Sendable, CustomStringConvertible {
    let arguments: [Value]
    let expected: Value
    var description: String { "\(arguments)" }
  }

  static func call(_ name: String, _ arguments: [Value], prepared: (any Sendable)? = nil) -> Value {
    let spec = FunctionRegistry.lookup(name)!
    let call = FunctionCall(
      arguments: arguments[...], context: EvaluationContext(topic: "t", payload: []),
      version: .v2016_03_23, prepared: prepared)
    return spec.implementation(call)
  }

  /// A row runs unprepared (run-time pattern) and prepared (constant pattern and zone).
  static func check(_ name: String, _ row: Row) throws {
    #expect(call(name, row.arguments) == row.expected)
    let spec = try #require(FunctionRegistry.lookup(name))
    if let prepared = try? spec.prepare?(row.arguments.map { $0 }, .v2016_03_23) {
      #expect(call(name, row.arguments, prepared: prepared) == row.expected)
    }
  }

  /// A constant pattern reuses its last text while the local time stays within the pattern's
  /// finest field (a day for `yyyy-MM-dd`): the texts are those of formatting every instant afresh,
  /// across day, hour, minute and second boundaries, in fixed zones and back and forth in time.
  @Test func reusedTextsMatchFreshOnes() throws {
    let spec = try #require(FunctionRegistry.lookup("parse_time"))
    let patterns = [
      "yyyy-MM-dd", "yyyy/MM/dd/HH", "HH:mm", "mm:ss", "xxxx-ww e ZZ", "yyyy-MM-dd HH:mm:ss.SSS",
    ]
    let zones = ["UTC", "+05:30", "-01:00", "America/Belize"]
    var generator = SeededGenerator(state: 42)
    for pattern in patterns {
      for zone in zones {
        let arguments: [Value] = [.string(pattern), .int(0), .string(zone)]
        let prepared = try #require(try spec.prepare?(arguments.map { $0 }, .v2016_03_23))
        var instant = 1_717_199_000_000
        for _ in 0..<400 {
          // Mostly small steps, some across boundaries, some backwards.
          instant += Int.random(in: -90_000...3_600_000, using: &generator)
          let fresh = Self.call("parse_time", [.string(pattern), .int(instant), .string(zone)])
          let reused = Self.call(
            "parse_time", [.string(pattern), .int(instant), .string(zone)], prepared: prepared)
          #expect(reused == fresh, "\(pattern) \(zone) \(instant)")
        }
      }
    }
  }

  static let formatRows: [Row] = [
    // The AWS guide's example.
    Row(
      arguments: [.string("yyyy.MM.dd G 'at' HH:mm:ss z"), .int(100_000_000), .string("America/Belize")],
      expected: .string("1970.01.01 AD at 21:46:40 CST")),
    // Default zone UTC; fractions; before 1970.
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm:ss.SSS"), .int(1_196_705_730_592)],
      expected: .string("2007-12-03 18:15:30.592")),
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm:ss.SSS"), .int(-1)], expected: .string("1969-12-31 23:59:59.999")),
    Row(
      arguments: [.string("yyyy-MM-dd'T'HH:mm:ssZZ z"), .int(0)],
      expected: .string("1970-01-01T00:00:00+00:00 UTC")),
    Row(arguments: [.string("hh 'o''clock' a"), .int(0)], expected: .string("12 o'clock AM")),
    Row(arguments: [.string("S SS SSSS"), .int(1_234)], expected: .string("2 23 2340")),
    Row(arguments: [.string("yy D k K"), .int(1_609_459_200_000 - 1)], expected: .string("20 366 23 11")),
    // Joda's x/w/e: the ISO week date. 2021-01-01 is a Friday in week 53 of 2020.
    Row(
      arguments: [.string("xxxx-'W'ww-e EEE"), .int(1_609_459_200_000)], expected: .string("2020-W53-5 Fri")),
    // Text, zones and DST.
    Row(
      arguments: [.string("EEEE, MMMM d, yyyy h:mm a z"), .int(1_585_903_518_000), .string("Europe/Paris")],
      expected: .string("Friday, April 3, 2020 10:45 AM CEST")),
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm z"), .int(1_615_715_940_000), .string("America/Los_Angeles")],
      expected: .string("2021-03-14 01:59 PST")),
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm z"), .int(1_615_716_000_000), .string("America/Los_Angeles")],
      expected: .string("2021-03-14 03:00 PDT")),
    Row(
      arguments: [.string("z"), .int(1_577_836_800_000), .string("Australia/Sydney")],
      expected: .string("AEDT")),
    Row(
      arguments: [.string("z zzzz Z ZZ ZZZ"), .int(0), .string("Asia/Kolkata")],
      expected: .string("IST India Standard Time +0530 +05:30 Asia/Kolkata")),
    // The aliases of UTC and GMT are named as Joda-Time names them (they printed their ids).
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("Etc/UTC")],
      expected: .string("UTC|Coordinated Universal Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("Zulu")],
      expected: .string("UTC|Coordinated Universal Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("GMT")], expected: .string("GMT|Greenwich Mean Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("Etc/GMT")],
      expected: .string("GMT|Greenwich Mean Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("GMT+0")], expected: .string("GMT|Greenwich Mean Time")),
    // Joda's names are the JDK's for the zone, standard or daylight by the instant, whatever the tz
    // database's letters (it writes -02 for São Paulo's summer of 2018, -02:00: BRST); the JDK's
    // own form of the offset where that is its name (Astrakhan).
    Row(
      arguments: [.string("z ZZ"), .int(1_516_000_000_000), .string("America/Sao_Paulo")],
      expected: .string("BRST -02:00")),
    Row(arguments: [.string("z"), .int(1_720_000_000_000), .string("Asia/Dubai")], expected: .string("GST")),
    Row(
      arguments: [.string("z"), .int(1_720_000_000_000), .string("Europe/Astrakhan")],
      expected: .string("GMT+04:00")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_720_000_000_000), .string("Europe/Istanbul")],
      expected: .string("TRT|Turkey Time")),
    // The JDK's names of the id Joda resolves a link to (Singapore is Asia/Singapore, SGT, where the
    // tz letters say +08), also at local mean time (1799 in New York and 1900 in Kolkata print EST
    // and IST, not LMT or MMT), and the offset for a zone the JDK has no names for (Etc/GMT+5).
    Row(
      arguments: [.string("z|zzzz"), .int(1_705_320_000_000), .string("Singapore")],
      expected: .string("SGT|Singapore Standard Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_705_320_000_000), .string("Turkey")],
      expected: .string("TRT|Turkey Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_705_320_000_000), .string("NZ-CHAT")],
      expected: .string("CHADT|Chatham Daylight Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_705_320_000_000), .string("America/Adak")],
      expected: .string("HAST|Hawaii-Aleutian Standard Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_721_044_800_000), .string("US/Aleutian")],
      expected: .string("HADT|Hawaii-Aleutian Daylight Time")),
    Row(
      arguments: [.string("yyyy-MM-dd z"), .int(-5_364_662_400_000), .string("America/New_York")],
      expected: .string("1799-12-31 EST")),
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm:ss z"), .int(-2_208_988_800_000), .string("Asia/Kolkata")],
      expected: .string("1900-01-01 05:21:10 IST")),
    Row(
      arguments: [.string("z zzzz"), .int(1_705_320_000_000), .string("Etc/GMT+5")],
      expected: .string("-05:00 -05:00")),
    Row(
      arguments: [.string("z zzzz"), .int(1_705_320_000_000), .string("Etc/GMT-14")],
      expected: .string("+14:00 +14:00")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("CET")], expected: .string("CET|Central European Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_721_044_800_000), .string("MET")],
      expected: .string("MEST|Middle Europe Summer Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(0), .string("HST")], expected: .string("HST|Hawaii Standard Time")),
    Row(
      arguments: [.string("z|zzzz"), .int(1_721_044_800_000), .string("Europe/Dublin")],
      expected: .string("IST|Irish Standard Time")),
    // An id of the JDK's names that Joda does not know: the names its lookup gives for that id.
    Row(
      arguments: [.string("z|zzzz"), .int(1_721_044_800_000), .string("Europe/Kyiv")],
      expected: .string("EEST|Eastern European Summer Time")),
    // ZZZ is the id Joda resolves the zone to; an offset id is written as Joda writes it, and
    // zero is UTC.
    Row(
      arguments: [.string("ZZZ"), .int(0), .string("US/Pacific")], expected: .string("America/Los_Angeles")),
    Row(arguments: [.string("ZZZ"), .int(0), .string("Asia/Calcutta")], expected: .string("Asia/Kolkata")),
    Row(arguments: [.string("ZZZ"), .int(0), .string("GMT0")], expected: .string("Etc/GMT")),
    Row(arguments: [.string("ZZZ"), .int(0), .string("Egypt")], expected: .string("Africa/Cairo")),
    Row(
      arguments: [.string("z|zzzz|ZZZ"), .int(0), .string("UCT")],
      expected: .string("UTC|Coordinated Universal Time|Etc/UTC")),
    Row(
      arguments: [.string("z|zzzz|ZZZ"), .int(0), .string("+0100")], expected: .string("+01:00|+01:00|+01:00")
    ),
    Row(
      arguments: [.string("z|zzzz|ZZZ"), .int(0), .string("+01:30:15")],
      expected: .string("+01:30:15|+01:30:15|+01:30:15")),
    Row(
      arguments: [.string("z|zzzz|ZZZ"), .int(0), .string("-00:00")],
      expected: .string("UTC|Coordinated Universal Time|UTC")),
    // Joda-Time takes offsets up to 23:59:59 either way (java.time stops at 18 hours).
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm z"), .int(0), .string("+19:00")],
      expected: .string("1970-01-01 19:00 +19:00")),
    Row(
      arguments: [.string("yyyy-MM-dd HH:mm ZZ"), .int(0), .string("-23:59")],
      expected: .string("1969-12-31 00:01 -23:59")),
    Row(arguments: [.string("HH:mm"), .int(0), .string("+24:00")], expected: .undefined),
    // Years up to 0: two-digit years are those of the year's magnitude, the century of era is the
    // magnitude's (year -1, year -99, year 0, year -100).
    Row(
      arguments: [.string("yy YY xx C CC"), .int(-62_198_755_200_000)], expected: .string("01 01 02 0 00")),
    Row(
      arguments: [.string("yy YY xx C CC yyyy YYYY"), .int(-65_275_804_800_000)],
      expected: .string("99 99 99 0 00 -0099 0100")),
    Row(
      arguments: [.string("yy YY xx C CC"), .int(-62_167_219_200_000)], expected: .string("00 00 01 0 00")),
    Row(arguments: [.string("yy YY C CC"), .int(-65_307_427_200_000)], expected: .string("00 00 1 01")),
    Row(
      arguments: [.string("yy YY xx C CCC"), .int(1_585_872_000_000)], expected: .string("20 20 20 20 020")),
    // At most 15 fraction digits, except for a zero fraction.
    Row(arguments: [.string("SSSSSSSSSSSSSSSS"), .int(123)], expected: .string("123000000000000")),
    Row(arguments: [.string("SSSSSSSSSSSSSSSSSSSS"), .int(5)], expected: .string("005000000000000")),
    Row(arguments: [.string("SSSSSSSSSSSSSSSS"), .int(0)], expected: .string("0000000000000000")),
    // tz names with digits and hyphens.
    Row(arguments: [.string("HH z"), .int(0), .string("EST5EDT")], expected: .string("19 EST")),
    Row(arguments: [.string("HH z"), .int(0), .string("W-SU")], expected: .string("03 MSK")),
    Row(arguments: [.string("HH"), .int(0), .string("Etc/GMT+5")], expected: .string("19")),
    // Joda-Time: an unclosed quote quotes the rest of the pattern.
    Row(arguments: [.string("yyyy 'rest"), .int(0)], expected: .string("1970 rest")),
    // Joda refuses an empty pattern, and prints nothing with one of empty quotes: Undefined.
    Row(arguments: [.string(""), .int(0)], expected: .undefined),
    Row(arguments: [.string("'"), .int(0)], expected: .undefined),
    Row(arguments: [.string("''"), .int(0)], expected: .string("'")),
    Row(
      arguments: [.string("X XXX VV O"), .int(0), .string("Asia/Kolkata")],
      expected: .string("+0530 +05:30 Asia/Kolkata GMT+5:30")),
    Row(arguments: [.string("HH:mm z"), .int(0), .string("+01:00")], expected: .string("01:00 +01:00")),
    Row(arguments: [.string("HH:mm Z"), .int(0), .string("UTC-03:30")], expected: .string("20:30 -0330")),
    // Other number forms for the time.
    Row(
      arguments: [.string("HH:mm:ss"), .decimal(SQLDecimal(string: "100000000.9")!)],
      expected: .string("03:46:40")),
    Row(arguments: [.string("HH:mm:ss"), .string("100000000")], expected: .string("03:46:40")),
    Row(arguments: [.string("SSS"), .string("12")], expected: .string("012")),
    // Spaces around a numeric string make it no number, as in every other numeric conversion.
    Row(arguments: [.string("SSS"), .string(" 12")], expected: .undefined),
    Row(arguments: [.string("SSS"), .string("12 ")], expected: .undefined),
    // Undefined results.
    Row(arguments: [.null, .int(0)], expected: .undefined),
    Row(arguments: [.string("yyyy"), .undefined], expected: .undefined),
    Row(arguments: [.string("yyyy"), .bool(true)], expected: .undefined),
    Row(arguments: [.string("yyyy"), .string("soon")], expected: .undefined),
    Row(arguments: [.string("yyyy"), .int(0), .string("Mars/Olympus_Mons")], expected: .undefined),
    Row(arguments: [.string("yyyy"), .int(0), .string("../../etc/passwd")], expected: .undefined),
    Row(arguments: [.string("yyyy"), .int(0), .string("/etc/localtime")], expected: .undefined),
    Row(arguments: [.string("yyyy"), .int(0), .string("Europe/Paris ")], expected: .undefined),
    Row(arguments: [.string("yyyy"), .int(0), .null], expected: .undefined),
    Row(arguments: [.string("yyyy bb"), .int(0)], expected: .undefined),
  ]

  @Test(arguments: formatRows)
  func parseTime(_ row: Row) throws { try Self.check("parse_time", row) }

  static let parseRows: [Row] = [
    // A date is a year with a month and day, or with a day of the year, as the JDK resolves one;
    // the time of day defaults to midnight (AWS's example), the date to nothing (a syslog stamp
    // without its year was 1970-06-01).
    Row(arguments: [.string("Jun 1 12:00:59"), .string("MMM d HH:mm:ss")], expected: .undefined),
    Row(arguments: [.string("12:00:59"), .string("HH:mm:ss")], expected: .undefined),
    Row(arguments: [.string("2024"), .string("yyyy")], expected: .undefined),
    Row(arguments: [.string("2024-06"), .string("yyyy-MM")], expected: .undefined),
    Row(arguments: [.string("06/01 12:00"), .string("MM/dd HH:mm")], expected: .undefined),
    Row(arguments: [.string(""), .string("")], expected: .undefined),
    Row(
      arguments: [.string("18 December 2015"), .string("dd MMMM yyyy")], expected: .int(1_450_396_800_000)),
    Row(arguments: [.string("2024-153"), .string("yyyy-DDD")], expected: .int(1_717_200_000_000)),
    // The day of the year makes the date, with a month or day it must agree with (JDK 17).
    Row(arguments: [.string("2024-03-070"), .string("yyyy-MM-DDD")], expected: .int(1_710_028_800_000)),
    Row(arguments: [.string("2024 070 10"), .string("yyyy DDD dd")], expected: .int(1_710_028_800_000)),
    Row(arguments: [.string("2024 070 11"), .string("yyyy DDD dd")], expected: .undefined),
    Row(arguments: [.string("2024-03-10 071"), .string("yyyy-MM-dd DDD")], expected: .undefined),
    Row(arguments: [.string("2024-02-070"), .string("yyyy-MM-DDD")], expected: .undefined),
    Row(
      arguments: [.string("2024-03-070 Sun"), .string("yyyy-MM-DDD EEE")], expected: .int(1_710_028_800_000)),
    // Offsets as java.time's strict parser reads each letter's pattern (checked against JDK 17 on
    // 612 and 6,000 generated texts): at most 18 hours, `ZZ` `+HHMM` only, `X` `+HH[mm]` with no
    // colon, `x`'s zero text `+00` read first (`+0030` leaves `30` unread).
    Row(arguments: [.string("1970-01-01 18:00 +1800"), .string("yyyy-MM-dd HH:mm ZZ")], expected: .int(0)),
    Row(
      arguments: [.string("1970-01-01 19:00 +1900"), .string("yyyy-MM-dd HH:mm ZZ")], expected: .undefined),
    Row(
      arguments: [.string("1970-01-01 19:00 +19:00"), .string("yyyy-MM-dd HH:mm ZZ")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 +05:00"), .string("yyyy-MM-dd HH:mm X")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 +0530"), .string("yyyy-MM-dd HH:mm X")],
      expected: .int(1_577_853_000_000)),
    Row(
      arguments: [.string("2020-01-01 10:00 +0030"), .string("yyyy-MM-dd HH:mm x")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 +05:00:30"), .string("yyyy-MM-dd HH:mm xxxxx")],
      expected: .int(1_577_854_770_000)),
    Row(
      arguments: [.string("2020-06-15 12:00 UTC+05"), .string("yyyy-MM-dd HH:mm VV[XXX]")],
      expected: .undefined
    ),
    Row(
      arguments: [.string("2020-01-01 10:00 GMT+5:30"), .string("yyyy-MM-dd HH:mm O")],
      expected: .int(1_577_853_000_000)),
    Row(
      arguments: [.string("2020-01-01 10:00 GMT+5"), .string("yyyy-MM-dd HH:mm OOOO")], expected: .undefined),
    // The AWS guide's examples.
    Row(
      arguments: [.string("2020-04-03 09:45:18 UTC+01:00"), .string("yyyy-MM-dd HH:mm:ss VV")],
      expected: .int(1_585_903_518_000)),
    Row(
      arguments: [.string("18 December 2015"), .string("dd MMMM yyyy")], expected: .int(1_450_396_800_000)),
    Row(
      arguments: [
        .string("2007-12-03 10:15:30.592 America/Los_Angeles"), .string("yyyy-MM-dd HH:mm:ss.SSS z"),
      ],
      expected: .int(1_196_705_730_592)),
    // Offsets.
    Row(
      arguments: [.string("2020-04-03T09:45:18Z"), .string("yyyy-MM-dd'T'HH:mm:ssX")],
      expected: .int(1_585_907_118_000)),
    Row(
      arguments: [.string("2020-04-03 09:45:18 +0100"), .string("yyyy-MM-dd HH:mm:ss Z")],
      expected: .int(1_585_903_518_000)),
    Row(
      arguments: [.string("2020-04-03 09:45:18 GMT+01:00"), .string("yyyy-MM-dd HH:mm:ss O")],
      expected: .int(1_585_903_518_000)),
    // A zone's full name with zzzz only, a short name with z to zzz only (java.time's zone text
    // parser, JDK 9 and later).
    Row(
      arguments: [.string("2020-04-03 09:45:18 Pacific Daylight Time"), .string("yyyy-MM-dd HH:mm:ss zzzz")],
      expected: .int(1_585_932_318_000)),
    Row(
      arguments: [
        .string("2020-04-03 09:45:18 Coordinated Universal Time"), .string("yyyy-MM-dd HH:mm:ss zzzz"),
      ],
      expected: .int(1_585_907_118_000)),
    Row(
      arguments: [
        .string("2020-04-03 09:45:18 Coordinated Universal Time"), .string("yyyy-MM-dd HH:mm:ss z"),
      ],
      expected: .undefined),
    Row(
      arguments: [.string("2020-07-01 10:00 PST"), .string("yyyy-MM-dd HH:mm zzzz")], expected: .undefined),
    // Every short name java.time reads, each to the zone the JDK sends it (JDK 17, Locale.US),
    // ambiguous ones included: IST is GMT (Africa/Abidjan), BST Bougainville, AST Atlantic, NST
    // Newfoundland, ART Argentina, SST Pago Pago, ACST Rio Branco.
    Row(
      arguments: [.string("2020-07-01 10:00 HKT"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_568_800_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 SGT"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_568_800_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 MSK"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_586_800_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 NZST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_554_400_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 ChST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_561_600_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 AST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_608_400_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 NST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_606_600_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 ART"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_608_400_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 IST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_597_600_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 BST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_558_000_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 SST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_637_200_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 ACST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_593_615_600_000)),
    // A daylight name reads its zone's offset of the day (PDT in January is -08:00).
    Row(
      arguments: [.string("2020-01-01 10:00 PDT"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_577_901_600_000)),
    // The longest match of names and ids; ids java.time's zone text parser does not read.
    Row(
      arguments: [.string("2020-01-01 10:00 EST5EDT"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_577_890_800_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 Etc/GMT+5"), .string("yyyy-MM-dd HH:mm z")], expected: .undefined),
    Row(
      arguments: [.string("2020-07-01 10:00 Etc/GMT+5"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_593_615_600_000)),
    // java.time's zone ids only (not the old `EST`, `HST`, nor the system's `posix/...`), and its
    // offsets `±HH:MM[:ss]` alone or after UTC, GMT or UT: `UTC+05` is UTC with `+05` left unread,
    // `+5` no zone (all were read; checked against JDK 17 on 3,957 zone texts).
    Row(arguments: [.string("2020-01-01 10:00 HST"), .string("yyyy-MM-dd HH:mm VV")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 posix/Europe/Paris"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 UTC+05"), .string("yyyy-MM-dd HH:mm VV")], expected: .undefined),
    Row(arguments: [.string("2020-01-01 10:00 +0500"), .string("yyyy-MM-dd HH:mm z")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 GMT-5"), .string("yyyy-MM-dd HH:mm zzzz")], expected: .undefined),
    Row(
      arguments: [.string("2020-01-01 10:00 UT-05:30:15"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_577_892_615_000)),
    Row(
      arguments: [.string("2020-01-01 10:00 GMT0"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_577_872_800_000)),
    Row(
      arguments: [.string("2020-01-01 10:00 Z"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_577_872_800_000)),
    Row(
      arguments: [.string("2020-07-01 10:00 India Standard Time"), .string("yyyy-MM-dd HH:mm zzzz")],
      expected: .int(1_593_577_800_000)),
    Row(
      arguments: [.string("Japan Standard Time 2020-04-03 09:45"), .string("zzzz yyyy-MM-dd HH:mm")],
      expected: .int(1_585_874_700_000)),
    Row(
      arguments: [.string("2020-04-03 09:45:18 Nowhere Standard Time"), .string("yyyy-MM-dd HH:mm:ss zzzz")],
      expected: .undefined),
    // DST: a gap moves forward, an overlap takes the earlier instant; an abbreviation names a region.
    Row(
      arguments: [.string("2021-03-14 02:30 America/Los_Angeles"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_615_717_800_000)),
    Row(
      arguments: [.string("2021-11-07 01:30 America/Los_Angeles"), .string("yyyy-MM-dd HH:mm VV")],
      expected: .int(1_636_273_800_000)),
    Row(
      arguments: [.string("2015-12-18 10:00 PST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_450_461_600_000)),
    // Fields.
    Row(
      arguments: [.string("03/04/20 9:45 PM"), .string("dd/MM/yy h:mm a")], expected: .int(1_585_950_300_000)),
    Row(arguments: [.string("20200403"), .string("yyyyMMdd")], expected: .int(1_585_872_000_000)),
    Row(
      arguments: [.string("Fri, 03 Apr 2020"), .string("EEE, dd MMM yyyy")], expected: .int(1_585_872_000_000)
    ),
    Row(
      arguments: [.string("2020-04-03 09:45:18.5"), .string("yyyy-MM-dd HH:mm:ss.S")],
      expected: .int(1_585_907_118_500)),
    Row(arguments: [.string("2020-094"), .string("yyyy-DDD")], expected: .int(1_585_872_000_000)),
    Row(
      arguments: [.string("2020-04-03 24:00"), .string("yyyy-MM-dd kk:mm")], expected: .int(1_585_872_000_000)
    ),
    // SMART takes clock hour 0 as hour 0 (`kk`, and `hh` with AM/PM).
    Row(
      arguments: [.string("2020-04-03 00:00"), .string("yyyy-MM-dd kk:mm")], expected: .int(1_585_872_000_000)
    ),
    Row(
      arguments: [.string("2020-04-03 00:30 PM"), .string("yyyy-MM-dd hh:mm a")],
      expected: .int(1_585_917_000_000)),
    Row(arguments: [.string("2020-04-03 13:00 PM"), .string("yyyy-MM-dd hh:mm a")], expected: .undefined),
    // java.time's smart resolver reads HH 24:00 as the end of the day (the next midnight); 24:01 is refused.
    Row(
      arguments: [.string("2020-04-03 24:00"), .string("yyyy-MM-dd HH:mm")], expected: .int(1_585_958_400_000)
    ),
    Row(arguments: [.string("2020-04-03 24:01"), .string("yyyy-MM-dd HH:mm")], expected: .undefined),
    // java.time's smart resolver clamps the day to the month.
    Row(arguments: [.string("2021-02-30"), .string("yyyy-MM-dd")], expected: .int(1_614_470_400_000)),
    // Refusals: range, case, trailing text, day-of-week conflict, Null and Undefined.
    Row(arguments: [.string("2021-13-01"), .string("yyyy-MM-dd")], expected: .undefined),
    Row(arguments: [.string("18 december 2015"), .string("dd MMMM yyyy")], expected: .undefined),
    Row(arguments: [.string("2021-01-01x"), .string("yyyy-MM-dd")], expected: .undefined),
    Row(arguments: [.string("Thu, 03 Apr 2020"), .string("EEE, dd MMM yyyy")], expected: .undefined),
    Row(
      arguments: [.string("2020-04-03 09:45 Mars/Base"), .string("yyyy-MM-dd HH:mm VV")], expected: .undefined
    ),
    Row(arguments: [.null, .string("yyyy")], expected: .undefined),
    Row(arguments: [.string("2020"), .undefined], expected: .undefined),
    Row(arguments: [.string("2020"), .string("yyyy-ww")], expected: .undefined),
    // Years: with 4 letters or more a sign is allowed, `+` only before more digits than letters, and
    // more digits need one (SignStyle.EXCEEDS_PAD); with fewer only `-`; a year of era is never
    // negative; -0 is no year.
    Row(arguments: [.string("-0001-01-01"), .string("uuuu-MM-dd")], expected: .int(-62_198_755_200_000)),
    Row(arguments: [.string("+10000-01-01"), .string("uuuu-MM-dd")], expected: .int(253_402_300_800_000)),
    Row(arguments: [.string("+10000-01-01"), .string("yyyy-MM-dd")], expected: .int(253_402_300_800_000)),
    Row(arguments: [.string("10000-01-01"), .string("yyyy-MM-dd")], expected: .undefined),
    Row(arguments: [.string("10000-01-01"), .string("uuuu-MM-dd")], expected: .undefined),
    Row(arguments: [.string("+2020-01-01"), .string("uuuu-MM-dd")], expected: .undefined),
    Row(arguments: [.string("-0001-01-01"), .string("yyyy-MM-dd")], expected: .undefined),
    Row(arguments: [.string("-0000-01-01"), .string("uuuu-MM-dd")], expected: .undefined),
    Row(arguments: [.string("-5-01-01"), .string("u-MM-dd")], expected: .int(-62_324_985_600_000)),
    Row(arguments: [.string("+5-01-01"), .string("u-MM-dd")], expected: .undefined),
    Row(arguments: [.string("10000-01-01"), .string("u-MM-dd")], expected: .int(253_402_300_800_000)),
    Row(arguments: [.string("-012-01-01"), .string("uuu-MM-dd")], expected: .int(-62_545_910_400_000)),
    Row(arguments: [.string("-12-01-01"), .string("uuu-MM-dd")], expected: .undefined),
    Row(arguments: [.string("+100000403"), .string("uuuuMMdd")], expected: .int(253_410_336_000_000)),
    Row(arguments: [.string("-00010403"), .string("uuuuMMdd")], expected: .int(-62_190_806_400_000)),
    // EST and MST are New York's and Denver's time, daylight saving in summer, not the fixed zones.
    Row(
      arguments: [.string("2015-07-18 10:15 EST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_437_228_900_000)
    ),
    Row(
      arguments: [.string("2015-01-18 10:15 EST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_421_594_100_000)
    ),
    Row(
      arguments: [.string("2015-07-18 10:15 MST"), .string("yyyy-MM-dd HH:mm z")],
      expected: .int(1_437_236_100_000)
    ),
    // One field given twice must agree.
    Row(arguments: [.string("2015-12-18 2016"), .string("yyyy-MM-dd yyyy")], expected: .undefined),
    Row(
      arguments: [.string("2015-12-18 2015"), .string("yyyy-MM-dd yyyy")], expected: .int(1_450_396_800_000)),
    Row(arguments: [.string("2015-12-18 Nov"), .string("yyyy-MM-dd MMM")], expected: .undefined),
    Row(
      arguments: [.string("2015-12-18 10:15 +01:00 +02:00"), .string("yyyy-MM-dd HH:mm XXX XXX")],
      expected: .undefined),
    Row(
      arguments: [.string("2015-12-18 10:15:30.5 400000000"), .string("yyyy-MM-dd HH:mm:ss.S n")],
      expected: .undefined),
    Row(
      arguments: [.string("2015-12-18 10:15:30.5 500000000"), .string("yyyy-MM-dd HH:mm:ss.S n")],
      expected: .int(1_450_433_730_500)),
    // Optional sections, as java.time parses them: taken when the whole section parses, else
    // skipped with nothing of it kept; nested; one left open ends with the pattern.
    Row(
      arguments: [.string("2020-04-03 09:45:18"), .string("yyyy-MM-dd HH:mm:ss[.SSS]")],
      expected: .int(1_585_907_118_000)),
    Row(
      arguments: [.string("2020-04-03 09:45:18.123"), .string("yyyy-MM-dd HH:mm:ss[.SSS]")],
      expected: .int(1_585_907_118_123)),
    Row(
      arguments: [.string("2020-04-03T09:45:18Z"), .string("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]")],
      expected: .int(1_585_907_118_000)),
    Row(
      arguments: [.string("2020-04-03T09:45:18.5+02:00"), .string("yyyy-MM-dd'T'HH:mm:ss[.S][XXX]")],
      expected: .int(1_585_899_918_500)),
    Row(
      arguments: [.string("2020-04-03 09:45"), .string("yyyy-MM-dd[ HH:mm[:ss]]")],
      expected: .int(1_585_907_100_000)),
    Row(
      arguments: [.string("2020-04-03 09:45:07"), .string("yyyy-MM-dd[ HH:mm[:ss]]")],
      expected: .int(1_585_907_107_000)),
    Row(arguments: [.string("2020-04-03 09"), .string("yyyy-MM-dd[ HH:mm]")], expected: .undefined),
    Row(
      arguments: [.string("2020-04-03 09:45:18.123"), .string("yyyy-MM-dd HH:mm:ss[.SSS")],
      expected: .int(1_585_907_118_123)),
    // Generic zone names read as `z` reads them; milli and nano of day, checked against the other
    // time fields; quarters, checked against the date; AM/PM alone is the middle of the half day
    // and must agree with an hour of the day (java.time's smart resolver, each row run there).
    Row(
      arguments: [.string("2021-07-01 10:15:30 PT"), .string("yyyy-MM-dd HH:mm:ss v")],
      expected: .int(1_625_159_730_000)),
    Row(
      arguments: [.string("2021-07-01 10:15:30 Pacific Time"), .string("yyyy-MM-dd HH:mm:ss vvvv")],
      expected: .int(1_625_159_730_000)),
    Row(
      arguments: [.string("2021-07-01 10:15:30 PST"), .string("yyyy-MM-dd HH:mm:ss v")],
      expected: .int(1_625_159_730_000)),
    Row(
      arguments: [.string("2021-07-01 10:15:30 Central European Time"), .string("yyyy-MM-dd HH:mm:ss vvvv")],
      expected: .int(1_625_127_330_000)),
    Row(
      arguments: [.string("2009-06-12 51347337"), .string("yyyy-MM-dd A")], expected: .int(1_244_816_147_337)),
    Row(arguments: [.string("2009-06-12 86400000"), .string("yyyy-MM-dd A")], expected: .undefined),
    Row(
      arguments: [.string("2009-06-12 14 51347337"), .string("yyyy-MM-dd HH A")],
      expected: .int(1_244_816_147_337)),
    Row(arguments: [.string("2009-06-12 10 51347337"), .string("yyyy-MM-dd HH A")], expected: .undefined),
    Row(arguments: [.string("2009-06-12 5"), .string("yyyy-MM-dd AAAA")], expected: .undefined),
    Row(
      arguments: [.string("2021-07-01 51347337 337"), .string("yyyy-MM-dd A SSS")],
      expected: .int(1_625_148_947_337)),
    Row(arguments: [.string("2021-07-01 51347337 338"), .string("yyyy-MM-dd A SSS")], expected: .undefined),
    Row(arguments: [.string("2021-07-01 51347337 AM"), .string("yyyy-MM-dd A a")], expected: .undefined),
    Row(
      arguments: [.string("2009-06-12 51347337000001"), .string("yyyy-MM-dd N")],
      expected: .int(1_244_816_147_337)),
    Row(
      arguments: [.string("2021-07-01 51347337 3371"), .string("yyyy-MM-dd A SSSS")],
      expected: .int(1_625_148_947_337)),
    Row(
      arguments: [.string("2009-06-12 51347337 51347337000001"), .string("yyyy-MM-dd A N")],
      expected: .int(1_244_816_147_337)),
    Row(
      arguments: [.string("2009-06-12 51347338 51347337000001"), .string("yyyy-MM-dd A N")],
      expected: .undefined),
    Row(
      arguments: [.string("2009-06-12 51347337 02"), .string("yyyy-MM-dd A hh")],
      expected: .int(1_244_816_147_337)),
    Row(arguments: [.string("2009-06-12 51347337 03"), .string("yyyy-MM-dd A hh")], expected: .undefined),
    Row(arguments: [.string("2021-07-01 Q3"), .string("yyyy-MM-dd QQQ")], expected: .int(1_625_097_600_000)),
    Row(arguments: [.string("2021-07-01 Q2"), .string("yyyy-MM-dd QQQ")], expected: .undefined),
    Row(arguments: [.string("2021-07-01 03"), .string("yyyy-MM-dd Q")], expected: .int(1_625_097_600_000)),
    Row(arguments: [.string("2021-07-01 3"), .string("yyyy-MM-dd QQ")], expected: .undefined),
    Row(
      arguments: [.string("2021-07-01 3rd quarter"), .string("yyyy-MM-dd qqqq")],
      expected: .int(1_625_097_600_000)),
    Row(
      arguments: [.string("2021-07-01 3"), .string("yyyy-MM-dd QQQQQ")], expected: .int(1_625_097_600_000)),
    Row(arguments: [.string("2021-07-01 PM"), .string("yyyy-MM-dd a")], expected: .int(1_625_162_400_000)),
    Row(arguments: [.string("2021-07-01 AM"), .string("yyyy-MM-dd a")], expected: .int(1_625_119_200_000)),
    Row(arguments: [.string("2021-07-01 05 PM"), .string("yyyy-MM-dd HH a")], expected: .undefined),
    Row(
      arguments: [.string("2021-07-01 12 PM"), .string("yyyy-MM-dd HH a")], expected: .int(1_625_140_800_000)),
    Row(
      arguments: [.string("2021-07-01 24 AM"), .string("yyyy-MM-dd HH a")], expected: .int(1_625_184_000_000)),
    Row(
      arguments: [.string("2021-07-01 05 30 PM"), .string("yyyy-MM-dd KK mm a")],
      expected: .int(1_625_160_600_000)),
    // One letter reads 1 to 19 digits, as java.time's appendValue(field) (jshell: 2016-12-07,
    // 2016-04-09, 2016-12-07T12:05:07); two read exactly two; `DD` two or three.
    Row(arguments: [.string("7/012/2016"), .string("d/M/yyyy")], expected: .int(1_481_068_800_000)),
    Row(arguments: [.string("2016-12-007"), .string("yyyy-MM-d")], expected: .int(1_481_068_800_000)),
    Row(arguments: [.string("2016-0100"), .string("yyyy-D")], expected: .int(1_460_160_000_000)),
    Row(
      arguments: [.string("7/12/2016 012:0005:007"), .string("d/M/yyyy H:m:s")],
      expected: .int(1_481_112_307_000)),
    Row(arguments: [.string("2016-12-007"), .string("yyyy-MM-dd")], expected: .undefined),
    Row(arguments: [.string("2016-100"), .string("yyyy-DD")], expected: .int(1_460_160_000_000)),
    Row(arguments: [.string("2016-1"), .string("yyyy-DD")], expected: .undefined),
    // A variable-width field after adjacent ones takes what they left: nothing (java.time refuses it too).
    Row(arguments: [.string("2016127"), .string("yyyyMMd")], expected: .undefined),
  ]

  @Test(arguments: parseRows)
  func timeToEpoch(_ row: Row) throws { try Self.check("time_to_epoch", row) }

  /// The week letters of `Locale.US` (`Y w W e c`: weeks begin on Sunday, the first holds January 1
  /// or the month's first day), day-of-week text as `c` and `e`, narrow names (`S` is Sunday, `J`
  /// July), the pad letter `p` and the modified Julian day `g`: every expected value is what JDK
  /// 17's `DateTimeFormatter.ofPattern(pattern, Locale.US)` gives (a date at midnight UTC), over
  /// dates it formatted itself and the same texts with one digit changed.
  static let weekRows: [Row] = [
    Row(arguments: [.string("2014-W01-1"), .string("YYYY-'W'ww-e")], expected: .int(1_388_275_200_000)),
    Row(arguments: [.string("2016-W58-7"), .string("YYYY-'W'ww-e")], expected: .undefined),
    Row(arguments: [.string("2011-W1-1"), .string("YYYY-'W'w-e")], expected: .int(1_293_321_600_000)),
    Row(arguments: [.string("1998-W58-7"), .string("YYYY-'W'w-e")], expected: .undefined),
    Row(arguments: [.string("03 52 5"), .string("YY ww e")], expected: .int(1_072_310_400_000)),
    Row(arguments: [.string("00 93 4"), .string("YY ww e")], expected: .undefined),
    Row(arguments: [.string("2018 52 Wed"), .string("YYYY ww eee")], expected: .int(1_545_782_400_000)),
    Row(arguments: [.string("2018 58 Wed"), .string("YYYY ww eee")], expected: .undefined),
    Row(
      arguments: [.string("2001 52 Wednesday"), .string("YYYY ww cccc")], expected: .int(1_009_324_800_000)),
    Row(arguments: [.string("2026 55 Friday"), .string("YYYY ww cccc")], expected: .undefined),
    Row(arguments: [.string("2011-12 W4 7"), .string("yyyy-MM 'W'W e")], expected: .int(1_324_684_800_000)),
    Row(arguments: [.string("2018-18 W5 5"), .string("yyyy-MM 'W'W e")], expected: .undefined),
    Row(arguments: [.string("2008-12 5 Sun"), .string("yyyy-MM W eee")], expected: .int(1_230_422_400_000)),
    Row(arguments: [.string("2008-62 5 Sun"), .string("yyyy-MM W eee")], expected: .undefined),
    Row(
      arguments: [.string("2017-12-24 Sun"), .string("yyyy-MM-dd ccc")], expected: .int(1_514_073_600_000)),
    Row(arguments: [.string("2024-12-25 Sun"), .string("yyyy-MM-dd ccc")], expected: .undefined),
    Row(
      arguments: [.string("2032-12-30 Thursday"), .string("yyyy-MM-dd eeee")],
      expected: .int(1_987_977_600_000)),
    Row(arguments: [.string("2018-11-31 Monday"), .string("yyyy-MM-dd eeee")], expected: .undefined),
    Row(arguments: [.string("2001-12-30 1"), .string("yyyy-MM-dd e")], expected: .int(1_009_670_400_000)),
    Row(arguments: [.string("1995-12-24 4"), .string("yyyy-MM-dd e")], expected: .undefined),
    Row(arguments: [.string("2017-12-25 02"), .string("yyyy-MM-dd ee")], expected: .int(1_514_160_000_000)),
    Row(arguments: [.string("2017-12-25 01"), .string("yyyy-MM-dd ee")], expected: .undefined),
    Row(arguments: [.string("1996-12-31 3"), .string("yyyy-MM-dd c")], expected: .int(851_990_400_000)),
    Row(arguments: [.string("1996-92-31 3"), .string("yyyy-MM-dd c")], expected: .undefined),
    Row(arguments: [.string("2011-12-28 53"), .string("yyyy-MM-dd w")], expected: .int(1_325_030_400_000)),
    Row(arguments: [.string("2011-12-68 53"), .string("yyyy-MM-dd w")], expected: .undefined),
    Row(arguments: [.string("2019-12-24 4"), .string("yyyy-MM-dd W")], expected: .int(1_577_145_600_000)),
    Row(arguments: [.string("2019-12-24 1"), .string("yyyy-MM-dd W")], expected: .undefined),
    Row(arguments: [.string("2006-12-31 2007"), .string("yyyy-MM-dd Y")], expected: .int(1_167_523_200_000)),
    Row(arguments: [.string("2015-19-29 2016"), .string("yyyy-MM-dd Y")], expected: .undefined),
    Row(
      arguments: [.string("2011-12-31 2011 53"), .string("yyyy-MM-dd YYYY ww")],
      expected: .int(1_325_289_600_000)),
    Row(arguments: [.string("2011-12-31 2001 53"), .string("yyyy-MM-dd YYYY ww")], expected: .undefined),
    Row(arguments: [.string("50812"), .string("g")], expected: .int(883_440_000_000)),
    Row(arguments: [.string("56292"), .string("ggggg")], expected: .int(1_356_912_000_000)),
    Row(arguments: [.string("2017-12-30"), .string("yyyy-MM-ppd")], expected: .int(1_514_592_000_000)),
    Row(arguments: [.string("2029-17-29"), .string("yyyy-MM-ppd")], expected: .undefined),
    Row(
      arguments: [.string("       24/12/2027"), .string("pppppppppd/MM/yyyy")],
      expected: .int(1_829_606_400_000)),
    Row(arguments: [.string("       30/14/1998"), .string("pppppppppd/MM/yyyy")], expected: .undefined),
    Row(
      arguments: [.string("2006-12-24 S"), .string("yyyy-MM-dd eeeee")], expected: .int(1_166_918_400_000)),
    Row(arguments: [.string("2006-17-24 S"), .string("yyyy-MM-dd eeeee")], expected: .undefined),
    Row(
      arguments: [.string("2034-12-27 W"), .string("yyyy-MM-dd ccccc")], expected: .int(2_050_790_400_000)),
    Row(arguments: [.string("2999-12-27 M"), .string("yyyy-MM-dd ccccc")], expected: .undefined),
    Row(arguments: [.string("2007-12-26"), .string("YYYY-MM-dd")], expected: .undefined),
    Row(
      arguments: [.string("2009-12-28 55193"), .string("yyyy-MM-dd g")], expected: .int(1_261_958_400_000)),
    Row(arguments: [.string("2009-32-28 55193"), .string("yyyy-MM-dd g")], expected: .undefined),
    Row(
      arguments: [.string("2019-12-24 03 52"), .string("uuuu-MM-dd ee w")], expected: .int(1_577_145_600_000)),
    Row(arguments: [.string("2012-12-25 33 52"), .string("uuuu-MM-dd ee w")], expected: .undefined),
    Row(arguments: [.string("2007 D 27"), .string("yyyy MMMMM dd")], expected: .int(1_198_713_600_000)),
    Row(arguments: [.string("2027 J 74"), .string("yyyy MMMMM dd")], expected: .undefined),
    Row(arguments: [.string("2000 D 31"), .string("yyyy LLLLL dd")], expected: .int(978_220_800_000)),
    Row(arguments: [.string("2022 D 50"), .string("yyyy LLLLL dd")], expected: .undefined),
    Row(arguments: [.string("2000-12-28 T"), .string("yyyy-MM-dd EEEEE")], expected: .int(977_961_600_000)),
    Row(arguments: [.string("2092-12-31 M"), .string("yyyy-MM-dd EEEEE")], expected: .undefined),
    Row(
      arguments: [.string("2013-12-25 4"), .string("yyyy-MM-dd QQQQQ")], expected: .int(1_387_929_600_000)),
    Row(arguments: [.string("1995-12-94 4"), .string("yyyy-MM-dd QQQQQ")], expected: .undefined),
    Row(arguments: [.string("2015-12- 8"), .string("yyyy-MM-ppd")], expected: .int(1_449_532_800_000)),
    Row(arguments: [.string("2015-12-8"), .string("yyyy-MM-ppd")], expected: .undefined),
    Row(arguments: [.string("2015-12-  8"), .string("yyyy-MM-pppd")], expected: .int(1_449_532_800_000)),
    Row(arguments: [.string("2015-12- 08"), .string("yyyy-MM-pppdd")], expected: .int(1_449_532_800_000)),
    Row(arguments: [.string("57374"), .string("g")], expected: .int(1_450_396_800_000)),
    Row(arguments: [.string("-1"), .string("g")], expected: .int(-3_506_803_200_000)),
    Row(arguments: [.string("-0"), .string("g")], expected: .undefined),
    Row(
      arguments: [.string("2015-12 W0 Sun"), .string("yyyy-MM 'W'W eee")], expected: .int(1_448_150_400_000)),
    Row(
      arguments: [.string("2015-12 W6 Sat"), .string("yyyy-MM 'W'W eee")], expected: .int(1_452_297_600_000)),
    Row(
      arguments: [.string("2015-02 W5 Sat"), .string("yyyy-MM 'W'W eee")], expected: .int(1_425_686_400_000)),
    Row(arguments: [.string("2015 W53 Sat"), .string("YYYY 'W'ww eee")], expected: .int(1_451_088_000_000)),
    Row(arguments: [.string("2015 W54 Sat"), .string("YYYY 'W'ww eee")], expected: .undefined),
    Row(arguments: [.string("2016 W53 Sat"), .string("YYYY 'W'ww eee")], expected: .int(1_483_142_400_000)),
    Row(arguments: [.string("2015 W00 Sat"), .string("YYYY 'W'ww eee")], expected: .undefined),
    Row(arguments: [.string("2015 8"), .string("yyyy e")], expected: .undefined),
    Row(arguments: [.string("2015 0"), .string("yyyy e")], expected: .undefined),
    Row(arguments: [.string("2015-12-18"), .string("YYYY-MM-dd")], expected: .undefined),
    Row(arguments: [.string("2015-51"), .string("YYYY-ww")], expected: .undefined),
    Row(arguments: [.string("15 51 6"), .string("YY ww e")], expected: .int(1_450_396_800_000)),
    Row(
      arguments: [.string("2015-12-18 Fri 6"), .string("yyyy-MM-dd eee e")], expected: .int(1_450_396_800_000)
    ),
    Row(arguments: [.string("2015-12-18 Fri 5"), .string("yyyy-MM-dd eee e")], expected: .undefined),
    Row(
      arguments: [.string("2015-12-18 Fri Fri"), .string("yyyy-MM-dd E eee")],
      expected: .int(1_450_396_800_000)),
    Row(arguments: [.string("2015-12-18 Sat"), .string("yyyy-MM-dd ccc")], expected: .undefined),
    Row(arguments: [.string("-2015 51 6"), .string("YYYY ww e")], expected: .int(-125_723_923_200_000)),
    Row(arguments: [.string("+12015 51 6"), .string("YYYY ww e")], expected: .int(317_019_916_800_000)),
  ]

  /// Optional sections nested past the limit are refused (6,000 overflowed the stack, and a
  /// payload could hold them); within it they parse.
  @Test func deeplyNestedSectionsAreRefused() throws {
    let deep = String(repeating: "[", count: 6_000) + "yyyy-MM-dd"
    try Self.check(
      "time_to_epoch", Row(arguments: [.string("2020-01-01"), .string(deep)], expected: .undefined))
    let nested = String(repeating: "[", count: 32) + "yyyy-MM-dd" + String(repeating: "]", count: 32)
    try Self.check(
      "time_to_epoch",
      Row(arguments: [.string("2020-01-01"), .string(nested)], expected: .int(1_577_836_800_000)))
    guard case .failure(let error) = DateTimePattern.compile("[[[" + deep, dialect: .jdk) else {
      Issue.record("compiled")
      return
    }
    #expect(error.message == "optional sections nested deeper than 32" && error.position == 32)
  }

  /// A pattern's literal text matches the same scalars only, as java.time compares chars: a
  /// precomposed `é` is not `e` with a combining accent (Swift's `Character` equality says it is).
  @Test func literalsMatchScalarByScalar() throws {
    try Self.check(
      "time_to_epoch",
      Row(arguments: [.string("2020-001 e\u{301}"), .string("yyyy-DDD '\u{E9}'")], expected: .undefined))
    try Self.check(
      "time_to_epoch",
      Row(
        arguments: [.string("2020-001 \u{E9}"), .string("yyyy-DDD '\u{E9}'")],
        expected: .int(1_577_836_800_000)))
  }

  /// Numbers one past Int's range, which trapped the parser's sum (the process stopped).
  @Test(arguments: ["g", "A", "N", "ggggg"])
  func numbersPastIntAreRefusedNotFatal(_ pattern: String) throws {
    for text in ["9223372036854775808", "-9223372036854775809", "9223372036854775809"] {
      try Self.check(
        "time_to_epoch", Row(arguments: [.string(text), .string(pattern)], expected: .undefined))
    }
  }

  @Test(arguments: weekRows)
  func timeToEpochWeeksPadsAndJulianDays(_ row: Row) throws { try Self.check("time_to_epoch", row) }

  @Test(
    arguments: [
      (
        "parse_time", [Value.string("yyyy-bb"), nil], 0,
        "invalid date-time pattern at offset 5: unknown pattern letter 'b'"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy 'at")], 1,
        "invalid date-time pattern at offset 5: unterminated quoted text"
      ),
      (
        "parse_time", [Value.string("yyyy"), nil, Value.string("Mars/Olympus")], 2,
        "unknown time zone 'Mars/Olympus'"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy-FF")], 1,
        "invalid date-time pattern at offset 5: pattern letter 'F' is not supported by time_to_epoch"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy-MM-pp'x'")], 1,
        "invalid date-time pattern at offset 8: pad letter 'p' must be followed by a pattern letter"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy-MM-dd cc")], 1,
        "invalid date-time pattern at offset 11: pattern letter 'c' may not appear twice (cc)"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy]-MM")], 1,
        "invalid date-time pattern at offset 4: ']' without a '[' before it"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy{MM}")], 1,
        "invalid date-time pattern at offset 4: '{' is not supported"
      ),
      (
        "time_to_epoch", [nil, Value.string("HH V")], 1,
        "invalid date-time pattern at offset 3: pattern letter 'V' must appear twice (VV)"
      ),
      (
        "time_to_epoch", [nil, Value.string("HH vv")], 1,
        "invalid date-time pattern at offset 3: pattern letter 'v' must appear once (v) or four times (vvvv)"
      ),
      (
        "time_to_epoch", [nil, Value.string("yyyy QQQQQQ")], 1,
        "invalid date-time pattern at offset 5: too many pattern letters 'Q'"
      ),
    ] as [(String, [Value?], Int, String)])
  func constantPatternErrors(_ name: String, _ arguments: [Value?], _ index: Int, _ message: String) {
    let spec = FunctionRegistry.lookup(name)!
    #expect {
      _ = try spec.prepare?(arguments, .v2016_03_23)
    } throws: { error in
      (error as? FunctionPrepareError)?.argument == index
        && (error as? FunctionPrepareError)?.message == message
        // Refused by the JDK too: AWS's call is Undefined, so a warning. Not supported here: an error.
        && (error as? FunctionPrepareError)?.isAlwaysUndefined == !message.contains("not supported by")
    }
  }

  @Test func bothAreVersion2AndDeterministic() throws {
    for name in ["parse_time", "time_to_epoch"] {
      let spec = try #require(FunctionRegistry.lookup(name))
      #expect(spec.minimumVersion == .v2016_03_23)
      #expect(spec.isDeterministic)
      #expect(spec.family == "time")
    }
  }

  /// Formatting then parsing the same pattern gives the instant back, across years and zones.
  @Test(arguments: ["UTC", "America/Los_Angeles", "Asia/Kolkata", "Australia/Sydney", "+05:45"])
  func roundTrip(_ zone: String) {
    // From 1970: earlier local mean times have offsets in seconds, which `Z` does not print.
    var instant = 0
    for _ in 0..<200 {
      let text = Self.call(
        "parse_time", [.string("yyyy-MM-dd HH:mm:ss.SSS Z"), .int(instant), .string(zone)])
      #expect(Self.call("time_to_epoch", [text, .string("yyyy-MM-dd HH:mm:ss.SSS Z")]) == .int(instant))
      instant += 12_345_678_901
    }
  }

  @Test func civilCalendarAgreesWithDayCounting() {
    var days = CivilCalendar.days(year: -400, month: 1, day: 1)
    for year in -400...2400 {
      for month in 1...12 {
        for day in [1, CivilCalendar.daysInMonth(year: year, month: month)] {
          let expected = CivilCalendar.days(year: year, month: month, day: day)
          if day == 1, month == 1 { #expect(expected == days) }
          let back = CivilCalendar.date(days: expected)
          if back != (year, month, day) { Issue.record("\(year)-\(month)-\(day) -> \(back)") }
        }
      }
      days += CivilCalendar.isLeap(year) ? 366 : 365
    }
  }
}
