/*
 * test_raft_errors.c: every storage method of the walrus raft_io when
 * walrus, or the file system under it, fails.  Each failure must come
 * back as raft's error code, and the node must stop: later appends, term
 * and vote updates, truncations, snapshots and sends all fail, and what
 * failed is not in the log after a reopen.  The methods are called
 * directly (no raft instance), through a fault VFS in the log's options.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <uv.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus_raft.h"

TestSuite(raft_errors, .init = tu_fixture_setup, .fini = tu_fixture_teardown,
          .timeout = 60);

typedef struct node {
  uv_loop_t loop;
  struct raft_io io;
  vf_t *vf;
  walrus_config_t cfg;
  char dir[600];
  int closed;
} node_t;

static void node_open(node_t *n) {
  walrus_raft_options_t opt;
  walrus_raft_options_default(&opt);
  opt.log = &n->cfg;
  cr_assert(walrus_raft_init(&n->io, &n->loop, n->dir, &opt) == 0);
  cr_assert_eq(n->io.init(&n->io, 1, "127.0.0.1:9"), 0, "%s", n->io.errmsg);
}

static void node_setup(node_t *n) {
  memset(n, 0, sizeof *n);
  signal(SIGPIPE, SIG_IGN);
  cr_assert(uv_loop_init(&n->loop) == 0);
  n->vf = vf_new();
  walrus_config_default(&n->cfg);
  n->cfg.vfs = vf_vfs(n->vf);
  snprintf(n->dir, sizeof n->dir, "%s/node", tu_tmp);
  node_open(n);
}

static void closed_cb(struct raft_io *io) {
  node_t *n = io->data;
  n->closed = 1;
}

static void node_close(node_t *n) {
  n->io.data = n;
  n->closed = 0;
  n->io.close(&n->io, closed_cb);
  for (int i = 0; i < 10000 && !n->closed; i++) uv_run(&n->loop, UV_RUN_ONCE);
  cr_assert(n->closed);
  walrus_raft_close(&n->io);
}

static void node_reopen(node_t *n) {
  node_close(n);
  vf_disarm(n->vf);
  node_open(n);
}

static void node_teardown(node_t *n) {
  node_close(n);
  uv_run(&n->loop, UV_RUN_DEFAULT);
  cr_assert(uv_loop_close(&n->loop) == 0);
  vf_free(n->vf);
}

static void load(node_t *n, raft_term *term, raft_id *vote, size_t *n_entries) {
  struct raft_snapshot *snap = NULL;
  raft_index start = 0;
  struct raft_entry *entries = NULL;
  cr_assert_eq(
      n->io.load(&n->io, term, vote, &snap, &start, &entries, n_entries), 0,
      "%s", n->io.errmsg);
  if (*n_entries > 0) raft_free(entries[0].batch);
  raft_free(entries);
  if (snap != NULL) {
    raft_configuration_close(&snap->configuration);
    raft_free(snap->bufs[0].base);
    raft_free(snap->bufs);
    raft_free(snap);
  }
}

static void bootstrap(node_t *n) {
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  cr_assert(raft_configuration_add(&conf, 1, "127.0.0.1:9", RAFT_VOTER) == 0);
  cr_assert_eq(n->io.bootstrap(&n->io, &conf), 0, "%s", n->io.errmsg);
  raft_configuration_close(&conf);
}

/* One append of a 16-byte command; the status its callback got. */
typedef struct append {
  struct raft_io_append req;
  struct raft_entry entry;
  char data[16];
  int status;
  int called;
} append_t;

static void append_cb(struct raft_io_append *req, int status) {
  append_t *a = req->data;
  a->status = status;
  a->called = 1;
}

static int append_start(node_t *n, append_t *a, raft_term term) {
  memset(a, 0, sizeof *a);
  memcpy(a->data, "0123456789abcdef", 16);
  a->entry.term = term;
  a->entry.type = RAFT_COMMAND;
  a->entry.buf.base = a->data;
  a->entry.buf.len = 16;
  a->req.data = a;
  return n->io.append(&n->io, &a->req, &a->entry, 1, append_cb);
}

