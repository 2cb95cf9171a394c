import Foundation
import IoTSQL
import RulesEngine
import Synchronization

/// An invalid action configuration, naming the field: `republish.topic: must not be empty`.
public struct ActionSettingsError: Error, Sendable, CustomStringConvertible {
  /// The field, dotted from the action kind: `http.batch.maxSize`.
  public var field: String
  /// What is wrong.
  public var message: String

  /// The further problems found in the same action's settings, in the order they were found
  /// (`iotrules check` reports them all at once).
  public var further: [ActionSettingsError] = []
  /// For an error inside a template: the template's diagnostic, and the UTF-8 offset in the
  /// field's string where the template starts (a republish topic's `$$` escape is not part of it),
  /// so the error points at its column in the rule file.
  var template: (diagnostic: Diagnostic, shift: Int)?

  /// Creates an error.
  public init(field: String, _ message: String) {
    self.field = field
    self.message = message
  }

  /// An error inside the template of `field`, which starts `shift` bytes into the field's string.
  init(field: String, template diagnostic: Diagnostic, shift: Int = 0) {
    self.init(field: field, "in template: \(diagnostic.message)")
    template = (diagnostic, shift)
  }

  /// `field: message`, as `iotrules check` prints it.
  public var description: String { "\(field): \(message)" }

  /// Why `host` is refused, or nil: a host under `.invalid` never resolves (RFC 2606); it is the
  /// placeholder `import aws` writes where AWS's rule had no endpoint to carry over.
  static func placeholderHostProblem(_ host: String) -> String? {
    let lowered = host.lowercased()
    guard lowered == "invalid" || lowered.hasSuffix(".invalid") else { return nil }
    return "host '\(host)' is a placeholder ('.invalid' never resolves): set the real endpoint"
  }
}

/// A `${...}` template of an action field, compiled once and rendered per message against the
/// original message and the rule's SET variables.
struct ActionTemplate: Sendable {
  let template: Template
  /// True when the template calls `get_secret`: only then does rendering watch for missing secrets.
  let readsSecrets: Bool

  /// Compiles `text`, which starts `shift` bytes into the string of `field`; errors name `field`
  /// and the position inside the template.
  init(_ text: String, field: String, shift: Int = 0, version: SQLVersion, variables: [String])
    throws(ActionSettingsError)
  {
    do {
      template = try Template.compile(text, version: version, variables: variables)
    } catch {
      // Each of the template's errors, at its own place.
      var problems = error.errors.map { ActionSettingsError(field: field, template: $0, shift: shift) }
      problems[0].further = Array(problems.dropFirst())
      throw problems[0]
    }
    readsSecrets = template.callsGetSecret
  }

  /// Renders with `machine`: the templates an action renders for one result share the budget
  /// the action began on it (``VirtualMachine/shareBudget()``), one second of CPU for all of them.
  func render(_ input: ActionInput, secrets: (any SecretStore)?, using machine: inout VirtualMachine)
    throws(EvaluationStopped) -> String
  {
    try template.render(
      context: input.message.evaluationContext(secrets: secrets), variables: input.evaluation.variables,
      using: &machine)
  }

  /// Renders the template, or fails permanently when a secret it reads does not exist: a header
  /// must not go out with the secret silently left empty.
  func renderRequiringSecrets(
    _ input: ActionInput, secrets: (any SecretStore)?, field: String, using machine: inout VirtualMachine
  ) throws(ActionError) -> String {
    try requiringSecrets(secrets, field: field) { store throws(EvaluationStopped) in
      try render(input, secrets: store, using: &machine)
    }
  }

  /// `renderRequiringSecrets`, with the UTF-8 byte ranges of the result that values wrote, and the
  /// text to show in logs and error records: the secrets it holds masked (`***`).
  func renderMarkingValues(
    _ input: ActionInput, secrets: (any SecretStore)?, field: String, using machine: inout VirtualMachine
  ) throws(ActionError) -> (text: String, valueRanges: [Range<Int>], shown: String) {
    var read: [String] = []
    let (text, ranges) = try requiringSecrets(secrets, field: field, reading: &read) {
      store throws(EvaluationStopped) in
      try template.renderMarkingValues(
        context: input.message.evaluationContext(secrets: store), variables: input.evaluation.variables,
        using: &machine)
    }
    return (text, ranges, Self.masking(read, in: text))
  }

  /// `renderRequiringSecrets`, and the text with the secrets it holds masked, for logs and error
  /// records (a rendered topic or URL is the record's `failedResource`).
  func renderShowing(
    _ input: ActionInput, secrets: (any SecretStore)?, field: String, using machine: inout VirtualMachine
  ) throws(ActionError) -> (text: String, shown: String) {
    var read: [String] = []
    let text = try requiringSecrets(secrets, field: field, reading: &read) {
      store throws(EvaluationStopped) in
      try render(input, secrets: store, using: &machine)
    }
    return (text, Self.masking(read, in: text))
  }

  /// `text` with every occurrence of each of `secrets` replaced by `***`, the longest first.
  static func masking(_ secrets: [String], in text: String) -> String {
    var shown = text
    for secret in Set(secrets).sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
      shown = shown.replacingExactly(secret, with: "***")
    }
    return shown
  }

  /// What `render` returns with `secrets`, watched for a missing secret when the template reads one.
  private func requiringSecrets<T>(
    _ secrets: (any SecretStore)?, field: String,
    _ render: ((any SecretStore)?) throws(EvaluationStopped) -> T
  ) throws(ActionError) -> T {
    var read: [String] = []
    return try requiringSecrets(secrets, field: field, reading: &read, render)
  }

  /// `requiringSecrets`, adding to `read` the secrets the rendering read.
  private func requiringSecrets<T>(
    _ secrets: (any SecretStore)?, field: String, reading read: inout [String],
    _ render: ((any SecretStore)?) throws(EvaluationStopped) -> T
  ) throws(ActionError) -> T {
    // A stopped rendering fails the result for good: the same message stops it again.
    func rendered(_ store: (any SecretStore)?) throws(ActionError) -> T {
      do {
        return try render(store)
      } catch {
        throw ActionError(.permanent, "\(field): \(error.described(in: template.source))")
      }
    }
    guard readsSecrets else { return try rendered(secrets) }
    let watched = WatchedSecrets(secrets)
    let text = try rendered(watched)
    if let (id, reason) = watched.firstMissing {
      if let reason {
        throw ActionError(.permanent, "\(field): get_secret('\(id)') gives nothing: \(reason)")
      }
      throw ActionError(
        .permanent,
        "\(field): get_secret('\(id)') found no secret (no file '\(id)' in --secrets-dir, no variable \(SecretFolder.variableName(for: id)))"
      )
    }
    read += watched.found
    return text
  }
}

