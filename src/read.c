/*
 * read.c: reading by index: walrus_get(), walrus_get_view(), the range
 * reads, the batched reads (walrus_get_many*), walrus_entry_free() and
 * walrus_view_release().
 *
 * A lookup is a binary search of the segment table for the segment, then
 * the record's offset from that segment's index (in memory for the tail,
 * loaded and verified on first use for a sealed segment), then the record
 * itself: from the segment's read-only mapping (rmap.c) for a view, or for
 * walrus_get() with cfg.zero_copy, else one pread of exactly the record.
 * Its CRC, index and framing are checked before a byte is returned.
 * Readers hold the table lock shared, so they never wait for an append's
 * fsync, and a segment that is ready (loaded) needs no pin while they do.
 *
 * An entry from walrus_get() is one allocation: a 16-byte prefix naming
 * the allocator to free it with, the payload, then the tx id and its NUL.
 * A view borrows a reference to the mapping and allocates nothing.
 *
 * An entry of a compressed unit (format.h) has its body in the unit's
 * first record: that record is found from the segment's offsets (the
 * unit's other records are 40 bytes each), its frame decompressed into a
 * walrus__zunit_t, bounded by max_entry_bytes and checked to the byte,
 * and the entry copied out of it; a view of one owns that copy.  A range
 * or batched read keeps the unit it decompressed for the entries after;
 * walrus_get and walrus_get_view share the handle's cache of the last
 * unit (cached_entry()), so that reading a unit's entries one by one
 * decompresses it once.
 */
#include <string.h>

#include "internal.h"

typedef struct block_prefix_s {
  void (*free_fn)(void *ud, void *ptr); /* the allocator's free */
  void *ud;                             /* its user pointer */
} block_prefix_t;

#define PREFIX_BYTES 16

/* Read record index of s into a new entry with pread.  Caller holds the
 * lock, and s is ready or pinned.  A record of a compressed unit gives
 * WALRUS__VIEW_COMPRESSED with out's header fields set and *zhdr its
 * flags and txid_len; nothing is allocated then. */
int walrus__read_record(walrus_t *w, walrus__seg_t *s, uint64_t index,
                        walrus_entry_t *out, unsigned char zhdr[2]) {
  uint64_t k = index - s->first;
  uint64_t off = s->offs[k];
  uint64_t end = k + 1 < s->count ? s->offs[k + 1]
                                  : (s->sealed ? s->index_offset : s->end);
  walrus__rec_t r;
  int rc;
  if (end <= off || end - off < WALRUS__REC_HEADER_BYTES ||
      end - off > walrus__rec_size(WALRUS__BODY_MAX))
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: record %llu at offset %llu has a bad extent",
                        w->dir, s->name, (unsigned long long)index,
                        (unsigned long long)off);
  size_t len = (size_t)(end - off);
  unsigned char *block = walrus__malloc(w, PREFIX_BYTES + len + 1);
  if (block == NULL)
    return walrus__fail(w, WALRUS_ENOMEM, 0, "entry %llu",
                        (unsigned long long)index);
  unsigned char *rec = block + PREFIX_BYTES;
  rc = walrus__os_read_full(w, s->file, s->name, rec, len, off);
  if (rc != WALRUS_OK) goto fail;
  switch (walrus__rec_check(s->salt, rec, len, &r)) {
    case WALRUS__FMT_OK:
      break;
    case WALRUS__FMT_BAD_CRC:
      rc = walrus__fail(w, WALRUS_ECHECKSUM, 0,
                        "%s/%s: record %llu at offset %llu fails its "
                        "checksum",
                        w->dir, s->name, (unsigned long long)index,
                        (unsigned long long)off);
      goto fail;
    default:
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: record %llu at offset %llu is malformed",
                        w->dir, s->name, (unsigned long long)index,
                        (unsigned long long)off);
      goto fail;
  }
  /* The extent may end in a sync mark (format.h), so the record may be
   * shorter than it, never longer. */
  if (r.index != index || (r.flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)) ||
      WALRUS__REC_HEADER_BYTES + (uint64_t)r.body_len > len) {
    rc = walrus__fail(
        w, WALRUS_ECORRUPT, 0, "%s/%s: record at offset %llu is not entry %llu",
        w->dir, s->name, (unsigned long long)off, (unsigned long long)index);
    goto fail;
  }
  if (r.flags & WALRUS__REC_ZSTD) {
    walrus__free(w, block);
    out->index = r.index;
    out->term = r.term;
    out->timestamp_ns = r.timestamp_ns;
    out->checksum = r.crc;
    out->type = r.type;
    zhdr[0] = r.flags;
    zhdr[1] = r.txid_len;
    return WALRUS__VIEW_COMPRESSED;
  }
  char txid[256];
  size_t paylen = r.body_len - r.txid_len;
  memcpy(txid, rec + WALRUS__REC_HEADER_BYTES, r.txid_len);
  memmove(rec, rec + WALRUS__REC_HEADER_BYTES + r.txid_len, paylen);
  memcpy(rec + paylen, txid, r.txid_len);
  rec[paylen + r.txid_len] = '\0';
  block_prefix_t pre = {w->alloc.free_fn, w->alloc.ud};
  memcpy(block, &pre, sizeof pre);
  out->index = r.index;
  out->term = r.term;
  out->timestamp_ns = r.timestamp_ns;
  out->checksum = r.crc;
  out->type = r.type;
  out->tx_id = r.txid_len ? (const char *)rec + paylen : NULL;
  out->data = rec;
  out->len = paylen;
  return WALRUS_OK;
