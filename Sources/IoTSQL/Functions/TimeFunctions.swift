import Foundation
import Synchronization

/// `parse_time` and `time_to_epoch` (2016-03-23).
///
/// `parse_time(pattern, epochMs[, zone])` formats with a Joda-Time pattern in a zone (UTC when
/// omitted). `time_to_epoch(text, pattern)` parses with a JDK 11 `DateTimeFormatter` pattern; a text
/// without a zone is UTC. Constant patterns and zones are compiled when the rule compiles: an
/// invalid one is warned of on that argument and the call is always Undefined, as AWS documents for
/// invalid arguments (a pattern letter the JDK takes and this implementation lacks is an error); at
/// run time an invalid pattern, zone or text gives Undefined, as do Null and Undefined arguments.
enum TimeFunctions {
  /// The rows of the catalogue.
  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "parse_time", family: "time", arity: 2...3, minimumVersion: .v2016_03_23,
      signature: "parse_time(pattern, epochMs[, zone]) -> String",
      help: "Formats epoch milliseconds with a Joda-Time pattern in a zone (default UTC).",
      prepare: { arguments, _ throws(FunctionPrepareError) in
        var pattern: DateTimePattern?
        var zone: TimeZoneRule?
        if let constant = arguments.first ?? nil, let text = text(of: constant) {
          switch DateTimePattern.compile(text, dialect: .joda) {
          case .success(let compiled): pattern = compiled
          case .failure(let error):
            throw FunctionPrepareError(
              argument: 0, message: error.description, isAlwaysUndefined: !error.isUnsupportedHere)
          }
        }
        if arguments.count > 2, let constant = arguments[2], let id = text(of: constant) {
          guard let rule = TimeZoneRule.named(id) else {
            throw FunctionPrepareError(
              argument: 2, message: "unknown time zone '\(id)'", isAlwaysUndefined: true)
          }
          zone = rule
        }
        if pattern == nil && zone == nil { return nil }
        return Prepared(pattern: pattern, zone: zone)
      },
      implementation: { call in
        let prepared = call.prepared as? Prepared
        guard let pattern = prepared?.pattern ?? patternCache.pattern(for: call[0], dialect: .joda),
          let epochMilliseconds = milliseconds(of: call[1])
        else { return .undefined }
        var zone = TimeZoneRule.utc
        if call.count > 2 {
          guard let chosen = prepared?.zone ?? text(of: call[2]).flatMap(TimeZoneRule.named) else {
            return .undefined
          }
          zone = chosen
        }
        return .string(format(epochMilliseconds, pattern: pattern, zone: zone, memo: prepared?.memo))
      }),
    FunctionSpec(
      name: "time_to_epoch", family: "time", arity: 2...2, minimumVersion: .v2016_03_23,
      signature: "time_to_epoch(text, pattern) -> Int",
      help:
        "Parses a date-time text with a JDK DateTimeFormatter pattern to epoch milliseconds (UTC if no zone).",
      prepare: { arguments, _ throws(FunctionPrepareError) in
        guard arguments.count > 1, let constant = arguments[1], let pattern = text(of: constant) else {
          return nil
        }
        switch DateTimePattern.compile(pattern, dialect: .jdk) {
        case .success(let compiled):
          if let problem = compiled.givesNoDate {
            throw FunctionPrepareError(argument: 1, message: problem, isAlwaysUndefined: true)
          }
          return Prepared(pattern: compiled)
        case .failure(let error):
          throw FunctionPrepareError(
            argument: 1, message: error.description, isAlwaysUndefined: !error.isUnsupportedHere)
        }
      },
      implementation: { call in
        guard let subject = text(of: call[0]),
          let pattern = (call.prepared as? Prepared)?.pattern
            ?? patternCache.pattern(for: call[1], dialect: .jdk),
          case .success(let milliseconds) = pattern.parse(subject)
        else { return .undefined }
        return .int(milliseconds)
      }),
  ]

  /// What `prepare` hands the implementation.
  /// A class: each call finds it with a cast from `any Sendable`, which for a struct copies it out.
  final class Prepared: Sendable {
    let pattern: DateTimePattern?
    let zone: TimeZoneRule?
    /// The last text of a constant pattern, when it stays the same for a while (a day for
    /// `yyyy-MM-dd`): the messages of that day reuse it.
    let memo: FormatMemo?

    init(pattern: DateTimePattern?, zone: TimeZoneRule? = nil) {
      self.pattern = pattern
      self.zone = zone
      self.memo = (pattern?.constantSpanMs ?? 0) > 1 ? FormatMemo() : nil
    }
  }

  /// `parse_time`'s text for epoch milliseconds.
  static func format(
    _ epochMilliseconds: Int, pattern: DateTimePattern, zone: TimeZoneRule, memo: FormatMemo?
  )
    -> String
  {
    if let memo { return memo.format(pattern, epochMilliseconds: epochMilliseconds, zone: zone) }
    return pattern.format(epochMilliseconds: epochMilliseconds, zone: zone)
  }

  /// A constant pattern and zone compiled as `parse_time` compiles them, or nil when either is
  /// invalid (the program then reports it).
  static func prepare(pattern: String, zone: String?) -> Prepared? {
    guard let compiled = try? DateTimePattern.compile(pattern, dialect: .joda).get() else { return nil }
    guard let zone else { return Prepared(pattern: compiled, zone: .utc) }
    guard let rule = TimeZoneRule.named(zone) else { return nil }
    return Prepared(pattern: compiled, zone: rule)
  }

  /// What `parse_time(pattern, epochMs[, zone])` gives for an Int `epochMs` with `prepared`'s
  /// constant pattern and zone, as text (nil for Undefined: beyond the range of times).
  static func format(_ epochMilliseconds: Int, with prepared: Prepared) -> String? {
    guard let pattern = prepared.pattern, let epoch = milliseconds(of: .int(epochMilliseconds)) else {
      return nil
    }
    return format(epoch, pattern: pattern, zone: prepared.zone ?? .utc, memo: prepared.memo)
  }

  static func text(of value: Value) -> String? {
    if case .string(let text) = value { return text }
    return Coercions.toText(value)
  }

  /// Epoch milliseconds from an Int, a Decimal (rounded to nearest) or a numeric String (truncated).
  static func milliseconds(of value: Value) -> Int? {
    // The data-types table's implicit conversion: a Decimal rounds to the nearest Int (halves away
    // from zero), a numeric string is truncated. Beyond ±2^62 ms (±146 million years) is no time
    // at all, whatever the type (the calendar arithmetic would overflow near Int's ends). A string
    // with spaces around its number is no number, as in every other numeric conversion.
    guard let converted = Coercions.toImplicitInt(value), converted.magnitude <= UInt(Int64.max / 2) else {
      return nil
    }
    return converted
  }

  static let patternCache = PatternCache()
}

