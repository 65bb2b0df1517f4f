/*
 * make_golden.c: writes the golden log of the current format version.
 *
 * Usage: make_golden OUTDIR
 *
 * OUTDIR must not exist yet.  The entries come from golden_data.h; see
 * tests/golden/README.md for how tests/golden/v1/ was made.  A checked-in
 * golden log is never regenerated: it is what older versions wrote, and
 * every later version must still read it identically.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "golden_data.h"
#include "walrus.h"

static int check(int rc, walrus_t *w, const char *what) {
  if (rc != WALRUS_OK) {
    fprintf(stderr, "make_golden: %s: %s: %s\n", what, walrus_errname(rc),
            w ? walrus_errmsg(w) : "");
    exit(1);
  }
  return rc;
}

/* Counts OUTDIR's *.seg files and whether the first segment is there. */
static size_t count_segments(const char *dir, int *has_first) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    perror(dir);
    exit(1);
  }
  size_t n = 0;
  struct dirent *de;
  *has_first = 0;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0) n++;
    if (strcmp(de->d_name, "00000000000000000001.seg") == 0) *has_first = 1;
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  struct stat st;
  if (stat(dir, &st) == 0) {
    fprintf(stderr, "make_golden: %s exists; refusing to overwrite\n", dir);
    return 2;
  }
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = GOLDEN_SEGMENT_BYTES;
  walrus_t *w = NULL;
  check(walrus_open(dir, &cfg, &w), NULL, "open");

  static unsigned char bufs[32][GOLDEN_MAX_LEN];
  static char txids[32][32];
  uint64_t i = 1;
  while (i <= GOLDEN_LAST) {
    size_t n = golden_batch(i);
    size_t count = n ? n : 1;
    walrus_entry_t es[32];
    for (size_t k = 0; k < count; k++) {
      uint64_t idx = i + k;
      memset(&es[k], 0, sizeof es[k]);
      es[k].term = golden_term(idx);
      es[k].type = golden_type(idx);
      es[k].timestamp_ns = golden_timestamp(idx);
      es[k].tx_id = golden_txid(idx, txids[k]);
      golden_fill(idx, bufs[k]);
      es[k].data = bufs[k];
      es[k].len = golden_len(idx);
    }
    uint64_t got = 0;
    if (n)
      check(walrus_write_batch(w, es, n, &got), w, "write_batch");
    else
      check(walrus_append(w, &es[0], &got), w, "append");
    if (got != i) {
      fprintf(stderr, "make_golden: entry got index %llu, want %llu\n",
              (unsigned long long)got, (unsigned long long)i);
      return 1;
    }
    i += count;
  }
  check(walrus_truncate_front(w, GOLDEN_FIRST), w, "truncate_front");
  if (walrus_first_index(w) != GOLDEN_FIRST ||
      walrus_last_index(w) != GOLDEN_LAST) {
    fprintf(stderr, "make_golden: log holds %llu..%llu\n",
            (unsigned long long)walrus_first_index(w),
            (unsigned long long)walrus_last_index(w));
    return 1;
  }
  check(walrus_close(w), NULL, "close");

  int has_first;
  size_t nseg = count_segments(dir, &has_first);
  if (has_first || nseg < 3) {
    fprintf(stderr,
            "make_golden: want the first segment dropped and at least 3 "
            "left; have %zu segments%s\n",
            nseg, has_first ? ", the first still there" : "");
    return 1;
  }
  printf("make_golden: %s: entries %u..%u in %zu segments (%s)\n", dir,
         GOLDEN_FIRST, GOLDEN_LAST, nseg, walrus_version_string());
  return 0;
}
