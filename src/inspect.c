/*
 * inspect.c: reading a log directory without opening it, for tools:
 * walrus_inspect() (what an open would find), walrus_verify() (every
 * checksum of every file) and walrus_repair_plan() (what salvage recovery
 * would cut, move and remove).
 *
 * One walk serves all three.  It lists the directory, reads META, and
 * takes the segments in index order as recover.c does: the header, the
 * trailer, and the records through walrus__recover_scan(), so that a torn
 * tail and damage are told apart by open's own rule; walrus_verify() and
 * walrus_repair_plan() also have it decompress every compressed unit and
 * check its records against the frame (deep), which open does not.  The
 * walk runs on a handle of its own that holds no lock, no file but the one
 * it reads, and registers nowhere: it never writes, and a writer may run
 * beside it.
 *
 * Invariant: nothing here calls a VFS method that changes the directory
 * or a file (write, truncate, rename, unlink, mkdir, lock, sync).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What the walk found in one segment file. */
typedef struct seg_s {
  walrus_segment_info_t info; /* what walrus_inspect() reports */
  int header_ok;              /* opened; header of this log, named right */
  int unsafe;                 /* could not be opened at all (rc below) */
  int gap;                    /* entries are missing before it */
  int stale;                  /* of the log before a reset */
  int sound;                  /* salvage leaves it as it is */
  uint64_t good_end;          /* end of its valid prefix of whole units */
  uint64_t good_count;        /* entries in that prefix */
  uint64_t trailer_count;     /* sealed: the trailer's count */
} seg_t;

/* The state of one walk. */
typedef struct walk_s {
  walrus_t *w;                    /* the walk's own read-only handle */
  int full;                       /* read the records of every segment */
  walrus_finding_fn on_finding;   /* NULL, or told of each finding */
  walrus_progress_fn on_progress; /* NULL, or told after each segment */
  void *ud;                       /* passed to both */
  int stop;                       /* on_finding asked to stop */
  int have_meta;                  /* META was read */
  walrus__meta_t meta;            /* META */
  uint64_t void_after;            /* unfinished truncate_back, or MAX */
  uint64_t *firsts;               /* first indexes of *.seg, sorted */
  size_t n, cap;                  /* count and capacity of firsts */
  char **tmps;                    /* *.tmp names */
  size_t ntmp, tmpcap;            /* count and capacity of tmps */
  int oom;                        /* the listing ran out of memory */
  seg_t *segs;                    /* one per firsts[] */
  size_t nlive;                   /* firsts[0..nlive) are not void */
  uint64_t total, done;           /* bytes of segment files, and checked */
  walrus_verify_result_t res;     /* counts */
  walrus_tail_state_t tail;       /* the tail's state */
  uint64_t cut_off, cut_bytes;    /* TORN: the cut open would make */
  int damaged;                    /* open would refuse the log */
  char problem[256];              /* the first damage, or the torn tail */
} walk_t;

/* Copy src into dst of len bytes, cut to fit. */
static void copy_text(char *dst, size_t len, const char *src) {
  size_t n = strlen(src);
  if (n >= len) n = len - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* A handle for reading only: no lock, no reader file, no threads. */
static int probe_open(const char *dir, const walrus_config_t *cfg,
                      walrus_t **out, char *errbuf, size_t errlen) {
  walrus_config_t c;
  walrus_allocator_t alloc;
  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (dir == NULL || dir[0] == '\0') {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen, "dir must not be NULL or empty");
    return WALRUS_EINVAL;
  }
  if (strlen(dir) + 1 + WALRUS__NAME_MAX >= WALRUS__PATH_MAX) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen, "dir: the path is too long");
    return WALRUS_EINVAL;
  }
  if (cfg != NULL)
    c = *cfg;
  else
    walrus_config_default(&c);
  c.read_only = 1;
  if (c.allocator != NULL)
    alloc = *c.allocator;
  else
    walrus__default_allocator(&alloc);
  walrus_t *w = alloc.malloc_fn(alloc.ud, sizeof *w);
  if (w == NULL) return WALRUS_ENOMEM;
  memset(w, 0, sizeof *w);
  w->cfg = c;
  w->alloc = alloc;
  w->vfs = c.vfs != NULL ? c.vfs : walrus_vfs_posix();
  walrus__sys_init(w);
  if (pthread_mutex_init(&w->err.mu, NULL) != 0) {
    alloc.free_fn(alloc.ud, w);
    return WALRUS_ENOMEM;
  }
  size_t dl = strlen(dir);
  w->dir = walrus__malloc(w, dl + 1);
  if (w->dir == NULL) {
    pthread_mutex_destroy(&w->err.mu);
    alloc.free_fn(alloc.ud, w);
    return WALRUS_ENOMEM;
  }
  memcpy(w->dir, dir, dl + 1);
  /* Held open for the walk, as a handle holds it (vfs.c). */
  int rc = walrus__os_dir_open(w, 0);
  if (rc != WALRUS_OK) {
    if (errbuf != NULL && errlen > 0)
      copy_text(errbuf, errlen, walrus_errmsg(w));
    walrus__free(w, w->dir);
    pthread_mutex_destroy(&w->err.mu);
    alloc.free_fn(alloc.ud, w);
    return rc;
  }
  *out = w;
  return WALRUS_OK;
}

