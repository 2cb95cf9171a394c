// Ctrl-C for the REPL's line editor: a SIGINT ends the line being read instead of the process.
#ifndef IOTRULES_CREPLINTERRUPT_H
#define IOTRULES_CREPLINTERRUPT_H

#include <stdio.h>

/// Installs the signal handlers (once), before the line editor first changes the terminal's
/// settings. SIGINT: whichever thread the signal reaches, the handler writes to a pipe that
/// iotrules_interrupt_getc waits on beside the input. SIGTSTP: the terminal's first settings while
/// stopped, the editor's after. SIGTERM, SIGHUP, SIGQUIT: the first settings, then the end. (The
/// line editor's own handlers, which did this, are off: see iotrules_el_use_getc.)
void iotrules_interrupt_install(void);

/// Forgets a Ctrl-C that came while no line was read (a statement ran): call before each line.
void iotrules_interrupt_begin(void);

/// A line editor's character source (libedit's rl_getc_function): one UTF-8 character of `stream`
/// as its Unicode scalar (libedit takes the int as the character), or EOF; after a Ctrl-C, echoes
/// `^C` and returns a newline, so the editor returns the line and the caller drops it. A byte that
/// is not UTF-8 (a stray or cut-short sequence, an overlong, a surrogate) comes as U+10FF00 plus
/// the byte, for the caller to refuse the line with (`iotrules_interrupt_escaped_base`).
int iotrules_interrupt_getc(FILE *stream);

/// The first of the 256 scalars that stand for bytes that were not UTF-8.
#define iotrules_interrupt_escaped_base 0x10FF00

/// How many bytes of the last line read came escaped (0: every U+10FFxx in it was typed as such).
int iotrules_interrupt_escapes(void);

/// 1 when a Ctrl-C ended the last line (clearing it), else 0.
int iotrules_interrupt_take(void);

/// Whether a Ctrl-C came since the last line was read (1 or 0): output between lines stops at it.
int iotrules_interrupt_seen(void);

/// Waits until `descriptor` is readable (1) or a Ctrl-C comes (0, the Ctrl-C taken); -1 on an
/// error. The REPL waits so for work done on another thread that may block (a `.payload @FIFO`).
int iotrules_interrupt_wait(int descriptor);

/// Sets what is called, between keys, after the terminal was resized (SIGWINCH).
void iotrules_interrupt_on_resize(void (*callback)(void));

/// Sets what is told, at each Tab read, whether more input was waiting behind it (1: pasted).
void iotrules_interrupt_on_tab(void (*callback)(int pasted));

#endif
