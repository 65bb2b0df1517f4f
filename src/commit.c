/*
 * commit.c: how a written unit becomes durable and visible, and what must
 * happen in order around it.
 *
 *  - Group commit (SYNC_ALWAYS): one writer at a time is the leader; it
 *    captures everything written so far, drops wlock for the fdatasync and
 *    publishes what it covered, while writers that arrive meanwhile write
 *    their units and wait for the next leader (wait_durable).
 *  - Sync groups: every record carries its group's epoch; the first record
 *    of a group carries GROUP, and every record of a group that began while
 *    the previous one was being synced carries OVERLAP; a sync mark after
 *    the last entry of a sync lets recovery tell it from a torn group
 *    (format.h).
 *  - walrus_sync's work, the SYNC_INTERVAL thread, and the drain that
 *    truncation and reset wait for.
 *  - Rotation: sealing a full tail (the records, then the index record,
 *    then the trailer, each synced before the next), creating the next
 *    segment, and retention by max_segments after it.
 *  - DURABLE: the writer's published state, stored into a shared mapping
 *    after every sync, and the wake of followers in other processes that
 *    sleep on its word (the VFS's wake_word: a futex on Linux).
 *  - Fail-stop: a failed write or sync cuts the tail back to what is
 *    published and poisons the handle.
 *
 * Everything here runs with wlock held (the caller's), except that the
 * group commit leader drops it for its fdatasync.  It uses the store
 * (segments, META) and the base (I/O, format), never the API above it.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---- publishing and group commit ----------------------------------------- */

/* What one sync covers: everything written when it was captured. */
typedef struct capture_s {
  walrus__seg_t *t; /* the tail */
  uint64_t count;   /* records written to it */
  uint64_t end;     /* where they end */
  uint64_t next;    /* the next index to assign */
  uint64_t seq;     /* the last unit written */
} capture_t;

/* What a queued writer is told when it is taken out of the queue. */
enum {
  WAITER_QUEUED, /* still in the queue */
  WAITER_DONE,   /* its units are durable (rc WALRUS_OK), or rc says why not */
  WAITER_LEAD,   /* it is handed the next sync: capture and run it */
  WAITER_RETRY   /* no sync runs for it: decide again under wlock */
};

/* A writer waiting for its units to become durable (group commit).  It
 * lives on the writer's stack.  It is in the handle's queue (wlock), in
 * the order of its units, until a sync covers them or it is handed the
 * next sync; then whoever took it out posts its semaphore once, after
 * setting state, and the writer goes on without taking wlock again. */
struct walrus__waiter_s {
  uint64_t seq;                  /* the last unit it wrote */
  int state;                     /* WAITER_* */
  int rc;                        /* WAITER_DONE: the outcome */
  capture_t c;                   /* WAITER_LEAD: the sync it runs */
  sem_t sem;                     /* posted once it leaves the queue */
  struct walrus__waiter_s *next; /* the next in the queue, or to wake */
};
typedef struct walrus__waiter_s waiter_t;

/* Capture what a sync is about to cover and start a new sync group: the
 * next record written gets the next epoch and GROUP.  Caller holds wlock;
 * the tail has unsynced writes. */
static capture_t capture(walrus_t *w) {
  capture_t c;
  c.t = w->store.segs[w->store.nsegs - 1];
  c.count = c.t->written;
  c.end = w->commit.write_off;
  c.next = w->commit.write_next;
  c.seq = w->commit.write_seq;
  w->commit.dirty = 0;
  w->commit.epoch++;
  w->commit.group_open = 0;
  return c;
}

/* Post every waiter of a wake list, in order.  A waiter may return as
 * soon as its semaphore is posted, so its link is read first. */
static void wake(waiter_t *list) {
  while (list != NULL) {
    waiter_t *next = list->next;
    sem_post(&list->sem);
    list = next;
  }
}

/* Take every waiter out of the queue as WAITER_DONE with rc (a failure
 * poisoned the handle) and wake them.  Caller holds wlock. */
static void wake_all(walrus_t *w, int rc) {
  waiter_t *list = w->commit.wait_head;
  for (waiter_t *q = list; q != NULL; q = q->next) {
    q->state = WAITER_DONE;
    q->rc = rc;
  }
  w->commit.wait_head = w->commit.wait_tail = NULL;
  wake(list);
}

