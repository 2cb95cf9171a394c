import ArgumentParser
import Daemon
import Foundation

/// `iotrules check`: loads, compiles and validates rule files. Exit 0 when all are valid, 65 when
/// any is not.
struct CheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check", abstract: "Check rule files: SQL, templates and every action's configuration.",
    discussion: """
      Warnings (the exit status stays 0): a republish action whose topic can match its own rule's FROM \
      filter, which would feed republished messages back into the rule.
      """)

  @Argument(help: "Rule files or folders.")
  var paths: [String]

  @Option(name: .long, help: "text or json.")
  var format: String = "text"

  func validate() throws {
    if !["text", "json"].contains(format) { throw ValidationError("--format is text or json") }
  }

  func run() throws {
    let results: [RuleChecker.FileResult]
    do {
      results = try RuleChecker.check(paths: paths)
    } catch {
      FileHandle.standardError.write(Data("iotrules: error: \(error)\n".utf8))
      throw ExitCode(74)
    }
    let invalid = results.filter { !$0.diagnostics.isEmpty }.count
    if format == "json" {
      print(RuleChecker.json(results))
    } else {
      for result in results {
        for warning in result.warnings { print(RuleChecker.warningText(warning)) }
        if result.diagnostics.isEmpty {
          print("\(result.file): ok (rule \(result.rule ?? ""))")
        } else {
          for diagnostic in result.diagnostics { print(diagnostic.description) }
        }
      }
      print("\(results.count - invalid) valid, \(invalid) invalid")
    }
    if invalid > 0 { throw ExitCode(65) }
  }
}
