/*
 * ring_queues.c - see ring_queues.h. Includes the engine's private ring.h
 * (header-only): the one documented exception, with scripts.h, to "bench
 * uses the public API only" (bench/CMakeLists.txt).
 *
 * A ck ring never blocks: a producer that finds it full, or a consumer that
 * finds it empty, spins briefly then yields the CPU (this machine has two
 * cores and up to eight threads here). The mutex queue blocks on its
 * condition variables instead. Values are (producer << 40 | sequence + 1),
 * never NULL; consumers sum them and the run compares with the sum of what
 * the producers report having pushed.
 */
#include "ring_queues.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "ring.h"

typedef struct mutex_queue {
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  void **slots;
  unsigned cap, head, count;
  int producers_left; /* under lock */
  uint64_t waits;     /* under lock */
} mutex_queue;

typedef struct rq_shared {
  rq_kind kind;
  int producers, consumers;
  uint64_t items;
  double deadline;  /* monotonic seconds; producers stop after it */
  tm_ring ring;
  mutex_queue mq;
  pthread_barrier_t start;
  /* expected: what producers pushed, added by each as it ends (release);
   * producers_done counts them, so a consumer that reads producers_done ==
   * producers (acquire) sees every push and every expected. */
  _Atomic uint64_t produced, expected, consumed, sum, full, empty;
  _Atomic int producers_done;
} rq_shared;

typedef struct rq_thread {
  rq_shared *s;
  int index;
  pthread_t tid;
} rq_thread;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void backoff(unsigned *spins) {
  if (++*spins < 64) {
    ck_pr_stall();
  } else {
    *spins = 0;
    sched_yield();
  }
}

/* ----------------------------------------------------------- mutex queue */