static int append_wait(node_t *n, append_t *a) {
  for (int i = 0; i < 10000 && !a->called; i++) uv_run(&n->loop, UV_RUN_ONCE);
  cr_assert(a->called);
  return a->status;
}

static int append_one(node_t *n) {
  append_t a;
  int rv = append_start(n, &a, 1);
  return rv != 0 ? rv : append_wait(n, &a);
}

static void send_cb(struct raft_io_send *req, int status) {
  (void)req;
  (void)status;
}

/* The node stopped: nothing more is written, acknowledged or sent. */
static void assert_stopped(node_t *n, int code) {
  append_t a;
  struct raft_io_send send;
  struct raft_message msg;
  /* Later calls answer with the raft code of the first failure. */
  int rv = code == WALRUS_ENOSPC     ? RAFT_NOSPACE
           : code == WALRUS_ECORRUPT ? RAFT_CORRUPT
                                     : RAFT_IOERR;
  cr_assert_eq(walrus_raft_failed(&n->io), code, "failed %d, want %s",
               walrus_raft_failed(&n->io), walrus_errname(code));
  cr_assert_neq(strstr(n->io.errmsg, "walrus-raft stopped"), NULL, "%s",
                n->io.errmsg);
  cr_assert_eq(append_start(n, &a, 1), rv);
  cr_assert_eq(n->io.set_term(&n->io, 99), rv);
  cr_assert_eq(n->io.set_vote(&n->io, 2), rv);
  cr_assert_eq(n->io.truncate(&n->io, 1), rv);
  memset(&msg, 0, sizeof msg);
  msg.type = RAFT_IO_REQUEST_VOTE;
  msg.server_id = 2;
  msg.server_address = "127.0.0.1:10";
  cr_assert_eq(n->io.send(&n->io, &send, &msg, send_cb), rv);
}

Test(raft_errors, init_fails_when_the_log_cannot_be_opened) {
  node_t n;
  walrus_raft_options_t opt;
  memset(&n, 0, sizeof n);
  cr_assert(uv_loop_init(&n.loop) == 0);
  n.vf = vf_new();
  walrus_config_default(&n.cfg);
  n.cfg.vfs = vf_vfs(n.vf);
  snprintf(n.dir, sizeof n.dir, "%s/node", tu_tmp);
  walrus_raft_options_default(&opt);
  opt.log = &n.cfg;
  cr_assert(walrus_raft_init(&n.io, &n.loop, n.dir, &opt) == 0);
  vf_arm_fail(n.vf, VF_OPEN, 1, -EIO, 1);
  cr_assert_eq(n.io.init(&n.io, 1, "127.0.0.1:9"), RAFT_IOERR);
  walrus_raft_close(&n.io);
  /* A damaged DIR/state is reported, not taken for term 0. */
  vf_disarm(n.vf);
  tu_write_file(tu_path(n.dir, "state"), "not a state file", 16);
  cr_assert(walrus_raft_init(&n.io, &n.loop, n.dir, &opt) == 0);
  cr_assert_eq(n.io.init(&n.io, 1, "127.0.0.1:9"), RAFT_CORRUPT);
  walrus_raft_close(&n.io);
  /* A sync policy that would acknowledge before durable is refused. */
  n.cfg.sync = WALRUS_SYNC_NONE;
  cr_assert_eq(walrus_raft_init(&n.io, &n.loop, n.dir, &opt), RAFT_INVALID);
  uv_run(&n.loop, UV_RUN_DEFAULT);
  cr_assert(uv_loop_close(&n.loop) == 0);
  vf_free(n.vf);
}

