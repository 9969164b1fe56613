// bench_lateness.cc - how late timers fire under a steady load.
//
// One engine (defaults: 8 shards, 1 poller, 2 workers) runs; a producer
// thread schedules at a steady rate R for kSeconds, every millisecond the
// timers whose slot has come, each due kDelay after its slot
// (activate_at = T0 + i / R + kDelay, ids "<i>", 32-byte payload). The
// no-op handler records fire time minus activation time per id: exact
// samples, not the engine's histogram (whose p99 is reported as
// hist_p99_ms for comparison). Any id fired twice or never fails the run.
//
// Counters: p50_ms, p99_ms, p999_ms, max_ms (over the samples of that
// repetition), producer_lag_max_ms (how far behind its slot the producer
// ever was: lateness it caused itself), timers. The sorted samples of all
// repetitions are written, as quantiles, to <results>/lateness_<R>.txt
// ("quantile milliseconds" per line) for the CDF plot.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "bench_common.h"

namespace {

constexpr const char *kTopic = "late";
constexpr double kSeconds = 3.0;
constexpr double kDelay = 0.050;
constexpr size_t kPayload = 32;
constexpr size_t kCdfPoints = 5000;

struct LateCtx {
  size_t n = 0;
  std::unique_ptr<double[]> late;  // seconds; written once per id
  std::unique_ptr<std::atomic<uint32_t>[]> counts;
  std::atomic<size_t> fired{0}, foreign{0};
};

timers_outcome on_fire(const timers_message *msg, void *ud) {
  double now = timers_now();
  LateCtx *c = static_cast<LateCtx *>(ud);
  char *end;
  unsigned long long i = std::strtoull(msg->id, &end, 10);
  if (*end || i >= c->n) {
    c->foreign.fetch_add(1, std::memory_order_relaxed);
  } else if (c->counts[i].fetch_add(1, std::memory_order_relaxed) == 0) {
    c->late[i] = now - msg->activate_at;
  }
  c->fired.fetch_add(1, std::memory_order_release);
  return TIMERS_ACK;
}

// Schedules n timers at rate r from T0; returns the largest lag (s) of a
// timer's write behind its slot.
double produce(timers_engine *e, size_t n, double rate, double t0) {
  const std::string &p = tb::payload(kPayload);
  std::vector<std::string> ids(n);
  for (size_t i = 0; i < n; i++) ids[i] = std::to_string(i);
  std::vector<timers_timer> ts(n);
  for (size_t i = 0; i < n; i++) {
    ts[i] = timers_timer{};
    ts[i].topic = kTopic, ts[i].id = ids[i].c_str();
    ts[i].payload = p.data(), ts[i].payload_len = p.size();
    ts[i].has_activate_at = true;
    ts[i].activate_at = t0 + (double)i / rate + kDelay;
  }
  double lag = 0;
  for (size_t sent = 0; sent < n;) {
    double now = tb::wall();
    size_t due = std::min(n, (size_t)((now - t0) * rate) + 1);
    if (due > sent) {
      tb::check(timers_schedule_batch(e, &ts[sent], due - sent, nullptr),
                "schedule_batch");
      lag = std::max(lag, tb::wall() - (t0 + (double)sent / rate));
      sent = due;
    }
    double next = t0 + (double)sent / rate - tb::wall();
    if (next > 0) std::this_thread::sleep_for(std::chrono::duration<double>(
        std::min(next, 0.001)));
  }
  return lag;
}

void write_cdf(int rate, const std::vector<double> &sorted_ms) {
  std::string path = tb::results_dir() + "/lateness_" + std::to_string(rate) +
                     ".txt";
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) tb::fail("cannot write %s", path.c_str());
  std::fprintf(f, "# lateness at %d timers/s: quantile ms (%zu samples)\n",
               rate, sorted_ms.size());
  size_t n = sorted_ms.size();
  for (size_t k = 0; k <= kCdfPoints && n; k++) {
    size_t i = std::min(n - 1, (size_t)((double)k / kCdfPoints * (double)(n - 1)));
    std::fprintf(f, "%.6f %.4f\n", (double)(i + 1) / (double)n, sorted_ms[i]);
  }
  std::fclose(f);
}

void BM_Lateness(benchmark::State &state) {
  int rate = (int)state.range(0);
  static std::map<int, std::vector<double>> pooled;  // ms, all repetitions
  tb::run(state, [&] {
    LateCtx ctx;
    ctx.n = tb::scaled((size_t)(rate * kSeconds), 100);
    ctx.late.reset(new double[ctx.n]());
    ctx.counts.reset(new std::atomic<uint32_t>[ctx.n]());
    double s0 = tb::mono();
    tb::flush();
    timers_config cfg = tb::config(8);
    timers_engine *e = nullptr;
    tb::check(timers_engine_create(&cfg, &e), "create");
    std::unique_ptr<timers_engine, void (*)(timers_engine *)> own(
        e, timers_engine_destroy);
    tb::check(timers_subscribe(e, kTopic, on_fire, &ctx, nullptr), "subscribe");
    tb::check(timers_engine_start(e), "start");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // settle
    double setup = tb::mono() - s0;

    double w0 = tb::mono(), t0 = tb::wall();
    double lag = produce(e, ctx.n, rate, t0);
    double deadline = tb::mono() + kDelay + 10;
    while (ctx.fired.load(std::memory_order_acquire) < ctx.n &&
           tb::mono() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    double work = tb::mono() - w0;

    double d0 = tb::mono();
    timers_stats *st = nullptr;
    tb::check(timers_stats_get(e, &st), "stats");
    double hist_p99 = timers_stats_lateness_ms(st, 0.99);
    timers_stats_free(st);
    own.reset();
    double teardown = tb::mono() - d0;

    size_t lost = 0, dup = 0;
    std::vector<double> ms;
    ms.reserve(ctx.n);
    for (size_t i = 0; i < ctx.n; i++) {
      uint32_t k = ctx.counts[i].load();
      lost += k == 0, dup += k > 1;
      if (k) ms.push_back(ctx.late[i] * 1e3);
    }
    if (lost || dup || ctx.foreign)
      tb::fail("%zu lost, %zu fired more than once, %zu unknown ids", lost,
               dup, ctx.foreign.load());
    std::sort(ms.begin(), ms.end());
    std::vector<double> &all = pooled[rate];
    all.insert(all.end(), ms.begin(), ms.end());
    std::sort(all.begin(), all.end());
    write_cdf(rate, all);

    state.SetIterationTime(work);
    auto &c = state.counters;
    c["rate"] = rate;
    c["timers"] = (double)ctx.n;
    c["p50_ms"] = tb::percentile(ms, 0.50);
    c["p99_ms"] = tb::percentile(ms, 0.99);
    c["p999_ms"] = tb::percentile(ms, 0.999);
    c["max_ms"] = ms.back();
    c["min_ms"] = ms.front();
    c["hist_p99_ms"] = hist_p99;
    c["producer_lag_max_ms"] = lag * 1e3;
    c["setup_s"] = setup;
    c["teardown_s"] = teardown;
  });
}

}  // namespace

void bench_register() {
  auto *b = benchmark::RegisterBenchmark("BM_Lateness", BM_Lateness)
                ->UseManualTime()
                ->Iterations(1)
                ->Repetitions(tb::reps())
                ->ReportAggregatesOnly(true)
                ->Unit(benchmark::kMillisecond)
                ->ArgNames({"rate"});
  for (int r : {1000, 2000, 10000, 50000}) b->Arg(r);
}