extension PlaceholderSecrets {
  /// Secrets as `AAAA`: letters and digits that every place takes (a URL, a header, base64), so a
  /// preview tells a refusal of the rule's text from one of the placeholder `***`.
  static let plain = PlaceholderSecrets("AAAA")
}

/// A secret store that forwards to another and remembers the secrets it gave and the first id it
/// had no secret for (or the first key a secret lacked).
private final class WatchedSecrets: SecretStore {
  private let store: (any SecretStore)?
  private let seen = Mutex<(missing: (id: String, reason: String?)?, found: [String])>((nil, []))

  init(_ store: (any SecretStore)?) { self.store = store }

  /// The store's: a preview's `***` is given for every secret, none read.
  var placeholder: String? { store?.placeholder }

  /// The first id asked for that had no secret, or whose secret gave nothing (and why).
  var firstMissing: (id: String, reason: String?)? { seen.withLock { $0.missing } }
  /// The secrets given.
  var found: [String] { seen.withLock { $0.found } }

  func secret(named id: String) -> String? {
    let secret = store?.secret(named: id)
    seen.withLock { seen in
      if let secret { seen.found.append(secret) } else { seen.missing = seen.missing ?? (id, nil) }
    }
    return secret
  }

  func notGiven(_ id: String, because reason: String) {
    seen.withLock { $0.missing = $0.missing ?? (id, reason) }
  }

  func disclosed(_ text: String) {
    seen.withLock { $0.found.append(text) }
  }
}

/// The `republish` action: publishes the rule's result on an MQTT topic, as AWS IoT's republish.
///
/// Rule file: `{"republish": {"topic": "alerts/${topic(2)}", "qos": 1, "retain": false,
/// "headers": {"contentType": "application/json", "userProperties": [{"key": "k", "value": "v"}]}}}`.
///
/// It publishes on the MQTT source's broker (or `--mqtt URL` when the source is not MQTT) through a
/// `Publisher`. A rendered topic with a wildcard, an empty level, more than 256 bytes or more than 8
/// levels is a permanent failure. Loops: every republished message carries the MQTT 5 user property
/// `iotrules-hops`, one more than the incoming message's; past `maxHops` the action fails permanently
/// (`maxHops: 0`: no property and no guard, as AWS republishes).
public final class RepublishAction: Action {
  /// The `headers` object: MQTT 5 publish properties, each a template.
  public struct Headers: Decodable, Sendable, Equatable {
    /// `content_type` property.
    public var contentType: String?
    /// Correlation data, written base64-encoded as AWS does.
    public var correlationData: String?
    /// Message expiry interval in seconds (renders to a whole number).
    public var messageExpiry: String?
    /// `UNSPECIFIED_BYTES` or `UTF8_DATA`.
    public var payloadFormatIndicator: String?
    /// Response topic.
    public var responseTopic: String?
    /// User properties, in order; keys and values are templates.
    public var userProperties: [KeyValue]?

    /// Creates headers.
    public init(
      contentType: String? = nil, correlationData: String? = nil, messageExpiry: String? = nil,
      payloadFormatIndicator: String? = nil, responseTopic: String? = nil, userProperties: [KeyValue]? = nil
    ) {
      self.contentType = contentType
      self.correlationData = correlationData
      self.messageExpiry = messageExpiry
      self.payloadFormatIndicator = payloadFormatIndicator
      self.responseTopic = responseTopic
      self.userProperties = userProperties
    }
  }

  /// A key and a templated value (headers, user properties).
  public struct KeyValue: Decodable, Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value template.
    public var value: String

