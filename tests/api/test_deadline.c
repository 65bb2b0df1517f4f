/*
 * test_deadline.c: walrus_append_deadline() gives up at its deadline and
 * says what became of the entry.
 *
 * A gate in the file system (a VFS over POSIX whose pwrite or fdatasync,
 * once armed, stops until the test opens it) holds a first append where
 * the second must wait: inside its pwrite, the first holds the writer
 * lock, so the second gives up with nothing written; inside its
 * fdatasync, the first leads a group commit, so the second writes its
 * entry and gives up waiting to share that sync: written, not durable,
 * made durable by walrus_sync().
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

#define SEED 0xDEADu
#define MAXLEN 100

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int arm_write, arm_sync; /* stop the next pwrite / fdatasync */
  int inside, open;
  walrus_vfs_t vfs;
} g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}};

/* Stop here while *armed, until the test opens the gate. */
static void gate(int *armed) {
  pthread_mutex_lock(&g.mu);
  if (*armed) {
    *armed = 0;
    g.inside = 1;
    pthread_cond_broadcast(&g.cv);
    while (!g.open) pthread_cond_wait(&g.cv, &g.mu);
  }
  pthread_mutex_unlock(&g.mu);
}

static int gate_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                       size_t n, uint64_t off) {
  gate(&g.arm_write);
  return walrus_vfs_posix()->pwrite(ctx, f, buf, n, off);
}

static int gate_sync(void *ctx, walrus_vfs_file_t *f) {
  gate(&g.arm_sync);
  return walrus_vfs_posix()->sync(ctx, f);
}

static void arm(int write) {
  pthread_mutex_lock(&g.mu);
  g.arm_write = write;
  g.arm_sync = !write;
  g.inside = 0;
  g.open = 0;
  pthread_mutex_unlock(&g.mu);
}

/* Wait (at most 10 s) for the gated call to be inside the gate. */
static int wait_inside(void) {
  uint64_t until = tu_now_ms() + 10000;
  pthread_mutex_lock(&g.mu);
  while (!g.inside && tu_now_ms() < until) {
    pthread_mutex_unlock(&g.mu);
    tu_sleep_ms(1);
    pthread_mutex_lock(&g.mu);
  }
  int in = g.inside;
  pthread_mutex_unlock(&g.mu);
  return in;
}

static void open_gate(void) {
  pthread_mutex_lock(&g.mu);
  g.open = 1;
  g.arm_write = g.arm_sync = 0;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
}

static walrus_t *open_log(void) {
  g.vfs = *walrus_vfs_posix();
  g.vfs.pwrite = gate_pwrite;
  g.vfs.sync = gate_sync;
  walrus_config_t c;
  walrus_config_default(&c);
  c.vfs = &g.vfs;
  c.prefill_segments = 0; /* the only pwrites are the appends' */
  return tu_open(tu_dir, &c);
}

/* A log holding entry 1, so that its tail exists (creating it syncs with
 * the writer lock held). */
static walrus_t *fresh_log(void) {
  walrus_t *w = open_log();
  tu_append_n(w, 1, SEED, MAXLEN);
  return w;
}

typedef struct first_s {
  walrus_t *w;
  int rc;
  uint64_t index;
} first_t;

static void *first_append(void *p) {
  first_t *a = p;
  walrus_entry_t e;
  unsigned char buf[MAXLEN];
  tu_entry_set(&e, 2, SEED, MAXLEN, buf);
  a->rc = walrus_append(a->w, &e, &a->index);
  return NULL;
}