fail:
  walrus__free(w, block);
  return rc;
}

/* ---- compressed units ----------------------------------------------- */

/* A compressed unit that cannot be read: why, naming file and offset. */
static int zfail(walrus_t *w, int code, const char *name, uint64_t off,
                 const char *why) {
  return walrus__fail(w, code, 0, "%s/%s: compressed unit at offset %llu: %s",
                      w->dir, name, (unsigned long long)off, why);
}

int walrus__zunit_decode(walrus_t *w, uint32_t version, const char *name,
                         uint64_t off, const unsigned char *rec, uint64_t index,
                         walrus__zunit_t *u) {
  uint32_t body_len = walrus__get32(rec + 4), content, count;
  uint64_t first = walrus__get64(rec + 8);
  uint8_t flags = rec[34];
  u->count = 0;
  if (!(flags & WALRUS__REC_ZSTD) || !(flags & WALRUS__REC_FIRST) ||
      body_len < WALRUS__ZHEAD_BYTES)
    return zfail(w, WALRUS_ECORRUPT, name, off, "its first record is not one");
  if (version < WALRUS__SEG_VERSION_ZSTD)
    return zfail(w, WALRUS_ECORRUPT, name, off, "in a version 1 segment");
  if (!walrus__zstd_built())
    return zfail(w, WALRUS_ENOTSUP, name, off,
                 "this build of walrus has no zstd to decompress it");
  const unsigned char *head = rec + WALRUS__REC_HEADER_BYTES;
  if (!walrus__zhead_decode(head, w->cfg.max_entry_bytes, &content, &count)) {
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: compressed unit at offset %llu claims %u "
                        "bytes in %u entries (at most max_entry_bytes %u)",
                        w->dir, name, (unsigned long long)off, content, count,
                        w->cfg.max_entry_bytes);
  }
  if (index < first || index - first >= count)
    return zfail(w, WALRUS_ECORRUPT, name, off, "it does not hold the entry");
  if (content > u->cap) {
    unsigned char *b = walrus__realloc(w, u->buf, content);
    if (b == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "unit content");
    u->buf = b;
    u->cap = content;
  }
  if (count > u->ends_cap) {
    uint32_t *e = walrus__realloc(w, u->ends, (size_t)count * sizeof *e);
    if (e == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "unit content");
    u->ends = e;
    u->ends_cap = count;
  }
  if (u->dctx == NULL && (u->dctx = walrus__zstd_dctx_new()) == NULL)
    return walrus__fail(w, WALRUS_ENOMEM, 0, "zstd decompression context");
  if (!walrus__zstd_decompress(u->dctx, u->buf, content,
                               head + WALRUS__ZHEAD_BYTES,
                               body_len - WALRUS__ZHEAD_BYTES))
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: compressed unit at offset %llu does not "
                        "decompress to the %u bytes its record says",
                        w->dir, name, (unsigned long long)off, content);
  uint64_t pos = 4 * (uint64_t)count;
  for (uint32_t k = 0; k < count; k++) {
    pos += walrus__get32(u->buf + 4 * (size_t)k);
    if (pos > content) break;
    u->ends[k] = (uint32_t)pos;
  }
  if (pos != content)
    return zfail(w, WALRUS_ECORRUPT, name, off,
                 "its entry lengths do not add up to its content");
  u->first = first;
  u->count = count;
  return WALRUS_OK;
}

