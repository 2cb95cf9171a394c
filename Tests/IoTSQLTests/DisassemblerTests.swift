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

/// A line diff of `expected` against `actual`: `-` lines only in expected, `+` lines only in actual,
/// two-space lines common to both (longest common subsequence).
func lineDiff(expected: String, actual: String) -> String {
  let old = expected.split(separator: "\n", omittingEmptySubsequences: false)
  let new = actual.split(separator: "\n", omittingEmptySubsequences: false)
  var lengths = [[Int]](repeating: [Int](repeating: 0, count: new.count + 1), count: old.count + 1)
  for i in stride(from: old.count - 1, through: 0, by: -1) {
    for j in stride(from: new.count - 1, through: 0, by: -1) {
      lengths[i][j] = old[i] == new[j] ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
    }
  }
  var lines: [String] = []
  var i = 0
  var j = 0
  while i < old.count || j < new.count {
    if i < old.count, j < new.count, old[i] == new[j] {
      lines.append("  " + old[i])
      i += 1
      j += 1
    } else if i < old.count, j == new.count || lengths[i + 1][j] >= lengths[i][j + 1] {
      lines.append("- " + old[i])
      i += 1
    } else {
      lines.append("+ " + new[j])
      j += 1
    }
  }
  return lines.joined(separator: "\n")
}

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
      \(lineDiff(expected: expected, actual: actual))
      """)
  }

  @Test func lineDiffMarksChangedLines() {
    let diff = lineDiff(expected: "a\nb\nc", actual: "a\nx\nc")
    #expect(diff == "  a\n- b\n+ x\n  c")
  }
}
