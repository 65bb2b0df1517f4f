/*
 * stress_readers.c: readers through mappings beside a writer that appends,
 * rotates, truncates the front and the back.
 *
 * One writer appends entries whose payload is a function of their index and
 * of a generation that truncate_back bumps (so a stale byte is caught), over
 * small segments with cached_segments 2, and now and then moves the first
 * index forward or cuts the last few entries.  Reader threads take views
 * (holding some across later calls), zero-copy gets, ranges, batched
 * reads at scattered indexes, and plain and follow iterators, and check
 * every byte they see against the payload that entry had when they read
 * it.  Two follower threads share one read-only handle: they wait for the
 * next durable entry (sleeping on DURABLE's wake count), read it and check
 * it, and reopen the handle when the writer's truncate_back makes it
 * stale.  It runs three times: SYNC_NONE, SYNC_ALWAYS, and (in a build with
 * zstd) SYNC_NONE with compression and batches of 8, so that reads go
 * through compressed units, the handle's cache of the last one a get
 * decompressed, and truncate_back inside them.  A plain program (exit 0:
 * pass) so that it runs under ThreadSanitizer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walrus.h"

#define READERS 3
#define FOLLOWERS 2
#define ENTRIES 6000
#define LEN 96

static walrus_t *g_w;
static walrus_t *g_r;                  /* the followers' read-only handle */
static walrus_config_t g_rcfg;         /* its configuration */
static char g_dir[4096];               /* the log */
static pthread_rwlock_t g_rlock = PTHREAD_RWLOCK_INITIALIZER; /* g_r's use */
static unsigned g_rgen;                /* bumped by each reopen of g_r */
static atomic_long g_followed;         /* entries the followers checked */
static atomic_int g_done;
static atomic_int g_failed;
static int g_batch = 1; /* entries per write */

/* Report the first failure: what, the code, and the message of handle h
 * (the caller's, so that no other thread is writing it). */
static void fail_on(walrus_t *h, const char *what, int rc) {
  if (atomic_exchange(&g_failed, 1) == 0)
    fprintf(stderr, "stress_readers: %s: %s (%s)\n", what, walrus_errname(rc),
            h != NULL ? walrus_errmsg(h) : "no handle");
}

static void fail(const char *what, int rc) { fail_on(g_w, what, rc); }

/* The payload of entry index: the index in its first 8 bytes, then bytes
 * that depend on it and on term (the writer's generation). */
static void payload(unsigned char *p, uint64_t index, uint64_t term) {
  memcpy(p, &index, 8);
  for (int i = 8; i < LEN; i++)
    p[i] = (unsigned char)(index * 131 + term * 7 + (uint64_t)i);
}

/* An entry read back must carry the payload its index and term say. */
static int good(const walrus_entry_t *e) {
  unsigned char want[LEN];
  if (e->len != LEN) return 0;
  payload(want, e->index, e->term);
  return memcmp(e->data, want, LEN) == 0;
}

static void *writer(void *arg) {
  (void)arg;
  unsigned char buf[LEN];
  uint64_t term = 1;
  static unsigned char bufs[8][LEN];
  int writes = g_batch > 1 ? ENTRIES / 2 : ENTRIES;
  for (int i = 0; i < writes && !atomic_load(&g_failed); i++) {
    walrus_entry_t e[8];
    uint64_t next = walrus_next_index(g_w);
    for (int k = 0; k < g_batch; k++) {
      memset(&e[k], 0, sizeof e[k]);
      e[k].term = term;
      payload(g_batch > 1 ? bufs[k] : buf, next + (uint64_t)k, term);
      e[k].data = g_batch > 1 ? bufs[k] : buf;
      e[k].len = LEN;
    }
    int rc = g_batch > 1 ? walrus_write_batch(g_w, e, (size_t)g_batch, NULL)
                         : walrus_append(g_w, &e[0], NULL);
    if (rc != WALRUS_OK) fail("append", rc);
    if (i % 997 == 996) {
      uint64_t last = walrus_last_index(g_w);
      rc = walrus_truncate_back(g_w, last - 5);
      if (rc != WALRUS_OK) fail("truncate_back", rc);
      term++; /* the indexes reused get other bytes */
    }
    if (i % 1500 == 1499) {
      uint64_t first = walrus_first_index(g_w);
      rc = walrus_truncate_front(g_w, first + 400);
      if (rc != WALRUS_OK) fail("truncate_front", rc);
    }
  }
  atomic_store(&g_done, 1);
  return NULL;
}

static uint64_t pick(unsigned *seed) {
  uint64_t first = walrus_first_index(g_w), last = walrus_last_index(g_w);
  if (last < first || last == 0) return 0;
  return first + (uint64_t)rand_r(seed) % (last - first + 1);
}

