/*
 * bench_peers.c: walrus beside its peers, on the same workloads, in one
 * run (issue 4).
 *
 * Systems (columns).  Every one is driven through its C API in this
 * process; a peer whose Debian package was missing at build time is
 * skipped with a note.
 *
 *   walrus      SYNC_NONE when not durable, SYNC_ALWAYS when durable
 *   raw-write   write() of a walrus-sized record (40-byte header + payload)
 *               to a file opened O_APPEND, + fdatasync() when durable: the
 *               raw loop with walrus's file layout
 *   raw-pwrite  pwrite() of the same record into a file zero-filled and
 *               synced before timing (wrapping at 64 MiB), + fdatasync():
 *               no allocation or size change to commit, the physical limit
 *               (no row (6): its file wraps)
 *   rocksdb     WAL on, write option sync=false / sync=true
 *   leveldb     sync=false / sync=true
 *   sqlite      WAL mode, synchronous=OFF / FULL; one INSERT per append in
 *               its own transaction, a batch in one transaction; one
 *               connection (SQLITE_OPEN_FULLMUTEX) shared by all threads
 *   lmdb        one write transaction per append (or batch); MDB_NOSYNC
 *               when not durable, default flags when durable
 *
 * Workloads (rows).  Entries are 128 bytes of random data unless said.
 * Key-value peers get 8-byte big-endian keys, increasing per thread.
 *
 *   (1) one thread appends, no fsync                       entries/s
 *   (2) one thread appends, each durable on return         entries/s
 *   (3) one thread writes durable batches of 100           entries/s
 *   (4) 4, 16, 64 threads append durably into one log/db   entries/s
 *   (5) 4 KiB entries in 1 MiB batches, not synced, then one sync at the
 *       end, timed together                                 MB/s of payload
 *   (6) sequential read of everything (1) wrote, through the handle that
 *       wrote it (warm page cache)                          entries/s
 *
 * Each measurement opens a fresh directory, writes one untimed warm-up
 * entry, then runs for about -t seconds (1 s; 0.25 s with -q) or a fixed
 * count, whichever ends first; (5) writes a fixed amount (-b MiB: 128,
 * 16 with -q).  Everything is removed at exit, also after a failure.
 * Durable rows also report commit latency, p50 and p99 of every call.
 * Runs alternate the systems row by row, so all see the same machine.
 *
 * How to read it.  The table shows medians of -r runs (default 3).  On a
 * shared machine the absolute numbers are noise; the ratios, measured in
 * the same run, are the figures, and the closing section prints the ones
 * issue 4 sets targets for, with the target beside each.  "raw fsync
 * rate" is raw-write's row (2).  The data lives under -d DIR (default: the
 * build directory), whose device and file system are printed: on a tmpfs
 * fsync is free and the durable rows mean nothing.
 *
 *   bench_peers [-q] [-d DIR] [-r RUNS] [-t SECONDS] [-b MIB] [-w LIST]
 *               [-T THREADS] [-p SYSTEMS] [-o FILE.csv]
 *     -q  quick: 1 run, 0.25 s per measurement, 16 MiB bulk
 *     -w  workloads to run, e.g. -w 1,2,4 (default 1,2,3,4,5,6)
 *     -T  thread counts for (4), e.g. -T 4,16,64 (the default)
 *     -p  systems to run, e.g. -p walrus,rocksdb (default: all built)
 *     -o  also write every median (and the ratios) as CSV;
 *         bench/plot_threads.gp draws (2) and (4) from it
 *
 * CSV columns: kind (measure|ratio), workload (w1_append_nosync, ...,
 * or the ratio's name), threads, system, mode, unit (op/s, MB/s, x),
 * median, min, max (over the runs), p50_us, p99_us (durable rows),
 * runs, target (ratios with a target).  `make bench` runs this program
 * after the other benchmarks and draws docs/bench-threads.png.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "walrus.h"

#ifdef WALRUS_BENCH_HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef WALRUS_BENCH_HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef WALRUS_BENCH_HAVE_SQLITE3
#include <sqlite3.h>
#endif
#ifdef WALRUS_BENCH_HAVE_LMDB
#include <lmdb.h>
#endif

#ifndef WALRUS_BINARY_DIR
#define WALRUS_BINARY_DIR "."
#endif

#define ENTRY_BYTES 128        /* payload of workloads (1)-(4), (6) */
#define REC_HEADER 40          /* a walrus record header (docs/FORMAT.md) */
#define BATCH_ENTRIES 100      /* workload (3) */
#define BULK_ENTRY_BYTES 4096  /* workload (5) */
#define BULK_BATCH_ENTRIES 256 /* 256 x 4 KiB = 1 MiB of payload */
#define MAX_THREADS 64
#define MAX_TCOUNTS 8
#define MAX_RUNS 99
#define LAT_SAMPLES (1u << 20) /* latency samples kept per measurement */
#define PREALLOC_BYTES ((uint64_t)64 << 20)
#define PAYLOAD_BYTES \
  ((size_t)BULK_BATCH_ENTRIES * (BULK_ENTRY_BYTES + REC_HEADER))

/* Random bytes every system writes (the raw loops write records of them). */
static unsigned char *g_payload;
/* Where scans put what they read, so that no read is optimized away. */
static volatile unsigned g_sink;

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_peers: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* Format into a path buffer, refusing to truncate. */
#define PATHF(buf, ...)                                           \
  do {                                                            \
    int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);              \
    if (n_ < 0 || (size_t)n_ >= sizeof buf) die("path too long"); \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double s[MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_d);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Keys of the key-value peers: big-endian, so that they sort in order. */
static __attribute__((unused)) void put_be64(unsigned char *b, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    b[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT)
    fprintf(stderr, "bench_peers: cannot remove %s: %s\n", path,
            strerror(errno));
  return 0;
}

