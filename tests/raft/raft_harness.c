/*
 * raft_harness.c: the in-process raft cluster of raft_harness.h.
 */
#include "raft_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result) {
  rh_node_t *n = fsm->data;
  uint64_t v = 0;
  if (buf->len != 8) return RAFT_MALFORMED;
  memcpy(&v, buf->base, 8);
  n->applied++;
  n->sum += v;
  *result = NULL;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs) {
  rh_node_t *n = fsm->data;
  uint64_t *p;
  *bufs = raft_malloc(sizeof **bufs);
  p = raft_malloc(16);
  cr_assert(*bufs != NULL && p != NULL);
  p[0] = n->applied;
  p[1] = n->sum;
  (*bufs)[0].base = p;
  (*bufs)[0].len = 16;
  *n_bufs = 1;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  rh_node_t *n = fsm->data;
  uint64_t p[2];
  if (buf->len != 16) return RAFT_MALFORMED;
  memcpy(p, buf->base, 16);
  n->applied = p[0];
  n->sum = p[1];
  raft_free(buf->base);
  return 0;
}

void rh_init(rh_cluster_t *c, const char *base, int n) {
  int port = 20000 + (int)(getpid() % 4000) * 10;
  memset(c, 0, sizeof *c);
  signal(SIGPIPE, SIG_IGN);
  cr_assert(n <= RH_MAX);
  c->n = n;
  snprintf(c->base, sizeof c->base, "%s", base);
  cr_assert(uv_loop_init(&c->loop) == 0);
  for (int i = 0; i < n; i++) {
    snprintf(c->node[i].dir, sizeof c->node[i].dir, "%s/node%d", base, i + 1);
    snprintf(c->node[i].addr, sizeof c->node[i].addr, "127.0.0.1:%d", port + i);
  }
}

void rh_start(rh_cluster_t *c, int i) {
  rh_node_t *n = &c->node[i];
  walrus_raft_options_t opt;
  struct raft_configuration conf;
  int rv;
  walrus_raft_options_default(&opt);
  opt.log = c->log;
  n->closed = 0;
  n->applied = 0;
  n->sum = 0;
  cr_assert(walrus_raft_init(&n->io, &c->loop, n->dir, &opt) == 0);
  n->fsm.version = 1;
  n->fsm.data = n;
  n->fsm.apply = fsm_apply;
  n->fsm.snapshot = fsm_snapshot;
  n->fsm.restore = fsm_restore;
  rv = raft_init(&n->raft, &n->io, &n->fsm, (raft_id)(i + 1), n->addr);
  cr_assert(rv == 0, "raft_init: %s", raft_errmsg(&n->raft));
  n->raft.data = c;
  raft_set_heartbeat_timeout(&n->raft, 20);
  raft_set_election_timeout(&n->raft, 120);
  if (c->threshold) raft_set_snapshot_threshold(&n->raft, c->threshold);
  if (c->trailing) raft_set_snapshot_trailing(&n->raft, c->trailing);
  raft_configuration_init(&conf);
  for (int k = 0; k < c->n; k++)
    cr_assert(raft_configuration_add(&conf, (raft_id)(k + 1), c->node[k].addr,
                                     RAFT_VOTER) == 0);
  rv = raft_bootstrap(&n->raft, &conf);
  cr_assert(rv == 0 || rv == RAFT_CANTBOOTSTRAP, "bootstrap: %s",
            raft_errmsg(&n->raft));
  raft_configuration_close(&conf);
  rv = raft_start(&n->raft);
  cr_assert(rv == 0, "raft_start: %s", raft_errmsg(&n->raft));
  n->running = 1;
}

static void closed_cb(struct raft *r) {
  rh_cluster_t *c = r->data;
  for (int i = 0; i < c->n; i++)
    if (&c->node[i].raft == r) c->node[i].closed = 1;
}

static int node_closed(rh_cluster_t *c, void *arg) {
  (void)c;
  return ((rh_node_t *)arg)->closed;
}

void rh_stop(rh_cluster_t *c, int i) {
  rh_node_t *n = &c->node[i];
  if (!n->running) return;
  raft_close(&n->raft, closed_cb);
  cr_assert(rh_run_until(c, node_closed, n, 10000), "close of node %d", i);
  walrus_raft_close(&n->io);
  n->running = 0;
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void rh_fini(rh_cluster_t *c) {
  for (int i = 0; i < c->n; i++) rh_stop(c, i);
  uv_run(&c->loop, UV_RUN_NOWAIT);
  uv_walk(&c->loop, walk_close, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
}

static void timer_cb(uv_timer_t *t) {
  *(int *)t->data = 1;
}

int rh_run_until(rh_cluster_t *c, int (*pred)(rh_cluster_t *, void *),
                 void *arg, unsigned timeout_ms) {
  uv_timer_t t;
  int expired = 0, ok;
  uv_timer_init(&c->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, timer_cb, timeout_ms, 0);
  while (!(ok = pred == NULL ? 0 : pred(c, arg)) && !expired)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&c->loop, UV_RUN_NOWAIT);
  return ok;
}

void rh_run_for(rh_cluster_t *c, unsigned ms) {
  rh_run_until(c, NULL, NULL, ms);
}

int rh_leader(rh_cluster_t *c) {
  int leader = -1;
  for (int i = 0; i < c->n; i++) {
    if (!c->node[i].running) continue;
    if (raft_state(&c->node[i].raft) == RAFT_LEADER) leader = i;
  }
  if (leader < 0) return -1;
  for (int i = 0; i < c->n; i++) {
    raft_id id;
    const char *addr;
    if (!c->node[i].running) continue;
    raft_leader(&c->node[i].raft, &id, &addr);
    if (id != (raft_id)(leader + 1)) return -1;
  }
  return leader;
}

static int have_leader(rh_cluster_t *c, void *arg) {
  (void)arg;
  return rh_leader(c) >= 0;
}

int rh_wait_leader(rh_cluster_t *c, unsigned timeout_ms) {
  return rh_run_until(c, have_leader, NULL, timeout_ms) ? rh_leader(c) : -1;
}

static void apply_cb(struct raft_apply *req, int status, void *result) {
  int *done = req->data;
  (void)result;
  if (done != NULL) *done = status == 0 ? 1 : -status;
  free(req);
}

int rh_apply(rh_cluster_t *c, int i, uint64_t v, int *done) {
  struct raft_apply *req = malloc(sizeof *req);
  struct raft_buffer buf;
  int rv;
  cr_assert(req != NULL);
  buf.base = raft_malloc(8);
  buf.len = 8;
  memcpy(buf.base, &v, 8);
  req->data = done;
  if (done != NULL) *done = 0;
  rv = raft_apply(&c->node[i].raft, req, &buf, 1, apply_cb);
  if (rv != 0) {
    raft_free(buf.base);
    free(req);
  }
  return rv;
}

static int all_applied(rh_cluster_t *c, void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (int i = 0; i < c->n; i++)
    if (c->node[i].running && c->node[i].applied < n) return 0;
  return 1;
}

int rh_wait_applied(rh_cluster_t *c, uint64_t n, unsigned timeout_ms) {
  return rh_run_until(c, all_applied, &n, timeout_ms);
}
