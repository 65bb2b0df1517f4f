/*
 * test_raft_kill.c: three raft nodes over libwalrus-raft, each in its own
 * process, killed with SIGKILL and restarted.
 *
 *  - old_leader_drops_its_uncommitted_suffix: a leader cut off from its
 *    followers (they are killed) appends entries that cannot commit and is
 *    killed; the others come back, elect a leader and commit other entries
 *    at those indexes; the old leader restarts, and raft makes it drop its
 *    conflicting suffix (walrus_truncate_back) and take the leader's.
 *  - killed_mid_append_recovers: a follower, then the leader, killed while
 *    a stream of appends is flowing; each reopens its log, rejoins and
 *    catches up.
 *  - kill_restart_soak: a random node killed and restarted, under load,
 *    again and again: 4 cycles, or 100 with WALRUS_SOAK set (make soak).
 *
 * After each kill and each restart the logs are read with the walrus
 * public API (read-only opens of DIR/log beside the running nodes), and:
 * every entry a client saw committed is, with its value, at its index in
 * the logs of a majority; once every node has applied up to the leader's
 * commit index, the three logs hold the same entries up to it.
 *
 * The node process is this test program itself, run again with
 * WALRUS_RAFT_KILL_NODE set in its environment: a constructor then runs
 * one raft node instead of Criterion, and talks to the test over its
 * stdin and stdout, one line each way per request:
 *
 *   put V     raft_apply an 8-byte command holding V
 *             -> "ok V INDEX" once committed and applied, "err V CODE"
 *   status    -> "status ID STATE TERM COMMIT APPLIED LAST"
 *   (first)   -> "ready" once raft_start() succeeded
 *
 * A node exits when its stdin closes (the test went away), and at once,
 * printing "failed", when its storage stops.  Everything is on
 * 127.0.0.1, on ports chosen from the test's process id below the
 * ephemeral range.  Snapshots are off (a very high threshold), so every
 * entry stays in every log; test_raft_cluster covers snapshots.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <uv.h>

#include "util.h"
#include "walrus.h"
#include "walrus_raft.h"

#define NODES 3
#define NODE_ENV "WALRUS_RAFT_KILL_NODE"

/* ==== the node process ================================================= */

static uv_loop_t nd_loop;
static struct raft nd_raft;
static struct raft_io nd_io;
static struct raft_fsm nd_fsm;
static uv_pipe_t nd_in;
static char nd_line[4096];
static size_t nd_len;

/* Writes a whole formatted line to stdout, or exits. */
static void nd_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void nd_say(const char *fmt, ...) {
  char buf[256];
  size_t len, off = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  len = strlen(buf);
  while (off < len) {
    ssize_t n = write(1, buf + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0); /* The test is gone. */
    off += (size_t)n;
  }
}

static int nd_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                    void **result) {
  (void)fsm;
  *result = NULL;
  return buf->len == 8 ? 0 : RAFT_MALFORMED;
}

static int nd_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                       unsigned *n_bufs) {
  (void)fsm;
  (void)bufs;
  (void)n_bufs;
  return RAFT_NOTFOUND; /* Never called: the threshold is out of reach. */
}

static int nd_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  (void)fsm;
  (void)buf;
  return RAFT_MALFORMED;
}

typedef struct nd_put {
  struct raft_apply req; /* raft's request. */
  uint64_t v;            /* The command's value. */
} nd_put_t;

static void nd_put_done(struct raft_apply *req, int status, void *result) {
  nd_put_t *p = req->data;
  (void)result;
  if (status == 0)
    nd_say("ok %" PRIu64 " %" PRIu64 "\n", p->v, (uint64_t)req->index);
  else
    nd_say("err %" PRIu64 " %d\n", p->v, status);
  free(p);
}

static void nd_put(uint64_t v) {
  nd_put_t *p = malloc(sizeof *p);
  struct raft_buffer buf;
  int rv;
  buf.len = 8;
  buf.base = raft_malloc(8);
  if (p == NULL || buf.base == NULL) _exit(3);
  memcpy(buf.base, &v, 8);
  p->v = v;
  p->req.data = p;
  rv = raft_apply(&nd_raft, &p->req, &buf, 1, nd_put_done);
  if (rv != 0) {
    raft_free(buf.base);
    free(p);
    nd_say("err %" PRIu64 " %d\n", v, rv);
  }
}

