/*
 * bench_read.c: read speed of walrus, beside the physical limit and LMDB.
 *
 *  1. Random reads of a hot log of -n entries (1,000,000) of 128 bytes:
 *     walrus_get_view + walrus_view_release, walrus_get (zero_copy 1 and
 *     0), and "raw": the same records read from mappings of the same
 *     segment files by a loop with no library (an offsets array, the
 *     record, its CRC), which is what memory latency allows; and that
 *     loop again with 100 register additions per probe, which shows how
 *     much the overlap of one probe's misses with the next one's depends
 *     on how few instructions lie between them; and with a locked add
 *     or a full fence per probe instead, which measures what the atomics
 *     of a lock or a reference count cost that overlap.  Then the same
 *     probes
 *     sixteen to a call of walrus_get_many_view and walrus_get_many.
 *  2. Sequential iteration of -N entries (10,000,000) of 128 bytes with
 *     checksums verified (zero_copy 1), beside LMDB (when built with it)
 *     reading the same records through a cursor; both touch a byte of
 *     every payload.
 *  3. walrus_open of that log in a fresh process (fork): time and RSS
 *     growth.
 *
 * Every rate is the median of -r runs (5), in one process run.  Usage:
 *   bench_read [-d DIR] [-r RUNS] [-n HOT] [-N SEQ] [-q] [-k]
 * DIR (default ./bench-read-data) holds the logs and LMDB's copy, about
 * 3.5 GB at the default sizes; it is removed at the end unless -k keeps it
 * for the next run.  -q makes both logs ten times smaller.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "walrus.h"
#ifdef WALRUS_BENCH_HAVE_LMDB
#include <lmdb.h>
#endif

#define PAYLOAD 128
#define PROBES 4000000

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return v[n / 2];
}

static void check(int rc, const char *what, walrus_t *w) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "bench_read: %s: %s (%s)\n", what, walrus_errname(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static void fill(unsigned char *p, uint64_t index) {
  for (int i = 0; i < PAYLOAD; i++)
    p[i] = (unsigned char)(index * 31 + (uint64_t)i);
}

/* Write n entries to a fresh log at dir (SYNC_NONE, then one sync). */
static void make_log(const char *dir, uint64_t n) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_NONE;
  check(walrus_open(dir, &cfg, &w), "open for writing", NULL);
  if (walrus_last_index(w) != n) {
    check(walrus_last_index(w) == 0 ? WALRUS_OK : WALRUS_EINVAL,
          "the log directory must be new", w);
    static unsigned char bufs[1000][PAYLOAD];
    walrus_entry_t e[1000];
    for (uint64_t i = 1; i <= n; i += 1000) {
      size_t k = 0;
      for (; k < 1000 && i + k <= n; k++) {
        memset(&e[k], 0, sizeof e[k]);
        fill(bufs[k], i + k);
        e[k].data = bufs[k];
        e[k].len = PAYLOAD;
      }
      check(walrus_write_batch(w, e, k, NULL), "write_batch", w);
    }
  }
  check(walrus_close(w), "close", NULL);
}

static walrus_t *open_ro(const char *dir, int zero_copy) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  cfg.zero_copy = zero_copy;
  cfg.cached_segments = 1024;
  check(walrus_open(dir, &cfg, &w), "open", NULL);
  return w;
}

static uint64_t *probes(uint64_t n) {
  uint64_t *idx = malloc(sizeof *idx * PROBES), x = 88172645463325252ull;
  for (int i = 0; i < PROBES; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    idx[i] = 1 + x % n;
  }
  return idx;
}

