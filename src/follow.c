/*
 * follow.c: how far the log is durable, and following it: walrus_wait(),
 * walrus_durable_index(), walrus_refresh(), and the follower's side of the
 * DURABLE file through which a writer tells followers in other processes
 * (the writer's side, publishing and waking, is commit.c's).
 *
 * In one process, durable_next moves after every successful sync (under
 * SYNC_ALWAYS, with every group commit) and wakes walrus_wait() sleepers,
 * which never touch the writer's lock.
 *
 * Across processes, the writer keeps DURABLE (docs/FORMAT.md): 64 bytes
 * naming the log, its first index, how far it is durable, and a rewrite
 * count, checksummed, stored into a shared mapping after every sync, so
 * that publishing costs no system call.  The file is never synced: it only
 * says what the segments already prove, and a follower reads records only
 * below the durable index it names.  A read-only handle's walrus_refresh()
 * reads it with one pread and, when it moved, reads the new records from
 * the tail and from segments created since, checking every checksum.
 *
 * A read-only handle that may map the segments also creates and locks a
 * file READER-<random> for its life, so that the writer's truncate_back
 * knows that mappings it cannot see may exist and rewrites the segment it
 * cuts instead of cutting it under them (truncate.c).
 *
 * walrus_wait() on a read-only handle looks at DURABLE with one pread,
 * then sleeps on DURABLE's wake count: after every store of the 64 bytes
 * the writer adds one to the count and wakes the futex waiters on it
 * (Linux), so a follower learns of a sync within a wake-up.  The sleep is
 * also bounded by a backoff from 1 ms up to follow_poll_ms, which is all
 * there is where no wake can come: a VFS that cannot map, a system
 * without futexes, a writer that does not count.  inotify is no
 * substitute: stores through a mapping (DURABLE and, with mapped_writes,
 * the records) raise no inotify event.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "internal.h"

/* Follower: DURABLE's wake count as it is now; 0 without a mapping. */
static uint32_t follow_count(walrus_t *w) {
  void *map = atomic_load(&w->follow.map);
  return map != NULL ? atomic_load(walrus__durable_wake_count(map)) : 0;
}

/* Follower: sleep up to ns, or until the writer changes the wake count
 * from seen.  Without a mapping, just sleep. */
static void follow_sleep(walrus_t *w, uint32_t seen, int64_t ns) {
  unsigned char *map = atomic_load(&w->follow.map);
  if (map != NULL) {
    /* Returns early on a wake, a changed count or a signal: the caller
     * looks again either way. */
    walrus__os_wait_word(
        w, (const uint32_t *)(const void *)(map + WALRUS__DURABLE_WAKE_OFF),
        seen, ns);
    return;
  }
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  nanosleep(&ts, NULL);
}

/* Follower: map DURABLE read-only to sleep on its wake count, once the
 * file has its full size (a writer may be creating it).  Caller holds
 * wlock. */
static void follow_map_open(walrus_t *w) {
  uint64_t size = 0;
  void *addr = NULL;
  if (atomic_load(&w->follow.map) != NULL || w->commit.durable_file == NULL ||
      !w->store.can_map)
    return;
  if (walrus__os_try_size(w, w->commit.durable_file, &size) != 0 ||
      size < WALRUS__DURABLE_FILE_BYTES)
    return;
  if (walrus__os_map_read(w, w->commit.durable_file,
                          WALRUS__DURABLE_FILE_BYTES, &addr) == 0)
    atomic_store(&w->follow.map, addr);
}

#define READER_PREFIX "READER-"

/* A read-only handle registers: READER-<16 hex digits>, created and locked
 * until close.  Best effort: on a read-only file system there is none, and
 * the handle's views are then not protected from the writer's truncate_back
 * (walrus.h). */
