import IoTSQL

/// Tab completion for the REPL: keywords, function names, dot-commands and the field paths of the
/// current payload.
public enum Completer {
  /// Candidates for `word` (the text before the cursor back to a space or operator; `.` stays inside
  /// words); `atLineStart` is true when the word begins the line (dot-commands complete there).
  public static func candidates(for word: String, atLineStart: Bool, payload: [UInt8]) -> [String] {
    if atLineStart && word.hasPrefix(".") {
      return ReplSession.commands.map(\.name).filter { $0.hasPrefix(word) }
    }
    let lowered = word.lowercased()
    var result: [String] = []
    let fields = (try? JSONReader.parse(payload)) ?? .undefined
    if let dot = word.lastIndex(of: ".") {
      // A path: complete the last segment among the keys of the object the rest leads to.
      let head = word[..<dot]
      let tail = String(word[word.index(after: dot)...])
      var node = fields
      for segment in head.split(separator: ".", omittingEmptySubsequences: false) {
        guard case .object(let object) = node, let next = object[String(segment)] else { return [] }
        node = next
      }
      guard case .object(let object) = node else { return [] }
      return object.keys.filter { $0.hasPrefix(tail) }.map { "\(head).\($0)" }
    }
    if case .object(let object) = fields {
      result += object.keys.filter { $0.hasPrefix(word) }
    }
    let uppercase = word.first.map { $0.isUppercase } ?? true
    // EXISTS is an operator without being a reserved word (Grammar/README.md).
    result += (Keyword.allCases.map(\.rawValue) + ["EXISTS"]).filter { $0.lowercased().hasPrefix(lowered) }
      .map { uppercase ? $0 : $0.lowercased() }
    // `cast` is syntax, not a registry function, but the catalogue lists it with the functions.
    result += (FunctionRegistry.all.map(\.name) + ["cast"]).filter { $0.lowercased().hasPrefix(lowered) }
    var seen = Set<String>()
    return result.filter { seen.insert($0).inserted }
  }

  /// The characters that end a word for completion (`.` is not one: it joins field paths).
  public static let wordBreaks = " \t\n\"'`@$><=;|&{(,)*+-/%!"
}
