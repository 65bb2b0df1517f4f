/*
 * vfs_fault.c: the counting, failing and crashing test VFS of vfs_fault.h.
 *
 * Each method of the table goes through on_call(), which counts the call,
 * records it in the history and decides, under the mutex, whether the armed
 * fault fires.  A failed call is not performed (except close and unmap,
 * which are always performed because walrus treats the file or mapping as
 * gone either way); a
 * short pwrite performs the first half of the write and then fails; a
 * crash sends SIGKILL to the process before the call is performed.
 *
 * Files are wrapped so that the history can name them; a rename renames
 * the open files that had the old name, so a segment created as .seg.tmp
 * shows as .seg once renamed.
 */
#define _GNU_SOURCE
#include "vfs_fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VF_HISTORY_MAX 1024
#define VF_NAME_MAX 40

/* An open file: the POSIX back end's file plus the file's base name. */
typedef struct vf_file_s {
  walrus_vfs_file_t *inner; /* the wrapped back end's file */
  char name[VF_NAME_MAX];   /* base name, for the history; follows renames */
  int maps;                 /* live mappings (guarded by vf_s.mu) */
  struct vf_file_s *prev;   /* open files list (guarded by vf_s.mu) */
  struct vf_file_s *next;   /* open files list */
} vf_file_t;

/* One call in the history. */
typedef struct vf_call_s {
  vf_method_t m;          /* which method */
  char name[VF_NAME_MAX]; /* base name of the file or path */
} vf_call_t;

/* The armed fault. */
enum vf_mode { VF_MODE_NONE, VF_MODE_FAIL, VF_MODE_SHORT, VF_MODE_CRASH };

struct vf_s {
  walrus_vfs_t vfs;               /* the table handed to walrus; ctx = this */
  const walrus_vfs_t *posix;      /* the wrapped back end */
  pthread_mutex_t mu;             /* guards everything below */
  uint64_t counts[VF__COUNT];     /* calls per method; [VF_ANY] is the total */
  enum vf_mode mode;              /* armed fault kind */
  vf_method_t arm_m;              /* the kind of call that is counted */
  uint64_t arm_nth;               /* fire at this call (1-based) */
  uint64_t arm_seen;              /* calls of kind arm_m since arming */
  int arm_err;                    /* negative errno for VF_MODE_FAIL and
                                     VF_MODE_SHORT (0 there: return the
                                     count written) */
  int arm_persistent;             /* keep failing after the nth call */
  uint64_t fired;                 /* calls failed by the armed fault */
  uint64_t fired_at;              /* history position of the first (0) */
  uint64_t misuse;                /* map contract misuse seen */
  char misuse_msg[160];           /* the first of it */
  vf_file_t *files;               /* open files */
  size_t hist_n;                  /* calls recorded in hist */
  uint64_t hist_total;            /* calls since the history was cleared */
  vf_call_t hist[VF_HISTORY_MAX]; /* the first calls since clearing */
};

static const char *const method_names[VF__COUNT] = {
    "any",      "open",     "close", "pread", "pwrite", "sync",
    "truncate", "allocate", "size",  "lock",  "rename", "unlink",
    "sync_dir", "list",     "mkdir", "map",   "unmap",  "dir_open"};

const char *vf_method_name(vf_method_t m) {
  if ((int)m < 0 || m >= VF__COUNT) return "?";
  return method_names[m];
}

/* Copy the last component of path (at most VF_NAME_MAX - 1 bytes). */
static void base_name(char *out, const char *path) {
  const char *b = path == NULL ? "" : strrchr(path, '/');
  b = b == NULL ? path : b + 1;
  snprintf(out, VF_NAME_MAX, "%s", b);
}

/*
 * Count a call of method m on name; returns 0 to perform it, or the
 * negative errno to return instead.  Never returns when a crash fires.
 * When a short write fires, *partial (which only pwrite passes) is set to
 * 1 and the return value is what to return after writing half.
 */
