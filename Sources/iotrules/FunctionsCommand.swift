import ArgumentParser
import IoTSQL

/// `iotrules functions [PREFIX]`: the function catalogue, with signatures and one line of help.
struct FunctionsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "functions",
    abstract: "List the IoT SQL functions: signature, family, and one line of help."
  )

  @Argument(help: "Show only functions whose name starts with this prefix (case-insensitive).")
  var prefix: String = ""

  @Option(help: "Show only one family (math, string, time, hash, ...).")
  var family: String?

  func run() throws {
    let wanted = FunctionRegistry.all
      .filter { $0.name.lowercased().hasPrefix(prefix.lowercased()) }
      .filter { family == nil || $0.family.lowercased() == family!.lowercased() }
      .sorted { $0.name.lowercased() < $1.name.lowercased() }
    let showCast = "cast".hasPrefix(prefix.lowercased()) && (family == nil || family!.lowercased() == "type")
    if showCast {
      // `cast` is syntax (its second argument is a type name), so the parser, not the registry, owns it.
      Console.out("cast(value AS String|Int|Decimal|Double|Boolean) -> that type  [type, syntax]")
      Console.out("    Converts with AWS's cast table; a conversion the table lacks gives Undefined.")
    }
    let families = Set(FunctionRegistry.all.map { $0.family.lowercased() }).union(["type"]).sorted()
    if let family, !families.contains(family.lowercased()) {
      throw CLIError("no function family '\(family)'; the families are \(families.joined(separator: ", "))")
    }
    guard !wanted.isEmpty || showCast else {
      let start = prefix.isEmpty ? "no function" : "no function starts with '\(prefix)'"
      throw CLIError(start + (family.map { " in family '\($0)'" } ?? ""))
    }
    for spec in wanted {
      var notes: [String] = [spec.family]
      if spec.minimumVersion != .v2015_10_08 { notes.append("since \(spec.minimumVersion.rawValue)") }
      if !spec.isDeterministic { notes.append("not deterministic") }
      Console.out("\(spec.signature)  [\(notes.joined(separator: ", "))]")
      Console.out("    " + (spec.unavailableReason ?? spec.help))
    }
  }
}
