/*
 * iter.c: sequential reading (walrus_iter_*), plain and in follow mode.
 *
 * An iterator remembers the index it returns next, the segment holding it
 * and the record's file offset.  It reads in one of two ways:
 *
 *  - Mapped (cfg.zero_copy): it borrows the segment's read-only mapping
 *    (rmap.c) and, under the lock, notes how far the segment's published
 *    records run.  Steps inside that run take no lock at all: sixteen
 *    records at a time are checked together (framing, index, CRCs four
 *    at a time, while the next sixteen's cache lines are prefetched), and
 *    each step then costs a load of layout_gen (which truncation and reset
 *    move) and the copy of a few header fields.
 *    Entries point into the mapping, which the borrow keeps valid.  A few
 *    MiB ahead of the reader, the VFS's populate (madvise
 *    MADV_POPULATE_READ) reads the pages in and maps them in bulk, so a
 *    sequential pass takes no page fault per page (MADV_WILLNEED,
 *    read-ahead only, where the kernel predates it);
 *    the mapping remembers how far that went, so a later pass over a
 *    mapping still held makes no such call.
 *  - pread: it reads ahead through a window of the file (hinted with the
 *    VFS's advise), so that a step costs a checksum and, once per window,
 *    a pread.  Entries are borrowed from the window.
 *
 * Either way an iterator only ever reads published bytes, so it never sees
 * a record being written.  When a truncation or reset changes the segment
 * table (layout_gen moves) the iterator finds its place again by index: if
 * walrus_truncate_back() cut below its position, it goes on at the new
 * end.  Open iterators are listed on the handle, so that retention never
 * removes a segment an iterator still has to read.
 *
 * A follow iterator (walrus_iter_open_follow) returns durable entries only
 * and, at the end, waits for the next one with walrus_wait().
 */
#include <string.h>

#include "internal.h"

/* Read-ahead: ask for this much ahead of the reader, every STEP bytes. */
#define AHEAD_BYTES (4u << 20)
#define AHEAD_STEP (1u << 20)
/* Offset of the flags byte in a record header (format.h). */
#define REC_FLAGS_AT 34

