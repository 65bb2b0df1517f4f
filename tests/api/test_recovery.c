/*
 * test_recovery.c: what walrus_open() does with torn, damaged, foreign and
 * missing files, in each recovery mode.
 *
 * This file owns the checks of contract lines 3 (honest about damage) and 4
 * (no gaps) at open:
 *  - a torn tail, cut at every byte offset of the last record and of the
 *    last batch, is cut back to the last whole unit in TAIL mode, and the
 *    log then takes appends that survive the next open;
 *  - garbage after the last record (random bytes, zeros, copies of valid
 *    records with the wrong index) is cut the same way;
 *  - STRICT mode refuses any of that and changes nothing;
 *  - damage followed by valid records is WALRUS_ECORRUPT naming the file
 *    and offset, in TAIL, STRICT and read-only opens, and leaves the bytes
 *    alone; SALVAGE keeps the prefix and moves the rest to a side file;
 *  - sealed segments: a bad record is reported when read (and only there),
 *    a bad trailer, a missing segment or a segment of another log fails the
 *    open; SALVAGE moves the segments after a gap into salvage/;
 *  - leftover *.seg.tmp and META.tmp files are removed by a writable open
 *    and ignored by a read-only one;
 *  - a read-only open of a torn log shows the prefix and writes nothing.
 *
 * Layout facts come from src/format.h: a 64-byte segment header, records of
 * walrus__rec_size(body_len) bytes starting at multiples of 8, and a 32-byte
 * trailer at the end of every sealed segment.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util.h"
#include "walrus.h"

#define SEED 0x5EED0001u  /* payloads of the entries a template holds */
#define SEED2 0x5EED0002u /* payloads of entries appended after recovery */
#define SEG1 "00000000000000000001.seg"
#define MAXN 64

/* ---- a model of a small one-segment log ---------------------------------- */

/* What a one-segment log holds: entries 1..n with these lengths. */
typedef struct model_s {
  uint64_t n;              /* last index */
  size_t len[MAXN + 1];    /* payload length of each index */
  uint64_t seed[MAXN + 1]; /* payload seed of each index */
  uint64_t off[MAXN + 2];  /* file offset of each record; off[n+1] = end */
} model_t;

/* Segments are not prefilled with zeros, so that a file ends where its
 * records do and the model can follow every offset; zeros after the
 * records are tested in test_mapped.c. */
static void config(walrus_config_t *cfg, uint64_t segment_bytes) {
  walrus_config_default(cfg);
  cfg->segment_bytes = segment_bytes;
  cfg->prefill_segments = 0;
}

/* The test entry for index: term = index, type = index % 7, fixed time. */
static void make_entry(walrus_entry_t *e, uint64_t index, size_t len,
                       uint64_t seed, unsigned char *buf) {
  tu_payload(index, seed, buf, len);
  memset(e, 0, sizeof *e);
  e->term = index;
  e->type = (uint16_t)(index % 7);
  e->timestamp_ns = (int64_t)(1000 + index);
  e->data = buf;
  e->len = len;
}

/* Assert that index reads back as make_entry(index, len, seed) made it. */
static void check_one(walrus_t *w, uint64_t index, size_t len, uint64_t seed) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  int rc = walrus_get(w, index, &e);
  cr_assert_eq(rc, WALRUS_OK, "get %" PRIu64 ": %s: %s", index,
               walrus_errname(rc), walrus_errmsg(w));
  cr_assert_eq(e.index, index);
  cr_assert_eq(e.term, index, "entry %" PRIu64 ": term %" PRIu64, index,
               e.term);
  cr_assert_eq(e.type, (uint16_t)(index % 7));
  cr_assert_eq(e.timestamp_ns, (int64_t)(1000 + index));
  cr_assert_null(e.tx_id);
  tu_check_bytes(&e, index, seed, len);
  walrus_entry_free(&e);
}

/* Assert that w holds exactly entries 1..last of m. */
static void check_model(walrus_t *w, const model_t *m, uint64_t last) {
  cr_assert_eq(walrus_first_index(w), last ? 1u : 0u, "first %" PRIu64,
               walrus_first_index(w));
  cr_assert_eq(walrus_last_index(w), last, "last %" PRIu64 ", want %" PRIu64,
               walrus_last_index(w), last);
  cr_assert_eq(walrus_next_index(w), last + 1);
  for (uint64_t i = 1; i <= last; i++) check_one(w, i, m->len[i], m->seed[i]);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(walrus_get(w, last + 1, &e), WALRUS_EINDEX);
}

/* Append entry index of m as a single record (m->n becomes index). */
static void model_append(walrus_t *w, model_t *m, size_t len, uint64_t seed) {
  unsigned char buf[512];
  cr_assert_leq(len, sizeof buf);
  cr_assert_lt(m->n, (uint64_t)MAXN);
  uint64_t index = m->n + 1;
  walrus_entry_t e;
  make_entry(&e, index, len, seed, buf);
  uint64_t got = 0;
  int rc = walrus_append(w, &e, &got);
  cr_assert_eq(rc, WALRUS_OK, "append %" PRIu64 ": %s: %s", index,
               walrus_errname(rc), walrus_errmsg(w));
  cr_assert_eq(got, index, "append got %" PRIu64 ", want %" PRIu64, got, index);
  m->n = index;
  m->len[index] = len;
  m->seed[index] = seed;
  m->off[index + 1] = m->off[index] + walrus__rec_size(len);
}

/* Append entries m->n+1 .. m->n+k as one batch. */
static void model_batch(walrus_t *w, model_t *m, const size_t *lens, size_t k) {
  static unsigned char bufs[20][512];
  walrus_entry_t e[20];
  cr_assert_leq(k, 20u);
  cr_assert_leq(m->n + k, (uint64_t)MAXN);
  for (size_t j = 0; j < k; j++) {
    uint64_t index = m->n + 1 + j;
    cr_assert_leq(lens[j], sizeof bufs[j]);
    make_entry(&e[j], index, lens[j], SEED, bufs[j]);
  }
  uint64_t first = 0;
  int rc = walrus_write_batch(w, e, k, &first);
  cr_assert_eq(rc, WALRUS_OK, "batch: %s: %s", walrus_errname(rc),
               walrus_errmsg(w));
  cr_assert_eq(first, m->n + 1);
  for (size_t j = 0; j < k; j++) {
    uint64_t index = m->n + 1 + j;
    m->len[index] = lens[j];
    m->seed[index] = SEED;
    m->off[index + 1] = m->off[index] + walrus__rec_size(lens[j]);
  }
  m->n += k;
}

/*
 * walrus_close() leaves a sync mark after the last entry (format.h) so that
 * damage to a cleanly closed log's last records is reported, not cut.
 * Check it is there, right at end, then remove it: the torn-tail tests
 * model a crash after the last append, before any close.
 */
static void strip_close_mark(const char *dir, uint64_t end) {
  const char *seg = tu_path(dir, SEG1);
  size_t len;
  unsigned char *b = tu_read_file(seg, &len);
  cr_assert_eq(len, end + WALRUS__REC_HEADER_BYTES,
               "close should leave one %u-byte sync mark at %" PRIu64
               " (file is %zu bytes)",
               WALRUS__REC_HEADER_BYTES, end, len);
  cr_assert_eq(b[end + 34], WALRUS__REC_MARK | WALRUS__REC_GROUP,
               "the record after the last entry is not a sync mark");
  free(b);
  tu_truncate(seg, end);
}

