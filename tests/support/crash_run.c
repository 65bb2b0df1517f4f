/*
 * crash_run.c: the kill -9 harness declared (and documented) in
 * crash_run.h.
 *
 * This file owns the mechanics the crash tests share: seed and kill count,
 * the temp dir, forking the child, reading its reports, killing and
 * reaping it, the end-of-round assertions, the verified-entry window, the
 * hash set and the threaded child.  The checks of what survived a kill
 * belong to each test.  Everything the child runs (the small tools,
 * crash_threads_main, crash_child_send) makes no Criterion call.
 */
#define _GNU_SOURCE
#include "crash_run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* The parent's read buffer, and the largest message it takes. */
#define READ_BYTES 8192
#define MAX_MSG_BYTES 256

/* ---- small tools --------------------------------------------------------- */

uint64_t crash_splitmix(uint64_t *state) {
  uint64_t x = (*state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t crash_id_hash(const char *id) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 0x100000001B3ull;
  return h ? h : 1;
}

walrus_config_t crash_config(walrus_sync_t sync, uint64_t segment_bytes) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = sync;
  cfg.segment_bytes = segment_bytes;
  return cfg;
}

int crash_write(int fd, const void *msg, size_t len) {
  ssize_t r;
  do {
    r = write(fd, msg, len);
  } while (r < 0 && errno == EINTR);
  return r == (ssize_t)len ? 0 : -1;
}

/* ---- a test run ---------------------------------------------------------- */

/* WALRUS_SEED if set, else from the clock and the pid. */
static uint64_t pick_seed(void) {
  const char *s = getenv("WALRUS_SEED");
  if (s != NULL && *s != '\0') return strtoull(s, NULL, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
         ((uint64_t)getpid() << 32);
}

void crash_session_begin(crash_session_t *s, const char *tag, const char *label,
                         const char *name, unsigned kills_default,
                         unsigned soak_factor) {
  memset(s, 0, sizeof *s);
  s->seed = pick_seed();
  const char *soak = getenv("WALRUS_SOAK");
  s->kills = soak != NULL && *soak != '\0' && strcmp(soak, "0") != 0
                 ? kills_default * soak_factor
                 : kills_default;
  cr_log_info(
      "%s%sseed %" PRIu64 " (WALRUS_SEED=%" PRIu64 " to replay), %u kills",
      label ? label : "", label ? ": " : "", s->seed, s->seed, s->kills);
  fprintf(stderr, "%s%s%s: WALRUS_SEED=%" PRIu64 ", %u kills\n", tag,
          label ? " " : "", label ? label : "", s->seed, s->kills);
  s->root = tu_tmpdir();
  s->dir = strdup(tu_path(s->root, name));
  cr_assert_not_null(s->dir);
}

void crash_session_end(crash_session_t *s) {
  free(s->dir);
  s->dir = NULL;
  tu_tmpdir_remove(s->root);
  s->root = NULL;
}

/* ---- one round ----------------------------------------------------------- */

void crash_problem(crash_round_t *cr, const char *fmt, ...) {
  if (cr->problem[0] != '\0') return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cr->problem, sizeof cr->problem, fmt, ap);
  va_end(ap);
}

void crash_child_failed(crash_round_t *cr, const char *fmt, ...) {
  cr->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cr->failure, sizeof cr->failure, fmt, ap);
  va_end(ap);
}

void crash_opened(crash_round_t *cr, uint64_t next, uint64_t last) {
  cr->opened = 1;
  if (next != last + 1)
    crash_problem(cr,
                  "the child's open says next index %" PRIu64
                  ", the log ended at %" PRIu64,
                  next, last);
}

/* Read what is in the pipe and hand over every whole message; 0 at EOF or
 * on error, 1 otherwise. */
static int pump(const crash_plan_t *p, crash_round_t *cr, int fd,
                unsigned char *buf, size_t *have) {
  ssize_t r = read(fd, buf + *have, READ_BYTES - *have);
  if (r < 0 && errno == EINTR) return 1;
  if (r < 0) {
    crash_problem(cr, "read(pipe): %s", strerror(errno));
    return 0;
  }
  if (r == 0) return 0;
  *have += (size_t)r;
  size_t off = 0;
  while (*have - off >= p->msg_bytes) {
    union {
      max_align_t align;
      unsigned char b[MAX_MSG_BYTES];
    } m;
    memcpy(m.b, buf + off, p->msg_bytes);
    if (p->on_msg(p->ctx, m.b)) cr->acks++;
    off += p->msg_bytes;
  }
  memmove(buf, buf + off, *have - off);
  *have -= off;
  return 1;
}

