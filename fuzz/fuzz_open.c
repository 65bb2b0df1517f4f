/*
 * fuzz_open.c: libFuzzer target that opens arbitrary log directory contents.
 *
 * The input is a tiny container describing a directory:
 *
 *   repeated:  1 byte  name selector
 *              2 bytes length (little-endian), clipped to what is left
 *              length bytes of file contents
 *
 * The selector picks the file name (see fo_name below): META, LOCK,
 * META.tmp, a segment "<20 digits>.seg" whose first index is one of a few
 * small numbers or the 2 bytes after the selector, a ".seg.tmp" or
 * ".seg.salvage" side file, or a foreign name.  A later chunk with the same
 * name replaces the earlier one.  Selectors 0x10..0x1f put an impostor
 * under a name of the log (META, LOCK, segment 1 or segment 17): a
 * symbolic link, a FIFO, a directory or a file with another hard link,
 * which the in-memory back end refuses as the POSIX one does (-ELOOP,
 * -ENODEV, -EISDIR; -EMLINK when opened for writing).  An open must then
 * fail with WALRUS_EUNSAFE wherever the file is one it needs: an open
 * never succeeds past an impostor META, nor a writable one past an
 * impostor LOCK.
 *
 * The files live in an in-memory walrus_vfs_t implemented here (fast, and
 * nothing is left behind).  The directory is opened STRICT, read-only,
 * TAIL (on a fresh copy) and SALVAGE (on a fresh copy); whenever an open
 * succeeds every entry is read with walrus_get() and with an iterator and
 * checked for consistency (index, length, tx id, same bytes both ways,
 * only damage-type errors).  After a TAIL open an entry is appended and the
 * log reopened: the new entry must be there, unchanged.
 *
 * The file builds with gcc too: tests/unit/test_fuzz_corpus.c includes it
 * (with LLVMFuzzerTestOneInput renamed) to replay fuzz/corpus/fuzz_open/.
 * Every helper is static and prefixed fo_ so the two targets can share one
 * translation unit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walrus.h"
#include "walrus_vfs.h"

#ifndef FO_MAX_FILE
#define FO_MAX_FILE (1u << 22) /* a file may not grow past 4 MiB */
#endif
#define FO_MAX_FILES 64
#define FO_DIR "/mem/log"

/* A failed check: print and abort, which libFuzzer (and Criterion, which
 * sees the signal) reports as a crash with the input that caused it. */
#define FO_CHECK(cond, ...)                                           \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "fuzz_open: check failed: %s: ", #cond);        \
      fprintf(stderr, __VA_ARGS__);                                   \
      fprintf(stderr, "\n");                                          \
      abort();                                                        \
    }                                                                 \
  } while (0)

/* ---------------------------------------------------------------------
 * In-memory file system
 * ------------------------------------------------------------------- */
typedef struct fo_node {
  char *path;          /* full path */
  int is_dir;
  unsigned char *data; /* file bytes */
  size_t len, cap;
  int refs;            /* open handles */
  int unlinked;        /* removed while open */
  int impostor;        /* FO_LINK, FO_FIFO, FO_LINKED or 0 */
} fo_node_t;

/* What an impostor node is (is_dir covers a directory). */
enum { FO_REGULAR, FO_LINK, FO_FIFO, FO_LINKED };

typedef struct fo_fs {
  fo_node_t *nodes[FO_MAX_FILES];
  size_t n;
} fo_fs_t;

struct walrus_vfs_file_s {
  fo_node_t *node;
  int writable;
};

static void fo_node_free(fo_node_t *n) {
  free(n->path);
  free(n->data);
  free(n);
}

static fo_node_t *fo_find(fo_fs_t *fs, const char *path) {
  for (size_t i = 0; i < fs->n; i++)
    if (strcmp(fs->nodes[i]->path, path) == 0) return fs->nodes[i];
  return NULL;
}

/* Take node i out of the table (freeing it unless it is still open). */
static void fo_detach(fo_fs_t *fs, size_t i) {
  fo_node_t *n = fs->nodes[i];
  fs->nodes[i] = fs->nodes[--fs->n];
  if (n->refs > 0)
    n->unlinked = 1;
  else
    fo_node_free(n);
}

