/*
 * alloc.h - every allocation of the library goes through these wrappers, so
 * an application (timers_set_allocator) or a test can count or fail them.
 * The function table is written once, before any other call, and only read
 * afterwards (no synchronization needed: see timers_set_allocator).
 */
#ifndef TIMERS_ALLOC_H
#define TIMERS_ALLOC_H

#include <stdlib.h>
#include <string.h>

#include "timers.h"

extern timers_allocator tm__allocator;

static inline void *tm__malloc(size_t n) {
  return tm__allocator.malloc_fn(n ? n : 1);
}
static inline void *tm__calloc(size_t n, size_t size) {
  return tm__allocator.calloc_fn(n ? n : 1, size ? size : 1);
}
static inline void *tm__realloc(void *p, size_t n) {
  return tm__allocator.realloc_fn(p, n ? n : 1);
}
static inline void tm__free(void *p) {
  if (p) tm__allocator.free_fn(p);
}

/* NULL in, NULL out. */
static inline char *tm__strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = tm__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* n bytes of s and a NUL. */
static inline char *tm__strndup(const char *s, size_t n) {
  char *d = tm__malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

#endif