int walrus__zunit_entry(walrus_t *w, const walrus__zunit_t *u, const char *name,
                        uint64_t off, uint64_t index, unsigned txid_len,
                        walrus_entry_t *out, char txid[256]) {
  if (u->count == 0 || index < u->first || index - u->first >= u->count)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: compressed record %llu at offset %llu is "
                        "not in the unit before it",
                        w->dir, name, (unsigned long long)index,
                        (unsigned long long)off);
  size_t k = (size_t)(index - u->first);
  uint32_t start = k > 0 ? u->ends[k - 1] : 4 * u->count;
  uint32_t len = u->ends[k] - start;
  if (txid_len > len)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: record %llu at offset %llu: tx id longer "
                        "than its body",
                        w->dir, name, (unsigned long long)index,
                        (unsigned long long)off);
  const unsigned char *body = u->buf + start;
  out->tx_id = NULL;
  if (txid_len > 0) {
    memcpy(txid, body, txid_len);
    txid[txid_len] = '\0';
    out->tx_id = txid;
  }
  out->data = body + txid_len;
  out->len = len - txid_len;
  return WALRUS_OK;
}

/* The 40-byte header of the record at off of s: in the mapping, or read
 * into buf.  *p points at it. */
static int head_at(walrus_t *w, walrus__seg_t *s, uint64_t off,
                   unsigned char buf[WALRUS__REC_HEADER_BYTES],
                   const unsigned char **p) {
  const walrus__rmap_t *m =
      atomic_load_explicit(&s->rmap, memory_order_acquire);
  if (m != NULL && off + WALRUS__REC_HEADER_BYTES <= m->len) {
    *p = m->addr + off;
    return WALRUS_OK;
  }
  *p = buf;
  return walrus__os_read_full(w, s->file, s->name, buf,
                              WALRUS__REC_HEADER_BYTES, off);
}

/* The first record of the compressed unit that holds entry index of s:
 * *j gets its number in s and *crc the crc its header carries.  *z is 0
 * (nothing else set) when record index is not compressed.  The first
 * record is the nearest record at or before index that is not 40 bytes
 * (a record of a compressed unit after the first has no body, and no
 * sync mark falls inside a unit); record index itself may be the first,
 * whatever its extent says. */
static int zunit_first(walrus_t *w, walrus__seg_t *s, uint64_t index,
                       uint64_t *j, uint32_t *crc, int *z) {
  unsigned char buf[WALRUS__REC_HEADER_BYTES];
  const unsigned char *p;
  uint64_t k = index - s->first;
  int rc = head_at(w, s, s->offs[k], buf, &p);
  *z = 0;
  if (rc != WALRUS_OK || !(p[34] & WALRUS__REC_ZSTD)) return rc;
  *z = 1;
  *j = k;
  if (!(p[34] & WALRUS__REC_FIRST)) {
    if (k == 0)
      return zfail(w, WALRUS_ECORRUPT, s->name, s->offs[k],
                   "the segment starts inside it");
    uint64_t i = k;
    do i--;
    while (i > 0 && s->offs[i + 1] - s->offs[i] == WALRUS__REC_HEADER_BYTES);
    *j = i;
    rc = head_at(w, s, s->offs[i], buf, &p);
    if (rc != WALRUS_OK) return rc;
  }
  *crc = walrus__get32(p);
  return WALRUS_OK;
}

/* Read record j of s, the first of a compressed unit, check it whole
 * (crc, index) and decode it into u for entry index; *crc gets the crc it
 * carries. */