static void probe_close(walrus_t *w) {
  if (w == NULL) return;
  walrus__os_close(w, w->commit.durable_file);
  walrus__os_dir_close(w);
  walrus__free(w, w->dir);
  pthread_mutex_destroy(&w->err.mu);
  w->alloc.free_fn(w->alloc.ud, w);
}

/* Copy the handle's last message into errbuf. */
static int probe_fail(walrus_t *w, int rc, char *errbuf, size_t errlen) {
  if (errbuf != NULL && errlen > 0) copy_text(errbuf, errlen, walrus_errmsg(w));
  return rc;
}

static int push_name(walk_t *k, const char *name, size_t nl) {
  if (k->ntmp == k->tmpcap) {
    size_t cap = k->tmpcap ? k->tmpcap * 2 : 8;
    char **p = walrus__realloc(k->w, k->tmps, cap * sizeof *p);
    if (p == NULL) return k->oom = 1;
    k->tmps = p;
    k->tmpcap = cap;
  }
  char *c = walrus__malloc(k->w, nl + 1);
  if (c == NULL) return k->oom = 1;
  memcpy(c, name, nl + 1);
  k->tmps[k->ntmp++] = c;
  return 0;
}

/* The listing: segment files, and the *.tmp leftovers an open removes. */
static int on_name(void *arg, const char *name) {
  walk_t *k = arg;
  uint64_t first;
  size_t nl = strlen(name);
  if (walrus__fmt_seg_name_parse(name, &first)) {
    if (k->n == k->cap) {
      size_t cap = k->cap ? k->cap * 2 : 64;
      uint64_t *p = walrus__realloc(k->w, k->firsts, cap * sizeof *p);
      if (p == NULL) return k->oom = 1;
      k->firsts = p;
      k->cap = cap;
    }
    k->firsts[k->n++] = first;
    return 0;
  }
  if (nl > 4 && strcmp(name + nl - 4, ".tmp") == 0)
    return push_name(k, name, nl);
  return 0;
}

