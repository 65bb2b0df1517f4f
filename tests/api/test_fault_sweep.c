/*
 * test_fault_sweep.c: the systematic fault sweep.
 *
 * For every SCENARIO (an append, a batch, a transaction, rotation, retention,
 * truncate_front, truncate_back at a boundary / inside a segment / inside a
 * batch, reset, reads, close, walrus_open of a new, clean, torn, sealed or
 * half-truncated log; with mapped writes (cfg.mapped_writes, SYNC_NONE):
 * appends that map and seal several preallocated tails, truncate_back
 * inside the mapped tail or below it (removing it), either followed by
 * appends, reset, and close) and every FAULT
 * (EIO, short write and ENOSPC on pwrite; ENOSPC, EIO and EOPNOTSUPP on
 * allocate; EIO, ENOMEM and EOPNOTSUPP on map; EIO on unmap, sync, pread,
 * rename, unlink, truncate, sync_dir and open; out of memory through the
 * allocator hooks; and, in the truncate_back scenarios, ENOMEM on open), it
 * fails the Nth matching call for N = 1, 2, ... until the scenario runs
 * without the fault firing, and after every failure checks:
 *
 *  (a) the call returned the specific code of the failed VFS call, never
 *      WALRUS_OK; except for the faults walrus recovers from by itself (an
 *      allocate or map that is not supported: it goes back to pwrite; a
 *      failed unmap: the mapping is gone either way), after which the
 *      operation must succeed in full;
 *  (b) whether the handle is poisoned (every write refused with
 *      WALRUS_EPOISONED, no VFS call made) or usable:
 *       - a write-side failure poisons it: pwrite, sync, truncate, rename,
 *         unlink, sync_dir and allocate; and any failure (an open, a pread,
 *         the file system out of memory) once walrus_truncate_back has
 *         recorded its intent (renamed META.tmp over META);
 *       - out of memory (in walrus' own allocations, anywhere; in the file
 *         system, before that intent), any failure of a read-only
 *         operation, and a failed pread while walrus_truncate_back loads
 *         the index of the sealed segment it will cut (before its intent)
 *         leave it usable;
 *       - any other failed open before that intent (of the segment to cut,
 *         or creating META.tmp), and a failed map (which changes no byte
 *         of the log), may do either;
 *      a handle left usable by a failure must show the log exactly as it
 *      was before the failed call (it had no effect), read back right, take
 *      a further append, and reopen as exactly that; and walrus must have
 *      kept the VFS map contract throughout (no close or truncate of a
 *      mapped file, no unmap without its file: vf_misuse());
 *  (c) closed and reopened through the plain POSIX VFS, the log holds the
 *      operation entirely or not at all (a failed transaction commit: not
 *      at all; a failed open: exactly the log it was opening), every entry
 *      acknowledged before it byte for byte (under SYNC_NONE too: the
 *      process did not crash, so what was stored into a mapping is in the
 *      page cache), and takes a further append.
 *
 * A fault-free reference run of each scenario first counts the calls of
 * each kind it makes; the sweep must exercise exactly that many failure
 * points (a fallback to pwrite ends further calls of its kind, but the Nth
 * call is still the one that fails), and each group of scenarios a measured
 * floor of them in total, so the sweep cannot silently shrink.  A table
 * (scenario, fault, failure points) is printed with cr_log_info (run with
 * --verbose to see it).  test_failstop.c keeps the smaller, named
 * fail-stop cases, test_mapped.c the named cases of mapped writes.
 *
 * Under SYNC_ALWAYS (every scenario but the SYNC_NONE ones) new segments
 * are prefilled with zeros (cfg.prefill_segments, on by default), so
 * rotation writes them and sealing cuts them: pwrite and truncate faults
 * hit those calls too.
 *
 * The sweep opens, fails, closes and reopens a log some 2000 times, and
 * every open and write fsyncs.  Scratch directories are therefore made in
 * /dev/shm when it is there (no power loss is simulated here, so
 * durability is not what is tested), else as tu_tmpdir() makes them.
 * WALRUS_SWEEP_VERBOSE=1 prints every run; WALRUS_SWEEP_COLLECT=1 (for
 * diagnosis) goes on after a failed check and lists every failing run.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus.h"

#define SEG_BYTES 4096 /* small segments: rotation happens often */
#define MAXLEN 600     /* payloads are 0..MAXLEN bytes */
#define SEED_BASE 0xBA5Eu  /* entries of the template logs */
#define SEED_OP 0x0B0Bu    /* entries the scenario's operation writes */
#define SEED_USE 0x05E5u   /* the append that shows a handle is usable */
#define SEED_AFTER 0xAF7Eu /* the append after reopening */
#define SEED_PRE 0x9E9Eu   /* entries a scenario's pre step writes */
#define N_BATCH 10
#define N_TX 10
#define N_SEQ 30        /* appends of the rotation and retention scenarios */
#define N_SEQ_NONE 20   /* appends of the SYNC_NONE scenario */
#define N_SEQ_MAPPED 30 /* appends of the mapped scenario: 3+ rotations */
#define N_AFTER_CUT 12  /* appends after the mapped truncate_back */
#define RESET_TO 5000   /* walrus_reset()'s next index */
#define MAX_POINTS 5000 /* a sweep longer than this is a runaway */

/* ---- context for failure messages ------------------------------------- */

/* "scenario / fault / N": every assertion names the run it failed in. */
static char g_ctx[256] = "setup";
static int g_verbose;

/* WALRUS_SWEEP_COLLECT=1 (diagnosis only): a failed check inside a run is
 * printed and the sweep goes on with the next N, so that one run lists
 * every failing combination.  Handles of failed runs are leaked then. */
static int g_collect;
static int g_in_run;
static jmp_buf g_jmp;
static uint64_t g_collected;

/* Handles and the iterator a run holds, released when a check fails so
 * that a failing test does not also report their memory as leaked. */
static walrus_t *g_live[2]; /* [0]: under faults, [1]: plain */
static walrus_iter_t *g_live_it;
static void disarm(void);

static void check_failed(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void check_failed(const char *fmt, ...) {
  char m[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  if (g_collect && g_in_run) {
    fprintf(stderr, "SWEEP FAILURE [%s] %s\n", g_ctx, m);
    g_collected++;
    g_in_run = 0;
    longjmp(g_jmp, 1);
  }
  disarm();
  if (g_live_it != NULL) walrus_iter_close(g_live_it);
  g_live_it = NULL;
  for (int i = 0; i < 2; i++) {
    walrus_t *w = g_live[i];
    g_live[i] = NULL;
    if (w != NULL) walrus_close(w);
  }
  cr_assert_fail("[%s] %s", g_ctx, m);
}

#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) check_failed(__VA_ARGS__); \
  } while (0)

#define ULL(x) ((unsigned long long)(x))

/* ---- an allocator that fails the nth allocation ------------------------- */

static long g_alloc_countdown = -1; /* > 0: fail when it reaches 0 */
static long g_alloc_failed;         /* allocations failed since armed */
static uint64_t g_alloc_calls;      /* allocations made, for the reference */
static uint64_t g_vfs_at_arm;       /* VFS calls made before arming */
static uint64_t g_alloc_failed_at;  /* VFS calls since arming when the
                                       allocation failed, plus one */
static uint64_t vfs_calls(void);

static void *sw_malloc(void *ud, size_t n) {
  (void)ud;
  g_alloc_calls++;
  if (g_alloc_countdown > 0 && --g_alloc_countdown == 0) {
    g_alloc_failed++;
    g_alloc_failed_at = vfs_calls() - g_vfs_at_arm + 1;
    return NULL;
  }
  return malloc(n);
}

static void *sw_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  g_alloc_calls++;
  if (g_alloc_countdown > 0 && --g_alloc_countdown == 0) {
    g_alloc_failed++;
    g_alloc_failed_at = vfs_calls() - g_vfs_at_arm + 1;
    return NULL;
  }
  return realloc(p, n);
}

static void sw_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

static walrus_allocator_t g_alloc = {sw_malloc, sw_realloc, sw_free, NULL};

/* ---- the faults ----------------------------------------------------------- */

typedef enum fmode { FM_FAIL, FM_SHORT, FM_OOM } fmode_t;

typedef struct fault_s {
  const char *name;
  vf_method_t m; /* the VFS call failed (VF_ANY for out of memory) */
  fmode_t mode;
  int err;       /* what the VFS returns */
  int code;      /* what the failing walrus call must return; WALRUS_OK:
                    walrus copes by itself and the call must succeed */
  int code2;     /* another acceptable code, or WALRUS_OK for none */
  int back_only; /* swept only over the walrus_truncate_back scenarios */
} fault_t;

