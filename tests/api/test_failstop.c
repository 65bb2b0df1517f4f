/*
 * test_failstop.c: fail-stop on I/O errors and allocation failures.
 *
 * A write or fsync that fails through the VFS must return its specific
 * code, poison the handle (every later write: WALRUS_EPOISONED, without
 * touching the disk again, so a failed fsync is never retried), leave reads
 * working, and leave a log that reopens with every earlier acknowledged
 * entry and nothing of the failed call.  An allocation failure returns
 * WALRUS_ENOMEM and leaves the handle usable.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus.h"

#define SEED 0xFA11u

static char *g_dir;
static void setup(void) { g_dir = tu_tmpdir(); }
static void teardown(void) { tu_tmpdir_remove(g_dir); }
TestSuite(failstop, .init = setup, .fini = teardown);

static walrus_config_t cfg_with(vf_t *vf, uint64_t seg_bytes) {
  walrus_config_t c;
  walrus_config_default(&c);
  c.vfs = vf_vfs(vf);
  c.segment_bytes = seg_bytes;
  return c;
}

/* Every write call refuses with EPOISONED and makes no VFS call. */
static void expect_poisoned(walrus_t *w, vf_t *vf) {
  uint64_t calls = vf_count(vf, VF_ANY);
  walrus_entry_t e;
  unsigned char buf[32];
  tu_entry_set(&e, walrus_next_index(w), SEED, sizeof buf, buf);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_EPOISONED);
  cr_assert_eq(walrus_write_batch(w, &e, 1, NULL), WALRUS_EPOISONED);
  cr_assert_eq(walrus_sync(w), WALRUS_EPOISONED);
  cr_assert_eq(walrus_truncate_back(w, walrus_first_index(w)),
               WALRUS_EPOISONED);
  cr_assert_eq(walrus_truncate_front(w, walrus_first_index(w)),
               WALRUS_EPOISONED);
  cr_assert_eq(walrus_reset(w, 5), WALRUS_EPOISONED);
  cr_assert_eq(vf_count(vf, VF_ANY), calls,
               "a poisoned handle must not touch the files (no fsync retry)");
  cr_assert_neq(strstr(walrus_errmsg(w), "poison"), NULL, "%s",
                walrus_errmsg(w));
}

/* Append 20 entries, fail the next call of method m with err during an
 * append, and check the code, the poison, reads, and the reopened log. */
static void fail_one_append(vf_method_t m, int err, int want) {
  vf_t *vf = vf_new();
  walrus_config_t cfg = cfg_with(vf, 1 << 20);
  walrus_t *w = tu_open(g_dir, &cfg);
  tu_append_n(w, 20, SEED, 100);
  vf_arm_fail(vf, m, 1, err, 0);
  walrus_entry_t e;
  unsigned char buf[100];
  tu_entry_set(&e, 21, SEED, sizeof buf, buf);
  int rc = walrus_append(w, &e, NULL);
  cr_assert_eq(rc, want, "got %s, want %s", walrus_errname(rc),
               walrus_errname(want));
  cr_assert_eq(vf_fired(vf), 1u);
  vf_disarm(vf);
  cr_assert_eq(walrus_last_index(w), 20u, "a failed append is not visible");
  expect_poisoned(w, vf);
  tu_check_range(w, 1, 20, SEED, 100); /* reads still work */
  walrus_close(w);
  w = tu_open(g_dir, NULL);
  cr_assert_eq(walrus_last_index(w), 20u,
               "the failed append must not survive the reopen");
  tu_check_range(w, 1, 20, SEED, 100);
  tu_append_n(w, 5, SEED, 100);
  cr_assert_eq(walrus_last_index(w), 25u);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  vf_free(vf);
}

Test(failstop, write_eio) { fail_one_append(VF_PWRITE, -EIO, WALRUS_EIO_WRITE); }
Test(failstop, write_enospc) {
  fail_one_append(VF_PWRITE, -ENOSPC, WALRUS_ENOSPC);
}
Test(failstop, fsync_eio) { fail_one_append(VF_SYNC, -EIO, WALRUS_EIO_FSYNC); }

Test(failstop, fsync_failure_under_sync_none_poisons_walrus_sync) {
  vf_t *vf = vf_new();
  walrus_config_t cfg = cfg_with(vf, 1 << 20);
  cfg.sync = WALRUS_SYNC_NONE;
  walrus_t *w = tu_open(g_dir, &cfg);
  tu_append_n(w, 10, SEED, 100);
  vf_arm_fail(vf, VF_SYNC, 1, -EIO, 0);
  cr_assert_eq(walrus_sync(w), WALRUS_EIO_FSYNC);
  vf_disarm(vf);
  expect_poisoned(w, vf);
  walrus_close(w);
  vf_free(vf);
}

