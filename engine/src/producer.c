/*
 * producer.c - the application side: schedule, schedule_batch,
 * schedule_each, cancel, cancel_all, is_pending. Thread-safe: each call
 * borrows a pooled connection (pool.h) and retries an unreachable Redis
 * for up to retry_ms.
 *
 * A batch is resolved first (each topic's layout and shard count: complete
 * round trips), then written in ONE pipeline of schedule calls, one per
 * (topic, shard) group, whose replies are read in order and matched to
 * their groups: no reply is ever read as another request's answer.
 *
 * Retries are idempotent: the schedule script skips a timer stored with the
 * same envelope (a re-sent write never moves a timer a handler holds) and
 * one whose tombstone says it fired within dedup_window_ms (a re-sent
 * write never resurrects a fired timer). A generated id is generated once,
 * before the first try.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "engine.h"
#include "error.h"
#include "keys.h"
#include "scripts.h"
#include "validate.h"

typedef struct tm_item {
  const timers_timer *t;
  double at;                   /* activation time, Unix seconds */
  const tm_layout_ops *ops;    /* as configured (validation, envelope) */
  tm_layout layout;            /* as resolved (shard count) */
  size_t topic;                /* index of its topic's first item */
  uint32_t shard;
  char id[TIMERS_ID_MAX + 1];
  char *blob;                  /* the stored payload, owned */
  size_t blob_len;
  char tomb[8];                /* tombstone token (tm__token_bytes) */
  size_t tomb_len;             /* 0 when not deduplicated */
} tm_item;

typedef struct tm_batch {
  timers_engine *e;
  tm_item *items;
  size_t n;
  size_t *order;               /* items sorted by (topic, shard) */
  int *status;                 /* per item */
} tm_batch;

/* ------------------------------------------------------------- validate */

/* Validates one timer, gives it its id, and encodes it (once: retries
 * send the same bytes, which is what makes them idempotent). */
static int prepare_one(timers_engine *e, tm_item *it, double now) {
  const timers_timer *t = it->t;
  it->ops = t->topic ? tm__topics_configured(&e->topics, &e->core,
                                             t->topic).ops
                     : &tm__layout_native;
  int rc = tm__check_timer(t, it->ops, now, &it->at);
  if (rc != TIMERS_OK) return rc;
  if (t->id)
    snprintf(it->id, sizeof it->id, "%s", t->id);
  else
    it->ops->id_generate(it->id);
  it->blob = it->ops->encode(t, it->id, it->at, &it->blob_len, &rc);
  if (!it->blob) return rc;
  it->tomb_len = 0;
  if (it->ops->has_tombstones && e->core.cfg.dedup_window_ms > 0) {
    tm__token_bytes(
        tm__timer_token(it->id, strlen(it->id), it->blob, it->blob_len),
        it->tomb);
    it->tomb_len = sizeof it->tomb;
  }
  return TIMERS_OK;
}

static int prepare(timers_engine *e, const timers_timer *ts, size_t n,
                   tm_item *items) {
  /* activate_in counts from now on Redis's clock, which decides when it
   * is due. */
  double now = (double)tm__server_now_us(&e->core) / 1e6;
  for (size_t k = 0; k < n; k++) {
    items[k].t = &ts[k];
    int rc = prepare_one(e, &items[k], now);
    if (rc != TIMERS_OK) {
      if (n > 1) tm__error(rc, "timer %zu: %s", k, timers_last_error());
      return rc;
    }
  }
  return TIMERS_OK;
}

/* ----------------------------------------------------------- resolving */

/* Layouts and shards of every item: one resolve per distinct topic. */
static int resolve(tm_batch *b, tm_conn *c) {
  for (size_t k = 0; k < b->n; k++) {
    tm_item *it = &b->items[k];
    it->topic = k;
    for (size_t j = 0; j < k; j++)
      if (strcmp(b->items[j].t->topic, it->t->topic) == 0) {
        it->topic = b->items[j].topic;
        it->layout = b->items[j].layout;
        break;
      }
    if (it->topic == k) {
      int rc = tm__topics_resolve(&b->e->topics, &b->e->core, c, it->t->topic,
                                  true, &it->layout);
      if (rc != TIMERS_OK) return rc;
    }
    it->shard = timers_shard_of(it->id, strlen(it->id), it->layout.nshards);
  }
  return TIMERS_OK;
}

