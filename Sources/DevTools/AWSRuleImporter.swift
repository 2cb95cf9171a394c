import Actions
import Foundation
import IoTSQL
import RulesEngine

/// Turns AWS's topic-rule JSON into an iotrules rule file.
///
/// Input (JSON, or the YAML of the AWS CLI's `--output yaml`): the output of `aws iot get-topic-rule`
/// (`{"ruleArn", "rule": {...}}`), the input of
/// `aws iot create-topic-rule --cli-input-json` (`{"ruleName", "topicRulePayload": {...}}`), or a bare
/// `topicRulePayload` (`{"sql", "actions", ...}`), or a CloudFormation `AWS::IoT::TopicRule` (its
/// template, resource or `Properties`, in CloudFormation's spelling). Mappings: `republish`, `http` and `kafka` directly;
/// `s3` → `file` (bucket/key → path); `dynamoDB`, `dynamoDBv2` → `sqlite`; `lambda` → `http` with a URL
/// the user must set. Every other action is reported by name and left out; every AWS field without
/// an equivalent here is named in a note. An omitted `awsIotSqlVersion` becomes an explicit
/// `2015-10-08`, the version AWS runs such a rule with.
public enum AWSRuleImporter {
  /// What the import produced.
  public struct Result: Sendable {
    /// The rule's name (from `--name`, the document, or the input file's base name).
    public var name: String
    /// The rule file, as pretty JSON.
    public var json: String
    /// Notes: dropped AWS fields, values the user must set, defaults made explicit.
    public var notes: [String]
    /// Actions that could not be mapped, by location and AWS name: `actions[1]: sns`.
    public var unmapped: [String]
    /// Lines that need the user before the rule can run (a Lambda URL to set).
    public var actionRequired: [String]
  }

