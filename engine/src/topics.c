/*
 * topics.c - the topic registry (topics.h): subscribed and declared topics,
 * shard counts recorded in Redis, and the cache of resolved layouts.
 */
#include "topics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "scripts.h"

void tm__topics_init(tm_topics *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->lock, NULL);
}

static void topic_free(tm_topic *t) {
  if (!t) return;
  for (uint32_t i = 0; t->shards && i < t->nshards; i++) {
    for (int k = 0; k < TM_NKEYS; k++) tm__free(t->shards[i].keys[k]);
    tm__free(t->shards[i].settle);
  }
  tm__free(t->shards);
  tm__free(t->name);
  tm__free(t);
}

void tm__topics_free(tm_topics *r) {
  for (size_t i = 0; i < r->nsubscribed; i++) topic_free(r->subscribed[i]);
  tm__free(r->subscribed);
  for (size_t i = 0; i < r->ndeclared; i++) tm__free(r->declared[i].name);
  tm__free(r->declared);
  for (size_t i = 0; i < r->ncache; i++) tm__free(r->cache[i].name);
  tm__free(r->cache);
  pthread_mutex_destroy(&r->lock);
}

tm_topic *tm__topics_find(const tm_topics *r, const char *name) {
  for (size_t i = 0; i < r->nsubscribed; i++)
    if (strcmp(r->subscribed[i]->name, name) == 0) return r->subscribed[i];
  return NULL;
}

static const tm_named_layout *find_declared(const tm_topics *r,
                                            const char *name) {
  for (size_t i = 0; i < r->ndeclared; i++)
    if (strcmp(r->declared[i].name, name) == 0) return &r->declared[i];
  return NULL;
}

tm_layout tm__topics_configured(const tm_topics *r, const tm_core *core,
                                const char *name) {
  const tm_topic *t = name ? tm__topics_find(r, name) : NULL;
  if (t) return (tm_layout){t->ops, t->nshards};
  const tm_named_layout *d = name ? find_declared(r, name) : NULL;
  if (d) return d->layout;
  return (tm_layout){&tm__layout_native, (uint32_t)core->cfg.shards};
}

int tm__topics_check(const tm_topics *r, const tm_core *core,
                     const char *name) {
  return tm__topics_configured(r, core, name).ops->check_topic(name);
}

/* ----------------------------------------------------------- shard count */

/* Strict: the whole string is an integer in 1..TIMERS_SHARDS_MAX. */
static int parse_shards(const redisReply *r, const char *key, uint32_t *got) {
  if (r->type == REDIS_REPLY_NIL) {
    *got = 0;
    return TIMERS_OK;
  }
  char *end = NULL;
  long long v = 0;
  if (r->type == REDIS_REPLY_STRING && r->len > 0) {
    errno = 0;
    v = strtoll(r->str, &end, 10);
    if (errno || *end) v = 0;
  }
  if (v < 1 || v > TIMERS_SHARDS_MAX)
    return tm__error(TIMERS_EREDIS,
                     "%s has shards = '%.40s', not an integer 1..%d: fix or "
                     "delete that key (it records the topic's shard count)",
                     key, r->type == REDIS_REPLY_STRING ? r->str : "?",
                     TIMERS_SHARDS_MAX);
  *got = (uint32_t)v;
  return TIMERS_OK;
}

int tm__meta_shards(tm_conn *c, const char *prefix, const char *topic,
                    uint32_t want, uint32_t *got) {
  char key[TM_KEY_MAX], n[16] = "";
  tm__meta_key(key, prefix, topic);
  if (want) snprintf(n, sizeof n, "%u", want);
  const char *argv[] = {key, n};
  size_t len[] = {strlen(key), strlen(n)};
  redisReply *r;
  int rc = tm__conn_script(c, TM_SCRIPT_META, 1, 2, argv, len, &r);
  if (rc == TIMERS_OK) rc = parse_shards(r, key, got);
  if (r) freeReplyObject(r);
  return rc;
}

static bool cache_get(tm_topics *r, const char *name, tm_layout *l) {
  bool hit = false;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->ncache && !hit; i++)
    if (strcmp(r->cache[i].name, name) == 0) *l = r->cache[i].layout, hit = true;
  pthread_mutex_unlock(&r->lock);
  return hit;
}

/* Best effort: a layout that could not be cached is asked for again. */
static void cache_put(tm_topics *r, const char *name, tm_layout l) {
  char *copy = tm__strdup(name);
  pthread_mutex_lock(&r->lock);
  bool present = false;
  for (size_t i = 0; i < r->ncache && !present; i++)
    present = strcmp(r->cache[i].name, name) == 0;
  if (!present && r->ncache == r->cache_cap) {
    size_t cap = r->cache_cap ? r->cache_cap * 2 : 8;
    tm_named_layout *g = tm__realloc(r->cache, sizeof *g * cap);
    if (g) r->cache = g, r->cache_cap = cap;
  }
  if (!present && copy && r->ncache < r->cache_cap) {
    r->cache[r->ncache++] = (tm_named_layout){copy, l};
    copy = NULL;
  }
  pthread_mutex_unlock(&r->lock);
  tm__free(copy);
}

