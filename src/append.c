/*
 * append.c: the write path (walrus_append, walrus_write_batch) and
 * walrus_sync: validating and encoding units.  How a written unit becomes
 * durable and visible, rotation and the SYNC_INTERVAL thread are
 * commit.c's.
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
 *
 * With cfg.compression ZSTD, a unit whose bodies come to compress_min_bytes
 * or more (and at most max_entry_bytes) is compressed into one zstd frame
 * (format.h: compressed units) and stored so when that takes fewer bytes
 * than the plain records; otherwise it is stored plain, and after such a
 * unit the next 1, 2, 4 ... 128 units are stored plain without trying, so
 * that incompressible data costs little time.  Compression runs under
 * wlock, into the handle's zbuf.  A compressing writer seals a version 1
 * tail that holds records before its first compressed unit: compressed
 * records only go into version 2 segments.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
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

/* The pieces of one unit's encoding: the buffer, where it starts in the
 * file, how much of it is filled; or the mapping it is stored into. */
typedef struct out_s {
  walrus_t *w;         /* handle */
  walrus__seg_t *s;    /* tail being written */
  uint64_t buf_off;    /* file offset of the buffer's first byte (or of the
                          next store) */
  size_t used;         /* bytes filled in the encode buffer */
  unsigned char *map;  /* the tail's mapping, or NULL: write with pwrite */
} out_t;

static int flush(out_t *o) {
  int rc = WALRUS_OK;
  if (o->used > 0)
    rc = walrus__os_write(o->w, o->s->file, o->s->name, o->w->commit.buf,
                          o->used, o->buf_off);
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
  memcpy(o->w->commit.buf + o->used, p, n);
  o->used += n;
  return WALRUS_OK;
}

/* Validate a unit of n entries; *total gets the bytes its records take,
 * *bodies the bytes of its tx ids and payloads. */
static int check_unit(walrus_t *w, const walrus_entry_t *e, size_t n,
                      uint64_t *total, uint64_t *bodies) {
  uint64_t sum = 0, body_sum = 0;
  if (e == NULL || n == 0)
    return walrus__fail(w, WALRUS_EINVAL, 0, "no entries to write");
  for (size_t i = 0; i < n; i++) {
    size_t tl;
    int rc = check_entry(w, &e[i], i, &tl);
    if (rc != WALRUS_OK) return rc;
    sum += walrus__rec_size(e[i].len + tl);
    body_sum += e[i].len + tl;
  }
  /* A unit, its segment's header, index record and trailer must fit in
   * the 4 GiB a segment can address. */
  if (sum + WALRUS__SEG_HEADER_BYTES + walrus__rec_size(4 * (uint64_t)n) +
          WALRUS__TRAILER_BYTES >= WALRUS__SEG_MAX_BYTES)
    return walrus__fail(w, WALRUS_ETOOLARGE, 0,
                        "batch of %zu entries needs %llu bytes, over 4 GiB",
                        n, (unsigned long long)sum);
  *total = sum;
  *bodies = body_sum;
  return WALRUS_OK;
}

/* The mapping a unit of total bytes is stored into (mapped writes), or
 * NULL to write it with pwrite.  Small units only: a store into a fresh
 * page faults it in, which costs more than the copy pwrite makes once a
 * unit spans pages.  Mapping the tail may fail; it poisons the handle
 * itself when the file may have changed (segment.c). */
static int unit_map(walrus_t *w, walrus__seg_t *s, uint64_t total,
                    unsigned char **map) {
  uint64_t start = w->commit.write_off;
  *map = NULL;
  if (!w->commit.mapped || total > WALRUS__MAPPED_UNIT_MAX ||
      start + total > w->cfg.segment_bytes)
    return WALRUS_OK;
  int rc = walrus__seg_map(w, s);
  if (rc == WALRUS_OK && s->map != NULL && start + total <= s->map_len)
    *map = s->map;
  return rc;
}

/* Encode the header of record i of a unit of n (crc still 0): entry e,
 * body_len stored bytes, extra flags.  *now caches the stamp of entries
 * that carry no time. */
