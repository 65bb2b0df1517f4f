/*
 * cmd_tail.c: walrus tail: the last entries of a log and, with -f, every
 * new entry as soon as the writer has made it durable, from a read-only
 * open beside a writer in another process.  Rotation and truncate_front
 * need nothing; after a truncate_back or reset the handle is reopened.
 * SIGINT and SIGTERM end it cleanly (exit 0), as does a reader closing
 * the pipe.
 */
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus tail DIR [-n N] [-f] [--json]\n"
    "  The last N entries (default 10), as walrus dump prints them.\n"
    "  -f        then print every new entry once it is durable, until\n"
    "            interrupted; follows rotation, truncation and reset\n"
    "  --json    JSON lines\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* Follow from next until stopped; reopens after the writer rewrote the
 * log.  Returns the exit code. */
static int follow(const char *dir, walrus_t **wp, uint64_t next, int json) {
  walrus_t *w = *wp;
  walrus_iter_t *it = NULL;
  int rc = WALRUS_OK;
  while (!stop && !cli_out_failed()) {
    if (it == NULL) {
      uint64_t first = walrus_first_index(w), n = walrus_next_index(w);
      if (next > n) next = n; /* truncated back: go on from its end */
      if (first != 0 && next < first) next = first;
      rc = walrus_iter_open_follow(w, next, 200, &it);
      if (rc != WALRUS_OK) break;
    }
    walrus_entry_t e;
    rc = walrus_iter_next(it, &e);
    if (rc == WALRUS_OK) {
      cli_print_entry(&e, json, CLI_DATA_AUTO);
      next = e.index + 1;
      cli_flush();
      continue;
    }
    if (rc == WALRUS_ETIMEDOUT) continue;
    walrus_iter_close(it);
    it = NULL;
    if (rc == WALRUS_EINDEX) continue; /* truncate_front passed us */
    if (rc != WALRUS_ESTALE) break;
    /* The writer truncated back or reset: read the log anew. */
    walrus_close(w);
    *wp = w = NULL;
    int code = cli_open_read(dir, &w);
    if (code != CLI_OK) return code;
    *wp = w;
  }
  walrus_iter_close(it);
  if (stop || cli_out_failed() || rc == WALRUS_OK || rc == WALRUS_ETIMEDOUT)
    return CLI_OK;
  cli_error("%s: %s", dir, walrus_errmsg(w));
  return CLI_FAIL;
}

int cli_tail(int argc, char **argv) {
  static const struct option opts[] = {{"lines", required_argument, NULL, 'n'},
                                       {"follow", no_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  uint64_t count = 10;
  int follow_it = 0, json = 0, c, code;
  const char *dir;
  while ((c = cli_getopt(argc, argv, ":n:fjh", opts)) != -1) {
    switch (c) {
      case 'h':
        fputs(usage_text, stdout);
        return CLI_OK;
      case 'n':
        if (cli_parse_u64(optarg, "count", &count)) return CLI_USAGE;
        break;
      case 'f':
        follow_it = 1;
        break;
      case 'j':
        json = 1;
        break;
      default:
        return cli_usage(usage_text);
    }
  }
  if (cli_one_dir(argc, argv, &dir) != CLI_OK) return cli_usage(usage_text);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  walrus_t *w;
  if ((code = cli_open_read(dir, &w)) != CLI_OK) return code;
  uint64_t first = walrus_first_index(w), next = walrus_next_index(w);
  uint64_t from = next;
  if (first != 0) from = next - first > count ? next - count : first;
  int rc = WALRUS_OK;
  if (from < next) {
    walrus_iter_t *it = NULL;
    walrus_entry_t e;
    rc = walrus_iter_open(w, from, &it);
    while (rc == WALRUS_OK && !cli_out_failed() &&
           (rc = walrus_iter_next(it, &e)) == WALRUS_OK && e.index < next)
      cli_print_entry(&e, json, CLI_DATA_AUTO);
    if (rc == WALRUS_DONE) rc = WALRUS_OK;
    walrus_iter_close(it);
  }
  if (rc != WALRUS_OK) {
    cli_error("%s: %s", dir, walrus_errmsg(w));
    walrus_close(w);
    return cli_out_end(CLI_FAIL);
  }
  code = CLI_OK;
  if (follow_it) {
    cli_flush();
    code = follow(dir, &w, next, json);
  }
  walrus_close(w);
  return cli_out_end(code);
}
