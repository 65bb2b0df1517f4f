/*
 * recover.c: what walrus_open() does to find the log's state.
 *
 *  1. List the directory; remove leftover *.tmp files (a segment or META
 *     that was being created when a crash came; they hold nothing that was
 *     ever acknowledged).
 *  2. Read META: the log's identity, first index, any unfinished
 *     truncate_back.  Segments of the identity before the last reset are
 *     leftovers of an interrupted reset and are removed; a segment of any
 *     other identity is corruption.
 *  3. Check every segment but the last through its header and its 32-byte
 *     trailer only: the records of sealed segments are never read at open;
 *     they are verified each time they are read.  The segments must follow
 *     each other without a gap.
 *  4. Scan the last segment record by record (unless it is sealed), and
 *     classify what ends the scan:
 *       - the end of the file after a whole unit: clean;
 *       - a partial unit, or damage that can only lie in the last two sync
 *         groups (the ones a crash can tear): a torn tail, cut in TAIL
 *         mode (and fsynced);
 *       - damage followed by a valid record of an older group, a group
 *         start, a sync mark or an index record: corruption, reported in
 *         every mode but SALVAGE.
 *     See format.h for why epochs make that distinction sound.
 *  5. In SALVAGE mode every segment is scanned fully; at the first damage
 *     the rest of that file is copied to <name>.salvage before the cut and
 *     later segments are moved into salvage/.  Nothing is ever deleted.
 *
 * A read-only open does all the checks but changes nothing: it shows the
 * valid prefix and leaves a torn tail or leftovers where they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What scanning a segment's records found. */
typedef struct scan_s {
  uint64_t good_end;   /* offset after the last whole unit */
  uint64_t good_count; /* records in whole units */
  uint64_t stop;       /* offset where the scan stopped (size if clean) */
  int stopped;         /* the scan met something that is not a record */
  int at_index;        /* it stopped at an index record */
  int at_zeros;        /* it stopped at a record header of zero bytes */
  int have_prev;       /* a valid record precedes stop */
  uint32_t prev_epoch; /* its epoch */
  uint32_t last_epoch; /* epoch of the last record of the last whole unit */
  char why[160];       /* what stopped it */
  walrus__zunit_t *z;  /* NULL, or decode compressed units into it and
                          check their records against their frames */
  int zstate;          /* in the current unit: 0 plain, 1 compressed and
                          decoded, -1 compressed and found bad */
  uint64_t zbad_off;   /* with z: the first bad compressed unit, or 0 */
  char zwhy[200];      /* what is wrong with it */
} scan_t;

/* The compressed units' deep check (sc->z): a record at off, CRC good,
 * that belongs to a whole unit so far.  A unit's frame must decode
 * (read.c: walrus__zunit_decode()), every record of the unit must be
 * compressed, no more of them than its frame holds entries (fewer after a
 * truncate_back inside it), and each tx id fits in its body.  Notes the
 * first problem of the segment; never stops the scan, since open does not
 * look this deep.  rec is the whole record. */
static int zcheck(walrus_t *w, walrus__seg_t *s, scan_t *sc, uint64_t off,
                  const walrus__rec_t *r, const unsigned char *rec) {
  walrus__zunit_t *u = sc->z;
  const char *why = NULL;
  int z = (r->flags & WALRUS__REC_ZSTD) != 0;
  if (r->flags & WALRUS__REC_FIRST) {
    sc->zstate = 0;
    if (!z) return WALRUS_OK;
    int rc =
        walrus__zunit_decode(w, s->version, s->name, off, rec, r->index, u);
    if (rc == WALRUS_ENOMEM) return rc;
    if (rc == WALRUS_OK) {
      sc->zstate = 1;
    } else {
      sc->zstate = -1;
      if (sc->zbad_off == 0) {
        sc->zbad_off = off;
        snprintf(sc->zwhy, sizeof sc->zwhy, "%s", walrus_errmsg(w));
      }
      return WALRUS_OK;
    }
  } else if (z != (sc->zstate != 0)) {
    why = "a unit mixes compressed and plain records";
  }
  if (why == NULL && sc->zstate == 1) {
    uint64_t k = r->index - u->first;
    uint32_t start = k > 0 ? u->ends[k - 1] : 4 * u->count;
    if (k >= u->count)
      why = "the unit has more records than its frame holds entries";
    else if (r->txid_len > u->ends[k] - start)
      why = "a record's tx id is longer than its body in the frame";
  }
  if (why != NULL) {
    if (sc->zstate == 1) sc->zstate = -1;
    if (sc->zbad_off == 0) {
      sc->zbad_off = off;
      snprintf(sc->zwhy, sizeof sc->zwhy, "record %llu: %s",
               (unsigned long long)r->index, why);
    }
  }
  return WALRUS_OK;
}

/* Directory listing gathered in step 1. */
typedef struct listing_s {
  uint64_t *firsts; /* first indexes of *.seg files, sorted */
  size_t n, cap;    /* count and capacity of firsts */
  char **tmps;      /* *.tmp names to remove */
  size_t ntmp, tmpcap; /* count and capacity of tmps */
  walrus_t *w;      /* for allocation */
  int oom;          /* an allocation failed */
  int salvage_dir;  /* the directory holds a salvage/ */
} listing_t;

