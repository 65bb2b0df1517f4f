/*
 * test_cli_probe_bench.c: `walrus probe-fsync` and `walrus bench`, run as
 * a user runs them: the built program build/tools/walrus in a child
 * process, its stdout and stderr captured, its exit status checked.
 *
 *  - probe-fsync prints every row of its table with positive rates and
 *    latencies, names the fastest method and walrus's defaults, and leaves
 *    nothing behind in DIR, also when SIGINT stops it midway;
 *  - bench reports positive appends/s for the threads asked, and leaves a
 *    log that walrus opens with exactly the entries bench says it wrote,
 *    each of the size asked; it refuses a directory that holds anything
 *    and leaves it as it was;
 *  - bad input (unknown options, missing values, non-numeric, zero and
 *    negative numbers, a missing DIR, a file for DIR) gives the documented
 *    exit code, 2 or 3, a message on stderr naming the problem, nothing on
 *    stdout, and no file created.
 *
 * The program must have been built (build/tools/walrus); when it is
 * missing, every test fails saying so.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "walrus.h"

#define WALRUS_TOOL WALRUS_BINARY_DIR "/tools/walrus"

/* What a run of the tool gave. */
typedef struct run {
  int status; /* the exit code, or 128 + signal */
  char *out;  /* its stdout, NUL-terminated */
  char *err;  /* its stderr */
} run_t;

static void run_free(run_t *r) {
  free(r->out);
  free(r->err);
}

/* Start the tool with args (NULL-terminated, without argv[0]), stdout and
 * stderr into files in tu_tmp; returns its pid. */
