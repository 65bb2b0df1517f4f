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
 * Four variants: SYNC_ALWAYS; SYNC_NONE, where kill -9 must lose nothing
 * either because every returned write has reached the kernel; SYNC_NONE
 * with mapped_writes, where the appends are stores into the mapped tail
 * and a killed writer leaves its preallocated zeros behind; and SYNC_NONE
 * with zstd compression and compressible payloads, so that kills land
 * inside compressed units (skipped in a build without zstd; it fails if
 * no compressed record is on disk at the end).
 *
 * 200 kills each by default (50 for zstd); WALRUS_SOAK=1 makes it 50
 * times as many.  The seed comes
 * from the clock and is printed; WALRUS_SEED=<n> replays its choices (sizes,
 * batches, delays, ack counts), though not the exact instant each kill lands.
 * Nothing here depends on timing to pass: timing only picks where the crash
 * lands.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash_run.h"
#include "util.h"
#include "walrus.h"

#define KILLS_DEFAULT 200
#define SOAK_FACTOR 50 /* WALRUS_SOAK: 10,000 kills */
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

int walrus__zstd_built(void); /* src/compress.c: 1 if built with zstd */

/* The len bytes of entry idx: random, or with zstd a text that
 * compresses well. */
static void payload(uint64_t idx, uint64_t pseed, int zstd, unsigned char *buf,
                    size_t len) {
  if (zstd)
    tu_text_payload(idx, pseed, buf, len);
  else
    tu_payload(idx, pseed, buf, len);
}

/* ---- the child ----------------------------------------------------------- */

static void child_send(int fd, uint32_t kind, int32_t code, uint64_t first,
                       uint64_t n) {
  msg_t m = {kind, code, first, n};
  if (crash_write(fd, &m, sizeof m) != 0) _exit(4);
}

/* What one round's writer is given. */
typedef struct child_arg_s {
  const char *dir;    /* the log */
  walrus_sync_t sync; /* its policy */
  int mapped;         /* cfg.mapped_writes */
  int zstd;           /* cfg.compression ZSTD, compressible payloads */
  uint64_t pseed;     /* payload seed */
  uint64_t rseed;     /* sizes and batches */
  uint64_t round;     /* for the timestamps */
} child_arg_t;

/*
 * The writer (a crash_plan_t child; arg is a child_arg_t).  Never returns;
 * uses no Criterion call (it is a forked child that is meant to die by
 * SIGKILL).
 */