static int list_cb(void *arg, const char *name) {
  listing_t *l = arg;
  uint64_t first;
  size_t nl = strlen(name);
  if (strcmp(name, "salvage") == 0) l->salvage_dir = 1;
  if (walrus__fmt_seg_name_parse(name, &first)) {
    if (l->n == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 64;
      uint64_t *p = walrus__realloc(l->w, l->firsts, cap * sizeof *p);
      if (p == NULL) return l->oom = 1;
      l->firsts = p;
      l->cap = cap;
    }
    l->firsts[l->n++] = first;
  } else if (nl > 4 && strcmp(name + nl - 4, ".tmp") == 0) {
    if (l->ntmp == l->tmpcap) {
      size_t cap = l->tmpcap ? l->tmpcap * 2 : 8;
      char **p = walrus__realloc(l->w, l->tmps, cap * sizeof *p);
      if (p == NULL) return l->oom = 1;
      l->tmps = p;
      l->tmpcap = cap;
    }
    char *c = walrus__malloc(l->w, nl + 1);
    if (c == NULL) return l->oom = 1;
    memcpy(c, name, nl + 1);
    l->tmps[l->ntmp++] = c;
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void listing_free(listing_t *l) {
  for (size_t i = 0; i < l->ntmp; i++) walrus__free(l->w, l->tmps[i]);
  walrus__free(l->w, l->tmps);
  walrus__free(l->w, l->firsts);
}

/* Read the records of s from the header on, appending offsets of whole
 * units to s->offs (s->count counts them), until the end of the file or
 * the first thing that is not the expected record.  Entries after
 * void_after belong to an unfinished truncate_back: the scan ends at
 * entry void_after as if it closed its unit. */
static int scan_records(walrus_t *w, walrus__seg_t *s, uint64_t size,
                        uint64_t void_after, scan_t *sc,
                        walrus__zunit_t *deep) {
  walrus__window_t win = {0};
  const unsigned char *p;
  uint64_t off = WALRUS__SEG_HEADER_BYTES, expect = s->first;
  uint64_t unit_start = off, pending = 0;
  int in_unit = 0, rc = WALRUS_OK;
  walrus__rec_t r;

  memset(sc, 0, sizeof *sc);
  sc->good_end = off;
  sc->z = deep;
  s->count = 0;
#define STOP(...)                                      \
  do {                                                 \
    snprintf(sc->why, sizeof sc->why, __VA_ARGS__);    \
    sc->stopped = 1;                                   \
    goto out;                                          \
  } while (0)
  const walrus__scan_t from = {&win, s->file, s->name, s->seed, size, 1};
  while (off < size) {
    walrus__found_t found;
    rc = walrus__scan_record(w, &from, off, &r, &p, &found);
    if (rc != WALRUS_OK) goto out;
    switch (found) {
      case WALRUS__FOUND_RECORD: break;
      case WALRUS__FOUND_SHORT: STOP("partial record header");
      case WALRUS__FOUND_ZEROS:
        sc->at_zeros = 1;
        STOP("zero bytes");
      case WALRUS__FOUND_MALFORMED: STOP("malformed record header");
      case WALRUS__FOUND_TOO_LONG:
        STOP("record runs past the end of the file");
      case WALRUS__FOUND_INDEX:
        sc->at_index = 1;
        STOP("index record");
      case WALRUS__FOUND_PARTIAL: STOP("partial record");
      case WALRUS__FOUND_BAD_CRC: STOP("checksum mismatch");
    }
    uint64_t rsz = walrus__rec_size(r.body_len);
    if (r.index > void_after) break; /* void: truncate_back finishes it */
    if ((r.flags & WALRUS__REC_ZSTD) && s->version < WALRUS__SEG_VERSION_ZSTD)
      STOP("compressed record in a version %u segment", s->version);
    if (r.flags & WALRUS__REC_MARK) {
      /* A sync mark: not an entry, outside any unit, naming the entry
       * before it. */
      /* A closing mark (LAST) ends the unit truncate_back cut short;
       * a plain one stands between units. */
      int closing = (r.flags & WALRUS__REC_LAST) != 0;
      /* After an entry ended by a pending truncate_back, its closing mark
       * may already be there. */
      int settled = closing && !in_unit && r.index == void_after;
      if ((in_unit != closing && !settled) || r.index + 1 != expect ||
          r.body_len != 0 ||
          (r.flags & ~WALRUS__REC_LAST) !=
              (WALRUS__REC_MARK | WALRUS__REC_GROUP))
        STOP("misplaced sync mark");
      if (closing) {
        in_unit = 0;
        s->count += pending;
        pending = 0;
      }
      sc->have_prev = 1;
      sc->prev_epoch = r.epoch;
      sc->last_epoch = r.epoch;
      off += rsz;
      sc->good_end = off;
      continue;
    }
    if (r.index != expect)
      STOP("record has index %llu where %llu belongs",
           (unsigned long long)r.index, (unsigned long long)expect);
    if (!in_unit && !(r.flags & WALRUS__REC_FIRST))
      STOP("record %llu continues no batch", (unsigned long long)r.index);
    if (in_unit && (r.flags & WALRUS__REC_FIRST))
      STOP("record %llu opens a batch inside another",
           (unsigned long long)r.index);
    if (r.flags & WALRUS__REC_FIRST) {
      in_unit = 1;
      unit_start = off;
    }
    if (sc->z != NULL) {
      rc = zcheck(w, s, sc, off, &r, p);
      if (rc != WALRUS_OK) goto out;
    }
    rc = walrus__seg_reserve(w, s, pending + 1);
    if (rc != WALRUS_OK) goto out;
    s->offs[s->count + pending++] = (uint32_t)off;
    sc->have_prev = 1;
    sc->prev_epoch = r.epoch;
    off += rsz;
    expect++;
    if ((r.flags & WALRUS__REC_LAST) || r.index == void_after) {
      in_unit = 0;
      s->count += pending;
      pending = 0;
      sc->good_end = off;
      sc->last_epoch = r.epoch;
    }
  }
  if (in_unit) {
    sc->stopped = 1;
    snprintf(sc->why, sizeof sc->why, "batch from offset %llu is incomplete",
             (unsigned long long)unit_start);
  }
#undef STOP
out:
  sc->stop = sc->stopped ? (in_unit && off >= size ? size : off) : size;
  sc->good_count = s->count;
  walrus__window_free(w, &win);
  return rc;
}

/* After damage at sc->stop, decide whether it is a torn tail (1) or
 * corruption (0), by looking for valid records further on. */
static int classify(walrus_t *w, walrus__seg_t *s, uint64_t size,
                    const scan_t *sc, int *torn, int *any, char *why,
                    size_t whylen) {
  walrus__window_t win = {0};
  const unsigned char *p;
  uint64_t last_good = s->first + sc->good_count - 1;
  uint64_t q = (sc->stop + 8) & ~(uint64_t)7;
  uint32_t efirst = 0, elast = 0, egroup = 0;
  int found = 0, backwards = 0, group = 0, groups = 0, overlap = 0;
  int ov_last = 0; /* a record of the last group carries OVERLAP */
  int sealed = 0, rc = WALRUS_OK;
  uint64_t found_at = 0, found_index = 0;
  walrus__rec_t r;

  while (q + WALRUS__REC_HEADER_BYTES <= size) {
    rc = walrus__window_read(w, &win, s->file, s->name, q,
                             WALRUS__REC_HEADER_BYTES, size, &p);
    if (rc != WALRUS_OK) goto out;
    if (p == NULL) break;
    if (walrus__rec_header_decode(p, &r) == WALRUS__FMT_OK &&
        q + WALRUS__REC_HEADER_BYTES + r.body_len <= size &&
        (r.index > last_good || (r.flags & WALRUS__REC_INDEX))) {
      rc = walrus__window_read(w, &win, s->file, s->name, q,
                               WALRUS__REC_HEADER_BYTES + r.body_len, size,
                               &p);
      if (rc != WALRUS_OK) goto out;
      if (p != NULL &&
          walrus__rec_crc(s->salt, p, p + WALRUS__REC_HEADER_BYTES,
                          r.body_len) == r.crc) {
        if (!found) {
          found_at = q;
          found_index = r.index;
          efirst = elast = r.epoch;
        } else if ((int32_t)(r.epoch - elast) < 0) {
          backwards = 1; /* epochs never decrease along a file */
        } else {
          if (r.epoch != elast) ov_last = 0;
          elast = r.epoch;
        }
        if (r.epoch == elast && (r.flags & WALRUS__REC_OVERLAP)) ov_last = 1;
        found = 1;
        if (r.flags & WALRUS__REC_GROUP) {
          group = 1;
          groups++;
          egroup = r.epoch;
          overlap = (r.flags & WALRUS__REC_OVERLAP) != 0;
        }
        if (r.flags & (WALRUS__REC_INDEX | WALRUS__REC_MARK)) sealed = 1;
        q += walrus__rec_size(r.body_len);
        continue;
      }
    }
    q += 8;
  }
  /* The rule of format.h: the damage can lie in the last group, or in
   * the one before when the last began while it was being synced
   * (OVERLAP).  A sync mark or index record after it, epochs going
   * backwards, or an older group start prove it hit synced data. */
  uint32_t pe = sc->prev_epoch;
  *any = found;
  if (!found) {
    *torn = 1;
  } else if (!backwards && !sealed && !group && efirst == elast &&
             (!sc->have_prev || pe == elast || pe + 1 == elast)) {
    *torn = 1; /* inside the last group */
  } else if (!backwards && !sealed &&
             ((groups == 1 && egroup == elast && overlap) ||
              (groups == 0 && ov_last)) &&
             (uint32_t)(elast - efirst) <= 1 &&
             (!sc->have_prev || (uint32_t)(elast - pe) <= 2)) {
    /* In the group whose sync the last one overlapped, as its GROUP
     * record says, or, when that record was lost too, its others. */
    *torn = 1;
  } else {
    *torn = 0;
    snprintf(why, whylen,
             "valid record %llu at offset %llu follows the damage",
             (unsigned long long)found_index, (unsigned long long)found_at);
  }
out:
  walrus__window_free(w, &win);
  return rc;
}

/* Copy bytes [from, size) of s to a new side file <name>.salvage. */
static int save_side(walrus_t *w, walrus__seg_t *s, uint64_t from,
                     uint64_t size) {
  char name[WALRUS__SEG_NAME_LEN + 48];
  walrus_vfs_file_t *f;
  int rc;
  snprintf(name, sizeof name, "%s.salvage", s->name);
  for (int i = 1; i < 1000; i++) {
    rc = walrus__os_open(w, name, WALRUS_VFS_WRITE | WALRUS_VFS_CREATE, &f);
    if (rc == WALRUS_OK) break;
    if (w->err.last_errno != EEXIST) return rc;
    snprintf(name, sizeof name, "%s.salvage.%d", s->name, i);
  }
  if (rc != WALRUS_OK) return rc;
  for (uint64_t off = from; off < size && rc == WALRUS_OK;) {
    size_t n = size - off < w->cfg.buffer_bytes ? (size_t)(size - off)
                                                : w->cfg.buffer_bytes;
    rc = walrus__os_read_full(w, s->file, s->name, w->commit.buf, n, off);
    if (rc == WALRUS_OK)
      rc = walrus__os_write(w, f, name, w->commit.buf, n, off - from);
    off += n;
  }
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, f, name);
  walrus__os_close(w, f);
  /* The side file's name must be durable before the cut it backs up. */
  if (rc == WALRUS_OK) rc = walrus__os_sync_dir(w);
  if (rc == WALRUS_OK)
    walrus__log(w, WALRUS_LOG_WARN,
                "salvage: moved %llu bytes of %s from offset %llu to %s",
                (unsigned long long)(size - from), s->name,
                (unsigned long long)from, name);
  return rc;
}

/* Move segment files firsts[from..n) into salvage/. */
static int move_aside(walrus_t *w, const uint64_t *firsts, size_t from,
                      size_t n) {
  char name[WALRUS__SEG_NAME_LEN + 1], to[WALRUS__SEG_NAME_LEN + 48];
  int rc;
  if (from >= n) return WALRUS_OK;
  for (size_t i = from; i < n; i++) {
    walrus__fmt_seg_name(name, firsts[i]);
    snprintf(to, sizeof to, "%s.%lld", name, (long long)walrus__now_ns(w));
    rc = walrus__os_move_to_salvage(w, name, to);
    if (rc != WALRUS_OK) return rc;
    walrus__log(w, WALRUS_LOG_WARN, "salvage: moved %s to salvage/%s", name,
                to);
  }
  /* A rename across directories: the new name is durable once salvage/
   * is synced, the old one gone once the log directory is. */
  rc = walrus__os_sync_salvage(w);
  return rc == WALRUS_OK ? walrus__os_sync_dir(w) : rc;
}

/* Open a segment file and check its header against META and its name. */
static int open_segment(walrus_t *w, uint64_t first, int writable,
                        walrus__seg_t **out, int *stale) {
  unsigned char buf[WALRUS__SEG_HEADER_BYTES];
  walrus__seg_header_t h;
  walrus__seg_t *s = walrus__seg_new(w, first);
  int rc;
  *stale = 0;
  if (s == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "segment table");
  rc = walrus__os_open(w, s->name,
                       writable ? WALRUS_VFS_WRITE : WALRUS_VFS_READ, &s->file);
  if (rc != WALRUS_OK) goto fail;
  rc = walrus__os_read_full(w, s->file, s->name, buf, sizeof buf, 0);
  if (rc != WALRUS_OK) goto fail;
  switch (walrus__fmt_seg_header_decode(buf, &h)) {
    case WALRUS__FMT_OK:
      break;
    case WALRUS__FMT_BAD_VERSION:
      rc = walrus__fail(w, WALRUS_EFORMAT, 0,
                        "%s/%s: format version %u is not supported", w->dir,
                        s->name, walrus__get32(buf + 8));
      goto fail;
    default:
      rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: bad segment header at offset 0", w->dir,
                        s->name);
      goto fail;
  }
  if (h.log_id != w->store.meta.log_id) {
    if (w->store.meta.prev_log_id != 0 &&
        h.log_id == w->store.meta.prev_log_id) {
      *stale = 1;
      *out = s;
      return WALRUS_OK;
    }
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s belongs to another log (id %016llx, not %016llx)",
                      w->dir, s->name, (unsigned long long)h.log_id,
                      (unsigned long long)w->store.meta.log_id);
    goto fail;
  }
  if (h.first_index != first) {
    rc = walrus__fail(w, WALRUS_ECORRUPT, 0,
                      "%s/%s: header says first index %llu", w->dir, s->name,
                      (unsigned long long)h.first_index);
    goto fail;
  }
  s->salt = h.salt;
  s->seed = walrus__salt_seed(h.salt);
  s->version = h.version;
  *out = s;
  return WALRUS_OK;
