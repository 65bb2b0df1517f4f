/*
 * test_badinput.c: every public function of walrus.h, called with every
 * kind of bad argument that applies to it, from one table.
 *
 * This file owns the refusals: NULL handles, out-parameters, entries, ids
 * and paths; zero and huge sizes, counts and indexes; read-only and
 * poisoned handles; unknown, finished, expired and malformed transaction
 * ids; bad configuration fields; iterator misuse; views, bounded ranges,
 * batched reads, waits for durability, refreshes and follow iterators.
 * Each row names the function, the bad argument, a small call, and the
 * code walrus.h documents for it.  Every row runs in its own process (a
 * Criterion parameterized test, so a crash fails one row only) on a fresh log
 * of 20 entries over several 4 KiB segments, and checks that:
 *
 *  - the call returns the documented code;
 *  - this call set walrus_errmsg() of the handle it was given (or the
 *    message buffer of walrus_open_ex / walrus_config_check) to a message
 *    naming the problem;
 *  - every out-parameter is untouched;
 *  - nothing was written: no write-side VFS call, the same write counters;
 *  - the log is unchanged: first, last and next index, every entry (same
 *    checksum, and byte for byte what was appended), the segment files;
 *    and the indexes and entries again after closing and reopening.
 *
 * The rows say what walrus.h says, even where the library disagrees: such
 * a row fails until one of the two is fixed.  A separate test checks that
 * every function walrus.h declares has rows (or is listed as taking no bad
 * argument) and that the table keeps at least MIN_ROWS rows; a report hook
 * logs how many rows ran (--verbose shows it).
 *
 * Successful calls are tested in test_api.c and test_tx.c, I/O faults in
 * test_failstop.c.  Not covered here:
 *  - a closed handle: walrus_close() frees it, so any later call is a
 *    use-after-free the library cannot detect (no call returns
 *    WALRUS_ECLOSED, as walrus.h says);
 *  - NULL for walrus_config_default() ("must not be NULL"), and for
 *    walrus_errmsg(), walrus_last_errno() and walrus_durable_index(), whose
 *    NULL behaviour walrus.h does not state;
 *  - a transaction "being committed" (WALRUS_ETXNOTPENDING), which needs a
 *    second thread inside walrus_tx_commit().
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/parameterized.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus.h"
#include "walrus_vfs.h"

#define SEED 0xBAD1u
#define NENTRIES 20          /* entries in every fixture log */
#define PAYLOAD_MAX 900      /* their largest payload */
#define SEG_BYTES 4096       /* segment_bytes: several segments */
#define MAX_ENTRY (1u << 20) /* max_entry_bytes: 1 MiB */
#define TX_MAX_ENTRIES 8     /* tx_max_entries */
#define TX_MAX_BYTES 4096    /* tx_max_pending_bytes */
#define TXID_LEN 35          /* strlen of "tx_" and 32 hex digits */
#define MIN_ROWS 310         /* the table must never shrink below this */

/* ---- the fixture -------------------------------------------------------- */

/* What a row needs prepared before its call (fx_setup applies them in the
 * order listed). */
enum {
  S_ITER = 1u << 0,            /* it: an iterator of w at the first entry */
  S_FRONT = 1u << 1,           /* truncate_front(6): first index 6 */
  S_EMPTY = 1u << 2,           /* truncate_front(21): empty, next still 21 */
  S_TX = 1u << 3,              /* tx: pending on w, one 10-byte entry */
  S_TX_EMPTY = 1u << 4,        /* tx: pending on w, no entry */
  S_TX_FULL = 1u << 5,         /* tx: holding tx_max_entries entries */
  S_TX_BYTES = 1u << 6,        /* tx: holding 4 x 1000 of the 4096 bytes */
  S_TX_EXPIRED = 1u << 7,      /* tx: begun with 1 ms timeout, 20 ms ago */
  S_DONE_COMMIT = 1u << 8,     /* done: an empty transaction, committed */
  S_DONE_ROLLBACK = 1u << 9,   /* done: a transaction rolled back */
  S_DONE_FORGOTTEN = 1u << 10, /* done: rolled back, then 4096 more ended */
  S_POISON = 1u << 11,         /* w: poisoned by a failed fsync */
  S_RO_AFTER = 1u << 12,       /* w closed (NULL), then ro opened */
  S_RO_BESIDE = 1u << 13       /* ro: read-only handle beside the writer */
};

/* Out-parameters for the calls: preset to sentinels, which they must still
 * hold after a failed call. */
typedef struct outs {
  uint64_t index;          /* an index */
  size_t count;            /* a count */
  walrus_entry_t entry;    /* an entry */
  walrus_iter_t *it;       /* an iterator */
  walrus_t *w;             /* a handle */
  walrus_txid_t id;        /* a transaction id */
  walrus_tx_state_t state; /* a transaction state */
  walrus_stats_t stats;    /* counters */
  walrus_view_t view;      /* a view */
  walrus_inspect_t inspect;        /* walrus_inspect's report */
  walrus_verify_result_t verified; /* walrus_verify's counts */
  walrus_repair_plan_t plan;       /* walrus_repair_plan's plan */
} outs_t;

/* One row's world. */
typedef struct fx {
  char *tmp;                          /* the row's temp dir */
  char dir[4096];                     /* the log: "<tmp>/log" */
  vf_t *vf;                           /* the fault VFS under w and ro */
  walrus_config_t cfg;                /* w's configuration */
  walrus_t *w;                        /* the writer (NULL after S_RO_AFTER) */
  walrus_t *ro;                       /* a read-only handle, or NULL */
  walrus_iter_t *it;                  /* S_ITER's iterator on w */
  walrus_iter_t *it_ro;               /* an iterator on ro a call opened */
  walrus_txid_t tx;                   /* a pending transaction (S_TX...) */
  walrus_txid_t done;                 /* a finished one (S_DONE_...) */
  walrus_entry_t e;                   /* a valid entry (index 21) */
  walrus_entry_t batch[3];            /* valid entries 21..23 */
  unsigned char ebuf[4][PAYLOAD_MAX]; /* their payloads */
  unsigned char big[2 * MAX_ENTRY];   /* payload for too-large entries */
  int arg;                            /* the variant of a generated row */
  walrus_t *target;                   /* handle whose errmsg the call sets */
  char msg[512];                      /* open_ex / config_check message */
  outs_t o;                           /* out-parameters */
} fx_t;

#define SENT_PTR ((void *)(uintptr_t)0xA5A5A5A5A5A5A5A0ull)
#define SENT_STATE ((walrus_tx_state_t)0x5A)
#define SENT_MSG "(untouched)"

static char g_tag[256]; /* "row N fn (bad)": prefixes every message */

static walrus_config_t base_cfg(void) {
  walrus_config_t c;
  walrus_config_default(&c);
  c.segment_bytes = SEG_BYTES;
  c.max_entry_bytes = MAX_ENTRY;
  c.tx_max_entries = TX_MAX_ENTRIES;
  c.tx_max_pending_bytes = TX_MAX_BYTES;
  return c;
}

/* Add an entry of len bytes to f->tx. */
static void tx_put(fx_t *f, size_t len) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = f->big;
  e.len = len;
  TU_OK(f->w, walrus_tx_add(f->w, &f->tx, &e));
}

static void fx_setup(fx_t *f, unsigned flags) {
  f->tmp = tu_tmpdir();
  snprintf(f->dir, sizeof f->dir, "%s/log", f->tmp);
  f->vf = vf_new();
  cr_assert_not_null(f->vf);
  f->cfg = base_cfg();
  f->cfg.vfs = vf_vfs(f->vf);
  f->w = tu_open(f->dir, &f->cfg);
  tu_append_n(f->w, NENTRIES, SEED, PAYLOAD_MAX);
  cr_assert_geq(tu_segments(f->dir, NULL), 3u, "the fixture wants segments");
  tu_entry_set(&f->e, NENTRIES + 1, SEED, PAYLOAD_MAX, f->ebuf[0]);
  for (int i = 0; i < 3; i++)
    tu_entry_set(&f->batch[i], NENTRIES + 1 + (uint64_t)i, SEED, PAYLOAD_MAX,
                 f->ebuf[1 + i]);
  memset(f->big, 'x', sizeof f->big);

  if (flags & S_ITER) TU_OK(f->w, walrus_iter_open(f->w, 0, &f->it));
  if (flags & S_FRONT) TU_OK(f->w, walrus_truncate_front(f->w, 6));
  if (flags & S_EMPTY) TU_OK(f->w, walrus_truncate_front(f->w, NENTRIES + 1));
  if (flags & (S_TX | S_TX_EMPTY | S_TX_FULL | S_TX_BYTES))
    TU_OK(f->w, walrus_tx_begin(f->w, 0, &f->tx));
  if (flags & S_TX) tx_put(f, 10);
  if (flags & S_TX_FULL)
    for (int i = 0; i < TX_MAX_ENTRIES; i++) tx_put(f, 0);
  if (flags & S_TX_BYTES)
    for (int i = 0; i < 4; i++) tx_put(f, 1000);
  if (flags & S_TX_EXPIRED) {
    TU_OK(f->w, walrus_tx_begin(f->w, 1, &f->tx));
    tu_sleep_ms(20);
  }
  if (flags & S_DONE_COMMIT) {
    size_t n = 99;
    TU_OK(f->w, walrus_tx_begin(f->w, 0, &f->done));
    TU_OK(f->w, walrus_tx_commit(f->w, &f->done, NULL, &n));
    cr_assert_eq(n, 0u);
  }
  if (flags & (S_DONE_ROLLBACK | S_DONE_FORGOTTEN)) {
    TU_OK(f->w, walrus_tx_begin(f->w, 0, &f->done));
    TU_OK(f->w, walrus_tx_rollback(f->w, &f->done));
  }
  if (flags & S_DONE_FORGOTTEN) /* walrus.h: "the last 4096" are kept */
    for (int i = 0; i < 4096; i++) {
      walrus_txid_t id;
      TU_OK(f->w, walrus_tx_begin(f->w, 0, &id));
      TU_OK(f->w, walrus_tx_rollback(f->w, &id));
    }
  if (flags & S_POISON) {
    vf_arm_fail(f->vf, VF_SYNC, 1, -EIO, 1);
    TU_EXPECT(WALRUS_EIO_FSYNC, walrus_append(f->w, &f->e, NULL));
    vf_disarm(f->vf);
  }
  if (flags & S_RO_AFTER) {
    TU_OK(f->w, walrus_close(f->w));
    f->w = NULL;
  }
  if (flags & (S_RO_AFTER | S_RO_BESIDE)) {
    walrus_config_t c = f->cfg;
    c.read_only = 1;
    f->ro = tu_open(f->dir, &c);
  }
}

/* ---- callables: one bad call each, returning what the call returned ---- */

/* A handle of a second log, with a pending transaction in *id. */
static walrus_t *other_log_tx(fx_t *f, walrus_txid_t *id) {
  walrus_t *o = tu_open(tu_path(f->tmp, "other"), NULL);
  TU_OK(o, walrus_tx_begin(o, 0, id));
  return o;
}

/* A well-formed id no handle has issued. */
static walrus_txid_t unknown_id(void) {
  walrus_txid_t id;
  snprintf(id.s, sizeof id.s, "tx_%032x", 0x0bad1du);
  return id;
}

/* walrus_config_check */
static int64_t cc_null_cfg(fx_t *f) {
  return walrus_config_check(NULL, f->msg, sizeof f->msg);
}
static int64_t cc_null_cfg_null_msg(fx_t *f) {
  (void)f;
  return walrus_config_check(NULL, NULL, 0);
}
static int64_t cc_msglen_0(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.segment_bytes = 0;
  int rc = walrus_config_check(&c, f->msg, 0);
  cr_assert_str_eq(f->msg, SENT_MSG, "%s: msglen 0, yet msg was written",
                   g_tag);
  return rc;
}
static int64_t cc_msglen_8(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.segment_bytes = 0;
  int rc = walrus_config_check(&c, f->msg, 8);
  cr_assert_str_eq(f->msg, "segment", "%s: the message, cut to 8 bytes", g_tag);
  cr_assert_str_eq(&f->msg[8], &SENT_MSG[8], "%s: wrote past msglen", g_tag);
  return rc;
}

