/*
 * walrus.h: the whole public API of libwalrus, a durable write-ahead log.
 *
 * A walrus log is a directory of segment files holding numbered entries.
 * Indexes start where the log says (1 for a new log) and run without gaps
 * from walrus_first_index() to walrus_last_index().  Every record carries a
 * CRC32C; the byte layout is in docs/FORMAT.md.
 *
 * @section guarantees Guarantees
 *
 *  - Durable: under WALRUS_SYNC_ALWAYS (the default) a write call returns
 *    WALRUS_OK only after its records are fdatasync()ed; creating, renaming
 *    or removing a file is followed by an fsync() of the directory.  Under
 *    every policy a returned write has reached the kernel, so a crash of the
 *    process (kill -9) loses nothing; only power loss can.  A writable open
 *    makes durable what it finds (the log directory's name, its entries,
 *    META, a sealed last segment, the tail) before it repairs or
 *    acknowledges anything, so a process crash followed by a power loss
 *    loses nothing a later process acknowledged (docs/FORMAT.md 8.6).
 *  - Atomic: walrus_write_batch() is all or nothing across any crash.
 *  - Honest about damage: a torn tail (a partial last record or batch) is
 *    cut at open; damage anywhere else is reported as WALRUS_ECORRUPT or
 *    WALRUS_ECHECKSUM naming the file and offset, never silently removed.
 *    No call returns bytes that fail their checksum.
 *  - No gaps: after any recovery the log is a prefix of what was written.
 *  - Fail-stop: after a failed write, fsync or other write-side I/O call the
 *    handle is poisoned: every later write returns WALRUS_EPOISONED until the
 *    log is closed and reopened.  walrus never retries an fsync.
 *  - One writer: a lock file stops a second writable open of the same
 *    directory, in this or any other process (WALRUS_ELOCKED).  Read-only
 *    opens are allowed beside the writer.
 *  - Bounded: memory does not grow with the number of entries.  Opening a log
 *    reads each sealed segment's fixed-size trailer, never its records.
 *
 * @section caveats Caveats
 *
 *  - Threads: every function taking a walrus_t is safe to call from many
 *    threads at once, except walrus_close(), which must be the last call.
 *    An iterator (walrus_iter_t) belongs to one thread at a time.  Writers
 *    are serialized but share fsyncs; readers never wait for an fsync.
 *  - fork(): do not use a handle in a child process after fork(); the lock
 *    file lock is shared with the parent and the child's writes would race
 *    the parent's.  Open the log anew in the child (after the parent closed
 *    it) instead.
 *  - Network file systems: the lock file relies on flock(), and durability on
 *    fdatasync() doing what POSIX says.  Neither is reliable on NFS or SMB;
 *    keep logs on a local file system.
 *  - One writer per directory: two handles, even in one process, cannot both
 *    open a directory for writing.
 *  - Read-only handles see the log as it was when they were opened, until
 *    walrus_refresh() (or walrus_wait() or a follow iterator, which call
 *    it) brings in what the writer has made durable since.
 *
 * @section memory Memory ownership
 *
 *  - walrus never keeps a pointer to a caller's buffer after a call returns:
 *    walrus_append() and walrus_write_batch() copy what they need.
 *  - walrus_get() returns an entry the caller owns; release it with
 *    walrus_entry_free().
 *  - walrus_iter_next() returns a borrowed entry: its data and tx_id are valid
 *    until the next walrus_iter_next() or walrus_iter_close() on that
 *    iterator.  Do not modify or free them.
 *  - walrus_get_view() returns a borrowed entry whose data points into a
 *    read-only mapping of its segment: valid, with the same bytes, until
 *    walrus_view_release(), even across rotation, walrus_truncate_front(),
 *    retention and walrus_close() of the handle.
 *  - Strings from walrus_strerror(), walrus_errname() and
 *    walrus_version_string() are static.  walrus_errmsg() is valid until the
 *    next failing call on the same handle.
 *
 * @section errors Errors
 *
 * Every fallible call returns WALRUS_OK (0), a negative WALRUS_E* code, or,
 * for iteration only, WALRUS_DONE (positive).  The values are frozen: new
 * codes are only ever added at the end.  walrus_errmsg() tells which field,
 * file or offset a failure concerns, and walrus_last_errno() the OS errno.
 * WALRUS_ECLOSED mirrors ErrWALClosed of the Go library walrus (github
 * l00pss/walrus), whose API this one follows; since walrus_close() frees
 * the handle, no call of this version returns it.
 */
#ifndef WALRUS_H
#define WALRUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the symbols libwalrus exports; everything else is hidden. */
#if defined(_WIN32)
#define WALRUS_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define WALRUS_API __attribute__((visibility("default")))
#else
#define WALRUS_API
#endif

#define WALRUS_VERSION_MAJOR 0 /**< Incompatible API changes. */
#define WALRUS_VERSION_MINOR 1 /**< Compatible additions. */
#define WALRUS_VERSION_PATCH 0 /**< Fixes. */
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define WALRUS_VERSION_NUMBER                                            \
  (WALRUS_VERSION_MAJOR * 10000 + WALRUS_VERSION_MINOR * 100 +           \
   WALRUS_VERSION_PATCH)

/**
 * The error list: X(NAME, value, message).  The values are frozen; a new code
 * is only ever appended with the next free value.
 */
#define WALRUS_ERRNO_MAP(X)                                              \
  X(EINVAL, -1, "invalid argument")                                      \
  X(ECLOSED, -2, "log is closed")                                        \
  X(EINDEX, -3, "index out of range")                                    \
  X(ECHECKSUM, -4, "checksum mismatch")                                  \
  X(ECORRUPT, -5, "log is corrupted")                                    \
  X(ENOSEGMENT, -6, "segment not found")                                 \
  X(ETOOLARGE, -7, "entry too large")                                    \
  X(ELOCKED, -8, "log is locked by another writer")                      \
  X(EREADONLY, -9, "log is open read-only")                              \
  X(EIO_WRITE, -10, "I/O error while writing")                           \
  X(EIO_FSYNC, -11, "I/O error while syncing to stable storage")         \
  X(EIO_READ, -12, "I/O error while reading")                            \
  X(ENOSPC, -13, "no space left on device")                              \
  X(EPOISONED, -14, "handle poisoned by an earlier I/O failure; reopen") \
  X(ENOMEM, -15, "out of memory")                                        \
  X(ENOTSUP, -16, "not supported")                                       \
  X(EFORMAT, -17, "unsupported format or version")                       \
  X(ETXNOTFOUND, -18, "transaction not found")                           \
  X(ETXNOTPENDING, -19, "transaction is not pending")                    \
  X(ETXEXPIRED, -20, "transaction expired")                              \
  X(ETXTOOLARGE, -21, "transaction too large")                           \
  X(EIO, -22, "I/O error on a file or directory operation")              \
  X(EBUSY, -23, "resource busy")                                         \
  X(ETIMEDOUT, -24, "timed out")                                         \
  X(ESTALE, -25, "the writer rewrote the log; reopen to follow it")      \
  X(EUNSAFE, -26, "a file in the log directory is not a plain file of its own")

/** The largest index an entry can have (2^63 - 1). */
#define WALRUS_INDEX_MAX ((uint64_t)INT64_MAX)

/** Result codes.  WALRUS_OK is success; WALRUS_DONE ends an iteration. */
typedef enum walrus_code {
  WALRUS_OK = 0,   /**< Success. */
  WALRUS_DONE = 1, /**< walrus_iter_next(): no entry beyond the last. */
#define WALRUS_ERRNO_ENUM_(name, value, msg) WALRUS_##name = (value),
  WALRUS_ERRNO_MAP(WALRUS_ERRNO_ENUM_)
#undef WALRUS_ERRNO_ENUM_
      WALRUS__ELAST = -27 /**< Internal sentinel: one below the lowest code. */
} walrus_code_t;

