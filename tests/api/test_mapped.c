/*
 * test_mapped.c: mapped writes (walrus_config_t.mapped_writes), prefilled
 * segments (walrus_config_t.prefill_segments) and the preallocated tail
 * both leave.
 *
 * This file owns: appends, batches and transactions stored through the
 * mapping and read back before and after reopening; no pwrite per append;
 * a killed writer's preallocated tail accepted by a strict open; the
 * mapping dropped and the zeros cut by truncate_back, sealing and close;
 * the interval policy; a VFS without map, a map that fails, a reservation
 * that fails; the rule that zero bytes running to the end of the tail are
 * its end, and what is still damage.  Power loss under mapped writes is in
 * tests/crash/test_powerloss.c.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

TestSuite(mapped, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

#define SEED 0x3A99EDu
#define SEED2 0x3A99EEu

/* ---- a VFS over POSIX that counts calls and fails on command ----------- */

static atomic_int g_pwrites, g_maps, g_unmaps, g_allocates;
static int g_map_err;      /* map returns this (negative errno) if set */
static int g_map_err_once; /* ... only once */
static int g_alloc_err;    /* allocate returns this once if set */
static walrus_vfs_t g_vfs;

static int c_pwrite(void *ctx, walrus_vfs_file_t *f, const void *b, size_t n,
                    uint64_t off) {
  atomic_fetch_add(&g_pwrites, 1);
  return walrus_vfs_posix()->pwrite(ctx, f, b, n, off);
}
static int c_allocate(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                      uint64_t len) {
  atomic_fetch_add(&g_allocates, 1);
  if (g_alloc_err != 0) {
    int e = g_alloc_err;
    g_alloc_err = 0;
    return e;
  }
  return walrus_vfs_posix()->allocate(ctx, f, off, len);
}
static int c_map(void *ctx, walrus_vfs_file_t *f, uint64_t len, void **a) {
  atomic_fetch_add(&g_maps, 1);
  if (g_map_err != 0) {
    int e = g_map_err;
    if (g_map_err_once) g_map_err = 0;
    return e;
  }
  return walrus_vfs_posix()->map(ctx, f, len, a);
}
static int c_unmap(void *ctx, walrus_vfs_file_t *f, void *a, uint64_t len) {
  atomic_fetch_add(&g_unmaps, 1);
  return walrus_vfs_posix()->unmap(ctx, f, a, len);
}

static const walrus_vfs_t *counting_vfs(void) {
  g_vfs = *walrus_vfs_posix();
  g_vfs.pwrite = c_pwrite;
  g_vfs.allocate = c_allocate;
  g_vfs.map = c_map;
  g_vfs.unmap = c_unmap;
  /* These tests count the tail's mappings.  Without map_read the writer
   * publishes no DURABLE file (another mapping), and reads use pread. */
  g_vfs.map_read = NULL;
  g_vfs.unmap_read = NULL;
  atomic_store(&g_pwrites, 0);
  atomic_store(&g_maps, 0);
  atomic_store(&g_unmaps, 0);
  atomic_store(&g_allocates, 0);
  g_map_err = g_map_err_once = g_alloc_err = 0;
  return &g_vfs;
}

static walrus_config_t mapped_cfg(uint64_t segment_bytes) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.mapped_writes = 1;
  cfg.segment_bytes = segment_bytes;
  cfg.vfs = counting_vfs();
  return cfg;
}

static walrus_config_t strict_cfg(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.recovery = WALRUS_RECOVER_STRICT;
  return cfg;
}

/* The path of the last segment file of tu_dir. */
static const char *tail_path(void) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_gt(n, 0u);
  static char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(tu_dir, names[n - 1]));
  tu_strv_free(names);
  return path;
}

/* ---- the write path ----------------------------------------------------- */

