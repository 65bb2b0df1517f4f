/*
 * format.h: the on-disk format of a walrus log, and the pure functions that
 * encode and decode it.  Nothing here does I/O or touches a handle, so these
 * functions can be fuzzed on arbitrary bytes.  docs/FORMAT.md is the same
 * description for readers who do not read C.
 *
 * WALRUS LOG FORMAT, VERSION 1
 *
 * All integers are little-endian.  A log is a directory:
 *
 *   LOCK                       empty; flock()ed by the one writer
 *   META                       the log's identity and first index (below)
 *   META.tmp                   a META being replaced; removed at open
 *   <20-digit first index>.seg a segment, e.g. 00000000000000000001.seg
 *   <name>.seg.tmp             a segment being created; removed at open
 *   <name>.seg.salvage         bytes moved aside by salvage recovery
 *   salvage/                   segments moved aside by salvage recovery
 *
 * META (56 bytes), replaced only by write META.tmp, fdatasync, rename,
 * fsync(dir):
 *
 *   0   8  magic "WALRUSMT"
 *   8   4  version (1)
 *   12  4  flags: bit 0 = a truncate_back to trunc_last is in progress
 *   16  8  log_id: random; every segment of the log carries it
 *   24  8  prev_log_id: the log_id before the last reset, or 0
 *   32  8  first_index: entries below it are removed; for an empty log
 *          without segments it is the index the next append gets
 *   40  8  trunc_last: with flag bit 0, entries after it are void
 *   48  4  reserved, 0
 *   52  4  CRC32C of bytes 0..51
 *
 * SEGMENT FILE
 *
 *   header (64 bytes), records, and, once sealed, an index record and a
 *   trailer.  A segment is created as <name>.seg.tmp holding only its
 *   header, fdatasync()ed, renamed to <name>.seg and the directory
 *   fsync()ed, so a .seg file always starts with a complete header.
 *
 *   Header:
 *   0   8  magic "WALRUSSG"
 *   8   4  version (1)
 *   12  4  header bytes (64)
 *   16  8  log_id (as in META)
 *   24  8  first_index: the index of the segment's first record; the file
 *          name is this number in 20 decimal digits
 *   32  4  salt: random per segment; seeds every record CRC in the file
 *   36  4  reserved, 0
 *   40  8  created_ns (CLOCK_REALTIME)
 *   48 12  reserved, 0
 *   60  4  CRC32C of bytes 0..59
 *
 *   Record (starts at an offset that is a multiple of 8):
 *   0   4  crc: CRC32C of the 4 salt bytes (little-endian), then bytes
 *          4..(40 + body_len - 1) of the record
 *   4   4  body_len: txid_len + payload length
 *   8   8  index
 *   16  8  term
 *   24  8  timestamp_ns (signed)
 *   32  2  type (the caller's)
 *   34  1  flags: 0x01 FIRST (opens a unit), 0x02 LAST (closes a unit),
 *          0x04 INDEX (the segment's index record), 0x08 GROUP (the first
 *          record written after a sync), 0x10 MARK (a sync mark, below),
 *          0x20 OVERLAP (on every record of a group that began while the
 *          previous group's sync was still running; older logs have it on
 *          the GROUP record only), 0x40 ZSTD (a record of a compressed
 *          unit, below; only in a version 2 segment); bit 7 is 0
 *   35  1  txid_len (0: no transaction id)
 *   36  4  epoch: the sync group; it grows by one when an fdatasync of
 *          the log starts, so records two or more epochs below another
 *          were durable before it was written
 *   40  .  body: txid_len bytes of transaction id, then the payload
 *   .   .  zero padding to the next multiple of 8 (not covered by crc)
 *
 *   Epochs let recovery tell a torn write from damage.  The epoch grows
 *   when a sync starts (it covers what was written before).  Only the last
 *   group can be torn by a crash, in any order of its sectors, unless it
 *   began while the previous group's sync was still running (a group
 *   commit writes the next group meanwhile): then its records carry
 *   OVERLAP and the previous group can be torn too, never an older one.
 *   So damage is a torn tail when every valid record after it is of the
 *   last group, none starts a group, and the record before it is of that
 *   group or the one before; or when the valid records after it are of
 *   the last two groups, the only group start among them (if its record
 *   survived) is the last group's, a record of the last group carries
 *   OVERLAP, and the record before it is at most two groups older than
 *   the last.  Anything else, a sync mark or index
 *   record after the damage included, means synced data was damaged:
 *   corruption.
 *
 *   The last group before a clean close, or before a walrus_sync with
 *   nothing written after it, has no later record to prove it synced.  So
 *   walrus_sync, the SYNC_INTERVAL thread and close append a sync mark
 *   after a sync that made entries durable: a record with flags MARK|GROUP,
 *   an empty body, the next epoch, and index = the last entry's index.  It
 *   belongs to no unit and is not an entry; readers skip it.  Close syncs
 *   its mark; the others leave it to the next sync.  A mark that also
 *   carries LAST is a closing mark: truncate_back writes one after entry
 *   K when the cut left K's unit open, and it ends that unit.
 *
 *   A unit is what one call wrote: one append is a record with FIRST|LAST;
 *   a batch of n is FIRST, n-2 records with neither, LAST (n == 1 is
 *   FIRST|LAST).  Indexes run +1 from record to record.  Recovery keeps
 *   only whole units: a unit never spans two segments.
 *
 *   A compressed unit (version 2 segments only) keeps one record per
 *   entry, each with its own header, every one flagged ZSTD.  The first
 *   record's body is the unit's stored bytes: content_len (uint32), count
 *   (uint32), then one zstd frame that decompresses to exactly content_len
 *   bytes: count uint32 body lengths, then the count bodies back to back
 *   (tx id, then payload, as an uncompressed record's body).  Every other
 *   record of the unit has body_len 0.  A record's txid_len is that of its
 *   entry's body in the content.  The crc covers the stored bytes, as for
 *   any record.  content_len is at most the reader's max_entry_bytes; a
 *   frame that does not decompress to exactly content_len bytes, or
 *   lengths that do not add up, is corruption.
 *
 *   Index record (written when the segment is sealed, after the last
 *   record): flags INDEX, index = the segment's first_index, term = the
 *   number of records n, timestamp_ns = seal time, type 0, txid_len 0,
 *   body = n little-endian uint32 file offsets, one per record in order.
 *
 *   Trailer (last 32 bytes of a sealed segment, right after the padded
 *   index record):
 *   0   8  magic "WALRUSTR"
 *   8   8  first_index
 *   16  4  count (n)
 *   20  4  offset of the index record
 *   24  4  reserved, 0
 *   28  4  CRC32C of the 4 salt bytes, then bytes 0..27
 *
 * A segment file never exceeds 4 GiB - 1 bytes, so uint32 offsets suffice.
 */
