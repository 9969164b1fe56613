/*
 * inflight.c - the timers a poller holds (poller.h).
 *
 * A claimed job sits on the poller's held list while it needs watching:
 * queued in the work ring, or running in a handler. Each scan (at most as
 * often as something can be due) does two things:
 *  - a running handler's lease is extended every lease/3 (a fenced 'e'
 *    step) until the topic's max_handler_ms (or a later time the handler
 *    asked for with timers_extend_lease), so it is not redelivered while
 *    its process lives;
 *  - a job still queued after lease/2 (the workers are slower than the
 *    claim sizing assumed), or any queued job at stop(), is handed back
 *    unstarted (a fenced 'r' step restores its score and attempt count), so
 *    another process, or this one later, takes it before its lease would
 *    have run out in the queue.
 * When a worker brings a job back, its outcome becomes a settle step
 * ('c' ack/reject, 'n' nack) and it leaves the held list; it is freed once
 * that step is answered.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "poller.h"
#include "stats.h"

void tm__job_free(void *job) { tm__free(job); }

void tm__held_add(tm_poller *p, tm_job *j) {
  tm_link *h = &p->held, *l = &j->link;
  l->prev = h->prev, l->next = h;
  h->prev->next = l, h->prev = l;
  j->listed = true;
  p->nheld++;
  j->shard->nheld++;
  tm__count(&p->inflight, 1);
  int64_t lease = (int64_t)j->shard->topic->lease_ms * 1000000;
  int64_t check = j->refreshed_ns + lease / 3;
  if (check < p->next_scan_ns) p->next_scan_ns = check;
}

static void held_remove(tm_poller *p, tm_job *j) {
  tm_link *l = &j->link;
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = NULL;
  j->listed = false;
  p->nheld--;
  j->shard->nheld--;
}

/* The job's last settle step is done (or will never be sent): it no longer
 * holds a lease for us; freed as soon as no worker has it. */
static void finish(tm_poller *p, tm_job *j) {
  atomic_fetch_sub_explicit(&p->inflight, 1, memory_order_relaxed);
  j->queued_op = 0;
  if (j->back) tm__job_free(j);
}

static int queue_settle(tm_shard *s, tm_job *j, char op) {
  if (s->nsettle == s->settle_cap) {
    size_t cap = s->settle_cap ? s->settle_cap * 2 : 64;
    tm_settle *g = tm__realloc(s->settle, sizeof *g * cap);
    if (!g) return -1;
    s->settle = g, s->settle_cap = cap;
  }
  s->settle[s->nsettle++] = (tm_settle){j, op};
  j->queued_op = op;
  return 0;
}

/* An outcome's step; an extension still queued (its reply was lost with a
 * connection) becomes that step: never two steps of one job in a call. */
static void queue_outcome(tm_poller *p, tm_job *j, char op) {
  tm_shard *s = j->shard;
  if (j->queued_op == 'e') {
    for (size_t k = 0; k < s->nsettle; k++)
      if (s->settle[k].job == j) s->settle[k].op = op;
    j->queued_op = op;
    return;
  }
  if (queue_settle(s, j, op) != 0) { /* OOM: the lease runs out */
    tm__log_limited(&p->core->log, &p->log_lost, TIMERS_LOG_ERROR,
                    "poller %d: out of memory; timer '%s' will be "
                    "redelivered after its lease", p->index, j->id);
    finish(p, j);
  }
}

static void record_run(tm_poller *p, const tm_job *j) {
  tm_counters *c = &j->shard->counters;
  if (j->corrupt) {
    tm__count(&c->corrupt, 1);
    tm__log_limited(&p->core->log, &p->log_corrupt, TIMERS_LOG_WARN,
                    "shard %s: timer '%s' has a payload that %s",
                    j->shard->keys[TM_KEY_Z], j->id,
                    j->handled ? "is not this layout's envelope; delivered "
                                 "as raw bytes"
                    : j->outcome == TIMERS_REJECT
                        ? "its layout's other clients drop unhandled: removed"
                        : "its layout's other clients never handle: left "
                          "to its lease, not delivered");
  }
  if (!j->handled) return;
  tm__count(&c->fired, 1);
  tm__count(j->outcome == TIMERS_ACK    ? &c->acked
            : j->outcome == TIMERS_NACK ? &c->nacked
            : j->outcome == TIMERS_RELEASE ? &c->released
                                        : &c->rejected, 1);
  p->avg_run_ns = p->avg_run_ns ? p->avg_run_ns + (j->ran_ns - p->avg_run_ns) / 8
                                : (j->ran_ns > 0 ? j->ran_ns : 1);
  /* First deliveries only (attempt 0: not counted, FASTSTREAM layout). */
  if (j->attempt == 1 && j->activate_at > 0) {
    double late = j->fired_at - j->activate_at;
    tm__count(&p->lateness[tm__lateness_bucket(late)], 1);
    if (late > 0) tm__count(&p->lateness_sum_us, (uint64_t)(late * 1e6));
  }
}

