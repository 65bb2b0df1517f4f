/*
 * test_format.c: unit tests for the pure encode/decode functions of
 * src/format.h, the on-disk format version 1.
 *
 * This file owns the checks that every encoder writes the bytes format.h
 * documents at the documented offsets (so docs, header and code agree),
 * that every decoder gives back what was encoded, and that every decoder
 * rejects a wrong magic, a wrong version, a flipped bit anywhere and a
 * field out of its range.  It also covers walrus__rec_check on whole,
 * truncated and wrongly salted records, walrus__rec_size padding, and
 * segment file names.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "format.h"

#define H ((size_t)WALRUS__REC_HEADER_BYTES)

/* ---- helpers ------------------------------------------------------------ */

/* CRC32C of the 4 salt bytes (little-endian), the seed of record and
 * trailer checksums. */
static uint32_t salt_crc(uint32_t salt) {
  unsigned char s[4];
  walrus__put32(s, salt);
  return walrus__crc32c(0, s, 4);
}

/* Fixes the trailing CRC32C of a META (56 bytes, CRC over 0..51). */
static void meta_fix_crc(unsigned char *b) {
  walrus__put32(b + 52, walrus__crc32c(0, b, 52));
}

/* Fixes the trailing CRC32C of a segment header (CRC over 0..59). */
static void seg_fix_crc(unsigned char *b) {
  walrus__put32(b + 60, walrus__crc32c(0, b, 60));
}

/* Fixes the trailing CRC32C of a trailer (salt, then bytes 0..27). */
static void trailer_fix_crc(unsigned char *b, uint32_t salt) {
  walrus__put32(b + 28, walrus__crc32c(salt_crc(salt), b, 28));
}

/* The crc a record must carry, computed straight from format.h. */
static uint32_t ref_rec_crc(uint32_t salt, const unsigned char *rec,
                            size_t body_len) {
  return walrus__crc32c(salt_crc(salt), rec + 4, H - 4 + body_len);
}

/* A record built in a buffer of its padded size. */
typedef struct rec_buf {
  unsigned char *b;
  size_t len;  /* H + body_len: the bytes the crc covers */
  size_t size; /* walrus__rec_size(body_len) */
} rec_buf_t;

/* Encodes header r (body_len taken from txid_len + plen), the tx id and
 * payload, and seals it with the right crc for salt. */
static rec_buf_t make_rec(uint32_t salt, walrus__rec_t r, const char *txid,
                          const void *payload, size_t plen) {
  rec_buf_t out;
  size_t tl = txid ? strlen(txid) : 0;
  r.txid_len = (uint8_t)tl;
  r.body_len = (uint32_t)(tl + plen);
  out.len = WALRUS__REC_HEADER_BYTES + r.body_len;
  out.size = (size_t)walrus__rec_size(r.body_len);
  out.b = calloc(1, out.size);
  cr_assert_not_null(out.b);
  walrus__rec_header_encode(out.b, &r);
  if (tl) memcpy(out.b + H, txid, tl);
  if (plen) memcpy(out.b + H + tl, payload, plen);
  uint32_t crc = walrus__rec_crc(salt, out.b, out.b + H, r.body_len);
  walrus__put32(out.b, crc);
  return out;
}

/* Re-seals a record after a test changed its header or body. */
static void rec_fix_crc(rec_buf_t *rb, uint32_t salt) {
  uint32_t body_len = walrus__get32(rb->b + 4);
  walrus__put32(rb->b, ref_rec_crc(salt, rb->b, body_len));
}

/* walrus__rec_check over a private copy of exactly avail bytes, so that
 * AddressSanitizer sees any read beyond avail. */
static int check_exact(uint32_t salt, const unsigned char *buf, size_t avail,
                       walrus__rec_t *r) {
  unsigned char *copy = malloc(avail ? avail : 1);
  cr_assert_not_null(copy);
  if (avail) memcpy(copy, buf, avail);
  int rc = walrus__rec_check(salt, copy, avail, r);
  free(copy);
  return rc;
}

static walrus__meta_t sample_meta(void) {
  walrus__meta_t m;
  memset(&m, 0, sizeof m);
  m.flags = WALRUS__META_TRUNC_PENDING;
  m.log_id = 0x0123456789ABCDEFull;
  m.prev_log_id = 0xFEDCBA9876543210ull;
  m.first_index = 1234567;
  m.trunc_last = 7654321;
  return m;
}

