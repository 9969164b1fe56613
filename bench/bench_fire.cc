// bench_fire.cc - how fast due timers fire, against the limit of one Redis.
//
// Ceiling (BM_Ceiling): the engine's own claim and commit Lua (scripts.c,
// loaded by SCRIPT LOAD, called by EVALSHA) driven by a bare hiredis loop on
// one connection: no threads, no rings, no handlers. Each round trip
// pipelines the commits of the previous claims and one claim per shard
// still due, as the poller does. That is what one Redis can do for this
// protocol; it runs first, and every engine figure is also a ratio of it
// (counter ratio_to_ceiling, against the ceiling of the same shard count
// and claim batch, median of its repetitions). Because this machine's speed
// drifts between benchmarks a minute apart, every engine run is also
// preceded by its own ceiling run of the same shards and batch (set-up,
// not timed): paired_ceiling_fires_per_s and paired_ratio.
//
// End to end (BM_Engine): N timers already due (activate_at in the past) are
// written BEFORE the engines start (set-up, not timed); the work is from
// timers_engine_start to the last no-op handler call. Every id is counted:
// any timer fired twice or never fails the run. Contention counters are the
// engines' timers_stats, summed over the instances.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "bench_common.h"

extern "C" {
#include "scripts.h"
}

namespace {

// The ceiling and the engine runs vary by up to +-20% from run to run on
// two cores; each engine run is also paired with a ceiling run of its own.
constexpr int kReps = 3;

constexpr const char *kTopic = "bench";
constexpr size_t kPayload = 32;
constexpr int kCommitChunk = 1024;  // pairs per commit call, as the poller
constexpr double kTimeoutS = 120;

size_t fire_n() { return tb::scaled(100000, 1000); }

std::string ceiling_key(int64_t shards, int64_t batch) {
  return "fire/shards:" + std::to_string(shards) +
         "/batch:" + std::to_string(batch);
}

// ---------------------------------------------------------------- ceiling

std::string script_load(tb::Redis &r, tm_script s) {
  return r.str("SCRIPT LOAD %s", tm__script_source[s]);
}

struct BareShard {
  std::string keys[3];
  std::vector<std::pair<std::string, std::string>> commits;  // (lease, id)
  bool done = false;
};

struct BareTotals {
  size_t claimed = 0, removed = 0, round_trips = 0, claim_calls = 0;
};

void append_argv(tb::Redis &r, const std::vector<const char *> &argv,
                 const std::vector<size_t> &len) {
  if (redisAppendCommandArgv(r.ctx(), (int)argv.size(),
                             const_cast<const char **>(argv.data()),
                             len.data()) != REDIS_OK)
    tb::fail("append: %s", r.ctx()->errstr);
}

// Appends the commit calls of shard s; returns how many calls.
size_t append_commits(tb::Redis &r, const std::string &sha, BareShard &s,
                      std::vector<size_t> &sizes) {
  size_t calls = 0;
  for (size_t from = 0; from < s.commits.size(); from += kCommitChunk) {
    size_t to = std::min(s.commits.size(), from + kCommitChunk);
    std::vector<const char *> argv = {"EVALSHA", sha.c_str(), "3"};
    for (auto &k : s.keys) argv.push_back(k.c_str());
    for (size_t i = from; i < to; i++) {
      argv.push_back(s.commits[i].first.c_str());
      argv.push_back(s.commits[i].second.c_str());
    }
    std::vector<size_t> len;
    for (const char *a : argv) len.push_back(std::strlen(a));
    append_argv(r, argv, len);
    sizes.push_back(to - from);
    calls++;
  }
  return calls;
}

// The claim script's reply (scripts.h): {next score, {id, blob, attempts,
// pre-claim score}...}. Its ARGV: now, lease, count, track ("1": count
// attempts, the native layout).
constexpr size_t kClaimStride = 4;

// Takes a claim reply: queues the commits and tells whether the shard is
// done (nothing due any more). A reply that does not fit the protocol
// above (the scripts changed) fails the run rather than measuring wrong.
void take_claim(BareShard &s, redisReply *rep, const std::string &lease,
                double now, size_t asked, BareTotals &t) {
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
      rep->element[1]->type != REDIS_REPLY_ARRAY)
    tb::fail("claim: unexpected reply type %d", rep->type);
  redisReply *items = rep->element[1];
  size_t got = items->elements / kClaimStride;
  if (items->elements % kClaimStride || got > asked ||
      (got && items->element[0]->type != REDIS_REPLY_STRING))
    tb::fail("claim reply of %zu elements for %zu timers asked: the claim "
             "script's reply format changed (bench_fire.cc kClaimStride)",
             items->elements, asked);
  for (size_t k = 0; k < items->elements; k += kClaimStride)
    s.commits.emplace_back(lease, std::string(items->element[k]->str,
                                              items->element[k]->len));
  t.claimed += got;
  const redisReply *next = rep->element[0];
  s.done = next->len == 0 || std::strtod(next->str, nullptr) > now;
}

