/*
 * test_kill.c: kill -9 a writer at random moments; nothing acknowledged is
 * ever lost, no batch is ever split, indexes never have a gap.
 *
 * This file owns contract lines 1 (durable), 2 (atomic batches) and 4 (no
 * gaps) against a real process crash.  Each round forks a child that opens
 * the log and appends entries of random sizes, some as batches of 2..20,
 * with 64 KiB segments so that rotations happen all the time.  Before each
 * call the child tells the parent over a pipe which indexes it is about to
 * write (BEGIN), and after each successful call that they were acknowledged
 * (ACK).  The parent kills the child with SIGKILL after a random delay of
 * 0..30 ms or after a random number of acknowledgements, reopens the log
 * and checks:
 *  - the open succeeds;
 *  - the log ends exactly at the last acknowledged unit, or exactly at the
 *    end of the unit that was in flight (all of it), nothing else;
 *  - indexes run without a gap from first to last, every entry has the
 *    right bytes (deterministic from its index), and every entry belongs
 *    to a whole unit: term = the unit's first index, type = the unit's
 *    size, timestamp = round * 1000 + position + 1;
 *  - entries verified in earlier rounds are unchanged, and each unit this
 *    round acknowledged is there as acknowledged.
 * The next round's child goes on with the same log.  To keep the log small
 * the parent drops old entries with walrus_truncate_front now and then.
 *
 * Two variants: SYNC_ALWAYS, and SYNC_NONE, where kill -9 must lose nothing
 * either because every returned write has reached the kernel.
 *
 * 200 kills each by default; WALRUS_SOAK=1 makes it 10,000.  The seed comes
 * from the clock and is printed; WALRUS_SEED=<n> replays its choices (sizes,
 * batches, delays, ack counts), though not the exact instant each kill lands.
 * Nothing here depends on timing to pass: timing only picks where the crash
 * lands.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
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
#define KILLS_SOAK 10000
#define SEG_BYTES (64u * 1024u)
#define MAX_PAYLOAD 3000
#define MAX_BATCH 20
#define KEEP 4096     /* entries kept when the parent trims the log */
#define TS_ROUND 1000 /* timestamp = round * TS_ROUND + position + 1 */

/* Messages from the child; written whole (smaller than PIPE_BUF). */
enum { M_OPENED = 1, M_BEGIN, M_ACK, M_ERROR };
typedef struct msg_s {
  uint32_t kind;  /* M_* */
  int32_t code;   /* M_ERROR: the walrus code */
  uint64_t first; /* M_OPENED: next index; M_BEGIN/M_ACK: first index */
  uint64_t n;     /* M_BEGIN/M_ACK: entries in the unit; M_ERROR: where */
} msg_t;

/* What the parent remembers of one verified entry. */
typedef struct seen_s {
  uint64_t term; /* unit's first index */
  int64_t ts;    /* round and position */
  uint16_t type; /* unit size */
} seen_t;

static uint64_t splitmix(uint64_t *s) {
  uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The seed: WALRUS_SEED if set, else from the clock. */
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
  if (s != NULL && *s != '\0' && strcmp(s, "0") != 0) return KILLS_SOAK;
  return KILLS_DEFAULT;
}

/* ---- the child ----------------------------------------------------------- */

static void child_send(int fd, uint32_t kind, int32_t code, uint64_t first,
                       uint64_t n) {
  msg_t m = {kind, code, first, n};
  ssize_t r;
  do {
    r = write(fd, &m, sizeof m);
  } while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof m) _exit(4);
}

/*
 * The writer.  Never returns; uses no Criterion call (it is a forked child
 * that is meant to die by SIGKILL).
 */
