/*
 * format.c: encoding and decoding of META, segment headers, records and
 * trailers, as laid out in format.h and docs/FORMAT.md.  Pure functions:
 * no I/O, no allocation, safe on arbitrary input bytes.
 */
#include "format.h"

#include <stdio.h>

#include "crc32c.h"

static const char META_MAGIC[8] = {'W', 'A', 'L', 'R', 'U', 'S', 'M', 'T'};
static const char SEG_MAGIC[8] = {'W', 'A', 'L', 'R', 'U', 'S', 'S', 'G'};
static const char TRAILER_MAGIC[8] = {'W', 'A', 'L', 'R', 'U', 'S', 'T', 'R'};

void walrus__meta_encode(unsigned char out[WALRUS__META_BYTES],
                         const walrus__meta_t *m) {
  memset(out, 0, WALRUS__META_BYTES);
  memcpy(out, META_MAGIC, 8);
  walrus__put32(out + 8, WALRUS__FORMAT_VERSION);
  walrus__put32(out + 12, m->flags);
  walrus__put64(out + 16, m->log_id);
  walrus__put64(out + 24, m->prev_log_id);
  walrus__put64(out + 32, m->first_index);
  walrus__put64(out + 40, m->trunc_last);
  walrus__put32(out + 52, walrus__crc32c(0, out, 52));
}

int walrus__meta_decode(const unsigned char in[WALRUS__META_BYTES],
                        walrus__meta_t *m) {
  if (memcmp(in, META_MAGIC, 8) != 0) return WALRUS__FMT_BAD_MAGIC;
  if (walrus__get32(in + 52) != walrus__crc32c(0, in, 52))
    return WALRUS__FMT_BAD_CRC;
  if (walrus__get32(in + 8) != WALRUS__FORMAT_VERSION)
    return WALRUS__FMT_BAD_VERSION;
  m->flags = walrus__get32(in + 12);
  m->log_id = walrus__get64(in + 16);
  m->prev_log_id = walrus__get64(in + 24);
  m->first_index = walrus__get64(in + 32);
  m->trunc_last = walrus__get64(in + 40);
  if ((m->flags & ~WALRUS__META_TRUNC_PENDING) != 0 || m->first_index == 0 ||
      m->log_id == 0 || walrus__get32(in + 48) != 0)
    return WALRUS__FMT_BAD_FIELD;
  return WALRUS__FMT_OK;
}

void walrus__fmt_seg_header_encode(unsigned char out[WALRUS__SEG_HEADER_BYTES],
                                   const walrus__seg_header_t *h) {
  memset(out, 0, WALRUS__SEG_HEADER_BYTES);
  memcpy(out, SEG_MAGIC, 8);
  walrus__put32(out + 8, h->version);
  walrus__put32(out + 12, WALRUS__SEG_HEADER_BYTES);
  walrus__put64(out + 16, h->log_id);
  walrus__put64(out + 24, h->first_index);
  walrus__put32(out + 32, h->salt);
  walrus__put64(out + 40, (uint64_t)h->created_ns);
  walrus__put32(out + 60, walrus__crc32c(0, out, 60));
}

int walrus__fmt_seg_header_decode(
    const unsigned char in[WALRUS__SEG_HEADER_BYTES], walrus__seg_header_t *h) {
  if (memcmp(in, SEG_MAGIC, 8) != 0) return WALRUS__FMT_BAD_MAGIC;
  if (walrus__get32(in + 60) != walrus__crc32c(0, in, 60))
    return WALRUS__FMT_BAD_CRC;
  h->version = walrus__get32(in + 8);
  if (h->version != WALRUS__FORMAT_VERSION &&
      h->version != WALRUS__SEG_VERSION_ZSTD)
    return WALRUS__FMT_BAD_VERSION;
  if (walrus__get32(in + 12) != WALRUS__SEG_HEADER_BYTES)
    return WALRUS__FMT_BAD_FIELD;
  h->log_id = walrus__get64(in + 16);
  h->first_index = walrus__get64(in + 24);
  h->salt = walrus__get32(in + 32);
  h->created_ns = (int64_t)walrus__get64(in + 40);
  if (h->first_index == 0 || h->log_id == 0 || walrus__get32(in + 36) != 0)
    return WALRUS__FMT_BAD_FIELD;
  for (int i = 48; i < 60; i++)
    if (in[i] != 0) return WALRUS__FMT_BAD_FIELD; /* reserved: zero */
  return WALRUS__FMT_OK;
}