Test(mapped, appends_batches_and_transactions_read_back_and_reopen) {
  walrus_config_t cfg = mapped_cfg(16384);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, 100);
  int pw0 = atomic_load(&g_pwrites);
  tu_append_n(w, 999, SEED, 100);
  /* Batches and a transaction, of the same deterministic payloads. */
  for (int b = 0; b < 20; b++) {
    walrus_entry_t e[10];
    unsigned char buf[10][100];
    uint64_t next = walrus_next_index(w), first = 0;
    for (int i = 0; i < 10; i++)
      tu_entry_set(&e[i], next + (uint64_t)i, SEED, 100, buf[i]);
    cr_assert_eq(walrus_write_batch(w, e, 10, &first), WALRUS_OK);
    cr_assert_eq(first, next);
  }
  walrus_txid_t txid;
  cr_assert_eq(walrus_tx_begin(w, 0, &txid), WALRUS_OK);
  uint64_t tx_first = walrus_next_index(w);
  for (int i = 0; i < 5; i++) {
    walrus_entry_t e;
    unsigned char buf[100];
    tu_entry_set(&e, tx_first + (uint64_t)i, SEED, 100, buf);
    cr_assert_eq(walrus_tx_add(w, &txid, &e), WALRUS_OK);
  }
  cr_assert_eq(walrus_tx_commit(w, &txid, NULL, NULL), WALRUS_OK);
  uint64_t last = walrus_last_index(w);
  cr_assert_eq(last, 1205u);
  /* Rotation happened, and no append paid a pwrite: the pwrites made are
   * segment headers, index records, padding and trailers. */
  char **names;
  size_t nseg = tu_segments(tu_dir, &names);
  tu_strv_free(names);
  cr_assert_gt(nseg, 5u);
  int pw = atomic_load(&g_pwrites) - pw0;
  cr_assert_leq(pw, (int)(4 * nseg), "%d pwrites for 1,225 appends in %zu "
                "segments", pw, nseg);
  cr_assert_geq(atomic_load(&g_maps), (int)nseg - 1);
  /* Readers see the stores at once (pread on the same file). */
  tu_check_range(w, 1, 1200, SEED, 100);
  walrus_iter_t *it;
  cr_assert_eq(walrus_iter_open(w, 1, &it), WALRUS_OK);
  walrus_entry_t g;
  uint64_t k = 0;
  while (walrus_iter_next(it, &g) == WALRUS_OK) {
    k++;
    cr_assert_eq(g.index, k);
  }
  walrus_iter_close(it);
  cr_assert_eq(k, last);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert_eq(atomic_load(&g_unmaps), atomic_load(&g_maps));
  /* Close cut the zeros: a strict open finds nothing to complain about. */
  walrus_config_t sc = strict_cfg();
  w = tu_open(tu_dir, &sc);
  cr_assert_eq(walrus_last_index(w), last);
  tu_check_range(w, 1, 1200, SEED, 100);
  cr_assert_eq(walrus_get(w, 1205, &g), WALRUS_OK);
  cr_assert_str_eq(g.tx_id, txid.s);
  walrus_entry_free(&g);
  walrus_close(w);
}

Test(mapped, ignored_under_sync_always) {
  walrus_config_t cfg = mapped_cfg(1 << 20);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 20, SEED, 100);
  cr_assert_eq(atomic_load(&g_maps), 0);
  cr_assert_geq(atomic_load(&g_pwrites), 20);
  walrus_close(w);
}

/* Fork a writer that opens tu_dir with cfg, appends entries 1..n (SEED,
 * up to 100 bytes) and sends itself SIGKILL without closing; wait for it. */
static void killed_writer(walrus_config_t cfg, uint64_t n) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    walrus_t *w = NULL;
    if (walrus_open(tu_dir, &cfg, &w) != WALRUS_OK) _exit(3);
    for (uint64_t i = 1; i <= n; i++) {
      walrus_entry_t e;
      unsigned char buf[100];
      tu_entry_set(&e, i, SEED, 100, buf);
      if (walrus_append(w, &e, NULL) != WALRUS_OK) _exit(4);
    }
    raise(SIGKILL); /* no close: the preallocated zeros stay */
    _exit(5);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d",
            st);
}

