// bench_common.cc - helpers of the fixture (see bench_common.h).
#include "bench_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>

extern "C" {
#include "keys.h"
#include "redis_server.h"
}

namespace tb {

redis_server g_server;

int reps(int dflt) {
  const char *s = std::getenv("TIMERS_BENCH_REPS");
  int n = s ? std::atoi(s) : dflt;
  return n > 0 ? n : 1;
}

size_t scaled(size_t n, size_t min) {
  const char *s = std::getenv("TIMERS_BENCH_SCALE");
  double f = s ? std::atof(s) : 1.0;
  if (!(f > 0)) f = 1.0;
  size_t v = (size_t)std::llround((double)n * f);
  return v < min ? min : v;
}

const char *redis_addr() { return g_server.addr; }

std::string results_dir() {
  const char *s = std::getenv("TIMERS_BENCH_RESULTS");
  std::string d = s && *s ? s : "bench/results";
  if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
    fail("cannot create %s: %s", d.c_str(), std::strerror(errno));
  return d;
}

double mono() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double wall() { return timers_now(); }

void fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw failure(buf);
}

void check(int rc, const char *what) {
  if (rc != TIMERS_OK)
    fail("%s: %s (%s)", what, timers_err_name(rc), timers_last_error());
}

void run(benchmark::State &state, const std::function<void()> &body) {
  // SkipWithError keeps the pointer: the messages live until exit.
  static std::deque<std::string> messages;
  static std::mutex lock;
  for (auto _ : state) {
    try {
      body();
    } catch (const std::exception &ex) {
      std::lock_guard<std::mutex> g(lock);
      messages.emplace_back(ex.what());
      std::fprintf(stderr, "bench: error: %s\n", ex.what());
      state.SkipWithError(messages.back().c_str());
      state.SetIterationTime(1e-9);
    }
  }
}

// ------------------------------------------------------------------ Redis

Redis::Redis() {
  struct timeval tv = {10, 0};
  c_ = redisConnectUnixWithTimeout(g_server.addr, tv);
  if (!c_ || c_->err) {
    std::string why = c_ ? c_->errstr : "out of memory";
    if (c_) redisFree(c_);
    c_ = nullptr;
    fail("connect %s: %s", g_server.addr, why.c_str());
  }
  redisSetTimeout(c_, tv);
}

Redis::~Redis() {
  if (c_) redisFree(c_);
}

static redisReply *checked(redisContext *c, void *r) {
  if (!r) fail("redis: %s", c->errstr);
  redisReply *rep = static_cast<redisReply *>(r);
  if (rep->type == REDIS_REPLY_ERROR) {
    std::string e(rep->str, rep->len);
    freeReplyObject(rep);
    fail("redis: %s", e.c_str());
  }
  return rep;
}

redisReply *Redis::cmd(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  void *r = redisvCommand(c_, fmt, ap);
  va_end(ap);
  return checked(c_, r);
}

long long Redis::integer(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = checked(c_, redisvCommand(c_, fmt, ap));
  va_end(ap);
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                : r->type == REDIS_REPLY_STRING ? std::atoll(r->str)
                                                : -1;
  freeReplyObject(r);
  return v;
}

std::string Redis::str(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = checked(c_, redisvCommand(c_, fmt, ap));
  va_end(ap);
  std::string s = r->str ? std::string(r->str, r->len) : std::string();
  freeReplyObject(r);
  return s;
}

long long Redis::info_int(const char *section, const char *name) {
  return (long long)info_double(section, name);
}

double Redis::info_double(const char *section, const char *name) {
  std::string s = "\r\n" + str("INFO %s", section), key = std::string(name) + ":";
  size_t at = s.find("\r\n" + key);
  if (at == std::string::npos) fail("INFO %s: no field %s", section, name);
  return std::atof(s.c_str() + at + 2 + key.size());
}

double Redis::cpu_s() {
  return info_double("cpu", "used_cpu_user") + info_double("cpu", "used_cpu_sys");
}

redisReply *Redis::reply() {
  void *r = nullptr;
  if (redisGetReply(c_, &r) != REDIS_OK || !r) fail("redis: %s", c_->errstr);
  return static_cast<redisReply *>(r);
}

void redis_config_set(const char *pairs) {
  std::istringstream in(pairs);
  std::string name, value;
  Redis r;
  while (in >> name) {
    if (!(in >> value)) fail("'%s' has no value", name.c_str());
    freeReplyObject(r.cmd("CONFIG SET %s %s", name.c_str(), value.c_str()));
    std::fprintf(stderr, "bench: redis CONFIG SET %s %s\n", name.c_str(),
                 value.c_str());
  }
}

void flush() {
  Redis r;
  freeReplyObject(r.cmd("FLUSHALL SYNC"));
  freeReplyObject(r.cmd("CONFIG RESETSTAT"));
}

// ----------------------------------------------------------------- engine

timers_config config(int shards) {
  timers_config c;
  timers_config_init(&c);
  c.redis = g_server.addr;
  c.shards = shards;
  c.log_level = TIMERS_LOG_ERROR;
  return c;
}

const std::string &payload(size_t n) {
  static std::map<size_t, std::string> cache;
  static std::mutex lock;
  std::lock_guard<std::mutex> g(lock);
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  std::string p(n, 'x');
  for (size_t i = 0; i < n; i++) p[i] = (char)('a' + i % 26);
  return cache.emplace(n, p).first->second;
}

std::string load_id(const char *prefix, size_t id_len, size_t i) {
  std::string num = std::to_string(i), pre = prefix;
  if (id_len > pre.size() + num.size())
    num.insert(0, id_len - pre.size() - num.size(), '0');
  return pre + num;
}

