/*
 * test_bank.c: the seed's TransferMoney as an invariant under kill -9.
 *
 * A ledger of N_ACCOUNTS accounts: the opening balances are written once,
 * as one transaction of N_ACCOUNTS entries "INIT:<acct>:<amount>".  Each
 * round forks a child that opens the log (SYNC_ALWAYS, 4 KiB segments so
 * that rotations are frequent, a background expiry cleaner every 2 ms) and
 * runs CHILD_THREADS threads doing transfers, each a transaction of two
 * entries, "DEBIT:<from>:<amount>" then "CREDIT:<to>:<amount>".  Some
 * transfers are not meant to happen, and the child tells the parent their
 * ids through a pipe (one write() per report, under a mutex):
 *  - rolled back on purpose after both entries were added;
 *  - left to expire: a timeout of 1..3 ms, both entries added, a sleep,
 *    then a commit that must fail (WALRUS_ETXEXPIRED, or
 *    WALRUS_ETXNOTPENDING when the cleaner aborted it first);
 *  - abandoned: a timeout of 1 ms, one or two entries added, never touched
 *    again (the cleaner aborts it, or the kill ends it pending).
 * Committed transfers are reported as (id, first index).  The parent kills
 * the child with SIGKILL after a random delay of 0..40 ms or a random
 * number of acknowledged transfers, reopens the log, replays it from the
 * first index and checks:
 *  - the open succeeds and indexes run without a gap;
 *  - the log starts with the opening transaction, whole (or, once the
 *    parent has trimmed the log, with a transfer, replayed from the
 *    balances the parent kept as its checkpoint);
 *  - after it, every entry is half of a transfer: a DEBIT immediately
 *    followed by the CREDIT of the same transaction and amount, between
 *    two different accounts, so every transaction id appears exactly twice
 *    and adjacent, and no id appears in two transfers;
 *  - the total of all balances after applying every entry is unchanged;
 *  - every acknowledged transfer is at its acknowledged index, nothing
 *    verified in an earlier round has changed, and no transfer reported
 *    rolled back, expired or abandoned (in any round) is in the log.
 * The next round's child goes on with the same log.  When the log grows
 * past 2 * KEEP entries the parent takes a checkpoint (the balances up to
 * a transfer boundary) and drops the entries before it with
 * walrus_truncate_front, as an application would after a snapshot.
 *
 * 200 kills by default; WALRUS_SOAK=1 makes it 50 times as many.
 * WALRUS_SEED=<n> replays the parent's choices and the threads' random
 * streams (not the exact instant of each kill); the seed is printed.
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
#define N_ACCOUNTS 16
#define INITIAL 1000
#define MAX_AMOUNT 100
#define SEG_BYTES 4096u
#define CHILD_THREADS 4
#define MAX_DELAY_MS 40
#define KEEP 2048

/* Messages from the child: one write() each, smaller than PIPE_BUF. */
enum { M_OPENED = 1, M_ACK, M_NOT_COMMITTED, M_ERROR };
typedef struct msg_s {
  uint32_t kind;  /* M_* */
  int32_t code;   /* M_ERROR: the walrus code */
  uint64_t first; /* M_OPENED: next index; M_ACK: first index */
  uint64_t line;  /* M_ERROR: the child's source line */
  char id[40];    /* M_ACK, M_NOT_COMMITTED: the transaction id */
} msg_t;

static uint64_t splitmix(uint64_t *s) {
  uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t id_hash(const char *id) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 0x100000001B3ull;
  return h ? h : 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
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

/* Add "<what>:<acct>:<amount>" to transaction id. */
static int add_op(walrus_t *w, const walrus_txid_t *id, const char *what,
                  unsigned acct, unsigned amount) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%s:%02u:%u", what, acct, amount);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = buf;
  e.len = (size_t)n;
  return walrus_tx_add(w, id, &e);
}

/* ---- the child ----------------------------------------------------------- */

typedef struct child_s {
  walrus_t *w;
  int fd;
  pthread_mutex_t mu; /* one report at a time */
  uint64_t rseed;
} child_t;

