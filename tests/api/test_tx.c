/*
 * test_tx.c: the transaction API (walrus_tx_*), every call and every error
 * code walrus.h documents for it.
 *
 * This file owns: begin (id format and uniqueness, NULL arguments,
 * read-only handles), add (copying, the entry's tx_id, malformed, unknown
 * and finished ids, tx_max_entries, tx_max_pending_bytes, max_entry_bytes),
 * commit (contiguous indexes in add order, out-parameters, empty
 * transactions, durability across reopen, interleaved transactions, a
 * transaction larger than a segment, a transaction while it is being
 * written (held inside its fdatasync by a gate in a test VFS), I/O
 * failures during the commit and a fault sweep over a large commit),
 * rollback, state (including the ring of remembered endings), expiry with
 * short timeouts (on touch, walrus_tx_cleanup_expired, the background
 * cleaner, the config default and "never"), walrus_tx_active_count, close
 * aborting what is pending, and many threads committing at once.  Crash
 * atomicity under SIGKILL is in tests/crash/test_tx_kill.c and
 * tests/crash/test_bank.c.
 *
 * Timeouts are tested with short real timeouts: a transaction of 1 ms is
 * touched after sleeping 20 ms or more, one of 60 s within a few ms.  Every
 * assertion holds however slow the machine is, except that a "long"
 * timeout of 60 s must not pass during a test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vfs_fault.h"
#include "walrus.h"
#include "walrus_vfs.h"

/* ---- fixture ------------------------------------------------------------ */

/* Every test gets a fresh temp dir tu_tmp and log directory tu_dir. */
TestSuite(tx_begin, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_add, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_commit, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_rollback, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_state, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_expiry, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_active, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_close, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_io, .init = tu_fixture_setup, .fini = tu_fixture_teardown);
TestSuite(tx_threads, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

#define SEED 0x7A5EEDu

static walrus_config_t cfg_default(void) {
  walrus_config_t c;
  walrus_config_default(&c);
  return c;
}

/* Payload seed of transaction entries: position p of the transaction
 * whose tag is tag. */
static uint64_t pseed_of(uint64_t tag) { return SEED ^ (tag * 0x9E37u); }

/* Add entry p of a test transaction tagged tag: term = tag, type = p,
 * timestamp = 5000 + p, tu_len(p, pseed_of(tag), max) bytes. */
static void add_test_entry(walrus_t *w, const walrus_txid_t *id, uint64_t tag,
                           uint64_t p, size_t max) {
  unsigned char *buf = malloc(max > 0 ? max : 1);
  cr_assert_not_null(buf);
  size_t len = tu_len(p, pseed_of(tag), max);
  tu_payload(p, pseed_of(tag), buf, len);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.term = tag;
  e.type = (uint16_t)p;
  e.timestamp_ns = (int64_t)(5000 + p);
  e.data = buf;
  e.len = len;
  TU_OK(w, walrus_tx_add(w, id, &e));
  free(buf);
}

/* Assert that e is entry p of the test transaction tag with id id. */
static void check_test_entry(const walrus_entry_t *e, const walrus_txid_t *id,
                             uint64_t tag, uint64_t p, size_t max) {
  cr_assert_not_null(e->tx_id, "entry %" PRIu64 " has no tx_id", e->index);
  cr_assert_str_eq(e->tx_id, id->s, "entry %" PRIu64 ": tx_id", e->index);
  cr_assert_eq(e->term, tag, "entry %" PRIu64 ": term", e->index);
  cr_assert_eq(e->type, (uint16_t)p, "entry %" PRIu64 ": type (position)",
               e->index);
  cr_assert_eq(e->timestamp_ns, (int64_t)(5000 + p),
               "entry %" PRIu64 ": timestamp", e->index);
  size_t len = tu_len(p, pseed_of(tag), max);
  cr_assert_eq(e->len, len, "entry %" PRIu64 ": length", e->index);
  unsigned char *want = malloc(len > 0 ? len : 1);
  cr_assert_not_null(want);
  tu_payload(p, pseed_of(tag), want, len);
  cr_assert(len == 0 || memcmp(e->data, want, len) == 0,
            "entry %" PRIu64 ": wrong bytes", e->index);
  free(want);
}

/* walrus_get the n entries from first and check them as transaction tag. */
static void check_test_tx(walrus_t *w, uint64_t first, size_t n,
                          const walrus_txid_t *id, uint64_t tag, size_t max) {
  for (size_t p = 0; p < n; p++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, first + p, &e));
    cr_assert_eq(e.index, first + p);
    check_test_entry(&e, id, tag, p, max);
    walrus_entry_free(&e);
  }
}

/* Assert no entry in the log carries id. */
static void expect_absent(walrus_t *w, const walrus_txid_t *id) {
  walrus_iter_t *it;
  if (walrus_last_index(w) == 0) return;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  walrus_entry_t e;
  int rc;
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK)
    cr_assert(e.tx_id == NULL || strcmp(e.tx_id, id->s) != 0,
              "entry %" PRIu64 " belongs to %s, which must not be in the log",
              e.index, id->s);
  cr_assert_eq(rc, WALRUS_DONE, "iteration: %s", walrus_errname(rc));
  walrus_iter_close(it);
}

static walrus_tx_state_t state_of(walrus_t *w, const walrus_txid_t *id) {
  walrus_tx_state_t s = (walrus_tx_state_t)-1;
  TU_OK(w, walrus_tx_state(w, id, &s));
  return s;
}

static int well_formed(const walrus_txid_t *id) {
  if (strnlen(id->s, sizeof id->s) != 35) return 0;
  if (memcmp(id->s, "tx_", 3) != 0) return 0;
  for (int i = 3; i < 35; i++)
    if (!isdigit((unsigned char)id->s[i]) && !(id->s[i] >= 'a' && id->s[i] <= 'f'))
      return 0;
  return 1;
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(((const walrus_txid_t *)a)->s, ((const walrus_txid_t *)b)->s);
}

/* ---- begin -------------------------------------------------------------- */

Test(tx_begin, ids_are_unique_and_well_formed) {
  enum { N = 3000 };
  walrus_t *w = tu_open_default();
  walrus_txid_t *ids = calloc(N, sizeof *ids);
  cr_assert_not_null(ids);
  for (size_t i = 0; i < N; i++) {
    memset(&ids[i], 'Z', sizeof ids[i]);
    TU_OK(w, walrus_tx_begin(w, 0, &ids[i]));
    cr_assert(well_formed(&ids[i]), "id %zu is not tx_ + 32 lowercase hex: %.40s",
              i, ids[i].s);
    cr_assert_eq(state_of(w, &ids[i]), WALRUS_TX_PENDING);
  }
  cr_assert_eq(walrus_tx_active_count(w), N);
  qsort(ids, N, sizeof *ids, cmp_id);
  for (size_t i = 1; i < N; i++)
    cr_assert_str_neq(ids[i - 1].s, ids[i].s, "an id was handed out twice");
  /* Random, not a counter: every hex digit position takes several values. */
  for (int pos = 3; pos < 35; pos++) {
    int seen[16] = {0}, kinds = 0;
    for (size_t i = 0; i < N; i++) {
      int d = isdigit((unsigned char)ids[i].s[pos]) ? ids[i].s[pos] - '0'
                                                    : ids[i].s[pos] - 'a' + 10;
      if (!seen[d]++) kinds++;
    }
    cr_assert_geq(kinds, 12, "hex digit %d of the ids takes only %d values", pos,
                  kinds);
  }
  free(ids);
  TU_OK(w, walrus_close(w));
}

Test(tx_begin, null_arguments) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_begin(NULL, 0, &id));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_begin(w, 0, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_begin(w, 1000, NULL));
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
}

Test(tx_begin, read_only_handle_refuses) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 50);
  TU_OK(w, walrus_close(w));
  walrus_config_t c = cfg_default();
  c.read_only = 1;
  walrus_t *r = tu_open(tu_dir, &c);
  walrus_txid_t id;
  TU_EXPECT(WALRUS_EREADONLY, walrus_tx_begin(r, 0, &id));
  TU_EXPECT(WALRUS_EREADONLY, walrus_tx_begin(r, 1000, &id));
  cr_assert_eq(walrus_tx_active_count(r), 0);
  TU_OK(r, walrus_close(r));

  /* A read-only handle beside a writer refuses too; the writer does not. */
  w = tu_open_default();
  r = tu_open(tu_dir, &c);
  TU_EXPECT(WALRUS_EREADONLY, walrus_tx_begin(r, 0, &id));
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  TU_OK(r, walrus_close(r));
  TU_OK(w, walrus_close(w));
}

/* ---- add ---------------------------------------------------------------- */

