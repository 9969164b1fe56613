/*
 * test_retries.c - failures go somewhere: NACK backoff (exponential with
 * jitter, measured against the configured bounds), a handler-chosen retry
 * delay, max_attempts ending in the dead-letter set (also when every
 * attempt kills its process), REJECT to the dead-letter set when the topic
 * asks for it, and the dead-letter API: inspect, list, requeue, purge,
 * bounds. Waits are bounded; lower bounds of delays are checked strictly,
 * upper bounds with slack (a slow machine must not fail a test).
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "test_util.h"

static redis_server rs;

typedef struct script {
  fired_log log;
  int nack_until;       /* NACK attempts 1..nack_until */
  int retry_in_ms;      /* >= 0: timers_retry_in */
  timers_outcome final; /* after that */
  const char *reason;   /* timers_set_reason, or NULL */
} script;

static timers_outcome scripted(const timers_message *m, void *ud) {
  script *s = ud;
  fired_log_record(&s->log, m);
  if (s->reason) CHECK_OK(timers_set_reason(m, s->reason));
  if ((int)m->attempt <= s->nack_until) {
    if (s->retry_in_ms >= 0) CHECK_OK(timers_retry_in(m, s->retry_in_ms));
    return TIMERS_NACK;
  }
  return s->final;
}

static timers_engine *engine_for(const char *topic, script *s,
                                 const timers_subscribe_options *o,
                                 int dead_max) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 1;
  if (dead_max) cfg.dead_max = dead_max;
  timers_engine *e = test_engine(&cfg);
  CHECK_OK(timers_subscribe(e, topic, scripted, s, o));
  CHECK_OK(timers_engine_start(e));
  return e;
}

static void script_init(script *s, int nack_until, timers_outcome final) {
  memset(s, 0, sizeof *s);
  fired_log_init(&s->log);
  s->nack_until = nack_until;
  s->retry_in_ms = -1;
  s->final = final;
}

typedef struct dead_probe {
  timers_engine *e;
  const char *topic, *id;
} dead_probe;

static bool is_dead(void *ctx) {
  dead_probe *p = ctx;
  timers_dead_info info;
  bool found = false;
  CHECK_OK(timers_dead_inspect(p->e, p->topic, p->id, &found, &info));
  if (found) timers_dead_info_free(&info);
  return found;
}

/* ----------------------------------------------------------------- tests */