fail:
  walrus__seg_free(w, s);
  return rc;
}

/* Read and check the trailer of s (size bytes long).  Returns 1 if it is
 * sealed with a consistent trailer, 0 if not (and why says so). */
static int read_trailer(walrus_t *w, walrus__seg_t *s, uint64_t size,
                        int *sealed, char *why, size_t whylen) {
  unsigned char buf[WALRUS__TRAILER_BYTES];
  walrus__trailer_t t;
  int rc;
  *sealed = 0;
  if (size < WALRUS__SEG_HEADER_BYTES + WALRUS__REC_HEADER_BYTES +
                 WALRUS__TRAILER_BYTES) {
    snprintf(why, whylen, "too short to be sealed (%llu bytes)",
             (unsigned long long)size);
    return WALRUS_OK;
  }
  rc = walrus__os_read_full(w, s->file, s->name, buf, sizeof buf,
                            size - WALRUS__TRAILER_BYTES);
  if (rc != WALRUS_OK) return rc;
  if (walrus__trailer_decode(buf, s->salt, &t) != WALRUS__FMT_OK) {
    snprintf(why, whylen, "no valid trailer at offset %llu",
             (unsigned long long)(size - WALRUS__TRAILER_BYTES));
    return WALRUS_OK;
  }
  if (t.first_index != s->first ||
      (uint64_t)t.index_offset + walrus__rec_size((uint64_t)t.count * 4) +
              WALRUS__TRAILER_BYTES != size) {
    snprintf(why, whylen, "trailer at offset %llu disagrees with the file",
             (unsigned long long)(size - WALRUS__TRAILER_BYTES));
    return WALRUS_OK;
  }
  s->count = t.count;
  s->index_offset = t.index_offset;
  s->end = t.index_offset;
  *sealed = 1;
  return WALRUS_OK;
}