Test(tx_add, copies_the_entry) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  enum { N = 20, LEN = 700 };
  unsigned char *buf = malloc(LEN);
  char *txcopy = malloc(sizeof id.s);
  cr_assert_not_null(buf);
  cr_assert_not_null(txcopy);
  for (uint64_t p = 0; p < N; p++) {
    /* Same buffer for every entry, overwritten right after each add; the
     * entry's tx_id points into a buffer that is scribbled on too. */
    memcpy(txcopy, id.s, sizeof id.s);
    tu_payload(p, SEED, buf, LEN);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    e.term = 100 + p;
    e.type = (uint16_t)p;
    e.timestamp_ns = (int64_t)(7000 + p);
    e.tx_id = p % 2 ? txcopy : NULL;
    e.data = buf;
    e.len = LEN;
    TU_OK(w, walrus_tx_add(w, &id, &e));
    memset(buf, 0xEE, LEN);
    memset(txcopy, 'q', sizeof id.s - 1);
    memset(&e, 0xAB, sizeof e);
  }
  free(buf);
  free(txcopy);
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(first, 1u);
  cr_assert_eq(count, (size_t)N);
  for (uint64_t p = 0; p < N; p++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    TU_OK(w, walrus_get(w, first + p, &e));
    cr_assert_str_eq(e.tx_id, id.s, "entry %" PRIu64 ": tx_id on read-back",
                     first + p);
    cr_assert_eq(e.term, 100 + p);
    cr_assert_eq(e.type, (uint16_t)p);
    cr_assert_eq(e.timestamp_ns, (int64_t)(7000 + p));
    tu_check_bytes(&e, p, SEED, LEN);
    walrus_entry_free(&e);
  }
  TU_OK(w, walrus_close(w));
}

Test(tx_add, timestamp_zero_is_stamped) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "x";
  e.len = 1;
  TU_OK(w, walrus_tx_add(w, &id, &e));
  struct timespec before;
  clock_gettime(CLOCK_REALTIME, &before);
  TU_OK(w, walrus_tx_commit(w, &id, NULL, NULL));
  memset(&e, 0, sizeof e);
  TU_OK(w, walrus_get(w, 1, &e));
  int64_t b = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec;
  cr_assert_gt(e.timestamp_ns, b - 60 * (int64_t)1000000000,
               "a timestamp of 0 must be stamped with the real time");
  walrus_entry_free(&e);
  TU_OK(w, walrus_close(w));
}

Test(tx_add, entry_tx_id_must_name_the_transaction) {
  walrus_t *w = tu_open_default();
  walrus_txid_t a, b;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "abc";
  e.len = 3;
  e.tx_id = b.s; /* another pending transaction */
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &a, &e));
  e.tx_id = "tx_nonsense";
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &a, &e));
  e.tx_id = "";
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &a, &e));
  char longer[64];
  snprintf(longer, sizeof longer, "%sX", a.s); /* a's id plus a byte */
  e.tx_id = longer;
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &a, &e));
  e.tx_id = a.s; /* its own id is fine */
  TU_OK(w, walrus_tx_add(w, &a, &e));
  e.tx_id = NULL; /* and so is none */
  TU_OK(w, walrus_tx_add(w, &a, &e));
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &a, NULL, &count));
  cr_assert_eq(count, 2u, "the refused adds must not have added anything");
  count = 9;
  TU_OK(w, walrus_tx_commit(w, &b, NULL, &count));
  cr_assert_eq(count, 0u);
  TU_OK(w, walrus_close(w));
}

Test(tx_add, null_arguments_and_bad_data) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "abc";
  e.len = 3;
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(NULL, &id, &e));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, NULL, &e));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &id, NULL));
  e.data = NULL;
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_add(w, &id, &e));
  e.len = 0; /* NULL data with no bytes is fine */
  TU_OK(w, walrus_tx_add(w, &id, &e));
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(count, 1u);
  memset(&e, 0, sizeof e);
  TU_OK(w, walrus_get(w, first, &e));
  cr_assert_eq(e.len, 0u);
  cr_assert_str_eq(e.tx_id, id.s);
  walrus_entry_free(&e);
  TU_OK(w, walrus_close(w));
}

/* Ids that are not "tx_" + 32 lowercase hex digits + NUL. */
static void malformed_ids(const walrus_txid_t *good, walrus_txid_t *bad,
                          size_t *n) {
  size_t k = 0;
  memset(bad, 0, 10 * sizeof *bad);
  bad[k] = *good; /* uppercase hex */
  for (int i = 3; i < 35; i++)
    bad[k].s[i] = (char)toupper((unsigned char)bad[k].s[i]);
  if (strcmp(bad[k].s, good->s) == 0) bad[k].s[3] = 'A';
  k++;
  bad[k] = *good; /* 31 digits */
  bad[k].s[34] = '\0';
  k++;
  bad[k] = *good; /* 33 digits */
  bad[k].s[35] = 'a';
  bad[k].s[36] = '\0';
  k++;
  bad[k] = *good; /* wrong prefix */
  bad[k].s[0] = 'T';
  k++;
  bad[k] = *good; /* no prefix */
  memmove(bad[k].s, bad[k].s + 3, 33);
  k++;
  bad[k] = *good; /* a non-hex digit */
  bad[k].s[20] = 'g';
  k++;
  bad[k] = *good; /* a space */
  bad[k].s[10] = ' ';
  k++;
  /* empty */
  k++;
  snprintf(bad[k].s, sizeof bad[k].s, "tx_"); /* prefix only */
  k++;
  *n = k;
}

Test(tx_add, malformed_ids_are_einval_everywhere) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id, bad[10];
  size_t n;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  malformed_ids(&id, bad, &n);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "abc";
  e.len = 3;
  for (size_t i = 0; i < n; i++) {
    walrus_tx_state_t s;
    cr_assert_eq(walrus_tx_add(w, &bad[i], &e), WALRUS_EINVAL,
                 "add with id \"%.40s\"", bad[i].s);
    cr_assert_eq(walrus_tx_commit(w, &bad[i], NULL, NULL), WALRUS_EINVAL,
                 "commit with id \"%.40s\"", bad[i].s);
    cr_assert_eq(walrus_tx_rollback(w, &bad[i]), WALRUS_EINVAL,
                 "rollback with id \"%.40s\"", bad[i].s);
    cr_assert_eq(walrus_tx_state(w, &bad[i], &s), WALRUS_EINVAL,
                 "state with id \"%.40s\"", bad[i].s);
  }
  /* The real transaction is untouched. */
  cr_assert_eq(state_of(w, &id), WALRUS_TX_PENDING);
  cr_assert_eq(walrus_tx_active_count(w), 1);
  cr_assert_eq(walrus_last_index(w), 0u);
  TU_OK(w, walrus_close(w));
}

Test(tx_add, unknown_ids_are_not_found) {
  walrus_t *w = tu_open_default();
  walrus_txid_t real, unknown;
  TU_OK(w, walrus_tx_begin(w, 0, &real));
  unknown = real; /* same form, different digits */
  unknown.s[34] = unknown.s[34] == '0' ? '1' : '0';
  walrus_txid_t zeros;
  memset(&zeros, 0, sizeof zeros);
  memcpy(zeros.s, "tx_00000000000000000000000000000000", 35);
  const walrus_txid_t *ids[] = {&unknown, &zeros};
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  for (size_t i = 0; i < 2; i++) {
    walrus_tx_state_t s;
    TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_add(w, ids[i], &e));
    TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_commit(w, ids[i], NULL, NULL));
    TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_rollback(w, ids[i]));
    TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_state(w, ids[i], &s));
  }
  cr_assert_eq(state_of(w, &real), WALRUS_TX_PENDING);
  cr_assert_eq(walrus_last_index(w), 0u);
  TU_OK(w, walrus_close(w));
}

/* After commit or rollback: add, commit and rollback are ETXNOTPENDING. */
static void finished_refuses(int rollback) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 1, 0, 100);
  if (rollback)
    TU_OK(w, walrus_tx_rollback(w, &id));
  else
    TU_OK(w, walrus_tx_commit(w, &id, NULL, NULL));
  uint64_t last = walrus_last_index(w);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "late";
  e.len = 4;
  uint64_t first = 77;
  size_t count = 77;
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_add(w, &id, &e));
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &id, &first, &count));
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_rollback(w, &id));
  cr_assert_eq(first, 77u, "a failed commit must not write its out-params");
  cr_assert_eq(count, 77u, "a failed commit must not write its out-params");
  cr_assert_eq(walrus_last_index(w), last, "a refused call wrote something");
  cr_assert_eq(state_of(w, &id),
               rollback ? WALRUS_TX_ABORTED : WALRUS_TX_COMMITTED);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
}

Test(tx_add, after_commit_is_not_pending) { finished_refuses(0); }
Test(tx_add, after_rollback_is_not_pending) { finished_refuses(1); }

