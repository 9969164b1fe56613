/*
 * engine.c - lifecycle: create, subscribe, start, stop, destroy.
 *
 * States move one way: CREATED -> RUNNING -> STOPPING -> STOPPED (or
 * CREATED -> STOPPED). Subscriptions are frozen by start(), so the topic
 * table is read without locks afterwards.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "keys.h"
#include "validate.h"

double timers_now(void) { return tm__wall(); }

static int copy_names(tm_core *core, const timers_config *cfg) {
  tm_names *n = &core->names;
  n->prefix = tm__strdup(cfg->key_prefix ? cfg->key_prefix : "timers");
  n->fs_timeline = tm__strdup(cfg->faststream_timeline_key
                                  ? cfg->faststream_timeline_key
                                  : "timers_timeline");
  n->fs_payloads = tm__strdup(cfg->faststream_payloads_key
                                  ? cfg->faststream_payloads_key
                                  : "timers_payloads");
  if (!n->prefix || !n->fs_timeline || !n->fs_payloads)
    return tm__error(TIMERS_ENOMEM, "out of memory");
  core->cfg.key_prefix = n->prefix;
  core->cfg.faststream_timeline_key = n->fs_timeline;
  core->cfg.faststream_payloads_key = n->fs_payloads;
  return TIMERS_OK;
}

static int copy_config(tm_core *core, const timers_config *cfg) {
  core->cfg = *cfg;
  core->log = (tm_log){cfg->log, cfg->log_userdata, cfg->log_level};
  int rc = copy_names(core, cfg);
  if (rc != TIMERS_OK) return rc;
  core->cfg.redis = NULL; /* parsed into core->redis; not kept */
  core->cfg.username = core->cfg.password = NULL;
  core->redis.username = tm__strdup(cfg->username);
  core->redis.password = tm__strdup(cfg->password);
  if ((cfg->username && !core->redis.username) ||
      (cfg->password && !core->redis.password))
    return tm__error(TIMERS_ENOMEM, "out of memory");
  core->redis.db = cfg->db;
  core->redis.connect_timeout_ms = cfg->connect_timeout_ms;
  core->redis.command_timeout_ms = cfg->command_timeout_ms;
  return tm__redis_opts_parse(&core->redis, cfg->redis);
}

int timers_engine_create(const timers_config *cfg, timers_engine **out) {
  tm__error_clear();
  if (!out) return tm__error(TIMERS_EINVAL, "out is NULL");
  *out = NULL;
  if (!cfg) return tm__error(TIMERS_EINVAL, "config is NULL");
  int rc = tm__config_check(cfg);
  if (rc != TIMERS_OK) return rc;
  timers_engine *e = tm__calloc(1, sizeof *e);
  if (!e) return tm__error(TIMERS_ENOMEM, "out of memory");
  atomic_init(&e->core.state, TM_CREATED);
  tm__id_generate(e->core.member_id);
  tm__topics_init(&e->topics);
  tm__pool_init(&e->pool, &e->core);
  tm__notify_init(&e->notify, &e->core, &e->topics);
  if ((rc = copy_config(&e->core, cfg)) != TIMERS_OK) {
    timers_engine_destroy(e);
    return rc;
  }
  *out = e;
  return TIMERS_OK;
}

/* What subscribe and declare both require of a topic and its options. */
static int check_new_topic(timers_engine *e, const char *topic,
                           const timers_subscribe_options *opts,
                           const char *what) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__subscribe_options_check(opts);
  if (rc == TIMERS_OK) rc = tm__layout_ops(opts->layout)->check_topic(topic);
  if (rc != TIMERS_OK) return rc;
  if (atomic_load_explicit(&e->core.state, memory_order_acquire) != TM_CREATED)
    return tm__error(TIMERS_ESTATE, "%s '%s' after start", what, topic);
  return TIMERS_OK;
}

