/*
 * worker.c - worker threads (worker.h).
 *
 * A worker takes a job from any poller's work ring (round-robin start, so
 * no poller is favoured) and claims it with a CAS QUEUED -> RUNNING: if
 * the poller handed it back meanwhile (RELEASED), the worker only returns
 * it. Idle workers spin briefly when there are cores to spare, then sleep
 * (lane.h, tm_idle); more workers than cores never spin.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "job.h"
#include "layout.h"
#include "topic.h"
#include "worker.h"

_Thread_local bool tm__in_handler;
/* The job whose handler runs on this thread (timers_extend_lease). */
static _Thread_local tm_job *current_job;
static _Thread_local const timers_message *current_msg;

typedef struct tm_worker_arg {
  tm_workers *ws;
  int index;
} tm_worker_arg;

static tm_job *pop_any(tm_workers *ws, unsigned *rotor) {
  tm_job *j;
  for (int k = 0; k < ws->nlanes; k++) {
    tm_lane *l = ws->lanes[(*rotor + (unsigned)k) % (unsigned)ws->nlanes];
    if (tm__ring_pop_spmc(&l->work, &j)) return j;
  }
  (*rotor)++;
  return NULL;
}

static bool work_or_quit(void *arg) {
  tm_workers *ws = arg;
  if (atomic_load_explicit(&ws->quit, memory_order_acquire)) return true;
  for (int k = 0; k < ws->nlanes; k++)
    if (tm__ring_size(&ws->lanes[k]->work)) return true;
  return false;
}

static void worker_idle(tm_workers *ws) {
  for (int spin = 0; ws->spin && spin < 200; spin++) {
    if (work_or_quit(ws)) return;
    ck_pr_stall();
  }
  tm__idle_sleep(&ws->idle, work_or_quit, ws, &ws->core->contention);
}

static timers_outcome call_handler(tm_job *j, const tm_core *core) {
  tm_topic *t = j->shard->topic;
  tm_decode_buf buf;
  tm_decoded d;
  if (tm__layout_decode(t->ops, j->blob, j->blob_len, j->claimed_score, &buf,
                        &d) != TIMERS_OK) {
    j->activate_at = j->claimed_score;
    return TIMERS_NACK; /* out of memory: delivered again later */
  }
  j->activate_at = d.activate_at;
  j->corrupt = d.corrupt;
  if (d.verdict != TM_DELIVER) { /* what the topic's other clients do */
    tm__decode_buf_free(&buf);
    return d.verdict == TM_DROP ? TIMERS_REJECT : TIMERS_NACK;
  }
  j->handled = true;
  timers_message m = {
      .topic = t->name,
      .id = j->id,
      .payload = d.payload,
      .payload_len = d.payload_len,
      .headers = d.headers,
      .header_count = d.header_count,
      .activate_at = d.activate_at,
      .attempt = j->attempt,
      .shard = j->shard->index,
  };
  j->fired_at = (double)tm__server_now_us(core) / 1e6;
  current_job = j, current_msg = &m;
  tm__in_handler = true;
  timers_outcome o = t->handler(&m, t->userdata);
  tm__in_handler = false;
  current_job = NULL, current_msg = NULL;
  tm__decode_buf_free(&buf);
  if (o != TIMERS_ACK && o != TIMERS_NACK && o != TIMERS_REJECT &&
      o != TIMERS_RELEASE) {
    tm__log(&core->log, TIMERS_LOG_ERROR,
            "topic '%s': handler returned %d, not ACK/NACK/REJECT/RELEASE; "
            "treated as NACK", t->name, (int)o);
    o = TIMERS_NACK;
  }
  return o;
}

/* stop() was called and its drain timeout has passed. */
static bool past_drain(tm_core *core) {
  return atomic_load_explicit(&core->state, memory_order_seq_cst) !=
             TM_RUNNING &&
         tm__mono_ns() >= atomic_load_explicit(&core->drain_deadline_ns,
                                               memory_order_relaxed);
}

/* Past its hand-back time (half the lease after the claim): the poller
 * hands such a job back, but cannot while it is cut off from Redis or
 * stuck in a slow turn; its lease may be over, the timer re-claimed,
 * replaced or cancelled. refreshed_ns is the claim's, written before the
 * job was pushed (a queued job is never extended). */
static bool past_handback(const tm_job *j, int64_t now) {
  const tm_topic *t = j->shard->topic;
  return !t->at_most_once && now >= tm__job_handback_ns(j, t->lease_ms);
}

