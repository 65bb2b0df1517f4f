/*
 * test_compress.c: cfg.compression = WALRUS_COMPRESSION_ZSTD
 * (docs/FORMAT.md §5.6): units stored as one zstd frame, read back as the
 * original bytes by every read path.
 *
 * This file owns:
 *  - zconfig: the option, compress_min_bytes and compress_level, and
 *    ENOTSUP in a build without zstd;
 *  - zround: appends, batches and transactions, compressible and not,
 *    below and above the threshold, through walrus_get, views, ranges,
 *    batched reads and iterators in both zero_copy modes, from the tail
 *    and from sealed segments, before and after reopening; iterators that
 *    start inside a unit;
 *  - zmixed: a log written with compression off, on, off between opens,
 *    its version 1 and 2 segments, read whole;
 *  - zdamage: a flipped byte of a frame (ECHECKSUM), and crafted units
 *    with a valid crc: a length above max_entry_bytes, a frame that
 *    decompresses to a different size, lengths that do not add up
 *    (ECORRUPT naming file and offset);
 *  - ztrunc: truncate_back and truncate_front inside compressed units,
 *    then appends and a reopen;
 *  - zrecover: a torn compressed unit at the tail is cut at open;
 *  - zcache: walrus_get and walrus_get_view decompress a unit once for
 *    its neighbouring entries,
 *    see the new bytes after truncate_back and a rewrite of the same
 *    indexes, and stay right with four threads reading at once;
 *  - zinspect: walrus_verify, walrus_inspect and walrus_repair_plan on
 *    compressed logs: clean (truncate_back inside a unit included), a
 *    flipped frame byte, a crafted unit whose crc matches, compressed
 *    records in a version 1 segment: damage named by file and offset.
 *
 * In a build without zstd every test but zconfig's is skipped.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "format.h"
#include "internal.h"
#include "util.h"
#include "walrus.h"

TestSuite(zconfig, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zround, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zmixed, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zdamage, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(ztrunc, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zrecover, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zinspect, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(zcache, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

#define NEED_ZSTD()                                                \
  do {                                                             \
    if (!walrus__zstd_built()) cr_skip_test("built without zstd"); \
  } while (0)

/* ---- helpers ------------------------------------------------------------ */

static walrus_config_t zcfg(int on) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.segment_bytes = 32 * 1024;
  if (on) cfg.compression = WALRUS_COMPRESSION_ZSTD;
  return cfg;
}

/* Entry i's payload: a JSON event (compressible) or random bytes. */
static size_t make_payload(uint64_t i, int random, unsigned char *buf,
                           size_t cap) {
  if (random) {
    size_t n = 600 + (size_t)(i % 400);
    tu_payload(i, 0xC0FFEE, buf, n);
    return n;
  }
  int n = snprintf(
      (char *)buf, cap,
      "{\"type\":\"transfer\",\"seq\":%llu,\"from\":\"acct-%04llu\","
      "\"to\":\"acct-%04llu\",\"amount_cents\":%llu,"
      "\"currency\":\"EUR\",\"memo\":\"monthly rent and "
      "utilities for the flat on the third floor\","
      "\"ts\":\"2024-05-01T12:00:%02llu.000Z\"}",
      (unsigned long long)i, (unsigned long long)(i % 97),
      (unsigned long long)(i % 89), (unsigned long long)(i * 37 % 100000),
      (unsigned long long)(i % 60));
  return (size_t)n;
}

typedef struct model_s {
  unsigned char *data[4096]; /* payload of index i (1-based) */
  size_t len[4096];
  char txid[4096][40]; /* tx id or "" */
  uint64_t last;       /* last index */
} model_t;

static model_t *model_new(void) {
  model_t *m = calloc(1, sizeof *m);
  cr_assert(m != NULL);
  return m;
}

static void model_free(model_t *m) {
  for (size_t i = 0; i < 4096; i++) free(m->data[i]);
  free(m);
}

static void model_set(model_t *m, uint64_t i, const void *p, size_t n,
                      const char *txid) {
  cr_assert(i < 4096);
  free(m->data[i]);
  m->data[i] = malloc(n + 1);
  memcpy(m->data[i], p, n);
  m->len[i] = n;
  snprintf(m->txid[i], sizeof m->txid[i], "%s", txid ? txid : "");
  if (i > m->last) m->last = i;
}

/* Append a unit of n entries from index-derived payloads; with salt not
 * 0, short JSON events that also name salt. */
static void put_unit_with(walrus_t *w, model_t *m, size_t n, int random,
                          unsigned salt) {
  walrus_entry_t e[64];
  static unsigned char buf[64][2048];
  cr_assert(n <= 64);
  uint64_t next = walrus_last_index(w) + 1;
  for (size_t k = 0; k < n; k++) {
    memset(&e[k], 0, sizeof e[k]);
    e[k].term = next + k;
    e[k].type = (uint16_t)((next + k) % 5);
    e[k].timestamp_ns = (int64_t)(1000 + next + k);
    if (salt != 0)
      e[k].len = (size_t)snprintf(
          (char *)buf[k], sizeof buf[k],
          "{\"index\":%llu,\"salt\":%u,\"memo\":\"rent and utilities\"}",
          (unsigned long long)(next + k), salt);
    else
      e[k].len = make_payload(next + k, random, buf[k], sizeof buf[k]);
    e[k].data = buf[k];
  }
  uint64_t first = 0;
  if (n == 1)
    TU_OK(w, walrus_append(w, &e[0], &first));
  else
    TU_OK(w, walrus_write_batch(w, e, n, &first));
  cr_assert_eq(first, next);
  for (size_t k = 0; k < n; k++)
    model_set(m, next + k, e[k].data, e[k].len, NULL);
}

