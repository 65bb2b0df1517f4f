/*
 * cmd_probe.c: `walrus probe-fsync [DIR] [--seconds S] [--size BYTES]`.
 *
 * Measures, on the file system that holds DIR, how fast durable writes
 * can be made, the way PostgreSQL's pg_test_fsync does: each method runs
 * for S seconds, one write of BYTES at a time, and its operations per
 * second and p50/p99 latency go into one table.  The methods are the raw
 * system calls a log could use (write+fdatasync on a file that grows,
 * pwrite+fdatasync on a file filled with zeros beforehand, pwrite on a
 * descriptor opened O_DSYNC, write+fsync on a growing file) and walrus's
 * own durable appends (walrus_append under the default configuration,
 * whose policy is WALRUS_SYNC_ALWAYS) from 1, 4 and 16 threads.  The
 * report ends with the fastest method and what walrus's defaults use.
 *
 * All files live in a directory walrus-probe-XXXXXX that the probe creates
 * inside DIR and removes when it ends, also when SIGINT, SIGTERM or SIGHUP
 * stops it (the current test ends at its next operation, the directory is
 * removed, then the process dies of the signal).
 *
 * Exit: 0 done; 1 an I/O error during a test (named, with errno's text);
 * 2 usage; 3 DIR is missing or not a directory, or nothing can be created
 * in it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fdatasync, O_DSYNC, nftw, statfs, major() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cli.h"
#include "cli_measure.h"
#include "walrus.h"

#define MIB (1024ull * 1024ull)
/* The zero-filled file the prefilled methods overwrite, round and round. */
#define PROBE_PREFILL_BYTES (16 * MIB)

/* What one test row measures. */
typedef enum probe_method {
  WRITE_FDATASYNC,  /* write() at the end of a growing file, fdatasync() */
  PWRITE_FDATASYNC, /* pwrite() over a zero-filled file, fdatasync() */
  PWRITE_DSYNC,     /* pwrite() over a zero-filled file opened O_DSYNC */
  WRITE_FSYNC,      /* write() at the end of a growing file, fsync() */
  WALRUS_APPEND     /* walrus_append(), default configuration */
} probe_method_t;

typedef struct probe_test {
  const char *name;      /* the row's label */
  const char *file;      /* the file layout it writes */
  probe_method_t method; /* how it writes */
  int threads;           /* writers (walrus rows) */
} probe_test_t;

static const probe_test_t probe_tests[] = {
    {"write + fdatasync", "growing", WRITE_FDATASYNC, 1},
    {"pwrite + fdatasync", "prefilled", PWRITE_FDATASYNC, 1},
    {"pwrite, O_DSYNC", "prefilled", PWRITE_DSYNC, 1},
    {"write + fsync", "growing", WRITE_FSYNC, 1},
    {"walrus append, 1 thread", "walrus", WALRUS_APPEND, 1},
    {"walrus append, 4 threads", "walrus", WALRUS_APPEND, 4},
    {"walrus append, 16 threads", "walrus", WALRUS_APPEND, 16},
};
#define PROBE_NTESTS (sizeof probe_tests / sizeof probe_tests[0])

/* One row's result. */
typedef struct probe_row {
  uint64_t ops;            /* operations completed */
  double seconds;          /* time they took */
  uint64_t p50_ns, p99_ns; /* latency of one operation */
  double per_fsync;        /* walrus rows: entries per fdatasync */
  int done;                /* the test ran to its end */
} probe_row_t;

typedef struct probe {
  const char *dir; /* DIR as given */
  char tmp[4096];  /* DIR/walrus-probe-XXXXXX */
  double seconds;  /* per test */
  size_t size;     /* bytes per write */
  void *buf;       /* size bytes to write */
  cli_hist_t hist; /* latencies of the raw test running */
} probe_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s probe-fsync [DIR] [--seconds S] [--size BYTES]\n"
          "\n"
          "Measure durable writes on the file system holding DIR (default:\n"
          "the current directory): write+fdatasync on a growing file,\n"
          "pwrite+fdatasync on a zero-filled one, O_DSYNC writes,\n"
          "write+fsync, and walrus durable appends from 1, 4 and 16\n"
          "threads; operations per second and p50/p99 latency of each.\n"
          "The files live in a temporary directory inside DIR, removed at\n"
          "the end and on SIGINT.\n"
          "\n"
          "  --seconds S    seconds per test, decimals allowed (default 2)\n"
          "  --size BYTES   bytes per write; k, m, g suffixes (default 4k,\n"
          "                 at most 16m)\n"
          "  -h, --help     this text\n"
          "\n"
          "Exit: 0 done, 1 I/O error during a test, 2 usage error,\n"
          "3 DIR missing, not a directory or not writable.\n",
          cli_progname);
}

