import Foundation
import TestSupport
import Testing

func temporaryFolder(_ name: String = "daemon") -> String {
  let path = NSTemporaryDirectory() + "iotrules-\(name)-" + UUID().uuidString
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func write(_ text: String, to path: String) {
  try! FileManager.default.createDirectory(
    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
  try! text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// A running `iotrules` process with captured output.
final class Subprocess: @unchecked Sendable {
  let process = Process()
  let stdoutPath: String
  let stderrPath: String

  /// With `standardInput`, the process reads that pipe (left open until the test closes it) instead
  /// of the null device. With `shellPrefix`, bash runs those commands first and then becomes
  /// `iotrules` (same pid), which inherits what they opened.
  init(_ arguments: [String], in folder: String, standardInput: Pipe? = nil, shellPrefix: String? = nil)
    throws
  {
    stdoutPath = folder + "/stdout.txt"
    stderrPath = folder + "/stderr.txt"
    _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
    if let shellPrefix {
      process.executableURL = URL(fileURLWithPath: "/bin/bash")
      process.arguments = ["-c", shellPrefix + "\nexec \"$0\" \"$@\"", iotrulesBinary] + arguments
    } else {
      process.executableURL = URL(fileURLWithPath: iotrulesBinary)
      process.arguments = arguments
    }
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
    process.standardError = FileHandle(forWritingAtPath: stderrPath)
    process.standardInput = standardInput ?? FileHandle.nullDevice
    try process.run()
  }

  var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
  var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  /// Waits at most `seconds`; kills the process (by its pid) if it has not exited.
  func wait(seconds: Double) async -> Int32? {
    for _ in 0..<Int(seconds * 50) {
      if !process.isRunning { return process.terminationStatus }
      try? await Task.sleep(nanoseconds: 20_000_000)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return nil
  }

  func signal(_ number: Int32) { kill(process.processIdentifier, number) }

  /// Waits (at most `seconds`) until the process takes `number` itself, ignored (the daemon's
  /// first steps, a dispatch source then taking it) or caught: one sent earlier (a debug build
  /// starting slowly on a loaded machine) killed it instead (exit 143).
  @discardableResult
  func waitUntilHandling(_ number: Int32, seconds: Double = 20) async -> Bool {
    let bit = UInt64(1) << UInt64(number - 1)
    for _ in 0..<Int(seconds * 50) {
      let status =
        (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
      let masks = status.split(separator: "\n").filter { $0.hasPrefix("SigIgn:") || $0.hasPrefix("SigCgt:") }
        .compactMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
      if masks.contains(where: { $0 & bit != 0 }) {
        return true
      }
      try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return false
  }
}

/// Runs `iotrules` to completion.
func runIotrules(_ arguments: [String], in folder: String, timeout: Double = 120) async throws -> (
  Int32?, String, String
) {
  let process = try Subprocess(arguments, in: folder)
  let status = await process.wait(seconds: timeout)
  return (status, process.stdout, process.stderr)
}

/// What a python3 `script` prints, given `arguments` (python3's own clients: another SQLite, an
/// HTTP client outside the test process).
func python3Output(_ script: String, _ arguments: [String]) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3", "-c", script] + arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return String(decoding: data, as: UTF8.self)
}

/// Rows of a query, through python3's sqlite3 (another SQLite client than the daemon's).
func sqliteQuery(_ database: String, _ sql: String) throws -> [String] {
  try python3Output(
    "import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print(json.dumps(list(r)))",
    [database, sql]
  ).split(separator: "\n").map(String.init)
}

/// Status and body of an HTTP request to the daemon (python3's urllib).
func fetch(_ url: String, method: String = "GET") throws -> (Int, String) {
  let text = try python3Output(
    "import sys,urllib.request,urllib.error\ntry:\n r=urllib.request.urlopen(urllib.request.Request(sys.argv[1],method=sys.argv[2]),timeout=5); print(r.status); print(r.read().decode())\nexcept urllib.error.HTTPError as e:\n print(e.code); print(e.read().decode())",
    [url, method])
  let status = Int(text.prefix(while: { $0.isNumber })) ?? 0
  return (status, String(text.drop(while: { $0 != "\n" }).dropFirst()))
}
