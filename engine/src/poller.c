/*
 * poller.c - a poller thread (poller.h): turn after turn, then sleep until
 * something is due: the earliest due time of its shards (converted from
 * Redis's clock), the next heartbeat or hand-back check of a timer it
 * holds, or a kick (a worker brought back an outcome, a local schedule or a
 * wake message from another process announced an earlier timer, stop()).
 * Sleeps are condition-variable waits on the monotonic clock, never a
 * blocking Redis command's timeout (Redis rounds those to its hz tick).
 *
 * Stop: claims end; unstarted timers are handed back at once; the poller
 * keeps extending running handlers (until the drain deadline) and exits
 * once every job is back from the workers and every settle step answered
 * (or, with Redis unreachable past the deadline, dropped).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "poller.h"

int tm__poller_init(tm_poller *p, tm_core *core, tm_idle *idle, int index,
                    int nworkers, int npollers, size_t max_shards) {
  p->core = core;
  p->idle = idle;
  p->index = index;
  p->nworkers = nworkers;
  p->worker_share = (nworkers + npollers - 1) / npollers;
  p->capacity = (unsigned)core->cfg.ring_capacity - 1;
  p->budget = (unsigned)core->cfg.claim_batch;
  p->held.prev = p->held.next = &p->held;
  p->next_scan_ns = INT64_MAX;
  p->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)tm__mono_ns() << 1) ^
           (uint64_t)(uintptr_t)p;
  p->shards = tm__calloc(max_shards, sizeof *p->shards);
  if (!p->shards ||
      tm__lane_init(&p->lane, (unsigned)core->cfg.ring_capacity, nworkers))
    return tm__error(TIMERS_ENOMEM, "out of memory");
  return TIMERS_OK;
}

void tm__poller_destroy(tm_poller *p) {
  if (!p->core) return;
  /* Jobs still held are in the rings too (freed there) or were never
   * pushed: none, since a job is pushed as soon as it is held. Settle steps
   * left after a failed stop only point at jobs the lane frees. */
  for (size_t k = 0; k < p->nshards; k++) p->shards[k]->nsettle = 0;
  tm__lane_destroy(&p->lane, tm__job_free);
  tm__owner_free(p);
  tm__free(p->shards);
  tm__conn_close(&p->conn);
  p->core = NULL;
}

void tm__poller_kick(tm_poller *p) {
  tm__wake_kick(&p->lane.wake, &p->core->contention);
}

static bool outcomes_waiting(void *arg) {
  tm_poller *p = arg;
  /* seq_cst: the sleeper's re-check after announcing itself (lane.h) */
  return atomic_load_explicit(&p->lane.outcomes, memory_order_seq_cst) != 0;
}

static void poller_sleep(tm_poller *p, int64_t ns) {
  tm__wake_sleep(&p->lane.wake, ns, outcomes_waiting, p,
                 &p->core->contention);
}

/* Monotonic time of a Redis-clock score. */
static int64_t score_to_mono(const tm_poller *p, int64_t score_us,
                             int64_t mono_now) {
  if (score_us == INT64_MAX) return INT64_MAX;
  int64_t wait_us = score_us - tm__server_now_us(p->core);
  if (wait_us > INT64_MAX / 2000) return INT64_MAX;
  return mono_now + (wait_us > 0 ? wait_us * 1000 : 0);
}

/* How long the poller may sleep. */
static int64_t sleep_ns(tm_poller *p, bool stopping) {
  int64_t now = tm__mono_ns(), until = p->next_scan_ns;
  int64_t own = tm__owner_next_ns(p);
  if (own < until) until = own;
  int64_t max = (int64_t)p->core->cfg.max_sleep_ms * 1000000;
  for (size_t k = 0; k < p->nshards; k++) {
    tm_shard *s = p->shards[k];
    int64_t at = s->nsettle ? s->retry_at_ns : INT64_MAX;
    /* A shard it may not claim (owned by another process) is not due:
     * the ownership step's own time (tm__owner_next_ns) wakes us. */
    if (!stopping && !p->starved && tm__owner_claimable(s, now)) {
      int64_t due = score_to_mono(p, tm__shard_due(s), now);
      if (due < s->retry_at_ns) due = s->retry_at_ns;
      if (due < at) at = due;
    }
    if (at < until) until = at;
  }
  /* Starved: the outcomes that free room kick us; the bound is a guard. */
  if (p->starved || stopping) max = 50 * 1000000;
  if (until == INT64_MAX) return max;
  int64_t ns = until - now;
  return ns < max ? ns : max;
}

