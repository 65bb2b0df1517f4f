/*
 * internal.h: the handle, the in-memory segment table, and the functions
 * the library's files share.  Nothing here is public.
 *
 * LAYERS
 *
 *   The library is four layers; a file calls its own layer and the layers
 *   below, never above.  src/LAYERS names each file's layer, and
 *   scripts/check-layers.sh (the check_layers test) fails on an upward
 *   reference in the built objects and on a VFS call outside vfs.c.
 *
 *   api     walrus.c (open, close), append.c (validate and encode units),
 *           read.c, iter.c, tx.c, truncate.c, follow.c (the follower's
 *           side), recover.c (what open finds).  Owns the handle's follow
 *           and tx parts.
 *   commit  commit.c: how a written unit becomes durable and visible:
 *           group commit, sync groups and marks, the SYNC_INTERVAL thread,
 *           rotation (the seal's order, the next segment, retention),
 *           DURABLE publishing and wake-ups, fail-stop.  Owns commit.
 *   store   segment.c (the table, the sealed-segment cache, creating and
 *           removing segment files), rmap.c (read mappings), meta.c,
 *           scan.c (the one record scanner, its window).  Owns store.
 *   base    vfs.c (every call of the VFS, with errors mapped), vfs_posix.c,
 *           format.c (every byte layout, DURABLE's included), crc32c.c,
 *           error.c, alloc.c, config.c, stats.c, lock.c.  Owns err, stats.
 *
 * LOCKING
 *
 *   wlock          (mutex)   serializes every writer: appends, batches,
 *                            sync, rotation, truncation, reset, retention,
 *                            close; on a read-only handle, refreshes.  It
 *                            guards commit and follow.  A writer holds it
 *                            across its pwrite; under SYNC_ALWAYS the group
 *                            commit leader drops it for the fdatasync
 *                            (commit.sync_running), so other writers add
 *                            their units meanwhile and the next leader
 *                            syncs them together.  Everything that changes
 *                            the layout waits for that sync first.
 *   commit.sync_cv (cond, with wlock) the end of a sync, for those that
 *                            must wait until no sync runs (walrus_sync,
 *                            rotation, truncation).
 *   commit.wait_head (wlock) the queue of writers waiting for their units
 *                            to be durable; each sleeps on a semaphore of
 *                            its own, posted once by whoever takes it out
 *                            of the queue, and returns without wlock.
 *   commit.syncer_cv (cond, with wlock) wakes the SYNC_INTERVAL thread.
 *   store.lock     (rwlock)  guards what readers see: the segment table,
 *                            first and next index, each segment's published
 *                            count, end and offsets, the iterator list,
 *                            layout_gen.  Readers hold it shared for a
 *                            whole read (lookup and pread); writers take it
 *                            exclusively only to publish, never across an
 *                            fsync, so readers never wait for a sync.
 *   store.cache_mu (mutex)   guards the sealed-segment cache: which sealed
 *                            segments have a file open and their offsets
 *                            loaded, pins, LRU, a segment's older mappings.
 *   commit.wait_mu (mutex)   with commit.wait_cv (cond): walrus_wait()
 *                            sleepers, woken when durable_next moves or the
 *                            handle is poisoned.
 *   tx.mu          (mutex)   guards the transactions; with tx.cleaner_cv
 *                            (cond) it wakes the expiry thread.  Never held
 *                            with wlock: a commit takes the transaction out
 *                            under tx.mu, releases it, then writes.
 *   err.mu         (mutex)   guards the last failure's message and errno.
 *   zcache.mu      (mutex)   guards the cache of the last compressed unit
 *                            walrus_get decompressed (read.c).
 *
 *   Order: wlock, then store.lock, then store.cache_mu, then
 *   commit.wait_mu, then err.mu; tx.mu before err.mu; store.lock, then
 *   zcache.mu, then err.mu.  Atomics (the
 *   counters, durable_next, broken, layout_gen, follow.map) are read
 *   without a lock where their comments say so.
 *
 * SEGMENTS
 *
 *   segs[0..nsegs) is sorted by first index and contiguous: segs[i].first +
 *   segs[i].count == segs[i+1].first.  Every segment but the last is
 *   sealed.  The tail (last, unsealed) always has its file open and its
 *   offsets in memory, bounded by segment_bytes.  A sealed segment has its
 *   file open and offsets loaded only while cached (cached_segments, LRU).
 */
#ifndef WALRUS_INTERNAL_H
#define WALRUS_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "format.h"
#include "walrus.h"
#include "walrus_vfs.h"

/* For the few steps that must be inlined into their one caller, and
 * the slow paths that must not be. */
#if defined(__GNUC__) || defined(__clang__)
#define WALRUS__ALWAYS_INLINE inline __attribute__((always_inline))
#define WALRUS__NOINLINE __attribute__((noinline))
#else
#define WALRUS__ALWAYS_INLINE inline
#define WALRUS__NOINLINE
#endif

/* A read-only mapping of one segment file (rmap.c), shared by its segment
 * and by every view and iterator that borrows it.  It lives until the last
 * reference goes, so borrowed bytes outlive rotation, removal of the file
 * and the handle itself: it keeps what it needs to unmap and free itself. */
typedef struct walrus__rmap_s {
  atomic_long refs;                    /* the segment's (while it holds it) plus
                                          one per borrow */
  unsigned char *addr;                 /* the mapping */
  uint64_t len;                        /* its length, a multiple of 4096 */
  const walrus_vfs_t *vfs;             /* unmaps it */
  walrus_allocator_t alloc;            /* frees this struct */
  struct walrus__rmap_s *older;        /* segment's older mappings still held */
  uint32_t salt;                       /* the segment's salt, for its records */
  uint32_t seed;                       /* CRC-32C of the salt's 4 bytes: where
                                          every record's CRC starts */
  uint32_t version;                    /* the segment's header version */
  atomic_ullong populated;             /* bytes from 0 that an iterator has
                                          faulted in (MADV_POPULATE_READ) */
  char name[WALRUS__SEG_NAME_LEN + 1]; /* the segment's file name */
} walrus__rmap_t;