/* 0: views, 1: walrus_get.  Checks the bytes of every 4096th probe. */
static double random_reads(walrus_t *w, const uint64_t *idx, int get) {
  unsigned char want[PAYLOAD];
  unsigned sum = 0;
  double t = now_s();
  for (int i = 0; i < PROBES; i++) {
    walrus_view_t v;
    walrus_entry_t e;
    const walrus_entry_t *p = &e;
    if (get) {
      check(walrus_get(w, idx[i], &e), "get", w);
    } else {
      check(walrus_get_view(w, idx[i], &v), "get_view", w);
      p = &v.entry;
    }
    sum += ((const unsigned char *)p->data)[0];
    if ((i & 4095) == 0) {
      fill(want, idx[i]);
      if (p->len != PAYLOAD || memcmp(p->data, want, PAYLOAD) != 0) {
        fprintf(stderr, "bench_read: entry %llu has wrong bytes\n",
                (unsigned long long)idx[i]);
        exit(1);
      }
    }
    if (get)
      walrus_entry_free(&e);
    else
      walrus_view_release(&v);
  }
  double dt = now_s() - t;
  if (sum == 1) fputc(' ', stderr);
  return PROBES / dt;
}

/* The same probes through walrus_get_many_view (get 0) or walrus_get_many
 * (get 1), MANY to a call.  Checks every entry's index, and the bytes of
 * one entry a call. */
#define MANY 16
static double random_many(walrus_t *w, const uint64_t *idx, int get) {
  unsigned char want[PAYLOAD];
  walrus_view_t v[MANY];
  walrus_entry_t e[MANY];
  unsigned sum = 0;
  double t = now_s();
  for (int i = 0; i + MANY <= PROBES; i += MANY) {
    if (get)
      check(walrus_get_many(w, idx + i, MANY, e), "get_many", w);
    else
      check(walrus_get_many_view(w, idx + i, MANY, v), "get_many_view", w);
    for (int j = 0; j < MANY; j++) {
      const walrus_entry_t *p = get ? &e[j] : &v[j].entry;
      sum += ((const unsigned char *)p->data)[0];
      if (p->index != idx[i + j]) {
        fprintf(stderr, "bench_read: got entry %llu for %llu\n",
                (unsigned long long)p->index, (unsigned long long)idx[i + j]);
        exit(1);
      }
      if (j == (i / MANY) % MANY) {
        fill(want, idx[i + j]);
        if (p->len != PAYLOAD || memcmp(p->data, want, PAYLOAD) != 0) {
          fprintf(stderr, "bench_read: entry %llu has wrong bytes\n",
                  (unsigned long long)idx[i + j]);
          exit(1);
        }
      }
      if (get)
        walrus_entry_free(&e[j]);
      else
        walrus_view_release(&v[j]);
    }
  }
  double dt = now_s() - t;
  if (sum == 1) fputc(' ', stderr);
  return PROBES / dt;
}

/* The raw loop: map every segment, find its records by walking it once,
 * then read random records: offsets load, record, CRC. */
typedef struct raw_s {
  const unsigned char *base[4096]; /* each segment's mapping */
  uint32_t *offs[4096];            /* its record offsets */
  uint64_t count[4096];            /* its records */
  int n;                           /* segments */
} raw_t;

static void raw_open(raw_t *r, const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  static char names[4096][32];
  int n = 0;
  while (d != NULL && (de = readdir(d)) != NULL && n < 4096) {
    size_t l = strlen(de->d_name);
    if (l == 24 && strcmp(de->d_name + 20, ".seg") == 0)
      snprintf(names[n++], sizeof names[0], "%s", de->d_name);
  }
  if (d != NULL) closedir(d);
  qsort(names, (size_t)n, sizeof names[0],
        (int (*)(const void *, const void *))strcmp);
  r->n = n;
  for (int f = 0; f < n; f++) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%.4000s/%.31s", dir, names[f]);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) exit(1);
    r->base[f] = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    r->offs[f] = malloc(sizeof(uint32_t) * ((size_t)st.st_size / 48 + 1));
    r->count[f] = 0;
    for (uint64_t o = 64; o + 40 <= (uint64_t)st.st_size;) {
      const unsigned char *p = r->base[f] + o;
      uint32_t body;
      memcpy(&body, p + 4, 4);
      if (p[34] & 0x04) break; /* the index record */
      if (p[34] & 0x10) {      /* a sync mark */
        o += 40;
        continue;
      }
      r->offs[f][r->count[f]++] = (uint32_t)o;
      o += (40 + body + 7) & ~7u;
    }
  }
}