/// Patterns that are not constants, compiled once per distinct text (bounded).
final class PatternCache: Sendable {
  private let entries = Mutex<[String: DateTimePattern?]>([:])

  func pattern(for value: Value, dialect: DateTimePattern.Dialect) -> DateTimePattern? {
    guard let text = TimeFunctions.text(of: value) else { return nil }
    let key = (dialect == .joda ? "j:" : "k:") + text
    if let cached = entries.withLock({ $0[key] }) { return cached }
    let compiled = try? DateTimePattern.compile(text, dialect: dialect).get()
    entries.withLock { table in
      if table.count >= 128 { table.removeAll() }
      table[key] = compiled
    }
    return compiled
  }
}

/// The last text one constant `parse_time` pattern gave, with the span of local time it holds for.
/// A fixed-offset zone only: a region's offset can change within the span (daylight saving time).
final class FormatMemo: Sendable {
  private struct Entry {
    var start: Int
    var offsetSeconds: Int
    var zoneID: String
    var text: String
  }
  private let last = Mutex<Entry?>(nil)

  /// `pattern.format(epochMilliseconds:zone:)`, reused while the local time stays in the span of the
  /// last call.
  func format(_ pattern: DateTimePattern, epochMilliseconds: Int, zone: TimeZoneRule) -> String {
    guard case .fixed(let offsetSeconds, let zoneID) = zone else {
      return pattern.format(epochMilliseconds: epochMilliseconds, zone: zone)
    }
    let span = pattern.constantSpanMs
    let local = epochMilliseconds + offsetSeconds * 1000
    let start = DateTimePattern.Fields.floorDivide(local, span) * span
    let cached = last.withLock { entry -> String? in
      guard let entry, entry.start == start, entry.offsetSeconds == offsetSeconds, entry.zoneID == zoneID
      else { return nil }
      return entry.text
    }
    if let cached { return cached }
    let text = pattern.format(epochMilliseconds: epochMilliseconds, zone: zone)
    last.withLock { $0 = Entry(start: start, offsetSeconds: offsetSeconds, zoneID: zoneID, text: text) }
    return text
  }
}
