/*
 * segment.c: segment files and the in-memory segment table.
 *
 * Creating a segment: the header goes to <name>.seg.tmp (under SYNC_ALWAYS
 * with cfg.prefill_segments, followed by zeros up to segment_bytes), is
 * fdatasync()ed, the file is renamed to <name>.seg and the directory
 * fsync()ed.  So a .seg file always starts with a whole header, and the
 * tail of the log is never ambiguous about which file it is in.
 *
 * Sealing a segment (before the next one is created) is commit.c's: the
 * records are synced, then the index record (every record's offset) is
 * appended and synced, then the 32-byte trailer is appended and synced.
 * From then on open reads only the 32-byte trailer of the segment, and a
 * lookup loads the index record on first use, verifies its CRC and keeps it
 * in the cache of cached_segments sealed segments (LRU).  A cached segment
 * may also hold a read-only mapping (rmap.c); eviction drops it, and only
 * happens with the table lock held exclusively, so a reader holding it
 * shared uses a ready segment's file, offsets and mapping without a pin.
 *
 * Mapped writes (cfg.mapped_writes, under SYNC_NONE and SYNC_INTERVAL): the
 * tail's space up to segment_bytes is reserved, the file extended to it in
 * zeros and mapped through the VFS, so that an append is a store into the
 * page cache instead of a pwrite.  Open reads zero bytes running to the end
 * of the tail as its end (docs/FORMAT.md).  The mapping is dropped before
 * anything cuts the file, and the zeros are cut when the segment is sealed
 * or the log closed.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

walrus__seg_t *walrus__seg_new(walrus_t *w, uint64_t first) {
  walrus__seg_t *s = walrus__malloc(w, sizeof *s);
  if (s == NULL) return NULL;
  memset(s, 0, sizeof *s);
  s->first = first;
  s->end = WALRUS__SEG_HEADER_BYTES;
  walrus__fmt_seg_name(s->name, first);
  return s;
}

void walrus__seg_free(walrus_t *w, walrus__seg_t *s) {
  if (s == NULL) return;
  walrus__rmap_drop(s);
  walrus__seg_unmap(w, s);
  walrus__os_close(w, s->file);
  walrus__free(w, s->offs);
  walrus__free(w, s);
}

/* Make room in s->offs for n more offsets than s->count.  Caller holds the
 * lock exclusively (offs may move) or s is not yet visible to readers. */
int walrus__seg_reserve(walrus_t *w, walrus__seg_t *s, uint64_t n) {
  uint64_t need = s->count + n;
  if (need <= s->offs_cap) return WALRUS_OK;
  uint64_t cap = s->offs_cap ? s->offs_cap : 256;
  while (cap < need) cap *= 2;
  if (cap > SIZE_MAX / sizeof(uint32_t))
    return walrus__fail(w, WALRUS_ENOMEM, 0, "offsets of %s", s->name);
  uint32_t *p = walrus__realloc(w, s->offs, (size_t)cap * sizeof(uint32_t));
  if (p == NULL)
    return walrus__fail(w, WALRUS_ENOMEM, 0, "offsets of %s", s->name);
  s->offs = p;
  s->offs_cap = (size_t)cap;
  return WALRUS_OK;
}

/* Make room in the segment table for one more.  Caller holds the lock
 * exclusively. */
static int segs_reserve(walrus_t *w) {
  if (w->store.nsegs == w->store.segs_cap) {
    size_t cap = w->store.segs_cap ? w->store.segs_cap * 2 : 16;
    walrus__seg_t **p = walrus__realloc(w, w->store.segs, cap * sizeof *p);
    if (p == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "segment table");
    w->store.segs = p;
    w->store.segs_cap = cap;
  }
  return WALRUS_OK;
}

/* Append s to the segment table.  Caller holds the lock exclusively. */
int walrus__segs_push(walrus_t *w, walrus__seg_t *s) {
  int rc = segs_reserve(w);
  if (rc == WALRUS_OK) w->store.segs[w->store.nsegs++] = s;
  return rc;
}

/* The position in segs of the segment holding index; nsegs if none.
 * Binary search: O(log segments).  Caller holds the lock. */