/* A sync just made units up to durable_seq durable: take their waiters
 * out of the queue (WAITER_DONE), and return them as a list to wake(),
 * headed by the waiter that syncs the rest, if any wait.  With hand_off
 * (a group commit leader finishing, and nobody waiting on sync_cv for
 * syncs to stop), the oldest waiter left is handed the next sync:
 * sync_running stays set, so that no other writer starts one, and it
 * captures when it runs, which takes in every unit written until then.
 * Otherwise it is told to decide again (WAITER_RETRY) and sync_running
 * is cleared.  Caller holds wlock. */
static waiter_t *settle(walrus_t *w, int hand_off) {
  waiter_t *done = NULL, **link = &done, *q;
  while ((q = w->commit.wait_head) != NULL && q->seq <= w->commit.durable_seq) {
    w->commit.wait_head = q->next;
    q->state = WAITER_DONE;
    q->rc = WALRUS_OK;
    q->next = NULL;
    *link = q;
    link = &q->next;
  }
  if (q == NULL) {
    w->commit.wait_tail = NULL;
    w->commit.sync_running = 0;
    return done;
  }
  /* The units of the waiters left were written after the last capture,
   * so the tail is dirty. */
  w->commit.wait_head = q->next;
  if (q->next == NULL) w->commit.wait_tail = NULL;
  if (hand_off && w->commit.sync_waiters == 0) {
    q->state = WAITER_LEAD;
  } else {
    q->state = WAITER_RETRY;
    w->commit.sync_running = 0;
  }
  q->next = done;
  return q;
}

/* A sync or write failed: poison, and cut the tail back to what is
 * published (durable under SYNC_ALWAYS), so that nothing a caller was
 * told failed is found after reopening.  Waiters are woken to see it.
 * Caller holds wlock. */
static int fail_writes(walrus_t *w, int rc) {
  walrus__poison(w, rc);
  if (w->store.nsegs > 0) {
    walrus__seg_t *t = w->store.segs[w->store.nsegs - 1];
    if (!t->sealed) {
      walrus__seg_unmap(w, t);
      t->prealloc = 0;
      walrus__os_try_truncate(w, t->file, t->end);
      t->written = t->count;
      w->commit.write_off = t->end;
    }
  }
  w->commit.write_next = w->store.next_index;
  wake_all(w, w->commit.poison_code);
  pthread_cond_broadcast(&w->commit.sync_cv);
  return rc;
}

/* Wait on sync_cv until no group commit sync runs.  While anyone waits
 * here, a finishing leader does not hand the next sync on, so that the
 * wait ends.  Caller holds wlock. */
static void wait_sync_end(walrus_t *w) {
  w->commit.sync_waiters++;
  while (w->commit.sync_running)
    pthread_cond_wait(&w->commit.sync_cv, &w->wlock);
  w->commit.sync_waiters--;
}

/* Publish what the sync c made durable.  Caller holds wlock. */
static void publish(walrus_t *w, const capture_t *c) {
  walrus__commit_publish(w, c->t, c->count, c->end, c->next);
  if (w->commit.durable_seq < c->seq) w->commit.durable_seq = c->seq;
  walrus__durable_set(w, c->next, 0);
}

/* Sync everything written so far and publish it, waiting first for a
 * group commit in flight.  Holds wlock throughout (the caller's).  A
 * failure poisons the handle. */
int walrus__sync_locked(walrus_t *w) {
  wait_sync_end(w);
  if (w->commit.poisoned) return w->commit.poison_code;
  if (!w->commit.dirty || w->store.nsegs == 0) return WALRUS_OK;
  capture_t c = capture(w);
  int rc = walrus__os_sync(w, c.t->file, c.t->name);
  if (rc != WALRUS_OK) return fail_writes(w, rc);
  publish(w, &c);
  wake(settle(w, 0));
  pthread_cond_broadcast(&w->commit.sync_cv);
  return WALRUS_OK;
}

/* Run the group commit sync c, captured under wlock by the caller, and
 * settle the queue after it.  Called without wlock,
 * with sync_running set; returns without wlock.  The waiters whose units
 * it made durable are woken after wlock is released, the one handed the
 * next sync first. */
