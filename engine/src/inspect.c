/*
 * inspect.c - reading timers and shard depths without touching them: one
 * timer (score, attempts, envelope) and a topic's per-shard depth and
 * forecast, each in one pipelined round trip.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "codec.h"
#include "engine.h"
#include "error.h"
#include "keys.h"
#include "layout.h"
#include "validate.h"

typedef struct tm_inspect {
  timers_engine *e;
  const char *topic, *id;
  bool found;
  timers_timer_info *info;
} tm_inspect;

/* Copies the envelope's payload and headers into info (owned). */
static int fill_envelope(timers_timer_info *info, const tm_layout_ops *ops,
                         const redisReply *blob) {
  tm_message_copy m = {0};
  int rc = tm__layout_decode_copy(ops, blob->str, blob->len, info->score, &m);
  info->activate_at = m.activate_at;
  info->payload = m.payload, info->payload_len = m.payload_len;
  info->headers = m.headers, info->header_count = m.header_count;
  return rc;
}

static int inspect_op(tm_conn *c, void *arg) {
  tm_inspect *o = arg;
  tm_layout l;
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &l);
  if (rc != TIMERS_OK) return rc;
  uint32_t shard = timers_shard_of(o->id, strlen(o->id), l.nshards);
  tm_keys keys;
  l.ops->keys(keys, &o->e->core.names, o->topic, shard);
  static const char *const cmd[3] = {"ZSCORE %s %s", "HGET %s %s",
                                     "HGET %s %s"};
  for (int k = 0; k < 3; k++)
    if ((rc = tm__conn_append(c, cmd[k], keys[k], o->id)) != TIMERS_OK)
      return rc;
  redisReply *r[3] = {0};
  for (int k = 0; k < 3; k++) {
    int rr = tm__conn_reply(c, &r[k]);
    if (rc == TIMERS_OK) rc = rr;
    if (rr == TIMERS_ECONN) break;
  }
  o->found = rc == TIMERS_OK && r[0]->type == REDIS_REPLY_STRING &&
             r[1]->type == REDIS_REPLY_STRING;
  if (o->found) {
    timers_timer_info *info = o->info;
    memset(info, 0, sizeof *info);
    snprintf(info->id, sizeof info->id, "%s", o->id);
    info->shard = shard;
    info->score = strtod(r[0]->str, NULL);
    info->attempts = r[2]->type == REDIS_REPLY_STRING
                         ? (uint32_t)strtoul(r[2]->str, NULL, 10) : 0;
    rc = fill_envelope(info, l.ops, r[1]);
    /* NATIVE: a score away from the activation time is a lease (live or
     * run out): claimed at least once, and a first claim writes no count.
     * The score ("%.6f") and the envelope (rounded microseconds) may round
     * one microsecond apart: the claim script allows 2, so does this. In
     * the FASTSTREAM layout a lease and a future due time look alike. */
    info->lease_known = l.ops->kind == TIMERS_LAYOUT_NATIVE;
    bool claimed = info->lease_known &&
                   fabs(info->score - info->activate_at) >= 2e-6;
    if (claimed && info->attempts == 0) info->attempts = 1;
    info->leased =
        claimed && info->score * 1e6 > (double)tm__server_now_us(&o->e->core);
    if (rc != TIMERS_OK) timers_timer_info_free(info);
  }
  for (int k = 0; k < 3; k++)
    if (r[k]) freeReplyObject(r[k]);
  return rc;
}

int timers_inspect(timers_engine *e, const char *topic, const char *id,
                   bool *found, timers_timer_info *info) {
  tm__error_clear();
  if (!e || !found || !info)
    return tm__error(TIMERS_EINVAL, "engine, found or info is NULL");
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  if (rc != TIMERS_OK) return rc;
  tm_inspect o = {e, topic, id, false, info};
  rc = tm__pool_run(&e->pool, inspect_op, &o);
  *found = rc == TIMERS_OK && o.found;
  return rc;
}

void timers_timer_info_free(timers_timer_info *info) {
  if (!info) return;
  tm_message_copy m = {0, info->payload, info->payload_len, info->headers,
                       info->header_count};
  tm__message_copy_free(&m);
  info->payload = NULL, info->payload_len = 0;
  info->headers = NULL, info->header_count = 0;
}

/* --------------------------------------------------------------- depth */

enum { TM_DEPTH_CMDS = 7 };

typedef struct tm_depth_op {
  timers_engine *e;
  const char *topic;
  timers_topic_depth *d;
} tm_depth_op;

/* TM_DEPTH_CMDS commands. On an error the caller returns it at once: the
 * pool drops a connection after any error, unread replies with it. */