BareTotals drain_bare(tb::Redis &r, int shards, int batch) {
  std::string claim = script_load(r, TM_SCRIPT_CLAIM);
  std::string commit = script_load(r, TM_SCRIPT_COMMIT);
  std::vector<BareShard> sh(shards);
  for (int s = 0; s < shards; s++)
    for (int k = 0; k < 3; k++)
      sh[s].keys[k] = tb::shard_key(kTopic, s, "zpa"[k]);
  BareTotals t;
  std::string count = std::to_string(batch);
  for (;;) {
    double now = tb::wall();
    char now_s[32], lease_s[32];
    std::snprintf(now_s, sizeof now_s, "%.6f", now);
    std::snprintf(lease_s, sizeof lease_s, "%.6f", now + 30.0);
    std::vector<size_t> commit_sizes;
    std::vector<int> order;  // per call: shard (claim) or -1 (commit)
    for (int s = 0; s < shards; s++) {
      size_t c = append_commits(r, commit, sh[s], commit_sizes);
      order.insert(order.end(), c, -1);
      sh[s].commits.clear();
    }
    for (int s = 0; s < shards; s++) {
      if (sh[s].done) continue;
      std::vector<const char *> argv = {
          "EVALSHA", claim.c_str(), "3", sh[s].keys[0].c_str(),
          sh[s].keys[1].c_str(), sh[s].keys[2].c_str(), now_s, lease_s,
          count.c_str(), "1"};
      std::vector<size_t> len;
      for (const char *a : argv) len.push_back(std::strlen(a));
      append_argv(r, argv, len);
      order.push_back(s);
      t.claim_calls++;
    }
    if (order.empty()) break;
    t.round_trips++;

    for (int s : order) {
      redisReply *rep = r.reply();
      if (rep->type == REDIS_REPLY_ERROR) {
        std::string e(rep->str, rep->len);
        freeReplyObject(rep);
        tb::fail("bare loop: %s", e.c_str());
      }
      if (s < 0)
        t.removed += (size_t)rep->integer;
      else
        take_claim(sh[s], rep, lease_s, now, (size_t)batch, t);
      freeReplyObject(rep);
    }
  }
  return t;
}

struct CeilingRun {
  size_t n = 0;
  double setup = 0, work = 0, redis_cpu = 0;
  BareTotals t;
};

// One ceiling experiment: load n due timers, drain them with the bare loop.
CeilingRun ceiling_once(int shards, int batch) {
  CeilingRun c;
  c.n = fire_n();
  double t0 = tb::mono();
  tb::flush();
  tb::load(kTopic, shards, c.n, tb::wall() - 1, kPayload);
  tb::Redis r, cpu;
  c.setup = tb::mono() - t0;
  double c0 = cpu.cpu_s(), w0 = tb::mono();
  c.t = drain_bare(r, shards, batch);
  c.work = tb::mono() - w0;
  c.redis_cpu = cpu.cpu_s() - c0;
  long long left = tb::pending(r, kTopic, shards);
  if (c.t.claimed != c.n || c.t.removed != c.n || left != 0)
    tb::fail("bare loop: claimed %zu, removed %zu of %zu, %lld left",
             c.t.claimed, c.t.removed, c.n, left);
  return c;
}

void BM_Ceiling(benchmark::State &state) {
  int shards = (int)state.range(0), batch = (int)state.range(1);
  tb::run(state, [&] {
    CeilingRun c = ceiling_once(shards, batch);
    state.SetIterationTime(c.work);
    double rate = (double)c.n / c.work;
    tb::record(ceiling_key(shards, batch), rate);
    state.counters["fires_per_s"] = rate;
    state.counters["redis_cpu_util"] = c.redis_cpu / c.work;
    state.counters["round_trips"] = (double)c.t.round_trips;
    state.counters["claim_calls"] = (double)c.t.claim_calls;
    state.counters["timers"] = (double)c.n;
    state.counters["setup_s"] = c.setup;
    state.counters["teardown_s"] = 0;
  });
}

// ------------------------------------------------------------ end to end

struct FireCtx {
  size_t n = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> counts;
  std::atomic<size_t> fired{0}, foreign{0};
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  double t_last = 0;
};