int tm__topics_resolve(tm_topics *r, const tm_core *core, tm_conn *c,
                       const char *name, bool record, tm_layout *out) {
  tm_layout want = tm__topics_configured(r, core, name);
  *out = want;
  if (!want.ops->has_meta || cache_get(r, name, out)) return TIMERS_OK;
  uint32_t got = 0;
  int rc = tm__meta_shards(c, core->names.prefix, name,
                           record ? want.nshards : 0, &got);
  if (rc != TIMERS_OK) return rc;
  if (got == 0) return TIMERS_OK; /* unknown, read only: nothing there */
  out->nshards = got;
  cache_put(r, name, *out);
  return TIMERS_OK;
}

/* ----------------------------------------------------------- subscribe */

static uint32_t option_shards(const tm_core *core,
                              const timers_subscribe_options *o,
                              const tm_layout_ops *ops) {
  if (ops->fixed_one_shard) return 1;
  return (uint32_t)(o->shards ? o->shards : core->cfg.shards);
}

static int shard_init(tm_shard *s, tm_topic *t, uint32_t i,
                      const tm_core *core) {
  tm_keys keys;
  s->topic = t;
  s->index = i;
  atomic_init(&s->next_due_us, 0); /* unknown: look at once */
  atomic_init(&s->hint_us, INT64_MAX);
  t->ops->keys(keys, &core->names, t->name, i);
  for (int k = 0; k < TM_NKEYS; k++)
    if (!(s->keys[k] = tm__strdup(keys[k])))
      return tm__error(TIMERS_ENOMEM, "out of memory");
  return TIMERS_OK;
}

static tm_topic *topic_new(const tm_core *core, const char *name,
                           timers_handler h, void *ud,
                           const timers_subscribe_options *o) {
  tm_topic *t = tm__calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ops = tm__layout_ops(o->layout);
  t->name = tm__strdup(name);
  t->handler = h;
  t->userdata = ud;
  t->lease_ms = o->lease_ms ? o->lease_ms : core->cfg.lease_ms;
  t->max_inflight = o->max_inflight;
  t->max_handler_ms =
      o->max_handler_ms ? o->max_handler_ms : core->cfg.max_handler_ms;
  /* Attempts and dead letters only where attempts are counted. */
  int max = o->max_attempts ? o->max_attempts : core->cfg.max_attempts;
  t->max_attempts = max < 0 || !t->ops->has_dead_letters ? 0 : max;
  t->retry_min_ms = o->retry_min_ms ? o->retry_min_ms : core->cfg.retry_min_ms;
  t->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : core->cfg.retry_max_ms;
  if (t->retry_max_ms < t->retry_min_ms) t->retry_max_ms = t->retry_min_ms;
  t->dead_letter_rejects = o->dead_letter_rejects && t->ops->has_dead_letters;
  t->at_most_once = o->at_most_once != 0;
  snprintf(t->claim_flags, sizeof t->claim_flags, "%s%s", t->ops->claim_flags,
           t->at_most_once ? "m" : "");
  t->nshards = option_shards(core, o, t->ops);
  t->shards = tm__calloc(t->nshards, sizeof *t->shards);
  bool ok = t->name && t->shards;
  for (uint32_t i = 0; ok && i < t->nshards; i++)
    ok = shard_init(&t->shards[i], t, i, core) == TIMERS_OK;
  if (!ok) {
    topic_free(t);
    return NULL;
  }
  return t;
}

static int check_new(const tm_topics *r, const char *name) {
  if (tm__topics_find(r, name))
    return tm__error(TIMERS_EEXIST, "topic '%s' is already subscribed", name);
  if (find_declared(r, name))
    return tm__error(TIMERS_EEXIST, "topic '%s' is already declared", name);
  return TIMERS_OK;
}

int tm__topics_subscribe(tm_topics *r, const tm_core *core, const char *name,
                         timers_handler h, void *userdata,
                         const timers_subscribe_options *o) {
  int rc = check_new(r, name);
  if (rc != TIMERS_OK) return rc;
  tm_topic **g = tm__realloc(r->subscribed, sizeof *g * (r->nsubscribed + 1));
  if (!g) return tm__error(TIMERS_ENOMEM, "out of memory");
  r->subscribed = g;
  tm_topic *t = topic_new(core, name, h, userdata, o);
  if (!t) return tm__error(TIMERS_ENOMEM, "out of memory");
  r->subscribed[r->nsubscribed++] = t;
  return TIMERS_OK;
}

int tm__topics_declare(tm_topics *r, const tm_core *core, const char *name,
                       const timers_subscribe_options *o) {
  int rc = check_new(r, name);
  if (rc != TIMERS_OK) return rc;
  tm_named_layout *g = tm__realloc(r->declared, sizeof *g * (r->ndeclared + 1));
  if (!g) return tm__error(TIMERS_ENOMEM, "out of memory");
  r->declared = g;
  char *copy = tm__strdup(name);
  if (!copy) return tm__error(TIMERS_ENOMEM, "out of memory");
  const tm_layout_ops *ops = tm__layout_ops(o->layout);
  r->declared[r->ndeclared++] =
      (tm_named_layout){copy, {ops, option_shards(core, o, ops)}};
  return TIMERS_OK;
}