size_t walrus__seg_find(walrus_t *w, uint64_t index) {
  size_t lo = 0, hi = w->store.nsegs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (w->store.segs[mid]->first <= index)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return w->store.nsegs;
  walrus__seg_t *s = w->store.segs[lo - 1];
  return index < s->first + s->count ? lo - 1 : w->store.nsegs;
}

/* Does a new segment get zeros up to segment_bytes (cfg.prefill_segments)?
 * Only under SYNC_ALWAYS, where every append pays an fdatasync. */
static int prefill(const walrus_t *w) {
  return w->cfg.prefill_segments && w->cfg.sync == WALRUS_SYNC_ALWAYS;
}

/* Create a new, empty tail segment whose first record will be first, and
 * make it the last entry of the table.  Caller holds wlock; the previous
 * tail, if any, is sealed. */
int walrus__seg_create(walrus_t *w, uint64_t first) {
  unsigned char hdr[WALRUS__SEG_HEADER_BYTES];
  char tmp[WALRUS__SEG_NAME_LEN + 5];
  walrus__seg_header_t h;
  walrus_vfs_file_t *f = NULL;
  walrus__seg_t *s = walrus__seg_new(w, first);
  int rc;
  if (s == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "new segment");
  rc = walrus__seg_reserve(w, s, 1);
  if (rc != WALRUS_OK) goto fail;
  /* Every allocation happens before the first file operation, so running
   * out of memory leaves nothing behind and the handle usable. */
  walrus__lock_excl(w);
  rc = segs_reserve(w);
  walrus__unlock(w);
  if (rc != WALRUS_OK) goto fail;
  int e = walrus__random(w, &s->salt, sizeof s->salt);
  if (e != 0) {
    rc = walrus__fail(w, WALRUS_EIO, -e, "random salt");
    goto fail;
  }
  s->seed = walrus__salt_seed(s->salt);
  /* Only a writer that compresses makes version 2 segments, so that a
   * log written without compression stays readable by version 1 readers. */
  h.version = w->cfg.compression == WALRUS_COMPRESSION_ZSTD
                  ? WALRUS__SEG_VERSION_ZSTD
                  : WALRUS__FORMAT_VERSION;
  s->version = h.version;
  h.log_id = w->store.meta.log_id;
  h.first_index = first;
  h.salt = s->salt;
  h.created_ns = walrus__now_ns(w);
  walrus__fmt_seg_header_encode(hdr, &h);
  memcpy(tmp, s->name, WALRUS__SEG_NAME_LEN);
  memcpy(tmp + WALRUS__SEG_NAME_LEN, ".tmp", 5);
  rc = walrus__os_unlink(w, tmp);
  if (rc == WALRUS_OK)
    rc = walrus__os_open(w, tmp, WALRUS_VFS_WRITE | WALRUS_VFS_CREATE, &f);
  if (rc == WALRUS_OK) rc = walrus__os_write(w, f, tmp, hdr, sizeof hdr, 0);
  if (rc == WALRUS_OK && prefill(w)) {
    /* Zeros up to segment_bytes, written through the (idle) encode
     * buffer: the records will overwrite allocated blocks. */
    uint64_t len = (w->cfg.segment_bytes + 4095) & ~(uint64_t)4095;
    uint64_t off = sizeof hdr;
    memset(w->commit.buf, 0, w->cfg.buffer_bytes);
    while (rc == WALRUS_OK && off < len) {
      size_t n = len - off < w->cfg.buffer_bytes ? (size_t)(len - off)
                                                  : w->cfg.buffer_bytes;
      rc = walrus__os_write(w, f, tmp, w->commit.buf, n, off);
      off += n;
    }
    s->prealloc = 1;
  }
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, f, tmp);
  if (rc == WALRUS_OK) rc = walrus__os_rename(w, tmp, s->name);
  if (rc == WALRUS_OK) rc = walrus__os_sync_dir(w);
  if (rc != WALRUS_OK) {
    walrus__os_close(w, f);
    walrus__os_unlink(w, tmp);
    walrus__poison(w, rc);
    goto fail;
  }
  s->file = f;
  walrus__lock_excl(w);
  w->store.segs[w->store.nsegs++] = s; /* room was reserved above */
  walrus__unlock(w);
  w->commit.write_off = WALRUS__SEG_HEADER_BYTES;
  walrus__log(w, WALRUS_LOG_INFO, "created segment %s", s->name);
  return WALRUS_OK;