static walrus__seg_header_t sample_seg(void) {
  walrus__seg_header_t h;
  memset(&h, 0, sizeof h);
  h.version = 1;
  h.log_id = 0xA5A5A5A55A5A5A5Aull;
  h.first_index = 4097;
  h.salt = 0xDEADBEEFu;
  h.created_ns = 1700000000123456789ll;
  return h;
}

static walrus__rec_t sample_rec(uint8_t flags) {
  walrus__rec_t r;
  memset(&r, 0, sizeof r);
  r.index = 0x1122334455667788ull;
  r.term = 42;
  r.timestamp_ns = -5; /* signed, must survive */
  r.type = 0xBEEF;
  r.flags = flags;
  r.epoch = 0x0A0B0C0Du;
  return r;
}

/* ---- META --------------------------------------------------------------- */

Test(meta, encode_layout_matches_format_h) {
  walrus__meta_t m = sample_meta();
  unsigned char b[WALRUS__META_BYTES];
  memset(b, 0xCC, sizeof b);
  walrus__meta_encode(b, &m);
  cr_assert_eq(memcmp(b, "WALRUSMT", 8), 0, "magic");
  cr_assert_eq(walrus__get32(b + 8), WALRUS__FORMAT_VERSION);
  cr_assert_eq(walrus__get32(b + 12), WALRUS__META_TRUNC_PENDING);
  cr_assert_eq(walrus__get64(b + 16), m.log_id);
  cr_assert_eq(walrus__get64(b + 24), m.prev_log_id);
  cr_assert_eq(walrus__get64(b + 32), m.first_index);
  cr_assert_eq(walrus__get64(b + 40), m.trunc_last);
  cr_assert_eq(walrus__get32(b + 48), 0u, "reserved");
  cr_assert_eq(walrus__get32(b + 52), walrus__crc32c(0, b, 52), "crc");
}

Test(meta, round_trip) {
  walrus__meta_t cases[3];
  cases[0] = sample_meta();
  memset(&cases[1], 0, sizeof cases[1]);
  cases[1].log_id = 1;
  cases[1].first_index = 1;
  memset(&cases[2], 0, sizeof cases[2]);
  cases[2].log_id = UINT64_MAX;
  cases[2].prev_log_id = UINT64_MAX;
  cases[2].first_index = UINT64_MAX;
  cases[2].trunc_last = UINT64_MAX - 1;
  for (size_t i = 0; i < 3; i++) {
    unsigned char b[WALRUS__META_BYTES];
    walrus__meta_encode(b, &cases[i]);
    walrus__meta_t d;
    memset(&d, 0x5A, sizeof d);
    cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_OK, "case %zu", i);
    cr_assert_eq(d.flags, cases[i].flags, "case %zu", i);
    cr_assert_eq(d.log_id, cases[i].log_id, "case %zu", i);
    cr_assert_eq(d.prev_log_id, cases[i].prev_log_id, "case %zu", i);
    cr_assert_eq(d.first_index, cases[i].first_index, "case %zu", i);
    cr_assert_eq(d.trunc_last, cases[i].trunc_last, "case %zu", i);
  }
}

Test(meta, rejects_wrong_magic) {
  walrus__meta_t m = sample_meta(), d;
  unsigned char b[WALRUS__META_BYTES];
  walrus__meta_encode(b, &m);
  memcpy(b, "WALRUSSG", 8); /* a segment's magic */
  meta_fix_crc(b);
  cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_MAGIC);
  memset(b, 0, sizeof b);
  cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_MAGIC);
}

Test(meta, rejects_wrong_version) {
  uint32_t versions[] = {0, 3, 0xFFFFFFFFu}; /* 1 and 2 are known */
  for (size_t i = 0; i < 3; i++) {
    walrus__meta_t m = sample_meta(), d;
    unsigned char b[WALRUS__META_BYTES];
    walrus__meta_encode(b, &m);
    walrus__put32(b + 8, versions[i]);
    meta_fix_crc(b);
    cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_VERSION,
                 "version %u", versions[i]);
  }
}