static int by_index(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void walk_free(walk_t *k) {
  for (size_t i = 0; i < k->ntmp; i++) walrus__free(k->w, k->tmps[i]);
  walrus__free(k->w, k->tmps);
  walrus__free(k->w, k->firsts);
  walrus__free(k->w, k->segs);
}

/* Report a finding; the first damage (or the torn tail) is the problem. */
__attribute__((format(printf, 5, 6))) static void emit(
    walk_t *k, walrus_finding_kind_t kind, const char *file, uint64_t off,
    const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (kind == WALRUS_FINDING_DAMAGE)
    k->res.damage++;
  else
    k->res.torn++;
  if (!k->damaged) {
    char line[640];
    snprintf(line, sizeof line, "%s at offset %llu: %s", file,
             (unsigned long long)off, msg);
    copy_text(k->problem, sizeof k->problem, line);
  }
  if (kind == WALRUS_FINDING_DAMAGE) k->damaged = 1;
  if (k->on_finding != NULL && !k->stop) {
    walrus_finding_t f = {kind, file, off, msg};
    if (k->on_finding(k->ud, &f) != 0) k->stop = 1;
  }
}

/* Check a sealed segment's index record: its header, CRC, and that its
 * offsets are those the scan found (s->offs).  0 if sound, else why. */
static int check_index(walk_t *k, walrus__seg_t *s, uint32_t index_offset,
                       uint64_t count, char *why, size_t whylen) {
  walrus_t *w = k->w;
  size_t len = WALRUS__REC_HEADER_BYTES + 4 * (size_t)count;
  unsigned char *p = walrus__malloc(w, len);
  walrus__rec_t r;
  int rc;
  if (p == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "index record");
  rc = walrus__os_read_full(w, s->file, s->name, p, len, index_offset);
  if (rc == WALRUS_ECORRUPT) {
    snprintf(why, whylen, "index record runs past the end of the file");
    rc = 1;
  } else if (rc != WALRUS_OK) {
    /* a read error: returned as is */
  } else if (walrus__rec_header_decode(p, &r) != WALRUS__FMT_OK ||
             r.flags != WALRUS__REC_INDEX || r.index != s->first ||
             r.term != count || r.body_len != 4 * count) {
    snprintf(why, whylen, "malformed index record");
    rc = 1;
  } else if (walrus__rec_crc(s->salt, p, p + WALRUS__REC_HEADER_BYTES,
                             r.body_len) != r.crc) {
    snprintf(why, whylen, "index record checksum mismatch");
    rc = 1;
  } else {
    for (uint64_t i = 0; i < count; i++)
      if (walrus__get32(p + WALRUS__REC_HEADER_BYTES + 4 * i) != s->offs[i]) {
        snprintf(why, whylen, "index record gives entry %llu offset %u, not %u",
                 (unsigned long long)(s->first + i),
                 walrus__get32(p + WALRUS__REC_HEADER_BYTES + 4 * i),
                 s->offs[i]);
        rc = 1;
        break;
      }
  }
  walrus__free(w, p);
  return rc;
}

/* The trailer of s, as recover.c's read_trailer() judges it: *sealed, and
 * the trailer's fields; why says what is wrong when it is not sealed. */
static int trailer_of(walk_t *k, walrus__seg_t *s, uint64_t size, int *sealed,
                      walrus__trailer_t *t, char *why, size_t whylen) {
  unsigned char buf[WALRUS__TRAILER_BYTES];
  *sealed = 0;
  if (size < WALRUS__SEG_HEADER_BYTES + WALRUS__REC_HEADER_BYTES +
                 WALRUS__TRAILER_BYTES) {
    snprintf(why, whylen, "too short to be sealed (%llu bytes)",
             (unsigned long long)size);
    return WALRUS_OK;
  }
  int rc = walrus__os_read_full(k->w, s->file, s->name, buf, sizeof buf,
                                size - WALRUS__TRAILER_BYTES);
  if (rc != WALRUS_OK) return rc;
  if (walrus__trailer_decode(buf, s->salt, t) != WALRUS__FMT_OK) {
    snprintf(why, whylen, "no valid trailer");
    return WALRUS_OK;
  }
  if (t->first_index != s->first ||
      (uint64_t)t->index_offset + walrus__rec_size((uint64_t)t->count * 4) +
              WALRUS__TRAILER_BYTES !=
          size) {
    snprintf(why, whylen, "trailer disagrees with the file");
    return WALRUS_OK;
  }
  *sealed = 1;
  return WALRUS_OK;
}

/* Open segment firsts[i] and check its header; *s is NULL when the walk
 * must go on without it (a finding was made, or it is stale). */
static int open_header(walk_t *k, size_t i, walrus__seg_t **out) {
  walrus_t *w = k->w;
  seg_t *g = &k->segs[i];
  unsigned char buf[WALRUS__SEG_HEADER_BYTES];
  walrus__seg_header_t h;
  walrus__seg_t *s = walrus__seg_new(w, k->firsts[i]);
  int rc;
  *out = NULL;
  if (s == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "segment");
  rc = walrus__os_open(w, s->name, WALRUS_VFS_READ, &s->file);
  if (rc == WALRUS_ENOMEM) goto out;
  if (rc != WALRUS_OK) {
    g->unsafe = rc;
    emit(k, WALRUS_FINDING_DAMAGE, s->name, 0, "cannot open it: %s",
         walrus_errmsg(w));
    rc = WALRUS_OK;
    goto out;
  }
  rc = walrus__os_size(w, s->file, s->name, &g->info.bytes);
  if (rc != WALRUS_OK) goto out;
  if (g->info.bytes < WALRUS__SEG_HEADER_BYTES) {
    emit(k, WALRUS_FINDING_DAMAGE, s->name, 0,
         "%llu bytes: too short for a segment header",
         (unsigned long long)g->info.bytes);
    goto out;
  }
  rc = walrus__os_read_full(w, s->file, s->name, buf, sizeof buf, 0);
  if (rc != WALRUS_OK) goto out;
  switch (walrus__fmt_seg_header_decode(buf, &h)) {
    case WALRUS__FMT_OK:
      break;
    case WALRUS__FMT_BAD_VERSION:
      emit(k, WALRUS_FINDING_DAMAGE, s->name, 8,
           "format version %u is not supported", walrus__get32(buf + 8));
      goto out;
    default:
      emit(k, WALRUS_FINDING_DAMAGE, s->name, 0, "bad segment header");
      goto out;
  }
  g->info.created_ns = h.created_ns;
  g->info.version = h.version;
  if (h.log_id != k->meta.log_id) {
    if (k->meta.prev_log_id != 0 && h.log_id == k->meta.prev_log_id) {
      g->stale = 1;
      g->info.state = WALRUS_SEGMENT_VOID;
      g->sound = 1;
    } else {
      emit(k, WALRUS_FINDING_DAMAGE, s->name, 16,
           "belongs to another log (id %016llx, not %016llx)",
           (unsigned long long)h.log_id, (unsigned long long)k->meta.log_id);
    }
    goto out;
  }
  if (h.first_index != s->first) {
    emit(k, WALRUS_FINDING_DAMAGE, s->name, 24, "header says first index %llu",
         (unsigned long long)h.first_index);
    goto out;
  }
  s->salt = h.salt;
  s->seed = walrus__salt_seed(h.salt);
  s->version = h.version;
  g->header_ok = 1;
  *out = s;
  return WALRUS_OK;
out:
  walrus__seg_free(w, s);
  return rc;
}

/* A sealed segment's records, index record and trailer, all read. */
static int check_sealed(walk_t *k, walrus__seg_t *s, seg_t *g,
                        const walrus__trailer_t *t,
                        const walrus__scan_report_t *rep) {
  char why[200];
  g->good_end = rep->good_end < rep->stop ? rep->good_end : rep->stop;
  g->good_count = rep->good_count;
  if (!rep->at_index || rep->stop != t->index_offset ||
      rep->good_count != t->count) {
    if (rep->stopped && !rep->at_index)
      emit(k, WALRUS_FINDING_DAMAGE, s->name, rep->stop, "%s", rep->why);
    else
      emit(k, WALRUS_FINDING_DAMAGE, s->name, t->index_offset,
           "the trailer says %u entries and an index record at offset %u; "
           "the records say %llu and %llu",
           t->count, t->index_offset, (unsigned long long)rep->good_count,
           (unsigned long long)rep->stop);
    return WALRUS_OK;
  }
  int rc = check_index(k, s, t->index_offset, t->count, why, sizeof why);
  if (rc < 0) return rc;
  if (rc > 0) {
    emit(k, WALRUS_FINDING_DAMAGE, s->name, t->index_offset, "%s", why);
    return WALRUS_OK;
  }
  g->sound = 1;
  g->good_end = t->index_offset;
  return WALRUS_OK;
}

/* The unsealed last segment: clean, torn (open cuts it) or damaged. */
static void judge_tail(walk_t *k, walrus__seg_t *s, seg_t *g,
                       const walrus__scan_report_t *rep) {
  g->info.state = WALRUS_SEGMENT_TAIL;
  g->good_end = rep->good_end;
  g->good_count = rep->good_count;
  if (!rep->stopped || rep->zero_end) {
    g->sound = 1;
    return;
  }
  if (rep->torn) {
    k->tail = WALRUS_TAIL_TORN;
    k->cut_off = rep->good_end;
    k->cut_bytes = g->info.bytes - rep->good_end;
    emit(k, WALRUS_FINDING_TORN, s->name, rep->stop,
         "torn tail (%s): an open cuts %llu bytes from offset %llu", rep->why,
         (unsigned long long)k->cut_bytes, (unsigned long long)k->cut_off);
    return;
  }
  k->tail = WALRUS_TAIL_DAMAGED;
  emit(k, WALRUS_FINDING_DAMAGE, s->name, rep->stop, "%s, but %s", rep->why,
       rep->evidence);
}

/* Segment i: header, place after the one before, trailer, and (for the
 * last, or in a full walk) the records. */
static int walk_segment(walk_t *k, size_t i, uint64_t *expect) {
  walrus_t *w = k->w;
  seg_t *g = &k->segs[i];
  walrus__seg_t *s;
  walrus__trailer_t t;
  walrus__scan_report_t rep;
  char why[160];
  int sealed = 0, last = i + 1 == k->nlive;
  int rc = open_header(k, i, &s);
  if (rc != WALRUS_OK || s == NULL) {
    if (!g->header_ok && !g->stale) {
      g->info.state = WALRUS_SEGMENT_DAMAGED;
      *expect = 0; /* nothing to check the next one's place against */
    }
    return rc;
  }
  if (*expect != 0 && *expect != s->first) {
    if (s->first <= k->meta.first_index) {
      /* An interrupted truncate_front: everything before is void. */
      for (size_t j = 0; j < i; j++)
        if (k->segs[j].info.state != WALRUS_SEGMENT_DAMAGED)
          k->segs[j].info.state = WALRUS_SEGMENT_VOID;
    } else {
      g->gap = 1;
      emit(k, WALRUS_FINDING_DAMAGE, s->name, 0,
           "entries %llu..%llu are missing before it",
           (unsigned long long)*expect, (unsigned long long)(s->first - 1));
    }
  }
  rc = trailer_of(k, s, g->info.bytes, &sealed, &t, why, sizeof why);
  if (rc != WALRUS_OK) goto out;
  if (sealed && !last && !k->full) {
    g->info.state = WALRUS_SEGMENT_SEALED;
    g->info.count = g->trailer_count = t.count;
    g->info.end = g->good_end = t.index_offset;
    g->good_count = t.count;
    g->sound = 1;
    goto out;
  }
  rc = walrus__recover_scan(w, s, g->info.bytes, k->void_after, last && !sealed,
                            k->full, &rep);
  if (rc != WALRUS_OK) goto out;
  k->res.bytes += g->info.bytes;
  if (rep.zbad_off != 0)
    emit(k, WALRUS_FINDING_DAMAGE, s->name, rep.zbad_off, "%s", rep.zwhy);
  if (sealed) {
    g->info.state = WALRUS_SEGMENT_SEALED;
    g->trailer_count = t.count;
    rc = check_sealed(k, s, g, &t, &rep);
    k->res.entries += g->sound ? t.count : rep.good_count;
  } else if (!last) {
    g->info.state = WALRUS_SEGMENT_DAMAGED;
    g->good_end = rep.good_end;
    g->good_count = rep.good_count;
    k->res.entries += rep.good_count;
    if (rep.stopped && !rep.at_index)
      emit(k, WALRUS_FINDING_DAMAGE, s->name, rep.stop, "%s", rep.why);
    else
      emit(k, WALRUS_FINDING_DAMAGE, s->name,
           g->info.bytes - WALRUS__TRAILER_BYTES,
           "not the last segment but not sealed: %s", why);
  } else {
    judge_tail(k, s, g, &rep);
    k->res.entries += rep.good_count;
  }
  if (g->gap) g->info.state = WALRUS_SEGMENT_DAMAGED;
  g->info.count = g->info.state == WALRUS_SEGMENT_SEALED && g->sound
                      ? g->trailer_count
                      : g->good_count;
  g->info.end = g->good_end;
out:
  /* A sealed segment's trailer says where the next one starts, even when
   * its records are damaged. */
  *expect = s->first + (sealed ? g->trailer_count : g->info.count);
  if (g->info.state == WALRUS_SEGMENT_DAMAGED && !sealed) *expect = 0;
  walrus__seg_free(w, s);
  return rc;
}

/* How far the writer says the log is durable (DURABLE), or 0. */
static uint64_t durable_next(walk_t *k) {
  walrus_t *w = k->w;
  walrus__durable_t d;
  if (walrus__os_try_open(w, WALRUS__DURABLE_NAME, WALRUS_VFS_READ,
                          &w->commit.durable_file) != 0) {
    w->commit.durable_file = NULL;
    return 0;
  }
  int ok = walrus__durable_read(w, &d);
  walrus__os_close(w, w->commit.durable_file);
  w->commit.durable_file = NULL;
  return ok && d.log_id == k->meta.log_id ? d.durable_next : 0;
}

/* Sizes of every segment file, for progress. */
static void measure(walk_t *k) {
  for (size_t i = 0; i < k->n; i++) {
    char name[WALRUS__SEG_NAME_LEN + 1];
    walrus_vfs_file_t *f;
    uint64_t size;
    walrus__fmt_seg_name(name, k->firsts[i]);
    if (walrus__os_open(k->w, name, WALRUS_VFS_READ, &f) != WALRUS_OK) continue;
    if (walrus__os_size(k->w, f, name, &size) == WALRUS_OK) k->total += size;
    walrus__os_close(k->w, f);
  }
}

/* List, read META, and walk every segment. */
static int walk(walk_t *k) {
  walrus_t *w = k->w;
  int found = 0;
  int rc = walrus__os_list(w, on_name, k);
  if (k->oom) return walrus__fail(w, WALRUS_ENOMEM, 0, "listing %s", w->dir);
  if (rc != 0) return walrus__fail(w, WALRUS_EIO, -rc, "list %s", w->dir);
  if (k->n > 1) qsort(k->firsts, k->n, sizeof *k->firsts, by_index);
  k->segs = walrus__malloc(w, (k->n ? k->n : 1) * sizeof *k->segs);
  if (k->segs == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "segments");
  memset(k->segs, 0, (k->n ? k->n : 1) * sizeof *k->segs);
  for (size_t i = 0; i < k->n; i++) {
    walrus__fmt_seg_name(k->segs[i].info.name, k->firsts[i]);
    k->segs[i].info.first_index = k->firsts[i];
  }
  rc = walrus__meta_read(w, &k->meta, &found);
  if (rc == WALRUS_ECORRUPT) {
    emit(k, WALRUS_FINDING_DAMAGE, "META", 0, "%s", walrus_errmsg(w));
    return WALRUS_OK;
  }
  if (rc != WALRUS_OK) return rc;
  if (!found) {
    if (k->n == 0)
      return walrus__fail(w, WALRUS_EIO, ENOENT, "%s holds no walrus log",
                          w->dir);
    emit(k, WALRUS_FINDING_DAMAGE, "META", 0,
         "missing, but the directory holds segments");
    return WALRUS_OK;
  }
  k->have_meta = 1;
  k->void_after = k->meta.flags & WALRUS__META_TRUNC_PENDING
                      ? k->meta.trunc_last
                      : UINT64_MAX;
  k->nlive = k->n;
  while (k->nlive > 0 && k->firsts[k->nlive - 1] > k->void_after) k->nlive--;
  if (k->on_progress != NULL) measure(k);
  uint64_t expect = 0;
  for (size_t i = 0; i < k->n && !k->stop; i++) {
    seg_t *g = &k->segs[i];
    if (i >= k->nlive) {
      g->info.state = WALRUS_SEGMENT_VOID;
      g->sound = 1;
      continue;
    }
    rc = walk_segment(k, i, &expect);
    if (rc != WALRUS_OK) return rc;
    k->res.segments++;
    k->done += g->info.bytes;
    if (k->on_progress != NULL) k->on_progress(k->ud, k->done, k->total);
  }
  /* Segments wholly below the first index are void (open removes them). */
  for (size_t i = 0; i < k->nlive; i++) {
    seg_t *g = &k->segs[i];
    if ((g->info.state == WALRUS_SEGMENT_SEALED ||
         g->info.state == WALRUS_SEGMENT_TAIL) &&
        g->info.first_index < k->meta.first_index &&
        g->info.first_index + g->info.count <= k->meta.first_index)
      g->info.state = WALRUS_SEGMENT_VOID;
  }
  return WALRUS_OK;
}

static int walk_run(walk_t *k, const char *dir, const walrus_config_t *cfg,
                    int full, char *errbuf, size_t errlen) {
  int rc = probe_open(dir, cfg, &k->w, errbuf, errlen);
  if (rc != WALRUS_OK) return rc;
  k->full = full;
  k->tail = WALRUS_TAIL_CLEAN;
  rc = walk(k);
  if (rc != WALRUS_OK) probe_fail(k->w, rc, errbuf, errlen);
  return rc;
}

static void walk_end(walk_t *k) {
  walk_free(k);
  probe_close(k->w);
}

static int null_out(char *errbuf, size_t errlen) {
  if (errbuf != NULL && errlen > 0)
    copy_text(errbuf, errlen, "out must not be NULL");
  return WALRUS_EINVAL;
}

int walrus_inspect(const char *dir, const walrus_config_t *cfg,
                   walrus_inspect_t *out, char *errbuf, size_t errlen) {
  walk_t k = {0};
  if (out == NULL) return null_out(errbuf, errlen);
  int rc = walk_run(&k, dir, cfg, 0, errbuf, errlen);
  if (rc != WALRUS_OK) goto out;
  walrus_inspect_t r = {0};
  r.log_id = k.meta.log_id;
  r.format_version = WALRUS__FORMAT_VERSION;
  r.truncating = (k.meta.flags & WALRUS__META_TRUNC_PENDING) != 0;
  r.trunc_last = r.truncating ? k.meta.trunc_last : 0;
  r.tail_state = k.tail;
  r.tail_cut_offset = k.cut_off;
  r.tail_cut_bytes = k.cut_bytes;
  r.damaged = k.damaged;
  copy_text(r.problem, sizeof r.problem, k.problem);
  r.durable_next = k.have_meta ? durable_next(&k) : 0;
  uint64_t next = k.meta.first_index;
  for (size_t i = 0; i < k.n; i++) {
    const walrus_segment_info_t *s = &k.segs[i].info;
    r.total_bytes += s->bytes;
    if (s->state == WALRUS_SEGMENT_SEALED || s->state == WALRUS_SEGMENT_TAIL)
      next = s->first_index + s->count;
  }
  if (r.truncating && k.meta.trunc_last + 1 < next)
    next = k.meta.trunc_last + 1;
  uint64_t first = k.meta.first_index < next ? k.meta.first_index : next;
  r.next_index = next;
  r.first_index = first < next ? first : 0;
  r.last_index = first < next ? next - 1 : 0;
  if (k.n > 0) {
    r.segments = malloc(k.n * sizeof *r.segments);
    if (r.segments == NULL) {
      rc = probe_fail(k.w, walrus__fail(k.w, WALRUS_ENOMEM, 0, "report"),
                      errbuf, errlen);
      goto out;
    }
    for (size_t i = 0; i < k.n; i++) r.segments[i] = k.segs[i].info;
    r.nsegments = k.n;
  }
  *out = r;
out:
  walk_end(&k);
  return rc;
}

/* Reports outlive the walk's handle, so their arrays come from malloc(),
 * not the configured allocator, and go back to free(). */
void walrus_inspect_free(walrus_inspect_t *info) {
  if (info == NULL) return;
  free(info->segments);
  info->segments = NULL;
  info->nsegments = 0;
}

int walrus_verify(const char *dir, const walrus_config_t *cfg,
                  walrus_finding_fn on_finding, walrus_progress_fn on_progress,
                  void *ud, walrus_verify_result_t *out, char *errbuf,
                  size_t errlen) {
  walk_t k = {0};
  k.on_finding = on_finding;
  k.on_progress = on_progress;
  k.ud = ud;
  int rc = walk_run(&k, dir, cfg, 1, errbuf, errlen);
  if (rc == WALRUS_OK && out != NULL) *out = k.res;
  walk_end(&k);
  return rc;
}

/* Append a step to the plan. */
static int add_step(walrus_t *w, walrus_repair_plan_t *p, size_t *cap,
                    walrus_repair_kind_t kind, const char *file,
                    const char *dest, uint64_t off, uint64_t bytes,
                    uint64_t entries) {
  if (p->nsteps == *cap) {
    size_t c = *cap ? *cap * 2 : 8;
    walrus_repair_step_t *s = realloc(p->steps, c * sizeof *s);
    if (s == NULL) return walrus__fail(w, WALRUS_ENOMEM, 0, "repair plan");
    p->steps = s;
    *cap = c;
  }
  walrus_repair_step_t *s = &p->steps[p->nsteps++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  copy_text(s->file, sizeof s->file, file);
  copy_text(s->dest, sizeof s->dest, dest);
  s->offset = off;
  s->bytes = bytes;
  s->entries = entries;
  p->entries_removed += entries;
  return WALRUS_OK;
}

/* The side file salvage would copy a cut to: <name>.salvage, or the first
 * <name>.salvage.N that does not exist (recover.c's save_side()). */
static void side_name(walrus_t *w, const char *seg, char *out, size_t len) {
  snprintf(out, len, "%s.salvage", seg);
  for (int i = 1; i < 1000; i++) {
    walrus_vfs_file_t *f;
    int rc = walrus__os_try_open(w, out, WALRUS_VFS_READ, &f);
    if (rc == -ENOENT) return;
    if (rc == 0) walrus__os_close(w, f);
    snprintf(out, len, "%s.salvage.%d", seg, i);
  }
}

/* What salvage does with the walk's findings: the order of recover.c
 * (leftovers, then each segment: keep, or cut it and move the rest). */
static int plan_steps(walk_t *k, walrus_repair_plan_t *p) {
  walrus_t *w = k->w;
  size_t cap = 0;
  int rc = WALRUS_OK;
  uint64_t last = k->meta.first_index > 0 ? k->meta.first_index - 1 : 0;
  for (size_t i = 0; i < k->ntmp && rc == WALRUS_OK; i++)
    rc = add_step(w, p, &cap, WALRUS_REPAIR_REMOVE, k->tmps[i], "", 0, 0, 0);
  for (size_t i = k->n; i > k->nlive && rc == WALRUS_OK; i--)
    rc = add_step(w, p, &cap, WALRUS_REPAIR_REMOVE, k->segs[i - 1].info.name,
                  "", 0, k->segs[i - 1].info.bytes, 0);
  size_t moved = k->nlive;
  for (size_t i = 0; i < k->nlive && rc == WALRUS_OK; i++) {
    seg_t *g = &k->segs[i];
    if (g->unsafe)
      return walrus__fail(w, g->unsafe, 0,
                          "%s/%s cannot be opened, so salvage stops there: %s",
                          w->dir, g->info.name, walrus_errmsg(w));
    if (g->info.state == WALRUS_SEGMENT_VOID) {
      rc = add_step(w, p, &cap, WALRUS_REPAIR_REMOVE, g->info.name, "", 0,
                    g->info.bytes, 0);
      continue;
    }
    if (!g->header_ok || g->gap) {
      moved = i;
      break;
    }
    if (g->sound) {
      last = g->info.first_index + g->info.count - 1;
      continue;
    }
    uint64_t had = g->trailer_count > g->good_count ? g->trailer_count : 0;
    if (g->good_end < g->info.bytes) {
      char dest[96];
      side_name(w, g->info.name, dest, sizeof dest);
      rc = add_step(w, p, &cap, WALRUS_REPAIR_CUT, g->info.name, dest,
                    g->good_end, g->info.bytes - g->good_end,
                    had ? had - g->good_count : 0);
    }
    last = g->info.first_index + g->good_count - 1;
    moved = i + 1;
    break;
  }
  for (size_t i = moved; i < k->nlive && rc == WALRUS_OK; i++) {
    seg_t *g = &k->segs[i];
    char dest[96];
    snprintf(dest, sizeof dest, "salvage/%s.<ns>", g->info.name);
    uint64_t n = g->header_ok && !g->stale ? g->info.count : 0;
    if (g->trailer_count > n) n = g->trailer_count;
    rc = add_step(w, p, &cap, WALRUS_REPAIR_MOVE, g->info.name, dest, 0,
                  g->info.bytes, n);
  }
  if (k->meta.flags & WALRUS__META_TRUNC_PENDING && k->meta.trunc_last < last)
    last = k->meta.trunc_last;
  p->last_index = last;
  return rc;
}

int walrus_repair_plan(const char *dir, const walrus_config_t *cfg,
                       walrus_repair_plan_t *out, char *errbuf, size_t errlen) {
  walk_t k = {0};
  walrus_repair_plan_t p = {0};
  if (out == NULL) return null_out(errbuf, errlen);
  int rc = walk_run(&k, dir, cfg, 1, errbuf, errlen);
  if (rc == WALRUS_OK && !k.have_meta) {
    rc =
        walrus__fail(k.w, WALRUS_ECORRUPT, 0,
                     "%s: %s; salvage needs a sound META", k.w->dir, k.problem);
    probe_fail(k.w, rc, errbuf, errlen);
  }
  if (rc == WALRUS_OK) {
    rc = plan_steps(&k, &p);
    if (rc != WALRUS_OK) probe_fail(k.w, rc, errbuf, errlen);
  }
  if (rc == WALRUS_OK)
    *out = p;
  else
    free(p.steps);
  walk_end(&k);
  return rc;
}

void walrus_repair_plan_free(walrus_repair_plan_t *plan) {
  if (plan == NULL) return;
  free(plan->steps);
  plan->steps = NULL;
  plan->nsteps = 0;
}
