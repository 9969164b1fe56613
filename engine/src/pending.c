/*
 * pending.c - walking a topic's timers in pages, merged across shards in
 * activation order.
 *
 * Each shard is read with keyset pagination: ZRANGE key [last +max BYSCORE
 * LIMIT ties PAGE WITHSCORES, where `last` is the last score seen and `ties`
 * how many members with exactly that score were already returned. No page
 * is larger than PAGE, whatever the topic's size; like SCAN, timers added
 * or removed during the walk may or may not be seen.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine.h"
#include "error.h"
#include "keys.h"
#include "validate.h"

enum { TM_PAGE = 1000 };

typedef struct tm_cursor {
  redisReply *page;   /* flat: id, score, id, score ... */
  size_t pos;         /* index of the next id in page   */
  char min[48];       /* next page starts at this score  */
  long long ties;     /* members at `min` already seen   */
  bool done;
} tm_cursor;

struct timers_pending_iter {
  timers_engine *e;
  char topic[TIMERS_TOPIC_MAX + 1];
  char max[48];
  uint32_t nshards;
  tm_layout layout;
  tm_cursor *cur;
  uint32_t refill;    /* shard being refilled (for the op) */
  int key;            /* TM_KEY_Z (timers) or TM_KEY_X (dead letters) */
  char *id;           /* the last id returned, owned */
  size_t id_cap;
};

static int shards_op(tm_conn *c, void *arg) {
  timers_pending_iter *it = arg;
  int rc = tm__topics_resolve(&it->e->topics, &it->e->core, c, it->topic,
                              false, &it->layout);
  it->nshards = it->layout.nshards;
  return rc;
}

/* An iterator over the sorted set `key` of every shard of topic. */
static int iter_open(timers_engine *e, const char *topic, int key,
                     bool has_before, double before,
                     timers_pending_iter **out) {
  if (!out) return tm__error(TIMERS_EINVAL, "out is NULL");
  *out = NULL;
  if (!e) return tm__error(TIMERS_EINVAL, "engine is NULL");
  int rc = tm__check_topic_id(e, topic, NULL);
  if (rc != TIMERS_OK) return rc;
  if (key == TM_KEY_X) rc = tm__check_dead_letters(e, topic);
  if (rc != TIMERS_OK) return rc;
  if (has_before && isnan(before))
    return tm__error(TIMERS_EINVAL, "before is NaN");
  timers_pending_iter *it = tm__calloc(1, sizeof *it);
  if (!it) return tm__error(TIMERS_ENOMEM, "out of memory");
  it->e = e;
  it->key = key;
  snprintf(it->topic, sizeof it->topic, "%s", topic);
  if (has_before && isfinite(before))
    snprintf(it->max, sizeof it->max, "%.6f", before);
  else
    snprintf(it->max, sizeof it->max, "%s", before < 0 ? "-inf" : "+inf");
  if ((rc = tm__pool_run(&e->pool, shards_op, it)) == TIMERS_OK &&
      !(it->cur = tm__calloc(it->nshards, sizeof *it->cur)))
    rc = tm__error(TIMERS_ENOMEM, "out of memory");
  if (rc != TIMERS_OK) {
    timers_pending_close(it);
    return rc;
  }
  for (uint32_t s = 0; s < it->nshards; s++)
    snprintf(it->cur[s].min, sizeof it->cur[s].min, "-inf");
  *out = it;
  return TIMERS_OK;
}

int timers_pending_open(timers_engine *e, const char *topic, bool has_before,
                        double before, timers_pending_iter **out) {
  tm__error_clear();
  return iter_open(e, topic, TM_KEY_Z, has_before, before, out);
}

int timers_dead_open(timers_engine *e, const char *topic,
                     timers_pending_iter **out) {
  tm__error_clear();
  return iter_open(e, topic, TM_KEY_X, false, 0, out);
}

static bool page_ok(const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) return false;
  for (size_t k = 0; k < r->elements; k++)
    if (r->element[k]->type != REDIS_REPLY_STRING) return false;
  return true;
}

