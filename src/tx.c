/*
 * tx.c: transactions (walrus_tx_*): the BeginTransaction ...
 * CommitTransaction API of the Go library walrus (github l00pss/walrus).
 *
 * A pending transaction lives only in memory: its entries are copied once
 * into the transaction's own arena as they are added.  Commit writes them
 * all as one unit, the same framing a batch gets (FIRST ... LAST in one
 * segment), so recovery shows the whole transaction or nothing of it; each
 * record carries the transaction id.  Nothing of a pending, rolled-back or
 * expired transaction ever reaches the disk.
 *
 * States: PENDING until commit, rollback, expiry or close; COMMITTED or
 * ABORTED after.  A transaction being committed is no longer pending to
 * anyone else.  Finished transactions are remembered in a ring of the last
 * WALRUS__TX_DONE_RING ids so that walrus_tx_state() can report them;
 * older ones are forgotten (WALRUS_ETXNOTFOUND), so memory stays bounded.
 *
 * All of it is guarded by tx_mu, never held across a write: commit marks
 * the transaction, drops the lock, writes through the ordinary write path
 * (which orders commits, and so indexes), and takes the lock again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char HEX[] = "0123456789abcdef";

/* Parse "tx_" + 32 hex digits into 16 bytes; 0 if it is not one. */
static int parse_id(const walrus_txid_t *id, unsigned char raw[16]) {
  if (id == NULL || memcmp(id->s, "tx_", 3) != 0 || id->s[35] != '\0')
    return 0;
  for (int i = 0; i < 16; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char c = id->s[3 + 2 * i + k];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
      if (d < 0) return 0;
      v = v * 16 + d;
    }
    raw[i] = (unsigned char)v;
  }
  return 1;
}

static size_t bucket_of(const unsigned char raw[16]) {
  return (size_t)(raw[0] | (raw[1] << 8)) % WALRUS__TX_BUCKETS;
}

static walrus__tx_t *find(walrus_t *w, const unsigned char raw[16]) {
  for (walrus__tx_t *t = w->tx.buckets[bucket_of(raw)]; t; t = t->next)
    if (memcmp(t->raw, raw, 16) == 0) return t;
  return NULL;
}

/* Remove t from the table, remember how it ended, free it.  Caller holds
 * tx_mu. */
static void finish(walrus_t *w, walrus__tx_t *t, walrus_tx_state_t state) {
  walrus__tx_t **pp = &w->tx.buckets[bucket_of(t->raw)];
  while (*pp != t) pp = &(*pp)->next;
  *pp = t->next;
  w->tx.pending--;
  w->tx.bytes -= t->used;
  walrus__tx_done_t *d = &w->tx.done[w->tx.done_pos++ % WALRUS__TX_DONE_RING];
  memcpy(d->raw, t->raw, 16);
  d->state = (unsigned char)state;
  d->used = 1;
  walrus__free(w, t->recs);
  walrus__free(w, t->arena);
  walrus__free(w, t);
}

static int expired(const walrus__tx_t *t, int64_t now) {
  return t->timeout_ns != 0 && now - t->start_ns > t->timeout_ns;
}

/* Look up a transaction that must be pending and not expired; an expired
 * one is aborted on the spot.  Caller holds tx_mu. */