static int on_call_ex(vf_t *vf, vf_method_t m, const char *name,
                      int *partial) {
  int rc = 0;
  pthread_mutex_lock(&vf->mu);
  vf->counts[VF_ANY]++;
  vf->counts[m]++;
  vf->hist_total++;
  if (vf->hist_n < VF_HISTORY_MAX) {
    vf->hist[vf->hist_n].m = m;
    snprintf(vf->hist[vf->hist_n].name, VF_NAME_MAX, "%s", name);
    vf->hist_n++;
  }
  if (vf->mode != VF_MODE_NONE && (vf->arm_m == VF_ANY || vf->arm_m == m)) {
    vf->arm_seen++;
    if (vf->arm_seen == vf->arm_nth ||
        (vf->arm_persistent && vf->arm_seen > vf->arm_nth)) {
      if (vf->mode == VF_MODE_CRASH) {
        /* SIGKILL cannot be caught or blocked; wait for it to land in case
         * delivery to this thread is not immediate. */
        kill(getpid(), SIGKILL);
        for (;;) pause();
      }
      if (vf->fired++ == 0) vf->fired_at = vf->hist_total;
      rc = vf->arm_err;
      if (vf->mode == VF_MODE_SHORT && partial != NULL) *partial = 1;
    }
  }
  pthread_mutex_unlock(&vf->mu);
  return rc;
}

static int on_call(vf_t *vf, vf_method_t m, const char *name) {
  return on_call_ex(vf, m, name, NULL);
}

/* Record a misuse of the map contract.  Caller holds vf->mu. */
static void misuse_locked(vf_t *vf, const char *what, const char *name) {
  if (vf->misuse++ == 0)
    snprintf(vf->misuse_msg, sizeof vf->misuse_msg, "%s %s", what, name);
}

/* A close or truncate of f: misuse if f is still mapped. */
static void check_unmapped(vf_t *vf, vf_file_t *f, const char *what) {
  pthread_mutex_lock(&vf->mu);
  if (f->maps > 0) misuse_locked(vf, what, f->name);
  pthread_mutex_unlock(&vf->mu);
}

/* A held directory: the back end's, and its base name for the history. */
typedef struct vf_dir_s {
  walrus_vfs_dir_t *inner;
  char name[VF_NAME_MAX];
} vf_dir_t;

#define INNER_DIR(d) (((vf_dir_t *)(d))->inner)

/* open (d NULL: path is a whole path) or open_at (path is a name in d). */
static int open_either(vf_t *vf, walrus_vfs_dir_t *d, const char *path,
                       int flags, unsigned mode, walrus_vfs_file_t **out) {
  char name[VF_NAME_MAX];
  base_name(name, path);
  int rc = on_call(vf, VF_OPEN, name);
  if (rc != 0) return rc;
  vf_file_t *f = malloc(sizeof *f);
  if (f == NULL) return -ENOMEM;
  memcpy(f->name, name, sizeof f->name);
  f->maps = 0;
  if (d == NULL)
    rc = vf->posix->open(vf->posix->ctx, path, flags, &f->inner);
  else
    rc = vf->posix->open_at(vf->posix->ctx, INNER_DIR(d), path, flags, mode,
                            &f->inner);
  if (rc != 0) {
    free(f);
    return rc;
  }
  pthread_mutex_lock(&vf->mu);
  f->prev = NULL;
  f->next = vf->files;
  if (vf->files != NULL) vf->files->prev = f;
  vf->files = f;
  pthread_mutex_unlock(&vf->mu);
  *out = (walrus_vfs_file_t *)f;
  return 0;
}

static int vf_open(void *ctx, const char *path, int flags,
                   walrus_vfs_file_t **out) {
  return open_either(ctx, NULL, path, flags, 0, out);
}