int timers_subscribe(timers_engine *e, const char *topic,
                     timers_handler handler, void *userdata,
                     const timers_subscribe_options *opts) {
  tm__error_clear();
  timers_subscribe_options none = {0};
  if (!opts) opts = &none;
  int rc = check_new_topic(e, topic, opts, "subscribe to");
  if (rc != TIMERS_OK) return rc;
  if (!handler) return tm__error(TIMERS_EINVAL, "handler is NULL");
  return tm__topics_subscribe(&e->topics, &e->core, topic, handler, userdata,
                              opts);
}

int timers_declare(timers_engine *e, const char *topic,
                   const timers_subscribe_options *opts) {
  tm__error_clear();
  timers_subscribe_options none = {0};
  if (!opts) opts = &none;
  int rc = check_new_topic(e, topic, opts, "declare");
  if (rc != TIMERS_OK) return rc;
  return tm__topics_declare(&e->topics, &e->core, topic, opts);
}

/* Each subscribed topic's shard count must match the one in Redis. */
static int check_shard_counts(tm_conn *c, void *arg) {
  timers_engine *e = arg;
  for (size_t i = 0; i < e->topics.nsubscribed; i++) {
    tm_topic *t = e->topics.subscribed[i];
    tm_layout l;
    int rc = tm__topics_resolve(&e->topics, &e->core, c, t->name, true, &l);
    if (rc != TIMERS_OK) return rc;
    if (l.nshards != t->nshards)
      return tm__error(TIMERS_ESHARDS,
                       "topic '%s' has %u shards in Redis, this engine is "
                       "configured with %u; use the recorded count or "
                       "migrate", t->name, l.nshards, t->nshards);
  }
  return TIMERS_OK;
}

/* Flattens shards and deals them to pollers round-robin. */
static int assign_shards(timers_engine *e) {
  size_t n = 0;
  for (size_t i = 0; i < e->topics.nsubscribed; i++)
    n += e->topics.subscribed[i]->nshards;
  e->shards = tm__calloc(n, sizeof *e->shards);
  if (!e->shards) return tm__error(TIMERS_ENOMEM, "out of memory");
  for (size_t i = 0; i < e->topics.nsubscribed; i++)
    for (uint32_t s = 0; s < e->topics.subscribed[i]->nshards; s++)
      e->shards[e->nshards++] = &e->topics.subscribed[i]->shards[s];
  for (size_t g = 0; g < e->nshards; g++) {
    tm_poller *p = &e->pollers[g % (size_t)e->npollers];
    e->shards[g]->owner = p;
    e->shards[g]->lane = &p->lane;
    p->shards[p->nshards++] = e->shards[g];
  }
  return TIMERS_OK;
}

static int create_parts(timers_engine *e) {
  const timers_config *cfg = &e->core.cfg;
  size_t total = 0;
  for (size_t i = 0; i < e->topics.nsubscribed; i++)
    total += e->topics.subscribed[i]->nshards;
  e->pollers = tm__calloc((size_t)cfg->pollers, sizeof *e->pollers);
  e->lanes = tm__calloc((size_t)cfg->pollers, sizeof *e->lanes);
  if (!e->pollers || !e->lanes) return tm__error(TIMERS_ENOMEM, "out of memory");
  for (; e->npollers < cfg->pollers; e->npollers++) {
    tm_poller *p = &e->pollers[e->npollers];
    int rc = tm__poller_init(p, &e->core, &e->workers.idle, e->npollers,
                             cfg->workers, cfg->pollers, total);
    e->lanes[e->npollers] = &p->lane;
    if (rc != TIMERS_OK) {
      e->npollers++; /* destroy frees what it got */
      return rc;
    }
  }
  int rc = tm__workers_init(&e->workers, &e->core, e->lanes, e->npollers,
                            cfg->workers);
  return rc == TIMERS_OK ? assign_shards(e) : rc;
}

static void engine_stop(timers_engine *e);

static int spawn_threads(timers_engine *e) {
  for (int i = 0; i < e->npollers; i++) {
    int rc = tm__poller_start(&e->pollers[i]);
    if (rc != TIMERS_OK) return rc;
  }
  int rc = tm__workers_start(&e->workers);
  return rc == TIMERS_OK ? tm__notify_start(&e->notify) : rc;
}