static int open_iter(walrus_t *w, uint64_t start, int follow,
                     uint32_t timeout_ms, walrus_iter_t **out) {
  if (w == NULL || out == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or iterator");
  walrus_iter_t *it = walrus__malloc(w, sizeof *it);
  if (it == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "iterator");
  memset(it, 0, sizeof *it);
  it->w = w;
  it->mapped = w->cfg.zero_copy && w->store.can_map;
  it->follow = follow;
  it->timeout_ms = timeout_ms;
  it->cut = UINT64_MAX;
  walrus__lock_excl(w);
  if (start == 0) start = w->store.first_index;
  if (start < w->store.first_index || start > w->store.next_index) {
    uint64_t first = w->store.first_index, next = w->store.next_index;
    walrus__unlock(w);
    walrus__free(w, it);
    return walrus__fail(w, WALRUS_EINDEX, 0,
                        "iterator start %llu is outside %llu..%llu",
                        (unsigned long long)start, (unsigned long long)first,
                        (unsigned long long)next);
  }
  it->next = start;
  it->gen = w->store.layout_gen - 1; /* find the place on first use */
  it->next_it = w->store.iters;
  if (w->store.iters) w->store.iters->prev_it = it;
  w->store.iters = it;
  walrus__unlock(w);
  *out = it;
  return WALRUS_OK;
}

int walrus_iter_open(walrus_t *w, uint64_t start, walrus_iter_t **out) {
  return open_iter(w, start, 0, 0, out);
}

int walrus_iter_open_follow(walrus_t *w, uint64_t start, uint32_t timeout_ms,
                            walrus_iter_t **out) {
  return open_iter(w, start, 1, timeout_ms, out);
}

/* Drop the iterator's borrow of a mapping, if any. */
static void unborrow(walrus_iter_t *it) {
  walrus__rmap_unref(it->map);
  it->map = NULL;
  it->run_next = 0;
  it->nvok = it->vpos = 0;
}

/* Point the iterator at the record it->next.  Caller holds the lock. */
static int seek(walrus_iter_t *it) {
  walrus_t *w = it->w;
  size_t i = walrus__seg_find(w, it->next);
  if (i == w->store.nsegs)
    return walrus__fail(w, WALRUS_ENOSEGMENT, 0, "no segment holds index %llu",
                        (unsigned long long)it->next);
  walrus__seg_t *s = w->store.segs[i];
  it->z.count = 0;
  if (it->next == s->first) {
    it->off = WALRUS__SEG_HEADER_BYTES;
  } else {
    int rc = walrus__seg_acquire(w, s);
    if (rc != WALRUS_OK) return rc;
    it->off = s->offs[it->next - s->first];
    /* Starting inside a compressed unit: decompress it now, while s may
     * be used (a mapped step may not). */
    if (s->version >= WALRUS__SEG_VERSION_ZSTD)
      rc = walrus__zunit_load(w, s, it->next, &it->z);
    walrus__seg_release(w, s);
    if (rc != WALRUS_OK) return rc;
  }
  if (it->seg != s) unborrow(it);
  it->seg = s;
  it->gen = w->store.layout_gen;
  it->win.len = 0;
  it->hinted = it->off;
  it->hint_at = 0;
  it->nvok = it->vpos = 0;
  return WALRUS_OK;
}

/* Skip sync marks (format.h) at it->off: they are not entries.  p points
 * at it->off and avail bytes follow it; returns the record's start, with
 * *left the bytes from there, or NULL if avail runs out first. */
static const unsigned char *skip_marks(walrus_iter_t *it, uint32_t salt,
                                       const unsigned char *p, uint64_t avail,
                                       uint64_t *left) {
  walrus__rec_t r;
  while (avail >= WALRUS__REC_HEADER_BYTES &&
         (p[REC_FLAGS_AT] & WALRUS__REC_MARK) &&
         walrus__rec_header_decode(p, &r) == WALRUS__FMT_OK &&
         (r.flags & WALRUS__REC_MARK) && r.body_len == 0 &&
         r.index + 1 == it->next &&
         walrus__rec_crc(salt, p, NULL, 0) == r.crc) {
    p += WALRUS__REC_HEADER_BYTES;
    avail -= WALRUS__REC_HEADER_BYTES;
    it->off += WALRUS__REC_HEADER_BYTES;
  }
  *left = avail;
  return p;
}

/* Check up to WALRUS__ITER_BATCH records of the run from it->off at once:
 * every check walrus__rec_view() makes (framing, flags, the index each must
 * have) and their CRCs, four at a time (walrus__crc32c_n).  Notes the end
 * of each record that passes, in order, stopping at the first that does
 * not, or at a sync mark: the slow step handles those, and reports a
 * failure. */
static void verify_ahead(walrus_iter_t *it) {
  const walrus__rmap_t *m = it->map;
  const unsigned char *p[WALRUS__ITER_BATCH];
  size_t len[WALRUS__ITER_BATCH];
  uint32_t want[WALRUS__ITER_BATCH], got[WALRUS__ITER_BATCH];
  uint64_t off = it->off, index = it->next;
  int n = 0;
  it->nvok = it->vpos = 0;
  while (n < WALRUS__ITER_BATCH && index < it->run_next &&
         it->run_end - off >= WALRUS__REC_HEADER_BYTES) {
    const unsigned char *q = m->addr + off;
    uint32_t body = walrus__get32(q + 4);
    uint8_t flags = q[REC_FLAGS_AT], txid_len = q[REC_FLAGS_AT + 1];
    if ((flags & ~WALRUS__REC_KNOWN_FLAGS) != 0 ||
        (flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK | WALRUS__REC_ZSTD)) !=
            0 ||
        body > WALRUS__BODY_MAX || txid_len > body ||
        WALRUS__REC_HEADER_BYTES + (uint64_t)body > it->run_end - off ||
        walrus__get64(q + 8) != index)
      break;
    p[n] = q + 4;
    len[n] = WALRUS__REC_HEADER_BYTES - 4 + body;
    want[n] = walrus__get32(q);
    off += walrus__rec_size(body);
    it->vend[n] = off;
    n++;
    index++;
  }
  /* Ask for the next batch's lines while this one's CRCs run. */
  for (uint64_t a = off, e = off + (off - it->off); a < e && a < it->run_end;
       a += 64)
    __builtin_prefetch(m->addr + a);
  walrus__crc32c_n(m->seed, p, len, got, n);
  while (it->nvok < n && got[it->nvok] == want[it->nvok]) it->nvok++;
}

