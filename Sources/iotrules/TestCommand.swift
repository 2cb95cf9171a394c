import ArgumentParser
import Daemon
import DevTools
import Foundation
import RulesEngine

/// `iotrules test [PATH...]`: runs the rule tests beside rule files, without brokers.
struct TestCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "test",
    abstract: "Run the rule tests beside rule files (Rules/<rule>.test.json, .test.yaml or .test.yml).",
    discussion: """
      A test file holds cases {"name", "topic", "payload" | "payload_base64", "clientId"?, \
      "timestamp"?, "context"?, "expect"}, where expect is {"output": VALUE}, {"empty_output": true}, \
      {"no_match": true} or {"actions": [{"kind": "...", FIELD: VALUE...}]} (action fields rendered \
      from their templates; only the fields written are compared). A payload string is the payload's \
      text; other JSON is written compactly. timestamp pins timestamp() (epoch ms; 0 when absent); \
      context pins the other context functions (principal, sourceip, traceid, accountid, \
      mqtt_properties, user_properties, newuuid, rand), as an eval --batch request's context does; \
      unpinned, newuuid() and rand() give the same sequence every run. A rule file without tests \
      that does not load fails as (load).
      Exit 0 when every case passes, 1 when any fails (each failure named, with a diff), 65 when \
      nothing was found to test, 74 when a path cannot be read (the others' tests run) or the JUnit \
      report or standard output cannot be written.
      """
  )

  @Argument(help: "Folders, rule files or test files (default: Rules).")
  var paths: [String] = []

  @Option(help: "Write a JUnit XML report to FILE.")
  var junit: String?

  @Flag(name: .shortAndLong, help: "Name every passing case too.")
  var verbose = false

  func run() throws {
    let plan = RuleTestPlan.collect(paths)
    // Said first; the other paths' tests run, and the exit is 74 at the end.
    for problem in plan.unreadable { Console.err("iotrules: error: \(problem)") }
    let results = plan.run()
    let styler = Styler.decide(
      isTerminal: isatty(STDOUT_FILENO) != 0, environment: ProcessInfo.processInfo.environment)
    for result in results {
      let place = "\(result.file):\(result.position.line):\(result.position.column)"
      if let failure = result.failure {
        Console.out(
          "\(styler.error("FAIL")) \(RuleFile.escapedName(result.rule)): \(RuleFile.escapedName(result.name))  (\(RuleFile.printable(place)))"
        )
        // A case's name, topic or payload may hold control characters: spelled out, never raw.
        Console.out(
          RuleFile.printable(failure).split(separator: "\n", omittingEmptySubsequences: false).map {
            "    " + $0
          }.joined(separator: "\n"))
      } else if verbose {
        Console.out(
          "\(styler.string("ok")) \(RuleFile.escapedName(result.rule)): \(RuleFile.escapedName(result.name))")
      }
    }
    // Its tests may pass, but the rule processes nothing: said, as `check` says it.
    var noted = Set<String>()
    for result in results where result.ruleDisabled && noted.insert(result.rule).inserted {
      Console.out(
        styler.dim(
          "note: rule \(RuleFile.escapedName(result.rule)) is disabled (ruleDisabled): its tests ran, but run loads it and skips it"
        ))
    }
    // A rule without tests that does not load failed above, as `(load)`.
    let failedToLoad = Set(results.map(\.file))
    for file in plan.untested where !failedToLoad.contains(file) {
      Console.out(styler.dim("no tests: \(RuleFile.escapedName(file))"))
    }
    let failed = results.filter { !$0.passed }.count
    let files = Set(results.map(\.file)).count
    // The summary first: a report that cannot be written does not hide the results.
    Console.out(
      "\(results.count - failed) passed, \(failed) failed (\(results.count) case(s) in \(files) file(s))")
    if let junit {
      if let failure = writeFile(junit, Array(JUnitReport.xml(results, unreadable: plan.unreadable).utf8)) {
        Console.err(
          "iotrules: error: cannot write the JUnit report \(junit): \(failure)")
        throw ExitCodes.io
      }
    }
    // Tests are read from a folder itself, as `check` and `run` read rules: a team's subfolder of
    // rules and tests gave a bare "no rule tests found", where `check` named the subfolder.
    let searched = paths.isEmpty ? ["Rules"] : paths
    for note in RuleStore.subfolderNotes(in: searched) {
      Console.err("iotrules: note: \(note)")
    }
    if !plan.unreadable.isEmpty { throw ExitCodes.io }
    if results.isEmpty {
      Console.err(
        "iotrules: no rule tests found under \(searched.joined(separator: " "))")
      throw ExitCodes.badRule
    }
    if failed > 0 { throw ExitCodes.failures }
  }
}