/* One segment file. */
typedef struct walrus__seg_s {
  uint64_t first;                 /* index of its first record */
  uint64_t count;                 /* records published to readers */
  uint64_t written;               /* records written, >= count (wlock) */
  uint64_t end;                   /* offset after the last published record */
  uint32_t salt;                  /* seeds every record CRC in the file */
  uint32_t seed;                  /* walrus__salt_seed(salt) */
  uint32_t version;               /* header version: WALRUS__SEG_VERSION_ZSTD
                                     if its records may be compressed */
  int sealed;                     /* has an index record and trailer */
  uint32_t index_offset;          /* sealed: offset of the index record */
  walrus_vfs_file_t *file;        /* open file, or NULL (sealed, not cached) */
  uint32_t *offs;                 /* record offsets, or NULL (not loaded) */
  size_t offs_cap;                /* capacity of offs, in entries */
  int pins;                       /* slow-path users of file/offs (cache_mu) */
  atomic_int ready;               /* file and offs are loaded: readers holding
                                     the lock shared may use them unpinned */
  _Atomic(walrus__rmap_t *) rmap; /* read mapping, or NULL (cache_mu to
                                set; the lock held exclusively to drop) */
  walrus__rmap_t *rmap_old;       /* replaced mappings, still held (cache_mu) */
  unsigned char *map;             /* tail: shared writable mapping, or NULL */
  uint64_t map_len;               /* length of map */
  int prealloc;                   /* tail: the file runs past end in zeros
                                     (preallocated for mapped writes) */
  uint64_t used;                  /* LRU tick of the last use (cache_mu) */
  char name[WALRUS__SEG_NAME_LEN + 1]; /* file name in the directory */
} walrus__seg_t;

/* A read-ahead window over one file, used by recovery and iterators. */
typedef struct walrus__window_s {
  unsigned char *buf; /* the bytes */
  size_t cap;         /* capacity of buf */
  uint64_t off;       /* file offset of buf[0] */
  size_t len;         /* valid bytes in buf */
} walrus__window_t;

/* A compressed unit's content, decompressed (read.c; format.h): the
 * bodies of entries first .. first + count - 1.  ends[k] is the offset in
 * buf after body k; body 0 starts after the count lengths. */
typedef struct walrus__zunit_s {
  unsigned char *buf;       /* the content, or NULL */
  size_t cap;               /* capacity of buf */
  uint32_t *ends;           /* count body ends, into buf */
  size_t ends_cap;          /* capacity of ends */
  uint64_t first;           /* index of the unit's first entry */
  uint32_t count;           /* its entries; 0: nothing held */
  const walrus__seg_t *seg; /* the segment it came from */
  void *dctx;               /* zstd decompression context, or NULL */
} walrus__zunit_t;

/* The compressed unit walrus_get() and walrus_get_view() decompressed
 * last (read.c: cached_entry()), so that a get of a neighbouring entry
 * does not decompress it again.  It holds while store.layout_gen is gen
 * (nothing truncated or removed since, so u.seg is the same segment and
 * its records below count unchanged) and the unit's first record still
 * carries crc.  mu guards it; a reader that misses takes u's buffers out,
 * decompresses into them without mu, and puts them back.  A unit of more
 * than WALRUS__ZCACHE_MAX content bytes is not kept. */
#define WALRUS__ZCACHE_MAX (1u << 20)
typedef struct walrus__zcache_s {
  pthread_mutex_t mu; /* guards the fields below */
  walrus__zunit_t u;  /* the unit, or count 0 */
  uint64_t gen;       /* store.layout_gen when it was decoded */
  uint32_t crc;       /* its first record's crc */
  uint64_t decodes;   /* units gets decompressed (a miss each): tests */
} walrus__zcache_t;

/* Records an iterator checks at once (iter.c): their CRCs are computed
 * four at a time. */
#define WALRUS__ITER_BATCH 16

struct walrus_iter_s {
  walrus_t *w;          /* owning handle */
  uint64_t next;        /* index the next call returns */
  uint64_t gen;         /* w->store.layout_gen when seg/off were set */
  walrus__seg_t *seg;   /* segment holding next, or NULL */
  uint64_t off;         /* file offset of record next */
  walrus__window_t win; /* read-ahead window over seg */
  char txid[256];       /* NUL-terminated tx id of the entry */
  walrus__rmap_t *map;  /* mapped reading: seg's mapping, borrowed */
  uint64_t run_next;    /* mapped: entries below it, from off up
                           to run_end, are published in map */
  uint64_t run_end;     /* mapped: end of those records */
  uint64_t hinted;      /* offset up to which read-ahead was asked */
  uint64_t hint_at;     /* mapped: off at which to ask again */
  uint64_t vend[WALRUS__ITER_BATCH]; /* mapped: ends of the records from off
                                     on found whole and intact, in order */
  int nvok, vpos;                    /* records in vend; the next to return */
  uint64_t cut;                      /* lowest last_kept + 1 of a truncate_back
                                        since the last step, or UINT64_MAX
                                        (written with the lock exclusive) */
  walrus__zunit_t z;                 /* the compressed unit being read */
  int mapped;                        /* reads through map (cfg.zero_copy) */
  int follow;                        /* follow mode: durable entries only,
                                        waits at the end */
  uint32_t timeout_ms;               /* follow mode: how long next() waits */
  struct walrus_iter_s *prev_it;     /* list of the handle's iterators */
  struct walrus_iter_s *next_it;     /* list of the handle's iterators */
};

/* Transactions (tx.c). */
#define WALRUS__TX_BUCKETS 256
#define WALRUS__TX_DONE_RING 4096

/* One entry of a pending transaction; its bytes are in the arena. */
typedef struct walrus__tx_rec_s {
  uint64_t term;        /* caller's term */
  int64_t timestamp_ns; /* caller's time, or 0 */
  uint16_t type;        /* caller's type */
  size_t off;           /* payload offset in the arena */
  size_t len;           /* payload length */
} walrus__tx_rec_t;

typedef struct walrus__tx_s {
  unsigned char raw[16];     /* the id's random bytes */
  walrus_txid_t id;          /* "tx_" + 32 hex digits */
  int committing;            /* commit is writing it; not pending */
  int64_t start_ns;          /* CLOCK_MONOTONIC at begin */
  int64_t timeout_ns;        /* 0: never expires */
  walrus__tx_rec_t *recs;    /* entries, in order */
  size_t n, rcap;            /* entries and capacity */
  unsigned char *arena;      /* every payload, back to back */
  size_t used, acap;         /* arena bytes used and allocated */
  struct walrus__tx_s *next; /* hash chain */
} walrus__tx_t;

