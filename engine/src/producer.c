/*
 * producer.c - the application side: schedule, schedule_batch, cancel,
 * cancel_all, is_pending. Thread-safe: each call borrows a connection from a
 * pool (the lock guards only the pool's list), and retries an unreachable
 * Redis with backoff for up to retry_ms before returning TIMERS_ECONN.
 * Every operation is idempotent, so a retry after a lost reply is safe
 * (a generated id is generated once, before the first try).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "codec.h"
#include "engine.h"
#include "error.h"
#include "keys.h"
#include "validate.h"

/* ------------------------------------------------------------------ pool */

/* A pooled connection, or a new unconnected one; run_op connects it. */
static tm_conn *pool_take(timers_engine *e) {
  tm_conn *c = NULL;
  tm__lock(e, &e->pool_lock);
  if (e->npool) c = e->pool[--e->npool];
  pthread_mutex_unlock(&e->pool_lock);
  return c ? c : tm__calloc(1, sizeof *c);
}

static void pool_give(timers_engine *e, tm_conn *c) {
  tm__lock(e, &e->pool_lock);
  if (e->npool == e->pool_cap) {
    size_t cap = e->pool_cap ? e->pool_cap * 2 : 8;
    tm_conn **grown = tm__realloc(e->pool, sizeof *grown * cap);
    if (grown) e->pool = grown, e->pool_cap = cap;
  }
  if (e->npool < e->pool_cap) {
    e->pool[e->npool++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&e->pool_lock);
  if (c) tm__conn_close(c), tm__free(c);
}

void tm__pool_free(timers_engine *e) {
  for (size_t i = 0; i < e->npool; i++) {
    tm__conn_close(e->pool[i]);
    tm__free(e->pool[i]);
  }
  tm__free(e->pool);
  e->pool = NULL;
  e->npool = e->pool_cap = 0;
}

int tm__run_op(timers_engine *e, tm_op op, void *arg) {
  int64_t deadline = tm__mono_ns() + (int64_t)e->cfg.retry_ms * 1000000;
  int64_t backoff = 10 * 1000000;
  tm_conn *c = pool_take(e);
  if (!c) return tm__error(TIMERS_ENOMEM, "out of memory");
  int rc;
  for (;;) {
    rc = c->ctx ? TIMERS_OK : tm__conn_open(c, &e->redis, true);
    if (rc == TIMERS_OK) rc = op(e, c, arg);
    if (rc != TIMERS_ECONN) break;
    tm__count(&e->conn_errors, 1);
    if (tm__mono_ns() + backoff > deadline) break;
    tm__sleep_ns(backoff);
    if (backoff < 500 * 1000000) backoff *= 2;
  }
  pool_give(e, c);
  return rc;
}

/* --------------------------------------------------------- topic shards */

int tm__meta_shards(tm_conn *c, const char *prefix, const char *topic,
                    uint32_t want, uint32_t *got) {
  char key[TM_KEY_MAX], n[16];
  tm__meta_key(key, prefix, topic);
  snprintf(n, sizeof n, "%u", want);
  const char *argv[] = {key, n};
  size_t len[] = {strlen(key), strlen(n)};
  redisReply *r;
  int rc = want ? tm__conn_script(c, TM_SCRIPT_META, 1, 2, argv, len, &r)
                : (redisAppendCommand(c->ctx, "HGET %s shards", key),
                   tm__conn_reply(c, &r));
  if (rc == TIMERS_OK && r->type == REDIS_REPLY_NIL) {
    *got = 0; /* read-only and nothing recorded */
  } else if (rc == TIMERS_OK) {
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                                  : 0;
    if (v < 1 || v > TIMERS_SHARDS_MAX)
      rc = tm__error(TIMERS_EREDIS, "topic '%s': bad shard count in %s",
                     topic, key);
    else
      *got = (uint32_t)v;
  }
  if (r) freeReplyObject(r);
  return rc;
}

static bool cache_get(timers_engine *e, const char *topic, tm_layout *l) {
  bool hit = false;
  tm__lock(e, &e->cache_lock);
  for (size_t i = 0; i < e->ncache && !hit; i++)
    if (strcmp(e->cache[i].topic, topic) == 0) *l = e->cache[i].layout, hit = true;
  pthread_mutex_unlock(&e->cache_lock);
  return hit;
}

static void cache_put(timers_engine *e, const char *topic, tm_layout l) {
  char *name = tm__strdup(topic);
  tm__lock(e, &e->cache_lock);
  bool present = false;
  for (size_t i = 0; i < e->ncache && !present; i++)
    present = strcmp(e->cache[i].topic, topic) == 0;
  if (!present && e->ncache == e->cache_cap) {
    size_t cap = e->cache_cap ? e->cache_cap * 2 : 8;
    tm_topic_cache_entry *g = tm__realloc(e->cache, sizeof *g * cap);
    if (g) e->cache = g, e->cache_cap = cap;
  }
  if (!present && name && e->ncache < e->cache_cap) {
    e->cache[e->ncache++] = (tm_topic_cache_entry){name, l};
    name = NULL;
  }
  pthread_mutex_unlock(&e->cache_lock);
  tm__free(name); /* not cached: asked again next time, still correct */
}

/* What this engine was told about a topic (subscribe or declare): its
 * layout, and for a native one the shard count it expects. */
static tm_layout configured_layout(timers_engine *e, const char *topic) {
  tm_topic *t = tm__topic_find(e, topic);
  if (t) return (tm_layout){t->nshards, t->layout};
  for (size_t i = 0; i < e->ndeclared; i++)
    if (strcmp(e->declared[i].topic, topic) == 0) return e->declared[i].layout;
  return (tm_layout){(uint32_t)e->cfg.shards, TIMERS_LAYOUT_NATIVE};
}

int tm__topic_layout(timers_engine *e, tm_conn *c, const char *topic,
                     bool record, tm_layout *out) {
  tm_layout want = configured_layout(e, topic);
  if (want.kind == TIMERS_LAYOUT_FASTSTREAM) { /* one shard, no meta key */
    *out = want;
    return TIMERS_OK;
  }
  if (cache_get(e, topic, out)) return TIMERS_OK;
  out->kind = TIMERS_LAYOUT_NATIVE;
  int rc = tm__meta_shards(c, e->key_prefix, topic, record ? want.nshards : 0,
                           &out->nshards);
  if (rc == TIMERS_OK && out->nshards == 0) {
    out->nshards = want.nshards; /* unknown topic, read only: nothing there */
    return TIMERS_OK;
  }
  if (rc == TIMERS_OK) cache_put(e, topic, *out);
  return rc;
}

void tm__topic_keys(const timers_engine *e, const tm_layout *l,
                    const char *topic, uint32_t shard,
                    char keys[3][TM_KEY_MAX]) {
  if (l->kind == TIMERS_LAYOUT_NATIVE) {
    tm__shard_keys(keys, e->key_prefix, topic, shard);
    return;
  }
  /* The reference library's keys: "<base>:<topic>", no hash tag. */
  snprintf(keys[0], TM_KEY_MAX, "%s:%s", e->fs_timeline, topic);
  snprintf(keys[1], TM_KEY_MAX, "%s:%s", e->fs_payloads, topic);
  snprintf(keys[2], TM_KEY_MAX, "%s:fs-attempts:%s", e->key_prefix, topic);
}

/* The local shard for a hint, if this engine polls that topic with the
 * same layout. */
static tm_shard *local_shard(timers_engine *e, const char *topic,
                             const tm_layout *l, uint32_t shard) {
  if (atomic_load_explicit(&e->state, memory_order_acquire) != TM_RUNNING)
    return NULL;
  tm_topic *t = tm__topic_find(e, topic);
  return t && t->nshards == l->nshards && t->layout == l->kind
             ? &t->shards[shard] : NULL;
}

/* ----------------------------------------------------------- scheduling */

typedef struct tm_item {
  const timers_timer *t;
  double at;
  tm_layout layout; /* of its topic */
  uint32_t shard;
  char id[TIMERS_ID_MAX + 1];
} tm_item;

typedef struct tm_batch {
  tm_item *items;
  size_t n;
} tm_batch;

/* Appends one EVALSHA for items[from..to) (same topic and shard): ARGV is
 * channel, shard, earliest score, n, n (score, id) pairs, n (id, blob). */
static int append_group(timers_engine *e, tm_conn *c, tm_item *items,
                        size_t *order, size_t from, size_t to) {
  const tm_item *first = &items[order[from]];
  size_t n = to - from, argc = 7 + 4 * n, blob_bytes = 0;
  for (size_t k = from; k < to; k++)
    blob_bytes += tm__blob_size(first->layout.kind, items[order[k]].t);
  const char **argv = tm__malloc(sizeof *argv * argc);
  size_t *len = tm__malloc(sizeof *len * argc);
  char *scores = tm__malloc(32 * n), *blobs = tm__malloc(blob_bytes);
  char keys[3][TM_KEY_MAX], chan[TM_KEY_MAX], shard[16], count[24];
  int rc = TIMERS_OK;
  if (!argv || !len || !scores || !blobs) {
    rc = tm__error(TIMERS_ENOMEM, "out of memory");
    goto out;
  }
  const char *topic = first->t->topic;
  tm__topic_keys(e, &first->layout, topic, first->shard, keys);
  for (int k = 0; k < 3; k++) argv[k] = keys[k], len[k] = strlen(keys[k]);
  len[3] = (size_t)tm__wake_channel(chan, e->key_prefix, topic), argv[3] = chan;
  len[4] = (size_t)snprintf(shard, sizeof shard, "%u", first->shard);
  argv[4] = shard;
  len[6] = (size_t)snprintf(count, sizeof count, "%zu", n), argv[6] = count;
  size_t earliest = 0;
  char *b = blobs;
  for (size_t k = 0; k < n; k++) {
    const tm_item *it = &items[order[from + k]];
    size_t zj = 7 + 2 * k, hj = 7 + 2 * n + 2 * k;
    size_t blen = tm__blob_size(it->layout.kind, it->t);
    argv[zj] = scores + 32 * k;
    len[zj] = (size_t)snprintf(scores + 32 * k, 32, "%.6f", it->at);
    argv[zj + 1] = argv[hj] = it->id;
    len[zj + 1] = len[hj] = strlen(it->id);
    tm__blob_encode(it->layout.kind, it->t, it->at, b);
    argv[hj + 1] = b, len[hj + 1] = blen;
    b += blen;
    if (it->at < items[order[from + earliest]].at) earliest = k;
  }
  argv[5] = argv[7 + 2 * earliest], len[5] = len[7 + 2 * earliest];
  rc = tm__conn_append_script(c, TM_SCRIPT_SCHEDULE, 3, (int)argc, argv, len);
out:
  tm__free(argv), tm__free(len), tm__free(scores), tm__free(blobs);
  return rc;
}

/* Sorts the items of one topic by shard (counting sort into order[]). */
static int order_by_shard(tm_item *items, size_t *idx, size_t n,
                          uint32_t nshards, size_t *order) {
  size_t *count = tm__calloc(nshards + 1, sizeof *count);
  if (!count) return tm__error(TIMERS_ENOMEM, "out of memory");
  for (size_t k = 0; k < n; k++) count[items[idx[k]].shard + 1]++;
  for (uint32_t s = 0; s < nshards; s++) count[s + 1] += count[s];
  for (size_t k = 0; k < n; k++) order[count[items[idx[k]].shard]++] = idx[k];
  tm__free(count);
  return TIMERS_OK;
}

/* Appends the script calls for all items of one topic; *calls counts them. */
static int append_topic(timers_engine *e, tm_conn *c, tm_item *items,
                        size_t *idx, size_t n, size_t *order, size_t *calls) {
  tm_layout l;
  int rc = tm__topic_layout(e, c, items[idx[0]].t->topic, true, &l);
  if (rc != TIMERS_OK) return rc;
  for (size_t k = 0; k < n; k++) {
    tm_item *it = &items[idx[k]];
    it->layout = l;
    it->shard = timers_shard_of(it->id, strlen(it->id), l.nshards);
  }
  if ((rc = order_by_shard(items, idx, n, l.nshards, order)) != TIMERS_OK)
    return rc;
  for (size_t from = 0; from < n && rc == TIMERS_OK;) {
    size_t to = from + 1;
    while (to < n && to - from < TM_SCHEDULE_MAX &&
           items[order[to]].shard == items[order[from]].shard)
      to++;
    rc = append_group(e, c, items, order, from, to);
    (*calls)++;
    from = to;
  }
  return rc;
}

static void hint_and_count(timers_engine *e, tm_item *items, size_t n) {
  for (size_t k = 0; k < n; k++) {
    tm_shard *s = local_shard(e, items[k].t->topic, &items[k].layout,
                              items[k].shard);
    if (s) {
      tm__count(&s->counters.scheduled, 1);
      tm__shard_hint(s, tm__secs_to_us(items[k].at));
    } else {
      tm__count(&e->scheduled_other, 1);
    }
  }
}

static int schedule_op(timers_engine *e, tm_conn *c, void *arg) {
  tm_batch *b = arg;
  size_t *idx = tm__malloc(sizeof *idx * b->n);
  size_t *order = tm__malloc(sizeof *order * b->n);
  char *done = tm__calloc(b->n, 1);
  size_t calls = 0;
  int rc = idx && order && done ? TIMERS_OK
                                 : tm__error(TIMERS_ENOMEM, "out of memory");
  for (size_t k = 0; k < b->n && rc == TIMERS_OK; k++) {
    if (done[k]) continue;
    size_t m = 0; /* gather every item of this topic */
    for (size_t j = k; j < b->n; j++)
      if (!done[j] && strcmp(b->items[j].t->topic, b->items[k].t->topic) == 0)
        idx[m++] = j, done[j] = 1;
    rc = append_topic(e, c, b->items, idx, m, order, &calls);
  }
  /* Read every reply appended, even after a failure, to keep the pipeline
   * in step; the first error wins. */
  for (size_t k = 0; k < calls && c->ctx; k++) {
    redisReply *r;
    int rr = tm__conn_reply(c, &r);
    if (r) freeReplyObject(r);
    if (rc == TIMERS_OK) rc = rr;
  }
  if (rc == TIMERS_OK) hint_and_count(e, b->items, b->n);
  tm__free(idx), tm__free(order), tm__free(done);
  return rc;
}

/* What the engine was told a topic's layout is decides its envelope, which
 * must be checked before anything is written. */
static int check_layout_limits(timers_engine *e, const timers_timer *t) {
  tm_layout l = configured_layout(e, t->topic);
  if (l.kind == TIMERS_LAYOUT_FASTSTREAM && tm__blob_size(l.kind, t) == 0)
    return tm__error(TIMERS_ETOOBIG, "topic '%s' uses the faststream layout, "
                     "whose header keys and values are at most 65535 bytes",
                     t->topic);
  return TIMERS_OK;
}

static int prepare(timers_engine *e, const timers_timer *ts, size_t n,
                   tm_item *items) {
  double now = tm__wall();
  for (size_t k = 0; k < n; k++) {
    int rc = tm__check_timer(&ts[k], now, &items[k].at);
    if (rc == TIMERS_OK) rc = check_layout_limits(e, &ts[k]);
    if (rc != TIMERS_OK) {
      if (n > 1) tm__error(rc, "timer %zu: %s", k, timers_last_error());
      return rc;
    }
    items[k].t = &ts[k];
    if (ts[k].id)
      snprintf(items[k].id, sizeof items[k].id, "%s", ts[k].id);
    else
      tm__id_generate(items[k].id);
  }
  return TIMERS_OK;
}

int timers_schedule_batch(timers_engine *e, const timers_timer *ts, size_t n,
                          char *ids_out) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (n == 0) return TIMERS_OK;
  if (!ts) return tm__error(TIMERS_EINVAL, "timers is NULL");
  tm_item *items = tm__malloc(sizeof *items * n);
  if (!items) return tm__error(TIMERS_ENOMEM, "out of memory");
  tm_batch b = {items, n};
  int rc = prepare(e, ts, n, items);
  if (rc == TIMERS_OK) rc = tm__run_op(e, schedule_op, &b);
  if (rc == TIMERS_OK && ids_out)
    for (size_t k = 0; k < n; k++)
      memcpy(ids_out + k * (TIMERS_ID_MAX + 1), items[k].id,
             strlen(items[k].id) + 1);
  tm__free(items);
  return rc;
}

