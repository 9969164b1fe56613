/*
 * notify.c - wake-ups from other processes. A schedule that makes a new
 * earliest timer in a shard PUBLISHes "shard score" on the topic's wake
 * channel (scripts.c); this thread SUBSCRIBEs to the channels of the
 * subscribed topics and passes each announcement to the shard's poller as
 * a hint, so an idle engine fires a timer another process scheduled within
 * milliseconds instead of after its longest sleep.
 *
 * Pub/sub is fire-and-forget: after every (re)subscribe all shards are
 * looked at again, so a message missed while disconnected costs at most one
 * extra claim per shard. The blocking read has no timeout; stop() unblocks it
 * with shutdown() on the socket (notify_lock guards the descriptor).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "clock.h"
#include "engine.h"
#include "keys.h"

static bool running(timers_engine *e) {
  return atomic_load(&e->state) == TM_RUNNING;
}

void tm__notify_stop(timers_engine *e) {
  pthread_mutex_lock(&e->notify_lock);
  if (e->notify_fd >= 0) shutdown(e->notify_fd, SHUT_RDWR);
  pthread_mutex_unlock(&e->notify_lock);
}

/* Publishes the socket for stop(); false if stop() already began. */
static bool publish_fd(timers_engine *e, int fd) {
  pthread_mutex_lock(&e->notify_lock);
  bool ok = fd < 0 || running(e);
  e->notify_fd = ok ? fd : -1;
  pthread_mutex_unlock(&e->notify_lock);
  return ok;
}

static int subscribe_all(timers_engine *e, tm_conn *c) {
  for (size_t i = 0; i < e->ntopics; i++) {
    char chan[TM_KEY_MAX];
    tm__wake_channel(chan, e->key_prefix, e->topics[i]->name);
    if (redisAppendCommand(c->ctx, "SUBSCRIBE %s", chan) != REDIS_OK)
      return -1;
  }
  return 0;
}

static void rescan_all(timers_engine *e) {
  for (size_t i = 0; i < e->nshards; i++) tm__shard_hint(e->shards[i], 0);
}

static void on_message(timers_engine *e, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(r->element[0]->str, "message") != 0)
    return;
  const char *chan = r->element[1]->str, *data = r->element[2]->str;
  size_t plen = strlen(e->key_prefix);
  if (strncmp(chan, e->key_prefix, plen) != 0 ||
      strncmp(chan + plen, ":wake:", 6) != 0)
    return;
  tm_topic *t = tm__topic_find(e, chan + plen + 6);
  char *end;
  unsigned long shard = strtoul(data, &end, 10);
  double at = strtod(end, NULL);
  if (t && shard < t->nshards && at >= 0)
    tm__shard_hint(&t->shards[shard], tm__secs_to_us(at));
}

static void listen_loop(timers_engine *e, tm_conn *c) {
  void *r;
  while (running(e) && redisGetReply(c->ctx, &r) == REDIS_OK && r) {
    on_message(e, r);
    freeReplyObject(r);
  }
}

/* Sleeps up to ns in short steps, returning early once stop() begins. */
static void pause_while_running(timers_engine *e, int64_t ns) {
  for (int64_t end = tm__mono_ns() + ns; running(e) && tm__mono_ns() < end;)
    tm__sleep_ns(20 * 1000000);
}

void *tm__notify_main(void *arg) {
  timers_engine *e = arg;
  int64_t backoff = 0;
  while (running(e)) {
    tm_conn c = {0};
    if (tm__conn_open(&c, &e->redis, false) != TIMERS_OK) {
      backoff = backoff ? (backoff < 2000000000 ? backoff * 2 : backoff)
                        : 50000000;
      pause_while_running(e, backoff);
      continue;
    }
    backoff = 0;
    if (publish_fd(e, c.ctx->fd) && subscribe_all(e, &c) == 0) {
      rescan_all(e);
      listen_loop(e, &c);
    }
    publish_fd(e, -1);
    tm__conn_close(&c);
  }
  return NULL;
}
