import Foundation
import IoTSQL
import RulesEngine

/// A rule test file beside its rule: `Rules/high_temp.test.json` (or `.test.yaml`, `.test.yml`).
///
/// It holds an array of cases (or `{"cases": [...]}`), each
/// `{"name", "topic", "payload" | "payload_base64", "clientId"?, "timestamp"?, "context"?, "expect"}`
/// (`context`: the other context functions' values, as an `eval --batch` request pins them,
/// ``ContextPins``) where
/// `expect` is `{"output": VALUE}`, `{"empty_output": true}` (a match whose payload is empty, as a
/// `SELECT VALUE` of a field the message lacks sends), `{"no_match": true}` or
/// `{"actions": [{"kind", FIELD...}]}`.
/// A `payload` string is the payload's text as is; any other JSON value is written as compact JSON.
/// An `actions` expectation lists every action in order; of each, only the fields written are
/// compared. `timestamp` (epoch milliseconds) pins `timestamp()`; without it, it is 0.
public struct RuleTestFile: Sendable {
  /// One case.
  public struct Case: Sendable {
    /// The case's name.
    public var name: String
    /// Where it starts in the test file.
    public var position: FilePosition
    /// The message.
    public var context: EvaluationContext
    /// What should happen.
    public var expectation: Expectation
  }

  /// What a case expects.
  public enum Expectation: Sendable {
    /// The SELECT output (Undefined: an empty payload).
    case output(Value)
    /// No match (FROM or WHERE).
    case noMatch
    /// The actions' rendered fields, in order (only the written fields compared).
    case actions([Value])
  }

  /// The test file as given.
  public var file: String
  /// The cases in file order.
  public var cases: [Case]

  /// The suffixes of test files, in the order they are looked for.
  public static let suffixes = RuleFile.testSuffixes

  /// True when `path` names a test file.
  public static func isTestFile(_ path: String) -> Bool { RuleFile.isTestFile(path) }

  /// The test file beside a rule file, if there is one: `Rules/a.json` → `Rules/a.test.json`.
  public static func companion(ofRule path: String) -> String? { companions(ofRule: path).first }

  /// Every test file beside a rule file (`a.test.json` and `a.test.yaml` may both be there: all
  /// run, in `iotrules test` as in the gate of `check` and `run`).
  /// A name there counts, whatever it points to: a symbolic link to nothing is a test file that
  /// cannot be read (an error), not no tests (a moved fixtures folder ended a rule's tests without
  /// a word in `check` and `run`, while `test` failed).
  public static func companions(ofRule path: String) -> [String] {
    RuleFile.testFilePaths(of: path).filter { candidate in
      var status = stat()
      return lstat(candidate, &status) == 0
    }
  }

  /// The rule file a test file belongs to: `Rules/a.test.json` → `Rules/a.json` (or `.yaml`, `.yml`).
  public static func rule(ofTest path: String) -> String? {
    RuleFile.ruleFilePaths(ofTest: path).first { FileManager.default.fileExists(atPath: $0) }
  }

  /// A case left out for its problems.
  public struct InvalidCase: Sendable {
    /// Its `name`, or `case N` (its number in the file) without one.
    public var name: String
    /// Where the case starts.
    public var position: FilePosition
    /// What is wrong with it, in file order.
    public var problems: [RuleDiagnostic]
  }

  /// Reads a test file; errors say where, and any invalid case makes the whole file an error.
  public static func load(path: String) throws(RuleFileError) -> RuleTestFile {
    let (tests, invalid) = try loadCases(path: path)
    if !invalid.isEmpty { throw RuleFileError(invalid.flatMap(\.problems)) }
    return tests
  }

  /// Parses test file text; any invalid case makes the whole file an error.
  public static func parse(file: String, bytes: [UInt8]) throws(RuleFileError) -> RuleTestFile {
    let (tests, invalid) = try parseCases(file: file, bytes: bytes)
    if !invalid.isEmpty { throw RuleFileError(invalid.flatMap(\.problems)) }
    return tests
  }

  /// Reads a test file with its valid cases and the others with their problems (in file order), so
  /// that `iotrules test` and the reload gate run what they can; throws when the file as a whole
  /// cannot be read as cases.
  public static func loadCases(path: String) throws(RuleFileError) -> (RuleTestFile, [InvalidCase]) {
    switch RegularFile.read(path, limit: maxBytes) {
    case .success(let bytes): return try parseCases(file: path, bytes: bytes)
    case .failure(let unreadable):
      let message =
        unreadable.tooLarge
        ? (unreadable.size.map { "the file is \($0) bytes" } ?? "the file grew while read")
          + "; a test file is at most \(maxBytes) bytes (4 MiB): split its cases between \(RuleFile.stem(ofTest: path) ?? path).test.json, .test.yaml and .test.yml"
        : "cannot read it (\(unreadable))"
      throw RuleFileError([
        RuleDiagnostic(file: path, position: FilePosition(line: 1, column: 1), message: message)
      ])
    }
  }