    /// Creates a pair.
    public init(key: String, value: String) {
      self.key = key
      self.value = value
    }
  }

  /// The action's settings as written in a rule file.
  public struct Configuration: Decodable, Sendable, Equatable {
    /// Topic template (required). Write `$$` for a leading `$` (AWS's reserved topics); a topic
    /// that renders a leading `$` without it (`${deviceId}/x` with deviceId `$aws/…`) is refused.
    public var topic: String
    /// 0 (the default, as AWS) or 1.
    public var qos: Int
    /// Retain flag; false by default.
    public var retain: Bool
    /// MQTT 5 properties; none by default.
    public var headers: Headers?
    /// The largest hop count a republished message may carry before the action refuses it (default 8);
    /// 0 turns the guard and its user property off.
    public var maxHops: Int

    /// The hops a republished message may carry when `maxHops` is not given.
    public static let defaultMaxHops = 8

    /// Creates a configuration.
    public init(
      topic: String, qos: Int = 0, retain: Bool = false, headers: Headers? = nil,
      maxHops: Int = defaultMaxHops
    ) {
      self.topic = topic
      self.qos = qos
      self.retain = retain
      self.headers = headers
      self.maxHops = maxHops
    }

    private enum CodingKeys: String, CodingKey { case topic, qos, retain, headers, maxHops }

    /// Decodes with the defaults above.
    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      topic = try container.decode(String.self, forKey: .topic)
      qos = try container.decodeIfPresent(Int.self, forKey: .qos) ?? 0
      retain = try container.decodeIfPresent(Bool.self, forKey: .retain) ?? false
      headers = try container.decodeIfPresent(Headers.self, forKey: .headers)
      maxHops = try container.decodeIfPresent(Int.self, forKey: .maxHops) ?? Self.defaultMaxHops
    }

    /// Checks what can be checked before any message: the topic, the QoS, constant headers.
    /// Throws the first problem, carrying the others.
    public func validate() throws(ActionSettingsError) {
      var problems = SettingsProblems()
      check(into: &problems)
      try problems.throwIfAny()
    }

    /// Notes every problem `validate` reports.
    func check(into problems: inout SettingsProblems) {
      if topic.isEmpty { problems.add(field: "republish.topic", "must not be empty") }
      if qos != 0 && qos != 1 {
        problems.add(field: "republish.qos", "must be 0 or 1, not \(qos)")
      }
      if maxHops < 0 {
        problems.add(
          field: "republish.maxHops",
          "must be 0 (no loop guard and no property, as AWS sends) or more, not \(maxHops)")
      }
      if let indicator = headers?.payloadFormatIndicator, !indicator.contains("${"),
        indicator != "UNSPECIFIED_BYTES" && indicator != "UTF8_DATA"
      {
        problems.add(
          field: "republish.headers.payloadFormatIndicator",
          "must be UNSPECIFIED_BYTES or UTF8_DATA, not '\(indicator)'")
      }
      if let expiry = headers?.messageExpiry, !expiry.contains("${"), UInt32(expiry) == nil {
        problems.add(
          field: "republish.headers.messageExpiry",
          "must be a whole number of seconds from 0 to 4294967295 (MQTT's 32 bits), not '\(expiry.prefix(40))'"
        )
      }
      // Sent beside the loop guard's own, it went twice (which one counts is the reader's guess).
      if maxHops > 0,
        let index = headers?.userProperties?.firstIndex(where: { $0.key == RepublishAction.hopProperty })
      {
        problems.add(
          field: "republish.headers.userProperties[\(index)].key",
          "'\(RepublishAction.hopProperty)' is the loop guard's own property (maxHops); set \"maxHops\": 0 to send it yourself"
        )
      }
      // A constant that is not base64 (AWS: "This binary data must be based64-encoded") failed
      // every message.
      if let data = headers?.correlationData, !data.contains("${"), !data.isEmpty {
        if let decoded = Base64.decode(data, requiringPadding: true) {
          if decoded.count > RepublishAction.maxPropertyBytes {
            problems.add(
              field: "republish.headers.correlationData",
              "is \(decoded.count) bytes once decoded; MQTT carries at most 65,535")
          }
        } else {
          problems.add(
            field: "republish.headers.correlationData",
            "must be base64 (the bytes it sends, encoded), not '\(data.prefix(40))'")
        }
      }
      // Bytes: `$` followed by a combining mark is no `$` Character, but a `$` topic to the broker.
      if topic.startsExactly(with: "$") && !topic.startsExactly(with: "$$")
        && !topic.startsExactly(with: "${")
      {
        problems.add(
          field: "republish.topic", "write '$$' for a topic starting with '$' (AWS's escape), not '\(topic)'")
      } else if !topic.isEmpty {
        // A template's own text is judged too: `out/+/${x}` or `out//${x}` fails every message.
        let (text, dollar) = RepublishAction.unescapeTopic(topic)
        if let problem = RepublishAction.topicProblem(
          ofTemplate: text, prefix: dollar ? "$" : "", written: topic)
        {
          problems.add(field: "republish.topic", problem)
        }
      }
      if let response = headers?.responseTopic,
        let problem = RepublishAction.topicProblem(ofTemplate: response, written: response)
      {
        problems.add(field: "republish.headers.responseTopic", problem)
      }
      var strings = (headers?.userProperties ?? []).enumerated().flatMap { index, pair in
        [
          ("headers.userProperties[\(index)].key", pair.key),
          ("headers.userProperties[\(index)].value", pair.value),
        ]
      }
      if let contentType = headers?.contentType {
        strings.insert(("headers.contentType", contentType), at: 0)
      }
      for (field, text) in strings {
        if let probe = TemplateProbe.probe(text), let problem = RepublishAction.propertyProblem(probe, field),
          !text.contains("${") || !problem.message.contains("rendered")
        {
          problems.add(
            field: "republish.\(field)", problem.message.replacingExactly("republish \(field) ", with: ""))
        }
      }
    }
  }

  /// What ``RepublishAction/topicProblem(_:)`` says of every rendering of the topic template
  /// `text` (`prefix` before it), its problem quoting the topic as `written`; a template's length
  /// is not judged (a value may render empty).
  static func topicProblem(ofTemplate text: String, prefix: String = "", written: String) -> String? {
    guard let probe = TemplateProbe.probe(text).map({ prefix + $0 }),
      let problem = RepublishAction.topicProblem(probe)
    else { return nil }
    guard written.contains("${") else { return problem }
    return problem.contains("longer than")
      ? nil : problem.replacingExactly("'\(probe)'", with: "'\(written)'")
  }

  /// The user property that counts republish hops (and the Kafka header that counts a kafka
  /// action's).
  public static let hopProperty = "iotrules-hops"

  /// The hops `message` says it made (its last `iotrules-hops` user property or Kafka header), or
  /// nil. It comes from whoever published: a negative count (which would let a loop run without
  /// end) is taken as 0, one past Int's range as the most there is.
  public static func claimedHops(of message: Message) -> Int? {
    message.userProperties.last(where: { $0.key == hopProperty }).flatMap { property -> Int? in
      let text = property.value.trimmingCharacters(in: .whitespaces)
      if let count = Int(text) { return max(0, count) }
      return !text.isEmpty && text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) ? Int.max : nil
    }
  }

  /// The configuration.
  public let configuration: Configuration
  private let publisher: any Publisher
  /// Whether hops are counted from the record of what this process republished: only when the
  /// publisher carries no user properties (MQTT 3.1.1). Under MQTT 5 a message without the hop
  /// property is a device's own, even when it repeats one this process republished.
  private let usesHopLedger: Bool
  private let secrets: (any SecretStore)?
  private let topic: ActionTemplate
  private let leadingDollar: Bool
  private let contentType: ActionTemplate?
  private let correlationData: ActionTemplate?
  private let messageExpiry: ActionTemplate?
  private let payloadFormatIndicator: ActionTemplate?
  private let responseTopic: ActionTemplate?
  private let userProperties: [(key: ActionTemplate, value: ActionTemplate)]

  /// `republish`.
  public var kind: String { "republish" }
  /// `RepublishAction`.
  public var actionName: String { "RepublishAction" }
  /// The topic template.
  public var resource: String { configuration.topic }

  /// Validates and compiles the configuration.
  public init(
    configuration: Configuration, publisher: any Publisher, version: SQLVersion = .default,
    variables: [String] = [], secrets: (any SecretStore)? = nil
  ) throws(ActionSettingsError) {
    var problems = SettingsProblems()
    configuration.check(into: &problems)
    let (text, dollar) = Self.unescapeTopic(configuration.topic)
    func compile(_ text: String?, _ field: String, shift: Int = 0) -> ActionTemplate? {
      guard let text else { return nil }
      return problems.attempt { () throws(ActionSettingsError) in
        try ActionTemplate(
          text, field: "republish.\(field)", shift: shift, version: version, variables: variables)
      }
    }
    let topic = compile(text, "topic", shift: dollar ? 2 : 0)
    let headers = configuration.headers
    contentType = compile(headers?.contentType, "headers.contentType")
    correlationData = compile(headers?.correlationData, "headers.correlationData")
    messageExpiry = compile(headers?.messageExpiry, "headers.messageExpiry")
    payloadFormatIndicator = compile(headers?.payloadFormatIndicator, "headers.payloadFormatIndicator")
    responseTopic = compile(headers?.responseTopic, "headers.responseTopic")
    var pairs: [(key: ActionTemplate, value: ActionTemplate)] = []
    for (index, pair) in (headers?.userProperties ?? []).enumerated() {
      let key = compile(pair.key, "headers.userProperties[\(index)].key")
      let value = compile(pair.value, "headers.userProperties[\(index)].value")
      if let key, let value { pairs.append((key, value)) }
    }
    try problems.throwIfAny()
    self.configuration = configuration
    self.publisher = publisher
    self.usesHopLedger = !publisher.carriesUserProperties
    self.secrets = secrets
    leadingDollar = dollar
    self.topic = topic!
    userProperties = pairs
  }

  /// `$$x` → (`x`, leading dollar); the template compiles without the escape and the `$` is put back
  /// after rendering, as AWS documents.
  public static func unescapeTopic(_ text: String) -> (String, Bool) {
    text.startsExactly(with: "$$")
      ? (String(decoding: text.utf8.dropFirst(2), as: UTF8.self), true) : (text, false)
  }

  /// Why `topic` cannot be published to, or nil: AWS's limits.
  public static func topicProblem(_ topic: String) -> String? {
    if topic.isEmpty { return "the topic is empty" }
    if topic.utf8.count > 256 { return "the topic '\(topic.prefix(40))…' is longer than 256 bytes" }
    // Bytes: `+` followed by a combining mark is no `+` Character, but a wildcard to the broker.
    if topic.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }) {
      return "the topic '\(topic)' contains a wildcard"
    }
    if topic.utf8.contains(0) { return "the topic contains a NUL character" }
    // libmosquitto refused it as "Malformed UTF-8", which it is not.
    if let (character, offset) = unwantedCharacter(in: topic) {
      return "the topic contains the \(character) at byte \(offset), which an MQTT topic must not hold"
    }
    let levels = topic.splitExactly("/")
    if levels.contains(where: \.isEmpty) { return "the topic '\(topic)' has an empty level" }
    // A Basic Ingest topic's `$aws/rules/NAME/` does not count toward the limit (AWS's quota).
    let counted = topic.startsExactly(with: "$aws/rules/") ? max(0, levels.count - 3) : levels.count
    if counted > 8 {
      return
        "the topic '\(topic)' has \(counted) levels\(counted == levels.count ? "" : " after '$aws/rules/NAME/'"); at most 8 are allowed"
    }
    return nil
  }

  /// Nothing to open: the publisher is started by its owner.
  public func start() async throws {}

  /// Renders the topic and headers and publishes the result; returns when the broker has it at the
  /// configured QoS.
  public func perform(_ input: ActionInput) async throws(ActionError) {
    // A secret that is missing fails the message: left empty, it would change where the message
    // goes, or what it says, without a word.
    // The topic and the properties share one budget of CPU time.
    var machine = VirtualMachine()
    _ = machine.shareBudget()
    let (text, shownText) = try topic.renderShowing(
      input, secrets: secrets, field: "republish topic", using: &machine)
    let rendered = (leadingDollar ? "$" : "") + text
    // What logs and error records show: a secret in the topic masked.
    let shown = (leadingDollar ? "$" : "") + shownText
    do {
      try await publish(input, to: rendered, using: &machine)
    } catch {
      // Every message that quotes the topic (the publisher's too) shows it masked.
      var error = error
      if !shown.isExactly(rendered) { error.message = error.message.replacingExactly(rendered, with: shown) }
      // A topic the checks refused is not echoed as the resource (its message quotes it): the
      // configured template is, for a reserved topic asked without `$$` too.
      throw Self.topicProblem(rendered) != nil || asksReservedUnescaped(rendered) ? error : error.about(shown)
    }
  }

  /// The longest string or binary property MQTT carries: its length is two bytes.
  static let maxPropertyBytes = 65_535

  /// Why a rendered MQTT 5 string property cannot be sent, or nil: libmosquitto cut a longer one
  /// to its length modulo 65,536 and a NUL ended it, without a word; a control character
  /// (U+0001–U+001F, U+007F–U+009F) or a noncharacter (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF), which MQTT 5
  /// says a string should not hold, made mosquitto drop the connection as malformed, and libmosquitto
  /// then sent the message again after every reconnect, so one payload stopped every republish.
  static func propertyProblem(_ text: String, _ field: String) -> ActionError? {
    if text.utf8.count > maxPropertyBytes {
      return ActionError(
        .permanent, "republish \(field) rendered \(text.utf8.count) bytes; MQTT carries at most 65,535")
    }
    if text.utf8.contains(0) { return ActionError(.permanent, "republish \(field) contains a NUL character") }
    if let (character, offset) = unwantedCharacter(in: text) {
      return ActionError(
        .permanent,
        "republish \(field) contains the \(character) at byte \(offset), which an MQTT 5 string must not hold (brokers drop the connection for it)"
      )
    }
    return nil
  }

  /// The first character of `text` an MQTT string should not hold (``TopicFilter/unwantedCharacter(in:)``).
  static func unwantedCharacter(in text: String) -> (String, offset: Int)? {
    TopicFilter.unwantedCharacter(in: text)
  }

  /// Whether `rendered` starts with `$` though the template was not written with AWS's `$$`
  /// escape: a value from the message reaching a reserved topic, which is refused.
  private func asksReservedUnescaped(_ rendered: String) -> Bool {
    !leadingDollar && rendered.utf8.first == UInt8(ascii: "$")
  }

  /// Publishes `input` to the rendered topic `rendered`.
  private func publish(_ input: ActionInput, to rendered: String, using machine: inout VirtualMachine)
    async throws(ActionError)
  {
    if let problem = Self.topicProblem(rendered) {
      let why = rendered.isEmpty ? "the topic rendered empty (a value the message lacks?)" : problem
      throw ActionError(.permanent, "republish topic template '\(configuration.topic)': \(why)")
    }
    // A value from the message must not reach a reserved topic ($aws/rules/… is Basic Ingest,
    // $SYS/… the broker's): only a template written with AWS's `$$` escape asks for one.
    if asksReservedUnescaped(rendered) {
      throw ActionError(
        .permanent,
        "rule '\(input.ruleName)', republish action: the topic rendered '\(rendered)', which starts with '$', but the topic template '\(configuration.topic)' does not start with '$$' (write '$$' for a reserved topic); refused"
      )
    }
    // The hop count travels as a user property; a message that lost it (MQTT 3.1.1) and that this
    // process republished is known from the ledger. `maxHops: 0`: no guard, and the message goes
    // out with only its own properties, as AWS sends it.
    let nowMs = Int(Date().timeIntervalSince1970 * 1000)
    var outgoingHops: Int?
    if configuration.maxHops > 0 {
      // The property comes from whoever published: a negative count (which would let a loop run
      // without end) is taken as 0, one past Int's range as the most there is (it was 0), and the
      // ledger's count, when it has one, is not undercut.
      let claimedHops = Self.claimedHops(of: input.message)
      let knownHops =
        usesHopLedger
        ? HopLedger.shared.hops(topic: input.message.topic, payload: input.message.payload, nowMs: nowMs)
        : nil
      let incomingHops = max(claimedHops ?? 0, knownHops ?? 0)
      if incomingHops >= configuration.maxHops {
        throw ActionError(
          .permanent,
          "republish to '\(rendered)' refused: the message has already been republished \(incomingHops) times (maxHops \(configuration.maxHops)); is a rule republishing onto its own FROM topic?"
        )
      }
      outgoingHops = incomingHops + 1
    }
    // Under MQTT 3.1.1 the headers are not sent (said at load): their values decide nothing (a
    // field the message lacked, a messageExpiry that is no number, failed the message).
    var properties =
      publisher.carriesUserProperties
      ? try properties(for: input, secrets: secrets, using: &machine) : PublishProperties()
    let payload = input.evaluation.payload
    if let outgoingHops {
      properties.userProperties.append((Self.hopProperty, String(outgoingHops)))
      if usesHopLedger {
        HopLedger.shared.record(topic: rendered, payload: payload, hops: outgoingHops, nowMs: nowMs)
      }
    }
    try await publisher.publish(
      topic: rendered, payload: payload, qos: configuration.qos, retain: configuration.retain,
      properties: properties)
  }

  /// The MQTT 5 properties of `input`'s message, rendered with `secrets` and judged as the broker
  /// needs them (the hop count not yet added), or the permanent error that refuses them.
  private func properties(
    for input: ActionInput, secrets: (any SecretStore)?, using machine: inout VirtualMachine
  ) throws(ActionError) -> PublishProperties {
    // A header whose template renders empty (the message has no such field) is left out, each the
    // same way: the message goes without that header.
    var properties = PublishProperties()
    properties.contentType = try contentType?.renderRequiringSecrets(
      input, secrets: secrets, field: "republish contentType", using: &machine)
    if properties.contentType?.isEmpty == true { properties.contentType = nil }
    if let responseTopic {
      let (response, shownResponse) = try responseTopic.renderShowing(
        input, secrets: secrets, field: "republish responseTopic", using: &machine)
      if !response.isEmpty {
        // A response topic is a topic name: MQTT 5 forbids wildcards there, and a strict broker drops
        // the connection for one.
        if let problem = Self.topicProblem(response) {
          throw ActionError(
            .permanent, "republish responseTopic rendered '\(clipped(shownResponse))': \(problem)")
        }
        properties.responseTopic = response
      }
    }
    if let template = correlationData {
      let (text, shown) = try template.renderShowing(
        input, secrets: secrets, field: "republish correlationData", using: &machine)
      if !text.isEmpty {
        guard let data = Base64.decode(text, requiringPadding: true) else {
          throw ActionError(.permanent, "republish correlationData '\(clipped(shown))' is not base64")
        }
        guard data.count <= Self.maxPropertyBytes else {
          throw ActionError(
            .permanent, "republish correlationData is \(data.count) bytes; MQTT carries at most 65,535")
        }
        properties.correlationData = data
      }
    }
    if let template = messageExpiry {
      let (text, shown) = try template.renderShowing(
        input, secrets: secrets, field: "republish messageExpiry", using: &machine)
      if !text.isEmpty {
        guard let seconds = UInt32(text) else {
          throw ActionError(
            .permanent,
            "republish messageExpiry '\(clipped(shown))' is not a whole number of seconds from 0 to 4294967295 (MQTT's 32 bits)"
          )
        }
        properties.messageExpiry = seconds
      }
    }
    if let template = payloadFormatIndicator {
      let (text, shown) = try template.renderShowing(
        input, secrets: secrets, field: "republish payloadFormatIndicator", using: &machine)
      switch text {
      case "": break
      case "UTF8_DATA":
        // MQTT 5 lets a receiver drop the connection for a payload that says UTF-8 and is not.
        if String(validating: input.evaluation.payload, as: UTF8.self) == nil {
          throw ActionError(
            .permanent,
            "republish payloadFormatIndicator UTF8_DATA, but the payload is not valid UTF-8 (binary bytes passed on); refused"
          )
        }
        properties.payloadFormatIndicator = 1
      case "UNSPECIFIED_BYTES": properties.payloadFormatIndicator = 0
      default:
        throw ActionError(
          .permanent,
          "republish payloadFormatIndicator '\(clipped(shown))' is not UNSPECIFIED_BYTES or UTF8_DATA")
      }
    }
    // Names as shown in messages: a secret in one masked.
    var shownKeys: [String] = []
    for pair in userProperties {
      let (key, shownKey) = try pair.key.renderShowing(
        input, secrets: secrets, field: "republish user property name", using: &machine)
      properties.userProperties.append(
        (
          key,
          try pair.value.renderRequiringSecrets(
            input, secrets: secrets, field: "republish user property '\(shownKey.prefix(64))'",
            using: &machine)
        ))
      shownKeys.append(shownKey)
    }
    for (index, (key, value)) in (properties.userProperties + [(Self.hopProperty, "")]).enumerated() {
      let shownKey = index < shownKeys.count ? shownKeys[index] : key
      if let problem = Self.propertyProblem(key, "user property name")
        ?? Self.propertyProblem(value, "user property '\(shownKey.prefix(64))'")
      {
        throw problem
      }
    }
    for (text, field) in [
      (properties.contentType, "contentType"), (properties.responseTopic, "responseTopic"),
    ] {
      if let text, let problem = Self.propertyProblem(text, field) { throw problem }
    }
    return properties
  }

  /// Why the daemon would refuse the headers `input` renders (for previews: `iotrules test`, the
  /// REPL's `.rule`), with every secret as `***`; nil when it would send them or when the reason
  /// lies in a secret's value, which a preview does not read.
  public func headersRefusal(_ input: ActionInput) -> String? {
    var machine = VirtualMachine()
    do {
      _ = try properties(for: input, secrets: PlaceholderSecrets(), using: &machine)
      return nil
    } catch {
      // Refused for the placeholder's own text (`***` is no base64), not the rule's: not said.
      return (try? properties(for: input, secrets: PlaceholderSecrets.plain, using: &machine)) == nil
        ? error.message : nil
    }
  }

  /// A topic that can match the rule's own FROM filter, or its own Basic Ingest topic
  /// (`$aws/rules/NAME/...`): each republished message comes back to the rule. MQTT 5 headers on a connection that speaks MQTT 3.1.1, which carries none.
  public func configurationWarnings(in context: ActionBuildContext) -> [ActionConfigurationWarning] {
    Self.warnings(
      topic: configuration.topic, maxHops: configuration.maxHops, hasHeaders: configuration.headers != nil,
      carriesUserProperties: publisher.carriesUserProperties, in: context)
  }

  /// ``configurationWarnings(in:)`` of the settings: also of a configuration in error, whose
  /// warnings are said beside its errors.
  static func warnings(
    topic: String, maxHops: Int, hasHeaders: Bool, carriesUserProperties: Bool, in context: ActionBuildContext
  ) -> [ActionConfigurationWarning] {
    var warnings: [ActionConfigurationWarning] = []
    // `$$` is AWS's escape for the leading `$`: what follows is the template, so `$${x}` leaves
    // `{x}` as literal text and the topic goes out as `${x}`, braces and all.
    if topic.startsExactly(with: "$${") {
      warnings.append(
        ActionConfigurationWarning(
          key: "topic",
          message:
            "rule '\(context.ruleName)': in the republish topic '\(topic)', '$$' is AWS's escape for a leading '$', "
            + "so what follows, '\(topic.dropFirst(2))', is literal text and no substitution: "
            + "write '$$${' for '$' followed by a value, or '${' for the value alone"))
    }
    if hasHeaders, !carriesUserProperties {
      warnings.append(
        ActionConfigurationWarning(
          key: "headers",
          message:
            "rule '\(context.ruleName)': the republish headers are MQTT 5 properties, which MQTT 3.1.1 (--mqtt-version) "
            + "does not carry: they are not sent"))
    }
    let comesBack: String
    if !context.topicFilter.isEmpty, Self.topicTemplate(topic, canMatch: context.topicFilter) {
      comesBack =
        "can match the rule's own FROM filter '\(context.topicFilter)': republished messages come back to this rule"
    } else if case .literal("$aws") = Self.topicShape(topic)[0],
      Self.topicTemplate(
        topic,
        canMatch: BasicIngest.prefix + context.ruleName + "/"
          + (context.topicFilter.isEmpty ? "#" : context.topicFilter))
    {
      // AWS's Basic Ingest topic of the rule itself: with --basic-ingest it comes straight back.
      comesBack =
        "is this rule's own Basic Ingest topic: with --basic-ingest, republished messages come back to this rule"
    } else {
      return warnings
    }
    return warnings + [
      ActionConfigurationWarning(
        key: "topic",
        message:
          "rule '\(context.ruleName)': the republish topic '\(topic)' \(comesBack) (the \(Self.hopProperty) user "
          + (maxHops == 0
            ? "property is off, maxHops 0: nothing stops the loop)"
            : "property, or under MQTT 3.1.1 the daemon's own record of what it republished, stops the loop after "
              + "\(maxHops) hops, sending the message to the error path)"))
    ]
  }

  /// Nothing to close: the publisher is shut down by its owner.
  public func shutdown() async {}
}

