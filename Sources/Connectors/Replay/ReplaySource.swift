import Foundation
import IoTSQL
import RulesEngine
import Synchronization

/// Replays JSON lines, one message each: `{"topic": "...", "payload": <JSON> | "payload_base64":
/// "...", "clientId": "...", "timestamp": epochMs}`, from a file or standard input.
///
/// A malformed line is reported (with its line number) through `onMalformed` and counted; it does not
/// stop the replay. At the end of the input the source returns, unless `follow` is set: then it
/// waits for more lines until cancelled.
public struct ReplaySource: MessageSource {
  /// Where lines come from.
  public enum Input: Sendable, Equatable {
    /// A file.
    case file(String)
    /// Standard input.
    case standardInput
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
  }

  /// The input.
  public let input: Input
  /// Keep reading at the end of the input.
  public let follow: Bool
  /// Gives `timestamp()` when a line has no `timestamp`.
  public let clock: any EngineClock
  /// Told about each malformed line: (line number, message).
  public let onMalformed: @Sendable (Int, String) -> Void
  let counter: CountsBox

  final class CountsBox: Sendable {
    let counts = Mutex(Counts())
  }

  /// Creates a source.
  public init(
    input: Input, follow: Bool = false, clock: any EngineClock,
    onMalformed: @escaping @Sendable (Int, String) -> Void = { _, _ in }
  ) {
    self.input = input
    self.follow = follow
    self.clock = clock
    self.onMalformed = onMalformed
    self.counter = CountsBox()
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
  var name: String {
    switch input {
    case .file(let path): path
    case .standardInput: "stdin"
    }
  }

  /// Reads lines and delivers messages until the input ends (or, with `follow`, until cancelled).
  public func run(deliver: @escaping @Sendable (Message) async -> Void) async throws {
    let fd: Int32
    switch input {
    case .file(let path):
      fd = open(path, O_RDONLY | O_CLOEXEC)
      if fd < 0 { throw ReplayError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
    case .standardInput:
      fd = 0
    }
    defer { if fd != 0 { close(fd) } }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var pending: [UInt8] = []
    var lineNumber = 0
    while !Task.isCancelled {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw ReplayError(message: "read \(name): \(String(cString: strerror(errno)))")
      }
      if count == 0 {
        if !follow { break }
        try? await Task.sleep(nanoseconds: 50_000_000)
        continue
      }
      pending.append(contentsOf: buffer[0..<count])
      var start = 0
      while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
        lineNumber += 1
        await handle(pending[start..<newline], lineNumber: lineNumber, deliver: deliver)
        start = newline + 1
        if Task.isCancelled { break }
      }
      pending.removeFirst(start)
    }
    if !pending.isEmpty && !Task.isCancelled {
      lineNumber += 1
      await handle(pending[...], lineNumber: lineNumber, deliver: deliver)
    }
  }

  func handle(_ line: ArraySlice<UInt8>, lineNumber: Int, deliver: @Sendable (Message) async -> Void) async {
    var bytes = Array(line)
    if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
    counter.counts.withLock { $0.lines += 1 }
    switch parse(bytes, lineNumber: lineNumber) {
    case .success(let message):
      counter.counts.withLock { $0.delivered += 1 }
      await deliver(message)
    case .failure(let error):
      counter.counts.withLock { $0.malformed += 1 }
      onMalformed(lineNumber, error.message)
    }
  }

  func parse(_ bytes: [UInt8], lineNumber: Int) -> Result<Message, ReplayError> {
    let value: Value
    do {
      value = try JSONReader.parse(bytes)
    } catch {
      return .failure(
        ReplayError(message: "\(name):\(lineNumber): invalid JSON at byte \(error.offset): \(error.message)"))
    }
    guard case .object(let object) = value else {
      return .failure(ReplayError(message: "\(name):\(lineNumber): a line must be a JSON object"))
    }
    guard case .string(let topic)? = object["topic"], !topic.isEmpty else {
      return .failure(ReplayError(message: "\(name):\(lineNumber): missing string 'topic'"))
    }
    var payload: [UInt8]
    if let encoded = object["payload_base64"] {
      guard case .string(let text) = encoded, let data = Data(base64Encoded: text) else {
        return .failure(ReplayError(message: "\(name):\(lineNumber): 'payload_base64' is not valid base64"))
      }
      payload = Array(data)
    } else if let inline = object["payload"] {
      payload = Array(JSONWriter.string(inline).utf8)
    } else {
      return .failure(ReplayError(message: "\(name):\(lineNumber): missing 'payload' or 'payload_base64'"))
    }
    var clientID: String?
    if let client = object["clientId"] {
      guard case .string(let text) = client else {
        return .failure(ReplayError(message: "\(name):\(lineNumber): 'clientId' must be a string"))
      }
      clientID = text
    }
    var timestamp = clock.nowMs()
    if let stamp = object["timestamp"] {
      guard case .int(let ms) = stamp else {
        return .failure(
          ReplayError(message: "\(name):\(lineNumber): 'timestamp' must be whole epoch milliseconds"))
      }
      timestamp = ms
    }
    let counter = self.counter
    return .success(
      Message(
        topic: topic, payload: payload, clientID: clientID, receivedAtMs: timestamp,
        origin: "\(name):\(lineNumber)",
        acknowledge: { outcome in
          counter.counts.withLock { counts in
            if outcome == .done { counts.acknowledged += 1 } else { counts.failed += 1 }
          }
        }))
  }
}

/// A replay problem: an input that cannot be read, or a malformed line.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
  /// What, with `file:line` where it applies.
  public var message: String
  /// The message.
  public var description: String { message }
}
