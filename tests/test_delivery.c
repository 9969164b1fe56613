/*
 * test_delivery.c - the delivery promise under the conditions users meet
 * first: every timer counted by id, each scenario one reported defect.
 *
 *  1 a schedule_batch mixing topics on a fresh Redis stores every timer on
 *    a shard the engines poll;
 *  2 Redis stalled (SIGSTOP) longer than the lease while timers come due:
 *    each fires once (leases are set by Redis's clock when the claim runs);
 *  3 a backlog with slow handlers (500 due, 100 ms each, 8 workers, lease
 *    3 s) fires each once, none past attempt 1; a handler running three
 *    leases long is not redelivered (heartbeats), and timers_extend_lease;
 *  4 stop() commits every finished ACK and hands unstarted timers back at
 *    once: after a restart each timer has fired exactly once overall; a
 *    claim answered after the drain timeout (Redis stalled) runs nothing;
 *    a worker never starts a queued timer past its hand-back time (the
 *    poller, stuck in a stalled turn, could not hand it back);
 *  5 re-sending a schedule of a timer that already fired does not fire it
 *    again (dedup window); a new time does;
 *  6 Redis out of memory: schedules fail cleanly, stored timers still fire;
 *  7 a wrong-type key: the shard backs off and says so in stats, a
 *    schedule touching it writes nothing;
 *  8 a batch failing on one shard reports per-timer status exactly;
 *  9 a non-numeric shard count in Redis is a clear error everywhere;
 * 10 members without payload and corrupt envelopes are counted;
 * 11 32 workers on 2 cores still drain bursts of no-op and 1 ms handlers.
 * Waits are bounded generously: nothing here measures speed.
 */
#include <pthread.h>
#include <signal.h>

#include <hiredis.h>

#include "test_util.h"

static redis_server rs;

static redisContext *raw(void) {
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", rs.port, tv);
  CHECK(c && !c->err);
  return c;
}

static void raw_cmd(const char *fmt, ...) {
  redisContext *c = raw();
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  CHECK(r != NULL);
  freeReplyObject(r);
  redisFree(c);
}

typedef struct depth_probe {
  timers_engine *e;
  const char *topic;
} depth_probe;

static bool topic_empty_pred(void *ctx) {
  depth_probe *p = ctx;
  timers_topic_depth *d = NULL;
  CHECK_OK(timers_topic_depth_get(p->e, p->topic, &d));
  bool empty = d->total.pending == 0;
  timers_topic_depth_free(d);
  return empty;
}

/* Waits (bounded) until the topic holds no timer at all. */
static bool wait_until_empty_topic(timers_engine *e, const char *topic,
                                   int timeout_ms) {
  depth_probe p = {e, topic};
  return wait_until(topic_empty_pred, &p, timeout_ms);
}

/* A handler that sleeps, records and acks: userdata is a behave. */
typedef struct behave {
  fired_log log;
  int sleep_ms;
  int extend_ms;       /* > 0: timers_extend_lease first */
  int extend_rc;       /* what it returned (last call) */
} behave;

static timers_outcome behave_handler(const timers_message *m, void *ud) {
  behave *b = ud;
  fired_log_record(&b->log, m);
  if (b->extend_ms > 0)
    __atomic_store_n(&b->extend_rc, timers_extend_lease(m, b->extend_ms),
                     __ATOMIC_RELEASE);
  if (b->sleep_ms) sleep_ms(b->sleep_ms);
  return TIMERS_ACK;
}

static void behave_free(behave *b) { fired_log_free(&b->log); }

static void behave_init(behave *b, int sleep) {
  memset(b, 0, sizeof *b);
  fired_log_init(&b->log);
  b->sleep_ms = sleep;
}

/* Every id of the log fired exactly once; n distinct. */
static void check_once(behave *b, size_t n, const char *what) {
  char id[TIMERS_ID_MAX + 1] = "";
  unsigned max = fired_log_max_count(&b->log, id, sizeof id);
  CHECK_MSG(fired_log_distinct(&b->log) == n, "%s: %zu distinct of %zu", what,
            fired_log_distinct(&b->log), n);
  CHECK_MSG(max == 1, "%s: '%s' delivered %u times", what, id, max);
}

