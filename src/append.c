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
 * With mapped writes (segment.c) the records of a unit of up to
 * WALRUS__MAPPED_UNIT_MAX bytes are encoded straight into the mapped tail
 * instead: no system call at all.
 *
 * A unit never spans segments: if it would carry the tail past
 * segment_bytes the tail is sealed first and a new segment started.  A
 * unit larger than segment_bytes gets a segment of its own.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Largest unit stored through the mapping; bigger ones use pwrite. */
#define WALRUS__MAPPED_UNIT_MAX (16 * 1024)

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

/* Make the entries written up to a capture visible to readers: the
 * tail's published count and end, and the next index.  Never moves
 * anything backwards.  Caller holds wlock. */
static void publish(walrus_t *w, walrus__seg_t *t, uint64_t count,
                    uint64_t end, uint64_t next) {
  walrus__lock_excl(w);
  if (t->count < count) {
    t->count = count;
    t->end = end;
  }
  if (w->next_index < next) w->next_index = next;
  walrus__unlock(w);
}

/* What one sync covers: everything written when it was captured. */
typedef struct capture_s {
  walrus__seg_t *t; /* the tail */
  uint64_t count;   /* records written to it */
  uint64_t end;     /* where they end */
  uint64_t next;    /* the next index to assign */
  uint64_t seq;     /* the last unit written */
} capture_t;

/* Capture what a sync is about to cover and start a new sync group: the
 * next record written gets the next epoch and GROUP.  Caller holds wlock;
 * the tail has unsynced writes. */
static capture_t capture(walrus_t *w) {
  capture_t c;
  c.t = w->segs[w->nsegs - 1];
  c.count = c.t->written;
  c.end = w->write_off;
  c.next = w->write_next;
  c.seq = w->write_seq;
  w->dirty = 0;
  w->epoch++;
  w->group_open = 0;
  return c;
}

/* A sync or write failed: poison, and cut the tail back to what is
 * published (durable under SYNC_ALWAYS), so that nothing a caller was
 * told failed is found after reopening.  Waiters are woken to see it.
 * Caller holds wlock. */
static int fail_writes(walrus_t *w, int rc) {
  walrus__poison(w, rc);
  if (w->nsegs > 0) {
    walrus__seg_t *t = w->segs[w->nsegs - 1];
    if (!t->sealed) {
      walrus__seg_unmap(w, t);
      t->prealloc = 0;
      w->vfs->truncate(w->vfs->ctx, t->file, t->end);
      t->written = t->count;
      w->write_off = t->end;
    }
  }
  w->write_next = w->next_index;
  pthread_cond_broadcast(&w->sync_cv);
  return rc;
}

/* Sync everything written so far and publish it, waiting first for a
 * group commit in flight.  Holds wlock throughout (the caller's).  A
 * failure poisons the handle. */
int walrus__sync_locked(walrus_t *w) {
  while (w->sync_running) pthread_cond_wait(&w->sync_cv, &w->wlock);
  if (w->poisoned) return w->poison_code;
  if (!w->dirty || w->nsegs == 0) return WALRUS_OK;
  capture_t c = capture(w);
  int rc = walrus__os_sync(w, c.t->file, c.t->name);
  if (rc != WALRUS_OK) return fail_writes(w, rc);
  publish(w, c.t, c.count, c.end, c.next);
  if (w->durable_seq < c.seq) w->durable_seq = c.seq;
  walrus__durable_set(w, c.next, 0);
  pthread_cond_broadcast(&w->sync_cv);
  return WALRUS_OK;
}

/* Group commit: wait until unit seq is durable.  One writer at a time is
 * the leader: it captures everything written so far, drops wlock for the
 * fdatasync, and publishes what it covered; writers that arrive meanwhile
 * write their units and wait, and the next leader covers them all with
 * one fdatasync.  Caller holds wlock. */
