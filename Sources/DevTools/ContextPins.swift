import IoTSQL

/// What a message's context functions return, pinned by a JSON object: the `context` of an
/// `eval --batch` request and of a rule test case. Keys: `clientid`, `principal`, `accountid`,
/// `traceid`, `sourceip` (strings, or null for none), `timestamp_ms` (an integer),
/// `mqtt_properties` (`content_type`, `format_indicator`, `response_topic`, `correlation_data`)
/// and `user_properties` (an object of strings or, to repeat keys, an array of
/// `{"key", "value"}` objects or `[key, value]` pairs), `newuuid` (a string) and `rand` (a number in
/// [0, 1)), which every call of the function gives. A pin written as null pins nothing (a
/// serializer that writes every field).
public enum ContextPins {
  /// A pin that cannot be applied; `message` names the field as `context.FIELD`.
  public struct Problem: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The message.
    public var description: String { message }
  }

  /// Applies `value`, an object of pins, to `context`.
  public static func apply(_ value: Value, to context: inout EvaluationContext) throws(Problem) {
    guard case .object(let pins) = value else { throw Problem(message: "\"context\" must be an object") }
    for (key, pinned) in pins.members {
      // Null pins nothing (a string's null is none, the same); a misspelt key is refused still.
      if pinned == .null,
        ["timestamp_ms", "mqtt_properties", "user_properties", "newuuid", "rand"].contains(key)
      {
        continue
      }
      switch key {
      case "clientid": context.clientID = try string(pinned, key)
      case "principal": context.principal = try string(pinned, key)
      case "accountid": context.accountID = try string(pinned, key)
      case "traceid": context.traceID = try string(pinned, key)
      case "sourceip": context.sourceIP = try string(pinned, key)
      case "timestamp_ms":
        guard case .int(let ms) = pinned else {
          throw Problem(message: "\"context.timestamp_ms\" must be an integer")
        }
        context.timestampMs = ms
      case "mqtt_properties":
        guard case .object(let properties) = pinned else {
          throw Problem(message: "\"context.mqtt_properties\" must be an object")
        }
        for (name, property) in properties.members {
          // A misspelt property would read as absent in every answer.
          guard MQTTPublishProperties.names.contains(name) else {
            throw Problem(
              message: "unknown MQTT property \"\(name)\" in \"context.mqtt_properties\"; expected one of "
                + MQTTPublishProperties.names.joined(separator: ", "))
          }
          if property == .null { continue }
          // As a source gives them (the replay checks its lines alike).
          if let problem = MQTTPublishProperties.problem(of: property, named: name, quote: "\"") {
            throw Problem(message: "\"context.mqtt_properties.\(name)\" \(problem)")
          }
          context.mqttProperties[name] = property
        }
      case "user_properties":
        context.userProperties = try userProperties(pinned)
      case "newuuid":
        guard case .string(let uuid) = pinned else {
          throw Problem(message: "\"context.newuuid\" must be a string (what every newuuid() call gives)")
        }
        context.randomness = PinnedRandomness(uuid: uuid, rand: context.randomness?.rand)
      case "rand":
        let number: Double? =
          switch pinned {
          case .int(let whole): Double(whole)
          case .decimal(let decimal): Coercions.nearestDouble(decimal)
          default: nil
          }
        guard let number, number >= 0, number < 1 else {
          throw Problem(message: "\"context.rand\" must be a number from 0 up to (not including) 1")
        }
        context.randomness = PinnedRandomness(uuid: context.randomness?.uuid, rand: number)
      default:
        throw Problem(
          message:
            "unknown context field \"\(key)\"; expected clientid, principal, accountid, traceid, sourceip, timestamp_ms, mqtt_properties, user_properties, newuuid or rand"
        )
      }
    }
  }

  private static func string(_ value: Value, _ key: String) throws(Problem) -> String? {
    switch value {
    case .null: return nil
    case .string(let text): return text
    default: throw Problem(message: "\"context.\(key)\" must be a string")
    }
  }

  private static func userProperties(_ value: Value) throws(Problem) -> [(key: String, value: String)] {
    guard let pairs = MQTTPublishProperties.userProperties(value) else {
      throw Problem(
        message: "\"context.user_properties\" must be \(MQTTPublishProperties.userPropertiesShape)")
    }
    return pairs
  }
}