timers_outcome on_fire(const timers_message *msg, void *ud) {
  FireCtx *c = static_cast<FireCtx *>(ud);
  char *end;
  unsigned long long i = std::strtoull(msg->id, &end, 10);
  if (*end || i >= c->n)
    c->foreign.fetch_add(1, std::memory_order_relaxed);
  else
    c->counts[i].fetch_add(1, std::memory_order_relaxed);
  // acq_rel: the one that reaches n sees every other handler's count.
  if (c->fired.fetch_add(1, std::memory_order_acq_rel) + 1 == c->n) {
    double t = tb::mono();
    std::lock_guard<std::mutex> g(c->m);
    c->t_last = t;
    c->done = true;
    c->cv.notify_all();
  }
  return TIMERS_ACK;
}

struct Summed {
  timers_counters total{};
  timers_contention cont{};
  uint64_t inflight = 0;
};

Summed sum_stats(const std::vector<timers_engine *> &es) {
  Summed s;
  for (timers_engine *e : es) {
    timers_stats *st = nullptr;
    tb::check(timers_stats_get(e, &st), "stats");
    const uint64_t *a = reinterpret_cast<const uint64_t *>(&st->total);
    uint64_t *b = reinterpret_cast<uint64_t *>(&s.total);
    for (size_t k = 0; k < sizeof s.total / sizeof(uint64_t); k++) b[k] += a[k];
    const uint64_t *c = reinterpret_cast<const uint64_t *>(&st->contention);
    uint64_t *d = reinterpret_cast<uint64_t *>(&s.cont);
    for (size_t k = 0; k < sizeof s.cont / sizeof(uint64_t); k++) d[k] += c[k];
    s.inflight += st->inflight;
    timers_stats_free(st);
  }
  return s;
}

// Duplicates and losses, over every id.
void check_counts(const FireCtx &c) {
  size_t lost = 0, dup = 0, first_bad = c.n;
  for (size_t i = 0; i < c.n; i++) {
    uint32_t k = c.counts[i].load(std::memory_order_relaxed);
    if (k != 1 && first_bad == c.n) first_bad = i;
    lost += k == 0;
    dup += k > 1;
  }
  if (lost || dup || c.foreign)
    tb::fail("%zu lost, %zu fired more than once, %zu unknown ids (first bad "
             "id %zu)", lost, dup, c.foreign.load(), first_bad);
}

struct EngineArgs {
  int shards, pollers, workers, batch, instances;
};

std::vector<timers_engine *> make_engines(const EngineArgs &a, FireCtx &ctx) {
  std::vector<timers_engine *> es;
  for (int k = 0; k < a.instances; k++) {
    timers_config cfg = tb::config(a.shards);
    cfg.pollers = a.pollers;
    cfg.workers = a.workers;
    cfg.claim_batch = a.batch;
    timers_engine *e = nullptr;
    int rc = timers_engine_create(&cfg, &e);
    if (rc == TIMERS_OK) rc = timers_subscribe(e, kTopic, on_fire, &ctx, nullptr);
    if (rc != TIMERS_OK) {
      for (timers_engine *x : es) timers_engine_destroy(x);
      timers_engine_destroy(e);
      tb::check(rc, "create/subscribe");
    }
    es.push_back(e);
  }
  return es;
}

void set_engine_counters(benchmark::State &state, const Summed &s) {
  auto &c = state.counters;
  c["contested"] = (double)s.total.contested;
  c["ring_full"] = (double)s.total.ring_full;
  c["claim_calls"] = (double)s.total.claim_calls;
  c["stale_commits"] = (double)s.total.stale_commits;
  c["redis_errors"] = (double)s.total.redis_errors;
  c["lock_waits"] = (double)s.cont.lock_waits;
  c["lock_wait_ns"] = (double)s.cont.lock_wait_ns;
  c["poller_sleeps"] = (double)s.cont.poller_sleeps;
  c["poller_kicks"] = (double)s.cont.poller_kicks;
  c["worker_sleeps"] = (double)s.cont.worker_sleeps;
  c["worker_wakeups"] = (double)s.cont.worker_wakeups;
  c["cas_retries"] = (double)s.cont.cas_retries;
}

