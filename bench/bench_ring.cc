// bench_ring.cc - the queues between pollers and workers: Concurrency Kit
// rings (SPSC, the engine's SPMC and MPSC, MPMC) against a bounded queue
// with one mutex and two condition variables, at 1 to 4 producers and
// consumers, capacity 4096 (the engine's default ring_capacity). The hot
// loops are C (ring_queues.c). Each run moves up to 1M values, for at most
// about kMaxSeconds. Counters: items_per_s, items, full (pushes that
// found no room), empty (pops that found nothing), waits (condition-variable
// waits of the mutex queue).
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
}