Test(mapped, a_killed_writer_leaves_a_tail_a_strict_open_accepts) {
  killed_writer(mapped_cfg(1 << 20), 1000);
  /* The whole segment was reserved and the file extended to it. */
  cr_assert_eq(tu_file_size(tail_path()), 1 << 20);
  walrus_config_t sc = strict_cfg();
  walrus_t *w = tu_open(tu_dir, &sc);
  cr_assert_eq(walrus_last_index(w), 1000u);
  tu_check_range(w, 1, 1000, SEED, 100);
  /* A writable open with pwrite carries on after the last record, and its
   * close cuts the zeros. */
  walrus_close(w);
  w = tu_open(tu_dir, NULL);
  tu_append_n(w, 10, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert_lt(tu_file_size(tail_path()), 1 << 20);
  w = tu_open(tu_dir, &sc);
  cr_assert_eq(walrus_last_index(w), 1010u);
  tu_check_range(w, 1, 1010, SEED, 100);
  walrus_close(w);
}

Test(mapped, truncate_back_drops_the_mapping_and_leaves_no_stale_records) {
  walrus_config_t cfg = mapped_cfg(1 << 20);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 300, SEED, 100);
  int unmaps = atomic_load(&g_unmaps);
  cr_assert_eq(walrus_truncate_back(w, 150), WALRUS_OK);
  cr_assert_gt(atomic_load(&g_unmaps), unmaps);
  /* Shorter entries now, so old records would lie past the new ones. */
  tu_append_n(w, 50, SEED2, 20);
  tu_check_range(w, 1, 150, SEED, 100);
  tu_check_range(w, 151, 200, SEED2, 20);
  cr_assert_eq(walrus_last_index(w), 200u);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  walrus_config_t sc = strict_cfg();
  w = tu_open(tu_dir, &sc);
  cr_assert_eq(walrus_last_index(w), 200u);
  tu_check_range(w, 1, 150, SEED, 100);
  tu_check_range(w, 151, 200, SEED2, 20);
  walrus_close(w);
}

Test(mapped, sealing_cuts_the_zeros_so_the_trailer_ends_the_file) {
  walrus_config_t cfg = mapped_cfg(65536);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 2000, SEED, 100);
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_gt(n, 2u);
  /* Every sealed segment ends in its trailer, not in reserved zeros. */
  for (size_t i = 0; i + 1 < n; i++) {
    size_t len;
    unsigned char *b = tu_read_file(tu_path(tu_dir, names[i]), &len);
    int nonzero = 0;
    for (size_t k = len - 8; k < len; k++) nonzero |= b[k];
    cr_assert(nonzero, "%s ends in zeros", names[i]);
    free(b);
  }
  /* The open tail runs to the reservation. */
  cr_assert_eq(tu_file_size(tu_path(tu_dir, names[n - 1])), 65536);
  tu_strv_free(names);
  /* A big entry that does not fit seals a tail that is mostly zeros. */
  static unsigned char big[60000];
  memset(big, 0xB1, sizeof big);
  walrus_entry_t e = {0};
  e.data = big;
  e.len = sizeof big;
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_OK);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  walrus_config_t sc = strict_cfg();
  w = tu_open(tu_dir, &sc);
  tu_check_range(w, 1, 2000, SEED, 100);
  walrus_entry_t g;
  cr_assert_eq(walrus_get(w, 2001, &g), WALRUS_OK);
  cr_assert_eq(g.len, sizeof big);
  cr_assert_eq(memcmp(g.data, big, sizeof big), 0);
  walrus_entry_free(&g);
  walrus_close(w);
}

