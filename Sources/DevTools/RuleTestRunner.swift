import Foundation
import IoTSQL
import RulesEngine

/// The result of one test case.
public struct RuleTestResult: Sendable {
  /// The rule's name.
  public var rule: String
  /// The test file.
  public var file: String
  /// The case's name.
  public var name: String
  /// Where the case starts in its file.
  public var position: FilePosition
  /// Nil when it passed; else why, with a diff of expected and actual where there is one.
  public var failure: String?
  /// How long it took, in seconds.
  public var seconds: Double
  /// True when the rule file disables the rule (`ruleDisabled`): its tests ran, but `run` skips it.
  public var ruleDisabled = false

  /// True when the case passed.
  public var passed: Bool { failure == nil }
}

/// Runs rule tests without brokers: the rule's SQL on each case's message, its action templates
/// rendered, compared with the expectation.
public enum RuleTestRunner {
  /// Runs every case of `tests` against `rule`.
  public static func run(_ tests: RuleTestFile, on rule: RulePreview) -> [RuleTestResult] {
    tests.cases.map { testCase in
      let started = Date()
      let failure = check(testCase, on: rule)
      return RuleTestResult(
        rule: rule.name, file: tests.file, name: testCase.name, position: testCase.position,
        failure: failure, seconds: Date().timeIntervalSince(started), ruleDisabled: rule.disabled)
    }
  }

