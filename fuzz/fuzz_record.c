/*
 * fuzz_record.c: libFuzzer target for the pure decoders of src/format.h.
 *
 * Input: 4 bytes of salt (little-endian), 1 byte of options (bit 7 clear:
 * also walk the bytes as a segment image), then the bytes to decode.  Every
 * decoder sees the bytes (zero-padded to its fixed size when shorter), and
 * each checks its round trip:
 *
 *  - walrus__rec_check: a record that checks OK re-encodes (header fields
 *    through walrus__rec_header_encode) to the same 40 header bytes, its
 *    stored crc equals walrus__rec_crc(), and it fits in the bytes given;
 *    flipping any one byte of the checked record must make it fail.
 *  - walrus__rec_header_decode: an OK header re-encodes to the same bytes
 *    (crc aside) and respects the documented bounds.
 *  - walrus__meta_decode / walrus__fmt_seg_header_decode /
 *    walrus__trailer_decode: an OK object re-encodes to the same bytes.
 *  - walrus__fmt_seg_name_parse: a parsed name prints back to itself.
 *  - encode-then-decode of the fields the input spells is the identity.
 *
 * Builds with gcc too (tests/unit/test_fuzz_corpus.c replays the corpus);
 * helpers are static and prefixed fr_.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#define FR_CHECK(cond, ...)                                           \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "fuzz_record: check failed: %s: ", #cond);      \
      fprintf(stderr, __VA_ARGS__);                                   \
      fprintf(stderr, "\n");                                          \
      abort();                                                        \
    }                                                                 \
  } while (0)

static int fr_known(int rc) {
  return rc == WALRUS__FMT_OK || rc == WALRUS__FMT_BAD_MAGIC ||
         rc == WALRUS__FMT_BAD_VERSION || rc == WALRUS__FMT_BAD_CRC ||
         rc == WALRUS__FMT_BAD_FIELD;
}

/* Copy up to n bytes of in into a zero-padded fixed buffer. */
static void fr_fixed(unsigned char *out, size_t n, const uint8_t *in,
                     size_t len) {
  memset(out, 0, n);
  memcpy(out, in, len < n ? len : n);
}

static void fr_record(uint32_t salt, const uint8_t *buf, size_t len) {
  walrus__rec_t r;
  memset(&r, 0, sizeof r);
  /* walrus__rec_check reads exactly the bytes it is given: hand it a heap
   * copy of exactly len bytes so ASan sees any read past the end. */
  unsigned char *copy = malloc(len ? len : 1);
  FR_CHECK(copy != NULL, "malloc");
  if (len) memcpy(copy, buf, len);
  int rc = walrus__rec_check(salt, copy, len, &r);
  FR_CHECK(fr_known(rc), "rec_check returned %d", rc);
  if (rc == WALRUS__FMT_OK) {
    FR_CHECK(len >= WALRUS__REC_HEADER_BYTES, "OK with %zu bytes", len);
    FR_CHECK((uint64_t)r.body_len <= len - WALRUS__REC_HEADER_BYTES,
             "body %u beyond %zu bytes", r.body_len, len);
    FR_CHECK(r.txid_len <= r.body_len || (r.flags & WALRUS__REC_ZSTD),
             "txid %u > body %u", r.txid_len, r.body_len);
    FR_CHECK((r.flags & ~WALRUS__REC_KNOWN_FLAGS) == 0, "flags %#x",
             r.flags);
    FR_CHECK(r.index != 0, "index 0");
    unsigned char hdr[WALRUS__REC_HEADER_BYTES];
    walrus__rec_header_encode(hdr, &r);
    FR_CHECK(memcmp(hdr + 4, copy + 4, WALRUS__REC_HEADER_BYTES - 4) == 0,
             "record header does not re-encode to the same bytes");
    FR_CHECK(walrus__get32(hdr) == 0, "encode left crc %u",
             walrus__get32(hdr));
    FR_CHECK(walrus__rec_crc(salt, copy, copy + WALRUS__REC_HEADER_BYTES,
                             r.body_len) == r.crc,
             "stored crc differs from walrus__rec_crc");
    /* crc_start + crc32c over the body is what walrus__rec_crc computes;
     * encoding the crc into the header gives back the input. */
    walrus__put32(hdr, r.crc);
    FR_CHECK(memcmp(hdr, copy, WALRUS__REC_HEADER_BYTES) == 0,
             "header with crc differs");
    /* Any one changed byte of the covered record must be detected (a
     * CRC32C catches every error burst of up to 32 bits). */
    /* (Bytes 4..7, body_len, are left alone: changing the length changes
     * which bytes are covered, which a CRC does not promise to catch.) */
    size_t covered = WALRUS__REC_HEADER_BYTES + r.body_len;
    size_t at = (size_t)(r.crc % covered);
    if (at >= 4 && at < 8) at += 4;
    copy[at] ^= (unsigned char)(1u << (r.crc % 7));
    walrus__rec_t r2;
    int rc2 = walrus__rec_check(salt, copy, len, &r2);
    FR_CHECK(rc2 != WALRUS__FMT_OK,
             "a flipped bit at %zu of a checked record still checks", at);
    copy[at] ^= (unsigned char)(1u << (r.crc % 7));
    /* Another salt must not accept the same record. */
    rc2 = walrus__rec_check(salt ^ 0x80000000u, copy, len, &r2);
    FR_CHECK(rc2 != WALRUS__FMT_OK, "record checks under another salt");
  }
  free(copy);

  /* The header decoder on its own. */
  unsigned char h[WALRUS__REC_HEADER_BYTES];
  fr_fixed(h, sizeof h, buf, len);
  memset(&r, 0, sizeof r);
  rc = walrus__rec_header_decode(h, &r);
  FR_CHECK(fr_known(rc), "rec_header_decode returned %d", rc);
  if (rc == WALRUS__FMT_OK) {
    FR_CHECK(r.body_len <= WALRUS__BODY_MAX, "body_len %u", r.body_len);
    FR_CHECK(r.txid_len <= r.body_len || (r.flags & WALRUS__REC_ZSTD),
             "txid %u > body %u", r.txid_len, r.body_len);
    FR_CHECK(r.index != 0, "index 0");
    FR_CHECK(walrus__rec_size(r.body_len) % 8 == 0 &&
                 walrus__rec_size(r.body_len) >=
                     WALRUS__REC_HEADER_BYTES + (uint64_t)r.body_len,
             "rec_size");
    unsigned char e[WALRUS__REC_HEADER_BYTES];
    walrus__rec_header_encode(e, &r);
    FR_CHECK(memcmp(e + 4, h + 4, sizeof e - 4) == 0,
             "header does not re-encode");
    FR_CHECK(r.crc == walrus__get32(h), "crc field");
  }
}

