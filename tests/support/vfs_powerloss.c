/*
 * vfs_powerloss.c: the in-memory page-cache-and-disk VFS of
 * vfs_powerloss.h.
 *
 * Inodes live on one list owned by the pl_t until pl_free (a crash only
 * frees the contents of those no durable name reaches).  The namespace is
 * two flat tables of full paths, the current one and the durable one; the
 * directory operations not yet made durable wait, in order, on one list.
 * A file's pending changes are a list of writes (with a copy of the bytes)
 * and size changes; replaying a prefix of that list over the durable
 * contents gives the page cache contents at any moment since the last
 * sync, which is what a crash picks from, sector by sector.
 *
 * A mapping (map) is a private buffer the caller stores into.  Its stores
 * become pending writes of the file (one per run of changed sectors) at
 * the next state-changing call on that file, at unmap, and when the
 * machine dies; pread sees them at once.  Stores made after the machine
 * died, or into a mapping from before a crash, are lost.
 */
#define _GNU_SOURCE
#include "vfs_powerloss.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_SECTOR 512

/* A pending change of a file. */
typedef struct pl_op_s {
  int is_write;        /* 1: write; 0: size change */
  uint64_t off;        /* write: offset; size change: the new size */
  size_t len;          /* write: byte count */
  unsigned char *data; /* write: a copy of the bytes */
} pl_op_t;

typedef struct pl_inode_s {
  unsigned char *cur; /* current contents (cur_len bytes, cur_cap room) */
  size_t cur_len, cur_cap;
  unsigned char *dur; /* durable contents */
  size_t dur_len;
  pl_op_t *ops; /* pending changes since the last sync */
  size_t nops, capops;
  struct pl_inode_s *next; /* all inodes */
} pl_inode_t;

/* A name: a file (ino) or a directory (ino NULL). */
typedef struct pl_ent_s {
  char *path;
  pl_inode_t *ino;
} pl_ent_t;

typedef struct pl_ns_s {
  pl_ent_t *v;
  size_t n, cap;
} pl_ns_t;

enum { PL_D_CREATE, PL_D_UNLINK, PL_D_RENAME, PL_D_MKDIR };

/* A pending directory operation. */
typedef struct pl_dop_s {
  int kind;
  char *a;         /* the path (rename: from) */
  char *b;         /* rename: to */
  pl_inode_t *ino; /* the inode named (NULL for mkdir) */
} pl_dop_t;

/* A mapping of the first len bytes of ino, made in generation gen. */
typedef struct pl_map_s {
  pl_inode_t *ino;
  unsigned char *addr;
  size_t len;
  uint64_t gen;
} pl_map_t;

struct walrus_vfs_file_s {
  pl_inode_t *ino;
  uint64_t gen; /* pl_s.gen when opened */
};

struct pl_s {
  walrus_vfs_t vfs;
  pthread_mutex_t mu;
  pl_inode_t *inodes;
  pl_ns_t cur, dur;
  pl_dop_t *dops;
  size_t ndops, capdops;
  uint64_t gen;     /* bumped by every crash */
  uint64_t ops;     /* state-changing calls since the last crash */
  int armed;        /* die once ops reaches arm_at */
  uint64_t arm_at;  /* ops allowed */
  int dead;
  uint64_t rng;
  pl_stats_t st;
  pl_map_t *maps; /* live mappings */
  size_t nmaps, capmaps;
  pl_hook_fn hook; /* asked before every state-changing call, or NULL */
  void *hook_ud;   /* its argument */
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t pl_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t pl_below(uint64_t *s, uint64_t n) {
  return n == 0 ? 0 : pl_rand(s) % n;
}

/* The parent of path, into out: "/a/b" -> "/a", "/a" -> "/", "a" -> ".". */
static void parent_of(const char *path, char *out, size_t cap) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  while (n > 0 && path[n - 1] != '/') n--;
  while (n > 1 && path[n - 1] == '/') n--;
  if (n == 0) {
    strcpy(out, ".");
    return;
  }
  if (n >= cap) n = cap - 1;
  memcpy(out, path, n);
  out[n] = '\0';
}

static int same_parent(const char *path, const char *dir) {
  char p[4096];
  parent_of(path, p, sizeof p);
  return strcmp(p, dir) == 0;
}

static pl_ent_t *ns_find(pl_ns_t *ns, const char *path) {
  for (size_t i = 0; i < ns->n; i++)
    if (strcmp(ns->v[i].path, path) == 0) return &ns->v[i];
  return NULL;
}