  /// Nil when the case passes, else the failure text.
  static func check(_ testCase: RuleTestFile.Case, on rule: RulePreview) -> String? {
    // newuuid() and rand() give the same every run: a case can expect them (pinned, or the
    // sequences each run starts over).
    var context = testCase.context
    context.randomness = context.randomness?.restartedRepeatable() ?? PinnedRandomness(repeatable: true)
    let outcome = rule.run(context)
    switch (testCase.expectation, outcome) {
    case (.noMatch, .noMatch): return nil
    case (_, .stopped(let reason)): return "the evaluation was stopped: \(reason)"
    case (.noMatch, .matched(_, let output, _)):
      return "expected no match, but the rule matched with output\n" + indent(ValueText.pretty(output))
    case (.output, .noMatch(let reason)), (.actions, .noMatch(let reason)):
      return "expected a match, but no match: \(reason)"
    case (.output(let expected), .matched(_, let output, let actions)):
      let actual = RuleTestRunner.comparable(output)
      if ValueText.equivalent(expected, actual) || RuleTestRunner.sameBytes(expected, output) {
        // A passing test means the writes land: an action the daemon would refuse fails the case.
        for case .object(let action) in actions {
          guard case .string(let reason)? = action["refused"] else { continue }
          let kind = action["kind"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "an"
          return "the output is as expected, but the daemon would refuse the \(kind) action: \(reason)"
        }
        return nil
      }
      // An empty payload (`empty_output`, a `SELECT VALUE` of a missing field) is said in words:
      // `Undefined` is no output a user wrote.
      func shown(_ value: Value) -> String {
        if case .undefined = value { return "(an empty payload)" }
        return ValueText.pretty(ValueText.canonical(value))
      }
      return "output differs (- expected, + actual):\n"
        + LineDiff.unified(expected: shown(expected), actual: shown(actual))
    case (.actions(let expected), .matched(_, _, let actions)):
      var projected: [Value] = []
      for (index, actual) in actions.enumerated() {
        if index < expected.count, case .object(let wanted) = expected[index], case .object(let got) = actual
        {
          var object = OrderedObject()
          for key in wanted.keys { object[key] = got[key] ?? .undefined }
          // An action the daemon would refuse fails the case unless the case expects that: a
          // passing test means the write lands.
          if wanted["refused"] == nil, let refused = got["refused"] { object["refused"] = refused }
          // `"refused": true` expects a refusal, whatever its reason says (its wording may change).
          if wanted["refused"] == .bool(true), case .string? = got["refused"] {
            object["refused"] = .bool(true)
          }
          // A part of the reason's text expects it too (`"refused": "begins with '/'"`): a case
          // need not repeat the whole sentence, whose wording may change around the part it checks.
          if case .string(let part)? = wanted["refused"], !part.isEmpty,
            case .string(let reason)? = got["refused"],
            reason.contains(part)
          {
            object["refused"] = .string(part)
          }
          // `"refused": false` expects the write to be taken (it failed every case it was in).
          if wanted["refused"] == .bool(false), got["refused"] == nil { object["refused"] = .bool(false) }
          projected.append(.object(object))
        } else {
          projected.append(actual)
        }
      }
      let same =
        expected.count == actions.count
        && zip(expected, projected).allSatisfy { ValueText.equivalent($0, $1) }
      if same { return nil }
      var text = "actions differ (- expected, + actual; only the expected fields of each action):\n"
      if expected.count != actions.count {
        text =
          "expected \(expected.count) action(s), the rule has \(actions.count) (list every action, in the rule's order):\n"
      }
      // A field the action does not have (a misspelling reads as a difference of values): named,
      // with the nearest it has.
      // (Only where the actions line up: with a count or a kind that differs, the fields of
      // another action are no hint.)
      var missing: [String] = []
      for (index, (wanted, actual)) in zip(expected, actions).enumerated()
      where expected.count == actions.count {
        guard case .object(let wanted) = wanted, case .object(let got) = actual else { continue }
        if let kind = wanted["kind"], !ValueText.equivalent(kind, got["kind"] ?? .undefined) { continue }
        let kind = got["kind"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "?"
        for key in wanted.keys where got[key] == nil && key != "refused" {
          missing.append(
            "action \(index) (\(kind)) has no field '\(RuleFile.escapedName(key))'"
              + FunctionRegistry.didYouMean(key, among: got.keys + ["refused"])
              + " (its fields: \(got.keys.joined(separator: ", ")))")
        }
      }
      if !missing.isEmpty { text = missing.joined(separator: "\n") + "\n" + text }
      return text
        + LineDiff.unified(
          expected: ValueText.pretty(ValueText.canonical(.array(expected))),
          actual: ValueText.pretty(ValueText.canonical(.array(projected))))
    }
  }

  /// Binary output compares as its text.
  static func comparable(_ output: Value) -> Value { RulePreview.payloadValue(output) }

  /// True when `expected` is `base64:...` of Binary `output`'s bytes, text or not: the REPL shows
  /// text with control characters (`a\r\nb`) so, and a case copied from it must pass.
  static func sameBytes(_ expected: Value, _ output: Value) -> Bool {
    // `empty_output` of a `SELECT *` of an empty payload: the same (no) bytes go out.
    if case .undefined = expected, case .binary(let bytes) = output, bytes.isEmpty { return true }
    guard case .binary(let bytes) = output, case .string(let text) = expected, text.hasPrefix("base64:"),
      let decoded = Base64.decode(String(text.dropFirst("base64:".count)), requiringPadding: true)
    else { return false }
    return decoded == bytes
  }

  static func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
  }
}

/// Finds rule tests under paths: folders (non-recursive), rule files (every test file beside them) or
/// test files.
public struct RuleTestPlan: Sendable {
  /// Test file and rule file pairs to run.
  public var pairs: [(test: String, rule: String?)]
  /// Rule files that have no test file (reported, not failures, unless they do not load).
  public var untested: [String]
  /// Paths given that cannot be read (`nonexist: no such file or folder`): said, and the rest run.
  public var unreadable: [String] = []

