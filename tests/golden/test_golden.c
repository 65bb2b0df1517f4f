/*
 * test_golden.c: the golden log of format version 1 (tests/golden/v1/,
 * made once by make_golden and checked in) must always open and read back
 * identically.
 *
 * This file owns the format-compatibility check: it copies the checked-in
 * log to a temp dir, opens it read-only and writable, checks the first and
 * last index and every entry's fields and bytes against golden_data.h,
 * iterates it, checks that opening changed no sealed segment, and then
 * appends and reopens.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "golden/golden_data.h"
#include "util.h"
#include "walrus.h"

#define GOLDEN_V1 WALRUS_TEST_DATA_DIR "/golden/v1"

static char *g_tmp;
static char g_dir[4096];

static void setup(void) {
  cr_assert(tu_exists(GOLDEN_V1 "/META"),
            "the golden log %s is missing; see tests/golden/README.md",
            GOLDEN_V1);
  g_tmp = tu_tmpdir();
  snprintf(g_dir, sizeof g_dir, "%s/v1", g_tmp);
  tu_copy_dir(GOLDEN_V1, g_dir);
}

static void teardown(void) {
  tu_tmpdir_remove(g_tmp);
  g_tmp = NULL;
}

TestSuite(golden_v1, .init = setup, .fini = teardown);

/* Asserts that e is golden entry i. */
static void check_golden(const walrus_entry_t *e, uint64_t i) {
  unsigned char want[GOLDEN_MAX_LEN + 1];
  char txbuf[32];
  const char *tx = golden_txid(i, txbuf);
  cr_assert_eq(e->index, i);
  cr_assert_eq(e->term, golden_term(i), "entry %" PRIu64, i);
  cr_assert_eq(e->type, golden_type(i), "entry %" PRIu64, i);
  cr_assert_eq(e->timestamp_ns, golden_timestamp(i), "entry %" PRIu64, i);
  if (tx == NULL) {
    cr_assert_null(e->tx_id, "entry %" PRIu64, i);
  } else {
    cr_assert_not_null(e->tx_id, "entry %" PRIu64 " lost its tx id", i);
    cr_assert_str_eq(e->tx_id, tx, "entry %" PRIu64, i);
  }
  cr_assert_eq(e->len, golden_len(i), "entry %" PRIu64, i);
  golden_fill(i, want);
  if (e->len)
    cr_assert_eq(memcmp(e->data, want, e->len), 0, "entry %" PRIu64 " bytes",
                 i);
}

/* Checks the whole golden content through walrus_get and an iterator. */
static void check_log(walrus_t *w, uint64_t last) {
  cr_assert_eq(walrus_first_index(w), GOLDEN_FIRST);
  cr_assert_eq(walrus_last_index(w), last);
  walrus_entry_t e;
  int rc = walrus_get(w, GOLDEN_FIRST - 1, &e);
  cr_assert_eq(rc, WALRUS_EINDEX, "get below first: %s", walrus_errname(rc));
  for (uint64_t i = GOLDEN_FIRST; i <= last; i++) {
    rc = walrus_get(w, i, &e);
    cr_assert_eq(rc, WALRUS_OK, "get %" PRIu64 ": %s: %s", i,
                 walrus_errname(rc), walrus_errmsg(w));
    check_golden(&e, i);
    walrus_entry_free(&e);
  }
  walrus_iter_t *it;
  rc = walrus_iter_open(w, 0, &it);
  cr_assert_eq(rc, WALRUS_OK, "%s", walrus_errmsg(w));
  for (uint64_t i = GOLDEN_FIRST; i <= last; i++) {
    rc = walrus_iter_next(it, &e);
    cr_assert_eq(rc, WALRUS_OK, "iter %" PRIu64 ": %s: %s", i,
                 walrus_errname(rc), walrus_errmsg(w));
    check_golden(&e, i);
  }
  cr_assert_eq(walrus_iter_next(it, &e), WALRUS_DONE);
  walrus_iter_close(it);
}

