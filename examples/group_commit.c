/*
 * group_commit.c: batching and group commit, as described for the Go
 * library walrus (github l00pss/walrus), measured.
 *
 * Under WALRUS_SYNC_ALWAYS every write call returns only once its entries
 * are fdatasync()ed.  The same N entries are written three ways:
 *
 *   1. N single walrus_append calls, one after another: one fsync each;
 *   2. one walrus_write_batch of N entries: one fsync for all of them;
 *   3. T threads appending N/T entries each at the same time: walrus
 *      covers the entries written while one fsync runs with the next one
 *      (group commit), so concurrent writers share fsyncs.  Expect about
 *      T/2 entries per fsync: the writers one fsync releases append again
 *      while the next fsync, covering the other half, is running.
 *   4. T transactions of N/T entries, each committed with walrus_tx_commit:
 *      one fsync per transaction;
 *   5. T such transactions committed together with walrus_tx_commit_many:
 *      each still all or nothing, one fsync for all of them.
 *
 * For each, walrus_stats gives the fsyncs issued and entries per fsync.
 *
 *   group_commit [DIR]   default: a fresh /tmp/walrus-group-XXXXXX, removed
 *                        at the end.  Keep DIR on the disk you care about.
 *
 * Exits 0 when every entry was written and accounted for, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walrus.h"

enum { N = 256, THREADS = 8, PAYLOAD = 100 };

static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "group_commit: %s: %s (%s)\n", what, walrus_strerror(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static walrus_t *w;
static walrus_stats_t before;
static double t0;
static char payload[PAYLOAD];
static pthread_barrier_t start;

static void phase_begin(void) {
  check(w, walrus_stats(w, &before), "stats");
  t0 = now();
}

static void phase_end(const char *what) {
  double secs = now() - t0;
  walrus_stats_t after;
  check(w, walrus_stats(w, &after), "stats");
  uint64_t entries = after.entries - before.entries;
  uint64_t fsyncs = after.fsyncs - before.fsyncs;
  if (entries != N) {
    fprintf(stderr, "group_commit: %s wrote %llu entries, not %d\n", what,
            (unsigned long long)entries, N);
    exit(1);
  }
  printf("  %-24s %7.3f s %9.0f entries/s %5llu fsyncs %6.1f entries/fsync\n",
         what, secs, (double)entries / secs, (unsigned long long)fsyncs,
         fsyncs ? (double)entries / (double)fsyncs : 0.0);
}

/* A writer thread: N / THREADS durable appends; *arg receives the code. */
static void *writer(void *arg) {
  int *result = arg, rc = pthread_barrier_wait(&start); /* start together */
  walrus_entry_t e = {.term = 1, .data = payload, .len = PAYLOAD};
  for (int i = 0; i < N / THREADS; i++)
    if ((rc = walrus_append(w, &e, NULL)) != WALRUS_OK) break;
  *result = rc;
  return NULL;
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-group-XXXXXX", msg[256] = "", what[64];
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  walrus_entry_t batch[N];

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  memset(payload, 'x', sizeof payload);
  int rc = walrus_open_ex(dir, NULL, &w, msg, sizeof msg); /* SYNC_ALWAYS */
  if (rc != WALRUS_OK) {
    fprintf(stderr, "group_commit: open %s: %s (%s)\n", dir,
            walrus_strerror(rc), msg);
    return 1;
  }
  printf("walrus %s group commit in %s: SYNC_ALWAYS, %d entries of %d "
         "bytes each way\n", walrus_version_string(), dir, N, PAYLOAD);
  walrus_entry_t e = {.term = 1, .data = payload, .len = PAYLOAD};
  uint64_t first;
  check(w, walrus_append(w, &e, &first), "append"); /* create the segment */

  phase_begin();
  for (int i = 0; i < N; i++) check(w, walrus_append(w, &e, NULL), "append");
  snprintf(what, sizeof what, "%d single appends", N);
  phase_end(what);

  phase_begin();
  for (int i = 0; i < N; i++) batch[i] = e;
  check(w, walrus_write_batch(w, batch, N, NULL), "write_batch");
  snprintf(what, sizeof what, "1 write_batch of %d", N);
  phase_end(what);

  pthread_t th[THREADS];
  int result[THREADS];
  if (pthread_barrier_init(&start, NULL, THREADS) != 0) {
    perror("pthread_barrier_init");
    return 1;
  }
  phase_begin();
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&th[i], NULL, writer, &result[i]) != 0) {
      perror("pthread_create");
      return 1;
    }
  for (int i = 0; i < THREADS; i++) {
    if (pthread_join(th[i], NULL) != 0) {
      perror("pthread_join");
      return 1;
    }
    check(w, result[i], "append (thread)");
  }
  snprintf(what, sizeof what, "%d threads x %d appends", THREADS,
           N / THREADS);
  phase_end(what);
  pthread_barrier_destroy(&start);

  walrus_txid_t ids[THREADS];
  uint64_t fsyncs[2];
  for (int way = 0; way < 2; way++) {
    for (int t = 0; t < THREADS; t++) {
      check(w, walrus_tx_begin(w, 0, &ids[t]), "tx_begin");
      for (int i = 0; i < N / THREADS; i++)
        check(w, walrus_tx_add(w, &ids[t], &e), "tx_add");
    }
    phase_begin();
    if (way == 0) {
      for (int t = 0; t < THREADS; t++)
        check(w, walrus_tx_commit(w, &ids[t], NULL, NULL), "tx_commit");
      snprintf(what, sizeof what, "%d tx_commit of %d", THREADS, N / THREADS);
    } else {
      check(w, walrus_tx_commit_many(w, ids, THREADS, NULL, NULL),
            "tx_commit_many");
      snprintf(what, sizeof what, "1 tx_commit_many of %d", THREADS);
    }
    fsyncs[way] = before.fsyncs;
    phase_end(what);
    walrus_stats_t now_stats;
    check(w, walrus_stats(w, &now_stats), "stats");
    fsyncs[way] = now_stats.fsyncs - fsyncs[way];
  }
  printf("  tx_commit_many saved %llu of %llu fsyncs, every transaction "
         "still all or nothing\n",
         (unsigned long long)(fsyncs[0] - fsyncs[1]),
         (unsigned long long)fsyncs[0]);

  walrus_stats_t s;
  check(w, walrus_stats(w, &s), "stats");
  printf("log holds %llu..%llu; fsync p50 %.2f ms, p99 %.2f ms\n",
         (unsigned long long)walrus_first_index(w),
         (unsigned long long)walrus_last_index(w),
         (double)s.fsync_p50_ns / 1e6, (double)s.fsync_p99_ns / 1e6);
  if (walrus_last_index(w) != first + 5 * N || fsyncs[1] != 1) {
    fprintf(stderr, "group_commit: the log does not hold every entry, or "
                    "tx_commit_many took more than one fsync\n");
    return 1;
  }
  check(w, walrus_close(w), "close");
  if (argc <= 1 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return 0;
}
