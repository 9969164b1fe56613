/*
 * alloc.c - the allocator table behind alloc.h.
 */
#include "alloc.h"

#include "error.h"

timers_allocator tm__allocator = {malloc, calloc, realloc, free};

int timers_set_allocator(const timers_allocator *a) {
  tm__error_clear();
  if (!a) {
    tm__allocator = (timers_allocator){malloc, calloc, realloc, free};
    return TIMERS_OK;
  }
  if (!a->malloc_fn || !a->calloc_fn || !a->realloc_fn || !a->free_fn)
    return tm__error(TIMERS_EINVAL, "allocator: every function must be set");
  tm__allocator = *a;
  return TIMERS_OK;
}
