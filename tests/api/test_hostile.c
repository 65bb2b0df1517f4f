/*
 * test_hostile.c: a log directory someone else could write is input.  A
 * file of the log replaced by a symbolic link, a FIFO, a socket, a
 * directory, a hard link to a file outside or another user's file must
 * never make walrus read, write, cut or remove that outside file, nor make
 * a call hang; the directory's path renamed under an open handle must not
 * redirect it; salvage must not follow a link out of the directory; new
 * files and directories get the configured modes.
 *
 * The table: each of META, LOCK, DURABLE, the first, a middle and the tail
 * segment, and a salvage side file, replaced in turn by each impostor, for
 * each of six operations:
 *
 *   open rw, open ro, salvage   the impostor is there before the open
 *                               (salvage: a writable open with
 *                               WALRUS_RECOVER_SALVAGE of a log damaged
 *                               in its tail, which moves bytes to a side
 *                               file)
 *   truncate_front/back, reset  the impostor appears under a handle that
 *                               is already open, as a live attacker would
 *                               plant it
 *
 * Every row must return its expected code (expect() says which and why),
 * within a second, and leave the outside file's bytes unchanged.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"

#define SEED 77
#define MAXLEN 200
#define OTHER_UID 4242

/* What replaces a file of the log. */
typedef enum impostor_e {
  LINK_OUT,    /* a symbolic link to a file outside the directory */
  LINK_IN,     /* a symbolic link to another file of the directory */
  FIFO,        /* a named pipe */
  SOCKET,      /* a Unix domain socket */
  DIRECTORY,   /* a directory */
  HARD_LINK,   /* a hard link shared with a file outside */
  OTHER_OWNER, /* the file itself, given to another user (root only) */
  N_IMPOSTORS
} impostor_t;

static const char *impostor_name[] = {"symlink out", "symlink in", "FIFO",
                                      "socket",      "directory",  "hard link",
                                      "other owner"};

typedef enum op_e {
  OPEN_RW,
  OPEN_RO,
  SALVAGE,
  TRUNC_FRONT,
  TRUNC_BACK,
  RESET,
  N_OPS
} op_t;

static const char *op_name[] = {"open rw",        "open ro",       "salvage",
                                "truncate_front", "truncate_back", "reset"};

static const char *files[] = {"META",   "LOCK", "DURABLE", "first",
                              "middle", "tail", "side"};
#define N_FILES (sizeof files / sizeof files[0])

static char g_outside[4200]; /* the outside file */
static unsigned char g_outside_bytes[8192];
static size_t g_outside_len;

static void setup(void) {
  tu_fixture_setup();
}
TestSuite(hostile, .init = setup, .fini = tu_fixture_teardown);

static walrus_config_t small_cfg(void) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  return cfg;
}

/* A log of at least three segments (small segments) with some entries. */
static void make_log(void) {
  walrus_config_t cfg = small_cfg();
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  char **segs = NULL;
  cr_assert_geq(tu_segments(tu_dir, &segs), 3u, "want three segments");
  tu_strv_free(segs);
}

/* The name of segment "first", "middle" or "tail" (index out: its first
 * index), or the fixed name. */
static void resolve(const char *which, char *out, size_t len, uint64_t *first) {
  char **segs = NULL;
  size_t n = tu_segments(tu_dir, &segs);
  size_t i = n - 1;
  if (strcmp(which, "first") == 0) i = 0;
  if (strcmp(which, "middle") == 0) i = n / 2;
  if (first != NULL) *first = strtoull(segs[i], NULL, 10);
  if (strcmp(which, "side") == 0)
    snprintf(out, len, "%s.salvage", segs[n - 1]);
  else if (strcmp(which, "first") && strcmp(which, "middle") &&
           strcmp(which, "tail"))
    snprintf(out, len, "%s", which);
  else
    snprintf(out, len, "%s", segs[i]);
  tu_strv_free(segs);
}

/* Damage a record in the middle of the tail segment, with valid records
 * after it: a TAIL open refuses that, a SALVAGE open moves it aside. */