/* walrus_open, walrus_open_ex */
static int64_t open_null_dir(fx_t *f) {
  return walrus_open(NULL, &f->cfg, &f->o.w);
}
static int64_t open_null_out(fx_t *f) {
  return walrus_open(f->dir, &f->cfg, NULL);
}
static int64_t open_bad_cfg(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.segment_bytes = 0;
  return walrus_open(f->dir, &c, &f->o.w);
}
static int64_t openex_null_dir(fx_t *f) {
  return walrus_open_ex(NULL, &f->cfg, &f->o.w, f->msg, sizeof f->msg);
}
static int64_t openex_empty_dir(fx_t *f) {
  return walrus_open_ex("", &f->cfg, &f->o.w, f->msg, sizeof f->msg);
}
static int64_t openex_null_out(fx_t *f) {
  return walrus_open_ex(f->dir, &f->cfg, NULL, f->msg, sizeof f->msg);
}
static int64_t openex_errlen_0(fx_t *f) {
  int rc = walrus_open_ex(NULL, &f->cfg, &f->o.w, f->msg, 0);
  cr_assert_str_eq(f->msg, SENT_MSG, "%s: errlen 0, yet errbuf was written",
                   g_tag);
  return rc;
}
static int64_t openex_long_dir(fx_t *f) {
  static char dir[5000];
  memset(dir, 'a', sizeof dir - 1);
  dir[0] = '/';
  return walrus_open_ex(dir, &f->cfg, &f->o.w, f->msg, sizeof f->msg);
}
static int64_t openex_second_writer(fx_t *f) {
  return walrus_open_ex(f->dir, &f->cfg, &f->o.w, f->msg, sizeof f->msg);
}
static int64_t openex_missing_no_create(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.create_if_missing = 0;
  const char *dir = tu_path(f->tmp, "missing");
  int rc = walrus_open_ex(dir, &c, &f->o.w, f->msg, sizeof f->msg);
  cr_assert(!tu_exists(dir), "%s: %s was created", g_tag, dir);
  return rc;
}
static int64_t openex_missing_read_only(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.read_only = 1;
  const char *dir = tu_path(f->tmp, "missing");
  int rc = walrus_open_ex(dir, &c, &f->o.w, f->msg, sizeof f->msg);
  cr_assert(!tu_exists(dir), "%s: %s was created", g_tag, dir);
  return rc;
}
static int64_t openex_dir_is_file(fx_t *f) {
  walrus_config_t c = base_cfg();
  char path[4096];
  size_t len;
  snprintf(path, sizeof path, "%s", tu_path(f->tmp, "afile"));
  tu_write_file(path, "not a log", 9);
  int rc = walrus_open_ex(path, &c, &f->o.w, f->msg, sizeof f->msg);
  unsigned char *b = tu_read_file(path, &len);
  cr_assert(len == 9 && memcmp(b, "not a log", 9) == 0,
            "%s: the file was changed", g_tag);
  free(b);
  return rc;
}
static int64_t openex_read_only_salvage(fx_t *f) {
  walrus_config_t c = base_cfg();
  c.read_only = 1;
  c.recovery = WALRUS_RECOVER_SALVAGE;
  return walrus_open_ex(f->dir, &c, &f->o.w, f->msg, sizeof f->msg);
}

/* walrus_close */
static int64_t close_null(fx_t *f) {
  (void)f;
  return walrus_close(NULL);
}
static int64_t close_with_iterator(fx_t *f) {
  f->target = f->w;
  return walrus_close(f->w);
}
static int64_t close_ro_with_iterator(fx_t *f) {
  TU_OK(f->ro, walrus_iter_open(f->ro, 0, &f->it_ro));
  f->target = f->ro;
  return walrus_close(f->ro);
}

/* walrus_append */
static int64_t append_null_w(fx_t *f) {
  return walrus_append(NULL, &f->e, &f->o.index);
}
static int64_t append_null_e(fx_t *f) {
  f->target = f->w;
  return walrus_append(f->w, NULL, &f->o.index);
}
static int64_t append_data_null(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = NULL;
  e.len = 5;
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_txid_empty(fx_t *f) {
  walrus_entry_t e = f->e;
  e.tx_id = "";
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_txid_256(fx_t *f) {
  static char id[257];
  memset(id, 'i', 256);
  walrus_entry_t e = f->e;
  e.tx_id = id;
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_too_large(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = MAX_ENTRY + 1;
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_too_large_with_txid(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = MAX_ENTRY - 2; /* fits alone; with the 3-byte id it does not */
  e.tx_id = "abc";
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_len_size_max(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = SIZE_MAX;
  f->target = f->w;
  return walrus_append(f->w, &e, &f->o.index);
}
static int64_t append_ro(fx_t *f) {
  f->target = f->ro;
  return walrus_append(f->ro, &f->e, &f->o.index);
}
static int64_t append_poisoned(fx_t *f) {
  f->target = f->w;
  return walrus_append(f->w, &f->e, &f->o.index);
}

/* walrus_write_batch */
static int64_t batch_null_w(fx_t *f) {
  return walrus_write_batch(NULL, f->batch, 3, &f->o.index);
}
static int64_t batch_null_e(fx_t *f) {
  f->target = f->w;
  return walrus_write_batch(f->w, NULL, 3, &f->o.index);
}
static int64_t batch_n_0(fx_t *f) {
  f->target = f->w;
  return walrus_write_batch(f->w, f->batch, 0, &f->o.index);
}
static int64_t batch_data_null(fx_t *f) {
  f->batch[1].data = NULL;
  f->batch[1].len = 5;
  f->target = f->w;
  return walrus_write_batch(f->w, f->batch, 3, &f->o.index);
}
static int64_t batch_too_large(fx_t *f) {
  f->batch[2].data = f->big;
  f->batch[2].len = MAX_ENTRY + 1;
  f->target = f->w;
  return walrus_write_batch(f->w, f->batch, 3, &f->o.index);
}
static int64_t batch_txid_empty(fx_t *f) {
  f->batch[1].tx_id = "";
  f->target = f->w;
  return walrus_write_batch(f->w, f->batch, 3, &f->o.index);
}
static int64_t batch_huge_count(fx_t *f) {
  /* 4100 entries of max_entry_bytes: their records need 4.3 GB, more than
   * the 4 GiB a batch may have.  (The same limit reached with empty
   * entries takes 100 million of them: a minute under ASan.)  All share one
   * buffer; should walrus try to write them anyway, the first pwrite fails
   * instead of filling the disk. */
  size_t n = (size_t)(4ull << 30) / MAX_ENTRY + 4;
  walrus_entry_t *e = calloc(n, sizeof *e);
  cr_assert_not_null(e);
  for (size_t i = 0; i < n; i++) {
    e[i].data = f->big;
    e[i].len = MAX_ENTRY;
  }
  vf_arm_fail(f->vf, VF_PWRITE, 1, -ENOSPC, 1);
  f->target = f->w;
  int rc = walrus_write_batch(f->w, e, n, &f->o.index);
  vf_disarm(f->vf);
  free(e);
  return rc;
}
static int64_t batch_ro(fx_t *f) {
  f->target = f->ro;
  return walrus_write_batch(f->ro, f->batch, 3, &f->o.index);
}
static int64_t batch_poisoned(fx_t *f) {
  f->target = f->w;
  return walrus_write_batch(f->w, f->batch, 3, &f->o.index);
}

/* walrus_get */
static int64_t get_null_w(fx_t *f) {
  return walrus_get(NULL, 1, &f->o.entry);
}
static int64_t get_null_out(fx_t *f) {
  f->target = f->w;
  return walrus_get(f->w, 1, NULL);
}
static int64_t get_at(fx_t *f, walrus_t *h, uint64_t index) {
  f->target = h;
  return walrus_get(h, index, &f->o.entry);
}
static int64_t get_0(fx_t *f) {
  return get_at(f, f->w, 0);
}
static int64_t get_past_last(fx_t *f) {
  return get_at(f, f->w, NENTRIES + 1);
}
static int64_t get_u64_max(fx_t *f) {
  return get_at(f, f->w, UINT64_MAX);
}
static int64_t get_5(fx_t *f) {
  return get_at(f, f->w, 5);
}
static int64_t get_21(fx_t *f) {
  return get_at(f, f->w, NENTRIES + 1);
}
static int64_t get_ro_0(fx_t *f) {
  return get_at(f, f->ro, 0);
}

/* walrus_entry_free */
static int64_t entry_free_null(fx_t *f) {
  (void)f;
  walrus_entry_free(NULL);
  return WALRUS_OK;
}
static int64_t entry_free_twice(fx_t *f) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_OK(f->w, walrus_get(f->w, 3, &e));
  walrus_entry_free(&e);
  cr_assert(e.data == NULL && e.tx_id == NULL, "%s: pointers not cleared",
            g_tag);
  walrus_entry_free(&e);
  return WALRUS_OK;
}

/* walrus_first_index, walrus_last_index, walrus_next_index: 0 for NULL */
static int64_t first_index_null(fx_t *f) {
  (void)f;
  return (int64_t)walrus_first_index(NULL);
}
static int64_t last_index_null(fx_t *f) {
  (void)f;
  return (int64_t)walrus_last_index(NULL);
}
static int64_t next_index_null(fx_t *f) {
  (void)f;
  return (int64_t)walrus_next_index(NULL);
}

/* walrus_sync */
static int64_t sync_null(fx_t *f) {
  (void)f;
  return walrus_sync(NULL);
}
static int64_t sync_w(fx_t *f) {
  f->target = f->w;
  return walrus_sync(f->w);
}
static int64_t sync_ro(fx_t *f) {
  f->target = f->ro;
  return walrus_sync(f->ro);
}

/* walrus_truncate_back, walrus_truncate_front, walrus_reset */
static int64_t tback_null(fx_t *f) {
  (void)f;
  return walrus_truncate_back(NULL, 10);
}
static int64_t tback(fx_t *f, walrus_t *h, uint64_t last_kept) {
  f->target = h;
  return walrus_truncate_back(h, last_kept);
}
static int64_t tback_past_last(fx_t *f) {
  return tback(f, f->w, NENTRIES + 1);
}
static int64_t tback_u64_max(fx_t *f) {
  return tback(f, f->w, UINT64_MAX);
}
static int64_t tback_4(fx_t *f) {
  return tback(f, f->w, 4);
}
static int64_t tback_10(fx_t *f) {
  return tback(f, f->w, 10);
}
static int64_t tback_ro_10(fx_t *f) {
  return tback(f, f->ro, 10);
}

static int64_t tfront_null(fx_t *f) {
  (void)f;
  return walrus_truncate_front(NULL, 10);
}
static int64_t tfront(fx_t *f, walrus_t *h, uint64_t first_kept) {
  f->target = h;
  return walrus_truncate_front(h, first_kept);
}
static int64_t tfront_0(fx_t *f) {
  return tfront(f, f->w, 0);
}
static int64_t tfront_past_next(fx_t *f) {
  return tfront(f, f->w, NENTRIES + 2);
}
static int64_t tfront_u64_max(fx_t *f) {
  return tfront(f, f->w, UINT64_MAX);
}
static int64_t tfront_5(fx_t *f) {
  return tfront(f, f->w, 5);
}
static int64_t tfront_10(fx_t *f) {
  return tfront(f, f->w, 10);
}
static int64_t tfront_ro_10(fx_t *f) {
  return tfront(f, f->ro, 10);
}

static int64_t reset_null(fx_t *f) {
  (void)f;
  return walrus_reset(NULL, 100);
}
static int64_t reset_0(fx_t *f) {
  f->target = f->w;
  return walrus_reset(f->w, 0);
}
static int64_t reset_100(fx_t *f) {
  f->target = f->w;
  return walrus_reset(f->w, 100);
}
static int64_t reset_past_max(fx_t *f) {
  f->target = f->w;
  return walrus_reset(f->w, WALRUS_INDEX_MAX + 1);
}
static int64_t reset_ro_100(fx_t *f) {
  f->target = f->ro;
  return walrus_reset(f->ro, 100);
}

/* walrus_iter_open, walrus_iter_next, walrus_iter_close */
static int64_t iopen_null_w(fx_t *f) {
  return walrus_iter_open(NULL, 0, &f->o.it);
}
static int64_t iopen_null_it(fx_t *f) {
  f->target = f->w;
  return walrus_iter_open(f->w, 0, NULL);
}
static int64_t iopen_at(fx_t *f, uint64_t start) {
  f->target = f->w;
  return walrus_iter_open(f->w, start, &f->o.it);
}
static int64_t iopen_past_next(fx_t *f) {
  return iopen_at(f, NENTRIES + 2);
}
static int64_t iopen_u64_max(fx_t *f) {
  return iopen_at(f, UINT64_MAX);
}
static int64_t iopen_5(fx_t *f) {
  return iopen_at(f, 5);
}

static int64_t inext_null_it(fx_t *f) {
  return walrus_iter_next(NULL, &f->o.entry);
}
static int64_t inext_null_out(fx_t *f) {
  f->target = f->w;
  return walrus_iter_next(f->it, NULL);
}
static int64_t inext_past_end(fx_t *f) {
  walrus_entry_t e;
  for (int i = 0; i < NENTRIES; i++) TU_OK(f->w, walrus_iter_next(f->it, &e));
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(f->it, &e));
  f->target = f->w;
  return walrus_iter_next(f->it, &f->o.entry); /* DONE again */
}
static int64_t inext_removed(fx_t *f) {
  f->target = f->w;
  return walrus_iter_next(f->it, &f->o.entry);
}
static int64_t iclose_null(fx_t *f) {
  (void)f;
  walrus_iter_close(NULL);
  return WALRUS_OK;
}

/* walrus_iter_open_follow */
static int64_t ifollow_null_w(fx_t *f) {
  return walrus_iter_open_follow(NULL, 0, 10, &f->o.it);
}
static int64_t ifollow_null_it(fx_t *f) {
  f->target = f->w;
  return walrus_iter_open_follow(f->w, 0, 10, NULL);
}
static int64_t ifollow_at(fx_t *f, walrus_t *h, uint64_t start) {
  f->target = h;
  return walrus_iter_open_follow(h, start, 10, &f->o.it);
}
static int64_t ifollow_past_next(fx_t *f) {
  return ifollow_at(f, f->w, NENTRIES + 2);
}
static int64_t ifollow_u64_max(fx_t *f) {
  return ifollow_at(f, f->w, UINT64_MAX);
}
static int64_t ifollow_5(fx_t *f) {
  return ifollow_at(f, f->w, 5);
}
static int64_t ifollow_ro_past_next(fx_t *f) {
  return ifollow_at(f, f->ro, NENTRIES + 2);
}

/* walrus_get_view, walrus_view_release */
static int64_t gview_null_w(fx_t *f) {
  return walrus_get_view(NULL, 1, &f->o.view);
}
static int64_t gview_null_view(fx_t *f) {
  f->target = f->w;
  return walrus_get_view(f->w, 1, NULL);
}
static int64_t gview_at(fx_t *f, walrus_t *h, uint64_t index) {
  f->target = h;
  return walrus_get_view(h, index, &f->o.view);
}
static int64_t gview_0(fx_t *f) {
  return gview_at(f, f->w, 0);
}
static int64_t gview_past_last(fx_t *f) {
  return gview_at(f, f->w, NENTRIES + 1);
}
static int64_t gview_u64_max(fx_t *f) {
  return gview_at(f, f->w, UINT64_MAX);
}
static int64_t gview_5(fx_t *f) {
  return gview_at(f, f->w, 5);
}
static int64_t gview_21(fx_t *f) {
  return gview_at(f, f->w, NENTRIES + 1);
}
static int64_t gview_ro_0(fx_t *f) {
  return gview_at(f, f->ro, 0);
}
static int64_t vrelease_null(fx_t *f) {
  (void)f;
  walrus_view_release(NULL);
  return WALRUS_OK;
}
static int64_t vrelease_twice(fx_t *f) {
  walrus_view_t v;
  TU_OK(f->w, walrus_get_view(f->w, 3, &v));
  walrus_view_release(&v);
  walrus_view_release(&v);
  return WALRUS_OK;
}

/* walrus_get_range, walrus_get_range_view.  Their out arrays are the
 * sentinel entry or view (max_count 1); n is a local preset to 77, which
 * must read 0 afterwards (walrus.h: "n: entries read; 0 on failure"). */
static int64_t grange(fx_t *f, walrus_t *h, uint64_t start, uint64_t end,
                      size_t max_count, int views, int null_out, int null_n) {
  size_t n = 77;
  int rc;
  f->target = h;
  if (views)
    rc =
        walrus_get_range_view(h, start, end, max_count, 0,
                              null_out ? NULL : &f->o.view, null_n ? NULL : &n);
  else
    rc = walrus_get_range(h, start, end, max_count, 0,
                          null_out ? NULL : &f->o.entry, null_n ? NULL : &n);
  if (!null_n)
    cr_assert_eq(n, 0u, "%s: *n is %zu after the call; walrus.h: 0 on failure",
                 g_tag, n);
  return rc;
}
#define GRANGE(name, h, start, end, count, null_out, null_n)     \
  static int64_t grange_##name(fx_t *f) {                        \
    return grange(f, h, start, end, count, 0, null_out, null_n); \
  }                                                              \
  static int64_t grangev_##name(fx_t *f) {                       \
    return grange(f, h, start, end, count, 1, null_out, null_n); \
  }
GRANGE(null_w, NULL, 1, 5, 1, 0, 0)
GRANGE(null_out, f->w, 1, 5, 1, 1, 0)
GRANGE(null_n, f->w, 1, 5, 1, 0, 1)
GRANGE(count_0, f->w, 1, 5, 0, 0, 0)
GRANGE(end_below_start, f->w, 10, 9, 1, 0, 0)
GRANGE(start_0, f->w, 0, 5, 1, 0, 0)
GRANGE(start_past_last, f->w, NENTRIES + 1, NENTRIES + 5, 1, 0, 0)
GRANGE(start_u64_max, f->w, UINT64_MAX, UINT64_MAX, 1, 0, 0)
GRANGE(start_5, f->w, 5, 10, 1, 0, 0)
GRANGE(start_21, f->w, NENTRIES + 1, NENTRIES + 1, 1, 0, 0)
GRANGE(ro_start_0, f->ro, 0, 5, 1, 0, 0)
#undef GRANGE

/* walrus_get_many, walrus_get_many_view.  One index reads into the
 * sentinel entry or view; a longer list into locals, which all or nothing
 * leaves with nothing to free (the row's process would leak otherwise). */
static int64_t gmany(fx_t *f, walrus_t *h, const uint64_t *idx, size_t n,
                     int views, int null_out) {
  walrus_entry_t out[4];
  walrus_view_t vout[4];
  f->target = h;
  cr_assert_leq(n, 4u);
  if (views)
    return walrus_get_many_view(h, idx, n,
                                null_out ? NULL
                                : n == 1 ? &f->o.view
                                         : vout);
  return walrus_get_many(h, idx, n,
                         null_out ? NULL
                         : n == 1 ? &f->o.entry
                                  : out);
}
#define GMANY(name, h, null_idx, null_out, ...)                              \
  static int64_t gmany_##name(fx_t *f) {                                     \
    static const uint64_t idx[] = {__VA_ARGS__};                             \
    return gmany(f, h, null_idx ? NULL : idx, sizeof idx / sizeof idx[0], 0, \
                 null_out);                                                  \
  }                                                                          \
  static int64_t gmanyv_##name(fx_t *f) {                                    \
    static const uint64_t idx[] = {__VA_ARGS__};                             \
    return gmany(f, h, null_idx ? NULL : idx, sizeof idx / sizeof idx[0], 1, \
                 null_out);                                                  \
  }
