/*
 * cmd_stat.c: walrus stat: what a log holds and in what state, from
 * walrus_inspect(): its id and range, how far the writer says it is
 * durable, whether a writer holds the lock, each segment, and what an open
 * would do with the tail.  Reads only; takes no lock.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus stat DIR [--json]\n"
    "  The log's id, format, first, last and durable index, each segment's\n"
    "  range, size and state, whether a writer holds the lock, and whether\n"
    "  the tail is torn (what an open would cut).  Reads only.\n"
    "  --json   one JSON object\n";

static const char *state_name(walrus_segment_state_t s) {
  switch (s) {
    case WALRUS_SEGMENT_SEALED:
      return "sealed";
    case WALRUS_SEGMENT_TAIL:
      return "tail";
    case WALRUS_SEGMENT_VOID:
      return "void";
    case WALRUS_SEGMENT_DAMAGED:
      return "damaged";
  }
  return "?";
}

static const char *tail_name(walrus_tail_state_t s) {
  switch (s) {
    case WALRUS_TAIL_CLEAN:
      return "clean";
    case WALRUS_TAIL_TORN:
      return "torn";
    case WALRUS_TAIL_DAMAGED:
      return "damaged";
  }
  return "?";
}

static const char *lock_name(int held) {
  return held > 0 ? "yes" : held == 0 ? "no" : "unknown";
}

/* The last entry of a segment, or "-" when it holds none. */
static void seg_last(const walrus_segment_info_t *s, char *buf, size_t n) {
  if (s->count == 0)
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%llu",
             (unsigned long long)(s->first_index + s->count - 1));
}

static void print_text(const char *dir, const walrus_inspect_t *r, int held) {
  cli_printf("log          %s\n", dir);
  cli_printf("log id       %016llx\n", (unsigned long long)r->log_id);
  cli_printf("format       %u\n", r->format_version);
  if (r->last_index == 0)
    cli_printf("entries      none (next index %llu)\n",
               (unsigned long long)r->next_index);
  else
    cli_printf("entries      %llu..%llu (%llu)\n",
               (unsigned long long)r->first_index,
               (unsigned long long)r->last_index,
               (unsigned long long)(r->last_index - r->first_index + 1));
  if (r->durable_next == 0)
    cli_printf("durable      no writer has published\n");
  else
    cli_printf("durable      %llu (the writer's DURABLE)\n",
               (unsigned long long)(r->durable_next - 1));
  cli_printf("writer       %s\n", held > 0    ? "yes (LOCK is held)"
                                  : held == 0 ? "no"
                                              : "unknown (no /proc/locks)");
  if (r->truncating)
    cli_printf("truncating   back to %llu (unfinished; an open finishes it)\n",
               (unsigned long long)r->trunc_last);
  switch (r->tail_state) {
    case WALRUS_TAIL_CLEAN:
      cli_printf("tail         clean\n");
      break;
    case WALRUS_TAIL_TORN:
      cli_printf("tail         torn: an open cuts %llu bytes at offset %llu\n",
                 (unsigned long long)r->tail_cut_bytes,
                 (unsigned long long)r->tail_cut_offset);
      break;
    case WALRUS_TAIL_DAMAGED:
      cli_printf("tail         damaged\n");
      break;
  }
  if (r->damaged) cli_printf("damage       %s\n", r->problem);
  cli_printf("segments     %zu, %llu bytes\n", r->nsegments,
             (unsigned long long)r->total_bytes);
  if (r->nsegments > 0)
    cli_printf("  %-26s %12s %12s %10s %12s  %s\n", "file", "first", "last",
               "entries", "bytes", "state");
  for (size_t i = 0; i < r->nsegments; i++) {
    const walrus_segment_info_t *s = &r->segments[i];
    char last[24];
    seg_last(s, last, sizeof last);
    /* Version 1 is the usual; another is said beside the state. */
    char ver[16] = "";
    if (s->version > 1) snprintf(ver, sizeof ver, " (v%u)", s->version);
    cli_printf("  %-26s %12llu %12s %10llu %12llu  %s%s\n", s->name,
               (unsigned long long)s->first_index, last,
               (unsigned long long)s->count, (unsigned long long)s->bytes,
               state_name(s->state), ver);
  }
}

