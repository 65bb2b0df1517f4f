/*
 * test_raft_cluster.c: three raft nodes over libwalrus-raft in one
 * process, on loopback: commands applied everywhere, a node restarted
 * with its log, term and vote, a lagging node caught up by a snapshot,
 * and where the adapter keeps its state (io->impl, io->data).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "raft_harness.h"
#include "util.h"

TestSuite(raft_cluster, .init = tu_fixture_setup, .fini = tu_fixture_teardown,
          .timeout = 120);

/* Applies n commands of value 1..n through the current leader, up to 8
 * in flight (so that appends are batched); returns their sum once every
 * one was applied by the leader. */
static uint64_t apply_n(rh_cluster_t *c, uint64_t n) {
  uint64_t sum = 0;
  int *done = calloc(n + 1, sizeof *done);
  cr_assert(done != NULL);
  for (uint64_t v = 1; v <= n; v++) {
    int leader = rh_wait_leader(c, 5000);
    cr_assert(leader >= 0, "no leader");
    cr_assert(rh_apply(c, leader, v, &done[v]) == 0);
    if (v % 8 == 0 || v == n) {
      for (uint64_t k = v > 8 ? v - 8 : 1; k <= v; k++) {
        int i = 0;
        while (done[k] == 0 && i++ < 500) rh_run_for(c, 10);
        cr_assert(done[k] == 1, "apply %llu: %d", (unsigned long long)k,
                  done[k]);
      }
    }
    sum += v;
  }
  free(done);
  return sum;
}

Test(raft_cluster, three_nodes_apply_commands) {
  rh_cluster_t c;
  rh_init(&c, tu_tmp, 3);
  for (int i = 0; i < 3; i++) rh_start(&c, i);
  /* raft_init set io->data to the raft instance; the adapter's own state
   * lives in io->impl. */
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(c.node[i].io.data, &c.node[i].raft);
    cr_assert_not_null(c.node[i].io.impl);
    cr_assert_not_null(walrus_raft_log(&c.node[i].io));
  }
  uint64_t sum = apply_n(&c, 200);
  cr_assert(rh_wait_applied(&c, 200, 10000));
  for (int i = 0; i < 3; i++) {
    walrus_t *w = walrus_raft_log(&c.node[i].io);
    walrus_entry_t e;
    cr_assert_eq(c.node[i].sum, sum, "node %d", i);
    /* One raft entry is one walrus entry: the bootstrap configuration at
     * 1, then the commands (and the leader's barrier) with their terms. */
    cr_assert_geq(walrus_last_index(w), 201);
    cr_assert_eq(walrus_get(w, 1, &e), WALRUS_OK);
    cr_assert_eq(e.type, RAFT_CHANGE);
    cr_assert_eq(e.term, 1);
    walrus_entry_free(&e);
    cr_assert_eq(walrus_get(w, walrus_last_index(w), &e), WALRUS_OK);
    cr_assert_eq(e.type, RAFT_COMMAND);
    cr_assert_eq(e.len, 8);
    cr_assert_eq(e.term, c.node[i].raft.current_term);
    walrus_entry_free(&e);
    cr_assert_eq(walrus_raft_failed(&c.node[i].io), 0);
  }
  rh_fini(&c);
}

Test(raft_cluster, restart_reloads_log_term_and_vote) {
  rh_cluster_t c;
  rh_init(&c, tu_tmp, 3);
  for (int i = 0; i < 3; i++) rh_start(&c, i);
  uint64_t sum = apply_n(&c, 50);
  cr_assert(rh_wait_applied(&c, 50, 10000));
  /* Restart every node in turn, the leader among them. */
  for (int i = 0; i < 3; i++) {
    raft_term term = c.node[i].raft.current_term;
    raft_id vote = c.node[i].raft.voted_for;
    raft_index last = raft_last_index(&c.node[i].raft);
    rh_stop(&c, i);
    rh_start(&c, i);
    cr_assert_eq(c.node[i].raft.current_term, term, "node %d term", i);
    cr_assert_eq(c.node[i].raft.voted_for, vote, "node %d vote", i);
    cr_assert_eq(raft_last_index(&c.node[i].raft), last, "node %d log", i);
    cr_assert(rh_wait_leader(&c, 5000) >= 0);
  }
  sum += apply_n(&c, 20);
  /* A restarted node applies its log again from the start (there is no
   * snapshot): every node ends with all 70 commands and the same sum. */
  cr_assert(rh_wait_applied(&c, 70, 10000));
  for (int i = 0; i < 3; i++) cr_assert_eq(c.node[i].sum, sum, "node %d", i);
  rh_fini(&c);
}

static int node_caught_up(rh_cluster_t *c, void *arg) {
  int i = *(int *)arg;
  return c->node[i].applied >= 300;
}

Test(raft_cluster, lagging_follower_gets_a_snapshot) {
  rh_cluster_t c;
  int lag;
  rh_init(&c, tu_tmp, 3);
  c.threshold = 64;
  c.trailing = 16;
  for (int i = 0; i < 3; i++) rh_start(&c, i);
  int leader = rh_wait_leader(&c, 5000);
  cr_assert(leader >= 0);
  lag = (leader + 1) % 3;
  rh_stop(&c, lag);
  uint64_t sum = apply_n(&c, 300);
  /* The others snapshotted and dropped the entries the lagging node
   * misses, so it can only catch up through InstallSnapshot. */
  for (int i = 0; i < 3; i++) {
    if (i == lag) continue;
    cr_assert(tu_exists(tu_path(c.node[i].dir, "snapshot")));
    cr_assert_gt(walrus_first_index(walrus_raft_log(&c.node[i].io)), 2);
  }
  rh_start(&c, lag);
  cr_assert(rh_run_until(&c, node_caught_up, &lag, 20000));
  cr_assert_eq(c.node[lag].sum, sum);
  cr_assert(tu_exists(tu_path(c.node[lag].dir, "snapshot")));
  /* Its log restarted above the snapshot, then took new entries. */
  uint64_t first = walrus_first_index(walrus_raft_log(&c.node[lag].io));
  cr_assert(first == 0 || first > 2, "first %llu", (unsigned long long)first);
  /* And it restarts from the snapshot plus its log. */
  rh_stop(&c, lag);
  rh_start(&c, lag);
  cr_assert_geq(c.node[lag].applied, 1);
  cr_assert(rh_run_until(&c, node_caught_up, &lag, 20000));
  cr_assert_eq(c.node[lag].sum, sum);
  rh_fini(&c);
}
