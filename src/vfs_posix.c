/*
 * vfs_posix.c: the default file system back end, over POSIX calls.
 *
 * Writes loop over EINTR and short counts; a write that makes no progress
 * is reported as -ENOSPC.  sync is fdatasync(): the log's records are data,
 * and the only metadata that matters to them, the file size, is covered by
 * fdatasync on Linux.  On macOS fdatasync does not reach the platter, so
 * F_FULLFSYNC is used there.  Directories are synced by opening them and
 * calling fsync, which is how Linux makes a create, rename or unlink
 * durable.
 *
 * map is mmap(MAP_SHARED): stores go to the page cache like pwrite, and
 * fdatasync writes them back.  map_read is a read-only MAP_SHARED mapping,
 * which outlives the descriptor and the file's name; advise is
 * posix_fadvise(WILLNEED).
 *
 * The log directory is held as a descriptor, and its files are opened,
 * renamed and removed with openat, renameat and unlinkat relative to it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#define HAVE_FUTEX 1
#else
#define HAVE_FUTEX 0
#endif

/* madvise: fault pages in ahead of the reader (Linux 5.14). */
#ifdef MADV_POPULATE_READ
#define POPULATE_READ MADV_POPULATE_READ
#else
#define POPULATE_READ 22
#endif

#include "internal.h"

struct walrus_vfs_file_s {
  int fd; /* the descriptor */
};

struct walrus_vfs_dir_s {
  int fd;    /* the directory, O_RDONLY | O_DIRECTORY */
  uid_t uid; /* its owner */
};

/* A log directory is input: its last path component is never followed if
 * it is a symbolic link (O_NOFOLLOW: -ELOOP), a FIFO cannot make the open
 * hang (O_NONBLOCK, cleared after), and anything but a regular file is
 * refused once open (-EISDIR for a directory, -ENODEV for a FIFO, socket
 * or device).  A file opened for writing must have no other hard link
 * (-EMLINK): a link to a file outside the directory would let walrus write
 * it.  When the file is named in a held directory (d), one opened for
 * writing must also belong to this process's user or to the directory's
 * owner (-EPERM).  The directory itself may be a symbolic link; only the
 * file's own name is checked. */
static int open_file(const walrus_vfs_dir_t *d, const char *path, int flags,
                     unsigned mode, walrus_vfs_file_t **out) {
  int oflags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  struct stat st;
  oflags |= (flags & WALRUS_VFS_WRITE) ? O_RDWR : O_RDONLY;
  if (flags & WALRUS_VFS_CREATE) oflags |= O_CREAT | O_EXCL;
  walrus_vfs_file_t *f = malloc(sizeof *f);
  if (f == NULL) return -ENOMEM;
  do {
    f->fd = openat(d != NULL ? d->fd : AT_FDCWD, path, oflags, (mode_t)mode);
  } while (f->fd < 0 && errno == EINTR);
  int e = f->fd < 0 ? errno : 0;
  if (e == 0 && fstat(f->fd, &st) != 0) e = errno;
  if (e == 0 && S_ISDIR(st.st_mode)) e = EISDIR;
  if (e == 0 && !S_ISREG(st.st_mode)) e = ENODEV;
  if (e == 0 && (flags & WALRUS_VFS_WRITE) && st.st_nlink > 1) e = EMLINK;
  if (e == 0 && d != NULL && (flags & WALRUS_VFS_WRITE) &&
      st.st_uid != geteuid() && st.st_uid != d->uid)
    e = EPERM;
  if (e == 0 && fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) != 0)
    e = errno;
  if (e != 0) {
    if (f->fd >= 0) close(f->fd);
    free(f);
    return -e;
  }
  *out = f;
  return 0;
}

static int px_open(void *ctx, const char *path, int flags,
                   walrus_vfs_file_t **out) {
  (void)ctx;
  return open_file(NULL, path, flags, 0600, out);
}

static int px_close(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  /* Linux releases the descriptor even when close fails; never retry. */
  int rc = close(f->fd) == 0 ? 0 : -errno;
  free(f);
  return rc == -EINTR ? 0 : rc;
}