Test(meta, rejects_every_flipped_bit) {
  walrus__meta_t m = sample_meta(), d;
  unsigned char good[WALRUS__META_BYTES];
  walrus__meta_encode(good, &m);
  for (size_t off = 0; off < WALRUS__META_BYTES; off++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      unsigned char b[WALRUS__META_BYTES];
      memcpy(b, good, sizeof b);
      b[off] ^= (unsigned char)(1u << bit);
      int rc = walrus__meta_decode(b, &d);
      if (off < 8)
        cr_assert(rc == WALRUS__FMT_BAD_MAGIC || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else if (off < 12)
        cr_assert(rc == WALRUS__FMT_BAD_VERSION || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else if (off < 16 || (off >= 48 && off < 52))
        cr_assert(rc == WALRUS__FMT_BAD_FIELD || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else
        cr_assert_eq(rc, WALRUS__FMT_BAD_CRC, "byte %zu bit %u", off, bit);
    }
  }
}

/* ---- segment header ----------------------------------------------------- */

Test(seg_header, encode_layout_matches_format_h) {
  walrus__seg_header_t h = sample_seg();
  unsigned char b[WALRUS__SEG_HEADER_BYTES];
  memset(b, 0xCC, sizeof b);
  walrus__fmt_seg_header_encode(b, &h);
  cr_assert_eq(memcmp(b, "WALRUSSG", 8), 0, "magic");
  cr_assert_eq(walrus__get32(b + 8), WALRUS__FORMAT_VERSION);
  cr_assert_eq(walrus__get32(b + 12), WALRUS__SEG_HEADER_BYTES);
  cr_assert_eq(walrus__get64(b + 16), h.log_id);
  cr_assert_eq(walrus__get64(b + 24), h.first_index);
  cr_assert_eq(walrus__get32(b + 32), h.salt);
  cr_assert_eq(walrus__get32(b + 36), 0u, "reserved");
  cr_assert_eq((int64_t)walrus__get64(b + 40), h.created_ns);
  for (size_t i = 48; i < 60; i++) cr_assert_eq(b[i], 0, "reserved byte %zu", i);
  cr_assert_eq(walrus__get32(b + 60), walrus__crc32c(0, b, 60), "crc");
}

Test(seg_header, round_trip) {
  walrus__seg_header_t cases[3];
  cases[0] = sample_seg();
  memset(&cases[1], 0, sizeof cases[1]);
  cases[1].version = 2;
  cases[1].log_id = 1;
  cases[1].first_index = 1;
  cases[2].version = 1;
  cases[2].log_id = UINT64_MAX;
  cases[2].first_index = UINT64_MAX;
  cases[2].salt = UINT32_MAX;
  cases[2].created_ns = INT64_MIN;
  for (size_t i = 0; i < 3; i++) {
    unsigned char b[WALRUS__SEG_HEADER_BYTES];
    walrus__fmt_seg_header_encode(b, &cases[i]);
    walrus__seg_header_t d;
    memset(&d, 0x5A, sizeof d);
    cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_OK,
                 "case %zu", i);
    cr_assert_eq(d.log_id, cases[i].log_id, "case %zu", i);
    cr_assert_eq(d.first_index, cases[i].first_index, "case %zu", i);
    cr_assert_eq(d.salt, cases[i].salt, "case %zu", i);
    cr_assert_eq(d.created_ns, cases[i].created_ns, "case %zu", i);
  }
}

Test(seg_header, rejects_wrong_magic) {
  walrus__seg_header_t h = sample_seg(), d;
  unsigned char b[WALRUS__SEG_HEADER_BYTES];
  walrus__fmt_seg_header_encode(b, &h);
  memcpy(b, "WALRUSMT", 8);
  seg_fix_crc(b);
  cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_BAD_MAGIC);
  memset(b, 0, sizeof b);
  cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_BAD_MAGIC);
}

Test(seg_header, rejects_wrong_version) {
  uint32_t versions[] = {0, 3, 0xFFFFFFFFu}; /* 1 and 2 are known */
  for (size_t i = 0; i < 3; i++) {
    walrus__seg_header_t h = sample_seg(), d;
    unsigned char b[WALRUS__SEG_HEADER_BYTES];
    walrus__fmt_seg_header_encode(b, &h);
    walrus__put32(b + 8, versions[i]);
    seg_fix_crc(b);
    cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_BAD_VERSION,
                 "version %u", versions[i]);
  }
}

Test(seg_header, rejects_wrong_header_size) {
  uint32_t sizes[] = {0, 63, 65, 128};
  for (size_t i = 0; i < 4; i++) {
    walrus__seg_header_t h = sample_seg(), d;
    unsigned char b[WALRUS__SEG_HEADER_BYTES];
    walrus__fmt_seg_header_encode(b, &h);
    walrus__put32(b + 12, sizes[i]);
    seg_fix_crc(b);
    int rc = walrus__fmt_seg_header_decode(b, &d);
    cr_assert_neq(rc, WALRUS__FMT_OK, "header bytes %u accepted", sizes[i]);
  }
}

