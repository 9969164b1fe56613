/*
 * engine.h - the engine handle: it owns every part and is what the public
 * API functions (engine.c, producer.c, inspect.c, pending.c, stats.c) work
 * on. The parts know nothing of it: each gets the pieces it needs.
 *
 *  engine.c   -> topics, pool, poller, worker, notify (lifecycle)
 *  producer.c -> topics, pool, layout, topic hints   (schedule, cancel, ...)
 *  poller.c, turn.c, inflight.c -> core, lane, topic, job, conn, scripts
 *  worker.c   -> core, lane, topic, job, layout
 *  notify.c   -> core, topics, topic hints
 */
#ifndef TIMERS_ENGINE_H
#define TIMERS_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "core.h"
#include "notify.h"
#include "poller.h"
#include "pool.h"
#include "topics.h"
#include "worker.h"

struct timers_engine {
  tm_core core;
  tm_topics topics;
  tm_pool pool;
  tm_shard **shards;             /* every subscribed shard; frozen at start */
  size_t nshards;
  tm_poller *pollers;            /* owned, npollers */
  int npollers;
  tm_lane **lanes;               /* the pollers' lanes, for the workers */
  tm_workers workers;
  tm_notify notify;
  /* Scheduled to topics this engine does not poll (relaxed counters). */
  _Atomic uint64_t scheduled_other, deduplicated_other;
};

/* Subscribed and RUNNING: the local shard of a timer, to hint its poller. */
tm_shard *tm__local_shard(timers_engine *e, const char *topic,
                          const tm_layout *l, uint32_t shard);

/* A topic (and id, when not NULL) by the rules of the topic's configured
 * layout; e must not be NULL. */
int tm__check_topic_id(timers_engine *e, const char *topic, const char *id);
/* TIMERS_EINVAL (no I/O) when the topic's configured layout has no
 * dead-letter set. */
int tm__check_dead_letters(timers_engine *e, const char *topic);

#endif
