#define _GNU_SOURCE
#include "CReplInterrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int wake[2] = {-1, -1};
static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int signo) {
  (void)signo;
  int saved = errno;
  if (wake[1] >= 0) {
    ssize_t written = write(wake[1], "!", 1);
    (void)written;
  }
  errno = saved;
}

void iotrules_interrupt_install(void) {
  if (wake[0] >= 0) return;
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake[0] = wake[1] = -1;
    return;
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, NULL);
}

static void drain(void) {
  char buffer[64];
  while (wake[0] >= 0 && read(wake[0], buffer, sizeof buffer) > 0) {
  }
}

void iotrules_interrupt_begin(void) {
  drain();
  interrupted = 0;
}

/// One byte of input; -1 at the end or on an error, -2 after a Ctrl-C.
static int read_byte(int descriptor) {
  for (;;) {
    struct pollfd watched[2] = {{descriptor, POLLIN, 0}, {wake[0], POLLIN, 0}};
    int ready = poll(watched, wake[0] >= 0 ? 2 : 1, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (wake[0] >= 0 && (watched[1].revents & POLLIN)) {
      drain();
      return -2;
    }
    if (watched[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      unsigned char byte;
      ssize_t count = read(descriptor, &byte, 1);
      if (count == 1) return byte;
      if (count < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return -1;
    }
  }
}

int iotrules_interrupt_getc(FILE *stream) {
  int descriptor = fileno(stream);
  int lead = read_byte(descriptor);
  int scalar = lead;
  int more = 0;
  if (lead >= 0xF0 && lead <= 0xF4) {
    scalar = lead & 0x07;
    more = 3;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    scalar = lead & 0x0F;
    more = 2;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    scalar = lead & 0x1F;
    more = 1;
  } else if (lead >= 0x80) {
    scalar = 0xFFFD;  // a stray continuation byte or an invalid lead byte
  }
  while (scalar >= 0 && more > 0) {
    int next = read_byte(descriptor);
    if (next < 0) {
      scalar = next;
    } else if ((next & 0xC0) != 0x80) {
      scalar = 0xFFFD;
      more = 0;
    } else {
      scalar = (scalar << 6) | (next & 0x3F);
      more -= 1;
    }
  }
  if (scalar == -2) {
    interrupted = 1;
    ssize_t written = write(STDOUT_FILENO, "^C", 2);
    (void)written;
    return '\n';
  }
  return scalar < 0 ? EOF : scalar;
}

int iotrules_interrupt_take(void) {
  int was = interrupted;
  interrupted = 0;
  return was;
}
