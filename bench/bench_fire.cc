// bench_fire.cc - how fast due timers fire, against the limit of one Redis.
//
// Two ceilings, both a bare hiredis loop on one connection, one thread: no
// threads, no rings, no handlers.
//
// BM_Ceiling (the protocol's ceiling): the engine's own CLAIM and SETTLE
// Lua (scripts.c, SCRIPT LOAD, EVALSHA) with the engine's ARGV: each round
// trip pipelines, as a poller's turn does, one SETTLE call per shard with
// the commit steps of the previous round trip's claims (tombstones on, the
// default dedup_window_ms), then one CLAIM (of `batch` timers, the default
// lease_ms, the native layout's flags) per shard still due. Shapes come
// from scripts.h (TM_CLAIM_*, TM_SETTLE_*, TM_COMMIT_MAX), keys and
// tombstone tokens from keys.h, the flags from layout.h: one definition.
// Every engine figure is also a ratio of it (ratio_to_ceiling, against the
// median of the same shard count and claim batch). This machine's speed
// drifts between benchmarks a minute apart, so every no-op engine run is
// also preceded by its own ceiling run of the same shards and batch
// (set-up, not timed): paired_ceiling_fires_per_s and paired_ratio.
//
// BM_CeilingPlain (the least work Redis must do): the same data work as
// plain commands, no Lua; see plain_drain() for what it does and leaves
// out. BM_Ceiling over BM_CeilingPlain is what the scripts cost.
//
// End to end (BM_Engine): N timers already due (activate_at in the past) are
// written BEFORE the engines start (set-up, not timed); the work is from
// timers_engine_start to the last handler call. Every id is counted: any
// timer fired twice or never fails the run. Handlers are no-ops, or sleep
// handler_ms (an I/O-bound handler); the sleeping rows fire fewer timers
// (about kHandlerRowS of work each) and compare with the workers' limit,
// workers x 1000 / handler_ms fires/s (ideal_fires_per_s), not with Redis.
// Contention counters are the engines' timers_stats, summed over the
// instances.
//
// Shared against owned (BM_Engine rows with forked 1): one process per
// instance, shared or owned topic; the timers are loaded after ownership
// settled and the clock runs from their common activation time (see
// forked_once). BM_Takeover: the time this process's engine takes to own
// the shards of a SIGKILLed owner, and to fire a timer due on one of them
// (see takeover_try). Both read the topic's members set and ownership
// hashes (keys.h) to know when the split is the rendezvous one.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <signal.h>
#include <sys/wait.h>

#include "bench_common.h"

extern "C" {
#include "keys.h"
#include "layout.h"
#include "scripts.h"
}

namespace {

// The ceiling and the engine runs vary by up to +-20% from run to run on
// two cores; each engine run is also paired with a ceiling run of its own.
constexpr int kReps = 3;

constexpr const char *kTopic = "bench";
constexpr size_t kPayload = 32;
constexpr size_t kFireN = 100000;
constexpr double kTimeoutS = 120;
// Rows with sleeping handlers fire about this many seconds' worth.
constexpr double kHandlerRowS = 1.5;

// The fields this file fills per settle step and reads per claimed item;
// if scripts.h changes them, this fails to compile instead of measuring
// something else.
static_assert(TM_SETTLE_KEYS == TM_CORE_KEYS + 2 && TM_SETTLE_ARGS == 6 &&
                  TM_SETTLE_STRIDE == 5,
              "SETTLE is KEYS z p a x y, tombstone set, ownership hash; "
              "ARGV lease_ms, the tombstone set's expiry, dead_max, "
              "dead_ttl_ms, owner, epoch, then steps of (op, token, id, x, "
              "y): update append_settle()");
static_assert(TM_CLAIM_KEYS == TM_CORE_KEYS + 1 && TM_CLAIM_ARGS == 8,
              "CLAIM is KEYS z p a x y, ownership hash; ARGV lease_ms, "
              "count, flags, max_attempts, dead_max, dead_ttl_ms, owner, "
              "epoch: update append_claim()");
static_assert(TM_CLAIM_STRIDE == 4 && TM_CLAIM_REPLY_LEN == 6,
              "a claim reply is {now, lease, next, healed, buried, items}, "
              "an item (id, envelope, attempt, score before): update "
              "take_claim()");

size_t fire_n() { return tb::scaled(kFireN, 1000); }

std::string ceiling_key(int64_t shards, int64_t batch) {
  return "fire/shards:" + std::to_string(shards) +
         "/batch:" + std::to_string(batch);
}

// What a poller sends besides keys and ids: the engine's defaults
// (timers_config_init) and the native layout's claim flags.
struct Protocol {
  std::string lease_ms, window_ms, max_attempts, dead_max, dead_ttl_ms;
  const char *claim_flags;
  bool tombstones;
  int window;  // dedup_window_ms
  double lease_s;
};

const Protocol &protocol() {
  static const Protocol p = [] {
    timers_config c;
    timers_config_init(&c);
    Protocol x;
    x.lease_ms = std::to_string(c.lease_ms);
    x.window_ms = std::to_string(c.dedup_window_ms);
    x.max_attempts = std::to_string(c.max_attempts);
    x.dead_max = std::to_string(c.dead_max);
    x.dead_ttl_ms = std::to_string(c.dead_ttl_ms);
    x.claim_flags = tm__layout_native.claim_flags;
    x.tombstones = tm__layout_native.has_tombstones && c.dedup_window_ms > 0;
    x.lease_s = c.lease_ms / 1e3;
    x.window = c.dedup_window_ms;
    return x;
  }();
  return p;
}

// The tombstone token of a timer: 8 bytes of tm__timer_token over its id
// and stored envelope, as the poller sends it.
std::string tomb_token(const char *id, size_t id_len, const char *blob,
                       size_t blob_len) {
  char buf[8];
  tm__token_bytes(tm__timer_token(id, id_len, blob, blob_len), buf);
  return std::string(buf, sizeof buf);
}

// The tombstone set of now's dedup bucket (keys.h) and when it expires,
// as the poller computes them (the local clock stands in for Redis's: one
// machine).
struct TombSet {
  std::string key, expire_at_ms;
};

TombSet tomb_set(const std::string &base) {
  const Protocol &pr = protocol();
  int64_t b = tm__tomb_bucket((int64_t)(tb::wall() * 1e6), pr.window);
  char key[TM_KEY_MAX];
  tm__tomb_key(key, base.c_str(), b);
  return {key, std::to_string(pr.tombstones ? (b + 2) * pr.window : 0)};
}

// Tombstones left for a shard: every bucket set of its base key.
long long count_tombs(tb::Redis &r, const std::string &base) {
  redisReply *keys = r.cmd("KEYS %s:*", base.c_str());
  long long n = 0;
  for (size_t k = 0; keys && k < keys->elements; k++)
    n += r.integer("SCARD %s", keys->element[k]->str);
  if (keys) freeReplyObject(keys);
  return n;
}

// Each loaded id ("<i>", tb::load) claimed exactly once.
class Seen {
 public:
  explicit Seen(size_t n) : n_(n), k_(n, 0) {}
  void claim(const char *id, size_t len) {
    std::string s(id, len);
    char *end;
    unsigned long long i = std::strtoull(s.c_str(), &end, 10);
    if (*end || i >= n_) tb::fail("claimed an unknown id '%s'", s.c_str());
    if (k_[i]++) tb::fail("id %llu claimed twice", i);
  }

