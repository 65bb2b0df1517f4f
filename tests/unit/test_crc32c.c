/*
 * test_crc32c.c: unit tests for src/crc32c.c, the CRC-32C checksum.
 *
 * This file owns the checks that the checksum matches the published CRC-32C
 * vectors, that the hardware and software implementations agree with each
 * other and with a bit-at-a-time reference written here, that checksumming
 * in pieces equals checksumming at once, that the three-stream merge of the
 * hardware path is right around every length where it starts or stops
 * applying, that several at once (walrus__crc32c_n) equals one at a
 * time, and that the first use is safe from many threads at once.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#define LONG3 (3 * (size_t)WALRUS__CRC32C_LONG)
#define SHORT3 (3 * (size_t)WALRUS__CRC32C_SHORT)

/* Computes CRC-32C one bit at a time, straight from its definition. */
static uint32_t ref_crc32c(uint32_t crc, const unsigned char *p, size_t len) {
  crc = ~crc;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    for (int bit = 0; bit < 8; bit++) {
      crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
  }
  return ~crc;
}

/* Fills buf with reproducible pseudo-random bytes (xorshift64). */
static void fill_random(unsigned char *buf, size_t len, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)(x >> 32);
  }
}

static unsigned char *alloc_random(size_t len, uint64_t seed) {
  unsigned char *buf = malloc(len);
  cr_assert_not_null(buf);
  fill_random(buf, len, seed);
  return buf;
}

/* Checks one vector against the hardware, software and reference paths. */
static void check_vector(const char *name, const void *buf, size_t len,
                         uint32_t want) {
  cr_expect_eq(walrus__crc32c(0, buf, len), want,
               "%s: walrus__crc32c gave %08x, want %08x", name,
               walrus__crc32c(0, buf, len), want);
  cr_expect_eq(walrus__crc32c_sw(0, buf, len), want,
               "%s: walrus__crc32c_sw gave %08x, want %08x", name,
               walrus__crc32c_sw(0, buf, len), want);
  cr_expect_eq(ref_crc32c(0, buf, len), want,
               "%s: reference gave %08x, want %08x", name,
               ref_crc32c(0, buf, len), want);
}

Test(crc32c, check_string) {
  check_vector("123456789", "123456789", 9, 0xE3069283u);
}

/* The vectors of RFC 3720 (iSCSI), appendix B.4. */
Test(crc32c, rfc3720_vectors) {
  unsigned char buf[32];

  memset(buf, 0x00, sizeof(buf));
  check_vector("32 x 0x00", buf, sizeof(buf), 0x8A9136AAu);

  memset(buf, 0xFF, sizeof(buf));
  check_vector("32 x 0xFF", buf, sizeof(buf), 0x62A8AB43u);

  for (int i = 0; i < 32; i++) {
    buf[i] = (unsigned char)i;
  }
  check_vector("ascending 0..31", buf, sizeof(buf), 0x46DD794Eu);

  for (int i = 0; i < 32; i++) {
    buf[i] = (unsigned char)(31 - i);
  }
  check_vector("descending 31..0", buf, sizeof(buf), 0x113FDB5Cu);
}

/* The 48-byte iSCSI read command PDU of RFC 3720 B.4 (also RFC 7143 A.4). */
Test(crc32c, rfc3720_read_pdu) {
  static const unsigned char pdu[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  check_vector("iSCSI read PDU", pdu, sizeof(pdu), 0xD9963A56u);
}

Test(crc32c, empty_input) {
  cr_expect_eq(walrus__crc32c(0, NULL, 0), 0u);
  cr_expect_eq(walrus__crc32c_sw(0, NULL, 0), 0u);
  cr_expect_eq(walrus__crc32c(0xDEADBEEFu, NULL, 0), 0xDEADBEEFu);
  cr_expect_eq(walrus__crc32c_sw(0xDEADBEEFu, "x", 0), 0xDEADBEEFu);
}

Test(crc32c, impl_is_consistent) {
  const char *impl = walrus__crc32c_impl();
  int hw = walrus__crc32c_hw();
  cr_assert_not_null(impl);
  if (hw) {
    cr_expect(strcmp(impl, "sse4.2") == 0 || strcmp(impl, "armv8-crc") == 0,
              "hardware path named \"%s\"", impl);
  } else {
    cr_expect_str_eq(impl, "software");
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) {
    cr_expect_eq(hw, 1, "SSE4.2 is present but not used");
    cr_expect_str_eq(impl, "sse4.2");
  }
#endif
}

/* Every length 0..1024 at every alignment 0..15, against both other paths. */
Test(crc32c, all_short_lengths_and_alignments) {
  enum { MAXLEN = 1024, MAXALIGN = 16 };
  unsigned char *buf = alloc_random(MAXLEN + MAXALIGN + 64, 1);
  /* Start from a 64-byte boundary so that each offset is a real alignment. */
  unsigned char *base =
      buf + ((64 - ((uintptr_t)buf & 63u)) & 63u);
  for (size_t align = 0; align < MAXALIGN; align++) {
    for (size_t len = 0; len <= MAXLEN; len++) {
      const unsigned char *p = base + align;
      uint32_t seed = (uint32_t)(len * 2654435761u);
      uint32_t hw = walrus__crc32c(seed, p, len);
      uint32_t sw = walrus__crc32c_sw(seed, p, len);
      uint32_t ref = ref_crc32c(seed, p, len);
      if (hw != sw || sw != ref) {
        cr_assert_fail("len %zu align %zu: hw %08x sw %08x ref %08x", len,
                       align, hw, sw, ref);
      }
    }
  }
  free(buf);
}

/* Compares the paths on one length at a few alignments. */
static void check_long(const unsigned char *base, size_t len, int with_ref) {
  static const size_t aligns[] = {0, 1, 3, 7, 8, 13};
  for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
    const unsigned char *p = base + aligns[i];
    uint32_t hw = walrus__crc32c(0x12345678u, p, len);
    uint32_t sw = walrus__crc32c_sw(0x12345678u, p, len);
    if (hw != sw) {
      cr_assert_fail("len %zu align %zu: hw %08x sw %08x", len, aligns[i], hw,
                     sw);
    }
    if (with_ref) {
      uint32_t ref = ref_crc32c(0x12345678u, p, len);
      cr_assert_eq(sw, ref, "len %zu align %zu: sw %08x ref %08x", len,
                   aligns[i], sw, ref);
    }
  }
}

