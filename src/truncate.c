/*
 * truncate.c: removing entries: walrus_truncate_back (a suffix),
 * walrus_truncate_front (a prefix) and walrus_reset (everything).
 * Retention by max_segments moves the front the same way (commit.c).
 *
 * Each is crash-safe: after a crash at any point, reopening shows either
 * the old log or the new one.
 *
 *  - truncate_back records its intent first (META: "entries after K are
 *    void"), then unlinks later segments newest first, cuts the segment
 *    holding K after K (a sealed one loses its index and trailer and
 *    becomes the tail), appends a closing mark if K was cut out of the
 *    middle of a batch (format.h), syncs, and clears META.  Open treats
 *    entries after K as void and finishes an unfinished one.
 *  - truncate_front records the new first index in META first, then
 *    unlinks whole segments below it.  Open removes any that remain.
 *  - reset gives the log a new identity in META (remembering the old one),
 *    then unlinks every segment.  Open removes segments of the old identity.
 *
 * Segments leave the table under the lock held exclusively, which no reader
 * holds a pin across, so their files are closed and unlinked safely after.
 */
#include <string.h>

#include "internal.h"

/* Write bytes [0, cut) of segment s (read from f) to <name>.tmp, sync it,
 * rename it over the segment and sync the directory: the segment file
 * truncated to cut, under a new inode.  *out gets the new file, open for
 * writing.  Caller holds wlock (w->commit.buf is idle). */
static int rewrite_prefix(walrus_t *w, walrus__seg_t *s, walrus_vfs_file_t *f,
                          uint64_t cut, walrus_vfs_file_t **out) {
  char tmp[WALRUS__SEG_NAME_LEN + 5];
  walrus_vfs_file_t *nf = NULL;
  memcpy(tmp, s->name, WALRUS__SEG_NAME_LEN);
  memcpy(tmp + WALRUS__SEG_NAME_LEN, ".tmp", 5);
  int rc = walrus__os_unlink(w, tmp);
  if (rc == WALRUS_OK)
    rc = walrus__os_open(w, tmp, WALRUS_VFS_WRITE | WALRUS_VFS_CREATE, &nf);
  for (uint64_t off = 0; rc == WALRUS_OK && off < cut;) {
    size_t n = cut - off < w->cfg.buffer_bytes ? (size_t)(cut - off)
                                                : w->cfg.buffer_bytes;
    rc = walrus__os_read_full(w, f, s->name, w->commit.buf, n, off);
    if (rc == WALRUS_OK)
      rc = walrus__os_write(w, nf, tmp, w->commit.buf, n, off);
    off += n;
  }
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, nf, tmp);
  if (rc == WALRUS_OK) rc = walrus__os_rename(w, tmp, s->name);
  if (rc == WALRUS_OK) rc = walrus__os_sync_dir(w);
  if (rc != WALRUS_OK) {
    walrus__os_close(w, nf);
    walrus__os_unlink(w, tmp);
    return rc;
  }
  walrus__log(w, WALRUS_LOG_INFO,
              "truncate_back: %s is borrowed; its first %llu bytes were "
              "written to a new file",
              s->name, (unsigned long long)cut);
  *out = nf;
  return WALRUS_OK;
}

/* Make entry last_kept the last one: the second half of truncate_back, also
 * run by open when META says one was interrupted.  Caller holds wlock (or
 * is open, alone with the handle).  META already records the intent.  pre,
 * if not NULL, is the sealed segment to cut, opened writable in advance
 * (with its index loaded), and becomes this function's. */
