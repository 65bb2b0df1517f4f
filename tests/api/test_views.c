/*
 * test_views.c: the zero-copy read API of walrus.h: walrus_get_view() and
 * walrus_view_release(), walrus_get_range() and walrus_get_range_view(),
 * walrus_get_many() and walrus_get_many_view(), cfg.zero_copy, and the
 * read-only mapping methods of VFS version 3 (map_read, unmap_read).
 *
 * This file owns:
 *  - view: a view's fields equal what was appended and what walrus_get()
 *    returns; EINVAL and EINDEX; the view untouched on failure; release of
 *    NULL and release twice; data inside a live read mapping; entries and
 *    units longer than segment_bytes (the tail mapped anew);
 *  - view_life: a view keeps its bytes across rotation and sealing,
 *    truncate_front() and retention removing its file, walrus_reset(),
 *    walrus_close() of the handle, truncate_back() cutting its own entry
 *    followed by appends that reuse its index (tail, sealed segment,
 *    mapped writes), the writer's truncate_back under a read-only handle's
 *    view, and reader threads beside an appending writer;
 *  - zero_copy: walrus_get() and iterators give the same entries with
 *    zero_copy 1 and 0, and with 1 make no pread once the segments are
 *    mapped; reads of the tail while it grows;
 *  - range: walrus_get_range() and walrus_get_range_view(): the end, count
 *    and byte bounds, the entry always read, clamping, refusals, freeing;
 *  - many: batched reads at scattered indexes, in both zero_copy modes,
 *    equal walrus_get(); all or nothing on a bad index; n 0; views across
 *    segments with a small cache; a VFS without map_read; reader threads
 *    beside an appending, truncating writer;
 *  - noalloc: no allocation in steady state for views, batched views and
 *    iterators;
 *  - cache: read mappings bounded by cached_segments + 1 while no view is
 *    held, kept alive by views, released after;
 *  - nomap: a VFS that cannot map for reading (map_read NULL, version 2,
 *    map_read failing with -EOPNOTSUPP): views copy, zero_copy reads with
 *    pread;
 *  - iter: iterators in both modes across segments, while appending,
 *    after truncate_front() and truncate_back(), and their borrowed entry
 *    across other calls.
 *
 * Bad arguments of every new function are also rows of test_badinput.c.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

TestSuite(view, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(view_life, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zero_copy, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(range, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(noalloc, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(cache, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(nomap, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(iter, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(many, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

#define SEED 0x71E3501u
#define SEED2 0x71E3502u /* entries that replace truncated ones */

/* ---- helpers ------------------------------------------------------------ */

static walrus_config_t cfg_seg(uint64_t segment_bytes) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = segment_bytes;
  return cfg;
}

/* A config for building big logs quickly: no fdatasync per append (the
 * entries are readable at once under SYNC_NONE). */
static walrus_config_t cfg_fast(uint64_t segment_bytes) {
  walrus_config_t cfg = cfg_seg(segment_bytes);
  cfg.sync = WALRUS_SYNC_NONE;
  return cfg;
}

static size_t nsegs(void) {
  return tu_segments(tu_dir, NULL);
}

/* The first index of every segment file, in order; returns the count. */
static size_t seg_firsts(uint64_t *out, size_t cap) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_leq(n, cap, "%zu segments, room for %zu", n, cap);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(walrus__fmt_seg_name_parse(names[i], &out[i]), 1,
                 "bad name %s", names[i]);
  tu_strv_free(names);
  return n;
}

/* The name of the segment file holding index (the last whose first index
 * is at most index). */
static void seg_of(uint64_t index, char *name, size_t len) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  const char *hit = NULL;
  for (size_t i = 0; i < n; i++) {
    uint64_t first = 0;
    cr_assert_eq(walrus__fmt_seg_name_parse(names[i], &first), 1);
    if (first <= index) hit = names[i];
  }
  cr_assert_not_null(hit, "no segment file holds index %" PRIu64, index);
  snprintf(name, len, "%s", hit);
  tu_strv_free(names);
}

/* Assert that e holds exactly tu_entry_set(index, seed, max)'s fields and
 * bytes, compared with memcmp against a fresh copy of the payload. */
static void check_bytes_now(const walrus_entry_t *e, uint64_t index,
                            uint64_t seed, size_t max, const char *when) {
  size_t len = tu_len(index, seed, max);
  cr_assert_eq(e->index, index, "%s: index %" PRIu64 ", want %" PRIu64, when,
               e->index, index);
  cr_assert_eq(e->term, index, "%s: entry %" PRIu64 ": term", when, index);
  cr_assert_eq(e->type, (uint16_t)(index % 7), "%s: entry %" PRIu64 ": type",
               when, index);
  cr_assert_eq(e->timestamp_ns, (int64_t)(1000 + index),
               "%s: entry %" PRIu64 ": timestamp", when, index);
  cr_assert_null(e->tx_id, "%s: entry %" PRIu64 ": tx_id", when, index);
  cr_assert_eq(e->len, len, "%s: entry %" PRIu64 ": len %zu, want %zu", when,
               index, e->len, len);
  if (len == 0) return;
  unsigned char *want = malloc(len);
  cr_assert_not_null(want);
  tu_payload(index, seed, want, len);
  cr_assert_not_null(e->data, "%s: entry %" PRIu64 ": data NULL", when, index);
  int diff = memcmp(e->data, want, len);
  free(want);
  cr_assert_eq(diff, 0, "%s: entry %" PRIu64 ": bytes differ", when, index);
}

/* Assert that two entries are the same: every field and the bytes. */
static void same_entry(const walrus_entry_t *a, const walrus_entry_t *b,
                       const char *what) {
  cr_assert_eq(a->index, b->index, "%s: index %" PRIu64 " vs %" PRIu64, what,
               a->index, b->index);
  cr_assert_eq(a->term, b->term, "%s: entry %" PRIu64 ": term", what, a->index);
  cr_assert_eq(a->type, b->type, "%s: entry %" PRIu64 ": type", what, a->index);
  cr_assert_eq(a->timestamp_ns, b->timestamp_ns,
               "%s: entry %" PRIu64 ": timestamp", what, a->index);
  cr_assert_eq(a->checksum, b->checksum, "%s: entry %" PRIu64 ": checksum",
               what, a->index);
  cr_assert_eq(a->tx_id == NULL, b->tx_id == NULL,
               "%s: entry %" PRIu64 ": tx_id present in one only", what,
               a->index);
  if (a->tx_id != NULL)
    cr_assert_str_eq(a->tx_id, b->tx_id, "%s: entry %" PRIu64 ": tx_id", what,
                     a->index);
  cr_assert_eq(a->len, b->len, "%s: entry %" PRIu64 ": len %zu vs %zu", what,
               a->index, a->len, b->len);
  if (a->len)
    cr_assert_eq(memcmp(a->data, b->data, a->len), 0,
                 "%s: entry %" PRIu64 ": bytes differ", what, a->index);
}

/* Append n test entries (tu_entry_set) in batches of up to per. */
static void append_batches(walrus_t *w, uint64_t n, uint64_t seed, size_t max,
                           size_t per) {
  walrus_entry_t *e = calloc(per, sizeof *e);
  unsigned char *buf = malloc(per * (max ? max : 1));
  cr_assert(e != NULL && buf != NULL);
  while (n > 0) {
    size_t k = n < per ? (size_t)n : per;
    uint64_t want = walrus_next_index(w), got = 0;
    for (size_t i = 0; i < k; i++)
      tu_entry_set(&e[i], want + i, seed, max, buf + i * max);
    TU_OK(w, walrus_write_batch(w, e, k, &got));
    cr_assert_eq(got, want);
    n -= k;
  }
  free(buf);
  free(e);
}

/* A small deterministic generator for random indexes. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}
static uint64_t rng_in(uint64_t *s, uint64_t lo, uint64_t hi) {
  return lo + rng_next(s) % (hi - lo + 1);
}

/* Expect the iterator's next n entries to be first.. of SEED (max 250). */
static void iter_expect_n(walrus_iter_t *it, uint64_t first, uint64_t n,
                          const char *what) {
  for (uint64_t i = first; i < first + n; i++) {
    walrus_entry_t e;
    int rc = walrus_iter_next(it, &e);
    cr_assert_eq(rc, WALRUS_OK, "%s: iter at %" PRIu64 ": %s", what, i,
                 walrus_errname(rc));
    check_bytes_now(&e, i, SEED, 250, what);
  }
}

/* ---- a model of what was appended (entries not from tu_entry_set) ------ */

typedef struct ment {
  uint64_t term;       /* as appended */
  uint16_t type;       /* as appended */
  int64_t ts;          /* as appended */
  char txid[64];       /* "" for none */
  unsigned char *data; /* a copy of the payload */
  size_t len;          /* its length */
} ment_t;

typedef struct model {
  ment_t e[1024]; /* by index - 1 (the logs here start at 1) */
  uint64_t n;     /* entries 1..n */
} model_t;

static void model_put(model_t *m, uint64_t index, const walrus_entry_t *e,
                      const char *txid) {
  cr_assert(index >= 1 && index <= 1024);
  ment_t *x = &m->e[index - 1];
  x->term = e->term;
  x->type = e->type;
  x->ts = e->timestamp_ns;
  snprintf(x->txid, sizeof x->txid, "%s", txid ? txid : "");
  x->len = e->len;
  x->data = malloc(e->len ? e->len : 1);
  cr_assert_not_null(x->data);
  if (e->len) memcpy(x->data, e->data, e->len);
  if (index > m->n) m->n = index;
}

static void model_free(model_t *m) {
  for (uint64_t i = 0; i < m->n; i++) free(m->e[i].data);
  m->n = 0;
}

/* Append e and record it. */
static uint64_t model_append(walrus_t *w, model_t *m, const walrus_entry_t *e) {
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, e, &idx));
  model_put(m, idx, e, e->tx_id);
  return idx;
}

/* Append n tu_entry_set entries one by one and record them. */
static void model_append_n(walrus_t *w, model_t *m, uint64_t n, size_t max) {
  unsigned char *buf = malloc(max ? max : 1);
  cr_assert_not_null(buf);
  for (uint64_t i = 0; i < n; i++) {
    walrus_entry_t e;
    tu_entry_set(&e, walrus_next_index(w), SEED, max, buf);
    uint64_t got = model_append(w, m, &e);
    cr_assert_eq(got, e.term);
  }
  free(buf);
}

/* Commit a transaction of k entries with distinct fields; record them. */
static void model_tx(walrus_t *w, model_t *m, size_t k) {
  walrus_txid_t id;
  unsigned char buf[64][128];
  walrus_entry_t e[64];
  cr_assert_leq(k, 64u);
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  for (size_t i = 0; i < k; i++) {
    memset(&e[i], 0, sizeof e[i]);
    e[i].term = 7000 + i;
    e[i].type = (uint16_t)(40 + i);
    e[i].timestamp_ns = (int64_t)(900000 + i);
    e[i].len = (i * 37) % 128;
    tu_payload(0xF00D + i, SEED, buf[i], e[i].len);
    e[i].data = buf[i];
    TU_OK(w, walrus_tx_add(w, &id, &e[i]));
  }
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(count, k);
  for (size_t i = 0; i < k; i++) model_put(m, first + i, &e[i], id.s);
}

/* Assert that e is the model's entry index. */
static void model_check(const model_t *m, const walrus_entry_t *e,
                        uint64_t index, const char *what) {
  cr_assert(index >= 1 && index <= m->n);
  const ment_t *x = &m->e[index - 1];
  cr_assert_eq(e->index, index, "%s: index %" PRIu64 ", want %" PRIu64, what,
               e->index, index);
  cr_assert_eq(e->term, x->term, "%s: entry %" PRIu64 ": term", what, index);
  cr_assert_eq(e->type, x->type, "%s: entry %" PRIu64 ": type", what, index);
  cr_assert_eq(e->timestamp_ns, x->ts, "%s: entry %" PRIu64 ": timestamp", what,
               index);
  if (x->txid[0] == '\0') {
    cr_assert_null(e->tx_id, "%s: entry %" PRIu64 ": tx_id set", what, index);
  } else {
    cr_assert_not_null(e->tx_id, "%s: entry %" PRIu64 ": tx_id lost", what,
                       index);
    cr_assert_str_eq(e->tx_id, x->txid, "%s: entry %" PRIu64 ": tx_id", what,
                     index);
  }
  cr_assert_eq(e->len, x->len, "%s: entry %" PRIu64 ": len %zu, want %zu", what,
               index, e->len, x->len);
  if (x->len)
    cr_assert_eq(memcmp(e->data, x->data, x->len), 0,
                 "%s: entry %" PRIu64 ": bytes differ", what, index);
}

