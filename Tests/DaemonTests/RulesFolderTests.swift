import Daemon
import Foundation
import TestSupport
import Testing

struct RulesFolderTests {
  @Test func everyRuleFileInRulesIsValid() throws {
    let results = try RuleChecker.check(paths: [packageRoot + "/Rules"])
    #expect(results.count >= 2)
    for result in results {
      #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
    }
    #expect(Set(results.compactMap(\.rule)).isSuperset(of: ["high_temp", "archive_all"]))
  }

  @Test func checkCommandReportsPositionsAndExit65() async throws {
    let folder = temporaryFolder("check")
    write(
      """
      {
        "sql": "SELECT * FROM 'a/#'",
        "actions": [{"sqlite": {"database": "x.db", "table": "bad name"}}]
      }
      """, to: folder + "/rules/broken.json")
    write(
      #"{"sql": "SELECT * FROM 'b'", "actions": [{"file": {"path": "out/${topic()}.jsonl"}}]}"#,
      to: folder + "/rules/good.json")
    write(
      #"{"sql": "SELECT * FROM 'c'", "actions": [{"kafka": {"bootstrapServers": "127.0.0.1:9092", "topic": "t"}}, {"republish": {"topic": "d/${topic()}"}}]}"#,
      to: folder + "/rules/later.json")
    let (status, output, _) = try await runIotrules(["check", "rules"], in: folder)
    #expect(status == 65)
    #expect(
      output == """
        rules/broken.json:3:56: error: sqlite action: invalid table name 'bad name': it must match [A-Za-z_][A-Za-z0-9_]{0,127}
        rules/good.json: ok (rule good)
        rules/later.json: ok (rule later)
        2 valid, 1 invalid

        """)
    let (jsonStatus, json, _) = try await runIotrules(
      ["check", "--format", "json", "rules/good.json"], in: folder)
    #expect(jsonStatus == 0)
    #expect(
      json
        == #"{"files":[{"file":"rules/good.json","rule":"good","valid":true,"errors":[],"warnings":[]}],"valid":1,"invalid":0}"#
        + "\n")
  }
}