fail:
  walrus__seg_free(w, s);
  return rc;
}

/* Map the tail s for mapped writes, once: reserve its space, extend the
 * file to segment_bytes in zeros, map it.  If the VFS cannot, the handle
 * goes back to pwrite.  A failure to reserve or extend poisons the handle
 * (the file may have changed), and so does an I/O error from map; running
 * out of memory leaves it usable.  Caller holds wlock. */
int walrus__seg_map(walrus_t *w, walrus__seg_t *s) {
  uint64_t len = (w->cfg.segment_bytes + 4095) & ~(uint64_t)4095;
  uint64_t size = 0;
  void *addr = NULL;
  int rc;
  if (s->map != NULL || !w->commit.mapped) return WALRUS_OK;
  rc = walrus__os_allocate(w, s->file, s->name, len);
  if (rc == WALRUS_ENOTSUP) goto unsupported;
  if (rc == WALRUS_OK) rc = walrus__os_size(w, s->file, s->name, &size);
  if (rc == WALRUS_OK && size < len) {
    rc = walrus__os_truncate(w, s->file, s->name, len);
    if (rc == WALRUS_OK) s->prealloc = 1;
  }
  if (rc != WALRUS_OK) return walrus__poison(w, rc);
  rc = walrus__os_map(w, s->file, s->name, len, &addr);
  if (rc == WALRUS_ENOTSUP) goto unsupported;
  if (rc == WALRUS_ENOMEM) return rc; /* nothing lost: still usable */
  if (rc != WALRUS_OK) return walrus__poison(w, rc);
  s->map = addr;
  s->map_len = len;
  return WALRUS_OK;
unsupported:
  w->commit.mapped = 0;
  walrus__log(w, WALRUS_LOG_INFO,
              "mapped writes: the file system cannot; writing with pwrite");
  return WALRUS_OK;
}

/* Drop the tail's mapping, if any.  Stores made through it stay in the
 * file. */
void walrus__seg_unmap(walrus_t *w, walrus__seg_t *s) {
  if (s->map == NULL) return;
  int rc = walrus__os_unmap(w, s->file, s->map, s->map_len);
  if (rc != 0)
    walrus__log(w, WALRUS_LOG_WARN, "unmap %s: error %d", s->name, -rc);
  s->map = NULL;
  s->map_len = 0;
}

/* Drop the mapping and cut the zeros preallocated after end.  Caller holds
 * wlock. */
int walrus__seg_trim(walrus_t *w, walrus__seg_t *s, uint64_t end) {
  walrus__seg_unmap(w, s);
  if (!s->prealloc) return WALRUS_OK;
  int rc = walrus__os_truncate(w, s->file, s->name, end);
  if (rc == WALRUS_OK) s->prealloc = 0;
  return rc;
}

/* Mark s sealed, its index record at index_offset, and count it in the
 * cache of sealed segments (its file and offsets stay loaded).  Caller
 * holds the lock exclusively. */
void walrus__seg_sealed(walrus_t *w, walrus__seg_t *s, uint64_t index_offset) {
  s->sealed = 1;
  s->index_offset = (uint32_t)index_offset;
  pthread_mutex_lock(&w->store.cache_mu);
  s->used = ++w->store.cache_tick;
  w->store.cached++;
  pthread_mutex_unlock(&w->store.cache_mu);
}

/* What eviction detached from a segment, released after the lock. */
typedef struct gone_s {
  walrus_vfs_file_t *file; /* its file */
  uint32_t *offs;          /* its offsets */
  walrus__rmap_t *maps;    /* its mappings, linked through older */
} gone_t;

#define TRIM_BATCH 16

/* Detach the file, offsets and mappings of up to TRIM_BATCH least recently
 * used unpinned sealed segments, until at most cached_segments are open,
 * and the older mappings nothing borrows.  Caller holds the lock
 * exclusively, so no reader is using a ready segment unpinned, and
 * cache_mu.  Returns how many entries of gone it filled. */
