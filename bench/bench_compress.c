/*
 * bench_compress.c: cfg.compression = WALRUS_COMPRESSION_ZSTD beside no
 * compression, and beside RocksDB's WAL with wal_compression = zstd, in
 * one run: bytes on disk, append rate and read rate, for JSON events (the
 * kind bank_transfer.c and event_sourcing.c write) and for random bytes.
 *
 * Usage: bench_compress [DIR] [RUNS]
 *
 * Each run writes ENTRIES entries in batches of BATCH (one unit each)
 * under SYNC_NONE, then reads them back with an iterator; then a durable
 * run appends DURABLE_UNITS batches under SYNC_ALWAYS.  Every figure is
 * the median of RUNS runs (default 5).  Bytes on disk are the segment
 * files' sizes (RocksDB: its *.log WAL files; its memtable never flushes
 * here), against the payload bytes written ("raw").  For walrus with zstd
 * on JSON events it also prints where the bytes of its segment files go
 * (breakdown(): record headers, frames, index records, the rest), per
 * entry, from the files of the first run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "walrus.h"
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#define ENTRIES 200000
#define BATCH 16
#define DURABLE_UNITS 300
#define MAXRUNS 15

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned long long next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Entry i: a JSON event like the examples' (about 200 bytes), or as many
 * random bytes. */
static size_t payload(unsigned long long i, int random, char *buf, size_t cap) {
  static const char *kinds[] = {"AccountOpened", "MoneyDeposited",
                                "MoneyWithdrawn", "TransferCompleted"};
  int n = snprintf(buf, cap,
                   "{\"event\":\"%s\",\"aggregate\":\"account-%05llu\","
                   "\"version\":%llu,\"amount_cents\":%llu,\"currency\":"
                   "\"EUR\",\"from\":\"acct-%04llu\",\"to\":\"acct-%04llu\","
                   "\"at\":\"2024-05-01T12:%02llu:%02llu.%03lluZ\"}",
                   kinds[i % 4], i % 5000, i / 5000 + 1, next_rand() % 100000,
                   next_rand() % 1000, next_rand() % 1000, (i / 60) % 60,
                   i % 60, i % 1000);
  if (random)
    for (int k = 0; k < n; k++) buf[k] = (char)next_rand();
  return (size_t)n;
}

static unsigned long long dir_bytes(const char *dir, const char *suffix) {
  unsigned long long sum = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  if (d == NULL) return 0;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name), sl = strlen(suffix);
    if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0) continue;
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (stat(p, &st) == 0) sum += (unsigned long long)st.st_size;
  }
  closedir(d);
  return sum;
}

static void rmrf(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", dir);
}

#define CHECK(w, expr)                                           \
  do {                                                           \
    int rc_ = (expr);                                            \
    if (rc_ != WALRUS_OK) {                                      \
      fprintf(stderr, "%s: %s %s\n", #expr, walrus_errname(rc_), \
              (w) ? walrus_errmsg(w) : "");                      \
      exit(1);                                                   \
    }                                                            \
  } while (0)

/* Where the bytes of the segment files in dir go, per entry of raw
 * payload bytes, by the record layout of docs/FORMAT.md: a 64-byte
 * segment header, records (a 40-byte header: body_len at +4, flags at
 * +34; the body padded to 8 bytes), then in a sealed segment the index
 * record and the 32-byte trailer. */