static void child_main(const char *dir, int fd, walrus_sync_t sync,
                       uint64_t pseed, uint64_t rseed, uint64_t round) {
  static unsigned char bufs[MAX_BATCH][MAX_PAYLOAD];
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = sync;
  cfg.segment_bytes = SEG_BYTES;
  walrus_t *w = NULL;
  int rc = walrus_open(dir, &cfg, &w);
  if (rc != WALRUS_OK) {
    child_send(fd, M_ERROR, rc, 0, 0);
    _exit(2);
  }
  child_send(fd, M_OPENED, 0, walrus_next_index(w), 0);
  uint64_t rng = rseed;
  for (;;) {
    uint64_t next = walrus_next_index(w);
    uint64_t r = splitmix(&rng);
    size_t n = (r & 3) == 0 ? 2 + (size_t)((r >> 8) % (MAX_BATCH - 1)) : 1;
    walrus_entry_t e[MAX_BATCH];
    memset(e, 0, sizeof e);
    for (size_t j = 0; j < n; j++) {
      uint64_t idx = next + j;
      size_t len = tu_len(idx, pseed, MAX_PAYLOAD);
      tu_payload(idx, pseed, bufs[j], len);
      e[j].term = next;
      e[j].type = (uint16_t)n;
      e[j].timestamp_ns = (int64_t)(round * TS_ROUND + j + 1);
      e[j].data = bufs[j];
      e[j].len = len;
    }
    child_send(fd, M_BEGIN, 0, next, n);
    uint64_t got = 0;
    rc = n == 1 ? walrus_append(w, &e[0], &got)
                : walrus_write_batch(w, e, n, &got);
    if (rc != WALRUS_OK || got != next) {
      child_send(fd, M_ERROR, rc, got, next);
      _exit(3);
    }
    child_send(fd, M_ACK, 0, next, n);
  }
}

/* ---- the parent ---------------------------------------------------------- */

/* State carried from round to round. */
typedef struct state_s {
  const char *dir;           /* the log */
  walrus_sync_t sync;        /* the child's policy */
  uint64_t pseed;            /* payload seed */
  uint64_t seed;             /* master seed */
  uint64_t first;            /* expected first index once non-empty */
  uint64_t last;             /* last index verified after the previous round */
  seen_t *seen;              /* seen[i - seen_base]: verified entries */
  uint64_t seen_base;        /* index of seen[0] */
  uint64_t seen_cap;         /* capacity of seen */
  uint64_t kills;            /* children killed */
  uint64_t verified;         /* entries checked in all reopens */
  uint64_t acked;            /* entries acknowledged in all rounds */
  uint64_t inflight_kept;    /* rounds where the unfinished unit survived */
  uint64_t inflight_dropped; /* rounds where it did not */
  uint64_t trims;            /* truncate_front calls */
} state_t;

/* What one round's child reported. */
typedef struct round_s {
  uint64_t round;                /* round number */
  int opened;                    /* M_OPENED seen */
  uint64_t open_next;            /* its next index */
  int have_begin;                /* a unit was begun and not acknowledged */
  uint64_t begin_first, begin_n; /* that unit */
  uint64_t ack_end;              /* end of the last acknowledged unit, or 0 */
  uint64_t acks;                 /* acknowledgements this round */
  uint64_t *units;               /* acked units: first, n pairs */
  size_t nunits, cap;            /* units used and allocated (pairs) */
  int error;                     /* M_ERROR seen */
  int32_t err_code;              /* its code */
  uint64_t err_a, err_b;         /* its details */
  char problem[256];             /* first protocol problem, "" if none */
} round_t;

/* Record the first protocol problem of a round; the parent asserts only
 * after the child is dead, so that a failure never leaves it running. */
#define PROBLEM(rd, ...)                                         \
  do {                                                           \
    if ((rd)->problem[0] == '\0')                                \
      snprintf((rd)->problem, sizeof(rd)->problem, __VA_ARGS__); \
  } while (0)

static void on_msg(state_t *st, round_t *rd, const msg_t *m) {
  switch (m->kind) {
    case M_OPENED:
      rd->opened = 1;
      rd->open_next = m->first;
      if (m->first != st->last + 1)
        PROBLEM(rd,
                "the child's open says next index %" PRIu64
                ", the log ended at %" PRIu64,
                m->first, st->last);
      break;
    case M_BEGIN: {
      uint64_t want = rd->ack_end ? rd->ack_end + 1 : st->last + 1;
      if (rd->have_begin) PROBLEM(rd, "two BEGINs without an ACK");
      if (m->first != want)
        PROBLEM(rd, "unit begins at %" PRIu64 ", want %" PRIu64, m->first,
                want);
      rd->have_begin = 1;
      rd->begin_first = m->first;
      rd->begin_n = m->n;
      break;
    }
    case M_ACK:
      if (!rd->have_begin || rd->begin_first != m->first || rd->begin_n != m->n)
        PROBLEM(rd, "ACK of %" PRIu64 "+%" PRIu64 " without its BEGIN",
                m->first, m->n);
      rd->have_begin = 0;
      rd->ack_end = m->first + m->n - 1;
      rd->acks++;
      if (rd->nunits == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 256;
        uint64_t *u = realloc(rd->units, cap * 2 * sizeof *u);
        if (u == NULL) {
          PROBLEM(rd, "out of memory");
          break;
        }
        rd->units = u;
        rd->cap = cap;
      }
      rd->units[2 * rd->nunits] = m->first;
      rd->units[2 * rd->nunits + 1] = m->n;
      rd->nunits++;
      break;
    case M_ERROR:
      rd->error = 1;
      rd->err_code = m->code;
      rd->err_a = m->first;
      rd->err_b = m->n;
      break;
    default:
      PROBLEM(rd, "unknown message %u", m->kind);
  }
}

