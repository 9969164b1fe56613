/*
 * worker.c - worker threads run the handlers. They never touch Redis: a job
 * comes from a poller's work ring and goes back, with its outcome, to the
 * same poller's done ring, which commits it.
 *
 * Idle workers spin briefly, then sleep on one engine-wide condition
 * variable. Sleep/wake is Dekker-style: a sleeper increments `wsleepers`
 * then re-checks the rings; a poller pushes then reads `wsleepers` with a
 * read-modify-write, so a push is never missed and a busy engine takes no
 * lock on this path.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "codec.h"
#include "engine.h"

_Thread_local bool tm__in_handler;

void tm__workers_wake(timers_engine *e) {
  /* An RMW, not a load: it orders after the push, and a sleeper's increment
   * either precedes it (seen here) or reads from it (then the sleeper sees
   * the push). */
  if (atomic_fetch_add(&e->wsleepers, 0) > 0) {
    tm__lock(e, &e->wlock);
    tm__count(&e->contention.worker_wakeups, 1);
    pthread_cond_broadcast(&e->wcond);
    pthread_mutex_unlock(&e->wlock);
  }
}

static tm_job *pop_any(timers_engine *e, unsigned *rotor) {
  tm_job *j;
  for (int k = 0; k < e->npollers; k++) {
    tm_poller *p = &e->pollers[(*rotor + (unsigned)k) % (unsigned)e->npollers];
    if (tm__ring_pop_spmc(&p->work, &j)) return j;
  }
  (*rotor)++;
  return NULL;
}

static bool rings_empty(timers_engine *e) {
  for (int k = 0; k < e->npollers; k++)
    if (tm__ring_size(&e->pollers[k].work)) return false;
  return true;
}

static void worker_sleep(timers_engine *e) {
  for (int spin = 0; spin < 200; spin++) {
    if (!rings_empty(e) || atomic_load(&e->workers_quit)) return;
    ck_pr_stall();
  }
  tm__lock(e, &e->wlock);
  atomic_fetch_add(&e->wsleepers, 1);
  if (rings_empty(e) && !atomic_load(&e->workers_quit)) {
    tm__count(&e->contention.worker_sleeps, 1);
    /* A wake-up cannot be lost (see above); the bound is only a guard. */
    struct timespec until = tm__mono_timespec(tm__mono_ns() + 1000000000);
    pthread_cond_timedwait(&e->wcond, &e->wlock, &until);
  }
  atomic_fetch_sub(&e->wsleepers, 1);
  pthread_mutex_unlock(&e->wlock);
}

static timers_outcome call_handler(tm_job *j, timers_header *headers,
                                   char *strings) {
  tm_topic *t = j->shard->topic;
  tm_envelope env;
  tm__blob_decode(t->layout, j->blob, j->blob_len, &env, headers, strings);
  if (t->layout == TIMERS_LAYOUT_FASTSTREAM) env.activate_at = j->claimed_score;
  j->activate_at = env.activate_at;
  timers_message m = {
      .topic = t->name,
      .id = j->id,
      .payload = env.payload,
      .payload_len = env.payload_len,
      .headers = env.header_count ? headers : NULL,
      .header_count = env.header_count,
      .activate_at = env.activate_at,
      .attempt = j->attempt,
      .shard = j->shard->index,
  };
  j->fired_at = tm__wall();
  tm__in_handler = true;
  timers_outcome o = t->handler(&m, t->userdata);
  tm__in_handler = false;
  if (o != TIMERS_ACK && o != TIMERS_NACK && o != TIMERS_REJECT) {
    tm__log(t->engine, TIMERS_LOG_ERROR,
            "topic '%s': handler returned %d, not ACK/NACK/REJECT; "
            "treated as NACK", t->name, (int)o);
    o = TIMERS_NACK;
  }
  return o;
}

static void run_job(tm_job *j) {
  timers_header headers[TIMERS_HEADERS_MAX];
  char small[2048];
  size_t need = j->blob_len + 2 * TIMERS_HEADERS_MAX; /* see tm__blob_decode */
  char *strings = need <= sizeof small ? small : tm__malloc(need);
  if (strings) {
    j->outcome = call_handler(j, headers, strings);
  } else {
    j->outcome = TIMERS_NACK; /* OOM: redeliver after the lease */
  }
  if (strings != small) tm__free(strings);
  tm_poller *owner = j->shard->owner;
  tm__ring_push_mpsc(&owner->done, j); /* room: inflight <= capacity */
  /* Wake the poller only when it has something worth a round trip: its
   * work ring ran dry (refill, and nothing left to batch with) or a claim's
   * worth of outcomes is waiting. Not once per job. */
  if (tm__ring_size(&owner->work) == 0 ||
      tm__ring_size(&owner->done) >= owner->kick_threshold)
    tm__poller_kick(owner);
}

void *tm__worker_main(void *arg) {
  timers_engine *e = arg;
  unsigned rotor = 0;
  while (!atomic_load_explicit(&e->workers_quit, memory_order_acquire)) {
    tm_job *j = pop_any(e, &rotor);
    if (j)
      run_job(j);
    else
      worker_sleep(e);
  }
  return NULL;
}
