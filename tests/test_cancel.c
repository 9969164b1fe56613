/*
 * test_cancel.c - cancel, cancel_all, is_pending and the pending iterator:
 * a cancelled timer never fires; unknown ids report removed=false;
 * cancel_all counts; 2500 timers on 8 shards are listed once each in time
 * order, with and without `before`; a timer being handled is listed without
 * `before` but not with before = now; a handler may cancel its own timer;
 * a cancel retried inside the call after a Redis stall reports the removal
 * its first attempt made.
 */
#include <signal.h>

#include "test_util.h"

#define T_FIRE "cancel.fire"
#define T_LIST "cancel.list"
#define T_HOLD "cancel.hold"
#define T_SELF "cancel.self"

static redis_server rs;
static timers_engine *eng;
static fired_log log_fire, log_self;

static gate hold_gate;
static int hold_entered;

static timers_outcome hold_handler(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  flag_set(&hold_entered, 1);
  gate_wait(&hold_gate);
  return TIMERS_ACK;
}

static int self_cancel_failed;

/* Cancels the timer it is handling, then nacks: the cancel must win. */
static timers_outcome self_cancel_handler(const timers_message *m, void *ud) {
  fired_log_record(&log_self, m);
  bool removed = false;
  if (timers_cancel((timers_engine *)ud, m->topic, m->id, &removed) !=
          TIMERS_OK ||
      !removed)
    flag_set(&self_cancel_failed, 1);
  return TIMERS_NACK;
}

static void setup(void) {
  test_redis_start(&rs, false);
  fired_log_init(&log_fire);
  fired_log_init(&log_self);
  gate_init(&hold_gate);
  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  timers_subscribe_options short_lease = {.lease_ms = 500};
  CHECK_OK(timers_subscribe(eng, T_FIRE, record_ack_handler, &log_fire, NULL));
  CHECK_OK(timers_subscribe(eng, T_HOLD, hold_handler, NULL, NULL));
  CHECK_OK(timers_subscribe(eng, T_SELF, self_cancel_handler, eng,
                            &short_lease));
  CHECK_OK(timers_engine_start(eng));
}

static void teardown(void) {
  gate_open(&hold_gate); /* never leave a handler blocked at stop */
  CHECK_OK(timers_engine_stop(eng));
  CHECK_OK(timers_engine_stop(eng)); /* idempotent */
  timers_engine_destroy(eng);
  fired_log_free(&log_fire);
  fired_log_free(&log_self);
  gate_destroy(&hold_gate);
  test_redis_stop(&rs);
}

static void test_cancel_before_due(void) {
  double at = timers_now() + 2.0; /* time enough to cancel, even under TSan */
  timers_timer gone = timer_at(T_FIRE, "cancelled", at);
  timers_timer kept = timer_at(T_FIRE, "control", at);
  CHECK_OK(timers_schedule(eng, &gone, NULL, 0));
  CHECK_OK(timers_schedule(eng, &kept, NULL, 0));
  CHECK(test_is_pending(eng, T_FIRE, "cancelled"));
  bool removed = false;
  CHECK_OK(timers_cancel(eng, T_FIRE, "cancelled", &removed));
  CHECK(removed);
  CHECK(!test_is_pending(eng, T_FIRE, "cancelled"));
  CHECK(test_is_pending(eng, T_FIRE, "control"));
  removed = true;
  CHECK_OK(timers_cancel(eng, T_FIRE, "cancelled", &removed));
  CHECK(!removed);
  CHECK_OK(timers_cancel(eng, T_FIRE, "cancelled", NULL));

  CHECK_MSG(fired_wait_distinct(&log_fire, 1, 20000), "control never fired");
  sleep_until_wall(at + 0.5);
  CHECK_EQ_INT(fired_log_count(&log_fire, "cancelled"), 0);
  CHECK_EQ_INT(fired_log_count(&log_fire, "control"), 1);
}