 private:
  size_t n_;
  std::vector<uint8_t> k_;
};

struct Totals {
  size_t claimed = 0, removed = 0, round_trips = 0, claim_calls = 0,
         settle_calls = 0, commands = 0;
};

// Checks after a ceiling drain: all gone, one tombstone each, no attempts
// written (first deliveries write none).
void check_drained(tb::Redis &r, int shards, size_t n, const Totals &t,
                   bool tombstones, const char *what) {
  long long left = 0, tombs = 0, attempts = 0;
  for (int s = 0; s < shards; s++) {
    std::vector<std::string> k = tb::shard_keys(kTopic, s);
    left += r.integer("ZCARD %s", k[TM_KEY_Z].c_str()) +
            r.integer("HLEN %s", k[TM_KEY_P].c_str());
    tombs += count_tombs(r, k[TM_KEY_D]);
    attempts += r.integer("HLEN %s", k[TM_KEY_A].c_str());
  }
  if (t.claimed != n || t.removed != n || left != 0)
    tb::fail("%s: claimed %zu, removed %zu of %zu, %lld members or payloads "
             "left", what, t.claimed, t.removed, n, left);
  if (tombs != (tombstones ? (long long)n : 0) || attempts != 0)
    tb::fail("%s: %lld tombstones for %zu timers (tombstones %s), %lld "
             "attempt counts written", what, tombs, n, tombstones ? "on" : "off",
             attempts);
}

// ------------------------------------------------------ ceiling: scripts

struct Commit {
  std::string token, id, tomb;  // the claim's lease string; "" if no dedup
};

struct ScriptShard {
  std::vector<std::string> keys;  // tb::shard_keys: keys.h TM_KEY_* order
  std::vector<Commit> commits;    // of the previous round trip's claims
  bool done = false;
};

enum class Call { settle, claim };

struct Sent {
  Call kind;
  int shard;
  size_t count;  // settle: steps; claim: timers asked for
};

// One SETTLE call per TM_COMMIT_MAX commits of shard s (the poller sends
// at most one per turn; a ceiling round trip never has more than `batch`
// <= TM_COMMIT_MAX of them).
void append_settle(tb::Redis &r, const std::string &sha, ScriptShard &sh,
                   int s, std::vector<Sent> &sent, Totals &t) {
  const Protocol &pr = protocol();
  for (size_t from = 0; from < sh.commits.size(); from += TM_COMMIT_MAX) {
    size_t to = std::min(sh.commits.size(), from + (size_t)TM_COMMIT_MAX);
    tb::Args a;
    TombSet ts = tomb_set(sh.keys[TM_KEY_D]);
    static const std::string nkeys = std::to_string(TM_SETTLE_KEYS);
    a.add("EVALSHA").add(sha).add(nkeys);
    for (int k = 0; k < TM_CORE_KEYS; k++) a.add(sh.keys[k]);
    a.add(ts.key).add(sh.keys[TM_KEY_O]);
    a.add(pr.lease_ms).add(ts.expire_at_ms).add(pr.dead_max);
    a.add(pr.dead_ttl_ms).add("", 0).add("", 0);  // shared: no owner
    for (size_t i = from; i < to; i++) {
      const Commit &c = sh.commits[i];
      a.add("c").add(c.token).add(c.id).add(c.tomb).add("", 0);
    }
    a.append(r);
    sent.push_back({Call::settle, s, to - from});
    t.settle_calls++;
  }
  sh.commits.clear();
}

void append_claim(tb::Redis &r, const std::string &sha, const ScriptShard &sh,
                  int s, const std::string &count, size_t batch,
                  std::vector<Sent> &sent, Totals &t) {
  const Protocol &pr = protocol();
  static const std::string nkeys = std::to_string(TM_CLAIM_KEYS);
  tb::Args a;
  a.add("EVALSHA").add(sha).add(nkeys);
  for (int k = 0; k < TM_CORE_KEYS; k++) a.add(sh.keys[k]);
  a.add(sh.keys[TM_KEY_O]);
  a.add(pr.lease_ms).add(count).add(pr.claim_flags).add(pr.max_attempts);
  a.add(pr.dead_max).add(pr.dead_ttl_ms).add("", 0).add("", 0);
  a.append(r);
  sent.push_back({Call::claim, s, batch});
  t.claim_calls++;
}

bool is_str(const redisReply *r) { return r->type == REDIS_REPLY_STRING; }

// A claim reply (scripts.h): {now, lease, next, healed, buried, items}.
// Anything that does not fit the protocol fails the run rather than
// measuring wrong: lease = now + lease_ms, nothing healed or dead-lettered,
// at most `asked` items,
// each a first delivery (attempt 1) of a timer that was due.
void take_claim(ScriptShard &sh, const redisReply *rep, size_t asked,
                Seen &seen, Totals &t) {
  const Protocol &pr = protocol();
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != TM_CLAIM_REPLY_LEN)
    tb::fail("claim: reply of type %d, %zu elements (scripts.h: %d)",
             rep->type, rep->elements, (int)TM_CLAIM_REPLY_LEN);
  redisReply *const *e = rep->element;
  const redisReply *items = e[TM_CLAIM_ITEMS];
  if (!is_str(e[TM_CLAIM_NOW]) || !is_str(e[TM_CLAIM_LEASE]) ||
      !is_str(e[TM_CLAIM_NEXT]) || e[TM_CLAIM_HEALED]->type != REDIS_REPLY_INTEGER ||
      e[TM_CLAIM_BURIED]->type != REDIS_REPLY_INTEGER ||
      items->type != REDIS_REPLY_ARRAY)
    tb::fail("claim: reply fields of unexpected types (scripts.h changed?)");
  double now = std::strtod(e[TM_CLAIM_NOW]->str, nullptr);
  double lease = std::strtod(e[TM_CLAIM_LEASE]->str, nullptr);
  size_t got = items->elements / TM_CLAIM_STRIDE;
  if (std::abs(lease - now - pr.lease_s) > 1e-5 || e[TM_CLAIM_HEALED]->integer ||
      e[TM_CLAIM_BURIED]->integer || items->elements % TM_CLAIM_STRIDE ||
      got > asked)
    tb::fail("claim: now %s, lease %s, healed %lld, buried %lld, %zu item "
             "fields for %zu timers asked", e[TM_CLAIM_NOW]->str,
             e[TM_CLAIM_LEASE]->str, e[TM_CLAIM_HEALED]->integer,
             e[TM_CLAIM_BURIED]->integer, items->elements, asked);
  for (size_t k = 0; k < items->elements; k += TM_CLAIM_STRIDE) {
    redisReply *const *f = &items->element[k];
    if (!is_str(f[0]) || !is_str(f[1]) || f[2]->type != REDIS_REPLY_INTEGER ||
        f[2]->integer != 1 || !is_str(f[3]) ||
        std::strtod(f[3]->str, nullptr) > now)
      tb::fail("claim: item %zu is not (id, envelope, attempt 1, score "
               "before <= now)", k / TM_CLAIM_STRIDE);
    seen.claim(f[0]->str, f[0]->len);
    sh.commits.push_back(
        {e[TM_CLAIM_LEASE]->str, std::string(f[0]->str, f[0]->len),
         pr.tombstones ? tomb_token(f[0]->str, f[0]->len, f[1]->str, f[1]->len)
                       : ""});
  }
  t.claimed += got;
  const redisReply *next = e[TM_CLAIM_NEXT];
  sh.done = next->len == 0 || std::strtod(next->str, nullptr) > now;
}

// A settle reply: one 1 per commit step (0: fenced off, which no one else
// could have caused here).
void take_settle(const redisReply *rep, size_t steps, Totals &t) {
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != steps)
    tb::fail("settle: reply of type %d, %zu elements for %zu steps",
             rep->type, rep->elements, steps);
  for (size_t k = 0; k < steps; k++)
    if (rep->element[k]->type != REDIS_REPLY_INTEGER ||
        rep->element[k]->integer != 1)
      tb::fail("settle: step %zu fenced off or malformed", k);
  t.removed += steps;
}

Totals scripts_drain(tb::Redis &r, int shards, int batch, size_t n) {
  std::string claim = r.str("SCRIPT LOAD %s", tm__script_source[TM_SCRIPT_CLAIM]);
  std::string settle =
      r.str("SCRIPT LOAD %s", tm__script_source[TM_SCRIPT_SETTLE]);
  std::vector<ScriptShard> sh(shards);
  for (int s = 0; s < shards; s++) sh[s].keys = tb::shard_keys(kTopic, s);
  Seen seen(n);
  Totals t;
  std::string count = std::to_string(batch);
  std::vector<Sent> sent;
  for (;;) {
    sent.clear();
    for (int s = 0; s < shards; s++)
      if (!sh[s].commits.empty()) append_settle(r, settle, sh[s], s, sent, t);
    for (int s = 0; s < shards; s++)
      if (!sh[s].done)
        append_claim(r, claim, sh[s], s, count, (size_t)batch, sent, t);
    if (sent.empty()) break;
    t.round_trips++;
    t.commands += sent.size();
    for (const Sent &c : sent) {
      redisReply *rep = r.reply();
      tb::check_reply(rep, c.kind == Call::claim ? "claim" : "settle");
      try {
        if (c.kind == Call::claim)
          take_claim(sh[c.shard], rep, c.count, seen, t);
        else
          take_settle(rep, c.count, t);
      } catch (...) {
        freeReplyObject(rep);
        throw;
      }
      freeReplyObject(rep);
    }
  }
  return t;
}