static void nd_serve(char *line) {
  unsigned long long v;
  if (sscanf(line, "put %llu", &v) == 1) {
    nd_put((uint64_t)v);
  } else if (strncmp(line, "status", 6) == 0) {
    nd_say("status %llu %d %llu %llu %llu %llu\n",
           (unsigned long long)nd_raft.id, raft_state(&nd_raft),
           (unsigned long long)nd_raft.current_term,
           (unsigned long long)nd_raft.commit_index,
           (unsigned long long)raft_last_applied(&nd_raft),
           (unsigned long long)raft_last_index(&nd_raft));
  }
}

static void nd_alloc(uv_handle_t *h, size_t size, uv_buf_t *b) {
  (void)h;
  (void)size;
  *b = uv_buf_init(nd_line + nd_len, (unsigned)(sizeof nd_line - 1 - nd_len));
}

static void nd_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  char *nl;
  (void)s;
  (void)b;
  if (n < 0) _exit(0); /* stdin closed: the test is gone. */
  nd_len += (size_t)n;
  nd_line[nd_len] = '\0';
  while ((nl = strchr(nd_line, '\n')) != NULL) {
    *nl = '\0';
    nd_serve(nd_line);
    nd_len -= (size_t)(nl + 1 - nd_line);
    memmove(nd_line, nl + 1, nd_len + 1);
  }
  if (nd_len == sizeof nd_line - 1) _exit(4); /* A line too long. */
}

static void nd_watch(uv_timer_t *t) {
  (void)t;
  if (walrus_raft_failed(&nd_io) != 0) {
    /* Fail-stop: tell the test, and go. */
    nd_say("failed %s\n", nd_io.errmsg);
    _exit(1);
  }
}

/*
 * Runs node id (1..3) with its directory dir, raft on 127.0.0.1:port+i
 * for node i, the given timeouts.  Never returns: the process ends with
 * _exit() (no leak report for the state a SIGKILL would abandon anyway).
 */
static void nd_run(int id, int port, const char *dir, unsigned heartbeat_ms,
                   unsigned election_ms) {
  struct raft_configuration conf;
  uv_timer_t watch;
  char addr[64];
  int rv;
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (uv_loop_init(&nd_loop) != 0) _exit(5);
  rv = walrus_raft_init(&nd_io, &nd_loop, dir, NULL);
  if (rv != 0) {
    fprintf(stderr, "node %d: walrus_raft_init: %s\n", id, nd_io.errmsg);
    _exit(5);
  }
  nd_fsm.version = 1;
  nd_fsm.apply = nd_apply;
  nd_fsm.snapshot = nd_snapshot;
  nd_fsm.restore = nd_restore;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port + id);
  rv = raft_init(&nd_raft, &nd_io, &nd_fsm, (raft_id)id, addr);
  if (rv != 0) {
    fprintf(stderr, "node %d: raft_init: %s\n", id, raft_errmsg(&nd_raft));
    _exit(5);
  }
  raft_set_heartbeat_timeout(&nd_raft, heartbeat_ms);
  raft_set_election_timeout(&nd_raft, election_ms);
  raft_set_snapshot_threshold(&nd_raft, 1u << 30);
  raft_configuration_init(&conf);
  for (int i = 1; i <= NODES; i++) {
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port + i);
    if (raft_configuration_add(&conf, (raft_id)i, a, RAFT_VOTER) != 0) _exit(5);
  }
  rv = raft_bootstrap(&nd_raft, &conf);
  raft_configuration_close(&conf);
  if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
    fprintf(stderr, "node %d: bootstrap: %s\n", id, raft_errmsg(&nd_raft));
    _exit(5);
  }
  rv = raft_start(&nd_raft);
  if (rv != 0) {
    /* load failed: the log, state or snapshot did not reopen cleanly. */
    fprintf(stderr, "node %d: raft_start: %s\n", id, raft_errmsg(&nd_raft));
    _exit(6);
  }
  if (uv_pipe_init(&nd_loop, &nd_in, 0) != 0 || uv_pipe_open(&nd_in, 0) != 0 ||
      uv_read_start((uv_stream_t *)&nd_in, nd_alloc, nd_read) != 0)
    _exit(5);
  uv_timer_init(&nd_loop, &watch);
  uv_timer_start(&watch, nd_watch, 20, 20);
  nd_say("ready\n");
  uv_run(&nd_loop, UV_RUN_DEFAULT);
  _exit(7);
}

