/*
 * test_vfs_system.c: what walrus asks of the system besides files goes
 * through the VFS (version 4): the clocks, randomness, the futex wait and
 * wake on DURABLE's word, and read-ahead of mappings.  A back end that
 * sets these methods controls them; one that leaves them NULL gets the
 * POSIX back end's.
 *
 * Each test wraps the POSIX table, replacing the methods it watches with
 * ones that count their calls or return what the test chooses, and checks
 * that walrus used them and what it did with their answers.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

static walrus_vfs_t g_vfs;
static atomic_long g_mono_ns;  /* the monotonic clock the VFS tells */
static atomic_int g_random;    /* random calls */
static atomic_int g_waits;     /* wait_word calls */
static atomic_int g_wakes;     /* wake_word calls */
static atomic_int g_populates; /* populate calls */

#define FAKE_REALTIME 1234567890123456789LL

static int64_t fake_clock(void *ctx, int realtime) {
  (void)ctx;
  return realtime ? FAKE_REALTIME : atomic_load(&g_mono_ns);
}

/* Not random at all: every byte 0xab, so ids are predictable. */
static int fake_random(void *ctx, void *buf, size_t n) {
  (void)ctx;
  atomic_fetch_add(&g_random, 1);
  memset(buf, 0xab, n);
  return 0;
}

static void count_wait(void *ctx, const uint32_t *addr, uint32_t expect,
                       int64_t timeout_ns) {
  atomic_fetch_add(&g_waits, 1);
  walrus_vfs_posix()->wait_word(ctx, addr, expect, timeout_ns);
}

static void count_wake(void *ctx, uint32_t *addr) {
  atomic_fetch_add(&g_wakes, 1);
  walrus_vfs_posix()->wake_word(ctx, addr);
}

static void count_populate(void *ctx, const void *addr, uint64_t len) {
  atomic_fetch_add(&g_populates, 1);
  walrus_vfs_posix()->populate(ctx, addr, len);
}

static void setup(void) {
  tu_fixture_setup();
  g_vfs = *walrus_vfs_posix();
  cr_assert_geq(g_vfs.version, 4);
  atomic_store(&g_mono_ns, 1000000000);
  atomic_store(&g_random, 0);
  atomic_store(&g_waits, 0);
  atomic_store(&g_wakes, 0);
  atomic_store(&g_populates, 0);
}
TestSuite(vfs_system, .init = setup, .fini = tu_fixture_teardown);

static walrus_config_t config(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = &g_vfs;
  return cfg;
}

Test(vfs_system, timestamps_come_from_the_vfs_clock) {
  g_vfs.clock_ns = fake_clock;
  walrus_config_t cfg = config();
  walrus_t *w = tu_open(tu_dir, &cfg);
  walrus_entry_t e = {0}, got = {0};
  e.data = "x";
  e.len = 1; /* timestamp_ns 0: walrus stamps it */
  uint64_t idx;
  TU_OK(w, walrus_append(w, &e, &idx));
  TU_OK(w, walrus_get(w, idx, &got));
  cr_assert_eq(got.timestamp_ns, FAKE_REALTIME);
  walrus_entry_free(&got);
  TU_OK(w, walrus_close(w));
}

Test(vfs_system, transaction_timeouts_run_on_the_vfs_clock) {
  g_vfs.clock_ns = fake_clock;
  walrus_config_t cfg = config();
  cfg.tx_cleanup_interval_ms = 0; /* expiry only as calls find it */
  walrus_t *w = tu_open(tu_dir, &cfg);
  walrus_txid_t id;
  walrus_entry_t e = {0};
  e.data = "y";
  e.len = 1;
  TU_OK(w, walrus_tx_begin(w, 50, &id));
  TU_OK(w, walrus_tx_add(w, &id, &e));
  /* No real time passes, but the VFS's clock moves past the timeout. */
  atomic_fetch_add(&g_mono_ns, 60 * 1000000L);
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_add(w, &id, &e));
  TU_OK(w, walrus_close(w));
}

Test(vfs_system, ids_and_salts_come_from_the_vfs_random) {
  g_vfs.random = fake_random;
  walrus_config_t cfg = config();
  walrus_t *w = tu_open(tu_dir, &cfg); /* a new log: a random log id */
  cr_assert_geq(atomic_load(&g_random), 1);
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  cr_assert_str_eq(id.s, "tx_abababababababababababababababab");
  int before = atomic_load(&g_random);
  tu_append_n(w, 1, 1, 10); /* the first segment: a random salt */
  cr_assert_gt(atomic_load(&g_random), before);
  TU_OK(w, walrus_tx_rollback(w, &id));
  TU_OK(w, walrus_close(w));
}

Test(vfs_system, the_writer_wakes_followers_through_the_vfs) {
  g_vfs.wake_word = count_wake;
  walrus_config_t cfg = config();
  walrus_t *w = tu_open(tu_dir, &cfg);
  int before = atomic_load(&g_wakes);
  tu_append_n(w, 5, 2, 10); /* SYNC_ALWAYS: five syncs, five publishes */
  cr_assert_geq(atomic_load(&g_wakes) - before, 5);
  TU_OK(w, walrus_close(w));
}

Test(vfs_system, a_follower_sleeps_through_the_vfs) {
  g_vfs.wait_word = count_wait;
  walrus_config_t cfg = config();
  walrus_t *wr = tu_open(tu_dir, &cfg);
  tu_append_n(wr, 1, 3, 10);
  cfg.read_only = 1;
  walrus_t *ro = tu_open(tu_dir, &cfg);
  /* Nothing comes: the follower sleeps on DURABLE's word until the
   * timeout, through the VFS. */
  TU_EXPECT(WALRUS_ETIMEDOUT, walrus_wait(ro, 2, 30));
  cr_assert_gt(atomic_load(&g_waits), 0);
  TU_OK(ro, walrus_close(ro));
  TU_OK(wr, walrus_close(wr));
}

Test(vfs_system, mapped_iteration_reads_ahead_through_the_vfs) {
  g_vfs.populate = count_populate;
  walrus_config_t cfg = config();
  cfg.zero_copy = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, 4, 100);
  walrus_iter_t *it = NULL;
  TU_OK(w, walrus_iter_open(w, 1, &it));
  walrus_entry_t e;
  uint64_t n = 0;
  while (walrus_iter_next(it, &e) == WALRUS_OK) n++;
  walrus_iter_close(it);
  cr_assert_eq(n, 200u);
  cr_assert_gt(atomic_load(&g_populates), 0);
  TU_OK(w, walrus_close(w));
}