Test(failstop, failure_while_sealing_a_segment) {
  vf_t *vf = vf_new();
  walrus_config_t cfg = cfg_with(vf, 4096);
  walrus_t *w = tu_open(g_dir, &cfg);
  /* Fill the first segment close to its size without rotating. */
  uint64_t n = 0;
  char **names;
  while (walrus_next_index(w) < 1000) {
    tu_append_n(w, 1, SEED, 100);
    n++;
    if (tu_segments(g_dir, &names) > 1) {
      tu_strv_free(names);
      break;
    }
    tu_strv_free(names);
  }
  uint64_t last = walrus_last_index(w);
  /* Keep appending until a seal fails: arm the sync that seals. */
  vf_arm_fail(vf, VF_PWRITE, 1, -EIO, 1);
  int rc = WALRUS_OK;
  for (int i = 0; i < 100 && rc == WALRUS_OK; i++) {
    walrus_entry_t e;
    unsigned char buf[100];
    tu_entry_set(&e, walrus_next_index(w), SEED, sizeof buf, buf);
    rc = walrus_append(w, &e, NULL);
    if (rc == WALRUS_OK) last++;
  }
  cr_assert_eq(rc, WALRUS_EIO_WRITE);
  vf_disarm(vf);
  expect_poisoned(w, vf);
  walrus_close(w);
  w = tu_open(g_dir, NULL);
  cr_assert_eq(walrus_last_index(w), last);
  tu_check_range(w, 1, last, SEED, 100);
  tu_append_n(w, 50, SEED, 100);
  tu_check_range(w, 1, last + 50, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  vf_free(vf);
}

/* Fail the nth call of method m during a truncation, for every n until it
 * succeeds: each failure poisons, and the reopened log is the old state or
 * the new.  (close is not swept: walrus ignores its result by design, the
 * data having been synced before.) */
static void sweep_truncation_method(int which, vf_method_t m) {
  for (uint64_t n = 1;; n++) {
    tu_rmrf(g_dir);
    vf_t *vf = vf_new();
    walrus_config_t cfg = cfg_with(vf, 4096);
    walrus_t *w = tu_open(g_dir, &cfg);
    tu_append_n(w, 120, SEED, 100);
    vf_arm_fail(vf, m, n, -EIO, 0);
    int rc = which == 0   ? walrus_truncate_back(w, 30)
             : which == 1 ? walrus_truncate_front(w, 70)
                          : walrus_reset(w, 500);
    int fired = vf_fired(vf) > 0;
    vf_disarm(vf);
    if (!fired) {
      cr_assert_eq(rc, WALRUS_OK, "n=%llu: %s", (unsigned long long)n,
                   walrus_errmsg(w));
      walrus_close(w);
      vf_free(vf);
      cr_log_info("truncation %d, %s: %llu failure points", which,
                  vf_method_name(m), (unsigned long long)(n - 1));
      return;
    }
    cr_assert_neq(rc, WALRUS_OK, "n=%llu: a failed call reported success",
                  (unsigned long long)n);
    /* A failure before anything changed (loading the index of the segment
     * to cut) leaves the handle usable and the log as it was; any other
     * poisons the handle. */
    int poisoned = walrus_sync(w) == WALRUS_EPOISONED;
    if (poisoned) {
      expect_poisoned(w, vf);
    } else {
      cr_assert(m == VF_OPEN || m == VF_PREAD,
                "n=%llu: a failed %s left the handle usable",
                (unsigned long long)n, vf_method_name(m));
      cr_assert(walrus_first_index(w) == 1 && walrus_last_index(w) == 120);
    }
    walrus_close(w);
    w = tu_open(g_dir, NULL);
    uint64_t f = walrus_first_index(w), l = walrus_last_index(w);
    if (!poisoned) cr_assert(f == 1 && l == 120, "n=%llu: changed",
                             (unsigned long long)n);
    if (which == 0) {
      cr_assert(f == 1 && (l == 120 || l == 30), "n=%llu: %llu..%llu",
                (unsigned long long)n, (unsigned long long)f,
                (unsigned long long)l);
      tu_check_range(w, 1, l, SEED, 100);
    } else if (which == 1) {
      cr_assert(l == 120 && (f == 1 || f == 70), "n=%llu: %llu..%llu",
                (unsigned long long)n, (unsigned long long)f,
                (unsigned long long)l);
      tu_check_range(w, f, l, SEED, 100);
    } else {
      cr_assert((f == 1 && l == 120) || walrus_next_index(w) == 500,
                "n=%llu: %llu..%llu", (unsigned long long)n,
                (unsigned long long)f, (unsigned long long)l);
      if (l == 120) tu_check_range(w, 1, l, SEED, 100);
    }
    walrus_close(w);
    vf_free(vf);
  }
}

static void sweep_truncation(int which) {
  static const vf_method_t methods[] = {VF_OPEN,   VF_PREAD,  VF_PWRITE,
                                        VF_SYNC,   VF_TRUNCATE, VF_RENAME,
                                        VF_UNLINK, VF_SYNC_DIR};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    sweep_truncation_method(which, methods[i]);
}

Test(failstop, truncate_back_every_failure_point) { sweep_truncation(0); }
Test(failstop, truncate_front_every_failure_point) { sweep_truncation(1); }
Test(failstop, reset_every_failure_point) { sweep_truncation(2); }

/* An allocator that fails the nth allocation from when it is armed. */
static long g_alloc_countdown = -1;
static long g_alloc_failed;
static void *fail_malloc(void *ud, size_t n) {
  (void)ud;
  if (g_alloc_countdown > 0 && --g_alloc_countdown == 0) {
    g_alloc_failed++;
    return NULL;
  }
  return malloc(n);
}
static void *fail_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (g_alloc_countdown > 0 && --g_alloc_countdown == 0) {
    g_alloc_failed++;
    return NULL;
  }
  return realloc(p, n);
}
static void std_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