/*
 * Build a one-segment log in dir: singles with lengths singles[], then, if
 * nbatch > 0, one batch with lengths batch[].  Asserts that the segment's
 * size is exactly what format.h says after every write.
 */
static void build(const char *dir, model_t *m, const size_t *singles,
                  size_t nsingles, const size_t *batch, size_t nbatch) {
  memset(m, 0, sizeof *m);
  m->off[1] = WALRUS__SEG_HEADER_BYTES;
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  walrus_t *w = tu_open(dir, &cfg);
  const char *seg = tu_path(dir, SEG1);
  for (size_t i = 0; i < nsingles; i++) {
    model_append(w, m, singles[i], SEED);
    cr_assert_eq(tu_file_size(seg), (int64_t)m->off[m->n + 1],
                 "segment size %" PRId64 " after entry %" PRIu64
                 ", format.h says %" PRIu64,
                 tu_file_size(seg), m->n, m->off[m->n + 1]);
  }
  if (nbatch > 0) {
    model_batch(w, m, batch, nbatch);
    cr_assert_eq(tu_file_size(seg), (int64_t)m->off[m->n + 1],
                 "segment size %" PRId64 " after the batch, format.h says "
                 "%" PRIu64,
                 tu_file_size(seg), m->off[m->n + 1]);
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  strip_close_mark(dir, m->off[m->n + 1]);
}

/* Open dir with cfg; returns the code, the handle in *w, the message. */
static int open_msg(const char *dir, const walrus_config_t *cfg, walrus_t **w,
                    char *msg, size_t msglen) {
  *w = NULL;
  msg[0] = '\0';
  return walrus_open_ex(dir, cfg, w, msg, msglen);
}

/* Assert that the file at path holds exactly want[0..len). */
static void assert_file_is(const char *path, const unsigned char *want,
                           size_t len, const char *what) {
  size_t got_len = 0;
  unsigned char *got = tu_read_file(path, &got_len);
  cr_assert_eq(got_len, len, "%s: %s is %zu bytes, want %zu", what, path,
               got_len, len);
  size_t bad = len;
  for (size_t i = 0; i < len; i++) {
    if (got[i] != want[i]) {
      bad = i;
      break;
    }
  }
  free(got);
  cr_assert_eq(bad, len, "%s: %s differs at byte %zu", what, path, bad);
}

/* 1 if msg holds the number v as a whole decimal or 0x-hex token. */
static int msg_has_number(const char *msg, uint64_t v) {
  char dec[32], hex[32];
  snprintf(dec, sizeof dec, "%" PRIu64, v);
  snprintf(hex, sizeof hex, "0x%" PRIx64, v);
  const char *toks[2] = {dec, hex};
  for (int t = 0; t < 2; t++) {
    size_t n = strlen(toks[t]);
    for (const char *p = strstr(msg, toks[t]); p; p = strstr(p + 1, toks[t])) {
      int before = p > msg &&
                   ((p[-1] >= '0' && p[-1] <= '9') || (t == 1 && p[-1] == 'x'));
      char c = p[n];
      int hexdig = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      int after = (c >= '0' && c <= '9') || (t == 1 && hexdig);
      if (!before && !after) return 1;
    }
  }
  return 0;
}

/* Deterministic bytes for garbage (xorshift64*). */
static void fill_random(unsigned char *buf, size_t len, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  for (size_t i = 0; i < len; i++) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    buf[i] = (unsigned char)((x * 0x2545F4914F6CDD1Dull) >> 56);
  }
}

/*
 * After a successful TAIL recovery that kept entries 1..kept of m (the
 * handle w is still open): append one entry, check it gets kept + 1, close,
 * reopen and check everything again.  Consumes w.
 */
static void append_and_reopen(const char *dir, walrus_t *w, const model_t *m,
                              uint64_t kept) {
  model_t m2 = *m;
  m2.n = kept;
  model_append(w, &m2, 41, SEED2);
  check_model(w, &m2, kept + 1);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  w = tu_open(dir, &cfg);
  check_model(w, &m2, kept + 1);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
}

/*
 * The torn-tail sweep.  tmpl holds the log of m, whose last unit (one
 * record or one batch) is the entries unit_first..m->n, starting at file
 * offset off[unit_first].  For every offset from the unit's start to the end
 * of the file, copy tmpl to work, cut the segment there, and open in TAIL
 * mode.  An offset inside the unit must give the log without the unit, the
 * file cut back to the unit's start; the full file must give everything.
 * Offsets inside the zero padding after the last record's body are either
 * way (see ambiguous), each checked for consistency.
 */
static void sweep_torn(const char *tmpl, const char *work, const model_t *m,
                       uint64_t unit_first, unsigned *ambiguous_kept,
                       unsigned *ambiguous_cut) {
  uint64_t start = m->off[unit_first];
  uint64_t end = m->off[m->n + 1];
  uint64_t body_end = m->off[m->n] + WALRUS__REC_HEADER_BYTES + m->len[m->n];
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  for (uint64_t cut = start; cut <= end; cut++) {
    tu_rmrf(work);
    tu_copy_dir(tmpl, work);
    const char *seg = tu_path(work, SEG1);
    tu_truncate(seg, cut);
    walrus_t *w;
    char msg[512];
    int rc = open_msg(work, &cfg, &w, msg, sizeof msg);
    cr_assert_eq(rc, WALRUS_OK,
                 "cut at %" PRIu64 " (unit %" PRIu64 "..%" PRIu64
                 " spans %" PRIu64 "..%" PRIu64 "): open %s: %s",
                 cut, unit_first, m->n, start, end, walrus_errname(rc), msg);
    uint64_t last = walrus_last_index(w);
    uint64_t kept;
    if (cut == end) {
      kept = m->n;
      cr_assert_eq(last, kept, "uncut file: last %" PRIu64, last);
      cr_assert_eq(tu_file_size(seg), (int64_t)end);
    } else if (cut >= body_end) {
      /* The last record is whole but its padding is not: keeping the unit
       * or cutting it are both prefixes of what was written. */
      cr_assert(last == m->n || last == unit_first - 1,
                "cut at %" PRIu64 " in the padding: last %" PRIu64, cut, last);
      kept = last;
      if (last == m->n) {
        (*ambiguous_kept)++;
        int64_t sz = tu_file_size(seg);
        cr_assert(sz == (int64_t)cut || sz == (int64_t)end,
                  "cut at %" PRIu64 " kept: size %" PRId64, cut, sz);
      } else {
        (*ambiguous_cut)++;
        cr_assert_eq(tu_file_size(seg), (int64_t)start);
      }
    } else {
      kept = unit_first - 1;
      cr_assert_eq(last, kept,
                   "cut at %" PRIu64 " inside unit %" PRIu64 "..%" PRIu64
                   " (%" PRIu64 "..%" PRIu64 "): last %" PRIu64
                   ", want %" PRIu64,
                   cut, unit_first, m->n, start, end, last, kept);
      cr_assert_eq(tu_file_size(seg), (int64_t)start,
                   "cut at %" PRIu64 ": file not cut back to the unit start "
                   "%" PRIu64 " (size %" PRId64 ")",
                   cut, start, tu_file_size(seg));
    }
    check_model(w, m, kept);
    append_and_reopen(work, w, m, kept);
  }
}

