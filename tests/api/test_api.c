/*
 * test_api.c: every public function of walrus.h and every error code it
 * documents that can be produced without fault injection.
 *
 * This file owns: configuration defaults and checks, open/close, append,
 * batches, get, first/last/next index, sync, the three truncations and
 * their persistence, rotation and retention, iterators, read-only handles
 * and the writer lock (in this process and a forked child), error names
 * and messages, the version, the logger, the allocator hooks, the VFS seam
 * (every file operation goes through it) and the sync policies.  Recovery
 * from damage is in test_recovery.c; I/O faults are in tests/crash.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "util.h"
#include "walrus.h"
#include "walrus_vfs.h"

/* ---- fixture ------------------------------------------------------------ */

/* Every test gets a fresh temp dir tu_tmp and log directory tu_dir. */
TestSuite(config, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(open, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(append, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(batch, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(indexes, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(truncate, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(rotation, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(retention, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(iter, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(readonly, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(lock, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(errors, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(logger, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(allocator, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(vfs, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(sync, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

#define SEED 0x5EED0001u

/* A default config with the given segment size. */
static walrus_config_t cfg_seg(uint64_t segment_bytes) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = segment_bytes;
  return cfg;
}

static walrus_config_t cfg_ro(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  return cfg;
}

/* Appends one entry with explicit fields; returns its index. */
static uint64_t append_raw(walrus_t *w, uint64_t term, uint16_t type,
                           int64_t ts, const char *txid, const void *data,
                           size_t len) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.term = term;
  e.type = type;
  e.timestamp_ns = ts;
  e.tx_id = txid;
  e.data = data;
  e.len = len;
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, &e, &idx));
  return idx;
}

/* Asserts that entry index has exactly these fields. */
static void expect_entry(walrus_t *w, uint64_t index, uint64_t term,
                         uint16_t type, int64_t ts, const char *txid,
                         const void *data, size_t len) {
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_OK(w, walrus_get(w, index, &e));
  cr_assert_eq(e.index, index);
  cr_assert_eq(e.term, term, "entry %" PRIu64, index);
  cr_assert_eq(e.type, type, "entry %" PRIu64, index);
  cr_assert_eq(e.timestamp_ns, ts, "entry %" PRIu64, index);
  if (txid == NULL) {
    cr_assert_null(e.tx_id, "entry %" PRIu64 " has tx_id", index);
  } else {
    cr_assert_not_null(e.tx_id, "entry %" PRIu64 " lost tx_id", index);
    cr_assert_str_eq(e.tx_id, txid);
  }
  cr_assert_eq(e.len, len, "entry %" PRIu64, index);
  cr_assert_not_null(e.data, "data must be non-NULL even for len 0");
  if (len) cr_assert_eq(memcmp(e.data, data, len), 0, "entry %" PRIu64, index);
  walrus_entry_free(&e);
}

static size_t nsegs(void) { return tu_segments(tu_dir, NULL); }

static uint64_t seg_first(const char *name) {
  uint64_t v = 0;
  cr_assert_eq(walrus__fmt_seg_name_parse(name, &v), 1, "bad name %s", name);
  return v;
}

/* Does some message in msgs contain one of the words (case-insensitive)? */
static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = hay; *p; p++)
    if (strncasecmp(p, needle, n) == 0) return 1;
  return 0;
}

/* ---- config ------------------------------------------------------------- */

Test(config, defaults) {
  walrus_config_t cfg;
  memset(&cfg, 0xA5, sizeof cfg);
  walrus_config_default(&cfg);
  cr_assert_eq(cfg.sync, WALRUS_SYNC_ALWAYS);
  cr_assert_eq(cfg.sync_interval_ms, 100u);
  cr_assert_eq(cfg.segment_bytes, 64ull << 20);
  cr_assert_eq(cfg.max_segments, 0u);
  cr_assert_eq(cfg.buffer_bytes, (size_t)1 << 20);
  cr_assert_eq(cfg.cached_segments, 4u);
  cr_assert_eq(cfg.zero_copy, 0);
  cr_assert_eq(cfg.format, WALRUS_FORMAT_BINARY);
  cr_assert_eq(cfg.compression, WALRUS_COMPRESSION_NONE);
  cr_assert_eq(cfg.tx_timeout_ms, 30000u);
  cr_assert_eq(cfg.tx_max_entries, 10000u);
  cr_assert_eq(cfg.tx_cleanup_interval_ms, 0u);
  cr_assert_eq(cfg.max_entry_bytes, 16u << 20);
  cr_assert_eq(cfg.recovery, WALRUS_RECOVER_TAIL);
  cr_assert_eq(cfg.read_only, 0);
  cr_assert_eq(cfg.create_if_missing, 1);
  cr_assert_null(cfg.logger);
  cr_assert_null(cfg.logger_ud);
  cr_assert_eq(cfg.log_level, WALRUS_LOG_INFO);
  cr_assert_null(cfg.vfs);
  cr_assert_null(cfg.allocator);
  char msg[256] = "x";
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_OK, "%s",
               msg);
  cr_assert_eq(walrus_config_check(&cfg, NULL, 0), WALRUS_OK);
}

Test(config, null_is_einval) {
  char msg[128];
  cr_assert_eq(walrus_config_check(NULL, msg, sizeof msg), WALRUS_EINVAL);
  cr_assert_eq(walrus_config_check(NULL, NULL, 0), WALRUS_EINVAL);
}

/* Dummy VFS and allocator methods for the "NULL method" checks. */
static void *dummy_malloc(void *ud, size_t n) {
  (void)ud;
  return malloc(n);
}
static void *dummy_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  return realloc(p, n);
}
static void dummy_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

typedef void (*mutate_fn)(walrus_config_t *);
typedef struct bad_case {
  const char *field; /* must appear in the message */
  mutate_fn mutate;
  int code;
} bad_case_t;

static walrus_vfs_t g_vfs_copy;
static walrus_allocator_t g_alloc_copy;

#define MUT(name, body) \
  static void name(walrus_config_t *c) { body; }
MUT(seg_zero, c->segment_bytes = 0)
MUT(seg_small, c->segment_bytes = 4095)
MUT(seg_big, c->segment_bytes = (1ull << 30) + 1)
MUT(sync_bad, c->sync = (walrus_sync_t)3)
MUT(sync_neg, c->sync = (walrus_sync_t)-1)
MUT(interval_zero, c->sync = WALRUS_SYNC_INTERVAL; c->sync_interval_ms = 0)
MUT(interval_big, c->sync = WALRUS_SYNC_INTERVAL;
    c->sync_interval_ms = 3600001)
MUT(buf_small, c->buffer_bytes = 4095)
MUT(buf_big, c->buffer_bytes = ((size_t)256 << 20) + 1)
MUT(cached_zero, c->cached_segments = 0)
MUT(cached_big, c->cached_segments = 65537)
MUT(maxent_zero, c->max_entry_bytes = 0)
MUT(maxent_big, c->max_entry_bytes = (1u << 30) + 1)
MUT(recovery_bad, c->recovery = (walrus_recovery_t)3)
MUT(level_bad, c->log_level = (walrus_log_level_t)4)
MUT(vfs_version, g_vfs_copy = *walrus_vfs_posix(); g_vfs_copy.version = 0;
    c->vfs = &g_vfs_copy)
MUT(vfs_null_pwrite, g_vfs_copy = *walrus_vfs_posix();
    g_vfs_copy.pwrite = NULL; c->vfs = &g_vfs_copy)
MUT(vfs_null_mkdir, g_vfs_copy = *walrus_vfs_posix(); g_vfs_copy.mkdir = NULL;
    c->vfs = &g_vfs_copy)
MUT(vfs_half_v5, g_vfs_copy = *walrus_vfs_posix(); g_vfs_copy.list_at = NULL;
    c->vfs = &g_vfs_copy)
MUT(file_mode_no_owner_write, c->file_mode = 0400)
MUT(file_mode_setuid, c->file_mode = 04600)
MUT(alloc_null_malloc, g_alloc_copy.malloc_fn = NULL;
    g_alloc_copy.realloc_fn = dummy_realloc; g_alloc_copy.free_fn = dummy_free;
    c->allocator = &g_alloc_copy)
MUT(alloc_null_free, g_alloc_copy.malloc_fn = dummy_malloc;
    g_alloc_copy.realloc_fn = dummy_realloc; g_alloc_copy.free_fn = NULL;
    c->allocator = &g_alloc_copy)
MUT(alloc_null_realloc, g_alloc_copy.malloc_fn = dummy_malloc;
    g_alloc_copy.realloc_fn = NULL; g_alloc_copy.free_fn = dummy_free;
    c->allocator = &g_alloc_copy)
MUT(zero_copy_bad, c->zero_copy = 2)
MUT(format_json, c->format = WALRUS_FORMAT_JSON)
MUT(compression_bad, c->compression = (walrus_compression_t)2)
MUT(compress_level_low, c->compress_level = -8)
MUT(compress_level_high, c->compress_level = 20)
MUT(compress_min_big, c->compress_min_bytes = (1u << 30) + 1)
MUT(tx_max_zero, c->tx_max_entries = 0)
MUT(tx_max_big, c->tx_max_entries = 10000001)
MUT(tx_cleanup_big, c->tx_cleanup_interval_ms = 3600001)
MUT(tx_pending_small, c->tx_max_pending_bytes = 4095)

static const bad_case_t bad_cases[] = {
    {"segment_bytes", seg_zero, WALRUS_EINVAL},
    {"segment_bytes", seg_small, WALRUS_EINVAL},
    {"segment_bytes", seg_big, WALRUS_EINVAL},
    {"sync", sync_bad, WALRUS_EINVAL},
    {"sync", sync_neg, WALRUS_EINVAL},
    {"sync_interval_ms", interval_zero, WALRUS_EINVAL},
    {"sync_interval_ms", interval_big, WALRUS_EINVAL},
    {"buffer_bytes", buf_small, WALRUS_EINVAL},
    {"buffer_bytes", buf_big, WALRUS_EINVAL},
    {"cached_segments", cached_zero, WALRUS_EINVAL},
    {"cached_segments", cached_big, WALRUS_EINVAL},
    {"max_entry_bytes", maxent_zero, WALRUS_EINVAL},
    {"max_entry_bytes", maxent_big, WALRUS_EINVAL},
    {"recovery", recovery_bad, WALRUS_EINVAL},
    {"log_level", level_bad, WALRUS_EINVAL},
    {"vfs", vfs_version, WALRUS_EINVAL},
    {"vfs", vfs_null_pwrite, WALRUS_EINVAL},
    {"vfs", vfs_null_mkdir, WALRUS_EINVAL},
    {"vfs", vfs_half_v5, WALRUS_EINVAL},
    {"file_mode", file_mode_no_owner_write, WALRUS_EINVAL},
    {"file_mode", file_mode_setuid, WALRUS_EINVAL},
    {"allocator", alloc_null_malloc, WALRUS_EINVAL},
    {"allocator", alloc_null_free, WALRUS_EINVAL},
    {"allocator", alloc_null_realloc, WALRUS_EINVAL},
    {"zero_copy", zero_copy_bad, WALRUS_EINVAL},
    {"format", format_json, WALRUS_ENOTSUP},
    {"compression", compression_bad, WALRUS_EINVAL},
    {"compress_level", compress_level_low, WALRUS_EINVAL},
    {"compress_level", compress_level_high, WALRUS_EINVAL},
    {"compress_min_bytes", compress_min_big, WALRUS_EINVAL},
    {"tx_max_entries", tx_max_zero, WALRUS_EINVAL},
    {"tx_max_entries", tx_max_big, WALRUS_EINVAL},
    {"tx_cleanup_interval_ms", tx_cleanup_big, WALRUS_EINVAL},
    {"tx_max_pending_bytes", tx_pending_small, WALRUS_EINVAL},
};
#define NBAD (sizeof bad_cases / sizeof bad_cases[0])

Test(config, each_bad_field_is_named) {
  for (size_t i = 0; i < NBAD; i++) {
    walrus_config_t cfg;
    walrus_config_default(&cfg);
    bad_cases[i].mutate(&cfg);
    char msg[256];
    memset(msg, 0, sizeof msg);
    int rc = walrus_config_check(&cfg, msg, sizeof msg);
    cr_assert_eq(rc, bad_cases[i].code, "case %zu (%s): got %s, want %s", i,
                 bad_cases[i].field, walrus_errname(rc),
                 walrus_errname(bad_cases[i].code));
    cr_assert(strstr(msg, bad_cases[i].field) != NULL,
              "case %zu: message \"%s\" does not name %s", i, msg,
              bad_cases[i].field);
    cr_assert_eq(walrus_config_check(&cfg, NULL, 0), bad_cases[i].code);
  }
}

Test(config, open_rejects_each_bad_field_and_creates_nothing) {
  for (size_t i = 0; i < NBAD; i++) {
    walrus_config_t cfg;
    walrus_config_default(&cfg);
    bad_cases[i].mutate(&cfg);
    walrus_t *w = (walrus_t *)0x1;
    char msg[256] = "";
    int rc = walrus_open_ex(tu_dir, &cfg, &w, msg, sizeof msg);
    cr_assert_eq(rc, bad_cases[i].code, "case %zu (%s): got %s", i,
                 bad_cases[i].field, walrus_errname(rc));
    cr_assert_eq(w, (walrus_t *)0x1, "out must be untouched on failure");
    cr_assert(strstr(msg, bad_cases[i].field) != NULL,
              "case %zu: open message \"%s\" does not name %s", i, msg,
              bad_cases[i].field);
    cr_assert_eq(tu_exists(tu_dir), 0, "case %zu created the directory", i);
    rc = walrus_open(tu_dir, &cfg, &w);
    cr_assert_eq(rc, bad_cases[i].code);
  }
}

Test(config, boundaries_are_accepted) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  cfg.buffer_bytes = 4096;
  cfg.cached_segments = 1;
  cfg.max_entry_bytes = 1;
  cr_assert_eq(walrus_config_check(&cfg, NULL, 0), WALRUS_OK);
  cfg.segment_bytes = 1ull << 30;
  cfg.buffer_bytes = (size_t)256 << 20;
  cfg.cached_segments = 65536;
  cfg.max_entry_bytes = 1u << 30;
  cfg.sync = WALRUS_SYNC_INTERVAL;
  cfg.sync_interval_ms = 1;
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  cfg.log_level = WALRUS_LOG_DEBUG;
  cr_assert_eq(walrus_config_check(&cfg, NULL, 0), WALRUS_OK);
  cfg.sync_interval_ms = 3600000;
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.recovery = WALRUS_RECOVER_STRICT;
  cfg.log_level = WALRUS_LOG_ERROR;
  cr_assert_eq(walrus_config_check(&cfg, NULL, 0), WALRUS_OK);
  /* The interval is only checked under the INTERVAL policy. */
  cfg.sync = WALRUS_SYNC_ALWAYS;
  cfg.sync_interval_ms = 0;
  cr_assert_eq(walrus_config_check(&cfg, NULL, 0), WALRUS_OK);
}

Test(config, short_message_buffer_is_terminated) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 1;
  char msg[16];
  memset(msg, 'Z', sizeof msg);
  cr_assert_eq(walrus_config_check(&cfg, msg, 5), WALRUS_EINVAL);
  cr_assert_lt(strnlen(msg, 5), (size_t)5, "not NUL-terminated within 5");
  for (size_t i = 5; i < sizeof msg; i++)
    cr_assert_eq(msg[i], 'Z', "wrote beyond msglen at %zu", i);
}

/* ---- open / close ------------------------------------------------------- */

Test(open, null_arguments) {
  walrus_t *w = NULL;
  TU_EXPECT(WALRUS_EINVAL, walrus_open(NULL, NULL, &w));
  cr_assert_null(w);
  TU_EXPECT(WALRUS_EINVAL, walrus_open(tu_dir, NULL, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_open_ex(NULL, NULL, &w, NULL, 0));
  TU_EXPECT(WALRUS_OK, walrus_close(NULL));
}

Test(open, creates_a_new_empty_log) {
  walrus_t *w = tu_open_default();
  cr_assert(tu_exists(tu_path(tu_dir, "LOCK")), "no LOCK file");
  cr_assert(tu_exists(tu_path(tu_dir, "META")), "no META file");
  cr_assert_eq(tu_file_size(tu_path(tu_dir, "META")),
               (int64_t)WALRUS__META_BYTES);
  cr_assert_eq(nsegs(), 0u, "a new log has no segment");
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1u);
  cr_assert_str_eq(walrus_errmsg(w), "");
  cr_assert_eq(walrus_last_errno(w), 0);
  TU_OK(w, walrus_close(w));
  /* and it reopens the same */
  w = tu_open_default();
  cr_assert_eq(walrus_next_index(w), 1u);
  TU_OK(w, walrus_close(w));
}

Test(open, create_if_missing_off_on_missing_dir_fails) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.create_if_missing = 0;
  walrus_t *w = (walrus_t *)0x1;
  char msg[256] = "";
  int rc = walrus_open_ex(tu_dir, &cfg, &w, msg, sizeof msg);
  cr_assert_eq(rc, WALRUS_EIO, "got %s", walrus_errname(rc));
  cr_assert_eq(w, (walrus_t *)0x1);
  cr_assert_neq(msg[0], '\0', "no message");
  cr_assert_eq(tu_exists(tu_dir), 0, "directory created anyway");
}

Test(open, read_only_on_missing_dir_fails) {
  walrus_config_t cfg = cfg_ro();
  cfg.create_if_missing = 1; /* ignored read-only */
  walrus_t *w = (walrus_t *)0x1;
  int rc = walrus_open(tu_dir, &cfg, &w);
  cr_assert_eq(rc, WALRUS_EIO, "got %s", walrus_errname(rc));
  cr_assert_eq(w, (walrus_t *)0x1);
  cr_assert_eq(tu_exists(tu_dir), 0, "read-only open created the directory");
}

Test(open, path_is_a_file_fails) {
  tu_write_file(tu_dir, "x", 1);
  walrus_t *w = (walrus_t *)0x1;
  int rc = walrus_open(tu_dir, NULL, &w);
  cr_assert_lt(rc, 0, "got %s", walrus_errname(rc));
  cr_assert_eq(w, (walrus_t *)0x1);
}

Test(open, reopen_many_times_keeps_everything) {
  for (int round = 0; round < 5; round++) {
    walrus_t *w = tu_open_default();
    cr_assert_eq(walrus_last_index(w), (uint64_t)round * 10);
    tu_append_n(w, 10, SEED, 50);
    tu_check_range(w, 1, walrus_last_index(w), SEED, 50);
    TU_OK(w, walrus_close(w));
  }
}

/* ---- append / get ------------------------------------------------------- */

Test(append, round_trip_every_field) {
  walrus_t *w = tu_open_default();
  static const char d1[] = "first entry";
  unsigned char d2[1000];
  for (size_t i = 0; i < sizeof d2; i++) d2[i] = (unsigned char)(i * 31 + 7);
  cr_assert_eq(append_raw(w, 7, 3, 123456789, NULL, d1, sizeof d1), 1u);
  cr_assert_eq(append_raw(w, UINT64_MAX, UINT16_MAX, INT64_MAX, "tx-42", d2,
                          sizeof d2),
               2u);
  cr_assert_eq(append_raw(w, 0, 0, -1, NULL, NULL, 0), 3u);
  cr_assert_eq(append_raw(w, 9, 1, 5, "only-a-tx", NULL, 0), 4u);
  for (int pass = 0; pass < 2; pass++) {
    expect_entry(w, 1, 7, 3, 123456789, NULL, d1, sizeof d1);
    expect_entry(w, 2, UINT64_MAX, UINT16_MAX, INT64_MAX, "tx-42", d2,
                 sizeof d2);
    expect_entry(w, 3, 0, 0, -1, NULL, "", 0);
    expect_entry(w, 4, 9, 1, 5, "only-a-tx", "", 0);
    TU_OK(w, walrus_close(w));
    w = tu_open_default();
  }
  TU_OK(w, walrus_close(w));
}

Test(append, index_out_may_be_null_and_indexes_run_up) {
  walrus_t *w = tu_open_default();
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "a";
  e.len = 1;
  e.index = 999; /* ignored on input */
  e.checksum = 12345;
  TU_OK(w, walrus_append(w, &e, NULL));
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, &e, &idx));
  cr_assert_eq(idx, 2u);
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
}

Test(append, one_mib_entry) {
  walrus_t *w = tu_open_default();
  size_t len = (size_t)1 << 20;
  unsigned char *buf = malloc(len);
  cr_assert_not_null(buf);
  tu_payload(1, SEED, buf, len);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = buf;
  e.len = len;
  e.timestamp_ns = 1;
  uint64_t idx;
  TU_OK(w, walrus_append(w, &e, &idx));
  cr_assert_eq(idx, 1u);
  tu_append_n(w, 3, SEED, 100);
  walrus_entry_t out;
  TU_OK(w, walrus_get(w, 1, &out));
  tu_check_bytes(&out, 1, SEED, len);
  walrus_entry_free(&out);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  TU_OK(w, walrus_get(w, 1, &out));
  tu_check_bytes(&out, 1, SEED, len);
  walrus_entry_free(&out);
  tu_check_range(w, 2, 4, SEED, 100);
  TU_OK(w, walrus_close(w));
  free(buf);
}

Test(append, checksum_is_the_stored_record_crc) {
  walrus_t *w = tu_open_default();
  append_raw(w, 1, 1, 10, NULL, "hello", 5);
  append_raw(w, 2, 2, 20, "tx", "world!!", 7);
  walrus_entry_t e1, e2;
  TU_OK(w, walrus_get(w, 1, &e1));
  TU_OK(w, walrus_get(w, 2, &e2));
  char **names;
  cr_assert_eq(tu_segments(tu_dir, &names), 1u);
  size_t len;
  unsigned char *f = tu_read_file(tu_path(tu_dir, names[0]), &len);
  uint64_t off1 = WALRUS__SEG_HEADER_BYTES;
  uint64_t off2 = off1 + walrus__rec_size(5);
  cr_assert_geq(len, off2 + walrus__rec_size(9));
  cr_assert_eq(e1.checksum, walrus__get32(f + off1));
  cr_assert_eq(e2.checksum, walrus__get32(f + off2));
  cr_assert_neq(e1.checksum, e2.checksum);
  /* and the stored crc is right for the record */
  walrus__seg_header_t h;
  cr_assert_eq(walrus__fmt_seg_header_decode(f, &h), WALRUS__FMT_OK);
  walrus__rec_t r;
  cr_assert_eq(walrus__rec_check(h.salt, f + off2, len - off2, &r),
               WALRUS__FMT_OK);
  cr_assert_eq(r.index, 2u);
  cr_assert_eq(r.flags & (WALRUS__REC_FIRST | WALRUS__REC_LAST),
               WALRUS__REC_FIRST | WALRUS__REC_LAST);
  walrus_entry_free(&e1);
  walrus_entry_free(&e2);
  /* freeing twice, and NULL, are fine */
  walrus_entry_free(&e2);
  walrus_entry_free(NULL);
  free(f);
  tu_strv_free(names);
  TU_OK(w, walrus_close(w));
}

Test(append, zero_timestamp_is_stamped) {
  walrus_t *w = tu_open_default();
  struct timespec a, b;
  clock_gettime(CLOCK_REALTIME, &a);
  uint64_t idx = append_raw(w, 1, 1, 0, NULL, "x", 1);
  clock_gettime(CLOCK_REALTIME, &b);
  walrus_entry_t e;
  TU_OK(w, walrus_get(w, idx, &e));
  int64_t lo = (int64_t)a.tv_sec * 1000000000 + a.tv_nsec;
  int64_t hi = (int64_t)b.tv_sec * 1000000000 + b.tv_nsec;
  cr_assert_geq(e.timestamp_ns, lo);
  cr_assert_leq(e.timestamp_ns, hi);
  walrus_entry_free(&e);
  TU_OK(w, walrus_close(w));
}

Test(append, invalid_entries) {
  walrus_t *w = tu_open_default();
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_EXPECT(WALRUS_EINVAL, walrus_append(NULL, &e, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_append(w, NULL, NULL));
  e.data = NULL;
  e.len = 3;
  TU_EXPECT(WALRUS_EINVAL, walrus_append(w, &e, NULL));
  cr_assert_neq(walrus_errmsg(w)[0], '\0', "no message after a failure");
  e.data = "abc";
  e.timestamp_ns = 77;
  e.tx_id = "";
  TU_EXPECT(WALRUS_EINVAL, walrus_append(w, &e, NULL));
  char longid[257];
  memset(longid, 'i', 256);
  longid[256] = '\0';
  e.tx_id = longid;
  TU_EXPECT(WALRUS_EINVAL, walrus_append(w, &e, NULL));
  longid[255] = '\0'; /* 255 bytes is the limit */
  uint64_t idx = 0;
  TU_OK(w, walrus_append(w, &e, &idx));
  cr_assert_eq(idx, 1u, "failed appends must not use an index");
  expect_entry(w, 1, 0, 0, 77, longid, "abc", 3);
  TU_OK(w, walrus_close(w));
}

Test(append, too_large) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.max_entry_bytes = 100;
  walrus_t *w = tu_open(tu_dir, &cfg);
  unsigned char buf[200];
  memset(buf, 'p', sizeof buf);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = buf;
  e.len = 101;
  TU_EXPECT(WALRUS_ETOOLARGE, walrus_append(w, &e, NULL));
  e.len = 90;
  e.tx_id = "0123456789A"; /* 90 + 11 > 100 */
  TU_EXPECT(WALRUS_ETOOLARGE, walrus_append(w, &e, NULL));
  cr_assert_eq(walrus_last_index(w), 0u);
  e.tx_id = "0123456789"; /* 90 + 10 == 100 */
  TU_OK(w, walrus_append(w, &e, NULL));
  e.tx_id = NULL;
  e.len = 100;
  TU_OK(w, walrus_append(w, &e, NULL));
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
}

Test(append, get_errors) {
  walrus_t *w = tu_open_default();
  walrus_entry_t e;
  memset(&e, 0x77, sizeof e);
  walrus_entry_t same = e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 1, &e)); /* empty log */
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 0, &e));
  tu_append_n(w, 10, SEED, 20);
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 0, &e));
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 11, &e));
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, UINT64_MAX, &e));
  cr_assert_eq(memcmp(&e, &same, sizeof e), 0, "out touched on failure");
  cr_assert_neq(walrus_errmsg(w)[0], '\0', "no message after EINDEX");
  TU_EXPECT(WALRUS_EINVAL, walrus_get(w, 1, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_get(NULL, 1, &e));
  TU_OK(w, walrus_truncate_front(w, 4));
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 3, &e));
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 1, &e));
  tu_check_range(w, 4, 10, SEED, 20);
  TU_OK(w, walrus_close(w));
}