static void reader_register(walrus_t *w) {
  unsigned char r[8];
  if (walrus__random(w, r, sizeof r) != 0) return;
  int n = snprintf(w->follow.reader_name, sizeof w->follow.reader_name,
                   READER_PREFIX);
  for (size_t i = 0; i < sizeof r; i++)
    n += snprintf(w->follow.reader_name + n,
                  sizeof w->follow.reader_name - (size_t)n, "%02x", r[i]);
  int e = walrus__os_try_open(w, w->follow.reader_name,
                              WALRUS_VFS_WRITE | WALRUS_VFS_CREATE,
                              &w->follow.reader_file);
  if (e == 0) e = walrus__os_lock(w, w->follow.reader_file);
  if (e != 0) {
    if (w->follow.reader_file != NULL) {
      walrus__os_close(w, w->follow.reader_file);
      walrus__os_try_unlink(w, w->follow.reader_name);
    }
    w->follow.reader_file = NULL;
    walrus__log(w, WALRUS_LOG_WARN,
                "%s: cannot register as a reader (error %d); views of this "
                "handle may change under the writer's truncate_back",
                w->dir, -e);
  }
}

static void reader_unregister(walrus_t *w) {
  if (w->follow.reader_file == NULL) return;
  walrus__os_close(w, w->follow.reader_file);
  w->follow.reader_file = NULL;
  walrus__os_try_unlink(w, w->follow.reader_name);
}

typedef struct readers_s {
  walrus_t *w;  /* the writer */
  int present;  /* a live reader was found */
} readers_t;

/* For each READER-* name: live if its lock is held, else stale: removed. */
static int reader_check(void *arg, const char *name) {
  readers_t *rs = arg;
  walrus_t *w = rs->w;
  walrus_vfs_file_t *f = NULL;
  if (strncmp(name, READER_PREFIX, sizeof READER_PREFIX - 1) != 0) return 0;
  if (walrus__os_try_open(w, name, WALRUS_VFS_WRITE, &f) != 0)
    return 0; /* gone meanwhile */
  int e = walrus__os_lock(w, f);
  walrus__os_close(w, f);
  if (e == 0) {
    walrus__os_try_unlink(w, name); /* its handle is gone */
    return 0;
  }
  rs->present = 1;
  return 1;
}

int walrus__readers_present(walrus_t *w) {
  readers_t rs = {w, 0};
  if (!w->store.can_map) return 0; /* nothing maps through this VFS */
  int e = walrus__os_list(w, reader_check, &rs);
  if (e < 0) return 1; /* cannot tell: assume so */
  return rs.present;
}

void walrus__durable_peek(walrus_t *w) {
  walrus__durable_t d;
  if (w->store.can_map) reader_register(w);
  /* The writer may create DURABLE later; refresh retries. */
  if (walrus__os_try_open(w, WALRUS__DURABLE_NAME, WALRUS_VFS_READ,
                          &w->commit.durable_file) != 0) {
    w->commit.durable_file = NULL;
    return;
  }
  if (walrus__durable_read(w, &d)) {
    w->follow.peek_log_id = d.log_id;
    w->follow.peek_gen = d.gen;
    w->follow.peek_first = d.first_index;
    w->follow.peeked = 1;
  }
}

/* Does d differ from what the peek read (log id, rewrite count and, with
 * first_too, first index)? */
static int moved_since_peek(const walrus_t *w, const walrus__durable_t *d,
                            int first_too) {
  return w->follow.peeked &&
         (d->log_id != w->follow.peek_log_id || d->gen != w->follow.peek_gen ||
          (first_too && d->first_index != w->follow.peek_first));
}

int walrus__durable_moved(walrus_t *w, int first_too) {
  walrus__durable_t d;
  return w->commit.durable_file != NULL && walrus__durable_read(w, &d) &&
         moved_since_peek(w, &d, first_too);
}