/* A read of an index that went meanwhile is fine; anything else is not. */
static int gone(int rc) { return rc == WALRUS_EINDEX || rc == WALRUS_ENOSEGMENT; }

static void *reader(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  walrus_view_t held[8];
  int nheld = 0;
  while (!atomic_load(&g_done) && !atomic_load(&g_failed)) {
    uint64_t i = pick(&seed);
    if (i == 0) continue;
    walrus_view_t v;
    int rc = walrus_get_view(g_w, i, &v);
    if (rc == WALRUS_OK) {
      if (!good(&v.entry)) fail("view bytes", WALRUS_ECORRUPT);
      if (nheld < 8) {
        held[nheld++] = v; /* keep it across later calls */
      } else {
        walrus_view_release(&v);
      }
    } else if (!gone(rc)) {
      fail("get_view", rc);
    }
    for (int k = 0; k < nheld; k++) /* held views keep their bytes */
      if (!good(&held[k].entry)) fail("held view bytes", WALRUS_ECORRUPT);
    if (nheld == 8 && rand_r(&seed) % 4 == 0) {
      for (int k = 0; k < nheld; k++) walrus_view_release(&held[k]);
      nheld = 0;
    }
    walrus_entry_t e;
    rc = walrus_get(g_w, i, &e);
    if (rc == WALRUS_OK) {
      if (!good(&e)) fail("get bytes", WALRUS_ECORRUPT);
      walrus_entry_free(&e);
    } else if (!gone(rc)) {
      fail("get", rc);
    }
    walrus_view_t r[16];
    size_t n = 0;
    rc = walrus_get_range_view(g_w, i, i + 40, 16, 1000, r, &n);
    if (rc == WALRUS_OK) {
      for (size_t k = 0; k < n; k++) {
        if (!good(&r[k].entry) || r[k].entry.index != i + k)
          fail("range bytes", WALRUS_ECORRUPT);
        walrus_view_release(&r[k]);
      }
    } else if (!gone(rc)) {
      fail("get_range_view", rc);
    }
    uint64_t mi[20]; /* scattered indexes for the batched reads */
    for (int k = 0; k < 20; k++) {
      mi[k] = pick(&seed);
      if (mi[k] == 0) mi[k] = i;
    }
    walrus_view_t mv[20];
    rc = walrus_get_many_view(g_w, mi, 20, mv);
    if (rc == WALRUS_OK) {
      for (int k = 0; k < 20; k++) {
        if (!good(&mv[k].entry) || mv[k].entry.index != mi[k])
          fail("get_many_view bytes", WALRUS_ECORRUPT);
        walrus_view_release(&mv[k]);
      }
    } else if (!gone(rc)) {
      fail("get_many_view", rc);
    }
    walrus_entry_t me[20];
    rc = walrus_get_many(g_w, mi, 20, me);
    if (rc == WALRUS_OK) {
      for (int k = 0; k < 20; k++) {
        if (!good(&me[k]) || me[k].index != mi[k])
          fail("get_many bytes", WALRUS_ECORRUPT);
        walrus_entry_free(&me[k]);
      }
    } else if (!gone(rc)) {
      fail("get_many", rc);
    }
    walrus_iter_t *it;
    int follow = rand_r(&seed) % 2;
    rc = follow ? walrus_iter_open_follow(g_w, i, 5, &it)
                : walrus_iter_open(g_w, i, &it);
    if (rc == WALRUS_OK) {
      for (int k = 0; k < 200; k++) {
        rc = walrus_iter_next(it, &e);
        if (rc != WALRUS_OK) break;
        if (!good(&e)) fail("iterator bytes", WALRUS_ECORRUPT);
      }
      if (rc != WALRUS_OK && rc != WALRUS_DONE && rc != WALRUS_ETIMEDOUT &&
          !gone(rc))
        fail("iter_next", rc);
      walrus_iter_close(it);
    } else if (!gone(rc)) {
      fail("iter_open", rc);
    }
  }
  for (int k = 0; k < nheld; k++) walrus_view_release(&held[k]);
  return NULL;
}

/* Reopen g_r after it went stale, unless another follower already did
 * since generation gen. */
static void reopen_follower(unsigned gen) {
  pthread_rwlock_wrlock(&g_rlock);
  if (g_rgen == gen) {
    int rc = g_r != NULL ? walrus_close(g_r) : WALRUS_OK;
    if (rc != WALRUS_OK) fail_on(NULL, "follower close", rc);
    g_r = NULL;
    /* ESTALE: the writer truncated back while the open read the files. */
    char msg[512];
    do rc = walrus_open_ex(g_dir, &g_rcfg, &g_r, msg, sizeof msg);
    while (rc == WALRUS_ESTALE);
    if (rc != WALRUS_OK && atomic_exchange(&g_failed, 1) == 0)
      fprintf(stderr, "stress_readers: follower reopen: %s (%s)\n",
              walrus_errname(rc), msg);
    g_rgen++;
  }
  pthread_rwlock_unlock(&g_rlock);
}

