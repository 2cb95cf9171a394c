import Foundation
import RulesEngine
import Synchronization

/// The last error path: error records appended as JSON lines to one file, each record fsynced
/// before its write returns (those that arrive together share an fsync). A file moved away or
/// deleted meanwhile is followed by a new one at the same path.
public final class DeadLetterFile: DeadLetterSink {
  /// The file.
  public let path: String
  let descriptor = Mutex<Int32>(-1)
  /// The system calls used (tests put failing ones here).
  let operations = Mutex(FileOperations.system)

  /// Creates the sink; the file is opened (and its folder created) on the first write.
  public init(path: String) { self.path = path }

  /// The default path: `dead-letter.jsonl` in the working directory.
  public static let defaultPath = "dead-letter.jsonl"

  /// Where the writes run, one at a time: a thread of its own, so that a burst of failures waiting
  /// on the fsyncs does not hold Swift's concurrency threads (two on a two-core machine).
  private let queue = DispatchQueue(label: "iotrules.dead-letter")

  /// Checks now that the file can take records (an existing file is opened; for a new one, its
  /// folder is made and must be writable), so that a bad path is said at start, before any message
  /// depends on it. No file is created until a record comes.
  public func prepare() throws(ActionError) {
    var info = stat()
    if stat(path, &info) == 0 {
      if info.st_mode & S_IFMT == S_IFDIR {
        throw ActionError(.permanent, "cannot use dead-letter file \(path): it is a directory")
      }
      try descriptor.withLock { fd throws(ActionError) in
        guard fd < 0 else { return }
        fd = try openForRecords(O_WRONLY | O_APPEND | O_CLOEXEC, operations: operations.withLock { $0 })
      }
      return
    }
    try FileSystem.makeParentFolders(of: path)
    let folder = (path as NSString).deletingLastPathComponent
    if access(folder.isEmpty ? "." : folder, W_OK) != 0 {
      throw FileSystem.error(errno, "cannot create dead-letter file \(path)")
    }
  }

  /// Records waiting for the writing thread: each caller's lines, with the caller waiting for
  /// their outcomes.
  struct Waiting {
    var requests: [(lines: [[UInt8]], caller: CheckedContinuation<[ActionError?], Never>)] = []
    /// Whether a drain is scheduled or running on `queue`.
    var draining = false
  }
  let waiting = Mutex(Waiting())

  /// Appends one record and fsyncs. Records that arrive while an fsync runs are written together
  /// after it and share the next one (a failing action sends a record per message, and an fsync
  /// each held the whole pipeline to a few hundred messages a second).
  public func write(_ record: ErrorRecord) async throws {
    if let error = await written([Array((record.json + "\n").utf8)])[0] { throw error }
  }

  /// Appends `records` in their order and fsyncs, sharing the fsync with whatever else waits; when
  /// that fails, each record is written alone, so that one that cannot be (too large for the
  /// space left) fails by itself.
  public func write(_ records: [ErrorRecord]) async -> [(any Error)?] {
    if records.isEmpty { return [] }
    return await written(records.map { Array(($0.json + "\n").utf8) })
  }

  /// Queues `lines` for the writing thread and waits for their outcomes.
  private func written(_ lines: [[UInt8]]) async -> [ActionError?] {
    await withCheckedContinuation { (caller: CheckedContinuation<[ActionError?], Never>) in
      let starts = waiting.withLock { waiting in
        waiting.requests.append((lines, caller))
        defer { waiting.draining = true }
        return !waiting.draining
      }
      if starts { queue.async { self.drain() } }
    }
  }

  /// Writes what waits, a group at a time, until nothing does (on `queue`).
  private func drain() {
    while true {
      let requests = waiting.withLock { waiting in
        defer { waiting = Waiting(draining: !waiting.requests.isEmpty) }
        return waiting.requests
      }
      if requests.isEmpty { return }
      let operations = self.operations.withLock { $0 }
      let lines = requests.flatMap(\.lines)
      let (written, failure) = append(lines, operations: operations)
      var first = 0
      for request in requests {
        defer { first += request.lines.count }
        guard let failure else {
          request.caller.resume(returning: Array(repeating: nil, count: request.lines.count))
          continue
        }
        // Lines a pipe's reader took before the failure were delivered; the rest of a group that
        // failed is written record by record, so that one that cannot be (too large for the
        // space left) fails by itself. Once one of a caller's records fails, its later ones are
        // not tried: they would reach the file before it (the caller writes them after it).
        var outcomes: [ActionError?] = []
        var failed: ActionError?
        for (offset, line) in request.lines.enumerated() {
          if first + offset < written {
            outcomes.append(nil)
          } else if let failed {
            outcomes.append(failed)
          } else if lines.count == 1 {
            failed = failure
            outcomes.append(failure)
          } else {
            failed = append([line], operations: operations).error
            outcomes.append(failed)
          }
        }
        request.caller.resume(returning: outcomes)
      }
    }
  }