/* Is what stopped the scan the end of a preallocated tail: zero bytes with
 * no valid record after them?  Space reserved for mapped writes looks like
 * that; so does a tail the file system extended but never wrote. */
static int zero_end(walrus_t *w, walrus__seg_t *s, uint64_t size,
                    const scan_t *sc, int *yes) {
  char why[200];
  int torn = 1, any = 0, rc = WALRUS_OK;
  *yes = 0;
  if (sc->stopped && sc->at_zeros && sc->stop == sc->good_end) {
    rc = classify(w, s, size, sc, &torn, &any, why, sizeof why);
    *yes = rc == WALRUS_OK && !any;
  }
  return rc;
}

static int tail_damage(walrus_t *w, walrus__seg_t *s, uint64_t size,
                       const scan_t *sc, int *cut) {
  char why[200];
  int torn = 1, any = 0, rc;
  *cut = 0;
  if (!sc->stopped) return WALRUS_OK;
  rc = classify(w, s, size, sc, &torn, &any, why, sizeof why);
  if (rc != WALRUS_OK) return rc;
  if (sc->at_zeros && sc->stop == sc->good_end && !any) {
    /* The end of a preallocated tail (zero_end): not damage. */
    s->prealloc = 1; /* the write path may map it; sealing cuts it */
    return WALRUS_OK;
  }
  if (!torn && w->cfg.recovery != WALRUS_RECOVER_SALVAGE)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: damage at offset %llu (%s), but %s", w->dir,
                        s->name, (unsigned long long)sc->stop, sc->why, why);
  if (w->cfg.recovery == WALRUS_RECOVER_STRICT)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s: torn tail at offset %llu (%s); strict "
                        "recovery changes nothing",
                        w->dir, s->name, (unsigned long long)sc->stop,
                        sc->why);
  *cut = 1;
  return WALRUS_OK;
}

