/*
 * error.c: the error code table (walrus_strerror, walrus_errname), the
 * handle's last-error message, the logger, and poisoning.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Messages are cut to the buffer on purpose; say so to GCC. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

const char *walrus_strerror(int code) {
  switch (code) {
    case WALRUS_OK: return "success";
    case WALRUS_DONE: return "no more entries";
#define WALRUS_STRERROR_CASE_(name, value, msg) \
  case WALRUS_##name: return msg;
    WALRUS_ERRNO_MAP(WALRUS_STRERROR_CASE_)
#undef WALRUS_STRERROR_CASE_
    default: return "unknown error";
  }
}

const char *walrus_errname(int code) {
  switch (code) {
    case WALRUS_OK: return "WALRUS_OK";
    case WALRUS_DONE: return "WALRUS_DONE";
#define WALRUS_ERRNAME_CASE_(name, value, msg) \
  case WALRUS_##name: return "WALRUS_" #name;
    WALRUS_ERRNO_MAP(WALRUS_ERRNAME_CASE_)
#undef WALRUS_ERRNAME_CASE_
    default: return "WALRUS_UNKNOWN";
  }
}

static void log_v(walrus_t *w, walrus_log_level_t level, const char *fmt,
                  va_list ap) {
  char msg[768];
  if (w == NULL || w->cfg.logger == NULL || level > w->cfg.log_level) return;
  vsnprintf(msg, sizeof msg, fmt, ap);
  w->cfg.logger(w->cfg.logger_ud, level, msg);
}

void walrus__log(walrus_t *w, walrus_log_level_t level, const char *fmt,
                 ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(w, level, fmt, ap);
  va_end(ap);
}

int walrus__fail(walrus_t *w, int code, int os_errno, const char *fmt, ...) {
  va_list ap;
  char msg[512];
  if (w == NULL) return code;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&w->err.mu);
  if (os_errno != 0)
    snprintf(w->err.msg, sizeof w->err.msg, "%s: %s (%s)", walrus_errname(code),
             msg, strerror(os_errno));
  else
    snprintf(w->err.msg, sizeof w->err.msg, "%s: %s", walrus_errname(code),
             msg);
  w->err.last_errno = os_errno;
  walrus__log(w, WALRUS_LOG_ERROR, "%s", w->err.msg);
  pthread_mutex_unlock(&w->err.mu);
  return code;
}

/* Poisoning is sticky: the first failure's code is kept for the message. */
int walrus__poison(walrus_t *w, int code) {
  if (!w->commit.poisoned) {
    w->commit.poisoned = 1;
    w->commit.poison_code = code;
    pthread_mutex_lock(&w->err.mu);
    memcpy(w->commit.poison_msg, w->err.msg, sizeof w->commit.poison_msg);
    pthread_mutex_unlock(&w->err.mu);
    atomic_store(&w->commit.broken, 1);
    /* walrus_wait() sleepers must see that they wait in vain. */
    pthread_mutex_lock(&w->commit.wait_mu);
    pthread_cond_broadcast(&w->commit.wait_cv);
    pthread_mutex_unlock(&w->commit.wait_mu);
    walrus__log(w, WALRUS_LOG_ERROR,
                "handle poisoned by %s; writes refused until reopened",
                walrus_errname(code));
  }
  return code;
}

/* The fields are set under wlock (walrus__poison's callers hold it). */
int walrus_health(walrus_t *w, char *why, size_t len) {
  if (w == NULL) return WALRUS_EINVAL;
  pthread_mutex_lock(&w->wlock);
  int rc = w->commit.poisoned ? w->commit.poison_code : WALRUS_OK;
  if (why != NULL && len > 0)
    snprintf(why, len, "%s", w->commit.poisoned ? w->commit.poison_msg : "");
  pthread_mutex_unlock(&w->wlock);
  return rc;
}

const char *walrus_errmsg(walrus_t *w) {
  return w == NULL ? "no handle" : w->err.msg;
}

int walrus_last_errno(walrus_t *w) {
  int e;
  if (w == NULL) return 0;
  pthread_mutex_lock(&w->err.mu);
  e = w->err.last_errno;
  pthread_mutex_unlock(&w->err.mu);
  return e;
}