/** An open log.  Opaque. */
typedef struct walrus_s walrus_t;
/** A sequential reader over a log.  Opaque; one thread at a time. */
typedef struct walrus_iter_s walrus_iter_t;
/** The file system seam; see walrus_vfs.h.  NULL selects POSIX. */
typedef struct walrus_vfs_s walrus_vfs_t;

/**
 * One log entry.  On input (walrus_append, walrus_write_batch) index and
 * checksum are ignored; on output every field is filled.
 */
typedef struct walrus_entry {
  uint64_t index;        /**< Assigned by the log; ignored on input. */
  uint64_t term;         /**< Caller's term (Raft); stored as given. */
  int64_t timestamp_ns;  /**< 0 on input: the log stamps CLOCK_REALTIME. */
  uint32_t checksum;     /**< Filled on read: the record's CRC32C. */
  uint16_t type;         /**< Caller's entry type (Raft command, ...). */
  const char *tx_id;     /**< NULL, or a 1..255 byte transaction id. */
  const void *data;      /**< Payload; may be NULL when len is 0. */
  size_t len;            /**< Payload length; 0 is allowed. */
} walrus_entry_t;

/** A transaction id: "tx_" and 32 lowercase hex digits, NUL-terminated. */
typedef struct walrus_txid {
  char s[40]; /**< The id as text. */
} walrus_txid_t;

/** Where a transaction stands. */
typedef enum walrus_tx_state {
  WALRUS_TX_PENDING = 0,   /**< Begun; entries may be added. */
  WALRUS_TX_COMMITTED = 1, /**< Written to the log, atomically. */
  WALRUS_TX_ABORTED = 2    /**< Rolled back, expired, or failed. */
} walrus_tx_state_t;

/** When a write is made durable.  Each policy's loss window is stated. */
typedef enum walrus_sync {
  /** A write returns after fdatasync(): nothing acknowledged is lost, even
   *  on power loss.  The default. */
  WALRUS_SYNC_ALWAYS = 0,
  /** A background thread syncs at least every sync_interval_ms: power loss
   *  can lose that much acknowledged data; a process crash loses none. */
  WALRUS_SYNC_INTERVAL = 1,
  /** The operating system decides when data reaches the disk; power loss
   *  can lose any acknowledged data not covered by walrus_sync().  A
   *  process crash loses none: every returned write has reached the
   *  kernel. */
  WALRUS_SYNC_NONE = 2
} walrus_sync_t;

/** How entries are encoded on disk (the Go library's format option). */
typedef enum walrus_format {
  WALRUS_FORMAT_BINARY = 0, /**< Binary records (docs/FORMAT.md). */
  WALRUS_FORMAT_JSON = 1    /**< Not available yet: WALRUS_ENOTSUP. */
} walrus_format_t;

/** Payload compression (the Go library's compression option). */
typedef enum walrus_compression {
  WALRUS_COMPRESSION_NONE = 0, /**< Payloads are stored as given. */
  /** Each unit (an append, a batch, a committed transaction) whose
   *  payloads and tx ids come to at least compress_min_bytes is stored
   *  as one zstd frame, when that is smaller (docs/FORMAT.md §5.6).
   *  WALRUS_ENOTSUP when this build of walrus has no zstd
   *  (walrus_open() says so). */
  WALRUS_COMPRESSION_ZSTD = 1
} walrus_compression_t;

/** What walrus_open() does with damage it finds in the unsealed tail. */
typedef enum walrus_recovery {
  /** Cut a torn or partial last record or batch (and fsync the cut).
   *  Damage followed by valid records is WALRUS_ECORRUPT.  The default. */
  WALRUS_RECOVER_TAIL = 0,
  /** Any damage, even a torn tail, is an error; nothing is changed. */
  WALRUS_RECOVER_STRICT = 1,
  /** Keep the longest valid prefix of the log; move every byte after it
   *  into side files (*.salvage) and later segments into salvage/.  Nothing
   *  is deleted.  Use it as a repair step, after backing up the log. */
  WALRUS_RECOVER_SALVAGE = 2
} walrus_recovery_t;

/** Logger levels, most severe first. */
typedef enum walrus_log_level {
  WALRUS_LOG_ERROR = 0, /**< An operation failed, or damage was found. */
  WALRUS_LOG_WARN = 1,  /**< Recovery changed the log (a cut, a salvage). */
  WALRUS_LOG_INFO = 2,  /**< Open, close, rotation, truncation, retention. */
  WALRUS_LOG_DEBUG = 3  /**< Details for debugging. */
} walrus_log_level_t;

/**
 * A logger callback.  It may run on any thread that calls into the handle
 * (or on the SYNC_INTERVAL thread) while walrus holds internal locks, so it
 * must return promptly and must not call back into the same handle.
 */
typedef void (*walrus_logger_fn)(void *ud, walrus_log_level_t level,
                                 const char *msg);

/**
 * Allocator hooks.  All three must be set; ud is passed back to each.
 * walrus_entry_free() uses the allocator of the handle that made the entry.
 */
typedef struct walrus_allocator {
  void *(*malloc_fn)(void *ud, size_t size);            /**< malloc. */
  void *(*realloc_fn)(void *ud, void *ptr, size_t size); /**< realloc. */
  void (*free_fn)(void *ud, void *ptr);                  /**< free. */
  void *ud;                                              /**< Passed back. */
} walrus_allocator_t;

/**
 * Options for walrus_open().  Always start from walrus_config_default() so
 * that fields added later get their defaults.  walrus_open() checks every
 * field and, when one is out of range, returns WALRUS_EINVAL with a message
 * naming it; an option whose feature is not built yet returns WALRUS_ENOTSUP
 * instead of being ignored.
 */
