/*
 * test_group_commit.c: concurrent durable appends share fsyncs, and no
 * caller returns before its own entry is durable.
 *
 * A VFS wrapper over POSIX slows every fdatasync down (so that writers pile
 * up behind it, as they do behind a real disk) and keeps count: how many
 * syncs started, and for each thread, how many had started when it last
 * wrote.  When walrus_append() returns under SYNC_ALWAYS, a sync that
 * started after the caller's write must have completed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

#define SEED 0x6C0Du

static walrus_vfs_t g_vfs;
static atomic_ullong g_syncs_started;   /* syncs begun */
static atomic_ullong g_synced_through;  /* highest start number completed */
static atomic_ullong g_writes;          /* pwrite calls */
static atomic_uint g_sync_delay_us;     /* added to every sync */
static _Thread_local unsigned long long tl_started_at_write;

static int slow_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                       size_t n, uint64_t off) {
  (void)ctx;
  tl_started_at_write = atomic_load(&g_syncs_started);
  atomic_fetch_add(&g_writes, 1);
  return walrus_vfs_posix()->pwrite(NULL, f, buf, n, off);
}

static int slow_sync(void *ctx, walrus_vfs_file_t *f) {
  (void)ctx;
  unsigned long long me = atomic_fetch_add(&g_syncs_started, 1) + 1;
  unsigned us = atomic_load(&g_sync_delay_us);
  if (us > 0) {
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
  }
  int rc = walrus_vfs_posix()->sync(NULL, f);
  if (rc == 0) {
    unsigned long long cur = atomic_load(&g_synced_through);
    while (cur < me &&
           !atomic_compare_exchange_weak(&g_synced_through, &cur, me)) {
    }
  }
  return rc;
}

static char *g_dir;
static void setup(void) {
  g_dir = tu_tmpdir();
  g_vfs = *walrus_vfs_posix();
  g_vfs.pwrite = slow_pwrite;
  g_vfs.sync = slow_sync;
  atomic_store(&g_syncs_started, 0);
  atomic_store(&g_synced_through, 0);
  atomic_store(&g_writes, 0);
  atomic_store(&g_sync_delay_us, 3000);
}
static void teardown(void) { tu_tmpdir_remove(g_dir); }
TestSuite(group_commit, .init = setup, .fini = teardown);

#define THREADS 8
#define PER_THREAD 40

static walrus_t *g_w;
static atomic_int g_early; /* appends that returned before a covering sync */
static atomic_int g_errors;

static void *appender(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  unsigned char buf[128];
  for (int i = 0; i < PER_THREAD; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    memset(buf, (int)(id * 31 + (unsigned)i), sizeof buf);
    e.data = buf;
    e.len = sizeof buf;
    e.term = id;
    uint64_t index;
    if (walrus_append(g_w, &e, &index) != WALRUS_OK) {
      atomic_fetch_add(&g_errors, 1);
      return NULL;
    }
    /* A sync that began after this thread's write must have completed. */
    if (atomic_load(&g_synced_through) <= tl_started_at_write)
      atomic_fetch_add(&g_early, 1);
  }
  return NULL;
}