static int64_t px_pread(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                        uint64_t off) {
  size_t done = 0;
  (void)ctx;
  while (done < n) {
    ssize_t r = pread(f->fd, (char *)buf + done, n - done,
                      (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    done += (size_t)r;
  }
  return (int64_t)done;
}

static int px_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                     size_t n, uint64_t off) {
  size_t done = 0;
  (void)ctx;
  while (done < n) {
    ssize_t r = pwrite(f->fd, (const char *)buf + done, n - done,
                       (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -ENOSPC;
    done += (size_t)r;
  }
  return 0;
}

static int px_sync(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
#if defined(__APPLE__)
  if (fcntl(f->fd, F_FULLFSYNC) == 0) return 0;
  return -errno;
#else
  /* Never retried, not even on EINTR: after a failed fdatasync Linux may
   * have dropped the dirty pages, and a second call would report success
   * for data that never reached the disk. */
  return fdatasync(f->fd) == 0 ? 0 : -errno;
#endif
}

static int px_truncate(void *ctx, walrus_vfs_file_t *f, uint64_t size) {
  (void)ctx;
  int rc;
  do {
    rc = ftruncate(f->fd, (off_t)size);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : -errno;
}

static int px_allocate(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                       uint64_t len) {
  (void)ctx;
#if defined(__linux__)
  if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
    return 0;
  return -errno;
#else
  (void)f;
  (void)off;
  (void)len;
  return -EOPNOTSUPP;
#endif
}

static int px_size(void *ctx, walrus_vfs_file_t *f, uint64_t *size) {
  struct stat st;
  (void)ctx;
  if (fstat(f->fd, &st) != 0) return -errno;
  *size = (uint64_t)st.st_size;
  return 0;
}

static int px_lock(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  int rc;
  do {
    rc = flock(f->fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : -errno;
}

static int px_rename(void *ctx, const char *from, const char *to) {
  (void)ctx;
  return rename(from, to) == 0 ? 0 : -errno;
}

static int px_unlink(void *ctx, const char *path) {
  (void)ctx;
  return unlink(path) == 0 ? 0 : -errno;
}

static int px_sync_dir(void *ctx, const char *path) {
  (void)ctx;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

/* Call fn for each entry of d but "." and ".."; closes d. */
static int list_entries(DIR *d, walrus_vfs_list_fn fn, void *arg) {
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno != 0) rc = -errno;
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    rc = fn(arg, de->d_name);
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}

static int px_list(void *ctx, const char *path, walrus_vfs_list_fn fn,
                   void *arg) {
  (void)ctx;
  DIR *d = opendir(path);
  if (d == NULL) return -errno;
  return list_entries(d, fn, arg);
}

static int px_mkdir(void *ctx, const char *path) {
  (void)ctx;
  return mkdir(path, 0700) == 0 ? 0 : -errno;
}

static int px_map(void *ctx, walrus_vfs_file_t *f, uint64_t len,
                  void **addr) {
  (void)ctx;
  if (len == 0 || len > (uint64_t)SIZE_MAX) return -EINVAL;
  void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd,
                 0);
  if (p == MAP_FAILED) return -errno;
  *addr = p;
  return 0;
}

static int px_unmap(void *ctx, walrus_vfs_file_t *f, void *addr,
                    uint64_t len) {
  (void)ctx;
  (void)f;
  return munmap(addr, (size_t)len) == 0 ? 0 : -errno;
}

static int px_map_read(void *ctx, walrus_vfs_file_t *f, uint64_t len,
                       void **addr) {
  (void)ctx;
  if (len == 0 || len > (uint64_t)SIZE_MAX) return -EINVAL;
  void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
  if (p == MAP_FAILED) return -errno;
  *addr = p;
  return 0;
}

static int px_unmap_read(void *ctx, void *addr, uint64_t len) {
  (void)ctx;
  return munmap(addr, (size_t)len) == 0 ? 0 : -errno;
}

static int px_advise(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                     uint64_t len) {
  (void)ctx;
  return -posix_fadvise(f->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

static void px_wait_word(void *ctx, const uint32_t *addr, uint32_t expect,
                         int64_t timeout_ns) {
  struct timespec ts = {(time_t)(timeout_ns / 1000000000),
                        (long)(timeout_ns % 1000000000)};
  (void)ctx;
#if HAVE_FUTEX
  /* Returns early on a wake, a changed word or a signal. */
  syscall(SYS_futex, addr, FUTEX_WAIT, expect, &ts, NULL, 0);
#else
  (void)addr;
  (void)expect;
  nanosleep(&ts, NULL);
#endif
}

static void px_wake_word(void *ctx, uint32_t *addr) {
  (void)ctx;
#if HAVE_FUTEX
  syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
  (void)addr;
#endif
}

static void px_populate(void *ctx, const void *addr, uint64_t len) {
  (void)ctx;
  void *p = (void *)(uintptr_t)addr; /* madvise takes a non-const pointer */
  if (madvise(p, (size_t)len, POPULATE_READ) != 0)
    madvise(p, (size_t)len, MADV_WILLNEED); /* older kernels */
}

/* Salts and ids only need to differ between logs, segments and
 * transactions, but getrandom costs nothing. */
static int px_random(void *ctx, void *buf, size_t n) {
  size_t done = 0;
  (void)ctx;
  while (done < n) {
    ssize_t r = getrandom((char *)buf + done, n - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (size_t)r;
  }
  return 0;
}

static int64_t px_clock_ns(void *ctx, int realtime) {
  struct timespec ts;
  (void)ctx;
  clock_gettime(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- version 5: the held directory ----------------------------------------
 */

/* A name inside a held directory is one component: no '/', not "." or
 * "..", so that nothing can climb out of the directory. */
static int bad_name(const char *name) {
  return name[0] == '\0' || strchr(name, '/') != NULL ||
         strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static int px_dir_open(void *ctx, walrus_vfs_dir_t *parent, const char *name,
                       int create, unsigned mode, walrus_vfs_dir_t **out) {
  int at = parent != NULL ? parent->fd : AT_FDCWD;
  int oflags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  struct stat st;
  (void)ctx;
  if (parent != NULL) {
    if (bad_name(name)) return -EINVAL;
    oflags |= O_NOFOLLOW; /* a link named salvage is not followed out */
  }
  if (create && mkdirat(at, name, (mode_t)mode) != 0 && errno != EEXIST)
    return -errno;
  walrus_vfs_dir_t *d = malloc(sizeof *d);
  if (d == NULL) return -ENOMEM;
  do {
    d->fd = openat(at, name, oflags);
  } while (d->fd < 0 && errno == EINTR);
  int e = d->fd < 0 ? errno : 0;
  if (e == 0 && fstat(d->fd, &st) != 0) e = errno;
  if (e != 0) {
    if (d->fd >= 0) close(d->fd);
    free(d);
    return -e;
  }
  d->uid = st.st_uid;
  *out = d;
  return 0;
}

static int px_dir_close(void *ctx, walrus_vfs_dir_t *d) {
  (void)ctx;
  int rc = close(d->fd) == 0 ? 0 : -errno;
  free(d);
  return rc == -EINTR ? 0 : rc;
}

static int px_open_at(void *ctx, walrus_vfs_dir_t *d, const char *name,
                      int flags, unsigned mode, walrus_vfs_file_t **out) {
  (void)ctx;
  if (bad_name(name)) return -EINVAL;
  return open_file(d, name, flags, mode, out);
}

static int px_rename_at(void *ctx, walrus_vfs_dir_t *d_from, const char *from,
                        walrus_vfs_dir_t *d_to, const char *to) {
  (void)ctx;
  if (bad_name(from) || bad_name(to)) return -EINVAL;
  return renameat(d_from->fd, from, d_to->fd, to) == 0 ? 0 : -errno;
}

static int px_unlink_at(void *ctx, walrus_vfs_dir_t *d, const char *name) {
  (void)ctx;
  if (bad_name(name)) return -EINVAL;
  return unlinkat(d->fd, name, 0) == 0 ? 0 : -errno;
}

static int px_sync_dir_at(void *ctx, walrus_vfs_dir_t *d) {
  (void)ctx;
  return fsync(d->fd) == 0 ? 0 : -errno;
}

/* A listing gets a descriptor of its own ("." opened again), so that two
 * listings at once do not share a read position. */
static int px_list_at(void *ctx, walrus_vfs_dir_t *d, walrus_vfs_list_fn fn,
                      void *arg) {
  (void)ctx;
  int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    int e = errno;
    close(fd);
    return -e;
  }
  return list_entries(dir, fn, arg);
}

static const walrus_vfs_t posix_vfs = {
    WALRUS_VFS_VERSION,
    NULL,
    px_open,
    px_close,
    px_pread,
    px_pwrite,
    px_sync,
    px_truncate,
    px_allocate,
    px_size,
    px_lock,
    px_rename,
    px_unlink,
    px_sync_dir,
    px_list,
    px_mkdir,
    px_map,
    px_unmap,
    px_map_read,
    px_unmap_read,
    px_advise,
    px_wait_word,
    px_wake_word,
    px_populate,
    px_random,
    px_clock_ns,
    px_dir_open,
    px_dir_close,
    px_open_at,
    px_rename_at,
    px_unlink_at,
    px_sync_dir_at,
    px_list_at,
};

const walrus_vfs_t *walrus_vfs_posix(void) { return &posix_vfs; }
