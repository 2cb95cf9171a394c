import RulesEngine
import Testing

@testable import Actions

@Suite("Republish topics that can loop back into their own rule")
struct RepublishLoopTests {
  @Test(
    "a template's static shape against a FROM filter",
    arguments: [
      ("loop/${topic(2)}", "loop/#", true),
      ("alerts/${topic(2)}", "sensors/+/data", false),
      ("sensors/${topic(2)}/data", "sensors/+/data", true),
      ("sensors/${topic(2)}/alert", "sensors/+/data", false),
      // A substitution may render several levels.
      ("sensors/${topic()}", "sensors/+/data", true),
      ("${topic()}", "a/b/c", true),
      ("a/b", "a/b", true),
      ("a/b", "a/c", false),
      ("a/b", "a/+", true),
      // `#` is one level or more, as rules match (AWS's `a/#` does not match `a`); an empty one counts.
      ("a", "a/#", false),
      ("a/", "a/#", true),
      ("${topic()}", "a/#", true),
      ("a/b/c", "+/b", false),
      // `/` inside a substitution does not split levels.
      ("out/${concat(topic(1), '/x')}", "in/#", false),
      // `$` topics are not matched by a leading wildcard.
      ("$$aws/${topic(2)}", "#", false),
      ("$$aws/x", "$aws/+", true),
      // `$$${…}` renders `$` and the value: never a first level without `$` (a false loop warning).
      ("$$${topic(2)}/x", "d/+", false),
      ("$$${topic(2)}/x", "+/x", false),
      ("$$${topic(2)}/x", "$aws/x", true),
      ("x${clientid()}y/z", "+/z", true),
      // Levels are bytes: a `/` before a combining mark splits, and é spelled two ways differs.
      ("in/\u{301}x", "in/+", true),
      ("in/${x}/\u{301}y", "in/+", false),
      ("s/caf\u{E9}", "s/cafe\u{301}", false),
    ])
  func overlaps(template: String, filter: String, expected: Bool) {
    #expect(RepublishAction.topicTemplate(template, canMatch: filter) == expected)
  }

  @Test("a rendered topic's wildcard, empty level or level count is found byte by byte")
  func topicProblemsAreBytes() {
    #expect(RepublishAction.topicProblem("out/+\u{301}")?.contains("contains a wildcard") == true)
    #expect(RepublishAction.topicProblem("out//\u{301}")?.contains("has an empty level") == true)
    #expect(
      RepublishAction.topicProblem("a" + String(repeating: "/\u{301}a", count: 9))?.contains("at most 8")
        == true)
    #expect(RepublishAction.topicProblem("out/caf\u{E9}") == nil)
  }

  /// `$$` is AWS's escape for a leading `$`, so `$${dev}/x` went out as `${dev}/x`, braces and all,
  /// where `eval --template` gives `$` and the value; `check` says so (`$$${dev}` is that topic).
  @Test("a topic written $${ is warned of: its braces go out as literal text")
  func dollarEscapeBeforeASubstitution() {
    func messages(_ topic: String) -> [String] {
      RepublishAction.warnings(
        topic: topic, maxHops: 4, hasHeaders: false, carriesUserProperties: true,
        in: ActionBuildContext(ruleName: "r", version: .default, variableNames: [], topicFilter: "d/+")
      ).map(\.message)
    }
    #expect(
      messages("$${dev}/x") == [
        "rule 'r': in the republish topic '$${dev}/x', '$$' is AWS's escape for a leading '$', so what follows, '{dev}/x', is literal text and no substitution: write '$$${' for '$' followed by a value, or '${' for the value alone"
      ])
    #expect(messages("$$${dev}/x").isEmpty)
    #expect(messages("$$aws/things/x").isEmpty)
  }

  @Test("the shape splits at slashes outside substitutions and keeps a leading $")
  func shape() {
    #expect(
      RepublishAction.topicShape("a/${get(x, 'p/q')}/c")
        == [.literal("a"), .substituted, .literal("c")])
    #expect(RepublishAction.topicShape("$$aws/things") == [.literal("$aws"), .literal("things")])
  }
}