Test(seg_header, rejects_every_flipped_bit) {
  walrus__seg_header_t h = sample_seg(), d;
  unsigned char good[WALRUS__SEG_HEADER_BYTES];
  walrus__fmt_seg_header_encode(good, &h);
  for (size_t off = 0; off < WALRUS__SEG_HEADER_BYTES; off++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      unsigned char b[WALRUS__SEG_HEADER_BYTES];
      memcpy(b, good, sizeof b);
      b[off] ^= (unsigned char)(1u << bit);
      int rc = walrus__fmt_seg_header_decode(b, &d);
      if (off < 8)
        cr_assert(rc == WALRUS__FMT_BAD_MAGIC || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else if (off < 12)
        cr_assert(rc == WALRUS__FMT_BAD_VERSION || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else if (off < 16 || (off >= 36 && off < 40) || (off >= 48 && off < 60))
        cr_assert(rc == WALRUS__FMT_BAD_FIELD || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else
        cr_assert_eq(rc, WALRUS__FMT_BAD_CRC, "byte %zu bit %u", off, bit);
    }
  }
}

/* ---- record header ------------------------------------------------------ */

Test(rec_header, encode_layout_matches_format_h) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST);
  r.crc = 0x12345678u; /* encode must leave the crc 0 */
  r.body_len = 300;
  r.txid_len = 7;
  unsigned char b[WALRUS__REC_HEADER_BYTES];
  memset(b, 0xCC, sizeof b);
  walrus__rec_header_encode(b, &r);
  cr_assert_eq(walrus__get32(b + 0), 0u, "crc left 0");
  cr_assert_eq(walrus__get32(b + 4), 300u);
  cr_assert_eq(walrus__get64(b + 8), r.index);
  cr_assert_eq(walrus__get64(b + 16), r.term);
  cr_assert_eq((int64_t)walrus__get64(b + 24), r.timestamp_ns);
  cr_assert_eq(walrus__get16(b + 32), r.type);
  cr_assert_eq(b[34], WALRUS__REC_FIRST | WALRUS__REC_LAST);
  cr_assert_eq(b[35], 7);
  cr_assert_eq(walrus__get32(b + 36), r.epoch);
  cr_assert_eq(WALRUS__REC_HEADER_BYTES, 40u, "format.h: body at 40");
}

Test(rec_header, round_trip_every_known_flag_combination) {
  const uint8_t flags[] = {0,
                           WALRUS__REC_FIRST,
                           WALRUS__REC_LAST,
                           WALRUS__REC_FIRST | WALRUS__REC_LAST,
                           WALRUS__REC_INDEX,
                           WALRUS__REC_GROUP | WALRUS__REC_FIRST,
                           WALRUS__REC_GROUP | WALRUS__REC_FIRST |
                               WALRUS__REC_LAST};
  for (size_t i = 0; i < sizeof flags; i++) {
    walrus__rec_t r = sample_rec(flags[i]);
    r.body_len = (uint32_t)(i * 1000 + 3);
    r.txid_len = (uint8_t)(i == 2 ? 3 : 0);
    unsigned char b[WALRUS__REC_HEADER_BYTES];
    walrus__rec_header_encode(b, &r);
    walrus__put32(b, 0xCAFEBABEu);
    walrus__rec_t d;
    memset(&d, 0x5A, sizeof d);
    cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_OK,
                 "flags 0x%x", flags[i]);
    cr_assert_eq(d.crc, 0xCAFEBABEu, "decode returns the stored crc");
    cr_assert_eq(d.body_len, r.body_len);
    cr_assert_eq(d.index, r.index);
    cr_assert_eq(d.term, r.term);
    cr_assert_eq(d.timestamp_ns, r.timestamp_ns);
    cr_assert_eq(d.type, r.type);
    cr_assert_eq(d.flags, r.flags);
    cr_assert_eq(d.txid_len, r.txid_len);
    cr_assert_eq(d.epoch, r.epoch);
  }
}

Test(rec_header, rejects_unknown_flags) {
  for (unsigned bit = 0; bit < 8; bit++) {
    if ((1u << bit) & WALRUS__REC_KNOWN_FLAGS) continue;
    walrus__rec_t r = sample_rec(WALRUS__REC_FIRST);
    r.body_len = 10;
    unsigned char b[WALRUS__REC_HEADER_BYTES];
    walrus__rec_header_encode(b, &r);
    b[34] = (unsigned char)(WALRUS__REC_FIRST | (1u << bit));
    walrus__rec_t d;
    cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_BAD_FIELD,
                 "flag bit %u accepted", bit);
  }
}