static int ns_set(pl_ns_t *ns, const char *path, pl_inode_t *ino) {
  pl_ent_t *e = ns_find(ns, path);
  if (e != NULL) {
    e->ino = ino;
    return 0;
  }
  if (ns->n == ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 16;
    pl_ent_t *v = realloc(ns->v, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    ns->v = v;
    ns->cap = cap;
  }
  char *p = strdup(path);
  if (p == NULL) return -ENOMEM;
  ns->v[ns->n].path = p;
  ns->v[ns->n].ino = ino;
  ns->n++;
  return 0;
}

static void ns_del(pl_ns_t *ns, const char *path) {
  for (size_t i = 0; i < ns->n; i++)
    if (strcmp(ns->v[i].path, path) == 0) {
      free(ns->v[i].path);
      ns->v[i] = ns->v[ns->n - 1];
      ns->n--;
      return;
    }
}

static void ns_clear(pl_ns_t *ns) {
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i].path);
  ns->n = 0;
}

/* path without trailing slashes ("/a/b/" -> "/a/b"), into out. */
static const char *norm(const char *path, char *out, size_t cap) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, path, n);
  out[n] = '\0';
  return out;
}

/* A directory exists if it is "/" or "." or has an entry with ino NULL. */
static int ns_isdir(pl_ns_t *ns, const char *path_in) {
  char nb[4096];
  const char *path = norm(path_in, nb, sizeof nb);
  if (strcmp(path, "/") == 0 || strcmp(path, ".") == 0) return 1;
  pl_ent_t *e = ns_find(ns, path);
  return e != NULL && e->ino == NULL;
}