static int zunit_read(walrus_t *w, walrus__seg_t *s, uint64_t j, uint64_t index,
                      walrus__zunit_t *u, uint32_t *crc) {
  const walrus__rmap_t *m =
      atomic_load_explicit(&s->rmap, memory_order_acquire);
  uint64_t off = s->offs[j];
  uint64_t end = j + 1 < s->count ? s->offs[j + 1]
                                  : (s->sealed ? s->index_offset : s->end);
  const unsigned char *p;
  u->count = 0;
  if (end <= off ||
      end - off < WALRUS__REC_HEADER_BYTES + WALRUS__ZHEAD_BYTES ||
      end - off > walrus__rec_size(WALRUS__BODY_MAX))
    return zfail(w, WALRUS_ECORRUPT, s->name, off, "bad extent");
  size_t len = (size_t)(end - off);
  unsigned char *own = NULL;
  if (m != NULL && end <= m->len) {
    p = m->addr + off;
  } else {
    own = walrus__malloc(w, len);
    if (own == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "unit record");
    int rc = walrus__os_read_full(w, s->file, s->name, own, len, off);
    if (rc != WALRUS_OK) {
      walrus__free(w, own);
      return rc;
    }
    p = own;
  }
  walrus__rec_t r;
  int rc;
  switch (walrus__rec_check(s->salt, p, len, &r)) {
    case WALRUS__FMT_OK:
      rc = r.index == s->first + j
               ? walrus__zunit_decode(w, s->version, s->name, off, p, index, u)
               : zfail(w, WALRUS_ECORRUPT, s->name, off, "wrong index");
      if (rc == WALRUS_OK) {
        u->seg = s;
        *crc = r.crc;
      }
      break;
    case WALRUS__FMT_BAD_CRC:
      rc = walrus__fail(w, WALRUS_ECHECKSUM, 0,
                        "%s/%s: record %llu at offset %llu fails its "
                        "checksum",
                        w->dir, s->name, (unsigned long long)(s->first + j),
                        (unsigned long long)off);
      break;
    default:
      rc = zfail(w, WALRUS_ECORRUPT, s->name, off, "malformed first record");
  }
  walrus__free(w, own);
  return rc;
}

int walrus__zunit_load(walrus_t *w, walrus__seg_t *s, uint64_t index,
                       walrus__zunit_t *u) {
  uint64_t j;
  uint32_t crc;
  int z;
  int rc = zunit_first(w, s, index, &j, &crc, &z);
  if (rc != WALRUS_OK || !z) { /* not compressed: u left empty */
    u->count = 0;
    return rc;
  }
  /* u holds the unit only if it starts at record j: after a truncate_back
   * inside a unit its frame holds more entries than the unit has records,
   * and the entries after the cut belong to later units. */
  if (u->count > 0 && u->seg == s && u->first == s->first + j &&
      index - u->first < u->count)
    return WALRUS_OK;
  return zunit_read(w, s, j, index, u, &crc);
}

void walrus__zunit_free(walrus_t *w, walrus__zunit_t *u) {
  walrus__free(w, u->buf);
  walrus__free(w, u->ends);
  walrus__zstd_dctx_free(u->dctx);
  memset(u, 0, sizeof *u);
}

/* Where the record of entry index (in s) lies: [*off, *end).  The extent
 * may end in a sync mark (format.h), so the record may be shorter than it,
 * never longer.  Caller holds the lock, and s is ready or pinned. */
static void extent(const walrus__seg_t *s, uint64_t index, uint64_t *off,
                   uint64_t *end) {
  uint64_t k = index - s->first;
  *off = s->offs[k];
  *end = k + 1 < s->count ? s->offs[k + 1]
                          : (s->sealed ? s->index_offset : s->end);
}

/* The segment holding index, ready to read until the lock is released.
 * Caller holds the lock shared. */
static int locate(walrus_t *w, uint64_t index, walrus__seg_t **out) {
  if (index == 0 || index < w->store.first_index ||
      index >= w->store.next_index) {
    if (w->store.first_index == w->store.next_index)
      return walrus__fail(w, WALRUS_EINDEX, 0, "index %llu: the log is empty",
                          (unsigned long long)index);
    return walrus__fail(w, WALRUS_EINDEX, 0, "index %llu is outside %llu..%llu",
                        (unsigned long long)index,
                        (unsigned long long)w->store.first_index,
                        (unsigned long long)(w->store.next_index - 1));
  }
  size_t i = walrus__seg_find(w, index);
  if (i == w->store.nsegs)
    return walrus__fail(w, WALRUS_ENOSEGMENT, 0, "no segment holds index %llu",
                        (unsigned long long)index);
  walrus__seg_t *s = w->store.segs[i];
  if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
    /* Load it; it stays loaded while the lock is held shared, since only
     * the lock held exclusively evicts. */
    int rc = walrus__seg_acquire(w, s);
    if (rc != WALRUS_OK) return rc;
    walrus__seg_release(w, s);
  }
  *out = s;
  return WALRUS_OK;
}