#ifndef WALRUS_FORMAT_H
#define WALRUS_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WALRUS__FORMAT_VERSION 1u

#define WALRUS__META_BYTES 56u
#define WALRUS__META_TRUNC_PENDING 0x1u

#define WALRUS__SEG_HEADER_BYTES 64u
#define WALRUS__REC_HEADER_BYTES 40u
#define WALRUS__TRAILER_BYTES 32u
#define WALRUS__SEG_MAX_BYTES 0xFFFFFFFFull /* exclusive upper bound */

#define WALRUS__REC_FIRST 0x01u
#define WALRUS__REC_LAST 0x02u
#define WALRUS__REC_INDEX 0x04u
#define WALRUS__REC_GROUP 0x08u
#define WALRUS__REC_MARK 0x10u
#define WALRUS__REC_OVERLAP 0x20u
#define WALRUS__REC_ZSTD 0x40u
#define WALRUS__REC_KNOWN_FLAGS 0x7Fu

/* The segment header's version: 1, or 2 for a segment whose records may be
 * compressed (ZSTD records are malformed in a version 1 segment, so that a
 * reader that knows only version 1 refuses such a file whole). */
#define WALRUS__SEG_VERSION_ZSTD 2u

/* The head of a compressed unit's first record's body: the unit's content
 * length once decompressed (uint32), then its entry count (uint32); the
 * zstd frame follows. */