static void put_unit(walrus_t *w, model_t *m, size_t n, int random) {
  put_unit_with(w, m, n, random, 0);
}

static void check_one(const model_t *m, const walrus_entry_t *e, uint64_t i) {
  cr_assert_eq(e->index, i);
  cr_assert_eq(e->term, i, "term of %llu", (unsigned long long)i);
  cr_assert_eq(e->type, i % 5);
  cr_assert_eq(e->timestamp_ns, (int64_t)(1000 + i));
  cr_assert_eq(e->len, m->len[i], "len of %llu: %zu, want %zu",
               (unsigned long long)i, e->len, m->len[i]);
  cr_assert(memcmp(e->data, m->data[i], e->len) == 0, "bytes of %llu",
            (unsigned long long)i);
  if (m->txid[i][0])
    cr_assert(e->tx_id != NULL && strcmp(e->tx_id, m->txid[i]) == 0,
              "tx id of %llu", (unsigned long long)i);
  else
    cr_assert_null(e->tx_id);
}

/* Every read path over first..m->last. */
static void check_all(walrus_t *w, const model_t *m, uint64_t first) {
  for (uint64_t i = first; i <= m->last; i++) {
    walrus_entry_t e;
    TU_OK(w, walrus_get(w, i, &e));
    check_one(m, &e, i);
    walrus_entry_free(&e);
    walrus_view_t v;
    TU_OK(w, walrus_get_view(w, i, &v));
    check_one(m, &v.entry, i);
    walrus_view_release(&v);
  }
  /* Ranges and batched reads, which keep a unit between entries. */
  size_t n = 0;
  size_t want = (size_t)(m->last - first + 1);
  walrus_entry_t *r = calloc(want, sizeof *r);
  TU_OK(w, walrus_get_range(w, first, m->last, want, 0, r, &n));
  cr_assert_eq(n, want);
  for (size_t k = 0; k < n; k++) {
    check_one(m, &r[k], first + k);
    walrus_entry_free(&r[k]);
  }
  walrus_view_t *rv = calloc(want, sizeof *rv);
  TU_OK(w, walrus_get_range_view(w, first, m->last, want, 0, rv, &n));
  cr_assert_eq(n, want);
  for (size_t k = 0; k < n; k++) {
    check_one(m, &rv[k].entry, first + k);
    walrus_view_release(&rv[k]);
  }
  uint64_t *idx = calloc(want, sizeof *idx);
  for (size_t k = 0; k < want; k++) idx[k] = m->last - k; /* backwards */
  TU_OK(w, walrus_get_many(w, idx, want, r));
  for (size_t k = 0; k < want; k++) {
    check_one(m, &r[k], idx[k]);
    walrus_entry_free(&r[k]);
  }
  free(idx);
  free(rv);
  free(r);
  /* Iterators from the start and from every few entries (inside units). */
  for (uint64_t start = first; start <= m->last; start += 7) {
    walrus_iter_t *it;
    TU_OK(w, walrus_iter_open(w, start, &it));
    walrus_entry_t e;
    uint64_t i = start;
    int rc;
    while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) check_one(m, &e, i++);
    cr_assert_eq(rc, WALRUS_DONE, "iterator from %llu: %s %s",
                 (unsigned long long)start, walrus_errname(rc),
                 walrus_errmsg(w));
    cr_assert_eq(i, m->last + 1);
    walrus_iter_close(it);
    if (start == first && m->last - first > 40) start += 20;
  }
}

/* Reopen with zero_copy 0 and 1 and check everything. */
static void check_reopened(const model_t *m, uint64_t first, int on) {
  for (int zc = 0; zc < 2; zc++) {
    walrus_config_t cfg = zcfg(on);
    cfg.zero_copy = zc;
    walrus_t *w = tu_open(tu_dir, &cfg);
    cr_assert_eq(walrus_last_index(w), m->last);
    check_all(w, m, first);
    TU_OK(w, walrus_close(w));
  }
}

/* Whole segment files, and the offset and header of record index. */
typedef struct segimg_s {
  unsigned char *b;
  size_t len;
  char path[4200];
  uint32_t salt, version;
} segimg_t;

static segimg_t seg_load(size_t which) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert(which < n);
  segimg_t g;
  snprintf(g.path, sizeof g.path, "%s", tu_path(tu_dir, names[which]));
  tu_strv_free(names);
  g.b = tu_read_file(g.path, &g.len);
  walrus__seg_header_t h;
  cr_assert_eq(walrus__fmt_seg_header_decode(g.b, &h), WALRUS__FMT_OK);
  g.salt = h.salt;
  g.version = h.version;
  return g;
}

/* Offset of the record of index in g (a tail), or 0. */
static uint64_t rec_at(const segimg_t *g, uint64_t index) {
  uint64_t off = WALRUS__SEG_HEADER_BYTES;
  while (off + WALRUS__REC_HEADER_BYTES <= g->len) {
    walrus__rec_t r;
    if (walrus__rec_header_decode(g->b + off, &r) != WALRUS__FMT_OK) break;
    if (r.index == index && !(r.flags & WALRUS__REC_MARK)) return off;
    off += walrus__rec_size(r.body_len);
  }
  return 0;
}

