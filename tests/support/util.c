/*
 * util.c: the shared test helpers declared (and documented) in util.h.
 */
#define _GNU_SOURCE
#include "util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- directories and files ---------------------------------------------- */

char *tu_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  size_t n = strlen(base) + sizeof("/walrus-test-XXXXXX");
  char *path = malloc(n);
  cr_assert_not_null(path);
  snprintf(path, n, "%s/walrus-test-XXXXXX", base);
  cr_assert_not_null(mkdtemp(path), "mkdtemp(%s): %s", path, strerror(errno));
  return path;
}

void tu_tmpdir_remove(char *dir) {
  if (dir == NULL) return;
  tu_rmrf(dir);
  free(dir);
}

void tu_rmrf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir(%s): %s", path, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      size_t n = strlen(path) + strlen(de->d_name) + 2;
      char *child = malloc(n);
      cr_assert_not_null(child);
      snprintf(child, n, "%s/%s", path, de->d_name);
      tu_rmrf(child);
      free(child);
    }
    closedir(d);
    cr_assert_eq(rmdir(path), 0, "rmdir(%s): %s", path, strerror(errno));
  } else {
    cr_assert_eq(unlink(path), 0, "unlink(%s): %s", path, strerror(errno));
  }
}

void tu_copy_dir(const char *from, const char *to) {
  if (mkdir(to, 0755) != 0)
    cr_assert_eq(errno, EEXIST, "mkdir(%s): %s", to, strerror(errno));
  DIR *d = opendir(from);
  cr_assert_not_null(d, "opendir(%s): %s", from, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    size_t n1 = strlen(from) + strlen(de->d_name) + 2;
    size_t n2 = strlen(to) + strlen(de->d_name) + 2;
    char *src = malloc(n1), *dst = malloc(n2);
    cr_assert(src != NULL && dst != NULL);
    snprintf(src, n1, "%s/%s", from, de->d_name);
    snprintf(dst, n2, "%s/%s", to, de->d_name);
    struct stat st;
    cr_assert_eq(lstat(src, &st), 0, "lstat(%s): %s", src, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
      tu_copy_dir(src, dst);
    } else if (S_ISREG(st.st_mode)) {
      size_t len;
      unsigned char *buf = tu_read_file(src, &len);
      tu_write_file(dst, buf, len);
      free(buf);
    }
    free(src);
    free(dst);
  }
  closedir(d);
}

const char *tu_path(const char *dir, const char *name) {
  static _Thread_local char ring[16][4096];
  static _Thread_local unsigned next;
  char *out = ring[next++ % 16];
  int n = snprintf(out, sizeof ring[0], "%s/%s", dir, name);
  cr_assert(n > 0 && (size_t)n < sizeof ring[0], "path too long: %s/%s", dir,
            name);
  return out;
}

int tu_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

unsigned char *tu_read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0, "fstat(%s): %s", path, strerror(errno));
  size_t size = (size_t)st.st_size;
  unsigned char *buf = malloc(size + 1);
  cr_assert_not_null(buf);
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    cr_assert(r > 0, "read(%s): %s", path, r < 0 ? strerror(errno) : "EOF");
    got += (size_t)r;
  }
  close(fd);
  buf[size] = 0;
  if (len != NULL) *len = size;
  return buf;
}

static void write_all(int fd, const char *path, const void *buf, size_t len) {
  const unsigned char *p = buf;
  while (len > 0) {
    ssize_t r = write(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    cr_assert(r > 0, "write(%s): %s", path, strerror(errno));
    p += r;
    len -= (size_t)r;
  }
}

void tu_write_file(const char *path, const void *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
  write_all(fd, path, buf, len);
  cr_assert_eq(close(fd), 0, "close(%s): %s", path, strerror(errno));
}

void tu_append_file(const char *path, const void *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
  write_all(fd, path, buf, len);
  cr_assert_eq(close(fd), 0, "close(%s): %s", path, strerror(errno));
}

int64_t tu_file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (int64_t)st.st_size;
}