/* Appends golden entries last+1..upto, from the same formula. */
static void append_golden(walrus_t *w, uint64_t upto) {
  unsigned char buf[GOLDEN_MAX_LEN];
  char txbuf[32];
  for (uint64_t i = walrus_last_index(w) + 1; i <= upto; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    e.term = golden_term(i);
    e.type = golden_type(i);
    e.timestamp_ns = golden_timestamp(i);
    e.tx_id = golden_txid(i, txbuf);
    golden_fill(i, buf);
    e.data = buf;
    e.len = golden_len(i);
    uint64_t got = 0;
    int rc = walrus_append(w, &e, &got);
    cr_assert_eq(rc, WALRUS_OK, "%s", walrus_errmsg(w));
    cr_assert_eq(got, i);
  }
}

Test(golden_v1, has_the_expected_shape) {
  char **names;
  size_t n = tu_segments(g_dir, &names);
  cr_assert_geq(n, 3u, "want several segments, have %zu", n);
  cr_assert_str_neq(names[0], "00000000000000000001.seg",
                    "the first segment should have been dropped");
  tu_strv_free(names);
}

Test(golden_v1, reads_back_read_only) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  walrus_t *w = tu_open(g_dir, &cfg);
  check_log(w, GOLDEN_LAST);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  /* a read-only open changed nothing */
  char **names;
  size_t n = tu_segments(g_dir, &names);
  for (size_t k = 0; k < n; k++) {
    size_t a, b;
    unsigned char *orig = tu_read_file(tu_path(GOLDEN_V1, names[k]), &a);
    unsigned char *now = tu_read_file(tu_path(g_dir, names[k]), &b);
    cr_assert_eq(a, b, "%s changed size", names[k]);
    cr_assert_eq(memcmp(orig, now, a), 0, "%s changed", names[k]);
    free(orig);
    free(now);
  }
  tu_strv_free(names);
}

Test(golden_v1, reads_back_writable_and_keeps_sealed_segments) {
  walrus_t *w = tu_open(g_dir, NULL);
  check_log(w, GOLDEN_LAST);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  char **names;
  size_t n = tu_segments(g_dir, &names);
  cr_assert_eq(n, tu_segments(GOLDEN_V1, NULL), "segment files changed");
  for (size_t k = 0; k + 1 < n; k++) { /* every sealed segment */
    size_t a, b;
    unsigned char *orig = tu_read_file(tu_path(GOLDEN_V1, names[k]), &a);
    unsigned char *now = tu_read_file(tu_path(g_dir, names[k]), &b);
    cr_assert_eq(a, b, "%s changed size", names[k]);
    cr_assert_eq(memcmp(orig, now, a), 0, "sealed %s changed", names[k]);
    free(orig);
    free(now);
  }
  tu_strv_free(names);
}

Test(golden_v1, both_opens_side_by_side) {
  walrus_t *w = tu_open(g_dir, NULL);
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  walrus_t *r = tu_open(g_dir, &cfg);
  check_log(r, GOLDEN_LAST);
  check_log(w, GOLDEN_LAST);
  cr_assert_eq(walrus_close(r), WALRUS_OK);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
}

Test(golden_v1, appends_and_reopens) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = GOLDEN_SEGMENT_BYTES;
  walrus_t *w = tu_open(g_dir, &cfg);
  append_golden(w, GOLDEN_LAST + 60); /* crosses at least one rotation */
  check_log(w, GOLDEN_LAST + 60);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(g_dir, &cfg);
  check_log(w, GOLDEN_LAST + 60);
  cr_assert_eq(walrus_truncate_back(w, GOLDEN_LAST + 10), WALRUS_OK, "%s",
               walrus_errmsg(w));
  cr_assert_eq(walrus_close(w), WALRUS_OK);
  w = tu_open(g_dir, NULL);
  check_log(w, GOLDEN_LAST + 10);
  cr_assert_eq(walrus_close(w), WALRUS_OK);
}