static void rm_rf(const char *path) {
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void full_write(int fd, const void *buf, size_t len, const char *what) {
  const unsigned char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("%s: write: %s", what, strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

/* ------------------------------------------------------------------------
 * The systems.  open() gets a fresh directory; thread_open() (optional)
 * makes what one thread needs; append/batch write entries keyed from key;
 * sync() makes everything durable; scan() reads everything in order and
 * returns how many entries it saw (optional).  Every failure is fatal.
 * ------------------------------------------------------------------------ */
typedef struct peer {
  const char *name;
  const char *fast;    /* how it runs when not durable */
  const char *durable; /* how it runs when durable */
  void *(*open)(const char *dir, int durable, uint64_t prealloc);
  void *(*thread_open)(void *db);
  void (*thread_close)(void *t);
  void (*append)(void *t, uint64_t key, const void *p, size_t n);
  void (*batch)(void *t, uint64_t key, const void *p, size_t n, int count);
  void (*sync)(void *db);
  uint64_t (*scan)(void *db);
  void (*close)(void *db);
  int fast_only; /* runs only (1), (5) and (6), its no-fsync workloads */
} peer_t;

/* --- walrus ------------------------------------------------------------- */
static void wcheck(int rc, const char *what, walrus_t *w) {
  if (rc != WALRUS_OK)
    die("walrus: %s: %s %s", what, walrus_strerror(rc),
        w ? walrus_errmsg(w) : "");
}

static void *wal_open_with(const char *dir, int durable, int mapped) {
  char path[PATH_MAX];
  walrus_config_t cfg;
  walrus_t *w = NULL;
  PATHF(path, "%s/log", dir);
  walrus_config_default(&cfg);
  cfg.sync = durable ? WALRUS_SYNC_ALWAYS : WALRUS_SYNC_NONE;
  cfg.mapped_writes = mapped;
  wcheck(walrus_open(path, &cfg, &w), "open", w);
  return w;
}

static void *wal_open(const char *dir, int durable, uint64_t prealloc) {
  (void)prealloc;
  return wal_open_with(dir, durable, 0);
}

static void *wal_open_mapped(const char *dir, int durable,
                             uint64_t prealloc) {
  (void)prealloc;
  return wal_open_with(dir, durable, 1);
}

static void wal_append(void *t, uint64_t key, const void *p, size_t n) {
  walrus_entry_t e = {0};
  (void)key;
  e.timestamp_ns = 1; /* as bench_core: no clock read per entry */
  e.data = p;
  e.len = n;
  wcheck(walrus_append(t, &e, NULL), "append", t);
}

static void wal_batch(void *t, uint64_t key, const void *p, size_t n,
                      int count) {
  walrus_entry_t es[BULK_BATCH_ENTRIES];
  const unsigned char *b = p;
  (void)key;
  for (int i = 0; i < count; i++) {
    es[i] = (walrus_entry_t){0};
    es[i].timestamp_ns = 1;
    es[i].data = b + (size_t)i * n;
    es[i].len = n;
  }
  wcheck(walrus_write_batch(t, es, (size_t)count, NULL), "write_batch", t);
}

static void wal_sync(void *db) {
  wcheck(walrus_sync(db), "sync", db);
}

static uint64_t wal_scan(void *db) {
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  uint64_t n = 0;
  unsigned sum = 0;
  int rc;
  wcheck(walrus_iter_open(db, 0, &it), "iter_open", db);
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    n++;
    if (e.len > 0) sum += ((const unsigned char *)e.data)[0];
  }
  if (rc != WALRUS_DONE) wcheck(rc, "iter_next", db);
  walrus_iter_close(it);
  g_sink += sum;
  return n;
}

static void wal_close(void *db) {
  wcheck(walrus_close(db), "close", NULL);
}

/* --- raw write / pwrite loops -------------------------------------------- */
typedef struct raw {
  int fd;
  int durable;
  int positional;       /* pwrite into a preallocated file */
  uint64_t size;        /* positional: the file's size */
  _Atomic uint64_t off; /* positional: bytes written so far */
  char path[PATH_MAX];
} raw_t;

static raw_t *raw_open_common(const char *dir, int durable, int positional) {
  raw_t *r = calloc(1, sizeof *r);
  if (r == NULL) die("out of memory");
  r->durable = durable;
  r->positional = positional;
  PATHF(r->path, "%s/raw.bin", dir);
  r->fd = open(r->path,
               O_CREAT | O_TRUNC | O_RDWR | (positional ? 0 : O_APPEND), 0644);
  if (r->fd < 0) die("%s: %s", r->path, strerror(errno));
  return r;
}

static void *rawwrite_open(const char *dir, int durable, uint64_t prealloc) {
  (void)prealloc;
  return raw_open_common(dir, durable, 0);
}

/* Zero-fill and sync the whole file first: the timed loop then overwrites
 * allocated, written blocks, so fdatasync has no metadata to commit. */
static void *rawpwrite_open(const char *dir, int durable, uint64_t prealloc) {
  raw_t *r = raw_open_common(dir, durable, 1);
  static const unsigned char zero[1 << 16];
  r->size = prealloc;
  for (uint64_t done = 0; done < prealloc; done += sizeof zero) {
    uint64_t left = prealloc - done;
    full_write(r->fd, zero, left < sizeof zero ? (size_t)left : sizeof zero,
               r->path);
  }
  if (fsync(r->fd) != 0) die("%s: fsync: %s", r->path, strerror(errno));
  atomic_init(&r->off, 0);
  return r;
}

static void raw_put(raw_t *r, size_t len) {
  if (len > PAYLOAD_BYTES) die("raw: record too large");
  if (r->positional) {
    uint64_t o = atomic_fetch_add(&r->off, len) % r->size;
    if (o + len > r->size) o = 0;
    ssize_t n = pwrite(r->fd, g_payload, len, (off_t)o);
    if (n != (ssize_t)len) die("%s: pwrite: %s", r->path, strerror(errno));
  } else {
    ssize_t n = write(r->fd, g_payload, len);
    if (n != (ssize_t)len) die("%s: write: %s", r->path, strerror(errno));
  }
  if (r->durable && fdatasync(r->fd) != 0)
    die("%s: fdatasync: %s", r->path, strerror(errno));
}

static void raw_append(void *t, uint64_t key, const void *p, size_t n) {
  (void)key;
  (void)p;
  raw_put(t, REC_HEADER + n);
}

static void raw_batch(void *t, uint64_t key, const void *p, size_t n,
                      int count) {
  (void)key;
  (void)p;
  raw_put(t, (size_t)count * (REC_HEADER + n));
}

static void raw_sync(void *db) {
  raw_t *r = db;
  if (fdatasync(r->fd) != 0) die("%s: fdatasync: %s", r->path, strerror(errno));
}

/* Reads the file in 1 MiB pieces; counts (1)'s records. */
static uint64_t raw_scan(void *db) {
  raw_t *r = db;
  size_t cap = (size_t)1 << 20;
  unsigned char *buf = malloc(cap);
  uint64_t bytes = 0;
  unsigned sum = 0;
  if (buf == NULL) die("out of memory");
  int fd = open(r->path, O_RDONLY);
  if (fd < 0) die("%s: %s", r->path, strerror(errno));
  for (;;) {
    ssize_t n = read(fd, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("%s: read: %s", r->path, strerror(errno));
    if (n == 0) break;
    for (ssize_t i = 0; i < n; i += REC_HEADER + ENTRY_BYTES) sum += buf[i];
    bytes += (uint64_t)n;
  }
  close(fd);
  free(buf);
  g_sink += sum;
  return bytes / (REC_HEADER + ENTRY_BYTES);
}

static void raw_close(void *db) {
  raw_t *r = db;
  close(r->fd);
  free(r);
}

/* --- RocksDB ------------------------------------------------------------ */
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
typedef struct rdb {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_writeoptions_t *wo;
} rdb_t;

typedef struct rthr {
  rdb_t *d;
  rocksdb_writebatch_t *b;
} rthr_t;

static void rcheck(char *err, const char *what) {
  if (err != NULL) die("rocksdb: %s: %s", what, err);
}

static void *rdb_open(const char *dir, int durable, uint64_t prealloc) {
  char path[PATH_MAX];
  char *err = NULL;
  rdb_t *d = calloc(1, sizeof *d);
  (void)prealloc;
  if (d == NULL) die("out of memory");
  PATHF(path, "%s/rocksdb", dir);
  d->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(d->opts, 1);
  d->db = rocksdb_open(d->opts, path, &err);
  rcheck(err, "open");
  d->wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_disable_WAL(d->wo, 0);
  rocksdb_writeoptions_set_sync(d->wo, (unsigned char)(durable != 0));
  return d;
}

static void *rdb_thread_open(void *db) {
  rthr_t *t = calloc(1, sizeof *t);
  if (t == NULL) die("out of memory");
  t->d = db;
  t->b = rocksdb_writebatch_create();
  return t;
}

static void rdb_thread_close(void *tp) {
  rthr_t *t = tp;
  rocksdb_writebatch_destroy(t->b);
  free(t);
}

static void rdb_append(void *tp, uint64_t key, const void *p, size_t n) {
  rthr_t *t = tp;
  unsigned char k[8];
  char *err = NULL;
  put_be64(k, key);
  rocksdb_put(t->d->db, t->d->wo, (const char *)k, sizeof k, (const char *)p, n,
              &err);
  rcheck(err, "put");
}

static void rdb_batch(void *tp, uint64_t key, const void *p, size_t n,
                      int count) {
  rthr_t *t = tp;
  unsigned char k[8];
  char *err = NULL;
  rocksdb_writebatch_clear(t->b);
  for (int i = 0; i < count; i++) {
    put_be64(k, key + (uint64_t)i);
    rocksdb_writebatch_put(t->b, (const char *)k, sizeof k,
                           (const char *)p + (size_t)i * n, n);
  }
  rocksdb_write(t->d->db, t->d->wo, t->b, &err);
  rcheck(err, "write");
}

static void rdb_sync(void *db) {
  rdb_t *d = db;
  char *err = NULL;
  rocksdb_flush_wal(d->db, 1, &err);
  rcheck(err, "flush_wal");
}

static uint64_t rdb_scan(void *db) {
  rdb_t *d = db;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, ro);
  uint64_t n = 0;
  unsigned sum = 0;
  char *err = NULL;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t vl = 0;
    const char *v = rocksdb_iter_value(it, &vl);
    if (vl > 0) sum += (unsigned char)v[0];
    n++;
  }
  rocksdb_iter_get_error(it, &err);
  rcheck(err, "iterate");
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  g_sink += sum;
  return n;
}

static void rdb_close(void *db) {
  rdb_t *d = db;
  rocksdb_writeoptions_destroy(d->wo);
  rocksdb_close(d->db);
  rocksdb_options_destroy(d->opts);
  free(d);
}
#endif

/* --- LevelDB ------------------------------------------------------------ */
#ifdef WALRUS_BENCH_HAVE_LEVELDB
typedef struct ldb {
  leveldb_t *db;
  leveldb_options_t *opts;
  leveldb_writeoptions_t *wo;
  leveldb_writeoptions_t *wo_sync;
} ldb_t;

typedef struct lthr {
  ldb_t *d;
  leveldb_writebatch_t *b;
} lthr_t;

static void lcheck(char *err, const char *what) {
  if (err != NULL) die("leveldb: %s: %s", what, err);
}

static void *ldb_open(const char *dir, int durable, uint64_t prealloc) {
  char path[PATH_MAX];
  char *err = NULL;
  ldb_t *d = calloc(1, sizeof *d);
  (void)prealloc;
  if (d == NULL) die("out of memory");
  PATHF(path, "%s/leveldb", dir);
  d->opts = leveldb_options_create();
  leveldb_options_set_create_if_missing(d->opts, 1);
  d->db = leveldb_open(d->opts, path, &err);
  lcheck(err, "open");
  d->wo = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(d->wo, (unsigned char)(durable != 0));
  d->wo_sync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(d->wo_sync, 1);
  return d;
}

static void *ldb_thread_open(void *db) {
  lthr_t *t = calloc(1, sizeof *t);
  if (t == NULL) die("out of memory");
  t->d = db;
  t->b = leveldb_writebatch_create();
  return t;
}

static void ldb_thread_close(void *tp) {
  lthr_t *t = tp;
  leveldb_writebatch_destroy(t->b);
  free(t);
}

static void ldb_append(void *tp, uint64_t key, const void *p, size_t n) {
  lthr_t *t = tp;
  unsigned char k[8];
  char *err = NULL;
  put_be64(k, key);
  leveldb_put(t->d->db, t->d->wo, (const char *)k, sizeof k, (const char *)p, n,
              &err);
  lcheck(err, "put");
}

static void ldb_batch(void *tp, uint64_t key, const void *p, size_t n,
                      int count) {
  lthr_t *t = tp;
  unsigned char k[8];
  char *err = NULL;
  leveldb_writebatch_clear(t->b);
  for (int i = 0; i < count; i++) {
    put_be64(k, key + (uint64_t)i);
    leveldb_writebatch_put(t->b, (const char *)k, sizeof k,
                           (const char *)p + (size_t)i * n, n);
  }
  leveldb_write(t->d->db, t->d->wo, t->b, &err);
  lcheck(err, "write");
}

/* LevelDB has no "sync the log" call: a sync=true write syncs its log file,
 * and so everything written to it before.  One marker entry does it. */
static void ldb_sync(void *db) {
  ldb_t *d = db;
  unsigned char k[8];
  char *err = NULL;
  put_be64(k, UINT64_MAX);
  leveldb_put(d->db, d->wo_sync, (const char *)k, sizeof k, "s", 1, &err);
  lcheck(err, "sync put");
}

static uint64_t ldb_scan(void *db) {
  ldb_t *d = db;
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_iterator_t *it = leveldb_create_iterator(d->db, ro);
  uint64_t n = 0;
  unsigned sum = 0;
  char *err = NULL;
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it);
       leveldb_iter_next(it)) {
    size_t vl = 0;
    const char *v = leveldb_iter_value(it, &vl);
    if (vl > 0) sum += (unsigned char)v[0];
    n++;
  }
  leveldb_iter_get_error(it, &err);
  lcheck(err, "iterate");
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  g_sink += sum;
  return n;
}