Test(crc32c, large_lengths) {
  size_t max = (1u << 20) + 13;
  unsigned char *buf = alloc_random(max + 16, 2);
  check_long(buf, max, 1);
  check_long(buf, 1u << 20, 0);
  check_long(buf, 65536 + 3, 0);
  check_long(buf, 4096, 0);
  check_long(buf, 100000, 0);
  free(buf);
}

/*
 * Lengths just below, at and above each point where a round of three
 * streams starts or ends, for both block sizes and for mixes of them.  A
 * wrong shift table or a wrong merge order makes the hardware path disagree
 * with the software one here.
 */
Test(crc32c, lengths_straddling_stream_thresholds) {
  const size_t points[] = {
      SHORT3,
      2 * SHORT3,
      3 * SHORT3,
      LONG3,
      LONG3 + SHORT3,
      LONG3 + 3 * SHORT3,
      2 * LONG3,
      2 * LONG3 + 2 * SHORT3,
      7 * LONG3,
      7 * LONG3 + SHORT3,
      64 * LONG3,
      64 * LONG3 + 3 * SHORT3,
  };
  size_t max = 64 * LONG3 + 3 * SHORT3 + 64;
  unsigned char *buf = alloc_random(max + 16, 3);
  for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
    for (size_t len = points[i] - 17; len <= points[i] + 17; len++) {
      check_long(buf, len, len % 5 == 0);
    }
  }
  free(buf);
}

/*
 * Flips one bit at every byte of a buffer that takes both kinds of rounds:
 * the result must still match the software path and must change, since a
 * CRC detects every single-bit error.
 */
Test(crc32c, single_bit_in_every_stream) {
  size_t len = 2 * LONG3 + 2 * SHORT3 + 5;
  unsigned char *buf = alloc_random(len, 4);
  uint32_t clean = walrus__crc32c(0, buf, len);
  cr_assert_eq(clean, walrus__crc32c_sw(0, buf, len));
  for (size_t pos = 0; pos < len; pos++) {
    unsigned char mask = (unsigned char)(1u << (pos % 8));
    buf[pos] ^= mask;
    uint32_t hw = walrus__crc32c(0, buf, len);
    uint32_t sw = walrus__crc32c_sw(0, buf, len);
    buf[pos] ^= mask;
    if (hw != sw || hw == clean) {
      cr_assert_fail("bit at byte %zu: hw %08x sw %08x clean %08x", pos, hw,
                     sw, clean);
    }
  }
  free(buf);
}

/* Splitting a 300-byte buffer at every point gives the one-shot result. */
Test(crc32c, incremental_every_split) {
  enum { LEN = 300 };
  unsigned char buf[LEN];
  fill_random(buf, LEN, 5);
  uint32_t whole = walrus__crc32c(0, buf, LEN);
  cr_assert_eq(whole, ref_crc32c(0, buf, LEN));
  for (size_t cut = 0; cut <= LEN; cut++) {
    uint32_t hw = walrus__crc32c(walrus__crc32c(0, buf, cut), buf + cut,
                                 LEN - cut);
    uint32_t sw = walrus__crc32c_sw(walrus__crc32c_sw(0, buf, cut),
                                    buf + cut, LEN - cut);
    cr_assert_eq(hw, whole, "hw split at %zu: %08x, want %08x", cut, hw,
                 whole);
    cr_assert_eq(sw, whole, "sw split at %zu: %08x, want %08x", cut, sw,
                 whole);
  }
}