int timers_schedule(timers_engine *e, const timers_timer *t, char *id_out,
                    size_t id_cap) {
  if (id_out && id_cap < TIMERS_ID_MAX + 1)
    return tm__error(TIMERS_EINVAL, "id_cap %zu is below TIMERS_ID_MAX + 1",
                     id_cap);
  return timers_schedule_batch(e, t, 1, id_out);
}

/* ------------------------------------------------------- cancel, inspect */

typedef struct tm_one {
  const char *topic, *id;
  long long result;
} tm_one;

static int shard_keys_of(timers_engine *e, tm_conn *c, const char *topic,
                         const char *id, char keys[3][TM_KEY_MAX]) {
  tm_layout l;
  int rc = tm__topic_layout(e, c, topic, false, &l);
  if (rc != TIMERS_OK) return rc;
  tm__topic_keys(e, &l, topic, timers_shard_of(id, strlen(id), l.nshards), keys);
  return TIMERS_OK;
}

static int cancel_op(timers_engine *e, tm_conn *c, void *arg) {
  tm_one *o = arg;
  char keys[3][TM_KEY_MAX];
  int rc = shard_keys_of(e, c, o->topic, o->id, keys);
  if (rc != TIMERS_OK) return rc;
  const char *argv[] = {keys[0], keys[1], keys[2], o->id};
  size_t len[] = {strlen(keys[0]), strlen(keys[1]), strlen(keys[2]),
                  strlen(o->id)};
  redisReply *r;
  rc = tm__conn_script(c, TM_SCRIPT_CANCEL, 3, 4, argv, len, &r);
  if (rc == TIMERS_OK) o->result = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r) freeReplyObject(r);
  return rc;
}