static void rec_head(walrus_t *w, const walrus_entry_t *e, size_t i, size_t n,
                     uint32_t body_len, uint8_t extra, int64_t *now,
                     unsigned char hdr[WALRUS__REC_HEADER_BYTES]) {
  walrus__rec_t r;
  r.body_len = body_len;
  r.index = w->commit.write_next + i;
  r.term = e->term;
  r.timestamp_ns = e->timestamp_ns;
  if (r.timestamp_ns == 0) {
    if (*now == 0) *now = walrus__now_ns(w);
    r.timestamp_ns = *now;
  }
  r.type = e->type;
  r.flags = (uint8_t)((i == 0 ? WALRUS__REC_FIRST : 0) |
                      (i + 1 == n ? WALRUS__REC_LAST : 0) |
                      walrus__commit_flags(w, i == 0) | extra);
  r.txid_len = (uint8_t)(e->tx_id ? strlen(e->tx_id) : 0);
  r.epoch = w->commit.epoch;
  walrus__rec_header_encode(hdr, &r);
}

/* Write one record: its header (crc filled in), body pieces a and b, and
 * the padding.  Notes its offset as record k of s. */
static int put_record(out_t *o, unsigned char hdr[WALRUS__REC_HEADER_BYTES],
                      const void *a, size_t alen, const void *b, size_t blen,
                      uint64_t k, uint64_t *pos) {
  static const unsigned char zeros[8] = {0};
  walrus__seg_t *s = o->s;
  uint32_t crc = walrus__rec_crc_start(s->salt, hdr);
  crc = walrus__crc32c(crc, a, alen);
  crc = walrus__crc32c(crc, b, blen);
  walrus__put32(hdr, crc);
  uint64_t rsz = walrus__rec_size(alen + blen);
  s->offs[k] = (uint32_t)*pos;
  int rc = put(o, hdr, WALRUS__REC_HEADER_BYTES);
  if (rc == WALRUS_OK) rc = put(o, a, alen);
  if (rc == WALRUS_OK) rc = put(o, b, blen);
  if (rc == WALRUS_OK)
    rc = put(o, zeros, (size_t)(rsz - WALRUS__REC_HEADER_BYTES - alen - blen));
  *pos += rsz;
  return rc;
}

/* Encode the n records of a unit, framed FIRST ... LAST, and write them to
 * the tail s from its write offset on: stored into map if not NULL, else
 * through the buffer with as few pwrite calls as it allows.  With flen > 0
 * the unit is the compressed one in w->commit.zbuf (compress_unit()): its
 * head and frame of flen bytes start at zhead.  Records each record's
 * offset in s->offs and *end the offset after the last.  Caller holds
 * wlock; room was made. */
static int encode_unit(walrus_t *w, walrus__seg_t *s, unsigned char *map,
                       const walrus_entry_t *e, size_t n,
                       const unsigned char *zhead, size_t flen, uint64_t *end) {
  int64_t now = 0;
  uint64_t pos = w->commit.write_off;
  out_t o = {w, s, pos, 0, map};
  int rc = WALRUS_OK;
  for (size_t i = 0; i < n && rc == WALRUS_OK; i++) {
    unsigned char hdr[WALRUS__REC_HEADER_BYTES];
    uint64_t k = s->written + i;
    if (flen > 0) {
      size_t blen = i == 0 ? WALRUS__ZHEAD_BYTES + flen : 0;
      rec_head(w, &e[i], i, n, (uint32_t)blen, WALRUS__REC_ZSTD, &now, hdr);
      rc = put_record(&o, hdr, zhead, blen, NULL, 0, k, &pos);
    } else {
      size_t tl = e[i].tx_id ? strlen(e[i].tx_id) : 0;
      rec_head(w, &e[i], i, n, (uint32_t)(tl + e[i].len), 0, &now, hdr);
      rc = put_record(&o, hdr, e[i].tx_id, tl, e[i].data, e[i].len, k, &pos);
    }
  }
  if (rc == WALRUS_OK) rc = flush(&o);
  *end = pos;
  return rc;
}