static void ldb_close(void *db) {
  ldb_t *d = db;
  leveldb_close(d->db);
  leveldb_writeoptions_destroy(d->wo);
  leveldb_writeoptions_destroy(d->wo_sync);
  leveldb_options_destroy(d->opts);
  free(d);
}
#endif

/* --- SQLite ------------------------------------------------------------- */
#ifdef WALRUS_BENCH_HAVE_SQLITE3
typedef struct sthr {
  sqlite3 *db;
  sqlite3_stmt *ins, *begin, *commit;
} sthr_t;

static void scheck(int rc, int want, sqlite3 *db, const char *what) {
  if (rc != want) die("sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static void sexec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
    die("sqlite: %s: %s", sql, err ? err : sqlite3_errmsg(db));
}

static void *sql_open(const char *dir, int durable, uint64_t prealloc) {
  char path[PATH_MAX];
  sqlite3 *db = NULL;
  (void)prealloc;
  PATHF(path, "%s/log.sqlite", dir);
  int rc = sqlite3_open_v2(
      path, &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
  scheck(rc, SQLITE_OK, db, "open");
  sexec(db, "PRAGMA journal_mode=WAL");
  sexec(db, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
  sexec(db, "CREATE TABLE log(id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  return db;
}

static sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  scheck(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, db, sql);
  return st;
}

static void *sql_thread_open(void *db) {
  sthr_t *t = calloc(1, sizeof *t);
  if (t == NULL) die("out of memory");
  t->db = db;
  t->ins = sql_prepare(t->db, "INSERT INTO log(id, data) VALUES(?, ?)");
  t->begin = sql_prepare(t->db, "BEGIN");
  t->commit = sql_prepare(t->db, "COMMIT");
  return t;
}

static void sql_thread_close(void *tp) {
  sthr_t *t = tp;
  sqlite3_finalize(t->ins);
  sqlite3_finalize(t->begin);
  sqlite3_finalize(t->commit);
  free(t);
}

static void sql_step(sthr_t *t, sqlite3_stmt *st, const char *what) {
  scheck(sqlite3_step(st), SQLITE_DONE, t->db, what);
  sqlite3_reset(st);
}

static void sql_insert(sthr_t *t, uint64_t key, const void *p, size_t n) {
  sqlite3_bind_int64(t->ins, 1, (sqlite3_int64)key);
  sqlite3_bind_blob(t->ins, 2, p, (int)n, SQLITE_STATIC);
  sql_step(t, t->ins, "insert");
}

static void sql_append(void *tp, uint64_t key, const void *p, size_t n) {
  sql_insert(tp, key, p, n);
}

static void sql_batch(void *tp, uint64_t key, const void *p, size_t n,
                      int count) {
  sthr_t *t = tp;
  sql_step(t, t->begin, "begin");
  for (int i = 0; i < count; i++)
    sql_insert(t, key + (uint64_t)i, (const unsigned char *)p + (size_t)i * n,
               n);
  sql_step(t, t->commit, "commit");
}

/* With synchronous=FULL a checkpoint fsyncs the WAL and then the database
 * file: everything written so far, including what earlier (unsynced)
 * automatic checkpoints copied, is then durable. */
static void sql_sync(void *db) {
  sexec(db, "PRAGMA synchronous=FULL");
  sexec(db, "PRAGMA wal_checkpoint(FULL)");
}

static uint64_t sql_scan(void *db) {
  sqlite3_stmt *st = sql_prepare(db, "SELECT data FROM log ORDER BY id");
  uint64_t n = 0;
  unsigned sum = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_blob(st, 0);
    if (sqlite3_column_bytes(st, 0) > 0) sum += v[0];
    n++;
  }
  scheck(rc, SQLITE_DONE, db, "select");
  sqlite3_finalize(st);
  g_sink += sum;
  return n;
}

static void sql_close(void *db) {
  if (sqlite3_close(db) != SQLITE_OK)
    die("sqlite: close: %s", sqlite3_errmsg(db));
}
#endif

/* --- LMDB --------------------------------------------------------------- */
#ifdef WALRUS_BENCH_HAVE_LMDB
typedef struct lm {
  MDB_env *env;
  MDB_dbi dbi;
} lm_t;

static void mcheck(int rc, const char *what) {
  if (rc != MDB_SUCCESS) die("lmdb: %s: %s", what, mdb_strerror(rc));
}

static void *lm_open(const char *dir, int durable, uint64_t prealloc) {
  lm_t *d = calloc(1, sizeof *d);
  MDB_txn *txn = NULL;
  (void)prealloc;
  if (d == NULL) die("out of memory");
  mcheck(mdb_env_create(&d->env), "env_create");
  /* Address space only: the file grows as pages are used. */
  mcheck(mdb_env_set_mapsize(d->env, (size_t)16 << 30), "set_mapsize");
  mcheck(mdb_env_open(d->env, dir, durable ? 0u : (unsigned)MDB_NOSYNC, 0644),
         "env_open");
  mcheck(mdb_txn_begin(d->env, NULL, 0, &txn), "txn_begin");
  mcheck(mdb_dbi_open(txn, NULL, 0, &d->dbi), "dbi_open");
  mcheck(mdb_txn_commit(txn), "txn_commit");
  return d;
}

static void lm_put_one(lm_t *d, MDB_txn *txn, uint64_t key, const void *p,
                       size_t n) {
  unsigned char k[8];
  put_be64(k, key);
  MDB_val kv = {.mv_size = sizeof k, .mv_data = k};
  MDB_val vv = {.mv_size = n, .mv_data = (void *)(uintptr_t)p};
  mcheck(mdb_put(txn, d->dbi, &kv, &vv, 0), "put");
}

static void lm_append(void *db, uint64_t key, const void *p, size_t n) {
  lm_t *d = db;
  MDB_txn *txn = NULL;
  mcheck(mdb_txn_begin(d->env, NULL, 0, &txn), "txn_begin");
  lm_put_one(d, txn, key, p, n);
  mcheck(mdb_txn_commit(txn), "txn_commit");
}

static void lm_batch(void *db, uint64_t key, const void *p, size_t n,
                     int count) {
  lm_t *d = db;
  MDB_txn *txn = NULL;
  mcheck(mdb_txn_begin(d->env, NULL, 0, &txn), "txn_begin");
  for (int i = 0; i < count; i++)
    lm_put_one(d, txn, key + (uint64_t)i,
               (const unsigned char *)p + (size_t)i * n, n);
  mcheck(mdb_txn_commit(txn), "txn_commit");
}

static void lm_sync(void *db) {
  lm_t *d = db;
  mcheck(mdb_env_sync(d->env, 1), "env_sync");
}

static uint64_t lm_scan(void *db) {
  lm_t *d = db;
  MDB_txn *txn = NULL;
  MDB_cursor *c = NULL;
  MDB_val k, v;
  uint64_t n = 0;
  unsigned sum = 0;
  int rc;
  mcheck(mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn), "txn_begin");
  mcheck(mdb_cursor_open(txn, d->dbi, &c), "cursor_open");
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (v.mv_size > 0) sum += ((const unsigned char *)v.mv_data)[0];
    n++;
  }
  if (rc != MDB_NOTFOUND) mcheck(rc, "cursor_get");
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  g_sink += sum;
  return n;
}

