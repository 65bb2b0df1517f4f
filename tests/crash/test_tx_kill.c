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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_run.h"
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

/*
 * Messages from the child are crash_msg_t: CRASH_M_OPENED and
 * CRASH_M_ERROR (from crash_run), and these, each with the transaction id:
 *   M_ACK       a commit returned: first = its first index, n = entries;
 *   M_ROLLBACK  a rollback returned.
 */
enum { M_ACK = CRASH_M_USER, M_ROLLBACK };

/* ---- the child ----------------------------------------------------------- */

/* One committer thread (a crash_threads_t loop).  Never returns; uses no
 * Criterion call (it runs in a forked child that is meant to die by
 * SIGKILL). */
static void tx_loop(crash_child_t *c, uint64_t rng) {
  unsigned char buf[MAX_PAYLOAD];
  for (;;) {
    walrus_txid_t id;
    int rc = walrus_tx_begin(c->w, 0, &id);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    uint64_t r = crash_splitmix(&rng);
    size_t n = 1 + (size_t)(r % MAX_ENTRIES);
    uint64_t h = crash_id_hash(id.s);
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
      if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    }
    if ((r >> 32) % 10 == 0) {
      rc = walrus_tx_rollback(c->w, &id);
      if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
      crash_child_send(c, M_ROLLBACK, 0, 0, 0, id.s);
      continue;
    }
    uint64_t first = 0;
    size_t count = 0;
    rc = walrus_tx_commit(c->w, &id, &first, &count);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    crash_child_send(c, M_ACK, 0, first, count, id.s);
  }
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct ack_s {
  char id[40];
  uint64_t first, count;
} ack_t;

/* State carried from round to round. */
typedef struct state_s {
  const char *dir;
  uint64_t seed;
  uint64_t first;     /* first index after the last trim (1 before) */
  uint64_t last;      /* last index verified after the previous round */
  crash_seen_t seen;  /* uint64_t id hash of each verified entry */
  uint64_t kills;
  uint64_t killed_before_open; /* rounds where the child never opened */
  uint64_t acked_txs, acked_entries;
  uint64_t rolled_back;
  uint64_t new_txs;      /* transactions first seen after a reopen */
  uint64_t tx_checks;    /* transaction runs checked in all scans */
  uint64_t entry_checks; /* entries checked in all scans */
  uint64_t trims;
} state_t;

/* What one round's child reported. */
typedef struct round_s {
  crash_round_t cr;   /* round number, problems, failures */
  const state_t *st;  /* the state it started from */
  ack_t *acks;        /* acknowledged commits */
  size_t nacks, acap; /* used and allocated */
  ack_t *rbs;         /* rolled-back ids (first, count unused) */
  size_t nrbs, rcap;  /* used and allocated */
} round_t;

/* Append m's id, first and count to *v; 0 (and a problem) on OOM. */
static int push_ack(round_t *rd, ack_t **v, size_t *n, size_t *cap,
                    const crash_msg_t *m) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    ack_t *p = realloc(*v, c * sizeof *p);
    if (p == NULL) {
      crash_problem(&rd->cr, "out of memory");
      return 0;
    }
    *v = p;
    *cap = c;
  }
  ack_t *a = &(*v)[(*n)++];
  memcpy(a->id, m->id, sizeof a->id);
  a->id[sizeof a->id - 1] = '\0';
  a->first = m->first;
  a->count = m->n;
  return 1;
}

/* One message from the child (a crash_plan_t on_msg); 1 for a commit. */
static int on_msg(void *ctx, const void *msg) {
  round_t *rd = ctx;
  const state_t *st = rd->st;
  const crash_msg_t *m = msg;
  switch (m->kind) {
    case CRASH_M_OPENED:
      crash_opened(&rd->cr, m->first, st->last);
      break;
    case M_ACK:
      if (!rd->cr.opened) crash_problem(&rd->cr, "ACK before OPENED");
      if (m->n < 1 || m->n > MAX_ENTRIES || m->first <= st->last)
        crash_problem(&rd->cr,
                      "ACK of %.39s at %" PRIu64 "+%" PRIu64 " is impossible",
                      m->id, m->first, m->n);
      return push_ack(rd, &rd->acks, &rd->nacks, &rd->acap, m);
    case M_ROLLBACK:
      push_ack(rd, &rd->rbs, &rd->nrbs, &rd->rcap, m);
      break;
    case CRASH_M_ERROR:
      crash_child_failed(&rd->cr, " at line %" PRIu64 ": %s", m->n,
                         walrus_errname(m->code));
      break;
    default:
      crash_problem(&rd->cr, "unknown message %u", m->kind);
  }
  return 0;
}

