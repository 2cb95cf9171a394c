// TEMPORARY root for the daemon branch: the lead's IoTRules.swift replaces this file (delete it) and lists
// RunCommand and CheckCommand among its subcommands.
import ArgumentParser

@main
struct TemporaryRoot: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "iotrules", abstract: "A rules engine for IoT data.",
    subcommands: [RunCommand.self, CheckCommand.self])
}