// -------------------------------------------------- ceiling: plain Redis
//
// The least Redis must do for the same result without our scripts, and
// still one round trip per claim batch:
//   claim  = ZRANGE z -inf now BYSCORE LIMIT 0 batch   (find due members)
//            ZADD z XX lease id...                     (lease them: out of
//                                                       every later range)
//            HMGET p id...                             (their envelopes)
//   commit = ZREM z id...  HDEL p id...                (remove timer)
//            and, tombstones on: SADD d:B token...,
//            PEXPIREAT d:B end-of-bucket-B+1           (the dedup record)
// ZADD XX needs the ids the range returned, so the three steps of a batch
// are staggered over consecutive round trips of one pipeline: round trip k
// of a shard sends the commits of batch k-2, the lease and HMGET of batch
// k-1 and the range of batch k. Commands run in order, so the range of
// batch k already skips batch k-1 (leased). Same round trips as the
// scripts, the same members moved, payloads read, members, payloads and
// tombstones written; nothing is written to the attempts hash (the scripts
// write none for first deliveries either).
//
// What the scripts add, and this leaves out, is their cost: the Lua
// interpreter and argument copying, key type checks, TIME, a claim's
// atomic find-and-lease (here another client could lease the same members
// between ZRANGE and ZADD: no mutual exclusion), the attempt check, the
// next-due ZRANGE, and settle's fencing (ZMSCORE: remove only while the
// lease is still ours). So this is not a usable protocol: it bounds the
// rate from above (the least work per fire), for comparison only.

enum class Op { zrem, hdel, tomb, expire, lease, hmget, range };

struct PlainSent {
  Op op;
  int shard;
  size_t count;  // ids in the command
};

struct PlainShard {
  std::vector<std::string> keys;     // tb::shard_keys (TM_KEY_*)
  std::vector<std::string> found;    // ranged last round: lease them now
  std::vector<std::string> leasing;  // leased this round, HMGET pending
  std::vector<std::pair<std::string, std::string>> commits;  // (id, tomb)
  bool range_done = false;
  bool idle() const {
    return range_done && found.empty() && commits.empty();
  }
};

struct Clock {
  char now[32], lease[32];
};

void append_commits(tb::Redis &r, PlainShard &sh, int s, bool tombs,
                    std::vector<PlainSent> &sent) {
  size_t n = sh.commits.size();
  tb::Args a;
  a.add("ZREM").add(sh.keys[TM_KEY_Z]);
  for (auto &x : sh.commits) a.add(x.first);
  a.append(r);
  a.add("HDEL").add(sh.keys[TM_KEY_P]);
  for (auto &x : sh.commits) a.add(x.first);
  a.append(r);
  sent.push_back({Op::zrem, s, n});
  sent.push_back({Op::hdel, s, n});
  if (!tombs) return;
  TombSet ts = tomb_set(sh.keys[TM_KEY_D]);
  a.add("SADD").add(ts.key);
  for (auto &x : sh.commits) a.add(x.second);
  a.append(r);
  a.add("PEXPIREAT").add(ts.key).add(ts.expire_at_ms);
  a.append(r);
  sent.push_back({Op::tomb, s, n});
  sent.push_back({Op::expire, s, 0});
}

void append_claim_steps(tb::Redis &r, PlainShard &sh, int s, const Clock &c,
                        const std::string &count, std::vector<PlainSent> &sent) {
  if (!sh.found.empty()) {
    tb::Args a;
    a.add("ZADD").add(sh.keys[TM_KEY_Z]).add("XX");
    for (auto &id : sh.found) a.add(c.lease).add(id);
    a.append(r);
    a.add("HMGET").add(sh.keys[TM_KEY_P]);
    for (auto &id : sh.found) a.add(id);
    a.append(r);
    sent.push_back({Op::lease, s, sh.found.size()});
    sent.push_back({Op::hmget, s, sh.found.size()});
    sh.leasing = std::move(sh.found);
    sh.found.clear();
  }
  if (!sh.range_done) {
    tb::Args a;
    a.add("ZRANGE").add(sh.keys[TM_KEY_Z]).add("-inf").add(c.now);
    a.add("BYSCORE").add("LIMIT").add("0").add(count);
    a.append(r);
    sent.push_back({Op::range, s, 0});
  }
}

void take_plain(PlainShard &sh, const PlainSent &c, const redisReply *rep,
                bool tombs, Seen &seen, Totals &t) {
  bool ok = true;
  switch (c.op) {
    case Op::zrem:
      ok = rep->type == REDIS_REPLY_INTEGER && (size_t)rep->integer == c.count;
      t.removed += c.count;
      break;
    case Op::hdel:
    case Op::tomb:
      ok = rep->type == REDIS_REPLY_INTEGER && (size_t)rep->integer == c.count;
      break;
    case Op::expire:
      ok = rep->type == REDIS_REPLY_INTEGER;
      break;
    case Op::lease:  // XX: nothing added
      ok = rep->type == REDIS_REPLY_INTEGER && rep->integer == 0;
      break;
    case Op::hmget:
      ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == c.count;
      for (size_t k = 0; ok && k < c.count; k++) {
        const redisReply *b = rep->element[k];
        const std::string &id = sh.leasing[k];
        ok = is_str(b);
        if (!ok) break;
        seen.claim(id.data(), id.size());
        sh.commits.emplace_back(
            id, tombs ? tomb_token(id.data(), id.size(), b->str, b->len) : "");
      }
      t.claimed += c.count;
      break;
    case Op::range:
      ok = rep->type == REDIS_REPLY_ARRAY;
      for (size_t k = 0; ok && k < rep->elements; k++) {
        ok = is_str(rep->element[k]);
        if (ok) sh.found.emplace_back(rep->element[k]->str, rep->element[k]->len);
      }
      sh.range_done = ok && rep->elements == 0;
      break;
  }
  if (!ok)
    tb::fail("plain loop: unexpected reply (type %d) to step %d of %zu ids",
             rep->type, (int)c.op, c.count);
}

Totals plain_drain(tb::Redis &r, int shards, int batch, size_t n, bool tombs) {
  const Protocol &pr = protocol();
  std::vector<PlainShard> sh(shards);
  for (int s = 0; s < shards; s++) sh[s].keys = tb::shard_keys(kTopic, s);
  Seen seen(n);
  Totals t;
  std::string count = std::to_string(batch);
  std::vector<PlainSent> sent;
  for (;;) {
    double now = tb::wall();
    Clock c;
    std::snprintf(c.now, sizeof c.now, "%.6f", now);
    std::snprintf(c.lease, sizeof c.lease, "%.6f", now + pr.lease_s);
    sent.clear();
    for (int s = 0; s < shards; s++) {
      if (!sh[s].commits.empty()) {
        append_commits(r, sh[s], s, tombs, sent);
        sh[s].commits.clear();
      }
    }
    for (int s = 0; s < shards; s++) {
      append_claim_steps(r, sh[s], s, c, count, sent);
      t.claim_calls += !sh[s].range_done;
    }
    if (sent.empty()) break;  // every shard idle()
    t.round_trips++;
    t.commands += sent.size();
    for (const PlainSent &x : sent) {
      redisReply *rep = r.reply();
      tb::check_reply(rep, "plain loop");
      try {
        take_plain(sh[x.shard], x, rep, tombs, seen, t);
      } catch (...) {
        freeReplyObject(rep);
        throw;
      }
      freeReplyObject(rep);
    }
  }
  return t;
}

// ---------------------------------------------------- ceiling experiments

struct CeilingRun {
  size_t n = 0;
  double setup = 0, work = 0, redis_cpu = 0, load = 0;
  Totals t;
  double rate() const { return (double)n / work; }
};

enum class Bare { scripts, plain_tombs, plain };

