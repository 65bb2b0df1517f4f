/*
 * test_restart.c: a process crash, then a power cut.  A writable open must
 * make durable what a dead process left unsynced before it acknowledges
 * anything built on it.
 *
 * Each test runs on the power-loss VFS (tests/support/vfs_powerloss.h):
 *
 *  1. a first process dies at one chosen VFS call (pl_hook), leaving its
 *     unsynced writes and directory operations in the simulated page cache;
 *  2. the process is gone but the machine is not (pl_restart): a second
 *     open runs on that page cache, appends durably and is acknowledged;
 *  3. the power goes, and every change that no fsync covered is lost
 *     (pl_crash_worst);
 *  4. the log must open, and hold every entry either process had
 *     acknowledged, with its bytes.
 *
 * Each case names the call the first process dies at:
 *
 *  - log_directory: the fsync of the parent after the mkdir of the log
 *    directory (the directory's own name was never made durable);
 *  - renamed_segment: the directory fsync after a rotation renamed the new
 *    segment into place (its name was never made durable);
 *  - unsynced_trailer: the fdatasync after a seal wrote the trailer (the
 *    segment reads as sealed, but its trailer is only in the page cache);
 *  - truncate_back_meta: the directory fsync after truncate_back renamed
 *    the clean META into place (on disk META still says that entries after
 *    the cut are void, and would void the second process's appends).
 *
 * tests/crash/test_powerloss.c runs the same two lives at every VFS call of
 * a random workload.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "crash_run.h"
#include "util.h"
#include "vfs_powerloss.h"
#include "walrus.h"

#define LOGDIR "/pl/log"
#define SEED 4242
#define MAXLEN 600 /* payloads of 0..MAXLEN bytes */

/* The call to die at: the first call of kind at_kind whose path ends in
 * at_suffix, once after_n calls of kind after_kind ending in after_suffix
 * (a rename: its new path) and of after_len bytes (0: any) were made. */
typedef struct trigger_s {
  pl_kind_t after_kind;
  const char *after_suffix;
  size_t after_len;
  int after_n;
  pl_kind_t at_kind;
  const char *at_suffix;
  int seen;  /* calls that matched the after_* part so far */
  int fired; /* the process died at the call */
} trigger_t;

