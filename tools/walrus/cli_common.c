/*
 * cli_common.c: the helpers every subcommand shares: messages, parsing of
 * numbers, sizes and sync policies, exit codes for library errors,
 * opening a log to read it, whether a writer holds its lock, and the
 * buffered standard output that notices a closed stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cli.h"

const char *cli_progname = "walrus";

void cli_error(const char *fmt, ...) {
  va_list ap;
  cli_flush();
  fprintf(stderr, "%s: ", cli_progname);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cli_parse_u64(const char *s, const char *what, uint64_t *out) {
  uint64_t v = 0;
  if (s == NULL || *s == '\0') goto bad;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') goto bad;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) goto bad;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
bad:
  cli_error("invalid %s '%s'", what, s ? s : "");
  return CLI_USAGE;
}

int cli_parse_size(const char *s, const char *what, uint64_t *out) {
  char num[32];
  uint64_t v, mul = 1;
  size_t n = s ? strlen(s) : 0;
  if (n > 0 && n < sizeof num) {
    switch (s[n - 1]) {
      case 'k':
      case 'K':
        mul = 1024;
        break;
      case 'm':
      case 'M':
        mul = 1024 * 1024;
        break;
      case 'g':
      case 'G':
        mul = 1024 * 1024 * 1024;
        break;
      default:
        break;
    }
  }
  if (n == 0 || n >= sizeof num || (mul > 1 && n == 1)) {
    cli_error("invalid %s '%s'", what, s ? s : "");
    return CLI_USAGE;
  }
  memcpy(num, s, n + 1);
  if (mul > 1) num[n - 1] = '\0';
  for (const char *p = num; *p; p++)
    if (*p < '0' || *p > '9') {
      cli_error("invalid %s '%s'", what, s);
      return CLI_USAGE;
    }
  if (cli_parse_u64(num, what, &v) != 0) return CLI_USAGE;
  if (v > UINT64_MAX / mul) {
    cli_error("invalid %s '%s'", what, s);
    return CLI_USAGE;
  }
  *out = v * mul;
  return 0;
}

int cli_parse_type(const char *s, uint64_t *out) {
  uint64_t v;
  if (cli_parse_u64(s, "type", &v) != 0) return CLI_USAGE;
  if (v > UINT16_MAX) {
    cli_error("invalid type '%s' (0..65535)", s);
    return CLI_USAGE;
  }
  *out = v;
  return 0;
}

int cli_parse_sync(const char *s, walrus_sync_t *out) {
  if (s != NULL && strcmp(s, "always") == 0)
    *out = WALRUS_SYNC_ALWAYS;
  else if (s != NULL && strcmp(s, "interval") == 0)
    *out = WALRUS_SYNC_INTERVAL;
  else if (s != NULL && strcmp(s, "none") == 0)
    *out = WALRUS_SYNC_NONE;
  else {
    cli_error("invalid sync policy '%s' (always, interval or none)",
              s ? s : "");
    return CLI_USAGE;
  }
  return 0;
}

int cli_parse_data(const char *s, cli_data_t *out) {
  static const struct {
    const char *name;
    cli_data_t v;
  } forms[] = {{"text", CLI_DATA_TEXT},
               {"hex", CLI_DATA_HEX},
               {"base64", CLI_DATA_BASE64},
               {"none", CLI_DATA_NONE}};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
    if (strcmp(s, forms[i].name) == 0) {
      *out = forms[i].v;
      return 0;
    }
  cli_error("invalid --data '%s' (text, hex, base64 or none)", s);
  return CLI_USAGE;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts) {
  opterr = 0;
  int c = getopt_long(argc, argv, shortopts, longopts, NULL);
  if (c == '?' || c == ':') {
    const char *arg = argv[optind - 1];
    if (c == ':')
      cli_error("%s: option '%s' needs a value", argv[0], arg);
    else if (optopt != 0 && arg[0] == '-' && arg[1] != '-')
      cli_error("%s: unknown option '-%c'", argv[0], optopt);
    else
      cli_error("%s: unknown option '%s'", argv[0], arg);
    return '?';
  }
  return c;
}

int cli_one_dir(int argc, char **argv, const char **dir) {
  if (optind >= argc) {
    cli_error("%s: missing DIR (the log directory)", argv[0]);
    return CLI_USAGE;
  }
  if (optind + 1 < argc) {
    cli_error("%s: unexpected argument '%s'", argv[0], argv[optind + 1]);
    return CLI_USAGE;
  }
  *dir = argv[optind];
  return CLI_OK;
}

int cli_usage(const char *usage) {
  fprintf(stderr, "%s", usage);
  return CLI_USAGE;
}

int cli_exit_for(int rc) {
  switch (rc) {
    case WALRUS_EIO:
    case WALRUS_EIO_READ:
    case WALRUS_ELOCKED:
    case WALRUS_EUNSAFE:
    case WALRUS_EFORMAT:
    case WALRUS_EINVAL:
      return CLI_NOREAD;
    default:
      return CLI_FAIL;
  }
}

int cli_check_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    cli_error("%s: %s", dir, strerror(errno));
    return CLI_NOREAD;
  }
  if (!S_ISDIR(st.st_mode)) {
    cli_error("%s: not a directory (a walrus log is a directory)", dir);
    return CLI_NOREAD;
  }
  return CLI_OK;
}

int cli_open_read(const char *dir, walrus_t **w) {
  walrus_config_t cfg;
  char msg[512];
  int code = cli_check_dir(dir);
  if (code != CLI_OK) return code;
  walrus_config_default(&cfg);
  cfg.read_only = 1;
  cfg.zero_copy = 1;
  int rc = walrus_open_ex(dir, &cfg, w, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    cli_error("%s: cannot open the log: %s", dir,
              msg[0] ? msg : walrus_strerror(rc));
    return rc == WALRUS_ECORRUPT || rc == WALRUS_ECHECKSUM ? CLI_FAIL
                                                           : CLI_NOREAD;
  }
  return CLI_OK;
}

/* /proc/locks lists every flock() lock as "N: FLOCK ADVISORY WRITE pid
 * MAJ:MIN:INODE start end", the device in hex; a blocked waiter's line has
 * "->" after the number.  A lock on LOCK's device and inode is a writer. */