/* A log of several 4 KiB segments holding every kind of entry: random
 * lengths (0 and max among them), an entry with a plain tx_id, a committed
 * transaction, an explicit empty payload.  Returns the handle. */
static walrus_t *model_log(model_t *m, const walrus_config_t *cfg) {
  walrus_t *w = tu_open(tu_dir, cfg);
  model_append_n(w, m, 60, 300);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.term = 4242;
  e.type = 3;
  e.timestamp_ns = 55555;
  e.tx_id = "client-7";
  e.data = "with a tx id";
  e.len = 12;
  model_append(w, m, &e);
  model_tx(w, m, 5);
  memset(&e, 0, sizeof e);
  e.term = 1;
  e.type = 2;
  e.timestamp_ns = 3;
  e.data = "";
  e.len = 0;
  model_append(w, m, &e);
  model_append_n(w, m, 60, 300);
  model_tx(w, m, 3); /* the tail ends in a transaction */
  cr_assert_geq(nsegs(), 4u, "the log wants several segments");
  return w;
}

/* ---- a counting allocator ----------------------------------------------- */

typedef struct acount {
  atomic_long mallocs, reallocs, frees, live;
} acount_t;

static acount_t g_ac;

static void *ac_malloc(void *ud, size_t n) {
  acount_t *a = ud;
  atomic_fetch_add(&a->mallocs, 1);
  void *p = malloc(n ? n : 1);
  if (p) atomic_fetch_add(&a->live, 1);
  return p;
}
static void *ac_realloc(void *ud, void *ptr, size_t n) {
  acount_t *a = ud;
  atomic_fetch_add(&a->reallocs, 1);
  void *p = realloc(ptr, n ? n : 1);
  if (p && !ptr) atomic_fetch_add(&a->live, 1);
  return p;
}
static void ac_free(void *ud, void *ptr) {
  acount_t *a = ud;
  if (ptr) {
    atomic_fetch_add(&a->frees, 1);
    atomic_fetch_sub(&a->live, 1);
  }
  free(ptr);
}
static const walrus_allocator_t g_alloc = {ac_malloc, ac_realloc, ac_free,
                                           &g_ac};

static long allocs(void) {
  return atomic_load(&g_ac.mallocs) + atomic_load(&g_ac.reallocs);
}

/* ---- a VFS over POSIX that counts read mappings ------------------------- */

#define MV_SLOTS 256

typedef struct mvfs {
  walrus_vfs_t vfs;       /* the table handed to walrus */
  const walrus_vfs_t *px; /* the POSIX table it delegates to */
  int map_fails;          /* map_read returns -EOPNOTSUPP */
  pthread_mutex_t mu;     /* guards the fields below */
  long map_calls;         /* map_read calls */
  long unmap_calls;       /* unmap_read calls */
  long bad_unmaps;        /* unmap_read of nothing mapped, or a wrong len */
  long outstanding;       /* mapped and not yet unmapped */
  long peak;              /* the most outstanding at once */
  struct {
    unsigned char *addr; /* a live mapping, or NULL */
    uint64_t len;        /* its length */
  } maps[MV_SLOTS];
  atomic_long preads; /* pread calls */
} mvfs_t;

static mvfs_t g_mv;

static int mv_map_read(void *ctx, walrus_vfs_file_t *f, uint64_t len,
                       void **addr) {
  (void)ctx;
  pthread_mutex_lock(&g_mv.mu);
  g_mv.map_calls++;
  pthread_mutex_unlock(&g_mv.mu);
  if (g_mv.map_fails) return -EOPNOTSUPP;
  int rc = g_mv.px->map_read(g_mv.px->ctx, f, len, addr);
  if (rc != 0) return rc;
  pthread_mutex_lock(&g_mv.mu);
  int slot = -1;
  for (int i = 0; i < MV_SLOTS && slot < 0; i++)
    if (g_mv.maps[i].addr == NULL) slot = i;
  if (slot >= 0) {
    g_mv.maps[slot].addr = *addr;
    g_mv.maps[slot].len = len;
  }
  g_mv.outstanding++;
  if (g_mv.outstanding > g_mv.peak) g_mv.peak = g_mv.outstanding;
  pthread_mutex_unlock(&g_mv.mu);
  cr_assert_geq(slot, 0, "more than %d read mappings at once", MV_SLOTS);
  return 0;
}

static int mv_unmap_read(void *ctx, void *addr, uint64_t len) {
  (void)ctx;
  pthread_mutex_lock(&g_mv.mu);
  g_mv.unmap_calls++;
  int found = 0;
  for (int i = 0; i < MV_SLOTS && !found; i++)
    if (g_mv.maps[i].addr == addr) {
      found = 1;
      if (g_mv.maps[i].len != len) g_mv.bad_unmaps++;
      g_mv.maps[i].addr = NULL;
      g_mv.outstanding--;
    }
  if (!found) g_mv.bad_unmaps++;
  pthread_mutex_unlock(&g_mv.mu);
  return g_mv.px->unmap_read(g_mv.px->ctx, addr, len);
}

static int64_t mv_pread(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                        uint64_t off) {
  atomic_fetch_add(&g_mv.preads, 1);
  return g_mv.px->pread(ctx, f, buf, n, off);
}

/* How the wrapper presents itself. */
enum { MV_MAPS, MV_NO_MAP_READ, MV_VERSION_2, MV_MAP_FAILS };

static const walrus_vfs_t *mv_init(int mode) {
  memset(&g_mv, 0, sizeof g_mv);
  pthread_mutex_init(&g_mv.mu, NULL);
  g_mv.px = walrus_vfs_posix();
  cr_assert_geq(g_mv.px->version, 3, "the POSIX table is not version 3");
  cr_assert(g_mv.px->map_read != NULL && g_mv.px->unmap_read != NULL,
            "the POSIX table cannot map for reading");
  g_mv.vfs = *g_mv.px;
  g_mv.vfs.pread = mv_pread;
  g_mv.vfs.map_read = mv_map_read;
  g_mv.vfs.unmap_read = mv_unmap_read;
  switch (mode) {
    case MV_MAPS:
      break;
    case MV_NO_MAP_READ:
      g_mv.vfs.map_read = NULL;
      g_mv.vfs.unmap_read = NULL;
      g_mv.vfs.advise = NULL;
      break;
    case MV_VERSION_2: /* the methods are there, but must not be read */
      g_mv.vfs.version = 2;
      break;
    case MV_MAP_FAILS:
      g_mv.map_fails = 1;
      break;
    default:
      cr_assert_fail("mode %d", mode);
  }
  return &g_mv.vfs;
}

static long mv_outstanding(void) {
  pthread_mutex_lock(&g_mv.mu);
  long n = g_mv.outstanding;
  pthread_mutex_unlock(&g_mv.mu);
  return n;
}

static long mv_map_calls(void) {
  pthread_mutex_lock(&g_mv.mu);
  long n = g_mv.map_calls;
  pthread_mutex_unlock(&g_mv.mu);
  return n;
}

/* The slot of the live mapping holding [p, p + len), or -1. */
static int mv_holding(const void *p, size_t len) {
  const unsigned char *q = p;
  int hit = -1;
  pthread_mutex_lock(&g_mv.mu);
  for (int i = 0; i < MV_SLOTS && hit < 0; i++) {
    unsigned char *a = g_mv.maps[i].addr;
    if (a != NULL && q >= a && q + len <= a + g_mv.maps[i].len) hit = i;
  }
  pthread_mutex_unlock(&g_mv.mu);
  return hit;
}

static void mv_expect_clean(void) {
  pthread_mutex_lock(&g_mv.mu);
  long bad = g_mv.bad_unmaps, out = g_mv.outstanding;
  pthread_mutex_unlock(&g_mv.mu);
  cr_assert_eq(bad, 0, "%ld unmap_read calls of no mapping or a wrong length",
               bad);
  cr_assert_eq(out, 0, "%ld read mappings never unmapped", out);
}

/* ==== 1. walrus_get_view ================================================= */

/* Every field of a view equals what was appended and what walrus_get()
 * returns, for plain entries, a tx_id entry, transaction entries and an
 * empty payload, in sealed segments and in the tail. */
Test(view, fields_equal_append_and_get) {
  static model_t m;
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = model_log(&m, &cfg);
  for (uint64_t i = 1; i <= m.n; i++) {
    walrus_view_t v;
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get_view(w, i, &v));
    TU_OK(w, walrus_get(w, i, &e));
    model_check(&m, &v.entry, i, "view");
    if (v.entry.tx_id != NULL) /* walrus.h on tx_id_: "entry.tx_id points
                                  here when it is set" */
      cr_assert_eq(
          v.entry.tx_id, v.tx_id_,
          "entry %" PRIu64 ": tx_id does not point into the view's tx_id_", i);
    model_check(&m, &e, i, "get");
    same_entry(&v.entry, &e, "view vs get");
    walrus_entry_free(&e);
    walrus_view_release(&v);
  }
  /* and after reopening, from segments not read before */
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  for (uint64_t i = m.n; i >= 1; i--) {
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    model_check(&m, &v.entry, i, "view after reopen");
    walrus_view_release(&v);
  }
  TU_OK(w, walrus_close(w));
  model_free(&m);
}

/* Several views of the same and of different entries at once. */
Test(view, many_views_at_once) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 120, SEED, 250);
  static walrus_view_t v[240];
  for (uint64_t i = 0; i < 240; i++)
    TU_OK(w, walrus_get_view(w, 1 + i % 120, &v[i]));
  for (uint64_t i = 0; i < 240; i++)
    check_bytes_now(&v[i].entry, 1 + i % 120, SEED, 250, "held view");
  for (uint64_t i = 0; i < 240; i += 2) walrus_view_release(&v[i]);
  for (uint64_t i = 1; i < 240; i += 2)
    check_bytes_now(&v[i].entry, 1 + i % 120, SEED, 250, "the other view");
  for (uint64_t i = 1; i < 240; i += 2) walrus_view_release(&v[i]);
  TU_OK(w, walrus_close(w));
}

/* The view is left untouched by a failed call (walrus.h: "view is
 * untouched on failure"). */
static void expect_view_refused(walrus_t *w, uint64_t index, int code) {
  walrus_view_t v, s;
  memset(&v, 0x5A, sizeof v);
  memset(&s, 0x5A, sizeof s);
  int rc = walrus_get_view(w, index, &v);
  cr_assert_eq(rc, code, "get_view(%" PRIu64 "): got %s, want %s", index,
               walrus_errname(rc), walrus_errname(code));
  cr_assert_eq(memcmp(&v, &s, sizeof v), 0,
               "get_view(%" PRIu64 ") failed but wrote the view", index);
}

Test(view, refusals_leave_the_view_untouched) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  expect_view_refused(w, 0, WALRUS_EINDEX); /* empty new log */
  expect_view_refused(w, 1, WALRUS_EINDEX);
  tu_append_n(w, 60, SEED, 200);
  expect_view_refused(w, 0, WALRUS_EINDEX);
  expect_view_refused(w, 61, WALRUS_EINDEX);
  expect_view_refused(w, 1000, WALRUS_EINDEX);
  expect_view_refused(w, UINT64_MAX, WALRUS_EINDEX);
  expect_view_refused(NULL, 1, WALRUS_EINVAL);
  TU_EXPECT(WALRUS_EINVAL, walrus_get_view(w, 1, NULL));
  TU_OK(w, walrus_truncate_front(w, 30));
  expect_view_refused(w, 29, WALRUS_EINDEX);
  expect_view_refused(w, 1, WALRUS_EINDEX);
  walrus_view_t v;
  TU_OK(w, walrus_get_view(w, 30, &v));
  check_bytes_now(&v.entry, 30, SEED, 200, "first after truncate_front");
  walrus_view_release(&v);
  TU_OK(w, walrus_truncate_front(w, 61)); /* empty, next index 61 */
  expect_view_refused(w, 60, WALRUS_EINDEX);
  expect_view_refused(w, 61, WALRUS_EINDEX);
  expect_view_refused(w, 0, WALRUS_EINDEX);
  TU_OK(w, walrus_close(w));
}

Test(view, release_twice_and_null) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 100);
  walrus_view_t v;
  TU_OK(w, walrus_get_view(w, 2, &v));
  check_bytes_now(&v.entry, 2, SEED, 100, "view");
  walrus_view_release(&v);
  walrus_view_release(&v); /* walrus.h: "a view already released" is fine */
  walrus_view_release(NULL);
  /* the same view struct can be used again */
  TU_OK(w, walrus_get_view(w, 3, &v));
  check_bytes_now(&v.entry, 3, SEED, 100, "view reused");
  walrus_view_release(&v);
  walrus_view_release(&v);
  TU_OK(w, walrus_close(w));
}