/* The codes are walrus_vfs.h's mapping: a failed pwrite is EIO_WRITE
 * (ENOSPC for -ENOSPC), a failed sync EIO_FSYNC, a failed pread EIO_READ;
 * the header documents WALRUS_EIO for a file or directory operation
 * (rename, unlink, open), src/vfs.c maps truncate, allocate and map to
 * EIO_WRITE (allocate's -ENOSPC to ENOSPC, map's -ENOMEM to ENOMEM) and a
 * directory fsync to EIO_FSYNC.  allocate, map and unmap are called only
 * with mapped writes (FORMAT.md section 9.3): allocate and map
 * -EOPNOTSUPP mean "cannot", and walrus writes with pwrite instead; a
 * failed unmap is only logged. */
static const fault_t FAULTS[] = {
    {"pwrite EIO", VF_PWRITE, FM_FAIL, -EIO, WALRUS_EIO_WRITE, WALRUS_OK, 0},
    {"pwrite short+EIO", VF_PWRITE, FM_SHORT, -EIO, WALRUS_EIO_WRITE,
     WALRUS_OK, 0},
    {"pwrite short+count", VF_PWRITE, FM_SHORT, VF_SHORT_RETURNS_COUNT,
     WALRUS_EIO_WRITE, WALRUS_OK, 0},
    {"pwrite ENOSPC", VF_PWRITE, FM_FAIL, -ENOSPC, WALRUS_ENOSPC, WALRUS_OK,
     0},
    {"allocate ENOSPC", VF_ALLOCATE, FM_FAIL, -ENOSPC, WALRUS_ENOSPC,
     WALRUS_OK, 0},
    {"sync EIO", VF_SYNC, FM_FAIL, -EIO, WALRUS_EIO_FSYNC, WALRUS_OK, 0},
    {"pread EIO", VF_PREAD, FM_FAIL, -EIO, WALRUS_EIO_READ, WALRUS_OK, 0},
    {"rename EIO", VF_RENAME, FM_FAIL, -EIO, WALRUS_EIO, WALRUS_OK, 0},
    {"unlink EIO", VF_UNLINK, FM_FAIL, -EIO, WALRUS_EIO, WALRUS_OK, 0},
    {"truncate EIO", VF_TRUNCATE, FM_FAIL, -EIO, WALRUS_EIO_WRITE, WALRUS_OK,
     0},
    {"allocate EIO", VF_ALLOCATE, FM_FAIL, -EIO, WALRUS_EIO_WRITE, WALRUS_OK,
     0},
    {"allocate EOPNOTSUPP", VF_ALLOCATE, FM_FAIL, -EOPNOTSUPP, WALRUS_OK,
     WALRUS_OK, 0},
    {"map EIO", VF_MAP, FM_FAIL, -EIO, WALRUS_EIO_WRITE, WALRUS_OK, 0},
    {"map ENOMEM", VF_MAP, FM_FAIL, -ENOMEM, WALRUS_ENOMEM, WALRUS_OK, 0},
    {"map EOPNOTSUPP", VF_MAP, FM_FAIL, -EOPNOTSUPP, WALRUS_OK, WALRUS_OK,
     0},
    {"unmap EIO", VF_UNMAP, FM_FAIL, -EIO, WALRUS_OK, WALRUS_OK, 0},
    {"sync_dir EIO", VF_SYNC_DIR, FM_FAIL, -EIO, WALRUS_EIO_FSYNC, WALRUS_OK,
     0},
    {"open EIO", VF_OPEN, FM_FAIL, -EIO, WALRUS_EIO, WALRUS_OK, 0},
    {"out of memory", VF_ANY, FM_OOM, 0, WALRUS_ENOMEM, WALRUS_OK, 0},
    /* The file system out of memory: walrus_truncate_back promises that
     * before its intent (the segment to cut opened, META.tmp created) it
     * changes nothing and leaves the handle usable.  Elsewhere walrus
     * poisons on it (or, in walrus_open, returns WALRUS_EIO). */
    {"open ENOMEM", VF_OPEN, FM_FAIL, -ENOMEM, WALRUS_ENOMEM, WALRUS_OK, 1},
};
#define N_FAULTS (sizeof FAULTS / sizeof FAULTS[0])

static vf_t *g_vf;

static uint64_t vfs_calls(void) { return vf_count(g_vf, VF_ANY); }

static void arm(const fault_t *f, uint64_t n) {
  g_alloc_failed = 0;
  g_alloc_failed_at = 0;
  g_vfs_at_arm = vfs_calls();
  if (f == NULL) return;
  if (f->mode == FM_OOM)
    g_alloc_countdown = (long)n;
  else if (f->mode == FM_SHORT)
    vf_arm_short(g_vf, n, f->err, 0);
  else
    vf_arm_fail(g_vf, f->m, n, f->err, 0);
}

static uint64_t fired(const fault_t *f) {
  if (f == NULL) return 0;
  return f->mode == FM_OOM ? (uint64_t)g_alloc_failed : vf_fired(g_vf);
}

static void disarm(void) {
  g_alloc_countdown = -1;
  vf_disarm(g_vf);
}

/* ---- what every index should hold --------------------------------------- */

/* Entry i is tu_entry_set(i, seed, MAXLEN) of the newest range holding i,
 * with the transaction id g_txid when the range is a transaction's.  A
 * later write to an index gets a different seed, so old bytes coming back
 * where new ones belong are caught. */
typedef struct mrange_s {
  uint64_t lo, hi, seed;
  int tx;
} mrange_t;

static mrange_t g_model[64];
static size_t g_nmodel;
static walrus_txid_t g_txid;

static void model_add(uint64_t lo, uint64_t hi, uint64_t seed, int tx) {
  CHECK(g_nmodel < sizeof g_model / sizeof g_model[0], "model full");
  g_model[g_nmodel++] = (mrange_t){lo, hi, seed, tx};
}

static const mrange_t *model_find(uint64_t i) {
  for (size_t k = g_nmodel; k-- > 0;)
    if (g_model[k].lo <= i && i <= g_model[k].hi) return &g_model[k];
  return NULL;
}

/* Build entry i as the model says (the buffer holds MAXLEN bytes). */
static void entry_for(walrus_entry_t *e, uint64_t i, uint64_t seed, int tx,
                      unsigned char *buf) {
  tu_entry_set(e, i, seed, MAXLEN, buf);
  if (tx) e->tx_id = g_txid.s;
}

/* Assert that e, read as entry i, is what the model says was written. */
static void check_entry(const walrus_entry_t *e, uint64_t i) {
  static unsigned char want[MAXLEN];
  const mrange_t *m = model_find(i);
  CHECK(m != NULL, "entry %llu is in the log but was never written", ULL(i));
  size_t len = tu_len(i, m->seed, MAXLEN);
  tu_payload(i, m->seed, want, len);
  int ok = e->index == i && e->term == i && e->type == (uint16_t)(i % 7) &&
           e->timestamp_ns == (int64_t)(1000 + i) && e->len == len &&
           (len == 0 || memcmp(e->data, want, len) == 0);
  int txok = m->tx ? (e->tx_id != NULL && strcmp(e->tx_id, g_txid.s) == 0)
                   : e->tx_id == NULL;
  CHECK(ok && txok,
        "entry %llu differs from what was written (index %llu, len %zu "
        "want %zu, tx id %s)",
        ULL(i), ULL(e->index), e->len, len, txok ? "right" : "wrong");
}

/* Read entry i and compare it with the model.  With strict, the read must
 * succeed; otherwise a failure is counted in *errors (a poisoned handle's
 * view may name entries it can no longer read), but bytes returned must
 * always be right. */
static void check_entry_at(walrus_t *w, uint64_t i, int strict,
                           uint64_t *errors) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  int rc = walrus_get(w, i, &e);
  if (rc != WALRUS_OK) {
    CHECK(!strict, "get %llu: %s: %s", ULL(i), walrus_errname(rc),
          walrus_errmsg(w));
    CHECK(rc < 0, "get %llu returned %d", ULL(i), rc);
    if (errors != NULL) (*errors)++;
    return;
  }
  check_entry(&e, i);
  walrus_entry_free(&e);
}

/* ---- views -------------------------------------------------------------- */

typedef struct view_s {
  uint64_t first, last, next; /* as walrus_first/last/next_index say */
} view_t;

static view_t view_of(walrus_t *w) {
  view_t v = {walrus_first_index(w), walrus_last_index(w),
              walrus_next_index(w)};
  return v;
}

static int view_eq(view_t a, view_t b) {
  return a.first == b.first && a.last == b.last && a.next == b.next;
}

/* Check every entry the view shows against the model. */
static uint64_t check_view(walrus_t *w, view_t v, int strict) {
  uint64_t errors = 0;
  if (v.last == 0) return 0;
  for (uint64_t i = v.first; i <= v.last; i++)
    check_entry_at(w, i, strict, &errors);
  return errors;
}