/* ---- batches ------------------------------------------------------------ */

Test(batch, contiguous_indexes_and_fields) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 30);
  enum { N = 6 };
  walrus_entry_t es[N];
  unsigned char bufs[N][64];
  for (int i = 0; i < N; i++) tu_entry_set(&es[i], 4 + i, SEED, 64, bufs[i]);
  es[2].tx_id = "batch-tx";
  uint64_t first = 0;
  TU_OK(w, walrus_write_batch(w, es, N, &first));
  cr_assert_eq(first, 4u);
  cr_assert_eq(walrus_last_index(w), 3u + N);
  for (int pass = 0; pass < 2; pass++) {
    tu_check_range(w, 1, 3, SEED, 30);
    for (int i = 0; i < N; i++)
      expect_entry(w, 4 + i, es[i].term, es[i].type, es[i].timestamp_ns,
                   es[i].tx_id, es[i].data, es[i].len);
    TU_OK(w, walrus_close(w));
    w = tu_open_default();
  }
  /* a batch of one, and first_index may be NULL */
  TU_OK(w, walrus_write_batch(w, es, 1, NULL));
  cr_assert_eq(walrus_last_index(w), 4u + N);
  TU_OK(w, walrus_close(w));
}

Test(batch, invalid_batches_write_nothing) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.max_entry_bytes = 64;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 2, SEED, 40);
  walrus_entry_t es[4];
  unsigned char bufs[4][64];
  for (int i = 0; i < 4; i++) tu_entry_set(&es[i], 3 + i, SEED, 40, bufs[i]);
  uint64_t first = 777;
  TU_EXPECT(WALRUS_EINVAL, walrus_write_batch(w, es, 0, &first));
  TU_EXPECT(WALRUS_EINVAL, walrus_write_batch(w, NULL, 3, &first));
  TU_EXPECT(WALRUS_EINVAL, walrus_write_batch(NULL, es, 3, &first));
  es[2].data = NULL;
  es[2].len = 5;
  TU_EXPECT(WALRUS_EINVAL, walrus_write_batch(w, es, 4, &first));
  es[2].data = bufs[2];
  es[2].tx_id = "";
  TU_EXPECT(WALRUS_EINVAL, walrus_write_batch(w, es, 4, &first));
  es[2].tx_id = NULL;
  unsigned char big[65];
  memset(big, 1, sizeof big);
  es[3].data = big;
  es[3].len = 65;
  TU_EXPECT(WALRUS_ETOOLARGE, walrus_write_batch(w, es, 4, &first));
  cr_assert_eq(first, 777u, "first_index set on failure");
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_last_index(w), 2u, "a failed batch reappeared");
  tu_check_range(w, 1, 2, SEED, 40);
  TU_OK(w, walrus_close(w));
}

