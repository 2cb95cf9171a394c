import Foundation

/// The string functions of the AWS reference.
///
/// Policy: a non-string argument takes the standard String conversion (numbers as text, Booleans
/// as "true"/"false", arrays and objects as compact JSON); Null, Undefined and Binary have none and
/// give Undefined. Lengths and indices count UTF-16 code units, as AWS's Java strings do.
enum StringFunctions {
  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "chr", family: "string", arity: 1...1, signature: "chr(code) -> String",
      help: "The ASCII character with the given code (0...127), Decimals and strings rounded down."
    ) { call in
      switch call[0] {
      case .int, .decimal, .string:
        guard let code = Coercions.toFlooredInt(call[0]), (0...127).contains(code) else { return .undefined }
        return .string(String(UnicodeScalar(UInt8(code))))
      default: return .undefined
      }
    },
    FunctionSpec(
      name: "concat", family: "string", arity: 0...Int.max, signature: "concat(value, ...) -> String|Array",
      help:
        "Joins arrays into one array (scalars appended), else the String forms of the arguments when one is a String (Undefined when none is).",
      implementation: concat
    ),
    FunctionSpec(
      name: "endswith", family: "string", arity: 2...2, signature: "endswith(string, suffix) -> Boolean",
      help: "True when the first argument's String form ends with the second's."
    ) { call in
      guard let text = Coercions.toText(call[0]), let suffix = Coercions.toText(call[1]) else {
        return .undefined
      }
      return .bool(text.utf8.reversed().starts(with: suffix.utf8.reversed()))
    },
    FunctionSpec(
      name: "indexof", family: "string", arity: 2...2, minimumVersion: .v2016_03_23,
      signature: "indexof(string, substring) -> Int",
      help: "The 0-based index of the first occurrence of substring, or -1; Undefined for an array."
    ) { call in
      // "This function does not apply to arrays, only to strings" (the guide): an array's JSON
      // text would give a character offset that reads as an element's index.
      if case .array = call[0] { return .undefined }
      if case .array = call[1] { return .undefined }
      guard let text = Coercions.toText(call[0]), let target = Coercions.toText(call[1]) else {
        return .undefined
      }
      return .int(utf16Index(of: Array(target.utf16), in: Array(text.utf16)) ?? -1)
    },
    FunctionSpec(
      name: "length", family: "string", arity: 1...1, minimumVersion: .v2016_03_23,
      signature: "length(string) -> Int", help: "The number of characters (UTF-16 code units)."
    ) { call in
      guard let text = Coercions.toText(call[0]) else { return .undefined }
      return .int(text.utf16.count)
    },
    FunctionSpec(
      name: "lower", family: "string", arity: 1...1, signature: "lower(string) -> String",
      help: "The lower-case form of the argument's String form."
    ) { call in Coercions.toText(call[0]).map { .string(lowercasedAsJava($0)) } ?? .undefined },
    pad("lpad", "Prefixes count spaces (count clamped to 0...1000).", left: true),
    trim("ltrim", "Removes leading spaces and tabs.", leading: true, trailing: false, blanks: .spacesAndTabs),
    FunctionSpec(
      name: "numbytes", family: "string", arity: 1...1, minimumVersion: .v2016_03_23,
      signature: "numbytes(string) -> Int", help: "The number of bytes of the string in UTF-8."
    ) { call in
      guard let text = Coercions.toText(call[0]) else { return .undefined }
      return .int(text.utf8.count)
    },
    FunctionSpec(
      name: "replace", family: "string", arity: 3...3,
      signature: "replace(string, find, replacement) -> String",
      help: "Replaces every literal occurrence of find (all three arguments take their String forms)."
    ) { call in
      guard let text = Coercions.toText(call[0]), let target = Coercions.toText(call[1]),
        let replacement = Coercions.toText(call[2])
      else { return .undefined }
      return replaceAll(in: text, target, with: replacement).map(Value.string) ?? .undefined
    },
    pad("rpad", "Appends count spaces (count clamped to 0...1000).", left: false),
    trim(
      "rtrim", "Removes trailing spaces and tabs.", leading: false, trailing: true, blanks: .spacesAndTabs),
    FunctionSpec(
      name: "startswith", family: "string", arity: 2...2, signature: "startswith(string, prefix) -> Boolean",
      help: "True when the first argument's String form starts with the second's."
    ) { call in
      guard let text = Coercions.toText(call[0]), let prefix = Coercions.toText(call[1]) else {
        return .undefined
      }
      return .bool(text.utf8.starts(with: prefix.utf8))
    },
    FunctionSpec(
      name: "substring", family: "string", arity: 2...3,
      signature: "substring(string, start[, end]) -> String",
      help: "Characters from start (0-based) up to end (exclusive); indices clamped to the string."
    ) { call in
      guard let text = Coercions.toText(call[0]), let start = index(call[1]) else { return .undefined }
      let units = Array(text.utf16)
      var end = units.count
      if call.count == 3 {
        guard let given = index(call[2]) else { return .undefined }
        end = given
      }
      let from = Swift.min(Swift.max(start, 0), units.count)
      let to = Swift.min(Swift.max(end, 0), units.count)
      guard from < to else { return .string("") }
      return .string(String(utf16Units: units[from..<to]))
    },
    trim(
      "trim", "Removes leading and trailing white space and control characters (U+0000 to U+0020).",
      leading: true, trailing: true, blanks: .javaWhiteSpace),
    FunctionSpec(
      name: "upper", family: "string", arity: 1...1, signature: "upper(string) -> String",
      help: "The upper-case form of the argument's String form."
    ) { call in Coercions.toText(call[0]).map { .string($0.uppercased()) } ?? .undefined },
  ]

  /// An index argument: Int, or a Decimal or numeric string rounded down; nil otherwise.
  private static func index(_ value: Value) -> Int? {
    switch value {
    case .int, .decimal, .string: return Coercions.toFlooredInt(value)
    default: return nil
    }
  }

  @Sendable static func concat(_ call: borrowing FunctionCall) -> Value {
    let count = call.count
    if count == 0 { return .undefined }
    if count == 1 { return call[0] }
    var hasArray = false
    var hasString = false
    for index in 0..<count {
      switch call[index] {
      case .undefined: return .undefined
      case .array: hasArray = true
      case .string: hasString = true
      default: break
      }
    }
    if hasArray {
      var result: [Value] = []
      for index in 0..<count {
        let argument = call[index]
        if case .array(let elements) = argument {
          result.append(contentsOf: elements)
        } else {
          result.append(argument)
        }
      }
      return .array(result)
    }
    guard hasString else { return .undefined }
    var text = ""
    for index in 0..<count {
      guard let part = Coercions.toText(call[index]) else { return .undefined }
      text += part
    }
    return .string(text)
  }

  private static func pad(_ name: String, _ help: String, left: Bool) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "string", arity: 2...2, signature: "\(name)(string, count) -> String", help: help
    ) { call in
      guard let text = Coercions.toText(call[0]), let count = index(call[1]) else { return .undefined }
      let spaces = String(repeating: " ", count: Swift.min(Swift.max(count, 0), 1000))
      return .string(left ? spaces + text : text + spaces)
    }
  }

  /// What a trimming function removes.
  private enum Blanks {
    /// Spaces and tabs: the guide's words for `ltrim` and `rtrim`.
    case spacesAndTabs
    /// "All white space" for `trim`, as Java's `String.trim()` takes it: every character up to
    /// U+0020 (space, tab, CR, LF, the other control characters).
    case javaWhiteSpace
  }

  private static func trim(_ name: String, _ help: String, leading: Bool, trailing: Bool, blanks: Blanks)
    -> FunctionSpec
  {
    FunctionSpec(
      name: name, family: "string", arity: 1...1, signature: "\(name)(string) -> String", help: help
    ) {
      call in
      guard let text = Coercions.toText(call[0]) else { return .undefined }
      var bytes = Substring(text).utf8[...]
      let isBlank: (UInt8) -> Bool =
        switch blanks {
        case .spacesAndTabs: { $0 == 0x20 || $0 == 0x09 }
        case .javaWhiteSpace: { $0 <= 0x20 }
        }
      if leading { bytes = bytes.drop(while: isBlank) }
      if trailing {
        while let last = bytes.last, isBlank(last) { bytes = bytes.dropLast() }
      }
      return .string(String(Substring(bytes)))
    }
  }

  /// The first UTF-16 offset of `target` in `text`; 0 for an empty target.
  static func utf16Index(of target: [UInt16], in text: [UInt16]) -> Int? {
    if target.isEmpty { return 0 }
    guard target.count <= text.count else { return nil }
    for start in 0...(text.count - target.count) where text[start] == target[0] {
      if text[start..<(start + target.count)].elementsEqual(target) { return start }
    }
    return nil
  }

  /// `text` in lower case as Java's `String.toLowerCase()` makes it: Unicode's mappings, with the
  /// one that depends on context, Final_Sigma: a capital sigma that ends a word (a cased letter
  /// before it, none after it, case-ignorable characters aside) becomes `ς`, not `σ`
  /// (`ΟΔΟΣ` → `οδος`).
  static func lowercasedAsJava(_ text: String) -> String {
    guard text.unicodeScalars.contains("\u{03A3}") else { return text.lowercased() }
    let scalars = Array(text.unicodeScalars)
    var result = String.UnicodeScalarView()
    for (index, scalar) in scalars.enumerated() {
      if scalar == "\u{03A3}", endsWord(scalars, at: index) {
        result.append("\u{03C2}")
      } else {
        result.append(contentsOf: String(scalar).lowercased().unicodeScalars)
      }
    }
    return String(result)
  }

  /// Whether the letter at `index` is preceded by a cased letter and not followed by one, skipping
  /// case-ignorable characters on either side (Unicode's Final_Sigma condition).
  private static func endsWord(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
    var before = index - 1
    while before >= 0, scalars[before].properties.isCaseIgnorable { before -= 1 }
    guard before >= 0, scalars[before].properties.isCased else { return false }
    var after = index + 1
    while after < scalars.count, scalars[after].properties.isCaseIgnorable { after += 1 }
    return after == scalars.count || !scalars[after].properties.isCased
  }

  /// The longest text `replace` and `regexp_replace` make, in bytes (UTF-16 units for the latter):
  /// longer is Undefined. An AWS message holds at most 128 KB, yet `replace(x, '', y)` over one of
  /// them asks for billions of characters, which a Java string cannot hold (and which took this
  /// process 4 GB, or aborted it).
  static let resultLimit = 8 * 1024 * 1024

  /// Java's `String.replace`: every non-overlapping occurrence, left to right; an empty target
  /// inserts the replacement before every character and at the end. Nil when the result would
  /// pass ``resultLimit``.
  static func replaceAll(in text: String, _ target: String, with replacement: String) -> String? {
    if target.isEmpty {
      // The replacement around every character: known in advance.
      let characters = text.unicodeScalars.count
      let (product, overflow) = (characters + 1).multipliedReportingOverflow(by: replacement.utf8.count)
      guard !overflow, product + text.utf8.count <= resultLimit else { return nil }
      var result = replacement
      for scalar in text.unicodeScalars {
        result.unicodeScalars.append(scalar)
        result += replacement
      }
      return result
    }
    let source = Array(text.utf8)
    let find = Array(target.utf8)
    let insert = Array(replacement.utf8)
    var output: [UInt8] = []
    output.reserveCapacity(source.count)
    var position = 0
    while position < source.count {
      if source[position] == find[0], position + find.count <= source.count,
        source[position..<(position + find.count)].elementsEqual(find)
      {
        output.append(contentsOf: insert)
        position += find.count
        if output.count > resultLimit { return nil }
      } else {
        output.append(source[position])
        position += 1
      }
    }
    return String(decoding: output, as: UTF8.self)
  }
}
