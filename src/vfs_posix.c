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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct walrus_vfs_file_s {
  int fd; /* the descriptor */
};

static int px_open(void *ctx, const char *path, int flags,
                   walrus_vfs_file_t **out) {
  int oflags = O_CLOEXEC;
  (void)ctx;
  oflags |= (flags & WALRUS_VFS_WRITE) ? O_RDWR : O_RDONLY;
  if (flags & WALRUS_VFS_CREATE) oflags |= O_CREAT | O_EXCL;
  walrus_vfs_file_t *f = malloc(sizeof *f);
  if (f == NULL) return -ENOMEM;
  do {
    f->fd = open(path, oflags, 0644);
  } while (f->fd < 0 && errno == EINTR);
  if (f->fd < 0) {
    int e = errno;
    free(f);
    return -e;
  }
  *out = f;
  return 0;
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

static int px_list(void *ctx, const char *path, walrus_vfs_list_fn fn,
                   void *arg) {
  (void)ctx;
  DIR *d = opendir(path);
  if (d == NULL) return -errno;
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

static int px_mkdir(void *ctx, const char *path) {
  (void)ctx;
  return mkdir(path, 0755) == 0 ? 0 : -errno;
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

static const walrus_vfs_t posix_vfs = {
    WALRUS_VFS_VERSION, NULL,        px_open,     px_close, px_pread,
    px_pwrite,          px_sync,     px_truncate, px_allocate, px_size,
    px_lock,            px_rename,   px_unlink,   px_sync_dir, px_list,
    px_mkdir,           px_map,      px_unmap,    px_map_read,
    px_unmap_read,      px_advise,
};

const walrus_vfs_t *walrus_vfs_posix(void) { return &posix_vfs; }
