/*
 * test_hostile.c: a log directory someone else could write is input.  A
 * file of the log replaced by a symbolic link, a FIFO, a directory or a
 * hard link to a file outside must never make walrus read, write or cut
 * that outside file, nor make an open hang.
 *
 * Each row replaces one file of a small log (META, LOCK, DURABLE, the
 * first, a middle or the tail segment) with one kind of impostor, then
 * opens the log writable and read-only.  The outside file's bytes must be
 * unchanged after, and each open must return within a second with the
 * row's result: WALRUS_EUNSAFE naming the file, or, for DURABLE (which
 * holds no data: followers just see no progress), a writable open that
 * works without touching it.
 *
 * What this does not cover yet: a directory descriptor held for the
 * handle's life (renaming the log directory under an open handle), the
 * modes of created files, the salvage folder as a link, and other owners.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"

#define SEED 77
#define MAXLEN 200

/* What replaces a file of the log. */
typedef enum impostor_e {
  LINK_OUT,  /* a symbolic link to a file outside the directory */
  LINK_IN,   /* a symbolic link to another file of the directory */
  FIFO,      /* a named pipe */
  DIRECTORY, /* a directory */
  HARD_LINK  /* a hard link shared with a file outside */
} impostor_t;

static const char *impostor_name[] = {"symlink out", "symlink in", "FIFO",
                                      "directory", "hard link out"};

static char g_outside[4200]; /* the outside file */
static unsigned char g_outside_bytes[8192];

static void setup(void) {
  tu_fixture_setup();
}
TestSuite(hostile, .init = setup, .fini = tu_fixture_teardown);

/* A log of three segments (small segments) with some entries. */
static void make_log(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  char **segs = NULL;
  cr_assert_geq(tu_segments(tu_dir, &segs), 3u, "want three segments");
  tu_strv_free(segs);
}

/* The name of the file the row replaces: a fixed name, or "first",
 * "middle", "tail" for a segment. */
static void resolve(const char *which, char *out, size_t len) {
  if (strcmp(which, "first") && strcmp(which, "middle") &&
      strcmp(which, "tail")) {
    snprintf(out, len, "%s", which);
    return;
  }
  char **segs = NULL;
  size_t n = tu_segments(tu_dir, &segs);
  size_t i = which[0] == 'f' ? 0 : which[0] == 'm' ? n / 2 : n - 1;
  snprintf(out, len, "%s", segs[i]);
  tu_strv_free(segs);
}

/* Replace tu_dir/name with the impostor.  The outside file gets the old
 * file's bytes (or known bytes), so a write through the impostor would be
 * seen as a change. */
static void replace(const char *name, impostor_t kind) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", tu_dir, name);
  snprintf(g_outside, sizeof g_outside, "%s/outside-%s", tu_tmp, name);
  size_t len = 0;
  unsigned char *old = NULL;
  if (tu_exists(path)) old = tu_read_file(path, &len);
  if (len > sizeof g_outside_bytes) len = sizeof g_outside_bytes;
  if (old == NULL || len == 0) {
    len = sizeof g_outside_bytes;
    memset(g_outside_bytes, 0x5a, len);
  } else {
    memcpy(g_outside_bytes, old, len);
  }
  free(old);
  tu_write_file(g_outside, g_outside_bytes, len);
  unlink(path);
  switch (kind) {
    case LINK_OUT:
      cr_assert_eq(symlink(g_outside, path), 0, "symlink: %s", strerror(errno));
      break;
    case LINK_IN:
      cr_assert_eq(symlink("META", path), 0);
      if (strcmp(name, "META") == 0) {
        unlink(path);
        cr_assert_eq(symlink("LOCK", path), 0);
      }
      break;
    case FIFO:
      cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
      break;
    case DIRECTORY:
      cr_assert_eq(mkdir(path, 0700), 0);
      break;
    case HARD_LINK:
      cr_assert_eq(link(g_outside, path), 0, "link: %s", strerror(errno));
      break;
  }
}