/* ---- torn tails ---------------------------------------------------------- */

/* Last record: 64 bytes of payload, so 40 + 64 = 104 has no padding. */
static const size_t k_singles[] = {10, 0, 100, 37, 1, 60, 52, 64};
#define N_SINGLES (sizeof k_singles / sizeof k_singles[0])

Test(recovery, torn_last_record_every_offset) {
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  build(tmpl, &m, k_singles, N_SINGLES, NULL, 0);
  unsigned kept = 0, cut = 0;
  sweep_torn(tmpl, work, &m, m.n, &kept, &cut);
  cr_assert_eq(kept + cut, 0u, "no padding in this record");
  cr_log_info("torn last record: %" PRIu64 " cut offsets checked",
              m.off[m.n + 1] - m.off[m.n] + 1);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

Test(recovery, torn_last_record_with_padding) {
  /* The last record has 57 bytes of payload: 97 bytes, padded to 104. */
  static const size_t singles[] = {10, 0, 100, 37, 1, 60, 52, 57};
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  build(tmpl, &m, singles, sizeof singles / sizeof singles[0], NULL, 0);
  unsigned kept = 0, cut = 0;
  sweep_torn(tmpl, work, &m, m.n, &kept, &cut);
  cr_log_info("torn padded record: a cut inside the padding kept the record "
              "%u times and cut it %u times",
              kept, cut);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

Test(recovery, torn_last_batch_every_offset) {
  /* The batch's records are 56, 40, 72 and 64 bytes; the last needs no
   * padding, the first and third do.  A cut after a whole record inside the
   * batch must still remove the whole batch. */
  static const size_t singles[] = {10, 0, 100, 37, 1};
  static const size_t batch[] = {13, 0, 29, 24};
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  build(tmpl, &m, singles, 5, batch, 4);
  unsigned kept = 0, cut = 0;
  sweep_torn(tmpl, work, &m, 6, &kept, &cut);
  cr_assert_eq(kept + cut, 0u);
  cr_log_info("torn last batch: %" PRIu64 " cut offsets checked",
              m.off[m.n + 1] - m.off[6] + 1);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

Test(recovery, torn_batch_of_one_segment_two_batches) {
  /* Two batches back to back: a cut in the second keeps the first whole. */
  static const size_t b1[] = {5, 6, 7};
  static const size_t b2[] = {8, 9, 16};
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  memset(&m, 0, sizeof m);
  m.off[1] = WALRUS__SEG_HEADER_BYTES;
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  walrus_t *w = tu_open(tmpl, &cfg);
  model_batch(w, &m, b1, 3);
  model_batch(w, &m, b2, 3);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  strip_close_mark(tmpl, m.off[7]);
  cr_assert_eq(tu_file_size(tu_path(tmpl, SEG1)), (int64_t)m.off[7]);
  unsigned kept = 0, cut = 0;
  /* The last record (16 bytes) needs no padding: 56 bytes. */
  sweep_torn(tmpl, work, &m, 4, &kept, &cut);
  cr_assert_eq(kept + cut, 0u);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

/* ---- garbage after the last record -------------------------------------- */

/* The kinds of garbage appended after the end of the log. */
enum garbage {
  G_RANDOM,     /* random bytes */
  G_ZEROS,      /* zeros, as a preallocated file would have */
  G_OLD_RECORD, /* a byte copy of record 2: valid CRC, index too low */
  G_DUP_LAST,   /* a byte copy of the last record: valid CRC, index again */
  G_NEXT_BADCRC /* the last record with index last + 1, CRC not updated */
};

static const char *const garbage_names[] = {"random", "zeros", "old-record",
                                            "duplicate-last", "next-bad-crc"};

/* Make garbage of kind g (at most cap bytes); returns its length. */
static size_t make_garbage(enum garbage g, size_t size, const model_t *m,
                           const unsigned char *seg, unsigned char *out,
                           size_t cap) {
  size_t n = 0;
  switch (g) {
    case G_RANDOM:
      n = size;
      cr_assert_leq(n, cap);
      fill_random(out, n, size);
      break;
    case G_ZEROS:
      n = size;
      cr_assert_leq(n, cap);
      memset(out, 0, n);
      break;
    case G_OLD_RECORD:
      n = m->off[3] - m->off[2];
      cr_assert_leq(n, cap);
      memcpy(out, seg + m->off[2], n);
      break;
    case G_DUP_LAST:
    case G_NEXT_BADCRC:
      n = m->off[m->n + 1] - m->off[m->n];
      cr_assert_leq(n, cap);
      memcpy(out, seg + m->off[m->n], n);
      if (g == G_NEXT_BADCRC) walrus__put64(out + 8, m->n + 1);
      break;
  }
  return n;
}

/*
 * For each kind of garbage, appended after the whole log and after a cut in
 * the middle of the last record: TAIL recovery cuts it all, keeps exactly
 * the whole records, and the log takes appends; STRICT refuses and changes
 * nothing.  Zero bytes after the last record are the one exception: the
 * end of a preallocated tail, accepted by both.
 */
Test(recovery, garbage_after_last_record) {
  static const size_t sizes[] = {1, 7, 8, 39, 40, 41, 100, 4096, 65536};
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  build(tmpl, &m, k_singles, N_SINGLES, NULL, 0);
  size_t seg_len;
  unsigned char *seg = tu_read_file(tu_path(tmpl, SEG1), &seg_len);
  unsigned char *junk = malloc(65536);
  cr_assert_not_null(junk);
  unsigned cases = 0;
  for (int g = G_RANDOM; g <= G_NEXT_BADCRC; g++) {
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      if ((g != G_RANDOM && g != G_ZEROS) && si > 0) break;
      size_t jlen =
          make_garbage((enum garbage)g, sizes[si], &m, seg, junk, 65536);
      for (int torn = 0; torn < 2; torn++) {
        /* A copy of the last record after a torn one could be read as the
         * record itself; that case is not garbage. */
        if (torn && g == G_DUP_LAST) continue;
        uint64_t base = torn ? m.off[m.n] + 17 : m.off[m.n + 1];
        uint64_t kept = torn ? m.n - 1 : m.n;
        uint64_t boundary = torn ? m.off[m.n] : m.off[m.n + 1];
        const char *what = garbage_names[g];
        cases++;

        /* Zero bytes from a record boundary to the end of the file, a
         * whole record header or more, are the end of a preallocated tail
         * (mapped writes): no damage, nothing cut at open. */
        int zero_end = g == G_ZEROS && !torn && jlen >= 40;

        /* STRICT: refused, nothing changed. */
        tu_rmrf(work);
        tu_copy_dir(tmpl, work);
        const char *path = tu_path(work, SEG1);
        tu_truncate(path, base);
        tu_append_file(path, junk, jlen);
        size_t before_len;
        unsigned char *before = tu_read_file(path, &before_len);
        walrus_config_t cfg;
        config(&cfg, 1u << 20);
        cfg.recovery = WALRUS_RECOVER_STRICT;
        walrus_t *w;
        char msg[512];
        int rc = open_msg(work, &cfg, &w, msg, sizeof msg);
        if (zero_end) {
          cr_assert_eq(rc, WALRUS_OK, "strict, %zu zero bytes after the last "
                       "record: open %s: %s", jlen, walrus_errname(rc), msg);
          check_model(w, &m, kept);
          assert_file_is(path, before, before_len, "strict open");
          /* The writer's close cuts the zeros; put them back. */
          cr_assert_eq(walrus_close(w), WALRUS_OK);
          cr_assert_eq(tu_file_size(path), (int64_t)boundary);
          tu_write_file(path, before, before_len);
        } else {
          cr_assert_eq(rc, WALRUS_ECORRUPT,
                       "strict, %s garbage (%zu bytes) after %s: open %s",
                       what, jlen, torn ? "a torn record" : "the last record",
                       walrus_errname(rc));
          cr_assert_null(w);
        }
        assert_file_is(path, before, before_len, "strict open");

        /* TAIL: cut to the last whole record. */
        config(&cfg, 1u << 20);
        rc = open_msg(work, &cfg, &w, msg, sizeof msg);
        cr_assert_eq(rc, WALRUS_OK,
                     "tail, %s garbage (%zu bytes) after %s: open %s: %s", what,
                     jlen, torn ? "a torn record" : "the last record",
                     walrus_errname(rc), msg);
        cr_assert_eq(walrus_last_index(w), kept,
                     "%s garbage (%zu bytes), torn %d: last %" PRIu64
                     ", want %" PRIu64,
                     what, jlen, torn, walrus_last_index(w), kept);
        if (zero_end) {
          /* Left in place; the writer's close cuts it. */
          assert_file_is(path, before, before_len, "zeros kept at open");
          cr_assert_eq(walrus_close(w), WALRUS_OK);
          w = tu_open(work, &cfg);
        }
        cr_assert_eq(tu_file_size(path), (int64_t)boundary,
                     "%s garbage (%zu bytes), torn %d: size %" PRId64
                     ", want %" PRIu64,
                     what, jlen, torn, tu_file_size(path), boundary);
        assert_file_is(path, before, (size_t)boundary, "tail cut");
        free(before);
        check_model(w, &m, kept);
        append_and_reopen(work, w, &m, kept);
      }
    }
  }
  cr_log_info("garbage after the tail: %u cases", cases);
  free(junk);
  free(seg);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

/* After a clean close the sync mark proves the last entries were synced:
 * damage to the last record is corruption, reported, the file unchanged. */
/* Give the record at off of segment file path this epoch and these flags
 * (FIRST|LAST are kept), with its CRC made valid again. */
static void rewrite_record(const char *path, uint64_t off, uint32_t epoch,
                           uint8_t flags) {
  size_t len;
  unsigned char *b = tu_read_file(path, &len);
  walrus__seg_header_t h;
  walrus__rec_t r;
  cr_assert_eq(walrus__fmt_seg_header_decode(b, &h), WALRUS__FMT_OK);
  cr_assert_eq(walrus__rec_header_decode(b + off, &r), WALRUS__FMT_OK);
  r.epoch = epoch;
  r.flags = (uint8_t)(flags | (r.flags & (WALRUS__REC_FIRST | WALRUS__REC_LAST)));
  walrus__rec_header_encode(b + off, &r);
  walrus__put32(b + off, walrus__rec_crc(h.salt, b + off,
                                         b + off + WALRUS__REC_HEADER_BYTES,
                                         r.body_len));
  tu_write_file(path, b, len);
  free(b);
}

static uint32_t record_epoch(const char *path, uint64_t off) {
  size_t len;
  unsigned char *b = tu_read_file(path, &len);
  walrus__rec_t r;
  cr_assert_eq(walrus__rec_header_decode(b + off, &r), WALRUS__FMT_OK);
  free(b);
  return r.epoch;
}

/*
 * Group commit: group L began while group L-1 was being synced, so a crash
 * can tear both.  When the crash loses L-1's records and L's first record
 * (the one with GROUP), L's surviving records still carry OVERLAP, and the
 * damage is a torn tail; without OVERLAP on them, group L-1 was durable
 * before L began, and the same damage is corruption.
 */
Test(recovery, torn_overlapping_groups_without_their_group_record) {
  char *root = tu_tmpdir();
  for (int overlap = 1; overlap >= 0; overlap--) {
    char *dir = strdup(tu_path(root, overlap ? "ov" : "plain"));
    model_t m;
    build(dir, &m, k_singles, 5, NULL, 0);
    const char *path = tu_path(dir, SEG1);
    /* Entries 1..5 are one group each.  Entry 3 stays group L-1; entries
     * 4 and 5 become group L, 4 with GROUP, both with OVERLAP (or not). */
    uint32_t e3 = record_epoch(path, m.off[3]);
    uint8_t ov = overlap ? WALRUS__REC_OVERLAP : 0;
    rewrite_record(path, m.off[4], e3 + 1, (uint8_t)(WALRUS__REC_GROUP | ov));
    rewrite_record(path, m.off[5], e3 + 1, ov);
    /* The crash loses entry 3 and entry 4 (zeros), keeps entry 5. */
    size_t len;
    unsigned char *b = tu_read_file(path, &len);
    memset(b + m.off[3], 0, (size_t)(m.off[5] - m.off[3]));
    tu_write_file(path, b, len);
    free(b);
    walrus_config_t cfg;
    config(&cfg, 1u << 20);
    walrus_t *w = NULL;
    char msg[512];
    int rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
    if (overlap) {
      cr_assert_eq(rc, WALRUS_OK, "torn overlapping groups: %s", msg);
      cr_assert_eq(walrus_last_index(w), 2u);
      check_model(w, &m, 2);
      walrus_close(w);
    } else {
      cr_assert_eq(rc, WALRUS_ECORRUPT,
                   "damage to a group synced before the next began: %s",
                   walrus_errname(rc));
    }
    free(dir);
  }
  tu_tmpdir_remove(root);
}

Test(recovery, damaged_last_record_after_clean_close_is_reported) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  walrus_t *w = tu_open(dir, &cfg);
  model_t m;
  memset(&m, 0, sizeof m);
  m.off[1] = WALRUS__SEG_HEADER_BYTES;
  for (size_t i = 0; i < N_SINGLES; i++) model_append(w, &m, k_singles[i], SEED);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  const char *path = tu_path(dir, SEG1);
  tu_flip_bit(path, m.off[m.n] + WALRUS__REC_HEADER_BYTES + 5, 2);
  size_t before_len;
  unsigned char *before = tu_read_file(path, &before_len);
  char msg[512];
  w = NULL;
  cr_assert_eq(open_msg(dir, &cfg, &w, msg, sizeof msg), WALRUS_ECORRUPT,
               "%s", msg);
  cr_assert(msg_has_number(msg, m.off[m.n]), "message names no offset: %s",
            msg);
  assert_file_is(path, before, before_len, "after a refused open");
  free(before);
  free(dir);
  tu_tmpdir_remove(root);
}

/* A complete last record whose payload is damaged, with no sync mark after
 * it (a crash came before close), is a torn tail too. */
Test(recovery, damaged_last_record_is_cut) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  model_t m;
  build(dir, &m, k_singles, N_SINGLES, NULL, 0);
  const char *path = tu_path(dir, SEG1);
  tu_flip_bit(path, m.off[m.n] + WALRUS__REC_HEADER_BYTES + 5, 2);
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  walrus_t *w = tu_open(dir, &cfg);
  check_model(w, &m, m.n - 1);
  cr_assert_eq(tu_file_size(path), (int64_t)m.off[m.n]);
  append_and_reopen(dir, w, &m, m.n - 1);
  free(dir);
  tu_tmpdir_remove(root);
}

/* STRICT on every torn offset of the last record: refused, unchanged. */
Test(recovery, strict_refuses_torn_tail) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  model_t m;
  build(dir, &m, k_singles, N_SINGLES, NULL, 0);
  const char *path = tu_path(dir, SEG1);
  size_t full_len;
  unsigned char *full = tu_read_file(path, &full_len);
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  cfg.recovery = WALRUS_RECOVER_STRICT;

  /* The whole log opens in STRICT mode. */
  walrus_t *w = tu_open(dir, &cfg);
  check_model(w, &m, m.n);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  assert_file_is(path, full, full_len, "strict open of a clean log");

  /* Cut from the end backwards, so each cut shortens the same file. */
  for (uint64_t cut = m.off[m.n + 1] - 1; cut > m.off[m.n]; cut--) {
    tu_truncate(path, cut);
    char msg[512];
    int rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
    cr_assert_eq(rc, WALRUS_ECORRUPT, "strict, cut at %" PRIu64 ": %s", cut,
                 walrus_errname(rc));
    cr_assert_null(w);
    assert_file_is(path, full, (size_t)cut, "strict open of a torn log");
  }
  free(full);
  free(dir);
  tu_tmpdir_remove(root);
}

/* A read-only open of a torn log shows the prefix and writes nothing. */
Test(recovery, read_only_torn_tail) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  model_t m;
  build(dir, &m, k_singles, N_SINGLES, NULL, 0);
  const char *path = tu_path(dir, SEG1);
  static const uint64_t deltas[] = {50, 36, 10, 1}; /* each cut shorter */
  for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
    uint64_t cut = m.off[m.n] + deltas[i];
    tu_truncate(path, cut);
    size_t len;
    unsigned char *before = tu_read_file(path, &len);
    walrus_config_t cfg;
    config(&cfg, 1u << 20);
    cfg.read_only = 1;
    walrus_t *w = tu_open(dir, &cfg);
    check_model(w, &m, m.n - 1);
    unsigned char b = 0;
    walrus_entry_t e;
    make_entry(&e, m.n, 1, SEED, &b);
    cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_EREADONLY);
    cr_assert_eq(walrus_close(w), WALRUS_OK);
    assert_file_is(path, before, len, "read-only open");
    free(before);
  }
  free(dir);
  tu_tmpdir_remove(root);
}