static void fr_meta(const uint8_t *buf, size_t len) {
  unsigned char in[WALRUS__META_BYTES], out[WALRUS__META_BYTES];
  fr_fixed(in, sizeof in, buf, len);
  walrus__meta_t m;
  memset(&m, 0, sizeof m);
  int rc = walrus__meta_decode(in, &m);
  FR_CHECK(fr_known(rc), "meta_decode returned %d", rc);
  if (rc == WALRUS__FMT_OK) {
    FR_CHECK(m.first_index != 0 && m.log_id != 0, "meta fields");
    walrus__meta_encode(out, &m);
    FR_CHECK(memcmp(in, out, sizeof in) == 0, "META does not re-encode");
  }
  /* Encode the fields the bytes spell, then decode: identity. */
  memset(&m, 0, sizeof m);
  m.flags = in[0] & WALRUS__META_TRUNC_PENDING;
  m.log_id = walrus__get64(in + 8) | 1;
  m.prev_log_id = walrus__get64(in + 16);
  m.first_index = walrus__get64(in + 24) | 1;
  m.trunc_last = walrus__get64(in + 32);
  walrus__meta_encode(out, &m);
  walrus__meta_t m2;
  FR_CHECK(walrus__meta_decode(out, &m2) == WALRUS__FMT_OK,
           "encoded META does not decode");
  FR_CHECK(m2.flags == m.flags && m2.log_id == m.log_id &&
               m2.prev_log_id == m.prev_log_id &&
               m2.first_index == m.first_index &&
               m2.trunc_last == m.trunc_last,
           "META round trip");
}

static void fr_seg_header(const uint8_t *buf, size_t len) {
  unsigned char in[WALRUS__SEG_HEADER_BYTES], out[WALRUS__SEG_HEADER_BYTES];
  fr_fixed(in, sizeof in, buf, len);
  walrus__seg_header_t h;
  memset(&h, 0, sizeof h);
  int rc = walrus__fmt_seg_header_decode(in, &h);
  FR_CHECK(fr_known(rc), "seg_header_decode returned %d", rc);
  if (rc == WALRUS__FMT_OK) {
    FR_CHECK(h.first_index != 0 && h.log_id != 0, "header fields");
    walrus__fmt_seg_header_encode(out, &h);
    FR_CHECK(memcmp(in, out, sizeof in) == 0,
             "segment header does not re-encode");
  }
  memset(&h, 0, sizeof h);
  h.version = 1 + (in[8] & 1u);
  h.log_id = walrus__get64(in + 8) | 1;
  h.first_index = walrus__get64(in + 16) | 1;
  h.salt = walrus__get32(in + 24);
  h.created_ns = (int64_t)walrus__get64(in + 28);
  walrus__fmt_seg_header_encode(out, &h);
  walrus__seg_header_t h2;
  FR_CHECK(walrus__fmt_seg_header_decode(out, &h2) == WALRUS__FMT_OK,
           "encoded header does not decode");
  FR_CHECK(h2.version == h.version && h2.log_id == h.log_id &&
               h2.first_index == h.first_index && h2.salt == h.salt &&
               h2.created_ns == h.created_ns,
           "segment header round trip");
}

