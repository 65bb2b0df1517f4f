/*
 * cmd_dump.c: walrus dump: the entries of a range, one per line, from a
 * read-only open that works beside a live writer without its lock.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus dump DIR [--from I] [--to J] [-n COUNT] [--tx ID]\n"
    "                   [--type T] [--json] [--data text|hex|base64|none]\n"
    "  One entry per line: index, term, type, time (RFC 3339, UTC), tx id,\n"
    "  length, data.  --json prints JSON lines; data is a string when it is\n"
    "  UTF-8 (\"encoding\":\"utf8\") and base64 otherwise.  Reads beside a\n"
    "  live writer, without its lock.\n"
    "  --from I   first index (default: the log's first)\n"
    "  --to J     last index (default and at most: the log's last)\n"
    "  -n COUNT   print at most COUNT entries\n"
    "  --tx ID    only entries of transaction ID\n"
    "  --type T   only entries of type T\n"
    "  --data F   text (escaped; default), hex, base64 or none\n";

int cli_dump(int argc, char **argv) {
  static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
                                       {"to", required_argument, NULL, 't'},
                                       {"count", required_argument, NULL, 'n'},
                                       {"tx", required_argument, NULL, 'x'},
                                       {"type", required_argument, NULL, 'y'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"data", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  uint64_t from = 0, to = UINT64_MAX, count = UINT64_MAX, type = 0;
  int have_from = 0, have_to = 0, have_type = 0, json = 0, c, code;
  const char *tx = NULL, *dir;
  cli_data_t data = CLI_DATA_AUTO;
  while ((c = cli_getopt(argc, argv, ":n:jh", opts)) != -1) {
    switch (c) {
      case 'h':
        fputs(usage_text, stdout);
        return CLI_OK;
      case 'f':
        if (cli_parse_u64(optarg, "--from index", &from)) return CLI_USAGE;
        have_from = 1;
        break;
      case 't':
        if (cli_parse_u64(optarg, "--to index", &to)) return CLI_USAGE;
        have_to = 1;
        break;
      case 'n':
        if (cli_parse_u64(optarg, "count", &count)) return CLI_USAGE;
        break;
      case 'x':
        tx = optarg;
        break;
      case 'y':
        if (cli_parse_type(optarg, &type)) return CLI_USAGE;
        have_type = 1;
        break;
      case 'j':
        json = 1;
        break;
      case 'd':
        if (cli_parse_data(optarg, &data)) return CLI_USAGE;
        break;
      default:
        return cli_usage(usage_text);
    }
  }
  if (cli_one_dir(argc, argv, &dir) != CLI_OK) return cli_usage(usage_text);
  if (have_from && have_to && from > to) {
    cli_error("dump: --from %llu is above --to %llu", (unsigned long long)from,
              (unsigned long long)to);
    return CLI_USAGE;
  }
  walrus_t *w;
  if ((code = cli_open_read(dir, &w)) != CLI_OK) return code;
  uint64_t first = walrus_first_index(w), last = walrus_last_index(w);
  if (last == 0 && !have_from) {
    walrus_close(w);
    return cli_out_end(CLI_OK); /* an empty log: nothing to print */
  }
  if (!have_from) from = first;
  if (last == 0 || from < first || from > last) {
    if (last == 0)
      cli_error("%s: index %llu is out of range: the log is empty", dir,
                (unsigned long long)from);
    else
      cli_error("%s: index %llu is out of range: the log holds %llu..%llu", dir,
                (unsigned long long)from, (unsigned long long)first,
                (unsigned long long)last);
    walrus_close(w);
    return CLI_FAIL;
  }
  if (to > last) to = last; /* entries appended later are not waited for */
  walrus_iter_t *it;
  int rc = walrus_iter_open(w, from, &it);
  code = CLI_OK;
  if (rc == WALRUS_OK) {
    walrus_entry_t e;
    uint64_t printed = 0;
    while (printed < count && !cli_out_failed() &&
           (rc = walrus_iter_next(it, &e)) == WALRUS_OK && e.index <= to) {
      if (have_type && e.type != type) continue;
      if (tx != NULL && (e.tx_id == NULL || strcmp(e.tx_id, tx) != 0)) continue;
      cli_print_entry(&e, json, data);
      printed++;
    }
    if (rc == WALRUS_DONE) rc = WALRUS_OK;
    walrus_iter_close(it);
  }
  if (rc != WALRUS_OK) {
    cli_error("%s: %s", dir, walrus_errmsg(w));
    code = CLI_FAIL;
  }
  walrus_close(w);
  return cli_out_end(code);
}