/* ---- compression (format.h: compressed units) --------------------------- */

/* Try compression for a unit whose bodies come to bodies bytes?  Counts
 * down the run of units stored plain after one that did not shrink. */
static int want_compress(walrus_t *w, uint64_t bodies) {
  if (w->cfg.compression != WALRUS_COMPRESSION_ZSTD ||
      bodies < w->cfg.compress_min_bytes || bodies > w->cfg.max_entry_bytes)
    return 0;
  if (w->commit.zskip > 0) {
    w->commit.zskip--;
    return 0;
  }
  return 1;
}

/* A compressed unit goes into a version 2 segment only: seal a version 1
 * tail that holds records (the next unit starts a new segment).  *ok is
 * 0 when the tail is an empty version 1 segment, which takes this unit
 * plain. */
static int zstd_tail(walrus_t *w, int *ok) {
  walrus__seg_t *t = w->store.nsegs ? w->store.segs[w->store.nsegs - 1] : NULL;
  *ok = 1;
  if (t == NULL || t->sealed || t->version >= WALRUS__SEG_VERSION_ZSTD)
    return WALRUS_OK;
  if (t->written == 0) {
    *ok = 0;
    return WALRUS_OK;
  }
  walrus__log(w, WALRUS_LOG_INFO,
              "sealing %s: compressed units start a version 2 segment",
              t->name);
  return walrus__commit_seal_now(w);
}

/* Compress the unit e[0..n) (bodies bytes of tx ids and payloads, plain
 * records of plain bytes) into w->commit.zbuf: its content first, then
 * the head and the frame.  *flen gets the frame's length, or 0 when the
 * compressed records would not be smaller (the unit is stored plain, and
 * the next units skip compression for a while); *ztotal the bytes of the
 * compressed records, *zhead where head and frame start.  WALRUS_ENOMEM
 * leaves the handle usable. */
static int compress_unit(walrus_t *w, const walrus_entry_t *e, size_t n,
                         uint64_t bodies, uint64_t plain, uint64_t *ztotal,
                         unsigned char **zhead, size_t *flen) {
  size_t content = (size_t)(4 * (uint64_t)n + bodies);
  size_t bound = walrus__zstd_bound(content);
  size_t need = content + WALRUS__ZHEAD_BYTES + bound;
  *flen = 0;
  if (w->commit.zctx == NULL) {
    w->commit.zctx = walrus__zstd_cctx_new();
    if (w->commit.zctx == NULL)
      return walrus__fail(w, WALRUS_ENOMEM, 0, "zstd compression context");
  }
  if (need > w->commit.zcap) {
    unsigned char *b = walrus__realloc(w, w->commit.zbuf, need);
    if (b == NULL)
      return walrus__fail(w, WALRUS_ENOMEM, 0, "compression buffer");
    w->commit.zbuf = b;
    w->commit.zcap = need;
  }
  w->commit.zuse++;
  unsigned char *c = w->commit.zbuf, *body = c + 4 * n;
  for (size_t i = 0; i < n; i++) {
    size_t tl = e[i].tx_id ? strlen(e[i].tx_id) : 0;
    walrus__put32(c + 4 * i, (uint32_t)(tl + e[i].len));
    if (tl > 0) memcpy(body, e[i].tx_id, tl);
    if (e[i].len > 0) memcpy(body + tl, e[i].data, e[i].len);
    body += tl + e[i].len;
  }
  unsigned char *head = c + content;
  size_t got = walrus__zstd_compress(w->commit.zctx, head + WALRUS__ZHEAD_BYTES,
                                     bound, c, content, w->cfg.compress_level);
  uint64_t total = walrus__rec_size(WALRUS__ZHEAD_BYTES + (uint64_t)got) +
                   (uint64_t)WALRUS__REC_HEADER_BYTES * (n - 1);
  if (got == 0 || total >= plain) {
    uint32_t b = w->commit.zbackoff;
    w->commit.zbackoff = b == 0 ? 1 : (b >= 128 ? 128 : 2 * b);
    w->commit.zskip = w->commit.zbackoff;
    return WALRUS_OK;
  }
  w->commit.zbackoff = 0;
  walrus__put32(head, (uint32_t)content);
  walrus__put32(head + 4, (uint32_t)n);
  *zhead = head;
  *flen = got;
  *ztotal = total;
  return WALRUS_OK;
}