static int well_formed(const char *id) {
  if (id == NULL || strlen(id) != 35 || memcmp(id, "tx_", 3) != 0) return 0;
  for (int i = 3; i < 35; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return 0;
  return 1;
}

/* The id hash remembered for verified entry i. */
static uint64_t *seen_at(const state_t *st, uint64_t i) {
  return crash_seen_at(&st->seen, i);
}

/* Reopen and verify the log after round rd (see the file comment). */
static void verify(state_t *st, round_t *rd, unsigned char *want) {
  walrus_config_t cfg = crash_config(WALRUS_SYNC_ALWAYS, SEG_BYTES);
  walrus_t *w = tu_open(st->dir, &cfg);
  uint64_t first = walrus_first_index(w);
  uint64_t last = walrus_last_index(w);
  cr_assert_geq(last, st->last,
                "round %" PRIu64 " (seed %" PRIu64 "): the log ends at %" PRIu64
                " but ended at %" PRIu64 " after the previous round",
                rd->cr.round, st->seed, last, st->last);
  if (last == 0) {
    cr_assert_eq(first, 0u, "empty log with first index %" PRIu64, first);
    cr_assert_eq(rd->nacks, 0u, "%zu commits acknowledged, log empty",
                 rd->nacks);
    cr_assert_eq(walrus_close(w), WALRUS_OK);
    return;
  }
  cr_assert_eq(first, st->first,
               "round %" PRIu64 ": first index %" PRIu64 ", want %" PRIu64,
               rd->cr.round, first, st->first);

  crash_hset_t ids;
  crash_hset_init(&ids, (size_t)(last - first + 1));
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
                 rd->cr.round, e.index, i);
    cr_assert(well_formed(e.tx_id),
              "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
              " has no transaction id (\"%s\")",
              rd->cr.round, st->seed, i, e.tx_id ? e.tx_id : "(null)");
    uint64_t pos = e.term, n = e.type, h = crash_id_hash(e.tx_id);
    cr_assert(n >= 1 && n <= MAX_ENTRIES && pos < n,
              "entry %" PRIu64 ": position %" PRIu64 " of %" PRIu64, i, pos, n);
    if (pos == 0) {
      cr_assert(run_pos == run_n,
                "round %" PRIu64 " (seed %" PRIu64
                "): transaction %s at %" PRIu64 " has %" PRIu64
                " of its %" PRIu64 " entries, then %s begins at %" PRIu64
                ": a partial transaction",
                rd->cr.round, st->seed, run_id, run_start, run_pos, run_n,
                e.tx_id, i);
      cr_assert(crash_hset_add(&ids, h),
                "round %" PRIu64 ": transaction %s appears twice in the log "
                "(again at %" PRIu64 ")",
                rd->cr.round, e.tx_id, i);
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
                rd->cr.round, st->seed, i, e.tx_id, pos, n, run_start, run_id,
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
      if (i >= st->seen.base)
        cr_assert_eq(*seen_at(st, i), h,
                     "round %" PRIu64 ": entry %" PRIu64
                     " changed since it was verified",
                     rd->cr.round, i);
    } else {
      *(uint64_t *)crash_seen_slot(&st->seen, i) = h;
    }
    st->entry_checks++;
    i++;
  }
  crash_scan_end(w, it, rc, i, last);
  cr_assert_eq(run_pos, run_n,
               "round %" PRIu64 " (seed %" PRIu64 "): the log ends inside "
               "transaction %s (%" PRIu64 " of %" PRIu64 " entries at %" PRIu64
               ")",
               rd->cr.round, st->seed, run_id, run_pos, run_n, run_start);

  /* Every acknowledged commit is there, where it was acknowledged. */
  for (size_t k = 0; k < rd->nacks; k++) {
    const ack_t *a = &rd->acks[k];
    cr_assert_leq(a->first + a->count - 1, last,
                  "round %" PRIu64 " (seed %" PRIu64
                  "): acknowledged %s at %" PRIu64 "+%" PRIu64
                  " is beyond the log's end %" PRIu64,
                  rd->cr.round, st->seed, a->id, a->first, a->count, last);
    for (uint64_t p = 0; p < a->count; p++) {
      uint64_t idx = a->first + p;
      cr_assert_eq(*seen_at(st, idx), crash_id_hash(a->id),
                   "round %" PRIu64 ": acknowledged %s should be at %" PRIu64,
                   rd->cr.round, a->id, idx);
    }
    memset(&e, 0, sizeof e);
    cr_assert_eq(walrus_get(w, a->first, &e), WALRUS_OK);
    cr_assert(e.tx_id != NULL && strcmp(e.tx_id, a->id) == 0 && e.term == 0 &&
                  e.type == a->count,
              "round %" PRIu64 ": acknowledged %s does not start at %" PRIu64,
              rd->cr.round, a->id, a->first);
    walrus_entry_free(&e);
    st->acked_txs++;
    st->acked_entries += a->count;
  }
  /* No rolled-back transaction is there. */
  for (size_t k = 0; k < rd->nrbs; k++)
    cr_assert(!crash_hset_has(&ids, crash_id_hash(rd->rbs[k].id)),
              "round %" PRIu64 " (seed %" PRIu64 "): rolled-back %s is in "
              "the log",
              rd->cr.round, st->seed, rd->rbs[k].id);
  st->rolled_back += rd->nrbs;
  crash_hset_free(&ids);

  /* Trim old transactions now and then. */
  if (trim_at > first && last - first + 1 > 2 * KEEP) {
    crash_trim(w, trim_at, &st->seen);
    st->first = trim_at;
    st->trims++;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

/* One round: fork, let the child commit, kill it, verify. */
static void one_round(state_t *st, uint64_t round, uint64_t *rng,
                      unsigned char *want) {
  uint64_t r = crash_splitmix(rng);
  crash_threads_t ct = {st->dir, crash_config(WALRUS_SYNC_ALWAYS, SEG_BYTES),
                        crash_splitmix(rng), CHILD_THREADS, tx_loop};
  round_t rd;
  memset(&rd, 0, sizeof rd);
  rd.st = st;
  crash_plan_t plan = {
      .child = crash_threads_main,
      .child_arg = &ct,
      .msg_bytes = sizeof(crash_msg_t),
      .on_msg = on_msg,
      .ctx = &rd,
      .by_acks = (r & 3) == 0,
      .delay_ms = (r >> 8) % (MAX_DELAY_MS + 1),
      .ack_target = 1 + (r >> 16) % 40,
      /* With by_acks, 20 s is a stall: commits stopped. */
      .stall_ms = 20000,
      .stall_what = "commits",
  };
  crash_run_round(&plan, &rd.cr, round, st->seed);
  st->kills++;
  if (!rd.cr.opened) st->killed_before_open++;
  verify(st, &rd, want);
  free(rd.acks);
  free(rd.rbs);
}

Test(tx_kill, transactions_are_all_or_nothing) {
  crash_session_t cs;
  crash_session_begin(&cs, "test_tx_kill", NULL, "log", KILLS_DEFAULT,
                      SOAK_FACTOR);
  uint64_t seed = cs.seed;
  unsigned kills = cs.kills;
  state_t st;
  memset(&st, 0, sizeof st);
  st.dir = cs.dir;
  st.seed = seed;
  st.first = 1;
  crash_seen_init(&st.seen, sizeof(uint64_t), 1);
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
  crash_seen_free(&st.seen);
  crash_session_end(&cs);
}
