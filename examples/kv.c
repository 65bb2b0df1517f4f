/*
 * kv.c: a small key-value store kept in memory and made durable by a
 * walrus log, the way a database uses its write-ahead log.
 *
 * A put is appended to the log (durable when walrus_append returns under
 * SYNC_ALWAYS) and then applied to the table.  On start the table is
 * rebuilt: the last checkpoint is loaded, then every entry after the index
 * it covers is replayed.  Every 200 puts (40 in the crash test) the table is
 * written to a checkpoint file (written beside, fdatasync'ed, renamed into
 * place, directory fsync'ed), and walrus_truncate_front drops the entries it
 * covers, so the log stays short.
 *
 *   kv [DIR]                 put, get, checkpoint, reopen, show the rebuild
 *   kv --crash-test ROUNDS [DIR]
 *                            each round a child puts keys until it SIGKILLs
 *                            itself at a random moment (mid-append,
 *                            mid-checkpoint, ...), telling the parent each
 *                            put acknowledged; the parent rebuilds the
 *                            store and checks every acknowledged put is
 *                            there
 *
 * DIR (default a fresh /tmp/walrus-kv-XXXXXX, removed at the end) holds
 * log/ (the walrus log) and checkpoint.  Exits 0 when every check held.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

enum { SLOTS = 1024, KEY_MAX = 64, VAL_MAX = 128 };

typedef struct kv_s {
  char keys[SLOTS][KEY_MAX], vals[SLOTS][VAL_MAX]; /* "" key: empty slot */
  walrus_t *log;
  char dir[4096];
  unsigned puts;  /* since the last checkpoint */
  unsigned every; /* checkpoint after this many puts */
} kv_t;

static void die(kv_t *kv, int rc, const char *what) {
  fprintf(stderr, "kv: %s: %s (%s)\n", what, walrus_strerror(rc),
          kv != NULL && kv->log != NULL ? walrus_errmsg(kv->log) : "");
  exit(1);
}

