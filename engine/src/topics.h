/*
 * topics.h - the topic registry: subscribed topics (with their shards),
 * topics declared for producing only, and the resolved layouts of other
 * topics this engine has written to or read (a cache of their recorded
 * shard counts).
 *
 * Thread safety: subscribe/declare fill the first two before start(), which
 * freezes them; afterwards they are read without locks. The cache has its
 * own lock and may be used from any thread.
 */
#ifndef TIMERS_TOPICS_H
#define TIMERS_TOPICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "core.h"
#include "layout.h"
#include "topic.h"

typedef struct tm_named_layout {
  char *name;                    /* owned */
  tm_layout layout;
} tm_named_layout;

typedef struct tm_topics {
  tm_topic **subscribed;         /* owned */
  size_t nsubscribed;
  tm_named_layout *declared;     /* owned */
  size_t ndeclared;
  pthread_mutex_t lock;          /* guards the cache */
  tm_named_layout *cache;
  size_t ncache, cache_cap;
} tm_topics;

void tm__topics_init(tm_topics *r);
void tm__topics_free(tm_topics *r);

tm_topic *tm__topics_find(const tm_topics *r, const char *name);

/* The layout this engine was told a topic has (subscribe or declare),
 * else NATIVE with the engine's shard count. Thread-safe. */
tm_layout tm__topics_configured(const tm_topics *r, const tm_core *core,
                                const char *name);

/* Checks a topic name by the rules of its configured layout. */
int tm__topics_check(const tm_topics *r, const tm_core *core,
                     const char *name);

/* A topic's layout with its shard count as recorded in Redis (one round
 * trip on c unless known). record: a NATIVE topic with no recorded count
 * gets the configured one recorded (writers); otherwise nothing is written
 * and an unknown topic is assumed to have the configured count (readers
 * find nothing there). A count in Redis that is not an integer in
 * 1..TIMERS_SHARDS_MAX is an error naming the key and value. Thread-safe. */
int tm__topics_resolve(tm_topics *r, const tm_core *core, tm_conn *c,
                       const char *name, bool record, tm_layout *out);

/* Records (first caller wins) and reads a topic's shard count: want 0 only
 * reads (*got 0: none recorded). The errors of tm__topics_resolve. */
int tm__meta_shards(tm_conn *c, const char *prefix, const char *topic,
                    uint32_t want, uint32_t *got);

/* Adds a subscribed topic (copies name; TIMERS_EEXIST / ENOMEM). */
int tm__topics_subscribe(tm_topics *r, const tm_core *core, const char *name,
                         timers_handler h, void *userdata,
                         const timers_subscribe_options *o);
int tm__topics_declare(tm_topics *r, const tm_core *core, const char *name,
                       const timers_subscribe_options *o);

#endif