Test(rec_header, body_len_bounds) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  unsigned char b[WALRUS__REC_HEADER_BYTES];
  r.body_len = WALRUS__BODY_MAX;
  walrus__rec_header_encode(b, &r);
  cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_OK);
  cr_assert_eq(d.body_len, WALRUS__BODY_MAX);
  const uint32_t bad[] = {WALRUS__BODY_MAX + 1u, 0x80000000u, UINT32_MAX};
  for (size_t i = 0; i < 3; i++) {
    walrus__put32(b + 4, bad[i]);
    cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_BAD_FIELD,
                 "body_len %u accepted", bad[i]);
  }
}

Test(rec_header, rejects_txid_longer_than_body) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  unsigned char b[WALRUS__REC_HEADER_BYTES];
  r.body_len = 4;
  r.txid_len = 5;
  walrus__rec_header_encode(b, &r);
  cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_BAD_FIELD);
  r.txid_len = 4; /* a tx id and an empty payload is fine */
  walrus__rec_header_encode(b, &r);
  cr_assert_eq(walrus__rec_header_decode(b, &d), WALRUS__FMT_OK);
}

/* ---- record crc and rec_check ------------------------------------------- */

Test(rec_crc, matches_format_h_definition) {
  unsigned char payload[100];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)(i * 7);
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST);
  rec_buf_t rb = make_rec(0x01020304u, r, "tx-1", payload, sizeof payload);
  uint32_t body_len = walrus__get32(rb.b + 4);
  cr_assert_eq(body_len, 104u);
  uint32_t want = ref_rec_crc(0x01020304u, rb.b, body_len);
  cr_assert_eq(walrus__get32(rb.b), want);
  /* rec_crc_start + crc32c over the body in pieces gives the same. */
  uint32_t c = walrus__rec_crc_start(0x01020304u, rb.b);
  c = walrus__crc32c(c, rb.b + H, 10);
  c = walrus__crc32c(c, rb.b + H + 10, body_len - 10);
  cr_assert_eq(c, want);
  /* The stored crc bytes do not feed the crc. */
  walrus__put32(rb.b, 0);
  cr_assert_eq(walrus__rec_crc(0x01020304u, rb.b, rb.b + H, body_len), want);
  /* A different salt gives a different crc. */
  cr_assert_neq(walrus__rec_crc(0x01020305u, rb.b, rb.b + H, body_len), want);
  free(rb.b);
}

Test(rec_check, accepts_whole_record) {
  const char *payload = "hello, walrus";
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST);
  rec_buf_t rb = make_rec(77, r, "txn", payload, strlen(payload));
  walrus__rec_t d;
  memset(&d, 0, sizeof d);
  /* Exactly header + body (no padding) is enough. */
  cr_assert_eq(check_exact(77, rb.b, rb.len, &d), WALRUS__FMT_OK);
  cr_assert_eq(d.crc, walrus__get32(rb.b));
  cr_assert_eq(d.body_len, 3 + strlen(payload));
  cr_assert_eq(d.index, r.index);
  cr_assert_eq(d.term, r.term);
  cr_assert_eq(d.timestamp_ns, r.timestamp_ns);
  cr_assert_eq(d.type, r.type);
  cr_assert_eq(d.flags, r.flags);
  cr_assert_eq(d.txid_len, 3);
  /* With its padding, and with bytes after it, too. */
  cr_assert_eq(check_exact(77, rb.b, rb.size, &d), WALRUS__FMT_OK);
  unsigned char more[256];
  memset(more, 0xEE, sizeof more);
  memcpy(more, rb.b, rb.size);
  cr_assert_eq(check_exact(77, more, sizeof more, &d), WALRUS__FMT_OK);
  free(rb.b);
}

Test(rec_check, accepts_empty_body) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  rec_buf_t rb = make_rec(5, r, NULL, NULL, 0);
  cr_assert_eq(rb.len, H);
  cr_assert_eq(rb.size, (size_t)walrus__rec_size(0));
  cr_assert_eq(check_exact(5, rb.b, rb.len, &d), WALRUS__FMT_OK);
  cr_assert_eq(d.body_len, 0u);
  cr_assert_eq(d.txid_len, 0);
  free(rb.b);
}