/* ---- damage before the tail --------------------------------------------- */

/* Where a mid-log damage is put in record d. */
typedef struct damage_s {
  const char *what; /* description */
  uint64_t rel;     /* byte offset inside the record */
  unsigned bit;     /* bit to flip */
} damage_t;

static const damage_t k_damages[] = {
    {"payload byte", WALRUS__REC_HEADER_BYTES + 2, 0},
    {"crc byte", 1, 4},
    {"length +-8", 4, 3},
    {"length huge", 7, 6},
    {"index byte", 8, 0},
    {"flags LAST bit", 34, 1},
    {"epoch byte", 36, 0},
};

/*
 * Flip a byte in record d of a 12-entry one-segment log (d followed by
 * valid records): TAIL, STRICT and read-only opens report WALRUS_ECORRUPT
 * naming the file and the record's offset and change no byte; SALVAGE keeps
 * 1..d-1, moves the rest into <segment>.salvage, and takes appends.
 */
Test(recovery, damage_before_tail) {
  static const size_t lens[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 5, 6};
  static const uint64_t ds[] = {1, 4, 11};
  char *root = tu_tmpdir();
  char *tmpl = strdup(tu_path(root, "tmpl"));
  char *work = strdup(tu_path(root, "work"));
  model_t m;
  build(tmpl, &m, lens, 12, NULL, 0);
  unsigned cases = 0;
  for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
    uint64_t d = ds[di];
    for (size_t k = 0; k < sizeof k_damages / sizeof k_damages[0]; k++) {
      const damage_t *dm = &k_damages[k];
      cases++;
      tu_rmrf(work);
      tu_copy_dir(tmpl, work);
      const char *path = tu_path(work, SEG1);
      tu_flip_bit(path, m.off[d] + dm->rel, dm->bit);
      size_t bad_len;
      unsigned char *bad = tu_read_file(path, &bad_len);
      size_t meta_len;
      unsigned char *meta = tu_read_file(tu_path(work, "META"), &meta_len);

      static const struct {
        const char *name;
        walrus_recovery_t mode;
        int read_only;
      } modes[] = {{"tail", WALRUS_RECOVER_TAIL, 0},
                   {"strict", WALRUS_RECOVER_STRICT, 0},
                   {"read-only", WALRUS_RECOVER_TAIL, 1}};
      for (size_t mi = 0; mi < 3; mi++) {
        walrus_config_t cfg;
        config(&cfg, 1u << 20);
        cfg.recovery = modes[mi].mode;
        cfg.read_only = modes[mi].read_only;
        walrus_t *w;
        char msg[512];
        int rc = open_msg(work, &cfg, &w, msg, sizeof msg);
        cr_assert_eq(rc, WALRUS_ECORRUPT,
                     "%s open, %s of record %" PRIu64 " damaged: %s (%s)",
                     modes[mi].name, dm->what, d, walrus_errname(rc), msg);
        cr_assert_null(w);
        cr_assert(strstr(msg, SEG1) != NULL,
                  "%s open, %s of record %" PRIu64
                  ": message does not name the file: \"%s\"",
                  modes[mi].name, dm->what, d, msg);
        cr_assert(msg_has_number(msg, m.off[d]),
                  "%s open, %s of record %" PRIu64
                  ": message does not name the offset %" PRIu64 ": \"%s\"",
                  modes[mi].name, dm->what, d, m.off[d], msg);
        assert_file_is(path, bad, bad_len, "damaged segment after open");
        assert_file_is(tu_path(work, "META"), meta, meta_len,
                       "META after a refused open");
        cr_assert(!tu_exists(tu_path(work, SEG1 ".salvage")));
      }

      /* SALVAGE: keep the prefix, move the rest aside, carry on. */
      walrus_config_t cfg;
      config(&cfg, 1u << 20);
      cfg.recovery = WALRUS_RECOVER_SALVAGE;
      walrus_t *w;
      char msg[512];
      int rc = open_msg(work, &cfg, &w, msg, sizeof msg);
      cr_assert_eq(rc, WALRUS_OK, "salvage, %s of record %" PRIu64 ": %s: %s",
                   dm->what, d, walrus_errname(rc), msg);
      check_model(w, &m, d - 1);
      cr_assert_eq(tu_file_size(path), (int64_t)m.off[d],
                   "salvage, %s of record %" PRIu64 ": segment is %" PRId64
                   " bytes, want %" PRIu64,
                   dm->what, d, tu_file_size(path), m.off[d]);
      assert_file_is(path, bad, (size_t)m.off[d], "salvaged segment");
      const char *side = tu_path(work, SEG1 ".salvage");
      cr_assert(tu_exists(side), "salvage, %s of record %" PRIu64 ": no %s",
                dm->what, d, side);
      assert_file_is(side, bad + m.off[d], bad_len - (size_t)m.off[d],
                     "salvage side file");
      model_t m2 = m;
      m2.n = d - 1;
      model_append(w, &m2, 33, SEED2);
      cr_assert_eq(walrus_close(w), WALRUS_OK);
      config(&cfg, 1u << 20);
      w = tu_open(work, &cfg);
      check_model(w, &m2, d);
      cr_assert_eq(walrus_close(w), WALRUS_OK);
      assert_file_is(side, bad + m.off[d], bad_len - (size_t)m.off[d],
                     "salvage side file after reopen");
      free(bad);
      free(meta);
    }
  }
  cr_log_info("damage before the tail: %u cases", cases);
  free(tmpl);
  free(work);
  tu_tmpdir_remove(root);
}

