import Foundation
import Synchronization

/// Standard output and error written with `write(2)`, whole. Foundation's `FileHandle.write` stops
/// the process (`try!`, SIGILL) when a write fails: a full disk (`> /dev/full`), a reader gone with
/// SIGPIPE ignored. Here a failed write of standard output is kept, so that the command can say so
/// and end with an error status instead of reporting success for output that was lost.
public enum StandardStreams {
  /// The first `errno` a write of standard output failed with; 0 while none has.
  private static let outputFailure = Mutex<Int32>(0)

  /// Writes all of `bytes` to `fd`, again after `EINTR` and short writes: 0 when every byte was
  /// written, else the `errno` of the write that failed.
  public static func write(_ bytes: [UInt8], to fd: Int32) -> Int32 {
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeBytes {
        Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset)
      }
      if written < 0 {
        if errno == EINTR { continue }
        return errno
      }
      if written == 0 { return EIO }
      offset += written
    }
    return 0
  }

  /// Writes `bytes` to standard output; a failure is kept (see ``outputProblem()``) and later
  /// writes are not tried.
  public static func output(_ bytes: [UInt8]) {
    outputFailure.withLock { failure in
      guard failure == 0 else { return }
      failure = write(bytes, to: STDOUT_FILENO)
    }
  }

  /// Writes `text` to standard error; a failure is dropped (there is nowhere left to say it).
  public static func error(_ text: String) {
    _ = write(Array(text.utf8), to: STDERR_FILENO)
  }

  /// Whether a write of standard output has failed.
  public static var outputFailed: Bool { outputFailure.withLock { $0 != 0 } }

  /// Why standard output lost text, in the system's words (`No space left on device`), or nil.
  /// (Text written with `print` goes through stdio's buffer, not here: its failures are not seen.)
  public static func outputProblem() -> String? {
    let failure = outputFailure.withLock { $0 }
    return failure == 0 ? nil : String(cString: strerror(failure))
  }
}