static void damage_tail(void) {
  char name[256], path[4400];
  resolve("tail", name, sizeof name, NULL);
  snprintf(path, sizeof path, "%s/%s", tu_dir, name);
  int64_t size = tu_file_size(path);
  cr_assert_gt(size, 1024, "the tail is too short to damage");
  tu_flip_bit(path, (uint64_t)size / 3, 2);
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
  g_outside_len = len;
  tu_write_file(g_outside, g_outside_bytes, len);
  if (kind == OTHER_OWNER) {
    /* The file itself stays; it only changes hands (nothing outside). */
    if (!tu_exists(path)) tu_write_file(path, g_outside_bytes, len);
    cr_assert_eq(chown(path, OTHER_UID, OTHER_UID), 0, "chown: %s",
                 strerror(errno));
    return;
  }
  unlink(path);
  switch (kind) {
    case LINK_OUT:
      cr_assert_eq(symlink(g_outside, path), 0, "symlink: %s", strerror(errno));
      break;
    case LINK_IN:
      cr_assert_eq(symlink(strcmp(name, "META") ? "META" : "LOCK", path), 0);
      break;
    case FIFO:
      cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
      break;
    case SOCKET: {
      struct sockaddr_un sa = {.sun_family = AF_UNIX};
      /* bind() takes a short path: bind by a name relative to tu_dir. */
      char cwd[4200];
      cr_assert_not_null(getcwd(cwd, sizeof cwd));
      cr_assert_eq(chdir(tu_dir), 0);
      snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name);
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      cr_assert_geq(fd, 0);
      cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s",
                   strerror(errno));
      close(fd);
      cr_assert_eq(chdir(cwd), 0);
      break;
    }
    case DIRECTORY:
      cr_assert_eq(mkdir(path, 0700), 0);
      break;
    case HARD_LINK:
      cr_assert_eq(link(g_outside, path), 0, "link: %s", strerror(errno));
      break;
    case OTHER_OWNER:
    case N_IMPOSTORS:
      break;
  }
}

static void outside_unchanged(const char *row) {
  size_t len = 0;
  unsigned char *now = tu_read_file(g_outside, &len);
  cr_assert_not_null(now);
  cr_assert(len == g_outside_len &&
                memcmp(now, g_outside_bytes, g_outside_len) == 0,
            "%s: the file outside the log changed", row);
  free(now);
}

/*
 * The code each row must return.
 *
 * Before an open (open rw, open ro, salvage): a file the open reads must
 * be a regular file reached by its own name, else WALRUS_EUNSAFE; one it
 * writes (LOCK, the tail, and under salvage every segment, as salvage may
 * cut any; DURABLE is not data) must also have no other link and belong
 * to this user or the directory's owner.  A read-only
 * open reads neither LOCK nor DURABLE's contents as data.  A side file is
 * created with O_EXCL, so an impostor under its name is never opened: the
 * side file gets the next free name.
 *
 * Under an open handle: truncate_front and reset remove segment files and
 * replace META by a rename, which removes a link, FIFO, socket or link
 * to an outside file rather than following it: those rows succeed.  A
 * directory cannot be removed or renamed over: WALRUS_EIO, and the handle
 * stops (fail-stop), having changed nothing outside.  truncate_back
 * rewrites the sealed segment it cuts into (here the first), and opens it
 * for writing first: an impostor there is WALRUS_EUNSAFE before anything
 * changes.
 */
static int expect(const char *which, impostor_t k, op_t op) {
  int seg = !strcmp(which, "first") || !strcmp(which, "middle") ||
            !strcmp(which, "tail");
  int only_read = k == HARD_LINK || k == OTHER_OWNER; /* not a bad read */
  switch (op) {
    case OPEN_RW:
    case SALVAGE:
      if (!strcmp(which, "DURABLE") || !strcmp(which, "side")) return WALRUS_OK;
      if (!strcmp(which, "LOCK") || !strcmp(which, "tail") ||
          (op == SALVAGE && seg))
        return WALRUS_EUNSAFE;
      return only_read ? WALRUS_OK : WALRUS_EUNSAFE;
    case OPEN_RO:
      if (!seg && strcmp(which, "META")) return WALRUS_OK;
      return only_read ? WALRUS_OK : WALRUS_EUNSAFE;
    case TRUNC_BACK:
      if (!strcmp(which, "first")) return WALRUS_EUNSAFE;
      __attribute__((fallthrough)); /* the rest goes as truncate_front's */
    case TRUNC_FRONT:
    case RESET: {
      int removed = !strcmp(which, "META") ||
                    (op == TRUNC_FRONT
                         ? !strcmp(which, "first") || !strcmp(which, "middle")
                         : seg);
      return removed && k == DIRECTORY ? WALRUS_EIO : WALRUS_OK;
    }
    case N_OPS:
      break;
  }
  return WALRUS_EINVAL;
}