Test(batch, never_spans_segments) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  unsigned char buf[100];
  memset(buf, 'a', sizeof buf);
  for (int i = 0; i < 10; i++) append_raw(w, 1, 1, 1, NULL, buf, sizeof buf);
  /* 30 records of 140 bytes: more than a whole segment */
  enum { N = 30 };
  walrus_entry_t es[N];
  unsigned char bufs[N][100];
  for (int i = 0; i < N; i++) {
    memset(&es[i], 0, sizeof es[i]);
    tu_payload(11 + i, SEED, bufs[i], 100);
    es[i].data = bufs[i];
    es[i].len = 100;
    es[i].term = 2;
    es[i].timestamp_ns = 3;
  }
  uint64_t first = 0;
  TU_OK(w, walrus_write_batch(w, es, N, &first));
  cr_assert_eq(first, 11u);
  uint64_t after = append_raw(w, 3, 3, 3, NULL, "z", 1);
  cr_assert_eq(after, 41u);
  TU_OK(w, walrus_close(w));
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_eq(n, 3u, "want segments at 1, 11 and 41; have %zu", n);
  cr_assert_eq(seg_first(names[0]), 1u);
  cr_assert_eq(seg_first(names[1]), 11u);
  cr_assert_eq(seg_first(names[2]), 41u);
  tu_strv_free(names);
  w = tu_open(tu_dir, &cfg);
  for (int i = 0; i < N; i++) {
    walrus_entry_t e;
    TU_OK(w, walrus_get(w, 11 + i, &e));
    tu_check_bytes(&e, 11 + i, SEED, 100);
    walrus_entry_free(&e);
  }
  TU_OK(w, walrus_close(w));
}