static void child_send(child_t *c, uint32_t kind, int32_t code,
                       uint64_t first, uint64_t line, const char *id) {
  msg_t m;
  memset(&m, 0, sizeof m);
  m.kind = kind;
  m.code = code;
  m.first = first;
  m.line = line;
  if (id != NULL) snprintf(m.id, sizeof m.id, "%s", id);
  pthread_mutex_lock(&c->mu);
  ssize_t r;
  do {
    r = write(c->fd, &m, sizeof m);
  } while (r < 0 && errno == EINTR);
  pthread_mutex_unlock(&c->mu);
  if (r != (ssize_t)sizeof m) _exit(4);
}

#define CHILD_FAIL(c, rc)                              \
  do {                                                 \
    child_send((c), M_ERROR, (rc), 0, __LINE__, NULL); \
    _exit(3);                                          \
  } while (0)

typedef struct child_thread_s {
  child_t *c;
  unsigned t;
} child_thread_t;

static void *child_thread(void *p) {
  child_thread_t *ct = p;
  child_t *c = ct->c;
  walrus_t *w = c->w;
  uint64_t rng = c->rseed ^ (0x1000193ull * (ct->t + 1));
  for (;;) {
    uint64_t r = splitmix(&rng);
    unsigned from = (unsigned)(r % N_ACCOUNTS);
    unsigned to = (from + 1 + (unsigned)((r >> 8) % (N_ACCOUNTS - 1))) %
                  N_ACCOUNTS;
    unsigned amount = 1 + (unsigned)((r >> 16) % MAX_AMOUNT);
    unsigned kind = (unsigned)((r >> 32) % 16);
    walrus_txid_t id;
    int rc;
    if (kind == 2) { /* left to expire, then a commit that must fail */
      rc = walrus_tx_begin(w, 1 + (uint32_t)((r >> 40) % 3), &id);
      if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
      rc = add_op(w, &id, "DEBIT", from, amount);
      if (rc == WALRUS_OK) rc = add_op(w, &id, "CREDIT", to, amount);
      if (rc != WALRUS_OK && rc != WALRUS_ETXEXPIRED &&
          rc != WALRUS_ETXNOTPENDING)
        CHILD_FAIL(c, rc);
      child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      sleep_ms(8);
      rc = walrus_tx_commit(w, &id, NULL, NULL);
      if (rc != WALRUS_ETXEXPIRED && rc != WALRUS_ETXNOTPENDING)
        CHILD_FAIL(c, rc == WALRUS_OK ? 1 : rc); /* 1: it committed */
      continue;
    }
    if (kind == 3) { /* abandoned */
      rc = walrus_tx_begin(w, 1, &id);
      if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
      rc = add_op(w, &id, "DEBIT", from, amount);
      if (rc == WALRUS_OK && (r >> 40) % 2)
        rc = add_op(w, &id, "CREDIT", to, amount);
      if (rc != WALRUS_OK && rc != WALRUS_ETXEXPIRED &&
          rc != WALRUS_ETXNOTPENDING)
        CHILD_FAIL(c, rc);
      child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      continue;
    }
    rc = walrus_tx_begin(w, 0, &id);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    rc = add_op(w, &id, "DEBIT", from, amount);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    rc = add_op(w, &id, "CREDIT", to, amount);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    if (kind < 2) { /* rolled back on purpose */
      rc = walrus_tx_rollback(w, &id);
      if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
      child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      continue;
    }
    uint64_t first = 0;
    size_t count = 0;
    rc = walrus_tx_commit(w, &id, &first, &count);
    if (rc != WALRUS_OK) CHILD_FAIL(c, rc);
    if (count != 2) CHILD_FAIL(c, 2); /* 2: a wrong count */
    child_send(c, M_ACK, 0, first, 0, id.s);
  }
  return NULL;
}

/* Never returns; no Criterion call (a forked child meant to die by
 * SIGKILL). */
static void child_main(const char *dir, int fd, uint64_t rseed) {
  static child_t c;
  static child_thread_t ct[CHILD_THREADS];
  pthread_t th[CHILD_THREADS];
  walrus_config_t cfg = log_config();
  cfg.tx_cleanup_interval_ms = 2;
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

/* A growing set of 64-bit id hashes (open addressing, 0 = empty). */
typedef struct hset_s {
  uint64_t *v;
  size_t cap, n;
} hset_t;

static void hset_init(hset_t *s, size_t want) {
  size_t cap = 64;
  while (cap < 2 * want + 16) cap *= 2;
  s->v = calloc(cap, sizeof *s->v);
  cr_assert_not_null(s->v);
  s->cap = cap;
  s->n = 0;
}

static int hset_has(const hset_t *s, uint64_t h) {
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->v[i] == h) return 1;
    if (s->v[i] == 0) return 0;
  }
}