/* Take wlock, by deadline (CLOCK_MONOTONIC nanoseconds) if not 0. */
static int lock_writer(walrus_t *w, int64_t deadline) {
  if (deadline == 0) {
    pthread_mutex_lock(&w->wlock);
    return WALRUS_OK;
  }
  if (walrus__mutex_lock_until(&w->wlock, deadline) == 0) return WALRUS_OK;
  return walrus__fail(w, WALRUS_ETIMEDOUT, 0,
                      "no entry written: the writer lock stayed busy "
                      "past the deadline");
}

/* Write one unit (validated: its plain records take total bytes, its
 * bodies bodies; the caller holds wlock): compress it if the handle does
 * and it pays, make room, encode and write it, and count it (commit.c).
 * *seq gets its sequence number for walrus__commit_wait().  A write that
 * fails cuts what it wrote and poisons the handle; ENOMEM leaves nothing
 * written. */
static int write_one(walrus_t *w, const walrus__unit_t *u, uint64_t total,
                     uint64_t bodies, uint64_t *first, uint64_t *seq) {
  walrus__seg_t *s = NULL;
  uint64_t end = 0;
  unsigned char *zhead = NULL;
  size_t flen = 0;
  int rc;
  if (want_compress(w, bodies)) {
    int ok;
    rc = zstd_tail(w, &ok);
    if (rc == WALRUS_OK && ok)
      rc = compress_unit(w, u->e, u->n, bodies, total, &total, &zhead, &flen);
    if (rc != WALRUS_OK) return rc;
  }
  uint64_t zuse = w->commit.zuse;
  rc = walrus__commit_room(w, total, u->n, &s);
  if (rc != WALRUS_OK) return rc;
  if (flen > 0 && zuse != w->commit.zuse) {
    /* Another writer compressed into zbuf while room was made (a wait for
     * a sync drops wlock): compress again; zstd is deterministic, so the
     * frame has the same length. */
    uint64_t again = 0;
    size_t flen2 = 0;
    rc = compress_unit(w, u->e, u->n, bodies, UINT64_MAX, &again, &zhead,
                       &flen2);
    if (rc != WALRUS_OK) return rc;
    if (flen2 != flen || again != total)
      return walrus__fail(w, WALRUS_EIO_WRITE, 0, "zstd output changed");
  }
  assert(flen == 0 || s->version >= WALRUS__SEG_VERSION_ZSTD);
  if (s->written + u->n > s->offs_cap) {
    walrus__lock_excl(w);
    rc = walrus__seg_reserve(w, s, s->written - s->count + u->n);
    walrus__unlock(w);
    if (rc != WALRUS_OK) return rc; /* ENOMEM: nothing written */
  }
  uint64_t start = w->commit.write_off;
  unsigned char *map;
  rc = unit_map(w, s, total, &map);
  if (rc != WALRUS_OK) return rc;
  rc = encode_unit(w, s, map, u->e, u->n, zhead, flen, &end);
  if (rc != WALRUS_OK) {
    /* Cut what was written and not made durable, so that reopening does
     * not find it, then refuse further writes: the file's state is
     * uncertain. */
    return walrus__commit_fail(w, rc);
  }
  *seq = walrus__commit_written(w, s, u->n, end, first);
  walrus__stats_write(w, u->n, end - start);
  return WALRUS_OK;
}

