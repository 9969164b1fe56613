/*
 * topic.h - a subscribed topic and its shards, as the pollers, workers and
 * stats see them. Created by subscribe(), frozen by start(), freed by
 * destroy(); the fields marked "owner" are touched by the shard's poller
 * thread only.
 */
#ifndef TIMERS_TOPIC_H
#define TIMERS_TOPIC_H

#include <stdatomic.h>
#include <stdint.h>

#include "keys.h"
#include "layout.h"
#include "log.h"
#include "timers.h"

struct tm_poller;
struct tm_lane;
struct tm_contention;
typedef struct tm_topic tm_topic;

/* Counters of one shard (timers_counters); relaxed atomics: readers only
 * need each value. */
typedef struct tm_counters {
  _Atomic uint64_t scheduled, claimed, fired, acked, nacked, rejected,
      stale_commits, claim_calls, contested, ring_full, redis_errors, extended,
      released, lease_lost, overran, deduplicated, self_healed, corrupt,
      dead_lettered;
} tm_counters;

/* One pending settle step of a shard (scripts.h, SETTLE): the job it is
 * about and the op ('c' commit, 'e' extend, 'r' release, 'n' nack). */
typedef struct tm_settle {
  struct tm_job *job;
  char op;
} tm_settle;

typedef struct tm_shard {
  tm_topic *topic;
  uint32_t index;
  struct tm_poller *owner;   /* the poller that claims it */
  struct tm_lane *lane;      /* the owner's queues (kicked by hints) */
  char *keys[TM_NKEYS];      /* owned */
  /* Earliest known score (µs, Redis clock), INT64_MAX when empty. Written
   * by the owner; read (relaxed) by producers and notify to decide whether
   * a hint is worth a kick. */
  _Atomic int64_t next_due_us;
  /* Earliest due time announced since the owner last looked (atomic min;
   * relaxed, the kick that follows orders it), INT64_MAX for none. */
  char pad0_[64];             /* hint_us: producers' cache line */
  _Atomic int64_t hint_us;
  char pad1_[64];
  /* owner: settle steps waiting for the next round trip */
  tm_settle *settle;
  size_t nsettle, settle_cap;
  /* owner: failing claims back off (capped exponential) */
  int64_t backoff_ns, retry_at_ns;
  tm_ratelimit errlog;
  /* written by the owner, read by stats (relaxed) */
  _Atomic int state;                 /* timers_shard_state */
  _Atomic uint32_t consecutive_errors;
  _Atomic int64_t last_claim_us;     /* Redis clock; 0: none yet */
  tm_counters counters;
} tm_shard;

struct tm_topic {
  char *name;                    /* owned */
  const tm_layout_ops *ops;      /* storage layout */
  timers_handler handler;
  void *userdata;
  int lease_ms, max_inflight, max_handler_ms; /* max_inflight 0: unlimited */
  int max_attempts;              /* 0: unlimited (no dead letters) */
  int retry_min_ms, retry_max_ms; /* NACK backoff */
  bool dead_letter_rejects;      /* REJECT dead-letters instead of dropping */
  bool at_most_once;             /* a claim removes; no lease, no settle */
  char claim_flags[8];           /* CLAIM's flags: the layout's, "m" */
  uint32_t nshards;
  tm_shard *shards;              /* owned, nshards */
  /* Claimed and not yet back from a worker, reserved by pollers before a
   * claim (relaxed: a counter compared with max_inflight; a brief overshoot
   * by a concurrent poller is given back at once). */
  _Atomic int inflight;
};

/* Tells the shard's owner a timer is due at `at_us` (Redis clock); kicks
 * it only if that is earlier than anything it knows. Thread-safe. */
void tm__shard_hint(tm_shard *s, int64_t at_us, struct tm_contention *c);

/* A settle step made a timer due at `at_us`: the owner's next look is no
 * later. Owner only (no kick: it is awake). */
static inline void tm__shard_due_at(tm_shard *s, int64_t at_us) {
  if (at_us < atomic_load_explicit(&s->next_due_us, memory_order_relaxed))
    atomic_store_explicit(&s->next_due_us, at_us, memory_order_relaxed);
}

/* Folds announced due times into next_due_us and returns it. Owner only. */
int64_t tm__shard_due(tm_shard *s);

#endif
