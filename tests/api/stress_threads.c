/*
 * stress_threads.c: many threads on one handle.
 *
 * Writer threads append single entries and batches (each entry's payload
 * names its writer and sequence number and carries its own checksum),
 * reader threads call walrus_get on random indexes and iterate from random
 * places, a truncate_front thread moves the first index forward, and a
 * sync thread calls walrus_sync, all at once, over small segments so that
 * rotation and the segment cache are busy.  In the last round the single
 * appends are walrus_append_deadline calls with deadlines short enough
 * that some give up: written and not yet durable (the entry stays, and
 * the writer goes on), or not written (the writer tries again).  At the end every writer's
 * every acknowledged entry must be in the log exactly once, in its own
 * order, and the reopened log must match.
 *
 * A plain program (exit 0: pass) so that it also runs under
 * ThreadSanitizer, where the test framework cannot start.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walrus.h"

#define WRITERS 4
#define READERS 3
#define PER_WRITER 600

static walrus_t *g_w;
static atomic_int g_done;
static uint64_t g_last[WRITERS]; /* index of each writer's last entry */
static atomic_int g_failed;
static int g_deadline; /* single appends have a deadline of 0 or 1 ms */
static atomic_int g_gave_up[2]; /* appends that gave up at their deadline:
                                   [0] not written, [1] written */
static pthread_mutex_t g_fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, int rc) {
  pthread_mutex_lock(&g_fail_mu);
  if (!g_failed)
    fprintf(stderr, "stress_threads: %s: %s (%s)\n", what, walrus_errname(rc),
            walrus_errmsg(g_w));
  g_failed = 1;
  pthread_mutex_unlock(&g_fail_mu);
}

static uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/* Payload: writer (4 bytes), seq (4 bytes), filler, then a hash of it. */
static size_t make_payload(uint32_t writer, uint32_t seq, unsigned char *p) {
  size_t len = 12 + mix(writer * 100003u + seq) % 180;
  memcpy(p, &writer, 4);
  memcpy(p + 4, &seq, 4);
  uint32_t h = mix(writer ^ (seq << 8));
  for (size_t i = 8; i < len - 4; i++) p[i] = (unsigned char)(h >> (i % 24));
  uint32_t sum = 0;
  for (size_t i = 0; i < len - 4; i++) sum = mix(sum + p[i]);
  memcpy(p + len - 4, &sum, 4);
  return len;
}

/* Check an entry's payload against itself; returns the writer, or -1. */
static int check_payload(const walrus_entry_t *e, uint32_t *seq) {
  unsigned char want[256];
  uint32_t writer;
  if (e->len < 12) return -1;
  memcpy(&writer, e->data, 4);
  memcpy(seq, (const unsigned char *)e->data + 4, 4);
  if (writer >= WRITERS) return -1;
  size_t len = make_payload(writer, *seq, want);
  if (len != e->len || memcmp(want, e->data, len) != 0) return -1;
  if (e->term != writer) return -1;
  return (int)writer;
}

static void *writer_main(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  unsigned char bufs[8][256];
  walrus_entry_t es[8];
  uint32_t seq = 0;
  while (seq < PER_WRITER) {
    size_t n = (seq % 5 == 0) ? 1 + seq % 8 : 1;
    if (seq + n > PER_WRITER) n = PER_WRITER - seq;
    for (size_t i = 0; i < n; i++) {
      memset(&es[i], 0, sizeof es[i]);
      es[i].data = bufs[i];
      es[i].len = make_payload(id, seq + (uint32_t)i, bufs[i]);
      es[i].term = id;
    }
    uint64_t first = 0;
    int rc;
    if (n == 1 && g_deadline) {
      rc = walrus_append_deadline(g_w, &es[0], seq % 2, &first);
      if (rc == WALRUS_ETIMEDOUT) g_gave_up[first != 0]++;
      if (rc == WALRUS_ETIMEDOUT && first == 0) continue; /* not written */
      if (rc == WALRUS_ETIMEDOUT) rc = WALRUS_OK; /* written, not durable */
    } else {
      rc = n == 1 ? walrus_append(g_w, &es[0], &first)
                  : walrus_write_batch(g_w, es, n, &first);
    }
    if (rc != WALRUS_OK) {
      fail("append", rc);
      return NULL;
    }
    seq += (uint32_t)n;
    g_last[id] = first + n - 1;
  }
  return NULL;
}

static void *reader_main(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  while (!g_done && !g_failed) {
    uint64_t first = walrus_first_index(g_w), last = walrus_last_index(g_w);
    if (last == 0) continue;
    uint64_t i = first + (uint64_t)rand_r(&seed) % (last - first + 1);
    walrus_entry_t e;
    uint32_t seq;
    int rc = walrus_get(g_w, i, &e);
    if (rc == WALRUS_EINDEX) continue; /* truncate_front got there first */
    if (rc != WALRUS_OK) {
      fail("get", rc);
      return NULL;
    }
    if (e.index != i || check_payload(&e, &seq) < 0) {
      fail("get returned wrong bytes", 0);
      walrus_entry_free(&e);
      return NULL;
    }
    walrus_entry_free(&e);
    walrus_iter_t *it;
    rc = walrus_iter_open(g_w, i, &it);
    if (rc == WALRUS_EINDEX) continue;
    if (rc != WALRUS_OK) {
      fail("iter_open", rc);
      return NULL;
    }
    for (int k = 0; k < 50; k++) {
      rc = walrus_iter_next(it, &e);
      if (rc == WALRUS_DONE || rc == WALRUS_EINDEX) break;
      if (rc != WALRUS_OK || e.index != i + (uint64_t)k ||
          check_payload(&e, &seq) < 0) {
        fail("iter_next", rc);
        break;
      }
    }
    walrus_iter_close(it);
  }
  return NULL;
}