GMANY(null_w, NULL, 0, 0, 1)
GMANY(null_index, f->w, 1, 0, 1)
GMANY(null_out, f->w, 0, 1, 1)
GMANY(index_0, f->w, 0, 0, 0)
GMANY(past_last, f->w, 0, 0, NENTRIES + 1)
GMANY(u64_max, f->w, 0, 0, UINT64_MAX)
GMANY(before_first, f->w, 0, 0, 5)
GMANY(empty, f->w, 0, 0, NENTRIES + 1)
GMANY(last_bad, f->w, 0, 0, 3, 4, 20, NENTRIES + 1)
GMANY(ro_index_0, f->ro, 0, 0, 0)
#undef GMANY

/* walrus_wait, walrus_refresh */
static int64_t wait_null(fx_t *f) {
  (void)f;
  return walrus_wait(NULL, 1, 0);
}
static int64_t wait_at(fx_t *f, walrus_t *h, uint64_t index) {
  f->target = h;
  return walrus_wait(h, index, 0);
}
static int64_t wait_0(fx_t *f) {
  return wait_at(f, f->w, 0);
}
static int64_t wait_21(fx_t *f) {
  return wait_at(f, f->w, NENTRIES + 1);
}
static int64_t wait_u64_max(fx_t *f) {
  return wait_at(f, f->w, UINT64_MAX);
}
static int64_t wait_ro_0(fx_t *f) {
  return wait_at(f, f->ro, 0);
}
static int64_t wait_ro_21(fx_t *f) {
  return wait_at(f, f->ro, NENTRIES + 1);
}
static int64_t refresh_null(fx_t *f) {
  (void)f;
  return walrus_refresh(NULL);
}
static int64_t refresh_w(fx_t *f) {
  f->target = f->w;
  return walrus_refresh(f->w);
}
static int64_t refresh_ro(fx_t *f) {
  f->target = f->ro;
  return walrus_refresh(f->ro);
}

/* walrus_tx_begin */
static int64_t txbegin_null_w(fx_t *f) {
  return walrus_tx_begin(NULL, 0, &f->o.id);
}
static int64_t txbegin_null_id(fx_t *f) {
  f->target = f->w;
  return walrus_tx_begin(f->w, 0, NULL);
}
static int64_t txbegin_ro(fx_t *f) {
  f->target = f->ro;
  return walrus_tx_begin(f->ro, 0, &f->o.id);
}

/* walrus_tx_add */
static int64_t txadd(fx_t *f, walrus_t *h, const walrus_txid_t *id,
                     const walrus_entry_t *e) {
  f->target = h;
  return walrus_tx_add(h, id, e);
}
static int64_t txadd_null_w(fx_t *f) {
  return walrus_tx_add(NULL, &f->tx, &f->e);
}
static int64_t txadd_null_id(fx_t *f) {
  return txadd(f, f->w, NULL, &f->e);
}
static int64_t txadd_null_e(fx_t *f) {
  return txadd(f, f->w, &f->tx, NULL);
}
static int64_t txadd_unknown(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txadd(f, f->w, &id, &f->e);
}
static int64_t txadd_other_log(fx_t *f) {
  walrus_txid_t id;
  walrus_t *o = other_log_tx(f, &id);
  int64_t rc = txadd(f, f->w, &id, &f->e);
  walrus_close(o);
  return rc;
}
static int64_t txadd_done(fx_t *f) {
  return txadd(f, f->w, &f->done, &f->e);
}
static int64_t txadd_tx(fx_t *f) {
  return txadd(f, f->w, &f->tx, &f->e);
}
static int64_t txadd_data_null(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = NULL;
  e.len = 5;
  return txadd(f, f->w, &f->tx, &e);
}
static int64_t txadd_other_txid(fx_t *f) {
  walrus_entry_t e = f->e;
  e.tx_id = "tx_other";
  return txadd(f, f->w, &f->tx, &e);
}
static int64_t txadd_too_large(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = MAX_ENTRY - TXID_LEN + 1; /* with the id: one byte over */
  return txadd(f, f->w, &f->tx, &e);
}
static int64_t txadd_len_size_max(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = SIZE_MAX;
  return txadd(f, f->w, &f->tx, &e);
}
static int64_t txadd_200(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = 200;
  return txadd(f, f->w, &f->tx, &e);
}
/* walrus_append_deadline: the same bad entries as walrus_append. */
static int64_t appendd(fx_t *f, walrus_t *h, const walrus_entry_t *e) {
  f->target = h;
  return walrus_append_deadline(h, e, 1000, &f->o.index);
}
static int64_t appendd_null_w(fx_t *f) {
  return walrus_append_deadline(NULL, &f->e, 1000, &f->o.index);
}
static int64_t appendd_null_e(fx_t *f) {
  return appendd(f, f->w, NULL);
}
static int64_t appendd_data_null(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = NULL;
  e.len = 5;
  return appendd(f, f->w, &e);
}
static int64_t appendd_too_large(fx_t *f) {
  walrus_entry_t e = f->e;
  e.data = f->big;
  e.len = MAX_ENTRY + 1;
  return appendd(f, f->w, &e);
}
static int64_t appendd_ro(fx_t *f) {
  return appendd(f, f->ro, &f->e);
}
static int64_t appendd_poisoned(fx_t *f) {
  return appendd(f, f->w, &f->e);
}