static int cut_tail(walrus_t *w, walrus__seg_t *s, uint64_t size,
                    const scan_t *sc) {
  int rc;
  if (w->cfg.read_only) return WALRUS_OK;
  if (w->cfg.recovery == WALRUS_RECOVER_SALVAGE) {
    rc = save_side(w, s, sc->good_end, size);
    if (rc != WALRUS_OK) return rc;
  }
  rc = walrus__os_truncate(w, s->file, s->name, sc->good_end);
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, s->file, s->name);
  if (rc == WALRUS_OK)
    walrus__log(w, WALRUS_LOG_WARN,
                "%s: cut torn tail at offset %llu (%llu bytes: %s); last "
                "index is now %llu",
                s->name, (unsigned long long)sc->good_end,
                (unsigned long long)(size - sc->good_end), sc->why,
                (unsigned long long)(s->first + s->count - 1));
  return rc;
}

/* Scan the segment s fully, in SALVAGE mode: returns *ok = 1 if it is a
 * sound sealed segment or a sound tail; otherwise it has been cut (the rest
 * copied aside) and becomes the tail. */
static int salvage_segment(walrus_t *w, walrus__seg_t *s, uint64_t size,
                           int last, uint64_t void_after, int *ok) {
  scan_t sc;
  char why[160];
  int sealed = 0, rc;
  *ok = 0;
  rc = read_trailer(w, s, size, &sealed, why, sizeof why);
  if (rc != WALRUS_OK) return rc;
  uint64_t want = s->count;
  uint32_t index_offset = s->index_offset;
  rc = scan_records(w, s, size, void_after, &sc, NULL);
  if (rc != WALRUS_OK) return rc;
  if (sealed && sc.at_index && sc.stop == index_offset && s->count == want) {
    s->sealed = 1;
    s->index_offset = index_offset;
    s->end = index_offset;
    /* Verify the index record too; on failure fall through to a cut. */
    walrus__free(w, s->offs);
    s->offs = NULL;
    s->offs_cap = 0;
    walrus__os_close(w, s->file);
    s->file = NULL;
    rc = walrus__seg_acquire(w, s);
    if (rc == WALRUS_OK) {
      walrus__seg_release(w, s);
      *ok = 1;
      return WALRUS_OK;
    }
    if (rc != WALRUS_ECHECKSUM && rc != WALRUS_ECORRUPT) return rc;
    s->sealed = 0;
    rc = walrus__os_open(w, s->name, WALRUS_VFS_WRITE, &s->file);
    if (rc != WALRUS_OK) return rc;
    rc = scan_records(w, s, size, void_after, &sc, NULL);
    if (rc != WALRUS_OK) return rc;
    sc.good_end = sc.stop < sc.good_end ? sc.stop : sc.good_end;
  }
  if (sc.good_count > 0) w->commit.epoch = sc.last_epoch + 1;
  s->end = sc.good_end;
  int zeros = 0;
  rc = last ? zero_end(w, s, size, &sc, &zeros) : WALRUS_OK;
  if (rc != WALRUS_OK) return rc;
  if ((!sc.stopped || zeros) && last) {
    s->prealloc = zeros;
    *ok = 1;
    return WALRUS_OK;
  }
  rc = sc.good_end < size ? save_side(w, s, sc.good_end, size) : WALRUS_OK;
  if (rc == WALRUS_OK && sc.good_end < size)
    rc = walrus__os_truncate(w, s->file, s->name, sc.good_end);
  if (rc == WALRUS_OK) rc = walrus__os_sync(w, s->file, s->name);
  return rc;
}

/* A writable open builds on what it finds, and a writer that died (a
 * process crash, not a power loss) may have left part of that only in the
 * page cache: a directory entry created, renamed or removed with no fsync
 * of the directory after it, a META renamed into place the same way, a
 * trailer written with no fdatasync after it.  Were this open to repair
 * or acknowledge anything on top, a later power loss could take what it
 * rests on.  So before recovery changes anything, a writable open makes
 * durable every name it relies on (the log directory's own, by the
 * parent's fsync in walrus_open(); the directory's entries; salvage/ if
 * there is one) and META; in the scan below, a sealed last segment; and
 * at the end, the tail.  Nothing else can be unsynced: every other
 * segment was sealed and synced before the segment after it was created,
 * and every file renamed into place was synced before its rename.  That
 * is a bounded number of fsyncs, however long the log, and an fsync of
 * what is already durable costs little (docs/FORMAT.md, "Recovery"). */
static int make_durable(walrus_t *w, int salvage_dir) {
  int rc = walrus__os_sync_dir(w);
  if (rc == WALRUS_OK && salvage_dir) rc = walrus__os_sync_salvage(w);
  if (rc == WALRUS_OK) rc = walrus__meta_sync(w);
  return rc;
}

/* What one recovery has gathered so far. */
typedef struct recovery_s {
  walrus_t *w;         /* the handle being opened */
  listing_t l;         /* the directory's segments and leftovers */
  int writable;        /* a writable open: it may repair */
  int salvage;         /* WALRUS_RECOVER_SALVAGE */
  int removed;         /* a file was removed: the directory needs a sync */
  uint64_t void_after; /* an unfinished truncate_back's last kept entry,
                          or UINT64_MAX */
  size_t nlive;        /* segments l.firsts[0..nlive) are not void */
} recovery_t;