typedef struct walrus_config {
  walrus_sync_t sync;          /**< Durability policy.  Default ALWAYS. */
  uint32_t sync_interval_ms;   /**< INTERVAL policy period, 1..3600000.
                                    Default 100. */
  uint64_t segment_bytes;      /**< Seal a segment once it holds this many
                                    bytes; 4 KiB..1 GiB.  Default 64 MiB. */
  uint32_t max_segments;       /**< Keep at most this many segments by moving
                                    the first index forward; 0 keeps all.
                                    Never removes a segment an open iterator
                                    still needs.  Default 0. */
  size_t buffer_bytes;         /**< Encode buffer: records are gathered here
                                    and written with one call; bigger writes
                                    go out in pieces of this size.
                                    4 KiB..256 MiB.  Default 1 MiB. */
  uint32_t cached_segments;    /**< Sealed segments kept open with their
                                    index loaded (LRU), 1..65536.
                                    Default 4. */
  int prefill_segments;        /**< Under SYNC_ALWAYS, write zeros over
                                    each new segment up to segment_bytes
                                    before using it, so that appends
                                    overwrite blocks already allocated and
                                    each fdatasync has no file size or
                                    block allocation to make durable
                                    (fewer file system journal commits).
                                    Costs one write of segment_bytes per
                                    new segment.  0 or 1.  Default 1. */
  int mapped_writes;           /**< Under SYNC_NONE and SYNC_INTERVAL,
                                    store records into a shared mapping of
                                    the tail segment (space reserved first
                                    with fallocate) instead of calling
                                    pwrite: no system call per append.  The
                                    guarantees are the same (a returned
                                    append is in the page cache; walrus_sync
                                    and the interval thread make it durable
                                    and report write-back errors), but a
                                    store cannot return an error: should the
                                    file system fail to back a page (an I/O
                                    error reading it in, the file cut by
                                    another process), the process receives
                                    SIGBUS.  Ignored under SYNC_ALWAYS and
                                    when the VFS has no map method.
                                    Default 0. */
  int zero_copy;               /**< walrus_get(), walrus_get_range() and
                                    iterators read records through
                                    read-only mappings of the segments
                                    (the checksum still verified on every
                                    read) instead of pread: no system call
                                    per read.  The cost: an I/O error while
                                    the kernel pages a mapping in, or a
                                    segment file cut by another process,
                                    raises SIGBUS instead of returning
                                    WALRUS_EIO_READ.  walrus_get_view()
                                    always maps.  Ignored when the VFS
                                    cannot map for reading.  0 or 1.
                                    Default 0. */
  walrus_format_t format;      /**< Must be WALRUS_FORMAT_BINARY for now. */
  walrus_compression_t compression; /**< NONE (default) or ZSTD: compress
                                    the units this handle writes.  Reading
                                    needs no option: a log may mix both,
                                    and any handle of a build with zstd
                                    reads compressed units (one without
                                    says WALRUS_ENOTSUP, naming the file
                                    and offset). */
  uint32_t tx_timeout_ms;      /**< Timeout of a transaction begun with
                                    timeout 0; 0 means never.  Default
                                    30000. */
  uint32_t tx_max_entries;     /**< Most entries one transaction may hold,
                                    1..10000000.  Default 10000. */
  uint32_t tx_cleanup_interval_ms; /**< Run a background thread that aborts
                                    expired transactions this often,
                                    0..3600000; 0: no thread.  Default 0. */
  uint64_t tx_max_pending_bytes; /**< Most payload bytes all pending
                                    transactions may hold together,
                                    4 KiB..1 TiB.  Default 256 MiB. */
  uint32_t max_entry_bytes;    /**< Largest payload plus tx id accepted,
                                    1..1 GiB.  Default 16 MiB. */
  walrus_recovery_t recovery;  /**< What open does with damage.  TAIL. */
  int read_only;               /**< Open without writing anything, beside a
                                    possible writer.  Default 0. */
  uint32_t follow_poll_ms;     /**< Read-only handles: walrus_wait()
                                    looks at how far the writer is durable,
                                    then sleeps 1 ms, doubling up to this
                                    while nothing changes.  A writer's sync
                                    ends the sleep at once where it can
                                    (Linux, the POSIX VFS).  1..60000.
                                    Default 50. */
  int create_if_missing;       /**< Create the directory and a new log if
                                    absent.  Default 1 (ignored read-only). */
  unsigned file_mode;          /**< Mode of the files walrus creates, less
                                    the umask; directories (the log's own,
                                    salvage/) get the search bit beside each
                                    read bit (0600 -> 0700, 0640 -> 0750).
                                    Existing files keep theirs.  0600..0777,
                                    owner read and write required.
                                    Default 0600: only the owner reads the
                                    log.  Applies through a VFS of version
                                    5 (the POSIX one is). */
  walrus_logger_fn logger;     /**< NULL: no log messages.  Default NULL. */
  void *logger_ud;             /**< Passed to logger. */
  walrus_log_level_t log_level; /**< Most verbose level passed to logger.
                                    Default WALRUS_LOG_INFO. */
  const walrus_vfs_t *vfs;     /**< File system seam; NULL is POSIX. */
  const walrus_allocator_t *allocator; /**< NULL is malloc/realloc/free. */
  uint32_t compress_min_bytes;         /**< With compression ZSTD: a unit whose
                                            payloads and tx ids come to fewer bytes
                                            is stored as it is.  A unit of more
                                            than max_entry_bytes is never
                                            compressed.  0..1 GiB.  Default 512. */
  int compress_level; /**< With compression ZSTD: the zstd level,
                           -7..19 (negative: faster, larger;
                           0 is zstd's default, 3).  Default 1. */
} walrus_config_t;

/**
 * @brief Fill cfg with the defaults listed on each field.
 * @param[out] cfg the configuration to fill; NULL does nothing.
 */
WALRUS_API void walrus_config_default(walrus_config_t *cfg);

/**
 * @brief Check a configuration without opening anything.
 * @param[in]  cfg    the configuration.
 * @param[out] msg    if not NULL, receives a message naming the bad field.
 * @param[in]  msglen size of msg.
 * @return WALRUS_OK; WALRUS_EINVAL (a field is out of range, or cfg is
 *   NULL); WALRUS_ENOTSUP (an option whose feature is not built yet).
 */
WALRUS_API int walrus_config_check(const walrus_config_t *cfg, char *msg,
                                   size_t msglen);

/**
 * @brief Open (and recover) the log in directory dir.
 *
 * A writable open takes the directory's lock file, creates the directory
 * and an empty log when absent (create_if_missing), scans only the unsealed
 * tail segment, and applies cfg->recovery to any damage found there.  Sealed
 * segments are checked through their trailers only; their records are
 * verified whenever they are read.  Before it changes or acknowledges
 * anything, a writable open makes durable what it found, which a writer
 * killed earlier may have left only in the page cache: it fsyncs the
 * parent directory, the log directory and META, and fdatasyncs the tail (or
 * a sealed last segment); four syncs, whatever the length of the log.  A
 * read-only open changes and syncs nothing.
 *
 * @param[in]  dir the log directory.
 * @param[in]  cfg options; NULL means walrus_config_default().
 * @param[out] out the new handle; untouched on failure.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL dir or out, bad option);
 *   WALRUS_ENOTSUP (option not built yet); WALRUS_ELOCKED (another writer);
 *   WALRUS_ECORRUPT (damage before the tail, a missing segment, a bad
 *   trailer, or any damage in strict mode); WALRUS_EFORMAT (a file of an
 *   unknown version); WALRUS_EIO (the directory or a file cannot be opened,
 *   listed or created; see walrus_open_ex for the message);
 *   WALRUS_EIO_READ; WALRUS_EIO_FSYNC (making what it found durable, or a
 *   cut); WALRUS_EIO_WRITE, WALRUS_ENOSPC (while cutting a torn tail);
 *   WALRUS_ENOMEM; WALRUS_EUNSAFE (a file of the log is a symbolic link,
 *   not a regular file, or, to be written, has another hard link or is
 *   another user's; salvage/ is a link or a file: nothing is changed);
 *   WALRUS_EREADONLY (a writable open on a read-only file system: open it
 *   read_only); WALRUS_ESTALE (read-only:
 *   the writer truncated back or reset the log while it was being read;
 *   open again).
 */
WALRUS_API int walrus_open(const char *dir, const walrus_config_t *cfg,
                           walrus_t **out);

/**
 * @brief walrus_open() that also explains a failure.
 * @param[out] errbuf if not NULL, receives a message naming the field, file
 *   or offset at fault when the open fails.
 * @param[in] errlen size of errbuf.
 * @return as walrus_open().
 */
WALRUS_API int walrus_open_ex(const char *dir, const walrus_config_t *cfg,
                              walrus_t **out, char *errbuf, size_t errlen);

/**
 * @brief Close the log: sync what is unsynced, release the lock, free all.
 *
 * Every iterator of the handle must be closed first.  NULL is fine.  The
 * handle is freed even when the final sync fails.
 * @return WALRUS_OK; WALRUS_EIO_FSYNC (the final sync failed; data written
 *   under SYNC_NONE or SYNC_INTERVAL since the last sync may not be
 *   durable); WALRUS_EIO_WRITE, WALRUS_ENOSPC (writing the final sync mark,
 *   or cutting a preallocated tail, failed; the entries are as durable as
 *   the last successful sync made them); WALRUS_EBUSY (iterators are still
 *   open; nothing was closed).
 */