static void breakdown(const char *dir, unsigned long long entries,
                      unsigned long long raw) {
  unsigned long long hdr = 0, frame = 0, plain = 0, pad = 0, index = 0,
                     other = 0, total = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  if (d == NULL) return;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l < 4 || strcmp(de->d_name + l - 4, ".seg") != 0) continue;
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    FILE *f = fopen(p, "rb");
    if (f == NULL) continue;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size);
    if (b == NULL || fread(b, 1, (size_t)size, f) != (size_t)size) {
      free(b);
      fclose(f);
      continue;
    }
    fclose(f);
    total += (unsigned long long)size;
    unsigned long long off = 64, used = 64;
    while (off + 40 <= (unsigned long long)size) {
      unsigned long long body = (unsigned long long)b[off + 4] |
                                (unsigned long long)b[off + 5] << 8 |
                                (unsigned long long)b[off + 6] << 16 |
                                (unsigned long long)b[off + 7] << 24;
      unsigned flags = b[off + 34];
      unsigned long long rsz = 40 + ((body + 7) & ~7ull);
      if (body == 0 && flags == 0) break; /* preallocated zeros */
      if (flags & 0x04) {                 /* the index record */
        index += rsz;
      } else if (flags & 0x10) { /* a sync mark */
        other += rsz;
      } else {
        hdr += 40;
        pad += rsz - 40 - body;
        if (flags & 0x40)
          frame += body;
        else
          plain += body;
      }
      off += rsz;
      used += rsz;
    }
    other += (unsigned long long)size - used; /* header, trailer, zeros */
    free(b);
  }
  closedir(d);
  double n = (double)entries;
  printf("  walrus zstd json, bytes per entry (raw %.1f): record headers "
         "%.1f, frames and unit heads %.1f, plain bodies %.1f, padding "
         "%.1f, index records %.1f, segment headers, trailers and marks "
         "%.1f: %.1f (%.1f%%)\n",
         (double)raw / n, (double)hdr / n, (double)frame / n, (double)plain / n,
         (double)pad / n, (double)index / n, (double)other / n,
         (double)total / n, 100.0 * (double)total / (double)raw);
}

static int breakdown_done;

typedef struct result_s {
  double bytes;       /* on disk / raw */
  double append_mbs;  /* raw MB/s appended */
  double read_mbs;    /* raw MB/s read back (walrus) */
  double durable_ups; /* durable units per second */
} result_t;

static char (*bufs)[512];

static walrus_t *open_log(const char *dir, int zstd, walrus_sync_t sync) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  char msg[256];
  walrus_config_default(&cfg);
  cfg.sync = sync;
  if (zstd) cfg.compression = WALRUS_COMPRESSION_ZSTD;
  if (walrus_open_ex(dir, &cfg, &w, msg, sizeof msg) != WALRUS_OK) {
    fprintf(stderr, "open %s: %s\n", dir, msg);
    exit(1);
  }
  return w;
}

static result_t run_walrus(const char *base, int zstd, int random) {
  char dir[4096];
  result_t r = {0};
  walrus_entry_t e[BATCH];
  unsigned long long raw = 0;
  snprintf(dir, sizeof dir, "%s/walrus-%d-%d", base, zstd, random);
  rmrf(dir);
  walrus_t *w = open_log(dir, zstd, WALRUS_SYNC_NONE);
  double t0 = now_s();
  for (unsigned long long i = 0; i < ENTRIES; i += BATCH) {
    for (int k = 0; k < BATCH; k++) {
      memset(&e[k], 0, sizeof e[k]);
      e[k].data = bufs[k];
      e[k].len = payload(i + (unsigned long long)k, random, bufs[k], 512);
      raw += e[k].len;
    }
    CHECK(w, walrus_write_batch(w, e, BATCH, NULL));
  }
  CHECK(w, walrus_sync(w));
  double t1 = now_s();
  r.append_mbs = (double)raw / 1e6 / (t1 - t0);
  CHECK(w, walrus_close(w));
  r.bytes = (double)dir_bytes(dir, ".seg") / (double)raw;
  if (zstd && !random && !breakdown_done) {
    breakdown(dir, ENTRIES, raw);
    breakdown_done = 1;
  }
  w = open_log(dir, 0, WALRUS_SYNC_NONE);
  walrus_iter_t *it;
  walrus_entry_t x;
  unsigned long long got = 0;
  t0 = now_s();
  CHECK(w, walrus_iter_open(w, 0, &it));
  while (walrus_iter_next(it, &x) == WALRUS_OK) got += x.len;
  walrus_iter_close(it);
  t1 = now_s();
  if (got != raw) {
    fprintf(stderr, "read %llu bytes, wrote %llu\n", got, raw);
    exit(1);
  }
  r.read_mbs = (double)raw / 1e6 / (t1 - t0);
  CHECK(w, walrus_close(w));
  rmrf(dir);
  /* Durable: one fdatasync per unit. */
  w = open_log(dir, zstd, WALRUS_SYNC_ALWAYS);
  t0 = now_s();
  for (int u = 0; u < DURABLE_UNITS; u++) {
    for (int k = 0; k < BATCH; k++) {
      memset(&e[k], 0, sizeof e[k]);
      e[k].data = bufs[k];
      e[k].len =
          payload((unsigned long long)(u * BATCH + k), random, bufs[k], 512);
    }
    CHECK(w, walrus_write_batch(w, e, BATCH, NULL));
  }
  t1 = now_s();
  r.durable_ups = DURABLE_UNITS / (t1 - t0);
  CHECK(w, walrus_close(w));
  rmrf(dir);
  return r;
}

