/*
 * golden_data.h: the entries of the golden log, as a formula shared by the
 * generator (make_golden.c) and the test (test_golden.c).
 *
 * The golden log of format version 1 (tests/golden/v1/) was made from this
 * formula.  Never change it: the checked-in files would no longer match.
 * A later format version gets its own formula header next to this one.
 *
 * The log: a new log with segment_bytes GOLDEN_SEGMENT_BYTES, entries
 * 1..GOLDEN_LAST written in order (the runs golden_batch() names as one
 * walrus_write_batch() each, the rest with walrus_append()), then
 * walrus_truncate_front(GOLDEN_FIRST), which drops the first segment.
 */
#ifndef WALRUS_GOLDEN_DATA_H
#define WALRUS_GOLDEN_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GOLDEN_SEGMENT_BYTES 4096u /* segment_bytes of the generator */
#define GOLDEN_LAST 300u           /* last index in the golden log */
#define GOLDEN_FIRST 40u           /* first index, after truncate_front */
#define GOLDEN_MAX_LEN 400u        /* longest payload */

/* The caller's term of entry i. */
static inline uint64_t golden_term(uint64_t i) { return 1 + i / 50; }

/* The caller's type of entry i. */
static inline uint16_t golden_type(uint64_t i) { return (uint16_t)(i % 5); }

/* The timestamp of entry i: fixed, so the log is deterministic. */
static inline int64_t golden_timestamp(uint64_t i) {
  return 1700000000000000000ll + (int64_t)i * 1000;
}

/* The transaction id of entry i written into buf, or NULL for none. */
static inline const char *golden_txid(uint64_t i, char buf[32]) {
  if (i % 17 != 0) return NULL;
  snprintf(buf, 32, "tx-%04u", (unsigned)i);
  return buf;
}

/* The payload length of entry i, 0..GOLDEN_MAX_LEN. */
static inline size_t golden_len(uint64_t i) {
  if (i % 23 == 0) return 0;
  return (size_t)((i * 131) % (GOLDEN_MAX_LEN + 1));
}

/* The payload of entry i: golden_len(i) bytes into buf. */
static inline void golden_fill(uint64_t i, unsigned char *buf) {
  size_t n = golden_len(i);
  for (size_t k = 0; k < n; k++)
    buf[k] = (unsigned char)(i * 7 + k * 13 + (k >> 3));
}

/* If a batch starts at entry i, returns its length; else 0. */
static inline size_t golden_batch(uint64_t i) {
  switch (i) {
    case 100: return 10;
    case 200: return 5;
    case 250: return 1;
    case 280: return 20;
    default: return 0;
  }
}

#endif /* WALRUS_GOLDEN_DATA_H */