void walrus__rec_header_encode(unsigned char out[WALRUS__REC_HEADER_BYTES],
                               const walrus__rec_t *r) {
  walrus__put32(out, 0);
  walrus__put32(out + 4, r->body_len);
  walrus__put64(out + 8, r->index);
  walrus__put64(out + 16, r->term);
  walrus__put64(out + 24, (uint64_t)r->timestamp_ns);
  walrus__put16(out + 32, r->type);
  out[34] = r->flags;
  out[35] = r->txid_len;
  walrus__put32(out + 36, r->epoch);
}

int walrus__rec_header_decode(const unsigned char in[WALRUS__REC_HEADER_BYTES],
                              walrus__rec_t *r) {
  r->crc = walrus__get32(in);
  r->body_len = walrus__get32(in + 4);
  r->index = walrus__get64(in + 8);
  r->term = walrus__get64(in + 16);
  r->timestamp_ns = (int64_t)walrus__get64(in + 24);
  r->type = walrus__get16(in + 32);
  r->flags = in[34];
  r->txid_len = in[35];
  r->epoch = walrus__get32(in + 36);
  if ((r->flags & ~WALRUS__REC_KNOWN_FLAGS) != 0) return WALRUS__FMT_BAD_FIELD;
  if (r->body_len > WALRUS__BODY_MAX) return WALRUS__FMT_BAD_FIELD;
  if (r->flags & WALRUS__REC_ZSTD) {
    if ((r->flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)) != 0 ||
        ((r->flags & WALRUS__REC_FIRST) ? r->body_len < WALRUS__ZHEAD_BYTES
                                        : r->body_len != 0))
      return WALRUS__FMT_BAD_FIELD;
  } else if (r->txid_len > r->body_len) {
    return WALRUS__FMT_BAD_FIELD;
  }
  if (r->index == 0) return WALRUS__FMT_BAD_FIELD;
  return WALRUS__FMT_OK;
}

uint32_t walrus__salt_seed(uint32_t salt) {
  unsigned char s[4];
  walrus__put32(s, salt);
  return walrus__crc32c(0, s, 4);
}

uint32_t walrus__rec_crc_start(
    uint32_t salt, const unsigned char hdr[WALRUS__REC_HEADER_BYTES]) {
  unsigned char s[4];
  walrus__put32(s, salt);
  uint32_t crc = walrus__crc32c(0, s, 4);
  return walrus__crc32c(crc, hdr + 4, WALRUS__REC_HEADER_BYTES - 4);
}

uint32_t walrus__rec_crc(uint32_t salt,
                         const unsigned char hdr[WALRUS__REC_HEADER_BYTES],
                         const void *body, size_t body_len) {
  if ((const unsigned char *)body == hdr + WALRUS__REC_HEADER_BYTES) {
    /* Header and body side by side (a mapping, a window): one pass. */
    unsigned char s[4];
    walrus__put32(s, salt);
    return walrus__crc32c(walrus__crc32c(0, s, 4), hdr + 4,
                          WALRUS__REC_HEADER_BYTES - 4 + body_len);
  }
  return walrus__crc32c(walrus__rec_crc_start(salt, hdr), body, body_len);
}

int walrus__rec_check(uint32_t salt, const unsigned char *buf, size_t avail,
                      walrus__rec_t *r) {
  if (avail < WALRUS__REC_HEADER_BYTES) return WALRUS__FMT_BAD_FIELD;
  int rc = walrus__rec_header_decode(buf, r);
  if (rc != WALRUS__FMT_OK) return rc;
  if (r->body_len > avail - WALRUS__REC_HEADER_BYTES)
    return WALRUS__FMT_BAD_FIELD;
  if (walrus__rec_crc(salt, buf, buf + WALRUS__REC_HEADER_BYTES, r->body_len) !=
      r->crc)
    return WALRUS__FMT_BAD_CRC;
  return WALRUS__FMT_OK;
}