static int lead(walrus_t *w, const capture_t *c) {
  waiter_t *list = NULL;
  int rc = walrus__os_sync(w, c->t->file, c->t->name);
  pthread_mutex_lock(&w->wlock);
  if (rc != WALRUS_OK) {
    w->commit.sync_running = 0;
    rc = fail_writes(w, rc);
  } else if (w->commit.poisoned) {
    /* Another writer failed while this sync ran, and cut the file. */
    w->commit.sync_running = 0;
    rc = w->commit.poison_code;
    wake_all(w, rc);
    pthread_cond_broadcast(&w->commit.sync_cv);
  } else {
    publish(w, c);
    list = settle(w, 1);
    if (!w->commit.sync_running) pthread_cond_broadcast(&w->commit.sync_cv);
  }
  pthread_mutex_unlock(&w->wlock);
  wake(list);
  return rc;
}

/* Sleep until the waiter is posted, or until deadline (CLOCK_MONOTONIC
 * nanoseconds, 0: none); 0 if posted, ETIMEDOUT. */
static int sleep_on(waiter_t *me, int64_t deadline) {
  if (deadline != 0) return walrus__sem_wait_until(&me->sem, deadline);
  while (sem_wait(&me->sem) != 0)
    if (errno != EINTR) abort(); /* a valid semaphore fails only so */
  return 0;
}

/* Take the waiter out of the queue, where it still is.  Caller holds
 * wlock. */
static void unqueue(walrus_t *w, waiter_t *me) {
  waiter_t *prev = NULL;
  for (waiter_t *q = w->commit.wait_head; q != me; q = q->next) prev = q;
  if (prev == NULL)
    w->commit.wait_head = me->next;
  else
    prev->next = me->next;
  if (w->commit.wait_tail == me) w->commit.wait_tail = prev;
}

/* Group commit: wait until unit seq is durable.  One writer at a time is
 * the leader: it captures everything written so far, drops wlock for the
 * fdatasync, and publishes what it covered.  Writers that arrive
 * meanwhile write their units and queue, each sleeping on its own
 * semaphore; the leader wakes only those whose units it made durable,
 * which return without taking wlock again, and hands the next sync to the
 * oldest of the rest, woken first.  No sync overlaps another: format.h's
 * recovery rule holds unchanged.  With a deadline (CLOCK_MONOTONIC
 * nanoseconds, 0: none), the wait for another leader's fdatasync ends at
 * it with WALRUS_ETIMEDOUT; a caller that leads always runs its fdatasync
 * to the end, so that no unit is left behind for want of a leader.
 * Caller holds wlock; returns without it. */
static int wait_durable(walrus_t *w, uint64_t seq, int64_t deadline) {
  waiter_t me;
  int rc = WALRUS_OK;
  for (;;) {
    if (w->commit.durable_seq >= seq) break;
    if (w->commit.poisoned) {
      rc = w->commit.poison_code;
      break;
    }
    if (!w->commit.sync_running) {
      me.c = capture(w);
      w->commit.sync_running = 1;
      pthread_mutex_unlock(&w->wlock);
      return lead(w, &me.c);
    }
    if (deadline != 0 && walrus__mono_ns() >= deadline) {
      rc = WALRUS_ETIMEDOUT;
      break;
    }
    me.seq = seq;
    me.state = WAITER_QUEUED;
    me.next = NULL;
    sem_init(&me.sem, 0, 0);
    if (w->commit.wait_tail != NULL)
      w->commit.wait_tail->next = &me;
    else
      w->commit.wait_head = &me;
    w->commit.wait_tail = &me;
    pthread_mutex_unlock(&w->wlock);
    if (sleep_on(&me, deadline) != 0) {
      pthread_mutex_lock(&w->wlock);
      if (me.state == WAITER_QUEUED) {
        unqueue(w, &me);
        sem_destroy(&me.sem);
        rc = WALRUS_ETIMEDOUT;
        break;
      }
      /* Taken out of the queue as the deadline passed: the post that
       * says how is on its way. */
      pthread_mutex_unlock(&w->wlock);
      sleep_on(&me, 0);
    }
    sem_destroy(&me.sem);
    if (me.state == WAITER_DONE) return me.rc;
    if (me.state == WAITER_LEAD) {
      /* Handed the next sync: no other can start meanwhile, so what it
       * captures is everything written since the last one. */
      pthread_mutex_lock(&w->wlock);
      if (w->commit.poisoned) {
        w->commit.sync_running = 0;
        pthread_cond_broadcast(&w->commit.sync_cv);
        rc = w->commit.poison_code;
        break;
      }
      me.c = capture(w);
      pthread_mutex_unlock(&w->wlock);
      return lead(w, &me.c);
    }
    pthread_mutex_lock(&w->wlock); /* WAITER_RETRY */
  }
  pthread_mutex_unlock(&w->wlock);
  return rc;
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
  if (rc != WALRUS_OK || !w->commit.need_mark || w->store.nsegs == 0) return rc;
  walrus__seg_t *t = w->store.segs[w->store.nsegs - 1];
  if (t->sealed || t->written == 0) return WALRUS_OK;
  rc = walrus__write_mark(w, t, w->commit.write_off, w->commit.write_next - 1,
                          0);
  if (rc != WALRUS_OK) return rc;
  w->commit.write_off += WALRUS__REC_HEADER_BYTES;
  w->commit.need_mark = 0;
  w->commit.group_open = 1; /* the mark opened a group, with no sync running */
  w->commit.group_overlap = 0;
  w->commit.dirty = 1;
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
  r.timestamp_ns = walrus__now_ns(w);
  r.flags = (uint8_t)(WALRUS__REC_MARK | WALRUS__REC_GROUP | extra_flags);
  r.epoch = w->commit.epoch;
  walrus__rec_header_encode(hdr, &r);
  walrus__put32(hdr, walrus__rec_crc(t->salt, hdr, NULL, 0));
  int rc = walrus__os_write(w, t->file, t->name, hdr, sizeof hdr, off);
  if (rc != WALRUS_OK) {
    walrus__seg_unmap(w, t);
    t->prealloc = 0;
    walrus__os_try_truncate(w, t->file, off);
    return walrus__poison(w, rc);
  }
  return WALRUS_OK;
}