#define WALRUS__ZHEAD_BYTES 8u

/** Longest body a record may carry (1 GiB of payload + a 255-byte id). */
#define WALRUS__BODY_MAX ((1u << 30) + 255u)

/** The digits in a segment name, and the name's full length with ".seg". */
#define WALRUS__SEG_NAME_DIGITS 20
#define WALRUS__SEG_NAME_LEN 24

/* Little-endian loads and stores that are safe at any alignment. */
static inline void walrus__put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static inline void walrus__put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void walrus__put64(unsigned char *p, uint64_t v) {
  walrus__put32(p, (uint32_t)v);
  walrus__put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t walrus__get16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t walrus__get32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}
static inline uint64_t walrus__get64(const unsigned char *p) {
  return (uint64_t)walrus__get32(p) | ((uint64_t)walrus__get32(p + 4) << 32);
}

/** Bytes a record with a body of body_len occupies, padding included. */
static inline uint64_t walrus__rec_size(uint64_t body_len) {
  return (WALRUS__REC_HEADER_BYTES + body_len + 7u) & ~(uint64_t)7u;
}

/** META, decoded. */
typedef struct walrus__meta_s {
  uint32_t flags;       /* WALRUS__META_* bits */
  uint64_t log_id;      /* identity shared by the log's segments */
  uint64_t prev_log_id; /* identity before the last reset, or 0 */
  uint64_t first_index; /* entries below are removed */
  uint64_t trunc_last;  /* with TRUNC_PENDING: entries after are void */
} walrus__meta_t;

/** A segment header, decoded. */
typedef struct walrus__seg_header_s {
  uint32_t version;     /* 1, or WALRUS__SEG_VERSION_ZSTD */
  uint64_t log_id;      /* as in META */
  uint64_t first_index; /* index of the first record */
  uint32_t salt;        /* seeds every record CRC of the file */
  int64_t created_ns;   /* creation time */
} walrus__seg_header_t;

/** A record header, decoded. */
typedef struct walrus__rec_s {
  uint32_t crc;         /* stored CRC32C */
  uint32_t body_len;    /* txid_len + payload length */
  uint64_t index;       /* entry index (segment first for INDEX) */
  uint64_t term;        /* caller's term (record count for INDEX) */
  int64_t timestamp_ns; /* caller's or stamped time */
  uint16_t type;        /* caller's type */
  uint8_t flags;        /* WALRUS__REC_* */
  uint8_t txid_len;     /* bytes of transaction id at the body's start */
  uint32_t epoch;       /* sync group the record was written in */
} walrus__rec_t;

/** A sealed segment's trailer, decoded. */
typedef struct walrus__trailer_s {
  uint64_t first_index;  /* as in the header */
  uint32_t count;        /* records in the segment */
  uint32_t index_offset; /* file offset of the index record */
} walrus__trailer_t;

/* Result of the decode functions below. */
#define WALRUS__FMT_OK 0
#define WALRUS__FMT_BAD_MAGIC 1   /* not this kind of object at all */
#define WALRUS__FMT_BAD_VERSION 2 /* right magic, unknown version */
#define WALRUS__FMT_BAD_CRC 3     /* checksum mismatch */
#define WALRUS__FMT_BAD_FIELD 4   /* a field is out of its range */

void walrus__meta_encode(unsigned char out[WALRUS__META_BYTES],
                         const walrus__meta_t *m);
int walrus__meta_decode(const unsigned char in[WALRUS__META_BYTES],
                        walrus__meta_t *m);

void walrus__fmt_seg_header_encode(unsigned char out[WALRUS__SEG_HEADER_BYTES],
                                   const walrus__seg_header_t *h);
int walrus__fmt_seg_header_decode(
    const unsigned char in[WALRUS__SEG_HEADER_BYTES], walrus__seg_header_t *h);

