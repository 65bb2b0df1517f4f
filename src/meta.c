/*
 * meta.c: reading and replacing META, the small file that holds the log's
 * identity, its first index, and an unfinished truncate_back.
 *
 * META is never written in place.  A new version goes to META.tmp, is
 * fdatasync()ed, renamed over META, and the directory is fsync()ed: after
 * a crash at any point the directory holds the old META or the new one,
 * whole.  A leftover META.tmp is removed at open.
 */
#include <errno.h>

#include "internal.h"

/* Read META into *m.  *found is 0 (and WALRUS_OK returned) if there is no
 * META at all. */
int walrus__meta_read(walrus_t *w, walrus__meta_t *m, int *found) {
  unsigned char buf[WALRUS__META_BYTES];
  walrus_vfs_file_t *f;
  uint64_t size;
  int rc = walrus__os_try_open(w, "META", WALRUS_VFS_READ, &f);
  if (rc == -ENOENT) {
    *found = 0;
    return WALRUS_OK;
  }
  if (rc != 0) return walrus__os_open_failed(w, "META", rc);
  rc = walrus__os_size(w, f, "META", &size);
  if (rc == WALRUS_OK && size != WALRUS__META_BYTES)
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0, "%s/META: %llu bytes, not %u",
                      w->dir, (unsigned long long)size, WALRUS__META_BYTES);
  if (rc == WALRUS_OK)
    rc = walrus__os_read_full(w, f, "META", buf, sizeof buf, 0);
  walrus__os_close(w, f);
  if (rc != WALRUS_OK) return rc;
  switch (walrus__meta_decode(buf, m)) {
    case WALRUS__FMT_OK:
      *found = 1;
      return WALRUS_OK;
    case WALRUS__FMT_BAD_VERSION:
      return walrus__fail(w, WALRUS_EFORMAT, 0,
                          "%s/META: format version %u is not supported",
                          w->dir, walrus__get32(buf + 8));
    default:
      return walrus__fail(w, WALRUS_ECORRUPT, 0,
                          "%s/META: bad magic, checksum or field", w->dir);
  }
}

/* fdatasync META as it is.  A writable open calls it: META is only ever
 * replaced by a synced META.tmp, but the one found may have been put there
 * by anything. */
int walrus__meta_sync(walrus_t *w) {
  walrus_vfs_file_t *f;
  int rc = walrus__os_open(w, "META", WALRUS_VFS_READ, &f);
  if (rc != WALRUS_OK) return rc;
  rc = walrus__os_sync(w, f, "META");
  walrus__os_close(w, f);
  return rc;
}

/* Replace META with *m, durably.  On success w->store.meta is *m. */
int walrus__meta_write(walrus_t *w, const walrus__meta_t *m) {
  unsigned char buf[WALRUS__META_BYTES];
  walrus_vfs_file_t *f;
  int rc;
  walrus__meta_encode(buf, m);
  rc = walrus__os_unlink(w, "META.tmp");
  if (rc != WALRUS_OK) return rc;
  rc = walrus__os_open(w, "META.tmp", WALRUS_VFS_WRITE | WALRUS_VFS_CREATE,
                       &f);
  if (rc != WALRUS_OK) return rc;
  rc = walrus__os_write(w, f, "META.tmp", buf, sizeof buf, 0);
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, f, "META.tmp");
  walrus__os_close(w, f);
  if (rc == WALRUS_OK) rc = walrus__os_rename(w, "META.tmp", "META");
  if (rc == WALRUS_OK) rc = walrus__os_sync_dir(w);
  if (rc == WALRUS_OK) w->store.meta = *m;
  return rc;
}