Test(rec_check, rejects_every_truncation) {
  unsigned char payload[61];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)i;
  walrus__rec_t r = sample_rec(WALRUS__REC_LAST), d;
  rec_buf_t rb = make_rec(0xABCDEF01u, r, "t", payload, sizeof payload);
  for (size_t avail = 0; avail < rb.len; avail++) {
    int rc = check_exact(0xABCDEF01u, rb.b, avail, &d);
    cr_assert_neq(rc, WALRUS__FMT_OK, "accepted %zu of %zu bytes", avail,
                  rb.len);
  }
  cr_assert_eq(check_exact(0xABCDEF01u, rb.b, rb.len, &d), WALRUS__FMT_OK);
  free(rb.b);
}

Test(rec_check, rejects_wrong_salt) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  rec_buf_t rb = make_rec(1000, r, NULL, "abc", 3);
  cr_assert_eq(check_exact(1000, rb.b, rb.len, &d), WALRUS__FMT_OK);
  cr_assert_eq(check_exact(1001, rb.b, rb.len, &d), WALRUS__FMT_BAD_CRC);
  cr_assert_eq(check_exact(0, rb.b, rb.len, &d), WALRUS__FMT_BAD_CRC);
  free(rb.b);
}

Test(rec_check, rejects_every_flipped_bit) {
  unsigned char payload[20];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)(~i);
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST), d;
  rec_buf_t rb = make_rec(99, r, "xy", payload, sizeof payload);
  for (size_t off = 0; off < rb.len; off++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      unsigned char *b = malloc(rb.size);
      cr_assert_not_null(b);
      memcpy(b, rb.b, rb.size);
      b[off] ^= (unsigned char)(1u << bit);
      int rc = walrus__rec_check(99, b, rb.size, &d);
      free(b);
      if (off >= 4 && off < 8) /* body_len: may also look truncated */
        cr_assert_neq(rc, WALRUS__FMT_OK, "byte %zu bit %u", off, bit);
      else if (off == 34 || off == 35) /* flags, txid_len */
        cr_assert(rc == WALRUS__FMT_BAD_CRC || rc == WALRUS__FMT_BAD_FIELD,
                  "byte %zu bit %u: %d", off, bit, rc);
      else
        cr_assert_eq(rc, WALRUS__FMT_BAD_CRC, "byte %zu bit %u", off, bit);
    }
  }
  free(rb.b);
}

Test(rec_check, rejects_bad_fields_even_with_valid_crc) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  rec_buf_t rb = make_rec(3, r, NULL, "payload!", 8);
  /* An unknown flag. */
  rb.b[34] |= 0x80;
  rec_fix_crc(&rb, 3);
  cr_assert_eq(check_exact(3, rb.b, rb.len, &d), WALRUS__FMT_BAD_FIELD);
  rb.b[34] &= (unsigned char)~0x80;
  rec_fix_crc(&rb, 3);
  cr_assert_eq(check_exact(3, rb.b, rb.len, &d), WALRUS__FMT_OK);
  /* A tx id longer than the body. */
  rb.b[35] = 9;
  rec_fix_crc(&rb, 3);
  cr_assert_eq(check_exact(3, rb.b, rb.len, &d), WALRUS__FMT_BAD_FIELD);
  rb.b[35] = 0;
  /* Index 0: indexes start at 1. */
  walrus__put64(rb.b + 8, 0);
  rec_fix_crc(&rb, 3);
  cr_assert_eq(check_exact(3, rb.b, rb.len, &d), WALRUS__FMT_BAD_FIELD);
  free(rb.b);
}

Test(rec_check, huge_body_len_is_not_read_beyond_avail) {
  walrus__rec_t r = sample_rec(WALRUS__REC_FIRST | WALRUS__REC_LAST), d;
  unsigned char b[64];
  memset(b, 0, sizeof b);
  r.body_len = WALRUS__BODY_MAX;
  walrus__rec_header_encode(b, &r);
  cr_assert_neq(check_exact(1, b, sizeof b, &d), WALRUS__FMT_OK);
  walrus__put32(b + 4, UINT32_MAX);
  cr_assert_neq(check_exact(1, b, sizeof b, &d), WALRUS__FMT_OK);
}

Test(rec_size, pads_to_multiple_of_8) {
  /* The header is 40 bytes, a multiple of 8. */
  cr_assert_eq(walrus__rec_size(0), 40u);
  cr_assert_eq(walrus__rec_size(1), 48u);
  cr_assert_eq(walrus__rec_size(7), 48u);
  cr_assert_eq(walrus__rec_size(8), 48u);
  cr_assert_eq(walrus__rec_size(9), 56u);
  cr_assert_eq(walrus__rec_size(100), 144u);
  cr_assert_eq(walrus__rec_size(WALRUS__BODY_MAX),
               ((uint64_t)H + WALRUS__BODY_MAX + 7) / 8 * 8);
  for (uint64_t n = 0; n < 1000; n++) {
    uint64_t s = walrus__rec_size(n);
    cr_assert_eq(s % 8, 0u, "body %llu", (unsigned long long)n);
    cr_assert_geq(s, H + n);
    cr_assert_lt(s, H + n + 8);
  }
}