Test(mapped, interval_policy_syncs_the_mapped_tail) {
  walrus_config_t cfg = mapped_cfg(8192);
  cfg.sync = WALRUS_SYNC_INTERVAL;
  cfg.sync_interval_ms = 5;
  walrus_t *w = tu_open(tu_dir, &cfg);
  walrus_stats_t st0, st1;
  /* Counted before the appends: the thread may sync them at once. */
  cr_assert_eq(walrus_stats(w, &st0), WALRUS_OK);
  tu_append_n(w, 5, SEED, 100);
  tu_sleep_ms(100);
  cr_assert_eq(walrus_stats(w, &st1), WALRUS_OK);
  cr_assert_gt(st1.fsyncs, st0.fsyncs, "the interval thread never synced");
  tu_append_n(w, 500, SEED, 100);
  cr_assert_gt(atomic_load(&g_maps), 0);
  cr_assert_eq(walrus_sync(w), WALRUS_OK);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(tu_dir, NULL);
  tu_check_range(w, 1, 505, SEED, 100);
  walrus_close(w);
}

/* ---- prefilled segments (SYNC_ALWAYS) ----------------------------------- */

Test(mapped, prefilled_segments_are_overwritten_in_place) {
  walrus_config_t cfg = mapped_cfg(65536);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  cfg.mapped_writes = 0;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, 100);
  /* The new segment holds zeros up to segment_bytes, synced. */
  cr_assert_eq(tu_file_size(tail_path()), 65536);
  tu_append_n(w, 99, SEED, 100);
  cr_assert_eq(tu_file_size(tail_path()), 65536, "appends changed the size");
  tu_check_range(w, 1, 100, SEED, 100);
  /* A second process sees the same entries through the zeros. */
  walrus_config_t ro;
  walrus_config_default(&ro);
  ro.read_only = 1;
  ro.recovery = WALRUS_RECOVER_STRICT;
  walrus_t *r = tu_open(tu_dir, &ro);
  cr_assert_eq(walrus_last_index(r), 100u);
  walrus_close(r);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  cr_assert_lt(tu_file_size(tail_path()), 65536, "close cuts the zeros");
  walrus_config_t sc = strict_cfg();
  w = tu_open(tu_dir, &sc);
  tu_check_range(w, 1, 100, SEED, 100);
  walrus_close(w);
}

Test(mapped, prefill_can_be_turned_off_and_is_not_done_without_fsyncs) {
  walrus_config_t cfg = mapped_cfg(65536);
  cfg.sync = WALRUS_SYNC_ALWAYS;
  cfg.mapped_writes = 0;
  cfg.prefill_segments = 0;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 3, SEED, 100);
  cr_assert_lt(tu_file_size(tail_path()), 4096);
  walrus_close(w);
  tu_rmrf(tu_dir);
  cfg = mapped_cfg(65536);
  cfg.mapped_writes = 0; /* SYNC_NONE: no fsync per append to save */
  w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 3, SEED, 100);
  cr_assert_lt(tu_file_size(tail_path()), 4096);
  walrus_close(w);
}

Test(mapped, a_killed_durable_writer_leaves_a_prefilled_tail) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 1 << 20;
  killed_writer(cfg, 50);
  cr_assert_eq(tu_file_size(tail_path()), 1 << 20);
  walrus_config_t sc = strict_cfg();
  walrus_t *w = tu_open(tu_dir, &sc);
  cr_assert_eq(walrus_last_index(w), 50u);
  tu_check_range(w, 1, 50, SEED, 100);
  tu_append_n(w, 5, SEED, 100);
  walrus_close(w);
  w = tu_open(tu_dir, &sc);
  tu_check_range(w, 1, 55, SEED, 100);
  walrus_close(w);
}

Test(mapped, prefill_config_value_is_checked) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cr_assert_eq(cfg.prefill_segments, 1);
  cfg.prefill_segments = -1;
  char msg[256] = "";
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert_neq(strstr(msg, "prefill_segments"), NULL, "%s", msg);
}

/* ---- when mapping cannot be done ---------------------------------------- */