/* The view borrows from a mapping: its data lies inside a read mapping the
 * VFS made and has not unmapped. */
Test(view, data_points_into_a_read_mapping) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 250);
  for (uint64_t i = 1; i <= 100; i++) {
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "view");
    if (v.entry.len > 0)
      cr_assert_geq(mv_holding(v.entry.data, v.entry.len), 0,
                    "entry %" PRIu64 ": data is not in a live read mapping", i);
    cr_assert_not_null(v.map_, "entry %" PRIu64 ": map_ NULL, VFS maps", i);
    walrus_view_release(&v);
  }
  cr_assert_gt(mv_map_calls(), 0, "no map_read call");
  TU_OK(w, walrus_close(w));
  mv_expect_clean();
}

/* A unit longer than segment_bytes carries the tail past it (walrus.h: "a
 * batch larger than segment_bytes gets a segment of its own"): views and
 * mapped reads of its far end, in the tail and once sealed. */
Test(view, entries_past_segment_bytes) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.max_entry_bytes = 64 * 1024;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 5, SEED, 250);
  append_batches(w, 30, SEED, 1000, 30); /* ~15 KB in one unit */
  /* a view of its first entry maps the tail segment_bytes long; one of its
   * last maps it anew, longer; the first view keeps its bytes */
  walrus_view_t first, lastv;
  TU_OK(w, walrus_get_view(w, 6, &first));
  TU_OK(w, walrus_get_view(w, 35, &lastv));
  check_bytes_now(&lastv.entry, 35, SEED, 1000, "end of the unit");
  check_bytes_now(&first.entry, 6, SEED, 1000, "start of the unit");
  walrus_view_release(&lastv);
  check_bytes_now(&first.entry, 6, SEED, 1000, "start, after a release");
  static unsigned char big[20000];
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.term = 36;
  e.type = 36 % 7;
  e.timestamp_ns = 1036;
  tu_payload(36, SEED2, big, sizeof big);
  e.data = big;
  e.len = sizeof big; /* one entry of 5 pages */
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, &e, &idx));
  cr_assert_eq(idx, 36u);
  for (int round = 0; round < 2; round++) {
    for (uint64_t i = 1; i <= 35; i++) {
      walrus_view_t v;
      TU_OK(w, walrus_get_view(w, i, &v));
      check_bytes_now(&v.entry, i, SEED, i <= 5 ? 250 : 1000, "view");
      walrus_view_release(&v);
    }
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, 36, &v));
    cr_assert_eq(v.entry.len, sizeof big);
    cr_assert_eq(memcmp(v.entry.data, big, sizeof big), 0, "round %d", round);
    walrus_view_release(&v);
    tu_append_n(w, 30, SEED, 250); /* seal them; round 2 reads sealed */
  }
  check_bytes_now(&first.entry, 6, SEED, 1000, "start, at the end");
  walrus_view_release(&first);
  TU_OK(w, walrus_close(w));
  cfg.zero_copy = 1;
  w = tu_open(tu_dir, &cfg);
  memset(&e, 0, sizeof e);
  TU_OK(w, walrus_get(w, 36, &e));
  cr_assert_eq(e.len, sizeof big);
  cr_assert_eq(memcmp(e.data, big, sizeof big), 0, "zero_copy get");
  walrus_entry_free(&e);
  for (uint64_t i = 6; i <= 35; i++) {
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, i, &e));
    check_bytes_now(&e, i, SEED, 1000, "zero_copy get");
    walrus_entry_free(&e);
  }
  TU_OK(w, walrus_close(w));
}

/* ==== 2. a view keeps its bytes ========================================== */

/* A view taken in the tail, then hundreds of appends: its segment is
 * sealed and many more are made. */
Test(view_life, across_rotation) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 6, SEED, 300);
  walrus_view_t a, b, c;
  TU_OK(w, walrus_get_view(w, 1, &a));
  TU_OK(w, walrus_get_view(w, 4, &b));
  TU_OK(w, walrus_get_view(w, 6, &c)); /* the very last record */
  size_t before = nsegs();
  tu_append_n(w, 300, SEED, 300);
  cr_assert_geq(nsegs(), before + 5, "too few rotations: %zu segments",
                nsegs());
  check_bytes_now(&a.entry, 1, SEED, 300, "after rotation");
  check_bytes_now(&b.entry, 4, SEED, 300, "after rotation");
  check_bytes_now(&c.entry, 6, SEED, 300, "after rotation");
  walrus_view_release(&a);
  walrus_view_release(&b);
  walrus_view_release(&c);
  tu_check_range(w, 1, 306, SEED, 300);
  TU_OK(w, walrus_close(w));
}

Test(view_life, across_truncate_front_removing_its_file) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, 250);
  char seg2[64], seg60[64];
  seg_of(2, seg2, sizeof seg2);
  seg_of(60, seg60, sizeof seg60);
  walrus_view_t a, b;
  TU_OK(w, walrus_get_view(w, 2, &a));
  TU_OK(w, walrus_get_view(w, 60, &b));
  TU_OK(w, walrus_truncate_front(w, 150));
  cr_assert(!tu_exists(tu_path(tu_dir, seg2)), "%s is still there", seg2);
  cr_assert(!tu_exists(tu_path(tu_dir, seg60)), "%s is still there", seg60);
  check_bytes_now(&a.entry, 2, SEED, 250, "after truncate_front");
  check_bytes_now(&b.entry, 60, SEED, 250, "after truncate_front");
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 2, &e));
  /* the log goes on; the views still hold the old bytes */
  tu_append_n(w, 100, SEED, 250);
  check_bytes_now(&a.entry, 2, SEED, 250, "after more appends");
  walrus_view_release(&a);
  check_bytes_now(&b.entry, 60, SEED, 250, "after releasing the other");
  walrus_view_release(&b);
  tu_check_range(w, 150, 300, SEED, 250);
  TU_OK(w, walrus_close(w));
}

Test(view_life, across_retention) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.max_segments = 2;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 4, SEED, 300);
  char seg1[64];
  seg_of(1, seg1, sizeof seg1);
  walrus_view_t a, b;
  TU_OK(w, walrus_get_view(w, 1, &a));
  TU_OK(w, walrus_get_view(w, 4, &b));
  tu_append_n(w, 300, SEED, 300);
  cr_assert_gt(walrus_first_index(w), 4u, "retention removed nothing");
  cr_assert(!tu_exists(tu_path(tu_dir, seg1)), "%s is still there", seg1);
  cr_assert_leq(nsegs(), 2u, "max_segments 2, yet %zu segments", nsegs());
  check_bytes_now(&a.entry, 1, SEED, 300, "after retention");
  check_bytes_now(&b.entry, 4, SEED, 300, "after retention");
  walrus_view_release(&a);
  walrus_view_release(&b);
  TU_OK(w, walrus_close(w));
}

/* Views outlive the handle: read them after walrus_close(), release them
 * after.  Everything is freed through the allocator and unmapped. */
Test(view_life, across_close_of_the_handle) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.allocator = &g_alloc;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 250);
  walrus_view_t v[3];
  const uint64_t at[3] = {1, 50, 100}; /* sealed, sealed, the tail */
  for (int i = 0; i < 3; i++) TU_OK(w, walrus_get_view(w, at[i], &v[i]));
  TU_OK(w, walrus_close(w));
  for (int i = 0; i < 3; i++)
    check_bytes_now(&v[i].entry, at[i], SEED, 250, "after close");
  walrus_view_release(&v[1]);
  check_bytes_now(&v[0].entry, 1, SEED, 250, "after close and a release");
  check_bytes_now(&v[2].entry, 100, SEED, 250, "after close and a release");
  walrus_view_release(&v[0]);
  walrus_view_release(&v[2]);
  walrus_view_release(&v[2]);
  cr_assert_eq(atomic_load(&g_ac.live), 0,
               "%ld allocations left after close and the last release",
               atomic_load(&g_ac.live));
  mv_expect_clean();
  /* the log is intact */
  cfg.allocator = NULL;
  cfg.vfs = NULL;
  w = tu_open(tu_dir, &cfg);
  tu_check_range(w, 1, 100, SEED, 250);
  TU_OK(w, walrus_close(w));
}

/* truncate_back cutting a held view's entry, new appends reusing its
 * index: the view keeps the old bytes, walrus_get shows the new ones, and
 * after reopening the log holds the kept entries and the new ones.
 * views[] are indexes to hold; last_kept is where to cut. */
static void truncate_back_under_views(walrus_t *w, walrus_config_t *cfg,
                                      const uint64_t *at, size_t nat,
                                      uint64_t last_kept, uint64_t nnew) {
  static walrus_view_t v[16];
  cr_assert_leq(nat, 16u);
  for (size_t i = 0; i < nat; i++) TU_OK(w, walrus_get_view(w, at[i], &v[i]));
  TU_OK(w, walrus_truncate_back(w, last_kept));
  cr_assert_eq(walrus_last_index(w), last_kept);
  for (size_t i = 0; i < nat; i++)
    check_bytes_now(&v[i].entry, at[i], SEED, 250, "after truncate_back");
  tu_append_n(w, nnew, SEED2, 250);
  cr_assert_eq(walrus_last_index(w), last_kept + nnew);
  for (size_t i = 0; i < nat; i++)
    check_bytes_now(&v[i].entry, at[i], SEED, 250,
                    "after truncate_back and new appends");
  tu_check_range(w, 1, last_kept, SEED, 250);
  tu_check_range(w, last_kept + 1, last_kept + nnew, SEED2, 250);
  /* a view taken now sees the new bytes */
  walrus_view_t nv;
  TU_OK(w, walrus_get_view(w, last_kept + 1, &nv));
  check_bytes_now(&nv.entry, last_kept + 1, SEED2, 250, "new view");
  walrus_view_release(&nv);
  TU_OK(w, walrus_close(w));
  for (size_t i = 0; i < nat; i++)
    check_bytes_now(&v[i].entry, at[i], SEED, 250, "after close");
  w = tu_open(tu_dir, cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), last_kept + nnew,
               "after reopening: last %" PRIu64 ", want %" PRIu64,
               walrus_last_index(w), last_kept + nnew);
  tu_check_range(w, 1, last_kept, SEED, 250);
  tu_check_range(w, last_kept + 1, last_kept + nnew, SEED2, 250);
  for (size_t i = 0; i < nat; i++)
    check_bytes_now(&v[i].entry, at[i], SEED, 250, "after reopening");
  for (size_t i = 0; i < nat; i++) walrus_view_release(&v[i]);
  tu_check_range(w, 1, last_kept, SEED, 250);
  TU_OK(w, walrus_close(w));
}

Test(view_life, truncate_back_under_a_view_in_the_tail) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 60, SEED, 250);
  uint64_t firsts[256];
  /* make sure the tail holds at least 4 entries */
  for (;;) {
    size_t n = seg_firsts(firsts, 256);
    if (walrus_last_index(w) >= firsts[n - 1] + 3) break;
    tu_append_n(w, 1, SEED, 250);
  }
  size_t n = seg_firsts(firsts, 256);
  uint64_t tail = firsts[n - 1], last = walrus_last_index(w);
  uint64_t last_kept = tail + 1;
  /* cut: the entry after last_kept and the last one; kept: tail, and one
   * in a sealed segment */
  const uint64_t at[4] = {last_kept + 1, last, tail, tail - 1};
  truncate_back_under_views(w, &cfg, at, 4, last_kept, 20);
}

/* The same with mapped writes: the tail is also mapped for writing. */
Test(view_life, truncate_back_under_a_view_in_the_tail_mapped_writes) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.mapped_writes = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 60, SEED, 250);
  uint64_t firsts[256];
  for (;;) {
    size_t n = seg_firsts(firsts, 256);
    if (walrus_last_index(w) >= firsts[n - 1] + 3) break;
    tu_append_n(w, 1, SEED, 250);
  }
  size_t n = seg_firsts(firsts, 256);
  uint64_t tail = firsts[n - 1], last = walrus_last_index(w);
  const uint64_t at[3] = {tail + 2, last, tail};
  truncate_back_under_views(w, &cfg, at, 3, tail + 1, 20);
}