/*
 * The same under SYNC_NONE, after walrus_sync() and a clean close: every
 * entry is durable, so damage in record 4 of 12 is damage before the tail,
 * not a torn write (no crash happened), and must be reported, not cut.
 * (Under SYNC_NONE all records of a session share one sync epoch, so the
 * epoch rule of format.h alone cannot tell them from an unsynced group.)
 */
Test(recovery, damage_before_tail_synced_sync_none) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  walrus_config_t cfg;
  config(&cfg, 1u << 20);
  cfg.sync = WALRUS_SYNC_NONE;
  walrus_t *w = tu_open(dir, &cfg);
  model_t m;
  memset(&m, 0, sizeof m);
  m.off[1] = WALRUS__SEG_HEADER_BYTES;
  for (int i = 0; i < 12; i++) model_append(w, &m, 10 + 10 * (size_t)i, SEED);
  cr_assert_eq(walrus_sync(w), WALRUS_OK);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  const char *path = tu_path(dir, SEG1);
  tu_flip_bit(path, m.off[4] + WALRUS__REC_HEADER_BYTES + 2, 0);
  size_t len;
  unsigned char *bad = tu_read_file(path, &len);
  config(&cfg, 1u << 20);
  char msg[512];
  int rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
  uint64_t last = 0;
  if (rc == WALRUS_OK) {
    last = walrus_last_index(w);
    walrus_close(w);
  }
  size_t now_len;
  unsigned char *now = tu_read_file(path, &now_len);
  int same = now_len == len && memcmp(now, bad, len) == 0;
  free(now);
  free(bad);
  free(dir);
  tu_tmpdir_remove(root);
  cr_assert_eq(rc, WALRUS_ECORRUPT,
               "synced log written under SYNC_NONE, record 4 of 12 damaged: "
               "open %s, last index %" PRIu64 " (entries 4..12 were durable "
               "and acknowledged), segment %s",
               walrus_errname(rc), last, same ? "unchanged" : "cut");
  cr_assert(same, "the damaged segment was changed by the open");
}