/* Read what is in the pipe (blocking until EOF when drain); returns 0 at
 * EOF, 1 otherwise. */
static int pump(state_t *st, round_t *rd, int fd, unsigned char *buf,
                size_t *have) {
  ssize_t r = read(fd, buf + *have, 4096 - *have);
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

/* Make room in st->seen for index i. */
static void seen_reserve(state_t *st, uint64_t i) {
  if (i - st->seen_base < st->seen_cap) return;
  uint64_t cap = st->seen_cap ? st->seen_cap : 4096;
  while (i - st->seen_base >= cap) cap *= 2;
  st->seen = realloc(st->seen, (size_t)cap * sizeof *st->seen);
  cr_assert_not_null(st->seen);
  st->seen_cap = cap;
}

/*
 * Reopen and verify the log after round rd (see the file comment).  Trims
 * the log when it has grown past 2 * KEEP entries.
 */
static void verify(state_t *st, round_t *rd, unsigned char *want) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = SEG_BYTES;
  walrus_t *w = tu_open(st->dir, &cfg);
  uint64_t first = walrus_first_index(w);
  uint64_t last = walrus_last_index(w);

  /* Where the log may end: the last acknowledged unit, or the whole unit
   * that was in flight. */
  uint64_t acked_end = rd->ack_end ? rd->ack_end : st->last;
  uint64_t flight_end =
      rd->have_begin ? rd->begin_first + rd->begin_n - 1 : acked_end;
  cr_assert(last == acked_end || last == flight_end,
            "round %" PRIu64 " (seed %" PRIu64 "): log ends at %" PRIu64
            "; acknowledged up to %" PRIu64 ", in flight up to %" PRIu64,
            rd->round, st->seed, last, acked_end, flight_end);
  if (rd->have_begin) {
    if (last == flight_end && flight_end != acked_end)
      st->inflight_kept++;
    else
      st->inflight_dropped++;
  }
  if (last == 0) {
    cr_assert_eq(first, 0u, "empty log with first index %" PRIu64, first);
    cr_assert_eq(walrus_close(w), WALRUS_OK);
    return;
  }
  cr_assert_eq(first, st->first,
               "round %" PRIu64 ": first index %" PRIu64 ", want %" PRIu64,
               rd->round, first, st->first);

  /* Scan everything with an iterator. */
  walrus_iter_t *it;
  cr_assert_eq(walrus_iter_open(w, 0, &it), WALRUS_OK);
  uint64_t i = first;
  uint64_t unit_term = 0, unit_n = 0;
  int64_t unit_round = -1;
  walrus_entry_t e;
  int rc;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    cr_assert_eq(e.index, i,
                 "iterator gave index %" PRIu64 ", want %" PRIu64 " (gap)",
                 e.index, i);
    cr_assert_leq(i, last);
    /* Payload. */
    size_t len = tu_len(i, st->pseed, MAX_PAYLOAD);
    cr_assert_eq(e.len, len, "entry %" PRIu64 ": %zu bytes, want %zu", i, e.len,
                 len);
    tu_payload(i, st->pseed, want, len);
    cr_assert(len == 0 || memcmp(e.data, want, len) == 0,
              "entry %" PRIu64 ": wrong bytes (seed %" PRIu64 ")", i, st->seed);
    /* Unit markers. */
    uint64_t n = e.type;
    int64_t pos = e.timestamp_ns % TS_ROUND - 1;
    int64_t rnd = e.timestamp_ns / TS_ROUND;
    cr_assert(n >= 1 && n <= MAX_BATCH && e.term <= i &&
                  pos == (int64_t)(i - e.term) && pos < (int64_t)n &&
                  rnd >= 0 && (uint64_t)rnd <= rd->round,
              "entry %" PRIu64 ": bad markers term %" PRIu64 " type %" PRIu64
              " ts %" PRId64,
              i, e.term, n, e.timestamp_ns);
    if (pos == 0) {
      cr_assert(unit_n == 0 || i == unit_term + unit_n,
                "entry %" PRIu64 " starts a unit inside unit %" PRIu64
                " of %" PRIu64,
                i, unit_term, unit_n);
      unit_term = e.term;
      unit_n = n;
      unit_round = rnd;
    } else {
      cr_assert(e.term == unit_term && n == unit_n && rnd == unit_round,
                "entry %" PRIu64 " (term %" PRIu64 " type %" PRIu64
                " round %" PRId64 ") does not continue unit %" PRIu64
                " of %" PRIu64 " from round %" PRId64 ": a split batch",
                i, e.term, n, rnd, unit_term, unit_n, unit_round);
    }
    /* Entries verified before must be unchanged; new ones are this
     * round's. */
    if (i <= st->last && i >= st->seen_base) {
      const seen_t *s = &st->seen[i - st->seen_base];
      cr_assert(s->term == e.term && s->type == e.type &&
                    s->ts == e.timestamp_ns,
                "entry %" PRIu64 " changed since it was verified", i);
    } else if (i > st->last) {
      cr_assert_eq((uint64_t)rnd, rd->round,
                   "entry %" PRIu64 " is new but from round %" PRId64, i, rnd);
      seen_reserve(st, i);
      st->seen[i - st->seen_base] = (seen_t){e.term, e.timestamp_ns, e.type};
    }
    i++;
  }
  cr_assert_eq(rc, WALRUS_DONE, "iteration stopped at %" PRIu64 ": %s: %s", i,
               walrus_errname(rc), walrus_errmsg(w));
  walrus_iter_close(it);
  cr_assert_eq(i, last + 1, "iteration ended at %" PRIu64 ", last is %" PRIu64,
               i - 1, last);
  cr_assert(unit_n == 0 || unit_term + unit_n - 1 == last,
            "the log ends inside unit %" PRIu64 " of %" PRIu64, unit_term,
            unit_n);
  st->verified += last - first + 1;

  /* Every unit acknowledged this round is there as written, read through
   * walrus_get as well. */
  for (size_t u = 0; u < rd->nunits; u++) {
    uint64_t uf = rd->units[2 * u], un = rd->units[2 * u + 1];
    for (uint64_t k = 0; k < un; k += un - 1 ? un - 1 : 1) {
      memset(&e, 0, sizeof e);
      rc = walrus_get(w, uf + k, &e);
      cr_assert_eq(rc, WALRUS_OK, "acknowledged entry %" PRIu64 ": %s", uf + k,
                   walrus_errname(rc));
      cr_assert(e.term == uf && e.type == un &&
                    e.timestamp_ns == (int64_t)(rd->round * TS_ROUND + k + 1),
                "acknowledged entry %" PRIu64 " is not what round %" PRIu64
                " wrote",
                uf + k, rd->round);
      tu_check_bytes(&e, uf + k, st->pseed,
                     tu_len(uf + k, st->pseed, MAX_PAYLOAD));
      walrus_entry_free(&e);
    }
    st->acked += un;
  }

  /* Trim old entries at a unit boundary now and then. */
  if (last - first + 1 > 2 * KEEP) {
    memset(&e, 0, sizeof e);
    cr_assert_eq(walrus_get(w, last - KEEP, &e), WALRUS_OK);
    uint64_t f = e.term;
    walrus_entry_free(&e);
    rc = walrus_truncate_front(w, f);
    cr_assert_eq(rc, WALRUS_OK, "truncate_front(%" PRIu64 "): %s: %s", f,
                 walrus_errname(rc), walrus_errmsg(w));
    cr_assert_eq(walrus_first_index(w), f);
    st->first = f;
    st->trims++;
    /* Forget what is gone. */
    uint64_t drop = f - st->seen_base;
    memmove(st->seen, st->seen + drop,
            (size_t)(st->seen_cap - drop) * sizeof *st->seen);
    st->seen_base = f;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

/* One round: fork, let the child write, kill it, verify. */
static void one_round(state_t *st, uint64_t round, uint64_t *rng,
                      unsigned char *want) {
  int p[2];
  cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
  uint64_t r = splitmix(rng);
  uint64_t rseed = splitmix(rng);
  int by_acks = (r & 1) != 0;
  uint64_t delay_ms = (r >> 8) % 31;
  uint64_t ack_target = (r >> 16) % 64;
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(p[0]);
    child_main(st->dir, p[1], st->sync, st->pseed, rseed, round);
    _exit(5);
  }
  close(p[1]);

  round_t rd;
  memset(&rd, 0, sizeof rd);
  rd.round = round;
  unsigned char buf[4096];
  size_t have = 0;
  uint64_t start = now_ms();
  /* Safety net only: a child that does not get going is killed anyway. */
  uint64_t deadline = start + (by_acks ? 10000 : delay_ms);
  int eof = 0;
  for (;;) {
    if (by_acks && rd.acks >= ack_target) break;
    uint64_t now = now_ms();
    if (now >= deadline) break;
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
  /* Everything the child said before it died. */
  while (!eof && pump(st, &rd, p[0], buf, &have)) {
  }
  close(p[0]);
  cr_assert(rd.problem[0] == '\0', "round %" PRIu64 " (seed %" PRIu64 "): %s",
            round, st->seed, rd.problem);
  cr_assert(!rd.error,
            "round %" PRIu64 " (seed %" PRIu64 "): the child failed: %s "
            "(%" PRIu64 ", %" PRIu64 ")",
            round, st->seed, walrus_errname(rd.err_code), rd.err_a, rd.err_b);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "round %" PRIu64 ": the child was not killed (status 0x%x)", round,
            status);
  st->kills++;
  verify(st, &rd, want);
  free(rd.units);
}

