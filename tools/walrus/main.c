/*
 * main.c: the walrus command's entry: picks the subcommand, and answers
 * --version, --help and help [CMD] itself.  Each subcommand lives in its
 * own cmd_*.c file and parses its own options.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The subcommands, in the order help lists them. */
static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *what;
} commands[] = {
    {"stat", cli_stat, "the log's range, segments, lock and tail"},
    {"dump", cli_dump, "print entries, as text or JSON lines"},
    {"verify", cli_verify,
     "check every checksum; tell a torn tail from damage"},
    {"repair", cli_repair, "salvage a damaged log, keeping every removed byte"},
    {"tail", cli_tail, "the last entries, and with -f every new one"},
    {"append", cli_append, "append one entry per input line"},
    {"truncate", cli_truncate, "remove a prefix or a suffix, or reset"},
    {"probe-fsync", cli_probe_fsync, "how fast this file system syncs"},
    {"bench", cli_bench, "a quick throughput and latency run"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f, "usage: walrus COMMAND [OPTIONS] DIR\n"
             "       walrus help [COMMAND] | --help | --version\n\n"
             "Inspect, verify, repair, follow and measure a walrus log.\n\n"
             "Commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].what);
  fprintf(f, "\nExit status: 0 success (verify: clean), 1 damage found or the\n"
             "operation failed, 2 usage error, 3 cannot open or read the log\n"
             "(missing, permission, locked by a writer).  See walrus(1).\n");
}

static int find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return (int)i;
  return -1;
}

int main(int argc, char **argv) {
  /* A closed pipe shows up as EPIPE on write, which each command handles
   * (tail -f | head ends quietly), instead of killing the process. */
  signal(SIGPIPE, SIG_IGN);
  cli_out_init();
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("walrus %s (library %s, format 1)\n", WALRUS_CLI_VERSION,
           walrus_version_string());
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
  }
  if (strcmp(cmd, "help") == 0) {
    if (argc < 3) {
      usage(stdout);
      return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    }
    int i = find(argv[2]);
    if (i < 0) {
      cli_error("no command '%s'; 'walrus help' lists them", argv[2]);
      return CLI_USAGE;
    }
    char name[32], help[] = "--help";
    snprintf(name, sizeof name, "%s", commands[i].name);
    char *args[] = {name, help, NULL};
    return commands[i].run(2, args);
  }
  int i = find(cmd);
  if (i < 0) {
    cli_error("unknown command '%s'; 'walrus help' lists them", cmd);
    return CLI_USAGE;
  }
  return commands[i].run(argc - 1, argv + 1);
}
