/*
 * alloc.c: every allocation of a handle goes through its allocator hooks
 * (walrus_config_t.allocator), so a test can fail any one of them.
 */
#include <stdlib.h>

#include "internal.h"

static void *std_malloc(void *ud, size_t n) {
  (void)ud;
  return malloc(n);
}

static void *std_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  return realloc(p, n);
}

static void std_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

void walrus__default_allocator(walrus_allocator_t *a) {
  a->malloc_fn = std_malloc;
  a->realloc_fn = std_realloc;
  a->free_fn = std_free;
  a->ud = NULL;
}

void *walrus__malloc(walrus_t *w, size_t n) {
  return w->alloc.malloc_fn(w->alloc.ud, n == 0 ? 1 : n);
}

void *walrus__realloc(walrus_t *w, void *p, size_t n) {
  return w->alloc.realloc_fn(w->alloc.ud, p, n == 0 ? 1 : n);
}

void walrus__free(walrus_t *w, void *p) {
  if (p != NULL) w->alloc.free_fn(w->alloc.ud, p);
}
