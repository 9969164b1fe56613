/*
 * dead.c - the dead-letter set of a topic (NATIVE layout): inspecting a
 * dead letter, putting it back on the timeline, purging. The set itself is
 * written by the claim and settle scripts (scripts.c DEAD_LETTER): per
 * shard, x (id -> when) and y (id -> record: u8 1, u32 attempts, u64 dead
 * time in microseconds, u16 reason length, reason, envelope). Listing is
 * the pending iterator over x (pending.c, timers_dead_open).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bytes.h"
#include "engine.h"
#include "error.h"
#include "layout.h"
#include "scripts.h"

enum { TM_DEAD_HEAD = 1 + 4 + 8 + 2 };

typedef struct tm_dead_op {
  timers_engine *e;
  const char *topic, *id;
  tm_layout layout;
  uint32_t shard;
  redisReply *record;        /* inspect */
  const char *at;            /* requeue: score, "" for now */
  long long result;
} tm_dead_op;

int tm__check_dead_letters(timers_engine *e, const char *topic) {
  const tm_layout_ops *ops =
      tm__topics_configured(&e->topics, &e->core, topic).ops;
  if (ops->has_dead_letters) return TIMERS_OK;
  return tm__error(TIMERS_EINVAL, "topic '%s' uses the %s layout, which has "
                   "no dead-letter set", topic, ops->name);
}

/* The topic's layout and the id's shard; dead letters need NATIVE. */
static int locate(tm_dead_op *o, tm_conn *c, tm_keys keys) {
  int rc = tm__topics_resolve(&o->e->topics, &o->e->core, c, o->topic, false,
                              &o->layout);
  if (rc != TIMERS_OK) return rc;
  if (!o->layout.ops->has_dead_letters)
    return tm__error(TIMERS_EINVAL, "topic '%s' uses the %s layout, which "
                     "has no dead-letter set", o->topic, o->layout.ops->name);
  o->shard = o->id ? timers_shard_of(o->id, strlen(o->id), o->layout.nshards)
                   : 0;
  o->layout.ops->keys(keys, &o->e->core.names, o->topic, o->shard);
  return TIMERS_OK;
}

/* KEYS z p a x y, then ARGV. */
static int run_script(tm_conn *c, tm_script s, tm_keys keys, int nargs,
                      const char **args, redisReply **r) {
  const char *argv[TM_CORE_KEYS + 4];
  for (int k = 0; k < TM_CORE_KEYS; k++) argv[k] = keys[k];
  for (int k = 0; k < nargs; k++) argv[TM_CORE_KEYS + k] = args[k];
  return tm__conn_script(c, s, TM_CORE_KEYS, TM_CORE_KEYS + nargs, argv, NULL,
                         r);
}

/* ---------------------------------------------------------------- inspect */

static int inspect_op(tm_conn *c, void *arg) {
  tm_dead_op *o = arg;
  tm_keys keys;
  int rc = locate(o, c, keys);
  if (rc != TIMERS_OK) return rc;
  if (o->record) freeReplyObject(o->record), o->record = NULL;
  rc = tm__conn_command(c, &o->record, "HGET %s %s", keys[TM_KEY_Y], o->id);
  return rc;
}

/* Copies the decoded envelope into info (owned). */
static int fill(timers_dead_info *info, const tm_layout_ops *ops,
                const char *env, size_t len, double score) {
  tm_message_copy m = {0};
  int rc = tm__layout_decode_copy(ops, env, len, score, &m);
  info->activate_at = m.activate_at;
  info->payload = m.payload, info->payload_len = m.payload_len;
  info->headers = m.headers, info->header_count = m.header_count;
  return rc;
}

static int parse_record(timers_dead_info *info, const tm_dead_op *o,
                        const redisReply *r) {
  const char *p = r->str;
  size_t len = r->len;
  if (len < TM_DEAD_HEAD || (unsigned char)p[0] != 1)
    return tm__error(TIMERS_EREDIS, "dead letter '%s': not a record of this "
                     "engine", o->id);
  size_t rlen = tm__get_be(p + 13, 2);
  if (TM_DEAD_HEAD + rlen > len)
    return tm__error(TIMERS_EREDIS, "dead letter '%s': truncated record",
                     o->id);
  memset(info, 0, sizeof *info);
  snprintf(info->id, sizeof info->id, "%s", o->id);
  info->shard = o->shard;
  info->attempts = (uint32_t)tm__get_be(p + 1, 4);
  info->dead_at = (double)tm__get_be(p + 5, 8) / 1e6;
  size_t keep = rlen < sizeof info->reason - 1 ? rlen : sizeof info->reason - 1;
  memcpy(info->reason, p + TM_DEAD_HEAD, keep);
  info->reason[keep] = '\0';
  const char *env = p + TM_DEAD_HEAD + rlen;
  int rc = fill(info, o->layout.ops, env, len - TM_DEAD_HEAD - rlen, 0);
  if (rc != TIMERS_OK) timers_dead_info_free(info);
  return rc;
}

