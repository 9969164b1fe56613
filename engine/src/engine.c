/*
 * engine.c - lifecycle: create, subscribe, start, stop, destroy.
 *
 * States move one way: CREATED -> RUNNING -> STOPPING -> STOPPED (or
 * CREATED -> STOPPED). Subscriptions are frozen by start(), so the topic
 * table is read without locks afterwards.
 */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "keys.h"
#include "validate.h"

double timers_now(void) { return tm__wall(); }

void tm__log(timers_engine *e, timers_log_level lvl, const char *fmt, ...) {
  if (!e->cfg.log || lvl > e->cfg.log_level) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  e->cfg.log(e->cfg.log_userdata, lvl, msg);
}

static int copy_config(timers_engine *e, const timers_config *cfg) {
  e->cfg = *cfg;
  e->key_prefix = tm__strdup(cfg->key_prefix ? cfg->key_prefix : "timers");
  e->cfg.key_prefix = e->key_prefix;
  e->fs_timeline = tm__strdup(cfg->faststream_timeline_key
                                  ? cfg->faststream_timeline_key
                                  : "timers_timeline");
  e->fs_payloads = tm__strdup(cfg->faststream_payloads_key
                                  ? cfg->faststream_payloads_key
                                  : "timers_payloads");
  e->cfg.faststream_timeline_key = e->fs_timeline;
  e->cfg.faststream_payloads_key = e->fs_payloads;
  if (!e->fs_timeline || !e->fs_payloads)
    return tm__error(TIMERS_ENOMEM, "out of memory");
  e->cfg.redis = NULL; /* parsed into e->redis; not kept */
  e->cfg.username = e->cfg.password = NULL;
  e->redis.username = tm__strdup(cfg->username);
  e->redis.password = tm__strdup(cfg->password);
  if (!e->key_prefix || (cfg->username && !e->redis.username) ||
      (cfg->password && !e->redis.password))
    return tm__error(TIMERS_ENOMEM, "out of memory");
  e->redis.db = cfg->db;
  e->redis.connect_timeout_ms = cfg->connect_timeout_ms;
  e->redis.command_timeout_ms = cfg->command_timeout_ms;
  return tm__redis_opts_parse(&e->redis, cfg->redis);
}

int timers_engine_create(const timers_config *cfg, timers_engine **out) {
  if (!out) return tm__error(TIMERS_EINVAL, "out is NULL");
  *out = NULL;
  if (!cfg) return tm__error(TIMERS_EINVAL, "config is NULL");
  int rc = tm__config_check(cfg);
  if (rc != TIMERS_OK) return rc;
  timers_engine *e = tm__calloc(1, sizeof *e);
  if (!e) return tm__error(TIMERS_ENOMEM, "out of memory");
  pthread_mutex_init(&e->cache_lock, NULL);
  pthread_mutex_init(&e->pool_lock, NULL);
  pthread_mutex_init(&e->wlock, NULL);
  tm__cond_init_monotonic(&e->wcond);
  pthread_mutex_init(&e->notify_lock, NULL);
  e->notify_fd = -1;
  atomic_init(&e->state, TM_CREATED);
  if ((rc = copy_config(e, cfg)) != TIMERS_OK) {
    timers_engine_destroy(e);
    return rc;
  }
  *out = e;
  return TIMERS_OK;
}

tm_topic *tm__topic_find(timers_engine *e, const char *name) {
  for (size_t i = 0; i < e->ntopics; i++)
    if (strcmp(e->topics[i]->name, name) == 0) return e->topics[i];
  return NULL;
}

static void shard_free(tm_shard *s) {
  tm__free(s->zkey);
  tm__free(s->pkey);
  tm__free(s->akey);
  tm__free(s->commits);
}

static void topic_free(tm_topic *t) {
  if (!t) return;
  for (uint32_t i = 0; t->shards && i < t->nshards; i++)
    shard_free(&t->shards[i]);
  tm__free(t->shards);
  tm__free(t->name);
  tm__free(t);
}

