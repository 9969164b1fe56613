// bench_common.h - the shared fixture of the benchmark binaries.
//
// Every binary links bench_main.cc: it starts ONE private redis-server
// (unix socket) before the benchmarks and stops it after them. Benchmarks
// are registered explicitly by the binary's bench_register(), so their order
// is the order of the calls (ceilings first), not the static-initialisation
// order of translation units.
//
// Conventions of every benchmark here:
//  - ->UseManualTime()->Iterations(1)->Repetitions(R): one iteration is one
//    whole experiment; the manual time is the work only; set-up and
//    tear-down are reported as counters `setup_s` and `teardown_s`.
//  - FLUSHALL before each experiment (flush()).
//  - Failures (engine errors, lost or duplicated timers, timeouts) end the
//    experiment with state.SkipWithError and the reason.
#ifndef TIMERS_BENCH_COMMON_H
#define TIMERS_BENCH_COMMON_H

#include <benchmark/benchmark.h>
#include <hiredis.h>
#include <sys/types.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "timers.h"

// Defined by each binary: registers its benchmarks, in run order.
void bench_register();

namespace tb {

// Repetitions per experiment: TIMERS_BENCH_REPS if set, else dflt. The
// tables use their medians.
int reps(int dflt = 3);
// Multiplies experiment sizes (TIMERS_BENCH_SCALE, default 1): 0.1 gives a
// quick smoke run.
size_t scaled(size_t n, size_t min = 100);

// The process-wide server ("/path/redis.sock").
const char *redis_addr();
// Where JSON, raw samples and plots go (TIMERS_BENCH_RESULTS, default
// bench/results); created if missing.
std::string results_dir();

double mono();  // monotonic seconds
double wall();  // Unix seconds (the protocol's clock): timers_now()

// Thrown by the helpers; run() turns it into SkipWithError.
struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
// Throws with timers_last_error() unless rc is TIMERS_OK.
void check(int rc, const char *what);

// Runs one experiment inside the state loop; turns failures into
// SkipWithError (the message is kept alive for the reporter).
void run(benchmark::State &state, const std::function<void()> &body);

// A plain hiredis connection to the bench server (one thread at a time).
class Redis {
 public:
  Redis();
  ~Redis();
  Redis(const Redis &) = delete;
  Redis &operator=(const Redis &) = delete;
  redisContext *ctx() { return c_; }
  // One command; throws on an I/O or error reply. Caller frees.
  redisReply *cmd(const char *fmt, ...);
  long long integer(const char *fmt, ...);
  std::string str(const char *fmt, ...);
  // Field `name` of an INFO section ("used_memory").
  long long info_int(const char *section, const char *name);
  double info_double(const char *section, const char *name);
  // CPU seconds Redis has used (INFO cpu: used_cpu_user + used_cpu_sys).
  double cpu_s();
  // Next pipelined reply; throws on I/O failure (error replies returned).
  redisReply *reply();

 private:
  redisContext *c_ = nullptr;
};

// The arguments of one command for redisAppendCommandArgv. Only pointers
// are kept: every string added must outlive append() (hence no
// temporaries).
class Args {
 public:
  Args &add(const char *p, size_t n) {
    p_.push_back(p);
    n_.push_back(n);
    return *this;
  }
  Args &add(const char *s);
  Args &add(const std::string &s) { return add(s.data(), s.size()); }
  Args &add(std::string &&) = delete;
  size_t size() const { return p_.size(); }
  // Appends the command to r's pipeline (throws on failure) and clears.
  void append(Redis &r);

 private:
  std::vector<const char *> p_;
  std::vector<size_t> n_;
};

// Throws "<what>: <message>" if rep is an error reply (rep is freed then).
void check_reply(redisReply *rep, const char *what);

void flush();  // FLUSHALL (sync) and CONFIG RESETSTAT
// CONFIG SET of each "name value" pair in pairs (blank-separated).
void redis_config_set(const char *pairs);

// Engine config for the bench server: shards, nothing logged but errors.
timers_config config(int shards);
// A payload of n bytes (deterministic).
const std::string &payload(size_t n);

// Schedules n timers "<prefix><i>" (i = 0..n-1) on topic with the given
// shard count, all activating at `at`, payload of payload_len bytes, in
// batches of `batch` from an engine that is never started. id_len > 0 pads
// i with zeros to ids of exactly id_len bytes. Returns seconds.
double load(const char *topic, int shards, size_t n, double at,
            size_t payload_len, const char *prefix = "", size_t id_len = 0,
            size_t batch = 1000);
// The id load() gives timer i.
std::string load_id(const char *prefix, size_t id_len, size_t i);

// The keys of shard s of topic in keys.h's TM_KEY_* order (z, p, a, x, y,
// d, o: index with TM_KEY_*), by the engine's own tm__native_keys with the
// default key prefix of timers_config_init.
std::vector<std::string> shard_keys(const char *topic, int s);
// One of them: kind 'z', 'p', 'a', 'x', 'y', 'd' or 'o'.
std::string shard_key(const char *topic, int s, char kind);
// The topic's meta key (keys.h tm__meta_key).
std::string meta_key(const char *topic);
// The topic's members set (keys.h tm__members_key): owned topics' live
// member ids, scored by their expiry (Unix ms).
std::string members_key(const char *topic);
// The member that owner.c's rendezvous hashing with bounded load gives each
// shard of topic among members ("" if none): a copy of owner.c's pick() and
// assign(), which the engine does not export. If the two ever differ, a wait for the expected
// split times out and says so; it never measures a wrong split.
std::vector<std::string> rendezvous_split(
    const std::vector<std::string> &members, const char *topic,
    uint32_t shards);

// ------------------------------------------------------------ processes
//
// Engines in their own processes. Fork only while this process has one
// thread (before any engine of it is started): a fork keeps only the
// calling thread, and a lock another thread held stays held in the child.

// Forks a child that runs body, then _exit(0); if body throws, the message
// goes to err (cap bytes, NUL-terminated: shared memory, so the parent can
// read it) and the child exits 1. The child dies with its parent
// (PR_SET_PDEATHSIG) and never returns into the caller.
pid_t fork_process(char *err, size_t cap, const std::function<void()> &body);
// Waits up to timeout_s for pid to exit, then SIGKILLs and reaps it.
// Returns the wait status.
int reap(pid_t pid, double timeout_s);

// An anonymous shared mapping of n zeroed bytes: children forked after it
// was made see the same memory (lock-free std::atomic in it works across
// processes). Unmapped by the destructor.
class SharedMap {
 public:
  explicit SharedMap(size_t n);
  ~SharedMap();
  SharedMap(const SharedMap &) = delete;
  SharedMap &operator=(const SharedMap &) = delete;
  void *data() { return p_; }

 private:
  void *p_;
  size_t n_;
};
// Sum of ZCARD over the topic's shards.
long long pending(Redis &r, const char *topic, int shards);

// Median of the values recorded so far under key (ceilings): 0 if none.
void record(const std::string &key, double v);
double median_of(const std::string &key);

// Percentile (0..1) of sorted samples; nearest rank.
double percentile(const std::vector<double> &sorted, double q);

}  // namespace tb

#endif