/* walrus_health */
static int64_t health_null_w(fx_t *f) {
  (void)f;
  return walrus_health(NULL, NULL, 0);
}

static int64_t txadd_ro(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txadd(f, f->ro, &id, &f->e);
}

/* walrus_tx_commit */
static int64_t txcommit(fx_t *f, walrus_t *h, const walrus_txid_t *id) {
  f->target = h;
  return walrus_tx_commit(h, id, &f->o.index, &f->o.count);
}
static int64_t txcommit_null_w(fx_t *f) {
  return walrus_tx_commit(NULL, &f->tx, &f->o.index, &f->o.count);
}
static int64_t txcommit_null_id(fx_t *f) {
  return txcommit(f, f->w, NULL);
}
static int64_t txcommit_unknown(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txcommit(f, f->w, &id);
}
static int64_t txcommit_other_log(fx_t *f) {
  walrus_txid_t id;
  walrus_t *o = other_log_tx(f, &id);
  int64_t rc = txcommit(f, f->w, &id);
  walrus_close(o);
  return rc;
}
static int64_t txcommit_done(fx_t *f) {
  return txcommit(f, f->w, &f->done);
}
static int64_t txcommit_tx(fx_t *f) {
  return txcommit(f, f->w, &f->tx);
}
static int64_t txcommit_poisoned(fx_t *f) {
  int64_t rc = txcommit(f, f->w, &f->tx);
  walrus_tx_state_t st = WALRUS_TX_PENDING;
  TU_OK(f->w, walrus_tx_state(f->w, &f->tx, &st));
  cr_assert_eq(st, WALRUS_TX_ABORTED, "%s: a failed commit aborts", g_tag);
  return rc;
}
static int64_t txcommit_ro(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txcommit(f, f->ro, &id);
}

/* walrus_tx_commit_many, with one id: arrays of one are f->o's fields. */
static int64_t txmany(fx_t *f, walrus_t *h, const walrus_txid_t *ids,
                      size_t n) {
  f->target = h;
  return walrus_tx_commit_many(h, ids, n, &f->o.index, &f->o.count);
}
static int64_t txmany_null_w(fx_t *f) {
  return walrus_tx_commit_many(NULL, &f->tx, 1, &f->o.index, &f->o.count);
}
static int64_t txmany_null_ids(fx_t *f) {
  return txmany(f, f->w, NULL, 1);
}
static int64_t txmany_n_0(fx_t *f) {
  return txmany(f, f->w, &f->tx, 0);
}
static int64_t txmany_unknown(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txmany(f, f->w, &id, 1);
}
static int64_t txmany_done(fx_t *f) {
  return txmany(f, f->w, &f->done, 1);
}
static int64_t txmany_twice(fx_t *f) {
  walrus_txid_t ids[2] = {f->tx, f->tx};
  f->target = f->w;
  return walrus_tx_commit_many(f->w, ids, 2, NULL, NULL);
}
static int64_t txmany_ro(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txmany(f, f->ro, &id, 1);
}

/* walrus_tx_rollback */
static int64_t txrollback(fx_t *f, const walrus_txid_t *id) {
  f->target = f->w;
  return walrus_tx_rollback(f->w, id);
}
static int64_t txrollback_null_w(fx_t *f) {
  return walrus_tx_rollback(NULL, &f->tx);
}
static int64_t txrollback_null_id(fx_t *f) {
  return txrollback(f, NULL);
}
static int64_t txrollback_unknown(fx_t *f) {
  walrus_txid_t id = unknown_id();
  return txrollback(f, &id);
}
static int64_t txrollback_ro(fx_t *f) {
  walrus_txid_t id = unknown_id();
  f->target = f->ro;
  return walrus_tx_rollback(f->ro, &id);
}
static int64_t txrollback_done(fx_t *f) {
  return txrollback(f, &f->done);
}
static int64_t txrollback_tx(fx_t *f) {
  return txrollback(f, &f->tx);
}

/* walrus_tx_state */
static int64_t txstate_null_w(fx_t *f) {
  return walrus_tx_state(NULL, &f->tx, &f->o.state);
}
static int64_t txstate_null_id(fx_t *f) {
  f->target = f->w;
  return walrus_tx_state(f->w, NULL, &f->o.state);
}
static int64_t txstate_null_state(fx_t *f) {
  f->target = f->w;
  return walrus_tx_state(f->w, &f->tx, NULL);
}
static int64_t txstate_unknown(fx_t *f) {
  walrus_txid_t id = unknown_id();
  f->target = f->w;
  return walrus_tx_state(f->w, &id, &f->o.state);
}
static int64_t txstate_done(fx_t *f) {
  f->target = f->w;
  return walrus_tx_state(f->w, &f->done, &f->o.state);
}

/* walrus_tx_cleanup_expired, walrus_tx_active_count, walrus_stats */
static int64_t txcleanup_null(fx_t *f) {
  (void)f;
  return walrus_tx_cleanup_expired(NULL);
}
static int64_t txcount_null(fx_t *f) {
  (void)f;
  return walrus_tx_active_count(NULL);
}
static int64_t stats_null_w(fx_t *f) {
  return walrus_stats(NULL, &f->o.stats);
}
static int64_t stats_null_out(fx_t *f) {
  f->target = f->w;
  return walrus_stats(f->w, NULL);
}

/* walrus_inspect, walrus_verify, walrus_repair_plan */
static int64_t inspect_null_dir(fx_t *f) {
  return walrus_inspect(NULL, NULL, &f->o.inspect, f->msg, sizeof f->msg);
}
static int64_t inspect_empty_dir(fx_t *f) {
  return walrus_inspect("", NULL, &f->o.inspect, f->msg, sizeof f->msg);
}
static int64_t inspect_null_out(fx_t *f) {
  return walrus_inspect(f->dir, NULL, NULL, f->msg, sizeof f->msg);
}
static int64_t verify_null_dir(fx_t *f) {
  return walrus_verify(NULL, NULL, NULL, NULL, NULL, &f->o.verified, f->msg,
                       sizeof f->msg);
}
static int64_t plan_null_dir(fx_t *f) {
  return walrus_repair_plan(NULL, NULL, &f->o.plan, f->msg, sizeof f->msg);
}
static int64_t plan_null_out(fx_t *f) {
  return walrus_repair_plan(f->dir, NULL, NULL, f->msg, sizeof f->msg);
}

/* walrus_strerror, walrus_errname: codes outside the list */
/* WALRUS__ELAST is the sentinel one below the lowest code, so it and the
 * value below it are unknown whatever codes are added. */
static const int unknown_codes[] = {
    2, WALRUS__ELAST, WALRUS__ELAST - 1, 12345, -12345, INT32_MAX, INT32_MIN};
static int64_t strerror_unknown(fx_t *f) {
  (void)f;
  for (size_t i = 0; i < sizeof unknown_codes / sizeof *unknown_codes; i++)
    cr_assert_str_eq(walrus_strerror(unknown_codes[i]), "unknown error",
                     "%s: code %d", g_tag, unknown_codes[i]);
  return WALRUS_OK;
}
static int64_t errname_unknown(fx_t *f) {
  (void)f;
  for (size_t i = 0; i < sizeof unknown_codes / sizeof *unknown_codes; i++) {
    const char *s = walrus_errname(unknown_codes[i]);
    cr_assert(s != NULL && s[0] != '\0', "%s: code %d", g_tag,
              unknown_codes[i]);
  }
  return WALRUS_OK;
}

/* ---- the table ---------------------------------------------------------- */

typedef struct row {
  const char *fn;           /* the public function called */
  const char *bad;          /* what is wrong with the call */
  unsigned setup;           /* S_* flags */
  int64_t (*call)(fx_t *f); /* the call; returns its result */
  int64_t want;             /* what walrus.h says it returns */
  const char *needle;       /* the message must contain each
                               '&'-separated word (case-insensitive);
                               NULL: no handle, or no failure */
  int arg;                  /* generated rows: the variant */
} row_t;