void crash_run_round(const crash_plan_t *p, crash_round_t *cr, uint64_t round,
                     uint64_t seed) {
  cr->round = round;
  cr->seed = seed;
  cr_assert(p->msg_bytes > 0 && p->msg_bytes <= MAX_MSG_BYTES,
            "messages of %zu bytes", p->msg_bytes);
  int fds[2];
  cr_assert_eq(pipe(fds), 0, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    p->child(p->child_arg, fds[1]);
    _exit(5);
  }
  close(fds[1]);

  unsigned char buf[READ_BYTES];
  size_t have = 0;
  uint64_t deadline = tu_now_ms() + (p->by_acks ? p->stall_ms : p->delay_ms);
  int eof = 0, stalled = 0;
  for (;;) {
    if (p->by_acks && cr->acks >= p->ack_target) break;
    uint64_t now = tu_now_ms();
    if (now >= deadline) {
      stalled = p->by_acks && p->stall_what != NULL;
      break;
    }
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int pr = poll(&pfd, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      crash_problem(cr, "poll: %s", strerror(errno));
      break;
    }
    if (pr == 0) continue;
    if (!pump(p, cr, fds[0], buf, &have)) {
      eof = 1;
      break;
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  pid_t wr;
  do {
    wr = waitpid(pid, &status, 0);
  } while (wr < 0 && errno == EINTR);
  cr_assert_eq(wr, pid, "waitpid: %s", strerror(errno));
  /* Everything the child said before it died. */
  while (!eof && pump(p, cr, fds[0], buf, &have)) {
  }
  close(fds[0]);
  if (stalled)
    crash_problem(cr,
                  "the child acknowledged only %" PRIu64 " %s in %" PRIu64
                  " s (a stall)",
                  cr->acks, p->stall_what, p->stall_ms / 1000);
  cr_assert(cr->problem[0] == '\0', "round %" PRIu64 " (seed %" PRIu64 "): %s",
            cr->round, cr->seed, cr->problem);
  cr_assert(!cr->failed,
            "round %" PRIu64 " (seed %" PRIu64 "): the child failed%s",
            cr->round, cr->seed, cr->failure);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "round %" PRIu64 ": the child was not killed (status 0x%x)",
            cr->round, status);
}

/* ---- after a reopen ------------------------------------------------------ */

void crash_scan_end(walrus_t *w, walrus_iter_t *it, int rc, uint64_t i,
                    uint64_t last) {
  cr_assert_eq(rc, WALRUS_DONE, "iteration stopped at %" PRIu64 ": %s: %s", i,
               walrus_errname(rc), walrus_errmsg(w));
  walrus_iter_close(it);
  cr_assert_eq(i, last + 1, "iteration ended at %" PRIu64 ", last is %" PRIu64,
               i - 1, last);
}

void crash_trim(walrus_t *w, uint64_t f, crash_seen_t *seen) {
  int rc = walrus_truncate_front(w, f);
  cr_assert_eq(rc, WALRUS_OK, "truncate_front(%" PRIu64 "): %s: %s", f,
               walrus_errname(rc), walrus_errmsg(w));
  cr_assert_eq(walrus_first_index(w), f);
  crash_seen_drop(seen, f);
}

void crash_seen_init(crash_seen_t *s, size_t elem, uint64_t base) {
  memset(s, 0, sizeof *s);
  s->elem = elem;
  s->base = base;
}

void *crash_seen_slot(crash_seen_t *s, uint64_t i) {
  if (i - s->base >= s->cap) {
    uint64_t cap = s->cap ? s->cap : 4096;
    while (i - s->base >= cap) cap *= 2;
    s->v = realloc(s->v, (size_t)cap * s->elem);
    cr_assert_not_null(s->v);
    /* Slots never written read as zeros (a reset skips indexes). */
    memset(s->v + (size_t)s->cap * s->elem, 0,
           (size_t)(cap - s->cap) * s->elem);
    s->cap = cap;
  }
  return s->v + (size_t)(i - s->base) * s->elem;
}

void *crash_seen_at(const crash_seen_t *s, uint64_t i) {
  return s->v + (size_t)(i - s->base) * s->elem;
}

void crash_seen_drop(crash_seen_t *s, uint64_t f) {
  uint64_t drop = f - s->base;
  if (s->v != NULL && drop > 0) {
    if (drop > s->cap) drop = s->cap;
    memmove(s->v, s->v + (size_t)drop * s->elem,
            (size_t)(s->cap - drop) * s->elem);
    memset(s->v + (size_t)(s->cap - drop) * s->elem, 0,
           (size_t)drop * s->elem);
  }
  s->base = f;
}

void crash_seen_free(crash_seen_t *s) {
  free(s->v);
  s->v = NULL;
  s->cap = 0;
}

void crash_hset_init(crash_hset_t *s, size_t want) {
  size_t cap = 64;
  while (cap < 2 * want + 16) cap *= 2;
  s->v = calloc(cap, sizeof *s->v);
  cr_assert_not_null(s->v);
  s->cap = cap;
  s->n = 0;
}

int crash_hset_has(const crash_hset_t *s, uint64_t h) {
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->v[i] == h) return 1;
    if (s->v[i] == 0) return 0;
  }
}

