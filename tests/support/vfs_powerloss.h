/*
 * vfs_powerloss.h: an in-memory test VFS that models a disk behind a page
 * cache and can "lose power".
 *
 * Every file and directory lives in memory; nothing touches the real file
 * system.  Paths are plain strings: the parent of "/a/b/c" is "/a/b".
 * Make the directory a log lives in with pl_mkdir_durable() first (walrus
 * creates the log directory itself and fsyncs that parent).
 *
 * The model
 *   - A file (an inode) has durable contents and size, and the list of
 *     writes and size changes made since its last sync (fdatasync).  Reads
 *     see the current contents (durable + every pending change).  sync makes
 *     the current contents durable.
 *   - Directory operations (create, rename, unlink, mkdir) change the
 *     current namespace at once but are pending until sync_dir of the
 *     directory they touch (a rename across directories: of either one).
 *   - lock always succeeds (one process); allocate does nothing and
 *     succeeds.
 *   - map gives a buffer holding the file's first bytes; what is stored
 *     into it becomes pending writes of the file (a run of changed sectors
 *     each) at the next state-changing call on the file, at unmap, and
 *     when the machine dies; pread sees the stores at once.
 *
 * Power loss: pl_crash(pl, seed)
 *   For every file still reachable from the durable namespace, the pending
 *   changes are kept, dropped or torn, seeded: the file is cut into 512-byte
 *   sectors and each sector independently gets the contents it had in the
 *   page cache at some moment since the last sync (from "nothing pending
 *   reached the disk" to "everything did"); this is how writeback that can
 *   happen at any time in any order behaves, and it splits every pending
 *   write into sectors that are each kept or dropped.  The size likewise
 *   becomes the size at some moment since the last sync (so a pending
 *   ftruncate or extension may or may not survive).  Bytes beyond the size a
 *   sector had at its moment read as zeros.  Each crash picks how hard it
 *   tears: sometimes a clean cut at one moment for the whole file,
 *   sometimes every sector on its own.  Each pending directory operation
 *   independently survives or not, as a whole (a rename happened or did
 *   not).  Files whose every name was lost are gone, and so is every file
 *   in a directory whose mkdir was lost.  Then the durable state is all
 *   there is: files opened before the crash fail with -EIO (close still
 *   frees them), the op counter is cleared and the VFS works again.
 *
 * A process crash: pl_restart(pl)
 *   The process that used the VFS dies but the machine does not: the page
 *   cache (every pending write and directory operation) stays as it is,
 *   files and mappings opened before fail with -EIO, and the next open
 *   runs on what the dead process left.  A pl_crash after it loses what
 *   neither process synced.
 *
 * Dying at a chosen point: pl_arm(pl, k)
 *   The next k state-changing calls (open, pwrite, sync, truncate,
 *   allocate, rename, unlink, sync_dir, mkdir) are performed; from the
 *   (k+1)th on, the machine is "dead": every call except close fails with
 *   -EIO and changes nothing, until pl_crash.  pl_kill() dies at once.
 *   Reads do not count but fail once dead.  pl_hook() chooses the point
 *   by what the call is instead: it is asked before every state-changing
 *   call and returns 1 to die at that call.
 *
 * Thread-safe: one mutex around everything.  No Criterion calls.
 */
#ifndef WALRUS_TEST_VFS_POWERLOSS_H
#define WALRUS_TEST_VFS_POWERLOSS_H

#include <stddef.h>
#include <stdint.h>

#include "walrus.h"
#include "walrus_vfs.h"

/** A power-loss VFS.  Opaque. */
typedef struct pl_s pl_t;

/** What the crashes of one pl_t did so far (see pl_stats). */
typedef struct pl_stats_s {
  uint64_t crashes;       /**< pl_crash calls */
  uint64_t files_pending; /**< files with pending changes at a crash */
  uint64_t writes_lost;   /**< pending writes of which no byte survived */
  uint64_t writes_torn;   /**< pending writes that survived in part */
  uint64_t writes_kept;   /**< pending writes that survived whole */
  uint64_t sizes_lost;    /**< files whose size went back to an older one */
  uint64_t dirops_kept;   /**< pending directory operations that survived */
  uint64_t dirops_lost;   /**< pending directory operations lost */
  uint64_t writes_mapped; /**< writes made by storing into a mapping */
} pl_stats_t;

/** @brief A new, empty power-loss VFS ("/" exists).  NULL on OOM. */
pl_t *pl_new(void);

/** @brief Free it and everything in it.  No log may still use it. */
void pl_free(pl_t *pl);

/** @brief The table to put in walrus_config_t.vfs. */
const walrus_vfs_t *pl_vfs(pl_t *pl);

/** @brief Create path and its missing ancestors, durably.  0 or -errno. */
int pl_mkdir_durable(pl_t *pl, const char *path);

/** @brief Die after k more state-changing calls (see above). */
void pl_arm(pl_t *pl, uint64_t k);

/** @brief Never die (the default, and after pl_crash). */
void pl_disarm(pl_t *pl);

/** @brief Die now. */
void pl_kill(pl_t *pl);

/** @brief 1 if the machine is dead (armed count passed, or pl_kill). */
int pl_dead(pl_t *pl);

/** @brief State-changing calls performed since pl_new or the last crash. */
uint64_t pl_ops(pl_t *pl);

/**
 * @brief Lose power now: keep, drop or tear every pending change (seeded by
 * seed), make what is left the only state, and come back to life disarmed.
 */
void pl_crash(pl_t *pl, uint64_t seed);

/** @brief The worst power loss: every pending change is lost (every
 *  unsynced write and size change, every directory operation not made
 *  durable by sync_dir), then as pl_crash. */
void pl_crash_worst(pl_t *pl);

/** @brief The process dies, the machine lives (see above): the page cache
 *  is kept for the next open, disarmed and alive. */
void pl_restart(pl_t *pl);

/** The kinds of state-changing call, as a hook sees them. */
typedef enum pl_kind_e {
  PL_OPEN,     /**< path; a create or not */
  PL_PWRITE,   /**< the file's path, off, len */
  PL_SYNC,     /**< the file's path */
  PL_TRUNCATE, /**< the file's path; off is the new size */
  PL_ALLOCATE, /**< the file's path, off, len */
  PL_RENAME,   /**< path, to */
  PL_UNLINK,   /**< path */
  PL_SYNC_DIR, /**< path, the directory */
  PL_MKDIR     /**< path */
} pl_kind_t;

/** One state-changing call, before it is performed. */
typedef struct pl_call_s {
  pl_kind_t kind;   /**< what it is */
  const char *path; /**< the path it names; for a file, the path that
                         names the file now ("" if none) */
  const char *to;   /**< PL_RENAME: the new path; else NULL */
  uint64_t off;     /**< PL_PWRITE, PL_ALLOCATE: offset; PL_TRUNCATE: size */
  size_t len;       /**< PL_PWRITE, PL_ALLOCATE: byte count */
} pl_call_t;

/** Returns 1 to die at call (it is not performed), 0 to perform it.
 *  Called with the VFS's mutex held: it must not call the VFS. */
typedef int (*pl_hook_fn)(void *ud, const pl_call_t *call);

/** @brief Ask fn before every state-changing call (NULL: stop asking). */
void pl_hook(pl_t *pl, pl_hook_fn fn, void *ud);

/** @brief Counters of every crash so far. */
pl_stats_t pl_stats(pl_t *pl);

/** @brief 1 if path names a file (not a directory) right now. */
int pl_exists(pl_t *pl, const char *path);

#endif /* WALRUS_TEST_VFS_POWERLOSS_H */