static int by_group(const void *a, const void *b, void *items) {
  const tm_item *x = &((const tm_item *)items)[*(const size_t *)a];
  const tm_item *y = &((const tm_item *)items)[*(const size_t *)b];
  if (x->topic != y->topic) return x->topic < y->topic ? -1 : 1;
  if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
  return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static void group_items(tm_batch *b) {
  for (size_t k = 0; k < b->n; k++) b->order[k] = k;
  qsort_r(b->order, b->n, sizeof *b->order, by_group, b->items);
}

/* Items order[from..to) share a topic and shard (at most TM_SCHEDULE_MAX). */
static size_t group_end(const tm_batch *b, size_t from) {
  const tm_item *f = &b->items[b->order[from]];
  size_t to = from + 1;
  while (to < b->n && to - from < TM_SCHEDULE_MAX) {
    const tm_item *it = &b->items[b->order[to]];
    if (it->topic != f->topic || it->shard != f->shard) break;
    to++;
  }
  return to;
}

/* -------------------------------------------------------------- writing */

/* One EVALSHA for a group: KEYS z p a and the tombstone sets of the
 * buckets around now; ARGV channel, shard, n, then per timer score, id,
 * envelope, tombstone token (scripts.h). */
static int append_group(tm_batch *b, tm_conn *c, size_t from, size_t to) {
  const tm_item *first = &b->items[b->order[from]];
  const tm_layout_ops *ops = first->layout.ops;
  const tm_core *core = &b->e->core;
  size_t n = to - from;
  size_t argc = TM_SCHEDULE_KEYS + TM_SCHEDULE_ARGS + TM_SCHEDULE_STRIDE * n;
  const char **argv = tm__malloc(sizeof *argv * argc);
  size_t *len = tm__malloc(sizeof *len * argc);
  char *scores = tm__malloc(32 * n);
  int rc = TIMERS_OK;
  if (!argv || !len || !scores) {
    rc = tm__error(TIMERS_ENOMEM, "out of memory");
    goto out;
  }
  tm_keys keys;
  char tombs[3][TM_KEY_MAX];
  char chan[TM_KEY_MAX] = "", shard[64], count[24];
  ops->keys(keys, &core->names, first->t->topic, first->shard);
  int64_t bucket = tm__tomb_bucket(tm__server_now_us(core),
                                   core->cfg.dedup_window_ms);
  for (int k = 0; k < 3; k++)
    tm__tomb_key(tombs[k], keys[TM_KEY_D], bucket - 1 + k);
  if (ops->has_wake) tm__wake_channel(chan, core->names.prefix, first->t->topic);
  /* "shard sender": the wake message names us, so our own notify thread
   * skips it (this call hints our pollers itself) */
  snprintf(shard, sizeof shard, "%u %s", first->shard, core->member_id);
  snprintf(count, sizeof count, "%zu", n);
  size_t a = 0;
  argv[a++] = keys[TM_KEY_Z], argv[a++] = keys[TM_KEY_P];
  argv[a++] = keys[TM_KEY_A];
  for (int k = 0; k < 3; k++) argv[a++] = tombs[k];
  argv[a++] = chan, argv[a++] = shard, argv[a++] = count;
  for (size_t k = 0; k < a; k++) len[k] = strlen(argv[k]);
  for (size_t k = 0; k < n; k++) {
    const tm_item *it = &b->items[b->order[from + k]];
    char *score = scores + 32 * k;
    len[a] = (size_t)snprintf(score, 32, "%.6f", it->at), argv[a++] = score;
    len[a] = strlen(it->id), argv[a++] = it->id;
    len[a] = it->blob_len, argv[a++] = it->blob;
    len[a] = it->tomb_len, argv[a++] = it->tomb;
  }
  rc = tm__conn_append_script(c, TM_SCRIPT_SCHEDULE, TM_SCHEDULE_KEYS,
                              (int)argc, argv, len);
out:
  tm__free(argv), tm__free(len), tm__free(scores);
  return rc;
}

/* The group's reply decides its items' status. */
static int take_group(tm_batch *b, tm_conn *c, size_t from, size_t to) {
  redisReply *r;
  int rc = tm__conn_reply(c, &r);
  if (rc == TIMERS_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                          r->element[1]->type != REDIS_REPLY_INTEGER))
    rc = tm__error(TIMERS_EREDIS, "schedule: unexpected reply");
  if (rc == TIMERS_OK && r->element[1]->integer > 0) {
    const tm_item *f = &b->items[b->order[from]];
    tm_shard *s = tm__local_shard(b->e, f->t->topic, &f->layout, f->shard);
    tm__count(s ? &s->counters.deduplicated : &b->e->deduplicated_other,
              (uint64_t)r->element[1]->integer);
  }
  for (size_t k = from; k < to; k++) b->status[b->order[k]] = rc;
  if (r) freeReplyObject(r);
  return rc;
}

