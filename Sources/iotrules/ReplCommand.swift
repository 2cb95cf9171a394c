import ArgumentParser
import CReplInterrupt
import DevTools
import Foundation
import IoTSQL
import RulesEngine
import Synchronization

/// `iotrules repl`: try SQL on a message, interactively (libedit) or from a script on standard input.
struct ReplCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "repl",
    abstract: "Try SQL on a message: line editing, history, completion, .rule and .explain.",
    discussion: """
      On a terminal: line editing and history (~/.iotrules_history, or $IOTRULES_HISTORY), Tab \
      completion of keywords, functions and the payload's fields; a statement goes on over several \
      lines until it is complete (or ends with ';' or an empty line); Ctrl-C drops the line and the \
      statement being typed, Ctrl-D leaves. Type .help for the dot-commands.
      With standard input not a terminal (iotrules repl < script.sql) it runs the script without \
      prompts: results on standard output, errors on standard error, exit 65 if any failed.
      Colour only on a terminal; NO_COLOR turns it off.
      """
  )

  @Option(help: "The topic of the first message.")
  var topic: String?

  @Option(help: "The payload of the first message (JSON text).")
  var payload: String?

  @Option(name: .customLong("client-id"), help: "What clientid() returns.")
  var clientID: String?

  @OptionGroup var version: SQLVersionOption

  func validate() throws {
    if let topic, let problem = TopicFilter.nameProblem(topic) { throw ValidationError("--topic \(problem)") }
  }

  func run() throws {
    // As `eval` and the dot-commands refuse them: not run with U+FFFD in their place.
    try requireUTF8("--topic")
    try requireUTF8("--client-id")
    let environment = ProcessInfo.processInfo.environment
    let styler = Styler.decide(isTerminal: isatty(STDOUT_FILENO) != 0, environment: environment)
    let session = ReplSession(styler: styler)
    session.version = try version.resolve()
    session.topic = topic
    session.clientID = clientID
    if let payload { session.payload = rawArgument("--payload") ?? Array(payload.utf8) }

    if isatty(STDIN_FILENO) != 0 {
      interactive(session, environment: environment)
    } else {
      session.scriptName = "stdin"
      var first = true
      // Lines as bytes: one that is not UTF-8 is refused at its place (`readLine` put U+FFFD in).
      let input = fdopen(STDIN_FILENO, "r")
      var buffer: UnsafeMutablePointer<CChar>?
      var capacity = 0
      defer { free(buffer) }
      // Output that cannot be written (a full disk) ends the script: its answers would be lost.
      while !session.finished, !Console.outputFailed, let input {
        let count = getline(&buffer, &capacity, input)
        guard count >= 0, let buffer else { break }
        var line = UnsafeRawBufferPointer(start: buffer, count: count).map { $0 }
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        // A script saved with a byte-order mark reads as one without, as rule files do.
        if first, line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        first = false
        emit(session.feed(bytes: line).outputs)
      }
      emit(session.finish())
      if session.hadUnreadableInput { throw ExitCodes.io }
      if session.hadError { throw ExitCodes.badRule }
    }
  }

  func interactive(_ session: ReplSession, environment: [String: String]) {
    // `$HOME` first, as shells read `~`; the account's home directory without it.
    let history =
      environment["IOTRULES_HISTORY"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.iotrules_history")
    LineEditor.completionSource = { word, atLineStart in
      Completer.candidates(for: word, atLineStart: atLineStart, payload: session.payload)
    }
    LineEditor.isInString = { session.isInString(typing: $0) }
    LineEditor.start(historyPath: history.isEmpty ? nil : history)
    // A `.payload @FILE` that blocks (a FIFO nobody writes to, `@/dev/tty`) gives way to Ctrl-C,
    // as the line being typed does; it held the session until killed.
    session.readFile = { Self.readGivingWayToInterrupt($0) }
    Console.out(
      session.styler.dim(
        "iotrules \(IoTRules.configuration.version): type SQL, or .help; Ctrl-C drops a line, Ctrl-D leaves"))
    while !session.finished, !Console.outputFailed {
      switch LineEditor.read(prompt: session.prompt) {
      case .line(let line):
        var (outputs, entries) = session.feed(line)
        // A line break in a line is a recalled entry's, inside a string literal: the entry is
        // whole, and runs now, as when it was typed (an empty line ends it).
        if line.unicodeScalars.contains("\n") {
          let ended = session.feed("")
          (outputs, entries) = (outputs + ended.outputs, entries + ended.entries)
        }
        for entry in entries { LineEditor.remember(entry) }
        emit(outputs)
      case .interrupted:
        // As a shell does: the line, and the statement it belonged to, are dropped.
        session.cancel()
      case .notUTF8(let byte):
        emit(session.refuseNotUTF8(byte: byte, at: nil))
      case .end:
        let (outputs, entries) = session.end()
        for entry in entries { LineEditor.remember(entry) }
        // The result on a line of its own, not after the terminal's `^D`.
        if !outputs.isEmpty { Console.out("") }
        emit(outputs)
        Console.out("")
        return
      }
    }
  }

  /// `InputFile.read(path)` on a thread of its own, waited for beside Ctrl-C: nil when Ctrl-C came
  /// first (the read, blocked, is left to end on its own; it then closes what it was given).
  static func readGivingWayToInterrupt(_ path: String) -> Result<[UInt8], InputFile.Failure>? {
    // A terminal (`@/dev/tty`, `@/dev/stdin`) is the REPL's own input: a read given up there would
    // go on taking keys from the line editor, so it is refused.
    let probe = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    if probe >= 0 {
      defer { close(probe) }
      if isatty(probe) != 0 {
        return .failure(
          InputFile.Failure(
            description: "is a terminal, the one the REPL reads: give the payload as .payload JSON",
            isTooLong: false))
      }
    }
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { return InputFile.read(path) }
    let (readEnd, writeEnd) = (ends[0], ends[1])
    // Not inherited by what the REPL may start (Glibc's module has no pipe2).
    _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
    _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    let handoff = ReadHandoff()
    Thread.detachNewThread {
      let result = InputFile.read(path)
      // Told through the pipe before the result is handed over: the REPL closes its end only once
      // it took the result (a write after that could raise SIGPIPE). Given up (Ctrl-C), nobody
      // reads the pipe, and the reader closes that end too.
      var byte: UInt8 = 1
      _ = write(writeEnd, &byte, 1)
      close(writeEnd)
      if !handoff.deliver(result) { close(readEnd) }
    }
    if iotrules_interrupt_wait(readEnd) == 0, handoff.giveUp() {
      // A FIFO with no writer holds the read in its open: a writer that comes and goes at once
      // ends it (an end of file), so the next `.payload @FIFO` is not raced by the one given up.
      var info = stat()
      if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFIFO {
        let writer = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if writer >= 0 { close(writer) }
      }
      return nil
    }
    let result = handoff.wait()
    close(readEnd)
    return result
  }

  func emit(_ outputs: [ReplSession.Output]) {
    for output in outputs {
      if output.isError {
        // Colour is decided by standard output; errors go to standard error, which may be a file
        // (`repl 2>err.log` on a terminal wrote escape codes into it).
        Console.err(Self.stderrIsTerminal ? output.text : Styler.plain(output.text))
      } else if output.text.utf8.count > Self.piece {
        // A long result a piece at a time, so that Ctrl-C stops it (a 4 MB array printed on
        // whole; a script, without the handler, never sees one).
        let bytes = Array((output.text + "\n").utf8)
        var start = 0
        while start < bytes.count {
          if iotrules_interrupt_seen() != 0 {
            Console.out("\n^C: the rest of the output is dropped")
            return
          }
          let end = min(bytes.count, start + Self.piece)
          Console.write(Array(bytes[start..<end]))
          start = end
        }
      } else {
        Console.out(output.text)
      }
    }
  }

  /// The bytes of output written between looks at Ctrl-C.
  static let piece = 1 << 16

  /// Whether standard error is a terminal (colour may go there).
  static let stderrIsTerminal = isatty(STDERR_FILENO) != 0
}

/// What passes a file read on another thread back to the REPL, or tells that thread it was given
/// up (Ctrl-C).
final class ReadHandoff: Sendable {
  private struct State {
    var result: Result<[UInt8], InputFile.Failure>?
    var givenUp = false
  }
  private let state = Mutex(State())
  private let done = DispatchSemaphore(value: 0)

  /// Keeps the result: false when the read was given up (nobody takes it).
  func deliver(_ result: Result<[UInt8], InputFile.Failure>) -> Bool {
    let kept = state.withLock { state -> Bool in
      if state.givenUp { return false }
      state.result = result
      return true
    }
    if kept { done.signal() }
    return kept
  }

  /// Gives the read up, unless its result came already (false: take it with `wait`).
  func giveUp() -> Bool {
    state.withLock { state in
      if state.result != nil { return false }
      state.givenUp = true
      return true
    }
  }

  /// The result, once delivered.
  func wait() -> Result<[UInt8], InputFile.Failure> {
    done.wait()
    return state.withLock { $0.result! }
  }
}