static void fix_crc(segimg_t *g, uint64_t off) {
  uint32_t body = walrus__get32(g->b + off + 4);
  walrus__put32(g->b + off,
                walrus__rec_crc(g->salt, g->b + off,
                                g->b + off + WALRUS__REC_HEADER_BYTES, body));
}

/* ---- zconfig ------------------------------------------------------------ */

Test(zconfig, defaults_and_ranges) {
  walrus_config_t cfg;
  char msg[256];
  walrus_config_default(&cfg);
  cr_assert_eq(cfg.compression, WALRUS_COMPRESSION_NONE);
  cr_assert_eq(cfg.compress_min_bytes, 512u);
  cr_assert_eq(cfg.compress_level, 1);
  cfg.compression = WALRUS_COMPRESSION_ZSTD;
  int rc = walrus_config_check(&cfg, msg, sizeof msg);
  if (walrus__zstd_built()) {
    cr_assert_eq(rc, WALRUS_OK, "%s", msg);
  } else {
    cr_assert_eq(rc, WALRUS_ENOTSUP);
    cr_assert(strstr(msg, "compression") != NULL, "%s", msg);
  }
  cfg.compression = (walrus_compression_t)7;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert(strstr(msg, "compression") != NULL, "%s", msg);
  walrus_config_default(&cfg);
  int bad_levels[] = {-8, 20, 1000, -100000};
  for (size_t i = 0; i < 4; i++) {
    cfg.compress_level = bad_levels[i];
    cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
    cr_assert(strstr(msg, "compress_level") != NULL, "%s", msg);
  }
  cfg.compress_level = -7;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_OK);
  cfg.compress_level = 19;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_OK);
  cfg.compress_min_bytes = (1u << 30) + 1;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert(strstr(msg, "compress_min_bytes") != NULL, "%s", msg);
  cfg.compress_min_bytes = 0;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_OK);
}

Test(zconfig, open_without_zstd_is_enotsup) {
  if (walrus__zstd_built()) cr_skip_test("built with zstd");
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = NULL;
  char msg[256];
  cr_assert_eq(walrus_open_ex(tu_dir, &cfg, &w, msg, sizeof msg),
               WALRUS_ENOTSUP);
  cr_assert_null(w);
  cr_assert(strstr(msg, "zstd") != NULL, "%s", msg);
}

/* ---- zround ------------------------------------------------------------- */

/* A mix of units: appends and batches, compressible and random, below
 * and above the threshold. */
static void put_mix(walrus_t *w, model_t *m, int rounds) {
  for (int r = 0; r < rounds; r++) {
    put_unit(w, m, 1, 0);  /* ~250 bytes: below 512, plain */
    put_unit(w, m, 3, 0);  /* above: compressed */
    put_unit(w, m, 17, 0); /* compressed */
    put_unit(w, m, 2, 1);  /* random: does not shrink, plain */
    put_unit(w, m, 5, 0);  /* maybe skipped after the random unit */
  }
}

Test(zround, every_read_path) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  put_mix(w, m, 30); /* several segments of 32 KiB */
  check_all(w, m, 1);
  TU_OK(w, walrus_close(w));
  cr_assert_gt(tu_segments(tu_dir, NULL), 2u);
  segimg_t g = seg_load(0);
  cr_assert_eq(g.version, WALRUS__SEG_VERSION_ZSTD);
  /* Entry 2 opens the first batch of 3: compressed; entry 1 is not. */
  uint64_t o1 = rec_at(&g, 1), o2 = rec_at(&g, 2), o3 = rec_at(&g, 3);
  cr_assert(o1 && o2 && o3);
  cr_assert_eq(g.b[o1 + 34] & WALRUS__REC_ZSTD, 0);
  cr_assert_neq(g.b[o2 + 34] & WALRUS__REC_ZSTD, 0);
  cr_assert_neq(g.b[o3 + 34] & WALRUS__REC_ZSTD, 0);
  cr_assert_eq(walrus__get32(g.b + o3 + 4), 0u); /* body in the first */
  free(g.b);
  check_reopened(m, 1, 1);
  check_reopened(m, 1, 0); /* a handle without compression reads it */
  model_free(m);
}

Test(zround, shrinks_compressible_and_not_random) {
  NEED_ZSTD();
  uint64_t bytes[2][2]; /* [compression][random] */
  for (int on = 0; on < 2; on++)
    for (int rnd = 0; rnd < 2; rnd++) {
      model_t *m = model_new();
      walrus_config_t cfg = zcfg(on);
      cfg.segment_bytes = 64 << 20;
      cfg.prefill_segments = 0;
      tu_rmrf(tu_dir);
      walrus_t *w = tu_open(tu_dir, &cfg);
      for (int u = 0; u < 40; u++) put_unit(w, m, 20, rnd);
      check_all(w, m, 1);
      TU_OK(w, walrus_close(w));
      segimg_t g = seg_load(0);
      bytes[on][rnd] = g.len;
      free(g.b);
      model_free(m);
    }
  /* JSON events: far smaller; random: not one byte more. */
  cr_assert_lt(bytes[1][0] * 100, bytes[0][0] * 30, "%llu vs %llu",
               (unsigned long long)bytes[1][0],
               (unsigned long long)bytes[0][0]);
  cr_assert_eq(bytes[1][1], bytes[0][1]);
}

