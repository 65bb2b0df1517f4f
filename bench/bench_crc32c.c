/*
 * bench_crc32c.c: a standalone speed check of walrus__crc32c().
 *
 * This program owns nothing in the library; it only measures it.  It times
 * one pass over a 64 MiB buffer and a stream of 128-byte records (the size
 * of a typical log record, taken from a 64 KiB window that stays in cache)
 * and reports the median of five runs of each, measured with
 * CLOCK_MONOTONIC, for the implementation the library picked and for the
 * software fallback.  Records are timed both independent (each checksum
 * started from zero: throughput) and chained (each started from the last
 * one's result: latency).  Build it with, for example:
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Isrc src/crc32c.c bench/bench_crc32c.c \
 *       -o /tmp/bench_crc32c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"

#define LARGE_BYTES ((size_t)64 << 20)
#define RECORD_BYTES ((size_t)128)
#define RECORD_WINDOW ((size_t)64 << 10)
#define RECORDS_PER_RUN ((size_t)4 << 20)
#define RUNS 5

typedef uint32_t (*crc_fn)(uint32_t crc, const void *buf, size_t len);

/* Keeps the compiler from dropping the checksums that are measured. */
static volatile uint32_t sink;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *values, size_t n) {
  qsort(values, n, sizeof(values[0]), compare_doubles);
  return values[n / 2];
}

/* Returns the median time in seconds of one pass over len bytes. */
static double time_large(crc_fn fn, const unsigned char *buf, size_t len) {
  double times[RUNS];
  sink ^= fn(0, buf, len);
  for (int run = 0; run < RUNS; run++) {
    double start = now_seconds();
    sink ^= fn(0, buf, len);
    times[run] = now_seconds() - start;
  }
  return median(times, RUNS);
}

/*
 * Returns the median time in seconds of RECORDS_PER_RUN record checksums.
 * With chained set, each record's checksum starts from the previous one's,
 * so the calls cannot overlap and the time is the latency of one call;
 * otherwise each starts from zero, as records with their own checksums do,
 * and the CPU may overlap neighbouring calls.
 */
static double time_records(crc_fn fn, const unsigned char *buf, int chained) {
  double times[RUNS];
  size_t slots = RECORD_WINDOW / RECORD_BYTES;
  for (int run = -1; run < RUNS; run++) {
    uint32_t crc = 0;
    uint32_t acc = 0;
    double start = now_seconds();
    /* Two loops, so that no select keeps the independent calls chained. */
    if (chained) {
      for (size_t i = 0; i < RECORDS_PER_RUN; i++) {
        crc = fn(crc, buf + (i % slots) * RECORD_BYTES, RECORD_BYTES);
      }
      acc = crc;
    } else {
      for (size_t i = 0; i < RECORDS_PER_RUN; i++) {
        acc ^= fn(0, buf + (i % slots) * RECORD_BYTES, RECORD_BYTES);
      }
    }
    double elapsed = now_seconds() - start;
    sink ^= acc;
    if (run >= 0) {
      times[run] = elapsed;
    }
  }
  return median(times, RUNS);
}

static void report(const char *name, crc_fn fn, const unsigned char *buf) {
  double large = time_large(fn, buf, LARGE_BYTES);
  double records = time_records(fn, buf, 0);
  double chained = time_records(fn, buf, 1);
  printf("crc32c impl=%s large=%.1f GB/s small(128B)=%.1f Mrec/s "
         "(%.1f GB/s; chained %.1f Mrec/s, %.1f ns/rec)\n",
         name, (double)LARGE_BYTES / large / 1e9,
         (double)RECORDS_PER_RUN / records / 1e6,
         (double)(RECORDS_PER_RUN * RECORD_BYTES) / records / 1e9,
         (double)RECORDS_PER_RUN / chained / 1e6,
         chained / (double)RECORDS_PER_RUN * 1e9);
}

int main(void) {
  unsigned char *buf = malloc(LARGE_BYTES);
  if (buf == NULL) {
    fprintf(stderr, "bench_crc32c: out of memory\n");
    return 1;
  }
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < LARGE_BYTES; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)(x >> 32);
  }
  if (walrus__crc32c(0, buf, LARGE_BYTES) !=
      walrus__crc32c_sw(0, buf, LARGE_BYTES)) {
    fprintf(stderr, "bench_crc32c: implementations disagree\n");
    return 1;
  }
  report(walrus__crc32c_impl(), walrus__crc32c, buf);
  if (walrus__crc32c_hw()) {
    report("software", walrus__crc32c_sw, buf);
  }
  free(buf);
  return 0;
}
