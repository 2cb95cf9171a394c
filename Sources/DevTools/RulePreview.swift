import Actions
import Connectors
import Foundation
import IoTSQL
import RulesEngine

/// A rule file read for trying out: its compiled program and, for each action, the configuration with
/// every string compiled as a substitution template, so the REPL's `.rule`, `iotrules test` and
/// `iotrules explain FILE` can show what each action would receive without starting any of them.
public struct RulePreview: Sendable {
  /// One action of the rule: its kind, label and templated configuration.
  public struct ActionPreview: Sendable {
    /// `sqlite`, `file`, `republish`, `kafka`, `http`.
    public var kind: String
    /// `sqlite[0]`, `errorAction`: as in logs and metrics.
    public var label: String
    /// The configuration, strings compiled as templates (`retry` and `errorAction` left out: they are
    /// not what the action receives).
    public var fields: TemplateTree
    /// A republish topic written with AWS's `$$` escape: the template after it (the published topic
    /// is `$` and its rendering, as the action sends it).
    var escapedTopic: Template?
    /// A file action as the daemon builds it: it judges each rendered path as the daemon would.
    var archive: FileArchiveAction?
    /// A republish, http or sqlite action as the daemon builds it: it judges rendered headers, URLs
    /// and rows as the daemon would.
    var connector: (any Action)?
  }

  /// The rule's name.
  public let name: String
  /// The rule file as given.
  public let file: String
  /// The compiled SQL.
  public let program: Program
  /// The actions in file order; nested error actions follow their action.
  public let actions: [ActionPreview]
  /// The rule's error action.
  public let errorAction: ActionPreview?
  /// True when the file disables the rule (`ruleDisabled`): `run` loads it and skips it.
  public let disabled: Bool
  /// What `check` warns of in the rule, in file order.
  public let warnings: [RuleDiagnostic]

  /// The builder used to validate rule files offline: every action kind, with a publisher that
  /// never connects (nothing is started).
  public static let offlineBuilder: ActionFactory = {
    var factory = ActionFactory.standard
    factory.registerConnectorActions(publisher: OfflinePublisher())
    return factory
  }()

  /// Loads and validates a rule file (as `iotrules check` does), then compiles its templates.
  public static func load(file: String, bytes: [UInt8]) throws(RuleFileError) -> RulePreview {
    let rule = try RuleFile.load(file: file, bytes: bytes, builder: offlineBuilder)
    return try RulePreview(rule: rule, bytes: bytes)
  }

  /// Loads the file at `path`.
  public static func load(path: String) throws(RuleFileError) -> RulePreview {
    switch RegularFile.read(path) {
    case .success(let bytes): return try load(file: path, bytes: bytes)
    case .failure(let unreadable):
      throw RuleFileError([
        RuleDiagnostic(
          file: path, position: FilePosition(line: 1, column: 1), message: "cannot read it (\(unreadable))")
      ])
    }
  }

