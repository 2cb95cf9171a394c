import Foundation
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// The MQTT source's journal of the messages it took and has not finished, so that a crash loses
/// none of them.
///
/// libmosquitto 2.0 sends a QoS 1 PUBACK before the message reaches the source, and the broker then
/// forgets it: a daemon killed with messages in flight would lose them. The source writes each
/// message here, one JSON line, before the engine takes it, and a line marking it done once every
/// action of every rule it reached is done. The next start runs the messages not marked done again
/// (at least once: one finished in the instant before a kill runs twice). The write is a plain
/// `write(2)`: the kernel keeps it when the process dies; a power loss can take what it had not yet
/// put on disk.
///
/// Lines: `{"seq":N,"topic",..,"payload_base64",..,"timestamp",..,"traceId",..,"clientId"?,
/// "mqtt_properties"?,"user_properties"?}` for a message, `{"done":N}` for its end. The file is
/// emptied whenever nothing is open, and rewritten with the open messages alone once it is past
/// ``compactionBytes`` and twice what they take (so that a rewrite costs no more than the lines
/// written since the last one).
final class MQTTSpool: Sendable {
  /// Where the journal is.
  let path: String
  /// Past this size (and twice the open messages' lines), the file is rewritten with the open ones
  /// alone.
  static let compactionBytes = 8 << 20

  private struct State {
    var descriptor: Int32 = -1
    /// `path.lock`, held (flock) while this process uses the spool.
    var lock: Int32 = -1
    var next: UInt64 = 1
    /// The open messages' numbers, and the length of each one's line.
    var open: [UInt64: Int] = [:]
    /// The length of the open messages' lines together.
    var live = 0
    var size = 0
    /// A write failed and was said; said again only after one succeeds.
    var failing = false
  }

  private let state = Mutex(State())
  private let logger: Logger

  /// A spool at `path`; nothing is read or written until ``open()``.
  init(path: String, logger: Logger) {
    self.path = path
    self.logger = logger
  }

  /// Opens the journal and returns the messages an earlier run took and did not finish, in the
  /// order it took them, each still open under its number (``finish(_:)`` ends it). The file is
  /// rewritten to hold them alone. Throws when the file cannot be read or written.
  func open() throws -> [(sequence: UInt64, message: Message)] {
    // One process a spool: a second run of the same client id would run its messages twice.
    let lock = Foundation.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard lock >= 0 else {
      throw SpoolError("cannot open \(path).lock, the MQTT spool's lock: \(String(cString: strerror(errno)))")
    }
    // Another daemon's start probes this lock for a moment (``isInUse(_:)``, taking it shared):
    // tried for 200 ms before the spool is said to be in use, or a restart of a whole group
    // sharing one folder could leave one of them without its spool.
    var locked = flock(lock, LOCK_EX | LOCK_NB) == 0
    for _ in 0..<20 where !locked {
      usleep(10_000)
      locked = flock(lock, LOCK_EX | LOCK_NB) == 0
    }
    guard locked else {
      _ = Foundation.close(lock)
      throw SpoolError(
        "the MQTT spool \(path) is in use by another iotrules run of the same --client-id", isInUse: true)
    }
    state.withLock { $0.lock = lock }
    var lines: [ArraySlice<UInt8>] = []
    var bytes: [UInt8] = []
    if FileManager.default.fileExists(atPath: path) {
      guard let data = FileManager.default.contents(atPath: path) else {
        throw SpoolError("cannot read the MQTT spool \(path): \(String(cString: strerror(errno)))")
      }
      bytes = [UInt8](data)
      lines = bytes.split(separator: 0x0A)
    }
    var done = Set<UInt64>()
    for line in lines {
      if let number = Self.number(line, key: "done", ending: "}") { done.insert(number) }
    }
    var left: [(sequence: UInt64, message: Message, line: ArraySlice<UInt8>)] = []
    var highest: UInt64 = 0
    for (index, line) in lines.enumerated() {
      if let number = Self.number(line, key: "seq", ending: ",") {
        highest = max(highest, number)
        if done.contains(number) { continue }
        if let message = Self.message(line) {
          left.append((number, message, line))
          continue
        }
      } else if Self.number(line, key: "done", ending: "}") != nil {
        continue
      }
      // A line cut short by a kill in its write: its message had not reached the engine.
      logger.warning("MQTT spool \(path): line \(index + 1) is not a record, skipped")
    }
    var kept: [UInt8] = []
    for entry in left { kept += entry.line + [0x0A] }
    let descriptor: Int32
    do {
      descriptor = try rewrite(kept)
    } catch {
      // Read, not run: they stay in the file for a start that can write it.
      guard !left.isEmpty else { throw error }
      throw SpoolError(
        "\(error) (\(left.count) message(s) an earlier run took and did not finish stay in it, for a start that can write it)"
      )
    }
    state.withLock {
      $0.descriptor = descriptor
      $0.next = highest + 1
      // A number twice (a file put together by hand) is one entry, not a crash.
      $0.open = Dictionary(left.map { ($0.sequence, $0.line.count + 1) }, uniquingKeysWith: +)
      $0.live = kept.count
      $0.size = kept.count
    }
    return left.map { ($0.sequence, $0.message) }
  }

