/*
 * store.c: DIR/state and DIR/snapshot of a walrus-raft node: atomic file
 * replacement through the log's VFS table, and the byte layouts described
 * in store.h (state, snapshot, configuration).  Nothing here knows about
 * the event loop or the writer thread.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian fields ---------------------------------------------- */

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/*
 * CRC32C, reflected polynomial 0x82F63B78, one table of 256 built on first
 * use.  These files are small and written rarely, so the plain byte-wise
 * loop is fast enough; the log itself uses walrus's own checksums.
 */
uint32_t wr_crc32c(uint32_t crc, const void *buf, size_t len) {
  static uint32_t table[256];
  static int ready;
  const unsigned char *p = buf;
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
  }
  crc = ~crc;
  while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ---- files ------------------------------------------------------------- */

static void why_set(char *why, size_t whylen, const char *step,
                    const char *path, int err) {
  if (why != NULL && whylen > 0)
    snprintf(why, whylen, "%s %s: %s", step, path, strerror(-err));
}

int wr_file_replace(const walrus_vfs_t *vfs, const char *dir,
                    const char *name, const void *buf, size_t len,
                    char *why, size_t whylen) {
  char tmp[4200], dst[4200];
  walrus_vfs_file_t *f = NULL;
  int rc, code;
  if ((size_t)snprintf(dst, sizeof dst, "%s/%s", dir, name) >= sizeof dst ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= sizeof tmp)
    return WALRUS_EINVAL;
  /* A leftover from a crash in the middle of an earlier replacement. */
  rc = vfs->unlink(vfs->ctx, tmp);
  if (rc < 0 && rc != -ENOENT) {
    why_set(why, whylen, "unlink", tmp, rc);
    return WALRUS_EIO;
  }
  rc = vfs->open(vfs->ctx, tmp, WALRUS_VFS_WRITE | WALRUS_VFS_CREATE, &f);
  if (rc < 0) {
    why_set(why, whylen, "create", tmp, rc);
    return rc == -ENOSPC ? WALRUS_ENOSPC : WALRUS_EIO;
  }
  rc = vfs->pwrite(vfs->ctx, f, buf, len, 0);
  if (rc < 0) {
    why_set(why, whylen, "write", tmp, rc);
    code = (rc == -ENOSPC || rc == -EDQUOT) ? WALRUS_ENOSPC : WALRUS_EIO_WRITE;
    goto fail;
  }
  /* The new bytes must be durable before the rename makes them the file:
   * a rename that reaches the disk first would show a short or empty file
   * after a power loss (ext4 without auto_da_alloc, XFS). */
  rc = vfs->sync(vfs->ctx, f);
  if (rc < 0) {
    why_set(why, whylen, "fdatasync", tmp, rc);
    code = WALRUS_EIO_FSYNC;
    goto fail;
  }
  rc = vfs->close(vfs->ctx, f);
  f = NULL;
  if (rc < 0) {
    why_set(why, whylen, "close", tmp, rc);
    code = WALRUS_EIO;
    goto fail;
  }
  rc = vfs->rename(vfs->ctx, tmp, dst);
  if (rc < 0) {
    why_set(why, whylen, "rename", tmp, rc);
    code = WALRUS_EIO;
    goto fail;
  }
  /* The rename itself lives in the directory: fsync it, or a power loss
   * may bring the old file back after the call returned. */
  rc = vfs->sync_dir(vfs->ctx, dir);
  if (rc < 0) {
    why_set(why, whylen, "fsync directory", dir, rc);
    return WALRUS_EIO_FSYNC;
  }
  return WALRUS_OK;
fail:
  if (f != NULL) vfs->close(vfs->ctx, f);
  vfs->unlink(vfs->ctx, tmp);
  return code;
}