static void lm_close(void *db) {
  lm_t *d = db;
  mdb_env_close(d->env);
  free(d);
}
#endif

static const peer_t g_peers[] = {
    {"walrus", "SYNC_NONE", "SYNC_ALWAYS", wal_open, NULL, NULL, wal_append,
     wal_batch, wal_sync, wal_scan, wal_close, 0},
    {"walrus-map", "SYNC_NONE mapped_writes", "(no-fsync workloads only)",
     wal_open_mapped, NULL, NULL, wal_append, wal_batch, wal_sync, wal_scan,
     wal_close, 1},
    {"raw-write", "write() O_APPEND", "write()+fdatasync()", rawwrite_open,
     NULL, NULL, raw_append, raw_batch, raw_sync, raw_scan, raw_close, 0},
    {"raw-pwrite", "pwrite() zero-filled file", "pwrite()+fdatasync()",
     rawpwrite_open, NULL, NULL, raw_append, raw_batch, raw_sync, NULL,
     raw_close, 0},
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
    {"rocksdb", "WAL sync=false", "WAL sync=true", rdb_open, rdb_thread_open,
     rdb_thread_close, rdb_append, rdb_batch, rdb_sync, rdb_scan, rdb_close, 0},
#endif
#ifdef WALRUS_BENCH_HAVE_LEVELDB
    {"leveldb", "sync=false", "sync=true", ldb_open, ldb_thread_open,
     ldb_thread_close, ldb_append, ldb_batch, ldb_sync, ldb_scan, ldb_close, 0},
#endif
#ifdef WALRUS_BENCH_HAVE_SQLITE3
    {"sqlite", "WAL synchronous=OFF", "WAL synchronous=FULL", sql_open,
     sql_thread_open, sql_thread_close, sql_append, sql_batch, sql_sync,
     sql_scan, sql_close, 0},
#endif
#ifdef WALRUS_BENCH_HAVE_LMDB
    {"lmdb", "MDB_NOSYNC", "default (sync)", lm_open, NULL, NULL, lm_append,
     lm_batch, lm_sync, lm_scan, lm_close, 0},
#endif
};
#define NPEERS ((int)(sizeof g_peers / sizeof g_peers[0]))

/* Peers this build might have had, for the "skipped" note. */
static const struct {
  const char *name, *package;
  int built;
} g_optional[] = {
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
    {"rocksdb", "librocksdb-dev", 1},
#else
    {"rocksdb", "librocksdb-dev", 0},
#endif
#ifdef WALRUS_BENCH_HAVE_LEVELDB
    {"leveldb", "libleveldb-dev", 1},
#else
    {"leveldb", "libleveldb-dev", 0},
#endif
#ifdef WALRUS_BENCH_HAVE_SQLITE3
    {"sqlite", "libsqlite3-dev", 1},
#else
    {"sqlite", "libsqlite3-dev", 0},
#endif
#ifdef WALRUS_BENCH_HAVE_LMDB
    {"lmdb", "liblmdb-dev", 1},
#else
    {"lmdb", "liblmdb-dev", 0},
#endif
};

/* ------------------------------------------------------------------------
 * Measurements.
 * ------------------------------------------------------------------------ */
typedef enum { OP_APPEND, OP_BATCH } op_kind_t;

typedef struct worker {
  const peer_t *p;
  void *db;
  int tid;
  op_kind_t kind;
  int count;     /* entries per batch */
  size_t n;      /* bytes per entry */
  double budget; /* seconds */
  uint64_t max_entries;
  uint64_t check_mask; /* look at the clock when (calls & mask) == 0 */
  pthread_barrier_t *bar;
  uint32_t *lat; /* per-call latency in ns, or NULL */
  size_t lat_cap, lat_n;
  uint64_t entries;
  double t0, t1;
} worker_t;