static int append_depth(tm_conn *c, const char *zkey, const char *xkey,
                        double now) {
  char lo[40], hi[3][40];
  snprintf(lo, sizeof lo, "%.6f", now);
  static const double window[3] = {60, 3600, 86400};
  for (int w = 0; w < 3; w++)
    snprintf(hi[w], sizeof hi[w], "%.6f", now + window[w]);
  int rc = tm__conn_append(c, "ZCARD %s", zkey);
  if (rc == TIMERS_OK) rc = tm__conn_append(c, "ZCOUNT %s -inf %s", zkey, lo);
  if (rc == TIMERS_OK)
    rc = tm__conn_append(c, "ZRANGE %s 0 0 WITHSCORES", zkey);
  for (int w = 0; w < 3 && rc == TIMERS_OK; w++)
    rc = tm__conn_append(c, "ZCOUNT %s (%s %s", zkey, lo, hi[w]);
  if (rc == TIMERS_OK) rc = tm__conn_append(c, "ZCARD %s", xkey);
  return rc;
}

static void take_depth(timers_shard_depth *sd, redisReply **r) {
  uint64_t v[TM_DEPTH_CMDS] = {0};
  for (int k = 0; k < TM_DEPTH_CMDS; k++)
    if (r[k]->type == REDIS_REPLY_INTEGER) v[k] = (uint64_t)r[k]->integer;
  sd->pending = v[0];
  sd->overdue = v[1];
  sd->oldest = r[2]->type == REDIS_REPLY_ARRAY && r[2]->elements == 2
                   ? strtod(r[2]->element[1]->str, NULL) : 0;
  sd->due_1m = v[3], sd->due_1h = v[4], sd->due_1d = v[5];
  sd->dead = v[6];
}

static void add_depth(timers_shard_depth *t, const timers_shard_depth *s) {
  t->pending += s->pending;
  t->overdue += s->overdue;
  t->due_1m += s->due_1m, t->due_1h += s->due_1h, t->due_1d += s->due_1d;
  t->dead += s->dead;
  if (s->pending && (t->oldest == 0 || s->oldest < t->oldest))
    t->oldest = s->oldest;
}

static int depth_op(tm_conn *c, void *arg) {
  tm_depth_op *o = arg;
  timers_topic_depth *d = o->d;
  tm_layout l;
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &l);
  if (rc != TIMERS_OK) return rc;
  uint32_t n = l.nshards;
  tm__free(d->per_shard); /* from an earlier try */
  if (!(d->per_shard = tm__calloc(n, sizeof *d->per_shard)))
    return tm__error(TIMERS_ENOMEM, "out of memory");
  d->shards = n;
  d->now = (double)tm__server_now_us(&o->e->core) / 1e6;
  memset(&d->total, 0, sizeof d->total);
  for (uint32_t s = 0; s < n; s++) {
    tm_keys keys;
    l.ops->keys(keys, &o->e->core.names, o->topic, s);
    rc = append_depth(c, keys[TM_KEY_Z], keys[TM_KEY_X], d->now);
    if (rc != TIMERS_OK) return rc;
  }
  for (uint32_t s = 0; s < n; s++) {
    redisReply *r[TM_DEPTH_CMDS] = {0};
    int bad = TIMERS_OK;
    for (int k = 0; k < TM_DEPTH_CMDS && bad != TIMERS_ECONN; k++) {
      int rr = tm__conn_reply(c, &r[k]);
      if (rr != TIMERS_OK && bad == TIMERS_OK) bad = rr;
      if (rr == TIMERS_ECONN) bad = rr;
    }
    if (bad == TIMERS_OK) {
      d->per_shard[s].shard = s;
      take_depth(&d->per_shard[s], r);
      add_depth(&d->total, &d->per_shard[s]);
    }
    for (int k = 0; k < TM_DEPTH_CMDS; k++)
      if (r[k]) freeReplyObject(r[k]);
    if (rc == TIMERS_OK) rc = bad;
    if (bad == TIMERS_ECONN) break; /* the connection is gone */
  }
  return rc;
}

int timers_topic_depth_get(timers_engine *e, const char *topic,
                           timers_topic_depth **out) {
  tm__error_clear();
  if (!e || !out) return tm__error(TIMERS_EINVAL, "engine or out is NULL");
  *out = NULL;
  int rc = tm__check_topic_id(e, topic, NULL);
  if (rc != TIMERS_OK) return rc;
  timers_topic_depth *d = tm__calloc(1, sizeof *d);
  if (!d) return tm__error(TIMERS_ENOMEM, "out of memory");
  tm_depth_op o = {e, topic, d};
  rc = tm__pool_run(&e->pool, depth_op, &o);
  if (rc != TIMERS_OK) {
    timers_topic_depth_free(d);
    return rc;
  }
  *out = d;
  return TIMERS_OK;
}

void timers_topic_depth_free(timers_topic_depth *d) {
  if (!d) return;
  tm__free(d->per_shard);
  tm__free(d);
}