static const row_t rows[] = {
    {"walrus_config_check", "NULL cfg", 0, cc_null_cfg, WALRUS_EINVAL, "NULL",
     0},
    {"walrus_config_check", "NULL cfg and NULL msg", 0, cc_null_cfg_null_msg,
     WALRUS_EINVAL, NULL, 0},
    {"walrus_config_check", "bad field, msglen 0", 0, cc_msglen_0,
     WALRUS_EINVAL, NULL, 0},
    {"walrus_config_check", "bad field, msglen 8", 0, cc_msglen_8,
     WALRUS_EINVAL, NULL, 0},

    {"walrus_open", "NULL dir", 0, open_null_dir, WALRUS_EINVAL, NULL, 0},
    {"walrus_open", "NULL out", 0, open_null_out, WALRUS_EINVAL, NULL, 0},
    {"walrus_open", "segment_bytes 0", 0, open_bad_cfg, WALRUS_EINVAL, NULL, 0},
    {"walrus_open_ex", "NULL dir", 0, openex_null_dir, WALRUS_EINVAL, "dir", 0},
    {"walrus_open_ex", "empty dir", 0, openex_empty_dir, WALRUS_EINVAL, "empty",
     0},
    {"walrus_open_ex", "NULL out", 0, openex_null_out, WALRUS_EINVAL, "out", 0},
    {"walrus_open_ex", "NULL dir, errlen 0", 0, openex_errlen_0, WALRUS_EINVAL,
     NULL, 0},
    {"walrus_open_ex", "dir of 4999 bytes", 0, openex_long_dir, WALRUS_EINVAL,
     "dir&long", 0},
    {"walrus_open_ex", "second writer", 0, openex_second_writer, WALRUS_ELOCKED,
     "writing", 0},
    {"walrus_open_ex", "missing dir, create_if_missing 0", 0,
     openex_missing_no_create, WALRUS_EIO, "create_if_missing", 0},
    {"walrus_open_ex", "missing dir, read_only", 0, openex_missing_read_only,
     WALRUS_EIO, "missing", 0},
    {"walrus_open_ex", "dir is a regular file", 0, openex_dir_is_file,
     WALRUS_EIO, "afile", 0},
    {"walrus_open_ex", "read_only with RECOVER_SALVAGE", 0,
     openex_read_only_salvage, WALRUS_EINVAL, "salvage", 0},

    {"walrus_close", "NULL (allowed)", 0, close_null, WALRUS_OK, NULL, 0},
    {"walrus_close", "an iterator is open", S_ITER, close_with_iterator,
     WALRUS_EBUSY, "iterator", 0},
    {"walrus_close", "read-only, an iterator is open", S_RO_BESIDE,
     close_ro_with_iterator, WALRUS_EBUSY, "iterator", 0},

    {"walrus_append", "NULL w", 0, append_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_append", "NULL e", 0, append_null_e, WALRUS_EINVAL, "NULL&entry",
     0},
    {"walrus_append", "data NULL, len 5", 0, append_data_null, WALRUS_EINVAL,
     "data&NULL", 0},
    {"walrus_append", "tx_id empty", 0, append_txid_empty, WALRUS_EINVAL,
     "tx_id", 0},
    {"walrus_append", "tx_id of 256 bytes", 0, append_txid_256, WALRUS_EINVAL,
     "tx_id", 0},
    {"walrus_append", "len max_entry_bytes + 1", 0, append_too_large,
     WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_append", "len + tx_id over max_entry_bytes", 0,
     append_too_large_with_txid, WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_append", "len SIZE_MAX", 0, append_len_size_max, WALRUS_ETOOLARGE,
     "max_entry_bytes", 0},
    {"walrus_append", "read-only beside the writer", S_RO_BESIDE, append_ro,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_append", "read-only after the writer", S_RO_AFTER, append_ro,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_append", "poisoned handle", S_POISON, append_poisoned,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_append_deadline", "NULL w", 0, appendd_null_w, WALRUS_EINVAL, NULL,
     0},
    {"walrus_append_deadline", "NULL e", 0, appendd_null_e, WALRUS_EINVAL,
     "NULL&entry", 0},
    {"walrus_append_deadline", "data NULL, len 5", 0, appendd_data_null,
     WALRUS_EINVAL, "data&NULL", 0},
    {"walrus_append_deadline", "len max_entry_bytes + 1", 0, appendd_too_large,
     WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_append_deadline", "read-only beside the writer", S_RO_BESIDE,
     appendd_ro, WALRUS_EREADONLY, "read-only", 0},
    {"walrus_append_deadline", "poisoned handle", S_POISON, appendd_poisoned,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_health", "NULL w", 0, health_null_w, WALRUS_EINVAL, NULL, 0},

    {"walrus_write_batch", "NULL w", 0, batch_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_write_batch", "NULL e, n 3", 0, batch_null_e, WALRUS_EINVAL,
     "entries", 0},
    {"walrus_write_batch", "n 0", 0, batch_n_0, WALRUS_EINVAL, "entries", 0},
    {"walrus_write_batch", "e[1] data NULL, len 5", 0, batch_data_null,
     WALRUS_EINVAL, "entry 1&data", 0},
    {"walrus_write_batch", "e[2] over max_entry_bytes", 0, batch_too_large,
     WALRUS_ETOOLARGE, "entry 2&max_entry_bytes", 0},
    {"walrus_write_batch", "e[1] tx_id empty", 0, batch_txid_empty,
     WALRUS_EINVAL, "entry 1&tx_id", 0},
    {"walrus_write_batch", "4100 x max_entry_bytes: over 4 GiB", 0,
     batch_huge_count, WALRUS_ETOOLARGE, "4 GiB", 0},
    {"walrus_write_batch", "read-only beside the writer", S_RO_BESIDE, batch_ro,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_write_batch", "read-only after the writer", S_RO_AFTER, batch_ro,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_write_batch", "poisoned handle", S_POISON, batch_poisoned,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_get", "NULL w", 0, get_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_get", "NULL out", 0, get_null_out, WALRUS_EINVAL, "NULL", 0},
    {"walrus_get", "index 0", 0, get_0, WALRUS_EINDEX, "index 0 ", 0},
    {"walrus_get", "index last + 1", 0, get_past_last, WALRUS_EINDEX,
     "index 21", 0},
    {"walrus_get", "index UINT64_MAX", 0, get_u64_max, WALRUS_EINDEX,
     "18446744073709551615", 0},
    {"walrus_get", "index before the first", S_FRONT, get_5, WALRUS_EINDEX,
     "index 5", 0},
    {"walrus_get", "empty log", S_EMPTY, get_21, WALRUS_EINDEX, "empty", 0},
    {"walrus_get", "read-only, index 0", S_RO_BESIDE, get_ro_0, WALRUS_EINDEX,
     "index 0 ", 0},

    {"walrus_entry_free", "NULL (allowed)", 0, entry_free_null, WALRUS_OK, NULL,
     0},
    {"walrus_entry_free", "freed twice (allowed)", 0, entry_free_twice,
     WALRUS_OK, NULL, 0},

    {"walrus_first_index", "NULL w: 0", 0, first_index_null, 0, NULL, 0},
    {"walrus_last_index", "NULL w: 0", 0, last_index_null, 0, NULL, 0},
    {"walrus_next_index", "NULL w: 0", 0, next_index_null, 0, NULL, 0},

    {"walrus_sync", "NULL w", 0, sync_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_sync", "poisoned handle", S_POISON, sync_w, WALRUS_EPOISONED,
     "poison", 0},
    {"walrus_sync", "read-only beside (a no-op)", S_RO_BESIDE, sync_ro,
     WALRUS_OK, NULL, 0},
    {"walrus_sync", "read-only after (a no-op)", S_RO_AFTER, sync_ro, WALRUS_OK,
     NULL, 0},

    {"walrus_truncate_back", "NULL w", 0, tback_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_truncate_back", "last_kept last + 1", 0, tback_past_last,
     WALRUS_EINDEX, "truncate_back(21)", 0},
    {"walrus_truncate_back", "last_kept UINT64_MAX", 0, tback_u64_max,
     WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_truncate_back", "last_kept below first - 1", S_FRONT, tback_4,
     WALRUS_EINDEX, "truncate_back(4)", 0},
    {"walrus_truncate_back", "read-only beside the writer", S_RO_BESIDE,
     tback_ro_10, WALRUS_EREADONLY, "read-only", 0},
    {"walrus_truncate_back", "read-only after the writer", S_RO_AFTER,
     tback_ro_10, WALRUS_EREADONLY, "read-only", 0},
    {"walrus_truncate_back", "poisoned handle", S_POISON, tback_10,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_truncate_front", "NULL w", 0, tfront_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_truncate_front", "first_kept 0", 0, tfront_0, WALRUS_EINDEX,
     "truncate_front(0)", 0},
    {"walrus_truncate_front", "first_kept last + 2", 0, tfront_past_next,
     WALRUS_EINDEX, "truncate_front(22)", 0},
    {"walrus_truncate_front", "first_kept UINT64_MAX", 0, tfront_u64_max,
     WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_truncate_front", "first_kept below the first", S_FRONT, tfront_5,
     WALRUS_EINDEX, "truncate_front(5)", 0},
    {"walrus_truncate_front", "read-only beside the writer", S_RO_BESIDE,
     tfront_ro_10, WALRUS_EREADONLY, "read-only", 0},
    {"walrus_truncate_front", "read-only after the writer", S_RO_AFTER,
     tfront_ro_10, WALRUS_EREADONLY, "read-only", 0},
    {"walrus_truncate_front", "poisoned handle", S_POISON, tfront_10,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_reset", "NULL w", 0, reset_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_reset", "next_index past WALRUS_INDEX_MAX", 0, reset_past_max,
     WALRUS_EINVAL, "next index", 0},
    {"walrus_reset", "next_index 0", 0, reset_0, WALRUS_EINVAL, "next index",
     0},
    {"walrus_reset", "read-only beside the writer", S_RO_BESIDE, reset_ro_100,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_reset", "read-only after the writer", S_RO_AFTER, reset_ro_100,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_reset", "poisoned handle", S_POISON, reset_100, WALRUS_EPOISONED,
     "poison", 0},
    {"walrus_reset", "an iterator is open", S_ITER, reset_100, WALRUS_EBUSY,
     "iterator", 0},

    {"walrus_iter_open", "NULL w", 0, iopen_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_iter_open", "NULL it", 0, iopen_null_it, WALRUS_EINVAL,
     "NULL&iterator", 0},
    {"walrus_iter_open", "start last + 2", 0, iopen_past_next, WALRUS_EINDEX,
     "start 22", 0},
    {"walrus_iter_open", "start UINT64_MAX", 0, iopen_u64_max, WALRUS_EINDEX,
     "18446744073709551615", 0},
    {"walrus_iter_open", "start before the first", S_FRONT, iopen_5,
     WALRUS_EINDEX, "start 5", 0},

    {"walrus_iter_next", "NULL it", 0, inext_null_it, WALRUS_EINVAL, NULL, 0},
    {"walrus_iter_next", "NULL out", S_ITER, inext_null_out, WALRUS_EINVAL,
     "NULL", 0},
    {"walrus_iter_next", "past the end, twice", S_ITER, inext_past_end,
     WALRUS_DONE, NULL, 0},
    {"walrus_iter_next", "next entry removed by truncate_front",
     S_ITER | S_FRONT, inext_removed, WALRUS_EINDEX, "removed", 0},
    {"walrus_iter_close", "NULL (allowed)", 0, iclose_null, WALRUS_OK, NULL, 0},

    {"walrus_iter_open_follow", "NULL w", 0, ifollow_null_w, WALRUS_EINVAL,
     NULL, 0},
    {"walrus_iter_open_follow", "NULL it", 0, ifollow_null_it, WALRUS_EINVAL,
     "NULL&iterator", 0},
    {"walrus_iter_open_follow", "start last + 2", 0, ifollow_past_next,
     WALRUS_EINDEX, "start 22", 0},
    {"walrus_iter_open_follow", "start UINT64_MAX", 0, ifollow_u64_max,
     WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_iter_open_follow", "start before the first", S_FRONT, ifollow_5,
     WALRUS_EINDEX, "start 5", 0},
    {"walrus_iter_open_follow", "read-only, start last + 2", S_RO_BESIDE,
     ifollow_ro_past_next, WALRUS_EINDEX, "start 22", 0},

    {"walrus_get_view", "NULL w", 0, gview_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_get_view", "NULL view", 0, gview_null_view, WALRUS_EINVAL,
     "NULL&view", 0},
    {"walrus_get_view", "index 0", 0, gview_0, WALRUS_EINDEX, "index 0 ", 0},
    {"walrus_get_view", "index last + 1", 0, gview_past_last, WALRUS_EINDEX,
     "index 21", 0},
    {"walrus_get_view", "index UINT64_MAX", 0, gview_u64_max, WALRUS_EINDEX,
     "18446744073709551615", 0},
    {"walrus_get_view", "index before the first", S_FRONT, gview_5,
     WALRUS_EINDEX, "index 5", 0},
    {"walrus_get_view", "empty log", S_EMPTY, gview_21, WALRUS_EINDEX, "empty",
     0},
    {"walrus_get_view", "read-only, index 0", S_RO_BESIDE, gview_ro_0,
     WALRUS_EINDEX, "index 0 ", 0},
    {"walrus_view_release", "NULL (allowed)", 0, vrelease_null, WALRUS_OK, NULL,
     0},
    {"walrus_view_release", "released twice (allowed)", 0, vrelease_twice,
     WALRUS_OK, NULL, 0},

    {"walrus_get_range", "NULL w", 0, grange_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_get_range", "NULL out", 0, grange_null_out, WALRUS_EINVAL,
     "NULL&out", 0},
    {"walrus_get_range", "NULL n", 0, grange_null_n, WALRUS_EINVAL, "NULL", 0},
    {"walrus_get_range", "max_count 0", 0, grange_count_0, WALRUS_EINVAL,
     "max_count", 0},
    {"walrus_get_range", "end below start", 0, grange_end_below_start,
     WALRUS_EINVAL, "end 9&start 10", 0},
    {"walrus_get_range", "start 0", 0, grange_start_0, WALRUS_EINDEX,
     "index 0 ", 0},
    {"walrus_get_range", "start last + 1", 0, grange_start_past_last,
     WALRUS_EINDEX, "index 21", 0},
    {"walrus_get_range", "start and end UINT64_MAX", 0, grange_start_u64_max,
     WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_get_range", "start before the first", S_FRONT, grange_start_5,
     WALRUS_EINDEX, "index 5", 0},
    {"walrus_get_range", "empty log", S_EMPTY, grange_start_21, WALRUS_EINDEX,
     "empty", 0},
    {"walrus_get_range", "read-only, start 0", S_RO_BESIDE, grange_ro_start_0,
     WALRUS_EINDEX, "index 0 ", 0},

    {"walrus_get_range_view", "NULL w", 0, grangev_null_w, WALRUS_EINVAL, NULL,
     0},
    {"walrus_get_range_view", "NULL out", 0, grangev_null_out, WALRUS_EINVAL,
     "NULL&out", 0},
    {"walrus_get_range_view", "NULL n", 0, grangev_null_n, WALRUS_EINVAL,
     "NULL", 0},
    {"walrus_get_range_view", "max_count 0", 0, grangev_count_0, WALRUS_EINVAL,
     "max_count", 0},
    {"walrus_get_range_view", "end below start", 0, grangev_end_below_start,
     WALRUS_EINVAL, "end 9&start 10", 0},
    {"walrus_get_range_view", "start 0", 0, grangev_start_0, WALRUS_EINDEX,
     "index 0 ", 0},
    {"walrus_get_range_view", "start last + 1", 0, grangev_start_past_last,
     WALRUS_EINDEX, "index 21", 0},
    {"walrus_get_range_view", "start and end UINT64_MAX", 0,
     grangev_start_u64_max, WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_get_range_view", "start before the first", S_FRONT,
     grangev_start_5, WALRUS_EINDEX, "index 5", 0},
    {"walrus_get_range_view", "empty log", S_EMPTY, grangev_start_21,
     WALRUS_EINDEX, "empty", 0},
    {"walrus_get_range_view", "read-only, start 0", S_RO_BESIDE,
     grangev_ro_start_0, WALRUS_EINDEX, "index 0 ", 0},

    {"walrus_get_many", "NULL w", 0, gmany_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_get_many", "NULL index, n 1", 0, gmany_null_index, WALRUS_EINVAL,
     "NULL&index", 0},
    {"walrus_get_many", "NULL out, n 1", 0, gmany_null_out, WALRUS_EINVAL,
     "NULL&out", 0},
    {"walrus_get_many", "index 0", 0, gmany_index_0, WALRUS_EINDEX, "index 0 ",
     0},
    {"walrus_get_many", "index last + 1", 0, gmany_past_last, WALRUS_EINDEX,
     "index 21", 0},
    {"walrus_get_many", "index UINT64_MAX", 0, gmany_u64_max, WALRUS_EINDEX,
     "18446744073709551615", 0},
    {"walrus_get_many", "index before the first", S_FRONT, gmany_before_first,
     WALRUS_EINDEX, "index 5", 0},
    {"walrus_get_many", "empty log", S_EMPTY, gmany_empty, WALRUS_EINDEX,
     "empty", 0},
    {"walrus_get_many", "good indexes, then last + 1", 0, gmany_last_bad,
     WALRUS_EINDEX, "index 21", 0},
    {"walrus_get_many", "read-only, index 0", S_RO_BESIDE, gmany_ro_index_0,
     WALRUS_EINDEX, "index 0 ", 0},

    {"walrus_get_many_view", "NULL w", 0, gmanyv_null_w, WALRUS_EINVAL, NULL,
     0},
    {"walrus_get_many_view", "NULL index, n 1", 0, gmanyv_null_index,
     WALRUS_EINVAL, "NULL&index", 0},
    {"walrus_get_many_view", "NULL out, n 1", 0, gmanyv_null_out, WALRUS_EINVAL,
     "NULL&out", 0},
    {"walrus_get_many_view", "index 0", 0, gmanyv_index_0, WALRUS_EINDEX,
     "index 0 ", 0},
    {"walrus_get_many_view", "index last + 1", 0, gmanyv_past_last,
     WALRUS_EINDEX, "index 21", 0},
    {"walrus_get_many_view", "index UINT64_MAX", 0, gmanyv_u64_max,
     WALRUS_EINDEX, "18446744073709551615", 0},
    {"walrus_get_many_view", "index before the first", S_FRONT,
     gmanyv_before_first, WALRUS_EINDEX, "index 5", 0},
    {"walrus_get_many_view", "empty log", S_EMPTY, gmanyv_empty, WALRUS_EINDEX,
     "empty", 0},
    {"walrus_get_many_view", "good indexes, then last + 1", 0, gmanyv_last_bad,
     WALRUS_EINDEX, "index 21", 0},
    {"walrus_get_many_view", "read-only, index 0", S_RO_BESIDE,
     gmanyv_ro_index_0, WALRUS_EINDEX, "index 0 ", 0},

    {"walrus_wait", "NULL w", 0, wait_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_wait", "index 0", 0, wait_0, WALRUS_EINVAL, "index 0", 0},
    {"walrus_wait", "read-only, index 0", S_RO_BESIDE, wait_ro_0, WALRUS_EINVAL,
     "index 0", 0},
    {"walrus_wait", "index last + 1, timeout 0", 0, wait_21, WALRUS_ETIMEDOUT,
     "entry 21&durable", 0},
    {"walrus_wait", "index UINT64_MAX, timeout 0", 0, wait_u64_max,
     WALRUS_ETIMEDOUT, "18446744073709551615", 0},
    {"walrus_wait", "read-only, index last + 1, timeout 0", S_RO_BESIDE,
     wait_ro_21, WALRUS_ETIMEDOUT, "entry 21&durable", 0},
    {"walrus_wait", "poisoned handle, index last + 1", S_POISON, wait_21,
     WALRUS_EPOISONED, "poison", 0},

    {"walrus_refresh", "NULL w", 0, refresh_null, WALRUS_EINVAL, NULL, 0},
    {"walrus_refresh", "writable handle (a no-op)", 0, refresh_w, WALRUS_OK,
     NULL, 0},
    {"walrus_refresh", "read-only beside, nothing new", S_RO_BESIDE, refresh_ro,
     WALRUS_OK, NULL, 0},
    {"walrus_refresh", "read-only after the writer (no writer)", S_RO_AFTER,
     refresh_ro, WALRUS_OK, NULL, 0},

    {"walrus_tx_begin", "NULL w", 0, txbegin_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_tx_begin", "NULL id", 0, txbegin_null_id, WALRUS_EINVAL, "NULL&id",
     0},
    {"walrus_tx_begin", "read-only beside the writer", S_RO_BESIDE, txbegin_ro,
     WALRUS_EREADONLY, "read-only", 0},
    {"walrus_tx_begin", "read-only after the writer", S_RO_AFTER, txbegin_ro,
     WALRUS_EREADONLY, "read-only", 0},

    {"walrus_tx_add", "NULL w", S_TX, txadd_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_tx_add", "NULL id", S_TX, txadd_null_id, WALRUS_EINVAL, "NULL&id",
     0},
    {"walrus_tx_add", "NULL e", S_TX, txadd_null_e, WALRUS_EINVAL, "NULL&entry",
     0},
    {"walrus_tx_add", "unknown id", S_TX, txadd_unknown, WALRUS_ETXNOTFOUND,
     "unknown", 0},
    {"walrus_tx_add", "id of another log's handle", S_TX, txadd_other_log,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_add", "committed id", S_DONE_COMMIT, txadd_done,
     WALRUS_ETXNOTPENDING, "committed", 0},
    {"walrus_tx_add", "rolled-back id", S_DONE_ROLLBACK, txadd_done,
     WALRUS_ETXNOTPENDING, "aborted", 0},
    {"walrus_tx_add", "forgotten id (4096 ended since)", S_DONE_FORGOTTEN,
     txadd_done, WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_add", "expired id", S_TX_EXPIRED, txadd_tx, WALRUS_ETXEXPIRED,
     "expired", 0},
    {"walrus_tx_add", "data NULL, len 5", S_TX, txadd_data_null, WALRUS_EINVAL,
     "data&NULL", 0},
    {"walrus_tx_add", "e->tx_id names another transaction", S_TX,
     txadd_other_txid, WALRUS_EINVAL, "tx_other", 0},
    {"walrus_tx_add", "len + id over max_entry_bytes", S_TX, txadd_too_large,
     WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_tx_add", "len SIZE_MAX, empty transaction", S_TX_EMPTY,
     txadd_len_size_max, WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_tx_add", "len SIZE_MAX, transaction holding an entry", S_TX,
     txadd_len_size_max, WALRUS_ETOOLARGE, "max_entry_bytes", 0},
    {"walrus_tx_add", "tx_max_entries reached", S_TX_FULL, txadd_tx,
     WALRUS_ETXTOOLARGE, "tx_max_entries", 0},
    {"walrus_tx_add", "over tx_max_pending_bytes", S_TX_BYTES, txadd_200,
     WALRUS_ETXTOOLARGE, "tx_max_pending_bytes", 0},
    {"walrus_tx_add", "read-only handle", S_RO_BESIDE, txadd_ro,
     WALRUS_ETXNOTFOUND, "unknown", 0},

    {"walrus_tx_commit", "NULL w", S_TX, txcommit_null_w, WALRUS_EINVAL, NULL,
     0},
    {"walrus_tx_commit", "NULL id", S_TX, txcommit_null_id, WALRUS_EINVAL,
     "NULL&id", 0},
    {"walrus_tx_commit", "unknown id", S_TX, txcommit_unknown,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_commit", "id of another log's handle", S_TX, txcommit_other_log,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_commit", "committed id", S_DONE_COMMIT, txcommit_done,
     WALRUS_ETXNOTPENDING, "committed", 0},
    {"walrus_tx_commit", "rolled-back id", S_DONE_ROLLBACK, txcommit_done,
     WALRUS_ETXNOTPENDING, "aborted", 0},
    {"walrus_tx_commit", "expired id", S_TX_EXPIRED, txcommit_tx,
     WALRUS_ETXEXPIRED, "expired", 0},
    {"walrus_tx_commit", "poisoned handle", S_TX | S_POISON, txcommit_poisoned,
     WALRUS_EPOISONED, "poison", 0},
    {"walrus_tx_commit", "empty transaction, poisoned handle",
     S_TX_EMPTY | S_POISON, txcommit_poisoned, WALRUS_EPOISONED, "poison", 0},
    {"walrus_tx_commit", "read-only handle", S_RO_BESIDE, txcommit_ro,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_commit_many", "NULL w", S_TX, txmany_null_w, WALRUS_EINVAL,
     NULL, 0},
    {"walrus_tx_commit_many", "NULL ids", S_TX, txmany_null_ids, WALRUS_EINVAL,
     "NULL", 0},
    {"walrus_tx_commit_many", "n 0", S_TX, txmany_n_0, WALRUS_EINVAL,
     "no transaction", 0},
    {"walrus_tx_commit_many", "unknown id", S_TX, txmany_unknown,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_commit_many", "committed id", S_DONE_COMMIT, txmany_done,
     WALRUS_ETXNOTPENDING, "committed", 0},
    {"walrus_tx_commit_many", "the same id twice", S_TX, txmany_twice,
     WALRUS_ETXNOTPENDING, "being committed", 0},
    {"walrus_tx_commit_many", "read-only handle", S_RO_BESIDE, txmany_ro,
     WALRUS_ETXNOTFOUND, "unknown", 0},

    {"walrus_tx_rollback", "NULL w", S_TX, txrollback_null_w, WALRUS_EINVAL,
     NULL, 0},
    {"walrus_tx_rollback", "NULL id", S_TX, txrollback_null_id, WALRUS_EINVAL,
     "NULL&id", 0},
    {"walrus_tx_rollback", "unknown id", S_TX, txrollback_unknown,
     WALRUS_ETXNOTFOUND, "unknown", 0},
    {"walrus_tx_rollback", "committed id", S_DONE_COMMIT, txrollback_done,
     WALRUS_ETXNOTPENDING, "committed", 0},
    {"walrus_tx_rollback", "rolled back twice", S_DONE_ROLLBACK,
     txrollback_done, WALRUS_ETXNOTPENDING, "aborted", 0},
    {"walrus_tx_rollback", "expired id", S_TX_EXPIRED, txrollback_tx,
     WALRUS_ETXEXPIRED, "expired", 0},
    {"walrus_tx_rollback", "read-only handle", S_RO_BESIDE, txrollback_ro,
     WALRUS_ETXNOTFOUND, "unknown", 0},

    {"walrus_tx_state", "NULL w", S_TX, txstate_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_tx_state", "NULL id", S_TX, txstate_null_id, WALRUS_EINVAL,
     "NULL&id", 0},
    {"walrus_tx_state", "NULL state", S_TX, txstate_null_state, WALRUS_EINVAL,
     "NULL&state", 0},
    {"walrus_tx_state", "unknown id", S_TX, txstate_unknown, WALRUS_ETXNOTFOUND,
     "unknown", 0},
    {"walrus_tx_state", "forgotten id (4096 ended since)", S_DONE_FORGOTTEN,
     txstate_done, WALRUS_ETXNOTFOUND, "unknown", 0},

    {"walrus_tx_cleanup_expired", "NULL w", 0, txcleanup_null, WALRUS_EINVAL,
     NULL, 0},
    {"walrus_tx_active_count", "NULL w", 0, txcount_null, WALRUS_EINVAL, NULL,
     0},
    {"walrus_stats", "NULL w", 0, stats_null_w, WALRUS_EINVAL, NULL, 0},
    {"walrus_stats", "NULL out", 0, stats_null_out, WALRUS_EINVAL, "NULL", 0},
    {"walrus_inspect", "NULL dir", 0, inspect_null_dir, WALRUS_EINVAL, "dir",
     0},
    {"walrus_inspect", "empty dir", 0, inspect_empty_dir, WALRUS_EINVAL, "dir",
     0},
    {"walrus_inspect", "NULL out", 0, inspect_null_out, WALRUS_EINVAL, "out",
     0},
    {"walrus_verify", "NULL dir", 0, verify_null_dir, WALRUS_EINVAL, "dir", 0},
    {"walrus_repair_plan", "NULL dir", 0, plan_null_dir, WALRUS_EINVAL, "dir",
     0},
    {"walrus_repair_plan", "NULL out", 0, plan_null_out, WALRUS_EINVAL, "out",
     0},
    {"walrus_strerror", "codes outside the list", 0, strerror_unknown,
     WALRUS_OK, NULL, 0},
    {"walrus_errname", "codes outside the list", 0, errname_unknown, WALRUS_OK,
     NULL, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])

/* ---- generated rows: bad configurations --------------------------------- */

static walrus_vfs_t g_vfs_copy; /* a fault VFS table to spoil */
static const walrus_allocator_t half_allocator = {NULL, NULL, NULL, NULL};

typedef struct mutation {
  const char *field; /* the field, which the message must name */
  const char *bad;   /* its bad value */
  int want;          /* WALRUS_EINVAL or WALRUS_ENOTSUP */
} mutation_t;

static const mutation_t mutations[] = {
    {"sync", "7", WALRUS_EINVAL},
    {"sync_interval_ms", "0 under SYNC_INTERVAL", WALRUS_EINVAL},
    {"sync_interval_ms", "3600001 under SYNC_INTERVAL", WALRUS_EINVAL},
    {"segment_bytes", "0", WALRUS_EINVAL},
    {"segment_bytes", "4095", WALRUS_EINVAL},
    {"segment_bytes", "1 GiB + 1", WALRUS_EINVAL},
    {"segment_bytes", "UINT64_MAX", WALRUS_EINVAL},
    {"buffer_bytes", "4095", WALRUS_EINVAL},
    {"buffer_bytes", "256 MiB + 1", WALRUS_EINVAL},
    {"cached_segments", "0", WALRUS_EINVAL},
    {"cached_segments", "65537", WALRUS_EINVAL},
    {"max_entry_bytes", "0", WALRUS_EINVAL},
    {"max_entry_bytes", "1 GiB + 1", WALRUS_EINVAL},
    {"recovery", "3", WALRUS_EINVAL},
    {"log_level", "4", WALRUS_EINVAL},
    {"log_level", "-1", WALRUS_EINVAL},
    {"format", "JSON (not built)", WALRUS_ENOTSUP},
    {"format", "9", WALRUS_EINVAL},
    {"compress_level", "20", WALRUS_EINVAL},
    {"compression", "9", WALRUS_EINVAL},
    {"zero_copy", "2", WALRUS_EINVAL},
    {"tx_max_entries", "0", WALRUS_EINVAL},
    {"tx_max_entries", "10000001", WALRUS_EINVAL},
    {"tx_cleanup_interval_ms", "3600001", WALRUS_EINVAL},
    {"tx_max_pending_bytes", "4095", WALRUS_EINVAL},
    {"tx_max_pending_bytes", "1 TiB + 1", WALRUS_EINVAL},
    {"vfs", "version 0", WALRUS_EINVAL},
    {"vfs", "sync method NULL", WALRUS_EINVAL},
    {"allocator", "free_fn NULL", WALRUS_EINVAL},
    {"recovery", "SALVAGE with read_only", WALRUS_EINVAL},
    {"mapped_writes", "2", WALRUS_EINVAL},
    {"prefill_segments", "-1", WALRUS_EINVAL},
    {"vfs", "map without unmap", WALRUS_EINVAL},
    {"follow_poll_ms", "0", WALRUS_EINVAL},
    {"follow_poll_ms", "60001", WALRUS_EINVAL},
};
#define NMUT (sizeof mutations / sizeof mutations[0])

/* The fixture's configuration with mutation k applied. */
static walrus_config_t mutated(fx_t *f, int k) {
  walrus_config_t c = f->cfg;
  g_vfs_copy = *vf_vfs(f->vf);
  switch (k) {
    case 0:
      c.sync = (walrus_sync_t)7;
      break;
    case 1:
      c.sync = WALRUS_SYNC_INTERVAL;
      c.sync_interval_ms = 0;
      break;
    case 2:
      c.sync = WALRUS_SYNC_INTERVAL;
      c.sync_interval_ms = 3600001;
      break;
    case 3:
      c.segment_bytes = 0;
      break;
    case 4:
      c.segment_bytes = 4095;
      break;
    case 5:
      c.segment_bytes = (1ull << 30) + 1;
      break;
    case 6:
      c.segment_bytes = UINT64_MAX;
      break;
    case 7:
      c.buffer_bytes = 4095;
      break;
    case 8:
      c.buffer_bytes = (256u << 20) + 1;
      break;
    case 9:
      c.cached_segments = 0;
      break;
    case 10:
      c.cached_segments = 65537;
      break;
    case 11:
      c.max_entry_bytes = 0;
      break;
    case 12:
      c.max_entry_bytes = (1u << 30) + 1;
      break;
    case 13:
      c.recovery = (walrus_recovery_t)3;
      break;
    case 14:
      c.log_level = (walrus_log_level_t)4;
      break;
    case 15:
      c.log_level = (walrus_log_level_t)-1;
      break;
    case 16:
      c.format = WALRUS_FORMAT_JSON;
      break;
    case 17:
      c.format = (walrus_format_t)9;
      break;
    case 18:
      c.compress_level = 20;
      break;
    case 19:
      c.compression = (walrus_compression_t)9;
      break;
    case 20:
      c.zero_copy = 2;
      break;
    case 21:
      c.tx_max_entries = 0;
      break;
    case 22:
      c.tx_max_entries = 10000001;
      break;
    case 23:
      c.tx_cleanup_interval_ms = 3600001;
      break;
    case 24:
      c.tx_max_pending_bytes = 4095;
      break;
    case 25:
      c.tx_max_pending_bytes = (1ull << 40) + 1;
      break;
    case 26:
      g_vfs_copy.version = 0;
      c.vfs = &g_vfs_copy;
      break;
    case 27:
      g_vfs_copy.sync = NULL;
      c.vfs = &g_vfs_copy;
      break;
    case 28:
      c.allocator = &half_allocator;
      break;
    case 29:
      c.recovery = WALRUS_RECOVER_SALVAGE;
      c.read_only = 1;
      break;
    case 30:
      c.mapped_writes = 2;
      break;
    case 31:
      c.prefill_segments = -1;
      break;
    case 32:
      g_vfs_copy.version = 2;
      g_vfs_copy.map = walrus_vfs_posix()->map;
      g_vfs_copy.unmap = NULL;
      c.vfs = &g_vfs_copy;
      break;
    case 33:
      c.follow_poll_ms = 0;
      break;
    case 34:
      c.follow_poll_ms = 60001;
      break;
    default:
      cr_assert_fail("no mutation %d", k);
  }
  return c;
}

static int64_t cc_mutated(fx_t *f) {
  walrus_config_t c = mutated(f, f->arg);
  return walrus_config_check(&c, f->msg, sizeof f->msg);
}
static int64_t openex_mutated(fx_t *f) {
  walrus_config_t c = mutated(f, f->arg);
  return walrus_open_ex(f->dir, &c, &f->o.w, f->msg, sizeof f->msg);
}

/* ---- generated rows: malformed transaction ids -------------------------- */

/* Each spoils the id of a pending transaction, so that a lenient parser
 * would find that transaction and succeed. */
static const char *const bad_ids[] = {
    "empty string",         "\"tx_\" only",    "prefix TX_",
    "uppercase hex digits", "31 hex digits",   "33 hex digits",
    "a non-hex digit",      "a leading space", "40 bytes without NUL",
};
#define NBADID (sizeof bad_ids / sizeof bad_ids[0])

static walrus_txid_t spoiled(const walrus_txid_t *id, int k) {
  walrus_txid_t s = *id;
  switch (k) {
    case 0:
      s.s[0] = '\0';
      break;
    case 1:
      s.s[3] = '\0';
      break;
    case 2:
      s.s[0] = 'T';
      s.s[1] = 'X';
      break;
    case 3:
      for (int i = 3; i < TXID_LEN; i++) s.s[i] = (char)toupper(s.s[i]);
      if (strcmp(s.s, id->s) == 0) s.s[3] = 'A'; /* all digits: force one */
      break;
    case 4:
      s.s[TXID_LEN - 1] = '\0';
      break;
    case 5:
      s.s[TXID_LEN] = s.s[TXID_LEN - 1];
      s.s[TXID_LEN + 1] = '\0';
      break;
    case 6:
      s.s[10] = 'g';
      break;
    case 7:
      memmove(s.s + 1, s.s, TXID_LEN + 1);
      s.s[0] = ' ';
      break;
    case 8:
      memset(s.s + TXID_LEN, 'a', sizeof s.s - TXID_LEN);
      break;
    default:
      cr_assert_fail("no bad id %d", k);
  }
  return s;
}

static int64_t txadd_bad_id(fx_t *f) {
  walrus_txid_t id = spoiled(&f->tx, f->arg);
  return txadd(f, f->w, &id, &f->e);
}
static int64_t txcommit_bad_id(fx_t *f) {
  walrus_txid_t id = spoiled(&f->tx, f->arg);
  return txcommit(f, f->w, &id);
}
static int64_t txrollback_bad_id(fx_t *f) {
  walrus_txid_t id = spoiled(&f->tx, f->arg);
  return txrollback(f, &id);
}
static int64_t txstate_bad_id(fx_t *f) {
  walrus_txid_t id = spoiled(&f->tx, f->arg);
  f->target = f->w;
  return walrus_tx_state(f->w, &id, &f->o.state);
}

static const struct {
  const char *fn;
  int64_t (*call)(fx_t *f);
} bad_id_calls[] = {
    {"walrus_tx_add", txadd_bad_id},
    {"walrus_tx_commit", txcommit_bad_id},
    {"walrus_tx_rollback", txrollback_bad_id},
    {"walrus_tx_state", txstate_bad_id},
};
#define NBADIDCALLS (sizeof bad_id_calls / sizeof bad_id_calls[0])

#define ROWS_TOTAL (NROWS + 2 * NMUT + NBADIDCALLS * NBADID)

/* Row i of the whole table: the static rows, then each configuration
 * mutation through walrus_config_check and walrus_open_ex, then each bad
 * id through each transaction call. */
static row_t row_at(size_t i) {
  if (i < NROWS) return rows[i];
  i -= NROWS;
  if (i < 2 * NMUT) {
    const mutation_t *m = &mutations[i / 2];
    row_t r = {i % 2 ? "walrus_open_ex" : "walrus_config_check",
               m->bad,
               0,
               i % 2 ? openex_mutated : cc_mutated,
               m->want,
               m->field,
               (int)(i / 2)};
    return r;
  }
  i -= 2 * NMUT;
  cr_assert_lt(i, NBADIDCALLS * NBADID);
  row_t r = {bad_id_calls[i % NBADIDCALLS].fn,
             bad_ids[i / NBADIDCALLS],
             S_TX,
             bad_id_calls[i % NBADIDCALLS].call,
             WALRUS_EINVAL,
             "transaction id",
             (int)(i / NBADIDCALLS)};
  return r;
}

/* ---- what must not change ----------------------------------------------- */

/* What a handle shows of the log, and the segment files. */
typedef struct view {
  uint64_t first, last, next; /* the indexes */
  uint32_t crc[NENTRIES + 2]; /* each entry's checksum, by index */
  size_t len[NENTRIES + 2];   /* and length */
  char segs[2048];            /* the segment file names */
} view_t;

static void view_of(walrus_t *h, const char *dir, view_t *v) {
  char **names;
  memset(v, 0, sizeof *v);
  v->first = walrus_first_index(h);
  v->last = walrus_last_index(h);
  v->next = walrus_next_index(h);
  cr_assert_leq(v->last, NENTRIES, "%s: the log grew to %llu entries", g_tag,
                (unsigned long long)v->last);
  for (uint64_t i = v->first; i <= v->last && i != 0; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    int rc = walrus_get(h, i, &e);
    cr_assert_eq(rc, WALRUS_OK, "%s: get %llu: %s", g_tag,
                 (unsigned long long)i, walrus_errmsg(h));
    v->crc[i] = e.checksum;
    v->len[i] = e.len;
    walrus_entry_free(&e);
  }
  tu_segments(dir, &names);
  for (char **p = names; *p != NULL; p++) {
    strncat(v->segs, *p, sizeof v->segs - strlen(v->segs) - 2);
    strcat(v->segs, " ");
  }
  tu_strv_free(names);
}

/* h shows the log as `was` did, and holds the entries as appended.  With
 * segs, the segment files are the same too.  (Not after a reopen: open
 * removes segments left holding only entries below the first index.) */
static void expect_view(walrus_t *h, const char *dir, const view_t *was,
                        int segs, const char *when) {
  view_t now;
  view_of(h, dir, &now);
  cr_assert(
      now.first == was->first && now.last == was->last && now.next == was->next,
      "%s: %s: first/last/next %llu/%llu/%llu, were %llu/%llu/%llu", g_tag,
      when, (unsigned long long)now.first, (unsigned long long)now.last,
      (unsigned long long)now.next, (unsigned long long)was->first,
      (unsigned long long)was->last, (unsigned long long)was->next);
  for (uint64_t i = was->first; i <= was->last && i != 0; i++)
    cr_assert(now.crc[i] == was->crc[i] && now.len[i] == was->len[i],
              "%s: %s: entry %llu changed", g_tag, when, (unsigned long long)i);
  if (segs)
    cr_assert_str_eq(now.segs, was->segs, "%s: %s: segment files changed",
                     g_tag, when);
  tu_check_range(h, was->first, was->last, SEED, PAYLOAD_MAX);
}

/* Calls of the fault VFS that change files. */
static uint64_t writes(vf_t *vf) {
  static const vf_method_t m[] = {VF_PWRITE,   VF_SYNC,   VF_TRUNCATE,
                                  VF_ALLOCATE, VF_RENAME, VF_UNLINK,
                                  VF_SYNC_DIR};
  uint64_t n = 0;
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) n += vf_count(vf, m[i]);
  return n;
}

/* Counters a refused call must not move. */
static void stats_of(walrus_t *h, uint64_t out[4]) {
  walrus_stats_t s;
  memset(out, 0, 4 * sizeof *out);
  if (h == NULL) return;
  TU_OK(h, walrus_stats(h, &s));
  out[0] = s.appends;
  out[1] = s.entries;
  out[2] = s.bytes;
  out[3] = s.fsyncs;
}

/* Set the handle's message by a harmless failure, so that a call that
 * fails without setting its own cannot pass on an older one. */
#define PRIMER_INDEX (UINT64_MAX - 0xBAD)
static void prime(walrus_t *h, char *msg, size_t len) {
  walrus_entry_t e;
  msg[0] = '\0';
  if (h == NULL) return;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(h, PRIMER_INDEX, &e));
  snprintf(msg, len, "%s", walrus_errmsg(h));
}

