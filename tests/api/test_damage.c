/*
 * test_damage.c: every single-bit flip and every truncation of every file of
 * a small log (contract line 3: honest about damage, never wrong bytes,
 * never crash).
 *
 * The log: 4 KiB segments, so a few sealed segments and an unsealed tail;
 * single appends, a batch, a committed transaction (entries carry its tx
 * id), a truncate_front (so META holds a first index above 1), more
 * appends, a clean close.  Every entry written is remembered.
 *
 * Then, for each byte of each file (META and every segment), bit
 * (offset % 8) is flipped in a fresh copy of the log; and each file is cut
 * at every length.  Each damaged copy is opened read-only and in TAIL mode
 * (on its own copy).  Whatever happens:
 *  - nothing crashes (the test process would die);
 *  - an open that fails gives a damage code (ECORRUPT, ECHECKSUM, EFORMAT,
 *    ENOSEGMENT, EINDEX, EIO);
 *  - on an open that succeeds, every entry walrus_get() or the iterator
 *    returns is byte-identical to what was written, and the errors are
 *    damage codes;
 *  - the damage is not silently dropped: the first index must not move,
 *    no entry may appear, and if entries are missing from the end, they
 *    must all be the last unit of the last segment, with the damage at or
 *    after that unit's first byte (a torn tail, the one silent repair);
 *    if the damaged byte lies in the checksummed part of an entry's record
 *    that is still in the log, reading that entry must fail.
 *
 * Counts are printed: cases, reported at open, reported at read, cut as a
 * torn tail, harmless (bytes no entry depends on: padding, a sync mark),
 * and violations.  WALRUS_SOAK is not needed: the full sweep takes seconds.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util.h"
#include "walrus.h"

#define SEED 0xDA4A6Eu
#define MAXLEN 150
#define MAX_ENTRIES 256
#define TXID_LEN 35

/* What was written at each index. */
typedef struct ref {
  int present;
  uint64_t term;
  int64_t ts;
  uint16_t type;
  char tx[64]; /* "" for none */
  unsigned char data[MAXLEN + 16];
  size_t len;
} ref_t;

static ref_t refs[MAX_ENTRIES];
static uint64_t ref_first, ref_last;

/* One record of a segment file, as the layout says. */
typedef struct rec_span {
  uint64_t off, end;     /* [off, end): the record with its padding */
  uint64_t covered_end;  /* off + 40 + body_len: what the crc covers */
  uint64_t index;
  uint8_t flags;
} rec_span_t;

typedef struct seg_file {
  char name[64];
  unsigned char *bytes;
  size_t len;
  rec_span_t recs[MAX_ENTRIES];
  size_t nrecs;
  int sealed;
} seg_file_t;

static seg_file_t segs[16];
static size_t nsegs;
static unsigned char *meta_bytes;
static size_t meta_len;
/* The last unit of the last segment: its first entry and first byte. */
static uint64_t lastunit_first_index, lastunit_off;
/* The offset after the last entry record of the last segment. */

typedef struct counts {
  uint64_t cases, open_failed, read_failed, torn_cut, harmless, violations;
} counts_t;

static int damage_code(int rc) {
  return rc == WALRUS_ECHECKSUM || rc == WALRUS_ECORRUPT ||
         rc == WALRUS_EINDEX || rc == WALRUS_ENOSEGMENT ||
         rc == WALRUS_EFORMAT || rc == WALRUS_EIO;
}

/* ------------------------------------------------------------------ */
/* Building the log                                                      */
/* ------------------------------------------------------------------ */
static void remember(uint64_t idx, const walrus_entry_t *e) {
  cr_assert_lt(idx, MAX_ENTRIES);
  ref_t *r = &refs[idx];
  r->present = 1;
  r->term = e->term;
  r->ts = e->timestamp_ns;
  r->type = e->type;
  snprintf(r->tx, sizeof r->tx, "%s", e->tx_id ? e->tx_id : "");
  cr_assert_leq(e->len, sizeof r->data);
  memcpy(r->data, e->data, e->len);
  r->len = e->len;
}