/* Schedules n timers "<prefix><k>" of topic, all due at `at`, in one
 * batch; ids[n] holds the ids. */
static void schedule_all_at(timers_engine *e, const char *topic,
                            const char *prefix, char (*ids)[16], int n,
                            double at) {
  timers_timer *ts = xrealloc(NULL, sizeof *ts * (size_t)n);
  for (int k = 0; k < n; k++) {
    snprintf(ids[k], 16, "%s%d", prefix, k);
    ts[k] = timer_at(topic, ids[k], at);
  }
  CHECK_OK(timers_schedule_batch(e, ts, (size_t)n, NULL));
  free(ts);
}

static timers_engine *start_engine(timers_config *cfg, const char *topic,
                                   behave *b, const timers_subscribe_options *o) {
  timers_engine *e = test_engine(cfg);
  CHECK_OK(timers_subscribe(e, topic, behave_handler, b, o));
  CHECK_OK(timers_engine_start(e));
  return e;
}

/* ------------------------------------------------------------------- 1 */

static void test_batch_mixing_topics(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  behave b1, b2;
  behave_init(&b1, 0);
  behave_init(&b2, 0);
  timers_engine *prod = test_engine(&cfg);
  enum { N = 200 };
  timers_timer ts[N];
  char ids[N][16];
  double at = timers_now() + 0.5;
  for (int k = 0; k < N; k++) {
    snprintf(ids[k], sizeof ids[k], "m%d", k);
    ts[k] = timer_at(k % 3 ? "mix.k1" : "mix.k2", ids[k], at);
  }
  CHECK_OK(timers_schedule_batch(prod, ts, N, NULL));
  /* No member on a shard past the recorded count (8). */
  for (int s = 8; s < 64; s++)
    CHECK_EQ_INT(redis_server_int(&rs, "EXISTS timers:{mix.k1:%d}:z", s) +
                     redis_server_int(&rs, "EXISTS timers:{mix.k2:%d}:z", s),
                 0);
  timers_engine *e1 = start_engine(&cfg, "mix.k1", &b1, NULL);
  timers_engine *e2 = start_engine(&cfg, "mix.k2", &b2, NULL);
  CHECK(fired_wait_distinct(&b1.log, N - (N + 2) / 3, 30000));
  CHECK(fired_wait_distinct(&b2.log, (N + 2) / 3, 30000));
  sleep_ms(200);
  check_once(&b1, N - (N + 2) / 3, "mix.k1");
  check_once(&b2, (N + 2) / 3, "mix.k2");
  timers_engine_destroy(e1);
  timers_engine_destroy(e2);
  timers_engine_destroy(prod);
  behave_free(&b1);
  behave_free(&b2);
}

/* ------------------------------------------------------------------- 2 */

static void test_redis_stall_longer_than_lease(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.lease_ms = 1000;
  behave b;
  behave_init(&b, 0);
  timers_engine *e = start_engine(&cfg, "stall", &b, NULL);
  enum { N = 200 };
  timers_timer ts[N];
  char ids[N][16];
  double at = timers_now() + 0.4;
  for (int k = 0; k < N; k++) {
    snprintf(ids[k], sizeof ids[k], "s%d", k);
    ts[k] = timer_at("stall", ids[k], at + 0.001 * k);
  }
  CHECK_OK(timers_schedule_batch(e, ts, N, NULL));
  sleep_ms(200);
  CHECK(kill(rs.pid, SIGSTOP) == 0);
  sleep_ms(2500); /* the timers come due while Redis is stopped */
  CHECK(kill(rs.pid, SIGCONT) == 0);
  CHECK(fired_wait_distinct(&b.log, N, 30000));
  sleep_ms(2500); /* past two more leases: any re-claim would show */
  check_once(&b, N, "stall");
  timers_engine_destroy(e);
  behave_free(&b);
}

/* ------------------------------------------------------------------- 3 */

