/*
 * crash_demo.c: walrus's promise, shown.
 *
 * A child process appends entries to a log, durably, and after each
 * append returns it tells the parent the index it was given.  The parent
 * kills the child with SIGKILL at a random moment, reopens the log, and
 * checks that every acknowledged entry is there with exactly its bytes and
 * that the indexes run without a gap.  Several rounds run on the same log,
 * each child continuing where recovery left the last one.
 *
 *   crash_demo [DIR] [ROUNDS]
 *
 * Exits 0 when nothing acknowledged was lost, 1 otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

/* The payload of entry index: a length and bytes that depend on index
 * alone, so the parent can check them without the child's help. */
static size_t payload(uint64_t index, unsigned char *buf, size_t cap) {
  uint64_t x = index * 0x9E3779B97F4A7C15ull;
  size_t len = 16 + (size_t)(x % 200);
  if (len > cap) len = cap;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)x;
  }
  return len;
}

static void die(const char *what, int rc, walrus_t *w) {
  fprintf(stderr, "crash_demo: %s: %s (%s)\n", what, walrus_strerror(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

/* The child: append until killed, reporting each acknowledged index. */
static void writer(const char *dir, int fd) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  unsigned char buf[256];
  walrus_config_default(&cfg);
  cfg.segment_bytes = 64 * 1024; /* small, so rotations happen too */
  int rc = walrus_open(dir, &cfg, &w);
  if (rc != WALRUS_OK) die("child open", rc, w);
  for (;;) {
    walrus_entry_t e = {0};
    uint64_t index = walrus_next_index(w);
    e.data = buf;
    e.len = payload(index, buf, sizeof buf);
    e.term = index;
    rc = walrus_append(w, &e, &index);
    if (rc != WALRUS_OK) die("child append", rc, w);
    if (write(fd, &index, sizeof index) != (ssize_t)sizeof index) _exit(1);
  }
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-demo-XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  int rounds = argc > 2 ? atoi(argv[2]) : 10;
  uint64_t acked_max = 0, total_acked = 0;
  unsigned char want[256];

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  printf("walrus %s crash demo in %s: %d rounds\n", walrus_version_string(),
         dir, rounds);
  for (int round = 1; round <= rounds; round++) {
    int p[2];
    if (pipe(p) != 0) {
      perror("pipe");
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      close(p[0]);
      writer(dir, p[1]);
    }
    close(p[1]);
    /* Let the child write for 20..220 ms, then kill it mid-flight. */
    struct timespec ts = {0, (20 + rand() % 200) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    uint64_t index, n = 0;
    while (read(p[0], &index, sizeof index) == (ssize_t)sizeof index) {
      if (index > acked_max) acked_max = index;
      n++;
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
    total_acked += n;

    /* Reopen, as the next process would, and check everything. */
    walrus_t *w = NULL;
    int rc = walrus_open(dir, NULL, &w);
    if (rc != WALRUS_OK) die("reopen", rc, w);
    uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
    if (last < acked_max) {
      fprintf(stderr, "LOST: acknowledged up to %llu, log ends at %llu\n",
              (unsigned long long)acked_max, (unsigned long long)last);
      return 1;
    }
    walrus_iter_t *it;
    walrus_entry_t e;
    uint64_t expect = first;
    rc = walrus_iter_open(w, 0, &it);
    if (rc != WALRUS_OK) die("iter_open", rc, w);
    while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
      size_t len = payload(e.index, want, sizeof want);
      if (e.index != expect || e.len != len || memcmp(e.data, want, len) != 0) {
        fprintf(stderr, "WRONG: entry %llu (expected %llu) differs\n",
                (unsigned long long)e.index, (unsigned long long)expect);
        return 1;
      }
      expect++;
    }
    if (rc != WALRUS_DONE) die("iter_next", rc, w);
    walrus_iter_close(it);
    if (expect != last + 1) {
      fprintf(stderr, "GAP: iteration stopped at %llu of %llu\n",
              (unsigned long long)expect, (unsigned long long)last);
      return 1;
    }
    printf("round %2d: killed after %5llu acknowledged appends; log holds "
           "%llu..%llu, all intact\n",
           round, (unsigned long long)n, (unsigned long long)first,
           (unsigned long long)last);
    rc = walrus_close(w);
    if (rc != WALRUS_OK) die("close", rc, NULL);
  }
  printf("%llu acknowledged appends across %d SIGKILLs: none lost\n",
         (unsigned long long)total_acked, rounds);
  return 0;
}
