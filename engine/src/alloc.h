/*
 * alloc.h - every allocation of the library goes through these wrappers, so
 * out-of-memory paths have one place to be tested from.
 */
#ifndef TIMERS_ALLOC_H
#define TIMERS_ALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *tm__malloc(size_t n) { return malloc(n ? n : 1); }
static inline void *tm__calloc(size_t n, size_t size) {
  return calloc(n ? n : 1, size ? size : 1);
}
static inline void *tm__realloc(void *p, size_t n) {
  return realloc(p, n ? n : 1);
}
static inline void tm__free(void *p) { free(p); }

/* NULL in, NULL out. */
static inline char *tm__strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = tm__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

#endif
