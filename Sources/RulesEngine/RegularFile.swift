import Foundation

/// Reads rule and test files: regular files only, never blocking.
///
/// A named pipe called `r.json` in a rules folder would otherwise hang `check`, `run`'s start and
/// every later reload (opening it waits for a writer), and with them the daemon's shutdown. The file
/// is opened without blocking and judged by what was opened, so one swapped in after a `stat` cannot
/// slip through.
public enum RegularFile {
  /// Why a file cannot be read, in the words every command prints after `cannot read it (...)`.
  public struct Unreadable: Error, Sendable, CustomStringConvertible {
    /// `Permission denied`, `it is a folder`, `not a regular file (a named pipe)`...
    public var reason: String
    /// True when the file is larger than the limit asked for.
    public var tooLarge = false
    /// Its size then, when it was already too large on opening (nil when it grew while read).
    public var size: Int?
    /// The reason.
    public var description: String { reason }
  }

  /// Why the file at `path` cannot be read, as every command says it after its name: `no such file
  /// or folder`, `is a folder, not a file`, or `cannot read it (Permission denied)`.
  public static func whyUnreadable(_ path: String) -> String {
    var isFolder: ObjCBool = false
    if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
      return whyMissing(path)
    }
    if isFolder.boolValue { return "is a folder, not a file" }
    return "cannot read it" + (access(path, R_OK) == 0 ? "" : " (" + String(cString: strerror(errno)) + ")")
  }

  /// Why no file was found at `path`: `no such file or folder`, or, when the path holds U+FFFD, that
  /// its name holds bytes that are not UTF-8. A folder's names and the command line's arguments
  /// are read as UTF-8, other bytes becoming U+FFFD, which names no file (`a\xff.jsonl` given to
  /// `--source` was said not to exist).
  public static func whyMissing(_ path: String) -> String {
    path.unicodeScalars.contains("\u{FFFD}")
      ? "no such file or folder: if its name holds bytes that are not UTF-8 (shown as \u{FFFD}), iotrules cannot name it: rename it"
      : "no such file or folder"
  }

  /// What a file of `mode` is when it is not a regular file ("a folder", "a named pipe", "a socket",
  /// "a device"); nil for a regular file.
  public static func kind(ofMode mode: mode_t) -> String? {
    switch mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return "a folder"
    case S_IFIFO: return "a named pipe"
    case S_IFSOCK: return "a socket"
    default: return "a device"
    }
  }

  /// The bytes of the regular file at `path` (symbolic links followed), or why they cannot be read.
  /// A file larger than `limit` bytes is refused by its size before it is read.
  public static func read(_ path: String, limit: Int = .max) -> Result<[UInt8], Unreadable> {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else {
      let code = errno
      // A socket cannot be opened at all (ENXIO, "No such device or address"): say what it is.
      var info = stat()
      if code == ENXIO, stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK {
        return .failure(Unreadable(reason: "not a regular file (a socket)"))
      }
      if code == ENOENT, path.unicodeScalars.contains("\u{FFFD}") {
        return .failure(Unreadable(reason: whyMissing(path)))
      }
      return .failure(Unreadable(reason: String(cString: strerror(code))))
    }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
      return .failure(Unreadable(reason: String(cString: strerror(errno))))
    }
    if let kind = kind(ofMode: info.st_mode) {
      return .failure(
        Unreadable(reason: kind == "a folder" ? "it is a folder" : "not a regular file (\(kind))"))
    }
    if Int(info.st_size) > limit {
      return .failure(
        Unreadable(
          reason: "the file is \(info.st_size) bytes, more than \(limit)", tooLarge: true,
          size: Int(info.st_size)))
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(info.st_size))
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        return .failure(Unreadable(reason: String(cString: strerror(errno))))
      }
      if count == 0 { return .success(bytes) }
      // A file that grows while it is read is cut at the limit and refused, not read without end.
      if bytes.count + count > limit {
        return .failure(Unreadable(reason: "the file is larger than \(limit) bytes", tooLarge: true))
      }
      bytes += buffer[0..<count]
    }
  }
}

/// A file's device and inode: the same file under any of its names, and not the same as another
/// file put at its name (a rotated log, a restored database, a replaced archive file).
public struct FileIdentity: Hashable, Sendable {
  /// The device the file is on.
  public var device: UInt64
  /// Its inode on that device.
  public var inode: UInt64

  /// The identity of the file `inode` on `device`.
  public init(device: UInt64, inode: UInt64) {
    self.device = device
    self.inode = inode
  }

  /// The identity of the file `stat` or `fstat` described.
  public init(_ info: stat) {
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
  }

  /// The identity of the file open as `descriptor`, or nil when `fstat` fails.
  public init?(descriptor: Int32) {
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { return nil }
    self.init(info)
  }

  /// The identity of the file at `path` (links followed), or nil when there is none.
  public init?(path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    self.init(info)
  }
}