/* ---- trailer ------------------------------------------------------------ */

Test(trailer, encode_layout_matches_format_h) {
  walrus__trailer_t t = {.first_index = 0x0102030405060708ull,
                         .count = 12345,
                         .index_offset = 0xFFFFFF00u};
  unsigned char b[WALRUS__TRAILER_BYTES];
  memset(b, 0xCC, sizeof b);
  walrus__trailer_encode(b, 0x55AA55AAu, &t);
  cr_assert_eq(memcmp(b, "WALRUSTR", 8), 0, "magic");
  cr_assert_eq(walrus__get64(b + 8), t.first_index);
  cr_assert_eq(walrus__get32(b + 16), t.count);
  cr_assert_eq(walrus__get32(b + 20), t.index_offset);
  cr_assert_eq(walrus__get32(b + 24), 0u, "reserved");
  cr_assert_eq(walrus__get32(b + 28),
               walrus__crc32c(salt_crc(0x55AA55AAu), b, 28), "crc");
}

Test(trailer, round_trip) {
  walrus__trailer_t cases[] = {
      {.first_index = 1, .count = 1, .index_offset = 104},
      {.first_index = UINT64_MAX, .count = UINT32_MAX,
       .index_offset = UINT32_MAX},
      {.first_index = 4097, .count = 1, .index_offset = 64}};
  for (size_t i = 0; i < 3; i++) {
    unsigned char b[WALRUS__TRAILER_BYTES];
    walrus__trailer_encode(b, (uint32_t)(i * 0x9E3779B9u), &cases[i]);
    walrus__trailer_t d;
    memset(&d, 0x5A, sizeof d);
    cr_assert_eq(walrus__trailer_decode(b, (uint32_t)(i * 0x9E3779B9u), &d),
                 WALRUS__FMT_OK, "case %zu", i);
    cr_assert_eq(d.first_index, cases[i].first_index, "case %zu", i);
    cr_assert_eq(d.count, cases[i].count, "case %zu", i);
    cr_assert_eq(d.index_offset, cases[i].index_offset, "case %zu", i);
  }
}

Test(trailer, rejects_wrong_magic_and_wrong_salt) {
  walrus__trailer_t t = {.first_index = 9, .count = 3, .index_offset = 200},
                    d;
  unsigned char b[WALRUS__TRAILER_BYTES];
  walrus__trailer_encode(b, 42, &t);
  cr_assert_eq(walrus__trailer_decode(b, 43, &d), WALRUS__FMT_BAD_CRC);
  memcpy(b, "WALRUSSG", 8);
  trailer_fix_crc(b, 42);
  cr_assert_eq(walrus__trailer_decode(b, 42, &d), WALRUS__FMT_BAD_MAGIC);
  memset(b, 0, sizeof b);
  cr_assert_eq(walrus__trailer_decode(b, 42, &d), WALRUS__FMT_BAD_MAGIC);
}

Test(trailer, rejects_every_flipped_bit) {
  walrus__trailer_t t = {.first_index = 777, .count = 31, .index_offset = 3000},
                    d;
  unsigned char good[WALRUS__TRAILER_BYTES];
  walrus__trailer_encode(good, 0x13572468u, &t);
  for (size_t off = 0; off < WALRUS__TRAILER_BYTES; off++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      unsigned char b[WALRUS__TRAILER_BYTES];
      memcpy(b, good, sizeof b);
      b[off] ^= (unsigned char)(1u << bit);
      int rc = walrus__trailer_decode(b, 0x13572468u, &d);
      if (off < 8)
        cr_assert(rc == WALRUS__FMT_BAD_MAGIC || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else if (off >= 24 && off < 28)
        cr_assert(rc == WALRUS__FMT_BAD_FIELD || rc == WALRUS__FMT_BAD_CRC,
                  "byte %zu bit %u: %d", off, bit, rc);
      else
        cr_assert_eq(rc, WALRUS__FMT_BAD_CRC, "byte %zu bit %u", off, bit);
    }
  }
}

/* ---- fields that can never be 0 ----------------------------------------- */