/* ---- first / last / next ------------------------------------------------ */

Test(indexes, empty_nonempty_and_null) {
  cr_assert_eq(walrus_first_index(NULL), 0u);
  cr_assert_eq(walrus_last_index(NULL), 0u);
  cr_assert_eq(walrus_next_index(NULL), 0u);
  walrus_t *w = tu_open_default();
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1u);
  tu_append_n(w, 3, SEED, 10);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 3u);
  cr_assert_eq(walrus_next_index(w), 4u);
  TU_OK(w, walrus_sync(w));
  TU_EXPECT(WALRUS_EINVAL, walrus_sync(NULL));
  TU_OK(w, walrus_close(w));
}

/* ---- truncation --------------------------------------------------------- */

Test(truncate, back_basics_and_persistence) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 10, SEED, 40);
  TU_EXPECT(WALRUS_EINDEX, walrus_truncate_back(w, 11));
  TU_EXPECT(WALRUS_EINVAL, walrus_truncate_back(NULL, 5));
  TU_OK(w, walrus_truncate_back(w, 10)); /* keeping everything is fine */
  cr_assert_eq(walrus_last_index(w), 10u);
  TU_OK(w, walrus_truncate_back(w, 6));
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 6u);
  cr_assert_eq(walrus_next_index(w), 7u);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 7, &e));
  tu_append_n(w, 2, SEED + 1, 40); /* 7, 8 with other bytes */
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 8u);
  tu_check_range(w, 1, 6, SEED, 40);
  tu_check_range(w, 7, 8, SEED + 1, 40);
  TU_OK(w, walrus_close(w));
}

/* Entries first..first + n - 1 as one batch of payloads of seed. */
static void batch_of(walrus_t *w, uint64_t first, size_t n, uint64_t seed) {
  static unsigned char bufs[16][40];
  walrus_entry_t es[16];
  cr_assert(n <= 16);
  for (size_t i = 0; i < n; i++)
    tu_entry_set(&es[i], first + i, seed, 40, bufs[i]);
  uint64_t got = 0;
  TU_OK(w, walrus_write_batch(w, es, n, &got));
  cr_assert_eq(got, first);
}

/* A cut inside a batch leaves a closing mark after the last kept entry;
 * a second cut at the same entry must not leave a second one (the log
 * would not open: "misplaced sync mark"). */
Test(truncate, back_twice_inside_one_batch) {
  walrus_t *w = tu_open_default();
  batch_of(w, 1, 16, SEED);
  TU_OK(w, walrus_truncate_back(w, 3));
  batch_of(w, 4, 13, SEED + 1);
  TU_OK(w, walrus_truncate_back(w, 3));
  batch_of(w, 4, 13, SEED + 2);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 16u);
  tu_check_range(w, 1, 3, SEED, 40);
  tu_check_range(w, 4, 16, SEED + 2, 40);
  TU_OK(w, walrus_truncate_back(w, 3)); /* and a third time, then empty */
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 3u);
  tu_check_range(w, 1, 3, SEED, 40);
  TU_OK(w, walrus_close(w));
}

Test(truncate, back_to_empty) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 5, SEED, 40);
  TU_OK(w, walrus_truncate_back(w, 0));
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1u);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1u);
  tu_append_n(w, 2, SEED + 9, 40);
  tu_check_range(w, 1, 2, SEED + 9, 40);
  TU_OK(w, walrus_close(w));
}

Test(truncate, back_bounds_after_front) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 10, SEED, 40);
  TU_OK(w, walrus_truncate_front(w, 5));
  TU_EXPECT(WALRUS_EINDEX, walrus_truncate_back(w, 3)); /* below first - 1 */
  TU_OK(w, walrus_truncate_back(w, 4));                 /* first - 1: empty */
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 5u);
  uint64_t idx = append_raw(w, 1, 1, 1, NULL, "q", 1);
  cr_assert_eq(idx, 5u);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_first_index(w), 5u);
  cr_assert_eq(walrus_last_index(w), 5u);
  TU_OK(w, walrus_close(w));
}

Test(truncate, back_across_many_segments) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 500, SEED, 200);
  size_t before = nsegs();
  cr_assert_gt(before, 10u, "only %zu segments", before);
  TU_OK(w, walrus_truncate_back(w, 123));
  cr_assert_eq(walrus_last_index(w), 123u);
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_lt(n, before);
  for (size_t i = 0; i < n; i++)
    cr_assert_leq(seg_first(names[i]), 123u, "segment %s survived", names[i]);
  tu_strv_free(names);
  tu_append_n(w, 10, SEED + 1, 200);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 133u);
  tu_check_range(w, 1, 123, SEED, 200);
  tu_check_range(w, 124, 133, SEED + 1, 200);
  /* truncate to the very start of a segment boundary's neighbourhood */
  n = tu_segments(tu_dir, &names);
  cr_assert_geq(n, 3u);
  uint64_t b = seg_first(names[1]);
  tu_strv_free(names);
  TU_OK(w, walrus_truncate_back(w, b - 1)); /* exactly the end of segment 0 */
  cr_assert_eq(nsegs(), 1u);
  tu_append_n(w, 5, SEED + 2, 200);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_last_index(w), b + 4);
  tu_check_range(w, 1, b - 1, SEED, 200);
  tu_check_range(w, b, b + 4, SEED + 2, 200);
  TU_OK(w, walrus_close(w));
}

Test(truncate, front_basics_and_persistence) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 10, SEED, 40);
  TU_EXPECT(WALRUS_EINVAL, walrus_truncate_front(NULL, 2));
  TU_EXPECT(WALRUS_EINDEX, walrus_truncate_front(w, 12)); /* above last + 1 */
  TU_OK(w, walrus_truncate_front(w, 1));                  /* no-op */
  cr_assert_eq(walrus_first_index(w), 1u);
  TU_OK(w, walrus_truncate_front(w, 4));
  cr_assert_eq(walrus_first_index(w), 4u);
  cr_assert_eq(walrus_last_index(w), 10u);
  TU_EXPECT(WALRUS_EINDEX, walrus_truncate_front(w, 3)); /* below first */
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 3, &e));
  tu_check_range(w, 4, 10, SEED, 40);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_first_index(w), 4u);
  cr_assert_eq(walrus_last_index(w), 10u);
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 3, &e));
  tu_check_range(w, 4, 10, SEED, 40);
  TU_OK(w, walrus_close(w));
}

Test(truncate, front_to_empty_keeps_next_index) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 10, SEED, 40);
  TU_OK(w, walrus_truncate_front(w, 11));
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 11u);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 11u);
  tu_append_n(w, 1, SEED, 40);
  cr_assert_eq(walrus_first_index(w), 11u);
  cr_assert_eq(walrus_last_index(w), 11u);
  tu_check_range(w, 11, 11, SEED, 40);
  TU_OK(w, walrus_close(w));
}

Test(truncate, front_deletes_whole_segments) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 400, SEED, 200);
  char **names;
  size_t before = tu_segments(tu_dir, &names);
  cr_assert_gt(before, 6u);
  /* a first_kept in the middle of the fourth segment */
  uint64_t s3 = seg_first(names[3]), s4 = seg_first(names[4]);
  tu_strv_free(names);
  cr_assert_gt(s4 - s3, 1u);
  uint64_t f = s3 + (s4 - s3) / 2; /* s3 < f < s4 */
  TU_OK(w, walrus_truncate_front(w, f));
  cr_assert_eq(walrus_first_index(w), f);
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_eq(n, before - 3, "whole segments below %" PRIu64 " remain", f);
  cr_assert_eq(seg_first(names[0]), s3);
  tu_strv_free(names);
  cr_assert_eq(tu_exists(tu_path(tu_dir, "00000000000000000001.seg")), 0);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), f);
  cr_assert_eq(walrus_last_index(w), 400u);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, f - 1, &e));
  tu_check_range(w, f, 400, SEED, 200);
  /* at a segment's first index, the segments before it go too */
  TU_OK(w, walrus_truncate_front(w, s4));
  n = tu_segments(tu_dir, &names);
  cr_assert_eq(seg_first(names[0]), s4);
  tu_strv_free(names);
  TU_OK(w, walrus_close(w));
}