int walrus__finish_truncate_back(walrus_t *w, uint64_t last_kept,
                                 walrus_vfs_file_t *pre) {
  size_t keep = w->store.nsegs;
  int rc;
  /* At open, a META intent may name an entry a power loss took (under
   * SYNC_NONE): the log then already ends before it. */
  if (last_kept >= w->store.next_index) last_kept = w->store.next_index - 1;
  /* Followers learn first that the entries after last_kept go. */
  walrus__durable_set(w, last_kept + 1, 1);
  while (keep > 0 && w->store.segs[keep - 1]->first > last_kept) keep--;
  rc = walrus__segs_drop(w, keep, w->store.nsegs - keep, 1);
  if (rc != WALRUS_OK) {
    walrus__os_close(w, pre);
    return rc;
  }
  if (w->store.nsegs > 0) {
    walrus__seg_t *s = w->store.segs[w->store.nsegs - 1];
    uint64_t newcount = last_kept + 1 - s->first;
    if (!(s->sealed && newcount == s->count)) {
      /* Cut the segment after last_kept; a sealed one loses its index and
       * trailer with the cut and becomes the tail. */
      walrus_vfs_file_t *f = s->file;
      if (s->sealed && pre != NULL) {
        f = pre;
        pre = NULL;
      } else if (s->sealed) {
        rc = walrus__seg_acquire(w, s);
        if (rc != WALRUS_OK) return rc;
        walrus__seg_release(w, s);
        rc = walrus__os_open(w, s->name, WALRUS_VFS_WRITE, &f);
        if (rc != WALRUS_OK) return rc;
      }
      uint64_t cut = newcount < s->count ? s->offs[newcount] : s->end;
      int closed = 1;
      uint32_t kept_epoch = w->commit.epoch;
      if (newcount > 0) {
        /* Does entry last_kept end its unit?  If it was cut out of a
         * batch, a closing mark after it will say so. */
        unsigned char hdr[WALRUS__REC_HEADER_BYTES];
        walrus__rec_t r;
        rc = walrus__os_read_full(w, f, s->name, hdr, sizeof hdr,
                                  s->offs[newcount - 1]);
        if (rc == WALRUS_OK && (walrus__rec_header_decode(hdr, &r) !=
                                    WALRUS__FMT_OK ||
                                r.index != last_kept))
          rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                            "%s/%s: entry %llu is not where its index says",
                            w->dir, s->name, (unsigned long long)last_kept);
        if (rc != WALRUS_OK) {
          if (f != s->file) walrus__os_close(w, f);
          return rc;
        }
        closed = (r.flags & WALRUS__REC_LAST) != 0;
        kept_epoch = r.epoch;
        /* Cut out of its batch, entry last_kept ends at its own record:
         * a closing mark an earlier truncate_back left after it (its
         * extent runs to the next unit) goes too, or there would be two. */
        if (!closed) cut = s->offs[newcount - 1] + walrus__rec_size(r.body_len);
      }
      walrus__seg_unmap(w, s);
      s->prealloc = 0;
      /* Cutting a file under a borrowed mapping would turn the borrowed
       * pages into SIGBUS, and appends would then change their bytes: when
       * this handle has lent a mapping, or a read-only handle (which may
       * have) is open, the kept records go to a new file that replaces this
       * one, and the borrows keep the old file's bytes. */
      int borrowed = walrus__readers_present(w);
      walrus__lock_excl(w);
      borrowed = borrowed || walrus__rmap_borrowed(s);
      walrus__unlock(w);
      walrus_vfs_file_t *nf = NULL;
      for (;;) {
        if (borrowed && nf == NULL) {
          rc = rewrite_prefix(w, s, f, cut, &nf);
          if (rc != WALRUS_OK) {
            if (f != s->file) walrus__os_close(w, f);
            return rc;
          }
        }
        walrus__lock_excl(w);
        if (nf != NULL || !walrus__rmap_borrowed(s)) break;
        walrus__unlock(w); /* borrowed since the check: copy after all */
        borrowed = 1;
      }
      walrus__rmap_drop(s); /* borrows keep their own references */
      if (nf != NULL) {
        if (f != s->file) walrus__os_close(w, f);
        f = nf;
        rc = WALRUS_OK;
      } else {
        rc = walrus__os_truncate(w, f, s->name, cut);
      }
      if (rc == WALRUS_OK) {
        if (s->sealed) {
          pthread_mutex_lock(&w->store.cache_mu);
          w->store.cached--;
          pthread_mutex_unlock(&w->store.cache_mu);
        }
        if (f != s->file) {
          walrus__os_close(w, s->file);
          s->file = f;
        }
        s->sealed = 0;
        s->index_offset = 0;
        s->count = s->written = newcount;
        s->end = cut;
        w->store.layout_gen++;
      }
      walrus__unlock(w);
      if (rc != WALRUS_OK) {
        if (f != s->file) walrus__os_close(w, f);
        return rc;
      }
      /* Epochs stay consecutive along the file (format.h): a closing mark
       * shares the kept entry's epoch and the next record gets the one
       * after it. */
      w->commit.epoch = kept_epoch;
      if (!closed) {
        rc = walrus__write_mark(w, s, cut, last_kept, WALRUS__REC_LAST);
        if (rc != WALRUS_OK) return rc;
        s->end = cut + WALRUS__REC_HEADER_BYTES;
      }
      rc = walrus__os_sync(w, s->file, s->name);
      if (rc != WALRUS_OK) return rc;
      w->commit.epoch = kept_epoch + 1;
    }
    w->commit.write_off = s->end;
  }
  walrus__os_close(w, pre); /* not needed after all */
  walrus__lock_excl(w);
  w->store.next_index = w->commit.write_next = last_kept + 1;
  for (walrus_iter_t *it = w->store.iters; it != NULL; it = it->next_it)
    if (it->cut > last_kept + 1) it->cut = last_kept + 1;
  if (w->store.first_index > w->store.next_index)
    w->store.first_index = w->store.next_index;
  w->store.layout_gen++;
  walrus__unlock(w);
  w->commit.group_open = 0;
  w->commit.dirty = 0;
  if (w->store.meta.flags & WALRUS__META_TRUNC_PENDING) {
    walrus__meta_t m = w->store.meta;
    m.flags &= ~WALRUS__META_TRUNC_PENDING;
    m.trunc_last = 0;
    rc = walrus__meta_write(w, &m);
    if (rc != WALRUS_OK) return rc;
  }
  /* For followers that opened during the cut: after META is clean, so
   * that one that reads this count reads a clean META too. */
  walrus__durable_bump(w);
  walrus__log(w, WALRUS_LOG_INFO, "truncate_back: the log now ends at %llu",
              (unsigned long long)last_kept);
  return WALRUS_OK;
}

