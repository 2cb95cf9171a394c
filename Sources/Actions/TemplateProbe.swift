import IoTSQL
import RulesEngine

/// What a setting's template says for every message: its text with each `${…}` replaced by `x`, so
/// that a check of the rendered value finds, before any message, the problems its own text makes
/// certain (a wildcard or an empty level in a topic, a CR, LF or NUL in a header value). A
/// rendering cannot remove text, nor fill an empty level or undo a wildcard, so what the probe
/// shows, every rendering shows; only lengths are not judged (a value may render empty).
enum TemplateProbe {
  /// `text` with each expression replaced by `x`, or nil when it does not compile (its own error
  /// is reported where it is compiled).
  static func probe(_ text: String) -> String? {
    guard text.contains("${") else { return text }
    guard let template = try? Template.compile(text) else { return nil }
    var probe = ""
    for part in template.parts {
      switch part {
      case .text(let literal): probe += literal
      case .expression: probe += "x"
      }
    }
    return probe
  }

  /// Why a setting's own text (each `${…}` read as `x`) holds a control character (C0, DEL, C1),
  /// which every value it names would hold: a YAML `url: >` or `database: |` ends in a line break,
  /// and the request went to `/nl%0A`, the rows to a file `x.db⏎`. Nil when it holds none.
  static func controlCharacterProblem(_ text: String) -> String? {
    guard let probe = probe(text) else { return nil }
    let bytes = Array(probe.utf8)
    guard let (offset, scalar) = FileArchiveAction.firstControlCharacter(in: bytes, ranges: [0..<bytes.count])
    else { return nil }
    let name = Unicode.Scalar(scalar).map(\.codePointName) ?? "U+\(scalar)"
    let yaml = scalar == 0x0A && offset == bytes.count - 1 ? RuleFile.yamlLineBreakHint : ""
    return "holds a control character (\(name)) in its own text\(yaml)"
  }
}
