import Foundation

/// How to reach and log in to an MQTT broker: everything `--source mqtt://…` and its flags carry.
///
/// The password is never stored in this value: only where to read it (an environment variable or a
/// file), and it is read when the connection opens. `description` never shows it.
public struct MQTTOptions: Sendable, CustomStringConvertible {
  /// The MQTT protocol version to speak.
  public enum ProtocolVersion: String, Sendable {
    /// MQTT 5 (the default): properties, user properties, shared subscriptions.
    case v5 = "5"
    /// MQTT 3.1.1: no properties.
    case v311 = "3.1.1"
  }

  /// Broker host name or address.
  public var host: String
  /// Broker port (1883 for `mqtt://`, 8883 for `mqtts://` unless the URL names one).
  public var port: Int
  /// True for `mqtts://`: TLS, verified against `caFile` (or the system store when it is nil).
  public var useTLS: Bool
  /// The client id. Stable by default so the broker keeps the persistent session across restarts.
  public var clientID: String
  /// The user name, or nil.
  public var username: String?
  /// The environment variable that holds the password, or nil.
  public var passwordEnvironmentVariable: String?
  /// A file whose content (trailing newline removed) is the password, or nil.
  public var passwordFile: String?
  /// PEM file of the CA certificates that sign the broker's certificate.
  public var caFile: String?
  /// PEM file of the client certificate, for mutual TLS (X.509 client authentication).
  public var certificateFile: String?
  /// PEM file of the client certificate's private key.
  public var keyFile: String?
  /// The protocol version; MQTT 5 by default.
  public var protocolVersion: ProtocolVersion
  /// True (the default) for a persistent session: clean-start off and, on MQTT 5, a session expiry of
  /// `sessionExpirySeconds`, so the broker keeps QoS 1 messages while the client is away.
  public var persistentSession: Bool
  /// True when the connection subscribes at QoS 0 (`--qos 0`): a broker may queue nothing for
  /// such a subscription while the client is away (mosquitto's default; MQTT asks it to keep QoS 1
  /// and 2 messages only), so a kept session may bring its subscriptions back, not what was
  /// published meanwhile.
  public var subscribesAtQoS0 = false
  /// MQTT 5 session expiry interval in seconds when the session is persistent (default one day).
  public var sessionExpirySeconds: UInt32
  /// Keepalive in seconds (default 30).
  public var keepaliveSeconds: Int
  /// First reconnect delay in seconds (default 1); doubled up to `reconnectDelayMaxSeconds`.
  public var reconnectDelaySeconds: Int
  /// Longest reconnect delay in seconds (default 10: a broker back from a restart is found within 10 s).
  public var reconnectDelayMaxSeconds: Int
  /// How long a QoS 1 publish waits for its PUBACK, and a subscription for its SUBACK, before
  /// failing (default 30 s).
  public var publishTimeoutSeconds: Double
  /// How long after the connection dropped publishes wait for the reconnect while a broker that
  /// accepted the client is away, before they fail (default 10 s; not once the daemon stops).
  public var awayWaitSeconds: Double

  /// Creates options; the host is the only required field.
  public init(
    host: String, port: Int? = nil, useTLS: Bool = false, clientID: String = "iotrules",
    username: String? = nil, passwordEnvironmentVariable: String? = nil, passwordFile: String? = nil,
    caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
    protocolVersion: ProtocolVersion = .v5, persistentSession: Bool = true,
    sessionExpirySeconds: UInt32 = 86_400, keepaliveSeconds: Int = 30, reconnectDelaySeconds: Int = 1,
    reconnectDelayMaxSeconds: Int = 10, publishTimeoutSeconds: Double = 30, awayWaitSeconds: Double = 10
  ) {
    self.host = host
    self.port = port ?? (useTLS ? 8883 : 1883)
    self.useTLS = useTLS
    self.clientID = clientID
    self.username = username
    self.passwordEnvironmentVariable = passwordEnvironmentVariable
    self.passwordFile = passwordFile
    self.caFile = caFile
    self.certificateFile = certificateFile
    self.keyFile = keyFile
    self.protocolVersion = protocolVersion
    self.persistentSession = persistentSession
    self.sessionExpirySeconds = sessionExpirySeconds
    self.keepaliveSeconds = keepaliveSeconds
    self.reconnectDelaySeconds = reconnectDelaySeconds
    self.reconnectDelayMaxSeconds = reconnectDelayMaxSeconds
    self.publishTimeoutSeconds = publishTimeoutSeconds
    self.awayWaitSeconds = awayWaitSeconds
  }

