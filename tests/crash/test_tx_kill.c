/*
 * test_tx_kill.c: kill -9 a process committing transactions from several
 * threads at random moments; after every recovery each transaction is in
 * the log whole or not at all, every acknowledged commit is there, and
 * indexes have no gap.
 *
 * This file owns contract line 2 (atomic) for transactions against a real
 * process crash, with lines 1 (durable) and 4 (no gaps) as seen through
 * transactions.  Each round forks a child that opens the log (SYNC_ALWAYS,
 * 64 KiB segments, so that most commits seal a segment or start one) and
 * runs CHILD_THREADS threads, each committing transactions of 1..100
 * entries of 0..2000 bytes; about one in ten is rolled back instead.  Entry
 * p of a transaction of n entries has term = p, type = n, and payload
 * tu_payload(p, h) of tu_len(p, h, 2000) bytes where h is a hash of the
 * transaction id, so the parent can check every byte knowing only the id.
 * After each commit returns, the thread reports (id, first index, count) to
 * the parent through a pipe; after each rollback it reports the id.  Each
 * report is one write() of a fixed-size message under a mutex.  The parent
 * kills the child with SIGKILL after a random delay of 0..60 ms (which
 * lands anywhere, open and recovery included) or after a random number of
 * acknowledged commits, reopens the log, and checks:
 *  - the open succeeds, and the log still holds everything verified in the
 *    rounds before (same indexes, same transactions);
 *  - indexes run without a gap from first to last;
 *  - every entry belongs to a transaction, every transaction id in the log
 *    forms one run of its n entries at positions 0..n-1, contiguous and in
 *    order, with the right bytes, and the log does not end inside one;
 *  - every acknowledged commit is there at the acknowledged indexes;
 *  - no rolled-back transaction is there.
 * The next round's child goes on with the same log.  To keep each scan
 * short the parent drops old transactions with walrus_truncate_front now
 * and then (at a transaction boundary).
 *
 * 200 kills by default; WALRUS_SOAK=1 makes it 50 times as many.  The seed
 * comes from the clock and is printed; WALRUS_SEED=<n> replays its choices
 * (delays, ack counts, the threads' random streams), though not the exact
 * instant each kill lands nor the order in which threads commit.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"

#define KILLS_DEFAULT 200
#define SOAK_FACTOR 50
#define SEG_BYTES (64u * 1024u)
#define CHILD_THREADS 4
#define MAX_ENTRIES 100
#define MAX_PAYLOAD 2000
#define MAX_DELAY_MS 60
#define KEEP 2048 /* about this many entries kept when the parent trims */

/* Messages from the child: one write() each, smaller than PIPE_BUF. */
enum { M_OPENED = 1, M_ACK, M_ROLLBACK, M_ERROR };
typedef struct msg_s {
  uint32_t kind;  /* M_* */
  int32_t code;   /* M_ERROR: the walrus code */
  uint64_t first; /* M_OPENED: next index; M_ACK: first index */
  uint64_t count; /* M_ACK: entries; M_ERROR: where (a line number) */
  char id[40];    /* M_ACK, M_ROLLBACK: the transaction id */
} msg_t;