static int vf_close(void *ctx, walrus_vfs_file_t *file) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  check_unmapped(vf, f, "close of a mapped file:");
  int rc = on_call(vf, VF_CLOSE, f->name);
  int rc2 = vf->posix->close(vf->posix->ctx, f->inner);
  pthread_mutex_lock(&vf->mu);
  if (f->prev != NULL)
    f->prev->next = f->next;
  else
    vf->files = f->next;
  if (f->next != NULL) f->next->prev = f->prev;
  pthread_mutex_unlock(&vf->mu);
  free(f);
  return rc != 0 ? rc : rc2;
}

static int64_t vf_pread(void *ctx, walrus_vfs_file_t *file, void *buf, size_t n,
                        uint64_t off) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_PREAD, f->name);
  if (rc != 0) return rc;
  return vf->posix->pread(vf->posix->ctx, f->inner, buf, n, off);
}

static int vf_pwrite(void *ctx, walrus_vfs_file_t *file, const void *buf,
                     size_t n, uint64_t off) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int partial = 0;
  int rc = on_call_ex(vf, VF_PWRITE, f->name, &partial);
  if (partial) {
    /* A short write: the first half reaches the file, then it fails. */
    size_t half = n / 2;
    if (half > 0) {
      int r = vf->posix->pwrite(vf->posix->ctx, f->inner, buf, half, off);
      if (r != 0) return r;
    }
    if (rc != 0) return rc;
    return half > 0 ? (int)half : -EIO; /* VF_SHORT_RETURNS_COUNT */
  }
  if (rc != 0) return rc;
  return vf->posix->pwrite(vf->posix->ctx, f->inner, buf, n, off);
}

static int vf_sync(void *ctx, walrus_vfs_file_t *file) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_SYNC, f->name);
  if (rc != 0) return rc;
  return vf->posix->sync(vf->posix->ctx, f->inner);
}

static int vf_truncate(void *ctx, walrus_vfs_file_t *file, uint64_t size) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  check_unmapped(vf, f, "truncate of a mapped file:");
  int rc = on_call(vf, VF_TRUNCATE, f->name);
  if (rc != 0) return rc;
  return vf->posix->truncate(vf->posix->ctx, f->inner, size);
}

static int vf_allocate(void *ctx, walrus_vfs_file_t *file, uint64_t off,
                       uint64_t len) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_ALLOCATE, f->name);
  if (rc != 0) return rc;
  return vf->posix->allocate(vf->posix->ctx, f->inner, off, len);
}

static int vf_size(void *ctx, walrus_vfs_file_t *file, uint64_t *size) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_SIZE, f->name);
  if (rc != 0) return rc;
  return vf->posix->size(vf->posix->ctx, f->inner, size);
}

static int vf_lock(void *ctx, walrus_vfs_file_t *file) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_LOCK, f->name);
  if (rc != 0) return rc;
  return vf->posix->lock(vf->posix->ctx, f->inner);
}

/* rename (d_from NULL: whole paths) or rename_at. */
static int rename_either(vf_t *vf, walrus_vfs_dir_t *d_from, const char *from,
                         walrus_vfs_dir_t *d_to, const char *to) {
  char name[VF_NAME_MAX];
  base_name(name, to);
  int rc = on_call(vf, VF_RENAME, name);
  if (rc != 0) return rc;
  if (d_from == NULL)
    rc = vf->posix->rename(vf->posix->ctx, from, to);
  else
    rc = vf->posix->rename_at(vf->posix->ctx, INNER_DIR(d_from), from,
                              INNER_DIR(d_to), to);
  if (rc == 0) {
    /* Open files now go by their new name in the history. */
    char old[VF_NAME_MAX];
    base_name(old, from);
    pthread_mutex_lock(&vf->mu);
    for (vf_file_t *f = vf->files; f != NULL; f = f->next)
      if (strcmp(f->name, old) == 0) memcpy(f->name, name, sizeof f->name);
    pthread_mutex_unlock(&vf->mu);
  }
  return rc;
}

static int vf_rename(void *ctx, const char *from, const char *to) {
  return rename_either(ctx, NULL, from, NULL, to);
}

