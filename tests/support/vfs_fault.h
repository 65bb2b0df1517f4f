/*
 * vfs_fault.h: a test VFS that wraps walrus_vfs_posix(), counts every call
 * and can fail or "crash" at a chosen call.
 *
 * Plug it into a log with cfg.vfs = vf_vfs(vf).  Every call walrus makes
 * through the table is counted, in total and per method.  One fault can be
 * armed at a time; it fires at the Nth call counted from the moment it was
 * armed, counting either every method (VF_ANY) or one chosen method:
 *
 *   vf_arm_fail(vf, m, n, -EIO, persistent)
 *       The Nth call returns the negative errno instead of being performed
 *       (and, with persistent, every later call of the same kind too).
 *   vf_arm_short(vf, n, err, persistent)
 *       The Nth pwrite writes only the first half of its buffer, then
 *       returns err (a short write, as a disk filling up or failing part
 *       way through a write leaves it).
 *   vf_arm_crash(vf, m, n)
 *       Just before the Nth call is performed, the process sends itself
 *       SIGKILL.  Meant for a forked child: everything written before that
 *       call has reached the kernel, nothing of the call itself has.
 *
 * The table is version 5 (WALRUS_VFS_VERSION): the log directory is held
 * open, and the methods that name a file in it (open_at, rename_at,
 * unlink_at, sync_dir_at, list_at) are counted, failed and crashed as the
 * path methods they stand for (VF_OPEN, VF_RENAME, ...); dir_open is
 * VF_DIR_OPEN; dir_close is performed and not counted.  map and unmap are
 * wrapped like every other method, so a log opened with cfg.mapped_writes
 * writes through mappings of the POSIX back end.  A failed map is not performed
 * and returns the armed errno (-ENOMEM, -EIO, -EOPNOTSUPP: the last makes
 * walrus go back to pwrite); a failed unmap, like a failed close, is
 * performed all the same (walrus treats the mapping as gone either way)
 * and then returns the armed errno.
 *
 * It also checks walrus' side of the version 2 contract (walrus_vfs.h:
 * walrus "unmaps before it truncates the file or closes it"): a close or
 * truncate of a file that has a live mapping, and an unmap naming no file
 * (NULL) or a file without a live mapping, are counted as misuse (see
 * vf_misuse()); the call is still performed.
 *
 * The fault VFS also keeps a short history of the calls made since the last
 * arm (or vf_history_clear), so a test can say which call a crash point was.
 * Calls on an open file are named by the file's base name, which follows
 * renames made through the VFS (a segment created as .seg.tmp shows as .seg
 * once renamed).
 *
 * Thread-safe: walrus may call the table from several threads.  Nothing here
 * uses Criterion, so it is safe in forked children.
 */
#ifndef WALRUS_TEST_VFS_FAULT_H
#define WALRUS_TEST_VFS_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "walrus.h"
#include "walrus_vfs.h"

/** The methods of walrus_vfs_t, and VF_ANY for "every method". */
typedef enum vf_method {
  VF_ANY = 0,  /**< Every method (for counters and arming). */
  VF_OPEN,     /**< walrus_vfs_t.open */
  VF_CLOSE,    /**< walrus_vfs_t.close */
  VF_PREAD,    /**< walrus_vfs_t.pread */
  VF_PWRITE,   /**< walrus_vfs_t.pwrite */
  VF_SYNC,     /**< walrus_vfs_t.sync */
  VF_TRUNCATE, /**< walrus_vfs_t.truncate */
  VF_ALLOCATE, /**< walrus_vfs_t.allocate */
  VF_SIZE,     /**< walrus_vfs_t.size */
  VF_LOCK,     /**< walrus_vfs_t.lock */
  VF_RENAME,   /**< walrus_vfs_t.rename */
  VF_UNLINK,   /**< walrus_vfs_t.unlink */
  VF_SYNC_DIR, /**< walrus_vfs_t.sync_dir */
  VF_LIST,     /**< walrus_vfs_t.list */
  VF_MKDIR,    /**< walrus_vfs_t.mkdir */
  VF_MAP,      /**< walrus_vfs_t.map (version 2) */
  VF_UNMAP,    /**< walrus_vfs_t.unmap (version 2) */
  VF_DIR_OPEN, /**< walrus_vfs_t.dir_open (version 5) */
  VF__COUNT    /**< Number of entries above. */
} vf_method_t;