/* Does hay contain every '&'-separated word of needle (any case)? */
static int names_all(const char *hay, const char *needle) {
  char word[128];
  while (*needle) {
    size_t n = strcspn(needle, "&");
    snprintf(word, sizeof word, "%.*s", (int)n, needle);
    int found = 0;
    for (const char *p = hay; *p && !found; p++)
      found = strncasecmp(p, word, n) == 0;
    if (!found) return 0;
    needle += n + (needle[n] == '&');
  }
  return 1;
}

static void preset_outs(outs_t *o) {
  memset(o, 0xA5, sizeof *o); /* every byte, padding too, for memcmp */
  o->it = SENT_PTR;
  o->w = SENT_PTR;
  o->state = SENT_STATE;
}

static void expect_outs_untouched(const outs_t *o) {
  outs_t s;
  preset_outs(&s);
  cr_assert(o->index == s.index && o->count == s.count,
            "%s: an index or count out-parameter was written", g_tag);
  cr_assert(memcmp(&o->entry, &s.entry, sizeof s.entry) == 0,
            "%s: the entry out-parameter was written", g_tag);
  cr_assert(o->it == s.it, "%s: *it was written", g_tag);
  cr_assert(o->w == s.w, "%s: *out (a handle) was written", g_tag);
  cr_assert(memcmp(&o->id, &s.id, sizeof s.id) == 0, "%s: *id was written",
            g_tag);
  cr_assert(o->state == s.state, "%s: *state was written", g_tag);
  cr_assert(memcmp(&o->stats, &s.stats, sizeof s.stats) == 0,
            "%s: the stats out-parameter was written", g_tag);
  cr_assert(memcmp(&o->view, &s.view, sizeof s.view) == 0,
            "%s: the view out-parameter was written", g_tag);
}

