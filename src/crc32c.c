/*
 * crc32c.c: the CRC-32C (Castagnoli) implementations of walrus and the
 * run-time choice between them.
 *
 * This file owns three things:
 *
 *  - A portable slicing-by-8 software implementation that works on any CPU
 *    of either byte order.
 *  - A hardware implementation built on the CRC-32C instruction of SSE4.2
 *    (x86-64) or of the ARMv8 CRC extension (AArch64).  A CRC instruction has
 *    a latency of about three cycles but can start every cycle (or, on some
 *    CPUs, twice a cycle), so one dependent chain of them runs at a third of
 *    the possible speed.  Buffers are therefore checksummed in rounds of
 *    three adjacent blocks, each block its own independent stream, and the
 *    streams are merged using the linearity of the CRC: the CRC of A followed
 *    by B equals the CRC of A "shifted" over len(B) zero bytes, XORed with
 *    the CRC of B started from zero.  The shift over a fixed length is a
 *    linear map of 32 bits, which is computed once as a GF(2) matrix and then
 *    expanded into four 256-entry lookup tables.
 *
 *    The blocks are short (WALRUS__CRC32C_LONG bytes, then
 *    WALRUS__CRC32C_SHORT bytes for what is left), and every stream starts
 *    from zero so that no round waits for the merge of the one before.  This
 *    measured faster than long blocks: the three streams then read memory
 *    almost sequentially, which the hardware prefetchers follow well, and
 *    the CPU can overlap the streams of neighbouring rounds.
 *  - The dispatch: the first call builds the tables and detects the CPU
 *    under pthread_once(), then publishes the chosen implementation through
 *    an atomic function pointer, so later calls cost one load.
 *
 * Internally every implementation works on the raw CRC register, without the
 * initial and final inversion of the standard CRC-32C; the public functions
 * apply the inversions.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW_X86 1
#include <nmmintrin.h>
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW_ARM 1
#include <sys/auxv.h>
#if !defined(__clang__)
/*
 * Older GCC releases declare the CRC intrinsics only when the CRC extension
 * is enabled, so it is enabled around the include.
 */
#pragma GCC push_options
#pragma GCC target("+crc")
#include <arm_acle.h>
#pragma GCC pop_options
#endif
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

/* The CRC-32C polynomial 0x1EDC6F41 with its bits reversed. */
#define CRC32C_POLY 0x82F63B78u

/* An implementation updates the raw CRC register over len bytes at p. */
typedef uint32_t (*crc32c_fn)(uint32_t crc, const unsigned char *p, size_t len);

/*
 * A shift table maps a raw CRC register to the register it becomes after a
 * fixed number of zero bytes: the XOR of one entry per byte of the register.
 */
typedef struct crc32c_shift_table {
  uint32_t t[4][256];
} crc32c_shift_table;

/* sw_table[k][b] is the raw CRC of the byte b followed by k zero bytes. */
static uint32_t sw_table[8][256];

#if defined(CRC32C_HW_X86) || defined(CRC32C_HW_ARM)
/* These shift over WALRUS__CRC32C_LONG and WALRUS__CRC32C_SHORT bytes. */
static crc32c_shift_table shift_long;
static crc32c_shift_table shift_short;
#endif

static uint32_t crc32c_resolve(uint32_t crc, const unsigned char *p,
                               size_t len);

static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static _Atomic(crc32c_fn) crc32c_impl_fn = crc32c_resolve;
static int crc32c_use_hw;
static const char *crc32c_impl_name = "software";

/* ---- Portable software implementation ---- */

/* Loads 4 bytes as a little-endian value on a CPU of either byte order. */
static inline uint32_t load_le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

static void sw_build_tables(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; bit++) {
      crc = (crc & 1u) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
    }
    sw_table[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t crc = sw_table[0][b];
    for (int k = 1; k < 8; k++) {
      crc = (crc >> 8) ^ sw_table[0][crc & 0xffu];
      sw_table[k][b] = crc;
    }
  }
}

/*
 * Slicing-by-8: each step folds 8 message bytes into the register with eight
 * independent table lookups, one per byte, each table accounting for the
 * number of bytes that follow that byte within the step.
 */
static uint32_t sw_run(uint32_t crc, const unsigned char *p, size_t len) {
  while (len >= 8) {
    uint32_t lo = crc ^ load_le32(p);
    uint32_t hi = load_le32(p + 4);
    crc = sw_table[7][lo & 0xffu] ^ sw_table[6][(lo >> 8) & 0xffu] ^
          sw_table[5][(lo >> 16) & 0xffu] ^ sw_table[4][lo >> 24] ^
          sw_table[3][hi & 0xffu] ^ sw_table[2][(hi >> 8) & 0xffu] ^
          sw_table[1][(hi >> 16) & 0xffu] ^ sw_table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len > 0) {
    crc = (crc >> 8) ^ sw_table[0][(crc ^ *p) & 0xffu];
    p++;
    len--;
  }
  return crc;
}