/* Append one entry with seed at the next index; returns the code. */
static int append_seeded(walrus_t *w, uint64_t seed, uint64_t *idx) {
  unsigned char buf[MAXLEN];
  walrus_entry_t e;
  uint64_t at = walrus_next_index(w), got = 0;
  entry_for(&e, at, seed, 0, buf);
  int rc = walrus_append(w, &e, &got);
  if (rc == WALRUS_OK) {
    CHECK(got == at, "append got index %llu, want %llu", ULL(got), ULL(at));
    model_add(at, at, seed, 0);
  }
  if (idx != NULL) *idx = at;
  return rc;
}

/* Write n entries (one append when n is 1, else one batch) with seed. */
static int write_entries(walrus_t *w, size_t n, uint64_t seed) {
  static unsigned char bufs[16][MAXLEN];
  walrus_entry_t e[16];
  uint64_t at = walrus_next_index(w), got = 0;
  CHECK(n >= 1 && n <= 16, "write_entries(%zu)", n);
  for (size_t i = 0; i < n; i++) entry_for(&e[i], at + i, seed, 0, bufs[i]);
  int rc = n == 1 ? walrus_append(w, &e[0], &got)
                  : walrus_write_batch(w, e, n, &got);
  if (rc == WALRUS_OK)
    CHECK(got == at, "write got index %llu, want %llu", ULL(got), ULL(at));
  return rc;
}

/* ---- scratch space and templates ------------------------------------------ */

static char *g_root;         /* scratch root */
static char g_run[1024];     /* the log a run works on */

enum {
  TPL_NONE,          /* no log: walrus_open creates one */
  TPL_BASE,          /* five segments of appends and batches of 5 */
  TPL_TORN,          /* BASE plus a batch torn by a cut of the tail */
  TPL_INTENT_CUT,    /* truncate_back inside a batch whose ftruncate failed */
  TPL_INTENT_UNLINK, /* the same, failed at its first segment unlink */
  TPL_SEALED,        /* BASE truncated back to a segment end: sealed tail */
  TPL__COUNT
};
static char g_tpl[TPL__COUNT][1024];
static int g_tpl_built[TPL__COUNT];

/* What the base template looks like. */
typedef struct unit_s {
  uint64_t lo, hi;
} unit_t;
static unit_t g_units[512];
static size_t g_nunits;
static uint64_t g_base_last;        /* its last index */
static uint64_t g_segfirst[64];     /* first index of each segment */
static size_t g_nseg;
static uint64_t g_k_boundary;       /* last entry of the second segment */
static uint64_t g_k_inside;         /* a single append inside it */
static uint64_t g_k_batch;          /* the middle of a batch inside it */
static uint64_t g_k_tail;           /* the middle of a batch in the tail */
static uint64_t g_k_front;          /* inside the third segment */

static size_t seg_firsts(const char *dir, uint64_t *out, size_t max) {
  char **names = NULL;
  size_t n = tu_segments(dir, &names);
  CHECK(n <= max, "%zu segments", n);
  for (size_t i = 0; i < n; i++) out[i] = strtoull(names[i], NULL, 10);
  tu_strv_free(names);
  return n;
}

static walrus_config_t plain_cfg(void) {
  walrus_config_t c;
  walrus_config_default(&c);
  c.segment_bytes = SEG_BYTES;
  return c;
}

static walrus_t *open_ok(const char *dir, const walrus_config_t *cfg) {
  walrus_t *w = NULL;
  char msg[512] = "";
  int rc = walrus_open_ex(dir, cfg, &w, msg, sizeof msg);
  CHECK(rc == WALRUS_OK && w != NULL, "walrus_open(%s): %s: %s", dir,
        walrus_errname(rc), msg);
  return w;
}

static uint32_t meta_flags(const char *dir) {
  size_t len = 0;
  unsigned char *m = tu_read_file(tu_path(dir, "META"), &len);
  CHECK(len == 56, "META is %zu bytes", len);
  uint32_t f = (uint32_t)m[12] | (uint32_t)m[13] << 8 |
               (uint32_t)m[14] << 16 | (uint32_t)m[15] << 24;
  free(m);
  return f;
}

static void build_base(const char *dir) {
  walrus_config_t c = plain_cfg();
  walrus_t *w = open_ok(dir, &c);
  g_nunits = 0;
  for (;;) {
    size_t n = g_nunits % 3 == 2 ? 5 : 1;
    uint64_t at = walrus_next_index(w);
    int rc = write_entries(w, n, SEED_BASE);
    CHECK(rc == WALRUS_OK, "template: %s", walrus_errmsg(w));
    g_units[g_nunits++] = (unit_t){at, at + n - 1};
    g_nseg = seg_firsts(dir, g_segfirst, 64);
    int tail_batch = 0;
    for (size_t u = 0; u + 1 < g_nunits; u++)
      if (g_units[u].hi - g_units[u].lo == 4 &&
          g_units[u].lo >= g_segfirst[g_nseg - 1])
        tail_batch = 1;
    if (g_nseg >= 5 && tail_batch) break;
    CHECK(g_nunits < 400, "template never reached five segments");
  }
  CHECK(walrus_close(w) == WALRUS_OK, "close template");
  g_base_last = g_units[g_nunits - 1].hi;
  uint64_t s1 = g_segfirst[1], s2 = g_segfirst[2];
  g_k_boundary = s2 - 1;
  g_k_inside = g_k_batch = g_k_tail = 0;
  for (size_t u = 0; u < g_nunits; u++) {
    const unit_t *x = &g_units[u];
    if (x->lo >= s1 && x->hi < s2 - 1 && x->lo == x->hi && !g_k_inside)
      g_k_inside = x->lo;
    if (x->lo >= s1 && x->hi < s2 && x->hi > x->lo && !g_k_batch)
      g_k_batch = x->lo + 2;
    if (x->lo >= g_segfirst[g_nseg - 1] && x->hi > x->lo && u + 1 < g_nunits &&
        !g_k_tail)
      g_k_tail = x->lo + 2;
  }
  g_k_front = s2 + 1;
  CHECK(g_k_inside && g_k_batch && g_k_tail && g_k_front < g_segfirst[3],
        "template shape: inside %llu batch %llu tail %llu front %llu",
        ULL(g_k_inside), ULL(g_k_batch), ULL(g_k_tail), ULL(g_k_front));
}

/* Make a log with a pending truncate intent: truncate_back(g_k_batch)
 * failing at the nth call of method m. */
static void build_intent(const char *dir, vf_method_t m, uint64_t n,
                         int want) {
  tu_copy_dir(g_tpl[TPL_BASE], dir);
  walrus_config_t c = plain_cfg();
  c.vfs = vf_vfs(g_vf);
  walrus_t *w = open_ok(dir, &c);
  vf_arm_fail(g_vf, m, n, -EIO, 0);
  int rc = walrus_truncate_back(w, g_k_batch);
  vf_disarm(g_vf);
  CHECK(rc == want, "template truncate_back: %s, want %s",
        walrus_errname(rc), walrus_errname(want));
  walrus_close(w);
  CHECK(meta_flags(dir) & 1u, "template %s: no pending truncate in META",
        dir);
}

static void need_tpl(int t) {
  if (t == TPL_NONE || g_tpl_built[t]) return;
  if (t != TPL_BASE) need_tpl(TPL_BASE);
  const char *d = g_tpl[t];
  snprintf(g_ctx, sizeof g_ctx, "building template %d", t);
  tu_rmrf(d);
  switch (t) {
    case TPL_BASE:
      build_base(d);
      break;
    case TPL_TORN: {
      tu_copy_dir(g_tpl[TPL_BASE], d);
      walrus_config_t c = plain_cfg();
      walrus_t *w = open_ok(d, &c);
      CHECK(write_entries(w, 5, SEED_BASE) == WALRUS_OK, "torn batch");
      CHECK(walrus_close(w) == WALRUS_OK, "close");
      char **names = NULL;
      size_t n = tu_segments(d, &names);
      const char *tail = tu_path(d, names[n - 1]);
      int64_t size = tu_file_size(tail);
      CHECK(size > 64 + 100, "tail %s is %lld bytes", tail, (long long)size);
      /* Cut the closing sync mark and part of the batch's last record. */
      tu_truncate(tail, (uint64_t)size - 100);
      tu_strv_free(names);
      c.read_only = 1;
      w = open_ok(d, &c);
      CHECK(walrus_last_index(w) == g_base_last, "torn template ends at %llu",
            ULL(walrus_last_index(w)));
      walrus_close(w);
      break;
    }
    case TPL_INTENT_CUT: /* the ftruncate of the segment holding K fails */
      build_intent(d, VF_TRUNCATE, 1, WALRUS_EIO_WRITE);
      break;
    case TPL_INTENT_UNLINK: /* unlink 1 is META.tmp's, 2 the first segment's */
      build_intent(d, VF_UNLINK, 2, WALRUS_EIO);
      break;
    case TPL_SEALED: {
      tu_copy_dir(g_tpl[TPL_BASE], d);
      walrus_config_t c = plain_cfg();
      walrus_t *w = open_ok(d, &c);
      CHECK(walrus_truncate_back(w, g_k_boundary) == WALRUS_OK, "%s",
            walrus_errmsg(w));
      CHECK(walrus_close(w) == WALRUS_OK, "close");
      char **names = NULL;
      size_t n = tu_segments(d, &names);
      CHECK(n == 2, "sealed template has %zu segments", n);
      size_t len = 0;
      unsigned char *b = tu_read_file(tu_path(d, names[1]), &len);
      CHECK(len > 32 && memcmp(b + len - 32, "WALRUSTR", 8) == 0,
            "the sealed template's tail is not sealed");
      free(b);
      tu_strv_free(names);
      break;
    }
  }
  g_tpl_built[t] = 1;
}