int wr_file_read(const walrus_vfs_t *vfs, const char *dir, const char *name,
                 unsigned char **buf, size_t *len, char *why, size_t whylen) {
  char path[4200];
  walrus_vfs_file_t *f = NULL;
  uint64_t size = 0, done = 0;
  unsigned char *b = NULL;
  int rc, code;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
    return WALRUS_EINVAL;
  rc = vfs->open(vfs->ctx, path, WALRUS_VFS_READ, &f);
  if (rc == -ENOENT) return WALRUS_DONE;
  if (rc < 0) {
    why_set(why, whylen, "open", path, rc);
    return WALRUS_EIO;
  }
  rc = vfs->size(vfs->ctx, f, &size);
  if (rc < 0) {
    why_set(why, whylen, "size of", path, rc);
    code = WALRUS_EIO;
    goto fail;
  }
  if (size > (uint64_t)SIZE_MAX - 1) {
    code = WALRUS_ENOMEM;
    goto fail;
  }
  b = malloc((size_t)size + 1);
  if (b == NULL) {
    code = WALRUS_ENOMEM;
    goto fail;
  }
  while (done < size) {
    int64_t n = vfs->pread(vfs->ctx, f, b + done, (size_t)(size - done), done);
    if (n <= 0) {
      why_set(why, whylen, "read", path, n < 0 ? (int)n : -EIO);
      code = WALRUS_EIO_READ;
      goto fail;
    }
    done += (uint64_t)n;
  }
  vfs->close(vfs->ctx, f);
  *buf = b;
  *len = (size_t)size;
  return WALRUS_OK;
fail:
  free(b);
  vfs->close(vfs->ctx, f);
  return code;
}

/* ---- state ------------------------------------------------------------- */

void wr_state_encode(unsigned char *out, uint64_t term, uint64_t vote) {
  memset(out, 0, WR_STATE_BYTES);
  memcpy(out, "WRSTATE1", 8);
  put_u64(out + 8, term);
  put_u64(out + 16, vote);
  put_u32(out + 24, wr_crc32c(0, out, 24));
}

int wr_state_decode(const unsigned char *buf, size_t len, uint64_t *term,
                    uint64_t *vote) {
  if (len != WR_STATE_BYTES || memcmp(buf, "WRSTATE1", 8) != 0 ||
      get_u32(buf + 24) != wr_crc32c(0, buf, 24))
    return WALRUS_ECORRUPT;
  *term = get_u64(buf + 8);
  *vote = get_u64(buf + 16);
  return WALRUS_OK;
}

/* ---- configuration ----------------------------------------------------- */

size_t wr_conf_size(const struct raft_configuration *c) {
  size_t n = 4;
  for (unsigned i = 0; i < c->n; i++)
    n += 8 + 1 + 2 + strlen(c->servers[i].address);
  return n;
}

void wr_conf_encode(const struct raft_configuration *c, unsigned char *out) {
  put_u32(out, c->n);
  out += 4;
  for (unsigned i = 0; i < c->n; i++) {
    size_t alen = strlen(c->servers[i].address);
    put_u64(out, c->servers[i].id);
    out[8] = (unsigned char)c->servers[i].role;
    put_u16(out + 9, (uint16_t)alen);
    memcpy(out + 11, c->servers[i].address, alen);
    out += 11 + alen;
  }
}

int wr_conf_decode(const unsigned char *buf, size_t len,
                   struct raft_configuration *c) {
  char addr[65536];
  size_t off = 4;
  uint32_t n;
  if (len < 4) return RAFT_MALFORMED;
  n = get_u32(buf);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t id;
    int role, rv;
    uint16_t alen;
    if (len - off < 11) return RAFT_MALFORMED;
    id = get_u64(buf + off);
    role = buf[off + 8];
    alen = get_u16(buf + off + 9);
    off += 11;
    if (len - off < alen || id == 0) return RAFT_MALFORMED;
    memcpy(addr, buf + off, alen);
    addr[alen] = '\0';
    off += alen;
    rv = raft_configuration_add(c, id, addr, role);
    if (rv != 0) return rv == RAFT_NOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
  }
  return off == len ? 0 : RAFT_MALFORMED;
}

/* ---- snapshot ---------------------------------------------------------- */