static fo_node_t *fo_add(fo_fs_t *fs, const char *path, int is_dir) {
  if (fs->n >= FO_MAX_FILES) return NULL;
  fo_node_t *n = calloc(1, sizeof *n);
  if (n == NULL) return NULL;
  n->path = strdup(path);
  if (n->path == NULL) {
    free(n);
    return NULL;
  }
  n->is_dir = is_dir;
  fs->nodes[fs->n++] = n;
  return n;
}

static int fo_reserve(fo_node_t *n, size_t len) {
  if (len > FO_MAX_FILE) return -ENOSPC;
  if (len <= n->cap) return 0;
  size_t cap = n->cap ? n->cap : 256;
  while (cap < len) cap *= 2;
  unsigned char *p = realloc(n->data, cap);
  if (p == NULL) return -ENOMEM;
  memset(p + n->cap, 0, cap - n->cap);
  n->data = p;
  n->cap = cap;
  return 0;
}

/* The directory part of path must exist as a directory. */
static int fo_parent_ok(fo_fs_t *fs, const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL || slash == path) return 1;
  char parent[512];
  size_t l = (size_t)(slash - path);
  if (l >= sizeof parent) return 0;
  memcpy(parent, path, l);
  parent[l] = 0;
  fo_node_t *p = fo_find(fs, parent);
  return p != NULL && p->is_dir;
}

static int fo_open(void *ctx, const char *path, int flags,
                   walrus_vfs_file_t **out) {
  fo_fs_t *fs = ctx;
  fo_node_t *n = fo_find(fs, path);
  if (flags & WALRUS_VFS_CREATE) {
    if (n != NULL) return -EEXIST;
    if (!fo_parent_ok(fs, path)) return -ENOENT;
    n = fo_add(fs, path, 0);
    if (n == NULL) return -ENOSPC;
  } else if (n == NULL) {
    return -ENOENT;
  }
  if (n->is_dir) return -EISDIR;
  if (n->impostor == FO_LINK) return -ELOOP;
  if (n->impostor == FO_FIFO) return -ENODEV;
  if (n->impostor == FO_LINKED && (flags & WALRUS_VFS_WRITE)) return -EMLINK;
  walrus_vfs_file_t *f = calloc(1, sizeof *f);
  if (f == NULL) return -ENOMEM;
  f->node = n;
  f->writable = (flags & WALRUS_VFS_WRITE) != 0;
  n->refs++;
  *out = f;
  return 0;
}

static int fo_close(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  fo_node_t *n = f->node;
  free(f);
  if (--n->refs == 0 && n->unlinked) fo_node_free(n);
  return 0;
}

static int64_t fo_pread(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                        uint64_t off) {
  (void)ctx;
  fo_node_t *nd = f->node;
  if (off >= nd->len) return 0;
  size_t avail = nd->len - (size_t)off;
  if (n > avail) n = avail;
  memcpy(buf, nd->data + off, n);
  return (int64_t)n;
}

static int fo_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                     size_t n, uint64_t off) {
  (void)ctx;
  fo_node_t *nd = f->node;
  if (!f->writable) return -EBADF;
  if (off > FO_MAX_FILE || n > FO_MAX_FILE - off) return -ENOSPC;
  int rc = fo_reserve(nd, (size_t)off + n);
  if (rc != 0) return rc;
  memcpy(nd->data + off, buf, n);
  if ((size_t)off + n > nd->len) nd->len = (size_t)off + n;
  return 0;
}

static int fo_sync(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  (void)f;
  return 0;
}

static int fo_truncate(void *ctx, walrus_vfs_file_t *f, uint64_t size) {
  (void)ctx;
  fo_node_t *nd = f->node;
  if (!f->writable) return -EBADF;
  if (size > FO_MAX_FILE) return -EFBIG;
  if (size > nd->len) {
    int rc = fo_reserve(nd, (size_t)size);
    if (rc != 0) return rc;
    memset(nd->data + nd->len, 0, (size_t)size - nd->len);
  }
  nd->len = (size_t)size;
  return 0;
}

static int fo_allocate(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                       uint64_t len) {
  (void)ctx;
  (void)f;
  (void)off;
  (void)len;
  return -EOPNOTSUPP;
}

static int fo_size(void *ctx, walrus_vfs_file_t *f, uint64_t *size) {
  (void)ctx;
  *size = f->node->len;
  return 0;
}

static int fo_lock(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  (void)f;
  return 0; /* one handle at a time in this target */
}