static void die_errno(const char *what, const char *path) {
  fprintf(stderr, "kv: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

/* The slot of key: where it is, or the empty one where it would go. */
static size_t slot_of(kv_t *kv, const char *key) {
  size_t h = 5381;
  for (const char *p = key; *p; p++) h = h * 33 + (unsigned char)*p;
  for (size_t i = 0; i < SLOTS; i++) {
    size_t s = (h + i) % SLOTS;
    if (kv->keys[s][0] == '\0' || strcmp(kv->keys[s], key) == 0) return s;
  }
  fprintf(stderr, "kv: table full\n");
  exit(1);
}

/* Keys and values longer than the table holds are cut (put refuses
 * them). */
static void apply(kv_t *kv, const char *key, const char *val) {
  size_t s = slot_of(kv, key);
  snprintf(kv->keys[s], KEY_MAX, "%.*s", KEY_MAX - 1, key);
  snprintf(kv->vals[s], VAL_MAX, "%.*s", VAL_MAX - 1, val);
}

static const char *get(kv_t *kv, const char *key) {
  size_t s = slot_of(kv, key);
  return kv->keys[s][0] != '\0' ? kv->vals[s] : NULL;
}

/* An entry's data is "key=value". */
static void apply_entry(kv_t *kv, const walrus_entry_t *e) {
  char line[KEY_MAX + VAL_MAX + 2];
  snprintf(line, sizeof line, "%.*s", (int)e->len, (const char *)e->data);
  char *eq = strchr(line, '=');
  if (eq == NULL) {
    fprintf(stderr, "kv: entry %llu is not key=value\n",
            (unsigned long long)e->index);
    exit(1);
  }
  *eq = '\0';
  apply(kv, line, eq + 1);
}

/* The checkpoint: first line the last index it covers, then key value. */
static void checkpoint(kv_t *kv) {
  char path[4200], tmp[4200];
  snprintf(path, sizeof path, "%s/checkpoint", kv->dir);
  snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", kv->dir);
  uint64_t covered = walrus_last_index(kv->log);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) die_errno("create", tmp);
  fprintf(f, "%llu\n", (unsigned long long)covered);
  for (size_t s = 0; s < SLOTS; s++)
    if (kv->keys[s][0] != '\0') fprintf(f, "%s %s\n", kv->keys[s], kv->vals[s]);
  if (fflush(f) != 0 || fdatasync(fileno(f)) != 0) die_errno("write", tmp);
  if (fclose(f) != 0) die_errno("close", tmp);
  if (rename(tmp, path) != 0) die_errno("rename", tmp);
  int d = open(kv->dir, O_RDONLY | O_DIRECTORY);
  if (d < 0 || fsync(d) != 0) die_errno("fsync", kv->dir);
  close(d);
  /* Only now is the log's prefix no longer needed. */
  int rc = walrus_truncate_front(kv->log, covered + 1);
  if (rc != WALRUS_OK) die(kv, rc, "truncate_front");
  kv->puts = 0;
}

static void put(kv_t *kv, const char *key, const char *val) {
  char data[KEY_MAX + VAL_MAX + 2];
  if (strlen(key) >= KEY_MAX || strlen(val) >= VAL_MAX || strchr(key, '=') ||
      strpbrk(key, " \n") || strpbrk(val, " \n")) {
    fprintf(stderr, "kv: put %s: key or value too long or not a word\n", key);
    exit(2);
  }
  int n = snprintf(data, sizeof data, "%s=%s", key, val);
  walrus_entry_t e = {.type = 1, .data = data, .len = (size_t)n};
  int rc = walrus_append(kv->log, &e, NULL);
  if (rc != WALRUS_OK) die(kv, rc, "append");
  apply(kv, key, val);
  if (++kv->puts == kv->every) checkpoint(kv);
}

/* Open: load the checkpoint, replay the log after what it covers. */
static kv_t *kv_open(const char *dir, unsigned every) {
  kv_t *kv = calloc(1, sizeof *kv);
  char path[4200], key[KEY_MAX], val[VAL_MAX];
  unsigned long long covered = 0;
  if (kv == NULL) die(NULL, WALRUS_ENOMEM, "calloc");
  snprintf(kv->dir, sizeof kv->dir, "%s", dir);
  kv->every = every;
  snprintf(path, sizeof path, "%s/checkpoint", dir);
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%llu", &covered) != 1) die_errno("read", path);
    while (fscanf(f, "%63s %127s", key, val) == 2) apply(kv, key, val);
    fclose(f);
  } else if (errno != ENOENT) {
    die_errno("open", path);
  }
  snprintf(path, sizeof path, "%s/log", dir);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 64 << 10;
  int rc = walrus_open(path, &cfg, &kv->log);
  if (rc != WALRUS_OK) die(NULL, rc, path);
  walrus_iter_t *it;
  uint64_t from = covered + 1 > walrus_first_index(kv->log)
                      ? covered + 1
                      : walrus_first_index(kv->log);
  if (walrus_next_index(kv->log) > from) {
    if ((rc = walrus_iter_open(kv->log, from, &it)) != WALRUS_OK)
      die(kv, rc, "iter_open");
    walrus_entry_t e;
    while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) apply_entry(kv, &e);
    walrus_iter_close(it);
    if (rc != WALRUS_DONE) die(kv, rc, "replay");
  }
  return kv;
}

static void kv_close(kv_t *kv) {
  int rc = walrus_close(kv->log);
  if (rc != WALRUS_OK) die(NULL, rc, "close");
  free(kv);
}

/* ---- the crash test ---- */

/* Keys repeat only after KEYS puts, far more than one checkpoint's worth,
 * so that the loss of any put after a checkpoint shows. */
enum { KEYS = 500, CRASH_EVERY = 40 };

static void *killer(void *arg) {
  unsigned us = (unsigned)(uintptr_t)arg;
  struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
  nanosleep(&ts, NULL);
  kill(getpid(), SIGKILL);
  return NULL;
}

/* The child: put k<n % KEYS> = n for n = start, start + 1, ... and tell
 * the parent each n once its put returned, until killed. */
