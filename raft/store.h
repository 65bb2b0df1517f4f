/*
 * store.h: the files of a walrus-raft node beside its log (DIR/state and
 * DIR/snapshot), their byte layout, and the configuration encoding.
 *
 * Both files are replaced atomically through the log's VFS table: the new
 * bytes go to NAME.tmp, which is fdatasync'ed, renamed over NAME, and the
 * directory is fsync'ed, so a crash leaves the old file or the new one.
 *
 * DIR/state, 32 bytes, little-endian:
 *   0  magic "WRSTATE1"        8 bytes
 *   8  current term            u64
 *  16  voted for (0: nobody)   u64
 *  24  CRC32C of bytes 0..23   u32
 *  28  zero                    u32
 *
 * DIR/snapshot, a 56-byte header then the body:
 *   0  magic "WRSNAP01"        8 bytes
 *   8  last index              u64
 *  16  last term               u64
 *  24  configuration index     u64
 *  32  configuration bytes     u32 (C)
 *  36  zero                    u32
 *  40  data bytes              u64 (D)
 *  48  CRC32C of the body      u32
 *  52  CRC32C of bytes 0..51   u32
 *  56  configuration           C bytes
 *  56+C data                   D bytes
 *
 * Configuration (raft 0.15 has an encoder but exports no decoder, so
 * walrus keeps its own):
 *   u32 server count N, then N times: u64 id, u8 role, u16 address
 *   length L, L address bytes (no NUL).
 */
#ifndef WALRUS_RAFT_STORE_H
#define WALRUS_RAFT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "walrus.h"
#include "walrus_vfs.h"

#define WR_STATE_BYTES 32  /* Size of DIR/state. */
#define WR_SNAP_HEADER 56  /* Size of DIR/snapshot's header. */

/* CRC32C (Castagnoli) of buf, continuing from crc (0 to start). */
uint32_t wr_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Replace dir/name with buf atomically (above).  Returns WALRUS_OK or
 * the walrus code of the step that failed: WALRUS_EIO (open, rename, the
 * directory's fsync), WALRUS_EIO_WRITE, WALRUS_ENOSPC, WALRUS_EIO_FSYNC,
 * WALRUS_ENOMEM.  why (len bytes) receives a message naming the step.
 */
int wr_file_replace(const walrus_vfs_t *vfs, const char *dir,
                    const char *name, const void *buf, size_t len,
                    char *why, size_t whylen);

/*
 * Read the whole of dir/name into a malloc()ed buffer.  Returns WALRUS_OK,
 * WALRUS_DONE when the file does not exist (nothing allocated),
 * WALRUS_EIO_READ, WALRUS_EIO or WALRUS_ENOMEM.
 */
int wr_file_read(const walrus_vfs_t *vfs, const char *dir, const char *name,
                 unsigned char **buf, size_t *len, char *why, size_t whylen);

/* Encode term and vote into out (WR_STATE_BYTES). */
void wr_state_encode(unsigned char *out, uint64_t term, uint64_t vote);

/* Decode DIR/state; WALRUS_OK or WALRUS_ECORRUPT (size, magic, CRC). */
int wr_state_decode(const unsigned char *buf, size_t len, uint64_t *term,
                    uint64_t *vote);

/*
 * Encode a snapshot (header, configuration, every buffer of data) into a
 * malloc()ed buffer.  WALRUS_OK, WALRUS_ENOMEM or WALRUS_ETOOLARGE.
 */
int wr_snapshot_encode(const struct raft_snapshot *s, unsigned char **out,
                       size_t *len);

/*
 * Decode DIR/snapshot into a raft_snapshot allocated with raft_malloc,
 * whose single buffer and configuration raft frees.  Returns WALRUS_OK,
 * WALRUS_ECORRUPT (a bad magic, size, CRC or configuration; why says
 * which) or WALRUS_ENOMEM.
 */
int wr_snapshot_decode(const unsigned char *buf, size_t len,
                       struct raft_snapshot **out, char *why,
                       size_t whylen);

/* Only the header fields of DIR/snapshot: WALRUS_OK or WALRUS_ECORRUPT. */
int wr_snapshot_peek(const unsigned char *buf, size_t len, uint64_t *index,
                     uint64_t *term);

/* Bytes wr_conf_encode() writes for c. */
size_t wr_conf_size(const struct raft_configuration *c);

/* Encode c into out (wr_conf_size(c) bytes). */
void wr_conf_encode(const struct raft_configuration *c, unsigned char *out);

/*
 * Decode a configuration into c (initialized by the caller; filled with
 * raft_configuration_add).  0, RAFT_MALFORMED or RAFT_NOMEM.
 */
int wr_conf_decode(const unsigned char *buf, size_t len,
                   struct raft_configuration *c);

#endif /* WALRUS_RAFT_STORE_H */
