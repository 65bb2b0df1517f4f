/*
 * bench_follow.c: how soon a follower sees an entry once it is durable,
 * and what a follower costs while it waits.
 *
 * A writer appends 128-byte entries under WALRUS_SYNC_ALWAYS, with a gap
 * of 0, 1, 10 and then 100 ms before each append (1000, 300, 100 and 30
 * entries), then waits 3 s and appends one more.  A follow iterator reads
 * them as they come:
 *
 *   - other process: the writer is a child process, the follower a
 *     read-only handle here (sleeping on DURABLE's wake count, which the
 *     writer's sync bumps; each sleep at most 1 ms doubling to -p MS);
 *   - same process: the writable handle, the writer on a second thread
 *     (walrus_wait on a condition variable).
 *
 * Latency of an entry: from the moment walrus_append() returned to the
 * writer to the moment walrus_iter_next() returned it to the follower,
 * both read from CLOCK_MONOTONIC, which all processes share.  It can be a
 * few microseconds below zero: an entry is published when its fdatasync
 * ends, a moment before the append returns.  Printed per gap: median, 99th
 * percentile and maximum; and for the 3 s wait, the follower's CPU time
 * per second of waiting and that last entry's latency.
 *
 *   bench_follow [-d DIR] [-k] [-p MS]
 * DIR (default ./bench-follow-data) holds the log; removed unless -k.
 * MS is the read-only follower's follow_poll_ms (default 50).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

#define ENTRY_BYTES 128
#define NPHASES 4
#define IDLE_MS 3000

static const int gap_ms[NPHASES] = {0, 1, 10, 100};
static const int count[NPHASES] = {1000, 300, 100, 30};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* This thread's CPU time, user and system, in seconds. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void check(int rc, const char *what, walrus_t *w) {
  if (rc != WALRUS_OK) {
    fprintf(stderr, "bench_follow: %s: %s %s\n", what, walrus_strerror(rc),
            w ? walrus_errmsg(w) : "");
    exit(1);
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Entries in all: the phases and the one after the idle wait. */
static size_t total(void) {
  size_t n = 1;
  for (int p = 0; p < NPHASES; p++) n += (size_t)count[p];
  return n;
}

/* The writer: every entry, each gap; returned[i] gets the time the append
 * of entry i + 1 returned. */
typedef struct writer_s {
  walrus_t *w;      /* the writable handle */
  double *returned; /* total() times, shared with the follower */
} writer_t;

static void write_all(writer_t *wr) {
  unsigned char data[ENTRY_BYTES];
  memset(data, 'f', sizeof data);
  walrus_entry_t e = {0};
  e.data = data;
  e.len = sizeof data;
  size_t i = 0;
  sleep_ms(200); /* let the follower reach its wait */
  for (int p = 0; p < NPHASES; p++) {
    for (int k = 0; k < count[p]; k++) {
      if (gap_ms[p] > 0) sleep_ms(gap_ms[p]);
      uint64_t idx;
      check(walrus_append(wr->w, &e, &idx), "append", wr->w);
      wr->returned[i++] = now_s();
    }
  }
  sleep_ms(IDLE_MS);
  uint64_t idx;
  check(walrus_append(wr->w, &e, &idx), "append", wr->w);
  wr->returned[i] = now_s();
}

static void *writer_thread(void *arg) {
  write_all(arg);
  return NULL;
}

/* Follow every entry; seen[i] gets the time entry i + 1 arrived, and
 * *idle_cpu the CPU time spent waiting for the last one. */
static void follow_all(walrus_t *w, double *seen, double *idle_cpu) {
  walrus_iter_t *it;
  size_t n = total();
  check(walrus_iter_open_follow(w, 0, 10000, &it), "iter_open_follow", w);
  double c0 = 0;
  for (size_t i = 0; i < n; i++) {
    walrus_entry_t e;
    if (i == n - 1) c0 = cpu_s();
    int rc = walrus_iter_next(it, &e);
    seen[i] = now_s();
    check(rc, "iter_next", w);
    if (e.index != i + 1 || e.len != ENTRY_BYTES) {
      fprintf(stderr, "bench_follow: entry %zu came back as %llu\n", i + 1,
              (unsigned long long)e.index);
      exit(1);
    }
  }
  *idle_cpu = cpu_s() - c0;
  walrus_iter_close(it);
}

