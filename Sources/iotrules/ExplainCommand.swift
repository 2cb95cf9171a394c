import ArgumentParser
import DevTools
import Foundation
import IoTSQL
import RulesEngine

/// `iotrules explain --sql S` or `iotrules explain FILE`: the compiled program, one instruction a line;
/// for a rule file, the program and every template of every action.
struct ExplainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "explain",
    abstract: "Print the compiled program of a statement, one instruction a line, as SQLite's EXPLAIN.",
    discussion: "With a rule FILE: its program, then each ${...} template of each action, compiled."
  )

  @Argument(help: "A rule file (instead of --sql).")
  var file: String?

  @Option(help: "The IoT SQL statement.")
  var sql: String?

  @OptionGroup var version: SQLVersionOption

  func validate() throws {
    if (file == nil) == (sql == nil) { throw ValidationError("give a rule FILE or --sql, one of them") }
    // Not dropped without a word: a rule file says its own version.
    if file != nil && version.isGiven {
      throw ValidationError("a rule FILE gives its own awsIotSqlVersion; drop --sql-version")
    }
  }

  func run() throws {
    if let file {
      try explainRule(file)
      return
    }
    try requireUTF8("--sql")
    let sql = self.sql ?? ""
    let sqlVersion = try version.resolve()
    let program: Program
    do {
      program = try Compiler.compile(sql, version: sqlVersion)
    } catch {
      Console.err(error.description)
      throw ExitCodes.badRule
    }
    let lines = Diagnostic.SourceLines(sql)
    for warning in program.warnings { Console.err(warning.rendered(in: lines)) }
    Console.out(Disassembler.listing(program))
  }

  func explainRule(_ file: String) throws {
    // A rule's test file is no rule: say which file to name (it said an object was expected).
    if RuleFile.isTestFile(file), FileManager.default.fileExists(atPath: file) {
      Console.err(
        "iotrules: error: \(file) is a rule test file: explain its rule file (\(RuleFile.ruleFileNaming(ofTest: file)))"
      )
      throw ExitCodes.usage
    }
    let rule: RulePreview
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue,
      FileManager.default.isReadableFile(atPath: file)
    else { throw unreadable(file) }
    let bytes: [UInt8]
    switch RegularFile.read(file) {
    case .success(let read): bytes = read
    case .failure(let why):
      Console.err("iotrules: error: \(file): cannot read it (\(why))")
      throw ExitCodes.io
    }
    do {
      rule = try RulePreview.load(file: file, bytes: bytes)
    } catch {
      Console.err(error.description)
      throw ExitCodes.badRule
    }
    Console.out("rule \(rule.name) (\(file)), SQL version \(rule.program.version.rawValue)")
    Console.out(rule.program.source)
    Console.out(Disassembler.listing(rule.program))
    let templates = rule.templates
    if templates.isEmpty { Console.out("\n(no templates)") }
    for (field, template) in templates {
      Console.out("\ntemplate \(field): \(template.source)")
      for part in template.parts {
        switch part {
        case .text(let text): Console.out("  text \(JSONWriter.string(.string(text)))")
        case .expression(let program):
          Console.out(
            Disassembler.listing(program).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
      }
    }
  }
}