Test(zround, transactions_with_tx_ids) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  for (int t = 0; t < 20; t++) {
    walrus_txid_t id;
    TU_OK(w, walrus_tx_begin(w, 0, &id));
    uint64_t next = walrus_last_index(w) + 1;
    size_t n = 1 + (size_t)t % 6;
    unsigned char buf[2048];
    for (size_t k = 0; k < n; k++) {
      walrus_entry_t e = {0};
      e.term = next + k;
      e.type = (uint16_t)((next + k) % 5);
      e.timestamp_ns = (int64_t)(1000 + next + k);
      e.len = make_payload(next + k, t % 5 == 4, buf, sizeof buf);
      e.data = buf;
      TU_OK(w, walrus_tx_add(w, &id, &e));
      model_set(m, next + k, buf, e.len, id.s);
    }
    uint64_t first;
    size_t count;
    TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
    cr_assert_eq(first, next);
    cr_assert_eq(count, n);
  }
  check_all(w, m, 1);
  TU_OK(w, walrus_close(w));
  check_reopened(m, 1, 1);
  model_free(m);
}

Test(zround, sync_always_and_min_bytes_zero) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  cfg.compress_min_bytes = 0;
  cfg.compress_level = 19;
  walrus_t *w = tu_open(tu_dir, &cfg);
  for (int u = 0; u < 30; u++) put_unit(w, m, 1 + (size_t)u % 4, 0);
  check_all(w, m, 1);
  TU_OK(w, walrus_close(w));
  check_reopened(m, 1, 1);
  model_free(m);
}

/* ---- zmixed ------------------------------------------------------------- */

Test(zmixed, compression_off_on_off_between_opens) {
  NEED_ZSTD();
  model_t *m = model_new();
  for (int round = 0; round < 5; round++) {
    int on = round % 2; /* off, on, off, on, off */
    walrus_config_t cfg = zcfg(on);
    walrus_t *w = tu_open(tu_dir, &cfg);
    cr_assert_eq(walrus_last_index(w), m->last);
    put_mix(w, m, 4);
    check_all(w, m, 1);
    TU_OK(w, walrus_close(w));
  }
  /* The first segment was written without compression: version 1, which
   * a version 1 reader still reads; later ones are of both versions. */
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  tu_strv_free(names);
  int seen[3] = {0};
  for (size_t i = 0; i < n; i++) {
    segimg_t g = seg_load(i);
    seen[g.version]++;
    if (g.version == 1)
      for (uint64_t off = WALRUS__SEG_HEADER_BYTES;
           off + WALRUS__REC_HEADER_BYTES <= g.len;) {
        walrus__rec_t r;
        if (walrus__rec_header_decode(g.b + off, &r) != WALRUS__FMT_OK) break;
        cr_assert_eq(r.flags & WALRUS__REC_ZSTD, 0, "ZSTD in version 1");
        off += walrus__rec_size(r.body_len);
      }
    free(g.b);
  }
  segimg_t g0 = seg_load(0);
  cr_assert_eq(g0.version, 1u);
  free(g0.b);
  cr_assert_gt(seen[1], 0);
  cr_assert_gt(seen[2], 0);
  check_reopened(m, 1, 0);
  check_reopened(m, 1, 1);
  model_free(m);
}

Test(zmixed, version1_reader_refuses_version2_segment) {
  NEED_ZSTD();
  /* What a reader that knows only version 1 sees: simulated by walrus's
   * own answer to a version it does not know (3). */
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  put_unit(w, m, 10, 0);
  TU_OK(w, walrus_close(w));
  segimg_t g = seg_load(0);
  cr_assert_eq(walrus__get32(g.b + 8), 2u);
  walrus__put32(g.b + 8, 3);
  walrus__put32(g.b + 60, walrus__crc32c(0, g.b, 60));
  tu_write_file(g.path, g.b, g.len);
  free(g.b);
  walrus_t *r = NULL;
  char msg[512];
  cr_assert_eq(walrus_open_ex(tu_dir, &cfg, &r, msg, sizeof msg),
               WALRUS_EFORMAT);
  cr_assert(strstr(msg, "version 3") != NULL, "%s", msg);
  model_free(m);
}

/* ---- zdamage ------------------------------------------------------------ */

/* A log with one compressed batch of 12 (entries 2..13) between plain
 * appends, closed; returns the first record's offset. */
static uint64_t damage_setup(model_t *m, segimg_t *g) {
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  put_unit(w, m, 1, 0); /* below compress_min_bytes */
  put_unit(w, m, 12, 0);
  put_unit(w, m, 1, 1);
  /* Seal the segment: open reads no record of a sealed one, so the damage
   * is found by the reads themselves. */
  while (tu_segments(tu_dir, NULL) < 2) put_unit(w, m, 8, 1);
  TU_OK(w, walrus_close(w));
  *g = seg_load(0);
  uint64_t off = rec_at(g, 2);
  cr_assert(off != 0);
  cr_assert_eq(g->b[off + 34] & (WALRUS__REC_ZSTD | WALRUS__REC_FIRST),
               WALRUS__REC_ZSTD | WALRUS__REC_FIRST);
  return off;
}

/* Every entry of the unit fails with code, naming the file; the entries
 * around it read.  Read-only, so that open does not judge the damage. */
