import Foundation

/// What the rule sees of the message besides its payload: topic, client, principal, time, MQTT 5
/// properties and secrets. None of these is deterministic: each reads the `EvaluationContext`.
///
/// Policy: a piece of context the source did not provide is Undefined (except `clientid()`, which
/// AWS documents as "n/a" off MQTT); a wrong-typed argument is Undefined.
enum ContextFunctions {
  /// Level `index` of `topic`, counting from 1, or nil out of range. One pass over the bytes, no
  /// array of levels: templates run this for every archived or republished message.
  static func topicLevel(_ topic: String, _ index: Int) -> Substring? {
    guard index >= 1 else { return nil }
    // Byte offsets found in the contiguous UTF-8 (every native String has it), without stepping
    // String indices one by one.
    let found = topic.utf8.withContiguousStorageIfAvailable { levelRange($0, index) }
    guard let range = found ?? levelRange(Array(topic.utf8), index) else { return nil }
    let utf8 = topic.utf8
    let lower = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
    let upper = utf8.index(lower, offsetBy: range.count)
    return topic[lower..<upper]
  }

  /// The byte range of level `index` (from 1) of a topic's bytes, or nil.
  static func levelRange<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, _ index: Int) -> Range<Int>?
  where Bytes.Index == Int {
    var level = 1
    var start = 0
    for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "/") {
      if level == index { return start..<offset }
      level += 1
      start = offset + 1
    }
    return level == index ? start..<bytes.count : nil
  }

  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "topic", family: "context", arity: 0...1, isDeterministic: false,
      signature: "topic([segment]) -> String",
      help: "The message's topic, or its segment n counting from 1 (Undefined out of range)."
    ) { call in
      let topic = BasicIngest.ruleTopic(call.context.topic)
      guard call.count == 1 else { return .string(topic) }
      guard let index = Coercions.toImplicitInt(call[0]), let level = topicLevel(topic, index) else {
        return .undefined
      }
      return .string(String(level))
    },
    FunctionSpec(
      name: "clientid", family: "context", arity: 0...0, isDeterministic: false,
      signature: "clientid() -> String",
      help:
        "The publishing MQTT client's id (a Kafka record's `clientid` header, a replay line's clientId), or \"n/a\" without one."
    ) { call in .string(call.context.clientID ?? "n/a") },
    FunctionSpec(
      name: "principal", family: "context", arity: 0...0, isDeterministic: false,
      signature: "principal() -> String",
      help: "The publisher's authenticated principal (certificate thumbprint, user id); Undefined if unknown."
    ) { call in call.context.principal.map(Value.string) ?? .undefined },
    FunctionSpec(
      name: "accountid", family: "context", arity: 0...0, isDeterministic: false,
      signature: "accountid() -> String",
      help: "The account id that owns the rule, as configured; Undefined if none is."
    ) { call in call.context.accountID.map(Value.string) ?? .undefined },
    FunctionSpec(
      name: "traceid", family: "context", arity: 0...0, isDeterministic: false,
      signature: "traceid() -> String",
      help:
        "The trace id (UUID) of an MQTT message, the one its error records carry; Undefined for other sources."
    ) { call in call.context.traceID.map(Value.string) ?? .undefined },
    FunctionSpec(
      name: "sourceip", family: "context", arity: 0...0, isDeterministic: false,
      signature: "sourceip() -> String",
      help: "The publisher's IP address; Undefined if unknown."
    ) { call in call.context.sourceIP.map(Value.string) ?? .undefined },
    FunctionSpec(
      name: "timestamp", family: "context", arity: 0...0, isDeterministic: false,
      signature: "timestamp() -> Int",
      help: "The time the message was received, in milliseconds since the Unix epoch."
    ) { call in .int(call.context.timestampMs) },
    FunctionSpec(
      name: "newuuid", family: "context", arity: 0...0, isDeterministic: false,
      signature: "newuuid() -> String",
      help: "A new random UUID (version 4), 36 lower-case characters."
    ) { call in .string(call.context.randomness?.nextUUID() ?? RandomUUID.string()) },
    FunctionSpec(
      name: "sql_version", family: "context", arity: 0...0, isDeterministic: false,
      signature: "sql_version() -> String",
      help: "The rule's SQL version, e.g. \"2016-03-23\"."
    ) { call in .string(call.version.rawValue) },
    FunctionSpec(
      name: "get_mqtt_property", family: "context", arity: 1...1, isDeterministic: false,
      signature: "get_mqtt_property(name) -> Any",
      help:
        "An MQTT 5 publish property: content_type, format_indicator (UNSPECIFIED_BYTES when absent), response_topic, correlation_data (base64)."
    ) { call in
      guard case .string(let name) = call[0] else { return .undefined }
      switch name {
      // AWS's table: a message without the indicator is unspecified bytes, as MQTT 5 reads it.
      case "format_indicator": return call.context.mqttProperties[name] ?? .string("UNSPECIFIED_BYTES")
      case "content_type", "response_topic", "correlation_data":
        return call.context.mqttProperties[name] ?? .undefined
      // Any other name, the message expiry interval included, is Undefined, as in AWS.
      default: return .undefined
      }
    },
    FunctionSpec(
      name: "get_user_properties", family: "context", arity: 0...1, isDeterministic: false,
      signature: "get_user_properties([key]) -> Array",
      help: "MQTT 5 user properties: the values of `key` as an array, or every property as [{key: value}]."
    ) { call in
      let properties = call.context.userProperties
      if call.count == 0 {
        guard !properties.isEmpty else { return .undefined }
        return .array(properties.map { .object(OrderedObject([($0.key, .string($0.value))])) })
      }
      guard case .string(let key) = call[0] else { return .undefined }
      let values = properties.filter { $0.key.utf8.elementsEqual(key.utf8) }.map { Value.string($0.value) }
      return values.isEmpty ? .undefined : .array(values)
    },
    FunctionSpec(
      name: "get_secret", family: "context", arity: 1...4, isDeterministic: false,
      signature: "get_secret(id[, 'SecretString'|'SecretBinary'[, key], roleArn]) -> String",
      help:
        "A secret from the daemon's secret store (environment or secrets folder), read in http, kafka and republish action templates; Undefined in a rule's SQL and if absent.",
      prepare: { constants, _ throws(FunctionPrepareError) in
        // AWS's SET page: a role ARN and a parameter that switches a function's mode (the secret's
        // type) take no variable; nor a field, here.
        if constants.count >= 2, constants[1] == nil {
          throw FunctionPrepareError(
            argument: 1,
            message: "get_secret's secret type must be a literal string ('SecretString' or 'SecretBinary')")
        }
        if constants.count >= 3, case .some(.none) = constants.last {
          throw FunctionPrepareError(
            argument: constants.count - 1, message: "get_secret's role ARN must be a literal string")
        }
        return nil
      },
      implementation: getSecret
    ),
  ]

  /// `get_secret(id)`, `get_secret(id, type)`, `get_secret(id, type, roleArn)` and
  /// `get_secret(id, type, key, roleArn)`. The role is ignored. Nothing about the secret appears in
  /// any message: a missing store, secret or key is plain Undefined (the store is told of a missing
  /// key, and of what the call gave, which the daemon masks in what it shows).
  @Sendable static func getSecret(_ call: borrowing FunctionCall) -> Value {
    guard case .string(let id) = call[0], let store = call.context.secrets else { return .undefined }
    if let placeholder = store.placeholder { return .string(placeholder) }
    guard let secret = store.secret(named: id) else { return .undefined }
    let given = secretValue(call, id: id, secret: secret, store: store)
    switch given {
    case .string(let text): store.disclosed(text)
    case .undefined: break
    default:
      var bytes: [UInt8] = []
      JSONWriter.write(given, into: &bytes)
      store.disclosed(String(decoding: bytes, as: UTF8.self))
    }
    return given
  }

  /// What `get_secret` gives of `secret`, by its type and key arguments; the store is told why
  /// when that is nothing.
  private static func secretValue(
    _ call: borrowing FunctionCall, id: String, secret: String, store: any SecretStore
  ) -> Value {
    var type = "SecretString"
    if call.count >= 2 {
      guard case .string(let given) = call[1] else {
        store.notGiven(id, because: "its type argument is no string")
        return .undefined
      }
      type = given
    }
    var key: String?
    if call.count == 4 {
      guard case .string(let given) = call[2] else {
        store.notGiven(id, because: "its key argument is no string")
        return .undefined
      }
      key = given
    }
    switch type {
    case "SecretString":
      guard let key else { return .string(secret) }
      // With a key the secret must be a JSON object; its member is returned as it is.
      guard case .object(let object)? = try? JSONReader.parse(secret, options: .for(call.version)),
        let member = object[key]
      else {
        store.notGiven(
          id, because: "it has no key '\(key)' (the secret is no JSON object, or lacks that member)")
        return .undefined
      }
      return member
    case "SecretBinary":
      guard key == nil else {
        store.notGiven(id, because: "'SecretBinary' takes no key")
        return .undefined
      }
      return .string(Base64.encode(Array(secret.utf8)))
    default:
      store.notGiven(id, because: "unknown secret type '\(type)' (SecretString or SecretBinary)")
      return .undefined
    }
  }
}