static int ends_with(const char *s, const char *suffix) {
  if (s == NULL || suffix == NULL) return 0;
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int trigger_hook(void *ud, const pl_call_t *c) {
  trigger_t *t = ud;
  if (t->fired) return 1;
  const char *name = c->kind == PL_RENAME ? c->to : c->path;
  if (t->seen >= t->after_n && c->kind == t->at_kind &&
      ends_with(c->path, t->at_suffix))
    return t->fired = 1;
  if (c->kind == t->after_kind && ends_with(name, t->after_suffix) &&
      (t->after_len == 0 || c->len == t->after_len))
    t->seen++;
  return 0;
}

static walrus_config_t config(pl_t *pl) {
  walrus_config_t cfg = crash_config(WALRUS_SYNC_ALWAYS, 16384);
  cfg.vfs = pl_vfs(pl);
  return cfg;
}

static pl_t *new_disk(void) {
  pl_t *pl = pl_new();
  cr_assert_not_null(pl);
  cr_assert_eq(pl_mkdir_durable(pl, "/pl"), 0);
  return pl;
}

/* Append entries until an append fails; every entry before is
 * acknowledged.  Returns the last acknowledged index (0: none). */
static uint64_t append_until_death(walrus_t *w, pl_t *pl) {
  static unsigned char buf[MAXLEN];
  uint64_t last = 0;
  for (int i = 0; i < 100000; i++) {
    walrus_entry_t e;
    uint64_t want = walrus_next_index(w), got = 0;
    tu_entry_set(&e, want, SEED, MAXLEN, buf);
    int rc = walrus_append(w, &e, &got);
    if (rc != WALRUS_OK) {
      cr_assert(pl_dead(pl), "append %llu failed with %s before the death",
                (unsigned long long)want, walrus_errname(rc));
      return last;
    }
    cr_assert_eq(got, want);
    last = got;
  }
  cr_assert_fail("the process never reached the call it was to die at");
  return 0;
}

/* The end of the first life: whatever the handle still holds is freed
 * (every call fails: the process is dead), and the machine lives on. */
static void first_process_dies(pl_t *pl, walrus_t *w, trigger_t *t) {
  cr_assert(t->fired, "the first process never reached its death");
  cr_assert(pl_dead(pl));
  walrus_close(w); /* fails; frees the handle */
  pl_hook(pl, NULL, NULL);
  pl_restart(pl);
}

/* The first life: open, append until the process dies at t's call, then
 * die (first_process_dies).  Returns the last index acknowledged. */
static uint64_t first_life_appends(pl_t *pl, trigger_t *t) {
  pl_hook(pl, trigger_hook, t);
  walrus_config_t cfg = config(pl);
  walrus_t *w = tu_open(LOGDIR, &cfg);
  uint64_t acked = append_until_death(w, pl);
  cr_assert_gt(acked, 1u);
  first_process_dies(pl, w, t);
  return acked;
}

/* The second life: open on what the dead process left, append three
 * entries durably; returns the last index acknowledged.  Then the power
 * goes, and nothing unsynced survives. */
static uint64_t second_process_then_power_cut(pl_t *pl, uint64_t *first_new) {
  walrus_config_t cfg = config(pl);
  walrus_t *w = tu_open(LOGDIR, &cfg);
  *first_new = walrus_next_index(w);
  tu_append_n(w, 3, SEED, MAXLEN);
  uint64_t last = walrus_last_index(w);
  cr_assert_eq(last, *first_new + 2);
  pl_kill(pl); /* the power goes before the log is closed */
  walrus_close(w);
  pl_crash_worst(pl);
  return last;
}

/* After the power cut: the log opens and holds first..last, every byte. */
static void check_after_power_cut(pl_t *pl, uint64_t first, uint64_t last) {
  walrus_config_t cfg = config(pl);
  walrus_t *w = NULL;
  char err[512] = "";
  int rc = walrus_open_ex(LOGDIR, &cfg, &w, err, sizeof err);
  cr_assert_eq(rc, WALRUS_OK, "open after the power cut: %s: %s",
               walrus_errname(rc), err);
  cr_assert_geq(walrus_last_index(w), last,
                "after the power cut the log ends at %llu, but entries up "
                "to %llu were acknowledged",
                (unsigned long long)walrus_last_index(w),
                (unsigned long long)last);
  cr_assert_leq(walrus_first_index(w), first);
  tu_check_range(w, first, last, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  pl_free(pl);
}

Test(restart, log_directory) {
  pl_t *pl = new_disk();
  trigger_t t = {.after_n = 0, .at_kind = PL_SYNC_DIR, .at_suffix = "/pl"};
  pl_hook(pl, trigger_hook, &t);
  walrus_config_t cfg = config(pl);
  walrus_t *w = NULL;
  int rc = walrus_open(LOGDIR, &cfg, &w);
  cr_assert_neq(rc, WALRUS_OK, "the first open survived its death");
  first_process_dies(pl, NULL, &t);
  uint64_t first = 0;
  uint64_t last = second_process_then_power_cut(pl, &first);
  check_after_power_cut(pl, first, last);
}

Test(restart, renamed_segment) {
  pl_t *pl = new_disk();
  /* The first segment is renamed into place by the first append; the
   * second by the first rotation. */
  trigger_t t = {.after_kind = PL_RENAME, .after_suffix = ".seg",
                 .after_n = 2, .at_kind = PL_SYNC_DIR, .at_suffix = "/log"};
  first_life_appends(pl, &t);
  uint64_t first = 0;
  uint64_t last = second_process_then_power_cut(pl, &first);
  check_after_power_cut(pl, 1, last);
}

Test(restart, unsynced_trailer) {
  pl_t *pl = new_disk();
  /* Die at the fdatasync that follows the seal's 32-byte trailer. */
  trigger_t t = {.after_kind = PL_PWRITE, .after_suffix = ".seg",
                 .after_len = 32, .after_n = 1, .at_kind = PL_SYNC,
                 .at_suffix = ".seg"};
  uint64_t acked = first_life_appends(pl, &t);
  uint64_t first = 0;
  uint64_t last = second_process_then_power_cut(pl, &first);
  cr_assert_eq(first, acked + 1);
  check_after_power_cut(pl, 1, last);
}

Test(restart, truncate_back_meta) {
  pl_t *pl = new_disk();
  /* META is renamed into place when the log is created, when
   * truncate_back records its intent and when it clears it: die at the
   * directory fsync after the third. */
  trigger_t t = {.after_kind = PL_RENAME, .after_suffix = "/META",
                 .after_n = 3, .at_kind = PL_SYNC_DIR, .at_suffix = "/log"};
  pl_hook(pl, trigger_hook, &t);
  walrus_config_t cfg = config(pl);
  walrus_t *w = tu_open(LOGDIR, &cfg);
  tu_append_n(w, 10, SEED, MAXLEN);
  int rc = walrus_truncate_back(w, 5);
  cr_assert_neq(rc, WALRUS_OK, "truncate_back survived its death");
  first_process_dies(pl, w, &t);
  uint64_t first = 0;
  uint64_t last = second_process_then_power_cut(pl, &first);
  cr_assert_eq(first, 6u, "the second open saw the log end at %llu",
               (unsigned long long)(first - 1));
  check_after_power_cut(pl, 1, last);
}

/* ---- every call of a scripted life ----------------------------------------
 *
 * The first process runs a fixed script (create, appends through several
 * rotations, a batch, truncate_back across segments, truncate_front, more
 * appends, reset, appends, truncate_back inside the tail, a clean close)
 * and dies at its k-th state-changing call, for every k.  A read-only open
 * then must change nothing; a second process opens what was left, checks
 * every entry it sees, appends three, and the power goes (every other k
 * the worst loss, else a seeded random one).  The log must then be exactly
 * what the second process saw plus its three entries.
 */

#define SWEEP_SEGMENT 4096

static walrus_config_t sweep_config(pl_t *pl) {
  walrus_config_t cfg = crash_config(WALRUS_SYNC_ALWAYS, SWEEP_SEGMENT);
  cfg.vfs = pl_vfs(pl);
  return cfg;
}

/* Append n entries keyed by their indexes, as one batch or one by one. */
static int append_keyed(walrus_t *w, int n, int batch) {
  static unsigned char bufs[8][MAXLEN];
  walrus_entry_t e[8];
  uint64_t next = walrus_next_index(w), got = 0;
  if (batch) {
    for (int i = 0; i < n; i++)
      tu_entry_set(&e[i], next + (uint64_t)i, SEED, MAXLEN, bufs[i]);
    return walrus_write_batch(w, e, (size_t)n, &got);
  }
  for (int i = 0; i < n; i++) {
    tu_entry_set(&e[0], next + (uint64_t)i, SEED, MAXLEN, bufs[0]);
    int rc = walrus_append(w, &e[0], &got);
    if (rc != WALRUS_OK) return rc;
  }
  return WALRUS_OK;
}

/* The script; stops at the first failure, which must be the death. */
static void script(pl_t *pl) {
  walrus_config_t cfg = sweep_config(pl);
  walrus_t *w = NULL;
  int rc = walrus_open(LOGDIR, &cfg, &w);
#define STEP(expr)                                                        \
  do {                                                                    \
    if (rc == WALRUS_OK) rc = (expr);                                     \
    cr_assert(rc == WALRUS_OK || pl_dead(pl), "%s: %s before the death", \
              #expr, walrus_errname(rc));                                 \
  } while (0)
  STEP(append_keyed(w, 30, 0));
  STEP(append_keyed(w, 5, 1));
  STEP(walrus_truncate_back(w, 27));
  STEP(walrus_truncate_front(w, 14));
  STEP(append_keyed(w, 10, 0));
  STEP(walrus_reset(w, 50));
  STEP(append_keyed(w, 12, 0));
  STEP(walrus_truncate_back(w, 55));
  STEP(append_keyed(w, 2, 1));
  int closing = rc == WALRUS_OK; /* walrus_close frees w even if it fails */
  STEP(walrus_close(w));
#undef STEP
  if (!closing) walrus_close(w); /* fails (dead); frees the handle */
}

/* A hook that dies nowhere and counts the calls that change something. */
static int count_changes(void *ud, const pl_call_t *c) {
  if (c->kind != PL_OPEN) ++*(int *)ud;
  return 0;
}

Test(restart, every_call_of_a_scripted_life, .timeout = 300) {
  /* How many state-changing calls the script makes when nothing dies. */
  pl_t *pl = new_disk();
  script(pl);
  uint64_t calls = pl_ops(pl);
  pl_free(pl);
  cr_assert_gt(calls, 100u);
  uint64_t worst = 0, verified = 0, ro_opens = 0;
  for (uint64_t k = 0; k <= calls; k++) {
    pl = new_disk();
    pl_arm(pl, k);
    script(pl);
    cr_assert(pl_dead(pl) || k == calls, "k %llu: the script did not die",
              (unsigned long long)k);
    pl_restart(pl);

    /* A read-only open writes, syncs, cuts, renames and removes nothing. */
    int changes = 0;
    walrus_config_t cfg = sweep_config(pl);
    cfg.read_only = 1;
    walrus_t *w = NULL;
    pl_hook(pl, count_changes, &changes);
    int rc = walrus_open(LOGDIR, &cfg, &w);
    cr_assert(rc == WALRUS_OK ||
                  (rc == WALRUS_EIO && !pl_exists(pl, LOGDIR "/META")),
              "k %llu: read-only open: %s", (unsigned long long)k,
              walrus_errname(rc));
    if (rc == WALRUS_OK) {
      ro_opens++;
      TU_OK(w, walrus_close(w));
    }
    pl_hook(pl, NULL, NULL);
    cr_assert_eq(changes, 0, "k %llu: a read-only open made %d changes",
                 (unsigned long long)k, changes);

    /* The second process: what it sees, plus three entries. */
    cfg = sweep_config(pl);
    w = tu_open(LOGDIR, &cfg);
    uint64_t next = walrus_next_index(w);
    uint64_t first = walrus_first_index(w) ? walrus_first_index(w) : next;
    tu_check_range(w, first, next - 1, SEED, MAXLEN);
    TU_OK(w, append_keyed(w, 3, 0));
    pl_kill(pl);
    walrus_close(w);
    if (k % 2 == 0) {
      pl_crash_worst(pl);
      worst++;
    } else {
      pl_crash(pl, k * 7919u + 1);
    }

    w = NULL;
    char err[512] = "";
    rc = walrus_open_ex(LOGDIR, &cfg, &w, err, sizeof err);
    cr_assert_eq(rc, WALRUS_OK, "k %llu: open after the power cut: %s: %s",
                 (unsigned long long)k, walrus_errname(rc), err);
    cr_assert_eq(walrus_next_index(w), next + 3,
                 "k %llu: the log ends at %llu, the second process "
                 "acknowledged up to %llu",
                 (unsigned long long)k,
                 (unsigned long long)(walrus_next_index(w) - 1),
                 (unsigned long long)(next + 2));
    cr_assert_eq(walrus_first_index(w), first, "k %llu: first index %llu, "
                 "want %llu", (unsigned long long)k,
                 (unsigned long long)walrus_first_index(w),
                 (unsigned long long)first);
    tu_check_range(w, first, next + 2, SEED, MAXLEN);
    verified += next + 3 - first;
    TU_OK(w, walrus_close(w));
    pl_free(pl);
  }
  cr_log_info("%llu crash points, %llu with the worst power loss; %llu "
              "read-only opens changed nothing; %llu entries verified",
              (unsigned long long)(calls + 1), (unsigned long long)worst,
              (unsigned long long)ro_opens, (unsigned long long)verified);
  fprintf(stderr,
          "test_restart: %llu crash points of the script, each then a second "
          "process and a power loss (%llu the worst); %llu read-only opens "
          "changed nothing; %llu entries verified\n",
          (unsigned long long)(calls + 1), (unsigned long long)worst,
          (unsigned long long)ro_opens, (unsigned long long)verified);
}