  /// Appends `lines` and fsyncs once (on `queue`): how many lines were written, all of them unless
  /// something failed. On a regular file a failure leaves none of them (the file is cut back to
  /// its size before them): 0; on a pipe, the lines before the one whose write failed were read.
  private func append(_ lines: [[UInt8]], operations: FileOperations) -> (written: Int, error: ActionError?) {
    do throws(ActionError) {
      return try descriptor.withLock { fd throws(ActionError) in
        // The file may have been moved away or deleted since it was opened (logrotate without
        // copytruncate, an operator's `rm`): records written to the old file would be lost from
        // view, so a descriptor that no longer names the file at `path` is closed and the path
        // opened anew.
        if fd >= 0, FileArchiveAction.currentState(of: fd, at: path) == nil {
          close(fd)
          fd = -1
        }
        if fd < 0 {
          let folders = try FileSystem.makeParentFolders(of: path)
          var info = stat()
          let existed = stat(path, &info) == 0
          fd = try openForRecords(O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, operations: operations)
          // A new file (and new folders) must reach the disk with the record's fsync.
          try FileSystem.syncEntries(of: path, created: folders, existed: existed, sync: operations.sync)
        } else {
          // Another writer sharing the file (a second daemon killed while appending) may have left
          // the part of a line since: ended, as at opening, or the next record was glued to it (a
          // look without the lock when the line is whole).
          try FileSystem.endCutLine(fd, path: path, operations: operations)
        }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
          // A pipe or a terminal (`--dead-letter /dev/stdout`): a line at a time, since what its
          // reader took cannot be taken back; nothing to sync.
          for (index, line) in lines.enumerated() {
            do throws(ActionError) {
              try FileSystem.writeAll(fd, line, path: path, operations: operations)
            } catch {
              return (index, error)
            }
          }
          return (lines.count, nil)
        }
        // A failed write leaves no part of the records behind: the retry writes them whole.
        let sizeBefore = lseek(fd, 0, SEEK_END)
        var buffer: [UInt8] = []
        for (index, line) in lines.enumerated() {
          buffer += line
          guard buffer.count >= Self.writeSize || index == lines.count - 1 else { continue }
          do throws(ActionError) {
            try FileSystem.writeAll(fd, buffer, path: path, operations: operations)
          } catch {
            if sizeBefore >= 0 { _ = ftruncate(fd, sizeBefore) }
            throw error
          }
          buffer.removeAll(keepingCapacity: true)
        }
        if operations.sync(fd) != 0 {
          let code = errno
          // A record whose fsync failed does not stay: the retry writes it again, and a copy left
          // here could reach the disk after all (a consumer would replay it twice).
          if sizeBefore >= 0 { _ = ftruncate(fd, sizeBefore) }
          throw FileSystem.error(code, "fsync \(path)")
        }
        return (lines.count, nil)
      }
    } catch {
      return (0, error)
    }
  }

  /// The most bytes of records one `write` call takes.
  static let writeSize = 1 << 20

  /// The file at `path` opened with `flags` to append records, a line a killed process left
  /// unfinished ended first (``FileSystem/endCutLine(_:path:operations:)``); nothing stays open when
  /// either fails, so the next record opens it again.
  private func openForRecords(_ flags: Int32, operations: FileOperations) throws(ActionError) -> Int32 {
    let fd = Self.openWithoutWaiting(path, flags)
    if fd < 0 { throw FileSystem.error(errno, "cannot open dead-letter file \(path)") }
    do throws(ActionError) {
      try FileSystem.endCutLine(fd, path: path, operations: operations)
    } catch {
      close(fd)
      throw error
    }
    return fd
  }

  /// Opens `path` without waiting for a FIFO's reader (that open would block start-up, or the
  /// writing thread, with no word: a FIFO without a reader fails with ENXIO instead), then makes
  /// the descriptor blocking again for the writes.
  static func openWithoutWaiting(_ path: String, _ flags: Int32) -> Int32 {
    // Not readable by other users (the records hold whole payloads): its group's, as a log
    // shipper's may be, under the umask.
    let fd = open(path, flags | O_NONBLOCK, 0o640)
    if fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
    return fd
  }

  deinit {
    let fd = descriptor.withLock { $0 }
    if fd >= 0 { close(fd) }
  }
}

