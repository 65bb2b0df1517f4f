/*
 * append.c: the write path (walrus_append, walrus_write_batch), syncing
 * (walrus_sync and the SYNC_INTERVAL thread).
 *
 * One call writes one unit: its records are framed FIRST ... LAST, encoded
 * into the handle's buffer and written to the tail with as few pwrite
 * calls as the buffer allows (one for any unit that fits in buffer_bytes).
 * A payload larger than the buffer is written straight from the caller's
 * memory, never copied.  Then, under SYNC_ALWAYS, one fdatasync; and only
 * then are the new entries published to readers.  A failure of any write
 * or sync cuts the file back to where the unit began (best effort) and
 * poisons the handle: walrus never reports success for data it could not
 * make durable, and never retries a failed fsync.
 *
 * A unit never spans segments: if it would carry the tail past
 * segment_bytes the tail is sealed first and a new segment started.  A
 * unit larger than segment_bytes gets a segment of its own.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Validate one input entry; *txlen receives its tx id length. */
static int check_entry(walrus_t *w, const walrus_entry_t *e, size_t i,
                       size_t *txlen) {
  size_t tl = 0;
  if (e->data == NULL && e->len > 0)
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "entry %zu: data is NULL but len is %zu", i, e->len);
  if (e->tx_id != NULL) {
    tl = strnlen(e->tx_id, 256);
    if (tl == 0 || tl > 255)
      return walrus__fail(w, WALRUS_EINVAL, 0,
                          "entry %zu: tx_id must be 1..255 bytes", i);
  }
  if (e->len > w->cfg.max_entry_bytes ||
      e->len + tl > w->cfg.max_entry_bytes)
    return walrus__fail(w, WALRUS_ETOOLARGE, 0,
                        "entry %zu: %zu bytes exceed max_entry_bytes %u", i,
                        e->len + tl, w->cfg.max_entry_bytes);
  *txlen = tl;
  return WALRUS_OK;
}

/* Sync the tail if anything was written since the last sync.  Caller holds
 * wlock.  A failure poisons the handle. */
int walrus__sync_locked(walrus_t *w) {
  if (!w->dirty || w->nsegs == 0) return WALRUS_OK;
  walrus__seg_t *t = w->segs[w->nsegs - 1];
  int rc = walrus__os_sync(w, t->file, t->name);
  if (rc != WALRUS_OK) return walrus__poison(w, rc);
  w->dirty = 0;
  w->epoch++;
  w->group_open = 0;
  return WALRUS_OK;
}

/* Sync, then leave a sync mark after the entries just made durable, so
 * that recovery can tell them from a torn group even when nothing follows
 * them (format.h).  With durable, the mark is synced too (close); else the
 * next sync covers it.  Caller holds wlock. */
int walrus__sync_mark_locked(walrus_t *w, int durable) {
  int rc = walrus__sync_locked(w);
  if (rc != WALRUS_OK || !w->need_mark || w->nsegs == 0) return rc;
  walrus__seg_t *t = w->segs[w->nsegs - 1];
  if (t->sealed || t->count == 0) return WALRUS_OK;
  unsigned char hdr[WALRUS__REC_HEADER_BYTES];
  walrus__rec_t r = {0};
  r.index = w->next_index - 1;
  r.timestamp_ns = walrus__now_ns();
  r.flags = WALRUS__REC_MARK | WALRUS__REC_GROUP;
  r.epoch = w->epoch;
  walrus__rec_header_encode(hdr, &r);
  walrus__put32(hdr, walrus__rec_crc(t->salt, hdr, NULL, 0));
  rc = walrus__os_write(w, t->file, t->name, hdr, sizeof hdr, w->write_off);
  if (rc != WALRUS_OK) {
    w->vfs->truncate(w->vfs->ctx, t->file, w->write_off);
    return walrus__poison(w, rc);
  }
  w->write_off += WALRUS__REC_HEADER_BYTES;
  w->need_mark = 0;
  w->group_open = 1;
  w->dirty = 1;
  return durable ? walrus__sync_locked(w) : WALRUS_OK;
}