/* Run op on the log with which replaced by kind; returns the code. */
static int run(const char *which, impostor_t kind, op_t op, char *msg,
               size_t msglen) {
  char name[256];
  uint64_t first = 0;
  walrus_config_t cfg = small_cfg();
  walrus_t *w = NULL;
  int rc;
  make_log();
  if (op == SALVAGE) damage_tail();
  resolve(which, name, sizeof name, &first);
  if (op == OPEN_RW || op == OPEN_RO || op == SALVAGE) {
    replace(name, kind);
    cfg.read_only = op == OPEN_RO;
    if (op == SALVAGE) cfg.recovery = WALRUS_RECOVER_SALVAGE;
    uint64_t t0 = tu_now_ms();
    rc = walrus_open_ex(tu_dir, &cfg, &w, msg, msglen);
    cr_assert_lt(tu_now_ms() - t0, 1000u, "the open hung");
    if (rc == WALRUS_OK) {
      if (op != OPEN_RO) tu_append_n(w, 2, SEED, MAXLEN);
      TU_OK(w, walrus_close(w));
    }
    return rc;
  }
  w = tu_open(tu_dir, &cfg);
  char tail[256];
  uint64_t tail_first = 0;
  resolve("tail", tail, sizeof tail, &tail_first);
  replace(name, kind);
  uint64_t t0 = tu_now_ms();
  if (op == TRUNC_FRONT)
    rc = walrus_truncate_front(w, tail_first);
  else if (op == TRUNC_BACK)
    rc = walrus_truncate_back(w, 3); /* inside the first segment */
  else
    rc = walrus_reset(w, 1000);
  cr_assert_lt(tu_now_ms() - t0, 1000u, "%s hung", op_name[op]);
  snprintf(msg, msglen, "%s", walrus_errmsg(w));
  walrus_close(w); /* may report the failure again */
  return rc;
}

/* One row; returns 1 if it ran (other-owner rows need root). */
static int row(const char *which, impostor_t kind, op_t op, FILE *table) {
  char label[320], msg[512] = "";
  if (kind == OTHER_OWNER && geteuid() != 0) return 0;
  snprintf(label, sizeof label, "%s replaced by a %s, %s", which,
           impostor_name[kind], op_name[op]);
  int rc = run(which, kind, op, msg, sizeof msg);
  int want = expect(which, kind, op);
  outside_unchanged(label);
  if (table != NULL)
    fprintf(table, "| %s | %s | %s | %s |\n", which, impostor_name[kind],
            op_name[op], walrus_errname(rc));
  cr_assert_eq(rc, want, "%s: %s (%s), want %s", label, walrus_errname(rc), msg,
               walrus_errname(want));
  if (rc == WALRUS_EUNSAFE)
    cr_assert(strstr(msg, tu_dir) != NULL, "%s: the message names no file: %s",
              label, msg);
  tu_rmrf(tu_dir);
  unlink(g_outside);
  return 1;
}

/* The whole table, one Criterion test per operation so that a failure
 * names it.  WALRUS_HOSTILE_TABLE=<file> appends the rows as a Markdown
 * table (docs/RELIABILITY.md quotes it). */
static void table_for(op_t op) {
  const char *out = getenv("WALRUS_HOSTILE_TABLE");
  FILE *table = out != NULL ? fopen(out, "a") : NULL;
  int rows = 0;
  for (size_t f = 0; f < N_FILES; f++)
    for (int k = 0; k < N_IMPOSTORS; k++)
      rows += row(files[f], (impostor_t)k, op, table);
  if (table != NULL) fclose(table);
  cr_assert_geq(rows, (int)(N_FILES * (N_IMPOSTORS - 1)));
  cr_log_info("%s: %d rows", op_name[op], rows);
}

Test(hostile, table_open_rw) {
  table_for(OPEN_RW);
}
Test(hostile, table_open_ro) {
  table_for(OPEN_RO);
}
Test(hostile, table_salvage) {
  table_for(SALVAGE);
}
Test(hostile, table_truncate_front) {
  table_for(TRUNC_FRONT);
}
Test(hostile, table_truncate_back) {
  table_for(TRUNC_BACK);
}
Test(hostile, table_reset) {
  table_for(RESET);
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

/* Names in dir, but "." and "..". */
static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "opendir %s", dir);
  size_t n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;) n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The handle holds its directory: renaming the directory's path and
 * putting another directory (or a link elsewhere) in its place does not
 * redirect appends, rotations, truncate_front or a reopen of a segment. */