/* Reconnects with capped exponential backoff; after a reconnect every shard
 * is looked at again (claims may have been lost, wake messages missed). */
static void reconnect(tm_poller *p) {
  tm_core *core = p->core;
  if (tm__conn_open(&p->conn, &core->redis, true) == TIMERS_OK) {
    if (p->backoff_ns)
      tm__log(&core->log, TIMERS_LOG_WARN, "poller %d: reconnected", p->index);
    tm__ratelimit_reset(&p->log_conn);
    atomic_store_explicit(&core->skew_us, p->conn.skew_us,
                          memory_order_relaxed);
    p->backoff_ns = 0;
    atomic_store_explicit(&p->connected, 1, memory_order_relaxed);
    for (size_t k = 0; k < p->nshards; k++)
      atomic_store_explicit(&p->shards[k]->next_due_us, 0,
                            memory_order_relaxed);
    return;
  }
  tm__log_limited(&core->log, &p->log_conn, TIMERS_LOG_ERROR, "poller %d: %s",
                  p->index, timers_last_error());
  tm__count(&core->conn_errors, 1);
  p->backoff_ns = p->backoff_ns ? p->backoff_ns * 2 : 50 * 1000000;
  if (p->backoff_ns > 2000 * 1000000LL) p->backoff_ns = 2000 * 1000000LL;
  poller_sleep(p, p->backoff_ns);
}

/* Past the drain deadline with Redis unreachable: the settle steps are
 * dropped (leases run out; the timers are delivered again). */
static void drop_settles(tm_poller *p) {
  for (size_t k = 0; k < p->nshards; k++) {
    tm_shard *s = p->shards[k];
    for (size_t i = 0; i < s->nsettle; i++) tm__settled(p, &s->settle[i], NULL);
    s->nsettle = 0;
  }
}

static void *poller_main(void *arg) {
  tm_poller *p = arg;
  tm_core *core = p->core;
  for (;;) {
    tm__drain_done(p);
    bool stopping = atomic_load_explicit(&core->state, memory_order_seq_cst) !=
                    TM_RUNNING;
    int64_t deadline = atomic_load_explicit(&core->drain_deadline_ns,
                                            memory_order_relaxed);
    bool late = stopping && tm__mono_ns() >= deadline;
    if (late && !p->conn.ctx) drop_settles(p);
    if (stopping && !tm__poller_busy(p)) break;
    if (!p->conn.ctx) {
      if (late) poller_sleep(p, 10 * 1000000); /* wait for the workers */
      else reconnect(p);
      continue;
    }
    tm__scan_held(p, stopping, deadline);
    int rc = tm__turn(p, stopping);
    if (rc == TIMERS_ECONN) {
      atomic_store_explicit(&p->connected, 0, memory_order_relaxed);
      tm__log_limited(&core->log, &p->log_conn, TIMERS_LOG_ERROR,
                      "poller %d: %s", p->index, timers_last_error());
      tm__count(&core->conn_errors, 1);
      continue;
    }
    poller_sleep(p, rc == TIMERS_OK ? sleep_ns(p, stopping) : 10 * 1000000);
  }
  tm__owner_leave(p);
  tm__conn_close(&p->conn);
  atomic_store_explicit(&p->connected, 0, memory_order_relaxed);
  return NULL;
}

int tm__poller_start(tm_poller *p) {
  int rc = tm__owner_init(p);
  if (rc != TIMERS_OK) return rc;
  if (pthread_create(&p->thread, NULL, poller_main, p) != 0)
    return tm__error(TIMERS_ESYS, "cannot start poller thread %d", p->index);
  p->started = true;
  return TIMERS_OK;
}

void tm__poller_join(tm_poller *p) {
  if (p->started) pthread_join(p->thread, NULL);
  p->started = false;
}