/* Return the record at it->off, which verify_ahead() found whole and
 * intact, and step past it. */
static WALRUS__ALWAYS_INLINE void take_verified(walrus_iter_t *it,
                                                walrus_entry_t *out) {
  const unsigned char *q = it->map->addr + it->off;
  uint32_t body = walrus__get32(q + 4);
  unsigned txid_len = q[REC_FLAGS_AT + 1];
  const unsigned char *data = q + WALRUS__REC_HEADER_BYTES;
  out->index = it->next;
  out->term = walrus__get64(q + 16);
  out->timestamp_ns = (int64_t)walrus__get64(q + 24);
  out->checksum = walrus__get32(q);
  out->type = walrus__get16(q + 32);
  out->tx_id = NULL;
  if (txid_len > 0) {
    memcpy(it->txid, data, txid_len);
    it->txid[txid_len] = '\0';
    out->tx_id = it->txid;
  }
  out->data = data + txid_len;
  out->len = body - txid_len;
  it->off = it->vend[it->vpos++];
  it->next++;
}

/* Read ahead of a mapped reader: fault in the pages from it->hinted to a
 * few MiB past it->off, unless an earlier pass over this mapping did. */
static void read_ahead(walrus_iter_t *it) {
  walrus__rmap_t *m = it->map;
  uint64_t from = it->hinted & ~(uint64_t)4095;
  uint64_t to = it->off + AHEAD_BYTES;
  uint64_t end = (it->run_end + 4095) & ~(uint64_t)4095; /* in the file */
  uint64_t done = atomic_load_explicit(&m->populated, memory_order_relaxed);
  if (to > end) to = end;
  if (from < done) from = done;
  if (to > from) {
    walrus__os_populate(it->w, m->addr + from, to - from);
    /* Raise the mark; losing a race only costs another call. */
    while (done < to && !atomic_compare_exchange_weak_explicit(
                            &m->populated, &done, to, memory_order_relaxed,
                            memory_order_relaxed)) {
    }
  }
  if (to > it->hinted) it->hinted = to;
  if (it->hinted >= it->run_end)
    it->hint_at = UINT64_MAX; /* until a longer run is borrowed */
  else if (it->hinted > AHEAD_BYTES - AHEAD_STEP)
    it->hint_at = it->hinted - (AHEAD_BYTES - AHEAD_STEP);
  else
    it->hint_at = 0;
}

/* The body of the compressed entry at it->off (its record at p, header
 * verified; in file name of that header version): from the unit it->z
 * holds, decompressed from p first when p opens it.  A step from inside
 * a unit relies on seek() or the unit's first record having loaded it. */
static WALRUS__NOINLINE int zstep(walrus_iter_t *it, uint32_t version,
                                  const char *name, const unsigned char *p,
                                  walrus_entry_t *out) {
  walrus_t *w = it->w;
  int rc = WALRUS_OK;
  if (p[REC_FLAGS_AT] & WALRUS__REC_FIRST) {
    rc = walrus__zunit_decode(w, version, name, it->off, p, it->next, &it->z);
    it->z.seg = it->seg; /* identity only */
  }
  if (rc == WALRUS_OK)
    rc = walrus__zunit_entry(w, &it->z, name, it->off, it->next,
                             p[REC_FLAGS_AT + 1], out, it->txid);
  return rc;
}

/* A mapped step inside the current run: no lock, so nothing of it->seg is
 * used (a truncation may free it meanwhile); the mapping has what it
 * needs. */
