/*
 * stats.c - snapshots of the counters and the lateness histogram.
 *
 * Lateness buckets are log-linear: four per power of two, bucket i holding
 * (bound(i-1), bound(i)] with bound(i) = 2^((i + 8) / 4) microseconds, from
 * 4 us to about 4 hours; a quantile read from them is within 19%.
 */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "engine.h"
#include "error.h"
#include "stats.h"

uint64_t timers_lateness_bound_us(int i) {
  if (i < 0) i = 0;
  if (i >= TIMERS_LATENCY_BUCKETS) i = TIMERS_LATENCY_BUCKETS - 1;
  return (uint64_t)ceil(exp2((i + 8) / 4.0));
}

int timers_lateness_bucket(double seconds) {
  return tm__lateness_bucket(seconds);
}

int tm__lateness_bucket(double seconds) {
  double us = seconds * 1e6;
  if (!(us > 4.0)) return 0;
  int i = (int)ceil(4.0 * log2(us)) - 8;
  if (i < 0) return 0;
  return i < TIMERS_LATENCY_BUCKETS ? i : TIMERS_LATENCY_BUCKETS - 1;
}

static void add_counters(timers_counters *to, const tm_counters *c) {
#define TM_ADD_(f) to->f += atomic_load_explicit(&c->f, memory_order_relaxed)
  TM_ADD_(scheduled);
  TM_ADD_(claimed);
  TM_ADD_(fired);
  TM_ADD_(acked);
  TM_ADD_(nacked);
  TM_ADD_(rejected);
  TM_ADD_(stale_commits);
  TM_ADD_(claim_calls);
  TM_ADD_(contested);
  TM_ADD_(ring_full);
  TM_ADD_(redis_errors);
  TM_ADD_(extended);
  TM_ADD_(released);
  TM_ADD_(lease_lost);
  TM_ADD_(overran);
  TM_ADD_(deduplicated);
  TM_ADD_(self_healed);
  TM_ADD_(corrupt);
  TM_ADD_(dead_lettered);
#undef TM_ADD_
}

/* timers_counters is all uint64_t: summed field by field through memcpy. */
static void sum_into(timers_counters *to, const timers_counters *c) {
  for (size_t off = 0; off < sizeof *c; off += sizeof(uint64_t)) {
    uint64_t a, b;
    memcpy(&a, (const char *)to + off, sizeof a);
    memcpy(&b, (const char *)c + off, sizeof b);
    a += b;
    memcpy((char *)to + off, &a, sizeof a);
  }
}

static void shard_snapshot(timers_shard_stats *out, tm_shard *sh) {
  out->topic = sh->topic->name;
  out->shard = sh->index;
  add_counters(&out->counters, &sh->counters);
  out->state = (timers_shard_state)atomic_load_explicit(&sh->state,
                                                         memory_order_relaxed);
  if (out->state == TIMERS_SHARD_OK && sh->topic->owned_shards &&
      atomic_load_explicit(&sh->standby, memory_order_relaxed))
    out->state = TIMERS_SHARD_STANDBY;
  if (!atomic_load_explicit(&sh->owner->connected, memory_order_relaxed))
    out->state = TIMERS_SHARD_DISCONNECTED;
  out->consecutive_errors =
      atomic_load_explicit(&sh->consecutive_errors, memory_order_relaxed);
  int64_t last = atomic_load_explicit(&sh->last_claim_us, memory_order_relaxed);
  out->last_claim_at = last > 0 ? (double)last / 1e6 : 0;
}

static void contention_snapshot(timers_contention *out,
                                const tm_contention *c) {
#define TM_CONT_(f) out->f = atomic_load_explicit(&c->f, memory_order_relaxed)
  TM_CONT_(poller_sleeps);
  TM_CONT_(poller_kicks);
  TM_CONT_(worker_sleeps);
  TM_CONT_(worker_wakeups);
  TM_CONT_(lock_waits);
  TM_CONT_(lock_wait_ns);
  TM_CONT_(cas_retries);
#undef TM_CONT_
}

static void poller_snapshot(timers_stats *s, const tm_poller *p) {
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++)
    s->lateness[b] += atomic_load_explicit(&p->lateness[b],
                                           memory_order_relaxed);
  s->inflight += atomic_load_explicit(&p->inflight, memory_order_relaxed);
  s->lateness_sum_us +=
      atomic_load_explicit(&p->lateness_sum_us, memory_order_relaxed);
}

int timers_stats_get(timers_engine *e, timers_stats **out) {
  tm__error_clear();
  if (!out) return tm__error(TIMERS_EINVAL, "out is NULL");
  *out = NULL;
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  timers_stats *s = tm__calloc(1, sizeof *s);
  if (!s) return tm__error(TIMERS_ENOMEM, "out of memory");
  /* Shards exist once started; before that only totals. */
  size_t n = atomic_load_explicit(&e->core.state, memory_order_acquire) ==
                     TM_CREATED
                 ? 0
                 : e->nshards;
  s->shards = tm__calloc(n, sizeof *s->shards);
  if (!s->shards) {
    tm__free(s);
    return tm__error(TIMERS_ENOMEM, "out of memory");
  }
  s->shard_count = n;
  for (size_t i = 0; i < n; i++) {
    shard_snapshot(&s->shards[i], e->shards[i]);
    sum_into(&s->total, &s->shards[i].counters);
  }
  s->total.scheduled += atomic_load_explicit(&e->scheduled_other,
                                             memory_order_relaxed);
  s->total.deduplicated += atomic_load_explicit(&e->deduplicated_other,
                                                memory_order_relaxed);
  s->total.redis_errors += atomic_load_explicit(&e->core.conn_errors,
                                                memory_order_relaxed);
  contention_snapshot(&s->contention, &e->core.contention);
  for (int p = 0; n && p < e->npollers; p++)
    poller_snapshot(s, &e->pollers[p]);
  *out = s;
  return TIMERS_OK;
}

void timers_stats_free(timers_stats *s) {
  if (!s) return;
  tm__free(s->shards);
  tm__free(s);
}

double timers_stats_lateness_ms(const timers_stats *s, double q) {
  if (!s) return 0;
  uint64_t total = 0;
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++) total += s->lateness[b];
  if (total == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  uint64_t rank = (uint64_t)ceil(q * (double)total), seen = 0;
  if (rank == 0) rank = 1;
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++) {
    seen += s->lateness[b];
    if (seen >= rank) return (double)timers_lateness_bound_us(b) / 1000.0;
  }
  return (double)timers_lateness_bound_us(TIMERS_LATENCY_BUCKETS - 1) / 1000.0;
}