Test(tx_add, max_entries) {
  walrus_config_t c = cfg_default();
  c.tx_max_entries = 5;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t a, b;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  for (uint64_t p = 0; p < 5; p++) add_test_entry(w, &a, 1, p, 300);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = "one too many";
  e.len = 12;
  TU_EXPECT(WALRUS_ETXTOOLARGE, walrus_tx_add(w, &a, &e));
  TU_EXPECT(WALRUS_ETXTOOLARGE, walrus_tx_add(w, &a, &e));
  cr_assert_eq(state_of(w, &a), WALRUS_TX_PENDING,
               "a refused add leaves the transaction pending");
  /* The limit is per transaction. */
  for (uint64_t p = 0; p < 5; p++) add_test_entry(w, &b, 2, p, 300);
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &a, &first, &count));
  cr_assert_eq(count, 5u);
  check_test_tx(w, first, 5, &a, 1, 300);
  TU_OK(w, walrus_tx_commit(w, &b, &first, &count));
  cr_assert_eq(count, 5u);
  check_test_tx(w, first, 5, &b, 2, 300);
  TU_OK(w, walrus_close(w));

  /* tx_max_entries = 1 (the smallest allowed). */
  c.tx_max_entries = 1;
  w = tu_open(tu_dir, &c);
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_add(w, &a, &e));
  TU_EXPECT(WALRUS_ETXTOOLARGE, walrus_tx_add(w, &a, &e));
  TU_OK(w, walrus_tx_commit(w, &a, NULL, &count));
  cr_assert_eq(count, 1u);
  TU_OK(w, walrus_close(w));
}

Test(tx_add, max_pending_bytes_counts_all_pending_transactions) {
  walrus_config_t c = cfg_default();
  c.tx_max_pending_bytes = 4096;
  walrus_t *w = tu_open(tu_dir, &c);
  static unsigned char big[5000];
  memset(big, 'b', sizeof big);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = big;

  /* One entry over the limit. */
  walrus_txid_t a, b;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  e.len = 5000;
  TU_EXPECT(WALRUS_ETXTOOLARGE, walrus_tx_add(w, &a, &e));
  cr_assert_eq(state_of(w, &a), WALRUS_TX_PENDING);

  /* Many small entries in one transaction: refused before holding more
   * than the limit. */
  e.len = 500;
  size_t added = 0;
  int rc;
  while ((rc = walrus_tx_add(w, &a, &e)) == WALRUS_OK) {
    added++;
    cr_assert_leq(added * 500, 4096u,
                  "pending transactions hold %zu payload bytes, over "
                  "tx_max_pending_bytes 4096",
                  added * 500);
  }
  cr_assert_eq(rc, WALRUS_ETXTOOLARGE, "got %s", walrus_errname(rc));
  cr_assert_geq(added, 4u, "only %zu entries of 500 bytes fit in 4096", added);

  /* The limit is shared: another transaction cannot add 2500 bytes now. */
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  e.len = 2500;
  TU_EXPECT(WALRUS_ETXTOOLARGE, walrus_tx_add(w, &b, &e));
  /* Rolling a back frees its bytes. */
  TU_OK(w, walrus_tx_rollback(w, &a));
  TU_OK(w, walrus_tx_add(w, &b, &e));
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &b, NULL, &count));
  cr_assert_eq(count, 1u);
  /* And a commit frees them too. */
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_add(w, &a, &e));
  TU_OK(w, walrus_tx_commit(w, &a, NULL, &count));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  TU_OK(w, walrus_tx_add(w, &b, &e));
  TU_OK(w, walrus_close(w)); /* close frees b's bytes (LeakSanitizer) */
}

Test(tx_add, max_pending_bytes_admits_payload_up_to_the_limit) {
  /* The limit is on payload bytes: 9000 bytes of payload fit under a
   * limit of 10000, whatever the transaction's internal buffer does. */
  walrus_config_t c = cfg_default();
  c.tx_max_pending_bytes = 10000;
  walrus_t *w = tu_open(tu_dir, &c);
  static unsigned char big[9000];
  memset(big, 'c', sizeof big);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = big;
  e.len = sizeof big;
  walrus_txid_t a;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  int rc = walrus_tx_add(w, &a, &e);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", walrus_errmsg(w));
  size_t count = 0;
  int crc = rc == WALRUS_OK ? walrus_tx_commit(w, &a, NULL, &count) : rc;
  TU_OK(w, walrus_close(w)); /* before asserting: nothing leaks on failure */
  cr_assert_eq(rc, WALRUS_OK,
               "9000 payload bytes under tx_max_pending_bytes 10000: %s: %s",
               walrus_errname(rc), msg);
  cr_assert_eq(crc, WALRUS_OK);
  cr_assert_eq(count, 1u);
}

Test(tx_add, entry_too_large) {
  /* The id takes 35 bytes of max_entry_bytes: len + 35 may not exceed
   * it. */
  walrus_config_t c = cfg_default();
  c.max_entry_bytes = 100;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  unsigned char buf[200];
  memset(buf, 'x', sizeof buf);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  e.data = buf;
  e.len = 66;
  TU_EXPECT(WALRUS_ETOOLARGE, walrus_tx_add(w, &id, &e));
  e.len = 200;
  TU_EXPECT(WALRUS_ETOOLARGE, walrus_tx_add(w, &id, &e));
  cr_assert_eq(state_of(w, &id), WALRUS_TX_PENDING);
  e.len = 65;
  TU_OK(w, walrus_tx_add(w, &id, &e));
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(count, 1u);
  memset(&e, 0, sizeof e);
  TU_OK(w, walrus_get(w, first, &e));
  cr_assert_eq(e.len, 65u);
  walrus_entry_free(&e);
  TU_OK(w, walrus_close(w));
}

/* ---- commit ------------------------------------------------------------- */

Test(tx_commit, contiguous_indexes_in_add_order) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 3, SEED, 100);
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  for (uint64_t p = 0; p < 10; p++) add_test_entry(w, &id, 42, p, 900);
  cr_assert_eq(walrus_last_index(w), 3u, "nothing is written before commit");
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(first, 4u);
  cr_assert_eq(count, 10u);
  cr_assert_eq(walrus_last_index(w), 13u);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_COMMITTED);
  check_test_tx(w, 4, 10, &id, 42, 900);
  tu_check_range(w, 1, 3, SEED, 100); /* untouched, no tx_id */

  /* The iterator shows the same, tx_id included. */
  walrus_iter_t *it;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  walrus_entry_t e;
  for (uint64_t i = 1; i <= 13; i++) {
    TU_OK(w, walrus_iter_next(it, &e));
    cr_assert_eq(e.index, i);
    if (i <= 3)
      tu_check_entry(&e, i, SEED, 100);
    else
      check_test_entry(&e, &id, 42, i - 4, 900);
  }
  TU_EXPECT(WALRUS_DONE, walrus_iter_next(it, &e));
  walrus_iter_close(it);

  /* Plain appends go on after it. */
  tu_append_n(w, 2, SEED ^ 1, 10);
  cr_assert_eq(walrus_last_index(w), 15u);
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, out_params_may_be_null) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 3, 0, 10);
  TU_OK(w, walrus_tx_commit(w, &id, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), 1u);
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 4, 0, 10);
  uint64_t first = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, NULL));
  cr_assert_eq(first, 2u);
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 5, 0, 10);
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, NULL, &count));
  cr_assert_eq(count, 1u);
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_commit(NULL, &id, NULL, NULL));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_commit(w, NULL, NULL, NULL));
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, empty_transaction_writes_nothing) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 4, SEED, 50);
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  uint64_t first = 0;
  size_t count = 99;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(count, 0u);
  cr_assert_eq(walrus_last_index(w), 4u, "an empty commit wrote an entry");
  cr_assert_eq(walrus_next_index(w), 5u);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_COMMITTED);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 4u);
  tu_check_range(w, 1, 4, SEED, 50);
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, survives_reopen) {
  walrus_t *w = tu_open_default();
  walrus_txid_t a, b;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  for (uint64_t p = 0; p < 7; p++) add_test_entry(w, &a, 10, p, 1500);
  uint64_t fa = 0, fb = 0;
  size_t na = 0, nb = 0;
  TU_OK(w, walrus_tx_commit(w, &a, &fa, &na));
  tu_append_n(w, 2, SEED, 20);
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  for (uint64_t p = 0; p < 3; p++) add_test_entry(w, &b, 11, p, 1500);
  TU_OK(w, walrus_tx_commit(w, &b, &fb, &nb));
  cr_assert_eq(fa, 1u);
  cr_assert_eq(fb, 10u);
  TU_OK(w, walrus_close(w));

  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 12u);
  check_test_tx(w, fa, na, &a, 10, 1500);
  check_test_tx(w, fb, nb, &b, 11, 1500);
  /* A new handle has no memory of old transactions. */
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));

  /* And read-only handles see them too. */
  walrus_config_t c = cfg_default();
  c.read_only = 1;
  w = tu_open(tu_dir, &c);
  check_test_tx(w, fa, na, &a, 10, 1500);
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, twice_is_not_pending) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 1, 0, 100);
  add_test_entry(w, &id, 1, 1, 100);
  TU_OK(w, walrus_tx_commit(w, &id, NULL, NULL));
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &id, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), 2u, "the second commit wrote again");
  cr_assert_eq(state_of(w, &id), WALRUS_TX_COMMITTED);
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, interleaved_commit_order_is_index_order) {
  walrus_t *w = tu_open_default();
  enum { T = 4 };
  walrus_txid_t id[T];
  for (int t = 0; t < T; t++) TU_OK(w, walrus_tx_begin(w, 0, &id[t]));
  /* Interleave adds: transaction t gets 3 + t entries. */
  for (uint64_t p = 0; p < 3 + T; p++)
    for (int t = 0; t < T; t++)
      if (p < (uint64_t)(3 + t)) add_test_entry(w, &id[t], 100 + (uint64_t)t, p, 400);
  /* A plain append in between is not part of any of them. */
  tu_append_n(w, 1, SEED, 30);
  cr_assert_eq(walrus_tx_active_count(w), T);
  /* Commit in the order 2, 0, 3, 1. */
  const int order[T] = {2, 0, 3, 1};
  uint64_t next = 2;
  for (int k = 0; k < T; k++) {
    int t = order[k];
    uint64_t first = 0;
    size_t count = 0;
    TU_OK(w, walrus_tx_commit(w, &id[t], &first, &count));
    cr_assert_eq(first, next, "commit %d (transaction %d) starts at %" PRIu64
                              ", want %" PRIu64, k, t, first, next);
    cr_assert_eq(count, (size_t)(3 + t));
    next += count;
  }
  cr_assert_eq(walrus_last_index(w), next - 1);
  next = 2;
  for (int k = 0; k < T; k++) {
    int t = order[k];
    check_test_tx(w, next, (size_t)(3 + t), &id[t], 100 + (uint64_t)t, 400);
    next += (uint64_t)(3 + t);
  }
  TU_OK(w, walrus_close(w));
}

