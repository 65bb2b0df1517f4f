/*
 * bench_core.c: the core figures of walrus, each beside the physical
 * limit measured in the same run.
 *
 *   - durable appends: walrus (SYNC_ALWAYS, one fdatasync per append) vs a
 *     raw write()+fdatasync() loop on a file in the same directory;
 *   - appends without fsync: walrus (SYNC_NONE) vs a raw write() loop;
 *   - open time and RSS growth of opening a log of many entries (default
 *     10 million 100-byte entries), in a fresh child process.
 *
 * Every rate is the median of several runs, alternating walrus and the
 * raw loop so that both see the same machine.  Absolute numbers on a
 * shared machine are noise; the ratios are the figures.
 *
 *   bench_core [-d DIR] [-r RUNS] [-n OPEN_ENTRIES] [-s] [-O LOG]
 *     -s  skip the open benchmark (it writes ~1.5 GB)
 *     -O  only time RUNS writable opens of the existing log LOG, each in a
 *         fresh child, and print their median: nothing is built or
 *         removed.  Run two builds' bench_core -O on one log, alternating,
 *         to compare their open times side by side.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

#define ENTRY_BYTES 128

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void check(int rc, const char *what, walrus_t *w) {
  if (rc != WALRUS_OK) {
    fprintf(stderr, "bench_core: %s: %s %s\n", what, walrus_strerror(rc),
            w ? walrus_errmsg(w) : "");
    exit(1);
  }
}

/* Format into a path buffer, refusing to truncate. */
#define PATHF(buf, ...)                                               \
  do {                                                                \
    int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                  \
    if (n_ < 0 || (size_t)n_ >= sizeof buf) {                         \
      fprintf(stderr, "bench_core: path too long\n");                 \
      exit(2);                                                        \
    }                                                                 \
  } while (0)

static void rm_rf(const char *path) {
  char cmd[4300];
  PATHF(cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "bench_core: cannot remove %s\n", path);
}

/* Appends per second of n raw writes of ENTRY_BYTES (+fdatasync each). */
static double raw_rate(const char *dir, int n, int durable) {
  char path[4200];
  unsigned char buf[ENTRY_BYTES + 40];
  memset(buf, 'r', sizeof buf);
  PATHF(path, "%s/raw.bin", dir);
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) {
    perror(path);
    exit(1);
  }
  /* The same bytes per append as a walrus record: header + payload. */
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) exit(1);
    if (durable && fdatasync(fd) != 0) exit(1);
  }
  double t = now_s() - t0;
  close(fd);
  unlink(path);
  return n / t;
}

static double walrus_rate(const char *dir, int n, walrus_sync_t sync,
                          int mapped) {
  char path[4200];
  unsigned char buf[ENTRY_BYTES];
  walrus_config_t cfg;
  walrus_t *w = NULL;
  memset(buf, 'w', sizeof buf);
  PATHF(path, "%s/log", dir);
  rm_rf(path);
  walrus_config_default(&cfg);
  cfg.sync = sync;
  cfg.mapped_writes = mapped;
  check(walrus_open(path, &cfg, &w), "open", w);
  walrus_entry_t e = {0};
  e.data = buf;
  e.len = sizeof buf;
  e.timestamp_ns = 1;
  /* Create the first segment before timing: raw gets its file free too. */
  check(walrus_append(w, &e, NULL), "append", w);
  double t0 = now_s();
  for (int i = 0; i < n; i++) check(walrus_append(w, &e, NULL), "append", w);
  double t = now_s() - t0;
  check(walrus_close(w), "close", NULL);
  rm_rf(path);
  return n / t;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

/* Time runs writable opens (and closes) of the log at path, each in a
 * fresh child with a warm page cache; print each and the median open. */
static void time_opens(const char *path, int runs) {
  double ms[99];
  for (int run = 0; run < runs; run++) {
    int p[2];
    if (pipe(p) != 0) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
      double r[3];
      long before = rss_kb();
      double s0 = now_s();
      walrus_t *h = NULL;
      check(walrus_open(path, NULL, &h), "reopen", h);
      r[0] = (now_s() - s0) * 1e3;
      r[1] = (double)(rss_kb() - before) / 1024.0;
      r[2] = (double)walrus_last_index(h);
      walrus_close(h);
      if (write(p[1], r, sizeof r) != (ssize_t)sizeof r) _exit(1);
      _exit(0);
    }
    double r[3];
    close(p[1]);
    if (read(p[0], r, sizeof r) != (ssize_t)sizeof r) exit(1);
    close(p[0]);
    waitpid(pid, NULL, 0);
    ms[run] = r[0];
    printf("open: %.0f entries, open %.2f ms, RSS growth %.2f MiB "
           "(run %d, warm page cache)\n",
           r[2], r[0], r[1], run + 1);
  }
  printf("open: median %.2f ms of %d runs\n", median(ms, runs), runs);
}