Test(view_life, truncate_back_under_a_view_in_a_sealed_segment) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, 250);
  uint64_t firsts[256];
  size_t n = seg_firsts(firsts, 256);
  cr_assert_geq(n, 6u);
  /* a sealed segment in the middle with at least 4 entries */
  size_t k = 2;
  while (k + 2 < n && firsts[k + 1] - firsts[k] < 4) k++;
  cr_assert_lt(k + 2, n, "no sealed segment of 4 entries");
  uint64_t f = firsts[k], g = firsts[k + 1];
  uint64_t last_kept = f + 1;
  /* cut inside it: f + 2 and its last entry; whole later segments: g and
   * the last entry (the tail); kept: f and an earlier segment's entry */
  const uint64_t at[6] = {f + 2, g - 1, g, walrus_last_index(w), f, 3};
  truncate_back_under_views(w, &cfg, at, 6, last_kept, 60);
}

/* A view and a mapped iterator's borrowed entry taken while their segment
 * is the tail keep their bytes while it fills up, is sealed and is read
 * all over by views and zero_copy gets.  (The remap of a tail outgrowing
 * its mapping is in view.entries_past_segment_bytes.) */
Test(view_life, across_sealing_of_its_segment) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.zero_copy = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 3, SEED, 250);
  walrus_view_t v1;
  TU_OK(w, walrus_get_view(w, 1, &v1)); /* maps the tail */
  walrus_iter_t *it;
  walrus_entry_t e;
  TU_OK(w, walrus_iter_open(w, 2, &it));
  TU_OK(w, walrus_iter_next(it, &e)); /* 2, borrowed from that mapping */
  while (nsegs() < 2) tu_append_n(w, 1, SEED, 250);
  uint64_t firsts[8];
  cr_assert_eq(seg_firsts(firsts, 8), 2u);
  uint64_t g = firsts[1];                 /* segment 1 holds 1..g-1 */
  for (uint64_t i = g - 1; i >= 1; i--) { /* its last record first */
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "view of the filled segment");
    walrus_view_release(&v);
    walrus_entry_t c;
    memset(&c, 0, sizeof c);
    TU_OK(w, walrus_get(w, i, &c));
    check_bytes_now(&c, i, SEED, 250, "zero_copy get");
    walrus_entry_free(&c);
  }
  check_bytes_now(&v1.entry, 1, SEED, 250, "view from the first mapping");
  check_bytes_now(&e, 2, SEED, 250, "borrowed from the first mapping");
  tu_append_n(w, 100, SEED, 250);
  tu_check_range(w, 1, walrus_last_index(w), SEED, 250);
  check_bytes_now(&v1.entry, 1, SEED, 250, "view, later");
  check_bytes_now(&e, 2, SEED, 250, "borrowed, later");
  iter_expect_n(it, 3, walrus_last_index(w) - 2, "the rest");
  walrus_iter_close(it);
  walrus_view_release(&v1);
  TU_OK(w, walrus_close(w));
}

/* A view of a read-only handle beside the writer: walrus.h says "views
 * never see their bytes change", and truncate_back "writes the kept records
 * to a new file instead" of cutting under a held view.  The writer's
 * truncate_back and new appends must not change it either. */
Test(view_life, read_only_view_across_the_writers_truncate_back) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 30, SEED, 250);
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  walrus_t *ro = tu_open(tu_dir, &rcfg);
  uint64_t last = walrus_last_index(ro);
  walrus_view_t v, k;
  TU_OK(ro, walrus_get_view(ro, last, &v));
  TU_OK(ro, walrus_get_view(ro, last - 6, &k));
  check_bytes_now(&v.entry, last, SEED, 250, "read-only view");
  TU_OK(w, walrus_truncate_back(w, last - 5));
  tu_append_n(w, 10, SEED2, 250);
  tu_check_range(w, last - 4, last + 5, SEED2, 250);
  check_bytes_now(&k.entry, last - 6, SEED, 250, "kept entry's view");
  check_bytes_now(&v.entry, last, SEED, 250,
                  "read-only view after the writer's truncate_back");
  walrus_view_release(&v);
  walrus_view_release(&k);
  TU_OK(ro, walrus_close(ro));
  TU_OK(w, walrus_close(w));
}

/* walrus_reset() empties the log and removes its files: a held view, valid
 * "until walrus_view_release", keeps its bytes. */
Test(view_life, across_reset) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 80, SEED, 250);
  walrus_view_t a, b;
  TU_OK(w, walrus_get_view(w, 3, &a));
  TU_OK(w, walrus_get_view(w, 80, &b));
  TU_OK(w, walrus_reset(w, 1000));
  tu_append_n(w, 60, SEED2, 250);
  check_bytes_now(&a.entry, 3, SEED, 250, "after reset");
  check_bytes_now(&b.entry, 80, SEED, 250, "after reset");
  walrus_view_release(&a);
  walrus_view_release(&b);
  tu_check_range(w, 1000, 1059, SEED2, 250);
  TU_OK(w, walrus_close(w));
}

/* Views taken and released on reader threads while the writer appends,
 * rotates and truncates the front (walrus.h: "views of one handle may be
 * taken and released on any threads"). */
typedef struct vreader {
  walrus_t *w;           /* the log */
  atomic_int *stop;      /* set by the writer when done */
  uint64_t rng;          /* this reader's generator */
  long reads, gone, bad; /* views checked, EINDEX (truncated), wrong */
  char why[256];         /* the first wrong one */
} vreader_t;

static void *view_reader(void *arg) {
  vreader_t *r = arg;
  unsigned char want[250];
  while (!atomic_load(r->stop)) {
    uint64_t first = walrus_first_index(r->w), last = walrus_last_index(r->w);
    if (last == 0 || last < first) continue;
    uint64_t i = rng_in(&r->rng, first, last);
    walrus_view_t v;
    int rc = walrus_get_view(r->w, i, &v);
    if (rc == WALRUS_EINDEX) {
      r->gone++;
      continue;
    }
    size_t len = tu_len(i, SEED, 250);
    tu_payload(i, SEED, want, len);
    int ok = rc == WALRUS_OK && v.entry.index == i && v.entry.term == i &&
             v.entry.len == len &&
             (len == 0 || memcmp(v.entry.data, want, len) == 0);
    if (!ok && r->bad++ == 0)
      snprintf(r->why, sizeof r->why, "view %" PRIu64 ": %s", i,
               walrus_errname(rc));
    if (rc == WALRUS_OK) {
      /* read it again after a moment: the bytes must not change */
      for (volatile int k = 0; k < 200; k++) {
      }
      if (len && memcmp(v.entry.data, want, len) != 0 && r->bad++ == 0)
        snprintf(r->why, sizeof r->why, "view %" PRIu64 " changed", i);
      walrus_view_release(&v);
    }
    r->reads++;
  }
  return NULL;
}

/* Run nreaders threads of fn against a writer that appends 1,050 entries
 * of 250 bytes over 4 KiB segments, two cached, and truncates the front
 * every fourth round; then check that every reader read often enough and
 * got nothing wrong. */
static void run_readers_beside_writer(void *(*fn)(void *), int nreaders,
                                      uint64_t seed, const char *what) {
  walrus_config_t cfg = cfg_fast(4096);
  cfg.cached_segments = 2;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 50, SEED, 250);
  atomic_int stop = 0;
  static vreader_t r[4];
  pthread_t th[4];
  cr_assert_leq(nreaders, 4);
  for (int k = 0; k < nreaders; k++) {
    memset(&r[k], 0, sizeof r[k]);
    r[k].w = w;
    r[k].stop = &stop;
    r[k].rng = seed + (uint64_t)k;
    cr_assert_eq(pthread_create(&th[k], NULL, fn, &r[k]), 0);
  }
  for (int round = 0; round < 20; round++) {
    tu_append_n(w, 50, SEED, 250);
    if (round % 4 == 3)
      TU_OK(w, walrus_truncate_front(w, walrus_last_index(w) - 120));
  }
  atomic_store(&stop, 1);
  long reads = 0;
  for (int k = 0; k < nreaders; k++) {
    pthread_join(th[k], NULL);
    cr_assert_eq(r[k].bad, 0, "%s reader %d: %ld wrong, first: %s", what, k,
                 r[k].bad, r[k].why);
    reads += r[k].reads;
  }
  cr_log_info("concurrent %s: %ld checked", what, reads);
  cr_assert_gt(reads, 100, "the %s readers hardly ran", what);
  TU_OK(w, walrus_close(w));
}

Test(view_life, concurrent_with_appends_and_truncate_front, .timeout = 120) {
  run_readers_beside_writer(view_reader, 3, 1000, "views");
}

/* ==== 3. zero_copy 1 and 0 give the same entries ========================= */

/* Read every entry by walrus_get and by an iterator. */
static void read_all(walrus_t *w, uint64_t n, walrus_entry_t *got,
                     walrus_entry_t *seen, unsigned char **seen_data) {
  for (uint64_t i = 1; i <= n; i++) {
    memset(&got[i - 1], 0, sizeof got[i - 1]);
    TU_OK(w, walrus_get(w, i, &got[i - 1]));
  }
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  for (uint64_t i = 1; i <= n; i++) {
    walrus_entry_t e;
    TU_OK(w, walrus_iter_next(it, &e));
    seen[i - 1] = e;
    /* borrowed: keep a copy of data and tx_id */
    seen_data[i - 1] = malloc(e.len + 300);
    cr_assert_not_null(seen_data[i - 1]);
    if (e.len) memcpy(seen_data[i - 1], e.data, e.len);
    seen[i - 1].data = seen_data[i - 1];
    if (e.tx_id) {
      char *t = (char *)seen_data[i - 1] + e.len;
      snprintf(t, 300, "%s", e.tx_id);
      seen[i - 1].tx_id = t;
    }
  }
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
}

Test(zero_copy, same_entries_as_pread) {
  static model_t m;
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = model_log(&m, &cfg);
  TU_OK(w, walrus_close(w));
  uint64_t n = m.n;
  static walrus_entry_t got[2][1024], seen[2][1024];
  static unsigned char *seen_data[2][1024];
  for (int zc = 0; zc <= 1; zc++) {
    cfg.zero_copy = zc;
    w = tu_open(tu_dir, &cfg);
    cr_assert_eq(walrus_last_index(w), n);
    read_all(w, n, got[zc], seen[zc], seen_data[zc]);
    TU_OK(w, walrus_close(w));
  }
  for (uint64_t i = 1; i <= n; i++) {
    model_check(&m, &got[0][i - 1], i, "get, zero_copy 0");
    model_check(&m, &got[1][i - 1], i, "get, zero_copy 1");
    model_check(&m, &seen[0][i - 1], i, "iter, zero_copy 0");
    model_check(&m, &seen[1][i - 1], i, "iter, zero_copy 1");
    same_entry(&got[0][i - 1], &got[1][i - 1], "get 0 vs 1");
    same_entry(&seen[0][i - 1], &seen[1][i - 1], "iter 0 vs 1");
    same_entry(&got[1][i - 1], &seen[1][i - 1], "get vs iter");
    walrus_entry_free(&got[0][i - 1]);
    walrus_entry_free(&got[1][i - 1]);
    free(seen_data[0][i - 1]);
    free(seen_data[1][i - 1]);
  }
  /* the same handle with zero_copy 1 that also wrote the log */
  cfg.zero_copy = 1;
  w = tu_open(tu_dir, &cfg);
  model_append_n(w, &m, 40, 300);
  for (uint64_t i = 1; i <= m.n; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, i, &e));
    model_check(&m, &e, i, "get, zero_copy 1, after appending");
    walrus_entry_free(&e);
  }
  TU_OK(w, walrus_close(w));
  model_free(&m);
}

/* walrus.h: zero_copy reads "through read-only mappings ... instead of
 * pread: no system call per read".  Once every segment is mapped, gets and
 * a full iteration make no pread; with zero_copy 0 every get does. */