void tu_truncate(const char *path, uint64_t size) {
  cr_assert_eq(truncate(path, (off_t)size), 0, "truncate(%s, %llu): %s", path,
               (unsigned long long)size, strerror(errno));
}

void tu_flip_bit(const char *path, uint64_t off, unsigned bit) {
  cr_assert_lt(bit, 8u);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
  unsigned char b;
  cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1, "pread(%s, %llu)", path,
               (unsigned long long)off);
  b ^= (unsigned char)(1u << bit);
  cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1, "pwrite(%s, %llu)", path,
               (unsigned long long)off);
  cr_assert_eq(close(fd), 0);
}

/* ---- a fresh log directory for every test ------------------------------ */

char *tu_tmp;
char tu_dir[4096];

void tu_fixture_setup(void) {
  tu_tmp = tu_tmpdir();
  snprintf(tu_dir, sizeof tu_dir, "%s/log", tu_tmp);
}

void tu_fixture_teardown(void) {
  tu_tmpdir_remove(tu_tmp);
  tu_tmp = NULL;
}

walrus_t *tu_open_default(void) {
  return tu_open(tu_dir, NULL);
}

/* ---- segment files ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tu_segments(const char *dir, char ***names) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "opendir(%s): %s", dir, strerror(errno));
  size_t n = 0, cap = 8;
  char **v = malloc(cap * sizeof *v);
  cr_assert_not_null(v);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len <= 4 || strcmp(de->d_name + len - 4, ".seg") != 0) continue;
    if (n + 1 >= cap) {
      cap *= 2;
      v = realloc(v, cap * sizeof *v);
      cr_assert_not_null(v);
    }
    v[n] = strdup(de->d_name);
    cr_assert_not_null(v[n]);
    n++;
  }
  closedir(d);
  qsort(v, n, sizeof *v, cmp_str);
  v[n] = NULL;
  if (names != NULL)
    *names = v;
  else
    tu_strv_free(v);
  return n;
}

void tu_strv_free(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* ---- deterministic payloads --------------------------------------------- */

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void tu_payload(uint64_t index, uint64_t seed, unsigned char *buf,
                size_t len) {
  uint64_t base = splitmix64(index * 0xD1B54A32D192ED03ull ^ splitmix64(seed));
  base ^= (uint64_t)len;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t r = splitmix64(base + i);
    for (size_t k = 0; k < 8 && i + k < len; k++)
      buf[i + k] = (unsigned char)(r >> (8 * k));
  }
}

void tu_text_payload(uint64_t index, uint64_t seed, unsigned char *buf,
                     size_t len) {
  char chunk[128];
  int n = snprintf(chunk, sizeof chunk,
                   "{\"index\":%llu,\"acct\":\"acct-%04llu\",\"memo\":"
                   "\"rent and utilities\",\"seed\":%llu},",
                   (unsigned long long)index, (unsigned long long)(index % 97),
                   (unsigned long long)(seed % 1000));
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)chunk[i % (size_t)n];
}

uint64_t tu_zstd_records(const unsigned char *b, size_t size) {
  uint64_t records = 0;
  /* After the 64-byte header, records: body_len at +4, flags at +34, the
   * body padded to 8 bytes after the 40-byte header. */
  for (size_t off = 64; off + 40 <= size;) {
    uint32_t body = (uint32_t)b[off + 4] | (uint32_t)b[off + 5] << 8 |
                    (uint32_t)b[off + 6] << 16 | (uint32_t)b[off + 7] << 24;
    if (body == 0 && b[off + 34] == 0) break; /* preallocated zeros */
    if (b[off + 34] & 0x40) records++;
    off += 40 + (((size_t)body + 7) & ~(size_t)7);
  }
  return records;
}

size_t tu_len(uint64_t index, uint64_t seed, size_t max) {
  uint64_t r = splitmix64(index ^ splitmix64(seed ^ 0x5EEDull));
  switch (r & 15) {
    case 0:
      return 0;
    case 1:
      return max;
    default:
      return (size_t)((r >> 8) % ((uint64_t)max + 1));
  }
}

/* ---- working with a log ------------------------------------------------- */