static void *follower(void *arg) {
  (void)arg;
  while (!atomic_load(&g_done) && !atomic_load(&g_failed)) {
    pthread_rwlock_rdlock(&g_rlock);
    unsigned gen = g_rgen;
    walrus_t *r = g_r;
    int rc = WALRUS_ESTALE;
    if (r != NULL) {
      uint64_t want = walrus_last_index(r) + 1;
      rc = walrus_wait(r, want, 20);
      if (rc == WALRUS_OK) {
        walrus_entry_t e;
        rc = walrus_get(r, want, &e);
        if (rc == WALRUS_OK) {
          if (!good(&e) || e.index != want)
            fail_on(r, "follower bytes", WALRUS_ECORRUPT);
          atomic_fetch_add(&g_followed, 1);
          walrus_entry_free(&e);
        }
      }
    }
    pthread_rwlock_unlock(&g_rlock);
    if (rc == WALRUS_ESTALE) {
      reopen_follower(gen);
    } else if (rc != WALRUS_OK && rc != WALRUS_ETIMEDOUT && !gone(rc)) {
      fail_on(r, "follower", rc);
    }
  }
  return NULL;
}

int main(void) {
  char tmpl[] = "/tmp/walrus-stress-readers-XXXXXX";
  char *dir = g_dir;
  if (mkdtemp(tmpl) == NULL) return 1;
  snprintf(g_dir, sizeof g_dir, "%s/log", tmpl);
  int zmodes = 0;
  for (int mode = 0; mode < 3 && !atomic_load(&g_failed); mode++) {
    walrus_config_t cfg;
    walrus_config_default(&cfg);
    cfg.sync = mode == 1 ? WALRUS_SYNC_ALWAYS : WALRUS_SYNC_NONE;
    cfg.segment_bytes = 8192;
    cfg.cached_segments = 2;
    cfg.zero_copy = 1;
    g_batch = 1;
    if (mode == 2) {
      cfg.compression = WALRUS_COMPRESSION_ZSTD;
      cfg.compress_min_bytes = 0;
      g_batch = 8;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    int rc = walrus_open(dir, &cfg, &g_w);
    if (rc == WALRUS_ENOTSUP && mode == 2) {
      printf("stress_readers: no zstd in this build: compressed run skipped\n");
      break;
    }
    if (rc != WALRUS_OK) {
      fprintf(stderr, "stress_readers: open: %s\n", walrus_errname(rc));
      return 1;
    }
    zmodes += mode == 2;
    g_rcfg = cfg;
    g_rcfg.read_only = 1;
    rc = walrus_open(dir, &g_rcfg, &g_r);
    if (rc != WALRUS_OK) {
      fprintf(stderr, "stress_readers: follower open: %s\n",
              walrus_errname(rc));
      return 1;
    }
    atomic_store(&g_done, 0);
    pthread_t wt, rt[READERS], ft[FOLLOWERS];
    pthread_create(&wt, NULL, writer, NULL);
    for (int i = 0; i < READERS; i++)
      pthread_create(&rt[i], NULL, reader, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < FOLLOWERS; i++)
      pthread_create(&ft[i], NULL, follower, NULL);
    pthread_join(wt, NULL);
    for (int i = 0; i < READERS; i++) pthread_join(rt[i], NULL);
    for (int i = 0; i < FOLLOWERS; i++) pthread_join(ft[i], NULL);
    if (mode == 2) {
      /* Stored compressed: fewer record bytes than plain records (a
       * 40-byte header and 96 bytes each) would take. */
      walrus_stats_t st;
      rc = walrus_stats(g_w, &st);
      if (rc != WALRUS_OK) fail("stats", rc);
      if (rc == WALRUS_OK && st.bytes >= st.entries * (40 + LEN)) {
        fprintf(stderr,
                "stress_readers: %llu entries took %llu bytes: not "
                "compressed\n",
                (unsigned long long)st.entries, (unsigned long long)st.bytes);
        atomic_store(&g_failed, 1);
      }
    }
    if (g_r != NULL && (rc = walrus_close(g_r)) != WALRUS_OK)
      fail_on(NULL, "follower close", rc);
    g_r = NULL;
    rc = walrus_close(g_w);
    if (rc != WALRUS_OK) fail("close", rc);
  }
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
  if (system(cmd) != 0) return 1;
  if (atomic_load(&g_failed)) return 1;
  if (atomic_load(&g_followed) == 0) {
    fprintf(stderr, "stress_readers: the followers saw no entry\n");
    return 1;
  }
  printf("stress_readers: passed (%d run%s with compression); the followers "
         "checked %ld entries and reopened %u times\n",
         zmodes, zmodes == 1 ? "" : "s", atomic_load(&g_followed), g_rgen);
  return 0;
}