static void test_backoff(void) {
  script s;
  script_init(&s, 4, TIMERS_ACK);
  timers_subscribe_options o = {.retry_min_ms = 200, .retry_max_ms = 800};
  timers_engine *e = engine_for("retry.backoff", &s, &o, 0);
  timers_timer t = timer_in("retry.backoff", "b1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK_MSG(fired_wait_total(&s.log, 5, 30000), "%zu deliveries", fired_log_total(&s.log));
  double prev = 0;
  for (size_t i = 0; i < 5; i++) {
    fired_delivery d;
    CHECK(fired_log_delivery(&s.log, i, &d, NULL, 0));
    CHECK_EQ_INT(d.attempt, i + 1);
    if (i) {
      double want = 200 << (i - 1); /* 200 400 800 800 */
      if (want > 800) want = 800;
      double gap = (d.fired_at - prev) * 1e3;
      CHECK_MSG(gap >= want / 2 - 5, "attempt %zu after %.0f ms, want >= %.0f",
                i + 1, gap, want / 2);
      CHECK_MSG(gap <= want + 1000, "attempt %zu after %.0f ms, want <= %.0f",
                i + 1, gap, want);
    }
    prev = d.fired_at;
  }
  CHECK(wait_not_pending(e, "retry.backoff", "b1", 10000));
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

static void test_retry_in(void) {
  script s;
  script_init(&s, 1, TIMERS_ACK);
  s.retry_in_ms = 50;
  timers_subscribe_options o = {.retry_min_ms = 60000, .retry_max_ms = 60000};
  timers_engine *e = engine_for("retry.in", &s, &o, 0);
  timers_timer t = timer_in("retry.in", "r1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK_MSG(fired_wait_total(&s.log, 2, 20000),
            "not redelivered after the handler's 50 ms");
  fired_delivery a, b;
  CHECK(fired_log_delivery(&s.log, 0, &a, NULL, 0));
  CHECK(fired_log_delivery(&s.log, 1, &b, NULL, 0));
  CHECK_MSG((b.fired_at - a.fired_at) * 1e3 >= 45, "after %.0f ms",
            (b.fired_at - a.fired_at) * 1e3);
  timers_message fake = {0};
  CHECK_ERR(timers_retry_in(&fake, 10), TIMERS_EINVAL);
  CHECK_ERR(timers_set_reason(&fake, "x"), TIMERS_EINVAL);
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

static void test_max_attempts(void) {
  script s;
  script_init(&s, 1000, TIMERS_ACK);
  timers_subscribe_options o = {.max_attempts = 3, .retry_min_ms = 50,
                                .retry_max_ms = 50};
  timers_engine *e = engine_for("retry.max", &s, &o, 0);
  timers_header h = {"k", "v"};
  timers_timer t = timer_in("retry.max", "m1", 0);
  t.payload = "poison";
  t.payload_len = 6;
  t.headers = &h;
  t.header_count = 1;
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  dead_probe p = {e, "retry.max", "m1"};
  CHECK_MSG(wait_until(is_dead, &p, 20000), "never dead-lettered");
  sleep_ms(300);
  CHECK_EQ_INT(fired_log_total(&s.log), 3);
  CHECK(!test_is_pending(e, "retry.max", "m1"));
  timers_dead_info info;
  bool found = false;
  CHECK_OK(timers_dead_inspect(e, "retry.max", "m1", &found, &info));
  CHECK(found);
  CHECK_EQ_INT(info.attempts, 3);
  CHECK_MSG(strstr(info.reason, "last attempt"), "reason: %s", info.reason);
  CHECK(info.payload_len == 6 && memcmp(info.payload, "poison", 6) == 0);
  CHECK(info.header_count == 1 && strcmp(info.headers[0].value, "v") == 0);
  CHECK(info.dead_at > 0);
  timers_dead_info_free(&info);
  timers_counters c = test_counters(e);
  CHECK_EQ_INT(c.dead_lettered, 1);
  timers_topic_depth *d = NULL;
  CHECK_OK(timers_topic_depth_get(e, "retry.max", &d));
  CHECK_EQ_INT(d->total.dead, 1);
  CHECK_EQ_INT(d->total.pending, 0);
  timers_topic_depth_free(d);
  /* requeue: back on the timeline, attempts start over, same payload */
  s.nack_until = 0;
  bool requeued = false;
  CHECK_OK(timers_dead_requeue(e, "retry.max", "m1", false, 0, &requeued));
  CHECK(requeued);
  CHECK(fired_wait_total(&s.log, 4, 20000));
  fired_rec r;
  CHECK(fired_log_get(&s.log, "m1", &r));
  CHECK_EQ_INT(r.attempt, 1);
  CHECK(fired_log_payload_eq(&s.log, "m1", "retry.max", "poison", 6));
  CHECK(wait_not_pending(e, "retry.max", "m1", 10000));
  CHECK(!is_dead(&p));
  CHECK_OK(timers_dead_requeue(e, "retry.max", "m1", false, 0, &requeued));
  CHECK(!requeued);
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

static void test_reject_dead_letters(void) {
  script s;
  script_init(&s, 0, TIMERS_REJECT);
  s.reason = "bad input";
  timers_subscribe_options o = {.dead_letter_rejects = 1};
  timers_engine *e = engine_for("retry.reject", &s, &o, 0);
  timers_timer t = timer_in("retry.reject", "j1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  dead_probe p = {e, "retry.reject", "j1"};
  CHECK_MSG(wait_until(is_dead, &p, 20000), "reject not dead-lettered");
  timers_dead_info info;
  bool found;
  CHECK_OK(timers_dead_inspect(e, "retry.reject", "j1", &found, &info));
  CHECK(found && strcmp(info.reason, "bad input") == 0);
  CHECK_EQ_INT(info.attempts, 1);
  timers_dead_info_free(&info);
  uint64_t n = 0;
  CHECK_OK(timers_dead_purge(e, "retry.reject", "j1", &n));
  CHECK_EQ_INT(n, 1);
  CHECK(!is_dead(&p));
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

/* Every delivery kills its process: the claim after max_attempts moves
 * the timer to the dead-letter set; no handler runs a third time. */
static timers_outcome die(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  raise(SIGKILL);
  return TIMERS_ACK;
}

static void test_crash_loop(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 1;
  timers_subscribe_options o = {.lease_ms = 300, .max_attempts = 2};
  timers_engine *prod = test_engine(&cfg);
  timers_timer t = timer_in("retry.crash", "c1", 0);
  CHECK_OK(timers_schedule(prod, &t, NULL, 0));
  int children = 0;
  dead_probe p = {prod, "retry.crash", "c1"};
  double deadline = mono_ms() + 30000;
  while (!is_dead(&p) && mono_ms() < deadline && children < 8) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      timers_engine *e = NULL;
      if (timers_engine_create(&cfg, &e) != TIMERS_OK ||
          timers_subscribe(e, "retry.crash", die, NULL, &o) != TIMERS_OK ||
          timers_engine_start(e) != TIMERS_OK)
        _exit(2);
      sleep(20);
      _exit(0); /* nothing delivered: the timer is dead already */
    }
    children++;
    /* until it died in a handler, or the timer is dead (then stop it) */
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (is_dead(&p)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      sleep_ms(20);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
      CHECK_MSG(false, "child engine could not start");
    sleep_ms(350); /* its lease runs out */
  }
  CHECK_MSG(is_dead(&p), "not dead-lettered after %d crashed deliveries",
            children);
  CHECK_MSG(children == 3, "%d children: want 2 crashed deliveries, then a "
            "claim that dead-letters", children);
  timers_dead_info info;
  bool found;
  CHECK_OK(timers_dead_inspect(prod, "retry.crash", "c1", &found, &info));
  CHECK(found);
  CHECK_EQ_INT(info.attempts, 2);
  CHECK_MSG(strstr(info.reason, "max_attempts"), "reason: %s", info.reason);
  timers_dead_info_free(&info);
  timers_engine_destroy(prod);
}

/* The dead-letter set keeps at most dead_max per shard, the newest. */
static void test_bounds_and_list(void) {
  script s;
  script_init(&s, 0, TIMERS_REJECT);
  timers_subscribe_options o = {.dead_letter_rejects = 1};
  timers_engine *e = engine_for("retry.bound", &s, &o, 3);
  char ids[5][8];
  for (int k = 0; k < 5; k++) {
    snprintf(ids[k], sizeof ids[k], "d%d", k);
    timers_timer t = timer_in("retry.bound", ids[k], 0);
    CHECK_OK(timers_schedule(e, &t, NULL, 0));
    dead_probe p = {e, "retry.bound", ids[k]};
    CHECK(wait_until(is_dead, &p, 20000) || k < 2);
  }
  timers_pending_iter *it = NULL;
  CHECK_OK(timers_dead_open(e, "retry.bound", &it));
  const char *id;
  double at, last = 0;
  int n = 0;
  while (timers_pending_next(it, &id, &at) == TIMERS_OK) {
    CHECK_MSG(strcmp(id, "d2") >= 0, "kept %s, an old one", id);
    CHECK(at >= last);
    last = at;
    n++;
  }
  timers_pending_close(it);
  CHECK_EQ_INT(n, 3);
  uint64_t count = 0;
  CHECK_OK(timers_dead_purge(e, "retry.bound", NULL, &count));
  CHECK_EQ_INT(count, 3);
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

/* timers_reschedule moves a pending timer, payload untouched. */
static void test_reschedule(void) {
  script s;
  script_init(&s, 0, TIMERS_ACK);
  timers_engine *e = engine_for("retry.move", &s, NULL, 0);
  timers_timer t = timer_in("retry.move", "v1", 3600);
  t.payload = "keep";
  t.payload_len = 4;
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  double at = timers_now() + 0.3;
  bool moved = false;
  CHECK_OK(timers_reschedule(e, "retry.move", "v1", at, &moved));
  CHECK(moved);
  CHECK(fired_wait_total(&s.log, 1, 20000));
  fired_rec r;
  CHECK(fired_log_get(&s.log, "v1", &r));
  CHECK_MSG(fabs(r.activate_at - at) < 1e-5, "activate_at %f, want %f",
            r.activate_at, at);
  CHECK_MSG(r.first_fire >= at - 0.002, "fired %.3f s early", at - r.first_fire);
  CHECK(fired_log_payload_eq(&s.log, "v1", "retry.move", "keep", 4));
  CHECK_OK(timers_reschedule(e, "retry.move", "nope", at, &moved));
  CHECK(!moved);
  CHECK_ERR(timers_reschedule(e, "retry.move", "v1", -1, &moved), TIMERS_EINVAL);
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

/* At most once: claimed means gone; a crash after the claim loses it, a
 * NACK cannot redeliver; each timer runs exactly once here. */
static void test_at_most_once(void) {
  script s;
  script_init(&s, 1, TIMERS_ACK); /* attempt 1 NACKs: no redelivery */
  timers_subscribe_options o = {.at_most_once = 1};
  timers_engine *e = engine_for("retry.once", &s, &o, 0);
  enum { N = 200 };
  timers_timer ts[N];
  char ids[N][8];
  for (int k = 0; k < N; k++) {
    snprintf(ids[k], sizeof ids[k], "o%d", k);
    ts[k] = timer_in("retry.once", ids[k], 0);
  }
  CHECK_OK(timers_schedule_batch(e, ts, N, NULL));
  CHECK(fired_wait_distinct(&s.log, N, 20000));
  sleep_ms(1500); /* past any backoff a NACK would have had */
  CHECK_EQ_INT(fired_log_total(&s.log), N);
  timers_topic_depth *d = NULL;
  CHECK_OK(timers_topic_depth_get(e, "retry.once", &d));
  CHECK_EQ_INT(d->total.pending, 0);
  timers_topic_depth_free(d);
  CHECK_EQ_INT(redis_server_int(&rs, "EXISTS timers:{retry.once:0}:a"), 0);
  timers_engine_destroy(e);
  fired_log_free(&s.log);
}

int main(void) {
  test_redis_start(&rs, false);
  TEST_RUN(test_backoff);
  TEST_RUN(test_retry_in);
  TEST_RUN(test_max_attempts);
  TEST_RUN(test_reject_dead_letters);
  TEST_RUN(test_crash_loop);
  TEST_RUN(test_bounds_and_list);
  TEST_RUN(test_reschedule);
  TEST_RUN(test_at_most_once);
  test_redis_stop(&rs);
  printf("test_retries: ok\n");
  return 0;
}
