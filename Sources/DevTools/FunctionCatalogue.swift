import IoTSQL

/// The function list `iotrules functions` and the REPL's `.functions` show: the registry's
/// functions and `cast`, which is syntax (its second argument is a type name) owned by the parser,
/// in one alphabetical order, each with its signature, notes and one line of help.
public enum FunctionCatalogue {
  /// One function as listed.
  public struct Entry: Sendable {
    /// `substring(String, Int[, Int]) -> String`.
    public var signature: String
    /// Its family, then `since 2016-03-23` and `not deterministic` where they apply.
    public var notes: [String]
    /// One line of help (or why it is not available here).
    public var help: String
  }

  /// The families functions are listed under (`type` holds `cast`).
  public static let families: [String] =
    Set(FunctionRegistry.all.map { $0.family.lowercased() }).union(["type"]).sorted()

  /// The entries whose names start with `prefix` (case-insensitive), of `family` when given.
  public static func entries(prefix: String = "", family: String? = nil) -> [Entry] {
    let wantedFamily = family?.lowercased()
    var named: [(name: String, entry: Entry)] = FunctionRegistry.all
      .filter { $0.name.lowercased().hasPrefix(prefix.lowercased()) }
      .filter { wantedFamily == nil || $0.family.lowercased() == wantedFamily }
      .map { spec in
        var notes = [spec.family]
        if spec.minimumVersion != .v2015_10_08 { notes.append("since \(spec.minimumVersion.rawValue)") }
        if !spec.isDeterministic { notes.append("not deterministic") }
        return (
          spec.name, Entry(signature: spec.signature, notes: notes, help: spec.unavailableReason ?? spec.help)
        )
      }
    if "cast".hasPrefix(prefix.lowercased()), wantedFamily == nil || wantedFamily == "type" {
      named.append(
        (
          "cast",
          Entry(
            signature: "cast(value AS String|Int|Decimal|Double|Boolean) -> that type",
            notes: ["type", "syntax"],
            help: "Converts with AWS's cast table; a conversion the table lacks gives Undefined.")
        ))
    }
    return named.sorted { $0.name.lowercased() < $1.name.lowercased() }.map(\.entry)
  }
}
