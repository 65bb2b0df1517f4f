/*
 * test_following.c: how far the log is durable, and following it:
 * walrus_durable_index(), walrus_wait(), follow iterators, and a read-only
 * handle following a writer in another process through walrus_refresh(),
 * woken by the writer's syncs, and a read-only open that races the
 * writer's truncate_back.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

#define SEED 0xF011u
#define MAXLEN 200

TestSuite(following, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

static walrus_config_t cfg_sync(walrus_sync_t sync) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = sync;
  cfg.segment_bytes = 4096;
  return cfg;
}

Test(following, wait_under_sync_always) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_wait(w, 0, 0), WALRUS_EINVAL);
  tu_append_n(w, 10, SEED, MAXLEN);
  cr_assert_eq(walrus_durable_index(w), 10u);
  cr_assert_eq(walrus_wait(w, 10, 0), WALRUS_OK);
  int64_t t0 = tu_now_ms();
  cr_assert_eq(walrus_wait(w, 11, 50), WALRUS_ETIMEDOUT);
  cr_assert_geq(tu_now_ms() - t0, 45);
  TU_OK(w, walrus_close(w));
}

/* Under SYNC_NONE an append is visible at once but durable only after a
 * sync: wait, durable_index and a follow iterator go by durability. */
Test(following, sync_none_durable_only_after_sync) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_NONE);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 5, SEED, MAXLEN);
  TU_OK(w, walrus_sync(w));
  tu_append_n(w, 5, SEED, MAXLEN); /* 6..10, not synced */
  cr_assert_eq(walrus_last_index(w), 10u);
  cr_assert_eq(walrus_durable_index(w), 5u);
  cr_assert_eq(walrus_wait(w, 10, 0), WALRUS_ETIMEDOUT);
  walrus_iter_t *it;
  walrus_entry_t e;
  TU_OK(w, walrus_iter_open_follow(w, 0, 20, &it));
  for (uint64_t i = 1; i <= 5; i++) {
    TU_OK(w, walrus_iter_next(it, &e));
    cr_assert_eq(e.index, i);
  }
  cr_assert_eq(walrus_iter_next(it, &e), WALRUS_ETIMEDOUT);
  TU_OK(w, walrus_sync(w));
  cr_assert_eq(walrus_durable_index(w), 10u);
  cr_assert_eq(walrus_wait(w, 10, 0), WALRUS_OK);
  TU_OK(w, walrus_iter_next(it, &e));
  cr_assert_eq(e.index, 6u);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

typedef struct appender_s {
  walrus_t *w;   /* log */
  uint64_t n;    /* entries to append */
} appender_t;

static void *appender(void *arg) {
  appender_t *a = arg;
  unsigned char buf[MAXLEN];
  for (uint64_t i = 1; i <= a->n; i++) {
    walrus_entry_t e;
    tu_entry_set(&e, i, SEED, MAXLEN, buf);
    if (walrus_append(a->w, &e, NULL) != WALRUS_OK) abort();
    if (i % 50 == 0) tu_sleep_ms(1);
  }
  return NULL;
}

/* A follow iterator on another thread reads every entry as it is made
 * durable, across rotations, then times out instead of ending. */
Test(following, follow_iterator_in_process) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  appender_t a = {w, 600};
  pthread_t t;
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open_follow(w, 0, 5000, &it));
  cr_assert_eq(pthread_create(&t, NULL, appender, &a), 0);
  unsigned char want[MAXLEN];
  for (uint64_t i = 1; i <= a.n; i++) {
    walrus_entry_t e, x;
    TU_OK(w, walrus_iter_next(it, &e));
    tu_entry_set(&x, i, SEED, MAXLEN, want);
    cr_assert_eq(e.index, i);
    cr_assert_eq(e.len, x.len);
    cr_assert(e.len == 0 || memcmp(e.data, x.data, e.len) == 0, "entry %llu",
              (unsigned long long)i);
  }
  pthread_join(t, NULL);
  walrus_iter_close(it);
  TU_OK(w, walrus_iter_open_follow(w, a.n + 1, 20, &it));
  walrus_entry_t e;
  cr_assert_eq(walrus_iter_next(it, &e), WALRUS_ETIMEDOUT);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

/* A waiter blocked without a limit is woken by the append it waits for. */
Test(following, wait_forever_is_woken) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  appender_t a = {w, 100};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, appender, &a), 0);
  TU_OK(w, walrus_wait(w, 100, WALRUS_WAIT_FOREVER));
  cr_assert_geq(walrus_durable_index(w), 100u);
  pthread_join(t, NULL);
  TU_OK(w, walrus_close(w));
}