Test(mapped, a_vfs_that_cannot_map_gets_pwrite) {
  walrus_config_t cfg = mapped_cfg(1 << 20);
  g_map_err = -EOPNOTSUPP;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 100);
  cr_assert_eq(atomic_load(&g_maps), 1, "asked once, then pwrite only");
  cr_assert_geq(atomic_load(&g_pwrites), 100);
  tu_check_range(w, 1, 100, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(tu_dir, NULL);
  tu_check_range(w, 1, 100, SEED, 100);
  walrus_close(w);
}

Test(mapped, a_version_1_vfs_gets_pwrite) {
  walrus_config_t cfg = mapped_cfg(1 << 20);
  g_vfs.version = 1; /* map and unmap are not read */
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 10, SEED, 100);
  cr_assert_eq(atomic_load(&g_maps), 0);
  walrus_close(w);
}

Test(mapped, map_out_of_memory_fails_the_append_and_leaves_the_handle) {
  walrus_config_t cfg = mapped_cfg(1 << 20);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 10, SEED, 100);
  cr_assert_eq(walrus_truncate_back(w, 10), WALRUS_OK); /* no-op */
  /* Drop the mapping (a truncation does), then fail the next map once. */
  cr_assert_eq(walrus_truncate_back(w, 9), WALRUS_OK);
  g_map_err = -ENOMEM;
  g_map_err_once = 1;
  walrus_entry_t e;
  unsigned char buf[100];
  tu_entry_set(&e, 10, SEED, 100, buf);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_ENOMEM);
  cr_assert_eq(walrus_last_index(w), 9u);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_OK);
  tu_check_range(w, 1, 10, SEED, 100);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(tu_dir, NULL);
  tu_check_range(w, 1, 10, SEED, 100);
  walrus_close(w);
}

Test(mapped, a_full_disk_at_reservation_fails_and_poisons) {
  walrus_config_t cfg = mapped_cfg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 5, SEED, 100);
  uint64_t last = walrus_last_index(w);
  /* Fill up to the next rotation, whose reservation fails. */
  g_alloc_err = -ENOSPC;
  int allocs = atomic_load(&g_allocates);
  int rc = WALRUS_OK;
  for (int i = 0; i < 100 && rc == WALRUS_OK; i++) {
    walrus_entry_t e;
    unsigned char buf[100];
    tu_entry_set(&e, last + 1, SEED, 100, buf);
    rc = walrus_append(w, &e, NULL);
    if (rc == WALRUS_OK) last++;
  }
  cr_assert_eq(rc, WALRUS_ENOSPC, "%s", walrus_errname(rc));
  cr_assert_gt(atomic_load(&g_allocates), allocs);
  cr_assert_neq(strstr(walrus_errmsg(w), "allocate"), NULL, "%s",
                walrus_errmsg(w));
  walrus_entry_t e;
  unsigned char buf[100];
  tu_entry_set(&e, last + 1, SEED, 100, buf);
  cr_assert_eq(walrus_append(w, &e, NULL), WALRUS_EPOISONED);
  walrus_close(w);
  w = tu_open(tu_dir, NULL);
  cr_assert_eq(walrus_last_index(w), last);
  tu_check_range(w, 1, last, SEED, 100);
  walrus_close(w);
}

Test(mapped, config_value_is_checked) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cr_assert_eq(cfg.mapped_writes, 0);
  cfg.mapped_writes = 2;
  char msg[256] = "";
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert_neq(strstr(msg, "mapped_writes"), NULL, "%s", msg);
  walrus_vfs_t v = *walrus_vfs_posix();
  v.unmap = NULL;
  cfg.mapped_writes = 1;
  cfg.vfs = &v;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert_neq(strstr(msg, "unmap"), NULL, "%s", msg);
}

/* ---- zero bytes at the end of the tail ----------------------------------- */

