/*
 * bank_transfer.c: the TransferMoney example written for the Go library
 * walrus (github l00pss/walrus), on walrus transactions.
 *
 * Three accounts are opened with one atomic batch.  A transfer is a
 * transaction of two entries, "DEBIT:<from>:<amount>" and
 * "CREDIT:<to>:<amount>", committed atomically: after any crash the log
 * holds both or neither.  One transfer is rolled back on purpose
 * (insufficient funds) and one is left to expire (50 ms timeout, then
 * walrus_tx_cleanup_expired).  The log is then reopened and replayed: the
 * total is unchanged and neither the rolled-back nor the expired transfer
 * left an entry.
 *
 *   bank_transfer [DIR]   DIR must hold no log yet; default: a fresh
 *                         /tmp/walrus-bank-XXXXXX, removed at the end.
 *
 * Exits 0 when every check holds, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walrus.h"

enum { T_OPEN = 1, T_DEBIT = 2, T_CREDIT = 3 }; /* walrus_entry_t.type */
enum { NACC = 3 };
static const char *const names[NACC] = {"alice", "bob", "carol"};

static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "bank_transfer: %s: %s (%s)\n", what, walrus_strerror(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "bank_transfer: FAILED: %s\n", what);
  exit(1);
}

static walrus_t *open_log(const char *dir) {
  char msg[256] = "";
  walrus_t *w = NULL;
  int rc = walrus_open_ex(dir, NULL, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    fprintf(stderr, "bank_transfer: open %s: %s (%s)\n", dir,
            walrus_strerror(rc), msg);
    exit(1);
  }
  return w;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

/* Amounts are integer cents, printed as "123.45". */
static const char *money(int64_t cents, char buf[32]) {
  snprintf(buf, 32, "%s%lld.%02lld", cents < 0 ? "-" : "",
           (long long)llabs(cents) / 100, (long long)llabs(cents) % 100);
  return buf;
}

static int account(const char *name) {
  for (int i = 0; i < NACC; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

/* Begin a transfer: a transaction holding its DEBIT and CREDIT entries. */
static void begin_transfer(walrus_t *w, int from, int to, int64_t cents,
                           uint32_t timeout_ms, walrus_txid_t *id) {
  char debit[64], credit[64], m[32];
  check(w, walrus_tx_begin(w, timeout_ms, id), "tx_begin");
  snprintf(debit, sizeof debit, "DEBIT:%s:%s", names[from], money(cents, m));
  snprintf(credit, sizeof credit, "CREDIT:%s:%s", names[to], money(cents, m));
  walrus_entry_t d = {.term = 1, .type = T_DEBIT, .data = debit,
                      .len = strlen(debit)};
  walrus_entry_t c = {.term = 1, .type = T_CREDIT, .data = credit,
                      .len = strlen(credit)};
  check(w, walrus_tx_add(w, id, &d), "tx_add debit");
  check(w, walrus_tx_add(w, id, &c), "tx_add credit");
}

static void expect_aborted(walrus_t *w, const walrus_txid_t *id) {
  walrus_tx_state_t st;
  check(w, walrus_tx_state(w, id, &st), "tx_state");
  if (st != WALRUS_TX_ABORTED) fail("transaction is not ABORTED");
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-bank-XXXXXX", m[32], m2[32];
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  int64_t bal[NACC] = {100000, 50000, 25000}, opened = 0;
  walrus_txid_t id, rolled_back, expired;
  uint64_t first;
  size_t count;

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("walrus %s bank demo in %s\n", walrus_version_string(), dir);
  walrus_t *w = open_log(dir);
  if (walrus_last_index(w) != 0) fail("DIR already holds a log");

  /* Open the accounts: one atomic batch of three entries. */
  walrus_entry_t open[NACC];
  char text[NACC][64];
  for (int i = 0; i < NACC; i++) {
    snprintf(text[i], sizeof text[i], "OPEN:%s:%s", names[i], money(bal[i], m));
    open[i] = (walrus_entry_t){.term = 1, .type = T_OPEN, .data = text[i],
                               .len = strlen(text[i])};
    opened += bal[i];
  }
  check(w, walrus_write_batch(w, open, NACC, &first), "write_batch");
  printf("opened %d accounts as entries %llu..%llu, total %s\n", NACC,
         (unsigned long long)first, (unsigned long long)(first + NACC - 1),
         money(opened, m));

  /* Two transfers committed atomically (TransferMoney). */
  static const struct { int from, to; int64_t cents; } ok[] = {
      {0, 1, 20000}, {1, 2, 7550}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    begin_transfer(w, ok[i].from, ok[i].to, ok[i].cents, 30000, &id);
    check(w, walrus_tx_commit(w, &id, &first, &count), "tx_commit");
    bal[ok[i].from] -= ok[i].cents;
    bal[ok[i].to] += ok[i].cents;
    printf("transfer %s -> %s %s: committed as entries %llu..%llu (%s)\n",
           names[ok[i].from], names[ok[i].to], money(ok[i].cents, m),
           (unsigned long long)first,
           (unsigned long long)(first + count - 1), id.s);
  }

  /* A transfer the application refuses after building it: rolled back. */
  int64_t big = 999900;
  begin_transfer(w, 2, 0, big, 30000, &rolled_back);
  if (bal[2] >= big) fail("carol should not afford this");
  check(w, walrus_tx_rollback(w, &rolled_back), "tx_rollback");
  expect_aborted(w, &rolled_back);
  printf("transfer carol -> alice %s: carol has %s, rolled back (%s)\n",
         money(big, m), money(bal[2], m2), rolled_back.s);

  /* A transfer nobody commits: it expires after 50 ms. */
  begin_transfer(w, 0, 2, 10000, 50, &expired);
  struct timespec ts = {0, 100 * 1000000L};
  nanosleep(&ts, NULL);
  int n = walrus_tx_cleanup_expired(w);
  if (n < 0) check(w, n, "tx_cleanup_expired");
  if (n != 1) fail("cleanup should abort exactly one transaction");
  expect_aborted(w, &expired);
  int rc = walrus_tx_commit(w, &expired, NULL, NULL);
  if (rc != WALRUS_ETXNOTPENDING && rc != WALRUS_ETXEXPIRED)
    check(w, rc == WALRUS_OK ? WALRUS_EINVAL : rc, "late commit succeeded");
  printf("transfer alice -> carol 100.00: expired after 50 ms, cleanup "
         "aborted %d; a late commit gets %s\n", n, walrus_errname(rc));
  if (walrus_tx_active_count(w) != 0) fail("transactions still pending");
  check(w, walrus_close(w), "close");

  /* Restart and replay the log to compute the balances. */
  w = open_log(dir);
  int64_t replay[NACC] = {0}, total = 0, debit = 0;
  char txid[256] = "", line[128], kind[16], who[16];
  long long whole, frac;
  int transfers = 0;
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  check(w, walrus_iter_open(w, 0, &it), "iter_open");
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    snprintf(line, sizeof line, "%.*s", (int)e.len, (const char *)e.data);
    if (sscanf(line, "%15[A-Z]:%15[a-z]:%lld.%2lld", kind, who, &whole,
               &frac) != 4 || account(who) < 0)
      fail(line);
    int64_t cents = (int64_t)(whole * 100 + frac);
    const char *tx = e.tx_id ? e.tx_id : "";
    if (strcmp(tx, rolled_back.s) == 0 || strcmp(tx, expired.s) == 0)
      fail("an aborted transaction reached the log");
    if (e.type == T_OPEN && strcmp(kind, "OPEN") == 0) {
      replay[account(who)] += cents;
      total += cents;
    } else if (e.type == T_DEBIT && strcmp(kind, "DEBIT") == 0 && *tx) {
      replay[account(who)] -= cents;
      snprintf(txid, sizeof txid, "%s", tx); /* its CREDIT must follow */
      debit = cents;
    } else if (e.type == T_CREDIT && strcmp(kind, "CREDIT") == 0 &&
               strcmp(tx, txid) == 0 && cents == debit) {
      replay[account(who)] += cents;
      txid[0] = '\0';
      transfers++;
    } else {
      fail(line);
    }
  }
  if (rc != WALRUS_DONE) check(w, rc, "iter_next");
  walrus_iter_close(it);
  printf("reopened and replayed entries %llu..%llu: %d transfers, each a "
         "DEBIT+CREDIT pair under one tx id\n",
         (unsigned long long)walrus_first_index(w),
         (unsigned long long)walrus_last_index(w), transfers);
  int64_t sum = 0;
  for (int i = 0; i < NACC; i++) {
    if (replay[i] != bal[i]) fail("replayed balance differs");
    printf("  %-6s %10s\n", names[i], money(replay[i], m));
    sum += replay[i];
  }
  if (sum != total || total != opened) fail("money was created or lost");
  printf("  total  %10s (opened with %s); rolled-back and expired "
         "transfers: absent\n", money(sum, m), money(opened, m2));
  check(w, walrus_close(w), "close");
  if (argc <= 1 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return 0;
}