static void expect_unit_fails(const model_t *m, int code, const char *what) {
  for (int zc = 0; zc < 2; zc++) {
    walrus_config_t cfg = zcfg(1);
    cfg.read_only = 1;
    cfg.zero_copy = zc;
    walrus_t *w = tu_open(tu_dir, &cfg);
    for (uint64_t i = 2; i <= 13; i++) {
      /* On failure out and view are untouched: not a header field set. */
      walrus_entry_t e, e0;
      memset(&e, 0xA5, sizeof e);
      e0 = e;
      int rc = walrus_get(w, i, &e);
      cr_assert_eq(rc, code, "%s: get %llu gave %s: %s", what,
                   (unsigned long long)i, walrus_errname(rc), walrus_errmsg(w));
      cr_assert(strstr(walrus_errmsg(w), ".seg") != NULL, "%s",
                walrus_errmsg(w));
      cr_assert(memcmp(&e, &e0, sizeof e) == 0, "%s: get %llu wrote out", what,
                (unsigned long long)i);
      walrus_view_t v, v0;
      memset(&v, 0xA5, sizeof v);
      v0 = v;
      cr_assert_eq(walrus_get_view(w, i, &v), code);
      cr_assert(memcmp(&v, &v0, sizeof v) == 0, "%s: view %llu written", what,
                (unsigned long long)i);
    }
    walrus_entry_t e;
    TU_OK(w, walrus_get(w, 1, &e));
    check_one(m, &e, 1);
    walrus_entry_free(&e);
    TU_OK(w, walrus_get(w, 14, &e));
    check_one(m, &e, 14);
    walrus_entry_free(&e);
    walrus_iter_t *it;
    TU_OK(w, walrus_iter_open(w, 1, &it));
    TU_OK(w, walrus_iter_next(it, &e));
    cr_assert_eq(walrus_iter_next(it, &e), code, "%s: iterator", what);
    walrus_iter_close(it);
    TU_OK(w, walrus_iter_open(w, 7, &it));
    cr_assert_eq(walrus_iter_next(it, &e), code, "%s: iterator inside", what);
    walrus_iter_close(it);
    TU_OK(w, walrus_close(w));
  }
}

Test(zdamage, flipped_frame_byte_is_echecksum) {
  NEED_ZSTD();
  model_t *m = model_new();
  segimg_t g;
  uint64_t off = damage_setup(m, &g);
  /* A byte in the middle of the frame: the stored bytes' crc fails. */
  uint32_t body = walrus__get32(g.b + off + 4);
  g.b[off + WALRUS__REC_HEADER_BYTES + body / 2] ^= 0x10;
  tu_write_file(g.path, g.b, g.len);
  free(g.b);
  expect_unit_fails(m, WALRUS_ECHECKSUM, "flipped frame byte");
  model_free(m);
}

Test(zdamage, lying_content_length_is_ecorrupt) {
  NEED_ZSTD();
  uint32_t lies[] = {16u << 20 | 1u, 0xFFFFFFFFu, 0, 1};
  for (size_t l = 0; l < 4; l++) {
    model_t *m = model_new();
    segimg_t g;
    tu_rmrf(tu_dir);
    uint64_t off = damage_setup(m, &g);
    unsigned char *head = g.b + off + WALRUS__REC_HEADER_BYTES;
    uint32_t truth = walrus__get32(head);
    /* Above max_entry_bytes (no allocation of it), then a length that is
     * not what the frame holds: smaller or larger by one. */
    uint32_t lie = l == 2 ? truth - 1 : l == 3 ? truth + 1 : lies[l];
    walrus__put32(head, lie);
    fix_crc(&g, off);
    tu_write_file(g.path, g.b, g.len);
    free(g.b);
    expect_unit_fails(m, WALRUS_ECORRUPT, "lying length");
    model_free(m);
  }
}

Test(zdamage, lying_count_and_lengths_are_ecorrupt) {
  NEED_ZSTD();
  for (int c = 0; c < 3; c++) {
    model_t *m = model_new();
    segimg_t g;
    tu_rmrf(tu_dir);
    uint64_t off = damage_setup(m, &g);
    unsigned char *head = g.b + off + WALRUS__REC_HEADER_BYTES;
    /* count 0, count too large for the content, count too small to hold
     * the entries that follow. */
    uint32_t counts[] = {0, 0x40000000u, 3};
    walrus__put32(head + 4, counts[c]);
    fix_crc(&g, off);
    tu_write_file(g.path, g.b, g.len);
    free(g.b);
    walrus_config_t cfg = zcfg(1);
    cfg.read_only = 1;
    walrus_t *w = tu_open(tu_dir, &cfg);
    for (uint64_t i = 2; i <= 13; i++) {
      walrus_entry_t e;
      cr_assert_eq(walrus_get(w, i, &e), WALRUS_ECORRUPT, "count %u, %llu",
                   counts[c], (unsigned long long)i);
    }
    TU_OK(w, walrus_close(w));
    model_free(m);
  }
}