static void *front_main(void *arg) {
  (void)arg;
  while (!g_done && !g_failed) {
    uint64_t first = walrus_first_index(g_w), last = walrus_last_index(g_w);
    if (last > first + 400) {
      int rc = walrus_truncate_front(g_w, first + 50);
      if (rc != WALRUS_OK && rc != WALRUS_EINDEX) fail("truncate_front", rc);
    }
    int rc = walrus_sync(g_w);
    if (rc != WALRUS_OK) fail("sync", rc);
    usleep(2000);
  }
  return NULL;
}

/* Every writer's entries appear in its own order, each at most once, and
 * exactly the ones at or after the first index; check over an iterator. */
static int verify(walrus_t *w, uint64_t *count) {
  uint32_t next_seq[WRITERS] = {0}, seen_first[WRITERS];
  int started[WRITERS] = {0};
  walrus_iter_t *it;
  walrus_entry_t e;
  uint64_t n = 0, expect = walrus_first_index(w);
  int rc = walrus_iter_open(w, 0, &it);
  if (rc != WALRUS_OK) return fail("verify iter_open", rc), 1;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    uint32_t seq;
    int wr = check_payload(&e, &seq);
    if (wr < 0 || e.index != expect) return fail("verify bytes", 0), 1;
    if (!started[wr]) {
      started[wr] = 1;
      seen_first[wr] = seq;
      next_seq[wr] = seq;
    }
    if (seq != next_seq[wr]) return fail("verify order", 0), 1;
    next_seq[wr]++;
    expect++;
    n++;
  }
  walrus_iter_close(it);
  if (rc != WALRUS_DONE) return fail("verify iter_next", rc), 1;
  /* A writer whose last entry is still in the log must show every entry
   * from where the log starts up to its last one. */
  for (int i = 0; i < WRITERS; i++) {
    int present = g_last[i] >= walrus_first_index(w);
    if (present != started[i] ||
        (present && (next_seq[i] != PER_WRITER || seen_first[i] > PER_WRITER)))
      return fail("verify: a writer's tail is missing", 0), 1;
  }
  *count = n;
  return 0;
}

/* One round under one sync policy; returns 0 when everything checked. */
static int run(walrus_sync_t sync, int mapped, const char *name) {
  char dir[] = "/tmp/walrus-stress-XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 16384;
  cfg.cached_segments = 2;
  cfg.sync = sync;
  cfg.mapped_writes = mapped;
  g_done = 0;
  memset(g_last, 0, sizeof g_last);
  int rc = walrus_open(dir, &cfg, &g_w);
  if (rc != WALRUS_OK) return fail("open", rc), 1;
  pthread_t wt[WRITERS], rt[READERS], ft;
  for (int i = 0; i < WRITERS; i++)
    pthread_create(&wt[i], NULL, writer_main, (void *)(uintptr_t)i);
  for (int i = 0; i < READERS; i++)
    pthread_create(&rt[i], NULL, reader_main, (void *)(uintptr_t)(i + 7));
  pthread_create(&ft, NULL, front_main, NULL);
  for (int i = 0; i < WRITERS; i++) pthread_join(wt[i], NULL);
  g_done = 1;
  for (int i = 0; i < READERS; i++) pthread_join(rt[i], NULL);
  pthread_join(ft, NULL);
  uint64_t n1 = 0, n2 = 0;
  if (!g_failed) verify(g_w, &n1);
  rc = walrus_close(g_w);
  if (rc != WALRUS_OK) fail("close", rc);
  g_w = NULL;
  if (!g_failed) {
    rc = walrus_open(dir, &cfg, &g_w);
    if (rc != WALRUS_OK) fail("reopen", rc);
    if (!g_failed) verify(g_w, &n2);
    if (!g_failed && n1 != n2) fail("reopen shows another log", 0);
    walrus_close(g_w);
    g_w = NULL;
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "stress_threads: cannot remove %s\n", dir);
  if (g_failed) return 1;
  printf("stress_threads %s: %d writers, %d readers: %llu entries verified"
         "\n",
         name, WRITERS, READERS, (unsigned long long)n1);
  if (g_deadline)
    printf("stress_threads %s: appends that gave up at their deadline: "
           "%d not written, %d written\n",
           name, (int)g_gave_up[0], (int)g_gave_up[1]);
  return 0;
}

int main(void) {
  /* SYNC_NONE exercises publishing on every write (with mapped writes:
   * stores into the mapped tail beside readers' preads); SYNC_ALWAYS the
   * group commit, where writers write while a leader syncs. */
  int failed = run(WALRUS_SYNC_NONE, 0, "sync=none");
  failed += run(WALRUS_SYNC_NONE, 1, "sync=none mapped_writes");
  failed += run(WALRUS_SYNC_ALWAYS, 0, "sync=always");
  g_deadline = 1;
  failed += run(WALRUS_SYNC_ALWAYS, 0, "sync=always deadlines");
  printf("%d passed, %d failed\n", 4 - failed, failed);
  return failed ? 1 : 0;
}
