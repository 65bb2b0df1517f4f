/*
 * cmd_bench.c: `walrus bench DIR [--threads N] [--seconds S] [--size BYTES]
 * [--sync always|interval|none]`.
 *
 * A quick throughput and latency run: N threads call walrus_append() with
 * entries of BYTES for S seconds into a new log in DIR, then the command
 * prints appends per second, MB/s of payload, and the p50, p99 and p99.9
 * latency of one append (under sync always, the time until it is durable).
 * While it runs, a progress line goes to stderr when stderr is a terminal,
 * and nothing when it is not.
 *
 * DIR must be missing (it is created) or empty: bench never writes into a
 * directory that holds anything, so it cannot damage or extend a user's
 * log.  The log it writes stays in DIR for inspection (walrus stat,
 * walrus verify); remove it when done.  Its entries are those the run
 * reports: one warm-up append that creates the first segment, before the
 * clock starts, and every timed one.
 *
 * SIGINT, SIGTERM and SIGHUP end the run early: the log is closed, what
 * was measured is printed, then the process dies of the signal.
 *
 * Exit: 0 done; 1 an append or the close failed; 2 usage; 3 DIR cannot be
 * created or opened, is not a directory, or is not empty.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POSIX and Linux declarations under -std=c11 */
#endif
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_measure.h"
#include "walrus.h"

#define BENCH_MAX_THREADS 1024

typedef struct bench {
  const char *dir;       /* the log directory */
  uint64_t threads;      /* appending threads */
  double seconds;        /* timed run */
  uint64_t size;         /* payload bytes per entry */
  walrus_sync_t sync;    /* the log's policy */
  const char *sync_name; /* as given */
  int progress;          /* stderr is a terminal */
} bench_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s bench DIR [--threads N] [--seconds S] [--size BYTES]\n"
          "                    [--sync always|interval|none]\n"
          "\n"
          "Append entries from N threads for S seconds into a new log in\n"
          "DIR and report appends/s, MB/s and p50/p99/p99.9 latency.  DIR\n"
          "must be missing or empty; the log is left there afterwards.\n"
          "\n"
          "  --threads N    appending threads, 1..%d (default 1)\n"
          "  --seconds S    length of the run, decimals allowed (default 2)\n"
          "  --size BYTES   payload per entry; k, m, g suffixes (default\n"
          "                 4k, at most 16m)\n"
          "  --sync POLICY  always (default: durable before each append\n"
          "                 returns), interval or none\n"
          "  -h, --help     this text\n"
          "\n"
          "Exit: 0 done, 1 append or close failed, 2 usage error, 3 DIR\n"
          "cannot be created or opened, or is not empty.\n",
          cli_progname, BENCH_MAX_THREADS);
}

static int parse_args(int argc, char **argv, bench_t *b) {
  static const struct option longopts[] = {
      {"threads", required_argument, NULL, 't'},
      {"seconds", required_argument, NULL, 's'},
      {"size", required_argument, NULL, 'z'},
      {"sync", required_argument, NULL, 'y'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c, rc = 0;
  b->threads = 1;
  b->seconds = 2.0;
  b->size = 4096;
  b->sync = WALRUS_SYNC_ALWAYS;
  b->sync_name = "always";
  cli_opt_reset();
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
      case 't':
        rc = cli_parse_u64(optarg, "threads", &b->threads);
        if (rc == 0 && (b->threads < 1 || b->threads > BENCH_MAX_THREADS)) {
          cli_error("invalid threads '%s' (1..%d)", optarg, BENCH_MAX_THREADS);
          rc = 2;
        }
        break;
      case 's':
        rc = cli_parse_seconds(optarg, "seconds", &b->seconds);
        break;
      case 'z':
        rc = cli_parse_write_size(optarg, &b->size);
        break;
      case 'y':
        rc = cli_parse_sync(optarg, &b->sync);
        b->sync_name = optarg;
        break;
      case 'h':
        usage(stdout);
        return -1;
      default:
        return cli_bad_option("bench", c, optopt, argv, optind);
    }
    if (rc != 0) return rc;
  }
  if (optind >= argc) {
    cli_error("bench: a log directory is needed");
    fprintf(stderr, "Try '%s bench --help'.\n", cli_progname);
    return 2;
  }
  if (argc - optind > 1) {
    cli_error("bench: one directory only, not '%s' too", argv[optind + 1]);
    return 2;
  }
  b->dir = argv[optind];
  return 0;
}

/* DIR must be missing (then it is created, private, and *created set) or
 * an empty directory.  Returns 0, or 3 after saying why not. */
