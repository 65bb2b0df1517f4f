/*
 * cmd_repair.c: walrus repair: salvage recovery (WALRUS_RECOVER_SALVAGE)
 * as an explicit step.  It first says what salvage would cut, move and
 * remove (walrus_repair_plan()); with --dry-run that is all.  Otherwise a
 * writable open in salvage mode does it, and the library's own messages
 * say what was done.  Nothing is lost: a cut's bytes go to a side file,
 * later segments to salvage/.  A healthy log is not opened at all, so not
 * a byte of it changes.  While a writer holds the lock, it refuses.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus repair DIR [--dry-run]\n"
    "  Salvage a damaged log: keep its longest valid prefix, copy every byte\n"
    "  cut from a segment to a side file (<segment>.salvage) and move later\n"
    "  segments into salvage/.  Nothing is deleted but files the format\n"
    "  counts as void.  Says what it does; on a healthy log it changes\n"
    "  nothing.  Refuses (exit 3) while a writer holds the lock.\n"
    "  --dry-run   say what would be done, and do nothing\n";

static void print_step(const walrus_repair_step_t *s, int dry) {
  switch (s->kind) {
    case WALRUS_REPAIR_CUT:
      cli_printf("%s %s at offset %llu: %llu bytes (%llu entries) into %s\n",
                 dry ? "would cut" : "cut", s->file,
                 (unsigned long long)s->offset, (unsigned long long)s->bytes,
                 (unsigned long long)s->entries, s->dest);
      break;
    case WALRUS_REPAIR_MOVE:
      cli_printf("%s %s (%llu bytes, %llu entries) to %s\n",
                 dry ? "would move" : "move", s->file,
                 (unsigned long long)s->bytes, (unsigned long long)s->entries,
                 s->dest);
      break;
    case WALRUS_REPAIR_REMOVE:
      cli_printf("%s %s (void: every writable open removes it)\n",
                 dry ? "would remove" : "remove", s->file);
      break;
  }
}

/* The library's account of what salvage did. */
static void on_log(void *ud, walrus_log_level_t level, const char *msg) {
  (void)ud;
  if (level <= WALRUS_LOG_WARN || strncmp(msg, "removed", 7) == 0)
    cli_printf("repair: %s\n", msg);
}

int cli_repair(int argc, char **argv) {
  static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  int dry = 0, c, code;
  const char *dir;
  while ((c = cli_getopt(argc, argv, ":nh", opts)) != -1) {
    if (c == 'h') {
      fputs(usage_text, stdout);
      return CLI_OK;
    }
    if (c == 'n')
      dry = 1;
    else
      return cli_usage(usage_text);
  }
  if (cli_one_dir(argc, argv, &dir) != CLI_OK) return cli_usage(usage_text);
  if ((code = cli_check_dir(dir)) != CLI_OK) return code;
  if (!dry && cli_lock_held(dir) > 0) {
    cli_error("%s: a writer holds the lock (LOCK); stop it before repairing",
              dir);
    return CLI_NOREAD;
  }
  walrus_repair_plan_t plan;
  char msg[512];
  int rc = walrus_repair_plan(dir, NULL, &plan, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: cannot plan a repair: %s", dir,
              msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  if (plan.nsteps == 0) {
    cli_printf("repair: %s is healthy: nothing to do, nothing changed\n", dir);
    walrus_repair_plan_free(&plan);
    return cli_out_end(CLI_OK);
  }
  if (dry) {
    for (size_t i = 0; i < plan.nsteps; i++) print_step(&plan.steps[i], 1);
    cli_printf("dry run: the log would lose %llu entries and end at index "
               "%llu; nothing changed\n",
               (unsigned long long)plan.entries_removed,
               (unsigned long long)plan.last_index);
    walrus_repair_plan_free(&plan);
    return cli_out_end(CLI_OK);
  }
  walrus_repair_plan_free(&plan);
  cli_flush();
  walrus_config_t cfg;
  walrus_t *w;
  walrus_config_default(&cfg);
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  cfg.create_if_missing = 0;
  cfg.logger = on_log;
  cfg.log_level = WALRUS_LOG_INFO;
  rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: repair failed: %s", dir, msg[0] ? msg : walrus_strerror(rc));
    return cli_out_end(rc == WALRUS_ELOCKED ? CLI_NOREAD : CLI_FAIL);
  }
  uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
  rc = walrus_close(w);
  if (rc != WALRUS_OK) {
    cli_error("%s: closing after the repair: %s", dir, walrus_strerror(rc));
    return cli_out_end(CLI_FAIL);
  }
  if (last == 0)
    cli_printf("repair: done; the log is empty\n");
  else
    cli_printf("repair: done; the log holds %llu..%llu\n",
               (unsigned long long)first, (unsigned long long)last);
  return cli_out_end(CLI_OK);
}
