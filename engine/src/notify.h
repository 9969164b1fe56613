/*
 * notify.h - wake-ups from other processes: a thread SUBSCRIBEd to the wake
 * channels of the subscribed topics whose layout has them, passing each
 * announcement to the shard's poller as a hint.
 */
#ifndef TIMERS_NOTIFY_H
#define TIMERS_NOTIFY_H

#include <pthread.h>
#include <stdbool.h>

#include "core.h"
#include "topics.h"

typedef struct tm_notify {
  tm_core *core;
  const tm_topics *topics;       /* frozen: read without locks */
  pthread_t thread;
  bool started;
  pthread_mutex_t lock;          /* guards fd against stop */
  int fd;                        /* -1 when not connected */
} tm_notify;

void tm__notify_init(tm_notify *n, tm_core *core, const tm_topics *topics);
/* Starts the thread if any subscribed topic has wake messages. */
int tm__notify_start(tm_notify *n);
/* Unblocks the thread (shutdown of its socket) and joins it. The engine's
 * state must already be past RUNNING. */
void tm__notify_stop(tm_notify *n);
void tm__notify_destroy(tm_notify *n);

#endif
