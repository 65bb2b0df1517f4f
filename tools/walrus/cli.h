/*
 * cli.h: what the files of the walrus command share: the entry points of
 * the subcommands, the helpers for messages, numbers and exit codes, the
 * output stream, and the form of an entry in text and JSON.
 *
 * Exit codes (walrus(1)): CLI_OK 0, CLI_FAIL 1 (damage found, or the
 * operation failed), CLI_USAGE 2, CLI_NOREAD 3 (cannot open or read: the
 * log is missing, unreadable, or locked for what needs the lock).
 */
#ifndef WALRUS_CLI_H
#define WALRUS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "walrus.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_NOREAD 3

/* Entry points: argv[0] is the subcommand name; return the exit code. */
int cli_probe_fsync(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_stat(int argc, char **argv);
int cli_dump(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_repair(int argc, char **argv);
int cli_tail(int argc, char **argv);
int cli_append(int argc, char **argv);
int cli_truncate(int argc, char **argv);

/* Shared helpers. */
extern const char *cli_progname; /* "walrus" */
/* "walrus: <msg>\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0 ok; on bad input prints "walrus: invalid <what> '<s>'" and returns 2. */
int cli_parse_u64(const char *s, const char *what, uint64_t *out);
/* Like cli_parse_u64; accepts the suffixes k, m, g (powers of 1024). */
int cli_parse_size(const char *s, const char *what, uint64_t *out);
/* An entry type, 0..65535; 2 (with a message) on bad input. */
int cli_parse_type(const char *s, uint64_t *out);
/* "always" | "interval" | "none"; 2 (with a message) on bad input. */
int cli_parse_sync(const char *s, walrus_sync_t *out);

/* getopt_long() that names the command in its messages ("walrus dump:
 * unknown option '--x'"); shortopts must start with ':'. */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts);
/* The one DIR operand left after the options, or a message and
 * CLI_USAGE. */
int cli_one_dir(int argc, char **argv, const char **dir);
/* The usage line of a subcommand on stderr, then CLI_USAGE. */
int cli_usage(const char *usage);
/* The exit code for a library failure: CLI_NOREAD when the log cannot be
 * opened or read (missing, not a log, permission, locked, unsafe),
 * CLI_FAIL otherwise. */
int cli_exit_for(int rc);
/* Check that dir names a directory: CLI_OK, or a message and CLI_NOREAD. */
int cli_check_dir(const char *dir);
/* Open dir read-only (zero-copy reads), beside any writer.  On failure a
 * message naming dir and the library's reason, and the exit code. */
int cli_open_read(const char *dir, walrus_t **w);
/* Does a process hold dir's LOCK (a writer has the log open)?  1 yes, 0
 * no, -1 unknown (no /proc/locks).  Reads only: the lock is never
 * taken, so a writer starting meanwhile is never refused. */
int cli_lock_held(const char *dir);

/* Standard output, buffered; cli_out_end() reports a write error (a
 * closed stdout) and returns the exit code to use. */
void cli_out_init(void);
void cli_put(const void *p, size_t n);
void cli_puts(const char *s);
void cli_putc(char c);
void cli_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_flush(void); /* 0, or -1 after a write error */
int cli_out_failed(void);
int cli_out_end(int code);

/* How dump and tail print payloads. */
typedef enum cli_data_e {
  CLI_DATA_AUTO,   /* text: escaped text; JSON: UTF-8 or base64 */
  CLI_DATA_TEXT,   /* escaped text */
  CLI_DATA_HEX,    /* lowercase hex */
  CLI_DATA_BASE64, /* base64 */
  CLI_DATA_NONE    /* left out */
} cli_data_t;
int cli_parse_data(const char *s, cli_data_t *out);
/* One entry on one line of standard output, in text or as JSON. */
void cli_print_entry(const walrus_entry_t *e, int json, cli_data_t data);

/* cli_json.c: payload encodings. */
int cli_utf8_valid(const unsigned char *p, size_t n);
/* Encode n bytes of p as base64 or hex into a new NUL-terminated string
 * (NULL when out of memory). */
char *cli_base64(const unsigned char *p, size_t n);
char *cli_hex(const unsigned char *p, size_t n);
/* Decode s into a new buffer (*n bytes); NULL if s is not valid. */
unsigned char *cli_unbase64(const char *s, size_t *n);
unsigned char *cli_unhex(const char *s, size_t *n);

#endif /* WALRUS_CLI_H */