Test(truncate, reset) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 200, SEED, 200);
  cr_assert_gt(nsegs(), 2u);
  TU_EXPECT(WALRUS_EINVAL, walrus_reset(w, 0));
  TU_EXPECT(WALRUS_EINVAL, walrus_reset(NULL, 5));
  cr_assert_eq(walrus_last_index(w), 200u, "failed reset changed the log");
  TU_OK(w, walrus_reset(w, 1000));
  cr_assert_eq(walrus_first_index(w), 0u);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1000u);
  cr_assert_eq(nsegs(), 0u, "reset left segment files");
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 1, &e));
  TU_OK(w, walrus_close(w));
  /* the next index survives a reopen even with no entry */
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(walrus_next_index(w), 1000u);
  tu_append_n(w, 3, SEED + 5, 200);
  cr_assert_eq(walrus_first_index(w), 1000u);
  cr_assert_eq(walrus_last_index(w), 1002u);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1000u);
  cr_assert_eq(walrus_last_index(w), 1002u);
  tu_check_range(w, 1000, 1002, SEED + 5, 200);
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 999, &e));
  /* reset to a lower index works too */
  TU_OK(w, walrus_reset(w, 1));
  tu_append_n(w, 2, SEED, 10);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 2u);
  tu_check_range(w, 1, 2, SEED, 10);
  TU_OK(w, walrus_close(w));
}

Test(truncate, reset_with_open_iterator_is_ebusy) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 10);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  TU_EXPECT(WALRUS_EBUSY, walrus_reset(w, 50));
  cr_assert_eq(walrus_last_index(w), 3u);
  walrus_iter_close(it);
  TU_OK(w, walrus_reset(w, 50));
  TU_OK(w, walrus_close(w));
}

/* ---- rotation ----------------------------------------------------------- */

/* Checks every segment but the last: a valid header whose first index is
 * the name, and a valid trailer whose count reaches the next segment, with
 * records ending at or before segment_bytes. */
static void check_sealed_segments(uint64_t segment_bytes) {
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  for (size_t i = 0; i + 1 < n; i++) {
    size_t len;
    unsigned char *f = tu_read_file(tu_path(tu_dir, names[i]), &len);
    cr_assert_geq(len, WALRUS__SEG_HEADER_BYTES + WALRUS__TRAILER_BYTES);
    walrus__seg_header_t h;
    cr_assert_eq(walrus__fmt_seg_header_decode(f, &h), WALRUS__FMT_OK, "%s",
                 names[i]);
    cr_assert_eq(h.first_index, seg_first(names[i]));
    walrus__trailer_t t;
    cr_assert_eq(
        walrus__trailer_decode(f + len - WALRUS__TRAILER_BYTES, h.salt, &t),
        WALRUS__FMT_OK, "%s has no valid trailer", names[i]);
    cr_assert_eq(t.first_index, h.first_index);
    cr_assert_eq(h.first_index + t.count, seg_first(names[i + 1]),
                 "%s: count %u does not reach %s", names[i], t.count,
                 names[i + 1]);
    cr_assert_leq(t.index_offset, segment_bytes,
                  "%s: records end at %u > segment_bytes", names[i],
                  t.index_offset);
    free(f);
  }
  tu_strv_free(names);
}

Test(rotation, small_segments_read_back_after_reopen) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 400, SEED, 300);
  tu_check_range(w, 1, 400, SEED, 300);
  TU_OK(w, walrus_close(w));
  char **names;
  size_t n = tu_segments(tu_dir, &names);
  cr_assert_gt(n, 10u, "only %zu segments", n);
  cr_assert_str_eq(names[0], "00000000000000000001.seg");
  for (size_t i = 1; i < n; i++)
    cr_assert_gt(seg_first(names[i]), seg_first(names[i - 1]));
  tu_strv_free(names);
  check_sealed_segments(4096);
  cfg.cached_segments = 1; /* force the sealed-segment cache to churn */
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1u);
  cr_assert_eq(walrus_last_index(w), 400u);
  tu_check_range(w, 1, 400, SEED, 300);
  /* out of order, jumping between segments */
  for (uint64_t k = 0; k < 400; k++) {
    uint64_t i = (k * 157) % 400 + 1;
    tu_check_range(w, i, i, SEED, 300);
  }
  tu_append_n(w, 100, SEED, 300);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  tu_check_range(w, 1, 500, SEED, 300);
  TU_OK(w, walrus_close(w));
  check_sealed_segments(4096);
}

/* ---- retention ---------------------------------------------------------- */

Test(retention, max_segments_bounds_the_count) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.max_segments = 3;
  walrus_t *w = tu_open(tu_dir, &cfg);
  for (int i = 0; i < 300; i++) {
    tu_append_n(w, 1, SEED, 100);
    size_t n = nsegs();
    cr_assert_leq(n, 3u, "%zu segments after append %d", n, i + 1);
  }
  uint64_t first = walrus_first_index(w);
  cr_assert_gt(first, 1u, "retention removed nothing");
  cr_assert_eq(walrus_last_index(w), 300u);
  char **names;
  tu_segments(tu_dir, &names);
  cr_assert_eq(seg_first(names[0]), first);
  tu_strv_free(names);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, first - 1, &e));
  tu_check_range(w, first, 300, SEED, 100);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), first);
  cr_assert_eq(walrus_last_index(w), 300u);
  cr_assert_leq(nsegs(), 3u);
  tu_check_range(w, first, 300, SEED, 100);
  TU_OK(w, walrus_close(w));
}

Test(retention, open_iterator_pins_segments) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.max_segments = 2;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 5, SEED, 100);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  tu_append_n(w, 295, SEED, 100);
  cr_assert_eq(walrus_first_index(w), 1u,
               "retention removed entries an iterator still needs");
  cr_assert_gt(nsegs(), 2u);
  for (uint64_t i = 1; i <= 300; i++) {
    walrus_entry_t e;
    int rc = walrus_iter_next(it, &e);
    cr_assert_eq(rc, WALRUS_OK, "iter at %" PRIu64 ": %s", i,
                 walrus_errname(rc));
    tu_check_entry(&e, i, SEED, 100);
  }
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  /* with no iterator, the next rotations apply retention again */
  tu_append_n(w, 60, SEED, 100);
  cr_assert_leq(nsegs(), 2u);
  cr_assert_gt(walrus_first_index(w), 1u);
  tu_check_range(w, walrus_first_index(w), 360, SEED, 100);
  TU_OK(w, walrus_close(w));
}

/* ---- iterators ---------------------------------------------------------- */

/* Reads n entries from it, expecting indexes from..from+n-1. */
static void iter_expect(walrus_iter_t *it, uint64_t from, uint64_t n,
                        uint64_t seed, size_t max) {
  for (uint64_t i = from; i < from + n; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    int rc = walrus_iter_next(it, &e);
    cr_assert_eq(rc, WALRUS_OK, "iter at %" PRIu64 ": %s", i,
                 walrus_errname(rc));
    tu_check_entry(&e, i, seed, max);
  }
}

Test(iter, from_start_then_sees_later_appends) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 50, SEED, 80);
  walrus_iter_t *it = NULL;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 50, SEED, 80);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  tu_append_n(w, 2, SEED, 80);
  iter_expect(it, 51, 2, SEED, 80);
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  walrus_iter_close(NULL);
  TU_OK(w, walrus_close(w));
}

Test(iter, checksum_matches_get) {
  walrus_t *w = tu_open_default();
  append_raw(w, 5, 6, 7, "t1", "payload", 7);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 1, &it));
  walrus_entry_t a, b;
  TU_OK(w, walrus_iter_next(it, &a));
  TU_OK(w, walrus_get(w, 1, &b));
  cr_assert_eq(a.index, 1u);
  cr_assert_eq(a.term, 5u);
  cr_assert_eq(a.type, 6);
  cr_assert_eq(a.timestamp_ns, 7);
  cr_assert_str_eq(a.tx_id, "t1");
  cr_assert_eq(a.len, 7u);
  cr_assert_eq(memcmp(a.data, "payload", 7), 0);
  cr_assert_eq(a.checksum, b.checksum);
  walrus_entry_free(&b);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, start_in_the_middle_and_at_the_end) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 50, SEED, 80);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 25, &it));
  iter_expect(it, 25, 26, SEED, 80);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  TU_OK(w, walrus_iter_open(w, 51, &it));
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  tu_append_n(w, 1, SEED, 80);
  iter_expect(it, 51, 1, SEED, 80);
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, bad_arguments_and_out_of_range_start) {
  walrus_t *w = tu_open_default();
  walrus_iter_t *it = (walrus_iter_t *)0x1;
  /* an empty new log: start 0 and start 1 (= last + 1) are fine */
  TU_OK(w, walrus_iter_open(w, 0, &it));
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  tu_append_n(w, 1, SEED, 10);
  iter_expect(it, 1, 1, SEED, 10);
  walrus_iter_close(it);
  tu_append_n(w, 9, SEED, 10);
  it = (walrus_iter_t *)0x1;
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_open(w, 12, &it));
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_open(w, UINT64_MAX, &it));
  cr_assert_eq(it, (walrus_iter_t *)0x1, "it set on failure");
  TU_EXPECT(WALRUS_EINVAL, walrus_iter_open(NULL, 0, &it));
  TU_EXPECT(WALRUS_EINVAL, walrus_iter_open(w, 0, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_iter_next(NULL, &e));
  TU_OK(w, walrus_iter_open(w, 0, &it));
  TU_EXPECT(WALRUS_EINVAL, walrus_iter_next(it, NULL));
  walrus_iter_close(it);
  TU_OK(w, walrus_truncate_front(w, 5));
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_open(w, 4, &it));
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_open(w, 1, &it));
  TU_OK(w, walrus_iter_open(w, 0, &it)); /* 0 is the new first */
  iter_expect(it, 5, 6, SEED, 10);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, across_segments_and_after_reopen) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 300, SEED, 250);
  cr_assert_gt(nsegs(), 5u);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 300, SEED, 250);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
  cfg.cached_segments = 1;
  w = tu_open(tu_dir, &cfg);
  walrus_iter_t *a, *b;
  TU_OK(w, walrus_iter_open(w, 0, &a));
  TU_OK(w, walrus_iter_open(w, 150, &b));
  /* two iterators interleaved over different segments */
  for (uint64_t i = 0; i < 150; i++) {
    iter_expect(a, 1 + i, 1, SEED, 250);
    iter_expect(b, 150 + i, 1, SEED, 250);
  }
  iter_expect(b, 300, 1, SEED, 250);
  walrus_entry_t e;
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(b, &e));
  walrus_iter_close(a);
  walrus_iter_close(b);
  TU_OK(w, walrus_close(w));
}

