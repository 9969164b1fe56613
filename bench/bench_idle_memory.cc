// bench_idle_memory.cc - what an idle engine costs, how fast it wakes for a
// timer another process scheduled, and what a pending timer costs Redis.
//
// BM_Idle: a child process is forked BEFORE any engine exists (a fork of a
// threaded process keeps only the forking thread). The parent starts an
// engine with 8 shards and nothing due, waits kWarmS, then samples INFO
// commandstats for kWindowS:
//   client_cmds_per_s   commands sent by clients: every command except
//                       those the Lua scripts call inside EVALSHA (TIME,
//                       TYPE, ZRANGE, ZADD, ...: Redis counts those in
//                       commandstats too; the set is read from the
//                       scripts' sources) and our own INFO;
//   redis_calls_per_s   every command Redis executed, inside scripts too;
//   per_shard           client_cmds_per_s / 8.
// Then kWakes times, the child (its own engine, never started) schedules a
// timer 200 ms ahead; the idle parent engine learns of it only through the
// wake message. wake_p50_ms / wake_max_ms: handler start minus activation.
//
// BM_Memory: 1M pending timers (16-byte ids, 32-byte payload, 8 shards) by
// schedule_batch; used_memory delta per timer, and MEMORY USAGE (SAMPLES 0:
// every element) of each shard's sorted set and hash, summed, per timer.
// BM_MemoryPlain: the same ids and raw 32-byte payloads as a plain sorted
// set + hash per shard (ZADD/HSET, no envelope): the reference figure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "bench_common.h"

extern "C" {
#include "scripts.h"
}

namespace {

constexpr const char *kTopic = "idle";
constexpr int kShards = 8;
constexpr double kWarmS = 2.0;
constexpr int kWakes = 10;
constexpr double kWakeAhead = 0.200;

double window_s() {
  const char *s = std::getenv("TIMERS_BENCH_IDLE_S");
  double v = s ? std::atof(s) : 10.0;
  return v > 0 ? v : 10.0;
}

// ------------------------------------------------------------------ idle

// The commands the scripts call (every redis.call('NAME' in scripts.c),
// lower case as in commandstats. The engine sends none of them itself
// while idle (it sends TIME on connect only, before the window).
const std::set<std::string> &in_scripts() {
  static const std::set<std::string> names = [] {
    std::set<std::string> out;
    const std::string call = "redis.call('";
    for (int k = 0; k < TM_SCRIPT_COUNT; k++) {
      std::string src = tm__script_source[k];
      for (size_t at = src.find(call); at != std::string::npos;
           at = src.find(call, at + 1)) {
        size_t from = at + call.size(), to = src.find('\'', from);
        std::string name = src.substr(from, to - from);
        for (char &ch : name) ch = (char)std::tolower((unsigned char)ch);
        out.insert(name);
      }
    }
    return out;
  }();
  return names;
}

struct Calls {
  long long client = 0, all = 0, evalsha = 0;
};

Calls command_calls(tb::Redis &r) {
  std::string s = r.str("INFO commandstats");
  Calls c;
  size_t at = 0;
  while ((at = s.find("cmdstat_", at)) != std::string::npos) {
    size_t colon = s.find(':', at), calls = s.find("calls=", at);
    std::string name = s.substr(at + 8, colon - at - 8);
    long long n = std::atoll(s.c_str() + calls + 6);
    at = colon;
    if (name == "info") continue;
    c.all += n;
    if (!in_scripts().count(name)) c.client += n;
    if (name == "evalsha") c.evalsha += n;
  }
  return c;
}

// The child: schedules one timer 200 ms ahead per byte read from `in`,
// answers with the activation time on `out`, exits at EOF.
[[noreturn]] void child_main(int in, int out) {
  timers_config cfg = tb::config(kShards);
  timers_engine *e = nullptr;
  if (timers_engine_create(&cfg, &e) != TIMERS_OK) _exit(2);
  char k;
  int seq = 0;
  while (read(in, &k, 1) == 1) {
    std::string id = "wake" + std::to_string(seq++);
    timers_timer t{};
    t.topic = kTopic, t.id = id.c_str();
    t.has_activate_at = true, t.activate_at = timers_now() + kWakeAhead;
    double at = timers_schedule(e, &t, nullptr, 0) == TIMERS_OK ? t.activate_at
                                                                : -1;
    if (write(out, &at, sizeof at) != (ssize_t)sizeof at) break;
  }
  timers_engine_destroy(e);
  _exit(0);
}

struct Child {
  pid_t pid = -1;
  int to = -1, from = -1;
  ~Child() {
    if (to >= 0) close(to);
    if (from >= 0) close(from);
    if (pid > 0) {
      int st;
      if (waitpid(pid, &st, 0) != pid) kill(pid, SIGKILL);
    }
  }
};

void fork_child(Child &c) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) tb::fail("pipe: %s", std::strerror(errno));
  std::fflush(nullptr);
  c.pid = fork();
  if (c.pid < 0) tb::fail("fork: %s", std::strerror(errno));
  if (c.pid == 0) {
    close(a[1]), close(b[0]);
    child_main(a[0], b[1]);
  }
  close(a[0]), close(b[1]);
  c.to = a[1], c.from = b[0];
}