/* How a transaction ended, remembered for walrus_tx_state(). */
typedef struct walrus__tx_done_s {
  unsigned char raw[16]; /* the id */
  unsigned char state;   /* WALRUS_TX_COMMITTED or WALRUS_TX_ABORTED */
  unsigned char used;    /* slot holds an id */
} walrus__tx_done_t;

/* Counters for walrus_stats() (stats.c); atomics, updated on any thread. */
#define WALRUS__HIST_BUCKETS (64 * 8)
typedef struct walrus__stats_s {
  atomic_ullong appends;                    /* successful write calls */
  atomic_ullong entries;                    /* entries they wrote */
  atomic_ullong bytes;                      /* record bytes written */
  atomic_ullong fsyncs;                     /* fdatasync calls */
  atomic_ullong fsync_max_ns;               /* slowest fdatasync */
  atomic_ullong hist[WALRUS__HIST_BUCKETS]; /* fdatasync latencies */
  int64_t opened_ns;                        /* CLOCK_MONOTONIC at open */
} walrus__stats_t;

/* The store's state (segment.c, rmap.c, meta.c): the segment table and
 * its cache, what readers see.  Guarded as each field says. */
typedef struct walrus__store_s {
  pthread_rwlock_t lock;       /* guards the reader-visible state below */
  pthread_mutex_t cache_mu;    /* guards the sealed-segment cache */
  walrus__seg_t **segs;        /* segment table, by first index (lock) */
  size_t nsegs;                /* segments in the table (lock) */
  size_t segs_cap;             /* capacity of segs (lock) */
  uint64_t first_index;        /* first readable index (== next: empty) */
  uint64_t next_index;         /* index the next append gets (lock) */
  _Atomic uint64_t layout_gen; /* bumped when segments go or shrink */
  walrus_iter_t *iters;        /* open iterators (lock) */
  atomic_size_t cached;        /* sealed segments with files open */
  int can_map;                 /* the VFS has map_read (set at open) */
  atomic_int rmap_stale;       /* a segment has older mappings to prune */
  uint64_t cache_tick;         /* LRU clock (cache_mu) */
  walrus__meta_t meta;         /* META as last written (wlock) */
} walrus__store_t;

/* The commit layer's state (commit.c): where the writer is, the sync
 * groups, group commit, DURABLE, the SYNC_INTERVAL thread and fail-stop.
 * Guarded by the handle's wlock unless a field says otherwise. */
typedef struct walrus__commit_s {
  uint64_t write_off;              /* tail offset the next record goes to */
  uint64_t write_next;             /* index the next written entry gets */
  uint64_t write_seq;              /* units written so far */
  uint64_t durable_seq;            /* units durable and published */
  _Atomic uint64_t durable_next;   /* every index below it is durable */
  pthread_mutex_t wait_mu;         /* with wait_cv: walrus_wait() sleepers */
  pthread_cond_t wait_cv;          /* broadcast when durable_next moves */
  atomic_int waiters;              /* threads sleeping on wait_cv */
  atomic_int broken;               /* poisoned: seen without wlock */
  walrus_vfs_file_t *durable_file; /* DURABLE: the writer publishes, a
                                      follower reads (follow.c) */
  unsigned char *durable_map;      /* writer: DURABLE mapped, or NULL */
  uint64_t durable_gen;            /* DURABLE's rewrite count as last read or
                                      written */
  int sync_running;                /* a group commit sync is running, or has
                                      been handed to a waiter (commit.c) */
  pthread_cond_t sync_cv;          /* signals the end of a sync (with wlock) */
  int sync_waiters;                /* threads waiting on sync_cv for syncs to
                                      stop: no hand-off while there are any */
  struct walrus__waiter_s *wait_head; /* writers waiting for their units to
                                         be durable, oldest first */
  struct walrus__waiter_s *wait_tail; /* the newest of them */
  uint32_t epoch;                  /* sync group of the next record */
  int group_open;                  /* a record of epoch was written */
  int group_overlap;               /* the open group began while the previous
                                      group's sync ran: its records carry
                                      OVERLAP */
  int dirty;                       /* written since the last sync */
  int mapped;                      /* write through mappings (segment.c) */
  int need_mark;                   /* entries written since the last mark,
                                      index record or sync of a later group */
  unsigned char *buf;              /* encode buffer, cfg.buffer_bytes */
  void *zctx;                      /* zstd compression context, or NULL */
  unsigned char *zbuf;             /* compressed unit: content, then frame */
  size_t zcap;                     /* capacity of zbuf */
  uint32_t zskip;                  /* units left to store uncompressed after
                                      units that did not shrink */
  uint32_t zbackoff;               /* the next such run's length */
  uint64_t zuse;                   /* bumped by each unit compressed into
                                      zbuf, so a writer that waited can tell
                                      that zbuf changed under it */
  int poisoned;                    /* a write-side I/O call failed */
  int poison_code;                 /* the failure that poisoned the handle */
  char poison_msg[512];            /* its message (walrus_health) */
  pthread_t syncer;                /* SYNC_INTERVAL background thread */
  int syncer_running;              /* syncer was started */
  int syncer_stop;                 /* asks the syncer to exit */
  pthread_cond_t syncer_cv;        /* wakes the syncer early (with wlock) */
} walrus__commit_t;

/* A read-only handle's following state (follow.c).  Guarded by wlock,
 * which a read-only handle's calls take to serialize refreshes, unless a
 * field says otherwise. */
typedef struct walrus__follow_s {
  _Atomic(void *) map;            /* DURABLE mapped read-only to sleep on its
                                     wake count, or NULL; read without wlock */
  walrus_vfs_file_t *reader_file; /* its READER-* file, locked while the
                                     handle may map */
  char reader_name[32];           /* that file's name: READER- + 16 hex */
  uint64_t peek_log_id, peek_gen, /* DURABLE's log id, rewrite count and */
      peek_first;                 /* first index before open read the
                                     segments */
  int peeked;                     /* those were read */
  int stale;                      /* opened mid truncate_back: refresh
                                     reports ESTALE */
} walrus__follow_t;

/* Transactions (tx.c).  Everything is guarded by mu, which is never held
 * with wlock. */
