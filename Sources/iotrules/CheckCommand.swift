import ArgumentParser
import Daemon
import DevTools
import Foundation
import RulesEngine

/// `iotrules check`: loads, compiles and validates rule files. Exit 0 when all are valid, 65 when
/// any is not.
struct CheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check", abstract: "Check rule files: SQL, templates and every action's configuration.",
    discussion: """
      Warnings (the exit status stays 0): a republish action whose topic can match its own rule's FROM \
      filter, which would feed republished messages back into the rule; an action template that reads \
      a name the SELECT computes (templates see the incoming message, as in AWS, not the SELECT output); \
      an enabled rule without actions, whose results go nowhere. Every problem of a rule is reported, \
      each at its place in the file. A rule whose tests beside it \
      (<rule>.test.json) fail is invalid, as `run` would not load it (unless --skip-tests), and so is a \
      test file without its rule beside it (a rule renamed without its tests: they would no longer \
      run). A path without any rule file is an error (exit 66). With --warnings-as-errors a warning \
      is reported as an error and makes its rule invalid (exit 65), for CI that allows none.
      """)

  @Argument(help: "Rule files or folders.")
  var paths: [String]

  @Option(
    name: .long,
    help:
      "text, json, or github (text plus GitHub Actions annotations: ::error file=...,line=...,col=...::message)."
  )
  var format: String = "text"

  @Flag(
    name: .customLong("skip-tests"),
    help: "Do not run the tests beside rule files (<rule>.test.json), as `run --skip-tests`.")
  var skipTests = false

  @Flag(
    name: .customLong("warnings-as-errors"),
    help: "Report every warning as an error: a rule with one is invalid (exit 65).")
  var warningsAsErrors = false

  func validate() throws {
    if !["text", "json", "github"].contains(format) {
      throw ValidationError("--format is text, json or github")
    }
  }

  func run() throws {
    // A rule's test file named (pre-commit hands over the files changed) checks its rule, whose
    // check runs its tests: beside any other path it was left out without a word, and a failing
    // case passed. One without its rule stays, to be said as such.
    let paths = self.paths.map { path in
      guard RuleFile.isTestFile(path) else { return path }
      return RuleTestFile.rule(ofTest: path) ?? path
    }
    // A path that does not exist is said as every command says it, and is a result of its own in
    // JSON (exit 74): the other paths are still checked and reported.
    // So is a folder that cannot be listed.
    let problems = paths.map(RuleFile.folderProblem)
    let missing = zip(paths, problems).filter { $0.1 != nil }.map(\.0)
    let reasons = problems.compactMap { $0 }
    let present = paths.filter { !missing.contains($0) }
    var results: [RuleChecker.FileResult]
    do {
      var gate: ReloadGate?
      if !skipTests { gate = { @Sendable rule in RuleTestGate.check(rule) } }
      results = present.isEmpty ? [] : try RuleChecker.check(paths: present, gate: gate)
    } catch {
      Console.err("iotrules: error: \(error)")
      throw ExitCode(74)
    }
    if warningsAsErrors {
      // Before the rule's errors, where the text output shows warnings.
      results = results.map { result in
        var result = result
        result.diagnostics = result.warnings + result.diagnostics
        result.warnings = []
        return result
      }
    }
    for (path, reason) in zip(missing, reasons) {
      Console.err("iotrules: error: \(path): \(reason)")
    }
    // A path that yields no rule is a result of its own in JSON, with its reason at its start.
    func pathResult(_ path: String, _ reason: String, unreadable: Bool) -> RuleChecker.FileResult {
      RuleChecker.FileResult(
        file: path, rule: nil,
        diagnostics: [
          RuleDiagnostic(file: path, position: FilePosition(line: 1, column: 1), message: reason)
        ],
        unreadable: unreadable)
    }
    let missingResults = zip(missing, reasons).map { pathResult($0, $1, unreadable: true) }
    // A mistyped or empty folder in CI must not pass as "all valid", also beside a good one.
    // (A rule's test file named directly is no rule, and no mistake either: `check Rules/*.json`;
    // but test files alone are no rules checked.)
    var empty = present.filter { path in
      !RuleFile.isTestFile(path) && ((try? RuleStore.ruleFiles(in: [path])) ?? []).isEmpty
    }
    if empty.isEmpty, results.isEmpty { empty = present }
    let invalid = results.filter { !$0.diagnostics.isEmpty }.count
    // Why each empty path is an error, said after the other paths' results (text) or listed as a
    // file result of its own (JSON: a tool reading `invalid` must not pass it).
    let emptyReasons = empty.map { path in
      // A test file named alone: say what it is and what to name instead.
      RuleFile.isTestFile(path)
        ? "\(path) is a rule test file: name its rule file (\(RuleFile.ruleFilePaths(ofTest: path)[0])) or their folder; the rule's check runs its tests"
        : "no rule files (*.json, *.yaml, *.yml) in \(path)"
    }
    if format == "json" {
      let emptyResults = zip(empty, emptyReasons).map { pathResult($0, $1, unreadable: false) }
      Console.out(RuleChecker.json(results + missingResults + emptyResults))
    } else {
      for result in results {
        // Warnings and errors together in file order.
        for text in RuleChecker.lines(of: result) { Console.out(RuleFile.printable(text)) }
        if result.diagnostics.isEmpty {
          // A disabled rule is valid, and said so: it takes no message (`ruleDisabled`).
          Console.out(
            "\(RuleFile.escapedName(result.file)): ok (rule \(RuleFile.escapedName(result.rule ?? ""))"
              + (result.disabled ? ", disabled: run loads it and skips it)" : ")"))
        }
        if format == "github" {
          // After the text, which the job's log shows; GitHub puts these on the lines of the diff.
          // In the text's order, file order (warnings came first, then errors).
          for (isWarning, diagnostic) in RuleChecker.inFileOrder(result) {
            Console.out(Self.annotation(isWarning ? "warning" : "error", diagnostic))
          }
        }
      }
      // Every path that gave no good rule counts, as in JSON: a mistyped folder never reads "0 invalid".
      Console.out("\(results.count - invalid) valid, \(invalid + missing.count + empty.count) invalid")
    }
    // Rules are read from a folder itself, as `run` reads them: rule files in its subfolders would
    // pass CI unchecked without a word.
    for note in RuleStore.subfolderNotes(in: present) {
      Console.err("iotrules: note: \(note)")
    }
    // Said after the other paths' results, which an empty one must not hide.
    for why in emptyReasons {
      Console.err("iotrules: error: \(why)")
    }
    if format == "github" {
      // A path that gave no rule fails the job too: annotated without a file or line (it had none,
      // and the job failed with nothing annotated).
      for (path, reason) in zip(missing, reasons) { Console.out(Self.pathAnnotation("\(path): \(reason)")) }
      for why in emptyReasons { Console.out(Self.pathAnnotation(why)) }
    }
    // A file or path that cannot be read is an I/O error (74), before an empty path (66) and an
    // invalid rule (65).
    if !missing.isEmpty || results.contains(where: \.unreadable) { throw ExitCode(74) }
    if !empty.isEmpty { throw ExitCode(66) }
    if invalid > 0 { throw ExitCode(65) }
  }

  /// A GitHub Actions error of no file: `::error title=iotrules check::M`.
  static func pathAnnotation(_ message: String) -> String {
    "::error title=iotrules check::"
      + RuleFile.printable(message).replacingExactly("%", with: "%25").replacingExactly("\r", with: "%0D")
      .replacingExactly("\n", with: "%0A")
  }

  /// A GitHub Actions workflow command for `diagnostic`: `::error file=F,line=L,col=C,title=...::M`,
  /// with `%`, CR, LF (and in properties `:` and `,`) percent-encoded as GitHub reads them; a
  /// message's further lines (the SQL and its caret) stay in it.
  static func annotation(_ level: String, _ diagnostic: RuleDiagnostic) -> String {
    func data(_ text: String) -> String {
      text.replacingExactly("%", with: "%25").replacingExactly("\r", with: "%0D").replacingExactly(
        "\n", with: "%0A")
    }
    func property(_ text: String) -> String {
      data(text).replacingExactly(":", with: "%3A").replacingExactly(",", with: "%2C")
    }
    // A control character of a file name or key spelled out, as in the text (`\u001B`).
    return
      "::\(level) file=\(property(RuleFile.printable(diagnostic.file))),line=\(diagnostic.position.line),"
      + "col=\(diagnostic.position.column),title=iotrules check::\(data(RuleFile.printable(diagnostic.message)))"
  }
}
