import IoTSQL
import RulesEngine

/// The one explicit table from an action's kind, as written in rule files, to the code that builds
/// it: `sqlite`, `file`, and the connector actions `republish`, `kafka` and `http`.
public struct ActionFactory: ActionBuilding {
  /// Builds an action from its configuration object.
  public typealias Maker =
    @Sendable (RuleNode, ActionBuildContext) throws(ActionConfigurationError) -> any Action

  /// The table.
  public private(set) var table: [String: Maker]

  /// Creates a factory with `table`.
  public init(table: [String: Maker]) { self.table = table }

  /// Every action of this module: `sqlite`, `file`, `republish`, `kafka` and `http`, with no MQTT
  /// publisher (a `republish` action then fails to load, saying it needs an MQTT broker) and no
  /// secrets. `withConnectors(publisher:secrets:)` gives the table with a publisher.
  public static let standard = withConnectors(publisher: nil)

  /// `sqlite` and `file` only.
  public static let local = ActionFactory(table: [
    "sqlite": { node, context throws(ActionConfigurationError) in
      try SQLiteAction(configuration: node, context: context)
    },
    "file": { node, context throws(ActionConfigurationError) in
      try FileArchiveAction(configuration: node, context: context, sweeper: .shared)
    },
  ])

  /// The full table with `republish` publishing through `publisher`.
  public static func withConnectors(publisher: (any Publisher)?, secrets: (any SecretStore)? = nil)
    -> ActionFactory
  {
    var factory = local
    factory.registerConnectorActions(publisher: publisher, secrets: secrets)
    return factory
  }

  /// Adds or replaces the row for `kind`.
  public mutating func register(_ kind: String, _ maker: @escaping Maker) { table[kind] = maker }

  /// Builds the action of `kind`.
  public func makeAction(kind: String, configuration: RuleNode, context: ActionBuildContext)
    throws(ActionConfigurationError) -> any Action
  {
    if let maker = table[kind] { return try maker(configuration, context) }
    let known = table.keys.sorted()
    // An AWS action this engine has no like of: `import aws` maps the ones it can (s3 to file,
    // dynamoDB to sqlite, lambda to http) and names the rest.
    let awsOnly = [
      "s3", "lambda", "dynamoDB", "dynamoDBv2", "sns", "sqs", "kinesis", "firehose", "cloudwatchMetric",
      "cloudwatchAlarm", "cloudwatchLogs", "elasticsearch", "openSearch", "salesforce", "iotAnalytics",
      "iotEvents", "iotSiteWise", "stepFunctions", "timestream", "location",
    ]
    let hint =
      awsOnly.contains(kind)
      ? "; an AWS action: `iotrules import aws` maps s3, dynamoDB and lambda and names the others"
      : FunctionRegistry.didYouMean(kind, among: known)
    throw ActionConfigurationError(
      "unknown action kind '\(kind)'\(hint); known kinds: \(known.joined(separator: ", "))")
  }
}

/// Reads an action's configuration object, reporting errors at the right key.
struct ConfigurationReader {
  let node: RuleNode
  let kind: String

  /// Fails on keys outside `allowed` (every one of them).
  func checkKeys(_ allowed: Set<String>) throws(ActionConfigurationError) {
    var problems = ConfigurationProblems()
    // `retry` and `errorAction`, which every action takes, are read by the rule's loader.
    let expected = allowed.union(["retry", "errorAction"]).sorted().joined(separator: ", ")
    for member in node.members ?? [] where !allowed.contains(member.key) {
      problems.add(
        "unknown key '\(RuleFile.escapedName(member.key))'\(FunctionRegistry.didYouMean(member.key, among: Array(allowed) + ["retry", "errorAction"]))"
          + "; expected \(expected)",
        at: member.keyPosition)
    }
    try problems.throwIfAny()
  }

  func string(_ key: String, required: Bool) throws(ActionConfigurationError) -> RuleNode? {
    guard let value = node[key] else {
      if required { throw ActionConfigurationError("missing key '\(key)'", at: node.position) }
      return nil
    }
    guard value.string != nil else {
      throw ActionConfigurationError(
        "'\(key)' must be a string" + value.readingHint(expecting: .string), at: value.position)
    }
    return value
  }