int cli_lock_held(const char *dir) {
  char path[4096], line[256];
  struct stat st;
  snprintf(path, sizeof path, "%s/LOCK", dir);
  if (lstat(path, &st) != 0) return 0; /* never opened for writing */
  FILE *f = fopen("/proc/locks", "r");
  if (f == NULL) return -1;
  int held = 0;
  while (!held && fgets(line, sizeof line, f) != NULL) {
    char kind[16], dev[64];
    unsigned maj, min;
    unsigned long long ino;
    if (strstr(line, "->") != NULL) continue;
    if (sscanf(line, "%*s %15s %*s %*s %*s %63s", kind, dev) != 2) continue;
    if (strcmp(kind, "FLOCK") != 0) continue;
    if (sscanf(dev, "%x:%x:%llu", &maj, &min, &ino) != 3) continue;
    held = maj == major(st.st_dev) && min == minor(st.st_dev) &&
           ino == (unsigned long long)st.st_ino;
  }
  fclose(f);
  return held;
}

/* ---- standard output ---- */

static char out_buf[1 << 16];
static size_t out_len;
static int out_err; /* errno of the first failed write, or 0 */

void cli_out_init(void) {
  out_len = 0;
}

int cli_flush(void) {
  size_t off = 0;
  while (off < out_len && !out_err) {
    size_t n = fwrite(out_buf + off, 1, out_len - off, stdout);
    if (n == 0) {
      out_err = errno ? errno : EIO;
      break;
    }
    off += n;
  }
  out_len = 0;
  if (!out_err && fflush(stdout) != 0) out_err = errno ? errno : EIO;
  return out_err ? -1 : 0;
}

void cli_put(const void *p, size_t n) {
  if (out_err) return;
  if (n > sizeof out_buf - out_len) {
    cli_flush();
    if (n > sizeof out_buf) {
      if (!out_err && fwrite(p, 1, n, stdout) != n)
        out_err = errno ? errno : EIO;
      return;
    }
  }
  memcpy(out_buf + out_len, p, n);
  out_len += n;
}

void cli_puts(const char *s) {
  cli_put(s, strlen(s));
}

void cli_putc(char c) {
  if (out_len == sizeof out_buf) cli_flush();
  out_buf[out_len++] = c;
}

void cli_printf(const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    cli_put(tmp, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (big == NULL) {
    out_err = ENOMEM;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  cli_put(big, (size_t)n);
  free(big);
}

int cli_out_failed(void) {
  return out_err != 0;
}

int cli_out_end(int code) {
  cli_flush();
  if (out_err == EPIPE) return code; /* the reader went away: not ours */
  if (out_err) {
    fprintf(stderr, "%s: cannot write to standard output: %s\n", cli_progname,
            strerror(out_err));
    return code == CLI_OK ? CLI_FAIL : code;
  }
  return code;
}