Test(raft_errors, load_fails_on_a_read_error_and_on_damage) {
  node_t n;
  raft_term term;
  raft_id vote;
  size_t count;
  struct raft_snapshot *snap;
  raft_index start;
  struct raft_entry *entries;
  node_setup(&n);
  bootstrap(&n);
  cr_assert_eq(append_one(&n), 0);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(term, 1);
  cr_assert_eq(count, 2);
  node_reopen(&n);
  vf_arm_fail(n.vf, VF_PREAD, 1, -EIO, 1);
  cr_assert_eq(n.io.load(&n.io, &term, &vote, &snap, &start, &entries, &count),
               RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO_READ);
  node_close(&n);
  /* A damaged snapshot file. */
  vf_disarm(n.vf);
  tu_write_file(tu_path(n.dir, "snapshot"), "WRSNAP01 but short", 18);
  node_open(&n);
  cr_assert_eq(n.io.load(&n.io, &term, &vote, &snap, &start, &entries, &count),
               RAFT_CORRUPT);
  assert_stopped(&n, WALRUS_ECORRUPT);
  node_teardown(&n);
}

Test(raft_errors, bootstrap_fails_when_the_entry_cannot_be_synced) {
  node_t n;
  struct raft_configuration conf;
  node_setup(&n);
  raft_configuration_init(&conf);
  cr_assert(raft_configuration_add(&conf, 1, "127.0.0.1:9", RAFT_VOTER) == 0);
  /* The first sync is DIR/state's, the second the entry's. */
  vf_arm_fail(n.vf, VF_SYNC, 2, -EIO, 1);
  cr_assert_eq(n.io.bootstrap(&n.io, &conf), RAFT_IOERR);
  raft_configuration_close(&conf);
  assert_stopped(&n, WALRUS_EIO_FSYNC);
  node_teardown(&n);
}

