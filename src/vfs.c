/*
 * vfs.c: the wrappers through which the core calls the file system seam.
 * Each maps the back end's negative errno to the walrus code for its kind
 * of call (WALRUS_EIO_WRITE, WALRUS_EIO_FSYNC, WALRUS_ENOSPC, ...), records
 * a message naming the file, and returns that code.  Poisoning is left to
 * the caller, which knows whether the log's state is still certain.
 *
 * Files of the log are named relative to the log directory, held open for
 * the handle's life when the VFS can (version 5: w->dirh), so that a
 * rename of the directory's path cannot redirect them; with an older VFS
 * the directory's path is joined to each name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Join the log directory and name into out.  No allocation: the write
 * path must not be able to fail for want of memory once it has begun.
 * walrus_open() refuses directories too long for any name walrus uses. */
int walrus__path(walrus_t *w, const char *name, char out[WALRUS__PATH_MAX]) {
  int n = snprintf(out, WALRUS__PATH_MAX, "%s/%s", w->dir, name);
  if (n < 0 || n >= WALRUS__PATH_MAX)
    return walrus__fail(w, WALRUS_EINVAL, 0, "path %s/%s is too long", w->dir,
                        name);
  return WALRUS_OK;
}

int walrus__os_open_failed(walrus_t *w, const char *name, int rc) {
  switch (-rc) {
    case ENOMEM:
      return walrus__fail(w, WALRUS_ENOMEM, 0, "open %s", name);
    case ENOSPC:
    case EDQUOT:
      return walrus__fail(w, WALRUS_ENOSPC, -rc, "create %s", name);
    case ELOOP:
      return walrus__fail(w, WALRUS_EUNSAFE, -rc,
                          "%s/%s is a symbolic link; walrus does not follow "
                          "links inside a log directory",
                          w->dir, name);
    case EISDIR:
    case ENODEV:
    case ENXIO:
      return walrus__fail(w, WALRUS_EUNSAFE, -rc, "%s/%s is not a regular file",
                          w->dir, name);
    case EMLINK:
      return walrus__fail(w, WALRUS_EUNSAFE, -rc,
                          "%s/%s has another hard link; walrus writes only "
                          "files of its own",
                          w->dir, name);
    case EPERM:
      return walrus__fail(w, WALRUS_EUNSAFE, -rc,
                          "%s/%s belongs to another user (or may not be "
                          "written); walrus writes only files of its own",
                          w->dir, name);
    case EROFS:
      return walrus__fail(w, WALRUS_EREADONLY, -rc,
                          "%s is on a read-only file system (EROFS); open it "
                          "with read_only set",
                          w->dir);
    default:
      return walrus__fail(w, WALRUS_EIO, -rc, "open %s in %s", name, w->dir);
  }
}

/* ---- the log directory ------------------------------------------------------
 *
 * The seven methods of version 5 come as a set (walrus_open() checks). */
static int held(const walrus_t *w) {
  return w->vfs->version >= 5 && w->vfs->open_at != NULL;
}

int walrus__os_dir_open(walrus_t *w, int create) {
  int rc;
  if (held(w)) {
    rc = w->vfs->dir_open(w->vfs->ctx, NULL, w->dir, create, w->dir_mode,
                          &w->dirh);
    if (rc != 0) w->dirh = NULL;
  } else {
    rc = create ? w->vfs->mkdir(w->vfs->ctx, w->dir) : 0;
    if (rc == -EEXIST) rc = 0;
  }
  if (rc == 0) return WALRUS_OK;
  if (rc == -ENOENT)
    return walrus__fail(w, WALRUS_EIO, ENOENT, "%s does not exist%s", w->dir,
                        w->cfg.read_only || w->cfg.create_if_missing
                            ? ""
                            : " (create_if_missing is 0)");
  if (rc == -ENOTDIR)
    return walrus__fail(w, WALRUS_EIO, ENOTDIR, "%s is not a directory",
                        w->dir);
  if (rc == -EROFS || rc == -ENOMEM) return walrus__os_open_failed(w, ".", rc);
  return walrus__fail(w, WALRUS_EIO, -rc, "%s %s", create ? "mkdir" : "open",
                      w->dir);
}