/// Stands in for the missing broker while a republish action's configuration is checked.
private struct NoBroker: Publisher {
  func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties)
    async throws(ActionError)
  {
    throw ActionError(.permanent, "no MQTT broker")
  }
}

extension ActionFactory {
  /// Builds a republish action from its rule-file node (`roleArn`, AWS's IAM role, is taken and
  /// ignored, so a rule copied from AWS loads as is).
  static func republish(
    _ node: RuleNode, _ context: ActionBuildContext, publisher: (any Publisher)?, secrets: (any SecretStore)?
  ) throws(ActionConfigurationError) -> any Action {
    try node.buildConnectorAction(
      kind: "republish",
      settings: [
        "topic": .string, "qos": .wholeNumber, "retain": .boolean, "maxHops": .wholeNumber,
        "roleArn": .anything,
        "headers": .object([
          "contentType": .string, "correlationData": .string, "messageExpiry": .string,
          "payloadFormatIndicator": .string, "responseTopic": .string,
          "userProperties": .array(.keyValue),
        ]),
      ], required: ["topic"]
    ) { (configuration: RepublishAction.Configuration) throws(ActionConfigurationError) in
      // Without a broker the rest is still checked, so one run names every problem.
      let built = Result { () throws(ActionConfigurationError) -> any Action in
        try node.mapSettingsError { () throws(ActionSettingsError) -> any Action in
          try RepublishAction(
            configuration: configuration, publisher: publisher ?? NoBroker(), version: context.version,
            variables: context.variableNames, secrets: secrets)
        }
      }
      guard publisher != nil else {
        var error = ActionConfigurationError(
          "the republish action needs an MQTT broker: use an mqtt:// source or --mqtt URL",
          at: node.position)
        if case .failure(let problem) = built { error.further = problem.all }
        throw error
      }
      return try built.get()
    }
  }