Test(zdamage, other_frame_is_ecorrupt) {
  NEED_ZSTD();
  model_t *m = model_new();
  segimg_t g;
  uint64_t off = damage_setup(m, &g);
  /* Put in the frame's place a real frame of 8 fewer content bytes, then
   * zeros up to the old length, and fix the crc: the record's length says
   * more than that frame holds, and bytes follow the frame. */
  unsigned char *head = g.b + off + WALRUS__REC_HEADER_BYTES;
  uint32_t content = walrus__get32(head), body = walrus__get32(g.b + off + 4);
  unsigned char *plain = calloc(1, content);
  unsigned char frame[8192];
  void *cctx = walrus__zstd_cctx_new();
  size_t fl =
      walrus__zstd_compress(cctx, frame, sizeof frame, plain, content - 8, 1);
  walrus__zstd_cctx_free(cctx);
  cr_assert(fl > 0 && fl + WALRUS__ZHEAD_BYTES < body);
  memset(head + WALRUS__ZHEAD_BYTES, 0, body - WALRUS__ZHEAD_BYTES);
  memcpy(head + WALRUS__ZHEAD_BYTES, frame, fl);
  fix_crc(&g, off);
  tu_write_file(g.path, g.b, g.len);
  free(g.b);
  free(plain);
  expect_unit_fails(m, WALRUS_ECORRUPT, "other frame");
  model_free(m);
}

/* ---- ztrunc ------------------------------------------------------------- */

Test(ztrunc, back_and_front_inside_units) {
  NEED_ZSTD();
  for (int zc = 0; zc < 2; zc++) {
    model_t *m = model_new();
    walrus_config_t cfg = zcfg(1);
    cfg.zero_copy = zc;
    tu_rmrf(tu_dir);
    walrus_t *w = tu_open(tu_dir, &cfg);
    put_mix(w, m, 12);
    uint64_t cut = m->last - 30; /* lands inside some unit */
    TU_OK(w, walrus_truncate_back(w, cut));
    m->last = cut;
    check_all(w, m, 1);
    put_mix(w, m, 2);
    check_all(w, m, 1);
    uint64_t front = 9; /* inside the batch of 17 that starts at 5 */
    TU_OK(w, walrus_truncate_front(w, front));
    check_all(w, m, front);
    TU_OK(w, walrus_close(w));
    check_reopened(m, front, 1);
    /* Truncate back inside a sealed segment's unit. */
    w = tu_open(tu_dir, &cfg);
    TU_OK(w, walrus_truncate_back(w, 30));
    m->last = 30;
    put_unit(w, m, 9, 0);
    check_all(w, m, front);
    TU_OK(w, walrus_close(w));
    check_reopened(m, front, 0);
    model_free(m);
  }
}

/* ---- zrecover ----------------------------------------------------------- */

Test(zrecover, torn_compressed_unit_is_cut) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  put_unit(w, m, 6, 0);
  put_unit(w, m, 20, 0); /* entries 7..26: the unit a crash tears */
  TU_OK(w, walrus_close(w));
  segimg_t g = seg_load(0);
  uint64_t off = rec_at(&g, 7), stub = rec_at(&g, 20);
  cr_assert(off && stub);
  free(g.b);
  /* Torn inside the frame, and torn among the stubs: the unit goes
   * whole; entries 1..6 stay. */
  uint64_t cuts[] = {off + WALRUS__REC_HEADER_BYTES + 20, stub + 8};
  for (int c = 0; c < 2; c++) {
    char keep[4200];
    snprintf(keep, sizeof keep, "%s.copy", tu_dir);
    tu_rmrf(keep);
    tu_copy_dir(tu_dir, keep);
    segimg_t h = seg_load(0);
    tu_truncate(h.path, cuts[c]);
    free(h.b);
    model_t *m6 = model_new();
    for (uint64_t i = 1; i <= 6; i++)
      model_set(m6, i, m->data[i], m->len[i], NULL);
    w = tu_open(tu_dir, &cfg);
    cr_assert_eq(walrus_last_index(w), 6u);
    check_all(w, m6, 1);
    put_unit(w, m6, 15, 0);
    check_all(w, m6, 1);
    TU_OK(w, walrus_close(w));
    check_reopened(m6, 1, 1);
    model_free(m6);
    tu_rmrf(tu_dir);
    tu_copy_dir(keep, tu_dir);
    tu_rmrf(keep);
  }
  model_free(m);
}

/* ---- zinspect ----------------------------------------------------------- */

/* The findings of one walrus_verify(). */
typedef struct findings_s {
  size_t n;
  walrus_finding_kind_t kind[8];
  char file[8][64];
  uint64_t offset[8];
  char message[8][512];
} findings_t;

static int on_finding(void *ud, const walrus_finding_t *f) {
  findings_t *r = ud;
  if (r->n < 8) {
    r->kind[r->n] = f->kind;
    snprintf(r->file[r->n], sizeof r->file[0], "%s", f->file);
    r->offset[r->n] = f->offset;
    snprintf(r->message[r->n], sizeof r->message[0], "%s", f->message);
  }
  r->n++;
  return 0;
}

static walrus_verify_result_t verify(findings_t *f) {
  walrus_verify_result_t r;
  char msg[512];
  memset(f, 0, sizeof *f);
  TU_OK(NULL,
        walrus_verify(tu_dir, NULL, on_finding, NULL, f, &r, msg, sizeof msg));
  return r;
}

/* The name of segment file which. */
static void seg_name(size_t which, char *out, size_t len) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert(which < n);
  snprintf(out, len, "%s", names[which]);
  tu_strv_free(names);
}

