import Foundation

/// Reads an input file whole, as every command reads one (`eval --payload-file`, `import aws`, the
/// REPL's `.payload @FILE`): a regular file, a pipe or a device (`<(...)`, `/dev/stdin`), or standard
/// input for `-`, up to ``limit`` bytes, so that one limit and one message hold everywhere.
public enum InputFile {
  /// The most bytes read: 16 MiB, the most a value may hold (`/dev/zero` has no end).
  public static let limit = 16 << 20

  /// Why an input file was not read, in the words every command prints after its path.
  public struct Failure: Error, Sendable, CustomStringConvertible {
    /// `no such file or folder`, `is a folder, not a file`, `longer than 16 MiB, the most read`...
    public var description: String
    /// True when the file holds more than the limit (input refused, exit status 65), false when it
    /// cannot be read at all (an I/O error, exit status 74).
    public var isTooLong: Bool

    /// A failure said by `description`.
    public init(description: String, isTooLong: Bool) {
      self.description = description
      self.isTooLong = isTooLong
    }
  }

  /// The bytes of `path` (standard input for `-`), or why they were not read: the file cannot be
  /// read, or it is longer than `limit` bytes, found once that much is read.
  public static func read(_ path: String, limit: Int = InputFile.limit) -> Result<[UInt8], Failure> {
    func unreadable() -> Failure { Failure(description: RegularFile.whyUnreadable(path), isTooLong: false) }
    let descriptor = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return .failure(unreadable()) }
    defer { if descriptor != 0 { close(descriptor) } }
    var info = stat()
    if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return .failure(unreadable()) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        return .failure(unreadable())
      }
      if count == 0 { return .success(bytes) }
      bytes += buffer[0..<count]
      if bytes.count > limit {
        return .failure(
          Failure(description: "longer than \(limit >> 20) MiB, the most read", isTooLong: true))
      }
    }
  }
}
