/*
 * truncate_checkpoint.c: Truncate and segment management, as in the Go
 * library walrus (github l00pss/walrus).
 *
 * With 4 KiB segments a few dozen entries already fill several segment
 * files.  The log then plays a Raft follower:
 *
 *   1. a conflict: the leader's entry 61 has another term, so everything
 *      from 61 on is dropped (walrus_truncate_back(60)) and the leader's
 *      entries are appended in its place;
 *   2. a checkpoint: a snapshot covers entries up to 45, so they are
 *      dropped from the front (walrus_truncate_front(46)) and whole
 *      segments below 46 are deleted;
 *   3. retention: reopened with max_segments = 3, the log moves its first
 *      index forward as it rotates, but never past an open iterator.
 *
 * After each step it prints the first and last index and the segment files
 * (named by their first index), and checks every entry's index and term.
 *
 *   truncate_checkpoint [DIR]   DIR must hold no log yet; default: a fresh
 *                               /tmp/walrus-trunc-XXXXXX, removed at the end.
 *
 * Exits 0 when every check holds, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walrus.h"

static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "truncate_checkpoint: %s: %s (%s)\n", what,
          walrus_strerror(rc), w ? walrus_errmsg(w) : "");
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "truncate_checkpoint: FAILED: %s\n", what);
  exit(1);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

static walrus_t *open_log(const char *dir, uint32_t max_segments) {
  walrus_config_t cfg;
  char msg[256] = "";
  walrus_t *w = NULL;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096; /* the smallest allowed */
  cfg.max_segments = max_segments;
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    fprintf(stderr, "truncate_checkpoint: open %s: %s (%s)\n", dir,
            walrus_strerror(rc), msg);
    exit(1);
  }
  return w;
}

/* Append entries up to index last, all of one term; the payload names
 * both, so that verify() can tell a misplaced entry. */
static void append_upto(walrus_t *w, uint64_t last, uint64_t term) {
  char buf[200];
  while (walrus_next_index(w) <= last) {
    memset(buf, '.', sizeof buf);
    int n = snprintf(buf, sizeof buf, "term=%llu index=%llu ",
                     (unsigned long long)term,
                     (unsigned long long)walrus_next_index(w));
    buf[n] = '.';
    walrus_entry_t e = {.term = term, .data = buf, .len = sizeof buf};
    check(w, walrus_append(w, &e, NULL), "append");
  }
}

/* Every entry from first to last is there, in place, with its term. */
static void verify(walrus_t *w) {
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  unsigned long long term, index;
  uint64_t expect = walrus_first_index(w);
  int rc;
  check(w, walrus_iter_open(w, 0, &it), "iter_open");
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)(e.len < 63 ? e.len : 63),
             (const char *)e.data);
    if (sscanf(text, "term=%llu index=%llu", &term, &index) != 2 ||
        e.index != expect || index != e.index || term != e.term)
      fail("an entry is out of place");
    expect++;
  }
  if (rc != WALRUS_DONE) check(w, rc, "iter_next");
  walrus_iter_close(it);
  if (expect != walrus_last_index(w) + 1) fail("entries are missing");
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Print the log's range and its segment files, by first index. */
static size_t show(walrus_t *w, const char *dir, const char *label) {
  uint64_t seg[256];
  size_t n = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  if (d == NULL) {
    perror(dir);
    exit(1);
  }
  while ((de = readdir(d)) != NULL && n < 256) {
    size_t len = strlen(de->d_name);
    if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
      seg[n++] = strtoull(de->d_name, NULL, 10);
  }
  closedir(d);
  qsort(seg, n, sizeof seg[0], cmp_u64);
  verify(w);
  printf("%-36s first %3llu last %3llu, %zu segment files:", label,
         (unsigned long long)walrus_first_index(w),
         (unsigned long long)walrus_last_index(w), n);
  for (size_t i = 0; i < n; i++) printf(" %llu", (unsigned long long)seg[i]);
  printf("\n");
  return n;
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-trunc-XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  walrus_entry_t e;

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("walrus %s truncation demo in %s (4 KiB segments, 200-byte "
         "entries)\n", walrus_version_string(), dir);
  walrus_t *w = open_log(dir, 0);
  if (walrus_last_index(w) != 0) fail("DIR already holds a log");
  append_upto(w, 50, 1);
  append_upto(w, 80, 2);
  show(w, dir, "appended 1..50 term 1, ..80 term 2");

  /* 1. Raft conflict: our entry 61 is term 2, the leader's is term 3. */
  check(w, walrus_truncate_back(w, 60), "truncate_back");
  show(w, dir, "truncate_back(60)");
  append_upto(w, 70, 3);
  check(w, walrus_get(w, 61, &e), "get 61");
  uint64_t term61 = e.term;
  walrus_entry_free(&e);
  if (term61 != 3) fail("entry 61 is not the leader's");
  show(w, dir, "leader's 61..70 term 3 appended");

  /* 2. Checkpoint: a snapshot holds the state through entry 45. */
  check(w, walrus_truncate_front(w, 46), "truncate_front");
  show(w, dir, "snapshot at 45, truncate_front(46)");
  int rc = walrus_get(w, 45, &e);
  if (rc != WALRUS_EINDEX) fail("entry 45 is still readable");
  printf("  get(45) now returns %s\n", walrus_errname(rc));
  check(w, walrus_close(w), "close");

  /* 3. Retention: at most 3 segments, except what an iterator needs. */
  w = open_log(dir, 3);
  show(w, dir, "reopened with max_segments = 3");
  walrus_iter_t *it = NULL;
  check(w, walrus_iter_open(w, 0, &it), "iter_open");
  append_upto(w, 130, 3);
  size_t held = show(w, dir, "iterator open at 46, appended ..130");
  walrus_iter_close(it);
  append_upto(w, 170, 3);
  size_t after = show(w, dir, "iterator closed, appended ..170");
  if (held <= 3 || after > 3) fail("retention did not behave");
  check(w, walrus_close(w), "close");
  if (argc <= 1 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return 0;
}