static int schedule_op(tm_conn *c, void *arg) {
  tm_batch *b = arg;
  for (size_t k = 0; k < b->n; k++) b->status[k] = TIMERS_ECONN;
  int rc = resolve(b, c);
  if (rc != TIMERS_OK) {
    for (size_t k = 0; k < b->n; k++) b->status[k] = rc;
    return rc;
  }
  group_items(b);
  size_t appended = 0; /* items whose group was appended */
  for (size_t from = 0; from < b->n && rc == TIMERS_OK;) {
    size_t to = group_end(b, from);
    rc = append_group(b, c, from, to);
    if (rc == TIMERS_OK) appended = to;
    from = to;
  }
  /* Read every reply appended, even after a failure, to keep the pipeline
   * in step; the first error wins. */
  int first = rc;
  for (size_t from = 0; from < appended;) {
    size_t to = group_end(b, from);
    int rr = take_group(b, c, from, to);
    if (first == TIMERS_OK && rr != TIMERS_OK) first = rr;
    if (rr == TIMERS_ECONN) break; /* nothing more to read */
    from = to;
  }
  for (size_t k = appended; k < b->n; k++) b->status[b->order[k]] = rc;
  return first;
}

static void hint_and_count(timers_engine *e, const tm_batch *b) {
  for (size_t k = 0; k < b->n; k++) {
    const tm_item *it = &b->items[k];
    if (b->status[k] != TIMERS_OK) continue;
    tm_shard *s = tm__local_shard(e, it->t->topic, &it->layout, it->shard);
    if (s) {
      tm__count(&s->counters.scheduled, 1);
      tm__shard_hint(s, tm__secs_to_us(it->at), &e->core.contention);
    } else {
      tm__count(&e->scheduled_other, 1);
    }
  }
}

/* How many were written, for the detail of a failed batch. */
static void explain_partial(const tm_batch *b, int rc) {
  size_t ok = 0;
  for (size_t k = 0; k < b->n; k++) ok += b->status[k] == TIMERS_OK;
  if (ok && b->n > 1)
    tm__error(rc, "%zu of %zu timers written (timers_schedule_each tells "
              "which); first failure: %s", ok, b->n, timers_last_error());
}

int timers_schedule_each(timers_engine *e, const timers_timer *ts, size_t n,
                         char *ids_out, int *status) {
  tm__error_clear();
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  if (n == 0) return TIMERS_OK;
  if (!ts) return tm__error(TIMERS_EINVAL, "timers is NULL");
  if (!status) return tm__error(TIMERS_EINVAL, "status is NULL");
  tm_batch b = {e, tm__calloc(n, sizeof *b.items), n,
                tm__malloc(sizeof *b.order * n), status};
  int rc = b.items && b.order ? TIMERS_OK
                              : tm__error(TIMERS_ENOMEM, "out of memory");
  if (rc == TIMERS_OK) rc = prepare(e, ts, n, b.items);
  for (size_t k = 0; rc != TIMERS_OK && k < n; k++) status[k] = rc;
  if (rc == TIMERS_OK) {
    rc = tm__pool_run(&e->pool, schedule_op, &b);
    hint_and_count(e, &b);
    if (rc != TIMERS_OK) explain_partial(&b, rc);
  }
  if (ids_out && b.items)
    for (size_t k = 0; k < n; k++)
      memcpy(ids_out + k * (TIMERS_ID_MAX + 1), b.items[k].id,
             strlen(b.items[k].id) + 1);
  for (size_t k = 0; b.items && k < n; k++) tm__free(b.items[k].blob);
  tm__free(b.items);
  tm__free(b.order);
  return rc;
}