static void child_main(void *arg, int fd) {
  static unsigned char bufs[MAX_BATCH][MAX_PAYLOAD];
  const child_arg_t *a = arg;
  walrus_config_t cfg = crash_config(a->sync, SEG_BYTES);
  cfg.mapped_writes = a->mapped;
  if (a->zstd) cfg.compression = WALRUS_COMPRESSION_ZSTD;
  walrus_t *w = NULL;
  int rc = walrus_open(a->dir, &cfg, &w);
  if (rc != WALRUS_OK) {
    child_send(fd, M_ERROR, rc, 0, 0);
    _exit(2);
  }
  child_send(fd, M_OPENED, 0, walrus_next_index(w), 0);
  uint64_t rng = a->rseed;
  for (;;) {
    uint64_t next = walrus_next_index(w);
    uint64_t r = crash_splitmix(&rng);
    size_t n = (r & 3) == 0 ? 2 + (size_t)((r >> 8) % (MAX_BATCH - 1)) : 1;
    walrus_entry_t e[MAX_BATCH];
    memset(e, 0, sizeof e);
    for (size_t j = 0; j < n; j++) {
      uint64_t idx = next + j;
      size_t len = tu_len(idx, a->pseed, MAX_PAYLOAD);
      payload(idx, a->pseed, a->zstd, bufs[j], len);
      e[j].term = next;
      e[j].type = (uint16_t)n;
      e[j].timestamp_ns = (int64_t)(a->round * TS_ROUND + j + 1);
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
  int mapped;                /* the child's mapped_writes */
  int zstd;                  /* the child compresses */
  uint64_t pseed;            /* payload seed */
  uint64_t seed;             /* master seed */
  uint64_t first;            /* expected first index once non-empty */
  uint64_t last;             /* last index verified after the previous round */
  crash_seen_t seen;         /* seen_t of each verified entry */
  uint64_t kills;            /* children killed */
  uint64_t verified;         /* entries checked in all reopens */
  uint64_t acked;            /* entries acknowledged in all rounds */
  uint64_t inflight_kept;    /* rounds where the unfinished unit survived */
  uint64_t inflight_dropped; /* rounds where it did not */
  uint64_t trims;            /* truncate_front calls */
} state_t;

/* What one round's child reported. */
typedef struct round_s {
  crash_round_t cr;              /* round number, problems, failures */
  state_t *st;                   /* the state it started from */
  int have_begin;                /* a unit was begun and not acknowledged */
  uint64_t begin_first, begin_n; /* that unit */
  uint64_t ack_end;              /* end of the last acknowledged unit, or 0 */
  uint64_t *units;               /* acked units: first, n pairs */
  size_t nunits, cap;            /* units used and allocated (pairs) */
} round_t;

/* One message from the child (a crash_plan_t on_msg); 1 for an ACK. */
static int on_msg(void *ctx, const void *msg) {
  round_t *rd = ctx;
  const state_t *st = rd->st;
  const msg_t *m = msg;
  switch (m->kind) {
    case M_OPENED:
      crash_opened(&rd->cr, m->first, st->last);
      break;
    case M_BEGIN: {
      uint64_t want = rd->ack_end ? rd->ack_end + 1 : st->last + 1;
      if (rd->have_begin) crash_problem(&rd->cr, "two BEGINs without an ACK");
      if (m->first != want)
        crash_problem(&rd->cr, "unit begins at %" PRIu64 ", want %" PRIu64,
                      m->first, want);
      rd->have_begin = 1;
      rd->begin_first = m->first;
      rd->begin_n = m->n;
      break;
    }
    case M_ACK:
      if (!rd->have_begin || rd->begin_first != m->first || rd->begin_n != m->n)
        crash_problem(&rd->cr,
                      "ACK of %" PRIu64 "+%" PRIu64 " without its BEGIN",
                      m->first, m->n);
      rd->have_begin = 0;
      rd->ack_end = m->first + m->n - 1;
      if (rd->nunits == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 256;
        uint64_t *u = realloc(rd->units, cap * 2 * sizeof *u);
        if (u == NULL) {
          crash_problem(&rd->cr, "out of memory");
          return 1;
        }
        rd->units = u;
        rd->cap = cap;
      }
      rd->units[2 * rd->nunits] = m->first;
      rd->units[2 * rd->nunits + 1] = m->n;
      rd->nunits++;
      return 1;
    case M_ERROR:
      crash_child_failed(&rd->cr, ": %s (%" PRIu64 ", %" PRIu64 ")",
                         walrus_errname(m->code), m->first, m->n);
      break;
    default:
      crash_problem(&rd->cr, "unknown message %u", m->kind);
  }
  return 0;
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
            rd->cr.round, st->seed, last, acked_end, flight_end);
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
               rd->cr.round, first, st->first);

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
    payload(i, st->pseed, st->zstd, want, len);
    cr_assert(len == 0 || memcmp(e.data, want, len) == 0,
              "entry %" PRIu64 ": wrong bytes (seed %" PRIu64 ")", i, st->seed);
    /* Unit markers. */
    uint64_t n = e.type;
    int64_t pos = e.timestamp_ns % TS_ROUND - 1;
    int64_t rnd = e.timestamp_ns / TS_ROUND;
    cr_assert(n >= 1 && n <= MAX_BATCH && e.term <= i &&
                  pos == (int64_t)(i - e.term) && pos < (int64_t)n &&
                  rnd >= 0 && (uint64_t)rnd <= rd->cr.round,
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
    if (i <= st->last && i >= st->seen.base) {
      const seen_t *s = crash_seen_at(&st->seen, i);
      cr_assert(s->term == e.term && s->type == e.type &&
                    s->ts == e.timestamp_ns,
                "entry %" PRIu64 " changed since it was verified", i);
    } else if (i > st->last) {
      cr_assert_eq((uint64_t)rnd, rd->cr.round,
                   "entry %" PRIu64 " is new but from round %" PRId64, i, rnd);
      *(seen_t *)crash_seen_slot(&st->seen, i) =
          (seen_t){e.term, e.timestamp_ns, e.type};
    }
    i++;
  }
  crash_scan_end(w, it, rc, i, last);
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
      cr_assert(
          e.term == uf && e.type == un &&
              e.timestamp_ns == (int64_t)(rd->cr.round * TS_ROUND + k + 1),
          "acknowledged entry %" PRIu64 " is not what round %" PRIu64 " wrote",
          uf + k, rd->cr.round);
      size_t len = tu_len(uf + k, st->pseed, MAX_PAYLOAD);
      payload(uf + k, st->pseed, st->zstd, want, len);
      cr_assert(e.len == len && (len == 0 || memcmp(e.data, want, len) == 0),
                "acknowledged entry %" PRIu64 ": wrong bytes", uf + k);
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
    crash_trim(w, f, &st->seen); /* and forget what is gone */
    st->first = f;
    st->trims++;
  }
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  st->last = last;
}