static void run_threads(void) {
  pthread_t t[THREADS];
  atomic_store(&g_early, 0);
  atomic_store(&g_errors, 0);
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, appender, (void *)(uintptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
}

Test(group_commit, concurrent_appends_share_fsyncs_and_wait_for_them) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = &g_vfs;
  g_w = tu_open(g_dir, &cfg);
  tu_append_n(g_w, 1, SEED, 64); /* create the segment first */
  unsigned long long syncs0 = atomic_load(&g_syncs_started);
  run_threads();
  unsigned long long syncs = atomic_load(&g_syncs_started) - syncs0;
  cr_assert_eq(atomic_load(&g_errors), 0);
  cr_assert_eq(atomic_load(&g_early), 0,
               "%d appends returned before a sync covered them",
               atomic_load(&g_early));
  cr_assert_eq(walrus_last_index(g_w), 1u + THREADS * PER_THREAD);
  /* Every writer waits behind a 3 ms sync, so groups form: far fewer
   * fsyncs than appends. */
  cr_assert_leq(syncs, (unsigned long long)(THREADS * PER_THREAD / 2),
                "%llu fsyncs for %d durable appends: no group commit",
                syncs, THREADS * PER_THREAD);
  cr_log_info("group commit: %d appends from %d threads, %llu fsyncs",
              THREADS * PER_THREAD, THREADS, syncs);
  /* walrus_stats agrees with what the VFS saw. */
  walrus_stats_t st;
  cr_assert_eq(walrus_stats(g_w, &st), WALRUS_OK);
  cr_assert_eq(st.appends, 1u + THREADS * PER_THREAD);
  cr_assert_eq(st.entries, 1u + THREADS * PER_THREAD);
  cr_assert_eq(st.fsyncs, atomic_load(&g_syncs_started));
  cr_assert_gt(st.entries_per_fsync, 1.5);
  cr_assert_gt(st.bytes, st.entries * 128);
  /* Every sync slept 3 ms; the histogram is exact to 1/8. */
  cr_assert_geq(st.fsync_p50_ns, 3000000u * 7 / 8, "p50 %llu ns",
                (unsigned long long)st.fsync_p50_ns);
  cr_assert_geq(st.fsync_p99_ns, st.fsync_p50_ns);
  cr_assert_geq(st.fsync_max_ns, st.fsync_p999_ns);
  cr_assert_gt(st.seconds, 0.0);
  cr_assert_eq(walrus_stats(NULL, &st), WALRUS_EINVAL);
  cr_assert_eq(walrus_stats(g_w, NULL), WALRUS_EINVAL);
  /* Each thread's entries are all there, in its order, after reopening. */
  cr_assert_eq(walrus_close(g_w), WALRUS_OK);
  g_w = tu_open(g_dir, NULL);
  int next[THREADS] = {0};
  for (uint64_t i = 2; i <= walrus_last_index(g_w); i++) {
    walrus_entry_t e;
    cr_assert_eq(walrus_get(g_w, i, &e), WALRUS_OK);
    cr_assert_lt(e.term, (uint64_t)THREADS);
    unsigned char want = (unsigned char)(e.term * 31 + (uint64_t)next[e.term]);
    cr_assert_eq(((const unsigned char *)e.data)[0], want,
                 "entry %llu out of its writer's order",
                 (unsigned long long)i);
    next[e.term]++;
    walrus_entry_free(&e);
  }
  for (int t = 0; t < THREADS; t++) cr_assert_eq(next[t], PER_THREAD);
  cr_assert_eq(walrus_close(g_w), WALRUS_OK);
}

Test(group_commit, one_writer_gets_one_fsync_per_append) {
  /* With no concurrency there is nothing to share: each durable append
   * costs exactly one fdatasync, never zero. */
  atomic_store(&g_sync_delay_us, 0);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = &g_vfs;
  g_w = tu_open(g_dir, &cfg);
  tu_append_n(g_w, 1, SEED, 64);
  unsigned long long s0 = atomic_load(&g_syncs_started);
  tu_append_n(g_w, 50, SEED, 64);
  cr_assert_eq(atomic_load(&g_syncs_started) - s0, 50u);
  cr_assert_eq(walrus_close(g_w), WALRUS_OK);
}

Test(group_commit, truncation_waits_for_a_sync_in_flight) {
  /* Appenders keep a leader syncing while another thread truncates and
   * resets: the layout never changes under a running sync, every append
   * either lands or fails cleanly, and the log reopens consistent. */
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = &g_vfs;
  cfg.segment_bytes = 8192;
  atomic_store(&g_sync_delay_us, 500);
  g_w = tu_open(g_dir, &cfg);
  tu_append_n(g_w, 20, SEED, 64);
  pthread_t t[THREADS];
  atomic_store(&g_errors, 0);
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, appender, (void *)(uintptr_t)i);
  for (int k = 0; k < 20; k++) {
    uint64_t last = walrus_last_index(g_w), first = walrus_first_index(g_w);
    if (last > first + 10) {
      cr_assert_eq(walrus_truncate_back(g_w, last - 5), WALRUS_OK);
      cr_assert_eq(walrus_truncate_front(g_w, first + 2), WALRUS_OK);
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  cr_assert_eq(atomic_load(&g_errors), 0);
  uint64_t first = walrus_first_index(g_w), last = walrus_last_index(g_w);
  walrus_iter_t *it;
  walrus_entry_t e;
  uint64_t n = 0;
  cr_assert_eq(walrus_iter_open(g_w, 0, &it), WALRUS_OK);
  int rc;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) n++;
  cr_assert_eq(rc, WALRUS_DONE);
  walrus_iter_close(it);
  cr_assert_eq(n, last - first + 1);
  cr_assert_eq(walrus_close(g_w), WALRUS_OK);
  g_w = tu_open(g_dir, NULL);
  cr_assert_eq(walrus_first_index(g_w), first);
  cr_assert_eq(walrus_last_index(g_w), last);
  cr_assert_eq(walrus_close(g_w), WALRUS_OK);
}