WALRUS_API int walrus_close(walrus_t *w);

/**
 * @brief Append one entry at walrus_last_index() + 1.
 *
 * The entry is copied; e's buffers are free again when the call returns.
 * Under WALRUS_SYNC_ALWAYS it is durable when WALRUS_OK is returned;
 * concurrent callers share fdatasyncs (group commit), each returning once
 * its own entry is durable.  Readers see the entry only once it is
 * durable under SYNC_ALWAYS, at once under the other policies.
 * @param[in]  w     the log.
 * @param[in]  e     the entry; index and checksum are ignored.
 * @param[out] index if not NULL, receives the entry's index.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w or e, data NULL with len > 0,
 *   tx_id empty or longer than 255 bytes); WALRUS_ETOOLARGE (len plus tx id
 *   above max_entry_bytes); WALRUS_EREADONLY;
 *   WALRUS_EPOISONED; WALRUS_EINDEX (the index would pass
 *   WALRUS_INDEX_MAX); WALRUS_EIO_WRITE, WALRUS_ENOSPC, WALRUS_EIO_FSYNC,
 *   WALRUS_EIO (the handle is poisoned afterwards); WALRUS_ENOMEM.
 */
WALRUS_API int walrus_append(walrus_t *w, const walrus_entry_t *e,
                             uint64_t *index);

/**
 * @brief walrus_append() that gives up after timeout_ms
 * (AppendWithContext).
 *
 * The deadline bounds the two waits of an append: for the writer lock,
 * which another writer holds, and, under SYNC_ALWAYS, for the group
 * commit fdatasync of another writer that this entry waits to share.  A
 * caller that leads a group commit itself runs its fdatasync to the end.
 * On WALRUS_ETIMEDOUT, *index says what became of the entry:
 *  - 0: the lock stayed busy; nothing was written and the log is
 *    unchanged.
 *  - the entry's index: it is written (in the page cache, so a process
 *    crash keeps it) but not yet durable nor visible to readers.  The next
 *    fdatasync of the handle makes it durable: another writer's group
 *    commit, walrus_sync(), the SYNC_INTERVAL thread, walrus_close().
 *    Should a write or fsync fail first, the handle is poisoned and the
 *    entry cut: it is then not in the log after reopening, and its index
 *    may be given to another entry.  walrus_sync() returns which.
 * @param[in]  timeout_ms how long the call may wait; 0 fails at once
 *   unless nothing is in the way.
 * @param[out] index if not NULL, the entry's index, or 0 (above).
 * @return as walrus_append(); WALRUS_ETIMEDOUT as above.
 */
WALRUS_API int walrus_append_deadline(walrus_t *w, const walrus_entry_t *e,
                                      uint32_t timeout_ms, uint64_t *index);

/**
 * @brief Append n entries atomically at a contiguous run of indexes.
 *
 * After any crash either all n entries are in the log or none is.  A batch
 * is never split across segments: when it does not fit in the current
 * segment a new one is started, and a batch larger than segment_bytes gets
 * a segment of its own.
 * @param[out] first_index if not NULL, receives the index of e[0].
 * @return as walrus_append(); also WALRUS_EINVAL for n == 0 or e NULL, and
 *   WALRUS_ETOOLARGE when the batch's records exceed 4 GiB.
 */
WALRUS_API int walrus_write_batch(walrus_t *w, const walrus_entry_t *e,
                                  size_t n, uint64_t *first_index);

/**
 * @brief Read entry index into out, verifying its checksum.
 *
 * out->data and out->tx_id belong to the caller until walrus_entry_free().
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w or out); WALRUS_EINDEX (index 0, below the first or above the last);
 *   WALRUS_ECHECKSUM (the record fails its CRC: file and offset in
 *   walrus_errmsg); WALRUS_ECORRUPT (the record or the segment's index is
 *   malformed); WALRUS_ENOSEGMENT (a segment file has vanished);
 *   WALRUS_EIO_READ; WALRUS_EIO; WALRUS_ENOMEM.  out is untouched on
 *   failure.
 */
WALRUS_API int walrus_get(walrus_t *w, uint64_t index, walrus_entry_t *out);

/**
 * @brief Free what walrus_get() put in e, and clear e's pointers.
 * NULL, and an entry already freed, are fine.
 */
WALRUS_API void walrus_entry_free(walrus_entry_t *e);

/**
 * A borrowed entry (walrus_get_view).  entry.data points into a read-only
 * mapping of the segment file, or, when the VFS cannot map, into a private
 * copy.  The fields ending in _ are walrus's own.
 */
typedef struct walrus_view {
  walrus_entry_t entry; /**< The entry; data and tx_id are borrowed. */
  void *map_;           /**< The mapping borrowed, or NULL. */
  void *copy_;          /**< The private copy, or NULL. */
  char tx_id_[256];     /**< entry.tx_id points here when it is set. */
} walrus_view_t;

/**
 * @brief Borrow entry index without copying its payload (GetZeroCopy).
 *
 * The record's checksum, index and framing are verified before the call
 * returns.  view->entry.data points into a read-only mapping of the
 * segment and stays valid, with the same bytes, until
 * walrus_view_release(view): the mapping lives on while any view holds it,
 * even after rotation, walrus_truncate_front() or retention removed the
 * file, or walrus_close() freed the handle.  A walrus_truncate_back() that
 * would cut a file under a held view writes the kept records to a new file
 * instead, so views never see their bytes change: the writer knows of its
 * own views, and of any read-only handle (in any process) by the READER-*
 * file that handle holds locked (docs/FORMAT.md).  A read-only handle that
 * cannot create that file (a read-only file system) logs a warning, and its
 * views are then not protected from the writer's truncate_back.  Makes no
 * allocation once the segment is mapped.  An entry of a compressed unit
 * (cfg.compression) is the exception: its bytes exist only decompressed,
 * so view->entry.data points into memory the view owns (allocated with
 * the handle's allocator, its unit decompressed for the call), valid and
 * unchanged until walrus_view_release(view), which frees it.  Entries
 * stored plain stay zero-copy.  Release every view; a view is not thread-safe,
 * but views of one handle may be taken and released on any threads.
 * @return as walrus_get(); view is untouched on failure.
 */
WALRUS_API int walrus_get_view(walrus_t *w, uint64_t index,
                               walrus_view_t *view);

/**
 * @brief End a borrow made by walrus_get_view() or walrus_get_range_view().
 * NULL, and a view already released, are fine.
 */
WALRUS_API void walrus_view_release(walrus_view_t *view);

/**
 * @brief Read entries start..end (both included) into out (GetRange),
 * bounded in count and bytes.
 *
 * Reads in index order and stops at end (clamped to the last index), after
 * max_count entries, or before the entry that would take the payload bytes
 * read past max_bytes; the first entry is always read, whatever its size,
 * so every call makes progress.  Continue from out[*n - 1].index + 1.
 * Every entry is the caller's, as from walrus_get(); free each with
 * walrus_entry_free().
 * @param[in]  max_count size of out, at least 1.
 * @param[in]  max_bytes payload bytes to read at most (0: no bound).
 * @param[out] n         entries read; 0 on failure.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w, out or n, max_count 0, end
 *   below start); WALRUS_EINDEX (start outside first..last); any error of
 *   walrus_get() (the entries read before it are freed).
 */
