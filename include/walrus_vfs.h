/*
 * walrus_vfs.h: the file system seam of libwalrus.
 *
 * Every file operation walrus performs goes through one table of functions,
 * walrus_vfs_t, and so, from version 4, does everything else it asks of
 * the system: the clocks, randomness, waiting on and waking a word of a
 * shared mapping, and reading a mapping ahead.  The default table calls
 * POSIX; a test, a simulator or an application may pass its own in
 * walrus_config_t.vfs to inject faults, simulate power loss, count calls,
 * keep files in memory or control time.
 *
 * From version 5 the log directory is held open for the handle's life (a
 * walrus_vfs_dir_t) and every file in it is named relative to that, so
 * that renaming or replacing the directory's path under an open handle
 * cannot redirect what the handle writes, and no link in the path of a
 * file of the log is followed.  A table without the version 5 methods
 * gets the path methods of version 1, with full paths.
 *
 * Conventions for every method:
 *  - ctx is walrus_vfs_t.ctx, passed back unchanged.
 *  - Paths are full paths (the log directory joined with a file name);
 *    names given with a walrus_vfs_dir_t are single components.
 *  - A method returns 0 (or a byte count, for pread) on success and a
 *    negative errno value on failure (-EIO, -ENOSPC, -ENOENT, ...).  walrus
 *    maps the errno to its own code by the kind of call: a failed pwrite is
 *    WALRUS_EIO_WRITE (WALRUS_ENOSPC for -ENOSPC or -EDQUOT), a failed sync
 *    WALRUS_EIO_FSYNC, a failed pread WALRUS_EIO_READ.
 *  - pwrite writes all n bytes or fails; a back end that meets a short write
 *    returns -ENOSPC (or the errno it saw).
 *  - Methods are called from several threads at once, on different files
 *    and on the same file (pread beside pwrite).
 *
 * The table is versioned: new methods are only ever appended, and walrus
 * reads a method only when version is at least the one that added it.
 */
#ifndef WALRUS_VFS_H
#define WALRUS_VFS_H

#include <stddef.h>
#include <stdint.h>

#include "walrus.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The current version of walrus_vfs_t. */
#define WALRUS_VFS_VERSION 5

/** Flags for walrus_vfs_t.open. */
#define WALRUS_VFS_READ 0x1   /**< Open for reading. */
#define WALRUS_VFS_WRITE 0x2  /**< Open for reading and writing. */
#define WALRUS_VFS_CREATE 0x4 /**< Create the file; fail if it exists. */

/** A back end's open file.  Opaque to walrus. */
typedef struct walrus_vfs_file_s walrus_vfs_file_t;

/** A back end's open directory (version 5).  Opaque to walrus. */
typedef struct walrus_vfs_dir_s walrus_vfs_dir_t;

/**
 * Called by walrus_vfs_t.list for every entry of a directory (not "." or
 * ".."). Return 0 to go on, anything else to stop the listing and have list
 * return that value.
 */
typedef int (*walrus_vfs_list_fn)(void *arg, const char *name);

/** The file system seam.  All methods of version 1 are required; those
 *  of version 2 are optional. */
struct walrus_vfs_s {
  int version; /**< WALRUS_VFS_VERSION the table was written for. */
  void *ctx;   /**< Passed back as every method's first argument. */

  /** Open path with WALRUS_VFS_* flags; files are created with mode 0600.
   *  A log directory is input: a back end should not follow a symbolic
   *  link in the last component (-ELOOP), nor open anything but a regular
   *  file (-EISDIR, -ENODEV), nor open for writing a file with another
   *  hard link (-EMLINK), and must not hang on a FIFO.  walrus reports each
   *  as WALRUS_EUNSAFE.  The POSIX back end does all of this. */
  int (*open)(void *ctx, const char *path, int flags,
              walrus_vfs_file_t **out);
  /** Close a file.  The file is gone even when an error is returned. */
  int (*close)(void *ctx, walrus_vfs_file_t *f);
  /** Read up to n bytes at off; returns the count (0 at end of file). */
  int64_t (*pread)(void *ctx, walrus_vfs_file_t *f, void *buf, size_t n,
                   uint64_t off);
  /** Write all n bytes at off, or fail. */
  int (*pwrite)(void *ctx, walrus_vfs_file_t *f, const void *buf, size_t n,
                uint64_t off);
  /** Make the file's data (and the size) durable: fdatasync(). */
  int (*sync)(void *ctx, walrus_vfs_file_t *f);
  /** Set the file's size: ftruncate(). */
  int (*truncate)(void *ctx, walrus_vfs_file_t *f, uint64_t size);
  /** Reserve space without changing the size (fallocate KEEP_SIZE); a back
   *  end that cannot returns -EOPNOTSUPP and walrus carries on. */
  int (*allocate)(void *ctx, walrus_vfs_file_t *f, uint64_t off,
                  uint64_t len);
  /** The file's size in bytes. */
  int (*size)(void *ctx, walrus_vfs_file_t *f, uint64_t *size);
  /** Take an exclusive, non-blocking lock on the whole file; -EWOULDBLOCK
   *  (or -EAGAIN) if another open file holds it.  Released by close. */
  int (*lock)(void *ctx, walrus_vfs_file_t *f);
  /** Rename a file, replacing to if it exists: rename(). */
  int (*rename)(void *ctx, const char *from, const char *to);
  /** Remove a file: unlink(). */
  int (*unlink)(void *ctx, const char *path);
  /** Make a directory's entries durable: open + fsync of the directory. */
  int (*sync_dir)(void *ctx, const char *path);
  /** Call fn for every name in the directory. */
  int (*list)(void *ctx, const char *path, walrus_vfs_list_fn fn, void *arg);
  /** Create a directory (mode 0700); -EEXIST if it is there. */
  int (*mkdir)(void *ctx, const char *path);

