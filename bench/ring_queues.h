/*
 * ring_queues.h - the hot loops of the ring benchmark, in C: ck_ring.h is
 * not valid C++, and the loops must inline the ring operations exactly as
 * the engine does (engine/src/ring.h).
 *
 * A one-way run starts `producers` + `consumers` threads on one queue of
 * `capacity` slots (a power of two; a ck ring of N slots holds N - 1),
 * releases them together, and times until every value produced has been
 * consumed. Producers share `items` values but stop early once
 * `max_seconds` have passed: a multi-producer ck ring with more threads
 * than cores can crawl (a producer preempted between reserving and
 * publishing its slot holds up every other producer and the consumers).
 *
 * A lane run (RQ_LANE, RQ_LANE_MPSC; producers must be 1) is a round trip,
 * the engine's arrangement (engine/src/lane.h): one "poller" pushes jobs on
 * an SPMC work ring, `consumers` "workers" pop them and push each back on
 * a done ring, the poller collects them; it keeps at most capacity - 1
 * jobs out (pushed, not back), as the engine does, so no push can fail.
 * `items` counts jobs back at the poller.
 *
 * Each value is checked: the run reports values lost, repeated or
 * corrupted in `bad`.
 */
#ifndef TIMERS_BENCH_RING_QUEUES_H
#define TIMERS_BENCH_RING_QUEUES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Values are never renumbered (they are in the benchmarks' run names). */
typedef enum rq_kind {
  RQ_CK_SPSC,  /* tm__ring_*_spsc: a worker -> its poller in the engine   */
  RQ_CK_SPMC,  /* tm__ring_*_spmc: poller -> workers in the engine        */
  RQ_CK_MPSC,  /* ck_ring_*_mpsc: the engine's former done ring           */
  RQ_CK_MPMC,  /* ck_ring_*_mpmc                                           */
  RQ_MUTEX,    /* bounded array, one mutex, two condition variables        */
  RQ_LANE,     /* round trips: SPMC work ring, one SPSC done ring per
                  worker (the engine's lane)                               */
  RQ_LANE_MPSC /* round trips: SPMC work ring, one MPSC done ring shared
                  by the workers (the engine's former lane)                */
} rq_kind;

typedef struct rq_result {
  double seconds;      /* release of the threads to the last value consumed */
  uint64_t items;      /* values produced and consumed                       */
  uint64_t full;       /* pushes that found the queue full (then retried);
                          lane: poller passes with capacity - 1 jobs out  */
  uint64_t empty;      /* pops that found it empty (then retried); lane:
                          worker pops and poller passes that found none   */
  uint64_t waits;      /* mutex queue: condition-variable waits             */
  uint64_t bad;        /* values lost, repeated or corrupted                 */
} rq_result;

/* Returns 0, or -1 when the arguments do not fit the kind or a thread
 * cannot start. Not thread-safe (one run at a time). */
int rq_run(rq_kind kind, int producers, int consumers, uint64_t items,
           unsigned capacity, double max_seconds, rq_result *out);

#ifdef __cplusplus
}
#endif
#endif