/* Copy a verified, borrowed entry into a new one the caller owns. */
static int copy_entry(walrus_t *w, const walrus_entry_t *v,
                      walrus_entry_t *out) {
  size_t tl = v->tx_id ? strlen(v->tx_id) : 0;
  unsigned char *block = walrus__malloc(w, PREFIX_BYTES + v->len + tl + 1);
  if (block == NULL)
    return walrus__fail(w, WALRUS_ENOMEM, 0, "entry %llu",
                        (unsigned long long)v->index);
  block_prefix_t pre = {w->alloc.free_fn, w->alloc.ud};
  memcpy(block, &pre, sizeof pre);
  unsigned char *data = block + PREFIX_BYTES;
  if (v->len > 0) memcpy(data, v->data, v->len);
  if (tl > 0) memcpy(data + v->len, v->tx_id, tl);
  data[v->len + tl] = '\0';
  *out = *v;
  out->data = data;
  out->tx_id = tl ? (const char *)data + v->len : NULL;
  return WALRUS_OK;
}

/* Entry index of s (a compressed record whose header fields are in hdr
 * and whose txid_len is given) copied into *c through the handle's unit
 * cache (w->zcache, internal.h): a hit costs the headers of record index
 * and of its unit's first record, whose crc must still be the cached
 * unit's; a miss takes the cache's buffers, decompresses into them
 * without its mutex, and puts them back.  Caller holds the lock shared
 * and s is ready. */
static int cached_entry(walrus_t *w, walrus__seg_t *s, uint64_t index,
                        unsigned txid_len, const walrus_entry_t *hdr,
                        walrus_entry_t *c) {
  walrus__zcache_t *zc = &w->zcache;
  /* Stable while the lock is held shared: it moves under it exclusive. */
  uint64_t gen =
      atomic_load_explicit(&w->store.layout_gen, memory_order_relaxed);
  uint64_t off = s->offs[index - s->first], j = 0;
  uint32_t crc = 0;
  walrus_entry_t v = *hdr;
  char txid[256];
  int z;
  int rc = zunit_first(w, s, index, &j, &crc, &z);
  if (rc != WALRUS_OK) return rc;
  if (!z) /* it was compressed a moment ago: the file changed */
    return zfail(w, WALRUS_ECORRUPT, s->name, off, "its record changed");
  pthread_mutex_lock(&zc->mu);
  walrus__zunit_t *u = &zc->u;
  if (u->count > 0 && u->seg == s && zc->gen == gen && zc->crc == crc &&
      u->first == s->first + j && index - u->first < u->count) {
    rc = walrus__zunit_entry(w, u, s->name, off, index, txid_len, &v, txid);
    if (rc == WALRUS_OK) rc = copy_entry(w, &v, c);
    pthread_mutex_unlock(&zc->mu);
    return rc;
  }
  walrus__zunit_t mine = *u; /* empty if another reader has them */
  memset(u, 0, sizeof *u);
  pthread_mutex_unlock(&zc->mu);
  rc = zunit_read(w, s, j, index, &mine, &crc);
  if (rc == WALRUS_OK)
    rc = walrus__zunit_entry(w, &mine, s->name, off, index, txid_len, &v, txid);
  if (rc == WALRUS_OK) rc = copy_entry(w, &v, c);
  if (rc != WALRUS_OK) mine.count = 0;
  pthread_mutex_lock(&zc->mu);
  zc->decodes++;
  int keep = u->buf == NULL && u->ends == NULL && u->dctx == NULL &&
             mine.cap <= WALRUS__ZCACHE_MAX;
  if (keep) {
    *u = mine;
    zc->gen = gen;
    zc->crc = crc;
  }
  pthread_mutex_unlock(&zc->mu);
  if (!keep) walrus__zunit_free(w, &mine);
  return rc;
}

/* Entry index of s, a record of a compressed unit whose header (its
 * fields in hdr, flags and txid_len in zhdr) was verified, copied into
 * out, or into view, which then owns the copy.  zc keeps the unit for the
 * next entry of the same call; NULL (walrus_get, walrus_get_view) goes
 * through the handle's unit cache instead.  out and view are written only
 * on success.
 * Caller holds the lock shared and s is ready. */