static void test_backlog_slow_handlers(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.workers = 8;
  behave b;
  behave_init(&b, 100);
  timers_subscribe_options o = {.lease_ms = 3000};
  timers_engine *e = start_engine(&cfg, "backlog", &b, &o);
  enum { N = 500 };
  char ids[N][16];
  schedule_all_at(e, "backlog", "b", ids, N, timers_now() + 0.2);
  CHECK_MSG(fired_wait_distinct(&b.log, N, 90000), "only %zu of %d fired",
            fired_log_distinct(&b.log), N);
  CHECK(wait_until_empty_topic(e, "backlog", 30000));
  check_once(&b, N, "backlog");
  fired_rec r;
  for (int k = 0; k < N; k++) {
    CHECK(fired_log_get(&b.log, ids[k], &r));
    CHECK_MSG(r.max_attempt == 1, "%s reached attempt %u", ids[k],
              r.max_attempt);
  }
  timers_engine_destroy(e);
  behave_free(&b);
}

static void test_long_handler_keeps_lease(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  behave b;
  behave_init(&b, 1600); /* > 3 leases */
  timers_subscribe_options o = {.lease_ms = 500};
  timers_engine *e = start_engine(&cfg, "long", &b, &o);
  timers_timer t = timer_in("long", "l1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(wait_not_pending(e, "long", "l1", 20000));
  sleep_ms(1000);
  CHECK_EQ_INT(fired_log_total(&b.log), 1);
  timers_counters c = test_counters(e);
  CHECK_MSG(c.extended >= 2, "extended = %" PRIu64, c.extended);
  CHECK_EQ_INT(c.stale_commits, 0);
  timers_engine_destroy(e);
  behave_free(&b);
}

static void test_extend_lease_past_max_handler(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  behave b;
  behave_init(&b, 1500);
  b.extend_ms = 4000; /* beyond max_handler_ms (500) */
  timers_subscribe_options o = {.lease_ms = 300, .max_handler_ms = 500};
  timers_engine *e = start_engine(&cfg, "extend", &b, &o);
  timers_timer t = timer_in("extend", "x1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(wait_not_pending(e, "extend", "x1", 20000));
  sleep_ms(800);
  CHECK_EQ_INT(fired_log_total(&b.log), 1);
  CHECK_EQ_INT(__atomic_load_n(&b.extend_rc, __ATOMIC_ACQUIRE), TIMERS_OK);
  timers_message fake = {0};
  CHECK_ERR(timers_extend_lease(&fake, 100), TIMERS_EINVAL);
  timers_engine_destroy(e);
  behave_free(&b);
}

/* ------------------------------------------------------------------- 4 */

static void test_stop_commits_and_hands_back(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.drain_timeout_ms = 5000;
  behave b;
  behave_init(&b, 200);
  timers_engine *e = start_engine(&cfg, "stop", &b, NULL);
  enum { N = 200 };
  char ids[N][16];
  schedule_all_at(e, "stop", "t", ids, N, timers_now() + 0.1);
  CHECK(fired_wait_distinct(&b.log, 5, 20000));
  sleep_ms(500);
  double t0 = mono_ms();
  CHECK_OK(timers_engine_stop(e));
  CHECK_MSG(mono_ms() - t0 < 4000, "stop took %.0f ms", mono_ms() - t0);
  size_t done = fired_log_distinct(&b.log);
  /* Every handler that ran was committed: exactly the others remain. */
  size_t left = 0;
  test_pending_has(e, "stop", false, 0, NULL, &left);
  CHECK_MSG(left == N - done, "%zu ran, %zu pending, of %d", done, left, N);
  /* Handed back: not leased, so another engine takes them at once. */
  timers_timer_info info;
  bool found = false;
  for (int k = 0; k < N && !found; k++)
    if (!fired_log_count(&b.log, ids[k])) {
      CHECK_OK(timers_inspect(e, "stop", ids[k], &found, &info));
      CHECK(found);
      CHECK_MSG(!info.leased && info.attempts == 0,
                "%s leased %d attempts %u", ids[k], info.leased,
                info.attempts);
      timers_timer_info_free(&info);
    }
  timers_engine_destroy(e);
  b.sleep_ms = 0;
  e = start_engine(&cfg, "stop", &b, NULL);
  CHECK(fired_wait_distinct(&b.log, N, 20000));
  sleep_ms(200);
  check_once(&b, N, "stop");
  timers_engine_destroy(e);
  behave_free(&b);
}

/* stop() while a claim waits on a stalled Redis: the reply arrives after
 * the drain timeout, so those timers are handed back unstarted (a handler
 * started then could not have its outcome committed: a duplicate). */
static void *resume_redis_later(void *arg) {
  (void)arg;
  sleep_ms(1500);
  kill(rs.pid, SIGCONT);
  return NULL;
}

static void test_stop_while_claim_stalled(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.drain_timeout_ms = 300;
  cfg.workers = 4;
  behave b;
  behave_init(&b, 0);
  timers_engine *e = start_engine(&cfg, "stopstall", &b, NULL);
  /* A first timer, so the engine knows its handlers are quick and claims
   * every due timer at once (an unknown handler time claims one). */
  timers_timer w = timer_in("stopstall", "warm-up", 0);
  CHECK_OK(timers_schedule(e, &w, NULL, 0));
  CHECK(fired_wait_distinct(&b.log, 1, 20000));
  enum { N = 200 };
  char ids[N][16];
  schedule_all_at(e, "stopstall", "q", ids, N, timers_now() + 0.5);
  sleep_ms(200);
  CHECK(kill(rs.pid, SIGSTOP) == 0);
  sleep_ms(600); /* due now; the engine's claim waits on Redis */
  pthread_t th;
  CHECK(pthread_create(&th, NULL, resume_redis_later, NULL) == 0);
  CHECK_OK(timers_engine_stop(e)); /* returns after Redis is back */
  pthread_join(th, NULL);
  CHECK_MSG(fired_log_distinct(&b.log) == 1,
            "%zu handlers ran after stop()'s drain timeout",
            fired_log_distinct(&b.log) - 1);
  timers_engine_destroy(e);
  e = start_engine(&cfg, "stopstall", &b, NULL);
  CHECK(fired_wait_distinct(&b.log, N + 1, 20000));
  sleep_ms(200);
  check_once(&b, N + 1, "stop while a claim is stalled");
  timers_engine_destroy(e);
  behave_free(&b);
}

/* The poller hands queued timers back at half the lease, but not while it
 * is stuck in a turn (Redis stalled): a worker that frees up then must not
 * start a queued timer past that time (its lease may be over; after the
 * stall another claim takes it). One worker: "hold" blocks it; ten more are
 * queued behind it; Redis stops; a later timer makes the poller block in a
 * claim; the worker frees up past the hand-back time, Redis resumes later.
 * No queued timer may start before Redis is back, and each fires once. */
static gate handback_gate;
static int handback_entered;
static fired_log handback_log;

static timers_outcome handback_handler(const timers_message *m, void *ud) {
  (void)ud;
  fired_log_record(&handback_log, m);
  if (strcmp(m->id, "hold") == 0) {
    flag_set(&handback_entered, 1);
    gate_wait(&handback_gate);
  }
  return TIMERS_ACK;
}

static void test_worker_respects_handback(void) {
  fired_log_init(&handback_log);
  gate_init(&handback_gate);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.workers = 1;
  cfg.command_timeout_ms = 10000; /* the poller stays blocked in its turn */
  timers_engine *e = test_engine(&cfg);
  /* One shard: one claim returns them in time order, "hold" first. */
  timers_subscribe_options o = {.lease_ms = 2000, .shards = 1};
  CHECK_OK(timers_subscribe(e, "handback", handback_handler, NULL, &o));
  CHECK_OK(timers_engine_start(e));
  /* Quick handlers measured first: then one claim takes all eleven. */
  timers_timer w = timer_in("handback", "warm-up", 0);
  CHECK_OK(timers_schedule(e, &w, NULL, 0));
  CHECK(fired_wait_distinct(&handback_log, 1, 20000));
  enum { N = 10 };
  char ids[N][16];
  double at = timers_now() + 0.3;
  timers_timer hold = timer_at("handback", "hold", at - 0.001);
  CHECK_OK(timers_schedule(e, &hold, NULL, 0));
  schedule_all_at(e, "handback", "late", ids, N, at);
  timers_timer poke = timer_at("handback", "poke", at + 0.4);
  CHECK_OK(timers_schedule(e, &poke, NULL, 0));
  CHECK(wait_until(flag_pred, &handback_entered, 20000));
  double stopped = timers_now();
  CHECK(kill(rs.pid, SIGSTOP) == 0);
  sleep_ms(1500); /* past the hand-back time (claim + 1 s) */
  gate_open(&handback_gate); /* the worker is free: queued timers wait */
  sleep_ms(1000);
  double resumed = timers_now();
  CHECK(kill(rs.pid, SIGCONT) == 0);
  CHECK(fired_wait_distinct(&handback_log, N + 3, 30000));
  sleep_ms(300);
  for (int k = 0; k < N; k++) {
    fired_rec r;
    CHECK(fired_log_get(&handback_log, ids[k], &r));
    CHECK_MSG(r.first_fire < stopped || r.first_fire >= resumed - 0.01,
              "%s started %.3f s before Redis was back: a queued timer "
              "ran past its hand-back time", ids[k], resumed - r.first_fire);
    CHECK_MSG(r.count == 1, "%s delivered %u times", ids[k], r.count);
  }
  timers_engine_destroy(e);
  gate_destroy(&handback_gate);
  fired_log_free(&handback_log);
}

/* ------------------------------------------------------------------- 5 */

static void test_resent_schedule_does_not_resurrect(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  behave b;
  behave_init(&b, 0);
  timers_engine *e = start_engine(&cfg, "dedup", &b, NULL);
  timers_timer t = timer_at("dedup", "d1", timers_now());
  t.payload = "v1";
  t.payload_len = 2;
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(wait_not_pending(e, "dedup", "d1", 20000));
  CHECK_OK(timers_schedule(e, &t, NULL, 0)); /* the same call again */
  sleep_ms(700);
  CHECK_EQ_INT(fired_log_total(&b.log), 1);
  CHECK(!test_is_pending(e, "dedup", "d1"));
  CHECK(test_counters(e).deduplicated >= 1);
  t.activate_at += 0.001; /* a new timer with the same id */
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(fired_wait_total(&b.log, 2, 20000));
  timers_engine_destroy(e);
  behave_free(&b);
}

/* ------------------------------------------------------------------- 6 */

static void test_out_of_memory(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  behave b;
  behave_init(&b, 0);
  timers_engine *prod = test_engine(&cfg);
  enum { N = 300 };
  timers_timer ts[N];
  char ids[N][16];
  static char payload[2000];
  memset(payload, 'p', sizeof payload);
  double at = timers_now() + 1.0;
  for (int k = 0; k < N; k++) {
    snprintf(ids[k], sizeof ids[k], "o%d", k);
    ts[k] = timer_at("oom", ids[k], at);
    ts[k].payload = payload;
    ts[k].payload_len = sizeof payload;
  }
  CHECK_OK(timers_schedule_batch(prod, ts, N, NULL));
  raw_cmd("CONFIG SET maxmemory-policy noeviction");
  raw_cmd("CONFIG SET maxmemory 1000000"); /* far below what is used */
  timers_timer more = timer_in("oom", "late", 0);
  CHECK_ERR(timers_schedule(prod, &more, NULL, 0), TIMERS_EREDIS);
  CHECK_MSG(strstr(timers_last_error(), "out of memory"), "%s",
            timers_last_error());
  timers_engine *e = start_engine(&cfg, "oom", &b, NULL);
  CHECK_MSG(fired_wait_distinct(&b.log, N, 30000), "%zu of %d fired under OOM",
            fired_log_distinct(&b.log), N);
  CHECK(wait_until_empty_topic(e, "oom", 20000));
  raw_cmd("CONFIG SET maxmemory 0");
  check_once(&b, N, "oom");
  timers_engine_destroy(e);
  timers_engine_destroy(prod);
  behave_free(&b);
}

/* ------------------------------------------------------------------- 7 */

static void test_wrong_type_key(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 1;
  behave b;
  behave_init(&b, 0);
  raw_cmd("SET timers:{wrong:0}:z oops");
  timers_engine *e = start_engine(&cfg, "wrong", &b, NULL);
  timers_timer t = timer_in("wrong", "w1", 0);
  CHECK_ERR(timers_schedule(e, &t, NULL, 0), TIMERS_EREDIS);
  CHECK_MSG(strstr(timers_last_error(), "WRONGTYPE"), "%s",
            timers_last_error());
  CHECK_EQ_INT(redis_server_int(&rs, "EXISTS timers:{wrong:0}:p"), 0);
  sleep_ms(2000);
  timers_stats *s;
  CHECK_OK(timers_stats_get(e, &s));
  CHECK_EQ_INT(s->shard_count, 1);
  CHECK_EQ_INT(s->shards[0].state, TIMERS_SHARD_ERROR);
  CHECK(s->shards[0].consecutive_errors >= 2);
  /* backing off: a handful of claims in 2 s, not thousands */
  CHECK_MSG(s->shards[0].counters.claim_calls < 40, "%" PRIu64 " claims",
            s->shards[0].counters.claim_calls);
  timers_stats_free(s);
  /* payload key of the wrong type: nothing written at all */
  raw_cmd("DEL timers:{wrong:0}:z");
  raw_cmd("SET timers:{wrong:0}:p oops");
  CHECK_ERR(timers_schedule(e, &t, NULL, 0), TIMERS_EREDIS);
  CHECK_EQ_INT(redis_server_int(&rs, "EXISTS timers:{wrong:0}:z"), 0);
  /* repaired: the shard recovers and fires */
  raw_cmd("DEL timers:{wrong:0}:p");
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(fired_wait_distinct(&b.log, 1, 20000));
  CHECK_OK(timers_stats_get(e, &s));
  CHECK_EQ_INT(s->shards[0].state, TIMERS_SHARD_OK);
  CHECK(s->shards[0].last_claim_at > 0);
  timers_stats_free(s);
  timers_engine_destroy(e);
  behave_free(&b);
}

/* ------------------------------------------------------------------- 8 */

static void test_partial_batch_status(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 4;
  timers_engine *e = test_engine(&cfg);
  enum { N = 64 };
  timers_timer ts[N];
  char ids[N][16];
  int status[N];
  for (int k = 0; k < N; k++) {
    snprintf(ids[k], sizeof ids[k], "p%d", k);
    ts[k] = timer_in("partial", ids[k], 3600);
  }
  /* record the count, then break shard 2 */
  CHECK_OK(timers_schedule_batch(e, ts, 1, NULL));
  raw_cmd("DEL timers:{partial:%u}:z timers:{partial:%u}:p",
          timers_shard_of(ids[0], strlen(ids[0]), 4),
          timers_shard_of(ids[0], strlen(ids[0]), 4));
  raw_cmd("SET timers:{partial:2}:p oops");
  int rc = timers_schedule_each(e, ts, N, NULL, status);
  CHECK_EQ_INT(rc, TIMERS_EREDIS);
  CHECK_MSG(strstr(timers_last_error(), "of 64 timers written"), "%s",
            timers_last_error());
  for (int k = 0; k < N; k++) {
    uint32_t s = timers_shard_of(ids[k], strlen(ids[k]), 4);
    CHECK_EQ_INT(status[k], s == 2 ? TIMERS_EREDIS : TIMERS_OK);
    CHECK_EQ_INT(test_is_pending(e, "partial", ids[k]), s != 2);
  }
  raw_cmd("DEL timers:{partial:2}:p");
  uint64_t n;
  CHECK_OK(timers_cancel_all(e, "partial", &n));
  timers_engine_destroy(e);
}

/* ------------------------------------------------------------------- 9 */

static void test_bad_meta(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  static const char *bad[] = {"abc", "8x", "0", "99999"};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    raw_cmd("HSET timers:{meta.bad}:meta shards %s", bad[k]);
    timers_engine *e = test_engine(&cfg);
    timers_timer t = timer_in("meta.bad", "m", 60);
    CHECK_ERR(timers_schedule(e, &t, NULL, 0), TIMERS_EREDIS);
    CHECK_MSG(strstr(timers_last_error(), "timers:{meta.bad}:meta") &&
                  strstr(timers_last_error(), bad[k]),
              "%s", timers_last_error());
    bool p;
    CHECK_ERR(timers_is_pending(e, "meta.bad", "m", &p), TIMERS_EREDIS);
    behave b;
    behave_init(&b, 0);
    CHECK_OK(timers_subscribe(e, "meta.bad", behave_handler, &b, NULL));
    CHECK_ERR(timers_engine_start(e), TIMERS_EREDIS);
    timers_engine_destroy(e);
    behave_free(&b);
  }
  raw_cmd("DEL timers:{meta.bad}:meta");
}

/* ------------------------------------------------------------------ 10 */

static void test_orphans_and_corrupt(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 1;
  behave b;
  behave_init(&b, 0);
  timers_engine *e = start_engine(&cfg, "odd", &b, NULL);
  double now = timers_now();
  /* payload first: a claim between the two writes must not see junk
   * without its payload (it would be healed away as an orphan) */
  raw_cmd("HSET timers:{odd:0}:p junk not-an-envelope");
  raw_cmd("ZADD timers:{odd:0}:z %f orphan %f junk", now - 1, now - 1);
  /* hint the engine: schedule something due now */
  timers_timer t = timer_in("odd", "ok", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(fired_wait_distinct(&b.log, 2, 20000));
  fired_rec r;
  CHECK(fired_log_get(&b.log, "junk", &r));
  CHECK_EQ_INT(r.attempt, 1);
  CHECK_MSG(fabs(r.activate_at - (now - 1)) < 0.01, "activate_at %f",
            r.activate_at);
  CHECK(fired_log_payload_eq(&b.log, "junk", "odd", "not-an-envelope", 15));
  CHECK(wait_until_empty_topic(e, "odd", 20000));
  timers_counters c = test_counters(e);
  CHECK_EQ_INT(c.self_healed, 1);
  CHECK_EQ_INT(c.corrupt, 1);
  timers_engine_destroy(e);
  behave_free(&b);
}

/* ------------------------------------------------------------------ 11 */

static void burst_many_workers(int handler_ms, int n) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.workers = 32;
  behave b;
  behave_init(&b, handler_ms);
  char topic[32];
  snprintf(topic, sizeof topic, "crowd.%d", handler_ms);
  timers_engine *e = start_engine(&cfg, topic, &b, NULL);
  timers_timer *ts = xrealloc(NULL, sizeof *ts * (size_t)n);
  char(*ids)[16] = xrealloc(NULL, 16 * (size_t)n);
  double at = timers_now() + 0.5;
  for (int k = 0; k < n; k++) {
    snprintf(ids[k], 16, "c%d", k);
    ts[k] = timer_at(topic, ids[k], at);
  }
  for (int k = 0; k < n; k += 1000)
    CHECK_OK(timers_schedule_batch(e, ts + k, n - k < 1000 ? (size_t)(n - k)
                                                           : 1000, NULL));
  CHECK_MSG(fired_wait_distinct(&b.log, (size_t)n, 60000),
            "%d workers, %d ms handlers: %zu of %d fired", cfg.workers,
            handler_ms, fired_log_distinct(&b.log), n);
  check_once(&b, (size_t)n, topic);
  timers_engine_destroy(e);
  free(ts);
  free(ids);
  behave_free(&b);
}

static void test_more_workers_than_cores(void) {
  burst_many_workers(0, 20000);
  burst_many_workers(1, 5000);
}

int main(void) {
  test_redis_start(&rs, false);
  TEST_RUN(test_batch_mixing_topics);
  TEST_RUN(test_backlog_slow_handlers);
  TEST_RUN(test_long_handler_keeps_lease);
  TEST_RUN(test_extend_lease_past_max_handler);
  TEST_RUN(test_stop_commits_and_hands_back);
  TEST_RUN(test_stop_while_claim_stalled);
  TEST_RUN(test_worker_respects_handback);
  TEST_RUN(test_resent_schedule_does_not_resurrect);
  TEST_RUN(test_wrong_type_key);
  TEST_RUN(test_partial_batch_status);
  TEST_RUN(test_bad_meta);
  TEST_RUN(test_orphans_and_corrupt);
  TEST_RUN(test_more_workers_than_cores);
  TEST_RUN(test_out_of_memory);
  TEST_RUN(test_redis_stall_longer_than_lease);
  test_redis_stop(&rs);
  printf("test_delivery: ok\n");
  return 0;
}
