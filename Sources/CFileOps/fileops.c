#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "CFileOps.h"

int iotrules_rename_noreplace(const char *from, const char *to) {
  return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

static int birth_time(int dirfd, const char *path, int flags, long long *milliseconds) {
  struct statx info;
  if (statx(dirfd, path, flags, STATX_BTIME, &info) != 0) return -1;
  if (!(info.stx_mask & STATX_BTIME)) {
    errno = 0;
    return -1;
  }
  *milliseconds = (long long)info.stx_btime.tv_sec * 1000 + info.stx_btime.tv_nsec / 1000000;
  return 0;
}

int iotrules_birth_time_ms(int fd, long long *milliseconds) {
  return birth_time(fd, "", AT_EMPTY_PATH, milliseconds);
}

int iotrules_birth_time_ms_at(const char *path, long long *milliseconds) {
  return birth_time(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, milliseconds);
}

static const char *const mark_name = "user.iotrules.path";

int iotrules_mark(int fd, const char *value, unsigned long length) {
  return fsetxattr(fd, mark_name, value, length, 0);
}

long iotrules_mark_of(const char *path, char *buffer, unsigned long size) {
  return lgetxattr(path, mark_name, buffer, size);
}

static int stdin_closed_at_start = 0;

/// Runs before main: a closed descriptor 0 is taken by the first descriptor anything opens.
__attribute__((constructor)) static void iotrules_note_standard_input(void) {
  stdin_closed_at_start = fcntl(0, F_GETFD) == -1 && errno == EBADF;
}

int iotrules_stdin_closed_at_start(void) { return stdin_closed_at_start; }

int iotrules_open_beneath(const char *root, const char *relative, int flags, unsigned int mode) {
  int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  struct open_how how = {
      .flags = (unsigned long long)flags,
      .mode = (flags & O_CREAT) ? mode : 0,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  long fd = syscall(SYS_openat2, dir, relative, &how, sizeof how);
  int saved = errno;
  if (fd < 0 && (saved == ENOSYS || saved == EPERM)) {
    // A kernel before 5.6, or a sandbox that forbids the call: as open(2) does.
    fd = openat(dir, relative, flags, mode);
    saved = errno;
  }
  close(dir);
  errno = saved;
  return (int)fd;
}

/// The folder of `relative` below `root`, opened beneath it through no link (O_PATH), and in
/// `*name` where its last part starts; -1 with errno set.
static int parent_beneath(const char *root, const char *relative, const char **name) {
  const char *slash = strrchr(relative, '/');
  *name = slash ? slash + 1 : relative;
  if (!slash) return open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  size_t length = (size_t)(slash - relative);
  char *folder = strndup(relative, length == 0 ? 1 : length);
  if (!folder) return -1;
  int fd = iotrules_open_beneath(root, folder, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  int saved = errno;
  free(folder);
  errno = saved;
  return fd;
}

int iotrules_mkdir_beneath(const char *root, const char *relative, unsigned int mode) {
  const char *name;
  int dir = parent_beneath(root, relative, &name);
  if (dir < 0) return -1;
  int result = mkdirat(dir, name, mode);
  int saved = errno;
  close(dir);
  errno = saved;
  return result;
}

int iotrules_rename_beneath(const char *root, const char *from, const char *to, unsigned int flags) {
  const char *fromName;
  const char *toName;
  int dir = parent_beneath(root, from, &fromName);
  if (dir < 0) return -1;
  int other = parent_beneath(root, to, &toName);
  if (other < 0) {
    int saved = errno;
    close(dir);
    errno = saved;
    return -1;
  }
  int result = renameat2(dir, fromName, other, toName, flags);
  int saved = errno;
  close(dir);
  close(other);
  errno = saved;
  return result;
}