static WALRUS__NOINLINE int read_compressed(
    walrus_t *w, walrus__seg_t *s, uint64_t index, const unsigned char zhdr[2],
    const walrus_entry_t *hdr, walrus_entry_t *out, walrus_view_t *view,
    walrus__zunit_t *zc) {
  walrus_entry_t v = *hdr, c;
  char txid[256];
  int rc;
  if (zc == NULL) {
    rc = cached_entry(w, s, index, zhdr[1], hdr, &c);
  } else {
    rc = walrus__zunit_load(w, s, index, zc);
    if (rc == WALRUS_OK)
      rc = walrus__zunit_entry(w, zc, s->name, s->offs[index - s->first], index,
                               zhdr[1], &v, txid);
    if (rc == WALRUS_OK) rc = copy_entry(w, &v, &c);
  }
  if (rc != WALRUS_OK) return rc;
  *out = c;
  if (view != NULL) {
    view->entry = c;
    view->map_ = NULL;
    view->copy_ = (void *)(uintptr_t)c.data;
    if (c.tx_id != NULL) {
      memcpy(view->tx_id_, c.tx_id, strlen(c.tx_id) + 1);
      view->entry.tx_id = view->tx_id_;
    }
  }
  return WALRUS_OK;
}

/* Read entry index of s into out: borrowed from the mapping when view is
 * not NULL (which then holds a reference), else copied (mapped with
 * cfg.zero_copy, else with pread).  An entry of a compressed unit is
 * copied either way (read_compressed).  zc: as for read_compressed.
 * Caller holds the lock shared and s is ready. */
static int read_one(walrus_t *w, walrus__seg_t *s, uint64_t index,
                    walrus_entry_t *out, walrus_view_t *view,
                    walrus__zunit_t *zc) {
  uint64_t off, end;
  walrus__rmap_t *m = NULL;
  unsigned char zhdr[2];
  int rc;
  extent(s, index, &off, &end);
  if (view != NULL || w->cfg.zero_copy) {
    if (end <= off || end - off > walrus__rec_size(WALRUS__BODY_MAX))
      return walrus__fail(w, WALRUS_ECORRUPT, 0,
                          "%s/%s: record %llu at offset %llu has a bad extent",
                          w->dir, s->name, (unsigned long long)index,
                          (unsigned long long)off);
    m = atomic_load_explicit(&s->rmap, memory_order_acquire);
    if (m == NULL || end > m->len) { /* not mapped yet, or not so far */
      rc = walrus__rmap_get(w, s, end, &m);
      if (rc != WALRUS_OK) return rc;
    }
  }
  if (m == NULL) {
    /* pread; a view without a mapping gets a private copy. */
    walrus_entry_t h;
    rc = walrus__read_record(w, s, index, &h, zhdr);
    if (rc == WALRUS__VIEW_COMPRESSED)
      return read_compressed(w, s, index, zhdr, &h, out, view, zc);
    if (rc == WALRUS_OK) *out = h;
    if (rc == WALRUS_OK && view != NULL) {
      view->entry = *out;
      view->map_ = NULL;
      view->copy_ = (void *)(uintptr_t)out->data;
      if (out->tx_id != NULL) {
        memcpy(view->tx_id_, out->tx_id, strlen(out->tx_id) + 1);
        view->entry.tx_id = view->tx_id_;
      }
    }
    return rc;
  }
  walrus_entry_t v = {0};
  char txid[256];
  const unsigned char *p = m->addr + off;
  if (view == NULL) {
    rc = walrus__rec_view(w, m->name, m->seed, 0, index, off, p, end - off, &v,
                          txid);
    if (rc == WALRUS__VIEW_COMPRESSED)
      return read_compressed(w, s, index, p + 34, &v, out, NULL, zc);
    return rc == WALRUS_OK ? copy_entry(w, &v, out) : rc;
  }
  /* Into v first: a compressed entry that fails to decompress leaves the
   * view untouched. */
  rc = walrus__rec_view(w, m->name, m->seed, 0, index, off, p, end - off, &v,
                        txid);
  if (rc == WALRUS__VIEW_COMPRESSED)
    return read_compressed(w, s, index, p + 34, &v, out, view, zc);
  if (rc != WALRUS_OK) return rc;
  view->entry = v;
  if (v.tx_id != NULL) {
    memcpy(view->tx_id_, txid, strlen(txid) + 1);
    view->entry.tx_id = view->tx_id_;
  }
  walrus__rmap_ref(m);
  view->map_ = m;
  view->copy_ = NULL;
  return WALRUS_OK;
}