/* Checks every writing call makes first.  Caller holds wlock. */
static int writable(walrus_t *w) {
  if (w->cfg.read_only)
    return walrus__fail(w, WALRUS_EREADONLY, 0, "%s is open read-only", w->dir);
  if (w->commit.poisoned)
    return walrus__fail(w, WALRUS_EPOISONED, 0,
                        "an earlier %s poisoned the handle; reopen the log",
                        walrus_errname(w->commit.poison_code));
  return WALRUS_OK;
}

int walrus__writable(walrus_t *w) {
  return writable(w);
}

/* The slow part of walrus__commit_room(): seal a full tail, start a new
 * one, and after a rotation let retention run.  Sealing and creating
 * change the tail a group commit leader may be syncing, so both wait for
 * it first, and everything is decided again after any wait.  Caller holds
 * wlock. */
int walrus__commit_make_room(walrus_t *w, uint64_t total, size_t n,
                             walrus__seg_t **tail) {
  int rc;
  for (;;) {
    int full;
    walrus__seg_t *s = walrus__commit_tail(w, total, n, &full);
    if (s != NULL) {
      *tail = s;
      return WALRUS_OK;
    }
    s = w->store.nsegs ? w->store.segs[w->store.nsegs - 1] : NULL;
    if (w->commit.sync_running) {
      wait_sync_end(w);
      rc = walrus__writable(w);
      if (rc != WALRUS_OK) return rc;
      continue;
    }
    if (full) {
      rc = walrus__commit_seal(w);
      if (rc != WALRUS_OK) return rc;
      continue;
    }
    rc = walrus__seg_create(w, w->commit.write_next);
    if (rc != WALRUS_OK) return rc;
    if (s != NULL) { /* a rotation */
      rc = walrus__retain(w);
      if (rc != WALRUS_OK) return rc;
    }
  }
}

int walrus__commit_seal_now(walrus_t *w) {
  if (w->commit.sync_running) {
    wait_sync_end(w);
    int rc = walrus__writable(w);
    if (rc != WALRUS_OK) return rc;
  }
  return walrus__commit_seal(w);
}

/* Wait until unit seq is durable (group commit), for
 * walrus__write_units().  Caller holds wlock; returns without it. */
int walrus__commit_wait(walrus_t *w, uint64_t seq, int64_t deadline) {
  return wait_durable(w, seq, deadline);
}

/* A write of the unit being written failed: cut it, poison the handle. */
int walrus__commit_fail(walrus_t *w, int rc) {
  return fail_writes(w, rc);
}

