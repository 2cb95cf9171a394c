import CMosquitto
import Dispatch
import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One message as it arrived from the broker, copied out of libmosquitto's buffers.
struct MQTTIncoming: Sendable {
  var topic: String
  var payload: [UInt8]
  var qos: Int
  var retain: Bool
  var properties: [String: Value]
  var userProperties: [(key: String, value: String)]
}

/// One libmosquitto client: connection, reconnection, subscriptions, publish with PUBACK tracking.
///
/// All C pointers stay in this file. The network loop runs on a thread of its own (``runNetwork()``:
/// `poll` and libmosquitto's read, write and keepalive steps, where the library's own loop uses
/// `select`, which gives up for good on a socket numbered 1,024 or more) and libmosquitto calls back
/// there; callbacks cross into Swift through a lock-protected state and continuations, never by
/// touching actor state. The message handler runs on that thread and may block it. libmosquitto
/// (2.0) sends a QoS 1 PUBACK as soon as the PUBLISH arrives, before the handler runs: a blocked
/// handler holds back only the reading of the socket.
final class MQTTConnection: @unchecked Sendable {
  /// A request waiting for the broker's acknowledgement (a QoS 1 publish's PUBACK, a SUBACK):
  /// registered before the request can be answered, removed by the answer, the timeout or `close`,
  /// whichever comes first.
  private struct AckSlot<Failure: Error> {
    var waiter: CheckedContinuation<Result<Void, Failure>, Never>
    /// Tells this registration from a later one under the same (16-bit, reused) message id.
    var serial: UInt64
    /// Fails the request after `publishTimeoutSeconds`; cancelled when the acknowledgement comes.
    var timeout: Task<Void, Never>
    /// The subscription's filter and QoS (SUBACKs); the publish's topic (PUBACKs).
    var filter = ""
    var qos = 0
    /// What the request fails with when its time is up.
    var expired: Failure
    /// A publish's time is never restarted past this (set at the first drop it waited through):
    /// a broker that closes the connection at each resend of a message (MQTT 3.1.1's way of
    /// refusing one too large) restarted every wait at every reconnect, for ever, and the stop's too.
    var lastChance: ContinuousClock.Instant?
    /// The connection drops a publish waited through (its failure says so past one).
    var drops = 0
  }

  private typealias PublishSlot = AckSlot<ActionError>
  private typealias SubscribeSlot = AckSlot<ConnectorError>

  private struct State {
    var connected = false
    var connectedBefore = false
    /// The CONNACK's session-present flag of the last accepted connection.
    var sessionPresent = false
    /// When the connection dropped, while it is down: publishes wait for the reconnect until
    /// `awayWaitSeconds` after it, together, not each for its own full wait.
    var awaySince: ContinuousClock.Instant?
    /// When the broker last accepted the connection (while it is up).
    var acceptedAt: ContinuousClock.Instant?
    /// The connections in a row the broker closed within ``shortLivedSeconds`` of accepting them.
    var shortLived = 0
    /// What OpenSSL said of the last TLS failure (`certificate verify failed`), from libmosquitto's
    /// log; libmosquitto's own code only says "A TLS error occurred.".
    var tlsDetail: String?
    /// What libmosquitto could not set up from the TLS files, from its log (`Unable to load client
    /// key file "k.pem"`): a setting to change, not a handshake to try again.
    var tlsSetup: String?
    var connectWaiter: CheckedContinuation<Result<Void, ConnectorError>, Never>?
    /// The filters the broker granted, with their QoS. Filters are keyed by their bytes, as the
    /// broker tells them apart (`s/caf\u{E9}` and `s/cafe\u{301}` are two).
    var subscriptions: [ExactText: Int] = [:]
    /// The filters last asked for, with their QoS: what a reconnect subscribes (also those whose
    /// SUBSCRIBE failed while the broker was away).
    var wanted: [ExactText: Int] = [:]
    /// Wanted filters libmosquitto refused to send (invalid, not UTF-8 as MQTT wants it): never at
    /// the broker, so never recorded as what a later run may find subscribed.
    var refusedHere: Set<ExactText> = []
    /// Reconnect SUBSCRIBEs by message id: their SUBACK records the grant.
    var resubscribing: [Int32: (filter: String, qos: Int)] = [:]
    var subscribeWaiters: [Int32: SubscribeSlot] = [:]
    var publishes: [Int32: PublishSlot] = [:]
    var nextSerial: UInt64 = 0
    var closed = false
    /// Set while a task asks again, with backoff, for wanted filters the broker refused.
    var retryingRefused = false
    /// Set when the daemon stops: PUBACK waits are cut to `hurriedTimeoutSeconds`.
    var hurried = false
    /// False when the last CONNACK said the broker keeps no retained messages (MQTT 5).
    var retainAvailable = true
    /// The largest packet the broker takes, when a CONNACK said (MQTT 5): an oversized publish's
    /// error says it.
    var maximumPacketSize: UInt32?
  }

  /// The longest PUBACK wait once the daemon stops: a broker that stopped answering must not hold
  /// the stop up for `publishTimeoutSeconds` per attempt (a supervisor's grace period is often 30 s).
  static let hurriedTimeoutSeconds = 3.0

  /// The daemon stops: publishes waiting for their PUBACK, and later ones, wait at most
  /// `hurriedTimeoutSeconds` more (a healthy broker answers well within it; failing them at once
  /// would send their retries after messages already on their way).
  func hurry() {
    state.withLock { state in
      state.hurried = true
      // A deadline, not a wait: a reconnect restarts each wait (libmosquitto sends the message
      // again), and a broker closing the connection at each resend (3.1.1's refusal of a packet
      // too large) held the stop until the publish's last chance, 25 to 38 s.
      let deadline = ContinuousClock.now + .seconds(Self.hurriedTimeoutSeconds)
      for mid in Array(state.publishes.keys) {
        let lastChance = state.publishes[mid]?.lastChance ?? deadline
        state.publishes[mid]?.lastChance = min(lastChance, deadline)
      }
      restartPublishTimeouts(in: &state, after: Self.hurriedTimeoutSeconds) { $0.expired }
    }
  }

  /// Gives every publish waiting for its PUBACK a new timeout: `seconds` from now, failing it with
  /// what `failure` says of it (the caller holds the lock).
  private func restartPublishTimeouts(
    in state: inout State, after seconds: Double, failure: (PublishSlot) -> ActionError
  ) {
    let now = ContinuousClock.now
    for (mid, slot) in state.publishes {
      slot.timeout.cancel()
      let wait = slot.lastChance.map { max(0, min(seconds, Self.seconds($0 - now))) } ?? seconds
      // Dropped again after a reconnect: neither "no PUBACK within 30 s" nor "not connected again"
      // (it reconnected each second) says what happened.
      let failing =
        slot.drops < 2
        ? failure(slot)
        : ActionError(
          .transient,
          "no PUBACK for '\(slot.filter)' from \(options.url): the connection dropped \(slot.drops) times while it waited (a broker speaking MQTT 3.1.1 refuses a message, such as one past its maximum packet size, by closing the connection, and libmosquitto sends it again at each reconnect)"
        )
      state.publishes[mid]?.timeout = expire(
        mid: mid, serial: slot.serial, in: \.publishes, after: wait, with: failing, keepsLate: false)
    }
  }

  /// A timer that fails the request registered as `mid` (if it is still the one of `serial`) with
  /// `expired` after `seconds`.
  private func expire<Failure: Error>(
    mid: Int32, serial: UInt64, in table: WritableKeyPath<State, [Int32: AckSlot<Failure>]> & Sendable,
    after seconds: Double, with expired: Failure, keepsLate: Bool
  ) -> Task<Void, Never> {
    startTimeout(seconds: seconds) { [self] in
      let slot = self.state.withLock { state -> AckSlot<Failure>? in
        guard state[keyPath: table][mid]?.serial == serial else { return nil }
        let slot = state[keyPath: table].removeValue(forKey: mid)
        // A SUBSCRIBE the broker has not answered yet (it sends a kept session's backlog first):
        // its late SUBACK still records the grant, as a reconnect's does.
        if keepsLate, let slot, !state.closed { state.resubscribing[mid] = (slot.filter, slot.qos) }
        return slot
      }
      slot?.waiter.resume(returning: .failure(expired))
    }
  }

  let options: MQTTOptions
  private let logger: Logger
  private let handle: OpaquePointer
  private let state = Mutex(State())
  private let onMessage: (@Sendable (MQTTIncoming) -> Void)?
  /// Told after each reconnect (not the first connect), on libmosquitto's thread.
  private let reconnected = Mutex<(@Sendable () -> Void)?>(nil)
  /// Timeout tasks still alive (sleeping or finishing): a PUBACK or SUBACK ends its task at once.
  let liveTimeouts = Atomic<Int>(0)
  private var retainedSelf: Unmanaged<MQTTConnection>?
  /// An eventfd that wakes the network thread's `poll`: a packet was queued, or `close` began.
  private let wakeDescriptor: Int32
  /// Set by `close`: the network thread ends once its DISCONNECT is written, or after
  /// `stopGraceSeconds`.
  private let stopping = Atomic<Bool>(false)
  /// Set once the network thread is started; `close` then waits for `networkEnded`.
  private let networkStarted = Atomic<Bool>(false)
  private let networkEnded = DispatchSemaphore(value: 0)
  /// Who frees the client: `close` once the network thread has ended (`threadEnded`), or the thread
  /// itself when `close` stopped waiting for it (`abandoned`: it was inside a blocking connect).
  private let teardown = Atomic<Int>(MQTTConnection.running)
  private static let running = 0
  private static let threadEnded = 1
  private static let abandoned = 2
  /// Set by each accepted CONNECT: the next reconnect starts again from the first delay.
  private let connectedSinceBackoff = Atomic<Bool>(false)
  /// Whether the broker has accepted the connection (and it has not dropped since): read by the
  /// network thread without the state's lock.
  private let accepted = Atomic<Bool>(false)
  /// Why the broker last refused a CONNECT, until one is accepted: the disconnect that follows
  /// reports it rather than its own, vaguer reason ("a network protocol error").
  private let lastRefusal = Mutex<String?>(nil)
  /// How long a stop waits for the DISCONNECT to be written (a broker that reads nothing).
  static let stopGraceSeconds = 2.0