WALRUS_API int walrus_get_range(walrus_t *w, uint64_t start, uint64_t end,
                                size_t max_count, size_t max_bytes,
                                walrus_entry_t *out, size_t *n);

/**
 * @brief walrus_get_range() into borrowed views (GetRangeZeroCopy).
 * Release each view with walrus_view_release().
 * @return as walrus_get_range().
 */
WALRUS_API int walrus_get_range_view(walrus_t *w, uint64_t start,
                                     uint64_t end, size_t max_count,
                                     size_t max_bytes, walrus_view_t *out,
                                     size_t *n);

/**
 * @brief Read the entries named in index[0..n-1] into out[0..n-1]: a
 * batched walrus_get() for reads at scattered indexes (MultiGet).
 *
 * Indexes may come in any order and repeat.  Sixteen at a time, walrus
 * finds every entry before it reads any and, reading through mappings
 * (cfg.zero_copy), asks for their memory at once, so the cache misses of a
 * batch overlap instead of following one another: random reads of a hot
 * log run two to three times faster than one walrus_get() each
 * (docs/BENCHMARKS.md).  Every entry is checked as by walrus_get() and is
 * the caller's; free each with walrus_entry_free().  The read lock is
 * taken once per sixteen entries, so a long batch never holds off appends.
 * Those sixteen may lie in sixteen segments, opened together: the cache
 * can hold that many more than cfg.cached_segments until they are done.
 * All or nothing: on failure no entry is left to free.
 * @param[in] n entries to read; 0 reads none and succeeds.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w, or NULL index or out with n
 *   above 0); any error of walrus_get() for the first entry that fails,
 *   named in walrus_errmsg.
 */
WALRUS_API int walrus_get_many(walrus_t *w, const uint64_t *index, size_t n,
                               walrus_entry_t *out);

/**
 * @brief walrus_get_many() into borrowed views, as from walrus_get_view(),
 * whatever cfg.zero_copy says.  Allocates nothing once the segments are
 * mapped.  Release each view with walrus_view_release().
 * @return as walrus_get_many().
 */
WALRUS_API int walrus_get_many_view(walrus_t *w, const uint64_t *index,
                                    size_t n, walrus_view_t *out);

/** walrus_wait() and follow iterators: no time limit. */
#define WALRUS_WAIT_FOREVER UINT32_MAX

/**
 * @brief The last durable index: every entry up to it has been made
 * durable (fdatasync) by this handle, or was found by walrus_open() or
 * walrus_refresh().  0 when none is.
 */
WALRUS_API uint64_t walrus_durable_index(walrus_t *w);

/**
 * @brief Block until entry index is durable, or timeout_ms passes.
 *
 * On a writable handle it sleeps until a sync covers index (under
 * SYNC_ALWAYS as soon as the append returns, under SYNC_INTERVAL at the
 * next interval, under SYNC_NONE at the next walrus_sync()).  It never
 * takes the writer's lock and never delays an append.  On a read-only
 * handle it calls walrus_refresh() until the writer, in this or another
 * process, has made index durable.  Between calls it sleeps until the
 * writer's next sync wakes it (on Linux, through the POSIX VFS; about
 * 0.05 ms), or for 1 ms doubling while nothing changes up to
 * follow_poll_ms, whichever comes first.
 * @param[in] timeout_ms 0 checks without sleeping; WALRUS_WAIT_FOREVER
 *   waits without limit.
 * @return WALRUS_OK (index is durable); WALRUS_ETIMEDOUT; WALRUS_EINVAL
 *   (NULL w, index 0); WALRUS_EPOISONED (an I/O failure means it never
 *   will be); any error of walrus_refresh().
 */
WALRUS_API int walrus_wait(walrus_t *w, uint64_t index, uint32_t timeout_ms);

/**
 * @brief Read-only handle: bring in the entries the writer has made
 * durable since the open or the last refresh.
 *
 * The writer publishes how far its log is durable in the file DURABLE of
 * the log directory (docs/FORMAT.md), by a store into a mapping, after
 * every sync.  refresh reads it, reads the new records (verifying each
 * checksum) from the tail and from any segment created since, and applies
 * a walrus_truncate_front() by moving the first index.  Entries are never
 * shown before the writer made them durable.  On a writable handle it does
 * nothing.
 * @return WALRUS_OK (also when nothing is new, or no writer publishes);
 *   WALRUS_ESTALE (the writer truncated the log back or reset it since
 *   this handle read it, or was truncating it back when the handle was
 *   opened: entries it shows may be gone; reopen);
 *   WALRUS_ECORRUPT, WALRUS_ECHECKSUM (a durable record is damaged);
 *   WALRUS_EIO_READ; WALRUS_EIO; WALRUS_ENOMEM; WALRUS_EINVAL.
 */
WALRUS_API int walrus_refresh(walrus_t *w);

/** @brief The first index in the log; 0 when the log is empty or w NULL. */
WALRUS_API uint64_t walrus_first_index(walrus_t *w);

/** @brief The last index in the log; 0 when the log is empty or w NULL. */
WALRUS_API uint64_t walrus_last_index(walrus_t *w);

/**
 * @brief The index the next append will get (last + 1, or the index given
 * to walrus_reset()); 0 when w is NULL.
 */
WALRUS_API uint64_t walrus_next_index(walrus_t *w);

/**
 * @brief Make everything written so far durable (fdatasync).
 * @return WALRUS_OK; WALRUS_EINVAL; WALRUS_EPOISONED;
 *   WALRUS_EIO_FSYNC, and WALRUS_EIO_WRITE or WALRUS_ENOSPC (writing the
 *   sync mark after the synced entries failed); the handle is poisoned
 *   afterwards.  On a read-only handle it does nothing and returns
 *   WALRUS_OK.
 */
WALRUS_API int walrus_sync(walrus_t *w);

/**
 * @brief Remove every entry after last_kept (the Go library's Truncate).
 *
 * Crash-safe: after a crash at any point the log holds either all entries
 * it held before or exactly those up to last_kept.  The next append gets
 * last_kept + 1.  last_kept == first - 1 empties the log.  last_kept may
 * fall inside a batch or a committed transaction (a Raft conflict): the
 * entries up to it stay, and the rest of that unit goes.
 * @return WALRUS_OK; WALRUS_EINVAL; WALRUS_EREADONLY;
 *   WALRUS_EPOISONED; WALRUS_EINDEX (last_kept below first - 1 or above
 *   last); WALRUS_EIO_WRITE, WALRUS_EIO_FSYNC, WALRUS_ENOSPC, WALRUS_EIO
 *   (the handle is poisoned afterwards, except as follows); WALRUS_ENOMEM,
 *   WALRUS_EIO_READ, WALRUS_EIO, WALRUS_ECHECKSUM, WALRUS_ECORRUPT,
 *   WALRUS_ENOSEGMENT from loading or opening the segment to cut, before
 *   anything changed: the log is as it was and the handle usable.
 */
WALRUS_API int walrus_truncate_back(walrus_t *w, uint64_t last_kept);

/**
 * @brief Remove every entry before first_kept (after a checkpoint).
 *
 * The new first index is recorded durably before any file is removed;
 * whole segments below it are then deleted.  A crash at any point leaves
 * the old or the new first index.  first_kept == last + 1 empties the log
 * while keeping the next index.
 * @return as walrus_truncate_back(); WALRUS_EINDEX when first_kept is
 *   below the first index or above last + 1.
 */
WALRUS_API int walrus_truncate_front(walrus_t *w, uint64_t first_kept);