/** Write a record header (crc left 0) into out. */
void walrus__rec_header_encode(unsigned char out[WALRUS__REC_HEADER_BYTES],
                               const walrus__rec_t *r);
/** Decode a record header; checks flags and body_len bounds, not crc.  A
 * ZSTD record must be no INDEX or MARK, its txid_len applies to the
 * decompressed body, and its body holds the unit's frame (FIRST: at least
 * WALRUS__ZHEAD_BYTES) or nothing. */
int walrus__rec_header_decode(const unsigned char in[WALRUS__REC_HEADER_BYTES],
                              walrus__rec_t *r);
/** The crc a record must carry: salt, then header bytes 4..39, then body. */
uint32_t walrus__rec_crc(uint32_t salt,
                         const unsigned char hdr[WALRUS__REC_HEADER_BYTES],
                         const void *body, size_t body_len);
/** The CRC-32C of the salt's four bytes: where every record crc of the
 * segment starts, so walrus__crc32c(seed, hdr + 4, 36 + body_len) over a
 * record held whole is its crc. */
uint32_t walrus__salt_seed(uint32_t salt);
/** Start a record crc over the salt and header only; extend it with
 * walrus__crc32c() over the body pieces. */
uint32_t walrus__rec_crc_start(
    uint32_t salt, const unsigned char hdr[WALRUS__REC_HEADER_BYTES]);
/** Decode and verify a whole record held in buf (header, body; padding not
 * needed).  Returns WALRUS__FMT_OK with *r filled, or why not. */
int walrus__rec_check(uint32_t salt, const unsigned char *buf, size_t avail,
                      walrus__rec_t *r);

/** A compressed unit's head (format.h above), decoded and checked: 1 when
 * count >= 1, 4 * count <= content_len <= bound; else 0. */
static inline int walrus__zhead_decode(const unsigned char in[8],
                                       uint32_t bound, uint32_t *content_len,
                                       uint32_t *count) {
  *content_len = walrus__get32(in);
  *count = walrus__get32(in + 4);
  return *count >= 1 && *content_len <= bound &&
         (uint64_t)*count * 4 <= *content_len;
}

void walrus__trailer_encode(unsigned char out[WALRUS__TRAILER_BYTES],
                            uint32_t salt, const walrus__trailer_t *t);
int walrus__trailer_decode(const unsigned char in[WALRUS__TRAILER_BYTES],
                           uint32_t salt, walrus__trailer_t *t);

/* DURABLE (docs/FORMAT.md §11): the writer's published state, read by
 * followers in other processes.  A 64-byte checksummed record at offset 0
 * of a 4096-byte file; the 4 bytes at offset 64 are the wake count, in the
 * machine's own order, outside the checksum. */
#define WALRUS__DURABLE_NAME "DURABLE"
#define WALRUS__DURABLE_BYTES 64
#define WALRUS__DURABLE_FILE_BYTES 4096
#define WALRUS__DURABLE_WAKE_OFF 64

/** The fields of DURABLE. */
typedef struct walrus__durable_s {
  uint64_t log_id;       /**< META's log id */
  uint64_t durable_next; /**< every index below it is durable */
  uint64_t first_index;  /**< the log's first index */
  uint64_t gen;          /**< bumped when entries below durable_next go */
} walrus__durable_t;

void walrus__durable_encode(unsigned char out[WALRUS__DURABLE_BYTES],
                            const walrus__durable_t *d);
/** 1 and *d filled if in holds a whole, valid DURABLE record; else 0. */
int walrus__durable_decode(const unsigned char in[WALRUS__DURABLE_BYTES],
                           walrus__durable_t *d);

/** Write "<20 digits>.seg" for first_index into out (25 bytes with NUL). */
void walrus__fmt_seg_name(char out[WALRUS__SEG_NAME_LEN + 1],
                          uint64_t first_index);
/** Parse a segment file name; returns 1 and *first_index if it is one. */
int walrus__fmt_seg_name_parse(const char *name, uint64_t *first_index);

#endif /* WALRUS_FORMAT_H */