static void run_kills(walrus_sync_t sync, const char *name) {
  uint64_t seed = pick_seed();
  unsigned kills = pick_kills();
  cr_log_info("%s: seed %" PRIu64 " (WALRUS_SEED=%" PRIu64
              " to replay), %u kills",
              name, seed, seed, kills);
  fprintf(stderr, "test_kill %s: WALRUS_SEED=%" PRIu64 ", %u kills\n", name,
          seed, kills);
  char *root = tu_tmpdir();
  state_t st;
  memset(&st, 0, sizeof st);
  st.dir = tu_path(root, "log");
  char *dir = strdup(st.dir);
  st.dir = dir;
  st.sync = sync;
  st.seed = seed;
  st.pseed = seed ^ 0xA5A5A5A5ull;
  st.first = 1;
  st.seen_base = 1;
  unsigned char *want = malloc(MAX_PAYLOAD);
  cr_assert_not_null(want);
  uint64_t rng = seed;
  for (uint64_t round = 1; round <= kills; round++)
    one_round(&st, round, &rng, want);
  cr_assert_eq(st.kills, (uint64_t)kills);
  cr_assert_gt(st.acked, 0u, "no write was ever acknowledged");
  cr_log_info("%s: %" PRIu64 " kills, %" PRIu64
              " entries acknowledged, %" PRIu64
              " entry checks after reopen; unfinished unit kept %" PRIu64
              " times, dropped %" PRIu64 " times; %" PRIu64
              " trims; log ends at %" PRIu64,
              name, st.kills, st.acked, st.verified, st.inflight_kept,
              st.inflight_dropped, st.trims, st.last);
  fprintf(stderr,
          "test_kill %s: %" PRIu64 " kills, %" PRIu64
          " entries acknowledged, %" PRIu64 " entry checks after reopen "
          "(in-flight unit kept %" PRIu64 ", dropped %" PRIu64 ")\n",
          name, st.kills, st.acked, st.verified, st.inflight_kept,
          st.inflight_dropped);
  free(want);
  free(st.seen);
  free(dir);
  tu_tmpdir_remove(root);
}

Test(kill, sync_always) {
  run_kills(WALRUS_SYNC_ALWAYS, "sync always");
}

Test(kill, sync_none) {
  run_kills(WALRUS_SYNC_NONE, "sync none");
}