Test(tx_commit, larger_than_the_space_left_in_a_segment) {
  walrus_config_t c = cfg_default();
  c.segment_bytes = 4096;
  walrus_t *w = tu_open(tu_dir, &c);
  tu_append_n(w, 5, SEED, 300); /* the tail is partly filled */
  size_t segs_before = tu_segments(tu_dir, NULL);
  walrus_txid_t id;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  static unsigned char buf[200];
  for (uint64_t p = 0; p < 100; p++) {
    tu_payload(p, SEED ^ 0xB16, buf, sizeof buf);
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    e.term = 9;
    e.type = (uint16_t)p;
    e.data = buf;
    e.len = sizeof buf;
    TU_OK(w, walrus_tx_add(w, &id, &e));
  }
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(first, 6u);
  cr_assert_eq(count, 100u);
  cr_assert_gt(tu_segments(tu_dir, NULL), segs_before,
               "a 20 KB transaction in 4 KiB segments made no new segment");
  for (int pass = 0; pass < 2; pass++) {
    for (uint64_t p = 0; p < 100; p++) {
      walrus_entry_t e;
      memset(&e, 0, sizeof e);
      TU_OK(w, walrus_get(w, first + p, &e));
      cr_assert_str_eq(e.tx_id, id.s);
      cr_assert_eq(e.type, (uint16_t)p);
      tu_check_bytes(&e, p, SEED ^ 0xB16, sizeof buf);
      walrus_entry_free(&e);
    }
    tu_check_range(w, 1, 5, SEED, 300);
    /* After it, the log goes on. */
    if (pass == 0) {
      TU_OK(w, walrus_close(w));
      w = tu_open(tu_dir, &c);
      cr_assert_eq(walrus_last_index(w), 105u);
    }
  }
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  add_test_entry(w, &id, 77, 0, 100);
  TU_OK(w, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(first, 106u);
  TU_OK(w, walrus_close(w));
}

/*
 * A gate in the file system: a VFS over walrus_vfs_posix() whose sync,
 * once armed, stops until the test opens the gate.  It holds a commit in
 * the middle of its write so the test can look at the transaction then.
 */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int armed, inside, open;
  walrus_vfs_t vfs;
} g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
            {0}};

static int gate_sync(void *ctx, walrus_vfs_file_t *f) {
  pthread_mutex_lock(&g_gate.mu);
  if (g_gate.armed) {
    g_gate.inside = 1;
    pthread_cond_broadcast(&g_gate.cv);
    while (!g_gate.open) pthread_cond_wait(&g_gate.cv, &g_gate.mu);
    g_gate.armed = 0;
  }
  pthread_mutex_unlock(&g_gate.mu);
  return walrus_vfs_posix()->sync(ctx, f);
}

static const walrus_vfs_t *gate_vfs(void) {
  g_gate.vfs = *walrus_vfs_posix();
  g_gate.vfs.sync = gate_sync;
  return &g_gate.vfs;
}

typedef struct commit_arg_s {
  walrus_t *w;
  walrus_txid_t id;
  int rc;
  uint64_t first;
  size_t count;
} commit_arg_t;

static void *commit_main(void *p) {
  commit_arg_t *a = p;
  a->rc = walrus_tx_commit(a->w, &a->id, &a->first, &a->count);
  return NULL;
}

Test(tx_commit, while_being_committed_it_is_not_pending) {
  walrus_config_t c = cfg_default();
  c.vfs = gate_vfs();
  walrus_t *w = tu_open(tu_dir, &c);
  commit_arg_t a;
  memset(&a, 0, sizeof a);
  a.w = w;
  TU_OK(w, walrus_tx_begin(w, 100, &a.id)); /* expires while being written */
  for (uint64_t p = 0; p < 3; p++) add_test_entry(w, &a.id, 8, p, 300);
  pthread_mutex_lock(&g_gate.mu);
  g_gate.armed = 1;
  g_gate.inside = 0;
  g_gate.open = 0;
  pthread_mutex_unlock(&g_gate.mu);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, commit_main, &a), 0);
  /* Wait (at most 10 s) until the commit is inside its fdatasync. */
  uint64_t deadline = tu_now_ms() + 10000;
  pthread_mutex_lock(&g_gate.mu);
  while (!g_gate.inside && tu_now_ms() < deadline) {
    pthread_mutex_unlock(&g_gate.mu);
    tu_sleep_ms(1);
    pthread_mutex_lock(&g_gate.mu);
  }
  int inside = g_gate.inside;
  pthread_mutex_unlock(&g_gate.mu);

  int rc_add = 0, rc_commit = 0, rc_rollback = 0, cleaned = -1;
  if (inside) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    e.data = "x";
    e.len = 1;
    rc_add = walrus_tx_add(w, &a.id, &e);
    rc_commit = walrus_tx_commit(w, &a.id, NULL, NULL);
    rc_rollback = walrus_tx_rollback(w, &a.id);
    tu_sleep_ms(150); /* past its timeout, still being written */
    cleaned = walrus_tx_cleanup_expired(w);
  }
  /* Open the gate before asserting, so that nothing is left hanging. */
  pthread_mutex_lock(&g_gate.mu);
  g_gate.open = 1;
  pthread_cond_broadcast(&g_gate.cv);
  pthread_mutex_unlock(&g_gate.mu);
  pthread_join(th, NULL);

  cr_assert(inside, "the commit never reached its fdatasync");
  cr_assert_eq(rc_add, WALRUS_ETXNOTPENDING, "add during the commit: %s",
               walrus_errname(rc_add));
  cr_assert_eq(rc_commit, WALRUS_ETXNOTPENDING,
               "a second commit during the commit: %s",
               walrus_errname(rc_commit));
  cr_assert_eq(rc_rollback, WALRUS_ETXNOTPENDING,
               "rollback during the commit: %s", walrus_errname(rc_rollback));
  cr_assert_eq(cleaned, 0,
               "cleanup aborted %d transactions, one of them being written",
               cleaned);
  cr_assert_eq(a.rc, WALRUS_OK, "the commit: %s", walrus_errname(a.rc));
  cr_assert_eq(a.first, 1u);
  cr_assert_eq(a.count, 3u);
  cr_assert_eq(state_of(w, &a.id), WALRUS_TX_COMMITTED);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  check_test_tx(w, 1, 3, &a.id, 8, 300);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 3u);
  check_test_tx(w, 1, 3, &a.id, 8, 300);
  TU_OK(w, walrus_close(w));
}

/* ---- rollback ----------------------------------------------------------- */

Test(tx_rollback, writes_nothing_and_aborts) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 2, SEED, 50);
  walrus_txid_t id, keep;
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  TU_OK(w, walrus_tx_begin(w, 0, &keep));
  for (uint64_t p = 0; p < 30; p++) add_test_entry(w, &id, 5, p, 1000);
  cr_assert_eq(walrus_tx_active_count(w), 2);
  TU_OK(w, walrus_tx_rollback(w, &id));
  cr_assert_eq(walrus_tx_active_count(w), 1);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED);
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_rollback(w, &id));
  cr_assert_eq(state_of(w, &keep), WALRUS_TX_PENDING,
               "rolling back one transaction touched another");
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_rollback(NULL, &id));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_rollback(w, NULL));
  /* A later transaction gets the next index, as if the rolled-back one
   * had never been. */
  add_test_entry(w, &keep, 6, 0, 100);
  uint64_t first = 0;
  TU_OK(w, walrus_tx_commit(w, &keep, &first, NULL));
  cr_assert_eq(first, 3u);
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 3u);
  expect_absent(w, &id);
  TU_OK(w, walrus_close(w));
}

