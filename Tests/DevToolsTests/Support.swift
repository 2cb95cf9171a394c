import CEditLine
import Foundation
import TestSupport

func temporaryFolder(_ name: String) -> String {
  let path = NSTemporaryDirectory() + "iotrules-\(name)-" + UUID().uuidString
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// Runs the binary with `input` on a pipe; returns (exit code, stdout, stderr).
func runBinary(
  _ arguments: [String], input: String = "", in folder: String? = nil, environment: [String: String] = [:]
)
  throws -> (Int32, String, String)
{
  let process = Process()
  process.executableURL = URL(fileURLWithPath: iotrulesBinary)
  process.arguments = arguments
  if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
  var env = ProcessInfo.processInfo.environment
  for (key, value) in environment { env[key] = value }
  process.environment = env
  let stdin = Pipe()
  let stdout = Pipe()
  let stderr = Pipe()
  process.standardInput = stdin
  process.standardOutput = stdout
  process.standardError = stderr
  try process.run()
  stdin.fileHandleForWriting.write(Data(input.utf8))
  try stdin.fileHandleForWriting.close()
  let out = stdout.fileHandleForReading.readDataToEndOfFile()
  let err = stderr.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (
    process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)
  )
}

/// An `iotrules` process on a pseudo-terminal opened here: keys go in, the screen's bytes come out.
final class TerminalSession {
  let process = Process()
  let master: Int32
  var screen = ""

  init(_ arguments: [String], environment: [String: String]) throws {
    var master: Int32 = -1
    var slaveDescriptor: Int32 = -1
    precondition(iotrules_open_pty(&master, &slaveDescriptor) == 0)
    self.master = master
    let slave = FileHandle(fileDescriptor: slaveDescriptor, closeOnDealloc: false)
    process.executableURL = URL(fileURLWithPath: iotrulesBinary)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "NO_COLOR")
    env["TERM"] = "xterm"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardInput = slave
    process.standardOutput = slave
    process.standardError = slave
    try process.run()
    try slave.close()
  }

  /// Types `keys`.
  func send(_ keys: String) { send(bytes: Array(keys.utf8)) }

  /// Types `bytes` as they are (not UTF-8 text, say).
  func send(bytes: [UInt8]) {
    _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
  }

  /// Reads until the screen (since `from`) contains `text` or 10 s pass; true when found.
  @discardableResult
  func waitFor(_ text: String, from start: String.Index? = nil) -> Bool {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
      if screen[(start ?? screen.startIndex)...].contains(text) { return true }
      if !pump() { break }
    }
    return screen[(start ?? screen.startIndex)...].contains(text)
  }

  /// Waits for the REPL's prompt after the first `text` found from `start`: only then does the line
  /// editor read the keys sent next.
  func waitForPrompt(after text: String, from start: String.Index) -> Bool {
    guard let found = screen.range(of: text, range: start..<screen.endIndex) else { return false }
    let offset = screen.distance(from: screen.startIndex, to: found.upperBound)
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
      if screen.dropFirst(offset).contains("iot> ") { return true }
      if !pump() { break }
    }
    return screen.dropFirst(offset).contains("iot> ")
  }

  /// Waits (at most 5 s, reading meanwhile) until the line editor has switched the terminal to
  /// raw mode (ICANON off), which it does a moment after drawing the prompt: keys sent before
  /// are flushed. A pty pair shares its settings, so the master reads the REPL's.
  @discardableResult
  func waitForRawMode() -> Bool {
    let deadline = Date().addingTimeInterval(5)
    var settings = termios()
    while Date() < deadline {
      if tcgetattr(master, &settings) == 0 && settings.c_lflag & tcflag_t(ICANON) == 0 { return true }
      if !pump() { break }
    }
    return false
  }

  /// Reads what arrives within 100 ms; false when the terminal closed.
  @discardableResult
  func pump() -> Bool {
    var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
    if poll(&descriptor, 1, 100) > 0 {
      var buffer = [UInt8](repeating: 0, count: 4096)
      let count = read(master, &buffer, buffer.count)
      if count <= 0 { return false }
      screen += String(decoding: buffer[0..<count], as: UTF8.self)
    }
    return true
  }

  /// Waits (at most 10 s) for the process to end; kills it otherwise. Returns its status.
  func finish() -> Int32 {
    let deadline = Date().addingTimeInterval(10)
    while process.isRunning && Date() < deadline {
      if !pump() { break }  // drains output so the child never blocks on a full terminal
    }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    close(master)
    return process.terminationStatus
  }
}