static void *worker_run(void *arg) {
  worker_t *wk = arg;
  const peer_t *p = wk->p;
  void *t = p->thread_open ? p->thread_open(wk->db) : wk->db;
  uint64_t base = (uint64_t)(wk->tid + 1) << 40, seq = 0, calls = 0;
  if (wk->bar) pthread_barrier_wait(wk->bar);
  uint64_t start = now_ns(), limit = (uint64_t)(wk->budget * 1e9);
  wk->t0 = now_s();
  for (;;) {
    uint64_t a = wk->lat ? now_ns() : 0;
    if (wk->kind == OP_APPEND) {
      p->append(t, base | seq, g_payload, wk->n);
      seq++;
    } else {
      p->batch(t, base | seq, g_payload, wk->n, wk->count);
      seq += (uint64_t)wk->count;
    }
    calls++;
    if (wk->lat) {
      uint64_t b = now_ns();
      if (wk->lat_n < wk->lat_cap)
        wk->lat[wk->lat_n++] =
            b - a > UINT32_MAX ? UINT32_MAX : (uint32_t)(b - a);
      if (seq >= wk->max_entries || b - start >= limit) break;
    } else {
      if (seq >= wk->max_entries) break;
      if ((calls & wk->check_mask) == 0 && now_ns() - start >= limit) break;
    }
  }
  wk->t1 = now_s();
  wk->entries = seq;
  if (p->thread_close) p->thread_close(t);
  return NULL;
}

typedef struct result {
  double rate;     /* entries/s, or MB/s for (5) */
  double p50, p99; /* commit latency in microseconds; < 0: none */
  uint64_t entries;
} result_t;

typedef struct opts {
  double budget;
  uint64_t max_nosync; /* cap of (1) */
  uint64_t max_durable;
  uint64_t bulk_bytes;
} opts_t;