static void append_one(walrus_t *w, uint64_t i) {
  unsigned char buf[MAXLEN];
  walrus_entry_t e;
  tu_entry_set(&e, i, SEED, MAXLEN, buf);
  uint64_t got = 0;
  TU_OK(w, walrus_append(w, &e, &got));
  cr_assert_eq(got, i);
  remember(i, &e);
}

static void build_log(const char *dir) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  cfg.buffer_bytes = 4096;
  cfg.sync = WALRUS_SYNC_NONE;
  walrus_t *w = tu_open(dir, &cfg);
  uint64_t i = 1;
  for (; i <= 40; i++) append_one(w, i);

  /* A batch of 6. */
  walrus_entry_t be[6];
  unsigned char bbuf[6][MAXLEN];
  for (int k = 0; k < 6; k++) tu_entry_set(&be[k], i + (uint64_t)k, SEED, MAXLEN, bbuf[k]);
  uint64_t first = 0;
  TU_OK(w, walrus_write_batch(w, be, 6, &first));
  cr_assert_eq(first, i);
  for (int k = 0; k < 6; k++) remember(i + (uint64_t)k, &be[k]);
  i += 6;

  /* A transaction of 4: its entries carry the id. */
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  unsigned char tbuf[4][MAXLEN];
  walrus_entry_t te[4];
  for (int k = 0; k < 4; k++) {
    tu_entry_set(&te[k], i + (uint64_t)k, SEED, MAXLEN, tbuf[k]);
    TU_OK(w, walrus_tx_add(w, &id, &te[k]));
  }
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(first, i);
  cr_assert_eq(count, 4);
  for (int k = 0; k < 4; k++) {
    te[k].tx_id = id.s;
    remember(i + (uint64_t)k, &te[k]);
  }
  i += 4;

  for (int k = 0; k < 20; k++, i++) append_one(w, i);
  /* Drop a prefix: META now says the first index is 6 (segment 1 stays). */
  TU_OK(w, walrus_truncate_front(w, 6));
  for (uint64_t k = 1; k < 6; k++) refs[k].present = 0;
  for (int k = 0; k < 8; k++, i++) append_one(w, i);
  /* The last unit: a batch of 3, so a torn tail loses more than one. */
  for (int k = 0; k < 3; k++) tu_entry_set(&be[k], i + (uint64_t)k, SEED, MAXLEN, bbuf[k]);
  TU_OK(w, walrus_write_batch(w, be, 3, &first));
  for (int k = 0; k < 3; k++) remember(i + (uint64_t)k, &be[k]);
  i += 3;
  ref_first = 6;
  ref_last = i - 1;
  cr_assert_eq(walrus_first_index(w), ref_first);
  cr_assert_eq(walrus_last_index(w), ref_last);
  TU_OK(w, walrus_close(w));
}