static int wait_durable(walrus_t *w, uint64_t seq) {
  while (w->durable_seq < seq) {
    if (w->poisoned) return w->poison_code;
    if (w->sync_running) {
      pthread_cond_wait(&w->sync_cv, &w->wlock);
      continue;
    }
    capture_t c = capture(w);
    w->sync_running = 1;
    pthread_mutex_unlock(&w->wlock);
    int rc = walrus__os_sync(w, c.t->file, c.t->name);
    pthread_mutex_lock(&w->wlock);
    w->sync_running = 0;
    if (rc != WALRUS_OK) return fail_writes(w, rc);
    if (w->poisoned) {
      /* Another writer failed while this sync ran, and cut the file. */
      pthread_cond_broadcast(&w->sync_cv);
      return w->poison_code;
    }
    publish(w, c.t, c.count, c.end, c.next);
    if (w->durable_seq < c.seq) w->durable_seq = c.seq;
    walrus__durable_set(w, c.next, 0);
    pthread_cond_broadcast(&w->sync_cv);
  }
  return WALRUS_OK;
}

/* Under SYNC_ALWAYS, make every unit written so far durable and visible
 * before the caller changes the layout (truncation, reset).  Under the
 * other policies every write is published when it returns.  Caller holds
 * wlock. */
int walrus__drain_locked(walrus_t *w) {
  if (w->cfg.sync != WALRUS_SYNC_ALWAYS) return WALRUS_OK;
  return walrus__sync_locked(w);
}

/* Sync, then leave a sync mark after the entries just made durable, so
 * that recovery can tell them from a torn group even when nothing follows
 * them (format.h).  With durable, the mark is synced too (close); else the
 * next sync covers it.  Caller holds wlock. */
int walrus__sync_mark_locked(walrus_t *w, int durable) {
  int rc = walrus__sync_locked(w);
  if (rc != WALRUS_OK || !w->need_mark || w->nsegs == 0) return rc;
  walrus__seg_t *t = w->segs[w->nsegs - 1];
  if (t->sealed || t->written == 0) return WALRUS_OK;
  rc = walrus__write_mark(w, t, w->write_off, w->write_next - 1, 0);
  if (rc != WALRUS_OK) return rc;
  w->write_off += WALRUS__REC_HEADER_BYTES;
  w->need_mark = 0;
  w->group_open = 1; /* the mark opened a group, with no sync running */
  w->group_overlap = 0;
  w->dirty = 1;
  return durable ? walrus__sync_locked(w) : WALRUS_OK;
}

/* Write a mark record (format.h) naming entry index at off of tail t:
 * MARK|GROUP, plus LAST when it closes a unit that truncate_back cut out
 * of a batch.  A failure cuts it off again and poisons the handle.  Caller
 * holds wlock. */