int walrus__write_units(walrus_t *w, const walrus__unit_t *u, size_t nu,
                        uint64_t *firsts, size_t *done, int64_t deadline) {
  uint64_t total = 0, bodies = 0, seq = 0, count = 0;
  size_t written = 0;
  int rc = WALRUS_OK, locked = 1;

  *done = 0;
  if (w == NULL) return WALRUS_EINVAL;
  for (size_t i = 0; i < nu && rc == WALRUS_OK; i++) {
    firsts[i] = 0;
    rc = check_unit(w, u[i].e, u[i].n, &total, &bodies);
    count += u[i].n;
  }
  if (rc != WALRUS_OK) return rc;

  rc = lock_writer(w, deadline);
  if (rc != WALRUS_OK) return rc;
  rc = walrus__writable(w);
  if (rc != WALRUS_OK) goto out;
  if (count > WALRUS_INDEX_MAX ||
      w->commit.write_next > WALRUS_INDEX_MAX - (count - 1)) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "indexes would pass WALRUS_INDEX_MAX (%llu)",
                      (unsigned long long)WALRUS_INDEX_MAX);
    goto out;
  }
  for (; written < nu; written++) {
    /* checked above */
    check_unit(w, u[written].e, u[written].n, &total, &bodies);
    rc = write_one(w, &u[written], total, bodies, &firsts[written], &seq);
    if (rc != WALRUS_OK) break;
  }
  /* What was written becomes durable together: one wait, so one
   * fdatasync for all the units when no other writer shares it.  The wait
   * releases wlock. */
  if (written > 0 && w->cfg.sync == WALRUS_SYNC_ALWAYS) {
    int wrc = walrus__commit_wait(w, seq, deadline);
    locked = 0;
    if (wrc == WALRUS_ETIMEDOUT)
      walrus__fail(w, WALRUS_ETIMEDOUT, 0,
                   "entries %llu..%llu are written but not yet durable: "
                   "the group commit they wait in ran past the deadline; "
                   "walrus_sync() makes them durable",
                   (unsigned long long)firsts[0],
                   (unsigned long long)(firsts[written - 1] +
                                        u[written - 1].n - 1));
    if (rc == WALRUS_OK) rc = wrc;
  }
  /* Units are written in order, so those in the log form a prefix: the
   * ones below the published next index (after a failure, what a seal had
   * already made durable). */
  walrus__lock_shared(w);
  uint64_t next = w->store.next_index;
  walrus__unlock(w);
  for (size_t i = 0; i < written; i++) {
    if (rc == WALRUS_ETIMEDOUT || firsts[i] + u[i].n <= next) {
      (*done)++;
    } else {
      firsts[i] = 0;
    }
  }
  for (size_t i = *done; i < nu; i++) firsts[i] = 0;
out:
  if (locked) pthread_mutex_unlock(&w->wlock);
  return rc;
}

/* One unit, without a deadline. */
static int write_unit(walrus_t *w, const walrus_entry_t *e, size_t n,
                      uint64_t *first_out, int64_t deadline) {
  walrus__unit_t u = {e, n};
  uint64_t first = 0;
  size_t done;
  int rc = walrus__write_units(w, &u, 1, &first, &done, deadline);
  if (first_out != NULL && (rc == WALRUS_OK || rc == WALRUS_ETIMEDOUT))
    *first_out = first;
  return rc;
}

int walrus_append(walrus_t *w, const walrus_entry_t *e, uint64_t *index) {
  if (w == NULL || e == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or entry");
  return write_unit(w, e, 1, index, 0);
}

int walrus_append_deadline(walrus_t *w, const walrus_entry_t *e,
                           uint32_t timeout_ms, uint64_t *index) {
  if (w == NULL || e == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or entry");
  return write_unit(w, e, 1, index,
                    walrus__mono_ns() + (int64_t)timeout_ms * 1000000);
}

int walrus_write_batch(walrus_t *w, const walrus_entry_t *e, size_t n,
                       uint64_t *first_index) {
  return write_unit(w, e, n, first_index, 0);
}

int walrus_sync(walrus_t *w) {
  int rc;
  if (w == NULL) return WALRUS_EINVAL;
  if (w->cfg.read_only) return WALRUS_OK;
  pthread_mutex_lock(&w->wlock);
  if (w->commit.poisoned)
    rc = walrus__fail(w, WALRUS_EPOISONED, 0,
                      "an earlier %s poisoned the handle; reopen the log",
                      walrus_errname(w->commit.poison_code));
  else
    rc = walrus__sync_mark_locked(w, 0);
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