/* Runs nthreads workers against db; entries/s over the whole span. */
static result_t run_workers(const peer_t *p, void *db, int nthreads,
                            op_kind_t kind, int count, double budget,
                            uint64_t max_entries, int latency) {
  worker_t wk[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  pthread_barrier_t bar;
  uint32_t *lat = NULL;
  size_t per = LAT_SAMPLES / (size_t)nthreads;
  result_t r = {0, -1, -1, 0};
  if (latency) {
    lat = malloc(LAT_SAMPLES * sizeof *lat);
    if (lat == NULL) die("out of memory");
  }
  for (int i = 0; i < nthreads; i++) {
    wk[i] = (worker_t){0};
    wk[i].p = p;
    wk[i].db = db;
    wk[i].tid = i;
    wk[i].kind = kind;
    wk[i].count = count;
    wk[i].n = ENTRY_BYTES;
    wk[i].budget = budget;
    wk[i].max_entries = max_entries / (uint64_t)nthreads;
    wk[i].check_mask = latency ? 0 : 255;
    wk[i].lat = lat ? lat + (size_t)i * per : NULL;
    wk[i].lat_cap = per;
  }
  if (nthreads == 1) {
    worker_run(&wk[0]);
  } else {
    if (pthread_barrier_init(&bar, NULL, (unsigned)nthreads) != 0)
      die("pthread_barrier_init failed");
    for (int i = 0; i < nthreads; i++) {
      wk[i].bar = &bar;
      if (pthread_create(&th[i], NULL, worker_run, &wk[i]) != 0)
        die("pthread_create failed");
    }
    for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
  }
  double t0 = wk[0].t0, t1 = wk[0].t1;
  size_t nl = 0;
  for (int i = 0; i < nthreads; i++) {
    if (wk[i].t0 < t0) t0 = wk[i].t0;
    if (wk[i].t1 > t1) t1 = wk[i].t1;
    r.entries += wk[i].entries;
    if (lat) {
      memmove(lat + nl, wk[i].lat, wk[i].lat_n * sizeof *lat);
      nl += wk[i].lat_n;
    }
  }
  r.rate = (double)r.entries / (t1 - t0);
  if (lat && nl > 0) {
    qsort(lat, nl, sizeof *lat, cmp_u32);
    r.p50 = lat[(nl - 1) / 2] / 1e3;
    r.p99 = lat[(size_t)((double)(nl - 1) * 0.99)] / 1e3;
  }
  free(lat);
  return r;
}

/* The untimed first entry: creates whatever files the first write needs. */
static void warm_up(const peer_t *p, void *db) {
  void *t = p->thread_open ? p->thread_open(db) : db;
  p->append(t, 0, g_payload, ENTRY_BYTES);
  if (p->thread_close) p->thread_close(t);
}

/* ------------------------------------------------------------------------
 * Rows of the table.
 * ------------------------------------------------------------------------ */
typedef enum {
  W_NOSYNC = 1,
  W_DURABLE,
  W_BATCH,
  W_THREADS,
  W_BULK,
  W_READ
} wl_t;

typedef struct row {
  wl_t wl;
  int threads;
  char label[48];
  const char *id; /* CSV workload id */
  const char *unit;
} row_t;

#define MAX_ROWS (5 + MAX_TCOUNTS)

static row_t g_rows[MAX_ROWS];
static int g_nrows;
static result_t g_res[MAX_ROWS][16][MAX_RUNS];
static int g_have[MAX_ROWS][16];

static int row_of(wl_t wl, int threads) {
  for (int i = 0; i < g_nrows; i++)
    if (g_rows[i].wl == wl && (wl != W_THREADS || g_rows[i].threads == threads))
      return i;
  return -1;
}

static int peer_index(const char *name) {
  for (int i = 0; i < NPEERS; i++)
    if (strcmp(g_peers[i].name, name) == 0) return i;
  return -1;
}

/* A fresh, empty directory for one measurement. */
static void fresh_dir(char *out, size_t outlen, const char *base,
                      const char *peer, const char *what, int run) {
  int n = snprintf(out, outlen, "%s/%s-%s-%d", base, peer, what, run);
  if (n < 0 || (size_t)n >= outlen) die("path too long");
  rm_rf(out);
  if (mkdir(out, 0755) != 0) die("mkdir %s: %s", out, strerror(errno));
}

static void measure_row(int ri, int pi, int run, const char *base,
                        const opts_t *o, int want_nosync, int ri_read) {
  const peer_t *p = &g_peers[pi];
  const row_t *rw = &g_rows[ri];
  char dir[PATH_MAX];
  void *db = NULL;
  result_t r = {0, -1, -1, 0};
  fresh_dir(dir, sizeof dir, base, p->name, rw->id, run);
  switch (rw->wl) {
    case W_NOSYNC:
    case W_READ: {
      /* (1), and (6) reads what (1) wrote. */
      db = p->open(dir, 0, PREALLOC_BYTES);
      warm_up(p, db);
      r = run_workers(p, db, 1, OP_APPEND, 1, o->budget, o->max_nosync, 0);
      if (want_nosync) {
        g_res[ri][pi][run] = r;
        g_have[ri][pi] = 1;
      }
      if (ri_read >= 0 && p->scan) {
        double t0 = now_s();
        uint64_t n = p->scan(db);
        double t = now_s() - t0;
        if (n != r.entries + 1)
          fprintf(stderr, "bench_peers: %s read %llu entries, wrote %llu\n",
                  p->name, (unsigned long long)n,
                  (unsigned long long)(r.entries + 1));
        result_t rr = {(double)n / t, -1, -1, n};
        g_res[ri_read][pi][run] = rr;
        g_have[ri_read][pi] = 1;
      }
      p->close(db);
      rm_rf(dir);
      return;
    }
    case W_DURABLE:
      db = p->open(dir, 1, PREALLOC_BYTES);
      warm_up(p, db);
      r = run_workers(p, db, 1, OP_APPEND, 1, o->budget, o->max_durable, 1);
      break;
    case W_BATCH:
      db = p->open(dir, 1, PREALLOC_BYTES);
      warm_up(p, db);
      r = run_workers(p, db, 1, OP_BATCH, BATCH_ENTRIES, o->budget,
                      o->max_durable, 1);
      break;
    case W_THREADS:
      db = p->open(dir, 1, PREALLOC_BYTES);
      warm_up(p, db);
      r = run_workers(p, db, rw->threads, OP_APPEND, 1, o->budget,
                      o->max_durable, 1);
      break;
    case W_BULK: {
      uint64_t nb =
          o->bulk_bytes / ((uint64_t)BULK_BATCH_ENTRIES * BULK_ENTRY_BYTES);
      uint64_t file = nb * BULK_BATCH_ENTRIES * (BULK_ENTRY_BYTES + REC_HEADER);
      db = p->open(dir, 0, file + ((uint64_t)1 << 20));
      warm_up(p, db);
      void *t = p->thread_open ? p->thread_open(db) : db;
      uint64_t key = (uint64_t)1 << 40;
      double t0 = now_s();
      for (uint64_t b = 0; b < nb; b++) {
        p->batch(t, key, g_payload, BULK_ENTRY_BYTES, BULK_BATCH_ENTRIES);
        key += BULK_BATCH_ENTRIES;
      }
      p->sync(db);
      double secs = now_s() - t0;
      if (p->thread_close) p->thread_close(t);
      r.entries = nb * BULK_BATCH_ENTRIES;
      r.rate = (double)(r.entries * BULK_ENTRY_BYTES) / 1e6 / secs;
      break;
    }
  }
  p->close(db);
  rm_rf(dir);
  g_res[ri][pi][run] = r;
  g_have[ri][pi] = 1;
}

/* ------------------------------------------------------------------------
 * Reporting.
 * ------------------------------------------------------------------------ */
static int g_runs;

static int have(int ri, int pi) {
  return ri >= 0 && pi >= 0 && g_have[ri][pi];
}

static double med_of(int ri, int pi, int what) {
  double v[MAX_RUNS];
  for (int i = 0; i < g_runs; i++)
    v[i] = what == 0   ? g_res[ri][pi][i].rate
           : what == 1 ? g_res[ri][pi][i].p50
                       : g_res[ri][pi][i].p99;
  return median(v, g_runs);
}

static double min_max(int ri, int pi, int want_max) {
  double m = g_res[ri][pi][0].rate;
  for (int i = 1; i < g_runs; i++) {
    double x = g_res[ri][pi][i].rate;
    if (want_max ? x > m : x < m) m = x;
  }
  return m;
}

static void fmt_rate(char *buf, size_t len, double v, const char *unit) {
  if (strcmp(unit, "MB/s") == 0)
    snprintf(buf, len, "%.1f", v);
  else
    snprintf(buf, len, "%.0f", v);
}

typedef struct ratio {
  const char *id;
  char text[96];
  double value;  /* < 0: not measured */
  double target; /* 0: information only */
  const char *unit;
} ratio_t;

static int g_nratios;
static ratio_t g_ratios[24];

static void add_ratio(const char *id, const char *text, double num, double den,
                      double target, const char *unit) {
  ratio_t *r = &g_ratios[g_nratios++];
  r->id = id;
  snprintf(r->text, sizeof r->text, "%s", text);
  r->value = (num > 0 && den > 0) ? num / den : -1;
  r->target = target;
  r->unit = unit;
}

static double med_or0(wl_t wl, int threads, const char *peer) {
  int ri = row_of(wl, threads), pi = peer_index(peer);
  return have(ri, pi) ? med_of(ri, pi, 0) : 0;
}

static void compute_ratios(void) {
  double w1 = med_or0(W_NOSYNC, 1, "walrus");
  double w2 = med_or0(W_DURABLE, 1, "walrus");
  double raw2 = med_or0(W_DURABLE, 1, "raw-write");
  add_ratio("w2_walrus_over_raw_write", "(2) walrus / raw write+fdatasync", w2,
            raw2, 0.95, "x");
  add_ratio("w2_walrus_over_raw_pwrite",
            "(2) walrus / raw pwrite+fdatasync (preallocated)", w2,
            med_or0(W_DURABLE, 1, "raw-pwrite"), 0, "x");
  add_ratio("w2_walrus_over_rocksdb", "(2) walrus / rocksdb sync=true", w2,
            med_or0(W_DURABLE, 1, "rocksdb"), 1.2, "x");
  add_ratio("w4_walrus4_over_walrus1", "(4) walrus 4 threads / walrus (2)",
            med_or0(W_THREADS, 4, "walrus"), w2, 0, "x");
  add_ratio("w4_walrus16_over_walrus1", "(4) walrus 16 threads / walrus (2)",
            med_or0(W_THREADS, 16, "walrus"), w2, 8, "x");
  add_ratio("w4_walrus16_over_rocksdb16",
            "(4) walrus 16 threads / rocksdb 16 threads sync=true",
            med_or0(W_THREADS, 16, "walrus"), med_or0(W_THREADS, 16, "rocksdb"),
            2, "x");
  add_ratio("w4_walrus64_over_walrus1", "(4) walrus 64 threads / walrus (2)",
            med_or0(W_THREADS, 64, "walrus"), w2, 25, "x");
  add_ratio("w1_walrus_abs", "(1) walrus no-fsync appends", w1, 1, 5e6, "op/s");
  add_ratio("w1_walrus_over_rocksdb", "(1) walrus / rocksdb sync=false", w1,
            med_or0(W_NOSYNC, 1, "rocksdb"), 8, "x");
  double w1m = med_or0(W_NOSYNC, 1, "walrus-map");
  add_ratio("w1_walrus_map_abs", "(1) walrus mapped_writes no-fsync appends",
            w1m, 1, 5e6, "op/s");
  add_ratio("w1_walrus_map_over_rocksdb",
            "(1) walrus mapped_writes / rocksdb sync=false", w1m,
            med_or0(W_NOSYNC, 1, "rocksdb"), 8, "x");
  add_ratio("w3_walrus_over_raw_fsync_x100",
            "(3) walrus / (raw fsync rate x 100)",
            med_or0(W_BATCH, 1, "walrus"), raw2 * BATCH_ENTRIES, 0.9, "x");
  add_ratio(
      "w5_walrus_over_raw_write", "(5) walrus bulk / raw sequential write",
      med_or0(W_BULK, 1, "walrus"), med_or0(W_BULK, 1, "raw-write"), 0.8, "x");
  add_ratio("w5_walrus_map_over_raw_write",
            "(5) walrus mapped_writes bulk / raw sequential write",
            med_or0(W_BULK, 1, "walrus-map"), med_or0(W_BULK, 1, "raw-write"),
            0.8, "x");
  add_ratio("w6_walrus_over_raw_read", "(6) walrus read / raw read",
            med_or0(W_READ, 1, "walrus"), med_or0(W_READ, 1, "raw-write"), 0,
            "x");
}

static void print_table(const int *sel, int nsel) {
  char buf[64];
  printf("\n%-34s %-5s", "median of runs", "unit");
  for (int k = 0; k < nsel; k++) printf(" %13s", g_peers[sel[k]].name);
  printf("\n");
  for (int ri = 0; ri < g_nrows; ri++) {
    printf("%-34s %-5s", g_rows[ri].label, g_rows[ri].unit);
    for (int k = 0; k < nsel; k++) {
      if (have(ri, sel[k]))
        fmt_rate(buf, sizeof buf, med_of(ri, sel[k], 0), g_rows[ri].unit);
      else
        snprintf(buf, sizeof buf, "-");
      printf(" %13s", buf);
    }
    printf("\n");
  }
  int any = 0;
  for (int ri = 0; ri < g_nrows; ri++)
    for (int k = 0; k < nsel; k++)
      if (have(ri, sel[k]) && g_res[ri][sel[k]][0].p50 >= 0) any = 1;
  if (!any) return;
  printf("\n%-34s %-5s", "commit latency p50/p99", "unit");
  for (int k = 0; k < nsel; k++) printf(" %13s", g_peers[sel[k]].name);
  printf("\n");
  for (int ri = 0; ri < g_nrows; ri++) {
    if (g_rows[ri].wl != W_DURABLE && g_rows[ri].wl != W_BATCH &&
        g_rows[ri].wl != W_THREADS)
      continue;
    printf("%-34s %-5s", g_rows[ri].label, "us");
    for (int k = 0; k < nsel; k++) {
      if (have(ri, sel[k]))
        snprintf(buf, sizeof buf, "%.0f/%.0f", med_of(ri, sel[k], 1),
                 med_of(ri, sel[k], 2));
      else
        snprintf(buf, sizeof buf, "-");
      printf(" %13s", buf);
    }
    printf("\n");
  }
}

static void print_ratios(void) {
  printf("\n%-56s %12s %12s\n", "issue 4 figures (same run, medians)", "value",
         "target");
  for (int i = 0; i < g_nratios; i++) {
    const ratio_t *r = &g_ratios[i];
    char v[32], t[32];
    const char *unit = strcmp(r->unit, "x") == 0 ? "x" : "/s";
    if (r->value < 0)
      snprintf(v, sizeof v, "n/a");
    else if (r->unit[0] == 'x')
      snprintf(v, sizeof v, "%.2fx", r->value);
    else
      snprintf(v, sizeof v, "%.0f/s", r->value);
    if (r->target <= 0)
      snprintf(t, sizeof t, "(info)");
    else if (r->unit[0] == 'x')
      snprintf(t, sizeof t, ">= %.2g%s", r->target, unit);
    else
      snprintf(t, sizeof t, ">= %.0f%s", r->target, unit);
    const char *verdict = "";
    if (r->value >= 0 && r->target > 0)
      verdict = r->value >= r->target ? "  ok" : "  MISS";
    printf("%-56s %12s %12s%s\n", r->text, v, t, verdict);
  }
}

static void write_csv(const char *path, const int *sel, int nsel,
                      const char *const *modes) {
  FILE *f = fopen(path, "w");
  if (f == NULL) die("%s: %s", path, strerror(errno));
  fprintf(f, "kind,workload,threads,system,mode,unit,median,min,max,p50_us,"
             "p99_us,runs,target\n");
  /* System by system, rows in table order: each system's thread series is
   * contiguous, which plot_threads.gp relies on. */
  for (int k = 0; k < nsel; k++) {
    int pi = sel[k];
    for (int ri = 0; ri < g_nrows; ri++) {
      if (!have(ri, pi)) continue;
      const row_t *rw = &g_rows[ri];
      int durable =
          rw->wl == W_DURABLE || rw->wl == W_BATCH || rw->wl == W_THREADS;
      fprintf(f, "measure,%s,%d,%s,%s,%s,%.1f,%.1f,%.1f,", rw->id, rw->threads,
              g_peers[pi].name,
              rw->wl == W_BULK ? modes[2 * pi]
              : durable        ? modes[2 * pi + 1]
                               : modes[2 * pi],
              rw->unit, med_of(ri, pi, 0), min_max(ri, pi, 0),
              min_max(ri, pi, 1));
      if (g_res[ri][pi][0].p50 >= 0)
        fprintf(f, "%.1f,%.1f,", med_of(ri, pi, 1), med_of(ri, pi, 2));
      else
        fprintf(f, ",,");
      fprintf(f, "%d,\n", g_runs);
    }
  }
  for (int i = 0; i < g_nratios; i++) {
    const ratio_t *r = &g_ratios[i];
    if (r->value < 0) continue;
    fprintf(f, "ratio,%s,,walrus,,%s,%.4f,,,,,%d,", r->id, r->unit, r->value,
            g_runs);
    if (r->target > 0) fprintf(f, "%.6g", r->target);
    fprintf(f, "\n");
  }
  if (fclose(f) != 0) die("%s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------------
 * Where the data lives: the device and file system under dir.
 * ------------------------------------------------------------------------ */
static const char *fs_name(unsigned long type) {
  switch (type) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x858458f6:
      return "ramfs";
    case 0x794c7630:
      return "overlayfs";
    case 0x2fc12fc1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    case 0x6969:
      return "nfs";
    case 0x65735546:
      return "fuse";
    default:
      return "unknown";
  }
}

static void describe_fs(const char *dir) {
  struct statfs sf;
  struct stat st;
  char real[PATH_MAX];
  if (statfs(dir, &sf) != 0 || stat(dir, &st) != 0 ||
      realpath(dir, real) == NULL)
    die("%s: %s", dir, strerror(errno));
  unsigned long type = (unsigned long)sf.f_type;
  /* /proc/self/mountinfo: the longest mount point above dir on st_dev. */
  char best_src[256] = "?", best_fs[64] = "?", best_mnt[PATH_MAX] = "?";
  size_t best_len = 0;
  FILE *f = fopen("/proc/self/mountinfo", "r");
  if (f != NULL) {
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      unsigned maj, mnr;
      char mnt[PATH_MAX], fs[64], src[256];
      char *dash = strstr(line, " - ");
      if (dash == NULL) continue;
      if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &mnr, mnt) != 3)
        continue;
      if (sscanf(dash + 3, "%63s %255s", fs, src) != 2) continue;
      if (maj != major(st.st_dev) || mnr != minor(st.st_dev)) continue;
      size_t len = strlen(mnt);
      if (strncmp(real, mnt, len) != 0 ||
          (len > 1 && real[len] != '/' && real[len] != '\0'))
        continue;
      if (len >= best_len) {
        best_len = len;
        snprintf(best_src, sizeof best_src, "%s", src);
        snprintf(best_fs, sizeof best_fs, "%s", fs);
        snprintf(best_mnt, sizeof best_mnt, "%s", mnt);
      }
    }
    fclose(f);
  }
  printf("data: %s\n      device %s (%u:%u), %s mounted on %s; statfs type "
         "0x%lx (%s), %.1f GiB free\n",
         real, best_src, major(st.st_dev), minor(st.st_dev), best_fs, best_mnt,
         type, fs_name(type),
         (double)sf.f_bavail * (double)sf.f_bsize / (1024.0 * 1024 * 1024));
  if (type == 0x01021994 || type == 0x858458f6)
    printf("WARNING: %s is in memory: fsync costs nothing there and the "
           "durable rows mean nothing; use -d on a disk\n",
           real);
}