static int vf_unlink(void *ctx, const char *path) {
  vf_t *vf = ctx;
  char name[VF_NAME_MAX];
  base_name(name, path);
  int rc = on_call(vf, VF_UNLINK, name);
  if (rc != 0) return rc;
  return vf->posix->unlink(vf->posix->ctx, path);
}

static int vf_sync_dir(void *ctx, const char *path) {
  vf_t *vf = ctx;
  char name[VF_NAME_MAX];
  base_name(name, path);
  int rc = on_call(vf, VF_SYNC_DIR, name);
  if (rc != 0) return rc;
  return vf->posix->sync_dir(vf->posix->ctx, path);
}

static int vf_list(void *ctx, const char *path, walrus_vfs_list_fn fn,
                   void *arg) {
  vf_t *vf = ctx;
  char name[VF_NAME_MAX];
  base_name(name, path);
  int rc = on_call(vf, VF_LIST, name);
  if (rc != 0) return rc;
  return vf->posix->list(vf->posix->ctx, path, fn, arg);
}

static int vf_mkdir(void *ctx, const char *path) {
  vf_t *vf = ctx;
  char name[VF_NAME_MAX];
  base_name(name, path);
  int rc = on_call(vf, VF_MKDIR, name);
  if (rc != 0) return rc;
  return vf->posix->mkdir(vf->posix->ctx, path);
}

static int vf_map(void *ctx, walrus_vfs_file_t *file, uint64_t len,
                  void **addr) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  int rc = on_call(vf, VF_MAP, f->name);
  if (rc != 0) return rc;
  rc = vf->posix->map(vf->posix->ctx, f->inner, len, addr);
  if (rc == 0) {
    pthread_mutex_lock(&vf->mu);
    f->maps++;
    pthread_mutex_unlock(&vf->mu);
  }
  return rc;
}

static int vf_unmap(void *ctx, walrus_vfs_file_t *file, void *addr,
                    uint64_t len) {
  vf_t *vf = ctx;
  vf_file_t *f = (vf_file_t *)file;
  if (f == NULL) {
    /* Misuse (walrus_vfs.h: the file the mapping was made of); the POSIX
     * back end does not need the file, so the mapping is still ended. */
    pthread_mutex_lock(&vf->mu);
    misuse_locked(vf, "unmap of no file:", "NULL");
    pthread_mutex_unlock(&vf->mu);
    int rc = on_call(vf, VF_UNMAP, "(null)");
    int rc2 = vf->posix->unmap(vf->posix->ctx, NULL, addr, len);
    return rc != 0 ? rc : rc2;
  }
  pthread_mutex_lock(&vf->mu);
  if (f->maps > 0)
    f->maps--;
  else
    misuse_locked(vf, "unmap of a file that is not mapped:", f->name);
  pthread_mutex_unlock(&vf->mu);
  int rc = on_call(vf, VF_UNMAP, f->name);
  /* Performed even when failed: walrus forgets the mapping either way. */
  int rc2 = vf->posix->unmap(vf->posix->ctx, f->inner, addr, len);
  return rc != 0 ? rc : rc2;
}

/* ---- version 5: the held directory ---- */

static int vf_dir_open(void *ctx, walrus_vfs_dir_t *parent, const char *name,
                       int create, unsigned mode, walrus_vfs_dir_t **out) {
  vf_t *vf = ctx;
  vf_dir_t *d = malloc(sizeof *d);
  if (d == NULL) return -ENOMEM;
  base_name(d->name, name);
  int rc = on_call(vf, VF_DIR_OPEN, d->name);
  if (rc == 0)
    rc = vf->posix->dir_open(vf->posix->ctx,
                             parent != NULL ? INNER_DIR(parent) : NULL, name,
                             create, mode, &d->inner);
  if (rc != 0) {
    free(d);
    return rc;
  }
  *out = (walrus_vfs_dir_t *)d;
  return 0;
}

static int vf_dir_close(void *ctx, walrus_vfs_dir_t *dir) {
  vf_t *vf = ctx;
  vf_dir_t *d = (vf_dir_t *)dir;
  int rc = vf->posix->dir_close(vf->posix->ctx, d->inner);
  free(d);
  return rc;
}