static pid_t tool_start(const char *const *args) {
  const char *argv[32];
  size_t n = 0;
  cr_assert(access(WALRUS_TOOL, X_OK) == 0,
            "%s is missing: build the walrus tool first", WALRUS_TOOL);
  argv[n++] = "walrus";
  while (*args != NULL && n < 31) argv[n++] = *args++;
  argv[n] = NULL;
  char out[4200], err[4200];
  snprintf(out, sizeof out, "%s/stdout", tu_tmp);
  snprintf(err, sizeof err, "%s/stderr", tu_tmp);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    int o = open(out, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    int e = open(err, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(120);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    signal(SIGINT, SIG_DFL);
    execv(WALRUS_TOOL, (char *const *)argv);
    _exit(121);
  }
  return pid;
}

static run_t tool_wait(pid_t pid) {
  run_t r;
  int st;
  size_t len;
  cr_assert(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = (char *)tu_read_file(tu_path(tu_tmp, "stdout"), &len);
  r.err = (char *)tu_read_file(tu_path(tu_tmp, "stderr"), &len);
  cr_assert(r.status != 120 && r.status != 121, "cannot run %s", WALRUS_TOOL);
  return r;
}

static run_t tool(const char *const *args) {
  return tool_wait(tool_start(args));
}

/* The names in dir other than . and .., as a count. */
static int entries_in(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  cr_assert(d != NULL, "opendir %s: %s", dir, strerror(errno));
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* The line of text that starts with prefix, or fail. */
static const char *line_of(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *p = text; p != NULL && *p; p = strchr(p, '\n')) {
    if (*p == '\n') p++;
    if (strncmp(p, prefix, n) == 0) return p + n;
  }
  cr_assert_fail("no line starting with '%s' in:\n%s", prefix, text);
  return NULL;
}

TestSuite(cli_probe_bench, .init = tu_fixture_setup,
          .fini = tu_fixture_teardown, .timeout = 60);

/* ---------------------------------------------------------------------
 * probe-fsync
 * --------------------------------------------------------------------- */

Test(cli_probe_bench, probe_prints_every_row_and_cleans_up) {
  static const char *const rows[][2] = {
      {"write + fdatasync", "growing"},
      {"pwrite + fdatasync", "prefilled"},
      {"pwrite, O_DSYNC", "prefilled"},
      {"write + fsync", "growing"},
      {"walrus append, 1 thread", "walrus"},
      {"walrus append, 4 threads", "walrus"},
      {"walrus append, 16 threads", "walrus"},
  };
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/probe", tu_tmp);
  cr_assert(mkdir(dir, 0700) == 0);
  run_t r = tool((const char *[]){"probe-fsync", dir, "--seconds", "0.2",
                                  "--size", "2k", NULL});
  cr_assert_eq(r.status, 0, "exit %d, stderr:\n%s", r.status, r.err);
  cr_assert_str_empty(r.err);
  cr_assert(strstr(line_of(r.out, "writes"), "2048 bytes, 0.20 s") != NULL,
            "%s", r.out);
  cr_assert(strstr(line_of(r.out, "file system"), "statfs type 0x") != NULL);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    char file[32], note[64] = "";
    double ops, p50, p99;
    const char *l = line_of(r.out, rows[i][0]);
    int n =
        sscanf(l, " %31s %lf %lf %lf %63[^\n]", file, &ops, &p50, &p99, note);
    cr_assert(n >= 4, "row '%s' unparsable: %s", rows[i][0], l);
    cr_assert_str_eq(file, rows[i][1], "row '%s'", rows[i][0]);
    cr_assert(ops > 0 && p50 > 0 && p99 >= p50,
              "row '%s': ops/s %g p50 %g p99 %g", rows[i][0], ops, p50, p99);
    if (i >= 4)
      cr_assert(strstr(note, "entries/fsync") != NULL, "row '%s': %s",
                rows[i][0], l);
  }
  line_of(r.out, "fastest: ");
  cr_assert(strstr(line_of(r.out, "walrus defaults: "), "sync always") != NULL);
  cr_assert_eq(entries_in(dir), 0, "probe-fsync left files in %s", dir);
  run_free(&r);
}

Test(cli_probe_bench, probe_interrupted_removes_its_directory) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/probe", tu_tmp);
  cr_assert(mkdir(dir, 0700) == 0);
  pid_t pid =
      tool_start((const char *[]){"probe-fsync", dir, "--seconds", "5", NULL});
  /* Wait for its directory, then for the first test to be under way. */
  uint64_t t0 = tu_now_ms();
  while (entries_in(dir) == 0 && tu_now_ms() - t0 < 10000) tu_sleep_ms(10);
  cr_assert_eq(entries_in(dir), 1, "no walrus-probe-* directory appeared");
  tu_sleep_ms(300);
  cr_assert(kill(pid, SIGINT) == 0);
  run_t r = tool_wait(pid);
  cr_assert_eq(r.status, 128 + SIGINT, "exit %d, stderr:\n%s", r.status, r.err);
  cr_assert_eq(entries_in(dir), 0, "SIGINT left files in %s", dir);
  run_free(&r);
}

/* ---------------------------------------------------------------------
 * bench
 * --------------------------------------------------------------------- */

/* Run bench into tu_dir with these options; check its report and that
 * the log it left holds exactly the entries it reported, of size bytes. */
