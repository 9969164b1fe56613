/*
 * ring.h - the lock-free queues between pollers and workers: Concurrency Kit
 * rings of pointers, named by discipline. A ring of size N (a power of two)
 * holds N - 1 entries. Each ring pointer's discipline is fixed by its
 * owner (lane.h): the functions below name it.
 *
 * ThreadSanitizer cannot see ck's atomics, so in TSan builds each enqueue
 * releases and each successful dequeue acquires the ring itself: that gives
 * TSan the happens-before edge the ring really provides for the payloads.
 * Races inside ck_ring_* are suppressed (tests/tsan.supp); nothing else is.
 */
#ifndef TIMERS_RING_H
#define TIMERS_RING_H

#include <ck_ring.h>
#include <stdbool.h>

#include "alloc.h"

#if defined(TIMERS_TSAN)
#include <sanitizer/tsan_interface.h>
#define TM_RING_RELEASE(r) __tsan_release(r)
#define TM_RING_ACQUIRE(r) __tsan_acquire(r)
#else
#define TM_RING_RELEASE(r) ((void)0)
#define TM_RING_ACQUIRE(r) ((void)0)
#endif

typedef struct tm_ring {
  ck_ring_t ring;             /* producer/consumer indices, padded by ck */
  ck_ring_buffer_t *slots;    /* owned */
} tm_ring;

/* size: a power of two >= 4. Returns 0 or -1 (out of memory). */
static inline int tm__ring_init(tm_ring *r, unsigned size) {
  r->slots = tm__calloc(size, sizeof *r->slots);
  if (!r->slots) return -1;
  ck_ring_init(&r->ring, size);
  return 0;
}

static inline void tm__ring_free(tm_ring *r) {
  tm__free(r->slots);
  r->slots = NULL;
}

static inline unsigned tm__ring_size(tm_ring *r) {
  return ck_ring_size(&r->ring);
}

/* One producer, many consumers: poller -> workers. */
static inline bool tm__ring_push_spmc(tm_ring *r, void *item) {
  TM_RING_RELEASE(r);
  return ck_ring_enqueue_spmc(&r->ring, r->slots, item);
}

static inline bool tm__ring_pop_spmc(tm_ring *r, void *out) {
  bool ok = ck_ring_dequeue_spmc(&r->ring, r->slots, out);
  if (ok) TM_RING_ACQUIRE(r);
  return ok;
}

/* One producer, one consumer: a worker -> its poller. */
static inline bool tm__ring_push_spsc(tm_ring *r, void *item) {
  TM_RING_RELEASE(r);
  return ck_ring_enqueue_spsc(&r->ring, r->slots, item);
}

static inline bool tm__ring_pop_spsc(tm_ring *r, void *out) {
  bool ok = ck_ring_dequeue_spsc(&r->ring, r->slots, out);
  if (ok) TM_RING_ACQUIRE(r);
  return ok;
}

#endif