TestSuite(deadline, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

/* Nothing in the way: it is an ordinary durable append, even with 0 ms. */
Test(deadline, nothing_in_the_way) {
  walrus_t *w = open_log();
  walrus_entry_t e;
  unsigned char buf[MAXLEN];
  for (uint64_t i = 1; i <= 3; i++) {
    uint64_t index = 0;
    tu_entry_set(&e, i, SEED, MAXLEN, buf);
    TU_OK(w, walrus_append_deadline(w, &e, i == 1 ? 0 : 1000, &index));
    cr_assert_eq(index, i);
    cr_assert_eq(walrus_durable_index(w), i);
  }
  tu_check_range(w, 1, 3, SEED, MAXLEN);
  cr_assert_eq(walrus_append_deadline(NULL, &e, 10, NULL), WALRUS_EINVAL);
  cr_assert_eq(walrus_append_deadline(w, NULL, 10, NULL), WALRUS_EINVAL);
  TU_OK(w, walrus_close(w));
}

/* Another append holds the writer lock past the deadline: nothing is
 * written, index 0, and the log is unchanged. */
Test(deadline, lock_busy_writes_nothing) {
  walrus_t *w = fresh_log();
  first_t a = {w, -1, 0};
  arm(1);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, first_append, &a), 0);
  int in = wait_inside();
  walrus_entry_t e;
  unsigned char buf[MAXLEN];
  tu_entry_set(&e, 3, SEED, MAXLEN, buf);
  uint64_t index = 99, t0 = tu_now_ms();
  int rc = in ? walrus_append_deadline(w, &e, 100, &index) : -1;
  uint64_t took = tu_now_ms() - t0;
  char msg[512];
  snprintf(msg, sizeof msg, "%s", walrus_errmsg(w));
  open_gate();
  pthread_join(th, NULL);
  cr_assert(in, "the first append never reached its pwrite");
  cr_assert_eq(rc, WALRUS_ETIMEDOUT, "%s", walrus_errname(rc));
  cr_assert_eq(index, 0u);
  cr_assert(took >= 90 && took < 5000, "gave up after %llu ms",
            (unsigned long long)took);
  cr_assert(strstr(msg, "no entry written") != NULL, "message: %s", msg);
  cr_assert_eq(a.rc, WALRUS_OK);
  cr_assert_eq(a.index, 2u);
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
  w = open_log();
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
}

/* Another append leads a group commit whose fdatasync runs past the
 * deadline: the entry is written with its index but neither durable nor
 * visible; walrus_sync() makes it both, and it survives a reopen. */
Test(deadline, group_commit_too_slow_leaves_it_written) {
  walrus_t *w = fresh_log();
  first_t a = {w, -1, 0};
  arm(0);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, first_append, &a), 0);
  int in = wait_inside();
  walrus_entry_t e;
  unsigned char buf[MAXLEN];
  tu_entry_set(&e, 3, SEED, MAXLEN, buf);
  uint64_t index = 99;
  int rc = in ? walrus_append_deadline(w, &e, 100, &index) : -1;
  char msg[512];
  snprintf(msg, sizeof msg, "%s", walrus_errmsg(w));
  uint64_t durable_then = walrus_durable_index(w);
  walrus_entry_t got;
  memset(&got, 0, sizeof got);
  int get_then = walrus_get(w, 3, &got);
  open_gate();
  pthread_join(th, NULL);
  cr_assert(in, "the first append never reached its fdatasync");
  cr_assert_eq(rc, WALRUS_ETIMEDOUT, "%s", walrus_errname(rc));
  cr_assert_eq(index, 3u, "the entry's index");
  cr_assert(strstr(msg, "not yet durable") != NULL, "message: %s", msg);
  cr_assert_eq(durable_then, 1u);
  cr_assert_neq(get_then, WALRUS_OK, "a reader saw an entry not durable");
  cr_assert_eq(a.rc, WALRUS_OK);
  cr_assert_eq(a.index, 2u);
  cr_assert_eq(walrus_durable_index(w), 2u, "entry 3 came after the capture");
  TU_OK(w, walrus_sync(w));
  cr_assert_eq(walrus_durable_index(w), 3u);
  tu_check_range(w, 1, 3, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  w = open_log();
  cr_assert_eq(walrus_last_index(w), 3u);
  tu_check_range(w, 1, 3, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
}