/* The child: open tu_dir, append n entries in batches of 7, exit. */
static void child_writer(uint64_t n) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = NULL;
  if (walrus_open(tu_dir, &cfg, &w) != WALRUS_OK) _exit(2);
  unsigned char bufs[7][MAXLEN];
  walrus_entry_t e[7];
  for (uint64_t i = 1; i <= n; i += 7) {
    size_t k = 0;
    for (; k < 7 && i + k <= n; k++) tu_entry_set(&e[k], i + k, SEED, MAXLEN, bufs[k]);
    if (walrus_write_batch(w, e, k, NULL) != WALRUS_OK) _exit(3);
    usleep(200);
  }
  _exit(walrus_close(w) == WALRUS_OK ? 0 : 4);
}

static void follow_other_process(int zero_copy) {
  const uint64_t n = 1500;
  walrus_t *w = tu_open_default(); /* make the log, then let go of it */
  TU_OK(w, walrus_close(w));
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) child_writer(n);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  cfg.zero_copy = zero_copy;
  walrus_t *r = tu_open(tu_dir, &cfg);
  walrus_iter_t *it;
  TU_OK(r, walrus_iter_open_follow(r, 0, 10000, &it));
  unsigned char want[MAXLEN];
  for (uint64_t i = 1; i <= n; i++) {
    walrus_entry_t e, x;
    int rc = walrus_iter_next(it, &e);
    if (rc != WALRUS_OK) kill(pid, SIGKILL);
    cr_assert_eq(rc, WALRUS_OK, "entry %llu: %s %s", (unsigned long long)i,
                 walrus_errname(rc), walrus_errmsg(r));
    tu_entry_set(&x, i, SEED, MAXLEN, want);
    cr_assert_eq(e.index, i);
    cr_assert_eq(e.len, x.len);
    cr_assert(e.len == 0 || memcmp(e.data, x.data, e.len) == 0);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  walrus_entry_t e;
  cr_assert_eq(walrus_iter_next(it, &e), WALRUS_ETIMEDOUT);
  walrus_iter_close(it);
  TU_OK(r, walrus_close(r));
}

Test(following, read_only_follows_another_process_pread) {
  follow_other_process(0);
}

Test(following, read_only_follows_another_process_mapped) {
  follow_other_process(1);
}

/* refresh brings in new entries, moves the first index after the writer's
 * truncate_front, and reports ESTALE after a truncate_back or reset. */
Test(following, refresh_truncation_and_stale) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  walrus_t *r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 100u);
  tu_append_n(w, 50, SEED, MAXLEN); /* indexes 101..150, same payloads */
  cr_assert_eq(walrus_last_index(r), 100u, "not before a refresh");
  TU_OK(r, walrus_refresh(r));
  cr_assert_eq(walrus_last_index(r), 150u);
  TU_OK(w, walrus_truncate_front(w, 120));
  TU_OK(r, walrus_refresh(r));
  cr_assert_geq(walrus_first_index(r), 120u);
  TU_OK(w, walrus_truncate_back(w, 130));
  cr_assert_eq(walrus_refresh(r), WALRUS_ESTALE);
  TU_OK(r, walrus_close(r));
  r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 130u);
  TU_OK(w, walrus_reset(w, 1000));
  cr_assert_eq(walrus_refresh(r), WALRUS_ESTALE);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* Under SYNC_NONE a follower sees nothing new until the writer syncs. */
Test(following, follower_sees_only_durable_entries) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_NONE);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 10, SEED, MAXLEN);
  TU_OK(w, walrus_sync(w));
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  walrus_t *r = tu_open(tu_dir, &rcfg);
  uint64_t seen = walrus_last_index(r);
  tu_append_n(w, 10, SEED, MAXLEN);
  TU_OK(r, walrus_refresh(r));
  cr_assert_eq(walrus_last_index(r), seen, "unsynced entries are not shown");
  cr_assert_eq(walrus_wait(r, 20, 20), WALRUS_ETIMEDOUT);
  TU_OK(w, walrus_sync(w));
  TU_OK(r, walrus_wait(r, 20, 2000));
  cr_assert_eq(walrus_last_index(r), 20u);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* A follower in another process sleeps on DURABLE's wake count, and the
 * writer's sync ends the sleep.  Its polls are set to grow to a minute, so
 * after 3 s of waiting its sleep runs from about 2 s to about 4 s: without
 * the wake, the entry appended at 3 s would be seen a second or more
 * late. */