static int lookup_pending(walrus_t *w, const walrus_txid_t *id,
                          walrus__tx_t **out) {
  unsigned char raw[16];
  if (!parse_id(id, raw))
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "transaction id is not tx_ and 32 hex digits");
  walrus__tx_t *t = find(w, raw);
  if (t == NULL) {
    for (size_t i = 0; i < WALRUS__TX_DONE_RING; i++)
      if (w->tx.done[i].used && memcmp(w->tx.done[i].raw, raw, 16) == 0)
        return walrus__fail(w, WALRUS_ETXNOTPENDING, 0, "%s is %s", id->s,
                            w->tx.done[i].state == WALRUS_TX_COMMITTED
                                ? "committed"
                                : "aborted");
    return walrus__fail(w, WALRUS_ETXNOTFOUND, 0, "%s is unknown", id->s);
  }
  if (t->committing)
    return walrus__fail(w, WALRUS_ETXNOTPENDING, 0, "%s is being committed",
                        id->s);
  if (expired(t, walrus__clock_ns(w))) {
    finish(w, t, WALRUS_TX_ABORTED);
    walrus__log(w, WALRUS_LOG_INFO, "%s expired and was aborted", id->s);
    return walrus__fail(w, WALRUS_ETXEXPIRED, 0, "%s expired", id->s);
  }
  *out = t;
  return WALRUS_OK;
}