/// The system calls through which the file actions write and sync.
final class FileOperations: Sendable {
  /// `write(2)`: bytes written, or -1 with errno set.
  let write: @Sendable (Int32, UnsafeRawPointer, Int) -> Int
  /// `fsync(2)`: 0, or -1 with errno set.
  let sync: @Sendable (Int32) -> Int32

  /// Operations made of these two calls.
  init(
    write: @escaping @Sendable (Int32, UnsafeRawPointer, Int) -> Int,
    sync: @escaping @Sendable (Int32) -> Int32
  ) {
    self.write = write
    self.sync = sync
  }

  /// The real ones.
  static let system = FileOperations(
    write: { descriptor, bytes, count in Glibc.write(descriptor, bytes, count) },
    sync: { descriptor in fsync(descriptor) })
}

/// POSIX helpers shared by the file actions.
enum FileSystem {
  /// An `ActionError` for `code`: permanent where trying again cannot help.
  static func error(_ code: Int32, _ what: String) -> ActionError {
    // EFBIG: past the file size limit (RLIMIT_FSIZE, the file system's largest file), which no
    // retry of the same write passes.
    let permanent: Set<Int32> = [
      EACCES, EPERM, EROFS, ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP, EEXIST, EINVAL, EFBIG,
    ]
    var error = ActionError(
      permanent.contains(code) ? .permanent : .transient, "\(what): \(String(cString: strerror(code)))")
    error.code = code
    return error
  }

  /// Creates the folders above `path`; returns those it created, outermost first.
  @discardableResult
  static func makeParentFolders(of path: String) throws(ActionError) -> [String] {
    let folder = Self.folder(of: path)
    if folder == "." || folder == "/" { return [] }
    var created: [String] = []
    try makeFolders(folder, created: &created)
    return created
  }

  static func makeFolders(_ folder: String) throws(ActionError) {
    var created: [String] = []
    try makeFolders(folder, created: &created)
  }

  static func makeFolders(_ folder: String, created: inout [String]) throws(ActionError) {
    var info = stat()
    if stat(folder, &info) == 0 {
      if info.st_mode & S_IFMT == S_IFDIR { return }
      throw error(ENOTDIR, "cannot create folder \(folder)")
    }
    let parent = Self.folder(of: folder)
    if parent != "." && parent != "/" { try makeFolders(parent, created: &created) }
    if mkdir(folder, 0o755) != 0 {
      if errno != EEXIST { throw error(errno, "cannot create folder \(folder)") }
    } else {
      created.append(folder)
    }
  }