/* Read the files and map every segment's records. */
static void map_log(const char *dir) {
  char **names = NULL;
  nsegs = tu_segments(dir, &names);
  cr_assert_geq(nsegs, 3, "want sealed segments and a tail, got %zu", nsegs);
  cr_assert_leq(nsegs, sizeof segs / sizeof segs[0]);
  for (size_t s = 0; s < nsegs; s++) {
    seg_file_t *sf = &segs[s];
    snprintf(sf->name, sizeof sf->name, "%s", names[s]);
    sf->bytes = tu_read_file(tu_path(dir, names[s]), &sf->len);
    walrus__seg_header_t h;
    cr_assert_eq(walrus__fmt_seg_header_decode(sf->bytes, &h), WALRUS__FMT_OK);
    uint64_t off = WALRUS__SEG_HEADER_BYTES;
    sf->nrecs = 0;
    while (off + WALRUS__REC_HEADER_BYTES <= sf->len) {
      walrus__rec_t r;
      if (walrus__rec_check(h.salt, sf->bytes + off, sf->len - off, &r) !=
          WALRUS__FMT_OK)
        break;
      cr_assert_lt(sf->nrecs, MAX_ENTRIES);
      rec_span_t *rs = &sf->recs[sf->nrecs++];
      rs->off = off;
      rs->end = off + walrus__rec_size(r.body_len);
      rs->covered_end = off + WALRUS__REC_HEADER_BYTES + r.body_len;
      rs->index = r.index;
      rs->flags = r.flags;
      off = rs->end;
      if (r.flags & WALRUS__REC_INDEX) {
        sf->sealed = 1;
        break;
      }
    }
    if (sf->sealed)
      cr_assert_eq(off + WALRUS__TRAILER_BYTES, sf->len,
                   "%s: trailer not right after the index record", sf->name);
  }
  tu_strv_free(names);
  cr_assert(!segs[nsegs - 1].sealed, "the last segment should be unsealed");
  cr_assert(segs[0].sealed && segs[1].sealed);
  meta_bytes = tu_read_file(tu_path(dir, "META"), &meta_len);

  /* The last unit of the last segment: walk back from the last entry
   * record to the record with FIRST. */
  seg_file_t *t = &segs[nsegs - 1];
  lastunit_off = 0;
  for (size_t k = t->nrecs; k-- > 0;) {
    const rec_span_t *rs = &t->recs[k];
    if (rs->flags & (WALRUS__REC_MARK | WALRUS__REC_INDEX)) continue;
    if (rs->flags & WALRUS__REC_FIRST) {
      lastunit_off = rs->off;
      lastunit_first_index = rs->index;
      break;
    }
  }
  cr_assert_neq(lastunit_off, 0);
  cr_assert_eq(lastunit_first_index, ref_last - 2);
}

/* ------------------------------------------------------------------ */
/* Checking one damaged copy                                             */
/* ------------------------------------------------------------------ */
static int entry_matches(const walrus_entry_t *e, uint64_t idx) {
  const ref_t *r = &refs[idx];
  if (!r->present || e->index != idx || e->term != r->term ||
      e->timestamp_ns != r->ts || e->type != r->type || e->len != r->len)
    return 0;
  if (e->len > 0 && memcmp(e->data, r->data, e->len) != 0) return 0;
  if (r->tx[0] == 0) return e->tx_id == NULL;
  return e->tx_id != NULL && strcmp(e->tx_id, r->tx) == 0;
}

static void violation(counts_t *c, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(counts_t *c, const char *what, const char *fmt, ...) {
  c->violations++;
  if (c->violations <= 25) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "VIOLATION (%s): ", what);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
}

/* Where the damage is: file (segment number, or -1 for META) and the
 * first damaged offset; for truncation, the new length. */
typedef struct damage {
  int seg;             /* -1: META */
  uint64_t off;        /* flipped byte, or the cut length */
  int is_cut;
  char desc[256];
} damage_t;

/* The entry record of segment seg whose checksummed bytes hold off. */
static const rec_span_t *covered_entry(int seg, uint64_t off) {
  if (seg < 0) return NULL;
  const seg_file_t *sf = &segs[seg];
  for (size_t k = 0; k < sf->nrecs; k++) {
    const rec_span_t *rs = &sf->recs[k];
    if (off >= rs->off && off < rs->covered_end &&
        !(rs->flags & (WALRUS__REC_MARK | WALRUS__REC_INDEX)))
      return rs;
  }
  return NULL;
}

/* Classify one open mode's result; returns what happened:
 * 0 harmless, 1 open failed, 2 read failed, 3 torn cut. */