/* ------------------------------------------------------------------------ */
/* The run's directory under -d, removed at exit (die() included). */
static char g_tmpdir[PATH_MAX];

static void remove_tmpdir(void) {
  if (g_tmpdir[0] != '\0') rm_rf(g_tmpdir);
  g_tmpdir[0] = '\0';
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_peers [-q] [-d DIR] [-r RUNS] [-t SECONDS] [-b MIB]\n"
          "                   [-w 1,2,3,4,5,6] [-T 4,16,64] "
          "[-p walrus,rocksdb,...] [-o FILE.csv]\n");
  exit(2);
}

/* Parses "a,b,c" into ints; returns how many. */
static int parse_list(const char *s, int *out, int max, int lo, int hi) {
  int n = 0;
  while (*s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < lo || v > hi || n == max) usage();
    out[n++] = (int)v;
    s = end;
    if (*s == ',')
      s++;
    else if (*s)
      usage();
  }
  return n;
}

int main(int argc, char **argv) {
  const char *base = WALRUS_BINARY_DIR, *csv = NULL, *psel = NULL;
  int runs = 0, quick = 0, opt;
  double budget = 0;
  long bulk_mib = 0;
  int wl[8], nwl = 0, tcounts[MAX_TCOUNTS] = {4, 16, 64}, ntc = 3;
  while ((opt = getopt(argc, argv, "qd:r:t:b:w:T:p:o:h")) != -1) {
    switch (opt) {
      case 'q':
        quick = 1;
        break;
      case 'd':
        base = optarg;
        break;
      case 'r':
        runs = atoi(optarg);
        break;
      case 't':
        budget = atof(optarg);
        break;
      case 'b':
        bulk_mib = atol(optarg);
        break;
      case 'w':
        nwl = parse_list(optarg, wl, 8, 1, 6);
        break;
      case 'T':
        ntc = parse_list(optarg, tcounts, MAX_TCOUNTS, 1, MAX_THREADS);
        break;
      case 'p':
        psel = optarg;
        break;
      case 'o':
        csv = optarg;
        break;
      default:
        usage();
    }
  }
  if (optind != argc) usage();
  if (runs == 0) runs = quick ? 1 : 3;
  if (runs < 1 || runs > MAX_RUNS) usage();
  if (budget <= 0) budget = quick ? 0.25 : 1.0;
  if (bulk_mib <= 0) bulk_mib = quick ? 16 : 128;
  opts_t o = {budget, quick ? 500000u : 2000000u, 10000000u,
              (uint64_t)bulk_mib << 20};
  g_runs = runs;
  int want[7] = {0};
  if (nwl == 0) {
    for (int i = 1; i <= 6; i++) want[i] = 1;
  } else {
    for (int i = 0; i < nwl; i++) want[wl[i]] = 1;
  }

  /* Systems. */
  int sel[16], nsel = 0;
  for (int i = 0; i < NPEERS; i++) {
    if (psel != NULL) {
      const char *s = strstr(psel, g_peers[i].name);
      size_t len = strlen(g_peers[i].name);
      if (s == NULL || (s != psel && s[-1] != ',') ||
          (s[len] != ',' && s[len] != '\0'))
        continue;
    }
    sel[nsel++] = i;
  }
  if (nsel == 0) usage();

  /* Rows. */
  static const struct {
    wl_t wl;
    const char *label, *id, *unit;
  } defs[] = {
      {W_NOSYNC, "(1) append, no fsync", "w1_append_nosync", "op/s"},
      {W_DURABLE, "(2) append, durable", "w2_append_durable", "op/s"},
      {W_BATCH, "(3) batch of 100, durable", "w3_batch100_durable", "op/s"},
      {W_THREADS, "(4) threads, durable", "w4_threads_durable", "op/s"},
      {W_BULK, "(5) bulk 4K x 1MiB batches + sync", "w5_bulk_4k", "MB/s"},
      {W_READ, "(6) sequential read of (1)", "w6_read_seq", "op/s"},
  };
  for (size_t d = 0; d < sizeof defs / sizeof defs[0]; d++) {
    if (!want[defs[d].wl]) continue;
    int reps = defs[d].wl == W_THREADS ? ntc : 1;
    for (int k = 0; k < reps; k++) {
      row_t *rw = &g_rows[g_nrows++];
      rw->wl = defs[d].wl;
      rw->threads = defs[d].wl == W_THREADS ? tcounts[k] : 1;
      rw->id = defs[d].id;
      rw->unit = defs[d].unit;
      if (defs[d].wl == W_THREADS)
        snprintf(rw->label, sizeof rw->label, "(4) %d threads, durable",
                 tcounts[k]);
      else
        snprintf(rw->label, sizeof rw->label, "%s", defs[d].label);
    }
  }

  g_payload = malloc(PAYLOAD_BYTES);
  if (g_payload == NULL) die("out of memory");
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (size_t i = 0; i < PAYLOAD_BYTES; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g_payload[i] = (unsigned char)(x >> 24);
  }

  char *dir = g_tmpdir;
  PATHF(g_tmpdir, "%s/bench-peers-XXXXXX", base);
  if (mkdtemp(g_tmpdir) == NULL)
    die("mkdtemp %s: %s", g_tmpdir, strerror(errno));
  atexit(remove_tmpdir);

  struct utsname un;
  printf("walrus %s bench_peers: walrus and its peers, same workloads, same "
         "run\n",
         walrus_version_string());
  if (uname(&un) == 0)
    printf("host: %s %s %s, %ld CPUs online\n", un.sysname, un.release,
           un.machine, sysconf(_SC_NPROCESSORS_ONLN));
  describe_fs(dir);
  printf("entries: %d B payload (raw loops write %d B records: walrus's "
         "%d-byte header + payload); (5): %d B entries, %ld MiB\n",
         ENTRY_BYTES, ENTRY_BYTES + REC_HEADER, REC_HEADER, BULK_ENTRY_BYTES,
         bulk_mib);
  printf("each measurement: %.2f s or %llu entries ((1)) / %llu ((2)-(4)), "
         "whichever first; medians of %d run%s%s\n",
         budget, (unsigned long long)o.max_nosync,
         (unsigned long long)o.max_durable, runs, runs == 1 ? "" : "s",
         quick ? " (quick mode)" : "");
  printf("versions: walrus %s", walrus_version_string());
#ifdef WALRUS_BENCH_HAVE_ROCKSDB
  printf(", rocksdb (Debian librocksdb-dev, C API)");
#endif
#ifdef WALRUS_BENCH_HAVE_LEVELDB
  printf(", leveldb %d.%d", leveldb_major_version(), leveldb_minor_version());
#endif
#ifdef WALRUS_BENCH_HAVE_SQLITE3
  printf(", sqlite %s", sqlite3_libversion());
#endif
#ifdef WALRUS_BENCH_HAVE_LMDB
  printf(", lmdb %d.%d.%d", MDB_VERSION_MAJOR, MDB_VERSION_MINOR,
         MDB_VERSION_PATCH);
#endif
  printf("\n");
  for (size_t i = 0; i < sizeof g_optional / sizeof g_optional[0]; i++)
    if (!g_optional[i].built)
      printf("skipped: %s (not found at build time; install %s and "
             "reconfigure)\n",
             g_optional[i].name, g_optional[i].package);
  printf("modes (no fsync | durable):\n");
  for (int k = 0; k < nsel; k++)
    printf("  %-11s %-28s | %s\n", g_peers[sel[k]].name, g_peers[sel[k]].fast,
           g_peers[sel[k]].durable);
  printf("  (5) runs every system in its no-fsync mode, then one sync: "
         "walrus_sync, fdatasync, rocksdb_flush_wal(sync), a leveldb "
         "sync=true put, sqlite wal_checkpoint(FULL) under synchronous=FULL, "
         "mdb_env_sync\n");
  fflush(stdout);

  int ri_read = row_of(W_READ, 1), ri_nosync = row_of(W_NOSYNC, 1);
  double t_start = now_s();
  for (int run = 0; run < runs; run++) {
    for (int ri = 0; ri < g_nrows; ri++) {
      /* (6) is measured together with (1). */
      if (g_rows[ri].wl == W_READ && ri_nosync >= 0) continue;
      fprintf(stderr, "bench_peers: run %d/%d: %s ...\n", run + 1, runs,
              g_rows[ri].label);
      for (int k = 0; k < nsel; k++) {
        int is_w1 = g_rows[ri].wl == W_NOSYNC || g_rows[ri].wl == W_READ;
        if (g_peers[sel[k]].fast_only && !is_w1 && g_rows[ri].wl != W_BULK)
          continue;
        measure_row(ri, sel[k], run, dir, &o, g_rows[ri].wl == W_NOSYNC,
                    is_w1 ? ri_read : -1);
      }
    }
  }
  remove_tmpdir();

  print_table(sel, nsel);
  compute_ratios();
  print_ratios();
  printf("\n(%.0f s in all; ratios are the figures, absolute rates on a "
         "shared machine are noise)\n",
         now_s() - t_start);
  if (csv != NULL) {
    const char *modes[32];
    for (int i = 0; i < NPEERS; i++) {
      modes[2 * i] = g_peers[i].fast;
      modes[2 * i + 1] = g_peers[i].durable;
    }
    write_csv(csv, sel, nsel, modes);
    printf("csv: %s\n", csv);
  }
  free(g_payload);
  return 0;
}
