/*
 * cli_entry.c: one entry as a line of output, for dump and tail.
 *
 * Text:  INDEX term=T type=Y time=RFC3339 tx=ID|- len=N DATA
 * JSON:  {"index":..,"term":..,"type":..,"time":"RFC3339","tx_id":..|null,
 *         "len":..,"encoding":"utf8"|"base64"|"hex","data":".."}
 *
 * Text is formatted by hand, without stdio, because dump of a long log
 * is bound by it: a number costs a few divisions, and the date part of a
 * timestamp is formatted once per second of timestamps.  JSON goes through
 * cJSON.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Decimal digits of v at the end of buf[0..24); returns the start. */
static char *fmt_u64(char *end, uint64_t v) {
  char *p = end;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}

static void put_u64(uint64_t v) {
  char buf[24];
  char *p = fmt_u64(buf + sizeof buf, v);
  cli_put(p, (size_t)(buf + sizeof buf - p));
}

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (30 bytes) for ns since the epoch, UTC. */
static void fmt_time(int64_t ns, char out[32]) {
  static int64_t cached_sec = INT64_MIN;
  static char cached[20];
  int64_t sec = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    sec--;
  }
  if (sec != cached_sec) {
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
      memcpy(cached, "0000-00-00T00:00:00", 20);
    cached_sec = sec;
  }
  memcpy(out, cached, 19);
  out[19] = '.';
  for (int i = 28; i >= 20; i--) {
    out[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
  out[29] = 'Z';
  out[30] = '\0';
}

/* Text form: printable ASCII as is, and bytes from 0x80 too when the
 * whole payload is valid UTF-8; every other byte, and the backslash, as
 * \xNN or \\, so that an entry stays on one line. */
static void put_text(const unsigned char *p, size_t n) {
  static const char hexdig[] = "0123456789abcdef";
  int utf8 = cli_utf8_valid(p, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (c == '\\') {
      cli_put("\\\\", 2);
    } else if ((c >= 0x20 && c < 0x7f) || (c >= 0x80 && utf8)) {
      cli_putc((char)c);
    } else {
      char esc[4] = {'\\', 'x', hexdig[c >> 4], hexdig[c & 15]};
      cli_put(esc, 4);
    }
  }
}

static void put_encoded(char *s) {
  if (s == NULL) {
    cli_puts("<out of memory>");
    return;
  }
  cli_puts(s);
  free(s);
}

static void print_text(const walrus_entry_t *e, cli_data_t data) {
  char ts[32];
  fmt_time(e->timestamp_ns, ts);
  put_u64(e->index);
  cli_put(" term=", 6);
  put_u64(e->term);
  cli_put(" type=", 6);
  put_u64(e->type);
  cli_put(" time=", 6);
  cli_put(ts, 30);
  cli_put(" tx=", 4);
  if (e->tx_id != NULL)
    put_text((const unsigned char *)e->tx_id, strlen(e->tx_id));
  else
    cli_putc('-');
  cli_put(" len=", 5);
  put_u64(e->len);
  const unsigned char *p = e->data;
  switch (data) {
    case CLI_DATA_NONE:
      break;
    case CLI_DATA_HEX:
      cli_putc(' ');
      put_encoded(cli_hex(p, e->len));
      break;
    case CLI_DATA_BASE64:
      cli_putc(' ');
      put_encoded(cli_base64(p, e->len));
      break;
    case CLI_DATA_AUTO:
    case CLI_DATA_TEXT:
      cli_putc(' ');
      put_text(p, e->len);
      break;
  }
  cli_putc('\n');
}

/* The payload's JSON form: a string when it is UTF-8 without NUL (cJSON
 * strings end at a NUL), else base64; or the form asked for. */
static int add_data(cJSON *o, const walrus_entry_t *e, cli_data_t data) {
  const unsigned char *p = e->data;
  const char *enc;
  char *s = NULL;
  if (data == CLI_DATA_NONE) return 1;
  if ((data == CLI_DATA_AUTO || data == CLI_DATA_TEXT) &&
      memchr(p, 0, e->len) == NULL && cli_utf8_valid(p, e->len)) {
    s = malloc(e->len + 1);
    if (s == NULL) return 0;
    memcpy(s, p, e->len);
    s[e->len] = '\0';
    enc = "utf8";
  } else if (data == CLI_DATA_HEX) {
    s = cli_hex(p, e->len);
    enc = "hex";
  } else {
    s = cli_base64(p, e->len);
    enc = "base64";
  }
  int ok = s != NULL && cJSON_AddStringToObject(o, "encoding", enc) != NULL &&
           cJSON_AddStringToObject(o, "data", s) != NULL;
  free(s);
  return ok;
}

static void print_json(const walrus_entry_t *e, cli_data_t data) {
  char ts[32];
  cJSON *o = cJSON_CreateObject();
  fmt_time(e->timestamp_ns, ts);
  int ok = o != NULL &&
           cJSON_AddNumberToObject(o, "index", (double)e->index) != NULL &&
           cJSON_AddNumberToObject(o, "term", (double)e->term) != NULL &&
           cJSON_AddNumberToObject(o, "type", e->type) != NULL &&
           cJSON_AddStringToObject(o, "time", ts) != NULL &&
           (e->tx_id != NULL ? cJSON_AddStringToObject(o, "tx_id", e->tx_id)
                             : cJSON_AddNullToObject(o, "tx_id")) != NULL &&
           cJSON_AddNumberToObject(o, "len", (double)e->len) != NULL &&
           add_data(o, e, data);
  char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
  if (s != NULL) {
    cli_puts(s);
    cli_putc('\n');
    free(s);
  } else {
    cli_error("out of memory formatting entry %llu",
              (unsigned long long)e->index);
  }
  cJSON_Delete(o);
}

void cli_print_entry(const walrus_entry_t *e, int json, cli_data_t data) {
  if (json)
    print_json(e, data);
  else
    print_text(e, data);
}
