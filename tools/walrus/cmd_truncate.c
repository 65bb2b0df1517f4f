/*
 * cmd_truncate.c: walrus truncate: walrus_truncate_front(),
 * walrus_truncate_back() or walrus_reset() from the shell.  On a terminal
 * it asks first (--yes skips the question); it prints what was removed.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus truncate DIR --front I | --back J | --reset I [--yes]\n"
    "  --front I   remove every entry before I (after a checkpoint)\n"
    "  --back J    remove every entry after J\n"
    "  --reset I   remove every entry; the next append gets index I\n"
    "  --yes       do not ask for confirmation on a terminal\n";

enum { FRONT = 1, BACK, RESET };

/* The entries the operation removes, as "a..b" or "none". */
static void removed_range(int op, uint64_t arg, uint64_t first, uint64_t last,
                          char *buf, size_t n) {
  uint64_t a = 0, b = 0;
  if (last != 0) {
    if (op == FRONT && arg > first) a = first, b = arg - 1;
    if (op == BACK && arg < last) a = arg + 1, b = last;
    if (op == RESET) a = first, b = last;
  }
  if (a == 0 || b < a)
    snprintf(buf, n, "none");
  else
    snprintf(buf, n, "%llu..%llu (%llu entries)", (unsigned long long)a,
             (unsigned long long)b, (unsigned long long)(b - a + 1));
}

static const char *option_name(int op) {
  return op == FRONT ? "--front" : op == BACK ? "--back" : "--reset";
}

static int confirm(const char *dir, const char *what) {
  char answer[16];
  fprintf(stderr, "walrus: remove entries %s of %s? [y/N] ", what, dir);
  fflush(stderr);
  if (fgets(answer, sizeof answer, stdin) == NULL) return 0;
  return answer[0] == 'y' || answer[0] == 'Y';
}

int cli_truncate(int argc, char **argv) {
  static const struct option opts[] = {{"front", required_argument, NULL, 'f'},
                                       {"back", required_argument, NULL, 'b'},
                                       {"reset", required_argument, NULL, 'r'},
                                       {"yes", no_argument, NULL, 'y'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  int op = 0, yes = 0, c, code;
  uint64_t arg = 0;
  const char *dir;
  while ((c = cli_getopt(argc, argv, ":yh", opts)) != -1) {
    int this_op = c == 'f' ? FRONT : c == 'b' ? BACK : c == 'r' ? RESET : 0;
    if (c == 'h') {
      fputs(usage_text, stdout);
      return CLI_OK;
    } else if (c == 'y') {
      yes = 1;
    } else if (this_op) {
      if (op) {
        cli_error("truncate: give one of --front, --back and --reset");
        return CLI_USAGE;
      }
      op = this_op;
      if (cli_parse_u64(optarg, "index", &arg)) return CLI_USAGE;
    } else {
      return cli_usage(usage_text);
    }
  }
  if (cli_one_dir(argc, argv, &dir) != CLI_OK) return cli_usage(usage_text);
  if (!op) {
    cli_error("truncate: give one of --front, --back and --reset");
    return cli_usage(usage_text);
  }
  if ((code = cli_check_dir(dir)) != CLI_OK) return code;
  /* Check the index against the log before opening it for writing, so
   * that a refused request leaves every file as it was. */
  walrus_inspect_t r;
  char msg[512], what[96];
  int rc = walrus_inspect(dir, NULL, &r, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: %s", dir, msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  uint64_t first = r.first_index, last = r.last_index;
  int range_ok = op == RESET   ? arg >= 1 && arg <= WALRUS_INDEX_MAX
                 : op == FRONT ? last == 0 ? arg == r.next_index
                                           : arg >= first && arg <= last + 1
                 : last == 0   ? arg + 1 == r.next_index
                               : arg + 1 >= first && arg <= last;
  walrus_inspect_free(&r);
  if (!range_ok) {
    if (last == 0)
      cli_error("%s: index %llu is out of range for %s: the log is empty, "
                "next index %llu; nothing changed",
                dir, (unsigned long long)arg, option_name(op),
                (unsigned long long)r.next_index);
    else
      cli_error("%s: index %llu is out of range for %s: the log holds "
                "%llu..%llu; nothing changed",
                dir, (unsigned long long)arg, option_name(op),
                (unsigned long long)first, (unsigned long long)last);
    return CLI_FAIL;
  }
  walrus_config_t cfg;
  walrus_t *w;
  walrus_config_default(&cfg);
  cfg.create_if_missing = 0;
  rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: cannot open the log for writing: %s", dir,
              msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  first = walrus_first_index(w);
  last = walrus_last_index(w);
  removed_range(op, arg, first, last, what, sizeof what);
  if (!yes && isatty(STDIN_FILENO) && strcmp(what, "none") != 0 &&
      !confirm(dir, what)) {
    fprintf(stderr, "walrus: nothing changed\n");
    walrus_close(w);
    return CLI_FAIL;
  }
  rc = op == FRONT  ? walrus_truncate_front(w, arg)
       : op == BACK ? walrus_truncate_back(w, arg)
                    : walrus_reset(w, arg);
  if (rc != WALRUS_OK) {
    cli_error("%s: %s", dir, walrus_errmsg(w));
    walrus_close(w);
    return CLI_FAIL;
  }
  first = walrus_first_index(w);
  last = walrus_last_index(w);
  uint64_t next = walrus_next_index(w);
  rc = walrus_close(w);
  if (rc != WALRUS_OK) {
    cli_error("%s: close failed: %s", dir, walrus_strerror(rc));
    return CLI_FAIL;
  }
  if (last == 0)
    cli_printf("truncate: removed %s; the log is empty, next index %llu\n",
               what, (unsigned long long)next);
  else
    cli_printf("truncate: removed %s; the log holds %llu..%llu\n", what,
               (unsigned long long)first, (unsigned long long)last);
  return cli_out_end(CLI_OK);
}