  /// Adds the connector actions' rows: `republish` (publishing through `publisher()`, the MQTT
  /// source's sibling connection or the `--mqtt` broker's), `kafka` and `http`.
  ///
  /// - Parameters:
  ///   - publisher: the MQTT publisher republish uses; nil when none is configured, which makes a
  ///     `republish` action a configuration error.
  ///   - secrets: where `get_secret()` in templates reads.
  public mutating func registerConnectorActions(
    publisher: (any Publisher)?, secrets: (any SecretStore)? = nil
  ) {
    register("republish") { node, context throws(ActionConfigurationError) in
      do throws(ActionConfigurationError) {
        return try Self.republish(node, context, publisher: publisher, secrets: secrets)
      } catch {
        // The warnings of the settings that read well, said beside the errors.
        var error = error
        if let topic = node["topic"]?.string {
          // A maxHops in error: the loop's warning, which names it, waits for it to be fixed.
          let maxHops =
            node["maxHops"].map { $0.int.flatMap { $0 >= 0 ? $0 : nil } }
            ?? RepublishAction.Configuration.defaultMaxHops
          error.warnings = RepublishAction.warnings(
            topic: topic, maxHops: maxHops ?? 0, hasHeaders: node["headers"] != nil,
            carriesUserProperties: (publisher ?? NoBroker()).carriesUserProperties, in: context
          ).filter { maxHops != nil || $0.key != "topic" }
        }
        throw error
      }
    }
    register("kafka") { node, context throws(ActionConfigurationError) in
      // `destinationArn` (AWS's VPC destination) is taken and ignored, as republish's `roleArn`.
      try node.buildConnectorAction(
        kind: "kafka",
        settings: [
          "bootstrapServers": .string, "topic": .string, "key": .string, "partition": .stringOrWholeNumber,
          "headers": .array(.keyValue), "clientProperties": .stringMap, "destinationArn": .anything,
          "maxHops": .wholeNumber,
        ], required: ["topic"]
      ) { (configuration: KafkaAction.Configuration) throws(ActionConfigurationError) in
        try node.mapSettingsError { () throws(ActionSettingsError) -> any Action in
          try KafkaAction(
            configuration: configuration, version: context.version, variables: context.variableNames,
            secrets: secrets)
        }
      }
    }
    register("http") { node, context throws(ActionConfigurationError) in
      try node.buildConnectorAction(
        kind: "http",
        // `auth` (AWS's SigV4) is read to be refused with the action's other problems.
        settings: [
          "url": .string, "confirmationUrl": .string, "headers": .array(.keyValue),
          "timeoutMs": .wholeNumber,
          "batch": .object([
            "maxSize": .wholeNumber, "maxDelayMs": .wholeNumber, "maxBytes": .wholeNumber,
            "acrossTopics": .boolean,
          ]),
          "enableBatching": .boolean,
          "batchConfig": .object([
            "maxBatchSize": .wholeNumber, "maxBatchOpenMs": .wholeNumber, "maxBatchSizeBytes": .wholeNumber,
            "batchAcrossTopics": .boolean,
          ]),
          "auth": .anything,
        ], required: ["url"]
      ) { (configuration: HTTPAction.Configuration) throws(ActionConfigurationError) in
        try node.mapSettingsError { () throws(ActionSettingsError) -> any Action in
          try HTTPAction(
            configuration: configuration, version: context.version, variables: context.variableNames,
            secrets: secrets)
        }
      }
    }
  }
}