/* A topic's shard count from its options: FASTSTREAM has exactly one. */
static uint32_t tm__options_shards(const timers_engine *e,
                                   const timers_subscribe_options *o) {
  if (o->layout == TIMERS_LAYOUT_FASTSTREAM) return 1;
  return (uint32_t)(o->shards ? o->shards : e->cfg.shards);
}

static tm_topic *topic_new(timers_engine *e, const char *name,
                           timers_handler h, void *ud,
                           const timers_subscribe_options *o) {
  tm_topic *t = tm__calloc(1, sizeof *t);
  if (!t) return NULL;
  t->engine = e;
  t->name = tm__strdup(name);
  t->handler = h;
  t->userdata = ud;
  t->lease_ms = o->lease_ms ? o->lease_ms : e->cfg.lease_ms;
  t->max_inflight = o->max_inflight;
  t->layout = o->layout;
  tm_layout l = {tm__options_shards(e, o), o->layout};
  t->nshards = l.nshards;
  t->shards = tm__calloc(t->nshards, sizeof *t->shards);
  if (!t->name || !t->shards) goto fail;
  for (uint32_t i = 0; i < t->nshards; i++) {
    tm_shard *s = &t->shards[i];
    char keys[3][TM_KEY_MAX];
    s->topic = t;
    s->index = i;
    atomic_init(&s->next_due_us, 0); /* unknown: look at once */
    atomic_init(&s->hint_us, INT64_MAX);
    tm__topic_keys(e, &l, name, i, keys);
    s->zkey = tm__strdup(keys[0]);
    s->pkey = tm__strdup(keys[1]);
    s->akey = tm__strdup(keys[2]);
    if (!s->zkey || !s->pkey || !s->akey) goto fail;
  }
  return t;
fail:
  topic_free(t);
  return NULL;
}

/* What subscribe and declare both require of a topic and its options. */
static int check_new_topic(timers_engine *e, const char *topic,
                           const timers_subscribe_options *opts,
                           const char *what) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic(topic);
  if (rc == TIMERS_OK) rc = tm__subscribe_options_check(opts);
  if (rc != TIMERS_OK) return rc;
  if (atomic_load(&e->state) != TM_CREATED)
    return tm__error(TIMERS_ESTATE, "%s '%s' after start", what, topic);
  if (tm__topic_find(e, topic))
    return tm__error(TIMERS_EEXIST, "topic '%s' is already subscribed", topic);
  for (size_t i = 0; i < e->ndeclared; i++)
    if (strcmp(e->declared[i].topic, topic) == 0)
      return tm__error(TIMERS_EEXIST, "topic '%s' is already declared", topic);
  return TIMERS_OK;
}

int timers_subscribe(timers_engine *e, const char *topic,
                     timers_handler handler, void *userdata,
                     const timers_subscribe_options *opts) {
  timers_subscribe_options none = {0};
  if (!opts) opts = &none;
  int rc = check_new_topic(e, topic, opts, "subscribe to");
  if (rc != TIMERS_OK) return rc;
  if (!handler) return tm__error(TIMERS_EINVAL, "handler is NULL");
  tm_topic **grown = tm__realloc(e->topics, sizeof *grown * (e->ntopics + 1));
  if (!grown) return tm__error(TIMERS_ENOMEM, "out of memory");
  e->topics = grown;
  tm_topic *t = topic_new(e, topic, handler, userdata, opts);
  if (!t) return tm__error(TIMERS_ENOMEM, "out of memory");
  e->topics[e->ntopics++] = t;
  return TIMERS_OK;
}

