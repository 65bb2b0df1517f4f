/*
 * cli_json.c: how payloads travel through JSON and text: UTF-8
 * validation, base64 and hex in both directions.  (The JSON itself is
 * cJSON's, in cli_entry.c and each subcommand.)
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF.  NUL bytes are valid UTF-8 and JSON escapes them. */
int cli_utf8_valid(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    if (n - i < len) return 0;
    if (p[i + 1] < lo || p[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return 0;
    i += len;
  }
  return 1;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli_base64(const unsigned char *p, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    *o++ = b64[(v >> 18) & 63];
    *o++ = b64[(v >> 12) & 63];
    *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    *o++ = i + 2 < n ? b64[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

static int b64_value(char c) {
  const char *q = c ? strchr(b64, c) : NULL;
  return q ? (int)(q - b64) : -1;
}

unsigned char *cli_unbase64(const char *s, size_t *n) {
  size_t len = strlen(s);
  if (len % 4 != 0) return NULL;
  unsigned char *out = malloc(len / 4 * 3 + 1);
  size_t o = 0;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i += 4) {
    int v[4], pad = 0;
    for (size_t k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == len && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad > 0 || (v[k] = b64_value(s[i + k])) < 0) {
        free(out);
        return NULL;
      }
    }
    uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[o++] = (unsigned char)(x >> 16);
    if (pad < 2) out[o++] = (unsigned char)(x >> 8);
    if (pad < 1) out[o++] = (unsigned char)x;
  }
  *n = o;
  return out;
}

static const char hexdig[] = "0123456789abcdef";

char *cli_hex(const unsigned char *p, size_t n) {
  char *out = malloc(2 * n + 1);
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hexdig[p[i] >> 4];
    out[2 * i + 1] = hexdig[p[i] & 15];
  }
  out[2 * n] = '\0';
  return out;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

unsigned char *cli_unhex(const char *s, size_t *n) {
  size_t len = strlen(s);
  if (len % 2 != 0) return NULL;
  unsigned char *out = malloc(len / 2 + 1);
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i += 2) {
    int a = hex_value(s[i]), b = hex_value(s[i + 1]);
    if (a < 0 || b < 0) {
      free(out);
      return NULL;
    }
    out[i / 2] = (unsigned char)(a << 4 | b);
  }
  *n = len / 2;
  return out;
}