/* Step 1: list the directory, segments sorted by first index. */
static int list_dir(recovery_t *rv) {
  walrus_t *w = rv->w;
  int rc = walrus__os_list(w, list_cb, &rv->l);
  if (rv->l.oom) return walrus__fail(w, WALRUS_ENOMEM, 0, "listing %s", w->dir);
  if (rc != 0) return walrus__fail(w, WALRUS_EIO, -rc, "list %s", w->dir);
  if (rv->l.n > 1)
    qsort(rv->l.firsts, rv->l.n, sizeof *rv->l.firsts, cmp_u64);
  return WALRUS_OK;
}

/* No META: an empty directory becomes a new log (writable), else it is
 * corruption or no log at all. */
static int create_log(recovery_t *rv) {
  walrus_t *w = rv->w;
  if (rv->l.n > 0)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s holds segments but no META", w->dir);
  if (!rv->writable)
    return walrus__fail(w, WALRUS_EIO, ENOENT, "%s holds no walrus log",
                        w->dir);
  walrus__meta_t m = {0};
  do {
    int e = walrus__random(w, &m.log_id, sizeof m.log_id);
    if (e != 0) return walrus__fail(w, WALRUS_EIO, -e, "random log id");
  } while (m.log_id == 0);
  m.first_index = 1;
  int rc = walrus__meta_write(w, &m);
  if (rc != WALRUS_OK) return rc;
  w->store.first_index = w->store.next_index = w->commit.write_next = 1;
  walrus__log(w, WALRUS_LOG_INFO, "created a new log in %s", w->dir);
  return WALRUS_OK;
}

/* Remove what interrupted operations left: *.tmp files of interrupted
 * creations and, after an unfinished truncate_back (which voids every
 * entry after trunc_last), the segments that start after it; the one
 * holding it is read up to it and walrus__finish_truncate_back()
 * completes the cut.  Read-only, only notes which segments are void. */
static int remove_leftovers(recovery_t *rv) {
  walrus_t *w = rv->w;
  int rc;
  if (rv->writable) {
    for (size_t i = 0; i < rv->l.ntmp; i++) {
      rc = walrus__os_unlink(w, rv->l.tmps[i]);
      if (rc != WALRUS_OK) return rc;
      walrus__log(w, WALRUS_LOG_INFO, "removed leftover %s", rv->l.tmps[i]);
      rv->removed = 1;
    }
  }
  rv->void_after = UINT64_MAX;
  rv->nlive = rv->l.n;
  if (!(w->store.meta.flags & WALRUS__META_TRUNC_PENDING)) return WALRUS_OK;
  rv->void_after = w->store.meta.trunc_last;
  while (rv->nlive > 0 && rv->l.firsts[rv->nlive - 1] > rv->void_after)
    rv->nlive--;
  /* Newest first, as truncate_back itself removes them. */
  for (size_t k = rv->l.n; k > rv->nlive && rv->writable; k--) {
    char name[WALRUS__SEG_NAME_LEN + 1];
    walrus__fmt_seg_name(name, rv->l.firsts[k - 1]);
    rc = walrus__os_unlink(w, name);
    if (rc != WALRUS_OK) return rc;
    walrus__log(w, WALRUS_LOG_INFO,
                "removed %s, void after an interrupted truncate_back", name);
    rv->removed = 1;
  }
  return WALRUS_OK;
}

/* The segments before s (first index at most META's) do not reach it: they
 * are leftovers of an interrupted truncate_front whose unlinks reached the
 * disk out of order, since every entry missing is below the first index.
 * Remove them from the table (and, writable, the directory). */
static int drop_before_gap(recovery_t *rv) {
  walrus_t *w = rv->w;
  int rc = WALRUS_OK;
  for (size_t k = 0; k < w->store.nsegs; k++) {
    if (rv->writable && rc == WALRUS_OK) {
      rc = walrus__os_unlink(w, w->store.segs[k]->name);
      if (rc == WALRUS_OK) {
        walrus__log(w, WALRUS_LOG_INFO,
                    "removed %s, below the first index %llu",
                    w->store.segs[k]->name,
                    (unsigned long long)w->store.meta.first_index);
        rv->removed = 1;
      }
    }
    walrus__seg_uncache(w, w->store.segs[k]);
    walrus__seg_free(w, w->store.segs[k]);
  }
  w->store.nsegs = 0;
  return rc;
}

/* A sealed segment, checked through its trailer only; its file reopens on
 * first use.  A sealed *last* segment of a writable open has its index
 * checked now, since the next append starts a new segment after it, and
 * is made durable: a writer that died between writing the trailer and its
 * fdatasync leaves a seal that only the page cache holds, and a segment
 * after it would make a lost trailer corruption. */
static int take_sealed(recovery_t *rv, walrus__seg_t *s, int last) {
  walrus_t *w = rv->w;
  s->sealed = 1;
  walrus__os_close(w, s->file);
  s->file = NULL;
  if (!last || !rv->writable) return WALRUS_OK;
  int rc = walrus__seg_acquire(w, s);
  if (rc != WALRUS_OK) return rc;
  rc = walrus__os_sync(w, s->file, s->name);
  walrus__seg_release(w, s);
  return rc;
}

/* Step 4: scan the unsealed last segment and apply the recovery mode to
 * what ends the scan. */
static int take_tail(recovery_t *rv, walrus__seg_t *s, uint64_t size) {
  walrus_t *w = rv->w;
  scan_t sc;
  int cut;
  int rc = scan_records(w, s, size, rv->void_after, &sc, NULL);
  if (rc == WALRUS_OK) rc = tail_damage(w, s, size, &sc, &cut);
  if (rc != WALRUS_OK) return rc;
  s->end = sc.good_end;
  if (cut) {
    rc = cut_tail(w, s, size, &sc);
    if (rc != WALRUS_OK) return rc;
  }
  if (sc.good_count > 0) w->commit.epoch = sc.last_epoch + 1;
  return WALRUS_OK;
}