int timers_schedule_batch(timers_engine *e, const timers_timer *ts, size_t n,
                          char *ids_out) {
  int small[16];
  int *status = n <= 16 ? small : tm__malloc(sizeof *status * n);
  if (!status) {
    tm__error_clear();
    return tm__error(TIMERS_ENOMEM, "out of memory");
  }
  int rc = timers_schedule_each(e, ts, n, ids_out, status);
  if (status != small) tm__free(status);
  return rc;
}

int timers_schedule(timers_engine *e, const timers_timer *t, char *id_out,
                    size_t id_cap) {
  if (id_out && id_cap < TIMERS_ID_MAX + 1) {
    tm__error_clear();
    return tm__error(TIMERS_EINVAL, "id_cap %zu is below TIMERS_ID_MAX + 1",
                     id_cap);
  }
  return timers_schedule_batch(e, t, 1, id_out);
}

/* ------------------------------------------------------- cancel, pending */

typedef struct tm_one {
  timers_engine *e;
  const char *topic, *id;
  long long result;
  char token[8]; /* cancel: the call's, the same in every attempt */
} tm_one;

static int shard_keys_of(tm_one *o, tm_conn *c, tm_keys keys,
                         const tm_layout_ops **ops) {
  tm_layout l;
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &l);
  if (rc != TIMERS_OK) return rc;
  l.ops->keys(keys, &o->e->core.names, o->topic,
              timers_shard_of(o->id, strlen(o->id), l.nshards));
  if (ops) *ops = l.ops;
  return TIMERS_OK;
}

/* KEYS z, p, a, and where the layout keeps tombstones the sets of the
 * buckets around now; ARGV id, token, expiry of the current set (scripts.h):
 * a retry of this call (pool.c) reports what its first attempt removed. */
static int cancel_op(tm_conn *c, void *arg) {
  tm_one *o = arg;
  tm_keys keys;
  const tm_layout_ops *ops;
  int rc = shard_keys_of(o, c, keys, &ops);
  if (rc != TIMERS_OK) return rc;
  int window = o->e->core.cfg.dedup_window_ms;
  bool tomb = ops->has_tombstones && window > 0;
  char tombs[3][TM_KEY_MAX], expire[32];
  const char *argv[9] = {keys[TM_KEY_Z], keys[TM_KEY_P], keys[TM_KEY_A]};
  size_t len[9];
  int nkeys = 3, a = 3;
  if (tomb) { /* the current bucket's set lives until the next one ends */
    int64_t bucket = tm__tomb_bucket(tm__server_now_us(&o->e->core), window);
    for (int k = 0; k < 3; k++) {
      tm__tomb_key(tombs[k], keys[TM_KEY_D], bucket - 1 + k);
      argv[a++] = tombs[k];
    }
    snprintf(expire, sizeof expire, "%lld", (long long)((bucket + 2) * window));
    nkeys = 6;
  }
  argv[a++] = o->id;
  for (int k = 0; k < a; k++) len[k] = strlen(argv[k]);
  if (tomb) {
    argv[a] = o->token, len[a++] = sizeof o->token; /* 8 bytes, no NUL */
    argv[a] = expire, len[a] = strlen(expire), a++;
  }
  return tm__conn_script_int(c, TM_SCRIPT_CANCEL, nkeys, a, argv, len,
                             &o->result);
}

static int pending_op(tm_conn *c, void *arg) {
  tm_one *o = arg;
  tm_keys keys;
  int rc = shard_keys_of(o, c, keys, NULL);
  if (rc != TIMERS_OK) return rc;
  redisReply *r;
  rc = tm__conn_command(c, &r, "ZSCORE %s %s", keys[TM_KEY_Z], o->id);
  if (rc == TIMERS_OK) o->result = r->type == REDIS_REPLY_STRING;
  if (r) freeReplyObject(r);
  return rc;
}

int tm__check_topic_id(timers_engine *e, const char *topic, const char *id) {
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  const tm_layout_ops *ops =
      tm__topics_configured(&e->topics, &e->core, topic).ops;
  int rc = ops->check_topic(topic);
  return rc == TIMERS_OK && id != NULL ? ops->check_id(id) : rc;
}

int timers_check_name(timers_engine *e, const char *topic, const char *id) {
  tm__error_clear();
  return tm__check_topic_id(e, topic, id);
}

