/*
 * pool.c - the producer connection pool (pool.h). The lock guards only the
 * list of idle connections: a call holds its connection without it.
 */
#include "pool.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"

void tm__pool_init(tm_pool *p, tm_core *core) {
  p->core = core;
  pthread_mutex_init(&p->lock, NULL);
  p->conns = NULL;
  p->n = p->cap = 0;
}

void tm__pool_free(tm_pool *p) {
  for (size_t i = 0; i < p->n; i++) {
    tm__conn_close(p->conns[i]);
    tm__free(p->conns[i]);
  }
  tm__free(p->conns);
  p->conns = NULL;
  p->n = p->cap = 0;
  pthread_mutex_destroy(&p->lock);
}

/* An idle connection, or a new unconnected one. */
static tm_conn *take(tm_pool *p) {
  tm_conn *c = NULL;
  tm__lock(&p->core->contention, &p->lock);
  if (p->n) c = p->conns[--p->n];
  pthread_mutex_unlock(&p->lock);
  return c ? c : tm__calloc(1, sizeof *c);
}

static void give(tm_pool *p, tm_conn *c) {
  tm__lock(&p->core->contention, &p->lock);
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 8;
    tm_conn **g = tm__realloc(p->conns, sizeof *g * cap);
    if (g) p->conns = g, p->cap = cap;
  }
  if (p->n < p->cap) {
    p->conns[p->n++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (c) tm__conn_close(c), tm__free(c);
}

static int connect(tm_pool *p, tm_conn *c) {
  int rc = tm__conn_open(c, &p->core->redis, true);
  if (rc == TIMERS_OK)
    atomic_store_explicit(&p->core->skew_us, c->skew_us, memory_order_relaxed);
  return rc;
}

int tm__pool_run(tm_pool *p, tm_op op, void *arg) {
  int64_t deadline =
      tm__mono_ns() + (int64_t)p->core->cfg.retry_ms * 1000000;
  int64_t backoff = 10 * 1000000;
  tm_conn *c = take(p);
  if (!c) return tm__error(TIMERS_ENOMEM, "out of memory");
  int rc;
  for (;;) {
    rc = c->ctx ? TIMERS_OK : connect(p, c);
    if (rc == TIMERS_OK) rc = op(c, arg);
    if (rc != TIMERS_ECONN) break;
    tm__conn_close(c); /* a reply may be half read: never reuse it */
    tm__count(&p->core->conn_errors, 1);
    if (tm__mono_ns() + backoff > deadline) break;
    tm__sleep_ns(backoff);
    if (backoff < 500 * 1000000) backoff *= 2;
  }
  /* After any error the pipeline may hold unread replies: never let them
   * be the next caller's answers. */
  if (rc != TIMERS_OK) tm__conn_close(c);
  give(p, c);
  return rc;
}