/* ---------------------------------------------------------------------
 * The file system holding DIR.
 * --------------------------------------------------------------------- */

static const char *magic_name(unsigned long magic) {
  switch (magic) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlay";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    case 0xCA451A4E:
      return "bcachefs";
    case 0x6969:
      return "nfs";
    case 0xFF534D42:
      return "cifs";
    case 0x65735546:
      return "fuse";
    case 0x01021997:
      return "9p";
    case 0x4D44:
      return "vfat";
    case 0x5346544E:
      return "ntfs";
    case 0x3153464A:
      return "jfs";
    case 0x52654973:
      return "reiserfs";
    default:
      return "unknown";
  }
}

/* The type and source of the mount whose device is dev, from
 * /proc/self/mountinfo (Linux); "" where it cannot be found. */
static void mount_of(dev_t dev, char *type, size_t tlen, char *src,
                     size_t slen) {
  char line[8192];
  FILE *f = fopen("/proc/self/mountinfo", "r");
  type[0] = src[0] = '\0';
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned maj, mnr;
    char fstype[256], source[4096];
    const char *sep = strstr(line, " - ");
    if (sscanf(line, "%*s %*s %u:%u", &maj, &mnr) != 2 || sep == NULL) continue;
    if (maj != major(dev) || mnr != minor(dev)) continue;
    if (sscanf(sep + 3, "%255s %4095s", fstype, source) != 2) continue;
    snprintf(type, tlen, "%s", fstype);
    snprintf(src, slen, "%s", source);
    break;
  }
  fclose(f);
}

static void print_file_system(const probe_t *p) {
  struct statfs sf;
  struct stat st;
  char type[256], src[4096];
  if (statfs(p->tmp, &sf) != 0 || stat(p->tmp, &st) != 0) {
    printf("file system  unknown (%s)\n", strerror(errno));
    return;
  }
  mount_of(st.st_dev, type, sizeof type, src, sizeof src);
  printf("file system  %s (statfs type 0x%lx, %s)", type[0] ? type : "?",
         (unsigned long)sf.f_type, magic_name((unsigned long)sf.f_type));
  if (src[0]) printf(" on %s", src);
  printf(", block %ld bytes\n", (long)sf.f_bsize);
}

/* ---------------------------------------------------------------------
 * Raw system-call tests.
 * --------------------------------------------------------------------- */

