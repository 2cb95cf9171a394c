#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "CFileOps.h"

int iotrules_rename_noreplace(const char *from, const char *to) {
  return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int iotrules_birth_time_ms(int fd, long long *milliseconds) {
  struct statx info;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &info) != 0) return -1;
  if (!(info.stx_mask & STATX_BTIME)) {
    errno = 0;
    return -1;
  }
  *milliseconds = (long long)info.stx_btime.tv_sec * 1000 + info.stx_btime.tv_nsec / 1000000;
  return 0;
}