  /// Collects the tests under `paths` (`Rules` when empty); a path that cannot be read is noted in
  /// ``unreadable`` and the others are collected (one missing path ran nothing at all).
  public static func collect(_ paths: [String]) -> RuleTestPlan {
    var plan = RuleTestPlan(pairs: [], untested: [])
    // A file met twice, however spelt (`test r.json .`, `test . $PWD`, a link to the folder), runs once.
    var testsSeen = RuleFile.SameFiles()
    var untestedSeen = RuleFile.SameFiles()
    for path in paths.isEmpty ? ["Rules"] : paths {
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        plan.unreadable.append("\(path): no such file or folder")
        continue
      }
      var files: [String] = []
      if isFolder.boolValue {
        if let problem = RuleFile.folderProblem(path) {
          plan.unreadable.append("\(path): \(problem)")
          continue
        }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        do {
          files = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }
            .sorted()
            .map { "\(base)/\($0)" }
        } catch {
          plan.unreadable.append("\(path): cannot list it (\(error.localizedDescription))")
          continue
        }
      } else {
        files = [path]
      }
      for file in files {
        if RuleTestFile.isTestFile(file) {
          if testsSeen.firstTime(file) {
            plan.pairs.append((file, RuleTestFile.rule(ofTest: file)))
          }
        } else if RuleFile.isRuleFile(file) {
          let tests = RuleTestFile.companions(ofRule: file)
          for test in tests where testsSeen.firstTime(test) {
            plan.pairs.append((test, file))
          }
          if tests.isEmpty, untestedSeen.firstTime(file) {
            plan.untested.append(file)
          }
        }
      }
    }
    return plan
  }

  /// Runs every pair: a test file that cannot be read, or whose rule is missing or broken, is one
  /// failing result naming why. A rule file without tests that does not load fails too, as
  /// `(load)` at its first problem: a folder with a broken rule beside tested ones passed, while
  /// `check` and `run` refused it.
  public func run() -> [RuleTestResult] {
    var results: [RuleTestResult] = []
    for file in untested {
      do {
        _ = try RulePreview.load(path: file)
      } catch {
        results.append(
          RuleTestResult(
            rule: RuleFile.baseName(file), file: file, name: "(load)",
            position: error.diagnostics.first { $0.file == file }?.position
              ?? FilePosition(line: 1, column: 1),
            failure: "the rule does not load:\n\(error)", seconds: 0))
      }
    }
    for pair in pairs {
      func broken(
        _ message: String, rule: String, name: String = "(load)",
        at position: FilePosition = FilePosition(line: 1, column: 1)
      ) {
        results.append(
          RuleTestResult(
            rule: rule, file: pair.test, name: name, position: position, failure: message, seconds: 0))
      }
      guard let ruleFile = pair.rule else {
        // Named after the rule it was written for (`high_temp.test.json`: `high_temp`).
        let expected = RuleFile.ruleFilePaths(ofTest: pair.test)[0]
        broken(
          "no rule file beside \(pair.test) (looked for \(expected), .yaml, .yml): rename the test file with its rule, or remove it",
          rule: RuleFile.baseName(expected), name: "(no rule file)")
        continue
      }
      let rule: RulePreview
      do {
        rule = try RulePreview.load(path: ruleFile)
      } catch {
        broken("the rule does not load:\n\(error)", rule: RuleFile.baseName(ruleFile))
        continue
      }
      do {
        // Each invalid case fails at its place; the valid ones still run.
        let (tests, invalid) = try RuleTestFile.loadCases(path: pair.test)
        // A test file without a case tests nothing, which its writer rarely meant (one cut short,
        // cases written under another key): it fails, so that "did my tests run?" has an answer.
        if tests.cases.isEmpty, invalid.isEmpty {
          broken(RuleTestGate.noCases, rule: rule.name, name: "(no cases)")
          continue
        }
        var file = RuleTestRunner.run(tests, on: rule)
        for invalidCase in invalid {
          file.append(
            RuleTestResult(
              rule: rule.name, file: pair.test, name: invalidCase.name, position: invalidCase.position,
              failure: "the case is invalid: "
                + invalidCase.problems.map {
                  "\(pair.test):\($0.position.line):\($0.position.column): \($0.message)"
                }
                .joined(separator: "; "), seconds: 0))
        }
        results += file.sorted {
          ($0.position.line, $0.position.column) < ($1.position.line, $1.position.column)
        }
      } catch {
        // At its first problem, which the console, the JUnit report and a CI annotation point at.
        broken(
          "the test file is invalid:\n\(error)", rule: rule.name,
          at: error.diagnostics.first { $0.file == pair.test }?.position ?? FilePosition(line: 1, column: 1))
      }
    }
    return results
  }
}

