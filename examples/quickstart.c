/*
 * quickstart.c: the first example of the Go library walrus (github
 * l00pss/walrus), in C: open a log that keeps at most ten 1 MiB segments,
 * write two entries in one transaction, and read each index back.
 *
 *   quickstart [DIR]   default /tmp/walrus-quickstart (kept, so that a
 *                      second run appends after the first)
 *
 * Every call's result is checked; exits 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>

#include "walrus.h"

/* Print the failure, with the handle's message naming what failed. */
static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "quickstart: %s: %s (%s)\n", what, walrus_strerror(rc),
          w != NULL ? walrus_errmsg(w) : "");
  exit(1);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp/walrus-quickstart";
  walrus_config_t cfg;
  walrus_t *w = NULL;
  char msg[256] = "";

  walrus_config_default(&cfg); /* fdatasync before every write returns */
  cfg.segment_bytes = 1 << 20;
  cfg.cached_segments = 4;
  cfg.max_segments = 10;
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    fprintf(stderr, "quickstart: open %s: %s (%s)\n", dir, walrus_strerror(rc),
            msg);
    return 1;
  }

  /* A transaction: nothing reaches the log until it commits, and then all
   * of it does, atomically, at contiguous indexes. */
  walrus_txid_t tx;
  check(w, walrus_tx_begin(w, 30000, &tx), "tx_begin");
  walrus_entry_t e1 = {.data = "user operation 1", .len = 16};
  walrus_entry_t e2 = {.data = "user operation 2", .len = 16};
  check(w, walrus_tx_add(w, &tx, &e1), "tx_add");
  check(w, walrus_tx_add(w, &tx, &e2), "tx_add");
  uint64_t first = 0;
  size_t count = 0;
  check(w, walrus_tx_commit(w, &tx, &first, &count), "tx_commit");

  /* Each entry read back, checked against its CRC32C, owned by us. */
  for (uint64_t idx = first; idx < first + count; idx++) {
    walrus_entry_t got;
    check(w, walrus_get(w, idx, &got), "get");
    printf("Entry %llu: %.*s (%s)\n", (unsigned long long)idx, (int)got.len,
           (const char *)got.data, got.tx_id);
    walrus_entry_free(&got);
  }
  printf("the log in %s holds entries %llu..%llu\n", dir,
         (unsigned long long)walrus_first_index(w),
         (unsigned long long)walrus_last_index(w));
  check(w, walrus_close(w), "close");
  return 0;
}