static size_t evict(walrus_t *w, gone_t gone[TRIM_BATCH],
                    walrus__rmap_t **stale) {
  size_t n = 0;
  while (n < TRIM_BATCH && w->store.cached > w->cfg.cached_segments) {
    walrus__seg_t *victim = NULL;
    for (size_t i = 0; i < w->store.nsegs; i++) {
      walrus__seg_t *s = w->store.segs[i];
      if (!s->sealed || s->file == NULL || s->pins > 0) continue;
      if (victim == NULL || s->used < victim->used) victim = s;
    }
    if (victim == NULL) break; /* all pinned: over the bound for now */
    atomic_store(&victim->ready, 0);
    gone[n].file = victim->file;
    gone[n].offs = victim->offs;
    gone[n].maps = atomic_exchange(&victim->rmap, NULL);
    if (gone[n].maps != NULL) {
      gone[n].maps->older = victim->rmap_old;
    } else {
      gone[n].maps = victim->rmap_old;
    }
    victim->rmap_old = NULL;
    victim->file = NULL;
    victim->offs = NULL;
    victim->offs_cap = 0;
    w->store.cached--;
    n++;
  }
  for (size_t i = 0; i < w->store.nsegs; i++) {
    walrus__rmap_t **pp = &w->store.segs[i]->rmap_old;
    while (*pp != NULL) {
      walrus__rmap_t *m = *pp;
      if (atomic_load(&m->refs) == 1) { /* only the segment holds it */
        *pp = m->older;
        m->older = *stale;
        *stale = m;
      } else {
        pp = &m->older;
      }
    }
  }
  return n;
}

void walrus__cache_trim(walrus_t *w) {
  gone_t gone[TRIM_BATCH];
  size_t n;
  do {
    walrus__rmap_t *stale = NULL;
    walrus__lock_excl(w);
    pthread_mutex_lock(&w->store.cache_mu);
    atomic_store(&w->store.rmap_stale, 0);
    n = evict(w, gone, &stale);
    pthread_mutex_unlock(&w->store.cache_mu);
    walrus__unlock(w);
    /* Close and unmap outside the lock: munmap of a large mapping is
     * slow, and appends publish under this lock. */
    for (size_t i = 0; i < n; i++) {
      walrus__os_close(w, gone[i].file);
      walrus__free(w, gone[i].offs);
      for (walrus__rmap_t *m = gone[i].maps, *next; m != NULL; m = next) {
        next = m->older;
        walrus__rmap_unref(m);
      }
    }
    for (walrus__rmap_t *m = stale, *next; m != NULL; m = next) {
      next = m->older;
      walrus__rmap_unref(m);
    }
  } while (n == TRIM_BATCH);
}

/* Load a sealed segment's index record: open the file, read and verify the
 * index, check every offset.  Caller holds cache_mu and the lock. */
static int load_sealed(walrus_t *w, walrus__seg_t *s) {
  unsigned char hdr[WALRUS__REC_HEADER_BYTES];
  walrus_vfs_file_t *f;
  walrus__rec_t r;
  uint32_t *offs = NULL;
  int rc = walrus__os_open(w, s->name, WALRUS_VFS_READ, &f);
  if (rc == WALRUS_EIO && w->err.last_errno == ENOENT)
    return walrus__fail(w, WALRUS_ENOSEGMENT, ENOENT, "%s/%s has vanished",
                        w->dir, s->name);
  if (rc != WALRUS_OK) return rc;
  rc = walrus__os_read_full(w, f, s->name, hdr, sizeof hdr, s->index_offset);
  if (rc != WALRUS_OK) goto fail;
  if (walrus__rec_header_decode(hdr, &r) != WALRUS__FMT_OK ||
      r.flags != WALRUS__REC_INDEX || r.index != s->first ||
      r.term != s->count || r.body_len != s->count * 4) {
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s: bad index record at offset %u", w->dir, s->name,
                      s->index_offset);
    goto fail;
  }
  offs = walrus__malloc(w, r.body_len);
  if (offs == NULL) {
    rc = walrus__fail(w, WALRUS_ENOMEM, 0, "index of %s", s->name);
    goto fail;
  }
  rc = walrus__os_read_full(w, f, s->name, offs, r.body_len,
                            s->index_offset + WALRUS__REC_HEADER_BYTES);
  if (rc != WALRUS_OK) goto fail;
  if (walrus__rec_crc(s->salt, hdr, offs, r.body_len) != r.crc) {
    rc = walrus__fail(w, WALRUS_ECHECKSUM, 0,
                      "%s/%s: index record at offset %u fails its checksum",
                      w->dir, s->name, s->index_offset);
    goto fail;
  }
  /* Decode in place and check that offsets rise by at least a header and
   * stay inside the records area. */
  for (uint64_t i = 0; i < s->count; i++) {
    uint32_t o = walrus__get32((const unsigned char *)&offs[i]);
    uint64_t lo = i == 0 ? WALRUS__SEG_HEADER_BYTES
                         : (uint64_t)offs[i - 1] + WALRUS__REC_HEADER_BYTES;
    if (o < lo || (uint64_t)o + WALRUS__REC_HEADER_BYTES > s->index_offset ||
        (i == 0 && o != WALRUS__SEG_HEADER_BYTES) || (o & 7u) != 0) {
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: index entry %llu (offset %u) is out of order",
                        w->dir, s->name, (unsigned long long)i, o);
      goto fail;
    }
    offs[i] = o;
  }
  s->file = f;
  s->offs = offs;
  s->offs_cap = (size_t)s->count;
  w->store.cached++;
  return WALRUS_OK;