static void test_cancel_unknown(void) {
  bool removed = true;
  CHECK_OK(timers_cancel(eng, T_FIRE, "never-scheduled", &removed));
  CHECK(!removed);
  removed = true;
  CHECK_OK(timers_cancel(eng, "cancel.no-such-topic", "x", &removed));
  CHECK(!removed);
  CHECK(!test_is_pending(eng, T_FIRE, "never-scheduled"));
  CHECK(!test_is_pending(eng, "cancel.no-such-topic", "x"));
}

enum { LIST_N = 2500 };

/* Schedules LIST_N timers at base + perm(i) ms in batches of 500. */
static void schedule_list(double base, double *at) {
  static char names[LIST_N][16];
  static timers_timer ts[LIST_N];
  uint32_t seed = 12345;
  int perm[LIST_N];
  for (int i = 0; i < LIST_N; i++) perm[i] = i;
  for (int i = LIST_N - 1; i > 0; i--) {
    seed = seed * 1103515245u + 12345u;
    int j = (int)((seed >> 8) % (uint32_t)(i + 1));
    int tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  for (int i = 0; i < LIST_N; i++) {
    snprintf(names[i], sizeof names[i], "p-%04d", i);
    at[i] = base + perm[i] * 0.001;
    ts[i] = timer_at(T_LIST, names[i], at[i]);
  }
  for (int off = 0; off < LIST_N; off += 500)
    CHECK_OK(timers_schedule_batch(eng, ts + off, 500, NULL));
}

/* Lists T_LIST and checks: each expected id once, times non-decreasing and
 * equal to the scheduled ones; returns how many were listed. */
static int check_listing(bool has_before, double before, const double *at) {
  static unsigned char seen[LIST_N];
  memset(seen, 0, sizeof seen);
  timers_pending_iter *it = NULL;
  CHECK_OK(timers_pending_open(eng, T_LIST, has_before, before, &it));
  const char *id;
  double t, prev = -1;
  int n = 0, rc, idx;
  while ((rc = timers_pending_next(it, &id, &t)) == TIMERS_OK) {
    CHECK_MSG(sscanf(id, "p-%d", &idx) == 1 && idx >= 0 && idx < LIST_N,
              "unexpected id \"%s\"", id);
    CHECK_MSG(!seen[idx], "id %s listed twice", id);
    seen[idx] = 1;
    CHECK_MSG(t >= prev, "%s at %.6f listed after %.6f", id, t, prev);
    CHECK_MSG(fabs(t - at[idx]) < 1e-5, "%s at %.6f, scheduled %.6f", id, t,
              at[idx]);
    CHECK(!has_before || t <= before);
    prev = t;
    n++;
  }
  CHECK_EQ_INT(rc, TIMERS_EDONE);
  CHECK_EQ_INT(timers_pending_next(it, &id, NULL), TIMERS_EDONE);
  timers_pending_close(it);
  for (int i = 0; i < LIST_N; i++)
    if (!has_before || at[i] < before)
      CHECK_MSG(seen[i], "p-%04d (at %.6f) not listed", i, at[i]);
  return n;
}

static void test_pending_listing(void) {
  static double at[LIST_N];
  double base = timers_now() + 3600;
  schedule_list(base, at);
  CHECK_EQ_INT(check_listing(false, 0, at), LIST_N);
  /* Midway between two timers: perm values 0..1250 are before it. */
  CHECK_EQ_INT(check_listing(true, base + 1.2505, at), 1251);
  CHECK_EQ_INT(check_listing(true, base - 1, at), 0);
  CHECK(test_is_pending(eng, T_LIST, "p-0000"));
  CHECK(test_is_pending(eng, T_LIST, "p-2499"));

  uint64_t count = 0;
  CHECK_OK(timers_cancel_all(eng, T_LIST, &count));
  CHECK_EQ_INT(count, LIST_N);
  size_t left = 99;
  test_pending_has(eng, T_LIST, false, 0, NULL, &left);
  CHECK_EQ_INT(left, 0);
  CHECK(!test_is_pending(eng, T_LIST, "p-0000"));
  count = 99;
  CHECK_OK(timers_cancel_all(eng, T_LIST, &count));
  CHECK_EQ_INT(count, 0);
  CHECK_OK(timers_cancel_all(eng, T_LIST, NULL));
}

/* A leased timer keeps existing but its time is the lease expiry. */
static void test_pending_while_handled(void) {
  timers_timer t = timer_in(T_HOLD, "held", 0);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(wait_until(flag_pred, &hold_entered, 20000),
            "held timer never reached its handler");
  CHECK(test_is_pending(eng, T_HOLD, "held"));
  size_t total = 0;
  CHECK_MSG(test_pending_has(eng, T_HOLD, false, 0, "held", &total),
            "a timer being handled is missing from the full listing");
  CHECK_EQ_INT(total, 1);
  CHECK_MSG(!test_pending_has(eng, T_HOLD, true, timers_now(), "held", &total),
            "a timer being handled is listed with before = now");
  CHECK_EQ_INT(total, 0);
  gate_open(&hold_gate);
  CHECK_MSG(wait_not_pending(eng, T_HOLD, "held", 20000),
            "acked timer still pending");
}

typedef struct cancel_call {
  timers_engine *e;
  const char *topic, *id;
  int rc;
  bool removed;
} cancel_call;

static void *cancel_thread(void *arg) {
  cancel_call *c = arg;
  c->rc = timers_cancel(c->e, c->topic, c->id, &c->removed);
  return NULL;
}

/* Redis stalls with a cancel on its way: the call times out (200 ms) and
 * retries inside timers_cancel; Redis then runs the first attempt, which
 * removes the timer, and the retry finds nothing. The call must still say
 * it removed it (it did), not "was not pending". */
static void test_cancel_retried_after_stall(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.command_timeout_ms = 200;
  cfg.retry_ms = 15000;
  timers_engine *e = test_engine(&cfg); /* not started: a producer */
  timers_timer t = timer_at(T_FIRE, "stalled", timers_now() + 600);
  CHECK_OK(timers_schedule(e, &t, NULL, 0)); /* warms its connection */
  CHECK(test_is_pending(e, T_FIRE, "stalled"));
  CHECK(kill(rs.pid, SIGSTOP) == 0);
  cancel_call c = {e, T_FIRE, "stalled", -1, false};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, cancel_thread, &c) == 0);
  sleep_ms(1000); /* several attempts time out meanwhile */
  CHECK(kill(rs.pid, SIGCONT) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK_MSG(c.rc == TIMERS_OK, "cancel failed: %d %s", c.rc,
            timers_last_error());
  CHECK_MSG(c.removed, "the cancel removed the timer but said it was not "
                       "pending");
  CHECK(!test_is_pending(e, T_FIRE, "stalled"));
  /* Another call for the same id: nothing there, nothing removed. */
  bool again = true;
  CHECK_OK(timers_cancel(e, T_FIRE, "stalled", &again));
  CHECK(!again);
  timers_engine_destroy(e);
}

static void test_cancel_from_handler(void) {
  timers_timer t = timer_in(T_SELF, "self", 0);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(fired_wait_distinct(&log_self, 1, 20000), "never fired");
  CHECK(wait_not_pending(eng, T_SELF, "self", 20000));
  CHECK_MSG(!flag_get(&self_cancel_failed),
            "cancel inside the handler failed or removed nothing");
  sleep_ms(1500); /* three leases: a nack must not bring it back */
  CHECK_EQ_INT(fired_log_count(&log_self, "self"), 1);
  CHECK(!test_is_pending(eng, T_SELF, "self"));
}

int main(void) {
  setup();
  TEST_RUN(test_cancel_before_due);
  TEST_RUN(test_cancel_unknown);
  TEST_RUN(test_pending_listing);
  TEST_RUN(test_pending_while_handled);
  TEST_RUN(test_cancel_from_handler);
  TEST_RUN(test_cancel_retried_after_stall);
  teardown();
  printf("test_cancel: ok\n");
  return 0;
}