/* ---- state -------------------------------------------------------------- */

Test(tx_state, pending_committed_aborted) {
  walrus_t *w = tu_open_default();
  walrus_txid_t a, b, c;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  TU_OK(w, walrus_tx_begin(w, 0, &c));
  cr_assert_eq(state_of(w, &a), WALRUS_TX_PENDING);
  add_test_entry(w, &a, 1, 0, 10);
  cr_assert_eq(state_of(w, &a), WALRUS_TX_PENDING);
  TU_OK(w, walrus_tx_commit(w, &a, NULL, NULL));
  TU_OK(w, walrus_tx_rollback(w, &b));
  cr_assert_eq(state_of(w, &a), WALRUS_TX_COMMITTED);
  cr_assert_eq(state_of(w, &b), WALRUS_TX_ABORTED);
  cr_assert_eq(state_of(w, &c), WALRUS_TX_PENDING);
  walrus_tx_state_t s;
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_state(NULL, &a, &s));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_state(w, NULL, &s));
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_state(w, &a, NULL));
  walrus_txid_t unknown = a;
  unknown.s[3] = unknown.s[3] == 'f' ? 'e' : 'f';
  TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_state(w, &unknown, &s));
  TU_OK(w, walrus_close(w));
}

Test(tx_state, remembers_the_last_4096_endings) {
  walrus_t *w = tu_open_default();
  walrus_txid_t first, id, last;
  TU_OK(w, walrus_tx_begin(w, 0, &first));
  TU_OK(w, walrus_tx_commit(w, &first, NULL, NULL));
  /* 4095 more endings: first is still among the last 4096. */
  for (int i = 0; i < 4095; i++) {
    TU_OK(w, walrus_tx_begin(w, 0, &id));
    TU_OK(w, walrus_tx_rollback(w, &id));
  }
  cr_assert_eq(state_of(w, &first), WALRUS_TX_COMMITTED,
               "forgotten after only 4096 endings");
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_rollback(w, &first));
  /* Two more (rollback and an empty commit): it is forgotten now. */
  TU_OK(w, walrus_tx_begin(w, 0, &id));
  TU_OK(w, walrus_tx_rollback(w, &id));
  TU_OK(w, walrus_tx_begin(w, 0, &last));
  TU_OK(w, walrus_tx_commit(w, &last, NULL, NULL));
  walrus_tx_state_t s;
  TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_state(w, &first, &s));
  TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_rollback(w, &first));
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED);
  cr_assert_eq(state_of(w, &last), WALRUS_TX_COMMITTED);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
}

/* ---- expiry ------------------------------------------------------------- */

/* A timeout that a busy machine (sanitizers, 2 cores) cannot outrun
 * between two calls, and a sleep that surely passes it. */
#define SHORT_MS 100
#define PAST_SHORT_MS 250

/* Begin a transaction of timeout_ms with one entry. */
static void begin_one(walrus_t *w, uint32_t timeout_ms, walrus_txid_t *id,
                      uint64_t tag) {
  TU_OK(w, walrus_tx_begin(w, timeout_ms, id));
  add_test_entry(w, id, tag, 0, 100);
}

Test(tx_expiry, add_after_timeout) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 1);
  tu_sleep_ms(PAST_SHORT_MS);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_add(w, &id, &e));
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_add(w, &id, &e));
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &id, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), 0u);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, commit_after_timeout) {
  walrus_t *w = tu_open_default();
  tu_append_n(w, 1, SEED, 10);
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 2);
  add_test_entry(w, &id, 2, 1, 100);
  tu_sleep_ms(PAST_SHORT_MS);
  uint64_t first = 5;
  size_t count = 5;
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_commit(w, &id, &first, &count));
  cr_assert_eq(walrus_last_index(w), 1u, "an expired commit wrote entries");
  cr_assert_eq(first, 5u);
  cr_assert_eq(count, 5u);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &id, NULL, NULL));
  TU_OK(w, walrus_close(w));
  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 1u);
  expect_absent(w, &id);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, rollback_after_timeout) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 3);
  tu_sleep_ms(PAST_SHORT_MS);
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_rollback(w, &id));
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_rollback(w, &id));
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, state_after_timeout_is_aborted) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 4);
  tu_sleep_ms(PAST_SHORT_MS);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_ABORTED,
               "an expired transaction must not report PENDING");
  cr_assert_eq(walrus_tx_active_count(w), 0);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_add(w, &id, &e));
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, long_timeout_does_not_expire) {
  walrus_t *w = tu_open_default();
  walrus_txid_t id;
  begin_one(w, 60000, &id, 5);
  tu_sleep_ms(PAST_SHORT_MS);
  add_test_entry(w, &id, 5, 1, 100);
  cr_assert_eq(walrus_tx_cleanup_expired(w), 0);
  cr_assert_eq(state_of(w, &id), WALRUS_TX_PENDING);
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &id, NULL, &count));
  cr_assert_eq(count, 2u);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, timeout_zero_uses_the_config) {
  /* Config timeout 1 ms: begin(0) expires. */
  walrus_config_t c = cfg_default();
  c.tx_timeout_ms = SHORT_MS;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t a, b;
  begin_one(w, 0, &a, 6);
  begin_one(w, 60000, &b, 7); /* an explicit timeout overrides it */
  tu_sleep_ms(PAST_SHORT_MS);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_add(w, &a, &e));
  TU_OK(w, walrus_tx_add(w, &b, &e));
  TU_OK(w, walrus_tx_commit(w, &b, NULL, NULL));
  TU_OK(w, walrus_close(w));

  /* The default config timeout (30 s): begin(0) does not expire in 20 ms. */
  w = tu_open_default();
  begin_one(w, 0, &a, 8);
  tu_sleep_ms(PAST_SHORT_MS);
  cr_assert_eq(walrus_tx_cleanup_expired(w), 0);
  TU_OK(w, walrus_tx_add(w, &a, &e));
  TU_OK(w, walrus_tx_commit(w, &a, NULL, NULL));
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, config_zero_means_never) {
  walrus_config_t c = cfg_default();
  c.tx_timeout_ms = 0;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t a, b;
  begin_one(w, 0, &a, 9);
  begin_one(w, SHORT_MS, &b, 10); /* an explicit timeout still expires */
  tu_sleep_ms(PAST_SHORT_MS);
  cr_assert_eq(walrus_tx_cleanup_expired(w), 1);
  cr_assert_eq(state_of(w, &a), WALRUS_TX_PENDING);
  cr_assert_eq(state_of(w, &b), WALRUS_TX_ABORTED);
  add_test_entry(w, &a, 9, 1, 100);
  uint64_t first = 0;
  size_t count = 0;
  TU_OK(w, walrus_tx_commit(w, &a, &first, &count));
  cr_assert_eq(count, 2u);
  check_test_tx(w, first, 2, &a, 9, 100);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, cleanup_expired_returns_how_many) {
  walrus_t *w = tu_open_default();
  walrus_txid_t s[3], l;
  for (int i = 0; i < 3; i++) begin_one(w, SHORT_MS, &s[i], 20 + (uint64_t)i);
  begin_one(w, 60000, &l, 30);
  walrus_txid_t done;
  TU_OK(w, walrus_tx_begin(w, SHORT_MS, &done));
  TU_OK(w, walrus_tx_commit(w, &done, NULL, NULL)); /* finished: not counted */
  cr_assert_eq(walrus_tx_active_count(w), 4);
  tu_sleep_ms(PAST_SHORT_MS);
  cr_assert_eq(walrus_tx_cleanup_expired(w), 3);
  cr_assert_eq(walrus_tx_active_count(w), 1);
  cr_assert_eq(walrus_tx_cleanup_expired(w), 0, "a second cleanup found more");
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(state_of(w, &s[i]), WALRUS_TX_ABORTED);
    TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &s[i], NULL, NULL));
  }
  cr_assert_eq(state_of(w, &l), WALRUS_TX_PENDING);
  cr_assert_eq(state_of(w, &done), WALRUS_TX_COMMITTED);
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_cleanup_expired(NULL));
  cr_assert_eq(walrus_last_index(w), 0u);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, no_cleaner_without_the_option) {
  walrus_t *w = tu_open_default(); /* tx_cleanup_interval_ms = 0 */
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 40);
  tu_sleep_ms(PAST_SHORT_MS);
  cr_assert_eq(walrus_tx_active_count(w), 1,
               "something aborted an untouched transaction without a "
               "cleaner");
  cr_assert_eq(walrus_tx_cleanup_expired(w), 1);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_OK(w, walrus_close(w));
}