static int mapped_step(walrus_iter_t *it, walrus_entry_t *out) {
  walrus__rmap_t *m = it->map;
  uint64_t left;
  const unsigned char *p =
      skip_marks(it, m->salt, m->addr + it->off, it->run_end - it->off, &left);
  if (it->vpos >= it->nvok) verify_ahead(it);
  if (it->vpos < it->nvok) {
    take_verified(it, out);
  } else {
    /* Not whole and intact: check it again, for the message. */
    int rc = walrus__rec_view(it->w, m->name, m->seed, 0, it->next, it->off, p,
                              left, out, it->txid);
    if (rc == WALRUS__VIEW_COMPRESSED)
      rc = zstep(it, m->version, m->name, p, out);
    if (rc != WALRUS_OK) return rc;
    it->off += walrus__rec_size(walrus__get32(p + 4)); /* checked */
    it->next++;
  }
  if (it->off >= it->hint_at) read_ahead(it);
  return WALRUS_OK;
}

/* A pread step, through the window (scan.c).  Caller holds the lock;
 * it->seg is ready. */
static int window_step(walrus_iter_t *it, walrus_entry_t *out) {
  walrus_t *w = it->w;
  walrus__seg_t *s = it->seg;
  uint64_t limit = s->sealed ? s->index_offset : s->end;
  const walrus__scan_t from = {&it->win, s->file, s->name, s->seed, limit, 0};
  const unsigned char *p;
  walrus__rec_t r;
  walrus__found_t found;
  int rc;
  for (;;) {
    rc = walrus__scan_record(w, &from, it->off, &r, &p, &found);
    if (rc != WALRUS_OK) return rc;
    /* A sync mark (format.h) after the entry before: not an entry. */
    if (found == WALRUS__FOUND_RECORD && (r.flags & WALRUS__REC_MARK) &&
        r.body_len == 0 && r.index + 1 == it->next) {
      it->off += WALRUS__REC_HEADER_BYTES;
      continue;
    }
    break;
  }
  if (it->win.off + it->win.len >= it->hinted && w->vfs->version >= 3 &&
      w->vfs->advise != NULL) {
    walrus__os_advise(w, s->file, it->hinted, AHEAD_BYTES);
    it->hinted += AHEAD_BYTES;
  }
  if (found == WALRUS__FOUND_RECORD) {
    rc = walrus__rec_view(w, s->name, s->seed, 1, it->next, it->off, p,
                          WALRUS__REC_HEADER_BYTES + r.body_len, out,
                          it->txid);
  } else {
    /* Damaged or cut short: let the check say how, from what there is. */
    uint64_t avail = 0;
    p = NULL;
    if (it->off >= it->win.off && it->off < it->win.off + it->win.len) {
      p = it->win.buf + (it->off - it->win.off);
      avail = it->win.off + it->win.len - it->off;
    }
    rc = walrus__rec_view(w, s->name, s->seed, 0, it->next, it->off, p, avail,
                          out, it->txid);
  }
  if (rc == WALRUS__VIEW_COMPRESSED) {
    /* p is in the window, which a load of the unit may move. */
    uint32_t body_len = walrus__get32(p + 4);
    rc = zstep(it, s->version, s->name, p, out);
    if (rc != WALRUS_OK) return rc;
    it->off += walrus__rec_size(body_len);
    it->next++;
    return WALRUS_OK;
  }
  if (rc != WALRUS_OK) return rc;
  it->off += walrus__rec_size(walrus__get32(p + 4)); /* body_len, checked */
  it->next++;
  return WALRUS_OK;
}

/* One step of a plain iterator: WALRUS_OK, WALRUS_DONE at the end, or an
 * error.  A follow iterator passes its bound: the durable end. */