static void outside_unchanged(const char *row) {
  size_t len = 0;
  unsigned char *now = tu_read_file(g_outside, &len);
  cr_assert_not_null(now);
  cr_assert(len >= 1 && memcmp(now, g_outside_bytes,
                               len < sizeof g_outside_bytes
                                   ? len
                                   : sizeof g_outside_bytes) == 0,
            "%s: the file outside the log changed", row);
  free(now);
}

/* Open the log (writable or read-only) and return the code, checking it
 * came back within a second. */
static int open_log(int read_only, walrus_t **out) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  cfg.read_only = read_only;
  uint64_t t0 = tu_now_ms();
  int rc = walrus_open(tu_dir, &cfg, out);
  cr_assert_lt(tu_now_ms() - t0, 1000u, "the open hung");
  return rc;
}

/* Is the impostor harmless for this open, which must then work?  DURABLE
 * holds no data (followers just see no progress); a read-only open does
 * not open LOCK; a file only read (a sealed segment, META, which is
 * replaced by a rename, never written in place) may have other hard
 * links. */
static int harmless(const char *which, impostor_t kind, int ro) {
  if (strcmp(which, "DURABLE") == 0) return 1;
  if (strcmp(which, "LOCK") == 0) return ro;
  if (kind == HARD_LINK) return ro || strcmp(which, "tail") != 0;
  return 0;
}

/* One row: replace which by kind, open both ways, check. */
static void row(const char *which, impostor_t kind) {
  char name[256], label[320];
  make_log();
  resolve(which, name, sizeof name);
  snprintf(label, sizeof label, "%s replaced by a %s", name,
           impostor_name[kind]);
  replace(name, kind);
  for (int ro = 0; ro <= 1; ro++) {
    walrus_t *w = NULL;
    int rc = open_log(ro, &w);
    if (harmless(which, kind, ro)) {
      cr_assert_eq(rc, WALRUS_OK, "%s, %s open: %s", label,
                   ro ? "read-only" : "writable", walrus_errname(rc));
      if (!ro) tu_append_n(w, 2, SEED, MAXLEN);
      TU_OK(w, walrus_close(w));
    } else {
      cr_assert_eq(rc, WALRUS_EUNSAFE, "%s, %s open: %s, want WALRUS_EUNSAFE",
                   label, ro ? "read-only" : "writable", walrus_errname(rc));
    }
    outside_unchanged(label);
  }
  tu_rmrf(tu_dir);
  unlink(g_outside);
}

static const char *files[] = {"META",  "LOCK",   "DURABLE",
                              "first", "middle", "tail"};

Test(hostile, every_file_replaced_by_every_impostor) {
  int rows = 0;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
    for (int k = LINK_OUT; k <= HARD_LINK; k++) {
      row(files[f], (impostor_t)k);
      rows++;
    }
  cr_log_info("%d rows", rows);
}

/* The log directory itself may be a symbolic link: moving a log to
 * another disk that way is common. */
Test(hostile, the_log_directory_may_be_a_symlink) {
  make_log();
  char link_path[4200];
  snprintf(link_path, sizeof link_path, "%s/elsewhere", tu_tmp);
  cr_assert_eq(symlink(tu_dir, link_path), 0);
  walrus_t *w = tu_open(link_path, NULL);
  tu_append_n(w, 3, SEED, MAXLEN);
  tu_check_range(w, 1, 103, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
}

/* An error names the file and says what it is. */
Test(hostile, the_message_names_the_file) {
  make_log();
  replace("META", LINK_OUT);
  char err[512] = "";
  walrus_t *w = NULL;
  int rc = walrus_open_ex(tu_dir, NULL, &w, err, sizeof err);
  cr_assert_eq(rc, WALRUS_EUNSAFE);
  cr_assert(strstr(err, "META") != NULL && strstr(err, "symbolic link"),
            "message: %s", err);
  outside_unchanged("META");
}