/* Build a log of n 100-byte entries (batches of 1000, SYNC_NONE, one sync
 * at the end), then time opening it in a fresh child. */
static void open_bench(const char *dir, long n) {
  char path[4200];
  unsigned char buf[100];
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_entry_t batch[1000];
  PATHF(path, "%s/open-log", dir);
  rm_rf(path);
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_NONE;
  check(walrus_open(path, &cfg, &w), "open", w);
  memset(buf, 'o', sizeof buf);
  for (int i = 0; i < 1000; i++) {
    batch[i] = (walrus_entry_t){0};
    batch[i].data = buf;
    batch[i].len = sizeof buf;
  }
  double t0 = now_s();
  for (long i = 0; i < n; i += 1000)
    check(walrus_write_batch(w, batch, (size_t)(n - i < 1000 ? n - i : 1000),
                             NULL),
          "batch", w);
  check(walrus_sync(w), "sync", w);
  double tb = now_s() - t0;
  check(walrus_close(w), "close", NULL);
  printf("open: built %ld entries of 100 B in %.1f s\n", n, tb);

  time_opens(path, 3);
  rm_rf(path);
}

int main(int argc, char **argv) {
  const char *base = "/tmp";
  const char *open_only = NULL;
  int runs = 5, skip_open = 0;
  long open_n = 10000000;
  int opt;
  while ((opt = getopt(argc, argv, "d:r:n:sO:")) != -1) {
    switch (opt) {
      case 'd': base = optarg; break;
      case 'r': runs = atoi(optarg); break;
      case 'n': open_n = atol(optarg); break;
      case 's': skip_open = 1; break;
      case 'O': open_only = optarg; break;
      default:
        fprintf(stderr, "usage: bench_core [-d DIR] [-r RUNS] [-n N] [-s] "
                        "[-O LOG]\n");
        return 2;
    }
  }
  if (runs < 1 || runs > 99) runs = 5;
  if (open_only != NULL) {
    time_opens(open_only, runs);
    return 0;
  }
  char dir[4200];
  PATHF(dir, "%s/walrus-bench-XXXXXX", base);
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("walrus %s bench_core in %s, %d-byte entries, medians of %d runs\n",
         walrus_version_string(), dir, ENTRY_BYTES, runs);

  double rw[99], rr[99], nw[99], nr[99], mw[99];
  for (int i = 0; i < runs; i++) {
    rr[i] = raw_rate(dir, 2000, 1);
    rw[i] = walrus_rate(dir, 2000, WALRUS_SYNC_ALWAYS, 0);
    nr[i] = raw_rate(dir, 1000000, 0);
    nw[i] = walrus_rate(dir, 1000000, WALRUS_SYNC_NONE, 0);
    mw[i] = walrus_rate(dir, 4000000, WALRUS_SYNC_NONE, 1);
  }
  double mrw = median(rw, runs), mrr = median(rr, runs);
  double mnw = median(nw, runs), mnr = median(nr, runs);
  double mmw = median(mw, runs);
  printf("durable append   walrus %10.0f/s   raw write+fdatasync %10.0f/s   "
         "ratio %.2fx\n",
         mrw, mrr, mrw / mrr);
  printf("no-fsync append  walrus %10.0f/s   raw write           %10.0f/s   "
         "ratio %.2fx\n",
         mnw, mnr, mnw / mnr);
  printf("no-fsync append  walrus mapped_writes %10.0f/s                  "
         "ratio %.2fx\n",
         mmw, mmw / mnr);
  if (!skip_open) open_bench(dir, open_n);
  rm_rf(dir);
  return 0;
}