struct WakeCtx {
  std::mutex m;
  std::condition_variable cv;
  std::vector<double> late;  // seconds
  size_t foreign = 0;
};

timers_outcome on_wake(const timers_message *msg, void *ud) {
  double now = timers_now();
  WakeCtx *c = static_cast<WakeCtx *>(ud);
  std::lock_guard<std::mutex> g(c->m);
  if (std::strncmp(msg->id, "wake", 4) == 0)
    c->late.push_back(now - msg->activate_at);
  else
    c->foreign++;
  c->cv.notify_all();
  return TIMERS_ACK;
}

std::vector<double> wake_test(Child &child, WakeCtx &ctx) {
  for (int k = 0; k < kWakes; k++) {
    char go = 'w';
    double at;
    if (write(child.to, &go, 1) != 1 ||
        read(child.from, &at, sizeof at) != (ssize_t)sizeof at || at < 0)
      tb::fail("the scheduling child process failed (wake %d)", k);
    std::unique_lock<std::mutex> g(ctx.m);
    if (!ctx.cv.wait_for(g, std::chrono::seconds(5),
                         [&] { return ctx.late.size() > (size_t)k; }))
      tb::fail("wake %d: a timer scheduled by another process did not fire "
               "within 5 s of being scheduled 200 ms ahead", k);
    g.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // idle again
  }
  std::vector<double> ms;
  for (double s : ctx.late) ms.push_back(s * 1e3);
  std::sort(ms.begin(), ms.end());
  return ms;
}

void BM_Idle(benchmark::State &state) {
  tb::run(state, [&] {
    double s0 = tb::mono();
    tb::flush();
    Child child;
    fork_child(child);  // before any engine (and its threads) exists
    WakeCtx ctx;
    timers_config cfg = tb::config(kShards);
    timers_engine *e = nullptr;
    tb::check(timers_engine_create(&cfg, &e), "create");
    std::unique_ptr<timers_engine, void (*)(timers_engine *)> own(
        e, timers_engine_destroy);
    tb::check(timers_subscribe(e, kTopic, on_wake, &ctx, nullptr), "subscribe");
    tb::check(timers_engine_start(e), "start");
    std::this_thread::sleep_for(std::chrono::duration<double>(kWarmS));
    double setup = tb::mono() - s0;

    tb::Redis r;
    double win = window_s();
    Calls a = command_calls(r);
    double w0 = tb::mono();
    std::this_thread::sleep_for(std::chrono::duration<double>(win));
    Calls b = command_calls(r);
    double work = tb::mono() - w0;
    std::vector<double> ms = wake_test(child, ctx);

    double d0 = tb::mono();
    own.reset();
    double teardown = tb::mono() - d0;
    if (ctx.foreign) tb::fail("%zu unexpected timers fired", ctx.foreign);
    state.SetIterationTime(work);
    auto &c = state.counters;
    c["window_s"] = work;
    c["client_cmds_per_s"] = (double)(b.client - a.client) / work;
    c["client_cmds_per_s_per_shard"] =
        (double)(b.client - a.client) / work / kShards;
    c["redis_calls_per_s"] = (double)(b.all - a.all) / work;
    c["evalsha_per_s"] = (double)(b.evalsha - a.evalsha) / work;
    c["max_sleep_ms"] = cfg.max_sleep_ms;
    c["wakes"] = (double)ms.size();
    c["wake_p50_ms"] = tb::percentile(ms, 0.5);
    c["wake_max_ms"] = ms.back();
    c["wake_min_ms"] = ms.front();
    c["setup_s"] = setup;
    c["teardown_s"] = teardown;
  });
}

// ---------------------------------------------------------------- memory

constexpr size_t kIdLen = 16;
constexpr size_t kPayload = 32;