int walrus_tx_begin(walrus_t *w, uint32_t timeout_ms, walrus_txid_t *id) {
  unsigned char raw[16];
  if (w == NULL || id == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or id");
  if (w->cfg.read_only)
    return walrus__fail(w, WALRUS_EREADONLY, 0, "%s is open read-only",
                        w->dir);
  walrus__tx_t *t = walrus__malloc(w, sizeof *t);
  if (t == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "transaction");
  memset(t, 0, sizeof *t);
  pthread_mutex_lock(&w->tx.mu);
  do {
    int e = walrus__random(w, raw, sizeof raw);
    if (e != 0) {
      pthread_mutex_unlock(&w->tx.mu);
      walrus__free(w, t);
      return walrus__fail(w, WALRUS_EIO, -e, "random transaction id");
    }
  } while (find(w, raw) != NULL);
  memcpy(t->raw, raw, 16);
  memcpy(t->id.s, "tx_", 3);
  for (int i = 0; i < 16; i++) {
    t->id.s[3 + 2 * i] = HEX[raw[i] >> 4];
    t->id.s[4 + 2 * i] = HEX[raw[i] & 15];
  }
  t->id.s[35] = '\0';
  t->start_ns = walrus__clock_ns(w);
  uint32_t ms = timeout_ms ? timeout_ms : w->cfg.tx_timeout_ms;
  t->timeout_ns = (int64_t)ms * 1000000;
  size_t b = bucket_of(raw);
  t->next = w->tx.buckets[b];
  w->tx.buckets[b] = t;
  w->tx.pending++;
  *id = t->id;
  pthread_mutex_unlock(&w->tx.mu);
  return WALRUS_OK;
}

int walrus_tx_add(walrus_t *w, const walrus_txid_t *id,
                  const walrus_entry_t *e) {
  walrus__tx_t *t;
  int rc;
  if (w == NULL || id == NULL || e == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle, id or entry");
  if (e->data == NULL && e->len > 0)
    return walrus__fail(w, WALRUS_EINVAL, 0, "data is NULL but len is %zu",
                        e->len);
  if (e->tx_id != NULL && strcmp(e->tx_id, id->s) != 0)
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "entry names transaction %.40s, not %.40s", e->tx_id,
                        id->s);
  if (e->len > w->cfg.max_entry_bytes || /* no overflow in the sum below */
      e->len + 35 > w->cfg.max_entry_bytes)
    return walrus__fail(w, WALRUS_ETOOLARGE, 0,
                        "%zu bytes and the id exceed max_entry_bytes %u",
                        e->len, w->cfg.max_entry_bytes);
  pthread_mutex_lock(&w->tx.mu);
  rc = lookup_pending(w, id, &t);
  if (rc != WALRUS_OK) goto out;
  if (t->n >= w->cfg.tx_max_entries) {
    rc = walrus__fail(w, WALRUS_ETXTOOLARGE, 0,
                      "%s already holds tx_max_entries (%u) entries", id->s,
                      w->cfg.tx_max_entries);
    goto out;
  }
  /* The limit counts payload bytes held; the arena grows by doubling, so
   * a transaction's bytes are copied about once. */
  if (w->tx.bytes + e->len > w->cfg.tx_max_pending_bytes) {
    rc = walrus__fail(w, WALRUS_ETXTOOLARGE, 0,
                      "pending transactions would hold %llu bytes, over "
                      "tx_max_pending_bytes %llu",
                      (unsigned long long)(w->tx.bytes + e->len),
                      (unsigned long long)w->cfg.tx_max_pending_bytes);
    goto out;
  }
  if (t->used + e->len > t->acap) {
    size_t cap = t->acap ? t->acap : 256;
    while (cap < t->used + e->len) cap *= 2;
    unsigned char *p = walrus__realloc(w, t->arena, cap);
    if (p == NULL) {
      rc = walrus__fail(w, WALRUS_ENOMEM, 0, "transaction arena");
      goto out;
    }
    t->arena = p;
    t->acap = cap;
  }
  if (t->n == t->rcap) {
    size_t cap = t->rcap ? t->rcap * 2 : 8;
    walrus__tx_rec_t *r = walrus__realloc(w, t->recs, cap * sizeof *r);
    if (r == NULL) {
      rc = walrus__fail(w, WALRUS_ENOMEM, 0, "transaction entries");
      goto out;
    }
    t->recs = r;
    t->rcap = cap;
  }
  walrus__tx_rec_t *r = &t->recs[t->n++];
  r->term = e->term;
  r->timestamp_ns = e->timestamp_ns;
  r->type = e->type;
  r->off = t->used;
  r->len = e->len;
  if (e->len > 0) memcpy(t->arena + t->used, e->data, e->len);
  t->used += e->len;
  w->tx.bytes += e->len;
out:
  pthread_mutex_unlock(&w->tx.mu);
  return rc;
}

/* Commit the n transactions ids as consecutive units with one durable
 * wait (walrus__write_units).  first_index and count, if not NULL, are
 * arrays of n. */
static int commit_txs(walrus_t *w, const walrus_txid_t *ids, size_t n,
                      uint64_t *first_index, size_t *count) {
  walrus__tx_t **ts = NULL;
  walrus__unit_t *units = NULL;
  walrus_entry_t *es = NULL;
  uint64_t *firsts = NULL;
  size_t nunits = 0, nent = 0, done = 0;
  int rc = WALRUS_OK;

  if (w == NULL || ids == NULL || n == 0)
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "NULL handle or ids, or no transaction");
  ts = walrus__malloc(w, n * sizeof *ts);
  if (ts == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "commit");

  /* Claim them all, or none: a transaction being committed is no longer
   * pending to anyone else (an id given twice is found so, too). */
  pthread_mutex_lock(&w->tx.mu);
  size_t claimed = 0;
  for (; claimed < n && rc == WALRUS_OK; claimed++) {
    rc = lookup_pending(w, &ids[claimed], &ts[claimed]);
    if (rc != WALRUS_OK) break;
    ts[claimed]->committing = 1;
    nent += ts[claimed]->n;
  }
  if (rc != WALRUS_OK)
    for (size_t i = 0; i < claimed; i++) ts[i]->committing = 0;
  pthread_mutex_unlock(&w->tx.mu);
  if (rc != WALRUS_OK) {
    walrus__free(w, ts);
    return rc;
  }

  /* One unit per transaction with entries, each record carrying its id. */
  units = walrus__malloc(w, n * sizeof *units);
  firsts = walrus__malloc(w, n * sizeof *firsts);
  es = nent > 0 ? walrus__malloc(w, nent * sizeof *es) : NULL;
  if (units == NULL || firsts == NULL || (nent > 0 && es == NULL)) {
    rc = walrus__fail(w, WALRUS_ENOMEM, 0, "commit of %zu transactions", n);
  } else {
    walrus_entry_t *e = es;
    for (size_t i = 0; i < n; i++) {
      walrus__tx_t *t = ts[i];
      if (t->n == 0) continue;
      for (size_t k = 0; k < t->n; k++) {
        const walrus__tx_rec_t *r = &t->recs[k];
        e[k] = (walrus_entry_t){0};
        e[k].term = r->term;
        e[k].timestamp_ns = r->timestamp_ns;
        e[k].type = r->type;
        e[k].tx_id = t->id.s;
        e[k].data = t->arena + r->off;
        e[k].len = r->len;
      }
      units[nunits].e = e;
      units[nunits].n = t->n;
      nunits++;
      e += t->n;
    }
    if (nunits > 0) {
      rc = walrus__write_units(w, units, nunits, firsts, &done, 0);
    } else {
      /* Nothing to write, but a handle that cannot write commits
       * nothing. */
      pthread_mutex_lock(&w->wlock);
      rc = walrus__writable(w);
      pthread_mutex_unlock(&w->wlock);
    }
  }
  uint64_t next = walrus_next_index(w);

  /* Each transaction's fate: written (in the log) is committed; not
   * written for want of memory or room stays pending, to be retried;
   * not written or cut because the handle failed is aborted.  An empty
   * one goes as the units around it. */
  int nothing_written =
      rc == WALRUS_ENOMEM || rc == WALRUS_ETOOLARGE || rc == WALRUS_EINVAL;
  /* The out-arrays are left alone when no transaction changed state. */
  if (nothing_written && done == 0) first_index = NULL, count = NULL;
  pthread_mutex_lock(&w->tx.mu);
  size_t u = 0;
  for (size_t i = 0; i < n; i++) {
    walrus__tx_t *t = ts[i];
    size_t tn = t->n;
    int in_log = tn == 0 ? rc == WALRUS_OK || u < done : u < done;
    uint64_t first = 0; /* firsts is NULL if it could not be allocated */
    if (in_log) first = u < done ? firsts[u] : next;
    if (tn > 0) u++;
    if (first_index != NULL) first_index[i] = in_log ? first : 0;
    if (count != NULL) count[i] = in_log ? tn : 0;
    if (in_log) {
      walrus__log(w, WALRUS_LOG_DEBUG, "committed %s: %zu entries at %llu",
                  t->id.s, tn, (unsigned long long)first);
      finish(w, t, WALRUS_TX_COMMITTED);
    } else if (nothing_written) {
      t->committing = 0;
    } else {
      finish(w, t, WALRUS_TX_ABORTED);
    }
  }
  pthread_mutex_unlock(&w->tx.mu);
  walrus__free(w, es);
  walrus__free(w, firsts);
  walrus__free(w, units);
  walrus__free(w, ts);
  return rc;
}