static void run_job(tm_workers *ws, int index, tm_job *j, tm_lane *lane) {
  int expected = TM_JOB_QUEUED;
  j->started_ns = tm__mono_ns();
  /* Read before the CAS: once RUNNING, the poller may extend the lease
   * (refreshed_ns). */
  bool late = past_handback(j, j->started_ns);
  /* acq_rel: publishes started_ns to the poller, which reads it after
   * seeing RUNNING; a failed CAS means it was handed back (RELEASED). */
  if (atomic_compare_exchange_strong_explicit(&j->state, &expected,
                                              TM_JOB_RUNNING,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
    if ((past_drain(ws->core) && !j->shard->topic->at_most_once) ||
        late) {
      /* stop()'s drain is over (its outcome could not be committed), or
       * the job waited past its hand-back time: handed back unstarted
       * (at-most-once timers must run) */
      j->outcome = TIMERS_RELEASE;
    } else {
      j->outcome = call_handler(j, ws->core);
      j->ran_ns = tm__mono_ns() - j->started_ns;
    }
  }
  tm__ring_push_spsc(&lane->done[index], j); /* room: out <= capacity */
  /* Kick the poller only if no outcome was waiting already: at most one
   * kick per poller turn, and every outcome is committed within a turn. */
  if (!atomic_exchange_explicit(&lane->outcomes, 1, memory_order_acq_rel))
    tm__wake_kick(&lane->wake, &ws->core->contention);
}

static void *worker_main(void *arg) {
  tm_worker_arg a = *(tm_worker_arg *)arg;
  tm__free(arg);
  tm_workers *ws = a.ws;
  unsigned rotor = (unsigned)a.index;
  for (;;) {
    tm_job *j = pop_any(ws, &rotor);
    if (j) {
      run_job(ws, a.index, j, j->shard->lane);
      continue;
    }
    if (atomic_load_explicit(&ws->quit, memory_order_acquire)) break;
    worker_idle(ws);
  }
  return NULL;
}

int tm__workers_init(tm_workers *w, tm_core *core, tm_lane **lanes,
                     int nlanes, int n) {
  w->core = core;
  w->lanes = lanes;
  w->nlanes = nlanes;
  w->n = n;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  w->spin = cores > 0 && n < cores;
  tm__idle_init(&w->idle);
  atomic_init(&w->quit, 0);
  w->threads = tm__calloc((size_t)n, sizeof *w->threads);
  return w->threads ? TIMERS_OK : tm__error(TIMERS_ENOMEM, "out of memory");
}

int tm__workers_start(tm_workers *w) {
  for (; w->started < w->n; w->started++) {
    tm_worker_arg *a = tm__malloc(sizeof *a);
    if (!a) return tm__error(TIMERS_ENOMEM, "out of memory");
    *a = (tm_worker_arg){w, w->started};
    if (pthread_create(&w->threads[w->started], NULL, worker_main, a) != 0) {
      tm__free(a);
      return tm__error(TIMERS_ESYS, "cannot start worker thread %d",
                       w->started);
    }
  }
  return TIMERS_OK;
}

void tm__workers_stop(tm_workers *w) {
  atomic_store_explicit(&w->quit, 1, memory_order_release);
  tm__idle_wake_all(&w->idle);
  for (int i = 0; i < w->started; i++) pthread_join(w->threads[i], NULL);
  w->started = 0;
}

void tm__workers_destroy(tm_workers *w) {
  tm__free(w->threads);
  w->threads = NULL;
  if (w->core) tm__idle_destroy(&w->idle);
  w->core = NULL;
}

/* The job of msg, if msg is the message of the handler on this thread. */
static tm_job *job_of(const timers_message *msg, const char *fn) {
  if (msg && msg == current_msg && current_job) return current_job;
  tm__error(TIMERS_EINVAL, "%s: msg is not the message of the handler "
            "running on this thread", fn);
  return NULL;
}

int timers_retry_in(const timers_message *msg, int ms) {
  tm__error_clear();
  tm_job *j = job_of(msg, "timers_retry_in");
  if (!j) return TIMERS_EINVAL;
  if (ms < 0 || ms > 86400000)
    return tm__error(TIMERS_EINVAL, "timers_retry_in: ms = %d; allowed "
                     "0..86400000", ms);
  j->retry_ms = ms; /* read by the poller after the job is back */
  return TIMERS_OK;
}

int timers_set_reason(const timers_message *msg, const char *reason) {
  tm__error_clear();
  tm_job *j = job_of(msg, "timers_set_reason");
  if (!j) return TIMERS_EINVAL;
  if (!reason) return tm__error(TIMERS_EINVAL, "reason is NULL");
  snprintf(j->reason, sizeof j->reason, "%s", reason);
  return TIMERS_OK;
}

int timers_extend_lease(const timers_message *msg, int ms) {
  tm__error_clear();
  if (!job_of(msg, "timers_extend_lease")) return TIMERS_EINVAL;
  if (ms < 1 || ms > 86400000)
    return tm__error(TIMERS_EINVAL, "timers_extend_lease: ms = %d; allowed "
                     "1..86400000", ms);
  tm_job *j = current_job;
  if (atomic_load_explicit(&j->lost, memory_order_relaxed))
    return tm__error(TIMERS_ELEASE, "timer '%s': the lease was lost; this "
                     "run's outcome will be fenced off", j->id);
  int64_t until = tm__mono_ns() + (int64_t)ms * 1000000;
  int64_t cur = atomic_load_explicit(&j->keep_until_ns, memory_order_relaxed);
  while (until > cur &&
         !atomic_compare_exchange_weak_explicit(&j->keep_until_ns, &cur, until,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
  return TIMERS_OK;
}