void BM_Engine(benchmark::State &state) {
  EngineArgs a{(int)state.range(0), (int)state.range(1), (int)state.range(2),
               (int)state.range(3), (int)state.range(4)};
  tb::run(state, [&] {
    // Paired ceiling: the same bare loop right before this run, so the
    // ratio compares runs seconds apart, not a minute apart.
    CeilingRun paired = ceiling_once(a.shards, a.batch);
    FireCtx ctx;
    ctx.n = fire_n();
    ctx.counts.reset(new std::atomic<uint32_t>[ctx.n]());
    double t0 = tb::mono();
    tb::flush();
    tb::load(kTopic, a.shards, ctx.n, tb::wall() - 1, kPayload);
    std::vector<timers_engine *> es = make_engines(a, ctx);
    tb::Redis cpu;
    double setup = tb::mono() - t0;

    double c0 = cpu.cpu_s(), w0 = tb::mono();
    int rc = TIMERS_OK;
    for (timers_engine *e : es)
      if (rc == TIMERS_OK) rc = timers_engine_start(e);
    bool done = false;
    if (rc == TIMERS_OK) {
      std::unique_lock<std::mutex> g(ctx.m);
      done = ctx.cv.wait_for(g, std::chrono::duration<double>(kTimeoutS),
                             [&] { return ctx.done; });
    }
    double work = (done ? ctx.t_last : tb::mono()) - w0;
    double redis_cpu = cpu.cpu_s() - c0;  // includes the last commits
    std::string start_err = rc == TIMERS_OK ? "" : timers_last_error();

    double d0 = tb::mono();
    for (timers_engine *e : es) timers_engine_stop(e);
    Summed s = sum_stats(es);
    for (timers_engine *e : es) timers_engine_destroy(e);
    double teardown = tb::mono() - d0;
    if (rc != TIMERS_OK) tb::fail("start: %s", start_err.c_str());
    if (!done)
      tb::fail("engine hang: %zu of %zu fired after %.0f s (claimed %llu, "
               "acked %llu, inflight %llu, claim_calls %llu, redis_errors "
               "%llu)", ctx.fired.load(), ctx.n, kTimeoutS,
               (unsigned long long)s.total.claimed,
               (unsigned long long)s.total.acked,
               (unsigned long long)s.inflight,
               (unsigned long long)s.total.claim_calls,
               (unsigned long long)s.total.redis_errors);
    check_counts(ctx);
    tb::Redis r;
    long long left = tb::pending(r, kTopic, a.shards);
    if (left != 0)
      tb::fail("%lld timers still in Redis after every handler ran and the "
               "engines stopped (commits lost)", left);

    state.SetIterationTime(work);
    double rate = (double)ctx.n / work;
    double ceiling = tb::median_of(ceiling_key(a.shards, a.batch));
    state.counters["fires_per_s"] = rate;
    state.counters["ceiling_fires_per_s"] = ceiling;
    state.counters["redis_cpu_util"] = redis_cpu / work;
    state.counters["ratio_to_ceiling"] = ceiling > 0 ? rate / ceiling : 0;
    double pr = (double)paired.n / paired.work;
    state.counters["paired_ceiling_fires_per_s"] = pr;
    state.counters["paired_ratio"] = rate / pr;
    state.counters["timers"] = (double)ctx.n;
    state.counters["setup_s"] = setup;
    state.counters["teardown_s"] = teardown;
    set_engine_counters(state, s);
  });
}

benchmark::internal::Benchmark *common(benchmark::internal::Benchmark *b) {
  return b->UseManualTime()
      ->Iterations(1)
      ->Repetitions(tb::reps(kReps))
      ->ReportAggregatesOnly(true)
      ->Unit(benchmark::kMillisecond);
}

const int kShards[] = {1, 2, 4, 8, 16, 64};
const int kBatches[] = {16, 64, 1024};  // besides the default 256

}  // namespace

void bench_register() {
  // Ceilings first: the engine benchmarks read their medians.
  auto *c = common(benchmark::RegisterBenchmark("BM_Ceiling", BM_Ceiling));
  c->ArgNames({"shards", "batch"});
  for (int s : kShards) c->Args({s, 256});
  for (int b : kBatches) c->Args({8, b});

  auto *e = common(benchmark::RegisterBenchmark("BM_Engine", BM_Engine));
  e->ArgNames({"shards", "pollers", "workers", "batch", "instances"});
  for (int s : kShards) e->Args({s, 1, 2, 256, 1});      // fires/s vs shards
  e->Args({8, 1, 1, 256, 1});                            // threads
  e->Args({8, 1, 4, 256, 1});
  e->Args({8, 2, 2, 256, 1});
  e->Args({8, 2, 4, 256, 1});
  for (int b : kBatches) e->Args({8, 1, 2, b, 1});       // claim batch
  e->Args({8, 1, 2, 256, 2});                            // instances
  e->Args({8, 1, 2, 256, 4});
}