  /// Builds the preview of an already loaded rule from the bytes of its file.
  public init(rule: Rule, bytes: [UInt8]) throws(RuleFileError) {
    var root: RuleNode
    do {
      root =
        rule.file.hasSuffix(".yaml") || rule.file.hasSuffix(".yml")
        ? try RuleDocument.parseYAML(bytes)
        : try RuleDocument.parseJSON(bytes)
    } catch {
      throw RuleFileError([RuleDiagnostic(file: rule.file, position: error.position, message: error.message)])
    }
    if let payload = root["topicRulePayload"] ?? root["rule"] { root = payload }
    let program = rule.program
    var diagnostics: [RuleDiagnostic] = []
    func compileAction(
      _ node: RuleNode, label: String, configured: ConfiguredAction?, into list: inout [ActionPreview]
    ) {
      guard let member = node.members?.first else { return }
      var fields: [(String, TemplateTree)] = []
      for item in member.value.members ?? [] where item.key != "retry" && item.key != "errorAction" {
        do {
          fields.append((item.key, try TemplateTree(item.value, program: program)))
        } catch {
          diagnostics.append(
            RuleDiagnostic(file: rule.file, position: error.position, message: "\(label): \(error.message)"))
        }
      }
      var escapedTopic: Template?
      if member.key == "republish", let topic = member.value["topic"]?.string,
        case (let rest, true) = RepublishAction.unescapeTopic(topic)
      {
        escapedTopic = try? Template.compile(rest, version: program.version, variables: program.variableNames)
      }
      list.append(
        ActionPreview(
          kind: member.key, label: "\(member.key)[\(label)]", fields: .object(fields),
          escapedTopic: escapedTopic, archive: configured?.action as? FileArchiveAction,
          connector: configured?.action))
      if let nested = member.value["errorAction"] {
        compileAction(
          nested, label: "\(label).errorAction", configured: configured?.errorAction, into: &list)
      }
    }
    var actions: [ActionPreview] = []
    if case .array(let elements)? = root["actions"]?.kind {
      for (index, element) in elements.enumerated() {
        compileAction(
          element, label: "\(index)",
          configured: rule.actions.indices.contains(index) ? rule.actions[index] : nil,
          into: &actions)
      }
    }
    var errorActions: [ActionPreview] = []
    if let node = root["errorAction"] {
      compileAction(node, label: "errorAction", configured: rule.errorAction, into: &errorActions)
    }
    if !diagnostics.isEmpty { throw RuleFileError(diagnostics) }
    self.name = rule.name
    self.file = rule.file
    self.disabled = rule.disabled
    warnings = rule.warnings
    self.program = program
    // Nested error actions are kept apart from the actions a match reaches.
    self.actions = actions.filter { !$0.label.contains(".errorAction") }
    self.nestedErrorActions = actions.filter { $0.label.contains(".errorAction") }
    self.errorAction = errorActions.first
  }

  /// Error actions nested inside actions (shown by `explain`, not run on a match).
  public let nestedErrorActions: [ActionPreview]

  /// What one message gives: no match, or the output and what each action receives.
  public enum Outcome: Sendable {
    /// The topic does not match FROM, or WHERE is not true; the reason says which.
    case noMatch(String)
    /// The evaluation was stopped by ``EvaluationLimits``; the reason says why (the daemon counts
    /// such a message as the rule's evaluation error).
    case stopped(String)
    /// The SELECT output (its bytes and value) and one object per action: `kind`, the configuration
    /// with templates rendered (a sqlite action's `columns` as SQLite stores them), `payload` (the
    /// output value, or its text when not JSON), for a file action `line` (what the archive writes),
    /// and `refused` with the reason when the daemon would refuse the action's write.
    case matched(payload: [UInt8], output: Value, actions: [Value])
  }