int timers_declare(timers_engine *e, const char *topic,
                   const timers_subscribe_options *opts) {
  timers_subscribe_options none = {0};
  if (!opts) opts = &none;
  int rc = check_new_topic(e, topic, opts, "declare");
  if (rc != TIMERS_OK) return rc;
  tm_topic_cache_entry *g =
      tm__realloc(e->declared, sizeof *g * (e->ndeclared + 1));
  if (!g) return tm__error(TIMERS_ENOMEM, "out of memory");
  e->declared = g;
  char *name = tm__strdup(topic);
  if (!name) return tm__error(TIMERS_ENOMEM, "out of memory");
  e->declared[e->ndeclared++] =
      (tm_topic_cache_entry){name, {tm__options_shards(e, opts), opts->layout}};
  return TIMERS_OK;
}

/* Each subscribed topic's shard count must match the one in Redis. */
static int check_shard_counts(timers_engine *e, tm_conn *c, void *arg) {
  (void)arg;
  int rc = TIMERS_OK;
  for (size_t i = 0; rc == TIMERS_OK && i < e->ntopics; i++) {
    tm_topic *t = e->topics[i];
    uint32_t got = 0;
    if (t->layout == TIMERS_LAYOUT_FASTSTREAM) continue; /* one shard */
    rc = tm__meta_shards(c, e->key_prefix, t->name, t->nshards, &got);
    if (rc == TIMERS_OK && got != t->nshards)
      rc = tm__error(TIMERS_ESHARDS,
                     "topic '%s' has %u shards in Redis, this engine is "
                     "configured with %u; use the recorded count or migrate",
                     t->name, got, t->nshards);
  }
  return rc;
}

/* Flattens shards and deals them to pollers round-robin. */
static int assign_shards(timers_engine *e) {
  size_t n = 0;
  for (size_t i = 0; i < e->ntopics; i++) n += e->topics[i]->nshards;
  e->shards = tm__calloc(n, sizeof *e->shards);
  if (!e->shards) return tm__error(TIMERS_ENOMEM, "out of memory");
  for (size_t i = 0; i < e->ntopics; i++)
    for (uint32_t s = 0; s < e->topics[i]->nshards; s++)
      e->shards[e->nshards++] = &e->topics[i]->shards[s];
  for (size_t g = 0; g < e->nshards; g++) {
    tm_poller *p = &e->pollers[g % (size_t)e->npollers];
    e->shards[g]->owner = p;
    p->shards[p->nshards++] = e->shards[g];
  }
  return TIMERS_OK;
}

static int create_pollers(timers_engine *e) {
  e->npollers = e->cfg.pollers;
  e->pollers = tm__calloc((size_t)e->npollers, sizeof *e->pollers);
  if (!e->pollers) return tm__error(TIMERS_ENOMEM, "out of memory");
  size_t total = 0;
  for (size_t i = 0; i < e->ntopics; i++) total += e->topics[i]->nshards;
  for (int i = 0; i < e->npollers; i++) {
    int rc = tm__poller_init(&e->pollers[i], e, i);
    if (rc != TIMERS_OK) return rc;
    e->pollers[i].shards = tm__calloc(total, sizeof(tm_shard *));
    if (!e->pollers[i].shards) return tm__error(TIMERS_ENOMEM, "out of memory");
  }
  return assign_shards(e);
}

static int spawn_threads(timers_engine *e) {
  for (int i = 0; i < e->npollers; i++)
    if (pthread_create(&e->pollers[i].thread, NULL, tm__poller_main,
                       &e->pollers[i]) != 0)
      return tm__error(TIMERS_ESYS, "cannot start poller thread %d", i);
  e->workers = tm__calloc((size_t)e->cfg.workers, sizeof *e->workers);
  if (!e->workers) return tm__error(TIMERS_ENOMEM, "out of memory");
  for (; e->nworkers < e->cfg.workers; e->nworkers++)
    if (pthread_create(&e->workers[e->nworkers], NULL, tm__worker_main, e))
      return tm__error(TIMERS_ESYS, "cannot start worker thread");
  if (e->ntopics) {
    if (pthread_create(&e->notify_thread, NULL, tm__notify_main, e) != 0)
      return tm__error(TIMERS_ESYS, "cannot start the notify thread");
    e->notify_started = 1;
  }
  return TIMERS_OK;
}

