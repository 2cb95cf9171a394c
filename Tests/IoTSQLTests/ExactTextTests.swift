import Testing

@testable import IoTSQL

/// Byte-exact text: `é` and `e` + U+0301 are two texts, and a `"` or `/` followed by a combining
/// mark is still a `"` or `/`.
@Suite struct ExactTextTests {
  @Test func keysAreBytes() {
    #expect(Set([ExactText("caf\u{E9}"), ExactText("cafe\u{301}")]).count == 2)
    #expect(ExactText("a") == ExactText("a"))
    #expect(!"caf\u{E9}".isExactly("cafe\u{301}"))
    #expect(!"cafe\u{301}/x".startsExactly(with: "caf\u{E9}"))
  }

  @Test func exampleTopicsSplitAtSlashBytes() {
    #expect(TopicFilter.exampleTopic("+/\u{301}x/#") == "x/\u{301}x/x")
  }

  @Test func replacingAndSplittingSeeEveryByte() {
    #expect("c\"\u{301}d".replacingExactly("\"", with: "\"\"") == "c\"\"\u{301}d")
    #expect("tok3n\u{301}".replacingExactly("tok3n", with: "***") == "***\u{301}")
    #expect("a/\u{301}b/c".splitExactly("/").map(String.init) == ["a", "\u{301}b", "c"])
    #expect("/a//".splitExactly("/").map(String.init) == ["", "a", "", ""])
    #expect(
      Substring("..").isExactlyDotDot && Substring(".").isExactlyDot && !Substring(".\u{301}").isExactlyDot)
  }
}