/* ---- scenarios ------------------------------------------------------------ */

struct scen_s;

/* One run of a scenario. */
typedef struct run_s {
  const struct scen_s *sc;
  walrus_t *w;       /* the handle under faults; NULL once gone */
  view_t v0;         /* the log before the operation */
  int rc;            /* code of the call that failed, or WALRUS_OK */
  char what[64];     /* which call that was */
  char msg[512];     /* walrus_errmsg of the failure */
  uint64_t acked;    /* sequences: entries acknowledged */
  int committed;     /* transaction: it was committed after all */
  uint64_t k;        /* the scenario's index argument */
  int in_back;       /* rc is walrus_truncate_back's */
  int after_intent;  /* ... and the fault hit it after it had recorded
                        its intent (renamed META.tmp over META) */
  int cut;           /* OUT_BACK_SEQ: truncate_back succeeded */
} run_t;

typedef enum outcome {
  OUT_GROW,     /* v0, or v0 plus r->k entries (all or nothing) */
  OUT_TX,       /* v0, or v0 plus N_TX entries only if committed */
  OUT_SEQ,      /* every acknowledged append, maybe the failing one */
  OUT_FRONT,    /* v0, or first index r->k */
  OUT_BACK,     /* v0, or last index r->k */
  OUT_RESET,    /* v0, or empty with next index RESET_TO */
  OUT_SAME,     /* v0 */
  OUT_OPEN,     /* exactly what the template holds (scenario's expect) */
  OUT_BACK_SEQ  /* OUT_BACK at r->k, then OUT_SEQ from there */
} outcome_t;

typedef struct scen_s {
  const char *name;
  int tpl;
  void (*pre)(run_t *r);  /* before arming (may be NULL) */
  void (*op)(run_t *r);   /* the operation under faults (NULL: open) */
  outcome_t out;
  int sync_none;          /* open with WALRUS_SYNC_NONE */
  uint32_t max_segments;  /* retention */
  uint32_t cached;        /* cached_segments, 0: default */
  int reads;              /* read-only op: EIO_READ leaves it usable */
  int strict_reads;       /* a poisoned handle still reads all it shows */
  uint64_t (*open_last)(void); /* OUT_OPEN: the last index expected */
  int mapped;             /* cfg.mapped_writes (with sync_none) */
  uint32_t min_maps;      /* the reference run maps at least this often */
} scen_t;

static void set_what(run_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_what(run_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->what, sizeof r->what, fmt, ap);
  va_end(ap);
}

static void op_append(run_t *r) {
  model_add(r->v0.next, r->v0.next, SEED_OP, 0);
  r->k = 1;
  set_what(r, "walrus_append(%llu)", ULL(r->v0.next));
  r->rc = write_entries(r->w, 1, SEED_OP);
}

static void op_batch(run_t *r) {
  model_add(r->v0.next, r->v0.next + N_BATCH - 1, SEED_OP, 0);
  r->k = N_BATCH;
  set_what(r, "walrus_write_batch(%d entries)", N_BATCH);
  r->rc = write_entries(r->w, N_BATCH, SEED_OP);
}

static void op_tx(run_t *r) {
  static unsigned char buf[MAXLEN];
  walrus_t *w = r->w;
  set_what(r, "walrus_tx_begin");
  r->rc = walrus_tx_begin(w, 0, &g_txid);
  if (r->rc != WALRUS_OK) return;
  model_add(r->v0.next, r->v0.next + N_TX - 1, SEED_OP, 1);
  for (uint64_t i = 0; i < N_TX; i++) {
    walrus_entry_t e;
    entry_for(&e, r->v0.next + i, SEED_OP, 0, buf);
    r->rc = walrus_tx_add(w, &g_txid, &e);
    if (r->rc != WALRUS_OK) {
      set_what(r, "walrus_tx_add #%llu", ULL(i + 1));
      CHECK(walrus_tx_rollback(w, &g_txid) == WALRUS_OK,
            "rollback after a failed tx_add: %s", walrus_errmsg(w));
      return;
    }
  }
  uint64_t first = 0;
  size_t count = 0;
  set_what(r, "walrus_tx_commit");
  r->rc = walrus_tx_commit(w, &g_txid, &first, &count);
  walrus_tx_state_t st = WALRUS_TX_PENDING;
  if (r->rc == WALRUS_OK) {
    CHECK(first == r->v0.next && count == N_TX, "commit at %llu count %zu",
          ULL(first), count);
    r->committed = 1;
  } else if (r->rc == WALRUS_ENOMEM) {
    /* Nothing written; the transaction stays pending and may be retried
     * (walrus.h).  The allocator fails only once. */
    CHECK(walrus_tx_state(w, &g_txid, &st) == WALRUS_OK &&
              st == WALRUS_TX_PENDING,
          "after ENOMEM the transaction is not pending (state %d)", st);
    int rc2 = walrus_tx_commit(w, &g_txid, &first, &count);
    CHECK(rc2 == WALRUS_OK && first == r->v0.next && count == N_TX,
          "retried commit: %s: %s", walrus_errname(rc2), walrus_errmsg(w));
    r->committed = 1;
  } else {
    CHECK(walrus_tx_state(w, &g_txid, &st) == WALRUS_OK &&
              st == WALRUS_TX_ABORTED,
          "after a failed commit the transaction is not aborted (state %d)",
          st);
  }
}

/* Appends that cross segments; r->acked counts those acknowledged. */
static void op_seq_n(run_t *r, uint64_t n, int sync_every) {
  model_add(r->v0.next, r->v0.next + n - 1, SEED_OP, 0);
  for (uint64_t j = 0; j < n; j++) {
    set_what(r, "append #%llu of the sequence", ULL(j + 1));
    r->rc = write_entries(r->w, 1, SEED_OP);
    if (r->rc != WALRUS_OK) return;
    r->acked++;
    if (sync_every && (j + 1) % (uint64_t)sync_every == 0) {
      set_what(r, "walrus_sync after append #%llu", ULL(j + 1));
      r->rc = walrus_sync(r->w);
      if (r->rc != WALRUS_OK) return;
    }
  }
}

static void op_seq(run_t *r) { op_seq_n(r, N_SEQ, 0); }
static void op_seq_none(run_t *r) { op_seq_n(r, N_SEQ_NONE, N_SEQ_NONE / 2); }

static void op_front(run_t *r) {
  r->k = g_k_front;
  set_what(r, "walrus_truncate_front(%llu)", ULL(r->k));
  r->rc = walrus_truncate_front(r->w, r->k);
}

static void op_back_k(run_t *r, uint64_t k) {
  r->k = k;
  r->in_back = 1;
  set_what(r, "walrus_truncate_back(%llu)", ULL(k));
  r->rc = walrus_truncate_back(r->w, k);
}
static void op_back_boundary(run_t *r) { op_back_k(r, g_k_boundary); }
static void op_back_inside(run_t *r) { op_back_k(r, g_k_inside); }
static void op_back_batch(run_t *r) { op_back_k(r, g_k_batch); }
static void op_back_tail(run_t *r) { op_back_k(r, g_k_tail); }

static void op_reset(run_t *r) {
  r->k = RESET_TO;
  set_what(r, "walrus_reset(%llu)", ULL(RESET_TO));
  r->rc = walrus_reset(r->w, RESET_TO);
}