static int claim_dir(const char *dir, int *created) {
  struct stat st;
  *created = 0;
  if (mkdir(dir, 0700) == 0) {
    *created = 1;
    return 0;
  }
  if (errno != EEXIST) {
    cli_error("bench: cannot create %s: %s", dir, strerror(errno));
    return 3;
  }
  if (stat(dir, &st) != 0) {
    cli_error("bench: %s: %s", dir, strerror(errno));
    return 3;
  }
  if (!S_ISDIR(st.st_mode)) {
    cli_error("bench: %s: %s", dir, strerror(ENOTDIR));
    return 3;
  }
  DIR *d = opendir(dir);
  if (d == NULL) {
    cli_error("bench: cannot open %s: %s", dir, strerror(errno));
    return 3;
  }
  const char *found = NULL;
  struct dirent *de;
  errno = 0;
  while (found == NULL && (de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      found = de->d_name;
  int e = errno;
  if (found != NULL)
    cli_error("bench: %s is not empty (it holds %s): bench writes a new log "
              "and never into existing files; give a missing or empty "
              "directory",
              dir, found);
  else if (e != 0)
    cli_error("bench: cannot list %s: %s", dir, strerror(e));
  closedir(d);
  return found != NULL || e != 0 ? 3 : 0;
}

/* The progress line: redrawn in place on the terminal. */
static void progress_tick(void *ud, uint64_t ops, double seconds) {
  const bench_t *b = ud;
  fprintf(stderr, "\r%5.1f / %.1f s  %10llu appends  %10.0f/s", seconds,
          b->seconds, (unsigned long long)ops,
          seconds > 0 ? (double)ops / seconds : 0.0);
  fflush(stderr);
}

static void print_report(const bench_t *b, const cli_run_t *run,
                         const walrus_stats_t *st, uint64_t first,
                         uint64_t last) {
  double ops_s = run->seconds > 0 ? (double)run->ops / run->seconds : 0.0;
  printf("walrus %s bench\n", walrus_version_string());
  printf("log          %s\n", b->dir);
  printf("threads      %llu\n", (unsigned long long)b->threads);
  printf("entry bytes  %llu\n", (unsigned long long)b->size);
  printf("sync         %s\n", b->sync_name);
  printf("seconds      %.3f\n", run->seconds);
  printf("appends      %llu\n", (unsigned long long)run->ops);
  printf("ops/s        %.0f\n", ops_s);
  printf("MB/s         %.2f\n", ops_s * (double)b->size / 1e6);
  printf("latency us   p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
         (double)cli_hist_quantile(&run->hist, 0.50) / 1e3,
         (double)cli_hist_quantile(&run->hist, 0.99) / 1e3,
         (double)cli_hist_quantile(&run->hist, 0.999) / 1e3,
         (double)run->hist.max_ns / 1e3);
  printf("fsyncs       %llu (%.1f entries each)\n",
         (unsigned long long)st->fsyncs, st->entries_per_fsync);
  printf("entries      %llu (index %llu..%llu: 1 warm-up append and %llu "
         "timed)\n",
         (unsigned long long)(last >= first && last > 0 ? last - first + 1 : 0),
         (unsigned long long)first, (unsigned long long)last,
         (unsigned long long)run->ops);
  if (cli_stop_signal) printf("interrupted  yes\n");
}

int cli_bench(int argc, char **argv) {
  bench_t b;
  walrus_config_t cfg;
  walrus_stats_t st;
  walrus_t *w = NULL;
  char err[512];
  void *buf = NULL;
  cli_run_t *run = NULL;
  int rc, created;
  memset(&b, 0, sizeof b);
  rc = parse_args(argc, argv, &b);
  if (rc != 0) return rc < 0 ? 0 : rc;
  rc = claim_dir(b.dir, &created);
  if (rc != 0) return rc;

  buf = malloc((size_t)b.size);
  run = malloc(sizeof *run);
  if (buf == NULL || run == NULL) {
    cli_error("bench: %s", strerror(ENOMEM));
    rc = 1;
    goto done;
  }
  memset(buf, 'b', (size_t)b.size);
  walrus_config_default(&cfg);
  cfg.sync = b.sync;
  rc = walrus_open_ex(b.dir, &cfg, &w, err, sizeof err);
  if (rc != WALRUS_OK) {
    cli_error("bench: cannot open a log in %s: %s%s%s", b.dir,
              walrus_strerror(rc), err[0] ? ": " : "", err);
    if (created) rmdir(b.dir); /* only if the failed open left it empty */
    rc = 3;
    goto done;
  }
  cli_stop_install();
  b.progress = isatty(STDERR_FILENO);

  /* The warm-up: the first append creates the first segment (under sync
   * always, 64 MiB of zeros by default), which the run should not time. */
  walrus_entry_t e = {0};
  e.data = buf;
  e.len = (size_t)b.size;
  rc = walrus_append(w, &e, NULL);
  if (rc != WALRUS_OK) {
    cli_error("bench: append to %s: %s: %s", b.dir, walrus_strerror(rc),
              walrus_errmsg(w));
    rc = 1;
    goto close;
  }
  if (cli_append_run(w, (int)b.threads, buf, (size_t)b.size, b.seconds,
                     b.progress ? progress_tick : NULL, &b, run) != 0) {
    cli_error("bench: cannot start %llu threads: %s",
              (unsigned long long)b.threads, strerror(errno));
    rc = 1;
    goto close;
  }
  if (b.progress) fprintf(stderr, "\r\033[K");
  if (run->rc != WALRUS_OK) {
    cli_error("bench: append to %s: %s: %s", b.dir, walrus_strerror(run->rc),
              run->errmsg);
    rc = 1;
    goto close;
  }
  walrus_stats(w, &st);
  print_report(&b, run, &st, walrus_first_index(w), walrus_last_index(w));
  rc = 0;
close:;
  int crc = walrus_close(w);
  if (crc != WALRUS_OK) {
    cli_error("bench: close of %s: %s", b.dir, walrus_strerror(crc));
    rc = 1;
  }
done:
  free(buf);
  free(run);
  cli_stop_reraise();
  return rc;
}
