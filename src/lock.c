/*
 * lock.c: the helpers around the handle's reader-writer lock (internal.h,
 * LOCKING).  A failed pthread call on a valid lock means memory
 * corruption, so they abort rather than return.
 */
#include <stdlib.h>

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