fail:
  walrus__free(w, offs);
  walrus__os_close(w, f);
  return rc;
}

/* Pin s so that its file and offsets stay while the caller reads.  Loads a
 * sealed segment that is not cached; the cache is trimmed back to its
 * bound later, by walrus__cache_trim() with the lock held exclusively.
 * Caller holds the lock (shared is enough) and must call
 * walrus__seg_release(). */
int walrus__seg_acquire(walrus_t *w, walrus__seg_t *s) {
  int rc = WALRUS_OK;
  pthread_mutex_lock(&w->store.cache_mu);
  if (s->file == NULL) rc = load_sealed(w, s);
  if (rc == WALRUS_OK) {
    s->pins++;
    s->used = ++w->store.cache_tick;
    atomic_store_explicit(&s->ready, 1, memory_order_release);
  }
  pthread_mutex_unlock(&w->store.cache_mu);
  return rc;
}

void walrus__seg_release(walrus_t *w, walrus__seg_t *s) {
  pthread_mutex_lock(&w->store.cache_mu);
  s->pins--;
  pthread_mutex_unlock(&w->store.cache_mu);
}

/* Drop s from the cache count before it is freed.  Caller holds the lock
 * exclusively. */
void walrus__seg_uncache(walrus_t *w, walrus__seg_t *s) {
  pthread_mutex_lock(&w->store.cache_mu);
  if (s->sealed && s->file != NULL) w->store.cached--;
  pthread_mutex_unlock(&w->store.cache_mu);
}

/* Remove segments [from, from + n) from the table, close and unlink
 * their files, then sync the directory.  Newest first when cutting the
 * back and oldest first when cutting the front, so that a crash part way
 * leaves the remaining segments contiguous.  Each leaves the table under
 * the lock held exclusively: no reader holds a pin across that.  Nothing
 * is allocated, so this cannot fail half way for want of memory. */
int walrus__segs_drop(walrus_t *w, size_t from, size_t n,
                         int newest_first) {
  int rc = WALRUS_OK;
  for (size_t k = 0; k < n; k++) {
    size_t i = newest_first ? from + n - 1 - k : from;
    walrus__lock_excl(w);
    walrus__seg_t *s = w->store.segs[i];
    walrus__seg_uncache(w, s);
    memmove(w->store.segs + i, w->store.segs + i + 1,
            (w->store.nsegs - i - 1) * sizeof *w->store.segs);
    w->store.nsegs--;
    w->store.layout_gen++;
    walrus__unlock(w);
    walrus__seg_unmap(w, s); /* the VFS unmaps before the file closes */
    walrus__os_close(w, s->file);
    s->file = NULL;
    if (rc == WALRUS_OK) rc = walrus__os_unlink(w, s->name);
    if (rc == WALRUS_OK)
      walrus__log(w, WALRUS_LOG_INFO, "removed segment %s", s->name);
    walrus__seg_free(w, s);
  }
  if (rc == WALRUS_OK && n > 0) rc = walrus__os_sync_dir(w);
  return rc;
}

