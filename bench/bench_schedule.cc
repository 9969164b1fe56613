// bench_schedule.cc - writing timers: timers_schedule, timers_schedule_batch
// (1 to 1024 per call) from 1, 2 and 4 producer threads, against two bare
// hiredis loops on one connection, one thread, that write the same data:
//
//  BM_ScheduleCeiling_evalsha: per batch, the engine's own schedule Lua
//    (scripts.c) called by EVALSHA once per shard group with the same ARGV
//    as the engine (channel, shard, earliest score, n, (score id)...,
//    (id envelope)...), all groups of a batch in one pipelined round trip.
//  BM_ScheduleCeiling_plain: the same writes as plain ZADD + HSET per shard
//    group, pipelined the same way (no Lua, no wake message).
//
// Timers: 16-byte ids, 32-byte payload, activation an hour ahead, 8 shards.
// The engines here are never started (producer side only). Counters:
// timers_per_s, ratio_to_ceiling (against the EVALSHA ceiling of the same
// batch size; batch 1 for single schedules), ratio_to_plain, and
// paired_ratio: against an EVALSHA ceiling run of the same batch made right
// before each engine run (this machine's speed drifts over a minute).
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench_common.h"

extern "C" {
#include "scripts.h"
}

namespace {

constexpr const char *kTopic = "bench";
constexpr int kShards = 8;
constexpr size_t kPayload = 32;

size_t timers_for(int64_t batch) {
  size_t n = (size_t)batch * 1000;
  return tb::scaled(n < 20000 ? 20000 : n > 100000 ? 100000 : n, 1024);
}

// 16-byte ids: "t<thread>-" then digits, zero-padded.
std::vector<std::string> make_ids(int thread, size_t n) {
  std::vector<std::string> ids(n);
  char buf[32];
  for (size_t i = 0; i < n; i++) {
    std::snprintf(buf, sizeof buf, "t%d-%013zu", thread % 10, i);
    ids[i] = buf;
  }
  return ids;
}

// The envelope of DESIGN.md (format 1, big-endian, no headers).
std::string envelope(double at, const std::string &payload) {
  std::string e(11, '\0');
  uint64_t us = (uint64_t)(at * 1e6);
  e[0] = 1;
  for (int k = 0; k < 8; k++) e[1 + k] = (char)(us >> (56 - 8 * k));
  return e + payload;  // header count u16 0 already in e[9..10]
}

// ---------------------------------------------------------------- ceilings

struct Group {
  std::vector<size_t> idx;
};

enum class Bare { evalsha, plain };

void append(tb::Redis &r, std::vector<const char *> &argv,
            std::vector<size_t> &len) {
  if (redisAppendCommandArgv(r.ctx(), (int)argv.size(), argv.data(),
                             len.data()) != REDIS_OK)
    tb::fail("append: %s", r.ctx()->errstr);
}

// Writes ids[from, to) in one round trip; returns commands sent.
size_t bare_batch(tb::Redis &r, Bare how, const std::string &sha,
                  const std::vector<std::string> &ids, size_t from, size_t to,
                  double at, const std::string &payload,
                  const std::string keys[kShards][3]) {
  std::vector<Group> groups(kShards);
  for (size_t i = from; i < to; i++)
    groups[timers_shard_of(ids[i].data(), ids[i].size(), kShards)]
        .idx.push_back(i);
  char score[32];
  size_t slen = (size_t)std::snprintf(score, sizeof score, "%.6f", at);
  std::string env = envelope(at, payload), chan = "timers:wake:bench";
  size_t calls = 0;
  for (int s = 0; s < kShards; s++) {
    const std::vector<size_t> &g = groups[s].idx;
    if (g.empty()) continue;
    std::string shard = std::to_string(s), n = std::to_string(g.size());
    std::vector<const char *> argv;
    std::vector<size_t> len;
    auto arg = [&](const char *p, size_t l) {
      argv.push_back(p);
      len.push_back(l);
    };
    if (how == Bare::evalsha) {
      arg("EVALSHA", 7), arg(sha.data(), sha.size()), arg("3", 1);
      for (int k = 0; k < 3; k++) arg(keys[s][k].data(), keys[s][k].size());
      arg(chan.data(), chan.size()), arg(shard.data(), shard.size());
      arg(score, slen), arg(n.data(), n.size());
    } else {
      arg("ZADD", 4), arg(keys[s][0].data(), keys[s][0].size());
    }
    for (size_t i : g) arg(score, slen), arg(ids[i].data(), ids[i].size());
    if (how == Bare::plain) {
      append(r, argv, len);
      calls++;
      argv.clear(), len.clear();
      arg("HSET", 4), arg(keys[s][1].data(), keys[s][1].size());
    }
    for (size_t i : g)
      arg(ids[i].data(), ids[i].size()), arg(env.data(), env.size());
    append(r, argv, len);
    calls++;
  }
  for (size_t k = 0; k < calls; k++) {
    redisReply *rep = r.reply();
    bool err = rep->type == REDIS_REPLY_ERROR;
    std::string why = err ? std::string(rep->str, rep->len) : "";
    freeReplyObject(rep);
    if (err) tb::fail("bare schedule: %s", why.c_str());
  }
  return calls;
}

struct BareRun {
  size_t n = 0, calls = 0;
  double setup = 0, work = 0;
};

BareRun bare_once(Bare how, size_t batch) {
  BareRun b;
  b.n = timers_for((int64_t)batch);
  double t0 = tb::mono();
  tb::flush();
  tb::Redis r;
  std::string sha = r.str("SCRIPT LOAD %s", tm__script_source[TM_SCRIPT_SCHEDULE]);
  std::vector<std::string> ids = make_ids(0, b.n);
  std::string keys[kShards][3];
  for (int s = 0; s < kShards; s++)
    for (int k = 0; k < 3; k++) keys[s][k] = tb::shard_key(kTopic, s, "zpa"[k]);
  const std::string &p = tb::payload(kPayload);
  double at = tb::wall() + 3600;
  b.setup = tb::mono() - t0;
  double w0 = tb::mono();
  for (size_t from = 0; from < b.n; from += batch)
    b.calls += bare_batch(r, how, sha, ids, from, std::min(b.n, from + batch),
                          at, p, keys);
  b.work = tb::mono() - w0;
  long long got = tb::pending(r, kTopic, kShards);
  if (got != (long long)b.n) tb::fail("wrote %zu, found %lld", b.n, got);
  return b;
}

void BM_ScheduleCeiling(benchmark::State &state, Bare how) {
  size_t batch = (size_t)state.range(0);
  tb::run(state, [&] {
    BareRun b = bare_once(how, batch);
    state.SetIterationTime(b.work);
    double rate = (double)b.n / b.work;
    tb::record(std::string(how == Bare::evalsha ? "evalsha/" : "plain/") +
                   std::to_string(batch), rate);
    state.counters["timers_per_s"] = rate;
    state.counters["commands"] = (double)b.calls;
    state.counters["timers"] = (double)b.n;
    state.counters["setup_s"] = b.setup;
    state.counters["teardown_s"] = 0;
  });
}

// ------------------------------------------------------------------ engine

void BM_Schedule(benchmark::State &state, bool single) {
  size_t batch = single ? 1 : (size_t)state.range(0);
  int threads = (int)state.range(1);
  tb::run(state, [&] {
    // Paired ceiling: the EVALSHA loop right before this run (set-up).
    BareRun paired = bare_once(Bare::evalsha, batch);
    size_t n = timers_for((int64_t)batch);
    size_t per = n / (size_t)threads;
    n = per * (size_t)threads;
    double t0 = tb::mono();
    tb::flush();
    timers_config cfg = tb::config(kShards);
    timers_engine *e = nullptr;
    tb::check(timers_engine_create(&cfg, &e), "create");
    std::unique_ptr<timers_engine, void (*)(timers_engine *)> own(
        e, timers_engine_destroy);
    // Records the topic's shard count once, as any first schedule would.
    timers_timer warm{};
    warm.topic = kTopic, warm.id = "warm", warm.has_activate_in = true;
    warm.activate_in = 3600;
    tb::check(timers_schedule(e, &warm, nullptr, 0), "schedule");
    bool removed;
    tb::check(timers_cancel(e, kTopic, "warm", &removed), "cancel");
    const std::string &p = tb::payload(kPayload);
    double at = tb::wall() + 3600;
    std::vector<std::vector<std::string>> ids(threads);
    std::vector<std::vector<timers_timer>> ts(threads);
    for (int t = 0; t < threads; t++) {
      ids[t] = make_ids(t, per);
      ts[t].resize(per);
      for (size_t i = 0; i < per; i++) {
        timers_timer &x = ts[t][i];
        x = timers_timer{};
        x.topic = kTopic, x.id = ids[t][i].c_str();
        x.payload = p.data(), x.payload_len = p.size();
        x.has_activate_at = true, x.activate_at = at;
      }
    }
    double setup = tb::mono() - t0;

    std::atomic<int> go{0}, failed{0};
    std::string why;
    auto body = [&](int t) {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (size_t from = 0; from < per; from += batch) {
        size_t m = std::min(batch, per - from);
        int rc = single ? timers_schedule(e, &ts[t][from], nullptr, 0)
                        : timers_schedule_batch(e, &ts[t][from], m, nullptr);
        if (rc != TIMERS_OK) {
          if (failed.fetch_add(1) == 0) why = timers_last_error();
          return;
        }
      }
    };
    std::vector<std::thread> th;
    for (int t = 0; t < threads; t++) th.emplace_back(body, t);
    double w0 = tb::mono();
    go.store(1, std::memory_order_release);
    for (auto &x : th) x.join();
    double work = tb::mono() - w0;
    if (failed) tb::fail("schedule failed: %s", why.c_str());

    double d0 = tb::mono();
    own.reset();
    double teardown = tb::mono() - d0;
    tb::Redis r;
    long long got = tb::pending(r, kTopic, kShards);
    if (got != (long long)n) tb::fail("scheduled %zu, found %lld", n, got);
    state.SetIterationTime(work);
    double rate = (double)n / work;
    double ceil = tb::median_of("evalsha/" + std::to_string(batch));
    double plain = tb::median_of("plain/" + std::to_string(batch));
    state.counters["timers_per_s"] = rate;
    state.counters["ceiling_timers_per_s"] = ceil;
    state.counters["ratio_to_ceiling"] = ceil > 0 ? rate / ceil : 0;
    state.counters["ratio_to_plain"] = plain > 0 ? rate / plain : 0;
    double pr = (double)paired.n / paired.work;
    state.counters["paired_ceiling_timers_per_s"] = pr;
    state.counters["paired_ratio"] = rate / pr;
    state.counters["timers"] = (double)n;
    state.counters["setup_s"] = setup;
    state.counters["teardown_s"] = teardown;
  });
}

benchmark::internal::Benchmark *common(benchmark::internal::Benchmark *b) {
  return b->UseManualTime()
      ->Iterations(1)
      ->Repetitions(tb::reps())
      ->ReportAggregatesOnly(true)
      ->Unit(benchmark::kMillisecond);
}

const int kBatches[] = {1, 8, 64, 256, 1024};

}  // namespace

void bench_register() {
  auto *ce = common(benchmark::RegisterBenchmark(
      "BM_ScheduleCeiling_evalsha", BM_ScheduleCeiling, Bare::evalsha));
  auto *cp = common(benchmark::RegisterBenchmark(
      "BM_ScheduleCeiling_plain", BM_ScheduleCeiling, Bare::plain));
  ce->ArgNames({"batch"});
  cp->ArgNames({"batch"});
  for (int b : kBatches) ce->Arg(b), cp->Arg(b);

  auto *s = common(benchmark::RegisterBenchmark("BM_Schedule_single",
                                                BM_Schedule, true));
  s->ArgNames({"batch", "threads"});
  for (int t : {1, 2, 4}) s->Args({1, t});
  auto *b = common(benchmark::RegisterBenchmark("BM_Schedule_batch",
                                                BM_Schedule, false));
  b->ArgNames({"batch", "threads"});
  for (int n : kBatches) b->Args({n, 1});
  b->Args({64, 2});
  b->Args({64, 4});
}