Test(tx_expiry, background_cleaner) {
  walrus_config_t c = cfg_default();
  c.tx_cleanup_interval_ms = 5;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t s[5], l;
  for (int i = 0; i < 5; i++) begin_one(w, SHORT_MS, &s[i], 50 + (uint64_t)i);
  begin_one(w, 60000, &l, 60);
  uint64_t deadline = tu_now_ms() + 5000;
  int n;
  while ((n = walrus_tx_active_count(w)) > 1 && tu_now_ms() < deadline)
    tu_sleep_ms(2);
  cr_assert_eq(n, 1, "the cleaner left %d transactions after 5 s", n);
  /* Nobody touched them: the cleaner aborted them, so cleanup finds
   * nothing and their state is ABORTED. */
  cr_assert_eq(walrus_tx_cleanup_expired(w), 0);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(state_of(w, &s[i]), WALRUS_TX_ABORTED);
    TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &s[i], NULL, NULL));
  }
  cr_assert_eq(state_of(w, &l), WALRUS_TX_PENDING);
  /* Transactions begun later are cleaned too. */
  walrus_txid_t late;
  begin_one(w, SHORT_MS, &late, 61);
  deadline = tu_now_ms() + 5000;
  while ((n = walrus_tx_active_count(w)) > 1 && tu_now_ms() < deadline)
    tu_sleep_ms(2);
  cr_assert_eq(n, 1);
  TU_OK(w, walrus_tx_commit(w, &l, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), 1u);
  uint64_t t0 = tu_now_ms();
  TU_OK(w, walrus_close(w));
  cr_assert_lt(tu_now_ms() - t0, 2000u, "close took too long with a cleaner");
}

Test(tx_expiry, close_stops_the_cleaner_promptly) {
  /* A cleaner that would sleep an hour must not hold close up. */
  walrus_config_t c = cfg_default();
  c.tx_cleanup_interval_ms = 3600000;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t id;
  begin_one(w, SHORT_MS, &id, 70);
  uint64_t t0 = tu_now_ms();
  TU_OK(w, walrus_close(w));
  cr_assert_lt(tu_now_ms() - t0, 2000u,
               "close waited %" PRIu64 " ms for the cleaner", tu_now_ms() - t0);
  /* Many quick open/close cycles with a busy cleaner. */
  c.tx_cleanup_interval_ms = 1;
  for (int i = 0; i < 30; i++) {
    w = tu_open(tu_dir, &c);
    begin_one(w, SHORT_MS, &id, 71);
    if (i % 3 == 0) tu_sleep_ms(3);
    TU_OK(w, walrus_close(w));
  }
  /* A read-only handle starts no cleaner but opens and closes fine. */
  c.read_only = 1;
  w = tu_open(tu_dir, &c);
  TU_OK(w, walrus_close(w));
}

/* ---- active count ------------------------------------------------------- */

Test(tx_active, counts_pending_transactions) {
  walrus_t *w = tu_open_default();
  cr_assert_eq(walrus_tx_active_count(w), 0);
  walrus_txid_t a, b, c, d;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  TU_OK(w, walrus_tx_begin(w, 0, &c));
  TU_OK(w, walrus_tx_begin(w, SHORT_MS, &d));
  cr_assert_eq(walrus_tx_active_count(w), 4);
  add_test_entry(w, &a, 1, 0, 10);
  TU_OK(w, walrus_tx_commit(w, &a, NULL, NULL));
  cr_assert_eq(walrus_tx_active_count(w), 3);
  TU_OK(w, walrus_tx_rollback(w, &b));
  cr_assert_eq(walrus_tx_active_count(w), 2);
  tu_sleep_ms(PAST_SHORT_MS);
  TU_EXPECT(WALRUS_ETXEXPIRED, walrus_tx_rollback(w, &d));
  cr_assert_eq(walrus_tx_active_count(w), 1);
  /* Failed calls change nothing. */
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &a, NULL, NULL));
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_rollback(w, &b));
  cr_assert_eq(walrus_tx_active_count(w), 1);
  TU_OK(w, walrus_tx_commit(w, &c, NULL, NULL));
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_EXPECT(WALRUS_EINVAL, walrus_tx_active_count(NULL));
  TU_OK(w, walrus_close(w));
}

/* ---- close -------------------------------------------------------------- */

Test(tx_close, aborts_pending_transactions) {
  walrus_t *w = tu_open_default();
  walrus_txid_t a, b, c;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  for (uint64_t p = 0; p < 3; p++) add_test_entry(w, &a, 1, p, 200);
  TU_OK(w, walrus_tx_commit(w, &a, NULL, NULL));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  for (uint64_t p = 0; p < 50; p++) add_test_entry(w, &b, 2, p, 2000);
  TU_OK(w, walrus_tx_begin(w, 0, &c)); /* pending with no entries */
  cr_assert_eq(walrus_tx_active_count(w), 2);
  TU_OK(w, walrus_close(w)); /* frees b and c: LeakSanitizer would tell */

  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), 3u,
               "a transaction pending at close reached the log");
  check_test_tx(w, 1, 3, &a, 1, 200);
  expect_absent(w, &b);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  walrus_entry_t e;
  memset(&e, 0, sizeof e);
  walrus_tx_state_t s;
  /* The old handle's pending transactions do not exist in this one. */
  TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_add(w, &b, &e));
  TU_EXPECT(WALRUS_ETXNOTFOUND, walrus_tx_state(w, &b, &s));
  TU_OK(w, walrus_close(w));
}

/* ---- I/O failure during a commit ---------------------------------------- */

/* Commit two transactions, then fail call nth of method m with err during
 * the third's commit: the commit returns want, the transaction is ABORTED,
 * and after reopening none of it is there while the first two are. */
static void fail_commit(vf_method_t m, int err, int want) {
  vf_t *vf = vf_new();
  cr_assert_not_null(vf);
  walrus_config_t c = cfg_default();
  c.vfs = vf_vfs(vf);
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t a, b, x;
  uint64_t fa = 0, fb = 0;
  size_t na = 0, nb = 0;
  TU_OK(w, walrus_tx_begin(w, 0, &a));
  for (uint64_t p = 0; p < 4; p++) add_test_entry(w, &a, 1, p, 500);
  TU_OK(w, walrus_tx_commit(w, &a, &fa, &na));
  TU_OK(w, walrus_tx_begin(w, 0, &b));
  for (uint64_t p = 0; p < 6; p++) add_test_entry(w, &b, 2, p, 500);
  TU_OK(w, walrus_tx_commit(w, &b, &fb, &nb));
  TU_OK(w, walrus_tx_begin(w, 0, &x));
  for (uint64_t p = 0; p < 8; p++) add_test_entry(w, &x, 3, p, 500);
  vf_arm_fail(vf, m, 1, err, 0);
  uint64_t first = 1234;
  size_t count = 1234;
  int rc = walrus_tx_commit(w, &x, &first, &count);
  cr_assert_eq(rc, want, "commit with a failing %s: got %s, want %s",
               vf_method_name(m), walrus_errname(rc), walrus_errname(want));
  cr_assert_eq(vf_fired(vf), 1u);
  vf_disarm(vf);
  cr_assert_eq(first, 1234u, "a failed commit wrote first_index");
  cr_assert_eq(count, 1234u, "a failed commit wrote count");
  cr_assert_eq(state_of(w, &x), WALRUS_TX_ABORTED);
  cr_assert_eq(walrus_tx_active_count(w), 0);
  TU_EXPECT(WALRUS_ETXNOTPENDING, walrus_tx_commit(w, &x, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), fb + nb - 1,
               "the failed commit is visible on the handle");
  /* The handle is poisoned: a later commit fails and aborts too. */
  walrus_txid_t y;
  TU_OK(w, walrus_tx_begin(w, 0, &y));
  add_test_entry(w, &y, 4, 0, 500);
  TU_EXPECT(WALRUS_EPOISONED, walrus_tx_commit(w, &y, NULL, NULL));
  cr_assert_eq(state_of(w, &y), WALRUS_TX_ABORTED);
  /* Reads still work. */
  check_test_tx(w, fa, na, &a, 1, 500);
  walrus_close(w);
  vf_free(vf);

  w = tu_open_default();
  cr_assert_eq(walrus_last_index(w), fb + nb - 1,
               "after reopen the log ends at %" PRIu64 ", want %" PRIu64,
               walrus_last_index(w), fb + nb - 1);
  check_test_tx(w, fa, na, &a, 1, 500);
  check_test_tx(w, fb, nb, &b, 2, 500);
  expect_absent(w, &x);
  expect_absent(w, &y);
  /* The log is writable again. */
  TU_OK(w, walrus_tx_begin(w, 0, &y));
  add_test_entry(w, &y, 5, 0, 500);
  TU_OK(w, walrus_tx_commit(w, &y, &first, NULL));
  cr_assert_eq(first, fb + nb);
  TU_OK(w, walrus_close(w));
}

Test(tx_io, commit_write_fails) {
  fail_commit(VF_PWRITE, -EIO, WALRUS_EIO_WRITE);
}
Test(tx_io, commit_write_no_space) {
  fail_commit(VF_PWRITE, -ENOSPC, WALRUS_ENOSPC);
}
Test(tx_io, commit_fsync_fails) { fail_commit(VF_SYNC, -EIO, WALRUS_EIO_FSYNC); }

