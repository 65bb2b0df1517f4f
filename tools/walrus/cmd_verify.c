/*
 * cmd_verify.c: walrus verify: every checksum of every file, through
 * walrus_verify(); a torn tail is told from damage before it, and each
 * finding names its file and byte offset.  A progress line on stderr
 * when stderr is a terminal.  Reads only; takes no lock.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus verify DIR [--json] [-q]\n"
    "  Read every record, index record and trailer of every segment and\n"
    "  check every checksum.  A torn tail (which the next open cuts) is\n"
    "  reported as torn, not as damage.  Exit 0 clean (a torn tail too),\n"
    "  1 damage found, 2 usage error, 3 cannot open or read.\n"
    "  --json   one JSON object with every finding\n"
    "  -q       print nothing; the exit status tells\n";

typedef struct verify_s {
  int json;        /* collect findings into found */
  int quiet;       /* print nothing */
  int progress;    /* stderr is a terminal: draw progress */
  double t0;       /* start, seconds */
  cJSON *found;    /* JSON: the findings array */
  const char *dir; /* for messages */
} verify_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *kind_name(walrus_finding_kind_t k) {
  return k == WALRUS_FINDING_TORN ? "torn" : "damage";
}

static int on_finding(void *ud, const walrus_finding_t *f) {
  verify_t *v = ud;
  if (v->json) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return 0;
    cJSON_AddStringToObject(o, "kind", kind_name(f->kind));
    cJSON_AddStringToObject(o, "file", f->file);
    cJSON_AddNumberToObject(o, "offset", (double)f->offset);
    cJSON_AddStringToObject(o, "message", f->message);
    cJSON_AddItemToArray(v->found, o);
  } else if (!v->quiet) {
    if (v->progress) fputs("\r\033[K", stderr);
    cli_printf("%s: %s at offset %llu: %s\n", kind_name(f->kind), f->file,
               (unsigned long long)f->offset, f->message);
    cli_flush();
  }
  return 0;
}

static void human(double bytes, char *buf, size_t n) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

static void on_progress(void *ud, uint64_t done, uint64_t total) {
  verify_t *v = ud;
  char d[32], t[32], r[32];
  double secs = now_s() - v->t0, rate = secs > 0 ? (double)done / secs : 0;
  double left = rate > 0 && total > done ? (double)(total - done) / rate : 0;
  human((double)done, d, sizeof d);
  human((double)total, t, sizeof t);
  human(rate, r, sizeof r);
  fprintf(stderr, "\r\033[Kverify: %3.0f%%  %s of %s  %s/s  %.0f s left",
          total ? 100.0 * (double)done / (double)total : 100.0, d, t, r, left);
  fflush(stderr);
}

static int report_json(const verify_t *v, const walrus_verify_result_t *r,
                       int code) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return CLI_FAIL;
  cJSON_AddStringToObject(o, "dir", v->dir);
  cJSON_AddBoolToObject(o, "clean", r->damage == 0);
  cJSON_AddBoolToObject(o, "torn_tail", r->torn != 0);
  cJSON_AddNumberToObject(o, "segments", (double)r->segments);
  cJSON_AddNumberToObject(o, "entries", (double)r->entries);
  cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
  cJSON_AddNumberToObject(o, "damage", (double)r->damage);
  cJSON_AddItemToObject(o, "findings", v->found);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_DetachItemFromObject(o, "findings");
  cJSON_Delete(o);
  if (s == NULL) return CLI_FAIL;
  cli_puts(s);
  cli_putc('\n');
  free(s);
  return code;
}

int cli_verify(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  verify_t v = {0};
  int c, code;
  while ((c = cli_getopt(argc, argv, ":jqh", opts)) != -1) {
    if (c == 'h') {
      fputs(usage_text, stdout);
      return CLI_OK;
    }
    if (c == 'j')
      v.json = 1;
    else if (c == 'q')
      v.quiet = 1;
    else
      return cli_usage(usage_text);
  }
  if (cli_one_dir(argc, argv, &v.dir) != CLI_OK) return cli_usage(usage_text);
  if ((code = cli_check_dir(v.dir)) != CLI_OK) return code;
  v.progress = !v.quiet && isatty(STDERR_FILENO);
  v.t0 = now_s();
  if (v.json && (v.found = cJSON_CreateArray()) == NULL) {
    cli_error("out of memory");
    return CLI_FAIL;
  }
  walrus_verify_result_t r;
  char msg[512];
  int rc =
      walrus_verify(v.dir, NULL, on_finding, v.progress ? on_progress : NULL,
                    &v, &r, msg, sizeof msg);
  if (v.progress) fputs("\r\033[K", stderr);
  if (rc != WALRUS_OK) {
    cJSON_Delete(v.found);
    cli_error("%s: %s", v.dir, msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  code = r.damage ? CLI_FAIL : CLI_OK;
  if (v.json) {
    code = report_json(&v, &r, code);
    cJSON_Delete(v.found);
  } else if (!v.quiet) {
    cli_printf("verify: %s: %llu segments, %llu entries, %llu bytes: %s%s\n",
               v.dir, (unsigned long long)r.segments,
               (unsigned long long)r.entries, (unsigned long long)r.bytes,
               r.damage ? "DAMAGED" : "clean",
               r.torn ? " (torn tail: the next open cuts it)" : "");
  }
  return cli_out_end(code);
}