// One ceiling experiment: load n due timers, drain them with a bare loop.
CeilingRun ceiling_once(Bare how, int shards, int batch) {
  CeilingRun c;
  c.n = fire_n();
  double t0 = tb::mono();
  tb::flush();
  c.load = tb::load(kTopic, shards, c.n, tb::wall() - 1, kPayload);
  tb::Redis r, cpu;
  c.setup = tb::mono() - t0;
  double c0 = cpu.cpu_s(), w0 = tb::mono();
  bool tombs = how == Bare::plain ? false : protocol().tombstones;
  c.t = how == Bare::scripts ? scripts_drain(r, shards, batch, c.n)
                             : plain_drain(r, shards, batch, c.n, tombs);
  c.work = tb::mono() - w0;
  c.redis_cpu = cpu.cpu_s() - c0;
  check_drained(r, shards, c.n, c.t, tombs,
                how == Bare::scripts ? "script loop" : "plain loop");
  return c;
}

void ceiling_counters(benchmark::State &state, const CeilingRun &c) {
  auto &k = state.counters;
  k["fires_per_s"] = c.rate();
  k["redis_cpu_util"] = c.redis_cpu / c.work;
  k["redis_us_per_fire"] = c.redis_cpu / (double)c.n * 1e6;
  k["round_trips"] = (double)c.t.round_trips;
  k["claim_calls"] = (double)c.t.claim_calls;
  k["commands"] = (double)c.t.commands;
  k["timers"] = (double)c.n;
  k["setup_s"] = c.setup;
  k["teardown_s"] = 0;
}

void BM_Ceiling(benchmark::State &state) {
  int shards = (int)state.range(0), batch = (int)state.range(1);
  tb::run(state, [&] {
    CeilingRun c = ceiling_once(Bare::scripts, shards, batch);
    state.SetIterationTime(c.work);
    tb::record(ceiling_key(shards, batch), c.rate());
    ceiling_counters(state, c);
    state.counters["settle_calls"] = (double)c.t.settle_calls;
  });
}

void BM_CeilingPlain(benchmark::State &state) {
  int shards = (int)state.range(0), batch = (int)state.range(1);
  bool tombs = state.range(2) != 0;
  tb::run(state, [&] {
    CeilingRun c = ceiling_once(tombs ? Bare::plain_tombs : Bare::plain,
                                shards, batch);
    state.SetIterationTime(c.work);
    double scripts = tb::median_of(ceiling_key(shards, batch));
    ceiling_counters(state, c);
    state.counters["scripts_fires_per_s"] = scripts;
    state.counters["scripts_ratio"] = scripts > 0 ? scripts / c.rate() : 0;
  });
}

// ------------------------------------------------------------ end to end

struct EngineArgs {
  int shards, pollers, workers, batch, instances, handler_ms;
  bool owned, forked;  // see forked_once()
  bool at_most_once = false;  // BM_EngineAtMostOnce: claims remove, no settle
  // What the handlers allow: every worker sleeping handler_ms per timer.
  double ideal_rate() const {
    return handler_ms ? (double)workers * instances * 1e3 / handler_ms : 0;
  }
};

// No-op rows fire fire_n() timers; sleeping rows about kHandlerRowS of
// work at the ideal rate, at most fire_n().
size_t engine_n(const EngineArgs &a) {
  if (a.handler_ms == 0) return fire_n();
  size_t n = (size_t)(kHandlerRowS * a.ideal_rate());
  return tb::scaled(std::min(n, kFireN), 200);
}

struct FireCtx {
  size_t n = 0;
  int handler_ms = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> counts;
  std::atomic<size_t> fired{0}, foreign{0};
  std::atomic<int64_t> busy_ns{0};  // time spent in sleeping handlers
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  double t_last = 0;
};