Test(zero_copy, no_pread_once_mapped) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.cached_segments = 64;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, 250);
  TU_OK(w, walrus_close(w));
  for (int zc = 0; zc <= 1; zc++) {
    cfg.zero_copy = zc;
    cfg.vfs = mv_init(MV_MAPS);
    w = tu_open(tu_dir, &cfg);
    tu_check_range(w, 1, 200, SEED, 250); /* warm up: load, map */
    long p0 = atomic_load(&g_mv.preads);
    uint64_t rng = 12345;
    for (int k = 0; k < 500; k++) {
      uint64_t i = rng_in(&rng, 1, 200);
      walrus_entry_t e;
      memset(&e, 0, sizeof e);
      TU_OK(w, walrus_get(w, i, &e));
      check_bytes_now(&e, i, SEED, 250, "get");
      walrus_entry_free(&e);
    }
    long gets = atomic_load(&g_mv.preads) - p0;
    walrus_iter_t *it;
    TU_OK(w, walrus_iter_open(w, 0, &it));
    long p1 = atomic_load(&g_mv.preads);
    for (uint64_t i = 1; i <= 200; i++) {
      walrus_entry_t e;
      TU_OK(w, walrus_iter_next(it, &e));
      check_bytes_now(&e, i, SEED, 250, "iter");
    }
    long iters = atomic_load(&g_mv.preads) - p1;
    walrus_iter_close(it);
    cr_log_info("zero_copy %d: %ld preads for 500 gets, %ld for 200 steps", zc,
                gets, iters);
    if (zc) {
      cr_assert_eq(gets, 0, "zero_copy 1: %ld preads for 500 gets", gets);
      cr_assert_eq(iters, 0, "zero_copy 1: %ld preads for a full iteration",
                   iters);
      cr_assert_gt(mv_map_calls(), 0, "zero_copy 1 never mapped");
    } else {
      cr_assert_geq(gets, 500, "zero_copy 0: only %ld preads for 500 gets",
                    gets);
    }
    TU_OK(w, walrus_close(w));
    mv_expect_clean();
  }
}

/* zero_copy 1: each new entry read back at once while the tail grows and
 * rotates, by get and by an iterator that follows the appends. */
Test(zero_copy, reads_of_a_growing_tail) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.zero_copy = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  uint64_t rng = 99;
  for (uint64_t i = 1; i <= 400; i++) {
    tu_append_n(w, 1, SEED, 250);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, i, &e));
    check_bytes_now(&e, i, SEED, 250, "the entry just appended");
    walrus_entry_free(&e);
    uint64_t j = rng_in(&rng, 1, i);
    TU_OK(w, walrus_get(w, j, &e));
    check_bytes_now(&e, j, SEED, 250, "an earlier entry");
    walrus_entry_free(&e);
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "a view of it");
    walrus_view_release(&v);
    TU_OK(w, walrus_iter_next(it, &e));
    check_bytes_now(&e, i, SEED, 250, "the iterator");
    TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  }
  cr_assert_gt(nsegs(), 10u);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

/* ==== 4. range reads ===================================================== */

#define RN 150   /* entries in the range log */
#define RMAX 400 /* their largest payload */

/* How many entries walrus.h says a range read returns: in index order
 * from start, stopping at end (clamped to last), after max_count, or
 * before the entry that would take the payload bytes past max_bytes; the
 * first is always read. */
static size_t range_want(uint64_t first, uint64_t last, uint64_t start,
                         uint64_t end, size_t max_count, size_t max_bytes) {
  size_t n = 0, bytes = 0;
  (void)first;
  for (uint64_t i = start; i <= end && i <= last && n < max_count; i++) {
    size_t len = tu_len(i, SEED, RMAX);
    if (max_bytes != 0 && n > 0 && bytes + len > max_bytes) break;
    bytes += len;
    n++;
  }
  return n;
}

/* One range read by both functions, checked against range_want. */
static void range_case(walrus_t *w, uint64_t start, uint64_t end,
                       size_t max_count, size_t max_bytes) {
  uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
  size_t cap = max_count < 512 ? max_count : 512;
  size_t want = range_want(first, last, start, end, cap, max_bytes);
  walrus_entry_t *out = calloc(cap, sizeof *out);
  walrus_view_t *vout = calloc(cap, sizeof *vout);
  cr_assert(out != NULL && vout != NULL);
  char what[128];
  snprintf(what, sizeof what,
           "range %" PRIu64 "..%" PRIu64 " count %zu bytes %zu", start, end,
           max_count, max_bytes);
  size_t n = 9999;
  TU_OK(w, walrus_get_range(w, start, end, cap, max_bytes, out, &n));
  cr_assert_eq(n, want, "get_range %s: %zu entries, want %zu", what, n, want);
  for (size_t i = 0; i < n; i++) {
    check_bytes_now(&out[i], start + i, SEED, RMAX, what);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, start + i, &e));
    same_entry(&out[i], &e, "get_range vs get");
    walrus_entry_free(&e);
  }
  size_t vn = 9999;
  TU_OK(w, walrus_get_range_view(w, start, end, cap, max_bytes, vout, &vn));
  cr_assert_eq(vn, want, "get_range_view %s: %zu views, want %zu", what, vn,
               want);
  for (size_t i = 0; i < vn; i++) {
    check_bytes_now(&vout[i].entry, start + i, SEED, RMAX, what);
    same_entry(&vout[i].entry, &out[i], "get_range_view vs get_range");
  }
  for (size_t i = 0; i < n; i++) walrus_entry_free(&out[i]);
  for (size_t i = 0; i < vn; i++) walrus_view_release(&vout[i]);
  free(out);
  free(vout);
}

static walrus_t *range_log(const walrus_config_t *cfg) {
  walrus_t *w = tu_open(tu_dir, cfg);
  tu_append_n(w, RN, SEED, RMAX);
  cr_assert_geq(nsegs(), 5u);
  return w;
}

/* The first index >= from whose payload is exactly len bytes. */
static uint64_t index_with_len(uint64_t from, size_t len) {
  for (uint64_t i = from; i <= RN; i++)
    if (tu_len(i, SEED, RMAX) == len) return i;
  cr_assert_fail("no entry of %zu bytes after %" PRIu64, len, from);
  return 0;
}

Test(range, bounds_by_end_count_and_bytes) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = range_log(&cfg);
  range_case(w, 1, 10, 100, 0);     /* end, inclusive */
  range_case(w, 1, 1, 100, 0);      /* one entry */
  range_case(w, RN, RN, 1, 0);      /* the last */
  range_case(w, 5, RN, 7, 0);       /* max_count */
  range_case(w, 5, 11, 7, 0);       /* end and max_count agree */
  range_case(w, 1, RN, 1000, 1000); /* max_bytes */
  range_case(w, 20, RN, 1000, 1);   /* 1 byte: the first alone */
  range_case(w, 1, RN, 3, 100000);  /* count before bytes */
  range_case(w, 1, RN, 1000, 3000);
  range_case(w, 140, 1000, 100, 0);       /* end clamped */
  range_case(w, 140, UINT64_MAX, 100, 0); /* end clamped */
  range_case(w, 1, UINT64_MAX, 1000, 0);  /* the whole log */
  /* the first entry alone exceeds max_bytes: still returned, alone */
  uint64_t big = index_with_len(1, RMAX);
  range_case(w, big, RN, 100, 10);
  range_case(w, big, RN, 100, RMAX - 1);
  /* an empty first entry, then the bound */
  uint64_t zero = index_with_len(1, 0);
  range_case(w, zero, RN, 100, 1);
  /* max_bytes exactly reached by the first k entries */
  for (uint64_t s = 1; s <= 30; s += 7) {
    size_t sum = 0;
    for (uint64_t i = s; i < s + 5; i++) sum += tu_len(i, SEED, RMAX);
    range_case(w, s, RN, 100, sum);
    range_case(w, s, RN, 100, sum - 1);
    range_case(w, s, RN, 100, sum + 1);
  }
  TU_OK(w, walrus_close(w));
}

/* Ranges across segment boundaries, and a whole-log scan continued from
 * out[n - 1].index + 1 as walrus.h says, in both modes. */
Test(range, across_segments_and_continued) {
  walrus_config_t cfg = cfg_seg(4096);
  for (int zc = 0; zc <= 1; zc++) {
    cfg.zero_copy = zc;
    walrus_t *w = zc ? tu_open(tu_dir, &cfg) : range_log(&cfg);
    uint64_t firsts[64];
    size_t ns = seg_firsts(firsts, 64);
    for (size_t k = 1; k < ns; k++) {
      range_case(w, firsts[k] - 1, firsts[k], 10, 0); /* two segments */
      range_case(w, firsts[k] - 2, firsts[k] + 2, 10, 0);
      if (k + 2 < ns) range_case(w, firsts[k], firsts[k + 2], 1000, 0);
    }
    /* the scan */
    uint64_t next = 1;
    int calls = 0;
    while (next <= RN) {
      walrus_entry_t out[8];
      size_t n = 0;
      TU_OK(w, walrus_get_range(w, next, UINT64_MAX, 8, 1500, out, &n));
      cr_assert_eq(n, range_want(1, RN, next, UINT64_MAX, 8, 1500));
      cr_assert_geq(n, 1u, "no progress at %" PRIu64, next);
      for (size_t i = 0; i < n; i++) {
        check_bytes_now(&out[i], next + i, SEED, RMAX, "scan");
        walrus_entry_free(&out[i]);
      }
      next = out[n - 1].index + 1;
      calls++;
    }
    cr_assert_eq(next, RN + 1u);
    cr_log_info("zero_copy %d: scanned %d entries in %d calls", zc, RN, calls);
    TU_OK(w, walrus_close(w));
  }
}

/* Refusals of both functions.  With n_msgs, also note every case where
 * *n was not 0 afterwards (walrus.h: "n: entries read; 0 on failure"). */
static void range_refused_n(walrus_t *w, uint64_t start, uint64_t end,
                            size_t max_count, int null_out, int null_n,
                            int code, char *n_msgs, size_t n_len) {
  walrus_entry_t out[4];
  walrus_view_t vout[4];
  size_t n = 77, vn = 77;
  char what[160];
  snprintf(what, sizeof what, "(%s, %" PRIu64 ", %" PRIu64 ", %zu%s%s)",
           w ? "w" : "NULL", start, end, max_count,
           null_out ? ", out NULL" : "", null_n ? ", n NULL" : "");
  int rc = walrus_get_range(w, start, end, max_count, 0, null_out ? NULL : out,
                            null_n ? NULL : &n);
  cr_assert_eq(rc, code, "get_range%s: got %s, want %s", what,
               walrus_errname(rc), walrus_errname(code));
  rc = walrus_get_range_view(w, start, end, max_count, 0,
                             null_out ? NULL : vout, null_n ? NULL : &vn);
  cr_assert_eq(rc, code, "get_range_view%s: got %s, want %s", what,
               walrus_errname(rc), walrus_errname(code));
  if (n_msgs != NULL && !null_n && (n != 0 || vn != 0)) {
    size_t used = strlen(n_msgs);
    snprintf(n_msgs + used, n_len - used, " %s: *n %zu/%zu;", what, n, vn);
  }
}

static void range_refused(walrus_t *w, uint64_t start, uint64_t end,
                          size_t max_count, int null_out, int null_n,
                          int code) {
  range_refused_n(w, start, end, max_count, null_out, null_n, code, NULL, 0);
}

Test(range, refusals) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  range_refused(w, 1, 1, 4, 0, 0, WALRUS_EINDEX); /* empty new log */
  range_refused(w, 0, 5, 4, 0, 0, WALRUS_EINDEX);
  tu_append_n(w, 40, SEED, RMAX);
  range_refused(NULL, 1, 5, 4, 0, 0, WALRUS_EINVAL);
  range_refused(w, 1, 5, 0, 0, 0, WALRUS_EINVAL);  /* max_count 0 */
  range_refused(w, 6, 5, 4, 0, 0, WALRUS_EINVAL);  /* end < start */
  range_refused(w, 40, 1, 4, 0, 0, WALRUS_EINVAL); /* end < start */
  range_refused(w, 1, 5, 4, 1, 0, WALRUS_EINVAL);  /* out NULL */
  range_refused(w, 1, 5, 4, 0, 1, WALRUS_EINVAL);  /* n NULL */
  range_refused(w, 0, 5, 4, 0, 0, WALRUS_EINDEX);  /* start 0 */
  range_refused(w, 41, 50, 4, 0, 0, WALRUS_EINDEX);
  range_refused(w, 41, UINT64_MAX, 4, 0, 0, WALRUS_EINDEX);
  range_refused(w, UINT64_MAX, UINT64_MAX, 4, 0, 0, WALRUS_EINDEX);
  TU_OK(w, walrus_truncate_front(w, 20));
  range_refused(w, 19, 30, 4, 0, 0, WALRUS_EINDEX);
  range_refused(w, 1, 30, 4, 0, 0, WALRUS_EINDEX);
  walrus_entry_t out[4];
  size_t n = 0;
  TU_OK(w, walrus_get_range(w, 20, 30, 4, 0, out, &n));
  cr_assert_eq(n, 4u);
  for (size_t i = 0; i < n; i++) {
    check_bytes_now(&out[i], 20 + i, SEED, RMAX, "after truncate_front");
    walrus_entry_free(&out[i]);
  }
  TU_OK(w, walrus_truncate_front(w, 41)); /* empty */
  range_refused(w, 40, 41, 4, 0, 0, WALRUS_EINDEX);
  range_refused(w, 41, 41, 4, 0, 0, WALRUS_EINDEX);
  TU_OK(w, walrus_close(w));
}