/*
 * In a node process, run the node instead of the tests.  In the test
 * process, run the tests one at a time (unless CRITERION_JOBS says
 * otherwise): each drives three node processes, and side by side on a
 * small machine they only slow each other's elections down.  (Run in
 * parallel under ASan, Criterion 2.4's runner also reports a 48-byte leak
 * of its own at exit.)
 */
__attribute__((constructor)) static void nd_main(void) {
  const char *env = getenv(NODE_ENV);
  char dir[1024];
  int id, port;
  unsigned hb, el;
  if (env == NULL) {
    setenv("CRITERION_JOBS", "1", 0);
    return;
  }
  if (sscanf(env, "%d %d %u %u %1023s", &id, &port, &hb, &el, dir) != 5)
    _exit(2);
  nd_run(id, port, dir, hb, el);
}

/* ==== the test side: the cluster of processes ========================= */

typedef struct kn {
  pid_t pid;         /* The node process; 0 when not running. */
  int to;            /* Its stdin (we write). */
  int from;          /* Its stdout (we read, non-blocking). */
  char buf[8192];    /* Unparsed output. */
  size_t len;        /* Bytes in buf. */
  int ready;         /* "ready" seen. */
  int fresh;         /* A status arrived since the last request. */
  int state;         /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER. */
  uint64_t term;     /* current_term. */
  uint64_t commit;   /* commit_index. */
  uint64_t applied;  /* last_applied. */
  uint64_t last;     /* last index (raft's view, in memory). */
  unsigned inflight; /* Puts sent and not answered. */
  char dir[600];     /* Node directory. */
} kn_t;

typedef struct ack {
  uint64_t index; /* Where raft said the command is. */
  uint64_t v;     /* Its value. */
} ack_t;

typedef struct kc {
  kn_t node[NODES]; /* Node i has raft id i + 1. */
  int port;         /* Node i's raft port is port + i + 1. */
  unsigned hb_ms;   /* Heartbeat timeout. */
  unsigned el_ms;   /* Election timeout. */
  ack_t *acks;      /* Every command a client saw committed. */
  size_t n_acks;    /* Entries in acks. */
  size_t cap_acks;  /* Capacity of acks. */
  uint64_t next_v;  /* Value of the next put (unique). */
  uint64_t errors;  /* Puts that came back with an error. */
  uint64_t lost;    /* Puts in flight at a node when it was killed. */
} kc_t;

static void kc_init(kc_t *c, unsigned hb_ms, unsigned el_ms) {
  memset(c, 0, sizeof *c);
  signal(SIGPIPE, SIG_IGN);
  /* Below the ephemeral range (32768..), and apart from raft_harness's
   * 20000 + 10 * (pid % 4000) only by chance: step 4 from 10000. */
  c->port = 10000 + (int)(getpid() % 2400) * 4;
  c->hb_ms = hb_ms;
  c->el_ms = el_ms;
  c->next_v = 1;
  for (int i = 0; i < NODES; i++)
    snprintf(c->node[i].dir, sizeof c->node[i].dir, "%s/node%d", tu_tmp, i + 1);
}

static void kc_spawn(kc_t *c, int i) {
  kn_t *n = &c->node[i];
  int to[2], from[2];
  pid_t pid;
  cr_assert(n->pid == 0);
  cr_assert(pipe2(to, O_CLOEXEC) == 0 && pipe2(from, O_CLOEXEC) == 0);
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    char env[800];
    snprintf(env, sizeof env, "%d %d %u %u %s", i + 1, c->port, c->hb_ms,
             c->el_ms, n->dir);
    if (dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0) _exit(127);
    /* Nothing else of this process, Criterion's channel to its runner
     * among them, stays open in the node. */
    close_range(3, ~0u, 0);
    setenv(NODE_ENV, env, 1);
    execl("/proc/self/exe", "raft-node", (char *)NULL);
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  fcntl(from[0], F_SETFL, fcntl(from[0], F_GETFL) | O_NONBLOCK);
  n->pid = pid;
  n->to = to[1];
  n->from = from[0];
  n->len = 0;
  n->ready = 0;
  n->fresh = 0;
  n->state = 0;
  n->inflight = 0;
}