static int pending_op(timers_engine *e, tm_conn *c, void *arg) {
  tm_one *o = arg;
  char keys[3][TM_KEY_MAX];
  int rc = shard_keys_of(e, c, o->topic, o->id, keys);
  if (rc != TIMERS_OK) return rc;
  redisAppendCommand(c->ctx, "ZSCORE %s %s", keys[0], o->id);
  redisReply *r;
  rc = tm__conn_reply(c, &r);
  if (rc == TIMERS_OK) o->result = r->type == REDIS_REPLY_STRING;
  if (r) freeReplyObject(r);
  return rc;
}

static int check_topic_id(timers_engine *e, const char *topic, const char *id) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic(topic);
  return rc == TIMERS_OK ? tm__check_id(id) : rc;
}

int timers_cancel(timers_engine *e, const char *topic, const char *id,
                  bool *removed) {
  int rc = check_topic_id(e, topic, id);
  tm_one o = {topic, id, 0};
  if (rc == TIMERS_OK) rc = tm__run_op(e, cancel_op, &o);
  if (removed) *removed = rc == TIMERS_OK && o.result > 0;
  return rc;
}

int timers_is_pending(timers_engine *e, const char *topic, const char *id,
                      bool *pending) {
  int rc = check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !pending)
    return tm__error(TIMERS_EINVAL, "pending is NULL");
  tm_one o = {topic, id, 0};
  if (rc == TIMERS_OK) rc = tm__run_op(e, pending_op, &o);
  if (pending) *pending = rc == TIMERS_OK && o.result > 0;
  return rc;
}