timers_outcome on_fire(const timers_message *msg, void *ud) {
  FireCtx *c = static_cast<FireCtx *>(ud);
  if (c->handler_ms) {  // an I/O-bound handler: the worker waits
    double t0 = tb::mono();
    std::this_thread::sleep_for(std::chrono::milliseconds(c->handler_ms));
    c->busy_ns.fetch_add((int64_t)((tb::mono() - t0) * 1e9),
                         std::memory_order_relaxed);
  }
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

// Adds every field of a struct of uint64_t counters.
template <typename T>
void add_counters(T &to, const T &from) {
  static_assert(sizeof(T) % sizeof(uint64_t) == 0, "uint64_t fields only");
  uint64_t a[sizeof(T) / sizeof(uint64_t)], b[sizeof a / sizeof *a];
  std::memcpy(a, &to, sizeof a);
  std::memcpy(b, &from, sizeof b);
  for (size_t k = 0; k < sizeof a / sizeof *a; k++) a[k] += b[k];
  std::memcpy(&to, a, sizeof a);
}

Summed sum_stats(const std::vector<timers_engine *> &es) {
  Summed s;
  for (timers_engine *e : es) {
    timers_stats *st = nullptr;
    tb::check(timers_stats_get(e, &st), "stats");
    add_counters(s.total, st->total);
    add_counters(s.cont, st->contention);
    s.inflight += st->inflight;
    timers_stats_free(st);
  }
  return s;
}

// Duplicates and losses, over every id.
void check_counts(const std::atomic<uint32_t> *counts, size_t n,
                  size_t foreign) {
  size_t lost = 0, dup = 0, first_bad = n;
  for (size_t i = 0; i < n; i++) {
    uint32_t k = counts[i].load(std::memory_order_relaxed);
    if (k != 1 && first_bad == n) first_bad = i;
    lost += k == 0;
    dup += k > 1;
  }
  if (lost || dup || foreign)
    tb::fail("%zu lost, %zu fired more than once, %zu unknown ids (first bad "
             "id %zu)", lost, dup, foreign, first_bad);
}

std::vector<timers_engine *> make_engines(const EngineArgs &a, FireCtx &ctx) {
  std::vector<timers_engine *> es;
  for (int k = 0; k < a.instances; k++) {
    timers_config cfg = tb::config(a.shards);
    cfg.pollers = a.pollers;
    cfg.workers = a.workers;
    cfg.claim_batch = a.batch;
    timers_engine *e = nullptr;
    int rc = timers_engine_create(&cfg, &e);
    timers_subscribe_options o{};
    o.at_most_once = a.at_most_once;
    if (rc == TIMERS_OK) rc = timers_subscribe(e, kTopic, on_fire, &ctx, &o);
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
  c["extended"] = (double)s.total.extended;
  c["released"] = (double)s.total.released;
  c["lease_lost"] = (double)s.total.lease_lost;
  c["overran"] = (double)s.total.overran;
  c["lock_waits"] = (double)s.cont.lock_waits;
  c["lock_wait_ns"] = (double)s.cont.lock_wait_ns;
  c["poller_sleeps"] = (double)s.cont.poller_sleeps;
  c["poller_kicks"] = (double)s.cont.poller_kicks;
  c["worker_sleeps"] = (double)s.cont.worker_sleeps;
  c["worker_wakeups"] = (double)s.cont.worker_wakeups;
  c["cas_retries"] = (double)s.cont.cas_retries;
}

struct EngineRun {
  double setup = 0, work = 0, teardown = 0, redis_cpu = 0;
  Summed s;
};

// Loads ctx.n due timers, runs the engines until the last handler call,
// stops them and checks that every timer fired once and left Redis.
EngineRun engine_once(const EngineArgs &a, FireCtx &ctx) {
  EngineRun run;
  double t0 = tb::mono();
  tb::flush();
  tb::load(kTopic, a.shards, ctx.n, tb::wall() - 1, kPayload);
  std::vector<timers_engine *> es = make_engines(a, ctx);
  tb::Redis cpu;
  run.setup = tb::mono() - t0;

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
  run.work = (done ? ctx.t_last : tb::mono()) - w0;
  run.redis_cpu = cpu.cpu_s() - c0;  // includes the last commits
  std::string start_err = rc == TIMERS_OK ? "" : timers_last_error();

  double d0 = tb::mono();
  for (timers_engine *e : es) timers_engine_stop(e);
  run.s = sum_stats(es);
  for (timers_engine *e : es) timers_engine_destroy(e);
  run.teardown = tb::mono() - d0;
  const Summed &s = run.s;
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
  check_counts(ctx.counts.get(), ctx.n, ctx.foreign.load());
  tb::Redis r;
  long long left = tb::pending(r, kTopic, a.shards);
  if (left != 0)
    tb::fail("%lld timers still in Redis after every handler ran and the "
             "engines stopped (commits lost)", left);
  return run;
}

// ------------------------------------------- instances in their own processes
//
// forked rows: each instance is a child process (tb::fork_process, forked
// before any engine of this process exists) with its own engine, member id
// and threads, all subscribed to kTopic, shared or owned. The children
// count fires in shared memory and snapshot their own timers_stats; the
// parent only coordinates (phases in shared memory), loads the timers and
// checks the result. Timeline of one run:
//   1. the children create and subscribe their engines, then all start at
//      one signal (settle_s starts);
//   2. settle: until every shard is OK in exactly one engine and STANDBY in
//      the others, and that split is the one owner.c's rendezvous hashing
//      gives the live members (members set and each shard's ownership hash
//      read from Redis; tb::rendezvous_split). Shared rows: until every
//      engine has started (each shard OK everywhere). settle_s ends;
//   3. the children snapshot their counters; the parent loads n timers, all
//      due at one moment T after the load ends (load_s; load_margin_s = T -
//      load end must be > 0, else engines would fire while the loader runs:
//      the run starts over with a longer lead, see activation_lead());
//   4. the work: from T to the last handler call (in whichever child);
//   5. stop: every child stops its engine and reports counters; these are
//      the differences from the snapshot of step 3, summed over children.
// So fires/s of owned rows is measured after the split, never across it;
// ownership_moves counts epochs that changed during the work (a shard that
// changed owner), 0 in a settled run.

constexpr int kMaxInstances = 4;
constexpr int kMaxShards = 64;
constexpr double kSettleTimeoutS = 60;

// Parent -> children, in this order.
enum Phase : int { kCreate = 0, kGo = 1, kSnap = 2, kStop = 3 };
// A child's progress (kFailed: see Slot::error).
enum Status : int { kNew = 0, kReady = 1, kStarted = 2, kDone = 3, kFailed = -1 };

// One child's corner of the shared memory, written by that child only.
// Memory orders: status and snapped are stored with release after what
// they publish (before, after, error) and loaded with acquire by the
// parent; state is relaxed (a report, re-read every 2 ms until it fits).
struct Slot {
  std::atomic<int> status;
  std::atomic<int> snapped;            // `before` is written
  std::atomic<int> state[kMaxShards];  // timers_shard_state; -1: no report
  Summed before, after;                // published by snapped / kDone
  char error[256];
};

// phase: stored with release by the parent, loaded with acquire by the
// children; last_ns: stored with release by the handler whose fetch_add
// reached n, loaded with acquire by the parent before it checks counts.
struct Shared {
  std::atomic<int> phase;
  std::atomic<size_t> fired, foreign;
  std::atomic<int64_t> last_ns;  // CLOCK_MONOTONIC of the n-th handler call
  size_t n;
  std::atomic<uint32_t> *counts;  // n, right after this struct
  Slot slot[kMaxInstances];
};

// The shared memory of a run: Shared, then the n counts.
class SharedRun {
 public:
  explicit SharedRun(size_t n)
      : map_(sizeof(Shared) + n * sizeof(std::atomic<uint32_t>)) {
    sh_ = new (map_.data()) Shared();
    sh_->n = n;
    sh_->counts = reinterpret_cast<std::atomic<uint32_t> *>(sh_ + 1);
    for (size_t i = 0; i < n; i++) new (&sh_->counts[i]) std::atomic<uint32_t>(0);
    for (Slot &s : sh_->slot)
      for (auto &st : s.state) st.store(-1, std::memory_order_relaxed);
  }
  Shared *operator->() { return sh_; }
  Shared *get() { return sh_; }

 private:
  tb::SharedMap map_;
  Shared *sh_;
};

static_assert(std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<size_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "atomics in shared memory must be lock-free");

int64_t mono_ns() { return (int64_t)(tb::mono() * 1e9); }

void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

timers_outcome on_fire_shared(const timers_message *msg, void *ud) {
  Shared *sh = static_cast<Shared *>(ud);
  char *end;
  unsigned long long i = std::strtoull(msg->id, &end, 10);
  if (*end || i >= sh->n)
    sh->foreign.fetch_add(1, std::memory_order_relaxed);
  else
    sh->counts[i].fetch_add(1, std::memory_order_relaxed);
  // acq_rel: the one that reaches n sees every other handler's count.
  if (sh->fired.fetch_add(1, std::memory_order_acq_rel) + 1 == sh->n)
    sh->last_ns.store(mono_ns(), std::memory_order_release);
  return TIMERS_ACK;
}

// The state of shards 0..shards-1 as e reports it.
std::vector<int> engine_states(timers_engine *e, int shards) {
  std::vector<int> out(shards, -1);
  timers_stats *st = nullptr;
  tb::check(timers_stats_get(e, &st), "stats");
  for (size_t k = 0; k < st->shard_count; k++)
    if ((int)st->shards[k].shard < shards)
      out[st->shards[k].shard] = (int)st->shards[k].state;
  timers_stats_free(st);
  return out;
}

struct InstanceArgs {
  EngineArgs e;
  int owner_ttl_ms;  // 0: the default
};

timers_engine *make_instance(const InstanceArgs &a, timers_handler fn,
                             void *ud) {
  timers_config cfg = tb::config(a.e.shards);
  cfg.pollers = a.e.pollers;
  cfg.workers = a.e.workers;
  cfg.claim_batch = a.e.batch;
  if (a.owner_ttl_ms) cfg.owner_ttl_ms = a.owner_ttl_ms;
  timers_subscribe_options o{};
  o.owned = a.e.owned;
  timers_engine *e = nullptr;
  tb::check(timers_engine_create(&cfg, &e), "create");
  int rc = timers_subscribe(e, kTopic, fn, ud, &o);
  if (rc != TIMERS_OK) {
    std::string why = timers_last_error();
    timers_engine_destroy(e);
    tb::fail("subscribe: %s (%s)", timers_err_name(rc), why.c_str());
  }
  return e;
}

// A child: one engine. Reports its shard states every 2 ms while the phase
// is kGo (the parent waits for the split, or the takeover benchmark kills
// it), snapshots its counters at kSnap, stops at kStop.
void instance_main(Shared *sh, int k, const InstanceArgs &a) {
  Slot &me = sh->slot[k];
  std::unique_ptr<timers_engine, void (*)(timers_engine *)> e(
      make_instance(a, on_fire_shared, sh), timers_engine_destroy);
  me.status.store(kReady, std::memory_order_release);
  while (sh->phase.load(std::memory_order_acquire) == kCreate) sleep_ms(1);
  if (sh->phase.load(std::memory_order_acquire) == kStop) return;
  tb::check(timers_engine_start(e.get()), "start");
  me.status.store(kStarted, std::memory_order_release);
  for (int ph; (ph = sh->phase.load(std::memory_order_acquire)) != kStop;) {
    if (ph == kGo) {
      std::vector<int> st = engine_states(e.get(), a.e.shards);
      for (int s = 0; s < a.e.shards; s++)
        me.state[s].store(st[s], std::memory_order_relaxed);
    } else if (!me.snapped.load(std::memory_order_relaxed)) {
      me.before = sum_stats({e.get()});
      me.snapped.store(1, std::memory_order_release);
    }
    sleep_ms(2);
  }
  timers_engine_stop(e.get());
  me.after = sum_stats({e.get()});
  me.status.store(kDone, std::memory_order_release);
}

// The children of one run; any still running at destruction are killed.
class Children {
 public:
  Children(Shared *sh, int n, const InstanceArgs &a) : sh_(sh) {
    try {
      for (int k = 0; k < n; k++) {
        Slot &s = sh->slot[k];
        pids_.push_back(tb::fork_process(s.error, sizeof s.error, [=] {
          instance_main(sh, k, a);
        }));
      }
    } catch (...) {
      kill_all();
      throw;
    }
  }
  ~Children() { kill_all(); }
  Children(const Children &) = delete;
  Children &operator=(const Children &) = delete;

  // Waits until every child reached `status` (or failed: throws).
  void wait(int status, double timeout_s, const char *what) {
    for (double end = tb::mono() + timeout_s;; sleep_ms(1)) {
      bool all = true;
      for (size_t k = 0; k < pids_.size(); k++) {
        int st = sh_->slot[k].status.load(std::memory_order_acquire);
        if (st == kFailed || (st < status && exited(k)))
          tb::fail("instance %zu (pid %d): %s", k, (int)pids_[k],
                   sh_->slot[k].error[0] ? sh_->slot[k].error : "exited");
        all = all && st >= status;
      }
      if (all) return;
      if (tb::mono() > end)
        tb::fail("instances not %s after %.0f s", what, timeout_s);
    }
  }
  // Reaps every child (they were told to stop), failing on any error.
  void join(double timeout_s) {
    for (size_t k = 0; k < pids_.size(); k++) {
      int st = tb::reap(pids_[k], timeout_s);
      pids_[k] = -1;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        tb::fail("instance %zu: %s", k,
                 sh_->slot[k].error[0] ? sh_->slot[k].error
                                       : "killed or crashed while stopping");
    }
  }
  // Kills child k now (SIGKILL) and reaps it (a SIGKILLed process is gone
  // within a millisecond or so).
  void kill_one(size_t k) {
    int st;
    kill(pids_[k], SIGKILL);
    while (waitpid(pids_[k], &st, 0) < 0 && errno == EINTR) {
    }
    pids_[k] = -1;
  }

 private:
  void kill_all() {
    for (pid_t p : pids_)
      if (p > 0) kill(p, SIGKILL);
    for (pid_t &p : pids_)
      if (p > 0) tb::reap(p, 5), p = -1;
  }
  bool exited(size_t k) {
    int st;
    if (pids_[k] <= 0 || waitpid(pids_[k], &st, WNOHANG) != pids_[k]) return false;
    pids_[k] = -1;
    return true;
  }
  Shared *sh_;
  std::vector<pid_t> pids_;
};

// Where the ownership of a topic's shards stands. states[e][s]: engine e's
// timers_shard_state for shard s (-1: not reported yet).
struct Split {
  bool done = false;
  std::vector<int> owner;  // owned: the engine owning each shard, else -1
  std::vector<int> held;   // owned: shards per engine
  std::string why;         // when not done: what is missing
  int most() const {
    return held.empty() ? 0 : *std::max_element(held.begin(), held.end());
  }
  int fewest() const {
    return held.empty() ? 0 : *std::min_element(held.begin(), held.end());
  }
};

// Every shard OK in exactly one engine and STANDBY in the others (owned),
// or OK in all (shared); owned: the members set holds one live member per
// engine, and each shard's ownership hash names the member rendezvous
// hashing gives it, the same member for all shards an engine reports.
Split split_of(tb::Redis &r, const std::vector<std::vector<int>> &states,
               int shards, bool owned) {
  Split sp;
  int engines = (int)states.size();
  sp.owner.assign(shards, -1);
  sp.held.assign(owned ? engines : 0, 0);
  char buf[160];
  for (int s = 0; s < shards; s++) {
    int ok = 0, standby = 0;
    for (int e = 0; e < engines; e++) {
      ok += states[e][s] == TIMERS_SHARD_OK;
      standby += states[e][s] == TIMERS_SHARD_STANDBY;
      if (owned && states[e][s] == TIMERS_SHARD_OK) sp.owner[s] = e;
    }
    bool good = owned ? ok == 1 && standby == engines - 1 : ok == engines;
    if (!good) {
      std::snprintf(buf, sizeof buf, "shard %d: OK in %d, STANDBY in %d of %d "
                    "engines", s, ok, standby, engines);
      sp.why = buf;
      return sp;
    }
  }
  if (!owned) {
    sp.done = true;
    return sp;
  }
  std::string key = tb::members_key(kTopic);
  redisReply *m = r.cmd("ZRANGEBYSCORE %s %lld +inf", key.c_str(),
                        (long long)(tb::wall() * 1e3));
  std::vector<std::string> members;
  for (size_t i = 0; i < m->elements; i++)
    members.emplace_back(m->element[i]->str, m->element[i]->len);
  freeReplyObject(m);
  if ((int)members.size() != engines) {
    std::snprintf(buf, sizeof buf, "%zu live members for %d engines",
                  members.size(), engines);
    sp.why = buf;
    return sp;
  }
  std::vector<std::string> id_of(engines);
  std::vector<std::string> split =
      tb::rendezvous_split(members, kTopic, (uint32_t)shards);
  for (int s = 0; s < shards; s++) {
    const std::string &want = split[(size_t)s];
    std::string has = r.str("HGET %s owner",
                            tb::shard_key(kTopic, s, 'o').c_str());
    std::string &id = id_of[sp.owner[s]];
    if (has != want || (!id.empty() && id != has)) {
      std::snprintf(buf, sizeof buf, "shard %d: owned by %.12s in Redis, "
                    "rendezvous gives %.12s", s, has.c_str(), want.c_str());
      sp.why = buf;
      return sp;
    }
    id = has;
    sp.held[sp.owner[s]]++;
  }
  sp.done = true;
  return sp;
}

std::vector<std::vector<int>> child_states(Shared *sh, int children,
                                           int shards) {
  std::vector<std::vector<int>> out(children, std::vector<int>(shards));
  for (int k = 0; k < children; k++)
    for (int s = 0; s < shards; s++)
      out[k][s] = sh->slot[k].state[s].load(std::memory_order_relaxed);
  return out;
}

// Polls every 2 ms until the split is done; `extra` adds engines of this
// process (their states after the children's).
Split wait_split(Shared *sh, int children, int shards, bool owned,
                 const std::vector<timers_engine *> &extra = {}) {
  tb::Redis r;
  Split sp;
  for (double end = tb::mono() + kSettleTimeoutS;; sleep_ms(2)) {
    std::vector<std::vector<int>> st = child_states(sh, children, shards);
    for (timers_engine *e : extra) st.push_back(engine_states(e, shards));
    sp = split_of(r, st, shards, owned);
    if (sp.done) return sp;
    if (tb::mono() > end)
      tb::fail("ownership did not settle in %.0f s: %s", kSettleTimeoutS,
               sp.why.c_str());
  }
}

// Sum of the epochs in the shards' ownership hashes (each new owner adds 1).
long long epochs(tb::Redis &r, int shards) {
  long long n = 0;
  for (int s = 0; s < shards; s++)
    n += r.integer("HGET %s epoch", tb::shard_key(kTopic, s, 'o').c_str());
  return n;
}

Summed diff(const Summed &after, const Summed &before) {
  Summed d = after;
  uint64_t *a = reinterpret_cast<uint64_t *>(&d.total);
  const uint64_t *b = reinterpret_cast<const uint64_t *>(&before.total);
  for (size_t k = 0; k < sizeof d.total / sizeof(uint64_t); k++) a[k] -= b[k];
  uint64_t *c = reinterpret_cast<uint64_t *>(&d.cont);
  const uint64_t *e = reinterpret_cast<const uint64_t *>(&before.cont);
  for (size_t k = 0; k < sizeof d.cont / sizeof(uint64_t); k++) c[k] -= e[k];
  return d;
}

struct ForkedRun : EngineRun {
  double settle = 0, load = 0, margin = 0;
  int most = 0, fewest = 0;
  long long moves = 0;
};

// How long loading n timers may take: twice the paired ceiling's load of
// the same n (seconds before), plus 0.25 s. A load that overruns it throws
// LoadOverrun; the run is then repeated from the start with 1.5 times the
// load time that overran (the engines' own threads compete with the
// loader: see load_attempts).
double activation_lead(double paired_load_s) {
  return 0.25 + 2 * paired_load_s;
}

struct LoadOverrun : tb::failure {
  LoadOverrun(const std::string &what, double s)
      : tb::failure(what), load_s(s) {}
  double load_s;
};

// One forked run (see the section comment). Throws on any failure.
ForkedRun forked_once(const EngineArgs &a, size_t n, double lead_s) {
  ForkedRun run;
  double t0 = tb::mono();
  tb::flush();
  SharedRun sh(n);
  Children kids(sh.get(), a.instances, InstanceArgs{a, 0});
  kids.wait(kReady, 30, "created");
  double go = tb::mono();
  sh->phase.store(kGo, std::memory_order_release);
  kids.wait(kStarted, 30, "started");
  Split sp = wait_split(sh.get(), a.instances, a.shards, a.owned);
  run.settle = tb::mono() - go;
  run.most = sp.most(), run.fewest = sp.fewest();

  tb::Redis r, cpu;
  long long e0 = a.owned ? epochs(r, a.shards) : 0;
  sh->phase.store(kSnap, std::memory_order_release);
  for (int k = 0; k < a.instances; k++)
    while (!sh->slot[k].snapped.load(std::memory_order_acquire)) sleep_ms(1);
  double at_wall = tb::wall() + lead_s;
  double at = tb::mono() + (at_wall - tb::wall());  // T on the mono clock
  run.load = tb::load(kTopic, a.shards, n, at_wall, kPayload);
  run.margin = at - tb::mono();
  if (run.margin <= 0) {
    char why[160];
    std::snprintf(why, sizeof why, "loading %zu timers took %.2f s, past "
                  "their activation time (%.2f s lead)", n, run.load, lead_s);
    throw LoadOverrun(why, run.load);
  }
  double c0 = cpu.cpu_s();
  run.setup = at - t0;
  bool done = false;
  for (double end = at + kTimeoutS; !done && tb::mono() < end; sleep_ms(2))
    done = sh->last_ns.load(std::memory_order_acquire) != 0;
  double last = done ? sh->last_ns.load() / 1e9 : tb::mono();
  run.work = last - at;
  run.redis_cpu = cpu.cpu_s() - c0;  // includes the last commits
  run.moves = a.owned ? epochs(r, a.shards) - e0 : 0;

  double d0 = tb::mono();
  sh->phase.store(kStop, std::memory_order_release);
  kids.join(30);
  for (int k = 0; k < a.instances; k++) {
    Summed d = diff(sh->slot[k].after, sh->slot[k].before);
    add_counters(run.s.total, d.total);
    add_counters(run.s.cont, d.cont);
  }
  run.teardown = tb::mono() - d0;
  if (!done)
    tb::fail("engine hang: %zu of %zu fired %.0f s after their activation "
             "time (claimed %llu, claim_calls %llu, redis_errors %llu)",
             sh->fired.load(), n, kTimeoutS,
             (unsigned long long)run.s.total.claimed,
             (unsigned long long)run.s.total.claim_calls,
             (unsigned long long)run.s.total.redis_errors);
  check_counts(sh->counts, n, sh->foreign.load());
  long long left = tb::pending(r, kTopic, a.shards);
  if (left != 0)
    tb::fail("%lld timers still in Redis after every handler ran and the "
             "engines stopped (commits lost)", left);
  return run;
}

// ------------------------------------------------------------- takeover
//
// BM_Takeover/shards/owner_ttl_ms: a child process (forked first) and this
// process each run an engine subscribed to kTopic with `owned`, both with
// owner_ttl_ms. Once the shards are split between them (as for the forked
// BM_Engine rows: settle_s) and after a random delay in [0, owner_ttl_ms/3)
// (kill_delay_s: the kill falls anywhere in the child's renewal cycle, not
// just after its last acquisition), the child is SIGKILLed: no release, no
// leave. Right after the kill this process schedules a probe timer on one
// of the child's shards, due at the kill (activate_at = the kill's wall
// time). Measured from the kill:
//   takeover_s    until this process's engine reports every shard OK (it
//                 owns all of them), polled every millisecond;
//   probe_fire_s  until the probe's handler is called.
// The engine learns of the death when the child's membership entry has
// expired (at most owner_ttl_ms after the child's last heartbeat, which
// was up to owner_ttl_ms/3 before the kill) on its next heartbeat (every
// owner_ttl_ms/3), and can acquire once the shard's lease ran out too
// (retried every owner_ttl_ms/10): expect takeover_s between about 2/3
// and 4/3 of owner_ttl_ms (+1/10 when the lease outlives the membership).
// takeover_per_ttl = takeover_s / owner_ttl_ms. When rendezvous hashing
// gives the child no shard (1 in 2^shards), the attempt is repeated
// (attempts).

struct Probe {
  std::mutex m;
  std::condition_variable cv;
  int64_t fired_ns = 0;
  int count = 0, foreign = 0;
};

timers_outcome on_probe(const timers_message *msg, void *ud) {
  int64_t now = mono_ns();
  Probe *p = static_cast<Probe *>(ud);
  std::lock_guard<std::mutex> g(p->m);
  if (std::strncmp(msg->id, "probe", 5) == 0) {
    if (p->count++ == 0) p->fired_ns = now;
  } else {
    p->foreign++;
  }
  p->cv.notify_all();
  return TIMERS_ACK;
}

struct TakeoverRun {
  double settle = 0, delay = 0, takeover = 0, probe = 0, setup = 0,
         teardown = 0;
  int child_shards = 0, attempts = 0;
};

// An id whose shard engine 0 (the child) owns in sp.
std::string probe_id(const Split &sp, int shards) {
  for (int k = 0;; k++) {
    std::string id = "probe" + std::to_string(k);
    if (sp.owner[timers_shard_of(id.data(), id.size(), (uint32_t)shards)] == 0)
      return id;
  }
}

// From the kill until every shard is OK in e; fails past `limit` (mono).
double wait_all_owned(timers_engine *e, int shards, double killed,
                      double limit) {
  for (;; sleep_ms(1)) {
    std::vector<int> st = engine_states(e, shards);
    double now = tb::mono();
    if (std::all_of(st.begin(), st.end(),
                    [](int x) { return x == TIMERS_SHARD_OK; }))
      return now - killed;
    if (now > limit)
      tb::fail("this engine did not own every shard %.1f s after the kill",
               now - killed);
  }
}

// One attempt: false if the child got no shard (nothing to take over).
bool takeover_try(int shards, int ttl, std::mt19937 &rng, TakeoverRun &run) {
  double t0 = tb::mono();
  tb::flush();
  SharedRun sh(0);  // the child's fires all count as foreign: none expected
  InstanceArgs ia{EngineArgs{shards, 1, 2, 256, 1, 0, true, true}, ttl};
  Children kid(sh.get(), 1, ia);
  kid.wait(kReady, 30, "created");
  Probe probe;
  std::unique_ptr<timers_engine, void (*)(timers_engine *)> e(
      make_instance(ia, on_probe, &probe), timers_engine_destroy);
  double go = tb::mono();
  sh->phase.store(kGo, std::memory_order_release);
  tb::check(timers_engine_start(e.get()), "start");
  kid.wait(kStarted, 30, "started");
  Split sp = wait_split(sh.get(), 1, shards, true, {e.get()});
  run.settle = tb::mono() - go;
  run.child_shards = sp.held[0];
  if (run.child_shards == 0) return false;
  run.delay = std::uniform_real_distribution<double>(0, ttl / 3e3)(rng);
  sleep_ms(run.delay * 1e3);
  std::string id = probe_id(sp, shards);
  run.setup = tb::mono() - t0;

  double killed = tb::mono(), killed_wall = tb::wall();
  kid.kill_one(0);
  timers_timer t{};
  t.topic = kTopic, t.id = id.c_str();
  t.has_activate_at = true, t.activate_at = killed_wall;
  tb::check(timers_schedule(e.get(), &t, nullptr, 0), "schedule the probe");
  double limit = killed + 3.0 * ttl / 1e3 + 5;
  run.takeover = wait_all_owned(e.get(), shards, killed, limit);
  {
    std::unique_lock<std::mutex> g(probe.m);
    if (!probe.cv.wait_for(g, std::chrono::duration<double>(limit - tb::mono()),
                           [&] { return probe.count > 0; }))
      tb::fail("the probe timer on the dead child's shard did not fire "
               "within %.1f s of the kill", limit - killed);
    run.probe = probe.fired_ns / 1e9 - killed;
  }
  double d0 = tb::mono();
  timers_engine_stop(e.get());
  run.teardown = tb::mono() - d0;
  std::lock_guard<std::mutex> g(probe.m);
  if (probe.count != 1 || probe.foreign || sh->foreign.load())
    tb::fail("probe fired %d times; %d other timers fired here, %zu in the "
             "child (none were scheduled)", probe.count, probe.foreign,
             sh->foreign.load());
  return true;
}

void BM_Takeover(benchmark::State &state) {
  int shards = (int)state.range(0), ttl = (int)state.range(1);
  static std::mt19937 rng(std::random_device{}());
  tb::run(state, [&] {
    TakeoverRun run;
    for (run.attempts = 1; !takeover_try(shards, ttl, rng, run); run.attempts++)
      if (run.attempts == 4)
        tb::fail("the child got no shard in 4 attempts");
    state.SetIterationTime(run.takeover);
    auto &c = state.counters;
    c["takeover_s"] = run.takeover;
    c["probe_fire_s"] = run.probe;
    c["takeover_per_ttl"] = run.takeover * 1e3 / ttl;
    c["probe_per_ttl"] = run.probe * 1e3 / ttl;
    c["settle_s"] = run.settle;
    c["kill_delay_s"] = run.delay;
    c["child_shards"] = run.child_shards;
    c["attempts"] = run.attempts;
    c["setup_s"] = run.setup;
    c["teardown_s"] = run.teardown;
  });
}

// The counters every row has: rate, Redis CPU, ceilings (no-op rows),
// set-up and tear-down, the engines' counters.
void rate_counters(benchmark::State &state, const EngineArgs &a, size_t n,
                   const EngineRun &run, const CeilingRun &paired) {
  double rate = (double)n / run.work;
  auto &c = state.counters;
  c["fires_per_s"] = rate;
  c["redis_cpu_util"] = run.redis_cpu / run.work;
  c["redis_us_per_fire"] = run.redis_cpu / (double)n * 1e6;
  if (a.handler_ms == 0) {
    double ceiling = tb::median_of(ceiling_key(a.shards, a.batch));
    c["ceiling_fires_per_s"] = ceiling;
    c["ratio_to_ceiling"] = ceiling > 0 ? rate / ceiling : 0;
    c["paired_ceiling_fires_per_s"] = paired.rate();
    c["paired_ratio"] = rate / paired.rate();
  }
  c["timers"] = (double)n;
  c["setup_s"] = run.setup;
  c["teardown_s"] = run.teardown;
  set_engine_counters(state, run.s);
}

void in_process(benchmark::State &state, const EngineArgs &a,
                const CeilingRun &paired) {
  FireCtx ctx;
  ctx.n = engine_n(a);
  ctx.handler_ms = a.handler_ms;
  ctx.counts.reset(new std::atomic<uint32_t>[ctx.n]());
  EngineRun run = engine_once(a, ctx);
  state.SetIterationTime(run.work);
  rate_counters(state, a, ctx.n, run, paired);
  if (a.handler_ms) {
    // worker_busy: the share of the workers' time spent in handlers.
    auto &c = state.counters;
    c["ideal_fires_per_s"] = a.ideal_rate();
    c["ratio_to_ideal"] = (double)ctx.n / run.work / a.ideal_rate();
    c["worker_busy"] = (double)ctx.busy_ns.load() / 1e9 /
                       (run.work * a.workers * a.instances);
    c["handler_ms_mean"] = (double)ctx.busy_ns.load() / 1e6 / (double)ctx.n;
  }
}

void forked(benchmark::State &state, const EngineArgs &a,
            const CeilingRun &paired) {
  if (a.handler_ms || a.instances > kMaxInstances || a.shards > kMaxShards)
    tb::fail("forked rows: no-op handlers, at most %d instances and %d "
             "shards", kMaxInstances, kMaxShards);
  size_t n = fire_n();
  ForkedRun run;
  double lead = activation_lead(paired.load);
  for (int attempt = 1;; attempt++) {
    try {
      run = forked_once(a, n, lead);
      state.counters["load_attempts"] = attempt;
      break;
    } catch (const LoadOverrun &x) {
      if (attempt == 3) throw;
      std::fprintf(stderr, "bench: %s; again with a longer lead\n", x.what());
      lead = 0.25 + 1.5 * x.load_s;
    }
  }
  state.SetIterationTime(run.work);
  rate_counters(state, a, n, run, paired);
  auto &c = state.counters;
  c["settle_s"] = run.settle;
  c["load_s"] = run.load;
  c["load_margin_s"] = run.margin;
  if (a.owned) {
    c["shards_most"] = run.most;
    c["shards_fewest"] = run.fewest;
    c["ownership_moves"] = (double)run.moves;
  }
}

void BM_Engine(benchmark::State &state) {
  EngineArgs a{(int)state.range(0), (int)state.range(1), (int)state.range(2),
               (int)state.range(3), (int)state.range(4), (int)state.range(5),
               state.range(6) != 0, state.range(7) != 0};
  tb::run(state, [&] {
    if (a.owned && !a.forked)
      tb::fail("owned rows run forked (the split is awaited there only)");
    // Paired ceiling: the same bare loop right before this run, so the
    // ratio compares runs seconds apart, not a minute apart. Only where
    // Redis is the limit: sleeping handlers are bounded by the workers.
    CeilingRun paired;
    if (a.handler_ms == 0)
      paired = ceiling_once(Bare::scripts, a.shards, a.batch);
    if (a.forked)
      forked(state, a, paired);
    else
      in_process(state, a, paired);
  });
}

// The same drain on an at_most_once topic: a claim removes its timers, no
// lease and no settle step (the cheapest delivery); in this process.
void BM_EngineAtMostOnce(benchmark::State &state) {
  EngineArgs a{(int)state.range(0), 1, 2, 256, 1, 0, false, false};
  a.at_most_once = true;
  tb::run(state, [&] {
    CeilingRun paired = ceiling_once(Bare::scripts, a.shards, a.batch);
    in_process(state, a, paired);
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
const int kWorkers[] = {1, 2, 4, 8, 32, 64};

}  // namespace

void bench_register() {
  // Ceilings first: the engine benchmarks and the plain ceiling read their
  // medians.
  auto *c = common(benchmark::RegisterBenchmark("BM_Ceiling", BM_Ceiling));
  c->ArgNames({"shards", "batch"});
  for (int s : kShards) c->Args({s, 256});
  for (int b : kBatches) c->Args({8, b});

  auto *p = common(
      benchmark::RegisterBenchmark("BM_CeilingPlain", BM_CeilingPlain));
  p->ArgNames({"shards", "batch", "tombstones"});
  for (int s : {1, 8, 64}) p->Args({s, 256, 1});
  p->Args({8, 256, 0});

  auto *e = common(benchmark::RegisterBenchmark("BM_Engine", BM_Engine));
  e->ArgNames({"shards", "pollers", "workers", "batch", "instances",
               "handler_ms", "owned", "forked"});
  // In this process (owned 0, forked 0).
  auto row = [e](int shards, int pollers, int workers, int batch,
                 int instances, int handler_ms) {
    e->Args({shards, pollers, workers, batch, instances, handler_ms, 0, 0});
  };
  for (int s : kShards) row(s, 1, 2, 256, 1, 0);  // fires/s vs shards
  row(8, 2, 2, 256, 1, 0);                        // pollers
  row(8, 2, 4, 256, 1, 0);
  for (int b : kBatches) row(8, 1, 2, b, 1, 0);   // claim batch
  row(8, 1, 2, 256, 2, 0);                        // instances
  row(8, 1, 2, 256, 4, 0);
  // fires/s vs workers, no-op and 1 ms handlers (8 shards, 1 poller); the
  // no-op row of 2 workers is the shards row above.
  for (int w : kWorkers)
    if (w != 2) row(8, 1, w, 256, 1, 0);
  for (int w : kWorkers) row(8, 1, w, 256, 1, 1);
  // Shared against owned: one process per instance, timers loaded after
  // the engines settled (forked_once).
  for (int s : {8, 16})
    for (int owned : {0, 1})
      for (int i : {1, 2, 4}) e->Args({s, 1, 2, 256, i, 0, owned, 1});

  auto *m = common(benchmark::RegisterBenchmark("BM_EngineAtMostOnce",
                                                BM_EngineAtMostOnce));
  m->ArgNames({"shards"});
  for (int s : {1, 8}) m->Args({s});

  auto *t = common(benchmark::RegisterBenchmark("BM_Takeover", BM_Takeover));
  t->ArgNames({"shards", "owner_ttl_ms"});
  t->Args({8, 1000});
  t->Args({8, 5000});
}
