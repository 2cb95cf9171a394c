import ArgumentParser
import DevTools

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

  func validate() throws {
    // A usage error (64), as every option's wrong value is.
    if let family, !FunctionCatalogue.families.contains(family.lowercased()) {
      throw ValidationError(
        "no function family '\(family)'; the families are \(FunctionCatalogue.families.joined(separator: ", "))"
      )
    }
  }

  func run() throws {
    let wanted = FunctionCatalogue.entries(prefix: prefix, family: family)
    guard !wanted.isEmpty else {
      let start = prefix.isEmpty ? "no function" : "no function starts with '\(prefix)'"
      // Said as every command's errors are (`Error: ...` was the argument parser's wording).
      Console.err("iotrules: error: " + start + (family.map { " in family '\($0)'" } ?? ""))
      throw ExitCodes.failures
    }
    for entry in wanted {
      Console.out("\(entry.signature)  [\(entry.notes.joined(separator: ", "))]")
      Console.out("    " + entry.help)
    }
  }
}
