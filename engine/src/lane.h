/*
 * lane.h - the lock-free queues between one poller and the workers, and the
 * two ways of waking a sleeping thread. poller.c and worker.c both use this
 * module and never call each other.
 *
 *   poller --work ring (SPMC)--> any worker
 *   worker w --done[w] (SPSC)--> poller        (one ring per worker: no
 *                                               producer ever waits for
 *                                               another to publish a slot)
 *
 * A lane's rings have size ring_capacity; the poller keeps at most
 * ring_capacity - 1 jobs out (pushed, not yet back), so no push can fail.
 */
#ifndef TIMERS_LANE_H
#define TIMERS_LANE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core.h"
#include "ring.h"

/* One thread that sleeps on a condition variable until kicked. Dekker
 * style: a kicker sets `kicked` then, if `sleeping`, signals under `lock`;
 * the sleeper sets `sleeping` then re-checks `kicked` and its own queues
 * before it waits. Both flags seq_cst, so no kick is lost and a busy
 * thread is kicked without taking the lock. */
typedef struct tm_wake {
  pthread_mutex_t lock;
  pthread_cond_t cond;      /* monotonic clock */
  _Atomic int sleeping;
  _Atomic int kicked;
} tm_wake;

typedef struct tm_lane {
  tm_ring work;             /* poller -> workers */
  tm_ring *done;            /* [ndone]: worker w -> poller */
  int ndone;
  /* Written by workers (and the poller): padded apart from the fields
   * around it (heap memory is not 64-byte aligned: padding, not
   * _Alignas, keeps them on different cache lines). */
  char pad0_[64];
  tm_wake wake;             /* the poller's */
  /* A worker sets it after pushing an outcome and kicks the poller only if
   * it was clear; the poller clears it before draining (exchange, acq_rel):
   * one kick per turn at most, and no outcome waits for another reason to
   * wake the poller. */
  char pad1_[64];
  _Atomic int outcomes;
  char pad2_[64];
} tm_lane;

/* Workers sleeping for want of work (one condition variable for all). */
typedef struct tm_idle {
  pthread_mutex_t lock;
  pthread_cond_t cond;      /* monotonic clock */
  _Atomic int sleepers;     /* seq_cst, see tm__idle_wake */
} tm_idle;

int tm__lane_init(tm_lane *l, unsigned ring_size, int nworkers);
/* After every thread has stopped; calls free_job on jobs left anywhere. */
void tm__lane_destroy(tm_lane *l, void (*free_job)(void *job));

void tm__wake_init(tm_wake *w);
void tm__wake_destroy(tm_wake *w);
/* Wakes the sleeper now or makes its next sleep return at once. */
void tm__wake_kick(tm_wake *w, tm_contention *c);
/* Sleeps up to ns unless kicked (or `ready` returns true after the sleeper
 * announced itself); consumes the kick. */
void tm__wake_sleep(tm_wake *w, int64_t ns, bool (*ready)(void *), void *arg,
                    tm_contention *c);

void tm__idle_init(tm_idle *i);
void tm__idle_destroy(tm_idle *i);
/* After pushing n jobs: wakes up to n sleeping workers. */
void tm__idle_wake(tm_idle *i, unsigned n, tm_contention *c);
/* A worker with nothing to do: sleeps until woken (or 1 s) unless
 * `ready` holds once it counts as a sleeper. */
void tm__idle_sleep(tm_idle *i, bool (*ready)(void *), void *arg,
                    tm_contention *c);
/* Wakes every sleeper (stop). */
void tm__idle_wake_all(tm_idle *i);

#endif