/* The SYNC_INTERVAL thread: every sync_interval_ms, sync what is dirty.
 * It holds wlock only while it syncs, and exits when close asks. */
void *walrus__syncer_main(void *arg) {
  walrus_t *w = arg;
  pthread_mutex_lock(&w->wlock);
  while (!w->commit.syncer_stop) {
    struct timespec ts = walrus__deadline_ms(w->cfg.sync_interval_ms);
    int e = pthread_cond_timedwait(&w->commit.syncer_cv, &w->wlock, &ts);
    if (w->commit.syncer_stop) break;
    if (e == ETIMEDOUT && !w->commit.poisoned && w->commit.dirty)
      walrus__sync_mark_locked(w, 0);
  }
  pthread_mutex_unlock(&w->wlock);
  return NULL;
}

/* ---- rotation and retention ---------------------------------------------- */

/* Seal the tail: append its index record and trailer, fdatasync.  The
 * sealed segment keeps its file and offsets and joins the cache.  Caller
 * holds wlock; the tail holds at least one record. */
int walrus__commit_seal(walrus_t *w) {
  walrus__seg_t *s;
  unsigned char hdr[WALRUS__REC_HEADER_BYTES];
  unsigned char trl[WALRUS__TRAILER_BYTES];
  walrus__rec_t r = {0};
  walrus__trailer_t t;
  uint64_t off, pos;
  size_t chunk = w->cfg.buffer_bytes / 4, i = 0;
  uint32_t crc;
  int rc;
  /* Three steps, each made durable before the next, so that whatever a
   * power loss keeps is unambiguous: the records (under SYNC_NONE and
   * INTERVAL they may not be yet, and under ALWAYS a group commit may be
   * in flight), then the index record, then the trailer.  A trailer on
   * disk thus proves its index is; an index record proves every record
   * before it is.  After the first step every record is published. */
  rc = walrus__sync_locked(w);
  if (rc != WALRUS_OK) return rc;
  s = w->store.segs[w->store.nsegs - 1];
  if (s->count == 0 || s->sealed) return WALRUS_OK;
  off = w->commit.write_off;
  /* The trailer ends the file: cut preallocated zeros first. */
  rc = walrus__seg_trim(w, s, off);
  if (rc != WALRUS_OK) return walrus__poison(w, rc);
  r.body_len = (uint32_t)(s->count * 4);
  r.index = s->first;
  r.term = s->count;
  r.timestamp_ns = walrus__now_ns(w);
  r.flags = WALRUS__REC_INDEX;
  r.epoch = w->commit.epoch;
  walrus__rec_header_encode(hdr, &r);
  crc = walrus__rec_crc_start(s->salt, hdr);
  pos = off + WALRUS__REC_HEADER_BYTES;
  /* The body goes out in buffer-sized pieces, checksummed as it goes. */
  while (i < s->count) {
    size_t n = (size_t)(s->count - i) < chunk ? (size_t)(s->count - i) : chunk;
    for (size_t j = 0; j < n; j++)
      walrus__put32(w->commit.buf + 4 * j, s->offs[i + j]);
    crc = walrus__crc32c(crc, w->commit.buf, 4 * n);
    rc = walrus__os_write(w, s->file, s->name, w->commit.buf, 4 * n, pos);
    if (rc != WALRUS_OK) goto fail;
    pos += 4 * n;
    i += n;
  }
  walrus__put32(hdr, crc);
  rc = walrus__os_write(w, s->file, s->name, hdr, sizeof hdr, off);
  if (rc != WALRUS_OK) goto fail;
  t.first_index = s->first;
  t.count = (uint32_t)s->count;
  t.index_offset = (uint32_t)off;
  pos = off + walrus__rec_size(r.body_len);
  {
    /* Zero the padding between the index record and the trailer. */
    unsigned char pad[8] = {0};
    uint64_t body_end = off + WALRUS__REC_HEADER_BYTES + r.body_len;
    if (pos > body_end) {
      rc = walrus__os_write(w, s->file, s->name, pad, (size_t)(pos - body_end),
                            body_end);
      if (rc != WALRUS_OK) goto fail;
    }
  }
  rc = walrus__os_sync(w, s->file, s->name);
  if (rc != WALRUS_OK) goto fail;
  walrus__trailer_encode(trl, s->salt, &t);
  rc = walrus__os_write(w, s->file, s->name, trl, sizeof trl, pos);
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, s->file, s->name);
  if (rc != WALRUS_OK) goto fail;
  w->commit.epoch++;
  w->commit.group_open = 0;
  w->commit.dirty = 0;
  w->commit.need_mark = 0;
  walrus__lock_excl(w);
  walrus__seg_sealed(w, s, off);
  walrus__unlock(w);
  walrus__log(w, WALRUS_LOG_INFO, "sealed segment %s: %llu entries from %llu",
              s->name, (unsigned long long)s->count,
              (unsigned long long)s->first);
  return WALRUS_OK;
