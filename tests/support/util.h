/*
 * util.h: small helpers shared by every walrus test program.
 *
 * Every helper that can fail asserts (Criterion cr_assert) instead of
 * returning an error, so a test reads as a list of steps.  They are meant
 * for Criterion test bodies and fixtures; nothing here is thread-safe
 * except tu_payload, tu_len, tu_path (which uses thread-local buffers),
 * tu_now_ms and tu_sleep_ms.
 *
 * Directories and files
 *   char *tu_tmpdir(void)
 *       Make a fresh empty directory "$TMPDIR/walrus-test-XXXXXX" (or /tmp
 *       when TMPDIR is unset) and return its malloc()ed path.
 *   void tu_tmpdir_remove(char *dir)
 *       tu_rmrf(dir), then free(dir).  NULL is fine.  Use it in every test
 *       (or fixture fini) that called tu_tmpdir().
 *   void tu_rmrf(const char *path)
 *       Remove a file or a directory tree; a missing path is fine.
 *   void tu_copy_dir(const char *from, const char *to)
 *       Copy a directory tree (regular files and subdirectories) to to,
 *       which is created if missing.
 *   const char *tu_path(const char *dir, const char *name)
 *       "dir/name" in a thread-local ring of 16 buffers: valid until 16
 *       more tu_path() calls in the same thread.  Copy it to keep it.
 *   int tu_exists(const char *path)
 *       1 if path exists (any kind), else 0.
 *   unsigned char *tu_read_file(const char *path, size_t *len)
 *       Whole file, malloc()ed and followed by one extra NUL byte (not
 *       counted in *len).  Asserts that the file exists.  free() it.
 *   void tu_write_file(const char *path, const void *buf, size_t len)
 *       Create or replace path with exactly these bytes.
 *   void tu_append_file(const char *path, const void *buf, size_t len)
 *       Append bytes to an existing file.
 *   int64_t tu_file_size(const char *path)
 *       Size in bytes, or -1 if the file does not exist.
 *   void tu_truncate(const char *path, uint64_t size)
 *       Set the file's size (cut or extend with zeros).
 *   void tu_flip_bit(const char *path, uint64_t off, unsigned bit)
 *       XOR bit (0..7) of the byte at off; asserts off < size.
 *
 * A fresh log directory for every test (a suite's fixture)
 *   char *tu_tmp; char tu_dir[4096]
 *       The test's temp dir, and "<tu_tmp>/log" inside it (not created),
 *       as tu_fixture_setup() left them.
 *   void tu_fixture_setup(void)
 *       tu_tmp = tu_tmpdir(), tu_dir = "<tu_tmp>/log".  Give it to
 *       TestSuite(name, .init = tu_fixture_setup, .fini =
 *       tu_fixture_teardown); Criterion runs each test in its own process,
 *       so every test gets its own.
 *   void tu_fixture_teardown(void)
 *       tu_tmpdir_remove(tu_tmp).
 *   walrus_t *tu_open_default(void)
 *       tu_open(tu_dir, NULL): the fixture's log with the default config.
 *
 * Segment files
 *   size_t tu_segments(const char *dir, char ***names)
 *       The names (not paths) of dir's files that end in ".seg" exactly
 *       (so not ".seg.tmp" or ".seg.salvage"), sorted, which for walrus's
 *       20-digit names is index order.  *names is a malloc()ed array with
 *       a NULL after the last; free it with tu_strv_free().  names may be
 *       NULL to only count.  Returns the count.
 *   void tu_strv_free(char **v)
 *       Free a NULL-terminated array of strings and the array.  NULL ok.
 *
 * Deterministic payloads
 *   void tu_payload(uint64_t index, uint64_t seed, unsigned char *buf,
 *                   size_t len)
 *       Fill buf with len bytes that depend only on (index, seed, len).
 *       Different indexes or seeds give different bytes.
 *   size_t tu_len(uint64_t index, uint64_t seed, size_t max)
 *       A length in [0, max] that depends only on (index, seed, max).
 *       About 1 in 16 lengths is 0 and about 1 in 16 is max.
 *   void tu_text_payload(uint64_t index, uint64_t seed, unsigned char *buf,
 *                        size_t len)
 *       Like tu_payload, but a JSON-like text naming index and seed that
 *       compresses well (for cfg.compression tests).
 *   uint64_t tu_zstd_records(const unsigned char *seg, size_t len)
 *       The compressed records (flag ZSTD, docs/FORMAT.md §5.6) among the
 *       records of the segment file image seg, walked from its header to
 *       the first record of zeros or the end.
 *
 * Working with a log
 *   walrus_t *tu_open(const char *dir, const walrus_config_t *cfg)
 *       walrus_open_ex() that asserts WALRUS_OK, printing the message.
 *   void tu_entry_set(walrus_entry_t *e, uint64_t index, uint64_t seed,
 *                     size_t max, unsigned char *buf)
 *       Fill e as the test entry for index: term = index, type =
 *       index % 7, timestamp_ns = 1000 + index, tx_id NULL, data = buf
 *       (of at least max bytes) holding tu_len(index, seed, max) bytes of
 *       tu_payload(index, seed).
 *   void tu_append_n(walrus_t *w, uint64_t n, uint64_t seed, size_t max)
 *       Append n test entries one by one (see tu_entry_set), asserting each
 *       gets the index walrus_next_index() promised.
 *   void tu_check_entry(const walrus_entry_t *e, uint64_t index,
 *                       uint64_t seed, size_t max)
 *       Assert that e is the test entry tu_entry_set() makes for index:
 *       index, term, type, timestamp, tx_id NULL, length and bytes.
 *   void tu_check_range(walrus_t *w, uint64_t first, uint64_t last,
 *                       uint64_t seed, size_t max)
 *       walrus_get() every index in [first, last] and tu_check_entry() it.
 *   void tu_check_bytes(const walrus_entry_t *e, uint64_t index,
 *                       uint64_t seed, size_t len)
 *       Assert only that e holds len bytes equal to tu_payload(index,
 *       seed); for entries not made by tu_entry_set().
 *
 * Return codes (macros; the file must include <criterion/criterion.h>)
 *   TU_OK(w, expr)
 *       Assert that expr returns WALRUS_OK; the message names expr, the
 *       code and walrus_errmsg(w).
 *   TU_EXPECT(code, expr)
 *       Assert that expr returns code; the message names expr and both
 *       codes.
 *
 * Time (no Criterion call: fine in any thread and in a forked child)
 *   uint64_t tu_now_ms(void)
 *       CLOCK_MONOTONIC in milliseconds.
 *   void tu_sleep_ms(unsigned ms)
 *       Sleep ms milliseconds (resuming after EINTR).
 */
