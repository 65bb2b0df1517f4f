/*
 * follow_tail.c: following a live log from another process, like tail -f.
 *
 * The parent forks a writer that appends entries (durably, in batches, with
 * rotation) and exits.  The parent opens the same directory read-only and
 * reads with a follow iterator: every walrus_iter_next() returns the next
 * entry once the writer has made it durable, or waits for it.  It checks
 * that it saw every entry, in order, with the bytes the writer wrote, and
 * then borrows a few entries with zero-copy views.
 *
 *   follow_tail [DIR] [ENTRIES]     (default: a fresh /tmp/walrus-follow-*
 *                                    directory, removed at the end; 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

#define BATCH 10

static void die(const char *what, int rc, walrus_t *w) {
  fprintf(stderr, "follow_tail: %s: %s (%s)\n", what, walrus_errname(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static int payload(uint64_t index, char *buf, size_t cap) {
  return snprintf(buf, cap, "event %llu: the walrus is following",
                  (unsigned long long)index);
}

/* The writer: ENTRIES entries in batches, a short pause between them. */
static void writer(const char *dir, uint64_t n) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 16384; /* rotate often */
  int rc = walrus_open(dir, &cfg, &w);
  if (rc != WALRUS_OK) die("writer open", rc, NULL);
  char bufs[BATCH][64];
  walrus_entry_t e[BATCH];
  for (uint64_t i = 1; i <= n; i += BATCH) {
    size_t k = 0;
    for (; k < BATCH && i + k <= n; k++) {
      memset(&e[k], 0, sizeof e[k]);
      e[k].data = bufs[k];
      e[k].len = (size_t)payload(i + k, bufs[k], sizeof bufs[k]);
    }
    rc = walrus_write_batch(w, e, k, NULL);
    if (rc != WALRUS_OK) die("write_batch", rc, w);
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
  }
  rc = walrus_close(w);
  if (rc != WALRUS_OK) die("writer close", rc, NULL);
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-follow-XXXXXX";
  char path[4096];
  const char *dir = argc > 1 ? argv[1] : NULL;
  uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000;
  if (dir == NULL) {
    if (mkdtemp(tmpl) == NULL) return 1;
    snprintf(path, sizeof path, "%s/log", tmpl);
    dir = path;
  }

  /* Create the log first, so that the follower can open it at once. */
  walrus_t *w = NULL;
  int rc = walrus_open(dir, NULL, &w);
  if (rc != WALRUS_OK) die("create", rc, NULL);
  walrus_close(w);

  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    writer(dir, n);
    _exit(0);
  }

  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  cfg.zero_copy = 1;
  rc = walrus_open(dir, &cfg, &w);
  if (rc != WALRUS_OK) die("follower open", rc, NULL);
  walrus_iter_t *it = NULL;
  rc = walrus_iter_open_follow(w, 0, 5000, &it);
  if (rc != WALRUS_OK) die("iter_open_follow", rc, w);
  uint64_t seen = 0;
  while (seen < n) {
    walrus_entry_t e;
    char want[64];
    rc = walrus_iter_next(it, &e);
    if (rc != WALRUS_OK) die("follow", rc, w);
    int len = payload(seen + 1, want, sizeof want);
    if (e.index != seen + 1 || e.len != (size_t)len ||
        memcmp(e.data, want, e.len) != 0) {
      fprintf(stderr, "follow_tail: entry %llu is wrong\n",
              (unsigned long long)e.index);
      return 1;
    }
    seen++;
    if (seen % 500 == 0)
      printf("followed %llu entries (durable index %llu)\n",
             (unsigned long long)seen,
             (unsigned long long)walrus_durable_index(w));
  }
  walrus_iter_close(it);

  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;

  /* Zero-copy reads of what was followed: borrowed, checksum verified. */
  walrus_view_t v[3];
  size_t got = 0;
  rc = walrus_get_range_view(w, 1, n, 3, 0, v, &got);
  if (rc != WALRUS_OK) die("get_range_view", rc, w);
  for (size_t i = 0; i < got; i++) {
    printf("view %llu: %.*s\n", (unsigned long long)v[i].entry.index,
           (int)v[i].entry.len, (const char *)v[i].entry.data);
    walrus_view_release(&v[i]);
  }
  walrus_close(w);
  if (argc <= 1) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0) return 1;
  }
  printf("follow_tail: followed all %llu entries of a writer in another "
         "process, in order\n",
         (unsigned long long)n);
  return 0;
}