static void join_threads(timers_engine *e) {
  for (int i = 0; i < e->npollers; i++)
    if (e->pollers[i].thread) pthread_join(e->pollers[i].thread, NULL);
  atomic_store(&e->workers_quit, 1);
  tm__workers_wake(e);
  for (int i = 0; i < e->nworkers; i++) pthread_join(e->workers[i], NULL);
  e->nworkers = 0;
  if (e->notify_started) {
    tm__notify_stop(e);
    pthread_join(e->notify_thread, NULL);
    e->notify_started = 0;
  }
}

int timers_engine_start(timers_engine *e) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (atomic_load(&e->state) != TM_CREATED)
    return tm__error(TIMERS_ESTATE, "engine was already started");
  int rc = tm__run_op(e, check_shard_counts, NULL);
  if (rc == TIMERS_OK) rc = create_pollers(e);
  if (rc != TIMERS_OK) return rc;
  atomic_store(&e->state, TM_RUNNING);
  if ((rc = spawn_threads(e)) != TIMERS_OK) {
    char why[256];
    snprintf(why, sizeof why, "%s", timers_last_error());
    timers_engine_stop(e);
    return tm__error(rc, "%s", why);
  }
  tm__log(e, TIMERS_LOG_INFO, "started: %zu topics, %zu shards, %d pollers, "
          "%d workers", e->ntopics, e->nshards, e->npollers, e->nworkers);
  return TIMERS_OK;
}

int timers_engine_stop(timers_engine *e) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (tm__in_handler)
    return tm__error(TIMERS_ESTATE, "stop from inside a handler would wait "
                                    "for itself; stop from another thread");
  int expected = TM_RUNNING;
  e->drain_deadline_ns =
      tm__mono_ns() + (int64_t)e->cfg.drain_timeout_ms * 1000000;
  if (!atomic_compare_exchange_strong(&e->state, &expected, TM_STOPPING)) {
    expected = TM_CREATED;
    atomic_compare_exchange_strong(&e->state, &expected, TM_STOPPED);
    return TIMERS_OK;
  }
  for (int i = 0; i < e->npollers; i++) tm__poller_kick(&e->pollers[i]);
  join_threads(e);
  atomic_store(&e->state, TM_STOPPED);
  tm__log(e, TIMERS_LOG_INFO, "stopped");
  return TIMERS_OK;
}

void timers_engine_destroy(timers_engine *e) {
  if (!e || tm__in_handler) return; /* from a handler: refused, see stop */
  timers_engine_stop(e);
  for (int i = 0; e->pollers && i < e->npollers; i++)
    tm__poller_destroy(&e->pollers[i]);
  tm__free(e->pollers);
  tm__free(e->workers);
  for (size_t i = 0; i < e->ntopics; i++) topic_free(e->topics[i]);
  tm__free(e->topics);
  tm__free(e->shards);
  for (size_t i = 0; i < e->ncache; i++) tm__free(e->cache[i].topic);
  tm__free(e->cache);
  for (size_t i = 0; i < e->ndeclared; i++) tm__free(e->declared[i].topic);
  tm__free(e->declared);
  tm__free(e->fs_timeline);
  tm__free(e->fs_payloads);
  tm__pool_free(e);
  tm__redis_opts_free(&e->redis);
  tm__free(e->key_prefix);
  pthread_mutex_destroy(&e->cache_lock);
  pthread_mutex_destroy(&e->pool_lock);
  pthread_mutex_destroy(&e->wlock);
  pthread_cond_destroy(&e->wcond);
  pthread_mutex_destroy(&e->notify_lock);
  tm__free(e);
}
