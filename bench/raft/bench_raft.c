/*
 * bench_raft.c: committed entries per second and commit latency of a
 * 3-node raft cluster on loopback, with libwalrus-raft as the store and
 * with raft_uv's own built-in storage, side by side in one run.
 *
 *   bench_raft [-r RUNS] [-s SECONDS] [-w WARMUP_MS] [-b BYTES]
 *              [-c CLIENTS,...] [-d DIR] [-p PORT]
 *
 * Both stores run the same raft 0.15, the same TCP transport (raft_uv's)
 * and the same settings; only the storage differs.  The three nodes are
 * in this process, on one libuv loop, each with its own directory under
 * DIR (default $TMPDIR or /tmp): with walrus, a walrus log under
 * WALRUS_SYNC_ALWAYS, whose writer thread does group commit; with
 * raft_uv, its segment files (written with O_DIRECT and kernel AIO where
 * the file system allows, else through libuv's thread pool).
 *
 * A client keeps one raft_apply() of a BYTES-byte command (default 128, a
 * multiple of 8 as raft_uv's receiver needs) in flight at the leader and
 * issues the next as soon as the previous one is committed and applied,
 * i.e. durable on two of the three nodes.  For each client count (default
 * 1, 4, 16) and each store, RUNS fresh clusters (default 5; the stores
 * alternate run by run) are measured for SECONDS (default 2) after a
 * warm-up of WARMUP_MS (default 300); the table gives the median over the
 * runs of the entries committed per second and of each run's p50 and p99
 * commit latency (from raft_apply() to its callback).  Snapshots use
 * raft's defaults for both stores.
 *
 * Ports: 127.0.0.1, from PORT (default chosen from the process id), three
 * new ones per cluster.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "walrus.h"
#include "walrus_raft.h"

#define NODES 3
#define MAX_CLIENTS 256

enum { STORE_WALRUS, STORE_UV };
static const char *const store_name[] = {"walrus", "raft_uv"};

typedef struct bnode {
  struct raft raft;             /* The raft instance. */
  struct raft_io io;            /* walrus_raft or raft_uv. */
  struct raft_uv_transport tcp; /* raft_uv's transport (raft_uv only). */
  struct raft_fsm fsm;          /* A state machine that does nothing. */
  int closed;                   /* raft_close()'s callback ran. */
  char dir[800];                /* Node directory. */
  char addr[64];                /* 127.0.0.1:port */
} bnode_t;

typedef struct bench bench_t;

typedef struct client {
  struct raft_apply req; /* The request in flight. */
  uint64_t t0_ns;        /* When it was made. */
  bench_t *b;            /* The run. */
} client_t;

struct bench {
  uv_loop_t loop;               /* The one loop of the three nodes. */
  bnode_t node[NODES];          /* The cluster. */
  int leader;                   /* Node the clients talk to. */
  client_t client[MAX_CLIENTS]; /* The clients. */
  unsigned clients;             /* How many. */
  size_t bytes;                 /* Command size. */
  int running;                  /* Clients issue new requests. */
  int measuring;                /* Completions count. */
  unsigned outstanding;         /* Requests in flight. */
  uint64_t committed;           /* Completions while measuring. */
  uint64_t errors;              /* Failed applies. */
  uint64_t *lat;                /* Latencies (ns) while measuring. */
  size_t n_lat, cap_lat;        /* Entries, capacity. */
  uint64_t t_start, t_end;      /* The measured window (uv_hrtime). */
};

/* Result of one run. */
typedef struct result {
  double rate;   /* Committed entries per second. */
  double p50_us; /* Median commit latency. */
  double p99_us; /* 99th percentile. */
} result_t;

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_raft: %s: %s\n", what, why);
  exit(1);
}

/* ---- the state machine ------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result) {
  (void)fsm;
  (void)buf;
  *result = NULL;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs) {
  (void)fsm;
  *bufs = raft_malloc(sizeof **bufs);
  if (*bufs == NULL) return RAFT_NOMEM;
  (*bufs)[0].len = 8;
  (*bufs)[0].base = raft_calloc(1, 8);
  if ((*bufs)[0].base == NULL) {
    raft_free(*bufs);
    return RAFT_NOMEM;
  }
  *n_bufs = 1;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  (void)fsm;
  raft_free(buf->base);
  return 0;
}

/* ---- the cluster ------------------------------------------------------- */