/* Entries of exactly FIXED bytes (records of 40 + FIXED), so that a test
 * can find them in the file: entry i is FIXED copies of byte i. */
#define FIXED 96
#define REC (40 + FIXED)
#define MARK 40

static void fixed_units(walrus_t *w, uint64_t n, size_t per_unit) {
  unsigned char buf[8][FIXED];
  walrus_entry_t e[8];
  cr_assert_leq(per_unit, 8u);
  for (uint64_t done = 0; done < n; done += per_unit) {
    uint64_t next = walrus_next_index(w);
    for (size_t i = 0; i < per_unit; i++) {
      memset(buf[i], (int)((next + i) & 0xff), FIXED);
      memset(&e[i], 0, sizeof e[i]);
      e[i].data = buf[i];
      e[i].len = FIXED;
    }
    cr_assert_eq(walrus_write_batch(w, e, per_unit, NULL), WALRUS_OK);
  }
}

static void check_fixed(walrus_t *w, uint64_t n) {
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), n);
  for (uint64_t i = 1; i <= n; i++) {
    walrus_entry_t g;
    cr_assert_eq(walrus_get(w, i, &g), WALRUS_OK, "entry %llu",
                 (unsigned long long)i);
    cr_assert_eq(g.len, FIXED);
    for (size_t k = 0; k < FIXED; k++)
      cr_assert_eq(((const unsigned char *)g.data)[k], i & 0xff);
    walrus_entry_free(&g);
  }
}

/* A closed log of n single entries then one batch of b: the file ends
 * with their records and the close's sync mark. */
static void fixed_log(uint64_t n, size_t b) {
  walrus_t *w = tu_open(tu_dir, NULL);
  fixed_units(w, n, 1);
  if (b > 0) fixed_units(w, b, b);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
}

static void zero_range(const char *path, size_t from_end, size_t n) {
  size_t len;
  unsigned char *bytes = tu_read_file(path, &len);
  cr_assert_geq(len, from_end);
  memset(bytes + len - from_end, 0, n);
  tu_write_file(path, bytes, len);
  free(bytes);
}

Test(mapped, zeros_to_the_end_of_the_tail_are_its_end) {
  fixed_log(50, 0);
  static const unsigned char zeros[65536];
  tu_append_file(tail_path(), zeros, sizeof zeros);
  walrus_config_t sc = strict_cfg();
  walrus_t *w = tu_open(tu_dir, &sc);
  check_fixed(w, 50);
  walrus_close(w);
  /* A writable open appends after the last record. */
  w = tu_open(tu_dir, NULL);
  fixed_units(w, 5, 1);
  walrus_close(w);
  w = tu_open(tu_dir, &sc);
  check_fixed(w, 55);
  walrus_close(w);
}

Test(mapped, zeros_inside_a_batch_are_a_torn_tail) {
  fixed_log(10, 4);
  /* Zero the batch's last record and the mark after it: the batch is
   * incomplete, which a strict open reports and TAIL cuts. */
  zero_range(tail_path(), MARK + REC, MARK + REC);
  walrus_config_t sc = strict_cfg();
  walrus_t *r = NULL;
  cr_assert_eq(walrus_open(tu_dir, &sc, &r), WALRUS_ECORRUPT);
  walrus_t *w = tu_open(tu_dir, NULL);
  check_fixed(w, 10);
  walrus_close(w);
}

Test(mapped, zeros_before_a_synced_mark_are_damage) {
  fixed_log(30, 0);
  /* Zero entry 29; entry 30 and the close's mark follow it. */
  zero_range(tail_path(), MARK + 2 * REC, REC);
  walrus_t *r = NULL;
  cr_assert_eq(walrus_open(tu_dir, NULL, &r), WALRUS_ECORRUPT);
  walrus_config_t ro;
  walrus_config_default(&ro);
  ro.read_only = 1;
  cr_assert_eq(walrus_open(tu_dir, &ro, &r), WALRUS_ECORRUPT);
}