static int clear_op(timers_engine *e, tm_conn *c, void *arg) {
  tm_one *o = arg;
  tm_layout l = {0, TIMERS_LAYOUT_NATIVE};
  uint32_t appended = 0;
  int rc = tm__topic_layout(e, c, o->topic, false, &l);
  for (uint32_t s = 0; s < l.nshards && rc == TIMERS_OK; s++) {
    char keys[3][TM_KEY_MAX];
    tm__topic_keys(e, &l, o->topic, s, keys);
    const char *argv[] = {keys[0], keys[1], keys[2]};
    size_t len[] = {strlen(keys[0]), strlen(keys[1]), strlen(keys[2])};
    rc = tm__conn_append_script(c, TM_SCRIPT_CLEAR, 3, 3, argv, len);
    appended += rc == TIMERS_OK;
  }
  o->result = 0;
  for (uint32_t s = 0; s < appended && c->ctx; s++) {
    redisReply *r;
    int rr = tm__conn_reply(c, &r);
    if (rr == TIMERS_OK && r->type == REDIS_REPLY_INTEGER) o->result += r->integer;
    if (r) freeReplyObject(r);
    if (rc == TIMERS_OK) rc = rr;
  }
  return rc;
}

int timers_cancel_all(timers_engine *e, const char *topic, uint64_t *count) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic(topic);
  tm_one o = {topic, NULL, 0};
  if (rc == TIMERS_OK) rc = tm__run_op(e, clear_op, &o);
  if (count) *count = rc == TIMERS_OK ? (uint64_t)o.result : 0;
  return rc;
}
