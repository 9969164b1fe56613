// bench_schedule.cc - writing timers: timers_schedule, timers_schedule_batch
// (1 to 1024 per call) from 1, 2 and 4 producer threads, against two bare
// hiredis loops on one connection, one thread, that write the same data:
//
//  BM_ScheduleCeiling_evalsha: per batch, the engine's own schedule Lua
//    (scripts.c) called by EVALSHA once per shard group (at most
//    TM_SCHEDULE_MAX timers) with the engine's KEYS (z p a d) and ARGV
//    (channel, shard, n, then per timer score, id, envelope, tombstone
//    token), all groups of a batch in one pipelined round trip. Envelopes
//    (codec.h tm__envelope_encode), tombstone tokens (keys.h
//    tm__timer_token, as 16 hex digits; on, as with the default
//    dedup_window_ms), keys and the wake channel (keys.h) come from the
//    engine's own functions, linked from the static library. Each reply
//    must be {written = group size, skipped = 0}.
//  BM_ScheduleCeiling_plain: the same writes as plain ZADD + HSET per shard
//    group, pipelined the same way (no Lua, no dedup checks, no wake
//    message).
//
// Timers: 16-byte ids, 32-byte payload, activation an hour ahead, 8 shards.
// The engines here are never started (producer side only). Counters:
// timers_per_s, ratio_to_ceiling (against the EVALSHA ceiling of the same
// batch size; batch 1 for single schedules), ratio_to_plain, and
// paired_ratio: against an EVALSHA ceiling run of the same batch made right
// before each engine run (this machine's speed drifts over a minute).
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench_common.h"

extern "C" {
#include "codec.h"
#include "keys.h"
#include "scripts.h"
}