Test(following, writer_sync_wakes_a_follower_in_another_process) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, MAXLEN);
  int up[2], back[2];
  cr_assert_eq(pipe(up), 0);
  cr_assert_eq(pipe(back), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    walrus_config_t rcfg = cfg;
    rcfg.read_only = 1;
    rcfg.follow_poll_ms = 60000;
    walrus_t *r = NULL;
    if (walrus_open(tu_dir, &rcfg, &r) != WALRUS_OK) _exit(2);
    if (write(up[1], "r", 1) != 1) _exit(3);
    int64_t reply[2];
    reply[0] = walrus_wait(r, 2, 20000);
    reply[1] = (int64_t)tu_now_ms();
    if (write(back[1], reply, sizeof reply) != sizeof reply) _exit(4);
    _exit(walrus_close(r) == WALRUS_OK ? 0 : 5);
  }
  char c;
  cr_assert_eq(read(up[0], &c, 1), 1);
  tu_sleep_ms(3000);
  int64_t appended = (int64_t)tu_now_ms();
  tu_append_n(w, 1, SEED, MAXLEN); /* entry 2, synced and published */
  int64_t reply[2];
  cr_assert_eq(read(back[0], reply, sizeof reply), (ssize_t)sizeof reply);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cr_assert_eq(reply[0], WALRUS_OK, "%s", walrus_errname((int)reply[0]));
  cr_assert_lt(reply[1] - appended, 500,
               "the follower saw entry 2 %lld ms after its sync",
               (long long)(reply[1] - appended));
  TU_OK(w, walrus_close(w));
}

/* A VFS for a read-only open that, the first time the open asks for a
 * segment's size (it has the file open by then), lets the writer cut the
 * log back and write other entries in its place. */
static walrus_vfs_t g_race_vfs;
static walrus_t *g_race_writer;
static int g_race_fired;

static int race_size(void *ctx, walrus_vfs_file_t *f, uint64_t *size) {
  if (g_race_writer != NULL && !g_race_fired) {
    g_race_fired = 1;
    if (walrus_truncate_back(g_race_writer, 20) != WALRUS_OK) return -EIO;
    tu_append_n(g_race_writer, 20, SEED + 1, MAXLEN); /* 21..40, new bytes */
  }
  return walrus_vfs_posix()->size(ctx, f, size);
}

/* Open tu_dir read-only through g_race_vfs with writer w armed to act
 * once during the open; returns the open's result, with *r and msg. */
static int race_open(walrus_config_t cfg, walrus_t *w, walrus_t **r,
                     char *msg, size_t len) {
  cfg.read_only = 1;
  cfg.vfs = &g_race_vfs;
  g_race_writer = w;
  g_race_fired = 0;
  *r = NULL;
  int rc = walrus_open_ex(tu_dir, &cfg, r, msg, len);
  g_race_writer = NULL;
  cr_assert(g_race_fired, "the writer did not act during the open");
  return rc;
}

/* A read-only open that read a segment the writer's truncate_back then
 * replaced must not go on as if its table were current: it reports
 * ESTALE, and the next open reads the new entries. */
Test(following, open_racing_truncate_back_is_stale) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  cfg.segment_bytes = 1 << 20; /* one segment: the one being cut */
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 30, SEED, MAXLEN);
  g_race_vfs = *walrus_vfs_posix();
  g_race_vfs.size = race_size;
  walrus_t *r;
  char msg[256] = "";
  int rc = race_open(cfg, w, &r, msg, sizeof msg);
  cr_assert_eq(rc, WALRUS_ESTALE, "open: %s (%s)", walrus_errname(rc), msg);
  cr_assert_null(r);
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 40u);
  tu_check_range(r, 1, 20, SEED, MAXLEN);
  tu_check_range(r, 21, 40, SEED + 1, MAXLEN);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* A VFS for a read-only open that, right after the open lists the
 * directory, lets the writer's truncate_front remove the first segments. */
static int race_list(void *ctx, walrus_vfs_dir_t *d, walrus_vfs_list_fn fn,
                     void *arg) {
  int rc = walrus_vfs_posix()->list_at(ctx, d, fn, arg);
  if (g_race_writer != NULL && !g_race_fired) {
    g_race_fired = 1;
    if (walrus_truncate_front(g_race_writer, 150) != WALRUS_OK) return -EIO;
  }
  return rc;
}

