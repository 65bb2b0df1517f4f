/*
 * crash_run.h: the harness the kill -9 tests share (tests/crash/test_kill.c,
 * test_tx_kill.c, test_bank.c).
 *
 * This file owns how a crash test runs, not what it checks: the seed and the
 * number of kills (WALRUS_SEED, WALRUS_SOAK) and the lines that print them,
 * the temp dir, one round's fork / report-through-a-pipe / SIGKILL / reap /
 * drain, the protocol-problem and child-failure bookkeeping and the
 * assertions every round ends with, the window of entries verified so far,
 * a set of id hashes, and a child that runs threads over one open log
 * reporting fixed-size crash_msg_t messages.  What a test's child writes and
 * what its parent verifies after each kill stay in the test.
 *
 * Functions marked [child] use no Criterion call and are safe in a forked
 * child that is meant to die by SIGKILL; everything else is for the parent
 * (the Criterion test body) and asserts instead of returning an error.
 * For the time, children use tu_now_ms and tu_sleep_ms (util.h).
 *
 * Small tools
 *   uint64_t crash_splitmix(uint64_t *state)                         [child]
 *       Next number of the splitmix64 stream *state (advances it).
 *   uint64_t crash_id_hash(const char *id)                           [child]
 *       FNV-1a of a transaction id, never 0 (0 becomes 1), so it can go
 *       into a crash_hset_t and serve as a payload seed.
 *   walrus_config_t crash_config(walrus_sync_t sync,
 *                                uint64_t segment_bytes)             [child]
 *       walrus_config_default() with this sync policy and segment size.
 *   int crash_write(int fd, const void *msg, size_t len)             [child]
 *       write() all len bytes in one call (retrying on EINTR); 0 if the
 *       whole message went, -1 if not.  Keep len <= PIPE_BUF so that
 *       messages from several threads never interleave.
 *
 * A test run
 *   void crash_session_begin(crash_session_t *s, const char *tag,
 *                            const char *label, const char *name,
 *                            unsigned kills_default, unsigned soak_factor)
 *       Pick the seed (WALRUS_SEED=<n> if set, else from the clock and the
 *       pid) and the number of kills (kills_default, times soak_factor when
 *       WALRUS_SOAK is set and not "0"), print them as
 *         cr_log_info "[<label>: ]seed S (WALRUS_SEED=S to replay), K kills"
 *         stderr      "<tag>[ <label>]: WALRUS_SEED=S, K kills"
 *       (label may be NULL), make a temp dir s->root, and set s->dir to
 *       "<s->root>/<name>" (not created).
 *   void crash_session_end(crash_session_t *s)
 *       Free s->dir and remove the temp dir with everything in it.
 *
 * One round
 *   void crash_run_round(const crash_plan_t *plan, crash_round_t *cr,
 *                        uint64_t round, uint64_t seed)
 *       Run round number round of the test seeded with seed (both go into
 *       cr and the assertion messages).  Fork; the child closes the read
 *       end and runs plan->child(plan->child_arg, fd), then _exit(5) if it
 *       returns.  The parent reads whole messages of plan->msg_bytes bytes
 *       from the pipe and hands each to plan->on_msg, counting those it
 *       says are acknowledgements in cr->acks, until plan->delay_ms have
 *       passed, or (with plan->by_acks) until plan->ack_target
 *       acknowledgements or plan->stall_ms, or until the pipe closes.
 *       Then it sends SIGKILL, reaps the child, reads what the child wrote
 *       before it died, and, if plan->stall_what is set and stall_ms
 *       passed, records "the child acknowledged only N <stall_what> in S s
 *       (a stall)" as a problem.  It asserts, in this order, that the round
 *       had no protocol problem, that the child reported no failure, and
 *       that the child died by SIGKILL.  Zero *cr before the call.
 *   void crash_problem(crash_round_t *cr, const char *fmt, ...)
 *       Record a protocol problem (printf-style); only the first one of a
 *       round is kept.  The parent asserts only after the child is dead,
 *       so that a failure never leaves it running.
 *   void crash_child_failed(crash_round_t *cr, const char *fmt, ...)
 *       Record that the child reported a failure; fmt gives what follows
 *       "round R (seed S): the child failed" in the assertion message.
 *       The last report of a round is kept.
 *   void crash_opened(crash_round_t *cr, uint64_t next, uint64_t last)
 *       The child says its open succeeded with next index next: sets
 *       cr->opened, and records a problem unless next == last + 1, where
 *       last is the log's last index after the previous round.
 *
 * After a reopen
 *   void crash_scan_end(walrus_t *w, walrus_iter_t *it, int rc,
 *                       uint64_t i, uint64_t last)
 *       End of a scan that stopped with rc at index i: asserts rc is
 *       WALRUS_DONE, closes it, and asserts the scan reached last.
 *   void crash_trim(walrus_t *w, uint64_t f, crash_seen_t *seen)
 *       walrus_truncate_front(w, f), asserting it succeeds and that the
 *       first index is then f, and crash_seen_drop(seen, f).
 *
 * Entries verified so far (a window of fixed-size slots, one per index)
 *   void crash_seen_init(crash_seen_t *s, size_t elem, uint64_t base)
 *       Empty window of elem-byte slots whose first index is base.
 *   void *crash_seen_slot(crash_seen_t *s, uint64_t i)
 *       The slot of index i (>= base), growing the window to hold it.
 *   void *crash_seen_at(const crash_seen_t *s, uint64_t i)
 *       The slot of index i, which must already be in the window.
 *   void crash_seen_drop(crash_seen_t *s, uint64_t f)
 *       Forget the indexes before f (f >= base); f becomes the base.
 *   void crash_seen_free(crash_seen_t *s)
 *       Free the slots.
 *
 * A set of id hashes (open addressing; grows as needed)
 *   void crash_hset_init(crash_hset_t *s, size_t want)
 *       Empty set with room for want hashes before it grows.
 *   int crash_hset_add(crash_hset_t *s, uint64_t h)
 *       Insert h (not 0); 1 if it is new, 0 if it was there already.
 *   int crash_hset_has(const crash_hset_t *s, uint64_t h)
 *       1 if h (not 0) is in the set.
 *   void crash_hset_free(crash_hset_t *s)
 *       Free the set.
 *
 * A child of threads over one log (messages are crash_msg_t)
 *   void crash_threads_main(void *arg, int fd)                      [child]
 *       A plan->child for a crash_threads_t *arg: opens arg->dir with
 *       arg->cfg (on failure reports CRASH_M_ERROR and exits), reports
 *       CRASH_M_OPENED with the next index, and starts arg->threads
 *       threads (at most CRASH_MAX_THREADS); thread t runs
 *       arg->loop(child, rseed ^ (0x1000193 * (t + 1))), which should not
 *       return.  Never returns.
 *   void crash_child_send(crash_child_t *c, uint32_t kind, int32_t code,
 *                         uint64_t first, uint64_t n, const char *id)
 *                                                                    [child]
 *       Report one crash_msg_t to the parent, one at a time; the child
 *       exits with status 4 if the pipe refuses it.  id may be NULL.
 *   CRASH_CHILD_FAIL(c, rc)                                          [child]
 *       Report CRASH_M_ERROR with code rc and this source line as n, then
 *       exit with status 3.
 */
