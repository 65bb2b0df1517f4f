/*
 * raft_harness.h: an in-process raft cluster on loopback for the tests of
 * libwalrus-raft.  Every node is a struct raft over walrus_raft_init() in
 * its own directory, all on one libuv loop; the state machine adds up the
 * 8-byte values of the commands it applies, and snapshots that sum.
 *
 * Ports: base port from the process id, so that test processes running
 * side by side do not meet.  Timings are short (heartbeat 20 ms, election
 * 120 ms) so that a test stays within seconds.
 */
#ifndef WALRUS_TEST_RAFT_HARNESS_H
#define WALRUS_TEST_RAFT_HARNESS_H

#include <stdint.h>

#include <raft.h>
#include <uv.h>

#include "walrus.h"
#include "walrus_raft.h"

#define RH_MAX 5

typedef struct rh_node {
  struct raft raft;    /* The raft instance. */
  struct raft_io io;   /* walrus_raft_init()'s io. */
  struct raft_fsm fsm; /* The adding state machine. */
  int running;         /* raft_start() done, not closed. */
  int closed;          /* raft_close()'s callback ran. */
  uint64_t applied;    /* Commands applied. */
  uint64_t sum;        /* Sum of their values. */
  char dir[512];       /* The node directory. */
  char addr[64];       /* 127.0.0.1:port */
} rh_node_t;

typedef struct rh_cluster {
  uv_loop_t loop;             /* The one loop. */
  int n;                      /* Nodes. */
  rh_node_t node[RH_MAX];     /* Nodes 0..n-1 have raft ids 1..n. */
  char base[512];             /* Parent directory. */
  unsigned threshold;         /* Snapshot threshold (0: raft's default). */
  unsigned trailing;          /* Snapshot trailing. */
  const walrus_config_t *log; /* Log options for every node, or NULL. */
} rh_cluster_t;

/* Set up (nothing started) n nodes under base. */
void rh_init(rh_cluster_t *c, const char *base, int n);
/* Bootstrap (first time only) and start node i; asserts success. */
void rh_start(rh_cluster_t *c, int i);
/* raft_close node i and wait for it; then walrus_raft_close. */
void rh_stop(rh_cluster_t *c, int i);
/* Stop every running node and close the loop. */
void rh_fini(rh_cluster_t *c);
/* Run the loop until pred(c, arg) or timeout_ms; returns pred's value. */
int rh_run_until(rh_cluster_t *c, int (*pred)(rh_cluster_t *, void *),
                 void *arg, unsigned timeout_ms);
/* Run the loop for ms milliseconds. */
void rh_run_for(rh_cluster_t *c, unsigned ms);
/* Index of the running leader known to every running node, or -1. */
int rh_leader(rh_cluster_t *c);
/* Wait up to timeout_ms for a leader; returns it, or -1. */
int rh_wait_leader(rh_cluster_t *c, unsigned timeout_ms);
/* raft_apply one command of value v on node i; 0 or raft's code.
 * *done (if not NULL) gets 1 on success and -status on failure. */
int rh_apply(rh_cluster_t *c, int i, uint64_t v, int *done);
/* Wait until every running node applied at least n commands. */
int rh_wait_applied(rh_cluster_t *c, uint64_t n, unsigned timeout_ms);

#endif