static void bench_and_reopen(const char *threads, const char *sync,
                             const char *size, size_t size_bytes) {
  run_t r =
      tool((const char *[]){"bench", tu_dir, "--threads", threads, "--seconds",
                            "0.3", "--sync", sync, "--size", size, NULL});
  cr_assert_eq(r.status, 0, "exit %d, stderr:\n%s", r.status, r.err);
  cr_assert_str_empty(r.err, "stderr is not a terminal: no progress line");
  unsigned long long t = 0, appends = 0, entries = 0, first = 0, last = 0;
  double ops_s = 0, mb_s = 0, p50 = 0, p99 = 0, p999 = 0;
  cr_assert(sscanf(line_of(r.out, "threads"), "%llu", &t) == 1);
  cr_assert_eq(t, strtoull(threads, NULL, 10));
  const char *policy = line_of(r.out, "sync         ");
  cr_assert(strncmp(policy, sync, strlen(sync)) == 0 &&
                policy[strlen(sync)] == '\n',
            "%s", r.out);
  cr_assert(sscanf(line_of(r.out, "appends"), "%llu", &appends) == 1);
  cr_assert(sscanf(line_of(r.out, "ops/s"), "%lf", &ops_s) == 1);
  cr_assert(sscanf(line_of(r.out, "MB/s"), "%lf", &mb_s) == 1);
  cr_assert(sscanf(line_of(r.out, "latency us"), " p50 %lf p99 %lf p99.9 %lf",
                   &p50, &p99, &p999) == 3);
  cr_assert(sscanf(line_of(r.out, "entries"), "%llu (index %llu..%llu",
                   &entries, &first, &last) == 3);
  cr_assert(appends > 0 && ops_s > 0 && mb_s > 0, "%s", r.out);
  cr_assert(p50 > 0 && p99 >= p50 && p999 >= p99, "%s", r.out);
  cr_assert_eq(entries, appends + 1, "%s", r.out);
  cr_assert_eq(first, 1);
  cr_assert_eq(last, entries);

  /* The log, reopened by the library, holds those entries. */
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  walrus_t *w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_first_index(w), 1);
  cr_assert_eq(walrus_last_index(w), entries);
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  unsigned long long n = 0;
  int rc;
  TU_OK(w, walrus_iter_open(w, 0, &it));
  while ((rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    cr_assert_eq(e.index, n + 1);
    cr_assert_eq(e.len, size_bytes, "entry %llu", n + 1);
    n++;
  }
  cr_assert_eq(rc, WALRUS_DONE, "%s", walrus_errname(rc));
  cr_assert_eq(n, entries);
  walrus_iter_close(it);
  TU_OK(NULL, walrus_close(w));
  run_free(&r);
}

Test(cli_probe_bench, bench_four_threads_always) {
  bench_and_reopen("4", "always", "4k", 4096);
}

Test(cli_probe_bench, bench_two_threads_none) {
  bench_and_reopen("2", "none", "100", 100);
}

Test(cli_probe_bench, bench_refuses_a_directory_that_holds_files) {
  cr_assert(mkdir(tu_dir, 0700) == 0);
  tu_write_file(tu_path(tu_dir, "mine"), "keep", 4);
  run_t r = tool((const char *[]){"bench", tu_dir, "--seconds", "0.1", NULL});
  cr_assert_eq(r.status, 3, "exit %d", r.status);
  cr_assert(strstr(r.err, tu_dir) != NULL && strstr(r.err, "not empty"), "%s",
            r.err);
  cr_assert_str_empty(r.out);
  cr_assert_eq(entries_in(tu_dir), 1);
  size_t len;
  unsigned char *b = tu_read_file(tu_path(tu_dir, "mine"), &len);
  cr_assert(len == 4 && memcmp(b, "keep", 4) == 0);
  free(b);
  run_free(&r);
}