  /// Journals `message` before the engine takes it and returns its number, or nil when the write
  /// failed (said at error level; the message runs all the same, unprotected).
  func keep(_ message: Message) -> UInt64? {
    state.withLock { state -> UInt64? in
      guard state.descriptor >= 0 else { return nil }
      let number = state.next
      state.next += 1
      let line = Self.line(message, number)
      guard append(line, &state) else { return nil }
      state.open[number] = line.count
      state.live += line.count
      return number
    }
  }

  /// Marks message `number` done: it is not run again. The file is emptied when nothing is open.
  func finish(_ number: UInt64) {
    state.withLock { state in
      guard let length = state.open.removeValue(forKey: number), state.descriptor >= 0 else { return }
      state.live -= length
      if state.open.isEmpty {
        if ftruncate(state.descriptor, 0) == 0 { state.size = 0 }
        return
      }
      guard append(Array(#"{"done":\#(number)}"#.utf8) + [0x0A], &state, clears: false) else { return }
      if state.size > max(Self.compactionBytes, 2 * state.live) { compact(&state) }
    }
  }

  deinit { close() }

  /// Closes the file and lets its lock go; what is open stays in the file for the next start.
  func close() {
    state.withLock { state in
      if state.descriptor >= 0 { _ = Foundation.close(state.descriptor) }
      if state.lock >= 0 { _ = Foundation.close(state.lock) }
      (state.descriptor, state.lock) = (-1, -1)
    }
  }

  /// True when another process holds the spool at `path` (its lock is taken).
  static func isInUse(_ path: String) -> Bool {
    let lock = Foundation.open(path + ".lock", O_RDONLY | O_CLOEXEC)
    guard lock >= 0 else { return false }
    defer { _ = Foundation.close(lock) }
    return flock(lock, LOCK_SH | LOCK_NB) != 0
  }

  // MARK: - The file

  /// Writes all of `bytes` to `fd`: nil, or the `errno` of the write that failed and how many bytes
  /// went before it.
  private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> (code: Int32, written: Int)? {
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
      if written < 0 {
        if errno == EINTR { continue }
        return (errno, offset)
      }
      offset += written
    }
    return nil
  }

  /// Appends `bytes`; a failure is said once, until a message's line (`clears`) is written again:
  /// on a full disk a short done line still fit, and each next message said the failure anew.
  private func append(_ bytes: [UInt8], _ state: inout State, clears: Bool = true) -> Bool {
    if let failure = Self.writeAll(state.descriptor, bytes) {
      // No torn line stays for the next to follow.
      if failure.written > 0 { _ = ftruncate(state.descriptor, off_t(state.size)) }
      if !state.failing {
        logger.error(
          "cannot write the MQTT spool \(path): \(String(cString: strerror(failure.code))); messages run without it until a write succeeds, and a crash meanwhile loses those in flight"
        )
      }
      state.failing = true
      return false
    }
    state.size += bytes.count
    if state.failing, clears {
      logger.notice("the MQTT spool \(path) is written again")
      state.failing = false
    }
    return true
  }

  /// Rewrites the file with the open messages' lines alone.
  private func compact(_ state: inout State) {
    guard let data = FileManager.default.contents(atPath: path) else { return }
    var kept: [UInt8] = []
    for line in [UInt8](data).split(separator: 0x0A) {
      if let number = Self.number(line, key: "seq", ending: ","), state.open[number] != nil {
        kept += line + [0x0A]
      }
    }
    do {
      _ = Foundation.close(state.descriptor)
      state.descriptor = try rewrite(kept)
      state.size = kept.count
    } catch {
      // The file as it was, grown: open again for appending.
      state.descriptor = Foundation.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
      logger.error("\(error)")
    }
  }

  /// Replaces the file with `bytes` (through a new file renamed over it) and returns it open for
  /// appending.
  private func rewrite(_ bytes: [UInt8]) throws -> Int32 {
    let temporary = path + ".new"
    let fd = Foundation.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw SpoolError(
        "cannot write the MQTT spool \(path) (through \(temporary)): \(String(cString: strerror(errno)))")
    }
    if let failure = Self.writeAll(fd, bytes) {
      _ = Foundation.close(fd)
      throw SpoolError("cannot write the MQTT spool \(temporary): \(String(cString: strerror(failure.code)))")
    }
    _ = Foundation.close(fd)
    guard rename(temporary, path) == 0 else {
      throw SpoolError("cannot replace the MQTT spool \(path): \(String(cString: strerror(errno)))")
    }
    let descriptor = Foundation.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
    guard descriptor >= 0 else {
      throw SpoolError("cannot open the MQTT spool \(path): \(String(cString: strerror(errno)))")
    }
    return descriptor
  }