static void mq_push(mutex_queue *q, void *v) {
  pthread_mutex_lock(&q->lock);
  while (q->count == q->cap) {
    q->waits++;
    pthread_cond_wait(&q->not_full, &q->lock);
  }
  q->slots[(q->head + q->count++) % q->cap] = v;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

static void mq_producer_done(mutex_queue *q) {
  pthread_mutex_lock(&q->lock);
  if (--q->producers_left == 0) pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

/* false once the queue is empty and every producer is done. */
static bool mq_pop(mutex_queue *q, void **v) {
  pthread_mutex_lock(&q->lock);
  while (q->count == 0 && q->producers_left > 0) {
    q->waits++;
    pthread_cond_wait(&q->not_empty, &q->lock);
  }
  bool ok = q->count > 0;
  if (ok) {
    *v = q->slots[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

/* -------------------------------------------------------------- threads */

static bool ring_push(rq_shared *s, void *v) {
  switch (s->kind) {
    case RQ_CK_SPSC: return ck_ring_enqueue_spsc(&s->ring.ring, s->ring.slots, v);
    case RQ_CK_SPMC: return tm__ring_push_spmc(&s->ring, v);
    case RQ_CK_MPSC: return tm__ring_push_mpsc(&s->ring, v);
    default: return ck_ring_enqueue_mpmc(&s->ring.ring, s->ring.slots, v);
  }
}

static bool ring_pop(rq_shared *s, void **v) {
  switch (s->kind) {
    case RQ_CK_SPSC: return ck_ring_dequeue_spsc(&s->ring.ring, s->ring.slots, v);
    case RQ_CK_SPMC: return tm__ring_pop_spmc(&s->ring, v);
    case RQ_CK_MPSC: return tm__ring_pop_mpsc(&s->ring, v);
    default: return ck_ring_dequeue_mpmc(&s->ring.ring, s->ring.slots, v);
  }
}

static uint64_t share(const rq_shared *s, int index) {
  uint64_t n = s->items / (uint64_t)s->producers;
  return (uint64_t)index < s->items % (uint64_t)s->producers ? n + 1 : n;
}

static void push_one(rq_shared *s, void *v, uint64_t *full) {
  if (s->kind == RQ_MUTEX) {
    mq_push(&s->mq, v);
    return;
  }
  unsigned spins = 0;
  while (!ring_push(s, v)) {
    (*full)++;
    backoff(&spins);
  }
}

static void *producer_main(void *arg) {
  rq_thread *t = arg;
  rq_shared *s = t->s;
  uint64_t n = share(s, t->index), full = 0, k = 0, sum = 0;
  pthread_barrier_wait(&s->start);
  for (; k < n; k++) {
    if ((k & 15) == 0 && now_s() > s->deadline) break;
    uint64_t v = ((uint64_t)t->index << 40) | (k + 1);
    push_one(s, (void *)(uintptr_t)v, &full);
    sum += v;
  }
  atomic_fetch_add_explicit(&s->full, full, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->produced, k, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->expected, sum, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->producers_done, 1, memory_order_release);
  if (s->kind == RQ_MUTEX) mq_producer_done(&s->mq);
  return NULL;
}

/* Whether every producer is done and nothing is left in the ring. */
static bool ring_finished(rq_shared *s) {
  if (atomic_load_explicit(&s->producers_done, memory_order_acquire) <
      s->producers)
    return false;
  return atomic_load_explicit(&s->consumed, memory_order_acquire) >=
         atomic_load_explicit(&s->produced, memory_order_relaxed);
}

static void *consumer_main(void *arg) {
  rq_thread *t = arg;
  rq_shared *s = t->s;
  uint64_t sum = 0, empty = 0;
  unsigned spins = 0;
  pthread_barrier_wait(&s->start);
  for (;;) {
    void *v;
    if (s->kind == RQ_MUTEX) {
      if (!mq_pop(&s->mq, &v)) break;
    } else if (!ring_pop(s, &v)) {
      if (ring_finished(s)) break;
      empty++;
      backoff(&spins);
      continue;
    }
    spins = 0;
    sum += (uint64_t)(uintptr_t)v;
    atomic_fetch_add_explicit(&s->consumed, 1, memory_order_acq_rel);
  }
  atomic_fetch_add_explicit(&s->sum, sum, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->empty, empty, memory_order_relaxed);
  return NULL;
}

static bool fits(rq_kind kind, int producers, int consumers) {
  if (producers < 1 || consumers < 1) return false;
  if ((kind == RQ_CK_SPSC || kind == RQ_CK_SPMC) && producers != 1) return false;
  if ((kind == RQ_CK_SPSC || kind == RQ_CK_MPSC) && consumers != 1) return false;
  return true;
}

static int init_queue(rq_shared *s, unsigned capacity) {
  if (s->kind != RQ_MUTEX) return tm__ring_init(&s->ring, capacity);
  mutex_queue *q = &s->mq;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->not_full, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  q->cap = capacity - 1; /* as many entries as the ck ring holds */
  q->producers_left = s->producers;
  q->slots = calloc(capacity, sizeof *q->slots);
  return q->slots ? 0 : -1;
}

static void free_queue(rq_shared *s) {
  if (s->kind != RQ_MUTEX) {
    tm__ring_free(&s->ring);
    return;
  }
  free(s->mq.slots);
  pthread_mutex_destroy(&s->mq.lock);
  pthread_cond_destroy(&s->mq.not_full);
  pthread_cond_destroy(&s->mq.not_empty);
}

int rq_run(rq_kind kind, int producers, int consumers, uint64_t items,
           unsigned capacity, double max_seconds, rq_result *out) {
  if (!fits(kind, producers, consumers) || items == 0) return -1;
  static rq_shared s; /* large, and one run at a time */
  s = (rq_shared){.kind = kind, .producers = producers,
                  .consumers = consumers, .items = items};
  int n = producers + consumers;
  rq_thread *ts = calloc((size_t)n, sizeof *ts);
  if (!ts) return -1;
  if (init_queue(&s, capacity) != 0) {
    free(ts);
    return -1;
  }
  pthread_barrier_init(&s.start, NULL, (unsigned)n + 1);
  s.deadline = now_s() + max_seconds + 3600; /* until released */
  for (int i = 0; i < n; i++) {
    ts[i] = (rq_thread){&s, i < producers ? i : i - producers, 0};
    if (pthread_create(&ts[i].tid, NULL,
                       i < producers ? producer_main : consumer_main, &ts[i]))
      abort(); /* a half-started run cannot be released or joined */
  }
  double t0 = now_s();
  s.deadline = t0 + max_seconds; /* published by the barrier */
  pthread_barrier_wait(&s.start);
  for (int i = 0; i < n; i++) pthread_join(ts[i].tid, NULL);
  out->seconds = now_s() - t0;
  out->items = atomic_load(&s.consumed);
  out->full = atomic_load(&s.full);
  out->empty = atomic_load(&s.empty);
  out->waits = kind == RQ_MUTEX ? s.mq.waits : 0;
  out->bad = atomic_load(&s.consumed) != atomic_load(&s.produced) ||
             atomic_load(&s.sum) != atomic_load(&s.expected);
  pthread_barrier_destroy(&s.start);
  free(ts);
  free_queue(&s);
  return 0;
}