#ifndef WALRUS_TEST_CRASH_RUN_H
#define WALRUS_TEST_CRASH_RUN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "walrus.h"

/* ---- small tools --------------------------------------------------------- */

uint64_t crash_splitmix(uint64_t *state);
uint64_t crash_id_hash(const char *id);
walrus_config_t crash_config(walrus_sync_t sync, uint64_t segment_bytes);
int crash_write(int fd, const void *msg, size_t len);

/* ---- a test run ---------------------------------------------------------- */

/* The seed, the number of kills and where the log lives. */
typedef struct crash_session_s {
  uint64_t seed;  /* WALRUS_SEED, or from the clock */
  unsigned kills; /* rounds to run */
  char *root;     /* the temp dir */
  char *dir;      /* the log directory inside it (malloc()ed) */
} crash_session_t;

void crash_session_begin(crash_session_t *s, const char *tag, const char *label,
                         const char *name, unsigned kills_default,
                         unsigned soak_factor);
void crash_session_end(crash_session_t *s);

/* ---- one round ----------------------------------------------------------- */

/* What the parent learns of one round (see crash_run_round). */
typedef struct crash_round_s {
  uint64_t round;    /* the round number, for messages */
  uint64_t seed;     /* the master seed, for messages */
  int opened;        /* the child reported its open (crash_opened) */
  uint64_t acks;     /* messages on_msg counted as acknowledgements */
  int failed;        /* the child reported a failure */
  char failure[256]; /* what crash_child_failed recorded last */
  char problem[256]; /* first protocol problem, "" if none */
} crash_round_t;