static int check_open(const char *dir, int read_only, int zero_copy,
                      const damage_t *d, counts_t *c) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = read_only;
  cfg.zero_copy = zero_copy;
  cfg.create_if_missing = 0;
  cfg.recovery = WALRUS_RECOVER_TAIL;
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.segment_bytes = 4096;
  walrus_t *w = NULL;
  char msg[256] = "";
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  const char *mode = zero_copy ? "read-only mapped"
                     : read_only ? "read-only" : "TAIL";
  if (rc != WALRUS_OK) {
    if (!damage_code(rc))
      violation(c, "open code", "%s, %s open: %s (%s)", d->desc, mode,
                walrus_errname(rc), msg);
    return 1;
  }
  uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
  int read_failed = 0;
  if (first != ref_first && !(last == 0 && first == 0))
    violation(c, "first moved", "%s, %s: first %" PRIu64 ", want %" PRIu64,
              d->desc, mode, first, ref_first);
  if (last > ref_last)
    violation(c, "entries appeared", "%s, %s: last %" PRIu64 " > %" PRIu64,
              d->desc, mode, last, ref_last);

  /* walrus_get over everything that was written. */
  for (uint64_t i = ref_first; i <= ref_last; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    int g = walrus_get(w, i, &e);
    if (g == WALRUS_OK) {
      if (i > last)
        violation(c, "get past last", "%s, %s: get(%" PRIu64 ") OK, last %" PRIu64,
                  d->desc, mode, i, last);
      if (!entry_matches(&e, i))
        violation(c, "WRONG BYTES", "%s, %s: walrus_get(%" PRIu64 ") returned "
                  "an entry that differs from what was written",
                  d->desc, mode, i);
      walrus_entry_free(&e);
    } else if (i <= last) {
      read_failed = 1;
      if (!damage_code(g))
        violation(c, "get code", "%s, %s: get(%" PRIu64 ") = %s", d->desc,
                  mode, i, walrus_errname(g));
    } else if (g != WALRUS_EINDEX) {
      violation(c, "get code", "%s, %s: get(%" PRIu64 ") past last = %s",
                d->desc, mode, i, walrus_errname(g));
    }
    if (zero_copy) {
      /* A view of the same entry: the same verdict, the same bytes. */
      walrus_view_t v;
      int gv = walrus_get_view(w, i, &v);
      if (gv != g)
        violation(c, "view code", "%s, %s: get_view(%" PRIu64 ") = %s, "
                  "get = %s", d->desc, mode, i, walrus_errname(gv),
                  walrus_errname(g));
      if (gv == WALRUS_OK) {
        if (!entry_matches(&v.entry, i))
          violation(c, "WRONG BYTES", "%s, %s: walrus_get_view(%" PRIu64
                    ") returned an entry that differs from what was "
                    "written", d->desc, mode, i);
        walrus_view_release(&v);
      }
    }
  }

  /* The iterator: the same entries, in order, until the first error. */
  walrus_iter_t *it = NULL;
  int irc = walrus_iter_open(w, 0, &it);
  if (irc == WALRUS_OK) {
    uint64_t want = first;
    for (;;) {
      walrus_entry_t e;
      int n = walrus_iter_next(it, &e);
      if (n == WALRUS_DONE) {
        if (last != 0 && want != last + 1)
          violation(c, "iterator", "%s, %s: done at %" PRIu64 ", last %" PRIu64,
                    d->desc, mode, want, last);
        break;
      }
      if (n != WALRUS_OK) {
        read_failed = 1;
        if (!damage_code(n))
          violation(c, "iter code", "%s, %s: iter_next = %s", d->desc, mode,
                    walrus_errname(n));
        break;
      }
      if (e.index != want || !entry_matches(&e, want)) {
        violation(c, "WRONG BYTES", "%s, %s: iterator entry %" PRIu64
                  " (want %" PRIu64 ") differs from what was written",
                  d->desc, mode, e.index, want);
        break;
      }
      if (want > ref_last + 1) break;
      want++;
    }
    walrus_iter_close(it);
  } else if (!(irc == WALRUS_EINDEX && last == 0)) {
    violation(c, "iter_open", "%s, %s: iter_open = %s", d->desc, mode,
              walrus_errname(irc));
  }
  walrus_close(w);

  /* Was the damage silently dropped? */
  const rec_span_t *hit = covered_entry(d->seg, d->off);
  if (!d->is_cut && hit != NULL && hit->index >= ref_first &&
      hit->index <= last && !read_failed)
    violation(c, "undetected", "%s, %s: checksummed byte of entry %" PRIu64
              " flipped, yet every read succeeded", d->desc, mode,
              hit->index);
  if (last < ref_last && d->is_cut && d->seg == (int)nsegs - 1) {
    /* Cutting the unsealed tail segment short is exactly what a crash
     * before those writes leaves: no reader can tell, so the entries after
     * the cut going away is the torn-tail repair (what stays was checked
     * above to be a prefix with the right bytes). */
    return read_failed ? 2 : 3;
  }
  if (last < ref_last) {
    /* Only the last unit of the last segment may go, and only when the
     * damage is at or after its first byte. */
    int tail_seg = d->seg == (int)nsegs - 1;
    if (!(tail_seg && last + 1 >= lastunit_first_index &&
          d->off >= lastunit_off)) {
      violation(c, "silently dropped", "%s, %s: open OK but last is %" PRIu64
                " (was %" PRIu64 "): entries dropped without an error",
                d->desc, mode, last, ref_last);
      return 2;
    }
    return read_failed ? 2 : 3;
  }
  return read_failed ? 2 : 0;
}

