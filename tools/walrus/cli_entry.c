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

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (30 bytes) for ns since the epoch, UTC.
 * The date part is formatted once per second of timestamps, the
 * nanoseconds three digits at a time from a table. */
static void fmt_time(int64_t ns, char out[32]) {
  static int64_t cached_sec = INT64_MIN;
  static char cached[20];
  static char digits3[1000][3];
  static int have_digits;
  int64_t sec = ns / 1000000000, frac = ns % 1000000000;
  if (!have_digits) {
    for (int i = 0; i < 1000; i++) {
      digits3[i][0] = (char)('0' + i / 100);
      digits3[i][1] = (char)('0' + i / 10 % 10);
      digits3[i][2] = (char)('0' + i % 10);
    }
    have_digits = 1;
  }
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
  uint32_t f = (uint32_t)frac;
  memcpy(out, cached, 19);
  out[19] = '.';
  memcpy(out + 20, digits3[f / 1000000], 3);
  memcpy(out + 23, digits3[f / 1000 % 1000], 3);
  memcpy(out + 26, digits3[f % 1000], 3);
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

/* Append s (n bytes) at *q. */
static char *add(char *q, const char *s, size_t n) {
  memcpy(q, s, n);
  return q + n;
}

static char *add_u64(char *q, uint64_t v) {
  char buf[24];
  char *p = fmt_u64(buf + sizeof buf, v);
  return add(q, p, (size_t)(buf + sizeof buf - p));
}

static void print_text(const walrus_entry_t *e, cli_data_t data) {
  /* Everything before the data in one buffer and one copy out: at most
   * 20 + 6 + 20 + 6 + 5 + 6 + 30 + 4 + 1 + 5 + 20 bytes. */
  char line[160], *q = line;
  q = add_u64(q, e->index);
  q = add(q, " term=", 6);
  q = add_u64(q, e->term);
  q = add(q, " type=", 6);
  q = add_u64(q, e->type);
  q = add(q, " time=", 6);
  fmt_time(e->timestamp_ns, q);
  q = add(q + 30, " tx=", 4);
  if (e->tx_id != NULL) {
    cli_put(line, (size_t)(q - line));
    put_text((const unsigned char *)e->tx_id, strlen(e->tx_id));
    q = line;
  } else {
    *q++ = '-';
  }
  q = add(q, " len=", 5);
  q = add_u64(q, e->len);
  if (data == CLI_DATA_NONE) *q++ = '\n';
  cli_put(line, (size_t)(q - line));
  const unsigned char *p = e->data;
  switch (data) {
    case CLI_DATA_NONE:
      return;
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