static int print_json(const char *dir, const walrus_inspect_t *r, int held) {
  char id[24];
  snprintf(id, sizeof id, "%016llx", (unsigned long long)r->log_id);
  cJSON *o = cJSON_CreateObject(), *segs = cJSON_CreateArray();
  if (o == NULL || segs == NULL) goto oom;
  cJSON_AddItemToObject(o, "segments", segs);
  cJSON_AddStringToObject(o, "dir", dir);
  cJSON_AddStringToObject(o, "log_id", id);
  cJSON_AddNumberToObject(o, "format", r->format_version);
  cli_json_u64(o, "first_index", (uint64_t)r->first_index);
  cli_json_u64(o, "last_index", (uint64_t)r->last_index);
  cli_json_u64(o, "next_index", (uint64_t)r->next_index);
  if (r->durable_next == 0)
    cJSON_AddNullToObject(o, "durable_index");
  else
    cli_json_u64(o, "durable_index", (uint64_t)(r->durable_next - 1));
  cJSON_AddStringToObject(o, "locked", lock_name(held));
  cJSON_AddBoolToObject(o, "truncating", r->truncating);
  if (r->truncating) cli_json_u64(o, "trunc_last", (uint64_t)r->trunc_last);
  cJSON_AddStringToObject(o, "tail", tail_name(r->tail_state));
  cli_json_u64(o, "tail_cut_offset", (uint64_t)r->tail_cut_offset);
  cli_json_u64(o, "tail_cut_bytes", (uint64_t)r->tail_cut_bytes);
  cJSON_AddBoolToObject(o, "damaged", r->damaged);
  cJSON_AddStringToObject(o, "problem", r->problem);
  cli_json_u64(o, "total_bytes", (uint64_t)r->total_bytes);
  for (size_t i = 0; i < r->nsegments; i++) {
    const walrus_segment_info_t *s = &r->segments[i];
    cJSON *g = cJSON_CreateObject();
    if (g == NULL) goto oom;
    cJSON_AddItemToArray(segs, g);
    cJSON_AddStringToObject(g, "file", s->name);
    cli_json_u64(g, "first_index", (uint64_t)s->first_index);
    if (s->count == 0)
      cJSON_AddNullToObject(g, "last_index");
    else
      cli_json_u64(g, "last_index", (uint64_t)(s->first_index + s->count - 1));
    cli_json_u64(g, "entries", (uint64_t)s->count);
    cli_json_u64(g, "bytes", (uint64_t)s->bytes);
    cJSON_AddStringToObject(g, "state", state_name(s->state));
    cJSON_AddNumberToObject(g, "version", s->version);
  }
  char *text = cJSON_PrintUnformatted(o);
  if (text == NULL) goto oom;
  cli_puts(text);
  cli_putc('\n');
  free(text);
  cJSON_Delete(o);
  return CLI_OK;
oom:
  cJSON_Delete(o);
  cli_error("out of memory");
  return CLI_FAIL;
}

int cli_stat(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
  int json = 0, c, code;
  const char *dir;
  while ((c = cli_getopt(argc, argv, ":jh", opts)) != -1) {
    if (c == 'h') {
      fputs(usage_text, stdout);
      return CLI_OK;
    }
    if (c == 'j')
      json = 1;
    else
      return cli_usage(usage_text);
  }
  if ((code = cli_one_dir(argc, argv, &dir)) != CLI_OK)
    return cli_usage(usage_text);
  if ((code = cli_check_dir(dir)) != CLI_OK) return code;
  walrus_inspect_t r;
  char msg[512];
  int rc = walrus_inspect(dir, NULL, &r, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: %s", dir, msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  int held = cli_lock_held(dir);
  if (json)
    code = print_json(dir, &r, held);
  else
    print_text(dir, &r, held);
  walrus_inspect_free(&r);
  return cli_out_end(code);
}
