/*
 * scan.c: reading records from a segment file in order, the one way
 * recovery, followers and iterators do it through pread.
 *
 * A window (walrus__window_t) holds a run of the file read ahead, so that
 * a step costs a decode and a checksum and, once per window, one pread.
 * walrus__scan_record() (inline in internal.h: every pread iterator step
 * runs it) reads the record at an offset through it: a whole header, which
 * must decode, then the whole record, whose CRC-32C must match.  It says what
 * it found instead (walrus__found_t), so that each caller can give damage its
 * own meaning: recovery tells a torn tail from corruption, a follower reports
 * ECORRUPT, an iterator ECHECKSUM.  What the record means (its index, its place
 * in a batch, a sync mark) is the caller's to judge.
 *
 * Mapped reads check records in place instead (iter.c, read.c, and
 * walrus__rec_view() in internal.h): there is no window to fill.  And
 * recovery's search for evidence past damage (classify() in recover.c)
 * tries a header at every 8-byte step instead of following records.
 */
#include <string.h>

#include "internal.h"

/* Make bytes [off, off + need) of f available and point *out at them,
 * reading ahead up to the window's capacity but never past limit.  Returns
 * WALRUS_OK with *out NULL if the file (or limit) ends first. */
int walrus__window_read(walrus_t *w, walrus__window_t *win,
                        walrus_vfs_file_t *f, const char *name, uint64_t off,
                        size_t need, uint64_t limit,
                        const unsigned char **out) {
  if (off >= win->off && off + need <= win->off + win->len) {
    *out = win->buf + (off - win->off);
    return WALRUS_OK;
  }
  *out = NULL;
  if (off > limit || need > limit - off) return WALRUS_OK;
  size_t want = need > 65536 ? need : 65536;
  if (want > limit - off) want = (size_t)(limit - off);
  if (want > win->cap) {
    unsigned char *p = walrus__realloc(w, win->buf, want);
    if (p == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "read buffer");
    win->buf = p;
    win->cap = want;
  }
  size_t got;
  win->len = 0;
  int rc = walrus__os_read(w, f, name, win->buf, want, off, &got);
  if (rc != WALRUS_OK) return rc;
  win->off = off;
  win->len = got;
  if (got >= need) *out = win->buf;
  return WALRUS_OK;
}

void walrus__window_free(walrus_t *w, walrus__window_t *win) {
  walrus__free(w, win->buf);
  win->buf = NULL;
  win->cap = win->len = 0;
}
