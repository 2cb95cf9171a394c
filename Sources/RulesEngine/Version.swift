/// The version of iotrules, as `iotrules --version` prints it and as the daemon names itself to
/// the services it writes to (an http action's `User-Agent`, a Kafka client's `client.id`).
public enum IoTRulesVersion {
  /// `0.1.0`.
  public static let current = "0.1.0"
  /// `iotrules/0.1.0`: the `User-Agent` of the http action's requests.
  public static let userAgent = "iotrules/\(current)"
}