/* Segments listed by a read-only open and removed by truncate_front before
 * it opens them are below the first index: the open goes on without
 * them. */
Test(following, open_racing_truncate_front_skips_removed_segments) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS); /* 4 KiB segments */
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, MAXLEN);
  g_race_vfs = *walrus_vfs_posix();
  g_race_vfs.list_at = race_list;
  walrus_t *r;
  char msg[256] = "";
  int rc = race_open(cfg, w, &r, msg, sizeof msg);
  cr_assert_eq(rc, WALRUS_OK, "open: %s (%s)", walrus_errname(rc), msg);
  cr_assert_eq(walrus_first_index(r), 150u);
  cr_assert_eq(walrus_last_index(r), 200u);
  tu_check_range(r, 150, 200, SEED, MAXLEN);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* A follower opened while the writer has entries it has not synced shows
 * them (walrus.h: what an open finds counts), refreshes without ESTALE
 * while the writer's durable index is below them, and follows on once the
 * writer syncs. */
Test(following, follower_opened_beside_unsynced_entries) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_NONE);
  cfg.segment_bytes = 1 << 20; /* one segment: no seal syncs them */
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  TU_OK(w, walrus_sync(w));
  tu_append_n(w, 100, SEED, MAXLEN); /* 101..200, not synced */
  cr_assert_eq(walrus_durable_index(w), 100u);
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  walrus_t *r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 200u);
  int rc = walrus_refresh(r);
  cr_assert_eq(rc, WALRUS_OK, "refresh: %s", walrus_errmsg(r));
  cr_assert_eq(walrus_wait(r, 201, 20), WALRUS_ETIMEDOUT);
  tu_append_n(w, 10, SEED, MAXLEN); /* 201..210 */
  TU_OK(w, walrus_sync(w));
  TU_OK(r, walrus_wait(r, 210, 2000));
  cr_assert_eq(walrus_last_index(r), 210u);
  tu_check_range(r, 1, 210, SEED, MAXLEN);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* A writer's VFS that fails the rewrite of a borrowed segment once, so
 * that truncate_back stops after recording its intent in META. */
static int g_fail_rewrite;

static int fail_rewrite_open(void *ctx, walrus_vfs_dir_t *d, const char *name,
                             int flags, unsigned mode, walrus_vfs_file_t **f) {
  size_t n = strlen(name);
  if (g_fail_rewrite && n > 8 && strcmp(name + n - 8, ".seg.tmp") == 0) {
    g_fail_rewrite = 0;
    return -EIO;
  }
  return walrus_vfs_posix()->open_at(ctx, d, name, flags, mode, f);
}

/* A follower opened while a truncate_back is unfinished (its writer died
 * in it) shows the log up to the cut, and once a new writer has finished
 * the cut and appended other entries, its refresh reports ESTALE instead
 * of reading on from a segment the cut changed. */
Test(following, opened_during_unfinished_truncate_back_is_stale) {
  walrus_config_t cfg = cfg_sync(WALRUS_SYNC_ALWAYS);
  g_race_vfs = *walrus_vfs_posix();
  g_race_vfs.open_at = fail_rewrite_open;
  walrus_config_t wcfg = cfg;
  wcfg.vfs = &g_race_vfs;
  walrus_t *w = tu_open(tu_dir, &wcfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  walrus_config_t rcfg = cfg;
  rcfg.read_only = 1;
  walrus_t *r0 = tu_open(tu_dir, &rcfg); /* a reader: the cut rewrites */
  g_fail_rewrite = 1;
  cr_assert_neq(walrus_truncate_back(w, 90), WALRUS_OK);
  cr_assert_eq(g_fail_rewrite, 0, "the rewrite was not attempted");
  walrus_t *r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 90u);
  walrus_close(w); /* poisoned */
  TU_OK(r0, walrus_close(r0));
  w = tu_open(tu_dir, &cfg); /* finishes the cut */
  cr_assert_eq(walrus_last_index(w), 90u);
  tu_append_n(w, 20, SEED + 1, MAXLEN); /* 91..110, other bytes */
  int rc = walrus_refresh(r);
  cr_assert_eq(rc, WALRUS_ESTALE, "refresh: %s (%s)", walrus_errname(rc),
               walrus_errmsg(r));
  TU_OK(r, walrus_close(r));
  r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 110u);
  tu_check_range(r, 1, 90, SEED, MAXLEN);
  tu_check_range(r, 91, 110, SEED + 1, MAXLEN);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}