  // MARK: - Lines

  /// The number after `{"KEY":` at the start of `line`, when `ending` follows it (a line cut short
  /// inside its number, `{"done":1` of `{"done":12}`, is no number), or nil.
  static func number(_ line: ArraySlice<UInt8>, key: String, ending: Unicode.Scalar) -> UInt64? {
    let lead = Array(#"{"\#(key)":"#.utf8)
    guard line.starts(with: lead) else { return nil }
    var value: UInt64 = 0
    var digits = 0
    for byte in line.dropFirst(lead.count) {
      guard byte >= 0x30 && byte <= 0x39 else {
        return digits > 0 && byte == UInt8(ascii: ending) ? value : nil
      }
      let (times, overflow) = value.multipliedReportingOverflow(by: 10)
      guard !overflow else { return nil }
      value = times + UInt64(byte - 0x30)
      digits += 1
    }
    return nil
  }

  static func line(_ message: Message, _ number: UInt64) -> [UInt8] {
    let context = message.evaluationContext()
    var object: OrderedObject = [
      "seq": .int(Int(truncatingIfNeeded: number)), "topic": .string(message.topic),
      "payload_base64": .string(Data(message.payload).base64EncodedString()),
      "timestamp": .int(message.receivedAtMs),
    ]
    if let traceID = message.traceID { object["traceId"] = .string(traceID) }
    if let clientID = message.clientID { object["clientId"] = .string(clientID) }
    if !context.mqttProperties.isEmpty {
      object["mqtt_properties"] = .object(
        OrderedObject(context.mqttProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
    }
    if !context.userProperties.isEmpty {
      object["user_properties"] = .array(
        context.userProperties.map { .array([.string($0.key), .string($0.value)]) })
    }
    var bytes: [UInt8] = []
    JSONWriter.write(.object(object), into: &bytes)
    bytes.append(0x0A)
    return bytes
  }

  static func message(_ line: ArraySlice<UInt8>) -> Message? {
    guard case .object(let object)? = try? JSONReader.parse(Array(line)),
      case .string(let topic)? = object["topic"], case .string(let encoded)? = object["payload_base64"],
      let payload = Base64.decode(encoded, requiringPadding: true),
      case .int(let timestamp)? = object["timestamp"]
    else { return nil }
    var properties: [String: Value] = [:]
    if case .object(let named)? = object["mqtt_properties"] {
      for (key, value) in named.members { properties[key] = value }
    }
    var user: [(key: String, value: String)] = []
    if case .array(let pairs)? = object["user_properties"] {
      for case .array(let pair) in pairs {
        if pair.count == 2, case .string(let key) = pair[0], case .string(let value) = pair[1] {
          user.append((key, value))
        }
      }
    }
    var clientID: String?
    if case .string(let text)? = object["clientId"] { clientID = text }
    var message = Message(
      topic: topic, payload: payload, clientID: clientID, receivedAtMs: timestamp, mqttProperties: properties,
      userProperties: user)
    if case .string(let traceID)? = object["traceId"] { message.traceID = traceID }
    return message
  }
}

/// The MQTT spool cannot be read or written.
struct SpoolError: Error, CustomStringConvertible {
  /// What went wrong, and where.
  var description: String
  /// True when another process holds the spool (not an I/O error).
  var isInUse = false
  init(_ description: String, isInUse: Bool = false) {
    self.description = description
    self.isInUse = isInUse
  }
}