#ifdef WALRUS_BENCH_HAVE_ROCKSDB
/* RocksDB: each batch one WriteBatch of BATCH puts, WAL only measured. */
static result_t run_rocksdb(const char *base, int zstd, int random) {
  char dir[4096], key[32];
  char *err = NULL;
  result_t r = {0};
  unsigned long long raw = 0;
  snprintf(dir, sizeof dir, "%s/rocksdb-%d-%d", base, zstd, random);
  for (int durable = 0; durable < 2; durable++) {
    rmrf(dir);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_write_buffer_size(o, 512u << 20);
    rocksdb_options_set_wal_compression(o, zstd ? rocksdb_zstd_compression
                                                : rocksdb_no_compression);
    rocksdb_t *db = rocksdb_open(o, dir, &err);
    if (err != NULL) {
      fprintf(stderr, "rocksdb_open: %s\n", err);
      exit(1);
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, (unsigned char)durable);
    unsigned long long n = durable ? DURABLE_UNITS * BATCH : ENTRIES;
    double t0 = now_s();
    for (unsigned long long i = 0; i < n; i += BATCH) {
      rocksdb_writebatch_t *b = rocksdb_writebatch_create();
      for (int k = 0; k < BATCH; k++) {
        size_t len = payload(i + (unsigned long long)k, random, bufs[k], 512);
        int kl =
            snprintf(key, sizeof key, "%016llu", i + (unsigned long long)k);
        rocksdb_writebatch_put(b, key, (size_t)kl, bufs[k], len);
        if (!durable) raw += len;
      }
      rocksdb_write(db, wo, b, &err);
      rocksdb_writebatch_destroy(b);
      if (err != NULL) {
        fprintf(stderr, "rocksdb_write: %s\n", err);
        exit(1);
      }
    }
    if (!durable) rocksdb_flush_wal(db, 1, &err);
    double t1 = now_s();
    if (durable) {
      r.durable_ups = DURABLE_UNITS / (t1 - t0);
    } else {
      r.append_mbs = (double)raw / 1e6 / (t1 - t0);
      r.bytes = (double)dir_bytes(dir, ".log") / (double)raw;
    }
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
  }
  rmrf(dir);
  return r;
}
#endif

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : "/tmp/walrus-bench-compress";
  int runs = argc > 2 ? atoi(argv[2]) : 5;
  if (runs < 1 || runs > MAXRUNS) runs = 5;
  mkdir(base, 0700);
  bufs = malloc(BATCH * sizeof *bufs);
  const char *names[] = {"walrus off", "walrus zstd", "rocksdb off",
                         "rocksdb zstd"};
  int systems = 2;
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
  systems = 4;
#endif
  printf("bench_compress: %d entries in batches of %d (SYNC_NONE), "
         "%d durable batches (SYNC_ALWAYS), median of %d runs, in %s\n",
         ENTRIES, BATCH, DURABLE_UNITS, runs, base);
  printf("%-8s %-13s %10s %12s %12s %14s\n", "data", "system", "disk/raw",
         "append MB/s", "read MB/s", "durable unit/s");
  for (int random = 0; random < 2; random++) {
    for (int s = 0; s < systems; s++) {
      double v[4][MAXRUNS];
      for (int k = 0; k < runs; k++) {
        result_t r = {0};
        rng = 0x9E3779B97F4A7C15ull;
        if (s < 2) r = run_walrus(base, s == 1, random);
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
        else
          r = run_rocksdb(base, s == 3, random);
#endif
        v[0][k] = r.bytes;
        v[1][k] = r.append_mbs;
        v[2][k] = r.read_mbs;
        v[3][k] = r.durable_ups;
      }
      printf("%-8s %-13s %9.1f%% %12.1f %12.1f %14.1f\n",
             random ? "random" : "json", names[s], 100 * median(v[0], runs),
             median(v[1], runs), s < 2 ? median(v[2], runs) : 0.0,
             median(v[3], runs));
      fflush(stdout);
    }
  }
  free(bufs);
  return 0;
}
