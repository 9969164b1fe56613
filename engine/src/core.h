/*
 * core.h - what every engine thread shares: the configuration, the Redis
 * address, key names, the log, the lifecycle state, the clock skew to Redis
 * and the contention counters. The engine (engine.c) owns it; pollers,
 * workers, the notify thread and producers get a pointer and only read it,
 * except for the atomics, whose orders are stated per field.
 */
#ifndef TIMERS_CORE_H
#define TIMERS_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "clock.h"
#include "conn.h"
#include "keys.h"
#include "log.h"
#include "timers.h"

/* Lifecycle; moves one way: CREATED -> RUNNING -> STOPPING -> STOPPED, or
 * CREATED -> STOPPED. */
enum { TM_CREATED, TM_RUNNING, TM_STOPPING, TM_STOPPED };

/* Relaxed counters: readers only need each value (timers_contention). */
typedef struct tm_contention {
  _Atomic uint64_t poller_sleeps, poller_kicks, worker_sleeps, worker_wakeups,
      lock_waits, lock_wait_ns, cas_retries;
} tm_contention;

typedef struct tm_core {
  timers_config cfg;         /* copied at create; strings point into names */
  tm_redis_opts redis;       /* parsed address, credentials, timeouts */
  tm_names names;            /* key prefix and FASTSTREAM base names, owned */
  tm_log log;
  /* TM_* above. seq_cst: stop() publishes STOPPING (and drain_deadline_ns,
   * written before it) to pollers that then read it. */
  _Atomic int state;
  _Atomic int64_t drain_deadline_ns; /* monotonic; set by stop() */
  /* Redis's clock minus ours, microseconds, measured on every connect and
   * claim (relaxed: any recent value will do). Scores and due checks use
   * Redis's clock; this converts them to local sleeps and turns
   * activate_in into a score. */
  _Atomic int64_t skew_us;
  tm_contention contention;
  _Atomic uint64_t conn_errors;   /* relaxed: failed connects, lost links */
  char member_id[33];             /* this engine's id in owned topics'
                                     memberships (random, set at create) */
} tm_core;

static inline void tm__count(_Atomic uint64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Now on Redis's clock, as estimated from the last measured skew. */
static inline int64_t tm__server_now_us(const tm_core *core) {
  return tm__secs_to_us(tm__wall()) +
         atomic_load_explicit(&core->skew_us, memory_order_relaxed);
}

/* pthread_mutex_lock that counts how often and how long it had to wait. */
static inline void tm__lock(tm_contention *c, pthread_mutex_t *m) {
  if (pthread_mutex_trylock(m) == 0) return;
  int64_t a = tm__mono_ns();
  pthread_mutex_lock(m);
  tm__count(&c->lock_waits, 1);
  tm__count(&c->lock_wait_ns, (uint64_t)(tm__mono_ns() - a));
}

#endif