static uint64_t splitmix(uint64_t *s) {
  uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* FNV-1a of a transaction id: the payload seed of its entries. */
static uint64_t id_hash(const char *id) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 0x100000001B3ull;
  return h;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t pick_seed(void) {
  const char *s = getenv("WALRUS_SEED");
  if (s != NULL && *s != '\0') return strtoull(s, NULL, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
         ((uint64_t)getpid() << 32);
}

static unsigned pick_kills(void) {
  const char *s = getenv("WALRUS_SOAK");
  if (s != NULL && *s != '\0' && strcmp(s, "0") != 0)
    return KILLS_DEFAULT * SOAK_FACTOR;
  return KILLS_DEFAULT;
}

static walrus_config_t log_config(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  cfg.segment_bytes = SEG_BYTES;
  return cfg;
}

/* ---- the child ----------------------------------------------------------- */

typedef struct child_s {
  walrus_t *w;
  int fd;                 /* the pipe to the parent */
  pthread_mutex_t mu;     /* one report at a time */
  uint64_t rseed;         /* random streams */
} child_t;

static void child_send(child_t *c, uint32_t kind, int32_t code,
                       uint64_t first, uint64_t count, const char *id) {
  msg_t m;
  memset(&m, 0, sizeof m);
  m.kind = kind;
  m.code = code;
  m.first = first;
  m.count = count;
  if (id != NULL) snprintf(m.id, sizeof m.id, "%s", id);
  pthread_mutex_lock(&c->mu);
  ssize_t r;
  do {
    r = write(c->fd, &m, sizeof m);
  } while (r < 0 && errno == EINTR);
  pthread_mutex_unlock(&c->mu);
  if (r != (ssize_t)sizeof m) _exit(4);
}

#define CHILD_FAIL(c, rc) \
  do {                    \
    child_send((c), M_ERROR, (rc), 0, __LINE__, NULL); \
    _exit(3);             \
  } while (0)

typedef struct child_thread_s {
  child_t *c;
  unsigned t;
} child_thread_t;

static void *child_thread(void *p) {
  child_thread_t *ct = p;
  child_t *c = ct->c;
  unsigned char buf[MAX_PAYLOAD];
  uint64_t rng = c->rseed ^ (0x1000193ull * (ct->t + 1));
  for (;;) {
    walrus_txid_t id;
    int rc = walrus_tx_begin(c->w, 0, &id);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    uint64_t r = splitmix(&rng);
    size_t n = 1 + (size_t)(r % MAX_ENTRIES);
    uint64_t h = id_hash(id.s);
    for (size_t pos = 0; pos < n; pos++) {
      size_t len = tu_len(pos, h, MAX_PAYLOAD);
      tu_payload(pos, h, buf, len);
      walrus_entry_t e;
      memset(&e, 0, sizeof e);
      e.term = pos;
      e.type = (uint16_t)n;
      e.data = buf;
      e.len = len;
      rc = walrus_tx_add(c->w, &id, &e);
      if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    }
    if ((r >> 32) % 10 == 0) {
      rc = walrus_tx_rollback(c->w, &id);
      if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
      child_send(c, M_ROLLBACK, 0, 0, 0, id.s);
      continue;
    }
    uint64_t first = 0;
    size_t count = 0;
    rc = walrus_tx_commit(c->w, &id, &first, &count);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    child_send(c, M_ACK, 0, first, count, id.s);
  }
  return NULL;
}

/* The committer.  Never returns; uses no Criterion call (it is a forked
 * child that is meant to die by SIGKILL). */
static void child_main(const char *dir, int fd, uint64_t rseed) {
  static child_t c;
  static child_thread_t ct[CHILD_THREADS];
  pthread_t th[CHILD_THREADS];
  walrus_config_t cfg = log_config();
  c.fd = fd;
  c.rseed = rseed;
  pthread_mutex_init(&c.mu, NULL);
  int rc = walrus_open(dir, &cfg, &c.w);
  if (rc != WALRUS_OK) CHILD_FAIL(&c, rc);
  child_send(&c, M_OPENED, 0, walrus_next_index(c.w), 0, NULL);
  for (unsigned t = 0; t < CHILD_THREADS; t++) {
    ct[t].c = &c;
    ct[t].t = t;
    if (pthread_create(&th[t], NULL, child_thread, &ct[t]) != 0)
      CHILD_FAIL(&c, 0);
  }
  for (;;) pause();
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct ack_s {
  char id[40];
  uint64_t first, count;
} ack_t;

/* What one round's child reported. */
typedef struct round_s {
  uint64_t round;
  int opened;          /* M_OPENED seen */
  uint64_t open_next;  /* its next index */
  ack_t *acks;         /* acknowledged commits */
  size_t nacks, acap;
  ack_t *rbs;          /* rolled-back ids (first, count unused) */
  size_t nrbs, rcap;
  int error;           /* M_ERROR seen */
  int32_t err_code;
  uint64_t err_line;
  char problem[256];   /* first protocol problem, "" if none */
} round_t;

#define PROBLEM(rd, ...)                                         \
  do {                                                           \
    if ((rd)->problem[0] == '\0')                                \
      snprintf((rd)->problem, sizeof(rd)->problem, __VA_ARGS__); \
  } while (0)

/* State carried from round to round. */
typedef struct state_s {
  const char *dir;
  uint64_t seed;
  uint64_t first;     /* first index after the last trim (1 before) */
  uint64_t last;      /* last index verified after the previous round */
  uint64_t *seen;     /* seen[i - seen_base]: id hash of verified entry i */
  uint64_t seen_base, seen_cap;
  uint64_t kills;
  uint64_t killed_before_open; /* rounds where the child never opened */
  uint64_t acked_txs, acked_entries;
  uint64_t rolled_back;
  uint64_t new_txs;      /* transactions first seen after a reopen */
  uint64_t tx_checks;    /* transaction runs checked in all scans */
  uint64_t entry_checks; /* entries checked in all scans */
  uint64_t trims;
} state_t;

static void push_ack(round_t *rd, ack_t **v, size_t *n, size_t *cap,
                     const msg_t *m) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    ack_t *p = realloc(*v, c * sizeof *p);
    if (p == NULL) {
      PROBLEM(rd, "out of memory");
      return;
    }
    *v = p;
    *cap = c;
  }
  ack_t *a = &(*v)[(*n)++];
  memcpy(a->id, m->id, sizeof a->id);
  a->id[sizeof a->id - 1] = '\0';
  a->first = m->first;
  a->count = m->count;
}

static void on_msg(state_t *st, round_t *rd, const msg_t *m) {
  switch (m->kind) {
    case M_OPENED:
      rd->opened = 1;
      rd->open_next = m->first;
      if (m->first != st->last + 1 && !(st->last == 0 && m->first == 1))
        PROBLEM(rd,
                "the child's open says next index %" PRIu64
                ", the log ended at %" PRIu64,
                m->first, st->last);
      break;
    case M_ACK:
      if (!rd->opened) PROBLEM(rd, "ACK before OPENED");
      if (m->count < 1 || m->count > MAX_ENTRIES || m->first <= st->last)
        PROBLEM(rd, "ACK of %s at %" PRIu64 "+%" PRIu64 " is impossible",
                m->id, m->first, m->count);
      push_ack(rd, &rd->acks, &rd->nacks, &rd->acap, m);
      break;
    case M_ROLLBACK:
      push_ack(rd, &rd->rbs, &rd->nrbs, &rd->rcap, m);
      break;
    case M_ERROR:
      rd->error = 1;
      rd->err_code = m->code;
      rd->err_line = m->count;
      break;
    default:
      PROBLEM(rd, "unknown message %u", m->kind);
  }
}

/* Read what is in the pipe; 0 at EOF or on error, 1 otherwise. */
static int pump(state_t *st, round_t *rd, int fd, unsigned char *buf,
                size_t *have) {
  ssize_t r = read(fd, buf + *have, 8192 - *have);
  if (r < 0 && errno == EINTR) return 1;
  if (r < 0) {
    PROBLEM(rd, "read(pipe): %s", strerror(errno));
    return 0;
  }
  if (r == 0) return 0;
  *have += (size_t)r;
  size_t off = 0;
  while (*have - off >= sizeof(msg_t)) {
    msg_t m;
    memcpy(&m, buf + off, sizeof m);
    on_msg(st, rd, &m);
    off += sizeof m;
  }
  memmove(buf, buf + off, *have - off);
  *have -= off;
  return 1;
}

/* A set of 64-bit id hashes (open addressing; 0 is "empty"). */
typedef struct hset_s {
  uint64_t *v;
  size_t cap; /* a power of two */
} hset_t;

static void hset_init(hset_t *s, size_t want) {
  size_t cap = 64;
  while (cap < 2 * want + 16) cap *= 2;
  s->v = calloc(cap, sizeof *s->v);
  cr_assert_not_null(s->v);
  s->cap = cap;
}

/* Insert h; returns 0 if it was there already. */
static int hset_add(hset_t *s, uint64_t h) {
  if (h == 0) h = 1;
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->v[i] == h) return 0;
    if (s->v[i] == 0) {
      s->v[i] = h;
      return 1;
    }
  }
}