int walrus_tx_commit(walrus_t *w, const walrus_txid_t *id,
                     uint64_t *first_index, size_t *count) {
  uint64_t first;
  size_t n;
  if (id == NULL) return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or id");
  int rc = commit_txs(w, id, 1, &first, &n);
  if (rc == WALRUS_OK && first_index != NULL) *first_index = first;
  if (rc == WALRUS_OK && count != NULL) *count = n;
  return rc;
}

int walrus_tx_commit_many(walrus_t *w, const walrus_txid_t *ids, size_t n,
                          uint64_t *first_index, size_t *count) {
  return commit_txs(w, ids, n, first_index, count);
}

int walrus_tx_rollback(walrus_t *w, const walrus_txid_t *id) {
  walrus__tx_t *t;
  int rc;
  if (w == NULL || id == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or id");
  pthread_mutex_lock(&w->tx.mu);
  rc = lookup_pending(w, id, &t);
  if (rc == WALRUS_OK) finish(w, t, WALRUS_TX_ABORTED);
  pthread_mutex_unlock(&w->tx.mu);
  return rc;
}

int walrus_tx_state(walrus_t *w, const walrus_txid_t *id,
                    walrus_tx_state_t *state) {
  unsigned char raw[16];
  int rc = WALRUS_OK;
  if (w == NULL || id == NULL || state == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle, id or state");
  if (!parse_id(id, raw))
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "transaction id is not tx_ and 32 hex digits");
  pthread_mutex_lock(&w->tx.mu);
  walrus__tx_t *t = find(w, raw);
  if (t != NULL && !t->committing && expired(t, walrus__clock_ns(w))) {
    finish(w, t, WALRUS_TX_ABORTED);
    t = NULL;
  }
  if (t != NULL) {
    *state = WALRUS_TX_PENDING;
  } else {
    rc = WALRUS_ETXNOTFOUND;
    /* Newest first: an id is in the ring at most once anyway. */
    for (size_t k = 0; k < WALRUS__TX_DONE_RING; k++) {
      size_t i = (w->tx.done_pos - 1 - k) % WALRUS__TX_DONE_RING;
      if (w->tx.done[i].used && memcmp(w->tx.done[i].raw, raw, 16) == 0) {
        *state = (walrus_tx_state_t)w->tx.done[i].state;
        rc = WALRUS_OK;
        break;
      }
    }
  }
  pthread_mutex_unlock(&w->tx.mu);
  if (rc != WALRUS_OK)
    return walrus__fail(w, rc, 0, "%.40s is unknown", id->s);
  return rc;
}

/* Abort every expired pending transaction; returns how many.  Caller
 * holds tx_mu. */
static int cleanup_locked(walrus_t *w) {
  int64_t now = walrus__clock_ns(w);
  int n = 0;
  for (size_t b = 0; b < WALRUS__TX_BUCKETS; b++) {
    walrus__tx_t *t = w->tx.buckets[b];
    while (t != NULL) {
      walrus__tx_t *next = t->next;
      if (!t->committing && expired(t, now)) {
        finish(w, t, WALRUS_TX_ABORTED);
        n++;
      }
      t = next;
    }
  }
  return n;
}

int walrus_tx_cleanup_expired(walrus_t *w) {
  if (w == NULL) return WALRUS_EINVAL;
  pthread_mutex_lock(&w->tx.mu);
  int n = cleanup_locked(w);
  pthread_mutex_unlock(&w->tx.mu);
  if (n > 0)
    walrus__log(w, WALRUS_LOG_INFO, "aborted %d expired transactions", n);
  return n;
}

int walrus_tx_active_count(walrus_t *w) {
  if (w == NULL) return WALRUS_EINVAL;
  pthread_mutex_lock(&w->tx.mu);
  size_t n = w->tx.pending;
  pthread_mutex_unlock(&w->tx.mu);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* The background cleaner (tx_cleanup_interval_ms > 0). */
void *walrus__tx_cleaner_main(void *arg) {
  walrus_t *w = arg;
  pthread_mutex_lock(&w->tx.mu);
  while (!w->tx.cleaner_stop) {
    struct timespec ts = walrus__deadline_ms(w->cfg.tx_cleanup_interval_ms);
    pthread_cond_timedwait(&w->tx.cleaner_cv, &w->tx.mu, &ts);
    if (w->tx.cleaner_stop) break;
    int n = cleanup_locked(w);
    if (n > 0)
      walrus__log(w, WALRUS_LOG_INFO,
                  "cleaner aborted %d expired transactions", n);
  }
  pthread_mutex_unlock(&w->tx.mu);
  return NULL;
}

/* Abort every pending transaction and free the table (close). */
void walrus__tx_destroy(walrus_t *w) {
  size_t n = 0;
  pthread_mutex_lock(&w->tx.mu);
  for (size_t b = 0; b < WALRUS__TX_BUCKETS; b++)
    while (w->tx.buckets[b] != NULL) {
      finish(w, w->tx.buckets[b], WALRUS_TX_ABORTED);
      n++;
    }
  pthread_mutex_unlock(&w->tx.mu);
  if (n > 0)
    walrus__log(w, WALRUS_LOG_INFO, "close aborted %zu pending transactions",
                n);
}
