// File operations glibc declares only under _GNU_SOURCE, which Swift's Glibc module leaves out.
#ifndef IOTRULES_CFILEOPS_H
#define IOTRULES_CFILEOPS_H

/// Renames `from` to `to` unless `to` exists (renameat2 with RENAME_NOREPLACE): 0, or -1 with errno
/// set, EEXIST when `to` exists. Where the file system cannot refuse to replace (EINVAL), -1 with
/// errno EINVAL: the caller decides what to do then.
int iotrules_rename_noreplace(const char *from, const char *to);

/// When the file open as `fd` was created (statx's birth time), in epoch milliseconds: 0 with
/// `*milliseconds` set, or -1 when the file system does not keep it (errno set, or 0).
int iotrules_birth_time_ms(int fd, long long *milliseconds);

/// `iotrules_birth_time_ms` of the file at `path` (a symbolic link itself, not followed).
int iotrules_birth_time_ms_at(const char *path, long long *milliseconds);

/// Marks the file open as `fd` as an archive's own, with the template its name came from (the
/// extended attribute `user.iotrules.path`): 0, or -1 with errno set (ENOTSUP where the file system
/// keeps no such attributes).
int iotrules_mark(int fd, const char *value, unsigned long length);

/// The mark of the file at `path` (not following a symbolic link) into `buffer`: its length, or -1
/// with errno set (ENODATA: no mark).
long iotrules_mark_of(const char *path, char *buffer, unsigned long size);

/// Whether standard input was closed when the process started (checked before anything could open a
/// descriptor that takes the number 0, as the runtime's own epoll descriptor then does): 1 or 0.
int iotrules_stdin_closed_at_start(void);

/// Opens `relative` below the folder `root` as open(2) with `flags` and `mode` would, but through no
/// symbolic link and never outside `root` (openat2 with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS):
/// a folder swapped for a link after it was looked at fails with ELOOP (or EXDEV), not followed.
/// Where the kernel has no openat2, or a sandbox forbids it, as openat(2). The descriptor, or -1
/// with errno set.
int iotrules_open_beneath(const char *root, const char *relative, int flags, unsigned int mode);

/// Makes the folder `relative` below `root` (mkdirat in its parent, opened as
/// `iotrules_open_beneath` opens): 0, or -1 with errno set (EEXIST when it is there, ELOOP when a
/// link is on its way).
int iotrules_mkdir_beneath(const char *root, const char *relative, unsigned int mode);

/// Renames `from` to `to`, both below `root`, in their folders opened as `iotrules_open_beneath`
/// opens (renameat2 with `flags`, RENAME_NOREPLACE or 0): 0, or -1 with errno set.
int iotrules_rename_beneath(const char *root, const char *from, const char *to, unsigned int flags);

#endif