/* SIGKILL node i and reap it; it must not have died before. */
static void kc_kill(kc_t *c, int i) {
  kn_t *n = &c->node[i];
  int st = 0;
  cr_assert(n->pid > 0);
  kill(n->pid, SIGKILL);
  cr_assert(waitpid(n->pid, &st, 0) == n->pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
            "node %d ended by itself before the kill (status %d)", i + 1, st);
  close(n->to);
  close(n->from);
  n->pid = 0;
  c->lost += n->inflight;
  n->inflight = 0;
  n->state = 0;
}

static void kc_fini(kc_t *c) {
  for (int i = 0; i < NODES; i++)
    if (c->node[i].pid > 0) kc_kill(c, i);
  free(c->acks);
}

static void kc_send(kc_t *c, int i, const char *line) {
  kn_t *n = &c->node[i];
  size_t len = strlen(line), off = 0;
  while (off < len) {
    ssize_t k = write(n->to, line + off, len - off);
    if (k < 0 && errno == EINTR) continue;
    cr_assert(k > 0, "node %d: write: %s", i + 1, strerror(errno));
    off += (size_t)k;
  }
}

static void kc_line(kc_t *c, int i, const char *line) {
  kn_t *n = &c->node[i];
  unsigned long long a, b, d, e, f;
  int state, code;
  if (strcmp(line, "ready") == 0) {
    n->ready = 1;
  } else if (sscanf(line, "status %llu %d %llu %llu %llu %llu", &a, &state, &b,
                    &d, &e, &f) == 6) {
    n->fresh = 1;
    n->state = state;
    n->term = b;
    n->commit = d;
    n->applied = e;
    n->last = f;
  } else if (sscanf(line, "ok %llu %llu", &a, &b) == 2) {
    cr_assert(b > 0, "node %d: a commit with no index", i + 1);
    if (c->n_acks == c->cap_acks) {
      c->cap_acks = c->cap_acks ? 2 * c->cap_acks : 1024;
      c->acks = realloc(c->acks, c->cap_acks * sizeof *c->acks);
      cr_assert(c->acks != NULL);
    }
    c->acks[c->n_acks].v = a;
    c->acks[c->n_acks].index = b;
    c->n_acks++;
    if (n->inflight > 0) n->inflight--;
  } else if (sscanf(line, "err %llu %d", &a, &code) == 2) {
    c->errors++;
    if (n->inflight > 0) n->inflight--;
  } else {
    cr_assert_fail("node %d said: %s", i + 1, line);
  }
}

/* Reads and handles what the running nodes said, waiting up to ms. */
static void kc_pump(kc_t *c, int ms) {
  struct pollfd p[NODES];
  int who[NODES], np = 0;
  for (int i = 0; i < NODES; i++) {
    if (c->node[i].pid == 0) continue;
    p[np].fd = c->node[i].from;
    p[np].events = POLLIN;
    who[np++] = i;
  }
  if (poll(p, (nfds_t)np, ms) <= 0) return;
  for (int k = 0; k < np; k++) {
    kn_t *n = &c->node[who[k]];
    char *nl;
    ssize_t got;
    if (!(p[k].revents & (POLLIN | POLLHUP))) continue;
    got = read(n->from, n->buf + n->len, sizeof n->buf - 1 - n->len);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    cr_assert(got > 0, "node %d died (see its stderr)", who[k] + 1);
    n->len += (size_t)got;
    n->buf[n->len] = '\0';
    while ((nl = strchr(n->buf, '\n')) != NULL) {
      *nl = '\0';
      kc_line(c, who[k], n->buf);
      n->len -= (size_t)(nl + 1 - n->buf);
      memmove(n->buf, nl + 1, n->len + 1);
    }
  }
}

static void kc_wait_ready(kc_t *c, int i) {
  uint64_t end = tu_now_ms() + 20000;
  while (!c->node[i].ready && tu_now_ms() < end) kc_pump(c, 50);
  cr_assert(c->node[i].ready, "node %d did not start", i + 1);
}