int wr_snapshot_encode(const struct raft_snapshot *s, unsigned char **out,
                       size_t *len) {
  size_t clen = wr_conf_size(&s->configuration), dlen = 0, off;
  unsigned char *b;
  for (unsigned i = 0; i < s->n_bufs; i++) dlen += s->bufs[i].len;
  if (clen > UINT32_MAX || dlen > SIZE_MAX - WR_SNAP_HEADER - clen)
    return WALRUS_ETOOLARGE;
  b = malloc(WR_SNAP_HEADER + clen + dlen);
  if (b == NULL) return WALRUS_ENOMEM;
  memset(b, 0, WR_SNAP_HEADER);
  memcpy(b, "WRSNAP01", 8);
  put_u64(b + 8, s->index);
  put_u64(b + 16, s->term);
  put_u64(b + 24, s->configuration_index);
  put_u32(b + 32, (uint32_t)clen);
  put_u64(b + 40, dlen);
  wr_conf_encode(&s->configuration, b + WR_SNAP_HEADER);
  off = WR_SNAP_HEADER + clen;
  for (unsigned i = 0; i < s->n_bufs; i++) {
    if (s->bufs[i].len > 0) memcpy(b + off, s->bufs[i].base, s->bufs[i].len);
    off += s->bufs[i].len;
  }
  put_u32(b + 48, wr_crc32c(0, b + WR_SNAP_HEADER, clen + dlen));
  put_u32(b + 52, wr_crc32c(0, b, 52));
  *out = b;
  *len = off;
  return WALRUS_OK;
}

/* Checks the header and returns the lengths it gives. */
static int snapshot_header(const unsigned char *buf, size_t len,
                           size_t *clen, size_t *dlen) {
  uint64_t d;
  if (len < WR_SNAP_HEADER || memcmp(buf, "WRSNAP01", 8) != 0 ||
      get_u32(buf + 52) != wr_crc32c(0, buf, 52))
    return WALRUS_ECORRUPT;
  *clen = get_u32(buf + 32);
  d = get_u64(buf + 40);
  if (*clen > len - WR_SNAP_HEADER || d != len - WR_SNAP_HEADER - *clen)
    return WALRUS_ECORRUPT;
  *dlen = (size_t)d;
  return WALRUS_OK;
}

int wr_snapshot_peek(const unsigned char *buf, size_t len, uint64_t *index,
                     uint64_t *term) {
  size_t clen, dlen;
  int rc = snapshot_header(buf, len, &clen, &dlen);
  if (rc != WALRUS_OK) return rc;
  *index = get_u64(buf + 8);
  *term = get_u64(buf + 16);
  return WALRUS_OK;
}

int wr_snapshot_decode(const unsigned char *buf, size_t len,
                       struct raft_snapshot **out, char *why,
                       size_t whylen) {
  struct raft_snapshot *s;
  size_t clen, dlen;
  int rv;
  if (snapshot_header(buf, len, &clen, &dlen) != WALRUS_OK) {
    snprintf(why, whylen, "snapshot: bad header (magic, size or checksum)");
    return WALRUS_ECORRUPT;
  }
  if (get_u32(buf + 48) != wr_crc32c(0, buf + WR_SNAP_HEADER, clen + dlen)) {
    snprintf(why, whylen, "snapshot: body checksum mismatch");
    return WALRUS_ECORRUPT;
  }
  s = raft_malloc(sizeof *s);
  if (s == NULL) return WALRUS_ENOMEM;
  memset(s, 0, sizeof *s);
  s->index = get_u64(buf + 8);
  s->term = get_u64(buf + 16);
  s->configuration_index = get_u64(buf + 24);
  raft_configuration_init(&s->configuration);
  rv = wr_conf_decode(buf + WR_SNAP_HEADER, clen, &s->configuration);
  if (rv != 0) {
    raft_configuration_close(&s->configuration);
    raft_free(s);
    if (rv == RAFT_NOMEM) return WALRUS_ENOMEM;
    snprintf(why, whylen, "snapshot: malformed configuration");
    return WALRUS_ECORRUPT;
  }
  s->bufs = raft_malloc(sizeof *s->bufs);
  /* raft_malloc(0) may return NULL; keep a 1-byte buffer for empty data. */
  if (s->bufs != NULL) s->bufs[0].base = raft_malloc(dlen > 0 ? dlen : 1);
  if (s->bufs == NULL || s->bufs[0].base == NULL) {
    if (s->bufs != NULL) raft_free(s->bufs);
    raft_configuration_close(&s->configuration);
    raft_free(s);
    return WALRUS_ENOMEM;
  }
  if (dlen > 0) memcpy(s->bufs[0].base, buf + WR_SNAP_HEADER + clen, dlen);
  s->bufs[0].len = dlen;
  s->n_bufs = 1;
  *out = s;
  return WALRUS_OK;
}