#ifndef WALRUS_TEST_UTIL_H
#define WALRUS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "walrus.h"

char *tu_tmpdir(void);
void tu_tmpdir_remove(char *dir);
void tu_rmrf(const char *path);
void tu_copy_dir(const char *from, const char *to);
const char *tu_path(const char *dir, const char *name);
int tu_exists(const char *path);
unsigned char *tu_read_file(const char *path, size_t *len);
void tu_write_file(const char *path, const void *buf, size_t len);
void tu_append_file(const char *path, const void *buf, size_t len);
int64_t tu_file_size(const char *path);
void tu_truncate(const char *path, uint64_t size);
void tu_flip_bit(const char *path, uint64_t off, unsigned bit);

extern char *tu_tmp;
extern char tu_dir[4096];
void tu_fixture_setup(void);
void tu_fixture_teardown(void);
walrus_t *tu_open_default(void);

size_t tu_segments(const char *dir, char ***names);
void tu_strv_free(char **v);

void tu_payload(uint64_t index, uint64_t seed, unsigned char *buf,
                size_t len);
size_t tu_len(uint64_t index, uint64_t seed, size_t max);
void tu_text_payload(uint64_t index, uint64_t seed, unsigned char *buf,
                     size_t len);
uint64_t tu_zstd_records(const unsigned char *seg, size_t len);

walrus_t *tu_open(const char *dir, const walrus_config_t *cfg);
void tu_entry_set(walrus_entry_t *e, uint64_t index, uint64_t seed,
                  size_t max, unsigned char *buf);
void tu_append_n(walrus_t *w, uint64_t n, uint64_t seed, size_t max);
void tu_check_entry(const walrus_entry_t *e, uint64_t index, uint64_t seed,
                    size_t max);
void tu_check_range(walrus_t *w, uint64_t first, uint64_t last,
                    uint64_t seed, size_t max);
void tu_check_bytes(const walrus_entry_t *e, uint64_t index, uint64_t seed,
                    size_t len);

#define TU_OK(w, expr)                                                     \
  do {                                                                     \
    int rc_ = (expr);                                                      \
    cr_assert_eq(rc_, WALRUS_OK, "%s: %s: %s", #expr, walrus_errname(rc_), \
                 walrus_errmsg(w));                                        \
  } while (0)

#define TU_EXPECT(code, expr)                                     \
  do {                                                            \
    int rc_ = (expr);                                             \
    cr_assert_eq(rc_, (code), "%s: got %s (%d), want %s", #expr,  \
                 walrus_errname(rc_), rc_, walrus_errname(code)); \
  } while (0)

uint64_t tu_now_ms(void);
void tu_sleep_ms(unsigned ms);

#endif /* WALRUS_TEST_UTIL_H */