/* Checks every writing call makes first.  Caller holds wlock. */
static int writable(walrus_t *w) {
  if (w->cfg.read_only)
    return walrus__fail(w, WALRUS_EREADONLY, 0, "%s is open read-only",
                        w->dir);
  if (w->poisoned)
    return walrus__fail(w, WALRUS_EPOISONED, 0,
                        "an earlier %s poisoned the handle; reopen the log",
                        walrus_errname(w->poison_code));
  return WALRUS_OK;
}

int walrus__writable(walrus_t *w) { return writable(w); }

/* The pieces of one unit's encoding: the buffer, where it starts in the
 * file, how much of it is filled. */
typedef struct out_s {
  walrus_t *w;         /* handle */
  walrus__seg_t *s;    /* tail being written */
  uint64_t buf_off;    /* file offset of w->buf[0] */
  size_t used;         /* bytes filled in w->buf */
} out_t;

static int flush(out_t *o) {
  int rc = WALRUS_OK;
  if (o->used > 0)
    rc = walrus__os_write(o->w, o->s->file, o->s->name, o->w->buf, o->used,
                          o->buf_off);
  o->buf_off += o->used;
  o->used = 0;
  return rc;
}

/* Append bytes to the unit's encoding: through the buffer, or straight to
 * the file when they do not fit in it. */
static int put(out_t *o, const void *p, size_t n) {
  size_t cap = o->w->cfg.buffer_bytes;
  if (n == 0) return WALRUS_OK;
  if (o->used + n > cap) {
    int rc = flush(o);
    if (rc != WALRUS_OK) return rc;
    if (n > cap) {
      rc = walrus__os_write(o->w, o->s->file, o->s->name, p, n, o->buf_off);
      o->buf_off += n;
      return rc;
    }
  }
  memcpy(o->w->buf + o->used, p, n);
  o->used += n;
  return WALRUS_OK;
}