/* One round: fork, let the child write, kill it, verify. */
static void one_round(state_t *st, uint64_t round, uint64_t *rng,
                      unsigned char *want) {
  uint64_t r = crash_splitmix(rng);
  child_arg_t ca = {st->dir,  st->sync,  st->mapped,
                    st->zstd, st->pseed, crash_splitmix(rng),
                    round};
  round_t rd;
  memset(&rd, 0, sizeof rd);
  rd.st = st;
  crash_plan_t plan = {
      .child = child_main,
      .child_arg = &ca,
      .msg_bytes = sizeof(msg_t),
      .on_msg = on_msg,
      .ctx = &rd,
      .by_acks = (r & 1) != 0,
      .delay_ms = (r >> 8) % 31,
      .ack_target = (r >> 16) % 64,
      /* Safety net only: a child that does not get going is killed
       * anyway. */
      .stall_ms = 10000,
  };
  crash_run_round(&plan, &rd.cr, round, st->seed);
  st->kills++;
  verify(st, &rd, want);
  free(rd.units);
}

/* Compressed records in the segment files of dir. */
static uint64_t count_compressed(const char *dir) {
  char **names;
  uint64_t records = 0;
  size_t n = tu_segments(dir, &names);
  for (size_t i = 0; i < n; i++) {
    size_t size;
    unsigned char *b = tu_read_file(tu_path(dir, names[i]), &size);
    records += tu_zstd_records(b, size);
    free(b);
  }
  tu_strv_free(names);
  return records;
}

static void run_kills(walrus_sync_t sync, int mapped, int zstd,
                      const char *name) {
  crash_session_t cs;
  crash_session_begin(&cs, "test_kill", name, "log",
                      zstd ? KILLS_DEFAULT / 4 : KILLS_DEFAULT, SOAK_FACTOR);
  uint64_t seed = cs.seed;
  unsigned kills = cs.kills;
  state_t st;
  memset(&st, 0, sizeof st);
  st.dir = cs.dir;
  st.sync = sync;
  st.mapped = mapped;
  st.zstd = zstd;
  st.seed = seed;
  st.pseed = seed ^ 0xA5A5A5A5ull;
  st.first = 1;
  crash_seen_init(&st.seen, sizeof(seen_t), 1);
  unsigned char *want = malloc(MAX_PAYLOAD);
  cr_assert_not_null(want);
  uint64_t rng = seed;
  for (uint64_t round = 1; round <= kills; round++)
    one_round(&st, round, &rng, want);
  cr_assert_eq(st.kills, (uint64_t)kills);
  cr_assert_gt(st.acked, 0u, "no write was ever acknowledged");
  uint64_t zrecords = count_compressed(cs.dir);
  if (zstd)
    cr_assert_gt(zrecords, 0u, "no unit was stored compressed");
  else
    cr_assert_eq(zrecords, 0u);
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
  crash_seen_free(&st.seen);
  crash_session_end(&cs);
}

Test(kill, sync_always) {
  run_kills(WALRUS_SYNC_ALWAYS, 0, 0, "sync always");
}

Test(kill, sync_none) {
  run_kills(WALRUS_SYNC_NONE, 0, 0, "sync none");
}

Test(kill, sync_none_mapped_writes) {
  run_kills(WALRUS_SYNC_NONE, 1, 0, "sync none, mapped writes");
}

Test(kill, sync_none_zstd) {
  if (!walrus__zstd_built()) cr_skip_test("built without zstd");
  run_kills(WALRUS_SYNC_NONE, 0, 1, "sync none, zstd");
}
