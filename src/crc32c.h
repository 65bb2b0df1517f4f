/*
 * crc32c.h: the internal CRC-32C (Castagnoli) checksum of walrus.
 *
 * This header owns the checksum API that every record, batch and segment
 * trailer uses.  The checksum is the standard CRC-32C: reflected polynomial
 * 0x82F63B78, initial value and final XOR of 0xFFFFFFFF, so that
 * walrus__crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * The functions extend a running checksum: pass 0 to start, then pass the
 * previous result to continue over the next piece of the same message.
 * Checksumming a message in pieces gives the same result as checksumming it
 * in one call.  Every function is safe to call from many threads at once;
 * the implementation is chosen once, at first use, from what the CPU offers.
 */
#ifndef WALRUS_CRC32C_H
#define WALRUS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * The hardware path checksums a buffer in rounds of three adjacent blocks,
 * run as three independent streams and then merged: rounds of blocks of
 * WALRUS__CRC32C_LONG bytes while at least three such blocks remain, then
 * rounds of blocks of WALRUS__CRC32C_SHORT bytes, then one stream for the
 * rest.  The sizes are shown here only so that the tests can aim at the
 * lengths around them.
 */
#define WALRUS__CRC32C_LONG 256
#define WALRUS__CRC32C_SHORT 64

/*
 * Extends crc (0 to start) over buf[0..len).  buf may be NULL when len is 0.
 * This uses the fastest implementation the CPU supports.
 */
uint32_t walrus__crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * n CRCs from one seed: out[k] = walrus__crc32c(seed, p[k], len[k]) for k
 * below n.  With the CRC instruction four chains run interleaved, so four
 * short buffers (records of one segment, whose CRCs all start from its
 * salt) cost about what one does.
 */
void walrus__crc32c_n(uint32_t seed, const unsigned char *const *p,
                      const size_t *len, uint32_t *out, int n);

/*
 * Does the same as walrus__crc32c() with the portable slicing-by-8 software
 * implementation, which is always available.
 */
uint32_t walrus__crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Returns 1 if walrus__crc32c() uses a hardware CRC instruction, else 0. */
int walrus__crc32c_hw(void);

/*
 * Names the implementation walrus__crc32c() uses: "sse4.2", "armv8-crc" or
 * "software".
 */
const char *walrus__crc32c_impl(void);

#endif /* WALRUS_CRC32C_H */
