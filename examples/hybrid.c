/*
 * hybrid.c: the EventSourcingWithWalrus example written for the Go library
 * walrus (github l00pss/walrus).
 *
 * Each business event is first appended to walrus (durable on return),
 * and only then applied to in-memory projections: a count and the latest
 * payload per event type (projections[eventType] in the Go example) and a
 * stock level per item.  The projections are never written anywhere: on
 * restart (close and reopen) they are rebuilt from the log, and must match
 * what the running process had.  Run it twice on one DIR and the second
 * run starts from the first run's events.
 *
 * The Go example stores only json.Marshal(eventData), which loses the event
 * type a rebuild needs; here an entry holds {"type":..,"data":{..}}.  It
 * also asks for format JSON, which walrus 0.1 does not build yet
 * (WALRUS_ENOTSUP), so the JSON goes in BINARY records.
 *
 *   hybrid [DIR]   default: a fresh /tmp/walrus-hybrid-XXXXXX, removed at
 *                  the end.
 *
 * Exits 0 when the rebuilt projections match, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walrus.h"

static void check(walrus_t *w, int rc, const char *what) {
  if (rc == WALRUS_OK) return;
  fprintf(stderr, "hybrid: %s: %s (%s)\n", what, walrus_strerror(rc),
          w ? walrus_errmsg(w) : "");
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "hybrid: FAILED: %s\n", what);
  exit(1);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *b) {
  (void)s, (void)f, (void)b;
  return remove(p);
}

/* The projections, rebuilt from the log at every open. */
struct projections {
  struct { char type[24]; long count; char last[96]; } ev[8];
  struct { char sku[16]; long qty; } item[8];
  int nev, nitem;
};

struct es {
  walrus_t *w;
  pthread_mutex_t mu; /* guards p, as sync.RWMutex in the Go example */
  struct projections p;
};

/* The text after "key": in a flat JSON object, up to its end, into out. */
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

/* updateProjections: apply one logged event {"type":..,"data":{..}}. */
static void update_projections(struct projections *p, const char *entry) {
  char type[24], sku[16], qty[16];
  const char *data = strstr(entry, "\"data\":");
  if (!field(entry, "type", type, sizeof type) || data == NULL) fail(entry);
  data += strlen("\"data\":");
  int i = 0;
  while (i < p->nev && strcmp(p->ev[i].type, type) != 0) i++;
  if (i == p->nev && p->nev++ == 8) fail("too many event types");
  snprintf(p->ev[i].type, sizeof p->ev[i].type, "%s", type);
  snprintf(p->ev[i].last, sizeof p->ev[i].last, "%.*s",
           (int)(strlen(data) - 1), data); /* without the outer '}' */
  p->ev[i].count++;
  if (!field(data, "sku", sku, sizeof sku) || !field(data, "qty", qty,
                                                       sizeof qty))
    return;
  int k = 0;
  while (k < p->nitem && strcmp(p->item[k].sku, sku) != 0) k++;
  if (k == p->nitem && p->nitem++ == 8) fail("too many items");
  snprintf(p->item[k].sku, sizeof p->item[k].sku, "%s", sku);
  p->item[k].qty += strcmp(type, "ItemSold") == 0 ? -atol(qty) : atol(qty);
}

/* NewEventSourcingWithWalrus, plus the rebuild a restart needs. */
static void es_open(struct es *es, const char *dir) {
  walrus_config_t cfg;
  char msg[256] = "";
  walrus_config_default(&cfg);
  cfg.sync = WALRUS_SYNC_ALWAYS; /* syncAfterWrite: true */
  cfg.segment_bytes = 1024 * 1024;
  int rc = walrus_open_ex(dir, &cfg, &es->w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    fprintf(stderr, "hybrid: open %s: %s (%s)\n", dir, walrus_strerror(rc),
            msg);
    exit(1);
  }
  memset(&es->p, 0, sizeof es->p);
  if (pthread_mutex_init(&es->mu, NULL) != 0) fail("pthread_mutex_init");
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  char text[256];
  check(es->w, walrus_iter_open(es->w, 0, &it), "iter_open");
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    snprintf(text, sizeof text, "%.*s", (int)e.len, (const char *)e.data);
    update_projections(&es->p, text);
  }
  if (rc != WALRUS_DONE) check(es->w, rc, "iter_next");
  walrus_iter_close(it);
}

