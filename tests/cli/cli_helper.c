/*
 * cli_helper.c: the writer side of the walrus command's tests
 * (test_cli.sh), using the public API only.
 *
 *   cli_helper make DIR N [SEGMENT_BYTES]
 *       a new log of N entries with fixed timestamps (so the command's
 *       output is exact): entry i has term i/10 + 1, type i % 3, data
 *       "entry-<i>", time 2023-11-14T22:13:20Z + i ms; every seventh
 *       entry from 5 on belongs to transaction "tx_demo"
 *   cli_helper make-zstd DIR N [SEGMENT_BYTES]
 *       the same entries, written in batches of 10 with zstd compression
 *       (compress_min_bytes 0); exits 3 in a build without zstd
 *   cli_helper hold DIR
 *       open DIR for writing, print "locked", and keep the lock until
 *       standard input ends
 *   cli_helper write DIR
 *       for the tail -f test: append "live-<n>" for each line of standard
 *       input ("rotate": fill the segment past 4 KiB first; "front N":
 *       truncate_front(N)), printing each index once durable
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walrus.h"

static void check(int rc, walrus_t *w, const char *what) {
  if (rc != WALRUS_OK) {
    fprintf(stderr, "cli_helper: %s: %s (%s)\n", what, walrus_strerror(rc),
            w ? walrus_errmsg(w) : "");
    exit(1);
  }
}

static walrus_t *open_log(const char *dir, uint64_t segment_bytes, int zstd) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  char msg[256];
  walrus_config_default(&cfg);
  if (segment_bytes) cfg.segment_bytes = segment_bytes;
  if (zstd) {
    cfg.compression = WALRUS_COMPRESSION_ZSTD;
    cfg.compress_min_bytes = 0;
  }
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc == WALRUS_ENOTSUP && zstd) {
    fprintf(stderr, "cli_helper: %s\n", msg);
    exit(3);
  }
  if (rc != WALRUS_OK) {
    fprintf(stderr, "cli_helper: open %s: %s\n", dir, msg);
    exit(1);
  }
  return w;
}

/* Entries 1..n as above, in units of batch. */
static int make(const char *dir, uint64_t n, uint64_t segment_bytes, int zstd) {
  walrus_t *w = open_log(dir, segment_bytes, zstd);
  size_t batch = zstd ? 10 : 1;
  for (uint64_t i = 1; i <= n; i += batch) {
    char data[10][32];
    walrus_entry_t e[10];
    size_t k = 0;
    for (; k < batch && i + k <= n; k++) {
      uint64_t j = i + k;
      int len = snprintf(data[k], sizeof data[k], "entry-%llu",
                         (unsigned long long)j);
      walrus_entry_t x = {.term = j / 10 + 1,
                          .type = (uint16_t)(j % 3),
                          .timestamp_ns =
                              1700000000000000000 + (int64_t)j * 1000000,
                          .tx_id = j % 7 == 5 ? "tx_demo" : NULL,
                          .data = data[k],
                          .len = (size_t)len};
      e[k] = x;
    }
    check(walrus_write_batch(w, e, k, NULL), w, "append");
  }
  check(walrus_close(w), NULL, "close");
  return 0;
}

static int hold(const char *dir) {
  walrus_t *w = open_log(dir, 0, 0);
  printf("locked\n");
  fflush(stdout);
  while (getchar() != EOF) {
  }
  check(walrus_close(w), NULL, "close");
  return 0;
}

static int write_live(const char *dir) {
  walrus_t *w = open_log(dir, 4096, 0);
  char line[64];
  unsigned long n = 0;
  while (fgets(line, sizeof line, stdin) != NULL) {
    uint64_t idx = 0;
    if (strncmp(line, "front ", 6) == 0) {
      check(walrus_truncate_front(w, strtoull(line + 6, NULL, 10)), w,
            "truncate_front");
      printf("front\n");
    } else {
      if (strncmp(line, "rotate", 6) == 0) {
        static char pad[1024];
        memset(pad, 'p', sizeof pad);
        walrus_entry_t e = {.data = pad, .len = sizeof pad};
        for (int i = 0; i < 5; i++) check(walrus_append(w, &e, NULL), w, "pad");
      }
      char data[32];
      int len = snprintf(data, sizeof data, "live-%lu", ++n);
      walrus_entry_t e = {.term = 1, .data = data, .len = (size_t)len};
      check(walrus_append(w, &e, &idx), w, "append");
      printf("%llu\n", (unsigned long long)idx);
    }
    fflush(stdout);
  }
  check(walrus_close(w), NULL, "close");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 &&
      (strcmp(argv[1], "make") == 0 || strcmp(argv[1], "make-zstd") == 0))
    return make(argv[2], strtoull(argv[3], NULL, 10),
                argc > 4 ? strtoull(argv[4], NULL, 10) : 0,
                strcmp(argv[1], "make-zstd") == 0);
  if (argc == 3 && strcmp(argv[1], "hold") == 0) return hold(argv[2]);
  if (argc == 3 && strcmp(argv[1], "write") == 0) return write_live(argv[2]);
  fprintf(stderr, "usage: cli_helper make|make-zstd DIR N [SEGMENT_BYTES] | "
                  "hold DIR | write DIR\n");
  return 2;
}