static int vf_open_at(void *ctx, walrus_vfs_dir_t *d, const char *name,
                      int flags, unsigned mode, walrus_vfs_file_t **out) {
  return open_either(ctx, d, name, flags, mode, out);
}

static int vf_rename_at(void *ctx, walrus_vfs_dir_t *d_from, const char *from,
                        walrus_vfs_dir_t *d_to, const char *to) {
  return rename_either(ctx, d_from, from, d_to, to);
}

static int vf_unlink_at(void *ctx, walrus_vfs_dir_t *d, const char *name) {
  vf_t *vf = ctx;
  int rc = on_call(vf, VF_UNLINK, name);
  if (rc != 0) return rc;
  return vf->posix->unlink_at(vf->posix->ctx, INNER_DIR(d), name);
}

static int vf_sync_dir_at(void *ctx, walrus_vfs_dir_t *d) {
  vf_t *vf = ctx;
  int rc = on_call(vf, VF_SYNC_DIR, ((vf_dir_t *)d)->name);
  if (rc != 0) return rc;
  return vf->posix->sync_dir_at(vf->posix->ctx, INNER_DIR(d));
}

static int vf_list_at(void *ctx, walrus_vfs_dir_t *d, walrus_vfs_list_fn fn,
                      void *arg) {
  vf_t *vf = ctx;
  int rc = on_call(vf, VF_LIST, ((vf_dir_t *)d)->name);
  if (rc != 0) return rc;
  return vf->posix->list_at(vf->posix->ctx, INNER_DIR(d), fn, arg);
}

vf_t *vf_new(void) {
  vf_t *vf = calloc(1, sizeof *vf);
  if (vf == NULL) return NULL;
  if (pthread_mutex_init(&vf->mu, NULL) != 0) {
    free(vf);
    return NULL;
  }
  vf->posix = walrus_vfs_posix();
  vf->vfs.version = WALRUS_VFS_VERSION;
  vf->vfs.ctx = vf;
  vf->vfs.open = vf_open;
  vf->vfs.close = vf_close;
  vf->vfs.pread = vf_pread;
  vf->vfs.pwrite = vf_pwrite;
  vf->vfs.sync = vf_sync;
  vf->vfs.truncate = vf_truncate;
  vf->vfs.allocate = vf_allocate;
  vf->vfs.size = vf_size;
  vf->vfs.lock = vf_lock;
  vf->vfs.rename = vf_rename;
  vf->vfs.unlink = vf_unlink;
  vf->vfs.sync_dir = vf_sync_dir;
  vf->vfs.list = vf_list;
  vf->vfs.mkdir = vf_mkdir;
  vf->vfs.map = vf_map;     /* version 2 */
  vf->vfs.unmap = vf_unmap; /* version 2 */
  vf->vfs.dir_open = vf_dir_open; /* version 5 */
  vf->vfs.dir_close = vf_dir_close;
  vf->vfs.open_at = vf_open_at;
  vf->vfs.rename_at = vf_rename_at;
  vf->vfs.unlink_at = vf_unlink_at;
  vf->vfs.sync_dir_at = vf_sync_dir_at;
  vf->vfs.list_at = vf_list_at;
  vf->mode = VF_MODE_NONE;
  return vf;
}

void vf_free(vf_t *vf) {
  if (vf == NULL) return;
  pthread_mutex_destroy(&vf->mu);
  free(vf);
}

const walrus_vfs_t *vf_vfs(vf_t *vf) {
  return &vf->vfs;
}

uint64_t vf_count(vf_t *vf, vf_method_t m) {
  if ((int)m < 0 || m >= VF__COUNT) return 0;
  pthread_mutex_lock(&vf->mu);
  uint64_t n = vf->counts[m];
  pthread_mutex_unlock(&vf->mu);
  return n;
}