int walrus__durable_open(walrus_t *w) {
  walrus__durable_t d;
  if (w->commit.durable_file == NULL &&
      walrus__os_try_open(w, WALRUS__DURABLE_NAME, WALRUS_VFS_READ,
                          &w->commit.durable_file) != 0) {
    w->commit.durable_file = NULL;
    return WALRUS_OK;
  }
  if (walrus__durable_read(w, &d)) {
    /* A truncate_back or reset since the peek may have changed files
     * while open read them. */
    if (moved_since_peek(w, &d, 0))
      return walrus__fail(w, WALRUS_ESTALE, 0,
                          "%s: the writer truncated back or reset the log "
                          "while it was being opened; open it again",
                          w->dir);
    if (d.log_id == w->store.meta.log_id) w->commit.durable_gen = d.gen;
  }
  /* Mid truncate_back (or after a writer that died in one), the table
   * ends at the cut but a segment may still count entries after it:
   * reading on from there is left to a handle opened after the cut. */
  w->follow.stale = (w->store.meta.flags & WALRUS__META_TRUNC_PENDING) != 0;
  follow_map_open(w);
  return WALRUS_OK;
}

void walrus__durable_close(walrus_t *w) {
  reader_unregister(w);
  void *map = atomic_exchange(&w->follow.map, NULL);
  if (map != NULL)
    walrus__vfs_unmap_read(w->vfs, map, WALRUS__DURABLE_FILE_BYTES);
  walrus__durable_writer_close(w);
}

uint64_t walrus_durable_index(walrus_t *w) {
  if (w == NULL) return 0;
  uint64_t d = atomic_load(&w->commit.durable_next);
  walrus__lock_shared(w);
  uint64_t first = w->store.first_index;
  walrus__unlock(w);
  return d > first ? d - 1 : 0;
}

/* Open segment first as the new tail of a follower's table.  Caller holds
 * wlock. */
static int follow_segment(walrus_t *w, uint64_t first) {
  unsigned char hdr[WALRUS__SEG_HEADER_BYTES];
  walrus__seg_header_t h;
  walrus__seg_t *s = walrus__seg_new(w, first);
  if (s == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "new segment");
  int rc = walrus__os_open(w, s->name, WALRUS_VFS_READ, &s->file);
  if (rc == WALRUS_OK)
    rc = walrus__os_read_full(w, s->file, s->name, hdr, sizeof hdr, 0);
  if (rc == WALRUS_OK &&
      (walrus__fmt_seg_header_decode(hdr, &h) != WALRUS__FMT_OK ||
       h.log_id != w->store.meta.log_id || h.first_index != first))
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0, "%s/%s: bad segment header",
                      w->dir, s->name);
  if (rc == WALRUS_OK) {
    s->salt = h.salt;
    s->seed = walrus__salt_seed(h.salt);
    s->version = h.version;
    rc = walrus__seg_reserve(w, s, 1);
  }
  if (rc == WALRUS_OK) {
    walrus__lock_excl(w);
    rc = walrus__segs_push(w, s);
    walrus__unlock(w);
  }
  if (rc != WALRUS_OK) walrus__seg_free(w, s);
  return rc;
}

/* Read the tail's records from its end until index want is in or the tail
 * is sealed (*sealed).  Caller holds wlock; the records read are
 * published when it returns. */
