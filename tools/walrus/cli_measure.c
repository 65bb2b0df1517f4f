/*
 * cli_measure.c: the latency histogram, clock, --seconds parser, stop flag
 * and option messages that `walrus probe-fsync` and `walrus bench` share
 * (cli_measure.h).
 *
 * The histogram is log-linear, like HdrHistogram at one significant
 * hexadecimal digit: a value v >= 16 falls in power e = floor(log2 v) and
 * in the sub-bucket given by the four bits after its leading one, so each
 * bucket is 1/16 of its power wide.  That bounds the error of a reported
 * percentile to 1/32 of the value (the middle of the bucket is reported),
 * in under 8 KiB per histogram whatever the run's length.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POSIX and Linux declarations under -std=c11 */
#endif
#include "cli_measure.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

volatile sig_atomic_t cli_stop_signal = 0;

static int bucket_of(uint64_t v) {
  if (v < CLI_HIST_SUB) return (int)v;
  int e = 63 - __builtin_clzll(v); /* 4..63 */
  int sub = (int)((v >> (e - 4)) & (CLI_HIST_SUB - 1));
  return (e - 3) * CLI_HIST_SUB + sub;
}

/* The smallest value of bucket b, and its width. */
static uint64_t bucket_low(int b, uint64_t *width) {
  if (b < CLI_HIST_SUB) {
    *width = 1;
    return (uint64_t)b;
  }
  int e = b / CLI_HIST_SUB + 3;
  uint64_t sub = (uint64_t)(b % CLI_HIST_SUB);
  *width = 1ull << (e - 4);
  return (CLI_HIST_SUB + sub) << (e - 4);
}

void cli_hist_init(cli_hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min_ns = UINT64_MAX;
}

void cli_hist_add(cli_hist_t *h, uint64_t ns) {
  h->bucket[bucket_of(ns)]++;
  h->count++;
  if (ns < h->min_ns) h->min_ns = ns;
  if (ns > h->max_ns) h->max_ns = ns;
}

void cli_hist_merge(cli_hist_t *dst, const cli_hist_t *src) {
  for (int b = 0; b < CLI_HIST_BUCKETS; b++) dst->bucket[b] += src->bucket[b];
  dst->count += src->count;
  if (src->min_ns < dst->min_ns) dst->min_ns = src->min_ns;
  if (src->max_ns > dst->max_ns) dst->max_ns = src->max_ns;
}

uint64_t cli_hist_quantile(const cli_hist_t *h, double q) {
  if (h->count == 0) return 0;
  double want = q * (double)h->count;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want) rank++; /* ceil, without libm */
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (int b = 0; b < CLI_HIST_BUCKETS; b++) {
    seen += h->bucket[b];
    if (seen >= rank) {
      uint64_t width, v = bucket_low(b, &width) + width / 2;
      if (v < h->min_ns) v = h->min_ns;
      if (v > h->max_ns) v = h->max_ns;
      return v;
    }
  }
  return h->max_ns;
}

uint64_t cli_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cli_parse_seconds(const char *s, const char *what, double *out) {
  char *end;
  double v;
  /* strtod alone would take "inf", "nan", hex and leading blanks. */
  if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '.')) goto bad;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0') goto bad;
  if (!(v > 0.0 && v <= 86400.0)) goto bad;
  *out = v;
  return 0;
bad:
  cli_error("invalid %s '%s' (a number of seconds above 0, at most 86400)",
            what, s ? s : "");
  return 2;
}

/* One appender thread of cli_append_run(). */
typedef struct appender {
  walrus_t *w;              /* the log */
  walrus_entry_t entry;     /* what every append writes */
  uint64_t deadline_ns;     /* stop at the first append ending after it */
  atomic_int *failed;       /* set by the first thread whose append fails */
  atomic_uint_fast64_t ops; /* appends done: read by the ticking thread */
  cli_hist_t hist;          /* this thread's latencies */
  uint64_t end_ns;          /* when this thread stopped */
  int rc;                   /* WALRUS_OK, or its failed append's code */
  char errmsg[256];         /* walrus_errmsg() right after the failure */
} appender_t;