void walrus__os_dir_close(walrus_t *w) {
  if (w->salvage_dirh != NULL) w->vfs->dir_close(w->vfs->ctx, w->salvage_dirh);
  if (w->dirh != NULL) w->vfs->dir_close(w->vfs->ctx, w->dirh);
  w->salvage_dirh = w->dirh = NULL;
}

/* Open salvage/ (making it when create is set) once; 0 or a negative
 * errno.  Only the held directory's version: the path one needs none. */
static int salvage_open(walrus_t *w, int create) {
  if (w->salvage_dirh != NULL) return 0;
  int rc = w->vfs->dir_open(w->vfs->ctx, w->dirh, "salvage", create,
                            w->dir_mode, &w->salvage_dirh);
  if (rc != 0) w->salvage_dirh = NULL;
  return rc;
}

static int salvage_failed(walrus_t *w, int rc) {
  if (rc == -ELOOP || rc == -ENOTDIR)
    return walrus__fail(w, WALRUS_EUNSAFE, -rc,
                        "%s/salvage is not a directory of the log (%s); "
                        "walrus moves data only within the log directory",
                        w->dir, rc == -ELOOP ? "a symbolic link" : "a file");
  if (rc == -ENOSPC || rc == -EDQUOT)
    return walrus__fail(w, WALRUS_ENOSPC, -rc, "mkdir %s/salvage", w->dir);
  return walrus__fail(w, WALRUS_EIO, -rc, "open %s/salvage", w->dir);
}

int walrus__os_move_to_salvage(walrus_t *w, const char *name, const char *to) {
  int rc;
  if (held(w)) {
    rc = salvage_open(w, 1);
    if (rc != 0) return salvage_failed(w, rc);
    rc = w->vfs->rename_at(w->vfs->ctx, w->dirh, name, w->salvage_dirh, to);
  } else {
    char pf[WALRUS__PATH_MAX], pd[WALRUS__PATH_MAX], pt[WALRUS__PATH_MAX];
    rc = walrus__path(w, name, pf);
    if (rc == WALRUS_OK) rc = walrus__path(w, "salvage", pd);
    if (rc != WALRUS_OK) return rc;
    if ((size_t)snprintf(pt, sizeof pt, "%s/%s", pd, to) >= sizeof pt)
      return walrus__fail(w, WALRUS_EINVAL, 0, "path %s/%s is too long", pd,
                          to);
    rc = w->vfs->mkdir(w->vfs->ctx, pd);
    if (rc != 0 && rc != -EEXIST) return salvage_failed(w, rc);
    rc = w->vfs->rename(w->vfs->ctx, pf, pt);
  }
  if (rc == 0) return WALRUS_OK;
  if (rc == -ENOSPC || rc == -EDQUOT)
    return walrus__fail(w, WALRUS_ENOSPC, -rc, "rename %s to salvage/%s", name,
                        to);
  return walrus__fail(w, WALRUS_EIO, -rc, "rename %s to salvage/%s", name, to);
}

int walrus__os_sync_salvage(walrus_t *w) {
  int rc;
  if (held(w)) {
    rc = salvage_open(w, 0);
    if (rc != 0) return salvage_failed(w, rc);
    rc = w->vfs->sync_dir_at(w->vfs->ctx, w->salvage_dirh);
  } else {
    char p[WALRUS__PATH_MAX];
    rc = walrus__path(w, "salvage", p);
    if (rc != WALRUS_OK) return rc;
    rc = w->vfs->sync_dir(w->vfs->ctx, p);
  }
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_FSYNC, -rc, "fsync directory %s/salvage",
                      w->dir);
}

