/*
 * rmap.c: read-only mappings of segment files, and the messages of records
 * read through one that fail their checks (walrus__rec_view, internal.h).
 *
 * A segment maps its file once, on the first mapped read, through the VFS's
 * map_read: a sealed segment up to its index record, the tail up to
 * segment_bytes (or its end, if a unit carried it further), so that the
 * tail's later records fall inside the same mapping.  The mapping is a
 * reference-counted walrus__rmap_t: the segment holds one reference and
 * every view or iterator that borrows bytes from it holds another.  When a
 * tail outgrows its mapping a longer one replaces it and the old one waits
 * on the segment's older list until its borrows are gone.
 *
 * Only the lock held exclusively drops a segment's references (eviction,
 * removal, truncation), so a reader holding the lock shared may use
 * s->rmap and take a reference without any other synchronization.  The
 * last reference unmaps and frees the mapping, on whatever thread drops
 * it, even after the handle is gone: the mapping carries its own VFS and
 * allocator.
 */
#include <string.h>

#include "internal.h"

static uint64_t round_page(uint64_t n) {
  return (n + 4095) & ~(uint64_t)4095;
}

void walrus__rmap_ref(walrus__rmap_t *m) {
  atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void walrus__rmap_unref(walrus__rmap_t *m) {
  if (m == NULL) return;
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
  walrus__vfs_unmap_read(m->vfs, m->addr, m->len);
  m->alloc.free_fn(m->alloc.ud, m);
}

int walrus__rmap_get(walrus_t *w, walrus__seg_t *s, uint64_t need,
                     walrus__rmap_t **out) {
  walrus__rmap_t *m = atomic_load_explicit(&s->rmap, memory_order_acquire);
  *out = NULL;
  if (m != NULL && need <= m->len) {
    *out = m;
    return WALRUS_OK;
  }
  if (!w->store.can_map) return WALRUS_OK;
  int rc = WALRUS_OK;
  pthread_mutex_lock(&w->store.cache_mu);
  m = atomic_load_explicit(&s->rmap, memory_order_acquire);
  if (m == NULL || need > m->len) {
    uint64_t len = s->sealed ? s->index_offset : w->cfg.segment_bytes;
    if (len < need) len = need;
    len = round_page(len);
    void *addr = NULL;
    int e = walrus__os_map_read(w, s->file, len, &addr);
    walrus__rmap_t *n = NULL;
    if (e == 0) {
      n = walrus__malloc(w, sizeof *n);
      if (n == NULL) walrus__vfs_unmap_read(w->vfs, addr, len);
    }
    if (e != 0 || n == NULL) {
      pthread_mutex_unlock(&w->store.cache_mu);
      /* Not mappable here (the VFS declines, address space runs out):
       * the caller reads with pread instead. */
      if (e == 0)
        return walrus__fail(w, WALRUS_ENOMEM, 0, "mapping of %s", s->name);
      walrus__log(w, WALRUS_LOG_DEBUG, "map_read %s: error %d", s->name, -e);
      return WALRUS_OK;
    }
    atomic_init(&n->refs, 1);
    n->addr = addr;
    n->len = len;
    n->vfs = w->vfs;
    n->alloc = w->alloc;
    n->older = NULL;
    n->salt = s->salt;
    n->seed = s->seed;
    n->version = s->version;
    atomic_init(&n->populated, 0);
    memcpy(n->name, s->name, sizeof n->name);
    if (m != NULL) {
      /* Readers may still be using m under the shared lock: keep the
       * segment's reference until the lock is next held exclusively. */
      m->older = s->rmap_old;
      s->rmap_old = m;
      atomic_store(&w->store.rmap_stale, 1);
    }
    atomic_store_explicit(&s->rmap, n, memory_order_release);
    m = n;
  }
  pthread_mutex_unlock(&w->store.cache_mu);
  *out = m;
  return rc;
}

int walrus__rmap_borrowed(walrus__seg_t *s) {
  walrus__rmap_t *m = atomic_load(&s->rmap);
  if (m != NULL && atomic_load(&m->refs) > 1) return 1;
  for (m = s->rmap_old; m != NULL; m = m->older)
    if (atomic_load(&m->refs) > 1) return 1;
  return 0;
}

void walrus__rmap_drop(walrus__seg_t *s) {
  walrus__rmap_t *m = atomic_exchange(&s->rmap, NULL);
  walrus__rmap_unref(m);
  while (s->rmap_old != NULL) {
    m = s->rmap_old;
    s->rmap_old = m->older;
    walrus__rmap_unref(m);
  }
}

int walrus__rec_view_fail(walrus_t *w, int why, const char *name,
                          uint64_t index, uint64_t off) {
  if (why == WALRUS_ECHECKSUM)
    return walrus__fail(w, WALRUS_ECHECKSUM, 0,
                        "%s/%s: record %llu at offset %llu fails its "
                        "checksum",
                        w->dir, name, (unsigned long long)index,
                        (unsigned long long)off);
  if (why == WALRUS_EINDEX)
    return walrus__fail(
        w, WALRUS_ECORRUPT, 0, "%s/%s: record at offset %llu is not entry %llu",
        w->dir, name, (unsigned long long)off, (unsigned long long)index);
  return walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s: record %llu at offset %llu is malformed", w->dir,
                      name, (unsigned long long)index, (unsigned long long)off);
}