void walrus__trailer_encode(unsigned char out[WALRUS__TRAILER_BYTES],
                            uint32_t salt, const walrus__trailer_t *t) {
  unsigned char s[4];
  memset(out, 0, WALRUS__TRAILER_BYTES);
  memcpy(out, TRAILER_MAGIC, 8);
  walrus__put64(out + 8, t->first_index);
  walrus__put32(out + 16, t->count);
  walrus__put32(out + 20, t->index_offset);
  walrus__put32(s, salt);
  walrus__put32(out + 28, walrus__crc32c(walrus__crc32c(0, s, 4), out, 28));
}

int walrus__trailer_decode(const unsigned char in[WALRUS__TRAILER_BYTES],
                           uint32_t salt, walrus__trailer_t *t) {
  unsigned char s[4];
  if (memcmp(in, TRAILER_MAGIC, 8) != 0) return WALRUS__FMT_BAD_MAGIC;
  walrus__put32(s, salt);
  if (walrus__get32(in + 28) != walrus__crc32c(walrus__crc32c(0, s, 4), in, 28))
    return WALRUS__FMT_BAD_CRC;
  t->first_index = walrus__get64(in + 8);
  t->count = walrus__get32(in + 16);
  t->index_offset = walrus__get32(in + 20);
  if (walrus__get32(in + 24) != 0 || t->first_index == 0 || t->count == 0 ||
      t->index_offset < WALRUS__SEG_HEADER_BYTES)
    return WALRUS__FMT_BAD_FIELD;
  return WALRUS__FMT_OK;
}

static const unsigned char durable_magic[8] = {'W', 'A', 'L', 'R',
                                               'U', 'S', 'D', 'R'};

void walrus__durable_encode(unsigned char out[WALRUS__DURABLE_BYTES],
                            const walrus__durable_t *d) {
  memset(out, 0, WALRUS__DURABLE_BYTES);
  memcpy(out, durable_magic, 8);
  walrus__put32(out + 8, 1); /* version */
  walrus__put64(out + 16, d->log_id);
  walrus__put64(out + 24, d->durable_next);
  walrus__put64(out + 32, d->first_index);
  walrus__put64(out + 40, d->gen);
  walrus__put32(out + 12,
                walrus__crc32c(0, out + 16, WALRUS__DURABLE_BYTES - 16));
}

int walrus__durable_decode(const unsigned char in[WALRUS__DURABLE_BYTES],
                           walrus__durable_t *d) {
  if (memcmp(in, durable_magic, 8) != 0 || walrus__get32(in + 8) != 1 ||
      walrus__get32(in + 12) !=
          walrus__crc32c(0, in + 16, WALRUS__DURABLE_BYTES - 16))
    return 0;
  d->log_id = walrus__get64(in + 16);
  d->durable_next = walrus__get64(in + 24);
  d->first_index = walrus__get64(in + 32);
  d->gen = walrus__get64(in + 40);
  return 1;
}

void walrus__fmt_seg_name(char out[WALRUS__SEG_NAME_LEN + 1],
                          uint64_t first_index) {
  snprintf(out, WALRUS__SEG_NAME_LEN + 1, "%020llu.seg",
           (unsigned long long)first_index);
}

int walrus__fmt_seg_name_parse(const char *name, uint64_t *first_index) {
  uint64_t v = 0;
  if (strlen(name) != WALRUS__SEG_NAME_LEN) return 0;
  if (strcmp(name + WALRUS__SEG_NAME_DIGITS, ".seg") != 0) return 0;
  for (int i = 0; i < WALRUS__SEG_NAME_DIGITS; i++) {
    unsigned d = (unsigned)(name[i] - '0');
    if (d > 9) return 0;
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (v == 0) return 0;
  *first_index = v;
  return 1;
}