int walrus__write_mark(walrus_t *w, walrus__seg_t *t, uint64_t off,
                       uint64_t index, uint8_t extra_flags) {
  unsigned char hdr[WALRUS__REC_HEADER_BYTES];
  walrus__rec_t r = {0};
  r.index = index;
  r.timestamp_ns = walrus__now_ns();
  r.flags = (uint8_t)(WALRUS__REC_MARK | WALRUS__REC_GROUP | extra_flags);
  r.epoch = w->epoch;
  walrus__rec_header_encode(hdr, &r);
  walrus__put32(hdr, walrus__rec_crc(t->salt, hdr, NULL, 0));
  int rc = walrus__os_write(w, t->file, t->name, hdr, sizeof hdr, off);
  if (rc != WALRUS_OK) {
    walrus__seg_unmap(w, t);
    t->prealloc = 0;
    w->vfs->truncate(w->vfs->ctx, t->file, off);
    return walrus__poison(w, rc);
  }
  return WALRUS_OK;
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
 * file, how much of it is filled; or the mapping it is stored into. */
typedef struct out_s {
  walrus_t *w;         /* handle */
  walrus__seg_t *s;    /* tail being written */
  uint64_t buf_off;    /* file offset of w->buf[0] (or of the next store) */
  size_t used;         /* bytes filled in w->buf */
  unsigned char *map;  /* the tail's mapping, or NULL: write with pwrite */
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
  if (o->map != NULL) {
    memcpy(o->map + o->buf_off, p, n);
    o->buf_off += n;
    return WALRUS_OK;
  }
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
  if (w->write_next > WALRUS_INDEX_MAX - (n - 1)) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "indexes would pass WALRUS_INDEX_MAX (%llu)",
                      (unsigned long long)WALRUS_INDEX_MAX);
    goto out;
  }

  /* Make room: seal a full tail, start a new one.  Both change the tail a
   * group commit leader may be syncing, so they wait for it first, and
   * everything is decided again after any wait. */
  walrus__seg_t *s;
  for (;;) {
    s = w->nsegs ? w->segs[w->nsegs - 1] : NULL;
    int full = 0;
    if (s != NULL && !s->sealed && s->written > 0) {
      uint64_t after = w->write_off + total;
      uint64_t seal = walrus__rec_size(4 * (s->written + n)) +
                      WALRUS__TRAILER_BYTES;
      full = after > w->cfg.segment_bytes ||
             after + seal >= WALRUS__SEG_MAX_BYTES;
    }
    if (!full && s != NULL && !s->sealed) break;
    if (w->sync_running) {
      pthread_cond_wait(&w->sync_cv, &w->wlock);
      rc = writable(w);
      if (rc != WALRUS_OK) goto out;
      continue;
    }
    if (full) {
      rc = walrus__seg_seal(w);
      if (rc != WALRUS_OK) goto out;
      continue;
    }
    rc = walrus__seg_create(w, w->write_next);
    if (rc != WALRUS_OK) goto out;
    if (s != NULL) { /* a rotation */
      rc = walrus__retain(w);
      if (rc != WALRUS_OK) goto out;
    }
  }
  if (s->written + n > s->offs_cap) {
    walrus__lock_excl(w);
    rc = walrus__seg_reserve(w, s, s->written - s->count + n);
    walrus__unlock(w);
    if (rc != WALRUS_OK) goto out; /* ENOMEM: nothing written, still usable */
  }

  int64_t now = 0;
  uint64_t start = w->write_off, pos = start;
  out_t o = {w, s, start, 0, NULL};
  /* Small units only: a store into a fresh page faults it in, which costs
   * more than the copy pwrite makes once a unit spans pages. */
  if (w->mapped && total <= WALRUS__MAPPED_UNIT_MAX &&
      start + total <= w->cfg.segment_bytes) {
    rc = walrus__seg_map(w, s);
    if (rc != WALRUS_OK) goto out;
    if (s->map != NULL && start + total <= s->map_len) o.map = s->map;
  }
  for (i = 0; i < n; i++) {
    unsigned char hdr[WALRUS__REC_HEADER_BYTES];
    size_t tl = e[i].tx_id ? strlen(e[i].tx_id) : 0;
    walrus__rec_t r;
    r.body_len = (uint32_t)(tl + e[i].len);
    r.index = w->write_next + i;
    r.term = e[i].term;
    r.timestamp_ns = e[i].timestamp_ns;
    if (r.timestamp_ns == 0) {
      if (now == 0) now = walrus__now_ns();
      r.timestamp_ns = now;
    }
    r.type = e[i].type;
    r.flags = (uint8_t)((i == 0 ? WALRUS__REC_FIRST : 0) |
                        (i + 1 == n ? WALRUS__REC_LAST : 0));
    if (i == 0 && !w->group_open) {
      r.flags |= WALRUS__REC_GROUP;
      w->group_overlap = w->sync_running;
    }
    /* Every record of a group that began during the previous group's sync
     * says so, so that the evidence survives the loss of its first. */
    if (w->group_overlap) r.flags |= WALRUS__REC_OVERLAP;
    r.txid_len = (uint8_t)tl;
    r.epoch = w->epoch;
    walrus__rec_header_encode(hdr, &r);
    uint32_t crc = walrus__rec_crc_start(s->salt, hdr);
    crc = walrus__crc32c(crc, e[i].tx_id, tl);
    crc = walrus__crc32c(crc, e[i].data, e[i].len);
    walrus__put32(hdr, crc);
    uint64_t rsz = walrus__rec_size(r.body_len);
    s->offs[s->written + i] = (uint32_t)pos;
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
  uint64_t first = w->write_next;
  s->written += n;
  w->write_next += n;
  w->write_off = pos;
  w->dirty = 1;
  w->need_mark = 1;
  uint64_t seq = ++w->write_seq;
  if (w->cfg.sync == WALRUS_SYNC_ALWAYS) {
    rc = wait_durable(w, seq);
  } else {
    /* It has reached the kernel, so a process crash cannot lose it. */
    publish(w, s, s->written, pos, w->write_next);
    w->durable_seq = seq;
  }
  if (rc == WALRUS_OK) {
    walrus__stats_write(w, n, pos - start);
    if (first_out != NULL) *first_out = first;
  }
  goto out;
undo:
  /* Cut what was written and not made durable, so that reopening does not
   * find it, then refuse further writes: the file's state is uncertain. */
  fail_writes(w, rc);
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