Test(failstop, out_of_memory_leaves_the_handle_usable) {
  walrus_allocator_t a = {fail_malloc, fail_realloc, std_free, NULL};
  unsigned seen = 0;
  for (long n = 1; n < 400; n++) {
    tu_rmrf(g_dir);
    walrus_config_t cfg;
    walrus_config_default(&cfg);
    cfg.allocator = &a;
    cfg.segment_bytes = 4096;
    g_alloc_countdown = -1;
    walrus_t *w = tu_open(g_dir, &cfg);
    tu_append_n(w, 30, SEED, 100);
    g_alloc_failed = 0;
    g_alloc_countdown = n;
    /* A mix of calls that allocate: appends that rotate, reads, an
     * iterator. */
    int rc = WALRUS_OK;
    uint64_t acked = 30;
    for (int i = 0; i < 60 && rc == WALRUS_OK; i++) {
      walrus_entry_t e;
      unsigned char buf[100];
      tu_entry_set(&e, acked + 1, SEED, sizeof buf, buf);
      rc = walrus_append(w, &e, NULL);
      if (rc == WALRUS_OK) acked++;
      walrus_entry_t g;
      if (rc == WALRUS_OK) {
        rc = walrus_get(w, 1 + (uint64_t)i % acked, &g);
        if (rc == WALRUS_OK) walrus_entry_free(&g);
      }
      walrus_iter_t *it = NULL;
      if (rc == WALRUS_OK) rc = walrus_iter_open(w, 1, &it);
      if (rc == WALRUS_OK) {
        rc = walrus_iter_next(it, &g);
        walrus_iter_close(it);
      }
    }
    g_alloc_countdown = -1;
    if (g_alloc_failed == 0) {
      cr_assert_eq(rc, WALRUS_OK);
      walrus_close(w);
      cr_log_info("allocation failure points: %ld", n - 1);
      break;
    }
    seen++;
    cr_assert_eq(rc, WALRUS_ENOMEM, "n=%ld: %s", n, walrus_errname(rc));
    /* Still usable: append, read back everything, reopen. */
    cr_assert_eq(walrus_last_index(w), acked);
    tu_append_n(w, 3, SEED, 100);
    tu_check_range(w, 1, acked + 3, SEED, 100);
    cr_assert_eq(walrus_close(w), WALRUS_OK);
    w = tu_open(g_dir, NULL);
    tu_check_range(w, 1, acked + 3, SEED, 100);
    walrus_close(w);
  }
  cr_assert_gt(seen, 5u, "the sweep must have failed some allocations");
}

/* walrus_health: OK and "" while healthy; after a failed fsync, that
 * failure's code and message, which the EPOISONED refusals after it do
 * not overwrite. */
Test(failstop, health_names_the_first_failure) {
  vf_t *vf = vf_new();
  walrus_config_t cfg = cfg_with(vf, 1 << 20);
  walrus_t *w = tu_open(g_dir, &cfg);
  char why[512] = "x";
  cr_assert_eq(walrus_health(w, why, sizeof why), WALRUS_OK);
  cr_assert_str_eq(why, "");
  tu_append_n(w, 5, SEED, 64);
  vf_arm_fail(vf, VF_SYNC, 1, -EIO, 0);
  walrus_entry_t e;
  unsigned char buf[64];
  tu_entry_set(&e, 6, SEED, sizeof buf, buf);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_EIO_FSYNC);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_EPOISONED);
  cr_assert_eq(walrus_sync(w), WALRUS_EPOISONED);
  cr_assert_eq(walrus_health(w, why, sizeof why), WALRUS_EIO_FSYNC);
  cr_assert(strstr(why, "fdatasync") != NULL && strstr(why, "EIO_FSYNC"),
            "why: %s", why);
  cr_assert_eq(walrus_health(w, NULL, 0), WALRUS_EIO_FSYNC);
  char tiny[8];
  cr_assert_eq(walrus_health(w, tiny, sizeof tiny), WALRUS_EIO_FSYNC);
  cr_assert_eq(strlen(tiny), sizeof tiny - 1);
  cr_assert_eq(walrus_health(NULL, why, sizeof why), WALRUS_EINVAL);
  walrus_close(w);
  vf_free(vf);
  /* A read-only handle is healthy. */
  walrus_config_t ro;
  walrus_config_default(&ro);
  ro.read_only = 1;
  w = tu_open(g_dir, &ro);
  cr_assert_eq(walrus_health(w, why, sizeof why), WALRUS_OK);
  TU_OK(w, walrus_close(w));
}