int crash_hset_add(crash_hset_t *s, uint64_t h) {
  if (2 * (s->n + 1) > s->cap) {
    crash_hset_t t;
    crash_hset_init(&t, s->cap);
    for (size_t i = 0; i < s->cap; i++)
      if (s->v[i] != 0) crash_hset_add(&t, s->v[i]);
    free(s->v);
    *s = t;
  }
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->v[i] == h) return 0;
    if (s->v[i] == 0) {
      s->v[i] = h;
      s->n++;
      return 1;
    }
  }
}

void crash_hset_free(crash_hset_t *s) {
  free(s->v);
  s->v = NULL;
  s->cap = s->n = 0;
}

/* ---- a child of threads over one log ------------------------------------- */

void crash_child_send(crash_child_t *c, uint32_t kind, int32_t code,
                      uint64_t first, uint64_t n, const char *id) {
  crash_msg_t m;
  memset(&m, 0, sizeof m);
  m.kind = kind;
  m.code = code;
  m.first = first;
  m.n = n;
  if (id != NULL) snprintf(m.id, sizeof m.id, "%s", id);
  pthread_mutex_lock(&c->mu);
  int r = crash_write(c->fd, &m, sizeof m);
  pthread_mutex_unlock(&c->mu);
  if (r != 0) _exit(4);
}

/* One thread of crash_threads_main. */
typedef struct thread_arg_s {
  crash_child_t *c;          /* the shared state */
  const crash_threads_t *ct; /* what to run */
  unsigned t;                /* the thread's number */
} thread_arg_t;

static void *thread_main(void *p) {
  thread_arg_t *a = p;
  a->ct->loop(a->c, a->ct->rseed ^ (0x1000193ull * (a->t + 1)));
  return NULL;
}

void crash_threads_main(void *arg, int fd) {
  static crash_child_t c;
  static thread_arg_t ta[CRASH_MAX_THREADS];
  pthread_t th[CRASH_MAX_THREADS];
  const crash_threads_t *ct = arg;
  walrus_config_t cfg = ct->cfg;
  c.fd = fd;
  pthread_mutex_init(&c.mu, NULL);
  if (ct->threads > CRASH_MAX_THREADS) CRASH_CHILD_FAIL(&c, 0);
  int rc = walrus_open(ct->dir, &cfg, &c.w);
  if (rc != WALRUS_OK) CRASH_CHILD_FAIL(&c, rc);
  crash_child_send(&c, CRASH_M_OPENED, 0, walrus_next_index(c.w), 0, NULL);
  for (unsigned t = 0; t < ct->threads; t++) {
    ta[t].c = &c;
    ta[t].ct = ct;
    ta[t].t = t;
    if (pthread_create(&th[t], NULL, thread_main, &ta[t]) != 0)
      CRASH_CHILD_FAIL(&c, 0);
  }
  for (;;) pause();
}