double load(const char *topic, int shards, size_t n, double at,
            size_t payload_len, const char *prefix, size_t id_len,
            size_t batch) {
  timers_config cfg = config(shards);
  timers_engine *e = nullptr;
  check(timers_engine_create(&cfg, &e), "create (loader)");
  const std::string &p = payload(payload_len);
  std::vector<std::string> ids(batch);
  std::vector<timers_timer> ts(batch);
  double t0 = mono();
  int rc = TIMERS_OK;
  for (size_t from = 0; from < n && rc == TIMERS_OK; from += batch) {
    size_t m = std::min(batch, n - from);
    for (size_t k = 0; k < m; k++) {
      ids[k] = load_id(prefix, id_len, from + k);
      ts[k] = timers_timer{};
      ts[k].topic = topic;
      ts[k].id = ids[k].c_str();
      ts[k].payload = p.data();
      ts[k].payload_len = p.size();
      ts[k].has_activate_at = true;
      ts[k].activate_at = at;
    }
    rc = timers_schedule_batch(e, ts.data(), m, nullptr);
  }
  double secs = mono() - t0;
  std::string why = rc == TIMERS_OK ? "" : timers_last_error();
  timers_engine_destroy(e);
  if (rc != TIMERS_OK)
    fail("load: %s (%s)", timers_err_name(rc), why.c_str());
  return secs;
}

static const char *key_prefix() {
  static timers_config dflt = [] {
    timers_config c;
    timers_config_init(&c);
    return c;
  }();
  return dflt.key_prefix;
}

std::vector<std::string> shard_keys(const char *topic, int s) {
  static tm_keys keys;  // 4 KB: not on the stack; one thread at a time
  static std::mutex lock;
  std::lock_guard<std::mutex> g(lock);
  tm__native_keys(keys, key_prefix(), topic, (uint32_t)s);
  return std::vector<std::string>(keys, keys + TM_NKEYS);
}

std::string shard_key(const char *topic, int s, char kind) {
  for (std::string &k : shard_keys(topic, s))  // "...:<kind>"
    if (k.back() == kind) return k;
  fail("shard_key: no key kind '%c'", kind);
}

std::string meta_key(const char *topic) {
  char buf[TM_KEY_MAX];
  tm__meta_key(buf, key_prefix(), topic);
  return buf;
}

std::string members_key(const char *topic) {
  char buf[TM_KEY_MAX];
  tm__members_key(buf, key_prefix(), topic);
  return buf;
}

// owner.c: FNV-1a 64 of each name, mixed by splitmix64's finalizer.
static uint64_t fnv64(const std::string &str) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : str) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27, x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<std::string> rendezvous_split(
    const std::vector<std::string> &members, const char *topic,
    uint32_t shards) {
  std::vector<std::string> owner(shards);
  if (members.empty()) return owner;
  uint32_t cap = (shards + (uint32_t)members.size() - 1) /
                 (uint32_t)members.size();
  std::vector<uint32_t> load(members.size(), 0);
  uint64_t ht = fnv64(topic);
  for (uint32_t s = 0; s < shards; s++) {
    size_t best = members.size();
    uint64_t top = 0, t = mix64(ht + s);
    for (size_t i = 0; i < members.size(); i++) {
      if (load[i] >= cap) continue;
      uint64_t w = mix64(fnv64(members[i]) ^ t);
      if (best == members.size() || w > top ||
          (w == top && members[i] > members[best]))
        best = i, top = w;
    }
    load[best]++;
    owner[s] = members[best];
  }
  return owner;
}

Args &Args::add(const char *s) { return add(s, std::strlen(s)); }

void Args::append(Redis &r) {
  if (redisAppendCommandArgv(r.ctx(), (int)p_.size(), p_.data(),
                             n_.data()) != REDIS_OK)
    fail("append: %s", r.ctx()->errstr);
  p_.clear();
  n_.clear();
}

void check_reply(redisReply *rep, const char *what) {
  if (rep->type != REDIS_REPLY_ERROR) return;
  std::string e(rep->str, rep->len);
  freeReplyObject(rep);
  fail("%s: %s", what, e.c_str());
}

long long pending(Redis &r, const char *topic, int shards) {
  long long n = 0;
  for (int s = 0; s < shards; s++)
    n += r.integer("ZCARD %s", shard_key(topic, s, 'z').c_str());
  return n;
}

// ------------------------------------------------------------- processes

pid_t fork_process(char *err, size_t cap, const std::function<void()> &body) {
  std::fflush(nullptr);  // nothing buffered is written twice
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", std::strerror(errno));
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent died before prctl
  int rc = 0;
  try {
    body();
  } catch (const std::exception &ex) {
    std::snprintf(err, cap, "%s", ex.what());
    rc = 1;
  }
  _exit(rc);  // no atexit handlers: they belong to the parent (redis-server)
}

int reap(pid_t pid, double timeout_s) {
  int st = 0;
  for (double end = mono() + timeout_s; mono() < end;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

SharedMap::SharedMap(size_t n) : n_(n) {
  p_ = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
            -1, 0);
  if (p_ == MAP_FAILED) fail("mmap %zu bytes: %s", n, std::strerror(errno));
}

SharedMap::~SharedMap() { munmap(p_, n_); }

// -------------------------------------------------------------- ceilings

static std::map<std::string, std::vector<double>> g_records;

void record(const std::string &key, double v) { g_records[key].push_back(v); }

double median_of(const std::string &key) {
  auto it = g_records.find(key);
  if (it == g_records.end() || it->second.empty()) return 0;
  std::vector<double> v = it->second;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(const std::vector<double> &sorted, double q) {
  if (sorted.empty()) return 0;
  double rank = std::ceil(q * (double)sorted.size());
  size_t i = rank < 1 ? 0 : (size_t)rank - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace tb