/** A fault VFS.  Opaque. */
typedef struct vf_s vf_t;

/** @brief A new fault VFS over walrus_vfs_posix(), disarmed.  NULL on OOM. */
vf_t *vf_new(void);

/** @brief Free it.  No log may still use it.  NULL is fine. */
void vf_free(vf_t *vf);

/** @brief The table to put in walrus_config_t.vfs. */
const walrus_vfs_t *vf_vfs(vf_t *vf);

/** @brief Calls of method m (VF_ANY: all) since vf_new/vf_reset_counts. */
uint64_t vf_count(vf_t *vf, vf_method_t m);

/** @brief Zero every counter (not the armed fault). */
void vf_reset_counts(vf_t *vf);

/**
 * @brief Fail the nth (1-based) call of method m (VF_ANY: of any method)
 * counted from now, returning err (a negative errno such as -EIO) without
 * performing it.  With persistent, every later call of that kind fails too
 * (for open, close is still performed so nothing leaks; close and unmap
 * are performed even when failed).  Replaces any armed fault and clears the
 * history.
 */
void vf_arm_fail(vf_t *vf, vf_method_t m, uint64_t nth, int err,
                 int persistent);

/** vf_arm_short()'s err for "return the byte count written". */
#define VF_SHORT_RETURNS_COUNT 0

/**
 * @brief Make the nth (1-based) pwrite counted from now a short write: it
 * writes the first n / 2 bytes of its buffer (rounded down) at its offset,
 * then returns err instead of 0.  err is normally a negative errno: that is
 * how walrus_vfs.h tells a back end to report a short write (-ENOSPC, or
 * the errno it met, e.g. -EIO).  VF_SHORT_RETURNS_COUNT makes it return the
 * number of bytes written instead, as pwrite(2) itself would; walrus_vfs.h
 * does not allow that, but walrus must still not take it for success (a
 * 1-byte write then writes nothing and returns -EIO, never 0).  With
 * persistent, every later pwrite is short too.  Only pwrite is counted.
 * Replaces any armed fault and clears the history.
 */
void vf_arm_short(vf_t *vf, uint64_t nth, int err, int persistent);

/**
 * @brief Kill the process with SIGKILL just before the nth (1-based) call of
 * method m (VF_ANY: of any method) counted from now.  Replaces any armed
 * fault and clears the history.
 */
void vf_arm_crash(vf_t *vf, vf_method_t m, uint64_t nth);

/** @brief Disarm; counting goes on. */
void vf_disarm(vf_t *vf);

/** @brief How many calls the armed fault has failed (or made short) so far
 * (0: none). */
uint64_t vf_fired(vf_t *vf);

/** @brief Calls of the armed kind made since arming (or since vf_new). */
uint64_t vf_armed_calls(vf_t *vf);

/** @brief "pwrite", "sync_dir", ...; "any" for VF_ANY. */
const char *vf_method_name(vf_method_t m);

/**
 * @brief Write the calls made since the last arm (or vf_history_clear) into
 * buf as "1:open(LOCK) 2:pwrite(00..01.seg) ...", truncated to fit; at
 * most the first 1024 calls are kept.  Returns buf.
 */
char *vf_history(vf_t *vf, char *buf, size_t len);

/** @brief Forget the history. */
void vf_history_clear(vf_t *vf);

/**
 * @brief Misuse of the map contract seen since vf_new or vf_misuse_clear:
 * returns how many, and writes a description of the first into buf
 * ("" if none), truncated to len.
 */
uint64_t vf_misuse(vf_t *vf, char *buf, size_t len);

/** @brief Forget the misuse seen so far. */
void vf_misuse_clear(vf_t *vf);

/**
 * @brief The ith call (1-based) of the history: its method in *m and the
 * base name of its file or path in name (truncated to len).  Returns 1, or
 * 0 if the history does not hold an ith call (past the calls made, or past
 * the first 1024 kept).
 */
int vf_history_call(vf_t *vf, uint64_t i, vf_method_t *m, char *name,
                    size_t len);

/**
 * @brief The position in the history (1-based, counting calls of every
 * method since the last arm) of the first call the armed fault failed or
 * made short; 0 if it has not fired.  With vf_history_call() a test can
 * tell which call that was and what came before it.
 */
uint64_t vf_fired_at(vf_t *vf);

#endif /* WALRUS_TEST_VFS_FAULT_H */