static void *appender_main(void *arg) {
  appender_t *a = arg;
  while (!cli_stop_signal && !atomic_load(a->failed)) {
    uint64_t t0 = cli_now_ns();
    int rc = walrus_append(a->w, &a->entry, NULL);
    uint64_t t1 = cli_now_ns();
    if (rc != WALRUS_OK) {
      a->rc = rc;
      snprintf(a->errmsg, sizeof a->errmsg, "%s", walrus_errmsg(a->w));
      atomic_store(a->failed, 1);
      break;
    }
    cli_hist_add(&a->hist, t1 - t0);
    atomic_fetch_add_explicit(&a->ops, 1, memory_order_relaxed);
    if (t1 >= a->deadline_ns) break;
  }
  a->end_ns = cli_now_ns();
  return NULL;
}

int cli_append_run(walrus_t *w, int threads, const void *data, size_t len,
                   double seconds, cli_tick_fn tick, void *ud, cli_run_t *out) {
  atomic_int failed = 0;
  int started = 0, err = 0;
  appender_t *a = calloc((size_t)threads, sizeof *a);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  if (a == NULL || tid == NULL) {
    free(a);
    free(tid);
    errno = ENOMEM;
    return -1;
  }
  uint64_t start = cli_now_ns();
  uint64_t deadline = start + (uint64_t)(seconds * 1e9);
  for (; started < threads; started++) {
    appender_t *t = &a[started];
    t->w = w;
    t->entry.data = data;
    t->entry.len = len;
    t->deadline_ns = deadline;
    t->failed = &failed;
    atomic_init(&t->ops, 0);
    cli_hist_init(&t->hist);
    err = pthread_create(&tid[started], NULL, appender_main, t);
    if (err != 0) {
      atomic_store(&failed, 1); /* stop the ones already running */
      break;
    }
  }
  /* Tick until every thread is past the deadline or stopped. */
  while (started == threads && !atomic_load(&failed) && !cli_stop_signal &&
         cli_now_ns() < deadline) {
    struct timespec nap = {0, 200 * 1000 * 1000};
    uint64_t left = deadline - cli_now_ns();
    if (left < (uint64_t)nap.tv_nsec) nap.tv_nsec = (long)left;
    nanosleep(&nap, NULL);
    if (tick != NULL) {
      uint64_t ops = 0;
      for (int i = 0; i < threads; i++)
        ops += atomic_load_explicit(&a[i].ops, memory_order_relaxed);
      tick(ud, ops, (double)(cli_now_ns() - start) / 1e9);
    }
  }
  memset(out, 0, sizeof *out);
  cli_hist_init(&out->hist);
  uint64_t end = start;
  for (int i = 0; i < started; i++) {
    pthread_join(tid[i], NULL);
    cli_hist_merge(&out->hist, &a[i].hist);
    out->ops += atomic_load(&a[i].ops);
    if (a[i].end_ns > end) end = a[i].end_ns;
    if (a[i].rc != WALRUS_OK && out->rc == WALRUS_OK) {
      out->rc = a[i].rc;
      memcpy(out->errmsg, a[i].errmsg, sizeof out->errmsg);
    }
  }
  out->seconds = (double)(end - start) / 1e9;
  free(a);
  free(tid);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

int cli_parse_write_size(const char *s, uint64_t *out) {
  uint64_t v;
  int rc = cli_parse_size(s, "size", &v);
  if (rc != 0) return rc;
  if (v < 1 || v > CLI_MAX_WRITE_BYTES) {
    cli_error("invalid size '%s' (1 byte to 16m)", s);
    return 2;
  }
  *out = v;
  return 0;
}

void cli_opt_reset(void) {
  opterr = 0; /* the commands word their own messages */
#ifdef __GLIBC__
  optind = 0; /* a full rescan, with the next option string's rules */
#else
  optind = 1;
#endif
}

static void on_stop(int sig) {
  cli_stop_signal = sig;
}

void cli_stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

void cli_stop_reraise(void) {
  int sig = cli_stop_signal;
  if (sig == 0) return;
  fflush(stdout);
  signal(sig, SIG_DFL);
  raise(sig);
}

int cli_bad_option(const char *cmd, int c, int opt, char **argv, int index) {
  const char *arg = index > 0 ? argv[index - 1] : "";
  char shortname[3] = {'-', (char)opt, '\0'};
  /* A short option may sit inside a group ("-xq"): name the letter. */
  if (strncmp(arg, "--", 2) != 0 && opt > 0 && isprint(opt)) arg = shortname;
  if (c == ':')
    cli_error("%s: option '%s' needs a value", cmd, arg);
  else
    cli_error("%s: unknown option '%s'", cmd, arg);
  fprintf(stderr, "Try '%s %s --help'.\n", cli_progname, cmd);
  return 2;
}