/* How one round's child is run and when it is killed. */
typedef struct crash_plan_s {
  void (*child)(void *arg, int fd); /* [child] the writer; fd: the pipe */
  void *child_arg;                  /* its arg */
  size_t msg_bytes;                 /* size of every message it writes */
  /* One message (msg_bytes bytes, aligned); 1 if it acknowledges. */
  int (*on_msg)(void *ctx, const void *msg);
  void *ctx;              /* on_msg's ctx */
  int by_acks;            /* kill after ack_target acks, not delay_ms */
  uint64_t delay_ms;      /* without by_acks: when to kill */
  uint64_t ack_target;    /* with by_acks: how many acks to wait for */
  uint64_t stall_ms;      /* with by_acks: kill after this anyway */
  const char *stall_what; /* with by_acks: if set, stall_ms is a problem */
} crash_plan_t;

void crash_run_round(const crash_plan_t *plan, crash_round_t *cr,
                     uint64_t round, uint64_t seed);
void crash_problem(crash_round_t *cr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void crash_child_failed(crash_round_t *cr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void crash_opened(crash_round_t *cr, uint64_t next, uint64_t last);

/* ---- after a reopen ------------------------------------------------------ */

/* Entries verified so far: slot i - base holds what the test keeps of
 * index i. */
typedef struct crash_seen_s {
  unsigned char *v; /* cap slots of elem bytes */
  size_t elem;      /* bytes per slot */
  uint64_t base;    /* index of slot 0 */
  uint64_t cap;     /* slots allocated */
} crash_seen_t;

void crash_scan_end(walrus_t *w, walrus_iter_t *it, int rc, uint64_t i,
                    uint64_t last);
void crash_trim(walrus_t *w, uint64_t f, crash_seen_t *seen);

void crash_seen_init(crash_seen_t *s, size_t elem, uint64_t base);
void *crash_seen_slot(crash_seen_t *s, uint64_t i);
void *crash_seen_at(const crash_seen_t *s, uint64_t i);
void crash_seen_drop(crash_seen_t *s, uint64_t f);
void crash_seen_free(crash_seen_t *s);

/* A set of non-zero 64-bit hashes. */
typedef struct crash_hset_s {
  uint64_t *v; /* cap slots, 0 = empty */
  size_t cap;  /* a power of two */
  size_t n;    /* hashes in the set */
} crash_hset_t;

void crash_hset_init(crash_hset_t *s, size_t want);
int crash_hset_add(crash_hset_t *s, uint64_t h);
int crash_hset_has(const crash_hset_t *s, uint64_t h);
void crash_hset_free(crash_hset_t *s);

/* ---- a child of threads over one log ------------------------------------- */

#define CRASH_MAX_THREADS 16

/* Message kinds crash_threads_main sends; a test's own kinds start at
 * CRASH_M_USER. */
enum { CRASH_M_OPENED = 1, CRASH_M_ERROR, CRASH_M_USER };

/* A message from a crash_threads_main child: one write() each, smaller
 * than PIPE_BUF. */
typedef struct crash_msg_s {
  uint32_t kind;  /* CRASH_M_* or the test's own */
  int32_t code;   /* CRASH_M_ERROR: the walrus code */
  uint64_t first; /* CRASH_M_OPENED: next index; else the test's */
  uint64_t n;     /* CRASH_M_ERROR: the child's source line; else the test's */
  char id[40];    /* a transaction id, or "" */
} crash_msg_t;

/* The child's shared state, given to every thread. */
typedef struct crash_child_s {
  walrus_t *w;        /* the open log */
  int fd;             /* the pipe to the parent */
  pthread_mutex_t mu; /* one report at a time */
} crash_child_t;

/* What crash_threads_main runs. */
typedef struct crash_threads_s {
  const char *dir;     /* the log */
  walrus_config_t cfg; /* how to open it */
  uint64_t rseed;      /* the threads' random streams */
  unsigned threads;    /* how many (<= CRASH_MAX_THREADS) */
  void (*loop)(crash_child_t *c, uint64_t rng); /* one thread's work */
} crash_threads_t;

void crash_threads_main(void *arg, int fd);
void crash_child_send(crash_child_t *c, uint32_t kind, int32_t code,
                      uint64_t first, uint64_t n, const char *id);

#define CRASH_CHILD_FAIL(c, rc)                                    \
  do {                                                             \
    crash_child_send((c), CRASH_M_ERROR, (rc), 0, __LINE__, NULL); \
    _exit(3);                                                      \
  } while (0)

#endif /* WALRUS_TEST_CRASH_RUN_H */
