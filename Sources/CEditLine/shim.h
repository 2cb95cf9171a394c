// libedit's readline API, with setters and getters for the C globals Swift 6 cannot touch
// (shared mutable state) and for the variadic calls Swift cannot import.
#ifndef IOTRULES_CEDITLINE_SHIM_H
#define IOTRULES_CEDITLINE_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <editline/readline.h>
#include <pty.h>

/// Finds no completion, so libedit asks the generator (see `iotrules_el_set_completer`).
static inline char **iotrules_el_no_attempt(const char *text, int start, int end) {
  (void)text;
  (void)start;
  (void)end;
  return NULL;
}

/// Installs the completion generator: libedit calls it with the word under the cursor and a state
/// (0 on the first call), and it returns one malloc'ed candidate a call, NULL at the end.
static inline void iotrules_el_set_completer(rl_compentry_func_t *generator) {
  rl_completion_entry_function = generator;
  // An attempted-completion function (that finds nothing, so `generator` is asked) turns off
  // libedit's shell quoting: without one it took backslashes out of the word before the cursor
  // and escaped blanks and Tabs in what it put back, none of which SQL means.
  rl_attempted_completion_function = iotrules_el_no_attempt;
}

/// The characters that end a word for completion ('.' is kept inside words for field paths).
static inline void iotrules_el_set_word_breaks(const char *breaks) {
  static char buffer[64];
  strncpy(buffer, breaks, sizeof buffer - 1);
  buffer[sizeof buffer - 1] = 0;
  rl_basic_word_break_characters = buffer;
  rl_completer_word_break_characters = buffer;
}

/// The character appended after a unique completion (0 for none).
static inline void iotrules_el_set_append_character(int character) {
  rl_completion_append_character = character;
}

/// The name used for ~/.editrc conditionals.
static inline void iotrules_el_set_name(const char *name) { rl_readline_name = name; }

/// The whole line being edited (for context-sensitive completion), or NULL.
static inline const char *iotrules_el_line_buffer(void) { return rl_line_buffer; }

/// The cursor's place in the line being edited, in characters (scalars): while completing,
/// libedit sets it from its wide-character line.
static inline int iotrules_el_point(void) { return rl_point; }

/// Takes the terminal's new size and redraws the line being edited, on a row of its own: where
/// the old line went after the resize (cut, or reflowed) only the terminal knows.
static inline void iotrules_el_resized(void) {
  FILE *out = rl_outstream ? rl_outstream : stdout;
  fputs("\r\n", out);
  fflush(out);
  rl_resize_terminal();
  rl_forced_update_display();
}

/// Whether a Tab inserts itself (1) instead of completing (0).
static inline void iotrules_el_set_tab_inserts(int inserts) { rl_inhibit_completion = inserts; }

/// The number of history entries.
static inline int iotrules_el_history_length(void) { return history_length; }

/// Reads characters through `getc` instead of libedit's own reader, with libedit's signal handlers
/// off (on SIGINT they restore the default action and signal the process group again, which ends
/// the process). Call before libedit initialises.
static inline void iotrules_el_use_getc(int (*getc)(FILE *)) {
  rl_catch_signals = 0;
  rl_getc_function = getc;
}

/// Opens a pseudo-terminal pair (tests drive the REPL through it); 0 on success.
static inline int iotrules_open_pty(int *master, int *slave) {
  return openpty(master, slave, NULL, NULL, NULL);
}

#endif