static void tally(counts_t *c, int r) {
  switch (r) {
    case 0: c->harmless++; break;
    case 1: c->open_failed++; break;
    case 2: c->read_failed++; break;
    default: c->torn_cut++; break;
  }
}

/* The pristine log, and two scratch copies. */
static char *root;
static char pristine[4096], work_ro[4096], work_tail[4096];

static void restore(const char *dir, int seg, const unsigned char *bytes,
                    size_t len) {
  tu_rmrf(dir);
  tu_copy_dir(pristine, dir);
  const char *name = seg < 0 ? "META" : segs[seg].name;
  tu_write_file(tu_path(dir, name), bytes, len);
}

/* Each case is opened read-only (reads with pread, then again through
 * mappings: cfg.zero_copy) and read-write with TAIL recovery. */
static void run_case(int seg, const unsigned char *bytes, size_t len,
                     const damage_t *d, counts_t *ro, counts_t *mapped,
                     counts_t *tail) {
  restore(work_ro, seg, bytes, len);
  tally(ro, check_open(work_ro, 1, 0, d, ro));
  ro->cases++;
  tally(mapped, check_open(work_ro, 1, 1, d, mapped));
  mapped->cases++;
  restore(work_tail, seg, bytes, len);
  tally(tail, check_open(work_tail, 0, 0, d, tail));
  tail->cases++;
}

static void print_counts(const char *what, const char *mode,
                         const counts_t *c) {
  fprintf(stderr,
          "damage %-10s %-9s: %6" PRIu64 " cases, %6" PRIu64
          " reported at open, %6" PRIu64 " reported at read, %5" PRIu64
          " cut as torn tail, %5" PRIu64 " harmless, %" PRIu64
          " violations\n",
          what, mode, c->cases, c->open_failed, c->read_failed, c->torn_cut,
          c->harmless, c->violations);
}

static void setup(void) {
  /* Tens of thousands of opens, each of which may fsync a cut: on a disk
   * that takes minutes, in a tmpfs seconds.  The POSIX back end is the
   * same either way.  WALRUS_DAMAGE_TMPDIR overrides. */
  const char *tmp = getenv("WALRUS_DAMAGE_TMPDIR");
  if (tmp == NULL && tu_exists("/dev/shm")) tmp = "/dev/shm";
  if (tmp != NULL) setenv("TMPDIR", tmp, 1);
  root = tu_tmpdir();
  snprintf(pristine, sizeof pristine, "%s/pristine", root);
  snprintf(work_ro, sizeof work_ro, "%s/ro", root);
  snprintf(work_tail, sizeof work_tail, "%s/tail", root);
  memset(refs, 0, sizeof refs);
  build_log(pristine);
  /* LOCK is not damage-tested; it is empty. */
  map_log(pristine);
}