static void child(const char *dir, uint64_t start, int fd, unsigned us) {
  pthread_t th;
  kv_t *kv = kv_open(dir, CRASH_EVERY);
  if (pthread_create(&th, NULL, killer, (void *)(uintptr_t)us) != 0) exit(1);
  for (uint64_t n = start;; n++) {
    char key[16], val[24];
    snprintf(key, sizeof key, "k%llu", (unsigned long long)(n % KEYS));
    snprintf(val, sizeof val, "%llu", (unsigned long long)n);
    put(kv, key, val);
    if (write(fd, &n, sizeof n) != (ssize_t)sizeof n) exit(1);
  }
}

static int crash_test(const char *dir, int rounds) {
  uint64_t acked[KEYS] = {0}, next = 1, total = 0;
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  for (int r = 0; r < rounds; r++) {
    int p[2];
    if (pipe(p) != 0) die_errno("pipe", "");
    pid_t pid = fork();
    if (pid < 0) die_errno("fork", "");
    if (pid == 0) {
      close(p[0]);
      child(dir, next, p[1], 2000 + (unsigned)(rand() % 60000));
    }
    close(p[1]);
    uint64_t n;
    while (read(p[0], &n, sizeof n) == (ssize_t)sizeof n) {
      acked[n % KEYS] = n;
      if (n + 1 > next) next = n + 1;
      total++;
    }
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st)) {
      fprintf(stderr, "kv: round %d: the child was not killed\n", r);
      return 1;
    }
    /* Rebuild and check: each key holds its last acknowledged value or a
     * later one (a put that was written but not yet acknowledged). */
    kv_t *kv = kv_open(dir, CRASH_EVERY);
    for (int k = 0; k < KEYS; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%d", k);
      const char *v = get(kv, key);
      uint64_t have = v != NULL ? strtoull(v, NULL, 10) : 0;
      if (have < acked[k]) {
        fprintf(stderr, "kv: round %d: %s is %llu, but %llu was acknowledged\n",
                r, key, (unsigned long long)have, (unsigned long long)acked[k]);
        return 1;
      }
      if (have >= next) next = have + 1; /* written, not acknowledged */
    }
    kv_close(kv);
  }
  printf("kv: %d kills, %llu acknowledged puts, none lost\n", rounds,
         (unsigned long long)total);
  return 0;
}

/* ---- the demo ---- */

static int demo(const char *dir) {
  kv_t *kv = kv_open(dir, 200);
  put(kv, "alice", "10");
  put(kv, "bob", "20");
  put(kv, "alice", "15");
  for (int i = 0; i < 450; i++) { /* two checkpoints on the way */
    char key[16], val[16];
    snprintf(key, sizeof key, "item%d", i % 30);
    snprintf(val, sizeof val, "%d", i);
    put(kv, key, val);
  }
  printf("alice=%s bob=%s item7=%s; log holds %llu..%llu\n", get(kv, "alice"),
         get(kv, "bob"), get(kv, "item7"),
         (unsigned long long)walrus_first_index(kv->log),
         (unsigned long long)walrus_last_index(kv->log));
  kv_close(kv);
  kv = kv_open(dir, 200); /* the checkpoint, then the log after it */
  int ok = strcmp(get(kv, "alice"), "15") == 0 &&
           strcmp(get(kv, "bob"), "20") == 0 &&
           strcmp(get(kv, "item7"), "427") == 0;
  printf("rebuilt: alice=%s bob=%s item7=%s: %s\n", get(kv, "alice"),
         get(kv, "bob"), get(kv, "item7"), ok ? "as written" : "WRONG");
  kv_close(kv);
  return ok ? 0 : 1;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-kv-XXXXXX";
  int rounds = 0, argi = 1;
  if (argc > 2 && strcmp(argv[1], "--crash-test") == 0) {
    rounds = atoi(argv[2]);
    argi = 3;
    if (rounds <= 0) {
      fprintf(stderr, "kv: --crash-test needs a number of rounds\n");
      return 2;
    }
  }
  const char *dir = argc > argi ? argv[argi] : mkdtemp(tmpl);
  if (dir == NULL) die_errno("mkdtemp", tmpl);
  int rc = rounds > 0 ? crash_test(dir, rounds) : demo(dir);
  if (argc <= argi && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return rc;
}
