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