/// A path problem while collecting tests.
public struct RuleStoreFailure: Error, Sendable, CustomStringConvertible {
  /// What.
  public var description: String
  /// Creates a failure.
  public init(_ description: String) { self.description = description }
}

/// Gates hot reloads on rule tests: `iotrules run` swaps in a changed rule only when the tests beside
/// it pass.
public enum RuleTestGate {
  /// What a test file without a case is told, by `test` and by the gate alike.
  static let noCases = "the test file holds no cases: write at least one, or remove the file"

  /// Nil when `rule` has no test file or its tests pass; else why it must not replace the running
  /// version: the failing cases by name, each also at its place in its test file.
  public static func check(_ rule: Rule) -> GateRefusal? {
    let testPaths = RuleTestFile.companions(ofRule: rule.file)
    guard !testPaths.isEmpty else { return nil }
    let refusals = testPaths.compactMap { check(rule, against: $0) }
    guard !refusals.isEmpty else { return nil }
    return GateRefusal(
      reason: refusals.map(\.reason).joined(separator: "; "), diagnostics: refusals.flatMap(\.diagnostics))
  }

  /// Nil when the tests of `testPath` pass on `rule`, else why not.
  static func check(_ rule: Rule, against testPath: String) -> GateRefusal? {
    guard case .success(let data) = RegularFile.read(rule.file) else {
      return GateRefusal(reason: "cannot read \(rule.file) to run its tests")
    }
    let preview: RulePreview
    let tests: RuleTestFile
    let invalid: [RuleTestFile.InvalidCase]
    do {
      preview = try RulePreview(rule: rule, bytes: Array(data))
      (tests, invalid) = try RuleTestFile.loadCases(path: testPath)
    } catch {
      // A test file's own errors name it with their line and column: they follow the reason, each
      // once, rather than inside it.
      let own = error.diagnostics.filter { $0.file == testPath }
      guard !own.isEmpty else { return GateRefusal(reason: "\(testPath): \(error)") }
      return GateRefusal(
        reason: "its test file \(testPath) is broken (\(own.count) problem\(own.count == 1 ? "" : "s"))",
        diagnostics: own)
    }
    // A file without a case fails here as under `iotrules test`: `check` in CI passed a rule whose
    // tests never ran while `test` failed it.
    if tests.cases.isEmpty, invalid.isEmpty {
      return GateRefusal(
        reason: "its test file \(testPath) holds no cases",
        diagnostics: [
          RuleDiagnostic(
            file: testPath, position: FilePosition(line: 1, column: 1),
            message: noCases)
        ])
    }
    // The valid cases run beside the invalid ones, so one look shows everything to fix.
    let failing = RuleTestRunner.run(tests, on: preview).filter { !$0.passed }
    guard !failing.isEmpty || !invalid.isEmpty else { return nil }
    let places = failing.map {
      RuleDiagnostic(
        file: testPath, position: $0.position,
        message: "test '\($0.name)' of rule '\(rule.name)' failed: \($0.failure ?? "")")
    }
    let problems = invalid.flatMap(\.problems)
    var reasons: [String] = []
    if !invalid.isEmpty {
      reasons.append(
        "its test file \(testPath) is broken (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")
    }
    if !failing.isEmpty {
      reasons.append(
        "\(failing.count) of \(tests.cases.count) test(s) in \(testPath) failed: "
          + failing.map { "'\($0.name)'" }.joined(separator: ", "))
    }
    return GateRefusal(
      reason: reasons.joined(separator: "; "),
      diagnostics: (problems + places).sorted(by: RuleDiagnostic.inFileOrder))
  }
}