int walrus_truncate_back(walrus_t *w, uint64_t last_kept) {
  int rc;
  if (w == NULL) return WALRUS_EINVAL;
  pthread_mutex_lock(&w->wlock);
  rc = walrus__writable(w);
  if (rc == WALRUS_OK) rc = walrus__drain_locked(w);
  if (rc != WALRUS_OK) goto out;
  if (last_kept + 1 < w->store.first_index ||
      last_kept >= w->store.next_index) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "truncate_back(%llu): last kept must be in %llu..%llu",
                      (unsigned long long)last_kept,
                      (unsigned long long)(w->store.first_index - 1),
                      (unsigned long long)(w->store.next_index - 1));
    goto out;
  }
  if (last_kept + 1 == w->store.next_index) goto out; /* nothing to remove */
  /* What can fail for want of memory comes before the intent is recorded,
   * so that such a failure changes nothing: the index of a sealed segment
   * that will be cut (pinned meanwhile) and its file opened writable. */
  walrus__seg_t *pinned = NULL;
  walrus_vfs_file_t *pre = NULL;
  size_t i = walrus__seg_find(w, last_kept);
  if (i < w->store.nsegs && w->store.segs[i]->sealed &&
      last_kept + 1 - w->store.segs[i]->first != w->store.segs[i]->count) {
    rc = walrus__seg_acquire(w, w->store.segs[i]);
    if (rc != WALRUS_OK) goto out;
    pinned = w->store.segs[i];
    rc = walrus__os_open(w, pinned->name, WALRUS_VFS_WRITE, &pre);
    if (rc != WALRUS_OK) {
      walrus__seg_release(w, pinned);
      goto out;
    }
  }
  walrus__meta_t m = w->store.meta;
  m.flags |= WALRUS__META_TRUNC_PENDING;
  m.trunc_last = last_kept;
  rc = walrus__meta_write(w, &m);
  if (rc == WALRUS_OK) {
    rc = walrus__finish_truncate_back(w, last_kept, pre);
    if (rc != WALRUS_OK) walrus__poison(w, rc);
  } else {
    walrus__os_close(w, pre);
    /* Out of memory can only have hit the creation of META.tmp: nothing
     * changed and the handle stays usable. */
    if (rc != WALRUS_ENOMEM) walrus__poison(w, rc);
  }
  if (pinned != NULL) walrus__seg_release(w, pinned);