/* ---- sealed segments ----------------------------------------------------- */

#define SEALED_N 150
#define SEALED_MAX 200

/* One segment as parsed from its bytes, following format.h. */
typedef struct seginfo_s {
  char name[WALRUS__SEG_NAME_LEN + 1]; /* file name */
  uint64_t first;                      /* header first_index */
  uint64_t count;                      /* records */
  uint64_t size;                       /* file size */
  uint64_t rec_off[256];               /* offset of each record */
  uint64_t rec_len[256];               /* body_len of each record */
  int sealed;                          /* ends in a trailer */
} seginfo_t;

/* Parse every segment of dir (at most cap) into segs; returns the count. */
static size_t parse_segments(const char *dir, seginfo_t *segs, size_t cap) {
  char **names;
  size_t n = tu_segments(dir, &names);
  cr_assert_leq(n, cap);
  for (size_t s = 0; s < n; s++) {
    seginfo_t *si = &segs[s];
    memset(si, 0, sizeof *si);
    snprintf(si->name, sizeof si->name, "%s", names[s]);
    size_t len;
    unsigned char *b = tu_read_file(tu_path(dir, names[s]), &len);
    si->size = len;
    cr_assert_geq(len, WALRUS__SEG_HEADER_BYTES);
    cr_assert_eq(memcmp(b, "WALRUSSG", 8), 0, "%s: bad magic", names[s]);
    si->first = walrus__get64(b + 24);
    si->sealed = len >= WALRUS__TRAILER_BYTES &&
                 memcmp(b + len - WALRUS__TRAILER_BYTES, "WALRUSTR", 8) == 0;
    uint64_t off = WALRUS__SEG_HEADER_BYTES;
    while (off + WALRUS__REC_HEADER_BYTES <= len) {
      uint32_t body = walrus__get32(b + off + 4);
      uint8_t flags = b[off + 34];
      if (flags & WALRUS__REC_INDEX) break;
      if (flags & WALRUS__REC_MARK) { /* a sync mark: not an entry */
        off += walrus__rec_size(body);
        continue;
      }
      cr_assert_lt(si->count, 256u);
      cr_assert_eq(walrus__get64(b + off + 8), si->first + si->count,
                   "%s: record %" PRIu64 " has the wrong index", names[s],
                   si->count);
      si->rec_off[si->count] = off;
      si->rec_len[si->count] = body;
      si->count++;
      off += walrus__rec_size(body);
    }
    if (si->sealed) {
      const unsigned char *t = b + len - WALRUS__TRAILER_BYTES;
      cr_assert_eq(walrus__get64(t + 8), si->first);
      cr_assert_eq(walrus__get32(t + 16), si->count,
                   "%s: trailer count %u, records %" PRIu64, names[s],
                   walrus__get32(t + 16), si->count);
    }
    free(b);
  }
  tu_strv_free(names);
  return n;
}

/*
 * The path of the file in dir named exactly name or name followed by "."
 * and a suffix (salvage may add one so as never to overwrite), malloc()ed;
 * NULL if there is none.  Asserts there is at most one.
 */
static char *find_moved(const char *dir, const char *name) {
  DIR *d = opendir(dir);
  if (d == NULL) return NULL;
  char *found = NULL;
  size_t n = strlen(name);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, name, n) != 0) continue;
    if (de->d_name[n] != '\0' && de->d_name[n] != '.') continue;
    cr_assert_null(found, "%s and %s both in %s", found, de->d_name, dir);
    found = strdup(tu_path(dir, de->d_name));
  }
  closedir(d);
  return found;
}