static void teardown(void) {
  for (size_t s = 0; s < nsegs; s++) free(segs[s].bytes);
  free(meta_bytes);
  tu_tmpdir_remove(root);
}

TestSuite(damage, .init = setup, .fini = teardown, .timeout = 600);

/* The pristine log reads back exactly: the reference is right. */
Test(damage, pristine_reads_back) {
  counts_t c = {0};
  damage_t d = {.seg = -2, .off = 0, .is_cut = 0};
  snprintf(d.desc, sizeof d.desc, "no damage");
  restore(work_ro, -1, meta_bytes, meta_len);
  cr_assert_eq(check_open(work_ro, 1, 0, &d, &c), 0);
  cr_assert_eq(check_open(work_ro, 1, 1, &d, &c), 0);
  restore(work_tail, -1, meta_bytes, meta_len);
  cr_assert_eq(check_open(work_tail, 0, 0, &d, &c), 0);
  cr_assert_eq(c.violations, 0);
  fprintf(stderr, "damage: log of %zu segments (last unsealed), META %zu "
          "bytes, entries %" PRIu64 "..%" PRIu64 "\n",
          nsegs, meta_len, ref_first, ref_last);
}

Test(damage, bit_flips) {
  counts_t ro = {0}, mapped = {0}, tail = {0};
  for (int seg = -1; seg < (int)nsegs; seg++) {
    const unsigned char *orig = seg < 0 ? meta_bytes : segs[seg].bytes;
    size_t len = seg < 0 ? meta_len : segs[seg].len;
    unsigned char *buf = malloc(len);
    cr_assert_not_null(buf);
    for (size_t off = 0; off < len; off++) {
      memcpy(buf, orig, len);
      buf[off] ^= (unsigned char)(1u << (off % 8));
      damage_t d = {.seg = seg, .off = off, .is_cut = 0};
      snprintf(d.desc, sizeof d.desc, "bit %zu of byte %zu of %s (%zu bytes)",
               off % 8, off, seg < 0 ? "META" : segs[seg].name, len);
      run_case(seg, buf, len, &d, &ro, &mapped, &tail);
    }
    free(buf);
  }
  print_counts("bit flips", "read-only", &ro);
  print_counts("bit flips", "mapped", &mapped);
  print_counts("bit flips", "TAIL", &tail);
  cr_assert_eq(ro.violations + mapped.violations + tail.violations, 0,
               "%" PRIu64 " violations (the first ones are printed above)",
               ro.violations + mapped.violations + tail.violations);
}

Test(damage, truncations) {
  counts_t ro = {0}, mapped = {0}, tail = {0};
  for (int seg = -1; seg < (int)nsegs; seg++) {
    const unsigned char *orig = seg < 0 ? meta_bytes : segs[seg].bytes;
    size_t len = seg < 0 ? meta_len : segs[seg].len;
    for (size_t cut = 0; cut < len; cut++) {
      damage_t d = {.seg = seg, .off = cut, .is_cut = 1};
      snprintf(d.desc, sizeof d.desc, "%s cut to %zu of %zu bytes",
               seg < 0 ? "META" : segs[seg].name, cut, len);
      run_case(seg, orig, cut, &d, &ro, &mapped, &tail);
    }
  }
  print_counts("truncation", "read-only", &ro);
  print_counts("truncation", "mapped", &mapped);
  print_counts("truncation", "TAIL", &tail);
  cr_assert_eq(ro.violations + mapped.violations + tail.violations, 0,
               "%" PRIu64 " violations (the first ones are printed above)",
               ro.violations + mapped.violations + tail.violations);
}