/* walrus.h on n: "entries read; 0 on failure": every refusal that has an n
 * leaves 0 in it. */
Test(range, n_is_0_after_every_failure) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  char bad[2048] = "";
  range_refused_n(w, 1, 1, 4, 0, 0, WALRUS_EINDEX, bad, sizeof bad);
  tu_append_n(w, 40, SEED, RMAX);
  range_refused_n(NULL, 1, 5, 4, 0, 0, WALRUS_EINVAL, bad, sizeof bad);
  range_refused_n(w, 1, 5, 4, 1, 0, WALRUS_EINVAL, bad, sizeof bad);
  range_refused_n(w, 1, 5, 0, 0, 0, WALRUS_EINVAL, bad, sizeof bad);
  range_refused_n(w, 6, 5, 4, 0, 0, WALRUS_EINVAL, bad, sizeof bad);
  range_refused_n(w, 0, 5, 4, 0, 0, WALRUS_EINDEX, bad, sizeof bad);
  range_refused_n(w, 41, 50, 4, 0, 0, WALRUS_EINDEX, bad, sizeof bad);
  TU_OK(w, walrus_close(w));
  cr_assert_str_empty(bad, "failed calls left *n non-zero:%s", bad);
}

/* Entries from get_range are freed by walrus_entry_free and views by
 * walrus_view_release: the allocator's books balance and every read
 * mapping is unmapped by close. */
Test(range, entries_free_and_views_release) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.allocator = &g_alloc;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = range_log(&cfg);
  long live0 = atomic_load(&g_ac.live);
  walrus_entry_t out[64];
  size_t n = 0;
  TU_OK(w, walrus_get_range(w, 3, 66, 64, 0, out, &n));
  cr_assert_eq(n, 64u);
  cr_assert_gt(atomic_load(&g_ac.live), live0,
               "get_range's entries were not allocated through the hooks");
  for (size_t i = 0; i < n; i++) walrus_entry_free(&out[i]);
  for (size_t i = 0; i < n; i++) walrus_entry_free(&out[i]); /* twice: ok */
  walrus_view_t v[64];
  size_t vn = 0;
  TU_OK(w, walrus_get_range_view(w, 3, 66, 64, 0, v, &vn));
  cr_assert_eq(vn, 64u);
  for (size_t i = 0; i < vn; i++) {
    if (v[i].entry.len)
      cr_assert_geq(mv_holding(v[i].entry.data, v[i].entry.len), 0,
                    "view %zu of the range is not in a read mapping", i);
    walrus_view_release(&v[i]);
  }
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&g_ac.live), 0, "%ld allocations not freed",
               atomic_load(&g_ac.live));
  mv_expect_clean();
}

/* Release v[0..n-1]; then one more view and its release must leave at
 * most the two cached mappings, and closing must leave none. */
static void release_then_expect_clean(walrus_t *w, walrus_view_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) walrus_view_release(&v[i]);
  walrus_view_t one;
  TU_OK(w, walrus_get_view(w, 2, &one));
  walrus_view_release(&one);
  cr_assert_leq(mv_outstanding(), 2, "released, yet %ld mappings",
                mv_outstanding());
  TU_OK(w, walrus_close(w));
  mv_expect_clean();
}

/* A range of views over every segment with cached_segments 1: each view
 * keeps its segment's mapping although the cache evicts it. */
Test(range, views_across_segments_with_a_small_cache) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.cached_segments = 1;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = range_log(&cfg);
  size_t ns = nsegs(); /* the segments the range covers */
  static walrus_view_t v[RN];
  size_t n = 0;
  TU_OK(w, walrus_get_range_view(w, 1, RN, RN, 0, v, &n));
  cr_assert_eq(n, (size_t)RN);
  tu_check_range(w, 1, RN, SEED, RMAX); /* evicts and remaps */
  tu_append_n(w, 50, SEED, RMAX);       /* rotates */
  int seen[MV_SLOTS] = {0};
  size_t distinct = 0;
  for (size_t i = 0; i < n; i++) {
    check_bytes_now(&v[i].entry, 1 + i, SEED, RMAX, "range view, later");
    if (v[i].entry.len == 0) continue;
    int slot = mv_holding(v[i].entry.data, v[i].entry.len);
    cr_assert_geq(slot, 0, "view of %zu lost its mapping", 1 + i);
    distinct += seen[slot]++ == 0;
  }
  cr_assert_geq(distinct, ns, "views over %zu segments in %zu mappings", ns,
                distinct);
  release_then_expect_clean(w, v, n);
}

/* ==== 5. no allocation in steady state =================================== */

#define NA_ENTRIES 10100
#define NA_MAX 100

/* walrus.h: get_view "makes no allocation once the segment is mapped". */
/* The noalloc suite's log: 2,000 entries of 300 bytes in 32 KiB segments,
 * all of which fit the cache, written through the counting allocator;
 * firsts[0..*ns-1] gets each segment's first index. */
static walrus_t *noalloc_log(uint64_t firsts[256], size_t *ns) {
  walrus_config_t cfg = cfg_fast(32 * 1024);
  cfg.allocator = &g_alloc;
  cfg.cached_segments = 256;
  walrus_t *w = tu_open(tu_dir, &cfg);
  append_batches(w, 2000, SEED, 300, 16);
  *ns = seg_firsts(firsts, 256);
  cr_assert_geq(*ns, 8u, "%zu segments", *ns);
  cr_assert_leq(*ns, cfg.cached_segments);
  return w;
}

Test(noalloc, get_view_and_release, .timeout = 120) {
  uint64_t firsts[256];
  size_t ns;
  walrus_t *w = noalloc_log(firsts, &ns);
  /* warm up: one view of each segment, one full iteration */
  for (size_t k = 0; k < ns; k++) {
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, firsts[k], &v));
    walrus_view_release(&v);
  }
  walrus_iter_t *it;
  walrus_entry_t e;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  while (walrus_iter_next(it, &e) == WALRUS_OK) {
  }
  walrus_iter_close(it);
  unsigned char want[300];
  uint64_t rng = 777;
  long a0 = allocs(), f0 = atomic_load(&g_ac.frees);
  for (int k = 0; k < 10000; k++) {
    uint64_t i = rng_in(&rng, 1, 2000);
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    size_t len = tu_len(i, SEED, 300);
    tu_payload(i, SEED, want, len);
    cr_assert(v.entry.index == i && v.entry.len == len &&
                  (len == 0 || memcmp(v.entry.data, want, len) == 0),
              "view of %" PRIu64 " is wrong", i);
    walrus_view_release(&v);
  }
  long made = allocs() - a0, freed = atomic_load(&g_ac.frees) - f0;
  cr_log_info("10000 get_view+release: %ld allocations, %ld frees", made,
              freed);
  cr_assert_eq(made, 0, "10000 get_view+release made %ld allocations", made);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&g_ac.live), 0);
}

/* Iterating 10000 entries after the first step, with every segment cached
 * and mapped: no allocation (walrus.h on walrus_iter_next: "Steps make no
 * allocation once the iterator's segment is mapped (or its window
 * allocated)"). */
static void iter_noalloc(int zero_copy) {
  walrus_config_t cfg = cfg_fast(256 * 1024);
  cfg.allocator = &g_alloc;
  cfg.cached_segments = 256;
  cfg.zero_copy = zero_copy;
  walrus_t *w = tu_open(tu_dir, &cfg);
  append_batches(w, NA_ENTRIES, SEED, NA_MAX, 64);
  size_t ns = nsegs();
  cr_assert_geq(ns, 4u, "%zu segments", ns);
  walrus_iter_t *it;
  walrus_entry_t e;
  TU_OK(w, walrus_iter_open(w, 0, &it)); /* warm up */
  while (walrus_iter_next(it, &e) == WALRUS_OK) {
  }
  walrus_iter_close(it);
  TU_OK(w, walrus_iter_open(w, 0, &it));
  TU_OK(w, walrus_iter_next(it, &e));
  cr_assert_eq(e.index, 1u);
  unsigned char want[NA_MAX];
  long a0 = allocs();
  for (uint64_t i = 2; i <= 10001; i++) {
    TU_OK(w, walrus_iter_next(it, &e));
    size_t len = tu_len(i, SEED, NA_MAX);
    tu_payload(i, SEED, want, len);
    cr_assert(e.index == i && e.len == len &&
                  (len == 0 || memcmp(e.data, want, len) == 0),
              "iterator entry %" PRIu64 " is wrong", i);
  }
  long made = allocs() - a0;
  cr_log_info("zero_copy %d: 10000 steps over %zu segments: %ld allocations",
              zero_copy, ns, made);
  cr_assert_eq(made, 0, "zero_copy %d: 10000 steps made %ld allocations",
               zero_copy, made);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&g_ac.live), 0);
}

Test(noalloc, iterator_zero_copy, .timeout = 120) {
  iter_noalloc(1);
}
Test(noalloc, iterator_pread, .timeout = 120) {
  iter_noalloc(0);
}

/* ==== 6. the segment cache bounds the read mappings ====================== */

#define CN 300 /* entries: about 20 segments of 4 KiB */

Test(cache, mappings_bounded_and_kept_by_views, .timeout = 120) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.cached_segments = 2;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, CN, SEED, 250);
  uint64_t firsts[64];
  size_t ns = seg_firsts(firsts, 64);
  cr_assert_geq(ns, 11u, "want ~10 sealed segments, have %zu", ns);
  const long bound = (long)cfg.cached_segments + 1; /* + the tail */
  uint64_t rng = 4242;
  long worst = 0;
  for (int k = 0; k < 2000; k++) {
    uint64_t i = rng_in(&rng, 1, CN);
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "random view");
    walrus_view_release(&v);
    long out = mv_outstanding();
    if (out > worst) worst = out;
    cr_assert_leq(out, bound,
                  "after %d get_view+release (last %" PRIu64
                  "): %ld read mappings, cached_segments + 1 = %ld",
                  k + 1, i, out, bound);
  }
  cr_log_info("random views: at most %ld mappings between calls, peak %ld "
              "inside a call, %ld map_read calls",
              worst, g_mv.peak, mv_map_calls());
  cr_assert_gt(mv_map_calls(), (long)ns, "eviction never remapped a segment");

  /* hold views on 8 sealed segments: their mappings stay alive */
  walrus_view_t held[8];
  uint64_t at[8];
  for (int j = 0; j < 8; j++) {
    at[j] = firsts[j]; /* its first entry with a payload */
    while (tu_len(at[j], SEED, 250) == 0) at[j]++;
    cr_assert_lt(at[j], firsts[j + 1]);
    TU_OK(w, walrus_get_view(w, at[j], &held[j]));
  }
  for (int k = 0; k < 500; k++) { /* reads all over: evictions */
    uint64_t i = rng_in(&rng, 1, CN);
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "view beside held ones");
    walrus_view_release(&v);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, rng_in(&rng, 1, CN), &e));
    walrus_entry_free(&e);
  }
  int slots[8];
  for (int j = 0; j < 8; j++) {
    check_bytes_now(&held[j].entry, at[j], SEED, 250, "held view");
    cr_assert_gt(held[j].entry.len, 0u);
    slots[j] = mv_holding(held[j].entry.data, held[j].entry.len);
    cr_assert_geq(slots[j], 0, "held view of %" PRIu64 " lost its mapping",
                  at[j]);
    for (int i = 0; i < j; i++)
      cr_assert_neq(slots[i], slots[j], "two segments in one mapping?");
  }
  cr_assert_geq(mv_outstanding(), 8, "8 held views, %ld mappings",
                mv_outstanding());
  for (int j = 0; j < 8; j++) walrus_view_release(&held[j]);
  /* a few more reads trigger eviction; the count falls back */
  for (int k = 0; k < 4; k++) {
    walrus_view_t v;
    uint64_t i = firsts[ns - 2 - (size_t)k % 3];
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "after releasing");
    walrus_view_release(&v);
  }
  cr_assert_leq(mv_outstanding(), bound,
                "views released, yet %ld read mappings (bound %ld)",
                mv_outstanding(), bound);
  tu_check_range(w, 1, CN, SEED, 250);
  cr_assert_leq(mv_outstanding(), bound);
  TU_OK(w, walrus_close(w));
  mv_expect_clean();
}

