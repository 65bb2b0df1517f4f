/*
 * event_sourcing.c: business events in walrus, and projections built from
 * them: the StoreTransferEvent example and its temporal queries, written
 * for the Go library walrus (github l00pss/walrus).
 *
 * Order events are stored as JSON text, one walrus_append each.  The
 * current state (each order's state machine and what each customer has
 * paid) is never stored: it is rebuilt by replaying the log from its
 * first index.  Replaying only a prefix answers "what was the state as of
 * entry N?".
 *
 *   event_sourcing [DIR]  DIR must hold no log yet; default: a fresh
 *                         /tmp/walrus-events-XXXXXX, removed at the end.
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

#include "walrus.h"

static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "event_sourcing: %s: %s (%s)\n", what, walrus_strerror(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "event_sourcing: FAILED: %s\n", what);
  exit(1);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

/* The projection: orders with a state machine, and money per customer. */
enum state { PLACED, PAID, SHIPPED, CANCELLED };
static const char *const state_name[] = {"PLACED", "PAID", "SHIPPED",
                                         "CANCELLED"};
struct order {
  char id[16], customer[16];
  long long amount; /* cents */
  enum state st;
};
struct projection {
  struct order o[16];
  int n;
  uint64_t as_of; /* the last entry applied */
};

/* The value of "key" in a flat JSON object, string or number, into out. */
static int field(const char *json, const char *key, char *out, size_t cap) {
  char pat[32];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(json, pat);
  if (p == NULL) return 0;
  p += strlen(pat);
  size_t n = *p == '"' ? strcspn(++p, "\"") : strcspn(p, ",}");
  if (n >= cap) return 0;
  memcpy(out, p, n);
  out[n] = '\0';
  return 1;
}

/* Apply one event; 0 when it is malformed or an illegal transition. */
static int apply(struct projection *pr, const char *json) {
  char ev[32], id[16], cust[16], amt[24];
  struct order *o = NULL;
  if (!field(json, "event", ev, sizeof ev) ||
      !field(json, "order", id, sizeof id))
    return 0;
  for (int i = 0; i < pr->n; i++)
    if (strcmp(pr->o[i].id, id) == 0) o = &pr->o[i];
  if (strcmp(ev, "OrderPlaced") == 0) {
    if (o != NULL || pr->n == 16 || !field(json, "customer", cust, sizeof cust)
        || !field(json, "amount", amt, sizeof amt))
      return 0;
    o = &pr->o[pr->n++];
    snprintf(o->id, sizeof o->id, "%s", id);
    snprintf(o->customer, sizeof o->customer, "%s", cust);
    o->amount = strtoll(amt, NULL, 10);
    o->st = PLACED;
  } else if (o == NULL) {
    return 0;
  } else if (strcmp(ev, "PaymentReceived") == 0 && o->st == PLACED) {
    o->st = PAID;
  } else if (strcmp(ev, "OrderShipped") == 0 && o->st == PAID) {
    o->st = SHIPPED;
  } else if (strcmp(ev, "OrderCancelled") == 0 &&
             (o->st == PLACED || o->st == PAID)) {
    o->st = CANCELLED;
  } else {
    return 0;
  }
  return 1;
}

/* Rebuild the projection from the first entry through entry upto. */
static void rebuild(walrus_t *w, uint64_t upto, struct projection *pr) {
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  char json[256];
  int rc;
  memset(pr, 0, sizeof *pr);
  check(w, walrus_iter_open(w, 0, &it), "iter_open");
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK && e.index <= upto) {
    snprintf(json, sizeof json, "%.*s", (int)e.len, (const char *)e.data);
    if (!apply(pr, json)) fail(json);
    pr->as_of = e.index;
  }
  if (rc != WALRUS_OK && rc != WALRUS_DONE) check(w, rc, "iter_next");
  walrus_iter_close(it);
}

static void show(const struct projection *pr) {
  const char *who[16];
  long long paid[16] = {0};
  int nwho = 0;
  for (int i = 0; i < pr->n; i++) {
    const struct order *o = &pr->o[i];
    int k = 0;
    while (k < nwho && strcmp(who[k], o->customer) != 0) k++;
    if (k == nwho) who[nwho++] = o->customer;
    if (o->st == PAID || o->st == SHIPPED) paid[k] += o->amount;
    printf("    %s %-6s %4lld.%02lld %s\n", o->id, o->customer,
           o->amount / 100, o->amount % 100, state_name[o->st]);
  }
  printf("    paid:");
  for (int k = 0; k < nwho; k++)
    printf(" %s %lld.%02lld", who[k], paid[k] / 100, paid[k] % 100);
  printf("\n");
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-events-XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  /* What happened, in order: {event, order, extra JSON fields}. */
  static const char *const events[][3] = {
      {"OrderPlaced", "A-1", "\"customer\":\"alice\",\"amount\":1999"},
      {"OrderPlaced", "B-2", "\"customer\":\"bob\",\"amount\":4500"},
      {"PaymentReceived", "A-1", "\"method\":\"card\""},
      {"OrderPlaced", "C-3", "\"customer\":\"alice\",\"amount\":750"},
      {"PaymentReceived", "B-2", "\"method\":\"iban\""},
      {"OrderShipped", "A-1", "\"carrier\":\"DHL\""},
      {"OrderCancelled", "B-2", "\"reason\":\"out of stock\""},
      {"PaymentReceived", "C-3", "\"method\":\"card\""},
      {"OrderShipped", "C-3", "\"carrier\":\"UPS\""},
  };
  const size_t nev = sizeof events / sizeof events[0];
  char json[256], msg[256] = "";
  walrus_t *w = NULL;
  uint64_t index;

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("walrus %s event sourcing demo in %s\n", walrus_version_string(),
         dir);
  int rc = walrus_open_ex(dir, NULL, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    fprintf(stderr, "event_sourcing: open %s: %s (%s)\n", dir,
            walrus_strerror(rc), msg);
    return 1;
  }
  if (walrus_last_index(w) != 0) fail("DIR already holds a log");

  /* Store each event durably, as it happens. */
  for (size_t i = 0; i < nev; i++) {
    snprintf(json, sizeof json, "{\"event\":\"%s\",\"order\":\"%s\",%s}",
             events[i][0], events[i][1], events[i][2]);
    walrus_entry_t e = {.term = 1, .type = 1, .data = json,
                        .len = strlen(json)};
    check(w, walrus_append(w, &e, &index), "append");
    printf("  %2llu %s\n", (unsigned long long)index, json);
  }

  /* The current state: replay everything. */
  struct projection now, then;
  rebuild(w, UINT64_MAX, &now);
  printf("state now (replayed entries %llu..%llu):\n",
         (unsigned long long)walrus_first_index(w),
         (unsigned long long)now.as_of);
  show(&now);
  if (now.as_of != walrus_last_index(w) || now.n != 3 ||
      now.o[0].st != SHIPPED || now.o[1].st != CANCELLED ||
      now.o[2].st != SHIPPED)
    fail("unexpected current state");

  /* A temporal query: the state as of entry 5, by replaying a prefix. */
  rebuild(w, 5, &then);
  printf("state as of entry %llu (a prefix replay):\n",
         (unsigned long long)then.as_of);
  show(&then);
  if (then.as_of != 5 || then.n != 3 || then.o[0].st != PAID ||
      then.o[1].st != PAID || then.o[2].st != PLACED)
    fail("unexpected state as of entry 5");

  check(w, walrus_close(w), "close");
  if (argc <= 1 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return 0;
}