Test(iter, close_with_open_iterator_is_ebusy) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 10);
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  TU_EXPECT(WALRUS_EBUSY, walrus_close(w));
  /* nothing was closed: the handle and the iterator still work */
  tu_append_n(w, 1, SEED, 10);
  iter_expect(it, 1, 4, SEED, 10);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
}

Test(iter, truncate_front_past_the_iterator) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 20, SEED, 10);
  walrus_iter_t *slow, *fast;
  TU_OK(w, walrus_iter_open(w, 0, &slow));
  TU_OK(w, walrus_iter_open(w, 15, &fast));
  iter_expect(slow, 1, 4, SEED, 10);
  TU_OK(w, walrus_truncate_front(w, 10));
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_iter_next(slow, &e));
  iter_expect(fast, 15, 6, SEED, 10); /* not affected */
  walrus_iter_close(slow);
  walrus_iter_close(fast);
  TU_OK(w, walrus_close(w));
}

/* ---- read-only ---------------------------------------------------------- */

Test(readonly, beside_a_writer) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 20, SEED, 60);
  walrus_config_t rcfg = cfg_ro();
  walrus_t *r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_first_index(r), 1u);
  cr_assert_eq(walrus_last_index(r), 20u);
  tu_check_range(r, 1, 20, SEED, 60);
  walrus_iter_t *it;
  TU_OK(r, walrus_iter_open(r, 0, &it));
  iter_expect(it, 1, 20, SEED, 60);
  walrus_iter_close(it);
  /* every write is refused */
  unsigned char buf[8] = {0};
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = buf;
  e.len = sizeof buf;
  TU_EXPECT(WALRUS_EREADONLY, walrus_append(r, &e, NULL));
  TU_EXPECT(WALRUS_EREADONLY, walrus_write_batch(r, &e, 1, NULL));
  TU_EXPECT(WALRUS_EREADONLY, walrus_truncate_back(r, 5));
  TU_EXPECT(WALRUS_EREADONLY, walrus_truncate_front(r, 5));
  TU_EXPECT(WALRUS_EREADONLY, walrus_reset(r, 5));
  TU_OK(r, walrus_sync(r));
  /* the writer goes on; the reader keeps its view */
  tu_append_n(w, 5, SEED, 60);
  cr_assert_eq(walrus_last_index(w), 25u);
  cr_assert_eq(walrus_last_index(r), 20u);
  walrus_entry_t out;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(r, 21, &out));
  tu_check_range(r, 1, 20, SEED, 60);
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
  /* read-only alone; a new read-only open sees everything */
  r = tu_open(tu_dir, &rcfg);
  cr_assert_eq(walrus_last_index(r), 25u);
  tu_check_range(r, 1, 25, SEED, 60);
  TU_OK(r, walrus_close(r));
}

Test(readonly, changes_nothing_on_disk) {
  walrus_config_t cfg = cfg_seg(4096);
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 200);
  TU_OK(w, walrus_close(w));
  size_t mlen;
  unsigned char *meta = tu_read_file(tu_path(tu_dir, "META"), &mlen);
  char **before;
  size_t n = tu_segments(tu_dir, &before);
  int64_t last_size = tu_file_size(tu_path(tu_dir, before[n - 1]));
  walrus_config_t rcfg = cfg_ro();
  rcfg.segment_bytes = 4096;
  walrus_t *r = tu_open(tu_dir, &rcfg);
  tu_check_range(r, 1, 100, SEED, 200);
  TU_OK(r, walrus_close(r));
  char **after;
  cr_assert_eq(tu_segments(tu_dir, &after), n);
  for (size_t i = 0; i < n; i++) cr_assert_str_eq(after[i], before[i]);
  cr_assert_eq(tu_file_size(tu_path(tu_dir, before[n - 1])), last_size);
  size_t mlen2;
  unsigned char *meta2 = tu_read_file(tu_path(tu_dir, "META"), &mlen2);
  cr_assert_eq(mlen2, mlen);
  cr_assert_eq(memcmp(meta, meta2, mlen), 0, "read-only open changed META");
  free(meta);
  free(meta2);
  tu_strv_free(before);
  tu_strv_free(after);
}

/* ---- lock --------------------------------------------------------------- */

Test(lock, second_writer_in_process) {
  walrus_t *w = tu_open_default();
  walrus_t *w2 = (walrus_t *)0x1;
  char msg[256] = "";
  TU_EXPECT(WALRUS_ELOCKED, walrus_open_ex(tu_dir, NULL, &w2, msg, sizeof msg));
  cr_assert_eq(w2, (walrus_t *)0x1);
  cr_assert_neq(msg[0], '\0', "no message for ELOCKED");
  TU_OK(w, walrus_close(w));
  w2 = tu_open_default(); /* the lock is free again */
  TU_OK(w2, walrus_close(w2));
}

/* Forks a child that opens tu_dir (writable unless ro) and exits with -rc,
 * or 0 on success (after closing).  Returns the child's exit status. */
static int child_open(int ro) {
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0, "fork");
  if (pid == 0) {
    walrus_config_t cfg;
    walrus_config_default(&cfg);
    cfg.read_only = ro;
    walrus_t *w = NULL;
    int rc = walrus_open(tu_dir, &cfg, &w);
    if (rc == WALRUS_OK) {
      if (walrus_last_index(w) != 7) _exit(100);
      rc = walrus_close(w);
    }
    _exit(rc < 0 ? -rc : rc);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "child did not exit normally");
  return WEXITSTATUS(status);
}

Test(lock, second_writer_in_forked_child) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 7, SEED, 10);
  cr_assert_eq(child_open(0), -WALRUS_ELOCKED, "child writer not locked out");
  cr_assert_eq(child_open(1), 0, "child read-only open failed");
  TU_OK(w, walrus_close(w));
  cr_assert_eq(child_open(0), 0, "lock not released by close");
  /* and the child released it in turn */
  w = tu_open_default();
  TU_OK(w, walrus_close(w));
}

/* ---- error names, messages, version ------------------------------------- */

typedef struct code_info {
  int code;
  const char *name;
  const char *msg;
} code_info_t;

static const code_info_t codes[] = {
#define WALRUS_TEST_CODE_(name, value, msg) {value, "WALRUS_" #name, msg},
    WALRUS_ERRNO_MAP(WALRUS_TEST_CODE_)
#undef WALRUS_TEST_CODE_
};
#define NCODES (sizeof codes / sizeof codes[0])

Test(errors, strerror_and_errname_for_every_code) {
  cr_assert_eq(NCODES, (size_t)(-(WALRUS__ELAST + 1)),
               "WALRUS__ELAST out of step with the map");
  for (size_t i = 0; i < NCODES; i++) {
    cr_assert_eq(codes[i].code, -(int)(i + 1), "codes are -1, -2, ...");
    const char *s = walrus_strerror(codes[i].code);
    const char *n = walrus_errname(codes[i].code);
    cr_assert_not_null(s);
    cr_assert_not_null(n);
    cr_assert_str_eq(s, codes[i].msg);
    cr_assert_str_eq(n, codes[i].name);
    for (size_t j = 0; j < i; j++) {
      cr_assert_str_neq(s, walrus_strerror(codes[j].code), "%s", n);
      cr_assert_str_neq(n, walrus_errname(codes[j].code), "%s", n);
    }
    cr_assert_str_neq(s, "unknown error");
  }
  cr_assert_str_eq(walrus_errname(WALRUS_OK), "WALRUS_OK");
  cr_assert_str_eq(walrus_errname(WALRUS_DONE), "WALRUS_DONE");
  cr_assert_not_null(walrus_strerror(WALRUS_OK));
  cr_assert_not_null(walrus_strerror(WALRUS_DONE));
  cr_assert_str_neq(walrus_strerror(WALRUS_OK), "unknown error");
  cr_assert_str_neq(walrus_strerror(WALRUS_DONE), "unknown error");
  cr_assert_str_neq(walrus_strerror(WALRUS_OK), walrus_strerror(WALRUS_DONE));
  const int unknown[] = {WALRUS__ELAST, -1000, 2, 12345, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    cr_assert_str_eq(walrus_strerror(unknown[i]), "unknown error", "%d",
                     unknown[i]);
    cr_assert_not_null(walrus_errname(unknown[i]));
  }
}

Test(errors, version_matches_macros) {
  cr_assert_eq(walrus_version(), (unsigned)WALRUS_VERSION_NUMBER);
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", WALRUS_VERSION_MAJOR,
           WALRUS_VERSION_MINOR, WALRUS_VERSION_PATCH);
  cr_assert_str_eq(walrus_version_string(), want);
}

Test(errors, errmsg_after_failures) {
  walrus_t *w = tu_open_default();
  cr_assert_str_eq(walrus_errmsg(w), "");
  walrus_entry_t e;
  TU_EXPECT(WALRUS_EINDEX, walrus_get(w, 5, &e));
  cr_assert_gt(strlen(walrus_errmsg(w)), 0u);
  TU_EXPECT(WALRUS_EINDEX, walrus_truncate_front(w, 9));
  cr_assert_gt(strlen(walrus_errmsg(w)), 0u);
  TU_OK(w, walrus_close(w));
}

/* ---- logger ------------------------------------------------------------- */

#define MAXLOG 4096
typedef struct logbuf {
  pthread_mutex_t mu;
  int n;
  int bad_ud;
  walrus_log_level_t level[MAXLOG];
  char msg[MAXLOG][160];
} logbuf_t;

static logbuf_t g_log = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void log_cb(void *ud, walrus_log_level_t level, const char *msg) {
  pthread_mutex_lock(&g_log.mu);
  if (ud != &g_log) g_log.bad_ud = 1;
  if (g_log.n < MAXLOG) {
    g_log.level[g_log.n] = level;
    snprintf(g_log.msg[g_log.n], sizeof g_log.msg[0], "%s",
             msg ? msg : "(null)");
    g_log.n++;
  }
  pthread_mutex_unlock(&g_log.mu);
}