int timers_dead_inspect(timers_engine *e, const char *topic, const char *id,
                        bool *found, timers_dead_info *info) {
  tm__error_clear();
  if (!e || !found || !info)
    return tm__error(TIMERS_EINVAL, "engine, found or info is NULL");
  *found = false;
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  if (rc == TIMERS_OK) rc = tm__check_dead_letters(e, topic);
  if (rc != TIMERS_OK) return rc;
  tm_dead_op o = {.e = e, .topic = topic, .id = id};
  rc = tm__pool_run(&e->pool, inspect_op, &o);
  if (rc == TIMERS_OK && o.record->type == REDIS_REPLY_STRING) {
    rc = parse_record(info, &o, o.record);
    *found = rc == TIMERS_OK;
  }
  if (o.record) freeReplyObject(o.record);
  return rc;
}

void timers_dead_info_free(timers_dead_info *info) {
  if (!info) return;
  tm_message_copy m = {0, info->payload, info->payload_len, info->headers,
                       info->header_count};
  tm__message_copy_free(&m);
  info->payload = NULL, info->payload_len = 0;
  info->headers = NULL, info->header_count = 0;
}

/* ---------------------------------------------------------------- requeue */

static int requeue_op(tm_conn *c, void *arg) {
  tm_dead_op *o = arg;
  tm_keys keys;
  int rc = locate(o, c, keys);
  if (rc != TIMERS_OK) return rc;
  char chan[TM_KEY_MAX] = "", shard[64];
  if (o->layout.ops->has_wake)
    tm__wake_channel(chan, o->e->core.names.prefix, o->topic);
  snprintf(shard, sizeof shard, "%u %s", o->shard, o->e->core.member_id);
  const char *args[] = {o->id, o->at, chan, shard};
  redisReply *r;
  rc = run_script(c, TM_SCRIPT_REQUEUE, keys, 4, args, &r);
  if (rc == TIMERS_OK) o->result = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r) freeReplyObject(r);
  return rc;
}

int timers_dead_requeue(timers_engine *e, const char *topic, const char *id,
                        bool has_at, double at, bool *requeued) {
  tm__error_clear();
  if (requeued) *requeued = false;
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK && !id) rc = tm__error(TIMERS_EINVAL, "id is NULL");
  if (rc == TIMERS_OK) rc = tm__check_dead_letters(e, topic);
  if (rc == TIMERS_OK && has_at && !(at >= 0 && at <= 253402300799.0))
    rc = tm__error(TIMERS_EINVAL, "at = %g: a Unix time up to the year 9999",
                   at);
  if (rc != TIMERS_OK) return rc;
  char score[40] = "";
  if (has_at) snprintf(score, sizeof score, "%.6f", at);
  tm_dead_op o = {.e = e, .topic = topic, .id = id, .at = score};
  rc = tm__pool_run(&e->pool, requeue_op, &o);
  if (rc == TIMERS_OK && o.result > 0) {
    tm_shard *s = tm__local_shard(e, topic, &o.layout, o.shard);
    if (s)
      tm__shard_hint(s, has_at ? tm__secs_to_us(at)
                               : tm__server_now_us(&e->core),
                     &e->core.contention);
  }
  if (requeued) *requeued = rc == TIMERS_OK && o.result > 0;
  return rc;
}

/* ------------------------------------------------------------------ purge */

static int purge_op(tm_conn *c, void *arg) {
  tm_dead_op *o = arg;
  tm_keys keys;
  int rc = locate(o, c, keys);
  if (rc != TIMERS_OK) return rc;
  o->result = 0;
  uint32_t from = o->id ? o->shard : 0;
  uint32_t to = o->id ? o->shard + 1 : o->layout.nshards;
  uint32_t appended = 0;
  for (uint32_t s = from; s < to && rc == TIMERS_OK; s++) {
    o->layout.ops->keys(keys, &o->e->core.names, o->topic, s);
    const char *argv[TM_CORE_KEYS + 1];
    int argc = TM_CORE_KEYS;
    for (int k = 0; k < TM_CORE_KEYS; k++) argv[k] = keys[k];
    if (o->id) argv[argc++] = o->id;
    rc = tm__conn_append_script(c, TM_SCRIPT_PURGE, TM_CORE_KEYS, argc, argv,
                                NULL);
    appended += rc == TIMERS_OK;
  }
  if (rc != TIMERS_OK) return rc; /* the pool drops the connection */
  return tm__conn_sum_replies(c, appended, &o->result);
}

int timers_dead_purge(timers_engine *e, const char *topic, const char *id,
                      uint64_t *count) {
  tm__error_clear();
  if (count) *count = 0;
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic_id(e, topic, id);
  if (rc == TIMERS_OK) rc = tm__check_dead_letters(e, topic);
  if (rc != TIMERS_OK) return rc;
  tm_dead_op o = {.e = e, .topic = topic, .id = id};
  rc = tm__pool_run(&e->pool, purge_op, &o);
  if (count && rc == TIMERS_OK) *count = (uint64_t)o.result;
  return rc;
}