  /// An input that is not a topic rule.
  public struct ImportError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, with the file and position.
    public var description: String
    /// Set when the command line is at fault rather than the document: a `--resource` the
    /// template lacks, or one (or a `--name`) missing where the input needs it. Exit 64, not 65.
    public var isUsage = false
  }

  /// The SQL version AWS uses when `awsIotSqlVersion` is omitted.
  public static let awsDefaultVersion = "2015-10-08"
  /// The SQLite database dynamoDB tables are mapped into.
  public static let dynamoDatabase = "data/dynamodb.db"

  /// The note of a DynamoDB action written as sqlite: the database file is iotrules' choice.
  static func databaseNote(_ label: String) -> String {
    "\(label) sqlite.database: DynamoDB names no file; the rows go to \(dynamoDatabase) (relative to the folder the daemon runs in): change it to put them elsewhere"
  }

  /// Converts the document `bytes` read from `file`; `name` overrides the rule name. Without either
  /// `name` or the document's `ruleName`, the file's base name names the rule, unless
  /// `fileNamesRule` is false (standard input: the rule is then not named `stdin`, it is an error).
  public static func convert(
    file: String, bytes: [UInt8], name: String? = nil, fileNamesRule: Bool = true, resource: String? = nil
  )
    throws(ImportError) -> Result
  {
    let document: RuleNode
    // The AWS CLI writes JSON, or YAML with `--output yaml`: a `.yaml`/`.yml` file is read as YAML,
    // and so is standard input that is not JSON but a YAML mapping. A file named otherwise is JSON:
    // a broken one says where (YAML would take a JSON text with a trailing comma without a word).
    let isYAML = file.hasSuffix(".yaml") || file.hasSuffix(".yml")
    do {
      document = isYAML ? try RuleDocument.parseCloudFormationYAML(bytes) : try RuleDocument.parseJSON(bytes)
    } catch {
      let standardInput = !fileNamesRule || file == "stdin"
      guard standardInput, !isYAML, let yaml = try? RuleDocument.parseCloudFormationYAML(bytes),
        yaml.members != nil
      else {
        throw ImportError(description: "\(file):\(error.position): error: \(error.message)")
      }
      document = yaml
    }
    func fail(_ node: RuleNode, _ message: String) -> ImportError {
      ImportError(description: "\(file):\(node.position): error: \(message)")
    }
    // CloudFormation's spelling of the same rule (`AWS::IoT::TopicRule`, `TopicRulePayload`, `Sql`):
    // read as the API's.
    var notes: [String] = []
    let root = try cloudFormationRule(
      document, resource: resource, nameGiven: name != nil, notes: &notes, fail: fail)
    var payload = root
    var documentNameNode: RuleNode?
    // The key the payload is under: `rule` (get-topic-rule's output), `topicRulePayload`
    // (create-topic-rule's input), or none (a bare payload).
    var wrapper: String?
    if let rule = root["rule"] {
      payload = rule
      documentNameNode = rule["ruleName"]
      wrapper = "rule"
    } else if let inner = root["topicRulePayload"] {
      payload = inner
      documentNameNode = root["ruleName"]
      wrapper = "topicRulePayload"
    } else {
      documentNameNode = root["ruleName"]
    }
    let documentName = documentNameNode?.string
    guard payload.members != nil else { throw fail(payload, "a topic rule is a JSON object") }
    // Beside the payload, AWS's inputs hold only the name and tags (get-topic-rule: the ARN), and
    // AWS refuses anything else there: a rule field there was dropped without a word (a rule meant
    // to be off was written enabled).
    // (The same keys as `check` takes there. A second payload, `rule` beside `topicRulePayload`,
    // is one rule too many: the other was dropped without a word.)
    if let wrapper, let members = root.members,
      let member = members.first(where: { $0.key != wrapper && !RuleFile.keysBesideWrapper.contains($0.key) })
    {
      let key = RuleFile.escapedName(member.key)
      throw ImportError(
        description: "\(file):\(member.keyPosition): error: "
          + (["rule", "topicRulePayload"].contains(member.key)
            ? "'\(key)' stands beside '\(wrapper)': a document holds one rule; import each on its own"
            : "'\(key)' stands beside '\(wrapper)', where AWS's documents hold only "
              + RuleFile.keysBesideWrapper.sorted().map { "'\($0)'" }.joined(separator: ", ")
              + ": a field of the rule goes inside '\(wrapper)'"))
    }
    guard let sql = payload["sql"]?.string else {
      if wrapper == nil, case .array = root["rules"]?.kind {
        // `aws iot list-topic-rules`: names and topics, no SQL or actions.
        throw fail(
          payload,
          "this is list-topic-rules output, which holds each rule's name but not its SQL or actions: "
            + "import each rule from `aws iot get-topic-rule --rule-name NAME`")
      }
      throw fail(
        payload,
        "no 'sql' string: expected get-topic-rule or create-topic-rule JSON, or a CloudFormation AWS::IoT::TopicRule"
      )
    }
    // A name of another kind is refused, not replaced by the file's (AWS takes only a string).
    if name == nil, let node = documentNameNode, documentName == nil {
      throw fail(
        node,
        "'ruleName' must be a string, not \(node.kindName)\(node.readingHint(expecting: .string)) (or give the name with --name)"
      )
    }
    guard let ruleName = name ?? documentName ?? (fileNamesRule ? RuleFile.baseName(file) : nil) else {
      throw ImportError(
        description:
          "\(file): error: the document has no ruleName and standard input no file name: give one with --name",
        isUsage: true)
    }
    guard RuleFile.isValidRuleName(ruleName) else {
      let problem = "invalid rule name '\(RuleFile.escapedName(ruleName))': it must match [a-zA-Z0-9_]{1,128}"
      if name != nil { throw ImportError(description: "iotrules: error: --name: \(problem)") }
      if let node = documentNameNode, documentName != nil {
        throw fail(node, problem + " (give another with --name)")
      }
      throw ImportError(
        description: "\(file): error: \(problem) (the name comes from the file name: give one with --name)")
    }
    var unmapped: [String] = []
    var required: [String] = []
    var out = OrderedObject()
    if let description = payload["description"]?.string, !description.isEmpty {
      out["description"] = .string(description)
    } else if let node = payload["description"], let function = cloudFormationFunction(node) {
      notes.append(
        "'Description' is \(function), a CloudFormation function: not imported (write one in the rule file)")
    }
    out["sql"] = .string(sql)
    // Both said when both are wrong, in file order.
    var wrongTypes: [(position: FilePosition, error: ImportError)] = []
    if let node = payload["awsIotSqlVersion"], node.string == nil {
      wrongTypes.append(
        (node.position, fail(node, "'awsIotSqlVersion' must be a string such as \"2016-03-23\"")))
    }
    // (`check` refuses any other description too: it was dropped without a word.)
    if let node = payload["description"], node.string == nil, cloudFormationFunction(node) == nil {
      wrongTypes.append((node.position, fail(node, "'description' must be a string")))
    }
    if let node = payload["ruleDisabled"], node.bool == nil {
      wrongTypes.append((node.position, fail(node, "'ruleDisabled' must be true or false")))
    }
    if !wrongTypes.isEmpty {
      let inOrder = wrongTypes.sorted {
        ($0.position.line, $0.position.column) < ($1.position.line, $1.position.column)
      }
      throw ImportError(description: inOrder.map(\.error.description).joined(separator: "\n"))
    }
    if let version = payload["awsIotSqlVersion"]?.string {
      out["awsIotSqlVersion"] = .string(version)
    } else {
      out["awsIotSqlVersion"] = .string(awsDefaultVersion)
      notes.append(
        "awsIotSqlVersion was omitted: written as \(awsDefaultVersion), the version AWS runs it with")
    }
    if let disabled = payload["ruleDisabled"]?.bool { out["ruleDisabled"] = .bool(disabled) }
    for member in payload.members! {
      let known = [
        "sql", "description", "awsIotSqlVersion", "ruleDisabled", "actions", "errorAction", "ruleName",
      ]
      let informational = ["createdAt", "ruleArn"]
      if !known.contains(member.key) && !informational.contains(member.key) {
        // A misspelt field (`ruleDisable`) would silently change the rule: it needs an edit.
        var hint = FunctionRegistry.didYouMean(member.key, among: known + informational)
        // A field that speaks of turning the rule off (`disabled`, `enabled`) changes the rule as
        // much as a misspelt `ruleDisabled`.
        let lowered = member.key.lowercased()
        if hint.isEmpty,
          ["enabled", "disabled", "enable", "disable"].contains(where: { lowered.hasSuffix($0) })
        {
          hint = "; AWS turns a rule off with 'ruleDisabled'"
        }
        if hint.isEmpty {
          notes.append(
            "rule field '\(RuleFile.escapedName(member.key))' has no equivalent here: not imported")
        } else {
          // Kept as written: `check` refuses the rule until it is corrected (left out, the rule was
          // written enabled and passed).
          out[member.key] = member.value.value
          required.append(
            "rule field '\(RuleFile.escapedName(member.key))' is no AWS rule field\(hint); kept as written, so that check refuses the rule until you correct it"
          )
        }
      }
    }
    var actions: [Value] = []
    if let node = payload["actions"] {
      if let function = cloudFormationFunction(node) {
        throw fail(
          node,
          "'Actions' is \(function), a CloudFormation function: import the deployed rule (aws iot get-topic-rule --rule-name NAME)"
        )
      }
      guard case .array(let elements) = node.kind else { throw fail(node, "'actions' must be an array") }
      for (index, element) in elements.enumerated() {
        let label = "actions[\(index)]"
        // A value CloudFormation computes is not known here: the action is not imported. (Of a kind
        // never imported, that kind is the reason said, as without the function.)
        if let function = cloudFormationFunction(element) {
          unmapped.append("\(label): \(function), a CloudFormation function (import the deployed rule)")
          continue
        }
        if let place = cloudFormationFunction(in: element), Self.importsKind(of: element) {
          unmapped.append("\(label): \(place) is a CloudFormation function")
          continue
        }
        let (notesBefore, requiredBefore) = (notes.count, required.count)
        if let action = mapAction(
          element, label: label, notes: &notes, unmapped: &unmapped, required: &required)
        {
          // Past an action not imported, the written file numbers this one otherwise: what it
          // needs says both places (the file's number is the one `check` and metrics use).
          if actions.count != index {
            let both = "\(label) (written as actions[\(actions.count)])"
            func renumber(_ lines: inout [String], from start: Int) {
              for line in start..<lines.count where lines[line].hasPrefix(label) {
                lines[line] = both + lines[line].dropFirst(label.count)
              }
            }
            renumber(&notes, from: notesBefore)
            renumber(&required, from: requiredBefore)
          }
          actions.append(action)
        }
      }
    }
    out["actions"] = .array(actions)
    if actions.isEmpty, case .array(let elements)? = payload["actions"]?.kind, !elements.isEmpty,
      out["ruleDisabled"] != .bool(true)
    {
      // Enabled, it would take its messages and write them nowhere.
      out["ruleDisabled"] = .bool(true)
      required.append("none of the rule's actions could be imported: the rule is written disabled")
    }
    if let node = payload["errorAction"] {
      if let function = cloudFormationFunction(node) {
        unmapped.append("errorAction: \(function), a CloudFormation function (import the deployed rule)")
      } else if let place = cloudFormationFunction(in: node), Self.importsKind(of: node) {
        unmapped.append("errorAction: \(place) is a CloudFormation function")
      } else if let action = mapAction(
        node, label: "errorAction", notes: &notes, unmapped: &unmapped, required: &required)
      {
        out["errorAction"] = action
      }
    }
    if !unmapped.isEmpty || !required.isEmpty {
      // The written file says what it lacks and what needs an edit, for whoever reads it later
      // (stderr is gone by then).
      var said = payload["description"]?.string ?? ""
      if !unmapped.isEmpty {
        said += (said.isEmpty ? "" : " ") + "[imported from AWS without: \(unmapped.joined(separator: "; "))]"
      }
      if !required.isEmpty {
        said += (said.isEmpty ? "" : " ") + "[ACTION REQUIRED: \(required.joined(separator: "; "))]"
      }
      out["description"] = .string(said)
    }
    return Result(
      name: ruleName, json: JSONWriter.prettyString(.object(out)) + "\n", notes: notes, unmapped: unmapped,
      actionRequired: required)
  }

  /// The Boolean properties of `AWS::IoT::TopicRule`, which CloudFormation also takes as strings.
  static let cloudFormationBooleans: Set<String> = [
    "RuleDisabled", "EnableBatching", "BatchMode", "BatchAcrossTopics", "UseBase64",
  ]
  /// Its Integer properties, likewise.
  static let cloudFormationIntegers: Set<String> = [
    "Qos", "MaxBatchSize", "MaxBatchOpenMs", "MaxBatchSizeBytes",
  ]

  /// `root` in the API's spelling when it is CloudFormation's: a template holding one
  /// `AWS::IoT::TopicRule` resource (its logical id names the rule without a `RuleName`), the
  /// resource, or its `Properties` (`{"RuleName", "TopicRulePayload": {"Sql", "Actions":
  /// [{"Republish": {"Topic"}}]}}`), each key's first letter lowered (`Sql` is `sql`, `DynamoDBv2`
  /// is `dynamoDBv2`) but a Kafka action's `ClientProperties`' own, the strings CloudFormation
  /// takes for `RuleDisabled` and `Qos` read as a Boolean and a number, and a number or Boolean
  /// written for a String property as its text; `root` itself otherwise. A `Ref` or `Fn::...` is
  /// kept as it is: where its value is used, the mapping refuses it.
  static func cloudFormationRule(
    _ root: RuleNode, resource: String? = nil, nameGiven: Bool = false, notes: inout [String],
    fail: (RuleNode, String) -> ImportError
  )
    throws(ImportError) -> RuleNode
  {
    var properties = root
    var logicalID: RuleNode.Member?
    if let resources = root["Resources"], let members = resources.members {
      let rules = members.filter { $0.value["Type"]?.string == "AWS::IoT::TopicRule" }
      let listed = rules.map { RuleFile.escapedName($0.key) }.joined(separator: ", ")
      // A stack usually holds several rules: --resource picks one by its logical id.
      let chosen = resource.map { wanted in rules.filter { $0.key == wanted } } ?? rules
      guard chosen.count == 1, let only = chosen.first else {
        // Said at the first rule resource's name, or at `Resources:` when none is chosen (the
        // position of `Resources`' value was its first resource's, often another kind's).
        let place =
          chosen.first ?? root.members?.first { $0.key == "Resources" }
        var error = fail(
          place.map { RuleNode(kind: .string($0.key), position: $0.keyPosition) } ?? resources,
          rules.isEmpty
            ? "the template has no AWS::IoT::TopicRule resource"
            : resource.map {
              "the template has no AWS::IoT::TopicRule resource '\(RuleFile.escapedName($0))'; it has \(listed)"
            }
              ?? "the template has \(rules.count) AWS::IoT::TopicRule resources (\(listed)): import each with "
              + "--resource ID, its logical id (import aws FILE --resource \(RuleFile.escapedName(rules[0].key)))"
        )
        // The template holds rules: the option picked none, or none was given to pick one.
        error.isUsage = !rules.isEmpty
        throw error
      }
      properties = only.value
      logicalID = only
    } else if let resource {
      var error = fail(
        root,
        "--resource \(RuleFile.escapedName(resource)) picks a CloudFormation template's resource; this is no template (it has no Resources)"
      )
      error.isUsage = true
      throw error
    }
    if properties["Type"]?.string == "AWS::IoT::TopicRule", let inner = properties["Properties"] {
      properties = inner
    }
    guard properties["TopicRulePayload"] != nil else { return root }
    func lowered(_ node: RuleNode, keepsKeys: Bool = false) -> RuleNode {
      switch node.kind {
      case .object(let members):
        if cloudFormationFunction(node) != nil { return node }
        var renamed: [RuleNode.Member] = []
        for member in members {
          let key = keepsKeys ? member.key : member.key.prefix(1).lowercased() + member.key.dropFirst()
          var value = lowered(member.value, keepsKeys: member.key == "ClientProperties")
          // CloudFormation takes a Boolean or Integer property written as a string, as templates
          // often have them ("EnableBatching": "true"): read as the value they spell.
          if case .string(let text) = value.kind {
            if Self.cloudFormationBooleans.contains(member.key),
              let flag = ["true": true, "false": false][text.lowercased()]
            {
              value.kind = .bool(flag)
            } else if Self.cloudFormationIntegers.contains(member.key), Int(text) != nil {
              value.kind = .number(text)
            }
          } else if !Self.cloudFormationBooleans.contains(member.key),
            !Self.cloudFormationIntegers.contains(member.key)
          {
            // Every other property is a String, and CloudFormation takes a number or a Boolean
            // written for one as its text (`MessageExpiry: 3600`, a Kafka `acks: 1`): so here.
            switch value.kind {
            case .number(let text): value.kind = .string(text)
            case .bool(let flag): value.kind = .string(flag ? "true" : "false")
            default: break
            }
          }
          renamed.append(RuleNode.Member(key: key, keyPosition: member.keyPosition, value: value))
        }
        return RuleNode(
          kind: .object(renamed), position: node.position, stringPositions: node.stringPositions)
      case .array(let elements):
        return RuleNode(
          kind: .array(elements.map { lowered($0) }), position: node.position,
          stringPositions: node.stringPositions)
      default:
        return node
      }
    }
    var converted = lowered(properties)
    // The resource's logical id names the rule when it has no RuleName (CloudFormation makes one
    // up), or one CloudFormation computes.
    if converted["ruleName"]?.string == nil, case .object(var members) = converted.kind {
      if !nameGiven, let node = converted["ruleName"], let function = cloudFormationFunction(node) {
        notes.append(
          "'RuleName' is \(function), a CloudFormation function: the rule is named "
            + (logicalID.map { "after its resource, '\(RuleFile.escapedName($0.key))'" } ?? "after the file")
            + " (give another with --name)")
      }
      members.removeAll { $0.key == "ruleName" }
      if let logicalID {
        members.append(
          RuleNode.Member(
            key: "ruleName", keyPosition: logicalID.keyPosition,
            value: RuleNode(kind: .string(logicalID.key), position: logicalID.keyPosition)))
      }
      converted.kind = .object(members)
    }
    // A function where the rule's own fields go: CloudFormation resolves it, this cannot.
    for (key, spelled) in [
      ("sql", "Sql"), ("ruleDisabled", "RuleDisabled"), ("awsIotSqlVersion", "AwsIotSqlVersion"),
    ] {
      if let node = converted["topicRulePayload"]?[key], let function = cloudFormationFunction(node) {
        throw fail(
          node,
          "'\(spelled)' is \(function), a CloudFormation function: import the deployed rule (aws iot get-topic-rule --rule-name NAME)"
        )
      }
    }
    return converted
  }

  /// `Ref` or `Fn::...` when `node` is such a CloudFormation function; nil otherwise.
  static func cloudFormationFunction(_ node: RuleNode) -> String? {
    guard let members = node.members, members.count == 1, let key = members.first?.key,
      key == "Ref" || key.hasPrefix("Fn::")
    else { return nil }
    return key
  }

  /// Where in an action a CloudFormation function stands, as `clientProperties.x (Ref)`, but in the
  /// fields the mapping drops (a role, a VPC destination); nil when none does.
  static func cloudFormationFunction(in node: RuleNode, at path: String = "") -> String? {
    if let function = cloudFormationFunction(node) { return "\(path) (\(function))" }
    switch node.kind {
    case .object(let members):
      for member in members where !["roleArn", "destinationArn"].contains(member.key) {
        let inner = path.isEmpty ? member.key : path + "." + member.key
        if let found = cloudFormationFunction(in: member.value, at: inner) { return found }
      }
    case .array(let elements):
      for (index, element) in elements.enumerated() {
        if let found = cloudFormationFunction(in: element, at: "\(path)[\(index)]") { return found }
      }
    default: break
    }
    return nil
  }

  /// The AWS action kinds `mapAction` imports.
  static let importedKinds: Set<String> = [
    "republish", "http", "kafka", "s3", "dynamoDB", "dynamoDBv2", "lambda",
  ]

  /// Whether `node`, an action `{"kind": {...}}`, is of a kind `mapAction` imports.
  static func importsKind(of node: RuleNode) -> Bool {
    node.members.map { $0.count == 1 && importedKinds.contains($0[0].key) } ?? false
  }

  /// Maps one `{"kind": {...}}` action; nil (and an `unmapped` entry) when it has no equivalent.
  static func mapAction(
    _ node: RuleNode, label: String, notes: inout [String], unmapped: inout [String], required: inout [String]
  ) -> Value? {
    guard let members = node.members, members.count == 1, let member = members.first else {
      unmapped.append("\(label): not an object with one key naming the action")
      return nil
    }
    guard let config = member.value.members else {
      unmapped.append("\(label): \(member.key): its settings must be an object, not \(member.value.kindName)")
      return nil
    }
    let fields = member.value
    func string(_ key: String) -> String? { fields[key]?.string }
    // Why a required string setting is not there: missing, empty, or of another type.
    func requiredProblem(_ path: [String]) -> String {
      var node: RuleNode? = fields
      for key in path { node = node?[key] }
      let name = "\(member.key).\(path.joined(separator: "."))"
      guard let node else { return "\(name) is missing (AWS requires it)" }
      guard node.string != nil else { return "\(name) must be a string, not \(node.kindName)" }
      return "\(name) is empty (AWS requires it)"
    }
    var out = OrderedObject()
    // The fields of the action AWS has that are dropped here: a misspelling of one changes nothing.
    var dropped: Set<String> = []
    func drop(_ keys: Set<String>, _ why: String = "no equivalent here") {
      dropped.formUnion(keys)
      for item in config where keys.contains(item.key) {
        notes.append("\(label) \(member.key).\(item.key): \(why); dropped")
      }
    }
    func dropUnknown(_ handled: Set<String>) {
      for item in config where !handled.contains(item.key) {
        // A misspelt setting that is used here (`Qos`, CloudFormation's spelling, in API JSON)
        // would silently change the action (QoS 1 became 0): it needs an edit, as a misspelt rule
        // field does. An action that maps directly keeps it as written, so that `check` refuses
        // the rule until it is corrected; one that becomes another kind (whose fields differ) is
        // written without it. A misspelling of a field dropped anyway is dropped with a note.
        let hint = FunctionRegistry.didYouMean(item.key, among: handled.subtracting(dropped).sorted())
        let name = "\(label) \(member.key).\(RuleFile.escapedName(item.key))"
        if hint.isEmpty {
          notes.append("\(label) \(member.key).\(item.key): unknown field; dropped")
        } else if ["republish", "http", "kafka"].contains(member.key) {
          out[item.key] = item.value.value
          required.append("\(name): unknown field\(hint)")
        } else {
          required.append("\(name): unknown field\(hint) (not imported: correct it and import again)")
        }
      }
    }
    let roleNote = "an IAM role is not needed here"
    let kind: String
    switch member.key {
    case "republish":
      kind = "republish"
      // AWS requires the topic: no value is made up.
      guard let topic = string("topic"), !topic.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["topic"]))")
        return nil
      }
      out["topic"] = .string(topic)
      if let qos = fields["qos"] { out["qos"] = qos.value }
      if let headers = fields["headers"] { out["headers"] = headers.value }
      drop(["roleArn"], roleNote)
      dropUnknown(["topic", "qos", "headers", "roleArn"])
      notes.append(
        "\(label) republish: each message also carries the user property iotrules-hops, a loop guard AWS does not have; \"maxHops\": 0 sends only the rule's own properties, as AWS does"
      )
    case "http":
      kind = "http"
      guard let url = string("url"), !url.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["url"]))")
        return nil
      }
      out["url"] = .string(url)
      if let confirmation = string("confirmationUrl") { out["confirmationUrl"] = .string(confirmation) }
      if let headers = fields["headers"] { out["headers"] = headers.value }
      if fields["enableBatching"]?.bool == true {
        var batch = OrderedObject()
        if let config = fields["batchConfig"] {
          // Each setting as AWS names it and types it; one misspelt or of another type changed
          // the batches without a word (a string "true" lost acrossTopics).
          let settings: [(aws: String, here: String, isFlag: Bool)] = [
            ("maxBatchSize", "maxSize", false), ("maxBatchOpenMs", "maxDelayMs", false),
            ("maxBatchSizeBytes", "maxBytes", false), ("batchAcrossTopics", "acrossTopics", true),
          ]
          for (aws, here, isFlag) in settings {
            guard let node = config[aws] else { continue }
            if isFlag, let flag = node.bool {
              batch[here] = .bool(flag)
            } else if !isFlag, let number = node.int {
              batch[here] = .int(number)
            } else {
              required.append(
                "\(label) http.batchConfig.\(aws) must be \(isFlag ? "true or false" : "a whole number"), not \(node.kindName) (not imported: correct it and import again)"
              )
            }
          }
          for item in config.members ?? [] where !settings.contains(where: { $0.aws == item.key }) {
            let hint = FunctionRegistry.didYouMean(item.key, among: settings.map(\.aws))
            let name = "\(label) http.batchConfig.\(RuleFile.escapedName(item.key))"
            if hint.isEmpty {
              notes.append("\(name): unknown field; dropped")
            } else {
              required.append("\(name): unknown field\(hint) (not imported: correct it and import again)")
            }
          }
        }
        out["batch"] = .object(batch)
      } else if fields["batchConfig"] != nil {
        notes.append(
          "\(label) http.batchConfig: enableBatching is not true, so AWS sends one request a message; dropped"
        )
      }
      if let auth = fields["auth"] {
        // Dropped, the rule would pass `check` and send the endpoint unsigned requests: it is
        // kept, and `check` refuses it until the user decides.
        out["auth"] = auth.value
        required.append(
          "\(label) http.auth: SigV4 signing is not supported, so the requests would go unsigned; the rule keeps 'auth', which check refuses until you remove it: add an Authorization header template or make sure the endpoint needs none"
        )
      }
      dropUnknown(["url", "confirmationUrl", "headers", "auth", "enableBatching", "batchConfig"])
    case "kafka":
      kind = "kafka"
      guard let topic = string("topic"), !topic.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["topic"]))")
        return nil
      }
      var properties = OrderedObject()
      var servers = ""
      for item in fields["clientProperties"]?.members ?? [] {
        if item.key == "bootstrap.servers" {
          servers = item.value.string ?? ""
        } else {
          properties[item.key] = item.value.value
        }
      }
      if servers.isEmpty {
        servers = "SET-ME.invalid:9092"
        required.append("\(label) kafka.bootstrapServers: clientProperties had no bootstrap.servers; set it")
      }
      out["bootstrapServers"] = .string(servers)
      out["topic"] = .string(topic)
      if let key = fields["key"] { out["key"] = key.value }
      if let partition = fields["partition"] { out["partition"] = partition.value }
      if let headers = fields["headers"] { out["headers"] = headers.value }
      // AWS connects over TLS when the rule names no protocol (its default is SSL; librdkafka's,
      // which a kafka action here follows, is plaintext): written out, so that the rule keeps
      // what it did.
      if properties.keys.allSatisfy({ $0.lowercased() != "security.protocol" }) {
        properties["security.protocol"] = .string("SSL")
        notes.append(
          "\(label) kafka: clientProperties had no security.protocol; AWS's default, SSL, is written out (an iotrules kafka action without one connects in plaintext)"
        )
      }
      out["clientProperties"] = .object(properties)
      drop(["destinationArn"], "the VPC destination is AWS's; the brokers are reached directly")
      dropUnknown(["destinationArn", "topic", "key", "partition", "headers", "clientProperties"])
      notes.append(
        "\(label) kafka: each record also carries the header iotrules-hops, a loop guard AWS does not have; \"maxHops\": 0 sends only the rule's own headers, as AWS does"
      )
    case "s3":
      kind = "file"
      // AWS requires both: no value is made up for either.
      guard let bucket = string("bucketName"), !bucket.isEmpty, let key = string("key"), !key.isEmpty else {
        unmapped.append(
          "\(label): \(requiredProblem([string("bucketName")?.isEmpty ?? true ? "bucketName" : "key"]))")
        return nil
      }
      if bucket.contains("${") {
        // A templated bucket cannot be a root (a folder named after the template): it becomes the
        // path's first folder, under the archive's default root.
        out["path"] = .string(bucket + "/" + key)
        notes.append(
          "\(label) s3 → file: the bucket template '\(bucket)' becomes the first folder of the path, key → below it"
        )
      } else {
        // The bucket is the archive root: a key (an object name in S3) cannot reach above it, `..`
        // included, written or rendered.
        out["root"] = .string(bucket)
        out["path"] = .string(key)
        notes.append(
          "\(label) s3 → file: bucket '\(bucket)' becomes the archive root \(bucket)/, key → path below it")
      }
      notes.append(
        "\(label) s3 → file: each result is a line of the file (S3 stored it as an object); one that is not JSON is the line {\"payload_base64\": ...}"
      )
      // S3 keys may hold `..`, `.` and empty segments or start with `/`; the file action refuses
      // such a path (it would leave the archive root or name no file), so the rule needs an edit.
      let segments = key.split(separator: "/", omittingEmptySubsequences: false)
      if key.hasPrefix("/") || segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
        required.append(
          "\(label) s3.key '\(key)': an S3 key may have a '..', '.' or empty segment or start with '/', a file path below the archive root may not; rewrite the key"
        )
      }
      if !key.contains("${") {
        notes.append(
          "\(label) s3.key '\(key)' has no template: S3 overwrote that one object with each result; the file action appends each result as a line"
        )
      }
      drop(["roleArn"], roleNote)
      drop(["cannedAcl"])
      dropUnknown(["bucketName", "key", "roleArn", "cannedAcl"])
    case "dynamoDB":
      kind = "sqlite"
      out["database"] = .string(AWSRuleImporter.dynamoDatabase)
      // AWS's operation: INSERT (the default), UPDATE or DELETE, or a template choosing one per
      // message. A sqlite action writes rows: a rule that deleted items must not become one that
      // adds them.
      if let operation = fields["operation"] {
        guard let text = operation.string else {
          unmapped.append("\(label): dynamoDB.operation must be a string, not \(operation.kindName)")
          return nil
        }
        if !["INSERT", "UPDATE"].contains(text.uppercased()) {
          unmapped.append(
            "\(label): dynamoDB with operation '\(RuleFile.escapedName(text))': a sqlite action only writes rows (INSERT, or UPDATE with 'key')"
          )
          return nil
        }
      }
      guard let table = string("tableName"), !table.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["tableName"]))")
        return nil
      }
      // (Said of an action written, not of one refused above.)
      notes.append(databaseNote(label))
      out["table"] = .string(tableName(table, label: label, required: &required, notes: &notes))
      // The key columns: (name, value template).
      let keys = [("hashKeyField", "hashKeyValue"), ("rangeKeyField", "rangeKeyValue")].compactMap {
        field, value in
        string(field).map { ($0, string(value) ?? "") }
      }
      // AWS's item is the key columns plus the whole result in one column: here the result's keys
      // are the columns, so the ported table has another schema until the rule says what it wants.
      let payload = string("payloadField") ?? "payload"
      required.append(
        "\(label) dynamoDB → sqlite: AWS writes the result into one column '\(payload)'"
          + (keys.isEmpty
            ? "" : " beside the key columns \(keys.map { "\($0.0) = '\($0.1)'" }.joined(separator: ", "))")
          + "; here each key of the result becomes a column"
          + (keys.isEmpty ? "" : " and the key columns are not written")
          + ": add them to the SELECT ("
          + (keys.isEmpty
            ? "`topic(2) AS device`"
            : keys.map { "`\(selectItem(value: $0.1, as: $0.0))`" }.joined(separator: ", "))
          + ") or give the sqlite action 'columns'"
          + (keys.isEmpty
            ? ""
            : ", and 'key': [\(keys.map { "\"\($0.0)\"" }.joined(separator: ", "))] to keep one row per key, as DynamoDB does")
          + "; the action keeps DynamoDB's settings, which check refuses until you remove them"
      )
      // Kept as written: a rule that runs without its key columns loses them (`check` passed it).
      for item in config where SQLiteAction.dynamoDBSettings.contains(item.key) {
        out[item.key] = item.value.value
      }
      drop(["roleArn"], roleNote)
      if fields["operation"]?.string?.uppercased() == "UPDATE" {
        required.append(
          "\(label) dynamoDB operation UPDATE → sqlite: give the action 'key' (the hash and range key columns) so that a result replaces its row"
        )
      }
      dropUnknown([
        "tableName", "roleArn", "operation", "hashKeyField", "hashKeyValue", "hashKeyType", "rangeKeyField",
        "rangeKeyValue", "rangeKeyType", "payloadField",
      ])
    case "dynamoDBv2":
      kind = "sqlite"
      out["database"] = .string(AWSRuleImporter.dynamoDatabase)
      guard let table = fields["putItem"]?["tableName"]?.string, !table.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["putItem", "tableName"]))")
        return nil
      }
      notes.append(databaseNote(label))
      out["table"] = .string(tableName(table, label: label, required: &required, notes: &notes))
      notes.append("\(label) dynamoDBv2 → sqlite: each key of the result becomes a column")
      // The table's key schema is DynamoDB's, not in the rule: without it every result is a row.
      required.append(
        "\(label) dynamoDBv2 → sqlite: putItem replaced the item with the same key; give the sqlite action 'key' (the DynamoDB table's key attributes, as \"key\": \"deviceId\") to keep one row per key, else each result is a new row"
      )
      drop(["roleArn"], roleNote)
      dropUnknown(["putItem", "roleArn"])
    case "lambda":
      kind = "http"
      // AWS requires the function: none, nothing is made up (as for the other kinds).
      guard let arn = string("functionArn"), !arn.isEmpty else {
        unmapped.append("\(label): \(requiredProblem(["functionArn"]))")
        return nil
      }
      // `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, or a name as written.
      let parts = arn.split(separator: ":", omittingEmptySubsequences: false)
      let function = parts.count > 6 ? String(parts[6]) : arn
      let pathSafe = function.unicodeScalars.allSatisfy {
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
          || "-_".unicodeScalars.contains($0)
      }
      out["url"] = .string("https://SET-ME.invalid/lambda/\(pathSafe ? function : "function")")
      required.append("\(label) lambda → http: set 'url' to an HTTP endpoint that runs \(arn)")
      dropUnknown(["functionArn"])
    default:
      let lowered = member.key.prefix(1).lowercased() + member.key.dropFirst()
      if ["sqlite", "file"].contains(member.key) {
        unmapped.append(
          "\(label): \(member.key) is an iotrules action, not an AWS one: an iotrules rule file needs no import"
        )
      } else if lowered != member.key, Self.importedKinds.contains(lowered) {
        unmapped.append(
          "\(label): \(member.key): the API spells action kinds in camelCase, '\(lowered)' (CloudFormation's spelling is read in a template, an AWS::IoT::TopicRule resource or its Properties, with TopicRulePayload)"
        )
      } else {
        unmapped.append("\(label): \(member.key)")
      }
      return nil
    }
    if fields["errorAction"] != nil {
      notes.append("\(label) \(member.key).errorAction: AWS has no per-action error action; dropped")
    }
    return .object([kind: .object(out)])
  }

  /// The SELECT item that writes a DynamoDB key's value template as its column: `clientid() AS id`
  /// for `${clientid()}`; one with text around its expressions keeps the template's text.
  static func selectItem(value: String, as field: String) -> String {
    let column =
      RuleFile.isValidRuleName(field) ? field : "\"\(field.replacingOccurrences(of: "\"", with: "\"\""))\""
    if value.hasPrefix("${"), value.hasSuffix("}"), value.components(separatedBy: "${").count == 2 {
      return "\(value.dropFirst(2).dropLast()) AS \(column)"
    }
    return "'\(value.replacingOccurrences(of: "'", with: "''"))' AS \(column)"
  }

  /// A DynamoDB table name as a SQLite identifier (`.` and `-` become `_`). A templated one (AWS
  /// renders it per result) needs the user: the sqlite action writes one table.
  static func tableName(
    _ name: String, label: String, required: inout [String], notes: inout [String]
  ) -> String {
    if name.contains("${") {
      // Kept as it is: `check` refuses it until the user decides (a made-up name such as
      // `t___topic_2__` passed, and every device went into that one table).
      required.append(
        "\(label): table '\(name)' is a template, one table per rendering in AWS; the sqlite action writes one table: name it, or write one rule per table"
      )
      return name
    }
    var mapped = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    if mapped.first!.isNumber { mapped = "t_" + mapped }
    if mapped != name {
      notes.append("\(label): table '\(name)' is written as '\(mapped)'")
    }
    return mapped
  }
}