Test(raft_errors, set_term_fails_and_keeps_the_old_term) {
  node_t n;
  raft_term term;
  raft_id vote;
  size_t count;
  node_setup(&n);
  cr_assert_eq(n.io.set_term(&n.io, 5), 0);
  vf_arm_fail(n.vf, VF_SYNC, 1, -EIO, 0);
  cr_assert_eq(n.io.set_term(&n.io, 6), RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO_FSYNC);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(term, 5);
  /* The rename is the step that makes it the state: failing it keeps 5. */
  vf_arm_fail(n.vf, VF_RENAME, 1, -EIO, 0);
  cr_assert_eq(n.io.set_term(&n.io, 7), RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(term, 5);
  node_teardown(&n);
}

Test(raft_errors, set_vote_fails_when_the_directory_cannot_be_synced) {
  node_t n;
  raft_term term;
  raft_id vote;
  size_t count;
  node_setup(&n);
  cr_assert_eq(n.io.set_term(&n.io, 3), 0);
  vf_arm_fail(n.vf, VF_SYNC_DIR, 1, -EIO, 0);
  cr_assert_eq(n.io.set_vote(&n.io, 2), RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO_FSYNC);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(term, 3);
  cr_assert_eq(n.io.set_vote(&n.io, 2), 0);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(vote, 2);
  node_teardown(&n);
}

Test(raft_errors, append_fails_on_fsync_and_is_not_acknowledged) {
  node_t n;
  append_t a;
  raft_term term;
  raft_id vote;
  size_t count;
  node_setup(&n);
  bootstrap(&n);
  cr_assert_eq(append_one(&n), 0);
  /* The callback never runs inside the append call. */
  cr_assert_eq(append_start(&n, &a, 1), 0);
  cr_assert_eq(a.called, 0);
  cr_assert_eq(append_wait(&n, &a), 0);
  vf_arm_fail(n.vf, VF_SYNC, 1, -EIO, 1);
  cr_assert_eq(append_start(&n, &a, 1), 0);
  cr_assert_eq(a.called, 0);
  cr_assert_eq(append_wait(&n, &a), RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO_FSYNC);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(count, 3, "the failed append must not be in the log");
  node_teardown(&n);
}

/* An entry whose length is not a multiple of 8 (which raft_uv's receiver
 * would misplace) is refused before anything is written; the node goes
 * on. */
Test(raft_errors, append_of_an_unpadded_entry_is_refused) {
  node_t n;
  append_t a;
  raft_term term;
  raft_id vote;
  size_t count;
  node_setup(&n);
  bootstrap(&n);
  memset(&a, 0, sizeof a);
  a.entry.term = 1;
  a.entry.type = RAFT_COMMAND;
  a.entry.buf.base = a.data;
  a.entry.buf.len = 14;
  a.req.data = &a;
  cr_assert_eq(n.io.append(&n.io, &a.req, &a.entry, 1, append_cb),
               RAFT_INVALID);
  cr_assert_neq(strstr(n.io.errmsg, "multiple of 8"), NULL, "%s", n.io.errmsg);
  cr_assert_eq(walrus_raft_failed(&n.io), 0);
  cr_assert_eq(append_one(&n), 0);
  node_reopen(&n);
  load(&n, &term, &vote, &count);
  cr_assert_eq(count, 2, "the bootstrap entry and the padded append");
  node_teardown(&n);
}

Test(raft_errors, append_on_a_full_disk_is_raft_nospace) {
  node_t n;
  node_setup(&n);
  bootstrap(&n);
  vf_arm_short(n.vf, 1, -ENOSPC, 1);
  cr_assert_eq(append_one(&n), RAFT_NOSPACE);
  assert_stopped(&n, WALRUS_ENOSPC);
  node_teardown(&n);
}

Test(raft_errors, truncate_fails_and_the_node_stops) {
  node_t n;
  node_setup(&n);
  bootstrap(&n);
  for (int i = 0; i < 4; i++) cr_assert_eq(append_one(&n), 0);
  cr_assert_eq(n.io.truncate(&n.io, 5), 0);
  cr_assert_eq(walrus_last_index(walrus_raft_log(&n.io)), 4);
  vf_arm_fail(n.vf, VF_ANY, 1, -EIO, 1);
  cr_assert_eq(n.io.truncate(&n.io, 3), RAFT_IOERR);
  cr_assert_neq(walrus_raft_failed(&n.io), 0);
  assert_stopped(&n, walrus_raft_failed(&n.io));
  node_reopen(&n);
  /* Crash-safe either way: the old log or the cut one. */
  uint64_t last = walrus_last_index(walrus_raft_log(&n.io));
  cr_assert(last == 4 || last == 2, "last %llu", (unsigned long long)last);
  node_teardown(&n);
}

typedef struct put {
  struct raft_io_snapshot_put req;
  struct raft_snapshot snap;
  struct raft_buffer buf;
  char data[32];
  int status;
  int called;
} put_t;

static void put_cb(struct raft_io_snapshot_put *req, int status) {
  put_t *p = req->data;
  p->status = status;
  p->called = 1;
}

static int put_snapshot(node_t *n, put_t *p, raft_index index,
                        unsigned trailing) {
  int rv;
  memset(p, 0, sizeof *p);
  memcpy(p->data, "snapshot data of thirty-two byte", 32);
  p->snap.index = index;
  p->snap.term = 1;
  raft_configuration_init(&p->snap.configuration);
  cr_assert(raft_configuration_add(&p->snap.configuration, 1, "127.0.0.1:9",
                                   RAFT_VOTER) == 0);
  p->snap.configuration_index = 1;
  p->buf.base = p->data;
  p->buf.len = 32;
  p->snap.bufs = &p->buf;
  p->snap.n_bufs = 1;
  p->req.data = p;
  rv = n->io.snapshot_put(&n->io, trailing, &p->req, &p->snap, put_cb);
  if (rv == 0) {
    cr_assert_eq(p->called, 0);
    for (int i = 0; i < 10000 && !p->called; i++) uv_run(&n->loop, UV_RUN_ONCE);
    cr_assert(p->called);
    rv = p->status;
  }
  raft_configuration_close(&p->snap.configuration);
  return rv;
}

Test(raft_errors, snapshot_put_fails_and_keeps_the_log) {
  node_t n;
  put_t p;
  node_setup(&n);
  bootstrap(&n);
  for (int i = 0; i < 6; i++) cr_assert_eq(append_one(&n), 0);
  /* Trailing 2 keeps entries 4..7 of a snapshot at 5. */
  cr_assert_eq(put_snapshot(&n, &p, 5, 2), 0);
  cr_assert_eq(walrus_first_index(walrus_raft_log(&n.io)), 4);
  vf_arm_fail(n.vf, VF_RENAME, 1, -EIO, 0);
  cr_assert_eq(put_snapshot(&n, &p, 7, 2), RAFT_IOERR);
  assert_stopped(&n, WALRUS_EIO);
  cr_assert_eq(walrus_first_index(walrus_raft_log(&n.io)), 4);
  node_teardown(&n);
}

typedef struct get {
  struct raft_io_snapshot_get req;
  struct raft_snapshot *snap;
  int status;
  int called;
} get_t;

static void get_cb(struct raft_io_snapshot_get *req, struct raft_snapshot *snap,
                   int status) {
  get_t *g = req->data;
  g->snap = snap;
  g->status = status;
  g->called = 1;
}

Test(raft_errors, snapshot_get_fails_on_a_read_error) {
  node_t n;
  put_t p;
  get_t g;
  node_setup(&n);
  bootstrap(&n);
  for (int i = 0; i < 3; i++) cr_assert_eq(append_one(&n), 0);
  /* Installed from a leader (trailing 0): the log restarts at 11. */
  cr_assert_eq(put_snapshot(&n, &p, 10, 0), 0);
  cr_assert_eq(walrus_last_index(walrus_raft_log(&n.io)), 0);
  cr_assert_eq(walrus_next_index(walrus_raft_log(&n.io)), 11);
  memset(&g, 0, sizeof g);
  g.req.data = &g;
  cr_assert_eq(n.io.snapshot_get(&n.io, &g.req, get_cb), 0);
  cr_assert_eq(g.called, 0);
  for (int i = 0; i < 10000 && !g.called; i++) uv_run(&n.loop, UV_RUN_ONCE);
  cr_assert_eq(g.status, 0);
  cr_assert_eq(g.snap->index, 10);
  cr_assert_eq(g.snap->bufs[0].len, 32);
  cr_assert_eq(memcmp(g.snap->bufs[0].base, p.data, 32), 0);
  cr_assert_eq(g.snap->configuration.n, 1);
  cr_assert_str_eq(g.snap->configuration.servers[0].address, "127.0.0.1:9");
  raft_configuration_close(&g.snap->configuration);
  raft_free(g.snap->bufs[0].base);
  raft_free(g.snap->bufs);
  raft_free(g.snap);
  memset(&g, 0, sizeof g);
  g.req.data = &g;
  vf_arm_fail(n.vf, VF_PREAD, 1, -EIO, 1);
  cr_assert_eq(n.io.snapshot_get(&n.io, &g.req, get_cb), 0);
  for (int i = 0; i < 10000 && !g.called; i++) uv_run(&n.loop, UV_RUN_ONCE);
  cr_assert_eq(g.status, RAFT_IOERR);
  cr_assert_null(g.snap);
  assert_stopped(&n, WALRUS_EIO_READ);
  node_teardown(&n);
}

Test(raft_errors, recover_fails_and_the_node_stops) {
  node_t n;
  struct raft_configuration conf;
  node_setup(&n);
  bootstrap(&n);
  raft_configuration_init(&conf);
  cr_assert(raft_configuration_add(&conf, 1, "127.0.0.1:9", RAFT_VOTER) == 0);
  cr_assert_eq(n.io.recover(&n.io, &conf), 0);
  cr_assert_eq(walrus_last_index(walrus_raft_log(&n.io)), 2);
  vf_arm_fail(n.vf, VF_PWRITE, 1, -EIO, 1);
  cr_assert_eq(n.io.recover(&n.io, &conf), RAFT_IOERR);
  raft_configuration_close(&conf);
  assert_stopped(&n, WALRUS_EIO_WRITE);
  node_reopen(&n);
  cr_assert_eq(walrus_last_index(walrus_raft_log(&n.io)), 2);
  node_teardown(&n);
}