Test(zero_fields, meta_first_index_and_log_id) {
  walrus__meta_t m = sample_meta(), d;
  unsigned char b[WALRUS__META_BYTES];
  m.first_index = 0;
  walrus__meta_encode(b, &m);
  cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_FIELD);
  m = sample_meta();
  m.log_id = 0;
  walrus__meta_encode(b, &m);
  cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_FIELD);
  m = sample_meta();
  m.flags = 0x2; /* an unknown flag */
  walrus__meta_encode(b, &m);
  cr_assert_eq(walrus__meta_decode(b, &d), WALRUS__FMT_BAD_FIELD);
}

Test(zero_fields, seg_header_first_index_and_log_id) {
  walrus__seg_header_t h = sample_seg(), d;
  unsigned char b[WALRUS__SEG_HEADER_BYTES];
  h.first_index = 0;
  walrus__fmt_seg_header_encode(b, &h);
  cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_BAD_FIELD);
  h = sample_seg();
  h.log_id = 0;
  walrus__fmt_seg_header_encode(b, &h);
  cr_assert_eq(walrus__fmt_seg_header_decode(b, &d), WALRUS__FMT_BAD_FIELD);
}

Test(zero_fields, trailer_count_first_index_and_offset) {
  walrus__trailer_t bad[] = {
      {.first_index = 0, .count = 1, .index_offset = 200},
      {.first_index = 5, .count = 0, .index_offset = 200},
      /* the index record cannot start inside the 64-byte header */
      {.first_index = 5, .count = 1, .index_offset = 63}};
  for (size_t i = 0; i < 3; i++) {
    unsigned char b[WALRUS__TRAILER_BYTES];
    walrus__trailer_t d;
    walrus__trailer_encode(b, 8, &bad[i]);
    cr_assert_eq(walrus__trailer_decode(b, 8, &d), WALRUS__FMT_BAD_FIELD,
                 "case %zu", i);
  }
}

/* ---- segment names ------------------------------------------------------ */

Test(seg_name, formats_twenty_digits) {
  char name[WALRUS__SEG_NAME_LEN + 1];
  memset(name, 'X', sizeof name);
  walrus__fmt_seg_name(name, 1);
  cr_assert_str_eq(name, "00000000000000000001.seg");
  cr_assert_eq(strlen(name), (size_t)WALRUS__SEG_NAME_LEN);
  walrus__fmt_seg_name(name, 4097);
  cr_assert_str_eq(name, "00000000000000004097.seg");
  walrus__fmt_seg_name(name, UINT64_MAX);
  cr_assert_str_eq(name, "18446744073709551615.seg");
}

Test(seg_name, round_trip) {
  const uint64_t values[] = {1, 2, 9, 10, 99, 100, 4097, 1000000007ull,
                             0x0123456789ABCDEFull, UINT64_MAX - 1,
                             UINT64_MAX};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    char name[WALRUS__SEG_NAME_LEN + 1];
    walrus__fmt_seg_name(name, values[i]);
    uint64_t got = 0;
    cr_assert_eq(walrus__fmt_seg_name_parse(name, &got), 1, "%s", name);
    cr_assert_eq(got, values[i], "%s", name);
  }
}

Test(seg_name, names_sort_in_index_order) {
  char a[WALRUS__SEG_NAME_LEN + 1], b[WALRUS__SEG_NAME_LEN + 1];
  walrus__fmt_seg_name(a, 999);
  walrus__fmt_seg_name(b, 1000);
  cr_assert_lt(strcmp(a, b), 0);
}

Test(seg_name, rejects_non_segment_names) {
  const char *bad[] = {
      "",
      "META",
      "LOCK",
      "META.tmp",
      ".seg",
      "salvage",
      "0000000000000000001.seg",     /* 19 digits */
      "000000000000000000001.seg",   /* 21 digits */
      "00000000000000000001.seg.tmp",
      "00000000000000000001.seg.salvage",
      "00000000000000000001.se",
      "00000000000000000001.sex",
      "00000000000000000001.SEG",
      "00000000000000000001seg.",
      "00000000000000000001",
      "0000000000000000000a.seg",
      "a0000000000000000001.seg",
      "0000000000 000000001.seg",
      " 0000000000000000001.seg",
      "+0000000000000000001.seg",
      "-0000000000000000001.seg",
      "0x000000000000000001.seg",
      "18446744073709551616.seg", /* UINT64_MAX + 1 */
      "99999999999999999999.seg",
      "00000000000000000000.seg", /* index 0 does not exist */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t got = 12345;
    cr_assert_eq(walrus__fmt_seg_name_parse(bad[i], &got), 0, "accepted \"%s\"",
                 bad[i]);
  }
}
