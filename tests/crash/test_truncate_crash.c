/*
 * test_truncate_crash.c: a crash at every VFS call of a truncation, a reset
 * or a rotation leaves the log exactly as it was or exactly as asked.
 *
 * This file owns the crash-point sweep of contract lines 2 and 4 for the
 * operations that rewrite or remove files.  For each scenario the parent
 * builds a log; then, for N = 1, 2, ..., a forked child opens a copy of it
 * through the fault VFS (tests/support/vfs_fault.h), arms a crash at the
 * Nth VFS call, and runs the operation.  The child dies by SIGKILL just
 * before that call.  The parent reopens the copy (read-only, then writable)
 * and asserts that it is EXACTLY the old state or EXACTLY the new state:
 * first, last and next index and every entry's bytes; both opens must agree;
 * and an append then gets the next index and survives another reopen.  The
 * sweep ends at the first N the operation completes without reaching, and
 * that run must have produced the new state.
 *
 * Scenarios: truncate_back inside the tail segment, across segments, and to
 * an empty log; truncate_front removing whole segments, and emptying the log;
 * reset; an append and a batch that rotate the tail segment.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus.h"

#define SEED 0xC4A5Du   /* entries the setup writes and the checks append */
#define SEED_OP 0x0B16u /* entries the rotation operations write */
#define MAX 200         /* largest payload of the setup's entries */
#define MAX_POINTS 5000 /* a sweep longer than this is a bug */

/* A logical state of the log. */
typedef struct lstate_s {
  uint64_t first; /* walrus_first_index */
  uint64_t last;  /* walrus_last_index */
  uint64_t next;  /* walrus_next_index */
} lstate_t;

typedef struct scen_s scen_t;
struct scen_s {
  const char *name;                           /* for messages */
  uint64_t seg_bytes;                         /* segment_bytes */
  void (*setup)(scen_t *sc, const char *dir); /* builds the old state */
  int (*op)(const scen_t *sc, walrus_t *w);   /* the operation */
  uint64_t arg;                               /* the operation's argument */
  uint64_t base_last; /* entries above it were written by the op */
  size_t big_len;     /* payload length of each op-written entry */
  size_t base_segs;   /* segment files after setup */
  long segs_delta;    /* segment files the completed op adds (or, < 0,
                         removes); LONG_MIN: not checked */
  lstate_t old_st;    /* before */
  lstate_t new_st;    /* after */
};

/* ---- building logs ------------------------------------------------------- */

static walrus_t *open_log_with(const char *dir, uint64_t seg_bytes, int ro,
                               int prefill) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = seg_bytes;
  cfg.read_only = ro;
  cfg.prefill_segments = prefill;
  return tu_open(dir, &cfg);
}

static walrus_t *open_log(const char *dir, uint64_t seg_bytes, int ro) {
  return open_log_with(dir, seg_bytes, ro, 1);
}

/* First index of the i-th segment file (in index order) of dir. */
static uint64_t seg_first(const char *dir, size_t i) {
  char **names;
  size_t n = tu_segments(dir, &names);
  cr_assert_lt(i, n, "only %zu segments", n);
  uint64_t first = strtoull(names[i], NULL, 10);
  tu_strv_free(names);
  return first;
}