/* Make a log of SEALED_N entries in 4 KiB segments; returns the segments. */
static size_t build_sealed(const char *dir, seginfo_t *segs, size_t cap) {
  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  tu_append_n(w, SEALED_N, SEED, SEALED_MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  size_t n = parse_segments(dir, segs, cap);
  cr_assert_geq(n, 4u, "only %zu segments", n);
  for (size_t s = 0; s + 1 < n; s++) {
    cr_assert(segs[s].sealed, "%s is not sealed", segs[s].name);
    cr_assert_eq(segs[s].first + segs[s].count, segs[s + 1].first);
  }
  cr_assert_eq(segs[n - 1].first + segs[n - 1].count - 1, (uint64_t)SEALED_N);
  return n;
}

static seginfo_t g_segs[64];

/* A bad record in a sealed segment: open fine, that entry alone fails. */
Test(recovery, sealed_record_damage_found_on_read) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  size_t nseg = build_sealed(dir, g_segs, 64);
  const seginfo_t *s = &g_segs[1];
  /* A record with a payload in the middle of the second segment. */
  uint64_t r = s->count / 2;
  while (r < s->count && s->rec_len[r] < 4) r++;
  cr_assert_lt(r, s->count);
  uint64_t bad_index = s->first + r;
  const char *path = tu_path(dir, s->name);
  tu_flip_bit(path, s->rec_off[r] + WALRUS__REC_HEADER_BYTES + 1, 5);
  size_t len;
  unsigned char *before = tu_read_file(path, &len);

  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), (uint64_t)SEALED_N);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  int rc = walrus_get(w, bad_index, &e);
  cr_assert_eq(rc, WALRUS_ECHECKSUM, "get of the damaged entry %" PRIu64 ": %s",
               bad_index, walrus_errname(rc));
  cr_assert_null(e.data, "out touched on failure");
  rc = walrus_get(w, bad_index, &e);
  cr_assert_eq(rc, WALRUS_ECHECKSUM, "second get: %s", walrus_errname(rc));
  tu_check_range(w, 1, bad_index - 1, SEED, SEALED_MAX);
  tu_check_range(w, bad_index + 1, SEALED_N, SEED, SEALED_MAX);

  /* Iteration from the start stops with an error at the damaged entry. */
  walrus_iter_t *it;
  cr_assert_eq(walrus_iter_open(w, 0, &it), WALRUS_OK);
  uint64_t seen = 0;
  for (;;) {
    memset(&e, 0, sizeof e);
    rc = walrus_iter_next(it, &e);
    if (rc != WALRUS_OK) break;
    seen++;
    tu_check_entry(&e, seen, SEED, SEALED_MAX);
  }
  cr_assert_eq(rc, WALRUS_ECHECKSUM,
               "iteration ended with %s after %" PRIu64 " entries",
               walrus_errname(rc), seen);
  cr_assert_eq(seen, bad_index - 1);
  walrus_iter_close(it);
  /* Iteration from after it reads to the end. */
  cr_assert_eq(walrus_iter_open(w, bad_index + 1, &it), WALRUS_OK);
  seen = bad_index;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    seen++;
    tu_check_entry(&e, seen, SEED, SEALED_MAX);
  }
  cr_assert_eq(rc, WALRUS_DONE, "%s", walrus_errname(rc));
  cr_assert_eq(seen, (uint64_t)SEALED_N);
  walrus_iter_close(it);
  /* The log still takes appends. */
  tu_append_n(w, 3, SEED, SEALED_MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  assert_file_is(path, before, len, "sealed segment after open and read");
  free(before);
  (void)nseg;

  /* Damage in a sealed record's header: checksum or corruption, never
   * the wrong entry. */
  uint64_t r2 = r > 0 ? r - 1 : r + 1;
  uint64_t hdr_index = s->first + r2;
  tu_flip_bit(path, s->rec_off[r2] + 8, 1); /* the index field */
  w = tu_open(dir, &cfg);
  memset(&e, 0, sizeof e);
  rc = walrus_get(w, hdr_index, &e);
  cr_assert(rc == WALRUS_ECHECKSUM || rc == WALRUS_ECORRUPT,
            "get of entry %" PRIu64 " with a damaged index field: %s",
            hdr_index, walrus_errname(rc));
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  free(dir);
  tu_tmpdir_remove(root);
}

/* Every byte of a sealed segment's trailer matters: open fails. */
Test(recovery, sealed_trailer_damage) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  size_t nseg = build_sealed(dir, g_segs, 64);
  cr_assert_geq(nseg, 3u);
  for (size_t which = 0; which < 2; which++) {
    const seginfo_t *s = &g_segs[which == 0 ? 0 : 1];
    const char *path = tu_path(dir, s->name);
    for (uint64_t b = 0; b < WALRUS__TRAILER_BYTES; b++) {
      uint64_t off = s->size - WALRUS__TRAILER_BYTES + b;
      tu_flip_bit(path, off, (unsigned)(b % 8));
      size_t len;
      unsigned char *before = tu_read_file(path, &len);
      walrus_config_t cfg;
      config(&cfg, 4096);
      walrus_t *w;
      char msg[512];
      int rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
      cr_assert_eq(rc, WALRUS_ECORRUPT,
                   "trailer byte %" PRIu64 " of %s flipped: open %s", b,
                   s->name, walrus_errname(rc));
      cr_assert(strstr(msg, s->name) != NULL,
                "trailer damage: message does not name %s: \"%s\"", s->name,
                msg);
      cfg.recovery = WALRUS_RECOVER_STRICT;
      rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
      cr_assert_eq(rc, WALRUS_ECORRUPT, "strict: %s", walrus_errname(rc));
      assert_file_is(path, before, len, "segment with a damaged trailer");
      free(before);
      tu_flip_bit(path, off, (unsigned)(b % 8)); /* repair */
    }
  }
  /* Repaired, it opens and reads. */
  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  tu_check_range(w, 1, SEALED_N, SEED, SEALED_MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  free(dir);
  tu_tmpdir_remove(root);
}

/* A missing middle segment is a gap: WALRUS_ECORRUPT naming it. */
Test(recovery, missing_middle_segment) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  size_t nseg = build_sealed(dir, g_segs, 64);
  const seginfo_t *gone = &g_segs[2];
  const seginfo_t *next = &g_segs[3];
  cr_assert_lt(3u, nseg + 0u);
  char *gone_path = strdup(tu_path(dir, gone->name));
  char *keep_path = strdup(tu_path(root, "gone.seg"));
  size_t glen;
  unsigned char *gbytes = tu_read_file(gone_path, &glen);
  tu_write_file(keep_path, gbytes, glen);
  free(gbytes);
  cr_assert_eq(remove(gone_path), 0);

  static const struct {
    const char *name;
    walrus_recovery_t mode;
    int read_only;
  } modes[] = {{"tail", WALRUS_RECOVER_TAIL, 0},
               {"strict", WALRUS_RECOVER_STRICT, 0},
               {"read-only", WALRUS_RECOVER_TAIL, 1}};
  for (size_t mi = 0; mi < 3; mi++) {
    walrus_config_t cfg;
    config(&cfg, 4096);
    cfg.recovery = modes[mi].mode;
    cfg.read_only = modes[mi].read_only;
    walrus_t *w;
    char msg[512];
    int rc = open_msg(dir, &cfg, &w, msg, sizeof msg);
    cr_assert_eq(rc, WALRUS_ECORRUPT, "%s open without %s: %s", modes[mi].name,
                 gone->name, walrus_errname(rc));
    cr_assert(msg_has_number(msg, gone->first) ||
                  strstr(msg, next->name) != NULL ||
                  strstr(msg, gone->name) != NULL,
              "%s open: the message does not name the gap at %" PRIu64
              " (before %s): \"%s\"",
              modes[mi].name, gone->first, next->name, msg);
  }
  cr_assert_eq(tu_segments(dir, NULL), nseg - 1);

  /* Put it back: the log is whole again. */
  size_t klen;
  unsigned char *kbytes = tu_read_file(keep_path, &klen);
  tu_write_file(gone_path, kbytes, klen);
  free(kbytes);
  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  tu_check_range(w, 1, SEALED_N, SEED, SEALED_MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  free(gone_path);
  free(keep_path);
  free(dir);
  tu_tmpdir_remove(root);
}

