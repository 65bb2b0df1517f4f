/*
 * walrus_raft.h: libwalrus-raft, a walrus log as the durable store of
 * canonical's C Raft library (raft 0.15, the v0 API that cowsql/raft
 * continues).
 *
 * walrus_raft_init() fills a struct raft_io whose storage half is walrus
 * and whose network and time half is an inner raft_uv instance with its
 * TCP transport.  Give it to raft_init() as any raft_io:
 *
 *   struct raft_io io;
 *   walrus_raft_options_t opt;
 *   walrus_raft_options_default(&opt);
 *   walrus_raft_init(&io, loop, "/var/lib/node1", &opt);
 *   raft_init(&raft, &io, &fsm, 1, "127.0.0.1:9001");
 *   ...
 *   raft_close(&raft, close_cb);      // then, once close_cb has run:
 *   walrus_raft_close(&io);
 *
 * @section layout The node directory
 *
 *   DIR/log/       the walrus log: one raft entry is one walrus entry,
 *                  index for index; the entry's type field holds raft's
 *                  RAFT_COMMAND (1), RAFT_BARRIER (2) or RAFT_CHANGE (3),
 *                  its term field the raft term.  `walrus stat DIR/log`
 *                  and the other read-only tools work beside a live node.
 *   DIR/state      current term and vote (32 bytes, docs/REPLICATION.md),
 *                  replaced atomically: written to state.tmp, fdatasync'ed,
 *                  renamed over state, directory fsync'ed.
 *   DIR/snapshot   the last snapshot: index, term, configuration in walrus's
 *                  own encoding, and the data, with CRC32C checksums;
 *                  replaced the same way.
 *   DIR/uv/        the inner raft_uv's directory.  It probes the file
 *                  system there at init and keeps its (unused) metadata
 *                  files; no entry is ever written to it.
 *
 * @section durability Durability and threads
 *
 *  - set_term and set_vote return only once the new state file is durable.
 *  - An append's callback runs after its entries are fdatasync'ed, never
 *    from inside the append call.  Appends go, in order, to one writer
 *    thread, which writes everything queued since its last write as one
 *    walrus_write_batch() (one fdatasync: group commit).  Callbacks come
 *    back on the loop thread, in order, through a uv_async_t.
 *  - truncate waits for queued appends to be written, then cuts the log
 *    (walrus_truncate_back) before it returns.
 *  - snapshot_put runs on the writer thread after the appends queued before
 *    it: it stores the snapshot file, then with trailing > 0 drops the
 *    entries up to index - trailing (walrus_truncate_front), and with
 *    trailing == 0 (a snapshot installed from the leader) empties the log,
 *    whose next index becomes index + 1 (walrus_reset).
 *  - Fail-stop: the first failed write, fsync, truncation or state update
 *    stops the node's storage for good.  Every later storage call and every
 *    send returns RAFT_IOERR (RAFT_NOSPACE for a full disk) and nothing is
 *    acknowledged; raft turns such an error into RAFT_UNAVAILABLE at its
 *    next tick or message.  walrus_raft_failed() tells the application,
 *    which should close the node and restart it once the disk is fixed.
 *
 * Entry lengths: raft_uv's TCP receiver places each entry of an
 * AppendEntries message at an 8-byte boundary while its sender sends them
 * unpadded, so an entry whose length is not a multiple of 8 would make a
 * follower read past the message.  append refuses such entries with
 * RAFT_INVALID before writing anything; pad commands (raft's own barrier
 * and configuration entries are padded).

 * Every function here runs on the loop thread, like the rest of raft.
 * The TCP transport writes to sockets whose peer may be gone: a process
 * using it must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)), which this
 * library does not do for it.
 *
 * @section api The raft API this library uses
 *
 * Kept short so that moving to another raft release or to cowsql/raft is
 * a small change: raft_uv_init, raft_uv_close, raft_uv_tcp_init,
 * raft_uv_tcp_close, raft_malloc, raft_calloc, raft_realloc, raft_free,
 * raft_configuration_init, raft_configuration_add, raft_configuration_close,
 * raft_configuration_encode, raft_strerror; the
 * struct raft_io, raft_entry, raft_snapshot and raft_configuration
 * layouts; the error codes RAFT_IOERR, RAFT_NOSPACE, RAFT_NOMEM,
 * RAFT_CORRUPT, RAFT_CANTBOOTSTRAP, RAFT_INVALID, RAFT_BUSY, RAFT_TOOBIG,
 * RAFT_NOTFOUND, RAFT_CANCELED; and from libuv: uv_async_init,
 * uv_async_send, uv_close.
 */
#ifndef WALRUS_RAFT_H
#define WALRUS_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "walrus.h"

#ifdef __cplusplus
extern "C" {
#endif

struct raft_io;
struct uv_loop_s;

/** Options for walrus_raft_init(). */
typedef struct walrus_raft_options {
  const walrus_config_t *log; /**< Options of the walrus log (DIR/log), or
                                   NULL for walrus_config_default().  sync
                                   must be WALRUS_SYNC_ALWAYS; its vfs is
                                   also used for DIR/state and
                                   DIR/snapshot. */
  uint32_t max_batch_entries; /**< Most raft entries the writer thread
                                   puts in one walrus_write_batch(),
                                   1..65536.  Default 4096. */
  uint64_t max_batch_bytes;   /**< Most payload bytes in one batch, past
                                   the first entry; 4 KiB..1 GiB.  Default
                                   8 MiB. */
} walrus_raft_options_t;

/** @brief Fill opt with the defaults listed on each field. */
WALRUS_API void walrus_raft_options_default(walrus_raft_options_t *opt);

/**
 * @brief Fill io with a raft_io that keeps its log, term, vote and
 * snapshots in the node directory dir, and talks TCP on loop.
 *
 * Nothing is opened or created yet: raft_init() calls io->init, which
 * creates dir if missing, opens the log and the inner raft_uv.  The
 * adapter's state is in io->impl; raft sets io->data.
 * @param[out] io  the raft_io to fill (zeroed first).
 * @param[in]  loop the libuv loop raft runs on.
 * @param[in]  dir  the node directory; copied.
 * @param[in]  opt  options, or NULL for the defaults.
 * @return 0; RAFT_INVALID (NULL io, loop or dir, an option out of range,
 *   a sync policy other than ALWAYS: io->errmsg says which);
 *   RAFT_NOMEM; RAFT_NAMETOOLONG (dir too long for raft_uv).
 */
WALRUS_API int walrus_raft_init(struct raft_io *io, struct uv_loop_s *loop,
                                const char *dir,
                                const walrus_raft_options_t *opt);

/**
 * @brief Free what walrus_raft_init() and io->init allocated, and close
 * the log.  Call it after raft_close()'s callback ran, or when raft_init()
 * failed.  NULL or an io never initialized by walrus_raft_init() is fine.
 */
WALRUS_API void walrus_raft_close(struct raft_io *io);

/**
 * @brief Whether the node's storage has stopped.
 * @return 0 while it works; else the walrus code of the failure that
 *   stopped it (WALRUS_EIO_WRITE, WALRUS_EIO_FSYNC, WALRUS_ENOSPC, ...).
 *   io->errmsg then describes it.
 */
WALRUS_API int walrus_raft_failed(struct raft_io *io);

/**
 * @brief The walrus log under io (for walrus_stats, walrus_last_index,
 * reads); NULL before io->init.  Do not write to it.
 */
WALRUS_API walrus_t *walrus_raft_log(struct raft_io *io);

#ifdef __cplusplus
}
#endif

#endif /* WALRUS_RAFT_H */