static int refill_op(tm_conn *c, void *arg) {
  timers_pending_iter *it = arg;
  tm_cursor *cu = &it->cur[it->refill];
  tm_keys keys;
  char off[24], count[24];
  it->layout.ops->keys(keys, &it->e->core.names, it->topic, it->refill);
  const char *key = keys[it->key];
  snprintf(off, sizeof off, "%lld", cu->ties);
  snprintf(count, sizeof count, "%d", TM_PAGE);
  const char *argv[] = {"ZRANGE", key, cu->min, it->max, "BYSCORE",
                        "LIMIT", off, count, "WITHSCORES"};
  size_t len[9];
  for (int k = 0; k < 9; k++) len[k] = strlen(argv[k]);
  redisReply *r = NULL;
  int rc = tm__conn_append_argv(c, 9, argv, len);
  if (rc == TIMERS_OK) rc = tm__conn_reply(c, &r);
  if (rc == TIMERS_OK && !page_ok(r))
    rc = tm__error(TIMERS_EREDIS, "ZRANGE %s: unexpected reply", key);
  if (rc == TIMERS_OK) cu->page = r, r = NULL;
  if (r) freeReplyObject(r);
  return rc;
}

/* Moves the cursor past its page: the next page starts at the last score,
 * skipping the members at that score seen so far. */
static void advance_min(tm_cursor *cu) {
  redisReply *p = cu->page;
  size_t n = p->elements / 2;
  const char *last = p->element[p->elements - 1]->str;
  long long at_last = 0;
  for (size_t k = n; k > 0 && strcmp(p->element[2 * k - 1]->str, last) == 0; k--)
    at_last++;
  cu->ties = strcmp(cu->min, last) == 0 && (size_t)at_last == n
                 ? cu->ties + at_last
                 : at_last;
  snprintf(cu->min, sizeof cu->min, "%s", last);
  cu->done = n < TM_PAGE;
}

/* Makes sure shard s has a current element unless it is done. */
static int ensure(timers_pending_iter *it, uint32_t s) {
  tm_cursor *cu = &it->cur[s];
  while (!cu->done && (!cu->page || cu->pos >= cu->page->elements)) {
    if (cu->page) {
      advance_min(cu);
      freeReplyObject(cu->page);
      cu->page = NULL;
      cu->pos = 0;
      if (cu->done) break;
    }
    it->refill = s;
    int rc = tm__pool_run(&it->e->pool, refill_op, it);
    if (rc != TIMERS_OK) return rc;
    if (cu->page->elements == 0) cu->done = true;
  }
  return TIMERS_OK;
}

/* Keeps a copy of the id for the caller (ids may be long in FASTSTREAM). */
static int keep_id(timers_pending_iter *it, const redisReply *r) {
  if (r->len + 1 > it->id_cap) {
    char *g = tm__realloc(it->id, r->len + 1);
    if (!g) return tm__error(TIMERS_ENOMEM, "out of memory");
    it->id = g, it->id_cap = r->len + 1;
  }
  memcpy(it->id, r->str, r->len + 1);
  return TIMERS_OK;
}

int timers_pending_next(timers_pending_iter *it, const char **id, double *at) {
  tm__error_clear();
  if (!it || !id) return tm__error(TIMERS_EINVAL, "iterator or id is NULL");
  int best = -1;
  double best_at = 0;
  for (uint32_t s = 0; s < it->nshards; s++) {
    int rc = ensure(it, s);
    if (rc != TIMERS_OK) return rc;
    tm_cursor *cu = &it->cur[s];
    if (!cu->page || cu->pos >= cu->page->elements) continue;
    double v = strtod(cu->page->element[cu->pos + 1]->str, NULL);
    if (best < 0 || v < best_at) best = (int)s, best_at = v;
  }
  if (best < 0) return TIMERS_EDONE;
  tm_cursor *cu = &it->cur[best];
  int rc = keep_id(it, cu->page->element[cu->pos]);
  if (rc != TIMERS_OK) return rc;
  cu->pos += 2;
  *id = it->id;
  if (at) *at = best_at;
  return TIMERS_OK;
}

void timers_pending_close(timers_pending_iter *it) {
  if (!it) return;
  for (uint32_t s = 0; it->cur && s < it->nshards; s++)
    if (it->cur[s].page) freeReplyObject(it->cur[s].page);
  tm__free(it->cur);
  tm__free(it->id);
  tm__free(it);
}