/* Read every entry with walrus_get, then with an iterator. */
static void op_read(run_t *r) {
  walrus_t *w = r->w;
  for (uint64_t i = r->v0.first; i <= r->v0.last; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    set_what(r, "walrus_get(%llu)", ULL(i));
    r->rc = walrus_get(w, i, &e);
    if (r->rc != WALRUS_OK) return;
    check_entry(&e, i);
    walrus_entry_free(&e);
  }
  walrus_iter_t *it = NULL;
  set_what(r, "walrus_iter_open");
  r->rc = walrus_iter_open(w, 0, &it);
  if (r->rc != WALRUS_OK) return;
  g_live_it = it;
  for (uint64_t i = r->v0.first;; i++) {
    walrus_entry_t e;
    set_what(r, "walrus_iter_next (entry %llu)", ULL(i));
    r->rc = walrus_iter_next(it, &e);
    if (r->rc == WALRUS_DONE) {
      CHECK(i == r->v0.last + 1, "iterator done at %llu", ULL(i));
      r->rc = WALRUS_OK;
      break;
    }
    if (r->rc != WALRUS_OK) break;
    check_entry(&e, i);
  }
  g_live_it = NULL;
  walrus_iter_close(it);
}

/* Mapped writes, truncate_back: write a batch of 4 and an append until both
 * are in the tail, which the first of them mapped (preallocated, extended,
 * mapped); K is the second entry of the batch, so the cut leaves a closing
 * mark to write too. */
static void pre_back_mapped(run_t *r) {
  uint64_t maps = vf_count(g_vf, VF_MAP);
  for (int round = 0;; round++) {
    CHECK(round < 20, "the batch never landed in the tail");
    uint64_t lo = walrus_next_index(r->w);
    CHECK(write_entries(r->w, 4, SEED_PRE) == WALRUS_OK, "pre batch: %s",
          walrus_errmsg(r->w));
    model_add(lo, lo + 3, SEED_PRE, 0);
    CHECK(append_seeded(r->w, SEED_PRE, NULL) == WALRUS_OK, "pre append: %s",
          walrus_errmsg(r->w));
    uint64_t firsts[64];
    size_t n = seg_firsts(g_run, firsts, 64);
    if (n > 0 && firsts[n - 1] <= lo) {
      r->k = lo + 1;
      break;
    }
  }
  CHECK(vf_count(g_vf, VF_MAP) > maps, "the tail was never mapped");
}

/* Cut inside the mapped tail, then append (mapping the tail again, and
 * rotating at least once), then sync. */
static void op_back_mapped(run_t *r) {
  r->in_back = 1;
  set_what(r, "walrus_truncate_back(%llu)", ULL(r->k));
  r->rc = walrus_truncate_back(r->w, r->k);
  if (r->rc != WALRUS_OK) return;
  r->in_back = 0;
  r->cut = 1;
  model_add(r->k + 1, r->k + N_AFTER_CUT, SEED_OP, 0);
  for (uint64_t j = 0; j < N_AFTER_CUT; j++) {
    set_what(r, "append #%llu after the cut", ULL(j + 1));
    r->rc = write_entries(r->w, 1, SEED_OP);
    if (r->rc != WALRUS_OK) return;
    r->acked++;
  }
  set_what(r, "walrus_sync after the appends");
  r->rc = walrus_sync(r->w);
}

static void op_seq_mapped(run_t *r) { op_seq_n(r, N_SEQ_MAPPED, 10); }

/* Mapped writes, truncate_back below the tail: store a few entries into the
 * mapped tail, then cut inside the sealed segment before it, so that the
 * mapped tail is removed and the sealed segment becomes the tail. */
static void pre_back_drop_mapped(run_t *r) {
  uint64_t maps = vf_count(g_vf, VF_MAP);
  for (int j = 0; j < 3; j++)
    CHECK(append_seeded(r->w, SEED_PRE, NULL) == WALRUS_OK, "pre append: %s",
          walrus_errmsg(r->w));
  CHECK(vf_count(g_vf, VF_MAP) > maps, "the tail was never mapped");
  uint64_t firsts[64];
  size_t n = seg_firsts(g_run, firsts, 64);
  CHECK(n >= 2 && firsts[n - 1] >= firsts[n - 2] + 3,
        "no sealed segment of 3+ entries before the tail");
  r->k = firsts[n - 1] - 2;
}

/* Mapped close: appends and a batch stored through the mapping, so that
 * close has a sync mark to write and preallocated zeros to cut. */
static void pre_close_mapped(run_t *r) {
  uint64_t maps = vf_count(g_vf, VF_MAP);
  CHECK(append_seeded(r->w, SEED_PRE, NULL) == WALRUS_OK, "pre-append: %s",
        walrus_errmsg(r->w));
  uint64_t lo = walrus_next_index(r->w);
  CHECK(write_entries(r->w, 3, SEED_PRE) == WALRUS_OK, "pre batch: %s",
        walrus_errmsg(r->w));
  model_add(lo, lo + 2, SEED_PRE, 0);
  CHECK(append_seeded(r->w, SEED_PRE, NULL) == WALRUS_OK, "pre-append: %s",
        walrus_errmsg(r->w));
  CHECK(vf_count(g_vf, VF_MAP) > maps, "the tail was never mapped");
}

/* close: an append first, so that close has a sync mark to write. */
static void pre_close(run_t *r) {
  CHECK(append_seeded(r->w, SEED_OP, NULL) == WALRUS_OK, "pre-append: %s",
        walrus_errmsg(r->w));
}

static void op_close(run_t *r) {
  set_what(r, "walrus_close");
  g_live[0] = NULL;
  r->rc = walrus_close(r->w);
  r->w = NULL;
}

static uint64_t last_empty(void) { return 0; }
static uint64_t last_base(void) { return g_base_last; }
static uint64_t last_batch(void) { return g_k_batch; }
static uint64_t last_boundary(void) { return g_k_boundary; }

enum {
  S_APPEND, S_BATCH, S_TX, S_ROTATION, S_SYNC_NONE, S_RETENTION,
  S_TRUNC_FRONT, S_TB_BOUNDARY, S_TB_INSIDE, S_TB_BATCH, S_TB_TAIL,
  S_RESET, S_READ, S_CLOSE,
  S_OPEN_CREATE, S_OPEN_CLEAN, S_OPEN_TORN, S_OPEN_INTENT_CUT,
  S_OPEN_INTENT_UNLINK, S_OPEN_SEALED,
  S_MAPPED_APPEND, S_MAPPED_TB, S_MAPPED_CLOSE,
  S_MAPPED_TB_DROP, S_MAPPED_RESET,
  S__COUNT
};