Test(zinspect, compressed_log_verifies_clean) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  walrus_t *w = tu_open(tu_dir, &cfg);
  put_mix(w, m, 12);
  /* A truncate_back inside a unit leaves fewer records than its frame
   * holds entries: still sound. */
  uint64_t cut = m->last - 30;
  TU_OK(w, walrus_truncate_back(w, cut));
  m->last = cut;
  put_unit(w, m, 9, 0);
  TU_OK(w, walrus_close(w));
  cr_assert_geq(tu_segments(tu_dir, NULL), 2);
  segimg_t g = seg_load(0);
  cr_assert_eq(g.version, WALRUS__SEG_VERSION_ZSTD);
  free(g.b);

  findings_t f;
  walrus_verify_result_t r = verify(&f);
  cr_assert_eq(f.n, 0, "%s at %llu: %s", f.file[0],
               (unsigned long long)f.offset[0], f.message[0]);
  cr_assert_eq(r.damage, 0);
  cr_assert_eq(r.torn, 0);
  cr_assert_eq(r.entries, m->last);

  walrus_inspect_t info;
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  cr_assert_eq(info.damaged, 0, "%s", info.problem);
  cr_assert_eq(info.tail_state, WALRUS_TAIL_CLEAN);
  cr_assert_eq(info.last_index, m->last);
  walrus_inspect_free(&info);

  walrus_repair_plan_t plan;
  TU_OK(NULL, walrus_repair_plan(tu_dir, NULL, &plan, NULL, 0));
  cr_assert_eq(plan.nsteps, 0);
  cr_assert_eq(plan.last_index, m->last);
  walrus_repair_plan_free(&plan);
  model_free(m);
}

Test(zinspect, flipped_frame_byte_is_named) {
  NEED_ZSTD();
  model_t *m = model_new();
  segimg_t g;
  uint64_t off = damage_setup(m, &g);
  uint32_t body = walrus__get32(g.b + off + 4);
  g.b[off + WALRUS__REC_HEADER_BYTES + body / 2] ^= 0x10;
  tu_write_file(g.path, g.b, g.len);
  free(g.b);
  char name[64];
  seg_name(0, name, sizeof name);
  findings_t f;
  walrus_verify_result_t r = verify(&f);
  cr_assert_eq(r.damage, 1);
  cr_assert_eq(f.n, 1);
  cr_assert_eq(f.kind[0], WALRUS_FINDING_DAMAGE);
  cr_assert_str_eq(f.file[0], name);
  cr_assert_eq(f.offset[0], off, "offset %llu, not %llu",
               (unsigned long long)f.offset[0], (unsigned long long)off);
  cr_assert(strstr(f.message[0], "checksum") != NULL, "%s", f.message[0]);
  /* The scan of that segment stops at the unit: its entries and those
   * after it there are not counted. */
  cr_assert_lt(r.entries, m->last - 11);
  model_free(m);
}

/* A crafted unit whose crc matches: open and the checksums see nothing,
 * reads fail (zdamage); verify decompresses every unit and names it. */
Test(zinspect, crafted_unit_is_named) {
  NEED_ZSTD();
  for (int c = 0; c < 3; c++) {
    model_t *m = model_new();
    segimg_t g;
    tu_rmrf(tu_dir);
    uint64_t off = damage_setup(m, &g);
    unsigned char *head = g.b + off + WALRUS__REC_HEADER_BYTES;
    uint64_t at = off;
    const char *want = "compressed unit";
    if (c == 0) {
      walrus__put32(head, walrus__get32(head) + 1); /* content length */
      fix_crc(&g, off);
    } else if (c == 1) {
      walrus__put32(head + 4, 3); /* 3 lengths cannot add up */
      fix_crc(&g, off);
      want = "do not add up";
    } else {
      /* The fourth record loses its ZSTD flag: a unit mixing both. */
      at = rec_at(&g, 5);
      g.b[at + 34] &= (unsigned char)~WALRUS__REC_ZSTD;
      fix_crc(&g, at);
      want = "mixes compressed and plain";
    }
    tu_write_file(g.path, g.b, g.len);
    free(g.b);
    char name[64];
    seg_name(0, name, sizeof name);
    findings_t f;
    walrus_verify_result_t r = verify(&f);
    cr_assert_eq(r.damage, 1, "case %d: %zu findings", c, f.n);
    cr_assert_eq(f.kind[0], WALRUS_FINDING_DAMAGE);
    cr_assert_str_eq(f.file[0], name);
    cr_assert_eq(f.offset[0], at, "case %d: offset %llu, not %llu", c,
                 (unsigned long long)f.offset[0], (unsigned long long)at);
    cr_assert(strstr(f.message[0], want) != NULL, "case %d: %s", c,
              f.message[0]);
    model_free(m);
  }
}

/* Compressed records in a segment whose header says version 1. */
Test(zinspect, compressed_records_in_version1_segment) {
  NEED_ZSTD();
  model_t *m = model_new();
  segimg_t g;
  uint64_t off = damage_setup(m, &g);
  walrus__put32(g.b + 8, 1);
  walrus__put32(g.b + 60, walrus__crc32c(0, g.b, 60));
  tu_write_file(g.path, g.b, g.len);
  free(g.b);
  char name[64];
  seg_name(0, name, sizeof name);
  findings_t f;
  walrus_verify_result_t r = verify(&f);
  cr_assert_geq(r.damage, 1);
  cr_assert_str_eq(f.file[0], name);
  cr_assert_eq(f.offset[0], off);
  cr_assert(strstr(f.message[0], "version 1") != NULL, "%s", f.message[0]);
  model_free(m);
}

/* ---- zcache ------------------------------------------------------------- */