int walrus__os_open(walrus_t *w, const char *name, int flags,
                    walrus_vfs_file_t **out) {
  int rc = walrus__os_try_open(w, name, flags, out);
  if (rc == 0) return WALRUS_OK;
  return walrus__os_open_failed(w, name, rc);
}

void walrus__os_close(walrus_t *w, walrus_vfs_file_t *f) {
  if (f != NULL) w->vfs->close(w->vfs->ctx, f);
}

int walrus__os_read(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                    void *buf, size_t n, uint64_t off, size_t *got) {
  int64_t r = w->vfs->pread(w->vfs->ctx, f, buf, n, off);
  if (r < 0)
    return walrus__fail(w, WALRUS_EIO_READ, (int)-r, "read %s at offset %llu",
                        name, (unsigned long long)off);
  *got = (size_t)r;
  return WALRUS_OK;
}

/* Read exactly n bytes; a short read means the file is shorter than its
 * own structure says, which is corruption. */
int walrus__os_read_full(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                         void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  int rc = walrus__os_read(w, f, name, buf, n, off, &got);
  if (rc != WALRUS_OK) return rc;
  if (got != n)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: file ends at offset %llu, expected %zu bytes "
                        "at offset %llu",
                        w->dir, name, (unsigned long long)(off + got), n,
                        (unsigned long long)off);
  return WALRUS_OK;
}

int walrus__os_write(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                     const void *buf, size_t n, uint64_t off) {
  int rc = w->vfs->pwrite(w->vfs->ctx, f, buf, n, off);
  if (rc == 0) return WALRUS_OK;
  if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG)
    return walrus__fail(w, WALRUS_ENOSPC, -rc, "write %s at offset %llu",
                        name, (unsigned long long)off);
  return walrus__fail(w, WALRUS_EIO_WRITE, -rc, "write %s at offset %llu",
                      name, (unsigned long long)off);
}

int walrus__os_sync(walrus_t *w, walrus_vfs_file_t *f, const char *name) {
  int64_t t0 = walrus__mono_ns();
  int rc = w->vfs->sync(w->vfs->ctx, f);
  walrus__stats_fsync(w, (uint64_t)(walrus__mono_ns() - t0));
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_FSYNC, -rc, "fdatasync %s", name);
}

int walrus__os_truncate(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                        uint64_t size) {
  int rc = w->vfs->truncate(w->vfs->ctx, f, size);
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_WRITE, -rc, "truncate %s to %llu", name,
                      (unsigned long long)size);
}

int walrus__os_allocate(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                        uint64_t len) {
  int rc = w->vfs->allocate(w->vfs->ctx, f, 0, len);
  if (rc == 0) return WALRUS_OK;
  if (rc == -EOPNOTSUPP) return WALRUS_ENOTSUP; /* no message: not an error */
  if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG)
    return walrus__fail(w, WALRUS_ENOSPC, -rc, "allocate %llu bytes for %s",
                        (unsigned long long)len, name);
  return walrus__fail(w, WALRUS_EIO_WRITE, -rc, "allocate %llu bytes for %s",
                      (unsigned long long)len, name);
}

int walrus__os_map(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                   uint64_t len, void **addr) {
  int rc = w->vfs->map(w->vfs->ctx, f, len, addr);
  if (rc == 0) return WALRUS_OK;
  if (rc == -EOPNOTSUPP) return WALRUS_ENOTSUP;
  if (rc == -ENOMEM)
    return walrus__fail(w, WALRUS_ENOMEM, 0, "map %llu bytes of %s",
                        (unsigned long long)len, name);
  return walrus__fail(w, WALRUS_EIO_WRITE, -rc, "map %llu bytes of %s",
                      (unsigned long long)len, name);
}

int walrus__os_size(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                    uint64_t *size) {
  int rc = w->vfs->size(w->vfs->ctx, f, size);
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_READ, -rc, "size of %s", name);
}