/* walrus_close() that must succeed (the handle is gone afterwards, so the
 * message cannot name walrus_errmsg). */
static void close_ok(walrus_t *h) {
  int rc = walrus_close(h);
  cr_assert_eq(rc, WALRUS_OK, "%s: close: %s", g_tag, walrus_errname(rc));
}

/* ---- the test ----------------------------------------------------------- */

TestSuite(badinput);

ParameterizedTestParameters(badinput, row) {
  static size_t idx[ROWS_TOTAL];
  for (size_t i = 0; i < ROWS_TOTAL; i++) idx[i] = i;
  return cr_make_param_array(size_t, idx, ROWS_TOTAL);
}

/* The running row's fixture, so that a failed row still removes its temp
 * dir (Criterion runs .fini after a failed assertion, not after a
 * crash). */
static fx_t *g_fx;
static void row_fini(void) {
  if (g_fx != NULL) tu_tmpdir_remove(g_fx->tmp);
}

ParameterizedTest(size_t *pi, badinput, row, .timeout = 120, .fini = row_fini) {
  row_t r = row_at(*pi);
  snprintf(g_tag, sizeof g_tag, "row %zu %s (%s)", *pi, r.fn, r.bad);
  cr_log_info("%s", g_tag);
  fx_t *f = g_fx = calloc(1, sizeof *f);
  cr_assert_not_null(f);
  fx_setup(f, r.setup);
  f->arg = r.arg;

  walrus_t *h = f->w != NULL ? f->w : f->ro; /* shows the log */
  view_t before;
  uint64_t st_w[4], st_ro[4], st[4];
  char prim_w[512], prim_ro[512];
  view_of(h, f->dir, &before);
  if (f->w != NULL && f->ro != NULL)
    expect_view(f->ro, f->dir, &before, 1, "read-only view before the call");
  stats_of(f->w, st_w);
  stats_of(f->ro, st_ro);
  prime(f->w, prim_w, sizeof prim_w);
  prime(f->ro, prim_ro, sizeof prim_ro);
  preset_outs(&f->o);
  snprintf(f->msg, sizeof f->msg, "%s", SENT_MSG);
  vf_history_clear(f->vf);
  uint64_t writes_before = writes(f->vf);

  int64_t got = r.call(f);

  cr_assert_eq(got, r.want, "%s: returned %s (%lld), walrus.h says %s (%lld)",
               g_tag, walrus_errname((int)got), (long long)got,
               walrus_errname((int)r.want), (long long)r.want);
  if (r.needle != NULL) {
    const char *msg = f->target != NULL ? walrus_errmsg(f->target) : f->msg;
    const char *old = f->target == NULL   ? SENT_MSG
                      : f->target == f->w ? prim_w
                                          : prim_ro;
    cr_assert(msg[0] != '\0' && strcmp(msg, old) != 0,
              "%s: the call set no message (still \"%s\")", g_tag, msg);
    cr_assert(names_all(msg, r.needle), "%s: message \"%s\" lacks \"%s\"",
              g_tag, msg, r.needle);
  }
  expect_outs_untouched(&f->o);
  char hist[1024];
  cr_assert_eq(writes(f->vf), writes_before, "%s: the call wrote: %s", g_tag,
               vf_history(f->vf, hist, sizeof hist));
  stats_of(f->w, st);
  cr_assert(memcmp(st, st_w, sizeof st) == 0, "%s: the writer's counters moved",
            g_tag);
  stats_of(f->ro, st);
  cr_assert(memcmp(st, st_ro, sizeof st) == 0,
            "%s: the read-only handle's counters moved", g_tag);
  expect_view(h, f->dir, &before, 1, "after the call");
  if (f->w != NULL && f->ro != NULL)
    expect_view(f->ro, f->dir, &before, 1, "read-only view after the call");

  /* Close everything, reopen, and look again. */
  walrus_iter_close(f->it);
  walrus_iter_close(f->it_ro);
  close_ok(f->ro);
  close_ok(f->w);
  walrus_config_t c = base_cfg();
  walrus_t *w2 = tu_open(f->dir, &c);
  expect_view(w2, f->dir, &before, 0, "after reopening");
  close_ok(w2);
  vf_free(f->vf);
  tu_tmpdir_remove(f->tmp);
  free(f);
  g_fx = NULL;
}