static int dop_add(pl_t *pl, int kind, const char *a, const char *b,
                   pl_inode_t *ino) {
  if (pl->ndops == pl->capdops) {
    size_t cap = pl->capdops ? pl->capdops * 2 : 16;
    pl_dop_t *v = realloc(pl->dops, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    pl->dops = v;
    pl->capdops = cap;
  }
  pl_dop_t *d = &pl->dops[pl->ndops];
  d->kind = kind;
  d->a = strdup(a);
  d->b = b ? strdup(b) : NULL;
  d->ino = ino;
  if (d->a == NULL || (b && d->b == NULL)) {
    free(d->a);
    free(d->b);
    return -ENOMEM;
  }
  pl->ndops++;
  return 0;
}

static void dop_free(pl_dop_t *d) {
  free(d->a);
  free(d->b);
}

/* Apply one directory operation to the durable namespace. */
static void dop_apply(pl_t *pl, const pl_dop_t *d) {
  pl_ent_t *e;
  switch (d->kind) {
    case PL_D_CREATE:
      ns_set(&pl->dur, d->a, d->ino);
      break;
    case PL_D_MKDIR:
      ns_set(&pl->dur, d->a, NULL);
      break;
    case PL_D_UNLINK:
      e = ns_find(&pl->dur, d->a);
      if (e != NULL && e->ino == d->ino) ns_del(&pl->dur, d->a);
      break;
    case PL_D_RENAME:
      ns_set(&pl->dur, d->b, d->ino);
      e = ns_find(&pl->dur, d->a);
      if (e != NULL && e->ino == d->ino) ns_del(&pl->dur, d->a);
      break;
    default:
      break;
  }
}

static int dop_touches(const pl_dop_t *d, const char *dir) {
  if (same_parent(d->a, dir)) return 1;
  return d->b != NULL && same_parent(d->b, dir);
}

static int cur_reserve(pl_inode_t *ino, size_t need) {
  if (need <= ino->cur_cap) return 0;
  size_t cap = ino->cur_cap ? ino->cur_cap : 4096;
  while (cap < need) cap *= 2;
  unsigned char *p = realloc(ino->cur, cap);
  if (p == NULL) return -ENOMEM;
  memset(p + ino->cur_cap, 0, cap - ino->cur_cap);
  ino->cur = p;
  ino->cur_cap = cap;
  return 0;
}

static int op_add(pl_inode_t *ino, int is_write, uint64_t off,
                  const void *buf, size_t len) {
  if (ino->nops == ino->capops) {
    size_t cap = ino->capops ? ino->capops * 2 : 8;
    pl_op_t *v = realloc(ino->ops, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    ino->ops = v;
    ino->capops = cap;
  }
  pl_op_t *o = &ino->ops[ino->nops];
  o->is_write = is_write;
  o->off = off;
  o->len = len;
  o->data = NULL;
  if (is_write && len > 0) {
    o->data = malloc(len);
    if (o->data == NULL) return -ENOMEM;
    memcpy(o->data, buf, len);
  }
  ino->nops++;
  return 0;
}

static void ops_clear(pl_inode_t *ino) {
  for (size_t i = 0; i < ino->nops; i++) free(ino->ops[i].data);
  ino->nops = 0;
}

static void ino_release(pl_inode_t *ino) {
  ops_clear(ino);
  free(ino->ops);
  ino->ops = NULL;
  ino->capops = 0;
  free(ino->cur);
  ino->cur = NULL;
  ino->cur_len = ino->cur_cap = 0;
  free(ino->dur);
  ino->dur = NULL;
  ino->dur_len = 0;
}

/* Fold the stores made into ino's live mappings since the last fold into
 * its current contents, as pending writes: one per run of changed
 * sectors. */
static int map_fold(pl_t *pl, pl_inode_t *ino) {
  if (pl->dead) return 0;
  for (size_t m = 0; m < pl->nmaps; m++) {
    pl_map_t *mp = &pl->maps[m];
    if (mp->ino != ino || mp->gen != pl->gen) continue;
    size_t n = mp->len < ino->cur_len ? mp->len : ino->cur_len, s = 0;
    while (s < n) {
      size_t k = n - s < PL_SECTOR ? n - s : PL_SECTOR;
      if (memcmp(mp->addr + s, ino->cur + s, k) == 0) {
        s += k;
        continue;
      }
      size_t e = s + k;
      while (e < n) {
        size_t k2 = n - e < PL_SECTOR ? n - e : PL_SECTOR;
        if (memcmp(mp->addr + e, ino->cur + e, k2) == 0) break;
        e += k2;
      }
      int rc = op_add(ino, 1, s, mp->addr + s, e - s);
      if (rc != 0) return rc;
      pl->st.writes_mapped++;
      memcpy(ino->cur + s, mp->addr + s, e - s);
      s = e;
    }
  }
  return 0;
}

/* The machine dies: what was stored into mappings has reached the page
 * cache, nothing after. */
static void die(pl_t *pl) {
  for (size_t m = 0; m < pl->nmaps; m++)
    if (pl->maps[m].gen == pl->gen) map_fold(pl, pl->maps[m].ino);
  pl->dead = 1;
}

/* The path that names ino now, or "" if none does. */
static const char *ino_path(pl_t *pl, const pl_inode_t *ino) {
  for (size_t i = 0; i < pl->cur.n; i++)
    if (pl->cur.v[i].ino == ino) return pl->cur.v[i].path;
  return "";
}

/* Enter a call: 0 to go on, -EIO when dead (or dying at this call).  c
 * describes a state-changing call, NULL one that changes nothing. */
static int enter(pl_t *pl, const pl_call_t *c) {
  if (pl->dead) return -EIO;
  if (c != NULL) {
    if ((pl->armed && pl->ops >= pl->arm_at) ||
        (pl->hook != NULL && pl->hook(pl->hook_ud, c))) {
      die(pl);
      return -EIO;
    }
    pl->ops++;
  }
  return 0;
}

/* Enter a state-changing call on the file f. */
static int enter_file(pl_t *pl, pl_kind_t kind, walrus_vfs_file_t *f,
                      uint64_t off, size_t len) {
  int ok = f != NULL && f->gen == pl->gen;
  pl_call_t c = {kind, ok ? ino_path(pl, f->ino) : "", NULL, off, len};
  return enter(pl, &c);
}

/* Enter a state-changing call on a path (to: a rename's target). */
static int enter_path(pl_t *pl, pl_kind_t kind, const char *path,
                      const char *to) {
  pl_call_t c = {kind, path, to, 0, 0};
  return enter(pl, &c);
}

static int file_ok(pl_t *pl, walrus_vfs_file_t *f) {
  return f != NULL && f->gen == pl->gen;
}

/* ---- the table ----------------------------------------------------------- */

static int m_open(void *ctx, const char *path, int flags,
                  walrus_vfs_file_t **out) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_path(pl, PL_OPEN, path, NULL);
  if (rc != 0) goto done;
  pl_ent_t *e = ns_find(&pl->cur, path);
  char parent[4096];
  parent_of(path, parent, sizeof parent);
  if (e != NULL && e->ino == NULL) {
    rc = -EISDIR;
    goto done;
  }
  if (flags & WALRUS_VFS_CREATE) {
    if (e != NULL) {
      rc = -EEXIST;
      goto done;
    }
    if (!ns_isdir(&pl->cur, parent)) {
      rc = -ENOENT;
      goto done;
    }
    pl_inode_t *ino = calloc(1, sizeof *ino);
    if (ino == NULL) {
      rc = -ENOMEM;
      goto done;
    }
    ino->next = pl->inodes;
    pl->inodes = ino;
    rc = ns_set(&pl->cur, path, ino);
    if (rc == 0) rc = dop_add(pl, PL_D_CREATE, path, NULL, ino);
    if (rc != 0) goto done;
    e = ns_find(&pl->cur, path);
  } else if (e == NULL) {
    rc = -ENOENT;
    goto done;
  }
  walrus_vfs_file_t *f = malloc(sizeof *f);
  if (f == NULL) {
    rc = -ENOMEM;
    goto done;
  }
  f->ino = e->ino;
  f->gen = pl->gen;
  *out = f;
done:
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_close(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  free(f);
  return 0;
}

static int64_t m_pread(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                       uint64_t off) {
  pl_t *pl = ctx;
  int64_t r;
  pthread_mutex_lock(&pl->mu);
  r = enter(pl, NULL);
  if (r == 0 && !file_ok(pl, f)) r = -EIO;
  if (r == 0) {
    pl_inode_t *ino = f->ino;
    if (off >= ino->cur_len) {
      r = 0;
    } else {
      size_t k = ino->cur_len - (size_t)off;
      if (k > n) k = n;
      memcpy(buf, ino->cur + off, k);
      /* Stores into a live mapping not folded yet. */
      for (size_t m = 0; m < pl->nmaps; m++) {
        pl_map_t *mp = &pl->maps[m];
        if (mp->ino != ino || mp->gen != pl->gen || off >= mp->len) continue;
        size_t j = mp->len - (size_t)off < k ? mp->len - (size_t)off : k;
        memcpy(buf, mp->addr + off, j);
      }
      r = (int64_t)k;
    }
  }
  pthread_mutex_unlock(&pl->mu);
  return r;
}

static int m_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                    size_t n, uint64_t off) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_file(pl, PL_PWRITE, f, off, n);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  if (rc == 0) {
    pl_inode_t *ino = f->ino;
    size_t end = (size_t)off + n;
    rc = map_fold(pl, ino);
    if (rc == 0) rc = cur_reserve(ino, end);
    if (rc == 0) rc = op_add(ino, 1, off, buf, n);
    if (rc == 0) {
      if (n > 0) memcpy(ino->cur + off, buf, n);
      if (end > ino->cur_len) ino->cur_len = end;
      for (size_t m = 0; m < pl->nmaps; m++) {
        pl_map_t *mp = &pl->maps[m];
        if (mp->ino != ino || mp->gen != pl->gen || off >= mp->len) continue;
        size_t j = mp->len - (size_t)off < n ? mp->len - (size_t)off : n;
        memcpy(mp->addr + off, buf, j);
      }
    }
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_sync(void *ctx, walrus_vfs_file_t *f) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_file(pl, PL_SYNC, f, 0, 0);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  if (rc == 0) rc = map_fold(pl, f->ino);
  if (rc == 0) {
    pl_inode_t *ino = f->ino;
    unsigned char *d = malloc(ino->cur_len ? ino->cur_len : 1);
    if (d == NULL) {
      rc = -ENOMEM;
    } else {
      if (ino->cur_len) memcpy(d, ino->cur, ino->cur_len);
      free(ino->dur);
      ino->dur = d;
      ino->dur_len = ino->cur_len;
      ops_clear(ino);
    }
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_truncate(void *ctx, walrus_vfs_file_t *f, uint64_t size) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_file(pl, PL_TRUNCATE, f, size, 0);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  if (rc == 0) rc = map_fold(pl, f->ino);
  if (rc == 0) {
    pl_inode_t *ino = f->ino;
    rc = cur_reserve(ino, (size_t)size);
    if (rc == 0) rc = op_add(ino, 0, size, NULL, 0);
    if (rc == 0) {
      if (size < ino->cur_len)
        memset(ino->cur + size, 0, ino->cur_len - (size_t)size);
      ino->cur_len = (size_t)size;
    }
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_allocate(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                      uint64_t len) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_file(pl, PL_ALLOCATE, f, off, (size_t)len);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_size(void *ctx, walrus_vfs_file_t *f, uint64_t *size) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter(pl, NULL);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  if (rc == 0) *size = f->ino->cur_len;
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_lock(void *ctx, walrus_vfs_file_t *f) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter(pl, NULL);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_rename(void *ctx, const char *from, const char *to) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_path(pl, PL_RENAME, from, to);
  if (rc != 0) goto done;
  pl_ent_t *e = ns_find(&pl->cur, from);
  if (e == NULL) {
    rc = -ENOENT;
    goto done;
  }
  if (e->ino == NULL) {
    rc = -EISDIR; /* walrus never renames directories */
    goto done;
  }
  char parent[4096];
  parent_of(to, parent, sizeof parent);
  if (!ns_isdir(&pl->cur, parent)) {
    rc = -ENOENT;
    goto done;
  }
  pl_ent_t *t = ns_find(&pl->cur, to);
  if (t != NULL && t->ino == NULL) {
    rc = -EISDIR;
    goto done;
  }
  pl_inode_t *ino = e->ino;
  if (strcmp(from, to) == 0) goto done;
  rc = ns_set(&pl->cur, to, ino);
  if (rc != 0) goto done;
  ns_del(&pl->cur, from);
  rc = dop_add(pl, PL_D_RENAME, from, to, ino);
done:
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_unlink(void *ctx, const char *path) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter_path(pl, PL_UNLINK, path, NULL);
  if (rc != 0) goto done;
  pl_ent_t *e = ns_find(&pl->cur, path);
  if (e == NULL) {
    rc = -ENOENT;
    goto done;
  }
  if (e->ino == NULL) {
    rc = -EISDIR;
    goto done;
  }
  pl_inode_t *ino = e->ino;
  ns_del(&pl->cur, path);
  rc = dop_add(pl, PL_D_UNLINK, path, NULL, ino);
done:
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_sync_dir(void *ctx, const char *path_in) {
  pl_t *pl = ctx;
  int rc;
  char nb[4096];
  const char *path = norm(path_in, nb, sizeof nb);
  pthread_mutex_lock(&pl->mu);
  rc = enter_path(pl, PL_SYNC_DIR, path, NULL);
  if (rc == 0 && !ns_isdir(&pl->cur, path)) rc = -ENOENT;
  if (rc == 0) {
    size_t k = 0;
    for (size_t i = 0; i < pl->ndops; i++) {
      if (dop_touches(&pl->dops[i], path)) {
        dop_apply(pl, &pl->dops[i]);
        dop_free(&pl->dops[i]);
      } else {
        pl->dops[k++] = pl->dops[i];
      }
    }
    pl->ndops = k;
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_list(void *ctx, const char *path_in, walrus_vfs_list_fn fn,
                  void *arg) {
  pl_t *pl = ctx;
  int rc;
  char nb[4096];
  const char *path = norm(path_in, nb, sizeof nb);
  char **names = NULL;
  size_t n = 0;
  pthread_mutex_lock(&pl->mu);
  rc = enter(pl, NULL);
  if (rc == 0 && !ns_isdir(&pl->cur, path)) rc = -ENOENT;
  if (rc == 0) {
    names = calloc(pl->cur.n + 1, sizeof *names);
    if (names == NULL) rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < pl->cur.n; i++) {
      const char *p = pl->cur.v[i].path;
      if (!same_parent(p, path)) continue;
      const char *base = strrchr(p, '/');
      base = base ? base + 1 : p;
      names[n] = strdup(base);
      if (names[n] == NULL) rc = -ENOMEM;
      else n++;
    }
  }
  pthread_mutex_unlock(&pl->mu);
  /* Call fn without the mutex: it may call back into the VFS. */
  for (size_t i = 0; rc == 0 && i < n; i++) rc = fn(arg, names[i]);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

static int m_mkdir(void *ctx, const char *path_in) {
  pl_t *pl = ctx;
  int rc;
  char nb[4096];
  const char *path = norm(path_in, nb, sizeof nb);
  pthread_mutex_lock(&pl->mu);
  rc = enter_path(pl, PL_MKDIR, path, NULL);
  if (rc != 0) goto done;
  if (ns_isdir(&pl->cur, path) || ns_find(&pl->cur, path) != NULL) {
    rc = -EEXIST;
    goto done;
  }
  char parent[4096];
  parent_of(path, parent, sizeof parent);
  if (!ns_isdir(&pl->cur, parent)) {
    rc = -ENOENT;
    goto done;
  }
  rc = ns_set(&pl->cur, path, NULL);
  if (rc == 0) rc = dop_add(pl, PL_D_MKDIR, path, NULL, NULL);
done:
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

/* ---- version 5: a held directory is its path ------------------------------
 *
 * Nothing here renames a directory, so a directory handle is just its
 * path, and the methods on a name in it are the path methods on the
 * joined path.  Modes are not kept. */
struct walrus_vfs_dir_s {
  char path[4096];
};

/* dir/name into out; -ENAMETOOLONG if it does not fit. */
static int join(const walrus_vfs_dir_t *d, const char *name, char *out,
                size_t cap) {
  int n = snprintf(out, cap, "%s/%s", d->path, name);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int m_dir_open(void *ctx, walrus_vfs_dir_t *parent, const char *name,
                      int create, unsigned mode, walrus_vfs_dir_t **out) {
  pl_t *pl = ctx;
  (void)mode;
  walrus_vfs_dir_t *d = malloc(sizeof *d);
  if (d == NULL) return -ENOMEM;
  int rc = 0;
  if (parent != NULL) {
    rc = join(parent, name, d->path, sizeof d->path);
  } else {
    char nb[4096];
    snprintf(d->path, sizeof d->path, "%s", norm(name, nb, sizeof nb));
  }
  if (rc == 0 && create) {
    rc = m_mkdir(ctx, d->path);
    if (rc == -EEXIST) rc = 0;
  }
  if (rc == 0) {
    pthread_mutex_lock(&pl->mu);
    if (!ns_isdir(&pl->cur, d->path))
      rc = ns_find(&pl->cur, d->path) != NULL ? -ENOTDIR : -ENOENT;
    pthread_mutex_unlock(&pl->mu);
  }
  if (rc != 0) {
    free(d);
    return rc;
  }
  *out = d;
  return 0;
}

static int m_dir_close(void *ctx, walrus_vfs_dir_t *d) {
  (void)ctx;
  free(d);
  return 0;
}

static int m_open_at(void *ctx, walrus_vfs_dir_t *d, const char *name,
                     int flags, unsigned mode, walrus_vfs_file_t **out) {
  char p[4096];
  (void)mode;
  int rc = join(d, name, p, sizeof p);
  return rc != 0 ? rc : m_open(ctx, p, flags, out);
}

static int m_rename_at(void *ctx, walrus_vfs_dir_t *d_from, const char *from,
                       walrus_vfs_dir_t *d_to, const char *to) {
  char pf[4096], pt[4096];
  int rc = join(d_from, from, pf, sizeof pf);
  if (rc == 0) rc = join(d_to, to, pt, sizeof pt);
  return rc != 0 ? rc : m_rename(ctx, pf, pt);
}

static int m_unlink_at(void *ctx, walrus_vfs_dir_t *d, const char *name) {
  char p[4096];
  int rc = join(d, name, p, sizeof p);
  return rc != 0 ? rc : m_unlink(ctx, p);
}

static int m_sync_dir_at(void *ctx, walrus_vfs_dir_t *d) {
  return m_sync_dir(ctx, d->path);
}

static int m_list_at(void *ctx, walrus_vfs_dir_t *d, walrus_vfs_list_fn fn,
                     void *arg) {
  return m_list(ctx, d->path, fn, arg);
}

static int m_map(void *ctx, walrus_vfs_file_t *f, uint64_t len, void **addr) {
  pl_t *pl = ctx;
  int rc;
  pthread_mutex_lock(&pl->mu);
  rc = enter(pl, NULL);
  if (rc == 0 && !file_ok(pl, f)) rc = -EIO;
  if (rc == 0 && (len == 0 || len > f->ino->cur_len)) rc = -EINVAL;
  if (rc == 0 && pl->nmaps == pl->capmaps) {
    size_t cap = pl->capmaps ? pl->capmaps * 2 : 4;
    pl_map_t *v = realloc(pl->maps, cap * sizeof *v);
    if (v == NULL) rc = -ENOMEM;
    else {
      pl->maps = v;
      pl->capmaps = cap;
    }
  }
  if (rc == 0) {
    pl_map_t *mp = &pl->maps[pl->nmaps];
    mp->addr = malloc((size_t)len);
    if (mp->addr == NULL) {
      rc = -ENOMEM;
    } else {
      memcpy(mp->addr, f->ino->cur, (size_t)len);
      mp->ino = f->ino;
      mp->len = (size_t)len;
      mp->gen = pl->gen;
      pl->nmaps++;
      *addr = mp->addr;
    }
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

static int m_unmap(void *ctx, walrus_vfs_file_t *f, void *addr,
                   uint64_t len) {
  pl_t *pl = ctx;
  int rc = -EINVAL;
  (void)f;
  pthread_mutex_lock(&pl->mu);
  for (size_t m = 0; m < pl->nmaps; m++) {
    pl_map_t *mp = &pl->maps[m];
    if (mp->addr != addr || mp->len != len) continue;
    rc = map_fold(pl, mp->ino); /* a no-op once dead or after a crash */
    free(mp->addr);
    pl->maps[m] = pl->maps[--pl->nmaps];
    break;
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

/* ---- public -------------------------------------------------------------- */

pl_t *pl_new(void) {
  pl_t *pl = calloc(1, sizeof *pl);
  if (pl == NULL) return NULL;
  pthread_mutex_init(&pl->mu, NULL);
  pl->vfs.version = WALRUS_VFS_VERSION;
  pl->vfs.ctx = pl;
  pl->vfs.open = m_open;
  pl->vfs.close = m_close;
  pl->vfs.pread = m_pread;
  pl->vfs.pwrite = m_pwrite;
  pl->vfs.sync = m_sync;
  pl->vfs.truncate = m_truncate;
  pl->vfs.allocate = m_allocate;
  pl->vfs.size = m_size;
  pl->vfs.lock = m_lock;
  pl->vfs.rename = m_rename;
  pl->vfs.unlink = m_unlink;
  pl->vfs.sync_dir = m_sync_dir;
  pl->vfs.list = m_list;
  pl->vfs.mkdir = m_mkdir;
  pl->vfs.map = m_map;
  pl->vfs.unmap = m_unmap;
  pl->vfs.dir_open = m_dir_open;
  pl->vfs.dir_close = m_dir_close;
  pl->vfs.open_at = m_open_at;
  pl->vfs.rename_at = m_rename_at;
  pl->vfs.unlink_at = m_unlink_at;
  pl->vfs.sync_dir_at = m_sync_dir_at;
  pl->vfs.list_at = m_list_at;
  pl->gen = 1;
  return pl;
}

void pl_free(pl_t *pl) {
  if (pl == NULL) return;
  pl_inode_t *ino = pl->inodes;
  while (ino != NULL) {
    pl_inode_t *next = ino->next;
    ino_release(ino);
    free(ino);
    ino = next;
  }
  ns_clear(&pl->cur);
  ns_clear(&pl->dur);
  free(pl->cur.v);
  free(pl->dur.v);
  for (size_t i = 0; i < pl->ndops; i++) dop_free(&pl->dops[i]);
  free(pl->dops);
  for (size_t m = 0; m < pl->nmaps; m++) free(pl->maps[m].addr);
  free(pl->maps);
  pthread_mutex_destroy(&pl->mu);
  free(pl);
}

const walrus_vfs_t *pl_vfs(pl_t *pl) { return &pl->vfs; }

int pl_mkdir_durable(pl_t *pl, const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return -EINVAL;
  int rc = 0;
  pthread_mutex_lock(&pl->mu);
  for (size_t i = 1; i <= n && rc == 0; i++) {
    if (i < n && path[i] != '/') continue;
    memcpy(buf, path, i);
    buf[i] = '\0';
    if (ns_isdir(&pl->cur, buf)) continue;
    if (ns_find(&pl->cur, buf) != NULL) {
      rc = -ENOTDIR;
      break;
    }
    rc = ns_set(&pl->cur, buf, NULL);
    if (rc == 0) rc = ns_set(&pl->dur, buf, NULL);
  }
  pthread_mutex_unlock(&pl->mu);
  return rc;
}

void pl_arm(pl_t *pl, uint64_t k) {
  pthread_mutex_lock(&pl->mu);
  pl->armed = 1;
  pl->arm_at = pl->ops + k;
  pthread_mutex_unlock(&pl->mu);
}

void pl_disarm(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  pl->armed = 0;
  pthread_mutex_unlock(&pl->mu);
}

void pl_kill(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  if (!pl->dead) die(pl);
  pthread_mutex_unlock(&pl->mu);
}

int pl_dead(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  int d = pl->dead;
  pthread_mutex_unlock(&pl->mu);
  return d;
}

uint64_t pl_ops(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  uint64_t n = pl->ops;
  pthread_mutex_unlock(&pl->mu);
  return n;
}

pl_stats_t pl_stats(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  pl_stats_t s = pl->st;
  pthread_mutex_unlock(&pl->mu);
  return s;
}

int pl_exists(pl_t *pl, const char *path) {
  pthread_mutex_lock(&pl->mu);
  pl_ent_t *e = ns_find(&pl->cur, path);
  int r = e != NULL && e->ino != NULL;
  pthread_mutex_unlock(&pl->mu);
  return r;
}

/*
 * The crash of one inode.  Moment t (0..n) is "after the first t pending
 * changes".  Each sector takes its bytes at its own moment, the size is the
 * size at its moment.  q (0..1024) is how likely a sector (or the size)
 * picks its own moment rather than the file's common cut moment T.
 */
static void crash_inode(pl_t *pl, pl_inode_t *ino, uint64_t *rng,
                        unsigned q, int worst) {
  size_t n = ino->nops;
  if (n == 0) {
    /* Current = durable already, except in a file never synced: then
     * durable is empty and there is nothing pending either. */
    goto settle;
  }
  pl->st.files_pending++;
  /* The largest size the file had at any moment. */
  size_t maxlen = ino->dur_len, len = ino->dur_len;
  for (size_t i = 0; i < n; i++) {
    const pl_op_t *o = &ino->ops[i];
    if (o->is_write) {
      if (o->off + o->len > len) len = (size_t)o->off + o->len;
    } else {
      len = (size_t)o->off;
    }
    if (len > maxlen) maxlen = len;
  }
  size_t nsec = (maxlen + PL_SECTOR - 1) / PL_SECTOR;
  size_t T = worst ? 0 : (size_t)pl_below(rng, n + 1);
  size_t *when = malloc((nsec + 1) * sizeof *when);
  unsigned char *buf = calloc(maxlen + 1, 1);
  unsigned char *res = calloc(maxlen + 1, 1);
  if (when == NULL || buf == NULL || res == NULL) abort();
  for (size_t s = 0; s < nsec; s++)
    when[s] = pl_below(rng, 1024) < q ? (size_t)pl_below(rng, n + 1) : T;
  size_t tsize = pl_below(rng, 1024) < q ? (size_t)pl_below(rng, n + 1) : T;
  /* A shrink is metadata, journaled with its size: if the size the crash
   * keeps predates shrink j, no sector it cut shows a later moment (nothing
   * of the cut, nor of what was written there after it, reached the disk);
   * if it follows it, none shows an earlier one (the cut bytes are gone). */
  len = ino->dur_len;
  for (size_t j = 0; j < n; j++) {
    const pl_op_t *o = &ino->ops[j];
    if (o->is_write) {
      if (o->off + o->len > len) len = (size_t)o->off + o->len;
      continue;
    }
    if (o->off < len) {
      for (size_t s = (size_t)o->off / PL_SECTOR; s * PL_SECTOR < len; s++) {
        if (tsize <= j && when[s] > j) when[s] = j;
        if (tsize > j && when[s] <= j) when[s] = j + 1;
      }
    }
    len = (size_t)o->off;
  }
  if (ino->dur_len) memcpy(buf, ino->dur, ino->dur_len);
  len = ino->dur_len;
  size_t final_len = 0;
  for (size_t t = 0; t <= n; t++) {
    for (size_t s = 0; s < nsec; s++) {
      if (when[s] != t) continue;
      size_t a = s * PL_SECTOR, b = a + PL_SECTOR;
      if (b > maxlen) b = maxlen;
      memcpy(res + a, buf + a, b - a);
    }
    if (tsize == t) final_len = len;
    if (t == n) break;
    const pl_op_t *o = &ino->ops[t];
    if (o->is_write) {
      if (o->len) memcpy(buf + o->off, o->data, o->len);
      if (o->off + o->len > len) len = (size_t)o->off + o->len;
    } else {
      if (o->off < len) memset(buf + o->off, 0, len - (size_t)o->off);
      len = (size_t)o->off;
    }
  }
  /* Figures: for every write, did its sectors survive? */
  for (size_t i = 0; i < n; i++) {
    const pl_op_t *o = &ino->ops[i];
    if (!o->is_write || o->len == 0) continue;
    size_t s0 = (size_t)o->off / PL_SECTOR;
    size_t s1 = ((size_t)o->off + o->len - 1) / PL_SECTOR;
    size_t kept = 0, total = 0;
    for (size_t s = s0; s <= s1 && s < nsec; s++, total++)
      if (when[s] > i && s * PL_SECTOR < final_len) kept++;
    if (kept == 0) pl->st.writes_lost++;
    else if (kept == total) pl->st.writes_kept++;
    else pl->st.writes_torn++;
  }
  if (tsize < n) pl->st.sizes_lost++;
  free(ino->dur);
  ino->dur = res;
  ino->dur_len = final_len;
  free(when);
  free(buf);
  ops_clear(ino);
settle:
  /* The page cache is gone: what is durable is what there is. */
  if (cur_reserve(ino, ino->dur_len + 1) != 0) abort();
  memset(ino->cur, 0, ino->cur_cap);
  if (ino->dur_len) memcpy(ino->cur, ino->dur, ino->dur_len);
  ino->cur_len = ino->dur_len;
}

/* Lose power; with worst, every pending change is lost. */
static void crash(pl_t *pl, uint64_t seed, int worst) {
  pthread_mutex_lock(&pl->mu);
  uint64_t rng = seed ^ 0x5DEECE66Dull;
  pl->st.crashes++;
  /* How hard this crash tears. */
  static const unsigned qs[] = {0, 0, 64, 256, 1024};
  unsigned q = worst ? 0 : qs[pl_below(&rng, sizeof qs / sizeof qs[0])];
  /* How likely a pending directory operation survives. */
  static const unsigned ps[] = {0, 512, 512, 1024};
  unsigned pkeep =
      worst ? 0 : ps[pl_below(&rng, sizeof ps / sizeof ps[0])];
  for (size_t i = 0; i < pl->ndops; i++) {
    if (pl_below(&rng, 1024) < pkeep) {
      dop_apply(pl, &pl->dops[i]);
      pl->st.dirops_kept++;
    } else {
      pl->st.dirops_lost++;
    }
    dop_free(&pl->dops[i]);
  }
  pl->ndops = 0;
  /* Names in a directory that did not survive go too. */
  for (size_t i = 0; i < pl->dur.n;) {
    char parent[4096];
    parent_of(pl->dur.v[i].path, parent, sizeof parent);
    if (!ns_isdir(&pl->dur, parent)) {
      ns_del(&pl->dur, pl->dur.v[i].path);
      i = 0; /* the table was reordered */
      continue;
    }
    i++;
  }
  /* Every inode: reachable ones crash, the others are gone. */
  for (pl_inode_t *ino = pl->inodes; ino != NULL; ino = ino->next) {
    int reachable = 0;
    for (size_t i = 0; i < pl->dur.n && !reachable; i++)
      if (pl->dur.v[i].ino == ino) reachable = 1;
    if (reachable)
      crash_inode(pl, ino, &rng, q, worst);
    else
      ino_release(ino);
  }
  /* The current namespace is the durable one. */
  ns_clear(&pl->cur);
  for (size_t i = 0; i < pl->dur.n; i++)
    if (ns_set(&pl->cur, pl->dur.v[i].path, pl->dur.v[i].ino) != 0) abort();
  pl->gen++;
  pl->ops = 0;
  pl->armed = 0;
  pl->dead = 0;
  pthread_mutex_unlock(&pl->mu);
}

void pl_crash(pl_t *pl, uint64_t seed) { crash(pl, seed, 0); }

void pl_crash_worst(pl_t *pl) { crash(pl, 0, 1); }

void pl_restart(pl_t *pl) {
  pthread_mutex_lock(&pl->mu);
  if (!pl->dead) die(pl); /* what was stored into mappings is written */
  pl->gen++;              /* the dead process's files and mappings go */
  pl->ops = 0;
  pl->armed = 0;
  pl->dead = 0;
  pthread_mutex_unlock(&pl->mu);
}

void pl_hook(pl_t *pl, pl_hook_fn fn, void *ud) {
  pthread_mutex_lock(&pl->mu);
  pl->hook = fn;
  pl->hook_ud = ud;
  pthread_mutex_unlock(&pl->mu);
}