int timers_cancel(timers_engine *e, const char *topic, const char *id,
                  bool *removed) {
  tm__error_clear();
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  tm_one o = {.e = e, .topic = topic, .id = id};
  tm__token_bytes(tm__random64(), o.token);
  if (rc == TIMERS_OK) rc = tm__pool_run(&e->pool, cancel_op, &o);
  if (removed) *removed = rc == TIMERS_OK && o.result > 0;
  return rc;
}

int timers_is_pending(timers_engine *e, const char *topic, const char *id,
                      bool *pending) {
  tm__error_clear();
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  if (rc == TIMERS_OK && !pending)
    return tm__error(TIMERS_EINVAL, "pending is NULL");
  tm_one o = {.e = e, .topic = topic, .id = id};
  if (rc == TIMERS_OK) rc = tm__pool_run(&e->pool, pending_op, &o);
  if (pending) *pending = rc == TIMERS_OK && o.result > 0;
  return rc;
}

typedef struct tm_move {
  tm_one one;
  double at;
  tm_layout layout;
  uint32_t shard;
} tm_move;

static int move_op(tm_conn *c, void *arg) {
  tm_move *m = arg;
  tm_one *o = &m->one;
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &m->layout);
  if (rc != TIMERS_OK) return rc;
  tm_keys keys;
  m->shard = timers_shard_of(o->id, strlen(o->id), m->layout.nshards);
  m->layout.ops->keys(keys, &o->e->core.names, o->topic, m->shard);
  char score[40], chan[TM_KEY_MAX] = "", shard[64], us[32];
  snprintf(score, sizeof score, "%.6f", m->at);
  snprintf(shard, sizeof shard, "%u %s", m->shard, o->e->core.member_id);
  snprintf(us, sizeof us, "%lld", (long long)llround(m->at * 1e6));
  if (m->layout.ops->has_wake)
    tm__wake_channel(chan, o->e->core.names.prefix, o->topic);
  const char *argv[8] = {keys[TM_KEY_Z], keys[TM_KEY_P], keys[TM_KEY_A],
                         o->id, score, chan, shard, us};
  return tm__conn_script_int(c, TM_SCRIPT_MOVE, 3, 8, argv, NULL, &o->result);
}

int timers_reschedule(timers_engine *e, const char *topic, const char *id,
                      double at, bool *moved) {
  tm__error_clear();
  if (moved) *moved = false;
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  if (rc == TIMERS_OK && !(at >= 0 && at <= 253402300799.0))
    rc = tm__error(TIMERS_EINVAL, "at = %g: a Unix time up to the year 9999",
                   at);
  if (rc != TIMERS_OK) return rc;
  tm_move m = {.one = {.e = e, .topic = topic, .id = id}, .at = at};
  rc = tm__pool_run(&e->pool, move_op, &m);
  if (rc == TIMERS_OK && m.one.result > 0) {
    tm_shard *s = tm__local_shard(e, topic, &m.layout, m.shard);
    if (s) tm__shard_hint(s, tm__secs_to_us(at), &e->core.contention);
  }
  if (moved) *moved = rc == TIMERS_OK && m.one.result > 0;
  return rc;
}

static int clear_op(tm_conn *c, void *arg) {
  tm_one *o = arg;
  tm_layout l;
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &l);
  uint32_t appended = 0;
  for (uint32_t s = 0; rc == TIMERS_OK && s < l.nshards; s++) {
    tm_keys keys;
    l.ops->keys(keys, &o->e->core.names, o->topic, s);
    const char *argv[3] = {keys[TM_KEY_Z], keys[TM_KEY_P], keys[TM_KEY_A]};
    rc = tm__conn_append_script(c, TM_SCRIPT_CLEAR, 3, 3, argv, NULL);
    appended += rc == TIMERS_OK;
  }
  o->result = 0;
  int rr = tm__conn_sum_replies(c, appended, &o->result);
  return rc != TIMERS_OK ? rc : rr;
}

int timers_cancel_all(timers_engine *e, const char *topic, uint64_t *count) {
  tm__error_clear();
  int rc = tm__check_topic_id(e, topic, NULL);
  tm_one o = {.e = e, .topic = topic};
  if (rc == TIMERS_OK) rc = tm__pool_run(&e->pool, clear_op, &o);
  if (count) *count = rc == TIMERS_OK ? (uint64_t)o.result : 0;
  return rc;
}