/* ---- Shift operators as GF(2) matrices ---- */

#if defined(CRC32C_HW_X86) || defined(CRC32C_HW_ARM)

/*
 * A 32x32 matrix over GF(2) is stored as its 32 columns: column j is the
 * image of the vector with only bit j set.
 */
static uint32_t gf2_apply(const uint32_t mat[32], uint32_t vec) {
  uint32_t out = 0;
  for (int j = 0; vec != 0; j++, vec >>= 1) {
    if (vec & 1u) {
      out ^= mat[j];
    }
  }
  return out;
}

/* Sets out to the product a * b, the map that applies b first and then a. */
static void gf2_multiply(uint32_t out[32], const uint32_t a[32],
                         const uint32_t b[32]) {
  uint32_t tmp[32];
  for (int j = 0; j < 32; j++) {
    tmp[j] = gf2_apply(a, b[j]);
  }
  memcpy(out, tmp, sizeof(tmp));
}

/*
 * Fills table with the map that advances a raw CRC register over nbytes zero
 * bytes.  The map for one zero bit is read straight off the bitwise CRC
 * step; it is squared three times to cover a byte and then raised to the
 * power nbytes by repeated squaring.
 */
static void shift_build_table(crc32c_shift_table *table, size_t nbytes) {
  uint32_t power[32];
  uint32_t result[32];

  /* A zero bit moves every bit down by one and folds bit 0 into the
   * polynomial. */
  power[0] = CRC32C_POLY;
  for (int j = 1; j < 32; j++) {
    power[j] = 1u << (j - 1);
  }
  for (int i = 0; i < 3; i++) {
    gf2_multiply(power, power, power);
  }

  for (int j = 0; j < 32; j++) {
    result[j] = 1u << j;
  }
  while (nbytes != 0) {
    if (nbytes & 1u) {
      gf2_multiply(result, power, result);
    }
    nbytes >>= 1;
    if (nbytes != 0) {
      gf2_multiply(power, power, power);
    }
  }

  for (uint32_t k = 0; k < 4; k++) {
    for (uint32_t b = 0; b < 256; b++) {
      table->t[k][b] = gf2_apply(result, b << (8 * k));
    }
  }
}

/* Advances a raw CRC register over the table's number of zero bytes. */
static inline uint32_t shift_apply(const crc32c_shift_table *table,
                                   uint32_t crc) {
  return table->t[0][crc & 0xffu] ^ table->t[1][(crc >> 8) & 0xffu] ^
         table->t[2][(crc >> 16) & 0xffu] ^ table->t[3][crc >> 24];
}

/* ---- Hardware primitives ---- */

/*
 * Loads 8 bytes in memory order into a value whose least significant byte is
 * the first, which is the order the CRC instructions consume.
 */
static inline uint64_t load_le64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static inline uint32_t load_le32_hw(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}

static inline uint16_t load_le16_hw(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap16(v);
#endif
  return v;
}

#endif /* CRC32C_HW_X86 || CRC32C_HW_ARM */

#if defined(CRC32C_HW_X86)

#define HW_TARGET __attribute__((target("sse4.2")))
#define HW_NAME "sse4.2"

/*
 * The 64-bit step keeps the CRC in a 64-bit variable (the upper half is
 * always zero), so that a chain of steps needs no zero-extending moves.
 */
HW_TARGET static inline uint64_t hw_u64(uint64_t crc, uint64_t v) {
  return _mm_crc32_u64(crc, v);
}

HW_TARGET static inline uint32_t hw_u32(uint32_t crc, uint32_t v) {
  return _mm_crc32_u32(crc, v);
}

HW_TARGET static inline uint32_t hw_u16(uint32_t crc, uint16_t v) {
  return _mm_crc32_u16(crc, v);
}

HW_TARGET static inline uint32_t hw_u8(uint32_t crc, uint8_t v) {
  return _mm_crc32_u8(crc, v);
}