  private static let libraryInitialised: Bool = {
    mosquitto_lib_init()
    return true
  }()

  /// Where the connection's state is reported (`healthComponent` not connected: not ready).
  private let health: Health?
  private let healthComponent: String

  /// Creates the client (no network yet). `onMessage` runs on libmosquitto's thread. The
  /// connection reports itself to `health` as `component` until it is connected, and again while
  /// it is away.
  init(
    options: MQTTOptions, logger: Logger, onMessage: (@Sendable (MQTTIncoming) -> Void)?,
    health: Health? = nil, component: String = ""
  ) throws(ConnectorError) {
    _ = Self.libraryInitialised
    self.health = health
    self.healthComponent = component
    health?.report(component, "connecting to \(options.url)")
    self.options = options
    // The source's and republish's connections to one broker log the same events: each line says
    // whose it is (`connection="mqtt republish mqtt://..."`, `client=dev-7-pub`).
    var logger = logger
    if !component.isEmpty { logger[metadataKey: "connection"] = .string(component) }
    logger[metadataKey: "client"] = .string(options.clientID)
    self.logger = logger
    self.onMessage = onMessage
    let cleanSession = !options.persistentSession
    let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    guard wake >= 0 else {
      throw ConnectorError("cannot make an eventfd for \(options.url): \(String(cString: strerror(errno)))")
    }
    guard let handle = mosquitto_new(options.clientID, cleanSession, nil) else {
      Glibc.close(wake)
      throw ConnectorError("mosquitto_new failed for client id '\(options.clientID)'")
    }
    self.handle = handle
    self.wakeDescriptor = wake
    let unmanaged = Unmanaged.passRetained(self)
    retainedSelf = unmanaged
    mosquitto_user_data_set(handle, unmanaged.toOpaque())
    do {
      try configure()
    } catch {
      close()
      throw error
    }
  }

  private func check(_ code: Int32, _ what: String) throws(ConnectorError) {
    if code != MOSQ_ERR_SUCCESS.rawValue {
      throw ConnectorError("\(what) for \(options.url): \(Self.reason(code))")
    }
  }