Test(cli_probe_bench, help_goes_to_stdout) {
  const char *cmds[] = {"probe-fsync", "bench"};
  for (int i = 0; i < 2; i++) {
    run_t r = tool((const char *[]){cmds[i], "--help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "usage: walrus ", 14) == 0, "%s", r.out);
    cr_assert_str_empty(r.err);
    run_free(&r);
  }
}

/* ---------------------------------------------------------------------
 * Bad input.  In args, "D" stands for a fresh directory, "F" for a
 * regular file, "M" for a missing path, "N" for a path whose parent is
 * missing.
 * --------------------------------------------------------------------- */

typedef struct bad {
  const char *args[8]; /* the command line after "walrus" */
  int status;          /* the exit code expected */
  const char *says;    /* what stderr must contain */
} bad_t;

static const bad_t bad_rows[] = {
    {{"probe-fsync", "D", "--bogus"}, 2, "unknown option '--bogus'"},
    {{"probe-fsync", "-x", "D"}, 2, "unknown option '-x'"},
    {{"probe-fsync", "D", "--seconds"}, 2, "'--seconds' needs a value"},
    {{"probe-fsync", "D", "--seconds", "abc"}, 2, "invalid seconds 'abc'"},
    {{"probe-fsync", "D", "--seconds", "0"}, 2, "invalid seconds '0'"},
    {{"probe-fsync", "D", "--seconds", "-1"}, 2, "invalid seconds '-1'"},
    {{"probe-fsync", "D", "--seconds", "inf"}, 2, "invalid seconds 'inf'"},
    {{"probe-fsync", "D", "--size", "0"}, 2, "invalid size '0'"},
    {{"probe-fsync", "D", "--size", "-4"}, 2, "invalid size '-4'"},
    {{"probe-fsync", "D", "--size", "4q"}, 2, "invalid size '4q'"},
    {{"probe-fsync", "D", "--size", "1g"}, 2, "invalid size '1g'"},
    {{"probe-fsync", "D", "D"}, 2, "one directory at most"},
    {{"probe-fsync", "M"}, 3, "No such file or directory"},
    {{"probe-fsync", "F"}, 3, "Not a directory"},
    {{"bench"}, 2, "a log directory is needed"},
    {{"bench", "--bogus", "M"}, 2, "unknown option '--bogus'"},
    {{"bench", "M", "--threads", "x"}, 2, "invalid threads 'x'"},
    {{"bench", "M", "--threads", "0"}, 2, "invalid threads '0'"},
    {{"bench", "M", "--threads", "-3"}, 2, "invalid threads '-3'"},
    {{"bench", "M", "--threads", "5000"}, 2, "invalid threads '5000'"},
    {{"bench", "M", "--seconds", "abc"}, 2, "invalid seconds 'abc'"},
    {{"bench", "M", "--seconds", "0"}, 2, "invalid seconds '0'"},
    {{"bench", "M", "--size", "0"}, 2, "invalid size '0'"},
    {{"bench", "M", "--size", "-1"}, 2, "invalid size '-1'"},
    {{"bench", "M", "--sync", "sometimes"}, 2, "sometimes"},
    {{"bench", "M", "--sync"}, 2, "'--sync' needs a value"},
    {{"bench", "M", "M"}, 2, "one directory only"},
    {{"bench", "F"}, 3, "Not a directory"},
    {{"bench", "N"}, 3, "No such file or directory"},
};

Test(cli_probe_bench, bad_input) {
  char d[4200], f[4200], m[4200], nn[4200];
  snprintf(d, sizeof d, "%s/dir", tu_tmp);
  snprintf(f, sizeof f, "%s/file", tu_tmp);
  snprintf(m, sizeof m, "%s/missing", tu_tmp);
  snprintf(nn, sizeof nn, "%s/missing/log", tu_tmp);
  cr_assert(mkdir(d, 0700) == 0);
  tu_write_file(f, "x", 1);
  for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
    const bad_t *b = &bad_rows[i];
    const char *args[9] = {0};
    char line[512] = "";
    const char *named = NULL; /* the path an exit 3 must name */
    for (int j = 0; j < 8 && b->args[j] != NULL; j++) {
      const char *a = b->args[j];
      args[j] = strcmp(a, "D") == 0   ? d
                : strcmp(a, "F") == 0 ? f
                : strcmp(a, "M") == 0 ? m
                : strcmp(a, "N") == 0 ? nn
                                      : a;
      if (args[j] != a && args[j] != d) named = args[j];
      strncat(line, " ", sizeof line - strlen(line) - 1);
      strncat(line, a, sizeof line - strlen(line) - 1);
    }
    run_t r = tool(args);
    cr_expect_eq(r.status, b->status, "walrus%s: exit %d, want %d; stderr: %s",
                 line, r.status, b->status, r.err);
    cr_expect(strstr(r.err, b->says) != NULL &&
                  strncmp(r.err, "walrus: ", 8) == 0,
              "walrus%s: stderr lacks \"%s\": %s", line, b->says, r.err);
    if (b->status == 3)
      cr_expect(named != NULL && strstr(r.err, named) != NULL,
                "walrus%s: stderr does not name the path: %s", line, r.err);
    cr_expect_str_empty(r.out, "walrus%s printed on stdout", line);
    cr_expect(!tu_exists(m), "walrus%s created %s", line, m);
    cr_expect_eq(entries_in(d), 0, "walrus%s wrote into %s", line, d);
    run_free(&r);
  }
}
