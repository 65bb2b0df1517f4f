/*
 * stats.c: walrus_stats(): what a handle has written and how its fsyncs
 * went.  Counters are C11 atomics updated with relaxed ordering wherever
 * the event happens (a group commit leader syncs without the writer lock),
 * and fsync latencies go into a log-linear histogram: 8 buckets for each
 * power of two of nanoseconds, so a percentile is exact to 1/8.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t walrus__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The bucket of a latency: the power of two, then the next three bits. */
static unsigned bucket_of(uint64_t ns) {
  if (ns < 8) return (unsigned)ns;
  unsigned p = 63u - (unsigned)__builtin_clzll(ns);
  return p * 8u + (unsigned)((ns >> (p - 3)) & 7u);
}

/* The largest latency a bucket holds. */
static uint64_t bucket_top(unsigned b) {
  if (b < 8) return b;
  unsigned p = b / 8u, sub = b % 8u;
  return ((8ull + sub + 1) << (p - 3)) - 1;
}

void walrus__stats_fsync(walrus_t *w, uint64_t ns) {
  walrus__stats_t *st = &w->stats;
  atomic_fetch_add_explicit(&st->fsyncs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->hist[bucket_of(ns)], 1,
                            memory_order_relaxed);
  unsigned long long max =
      atomic_load_explicit(&st->fsync_max_ns, memory_order_relaxed);
  while (ns > max && !atomic_compare_exchange_weak_explicit(
                         &st->fsync_max_ns, &max, ns, memory_order_relaxed,
                         memory_order_relaxed)) {
  }
}

void walrus__stats_write(walrus_t *w, uint64_t entries, uint64_t bytes) {
  walrus__stats_t *st = &w->stats;
  atomic_fetch_add_explicit(&st->appends, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->entries, entries, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->bytes, bytes, memory_order_relaxed);
}

int walrus_stats(walrus_t *w, walrus_stats_t *out) {
  if (w == NULL) return WALRUS_EINVAL;
  if (out == NULL) return walrus__fail(w, WALRUS_EINVAL, 0, "stats: out is NULL");
  walrus__stats_t *st = &w->stats;
  walrus_stats_t s;
  uint64_t hist[WALRUS__HIST_BUCKETS], total = 0;
  memset(&s, 0, sizeof s);
  s.appends = atomic_load_explicit(&st->appends, memory_order_relaxed);
  s.entries = atomic_load_explicit(&st->entries, memory_order_relaxed);
  s.bytes = atomic_load_explicit(&st->bytes, memory_order_relaxed);
  s.fsyncs = atomic_load_explicit(&st->fsyncs, memory_order_relaxed);
  s.fsync_max_ns =
      atomic_load_explicit(&st->fsync_max_ns, memory_order_relaxed);
  for (unsigned b = 0; b < WALRUS__HIST_BUCKETS; b++) {
    hist[b] = atomic_load_explicit(&st->hist[b], memory_order_relaxed);
    total += hist[b];
  }
  /* Percentiles: the top of the bucket the rank falls in. */
  const double q[3] = {0.50, 0.99, 0.999};
  uint64_t *dst[3] = {&s.fsync_p50_ns, &s.fsync_p99_ns, &s.fsync_p999_ns};
  for (int k = 0; k < 3 && total > 0; k++) {
    uint64_t rank = (uint64_t)((double)total * q[k]), seen = 0;
    if (rank >= total) rank = total - 1;
    for (unsigned b = 0; b < WALRUS__HIST_BUCKETS; b++) {
      seen += hist[b];
      if (seen > rank) {
        uint64_t top = bucket_top(b);
        *dst[k] = top < s.fsync_max_ns ? top : s.fsync_max_ns;
        break;
      }
    }
  }
  s.entries_per_fsync = s.fsyncs ? (double)s.entries / (double)s.fsyncs : 0;
  s.seconds = (double)(walrus__mono_ns() - st->opened_ns) / 1e9;
  s.bytes_per_second = s.seconds > 0 ? (double)s.bytes / s.seconds : 0;
  *out = s;
  return WALRUS_OK;
}
