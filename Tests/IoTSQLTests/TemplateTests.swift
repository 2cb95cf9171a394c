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
        try fast.render(context: context) == slow.render(context: context), "\(expression) on '\(topic)'")
    }
  }

  /// `${parse_time('pattern', timestamp()[, 'zone'])}` formats the timestamp without the VM; it must
  /// say exactly what the program says, memo or not, at the ends of the range of times too.
  @Test(arguments: [
    0, 1_717_200_000_000, 1_717_286_399_999, 1_717_286_400_000, -1, -86_400_001, 1_711_846_800_000,
    Int(Int64.max / 2), Int(Int64.max / 2) + 1, Int.min, Int.max,
  ])
  func timestampShortcutRendersAsTheFunctionDoes(_ timestamp: Int) throws {
    let context = EvaluationContext(topic: "a/b", payload: [], timestampMs: timestamp)
    for arguments in [
      "'yyyy-MM-dd', timestamp()", "'yyyy-MM-dd''T''HH:mm:ss.SSSZ', timestamp()",
      "'yyyy/MM/dd/HH', timestamp(), 'Europe/Berlin'", "'yyyy-MM-dd', TIMESTAMP(), '+05:30'",
      "'HH:mm z', timestamp(), 'America/Los_Angeles'", "'yyyy', timestamp(), 'UTC'",
    ] {
      let fast = try Template.compile("archive/${parse_time(\(arguments))}.jsonl")
      // The same call hidden from the shortcut: it runs as a program.
      let slow = try Template.compile("archive/${concat(parse_time(\(arguments)), '')}.jsonl")
      #expect(fast.renderers.contains { if case .timestampText = $0 { true } else { false } })
      // Twice: the second render of a day may come from the memo.
      for _ in 0..<2 {
        #expect(
          try fast.render(context: context) == slow.render(context: context), "\(arguments) at \(timestamp)")
      }
    }
  }

  /// Only a literal pattern (and zone) of `timestamp()` takes the shortcut.
  /// The marked ranges are exactly the bytes values wrote (none for an empty value), whatever the
  /// renderer: a program, a topic shortcut, a timestamp shortcut.
  @Test func valuesAreMarked() throws {
    let template = try Template.compile(
      "h/${topic(2)}/\u{E9}${x}${missing}?${parse_time('yyyy', timestamp(), 'UTC')}")
    let context = EvaluationContext(
      topic: "a/bc/d", payload: Array(#"{"x":"?q"}"#.utf8), timestampMs: 1_717_200_000_000)
    let (text, ranges) = try template.renderMarkingValues(context: context)
    #expect(text == "h/bc/\u{E9}?q?2024")
    let bytes = Array(text.utf8)
    #expect(ranges.map { String(decoding: bytes[$0], as: UTF8.self) } == ["bc", "?q", "2024"])
    #expect(try text == template.render(context: context))
    // A part that reads a secret is the operator's text, not a value (its `%` stays as it is).
    let keyed = try Template.compile("u?key=${get_secret('k')}&d=${topic(2)}")
    var secretContext = context
    secretContext.secrets = PlaceholderSecrets("a%2Bb")
    let (url, urlRanges) = try keyed.renderMarkingValues(context: secretContext)
    #expect(url == "u?key=a%2Bb&d=bc")
    #expect(urlRanges.map { String(decoding: Array(url.utf8)[$0], as: UTF8.self) } == ["bc"])
    // A part that mixes the message's data in is a value (its `?` and `%` judged as such).
    let mixed = try Template.compile("u/${concat(get_secret('k'), '-', topic(2))}/in")
    let (mixedURL, mixedRanges) = try mixed.renderMarkingValues(context: secretContext)
    #expect(mixedURL == "u/a%2Bb-bc/in")
    #expect(mixedRanges.map { String(decoding: Array(mixedURL.utf8)[$0], as: UTF8.self) } == ["a%2Bb-bc"])
  }

  @Test func otherTimeFormatsRunTheirProgram() throws {
    for expression in [
      "parse_time(fmt, timestamp())", "parse_time('yyyy', ts)", "parse_time('yyyy', timestamp(), zone)",
      "parse_time('yyyy', timestamp() + 1)",
    ] {
      let template = try Template.compile("${\(expression)}")
      #expect(
        template.renderers.allSatisfy { if case .program = $0 { true } else { false } }, "\(expression)")
    }
  }

  /// A template without `${` keeps no renderers: it is its text.
  @Test(arguments: ["other/1234.jsonl", "", "a$b{c}", "$", "x$"])
  func plainTextRendersAsItself(_ text: String) throws {
    let template = try Template.compile(text)
    #expect(template.renderers.isEmpty)
    #expect(template.isConstant)
    #expect(template.literalPrefix == text)
    #expect(try template.render(context: EvaluationContext(topic: "a/b", payload: [])) == text)
    if case .text(let part)? = template.parts.first { #expect(part == text) } else { #expect(text.isEmpty) }
    #expect(template.parts.count == (text.isEmpty ? 0 : 1))
  }

  @Test func textAroundAnExpressionIsKept() throws {
    let template = try Template.compile("archive/${topic(2)}/x.jsonl")
    #expect(template.renderers.count == 3)
    #expect(template.literalPrefix == "archive/")
    #expect(
      try template.render(context: EvaluationContext(topic: "s/d1", payload: [])) == "archive/d1/x.jsonl")
  }

  /// Every part's problems are reported, each at its place, as a statement's are (only the first
  /// was: `check` had to be run again for each); a part that does not parse ends the list.
  @Test func everyPartsProblemsAreReported() throws {
    func problems(_ text: String, _ version: SQLVersion = .default) -> [String] {
      do {
        _ = try Template.compile(text, version: version)
        return []
      } catch {
        return error.diagnostics.map { "\($0.range.start.column): \($0.message)" }
      }
    }
    #expect(
      problems("x-${zzq(topic())}-${upper(a)}-${yyq(a)}") == [
        "5: unknown function 'zzq'", "33: unknown function 'yyq'",
      ])
    #expect(
      problems("${indexof(a, 'x')}/${encode(a, 'base64')}", .v2015_10_08) == [
        "3: function 'indexof' needs SQL version 2016-03-23",
        "22: function 'encode' needs SQL version 2016-03-23",
      ])
    #expect(problems("${zzq(1)}/${a b}/${yyq(2)}").count == 2)
  }

  /// Each part's diagnostics and source map carry the line and column of the whole text, with
  /// multi-byte characters and line breaks before it (the parts share one walk over the text).
  @Test func laterPartsKeepTheirPositions() throws {
    let text = "caf\u{E9}/${topic(1)}\n\u{1F600}${upper(x)}/${nofunc(1)}"
    do {
      _ = try Template.compile(text)
      Issue.record("compiled")
    } catch {
      #expect(error.first.range.start.line == 2)
      #expect(error.first.range.start.column == 16)
      #expect(error.first.range.start.offset == Array(text.utf8).count - 10)
      #expect(error.first.message.contains("nofunc"))
    }
    let template = try Template.compile("a\n\u{E9}${x}${y}")
    guard case .expression(let second) = template.parts.last else {
      Issue.record("no expression")
      return
    }
    let range = second.sourceRange(at: 0)
    #expect(range.start.line == 2)
    #expect(range.start.column == 8)
  }

  /// A prefix comes first in the one string rendered, for templates with parts and without.
  @Test func renderingAfterAPrefix() throws {
    let context = EvaluationContext(topic: "s/caf\u{E9}", payload: Array(#"{"n":"\u00e9\n"}"#.utf8))
    var machine = VirtualMachine()
    for text in ["a/${topic(2)}/${n}-${topic()}.jsonl", "plain.jsonl", "${topic(3)}"] {
      let template = try Template.compile(text)
      let plain = try template.render(context: context, variables: [], using: &machine)
      #expect(
        try template.render(context: context, variables: [], using: &machine, prefix: "r\u{F6}ot/")
          == "r\u{F6}ot/" + plain)
      #expect(try template.render(context: context, variables: [], using: &machine, prefix: "") == plain)
    }
    #expect(
      try Template.compile("a/${topic(2)}/${n}-${topic()}.jsonl").render(context: context)
        == "a/caf\u{E9}/\u{E9}\n-s/caf\u{E9}.jsonl")
  }

  @Test func otherExpressionsRunTheirProgram() throws {
    let template = try Template.compile("${topic(1 + 1)}-${upper(topic(1))}-${deviceId}")
    let kinds = template.renderers.map { renderer -> String in
      switch renderer {
      case .text: "text"
      case .topic, .topicLevel: "topic"
      case .timestampText: "time"
      case .program: "program"
      case .secret: "secret"
      }
    }
    #expect(kinds == ["program", "text", "program", "text", "program"])
    #expect(
      try template.render(context: EvaluationContext(topic: "a/b", payload: Array(#"{"deviceId":"d"}"#.utf8)))
        == "b-A-d")
  }

  /// A binary payload's bytes that are not UTF-8 stop the rendering, at their part: with U+FFFD in
  /// their place, different payloads named one file, one topic. Bytes that are UTF-8 are their text.
  @Test func bytesThatAreNotUTF8StopTheRendering() throws {
    let template = try Template.compile("out/${topic(2)}/${*}.jsonl")
    #expect(
      try template.render(context: EvaluationContext(topic: "a/b", payload: [0x61, 0x62])) == "out/b/ab.jsonl"
    )
    for payload: [UInt8] in [[0xFF, 0x61], [0xFE, 0x61], [0x61, 0xC3]] {
      do {
        _ = try template.render(context: EvaluationContext(topic: "a/b", payload: payload))
        Issue.record("\(payload) rendered")
      } catch {
        #expect(
          error.described(in: template.source)
            == "the value is bytes that are not UTF-8 text (a binary payload: encode(*, 'base64') writes it as text); the rendering was stopped (at * in the template)"
        )
      }
    }
  }

  /// The text outside the `${...}` parts, as the archive's checks read it; nil when a part does
  /// not parse.
  @Test func literalRangesAreTheTextBetweenParts() {
    #expect(Template.literalRanges(of: "a/${topic(2)}/b${x}") == [0..<2, 13..<15])
    #expect(Template.literalRanges(of: "${x}${y}") == [])
    #expect(Template.literalRanges(of: "plain") == [0..<5])
    #expect(Template.literalRanges(of: "é/${'}'}/z") == [0..<3, 9..<11])
    #expect(Template.literalRanges(of: "a/${x") == nil)
  }
}
