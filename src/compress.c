/*
 * compress.c: the one file that calls zstd.  It compresses a unit's
 * content into one frame and decompresses a frame into exactly the length
 * its record says, nothing more (format.h: compressed units).  Built
 * without zstd (WALRUS_HAVE_ZSTD undefined), every function here says so:
 * walrus__zstd_built() is 0, contexts cannot be made, nothing compresses,
 * and nothing decompresses, so a compressed record is refused, never
 * misread.
 *
 * Contexts are the caller's: the writer keeps one compression context per
 * handle (used under wlock), a reader one decompression context per
 * iterator or per read call.  zstd allocates them with malloc.
 */
#include "internal.h"

#ifdef WALRUS_HAVE_ZSTD
#include <zstd.h>

int walrus__zstd_built(void) {
  return 1;
}

size_t walrus__zstd_bound(size_t n) {
  return ZSTD_compressBound(n);
}

void *walrus__zstd_cctx_new(void) {
  return ZSTD_createCCtx();
}

void walrus__zstd_cctx_free(void *cctx) {
  ZSTD_freeCCtx(cctx);
}

void *walrus__zstd_dctx_new(void) {
  return ZSTD_createDCtx();
}

void walrus__zstd_dctx_free(void *dctx) {
  ZSTD_freeDCtx(dctx);
}

size_t walrus__zstd_compress(void *cctx, void *dst, size_t cap, const void *src,
                             size_t n, int level) {
  size_t got = ZSTD_compressCCtx(cctx, dst, cap, src, n, level);
  return ZSTD_isError(got) ? 0 : got;
}

int walrus__zstd_decompress(void *dctx, void *dst, size_t n, const void *src,
                            size_t m) {
  /* One frame, exactly m bytes long, whose header (if it says) agrees on
   * n; the output is bounded by dst's n bytes whatever the frame claims. */
  if (ZSTD_findFrameCompressedSize(src, m) != m) return 0;
  unsigned long long said = ZSTD_getFrameContentSize(src, m);
  if (said == ZSTD_CONTENTSIZE_ERROR ||
      (said != ZSTD_CONTENTSIZE_UNKNOWN && said != n))
    return 0;
  size_t got = ZSTD_decompressDCtx(dctx, dst, n, src, m);
  return !ZSTD_isError(got) && got == n;
}

#else /* built without zstd */

int walrus__zstd_built(void) {
  return 0;
}

size_t walrus__zstd_bound(size_t n) {
  return n;
}

void *walrus__zstd_cctx_new(void) {
  return NULL;
}

void walrus__zstd_cctx_free(void *cctx) {
  (void)cctx;
}

void *walrus__zstd_dctx_new(void) {
  return NULL;
}

void walrus__zstd_dctx_free(void *dctx) {
  (void)dctx;
}

size_t walrus__zstd_compress(void *cctx, void *dst, size_t cap, const void *src,
                             size_t n, int level) {
  (void)cctx, (void)dst, (void)cap, (void)src, (void)n, (void)level;
  return 0;
}

int walrus__zstd_decompress(void *dctx, void *dst, size_t n, const void *src,
                            size_t m) {
  (void)dctx, (void)dst, (void)n, (void)src, (void)m;
  return 0;
}

#endif