/* Steps 2 and 3 for segment l.firsts[i]: open it, check its header and
 * its place after the one before, and add it to the table; a sealed one
 * through its trailer, the last one scanned.  *stop is set when salvage
 * moved this segment and the rest aside. */
static int add_segment(recovery_t *rv, size_t i, int *stop) {
  walrus_t *w = rv->w;
  const uint64_t *firsts = rv->l.firsts;
  walrus__seg_t *s = NULL;
  int stale, last = i + 1 == rv->nlive, sealed = 0;
  uint64_t size;
  char why[160];
  int rc = open_segment(w, firsts[i], rv->writable && last, &s, &stale);
  if (rc != WALRUS_OK) {
    if (!rv->salvage || rc != WALRUS_ECORRUPT) return rc;
    *stop = 1;
    return move_aside(w, firsts, i, rv->nlive);
  }
  if (stale) {
    if (rv->writable) {
      rc = walrus__os_unlink(w, s->name);
      walrus__log(w, WALRUS_LOG_INFO,
                  "removed %s, left over from an interrupted reset", s->name);
      rv->removed = 1;
    }
    walrus__seg_free(w, s);
    return rc;
  }
  if (w->store.nsegs > 0) {
    walrus__seg_t *prev = w->store.segs[w->store.nsegs - 1];
    if (prev->first + prev->count != s->first &&
        s->first <= w->store.meta.first_index) {
      rc = drop_before_gap(rv);
      if (rc != WALRUS_OK) {
        walrus__seg_free(w, s);
        return rc;
      }
    }
  }
  if (w->store.nsegs > 0) {
    walrus__seg_t *prev = w->store.segs[w->store.nsegs - 1];
    if (prev->first + prev->count != s->first) {
      walrus__seg_free(w, s);
      if (rv->salvage) {
        *stop = 1;
        return move_aside(w, firsts, i, rv->nlive);
      }
      return walrus__fail(w, WALRUS_ECORRUPT, 0,
                          "%s: entries %llu..%llu are missing (no segment "
                          "between %s and %020llu.seg)",
                          w->dir,
                          (unsigned long long)(prev->first + prev->count),
                          (unsigned long long)(firsts[i] - 1), prev->name,
                          (unsigned long long)firsts[i]);
    }
  }
  rc = walrus__os_size(w, s->file, s->name, &size);
  if (rc == WALRUS_OK) rc = walrus__segs_push(w, s);
  if (rc != WALRUS_OK) {
    walrus__seg_free(w, s);
    return rc;
  }
  if (rv->salvage) {
    int ok;
    if (!last) {
      /* Salvage may have to cut a sealed segment: reopen writable. */
      walrus__os_close(w, s->file);
      s->file = NULL;
      rc = walrus__os_open(w, s->name, WALRUS_VFS_WRITE, &s->file);
      if (rc != WALRUS_OK) return rc;
    }
    rc = salvage_segment(w, s, size, last, rv->void_after, &ok);
    if (rc != WALRUS_OK || ok) return rc;
    *stop = 1;
    return move_aside(w, firsts, i + 1, rv->nlive);
  }
  rc = read_trailer(w, s, size, &sealed, why, sizeof why);
  if (rc != WALRUS_OK) return rc;
  if (sealed) return take_sealed(rv, s, last);
  if (!last)
    return walrus__fail(w, WALRUS_ECORRUPT, 0,
                        "%s/%s is not the last segment but is not sealed: %s",
                        w->dir, s->name, why);
  return take_tail(rv, s, size);
}

/* META's first index against the segments.  Whole segments below it are
 * leftovers of an interrupted truncate_front (or, with the last one, of a
 * truncate_front to last + 1): they are void.  Then the log's extent. */
static int apply_first_index(recovery_t *rv) {
  walrus_t *w = rv->w;
  int rc = WALRUS_OK;
  w->store.first_index = w->store.meta.first_index;
  size_t drop = 0;
  while (drop < w->store.nsegs &&
         w->store.segs[drop]->first < w->store.first_index &&
         w->store.segs[drop]->first + w->store.segs[drop]->count <=
             w->store.first_index)
    drop++;
  if (w->store.nsegs > drop) {
    walrus__seg_t *head = w->store.segs[drop];
    if (head->first > w->store.meta.first_index)
      return walrus__fail(w, WALRUS_ECORRUPT, 0,
                          "%s: entries %llu..%llu are missing (first "
                          "segment is %s)",
                          w->dir, (unsigned long long)w->store.meta.first_index,
                          (unsigned long long)(head->first - 1), head->name);
  }
  /* A failed unlink leaves the table holding only the segments not yet
   * freed. */
  size_t gone = 0;
  for (; gone < drop; gone++) {
    if (rv->writable) {
      rc = walrus__os_unlink(w, w->store.segs[gone]->name);
      if (rc != WALRUS_OK) break;
      walrus__log(
          w, WALRUS_LOG_INFO, "removed %s, wholly below the first index %llu",
          w->store.segs[gone]->name, (unsigned long long)w->store.first_index);
      rv->removed = 1;
    }
    walrus__seg_uncache(w, w->store.segs[gone]);
    walrus__seg_free(w, w->store.segs[gone]);
  }
  if (gone > 0) {
    memmove(w->store.segs, w->store.segs + gone,
            (w->store.nsegs - gone) * sizeof *w->store.segs);
    w->store.nsegs -= gone;
  }
  if (rc != WALRUS_OK) return rc;
  if (w->store.nsegs > 0) {
    walrus__seg_t *tail = w->store.segs[w->store.nsegs - 1];
    w->store.next_index = tail->first + tail->count;
  } else {
    w->store.next_index = w->store.meta.first_index;
  }
  if (w->store.meta.flags & WALRUS__META_TRUNC_PENDING &&
      w->store.meta.trunc_last + 1 < w->store.next_index) {
    /* Read-only: show the log as the unfinished truncation leaves it. */
    if (!rv->writable) w->store.next_index = w->store.meta.trunc_last + 1;
  }
  if (w->store.first_index > w->store.next_index)
    w->store.first_index = w->store.next_index;
  return WALRUS_OK;
}

