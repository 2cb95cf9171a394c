import Foundation
import IoTSQL
import RulesEngine
import Synchronization

/// Replays JSON lines, one message each: `{"topic": "...", "payload": <JSON> | "payload_base64":
/// "...", "clientId": "...", "timestamp": epochMs}`, from a file or standard input.
///
/// A malformed line is reported (with its line number) through `onMalformed` and counted; it does not
/// stop the replay. At the end of the input the source returns (a regular file ends where it ended
/// when the replay began), unless `follow` is set: then it waits for more lines until cancelled.
public struct ReplaySource: MessageSource {
  /// Where lines come from.
  public enum Input: Sendable, Equatable {
    /// A file.
    case file(String)
    /// Standard input.
    case standardInput

    /// Its name in origins and messages: the file's path, or `stdin`.
    public var name: String {
      switch self {
      case .file(let path): path
      case .standardInput: "stdin"
      }
    }
  }

  /// Counts of one replay.
  public struct Counts: Sendable, Equatable {
    /// Lines read (blank lines excluded).
    public var lines = 0
    /// Messages delivered.
    public var delivered = 0
    /// Malformed lines.
    public var malformed = 0
    /// Messages acknowledged `.done`.
    public var acknowledged = 0
    /// Messages acknowledged `.failed`.
    public var failed = 0

    /// Creates counts (zero by default).
    public init(
      lines: Int = 0, delivered: Int = 0, malformed: Int = 0, acknowledged: Int = 0, failed: Int = 0
    ) {
      self.lines = lines
      self.delivered = delivered
      self.malformed = malformed
      self.acknowledged = acknowledged
      self.failed = failed
    }
  }

  /// The input.
  public let input: Input
  /// Keep reading at the end of the input.
  public let follow: Bool
  /// Gives `timestamp()` when a line has no `timestamp`.
  public let clock: any EngineClock
  /// Told about each malformed line: (line number, message).
  public let onMalformed: @Sendable (Int, String) -> Void
  /// Told what is worth a warning but is no malformed line: a followed file truncated or replaced,
  /// a stop before the end of a line.
  public let onNotice: @Sendable (String) -> Void
  let counter: CountsBox
  /// Every message's acknowledgement: made once, not a closure context per message.
  let acknowledge: @Sendable (Acknowledgement) -> Void

  final class CountsBox: Sendable {
    let counts = Mutex(Counts())
  }

  /// The longest line taken, in bytes; a longer line is reported as malformed and skipped, so a
  /// stream without newlines (a binary file by mistake, `/dev/zero`) cannot grow memory unboundedly.
  public let maxLineBytes: Int

  /// The default `maxLineBytes`: 24 MiB, far above AWS IoT's 128 KiB payload limit, and room for
  /// the error record of a 16 MiB payload, whose base64 is a third longer (records of payloads
  /// from 12.6 MB up were skipped as too long: the message dropped out of its replay).
  public static let defaultMaxLineBytes = 24 << 20

  /// How long ago a followed file renamed away must have been last written before the file
  /// created at its name is read, in milliseconds: its writer may still append to it until it
  /// reopens its file (logrotate's `postrotate` signal; a partly written line is finished there).
  /// Default 5 s, Fluent Bit's `rotate_wait`, but counted from the last write, not the rotation.
  public let rotationQuietMs: Int

  /// The default `rotationQuietMs`.
  public static let defaultRotationQuietMs = 5_000

  /// Creates a source.
  public init(
    input: Input, follow: Bool = false, clock: any EngineClock, maxLineBytes: Int = Self.defaultMaxLineBytes,
    rotationQuietMs: Int = Self.defaultRotationQuietMs,
    onMalformed: @escaping @Sendable (Int, String) -> Void = { _, _ in },
    onNotice: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.rotationQuietMs = max(0, rotationQuietMs)
    self.onNotice = onNotice
    self.input = input
    self.maxLineBytes = max(1, maxLineBytes)
    self.follow = follow
    self.clock = clock
    self.onMalformed = onMalformed
    let counter = CountsBox()
    self.counter = counter
    self.acknowledge = { outcome in
      counter.counts.withLock { counts in
        if outcome == .done { counts.acknowledged += 1 } else { counts.failed += 1 }
      }
    }
  }

  /// Parses `--source` text: `file:PATH` or `-`.
  public static func input(parsing text: String) -> Input? {
    if text == "-" { return .standardInput }
    if text.hasPrefix("file:") && text.count > 5 { return .file(String(text.dropFirst(5))) }
    return nil
  }

  /// The counts so far.
  public var currentCounts: Counts { counter.counts.withLock { $0 } }

  /// The name used in message origins.
  var name: String { input.name }

  /// Reads lines and delivers messages until the input ends (or, with `follow`, until cancelled).
  public func run(deliver: @escaping @Sendable (Message) async -> Void) async throws {
    try await run(deliverBatch: { messages, _ in
      for message in messages { await deliver(message) }
      return messages.count
    })
  }