static int step(walrus_iter_t *it, walrus_entry_t *out, int durable_only) {
  walrus_t *w = it->w;
  int rc;
  if (it->map != NULL && it->next < it->run_next &&
      atomic_load_explicit(&w->store.layout_gen, memory_order_acquire) ==
          it->gen)
    return mapped_step(it, out);
  walrus__lock_shared(w);
  if (it->cut != UINT64_MAX) {
    /* truncate_back cut below us: go on there, even if appends have
     * passed our position since. */
    if (it->next > it->cut) it->next = it->cut;
    it->cut = UINT64_MAX;
  }
  if (it->next < w->store.first_index) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "iterator at %llu: entries before %llu were removed",
                      (unsigned long long)it->next,
                      (unsigned long long)w->store.first_index);
    goto out;
  }
  uint64_t bound = w->store.next_index;
  if (durable_only) {
    uint64_t d = atomic_load(&w->commit.durable_next);
    if (d < bound) bound = d;
  }
  if (it->next >= bound) {
    rc = WALRUS_DONE;
    goto out;
  }
  if (it->gen != w->store.layout_gen || it->seg == NULL ||
      it->next >= it->seg->first + it->seg->count) {
    rc = seek(it);
    if (rc != WALRUS_OK) goto out;
  }
  walrus__seg_t *s = it->seg;
  rc = walrus__seg_acquire(w, s); /* loads it if evicted */
  if (rc != WALRUS_OK) goto out;
  walrus__seg_release(w, s); /* ready while the lock is held */
  if (it->mapped) {
    /* Borrow the mapping as far as the published records run, then step
     * without the lock until the run ends. */
    uint64_t last = s->first + s->count; /* index after the run */
    if (last > bound) last = bound;
    uint64_t end = last - s->first < s->count
                       ? s->offs[last - s->first]
                       : (s->sealed ? s->index_offset : s->end);
    walrus__rmap_t *m;
    rc = walrus__rmap_get(w, s, end, &m);
    if (rc != WALRUS_OK) goto out;
    if (m != NULL) {
      if (m != it->map) {
        walrus__rmap_ref(m);
        walrus__rmap_unref(it->map);
        it->map = m;
        it->nvok = it->vpos = 0;
      }
      it->run_next = last;
      it->run_end = end;
      it->hint_at = 0; /* the run may be longer: see read_ahead() */
      walrus__unlock(w);
      rc = mapped_step(it, out);
      if (walrus__cache_over(w)) walrus__cache_trim(w);
      return rc;
    }
    unborrow(it); /* the VFS would not map: pread from here on */
    it->mapped = 0;
  }
  rc = window_step(it, out);
out:
  walrus__unlock(w);
  if (walrus__cache_over(w)) walrus__cache_trim(w);
  return rc;
}

/* Everything but the common step of walrus_iter_next(). */
static WALRUS__NOINLINE int iter_next_slow(walrus_iter_t *it,
                                           walrus_entry_t *out) {
  if (it == NULL) return WALRUS_EINVAL;
  if (out == NULL)
    return walrus__fail(it->w, WALRUS_EINVAL, 0, "iter_next: out is NULL");
  if (!it->follow) return step(it, out, 0);
  int64_t deadline = 0;
  for (;;) {
    int rc = step(it, out, 1);
    if (rc != WALRUS_DONE) return rc;
    /* At the durable end: wait for the next entry, then step again. */
    uint32_t ms = it->timeout_ms;
    if (ms != WALRUS_WAIT_FOREVER) {
      int64_t now = walrus__mono_ns();
      if (deadline == 0) deadline = now + (int64_t)ms * 1000000;
      ms =
          now >= deadline ? 0 : (uint32_t)((deadline - now + 999999) / 1000000);
    }
    rc = walrus_wait(it->w, it->next, ms);
    if (rc != WALRUS_OK) return rc;
  }
}

int walrus_iter_next(walrus_iter_t *it, walrus_entry_t *out) {
  /* The common step: a record verify_ahead() checked, in a layout that
   * has not changed since; no lock, no call. */
  if (it != NULL && out != NULL && it->vpos < it->nvok &&
      it->off < it->hint_at &&
      atomic_load_explicit(&it->w->store.layout_gen, memory_order_acquire) ==
          it->gen) {
    take_verified(it, out);
    return WALRUS_OK;
  }
  return iter_next_slow(it, out);
}

void walrus_iter_close(walrus_iter_t *it) {
  if (it == NULL) return;
  walrus_t *w = it->w;
  walrus__lock_excl(w);
  if (it->prev_it)
    it->prev_it->next_it = it->next_it;
  else
    w->store.iters = it->next_it;
  if (it->next_it) it->next_it->prev_it = it->prev_it;
  walrus__unlock(w);
  unborrow(it);
  walrus__window_free(w, &it->win);
  walrus__zunit_free(w, &it->z);
  walrus__free(w, it);
}