static void join_threads(timers_engine *e) {
  for (int i = 0; i < e->npollers; i++) tm__poller_join(&e->pollers[i]);
  tm__workers_stop(&e->workers);
  tm__notify_stop(&e->notify);
}

int timers_engine_start(timers_engine *e) {
  tm__error_clear();
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (atomic_load_explicit(&e->core.state, memory_order_acquire) != TM_CREATED)
    return tm__error(TIMERS_ESTATE, "engine was already started");
  int rc = tm__pool_run(&e->pool, check_shard_counts, e);
  if (rc == TIMERS_OK) rc = create_parts(e);
  if (rc != TIMERS_OK) return rc;
  /* release: the frozen topic table and parts, to threads that read the
   * state (producers' hints) */
  atomic_store_explicit(&e->core.state, TM_RUNNING, memory_order_release);
  if ((rc = spawn_threads(e)) != TIMERS_OK) {
    engine_stop(e);
    return rc;
  }
  tm__log(&e->core.log, TIMERS_LOG_INFO,
          "started: %zu topics, %zu shards, %d pollers, %d workers",
          e->topics.nsubscribed, e->nshards, e->npollers, e->workers.n);
  return TIMERS_OK;
}

/* Stops if running; leaves the caller's error detail alone (destroy). */
static void engine_stop(timers_engine *e) {
  int expected = TM_RUNNING;
  /* The deadline is written before the state's seq_cst CAS, which pollers
   * read (seq_cst) before the deadline. */
  atomic_store_explicit(&e->core.drain_deadline_ns,
                        tm__mono_ns() +
                            (int64_t)e->core.cfg.drain_timeout_ms * 1000000,
                        memory_order_relaxed);
  if (!atomic_compare_exchange_strong_explicit(&e->core.state, &expected,
                                               TM_STOPPING, memory_order_seq_cst,
                                               memory_order_seq_cst)) {
    expected = TM_CREATED;
    atomic_compare_exchange_strong_explicit(&e->core.state, &expected,
                                            TM_STOPPED, memory_order_seq_cst,
                                            memory_order_seq_cst);
    return;
  }
  for (int i = 0; i < e->npollers; i++) tm__poller_kick(&e->pollers[i]);
  join_threads(e);
  atomic_store_explicit(&e->core.state, TM_STOPPED, memory_order_release);
  tm__log(&e->core.log, TIMERS_LOG_INFO, "stopped");
}

int timers_engine_stop(timers_engine *e) {
  tm__error_clear();
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (tm__in_handler)
    return tm__error(TIMERS_ESTATE, "stop from inside a handler would wait "
                                    "for itself; stop from another thread");
  engine_stop(e);
  return TIMERS_OK;
}

void timers_engine_destroy(timers_engine *e) {
  if (!e || tm__in_handler) return; /* from a handler: refused, see stop */
  engine_stop(e);
  for (int i = 0; e->pollers && i < e->npollers; i++)
    tm__poller_destroy(&e->pollers[i]);
  tm__free(e->pollers);
  tm__free(e->lanes);
  tm__workers_destroy(&e->workers);
  tm__notify_destroy(&e->notify);
  tm__topics_free(&e->topics);
  tm__free(e->shards);
  tm__pool_free(&e->pool);
  tm__redis_opts_free(&e->core.redis);
  tm__free(e->core.names.prefix);
  tm__free(e->core.names.fs_timeline);
  tm__free(e->core.names.fs_payloads);
  tm__free(e);
}

tm_shard *tm__local_shard(timers_engine *e, const char *topic,
                          const tm_layout *l, uint32_t shard) {
  if (atomic_load_explicit(&e->core.state, memory_order_acquire) != TM_RUNNING)
    return NULL;
  tm_topic *t = tm__topics_find(&e->topics, topic);
  return t && t->nshards == l->nshards && t->ops == l->ops ? &t->shards[shard]
                                                           : NULL;
}