Test(hostile, renaming_the_directory_does_not_redirect_the_handle) {
  walrus_config_t cfg = small_cfg();
  cfg.cached_segments = 1; /* sealed segments are reopened by name */
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 50, SEED, MAXLEN);
  char moved[4200], decoy[4200];
  snprintf(moved, sizeof moved, "%s/moved", tu_tmp);
  snprintf(decoy, sizeof decoy, "%s/decoy", tu_tmp);
  cr_assert_eq(rename(tu_dir, moved), 0);
  cr_assert_eq(mkdir(decoy, 0700), 0);
  cr_assert_eq(symlink(decoy, tu_dir), 0); /* the old path leads elsewhere */
  tu_append_n(w, 100, SEED, MAXLEN);       /* rotates several times */
  tu_check_range(w, 1, 150, SEED, MAXLEN);
  TU_OK(w, walrus_truncate_front(w, 20));
  TU_OK(w, walrus_close(w));
  char **segs = NULL;
  cr_assert_eq(tu_segments(decoy, &segs), 0u, "a segment went to the decoy");
  tu_strv_free(segs);
  size_t entries = count_entries(decoy);
  cr_assert_eq(entries, 0u, "the decoy directory got %zu files", entries);
  w = tu_open(moved, &cfg);
  cr_assert_eq(walrus_first_index(w), 20u);
  tu_check_range(w, 20, 150, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  unlink(tu_dir);
  tu_rmrf(decoy);
  tu_rmrf(moved);
}

/* Damage in a middle segment makes salvage move the segments after it
 * into salvage/.  If salvage/ is a link to a directory outside, the open
 * refuses with WALRUS_EUNSAFE and moves nothing; a real salvage/ works. */
static void damage_middle(void) {
  char name[256], path[4400];
  resolve("middle", name, sizeof name, NULL);
  snprintf(path, sizeof path, "%s/%s", tu_dir, name);
  tu_flip_bit(path, 200, 1);
}

Test(hostile, salvage_does_not_follow_a_salvage_link_out) {
  make_log();
  damage_middle();
  char out[4200], link_path[4200];
  snprintf(out, sizeof out, "%s/outside-dir", tu_tmp);
  cr_assert_eq(mkdir(out, 0700), 0);
  snprintf(link_path, sizeof link_path, "%s/salvage", tu_dir);
  cr_assert_eq(symlink(out, link_path), 0);
  walrus_config_t cfg = small_cfg();
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  walrus_t *w = NULL;
  char msg[512] = "";
  int rc = walrus_open_ex(tu_dir, &cfg, &w, msg, sizeof msg);
  cr_assert_eq(rc, WALRUS_EUNSAFE, "%s (%s)", walrus_errname(rc), msg);
  cr_assert(strstr(msg, "salvage") != NULL, "message: %s", msg);
  cr_assert_eq(count_entries(out), 0u, "salvage wrote outside the log");
  /* With the link gone, salvage makes its own folder and moves the later
   * segments there. */
  cr_assert_eq(unlink(link_path), 0);
  w = tu_open(tu_dir, &cfg);
  TU_OK(w, walrus_close(w));
  cr_assert_geq(count_entries(link_path), 1u, "nothing was moved aside");
  cr_assert_eq(count_entries(out), 0u);
}

/* ---- modes ------------------------------------------------------------ */

static unsigned mode_of(const char *path) {
  struct stat st;
  cr_assert_eq(lstat(path, &st), 0, "stat %s: %s", path, strerror(errno));
  return (unsigned)(st.st_mode & 07777);
}

/* Every file and directory of a log made under umask mask with file mode
 * fm (0: the default), salvage/ and a side file included, has the modes
 * walrus.h promises. */
