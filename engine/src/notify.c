/*
 * notify.c - wake-ups from other processes (notify.h). A schedule that
 * makes a new earliest timer in a shard PUBLISHes "shard score" on the
 * topic's wake channel (scripts.c); this thread passes it to the shard's
 * poller as a hint, so an idle engine fires a timer another process
 * scheduled within milliseconds instead of after its longest sleep.
 *
 * Pub/sub is fire-and-forget: after every (re)subscribe all shards are
 * looked at again, so a message missed while disconnected costs at most one
 * extra claim per shard. The blocking read has no timeout; stop unblocks it
 * with shutdown() on the socket (the lock guards the descriptor).
 */
#include "notify.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "error.h"
#include "keys.h"

static bool running(const tm_notify *n) {
  return atomic_load_explicit(&n->core->state, memory_order_acquire) ==
         TM_RUNNING;
}

void tm__notify_init(tm_notify *n, tm_core *core, const tm_topics *topics) {
  n->core = core;
  n->topics = topics;
  n->started = false;
  n->fd = -1;
  pthread_mutex_init(&n->lock, NULL);
}

void tm__notify_destroy(tm_notify *n) { pthread_mutex_destroy(&n->lock); }

/* Publishes the socket for stop; false if stop already began. */
static bool publish_fd(tm_notify *n, int fd) {
  pthread_mutex_lock(&n->lock);
  bool ok = fd < 0 || running(n);
  n->fd = ok ? fd : -1;
  pthread_mutex_unlock(&n->lock);
  return ok;
}

/* Appends a SUBSCRIBE per topic with wake messages; how many. */
static int subscribe_all(tm_notify *n, tm_conn *c, size_t *count) {
  *count = 0;
  for (size_t i = 0; i < n->topics->nsubscribed; i++) {
    const tm_topic *t = n->topics->subscribed[i];
    if (!t->ops->has_wake) continue;
    char chan[TM_KEY_MAX];
    tm__wake_channel(chan, n->core->names.prefix, t->name);
    int rc = tm__conn_append(c, "SUBSCRIBE %s", chan);
    if (rc != TIMERS_OK) return rc;
    (*count)++;
  }
  return TIMERS_OK;
}

static void rescan_all(tm_notify *n) {
  for (size_t i = 0; i < n->topics->nsubscribed; i++) {
    tm_topic *t = n->topics->subscribed[i];
    for (uint32_t s = 0; s < t->nshards; s++)
      tm__shard_hint(&t->shards[s], 0, &n->core->contention);
  }
}

static void on_message(tm_notify *n, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING ||
      r->element[2]->type != REDIS_REPLY_STRING ||
      strcmp(r->element[0]->str, "message") != 0)
    return;
  const char *topic, *from;
  size_t from_len;
  uint32_t shard;
  double at;
  if (tm__wake_parse(n->core->names.prefix, r->element[1]->str,
                     r->element[2]->str, &topic, &shard, &at, &from,
                     &from_len) != 0)
    return;
  /* Our own schedules hinted our pollers already. */
  if (from && from_len == strlen(n->core->member_id) &&
      memcmp(from, n->core->member_id, from_len) == 0)
    return;
  tm_topic *t = tm__topics_find(n->topics, topic);
  if (t && shard < t->nshards)
    tm__shard_hint(&t->shards[shard], tm__secs_to_us(at),
                   &n->core->contention);
}

static void listen_loop(tm_notify *n, tm_conn *c) {
  redisReply *r = NULL;
  while (running(n) && tm__conn_reply(c, &r) == TIMERS_OK) {
    on_message(n, r);
    freeReplyObject(r);
    r = NULL;
  }
  if (r) freeReplyObject(r); /* an error reply */
}

/* Sleeps up to ns in short steps, returning early once stop begins. */
static void pause_while_running(tm_notify *n, int64_t ns) {
  for (int64_t end = tm__mono_ns() + ns; running(n) && tm__mono_ns() < end;)
    tm__sleep_ns(20 * 1000000);
}

static void *notify_main(void *arg) {
  tm_notify *n = arg;
  int64_t backoff = 0;
  tm_ratelimit rl = {0};
  while (running(n)) {
    tm_conn c = {0};
    size_t subs = 0;
    if (tm__conn_open(&c, &n->core->redis, false) != TIMERS_OK) {
      tm__log_limited(&n->core->log, &rl, TIMERS_LOG_WARN,
                      "wake-up subscriber: %s", timers_last_error());
      backoff = backoff ? (backoff < 2000000000 ? backoff * 2 : backoff)
                        : 50000000;
      pause_while_running(n, backoff);
      continue;
    }
    backoff = 0;
    if (publish_fd(n, c.ctx->fd) && subscribe_all(n, &c, &subs) == TIMERS_OK) {
      rescan_all(n);
      listen_loop(n, &c);
    }
    publish_fd(n, -1);
    tm__conn_close(&c);
  }
  return NULL;
}

int tm__notify_start(tm_notify *n) {
  bool any = false;
  for (size_t i = 0; i < n->topics->nsubscribed; i++)
    any = any || n->topics->subscribed[i]->ops->has_wake;
  if (!any) return TIMERS_OK;
  if (pthread_create(&n->thread, NULL, notify_main, n) != 0)
    return tm__error(TIMERS_ESYS, "cannot start the notify thread");
  n->started = true;
  return TIMERS_OK;
}

void tm__notify_stop(tm_notify *n) {
  if (!n->started) return;
  pthread_mutex_lock(&n->lock);
  if (n->fd >= 0) shutdown(n->fd, SHUT_RDWR);
  pthread_mutex_unlock(&n->lock);
  pthread_join(n->thread, NULL);
  n->started = false;
}