static int hset_has(const hset_t *s, uint64_t h) {
  if (h == 0) h = 1;
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->v[i] == h) return 1;
    if (s->v[i] == 0) return 0;
  }
}

static void seen_reserve(state_t *st, uint64_t i) {
  if (i - st->seen_base < st->seen_cap) return;
  uint64_t cap = st->seen_cap ? st->seen_cap : 4096;
  while (i - st->seen_base >= cap) cap *= 2;
  st->seen = realloc(st->seen, (size_t)cap * sizeof *st->seen);
  cr_assert_not_null(st->seen);
  st->seen_cap = cap;
}

static int well_formed(const char *id) {
  if (id == NULL || strlen(id) != 35 || memcmp(id, "tx_", 3) != 0) return 0;
  for (int i = 3; i < 35; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return 0;
  return 1;
}

/* Reopen and verify the log after round rd (see the file comment). */
static void verify(state_t *st, round_t *rd, unsigned char *want) {
  walrus_config_t cfg = log_config();
  walrus_t *w = tu_open(st->dir, &cfg);
  uint64_t first = walrus_first_index(w);
  uint64_t last = walrus_last_index(w);
  cr_assert_geq(last, st->last,
                "round %" PRIu64 " (seed %" PRIu64 "): the log ends at %" PRIu64
                " but ended at %" PRIu64 " after the previous round",
                rd->round, st->seed, last, st->last);
  if (last == 0) {
    cr_assert_eq(first, 0u, "empty log with first index %" PRIu64, first);
    cr_assert_eq(rd->nacks, 0u, "%zu commits acknowledged, log empty",
                 rd->nacks);
    cr_assert_eq(walrus_close(w), WALRUS_OK);
    return;
  }
  cr_assert_eq(first, st->first,
               "round %" PRIu64 ": first index %" PRIu64 ", want %" PRIu64,
               rd->round, first, st->first);

  hset_t ids;
  hset_init(&ids, (size_t)(last - first + 1));
  walrus_iter_t *it;
  cr_assert_eq(walrus_iter_open(w, 0, &it), WALRUS_OK);
  uint64_t i = first;
  uint64_t run_start = 0, run_n = 0, run_pos = 0, run_h = 0;
  char run_id[40] = "";
  uint64_t trim_at = 0; /* a run start at or below last - KEEP */
  uint64_t trim_target = last > KEEP ? last - KEEP : 0;
  walrus_entry_t e;
  int rc;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    cr_assert_eq(e.index, i,
                 "round %" PRIu64 ": iterator gave index %" PRIu64
                 ", want %" PRIu64 " (a gap)",
                 rd->round, e.index, i);
    cr_assert(well_formed(e.tx_id),
              "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
              " has no transaction id (\"%s\")",
              rd->round, st->seed, i, e.tx_id ? e.tx_id : "(null)");
    uint64_t pos = e.term, n = e.type, h = id_hash(e.tx_id);
    cr_assert(n >= 1 && n <= MAX_ENTRIES && pos < n,
              "entry %" PRIu64 ": position %" PRIu64 " of %" PRIu64, i, pos, n);
    if (pos == 0) {
      cr_assert(run_pos == run_n,
                "round %" PRIu64 " (seed %" PRIu64 "): transaction %s at %" PRIu64
                " has %" PRIu64 " of its %" PRIu64
                " entries, then %s begins at %" PRIu64 ": a partial transaction",
                rd->round, st->seed, run_id, run_start, run_pos, run_n,
                e.tx_id, i);
      cr_assert(hset_add(&ids, h),
                "round %" PRIu64 ": transaction %s appears twice in the log "
                "(again at %" PRIu64 ")",
                rd->round, e.tx_id, i);
      run_start = i;
      run_n = n;
      run_pos = 0;
      run_h = h;
      snprintf(run_id, sizeof run_id, "%s", e.tx_id);
      st->tx_checks++;
      if (i > st->last) st->new_txs++;
      if (i <= trim_target) trim_at = i;
    } else {
      cr_assert(h == run_h && strcmp(e.tx_id, run_id) == 0 && pos == run_pos &&
                    n == run_n,
                "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
                " is %s position %" PRIu64 " of %" PRIu64
                ", but the run at %" PRIu64 " is %s, next position %" PRIu64
                " of %" PRIu64,
                rd->round, st->seed, i, e.tx_id, pos, n, run_start, run_id,
                run_pos, run_n);
    }
    run_pos++;
    size_t len = tu_len(pos, h, MAX_PAYLOAD);
    cr_assert_eq(e.len, len, "entry %" PRIu64 " (%s #%" PRIu64
                             "): %zu bytes, want %zu",
                 i, e.tx_id, pos, e.len, len);
    tu_payload(pos, h, want, len);
    cr_assert(len == 0 || memcmp(e.data, want, len) == 0,
              "entry %" PRIu64 " (%s #%" PRIu64 "): wrong bytes", i, e.tx_id,
              pos);
    /* Entries verified before are unchanged; new ones are remembered. */
    if (i <= st->last) {
      if (i >= st->seen_base)
        cr_assert_eq(st->seen[i - st->seen_base], h,
                     "round %" PRIu64 ": entry %" PRIu64
                     " changed since it was verified",
                     rd->round, i);
    } else {
      seen_reserve(st, i);
      st->seen[i - st->seen_base] = h;
    }
    st->entry_checks++;
    i++;
  }
  cr_assert_eq(rc, WALRUS_DONE, "iteration stopped at %" PRIu64 ": %s: %s", i,
               walrus_errname(rc), walrus_errmsg(w));
  walrus_iter_close(it);
  cr_assert_eq(i, last + 1, "iteration ended at %" PRIu64 ", last is %" PRIu64,
               i - 1, last);
  cr_assert_eq(run_pos, run_n,
               "round %" PRIu64 " (seed %" PRIu64 "): the log ends inside "
               "transaction %s (%" PRIu64 " of %" PRIu64 " entries at %" PRIu64
               ")",
               rd->round, st->seed, run_id, run_pos, run_n, run_start);

  /* Every acknowledged commit is there, where it was acknowledged. */
  for (size_t k = 0; k < rd->nacks; k++) {
    const ack_t *a = &rd->acks[k];
    cr_assert_leq(a->first + a->count - 1, last,
                  "round %" PRIu64 " (seed %" PRIu64 "): acknowledged %s at %"
                  PRIu64 "+%" PRIu64 " is beyond the log's end %" PRIu64,
                  rd->round, st->seed, a->id, a->first, a->count, last);
    for (uint64_t p = 0; p < a->count; p++) {
      uint64_t idx = a->first + p;
      cr_assert_eq(st->seen[idx - st->seen_base], id_hash(a->id),
                   "round %" PRIu64 ": acknowledged %s should be at %" PRIu64,
                   rd->round, a->id, idx);
    }
    memset(&e, 0, sizeof e);
    cr_assert_eq(walrus_get(w, a->first, &e), WALRUS_OK);
    cr_assert(e.tx_id != NULL && strcmp(e.tx_id, a->id) == 0 && e.term == 0 &&
                  e.type == a->count,
              "round %" PRIu64 ": acknowledged %s does not start at %" PRIu64,
              rd->round, a->id, a->first);
    walrus_entry_free(&e);
    st->acked_txs++;
    st->acked_entries += a->count;
  }
  /* No rolled-back transaction is there. */
  for (size_t k = 0; k < rd->nrbs; k++)
    cr_assert(!hset_has(&ids, id_hash(rd->rbs[k].id)),
              "round %" PRIu64 " (seed %" PRIu64 "): rolled-back %s is in "
              "the log",
              rd->round, st->seed, rd->rbs[k].id);
  st->rolled_back += rd->nrbs;
  free(ids.v);

  /* Trim old transactions now and then. */
  if (trim_at > first && last - first + 1 > 2 * KEEP) {
    rc = walrus_truncate_front(w, trim_at);
    cr_assert_eq(rc, WALRUS_OK, "truncate_front(%" PRIu64 "): %s: %s", trim_at,
                 walrus_errname(rc), walrus_errmsg(w));
    cr_assert_eq(walrus_first_index(w), trim_at);
    st->first = trim_at;
    st->trims++;
    uint64_t drop = trim_at - st->seen_base;
    memmove(st->seen, st->seen + drop,
            (size_t)(st->seen_cap - drop) * sizeof *st->seen);
    st->seen_base = trim_at;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

/* One round: fork, let the child commit, kill it, verify. */
static void one_round(state_t *st, uint64_t round, uint64_t *rng,
                      unsigned char *want) {
  int p[2];
  cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
  uint64_t r = splitmix(rng);
  uint64_t rseed = splitmix(rng);
  int by_acks = (r & 3) == 0;
  uint64_t delay_ms = (r >> 8) % (MAX_DELAY_MS + 1);
  uint64_t ack_target = 1 + (r >> 16) % 40;
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(p[0]);
    child_main(st->dir, p[1], rseed);
    _exit(5);
  }
  close(p[1]);

  round_t rd;
  memset(&rd, 0, sizeof rd);
  rd.round = round;
  unsigned char buf[8192];
  size_t have = 0;
  uint64_t start = now_ms();
  /* With by_acks, 20 s is a stall: commits stopped. */
  uint64_t deadline = start + (by_acks ? 20000 : delay_ms);
  int eof = 0, stalled = 0;
  for (;;) {
    if (by_acks && rd.nacks >= ack_target) break;
    uint64_t now = now_ms();
    if (now >= deadline) {
      stalled = by_acks;
      break;
    }
    struct pollfd pfd = {p[0], POLLIN, 0};
    int pr = poll(&pfd, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      PROBLEM(&rd, "poll: %s", strerror(errno));
      break;
    }
    if (pr == 0) continue;
    if (!pump(st, &rd, p[0], buf, &have)) {
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
  while (!eof && pump(st, &rd, p[0], buf, &have)) {
  }
  close(p[0]);
  if (stalled)
    PROBLEM(&rd, "the child acknowledged only %zu commits in 20 s (a stall)",
            rd.nacks);
  cr_assert(rd.problem[0] == '\0', "round %" PRIu64 " (seed %" PRIu64 "): %s",
            round, st->seed, rd.problem);
  cr_assert(!rd.error,
            "round %" PRIu64 " (seed %" PRIu64 "): the child failed at line "
            "%" PRIu64 ": %s",
            round, st->seed, rd.err_line, walrus_errname(rd.err_code));
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "round %" PRIu64 ": the child was not killed (status 0x%x)", round,
            status);
  st->kills++;
  if (!rd.opened) st->killed_before_open++;
  verify(st, &rd, want);
  free(rd.acks);
  free(rd.rbs);
}

Test(tx_kill, transactions_are_all_or_nothing) {
  uint64_t seed = pick_seed();
  unsigned kills = pick_kills();
  cr_log_info("seed %" PRIu64 " (WALRUS_SEED=%" PRIu64 " to replay), %u kills",
              seed, seed, kills);
  fprintf(stderr, "test_tx_kill: WALRUS_SEED=%" PRIu64 ", %u kills\n", seed,
          kills);
  char *root = tu_tmpdir();
  state_t st;
  memset(&st, 0, sizeof st);
  char *dir = strdup(tu_path(root, "log"));
  cr_assert_not_null(dir);
  st.dir = dir;
  st.seed = seed;
  st.first = 1;
  st.seen_base = 1;
  unsigned char *want = malloc(MAX_PAYLOAD);
  cr_assert_not_null(want);
  uint64_t rng = seed;
  for (uint64_t round = 1; round <= kills; round++)
    one_round(&st, round, &rng, want);
  cr_assert_eq(st.kills, (uint64_t)kills);
  cr_assert_gt(st.acked_txs, 0u, "no commit was ever acknowledged");
  cr_log_info("%" PRIu64 " kills (%" PRIu64 " before the child's open "
              "finished); %" PRIu64 " commits (%" PRIu64
              " entries) acknowledged and found, %" PRIu64
              " rollbacks never found; %" PRIu64
              " transactions appeared, %" PRIu64
              " transaction runs and %" PRIu64
              " entries verified over all reopens; %" PRIu64
              " trims; log ends at %" PRIu64,
              st.kills, st.killed_before_open, st.acked_txs, st.acked_entries,
              st.rolled_back, st.new_txs, st.tx_checks, st.entry_checks,
              st.trims, st.last);
  fprintf(stderr,
          "test_tx_kill: %" PRIu64 " kills, %" PRIu64 " commits (%" PRIu64
          " entries) acknowledged, %" PRIu64 " rollbacks, %" PRIu64
          " transactions appeared, %" PRIu64 " transaction runs and %" PRIu64
          " entries verified\n",
          st.kills, st.acked_txs, st.acked_entries, st.rolled_back, st.new_txs,
          st.tx_checks, st.entry_checks);
  free(want);
  free(st.seen);
  free(dir);
  tu_tmpdir_remove(root);
}
