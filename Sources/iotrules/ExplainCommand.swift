import ArgumentParser
import IoTSQL

/// `iotrules explain --sql S`: the compiled program, one instruction a line.
struct ExplainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "explain",
    abstract: "Print the compiled program of a statement, one instruction a line, as SQLite's EXPLAIN."
  )

  @Option(help: "The IoT SQL statement.")
  var sql: String

  @OptionGroup var version: SQLVersionOption

  func run() throws {
    let sqlVersion = try version.resolve()
    let program: Program
    do {
      program = try Compiler.compile(sql, version: sqlVersion)
    } catch {
      Console.err(error.description)
      throw ExitCodes.badRule
    }
    for warning in program.warnings { Console.err(warning.rendered(in: sql)) }
    Console.out(Disassembler.listing(program))
  }
}