/* SALVAGE over a missing middle segment: prefix kept, the rest moved. */
Test(recovery, salvage_missing_middle_segment) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  size_t nseg = build_sealed(dir, g_segs, 64);
  const size_t gone = 2;
  cr_assert_eq(remove(tu_path(dir, g_segs[gone].name)), 0);
  /* Keep the bytes of the segments that must be moved. */
  unsigned char *bytes[64];
  size_t lens[64];
  char *moved[64];
  for (size_t s = gone + 1; s < nseg; s++)
    bytes[s] = tu_read_file(tu_path(dir, g_segs[s].name), &lens[s]);

  walrus_config_t cfg;
  config(&cfg, 4096);
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  walrus_t *w = tu_open(dir, &cfg);
  uint64_t kept = g_segs[gone].first - 1;
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), kept,
               "salvage kept up to %" PRIu64 ", want %" PRIu64,
               walrus_last_index(w), kept);
  tu_check_range(w, 1, kept, SEED, SEALED_MAX);
  char *salvage = strdup(tu_path(dir, "salvage"));
  for (size_t s = gone + 1; s < nseg; s++) {
    cr_assert(!tu_exists(tu_path(dir, g_segs[s].name)), "%s still in the log",
              g_segs[s].name);
    moved[s] = find_moved(salvage, g_segs[s].name);
    cr_assert_not_null(moved[s], "%s not in salvage/", g_segs[s].name);
    assert_file_is(moved[s], bytes[s], lens[s], "segment moved to salvage/");
  }
  /* Appends continue from kept + 1 and survive a reopen. */
  tu_append_n(w, 40, SEED, SEALED_MAX);
  cr_assert_eq(walrus_last_index(w), kept + 40);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  config(&cfg, 4096);
  w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_last_index(w), kept + 40);
  tu_check_range(w, 1, kept + 40, SEED, SEALED_MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  for (size_t s = gone + 1; s < nseg; s++) {
    assert_file_is(moved[s], bytes[s], lens[s], "salvage/ after appends");
    free(bytes[s]);
    free(moved[s]);
  }
  free(salvage);
  free(dir);
  tu_tmpdir_remove(root);
}

/* A segment of another log, in the middle or at the tail: refused. */
Test(recovery, foreign_segment) {
  char *root = tu_tmpdir();
  char *a = strdup(tu_path(root, "a"));
  char *b = strdup(tu_path(root, "b"));
  char *work = strdup(tu_path(root, "work"));
  static seginfo_t bsegs[64];
  size_t na = build_sealed(a, g_segs, 64);
  size_t nb = build_sealed(b, bsegs, 64);
  /* Same entries, same segment boundaries, different log ids. */
  cr_assert_eq(na, nb);
  size_t picks[2] = {1, na - 1};
  for (size_t p = 0; p < 2; p++) {
    size_t s = picks[p];
    cr_assert_str_eq(g_segs[s].name, bsegs[s].name);
    tu_rmrf(work);
    tu_copy_dir(a, work);
    size_t len;
    unsigned char *foreign = tu_read_file(tu_path(b, bsegs[s].name), &len);
    tu_write_file(tu_path(work, g_segs[s].name), foreign, len);
    walrus_config_t cfg;
    config(&cfg, 4096);
    walrus_t *w;
    char msg[512];
    int rc = open_msg(work, &cfg, &w, msg, sizeof msg);
    cr_assert_eq(rc, WALRUS_ECORRUPT, "%s segment %s from another log: %s",
                 p == 0 ? "middle" : "tail", g_segs[s].name,
                 walrus_errname(rc));
    cr_assert(strstr(msg, g_segs[s].name) != NULL,
              "message does not name %s: \"%s\"", g_segs[s].name, msg);
    assert_file_is(tu_path(work, g_segs[s].name), foreign, len,
                   "foreign segment after a refused open");
    free(foreign);
  }
  free(a);
  free(b);
  free(work);
  tu_tmpdir_remove(root);
}

/* ---- leftover temporary files -------------------------------------------- */

Test(recovery, leftover_tmp_files) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  tu_append_n(w, 60, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  char **names;
  size_t nseg = tu_segments(dir, &names);
  cr_assert_geq(nseg, 2u);
  /* A half-made next segment: a copy of a real header, under the name the
   * next rotation would use, and one with garbage under an older name. */
  size_t len;
  unsigned char *seg0 = tu_read_file(tu_path(dir, names[0]), &len);
  char next_tmp[64];
  snprintf(next_tmp, sizeof next_tmp, "%020llu.seg.tmp", 61ull);
  tu_write_file(tu_path(dir, next_tmp), seg0, WALRUS__SEG_HEADER_BYTES);
  unsigned char junk[100];
  fill_random(junk, sizeof junk, 7);
  tu_write_file(tu_path(dir, "00000000000000000005.seg.tmp"), junk,
                sizeof junk);
  size_t mlen;
  unsigned char *meta = tu_read_file(tu_path(dir, "META"), &mlen);
  cr_assert_eq(mlen, (size_t)WALRUS__META_BYTES);
  unsigned char meta_tmp[WALRUS__META_BYTES];
  memcpy(meta_tmp, meta, sizeof meta_tmp);
  walrus__put64(meta_tmp + 32, 40); /* a first index that was never made */
  tu_write_file(tu_path(dir, "META.tmp"), meta_tmp, sizeof meta_tmp);

  /* Read-only: ignored and left alone. */
  config(&cfg, 4096);
  cfg.read_only = 1;
  w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 60u);
  tu_check_range(w, 1, 60, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert(tu_exists(tu_path(dir, next_tmp)));
  cr_assert(tu_exists(tu_path(dir, "00000000000000000005.seg.tmp")));
  cr_assert(tu_exists(tu_path(dir, "META.tmp")));

  /* Writable: ignored for content, removed from the directory. */
  config(&cfg, 4096);
  w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 60u);
  tu_check_range(w, 1, 60, SEED, 100);
  cr_assert(!tu_exists(tu_path(dir, next_tmp)), "%s not removed", next_tmp);
  cr_assert(!tu_exists(tu_path(dir, "00000000000000000005.seg.tmp")));
  cr_assert(!tu_exists(tu_path(dir, "META.tmp")), "META.tmp not removed");
  /* Appends go on through rotations. */
  tu_append_n(w, 60, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(dir, &cfg);
  tu_check_range(w, 1, 120, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  tu_strv_free(names);
  free(seg0);
  free(meta);
  free(dir);
  tu_tmpdir_remove(root);
}

/* An empty log left with the first segment half made (crash during the
 * first append's segment creation): it opens empty and takes index 1. */
Test(recovery, leftover_first_segment_tmp) {
  char *root = tu_tmpdir();
  char *dir = strdup(tu_path(root, "log"));
  char *other = strdup(tu_path(root, "other"));
  walrus_config_t cfg;
  config(&cfg, 4096);
  walrus_t *w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert_eq(tu_segments(dir, NULL), 0u);
  /* A real segment header of another log, as a .tmp under the name the
   * first append will create. */
  w = tu_open(other, &cfg);
  tu_append_n(w, 1, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  size_t len;
  unsigned char *hdr = tu_read_file(tu_path(other, SEG1), &len);
  tu_write_file(tu_path(dir, SEG1 ".tmp"), hdr, WALRUS__SEG_HEADER_BYTES);
  free(hdr);
  w = tu_open(dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1u);
  tu_append_n(w, 5, SEED2, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(dir, &cfg);
  tu_check_range(w, 1, 5, SEED2, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert(!tu_exists(tu_path(dir, SEG1 ".tmp")));
  free(dir);
  free(other);
  tu_tmpdir_remove(root);
}