  /* Version 2.  Optional: NULL (or -EOPNOTSUPP) means walrus writes with
   * pwrite only. */

  /** Map bytes [0, len) of f shared and writable (len is a multiple of
   *  4096 and within the file's size).  A store into the mapping changes
   *  the file as a pwrite of those bytes would: read back by pread, made
   *  durable by sync.  walrus stores only where it would otherwise have
   *  written, and unmaps before it truncates the file or closes it. */
  int (*map)(void *ctx, walrus_vfs_file_t *f, uint64_t len, void **addr);
  /** End a mapping made by map; stores made into it are kept. */
  int (*unmap)(void *ctx, walrus_vfs_file_t *f, void *addr, uint64_t len);

  /* Version 3.  Optional: NULL (or -EOPNOTSUPP) means walrus reads with
   * pread only, and walrus_get_view() copies. */

  /** Map bytes [0, len) of f shared and read-only (len is a multiple of
   *  4096; it may run past the file's end, where walrus never reads).  The
   *  mapping shows the file's bytes as pread would, and stays valid after f
   *  is closed and the file removed, until unmap_read. */
  int (*map_read)(void *ctx, walrus_vfs_file_t *f, uint64_t len,
                  void **addr);
  /** End a mapping made by map_read.  f may already be closed. */
  int (*unmap_read)(void *ctx, void *addr, uint64_t len);
  /** A hint that bytes [off, off + len) of f will be read soon, in order
   *  (posix_fadvise WILLNEED).  Its result is ignored. */
  int (*advise)(void *ctx, walrus_vfs_file_t *f, uint64_t off, uint64_t len);

  /* Version 4: what walrus asks of the system besides files.  Each is
   * optional: NULL means what walrus_vfs_posix() does, so a test back end
   * sets only those it wants to control. */

  /** Sleep while the 32-bit word at addr (in a mapping made by map_read)
   *  holds expect, for at most timeout_ns; returning early (a wake, a
   *  changed word, a signal) is allowed, as the caller looks again.  The
   *  POSIX back end waits on a futex (Linux) or just sleeps. */
  void (*wait_word)(void *ctx, const uint32_t *addr, uint32_t expect,
                    int64_t timeout_ns);
  /** Wake every process sleeping in wait_word on the word at addr (in a
   *  mapping made by map), after the caller changed it. */
  void (*wake_word)(void *ctx, uint32_t *addr);
  /** Bring bytes [addr, addr + len) of a mapping made by map_read into
   *  memory now, ahead of a sequential reader (madvise POPULATE_READ, or
   *  WILLNEED where the kernel predates it). */
  void (*populate)(void *ctx, const void *addr, uint64_t len);
  /** Fill buf with n random bytes (salts, log and transaction ids): 0 or
   *  a negative errno. */
  int (*random)(void *ctx, void *buf, size_t n);
  /** Nanoseconds now: of CLOCK_REALTIME when realtime is not 0 (entry and
   *  segment timestamps), else of CLOCK_MONOTONIC (transaction
   *  timeouts). */
  int64_t (*clock_ns)(void *ctx, int realtime);

  /* Version 5: the log directory held open, and its files named relative
   * to it.  A table sets all seven or none; without them walrus uses the
   * path methods above. */

  /** Open a directory and keep it for the handle's life.  With parent
   *  NULL, name is the log directory's path, and a symbolic link there is
   *  followed (a log moved to another disk by a link keeps working); with
   *  a parent, name is a directory inside it (salvage/), and a link is not
   *  followed (-ELOOP).  Anything but a directory is -ENOTDIR.  With
   *  create set, a missing directory is made with mode (less the umask)
   *  first; a missing one is otherwise -ENOENT. */
  int (*dir_open)(void *ctx, walrus_vfs_dir_t *parent, const char *name,
                  int create, unsigned mode, walrus_vfs_dir_t **out);
  /** Close a directory opened by dir_open. */
  int (*dir_close)(void *ctx, walrus_vfs_dir_t *d);
  /** open, for the file name in d.  A new file (WALRUS_VFS_CREATE) gets
   *  mode, less the umask.  Besides what open refuses, a file opened for
   *  writing must belong to the process's user or to the directory's
   *  owner (-EPERM): a file someone else put there could change under
   *  the writer. */
  int (*open_at)(void *ctx, walrus_vfs_dir_t *d, const char *name, int flags,
                 unsigned mode, walrus_vfs_file_t **out);
  /** rename, from the name from in d_from to the name to in d_to.  A
   *  symbolic link is renamed, never followed. */
  int (*rename_at)(void *ctx, walrus_vfs_dir_t *d_from, const char *from,
                   walrus_vfs_dir_t *d_to, const char *to);
  /** unlink of the name in d (a symbolic link is removed, not followed). */
  int (*unlink_at)(void *ctx, walrus_vfs_dir_t *d, const char *name);
  /** sync_dir of d. */
  int (*sync_dir_at)(void *ctx, walrus_vfs_dir_t *d);
  /** list of d. */
  int (*list_at)(void *ctx, walrus_vfs_dir_t *d, walrus_vfs_list_fn fn,
                 void *arg);
};

/** @brief The POSIX table walrus uses when walrus_config_t.vfs is NULL. */
WALRUS_API const walrus_vfs_t *walrus_vfs_posix(void);

#ifdef __cplusplus
}
#endif

#endif /* WALRUS_VFS_H */
