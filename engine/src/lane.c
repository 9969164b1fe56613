/*
 * lane.c - queues and wake-ups between pollers and workers (see lane.h).
 */
#include "lane.h"

#include "alloc.h"
#include "clock.h"

int tm__lane_init(tm_lane *l, unsigned ring_size, int nworkers) {
  tm__wake_init(&l->wake);
  if (tm__ring_init(&l->work, ring_size) != 0) return -1;
  l->done = tm__calloc((size_t)nworkers, sizeof *l->done);
  if (!l->done) return -1;
  for (; l->ndone < nworkers; l->ndone++)
    if (tm__ring_init(&l->done[l->ndone], ring_size) != 0) return -1;
  return 0;
}

void tm__lane_destroy(tm_lane *l, void (*free_job)(void *job)) {
  void *j;
  while (l->work.slots && tm__ring_pop_spmc(&l->work, &j)) free_job(j);
  tm__ring_free(&l->work);
  for (int w = 0; l->done && w < l->ndone; w++) {
    while (tm__ring_pop_spsc(&l->done[w], &j)) free_job(j);
    tm__ring_free(&l->done[w]);
  }
  tm__free(l->done);
  l->done = NULL;
  l->ndone = 0;
  tm__wake_destroy(&l->wake);
}

void tm__wake_init(tm_wake *w) {
  pthread_mutex_init(&w->lock, NULL);
  tm__cond_init_monotonic(&w->cond);
  atomic_init(&w->sleeping, 0);
  atomic_init(&w->kicked, 0);
}

void tm__wake_destroy(tm_wake *w) {
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
}

/* Dekker: seq_cst store of kicked, then seq_cst load of sleeping; the
 * sleeper stores sleeping, then loads kicked. One of the two sees the
 * other's store. */
void tm__wake_kick(tm_wake *w, tm_contention *c) {
  atomic_store_explicit(&w->kicked, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) {
    tm__lock(c, &w->lock);
    tm__count(&c->poller_kicks, 1);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
  }
}

void tm__wake_sleep(tm_wake *w, int64_t ns, bool (*ready)(void *), void *arg,
                    tm_contention *c) {
  if (ns > 0) {
    struct timespec until = tm__mono_timespec(tm__add_sat(tm__mono_ns(), ns));
    tm__lock(c, &w->lock);
    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    if (!atomic_load_explicit(&w->kicked, memory_order_seq_cst) &&
        !(ready && ready(arg))) {
      tm__count(&c->poller_sleeps, 1);
      pthread_cond_timedwait(&w->cond, &w->lock, &until);
    }
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
    pthread_mutex_unlock(&w->lock);
  }
  /* An RMW, so it synchronizes with the kicker's store (and its push). */
  atomic_exchange_explicit(&w->kicked, 0, memory_order_seq_cst);
}

void tm__idle_init(tm_idle *i) {
  pthread_mutex_init(&i->lock, NULL);
  tm__cond_init_monotonic(&i->cond);
  atomic_init(&i->sleepers, 0);
}

void tm__idle_destroy(tm_idle *i) {
  pthread_mutex_destroy(&i->lock);
  pthread_cond_destroy(&i->cond);
}

void tm__idle_wake(tm_idle *i, unsigned n, tm_contention *c) {
  /* An RMW, not a load: it orders after the push, and a sleeper's
   * increment either precedes it (seen here) or reads from it (then the
   * sleeper's re-check sees the push). */
  int sleepers = atomic_fetch_add_explicit(&i->sleepers, 0, memory_order_seq_cst);
  if (sleepers <= 0 || n == 0) return;
  unsigned k = n < (unsigned)sleepers ? n : (unsigned)sleepers;
  tm__lock(c, &i->lock);
  tm__count(&c->worker_wakeups, k);
  /* One signal per job, not a broadcast: with many workers on few cores a
   * broadcast per push wakes a herd that finds nothing. A signal lost to a
   * worker that was already waking costs nothing: awake workers pop until
   * the rings are empty before they sleep again. */
  for (unsigned s = 0; s < k; s++) pthread_cond_signal(&i->cond);
  pthread_mutex_unlock(&i->lock);
}

void tm__idle_sleep(tm_idle *i, bool (*ready)(void *), void *arg,
                    tm_contention *c) {
  tm__lock(c, &i->lock);
  /* seq_cst: pairs with tm__idle_wake's read (Dekker, as in tm_wake) */
  atomic_fetch_add_explicit(&i->sleepers, 1, memory_order_seq_cst);
  if (!ready(arg)) {
    tm__count(&c->worker_sleeps, 1);
    /* A wake-up cannot be lost (see tm__idle_wake); the bound is a guard. */
    struct timespec until = tm__mono_timespec(tm__mono_ns() + 1000000000);
    pthread_cond_timedwait(&i->cond, &i->lock, &until);
  }
  atomic_fetch_sub_explicit(&i->sleepers, 1, memory_order_relaxed);
  pthread_mutex_unlock(&i->lock);
}

void tm__idle_wake_all(tm_idle *i) {
  pthread_mutex_lock(&i->lock);
  pthread_cond_broadcast(&i->cond);
  pthread_mutex_unlock(&i->lock);
}