static const scen_t SCENARIOS[S__COUNT] = {
    [S_APPEND] = {"append", TPL_BASE, NULL, op_append, OUT_GROW, 0, 0, 0, 0,
                  1, NULL},
    [S_BATCH] = {"write_batch x10", TPL_BASE, NULL, op_batch, OUT_GROW, 0, 0,
                 0, 0, 1, NULL},
    [S_TX] = {"tx commit x10", TPL_BASE, NULL, op_tx, OUT_TX, 0, 0, 0, 0, 1,
              NULL},
    [S_ROTATION] = {"rotation", TPL_BASE, NULL, op_seq, OUT_SEQ, 0, 0, 0, 0,
                    1, NULL},
    [S_SYNC_NONE] = {"rotation SYNC_NONE", TPL_BASE, NULL, op_seq_none,
                     OUT_SEQ, 1, 0, 0, 0, 1, NULL},
    [S_RETENTION] = {"retention", TPL_BASE, NULL, op_seq, OUT_SEQ, 0, 3, 0,
                     0, 1, NULL},
    [S_TRUNC_FRONT] = {"truncate_front", TPL_BASE, NULL, op_front, OUT_FRONT,
                       0, 0, 0, 0, 1, NULL},
    [S_TB_BOUNDARY] = {"truncate_back boundary", TPL_BASE, NULL,
                       op_back_boundary, OUT_BACK, 0, 0, 0, 0, 0, NULL},
    [S_TB_INSIDE] = {"truncate_back inside", TPL_BASE, NULL, op_back_inside,
                     OUT_BACK, 0, 0, 0, 0, 0, NULL},
    [S_TB_BATCH] = {"truncate_back in batch", TPL_BASE, NULL, op_back_batch,
                    OUT_BACK, 0, 0, 0, 0, 0, NULL},
    [S_TB_TAIL] = {"truncate_back tail batch", TPL_BASE, NULL, op_back_tail,
                   OUT_BACK, 0, 0, 0, 0, 0, NULL},
    [S_RESET] = {"reset", TPL_BASE, NULL, op_reset, OUT_RESET, 0, 0, 0, 0, 0,
                 NULL},
    [S_READ] = {"read get+iter", TPL_BASE, NULL, op_read, OUT_SAME, 0, 0, 1,
                1, 1, NULL},
    [S_CLOSE] = {"close", TPL_BASE, pre_close, op_close, OUT_SAME, 0, 0, 0,
                 0, 1, NULL},
    [S_OPEN_CREATE] = {"open: create", TPL_NONE, NULL, NULL, OUT_OPEN, 0, 0,
                       0, 0, 1, last_empty},
    [S_OPEN_CLEAN] = {"open: clean", TPL_BASE, NULL, NULL, OUT_OPEN, 0, 0, 0,
                      0, 1, last_base},
    [S_OPEN_TORN] = {"open: torn tail", TPL_TORN, NULL, NULL, OUT_OPEN, 0, 0,
                     0, 0, 1, last_base},
    [S_OPEN_INTENT_CUT] = {"open: intent (cut)", TPL_INTENT_CUT, NULL, NULL,
                           OUT_OPEN, 0, 0, 0, 0, 1, last_batch},
    [S_OPEN_INTENT_UNLINK] = {"open: intent (unlink)", TPL_INTENT_UNLINK,
                              NULL, NULL, OUT_OPEN, 0, 0, 0, 0, 1,
                              last_batch},
    [S_OPEN_SEALED] = {"open: sealed tail", TPL_SEALED, NULL, NULL, OUT_OPEN,
                       0, 0, 0, 0, 1, last_boundary},
    [S_MAPPED_APPEND] = {.name = "append mapped SYNC_NONE",
                         .tpl = TPL_BASE,
                         .op = op_seq_mapped,
                         .out = OUT_SEQ,
                         .sync_none = 1,
                         .strict_reads = 1,
                         .mapped = 1,
                         .min_maps = 3},
    [S_MAPPED_TB] = {.name = "truncate_back mapped",
                     .tpl = TPL_BASE,
                     .pre = pre_back_mapped,
                     .op = op_back_mapped,
                     .out = OUT_BACK_SEQ,
                     .sync_none = 1,
                     .mapped = 1,
                     .min_maps = 2},
    [S_MAPPED_CLOSE] = {.name = "close mapped",
                        .tpl = TPL_BASE,
                        .pre = pre_close_mapped,
                        .op = op_close,
                        .out = OUT_SAME,
                        .sync_none = 1,
                        .strict_reads = 1,
                        .mapped = 1},
    [S_MAPPED_TB_DROP] = {.name = "truncate_back mapped, drop",
                          .tpl = TPL_BASE,
                          .pre = pre_back_drop_mapped,
                          .op = op_back_mapped,
                          .out = OUT_BACK_SEQ,
                          .sync_none = 1,
                          .mapped = 1,
                          .min_maps = 1},
    [S_MAPPED_RESET] = {.name = "reset mapped",
                        .tpl = TPL_BASE,
                        .pre = pre_close_mapped,
                        .op = op_reset,
                        .out = OUT_RESET,
                        .sync_none = 1,
                        .mapped = 1},
};

/* Retention: the first index after a fault-free run (the furthest it may
 * move).  0 until the reference run has set it. */
static uint64_t g_fref;

/* How the operation ended, as far as the log may show it. */
typedef enum ended {
  END_FAILED,   /* it failed: its effect is all there or not at all */
  END_NOEFFECT, /* it failed and left the handle usable: no effect at all */
  END_DONE      /* it succeeded: all its effect */
} ended_t;

/* Is v an outcome the operation may leave, having ended as e? */
static int outcome_ok(const run_t *r, view_t v, ended_t e, char *why,
                      size_t len) {
  const view_t o = r->v0;
  int old = view_eq(v, o);
  int done = e == END_DONE, any = e == END_FAILED;
  int ok = 0;
  switch (r->sc->out) {
    case OUT_GROW: {
      int grown = v.first == o.first && v.last == o.last + r->k;
      ok = done ? grown : old || (any && grown);
      break;
    }
    case OUT_TX: {
      /* A commit that ran out of memory is retried (op_tx). */
      int grown = v.first == o.first && v.last == o.last + N_TX;
      ok = r->committed ? grown : old;
      break;
    }
    case OUT_SEQ: {
      uint64_t lo = o.last + r->acked;
      ok = v.last == lo || (any && v.last == lo + 1);
      if (r->sc->max_segments == 0)
        ok = ok && v.first == o.first;
      else
        ok = ok && v.first >= o.first && (g_fref == 0 || v.first <= g_fref) &&
             (!done || g_fref == 0 || v.first == g_fref);
      break;
    }
    case OUT_FRONT: {
      int moved = v.first == r->k && v.last == o.last;
      ok = done ? moved : old || (any && moved);
      break;
    }
    case OUT_BACK: {
      int cut = v.first == o.first && v.last == r->k;
      ok = done ? cut : old || (any && cut);
      break;
    }
    case OUT_BACK_SEQ: {
      if (!r->cut) {
        int cut = v.first == o.first && v.last == r->k;
        ok = !done && (old || (any && cut));
      } else {
        uint64_t lo = r->k + r->acked;
        ok = v.first == o.first && (v.last == lo || (any && v.last == lo + 1));
      }
      break;
    }
    case OUT_RESET: {
      int empty = v.last == 0 && v.next == RESET_TO;
      ok = done ? empty : old || (any && empty);
      break;
    }
    case OUT_SAME:
      ok = old;
      break;
    case OUT_OPEN: {
      uint64_t last = r->sc->open_last();
      ok = last == 0 ? v.last == 0 && v.next == 1
                     : v.first == 1 && v.last == last;
      break;
    }
  }
  snprintf(why, len,
           "log holds %llu..%llu (next %llu); before the operation "
           "%llu..%llu, k %llu, acked %llu%s%s",
           ULL(v.first), ULL(v.last), ULL(v.next), ULL(o.first), ULL(o.last),
           ULL(r->k), ULL(r->acked), r->cut ? ", cut done" : "",
           e == END_NOEFFECT ? "; a failure that leaves the handle usable "
                               "must have had no effect"
                             : "");
  return ok;
}

/* Every write refuses with EPOISONED and makes no VFS call. */
static void expect_poisoned(walrus_t *w) {
  uint64_t calls = vf_count(g_vf, VF_ANY);
  unsigned char buf[MAXLEN];
  walrus_entry_t e;
  tu_entry_set(&e, walrus_next_index(w), SEED_USE, MAXLEN, buf);
  int rcs[6] = {
      walrus_append(w, &e, NULL),
      walrus_write_batch(w, &e, 1, NULL),
      walrus_sync(w),
      walrus_truncate_back(w, walrus_first_index(w)),
      walrus_truncate_front(w, walrus_first_index(w)),
      walrus_reset(w, 5),
  };
  static const char *const names[6] = {"append", "write_batch", "sync",
                                       "truncate_back", "truncate_front",
                                       "reset"};
  for (int i = 0; i < 6; i++)
    CHECK(rcs[i] == WALRUS_EPOISONED,
          "after the failure, %s returned %s, not WALRUS_EPOISONED: the "
          "handle is not poisoned",
          names[i], walrus_errname(rcs[i]));
  CHECK(vf_count(g_vf, VF_ANY) == calls,
        "a poisoned handle made %llu VFS calls",
        ULL(vf_count(g_vf, VF_ANY) - calls));
  CHECK(strstr(walrus_errmsg(w), "poison") != NULL, "errmsg: %s",
        walrus_errmsg(w));
}

/* ---- one run, one sweep ----------------------------------------------------- */

typedef struct counts_s {
  uint64_t calls[VF__COUNT]; /* VFS calls of each method */
  uint64_t allocs;           /* allocations */
} counts_t;

static void take_counts(counts_t *c) {
  for (int m = 0; m < VF__COUNT; m++) c->calls[m] = vf_count(g_vf, m);
  c->allocs = g_alloc_calls;
}

static uint64_t expected_points(const counts_t *ref, const fault_t *f) {
  return f->mode == FM_OOM ? ref->allocs : ref->calls[f->m];
}

static walrus_config_t scen_cfg(const scen_t *sc, int faulty) {
  walrus_config_t c = plain_cfg();
  if (sc->sync_none) c.sync = WALRUS_SYNC_NONE;
  c.mapped_writes = sc->mapped;
  c.max_segments = sc->max_segments;
  if (sc->cached) c.cached_segments = sc->cached;
  if (faulty) {
    c.vfs = vf_vfs(g_vf);
    c.allocator = &g_alloc;
  }
  return c;
}

/* Did the armed fault hit walrus_truncate_back after it recorded its
 * intent, that is after it renamed META.tmp over META (FORMAT.md 9.1,
 * 9.5)?  From then on the log has changed: reopening finishes the cut.
 * Until then only the scratch file META.tmp has.  An allocation that
 * failed counts as being where the next VFS call would have been. */