/* zero_copy reads (get and iterators) also stay within the bound. */
Test(cache, zero_copy_reads_bounded) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.cached_segments = 2;
  cfg.zero_copy = 1;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, CN, SEED, 250);
  const long bound = (long)cfg.cached_segments + 1;
  uint64_t rng = 31;
  for (int k = 0; k < 1000; k++) {
    uint64_t i = rng_in(&rng, 1, CN);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, i, &e));
    check_bytes_now(&e, i, SEED, 250, "zero_copy get");
    walrus_entry_free(&e);
    cr_assert_leq(mv_outstanding(), bound, "after get %" PRIu64 ": %ld maps", i,
                  mv_outstanding());
  }
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  for (uint64_t i = 1; i <= CN; i++) {
    walrus_entry_t e;
    TU_OK(w, walrus_iter_next(it, &e));
    check_bytes_now(&e, i, SEED, 250, "zero_copy iter");
    /* the iterator may hold the mapping of its own segment */
    cr_assert_leq(mv_outstanding(), bound + 1, "iter at %" PRIu64 ": %ld maps",
                  i, mv_outstanding());
  }
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
  mv_expect_clean();
}

/* ==== 7. a VFS that cannot map for reading ============================== */

static void without_map_read(int mode) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.allocator = &g_alloc;
  cfg.vfs = mv_init(mode);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 120, SEED, 250);
  /* views copy, and are right */
  for (uint64_t i = 1; i <= 120; i++) {
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_bytes_now(&v.entry, i, SEED, 250, "copied view");
    cr_assert_null(v.map_, "entry %" PRIu64 ": map_ set without a mapping", i);
    walrus_view_release(&v);
  }
  walrus_view_t keep[2];
  TU_OK(w, walrus_get_view(w, 7, &keep[0]));
  TU_OK(w, walrus_get_view(w, 120, &keep[1]));
  TU_OK(w, walrus_close(w));

  /* zero_copy 1 falls back to pread */
  cfg.zero_copy = 1;
  w = tu_open(tu_dir, &cfg);
  tu_check_range(w, 1, 120, SEED, 250);
  long p0 = atomic_load(&g_mv.preads);
  tu_check_range(w, 1, 120, SEED, 250);
  long preads = atomic_load(&g_mv.preads) - p0;
  cr_assert_geq(preads, 120,
                "zero_copy without map_read: %ld preads for "
                "120 gets",
                preads);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  for (uint64_t i = 1; i <= 120; i++) {
    walrus_entry_t e;
    TU_OK(w, walrus_iter_next(it, &e));
    check_bytes_now(&e, i, SEED, 250, "zero_copy iter without map_read");
  }
  walrus_iter_close(it);
  walrus_entry_t out[40];
  size_t n = 0;
  TU_OK(w, walrus_get_range(w, 50, 200, 40, 0, out, &n));
  cr_assert_eq(n, 40u);
  for (size_t i = 0; i < n; i++) {
    check_bytes_now(&out[i], 50 + i, SEED, 250, "range without map_read");
    walrus_entry_free(&out[i]);
  }
  walrus_view_t vout[40];
  TU_OK(w, walrus_get_range_view(w, 100, 200, 40, 0, vout, &n));
  cr_assert_eq(n, 21u);
  for (size_t i = 0; i < n; i++) {
    check_bytes_now(&vout[i].entry, 100 + i, SEED, 250, "range views copy");
    walrus_view_release(&vout[i]);
  }
  TU_OK(w, walrus_close(w));

  /* the copies outlived their handle; releasing them frees everything */
  check_bytes_now(&keep[0].entry, 7, SEED, 250, "copy after close");
  check_bytes_now(&keep[1].entry, 120, SEED, 250, "copy after close");
  walrus_view_release(&keep[0]);
  walrus_view_release(&keep[1]);
  cr_assert_eq(atomic_load(&g_ac.live), 0, "%ld allocations not freed",
               atomic_load(&g_ac.live));
  if (mode != MV_MAP_FAILS)
    cr_assert_eq(mv_map_calls(), 0, "map_read called %ld times",
                 mv_map_calls());
  mv_expect_clean();
}

/* walrus.h on walrus_view_t.tx_id_: "entry.tx_id points here when it is
 * set", whether the view borrows a mapping or holds a copy. */
static void tx_id_in_view(int mode) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.vfs = mv_init(mode);
  walrus_t *w = tu_open(tu_dir, &cfg);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.tx_id = "order-17";
  e.data = "abc";
  e.len = 3;
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, &e, &idx));
  walrus_view_t v;
  TU_OK(w, walrus_get_view(w, idx, &v));
  cr_assert_not_null(v.entry.tx_id);
  cr_assert_str_eq(v.entry.tx_id, "order-17");
  cr_assert_eq(v.entry.len, 3u);
  cr_assert_eq(memcmp(v.entry.data, "abc", 3), 0);
  cr_assert_eq(v.entry.tx_id, v.tx_id_,
               "mode %d: entry.tx_id does not point into the view's tx_id_",
               mode);
  walrus_view_t r[1];
  size_t n = 0;
  TU_OK(w, walrus_get_range_view(w, idx, idx, 1, 0, r, &n));
  cr_assert_eq(n, 1u);
  cr_assert_str_eq(r[0].entry.tx_id, "order-17");
  cr_assert_eq(r[0].entry.tx_id, r[0].tx_id_,
               "mode %d: a range view's tx_id does not point into tx_id_",
               mode);
  walrus_view_release(&r[0]);
  TU_OK(w, walrus_close(w));
  cr_assert_str_eq(v.entry.tx_id, "order-17", "after close");
  walrus_view_release(&v);
}

Test(nomap, tx_id_points_into_the_view_mapped) {
  tx_id_in_view(MV_MAPS);
}
Test(nomap, tx_id_points_into_the_view_copied) {
  tx_id_in_view(MV_NO_MAP_READ);
}

Test(nomap, map_read_null) {
  without_map_read(MV_NO_MAP_READ);
}
Test(nomap, vfs_version_2) {
  without_map_read(MV_VERSION_2);
}
Test(nomap, map_read_fails_eopnotsupp) {
  without_map_read(MV_MAP_FAILS);
}

/* ==== 8. iterators ======================================================= */

static walrus_config_t cfg_iter(int zero_copy) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.zero_copy = zero_copy;
  return cfg;
}

/* Expect the iterator's next n entries to be first.. of seed. */
static void iter_expect(walrus_iter_t *it, uint64_t first, uint64_t n,
                        uint64_t seed, const char *what) {
  for (uint64_t i = first; i < first + n; i++) {
    walrus_entry_t e;
    int rc = walrus_iter_next(it, &e);
    cr_assert_eq(rc, WALRUS_OK, "%s: iter at %" PRIu64 ": %s", what, i,
                 walrus_errname(rc));
    check_bytes_now(&e, i, seed, 250, what);
  }
}

static void iter_across_segments_while_appending(int zc) {
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 250);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 100, SEED, "existing entries");
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  size_t before = nsegs();
  /* one append per step, then two per step: the iterator keeps up and then
   * falls behind, across rotations */
  for (uint64_t i = 101; i <= 250; i++) {
    tu_append_n(w, i > 175 ? 2 : 1, SEED, 250);
    iter_expect(it, i, 1, SEED, "while appending");
  }
  uint64_t last = walrus_last_index(w);
  cr_assert_gt(nsegs(), before + 5, "no rotation while iterating");
  iter_expect(it, 251, last - 250, SEED, "the rest");
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, across_segments_while_appending_pread) {
  iter_across_segments_while_appending(0);
}
Test(iter, across_segments_while_appending_zero_copy) {
  iter_across_segments_while_appending(1);
}

/* walrus_sync() between appends leaves sync marks between records: the
 * iterator steps over them, inside its batches of checked records and at
 * their edges, and returns every entry once, in order. */
static void iter_over_sync_marks(int zc) {
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  for (uint64_t i = 1; i <= 120; i++) {
    tu_append_n(w, 1, SEED, 250);
    if (i % 3 == 0 || i % 7 == 0) TU_OK(w, walrus_sync(w));
  }
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 120, SEED, "entries between sync marks");
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
  cr_assert_gt(nsegs(), 1, "the log never rotated");
}

Test(iter, over_sync_marks_pread) {
  iter_over_sync_marks(0);
}
Test(iter, over_sync_marks_zero_copy) {
  iter_over_sync_marks(1);
}

static void iter_truncate_front_past(int zc) {
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, 250);
  walrus_iter_t *it, *ahead;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  TU_OK(w, walrus_iter_open(w, 160, &ahead));
  iter_expect(it, 1, 30, SEED, "before truncate_front");
  iter_expect(ahead, 160, 5, SEED, "ahead, before");
  TU_OK(w, walrus_truncate_front(w, 150));
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_next(it, &e));
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_next(it, &e));
  iter_expect(ahead, 165, 36, SEED, "ahead, after");
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(ahead, &e));
  walrus_iter_close(it);
  walrus_iter_close(ahead);
  TU_OK(w, walrus_close(w));
}

Test(iter, truncate_front_past_position_pread) {
  iter_truncate_front_past(0);
}
Test(iter, truncate_front_past_position_zero_copy) {
  iter_truncate_front_past(1);
}

/* The iterator at pos (its next index); truncate_back(last_kept) below it;
 * it continues at last_kept + 1 with the entries appended since (walrus.h
 * on walrus_iter_next: "it goes on at the new last index + 1 (and returns
 * the entries appended there later)").  With
 * peek, iter_next is called (DONE) between the truncation and the appends;
 * without, the appends come first. */
static void iter_truncate_back_below(int zc, uint64_t pos, uint64_t last_kept,
                                     int peek) {
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 120, SEED, 250);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, pos - 1, SEED, "before truncate_back");
  TU_OK(w, walrus_truncate_back(w, last_kept));
  walrus_entry_t e;
  if (peek) TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  tu_append_n(w, 40, SEED2, 250);
  iter_expect(it, last_kept + 1, 40, SEED2, "the new entries");
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  /* a fresh iterator sees the same log */
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, last_kept, SEED, "fresh iterator, kept");
  iter_expect(it, last_kept + 1, 40, SEED2, "fresh iterator, new");
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

static void iter_truncate_back_cases(int zc, int peek) {
  char a[64], b[64];
  /* the first case wants 50 and 100 in different segments */
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 120, SEED, 250);
  seg_of(50, a, sizeof a);
  seg_of(100, b, sizeof b);
  cr_assert_str_neq(a, b, "the cases want 50 and 100 in different segments");
  TU_OK(w, walrus_close(w));
  tu_rmrf(tu_dir);
  iter_truncate_back_below(zc, 101, 50, peek); /* into an earlier segment */
  tu_rmrf(tu_dir);
  iter_truncate_back_below(zc, 120, 117, peek); /* just behind it */
  tu_rmrf(tu_dir);
  iter_truncate_back_below(zc, 121, 119, peek); /* the iterator at the end */
}

Test(iter, truncate_back_below_position_pread) {
  iter_truncate_back_cases(0, 1);
}
Test(iter, truncate_back_below_position_zero_copy) {
  iter_truncate_back_cases(1, 1);
}
Test(iter, truncate_back_below_position_appends_first_pread) {
  iter_truncate_back_cases(0, 0);
}
Test(iter, truncate_back_below_position_appends_first_zero_copy) {
  iter_truncate_back_cases(1, 0);
}

/* walrus.h: the borrowed entry is valid "until the next walrus_iter_next()
 * or walrus_iter_close() on that iterator": other calls in between, which
 * rotate the tail, evict and remap segments, do not change it. */
static void iter_borrowed_across_calls(int zc) {
  walrus_config_t cfg = cfg_iter(zc);
  cfg.cached_segments = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 10, SEED, 250);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 9, SEED, "first entries");
  walrus_entry_t e;
  TU_OK(w, walrus_iter_next(it, &e)); /* 10, the last: in the tail */
  check_bytes_now(&e, 10, SEED, 250, "borrowed, at once");
  tu_append_n(w, 300, SEED, 250); /* rotations */
  cr_assert_gt(nsegs(), 10u);
  check_bytes_now(&e, 10, SEED, 250, "borrowed, after rotations");
  tu_check_range(w, 1, 310, SEED, 250); /* evicts and remaps everything */
  walrus_view_t v;
  TU_OK(w, walrus_get_view(w, 300, &v));
  walrus_view_release(&v);
  check_bytes_now(&e, 10, SEED, 250, "borrowed, after reads elsewhere");
  iter_expect(it, 11, 100, SEED, "after the borrowed one");
  /* now a borrowed entry of a sealed segment, then reads everywhere */
  TU_OK(w, walrus_iter_next(it, &e));
  check_bytes_now(&e, 111, SEED, 250, "borrowed from a sealed segment");
  tu_check_range(w, 1, 310, SEED, 250);
  tu_append_n(w, 50, SEED, 250);
  check_bytes_now(&e, 111, SEED, 250, "sealed borrowed, after other calls");
  iter_expect(it, 112, 249, SEED, "to the end");
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, borrowed_entry_across_other_calls_pread) {
  iter_borrowed_across_calls(0);
}
Test(iter, borrowed_entry_across_other_calls_zero_copy) {
  iter_borrowed_across_calls(1);
}