typedef struct walrus__txs_s {
  pthread_mutex_t mu;                        /* guards everything below */
  walrus__tx_t *buckets[WALRUS__TX_BUCKETS]; /* pending, by id */
  size_t pending;                            /* pending transactions */
  uint64_t bytes;                            /* payload bytes of pending ones */
  walrus__tx_done_t done[WALRUS__TX_DONE_RING]; /* recent endings */
  size_t done_pos;                              /* next slot of done */
  pthread_t cleaner;                            /* background expiry thread */
  int cleaner_running;                          /* cleaner was started */
  int cleaner_stop;                             /* asks it to exit */
  pthread_cond_t cleaner_cv;                    /* wakes it early (with mu) */
} walrus__txs_t;

/* The last failure (error.c). */
typedef struct walrus__err_s {
  pthread_mutex_t mu; /* guards both fields */
  char msg[512];      /* its message */
  int last_errno;     /* its OS errno */
} walrus__err_t;

/* The handle: what every layer shares (set at open and then read-only,
 * but for wlock) and one part per layer. */
struct walrus_s {
  char *dir;                    /* log directory */
  walrus_config_t cfg;          /* options, as validated */
  const walrus_vfs_t *vfs;      /* file system seam */
  walrus_allocator_t alloc;     /* memory hooks */
  walrus_vfs_file_t *lock_file; /* LOCK, held while writable */
  walrus_vfs_dir_t *dirh;       /* the log directory, held open (VFS
                                   version 5), or NULL: paths are used */
  walrus_vfs_dir_t *salvage_dirh;   /* salvage/, once recovery needs it */
  unsigned dir_mode;                /* mode of directories walrus creates */
  int64_t (*clock_ns)(void *, int); /* the VFS's clock, or the POSIX one */
  void *clock_ctx;                  /* its ctx */
  pthread_mutex_t wlock;        /* serializes writers; guards commit and
                                   follow (see LOCKING) */
  walrus__store_t store;        /* the segment table (store layer) */
  walrus__commit_t commit;      /* the write position (commit layer) */
  walrus__follow_t follow;      /* a read-only handle's following (api) */
  walrus__txs_t tx;             /* transactions (api) */
  walrus__stats_t stats;        /* counters (atomics) */
  walrus__err_t err;            /* the last failure */
  walrus__zcache_t zcache;      /* the last compressed unit a get read */
};

/* ---- lock.c ---- */
/* Lock helpers: abort on failure, as a failed pthread call on a valid
 * object means memory corruption. */
void walrus__lock_shared(walrus_t *w);
void walrus__lock_excl(walrus_t *w);
/* Take m, or sem, by deadline (CLOCK_MONOTONIC nanoseconds): 0, or
 * ETIMEDOUT. */
int walrus__mutex_lock_until(pthread_mutex_t *m, int64_t deadline);
int walrus__sem_wait_until(sem_t *s, int64_t deadline);
void walrus__unlock(walrus_t *w);

/* ---- alloc.c ---- */
void *walrus__malloc(walrus_t *w, size_t n);
void *walrus__realloc(walrus_t *w, void *p, size_t n);
void walrus__free(walrus_t *w, void *p);
void walrus__default_allocator(walrus_allocator_t *a);

/* ---- error.c ---- */
/* Record code, errno and a formatted message on w, log it at ERROR, and
 * return code.  w may be NULL (then only the return happens). */