  /// Why `path` cannot take a regular file as things are now, or nil: a folder, a device or a pipe
  /// there (`is a device, not NOUN`), or what ``folderProblem(_:)`` says of its folder. Said by the
  /// file actions when a rule loads, so `check` catches what every write would fail on.
  /// Without `followsLinks` (the archive opens with `O_NOFOLLOW`), a symbolic link there is one.
  static func fileProblem(_ path: String, noun: String, followsLinks: Bool = true) -> String? {
    var info = stat()
    if !followsLinks, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
      return "is a symbolic link, which is not followed: not \(noun)"
    }
    if stat(path, &info) == 0 {
      guard let kind = RegularFile.kind(ofMode: info.st_mode) else { return nil }
      return "is \(kind), not \(noun)"
    }
    return folderProblem(folder(of: path))
  }

  /// Why `folder` cannot be a folder as things are now, or nil: the nearest of it and the folders
  /// above it that exists is something else (`cannot be made: 'rules.json' is a file, not a
  /// folder`). Missing folders are fine: they are made.
  static func folderProblem(_ folder: String) -> String? {
    // Bytes: a `/` followed by a combining mark is no `/` Character.
    var current = Array(folder.utf8)[...]
    var info = stat()
    while !current.isEmpty {
      let path = String(decoding: current, as: UTF8.self)
      if stat(path, &info) == 0 {
        let kind = RegularFile.kind(ofMode: info.st_mode)
        if kind == "a folder" { return nil }
        return "cannot be made: '\(path)' is \(kind ?? "a file"), not a folder"
      }
      guard let slash = current.lastIndex(of: UInt8(ascii: "/")) else { break }
      current = current[..<slash]
    }
    return nil
  }

  /// `path` if it exists, else the nearest folder above it that does ("/" or "." at the top): where
  /// the missing folders of `path` would be made.
  static func nearestExisting(_ path: String) -> String {
    var current = path
    while access(current, F_OK) != 0, current != "/", current != "." { current = folder(of: current) }
    return current
  }

  /// The folder holding `path` ("." for a bare name).
  static func folder(of path: String) -> String {
    // The last `/` byte: a `/` followed by a combining mark is no `/` Character.
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
    return slash == path.utf8.startIndex ? "/" : String(decoding: path.utf8[..<slash], as: UTF8.self)
  }

  /// The folders still to fsync for a file whose earlier fsync of them failed, by the file: its
  /// next open (a retry, when the file exists by then) syncs them again before any line of it is
  /// acknowledged.
  static let owedFolderSyncs = Mutex<[String: [String]]>([:])

  /// Makes the entries of a file just opened durable: when it is new, fsyncs the folders holding it
  /// and the `created` folders (a new name is durable only once its folder is); also when an earlier
  /// attempt's fsync of them failed.
  static func syncEntries(
    of path: String, created: [String], existed: Bool, sync: @Sendable (Int32) -> Int32
  ) throws(ActionError) {
    let owed = owedFolderSyncs.withLock { $0[path] }
    guard !existed || owed != nil else { return }
    let paths = (owed ?? []) + created + [path]
    do {
      try syncFolders(holding: paths, sync: sync)
    } catch {
      owedFolderSyncs.withLock { $0[path] = paths }
      throw error
    }
    if owed != nil { owedFolderSyncs.withLock { $0[path] = nil } }
  }

  /// Fsyncs the folders holding `paths`: a file created or renamed is durable only once its
  /// folder's entry is (POSIX; ext4 and XFS commit it with the folder's fsync). A file system
  /// that cannot fsync a folder (EINVAL) is left to itself.
  static func syncFolders(
    holding paths: [String], sync: @Sendable (Int32) -> Int32 = FileOperations.system.sync
  ) throws(ActionError) {
    var done: Set<String> = []
    for path in paths {
      let folder = folder(of: path)
      guard done.insert(folder).inserted else { continue }
      let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
      if fd < 0 { throw error(errno, "cannot open folder \(folder) to fsync it") }
      defer { close(fd) }
      if sync(fd) != 0 && errno != EINVAL { throw error(errno, "fsync folder \(folder)") }
    }
  }

  /// When the file open as `fd` ends in the part of a line, a descriptor reading it (the caller
  /// closes it) and its size; nil when it is empty, ends in a line break, or `path` (through which
  /// it is read: `fd` writes only) names another file now.
  static func cutLine(of fd: Int32, path: String) -> (reader: Int32, size: Int)? {
    var written = stat()
    guard fstat(fd, &written) == 0, written.st_mode & S_IFMT == S_IFREG, written.st_size > 0 else {
      return nil
    }
    let reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard reader >= 0 else { return nil }
    var read = stat()
    var last: UInt8 = 0
    guard fstat(reader, &read) == 0, FileIdentity(read) == FileIdentity(written),
      pread(reader, &last, 1, read.st_size - 1) == 1, last != 0x0A
    else {
      close(reader)
      return nil
    }
    return (reader, Int(read.st_size))
  }

  /// Ends a line a killed process left unfinished. When the regular file `fd` appends to (just
  /// opened at `path`) is not empty and its last byte is no newline (a kill -9 in the middle of a
  /// write leaves part of a line), a newline is appended, so the next line starts on its own
  /// instead of being glued to the part, which a line reader would refuse along with it, and a
  /// warning names the file and the part's offset and length. Nothing
  /// is cut: the part stays, a line of its own (its message was not acknowledged: a replay or Kafka
  /// delivers it again; MQTT had its PUBACK already). A writer that appends one line in several
  /// writes could have its line split by this newline; the daemon writes each line in one.
  static func endCutLine(_ fd: Int32, path: String, operations: FileOperations = .system) throws(ActionError)
  {
    // Under the file's lock, which every append holds: several daemons may append to one file,
    // and another's line being written now looked cut (a whole record was said to be a part, and
    // a blank line followed it). One that holds the lock longer is writing: a line a killed
    // process left is seen once no one holds it.
    // (A file system without locks, NFS mounted `nolock`, is checked without one, as appends are.)
    // Most often the last line is whole: seen without the lock first (the file may be shared, and
    // this is asked before every batch that finds it grown by another).
    guard let unlocked = cutLine(of: fd, path: path) else { return }
    close(unlocked.reader)
    let locked = lock(fd)
    if !locked, errno == EWOULDBLOCK || errno == EINTR { return }
    defer { if locked { flock(fd, LOCK_UN) } }
    guard let (reader, size) = cutLine(of: fd, path: path) else { return }
    defer { close(reader) }
    do {
      try writeAll(fd, [0x0A], path: path, operations: operations)
    } catch {
      // Said as what it is: the next line would be glued to the part, so nothing is written here.
      var failure = error
      failure.message =
        "\(path) ends in the part of a line a write cut short (a process killed while writing, a full disk), and ending that line failed: \(error.message)"
      throw failure
    }
    // Said once, where the part is, so that whoever reads the file knows that line is no record.
    let start = lineStart(reader, before: size)
    FileArchiveAction.logger.warning(
      "\(path): its last line had no line break, the part of a line a write cut short (a process killed while writing, a full disk): ended it, so the next line starts its own; that line is no whole record",
      // Numbers always (a JSON log's field keeps one type): the part's offset and length when its
      // start was found, else how far back was searched for it.
      metadata: start.map {
        [
          "file": "\(path)", "offset": .stringConvertible($0),
          "bytes": .stringConvertible(size - $0),
        ]
      } ?? ["file": "\(path)", "searchedBytes": .stringConvertible(lineSearchLimit)])
  }

  /// How far back ``lineStart(_:before:)`` looks for a line break.
  static let lineSearchLimit = 16 << 20

  /// How long an append waits at most for another writer's `flock` on its file.
  static let lockWaitMs = 20

  /// Takes `fd`'s `flock` without blocking, trying for ``lockWaitMs`` at most; whether it did.
  static func lock(_ fd: Int32) -> Bool {
    for attempt in 0...lockWaitMs {
      if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
      guard errno == EWOULDBLOCK || errno == EINTR else { return false }
      if attempt < lockWaitMs { usleep(1_000) }
    }
    return false
  }

  /// The offset where the line that ends at `end` starts (just past the line break before it, or
  /// 0), looking back at most ``lineSearchLimit`` bytes; nil when it starts before that or a
  /// read fails.
  static func lineStart(_ fd: Int32, before end: Int) -> Int? {
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    var position = end
    while position > 0, end - position < lineSearchLimit {
      let count = min(buffer.count, position)
      let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(position - count)) }
      guard got == count else { return nil }
      if let index = buffer[..<count].lastIndex(of: 0x0A) { return position - count + index + 1 }
      position -= count
    }
    return position == 0 ? 0 : nil
  }

  /// Appends `bytes` to the end of `fd` (opened with O_APPEND). When a write fails partway (ENOSPC,
  /// EIO), the file is cut back to its size before the call, so no torn line stays behind for the
  /// retry to append after. The file is locked (`flock`) meanwhile when it can be within
  /// ``lockWaitMs``, so that the size before and the cut are this write's own when several
  /// daemons append to one file (each holds it for a write): another's append between them made
  /// the cut miss the torn part, and the next line was glued onto it. A lock another program
  /// keeps longer is not waited for (waiting held every archive action and the stop): the write
  /// goes on without it.
  static func writeAll(
    _ fd: Int32, _ bytes: [UInt8], path: String, operations: FileOperations = .system
  ) throws(ActionError) {
    let locked = lock(fd)
    defer { if locked { flock(fd, LOCK_UN) } }
    let sizeBefore = lseek(fd, 0, SEEK_END)
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeBytes {
        operations.write(fd, $0.baseAddress! + offset, $0.count - offset)
      }
      if written < 0 {
        let code = errno
        if code == EINTR { continue }
        if offset > 0 && sizeBefore >= 0 { _ = ftruncate(fd, sizeBefore) }
        throw error(code, "write \(path)")
      }
      offset += written
    }
  }
}
