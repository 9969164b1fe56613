/*
 * worker.h - worker threads run the handlers. They never touch Redis: a job
 * comes from a poller's work ring (lane.h) and goes back, with its outcome,
 * on the worker's own done ring of that poller.
 */
#ifndef TIMERS_WORKER_H
#define TIMERS_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core.h"
#include "lane.h"

struct tm_poller;

typedef struct tm_workers {
  tm_core *core;
  tm_lane **lanes;               /* one per poller, not owned */
  int nlanes;
  tm_idle idle;
  pthread_t *threads;            /* owned */
  int n, started;
  bool spin;                     /* fewer workers than cores: spin a while
                                    before sleeping */
  _Atomic int quit;              /* release by stop, acquire by workers */
} tm_workers;

/* The thread running a handler, if any (stop/destroy refuse from it). */
extern _Thread_local bool tm__in_handler;

int tm__workers_init(tm_workers *w, tm_core *core, tm_lane **lanes,
                     int nlanes, int n);
int tm__workers_start(tm_workers *w);
/* Tells every worker to exit once the rings are empty, and joins them. */
void tm__workers_stop(tm_workers *w);
void tm__workers_destroy(tm_workers *w);

#endif