  /// The largest test file read, 4 MiB: reading one costs about twenty times its size in memory,
  /// and `check` and `run` read the tests of every rule (a log saved as `x.test.json` by mistake took
  /// 1.5 GB). As YAML, about 4 MB of text and values is also where its expansion limit refuses it.
  public static let maxBytes = 4 << 20

  /// The valid cases of test file text and the others with their problems.
  static func parseCases(file: String, bytes: [UInt8]) throws(RuleFileError) -> (
    RuleTestFile, [InvalidCase]
  ) {
    let root: RuleNode
    // A key repeated inside a case makes that case invalid, at its line; the others still run.
    var duplicates: [RuleSyntaxError] = []
    do {
      root = try RuleDocument.parse(bytes, file: file, duplicates: &duplicates)
    } catch {
      throw RuleFileError([RuleDiagnostic(file: file, position: error.position, message: error.message)])
    }
    var diagnostics: [RuleDiagnostic] = []
    func report(_ position: FilePosition, _ message: String) {
      diagnostics.append(RuleDiagnostic(file: file, position: position, message: message))
    }
    var list: [RuleNode] = []
    if case .array(let elements) = root.kind {
      list = elements
    } else if case .array(let elements)? = root["cases"]?.kind {
      list = elements
      // Beside `cases` nothing is read: a misspelt key (`case`, holding more cases) was skipped
      // without a word, and its cases never ran. Other keys (a YAML anchor's holder, `$schema`)
      // are left alone.
      let unknown = (root.members ?? []).filter { member in
        guard member.key != "cases" else { return false }
        if !FunctionRegistry.didYouMean(member.key, among: ["cases"]).isEmpty { return true }
        guard case .array(let elements) = member.value.kind else { return false }
        return !elements.isEmpty && elements.allSatisfy { $0["expect"] != nil }
      }.map { member in
        RuleDiagnostic(
          file: file, position: member.keyPosition,
          message:
            "unknown key '\(member.key)' beside 'cases'\(FunctionRegistry.didYouMean(member.key, among: ["cases"])); "
            + "a test file is an array of cases or {\"cases\": [...]}")
      }
      if !unknown.isEmpty { throw RuleFileError(unknown) }
    } else {
      throw RuleFileError([
        RuleDiagnostic(
          file: file, position: root.position,
          message: "a test file holds an array of cases (or {\"cases\": [...]})")
      ])
    }
    // Each repeated key to the case that holds its first use; one outside every case (beside
    // `cases`) is the file's.
    var caseDuplicates: [Int: [RuleSyntaxError]] = [:]
    var fileDuplicates: [RuleDiagnostic] = []
    for duplicate in duplicates {
      if let first = duplicate.firstUse, let index = list.firstIndex(where: { $0.holdsKey(at: first) }) {
        caseDuplicates[index, default: []].append(duplicate)
      } else {
        fileDuplicates.append(
          RuleDiagnostic(file: file, position: duplicate.position, message: duplicate.message))
      }
    }
    if !fileDuplicates.isEmpty { throw RuleFileError(fileDuplicates) }
    var cases: [Case] = []
    var invalid: [InvalidCase] = []
    var seenNames: [String: FilePosition] = [:]
    let known: Set<String> = [
      "name", "topic", "payload", "payload_base64", "clientId", "timestamp", "context", "expect",
    ]
    /// One case named `name`, or nil when it has a problem (reported).
    func parseCase(_ index: Int, _ node: RuleNode, name: String) -> Case? {
      guard let members = node.members else {
        report(node.position, "case \(index + 1) must be an object")
        return nil
      }
      // How messages name the case: its name quoted (`case 'hot reading'`), else its number.
      let label = node["name"]?.string.map { "case '\($0)'" } ?? name
      // Reports and diffs tell cases by name: two with one name would be one line of a JUnit report.
      if let earlier = seenNames.updateValue(node.position, forKey: name) {
        report(
          node["name"]?.position ?? node.position,
          "\(label): another case has this name (line \(earlier.line)); give each case its own")
      }
      if let given = node["name"], given.string == nil {
        report(given.position, "\(label): 'name' must be a string, not \(given.kindName)")
      }
      for member in members where !known.contains(member.key) {
        report(
          member.keyPosition,
          "\(label): unknown key '\(RuleFile.escapedName(member.key))'\(FunctionRegistry.didYouMean(member.key, among: Array(known)))"
            + "; expected \(known.sorted().joined(separator: ", "))")
      }
      guard let topic = node["topic"]?.string else {
        report(
          node["topic"]?.position ?? node.position,
          node["topic"] == nil ? "\(label): missing 'topic'" : "\(label): 'topic' must be a string")
        return nil
      }
      if let problem = TopicFilter.nameProblem(topic) {
        report(node["topic"]?.position ?? node.position, "\(label): 'topic' \(problem)")
        return nil
      }
      var payload: [UInt8] = []
      if let encoded = node["payload_base64"] {
        guard let text = encoded.string, let data = Base64.decode(text, requiringPadding: true) else {
          report(encoded.position, "\(label): 'payload_base64' is not base64")
          return nil
        }
        payload = data
        if node["payload"] != nil {
          report(encoded.position, "\(label): give 'payload' or 'payload_base64', not both")
        }
      } else if let given = node["payload"] {
        if let text = given.string {
          payload = Array(text.utf8)
        } else {
          JSONWriter.write(given.value, into: &payload)
        }
      }
      var clientID: String?
      if let given = node["clientId"] {
        guard let text = given.string else {
          report(given.position, "\(label): 'clientId' must be a string")
          return nil
        }
        clientID = text
      }
      var timestamp = 0
      if let given = node["timestamp"] {
        guard let value = given.int else {
          report(given.position, "\(label): 'timestamp' must be whole epoch milliseconds")
          return nil
        }
        timestamp = value
      }
      guard let expect = node["expect"], let expectMembers = expect.members, expectMembers.count == 1 else {
        report(
          node["expect"]?.position ?? node.position,
          node["expect"] == nil
            ? "\(label): missing 'expect', one of {\"output\": ...}, {\"empty_output\": true}, {\"no_match\": true}, {\"actions\": [...]}"
            : "\(label): 'expect' must be one of {\"output\": ...}, {\"empty_output\": true}, {\"no_match\": true}, {\"actions\": [...]}"
        )
        return nil
      }
      let expectation: Expectation
      switch expectMembers[0].key {
      case "output": expectation = .output(expectMembers[0].value.value)
      case "empty_output":
        // A bare Undefined: what `output` cannot say in JSON.
        guard expectMembers[0].value.bool == true else {
          report(expectMembers[0].value.position, "\(label): 'empty_output' must be true")
          return nil
        }
        expectation = .output(.undefined)
      case "no_match":
        guard expectMembers[0].value.bool == true else {
          report(expectMembers[0].value.position, "\(label): 'no_match' must be true")
          return nil
        }
        expectation = .noMatch
      case "actions":
        guard case .array(let actions) = expectMembers[0].value.kind,
          actions.allSatisfy({ $0.members != nil && $0["kind"]?.string != nil })
        else {
          report(
            expectMembers[0].value.position, "\(label): 'actions' must be an array of objects with a \"kind\""
          )
          return nil
        }
        expectation = .actions(actions.map(\.value))
      default:
        report(
          expectMembers[0].keyPosition,
          "\(label): unknown expectation '\(expectMembers[0].key)'; expected output, empty_output, no_match or actions"
        )
        return nil
      }
      var context = EvaluationContext(
        topic: topic, payload: payload, clientID: clientID, timestampMs: timestamp)
      if let pins = node["context"] {
        // The rest of the message's context, as an `eval --batch` request pins it.
        if case .object(let object) = pins.value,
          let twice = [("clientid", "clientId"), ("timestamp_ms", "timestamp")].first(where: {
            object[$0.0] != nil && node[$0.1] != nil
          })
        {
          report(pins.position, "\(label): give '\(twice.1)' or context.\(twice.0), not both")
          return nil
        }
        do {
          try ContextPins.apply(pins.value, to: &context)
        } catch {
          report(pins.position, "\(label): \(error.message)")
          return nil
        }
      }
      return Case(name: name, position: node.position, context: context, expectation: expectation)
    }
    for (index, node) in list.enumerated() {
      // A case with any problem is left out (its problems are reported), whole.
      let problemsBefore = diagnostics.count
      let name = node["name"]?.string ?? "case \(index + 1)"
      for duplicate in caseDuplicates[index] ?? [] {
        let label = node["name"]?.string.map { "case '\($0)'" } ?? name
        report(duplicate.position, "\(label): \(duplicate.message)")
      }
      // A problem reported on the way (a repeated name, a repeated or unknown key) leaves the case
      // out too.
      if let valid = parseCase(index, node, name: name), diagnostics.count == problemsBefore {
        cases.append(valid)
      } else {
        invalid.append(
          InvalidCase(
            name: name, position: node.position,
            problems: diagnostics[problemsBefore...].sorted(by: RuleDiagnostic.inFileOrder)))
      }
    }
    return (RuleTestFile(file: file, cases: cases), invalid)
  }
}