static int fired_after_intent(const fault_t *f) {
  uint64_t at = f->mode == FM_OOM ? g_alloc_failed_at : vf_fired_at(g_vf);
  if (at == 0) return 0;
  for (uint64_t i = 1; i < at; i++) {
    char name[64];
    vf_method_t m = VF_ANY;
    if (!vf_history_call(g_vf, i, &m, name, sizeof name))
      return 1; /* not kept: assume the worst */
    if (m == VF_RENAME && strcmp(name, "META") == 0) return 1;
  }
  return 0;
}

/* What a failure must leave the handle as. */
typedef enum after {
  AFTER_USABLE,   /* usable, the failed call without effect */
  AFTER_POISONED, /* poisoned */
  AFTER_EITHER    /* poisoned, or usable with the call without effect */
} after_t;

static after_t after_failure(const run_t *r, const fault_t *f) {
  /* The file system out of memory once truncate_back's intent began: the
   * log has changed, so the handle cannot be left as if nothing had. */
  if (r->rc == WALRUS_ENOMEM && f != NULL && f->mode != FM_OOM &&
      r->in_back && r->after_intent)
    return AFTER_POISONED;
  /* Out of memory in walrus' own allocations (which truncate_back makes
   * before its intent), and every failure of a read-only operation. */
  if (r->rc == WALRUS_OK || r->rc == WALRUS_ENOMEM || r->sc->reads)
    return AFTER_USABLE;
  /* map changes no byte of the log: the reservation and extension before
   * it either succeeded (zeros after the last unit are the tail's end) or
   * failed and poisoned on their own. */
  if (f != NULL && f->m == VF_MAP) return AFTER_EITHER;
  if (f != NULL && r->in_back && !r->after_intent) {
    /* Loading the index of the sealed segment to cut, before anything
     * changed: walrus.h promises the handle usable. */
    if (f->m == VF_PREAD) return AFTER_USABLE;
    /* Opening that segment (to read its index, or writable), or creating
     * META.tmp: nothing changed.  walrus.h lists WALRUS_EIO as poisoning;
     * walrus does not poison for the segment, does for META.tmp. */
    if (f->m == VF_OPEN) return AFTER_EITHER;
  }
  /* A write-side call (pwrite, sync, truncate, rename, unlink, sync_dir,
   * allocate), or anything once truncate_back's intent began. */
  return AFTER_POISONED;
}

static const char *after_name(after_t a) {
  return a == AFTER_USABLE     ? "usable"
         : a == AFTER_POISONED ? "poisoned"
                               : "poisoned or usable";
}

/* Run scenario sc with fault f armed at its nth call (f NULL: the reference
 * run, whose call counts go to ref).  Checks everything; returns whether the
 * fault fired. */
static int run_once(const scen_t *sc, const fault_t *f, uint64_t n,
                    counts_t *ref) {
  snprintf(g_ctx, sizeof g_ctx, "scenario \"%s\", fault \"%s\", N=%llu",
           sc->name, f ? f->name : "none (reference)", ULL(n));
  if (g_verbose) fprintf(stderr, "run: %s\n", g_ctx);
  tu_rmrf(g_run);
  if (sc->tpl != TPL_NONE) tu_copy_dir(g_tpl[sc->tpl], g_run);
  vf_misuse_clear(g_vf);
  g_nmodel = 0;
  if (sc->tpl != TPL_NONE) model_add(1, g_base_last, SEED_BASE, 0);

  run_t r;
  memset(&r, 0, sizeof r);
  r.sc = sc;
  walrus_config_t cf = scen_cfg(sc, 1);
  counts_t before, after;
  if (sc->op != NULL) {
    r.w = open_ok(g_run, &cf);
    g_live[0] = r.w;
    if (sc->pre != NULL) sc->pre(&r);
    r.v0 = view_of(r.w);
    take_counts(&before);
    arm(f, n);
    sc->op(&r);
    if (r.w != NULL) snprintf(r.msg, sizeof r.msg, "%s", walrus_errmsg(r.w));
  } else {
    take_counts(&before);
    arm(f, n);
    snprintf(r.what, sizeof r.what, "walrus_open");
    r.rc = walrus_open_ex(g_run, &cf, &r.w, r.msg, sizeof r.msg);
    g_live[0] = r.w;
    CHECK((r.rc == WALRUS_OK) == (r.w != NULL),
          "walrus_open returned %s and %s a handle", walrus_errname(r.rc),
          r.w ? "set" : "did not set");
    r.v0.first = 1; /* what the template holds */
    r.v0.last = sc->open_last();
    r.v0.next = r.v0.last + 1;
    if (r.v0.last == 0) r.v0.first = 0;
  }
  int hit = fired(f) > 0;
  disarm();
  if (g_verbose)
    fprintf(stderr, "  %s: %s%s%s\n", r.what, walrus_errname(r.rc),
            hit ? " (fault fired) " : "", hit ? r.msg : "");
  take_counts(&after);
  if (ref != NULL) {
    for (int m = 0; m < VF__COUNT; m++)
      ref->calls[m] = after.calls[m] - before.calls[m];
    ref->allocs = after.allocs - before.allocs;
  }

  /* (a) the code. */
  if (!hit) {
    CHECK(r.rc == WALRUS_OK, "no fault fired, yet %s returned %s: %s",
          r.what, walrus_errname(r.rc), r.msg);
  } else if (f->code == WALRUS_OK) {
    CHECK(r.rc == WALRUS_OK,
          "walrus should have coped with the failed %s, yet %s returned %s: "
          "%s",
          vf_method_name(f->m), r.what, walrus_errname(r.rc), r.msg);
  } else {
    CHECK(r.rc != WALRUS_OK,
          "the fault fired, yet %s returned WALRUS_OK (log %llu..%llu)",
          r.what, ULL(r.w ? walrus_first_index(r.w) : 0),
          ULL(r.w ? walrus_last_index(r.w) : 0));
    CHECK(r.rc == f->code || (f->code2 != WALRUS_OK && r.rc == f->code2),
          "%s returned %s, want %s: %s", r.what, walrus_errname(r.rc),
          walrus_errname(f->code), r.msg);
  }

  /* (b) poisoned or usable; and what the handle shows. */
  char why[256];
  ended_t ended = r.rc == WALRUS_OK ? END_DONE : END_FAILED;
  int exact = 0;
  view_t keep = {0, 0, 0};
  if (r.in_back && hit) r.after_intent = fired_after_intent(f);
  if (r.w != NULL) {
    after_t want = after_failure(&r, hit ? f : NULL);
    view_t v = view_of(r.w);
    int usable = want == AFTER_USABLE, synced = 0, src = WALRUS_OK;
    if (want == AFTER_EITHER) {
      /* Which one: a poisoned handle refuses the sync without a call. */
      src = walrus_sync(r.w);
      synced = 1;
      usable = src != WALRUS_EPOISONED;
    }
    if (g_verbose && r.rc != WALRUS_OK)
      fprintf(stderr, "  want %s%s: %s\n", after_name(want),
              r.in_back ? (r.after_intent ? " (after the intent)"
                                          : " (before the intent)")
                        : "",
              usable ? "usable" : "poisoned");
    if (usable) {
      if (r.rc != WALRUS_OK) {
        ended = END_NOEFFECT;
        int rc = synced ? src : walrus_sync(r.w);
        CHECK(rc == WALRUS_OK,
              "after %s returned %s, walrus_sync returned %s: the handle "
              "should still be usable (%s)",
              r.what, walrus_errname(r.rc), walrus_errname(rc),
              walrus_errmsg(r.w));
      }
      CHECK(outcome_ok(&r, v, ended, why, sizeof why),
            "after %s returned %s the handle shows a wrong log: %s", r.what,
            walrus_errname(r.rc), why);
      check_view(r.w, v, 1);
      if (r.rc != WALRUS_OK) {
        /* Still usable: a further append succeeds. */
        int rc = append_seeded(r.w, SEED_USE, NULL);
        CHECK(rc == WALRUS_OK,
              "after %s returned %s the handle refuses an append: %s: %s",
              r.what, walrus_errname(r.rc), walrus_errname(rc),
              walrus_errmsg(r.w));
        v = view_of(r.w);
        check_view(r.w, v, 1);
      }
      g_live[0] = NULL;
      int rc = walrus_close(r.w);
      CHECK(rc == WALRUS_OK, "close: %s", walrus_errname(rc));
      exact = 1;
      keep = v;
    } else {
      expect_poisoned(r.w);
      check_view(r.w, view_of(r.w), sc->strict_reads);
      g_live[0] = NULL;
      int rc = walrus_close(r.w);
      CHECK(rc == WALRUS_OK, "close of the poisoned handle: %s",
            walrus_errname(rc));
    }
    r.w = NULL;
  }
  {
    /* walrus kept the map contract (walrus_vfs.h) all along. */
    char m[160];
    uint64_t bad = vf_misuse(g_vf, m, sizeof m);
    CHECK(bad == 0,
          "walrus broke the VFS map contract %llu times (\"unmaps before it "
          "truncates the file or closes it\"); first: %s",
          ULL(bad), m);
  }

  /* (c) reopen with the plain POSIX VFS. */
  walrus_config_t pc = scen_cfg(sc, 0);
  walrus_t *w = open_ok(g_run, &pc);
  g_live[1] = w;
  view_t v = view_of(w);
  if (exact)
    CHECK(view_eq(v, keep),
          "reopened log %llu..%llu (next %llu), the handle showed %llu..%llu "
          "(next %llu)",
          ULL(v.first), ULL(v.last), ULL(v.next), ULL(keep.first),
          ULL(keep.last), ULL(keep.next));
  else
    CHECK(outcome_ok(&r, v, ended, why, sizeof why),
          "after %s returned %s, the reopened log is wrong: %s", r.what,
          walrus_errname(r.rc), why);
  check_view(w, v, 1);
  if (ref != NULL && sc->max_segments != 0) g_fref = v.first;
  uint64_t idx = 0;
  int rc = append_seeded(w, SEED_AFTER, &idx);
  CHECK(rc == WALRUS_OK, "reopened log refuses an append: %s: %s",
        walrus_errname(rc), walrus_errmsg(w));
  check_entry_at(w, idx, 1, NULL);
  CHECK(walrus_last_index(w) == idx, "last %llu after appending %llu",
        ULL(walrus_last_index(w)), ULL(idx));
  g_live[1] = NULL;
  rc = walrus_close(w);
  CHECK(rc == WALRUS_OK, "close: %s", walrus_errname(rc));
  return hit;
}