static int log_count(void) {
  pthread_mutex_lock(&g_log.mu);
  int n = g_log.n;
  pthread_mutex_unlock(&g_log.mu);
  return n;
}

/* Does any message since index from contain one of words? */
static int logged_since(int from, const char *const *words, size_t nwords) {
  int found = 0;
  pthread_mutex_lock(&g_log.mu);
  for (int i = from; i < g_log.n && !found; i++)
    for (size_t k = 0; k < nwords; k++)
      if (contains_ci(g_log.msg[i], words[k])) found = 1;
  pthread_mutex_unlock(&g_log.mu);
  return found;
}

static void dump_log(int from) {
  for (int i = from; i < g_log.n; i++)
    cr_log_info("log[%d] level %d: %s", i, (int)g_log.level[i], g_log.msg[i]);
}

Test(logger, open_rotation_truncation_messages) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.logger = log_cb;
  cfg.logger_ud = &g_log;
  walrus_t *w = tu_open(tu_dir, &cfg);
  int n_open = log_count();
  cr_assert_gt(n_open, 0, "nothing logged at open");
  static const char *const open_words[] = {"open", "creat"};
  cr_assert(logged_since(0, open_words, 2), "no open message");
  /* append until a new segment appears */
  size_t segs = nsegs();
  int before = log_count();
  int rotated_at = -1;
  for (int i = 0; i < 200 && rotated_at < 0; i++) {
    before = log_count();
    tu_append_n(w, 1, SEED, 200);
    if (nsegs() > segs && segs > 0) rotated_at = i;
    segs = nsegs();
  }
  cr_assert_geq(rotated_at, 0, "no rotation happened");
  static const char *const rot_words[] = {"rotat", "seal", "segment"};
  if (!logged_since(before, rot_words, 3)) dump_log(before);
  cr_assert(logged_since(before, rot_words, 3), "no rotation message");
  tu_append_n(w, 100, SEED, 200);
  static const char *const trunc_words[] = {"truncat"};
  before = log_count();
  TU_OK(w, walrus_truncate_back(w, 50));
  cr_assert(logged_since(before, trunc_words, 1), "no truncate_back message");
  before = log_count();
  TU_OK(w, walrus_truncate_front(w, 20));
  cr_assert(logged_since(before, trunc_words, 1),
            "no truncate_front message");
  TU_OK(w, walrus_close(w));
  cr_assert_eq(g_log.bad_ud, 0, "logger_ud not passed back");
  for (int i = 0; i < g_log.n; i++) {
    cr_assert_leq(g_log.level[i], WALRUS_LOG_INFO, "message above log_level");
    cr_assert_neq(g_log.msg[i][0], '\0', "empty message");
  }
}

Test(logger, level_filters_messages) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.logger = log_cb;
  cfg.logger_ud = &g_log;
  cfg.log_level = WALRUS_LOG_WARN;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, 200);
  TU_OK(w, walrus_truncate_back(w, 50));
  TU_OK(w, walrus_truncate_front(w, 20));
  TU_OK(w, walrus_close(w));
  for (int i = 0; i < g_log.n; i++)
    cr_assert_leq(g_log.level[i], WALRUS_LOG_WARN, "level %d passed: %s",
                  (int)g_log.level[i], g_log.msg[i]);
}

/* ---- allocator ---------------------------------------------------------- */

typedef struct acount {
  atomic_long mallocs, reallocs, frees, live;
} acount_t;

static void *count_malloc(void *ud, size_t n) {
  acount_t *a = ud;
  atomic_fetch_add(&a->mallocs, 1);
  void *p = malloc(n ? n : 1);
  if (p) atomic_fetch_add(&a->live, 1);
  return p;
}
static void *count_realloc(void *ud, void *ptr, size_t n) {
  acount_t *a = ud;
  atomic_fetch_add(&a->reallocs, 1);
  void *p = realloc(ptr, n ? n : 1);
  if (p && !ptr) atomic_fetch_add(&a->live, 1);
  return p;
}
static void count_free(void *ud, void *ptr) {
  acount_t *a = ud;
  if (ptr) {
    atomic_fetch_add(&a->frees, 1);
    atomic_fetch_sub(&a->live, 1);
  }
  free(ptr);
}

Test(allocator, hooks_are_used_and_balanced) {
  static acount_t ac;
  walrus_allocator_t al = {count_malloc, count_realloc, count_free, &ac};
  walrus_config_t cfg = cfg_seg(4096);
  cfg.allocator = &al;
  walrus_t *w = tu_open(tu_dir, &cfg);
  cr_assert_gt(atomic_load(&ac.mallocs) + atomic_load(&ac.reallocs), 0,
               "open allocated nothing through the hooks");
  long m0 = atomic_load(&ac.mallocs) + atomic_load(&ac.reallocs);
  tu_append_n(w, 200, SEED, 200);
  walrus_entry_t e;
  TU_OK(w, walrus_get(w, 3, &e));
  long m1 = atomic_load(&ac.mallocs) + atomic_load(&ac.reallocs);
  cr_assert_gt(m1, m0, "get/rotation allocated nothing through the hooks");
  long f0 = atomic_load(&ac.frees);
  walrus_entry_free(&e);
  cr_assert_gt(atomic_load(&ac.frees), f0,
               "walrus_entry_free did not use the free hook");
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  iter_expect(it, 1, 200, SEED, 200);
  walrus_iter_close(it);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&ac.live), 0,
               "%ld allocations not freed through the hooks",
               atomic_load(&ac.live));
  /* reopen reads the log through the hooks too */
  w = tu_open(tu_dir, &cfg);
  tu_check_range(w, 1, 200, SEED, 200);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&ac.live), 0);
}

/* ---- VFS ---------------------------------------------------------------- */

typedef struct cvfs {
  walrus_vfs_t vfs;
  const walrus_vfs_t *real;
  const char *from; /* if set, paths starting with from are mapped to to */
  const char *to;
  atomic_long open, close, pread, pwrite, sync, truncate, allocate, size,
      lock, rename, unlink, sync_dir, list, mkdir, open_files;
  atomic_int dir_dirty; /* a rename or unlink not yet followed by sync_dir */
} cvfs_t;

#define CV(ctx) ((cvfs_t *)(ctx))
#define RP(c) ((c)->real->ctx)

/* Maps path into buf when the VFS remaps; returns the path to use. */
static const char *map(cvfs_t *c, const char *path, char *buf, size_t n) {
  if (c->from == NULL) return path;
  size_t k = strlen(c->from);
  if (strncmp(path, c->from, k) != 0) return "/nonexistent/walrus-bad-path";
  snprintf(buf, n, "%s%s", c->to, path + k);
  return buf;
}

static int cv_open(void *ctx, const char *path, int flags,
                   walrus_vfs_file_t **out) {
  cvfs_t *c = CV(ctx);
  char b[4096];
  atomic_fetch_add(&c->open, 1);
  int rc = c->real->open(RP(c), map(c, path, b, sizeof b), flags, out);
  if (rc == 0) atomic_fetch_add(&c->open_files, 1);
  return rc;
}
static int cv_close(void *ctx, walrus_vfs_file_t *f) {
  atomic_fetch_add(&CV(ctx)->close, 1);
  atomic_fetch_sub(&CV(ctx)->open_files, 1);
  return CV(ctx)->real->close(RP(CV(ctx)), f);
}
static int64_t cv_pread(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                        uint64_t off) {
  atomic_fetch_add(&CV(ctx)->pread, 1);
  return CV(ctx)->real->pread(RP(CV(ctx)), f, buf, n, off);
}
static int cv_pwrite(void *ctx, walrus_vfs_file_t *f, const void *buf,
                     size_t n, uint64_t off) {
  atomic_fetch_add(&CV(ctx)->pwrite, 1);
  return CV(ctx)->real->pwrite(RP(CV(ctx)), f, buf, n, off);
}
static int cv_sync(void *ctx, walrus_vfs_file_t *f) {
  atomic_fetch_add(&CV(ctx)->sync, 1);
  return CV(ctx)->real->sync(RP(CV(ctx)), f);
}
static int cv_truncate(void *ctx, walrus_vfs_file_t *f, uint64_t size) {
  atomic_fetch_add(&CV(ctx)->truncate, 1);
  return CV(ctx)->real->truncate(RP(CV(ctx)), f, size);
}
static int cv_allocate(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                       uint64_t len) {
  atomic_fetch_add(&CV(ctx)->allocate, 1);
  return CV(ctx)->real->allocate(RP(CV(ctx)), f, off, len);
}
static int cv_size(void *ctx, walrus_vfs_file_t *f, uint64_t *size) {
  atomic_fetch_add(&CV(ctx)->size, 1);
  return CV(ctx)->real->size(RP(CV(ctx)), f, size);
}
static int cv_lock(void *ctx, walrus_vfs_file_t *f) {
  atomic_fetch_add(&CV(ctx)->lock, 1);
  return CV(ctx)->real->lock(RP(CV(ctx)), f);
}
static int cv_rename(void *ctx, const char *from, const char *to) {
  cvfs_t *c = CV(ctx);
  char b1[4096], b2[4096];
  atomic_fetch_add(&c->rename, 1);
  int rc = c->real->rename(RP(c), map(c, from, b1, sizeof b1),
                           map(c, to, b2, sizeof b2));
  if (rc == 0) atomic_store(&c->dir_dirty, 1);
  return rc;
}
static int cv_unlink(void *ctx, const char *path) {
  cvfs_t *c = CV(ctx);
  char b[4096];
  atomic_fetch_add(&c->unlink, 1);
  int rc = c->real->unlink(RP(c), map(c, path, b, sizeof b));
  if (rc == 0) atomic_store(&c->dir_dirty, 1);
  return rc;
}
static int cv_sync_dir(void *ctx, const char *path) {
  cvfs_t *c = CV(ctx);
  char b[4096];
  atomic_fetch_add(&c->sync_dir, 1);
  int rc = c->real->sync_dir(RP(c), map(c, path, b, sizeof b));
  if (rc == 0) atomic_store(&c->dir_dirty, 0);
  return rc;
}
static int cv_list(void *ctx, const char *path, walrus_vfs_list_fn fn,
                   void *arg) {
  cvfs_t *c = CV(ctx);
  char b[4096];
  atomic_fetch_add(&c->list, 1);
  return c->real->list(RP(c), map(c, path, b, sizeof b), fn, arg);
}
static int cv_mkdir(void *ctx, const char *path) {
  cvfs_t *c = CV(ctx);
  char b[4096];
  atomic_fetch_add(&c->mkdir, 1);
  return c->real->mkdir(RP(c), map(c, path, b, sizeof b));
}