  private func configure() throws(ConnectorError) {
    let version = options.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
    try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, version), "protocol version")
    // Nagle's algorithm holds a small packet until the previous one is acknowledged, and with
    // delayed ACKs that is tens of milliseconds: a PUBACK or a republished message must go now.
    try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
    if let username = options.username {
      let password = try options.readPassword()
      try check(mosquitto_username_pw_set(handle, username, password), "username")
    } else if try options.readPassword() != nil {
      throw ConnectorError("a password is configured for \(options.url) but no username")
    }
    if options.useTLS {
      for (name, path) in [
        ("CA", options.caFile), ("certificate", options.certificateFile), ("key", options.keyFile),
      ] {
        // With the reason (missing and not readable by the daemon's user call for different fixes)
        // and the connection it is for.
        if let path, access(path, R_OK) != 0 {
          let reason = String(cString: strerror(errno))
          throw ConnectorError("cannot read the TLS \(name) file \(path) for \(options.url): \(reason)")
        }
      }
      if (options.certificateFile == nil) != (options.keyFile == nil) {
        throw ConnectorError("a client certificate needs both a certificate file and a key file")
      }
      let caPath: String? = options.caFile == nil ? "/etc/ssl/certs" : nil
      // No passphrase is given for a key: OpenSSL's own callback would ask one on the terminal (a
      // daemon waited there for good) or write its prompt into the log.
      try check(
        mosquitto_tls_set(
          handle, options.caFile, caPath, options.certificateFile, options.keyFile, { _, _, _, _ in 0 }),
        "TLS setup")
    }
    // Calls from other threads only queue their packets (and `wake` the network thread), so that
    // every read, write and callback happens on the network thread.
    try check(mosquitto_threaded_set(handle, true), "threaded mode")
    mosquitto_connect_v5_callback_set(handle) { _, userdata, rc, flags, properties in
      // MQTT 5's CONNACK may say the broker keeps no retained messages: libmosquitto 2.0.11 then
      // clears a publish's retain flag on its own, silently, instead of refusing it, and keeps
      // doing so until a CONNACK says otherwise (one without the property changes nothing).
      var retainAvailable: UInt8 = 1
      var said = false
      var maximumPacketSize: UInt32 = 0
      var saidMaximum = false
      if let properties {
        said =
          mosquitto_property_read_byte(
            properties, Int32(MQTT_PROP_RETAIN_AVAILABLE.rawValue), &retainAvailable, false) != nil
        saidMaximum =
          mosquitto_property_read_int32(
            properties, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), &maximumPacketSize, false) != nil
      }
      MQTTConnection.from(userdata)?.handleConnect(
        rc: rc, flags: flags, retainAvailable: said ? retainAvailable != 0 : nil,
        maximumPacketSize: saidMaximum ? maximumPacketSize : nil)
    }
    mosquitto_disconnect_v5_callback_set(handle) { _, userdata, rc, _ in
      MQTTConnection.from(userdata)?.handleDisconnect(rc: rc)
    }
    mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
      MQTTConnection.from(userdata)?.handleSubscribe(mid: mid, count: count, granted: granted)
    }
    mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reason, _ in
      MQTTConnection.from(userdata)?.handlePublish(mid: mid, reason: reason)
    }
    mosquitto_log_callback_set(handle) { _, userdata, level, text in
      guard level == MOSQ_LOG_ERR, let text, let connection = MQTTConnection.from(userdata) else { return }
      connection.noteLibraryError(String(cString: text))
    }
    mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
      guard let connection = MQTTConnection.from(userdata), let message else { return }
      connection.handleMessage(message.pointee, properties: properties)
    }
  }

  /// Keeps OpenSSL's reason from libmosquitto's error lines (`OpenSSL Error[0]:
  /// error:0A000086:SSL routines::certificate verify failed` → `certificate verify failed`), and
  /// what it could not set up from the TLS files (`Error: Unable to load client key file "k.pem".`).
  private func noteLibraryError(_ line: String) {
    if line.hasPrefix("Error: Unable to ") || line.hasPrefix("Error: Client certificate/key")
      || line.hasPrefix("Error: Protocol ")
    {
      let text = line.dropFirst("Error: ".count)
      let setup = text.hasSuffix(".") ? text.dropLast() : text
      state.withLock { $0.tlsSetup = setup.prefix(1).lowercased() + setup.dropFirst() }
      return
    }
    guard line.hasPrefix("OpenSSL Error") else { return }
    let detail = line.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? line
    state.withLock { $0.tlsDetail = detail.isEmpty ? line : detail }
  }

  /// "the TLS handshake failed", with OpenSSL's reason when libmosquitto logged one (taken, so a
  /// later failure does not repeat it); or, when the TLS files could not be used, what was wrong
  /// with which (`setup`: no handshake took place, and none would).
  private func tlsFailure() -> (text: String, verification: Bool, setup: Bool) {
    let (detail, setup) = state.withLock { state -> (String?, String?) in
      defer {
        state.tlsDetail = nil
        state.tlsSetup = nil
      }
      return (state.tlsDetail, state.tlsSetup)
    }
    if let setup {
      // A key that asks for a passphrase reads as one that cannot be loaded: said.
      let encrypted =
        setup.contains("key file")
        && (options.keyFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?.contains(
          "ENCRYPTED")
          ?? false)
      return (
        "cannot use the TLS files: \(setup)\(detail.map { ": \($0)" } ?? "")"
          + (encrypted
            ? " (the key is encrypted: iotrules takes no passphrase; write it unencrypted, readable by the daemon alone: openssl pkey -in KEY -out KEY.plain)"
            : ""),
        false, true
      )
    }
    guard let detail else { return ("the TLS handshake failed", false, false) }
    let verification = detail.contains("certificate verify failed")
    // A plain listener closes on the ClientHello, or answers it in MQTT: mqtts:// to port 1883.
    let plain = detail.contains("unexpected eof") || detail.contains("wrong version number")
    return (
      "the TLS handshake failed: \(detail)"
        + (verification
          ? " (the broker's certificate is not signed by a CA trusted here, --ca-file's or else the system's, does not name the host in the URL, or is expired or not yet valid)"
          : plain ? " (is the port a plain MQTT listener? then the URL is mqtt://)" : ""),
      verification, false
    )
  }

  /// The broker's refusal of this client's certificate in the handshake, from its TLS alert
  /// (`tlsv13 alert certificate required`, `tlsv1 alert unknown ca`) in what OpenSSL said of the
  /// connection just lost (taken); nil for any other reason. TLS 1.3 says so at the first read: a
  /// refusal, as bad credentials are, not a "Protocol error" to retry for good.
  private func clientCertificateRefusal() -> String? {
    let aboutTheClient = [
      "certificate required", "unknown ca", "bad certificate", "certificate expired", "certificate revoked",
      "certificate unknown", "unsupported certificate", "access denied",
    ]
    let alert = state.withLock { state -> String? in
      guard let detail = state.tlsDetail, detail.contains("alert"),
        aboutTheClient.contains(where: detail.contains)
      else { return nil }
      state.tlsDetail = nil
      return detail
    }
    guard let alert else { return nil }
    let certificate = options.certificateFile.map { "--cert-file \($0)" } ?? "no --cert-file given"
    return "the broker refused the client certificate (\(certificate)): \(alert)"
  }

  /// The broker refused the connection (a CONNACK's reason, a TLS alert about the client's
  /// certificate): said, kept for the disconnect that follows, and a start waiting for the
  /// connection fails with it (exit 74). `retrying`: the health report says a retry follows.
  private func refuse(_ refusal: String, retrying: Bool = false) {
    lastRefusal.withLock { $0 = refusal }
    logger.error("broker \(options.url) refused the connection: \(refusal)")
    health?.report(
      healthComponent,
      "broker \(options.url) refused the connection: \(refusal)\(retrying ? "; retrying" : "")")
    let waiter = state.withLock { state in
      defer { state.connectWaiter = nil }
      return state.connectWaiter
    }
    waiter?.resume(
      returning: .failure(ConnectorError("broker \(options.url) refused the connection: \(refusal)")))
  }

  /// What a libmosquitto result code means. Its own `mosquitto_strerror` says "Unknown error." for
  /// several (a keepalive timeout among them, the usual reason a silent broker is left), and
  /// "Success" for a system error, whose reason is in `errno` (taken on the thread that failed).
  static func reason(_ code: Int32, errno systemError: Int32 = errno) -> String {
    switch code {
    case MOSQ_ERR_ERRNO.rawValue: return String(cString: strerror(systemError))
    case MOSQ_ERR_KEEPALIVE.rawValue:
      return "keepalive timeout: no answer from the broker to a ping within the keepalive period"
    case MOSQ_ERR_LOOKUP.rawValue, MOSQ_ERR_EAI.rawValue:
      return "the broker's host name could not be looked up"
    case MOSQ_ERR_MALFORMED_PACKET.rawValue: return "a malformed packet came from the broker"
    case MOSQ_ERR_TIMEOUT.rawValue: return "timed out"
    case MOSQ_ERR_RETAIN_NOT_SUPPORTED.rawValue: return "the broker does not support retained messages"
    case MOSQ_ERR_TOPIC_ALIAS_INVALID.rawValue: return "invalid topic alias"
    case MOSQ_ERR_ADMINISTRATIVE_ACTION.rawValue:
      return "the broker disconnected this client (administrative action)"
    case MOSQ_ERR_PLUGIN_DEFER.rawValue: return "deferred by a broker plugin"
    default:
      let text = String(cString: mosquitto_strerror(code))
      // Without its full stop: the reason is quoted inside sentences (`...: The connection was
      // lost.; reconnecting`).
      return text == "Unknown error."
        ? "unknown error (libmosquitto code \(code))"
        : String(text.utf8.last == UInt8(ascii: ".") ? text.dropLast() : text[...])
    }
  }

  /// Why the connection dropped: ``reason(_:errno:)`` of a libmosquitto code, or the reason code
  /// of the DISCONNECT an MQTT 5 broker sent (0x80 and above: libmosquitto hands it on as the
  /// code), named as MQTT 5 names it, with what a session taken over means.
  static func disconnectReason(_ code: Int32, clientID: String) -> String {
    guard code >= 0x80, code <= 0xFF else { return reason(code) }
    let hex = "0x" + String(code, radix: 16, uppercase: true)
    let name = String(cString: mosquitto_reason_string(code))
    guard code != MQTT_RC_SESSION_TAKEN_OVER.rawValue else {
      return
        "the broker sent DISCONNECT, \(name) (\(hex)): another client connected with client id '\(clientID)' (a second daemon, or a device, given the same id? \(sharedID))"
    }
    return "the broker sent DISCONNECT, \(name) (\(hex))"
  }

  /// What two clients of one client id do to each other.
  static let sharedID =
    "A broker closes the older connection when a client id connects again, so two clients sharing an id take the session from each other in turn, each getting part of the messages"

  /// A connection the broker closes this soon after accepting it counts as short-lived.
  static let shortLivedSeconds = 10
  /// After this many short-lived connections in a row the warning asks about a shared client id.
  static let shortLivedInARow = 3

  /// What the warning adds at the ``shortLivedInARow``-th short-lived connection in a row
  /// (brokers such as mosquitto 2.0 close the older connection of a client id taken over without
  /// a DISCONNECT saying why).
  private var shortLivedHint: String {
    "; the broker closed \(Self.shortLivedInARow) connections in a row within \(Self.shortLivedSeconds) s of accepting them: is another client connected with client id '\(options.clientID)'? \(Self.sharedID)"
  }

  private static func from(_ userdata: UnsafeMutableRawPointer?) -> MQTTConnection? {
    guard let userdata else { return nil }
    return Unmanaged<MQTTConnection>.fromOpaque(userdata).takeUnretainedValue()
  }

  // MARK: Connecting

  /// Connects and starts the network thread, retrying with backoff until cancelled (`onRetry` is
  /// told each failed attempt's reason) a refused connection, a host name that does not resolve
  /// and a failed TLS handshake; returns once the broker has accepted the CONNECT. A refusal by the
  /// broker (bad credentials, bad client id) throws, as do a TLS setup the library refuses at once
  /// and a broker certificate that fails verification (whether the connect call or the network
  /// loop saw it).
  func connect(onRetry: (@Sendable (String) -> Void)? = nil) async throws {
    var delay = Double(options.reconnectDelaySeconds)
    while true {
      try Task.checkCancellation()
      // OpenSSL's words are this attempt's only.
      state.withLock { $0.tlsDetail = nil }
      let (code, failure) = await Self.runBlocking { [self] in
        let code = connectOnce()
        return (code, errno)
      }
      if code == MOSQ_ERR_SUCCESS.rawValue { break }
      // MOSQ_ERR_ERRNO: the system's reason is in errno, taken on the connecting thread
      // (mosquitto_strerror would say "Success").
      var reason = Self.reason(code, errno: failure)
      // A name that does not resolve yet is tried again too: at a pod's start the broker's service
      // may not be in DNS yet, as the broker itself may not listen yet (refused).
      var retries =
        code == MOSQ_ERR_ERRNO.rawValue || code == MOSQ_ERR_NO_CONN.rawValue
        || code == MOSQ_ERR_CONN_REFUSED.rawValue || code == MOSQ_ERR_EAI.rawValue
        || code == MOSQ_ERR_LOOKUP.rawValue
      if code == MOSQ_ERR_TLS.rawValue {
        // A handshake that failed here, as one that fails later in the network loop: tried
        // again, unless the broker's certificate failed verification (a setting to change, said
        // at start whichever of the two places saw it).
        let (text, verification, setup) = tlsFailure()
        reason = text
        retries = !verification && !setup
      }
      guard retries else {
        throw ConnectorError("cannot connect to \(options.url): \(reason)")
      }
      logger.warning("cannot connect to \(options.url): \(reason); retrying in \(delay) s")
      health?.report(healthComponent, "cannot connect to \(options.url): \(reason); retrying")
      onRetry?("cannot connect: \(reason)")
      try await Task.sleep(for: .seconds(delay))
      delay = min(delay * 2, Double(options.reconnectDelayMaxSeconds))
    }
    startNetwork()
    // The CONNACK may never come (a port that accepts and says nothing, a broker half up):
    // libmosquitto reconnects meanwhile and each attempt is logged; a stop ends the wait.
    let stopped = ConnectorError("stopped before \(options.url) accepted the connection")
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        // Under the lock: a cancellation either finds this waiter or is seen here.
        let now = state.withLock { state -> Result<Void, ConnectorError>? in
          if state.connected { return .success(()) }
          if Task.isCancelled { return .failure(stopped) }
          state.connectWaiter = continuation
          return nil
        }
        if let now { continuation.resume(returning: now) }
      }
    } onCancel: {
      let waiter = state.withLock { state in
        defer { state.connectWaiter = nil }
        return state.connectWaiter
      }
      waiter?.resume(returning: .failure(stopped))
    }
    // A stop while waiting is a stop, not a failure to connect (it exited 74 with an error).
    if case .failure = result, Task.isCancelled { throw CancellationError() }
    try result.get()
    logger.info("connected to \(options)\(sessionNote(present: state.withLock { $0.sessionPresent }))")
  }

  /// What the CONNACK said of a persistent session, for the log line of a start: after a stop or a
  /// crash, whether what the broker queued meanwhile comes now or was not kept.
  func sessionNote(present: Bool) -> String {
    guard options.persistentSession else { return "" }
    if present, options.subscribesAtQoS0 {
      return
        "; the broker kept this client id's session, its subscriptions: at QoS 0 (--qos 0) it may have queued nothing (mosquitto queues QoS 0 messages only with queue_qos0_messages), so what was published while the daemon was away may not arrive"
    }
    return present
      ? "; the broker kept this client id's session: what it queued while the daemon was away arrives now"
      : "; the broker holds no session for this client id (a first start, or a session expired or not kept across a broker restart): nothing published while the daemon was away will arrive"
  }

  private func connectOnce() -> Int32 {
    var properties: OpaquePointer? = nil
    defer { mosquitto_property_free_all(&properties) }
    if options.protocolVersion == .v5 && options.persistentSession {
      mosquitto_property_add_int32(
        &properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), options.sessionExpirySeconds)
    }
    return mosquitto_connect_bind_v5(
      handle, options.host, Int32(options.port), Int32(options.keepaliveSeconds), nil, properties)
  }

  private static func runBlocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
      Thread.detachNewThread { continuation.resume(returning: body()) }
    }
  }

  private func handleConnect(
    rc: Int32, flags: Int32, retainAvailable: Bool? = nil, maximumPacketSize: UInt32? = nil
  ) {
    if rc == 0 {
      connectedSinceBackoff.store(true, ordering: .relaxed)
      accepted.store(true, ordering: .relaxed)
      lastRefusal.withLock { $0 = nil }
    }
    if rc != 0 {
      // MQTT 3.1.1's CONNACK codes are not MQTT 5's reason codes (5 is "not authorised" there,
      // "Unknown reason" as a reason code). The client id is said: a broker may tie credentials
      // to one.
      let reason =
        options.protocolVersion == .v311 || rc == 1
        ? String(cString: mosquitto_connack_string(rc)) : String(cString: mosquitto_reason_string(rc))
      // A broker of MQTT 3.1.1 only answers MQTT 5's CONNECT so (0x84, or its own code 1, which is
      // its CONNACK's, not a reason code: "Granted QoS 1").
      let hint =
        options.protocolVersion != .v311 && (rc == 0x84 || rc == 1)
        ? "; a broker that speaks MQTT 3.1.1 only: run with --mqtt-version 3.1.1" : ""
      refuse("\(reason) (client id '\(options.clientID)')\(hint)")
      return
    }
    let (waiter, filters, reconnect) = state.withLock { state in
      defer {
        state.connectWaiter = nil
        state.connected = true
        state.connectedBefore = true
        state.awaySince = nil
        state.acceptedAt = ContinuousClock.now
        state.sessionPresent = flags & 1 == 1
        if let retainAvailable { state.retainAvailable = retainAvailable }
        // As libmosquitto keeps it: a CONNACK without the property changes nothing.
        if let maximumPacketSize { state.maximumPacketSize = maximumPacketSize }
      }
      if state.awaySince != nil {
        // Back in time: the publishes libmosquitto sends again wait for their PUBACK anew.
        let seconds =
          state.hurried
          ? min(options.publishTimeoutSeconds, Self.hurriedTimeoutSeconds) : options.publishTimeoutSeconds
        restartPublishTimeouts(in: &state, after: seconds) { $0.expired }
      }
      return (
        state.connectWaiter, state.wanted.merging(state.subscriptions) { wanted, _ in wanted },
        state.connectedBefore
      )
    }
    // Subscribe after every (re)connect to what the rules want now: a broker that lost the session
    // has lost the subscriptions, and a filter a reload added while the broker was away was never
    // granted. Each SUBACK records its grant.
    resubscribe(filters)
    if reconnect {
      // What it asked for again, so that the log shows the subscriptions restored (a broker that
      // lost the session lost them).
      let asked = filters.keys.map(\.text).sorted()
      let subscribing =
        asked.isEmpty
        ? "" : "; subscribing again to \(asked.count <= 10 ? "\(asked)" : "\(asked.count) filters")"
      logger.info(
        "reconnected to \(options.url) as client id '\(options.clientID)'\(sessionNote(present: flags & 1 == 1))\(subscribing)"
      )
      reconnected.withLock { $0 }?()
    }
    health?.clear(healthComponent)
    waiter?.resume(returning: .success(()))
  }

  /// Sends a SUBSCRIBE for each of `filters` whose SUBACK records the grant (`resubscribing`),
  /// unless the connection closed or dropped meanwhile. One that cannot be sent is asked for
  /// again later (`retryRefused`).
  private func resubscribe(_ filters: [ExactText: Int]) {
    var failed = false
    for (key, qos) in filters.sorted(by: { $0.key.text < $1.key.text }) {
      let filter = key.text
      // Under the lock: `close` marks the connection closed under it before destroying the client.
      let code = state.withLock { state -> Int32? in
        guard !state.closed, state.connected else { return nil }
        var mid: Int32 = 0
        let code = mosquitto_subscribe_v5(handle, &mid, filter, Int32(qos), Self.subscribeOptions, nil)
        if code == MOSQ_ERR_SUCCESS.rawValue { state.resubscribing[mid] = (filter, qos) }
        wake()
        return code
      }
      guard let code else { return }
      if code != MOSQ_ERR_SUCCESS.rawValue {
        logger.error("resubscribing to '\(filter)' failed: \(Self.reason(code))")
        failed = true
      }
    }
    if failed {
      refreshSubscriptionHealth()
      retryRefused()
    }
  }

  /// Asks again, with the reconnect backoff, for the wanted filters the broker has not granted (a
  /// refusal can be passing: an ACL being changed, a quota), until each is granted or the
  /// connection closes. A reconnect asks anyway; only one such task runs at a time.
  private func retryRefused() {
    let start = state.withLock { state -> Bool in
      guard !state.closed, !state.retryingRefused else { return false }
      state.retryingRefused = true
      return true
    }
    guard start else { return }
    Task { [self] in
      var delay = Double(max(options.reconnectDelaySeconds, 1))
      while true {
        try? await Task.sleep(for: .seconds(delay))
        delay = min(delay * 2, Double(max(options.reconnectDelayMaxSeconds, 1)))
        let missing = state.withLock { state -> [ExactText: Int]? in
          let pending = Set(
            (state.resubscribing.values.map(\.filter) + state.subscribeWaiters.values.map(\.filter)).map {
              ExactText($0)
            })
          let missing = state.wanted.filter {
            state.subscriptions[$0.key] == nil && !pending.contains($0.key)
          }
          if state.closed || (missing.isEmpty && pending.isEmpty) {
            state.retryingRefused = false
            return nil
          }
          return missing
        }
        guard let missing else { return }
        if !missing.isEmpty {
          logger.info("asking \(options.url) again for \(missing.keys.map(\.text).sorted())")
          resubscribe(missing)
        }
      }
    }
  }

  private func handleDisconnect(rc: Int32) {
    // A SUBACK never comes for a SUBSCRIBE the broker may not have read: fail those waiting (the
    // caller reports it; what the broker did grant is subscribed again on reconnect). QoS 1
    // publishes stay: libmosquitto sends them again on reconnect. Each waits for the reconnect
    // until `awayWaitSeconds` after the drop, as a new publish does (the outage's allowance), then
    // fails: with their PUBACK timeout alone, a broker restart held every result behind them for
    // 30 s and then sent them all down their error path.
    let (subscribes, closed, shortLived) = state.withLock { state -> ([SubscribeSlot], Bool, Int) in
      state.connected = false
      if let acceptedAt = state.acceptedAt, rc != 0 {
        let lived = ContinuousClock.now - acceptedAt
        state.shortLived = lived < .seconds(Self.shortLivedSeconds) ? state.shortLived + 1 : 0
      }
      state.acceptedAt = nil
      let since = state.awaySince ?? ContinuousClock.now
      state.awaySince = since
      if !state.closed {
        // The most any publish waiting now may still wait, reconnects and all: the outage's
        // allowance, then one PUBACK wait.
        let lastChance =
          ContinuousClock.now + .seconds(options.awayWaitSeconds + options.publishTimeoutSeconds)
        for mid in Array(state.publishes.keys) {
          if state.publishes[mid]?.lastChance == nil { state.publishes[mid]?.lastChance = lastChance }
          state.publishes[mid]?.drops += 1
        }
        let left = options.awayWaitSeconds - Self.seconds(ContinuousClock.now - since)
        let seconds = max(0, state.hurried ? min(left, Self.hurriedTimeoutSeconds) : left)
        restartPublishTimeouts(in: &state, after: seconds) { slot in
          ActionError(
            .transient,
            "disconnected from \(options.url) before the PUBACK for '\(slot.filter)', and not connected again within \(options.awayWaitSeconds) s (libmosquitto sends it again once connected: it may still arrive)"
          )
        }
      }
      // No SUBACK comes any more for a SUBSCRIBE of the connection gone (a late one, a
      // reconnect's): the reconnect asks for every wanted filter again. One left behind kept the
      // refused-filter retry waiting, and the stale filters subscribed, for good.
      state.resubscribing = [:]
      defer { state.subscribeWaiters = [:] }
      return (Array(state.subscribeWaiters.values), state.closed, state.shortLived)
    }
    for slot in subscribes {
      slot.timeout.cancel()
      slot.waiter.resume(
        returning: .failure(
          ConnectorError(
            "subscribing to '\(slot.filter)' failed: disconnected from \(options.url) before the SUBACK")))
    }
    let hadConnack = accepted.exchange(false, ordering: .relaxed)
    // (Then said as a refusal is below.)
    if rc != 0, !hadConnack, let refusal = clientCertificateRefusal() { refuse(refusal) }
    if rc != 0 {
      if let refusal = lastRefusal.withLock({ $0 }) {
        // Logged and reported when the CONNACK came; the disconnect's own reason says less.
        if !closed {
          health?.report(
            healthComponent, "broker \(options.url) refused the connection: \(refusal); retrying")
        }
        return
      }
      // A server that took the connection and never answered the CONNECT (not an MQTT broker, or
      // one speaking TLS to a plain mqtt:// URL) ends at the keepalive: no ping was ever answered
      // because none was sent.
      let reason =
        !hadConnack && rc == MOSQ_ERR_KEEPALIVE.rawValue
        ? "no CONNACK within \(options.keepaliveSeconds) s: the server took the connection and never answered the CONNECT (is it an MQTT broker, speaking \(options.url.lowercased().hasPrefix("mqtts:") ? "TLS" : "plain TCP") as the URL says?)"
        : Self.disconnectReason(rc, clientID: options.clientID)
          + (shortLived == Self.shortLivedInARow && rc < 0x80 ? shortLivedHint : "")
      logger.warning("disconnected from \(options.url): \(reason); reconnecting")
      if !closed {
        health?.report(healthComponent, "disconnected from \(options.url) (\(reason)); reconnecting")
      }
    }
  }

  // MARK: Subscriptions

  /// Makes the subscriptions `filters` (de-duplicated) at `qos`, waiting for each SUBACK.
  ///
  /// New filters are subscribed first, every one of them even when one fails; a filter counts as
  /// subscribed (and is subscribed again on reconnect) only once its SUBACK grants it. Filters no
  /// longer wanted are unsubscribed only when every new one was granted: until then the old ones
  /// keep bringing what the failed ones would have (a message may come twice meanwhile, none is
  /// lost). Throws one error naming every filter that failed.
  func setSubscriptions(_ filters: [String], qos: Int) async throws {
    defer { refreshSubscriptionHealth() }
    let wanted = Set(filters.map { ExactText($0) })
    let current = state.withLock { state -> Set<ExactText> in
      state.wanted = Dictionary(uniqueKeysWithValues: wanted.map { ($0, qos) })
      return Set(state.subscriptions.keys)
    }
    var failures: [String] = []
    var unanswered: [String] = []
    for filter in wanted.subtracting(current).map(\.text).sorted() {
      do {
        try await subscribe(filter, qos: qos)
      } catch let error as ConnectorError where error.awaitsAnswer {
        unanswered.append(filter)
      } catch {
        failures.append("\(error)")
      }
    }
    guard failures.isEmpty else {
      throw ConnectorError(failures.joined(separator: "; "))
    }
    if !unanswered.isEmpty {
      // Not a failure: a broker sends a kept session's backlog before the SUBACK, and a network
      // thread delivering it to a full engine reads the SUBACK late (a start with 20,000 messages
      // waiting exited 74, again at each restart). Asked still; granted when the SUBACK comes;
      // the filters no rule wants are unsubscribed then.
      logger.warning(
        "no SUBACK from \(options.url) within \(options.publishTimeoutSeconds) s for \(unanswered) (a broker sends a kept session's messages first): still asked, granted when it comes; /readyz says they are not granted until then"
      )
      return
    }
    for filter in current.subtracting(wanted).map(\.text).sorted() {
      var mid: Int32 = 0
      let code = mosquitto_unsubscribe_v5(handle, &mid, filter, nil)
      wake()
      if code == MOSQ_ERR_SUCCESS.rawValue {
        state.withLock { _ = $0.subscriptions.removeValue(forKey: ExactText(filter)) }
      } else if Self.isRefusedHere(code) {
        // A filter libmosquitto cannot send was never subscribed at the broker (an earlier run's
        // record of one it refused): forgotten, not a failure (it stopped every later start).
        logger.warning(
          "forgetting '\(filter)' of an earlier run's subscriptions: \(Self.reason(code)); the broker cannot hold it"
        )
        state.withLock { _ = $0.subscriptions.removeValue(forKey: ExactText(filter)) }
      } else {
        failures.append(
          "unsubscribing from '\(filter)' failed: \(Self.reason(code))")
      }
    }
    if !failures.isEmpty { throw ConnectorError(failures.joined(separator: "; ")) }
  }

  /// Whether the broker kept this client id's session at the last accepted CONNECT.
  var sessionWasPresent: Bool { state.withLock { $0.sessionPresent } }

  /// Takes `filters` as subscribed (an earlier run's, kept in the broker's session): the next
  /// `setSubscriptions` unsubscribes those it does not want.
  func adoptSubscriptions(_ filters: [String], qos: Int) {
    state.withLock { state in
      for filter in filters where state.subscriptions[ExactText(filter)] == nil {
        state.subscriptions[ExactText(filter)] = qos
      }
    }
  }

  /// The filters granted, and those asked that the broker may still grant (a SUBACK late): what
  /// a later run under this client id may find subscribed.
  var subscribedOrAsked: [String] {
    state.withLock { state in
      Set(state.subscriptions.keys).union(state.wanted.keys.filter { !state.refusedHere.contains($0) })
        .map(\.text).sorted()
    }
  }

  /// True for libmosquitto's refusals of a filter before anything is sent: the broker never saw it.
  static func isRefusedHere(_ code: Int32) -> Bool {
    code == MOSQ_ERR_INVAL.rawValue || code == MOSQ_ERR_MALFORMED_UTF8.rawValue
  }

  /// The filters the broker has granted.
  var grantedSubscriptions: [String: Int] {
    state.withLock {
      Dictionary($0.subscriptions.map { ($0.key.text, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
  }

  /// Whether the broker has accepted the connection and it has not dropped since.
  var isConnected: Bool { state.withLock { $0.connected } }

  /// Where filters wanted but not granted are reported (a reload added one the broker refuses, a
  /// resubscription failed): not ready until every wanted filter is granted.
  private var subscriptionsComponent: String { healthComponent + " subscriptions" }

  /// Reports the wanted filters the broker has not granted, or clears the report.
  private func refreshSubscriptionHealth() {
    guard let health else { return }
    let missing = state.withLock { state -> [String]? in
      state.closed ? nil : state.wanted.keys.filter { state.subscriptions[$0] == nil }.map(\.text).sorted()
    }
    guard let missing else { return }
    if missing.isEmpty {
      health.clear(subscriptionsComponent)
    } else {
      health.report(subscriptionsComponent, "not granted by \(options.url): \(missing)")
    }
  }

  /// MQTT 5 subscription options: Retain Handling 2, no retained messages on subscribing. A rule
  /// runs once per publish, as on AWS IoT: a retained message is not published again because the
  /// daemon (re)subscribed. (MQTT 3.1.1 ignores the option; the source skips those deliveries by
  /// their retain flag.)
  static let subscribeOptions = Int32(MQTT_SUB_OPT_SEND_RETAIN_NEVER.rawValue)

  private func subscribe(_ filter: String, qos: Int) async throws {
    let timeout = options.publishTimeoutSeconds
    let result: Result<Void, ConnectorError> = await withCheckedContinuation { continuation in
      // The lock is held across the call so the SUBACK callback finds the waiter.
      let code = state.withLock { state -> Int32 in
        var mid: Int32 = 0
        let code = mosquitto_subscribe_v5(handle, &mid, filter, Int32(qos), Self.subscribeOptions, nil)
        guard code == MOSQ_ERR_SUCCESS.rawValue else { return code }
        wake()
        register(
          continuation, mid: mid, in: \.subscribeWaiters, state: &state, filter: filter, qos: qos,
          expired: ConnectorError(
            "subscribing to '\(filter)' failed: no SUBACK from \(options.url) within \(timeout) s",
            awaitsAnswer: true), keepsLate: true,
          reused: { ConnectorError("subscribing to '\($0.filter)' failed: its message id was reused") })
        return code
      }
      if code != MOSQ_ERR_SUCCESS.rawValue {
        if Self.isRefusedHere(code) { state.withLock { _ = $0.refusedHere.insert(ExactText(filter)) } }
        continuation.resume(
          returning: .failure(
            ConnectorError("subscribing to '\(filter)' failed: \(Self.reason(code))"))
        )
      }
    }
    try result.get()
  }

  /// Calls `action` after each reconnect of this connection (libmosquitto's thread).
  func onReconnect(_ action: @escaping @Sendable () -> Void) {
    reconnected.withLock { $0 = action }
  }

  /// The broker is back (another connection to it was accepted): while this one is away, it tries
  /// now rather than at the end of its backoff, and publishes wait for that attempt as after a
  /// fresh drop. The source's connection noticed a restart late (its network thread waits while
  /// the engine is full) and their backoffs drifted apart: republish's reconnected 7 s after the
  /// source's, which meanwhile read the session's backlog, and 17,631 results went down their error
  /// path with the broker up.
  func retryConnectingNow() {
    let away = state.withLock { state -> Bool in
      guard !state.connected, state.connectedBefore, !state.closed else { return false }
      state.awaySince = ContinuousClock.now
      return true
    }
    guard away else { return }
    connectedSinceBackoff.store(true, ordering: .relaxed)
    wake()
  }

  /// While a broker that accepted the client is away, waits for the reconnect, until
  /// `awayWaitSeconds` after the drop and not once the daemon stops or the connection is closed. A
  /// publish failed at once instead: a broker restart sent every result in flight down its error
  /// path, the default retry (0.1 s, then 0.2 s) ending before the first reconnect, a second after
  /// the drop. The wait is the outage's, not each publish's: N results queued behind one another
  /// waited 10 s each, one after the other, so a long outage held them for N × 10 s a retry
  /// before any reached its error path.
  private func waitWhileAway() async {
    let clock = ContinuousClock()
    let since = state.withLock { $0.awaySince } ?? clock.now
    let deadline = since + .milliseconds(Int(options.awayWaitSeconds * 1000))
    while clock.now < deadline, !Task.isCancelled {
      let waits = state.withLock { !$0.connected && $0.connectedBefore && !$0.hurried && !$0.closed }
      guard waits else { return }
      try? await Task.sleep(for: .milliseconds(25))
    }
  }

  /// Registers `waiter` under `mid` in the table at `table` (the caller holds the lock), with a
  /// timeout that fails it with `expired` unless its acknowledgement comes first. A request still
  /// waiting under the same, reused id fails with `reused`.
  private func register<Failure: Error>(
    _ waiter: CheckedContinuation<Result<Void, Failure>, Never>, mid: Int32,
    in table: WritableKeyPath<State, [Int32: AckSlot<Failure>]> & Sendable, state: inout State,
    filter: String = "",
    qos: Int = 0, expired: Failure, keepsLate: Bool = false, reused: (AckSlot<Failure>) -> Failure
  ) {
    state.nextSerial += 1
    let serial = state.nextSerial
    let seconds =
      state.hurried
      ? min(options.publishTimeoutSeconds, Self.hurriedTimeoutSeconds) : options.publishTimeoutSeconds
    let timer = expire(
      mid: mid, serial: serial, in: table, after: seconds, with: expired, keepsLate: keepsLate)
    var slot = AckSlot(
      waiter: waiter, serial: serial, timeout: timer, filter: filter, qos: qos, expired: expired)
    // Once the daemon stops, a reconnect does not restart a wait past its allowance (see `hurry`).
    if state.hurried { slot.lastChance = ContinuousClock.now + .seconds(seconds) }
    if let stale = state[keyPath: table].updateValue(slot, forKey: mid) {
      stale.timeout.cancel()
      stale.waiter.resume(returning: .failure(reused(stale)))
    }
  }

  /// Runs `expire` after `seconds` unless the task is cancelled first (the acknowledgement came).
  private func startTimeout(seconds: Double, _ expire: @escaping @Sendable () -> Void) -> Task<Void, Never> {
    liveTimeouts.add(1, ordering: .relaxed)
    return Task { [self] in
      defer { liveTimeouts.subtract(1, ordering: .relaxed) }
      do {
        try await Task.sleep(for: .seconds(seconds))
      } catch {
        return
      }
      expire()
    }
  }

  private func handleSubscribe(mid: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
    let refused = granted.flatMap { count > 0 && $0[0] >= 0x80 ? $0[0] : nil }
    let grantedQoS = granted.flatMap { count > 0 && $0[0] < 0x80 ? Int($0[0]) : nil }
    var asked: (filter: String, qos: Int)?
    var stale: [String] = []
    let slot = state.withLock { state -> SubscribeSlot? in
      if let again = state.resubscribing.removeValue(forKey: mid) {
        if state.closed { return nil }
        asked = again
        // A refused resubscription is no grant (`retryRefused` asks again).
        state.subscriptions[ExactText(again.filter)] = refused == nil ? again.qos : nil
        // Filters a reload dropped while the broker was away were subscribed again beside the
        // new ones, so that nothing is lost: once every wanted filter is granted they go (each
        // would bring its messages a second time).
        if state.resubscribing.isEmpty, state.wanted.keys.allSatisfy({ state.subscriptions[$0] != nil }) {
          stale = state.subscriptions.keys.filter { state.wanted[$0] == nil }.map(\.text).sorted()
        }
        return nil
      }
      guard let slot = state.subscribeWaiters.removeValue(forKey: mid) else { return nil }
      asked = (slot.filter, slot.qos)
      if refused == nil, !state.closed {
        // Recorded under the same lock, before anyone hears of the grant.
        state.subscriptions[ExactText(slot.filter)] = slot.qos
      }
      return slot
    }
    for filter in stale {
      let code = state.withLock { state -> Int32 in
        guard !state.closed, state.wanted[ExactText(filter)] == nil else { return MOSQ_ERR_SUCCESS.rawValue }
        var unsubscribeID: Int32 = 0
        let code = mosquitto_unsubscribe_v5(handle, &unsubscribeID, filter, nil)
        if code == MOSQ_ERR_SUCCESS.rawValue { state.subscriptions[ExactText(filter)] = nil }
        return code
      }
      if code == MOSQ_ERR_SUCCESS.rawValue {
        logger.info("unsubscribed from '\(filter)' on \(options.url): no rule wants it since a reload")
      } else {
        logger.error("unsubscribing from '\(filter)' failed: \(Self.reason(code))")
      }
    }
    if let asked, let grantedQoS, grantedQoS < asked.qos {
      logger.warning(
        "the broker \(options.url) granted QoS \(grantedQoS) to '\(asked.filter)' (asked \(asked.qos)): its messages come at most once"
      )
    }
    refreshSubscriptionHealth()
    if refused != nil { retryRefused() }
    guard let slot else { return }
    slot.timeout.cancel()
    if let refused {
      slot.waiter.resume(
        returning: .failure(
          ConnectorError(
            "the broker \(options.url) refused the subscription to '\(slot.filter)' (reason \(refused))")))
    } else {
      slot.waiter.resume(returning: .success(()))
    }
  }

  // MARK: Messages

  private func handleMessage(_ message: mosquitto_message, properties: OpaquePointer?) {
    guard let onMessage else { return }
    let topic = String(cString: message.topic)
    var payload = [UInt8](repeating: 0, count: Int(message.payloadlen))
    if message.payloadlen > 0, let source = message.payload {
      payload.withUnsafeMutableBytes {
        $0.copyMemory(from: UnsafeRawBufferPointer(start: source, count: Int(message.payloadlen)))
      }
    }
    var named: [String: Value] = [:]
    var user: [(key: String, value: String)] = []
    var property = properties
    while let current = property {
      let identifier = mosquitto_property_identifier(current)
      switch identifier {
      case Int32(MQTT_PROP_CONTENT_TYPE.rawValue):
        if let text = readString(current, identifier) { named["content_type"] = .string(text) }
      case Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue):
        if let text = readString(current, identifier) { named["response_topic"] = .string(text) }
      case Int32(MQTT_PROP_CORRELATION_DATA.rawValue):
        var value: UnsafeMutableRawPointer? = nil
        var length: UInt16 = 0
        if mosquitto_property_read_binary(current, identifier, &value, &length, false) != nil, let value {
          let bytes = [UInt8](UnsafeRawBufferPointer(start: value, count: Int(length)))
          free(value)
          named["correlation_data"] = .string(Data(bytes).base64EncodedString())
        }
      case Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue):
        var value: UInt8 = 0
        if mosquitto_property_read_byte(current, identifier, &value, false) != nil {
          named["format_indicator"] = .string(value == 1 ? "UTF8_DATA" : "UNSPECIFIED_BYTES")
        }
      case Int32(MQTT_PROP_USER_PROPERTY.rawValue):
        var key: UnsafeMutablePointer<CChar>? = nil
        var value: UnsafeMutablePointer<CChar>? = nil
        if mosquitto_property_read_string_pair(current, identifier, &key, &value, false) != nil, let key,
          let value
        {
          user.append((key: String(cString: key), value: String(cString: value)))
        }
        free(key)
        free(value)
      default:
        break
      }
      property = mosquitto_property_next(current)
    }
    onMessage(
      MQTTIncoming(
        topic: topic, payload: payload, qos: Int(message.qos), retain: message.retain, properties: named,
        userProperties: user))
  }

  private func readString(_ property: OpaquePointer, _ identifier: Int32) -> String? {
    var value: UnsafeMutablePointer<CChar>? = nil
    guard mosquitto_property_read_string(property, identifier, &value, false) != nil, let value else {
      return nil
    }
    defer { free(value) }
    return String(cString: value)
  }

  // MARK: Publishing

  /// Publishes; at QoS 1 returns when the broker's PUBACK for this publish arrives (or fails
  /// transiently after `publishTimeoutSeconds`). Properties are sent on MQTT 5 only.
  func publish(
    topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: PublishProperties
  ) async throws(ActionError) {
    await waitWhileAway()
    if retain, !state.withLock({ $0.retainAvailable }) {
      // Refused, as libmosquitto refuses a QoS above the broker's: sent without its flag, the
      // message would be counted written and nothing retained.
      throw ActionError(
        .permanent,
        "publishing to '\(topic)' on \(options.url) failed: \(Self.reason(MOSQ_ERR_RETAIN_NOT_SUPPORTED.rawValue)) (a CONNACK of this connection said so: libmosquitto would send it without its retain flag)"
      )
    }
    var list: OpaquePointer? = nil
    defer { mosquitto_property_free_all(&list) }
    if options.protocolVersion == .v5 {
      // Each property's code is checked: libmosquitto refuses one it cannot encode, and the
      // message must then not go without it, as if it had been sent.
      var added: [(code: Int32, name: String)] = []
      // An empty content type is left out: libmosquitto keeps an empty string property as a null
      // pointer and crashes copying it for a QoS 1 or 2 publish. Without one, the message has no
      // content type, which is what an empty one says.
      if let value = properties.contentType, !value.isEmpty {
        added.append(
          (mosquitto_property_add_string(&list, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), value), "contentType")
        )
      }
      if let value = properties.responseTopic {
        added.append(
          (
            mosquitto_property_add_string(&list, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), value),
            "responseTopic"
          ))
      }
      if let value = properties.correlationData {
        let code = value.withUnsafeBytes { buffer in
          mosquitto_property_add_binary(
            &list, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), buffer.baseAddress,
            UInt16(clamping: buffer.count))
        }
        added.append((code, "correlationData"))
      }
      if let value = properties.messageExpiry {
        added.append(
          (
            mosquitto_property_add_int32(&list, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), value),
            "messageExpiry"
          ))
      }
      if let value = properties.payloadFormatIndicator {
        added.append(
          (
            mosquitto_property_add_byte(&list, Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue), value),
            "payloadFormatIndicator"
          ))
      }
      for pair in properties.userProperties {
        added.append(
          (
            mosquitto_property_add_string_pair(
              &list, Int32(MQTT_PROP_USER_PROPERTY.rawValue), pair.key, pair.value),
            "user property '\(pair.key.prefix(64))'"
          ))
      }
      if let refused = added.first(where: { $0.code != MOSQ_ERR_SUCCESS.rawValue }) {
        throw ActionError(
          .permanent,
          "publishing to '\(topic)' on \(options.url): the MQTT 5 property \(refused.name) cannot be sent: \(Self.reason(refused.code))"
        )
      }
    }
    func send(_ mid: inout Int32) -> Int32 {
      defer { wake() }
      return payload.withUnsafeBytes { buffer in
        mosquitto_publish_v5(
          handle, &mid, topic, Int32(buffer.count), buffer.baseAddress, Int32(qos), retain, list)
      }
    }
    func failure(_ code: Int32) -> ActionError {
      let reason = Self.reason(code)
      let permanent =
        code == MOSQ_ERR_INVAL.rawValue || code == MOSQ_ERR_PAYLOAD_SIZE.rawValue
        || code == MOSQ_ERR_MALFORMED_UTF8.rawValue || code == MOSQ_ERR_OVERSIZE_PACKET.rawValue
        // The broker's limits, said in its CONNACK (a libmosquitto that checks retain locally
        // refuses that too): they wait on an operator.
        || code == MOSQ_ERR_QOS_NOT_SUPPORTED.rawValue || code == MOSQ_ERR_RETAIN_NOT_SUPPORTED.rawValue
      // Which limit, and by how much: "Packet larger than supported by the server" alone left the
      // operator to guess both.
      let limit =
        code == MOSQ_ERR_OVERSIZE_PACKET.rawValue
        ? " (a payload of \(payload.count) bytes\(state.withLock { $0.maximumPacketSize }.map { "; the broker takes packets of at most \($0) bytes, as its CONNACK said" } ?? ""))"
        : ""
      return ActionError(
        permanent ? .permanent : .transient,
        "publishing to '\(topic)' on \(options.url) failed: \(reason)\(limit)")
    }
    // Not while disconnected (checked here for QoS 0, under the lock below for QoS 1):
    // libmosquitto would keep a QoS 1 message queued for the reconnect while reporting the
    // failure, so each retry (and the error path) would add a copy delivered later. A failed
    // attempt then sends nothing.
    guard qos > 0 else {
      guard state.withLock({ $0.connected }) else { throw failure(MOSQ_ERR_NO_CONN.rawValue) }
      // libmosquitto reports a QoS 0 publish to on_publish too, under its message id: nothing is
      // registered for it, so that report is ignored.
      var mid: Int32 = 0
      let code = send(&mid)
      if code != MOSQ_ERR_SUCCESS.rawValue { throw failure(code) }
      return
    }
    let timeout = options.publishTimeoutSeconds
    let result: Result<Void, ActionError> = await withCheckedContinuation { continuation in
      // The slot is registered under the lock held across mosquitto_publish_v5: the PUBACK callback
      // (on the network thread) cannot look for it before it is there.
      let code = state.withLock { state -> Int32 in
        guard state.connected else { return MOSQ_ERR_NO_CONN.rawValue }
        var mid: Int32 = 0
        let code = send(&mid)
        guard code == MOSQ_ERR_SUCCESS.rawValue else { return code }
        // Only with 65,535 publishes unacknowledged at once can a message id still be waiting.
        register(
          continuation, mid: mid, in: \.publishes, state: &state, filter: topic,
          expired: ActionError(
            .transient,
            "no PUBACK for '\(topic)' from \(options.url) within \(timeout) s (\(Self.hurriedTimeoutSeconds) s once the daemon is stopping)"
          ),
          reused: { _ in
            ActionError(.transient, "no PUBACK from \(options.url) before its message id was reused")
          })
        return code
      }
      if code != MOSQ_ERR_SUCCESS.rawValue { continuation.resume(returning: .failure(failure(code))) }
    }
    try result.get()
  }

  /// QoS 1 publishes waiting for their PUBACK.
  var pendingPublishCount: Int { state.withLock { $0.publishes.count } }

  private func handlePublish(mid: Int32, reason: Int32) {
    // Nothing registered: a QoS 0 publish, or a PUBACK after the timeout gave up on it.
    guard let slot = state.withLock({ $0.publishes.removeValue(forKey: mid) }) else { return }
    slot.timeout.cancel()
    if reason >= 0x80 {
      slot.waiter.resume(
        returning: .failure(
          ActionError(
            .permanent,
            "the broker \(options.url) refused the publish: \(String(cString: mosquitto_reason_string(reason)))"
          )))
    } else {
      slot.waiter.resume(returning: .success(()))
    }
  }

  // MARK: The network thread

  /// Starts the network thread, once.
  private func startNetwork() {
    // Under the lock `close` marks the connection closed with: it either waits for this thread
    // or finds the connection closed here, before the client is destroyed.
    let start = state.withLock { state in
      !state.closed && !networkStarted.exchange(true, ordering: .acquiringAndReleasing)
    }
    guard start else { return }
    let thread = Thread { [self] in
      runNetwork()
      if !teardown.compareExchange(
        expected: Self.running, desired: Self.threadEnded, ordering: .acquiringAndReleasing
      )
      .exchanged {
        // `close` gave up waiting: the client is this thread's to free.
        mosquitto_destroy(handle)
        Glibc.close(wakeDescriptor)
      }
      networkEnded.signal()
    }
    thread.name = "mqtt"
    thread.start()
  }

  /// The wait before the next reconnect: `delay`, but only the first delay while publishes may
  /// still wait for the reconnect (within `awayWaitSeconds` of a drop of a connection the broker
  /// had accepted). With the delay doubled, a broker back 8 s after the drop was tried again only
  /// at 15 s, after every waiting publish had gone down its error path at 10 s.
  private func waitWhileAwayCapped(_ delay: Double, first: Double, clock: ContinuousClock) -> Double {
    let since = state.withLock { $0.connectedBefore ? $0.awaySince : nil }
    let end = since.map { $0 + .milliseconds(Int(options.awayWaitSeconds * 1000)) }
    guard let end, clock.now < end else { return delay }
    // The last attempt of the window lands before its end, not just after it (a broker back in
    // the window's last second missed the publishes by milliseconds).
    return min(delay, first, max(Self.seconds(end - clock.now) - 0.1, 0.05))
  }

  /// Wakes the network thread: a packet is queued for it to write, or `close` began.
  private func wake() {
    var one: UInt64 = 1
    _ = write(wakeDescriptor, &one, 8)
  }

  /// Waits up to `seconds` for `wake`, and takes its signal.
  private func waitForWake(seconds: Double) {
    var descriptor = pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
    if poll(&descriptor, 1, Int32(min(seconds, 3_600) * 1_000)) > 0 { drainWake() }
  }

  private func drainWake() {
    var value: UInt64 = 0
    _ = read(wakeDescriptor, &value, 8)
  }

  /// `duration` in seconds.
  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  }

  /// The network loop, until `close`: waits in `poll` (any descriptor number) for the socket or a
  /// `wake`, then lets libmosquitto read, write and keep the connection alive (a PINGREQ when it
  /// was quiet for the keepalive period; a disconnect when the PINGRESP does not come). A lost
  /// connection (libmosquitto has closed the socket and called back) is made again after the
  /// reconnect delay, doubled after each attempt that did not end in an accepted CONNECT (refused
  /// TCP, a refused CONNECT, a failed TLS handshake, a peer that closes at once) up to its maximum,
  /// and reset once a CONNECT is accepted; while publishes may wait for the reconnect, every first
  /// delay. Once stopping, it ends when the DISCONNECT is written or
  /// after `stopGraceSeconds`.
  private func runNetwork() {
    let firstDelay = Double(max(options.reconnectDelaySeconds, 1))
    let maxDelay = max(Double(options.reconnectDelayMaxSeconds), firstDelay)
    var delay = firstDelay
    // Whether a reconnect was tried since the last accepted CONNECT (the first one waits the
    // first delay).
    var attempted = false
    let clock = ContinuousClock()
    var stopDeadline: ContinuousClock.Instant?
    // Once stopping, a duplicate of the socket the DISCONNECT goes out on (``closeCleanly``).
    var lingering: Int32 = -1
    while true {
      let socket = mosquitto_socket(handle)
      if stopping.load(ordering: .acquiring) {
        if stopDeadline == nil, socket >= 0 {
          // Here, on the thread that polls and closes the socket (taken on `close`'s thread, the
          // number could be another connection's by then): libmosquitto may write the
          // DISCONNECT and close its socket within the call, so the socket is read again.
          lingering = fcntl(socket, F_DUPFD_CLOEXEC, 0)
          stopDeadline = clock.now + .seconds(Self.stopGraceSeconds)
          mosquitto_disconnect_v5(handle, 0, nil)
          continue
        }
        let deadline = stopDeadline ?? clock.now + .seconds(Self.stopGraceSeconds)
        stopDeadline = deadline
        if socket < 0 || clock.now >= deadline {
          // Within the wait of `close` (the grace and a second).
          Self.closeCleanly(
            lingering, drains: socket < 0, until: min(clock.now + .seconds(1), deadline + .milliseconds(500)))
          return
        }
      }
      if socket < 0 {
        if connectedSinceBackoff.exchange(false, ordering: .relaxed) {
          delay = firstDelay
        } else if attempted {
          delay = min(delay * 2, maxDelay)
        }
        waitForWake(seconds: waitWhileAwayCapped(delay, first: firstDelay, clock: clock))
        if stopping.load(ordering: .acquiring) { return }
        attempted = true
        state.withLock { $0.tlsDetail = nil }
        let code = mosquitto_reconnect(handle)
        // A connect that outlasted the stop (a host that drops SYNs): nothing more to do.
        if stopping.load(ordering: .acquiring) { return }
        if code != MOSQ_ERR_SUCCESS.rawValue {
          // A TLS failure with what libmosquitto said of it (a key that no longer matches its
          // certificate, renewed on disk): "A TLS error occurred" alone, every second, said nothing.
          let reason = code == MOSQ_ERR_TLS.rawValue ? tlsFailure().text : Self.reason(code)
          let next = waitWhileAwayCapped(min(delay * 2, maxDelay), first: firstDelay, clock: clock)
          logger.warning("reconnecting to \(options.url) failed: \(reason); next attempt in \(next) s")
          health?.report(healthComponent, "cannot reconnect to \(options.url): \(reason); retrying")
        }
        continue
      }
      let events = Int16(POLLIN) | (mosquitto_want_write(handle) ? Int16(POLLOUT) : 0)
      // On the stack: this runs once a packet.
      var descriptors = (
        pollfd(fd: socket, events: events, revents: 0),
        pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
      )
      let ready = withUnsafeMutablePointer(to: &descriptors) {
        $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, 1_000) }
      }
      if ready < 0, errno != EINTR {
        logger.error("poll failed for \(options.url): \(String(cString: strerror(errno)))")
        usleep(100_000)
      }
      if descriptors.1.revents != 0 { drainWake() }
      var code = MOSQ_ERR_SUCCESS.rawValue
      let revents = descriptors.0.revents
      // Until the broker accepts, a writable socket is read too: libmosquitto moves a TLS
      // handshake on only in its read step, also one that waits to write (its write step skips
      // while the handshake is under way, and the loop would spin on POLLOUT).
      if revents & Int16(POLLIN | POLLERR | POLLHUP) != 0
        || (revents & Int16(POLLOUT) != 0 && !accepted.load(ordering: .relaxed))
      {
        code = mosquitto_loop_read(handle, 1)
        if code == MOSQ_ERR_TLS.rawValue, !accepted.load(ordering: .relaxed),
          let refusal = clientCertificateRefusal()
        {
          // libmosquitto closed the socket without calling back: the retry is said here.
          refuse(refusal, retrying: !state.withLock { $0.closed })
        } else if code == MOSQ_ERR_TLS.rawValue {
          // libmosquitto closed the socket without calling back.
          let (text, verification, _) = tlsFailure()
          let waiter = state.withLock { state -> CheckedContinuation<Result<Void, ConnectorError>, Never>? in
            // Never accepted yet, and the certificate failed verification: a setting to change,
            // said at start (as when the connect call itself saw it), not retried for good.
            guard verification, !state.connectedBefore else { return nil }
            defer { state.connectWaiter = nil }
            return state.connectWaiter
          }
          if let waiter {
            waiter.resume(returning: .failure(ConnectorError("cannot connect to \(options.url): \(text)")))
          } else {
            let next = waitWhileAwayCapped(
              attempted ? min(delay * 2, maxDelay) : delay, first: firstDelay, clock: clock)
            logger.warning("\(options.url): \(text); next attempt in \(next) s")
            health?.report(healthComponent, "\(options.url): \(text); retrying")
          }
        }
      }
      if code == MOSQ_ERR_SUCCESS.rawValue, mosquitto_want_write(handle) {
        code = mosquitto_loop_write(handle, 1)
      }
      if code == MOSQ_ERR_SUCCESS.rawValue { _ = mosquitto_loop_misc(handle) }
    }
  }

  // MARK: Closing

  /// Closes `descriptor`, a duplicate of the socket libmosquitto closed once it wrote the
  /// DISCONNECT (`drains`), after ending the sending side and reading what the broker still sends
  /// until it closes, or until `deadline`. libmosquitto closes its socket at once, while a broker
  /// streaming QoS 1 messages has sent more: a socket closed with unread bytes ends in a reset
  /// (RFC 1122, 4.2.2.13), which discards what was not sent yet, and the broker, failing its next
  /// write, dropped the connection without reading the PUBACKs and the DISCONNECT: it sent the
  /// acknowledged messages again to the next run, and took the stop for a lost connection (a
  /// will's trigger). The duplicate keeps the socket open past libmosquitto's close. Without
  /// `drains` (the DISCONNECT is not written: a broker that reads nothing), it is only closed.
  private static func closeCleanly(_ descriptor: Int32, drains: Bool, until deadline: ContinuousClock.Instant)
  {
    guard descriptor >= 0 else { return }
    defer { Glibc.close(descriptor) }
    guard drains, shutdown(descriptor, Int32(SHUT_WR)) == 0 else { return }
    let clock = ContinuousClock()
    var buffer = [UInt8](repeating: 0, count: 16_384)
    // Bounded by the deadline: each pass waits at most what is left of it.
    while clock.now < deadline {
      let left = clock.now.duration(to: deadline).components
      var descriptors = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
      // Never negative (the deadline may pass since the check): poll would wait for ever.
      let waitMs = Int32(
        clamping: max(0, left.seconds * 1_000 + left.attoseconds / 1_000_000_000_000_000 + 1))
      let ready = poll(&descriptors, 1, waitMs)
      if ready < 0, errno != EINTR { return }
      if ready <= 0 { continue }
      let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      // The broker's close (0), or a reset: nothing more comes.
      if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { return }
    }
  }

  /// Disconnects, stops the network thread and frees the client. Safe to call twice.
  func close() {
    let first = state.withLock { state -> Bool in
      defer { state.closed = true }
      return !state.closed
    }
    guard first else { return }
    stopping.store(true, ordering: .releasing)
    // The network thread, once running, sends the DISCONNECT itself (`runNetwork`); none runs
    // once `closed` is set if it had not started.
    if !networkStarted.load(ordering: .acquiring) { mosquitto_disconnect_v5(handle, 0, nil) }
    wake()
    var freesClient = true
    if networkStarted.load(ordering: .acquiring),
      networkEnded.wait(timeout: .now() + Self.stopGraceSeconds + 1) == .timedOut
    {
      // The thread is inside a blocking connect (to a host that drops SYNs, it lasts about two
      // minutes): the stop does not wait for it; the thread frees the client when it returns.
      freesClient = !teardown.compareExchange(
        expected: Self.running, desired: Self.abandoned, ordering: .acquiringAndReleasing
      ).exchanged
      if !freesClient {
        logger.warning("stopped waiting for the connection to \(options.url): a connect is under way")
      }
    }
    if freesClient { Glibc.close(wakeDescriptor) }
    // After the network thread stopped: no callback can report this connection again.
    health?.clear(healthComponent)
    health?.clear(subscriptionsComponent)
    if freesClient { mosquitto_destroy(handle) }
    let (publishes, subscribes, connect) = state.withLock { state in
      defer {
        state.publishes = [:]
        state.subscribeWaiters = [:]
        state.connectWaiter = nil
      }
      return (state.publishes, state.subscribeWaiters, state.connectWaiter)
    }
    for slot in publishes.values {
      slot.timeout.cancel()
      slot.waiter.resume(
        returning: .failure(ActionError(.transient, "the connection to \(options.url) closed")))
    }
    for slot in subscribes.values {
      slot.timeout.cancel()
      slot.waiter.resume(returning: .failure(ConnectorError("the connection to \(options.url) closed")))
    }
    connect?.resume(returning: .failure(ConnectorError("the connection to \(options.url) closed")))
    retainedSelf?.release()
    retainedSelf = nil
  }
}