/* A unit of n compressible entries whose bytes also depend on salt, so
 * that a rewrite of the same indexes differs. */
static void put_salted(walrus_t *w, model_t *m, size_t n, unsigned salt) {
  put_unit_with(w, m, n, 0, salt);
}

/* Units walrus_get and walrus_get_view decompressed so far. */
static uint64_t decodes(walrus_t *w) {
  pthread_mutex_lock(&w->zcache.mu);
  uint64_t n = w->zcache.decodes;
  pthread_mutex_unlock(&w->zcache.mu);
  return n;
}

/* A new compressing log (every unit compressed that shrinks). */
static walrus_t *zcache_open(int zero_copy) {
  walrus_config_t cfg = zcfg(1);
  cfg.compress_min_bytes = 0;
  cfg.zero_copy = zero_copy;
  tu_rmrf(tu_dir);
  return tu_open(tu_dir, &cfg);
}

/* Entry i by walrus_get and by walrus_get_view, checked. */
static void get_both(walrus_t *w, const model_t *m, uint64_t i) {
  walrus_entry_t e;
  walrus_view_t v;
  TU_OK(w, walrus_get(w, i, &e));
  check_one(m, &e, i);
  walrus_entry_free(&e);
  TU_OK(w, walrus_get_view(w, i, &v));
  check_one(m, &v.entry, i);
  walrus_view_release(&v);
}

Test(zcache, neighbours_decompress_once) {
  NEED_ZSTD();
  for (int zc = 0; zc < 2; zc++) {
    model_t *m = model_new();
    walrus_t *w = zcache_open(zc);
    put_salted(w, m, 20, 1); /* 1..20 */
    put_salted(w, m, 20, 1); /* 21..40 */
    walrus_entry_t e;
    /* Each unit is decompressed by the first get of one of its entries,
     * and not again for the others, by get or view, in any order. */
    for (uint64_t u = 0; u < 2; u++) {
      uint64_t before = decodes(w);
      for (uint64_t k = 0; k < 20; k++)
        get_both(w, m, 20 * u + 1 + (k * 7) % 20);
      cr_assert_eq(decodes(w) - before, 1,
                   "unit %llu (zero_copy %d): "
                   "decompressed %llu times",
                   (unsigned long long)u, zc,
                   (unsigned long long)(decodes(w) - before));
    }
    /* Back to the first unit: once more, then cached again. */
    uint64_t before = decodes(w);
    TU_OK(w, walrus_get(w, 5, &e));
    walrus_entry_free(&e);
    TU_OK(w, walrus_get(w, 6, &e));
    walrus_entry_free(&e);
    cr_assert_eq(decodes(w) - before, 1);
    TU_OK(w, walrus_close(w));
    model_free(m);
  }
}

Test(zcache, truncate_back_and_rewrite) {
  NEED_ZSTD();
  for (int zc = 0; zc < 2; zc++) {
    model_t *m = model_new();
    walrus_t *w = zcache_open(zc);
    put_salted(w, m, 16, 1); /* 1..16 */
    walrus_entry_t e;
    for (unsigned salt = 2; salt < 6; salt++) {
      /* The unit is cached; cut inside it, or before it, and write the
       * same indexes again with other bytes. */
      TU_OK(w, walrus_get(w, 6, &e));
      check_one(m, &e, 6);
      walrus_entry_free(&e);
      uint64_t cut = salt % 2 ? 3 : 9;
      TU_OK(w, walrus_truncate_back(w, cut));
      m->last = cut;
      put_salted(w, m, 16 - cut, salt);
      for (uint64_t i = 1; i <= 16; i++) get_both(w, m, i);
    }
    TU_OK(w, walrus_close(w));
    check_reopened(m, 1, 1);
    model_free(m);
  }
}

typedef struct zreader_s {
  walrus_t *w;
  const model_t *m;
  uint64_t seed;
  int bad;
} zreader_t;

static void *zreader(void *arg) {
  zreader_t *r = arg;
  uint64_t x = r->seed;
  for (int k = 0; k < 4000 && !r->bad; k++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t i = 1 + (x >> 33) % r->m->last;
    walrus_entry_t e;
    if (walrus_get(r->w, i, &e) != WALRUS_OK) {
      r->bad = 1;
      break;
    }
    if (e.len != r->m->len[i] || memcmp(e.data, r->m->data[i], e.len) != 0)
      r->bad = 2;
    walrus_entry_free(&e);
  }
  return NULL;
}

Test(zcache, threads_read_at_once) {
  NEED_ZSTD();
  model_t *m = model_new();
  walrus_config_t cfg = zcfg(1);
  cfg.compress_min_bytes = 0;
  walrus_t *w = tu_open(tu_dir, &cfg);
  for (int u = 0; u < 40; u++) put_salted(w, m, 1 + (size_t)(u % 20), 7);
  pthread_t t[4];
  zreader_t r[4];
  for (int k = 0; k < 4; k++) {
    r[k] = (zreader_t){w, m, (uint64_t)k + 1, 0};
    cr_assert_eq(pthread_create(&t[k], NULL, zreader, &r[k]), 0);
  }
  for (int k = 0; k < 4; k++) {
    pthread_join(t[k], NULL);
    cr_assert_eq(r[k].bad, 0, "reader %d: %s", k,
                 r[k].bad == 1 ? "a get failed" : "wrong bytes");
  }
  TU_OK(w, walrus_close(w));
  model_free(m);
}
