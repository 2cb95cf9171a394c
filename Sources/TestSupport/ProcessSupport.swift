import Foundation

/// Why a test peer could not be started. Tests fail with it; they never skip.
public struct TestPeerError: Error, CustomStringConvertible {
  /// What went wrong, naming the missing program or the failed step.
  public var message: String

  /// Creates an error.
  public init(_ message: String) { self.message = message }

  /// The message.
  public var description: String { message }
}

/// Small helpers for starting programs and picking ports.
public enum ProcessSupport {
  /// The full path of `program`, searched in PATH and the sbin folders (Debian installs mosquitto in
  /// /usr/sbin); throws an error naming the program and its Debian package when absent.
  public static func locate(_ program: String, package: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
    for folder in folders {
      let candidate = folder + "/" + program
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestPeerError(
      "the program '\(program)' is missing: install the Debian package '\(package)' (apt-get install -y \(package))"
    )
  }

  /// A TCP port on 127.0.0.1 that was free a moment ago.
  public static func freePort() throws -> Int {
    let (port, socket) = try refusingPort()
    close(socket)
    return port
  }

  /// A loopback port where connections are refused, held for as long as the returned socket is
  /// open (close it with `close(_:)` when done): it is bound but never listens, so no other test's
  /// server can take the port meanwhile, as one could take a port `freePort` found.
  public static func refusingPort() throws -> (port: Int, socket: Int32) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestPeerError("socket() failed: errno \(errno)") }
    var address = sockaddr_in()
    guard withLoopbackAddress(port: 0, { bind(fd, $0, $1) }) == 0 else {
      close(fd)
      throw TestPeerError("bind() failed: errno \(errno)")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (Int(UInt16(bigEndian: address.sin_port)), fd)
  }

  /// Calls `body` with 127.0.0.1:`port` as a `sockaddr` and its length (for `bind`, `connect`).
  public static func withLoopbackAddress<T>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T
  {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
  }

  /// True when something accepts TCP connections on 127.0.0.1:`port`.
  public static func isListening(port: Int) -> Bool {
    let fd = connected(port: port)
    if fd >= 0 { close(fd) }
    return fd >= 0
  }

  /// A socket connected to 127.0.0.1:`port` (the caller closes it), or -1; with `receiveBuffer`,
  /// one that holds that many bytes unread (a slow reader).
  public static func connected(port: Int, receiveBuffer: Int32? = nil) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
    if var size = receiveBuffer {
      // Before connecting: the window the connection offers follows it.
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    if withLoopbackAddress(port: port, { connect(fd, $0, $1) }) != 0 {
      close(fd)
      return -1
    }
    return fd
  }

  /// Runs a program to completion and throws, with its output, when it exits non-zero.
  @discardableResult
  public static func run(_ executable: String, _ arguments: [String], in folder: URL? = nil) throws -> String
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = folder }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: output, as: UTF8.self)
    guard process.terminationStatus == 0 else {
      throw TestPeerError(
        "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
    }
    return text
  }

  /// Starts `executable` with stdout and stderr appended to `logFile`, an empty signal mask and default
  /// signal handlers (the test runner's mask would otherwise block SIGTERM in the child); returns its PID.
  public static func spawn(_ executable: String, _ arguments: [String], logFile: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    guard result == 0 else { throw TestPeerError("cannot start \(executable): error \(result)") }
    return pid
  }

  /// Stops a process started by `spawn`: SIGTERM, then SIGKILL after `grace` seconds; reaps it.
  public static func stop(pid: pid_t, grace: Double = 5) {
    kill(pid, SIGTERM)
    let deadline = Date().addingTimeInterval(grace)
    var status: Int32 = 0
    while Date() < deadline {
      if waitpid(pid, &status, WNOHANG) == pid { return }
      usleep(5_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
  }

  /// True while a process started by `spawn` has not exited (it is reaped when it has).
  public static func isRunning(pid: pid_t) -> Bool {
    var status: Int32 = 0
    return waitpid(pid, &status, WNOHANG) == 0
  }

  /// A new empty temporary folder.
  public static func temporaryFolder(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}

/// The package root (for Rules/ and the built binary), found from this file's place in Sources/.
public let packageRoot: String = {
  var url = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}()

/// The `iotrules` binary built beside the test bundle, else the debug build of the package.
public let iotrulesBinary: String = {
  let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  for candidate in [bundle.appendingPathComponent("iotrules").path, packageRoot + "/.build/debug/iotrules"]
  where FileManager.default.isExecutableFile(atPath: candidate) {
    return candidate
  }
  return packageRoot + "/.build/debug/iotrules"
}()