static void node_start(bench_t *b, int i, int store, int port) {
  bnode_t *n = &b->node[i];
  struct raft_configuration conf;
  int rv;
  mkdir(n->dir, 0700);
  if (store == STORE_WALRUS) {
    rv = walrus_raft_init(&n->io, &b->loop, n->dir, NULL);
    if (rv != 0) die("walrus_raft_init", n->io.errmsg);
  } else {
    rv = raft_uv_tcp_init(&n->tcp, &b->loop);
    if (rv != 0) die("raft_uv_tcp_init", raft_strerror(rv));
    rv = raft_uv_init(&n->io, &b->loop, n->dir, &n->tcp);
    if (rv != 0) die("raft_uv_init", n->io.errmsg);
  }
  n->fsm.version = 1;
  n->fsm.apply = fsm_apply;
  n->fsm.snapshot = fsm_snapshot;
  n->fsm.restore = fsm_restore;
  rv = raft_init(&n->raft, &n->io, &n->fsm, (raft_id)(i + 1), n->addr);
  if (rv != 0) die("raft_init", raft_errmsg(&n->raft));
  n->raft.data = n;
  raft_set_heartbeat_timeout(&n->raft, 50);
  raft_set_election_timeout(&n->raft, 500);
  raft_configuration_init(&conf);
  for (int k = 0; k < NODES; k++) {
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port + k);
    if (raft_configuration_add(&conf, (raft_id)(k + 1), a, RAFT_VOTER) != 0)
      die("raft_configuration_add", "out of memory");
  }
  rv = raft_bootstrap(&n->raft, &conf);
  raft_configuration_close(&conf);
  if (rv != 0) die("raft_bootstrap", raft_errmsg(&n->raft));
  rv = raft_start(&n->raft);
  if (rv != 0) die("raft_start", raft_errmsg(&n->raft));
}

static void closed_cb(struct raft *r) {
  ((bnode_t *)r->data)->closed = 1;
}

static void timer_cb(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Runs the loop until pred(b) holds or ms pass; returns pred(b). */
static int run_until(bench_t *b, int (*pred)(bench_t *), unsigned ms) {
  uv_timer_t t;
  int expired = 0;
  uv_timer_init(&b->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, timer_cb, ms, 0);
  while (!(pred != NULL && pred(b)) && !expired) uv_run(&b->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&b->loop, UV_RUN_NOWAIT);
  return pred != NULL && pred(b);
}

static int have_leader(bench_t *b) {
  for (int i = 0; i < NODES; i++)
    if (raft_state(&b->node[i].raft) == RAFT_LEADER) {
      b->leader = i;
      return 1;
    }
  return 0;
}

static int all_closed(bench_t *b) {
  for (int i = 0; i < NODES; i++)
    if (!b->node[i].closed) return 0;
  return 1;
}

static int drained(bench_t *b) {
  return b->outstanding == 0;
}

/* ---- the clients ------------------------------------------------------- */

static void submit(client_t *c);

static void apply_cb(struct raft_apply *req, int status, void *result) {
  client_t *c = req->data;
  bench_t *b = c->b;
  (void)result;
  b->outstanding--;
  if (status != 0) {
    b->errors++;
  } else if (b->measuring) {
    if (b->n_lat == b->cap_lat) {
      b->cap_lat = b->cap_lat ? 2 * b->cap_lat : 65536;
      b->lat = realloc(b->lat, b->cap_lat * sizeof *b->lat);
      if (b->lat == NULL) die("latencies", "out of memory");
    }
    b->lat[b->n_lat++] = uv_hrtime() - c->t0_ns;
    b->committed++;
  }
  if (b->running) submit(c);
}

static void submit(client_t *c) {
  bench_t *b = c->b;
  struct raft_buffer buf;
  int rv;
  buf.len = b->bytes;
  buf.base = raft_malloc(b->bytes);
  if (buf.base == NULL) die("command", "out of memory");
  memset(buf.base, 'x', b->bytes);
  c->req.data = c;
  c->t0_ns = uv_hrtime();
  rv = raft_apply(&b->node[b->leader].raft, &c->req, &buf, 1, apply_cb);
  if (rv != 0) {
    raft_free(buf.base);
    b->errors++;
    return; /* This client stops (leadership lost). */
  }
  b->outstanding++;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void rm_rf(const char *path) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "bench_raft: cannot remove %s\n", path);
}