static int follow_tail(walrus_t *w, uint64_t want, int *sealed) {
  walrus__seg_t *t = w->store.segs[w->store.nsegs - 1];
  walrus__window_t win = {0};
  uint64_t off = t->end, count = t->count;
  uint64_t limit = UINT64_MAX;
  int rc = WALRUS_OK;
  *sealed = 0;
  const walrus__scan_t from = {&win, t->file, t->name, t->seed, limit, 0};
  while (t->first + count < want) {
    const unsigned char *p;
    walrus__rec_t r;
    walrus__found_t found;
    rc = walrus__scan_record(w, &from, off, &r, &p, &found);
    if (rc != WALRUS_OK) break;
    uint64_t index = t->first + count;
    if (found != WALRUS__FOUND_RECORD) {
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: durable entry %llu at offset %llu is "
                        "missing or damaged",
                        w->dir, t->name, (unsigned long long)index,
                        (unsigned long long)off);
      break;
    }
    if (r.flags & WALRUS__REC_INDEX) {
      /* Sealed: the index record ends the records. */
      if (r.index != t->first || r.term != count) {
        rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                          "%s/%s: index record at offset %llu does not "
                          "match its records",
                          w->dir, t->name, (unsigned long long)off);
        break;
      }
      *sealed = 1;
      break;
    }
    if (r.flags & WALRUS__REC_MARK) {
      off += WALRUS__REC_HEADER_BYTES;
      continue;
    }
    if (r.index != index) {
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: record at offset %llu is %llu, not %llu",
                        w->dir, t->name, (unsigned long long)off,
                        (unsigned long long)r.index,
                        (unsigned long long)index);
      break;
    }
    if (count + 1 > t->offs_cap) {
      walrus__lock_excl(w); /* offs may move */
      rc = walrus__seg_reserve(w, t, count + 1 - t->count);
      walrus__unlock(w);
      if (rc != WALRUS_OK) break;
    }
    t->offs[count++] = (uint32_t)off;
    off += walrus__rec_size(r.body_len);
  }
  walrus__window_free(w, &win);
  walrus__lock_excl(w);
  t->count = t->written = count;
  t->end = off;
  w->store.next_index = t->first + count;
  if (*sealed) walrus__seg_sealed(w, t, off);
  walrus__unlock(w);
  return rc;
}

int walrus_refresh(walrus_t *w) {
  walrus__durable_t d;
  int rc = WALRUS_OK;
  if (w == NULL) return WALRUS_EINVAL;
  if (!w->cfg.read_only) return WALRUS_OK;
  pthread_mutex_lock(&w->wlock);
  if (w->commit.durable_file == NULL &&
      walrus__os_try_open(w, WALRUS__DURABLE_NAME, WALRUS_VFS_READ,
                          &w->commit.durable_file) != 0)
    w->commit.durable_file = NULL;
  if (rc == WALRUS_OK) follow_map_open(w);
  if (rc != WALRUS_OK || w->commit.durable_file == NULL ||
      !walrus__durable_read(w, &d))
    goto out; /* no writer publishes (yet) */
  /* A truncate_back or reset changes gen or log_id.  durable_next below
   * what this handle has, with neither changed, only means its open found
   * entries written but not yet synced: nothing went. */
  if (d.log_id != w->store.meta.log_id || d.gen != w->commit.durable_gen ||
      w->follow.stale) {
    rc = walrus__fail(w, WALRUS_ESTALE, 0,
                      "%s: the writer truncated back or reset the log; "
                      "reopen to follow it",
                      w->dir);
    goto out;
  }
  while (rc == WALRUS_OK && w->store.next_index < d.durable_next) {
    int sealed = 0;
    if (w->store.nsegs == 0 || w->store.segs[w->store.nsegs - 1]->sealed) {
      rc = follow_segment(w, w->store.next_index);
      if (rc != WALRUS_OK) break;
    }
    rc = follow_tail(w, d.durable_next, &sealed);
    if (rc == WALRUS_OK && !sealed && w->store.next_index < d.durable_next)
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s: entries up to %llu are durable but not found",
                        w->dir, (unsigned long long)(d.durable_next - 1));
  }
  if (rc != WALRUS_OK) {
    /* A truncation since DURABLE was read may have removed or cut what
     * this read (truncate_back and reset bump gen; truncate_front moves
     * the first index past what this handle has): then that is why. */
    walrus__durable_t now;
    if (walrus__durable_read(w, &now) &&
        (now.log_id != d.log_id || now.gen != d.gen ||
         now.first_index > w->store.next_index))
      rc = walrus__fail(w, WALRUS_ESTALE, 0,
                        "%s: the writer truncated or reset the log while "
                        "this handle read it (%s); reopen to follow it",
                        w->dir, walrus_errname(rc));
  }
  if (d.first_index > w->store.first_index &&
      d.first_index <= w->store.next_index) {
    /* truncate_front: entries below it are gone; files may be too.  Drop
     * whole segments below it from the table. */
    walrus__lock_excl(w);
    w->store.first_index = d.first_index;
    w->store.layout_gen++;
    size_t drop = 0;
    while (drop + 1 < w->store.nsegs &&
           w->store.segs[drop]->first + w->store.segs[drop]->count <=
               d.first_index)
      drop++;
    walrus__seg_t **gone = NULL;
    if (drop > 0) {
      gone = walrus__malloc(w, drop * sizeof *gone);
      if (gone != NULL) {
        for (size_t i = 0; i < drop; i++) {
          walrus__seg_uncache(w, w->store.segs[i]);
          gone[i] = w->store.segs[i];
        }
        memmove(w->store.segs, w->store.segs + drop,
                (w->store.nsegs - drop) * sizeof *w->store.segs);
        w->store.nsegs -= drop;
      }
    }
    walrus__unlock(w);
    if (gone != NULL)
      for (size_t i = 0; i < drop; i++) walrus__seg_free(w, gone[i]);
    walrus__free(w, gone);
  }
  walrus__durable_set(w, w->store.next_index, 0);
