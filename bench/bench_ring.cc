// bench_ring.cc - the queues between pollers and workers, capacity 4096
// (the engine's default ring_capacity). The hot loops are C
// (ring_queues.c). Each run moves up to 1M values, for at most about
// kMaxSeconds.
//
// One way, 1 to 4 producers and consumers: the engine's disciplines
// (ring.h: SPMC poller -> workers, SPSC worker -> poller), ck's MPSC (the
// engine's former done ring) and MPMC called directly, and a bounded queue
// with one mutex and two condition variables.
//
// Round trips (BM_Ring_lane_*), one poller and 1 to 4 workers: the
// engine's lane (lane.h), an SPMC work ring out and one SPSC done ring per
// worker back, against the former lane, whose workers shared one MPSC done
// ring. items_per_s counts jobs back at the poller. The wake-ups of
// sleeping threads are not part of this (they are in BM_Engine's
// worker_sleeps, worker_wakeups and poller_kicks): threads spin, then
// yield.
//
// Counters: items_per_s, items, full (pushes that found no room; lane: the
// poller's passes with capacity - 1 jobs out), empty (pops that found
// nothing), waits (condition-variable waits of the mutex queue).
#include "bench_common.h"
#include "ring_queues.h"

namespace {

// Ring runs are short and bimodal (thread placement on two cores): five
// repetitions.
constexpr int kReps = 5;

constexpr unsigned kCapacity = 4096;
// Producers stop after this long even if their share is not done: with
// more producer threads than cores a multi-producer ck ring can crawl.
constexpr double kMaxSeconds = 1.0;

void BM_Ring(benchmark::State &state) {
  rq_kind kind = static_cast<rq_kind>(state.range(0));
  int producers = (int)state.range(1), consumers = (int)state.range(2);
  tb::run(state, [&] {
    uint64_t items = tb::scaled(1000000, 10000);
    rq_result r{};
    if (rq_run(kind, producers, consumers, items, kCapacity, kMaxSeconds,
               &r) != 0)
      tb::fail("ring run could not start");
    if (r.bad) tb::fail("values lost, repeated or corrupted");
    state.SetIterationTime(r.seconds);
    state.counters["items_per_s"] = (double)r.items / r.seconds;
    state.counters["items"] = (double)r.items;
    state.counters["full"] = (double)r.full;
    state.counters["empty"] = (double)r.empty;
    state.counters["waits"] = (double)r.waits;
    state.counters["setup_s"] = 0;
    state.counters["teardown_s"] = 0;
  });
}

void add(const char *name, rq_kind kind,
         std::initializer_list<std::pair<int, int>> shapes) {
  auto *b = benchmark::RegisterBenchmark(name, BM_Ring)
                ->UseManualTime()
                ->Iterations(1)
                ->Repetitions(tb::reps(kReps))
                ->ReportAggregatesOnly(true)
                ->Unit(benchmark::kMillisecond)
                ->ArgNames({"kind", "producers", "consumers"});
  for (auto [p, c] : shapes) b->Args({kind, p, c});
}

}  // namespace

void bench_register() {
  const std::initializer_list<std::pair<int, int>> all = {
      {1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 4}, {4, 1}, {4, 4}};
  add("BM_Ring_ck_spsc", RQ_CK_SPSC, {{1, 1}});
  add("BM_Ring_ck_spmc", RQ_CK_SPMC, {{1, 1}, {1, 2}, {1, 4}});
  add("BM_Ring_ck_mpsc", RQ_CK_MPSC, {{1, 1}, {2, 1}, {4, 1}});
  add("BM_Ring_ck_mpmc", RQ_CK_MPMC, all);
  add("BM_Ring_mutex_cond", RQ_MUTEX, all);
  // Round trips: 1 poller, "consumers" = workers.
  add("BM_Ring_lane_spsc", RQ_LANE, {{1, 1}, {1, 2}, {1, 4}});
  // Not 4 workers: with 5 threads on 2 cores, a worker preempted between
  // reserving and publishing its MPSC slot stalls the others, which spin
  // inside ck; one smoke run took 11 s for 28k jobs (the reason the engine
  // now gives each worker its own SPSC ring).
  add("BM_Ring_lane_mpsc", RQ_LANE_MPSC, {{1, 1}, {1, 2}});
}
