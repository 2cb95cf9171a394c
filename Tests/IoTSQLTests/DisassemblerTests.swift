import DevTools
import Foundation
import Testing

@testable import IoTSQL

/// The golden listings: each `Golden/<name>.sql` compiles to the program whose
/// `Disassembler.listing` is `Golden/<name>.txt`. A name containing `2015-10-08` compiles under that
/// version, any other under 2016-03-23. Run with `IOTRULES_UPDATE_GOLDEN=1` to rewrite the `.txt`
/// files from the current compiler (then review the change with `git diff`).
private let goldenFolder = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().appendingPathComponent("Golden")

/// The statement files' base names, sorted.
private let goldenNames: [String] = {
  let names = (try? FileManager.default.contentsOfDirectory(atPath: goldenFolder.path)) ?? []
  return names.filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }.sorted()
}()

@Suite("Disassembler: golden explain listings")
struct DisassemblerTests {
  @Test func thereAreGoldenStatements() {
    #expect(goldenNames.count >= 8)
  }

  @Test(arguments: goldenNames)
  func listingMatchesGolden(name: String) throws {
    let sqlURL = goldenFolder.appendingPathComponent(name + ".sql")
    let goldenURL = goldenFolder.appendingPathComponent(name + ".txt")
    let sql = try String(contentsOf: sqlURL, encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let version: SQLVersion = name.contains("2015-10-08") ? .v2015_10_08 : .v2016_03_23
    let program: Program
    do {
      program = try Compiler.compile(sql, version: version)
    } catch {
      Issue.record("Golden/\(name).sql does not compile:\n\(error)")
      return
    }
    let actual = Disassembler.listing(program) + "\n"
    if ProcessInfo.processInfo.environment["IOTRULES_UPDATE_GOLDEN"] == "1" {
      try actual.write(to: goldenURL, atomically: true, encoding: .utf8)
      return
    }
    guard let expected = try? String(contentsOf: goldenURL, encoding: .utf8) else {
      Issue.record("Golden/\(name).txt is missing; run with IOTRULES_UPDATE_GOLDEN=1 to create it")
      return
    }
    #expect(
      expected == actual,
      """
      Golden/\(name).txt differs from the listing of Golden/\(name).sql (- golden, + now); \
      if the change is intended, rerun with IOTRULES_UPDATE_GOLDEN=1 and review git diff:
      \(LineDiff.unified(expected: expected, actual: actual))
      """)
  }

  @Test func lineDiffMarksChangedLines() {
    let diff = LineDiff.unified(expected: "a\nb\nc", actual: "a\nx\nc")
    #expect(diff == "  a\n- b\n+ x\n  c")
  }
}