/*
 * Splits a long buffer into three pieces at points around the thresholds,
 * so that rounds of three streams start from a non-zero CRC.
 */
Test(crc32c, incremental_long_pieces) {
  size_t len = 9 * LONG3 + SHORT3 + 77;
  unsigned char *buf = alloc_random(len, 6);
  uint32_t whole = walrus__crc32c_sw(0, buf, len);
  cr_assert_eq(whole, walrus__crc32c(0, buf, len));
  const size_t cuts[] = {1,          7,          8,
                         SHORT3 - 1, SHORT3,     SHORT3 + 3,
                         LONG3 - 5,  LONG3,      LONG3 + 11,
                         2 * LONG3,  5 * LONG3 + SHORT3 + 1,
                         len - LONG3 - 8, len - SHORT3, len - 1};
  size_t ncuts = sizeof(cuts) / sizeof(cuts[0]);
  for (size_t i = 0; i < ncuts; i++) {
    for (size_t j = i; j < ncuts; j++) {
      size_t a = cuts[i];
      size_t b = cuts[j];
      uint32_t crc = walrus__crc32c(0, buf, a);
      crc = walrus__crc32c(crc, buf + a, b - a);
      crc = walrus__crc32c(crc, buf + b, len - b);
      cr_assert_eq(crc, whole, "cuts %zu,%zu: %08x, want %08x", a, b, crc,
                   whole);
    }
  }
  free(buf);
}

/*
 * Many threads make their first call at the same moment; each test runs in
 * a fresh process, so this is the real first use.
 */
enum { NTHREADS = 8 };

struct thread_arg {
  pthread_barrier_t *barrier;
  const unsigned char *buf;
  size_t len;
  uint32_t got_check;
  uint32_t got_long;
};

static void *thread_main(void *varg) {
  struct thread_arg *arg = varg;
  pthread_barrier_wait(arg->barrier);
  arg->got_check = walrus__crc32c(0, "123456789", 9);
  arg->got_long = walrus__crc32c(0, arg->buf, arg->len);
  return NULL;
}

/* Several buffers at once, of mixed and equal lengths and alignments,
 * each equal to its own CRC from the reference. */
Test(crc32c, n_at_once_equal_one_at_a_time) {
  static unsigned char buf[9 * 600];
  fill_random(buf, sizeof buf, 77);
  const size_t shapes[][9] = {
      {164, 164, 164, 164, 164, 164, 164, 164, 164},
      {0, 1, 7, 8, 15, 16, 31, 32, 33},
      {600, 3, 200, 45, 1, 599, 64, 100, 9},
      {40, 41, 42, 43, 44, 45, 46, 47, 48},
  };
  for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
    for (int n = 0; n <= 9; n++) {
      const unsigned char *p[9];
      size_t len[9];
      uint32_t out[9], want[9];
      uint32_t seed = 0x9E3779B9u * (uint32_t)(sh + 1) + (uint32_t)n;
      for (int k = 0; k < 9; k++) {
        p[k] = buf + 600 * (size_t)k + (size_t)((k * 3 + n) % 8);
        len[k] = shapes[sh][k] > 592 ? 592 : shapes[sh][k];
        want[k] = ref_crc32c(seed, p[k], len[k]);
        out[k] = 0xDEADBEEF;
      }
      walrus__crc32c_n(seed, p, len, out, n);
      for (int k = 0; k < n; k++)
        cr_assert_eq(out[k], want[k], "shape %zu, n %d, buffer %d", sh, n, k);
      for (int k = n; k < 9; k++)
        cr_assert_eq(out[k], 0xDEADBEEF, "n %d wrote out[%d]", n, k);
    }
  }
}

Test(crc32c, concurrent_first_use) {
  size_t len = 100 * LONG3 + SHORT3 + 3;
  unsigned char *buf = alloc_random(len, 7);
  uint32_t want = ref_crc32c(0, buf, len);
  pthread_barrier_t barrier;
  pthread_t threads[NTHREADS];
  struct thread_arg args[NTHREADS];
  cr_assert_eq(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);
  for (int i = 0; i < NTHREADS; i++) {
    args[i] = (struct thread_arg){&barrier, buf, len, 0, 0};
    cr_assert_eq(pthread_create(&threads[i], NULL, thread_main, &args[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    cr_assert_eq(pthread_join(threads[i], NULL), 0);
    cr_expect_eq(args[i].got_check, 0xE3069283u);
    cr_expect_eq(args[i].got_long, want);
  }
  pthread_barrier_destroy(&barrier);
  free(buf);
}