/* Fresh status from every running node (asserts they answer). */
static void kc_status(kc_t *c) {
  uint64_t end = tu_now_ms() + 10000;
  int missing;
  for (int i = 0; i < NODES; i++) {
    c->node[i].fresh = 0;
    if (c->node[i].pid > 0) kc_send(c, i, "status\n");
  }
  do {
    kc_pump(c, 20);
    missing = 0;
    for (int i = 0; i < NODES; i++)
      if (c->node[i].pid > 0 && !c->node[i].fresh) missing = 1;
  } while (missing && tu_now_ms() < end);
  cr_assert(!missing, "a node does not answer");
}

/* The running leader of the highest term, from the last statuses; -1. */
static int kc_leader(kc_t *c) {
  int leader = -1;
  for (int i = 0; i < NODES; i++) {
    kn_t *n = &c->node[i];
    if (n->pid == 0 || n->state != RAFT_LEADER) continue;
    if (leader < 0 || n->term > c->node[leader].term) leader = i;
  }
  return leader;
}

static int kc_wait_leader(kc_t *c, unsigned timeout_ms) {
  uint64_t end = tu_now_ms() + timeout_ms;
  int leader;
  do {
    kc_status(c);
    leader = kc_leader(c);
    if (leader < 0) kc_pump(c, 20);
  } while (leader < 0 && tu_now_ms() < end);
  return leader;
}

static void kc_put(kc_t *c, int i) {
  char line[64];
  snprintf(line, sizeof line, "put %" PRIu64 "\n", c->next_v++);
  kc_send(c, i, line);
  c->node[i].inflight++;
}

/*
 * Client load: keeps `clients` puts in flight at whichever node leads,
 * until `acks` more commands were seen committed (within timeout_ms).
 * The puts a killed or deposed leader held are not waited for.
 */
static void kc_load(kc_t *c, unsigned clients, size_t acks,
                    unsigned timeout_ms) {
  size_t want = c->n_acks + acks;
  uint64_t end = tu_now_ms() + timeout_ms, looked = 0;
  int leader = -1;
  while (c->n_acks < want) {
    cr_assert(tu_now_ms() < end, "only %zu of %zu commits in %u ms",
              c->n_acks - (want - acks), acks, timeout_ms);
    if (leader < 0 || tu_now_ms() - looked > 200) {
      kc_status(c);
      leader = kc_leader(c);
      looked = tu_now_ms();
      if (leader < 0) {
        kc_pump(c, 20);
        continue;
      }
    }
    while (c->node[leader].inflight < clients) kc_put(c, leader);
    kc_pump(c, 20);
  }
}

/* Answers to every put in flight (none are left), within timeout_ms. */
static void kc_drain(kc_t *c, unsigned timeout_ms) {
  uint64_t end = tu_now_ms() + timeout_ms;
  unsigned left;
  do {
    kc_pump(c, 20);
    left = 0;
    for (int i = 0; i < NODES; i++)
      if (c->node[i].pid > 0) left += c->node[i].inflight;
  } while (left > 0 && tu_now_ms() < end);
  cr_assert(left == 0, "%u puts never answered", left);
}

/* ---- reading a node's log with the walrus public API ------------------ */

typedef struct ent {
  uint64_t term; /* The raft term. */
  uint16_t type; /* RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE. */
  size_t len;    /* Payload length. */
  uint64_t v;    /* The value of an 8-byte command; else 0. */
  uint64_t hash; /* FNV-1a of the payload. */
} ent_t;

typedef struct klog {
  uint64_t first; /* First index (0: empty log). */
  uint64_t last;  /* Last index. */
  ent_t *e;       /* e[i - first] is entry i. */
} klog_t;