/* Write all n bytes at off (or at the file offset when off < 0). */
static int write_all(int fd, const void *buf, size_t n, off_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = off < 0 ? write(fd, (const char *)buf + done, n - done)
                        : pwrite(fd, (const char *)buf + done, n - done,
                                 off + (off_t)done);
    if (r < 0) return -1;
    if (r == 0) {
      errno = ENOSPC; /* no progress: what a full disk does */
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

/* Create path filled with zeros up to PROBE_PREFILL_BYTES (rounded up to
 * whole writes), made durable, the way walrus prefills a segment. */
static int prefill_file(const probe_t *p, const char *path) {
  uint64_t total = (PROBE_PREFILL_BYTES + p->size - 1) / p->size * p->size;
  static const char zeros[65536];
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    cli_error("probe-fsync: cannot create %s: %s", path, strerror(errno));
    return 3;
  }
  for (uint64_t off = 0; off < total; off += sizeof zeros) {
    size_t n =
        total - off < sizeof zeros ? (size_t)(total - off) : sizeof zeros;
    if (write_all(fd, zeros, n, -1) != 0) goto fail;
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  return 0;
fail:
  cli_error("probe-fsync: writing %s: %s", path, strerror(errno));
  if (fd >= 0) close(fd);
  return 1;
}

static int run_raw(probe_t *p, probe_method_t m, probe_row_t *row) {
  char path[4200];
  int prefilled = m == PWRITE_FDATASYNC || m == PWRITE_DSYNC;
  int flags = O_WRONLY | O_CLOEXEC, rc = 0;
  uint64_t span = (PROBE_PREFILL_BYTES + p->size - 1) / p->size * p->size;
  snprintf(path, sizeof path, "%s/%s", p->tmp,
           prefilled ? "prefilled" : "growing");
  if (prefilled) {
    rc = prefill_file(p, path);
    if (rc != 0) return rc;
    if (m == PWRITE_DSYNC) flags |= O_DSYNC;
  } else {
    flags |= O_CREAT | O_EXCL | O_APPEND;
  }
  int fd = open(path, flags, 0600);
  if (fd < 0) {
    cli_error("probe-fsync: cannot open %s: %s", path, strerror(errno));
    unlink(path);
    return 3;
  }
  cli_hist_init(&p->hist);
  uint64_t start = cli_now_ns(), end = start;
  uint64_t deadline = start + (uint64_t)(p->seconds * 1e9);
  uint64_t off = 0;
  const char *what = "write";
  while (!cli_stop_signal) {
    uint64_t t0 = cli_now_ns();
    if (write_all(fd, p->buf, p->size, prefilled ? (off_t)off : -1) != 0)
      goto fail;
    what = m == WRITE_FSYNC ? "fsync" : "fdatasync";
    if (m == WRITE_FSYNC && fsync(fd) != 0) goto fail;
    if ((m == WRITE_FDATASYNC || m == PWRITE_FDATASYNC) && fdatasync(fd) != 0)
      goto fail;
    what = "write";
    end = cli_now_ns();
    cli_hist_add(&p->hist, end - t0);
    off += p->size;
    if (off >= span) off = 0;
    if (end >= deadline) break;
  }
  row->ops = p->hist.count;
  row->seconds = (double)(end - start) / 1e9;
  row->done = !cli_stop_signal;
  if (close(fd) != 0) {
    fd = -1;
    what = "close";
    goto fail;
  }
  if (unlink(path) != 0) {
    cli_error("probe-fsync: cannot remove %s: %s", path, strerror(errno));
    return 1;
  }
  return 0;
fail:
  cli_error("probe-fsync: %s of %s: %s", what, path, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(path);
  return 1;
}

/* ---------------------------------------------------------------------
 * walrus appends.
 * --------------------------------------------------------------------- */

static int run_walrus(probe_t *p, int threads, probe_row_t *row) {
  char path[4200], err[512];
  walrus_t *w = NULL;
  walrus_stats_t before, after;
  cli_run_t *run = NULL;
  int rc;
  snprintf(path, sizeof path, "%s/log-%d", p->tmp, threads);
  rc = walrus_open_ex(path, NULL, &w, err, sizeof err);
  if (rc != WALRUS_OK) {
    cli_error("probe-fsync: cannot open a log in %s: %s%s%s", path,
              walrus_strerror(rc), err[0] ? ": " : "", err);
    return 3;
  }
  /* The first append creates (and prefills) the first segment: like the
   * raw tests' file setup, it is left out of the timing. */
  walrus_entry_t e = {0};
  e.data = p->buf;
  e.len = p->size;
  rc = walrus_append(w, &e, NULL);
  if (rc == WALRUS_OK) rc = walrus_stats(w, &before);
  if (rc != WALRUS_OK) {
    cli_error("probe-fsync: append to %s: %s: %s", path, walrus_strerror(rc),
              walrus_errmsg(w));
    walrus_close(w);
    return 1;
  }
  run = malloc(sizeof *run);
  if (run == NULL || cli_append_run(w, threads, p->buf, p->size, p->seconds,
                                    NULL, NULL, run) != 0) {
    cli_error("probe-fsync: cannot start %d threads: %s", threads,
              strerror(errno));
    free(run);
    walrus_close(w);
    return 1;
  }
  if (run->rc != WALRUS_OK) {
    cli_error("probe-fsync: append to %s: %s: %s", path,
              walrus_strerror(run->rc), run->errmsg);
    free(run);
    walrus_close(w);
    return 1;
  }
  walrus_stats(w, &after);
  rc = walrus_close(w);
  if (rc != WALRUS_OK) {
    cli_error("probe-fsync: close of %s: %s", path, walrus_strerror(rc));
    free(run);
    return 1;
  }
  row->ops = run->ops;
  row->seconds = run->seconds;
  row->p50_ns = cli_hist_quantile(&run->hist, 0.50);
  row->p99_ns = cli_hist_quantile(&run->hist, 0.99);
  row->done = !cli_stop_signal;
  if (after.fsyncs > before.fsyncs)
    row->per_fsync = (double)(after.entries - before.entries) /
                     (double)(after.fsyncs - before.fsyncs);
  free(run);
  return 0;
}

/* ---------------------------------------------------------------------
 * The report.
 * --------------------------------------------------------------------- */

static double rate(const probe_row_t *r) {
  return r->seconds > 0 ? (double)r->ops / r->seconds : 0.0;
}

static void print_row(const probe_test_t *t, const probe_row_t *r) {
  printf("%-27s %-9s %10.0f %10.1f %10.1f", t->name, t->file, rate(r),
         (double)r->p50_ns / 1e3, (double)r->p99_ns / 1e3);
  if (t->method == WALRUS_APPEND && r->per_fsync > 0)
    printf("  %.1f entries/fsync", r->per_fsync);
  if (!r->done) printf("  (interrupted)");
  printf("\n");
  fflush(stdout);
}

static const char *sync_name(walrus_sync_t sync) {
  switch (sync) {
    case WALRUS_SYNC_ALWAYS:
      return "always";
    case WALRUS_SYNC_INTERVAL:
      return "interval";
    case WALRUS_SYNC_NONE:
      return "none";
  }
  return "?";
}

/* Which is fastest, and what walrus's defaults use, from the config the
 * library itself reports. */
static void print_verdict(const probe_row_t *rows) {
  walrus_config_t cfg;
  size_t best = 0, best_raw = 0;
  size_t walrus1 = 0, layout = 0; /* walrus's own row, and its method's */
  walrus_config_default(&cfg);
  for (size_t i = 0; i < PROBE_NTESTS; i++) {
    if (probe_tests[i].method == PWRITE_FDATASYNC) layout = i;
    if (probe_tests[i].method == WALRUS_APPEND && probe_tests[i].threads == 1)
      walrus1 = i;
    if (rate(&rows[i]) > rate(&rows[best])) best = i;
    if (probe_tests[i].method != WALRUS_APPEND &&
        rate(&rows[i]) > rate(&rows[best_raw]))
      best_raw = i;
  }
  printf("\nfastest: %s (%.0f ops/s)\n", probe_tests[best].name,
         rate(&rows[best]));
  printf("fastest single raw writer: %s, %s file (%.0f ops/s)\n",
         probe_tests[best_raw].name, probe_tests[best_raw].file,
         rate(&rows[best_raw]));
  printf("walrus defaults: sync %s (%s after every write call, one\n"
         "                 shared by concurrent appenders), %llu MiB "
         "segments%s\n",
         sync_name(cfg.sync),
#if defined(__APPLE__)
         "fcntl F_FULLFSYNC",
#else
         "fdatasync",
#endif
         (unsigned long long)(cfg.segment_bytes / MIB),
         cfg.prefill_segments ? ",\n                 prefilled with zeros"
                              : "");
  if (cfg.prefill_segments && cfg.sync == WALRUS_SYNC_ALWAYS &&
      rate(&rows[layout]) > 0)
    printf("walrus, 1 thread, runs at %.2fx the %s row (the same "
           "layout)\n",
           rate(&rows[walrus1]) / rate(&rows[layout]),
           probe_tests[layout].name);
  /* Below 10% apart, one short run cannot tell two methods apart. */
  if (best_raw != layout && rate(&rows[layout]) > 0 &&
      rate(&rows[best_raw]) > 1.1 * rate(&rows[layout]))
    printf("note: in this run %s (%s) ran at %.2fx walrus's method\n",
           probe_tests[best_raw].name, probe_tests[best_raw].file,
           rate(&rows[best_raw]) / rate(&rows[layout]));
}

/* ---------------------------------------------------------------------
 * The command.
 * --------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int kind,
                        struct FTW *ftw) {
  (void)st;
  (void)kind;
  (void)ftw;
  if (remove(path) != 0) {
    cli_error("probe-fsync: cannot remove %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, probe_t *p) {
  static const struct option longopts[] = {
      {"seconds", required_argument, NULL, 's'},
      {"size", required_argument, NULL, 'z'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  uint64_t size = 4096;
  int c, rc;
  p->seconds = 2.0;
  cli_opt_reset();
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
      case 's':
        rc = cli_parse_seconds(optarg, "seconds", &p->seconds);
        if (rc != 0) return rc;
        break;
      case 'z':
        rc = cli_parse_write_size(optarg, &size);
        if (rc != 0) return rc;
        break;
      case 'h':
        usage(stdout);
        return -1;
      default:
        return cli_bad_option("probe-fsync", c, optopt, argv, optind);
    }
  }
  if (argc - optind > 1) {
    cli_error("probe-fsync: one directory at most, not '%s' too",
              argv[optind + 1]);
    return 2;
  }
  p->dir = optind < argc ? argv[optind] : ".";
  p->size = (size_t)size;
  return 0;
}

int cli_probe_fsync(int argc, char **argv) {
  probe_t p;
  probe_row_t rows[PROBE_NTESTS];
  struct stat st;
  int rc;
  memset(&p, 0, sizeof p);
  memset(rows, 0, sizeof rows);
  rc = parse_args(argc, argv, &p);
  if (rc != 0) return rc < 0 ? 0 : rc;

  if (stat(p.dir, &st) != 0) {
    cli_error("probe-fsync: %s: %s", p.dir, strerror(errno));
    return 3;
  }
  if (!S_ISDIR(st.st_mode)) {
    cli_error("probe-fsync: %s: %s", p.dir, strerror(ENOTDIR));
    return 3;
  }
  int n = snprintf(p.tmp, sizeof p.tmp, "%s/walrus-probe-XXXXXX", p.dir);
  if (n < 0 || (size_t)n >= sizeof p.tmp - 64) {
    cli_error("probe-fsync: %s: %s", p.dir, strerror(ENAMETOOLONG));
    return 3;
  }
  p.buf = malloc(p.size);
  if (p.buf == NULL) {
    cli_error("probe-fsync: %s", strerror(ENOMEM));
    return 1;
  }
  memset(p.buf, 'w', p.size);
  cli_stop_install();
  if (mkdtemp(p.tmp) == NULL) {
    cli_error("probe-fsync: cannot create a directory in %s: %s", p.dir,
              strerror(errno));
    free(p.buf);
    return 3;
  }

  printf("walrus %s probe-fsync\n", walrus_version_string());
  printf("directory    %s (removed at the end)\n", p.tmp);
  print_file_system(&p);
  printf("writes       %zu bytes, %.2f s per test\n\n", p.size, p.seconds);
  printf("%-27s %-9s %10s %10s %10s\n", "test", "file", "ops/s", "p50 us",
         "p99 us");
  fflush(stdout);

  size_t ran = 0;
  for (; ran < PROBE_NTESTS && rc == 0 && !cli_stop_signal; ran++) {
    const probe_test_t *t = &probe_tests[ran];
    if (t->method == WALRUS_APPEND) {
      rc = run_walrus(&p, t->threads, &rows[ran]);
    } else {
      rc = run_raw(&p, t->method, &rows[ran]);
      rows[ran].p50_ns = cli_hist_quantile(&p.hist, 0.50);
      rows[ran].p99_ns = cli_hist_quantile(&p.hist, 0.99);
    }
    if (rc == 0) print_row(t, &rows[ran]);
  }

  if (nftw(p.tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && rc == 0)
    rc = 1;
  free(p.buf);
  if (rc == 0 && !cli_stop_signal) print_verdict(rows);
  cli_stop_reraise();
  return rc;
}