static void check_modes(mode_t mask, unsigned fm) {
  unsigned want_file = (fm ? fm : 0600) & ~(unsigned)mask;
  unsigned want_dir =
      ((fm ? fm : 0600) | (((fm ? fm : 0600) & 0444u) >> 2)) & ~(unsigned)mask;
  mode_t old = umask(mask);
  walrus_config_t cfg = small_cfg();
  if (fm) cfg.file_mode = fm;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 100, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  damage_middle(); /* salvage: a side file and salvage/ */
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  w = tu_open(tu_dir, &cfg);
  TU_OK(w, walrus_close(w));
  umask(old);
  cr_assert_eq(mode_of(tu_dir), want_dir, "umask %03o, mode %04o: %s is %04o",
               (unsigned)mask, fm, tu_dir, mode_of(tu_dir));
  char sal[4200];
  snprintf(sal, sizeof sal, "%s/salvage", tu_dir);
  cr_assert_eq(mode_of(sal), want_dir, "salvage/ is %04o, want %04o",
               mode_of(sal), want_dir);
  int files_seen = 0, side = 0;
  const char *dirs[] = {tu_dir, sal};
  for (int k = 0; k < 2; k++) {
    DIR *d = opendir(dirs[k]);
    cr_assert_not_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
      if (de->d_name[0] == '.' || strcmp(de->d_name, "salvage") == 0) continue;
      char p[4300];
      snprintf(p, sizeof p, "%s/%s", dirs[k], de->d_name);
      cr_assert_eq(mode_of(p), want_file, "umask %03o, mode %04o: %s is %04o",
                   (unsigned)mask, fm, p, mode_of(p));
      files_seen++;
      side += strstr(de->d_name, ".salvage") != NULL;
    }
    closedir(d);
  }
  cr_assert_geq(files_seen, 6, "too few files checked");
  cr_assert_geq(side, 1, "no side file was made");
  tu_rmrf(tu_dir);
}

Test(hostile, modes_under_umask_022_and_077) {
  check_modes(022, 0);
  check_modes(077, 0);
  check_modes(022, 0640);
  check_modes(077, 0640);
  check_modes(002, 0660);
}

/* Files that exist keep their modes. */
Test(hostile, existing_files_keep_their_modes) {
  make_log();
  char name[256], path[4400];
  resolve("tail", name, sizeof name, NULL);
  snprintf(path, sizeof path, "%s/%s", tu_dir, name);
  cr_assert_eq(chmod(path, 0644), 0);
  walrus_config_t cfg = small_cfg();
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, 1, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  cr_assert_eq(mode_of(path), 0644u);
}

Test(hostile, a_bad_file_mode_is_refused) {
  walrus_config_t cfg = small_cfg();
  char msg[256];
  unsigned bad[] = {0400, 0200, 01600, 04600, 010600};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cfg.file_mode = bad[i];
    cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_EINVAL,
                 "file_mode %o accepted", bad[i]);
    cr_assert(strstr(msg, "file_mode") != NULL, "message: %s", msg);
  }
  cfg.file_mode = 0777;
  cr_assert_eq(walrus_config_check(&cfg, msg, sizeof msg), WALRUS_OK);
}

/* ---- a read-only file system ------------------------------------------ */

/* A writable open on a read-only file system says so; a read-only open
 * there reads the log.  Needs root (mount); skipped otherwise. */
Test(hostile, a_read_only_file_system) {
  char mnt[4200];
  snprintf(mnt, sizeof mnt, "%s/ro", tu_tmp);
  cr_assert_eq(mkdir(mnt, 0700), 0);
  if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
    cr_skip_test("needs root to mount a tmpfs");
  }
  char dir[4300];
  snprintf(dir, sizeof dir, "%s/log", mnt);
  walrus_config_t cfg = small_cfg();
  walrus_t *w = tu_open(dir, &cfg);
  tu_append_n(w, 40, SEED, MAXLEN);
  TU_OK(w, walrus_close(w));
  int remounted = mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL);
  if (remounted != 0) {
    umount(mnt);
    cr_skip_test("cannot remount read-only: %s", strerror(errno));
  }
  char msg[512] = "";
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  int ro_rc = WALRUS_OK;
  uint64_t last = 0;
  if (rc == WALRUS_OK) walrus_close(w);
  cfg.read_only = 1;
  walrus_t *r = NULL;
  ro_rc = walrus_open(dir, &cfg, &r);
  if (ro_rc == WALRUS_OK) {
    last = walrus_last_index(r);
    tu_check_range(r, 1, 40, SEED, MAXLEN);
    walrus_close(r);
  }
  umount(mnt);
  cr_assert_eq(rc, WALRUS_EREADONLY, "writable open: %s (%s)",
               walrus_errname(rc), msg);
  cr_assert(strstr(msg, "EROFS") != NULL && strstr(msg, dir) != NULL,
            "message: %s", msg);
  cr_assert_eq(ro_rc, WALRUS_OK, "read-only open: %s", walrus_errname(ro_rc));
  cr_assert_eq(last, 40u);
}