static uint64_t fnv(const void *p, size_t len) {
  const unsigned char *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* One try at reading DIR/log of node i; a walrus code. */
static int klog_try(kc_t *c, int i, klog_t *out) {
  walrus_config_t cfg;
  walrus_t *w = NULL;
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  klog_t lg = {0, 0, NULL};
  int rc;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  rc = walrus_open(tu_path(c->node[i].dir, "log"), &cfg, &w);
  if (rc != WALRUS_OK) return rc;
  lg.first = walrus_first_index(w);
  lg.last = walrus_last_index(w);
  if (lg.first == 0 || lg.last < lg.first) goto done;
  lg.e = calloc(lg.last - lg.first + 1, sizeof *lg.e);
  cr_assert(lg.e != NULL);
  rc = walrus_iter_open(w, lg.first, &it);
  for (uint64_t k = lg.first; rc == WALRUS_OK && k <= lg.last; k++) {
    ent_t *x = &lg.e[k - lg.first];
    rc = walrus_iter_next(it, &e);
    if (rc == WALRUS_DONE) {
      /* Everything up to last was there when we opened. */
      cr_assert_fail("node %d: log ends at %" PRIu64 ", not %" PRIu64, i + 1,
                     k - 1, lg.last);
    }
    if (rc != WALRUS_OK) break;
    cr_assert_eq(e.index, k);
    x->term = e.term;
    x->type = e.type;
    x->len = e.len;
    x->hash = fnv(e.data, e.len);
    if (e.type == RAFT_COMMAND && e.len == 8) memcpy(&x->v, e.data, 8);
  }
done:
  walrus_iter_close(it);
  walrus_close(w);
  if (rc != WALRUS_OK) {
    free(lg.e);
    return rc;
  }
  *out = lg;
  return WALRUS_OK;
}

/* Node i's log, read while the node may be running (retried when the node
 * cut it under the reader: WALRUS_ESTALE). */
static klog_t klog_read(kc_t *c, int i) {
  klog_t lg;
  int rc = WALRUS_ESTALE;
  for (int tries = 0; tries < 50 && rc != WALRUS_OK; tries++) {
    if (tries > 0) tu_sleep_ms(20);
    rc = klog_try(c, i, &lg);
  }
  cr_assert_eq(rc, WALRUS_OK, "node %d: reading its log: %s", i + 1,
               walrus_strerror(rc));
  return lg;
}

static const ent_t *klog_at(const klog_t *lg, uint64_t index) {
  if (lg->first == 0 || index < lg->first || index > lg->last) return NULL;
  return &lg->e[index - lg->first];
}

/*
 * Every command a client saw committed is at its index, with its value,
 * in the logs of a majority (read from disk, killed nodes included).
 */
static void check_acked_on_majority(kc_t *c) {
  klog_t lg[NODES];
  for (int i = 0; i < NODES; i++) lg[i] = klog_read(c, i);
  for (size_t k = 0; k < c->n_acks; k++) {
    int have = 0;
    for (int i = 0; i < NODES; i++) {
      const ent_t *x = klog_at(&lg[i], c->acks[k].index);
      if (x != NULL && x->type == RAFT_COMMAND && x->len == 8 &&
          x->v == c->acks[k].v)
        have++;
    }
    cr_assert_geq(have, NODES / 2 + 1,
                  "committed command %" PRIu64 " at %" PRIu64
                  " is in %d logs only",
                  c->acks[k].v, c->acks[k].index, have);
  }
  for (int i = 0; i < NODES; i++) free(lg[i].e);
}

/*
 * Waits until every running node applied the leader's commit index, then
 * checks that their logs start at 1 and hold the same entries (term,
 * type, payload) from 1 up to it.  Returns that commit index.
 */
static uint64_t check_logs_agree(kc_t *c, unsigned timeout_ms) {
  uint64_t end = tu_now_ms() + timeout_ms, commit;
  int leader = kc_wait_leader(c, timeout_ms), behind;
  klog_t lg[NODES];
  cr_assert(leader >= 0, "no leader");
  commit = c->node[leader].commit;
  do {
    kc_status(c);
    behind = 0;
    for (int i = 0; i < NODES; i++)
      if (c->node[i].pid > 0 && c->node[i].applied < commit) behind = 1;
    if (behind) kc_pump(c, 50);
  } while (behind && tu_now_ms() < end);
  cr_assert(!behind, "a node did not catch up to %" PRIu64, commit);
  for (int i = 0; i < NODES; i++) {
    lg[i] = klog_read(c, i);
    if (c->node[i].pid == 0) continue;
    cr_assert_eq(lg[i].first, 1, "node %d", i + 1);
    cr_assert_geq(lg[i].last, commit, "node %d: last %" PRIu64, i + 1,
                  lg[i].last);
  }
  for (uint64_t k = 1; k <= commit; k++) {
    const ent_t *ref = NULL;
    int refi = -1;
    for (int i = 0; i < NODES; i++) {
      const ent_t *x;
      if (c->node[i].pid == 0) continue;
      x = klog_at(&lg[i], k);
      cr_assert_not_null(x);
      if (ref == NULL) {
        ref = x;
        refi = i;
        continue;
      }
      cr_assert(x->term == ref->term && x->type == ref->type &&
                    x->len == ref->len && x->hash == ref->hash,
                "entry %" PRIu64 ": node %d has term %" PRIu64
                " type %u, node %d term %" PRIu64 " type %u",
                k, refi + 1, ref->term, ref->type, i + 1, x->term, x->type);
    }
  }
  for (int i = 0; i < NODES; i++) free(lg[i].e);
  return commit;
}

/* Starts the three nodes and waits for a leader. */
static int kc_start_all(kc_t *c) {
  int leader;
  for (int i = 0; i < NODES; i++) kc_spawn(c, i);
  for (int i = 0; i < NODES; i++) kc_wait_ready(c, i);
  leader = kc_wait_leader(c, 20000);
  cr_assert(leader >= 0, "no leader elected");
  return leader;
}

TestSuite(raft_kill, .init = tu_fixture_setup, .fini = tu_fixture_teardown,
          .timeout = 240);

/* ==== an old leader's uncommitted suffix =============================== */

Test(raft_kill, old_leader_drops_its_uncommitted_suffix) {
  kc_t c;
  int old, a, b, fresh;
  uint64_t base, old_term, commit;
  klog_t lg;
  /* A long election timeout: the cut-off leader keeps leading (and
   * appending) for at least that long before it steps down. */
  kc_init(&c, 50, 600);
  old = kc_start_all(&c);
  kc_load(&c, 4, 40, 20000);
  kc_drain(&c, 10000);
  check_logs_agree(&c, 20000);
  a = (old + 1) % NODES;
  b = (old + 2) % NODES;

  /* Cut the leader off: its followers die.  It still leads, so it appends
   * five commands no one else gets, which cannot commit. */
  kc_kill(&c, a);
  kc_kill(&c, b);
  kc_status(&c);
  cr_assert_eq(c.node[old].state, RAFT_LEADER, "the leader stepped down early");
  base = c.node[old].last;
  old_term = c.node[old].term;
  uint64_t first_old_v = c.next_v;
  for (int k = 0; k < 5; k++) kc_put(&c, old);
  /* Wait until they are in its log on disk, then kill it. */
  for (int tries = 0; tries < 200; tries++) {
    lg = klog_read(&c, old);
    if (lg.last >= base + 5) break;
    free(lg.e);
    lg.e = NULL;
    kc_pump(&c, 10);
  }
  cr_assert_geq(lg.last, base + 5, "the old leader's log ends at %" PRIu64,
                lg.last);
  for (uint64_t k = base + 1; k <= base + 5; k++) {
    const ent_t *x = klog_at(&lg, k);
    cr_assert(x->v >= first_old_v && x->term == old_term,
              "entry %" PRIu64 " is not one of the cut-off appends", k);
  }
  free(lg.e);
  kc_kill(&c, old);

  /* The two others come back, elect a leader of a later term, and commit
   * other commands at those indexes and past them. */
  kc_spawn(&c, a);
  kc_spawn(&c, b);
  kc_wait_ready(&c, a);
  kc_wait_ready(&c, b);
  fresh = kc_wait_leader(&c, 20000);
  cr_assert(fresh == a || fresh == b);
  cr_assert_gt(c.node[fresh].term, old_term);
  uint64_t first_new_v = c.next_v;
  kc_load(&c, 4, 20, 20000);
  kc_drain(&c, 10000);
  kc_status(&c);
  cr_assert_geq(c.node[fresh].commit, base + 5);

  /* The old leader restarts with its suffix; the leader's entries replace
   * it (raft's truncate, walrus_truncate_back), and the three logs agree
   * up to the commit index. */
  kc_spawn(&c, old);
  kc_wait_ready(&c, old);
  kc_load(&c, 4, 10, 20000);
  kc_drain(&c, 10000);
  commit = check_logs_agree(&c, 30000);
  cr_assert_geq(commit, base + 5);
  lg = klog_read(&c, old);
  for (uint64_t k = base + 1; k <= base + 5; k++) {
    const ent_t *x = klog_at(&lg, k);
    cr_assert_not_null(x);
    cr_assert_gt(x->term, old_term, "entry %" PRIu64 " is still the old one",
                 k);
  }
  for (uint64_t k = lg.first; k <= lg.last; k++) {
    const ent_t *x = klog_at(&lg, k);
    cr_assert(
        !(x->type == RAFT_COMMAND && x->v >= first_old_v && x->v < first_new_v),
        "an uncommitted command of the old leader is at %" PRIu64, k);
  }
  free(lg.e);
  check_acked_on_majority(&c);
  kc_fini(&c);
}

/* ==== kills in the middle of appends =================================== */

/*
 * One cycle: load until `before` more commits, kill node victim without
 * waiting for anything in flight, check the acknowledged commands are on a
 * majority, go on with the survivors for `between` commits, restart the
 * victim, and check it caught up and the logs agree.
 */
static void kill_cycle(kc_t *c, int victim, size_t before, size_t between) {
  int leader;
  kc_load(c, 16, before, 30000);
  /* Sixteen puts just handed to the leader: the victim (the leader, or a
   * follower it is replicating to) dies with appends under way. */
  leader = kc_leader(c);
  if (leader >= 0)
    while (c->node[leader].inflight < 16) kc_put(c, leader);
  kc_kill(c, victim);
  check_acked_on_majority(c);
  kc_load(c, 16, between, 30000);
  kc_spawn(c, victim);
  kc_wait_ready(c, victim);
  kc_load(c, 16, 20, 30000);
  check_logs_agree(c, 30000);
  check_acked_on_majority(c);
}

Test(raft_kill, killed_mid_append_recovers) {
  kc_t c;
  int leader;
  kc_init(&c, 30, 200);
  leader = kc_start_all(&c);
  /* A follower, then whoever leads, killed with 16 puts in flight. */
  kill_cycle(&c, (leader + 1) % NODES, 200, 100);
  leader = kc_wait_leader(&c, 20000);
  cr_assert(leader >= 0);
  kill_cycle(&c, leader, 200, 100);
  kc_drain(&c, 10000);
  check_logs_agree(&c, 30000);
  cr_log_info("%zu commits, %" PRIu64 " puts refused, %" PRIu64
              " in flight at a kill",
              c.n_acks, c.errors, c.lost);
  kc_fini(&c);
}

/* ==== the soak ========================================================= */

static int soak_on(void) {
  const char *s = getenv("WALRUS_SOAK");
  return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

Test(raft_kill, kill_restart_soak, .timeout = 3600) {
  kc_t c;
  const char *seed_env = getenv("WALRUS_SEED");
  uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10)
                           : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  unsigned cycles = soak_on() ? 100 : 4, leaders = 0;
  uint64_t t0 = tu_now_ms(), rng = seed | 1;
  fprintf(stderr, "raft_kill soak: WALRUS_SEED=%" PRIu64 ", %u cycles\n", seed,
          cycles);
  kc_init(&c, 30, 200);
  kc_start_all(&c);
  for (unsigned k = 0; k < cycles; k++) {
    int victim, leader;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    victim = (int)(rng % NODES);
    kc_status(&c);
    leader = kc_leader(&c);
    if (victim == leader) leaders++;
    kill_cycle(&c, victim, 20 + (size_t)(rng >> 8) % 180, 20);
  }
  kc_drain(&c, 10000);
  check_logs_agree(&c, 30000);
  fprintf(stderr,
          "raft_kill soak: %u SIGKILL-restart cycles (%u of a leader), %zu "
          "commits checked, %" PRIu64 " puts refused, %" PRIu64
          " in flight at a kill, %.1f s\n",
          cycles, leaders, c.n_acks, c.errors, c.lost,
          (double)(tu_now_ms() - t0) / 1000.0);
  kc_fini(&c);
}