static int fo_rename(void *ctx, const char *from, const char *to) {
  fo_fs_t *fs = ctx;
  fo_node_t *src = fo_find(fs, from);
  if (src == NULL) return -ENOENT;
  if (strcmp(from, to) == 0) return 0;
  if (!fo_parent_ok(fs, to)) return -ENOENT;
  for (size_t i = 0; i < fs->n; i++) {
    if (strcmp(fs->nodes[i]->path, to) == 0) {
      if (fs->nodes[i]->is_dir) return -EISDIR;
      fo_detach(fs, i);
      break;
    }
  }
  char *p = strdup(to);
  if (p == NULL) return -ENOMEM;
  free(src->path);
  src->path = p;
  return 0;
}

static int fo_unlink(void *ctx, const char *path) {
  fo_fs_t *fs = ctx;
  for (size_t i = 0; i < fs->n; i++) {
    if (strcmp(fs->nodes[i]->path, path) == 0) {
      if (fs->nodes[i]->is_dir) return -EISDIR;
      fo_detach(fs, i);
      return 0;
    }
  }
  return -ENOENT;
}

static int fo_sync_dir(void *ctx, const char *path) {
  fo_fs_t *fs = ctx;
  fo_node_t *n = fo_find(fs, path);
  if (n == NULL) return -ENOENT;
  return n->is_dir ? 0 : -ENOTDIR;
}

static int fo_list(void *ctx, const char *path, walrus_vfs_list_fn fn,
                   void *arg) {
  fo_fs_t *fs = ctx;
  fo_node_t *d = fo_find(fs, path);
  if (d == NULL) return -ENOENT;
  if (!d->is_dir) return -ENOTDIR;
  size_t pl = strlen(path);
  /* Collect the names first: the callback may not change the table, but a
   * copy keeps the listing independent of it anyway. */
  char *names[FO_MAX_FILES];
  size_t k = 0;
  for (size_t i = 0; i < fs->n; i++) {
    const char *p = fs->nodes[i]->path;
    if (strncmp(p, path, pl) == 0 && p[pl] == '/' && p[pl + 1] != 0 &&
        strchr(p + pl + 1, '/') == NULL) {
      names[k] = strdup(p + pl + 1);
      if (names[k] == NULL) break;
      k++;
    }
  }
  int rc = 0;
  for (size_t i = 0; i < k; i++) {
    if (rc == 0) rc = fn(arg, names[i]);
    free(names[i]);
  }
  return rc;
}

static int fo_mkdir(void *ctx, const char *path) {
  fo_fs_t *fs = ctx;
  if (fo_find(fs, path) != NULL) return -EEXIST;
  if (!fo_parent_ok(fs, path)) return -ENOENT;
  return fo_add(fs, path, 1) != NULL ? 0 : -ENOSPC;
}

static void fo_fs_clear(fo_fs_t *fs) {
  while (fs->n > 0) {
    fo_node_t *n = fs->nodes[--fs->n];
    /* walrus closed every file before we get here */
    FO_CHECK(n->refs == 0, "%s is still open after close", n->path);
    fo_node_free(n);
  }
}

static void fo_vfs_init(walrus_vfs_t *v, fo_fs_t *fs) {
  memset(v, 0, sizeof *v);
  v->version = WALRUS_VFS_VERSION;
  v->ctx = fs;
  v->open = fo_open;
  v->close = fo_close;
  v->pread = fo_pread;
  v->pwrite = fo_pwrite;
  v->sync = fo_sync;
  v->truncate = fo_truncate;
  v->allocate = fo_allocate;
  v->size = fo_size;
  v->lock = fo_lock;
  v->rename = fo_rename;
  v->unlink = fo_unlink;
  v->sync_dir = fo_sync_dir;
  v->list = fo_list;
  v->mkdir = fo_mkdir;
}

/* ---------------------------------------------------------------------
 * The input container
 * ------------------------------------------------------------------- */
typedef struct fo_file {
  char name[64];
  const uint8_t *data;
  size_t len;
  int impostor; /* 0, or 1 + FO_LINK.. / 4 for a directory, see fo_name */
} fo_file_t;

/* The names an impostor selector (0x10..0x1f) may take, by its bits 2-3. */
static const char *const fo_impostor_names[] = {
    "META", "LOCK", "00000000000000000001.seg", "00000000000000000017.seg"};

