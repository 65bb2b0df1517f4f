/*
 * bench_group.c: group commit under closed-loop load, walrus alone, with
 * the figures that say where a sync cycle's time goes.
 *
 * T threads append 128-byte entries to one log under WALRUS_SYNC_ALWAYS,
 * each issuing its next append as soon as the last returns, for -t
 * seconds.  For every thread count and run it prints:
 *
 *   op/s        entries made durable per second, over the whole span
 *   ent/fsync   entries per fdatasync (walrus_stats, deltas over the
 *               timed span), beside T/2: with one sync in flight and
 *               closed-loop writers a sync can cover at most about half
 *               of them, those that wrote while the sync before it ran
 *   p50/p99/max commit latency of every call, in microseconds
 *   min share   the fewest appends any thread made, over the mean: near
 *               1 when no thread starves
 *   cs/append   voluntary plus involuntary context switches of the
 *               process (getrusage) per append
 *   cpu         CPU time of the process over wall time (2.0: two cores
 *               busy)
 *
 * then the medians over the runs.  Each measurement opens a fresh log
 * under -d DIR (default: the build directory), appends one untimed entry
 * and removes the log at the end.
 *
 *   bench_group [-d DIR] [-T LIST] [-t SECONDS] [-r RUNS] [-l LABEL]
 *     -T  thread counts, e.g. -T 16,64 (the default)
 *     -l  a label printed at the start of every line (to tell builds
 *         apart when two are run in turn)
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

#ifndef WALRUS_BINARY_DIR
#define WALRUS_BINARY_DIR "."
#endif

#define ENTRY_BYTES 128
#define MAX_THREADS 256
#define MAX_TCOUNTS 8
#define MAX_RUNS 15
#define LAT_PER_THREAD (1u << 16) /* latency samples kept per thread */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_group: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void check(int rc, const char *what, walrus_t *w) {
  if (rc != WALRUS_OK)
    die("%s: %s %s", what, walrus_strerror(rc), w ? walrus_errmsg(w) : "");
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *f) {
  (void)sb;
  (void)flag;
  (void)f;
  remove(p);
  return 0;
}

static unsigned char g_payload[ENTRY_BYTES];

typedef struct worker_s {
  walrus_t *w;           /* the shared handle */
  pthread_barrier_t *go; /* all threads start together */
  uint64_t budget_ns;    /* how long to append */
  uint64_t appends;      /* appends made */
  uint64_t max_ns;       /* slowest append */
  uint32_t *lat;         /* latency samples, ns */
  size_t nlat;           /* samples kept */
  uint64_t t0, t1;       /* first call, last return */
} worker_t;

