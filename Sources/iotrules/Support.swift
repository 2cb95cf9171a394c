import Foundation
import IoTSQL

typealias IoTSQLVersion = IoTSQL.SQLVersion

enum SQLVersionName {
  static let `default` = IoTSQL.SQLVersion.default.rawValue
}

/// Standard output and error, unbuffered enough for line protocols.
enum Console {
  /// True when standard output is a terminal (pretty output), false when piped.
  static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

  static func out(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
  }

  static func err(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
  }
}

/// Reads a whole file, with an error that names it.
func readFile(_ path: String) throws -> [UInt8] {
  guard let data = FileManager.default.contents(atPath: path) else {
    throw CLIError("cannot read '\(path)'")
  }
  return [UInt8](data)
}

/// An error shown to the user as is.
struct CLIError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Milliseconds since the epoch, for `timestamp()` when no time is pinned.
func nowMilliseconds() -> Int {
  Int((Date().timeIntervalSince1970 * 1000).rounded(.down))
}