  /// Parses `mqtt://[user@]host[:port]` or `mqtts://…`. A password in the URL is refused: it would
  /// show in process lists and logs; use `passwordEnvironmentVariable` or `passwordFile`.
  public init(url: String, clientID: String = "iotrules") throws(ConnectorError) {
    guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
      throw ConnectorError("'\(url)' is not a URL; expected mqtt://host:port or mqtts://host:port")
    }
    // First: the messages below quote the URL, which must not carry a password to a log.
    if components.password != nil {
      throw ConnectorError(
        "a password in the MQTT URL is refused; give it through an environment variable or a file")
    }
    guard scheme == "mqtt" || scheme == "mqtts" else {
      throw ConnectorError("unsupported scheme '\(scheme)' in '\(url)'; expected mqtt:// or mqtts://")
    }
    guard let host = components.host, !host.isEmpty else {
      throw ConnectorError("no host in '\(url)'")
    }
    if let port = components.port, !(1...65535).contains(port) {
      throw ConnectorError("port \(port) in '\(url)' is not between 1 and 65535")
    }
    // Digits past 64 bits give no port at all: the default one was used, another broker's.
    if components.port == nil, let text = components.string, let range = components.rangeOfPort,
      !range.isEmpty
    {
      throw ConnectorError("port \(text[range]) in '\(url)' is not between 1 and 65535")
    }
    if let path = components.path.nilIfEmpty, path != "/" {
      throw ConnectorError("unexpected path '\(path)' in '\(url)'")
    }
    // Nothing here reads a query or a fragment (`?tls=1` would have been ignored without a word).
    if components.query != nil || components.fragment != nil {
      throw ConnectorError(
        "unexpected \(components.query != nil ? "query '?\(components.query!)'" : "fragment '#\(components.fragment!)'") in '\(url)': TLS is mqtts://, and the options are flags (see iotrules run --help)"
      )
    }
    self.init(
      host: host, port: components.port, useTLS: scheme == "mqtts", clientID: clientID,
      username: components.user)
  }

  /// The broker URL without credentials, for logs and error messages.
  public var url: String { "\(useTLS ? "mqtts" : "mqtt")://\(host):\(port)" }

  /// The options without the password (which is never held here anyway).
  public var description: String {
    var text = "\(url) client id '\(clientID)' MQTT \(protocolVersion.rawValue)"
    if let username { text += " user '\(username)'" }
    if passwordEnvironmentVariable != nil || passwordFile != nil { text += " password <redacted>" }
    return text
  }

  /// Reads the password from its environment variable or file; nil when none is configured.
  func readPassword() throws(ConnectorError) -> String? {
    if let name = passwordEnvironmentVariable {
      guard let value = ProcessInfo.processInfo.environment[name] else {
        throw ConnectorError("the password environment variable \(name) is not set")
      }
      return value
    }
    if let path = passwordFile {
      guard let data = FileManager.default.contents(atPath: path),
        var text = String(data: data, encoding: .utf8)
      else {
        throw ConnectorError("cannot read the password file \(path)")
      }
      while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
      return text
    }
    return nil
  }
}

extension String {
  var nilIfEmpty: String? { isEmpty ? nil : self }
}

/// A connector failure that is not an action result: a bad URL, a refused connection, a library error.
public struct ConnectorError: Error, Sendable, CustomStringConvertible {
  /// What failed, and where.
  public var message: String
  /// Set when the peer has not answered yet (a SUBACK late), rather than refused.
  public var awaitsAnswer = false

  /// Creates an error.
  public init(_ message: String, awaitsAnswer: Bool = false) {
    self.message = message
    self.awaitsAnswer = awaitsAnswer
  }

  /// The message.
  public var description: String { message }
}