/* Insert h (never 0); returns 0 if it was there already. */
static int hset_add(hset_t *s, uint64_t h) {
  if (2 * (s->n + 1) > s->cap) {
    hset_t t;
    hset_init(&t, s->cap);
    for (size_t i = 0; i < s->cap; i++)
      if (s->v[i] != 0) hset_add(&t, s->v[i]);
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

typedef struct ack_s {
  char id[40];
  uint64_t first;
} ack_t;

typedef struct round_s {
  uint64_t round;
  int opened;
  ack_t *acks;
  size_t nacks, acap;
  size_t not_committed; /* ids reported this round */
  int error;
  int32_t err_code;
  uint64_t err_line;
  char problem[256];
} round_t;

#define PROBLEM(rd, ...)                                         \
  do {                                                           \
    if ((rd)->problem[0] == '\0')                                \
      snprintf((rd)->problem, sizeof(rd)->problem, __VA_ARGS__); \
  } while (0)

typedef struct state_s {
  const char *dir;
  uint64_t seed;
  uint64_t first;           /* expected first index */
  uint64_t last;            /* last index verified in the previous round */
  int64_t ckpt[N_ACCOUNTS]; /* balances before st->first, once trimmed */
  int trimmed;              /* the opening transaction was dropped */
  uint64_t *seen;           /* seen[i - seen_base]: id hash of entry i */
  uint64_t seen_base, seen_cap;
  hset_t never;             /* ids that must never appear */
  uint64_t kills, killed_before_open;
  uint64_t acked, not_committed;
  uint64_t new_transfers;   /* transfers first seen after a reopen */
  uint64_t transfer_checks; /* transfers replayed over all reopens */
  uint64_t entry_checks;
  uint64_t trims;
} state_t;

static void on_msg(state_t *st, round_t *rd, const msg_t *m) {
  char id[40];
  memcpy(id, m->id, sizeof id);
  id[sizeof id - 1] = '\0';
  switch (m->kind) {
    case M_OPENED:
      rd->opened = 1;
      if (m->first != st->last + 1)
        PROBLEM(rd,
                "the child's open says next index %" PRIu64
                ", the log ended at %" PRIu64,
                m->first, st->last);
      break;
    case M_ACK:
      if (!rd->opened || m->first <= st->last) {
        PROBLEM(rd, "ACK of %s at %" PRIu64 " is impossible", id, m->first);
        break;
      }
      if (rd->nacks == rd->acap) {
        size_t cap = rd->acap ? rd->acap * 2 : 64;
        ack_t *a = realloc(rd->acks, cap * sizeof *a);
        if (a == NULL) {
          PROBLEM(rd, "out of memory");
          break;
        }
        rd->acks = a;
        rd->acap = cap;
      }
      memcpy(rd->acks[rd->nacks].id, id, sizeof id);
      rd->acks[rd->nacks].first = m->first;
      rd->nacks++;
      break;
    case M_NOT_COMMITTED:
      hset_add(&st->never, id_hash(id));
      rd->not_committed++;
      break;
    case M_ERROR:
      rd->error = 1;
      rd->err_code = m->code;
      rd->err_line = m->line;
      break;
    default:
      PROBLEM(rd, "unknown message %u", m->kind);
  }
}

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

static void seen_reserve(state_t *st, uint64_t i) {
  if (i - st->seen_base < st->seen_cap) return;
  uint64_t cap = st->seen_cap ? st->seen_cap : 4096;
  while (i - st->seen_base >= cap) cap *= 2;
  st->seen = realloc(st->seen, (size_t)cap * sizeof *st->seen);
  cr_assert_not_null(st->seen);
  st->seen_cap = cap;
}

/* Parse "<what>:<acct>:<amount>" from an entry. */
static int parse_op(const walrus_entry_t *e, char what[8], unsigned *acct,
                    unsigned *amount) {
  char buf[64];
  if (e->len == 0 || e->len >= sizeof buf) return 0;
  memcpy(buf, e->data, e->len);
  buf[e->len] = '\0';
  char tail;
  if (sscanf(buf, "%7[A-Z]:%u:%u%c", what, acct, amount, &tail) != 3) return 0;
  return *acct < N_ACCOUNTS;
}

/* Remember entry i's id hash, or check it is unchanged. */
static void note_entry(state_t *st, const round_t *rd, uint64_t i,
                       uint64_t h) {
  if (i <= st->last) {
    if (i >= st->seen_base)
      cr_assert_eq(st->seen[i - st->seen_base], h,
                   "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
                   " changed since it was verified",
                   rd->round, st->seed, i);
  } else {
    seen_reserve(st, i);
    st->seen[i - st->seen_base] = h;
  }
  st->entry_checks++;
}

/* Read the next entry, which must be index i. */
static int next_entry(walrus_t *w, walrus_iter_t *it, walrus_entry_t *e,
                      uint64_t i, const state_t *st, const round_t *rd) {
  int rc = walrus_iter_next(it, e);
  cr_assert(rc == WALRUS_OK || rc == WALRUS_DONE,
            "round %" PRIu64 ": iteration at %" PRIu64 ": %s: %s", rd->round,
            i, walrus_errname(rc), walrus_errmsg(w));
  if (rc == WALRUS_OK)
    cr_assert_eq(e->index, i,
                 "round %" PRIu64 " (seed %" PRIu64 "): iterator gave index %"
                 PRIu64 ", want %" PRIu64 " (a gap)",
                 rd->round, st->seed, e->index, i);
  return rc;
}

/* Reopen, replay and check the ledger after round rd. */
static void verify(state_t *st, round_t *rd) {
  walrus_config_t cfg = log_config();
  walrus_t *w = tu_open(st->dir, &cfg);
  uint64_t first = walrus_first_index(w);
  uint64_t last = walrus_last_index(w);
  cr_assert_eq(first, st->first,
               "round %" PRIu64 ": first index %" PRIu64 ", want %" PRIu64,
               rd->round, first, st->first);
  cr_assert_geq(last, st->last,
                "round %" PRIu64 " (seed %" PRIu64 "): the log ends at %" PRIu64
                " but ended at %" PRIu64 " after the previous round",
                rd->round, st->seed, last, st->last);

  int64_t bal[N_ACCOUNTS];
  hset_t ids;
  hset_init(&ids, (size_t)(last - first + 1) / 2 + 1);
  walrus_iter_t *it;
  cr_assert_eq(walrus_iter_open(w, 0, &it), WALRUS_OK);
  walrus_entry_t e;
  uint64_t i = first;
  char what[8];
  unsigned acct, amount;

  if (!st->trimmed) {
    /* The opening transaction, whole. */
    char init_id[40] = "";
    for (unsigned k = 0; k < N_ACCOUNTS; k++, i++) {
      int rc = next_entry(w, it, &e, i, st, rd);
      cr_assert_eq(rc, WALRUS_OK, "the opening transaction lost entry %u", k);
      cr_assert(e.tx_id != NULL && parse_op(&e, what, &acct, &amount) &&
                    strcmp(what, "INIT") == 0 && acct == k &&
                    amount == INITIAL,
                "entry %" PRIu64 " is not INIT:%02u:%u", i, k, INITIAL);
      if (k == 0) snprintf(init_id, sizeof init_id, "%s", e.tx_id);
      cr_assert_str_eq(e.tx_id, init_id,
                       "the opening transaction has two ids");
      bal[k] = amount;
      note_entry(st, rd, i, id_hash(e.tx_id));
    }
    hset_add(&ids, id_hash(init_id));
  } else {
    memcpy(bal, st->ckpt, sizeof bal);
  }

  /* Transfers, two entries each. */
  uint64_t trim_target = last > KEEP ? last - KEEP : 0;
  uint64_t cand_at = 0;
  int64_t cand_bal[N_ACCOUNTS];
  for (;;) {
    int rc = next_entry(w, it, &e, i, st, rd);
    if (rc == WALRUS_DONE) break;
    if (i <= trim_target) {
      cand_at = i;
      memcpy(cand_bal, bal, sizeof bal);
    }
    cr_assert(e.tx_id != NULL && parse_op(&e, what, &acct, &amount) &&
                  strcmp(what, "DEBIT") == 0,
              "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
              " should begin a transfer with a DEBIT: \"%.*s\" (%s)",
              rd->round, st->seed, i, (int)(e.len < 60 ? e.len : 60),
              (const char *)e.data, e.tx_id ? e.tx_id : "no tx");
    char id[40];
    snprintf(id, sizeof id, "%s", e.tx_id);
    uint64_t h = id_hash(id);
    unsigned from = acct, amt = amount;
    cr_assert(!hset_has(&st->never, h),
              "round %" PRIu64 " (seed %" PRIu64 "): %s at %" PRIu64
              " was rolled back, expired or abandoned, but is in the log",
              rd->round, st->seed, id, i);
    cr_assert(hset_add(&ids, h),
              "round %" PRIu64 ": transaction %s appears in two transfers "
              "(again at %" PRIu64 ")",
              rd->round, id, i);
    note_entry(st, rd, i, h);
    i++;
    rc = next_entry(w, it, &e, i, st, rd);
    cr_assert_eq(rc, WALRUS_OK,
                 "round %" PRIu64 " (seed %" PRIu64 "): the log ends after "
                 "the DEBIT of %s at %" PRIu64 ": half a transfer",
                 rd->round, st->seed, id, i - 1);
    cr_assert(e.tx_id != NULL && strcmp(e.tx_id, id) == 0 &&
                  parse_op(&e, what, &acct, &amount) &&
                  strcmp(what, "CREDIT") == 0,
              "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
              " should be the CREDIT of %s: \"%.*s\" (%s)",
              rd->round, st->seed, i, id, (int)(e.len < 60 ? e.len : 60),
              (const char *)e.data, e.tx_id ? e.tx_id : "no tx");
    cr_assert(amount == amt && acct != from,
              "transfer %s: DEBIT %u of %u, CREDIT %u to %u", id, amt, from,
              amount, acct);
    note_entry(st, rd, i, h);
    i++;
    bal[from] -= amt;
    bal[acct] += amount;
    st->transfer_checks++;
    if (i - 2 > st->last) st->new_transfers++;
  }
  walrus_iter_close(it);
  cr_assert_eq(i, last + 1, "replay ended at %" PRIu64 ", last is %" PRIu64,
               i - 1, last);
  int64_t total = 0;
  for (unsigned k = 0; k < N_ACCOUNTS; k++) total += bal[k];
  cr_assert_eq(total, (int64_t)N_ACCOUNTS * INITIAL,
               "round %" PRIu64 " (seed %" PRIu64 "): the balances total %"
               PRId64 ", want %d",
               rd->round, st->seed, total, N_ACCOUNTS * INITIAL);

  /* Every acknowledged transfer is where it was acknowledged. */
  for (size_t k = 0; k < rd->nacks; k++) {
    const ack_t *a = &rd->acks[k];
    uint64_t h = id_hash(a->id);
    cr_assert(a->first + 1 <= last && st->seen[a->first - st->seen_base] == h &&
                  st->seen[a->first + 1 - st->seen_base] == h,
              "round %" PRIu64 " (seed %" PRIu64 "): acknowledged transfer %s "
              "is not at %" PRIu64 "..%" PRIu64 " (log ends at %" PRIu64 ")",
              rd->round, st->seed, a->id, a->first, a->first + 1, last);
    cr_assert(!hset_has(&st->never, h), "%s both acknowledged and not", a->id);
  }
  st->acked += rd->nacks;
  st->not_committed += rd->not_committed;
  free(ids.v);

  /* A checkpoint: keep the balances before cand_at, drop what precedes. */
  if (cand_at > first && last - first + 1 > 2 * KEEP) {
    int rc = walrus_truncate_front(w, cand_at);
    cr_assert_eq(rc, WALRUS_OK, "truncate_front(%" PRIu64 "): %s: %s",
                 cand_at, walrus_errname(rc), walrus_errmsg(w));
    memcpy(st->ckpt, cand_bal, sizeof cand_bal);
    st->trimmed = 1;
    st->first = cand_at;
    st->trims++;
    uint64_t drop = cand_at - st->seen_base;
    memmove(st->seen, st->seen + drop,
            (size_t)(st->seen_cap - drop) * sizeof *st->seen);
    st->seen_base = cand_at;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

static void one_round(state_t *st, uint64_t round, uint64_t *rng) {
  int p[2];
  cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
  uint64_t r = splitmix(rng);
  uint64_t rseed = splitmix(rng);
  int by_acks = (r & 3) == 0;
  uint64_t delay_ms = (r >> 8) % (MAX_DELAY_MS + 1);
  uint64_t ack_target = 1 + (r >> 16) % 30;
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
  uint64_t deadline = now_ms() + (by_acks ? 20000 : delay_ms);
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
    PROBLEM(&rd, "the child acknowledged only %zu transfers in 20 s (a stall)",
            rd.nacks);
  cr_assert(rd.problem[0] == '\0', "round %" PRIu64 " (seed %" PRIu64 "): %s",
            round, st->seed, rd.problem);
  cr_assert(!rd.error,
            "round %" PRIu64 " (seed %" PRIu64 "): the child failed at line "
            "%" PRIu64 ": %s (%d; 1: an expired transfer committed, 2: a "
            "commit of 2 entries reported another count)",
            round, st->seed, rd.err_line, walrus_errname(rd.err_code),
            rd.err_code);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "round %" PRIu64 ": the child was not killed (status 0x%x)", round,
            status);
  st->kills++;
  if (!rd.opened) st->killed_before_open++;
  verify(st, &rd);
  free(rd.acks);
}

/* Write the opening balances as one transaction. */
static void open_ledger(state_t *st) {
  walrus_config_t cfg = log_config();
  walrus_t *w = tu_open(st->dir, &cfg);
  walrus_txid_t id;
  cr_assert_eq(walrus_tx_begin(w, 0, &id), WALRUS_OK);
  for (unsigned k = 0; k < N_ACCOUNTS; k++)
    cr_assert_eq(add_op(w, &id, "INIT", k, INITIAL), WALRUS_OK);
  uint64_t first = 0;
  size_t count = 0;
  cr_assert_eq(walrus_tx_commit(w, &id, &first, &count), WALRUS_OK, "%s",
               walrus_errmsg(w));
  cr_assert_eq(first, 1u);
  cr_assert_eq(count, (size_t)N_ACCOUNTS);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  seen_reserve(st, N_ACCOUNTS);
  for (unsigned k = 0; k < N_ACCOUNTS; k++) st->seen[k] = id_hash(id.s);
  st->last = N_ACCOUNTS;
}

Test(bank, balances_survive_every_kill) {
  uint64_t seed = pick_seed();
  unsigned kills = pick_kills();
  cr_log_info("seed %" PRIu64 " (WALRUS_SEED=%" PRIu64 " to replay), %u kills",
              seed, seed, kills);
  fprintf(stderr, "test_bank: WALRUS_SEED=%" PRIu64 ", %u kills\n", seed,
          kills);
  char *root = tu_tmpdir();
  state_t st;
  memset(&st, 0, sizeof st);
  char *dir = strdup(tu_path(root, "ledger"));
  cr_assert_not_null(dir);
  st.dir = dir;
  st.seed = seed;
  st.first = 1;
  st.seen_base = 1;
  hset_init(&st.never, 1024);
  open_ledger(&st);
  uint64_t rng = seed;
  for (uint64_t round = 1; round <= kills; round++) one_round(&st, round, &rng);
  cr_assert_eq(st.kills, (uint64_t)kills);
  cr_assert_gt(st.acked, 0u, "no transfer was ever acknowledged");
  cr_assert_gt(st.not_committed, 0u, "no transfer was ever rolled back");
  cr_log_info("%" PRIu64 " kills (%" PRIu64 " before the child's open "
              "finished); %" PRIu64 " transfers acknowledged and found, %"
              PRIu64 " rolled back, expired or abandoned and never found; %"
              PRIu64 " transfers appeared; %" PRIu64 " transfers and %" PRIu64
              " entries replayed over all reopens; %" PRIu64
              " checkpoints; log ends at %" PRIu64,
              st.kills, st.killed_before_open, st.acked, st.not_committed,
              st.new_transfers, st.transfer_checks, st.entry_checks, st.trims,
              st.last);
  fprintf(stderr,
          "test_bank: %" PRIu64 " kills, %" PRIu64 " transfers acknowledged, %"
          PRIu64 " not committed, %" PRIu64 " appeared, %" PRIu64
          " transfers replayed\n",
          st.kills, st.acked, st.not_committed, st.new_transfers,
          st.transfer_checks);
  free(st.never.v);
  free(st.seen);
  free(dir);
  tu_tmpdir_remove(root);
}