void vf_reset_counts(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  memset(vf->counts, 0, sizeof vf->counts);
  pthread_mutex_unlock(&vf->mu);
}

/* Arm a fault of the given mode; clears the history. */
static void arm(vf_t *vf, enum vf_mode mode, vf_method_t m, uint64_t nth,
                int err, int persistent) {
  pthread_mutex_lock(&vf->mu);
  vf->mode = mode;
  vf->arm_m = m;
  vf->arm_nth = nth;
  vf->arm_seen = 0;
  vf->arm_err = err;
  vf->arm_persistent = persistent;
  vf->fired = 0;
  vf->fired_at = 0;
  vf->hist_n = 0;
  vf->hist_total = 0;
  pthread_mutex_unlock(&vf->mu);
}

void vf_arm_fail(vf_t *vf, vf_method_t m, uint64_t nth, int err,
                 int persistent) {
  arm(vf, VF_MODE_FAIL, m, nth, err < 0 ? err : -EIO, persistent);
}

void vf_arm_short(vf_t *vf, uint64_t nth, int err, int persistent) {
  arm(vf, VF_MODE_SHORT, VF_PWRITE, nth, err < 0 ? err : 0, persistent);
}

void vf_arm_crash(vf_t *vf, vf_method_t m, uint64_t nth) {
  arm(vf, VF_MODE_CRASH, m, nth, 0, 0);
}

void vf_disarm(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  vf->mode = VF_MODE_NONE;
  pthread_mutex_unlock(&vf->mu);
}

uint64_t vf_fired(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  uint64_t n = vf->fired;
  pthread_mutex_unlock(&vf->mu);
  return n;
}

uint64_t vf_armed_calls(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  uint64_t n = vf->arm_seen;
  pthread_mutex_unlock(&vf->mu);
  return n;
}

char *vf_history(vf_t *vf, char *buf, size_t len) {
  if (len == 0) return buf;
  buf[0] = '\0';
  size_t used = 0;
  pthread_mutex_lock(&vf->mu);
  for (size_t i = 0; i < vf->hist_n && used + 1 < len; i++) {
    int n = snprintf(buf + used, len - used, "%s%zu:%s(%s)", i ? " " : "",
                     i + 1, vf_method_name(vf->hist[i].m), vf->hist[i].name);
    if (n < 0) break;
    used += (size_t)n;
  }
  if (used + 1 < len && vf->hist_total > vf->hist_n)
    snprintf(buf + used, len - used, " ... (%llu calls)",
             (unsigned long long)vf->hist_total);
  pthread_mutex_unlock(&vf->mu);
  return buf;
}

int vf_history_call(vf_t *vf, uint64_t i, vf_method_t *m, char *name,
                    size_t len) {
  int ok = 0;
  pthread_mutex_lock(&vf->mu);
  if (i >= 1 && i <= vf->hist_n) {
    if (m != NULL) *m = vf->hist[i - 1].m;
    if (name != NULL && len > 0)
      snprintf(name, len, "%s", vf->hist[i - 1].name);
    ok = 1;
  }
  pthread_mutex_unlock(&vf->mu);
  return ok;
}

uint64_t vf_fired_at(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  uint64_t n = vf->fired_at;
  pthread_mutex_unlock(&vf->mu);
  return n;
}

uint64_t vf_misuse(vf_t *vf, char *buf, size_t len) {
  pthread_mutex_lock(&vf->mu);
  uint64_t n = vf->misuse;
  if (buf != NULL && len > 0) snprintf(buf, len, "%s", n ? vf->misuse_msg : "");
  pthread_mutex_unlock(&vf->mu);
  return n;
}

void vf_misuse_clear(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  vf->misuse = 0;
  vf->misuse_msg[0] = '\0';
  pthread_mutex_unlock(&vf->mu);
}

void vf_history_clear(vf_t *vf) {
  pthread_mutex_lock(&vf->mu);
  vf->hist_n = 0;
  vf->hist_total = 0;
  pthread_mutex_unlock(&vf->mu);
}