int walrus__os_rename(walrus_t *w, const char *from, const char *to) {
  int rc;
  if (held(w)) {
    rc = w->vfs->rename_at(w->vfs->ctx, w->dirh, from, w->dirh, to);
  } else {
    char pf[WALRUS__PATH_MAX], pt[WALRUS__PATH_MAX];
    rc = walrus__path(w, from, pf);
    if (rc == WALRUS_OK) rc = walrus__path(w, to, pt);
    if (rc != WALRUS_OK) return rc;
    rc = w->vfs->rename(w->vfs->ctx, pf, pt);
  }
  if (rc == 0) return WALRUS_OK;
  if (rc == -ENOSPC || rc == -EDQUOT)
    return walrus__fail(w, WALRUS_ENOSPC, -rc, "rename %s to %s", from, to);
  return walrus__fail(w, WALRUS_EIO, -rc, "rename %s to %s", from, to);
}

int walrus__os_unlink(walrus_t *w, const char *name) {
  int rc = walrus__os_try_unlink(w, name);
  if (rc == 0 || rc == -ENOENT) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO, -rc, "unlink %s", name);
}

int walrus__os_sync_dir(walrus_t *w) {
  int rc = held(w) ? w->vfs->sync_dir_at(w->vfs->ctx, w->dirh)
                   : w->vfs->sync_dir(w->vfs->ctx, w->dir);
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_FSYNC, -rc, "fsync directory %s", w->dir);
}

/* The parent is the path up to the last '/' that is not at its end; "."
 * when there is none, "/" for a directory in the root. */
int walrus__os_sync_parent(walrus_t *w) {
  char parent[WALRUS__PATH_MAX];
  size_t n = strlen(w->dir);
  while (n > 1 && w->dir[n - 1] == '/') n--;
  while (n > 0 && w->dir[n - 1] != '/') n--;
  while (n > 1 && w->dir[n - 1] == '/') n--;
  if (n == 0) {
    memcpy(parent, ".", 2);
  } else {
    memcpy(parent, w->dir, n); /* walrus_open() bounds the length */
    parent[n] = '\0';
  }
  int rc = w->vfs->sync_dir(w->vfs->ctx, parent);
  if (rc == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_EIO_FSYNC, -rc, "fsync %s, the parent of %s",
                      parent, w->dir);
}

/* ---- raw calls --------------------------------------------------------------
 *
 * For the callers that decide on the errno themselves (a file that may not
 * exist yet, a lock another process may hold) or whose failure is not an
 * error of the log (DURABLE and READER-* are not data; a cut on a path that
 * has already failed and poisoned the handle): the back end's 0 or
 * negative errno, and no message. */

/* walrus_open() refuses a directory too long for any name walrus uses;
 * -ENAMETOOLONG should a path still not fit. */
int walrus__os_try_open(walrus_t *w, const char *name, int flags,
                        walrus_vfs_file_t **out) {
  int rc;
  *out = NULL;
  if (held(w)) {
    rc = w->vfs->open_at(w->vfs->ctx, w->dirh, name, flags, w->cfg.file_mode,
                         out);
  } else {
    char path[WALRUS__PATH_MAX];
    if (walrus__path(w, name, path) != WALRUS_OK) return -ENAMETOOLONG;
    rc = w->vfs->open(w->vfs->ctx, path, flags, out);
  }
  if (rc != 0) *out = NULL;
  return rc;
}

int walrus__os_try_unlink(walrus_t *w, const char *name) {
  if (held(w)) return w->vfs->unlink_at(w->vfs->ctx, w->dirh, name);
  char path[WALRUS__PATH_MAX];
  if (walrus__path(w, name, path) != WALRUS_OK) return -ENAMETOOLONG;
  return w->vfs->unlink(w->vfs->ctx, path);
}

