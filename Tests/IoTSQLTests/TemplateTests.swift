import Testing

@testable import IoTSQL

struct TemplateTests {
  /// `${topic()}` and `${topic(n)}` render without the VM; they must say exactly what the program says.
  @Test(arguments: [
    "a/b/c", "a", "", "/", "a//c", "a/b/", "$aws/things/x", "caf\u{E9}/x", "a/\u{301}b/c",
    "sensors/dev-01/data",
  ])
  func topicShortcutsRenderAsTheFunctionDoes(_ topic: String) throws {
    let context = EvaluationContext(topic: topic, payload: [])
    for expression in [
      "topic()", "TOPIC()", "topic(0)", "topic(1)", "topic(2)", "topic(3)", "topic(4)", "topic(-1)",
    ] {
      let fast = try Template.compile("x/${\(expression)}/y")
      // The same expression hidden from the shortcut: it runs as a program.
      let slow = try Template.compile("x/${concat(\(expression), '')}/y")
      #expect(fast.renderers.contains { if case .program = $0 { false } else { true } })
      #expect(
        fast.render(context: context) == slow.render(context: context), "\(expression) on '\(topic)'")
    }
  }

  @Test func otherExpressionsRunTheirProgram() throws {
    let template = try Template.compile("${topic(1 + 1)}-${upper(topic(1))}-${deviceId}")
    let kinds = template.renderers.map { renderer -> String in
      switch renderer {
      case .text: "text"
      case .topic, .topicLevel: "topic"
      case .program: "program"
      }
    }
    #expect(kinds == ["program", "text", "program", "text", "program"])
    #expect(
      template.render(context: EvaluationContext(topic: "a/b", payload: Array(#"{"deviceId":"d"}"#.utf8)))
        == "b-A-d")
  }
}