/* One measured run of a fresh cluster. */
static result_t run_once(int store, unsigned clients, size_t bytes,
                         unsigned seconds, unsigned warmup_ms, const char *base,
                         int port) {
  bench_t *b = calloc(1, sizeof *b);
  result_t r = {0, 0, 0};
  char top[600];
  if (b == NULL) die("bench", "out of memory");
  snprintf(top, sizeof top, "%s/bench-raft-%s-XXXXXX", base, store_name[store]);
  if (mkdtemp(top) == NULL) die(top, strerror(errno));
  if (uv_loop_init(&b->loop) != 0) die("uv_loop_init", "failed");
  b->clients = clients;
  b->bytes = bytes;
  for (int i = 0; i < NODES; i++) {
    snprintf(b->node[i].dir, sizeof b->node[i].dir, "%s/node%d", top, i + 1);
    snprintf(b->node[i].addr, sizeof b->node[i].addr, "127.0.0.1:%d", port + i);
  }
  for (int i = 0; i < NODES; i++) node_start(b, i, store, port);
  if (!run_until(b, have_leader, 20000)) die("election", "no leader in 20 s");
  b->running = 1;
  for (unsigned k = 0; k < clients; k++) {
    b->client[k].b = b;
    submit(&b->client[k]);
  }
  run_until(b, NULL, warmup_ms);
  b->measuring = 1;
  b->t_start = uv_hrtime();
  run_until(b, NULL, seconds * 1000u);
  b->t_end = uv_hrtime();
  b->measuring = 0;
  b->running = 0;
  if (!run_until(b, drained, 20000)) die("drain", "requests never answered");
  if (b->errors != 0)
    fprintf(stderr, "bench_raft: %s, %u clients: %llu failed applies\n",
            store_name[store], clients, (unsigned long long)b->errors);
  r.rate = (double)b->committed / ((double)(b->t_end - b->t_start) / 1e9);
  if (b->n_lat > 0) {
    qsort(b->lat, b->n_lat, sizeof *b->lat, cmp_u64);
    r.p50_us = (double)b->lat[b->n_lat / 2] / 1e3;
    r.p99_us = (double)b->lat[(b->n_lat * 99) / 100] / 1e3;
  }
  for (int i = 0; i < NODES; i++) raft_close(&b->node[i].raft, closed_cb);
  if (!run_until(b, all_closed, 20000)) die("close", "nodes never closed");
  for (int i = 0; i < NODES; i++) {
    if (store == STORE_WALRUS) {
      walrus_raft_close(&b->node[i].io);
    } else {
      raft_uv_close(&b->node[i].io);
      raft_uv_tcp_close(&b->node[i].tcp);
    }
  }
  run_until(b, NULL, 10);
  uv_loop_close(&b->loop);
  rm_rf(top);
  free(b->lat);
  free(b);
  return r;
}

static double median(double *v, unsigned n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_raft [-r RUNS] [-s SECONDS] [-w WARMUP_MS] [-b BYTES]\n"
          "                  [-c CLIENTS,...] [-d DIR] [-p PORT]\n");
  exit(2);
}

int main(int argc, char **argv) {
  unsigned runs = 5, seconds = 2, warmup_ms = 300, counts[16], n_counts = 0;
  size_t bytes = 128;
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char list[256] = "1,4,16";
  int port = 12000 + (int)(getpid() % 1000) * 20, opt;
  while ((opt = getopt(argc, argv, "r:s:w:b:c:d:p:")) != -1) {
    switch (opt) {
      case 'r':
        runs = (unsigned)atoi(optarg);
        break;
      case 's':
        seconds = (unsigned)atoi(optarg);
        break;
      case 'w':
        warmup_ms = (unsigned)atoi(optarg);
        break;
      case 'b':
        bytes = (size_t)atol(optarg);
        break;
      case 'c':
        snprintf(list, sizeof list, "%s", optarg);
        break;
      case 'd':
        dir = optarg;
        break;
      case 'p':
        port = atoi(optarg);
        break;
      default:
        usage();
    }
  }
  if (optind != argc || runs < 1 || runs > 99 || seconds < 1 || bytes < 8 ||
      bytes % 8 != 0 || port < 1024 || port > 65000 - 6 * 99 * 16)
    usage();
  for (char *tok = strtok(list, ","); tok != NULL && n_counts < 16;
       tok = strtok(NULL, ",")) {
    int k = atoi(tok);
    if (k < 1 || k > MAX_CLIENTS) usage();
    counts[n_counts++] = (unsigned)k;
  }
  if (n_counts == 0) usage();
  signal(SIGPIPE, SIG_IGN);
  printf("# bench_raft: 3 nodes in one process on 127.0.0.1, %zu-byte "
         "commands, %u runs x %u s (+%u ms warm-up) per row, medians; "
         "directories under %s; walrus WALRUS_SYNC_ALWAYS\n",
         bytes, runs, seconds, warmup_ms, dir);
  printf("%-8s %7s %12s %10s %10s\n", "store", "clients", "entries/s", "p50_us",
         "p99_us");
  fflush(stdout);
  for (unsigned ci = 0; ci < n_counts; ci++) {
    double rate[2][99], p50[2][99], p99[2][99];
    for (unsigned run = 0; run < runs; run++) {
      for (int store = 0; store < 2; store++) {
        /* The stores alternate, so that drift in the machine's load
         * touches both alike; every cluster gets ports of its own. */
        result_t r =
            run_once(store, counts[ci], bytes, seconds, warmup_ms, dir, port);
        port += 3;
        rate[store][run] = r.rate;
        p50[store][run] = r.p50_us;
        p99[store][run] = r.p99_us;
      }
    }
    for (int store = 0; store < 2; store++) {
      printf("%-8s %7u %12.0f %10.0f %10.0f\n", store_name[store], counts[ci],
             median(rate[store], runs), median(p50[store], runs),
             median(p99[store], runs));
      fflush(stdout);
    }
  }
  return 0;
}
