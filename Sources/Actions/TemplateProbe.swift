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
}