static int write_unit(walrus_t *w, const walrus_entry_t *e, size_t n,
                      uint64_t *first_out) {
  static const unsigned char zeros[8] = {0};
  uint64_t total = 0;
  size_t i;
  int rc;

  if (w == NULL) return WALRUS_EINVAL;
  if (e == NULL || n == 0)
    return walrus__fail(w, WALRUS_EINVAL, 0, "no entries to write");
  for (i = 0; i < n; i++) {
    size_t tl;
    rc = check_entry(w, &e[i], i, &tl);
    if (rc != WALRUS_OK) return rc;
    total += walrus__rec_size(e[i].len + tl);
  }
  /* A unit, its segment's header, index record and trailer must fit in
   * the 4 GiB a segment can address. */
  if (total + WALRUS__SEG_HEADER_BYTES + walrus__rec_size(4 * (uint64_t)n) +
          WALRUS__TRAILER_BYTES >= WALRUS__SEG_MAX_BYTES)
    return walrus__fail(w, WALRUS_ETOOLARGE, 0,
                        "batch of %zu entries needs %llu bytes, over 4 GiB",
                        n, (unsigned long long)total);

  pthread_mutex_lock(&w->wlock);
  rc = writable(w);
  if (rc != WALRUS_OK) goto out;

  walrus__seg_t *s = w->nsegs ? w->segs[w->nsegs - 1] : NULL;
  if (s != NULL && !s->sealed && s->count > 0) {
    uint64_t after = w->write_off + total;
    uint64_t seal = walrus__rec_size(4 * (s->count + n)) +
                    WALRUS__TRAILER_BYTES;
    if (after > w->cfg.segment_bytes ||
        after + seal >= WALRUS__SEG_MAX_BYTES) {
      rc = walrus__seg_seal(w);
      if (rc != WALRUS_OK) goto out;
    }
  }
  if (s == NULL || s->sealed) {
    int rotated = s != NULL;
    rc = walrus__seg_create(w, w->next_index);
    if (rc != WALRUS_OK) goto out;
    s = w->segs[w->nsegs - 1];
    if (rotated) {
      rc = walrus__retain(w);
      if (rc != WALRUS_OK) goto out;
    }
  }
  walrus__lock_excl(w);
  rc = walrus__seg_reserve(w, s, n);
  walrus__unlock(w);
  if (rc != WALRUS_OK) goto out; /* ENOMEM: nothing written, still usable */

  int64_t now = 0;
  uint64_t start = w->write_off, pos = start;
  out_t o = {w, s, start, 0};
  for (i = 0; i < n; i++) {
    unsigned char hdr[WALRUS__REC_HEADER_BYTES];
    size_t tl = e[i].tx_id ? strlen(e[i].tx_id) : 0;
    walrus__rec_t r;
    r.body_len = (uint32_t)(tl + e[i].len);
    r.index = w->next_index + i;
    r.term = e[i].term;
    r.timestamp_ns = e[i].timestamp_ns;
    if (r.timestamp_ns == 0) {
      if (now == 0) now = walrus__now_ns();
      r.timestamp_ns = now;
    }
    r.type = e[i].type;
    r.flags = (uint8_t)((i == 0 ? WALRUS__REC_FIRST : 0) |
                        (i + 1 == n ? WALRUS__REC_LAST : 0) |
                        (i == 0 && !w->group_open ? WALRUS__REC_GROUP : 0));
    r.txid_len = (uint8_t)tl;
    r.epoch = w->epoch;
    walrus__rec_header_encode(hdr, &r);
    uint32_t crc = walrus__rec_crc_start(s->salt, hdr);
    crc = walrus__crc32c(crc, e[i].tx_id, tl);
    crc = walrus__crc32c(crc, e[i].data, e[i].len);
    walrus__put32(hdr, crc);
    uint64_t rsz = walrus__rec_size(r.body_len);
    s->offs[s->count + i] = (uint32_t)pos;
    rc = put(&o, hdr, sizeof hdr);
    if (rc == WALRUS_OK) rc = put(&o, e[i].tx_id, tl);
    if (rc == WALRUS_OK) rc = put(&o, e[i].data, e[i].len);
    if (rc == WALRUS_OK)
      rc = put(&o, zeros, (size_t)(rsz - WALRUS__REC_HEADER_BYTES - r.body_len));
    if (rc != WALRUS_OK) goto undo;
    pos += rsz;
  }
  w->group_open = 1;
  rc = flush(&o);
  if (rc != WALRUS_OK) goto undo;
  w->dirty = 1;
  w->need_mark = 1;
  if (w->cfg.sync == WALRUS_SYNC_ALWAYS) {
    rc = walrus__sync_locked(w);
    if (rc != WALRUS_OK) goto undo;
  }
  walrus__lock_excl(w);
  s->count += n;
  s->end = pos;
  uint64_t first = w->next_index;
  w->next_index += n;
  walrus__unlock(w);
  w->write_off = pos;
  if (first_out != NULL) *first_out = first;
  rc = WALRUS_OK;
  goto out;
undo:
  /* Cut what this unit wrote so that reopening does not find it, then
   * refuse further writes: the state of the file is no longer certain. */
  w->vfs->truncate(w->vfs->ctx, s->file, start);
  walrus__poison(w, rc);
out:
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

int walrus_append(walrus_t *w, const walrus_entry_t *e, uint64_t *index) {
  if (w == NULL || e == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or entry");
  return write_unit(w, e, 1, index);
}

int walrus_write_batch(walrus_t *w, const walrus_entry_t *e, size_t n,
                       uint64_t *first_index) {
  return write_unit(w, e, n, first_index);
}

int walrus_sync(walrus_t *w) {
  int rc;
  if (w == NULL) return WALRUS_EINVAL;
  if (w->cfg.read_only) return WALRUS_OK;
  pthread_mutex_lock(&w->wlock);
  if (w->poisoned)
    rc = walrus__fail(w, WALRUS_EPOISONED, 0,
                      "an earlier %s poisoned the handle; reopen the log",
                      walrus_errname(w->poison_code));
  else
    rc = walrus__sync_mark_locked(w, 0);
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

/* The SYNC_INTERVAL thread: every sync_interval_ms, sync what is dirty.
 * It holds wlock only while it syncs, and exits when close asks. */
void *walrus__syncer_main(void *arg) {
  walrus_t *w = arg;
  pthread_mutex_lock(&w->wlock);
  while (!w->syncer_stop) {
    struct timespec ts = walrus__deadline_ms(w->cfg.sync_interval_ms);
    int e = pthread_cond_timedwait(&w->syncer_cv, &w->wlock, &ts);
    if (w->syncer_stop) break;
    if (e == ETIMEDOUT && !w->poisoned && w->dirty)
      walrus__sync_mark_locked(w, 0);
  }
  pthread_mutex_unlock(&w->wlock);
  return NULL;
}