namespace {

constexpr const char *kTopic = "bench";
constexpr int kShards = 8;
constexpr size_t kPayload = 32;

// The fields this file sends per timer (append_evalsha); if scripts.h
// changes them, this fails to compile instead of measuring something else.
static_assert(TM_SCHEDULE_ARGS == 3 && TM_SCHEDULE_STRIDE == 4 &&
                  TM_SCHEDULE_KEYS == 6,
              "SCHEDULE ARGV is channel, shard, n, then (score, id, "
              "envelope, tombstone token) per timer: update append_evalsha()");

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

// The stored envelope of a timer due at `at` (codec.h), by the engine's
// own encoder.
std::string envelope(double at, const std::string &payload) {
  timers_timer t{};
  t.topic = kTopic, t.id = "x";
  t.payload = payload.data(), t.payload_len = payload.size();
  t.has_activate_at = true, t.activate_at = at;
  std::string e(tm__envelope_size(&t), '\0');
  tm__envelope_encode(&t, at, &e[0]);
  return e;
}

// ---------------------------------------------------------------- ceilings

enum class Bare { evalsha, plain };

struct Shard {
  std::vector<std::string> keys;  // z p a d
  std::string number;
};

struct Written {
  size_t commands = 0, timers = 0;
};

// One EVALSHA of ids[g[from..to)] (one shard), as the engine's producer:
// KEYS z p a and the tombstone sets of the dedup buckets around now.
void append_evalsha(tb::Redis &r, const std::string &sha, const Shard &sh,
                    const std::string &chan, const std::vector<std::string> &ids,
                    const std::vector<size_t> &g, size_t from, size_t to,
                    const std::string &score, const std::string &env,
                    std::vector<std::string> &tombs) {
  std::string nkeys = std::to_string(TM_SCHEDULE_KEYS);
  std::string n = std::to_string(to - from);
  tombs.clear();
  char tk[8];
  for (size_t k = from; k < to; k++) {
    const std::string &id = ids[g[k]];
    tm__token_bytes(
        tm__timer_token(id.data(), id.size(), env.data(), env.size()), tk);
    tombs.emplace_back(tk, sizeof tk);
  }
  timers_config c;
  timers_config_init(&c);
  int64_t b = tm__tomb_bucket((int64_t)(tb::wall() * 1e6), c.dedup_window_ms);
  std::string sets[3];
  for (int k = 0; k < 3; k++) {
    char key[TM_KEY_MAX];
    tm__tomb_key(key, sh.keys[TM_KEY_D].c_str(), b - 1 + k);
    sets[k] = key;
  }
  tb::Args a;
  a.add("EVALSHA").add(sha).add(nkeys);
  // KEYS z p a, then the tombstone sets (producer.c)
  for (int k : {TM_KEY_Z, TM_KEY_P, TM_KEY_A}) a.add(sh.keys[k]);
  for (const std::string &k : sets) a.add(k);
  a.add(chan).add(sh.number).add(n);
  for (size_t k = from; k < to; k++)
    a.add(score).add(ids[g[k]]).add(env).add(tombs[k - from]);
  a.append(r);
}

void append_plain(tb::Redis &r, const Shard &sh,
                  const std::vector<std::string> &ids,
                  const std::vector<size_t> &g, size_t from, size_t to,
                  const std::string &score, const std::string &env) {
  tb::Args a;
  a.add("ZADD").add(sh.keys[TM_KEY_Z]);
  for (size_t k = from; k < to; k++) a.add(score).add(ids[g[k]]);
  a.append(r);
  a.add("HSET").add(sh.keys[TM_KEY_P]);
  for (size_t k = from; k < to; k++) a.add(ids[g[k]]).add(env);
  a.append(r);
}

// The schedule script's reply: {written, skipped}; nothing is skipped here.
void take_reply(tb::Redis &r, Bare how, size_t group) {
  redisReply *rep = r.reply();
  tb::check_reply(rep, "bare schedule");
  bool ok = how == Bare::plain ? rep->type == REDIS_REPLY_INTEGER
            : rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                rep->element[0]->type == REDIS_REPLY_INTEGER &&
                rep->element[1]->type == REDIS_REPLY_INTEGER &&
                (size_t)rep->element[0]->integer == group &&
                rep->element[1]->integer == 0;
  int type = rep->type;
  freeReplyObject(rep);
  if (!ok)
    tb::fail("bare schedule: reply of type %d is not {%zu written, 0 "
             "skipped} (scripts.h changed?)", type, group);
}

// Writes ids[from, to) in one round trip.
void bare_batch(tb::Redis &r, Bare how, const std::string &sha,
                const std::vector<std::string> &ids, size_t from, size_t to,
                double at, const std::string &payload,
                const std::vector<Shard> &shards, const std::string &chan,
                Written &w) {
  std::vector<std::vector<size_t>> groups(kShards);
  for (size_t i = from; i < to; i++)
    groups[timers_shard_of(ids[i].data(), ids[i].size(), kShards)].push_back(i);
  char score_buf[32];
  std::snprintf(score_buf, sizeof score_buf, "%.6f", at);
  // Every timer here has the same time and payload: one envelope.
  std::string score = score_buf, env = envelope(at, payload);
  std::vector<std::string> tombs;
  std::vector<size_t> sizes;  // per EVALSHA, or 0 per plain command
  for (int s = 0; s < kShards; s++) {
    const std::vector<size_t> &g = groups[s];
    for (size_t k = 0; k < g.size(); k += TM_SCHEDULE_MAX) {
      size_t e = std::min(g.size(), k + (size_t)TM_SCHEDULE_MAX);
      if (how == Bare::evalsha) {
        append_evalsha(r, sha, shards[s], chan, ids, g, k, e, score, env, tombs);
        sizes.push_back(e - k);
      } else {
        append_plain(r, shards[s], ids, g, k, e, score, env);
        sizes.insert(sizes.end(), 2, 0);
      }
    }
  }
  for (size_t n : sizes) take_reply(r, how, n);
  w.commands += sizes.size();
  w.timers += to - from;
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
  std::vector<Shard> shards(kShards);
  for (int s = 0; s < kShards; s++) {
    shards[s].keys = tb::shard_keys(kTopic, s);
    shards[s].number = std::to_string(s);
  }
  timers_config cfg;
  timers_config_init(&cfg);
  char chan_buf[TM_KEY_MAX];
  tm__wake_channel(chan_buf, cfg.key_prefix, kTopic);
  std::string chan = chan_buf;
  const std::string &p = tb::payload(kPayload);
  double at = tb::wall() + 3600;
  b.setup = tb::mono() - t0;
  double w0 = tb::mono();
  Written w;
  for (size_t from = 0; from < b.n; from += batch)
    bare_batch(r, how, sha, ids, from, std::min(b.n, from + batch), at, p,
               shards, chan, w);
  b.work = tb::mono() - w0;
  b.calls = w.commands;
  long long got = tb::pending(r, kTopic, kShards);
  if (got != (long long)b.n || w.timers != b.n)
    tb::fail("wrote %zu of %zu, found %lld", w.timers, b.n, got);
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
