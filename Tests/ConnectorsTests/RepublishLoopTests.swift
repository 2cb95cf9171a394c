import Actions
import Testing

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
      ("a", "a/#", true),
      ("a/b/c", "+/b", false),
      // `/` inside a substitution does not split levels.
      ("out/${concat(topic(1), '/x')}", "in/#", false),
      // `$` topics are not matched by a leading wildcard.
      ("$$aws/${topic(2)}", "#", false),
      ("$$aws/x", "$aws/+", true),
      ("x${clientid()}y/z", "+/z", true),
    ])
  func overlaps(template: String, filter: String, expected: Bool) {
    #expect(RepublishAction.topicTemplate(template, canMatch: filter) == expected)
  }

  @Test("the shape splits at slashes outside substitutions and keeps a leading $")
  func shape() {
    #expect(
      RepublishAction.topicShape("a/${get(x, 'p/q')}/c")
        == [.literal("a"), .substituted, .literal("c")])
    #expect(RepublishAction.topicShape("$$aws/things") == [.literal("$aws"), .literal("things")])
  }
}