static void *worker_main(void *arg) {
  worker_t *wk = arg;
  walrus_entry_t e = {0};
  e.timestamp_ns = 1; /* no clock read per entry, as bench_peers */
  e.data = g_payload;
  e.len = ENTRY_BYTES;
  pthread_barrier_wait(wk->go);
  uint64_t start = now_ns(), a = start;
  wk->t0 = start;
  for (;;) {
    check(walrus_append(wk->w, &e, NULL), "append", wk->w);
    uint64_t b = now_ns();
    uint64_t d = b - a;
    if (d > wk->max_ns) wk->max_ns = d;
    if (wk->nlat < LAT_PER_THREAD)
      wk->lat[wk->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    wk->appends++;
    a = b;
    if (b - start >= wk->budget_ns) break;
  }
  wk->t1 = a;
  return NULL;
}

typedef struct result_s {
  double rate, per_fsync, p50_us, p99_us, max_us, min_share, cs, cpu;
} result_t;

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static result_t measure(const char *base, int nthreads, double secs) {
  char dir[PATH_MAX];
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_stats_t s0, s1;
  struct rusage r0, r1;
  worker_t wk[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  pthread_barrier_t go;
  result_t r;

  snprintf(dir, sizeof dir, "%s/bench-group-%d.XXXXXX", base, (int)getpid());
  if (mkdtemp(dir) == NULL) die("mkdtemp %s: %s", dir, strerror(errno));
  strncat(dir, "/log", sizeof dir - strlen(dir) - 1);
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  check(walrus_open(dir, &cfg, &w), "open", w);
  walrus_entry_t e = {0};
  e.data = g_payload;
  e.len = ENTRY_BYTES;
  check(walrus_append(w, &e, NULL), "warm-up append", w);

  uint32_t *lat = malloc((size_t)nthreads * LAT_PER_THREAD * sizeof *lat);
  if (lat == NULL) die("out of memory");
  if (pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1) != 0)
    die("pthread_barrier_init");
  for (int i = 0; i < nthreads; i++) {
    memset(&wk[i], 0, sizeof wk[i]);
    wk[i].w = w;
    wk[i].go = &go;
    wk[i].budget_ns = (uint64_t)(secs * 1e9);
    wk[i].lat = lat + (size_t)i * LAT_PER_THREAD;
    if (pthread_create(&th[i], NULL, worker_main, &wk[i]) != 0)
      die("pthread_create");
  }
  check(walrus_stats(w, &s0), "stats", w);
  getrusage(RUSAGE_SELF, &r0);
  pthread_barrier_wait(&go);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  getrusage(RUSAGE_SELF, &r1);
  check(walrus_stats(w, &s1), "stats", w);
  check(walrus_close(w), "close", NULL);
  dir[strlen(dir) - 4] = '\0';
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

  uint64_t total = 0, least = UINT64_MAX, t0 = wk[0].t0, t1 = wk[0].t1;
  uint64_t max_ns = 0;
  size_t nl = 0;
  for (int i = 0; i < nthreads; i++) {
    total += wk[i].appends;
    if (wk[i].appends < least) least = wk[i].appends;
    if (wk[i].t0 < t0) t0 = wk[i].t0;
    if (wk[i].t1 > t1) t1 = wk[i].t1;
    if (wk[i].max_ns > max_ns) max_ns = wk[i].max_ns;
    memmove(lat + nl, wk[i].lat, wk[i].nlat * sizeof *lat);
    nl += wk[i].nlat;
  }
  qsort(lat, nl, sizeof *lat, cmp_u32);
  double wall = (double)(t1 - t0) / 1e9;
  r.rate = (double)total / wall;
  uint64_t fsyncs = s1.fsyncs - s0.fsyncs;
  r.per_fsync = fsyncs ? (double)(s1.entries - s0.entries) / (double)fsyncs : 0;
  r.p50_us = lat[(nl - 1) / 2] / 1e3;
  r.p99_us = lat[(size_t)((double)(nl - 1) * 0.99)] / 1e3;
  r.max_us = (double)max_ns / 1e3;
  r.min_share = (double)least / ((double)total / nthreads);
  r.cs = (double)(r1.ru_nvcsw - r0.ru_nvcsw + r1.ru_nivcsw - r0.ru_nivcsw) /
         (double)total;
  r.cpu = (tv_s(r1.ru_utime) - tv_s(r0.ru_utime) + tv_s(r1.ru_stime) -
           tv_s(r0.ru_stime)) /
          wall;
  free(lat);
  pthread_barrier_destroy(&go);
  return r;
}

static void print(const char *label, const char *what, int t,
                  const result_t *r) {
  printf("%-8s %-7s T=%-3d %9.0f op/s  %5.1f ent/fsync (T/2 %3d, %3.0f%%)  "
         "lat %5.0f/%6.0f/%7.0f us  min share %.2f  %.2f cs/append  "
         "cpu %.2f\n",
         label, what, t, r->rate, r->per_fsync, t / 2,
         100.0 * r->per_fsync / (t / 2.0), r->p50_us, r->p99_us, r->max_us,
         r->min_share, r->cs, r->cpu);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *dir = WALRUS_BINARY_DIR, *label = "walrus";
  int tcounts[MAX_TCOUNTS] = {16, 64}, nt = 2, runs = 3, opt;
  double secs = 2;
  while ((opt = getopt(argc, argv, "d:T:t:r:l:h")) != -1) {
    switch (opt) {
      case 'd': dir = optarg; break;
      case 't': secs = atof(optarg); break;
      case 'r': runs = atoi(optarg); break;
      case 'l': label = optarg; break;
      case 'T': {
        char *p = optarg;
        nt = 0;
        while (*p && nt < MAX_TCOUNTS) {
          tcounts[nt] = (int)strtol(p, &p, 10);
          if (tcounts[nt] < 1 || tcounts[nt] > MAX_THREADS)
            die("-T: thread counts are 1..%d", MAX_THREADS);
          nt++;
          if (*p == ',') p++;
        }
        break;
      }
      default:
        fprintf(stderr,
                "usage: bench_group [-d DIR] [-T LIST] [-t SECONDS] "
                "[-r RUNS] [-l LABEL]\n");
        return 2;
    }
  }
  if (runs < 1 || runs > MAX_RUNS) die("-r: runs are 1..%d", MAX_RUNS);
  for (size_t i = 0; i < sizeof g_payload; i++)
    g_payload[i] = (unsigned char)(i * 131u + 7u);
  result_t res[MAX_TCOUNTS][MAX_RUNS];
  for (int run = 0; run < runs; run++)
    for (int k = 0; k < nt; k++) {
      res[k][run] = measure(dir, tcounts[k], secs);
      print(label, "run", tcounts[k], &res[k][run]);
    }
  for (int k = 0; k < nt && runs > 1; k++) {
    /* The median of each column on its own. */
    result_t m;
    double *col[8] = {&m.rate, &m.per_fsync, &m.p50_us, &m.p99_us,
                      &m.max_us, &m.min_share, &m.cs, &m.cpu};
    for (int c = 0; c < 8; c++) {
      double v[MAX_RUNS];
      for (int run = 0; run < runs; run++)
        v[run] = *(double *)((char *)&res[k][run] +
                             ((char *)col[c] - (char *)&m));
      qsort(v, (size_t)runs, sizeof v[0], cmp_dbl);
      *col[c] = v[runs / 2];
    }
    print(label, "median", tcounts[k], &m);
  }
  return 0;
}