static void fr_trailer(uint32_t salt, const uint8_t *buf, size_t len) {
  unsigned char in[WALRUS__TRAILER_BYTES], out[WALRUS__TRAILER_BYTES];
  /* A trailer is the last 32 bytes of a segment: decode the input's tail
   * as well as its head. */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1 && len > sizeof in)
      fr_fixed(in, sizeof in, buf + len - sizeof in, sizeof in);
    else if (pass == 1)
      break;
    else
      fr_fixed(in, sizeof in, buf, len);
    walrus__trailer_t t;
    memset(&t, 0, sizeof t);
    int rc = walrus__trailer_decode(in, salt, &t);
    FR_CHECK(fr_known(rc), "trailer_decode returned %d", rc);
    if (rc == WALRUS__FMT_OK) {
      FR_CHECK(t.first_index != 0 && t.count != 0 &&
                   t.index_offset >= WALRUS__SEG_HEADER_BYTES,
               "trailer fields");
      walrus__trailer_encode(out, salt, &t);
      FR_CHECK(memcmp(in, out, sizeof in) == 0, "trailer does not re-encode");
      walrus__trailer_t t2;
      FR_CHECK(walrus__trailer_decode(in, salt ^ 1u, &t2) != WALRUS__FMT_OK,
               "trailer checks under another salt");
    }
  }
  walrus__trailer_t t;
  t.first_index = walrus__get64(in) | 1;
  t.count = walrus__get32(in + 8) | 1;
  t.index_offset = walrus__get32(in + 12) | WALRUS__SEG_HEADER_BYTES;
  walrus__trailer_encode(out, salt, &t);
  walrus__trailer_t t2;
  FR_CHECK(walrus__trailer_decode(out, salt, &t2) == WALRUS__FMT_OK,
           "encoded trailer does not decode");
  FR_CHECK(t2.first_index == t.first_index && t2.count == t.count &&
               t2.index_offset == t.index_offset,
           "trailer round trip");
}

static void fr_seg_name(const uint8_t *buf, size_t len) {
  char name[64];
  size_t n = len < sizeof name - 1 ? len : sizeof name - 1;
  memcpy(name, buf, n);
  name[n] = 0;
  uint64_t idx = 0;
  int ok = walrus__fmt_seg_name_parse(name, &idx);
  FR_CHECK(ok == 0 || ok == 1, "seg_name_parse returned %d", ok);
  if (ok) {
    FR_CHECK(idx != 0, "parsed index 0");
    char back[WALRUS__SEG_NAME_LEN + 1];
    walrus__fmt_seg_name(back, idx);
    FR_CHECK(strcmp(back, name) == 0, "name %s parses to %llu, prints %s",
             name, (unsigned long long)idx, back);
  }
  /* Every index prints to a name that parses back to it. */
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < len; i++) v |= (uint64_t)buf[i] << (8 * i);
  if (v != 0) {
    char nm[WALRUS__SEG_NAME_LEN + 1];
    walrus__fmt_seg_name(nm, v);
    uint64_t got = 0;
    FR_CHECK(walrus__fmt_seg_name_parse(nm, &got) == 1 && got == v,
             "seg_name %llu does not parse back", (unsigned long long)v);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  uint32_t salt = walrus__get32(data);
  unsigned sel = data[4];
  const uint8_t *buf = data + 5;
  size_t len = size - 5;
  /* Every decoder runs on the bytes.  When bit 7 of the selector is clear
   * the bytes are also walked as a segment image (header, then a record
   * at every 8-byte step, with the header's salt when it decodes), which
   * lets inputs made from whole segments exercise every record. */
  fr_record(salt, buf, len);
  if ((sel & 0x80u) == 0 && len > 64) {
    /* Walk a segment image: header, then records at 8-byte steps. */
    size_t off = WALRUS__SEG_HEADER_BYTES;
    walrus__seg_header_t h;
    unsigned char hb[WALRUS__SEG_HEADER_BYTES];
    fr_fixed(hb, sizeof hb, buf, len);
    uint32_t s = salt;
    if (walrus__fmt_seg_header_decode(hb, &h) == WALRUS__FMT_OK) s = h.salt;
    int steps = 0;
    while (off + WALRUS__REC_HEADER_BYTES <= len && steps++ < 256) {
      walrus__rec_t r;
      if (walrus__rec_check(s, buf + off, len - off, &r) == WALRUS__FMT_OK) {
        fr_record(s, buf + off, len - off);
        off += (size_t)walrus__rec_size(r.body_len);
      } else {
        off += 8;
      }
    }
  }
  fr_meta(buf, len);
  fr_seg_header(buf, len);
  fr_trailer(salt, buf, len);
  fr_seg_name(buf, len);
  return 0;
}
