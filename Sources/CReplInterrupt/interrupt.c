#define _GNU_SOURCE
#include "CReplInterrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static int wake[2] = {-1, -1};
static volatile sig_atomic_t interrupted = 0;
/// Set by the signal handlers before they wake the reader: what woke it.
static volatile sig_atomic_t interrupt_pending = 0;
static volatile sig_atomic_t resize_pending = 0;
/// Called, between keys, once the terminal was resized (the editor learns its new width).
static void (*resize_callback)(void) = NULL;
/// How many bytes of the line being read came escaped: a real U+10FFxx typed is a character.
static int escapes = 0;

/// The terminal's settings before the line editor changed them (it reads in raw mode).
static struct termios original;
static int have_original = 0;

static void restore_terminal(void) {
  if (have_original) tcsetattr(STDIN_FILENO, TCSANOW, &original);
}

/// Wakes the reader waiting in `read_byte` (async-signal-safe: one write to a pipe).
static void wake_reader(void) {
  if (wake[1] >= 0) {
    ssize_t written = write(wake[1], "!", 1);
    (void)written;
  }
}

/// SIGTERM, SIGHUP, SIGQUIT: the terminal back as it was, then the default action (the end).
static void on_fatal(int signo) {
  restore_terminal();
  signal(signo, SIG_DFL);
  raise(signo);
}

/// Ctrl-Z (SIGTSTP): the terminal back as it was while stopped, the editor's settings again after.
static void on_stop(int signo) {
  int saved = errno;
  struct termios editing;
  int had_editing = tcgetattr(STDIN_FILENO, &editing) == 0;
  restore_terminal();
  signal(signo, SIG_DFL);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, signo);
  raise(signo);
  sigprocmask(SIG_UNBLOCK, &stop, NULL);  // stops here until SIGCONT
  struct sigaction again;
  memset(&again, 0, sizeof again);
  again.sa_handler = on_stop;
  sigemptyset(&again.sa_mask);
  again.sa_flags = SA_RESTART;
  sigaction(signo, &again, NULL);
  if (had_editing) tcsetattr(STDIN_FILENO, TCSANOW, &editing);
  // Back in the foreground (`fg`): the line being typed is drawn again, as after a resize (the
  // window may have changed meanwhile too); it showed a blank line, the text kept unseen.
  resize_pending = 1;
  wake_reader();
  errno = saved;
}

static void on_interrupt(int signo) {
  int saved = errno;
  if (signo == SIGWINCH) {
    resize_pending = 1;
  } else {
    interrupt_pending = 1;
  }
  wake_reader();
  errno = saved;
}

void iotrules_interrupt_install(void) {
  if (wake[0] >= 0) return;
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake[0] = wake[1] = -1;
    return;
  }
  have_original = tcgetattr(STDIN_FILENO, &original) == 0;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  action.sa_handler = on_interrupt;
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGWINCH, &action, NULL);
  action.sa_handler = on_stop;
  sigaction(SIGTSTP, &action, NULL);
  action.sa_handler = on_fatal;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGHUP, &action, NULL);
  sigaction(SIGQUIT, &action, NULL);
  // A parent may have started the REPL with these blocked (a test runner's threads block them, and
  // the mask is inherited): Ctrl-C would then do nothing, and SIGTERM not end the session.
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGINT);
  sigaddset(&wanted, SIGWINCH);
  sigaddset(&wanted, SIGTSTP);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGHUP);
  sigaddset(&wanted, SIGQUIT);
  pthread_sigmask(SIG_UNBLOCK, &wanted, NULL);
}

static void drain(void) {
  char buffer[64];
  while (wake[0] >= 0 && read(wake[0], buffer, sizeof buffer) > 0) {
  }
}

void iotrules_interrupt_on_resize(void (*callback)(void)) { resize_callback = callback; }

int iotrules_interrupt_seen(void) { return interrupt_pending; }

void iotrules_interrupt_begin(void) {
  drain();
  interrupt_pending = 0;
  // A resize (or a Ctrl-Z) while no line was read: the editor reads the size at each line's start.
  resize_pending = 0;
  interrupted = 0;
  escapes = 0;
}

int iotrules_interrupt_escapes(void) { return escapes; }

