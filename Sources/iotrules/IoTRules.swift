import ArgumentParser
import Daemon
import Foundation
import Logging
import RulesEngine

/// The `iotrules` command: a rules engine for IoT data, speaking AWS IoT SQL.
@main
struct IoTRules: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "iotrules",
    abstract: "A rules engine for IoT data: AWS IoT SQL over MQTT, Kafka and replayed streams.",
    version: IoTRulesVersion.current,
    subcommands: [
      RunCommand.self, CheckCommand.self, EvalCommand.self, ExplainCommand.self, FunctionsCommand.self,
      ReplCommand.self, TestCommand.self, ImportCommand.self,
    ]
  )

  /// Runs the command, then makes sure its output was written: when standard output lost text (a
  /// full disk; a reader gone under `run`, which ignores SIGPIPE), says so and ends with exit
  /// status 74, as `cat` and `sort` do, also where the command would have failed otherwise (a
  /// failing `test`'s 1, an invalid rule's 65 in `check`: a CI step must tell a report that never
  /// reached its reader); help and version text too. Usage text (ArgumentParser's) is not watched.
  static func main() async {
    // `run` reloads on SIGHUP; one sent as soon as it started (`systemctl reload` right after a
    // start) ended it with SIGHUP's default while the arguments were still being read.
    if CommandLine.arguments.dropFirst().first == "run" { signal(SIGHUP, SIG_IGN) }
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      // Help and version text, written as the commands' output is, so that a lost one says so.
      if exitCode(for: error) == ExitCode.success, !(error is ExitCode) {
        if let word = hiddenHelpRequest(CommandLine.arguments) {
          usageError(
            "unknown option '\(word)': an option is a letter after one dash (-v, -o) or a word after two (--format)"
          )
        }
        if let problem = unknownHelpTopic(CommandLine.arguments) { usageError(problem) }
        Console.out(fullMessage(for: error))
        exit(withError: reportLostOutput() ? ExitCodes.io : ExitCode.success)
      }
      if reportLostOutput() { exit(withError: ExitCodes.io) }
      // `run --log-format json`: its usage errors are log records too, as every other line of
      // its standard error is (a JSON shipper choked on the text).
      if RunCommand.logsJSON(CommandLine.arguments), exitCode(for: error) == ExitCode.validationFailure {
        usageError(message(for: error))
      }
      exit(withError: error)
    }
    if reportLostOutput() { exit(withError: ExitCodes.io) }
  }

  /// For a help request the user did not type (`-h`, `--help`, `help`, `--version`): the word with
  /// one dash and several letters, one of them `h`, that the argument parser read as `-h` (`-github`
  /// as `-g -i -t -h -u -b`), which printed the help and ended with 0, so `check rules
  /// -the-rules.json` in CI passed unchecked.
  static func hiddenHelpRequest(_ arguments: [String]) -> String? {
    let words = arguments.dropFirst().prefix { $0 != "--" }
    if words.contains(where: { ["-h", "--help", "--version"].contains($0) }) || words.first == "help" {
      return nil
    }
    return words.first { $0.hasPrefix("-") && !$0.hasPrefix("--") && $0.count > 2 && $0.contains("h") }
  }

  /// For `iotrules help WORD...`: what is wrong when a word names no command (the argument parser
  /// printed the general help and ended with 0, so a typo in `iotrules help chekc` looked answered).
  static func unknownHelpTopic(_ arguments: [String]) -> String? {
    let words = arguments.dropFirst()
    guard words.first == "help" else { return nil }
    var command: any ParsableCommand.Type = IoTRules.self
    var path = "iotrules"
    // `--` ends the options, not the words (`help -- chekc` was the general help).
    for word in words.dropFirst().filter({ $0 != "--" }).prefix(while: { !$0.hasPrefix("-") }) {
      // `help help`: the general help, as the argument parser gives it.
      if word == "help", command == IoTRules.self { continue }
      let subcommands = command.configuration.subcommands
      guard let next = subcommands.first(where: { $0._commandName == word }) else {
        let names = subcommands.map { $0._commandName }
        return names.isEmpty
          ? "'\(path)' has no subcommand '\(word)'"
          : "'\(path)' has no command '\(word)'; its commands are \(names.joined(separator: ", "))"
      }
      command = next
      path += " " + word
    }
    return nil
  }

  /// Ends with a usage error (64): a JSON record under `run --log-format json`, as its other
  /// lines are, else `Error: ...` as the argument parser says it.
  static func usageError(_ text: String) -> Never {
    if RunCommand.logsJSON(CommandLine.arguments) {
      jsonLogger.critical(
        "\(text)", metadata: ["exitStatus": .stringConvertible(Int(ExitCodes.usage.rawValue))])
    } else {
      Console.err("Error: \(text)")
    }
    exit(withError: ExitCodes.usage)
  }

  /// A logger that writes JSON records, for the last words of `run --log-format json`.
  private static var jsonLogger: Logger { Logger(label: "iotrules") { JSONLogHandler(label: $0) } }

  /// Says on standard error that standard output lost text, and whether it did.
  private static func reportLostOutput() -> Bool {
    guard let problem = StandardStreams.outputProblem() else { return false }
    if RunCommand.logsJSON(CommandLine.arguments) {
      jsonLogger.critical(
        "cannot write standard output: \(problem)",
        metadata: ["exitStatus": .stringConvertible(Int(ExitCodes.io.rawValue))])
    } else {
      Console.err("iotrules: error: cannot write standard output: \(problem)")
    }
    return true
  }
}

/// Exit codes shared by the subcommands (sysexits where one fits).
enum ExitCodes {
  /// A rule or a test failed its check.
  static let failures = ExitCode(1)
  /// A rule or statement does not compile.
  static let badRule = ExitCode(65)
  /// An internal error.
  static let software = ExitCode(70)
  /// An output file that cannot be created (it exists, and replacing it was not asked for).
  static let cannotCreate = ExitCode(73)
  /// An input or output error.
  static let io = ExitCode(74)
  /// The command was used wrongly.
  static let usage = ExitCode(64)
}

/// The `--sql-version` option shared by commands that compile SQL.
struct SQLVersionOption: ParsableArguments {
  @Option(
    name: .customLong("sql-version"),
    help: "2016-03-23 (default), 2015-10-08, or beta (read as 2016-03-23; sql_version() says beta).")
  var sqlVersion: String?

  /// Whether `--sql-version` was given (a batch takes each line's own and refuses the option).
  var isGiven: Bool { sqlVersion != nil }

  /// Checked while parsing, so a bad version gets the command's own usage.
  func validate() throws { _ = try resolve() }

  func resolve() throws -> IoTSQLVersion {
    let name = sqlVersion ?? SQLVersionName.default
    guard let version = IoTSQLVersion(string: name) else {
      throw ValidationError("unknown SQL version '\(name)'; expected 2016-03-23, 2015-10-08 or beta")
    }
    return version
  }
}