int walrus__fail(walrus_t *w, int code, int os_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Send a message to the configured logger if level passes the threshold. */
void walrus__log(walrus_t *w, walrus_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Poison the handle after a write-side failure; returns code. */
int walrus__poison(walrus_t *w, int code);

/* ---- config.c ---- */
int walrus__config_check(const walrus_config_t *cfg, char *msg, size_t len);
/* The mode of a directory walrus creates, from cfg.file_mode. */
unsigned walrus__dir_mode(unsigned file_mode);

/* ---- vfs.c: wrappers that map errno to walrus codes and name the file ---- */
/* Longest path walrus builds: the directory plus a file name it uses. */
#define WALRUS__PATH_MAX 4096
#define WALRUS__NAME_MAX 64
int walrus__path(walrus_t *w, const char *name, char out[WALRUS__PATH_MAX]);
int walrus__os_open(walrus_t *w, const char *name, int flags,
                    walrus_vfs_file_t **out);
/* The error of a failed open of name (rc: the back end's negative errno):
 * WALRUS_EUNSAFE for a symbolic link, a file that is not a regular one,
 * one with another hard link or, to be written, another user's;
 * WALRUS_EREADONLY on a read-only file system; WALRUS_ENOSPC,
 * WALRUS_ENOMEM, else WALRUS_EIO.  With a message naming the file. */
int walrus__os_open_failed(walrus_t *w, const char *name, int rc);
void walrus__os_close(walrus_t *w, walrus_vfs_file_t *f);
int walrus__os_read(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                    void *buf, size_t n, uint64_t off, size_t *got);
int walrus__os_read_full(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                         void *buf, size_t n, uint64_t off);
int walrus__os_write(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                     const void *buf, size_t n, uint64_t off);
int walrus__os_sync(walrus_t *w, walrus_vfs_file_t *f, const char *name);
int walrus__os_truncate(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                        uint64_t size);
int walrus__os_size(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                    uint64_t *size);
/* WALRUS_ENOTSUP, with no message, when the back end cannot. */
int walrus__os_allocate(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                        uint64_t len);
int walrus__os_map(walrus_t *w, walrus_vfs_file_t *f, const char *name,
                   uint64_t len, void **addr);
int walrus__os_rename(walrus_t *w, const char *from, const char *to);
int walrus__os_unlink(walrus_t *w, const char *name);
int walrus__os_sync_dir(walrus_t *w);
/* Open the log directory for the handle's life (creating it first when
 * create is set), and close it and salvage/ again. */
int walrus__os_dir_open(walrus_t *w, int create);
void walrus__os_dir_close(walrus_t *w);
/* Move the file name of the log directory to salvage/to, making salvage/
 * first if it is missing; salvage/ must be a directory of the log, not a
 * link out of it (WALRUS_EUNSAFE). */
int walrus__os_move_to_salvage(walrus_t *w, const char *name, const char *to);
/* fsync salvage/. */
int walrus__os_sync_salvage(walrus_t *w);
/* fsync the directory that holds the log directory, so that the log
 * directory's own name is durable. */
int walrus__os_sync_parent(walrus_t *w);
/* Raw calls (vfs.c): 0 or the back end's negative errno, no message.
 * Names are of files in the log directory. */
int walrus__os_try_open(walrus_t *w, const char *name, int flags,
                        walrus_vfs_file_t **out);
int walrus__os_try_unlink(walrus_t *w, const char *name);
int64_t walrus__os_try_read(walrus_t *w, walrus_vfs_file_t *f, void *buf,
                            size_t n, uint64_t off);
int walrus__os_try_size(walrus_t *w, walrus_vfs_file_t *f, uint64_t *size);
int walrus__os_try_truncate(walrus_t *w, walrus_vfs_file_t *f,
                            uint64_t size);
int walrus__os_lock(walrus_t *w, walrus_vfs_file_t *f);
int walrus__os_list(walrus_t *w, walrus_vfs_list_fn fn, void *arg);
int walrus__os_try_map(walrus_t *w, walrus_vfs_file_t *f, uint64_t len,
                       void **addr);
int walrus__os_unmap(walrus_t *w, walrus_vfs_file_t *f, void *addr,
                     uint64_t len);
int walrus__os_map_read(walrus_t *w, walrus_vfs_file_t *f, uint64_t len,
                        void **addr);
int walrus__vfs_unmap_read(const walrus_vfs_t *vfs, void *addr, uint64_t len);
void walrus__os_advise(walrus_t *w, walrus_vfs_file_t *f, uint64_t off,
                       uint64_t len);
/* The system besides files, through the VFS (version 4) or the POSIX
 * back end's defaults. */
void walrus__os_wait_word(walrus_t *w, const uint32_t *addr, uint32_t expect,
                          int64_t timeout_ns);
void walrus__os_wake_word(walrus_t *w, uint32_t *addr);
void walrus__os_populate(walrus_t *w, const void *addr, uint64_t len);
/* n random bytes: 0 or a negative errno. */
int walrus__random(walrus_t *w, void *buf, size_t n);
/* Resolve the system methods used on every append (the clock) once, at
 * open. */
void walrus__sys_init(walrus_t *w);
/* CLOCK_REALTIME now, in ns: timestamps. */
static inline int64_t walrus__now_ns(walrus_t *w) {
  return w->clock_ns(w->clock_ctx, 1);
}
/* CLOCK_MONOTONIC now, in ns, as the VFS tells it: transaction timeouts.
 * (Sleeps and latencies use the system's, walrus__mono_ns().) */
int64_t walrus__clock_ns(walrus_t *w);
struct timespec walrus__deadline_ms(uint32_t ms);

/* ---- meta.c ---- */
int walrus__meta_read(walrus_t *w, walrus__meta_t *m, int *found);
int walrus__meta_write(walrus_t *w, const walrus__meta_t *m);
int walrus__meta_sync(walrus_t *w);

/* ---- segment.c ---- */
walrus__seg_t *walrus__seg_new(walrus_t *w, uint64_t first);
void walrus__seg_free(walrus_t *w, walrus__seg_t *s);
int walrus__seg_reserve(walrus_t *w, walrus__seg_t *s, uint64_t n);
int walrus__seg_create(walrus_t *w, uint64_t first);
void walrus__seg_sealed(walrus_t *w, walrus__seg_t *s, uint64_t index_offset);
int walrus__seg_map(walrus_t *w, walrus__seg_t *s);
void walrus__seg_unmap(walrus_t *w, walrus__seg_t *s);
int walrus__seg_trim(walrus_t *w, walrus__seg_t *s, uint64_t end);
int walrus__seg_acquire(walrus_t *w, walrus__seg_t *s);
void walrus__seg_release(walrus_t *w, walrus__seg_t *s);
void walrus__seg_uncache(walrus_t *w, walrus__seg_t *s);
size_t walrus__seg_find(walrus_t *w, uint64_t index);
int walrus__segs_push(walrus_t *w, walrus__seg_t *s);
/* Remove segments [from, from + n) from the table, close and unlink their
 * files, then fsync the directory; newest first when newest_first.
 * Caller holds wlock. */
int walrus__segs_drop(walrus_t *w, size_t from, size_t n, int newest_first);

/* ---- scan.c ---- */
/* Make bytes [off, off + need) of f available in win and point *out at
 * them, reading ahead up to the window's capacity but never past limit.
 * WALRUS_OK with *out NULL if the file (or limit) ends first. */
int walrus__window_read(walrus_t *w, walrus__window_t *win,
                        walrus_vfs_file_t *f, const char *name, uint64_t off,
                        size_t need, uint64_t limit, const unsigned char **out);
void walrus__window_free(walrus_t *w, walrus__window_t *win);

/* Where records are scanned from. */
typedef struct walrus__scan_s {
  walrus__window_t *win;   /* read-ahead window (the caller's) */
  walrus_vfs_file_t *file; /* the segment file */
  const char *name;        /* its name, for messages */
  uint32_t seed;           /* walrus__salt_seed() of its salt */
  uint64_t limit;          /* no record runs past it (UINT64_MAX: the
                              file's end, unchecked) */
  int stop_at_index;       /* report an index record without reading it */
} walrus__scan_t;

/* What walrus__scan_record() found at an offset. */
typedef enum walrus__found_e {
  WALRUS__FOUND_RECORD,    /* a whole record whose CRC matches */
  WALRUS__FOUND_SHORT,     /* the file or limit ends inside the header */
  WALRUS__FOUND_ZEROS,     /* a header of zero bytes */
  WALRUS__FOUND_MALFORMED, /* a header that does not decode */
  WALRUS__FOUND_TOO_LONG,  /* the record, padded, runs past the limit */
  WALRUS__FOUND_INDEX,     /* an index record (stop_at_index): unread */
  WALRUS__FOUND_PARTIAL,   /* the file or limit ends inside the body */
  WALRUS__FOUND_BAD_CRC    /* the CRC does not match */
} walrus__found_t;

/* walrus__window_read() when the bytes are already in the window. */
static inline int walrus__window_get(walrus_t *w, walrus__window_t *win,
                                     walrus_vfs_file_t *f, const char *name,
                                     uint64_t off, size_t need, uint64_t limit,
                                     const unsigned char **out) {
  if (off >= win->off && off + need <= win->off + win->len) {
    *out = win->buf + (off - win->off);
    return WALRUS_OK;
  }
  return walrus__window_read(w, win, f, name, off, need, limit, out);
}

/* Read the record at off: *found says what is there; with
 * WALRUS__FOUND_RECORD *r is decoded and *rec points at its header and
 * body in the window (valid until the next read through it); from
 * WALRUS__FOUND_MALFORMED on, *r holds the header.  Returns WALRUS_OK, or
 * the error of a read.  Inline: a pread iterator runs it for every
 * entry. */
static inline int walrus__is_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

static WALRUS__ALWAYS_INLINE int walrus__scan_record(
    walrus_t *w, const walrus__scan_t *sc, uint64_t off, walrus__rec_t *r,
    const unsigned char **rec, walrus__found_t *found) {
  const unsigned char *p;
  *rec = NULL;
  int rc = walrus__window_get(w, sc->win, sc->file, sc->name, off,
                              WALRUS__REC_HEADER_BYTES, sc->limit, &p);
  if (rc != WALRUS_OK) return rc;
  if (p == NULL) {
    *found = WALRUS__FOUND_SHORT;
    return WALRUS_OK;
  }
  /* A header of zero bytes (what a preallocated or extended file holds
   * where nothing was written) is told apart only when the header does not
   * pass, so that a record costs no scan of it: such a header decodes, as
   * body_len 0 and no flags, and then fails its CRC. */
  if (walrus__rec_header_decode(p, r) != WALRUS__FMT_OK) {
    *found = walrus__is_zero(p, WALRUS__REC_HEADER_BYTES)
                 ? WALRUS__FOUND_ZEROS
                 : WALRUS__FOUND_MALFORMED;
    return WALRUS_OK;
  }
  if (sc->limit != UINT64_MAX &&
      off + walrus__rec_size(r->body_len) > sc->limit) {
    *found = WALRUS__FOUND_TOO_LONG;
    return WALRUS_OK;
  }
  if (sc->stop_at_index && (r->flags & WALRUS__REC_INDEX)) {
    *found = WALRUS__FOUND_INDEX;
    return WALRUS_OK;
  }
  rc =
      walrus__window_get(w, sc->win, sc->file, sc->name, off,
                         WALRUS__REC_HEADER_BYTES + r->body_len, sc->limit, &p);
  if (rc != WALRUS_OK) return rc;
  if (p == NULL) {
    *found = WALRUS__FOUND_PARTIAL;
    return WALRUS_OK;
  }
  if (walrus__crc32c(sc->seed, p + 4,
                     WALRUS__REC_HEADER_BYTES - 4 + r->body_len) != r->crc) {
    *found = walrus__is_zero(p, WALRUS__REC_HEADER_BYTES)
                 ? WALRUS__FOUND_ZEROS
                 : WALRUS__FOUND_BAD_CRC;
    return WALRUS_OK;
  }
  *rec = p;
  *found = WALRUS__FOUND_RECORD;
  return WALRUS_OK;
}

/* ---- rmap.c ---- */
/* The mapping of s covering [0, need), mapped now if it is not; NULL with
 * no error if the VFS cannot map.  Caller holds the lock, shared is
 * enough; the result is valid while it does. */
int walrus__rmap_get(walrus_t *w, walrus__seg_t *s, uint64_t need,
                     walrus__rmap_t **out);
void walrus__rmap_ref(walrus__rmap_t *m);
void walrus__rmap_unref(walrus__rmap_t *m);
/* Is any mapping of s borrowed?  Caller holds the lock exclusively. */
int walrus__rmap_borrowed(walrus__seg_t *s);
/* Drop s's own references to its mappings.  Caller holds the lock
 * exclusively, or s has left the table. */
void walrus__rmap_drop(walrus__seg_t *s);
/* Trim the cache of sealed segments to cached_segments and prune older
 * mappings, taking the lock exclusively.  Call with no lock held. */
void walrus__cache_trim(walrus_t *w);
/* Does the cache need trimming?  Cheap; no lock needed. */
static inline int walrus__cache_over(walrus_t *w) {
  return atomic_load_explicit(&w->store.cached, memory_order_relaxed) >
             w->cfg.cached_segments ||
         atomic_load_explicit(&w->store.rmap_stale, memory_order_relaxed);
}
/* Record the failure of walrus__rec_view(): why is WALRUS_ECHECKSUM,
 * WALRUS_EINDEX (not the entry wanted) or WALRUS_ECORRUPT (malformed). */
int walrus__rec_view_fail(walrus_t *w, int why, const char *name,
                          uint64_t index, uint64_t off);

/* What walrus__rec_view() returns for a record of a compressed unit: its
 * header is verified and out's index, term, timestamp, checksum and type
 * are set, but its body is in the unit's first record (walrus__zunit_*). */
#define WALRUS__VIEW_COMPRESSED 1

/* Verify the record of entry index at p (len bytes available, in segment
 * file name at off) and fill out's fields, borrowing data from p; the tx id
 * is copied to txid.  seed is the segment's walrus__salt_seed().  With
 * checked, the caller has just checked its CRC (and seed is unused);
 * everything else is verified all the same.  Nothing is written to out or
 * txid unless it passes; WALRUS__VIEW_COMPRESSED (above) for a ZSTD
 * record.  Inline: it is the inner step of every mapped read. */
static WALRUS__ALWAYS_INLINE int walrus__rec_view(
    walrus_t *w, const char *name, uint32_t seed, int checked, uint64_t index,
    uint64_t off, const unsigned char *p, uint64_t len, walrus_entry_t *out,
    char txid[256]) {
  if (len < WALRUS__REC_HEADER_BYTES)
    return walrus__rec_view_fail(w, WALRUS_ECORRUPT, name, index, off);
  uint32_t body_len = walrus__get32(p + 4);
  uint8_t flags = p[34], txid_len = p[35]; /* format.h: bytes 34, 35 */
  int z = (flags & WALRUS__REC_ZSTD) != 0;
  if ((flags & ~WALRUS__REC_KNOWN_FLAGS) != 0 || body_len > WALRUS__BODY_MAX ||
      (!z && txid_len > body_len) ||
      WALRUS__REC_HEADER_BYTES + (uint64_t)body_len > len)
    return walrus__rec_view_fail(w, WALRUS_ECORRUPT, name, index, off);
  uint32_t crc = walrus__get32(p);
  if (!checked &&
      walrus__crc32c(seed, p + 4, WALRUS__REC_HEADER_BYTES - 4 + body_len) !=
          crc)
    return walrus__rec_view_fail(w, WALRUS_ECHECKSUM, name, index, off);
  if (walrus__get64(p + 8) != index ||
      (flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)))
    return walrus__rec_view_fail(w, WALRUS_EINDEX, name, index, off);
  const unsigned char *body = p + WALRUS__REC_HEADER_BYTES;
  out->index = index;
  out->term = walrus__get64(p + 16);
  out->timestamp_ns = (int64_t)walrus__get64(p + 24);
  out->checksum = crc;
  out->type = walrus__get16(p + 32);
  out->tx_id = NULL;
  if (z) return WALRUS__VIEW_COMPRESSED;
  if (txid_len > 0) {
    memcpy(txid, body, txid_len);
    txid[txid_len] = '\0';
    out->tx_id = txid;
  }
  out->data = body + txid_len;
  out->len = body_len - txid_len;
  return WALRUS_OK;
}

/* ---- follow.c ---- */
/* A read-only open, before it reads the segments: register as a reader and
 * note DURABLE's log id and rewrite count, so that walrus__durable_open()
 * can tell whether the writer changed files meanwhile. */
void walrus__durable_peek(walrus_t *w);
/* Read-only: has DURABLE's log id or rewrite count (with first_too, or its
 * first index) changed since the peek? */
int walrus__durable_moved(walrus_t *w, int first_too);
int walrus__durable_open(walrus_t *w);
void walrus__durable_close(walrus_t *w);
/* Might another handle, in this process or another, have mapped the log's
 * files?  True while a read-only handle holds its READER-* file; stale
 * ones (their handle gone) are removed.  Caller holds wlock. */
int walrus__readers_present(walrus_t *w);

/* ---- recover.c ---- */
int walrus__recover(walrus_t *w);
/* What walrus__recover_scan() found in a segment's records. */
typedef struct walrus__scan_report_s {
  uint64_t good_end;   /* offset after the last whole unit */
  uint64_t good_count; /* entries in whole units (s->offs holds them) */
  uint64_t stop;       /* offset where the scan stopped (size if clean) */
  int stopped;         /* something that is not a record ended it */
  int at_index;        /* it stopped at an index record */
  int torn;            /* judged: what stopped it is a torn tail */
  int zero_end;        /* judged: zeros and nothing valid after good_end
                          (a preallocated tail: not damage) */
  char why[160];       /* what stopped it */
  char evidence[200];  /* judged, not torn: the valid record after it */
  uint64_t zbad_off;   /* deep: offset of the first compressed unit that
                          cannot be read back, or 0 */
  char zwhy[200];      /* deep: what is wrong with it */
} walrus__scan_report_t;
/* Scan the records of s (file, salt, seed and version set) as open does,
 * filling s->offs; with judge, tell a torn tail from damage as open
 * would; with deep (and zstd in this build), also decompress every
 * compressed unit of whole units and check its records against its frame,
 * which open does not.  Reads only. */
int walrus__recover_scan(walrus_t *w, walrus__seg_t *s, uint64_t size,
                         uint64_t void_after, int judge, int deep,
                         walrus__scan_report_t *out);

/* ---- commit.c ---- */
int walrus__sync_locked(walrus_t *w);
int walrus__sync_mark_locked(walrus_t *w, int durable);
int walrus__drain_locked(walrus_t *w);
int walrus__write_mark(walrus_t *w, walrus__seg_t *t, uint64_t off,
                       uint64_t index, uint8_t extra_flags);
/* WALRUS_OK, or why the handle cannot write now.  Caller holds wlock. */
int walrus__writable(walrus_t *w);
void *walrus__syncer_main(void *arg);
int walrus__commit_make_room(walrus_t *w, uint64_t total, size_t n,
                             walrus__seg_t **tail);
/* deadline: CLOCK_MONOTONIC nanoseconds, 0 for none (commit.c).  Caller
 * holds wlock; it is released on return. */
int walrus__commit_wait(walrus_t *w, uint64_t seq, int64_t deadline);
int walrus__commit_fail(walrus_t *w, int rc);

/* The write path's three steps into the commit layer, inline: they run on
 * every append.  Caller holds wlock. */

/* The tail, if a unit of total bytes and n records fits in it now; else
 * NULL, with *full set when the tail is there but full. */
static inline walrus__seg_t *walrus__commit_tail(walrus_t *w, uint64_t total,
                                                 size_t n, int *full) {
  walrus__seg_t *s = w->store.nsegs ? w->store.segs[w->store.nsegs - 1] : NULL;
  *full = 0;
  if (s == NULL || s->sealed) return NULL;
  if (s->written > 0) {
    uint64_t after = w->commit.write_off + total;
    uint64_t seal =
        walrus__rec_size(4 * (s->written + n)) + WALRUS__TRAILER_BYTES;
    *full =
        after > w->cfg.segment_bytes || after + seal >= WALRUS__SEG_MAX_BYTES;
  }
  return *full ? NULL : s;
}

/* Make room in the tail for a unit of total bytes and n records (sealing a
 * full tail, starting a new one, retention after a rotation: commit.c).
 * *tail gets the tail to write to. */
static inline int walrus__commit_room(walrus_t *w, uint64_t total, size_t n,
                                      walrus__seg_t **tail) {
  int full;
  walrus__seg_t *s = walrus__commit_tail(w, total, n, &full);
  if (s == NULL) return walrus__commit_make_room(w, total, n, tail);
  *tail = s;
  return WALRUS_OK;
}

/* The sync-group flags of the next record (GROUP for the first record of a
 * group, OVERLAP for every record of a group that began while the
 * previous group's sync ran: format.h), given whether it starts a unit. */
static inline uint8_t walrus__commit_flags(walrus_t *w, int unit_start) {
  uint8_t f = 0;
  if (unit_start && !w->commit.group_open) {
    f |= WALRUS__REC_GROUP;
    w->commit.group_overlap = w->commit.sync_running;
  }
  /* Every record of a group that began during the previous group's sync
   * says so, so that the evidence survives the loss of its first. */
  if (w->commit.group_overlap) f |= WALRUS__REC_OVERLAP;
  return f;
}

/* Make the entries written up to count records of the tail t (ending at
 * end) and the next index visible to readers.  Never moves anything
 * backwards. */
static inline void walrus__commit_publish(walrus_t *w, walrus__seg_t *t,
                                          uint64_t count, uint64_t end,
                                          uint64_t next) {
  walrus__lock_excl(w);
  if (t->count < count) {
    t->count = count;
    t->end = end;
  }
  if (w->store.next_index < next) w->store.next_index = next;
  walrus__unlock(w);
}

/* A unit of n records was written to the tail s, ending at end: count it
 * and, but under SYNC_ALWAYS, publish it (it has reached the kernel, so a
 * process crash cannot lose it).  Under SYNC_ALWAYS it is made durable and
 * visible by walrus__commit_wait() on the sequence number returned.
 * *first gets the unit's first index. */
static inline uint64_t walrus__commit_written(walrus_t *w, walrus__seg_t *s,
                                              size_t n, uint64_t end,
                                              uint64_t *first) {
  w->commit.group_open = 1;
  *first = w->commit.write_next;
  s->written += n;
  w->commit.write_next += n;
  w->commit.write_off = end;
  w->commit.dirty = 1;
  w->commit.need_mark = 1;
  uint64_t seq = ++w->commit.write_seq;
  if (w->cfg.sync == WALRUS_SYNC_ALWAYS) return seq;
  walrus__commit_publish(w, s, s->written, end, w->commit.write_next);
  w->commit.durable_seq = seq;
  return seq;
}
int walrus__commit_seal(walrus_t *w);
/* Seal the tail now, once no sync runs, so that the next unit starts a
 * segment of the current version (a compressing writer that finds a
 * version 1 tail holding records). */
int walrus__commit_seal_now(walrus_t *w);
/* Retention: keep at most max_segments segments (after a rotation). */
int walrus__retain(walrus_t *w);
/* Move the first index to first_kept (META first, durably) and remove the
 * whole segments below it. */
int walrus__move_front(walrus_t *w, uint64_t first_kept);
/* Move durable_next forward to next (or, with lower, back to it, telling
 * followers that entries went) and wake walrus_wait() sleepers; the writer
 * also publishes it in DURABLE. */
void walrus__durable_set(walrus_t *w, uint64_t next, int lower);
/* Store the writer's state (first index, log id) into DURABLE. */
void walrus__durable_publish(walrus_t *w);
/* The writer changed files that entries a follower saw lived in (after
 * truncate_back's cut, after reset): bump DURABLE's rewrite count again,
 * so that a follower that opened between the first bump and the change
 * learns it too. */
void walrus__durable_bump(walrus_t *w);
int walrus__durable_read(walrus_t *w, walrus__durable_t *d);
int walrus__durable_writer_open(walrus_t *w);
void walrus__durable_writer_close(walrus_t *w);
/* DURABLE's wake count in a mapping of the file. */
static inline _Atomic uint32_t *walrus__durable_wake_count(void *map) {
  return (_Atomic uint32_t *)((unsigned char *)map + WALRUS__DURABLE_WAKE_OFF);
}

/* ---- compress.c ---- */
int walrus__zstd_built(void);
size_t walrus__zstd_bound(size_t n);
void *walrus__zstd_cctx_new(void);
void walrus__zstd_cctx_free(void *cctx);
void *walrus__zstd_dctx_new(void);
void walrus__zstd_dctx_free(void *dctx);
/* The frame's length, or 0 if it does not fit in cap or zstd failed. */
size_t walrus__zstd_compress(void *cctx, void *dst, size_t cap, const void *src,
                             size_t n, int level);
/* 1 if src[0..m) is one frame that decompresses to exactly n bytes into
 * dst; 0 otherwise (never more than n bytes written). */
int walrus__zstd_decompress(void *dctx, void *dst, size_t n, const void *src,
                            size_t m);

/* ---- stats.c ---- */
void walrus__stats_fsync(walrus_t *w, uint64_t ns);
void walrus__stats_write(walrus_t *w, uint64_t entries, uint64_t bytes);
int64_t walrus__mono_ns(void);

/* ---- append.c ---- */
/* One unit to write: n entries, framed FIRST ... LAST. */
typedef struct walrus__unit_s {
  const walrus_entry_t *e;
  size_t n;
} walrus__unit_t;
/* Write nu units in order under one hold of wlock, and wait once for all
 * of them to be durable (one fdatasync when no other writer shares it).
 * firsts[i] gets unit i's first index, or 0 if it is not in the log.
 * *done gets how many units, from the first, are in the log: after an
 * I/O failure, those a rotation had already made durable; after
 * WALRUS_ETIMEDOUT, those written and not yet durable; after ENOMEM, those
 * written before it (durable).  The others were not written, or were cut.
 * deadline: CLOCK_MONOTONIC nanoseconds, 0 for none; it bounds the wait
 * for wlock (WALRUS_ETIMEDOUT, nothing written) and for another writer's
 * group commit (WALRUS_ETIMEDOUT, written, not durable). */
int walrus__write_units(walrus_t *w, const walrus__unit_t *u, size_t nu,
                        uint64_t *firsts, size_t *done, int64_t deadline);

/* ---- tx.c ---- */
void *walrus__tx_cleaner_main(void *arg);
void walrus__tx_destroy(walrus_t *w);

/* ---- read.c ---- */
int walrus__read_record(walrus_t *w, walrus__seg_t *s, uint64_t index,
                        walrus_entry_t *out, unsigned char zhdr[2]);
/* Decompress the unit whose first record rec (its whole header and body,
 * CRC verified, at offset off of a segment of that header version, file
 * name) holds into u, after checking that it is one and covers index.
 * The bound is cfg.max_entry_bytes.  u->seg is the caller's to set. */
int walrus__zunit_decode(walrus_t *w, uint32_t version, const char *name,
                         uint64_t off, const unsigned char *rec, uint64_t index,
                         walrus__zunit_t *u);
/* Load into u the compressed unit that holds entry index of s, unless u
 * holds it already (the same segment, and the unit starts at the first
 * record found for index): its first record is found from s's offsets and
 * read.  If record index is not compressed, u is left empty.  Caller
 * holds the lock shared, s is ready. */
int walrus__zunit_load(walrus_t *w, walrus__seg_t *s, uint64_t index,
                       walrus__zunit_t *u);
/* Point out's data, len and tx_id (copied into txid) at entry index of
 * the unit u holds, whose record (at off of file name) says txid_len. */
int walrus__zunit_entry(walrus_t *w, const walrus__zunit_t *u, const char *name,
                        uint64_t off, uint64_t index, unsigned txid_len,
                        walrus_entry_t *out, char txid[256]);
void walrus__zunit_free(walrus_t *w, walrus__zunit_t *u);

/* ---- truncate.c ---- */
int walrus__finish_truncate_back(walrus_t *w, uint64_t last_kept,
                                 walrus_vfs_file_t *pre);

#endif /* WALRUS_INTERNAL_H */