out:
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

int walrus_truncate_front(walrus_t *w, uint64_t first_kept) {
  int rc;
  if (w == NULL) return WALRUS_EINVAL;
  pthread_mutex_lock(&w->wlock);
  rc = walrus__writable(w);
  if (rc == WALRUS_OK) rc = walrus__drain_locked(w);
  if (rc != WALRUS_OK) goto out;
  if (first_kept < w->store.first_index || first_kept > w->store.next_index) {
    rc = walrus__fail(w, WALRUS_EINDEX, 0,
                      "truncate_front(%llu): first kept must be in "
                      "%llu..%llu",
                      (unsigned long long)first_kept,
                      (unsigned long long)w->store.first_index,
                      (unsigned long long)w->store.next_index);
    goto out;
  }
  if (first_kept == w->store.first_index) goto out;
  rc = walrus__move_front(w, first_kept);
  if (rc != WALRUS_OK) walrus__poison(w, rc);
out:
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

int walrus_reset(walrus_t *w, uint64_t next_index) {
  walrus__meta_t m;
  int rc;
  if (w == NULL) return WALRUS_EINVAL;
  if (next_index == 0 || next_index > WALRUS_INDEX_MAX)
    return walrus__fail(w, WALRUS_EINVAL, 0,
                        "reset: next index %llu is outside 1..%llu",
                        (unsigned long long)next_index,
                        (unsigned long long)WALRUS_INDEX_MAX);
  pthread_mutex_lock(&w->wlock);
  rc = walrus__writable(w);
  if (rc == WALRUS_OK) rc = walrus__drain_locked(w);
  if (rc != WALRUS_OK) goto out;
  walrus__lock_shared(w);
  int busy = w->store.iters != NULL;
  walrus__unlock(w);
  if (busy) {
    rc = walrus__fail(w, WALRUS_EBUSY, 0, "reset: iterators are open");
    goto out;
  }
  m.flags = 0;
  m.trunc_last = 0;
  m.prev_log_id = w->store.meta.log_id;
  m.first_index = next_index;
  do {
    int e = walrus__random(w, &m.log_id, sizeof m.log_id);
    if (e != 0) {
      rc = walrus__fail(w, WALRUS_EIO, -e, "random log id");
      goto out;
    }
  } while (m.log_id == 0 || m.log_id == w->store.meta.log_id);
  rc = walrus__meta_write(w, &m);
  if (rc == WALRUS_OK) {
    rc = walrus__segs_drop(w, 0, w->store.nsegs, 1);
    walrus__lock_excl(w);
    w->store.first_index = w->store.next_index = w->commit.write_next =
        next_index;
    w->store.layout_gen++;
    walrus__unlock(w);
    atomic_store(&w->commit.durable_next, next_index);
    walrus__durable_bump(w);
    w->commit.write_off = 0;
    w->commit.epoch++;
    w->commit.group_open = 0;
    w->commit.dirty = 0;
    walrus__log(w, WALRUS_LOG_INFO, "reset: the log is empty; next index %llu",
                (unsigned long long)next_index);
  }
  if (rc != WALRUS_OK) walrus__poison(w, rc);
out:
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