/*
 * Fault sweep: a transaction of 100 entries of 200 bytes in 4 KiB segments
 * (so its commit seals the tail and starts a segment of its own) with the
 * Nth file-system call of its commit failing, for N = 1, 2, ... until the
 * commit makes fewer than N calls.  Either the commit succeeds and the
 * whole transaction is there after reopening, or it fails with an I/O code,
 * is ABORTED, and none of it is there; the earlier transaction always is.
 * Once with a transient fault (only that call fails), once with a
 * persistent one (every later call of any kind fails too, close included).
 *
 * One outcome is indeterminate and allowed only with a persistent fault:
 * when the commit's final fdatasync fails, its records have reached the
 * kernel, and the undo (truncating them away) fails as well, nothing can
 * remove them, so the reopened log may hold the whole transaction.  The
 * commit must still have failed with WALRUS_EIO_FSYNC, and the log must hold
 * all of the transaction or none of it.
 */
static void sweep_large_commit(int persistent) {
  static unsigned char buf[200];
  unsigned failed = 0, succeeded = 0, kept = 0;
  for (uint64_t nth = 1; nth < 500; nth++) {
    char *root = tu_tmpdir();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/log", root);
    vf_t *vf = vf_new();
    cr_assert_not_null(vf);
    walrus_config_t c = cfg_default();
    c.vfs = vf_vfs(vf);
    c.segment_bytes = 4096;
    walrus_t *w = tu_open(dir, &c);
    walrus_txid_t a, x;
    TU_OK(w, walrus_tx_begin(w, 0, &a));
    for (uint64_t p = 0; p < 10; p++) add_test_entry(w, &a, 1, p, 150);
    TU_OK(w, walrus_tx_commit(w, &a, NULL, NULL));
    TU_OK(w, walrus_tx_begin(w, 0, &x));
    for (uint64_t p = 0; p < 100; p++) {
      tu_payload(p, SEED ^ 0xF00, buf, sizeof buf);
      walrus_entry_t e;
      memset(&e, 0, sizeof e);
      e.type = (uint16_t)p;
      e.data = buf;
      e.len = sizeof buf;
      TU_OK(w, walrus_tx_add(w, &x, &e));
    }
    vf_arm_fail(vf, VF_ANY, nth, -EIO, persistent);
    uint64_t first = 0;
    int rc = walrus_tx_commit(w, &x, &first, NULL);
    int fired = vf_fired(vf) > 0;
    char hist[1024];
    vf_history(vf, hist, sizeof hist);
    vf_disarm(vf);
    if (rc == WALRUS_OK) {
      cr_assert_eq(first, 11u);
      cr_assert_eq(state_of(w, &x), WALRUS_TX_COMMITTED);
    } else {
      cr_assert(fired, "commit failed (%s) with no fault", walrus_errname(rc));
      cr_assert(rc == WALRUS_EIO_WRITE || rc == WALRUS_EIO_FSYNC ||
                    rc == WALRUS_EIO || rc == WALRUS_EIO_READ,
                "failure at call %" PRIu64 " (%s): commit returned %s", nth,
                hist, walrus_errname(rc));
      cr_assert_eq(state_of(w, &x), WALRUS_TX_ABORTED);
      cr_assert_eq(walrus_last_index(w), 10u);
    }
    walrus_close(w);
    vf_free(vf);

    char err[512] = "";
    w = NULL;
    int orc = walrus_open_ex(dir, NULL, &w, err, sizeof err);
    cr_assert_eq(orc, WALRUS_OK,
                 "failure at call %" PRIu64 " (%s): reopen: %s: %s", nth,
                 hist, walrus_errname(orc), err);
    uint64_t last = walrus_last_index(w);
    check_test_tx(w, 1, 10, &a, 1, 150);
    if (rc == WALRUS_OK) {
      cr_assert_eq(last, 110u, "failure at call %" PRIu64 ": committed, "
                   "but the log ends at %" PRIu64, nth, last);
      for (uint64_t p = 0; p < 100; p++) {
        walrus_entry_t e;
        memset(&e, 0, sizeof e);
        TU_OK(w, walrus_get(w, 11 + p, &e));
        cr_assert_str_eq(e.tx_id, x.s);
        tu_check_bytes(&e, p, SEED ^ 0xF00, sizeof buf);
        walrus_entry_free(&e);
      }
    } else if (persistent && rc == WALRUS_EIO_FSYNC && last == 110u) {
      /* The indeterminate case (see above): all of it, then. */
      kept++;
      for (uint64_t p = 0; p < 100; p++) {
        walrus_entry_t e;
        memset(&e, 0, sizeof e);
        TU_OK(w, walrus_get(w, 11 + p, &e));
        cr_assert_str_eq(e.tx_id, x.s);
        tu_check_bytes(&e, p, SEED ^ 0xF00, sizeof buf);
        walrus_entry_free(&e);
      }
    } else {
      cr_assert_eq(last, 10u,
                   "failure at call %" PRIu64 " (%s): the failed commit "
                   "left the log ending at %" PRIu64, nth, hist, last);
      expect_absent(w, &x);
    }
    TU_OK(w, walrus_close(w));
    tu_tmpdir_remove(root);
    if (rc == WALRUS_OK) succeeded++;
    else failed++;
    if (!fired) break;
  }
  cr_assert_gt(failed, 0u, "no failure point made the commit fail");
  cr_assert_gt(succeeded, 0u, "the commit never succeeded");
  cr_log_info("large commit (%s faults): %u failure points failed it (%u "
              "of them left it whole after an fsync failure whose undo "
              "failed too), %u did not",
              persistent ? "persistent" : "transient", failed, kept,
              succeeded);
}

Test(tx_io, large_commit_every_failure_point) { sweep_large_commit(0); }
Test(tx_io, large_commit_every_persistent_failure_point) {
  sweep_large_commit(1);
}

/* ---- threads ------------------------------------------------------------ */

#define TH_THREADS 4
#define TH_TXS 40
#define TH_MAXN 8
#define TH_MAXLEN 600

typedef struct th_rec_s {
  walrus_txid_t id;
  uint64_t tag;   /* thread * 1000 + sequence */
  uint64_t first; /* from commit */
  size_t n;       /* entries added */
  int committed;  /* 1 committed, 0 rolled back */
} th_rec_t;

typedef struct th_arg_s {
  walrus_t *w;
  int t;
  th_rec_t recs[TH_TXS];
  char err[256]; /* first failure, "" if none */
} th_arg_t;

static void *th_main(void *p) {
  th_arg_t *a = p;
  unsigned char buf[TH_MAXLEN];
  uint64_t rng = 0x1234567u * (uint64_t)(a->t + 1);
  for (int k = 0; k < TH_TXS; k++) {
    th_rec_t *r = &a->recs[k];
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    r->tag = (uint64_t)a->t * 1000 + (uint64_t)k;
    r->n = 1 + (size_t)((rng >> 33) % TH_MAXN);
    int rc = walrus_tx_begin(a->w, 0, &r->id);
    if (rc != WALRUS_OK) {
      snprintf(a->err, sizeof a->err, "begin: %s", walrus_errname(rc));
      return NULL;
    }
    for (size_t q = 0; q < r->n; q++) {
      size_t len = tu_len(q, pseed_of(r->tag), TH_MAXLEN);
      tu_payload(q, pseed_of(r->tag), buf, len);
      walrus_entry_t e;
      memset(&e, 0, sizeof e);
      e.term = r->tag;
      e.type = (uint16_t)q;
      e.timestamp_ns = (int64_t)(5000 + q);
      e.data = buf;
      e.len = len;
      rc = walrus_tx_add(a->w, &r->id, &e);
      if (rc != WALRUS_OK) {
        snprintf(a->err, sizeof a->err, "add: %s", walrus_errname(rc));
        return NULL;
      }
      if (k % 5 == 1) sched_yield();
    }
    if ((rng >> 20) % 6 == 0) {
      rc = walrus_tx_rollback(a->w, &r->id);
      r->committed = 0;
    } else {
      size_t count = 0;
      rc = walrus_tx_commit(a->w, &r->id, &r->first, &count);
      r->committed = 1;
      if (rc == WALRUS_OK && count != r->n) {
        snprintf(a->err, sizeof a->err, "commit: count %zu, want %zu", count,
                 r->n);
        return NULL;
      }
    }
    if (rc != WALRUS_OK) {
      snprintf(a->err, sizeof a->err, "commit/rollback: %s",
               walrus_errname(rc));
      return NULL;
    }
  }
  return NULL;
}

static int cmp_first(const void *x, const void *y) {
  const th_rec_t *a = *(th_rec_t *const *)x, *b = *(th_rec_t *const *)y;
  return a->first < b->first ? -1 : a->first > b->first;
}