/* WALRUS_SWEEP_COLLECT: one run whose failed check returns here. */
static void collect_one(const scen_t *sc, const fault_t *f, uint64_t n) {
  if (setjmp(g_jmp) == 0) {
    g_in_run = 1;
    run_once(sc, f, n, NULL);
    g_in_run = 0;
  }
  disarm();
}

/* Sweep fault f over scenario sc: N = 1, 2, ... until it does not fire.
 * Returns the number of failure points. */
static uint64_t sweep(const scen_t *sc, const fault_t *f,
                      const counts_t *ref) {
  uint64_t n = 1;
  if (g_collect) {
    /* Every point the reference run counted, and the one after. */
    uint64_t want = expected_points(ref, f);
    for (n = 1; n <= want + 1; n++) collect_one(sc, f, n);
    return want;
  }
  while (run_once(sc, f, n, NULL)) {
    n++;
    CHECK(n < MAX_POINTS, "runaway sweep");
  }
  uint64_t points = n - 1;
  snprintf(g_ctx, sizeof g_ctx, "scenario \"%s\", fault \"%s\"", sc->name,
           f->name);
  CHECK(points == expected_points(ref, f),
        "the sweep failed %llu calls, but a fault-free run makes %llu",
        ULL(points), ULL(expected_points(ref, f)));
  return points;
}

/* Run every fault over the given scenarios; print the table; check that
 * each scenario had a fault fire and that the total reaches floor. */
static void sweep_all(const int *ids, size_t nids, uint64_t floor) {
  uint64_t total = 0;
  for (size_t s = 0; s < nids; s++) {
    const scen_t *sc = &SCENARIOS[ids[s]];
    need_tpl(sc->tpl);
    counts_t ref;
    g_fref = 0;
    run_once(sc, NULL, 0, &ref);
    snprintf(g_ctx, sizeof g_ctx, "scenario \"%s\", reference run",
             sc->name);
    CHECK(ref.calls[VF_MAP] >= sc->min_maps,
          "the reference run mapped %llu times, want at least %u",
          ULL(ref.calls[VF_MAP]), sc->min_maps);
    CHECK(sc->mapped || ref.calls[VF_MAP] + ref.calls[VF_ALLOCATE] == 0,
          "allocate or map called without mapped writes");
    uint64_t sum = 0;
    for (size_t k = 0; k < N_FAULTS; k++) {
      if (FAULTS[k].back_only && sc->out != OUT_BACK) {
        cr_log_info("fault sweep | %-26s | %-19s |    -", sc->name,
                    FAULTS[k].name);
        continue;
      }
      uint64_t p = sweep(sc, &FAULTS[k], &ref);
      cr_log_info("fault sweep | %-26s | %-19s | %4llu", sc->name,
                  FAULTS[k].name, ULL(p));
      sum += p;
    }
    cr_log_info("fault sweep | %-26s | %-19s | %4llu", sc->name, "(all)",
                ULL(sum));
    snprintf(g_ctx, sizeof g_ctx, "scenario \"%s\"", sc->name);
    CHECK(sum > 0, "no fault fired in this scenario");
    total += sum;
  }
  cr_log_info("fault sweep | total failure points: %llu", ULL(total));
  if (g_collect)
    cr_expect_eq(g_collected, 0, "%llu failed checks (SWEEP FAILURE lines)",
                 ULL(g_collected));
  snprintf(g_ctx, sizeof g_ctx, "totals");
  CHECK(total >= floor,
        "only %llu failure points were exercised; the floor is %llu",
        ULL(total), ULL(floor));
}

/* ---- fixture and tests -------------------------------------------------------- */

static void setup(void) {
  const char *v = getenv("WALRUS_SWEEP_VERBOSE");
  g_verbose = v != NULL && v[0] != '\0' && v[0] != '0';
  v = getenv("WALRUS_SWEEP_COLLECT");
  g_collect = v != NULL && v[0] != '\0' && v[0] != '0';
  struct stat st;
  char tmpl[] = "/dev/shm/walrus-sweep-XXXXXX";
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
      access("/dev/shm", W_OK) == 0 && mkdtemp(tmpl) != NULL) {
    g_root = strdup(tmpl);
    cr_assert_not_null(g_root);
  } else {
    g_root = tu_tmpdir();
  }
  snprintf(g_run, sizeof g_run, "%s/run", g_root);
  for (int t = 0; t < TPL__COUNT; t++)
    snprintf(g_tpl[t], sizeof g_tpl[t], "%s/tpl%d", g_root, t);
  g_vf = vf_new();
  cr_assert_not_null(g_vf);
}

static void teardown(void) {
  vf_free(g_vf);
  g_vf = NULL;
  tu_tmpdir_remove(g_root);
  g_root = NULL;
}

TestSuite(fault_sweep, .init = setup, .fini = teardown, .timeout = 240);

/* Floors: the failure points each group exercised when they were measured
 * (writes 214, rotation and retention 596, truncation and reset 150, open
 * 185, mapped writes 212, mapped tail removed 97: 1454 in all), less about
 * a fifth, so that a library change that legitimately drops a few calls
 * does not trip them while a sweep that silently shrinks does.  Together
 * they put the total at 1160 or more. */

Test(fault_sweep, writes) {
  static const int ids[] = {S_APPEND, S_BATCH, S_TX, S_CLOSE, S_READ};
  sweep_all(ids, sizeof ids / sizeof ids[0], 170);
}

Test(fault_sweep, rotation_and_retention) {
  static const int ids[] = {S_ROTATION, S_SYNC_NONE, S_RETENTION};
  sweep_all(ids, sizeof ids / sizeof ids[0], 475);
}

Test(fault_sweep, truncation_and_reset) {
  static const int ids[] = {S_TRUNC_FRONT, S_TB_BOUNDARY, S_TB_INSIDE,
                            S_TB_BATCH,    S_TB_TAIL,     S_RESET};
  sweep_all(ids, sizeof ids / sizeof ids[0], 120);
}

Test(fault_sweep, open_and_recovery) {
  static const int ids[] = {S_OPEN_CREATE,     S_OPEN_CLEAN,
                            S_OPEN_TORN,       S_OPEN_INTENT_CUT,
                            S_OPEN_INTENT_UNLINK, S_OPEN_SEALED};
  sweep_all(ids, sizeof ids / sizeof ids[0], 150);
}

Test(fault_sweep, mapped_writes) {
  static const int ids[] = {S_MAPPED_APPEND, S_MAPPED_TB, S_MAPPED_CLOSE};
  sweep_all(ids, sizeof ids / sizeof ids[0], 170);
}


/* Removing the mapped tail: truncate_back below it, and reset.  Apart from
 * the other mapped scenarios because this version of walrus closes the
 * tail's file before it drops the mapping, and then calls unmap with no
 * file (drop_segments() in src/truncate.c), which the misuse check reports
 * in the reference run: this test fails until that is fixed.  Its floor was
 * measured with it fixed (unmap before the close): 97 points. */
Test(fault_sweep, mapped_tail_removed) {
  static const int ids[] = {S_MAPPED_TB_DROP, S_MAPPED_RESET};
  sweep_all(ids, sizeof ids / sizeof ids[0], 75);
}