/* Decode the selector at in[*pos] into a file name. */
static void fo_name(const uint8_t *in, size_t size, size_t *pos, char out[64],
                    int *impostor) {
  static const char *const fixed[] = {
      "META",
      "LOCK",
      "META.tmp",
      "00000000000000000001.seg.tmp",
      "00000000000000000001.seg.salvage",
      "README",
      "0000000000000000001.seg", /* 19 digits: not a segment */
      "00000000000000000000.seg", /* index 0: not a segment */
  };
  uint8_t s = in[(*pos)++];
  unsigned kind = s >> 4, arg = s & 15u;
  uint64_t idx;
  *impostor = 0;
  switch (kind) {
    case 1: /* an impostor: bits 0-1 its kind, bits 2-3 its name */
      *impostor = 1 + (int)(arg & 3u);
      snprintf(out, 64, "%s", fo_impostor_names[arg >> 2]);
      return;
    case 0:
      snprintf(out, 64, "%s", fixed[arg % (sizeof fixed / sizeof fixed[0])]);
      return;
    case 2: /* a segment whose first index is given by 2 more bytes */
      idx = 0;
      if (*pos + 2 <= size) {
        idx = (uint64_t)in[*pos] | ((uint64_t)in[*pos + 1] << 8);
        *pos += 2;
      }
      snprintf(out, 64, "%020llu.seg", (unsigned long long)(idx + 1));
      return;
    case 3: /* a segment with a huge first index */
      snprintf(out, 64, "%020llu.seg",
               (unsigned long long)(UINT64_MAX - arg));
      return;
    default: /* a segment with a small first index: 1..192 */
      snprintf(out, 64, "%020llu.seg",
               (unsigned long long)((kind - 4) * 16 + arg + 1));
      return;
  }
}

static size_t fo_parse(const uint8_t *in, size_t size, fo_file_t *files,
                       size_t max) {
  size_t pos = 0, n = 0;
  while (pos < size && n < max) {
    char name[64];
    int impostor;
    fo_name(in, size, &pos, name, &impostor);
    size_t len = 0;
    if (pos + 2 <= size) {
      len = (size_t)in[pos] | ((size_t)in[pos + 1] << 8);
      pos += 2;
    } else {
      pos = size;
    }
    if (len > size - pos) len = size - pos;
    const uint8_t *data = in + pos;
    pos += len;
    size_t j;
    for (j = 0; j < n; j++)
      if (strcmp(files[j].name, name) == 0) break;
    if (j == n) n++;
    snprintf(files[j].name, sizeof files[j].name, "%s", name);
    files[j].data = data;
    files[j].len = len;
    files[j].impostor = impostor;
  }
  return n;
}

/* Make a fresh in-memory directory holding files. */
static void fo_fs_load(fo_fs_t *fs, const fo_file_t *files, size_t n) {
  fo_fs_clear(fs);
  FO_CHECK(fo_add(fs, "/mem", 1) != NULL, "mkdir /mem");
  FO_CHECK(fo_add(fs, FO_DIR, 1) != NULL, "mkdir " FO_DIR);
  for (size_t i = 0; i < n; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", FO_DIR, files[i].name);
    /* impostor 1..3: FO_LINK, FO_FIFO, FO_LINKED; 4: a directory */
    fo_node_t *nd = fo_add(fs, path, files[i].impostor == 4);
    FO_CHECK(nd != NULL, "add %s", path);
    if (files[i].impostor >= 1 && files[i].impostor <= 3)
      nd->impostor = files[i].impostor;
    if (files[i].len > 0) {
      FO_CHECK(fo_reserve(nd, files[i].len) == 0, "reserve");
      memcpy(nd->data, files[i].data, files[i].len);
      nd->len = files[i].len;
    }
  }
}

/* ---------------------------------------------------------------------
 * Checks on an open log
 * ------------------------------------------------------------------- */

/* Errors a read of a damaged log may give. */
static int fo_damage_code(int rc) {
  return rc == WALRUS_ECHECKSUM || rc == WALRUS_ECORRUPT ||
         rc == WALRUS_EINDEX || rc == WALRUS_ENOSEGMENT ||
         rc == WALRUS_EFORMAT || rc == WALRUS_EIO_READ ||
         rc == WALRUS_ENOMEM || rc == WALRUS_EIO;
}

/* Errors an open of a damaged directory may give. */
static int fo_open_code(int rc) {
  return fo_damage_code(rc) || rc == WALRUS_EIO_WRITE ||
         rc == WALRUS_EIO_FSYNC || rc == WALRUS_ENOSPC || rc == WALRUS_EUNSAFE;
}