  /// Reads lines into `intake`, the messages of each block read handed over together.
  public func run(intake: MessageIntake) async throws {
    try await run(deliverBatch: intake.deliverBatch, health: intake.health)
  }

  /// The most messages handed over at once.
  static let maxBatch = 256

  /// Reads lines and delivers the messages of each block read (up to `maxBatch` at a time) in order.
  func run(deliverBatch: @Sendable ([Message], Bool) async -> Int, health: Health? = nil) async throws {
    var fd: Int32
    switch input {
    case .file(let path):
      // Non-blocking: a FIFO's open would otherwise wait for a writer, deaf to SIGTERM. The reads
      // wait in `waitForInput` instead, which a stop ends (and which waits for a FIFO's first writer).
      fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
      // Kept at once: any call after the open may change `errno`.
      var openErrno = errno
      if fd < 0, openErrno == ENOENT, follow {
        // Followed as `tail -F` follows a name: a file not there yet is waited for (it was exit
        // 74, which a service manager's restarts turned into a loop until the writer began).
        onNotice("\(path): no such file yet; waiting for it to appear (looked for ten times a second)")
        // Not ready meanwhile (`/readyz`), as a source whose broker is away.
        let component = "replay source \(path)"
        health?.report(component, "waiting for \(path) to appear (--follow)")
        defer { health?.clear(component) }
        while fd < 0, openErrno == ENOENT {
          try? await Task.sleep(nanoseconds: 100_000_000)
          if Task.isCancelled {
            onNotice("\(path) never appeared; nothing was read")
            return
          }
          fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
          openErrno = errno
        }
        if fd >= 0 { onNotice("\(path) has appeared; following it") }
      }
      if fd < 0 {
        // Said as every command says it (`F: no such file or folder`).
        let why =
          openErrno == ENOENT
          ? RegularFile.whyMissing(path) : "cannot open it (\(String(cString: strerror(openErrno))))"
        throw ReplayError(message: "\(path): \(why)")
      }
    case .standardInput:
      fd = 0
    }
    defer { if fd != 0 { close(fd) } }
    var info = stat()
    // A regular file can be read again from any line: once the run is cancelled (SIGTERM), the
    // lines read but not handed over yet stay unprocessed, and the notice says from which line to
    // run again, so a stop waits for what is in flight, not for the rest of a 64 KiB block.
    let rereadable = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    // Standard input is followed only when it is a regular file: the end of a pipe (or a terminal's
    // Ctrl-D) is final, as `tail -f` does on a pipe.
    var follows = follow
    if follow, case .standardInput = input { follows = rereadable }
    // A regular file replayed to its end is read as far as it reached when the replay began: lines
    // appended since (an error action of these rules writing records to the file being replayed)
    // are not read in the same run, which would take them again without end while they fail.
    var unread: Int? = nil
    if rereadable && !follows {
      let position = lseek(fd, 0, SEEK_CUR)
      unread = max(Int(info.st_size) - Int(max(position, 0)), 0)
    }
    // Bytes read from the file open now: a file shorter than that was truncated.
    var offset = 0
    // A replacement that could not be opened was said already.
    var unopenable = false
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var pending: [UInt8] = []
    var skippingLongLine = false
    var lineNumber = 0
    // One view for every line: reading a line allocates none of its arrays.
    var view = PayloadView(kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)
    var batch: [Message] = []
    batch.reserveCapacity(Self.maxBatch)
    // The line of the first message the engine no longer took once stopping (then nothing more is
    // read or handed over).
    var stoppedBefore: Int?
    // The last bytes read before `offset`: a file truncated and written past `offset` again between
    // two end-of-file polls is told by them no longer being there.
    var tail: [UInt8] = []
    // Set after an end-of-file poll: the file is looked at before it is read again.
    var polled = false
    // The files found at the followed path after the one being read (renamed away), opened when
    // first seen, oldest first: a file rotated on again before this reader reached it (behind a
    // backlog) is still read, in order, where only the newest was. Looked for ten times a second
    // while following, whatever the reader is doing (a slow action holds it in a delivery).
    let successors = Successors(reading: fd, name: name, onNotice: onNotice)
    var watcher: Task<Void, Never>?
    if follows, case .file(let path) = input {
      watcher = Task {
        while !Task.isCancelled {
          successors.look(at: path)
          try? await Task.sleep(nanoseconds: 100_000_000)
        }
      }
    }
    defer {
      watcher?.cancel()
      successors.closeAll()
    }
    // Since when this reader has waited at the end of a file renamed away (monotonic
    // nanoseconds), and whether a wait that long was said.
    var waitingSince: UInt64?
    var longWaitSaid = false
    while !Task.isCancelled {
      guard await Self.waitForInput(fd) else { break }
      var change: FileChange?
      if polled {
        polled = false
        switch input {
        case .file(let path): change = Self.followedFileChange(path, fd: fd, offset: offset, tail: tail)
        case .standardInput:
          // A file as standard input (`--source - --follow < f`): truncated in place, it is read
          // again from its start, as `tail -f` does (it was read on from the old offset: lines lost,
          // a fragment said malformed). No name to be replaced under.
          change = Self.followedFileChange(nil, fd: fd, offset: Int(lseek(fd, 0, SEEK_CUR)), tail: tail)
        }
      }
      var count = 0
      // A file renamed away is read to its end first (what was appended before the rename), as
      // `tail -F` does; a file truncated in place has no end of its own to read.
      if change == nil || change == .replaced, unread != 0 {
        let wanted = min(unread ?? buffer.count, buffer.count)
        count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, wanted) }
        if count < 0 {
          if errno == EINTR || errno == EAGAIN { continue }
          throw ReplayError(message: "read \(name): \(String(cString: strerror(errno)))")
        }
        if let left = unread { unread = left - count }
      }
      if count == 0 {
        if change == nil && !follows { break }
        if let change {
          if change == .replaced, case .file(let path) = input {
            // Renamed away: its writer may append to it still, until it reopens its file. Read on
            // until it was last written `rotationQuietMs` ago (a slow writer's lines written there
            // after the rename were lost); a file written long ago is left at once.
            let age = Self.millisecondsSinceWritten(fd)
            // (Looked at last: a failed open's errno is what the notice below says.)
            successors.look(at: path)
            if let age, age < rotationQuietMs {
              let now = clock.monotonicNanoseconds()
              let since = waitingSince ?? now
              waitingSince = since
              if !longWaitSaid, now &- since >= 30_000_000_000 {
                longWaitSaid = true
                onNotice(
                  "\(name): the file renamed away is still being written (its writer has not reopened the file at its name): the new file at \(name) is read once it has been left \(rotationQuietMs) ms"
                )
              }
              try? await Task.sleep(nanoseconds: 50_000_000)
              polled = true
              continue
            }
            waitingSince = nil
            longWaitSaid = false
            guard successors.count > 0 else {
              // Not readable (yet): said once, tried again at the pace of the end-of-file polls.
              if !unopenable {
                onNotice(
                  "\(name): the file was replaced under its name but cannot be opened: \(String(cString: strerror(errno)))"
                )
                unopenable = true
              }
              try? await Task.sleep(nanoseconds: 50_000_000)
              polled = true
              continue
            }
            unopenable = false
          }
          // As `tail -F`: a file truncated in place (logrotate's copytruncate) is read again from
          // its start, a file replaced under its name (renamed away, created anew) is opened anew.
          // A line cut off by the change never ends: said and counted, not taken half.
          if !pending.isEmpty {
            reportSkipped(
              lineNumber + 1,
              "\(change) with an incomplete line of \(pending.count) bytes"
                + (change == .replaced ? " at the end of the file renamed away" : "") + "; not processed")
            pending.removeAll()
          }
          skippingLongLine = false
          if change == .replaced, let next = successors.take() {
            close(fd)
            fd = next
          } else {
            lseek(fd, 0, SEEK_SET)
          }
          onNotice("\(name): \(change); reading it from its first line (line numbers start again at 1)")
          offset = 0
          tail.removeAll()
          lineNumber = 0
          continue
        }
        try? await Task.sleep(nanoseconds: 50_000_000)
        polled = true
        continue
      }
      offset += count
      if count >= Self.tailBytes {
        tail = Array(buffer[(count - Self.tailBytes)..<count])
      } else {
        tail.append(contentsOf: buffer[0..<count])
        if tail.count > Self.tailBytes { tail.removeFirst(tail.count - Self.tailBytes) }
      }
      var chunk = buffer[0..<count]
      if skippingLongLine {
        // The rest of an over-long line: drop it up to its newline.
        guard let newline = chunk.firstIndex(of: UInt8(ascii: "\n")) else { continue }
        skippingLongLine = false
        chunk = chunk[(newline + 1)...]
      }
      pending.append(contentsOf: chunk)
      var start = 0
      // Read from a pipe, every complete line already read is delivered, even once the task is
      // cancelled (SIGTERM): it could not be read again. The loop stops before the next read.
      var stopped = false
      while let newline = Self.newline(in: pending, from: start) {
        if rereadable && Task.isCancelled {
          stopped = true
          break
        }
        lineNumber += 1
        let malformed =
          newline - start > maxLineBytes
          ? "\(name):\(lineNumber): line longer than \(maxLineBytes) bytes (--max-line-bytes); skipped"
          : handle(
            Self.withoutByteOrderMark(pending[start..<newline]), lineNumber: lineNumber, view: &view,
            into: &batch)
        if malformed != nil || batch.count == Self.maxBatch {
          // The messages before a malformed line go first: stopped among them, it is not said.
          stoppedBefore = await deliver(&batch, deliverBatch, stopsWhenCancelled: rereadable)
          if stoppedBefore != nil { break }
        }
        if let malformed { reportMalformed(lineNumber, malformed) }
        start = newline + 1
      }
      if stoppedBefore == nil {
        stoppedBefore = await deliver(&batch, deliverBatch, stopsWhenCancelled: rereadable)
      }
      if stoppedBefore != nil { break }
      pending.removeFirst(start)
      if stopped { break }
      if pending.count > maxLineBytes {
        lineNumber += 1
        reportSkipped(lineNumber, "line longer than \(maxLineBytes) bytes (--max-line-bytes); skipped")
        pending.removeAll()
        skippingLongLine = true
      }
    }
    var now = stat()
    if let stoppedBefore {
      // Stopped with lines read that the engine no longer took (it was full): they were not
      // processed, and a replay from that line goes on where this one ended.
      onNotice(stoppedNotice("line \(stoppedBefore)", fd: fd, unreadFiles: successors.count))
      return
    }
    // Against the descriptor's position: `offset` counts bytes read, from wherever standard input
    // began (a shell that read its first line).
    if pending.isEmpty, rereadable, Task.isCancelled,
      unread.map({ $0 > 0 }) ?? (fstat(fd, &now) == 0 && Int(now.st_size) > Int(lseek(fd, 0, SEEK_CUR)))
        || successors.count > 0
    {
      // Stopped between two blocks, or while it waited for input, with the file not read to its
      // end: said as for a stop within a block (a script tells an incomplete replay by it).
      onNotice(stoppedNotice("line \(lineNumber + 1)", fd: fd, unreadFiles: successors.count))
    } else if !pending.isEmpty {
      if Task.isCancelled {
        // Stopped at a line, or mid-line: the rest of the line was not read (a file still has
        // it). Said, not dropped silently, and not malformed: the line may well be whole.
        let read =
          pending.contains(UInt8(ascii: "\n")) ? "" : " (\(pending.count) bytes of it read)"
        onNotice(
          stoppedNotice(
            "\(read.isEmpty ? "" : "the end of ")line \(lineNumber + 1)\(read)", fd: fd,
            unreadFiles: successors.count))
      } else {
        lineNumber += 1
        let malformed = handle(
          Self.withoutByteOrderMark(pending[...]), lineNumber: lineNumber, view: &view, into: &batch)
        _ = await deliver(&batch, deliverBatch)
        if let malformed { reportMalformed(lineNumber, malformed) }
      }
    }
  }

  /// `NAME: stopped before WHERE; that line and any after it were not processed`, for a script
  /// to run again from there. When the followed file read was renamed away meanwhile (logrotate's
  /// `create`, its backlog still being read), the line is of the file under its new name, found in
  /// its folder, and the file now at the path was not read: said so (it named the path, whose
  /// new file a replay from that line would have read, skipping the rest of the old one).
  func stoppedNotice(_ place: String, fd: Int32, unreadFiles: Int = 0) -> String {
    let notice = "\(name): stopped before \(place); that line and any after it were not processed"
    var read = stat()
    var named = stat()
    guard case .file(let path) = input, fstat(fd, &read) == 0, read.st_mode & S_IFMT == S_IFREG else {
      return notice
    }
    let hasNew = stat(path, &named) == 0
    if hasNew && named.st_ino == read.st_ino && named.st_dev == read.st_dev { return notice }
    // Its name now, looked for in its folder (logrotate renames within it).
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[...$0]) } ?? ""
    let renamed = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder))?
      .sorted()
      .map { folder + $0 }.first { candidate in
        var other = stat()
        return stat(candidate, &other) == 0 && other.st_ino == read.st_ino && other.st_dev == read.st_dev
      }
    return "\(name): stopped before \(place) of the file read, "
      + (renamed.map { "renamed since to \(RuleFile.escapedName($0))" }
        ?? "moved or removed since (not found in its folder)")
      + "; that line and any after it were not processed"
      + (hasNew ? ", nor any line of the new file at \(name)" : "")
      + (unreadFiles > 1
        ? ", nor any of the \(unreadFiles - 1) other file\(unreadFiles == 2 ? "" : "s") found at \(name) in between (rotated on since)"
        : "")
  }

  /// How long ago the file open as `fd` was last written, in milliseconds; nil when unknown.
  static func millisecondsSinceWritten(_ fd: Int32) -> Int? {
    var info = stat()
    var now = timespec()
    guard fstat(fd, &info) == 0, clock_gettime(CLOCK_REALTIME, &now) == 0 else { return nil }
    let seconds = Int(now.tv_sec) - Int(info.st_mtim.tv_sec)
    return seconds * 1_000 + (Int(now.tv_nsec) - Int(info.st_mtim.tv_nsec)) / 1_000_000
  }

  /// A line without the UTF-8 byte order mark Windows tools write at a file's start (it made the
  /// first message malformed), wherever it is: files joined with `cat` carry one at each join
  /// (such a line with a scalar payload was refused as missing its payload).
  static func withoutByteOrderMark(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    line.starts(with: [0xEF, 0xBB, 0xBF]) ? line.dropFirst(3) : line
  }

  /// Hands `batch` over (when not empty) and empties it. Stopping (`stopsWhenCancelled`: a file,
  /// which can be read again), the messages the engine no longer took are not counted as read:
  /// returns the line of the first of them, or nil when all were taken.
  func deliver(
    _ batch: inout [Message], _ deliverBatch: @Sendable ([Message], Bool) async -> Int,
    stopsWhenCancelled: Bool = false
  ) async -> Int? {
    guard !batch.isEmpty else { return nil }
    // Counted first, so that a summary taken once they are acknowledged includes them.
    counter.counts.withLock {
      $0.lines += batch.count
      $0.delivered += batch.count
    }
    let taken = await deliverBatch(batch, stopsWhenCancelled)
    defer { batch.removeAll(keepingCapacity: true) }
    guard taken < batch.count else { return nil }
    let left = batch.count - taken
    counter.counts.withLock {
      $0.lines -= left
      $0.delivered -= left
    }
    return batch[taken].originLine ?? 0
  }

  /// The files found at a followed path after the one being read, opened when first seen, oldest
  /// first (the reader and the task that watches the path share them).
  final class Successors: Sendable {
    /// The identity (device, inode) of the file read, and the successors' descriptors and
    /// identities.
    private let state:
      Mutex<(reading: FileIdentity?, files: [(fd: Int32, identity: FileIdentity)], closed: Bool)>

    /// The input's name, and where its notices go.
    let name: String
    let onNotice: @Sendable (String) -> Void
    /// The most files kept waiting: past them, a file found at the path is left for a later look
    /// (it is read if it is still there then).
    static let most = 32
    /// Said already: that the most were waiting, and each error number of a failed open.
    private let said = Mutex<Set<Int32>>([])

    init(reading fd: Int32, name: String, onNotice: @escaping @Sendable (String) -> Void) {
      state = Mutex((FileIdentity(descriptor: fd), [], false))
      self.name = name
      self.onNotice = onNotice
    }

    /// How many files wait.
    var count: Int { state.withLock { $0.files.count } }

    /// Says `text` once for `key`.
    private func sayOnce(_ key: Int32, _ text: String) {
      if said.withLock({ $0.insert(key).inserted }) { onNotice(text) }
    }

    /// Opens the file at `path` when it is none of those known (the one read, the successors).
    /// Under the lock, so that the reader's look and the watcher's keep the files in the order
    /// they were at the path.
    func look(at path: String) {
      state.withLock { state in
        func known(_ identity: FileIdentity) -> Bool {
          identity == state.reading || state.files.contains { $0.identity == identity }
        }
        // (After `closeAll`, a look still under way keeps nothing.)
        guard !state.closed, let named = FileIdentity(path: path), !known(named) else { return }
        guard state.files.count < Self.most else {
          sayOnce(
            -1,
            "\(name): \(Self.most) files rotated away wait to be read; a file that is at \(name) only while they wait is not read"
          )
          return
        }
        let newer = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard newer >= 0 else {
          // Unreadable for now (its mode, the descriptor limit): looked at again. Out of
          // descriptors is said here, once; the reader says any other reason when it needs the file.
          let code = errno
          if code == EMFILE || code == ENFILE {
            sayOnce(
              code,
              "\(name): a new file at its name cannot be opened yet (\(String(cString: strerror(code)))); tried again ten times a second"
            )
          }
          return
        }
        // What was opened, which may have been replaced again since the look.
        guard let opened = FileIdentity(descriptor: newer), !known(opened) else {
          close(newer)
          return
        }
        state.files.append((newer, opened))
      }
    }

    /// Takes the oldest successor: it is the file read from now on.
    func take() -> Int32? {
      state.withLock { state -> Int32? in
        guard !state.files.isEmpty else { return nil }
        let file = state.files.removeFirst()
        state.reading = file.identity
        return file.fd
      }
    }

    /// Closes every successor not taken; none is kept after.
    func closeAll() {
      let files = state.withLock { state in
        defer {
          state.files = []
          state.closed = true
        }
        return state.files
      }
      for file in files { close(file.fd) }
    }
  }

  /// What happened to a followed file at its end.
  enum FileChange: String, CustomStringConvertible {
    case truncated = "the file was truncated"
    case replaced = "the file was replaced under its name"
    var description: String { rawValue }
  }

  /// How many of the last bytes read a followed file is checked against (`tail`).
  static let tailBytes = 64

  /// Whether the file at `path`, read through `fd` up to `offset`, was replaced under its name (a
  /// different file is there now) or truncated; nil when neither (or when `path` is gone for now:
  /// the file renamed away and not yet created again). `tail` is the last bytes read before
  /// `offset`: when they are not there any more, the file was truncated and written again past
  /// `offset` since the last look (logrotate's copytruncate, then a burst of writes), which its
  /// size alone does not show. Without a `path` (standard input, a file with no name here), only
  /// a truncation is found.
  static func followedFileChange(_ path: String?, fd: Int32, offset: Int, tail: [UInt8] = []) -> FileChange? {
    var open = stat()
    var named = stat()
    // Only a regular file can be truncated or replaced: a FIFO's size is always 0.
    guard fstat(fd, &open) == 0, open.st_mode & S_IFMT == S_IFREG else { return nil }
    if let path, stat(path, &named) == 0 && (named.st_ino != open.st_ino || named.st_dev != open.st_dev) {
      return .replaced
    }
    if Int(open.st_size) < offset { return .truncated }
    guard !tail.isEmpty, offset >= tail.count else { return nil }
    var now = [UInt8](repeating: 0, count: tail.count)
    let count = now.withUnsafeMutableBytes {
      pread(fd, $0.baseAddress!, tail.count, off_t(offset - tail.count))
    }
    return count == tail.count && now == tail ? nil : .truncated
  }

  /// The index of the first `\n` of `bytes` at or after `start` (`memchr`: a line is found without
  /// a generic loop over its bytes).
  static func newline(in bytes: [UInt8], from start: Int) -> Int? {
    bytes.withUnsafeBufferPointer { buffer in
      guard start < buffer.count, let base = buffer.baseAddress,
        let found = memchr(base + start, 0x0A, buffer.count - start)
      else { return nil }
      return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }
  }

  /// Returns true once `fd` has input (or an end or error for `read` to report), false when the task
  /// is cancelled first. A silent pipe or terminal is polled every 10 ms without holding a thread, so
  /// SIGTERM stops a replay from standard input: a blocked `read` would never see the cancellation.
  static func waitForInput(_ fd: Int32) async -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while !Task.isCancelled {
      let ready = poll(&entry, 1, 0)
      if ready > 0 || (ready < 0 && errno != EINTR) { return true }
      if ready == 0 { try? await Task.sleep(nanoseconds: 10_000_000) }
    }
    return false
  }

  /// Counts line `lineNumber` as read and malformed, and says why it was not processed.
  func reportSkipped(_ lineNumber: Int, _ why: String) {
    reportMalformed(lineNumber, "\(name):\(lineNumber): \(why)")
  }

  /// Counts and reports a malformed line.
  func reportMalformed(_ lineNumber: Int, _ message: String) {
    counter.counts.withLock {
      $0.lines += 1
      $0.malformed += 1
    }
    onMalformed(lineNumber, message)
  }

  /// Parses one line into `batch`; returns why a malformed line is refused, not yet counted nor
  /// reported: the caller hands the messages before it over first, so that a stop among them
  /// leaves it unsaid (a stopped replay reported a line past the one it said it stopped before).
  func handle(
    _ line: ArraySlice<UInt8>, lineNumber: Int, view: inout PayloadView, into batch: inout [Message]
  ) -> String? {
    var line = line
    if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
    // Read where it lies in the read buffer: the line is not copied, only the payload taken from it.
    let result = line.withUnsafeBufferPointer { parse($0, lineNumber: lineNumber, view: &view) }
    switch result {
    case .success(let message):
      // Counted as read and delivered when the batch is handed over.
      batch.append(message)
      return nil
    case .failure(let error):
      return error.message
    }
  }

  /// The fields read from each line: topic, payload_base64, clientId, timestamp, payload; an
  /// error record's base64OriginalPayload and ruleName (a dead-letter file replays as it is); the
  /// message's MQTT 5 properties, mqtt_properties and user_properties, in the MQTT spool's shape;
  /// and an error record's receivedAt, the message's time.
  static let fieldPaths = PathTable(paths: [
    ["topic"], ["payload_base64"], ["clientId"], ["timestamp"], ["payload"], ["base64OriginalPayload"],
    ["ruleName"], ["mqtt_properties"], ["user_properties"], ["receivedAt"],
  ])

  /// The paths of ``fieldPaths`` a line may leave out (all but `topic` and `payload`).
  static let optionalFields = [1, 2, 3, 5, 6, 7, 8, 9]

  /// The paths of ``fieldPaths`` that hold a scalar, by name, with what they must be.
  static let scalarFields: [(index: Int, name: String, kind: String)] = [
    (1, "payload_base64", "a base64 string"), (2, "clientId", "a string"),
    (3, "timestamp", "whole epoch milliseconds"), (5, "base64OriginalPayload", "a base64 string"),
    (6, "ruleName", "a rule's name (a string)"), (9, "receivedAt", "whole epoch milliseconds"),
  ]

  /// The value at path `index` of the line: a scalar as read, a container parsed from its bytes.
  static func member(
    _ index: Int, of view: PayloadView, in bytes: UnsafeBufferPointer<UInt8>
  ) -> Value {
    guard let range = view.deferredRange(ofPath: index) else { return view.values[index] }
    return (try? JSONReader.parse(Array(UnsafeBufferPointer(rebasing: bytes[range])))) ?? .undefined
  }

  /// A line's `mqtt_properties` and `user_properties`, or why they are refused.
  static func properties(
    _ view: PayloadView, in bytes: UnsafeBufferPointer<UInt8>
  ) -> Result<(mqtt: [String: Value], user: [(key: String, value: String)]), ReplayError> {
    var mqtt: [String: Value] = [:]
    switch member(7, of: view, in: bytes) {
    case .undefined: break
    case .object(let named):
      for (key, value) in named.members {
        guard MQTTPublishProperties.names.contains(key) else {
          return .failure(
            ReplayError(
              message:
                "'mqtt_properties' holds content_type, format_indicator, response_topic and correlation_data, not '\(key)'"
            ))
        }
        if let problem = MQTTPublishProperties.problem(of: value, named: key, quote: "'") {
          return .failure(ReplayError(message: "'mqtt_properties.\(key)' \(problem)"))
        }
        mqtt[key] = value
      }
    default: return .failure(ReplayError(message: "'mqtt_properties' must be an object"))
    }
    let written = member(8, of: view, in: bytes)
    if written.isUndefined { return .success((mqtt, [])) }
    guard let user = MQTTPublishProperties.userProperties(written) else {
      return .failure(
        ReplayError(message: "'user_properties' must be \(MQTTPublishProperties.userPropertiesShape)"))
    }
    return .success((mqtt, user))
  }

  /// One line's message; `view` is the caller's, its storage reused from line to line.
  func parse(
    _ bytes: UnsafeBufferPointer<UInt8>, lineNumber: Int, view: inout PayloadView
  ) -> Result<Message, ReplayError> {
    // One validating pass that materialises only the small fields; an inline payload is taken as its
    // original bytes, not re-serialised.
    JSONReader.readDeferringContainers(
      bytes, paths: Self.fieldPaths, options: Self.envelopeOptions, findingForms: true, into: &view)
    if view.kind == .binary {
      let error = view.error ?? JSONError(offset: 0, message: "invalid JSON")
      if error.isBeyondLimits,
        let message = parse(bytes, lineNumber: lineNumber, payloadBeyondLimitsAt: error.offset, view: &view)
      {
        return message
      }
      return .failure(
        // file:line:column, the column counted in bytes from 1.
        ReplayError(message: "\(name):\(lineNumber):\(error.offset + 1): invalid JSON: \(error.message)"))
    }
    guard view.kind == .object else {
      return .failure(ReplayError(message: "\(name):\(lineNumber): a line must be a JSON object"))
    }
    // An optional field written as null is one not written (a serializer writing every field:
    // `"timestamp": null` made the line malformed). `payload` is not optional: see below.
    // (A tag test per field: this runs for every line.)
    for index in Self.optionalFields {
      if case .null = view.values[index] { view.values[index] = .undefined }
    }
    guard case .string(let topic) = view.values[0] else {
      // Present but not a string is said so (it was "missing", which sent readers looking for
      // a typo in the name).
      let found: String?
      if let range = view.deferredRange(ofPath: 0) {
        found = bytes[range.lowerBound] == UInt8(ascii: "[") ? "an array" : "an object"
      } else {
        switch view.values[0] {
        case .undefined: found = nil
        case .null: found = "null"
        case .bool: found = "a Boolean"
        case .array: found = "an array"
        case .object: found = "an object"
        default: found = "a number"
        }
      }
      return .failure(
        ReplayError(
          message: "\(name):\(lineNumber): "
            + (found.map { "'topic' must be a string, not \($0)" } ?? "missing string 'topic'")))
    }
    if topic.isEmpty { return .failure(ReplayError(message: "\(name):\(lineNumber): 'topic' is empty")) }
    // A field that takes a scalar holding an array or object: the reader defers containers, so it
    // read as absent (a timestamp replaced by the arrival time, a client id by "n/a", unsaid).
    for (index, field, kind) in Self.scalarFields {
      if let range = view.deferredRange(ofPath: index) {
        let found = bytes[range.lowerBound] == UInt8(ascii: "[") ? "an array" : "an object"
        return .failure(
          ReplayError(message: "\(name):\(lineNumber): '\(field)' must be \(kind), not \(found)"))
      }
    }
    // A topic name, not a filter: MQTT and AWS refuse to publish to one with a wildcard.
    if Self.hasWildcardOrNUL(topic) {
      return .failure(
        ReplayError(
          message:
            "\(name):\(lineNumber): topic '\(Message.logged(topic: topic))' contains a wildcard (+ or #) or NUL: a message's topic is a name, not a filter"
        ))
    }
    let payload: [UInt8]
    // `"payload": null` beside `payload_base64` is a serializer writing every field: no conflict.
    let payloadRange = view.deferredRange(ofPath: 4)
    let hasPayload = payloadRange != nil || !(view.values[4].isUndefined || view.values[4] == .null)
    if !view.values[1].isUndefined && hasPayload {
      return .failure(
        ReplayError(message: "\(name):\(lineNumber): both 'payload' and 'payload_base64': give one"))
    }
    // An error record (a dead-letter file's line) carries the payload as base64OriginalPayload.
    let recorded = view.values[5]
    if !recorded.isUndefined && (hasPayload || !view.values[1].isUndefined) {
      return .failure(
        ReplayError(
          message:
            "\(name):\(lineNumber): both 'base64OriginalPayload' (an error record's) and 'payload' or 'payload_base64': give one"
        ))
    }
    let base64Field = recorded.isUndefined ? "payload_base64" : "base64OriginalPayload"
    let base64 = recorded.isUndefined ? view.values[1] : recorded
    if !base64.isUndefined {
      guard case .string(let text) = base64, let data = Base64.decode(text, requiringPadding: true) else {
        return .failure(ReplayError(message: "\(name):\(lineNumber): '\(base64Field)' is not valid base64"))
      }
      payload = data
    } else if let range = payloadRange {
      // An object or array payload: its bytes as written, found by the same pass.
      payload = Array(UnsafeBufferPointer(rebasing: bytes[range]))
    } else if !view.values[4].isUndefined, let span = JSONReader.memberSpan(named: "payload", in: bytes) {
      payload = Array(UnsafeBufferPointer(rebasing: bytes[span]))
    } else {
      return .failure(ReplayError(message: "\(name):\(lineNumber): missing 'payload' or 'payload_base64'"))
    }
    var clientID: String?
    switch view.values[2] {
    case .undefined: break
    case .string(let text): clientID = text
    default: return .failure(ReplayError(message: "\(name):\(lineNumber): 'clientId' must be a string"))
    }
    let timestamp: Int
    // An error record's receivedAt is its message's time; its timestamp, the record's.
    let (timeField, time) =
      view.values[9].isUndefined ? ("timestamp", view.values[3]) : ("receivedAt", view.values[9])
    switch time {
    case .undefined: timestamp = clock.nowMs()
    case .int(let ms): timestamp = ms
    default:
      return .failure(
        ReplayError(message: "\(name):\(lineNumber): '\(timeField)' must be whole epoch milliseconds"))
    }
    var mqttProperties: [String: Value] = [:]
    var userProperties: [(key: String, value: String)] = []
    if view.deferredRange(ofPath: 7) != nil || view.deferredRange(ofPath: 8) != nil
      || !view.values[7].isUndefined || !view.values[8].isUndefined
    {
      switch Self.properties(view, in: bytes) {
      case .success(let found): (mqttProperties, userProperties) = found
      case .failure(let problem):
        return .failure(ReplayError(message: "\(name):\(lineNumber): \(problem.message)"))
      }
    }
    var message = Message(
      topic: topic, payload: payload, clientID: clientID, receivedAtMs: timestamp,
      mqttProperties: mqttProperties, userProperties: userProperties,
      origin: name, originLine: lineNumber, acknowledge: acknowledge)
    // An object or array payload was validated above; its form spares `SELECT *` reading it again.
    if payloadRange != nil { message.payloadForm = view.deferredForm(ofPath: 4) }
    switch view.values[6] {
    case .undefined: break
    case .string(let rule) where !rule.isEmpty: message.onlyRule = rule
    default:
      return .failure(
        ReplayError(message: "\(name):\(lineNumber): 'ruleName' must be a rule's name (a string)"))
    }
    return .success(message)
  }

  /// The line's own nesting limit: one level more than a payload's, so a payload nested as deep as
  /// `eval` reads one (512) is read here too, the line's object around it.
  static let envelopeOptions = JSONReadOptions(maxDepth: JSONReadOptions().maxDepth + 1)

  /// A line whose `payload` follows JSON's grammar but is more than is read as JSON (nested past
  /// the limit, a lone surrogate escape: ``JSONError/isBeyondLimits``), at `offset`: its message
  /// carries those bytes as written, a Binary payload as `eval` and an MQTT source take them, when
  /// the rest of the line is well formed, or the rest's problem (both `payload` and
  /// `payload_base64`); nil when the rest is not JSON either (the line is malformed as it was).
  func parse(
    _ bytes: UnsafeBufferPointer<UInt8>, lineNumber: Int, payloadBeyondLimitsAt offset: Int,
    view: inout PayloadView
  ) -> Result<Message, ReplayError>? {
    guard let span = JSONReader.memberSpan(named: "payload", in: bytes), span.upperBound <= bytes.count,
      span.contains(offset)
    else { return nil }
    // The line with the payload set aside (a number in its place), read as any line.
    var line = Array(UnsafeBufferPointer(rebasing: bytes[..<span.lowerBound]))
    line.append(UInt8(ascii: "0"))
    line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[span.upperBound...]))
    switch line.withUnsafeBufferPointer({ parse($0, lineNumber: lineNumber, view: &view) }) {
    case .success(var message):
      message.payload = Array(UnsafeBufferPointer(rebasing: bytes[span]))
      return .success(message)
    case .failure(let problem):
      // A JSON error of the rest would be placed in the line without its payload: said as it was.
      return view.kind == .binary ? nil : .failure(problem)
    }
  }

  /// Whether `topic` has a `+`, `#` or NUL byte (a loop over its contiguous UTF-8, no closure).
  static func hasWildcardOrNUL(_ topic: String) -> Bool {
    var topic = topic
    return topic.withUTF8 { bytes in
      for byte in bytes where byte == 0x2B || byte == 0x23 || byte == 0 { return true }
      return false
    }
  }
}

/// A replay problem: an input that cannot be read, or a malformed line.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
  /// What, with `file:line` where it applies.
  public var message: String
  /// The message.
  public var description: String { message }
}
