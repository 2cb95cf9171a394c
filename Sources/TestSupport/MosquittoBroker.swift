import Foundation

/// A real mosquitto broker on a free loopback port, with a config the test writes. Stop it with
/// `stop()` (by PID); it is also stopped when the value is released.
public final class MosquittoBroker: @unchecked Sendable {
  /// Certificates made with openssl for a TLS broker and its clients.
  public struct Certificates: Sendable {
    /// The CA certificate (PEM) that signs the server and client certificates.
    public var caFile: String
    /// The client certificate (PEM).
    public var clientCertificateFile: String
    /// The client key (PEM).
    public var clientKeyFile: String
    /// The server certificate (PEM), for 127.0.0.1 and localhost.
    public var serverCertificateFile: String
    /// The server key (PEM).
    public var serverKeyFile: String
  }

  /// The port on 127.0.0.1.
  public let port: Int
  /// The folder with the config, log and certificates.
  public let folder: URL
  /// The certificates when the broker is TLS-only with required client certificates.
  public let certificates: Certificates?
  private var pid: pid_t?

  /// Starts mosquitto. With `tls`, it generates a CA, server and client certificates and listens with
  /// `require_certificate true`; `aclFile` is the text of an ACL file (`topic readwrite allowed/#`)
  /// that then applies to every client; without `anonymous` (and no password file) it refuses
  /// every client's CONNECT as not authorised. Throws when mosquitto (or openssl) is missing or does
  /// not listen.
  public init(
    tls: Bool = false, persistence: Bool = false, aclFile: String? = nil, anonymous: Bool = true,
    extraConfig: String = ""
  ) throws {
    let executable = try ProcessSupport.locate("mosquitto", package: "mosquitto")
    folder = try ProcessSupport.temporaryFolder("mosquitto")
    var config = """
      allow_anonymous \(anonymous)
      persistence \(persistence)
      persistence_location \(folder.path)/
      max_queued_messages 1000000
      max_inflight_messages 100
      set_tcp_nodelay true
      log_dest stderr
      log_type error
      log_type warning
      log_type notice

      """
    config += extraConfig
    if let aclFile {
      let aclPath = folder.appendingPathComponent("acl").path
      try aclFile.write(toFile: aclPath, atomically: true, encoding: .utf8)
      config += "acl_file \(aclPath)\n"
    }
    // Started as root, mosquitto drops to the user 'mosquitto', who cannot read the test's files.
    if getuid() == 0 { config += "user root\n" }
    if tls {
      let certificates = try Self.makeCertificates(in: folder)
      self.certificates = certificates
      config += """
        cafile \(certificates.caFile)
        certfile \(certificates.serverCertificateFile)
        keyfile \(certificates.serverKeyFile)
        require_certificate true
        use_identity_as_username true

        """
    } else {
      certificates = nil
    }
    let configFile = folder.appendingPathComponent("mosquitto.conf")
    let logFile = folder.appendingPathComponent("mosquitto.log")
    // A free port can be taken by another process between the probe and mosquitto's bind (a
    // client's ephemeral port, under parallel tests): then mosquitto exits with "Address already in
    // use" and another port is tried.
    var attempt = 0
    while true {
      attempt += 1
      let port = try ProcessSupport.freePort()
      try ("listener \(port) 127.0.0.1\n" + config).write(to: configFile, atomically: true, encoding: .utf8)
      let pid = try ProcessSupport.spawn(executable, ["-c", configFile.path], logFile: logFile.path)
      let deadline = Date().addingTimeInterval(10)
      var listening = true
      while !ProcessSupport.isListening(port: port) {
        if !ProcessSupport.isRunning(pid: pid) || Date() > deadline {
          listening = false
          break
        }
        usleep(20_000)
      }
      if listening {
        self.port = port
        self.pid = pid
        return
      }
      ProcessSupport.stop(pid: pid)
      let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
      if attempt < 5, log.contains("Address already in use") { continue }
      throw TestPeerError("mosquitto did not listen on 127.0.0.1:\(port) within 10 s: \(log)")
    }
  }

  deinit { stop() }

  /// `mqtt://127.0.0.1:PORT` or `mqtts://…`.
  public var url: String { "\(certificates == nil ? "mqtt" : "mqtts")://127.0.0.1:\(port)" }

  /// Sends `signal` to the broker (SIGSTOP to make it stop answering, SIGCONT, SIGKILL).
  public func send(signal: Int32) {
    if let pid { kill(pid, signal) }
  }

  /// Stops the broker and starts it again on the same port with the same configuration (its
  /// persistence file, when persistent, carries the sessions over).
  public func restart() throws {
    stop()
    let executable = try ProcessSupport.locate("mosquitto", package: "mosquitto")
    let configFile = folder.appendingPathComponent("mosquitto.conf")
    let logFile = folder.appendingPathComponent("mosquitto.log")
    pid = try ProcessSupport.spawn(executable, ["-c", configFile.path], logFile: logFile.path)
    let deadline = Date().addingTimeInterval(10)
    while !ProcessSupport.isListening(port: port) {
      if !ProcessSupport.isRunning(pid: pid!) || Date() > deadline {
        stop()
        throw TestPeerError("mosquitto did not listen again on 127.0.0.1:\(port) within 10 s")
      }
      usleep(20_000)
    }
  }

  /// Stops the broker by PID (SIGTERM, then SIGKILL after 5 s) and waits for it.
  public func stop() {
    guard let pid else { return }
    self.pid = nil
    ProcessSupport.stop(pid: pid)
  }

  private static func makeCertificates(in folder: URL) throws -> Certificates {
    let openssl = try ProcessSupport.locate("openssl", package: "openssl")
    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
    try ProcessSupport.run(
      openssl,
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=iotrules test CA",
        "-keyout", path("ca.key"), "-out", path("ca.crt"),
      ])
    try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
      toFile: path("server.ext"), atomically: true, encoding: .utf8)
    for (name, subject, extensions) in [
      ("server", "/CN=localhost", ["-extfile", path("server.ext")]),
      ("client", "/CN=iotrules-test-client", []),
    ] {
      try ProcessSupport.run(
        openssl,
        [
          "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", path("\(name).key"), "-out",
          path("\(name).csr"),
        ])
      try ProcessSupport.run(
        openssl,
        [
          "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
          "-CAcreateserial", "-days", "2", "-out", path("\(name).crt"),
        ] + extensions)
    }
    return Certificates(
      caFile: path("ca.crt"), clientCertificateFile: path("client.crt"), clientKeyFile: path("client.key"),
      serverCertificateFile: path("server.crt"), serverKeyFile: path("server.key"))
  }
}
