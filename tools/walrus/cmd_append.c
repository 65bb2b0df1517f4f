/*
 * cmd_append.c: walrus append: one entry per line of standard input (the
 * line without its newline), or with --json one JSON object per line;
 * each index is printed once the entry is durable.  Under --sync always
 * that is when its append returns; under interval when the sync thread
 * has covered it; under none at the end, after walrus_sync().  --batch
 * writes every line as one atomic batch.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: walrus append DIR [--term T] [--type T] [--batch] [--json]\n"
    "                     [--sync always|interval|none]\n"
    "  Append one entry per input line and print each index once it is\n"
    "  durable under the policy (default always).\n"
    "  --term T, --type T   the entries' term and type (default 0)\n"
    "  --batch              all lines as one atomic batch\n"
    "  --json               each line is an object: {\"data\": STRING,\n"
    "                       \"encoding\": \"utf8\"|\"base64\"|\"hex\", "
    "\"term\":\n"
    "                       N, \"type\": N, \"tx_id\": STRING}, as dump\n"
    "                       --json prints them\n"
    "  --sync P             always (fdatasync per append), interval, none\n";

/* The entries read so far; each owns its data (and tx id). */
typedef struct input_s {
  walrus_entry_t *e; /* entries */
  size_t n, cap;     /* count and capacity */
} input_t;

/* Free what the entry owns: its buffers were malloc()ed here, but the
 * entry's fields are const. */
static void free_owned(const void *p) {
  union {
    const void *c;
    void *m;
  } u = {p};
  free(u.m);
}

static void entry_free(const walrus_entry_t *e) {
  free_owned(e->data);
  free_owned(e->tx_id);
}

static void input_free(input_t *in) {
  for (size_t i = 0; i < in->n; i++) entry_free(&in->e[i]);
  free(in->e);
  in->n = in->cap = 0;
  in->e = NULL;
}

static int get_u64(const cJSON *o, const char *key, uint64_t max,
                   uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (v == NULL) return 1;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
      v->valuedouble > (double)max ||
      v->valuedouble != (double)(uint64_t)v->valuedouble)
    return 0;
  *out = (uint64_t)v->valuedouble;
  return 1;
}

/* Parse one --json line into e; 0 on success, else a message. */
static const char *parse_json(const char *line, walrus_entry_t *e) {
  cJSON *o = cJSON_Parse(line);
  const char *err = NULL;
  uint64_t term = e->term, type = e->type;
  if (o == NULL || !cJSON_IsObject(o)) {
    err = "not a JSON object";
    goto out;
  }
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
  const cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "encoding");
  const cJSON *tx = cJSON_GetObjectItemCaseSensitive(o, "tx_id");
  if (!get_u64(o, "term", UINT64_MAX, &term)) err = "\"term\" is not a count";
  if (!err && !get_u64(o, "type", UINT16_MAX, &type))
    err = "\"type\" is not 0..65535";
  if (!err && d != NULL && !cJSON_IsString(d)) err = "\"data\" is not a string";
  if (!err && enc != NULL && !cJSON_IsString(enc))
    err = "\"encoding\" is not a string";
  if (!err && tx != NULL && !cJSON_IsNull(tx) && !cJSON_IsString(tx))
    err = "\"tx_id\" is not a string";
  if (err) goto out;
  const char *s = d ? d->valuestring : "";
  const char *how = enc ? enc->valuestring : "utf8";
  unsigned char *buf = NULL;
  size_t len = 0;
  if (strcmp(how, "utf8") == 0) {
    len = strlen(s);
    buf = malloc(len + 1);
    if (buf) memcpy(buf, s, len + 1);
  } else if (strcmp(how, "base64") == 0) {
    buf = cli_unbase64(s, &len);
    if (buf == NULL) err = "\"data\" is not valid base64";
  } else if (strcmp(how, "hex") == 0) {
    buf = cli_unhex(s, &len);
    if (buf == NULL) err = "\"data\" is not valid hex";
  } else {
    err = "\"encoding\" must be utf8, base64 or hex";
  }
  if (err) goto out;
  if (buf == NULL) {
    err = "out of memory";
    goto out;
  }
  e->data = buf;
  e->len = len;
  e->term = term;
  e->type = (uint16_t)type;
  if (tx != NULL && cJSON_IsString(tx)) {
    char *t = strdup(tx->valuestring);
    if (t == NULL) {
      free(buf);
      e->data = NULL;
      err = "out of memory";
      goto out;
    }
    e->tx_id = t;
  }
out:
  cJSON_Delete(o);
  return err;
}

/* Print indexes printed+1 .. upto; returns the new printed. */
static uint64_t print_upto(uint64_t printed, uint64_t upto) {
  for (uint64_t i = printed + 1; i <= upto; i++)
    cli_printf("%llu\n", (unsigned long long)i);
  cli_flush();
  return upto > printed ? upto : printed;
}