/* 30 entries in one segment. */
static void setup_one_segment(scen_t *sc, const char *dir) {
  walrus_t *w = open_log(dir, sc->seg_bytes, 0);
  tu_append_n(w, 30, SEED, MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  sc->base_last = 30;
  sc->old_st = (lstate_t){1, 30, 31};
}

/* 120 entries in 4 KiB segments (at least 4 of them). */
static void setup_multi(scen_t *sc, const char *dir) {
  walrus_t *w = open_log(dir, sc->seg_bytes, 0);
  tu_append_n(w, 120, SEED, MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert_geq(tu_segments(dir, NULL), 4u);
  sc->base_last = 120;
  sc->old_st = (lstate_t){1, 120, 121};
}

static void setup_tb_tail(scen_t *sc, const char *dir) {
  setup_one_segment(sc, dir);
  sc->arg = 20;
  sc->new_st = (lstate_t){1, 20, 21};
}

static void setup_tb_segments(scen_t *sc, const char *dir) {
  setup_multi(sc, dir);
  sc->arg = seg_first(dir, 1) + 2; /* inside the second segment */
  /* The segments after the second are removed. */
  sc->segs_delta = 2 - (long)tu_segments(dir, NULL);
  sc->new_st = (lstate_t){1, sc->arg, sc->arg + 1};
}

static void setup_tb_empty(scen_t *sc, const char *dir) {
  setup_multi(sc, dir);
  sc->arg = 0;
  sc->new_st = (lstate_t){0, 0, 1};
}

static void setup_tf_segments(scen_t *sc, const char *dir) {
  setup_multi(sc, dir);
  sc->arg = seg_first(dir, 2) + 1; /* two whole segments go */
  sc->new_st = (lstate_t){sc->arg, 120, 121};
}

static void setup_tf_all(scen_t *sc, const char *dir) {
  setup_multi(sc, dir);
  sc->arg = 121;
  sc->new_st = (lstate_t){0, 0, 121};
}

static void setup_reset(scen_t *sc, const char *dir) {
  setup_multi(sc, dir);
  sc->arg = 1000;
  sc->new_st = (lstate_t){0, 0, 1000};
}

/* A log whose tail segment is full enough that the op's write rotates. */
static void setup_rotation(scen_t *sc, const char *dir) {
  /* Without zeros after the records, so the tail's size says how full it
   * is; the operation's rotation prefills the segment it creates. */
  walrus_t *w = open_log_with(dir, sc->seg_bytes, 0, 0);
  for (;;) {
    tu_append_n(w, 1, SEED, MAX);
    if (tu_segments(dir, NULL) < 2) continue;
    char **names;
    size_t n = tu_segments(dir, &names);
    int64_t tail = tu_file_size(tu_path(dir, names[n - 1]));
    tu_strv_free(names);
    if (tail >= 1400) break;
  }
  uint64_t last = walrus_last_index(w);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  sc->base_last = last;
  sc->old_st = (lstate_t){1, last, last + 1};
  sc->new_st = (lstate_t){1, last + sc->arg, last + sc->arg + 1};
  sc->big_len = sc->arg == 1 ? 3000 : 1500;
}

/* ---- operations (run in the child) -------------------------------------- */

static int op_truncate_back(const scen_t *sc, walrus_t *w) {
  return walrus_truncate_back(w, sc->arg);
}

static int op_truncate_front(const scen_t *sc, walrus_t *w) {
  return walrus_truncate_front(w, sc->arg);
}

static int op_reset(const scen_t *sc, walrus_t *w) {
  return walrus_reset(w, sc->arg);
}

/* The op-written entry for index i (payload SEED_OP, big_len bytes). */
static void big_entry(walrus_entry_t *e, uint64_t i, size_t len,
                      unsigned char *buf) {
  tu_payload(i, SEED_OP, buf, len);
  memset(e, 0, sizeof *e);
  e->term = i;
  e->type = (uint16_t)(i % 7);
  e->timestamp_ns = (int64_t)(1000 + i);
  e->data = buf;
  e->len = len;
}

static int op_append_big(const scen_t *sc, walrus_t *w) {
  static unsigned char bufs[2][3000];
  walrus_entry_t e[2];
  uint64_t next = walrus_next_index(w);
  for (uint64_t j = 0; j < sc->arg; j++)
    big_entry(&e[j], next + j, sc->big_len, bufs[j]);
  uint64_t got = 0;
  int rc = sc->arg == 1 ? walrus_append(w, &e[0], &got)
                        : walrus_write_batch(w, e, (size_t)sc->arg, &got);
  if (rc == WALRUS_OK && got != next) return -1000;
  return rc;
}

/* ---- checking a state ---------------------------------------------------- */

static int same_state(walrus_t *w, const lstate_t *st) {
  return walrus_first_index(w) == st->first &&
         walrus_last_index(w) == st->last && walrus_next_index(w) == st->next;
}

/* Assert every entry from..to is what the setup or the op wrote. */
static void check_entries(walrus_t *w, const scen_t *sc, uint64_t from,
                          uint64_t to) {
  for (uint64_t i = from; i <= to && i != 0; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    int rc = walrus_get(w, i, &e);
    cr_assert_eq(rc, WALRUS_OK, "%s: get %" PRIu64 ": %s: %s", sc->name, i,
                 walrus_errname(rc), walrus_errmsg(w));
    if (i <= sc->base_last) {
      tu_check_entry(&e, i, SEED, MAX);
    } else {
      cr_assert_eq(e.index, i);
      cr_assert_eq(e.term, i);
      cr_assert_eq(e.type, (uint16_t)(i % 7));
      cr_assert_eq(e.timestamp_ns, (int64_t)(1000 + i));
      tu_check_bytes(&e, i, SEED_OP, sc->big_len);
    }
    walrus_entry_free(&e);
  }
}

/* Assert that w is exactly state st, entries included. */
static void check_state(walrus_t *w, const scen_t *sc, const lstate_t *st) {
  cr_assert(same_state(w, st));
  check_entries(w, sc, st->first, st->last);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  if (st->first > 1)
    cr_assert_eq(walrus_get(w, st->first - 1, &e), WALRUS_EINDEX,
                 "%s: entry %" PRIu64 " below the first is readable", sc->name,
                 st->first - 1);
  cr_assert_eq(walrus_get(w, st->last + 1, &e), WALRUS_EINDEX);
}

static const char *state_name(const scen_t *sc, walrus_t *w) {
  if (same_state(w, &sc->old_st)) return "old";
  if (same_state(w, &sc->new_st)) return "new";
  return NULL;
}

/*
 * After a crash (or a completed run) of the operation on dir: reopen
 * read-only and writable, assert old or new state (the same in both), then
 * append and reopen.  Returns 0 for the old state, 1 for the new.
 */
static int verify_after(const scen_t *sc, const char *dir, uint64_t point) {
  walrus_t *w = open_log(dir, sc->seg_bytes, 1);
  const char *ro = state_name(sc, w);
  cr_assert_not_null(
      ro,
      "%s, crash at call %" PRIu64 ": read-only open shows "
      "first %" PRIu64 " last %" PRIu64 " next %" PRIu64 "; old is %" PRIu64
      "/%" PRIu64 "/%" PRIu64 ", new is %" PRIu64 "/%" PRIu64 "/%" PRIu64,
      sc->name, point, walrus_first_index(w), walrus_last_index(w),
      walrus_next_index(w), sc->old_st.first, sc->old_st.last, sc->old_st.next,
      sc->new_st.first, sc->new_st.last, sc->new_st.next);
  int is_new = strcmp(ro, "new") == 0;
  const lstate_t *st = is_new ? &sc->new_st : &sc->old_st;
  check_state(w, sc, st);
  cr_assert_eq(walrus_close(w), WALRUS_OK);

  w = open_log(dir, sc->seg_bytes, 0);
  const char *rw = state_name(sc, w);
  cr_assert_not_null(rw,
                     "%s, crash at call %" PRIu64 ": writable open shows "
                     "first %" PRIu64 " last %" PRIu64 " next %" PRIu64,
                     sc->name, point, walrus_first_index(w),
                     walrus_last_index(w), walrus_next_index(w));
  cr_assert_str_eq(rw, ro,
                   "%s, crash at call %" PRIu64 ": the read-only open saw "
                   "the %s state, the writable open the %s state",
                   sc->name, point, ro, rw);
  check_state(w, sc, st);

  /* An append gets the next index and survives a reopen. */
  tu_append_n(w, 1, SEED, MAX);
  cr_assert_eq(walrus_last_index(w), st->next);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = open_log(dir, sc->seg_bytes, 0);
  uint64_t first = st->first ? st->first : st->next;
  cr_assert_eq(walrus_first_index(w), first);
  cr_assert_eq(walrus_last_index(w), st->next);
  check_entries(w, sc, first, st->last);
  tu_check_range(w, st->next, st->next, SEED, MAX);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  return is_new;
}

/* ---- the sweep ----------------------------------------------------------- */

/* What the child reports when the operation returns. */
typedef struct report_s {
  int32_t rc;         /* the operation's result */
  uint64_t calls;     /* VFS calls it made */
  char history[3800]; /* which calls */
} report_t;

/* The child: open dir through the fault VFS, arm, run the op, report. */
static void child(const scen_t *sc, const char *dir, uint64_t n, int fd) {
  vf_t *vf = vf_new();
  if (vf == NULL) _exit(20);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = sc->seg_bytes;
  cfg.vfs = vf_vfs(vf);
  walrus_t *w = NULL;
  if (walrus_open(dir, &cfg, &w) != WALRUS_OK) _exit(21);
  vf_arm_crash(vf, VF_ANY, n);
  report_t rep;
  memset(&rep, 0, sizeof rep);
  rep.rc = sc->op(sc, w);
  rep.calls = vf_armed_calls(vf);
  vf_disarm(vf);
  vf_history(vf, rep.history, sizeof rep.history);
  const char *p = (const char *)&rep;
  size_t left = sizeof rep;
  while (left > 0) {
    ssize_t r = write(fd, p, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) _exit(22);
    p += r;
    left -= (size_t)r;
  }
  _exit(0);
}

static void sweep(scen_t *sc) {
  char *root = tu_tmpdir();
  char *base = strdup(tu_path(root, "base"));
  char *work = strdup(tu_path(root, "work"));
  sc->setup(sc, base);
  sc->base_segs = tu_segments(base, NULL);
  /* The old state reads back as described before anything crashes. */
  walrus_t *w = open_log(base, sc->seg_bytes, 1);
  check_state(w, sc, &sc->old_st);
  cr_assert_eq(walrus_close(w), WALRUS_OK);

  unsigned olds = 0, news = 0;
  report_t rep;
  uint64_t n;
  for (n = 1; n <= MAX_POINTS; n++) {
    tu_rmrf(work);
    tu_copy_dir(base, work);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      close(p[0]);
      child(sc, work, n, p[1]);
    }
    close(p[1]);
    memset(&rep, 0, sizeof rep);
    size_t got = 0;
    for (;;) {
      ssize_t r = read(p[0], (char *)&rep + got, sizeof rep - got);
      if (r < 0 && errno == EINTR) continue;
      cr_assert(r >= 0, "read: %s", strerror(errno));
      if (r == 0) break;
      got += (size_t)r;
    }
    close(p[0]);
    int status = 0;
    pid_t wr;
    do {
      wr = waitpid(pid, &status, 0);
    } while (wr < 0 && errno == EINTR);
    cr_assert_eq(wr, pid);
    if (WIFSIGNALED(status)) {
      cr_assert_eq(WTERMSIG(status), SIGKILL, "%s: child died of signal %d",
                   sc->name, WTERMSIG(status));
      if (verify_after(sc, work, n))
        news++;
      else
        olds++;
      continue;
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s, point %" PRIu64 ": child exit status 0x%x", sc->name, n,
              status);
    cr_assert_eq(got, sizeof rep);
    break;
  }
  cr_assert_leq(n, (uint64_t)MAX_POINTS, "%s: no end to the crash points",
                sc->name);
  /* The run that reached no crash point completed the operation. */
  cr_assert_eq(rep.rc, WALRUS_OK, "%s: the operation failed: %s", sc->name,
               walrus_errname(rep.rc));
  cr_assert_eq(rep.calls, n - 1,
               "%s: the operation made %" PRIu64 " calls, but a crash at "
               "call %" PRIu64 " did not fire",
               sc->name, rep.calls, n);
  cr_assert_gt(rep.calls, 0u, "%s: the operation made no VFS call", sc->name);
  if (sc->segs_delta != LONG_MIN) {
    long got_segs = (long)tu_segments(work, NULL);
    cr_assert_eq(got_segs, (long)sc->base_segs + sc->segs_delta,
                 "%s: %ld segment files after the operation, want %ld",
                 sc->name, got_segs, (long)sc->base_segs + sc->segs_delta);
  }
  cr_assert_eq(verify_after(sc, work, n), 1,
               "%s: the completed operation left the old state", sc->name);
  size_t segs_after = tu_segments(work, NULL);
  cr_log_info("%s: %" PRIu64 " crash points (%u left the old state, %u the "
              "new); segments %zu -> %zu; calls: %s",
              sc->name, n - 1, olds, news, sc->base_segs, segs_after,
              rep.history);
  fprintf(stderr,
          "test_truncate_crash %s: %" PRIu64
          " crash points (old %u, new %u)\n  calls: %s\n",
          sc->name, n - 1, olds, news, rep.history);
  cr_assert_gt(olds, 0u, "%s: no crash point left the old state", sc->name);
  free(base);
  free(work);
  tu_tmpdir_remove(root);
}

Test(truncate_crash, truncate_back_in_tail) {
  scen_t sc = {.name = "truncate_back in the tail segment",
               .seg_bytes = 1u << 20,
               .setup = setup_tb_tail,
               .op = op_truncate_back,
               .segs_delta = 0};
  sweep(&sc);
}

Test(truncate_crash, truncate_back_across_segments) {
  scen_t sc = {.name = "truncate_back across segments",
               .seg_bytes = 4096,
               .setup = setup_tb_segments,
               .op = op_truncate_back,
               .segs_delta = LONG_MIN /* set by setup */};
  sweep(&sc);
  cr_assert_lt(sc.new_st.last, sc.old_st.last);
}

Test(truncate_crash, truncate_back_to_empty) {
  scen_t sc = {.name = "truncate_back to an empty log",
               .seg_bytes = 4096,
               .setup = setup_tb_empty,
               .op = op_truncate_back,
               .segs_delta = LONG_MIN};
  sweep(&sc);
}

Test(truncate_crash, truncate_front_whole_segments) {
  scen_t sc = {.name = "truncate_front removing two segments",
               .seg_bytes = 4096,
               .setup = setup_tf_segments,
               .op = op_truncate_front,
               .segs_delta = -2};
  sweep(&sc);
}

Test(truncate_crash, truncate_front_everything) {
  scen_t sc = {.name = "truncate_front to last + 1",
               .seg_bytes = 4096,
               .setup = setup_tf_all,
               .op = op_truncate_front,
               .segs_delta = LONG_MIN};
  sweep(&sc);
}

Test(truncate_crash, reset) {
  scen_t sc = {.name = "reset(1000)",
               .seg_bytes = 4096,
               .setup = setup_reset,
               .op = op_reset,
               .segs_delta = LONG_MIN};
  sweep(&sc);
}

Test(truncate_crash, rotation_by_append) {
  scen_t sc = {.name = "rotation by an append",
               .seg_bytes = 4096,
               .setup = setup_rotation,
               .op = op_append_big,
               .arg = 1,
               .segs_delta = 1};
  sweep(&sc);
}

Test(truncate_crash, rotation_by_batch) {
  scen_t sc = {.name = "rotation by a batch of 2",
               .seg_bytes = 4096,
               .setup = setup_rotation,
               .op = op_append_big,
               .arg = 2,
               .segs_delta = 1};
  sweep(&sc);
}