static void report(const char *who, const double *returned, const double *seen,
                   double idle_cpu) {
  size_t i = 0;
  double lat[1000];
  for (int p = 0; p < NPHASES; p++) {
    for (int k = 0; k < count[p]; k++, i++)
      lat[k] = (seen[i] - returned[i]) * 1e3;
    qsort(lat, (size_t)count[p], sizeof lat[0], cmp_d);
    int n = count[p];
    printf("%-14s gap %3d ms  %4d entries  latency p50 %8.3f ms  p99 %8.3f "
           "ms  max %8.3f ms\n",
           who, gap_ms[p], n, lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
  }
  printf("%-14s after %d ms idle: latency %.3f ms, follower CPU %.3f ms "
         "per second of waiting\n",
         who, IDLE_MS, (seen[i] - returned[i]) * 1e3,
         idle_cpu * 1e3 / (IDLE_MS / 1e3));
}

static uint32_t g_poll_ms = 50; /* -p: the follower's follow_poll_ms */

static walrus_t *open_log(const char *dir, int read_only) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = read_only;
  cfg.follow_poll_ms = g_poll_ms;
  walrus_t *w = NULL;
  check(walrus_open(dir, &cfg, &w), "open", NULL);
  return w;
}

static void fresh_dir(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%.4000s'", dir);
  if (system(cmd) != 0) exit(1);
}

static void other_process(const char *dir) {
  size_t n = total();
  double *returned = mmap(NULL, n * sizeof(double), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  double *seen = calloc(n, sizeof *seen), idle_cpu;
  if (returned == MAP_FAILED || seen == NULL) exit(1);
  fresh_dir(dir);
  walrus_close(open_log(dir, 0)); /* make the log */
  int go[2];
  if (pipe(go) != 0) exit(1);
  pid_t pid = fork();
  if (pid < 0) exit(1);
  if (pid == 0) {
    writer_t wr = {open_log(dir, 0), returned};
    char c = 1;
    if (write(go[1], &c, 1) != 1) _exit(1);
    write_all(&wr);
    check(walrus_close(wr.w), "close", NULL);
    _exit(0);
  }
  char c;
  if (read(go[0], &c, 1) != 1) exit(1);
  walrus_t *r = open_log(dir, 1);
  follow_all(r, seen, &idle_cpu);
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) exit(1);
  report("other process", returned, seen, idle_cpu);
  check(walrus_close(r), "close", NULL);
  munmap(returned, n * sizeof(double));
  free(seen);
}

static void same_process(const char *dir) {
  size_t n = total();
  double *returned = calloc(n, sizeof *returned);
  double *seen = calloc(n, sizeof *seen), idle_cpu;
  if (returned == NULL || seen == NULL) exit(1);
  fresh_dir(dir);
  writer_t wr = {open_log(dir, 0), returned};
  pthread_t th;
  if (pthread_create(&th, NULL, writer_thread, &wr) != 0) exit(1);
  follow_all(wr.w, seen, &idle_cpu);
  pthread_join(th, NULL);
  report("same process", returned, seen, idle_cpu);
  check(walrus_close(wr.w), "close", NULL);
  free(returned);
  free(seen);
}

int main(int argc, char **argv) {
  const char *dir = "bench-follow-data";
  int opt, keep = 0;
  while ((opt = getopt(argc, argv, "d:kp:")) != -1) {
    if (opt == 'd')
      dir = optarg;
    else if (opt == 'k')
      keep = 1;
    else if (opt == 'p')
      g_poll_ms = (uint32_t)strtoul(optarg, NULL, 10);
    else
      return 2;
  }
  printf("bench_follow: 128-byte entries under SYNC_ALWAYS; latency from "
         "the append's return to the follower's iter_next\n");
  other_process(dir);
  same_process(dir);
  if (!keep) fresh_dir(dir);
  return 0;
}
