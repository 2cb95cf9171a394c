import IoTSQL

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
    let scalars = Array(probe.unicodeScalars)
    guard let index = scalars.firstIndex(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    else {
      return nil
    }
    let yaml =
      scalars[index] == "\n" && index == scalars.count - 1
      ? " (a YAML '>' or '|' scalar ends in a line break; '>-' and '|-' do not)" : ""
    return "holds a control character (\(scalars[index].codePointName)) in its own text\(yaml)"
  }
}