  func int(_ key: String, in node: RuleNode? = nil, minimum: Int = 0, maximum: Int = Int.max)
    throws(ActionConfigurationError) -> Int?
  {
    guard let value = (node ?? self.node)[key] else { return nil }
    if maximum == Int.max, value.int == nil, case .number(let spelling) = value.kind,
      let double = Double(spelling),
      double == double.rounded(), double > 0
    {
      // A whole number past 64 bits (`1e30`): its limit said, as the connector actions say it.
      throw ActionConfigurationError(
        "'\(key)' must be a whole number of at most \(Int.max) (64 bits), not \(spelling)", at: value.position
      )
    }
    guard let number = value.int, number >= minimum, number <= maximum else {
      throw ActionConfigurationError(
        maximum == Int.max
          ? "'\(key)' must be a whole number >= \(minimum)" + value.readingHint(expecting: .number)
          : "'\(key)' must be a whole number from \(minimum) to \(maximum)"
            + value.readingHint(expecting: .number),
        at: value.position)
    }
    return number
  }

  /// Compiles the template in the string `value` (or its part from `dropping` bytes on), mapping
  /// template errors to file positions; their messages name `field` (`file.path: in template: ...`).
  func template(_ value: RuleNode, field: String, dropping prefix: Int = 0, context: ActionBuildContext)
    throws(ActionConfigurationError)
    -> Template
  {
    let text = String(decoding: Array(value.string!.utf8).dropFirst(prefix), as: UTF8.self)
    let template: Template
    do {
      template = try Template.compile(text, version: context.version, variables: context.variableNames)
    } catch {
      // Each of the template's errors, at its own place.
      var problems = error.errors.map { diagnostic in
        ActionConfigurationError(
          "\(field): in template: \(diagnostic.message(placing: { value.position(ofStringOffset: prefix + $0.offset).description }))",
          at: value.position(ofStringOffset: prefix + diagnostic.range.start.offset))
      }
      problems[0].further = Array(problems.dropFirst())
      throw problems[0]
    }
    // These templates (a file path, a sqlite column) are rendered without the secret store: a
    // secret rendered empty, every rule's path the same file.
    if let call = template.getSecretCall {
      let at = call.start.offset
      throw ActionConfigurationError(
        "\(field): get_secret is read only in the http, kafka and republish actions' settings: here it would render empty",
        at: value.position(ofStringOffset: prefix + at))
    }
    return template
  }
}

/// Why a setting's file path will not name what a shell would (`~/iot.db`, `$HOME/iot.db`: no
/// shell expands them, and a folder `~` or `$HOME` was made below the current one), or nil.
func unexpandedPathProblem(_ path: String, key: String) -> String? {
  // `~` or `~user` as the first component, as a shell would expand it.
  let first = path.prefix { $0 != "/" }
  if first.first == "~",
    first.dropFirst().allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
  {
    return
      "'\(key)' '\(clipped(path, keeping: 64))' begins with '\(clipped(first, keeping: 32))', which no shell expands here: "
      + "it names a folder '\(clipped(first, keeping: 32))' below the folder the daemon runs in; write the whole path"
  }
  // `$NAME` (not `${...}`, a template).
  let characters = Array(path)
  if zip(characters, characters.dropFirst()).contains(where: { $0 == "$" && ($1.isLetter || $1 == "_") }) {
    return
      "'\(key)' '\(clipped(path, keeping: 64))' holds '$', which no shell expands here (an environment variable is "
      + "not read): write the whole path"
  }
  return nil
}

/// True for `[A-Za-z_][A-Za-z0-9_]{0,127}`: the table and column names the SQLite action accepts.
public func isValidIdentifier(_ name: String) -> Bool {
  guard let first = name.utf8.first, name.utf8.count <= 128 else { return false }
  func isLetter(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
      || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
      || byte == UInt8(ascii: "_")
  }
  return isLetter(first)
    && name.utf8.allSatisfy { isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
}