out:
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

int walrus_wait(walrus_t *w, uint64_t index, uint32_t timeout_ms) {
  if (w == NULL) return WALRUS_EINVAL;
  if (index == 0)
    return walrus__fail(w, WALRUS_EINVAL, 0, "wait: index 0 is never written");
  int64_t deadline = walrus__mono_ns() + (int64_t)timeout_ms * 1000000;
  int forever = timeout_ms == WALRUS_WAIT_FOREVER;
  uint32_t nap_ms = 1, seen = 0;
  for (;;) {
    if (atomic_load(&w->commit.durable_next) > index) return WALRUS_OK;
    if (w->cfg.read_only) {
      /* The count first, DURABLE after: a store between the two wakes the
       * sleep below at once. */
      seen = follow_count(w);
      uint64_t before = atomic_load(&w->commit.durable_next);
      int rc = walrus_refresh(w);
      if (rc != WALRUS_OK) return rc;
      if (atomic_load(&w->commit.durable_next) > index) return WALRUS_OK;
      if (atomic_load(&w->commit.durable_next) != before) nap_ms = 1;
    } else if (atomic_load(&w->commit.broken)) {
      return walrus__fail(w, WALRUS_EPOISONED, 0,
                          "wait: the handle is poisoned; the entry may "
                          "never be durable");
    }
    int64_t now = walrus__mono_ns();
    if (!forever && now >= deadline)
      return walrus__fail(w, WALRUS_ETIMEDOUT, 0,
                          "wait: entry %llu is not durable after %u ms",
                          (unsigned long long)index, timeout_ms);
    int64_t left = forever ? INT64_MAX : deadline - now;
    if (w->cfg.read_only) {
      uint32_t most = w->cfg.follow_poll_ms;
      int64_t ns = (int64_t)nap_ms * 1000000;
      if (ns > left) ns = left;
      follow_sleep(w, seen, ns);
      if (nap_ms < most) nap_ms = nap_ms > most / 2 ? most : nap_ms * 2;
      continue;
    }
    /* Writable: sleep until durable_next moves (or a poisoning sync ends;
     * fail_writes wakes us too).  A bounded sleep covers a wake-up lost
     * between the check above and the wait. */
    uint32_t ms = left > 100000000 ? 100 : (uint32_t)(left / 1000000) + 1;
    struct timespec ts = walrus__deadline_ms(ms);
    pthread_mutex_lock(&w->commit.wait_mu);
    atomic_fetch_add(&w->commit.waiters, 1);
    if (atomic_load(&w->commit.durable_next) <= index &&
        !atomic_load(&w->commit.broken))
      pthread_cond_timedwait(&w->commit.wait_cv, &w->commit.wait_mu, &ts);
    atomic_fetch_sub(&w->commit.waiters, 1);
    pthread_mutex_unlock(&w->commit.wait_mu);
  }
}