/* Is the file name in files an impostor that refuses opens of this kind
 * (any open; with writing, a hard-linked one too)? */
static int fo_refused(const fo_file_t *files, size_t n, const char *name,
                      int writing) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(files[i].name, name) == 0)
      return files[i].impostor != 0 &&
             (writing || files[i].impostor != FO_LINKED);
  return 0;
}

/* What a read of every entry found: the ones read OK, by hash. */
typedef struct fo_seen {
  uint64_t first, last;
  uint64_t ok;        /* entries walrus_get returned */
  uint64_t hash;      /* of every entry walrus_get returned */
} fo_seen_t;

static uint64_t fo_hash(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static uint64_t fo_entry_hash(uint64_t h, const walrus_entry_t *e) {
  h = fo_hash(h, &e->index, sizeof e->index);
  h = fo_hash(h, &e->term, sizeof e->term);
  h = fo_hash(h, &e->timestamp_ns, sizeof e->timestamp_ns);
  h = fo_hash(h, &e->type, sizeof e->type);
  if (e->tx_id != NULL) h = fo_hash(h, e->tx_id, strlen(e->tx_id) + 1);
  if (e->len > 0) h = fo_hash(h, e->data, e->len);
  return h;
}

static void fo_check_entry(const walrus_entry_t *e, uint64_t index,
                           size_t input_size, const char *how) {
  FO_CHECK(e->index == index, "%s(%llu) returned index %llu", how,
           (unsigned long long)index, (unsigned long long)e->index);
  FO_CHECK(e->len <= input_size, "%s(%llu): len %zu > input %zu", how,
           (unsigned long long)index, e->len, input_size);
  FO_CHECK(e->len == 0 || e->data != NULL, "%s: data NULL, len %zu", how,
           e->len);
  if (e->tx_id != NULL) {
    size_t l = strnlen(e->tx_id, 256);
    FO_CHECK(l >= 1 && l <= 255, "%s(%llu): tx id of %zu bytes", how,
             (unsigned long long)index, l);
  }
}

/* Hard cap on entries read per open: a tiny input may claim a huge index
 * range through its trailers, which must still read in bounded time. */
#define FO_MAX_READS 4096

static void fo_read_all(walrus_t *w, size_t input_size, fo_seen_t *seen) {
  uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
  uint64_t next = walrus_next_index(w);
  memset(seen, 0, sizeof *seen);
  seen->first = first;
  seen->last = last;
  seen->hash = 14695981039346656037ull;
  if (last == 0) {
    FO_CHECK(first == 0, "empty log with first %llu",
             (unsigned long long)first);
  } else {
    FO_CHECK(first >= 1 && first <= last, "first %llu last %llu",
             (unsigned long long)first, (unsigned long long)last);
    FO_CHECK(next == last + 1, "next %llu last %llu",
             (unsigned long long)next, (unsigned long long)last);
  }

  /* Out-of-range indexes are EINDEX. */
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  int rc = walrus_get(w, 0, &e);
  FO_CHECK(rc == WALRUS_EINDEX, "get(0) = %d", rc);
  if (last != UINT64_MAX) {
    rc = walrus_get(w, last + 1, &e);
    FO_CHECK(rc == WALRUS_EINDEX, "get(last+1) = %d", rc);
  }
  if (last == 0) return;

  /* walrus_get over [first, last], bounded; both ends always read. */
  uint64_t n = last - first + 1;
  uint64_t step = n > FO_MAX_READS ? n / FO_MAX_READS : 1;
  for (uint64_t k = 0; k < n && k <= (uint64_t)FO_MAX_READS + 1; k++) {
    uint64_t i = first + k * step;
    if (i > last || k == (uint64_t)FO_MAX_READS + 1) i = last;
    memset(&e, 0, sizeof e);
    rc = walrus_get(w, i, &e);
    if (rc == WALRUS_OK) {
      fo_check_entry(&e, i, input_size, "walrus_get");
      seen->ok++;
      seen->hash = fo_entry_hash(seen->hash, &e);
      walrus_entry_free(&e);
    } else {
      FO_CHECK(fo_damage_code(rc), "walrus_get(%llu) = %s",
               (unsigned long long)i, walrus_errname(rc));
    }
    if (i == last) break;
  }

  /* An iterator from the first index: the same entries, in order. */
  walrus_iter_t *it = NULL;
  rc = walrus_iter_open(w, 0, &it);
  if (rc != WALRUS_OK) {
    FO_CHECK(rc == WALRUS_ENOMEM, "iter_open = %s", walrus_errname(rc));
    return;
  }
  uint64_t want = first;
  for (int k = 0; k < FO_MAX_READS; k++) {
    walrus_entry_t ie;
    memset(&ie, 0, sizeof ie);
    rc = walrus_iter_next(it, &ie);
    if (rc == WALRUS_DONE) {
      FO_CHECK(want == last + 1, "iterator done at %llu, last %llu",
               (unsigned long long)want, (unsigned long long)last);
      break;
    }
    if (rc != WALRUS_OK) {
      FO_CHECK(fo_damage_code(rc), "iter_next at %llu = %s",
               (unsigned long long)want, walrus_errname(rc));
      break;
    }
    fo_check_entry(&ie, want, input_size, "walrus_iter_next");
    /* The same entry through walrus_get must be identical. */
    memset(&e, 0, sizeof e);
    rc = walrus_get(w, want, &e);
    if (rc == WALRUS_OK) {
      FO_CHECK(e.term == ie.term && e.timestamp_ns == ie.timestamp_ns &&
                   e.type == ie.type && e.len == ie.len &&
                   e.checksum == ie.checksum &&
                   (e.len == 0 || memcmp(e.data, ie.data, e.len) == 0) &&
                   ((e.tx_id == NULL) == (ie.tx_id == NULL)) &&
                   (e.tx_id == NULL || strcmp(e.tx_id, ie.tx_id) == 0),
               "get and iterator differ at %llu", (unsigned long long)want);
      walrus_entry_free(&e);
    }
    want++;
  }
  walrus_iter_close(it);
}

/* The input's files, for the impostor checks of fo_open_log. */
static const fo_file_t *fo_cur_files;
static size_t fo_cur_n;

static walrus_t *fo_open_log(const walrus_vfs_t *vfs, walrus_recovery_t mode,
                             int read_only, int *rc_out) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = vfs;
  cfg.recovery = mode;
  cfg.read_only = read_only;
  cfg.create_if_missing = 0;
  cfg.segment_bytes = 4096;
  cfg.buffer_bytes = 4096;
  cfg.cached_segments = 2;
  cfg.max_entry_bytes = 1u << 20;
  walrus_t *w = NULL;
  char msg[256];
  int rc = walrus_open_ex(FO_DIR, &cfg, &w, msg, sizeof msg);
  *rc_out = rc;
  if (rc != WALRUS_OK) {
    FO_CHECK(w == NULL, "failed open set *out");
    FO_CHECK(fo_open_code(rc) || rc == WALRUS_EINVAL,
             "open (mode %d, ro %d) = %s: %s", (int)mode, read_only,
             walrus_errname(rc), msg);
    return NULL;
  }
  FO_CHECK(w != NULL, "open OK without a handle");
  FO_CHECK(!fo_refused(fo_cur_files, fo_cur_n, "META", 0),
           "open (mode %d, ro %d) went past an impostor META", (int)mode,
           read_only);
  FO_CHECK(read_only || !fo_refused(fo_cur_files, fo_cur_n, "LOCK", 1),
           "writable open (mode %d) went past an impostor LOCK", (int)mode);
  return w;
}

