import ArgumentParser
import CFileOps
import Foundation
import IoTSQL
import RulesEngine

typealias IoTSQLVersion = IoTSQL.SQLVersion

enum SQLVersionName {
  static let `default` = IoTSQL.SQLVersion.default.rawValue
}

/// Standard output and error, unbuffered enough for line protocols, written by `write(2)`: a write
/// that fails (a full disk; a reader gone under `run`, which ignores SIGPIPE, where other commands
/// end by SIGPIPE as Unix tools do) is kept and ends the command with exit status 74 (see
/// ``IoTRules/main()``), where Foundation's `FileHandle.write` stopped the process.
enum Console {
  /// True when standard output is a terminal (pretty output), false when piped.
  static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

  /// Writes a line to standard output.
  static func out(_ text: String) { StandardStreams.output(Array((text + "\n").utf8)) }

  /// Writes bytes to standard output as they are.
  static func write(_ bytes: [UInt8]) { StandardStreams.output(bytes) }

  /// Whether a write of standard output has failed (its text is lost).
  static var outputFailed: Bool { StandardStreams.outputFailed }

  /// Writes a line to standard error.
  static func err(_ text: String) { StandardStreams.error(text + "\n") }
}

/// Reads a whole file, a pipe or a device (`<(...)`, `/dev/stdin`, `/dev/null`), or standard input
/// for `-` (``InputFile``); one that cannot be read is reported (see ``unreadable(_:)``) and ends the
/// command with exit status 74, as for every input file the commands cannot read. One longer than
/// `limit` bytes (`/dev/zero` has no end) is refused with exit status 65 once that much is read.
func readFile(_ path: String, limit: Int = InputFile.limit) throws -> [UInt8] {
  // Closed when the process started: its descriptor number is another file's now.
  if path == "-" && iotrules_stdin_closed_at_start() != 0 { throw unreadable(path) }
  switch InputFile.read(path, limit: limit) {
  case .success(let bytes): return bytes
  case .failure(let failure) where failure.isTooLong:
    Console.err("iotrules: error: \(path): \(failure)")
    throw ExitCodes.badRule
  case .failure: throw unreadable(path)
  }
}

/// The bytes of the last `option VALUE` or `option=VALUE` on the command line as typed. Swift's
/// `CommandLine.arguments` (and so the parsed options) replace bytes that are not UTF-8 with
/// U+FFFD: a `--payload` of such bytes would become a different, valid JSON text.
func rawArgument(_ option: String) -> [UInt8]? {
  func bytes(_ index: Int) -> [UInt8] {
    guard let pointer = CommandLine.unsafeArgv[index] else { return [] }
    return UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)).map { $0 }
  }
  var found: [UInt8]?
  var index = 1
  let count = Int(CommandLine.argc)
  while index < count {
    let argument = bytes(index)
    if argument == Array("--".utf8) { break }
    if argument == Array(option.utf8), index + 1 < count {
      found = bytes(index + 1)
      index += 2
      continue
    }
    if argument.starts(with: Array((option + "=").utf8)) {
      found = Array(argument.dropFirst(option.utf8.count + 1))
    }
    index += 1
  }
  return found
}

/// Refuses a command-line text (`--sql`, `--template`) whose bytes are not UTF-8, saying where, as a
/// rule file with such bytes is refused: read with U+FFFD in their place, the statement would run as
/// something else than what was typed. Exit status 65.
func requireUTF8(_ option: String) throws {
  guard let problem = utf8Problem(option) else { return }
  Console.err("iotrules: error: \(problem)")
  throw ExitCodes.badRule
}

/// `--client-id is not UTF-8 text (byte 0xFF at offset 3)` when the option's bytes are not UTF-8
/// (the system hands them on with U+FFFD in place of the bytes); nil otherwise.
func utf8Problem(_ option: String) -> String? {
  guard let bytes = rawArgument(option), let offset = RuleFile.firstNonUTF8Offset(bytes) else { return nil }
  return
    "\(option) is not UTF-8 text (byte 0x\(String(bytes[offset], radix: 16, uppercase: true)) at offset \(offset))"
}

/// Writes `bytes` to `path` (created or emptied first); nil when done, else why not in the system's
/// words ("Is a directory", "No such file or directory"), which Foundation's errors do not give.
func writeFile(_ path: String, _ bytes: [UInt8]) -> String? {
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
  guard fd >= 0 else { return String(cString: strerror(errno)) }
  let failure = StandardStreams.write(bytes, to: fd)
  if failure != 0 {
    close(fd)
    return String(cString: strerror(failure))
  }
  return close(fd) == 0 ? nil : String(cString: strerror(errno))
}

/// Reports that `path` cannot be read, as `check` does (`iotrules: error: F: no such file or
/// folder`, `... is a folder, not a file`), and returns exit status 74.
func unreadable(_ path: String) -> ExitCode {
  if path == "-" {
    // Standard input, not a file named `-` (closed: "no such file or folder" said the wrong thing).
    let closed = fcntl(0, F_GETFD) == -1 || iotrules_stdin_closed_at_start() != 0
    Console.err(
      "iotrules: error: reading standard input: \(closed ? "Bad file descriptor" : "cannot read it")")
    return ExitCodes.io
  }
  Console.err("iotrules: error: \(path): \(RegularFile.whyUnreadable(path))")
  return ExitCodes.io
}

/// Milliseconds since the epoch, for `timestamp()` when no time is pinned.
func nowMilliseconds() -> Int {
  Int((Date().timeIntervalSince1970 * 1000).rounded(.down))
}