static void es_close(struct es *es) {
  check(es->w, walrus_close(es->w), "close");
  es->w = NULL;
  pthread_mutex_destroy(&es->mu);
}

/* ProcessBusinessEvent: log durably first, then update the projections. */
static uint64_t process_event(struct es *es, const char *type,
                              const char *data) {
  char text[256];
  uint64_t index;
  snprintf(text, sizeof text, "{\"type\":\"%s\",\"data\":%s}", type, data);
  walrus_entry_t e = {.term = 1, .data = text, .len = strlen(text)};
  check(es->w, walrus_append(es->w, &e, &index), "append");
  pthread_mutex_lock(&es->mu);
  update_projections(&es->p, text);
  pthread_mutex_unlock(&es->mu);
  return index;
}

static void show(const struct projections *p) {
  for (int i = 0; i < p->nev; i++)
    printf("    %-14s x%ld, last %s\n", p->ev[i].type, p->ev[i].count,
           p->ev[i].last);
  printf("    stock:");
  for (int k = 0; k < p->nitem; k++)
    printf(" %s %ld", p->item[k].sku, p->item[k].qty);
  printf("\n");
}

static int same(const struct projections *a, const struct projections *b) {
  if (a->nev != b->nev || a->nitem != b->nitem) return 0;
  for (int i = 0; i < a->nev; i++)
    if (strcmp(a->ev[i].type, b->ev[i].type) != 0 ||
        a->ev[i].count != b->ev[i].count ||
        strcmp(a->ev[i].last, b->ev[i].last) != 0)
      return 0;
  for (int k = 0; k < a->nitem; k++)
    if (strcmp(a->item[k].sku, b->item[k].sku) != 0 ||
        a->item[k].qty != b->item[k].qty)
      return 0;
  return 1;
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/walrus-hybrid-XXXXXX", msg[128];
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  static const char *const events[][2] = {
      {"StockReceived", "{\"sku\":\"mug\",\"qty\":40}"},
      {"StockReceived", "{\"sku\":\"tee\",\"qty\":25}"},
      {"ItemSold", "{\"sku\":\"mug\",\"qty\":3,\"customer\":\"alice\"}"},
      {"CustomerJoined", "{\"customer\":\"bob\",\"tier\":\"gold\"}"},
      {"ItemSold", "{\"sku\":\"tee\",\"qty\":7,\"customer\":\"bob\"}"},
      {"ItemSold", "{\"sku\":\"mug\",\"qty\":2,\"customer\":\"bob\"}"},
  };
  struct es es, again;

  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("walrus %s hybrid demo in %s\n", walrus_version_string(), dir);
  walrus_config_t json;
  walrus_config_default(&json);
  json.format = WALRUS_FORMAT_JSON; /* the Go example's format: JSON */
  int rc = walrus_config_check(&json, msg, sizeof msg);
  if (rc != WALRUS_ENOTSUP) check(NULL, rc, "config_check");
  printf("format JSON: %s (%s); storing JSON text in BINARY records\n",
         walrus_errname(rc), msg);

  es_open(&es, dir);
  uint64_t before = walrus_last_index(es.w);
  printf("opened: projections rebuilt from %llu earlier entries\n",
         (unsigned long long)before);
  for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
    uint64_t index = process_event(&es, events[i][0], events[i][1]);
    printf("  entry %llu: %s %s\n", (unsigned long long)index, events[i][0],
           events[i][1]);
  }
  printf("projections while running:\n");
  show(&es.p);
  struct projections running = es.p;
  es_close(&es);

  es_open(&again, dir); /* the restart */
  printf("restarted: projections rebuilt from entries %llu..%llu:\n",
         (unsigned long long)walrus_first_index(again.w),
         (unsigned long long)walrus_last_index(again.w));
  show(&again.p);
  if (!same(&running, &again.p)) fail("rebuilt projections differ");
  printf("rebuilt projections match the running ones\n");
  es_close(&again);
  if (argc <= 1 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    perror(dir);
  return 0;
}