walrus_t *tu_open(const char *dir, const walrus_config_t *cfg) {
  walrus_t *w = NULL;
  char msg[512] = "";
  int rc = walrus_open_ex(dir, cfg, &w, msg, sizeof msg);
  cr_assert_eq(rc, WALRUS_OK, "walrus_open(%s): %s (%d): %s", dir,
               walrus_errname(rc), rc, msg);
  cr_assert_not_null(w);
  return w;
}

void tu_entry_set(walrus_entry_t *e, uint64_t index, uint64_t seed,
                  size_t max, unsigned char *buf) {
  size_t len = tu_len(index, seed, max);
  tu_payload(index, seed, buf, len);
  memset(e, 0, sizeof *e);
  e->term = index;
  e->type = (uint16_t)(index % 7);
  e->timestamp_ns = (int64_t)(1000 + index);
  e->tx_id = NULL;
  e->data = buf;
  e->len = len;
}

void tu_append_n(walrus_t *w, uint64_t n, uint64_t seed, size_t max) {
  unsigned char *buf = malloc(max > 0 ? max : 1);
  cr_assert_not_null(buf);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t want = walrus_next_index(w);
    walrus_entry_t e;
    tu_entry_set(&e, want, seed, max, buf);
    uint64_t got = 0;
    int rc = walrus_append(w, &e, &got);
    cr_assert_eq(rc, WALRUS_OK, "append %llu: %s: %s", (unsigned long long)want,
                 walrus_errname(rc), walrus_errmsg(w));
    cr_assert_eq(got, want, "append got index %llu, want %llu",
                 (unsigned long long)got, (unsigned long long)want);
  }
  free(buf);
}

void tu_check_bytes(const walrus_entry_t *e, uint64_t index, uint64_t seed,
                    size_t len) {
  cr_assert_eq(e->len, len, "entry %llu: len %zu, want %zu",
               (unsigned long long)index, e->len, len);
  if (len == 0) return;
  cr_assert_not_null(e->data, "entry %llu: data NULL",
                     (unsigned long long)index);
  unsigned char *want = malloc(len);
  cr_assert_not_null(want);
  tu_payload(index, seed, want, len);
  const unsigned char *got = e->data;
  size_t bad = len;
  for (size_t i = 0; i < len; i++) {
    if (got[i] != want[i]) {
      bad = i;
      break;
    }
  }
  free(want);
  cr_assert_eq(bad, len, "entry %llu: payload differs at byte %zu of %zu",
               (unsigned long long)index, bad, len);
}

void tu_check_entry(const walrus_entry_t *e, uint64_t index, uint64_t seed,
                    size_t max) {
  cr_assert_eq(e->index, index, "entry index %llu, want %llu",
               (unsigned long long)e->index, (unsigned long long)index);
  cr_assert_eq(e->term, index, "entry %llu: term %llu",
               (unsigned long long)index, (unsigned long long)e->term);
  cr_assert_eq(e->type, (uint16_t)(index % 7), "entry %llu: type %u",
               (unsigned long long)index, (unsigned)e->type);
  cr_assert_eq(e->timestamp_ns, (int64_t)(1000 + index),
               "entry %llu: timestamp %lld", (unsigned long long)index,
               (long long)e->timestamp_ns);
  cr_assert_null(e->tx_id, "entry %llu: tx_id not NULL",
                 (unsigned long long)index);
  tu_check_bytes(e, index, seed, tu_len(index, seed, max));
}

void tu_check_range(walrus_t *w, uint64_t first, uint64_t last,
                    uint64_t seed, size_t max) {
  for (uint64_t i = first; i <= last && i != 0; i++) {
    walrus_entry_t e;
    memset(&e, 0, sizeof e);
    int rc = walrus_get(w, i, &e);
    cr_assert_eq(rc, WALRUS_OK, "get %llu: %s: %s", (unsigned long long)i,
                 walrus_errname(rc), walrus_errmsg(w));
    tu_check_entry(&e, i, seed, max);
    walrus_entry_free(&e);
  }
}

/* ---- time ---------------------------------------------------------------- */

uint64_t tu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tu_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