Test(tx_threads, concurrent_transactions_are_contiguous_and_complete) {
  walrus_t *w = tu_open_default();
  static th_arg_t args[TH_THREADS];
  pthread_t th[TH_THREADS];
  memset(args, 0, sizeof args);
  for (int t = 0; t < TH_THREADS; t++) {
    args[t].w = w;
    args[t].t = t;
    cr_assert_eq(pthread_create(&th[t], NULL, th_main, &args[t]), 0);
  }
  for (int t = 0; t < TH_THREADS; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < TH_THREADS; t++)
    cr_assert_str_empty(args[t].err, "thread %d: %s", t, args[t].err);
  cr_assert_eq(walrus_tx_active_count(w), 0);

  /* The committed transactions tile the log exactly, in some order. */
  th_rec_t *byfirst[TH_THREADS * TH_TXS];
  size_t nc = 0;
  uint64_t total = 0;
  for (int t = 0; t < TH_THREADS; t++)
    for (int k = 0; k < TH_TXS; k++)
      if (args[t].recs[k].committed) {
        byfirst[nc++] = &args[t].recs[k];
        total += args[t].recs[k].n;
      }
  cr_assert_gt(nc, 0u);
  qsort(byfirst, nc, sizeof *byfirst, cmp_first);
  cr_assert_eq(walrus_last_index(w), total,
               "the log holds %" PRIu64 " entries, the commits %" PRIu64,
               walrus_last_index(w), total);
  uint64_t next = 1;
  for (size_t i = 0; i < nc; i++) {
    cr_assert_eq(byfirst[i]->first, next,
                 "a transaction starts at %" PRIu64 ", want %" PRIu64
                 " (overlap or gap)",
                 byfirst[i]->first, next);
    next += byfirst[i]->n;
  }

  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < nc; i++)
      check_test_tx(w, byfirst[i]->first, byfirst[i]->n, &byfirst[i]->id,
                    byfirst[i]->tag, TH_MAXLEN);
    /* No rolled-back transaction is in the log. */
    for (int t = 0; t < TH_THREADS; t++)
      for (int k = 0; k < TH_TXS; k++)
        if (!args[t].recs[k].committed) {
          if (pass == 0)
            cr_assert_eq(state_of(w, &args[t].recs[k].id), WALRUS_TX_ABORTED);
          expect_absent(w, &args[t].recs[k].id);
        }
    if (pass == 0) {
      TU_OK(w, walrus_close(w));
      w = tu_open_default();
    }
  }
  TU_OK(w, walrus_close(w));
}

/* ---- walrus_tx_commit_many ------------------------------------------------
 */

TestSuite(tx_many, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

/* Four transactions (one empty) commit with one fdatasync, each at
 * contiguous indexes in the order given, and read back whole after a
 * reopen. */
Test(tx_many, commits_several_with_one_fsync) {
  walrus_config_t c = cfg_default();
  walrus_t *w = tu_open(tu_dir, &c);
  tu_append_n(w, 3, SEED, 100);
  walrus_txid_t ids[4];
  size_t sizes[4] = {5, 0, 1, 40};
  for (int i = 0; i < 4; i++) {
    TU_OK(w, walrus_tx_begin(w, 0, &ids[i]));
    for (size_t p = 0; p < sizes[i]; p++)
      add_test_entry(w, &ids[i], 10 + (uint64_t)i, p, 300);
  }
  walrus_stats_t before, after;
  TU_OK(w, walrus_stats(w, &before));
  uint64_t firsts[4];
  size_t counts[4];
  TU_OK(w, walrus_tx_commit_many(w, ids, 4, firsts, counts));
  TU_OK(w, walrus_stats(w, &after));
  cr_assert_eq(after.fsyncs - before.fsyncs, 1u, "%llu fsyncs",
               (unsigned long long)(after.fsyncs - before.fsyncs));
  uint64_t at = 4;
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(counts[i], sizes[i], "tx %d count", i);
    if (sizes[i] > 0) cr_assert_eq(firsts[i], at, "tx %d first", i);
    at += sizes[i];
    cr_assert_eq(state_of(w, &ids[i]), WALRUS_TX_COMMITTED);
  }
  cr_assert_eq(walrus_durable_index(w), at - 1);
  TU_OK(w, walrus_close(w));
  w = tu_open(tu_dir, &c);
  cr_assert_eq(walrus_last_index(w), at - 1);
  for (int i = 0; i < 4; i++)
    check_test_tx(w, firsts[i], sizes[i], &ids[i], 10 + (uint64_t)i, 300);
  TU_OK(w, walrus_close(w));
}

/* An id that is not pending, or one given twice, commits nothing: every
 * transaction stays pending and the log is unchanged. */
Test(tx_many, a_bad_id_commits_none) {
  walrus_config_t c = cfg_default();
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t ids[3];
  for (int i = 0; i < 2; i++) {
    TU_OK(w, walrus_tx_begin(w, 0, &ids[i]));
    add_test_entry(w, &ids[i], 1, 0, 50);
  }
  TU_OK(w, walrus_tx_begin(w, 0, &ids[2]));
  TU_OK(w, walrus_tx_rollback(w, &ids[2]));
  cr_assert_eq(walrus_tx_commit_many(w, ids, 3, NULL, NULL),
               WALRUS_ETXNOTPENDING);
  walrus_txid_t twice[2] = {ids[0], ids[0]};
  cr_assert_eq(walrus_tx_commit_many(w, twice, 2, NULL, NULL),
               WALRUS_ETXNOTPENDING);
  walrus_txid_t unknown = ids[1];
  unknown.s[10] = unknown.s[10] == 'a' ? 'b' : 'a';
  walrus_txid_t with_unknown[2] = {ids[0], unknown};
  cr_assert_eq(walrus_tx_commit_many(w, with_unknown, 2, NULL, NULL),
               WALRUS_ETXNOTFOUND);
  cr_assert_eq(walrus_tx_commit_many(w, ids, 0, NULL, NULL), WALRUS_EINVAL);
  cr_assert_eq(walrus_tx_commit_many(w, NULL, 1, NULL, NULL), WALRUS_EINVAL);
  cr_assert_eq(walrus_last_index(w), 0u);
  cr_assert_eq(state_of(w, &ids[0]), WALRUS_TX_PENDING);
  cr_assert_eq(state_of(w, &ids[1]), WALRUS_TX_PENDING);
  TU_OK(w, walrus_tx_commit_many(w, ids, 2, NULL, NULL));
  cr_assert_eq(walrus_last_index(w), 2u);
  TU_OK(w, walrus_close(w));
}

/* A failed fdatasync aborts them all, and none is in the reopened log. */
Test(tx_many, a_failed_fsync_aborts_all) {
  vf_t *vf = vf_new();
  walrus_config_t c = cfg_default();
  c.vfs = vf_vfs(vf);
  walrus_t *w = tu_open(tu_dir, &c);
  tu_append_n(w, 2, SEED, 100);
  walrus_txid_t ids[3];
  for (int i = 0; i < 3; i++) {
    TU_OK(w, walrus_tx_begin(w, 0, &ids[i]));
    for (uint64_t p = 0; p < 4; p++) add_test_entry(w, &ids[i], 7, p, 200);
  }
  vf_arm_fail(vf, VF_SYNC, 1, -EIO, 0);
  uint64_t firsts[3] = {9, 9, 9};
  cr_assert_eq(walrus_tx_commit_many(w, ids, 3, firsts, NULL),
               WALRUS_EIO_FSYNC);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(state_of(w, &ids[i]), WALRUS_TX_ABORTED);
    cr_assert_eq(firsts[i], 0u);
  }
  walrus_close(w);
  vf_free(vf);
  c.vfs = NULL;
  w = tu_open(tu_dir, &c);
  cr_assert_eq(walrus_last_index(w), 2u);
  for (int i = 0; i < 3; i++) expect_absent(w, &ids[i]);
  TU_OK(w, walrus_close(w));
}

/* Transactions that fill several segments: a rotation inside the call
 * seals what came before; all commit, and all read back. */
Test(tx_many, across_rotations) {
  walrus_config_t c = cfg_default();
  c.segment_bytes = 4096;
  walrus_t *w = tu_open(tu_dir, &c);
  walrus_txid_t ids[6];
  for (int i = 0; i < 6; i++) {
    TU_OK(w, walrus_tx_begin(w, 0, &ids[i]));
    for (uint64_t p = 0; p < 8; p++)
      add_test_entry(w, &ids[i], 20 + (uint64_t)i, p, 300);
  }
  uint64_t firsts[6];
  TU_OK(w, walrus_tx_commit_many(w, ids, 6, firsts, NULL));
  TU_OK(w, walrus_close(w));
  char **segs = NULL;
  cr_assert_geq(tu_segments(tu_dir, &segs), 3u);
  tu_strv_free(segs);
  w = tu_open(tu_dir, &c);
  for (int i = 0; i < 6; i++)
    check_test_tx(w, firsts[i], 8, &ids[i], 20 + (uint64_t)i, 300);
  TU_OK(w, walrus_close(w));
}