static int hw_detect(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

#elif defined(CRC32C_HW_ARM)

#define HW_NAME "armv8-crc"

#if defined(__clang__)
/*
 * Clang declares the ACLE CRC intrinsics only when the whole file is built
 * with the CRC extension, so its builtins are called directly instead.
 */
#define HW_TARGET __attribute__((target("crc")))

HW_TARGET static inline uint64_t hw_u64(uint64_t crc, uint64_t v) {
  return __builtin_arm_crc32cd((uint32_t)crc, v);
}

HW_TARGET static inline uint32_t hw_u32(uint32_t crc, uint32_t v) {
  return __builtin_arm_crc32cw(crc, v);
}

HW_TARGET static inline uint32_t hw_u16(uint32_t crc, uint16_t v) {
  return __builtin_arm_crc32ch(crc, v);
}

HW_TARGET static inline uint32_t hw_u8(uint32_t crc, uint8_t v) {
  return __builtin_arm_crc32cb(crc, v);
}
#else
#define HW_TARGET __attribute__((target("+crc")))

HW_TARGET static inline uint64_t hw_u64(uint64_t crc, uint64_t v) {
  return __crc32cd((uint32_t)crc, v);
}

HW_TARGET static inline uint32_t hw_u32(uint32_t crc, uint32_t v) {
  return __crc32cw(crc, v);
}

HW_TARGET static inline uint32_t hw_u16(uint32_t crc, uint16_t v) {
  return __crc32ch(crc, v);
}

HW_TARGET static inline uint32_t hw_u8(uint32_t crc, uint8_t v) {
  return __crc32cb(crc, v);
}
#endif

static int hw_detect(void) {
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
}

#endif

/* ---- Hardware implementation ---- */

#if defined(CRC32C_HW_X86) || defined(CRC32C_HW_ARM)

/*
 * Checksums rounds of three adjacent blocks of block bytes each while at
 * least three blocks remain.  The three blocks of a round are checksummed as
 * three independent streams, each started from zero, and then folded into
 * the running CRC one after the other: shift the CRC over one block, XOR in
 * that block's stream.  Because no stream waits for the previous round's
 * folding, the CRC instructions never stall on the table lookups, which
 * overlap with the next round.  block must be a multiple of 8 and table must
 * shift over block bytes.
 */
HW_TARGET static inline uint32_t hw_rounds(uint32_t crc,
                                           const unsigned char **pp,
                                           size_t *plen, size_t block,
                                           const crc32c_shift_table *table) {
  const unsigned char *p = *pp;
  size_t len = *plen;
  while (len >= 3 * block) {
    uint64_t crc0 = 0;
    uint64_t crc1 = 0;
    uint64_t crc2 = 0;
    for (size_t i = 0; i < block; i += 8) {
      crc0 = hw_u64(crc0, load_le64(p + i));
      crc1 = hw_u64(crc1, load_le64(p + block + i));
      crc2 = hw_u64(crc2, load_le64(p + 2 * block + i));
    }
    crc = shift_apply(table, crc) ^ (uint32_t)crc0;
    crc = shift_apply(table, crc) ^ (uint32_t)crc1;
    crc = shift_apply(table, crc) ^ (uint32_t)crc2;
    p += 3 * block;
    len -= 3 * block;
  }
  *pp = p;
  *plen = len;
  return crc;
}

/* A buffer of fewer than 16 bytes: the end of every run. */
HW_TARGET static inline uint32_t hw_short(uint32_t crc, const unsigned char *p,
                                          size_t len) {
  if (len >= 8) {
    crc = (uint32_t)hw_u64(crc, load_le64(p));
    p += 8;
  }
  if (len & 4u) {
    crc = hw_u32(crc, load_le32_hw(p));
    p += 4;
  }
  if (len & 2u) {
    crc = hw_u16(crc, load_le16_hw(p));
    p += 2;
  }
  if (len & 1u) crc = hw_u8(crc, *p);
  return crc;
}

HW_TARGET static uint32_t hw_run(uint32_t crc, const unsigned char *p,
                                 size_t len) {
  if (len >= 3 * WALRUS__CRC32C_SHORT) {
    crc = hw_rounds(crc, &p, &len, WALRUS__CRC32C_LONG, &shift_long);
    crc = hw_rounds(crc, &p, &len, WALRUS__CRC32C_SHORT, &shift_short);
  }
  /*
   * One chain handles the rest.  Four steps per iteration cut the loop
   * overhead, which matters when the CPU overlaps independent short calls
   * (a record's CRC after a cache miss).
   */
  uint64_t crc64 = crc;
  while (len >= 32) {
    crc64 = hw_u64(crc64, load_le64(p));
    crc64 = hw_u64(crc64, load_le64(p + 8));
    crc64 = hw_u64(crc64, load_le64(p + 16));
    crc64 = hw_u64(crc64, load_le64(p + 24));
    p += 32;
    len -= 32;
  }
  if (len >= 16) {
    crc64 = hw_u64(crc64, load_le64(p));
    crc64 = hw_u64(crc64, load_le64(p + 8));
    p += 16;
    len -= 16;
  }
  return hw_short((uint32_t)crc64, p, len);
}

/* The rest of one of hw_run4's buffers: a few bytes inline (records of
 * the same size end with the same short tail), hw_run for anything long. */
HW_TARGET static inline uint32_t hw_tail(uint32_t crc, const unsigned char *p,
                                         size_t len) {
  return len >= 16 ? hw_run(crc, p, len) : hw_short(crc, p, len);
}

/*
 * Four independent CRCs, their chains interleaved: the CRC instruction's
 * latency is three cycles and its throughput one, so four short buffers
 * (records) cost about what one does.  Raw registers, like hw_run.
 */
HW_TARGET static void hw_run4(uint32_t crc[4], const unsigned char *p[4],
                              size_t len[4]) {
  size_t m = len[0];
  for (int k = 1; k < 4; k++)
    if (len[k] < m) m = len[k];
  m &= ~(size_t)7;
  uint64_t c0 = crc[0], c1 = crc[1], c2 = crc[2], c3 = crc[3];
  for (size_t i = 0; i < m; i += 8) {
    c0 = hw_u64(c0, load_le64(p[0] + i));
    c1 = hw_u64(c1, load_le64(p[1] + i));
    c2 = hw_u64(c2, load_le64(p[2] + i));
    c3 = hw_u64(c3, load_le64(p[3] + i));
  }
  crc[0] = hw_tail((uint32_t)c0, p[0] + m, len[0] - m);
  crc[1] = hw_tail((uint32_t)c1, p[1] + m, len[1] - m);
  crc[2] = hw_tail((uint32_t)c2, p[2] + m, len[2] - m);
  crc[3] = hw_tail((uint32_t)c3, p[3] + m, len[3] - m);
}

#endif /* CRC32C_HW_X86 || CRC32C_HW_ARM */

/* ---- Dispatch ---- */

/*
 * Runs once, under pthread_once(): builds the tables, picks the fastest
 * implementation and publishes it.  The release store pairs with the acquire
 * loads of the callers, so a caller that sees the hardware implementation
 * also sees the finished tables.
 */
static void crc32c_init(void) {
  crc32c_fn chosen = sw_run;
  sw_build_tables();
#if defined(CRC32C_HW_X86) || defined(CRC32C_HW_ARM)
  if (hw_detect()) {
    shift_build_table(&shift_long, WALRUS__CRC32C_LONG);
    shift_build_table(&shift_short, WALRUS__CRC32C_SHORT);
    crc32c_use_hw = 1;
    crc32c_impl_name = HW_NAME;
    chosen = hw_run;
  }
#endif
  atomic_store_explicit(&crc32c_impl_fn, chosen, memory_order_release);
}

static void crc32c_ensure_init(void) {
  (void)pthread_once(&crc32c_once, crc32c_init);
}

/* The implementation that the first call finds: it resolves the real one. */
static uint32_t crc32c_resolve(uint32_t crc, const unsigned char *p,
                               size_t len) {
  crc32c_ensure_init();
  crc32c_fn fn = atomic_load_explicit(&crc32c_impl_fn, memory_order_acquire);
  return fn(crc, p, len);
}

uint32_t walrus__crc32c(uint32_t crc, const void *buf, size_t len) {
  if (len == 0) {
    return crc;
  }
  crc32c_fn fn = atomic_load_explicit(&crc32c_impl_fn, memory_order_acquire);
  return ~fn(~crc, (const unsigned char *)buf, len);
}

void walrus__crc32c_n(uint32_t seed, const unsigned char *const *p,
                      const size_t *len, uint32_t *out, int n) {
  crc32c_fn fn = atomic_load_explicit(&crc32c_impl_fn, memory_order_acquire);
#if defined(CRC32C_HW_X86) || defined(CRC32C_HW_ARM)
  if (fn == hw_run) {
    for (int k = 0; k < n; k += 4) {
      uint32_t c[4] = {~seed, ~seed, ~seed, ~seed};
      const unsigned char *q[4];
      size_t m[4];
      for (int j = 0; j < 4; j++) { /* pad with copies of the first */
        int r = k + j < n ? k + j : k;
        q[j] = p[r];
        m[j] = len[r];
      }
      hw_run4(c, q, m);
      for (int j = 0; j < 4 && k + j < n; j++) out[k + j] = ~c[j];
    }
    return;
  }
#endif
  (void)fn;
  for (int k = 0; k < n; k++) out[k] = walrus__crc32c(seed, p[k], len[k]);
}

uint32_t walrus__crc32c_sw(uint32_t crc, const void *buf, size_t len) {
  if (len == 0) {
    return crc;
  }
  crc32c_ensure_init();
  return ~sw_run(~crc, (const unsigned char *)buf, len);
}

int walrus__crc32c_hw(void) {
  crc32c_ensure_init();
  return crc32c_use_hw;
}

const char *walrus__crc32c_impl(void) {
  crc32c_ensure_init();
  return crc32c_impl_name;
}
