import Foundation
import RulesEngine
import Testing

@Suite struct HealthTests {
  /// A probe's body is one line a problem: a line break in a problem's text (a file name given on
  /// the command line, a broker's words) is spelled out, not a second line.
  @Test func aProblemIsOneLineOfTheBody() {
    let health = Health()
    health.report("dead-letter file", "a write failed (write dl\nready/dead.jsonl: Operation not permitted)")
    health.report("mqtt\r", "away", level: .unhealthy)
    let (passes, body) = health.probe(readiness: true, now: Date())
    #expect(!passes)
    let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 4, "\(body)")
    #expect(lines[0] == "not ready")
    #expect(body.contains("write dl\\u000Aready/dead.jsonl"), "\(body)")
    #expect(body.contains("mqtt\\u000D: away"), "\(body)")
  }
}