/* 100 register additions that depend on nothing the probes load: they
 * cost the CPU a few cycles, but they take room in its reorder window,
 * which is what lets one probe's cache misses overlap the next one's. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ADD10                                                      \
  "add $1,%%r8\n\tadd $1,%%r9\n\tadd $1,%%r10\n\tadd $1,%%r11\n\t" \
  "add $1,%%r8\n\tadd $1,%%r9\n\tadd $1,%%r10\n\tadd $1,%%r11\n\t" \
  "add $1,%%r8\n\tadd $1,%%r9\n\t"
#define HAVE_PAD 1
static inline void pad100(void) {
  __asm__ volatile(
      ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ::
          : "r8", "r9", "r10", "r11");
}
#else
#define HAVE_PAD 0
static inline void pad100(void) {}
#endif

/* What raw_reads() adds to every probe: nothing, pad100(), a locked add
 * (what taking a lock or a reference costs), or a full fence. */
enum { PAD_NONE, PAD_ADDS, PAD_LOCKED_ADD, PAD_FENCE };
static int g_locked_counter;

static double raw_reads(const raw_t *r, const uint64_t *idx, int pad) {
  unsigned sum = 0;
  double t = now_s();
  for (int i = 0; i < PROBES; i++) {
    uint64_t k = idx[i] - 1;
    int f = 0;
    while (k >= r->count[f]) k -= r->count[f++];
    const unsigned char *p = r->base[f] + r->offs[f][k];
    uint32_t body;
    memcpy(&body, p + 4, 4);
    sum += walrus__crc32c(0, p + 4, 36 + body) + p[40];
    if (pad == PAD_ADDS)
      pad100();
    else if (pad == PAD_LOCKED_ADD)
      __atomic_fetch_add(&g_locked_counter, 1, __ATOMIC_SEQ_CST);
    else if (pad == PAD_FENCE)
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
  }
  double dt = now_s() - t;
  if (sum == 1) fputc(' ', stderr);
  return PROBES / dt;
}

static double iterate(walrus_t *w, uint64_t n) {
  walrus_iter_t *it;
  walrus_entry_t e;
  uint64_t got = 0;
  unsigned sum = 0;
  int rc;
  double t = now_s();
  check(walrus_iter_open(w, 0, &it), "iter_open", w);
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    sum += ((const unsigned char *)e.data)[0];
    got++;
  }
  double dt = now_s() - t;
  walrus_iter_close(it);
  if (rc != WALRUS_DONE || got != n) check(WALRUS_ECORRUPT, "iterate", w);
  if (sum == 1) fputc(' ', stderr);
  return (double)n / dt;
}

#ifdef WALRUS_BENCH_HAVE_LMDB
static MDB_env *lmdb_load(const char *dir, uint64_t n) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  mkdir(dir, 0755);
  if (mdb_env_create(&env) || mdb_env_set_mapsize(env, (size_t)64 << 30) ||
      mdb_env_open(env, dir, MDB_NOSYNC | MDB_WRITEMAP, 0644))
    exit(1);
  mdb_txn_begin(env, NULL, 0, &txn);
  mdb_dbi_open(txn, NULL, 0, &dbi);
  MDB_stat st;
  mdb_stat(txn, dbi, &st);
  mdb_txn_commit(txn);
  if (st.ms_entries == n) return env;
  unsigned char val[PAYLOAD];
  for (uint64_t i = 1; i <= n;) {
    mdb_txn_begin(env, NULL, 0, &txn);
    for (int k = 0; k < 100000 && i <= n; k++, i++) {
      unsigned char key[8];
      for (int b = 0; b < 8; b++) key[b] = (unsigned char)(i >> (56 - 8 * b));
      fill(val, i);
      MDB_val kv = {8, key}, vv = {PAYLOAD, val};
      if (mdb_put(txn, dbi, &kv, &vv, MDB_APPEND)) exit(1);
    }
    mdb_txn_commit(txn);
  }
  mdb_env_sync(env, 1);
  return env;
}