/* walrus_get and walrus_get_view: one entry, into out or view. */
static int get(walrus_t *w, uint64_t index, walrus_entry_t *out,
               walrus_view_t *view) {
  walrus__seg_t *s;
  walrus_entry_t e;
  walrus__lock_shared(w);
  int rc = locate(w, index, &s);
  if (rc == WALRUS_OK) rc = read_one(w, s, index, view ? &e : out, view, NULL);
  walrus__unlock(w);
  if (walrus__cache_over(w)) walrus__cache_trim(w);
  return rc;
}

int walrus_get(walrus_t *w, uint64_t index, walrus_entry_t *out) {
  if (w == NULL || out == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or entry");
  return get(w, index, out, NULL);
}

int walrus_get_view(walrus_t *w, uint64_t index, walrus_view_t *view) {
  if (w == NULL || view == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or view");
  return get(w, index, NULL, view); /* writes view only on success */
}

void walrus_view_release(walrus_view_t *view) {
  if (view == NULL) return;
  if (view->map_ != NULL) walrus__rmap_unref(view->map_);
  if (view->copy_ != NULL) {
    walrus_entry_t e = view->entry;
    e.data = view->copy_;
    walrus_entry_free(&e);
  }
  view->map_ = view->copy_ = NULL;
  view->entry.data = NULL;
  view->entry.tx_id = NULL;
  view->entry.len = 0;
}

/* Undo the first n reads of a call that failed: views or copies. */
static void release_all(walrus_entry_t *out, walrus_view_t *views, size_t n) {
  for (size_t k = 0; k < n; k++) {
    if (views != NULL)
      walrus_view_release(&views[k]);
    else
      walrus_entry_free(&out[k]);
  }
}

/* walrus_get_range and walrus_get_range_view: entries start..end into
 * out or views, bounded by max_count and max_bytes; one lock hold. */
static int get_range(walrus_t *w, uint64_t start, uint64_t end,
                     size_t max_count, size_t max_bytes, walrus_entry_t *out,
                     walrus_view_t *views, size_t *n) {
  size_t got = 0;
  uint64_t bytes = 0;
  walrus__zunit_t zc = {0};
  int rc = WALRUS_OK;
  if (n != NULL) *n = 0;
  if (w == NULL) return WALRUS_EINVAL;
  if ((out == NULL && views == NULL) || n == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "get_range: NULL out or n");
  if (max_count == 0)
    return walrus__fail(w, WALRUS_EINVAL, 0, "get_range: max_count is 0");
  if (end < start)
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "get_range: end %llu is below start %llu",
                        (unsigned long long)end, (unsigned long long)start);
  walrus__lock_shared(w);
  walrus__seg_t *first_seg;
  rc = locate(w, start, &first_seg); /* start must be in the log */
  if (end >= w->store.next_index) end = w->store.next_index - 1;
  if (rc != WALRUS_OK) end = 0;
  for (uint64_t i = start; i <= end && got < max_count; i++) {
    walrus__seg_t *s = NULL;
    walrus_entry_t e;
    rc = locate(w, i, &s);
    if (rc != WALRUS_OK) break;
    if (views != NULL) {
      views[got].tx_id_[0] = '\0';
      rc = read_one(w, s, i, &e, &views[got], &zc);
    } else {
      rc = read_one(w, s, i, &out[got], NULL, &zc);
    }
    if (rc != WALRUS_OK) break;
    size_t len = views != NULL ? views[got].entry.len : out[got].len;
    if (got > 0 && max_bytes > 0 && bytes + len > max_bytes) {
      if (views != NULL)
        walrus_view_release(&views[got]);
      else
        walrus_entry_free(&out[got]);
      break;
    }
    bytes += len;
    got++;
  }
  walrus__unlock(w);
  walrus__zunit_free(w, &zc);
  if (rc != WALRUS_OK) {
    release_all(out, views, got);
    got = 0;
  }
  *n = got;
  if (walrus__cache_over(w)) walrus__cache_trim(w);
  return rc;
}

int walrus_get_range(walrus_t *w, uint64_t start, uint64_t end,
                     size_t max_count, size_t max_bytes, walrus_entry_t *out,
                     size_t *n) {
  return get_range(w, start, end, max_count, max_bytes, out, NULL, n);
}

int walrus_get_range_view(walrus_t *w, uint64_t start, uint64_t end,
                          size_t max_count, size_t max_bytes,
                          walrus_view_t *out, size_t *n) {
  return get_range(w, start, end, max_count, max_bytes, NULL, out, n);
}

/* Entries walrus_get_many() looks up before it reads any. */
#define MANY_BATCH 16

/* Ask for the lines of every record in idx[0..c-1] (s[j] holds idx[j]):
 * first the offsets, then, from them, the records themselves, so that the
 * memory fetches of the batch overlap instead of following each other.
 * Caller holds the lock shared and every s[j] is ready. */
static void prefetch_batch(walrus__seg_t *const *s, const uint64_t *idx,
                           size_t c) {
  for (size_t j = 0; j < c; j++)
    __builtin_prefetch(&s[j]->offs[idx[j] - s[j]->first]);
  for (size_t j = 0; j < c; j++) {
    const walrus__rmap_t *m =
        atomic_load_explicit(&s[j]->rmap, memory_order_acquire);
    uint64_t off, end;
    extent(s[j], idx[j], &off, &end);
    if (m == NULL || end > m->len || end <= off) continue;
    if (end - off > 512) end = off + 512; /* enough to overlap the misses */
    for (uint64_t a = off & ~(uint64_t)63; a < end; a += 64)
      __builtin_prefetch(m->addr + a);
  }
}

/* walrus_get_many and walrus_get_many_view: the entries named in idx into
 * out or views, MANY_BATCH to a lock hold; all or nothing. */
static int get_many(walrus_t *w, const uint64_t *idx, size_t n,
                    walrus_entry_t *out, walrus_view_t *views) {
  size_t got = 0;
  walrus__zunit_t zc = {0};
  int rc = WALRUS_OK;
  if (w == NULL) return WALRUS_EINVAL;
  if (n > 0 && (idx == NULL || (out == NULL && views == NULL)))
    return walrus__fail(w, WALRUS_EINVAL, 0, "get_many: NULL indexes or out");
  while (got < n && rc == WALRUS_OK) {
    walrus__seg_t *s[MANY_BATCH];
    const uint64_t *bi = idx + got; /* this batch's indexes */
    size_t c = n - got < MANY_BATCH ? n - got : MANY_BATCH;
    walrus__lock_shared(w);
    zc.count = 0; /* the layout may have changed since the last batch */
    for (size_t j = 0; j < c && rc == WALRUS_OK; j++)
      rc = locate(w, bi[j], &s[j]);
    if (rc == WALRUS_OK && (views != NULL || w->cfg.zero_copy))
      prefetch_batch(s, bi, c);
    for (size_t j = 0; j < c && rc == WALRUS_OK; j++) {
      walrus_entry_t tmp; /* a view read by pread passes through here */
      if (views != NULL)
        rc = read_one(w, s[j], bi[j], &tmp, &views[got], &zc);
      else
        rc = read_one(w, s[j], bi[j], &out[got], NULL, &zc);
      if (rc == WALRUS_OK) got++;
    }
    walrus__unlock(w);
    if (walrus__cache_over(w)) walrus__cache_trim(w);
  }
  walrus__zunit_free(w, &zc);
  if (rc != WALRUS_OK) release_all(out, views, got);
  return rc;
}

int walrus_get_many(walrus_t *w, const uint64_t *index, size_t n,
                    walrus_entry_t *out) {
  return get_many(w, index, n, out, NULL);
}

int walrus_get_many_view(walrus_t *w, const uint64_t *index, size_t n,
                         walrus_view_t *out) {
  return get_many(w, index, n, NULL, out);
}

void walrus_entry_free(walrus_entry_t *e) {
  if (e == NULL || e->data == NULL) return;
  unsigned char *block = (unsigned char *)(uintptr_t)e->data - PREFIX_BYTES;
  block_prefix_t pre;
  memcpy(&pre, block, sizeof pre);
  pre.free_fn(pre.ud, block);
  e->data = NULL;
  e->tx_id = NULL;
  e->len = 0;
}
