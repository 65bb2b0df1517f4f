/*
 * iter.c: sequential reading (walrus_iter_*).
 *
 * An iterator remembers the index it returns next, the segment holding it
 * and the record's file offset, and reads ahead through a window of the
 * file, so that a step costs a checksum and, once per window, a pread.
 * Entries it returns are borrowed from the window.
 *
 * The window only ever holds published bytes (below the tail's end), so it
 * never sees a record being written.  When a truncation or reset changes
 * the segment table (layout_gen moves) the iterator finds its place again
 * by index.  Open iterators are listed on the handle, so that retention
 * never removes a segment an iterator still has to read.
 */
#include <string.h>

#include "internal.h"

int walrus_iter_open(walrus_t *w, uint64_t start, walrus_iter_t **out) {
  if (w == NULL || out == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or iterator");
  walrus_iter_t *it = walrus__malloc(w, sizeof *it);
  if (it == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "iterator");
  memset(it, 0, sizeof *it);
  it->w = w;
  walrus__lock_excl(w);
  if (start == 0) start = w->first_index;
  if (start < w->first_index || start > w->next_index) {
    uint64_t first = w->first_index, next = w->next_index;
    walrus__unlock(w);
    walrus__free(w, it);
    return walrus__fail(w, WALRUS_EINDEX, 0,
                        "iterator start %llu is outside %llu..%llu",
                        (unsigned long long)start, (unsigned long long)first,
                        (unsigned long long)next);
  }
  it->next = start;
  it->gen = w->layout_gen - 1; /* find the place on first use */
  it->next_it = w->iters;
  if (w->iters) w->iters->prev_it = it;
  w->iters = it;
  walrus__unlock(w);
  *out = it;
  return WALRUS_OK;
}

/* Point the iterator at the record it->next.  Caller holds the lock. */
static int seek(walrus_iter_t *it) {
  walrus_t *w = it->w;
  size_t i = walrus__seg_find(w, it->next);
  if (i == w->nsegs)
    return walrus__fail(w, WALRUS_ENOSEGMENT, 0, "no segment holds index %llu",
                        (unsigned long long)it->next);
  walrus__seg_t *s = w->segs[i];
  if (it->next == s->first) {
    it->off = WALRUS__SEG_HEADER_BYTES;
  } else {
    int rc = walrus__seg_acquire(w, s);
    if (rc != WALRUS_OK) return rc;
    it->off = s->offs[it->next - s->first];
    walrus__seg_release(w, s);
  }
  it->seg = s;
  it->gen = w->layout_gen;
  it->win.len = 0;
  return WALRUS_OK;
}

int walrus_iter_next(walrus_iter_t *it, walrus_entry_t *out) {
  const unsigned char *p;
  walrus__rec_t r;
  int rc;
  if (it == NULL) return WALRUS_EINVAL;
  if (out == NULL)
    return walrus__fail(it->w, WALRUS_EINVAL, 0, "iter_next: out is NULL");
  walrus_t *w = it->w;
  walrus__lock_shared(w);
  if (it->next < w->first_index) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "iterator at %llu: entries before %llu were removed",
                      (unsigned long long)it->next,
                      (unsigned long long)w->first_index);
    goto out;
  }
  if (it->next >= w->next_index) {
    rc = WALRUS_DONE;
    goto out;
  }
  if (it->gen != w->layout_gen || it->seg == NULL ||
      it->next >= it->seg->first + it->seg->count) {
    rc = seek(it);
    if (rc != WALRUS_OK) goto out;
  }
  walrus__seg_t *s = it->seg;
  rc = walrus__seg_acquire(w, s);
  if (rc != WALRUS_OK) goto out;
  uint64_t limit = s->sealed ? s->index_offset : s->end;
  for (;;) {
    rc = walrus__window_read(w, &it->win, s->file, s->name, it->off,
                             WALRUS__REC_HEADER_BYTES, limit, &p);
    if (rc == WALRUS_OK && p != NULL &&
        walrus__rec_header_decode(p, &r) == WALRUS__FMT_OK)
      rc = walrus__window_read(w, &it->win, s->file, s->name, it->off,
                               WALRUS__REC_HEADER_BYTES + r.body_len, limit,
                               &p);
    else if (rc == WALRUS_OK)
      p = NULL;
    /* Step over a sync mark (format.h): it is not an entry.  Its CRC is
     * checked like any record's. */
    if (rc != WALRUS_OK || p == NULL || !(r.flags & WALRUS__REC_MARK) ||
        r.body_len != 0 ||
        walrus__rec_crc(s->salt, p, NULL, 0) != r.crc || r.index + 1 != it->next)
      break;
    it->off += WALRUS__REC_HEADER_BYTES;
  }
  if (rc == WALRUS_OK && p == NULL)
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s: record %llu at offset %llu is malformed",
                      w->dir, s->name, (unsigned long long)it->next,
                      (unsigned long long)it->off);
  if (rc == WALRUS_OK) {
    if (walrus__rec_crc(s->salt, p, p + WALRUS__REC_HEADER_BYTES,
                        r.body_len) != r.crc)
      rc = walrus__fail(w, WALRUS_ECHECKSUM, 0,
                        "%s/%s: record %llu at offset %llu fails its "
                        "checksum",
                        w->dir, s->name, (unsigned long long)it->next,
                        (unsigned long long)it->off);
    else if (r.index != it->next ||
             (r.flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)))
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: record at offset %llu is not entry %llu",
                        w->dir, s->name, (unsigned long long)it->off,
                        (unsigned long long)it->next);
  }
  walrus__seg_release(w, s);
  if (rc != WALRUS_OK) goto out;
  memcpy(it->txid, p + WALRUS__REC_HEADER_BYTES, r.txid_len);
  it->txid[r.txid_len] = '\0';
  out->index = r.index;
  out->term = r.term;
  out->timestamp_ns = r.timestamp_ns;
  out->checksum = r.crc;
  out->type = r.type;
  out->tx_id = r.txid_len ? it->txid : NULL;
  out->data = p + WALRUS__REC_HEADER_BYTES + r.txid_len;
  out->len = r.body_len - r.txid_len;
  it->off += walrus__rec_size(r.body_len);
  it->next++;
out:
  walrus__unlock(w);
  return rc;
}

void walrus_iter_close(walrus_iter_t *it) {
  if (it == NULL) return;
  walrus_t *w = it->w;
  walrus__lock_excl(w);
  if (it->prev_it)
    it->prev_it->next_it = it->next_it;
  else
    w->iters = it->next_it;
  if (it->next_it) it->next_it->prev_it = it->prev_it;
  walrus__unlock(w);
  walrus__window_free(w, &it->win);
  walrus__free(w, it);
}