static void cvfs_init(cvfs_t *c) {
  memset(c, 0, sizeof *c);
  c->real = walrus_vfs_posix();
  cr_assert_not_null(c->real);
  c->vfs.version = WALRUS_VFS_VERSION;
  c->vfs.ctx = c;
  c->vfs.open = cv_open;
  c->vfs.close = cv_close;
  c->vfs.pread = cv_pread;
  c->vfs.pwrite = cv_pwrite;
  c->vfs.sync = cv_sync;
  c->vfs.truncate = cv_truncate;
  c->vfs.allocate = cv_allocate;
  c->vfs.size = cv_size;
  c->vfs.lock = cv_lock;
  c->vfs.rename = cv_rename;
  c->vfs.unlink = cv_unlink;
  c->vfs.sync_dir = cv_sync_dir;
  c->vfs.list = cv_list;
  c->vfs.mkdir = cv_mkdir;
}

Test(vfs, posix_table_is_complete) {
  const walrus_vfs_t *v = walrus_vfs_posix();
  cr_assert_not_null(v);
  cr_assert_geq(v->version, 1);
  cr_assert(v->open && v->close && v->pread && v->pwrite && v->sync &&
            v->truncate && v->allocate && v->size && v->lock && v->rename &&
            v->unlink && v->sync_dir && v->list && v->mkdir);
}

Test(vfs, counting_vfs_sees_every_kind_of_call) {
  static cvfs_t c;
  cvfs_init(&c);
  walrus_config_t cfg = cfg_seg(4096);
  cfg.vfs = &c.vfs;
  walrus_t *w = tu_open(tu_dir, &cfg);
  cr_assert_gt(atomic_load(&c.mkdir), 0, "directory not made through the VFS");
  cr_assert_gt(atomic_load(&c.lock), 0, "lock not taken through the VFS");
  cr_assert_gt(atomic_load(&c.sync_dir), 0, "no directory fsync at create");
  long s0 = atomic_load(&c.sync), d0 = atomic_load(&c.sync_dir);
  tu_append_n(w, 1, SEED, 100);
  cr_assert_gt(atomic_load(&c.pwrite), 0);
  cr_assert_gt(atomic_load(&c.sync), s0, "SYNC_ALWAYS append did not sync");
  cr_assert_gt(atomic_load(&c.sync_dir), d0,
               "creating the first segment did not fsync the directory");
  long r0 = atomic_load(&c.rename);
  d0 = atomic_load(&c.sync_dir);
  tu_append_n(w, 199, SEED, 200);
  cr_assert_gt(nsegs(), 3u);
  cr_assert_gt(atomic_load(&c.rename), r0, "segments not made by rename");
  cr_assert_gt(atomic_load(&c.sync_dir), d0, "rotation without dir fsync");
  long u0 = atomic_load(&c.unlink);
  d0 = atomic_load(&c.sync_dir);
  TU_OK(w, walrus_truncate_front(w, 150));
  cr_assert_gt(atomic_load(&c.unlink), u0, "no unlink for truncate_front");
  cr_assert_gt(atomic_load(&c.sync_dir), d0, "unlink without dir fsync");
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&c.open_files), 0, "files left open: %ld",
               atomic_load(&c.open_files));
  long p0 = atomic_load(&c.pread), l0 = atomic_load(&c.list);
  w = tu_open(tu_dir, &cfg);
  cr_assert_gt(atomic_load(&c.list), l0, "open did not list the directory");
  tu_check_range(w, 150, 200, SEED, 200);
  cr_assert_gt(atomic_load(&c.pread), p0, "reads not through the VFS");
  TU_OK(w, walrus_close(w));
  cr_assert_eq(atomic_load(&c.open_files), 0);
}

/* A VFS that maps a path that does not exist to the real directory: if
 * walrus touched any file without the VFS, it would find nothing. */
Test(vfs, every_file_operation_goes_through_the_vfs) {
  static cvfs_t c;
  cvfs_init(&c);
  c.from = "/nonexistent-walrus-vfs-root";
  c.to = tu_tmp;
  char vdir[256];
  snprintf(vdir, sizeof vdir, "%s/log", c.from);
  walrus_config_t cfg = cfg_seg(4096);
  cfg.vfs = &c.vfs;
  walrus_t *w = tu_open(vdir, &cfg);
  tu_append_n(w, 150, SEED, 200);
  TU_OK(w, walrus_truncate_front(w, 40));
  TU_OK(w, walrus_truncate_back(w, 140));
  tu_check_range(w, 40, 140, SEED, 200);
  TU_OK(w, walrus_close(w));
  cr_assert(tu_exists(tu_path(tu_dir, "META")), "log not in the mapped dir");
  cr_assert_gt(nsegs(), 2u);
  w = tu_open(vdir, &cfg);
  cr_assert_eq(walrus_first_index(w), 40u);
  cr_assert_eq(walrus_last_index(w), 140u);
  tu_check_range(w, 40, 140, SEED, 200);
  TU_OK(w, walrus_reset(w, 7));
  tu_append_n(w, 3, SEED, 200);
  TU_OK(w, walrus_close(w));
  walrus_config_t rcfg = cfg_ro();
  rcfg.vfs = &c.vfs;
  walrus_t *r = tu_open(vdir, &rcfg);
  tu_check_range(r, 7, 9, SEED, 200);
  TU_OK(r, walrus_close(r));
}

/* Durable (contract 1): every rename and unlink is followed by an fsync of
 * the directory before the call that made it returns. */
Test(vfs, directory_fsynced_after_every_rename_and_unlink) {
  static cvfs_t c;
  cvfs_init(&c);
  walrus_config_t cfg = cfg_seg(4096);
  cfg.vfs = &c.vfs;
  cfg.max_segments = 6;
#define CLEAN(what)                                                 \
  cr_assert_eq(atomic_load(&c.dir_dirty), 0,                       \
               "%s returned with a rename/unlink not fsynced", what)
  walrus_t *w = tu_open(tu_dir, &cfg);
  CLEAN("open");
  for (int i = 0; i < 300; i++) {
    tu_append_n(w, 1, SEED, 200);
    CLEAN("append");
  }
  cr_assert_gt(atomic_load(&c.rename), 5, "no rotations");
  cr_assert_gt(atomic_load(&c.unlink), 0, "no retention");
  TU_OK(w, walrus_truncate_front(w, walrus_first_index(w) + 30));
  CLEAN("truncate_front");
  TU_OK(w, walrus_truncate_back(w, walrus_first_index(w) + 5));
  CLEAN("truncate_back");
  TU_OK(w, walrus_close(w));
  CLEAN("close");
  w = tu_open(tu_dir, &cfg);
  CLEAN("reopen");
  TU_OK(w, walrus_reset(w, 5000));
  CLEAN("reset");
  tu_append_n(w, 40, SEED, 200);
  CLEAN("append after reset");
  TU_OK(w, walrus_close(w));
  CLEAN("close");
#undef CLEAN
}

/* ---- sync policies ------------------------------------------------------ */

static void sync_policy_round_trip(walrus_sync_t policy) {
  walrus_config_t cfg = cfg_seg(4096);
  cfg.sync = policy;
  cfg.sync_interval_ms = 10;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 150, SEED, 200);
  tu_check_range(w, 1, 150, SEED, 200);
  TU_OK(w, walrus_sync(w));
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_last_index(w), 150u);
  tu_check_range(w, 1, 150, SEED, 200);
  tu_append_n(w, 10, SEED, 200);
  TU_OK(w, walrus_close(w)); /* close syncs what is unsynced */
  w = tu_open(tu_dir, NULL);
  cr_assert_eq(walrus_last_index(w), 160u);
  tu_check_range(w, 1, 160, SEED, 200);
  TU_OK(w, walrus_close(w));
}

Test(sync, none_round_trip) { sync_policy_round_trip(WALRUS_SYNC_NONE); }
Test(sync, interval_round_trip) {
  sync_policy_round_trip(WALRUS_SYNC_INTERVAL);
}
Test(sync, always_round_trip) { sync_policy_round_trip(WALRUS_SYNC_ALWAYS); }

Test(sync, none_reaches_the_kernel_without_fsync) {
  static cvfs_t c;
  cvfs_init(&c);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_NONE;
  cfg.vfs = &c.vfs;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, 100); /* creates the segment */
  char **names;
  cr_assert_eq(tu_segments(tu_dir, &names), 1u);
  char seg[4096];
  snprintf(seg, sizeof seg, "%s", tu_path(tu_dir, names[0]));
  tu_strv_free(names);
  long s0 = atomic_load(&c.sync);
  for (int i = 0; i < 100; i++) {
    int64_t before = tu_file_size(seg);
    tu_append_n(w, 1, SEED, 100);
    cr_assert_gt(tu_file_size(seg), before,
                 "append %d returned before its bytes reached the file", i);
  }
  cr_assert_eq(atomic_load(&c.sync), s0, "SYNC_NONE appends called fdatasync");
  TU_OK(w, walrus_sync(w));
  cr_assert_gt(atomic_load(&c.sync), s0, "walrus_sync did not fdatasync");
  TU_OK(w, walrus_close(w));
}

Test(sync, always_syncs_every_append) {
  static cvfs_t c;
  cvfs_init(&c);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.vfs = &c.vfs;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, 100);
  for (int i = 0; i < 50; i++) {
    long s0 = atomic_load(&c.sync);
    tu_append_n(w, 1, SEED, 100);
    cr_assert_gt(atomic_load(&c.sync), s0, "append %d not synced", i);
  }
  TU_OK(w, walrus_close(w));
}