  /// Runs the rule on one message.
  public func run(_ context: EvaluationContext) -> Outcome {
    let ingest = BasicIngest.split(context.topic)
    if program.topicFilter == nil, ingest == nil {
      return .noMatch("the rule has no FROM: only Basic Ingest topics ($aws/rules/\(name)/...) reach it")
    }
    if let ingest, ingest.rule != name {
      return .noMatch(
        "the Basic Ingest topic '\(context.topic)' is for the rule '\(ingest.rule)', not '\(name)'")
    }
    if !program.fromMatches(context.topic), let filter = program.topicFilter {
      return .noMatch("topic '\(context.topic)' does not match FROM '\(filter)'")
    }
    var machine = VirtualMachine()
    guard let evaluation = machine.evaluate(program, context: context) else {
      if let reason = machine.evaluationLimitText(in: program.source) { return .stopped(reason) }
      return .noMatch("the WHERE clause is not true for this message")
    }
    let output = evaluation.value
    // Templates show every get_secret as `***`: a preview reads no secret.
    var context = context
    context.secrets = PlaceholderSecrets()
    let rendered = actions.map { action -> Value in
      var object: OrderedObject = ["kind": .string(action.kind)]
      // What the daemon would refuse, said as it says it.
      var refusal: String?
      // A sqlite action's `columns` are typed as the table stores them, below (a binary value is a
      // BLOB): rendered as text here, bytes that are not UTF-8 were refused, where `run` writes them.
      let typedColumns = action.connector is SQLiteAction
      do throws(EvaluationStopped) {
        if case .object(let members) = action.fields {
          for (key, tree) in members where !(typedColumns && key == "columns") {
            object[key] = try tree.render(
              context: context, variables: evaluation.variables, machine: &machine)
          }
        }
      } catch {
        refusal = error.reason
      }
      // A republish topic's leading `$$` is AWS's escape for `$`: show the topic published to.
      if refusal == nil, let escaped = action.escapedTopic {
        do throws(EvaluationStopped) {
          object["topic"] = .string(
            "$" + (try escaped.render(context: context, variables: evaluation.variables, using: &machine)))
        } catch {
          refusal = error.reason
        }
      } else if refusal == nil, action.kind == "republish", case .string(let topic)? = object["topic"],
        topic.startsExactly(with: "$")
      {
        // A value from the message does not reach a reserved topic without `$$`.
        refusal = "the topic renders a leading '$' but its template does not start with '$$'"
      }
      // A topic with a wildcard, an empty level, too many levels...
      if action.kind == "republish", refusal == nil, case .string(let topic)? = object["topic"] {
        refusal = RepublishAction.topicProblem(topic)
      }
      // A Kafka topic outside Kafka's names, a partition that renders no whole number.
      // (A value that holds a secret, shown `***`, is the daemon's to judge: the preview has none.)
      if action.kind == "kafka" {
        if case .string(let topic)? = object["topic"], !topic.contains("***"),
          let problem = KafkaTopicName.problem(topic)
        {
          refusal = "the kafka topic renders '\(topic)': \(problem)"
        } else if case .string(let partition)? = object["partition"], !partition.isEmpty,
          !partition.contains("***"), KafkaAction.partitionNumber(partition) == nil
        {
          refusal = "the kafka partition renders '\(partition)', not a partition number"
        } else if case .array(let headers)? = object["headers"] {
          // A header key the daemon refuses (a NUL), as it says it.
          for case .object(let header) in headers {
            if case .string(let key)? = header["key"], let problem = KafkaAction.headerKeyProblem(key) {
              refusal = "the kafka header key \(problem)"
              break
            }
          }
        }
      }
      // Headers the broker would not take (a control character, a response topic with a wildcard,
      // correlation data that is not base64...), a URL or header that leaves or breaks the request.
      if refusal == nil {
        let input = ActionInput(ruleName: name, evaluation: evaluation, message: Message(context: context))
        if let republish = action.connector as? RepublishAction {
          refusal = republish.headersRefusal(input)
        } else if let http = action.connector as? HTTPAction {
          refusal = http.requestRefusal(input)
        } else if let sqlite = action.connector as? SQLiteAction {
          // A column name SQLite would not take, keys that differ only in case, a key column
          // without a value: judged by the checks the daemon makes of each row.
          switch sqlite.rowPreview(input) {
          case .success(let row):
            // Configured columns as stored: a template that is one `${expression}` keeps its
            // value's type (`5`, not `"5"`), Undefined is NULL, a BLOB is `base64:...` (text
            // shown as text would read as a TEXT column, which `WHERE body = 'x'` finds).
            if sqlite.columns != nil {
              var columns = OrderedObject()
              for (name, value) in row {
                if case .binary(let bytes) = value {
                  columns[name] = .string("base64:" + Data(bytes).base64EncodedString())
                } else {
                  columns[name] = value
                }
              }
              object["columns"] = .object(columns)
            }
          case .failure(let error): refusal = error.message
          }
        }
      }
      // A rendered file path with an empty segment, a hidden name, `..`, ...
      if let archive = action.archive, case .string(let path)? = object["path"] {
        refusal = archive.refusal(ofConfiguredPath: path)
        // The file the daemon writes (composed below the root).
        object["path"] = .string(archive.composed(configuredPath: path))
      }
      if let refusal {
        object["refused"] = .string(
          "\(refusal): the daemon refuses it (permanent failure, to the error path)")
      }
      object["payload"] = Self.payloadValue(output)
      // The archive's line as written: a binary result goes in base64 (`{"payload_base64":"..."}`).
      if action.kind == "file" {
        object["line"] = .string(String(decoding: FileArchiveAction.line(for: evaluation), as: UTF8.self))
      }
      return .object(object)
    }
    return .matched(payload: evaluation.payload, output: output, actions: rendered)
  }

