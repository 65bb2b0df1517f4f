/*
 * test_bank.c: the TransferMoney example written for the Go library walrus
 * (github l00pss/walrus), as an invariant under kill -9.
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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_run.h"
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

/*
 * Messages from the child are crash_msg_t: CRASH_M_OPENED and
 * CRASH_M_ERROR (from crash_run), and these, each with the transaction id:
 *   M_ACK            a transfer committed at first (and first + 1);
 *   M_NOT_COMMITTED  a transfer rolled back, left to expire or abandoned.
 */
enum { M_ACK = CRASH_M_USER, M_NOT_COMMITTED };

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

/* One transfer thread (a crash_threads_t loop).  Never returns; no
 * Criterion call (a forked child meant to die by SIGKILL). */
static void transfer_loop(crash_child_t *c, uint64_t rng) {
  walrus_t *w = c->w;
  for (;;) {
    uint64_t r = crash_splitmix(&rng);
    unsigned from = (unsigned)(r % N_ACCOUNTS);
    unsigned to = (from + 1 + (unsigned)((r >> 8) % (N_ACCOUNTS - 1))) %
                  N_ACCOUNTS;
    unsigned amount = 1 + (unsigned)((r >> 16) % MAX_AMOUNT);
    unsigned kind = (unsigned)((r >> 32) % 16);
    walrus_txid_t id;
    int rc;
    if (kind == 2) { /* left to expire, then a commit that must fail */
      rc = walrus_tx_begin(w, 1 + (uint32_t)((r >> 40) % 3), &id);
      if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
      rc = add_op(w, &id, "DEBIT", from, amount);
      if (rc == WALRUS_OK) rc = add_op(w, &id, "CREDIT", to, amount);
      if (rc != WALRUS_OK && rc != WALRUS_ETXEXPIRED &&
          rc != WALRUS_ETXNOTPENDING)
        CRASH_CHILD_FAIL(c, rc);
      crash_child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      tu_sleep_ms(8);
      rc = walrus_tx_commit(w, &id, NULL, NULL);
      if (rc != WALRUS_ETXEXPIRED && rc != WALRUS_ETXNOTPENDING)
        CRASH_CHILD_FAIL(c, rc == WALRUS_OK ? 1 : rc); /* 1: it committed */
      continue;
    }
    if (kind == 3) { /* abandoned */
      rc = walrus_tx_begin(w, 1, &id);
      if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
      rc = add_op(w, &id, "DEBIT", from, amount);
      if (rc == WALRUS_OK && (r >> 40) % 2)
        rc = add_op(w, &id, "CREDIT", to, amount);
      if (rc != WALRUS_OK && rc != WALRUS_ETXEXPIRED &&
          rc != WALRUS_ETXNOTPENDING)
        CRASH_CHILD_FAIL(c, rc);
      crash_child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      continue;
    }
    rc = walrus_tx_begin(w, 0, &id);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    rc = add_op(w, &id, "DEBIT", from, amount);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    rc = add_op(w, &id, "CREDIT", to, amount);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    if (kind < 2) { /* rolled back on purpose */
      rc = walrus_tx_rollback(w, &id);
      if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
      crash_child_send(c, M_NOT_COMMITTED, 0, 0, 0, id.s);
      continue;
    }
    uint64_t first = 0;
    size_t count = 0;
    rc = walrus_tx_commit(w, &id, &first, &count);
    if (rc != WALRUS_OK) CRASH_CHILD_FAIL(c, rc);
    if (count != 2) CRASH_CHILD_FAIL(c, 2); /* 2: a wrong count */
    crash_child_send(c, M_ACK, 0, first, 0, id.s);
  }
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct ack_s {
  char id[40];
  uint64_t first;
} ack_t;

typedef struct state_s {
  const char *dir;
  uint64_t seed;
  uint64_t first;           /* expected first index */
  uint64_t last;            /* last index verified in the previous round */
  int64_t ckpt[N_ACCOUNTS]; /* balances before st->first, once trimmed */
  int trimmed;              /* the opening transaction was dropped */
  crash_seen_t seen;        /* uint64_t id hash of each verified entry */
  crash_hset_t never;       /* ids that must never appear */
  uint64_t kills, killed_before_open;
  uint64_t acked, not_committed;
  uint64_t new_transfers;   /* transfers first seen after a reopen */
  uint64_t transfer_checks; /* transfers replayed over all reopens */
  uint64_t entry_checks;
  uint64_t trims;
} state_t;

/* What one round's child reported. */
typedef struct round_s {
  crash_round_t cr;     /* round number, problems, failures */
  state_t *st;          /* the state; reports add to st->never */
  ack_t *acks;          /* acknowledged transfers */
  size_t nacks, acap;   /* used and allocated */
  size_t not_committed; /* ids reported this round */
} round_t;

/* One message from the child (a crash_plan_t on_msg); 1 for a transfer
 * acknowledged. */
static int on_msg(void *ctx, const void *msg) {
  round_t *rd = ctx;
  state_t *st = rd->st;
  const crash_msg_t *m = msg;
  char id[40];
  memcpy(id, m->id, sizeof id);
  id[sizeof id - 1] = '\0';
  switch (m->kind) {
    case CRASH_M_OPENED:
      crash_opened(&rd->cr, m->first, st->last);
      break;
    case M_ACK:
      if (!rd->cr.opened || m->first <= st->last) {
        crash_problem(&rd->cr, "ACK of %s at %" PRIu64 " is impossible", id,
                      m->first);
        break;
      }
      if (rd->nacks == rd->acap) {
        size_t cap = rd->acap ? rd->acap * 2 : 64;
        ack_t *a = realloc(rd->acks, cap * sizeof *a);
        if (a == NULL) {
          crash_problem(&rd->cr, "out of memory");
          break;
        }
        rd->acks = a;
        rd->acap = cap;
      }
      memcpy(rd->acks[rd->nacks].id, id, sizeof id);
      rd->acks[rd->nacks].first = m->first;
      rd->nacks++;
      return 1;
    case M_NOT_COMMITTED:
      crash_hset_add(&st->never, crash_id_hash(id));
      rd->not_committed++;
      break;
    case CRASH_M_ERROR:
      crash_child_failed(&rd->cr,
                         " at line %" PRIu64 ": %s (%d; 1: an expired "
                         "transfer committed, 2: a commit of 2 entries "
                         "reported another count)",
                         m->n, walrus_errname(m->code), m->code);
      break;
    default:
      crash_problem(&rd->cr, "unknown message %u", m->kind);
  }
  return 0;
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

/* The id hash remembered for verified entry i. */
static uint64_t *seen_at(const state_t *st, uint64_t i) {
  return crash_seen_at(&st->seen, i);
}

/* Remember entry i's id hash, or check it is unchanged. */
static void note_entry(state_t *st, const round_t *rd, uint64_t i,
                       uint64_t h) {
  if (i <= st->last) {
    if (i >= st->seen.base)
      cr_assert_eq(*seen_at(st, i), h,
                   "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
                   " changed since it was verified",
                   rd->cr.round, st->seed, i);
  } else {
    *(uint64_t *)crash_seen_slot(&st->seen, i) = h;
  }
  st->entry_checks++;
}

/* Read the next entry, which must be index i. */
static int next_entry(walrus_t *w, walrus_iter_t *it, walrus_entry_t *e,
                      uint64_t i, const state_t *st, const round_t *rd) {
  int rc = walrus_iter_next(it, e);
  cr_assert(rc == WALRUS_OK || rc == WALRUS_DONE,
            "round %" PRIu64 ": iteration at %" PRIu64 ": %s: %s", rd->cr.round,
            i, walrus_errname(rc), walrus_errmsg(w));
  if (rc == WALRUS_OK)
    cr_assert_eq(e->index, i,
                 "round %" PRIu64 " (seed %" PRIu64
                 "): iterator gave index %" PRIu64 ", want %" PRIu64 " (a gap)",
                 rd->cr.round, st->seed, e->index, i);
  return rc;
}

/* Reopen, replay and check the ledger after round rd. */
static void verify(state_t *st, round_t *rd) {
  walrus_config_t cfg = crash_config(WALRUS_SYNC_ALWAYS, SEG_BYTES);
  walrus_t *w = tu_open(st->dir, &cfg);
  uint64_t first = walrus_first_index(w);
  uint64_t last = walrus_last_index(w);
  cr_assert_eq(first, st->first,
               "round %" PRIu64 ": first index %" PRIu64 ", want %" PRIu64,
               rd->cr.round, first, st->first);
  cr_assert_geq(last, st->last,
                "round %" PRIu64 " (seed %" PRIu64 "): the log ends at %" PRIu64
                " but ended at %" PRIu64 " after the previous round",
                rd->cr.round, st->seed, last, st->last);

  int64_t bal[N_ACCOUNTS];
  crash_hset_t ids;
  crash_hset_init(&ids, (size_t)(last - first + 1) / 2 + 1);
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
      note_entry(st, rd, i, crash_id_hash(e.tx_id));
    }
    crash_hset_add(&ids, crash_id_hash(init_id));
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
              rd->cr.round, st->seed, i, (int)(e.len < 60 ? e.len : 60),
              (const char *)e.data, e.tx_id ? e.tx_id : "no tx");
    char id[40];
    snprintf(id, sizeof id, "%s", e.tx_id);
    uint64_t h = crash_id_hash(id);
    unsigned from = acct, amt = amount;
    cr_assert(!crash_hset_has(&st->never, h),
              "round %" PRIu64 " (seed %" PRIu64 "): %s at %" PRIu64
              " was rolled back, expired or abandoned, but is in the log",
              rd->cr.round, st->seed, id, i);
    cr_assert(crash_hset_add(&ids, h),
              "round %" PRIu64 ": transaction %s appears in two transfers "
              "(again at %" PRIu64 ")",
              rd->cr.round, id, i);
    note_entry(st, rd, i, h);
    i++;
    rc = next_entry(w, it, &e, i, st, rd);
    cr_assert_eq(rc, WALRUS_OK,
                 "round %" PRIu64 " (seed %" PRIu64 "): the log ends after "
                 "the DEBIT of %s at %" PRIu64 ": half a transfer",
                 rd->cr.round, st->seed, id, i - 1);
    cr_assert(e.tx_id != NULL && strcmp(e.tx_id, id) == 0 &&
                  parse_op(&e, what, &acct, &amount) &&
                  strcmp(what, "CREDIT") == 0,
              "round %" PRIu64 " (seed %" PRIu64 "): entry %" PRIu64
              " should be the CREDIT of %s: \"%.*s\" (%s)",
              rd->cr.round, st->seed, i, id, (int)(e.len < 60 ? e.len : 60),
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
               "round %" PRIu64 " (seed %" PRIu64
               "): the balances total %" PRId64 ", want %d",
               rd->cr.round, st->seed, total, N_ACCOUNTS * INITIAL);

  /* Every acknowledged transfer is where it was acknowledged. */
  for (size_t k = 0; k < rd->nacks; k++) {
    const ack_t *a = &rd->acks[k];
    uint64_t h = crash_id_hash(a->id);
    cr_assert(a->first + 1 <= last && *seen_at(st, a->first) == h &&
                  *seen_at(st, a->first + 1) == h,
              "round %" PRIu64 " (seed %" PRIu64 "): acknowledged transfer %s "
              "is not at %" PRIu64 "..%" PRIu64 " (log ends at %" PRIu64 ")",
              rd->cr.round, st->seed, a->id, a->first, a->first + 1, last);
    cr_assert(!crash_hset_has(&st->never, h), "%s both acknowledged and not",
              a->id);
  }
  st->acked += rd->nacks;
  st->not_committed += rd->not_committed;
  crash_hset_free(&ids);

  /* A checkpoint: keep the balances before cand_at, drop what precedes. */
  if (cand_at > first && last - first + 1 > 2 * KEEP) {
    crash_trim(w, cand_at, &st->seen);
    memcpy(st->ckpt, cand_bal, sizeof cand_bal);
    st->trimmed = 1;
    st->first = cand_at;
    st->trims++;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

/* One round: fork, let the child transfer, kill it, verify. */
static void one_round(state_t *st, uint64_t round, uint64_t *rng) {
  uint64_t r = crash_splitmix(rng);
  crash_threads_t ct = {st->dir, crash_config(WALRUS_SYNC_ALWAYS, SEG_BYTES),
                        crash_splitmix(rng), CHILD_THREADS, transfer_loop};
  ct.cfg.tx_cleanup_interval_ms = 2;
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
      .ack_target = 1 + (r >> 16) % 30,
      .stall_ms = 20000, /* with by_acks, a stall: transfers stopped */
      .stall_what = "transfers",
  };
  crash_run_round(&plan, &rd.cr, round, st->seed);
  st->kills++;
  if (!rd.cr.opened) st->killed_before_open++;
  verify(st, &rd);
  free(rd.acks);
}

/* Write the opening balances as one transaction. */
static void open_ledger(state_t *st) {
  walrus_config_t cfg = crash_config(WALRUS_SYNC_ALWAYS, SEG_BYTES);
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
  for (unsigned k = 0; k < N_ACCOUNTS; k++)
    *(uint64_t *)crash_seen_slot(&st->seen, k + 1) = crash_id_hash(id.s);
  st->last = N_ACCOUNTS;
}

Test(bank, balances_survive_every_kill) {
  crash_session_t cs;
  crash_session_begin(&cs, "test_bank", NULL, "ledger", KILLS_DEFAULT,
                      SOAK_FACTOR);
  uint64_t seed = cs.seed;
  unsigned kills = cs.kills;
  state_t st;
  memset(&st, 0, sizeof st);
  st.dir = cs.dir;
  st.seed = seed;
  st.first = 1;
  crash_seen_init(&st.seen, sizeof(uint64_t), 1);
  crash_hset_init(&st.never, 1024);
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
  crash_hset_free(&st.never);
  crash_seen_free(&st.seen);
  crash_session_end(&cs);
}
