/*
 * pool.h - connections for application threads (schedule, cancel, inspect,
 * ...): each call borrows one, so calls from many threads run in parallel,
 * and runs its operation with retries.
 */
#ifndef TIMERS_POOL_H
#define TIMERS_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "conn.h"
#include "core.h"

typedef struct tm_pool {
  tm_core *core;                 /* address, retry_ms, counters, skew */
  pthread_mutex_t lock;          /* guards conns only */
  tm_conn **conns;               /* idle connections, owned */
  size_t n, cap;
} tm_pool;

void tm__pool_init(tm_pool *p, tm_core *core);
/* Closes every idle connection. No call may be running. */
void tm__pool_free(tm_pool *p);

/* An operation on a connected c: appends its commands and reads exactly
 * their replies. It may run several times (retries), so it must be
 * idempotent and reset what it produced on a previous try. */
typedef int (*tm_op)(tm_conn *c, void *arg);

/* Runs op on a pooled connection. On TIMERS_ECONN (the connection is then
 * closed) it reconnects and runs op again, with backoff, within retry_ms,
 * then returns TIMERS_ECONN. Other errors return at once. Thread-safe. */
int tm__pool_run(tm_pool *p, tm_op op, void *arg);

#endif
