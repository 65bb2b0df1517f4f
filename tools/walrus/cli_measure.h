/*
 * cli_measure.h: what `walrus probe-fsync` and `walrus bench` share.
 *
 *  - a latency histogram of fixed size (log-linear: 16 buckets per power
 *    of two, so a percentile is within 1/16 of the true value), which one
 *    thread fills and others merge, so memory does not grow with the run;
 *  - the monotonic clock in nanoseconds;
 *  - timed durable appends from many threads, through the public API;
 *  - the --seconds and --size parsers, and a getopt reset;
 *  - the stop flag that SIGINT, SIGTERM and SIGHUP set, so a run ends its
 *    current operation, cleans up, and then dies of the signal;
 *  - the message for a bad command-line option.
 */
#ifndef WALRUS_CLI_MEASURE_H
#define WALRUS_CLI_MEASURE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "walrus.h"

/* Buckets: values below 16 ns have one each; above, each power of two
 * [2^e, 2^(e+1)) is cut into 16 equal buckets.  64-bit values need
 * 16 + 60 * 16 of them. */
#define CLI_HIST_SUB 16
#define CLI_HIST_BUCKETS (CLI_HIST_SUB + 60 * CLI_HIST_SUB)

typedef struct cli_hist {
  uint64_t count;                    /* values recorded */
  uint64_t min_ns;                   /* smallest value (UINT64_MAX: none) */
  uint64_t max_ns;                   /* largest value */
  uint64_t bucket[CLI_HIST_BUCKETS]; /* values per bucket */
} cli_hist_t;

void cli_hist_init(cli_hist_t *h);
void cli_hist_add(cli_hist_t *h, uint64_t ns);
void cli_hist_merge(cli_hist_t *dst, const cli_hist_t *src);

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding
 * the value of rank ceil(q * count), clamped to [min, max]; 0 when empty. */
uint64_t cli_hist_quantile(const cli_hist_t *h, double q);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cli_now_ns(void);

/* Parse a duration in seconds ("2", "0.2") into *out: 0 on success; on
 * anything but a number in (0, 86400] it prints "walrus: invalid <what>
 * '<s>'" and returns 2, the usage-error exit code. */
int cli_parse_seconds(const char *s, const char *what, double *out);

/* The largest write either command makes: walrus's default
 * max_entry_bytes, 16 MiB. */
#define CLI_MAX_WRITE_BYTES (16u * 1024u * 1024u)

/* Parse --size: cli_parse_size() and a range of 1..CLI_MAX_WRITE_BYTES.
 * 0, or 2 after a message. */
int cli_parse_write_size(const char *s, uint64_t *out);

/* Make the next getopt_long() scan a new argument vector from its start
 * (after main() or another subcommand scanned one). */
void cli_opt_reset(void);

/* Set by SIGINT, SIGTERM or SIGHUP once cli_stop_install() has run; which
 * signal it was, else 0. */
extern volatile sig_atomic_t cli_stop_signal;

/* Catch SIGINT, SIGTERM and SIGHUP into cli_stop_signal.  System calls
 * are restarted (SA_RESTART): every loop checks the flag between
 * operations, so none has to handle EINTR from a write or an fsync. */
void cli_stop_install(void);

/* If a signal stopped the run, die of it now (default action restored),
 * as a shell expects of an interrupted program.  Returns otherwise. */
void cli_stop_reraise(void);

/* The result of cli_append_run(). */
typedef struct cli_run {
  cli_hist_t hist;  /* latency of every timed append, all threads */
  uint64_t ops;     /* appends that returned WALRUS_OK */
  double seconds;   /* from the start to the last thread's end */
  int rc;           /* WALRUS_OK, or the first failed append's code */
  char errmsg[256]; /* walrus_errmsg() of that failure */
} cli_run_t;

/* Called about every 200 ms from the thread that called cli_append_run()
 * while the appenders run: appends done so far and seconds since the
 * start. */
typedef void (*cli_tick_fn)(void *ud, uint64_t ops, double seconds);

/* Append entries of len bytes of data to w from threads threads (1..1024)
 * for seconds, or until a signal sets cli_stop_signal or an append fails
 * (which stops them all).  Each thread times each of its appends.  tick,
 * if not NULL, reports progress.  Fills *out; returns 0, or -1 when the
 * threads or their histograms cannot be created (errno set). */
int cli_append_run(walrus_t *w, int threads, const void *data, size_t len,
                   double seconds, cli_tick_fn tick, void *ud, cli_run_t *out);

/* Report what getopt_long() returned for a bad option (c is '?' or ':')
 * of subcommand cmd, with a hint to its --help.  Returns 2. */
int cli_bad_option(const char *cmd, int c, int opt, char **argv, int index);

#endif /* WALRUS_CLI_MEASURE_H */