static double lmdb_iterate(MDB_env *env, uint64_t n) {
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *c;
  MDB_val k, v;
  uint64_t got = 0;
  unsigned sum = 0;
  double t = now_s();
  mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
  mdb_dbi_open(txn, NULL, 0, &dbi);
  mdb_cursor_open(txn, dbi, &c);
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    sum += ((const unsigned char *)v.mv_data)[0];
    got++;
  }
  double dt = now_s() - t;
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  if (got != n) exit(1);
  if (sum == 1) fputc(' ', stderr);
  return (double)n / dt;
}
#endif

static long rss_bytes(void) {
  long size = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
  fclose(f);
  return res * sysconf(_SC_PAGESIZE);
}

/* walrus_open in a fresh child: ms and RSS growth, through a pipe. */
static void open_fresh(const char *dir, double *ms, double *mib) {
  int fd[2];
  if (pipe(fd) != 0) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    double r[2];
    long before = rss_bytes();
    double t = now_s();
    walrus_t *w = open_ro(dir, 0);
    r[0] = (now_s() - t) * 1e3;
    r[1] = (double)(rss_bytes() - before) / (1 << 20);
    walrus_close(w);
    if (write(fd[1], r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
  }
  double r[2] = {0, 0};
  if (read(fd[0], r, sizeof r) != sizeof r) exit(1);
  waitpid(pid, NULL, 0);
  close(fd[0]);
  close(fd[1]);
  *ms = r[0];
  *mib = r[1];
}

static void row(const char *name, double v, const char *unit, double target,
                int below) {
  int met = below ? v < target : v >= target;
  printf("%-44s %12.2f %-6s target %s %-8.4g %s\n", name, v, unit,
         below ? "<" : ">=", target, met ? "met" : "missed");
}

int main(int argc, char **argv) {
  const char *dir = "bench-read-data";
  int runs = 5, opt, keep = 0;
  uint64_t hot = 1000000, seq = 10000000;
  while ((opt = getopt(argc, argv, "d:r:n:N:qk")) != -1) {
    if (opt == 'd')
      dir = optarg;
    else if (opt == 'r')
      runs = atoi(optarg);
    else if (opt == 'n')
      hot = strtoull(optarg, NULL, 10);
    else if (opt == 'N')
      seq = strtoull(optarg, NULL, 10);
    else if (opt == 'q')
      hot /= 10, seq /= 10;
    else if (opt == 'k')
      keep = 1;
    else
      return 2;
  }
  if (runs < 1 || runs > 99) runs = 5;
  char hot_dir[4096], seq_dir[4096], lmdb_dir[4096];
  snprintf(hot_dir, sizeof hot_dir, "%s/hot-%llu", dir,
           (unsigned long long)hot);
  snprintf(seq_dir, sizeof seq_dir, "%s/seq-%llu", dir,
           (unsigned long long)seq);
  snprintf(lmdb_dir, sizeof lmdb_dir, "%s/lmdb-%llu", dir,
           (unsigned long long)seq);
  mkdir(dir, 0755);
  make_log(hot_dir, hot);
  make_log(seq_dir, seq);

  double view[99], get1[99], get0[99], raw[99], rawpad[99], rawlock[99],
      rawfence[99], it[99], lm[99], oms[99], omb[99], mview[99], mget1[99];
  uint64_t *idx = probes(hot);
  walrus_t *wz = open_ro(hot_dir, 1), *wp = open_ro(hot_dir, 0);
  raw_t *r = calloc(1, sizeof *r);
  raw_open(r, hot_dir);
  random_reads(wz, idx, 0); /* warm: map and fault everything in */
  raw_reads(r, idx, PAD_NONE);
  walrus_t *ws = open_ro(seq_dir, 1);
  iterate(ws, seq);
#ifdef WALRUS_BENCH_HAVE_LMDB
  MDB_env *env = lmdb_load(lmdb_dir, seq);
  lmdb_iterate(env, seq);
#endif
  for (int i = 0; i < runs; i++) {
    view[i] = random_reads(wz, idx, 0);
    raw[i] = raw_reads(r, idx, PAD_NONE);
    rawpad[i] = raw_reads(r, idx, PAD_ADDS);
    rawlock[i] = raw_reads(r, idx, PAD_LOCKED_ADD);
    rawfence[i] = raw_reads(r, idx, PAD_FENCE);
    get1[i] = random_reads(wz, idx, 1);
    get0[i] = random_reads(wp, idx, 1);
    mview[i] = random_many(wz, idx, 0);
    mget1[i] = random_many(wz, idx, 1);
    it[i] = iterate(ws, seq);
#ifdef WALRUS_BENCH_HAVE_LMDB
    lm[i] = lmdb_iterate(env, seq);
#else
    lm[i] = 0;
#endif
    open_fresh(seq_dir, &oms[i], &omb[i]);
  }
  double mv = median(view, runs), mr = median(raw, runs);
  double mi = median(it, runs), ml = median(lm, runs);
  printf("bench_read: medians of %d runs; hot log %llu x %d B, sequential "
         "log %llu x %d B\n",
         runs, (unsigned long long)hot, PAYLOAD, (unsigned long long)seq,
         PAYLOAD);
  row("random walrus_get_view (M/s)", mv / 1e6, "M/s", 10, 0);
  row("random walrus_get, zero_copy 1 (M/s)", median(get1, runs) / 1e6, "M/s",
      5, 0);
  printf("%-44s %12.2f M/s\n", "random walrus_get, zero_copy 0 (M/s)",
         median(get0, runs) / 1e6);
  printf("%-44s %12.2f M/s\n", "random walrus_get_many_view, 16 a call (M/s)",
         median(mview, runs) / 1e6);
  printf("%-44s %12.2f M/s\n", "random walrus_get_many, 16, zero_copy 1",
         median(mget1, runs) / 1e6);
  printf("%-44s %12.2f M/s\n", "random raw mapped reads, no library (M/s)",
         mr / 1e6);
  if (HAVE_PAD)
    printf("%-44s %12.2f M/s\n", "the raw loop + 100 adds per probe (M/s)",
           median(rawpad, runs) / 1e6);
  printf("%-44s %12.2f M/s\n", "the raw loop + a locked add per probe",
         median(rawlock, runs) / 1e6);
  printf("%-44s %12.2f M/s\n", "the raw loop + a full fence per probe",
         median(rawfence, runs) / 1e6);
  printf("%-44s %12.2f x\n", "walrus_get_view / raw", mv / mr);
  printf("%-44s %12.2f x\n", "walrus_get_many_view / raw",
         median(mview, runs) / mr);
  row("sequential iteration, CRC checked (M/s)", mi / 1e6, "M/s", 25, 0);
  if (ml > 0) {
    printf("%-44s %12.2f M/s\n", "LMDB cursor over the same records (M/s)",
           ml / 1e6);
    row("walrus iteration / LMDB", mi / ml, "x", 1.0, 0);
  }
  row("walrus_open of the sequential log (ms)", median(oms, runs), "ms", 50, 1);
  row("RSS growth across that open (MiB)", median(omb, runs), "MiB", 16, 1);
  walrus_close(wz);
  walrus_close(wp);
  walrus_close(ws);
  if (!keep) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%.4000s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "bench_read: could not remove %s\n", dir);
  }
  return 0;
}