static int fo_close_log(walrus_t *w) {
  int rc = walrus_close(w);
  FO_CHECK(rc == WALRUS_OK || rc == WALRUS_EIO_FSYNC, "close = %s",
           walrus_errname(rc));
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fo_file_t files[FO_MAX_FILES - 8];
  size_t n = fo_parse(data, size, files, sizeof files / sizeof files[0]);
  fo_cur_files = files;
  fo_cur_n = n;
  fo_fs_t fs;
  walrus_vfs_t vfs;
  memset(&fs, 0, sizeof fs);
  fo_vfs_init(&vfs, &fs);
  int rc;
  fo_seen_t strict_seen, seen;
  int strict_ok = 0;

  /* STRICT: any damage is an error and nothing is changed. */
  fo_fs_load(&fs, files, n);
  walrus_t *w = fo_open_log(&vfs, WALRUS_RECOVER_STRICT, 0, &rc);
  if (w != NULL) {
    strict_ok = 1;
    fo_read_all(w, size, &strict_seen);
    fo_close_log(w);
  }

  /* Read-only: writes nothing at all. */
  fo_fs_load(&fs, files, n);
  w = fo_open_log(&vfs, WALRUS_RECOVER_TAIL, 1, &rc);
  if (w != NULL) {
    fo_read_all(w, size, &seen);
    fo_close_log(w);
  }

  /* TAIL on a fresh copy; then append one entry and reopen. */
  fo_fs_load(&fs, files, n);
  w = fo_open_log(&vfs, WALRUS_RECOVER_TAIL, 0, &rc);
  if (strict_ok) {
    /* A directory STRICT accepts has nothing to cut: TAIL must give the
     * same log. */
    FO_CHECK(w != NULL, "STRICT opened but TAIL failed: %s",
             walrus_errname(rc));
  }
  if (w != NULL) {
    fo_read_all(w, size, &seen);
    if (strict_ok) {
      FO_CHECK(seen.first == strict_seen.first &&
                   seen.last == strict_seen.last &&
                   seen.ok == strict_seen.ok &&
                   seen.hash == strict_seen.hash,
               "STRICT and TAIL see different logs: [%llu,%llu] %llu vs "
               "[%llu,%llu] %llu",
               (unsigned long long)strict_seen.first,
               (unsigned long long)strict_seen.last,
               (unsigned long long)strict_seen.ok,
               (unsigned long long)seen.first, (unsigned long long)seen.last,
               (unsigned long long)seen.ok);
    }
    static const char payload[] = "fuzz_open appended this";
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    e.term = 7;
    e.type = 3;
    e.timestamp_ns = 123456789;
    e.data = payload;
    e.len = sizeof payload;
    uint64_t idx = 0;
    uint64_t next = walrus_next_index(w);
    rc = walrus_append(w, &e, &idx);
    int appended = rc == WALRUS_OK;
    if (appended)
      FO_CHECK(idx == next, "append got %llu, next was %llu",
               (unsigned long long)idx, (unsigned long long)next);
    else
      FO_CHECK(rc == WALRUS_ENOSPC || rc == WALRUS_EIO ||
                   rc == WALRUS_EIO_WRITE || rc == WALRUS_ETOOLARGE ||
                   rc == WALRUS_ECORRUPT || rc == WALRUS_EINDEX ||
                   rc == WALRUS_ENOMEM || rc == WALRUS_EPOISONED,
               "append = %s", walrus_errname(rc));
    int crc = fo_close_log(w);
    if (appended && crc == WALRUS_OK) {
      /* Reopen what TAIL left, with the appended entry. */
      w = fo_open_log(&vfs, WALRUS_RECOVER_STRICT, 0, &rc);
      FO_CHECK(w != NULL, "reopen after TAIL open + append failed: %s",
               walrus_errname(rc));
      walrus_entry_t g;
      memset(&g, 0, sizeof g);
      rc = walrus_get(w, idx, &g);
      FO_CHECK(rc == WALRUS_OK, "appended entry %llu unreadable: %s",
               (unsigned long long)idx, walrus_errname(rc));
      FO_CHECK(g.index == idx && g.term == 7 && g.type == 3 &&
                   g.timestamp_ns == 123456789 && g.len == sizeof payload &&
                   memcmp(g.data, payload, sizeof payload) == 0 &&
                   g.tx_id == NULL,
               "appended entry %llu changed", (unsigned long long)idx);
      walrus_entry_free(&g);
      FO_CHECK(walrus_last_index(w) == idx, "last %llu after append %llu",
               (unsigned long long)walrus_last_index(w),
               (unsigned long long)idx);
      fo_read_all(w, size + 64, &seen);
      fo_close_log(w);
    }
  }

  /* SALVAGE on a fresh copy: keeps the valid prefix, moves the rest. */
  fo_fs_load(&fs, files, n);
  w = fo_open_log(&vfs, WALRUS_RECOVER_SALVAGE, 0, &rc);
  if (w != NULL) {
    fo_read_all(w, size, &seen);
    fo_close_log(w);
    /* What salvage left must open cleanly. */
    w = fo_open_log(&vfs, WALRUS_RECOVER_STRICT, 0, &rc);
    if (w != NULL) {
      fo_read_all(w, size, &seen);
      fo_close_log(w);
    }
  }

  fo_fs_clear(&fs);
  return 0;
}
