/*
 * topic.c - due-time hints between producers, the notify thread and a
 * shard's owning poller.
 */
#include "topic.h"

#include "lane.h"

/* Returns the number of failed compare-and-swap attempts. */
static uint64_t atomic_min64(_Atomic int64_t *v, int64_t x) {
  uint64_t retries = 0;
  int64_t cur = atomic_load_explicit(v, memory_order_relaxed);
  while (x < cur && !atomic_compare_exchange_weak_explicit(
                        v, &cur, x, memory_order_relaxed,
                        memory_order_relaxed))
    retries++;
  return retries;
}

void tm__shard_hint(tm_shard *s, int64_t at_us, tm_contention *c) {
  uint64_t retries = atomic_min64(&s->hint_us, at_us);
  if (retries) tm__count(&c->cas_retries, retries);
  /* The kick (seq_cst) orders the hint before the owner's next look. */
  if (s->lane && at_us < atomic_load_explicit(&s->next_due_us,
                                              memory_order_relaxed))
    tm__wake_kick(&s->lane->wake, c);
}

int64_t tm__shard_due(tm_shard *s) {
  int64_t h = atomic_exchange_explicit(&s->hint_us, INT64_MAX,
                                       memory_order_relaxed);
  int64_t due = atomic_load_explicit(&s->next_due_us, memory_order_relaxed);
  if (h < due) {
    due = h;
    atomic_store_explicit(&s->next_due_us, due, memory_order_relaxed);
  }
  return due;
}