/// Waits until `descriptor` is readable (1) or a Ctrl-C comes (0, taken); -1 on an error. With
/// `redraws`, a resize meanwhile gives the editor its new width at once (a resize mid-line: it kept
/// the old one until the next prompt, and drew past the edge of a narrower screen); without, it
/// stays pending for the editor's next key.
static int await_readable(int descriptor, int redraws) {
  for (;;) {
    struct pollfd watched[2] = {{descriptor, POLLIN, 0}, {wake[0], POLLIN, 0}};
    int ready = poll(watched, wake[0] >= 0 ? 2 : 1, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (wake[0] >= 0 && (watched[1].revents & POLLIN)) {
      drain();
      if (redraws && resize_pending) {
        resize_pending = 0;
        if (resize_callback) resize_callback();
      }
      if (!interrupt_pending) continue;
      interrupt_pending = 0;
      return 0;
    }
    if (watched[0].revents & (POLLIN | POLLHUP | POLLERR)) return 1;
  }
}

/// One byte of input; -1 at the end or on an error, -2 after a Ctrl-C.
static int read_byte(int descriptor) {
  for (;;) {
    int state = await_readable(descriptor, 1);
    if (state <= 0) return state == 0 ? -2 : -1;
    unsigned char byte;
    ssize_t count = read(descriptor, &byte, 1);
    if (count == 1) return byte;
    if (count < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return -1;
  }
}

/// A byte read past the end of a character that was not UTF-8, given back for the next one.
static int pushed_back = -1;

/// Told, at each Tab read, whether more input was already waiting behind it: pasted text, not a
/// key pressed for completion (a human's next key comes later than the editor reads the Tab).
static void (*tab_callback)(int pasted) = NULL;

void iotrules_interrupt_on_tab(void (*callback)(int pasted)) { tab_callback = callback; }

/// The scalar standing for an invalid byte: one of the last 256 code points (private use), which
/// the caller finds in the line and refuses, naming the byte; deleted while editing, it is gone.
static int escaped(int byte) {
  escapes += 1;
  return 0x10FF00 + byte;
}

int iotrules_interrupt_getc(FILE *stream) {
  int descriptor = fileno(stream);
  int lead;
  if (pushed_back >= 0) {
    lead = pushed_back;
    pushed_back = -1;
  } else {
    lead = read_byte(descriptor);
  }
  int scalar = lead;
  int more = 0;
  int least = 0;
  if (lead >= 0xF0 && lead <= 0xF4) {
    scalar = lead & 0x07;
    more = 3;
    least = 0x10000;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    scalar = lead & 0x0F;
    more = 2;
    least = 0x800;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    scalar = lead & 0x1F;
    more = 1;
    least = 0x80;
  } else if (lead >= 0x80) {
    return escaped(lead);  // a stray continuation byte or an invalid lead byte
  }
  while (scalar >= 0 && more > 0) {
    int next = read_byte(descriptor);
    if (next < 0) {
      scalar = next;
    } else if ((next & 0xC0) != 0x80) {
      // Cut short: the lead is the bad byte, and this one begins the next character.
      pushed_back = next;
      return escaped(lead);
    } else {
      scalar = (scalar << 6) | (next & 0x3F);
      more -= 1;
    }
  }
  if (scalar == -2) {
    interrupted = 1;
    pushed_back = -1;
    ssize_t written = write(STDOUT_FILENO, "^C", 2);
    (void)written;
    return '\n';
  }
  if (scalar < 0) return EOF;
  if (scalar == '\t' && tab_callback) {
    struct pollfd waiting = {descriptor, POLLIN, 0};
    tab_callback(pushed_back >= 0 || poll(&waiting, 1, 0) > 0);
  }
  // Overlong, a surrogate, or past U+10FFFF: not UTF-8 either.
  if (scalar < least || (scalar >= 0xD800 && scalar <= 0xDFFF) || scalar > 0x10FFFF) return escaped(lead);
  return scalar;
}

int iotrules_interrupt_wait(int descriptor) {
  if (interrupt_pending) {
    interrupt_pending = 0;
    drain();
    return 0;
  }
  return await_readable(descriptor, 0);
}

int iotrules_interrupt_take(void) {
  int was = interrupted;
  interrupted = 0;
  return was;
}