fail:
  /* Leave the file as it was: records only, so it stays a valid tail. */
  walrus__os_try_truncate(w, s->file, off);
  return walrus__poison(w, rc);
}

/* Retention: keep at most max_segments segments by moving the first index
 * to the start of the oldest one kept, but never past an open iterator.
 * Caller holds wlock, right after a rotation. */
int walrus__retain(walrus_t *w) {
  if (w->cfg.max_segments == 0 || w->store.nsegs <= w->cfg.max_segments)
    return WALRUS_OK;
  uint64_t limit = w->store.next_index;
  walrus__lock_shared(w);
  for (walrus_iter_t *it = w->store.iters; it != NULL; it = it->next_it)
    if (it->next < limit) limit = it->next;
  walrus__unlock(w);
  size_t drop = w->store.nsegs - w->cfg.max_segments;
  while (drop > 0 && w->store.segs[drop]->first > limit) drop--;
  if (drop == 0) {
    walrus__log(w, WALRUS_LOG_DEBUG, "retention waits for an iterator at %llu",
                (unsigned long long)limit);
    return WALRUS_OK;
  }
  uint64_t first = w->store.segs[drop]->first;
  if (first <= w->store.first_index) return WALRUS_OK;
  int rc = walrus__move_front(w, first);
  return rc == WALRUS_OK ? rc : walrus__poison(w, rc);
}
/* Move the first index to first_kept and remove whole segments below it,
 * never the last segment.  Caller holds wlock. */
int walrus__move_front(walrus_t *w, uint64_t first_kept) {
  walrus__meta_t m = w->store.meta;
  /* Entries up to first_kept - 1 must be durable before META says they
   * were there: else a power loss could leave META's first index beyond
   * the last entry. */
  int rc = walrus__sync_locked(w);
  if (rc != WALRUS_OK) return rc;
  m.first_index = first_kept;
  rc = walrus__meta_write(w, &m);
  if (rc != WALRUS_OK) return rc;
  walrus__lock_excl(w);
  w->store.first_index = first_kept;
  w->store.layout_gen++;
  walrus__unlock(w);
  walrus__durable_publish(w);
  size_t drop = 0;
  while (drop + 1 < w->store.nsegs &&
         w->store.segs[drop]->first + w->store.segs[drop]->count <= first_kept)
    drop++;
  walrus__log(w, WALRUS_LOG_INFO,
              "truncate_front: first index is now %llu; removing %zu "
              "segments",
              (unsigned long long)first_kept, drop);
  return walrus__segs_drop(w, 0, drop, 0);
}

/* ---- DURABLE --------------------------------------------------------------
 */

/* Writer: count a store of DURABLE and wake the followers sleeping on the
 * count.  The add orders the store before the new count, so a follower
 * that read the count before it and DURABLE after it saw the store, and
 * one that read the count after it sleeps on a value already gone and
 * returns at once. */
static void durable_wake(walrus_t *w) {
  _Atomic uint32_t *c = walrus__durable_wake_count(w->commit.durable_map);
  atomic_fetch_add(c, 1);
  walrus__os_wake_word(w, (uint32_t *)(void *)(w->commit.durable_map +
                                               WALRUS__DURABLE_WAKE_OFF));
}

/* Store the writer's state into DURABLE and wake followers.  Caller holds
 * wlock, or is open or close.  The store is one memcpy; a follower that
 * reads it half done sees a bad checksum and reads again. */
void walrus__durable_publish(walrus_t *w) {
  unsigned char b[WALRUS__DURABLE_BYTES];
  walrus__durable_t d;
  if (w->commit.durable_map == NULL) return;
  d.log_id = w->store.meta.log_id;
  d.durable_next = atomic_load(&w->commit.durable_next);
  d.first_index = w->store.first_index;
  d.gen = w->commit.durable_gen;
  walrus__durable_encode(b, &d);
  memcpy(w->commit.durable_map, b, WALRUS__DURABLE_BYTES);
  durable_wake(w);
}

