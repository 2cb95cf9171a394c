import CEditLine
import CReplInterrupt
import DevTools
import Foundation

/// Line editing, history and tab completion through libedit's readline interface.
///
/// libedit calls back into C function pointers that capture nothing, so the completion source and
/// the candidates of the word being completed live in globals; libedit runs on the main thread only.
enum LineEditor {
  /// Gives candidates for (word, word begins the line).
  nonisolated(unsafe) static var completionSource: (String, Bool) -> [String] = { _, _ in [] }
  nonisolated(unsafe) static var candidates: [String] = []
  nonisolated(unsafe) static var historyPath: String?
  /// Whether text typed up to the cursor is inside a string literal (the open statement counted).
  nonisolated(unsafe) static var isInString: (String) -> Bool = { _ in false }

  /// Sets up completion and reads the history file (created on the first write).
  static func start(historyPath: String?) {
    iotrules_el_set_name("iotrules")
    iotrules_el_set_word_breaks(Completer.wordBreaks)
    iotrules_el_set_append_character(0)
    iotrules_el_set_completer { text, state in
      if state == 0 {
        let word = text.map { String(cString: $0) } ?? ""
        let line = iotrules_el_line_buffer().map { String(cString: $0) } ?? ""
        let leading = line.drop { $0 == " " || $0 == "\t" }
        let before = String(
          String.UnicodeScalarView(line.unicodeScalars.prefix(Int(max(0, iotrules_el_point())))))
        // A Tab typed inside a string literal is the string's: the word it follows comes back
        // with the Tab after it (libedit adds no escape inside quotes), not completed (`'devi`
        // became `'deviceId` inside a string).
        LineEditor.candidates =
          LineEditor.isInString(before)
          ? [word + "\t"] : LineEditor.completionSource(word, leading.hasPrefix(word) && !word.isEmpty)
      }
      guard !LineEditor.candidates.isEmpty else { return nil }
      return strdup(LineEditor.candidates.removeFirst())
    }
    // The terminal's character set (UTF-8 here): in the C locale libedit drops or escapes every
    // character beyond ASCII that is typed.
    setlocale(LC_CTYPE, "")
    if String(cString: nl_langinfo(nl_item(CODESET))) != "UTF-8" {
      // A C or POSIX locale (containers, `env -i`): `température` became `temprature` without a
      // word. SQL and payloads are UTF-8 whatever the locale, so typing is read as UTF-8 too.
      if setlocale(LC_CTYPE, "C.UTF-8") == nil {
        Console.err(
          "iotrules: warning: no UTF-8 locale (C.UTF-8) here: characters beyond ASCII typed at the prompt are dropped; pipe a script in, or set LANG to a UTF-8 locale"
        )
      }
    }
    // Ctrl-C drops the line instead of ending the process; before using_history(), which
    // initialises libedit.
    iotrules_interrupt_install()
    iotrules_interrupt_on_resize { iotrules_el_resized() }
    // A pasted Tab inserts itself: it was dropped with a bell, or completed a word mid-paste.
    iotrules_interrupt_on_tab { pasted in iotrules_el_set_tab_inserts(pasted) }
    iotrules_el_use_getc(iotrules_interrupt_getc)
    using_history()
    self.historyPath = historyPath
    if let historyPath, FileManager.default.fileExists(atPath: historyPath) {
      _ = read_history(historyPath)
    }
  }

  /// What reading a line gave.
  enum Input: Equatable {
    case line(String)
    /// Ctrl-C: the line typed so far is dropped.
    case interrupted
    /// Ctrl-D, or the end of the input.
    case end
    /// A line that was not UTF-8 text: its first byte that was not.
    case notUTF8(UInt8)
  }

  /// Reads one line with editing.
  static func read(prompt: String) -> Input {
    iotrules_interrupt_begin()
    let raw = readline(prompt)
    defer { free(raw) }
    if iotrules_interrupt_take() != 0 { return .interrupted }
    guard let raw else { return .end }
    let line = String(cString: raw)
    // A byte that was not UTF-8, still in the line, comes as one of the 256 scalars standing for
    // them: read as U+FFFD, it would run as another character than the one typed.
    let base = UInt32(iotrules_interrupt_escaped_base)
    if iotrules_interrupt_escapes() > 0, let escaped = line.unicodeScalars.first(where: { $0.value >= base })
    {
      return .notUTF8(UInt8(escaped.value - base))
    }
    return .line(line)
  }

  /// Adds an entry to the history and saves the file, so a session that dies keeps what it did.
  static func remember(_ entry: String) {
    let flat = ReplSession.historyLine(of: entry)
    guard !flat.isEmpty, flat != ".quit", flat != ".exit" else { return }
    add_history(flat)
    if let historyPath { _ = write_history(historyPath) }
  }
}