/* NACK backoff of attempt n: exponential from retry_min_ms, capped at
 * retry_max_ms, with jitter (uniform in [d/2, d]) so a failing batch does
 * not come back all at once. */
static int backoff_ms(tm_poller *p, const tm_topic *t, uint32_t n) {
  double d = t->retry_min_ms;
  for (uint32_t k = 1; k < n && d < t->retry_max_ms; k++) d *= 2;
  if (d > t->retry_max_ms) d = t->retry_max_ms;
  p->rng ^= p->rng >> 12, p->rng ^= p->rng << 25, p->rng ^= p->rng >> 27;
  double u = (double)((p->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
  return (int)(d / 2 + u * d / 2);
}

/* A layout that counts no attempts (FASTSTREAM) nacks as its library
 * does: the timer comes back when its lease runs out, not earlier. */
static int lease_left_ms(const tm_job *j) {
  int64_t left = j->lease_until_ns - tm__mono_ns();
  if (left <= 0) return 0;
  return left / 1000000 > INT_MAX ? INT_MAX : (int)(left / 1000000);
}

/* The settle step of a finished run: commit, nack (with its delay), hand
 * back, or dead-letter (the last attempt failed, or a reject the topic
 * keeps). */
static char outcome_step(tm_poller *p, tm_job *j) {
  const tm_topic *t = j->shard->topic;
  switch (j->outcome) {
    case TIMERS_NACK:
      if (t->max_attempts > 0 && j->attempt >= (uint32_t)t->max_attempts) {
        if (!j->reason[0])
          snprintf(j->reason, sizeof j->reason,
                   "NACK on the last attempt (%u of %d)", j->attempt,
                   t->max_attempts);
        return 'x';
      }
      if (j->retry_ms < 0)
        j->retry_ms = t->ops->has_dead_letters ? backoff_ms(p, t, j->attempt)
                                               : lease_left_ms(j);
      return 'n';
    case TIMERS_RELEASE:
      return 'r';
    case TIMERS_REJECT:
      if (t->dead_letter_rejects) {
        if (!j->reason[0]) snprintf(j->reason, sizeof j->reason, "rejected");
        return 'x';
      }
      return 'c';
    default:
      return 'c';
  }
}

static void take_back(tm_poller *p, tm_job *j) {
  p->out--;
  j->back = true;
  atomic_fetch_sub_explicit(&j->shard->topic->inflight, 1,
                            memory_order_relaxed);
  /* acquire: pairs with the CAS that set it (ours, for RELEASED). */
  if (atomic_load_explicit(&j->state, memory_order_acquire) ==
      TM_JOB_RELEASED) {
    if (!j->queued_op && !j->listed) tm__job_free(j);
    return;
  }
  record_run(p, j);
  if (j->shard->topic->at_most_once) { /* removed at claim: nothing to settle */
    tm__job_free(j);
    return;
  }
  held_remove(p, j);
  queue_outcome(p, j, outcome_step(p, j));
}

void tm__drain_done(tm_poller *p) {
  /* Cleared before draining: an outcome pushed after this exchange sets it
   * again and kicks, so none waits for an unrelated wake-up. */
  atomic_exchange_explicit(&p->lane.outcomes, 0, memory_order_acq_rel);
  tm_job *j;
  for (int w = 0; w < p->lane.ndone; w++)
    while (tm__ring_pop_spsc(&p->lane.done[w], &j)) take_back(p, j);
}

/* ------------------------------------------------------------------ scan */

/* A queued job whose hand-back is due: true if it was handed back. */
bool tm__held_release(tm_poller *p, tm_job *j) {
  int expected = TM_JOB_QUEUED;
  if (!atomic_compare_exchange_strong_explicit(&j->state, &expected,
                                               TM_JOB_RELEASED,
                                               memory_order_acq_rel,
                                               memory_order_acquire))
    return false; /* a worker started it meanwhile */
  held_remove(p, j);
  if (queue_settle(j->shard, j, 'r') != 0) finish(p, j); /* lease runs out */
  return true;
}

/* Whether a running handler's lease should still be extended. */
static bool keep_extending(tm_poller *p, tm_job *j, int64_t now,
                           bool stopping, int64_t drain_deadline) {
  if (j->overran || atomic_load_explicit(&j->lost, memory_order_relaxed))
    return false;
  const tm_topic *t = j->shard->topic;
  int64_t limit = tm__add_sat(j->started_ns, (int64_t)t->max_handler_ms * 1000000);
  int64_t keep = atomic_load_explicit(&j->keep_until_ns, memory_order_relaxed);
  if (keep > limit) limit = keep;
  if (stopping && drain_deadline < limit) limit = drain_deadline;
  if (now < limit) return true;
  j->overran = true;
  if (!stopping || now < drain_deadline) {
    tm__count(&j->shard->counters.overran, 1);
    tm__log_limited(&p->core->log, &p->log_overrun, TIMERS_LOG_WARN,
                    "topic '%s': a handler of timer '%s' runs past "
                    "max_handler_ms (%d ms); its lease is left to run out "
                    "and the timer will be delivered again",
                    t->name, j->id, t->max_handler_ms);
  }
  return false;
}

/* Queues what job j needs now; returns when it next needs a look. */
static int64_t scan_one(tm_poller *p, tm_job *j, int64_t now, bool stopping,
                        int64_t drain_deadline) {
  int64_t lease = (int64_t)j->shard->topic->lease_ms * 1000000;
  if (j->queued_op) return now + lease / 3; /* answered on the next turn */
  if (atomic_load_explicit(&j->state, memory_order_acquire) == TM_JOB_QUEUED) {
    int64_t due = tm__job_handback_ns(j, j->shard->topic->lease_ms);
    if ((stopping || now >= due) && tm__held_release(p, j)) return INT64_MAX;
    if (atomic_load_explicit(&j->state, memory_order_acquire) ==
        TM_JOB_QUEUED)
      return due;
  }
  int64_t due = j->refreshed_ns + lease / 3;
  if (now < due) return due;
  if (!keep_extending(p, j, now, stopping, drain_deadline)) return INT64_MAX;
  if (queue_settle(j->shard, j, 'e') != 0) return now + lease / 3;
  return now + lease / 3;
}

void tm__scan_held(tm_poller *p, bool stopping, int64_t drain_deadline) {
  int64_t now = tm__mono_ns();
  if (!stopping && now < p->next_scan_ns) return;
  int64_t next = INT64_MAX;
  for (tm_link *l = p->held.next, *n; l != &p->held; l = n) {
    n = l->next; /* the job may leave the list */
    int64_t at = scan_one(p, (tm_job *)l, now, stopping, drain_deadline);
    if (at < next) next = at;
  }
  p->next_scan_ns = next;
}

/* ---------------------------------------------------------------- replies */

static void extended(tm_poller *p, tm_job *j, const redisReply *r) {
  tm_counters *c = &j->shard->counters;
  if (r && r->type == REDIS_REPLY_STRING && r->len < TM_TOKEN_MAX) {
    memcpy(j->token, r->str, r->len + 1);
    j->refreshed_ns = tm__mono_ns();
    j->lease_until_ns =
        j->refreshed_ns + (int64_t)j->shard->topic->lease_ms * 1000000;
    tm__count(&c->extended, 1);
  } else if (r) {
    atomic_store_explicit(&j->lost, true, memory_order_relaxed);
    tm__count(&c->lease_lost, 1);
    tm__log_limited(&p->core->log, &p->log_lost, TIMERS_LOG_WARN,
                    "topic '%s': the lease of timer '%s' was lost while its "
                    "handler runs (another holder has it, or it was "
                    "replaced or cancelled); its outcome will be fenced off",
                    j->shard->topic->name, j->id);
  }
}

void tm__settled(tm_poller *p, tm_settle *st, const redisReply *r) {
  tm_job *j = st->job;
  bool fenced = r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
  j->queued_op = 0;
  switch (st->op) {
    case 'e':
      extended(p, j, r);
      return; /* still running: stays held */
    case 'c':
      if (fenced) tm__count(&j->shard->counters.stale_commits, 1);
      break;
    case 'r': /* a hand-back of ours (a RELEASE outcome counted already) */
      if (r && !fenced && !j->handled)
        tm__count(&j->shard->counters.released, 1);
      /* due again at once: look at the shard on the next turn */
      if (r && !fenced) tm__shard_due_at(j->shard, tm__secs_to_us(j->claimed_score));
      break;
    case 'n': /* due again after its retry delay, likely before the lease */
      if (r && !fenced)
        tm__shard_due_at(j->shard, tm__server_now_us(p->core) +
                                       (int64_t)j->retry_ms * 1000);
      break;
    case 'x':
      if (r && !fenced) tm__count(&j->shard->counters.dead_lettered, 1);
      if (fenced) tm__count(&j->shard->counters.stale_commits, 1);
      break;
    default:
      break;
  }
  finish(p, j);
}

bool tm__poller_busy(const tm_poller *p) {
  if (p->nheld || p->out) return true;
  for (size_t k = 0; k < p->nshards; k++)
    if (p->shards[k]->nsettle) return true;
  return false;
}