extension RuleNode {
  /// A decoding path as a rule file's author writes it: `headers[0].value` (the coding keys of array
  /// elements read `Index 0`).
  fileprivate static func pathText(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
      if let index = key.intValue, key.stringValue.hasPrefix("Index ") {
        text += "[\(index)]"
      } else {
        text += (text.isEmpty ? "" : ".") + key.stringValue
      }
    }
    return text
  }

  /// Builds a connector action with `build` from the configuration decoded from this object. When
  /// keys are misspelt or values mistyped, those members are left out and the rest is still
  /// decoded and built, so that `check` names the action's other problems (a wildcard in a topic,
  /// a template error) in the same run, after those; the action is refused either way.
  /// Keys outside `settings` (besides `retry` and `errorAction`, which the loader reads) are
  /// refused; errors point into the rule file, in a rule file's words (a decoder would stop at the
  /// first and name Swift's types).
  fileprivate func buildConnectorAction<T: Decodable>(
    kind: String, settings keys: [String: SettingShape], required: Set<String>,
    _ build: (T) throws(ActionConfigurationError) -> any Action
  ) throws(ActionConfigurationError) -> any Action {
    guard members != nil else {
      throw ActionConfigurationError("the \(kind) action's configuration must be an object", at: position)
    }
    var problems = ConfigurationProblems()
    SettingShape.object(keys, required: required).check(
      self, path: kind, ignoring: ["retry", "errorAction"], into: &problems)
    if problems.list.isEmpty { return try build(try decodeCheckedConfiguration(kind: kind)) }
    // What passes its shape, with stand-ins for required values missing or of the wrong kind,
    // judged as the action would be: their problems too, besides those the stand-ins cause.
    var placeholders: Set<String> = []
    if let pruned = SettingShape.object(keys, required: required).pruned(
      self, path: kind, ignoring: ["retry", "errorAction"], placeholders: &placeholders),
      let configuration: T = try? pruned.decodeCheckedConfiguration(kind: kind)
    {
      // A field the shape check named already (`bootstrapServers: 5`, left out) is not said again
      // as the build sees it (`missing`).
      var judged = problems.list.compactMap { $0.message.split(separator: ":", maxSplits: 1).first }
        .map(String.init)
      // The servers given (mistyped) in clientProperties, AWS's place for them, are the servers:
      // not said again as missing.
      if judged.contains("\(kind).clientProperties.bootstrap.servers") {
        judged.append("\(kind).bootstrapServers")
      }
      do {
        _ = try build(configuration)
      } catch {
        for problem in error.all
        where !(placeholders.union(judged)).contains(where: { Self.message(problem.message, isAbout: $0) }) {
          problems.add(problem)
        }
      }
    }
    try problems.throwIfAny()
    preconditionFailure("problems were found")
  }

  /// True when `message` is about `field` (`http.url: ...`, `http.url.x`, `http.url[0]`).
  fileprivate static func message(_ message: String, isAbout field: String) -> Bool {
    guard message.startsExactly(with: field) else { return false }
    guard let next = message.utf8.dropFirst(field.utf8.count).first else { return true }
    return next == UInt8(ascii: ":") || next == UInt8(ascii: ".") || next == UInt8(ascii: "[")
      || next == UInt8(ascii: " ")
  }

  /// Decodes a connector action's `Configuration` from this object, whose shape was checked.
  fileprivate func decodeCheckedConfiguration<T: Decodable>(kind: String) throws(ActionConfigurationError)
    -> T
  {
    let data: Data
    do {
      data = try JSONSerialization.data(withJSONObject: foundationValue, options: [.fragmentsAllowed])
    } catch {
      throw ActionConfigurationError(
        "the \(kind) action's configuration cannot be read: \(error)", at: position)
    }
    do {
      return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, decodingContext) {
      let path = RuleNode.pathText(decodingContext.codingPath + [key])
      throw ActionConfigurationError(
        "\(kind).\(path): missing", at: node(at: decodingContext.codingPath).position)
    } catch let DecodingError.dataCorrupted(decodingContext) {
      // A number that is no whole number of 64 bits fails the whole document in JSONDecoder, with
      // no path: it is said at the number.
      if decodingContext.codingPath.isEmpty, let (path, number) = firstNumberBeyondInt(path: []) {
        throw ActionConfigurationError(
          "\(kind).\(path.joined(separator: ".")): must be a whole number of at most 9223372036854775807, not \(number.numberSpelling)",
          at: number.position)
      }
      let path = RuleNode.pathText(decodingContext.codingPath)
      throw ActionConfigurationError(
        "\(kind).\(path): \(decodingContext.debugDescription)",
        at: node(at: decodingContext.codingPath).position)
    } catch let DecodingError.typeMismatch(type, decodingContext) {
      let path = RuleNode.pathText(decodingContext.codingPath)
      throw ActionConfigurationError(
        "\(kind).\(path): must be \(SettingShape.words(for: type))",
        at: node(at: decodingContext.codingPath).position)
    } catch {
      throw ActionConfigurationError("the \(kind) action's configuration: \(error)", at: position)
    }
  }

  /// Runs `body`, turning its `ActionSettingsError`s into `ActionConfigurationError`s at the
  /// fields they name, and an error inside a template at its column.
  fileprivate func mapSettingsError(_ body: () throws(ActionSettingsError) -> any Action)
    throws(ActionConfigurationError) -> any Action
  {
    do {
      return try body()
    } catch {
      let mapped = error.all.map { problem in
        let field = node(atField: problem.field)
        guard let (diagnostic, shift) = problem.template else {
          return ActionConfigurationError(problem.description, at: field.position)
        }
        let message = diagnostic.message(placing: {
          field.position(ofStringOffset: shift + $0.offset).description
        })
        return ActionConfigurationError(
          "\(problem.field): in template: \(message)",
          at: field.position(ofStringOffset: shift + diagnostic.range.start.offset))
      }
      var first = mapped[0]
      first.further = Array(mapped.dropFirst())
      throw first
    }
  }

  /// The node of a settings field (`http.headers[2].value`: this action's `headers`, its item 2,
  /// that item's `value`; `kafka.clientProperties["sasl.mechanism"]`: a key holding dots), or the
  /// deepest node on the way that the file has.
  func node(atField field: String) -> RuleNode {
    var field = Substring(field)
    var key: String?
    if field.hasSuffix("\"]"), let open = field.range(of: "[\"", options: .backwards) {
      key = String(field[open.upperBound..<field.index(field.endIndex, offsetBy: -2)])
      field = field[..<open.lowerBound]
    }
    let node = node(atPath: field)
    guard let key else { return node }
    return node[key] ?? node
  }

  private func node(atPath field: Substring) -> RuleNode {
    var current = self
    for part in field.split(separator: ".").dropFirst() {
      var name = part
      var indices: [Int] = []
      while name.hasSuffix("]"), let open = name.lastIndex(of: "["),
        let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)])
      {
        indices.insert(index, at: 0)
        name = name[..<open]
      }
      guard let child = current[String(name)] else { return current }
      current = child
      for index in indices {
        guard case .array(let items) = current.kind, index < items.count else { return current }
        current = items[index]
      }
    }
    return current
  }

  /// A number node's text as written.
  private var numberSpelling: String {
    if case .number(let text) = kind { return text }
    return ""
  }

  /// The first number inside this node that is not a whole number `Int` holds, with its path.
  private func firstNumberBeyondInt(path: [String]) -> ([String], RuleNode)? {
    switch kind {
    case .number(let text): return Int(text) == nil ? (path, self) : nil
    case .array(let items):
      for (index, item) in items.enumerated() {
        if let found = item.firstNumberBeyondInt(path: path + [String(index)]) { return found }
      }
      return nil
    case .object(let members):
      for member in members {
        if let found = member.value.firstNumberBeyondInt(path: path + [member.key]) { return found }
      }
      return nil
    default: return nil
    }
  }

  private func node(at path: [any CodingKey]) -> RuleNode {
    var current = self
    for key in path {
      if let index = key.intValue, case .array(let items) = current.kind, index < items.count {
        current = items[index]
      } else if let child = current[key.stringValue] {
        current = child
      } else {
        break
      }
    }
    return current
  }

  private var foundationValue: Any {
    switch kind {
    case .null: return NSNull()
    case .bool(let value): return value
    case .number(let text): return Int(text).map { $0 as Any } ?? Double(text).map { $0 as Any } ?? text
    case .string(let text): return text
    case .array(let items): return items.map(\.foundationValue)
    case .object(let members):
      var object: [String: Any] = [:]
      for member in members { object[member.key] = member.value.foundationValue }
      return object
    }
  }
}
