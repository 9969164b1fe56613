/*
 * ring_queues.c - see ring_queues.h. Includes the engine's private ring.h
 * (header-only): a documented exception to "bench uses the public API
 * only" (bench/CMakeLists.txt). The disciplines the engine no longer uses
 * (MPSC, MPMC) call ck directly, on the same ring and slots.
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
  unsigned capacity;
  double deadline;  /* monotonic seconds; producers stop after it */
  tm_ring ring;        /* the queue; lane: the work ring */
  tm_ring *done;       /* lane: [ndone] done rings */
  int ndone;           /* RQ_LANE: one per worker; RQ_LANE_MPSC: 1 */
  /* Lane: set by the poller once every job is back (release); workers
   * exit on it (acquire). */
  _Atomic int lane_over;
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

static bool is_lane(rq_kind kind) {
  return kind == RQ_LANE || kind == RQ_LANE_MPSC;
}

static bool ring_push(rq_shared *s, void *v) {
  switch (s->kind) {
    case RQ_CK_SPSC: return tm__ring_push_spsc(&s->ring, v);
    case RQ_CK_SPMC: return tm__ring_push_spmc(&s->ring, v);
    case RQ_CK_MPSC: return ck_ring_enqueue_mpsc(&s->ring.ring, s->ring.slots, v);
    default: return ck_ring_enqueue_mpmc(&s->ring.ring, s->ring.slots, v);
  }
}

static bool ring_pop(rq_shared *s, void **v) {
  switch (s->kind) {
    case RQ_CK_SPSC: return tm__ring_pop_spsc(&s->ring, v);
    case RQ_CK_SPMC: return tm__ring_pop_spmc(&s->ring, v);
    case RQ_CK_MPSC: return ck_ring_dequeue_mpsc(&s->ring.ring, s->ring.slots, v);
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

/* ------------------------------------------------------------------ lane */

static bool done_push(rq_shared *s, int worker, void *v) {
  if (s->kind == RQ_LANE) return tm__ring_push_spsc(&s->done[worker], v);
  return ck_ring_enqueue_mpsc(&s->done[0].ring, s->done[0].slots, v);
}

static bool done_pop(rq_shared *s, int ring, void **v) {
  if (s->kind == RQ_LANE) return tm__ring_pop_spsc(&s->done[ring], v);
  return ck_ring_dequeue_mpsc(&s->done[0].ring, s->done[0].slots, v);
}

typedef struct lane_poller {
  uint64_t out, next, back, sum_out, sum_back, full, empty;
  unsigned limit;     /* jobs out at most: capacity - 1 */
  bool stop_pushing;  /* deadline passed, or every job pushed */
} lane_poller;

/* Collects what the workers sent back; true if anything came. */
static bool lane_collect(rq_shared *s, lane_poller *p) {
  bool got = false;
  for (int r = 0; r < s->ndone; r++) {
    void *v;
    while (done_pop(s, r, &v)) {
      p->back++, p->out--, got = true;
      p->sum_back += (uint64_t)(uintptr_t)v;
    }
  }
  return got;
}

/* Pushes jobs while fewer than limit are out; true if any was pushed. The
 * push cannot fail (limit < ring size); a failure is counted as full. */
static bool lane_push(rq_shared *s, lane_poller *p) {
  bool pushed = false;
  if (!p->stop_pushing && p->out == p->limit) p->full++;
  while (!p->stop_pushing && p->out < p->limit) {
    uint64_t v = p->next + 1;
    if (!tm__ring_push_spmc(&s->ring, (void *)(uintptr_t)v)) {
      p->full++;
      break;
    }
    p->out++, p->next++, pushed = true;
    p->sum_out += v;
    if (p->next == s->items) p->stop_pushing = true;
  }
  return pushed;
}

static void *lane_poller_main(void *arg) {
  rq_thread *t = arg;
  rq_shared *s = t->s;
  lane_poller p = {.limit = s->capacity - 1};
  unsigned spins = 0, passes = 0;
  pthread_barrier_wait(&s->start);
  for (;;) {
    if ((++passes & 15) == 0 && now_s() > s->deadline) p.stop_pushing = true;
    bool busy = lane_collect(s, &p);
    busy = lane_push(s, &p) || busy;
    if (p.stop_pushing && p.out == 0) break;
    if (busy) {
      spins = 0;
    } else {
      p.empty++;
      backoff(&spins);
    }
  }
  atomic_store_explicit(&s->lane_over, 1, memory_order_release);
  atomic_store_explicit(&s->produced, p.next, memory_order_relaxed);
  atomic_store_explicit(&s->consumed, p.back, memory_order_relaxed);
  atomic_store_explicit(&s->expected, p.sum_out, memory_order_relaxed);
  atomic_store_explicit(&s->sum, p.sum_back, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->full, p.full, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->empty, p.empty, memory_order_relaxed);
  return NULL;
}

static void *lane_worker_main(void *arg) {
  rq_thread *t = arg;
  rq_shared *s = t->s;
  uint64_t empty = 0, full = 0;
  unsigned spins = 0;
  pthread_barrier_wait(&s->start);
  for (;;) {
    void *v;
    if (tm__ring_pop_spmc(&s->ring, &v)) {
      spins = 0;
      while (!done_push(s, t->index, v)) { /* cannot happen: see lane_push */
        full++;
        backoff(&spins);
      }
      continue;
    }
    if (atomic_load_explicit(&s->lane_over, memory_order_acquire)) break;
    empty++;
    backoff(&spins);
  }
  atomic_fetch_add_explicit(&s->full, full, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->empty, empty, memory_order_relaxed);
  return NULL;
}

static bool fits(rq_kind kind, int producers, int consumers) {
  if (producers < 1 || consumers < 1) return false;
  if ((kind == RQ_CK_SPSC || kind == RQ_CK_SPMC || is_lane(kind)) &&
      producers != 1)
    return false;
  if ((kind == RQ_CK_SPSC || kind == RQ_CK_MPSC) && consumers != 1) return false;
  return true;
}

static int init_lane(rq_shared *s, unsigned capacity) {
  s->ndone = s->kind == RQ_LANE ? s->consumers : 1;
  s->done = calloc((size_t)s->ndone, sizeof *s->done);
  if (!s->done || tm__ring_init(&s->ring, capacity) != 0) return -1;
  for (int k = 0; k < s->ndone; k++)
    if (tm__ring_init(&s->done[k], capacity) != 0) return -1;
  return 0;
}

static int init_queue(rq_shared *s, unsigned capacity) {
  if (is_lane(s->kind)) return init_lane(s, capacity);
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
  if (is_lane(s->kind)) {
    for (int k = 0; s->done && k < s->ndone; k++) tm__ring_free(&s->done[k]);
    free(s->done);
    s->done = NULL;
  }
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
                  .consumers = consumers, .items = items,
                  .capacity = capacity};
  int n = producers + consumers;
  rq_thread *ts = calloc((size_t)n, sizeof *ts);
  if (!ts) return -1;
  if (init_queue(&s, capacity) != 0) {
    free_queue(&s);
    free(ts);
    return -1;
  }
  pthread_barrier_init(&s.start, NULL, (unsigned)n + 1);
  s.deadline = now_s() + max_seconds + 3600; /* until released */
  for (int i = 0; i < n; i++) {
    ts[i] = (rq_thread){&s, i < producers ? i : i - producers, 0};
    void *(*body)(void *) =
        is_lane(kind) ? (i < producers ? lane_poller_main : lane_worker_main)
                      : (i < producers ? producer_main : consumer_main);
    if (pthread_create(&ts[i].tid, NULL, body, &ts[i]))
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