void walrus__durable_bump(walrus_t *w) {
  w->commit.durable_gen++;
  walrus__durable_publish(w);
}

void walrus__durable_set(walrus_t *w, uint64_t next, int lower) {
  uint64_t cur = atomic_load(&w->commit.durable_next);
  if (lower ? next >= cur : next <= cur) return;
  if (lower) w->commit.durable_gen++; /* entries a follower saw are gone */
  atomic_store(&w->commit.durable_next, next);
  walrus__durable_publish(w);
  if (atomic_load(&w->commit.waiters) > 0) {
    pthread_mutex_lock(&w->commit.wait_mu);
    pthread_cond_broadcast(&w->commit.wait_cv);
    pthread_mutex_unlock(&w->commit.wait_mu);
  }
}

/* Read DURABLE into d; 0 if it is missing, short or torn (after a few
 * tries: a store may be under way). */
int walrus__durable_read(walrus_t *w, walrus__durable_t *d) {
  unsigned char b[WALRUS__DURABLE_BYTES];
  for (int tries = 0; tries < 4; tries++) {
    int64_t n = walrus__os_try_read(w, w->commit.durable_file, b, sizeof b, 0);
    if (n != (int64_t)sizeof b) return 0;
    if (walrus__durable_decode(b, d)) return 1;
  }
  return 0;
}

/* The writer's DURABLE: open (creating it), read what the last writer
 * left, extend it to its full size and map it shared, then publish.  Not
 * data: on any failure followers in other processes just see no
 * progress. */
int walrus__durable_writer_open(walrus_t *w) {
  walrus__durable_t d;
  /* The writer publishes only through a VFS that maps both ways: stores
   * into DURABLE, and followers that read through mappings. */
  if (w->vfs->version < 3 || w->vfs->map == NULL || w->vfs->map_read == NULL)
    return WALRUS_OK;
  int e = walrus__os_try_open(w, WALRUS__DURABLE_NAME, WALRUS_VFS_WRITE,
                              &w->commit.durable_file);
  if (e == -ENOENT)
    e = walrus__os_try_open(w, WALRUS__DURABLE_NAME,
                            WALRUS_VFS_WRITE | WALRUS_VFS_CREATE,
                            &w->commit.durable_file);
  uint64_t size = 0;
  if (e == 0) {
    if (walrus__durable_read(w, &d) && d.log_id == w->store.meta.log_id) {
      /* A follower of the last writer may have seen entries up to
       * d.durable_next - 1: if this log no longer has them all (a cut at
       * open), it must learn that they went. */
      w->commit.durable_gen = d.gen + (w->store.next_index < d.durable_next);
    } else {
      w->commit.durable_gen = 0;
    }
    e = walrus__os_try_size(w, w->commit.durable_file, &size);
  }
  if (e == 0 && size < WALRUS__DURABLE_FILE_BYTES)
    e = walrus__os_try_truncate(w, w->commit.durable_file,
                                WALRUS__DURABLE_FILE_BYTES);
  void *addr = NULL;
  if (e == 0)
    e = walrus__os_try_map(w, w->commit.durable_file,
                           WALRUS__DURABLE_FILE_BYTES, &addr);
  if (e != 0) {
    /* Not data: followers in other processes just see no progress. */
    walrus__log(w, WALRUS_LOG_WARN,
                "%s/%s: cannot publish the durable index (error %d); "
                "followers in other processes will not see new entries",
                w->dir, WALRUS__DURABLE_NAME, -e);
    walrus__durable_writer_close(w);
    return WALRUS_OK;
  }
  w->commit.durable_map = addr;
  walrus__durable_publish(w);
  return WALRUS_OK;
}

void walrus__durable_writer_close(walrus_t *w) {
  if (w->commit.durable_map != NULL)
    walrus__os_unmap(w, w->commit.durable_file, w->commit.durable_map,
                     WALRUS__DURABLE_FILE_BYTES);
  w->commit.durable_map = NULL;
  if (w->commit.durable_file != NULL)
    walrus__os_close(w, w->commit.durable_file);
  w->commit.durable_file = NULL;
}