/**
 * @brief Empty the log; the next append gets next_index.
 *
 * Crash-safe: a crash leaves either the old log or the empty one.  Used
 * by Raft after installing a snapshot.
 * @return WALRUS_OK; WALRUS_EINVAL (next_index 0 or above
 *   WALRUS_INDEX_MAX, NULL w); WALRUS_EREADONLY; WALRUS_EPOISONED;
 *   WALRUS_EBUSY (iterators are open);
 *   WALRUS_EIO_WRITE, WALRUS_EIO_FSYNC, WALRUS_ENOSPC, WALRUS_EIO (the
 *   handle is poisoned afterwards); WALRUS_ENOMEM.
 */
WALRUS_API int walrus_reset(walrus_t *w, uint64_t next_index);

/**
 * @brief Open an iterator positioned at start.
 *
 * start == 0 means the first index.  The iterator reads the entries that
 * exist when each walrus_iter_next() is called, so entries appended later
 * are seen too, and across segment boundaries and rotation.  While it is
 * open, retention (max_segments) removes nothing at or after its position.
 * With cfg.zero_copy it reads through the segments' read-only mappings,
 * taking no lock between the records that were published when it last
 * looked; else with pread through a read-ahead window.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w or it); WALRUS_EINDEX (start below the first index or above last + 1);
 *   WALRUS_ENOMEM.
 */
WALRUS_API int walrus_iter_open(walrus_t *w, uint64_t start,
                                walrus_iter_t **it);

/**
 * @brief Read the next entry into out, verifying its checksum.
 *
 * out's data and tx_id are borrowed: valid until the next call on it or
 * walrus_iter_close(), whatever other threads do to the log meanwhile.
 * After walrus_truncate_back() cut below the iterator's position, it goes
 * on at the new last index + 1 (and returns the entries appended there
 * later); after walrus_truncate_front() passed it, it returns
 * WALRUS_EINDEX.  Steps make no allocation once the iterator's segment is
 * mapped (or its window allocated).
 * @return WALRUS_OK; WALRUS_DONE (no entry after the last; a later call
 *   may return entries appended since); WALRUS_EINVAL; WALRUS_EINDEX (walrus_truncate_front() or walrus_reset() removed the
 *   iterator's next entry); WALRUS_ECHECKSUM; WALRUS_ECORRUPT;
 *   WALRUS_ENOSEGMENT; WALRUS_EIO_READ; WALRUS_ENOMEM.
 */
WALRUS_API int walrus_iter_next(walrus_iter_t *it, walrus_entry_t *out);

/**
 * @brief Open an iterator in follow mode at start (0: the first index).
 *
 * Its walrus_iter_next() returns only durable entries and, at the end of
 * the log, waits up to timeout_ms for the next one to become durable
 * (walrus_wait()) instead of returning WALRUS_DONE: the building block of
 * replication and tail -f.  On a read-only handle it follows a writer in
 * another process.
 * @return as walrus_iter_open(); its walrus_iter_next() also returns
 *   WALRUS_ETIMEDOUT (nothing new within timeout_ms; call again),
 *   WALRUS_EPOISONED and any error of walrus_refresh(), never WALRUS_DONE.
 */
WALRUS_API int walrus_iter_open_follow(walrus_t *w, uint64_t start,
                                       uint32_t timeout_ms, walrus_iter_t **it);

/** @brief Close an iterator.  NULL is fine. */
WALRUS_API void walrus_iter_close(walrus_iter_t *it);

/**
 * @brief Begin a transaction (the Go library's BeginTransaction).
 *
 * Its id comes from the kernel's random source.  Until committed, the
 * transaction lives in memory only; nothing of it reaches the disk, and
 * close, rollback or expiry discards it.
 * @param[in]  timeout_ms after this long it expires; 0 means the config's
 *   tx_timeout_ms.
 * @param[out] id the new id.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w or id); WALRUS_EREADONLY;
 *   WALRUS_EIO (the random source failed); WALRUS_ENOMEM.
 */
WALRUS_API int walrus_tx_begin(walrus_t *w, uint32_t timeout_ms,
                               walrus_txid_t *id);

/**
 * @brief Add a copy of e to a pending transaction (AddToTransaction).
 *
 * e's buffers are free again when the call returns.  The stored entry
 * carries the transaction's id (e->tx_id must be NULL or that id).
 * @return WALRUS_OK; WALRUS_EINVAL (NULL argument, a malformed id, data
 *   NULL with len > 0, e->tx_id naming another transaction);
 *   WALRUS_ETOOLARGE (len plus the id over max_entry_bytes);
 *   WALRUS_ETXNOTFOUND (unknown id); WALRUS_ETXNOTPENDING (committed,
 *   aborted, or being committed); WALRUS_ETXEXPIRED (past its timeout:
 *   it is aborted now); WALRUS_ETXTOOLARGE (tx_max_entries reached, or
 *   tx_max_pending_bytes would be exceeded); WALRUS_ENOMEM.
 */
WALRUS_API int walrus_tx_add(walrus_t *w, const walrus_txid_t *id,
                             const walrus_entry_t *e);

/**
 * @brief Write a pending transaction to the log, atomically
 * (CommitTransaction).
 *
 * Its entries get contiguous indexes in the order they were added; after
 * any crash the log holds all of them or none.  Durable on return under
 * SYNC_ALWAYS.  Commit order is index order.  A transaction with no
 * entries commits with *count 0.
 * @param[out] first_index if not NULL, the index of the first entry.
 * @param[out] count if not NULL, the number of entries written.
 * @return WALRUS_OK; WALRUS_EINVAL; WALRUS_ETXNOTFOUND;
 *   WALRUS_ETXNOTPENDING; WALRUS_ETXEXPIRED; WALRUS_ENOMEM and
 *   WALRUS_ETOOLARGE (nothing written; the transaction stays pending and
 *   the commit may be retried); any error of walrus_write_batch() from
 *   I/O or a poisoned handle (the transaction is aborted; walrus cuts
 *   what the commit wrote, so none of it is in the log after reopening,
 *   unless the file system refuses that cut too: then, if every record
 *   reached the file, the reopened log may hold the whole transaction,
 *   never a part of it).
 */
WALRUS_API int walrus_tx_commit(walrus_t *w, const walrus_txid_t *id,
                                uint64_t *first_index, size_t *count);

/**
 * @brief Commit n pending transactions as one durable step.
 *
 * Each transaction is written as its own atomic unit, in the order given,
 * and all of them are made durable by one fdatasync (under SYNC_ALWAYS;
 * other writers may share it): a crash leaves a prefix of the n, each
 * whole or absent, never a part of one.  Equivalent to n calls of
 * walrus_tx_commit() but for the one wait.
 * @param[in]  ids n distinct pending transaction ids.
 * @param[out] first_index, count if not NULL, arrays of n: each
 *   transaction's first index (0 if not committed) and entry count.
 * @return WALRUS_OK when all n committed.  WALRUS_EINVAL (NULL w or ids, n
 *   0), WALRUS_ETXNOTFOUND, WALRUS_ETXNOTPENDING (also an id given twice),
 *   WALRUS_ETXEXPIRED, WALRUS_ETOOLARGE: nothing written, all stay
 *   pending, first_index and count untouched.  WALRUS_ENOMEM: those written
 * before it are committed, the rest stay pending.  An I/O error (the handle is
 * poisoned): those a rotation had already made durable are committed, the rest
 * aborted; walrus_tx_state() tells each.
 */
WALRUS_API int walrus_tx_commit_many(walrus_t *w, const walrus_txid_t *ids,
                                     size_t n, uint64_t *first_index,
                                     size_t *count);

/**
 * @brief Discard a pending transaction (RollbackTransaction).
 * @return WALRUS_OK; WALRUS_EINVAL; WALRUS_ETXNOTFOUND;
 *   WALRUS_ETXNOTPENDING; WALRUS_ETXEXPIRED.
 */