int64_t walrus__os_try_read(walrus_t *w, walrus_vfs_file_t *f, void *buf,
                            size_t n, uint64_t off) {
  return w->vfs->pread(w->vfs->ctx, f, buf, n, off);
}

int walrus__os_try_size(walrus_t *w, walrus_vfs_file_t *f, uint64_t *size) {
  return w->vfs->size(w->vfs->ctx, f, size);
}

int walrus__os_try_truncate(walrus_t *w, walrus_vfs_file_t *f,
                            uint64_t size) {
  return w->vfs->truncate(w->vfs->ctx, f, size);
}

int walrus__os_lock(walrus_t *w, walrus_vfs_file_t *f) {
  return w->vfs->lock(w->vfs->ctx, f);
}

int walrus__os_list(walrus_t *w, walrus_vfs_list_fn fn, void *arg) {
  if (held(w)) return w->vfs->list_at(w->vfs->ctx, w->dirh, fn, arg);
  return w->vfs->list(w->vfs->ctx, w->dir, fn, arg);
}

int walrus__os_try_map(walrus_t *w, walrus_vfs_file_t *f, uint64_t len,
                       void **addr) {
  return w->vfs->map(w->vfs->ctx, f, len, addr);
}

int walrus__os_unmap(walrus_t *w, walrus_vfs_file_t *f, void *addr,
                     uint64_t len) {
  return w->vfs->unmap(w->vfs->ctx, f, addr, len);
}

int walrus__os_map_read(walrus_t *w, walrus_vfs_file_t *f, uint64_t len,
                        void **addr) {
  return w->vfs->map_read(w->vfs->ctx, f, len, addr);
}

/* Takes the VFS, not the handle: a mapping outlives its handle (rmap.c). */
int walrus__vfs_unmap_read(const walrus_vfs_t *vfs, void *addr, uint64_t len) {
  return vfs->unmap_read(vfs->ctx, addr, len);
}

void walrus__os_advise(walrus_t *w, walrus_vfs_file_t *f, uint64_t off,
                       uint64_t len) {
  if (w->vfs->version >= 3 && w->vfs->advise != NULL)
    (void)w->vfs->advise(w->vfs->ctx, f, off, len);
}

/* ---- the system besides files (VFS version 4) ------------------------------
 *
 * Each uses the handle's VFS when it has the method, else the POSIX back
 * end's. */

/* The table that has method m: the handle's, or the POSIX one. */
#define SYS_VFS(w, m)                                                  \
  ((w)->vfs->version >= 4 && (w)->vfs->m != NULL ? (w)->vfs            \
                                                 : walrus_vfs_posix())

void walrus__os_wait_word(walrus_t *w, const uint32_t *addr, uint32_t expect,
                          int64_t timeout_ns) {
  const walrus_vfs_t *v = SYS_VFS(w, wait_word);
  v->wait_word(v->ctx, addr, expect, timeout_ns);
}

void walrus__os_wake_word(walrus_t *w, uint32_t *addr) {
  const walrus_vfs_t *v = SYS_VFS(w, wake_word);
  v->wake_word(v->ctx, addr);
}

void walrus__os_populate(walrus_t *w, const void *addr, uint64_t len) {
  const walrus_vfs_t *v = SYS_VFS(w, populate);
  v->populate(v->ctx, addr, len);
}

int walrus__random(walrus_t *w, void *buf, size_t n) {
  const walrus_vfs_t *v = SYS_VFS(w, random);
  return v->random(v->ctx, buf, n);
}

void walrus__sys_init(walrus_t *w) {
  const walrus_vfs_t *v = SYS_VFS(w, clock_ns);
  w->clock_ns = v->clock_ns;
  w->clock_ctx = v->ctx;
}

int64_t walrus__clock_ns(walrus_t *w) {
  return w->clock_ns(w->clock_ctx, 0);
}

/* CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a condition
 * variable set to that clock. */
struct timespec walrus__deadline_ms(uint32_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
  ts.tv_sec += (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}
