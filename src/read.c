/*
 * read.c: walrus_get() and walrus_entry_free().
 *
 * A lookup is a binary search of the segment table for the segment, then
 * the record's offset from that segment's index (in memory for the tail,
 * loaded and verified on first use for a sealed segment), then one pread
 * of exactly the record.  Its CRC, index and framing are checked before a
 * byte is returned.  Readers hold the table lock shared, so they never wait
 * for an append's fsync.
 *
 * An entry from walrus_get() is one allocation: a 16-byte prefix naming
 * the allocator to free it with, the payload, then the tx id and its NUL.
 */
#include <string.h>

#include "internal.h"

typedef struct block_prefix_s {
  void (*free_fn)(void *ud, void *ptr); /* the allocator's free */
  void *ud;                             /* its user pointer */
} block_prefix_t;

#define PREFIX_BYTES 16

/* Read record index of s into a new entry.  Caller holds the lock and a
 * pin on s. */
int walrus__read_record(walrus_t *w, walrus__seg_t *s, uint64_t index,
                        walrus_entry_t *out) {
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
  if (r.index != index ||
      (r.flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)) ||
      WALRUS__REC_HEADER_BYTES + (uint64_t)r.body_len > len) {
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s: record at offset %llu is not entry %llu",
                      w->dir, s->name, (unsigned long long)off,
                      (unsigned long long)index);
    goto fail;
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

int walrus_get(walrus_t *w, uint64_t index, walrus_entry_t *out) {
  int rc;
  if (w == NULL || out == NULL)
    return walrus__fail(w, WALRUS_EINVAL, 0, "NULL handle or entry");
  walrus__lock_shared(w);
  if (index == 0 || index < w->first_index || index >= w->next_index) {
    uint64_t first = w->first_index, next = w->next_index;
    walrus__unlock(w);
    if (first == next)
      return walrus__fail(w, WALRUS_EINDEX, 0,
                          "index %llu: the log is empty",
                          (unsigned long long)index);
    return walrus__fail(w, WALRUS_EINDEX, 0,
                        "index %llu is outside %llu..%llu",
                        (unsigned long long)index, (unsigned long long)first,
                        (unsigned long long)(next - 1));
  }
  size_t i = walrus__seg_find(w, index);
  if (i == w->nsegs) {
    walrus__unlock(w);
    return walrus__fail(w, WALRUS_ENOSEGMENT, 0,
                        "no segment holds index %llu",
                        (unsigned long long)index);
  }
  walrus__seg_t *s = w->segs[i];
  rc = walrus__seg_acquire(w, s);
  if (rc == WALRUS_OK) {
    rc = walrus__read_record(w, s, index, out);
    walrus__seg_release(w, s);
  }
  walrus__unlock(w);
  return rc;
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
