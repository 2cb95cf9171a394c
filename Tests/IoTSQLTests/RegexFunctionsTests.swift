import Foundation
import Testing

@testable import IoTSQL

struct RegexFunctionsTests {
  struct Row: Sendable, CustomStringConvertible {
    let function: String
    let arguments: [Value]
    let expected: Value
    var description: String { "\(function)\(arguments)" }
  }

  static let rows: [Row] = [
    // The AWS guide's examples.
    Row(function: "regexp_matches", arguments: [.string("aaaa"), .string("a{2,}")], expected: .bool(true)),
    Row(
      function: "regexp_replace", arguments: [.string("abcd"), .string("b(.*)d"), .string("$1")],
      expected: .string("ac")),
    Row(
      function: "regexp_substr", arguments: [.string("hihihello"), .string("(hi)*")],
      expected: .string("hihi")),
    // Java's \d \w \s are ASCII (ICU's are Unicode); an empty pattern matches the empty string.
    Row(
      function: "regexp_replace", arguments: [.string("Café-x_1"), .string("\\W"), .string("")],
      expected: .string("Cafx_1")),
    Row(
      function: "regexp_replace", arguments: [.string("Café-x_1"), .string("[\\w-]"), .string("")],
      expected: .string("é")),
    Row(
      function: "regexp_replace", arguments: [.string("Café-x_1"), .string("[^\\W]"), .string("")],
      expected: .string("é-")),
    Row(function: "regexp_substr", arguments: [.string("٣4"), .string("\\d")], expected: .string("4")),
    Row(
      function: "regexp_replace", arguments: [.string("a\\db"), .string("\\Q\\d\\E"), .string("!")],
      expected: .string("a!b")),
    Row(
      function: "regexp_replace", arguments: [.string("a\u{A0}b c"), .string("\\s"), .string("_")],
      expected: .string("a\u{A0}b_c")),
    Row(function: "regexp_matches", arguments: [.string("abc"), .string("")], expected: .bool(true)),
    // Java's `\R` gives back the `\n` of a CR LF when what follows needs it (ICU's does not).
    Row(
      function: "regexp_substr", arguments: [.string("ab\r\nab"), .string("\\R\\W{1,3}")],
      expected: .string("\r\n")),
    Row(
      function: "regexp_replace",
      arguments: [.string("a\r\nb\u{2028}c\\R"), .string("\\R|\\\\R"), .string("/")],
      expected: .string("a/b/c/")),
    Row(
      function: "regexp_substr", arguments: [.string("R\r\n"), .string("[\\R]")], expected: .undefined),
    // Quantified, it takes a whole CR LF each time, as Java's does.
    Row(
      function: "regexp_replace",
      arguments: [.string("one\r\ntwo\r\n\r\nthree"), .string("\\R{2,}"), .string("<P>")],
      expected: .string("one\r\ntwo<P>three")),
    Row(
      function: "regexp_matches", arguments: [.string("a\r\nb"), .string("a\\R+\\nb")], expected: .bool(false)
    ),
    Row(
      function: "regexp_matches", arguments: [.string("\r\n"), .string("^\\R\\R$")], expected: .bool(true)),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string(""), .string("-")],
      expected: .string("-a-b-c-")),
    // Matches somewhere, not the whole string.
    Row(function: "regexp_matches", arguments: [.string("xxabyy"), .string("ab")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("xxabyy"), .string("^ab")], expected: .bool(false)),
    Row(
      function: "regexp_matches", arguments: [.string("Hello"), .string("(?i)hello")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("a\nb"), .string("a.b")], expected: .bool(false)),
    Row(function: "regexp_matches", arguments: [.string("a\nb"), .string("(?s)a.b")], expected: .bool(true)),
    // Replacement: all matches, groups, escapes, empty matches, named groups.
    Row(
      function: "regexp_replace", arguments: [.string("a1b22c333"), .string("[0-9]+"), .string("#")],
      expected: .string("a#b#c#")),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("x*"), .string("-")],
      expected: .string("-a-b-c-")),
    Row(
      function: "regexp_replace", arguments: [.string("price 5"), .string("(\\d)"), .string("\\$$1")],
      expected: .string("price $5")),
    Row(
      function: "regexp_replace",
      arguments: [.string("2024-01-31"), .string("(?<y>\\d+)-(\\d+)-(\\d+)"), .string("$3/$2/${y}")],
      expected: .string("31/01/2024")),
    // `$12` with one group is group 1 then "2", as Java.
    Row(
      function: "regexp_replace", arguments: [.string("ab"), .string("(a)"), .string("$12")],
      expected: .string("a2b")),
    // A group that did not take part appends nothing.
    Row(
      function: "regexp_replace", arguments: [.string("b"), .string("(a)?b"), .string("[$1]")],
      expected: .string("[]")),
    Row(
      function: "regexp_replace", arguments: [.string("héllo wörld"), .string("ö"), .string("o")],
      expected: .string("héllo world")),
    Row(
      function: "regexp_replace", arguments: [.string("no match"), .string("z"), .string("$9")],
      expected: .undefined),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("b"), .string("$9")],
      expected: .undefined),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("b"), .string("x\\")],
      expected: .undefined),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("b"), .string("$x")],
      expected: .undefined),
    // First match; no match is the empty string.
    Row(
      function: "regexp_substr", arguments: [.string("order 66 and 77"), .string("\\d+")],
      expected: .string("66")),
    Row(function: "regexp_substr", arguments: [.string("abc"), .string("\\d+")], expected: .string("")),
    Row(function: "regexp_substr", arguments: [.string("😀x😀y"), .string("x.")], expected: .string("x😀")),
    // Null, Undefined, invalid patterns at run time.
    Row(function: "regexp_matches", arguments: [.null, .string("a")], expected: .undefined),
    Row(function: "regexp_matches", arguments: [.string("a"), .undefined], expected: .undefined),
    Row(function: "regexp_replace", arguments: [.string("a"), .string("a"), .null], expected: .undefined),
    Row(function: "regexp_substr", arguments: [.undefined, .string("a")], expected: .undefined),
    Row(function: "regexp_matches", arguments: [.string("a"), .string("(a")], expected: .undefined),
    Row(function: "regexp_substr", arguments: [.string("a"), .string("[a")], expected: .undefined),
    Row(
      function: "regexp_replace", arguments: [.string("a"), .string("\\q"), .string("x")],
      expected: .undefined),
    // A `}` that closes nothing is a literal to Java; quantifiers and \p{...} still close theirs.
    Row(function: "regexp_matches", arguments: [.string("a}"), .string("}")], expected: .bool(true)),
    Row(
      function: "regexp_replace", arguments: [.string("{a}"), .string("a}"), .string("b")],
      expected: .string("{b")),
    Row(function: "regexp_matches", arguments: [.string("aa}"), .string("^a{2}}$")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("é}"), .string("^\\p{L}}$")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("}"), .string("[}]")], expected: .bool(true)),
    // A `-` in a set that is no range is a character to Java, where ICU reads set differences
    // (`[[a-c]-[b]]` matched `a` and `c` only); after a range, `--b` is the range from `-` to `b`.
    Row(
      function: "regexp_replace", arguments: [.string("a-bcd"), .string("[[a-c]-[b]]"), .string("<$0>")],
      expected: .string("<a><-><b><c>d")),
    Row(
      function: "regexp_replace", arguments: [.string("a-b^cd"), .string("[a-c--b]"), .string("<$0>")],
      expected: .string("<a><-><b><^><c>d")),
    Row(
      function: "regexp_replace", arguments: [.string("ab-c1"), .string("[\\p{L}-[a]]"), .string("<$0>")],
      expected: .string("<a><b><-><c>1")),
    Row(
      function: "regexp_replace", arguments: [.string("!\"#,-./"), .string("[!--]"), .string("<$0>")],
      expected: .string("<!><\"><#><,><->./")),
    Row(
      function: "regexp_replace", arguments: [.string("ABCD-"), .string("[\\x41-\\x43-]"), .string("<$0>")],
      expected: .string("<A><B><C>D<->")),
    Row(function: "regexp_matches", arguments: [.string("x-y"), .string("[x--y]")], expected: .undefined),
    // After a property, a `-` is a character too; one `&` is a character (an intersection to ICU);
    // a `]` first in a set is a character; a range ending in a class is an error to Java.
    Row(
      function: "regexp_replace",
      arguments: [.string("a-b1&"), .string("[\\p{L}-\\p{Punct}]"), .string("<$0>")],
      expected: .string("<a><-><b>1<&>")),
    Row(
      function: "regexp_replace", arguments: [.string("abc&d"), .string("[[ab]&[bc]]"), .string("<$0>")],
      expected: .string("<a><b><c><&>d")),
    Row(
      function: "regexp_replace", arguments: [.string("]ab"), .string("[^]a]"), .string("<$0>")],
      expected: .string("]a<b>")),
    Row(function: "regexp_matches", arguments: [.string("z"), .string("[a-\\p{L}]")], expected: .undefined),
    // Java's properties ICU lacks.
    Row(
      function: "regexp_replace",
      arguments: [.string("aé1ǅ"), .string("\\p{javaAlphabetic}"), .string("<$0>")],
      expected: .string("<a><é>1<ǅ>")),
    Row(
      function: "regexp_replace",
      arguments: [.string("a漢1"), .string("\\p{javaIdeographic}"), .string("<$0>")],
      expected: .string("a<漢>1")),
    Row(
      function: "regexp_replace", arguments: [.string("a_1-é"), .string("\\p{IsWord}"), .string("<$0>")],
      expected: .string("<a><_><1>-<é>")),
    Row(
      function: "regexp_replace", arguments: [.string("aé漢"), .string("[^\\p{L1}]"), .string("<$0>")],
      expected: .string("aé<漢>")),
    Row(
      function: "regexp_replace", arguments: [.string("a1-"), .string("\\p{IsLD}"), .string("<$0>")],
      expected: .string("<a><1>-")),
    Row(
      function: "regexp_replace",
      arguments: [.string("aªA"), .string("\\p{javaLowerCase}"), .string("<$0>")],
      expected: .string("<a><ª>A")),
    Row(
      function: "regexp_replace", arguments: [.string("af٠g"), .string("\\p{IsHex_Digit}"), .string("<$0>")],
      expected: .string("<a><f><٠>g")),
    // Under `(?i)`, `Character.isLowerCase`-like properties hold anything cased (`Ⅰ`, `ª`).
    Row(
      function: "regexp_replace",
      arguments: [.string("aAⅠª1"), .string("(?i)\\p{javaLowerCase}"), .string("<$0>")],
      expected: .string("<a><A><Ⅰ><ª>1")),
    // ... spelled in any case after `Is`, as Java reads a binary property's name (JDK 17).
    Row(
      function: "regexp_replace",
      arguments: [.string("aǅBⅠ1"), .string("(?i)[x\\p{IsLOWERCASE}]+"), .string("<$0>")],
      expected: .string("<aǅBⅠ>1")),
    Row(
      function: "regexp_replace",
      arguments: [.string("aǅBⅠ1"), .string("(?i)\\p{IsTitleCase}+"), .string("<$0>")],
      expected: .string("<aǅBⅠ>1")),
    // Under `(?i)` too, a `]` first in a set is a character: the set goes on (JDK 17).
    Row(
      function: "regexp_replace",
      arguments: [.string("?:()i!]1"), .string("(?i)[]\\p{L}]+"), .string("<$0>")],
      expected: .string("?:()<i>!<]>1")),
    Row(
      function: "regexp_replace",
      arguments: [.string("?:()i!]1"), .string("(?i)[^]\\p{L}]+"), .string("<$0>")],
      expected: .string("<?:()>i<!>]<1>")),
    // Java has no POSIX bracket classes: `[[:alpha:]]` is the set of `:`, `a`, `l`, `p`, `h`.
    Row(
      function: "regexp_matches", arguments: [.string("x"), .string("[[:alpha:]]")], expected: .bool(false)),
    Row(
      function: "regexp_matches", arguments: [.string("h"), .string("[[:alpha:]]")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string(":"), .string("^[:digit:]$")], expected: .bool(true)),
    Row(
      function: "regexp_replace", arguments: [.string("a:1"), .string("[:\\d]"), .string("_")],
      expected: .string("a__")),
    Row(
      function: "regexp_matches", arguments: [.string("x"), .string("^[^:alpha:]$")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("b"), .string("^[:-z]$")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("a[:b"), .string("\\Q[:\\E")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("a"), .string("^[\\[:a]$")], expected: .bool(true)),
    // Java's POSIX classes \p{Name} are ASCII: Punct holds `$+<=>^`|~` (symbols to Unicode), Alpha
    // and Lower no `é`; \P negates; inside a set they nest. Checked against Java 17 for every
    // class and form over ASCII and nine non-ASCII characters.
    Row(
      function: "regexp_matches", arguments: [.string("$+<=>^`|~"), .string("^\\p{Punct}+$")],
      expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("’"), .string("\\p{Punct}")], expected: .bool(false)),
    Row(
      function: "regexp_matches", arguments: [.string("é"), .string("\\p{Alpha}")], expected: .bool(false)),
    Row(
      function: "regexp_matches", arguments: [.string("é"), .string("^\\P{Lower}$")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("٠"), .string("\\p{Digit}")], expected: .bool(false)),
    Row(
      function: "regexp_replace",
      arguments: [.string("a-B c!"), .string("[\\p{Punct}\\p{Blank}]"), .string("_")],
      expected: .string("a_B_c_")),
    Row(function: "regexp_matches", arguments: [.string("é"), .string("\\p{L}")], expected: .bool(true)),
    // Java's flags U (Unicode classes) and u (Unicode case), unknown to ICU, are taken out of inline
    // groups; with U the classes are Unicode (checked against Java 17).
    Row(function: "regexp_matches", arguments: [.string("é"), .string("(?U)\\w")], expected: .bool(true)),
    Row(
      function: "regexp_replace", arguments: [.string("éa(?U)"), .string("(?U:\\w)"), .string("_")],
      expected: .string("__(?_)")),
    Row(function: "regexp_matches", arguments: [.string("é"), .string("(?iU)É")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("A"), .string("(?iu)a")], expected: .bool(true)),
    Row(function: "regexp_matches", arguments: [.string("a"), .string("(?i-u:A)")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("’"), .string("(?U)\\p{Punct}")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("(?U)"), .string("\\(\\?U\\)")], expected: .bool(true)),
    // Not inside \Q...\E or a set; (?-U) clears it; the other Java readings still apply after it.
    Row(
      function: "regexp_replace", arguments: [.string("éa(?u)}b"), .string("\\Q(?u)\\E"), .string("_")],
      expected: .string("éa_}b")),
    Row(
      function: "regexp_replace", arguments: [.string("éa(?u)}b"), .string("[(?u)]"), .string("_")],
      expected: .string("éa____}b")),
    Row(function: "regexp_matches", arguments: [.string("é"), .string("(?-U)\\w")], expected: .bool(false)),
    Row(
      function: "regexp_matches", arguments: [.string("é"), .string("\\w(?U)\\w")], expected: .bool(false)),
    Row(function: "regexp_matches", arguments: [.string("a}"), .string("(?U)}")], expected: .bool(true)),
    // A replacement is read scalar by scalar, as Java reads it: `$1` then a combining mark is group
    // 1 and the mark (read by grapheme cluster, the digit and mark made one, and no group).
    Row(
      function: "regexp_replace",
      arguments: [.string("42"), .string("([0-9])"), .string("$1\u{FE0F}\u{20E3}")],
      expected: .string("4\u{FE0F}\u{20E3}2\u{FE0F}\u{20E3}")),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("(b)"), .string("$1\u{301}")],
      expected: .string("ab\u{301}c")),
    Row(
      function: "regexp_replace", arguments: [.string("abc"), .string("(b)"), .string("\\$\u{301}")],
      expected: .string("a$\u{301}c")),
    // Under `s`, Java's `.` is one character, a CR of CR LF too (ICU's took the pair as one): each
    // result is JDK 17's. Outside `s` neither matches a line end.
    Row(
      function: "regexp_replace", arguments: [.string("a\r\nb"), .string("(?s)."), .string("x")],
      expected: .string("xxxx")),
    Row(
      function: "regexp_matches", arguments: [.string("a\r\nb"), .string("(?s)a.{2}b")], expected: .bool(true)
    ),
    Row(
      function: "regexp_substr", arguments: [.string("a\r\nb"), .string("(?s)a.")], expected: .string("a\r")),
    Row(
      function: "regexp_matches", arguments: [.string("foo\r\nbar"), .string("(?s)o.b")],
      expected: .bool(false)),
    Row(
      function: "regexp_replace", arguments: [.string("a\r\nb"), .string("(?s:a.)|."), .string("x")],
      expected: .string("x\nx")),
    Row(
      function: "regexp_replace", arguments: [.string("a\r\nb\u{1F600}"), .string("(?-s:.)"), .string("x")],
      expected: .string("x\r\nxx")),
    Row(
      function: "regexp_matches", arguments: [.string("a.b"), .string("(?s)a[.]b")], expected: .bool(true)),
    Row(
      function: "regexp_matches", arguments: [.string("axb"), .string("(?s)a\\.b")], expected: .bool(false)),
  ]

  static func call(_ name: String, _ arguments: [Value], prepared: (any Sendable)? = nil) -> Value {
    let spec = FunctionRegistry.lookup(name)!
    let call = FunctionCall(
      arguments: arguments[...], context: EvaluationContext(topic: "t", payload: []),
      version: .v2016_03_23, prepared: prepared)
    return spec.implementation(call)
  }

  /// Java's `(?i)` folds ASCII letters only, unless `u` (or `U`) is on too (ICU's `i` folds all of
  /// Unicode); one-letter categories (`\\pL`) read as Java reads them: each row's result is
  /// `Pattern.compile(pattern).matcher(text).find()` on JDK 17 (nil where it refuses the pattern).
  @Test(
    arguments: [
      ("(?i)é", "É", false),
      ("(?i)é", "é", true),
      ("(?i)É", "é", false),
      ("(?iu)é", "É", true),
      ("(?i)ä", "ÄRGER", false),
      ("(?i)ß", "ss", false),
      ("(?i)ss", "ß", false),
      ("(?i)σ", "Σ", false),
      ("(?i)k", "K", true),
      ("(?i)s", "ſ", false),
      ("(?i)abc", "ABC", true),
      ("(?i)abc", "xAbCx", true),
      ("(?i)[a-c]+", "XBCAX", true),
      ("(?i)[^a]", "A", false),
      ("(?i)[^a]", "b", true),
      ("(?i)[Z-a]", "z", true),
      ("(?i)[Z-a]", "A", true),
      ("(?i)[Z-a]", "_", true),
      ("(?i)[0-9a-f]+", "DEADbeef", true),
      ("(?i)\\Qa.b\\E", "A.B", true),
      ("(?i)\\Qa.b\\E", "AxB", false),
      ("(?i:ab)c", "ABc", true),
      ("(?i:ab)c", "ABC", false),
      ("a(?i)b", "aB", true),
      ("a(?i)b", "AB", false),
      ("(a(?i)b)c", "aBc", true),
      ("(a(?i)b)c", "aBC", false),
      ("(?i)(?-i)a", "A", false),
      ("(?i)\\x41", "a", true),
      ("(?i)\\p{Lu}", "a", true),
      ("(?i)(?<first>ab)\\k<first>", "abab", true),
      ("(?i)(?<first>ab)\\k<first>", "ABab", true),
      ("(?i)\\u00e9", "É", false),
      ("(?i)[\\u00e0-\\u00ff]", "É", false),
      ("(?iu)[\\u00e0-\\u00ff]", "É", true),
      ("(?i)caf[eé]", "CAFÉ", false),
      ("(?i)caf[eé]", "CAFE", true),
      ("(?i)[[a-c]&&[b-d]]", "B", true),
      ("(?i)[[a-c]&&[b-d]]", "A", false),
      ("(?i)\\w+", "ÉCOLE", true),
      ("(?i)x{2}", "XX", true),
      ("(?i)^temp.*$", "TEMPerature", true),
      ("(?ix) a b # comment", "AB", true),
      ("(?i)\\d+a", "12A", true),
      ("(?i)[a-\\x7A]", "^", false),
      ("(?i)[a-\\x7A]", "A", true),
      ("(?u)(?i)é", "É", true),
      ("(?i)(?u)é", "É", true),
      ("(?iu)(?-u)é", "É", false),
      ("(?iu)(?-u)a", "A", true),
      ("(?i)\\bfoo\\b", "FOO", true),
      ("(?i)a|b", "B", true),
      ("(?i)(?:x)Y", "xy", true),
      ("(?i)\\cA", "\u{1}", true),
      ("(?i)[\\x41-\\x43]+", "abc", true),
      ("(?i)[\\x61-c]+", "ABC", true),
      ("(?i)\\x{61}", "A", true),
      ("(?i)\\u0061", "A", true),
      ("(?i)\\0141", "A", true),
      ("(?i)[A]", "a", true),
      ("(?i)(a)\\1", "aA", true),
      ("(?i)[^\\x41]", "a", false),
      ("(?i)\\p{Lower}", "A", true),
      ("(?i)[\\p{Lu}]", "a", true),
      ("(?i)a-b", "A-B", true),
      ("(?i)[-a]", "A", true),
      ("(?i)[a-]", "A", true),
      ("(?i)[a\\-z]", "Z", true),
      ("(?i)[a\\-z]", "b", false),
      ("(?i)\\Q[a]\\E", "[A]", true),
      ("(?i)a{1,2}B", "AAb", true),
      ("(?is)A.b", "a\nB", true),
      ("(?i)[\\w&&[^\\d]]", "A", true),
      ("(?i)\\p{Ll}", "A", true),
      ("(?i)\\p{Lu}", "é", true),
      ("(?i)\\P{Lu}", "a", false),
      ("(?i)[\\p{Upper}]", "b", true),
      ("(?i)\\p{Upper}", "é", false),
      ("(?i)\\p{IsLu}", "a", true),
      ("(?iU)É", "é", true),
      ("(?iU)(?-U)É", "é", false),
      ("(?iu)(?-U)É", "é", false),
      ("(?U)(?i)É", "é", true),
      ("(?i)[\\.-Z]", "q", true),
      ("(?i)[\\[-z]", "A", true),
      ("(?i)[\\--Z]", "q", true),
      ("(?i)[\\t-z]", "A", true),
      ("(?i)[A-\\]]", "a", true),
      ("(?i)[a-\\]]", "A", nil),
      ("(?i)\\p{IsLowercase}", "A", true),
      ("(?i)\\p{IsUppercase}", "a", true),
      ("(?i)\\p{javaLowerCase}", "A", true),
      ("(?i)\\p{javaLowerCase}", "É", true),
      ("(?i)\\p{javaUpperCase}", "a", true),
      ("(?i)\\p{gc=Lu}", "a", true),
      ("(?i)\\p{general_category=Lu}", "a", true),
      ("(?i)\\N{LATIN SMALL LETTER A}", "A", true),
      ("(?i)", "", true),
      ("(?i)", "x", true),
      ("(?i)\\Q\\E", "x", true),
      ("(?ix)a # [x\n b", "aB", true),
      ("(?x)(?i:a # (note\n)b", "AB", false),
      ("(?i)(?i-i:a)", "A", false),
      ("(?i)a(?i-i)b", "AB", false),
      ("(?i)\\p{Alpha}", "K", false),
      ("(?i)\\p{L}", "a", true),
      ("(?i)\\pL", "A", true),
      ("(?i)[\\p{javaLowerCase}]", "A", true),
      ("(?i)\\p{InGreek}", "σ", true),
      ("(?i)[a-\\d]", "a", nil),
      ("\\pL", "A", true),
      ("\\PL", "1", true),
      ("[\\pN]", "5", true),
      ("(?i)\\pL", "A", true),
      ("\\pLu", "Au", true),
      ("(?i-u)", "", true),
      ("(?i)(?-u)", "x", true),
      ("(?u)", "", true),
      ("(?U)", "x", true),
      ("\\ps", "a", nil),
      ("\\pl", "a", nil),
      ("(?i)(?-iu)(?-i)", "x", true),
    ] as [(String, String, Bool?)])
  func caseInsensitivityIsJavas(_ pattern: String, _ text: String, _ java: Bool?) {
    // nil: Java refuses the pattern, and the call is Undefined.
    #expect(
      Self.call("regexp_matches", [.string(text), .string(pattern)]) == (java.map(Value.bool) ?? .undefined))
  }

  /// Runs a row twice: with every argument a constant (compiled by `prepare`) and as run-time
  /// values (compiled through the cache).
  @Test(arguments: rows)
  func row(_ row: Row) throws {
    #expect(Self.call(row.function, row.arguments) == row.expected)
    let spec = try #require(FunctionRegistry.lookup(row.function))
    if let prepared = try? spec.prepare?(row.arguments.map { $0 }, .v2016_03_23) {
      #expect(Self.call(row.function, row.arguments, prepared: prepared) == row.expected)
    }
  }

  @Test(arguments: [
    ("(a", 1, "invalid regular expression at offset 2: unbalanced parenthesis"),
    ("[a", 1, "invalid regular expression at offset 2: unclosed character class"),
    ("a{3,1}", 1, "invalid regular expression at offset 6: repetition maximum is below its minimum"),
    // The offset in the pattern as written, not in its translation for ICU (`\s\w)x` said 37).
    (#"\s\w)x"#, 1, "invalid regular expression at offset 5: unbalanced parenthesis"),
    (#"\d\dx{2,1}"#, 1, "invalid regular expression at offset 10: repetition maximum is below its minimum"),
    // ICU counts from its line's start: the lines before are added (`abcdef\n[z-a]` said 4).
    ("abcdef\n[z-a]", 1, "invalid regular expression at offset 11: character range out of order"),
    ("ab\r\ncd\r)", 1, "invalid regular expression at offset 8: unbalanced parenthesis"),
    ("ab\r\n)", 1, "invalid regular expression at offset 5: unbalanced parenthesis"),
  ])
  func invalidConstantPatternIsACompileError(_ pattern: String, _ index: Int, _ message: String) {
    let spec = FunctionRegistry.lookup("regexp_matches")!
    #expect {
      _ = try spec.prepare?([nil, .string(pattern)], .v2016_03_23)
    } throws: { error in
      guard let error = error as? FunctionPrepareError else { return false }
      return error.argument == index && error.message == message
    }
  }

  /// A pattern past the length limit is refused at once: ICU's compile time grows with the square
  /// of its groups (`(a*)*` 60,000 times, from a payload, took 31 s, past every evaluation limit).
  @Test func overlongPatternsAreRefused() {
    let hostile = String(repeating: "(a*)*", count: 60_000)
    #expect(Self.call("regexp_matches", [.string(""), .string(hostile)]) == .undefined)
    let limit = String(repeating: "a", count: CompiledRegex.maximumPatternLength)
    #expect(Self.call("regexp_matches", [.string(limit), .string(limit)]) == .bool(true))
    guard case .failure(let error) = CompiledRegex.compile(limit + "a") else {
      Issue.record("compiled")
      return
    }
    #expect(
      error.description == "invalid regular expression: longer than 10000 characters (the limit of iotrules)")
  }

  @Test func invalidConstantReplacementIsACompileError() {
    let spec = FunctionRegistry.lookup("regexp_replace")!
    #expect {
      _ = try spec.prepare?([nil, .string("(a)"), .string("$2")], .v2016_03_23)
    } throws: { error in
      (error as? FunctionPrepareError)?.argument == 2
        && (error as? FunctionPrepareError)?.message == "invalid replacement: no group 2"
    }
  }

  @Test func nonConstantPatternIsNotPrepared() throws {
    let spec = try #require(FunctionRegistry.lookup("regexp_substr"))
    #expect(try spec.prepare?([.string("x"), nil], .v2016_03_23) == nil)
  }

  @Test(arguments: ["regexp_matches", "regexp_substr"])
  func catastrophicBacktrackingStopsWithinTheBudget(_ name: String) {
    let before = RegexBudget.overruns
    let started = ContinuousClock.now
    let result = Self.call(name, [.string(String(repeating: "a", count: 34) + "!"), .string("(a+)+$")])
    #expect(result == .undefined)
    #expect(RegexBudget.overruns > before)
    // Unbounded, the match takes hours; the bound leaves room for a loaded machine.
    #expect(ContinuousClock.now - started < .seconds(20))
  }

  @Test func catastrophicReplacementStopsWithinTheBudget() {
    let before = RegexBudget.overruns
    let result = Self.call(
      "regexp_replace", [.string(String(repeating: "x", count: 40) + "y"), .string("(x+x+)+z"), .string("-")])
    #expect(result == .undefined)
    #expect(RegexBudget.overruns > before)
  }

  /// A pattern that retries from every position costs the square of the text's length: over a few
  /// thousand characters it ends as in Java (it was Undefined beyond about 1,400).
  @Test func retriesFromEveryPositionOverLongerTextsEnd() {
    let digits = String(repeating: "1", count: 3_000) + "x"
    #expect(Self.call("regexp_matches", [.string(digits), .string("[0-9]+$")]) == .bool(false))
    let words = String(repeating: "hello world ", count: 150)
    #expect(
      Self.call("regexp_replace", [.string(words), .string("[a-z ]+!"), .string("")]) == .string(words))
  }

  /// What no Java string could hold, and took this process gigabytes: Undefined.
  @Test func replacementsPastTheResultLimitAreUndefined() {
    let text = String(repeating: "a", count: 4_000)
    let insert = String(repeating: "b", count: 4_000)
    #expect(Self.call("regexp_replace", [.string(text), .string(""), .string(insert)]) == .undefined)
    #expect(Self.call("regexp_replace", [.string(text), .string("a"), .string(insert)]) == .undefined)
    let within = Self.call("regexp_replace", [.string(text), .string("a"), .string("bb")])
    #expect(within == .string(String(repeating: "bb", count: 4_000)))
  }

  @Test func manyMatchesInALongTextDoNotExhaustTheBudget() {
    let text = String(repeating: "ab", count: 100_000)
    let result = Self.call("regexp_replace", [.string(text), .string("b"), .string("c")])
    #expect(result == .string(String(repeating: "ac", count: 100_000)))
  }

  @Test func concurrentCallsShareOneCompiledPattern() async throws {
    let spec = try #require(FunctionRegistry.lookup("regexp_replace"))
    let prepared = try spec.prepare?([nil, .string("(\\w+)@(\\w+)"), .string("$2 at $1")], .v2016_03_23)
    let box = PreparedBox(value: prepared)
    await withTaskGroup(of: Bool.self) { group in
      for index in 0..<8 {
        group.addTask {
          var ok = true
          for round in 0..<200 {
            let value = Self.call(
              "regexp_replace",
              [.string("u\(index)x\(round)@host"), .string("(\\w+)@(\\w+)"), .string("$2 at $1")],
              prepared: box.value)
            ok = ok && value == .string("host at u\(index)x\(round)")
          }
          return ok
        }
      }
      for await ok in group { #expect(ok) }
    }
  }

  struct PreparedBox: @unchecked Sendable {
    let value: (any Sendable)?
  }
}