  /// The value an action's `payload` shows: Binary as text (or base64 when not UTF-8).
  static func payloadValue(_ output: Value) -> Value {
    if case .binary(let bytes) = output {
      if let text = String(validating: bytes, as: UTF8.self) { return .string(text) }
      return .string("base64:" + Data(bytes).base64EncodedString())
    }
    return output
  }

  /// Every template of every action, with where it is: `sqlite[0].columns.ts`, for `explain`.
  public var templates: [(field: String, template: Template)] {
    (actions + nestedErrorActions + (errorAction.map { [$0] } ?? [])).flatMap { action in
      action.fields.templates(prefix: action.label)
    }
  }
}

/// An action configuration with each string compiled as a template.
public indirect enum TemplateTree: Sendable {
  /// A string field: rendered per message.
  case template(Template)
  /// A number, Boolean or null, as written.
  case literal(Value)
  /// An array.
  case array([TemplateTree])
  /// An object, members in file order.
  case object([(String, TemplateTree)])

  struct CompileError: Error {
    var position: FilePosition
    var message: String
  }

  init(_ node: RuleNode, program: Program) throws(CompileError) {
    switch node.kind {
    case .string(let text):
      do {
        self = .template(
          try Template.compile(text, version: program.version, variables: program.variableNames))
      } catch {
        throw CompileError(
          position: node.position(ofStringOffset: error.first.range.start.offset),
          message:
            "in template: \(error.first.message(placing: { node.position(ofStringOffset: $0.offset).description }))"
        )
      }
    case .array(let elements):
      var list: [TemplateTree] = []
      for element in elements { list.append(try TemplateTree(element, program: program)) }
      self = .array(list)
    case .object(let members):
      var list: [(String, TemplateTree)] = []
      for member in members { list.append((member.key, try TemplateTree(member.value, program: program))) }
      self = .object(list)
    default:
      self = .literal(node.value)
    }
  }

  /// The value with every template rendered against the message and the SET variables.
  func render(context: EvaluationContext, variables: [Value], machine: inout VirtualMachine)
    throws(EvaluationStopped) -> Value
  {
    switch self {
    case .template(let template):
      return .string(try template.render(context: context, variables: variables, using: &machine))
    case .literal(let value): return value
    case .array(let elements):
      var list: [Value] = []
      for element in elements {
        list.append(try element.render(context: context, variables: variables, machine: &machine))
      }
      return .array(list)
    case .object(let members):
      var object = OrderedObject()
      for (key, tree) in members {
        object[key] = try tree.render(context: context, variables: variables, machine: &machine)
      }
      return .object(object)
    }
  }

  /// The non-constant templates below this node, named by their dotted path.
  func templates(prefix: String) -> [(field: String, template: Template)] {
    switch self {
    case .template(let template): return template.isConstant ? [] : [(prefix, template)]
    case .literal: return []
    case .array(let elements):
      return elements.enumerated().flatMap { $0.element.templates(prefix: "\(prefix)[\($0.offset)]") }
    case .object(let members):
      return members.flatMap { $0.1.templates(prefix: "\(prefix).\($0.0)") }
    }
  }
}

/// A publisher for offline validation: rule tests and the REPL never publish.
struct OfflinePublisher: Publisher {
  func publish(
    topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties
  ) async throws(ActionError) {
    throw ActionError(.permanent, "offline: no broker is connected")
  }
}