/* ---- the table covers every public function ----------------------------- */

/* Public functions with no row, and why. */
static const char *const not_applicable[] = {
    "walrus_config_default",   /* NULL is a precondition; no other argument */
    "walrus_errmsg",           /* NULL behaviour not documented */
    "walrus_last_errno",       /* NULL behaviour not documented */
    "walrus_durable_index",    /* NULL behaviour not documented; no other
                                  argument */
    "walrus_version",          /* no argument */
    "walrus_version_string",   /* no argument */
    "walrus_inspect_free",     /* NULL is fine; no other argument */
    "walrus_repair_plan_free", /* NULL is fine; no other argument */
};
#define NNA (sizeof not_applicable / sizeof not_applicable[0])

static size_t rows_for(const char *fn) {
  size_t n = 0;
  for (size_t i = 0; i < ROWS_TOTAL; i++) n += strcmp(row_at(i).fn, fn) == 0;
  return n;
}

Test(badinput, table_covers_every_public_function) {
  size_t len, nfn = 0, covered = 0;
  char *hdr =
      (char *)tu_read_file(WALRUS_TEST_DATA_DIR "/../include/walrus.h", &len);
  char *names[128];
  /* Every "WALRUS_API <type> name(" declaration. */
  for (char *p = hdr; (p = strstr(p, "\nWALRUS_API ")) != NULL; p++) {
    char *paren = strchr(p + 1, '(');
    cr_assert_not_null(paren);
    char *end = paren;
    while (end > p && (isalnum((unsigned char)end[-1]) || end[-1] == '_'))
      end--;
    cr_assert_lt(nfn, sizeof names / sizeof names[0]);
    names[nfn] = strndup(end, (size_t)(paren - end));
    nfn++;
  }
  cr_assert_geq(nfn, 30u, "found only %zu functions in walrus.h", nfn);
  for (size_t i = 0; i < nfn; i++) {
    int na = 0;
    for (size_t k = 0; k < NNA; k++)
      na |= strcmp(names[i], not_applicable[k]) == 0;
    size_t n = rows_for(names[i]);
    cr_assert(n > 0 || na, "%s has no row in the table", names[i]);
    cr_assert(n == 0 || !na, "%s has rows but is listed not applicable",
              names[i]);
    covered += n > 0;
  }
  /* And no row names a function walrus.h does not declare. */
  for (size_t i = 0; i < ROWS_TOTAL; i++) {
    int known = 0;
    for (size_t k = 0; k < nfn; k++)
      known |= strcmp(row_at(i).fn, names[k]) == 0;
    cr_assert(known, "row %zu calls %s, not in walrus.h", i, row_at(i).fn);
  }
  cr_log_info("badinput: %zu rows cover %zu of the %zu functions of "
              "walrus.h (%zu take no bad argument)",
              (size_t)ROWS_TOTAL, covered, nfn, (size_t)NNA);
  cr_assert_geq(ROWS_TOTAL, MIN_ROWS, "the table shrank to %zu rows",
                (size_t)ROWS_TOTAL);
  for (size_t i = 0; i < nfn; i++) free(names[i]);
  free(hdr);
}

/* After the run: how many rows ran, and how many passed. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  size_t ran = 0, passed = 0;
  for (struct criterion_suite_stats *s = stats->suites; s; s = s->next) {
    if (strcmp(s->suite->name, "badinput") != 0) continue;
    for (struct criterion_test_stats *t = s->tests; t; t = t->next) {
      if (strcmp(t->test->name, "row") != 0) continue;
      ran++;
      passed += t->test_status == CR_STATUS_PASSED;
    }
  }
  cr_log_info("badinput: %zu of %zu rows ran, %zu passed", ran,
              (size_t)ROWS_TOTAL, passed);
}