/* The same promise when the other call is a truncate_back cutting the
 * borrowed entry, and appends then write new records at its index. */
static void iter_borrowed_across_truncate_back(int zc) {
  walrus_config_t cfg = cfg_iter(zc);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 60, SEED, 250);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 57, SEED, "first entries");
  walrus_entry_t e;
  TU_OK(w, walrus_iter_next(it, &e)); /* 58, in the tail */
  TU_OK(w, walrus_truncate_back(w, 55));
  tu_append_n(w, 10, SEED2, 250);
  check_bytes_now(&e, 58, SEED, 250, "borrowed, after truncate_back");
  walrus_iter_close(it);
  tu_check_range(w, 56, 65, SEED2, 250);
  TU_OK(w, walrus_close(w));
}

Test(iter, borrowed_entry_across_truncate_back_pread) {
  iter_borrowed_across_truncate_back(0);
}
Test(iter, borrowed_entry_across_truncate_back_zero_copy) {
  iter_borrowed_across_truncate_back(1);
}

/* ==== 9. batched reads: walrus_get_many and walrus_get_many_view ========= */

#define MN 203 /* indexes per batched call: not a multiple of 16 */

/* MN indexes in 1..last: a descending run, then random ones (repeats
 * among them), then the first and last entries twice. */
static void many_indexes(uint64_t *idx, uint64_t last, uint64_t rng) {
  size_t k = 0;
  for (uint64_t i = last; i > 0 && k < 40; i--) idx[k++] = i;
  while (k < MN - 4) idx[k++] = rng_in(&rng, 1, last);
  idx[k++] = 1;
  idx[k++] = last;
  idx[k++] = 1;
  idx[k++] = last;
}

/* Every kind of entry, read in scattered order with both zero_copy modes:
 * each batched entry and view is the model's, and the same as walrus_get
 * of that index. */
static void many_like_get(int zc) {
  static model_t m;
  memset(&m, 0, sizeof m);
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = model_log(&m, &cfg);
  TU_OK(w, walrus_close(w));
  cfg.zero_copy = zc;
  w = tu_open(tu_dir, &cfg);
  uint64_t idx[MN];
  many_indexes(idx, m.n, 4242 + (uint64_t)zc);
  static walrus_entry_t out[MN];
  static walrus_view_t v[MN];
  TU_OK(w, walrus_get_many(w, idx, MN, out));
  TU_OK(w, walrus_get_many_view(w, idx, MN, v));
  for (size_t k = 0; k < MN; k++) {
    walrus_entry_t one;
    TU_OK(w, walrus_get(w, idx[k], &one));
    model_check(&m, &out[k], idx[k], "get_many");
    model_check(&m, &v[k].entry, idx[k], "get_many_view");
    same_entry(&out[k], &one, "get_many vs get");
    walrus_entry_free(&one);
  }
  for (size_t k = 0; k < MN; k++) {
    walrus_entry_free(&out[k]);
    walrus_view_release(&v[k]);
  }
  TU_OK(w, walrus_close(w));
  model_free(&m);
}

Test(many, scattered_like_get_pread) {
  many_like_get(0);
}
Test(many, scattered_like_get_zero_copy) {
  many_like_get(1);
}

/* walrus.h: "All or nothing: on failure no entry is left to free".  A bad
 * index first, at the end of a batch of sixteen, at the start of the next
 * and deep in a later one: the call fails naming it, and every entry and
 * view taken before it was given back (the allocator's books and the read
 * mappings balance at close). */
Test(many, all_or_nothing) {
  static const size_t at[] = {0, 15, 16, 37, 63};
  for (int views = 0; views <= 1; views++) {
    for (size_t a = 0; a < sizeof at / sizeof at[0]; a++) {
      memset(&g_ac, 0, sizeof g_ac);
      walrus_config_t cfg = cfg_seg(4096);
      cfg.allocator = &g_alloc;
      cfg.zero_copy = 1;
      cfg.cached_segments = 256; /* nothing evicted: the books stay level */
      cfg.vfs = mv_init(MV_MAPS);
      walrus_t *w = range_log(&cfg);
      uint64_t idx[64];
      for (size_t k = 0; k < 64; k++) idx[k] = 1 + (k * 37) % RN;
      walrus_entry_t out[64];
      walrus_view_t v[64];
      /* warm up: the same batch, all good, maps and caches what it needs */
      TU_OK(w, walrus_get_many(w, idx, 64, out));
      TU_OK(w, walrus_get_many_view(w, idx, 64, v));
      for (size_t k = 0; k < 64; k++) {
        walrus_entry_free(&out[k]);
        walrus_view_release(&v[k]);
      }
      idx[at[a]] = RN + 1;
      long live0 = atomic_load(&g_ac.live);
      int rc = views ? walrus_get_many_view(w, idx, 64, v)
                     : walrus_get_many(w, idx, 64, out);
      cr_assert_eq(rc, WALRUS_EINDEX, "%s, bad index at %zu: %s",
                   views ? "views" : "entries", at[a], walrus_errname(rc));
      cr_assert(strstr(walrus_errmsg(w), "index 151") != NULL,
                "message does not name the index: %s", walrus_errmsg(w));
      cr_assert_eq(atomic_load(&g_ac.live), live0,
                   "%s, bad index at %zu: %ld allocations left",
                   views ? "views" : "entries", at[a],
                   atomic_load(&g_ac.live) - live0);
      tu_check_range(w, 1, RN, SEED, RMAX); /* the log is intact */
      TU_OK(w, walrus_close(w));
      cr_assert_eq(atomic_load(&g_ac.live), 0);
      mv_expect_clean(); /* no view kept a mapping */
      tu_rmrf(tu_dir);
    }
  }
}

/* n 0 reads nothing, whatever the pointers; indexes removed by
 * truncate_front are refused like walrus_get's. */
Test(many, none_and_removed) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = range_log(&cfg);
  TU_OK(w, walrus_get_many(w, NULL, 0, NULL));
  TU_OK(w, walrus_get_many_view(w, NULL, 0, NULL));
  TU_OK(w, walrus_truncate_front(w, 40));
  uint64_t idx[3] = {RN, 40, 39};
  walrus_view_t v[3];
  TU_EXPECT(WALRUS_EINDEX, walrus_get_many_view(w, idx, 3, v));
  cr_assert(strstr(walrus_errmsg(w), "index 39") != NULL, "%s",
            walrus_errmsg(w));
  TU_OK(w, walrus_get_many_view(w, idx, 2, v));
  check_bytes_now(&v[0].entry, RN, SEED, RMAX, "after truncate_front");
  check_bytes_now(&v[1].entry, 40, SEED, RMAX, "after truncate_front");
  walrus_view_release(&v[0]);
  walrus_view_release(&v[1]);
  TU_OK(w, walrus_close(w));
}

/* Views of every entry, newest first, with cached_segments 1: a batch
 * spans many segments, each view keeps its mapping through eviction and
 * rotation, and once they are released the mappings fall back within the
 * cache's bound. */
Test(many, views_across_segments_with_a_small_cache) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.cached_segments = 1;
  cfg.vfs = mv_init(MV_MAPS);
  walrus_t *w = range_log(&cfg);
  uint64_t idx[RN];
  static walrus_view_t v[RN];
  for (size_t k = 0; k < RN; k++) idx[k] = RN - k;
  TU_OK(w, walrus_get_many_view(w, idx, RN, v));
  tu_check_range(w, 1, RN, SEED, RMAX); /* evicts and remaps */
  tu_append_n(w, 50, SEED, RMAX);       /* rotates */
  for (size_t k = 0; k < RN; k++) {
    check_bytes_now(&v[k].entry, idx[k], SEED, RMAX, "batched view, later");
    if (v[k].entry.len)
      cr_assert_geq(mv_holding(v[k].entry.data, v[k].entry.len), 0,
                    "view of %" PRIu64 " lost its mapping", idx[k]);
  }
  release_then_expect_clean(w, v, RN);
}

/* A VFS that cannot map for reading: batched views are private copies,
 * and batched zero_copy reads fall back to pread. */
Test(many, without_map_read) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.allocator = &g_alloc;
  cfg.zero_copy = 1;
  cfg.vfs = mv_init(MV_NO_MAP_READ);
  memset(&g_ac, 0, sizeof g_ac);
  walrus_t *w = range_log(&cfg);
  uint64_t idx[MN];
  many_indexes(idx, RN, 99);
  static walrus_view_t v[MN];
  static walrus_entry_t out[MN];
  TU_OK(w, walrus_get_many_view(w, idx, MN, v));
  TU_OK(w, walrus_get_many(w, idx, MN, out));
  for (size_t k = 0; k < MN; k++) {
    check_bytes_now(&v[k].entry, idx[k], SEED, RMAX, "copied batched view");
    cr_assert_null(v[k].map_, "view of %" PRIu64 ": map_ without a mapping",
                   idx[k]);
    check_bytes_now(&out[k], idx[k], SEED, RMAX, "batched get by pread");
    walrus_view_release(&v[k]);
    walrus_entry_free(&out[k]);
  }
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&g_ac.live), 0, "%ld allocations not freed",
               atomic_load(&g_ac.live));
}

/* walrus.h: walrus_get_many_view "allocates nothing once the segments are
 * mapped". */
Test(noalloc, get_many_view_and_release, .timeout = 120) {
  uint64_t firsts[256];
  size_t ns;
  walrus_t *w = noalloc_log(firsts, &ns);
  walrus_view_t v[50];
  for (size_t k = 0; k < ns; k++) { /* warm up: map every segment */
    TU_OK(w, walrus_get_many_view(w, &firsts[k], 1, v));
    walrus_view_release(&v[0]);
  }
  unsigned char want[300];
  uint64_t rng = 778, idx[50];
  long a0 = allocs();
  for (int round = 0; round < 200; round++) {
    for (size_t k = 0; k < 50; k++) idx[k] = rng_in(&rng, 1, 2000);
    TU_OK(w, walrus_get_many_view(w, idx, 50, v));
    for (size_t k = 0; k < 50; k++) {
      size_t len = tu_len(idx[k], SEED, 300);
      tu_payload(idx[k], SEED, want, len);
      cr_assert(v[k].entry.index == idx[k] && v[k].entry.len == len &&
                    (len == 0 || memcmp(v[k].entry.data, want, len) == 0),
                "batched view of %" PRIu64 " is wrong", idx[k]);
      walrus_view_release(&v[k]);
    }
  }
  long made = allocs() - a0;
  cr_log_info("10000 batched views: %ld allocations", made);
  cr_assert_eq(made, 0, "10000 batched views made %ld allocations", made);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&g_ac.live), 0);
}

/* Batched views on reader threads while the writer appends, rotates and
 * truncates the front: each batch is all there and right, or refused
 * whole with EINDEX when truncation took one of its entries. */
static void *many_reader(void *arg) {
  vreader_t *r = arg;
  unsigned char want[250];
  uint64_t idx[20];
  walrus_view_t v[20];
  while (!atomic_load(r->stop)) {
    uint64_t first = walrus_first_index(r->w), last = walrus_last_index(r->w);
    if (last == 0 || last < first) continue;
    for (size_t k = 0; k < 20; k++) idx[k] = rng_in(&r->rng, first, last);
    int rc = walrus_get_many_view(r->w, idx, 20, v);
    if (rc == WALRUS_EINDEX) {
      r->gone++;
      continue;
    }
    if (rc != WALRUS_OK) {
      if (r->bad++ == 0)
        snprintf(r->why, sizeof r->why, "batch: %s", walrus_errname(rc));
      continue;
    }
    for (size_t k = 0; k < 20; k++) {
      size_t len = tu_len(idx[k], SEED, 250);
      tu_payload(idx[k], SEED, want, len);
      int ok = v[k].entry.index == idx[k] && v[k].entry.term == idx[k] &&
               v[k].entry.len == len &&
               (len == 0 || memcmp(v[k].entry.data, want, len) == 0);
      if (!ok && r->bad++ == 0)
        snprintf(r->why, sizeof r->why, "view %" PRIu64 " wrong", idx[k]);
      walrus_view_release(&v[k]);
    }
    r->reads += 20;
  }
  return NULL;
}

Test(many, concurrent_with_appends_and_truncate_front, .timeout = 120) {
  run_readers_beside_writer(many_reader, 2, 2000, "batched views");
}