WALRUS_API int walrus_tx_rollback(walrus_t *w, const walrus_txid_t *id);

/**
 * @brief Where a transaction stands (GetTransactionState).
 *
 * A pending transaction past its timeout is aborted first.  Finished
 * transactions are remembered (the last 4096), older ones are not found.
 * @return WALRUS_OK; WALRUS_EINVAL; WALRUS_ETXNOTFOUND.
 */
WALRUS_API int walrus_tx_state(walrus_t *w, const walrus_txid_t *id,
                               walrus_tx_state_t *state);

/**
 * @brief Abort every expired pending transaction
 * (CleanupExpiredTransactions).
 * @return how many were aborted (>= 0), or WALRUS_EINVAL for NULL w.
 */
WALRUS_API int walrus_tx_cleanup_expired(walrus_t *w);

/**
 * @brief The number of pending transactions (GetActiveTransactionCount).
 * @return the count (>= 0), or WALRUS_EINVAL for NULL w.
 */
WALRUS_API int walrus_tx_active_count(walrus_t *w);

/** Counters of a handle since it was opened; see walrus_stats(). */
typedef struct walrus_stats {
  uint64_t appends;          /**< Successful write calls: appends, batches,
                                  transaction commits. */
  uint64_t entries;          /**< Entries those calls wrote. */
  uint64_t bytes;            /**< Record bytes written (headers included). */
  uint64_t fsyncs;           /**< fdatasync calls issued (segments, META). */
  double entries_per_fsync;  /**< entries / fsyncs (0 without fsyncs). */
  uint64_t fsync_p50_ns;     /**< Median fdatasync latency. */
  uint64_t fsync_p99_ns;     /**< 99th percentile fdatasync latency. */
  uint64_t fsync_p999_ns;    /**< 99.9th percentile fdatasync latency. */
  uint64_t fsync_max_ns;     /**< Slowest fdatasync. */
  double seconds;            /**< Since walrus_open(). */
  double bytes_per_second;   /**< bytes / seconds. */
} walrus_stats_t;

/**
 * @brief Read the handle's counters.  Percentiles come from a histogram
 * with 8 buckets per power of two, so they are within 1/8 (12.5%) of the
 * true value.  Cheap; safe from any thread.
 * @return WALRUS_OK; WALRUS_EINVAL (NULL w or out).
 */
WALRUS_API int walrus_stats(walrus_t *w, walrus_stats_t *out);

/**
 * @brief The last error message of this handle: which field, file, offset
 * or errno the most recent failed call concerned ("" when none).  With
 * several threads it is the message of whichever call failed last.
 * "no handle" when w is NULL.
 */
WALRUS_API const char *walrus_errmsg(walrus_t *w);

/**
 * @brief Whether the handle can still write, and if not why (the Go
 * library's status).
 *
 * A write or fsync that fails poisons the handle (fail-stop): every later
 * write returns WALRUS_EPOISONED until the log is reopened.  This says
 * whether that happened, with the first failure's code and message, which
 * later errors do not overwrite.
 * @param[out] why if not NULL, receives the message of the failure that
 *   poisoned the handle ("" when healthy), cut to len bytes.
 * @return WALRUS_OK (healthy, or a read-only handle); the code of the
 *   failure that poisoned it (WALRUS_EIO_FSYNC, WALRUS_EIO_WRITE,
 *   WALRUS_ENOSPC, ...); WALRUS_EINVAL for NULL w.
 */
WALRUS_API int walrus_health(walrus_t *w, char *why, size_t len);

/** @brief The OS errno behind the handle's last I/O error, or 0 (also
 *  when w is NULL). */
WALRUS_API int walrus_last_errno(walrus_t *w);

/** @brief Static text for a code; never NULL, "unknown error" if unknown. */
WALRUS_API const char *walrus_strerror(int code);

/** @brief The code's name ("WALRUS_ECORRUPT"); never NULL. */
WALRUS_API const char *walrus_errname(int code);

/** @brief WALRUS_VERSION_NUMBER of the library actually linked. */
WALRUS_API unsigned walrus_version(void);

/** @brief The linked library's version as "major.minor.patch". */
WALRUS_API const char *walrus_version_string(void);

/**
 * @section inspect Inspecting a log
 *
 * walrus_inspect(), walrus_verify() and walrus_repair_plan() read a log
 * directory without opening it: they take no lock, create, change and
 * sync nothing, and work beside a live writer (what they report is then
 * a snapshot that may already be behind).  They tell what walrus_open()
 * would find, and damage it would refuse, instead of failing on it.
 */

/** What walrus_inspect() makes of a segment file. */
typedef enum walrus_segment_state {
  WALRUS_SEGMENT_SEALED = 0, /**< Sealed: index record and trailer. */
  WALRUS_SEGMENT_TAIL = 1,   /**< The unsealed last segment. */
  WALRUS_SEGMENT_VOID = 2,   /**< Holds no entry of the log: below its
                                  first index, after an unfinished
                                  truncate_back, or of the log before a
                                  reset.  A writable open removes it. */
  WALRUS_SEGMENT_DAMAGED = 3 /**< A bad header, a foreign log id, not
                                  sealed though not last, or a gap
                                  before it. */
} walrus_segment_state_t;

/** One segment file (walrus_inspect_t.segments). */
typedef struct walrus_segment_info {
  char name[32];                /**< File name in the log directory. */
  uint64_t first_index;         /**< Index of its first entry. */
  uint64_t count;               /**< Entries: the trailer's count when
                                     sealed, the whole units scanned in a
                                     tail; 0 when damaged or void. */
  uint64_t bytes;               /**< File size. */
  uint64_t end;                 /**< Offset after its last entry's
                                     record. */
  int64_t created_ns;           /**< The header's creation time (0 when
                                     the header is bad). */
  walrus_segment_state_t state; /**< See walrus_segment_state_t. */
  unsigned version;             /**< The header's segment format version:
                                     1, or 2 for a segment that may hold
                                     compressed units (docs/FORMAT.md
                                     §5.6); 0 when the header is bad. */
} walrus_segment_info_t;

/** The tail as walrus_inspect() finds it. */
typedef enum walrus_tail_state {
  WALRUS_TAIL_CLEAN = 0,  /**< Ends after a whole unit (or in zeros of a
                               preallocated tail), or the log is sealed or
                               empty. */
  WALRUS_TAIL_TORN = 1,   /**< Ends in a torn unit: a writable open with
                               WALRUS_RECOVER_TAIL cuts tail_cut_bytes
                               from tail_cut_offset. */
  WALRUS_TAIL_DAMAGED = 2 /**< Damage followed by valid records: open
                               refuses it with WALRUS_ECORRUPT. */
} walrus_tail_state_t;

/** A log directory as walrus_inspect() found it.  Free the segment list
 *  with walrus_inspect_free(). */