/* The last step of a writable open: make the removals durable, finish an
 * unfinished truncate_back, and sync the tail, so that the next sync
 * group starts on a synced prefix.  Read-only: show the log as an
 * unfinished truncation will leave it. */
static int settle(recovery_t *rv) {
  walrus_t *w = rv->w;
  int rc;
  if (!rv->writable) {
    if (w->store.meta.flags & WALRUS__META_TRUNC_PENDING) {
      uint64_t k = w->store.meta.trunc_last;
      if (k + 1 < w->store.next_index) w->store.next_index = k + 1;
      if (w->store.first_index > w->store.next_index)
        w->store.first_index = w->store.next_index;
    }
    return WALRUS_OK;
  }
  if (rv->removed) {
    rc = walrus__os_sync_dir(w);
    if (rc != WALRUS_OK) return rc;
  }
  if (w->store.meta.flags & WALRUS__META_TRUNC_PENDING) {
    rc = walrus__finish_truncate_back(w, w->store.meta.trunc_last, NULL);
    if (rc != WALRUS_OK) return rc;
  }
  if (w->store.nsegs > 0 && !w->store.segs[w->store.nsegs - 1]->sealed) {
    walrus__seg_t *t = w->store.segs[w->store.nsegs - 1];
    rc = walrus__os_sync(w, t->file, t->name);
    if (rc != WALRUS_OK) return rc;
    w->commit.write_off = t->end;
  }
  return WALRUS_OK;
}

int walrus__recover(walrus_t *w) {
  recovery_t rv = {0};
  int found = 0, rc;
  rv.w = w;
  rv.l.w = w;
  rv.writable = !w->cfg.read_only;
  rv.salvage = w->cfg.recovery == WALRUS_RECOVER_SALVAGE;

  rc = list_dir(&rv);
  if (rc == WALRUS_OK) rc = walrus__meta_read(w, &w->store.meta, &found);
  if (rc != WALRUS_OK) goto out;
  if (!found) {
    rc = create_log(&rv);
    goto out;
  }
  /* What the repairs below decide rests on META and on which files the
   * directory names: a reset, a truncate_front or a truncate_back that a
   * dead writer left half done may have renamed META into place without
   * the directory fsync after it.  Removing files on the strength of such
   * a META would, after a power loss, leave the old META with its files
   * gone.  So both are made durable first, in the order the interrupted
   * operation itself uses: META, then the removals. */
  if (rv.writable) {
    rc = make_durable(w, rv.l.salvage_dir);
    if (rc != WALRUS_OK) goto out;
  }
  rc = remove_leftovers(&rv);
  if (rc != WALRUS_OK) goto out;
  for (size_t i = 0; i < rv.nlive; i++) {
    /* Read-only, a segment wholly below the first index is not opened: it
     * is void, and a writer's truncate_front may be removing it now. */
    if (!rv.writable && i + 1 < rv.nlive &&
        rv.l.firsts[i + 1] <= w->store.meta.first_index)
      continue;
    int stop = 0;
    rc = add_segment(&rv, i, &stop);
    if (rc != WALRUS_OK) goto out;
    if (stop) break;
  }
  rc = apply_first_index(&rv);
  if (rc == WALRUS_OK) rc = settle(&rv);
  if (rc != WALRUS_OK) goto out;
  for (size_t i = 0; i < w->store.nsegs; i++)
    w->store.segs[i]->written = w->store.segs[i]->count;
  w->commit.write_next = w->store.next_index;
  walrus__log(w, WALRUS_LOG_INFO,
              "opened %s%s: %zu segments, entries %llu..%llu", w->dir,
              rv.writable ? "" : " read-only", w->store.nsegs,
              (unsigned long long)w->store.first_index,
              (unsigned long long)(w->store.next_index - 1));
out:
  listing_free(&rv.l);
  return rc;
}

/* For inspect.c (walrus_inspect, walrus_verify, walrus_repair_plan): the
 * scan of s's records that open makes, and, with judge, open's judgement
 * of what stopped it, without applying anything.  Only reads. */
int walrus__recover_scan(walrus_t *w, walrus__seg_t *s, uint64_t size,
                         uint64_t void_after, int judge, int deep,
                         walrus__scan_report_t *out) {
  scan_t sc;
  walrus__zunit_t z = {0};
  int any = 0;
  deep = deep && s->version >= WALRUS__SEG_VERSION_ZSTD && walrus__zstd_built();
  int rc = scan_records(w, s, size, void_after, &sc, deep ? &z : NULL);
  walrus__zunit_free(w, &z);
  memset(out, 0, sizeof *out);
  if (rc != WALRUS_OK) return rc;
  out->zbad_off = sc.zbad_off;
  snprintf(out->zwhy, sizeof out->zwhy, "%s", sc.zwhy);
  out->good_end = sc.good_end;
  out->good_count = sc.good_count;
  out->stop = sc.stop;
  out->stopped = sc.stopped;
  out->at_index = sc.at_index;
  out->torn = 1;
  snprintf(out->why, sizeof out->why, "%s", sc.why);
  if (!judge || !sc.stopped) return WALRUS_OK;
  rc = classify(w, s, size, &sc, &out->torn, &any, out->evidence,
                sizeof out->evidence);
  out->zero_end = sc.at_zeros && sc.stop == sc.good_end && !any;
  return rc;
}