int cli_append(int argc, char **argv) {
  static const struct option opts[] = {{"term", required_argument, NULL, 't'},
                                       {"type", required_argument, NULL, 'y'},
                                       {"batch", no_argument, NULL, 'b'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"sync", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  uint64_t term = 0, type = 0;
  walrus_sync_t sync = WALRUS_SYNC_ALWAYS;
  int batch = 0, json = 0, c, code;
  const char *dir;
  while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
    switch (c) {
      case 'h':
        fputs(usage_text, stdout);
        return CLI_OK;
      case 't':
        if (cli_parse_u64(optarg, "term", &term)) return CLI_USAGE;
        break;
      case 'y':
        if (cli_parse_type(optarg, &type)) return CLI_USAGE;
        break;
      case 'b':
        batch = 1;
        break;
      case 'j':
        json = 1;
        break;
      case 's':
        if (cli_parse_sync(optarg, &sync)) return CLI_USAGE;
        break;
      default:
        return cli_usage(usage_text);
    }
  }
  if (cli_one_dir(argc, argv, &dir) != CLI_OK) return cli_usage(usage_text);
  walrus_config_t cfg;
  walrus_t *w;
  char msg[512];
  walrus_config_default(&cfg);
  cfg.sync = sync;
  int rc = walrus_open_ex(dir, &cfg, &w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: cannot open the log for writing: %s", dir,
              msg[0] ? msg : walrus_strerror(rc));
    return cli_exit_for(rc);
  }
  input_t in = {0};
  char *line = NULL;
  size_t linecap = 0, lineno = 0;
  ssize_t got;
  uint64_t first_idx = 0, last_idx = 0, printed = 0;
  code = CLI_OK;
  while ((got = getline(&line, &linecap, stdin)) >= 0) {
    size_t len = (size_t)got;
    lineno++;
    if (len > 0 && line[len - 1] == '\n') len--;
    walrus_entry_t e = {.term = term, .type = (uint16_t)type};
    if (json) {
      line[len] = '\0';
      const char *err = parse_json(line, &e);
      if (err != NULL) {
        cli_error("standard input, line %zu: %s", lineno, err);
        code = CLI_USAGE;
        break;
      }
    } else {
      unsigned char *buf = malloc(len ? len : 1);
      if (buf == NULL) {
        cli_error("out of memory");
        code = CLI_FAIL;
        break;
      }
      memcpy(buf, line, len);
      e.data = buf;
      e.len = len;
    }
    if (batch) {
      if (in.n == in.cap) {
        size_t cap = in.cap ? in.cap * 2 : 64;
        walrus_entry_t *p = realloc(in.e, cap * sizeof *p);
        if (p == NULL) {
          entry_free(&e);
          cli_error("out of memory");
          code = CLI_FAIL;
          break;
        }
        in.e = p;
        in.cap = cap;
      }
      in.e[in.n++] = e;
      continue;
    }
    uint64_t idx;
    rc = walrus_append(w, &e, &idx);
    entry_free(&e);
    if (rc != WALRUS_OK) {
      cli_error("%s: append of line %zu failed: %s", dir, lineno,
                walrus_errmsg(w));
      code = CLI_FAIL;
      break;
    }
    if (first_idx == 0) printed = (first_idx = idx) - 1;
    last_idx = idx;
    uint64_t d = walrus_durable_index(w);
    if (d > last_idx) d = last_idx;
    printed = print_upto(printed, d);
  }
  free(line);
  if (code == CLI_OK && ferror(stdin)) {
    cli_error("reading standard input failed");
    code = CLI_FAIL;
  }
  if (code == CLI_OK && batch && in.n > 0) {
    rc = walrus_write_batch(w, in.e, in.n, &first_idx);
    if (rc != WALRUS_OK) {
      cli_error("%s: batch of %zu entries failed: %s", dir, in.n,
                walrus_errmsg(w));
      code = CLI_FAIL;
    } else {
      printed = first_idx - 1;
      last_idx = first_idx + in.n - 1;
    }
  }
  input_free(&in);
  /* Whatever was appended is made durable before its index is printed;
   * after a failure the indexes already acknowledged stay printed. */
  if (last_idx != 0) {
    rc = walrus_sync(w);
    if (rc != WALRUS_OK) {
      cli_error("%s: sync failed: %s", dir, walrus_errmsg(w));
      code = CLI_FAIL;
    } else {
      printed = print_upto(printed, last_idx);
    }
  }
  rc = walrus_close(w);
  if (rc != WALRUS_OK && code == CLI_OK) {
    cli_error("%s: close failed: %s", dir, walrus_strerror(rc));
    code = CLI_FAIL;
  }
  return cli_out_end(code);
}
