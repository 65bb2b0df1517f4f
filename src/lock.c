/*
 * lock.c: the helpers around the handle's reader-writer lock (internal.h,
 * LOCKING), and the waits with a deadline that walrus_append_deadline
 * makes.  A failed pthread call on a valid lock means memory corruption,
 * so they abort rather than return.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

void walrus__lock_shared(walrus_t *w) {
  if (pthread_rwlock_rdlock(&w->store.lock) != 0) abort();
}

void walrus__lock_excl(walrus_t *w) {
  if (pthread_rwlock_wrlock(&w->store.lock) != 0) abort();
}

void walrus__unlock(walrus_t *w) {
  if (pthread_rwlock_unlock(&w->store.lock) != 0) abort();
}

/* ThreadSanitizer (as GCC 12 ships it) intercepts neither
 * pthread_mutex_clocklock nor sem_clockwait: it would miss the lock taken
 * and the post received, and report races that are not there.  Under it
 * the CLOCK_REALTIME forms are used, with the deadline moved onto that
 * clock; everywhere else the deadline stays on CLOCK_MONOTONIC, which
 * no clock change can move. */
#if defined(__SANITIZE_THREAD__)
#define WALRUS__REALTIME_WAITS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WALRUS__REALTIME_WAITS 1
#endif
#endif

static struct timespec deadline_ts(int64_t deadline) {
#ifdef WALRUS__REALTIME_WAITS
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  deadline +=
      (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - walrus__mono_ns();
#endif
  struct timespec ts = {(time_t)(deadline / 1000000000),
                        (long)(deadline % 1000000000)};
  return ts;
}

int walrus__mutex_lock_until(pthread_mutex_t *m, int64_t deadline) {
  struct timespec ts = deadline_ts(deadline);
#ifdef WALRUS__REALTIME_WAITS
  int e = pthread_mutex_timedlock(m, &ts);
#else
  int e = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
  if (e != 0 && e != ETIMEDOUT) abort();
  return e;
}

int walrus__sem_wait_until(sem_t *s, int64_t deadline) {
  struct timespec ts = deadline_ts(deadline);
  int e;
  do {
#ifdef WALRUS__REALTIME_WAITS
    e = sem_timedwait(s, &ts) == 0 ? 0 : errno;
#else
    e = sem_clockwait(s, CLOCK_MONOTONIC, &ts) == 0 ? 0 : errno;
#endif
  } while (e == EINTR);
  if (e != 0 && e != ETIMEDOUT) abort();
  return e;
}