typedef struct walrus_inspect {
  uint64_t log_id;                 /**< META's log id. */
  uint32_t format_version;         /**< The on-disk format version. */
  uint64_t first_index;            /**< First entry; 0 when empty. */
  uint64_t last_index;             /**< Last entry; 0 when empty. */
  uint64_t next_index;             /**< Index the next append gets. */
  uint64_t durable_next;           /**< From DURABLE: the writer has made
                                        every entry below it durable; 0
                                        when no writer of this log
                                        published one. */
  int truncating;                  /**< META records an unfinished
                                        truncate_back to trunc_last. */
  uint64_t trunc_last;             /**< With truncating: the last kept
                                        entry. */
  size_t nsegments;                /**< Entries of segments. */
  walrus_segment_info_t *segments; /**< In index order; owned by the
                                        report. */
  uint64_t total_bytes;            /**< Sum of the segment files' sizes. */
  walrus_tail_state_t tail_state;  /**< See walrus_tail_state_t. */
  uint64_t tail_cut_offset;        /**< TORN: where open would cut. */
  uint64_t tail_cut_bytes;         /**< TORN: how many bytes it would. */
  int damaged;                     /**< Open would refuse the log
                                        (WALRUS_ECORRUPT): a damaged
                                        segment, or DAMAGED tail. */
  char problem[256];               /**< The first damage, or why the tail
                                        is torn; "" when clean. */
} walrus_inspect_t;

/**
 * @brief Describe the log in dir: META, every segment's range, size and
 * state, how far a writer says it is durable, and what an open would do
 * with the tail.
 *
 * Reads META, each segment's header and trailer, and the records of the
 * unsealed tail only (as walrus_open() does); the records of sealed
 * segments are checked by walrus_verify().  Takes no lock and changes
 * nothing.
 * @param[in]  cfg NULL, or options whose vfs and allocator are used.
 * @param[out] out the report; on failure it is left untouched.
 * @return WALRUS_OK (also for a damaged log, a damaged or missing META
 *   included: see out->damaged and out->problem); WALRUS_EINVAL (NULL
 *   dir or out); WALRUS_EIO (dir missing, not a directory, unreadable, or
 *   holding no walrus log: no META and no segment); WALRUS_EFORMAT (META
 *   of an unknown version); WALRUS_EUNSAFE (META is a link or not a
 *   regular file); WALRUS_EIO_READ; WALRUS_ENOMEM.  The message is in
 *   errbuf when given.
 */
WALRUS_API int walrus_inspect(const char *dir, const walrus_config_t *cfg,
                              walrus_inspect_t *out, char *errbuf,
                              size_t errlen);

/** @brief Free what walrus_inspect() put in info.  NULL is fine. */
WALRUS_API void walrus_inspect_free(walrus_inspect_t *info);

/** The kind of a walrus_verify() finding. */
typedef enum walrus_finding_kind {
  WALRUS_FINDING_TORN = 1,  /**< A torn tail: an open cuts it. */
  WALRUS_FINDING_DAMAGE = 2 /**< Damage: an open refuses the log (or, for
                                 a sealed segment's records, a read of
                                 them fails); walrus repair salvages it. */
} walrus_finding_kind_t;

/** One finding of walrus_verify(); borrowed for the callback's call. */
typedef struct walrus_finding {
  walrus_finding_kind_t kind; /**< Torn tail or damage. */
  const char *file;           /**< File name in the log directory. */
  uint64_t offset;            /**< Byte offset in that file. */
  const char *message;        /**< What is wrong there. */
} walrus_finding_t;

/** Called for every finding; return 0 to go on, anything else to stop. */
typedef int (*walrus_finding_fn)(void *ud, const walrus_finding_t *f);
/** Called as verification proceeds: bytes of segment files checked so
 *  far, of total. */
typedef void (*walrus_progress_fn)(void *ud, uint64_t done, uint64_t total);

/** What walrus_verify() checked and found. */
typedef struct walrus_verify_result {
  uint64_t segments; /**< Segment files checked. */
  uint64_t entries;  /**< Entry records whose checksum matched. */
  uint64_t bytes;    /**< Bytes of segment files read. */
  uint64_t torn;     /**< Torn-tail findings (0 or 1). */
  uint64_t damage;   /**< Damage findings. */
} walrus_verify_result_t;

/**
 * @brief Check every checksum of the log in dir: META, every segment's
 * header, every record, index record and trailer.
 *
 * Each finding names the file and byte offset; a torn tail (a unit a
 * crash cut short, which the next open cuts) is told from damage before
 * it by the rule walrus_open() uses (docs/FORMAT.md 8.2).  In each
 * segment the scan stops at the first damage, reported once.  A build
 * with zstd also decompresses each compressed unit and checks its records
 * against its frame (a unit a read would refuse, its checksum good, is
 * damage at its first record; the scan goes on).  Reads each file once,
 * in order; takes no lock and changes nothing.
 * @param[in] on_finding NULL, or called for every finding.
 * @param[in] on_progress NULL, or called after each segment.
 * @param[out] out NULL, or the counts.
 * @return WALRUS_OK when the log could be read to the end, damaged or not
 *   (out->damage, out->torn say); errors as walrus_inspect().
 */
WALRUS_API int walrus_verify(const char *dir, const walrus_config_t *cfg,
                             walrus_finding_fn on_finding,
                             walrus_progress_fn on_progress, void *ud,
                             walrus_verify_result_t *out, char *errbuf,
                             size_t errlen);

/** What one step of a salvage does (walrus_repair_step_t). */
typedef enum walrus_repair_kind {
  WALRUS_REPAIR_CUT = 1,   /**< Copy bytes [offset, offset + bytes) of
                                file to dest, then cut the file there. */
  WALRUS_REPAIR_MOVE = 2,  /**< Rename file to dest, in salvage/. */
  WALRUS_REPAIR_REMOVE = 3 /**< Remove file: a *.tmp leftover or a void
                                segment, which every writable open
                                removes. */
} walrus_repair_kind_t;

/** One step of walrus_repair_plan_t. */
typedef struct walrus_repair_step {
  walrus_repair_kind_t kind; /**< Cut, move or remove. */
  char file[64];             /**< The file, in the log directory. */
  char dest[96];             /**< CUT: the side file; MOVE: the new name,
                                  salvage/<file>.<ns>, where <ns> is the
                                  time of the move; REMOVE: "". */
  uint64_t offset;           /**< CUT: where; else 0. */
  uint64_t bytes;            /**< Bytes cut, moved or removed. */
  uint64_t entries;          /**< Entries of the log it takes out. */
} walrus_repair_step_t;

/** What walrus_open() with WALRUS_RECOVER_SALVAGE would do. */
typedef struct walrus_repair_plan {
  size_t nsteps;               /**< Entries of steps; 0: nothing to do. */
  walrus_repair_step_t *steps; /**< In the order salvage takes them. */
  uint64_t last_index;         /**< The log's last index after it. */
  uint64_t entries_removed;    /**< Entries taken out of the log. */
} walrus_repair_plan_t;

/**
 * @brief Say exactly what a writable walrus_open() with
 * WALRUS_RECOVER_SALVAGE would cut, move aside and remove in dir, without
 * doing it: the dry run of a repair.
 *
 * Reads the whole log, as walrus_verify() does.  Nothing salvage removes
 * is lost: a cut's bytes go to a side file first, a moved segment keeps
 * its bytes; only files the format counts as void are removed.  A writer
 * could change the log between the plan and a repair; the repair's own
 * log messages (WALRUS_LOG_WARN) tell what it did.
 * @param[out] out the plan; free it with walrus_repair_plan_free().
 * @return as walrus_verify(); also WALRUS_ECORRUPT (META is damaged or
 *   missing: salvage cannot run) and the open error of a segment salvage
 *   could not get past (WALRUS_EUNSAFE, WALRUS_EIO).
 */
WALRUS_API int walrus_repair_plan(const char *dir, const walrus_config_t *cfg,
                                  walrus_repair_plan_t *out, char *errbuf,
                                  size_t errlen);

/** @brief Free what walrus_repair_plan() put in plan.  NULL is fine. */
WALRUS_API void walrus_repair_plan_free(walrus_repair_plan_t *plan);

#ifdef __cplusplus
}
#endif

#endif /* WALRUS_H */