size_t memory_n() { return tb::scaled(1000000, 10000); }

long long memory_usage(tb::Redis &r, const std::string &key) {
  return r.integer("MEMORY USAGE %s SAMPLES 0", key.c_str());
}

struct Breakdown {
  long long z = 0, p = 0, a = 0, other = 0;
};

Breakdown breakdown(tb::Redis &r, const char *topic, bool engine) {
  Breakdown b;
  for (int s = 0; s < kShards; s++) {
    b.z += std::max(0LL, memory_usage(r, tb::shard_key(topic, s, 'z')));
    b.p += std::max(0LL, memory_usage(r, tb::shard_key(topic, s, 'p')));
    b.a += std::max(0LL, memory_usage(r, tb::shard_key(topic, s, 'a')));
  }
  if (engine)
    b.other += std::max(0LL, memory_usage(r, tb::meta_key(topic)));
  return b;
}

void plain_load(tb::Redis &r, const char *topic, size_t n) {
  const std::string &p = tb::payload(kPayload);
  double at = tb::wall() + 3600;
  char score[32];
  std::snprintf(score, sizeof score, "%.6f", at);
  size_t inflight = 0;
  for (size_t i = 0; i < n; i++) {
    std::string id = tb::load_id("m", kIdLen, i);
    int s = (int)timers_shard_of(id.data(), id.size(), kShards);
    std::string z = tb::shard_key(topic, s, 'z'), h = tb::shard_key(topic, s, 'p');
    redisAppendCommand(r.ctx(), "ZADD %s %s %b", z.c_str(), score, id.data(),
                       id.size());
    redisAppendCommand(r.ctx(), "HSET %s %b %b", h.c_str(), id.data(),
                       id.size(), p.data(), p.size());
    inflight += 2;
    if (inflight >= 2000 || i + 1 == n) {
      for (; inflight; inflight--) {
        redisReply *rep = r.reply();
        bool err = rep->type == REDIS_REPLY_ERROR;
        freeReplyObject(rep);
        if (err) tb::fail("plain load: error reply");
      }
    }
  }
}

void BM_Memory(benchmark::State &state, bool plain) {
  tb::run(state, [&] {
    size_t n = memory_n();
    const char *topic = plain ? "plain" : "mem";
    double s0 = tb::mono();
    tb::flush();
    tb::Redis r;
    freeReplyObject(r.cmd("MEMORY PURGE"));
    long long before = r.info_int("memory", "used_memory");
    double setup = tb::mono() - s0;
    double w0 = tb::mono();
    if (plain)
      plain_load(r, topic, n);
    else
      tb::load(topic, kShards, n, tb::wall() + 3600, kPayload, "m", kIdLen);
    double work = tb::mono() - w0;
    long long got = tb::pending(r, topic, kShards);
    if (got != (long long)n) tb::fail("loaded %zu, found %lld", n, got);
    long long after = r.info_int("memory", "used_memory");
    Breakdown b = breakdown(r, topic, !plain);
    double d0 = tb::mono();
    tb::flush();
    double teardown = tb::mono() - d0;

    state.SetIterationTime(work);
    double dn = (double)n;
    auto &c = state.counters;
    c["timers"] = dn;
    c["load_timers_per_s"] = dn / work;
    c["used_memory_per_timer"] = (double)(after - before) / dn;
    c["zset_per_timer"] = (double)b.z / dn;
    c["hash_per_timer"] = (double)b.p / dn;
    c["attempts_hash_per_timer"] = (double)b.a / dn;
    c["keys_per_timer"] = (double)(b.z + b.p + b.a + b.other) / dn;
    c["id_bytes"] = kIdLen;
    c["payload_bytes"] = kPayload;
    c["value_bytes"] = plain ? kPayload : kPayload + 11;  // + envelope
    c["setup_s"] = setup;
    c["teardown_s"] = teardown;
  });
}

}  // namespace

void bench_register() {
  benchmark::RegisterBenchmark("BM_Idle", BM_Idle)
      ->UseManualTime()
      ->Iterations(1)
      ->Repetitions(1)  // ~15 s; the wake figures are over 10 wakes
      ->Unit(benchmark::kMillisecond);
  for (bool plain : {false, true})
    benchmark::RegisterBenchmark(plain ? "BM_MemoryPlain" : "BM_Memory",
                                 BM_Memory, plain)
        ->UseManualTime()
        ->Iterations(1)
        ->Repetitions(1)  // deterministic: one run of 1M timers
        ->Unit(benchmark::kMillisecond);
}
