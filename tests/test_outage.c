/*
 * test_outage.c - Redis goes away and comes back (appendonly, SIGTERM).
 *
 * Timers due 1-2 s later are scheduled; the server is stopped for about
 * 3 s, during which the engine must keep running and schedule() must fail
 * with TIMERS_ECONN and a message (retry_ms 200); after the restart every
 * timer fires, and new ones can be scheduled and fire.
 */
#include "test_util.h"

#define TOPIC "outage.topic"
#define N 20

static redis_server rs;

static void schedule_before(timers_engine *e) {
  static char names[N][16];
  timers_timer ts[N];
  double now = timers_now();
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "o-%02d", i);
    ts[i] = timer_at(TOPIC, names[i], now + 1.0 + i * 0.05);
  }
  CHECK_OK(timers_schedule_batch(e, ts, N, NULL));
}

/* Keeps trying schedule/cancel for about 3 s while Redis is down. */
static void poke_while_down(timers_engine *e) {
  double end = mono_ms() + 3000;
  int tries = 0;
  while (mono_ms() < end || tries < 2) {
    timers_timer t = timer_in(TOPIC, "during-outage", 0);
    CHECK_ERR(timers_schedule(e, &t, NULL, 0), TIMERS_ECONN);
    bool removed = true;
    CHECK_ERR(timers_cancel(e, TOPIC, "o-00", &removed), TIMERS_ECONN);
    tries++;
    sleep_ms(200);
  }
}

static void test_redis_restart(void) {
  fired_log log;
  fired_log_init(&log);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.retry_ms = 200;
  cfg.log_level = TIMERS_LOG_ERROR; /* connection warnings are expected */
  timers_engine *e = test_engine(&cfg);
  CHECK_OK(timers_subscribe(e, TOPIC, record_ack_handler, &log, NULL));
  CHECK_OK(timers_engine_start(e));
  schedule_before(e);
  CHECK(test_dbsize(&rs) > 0);

  redis_server_halt(&rs, false);
  poke_while_down(e);
  CHECK_MSG(redis_server_restart(&rs) == 0, "redis-server did not restart");

  CHECK_MSG(fired_wait_distinct(&log, N, 30000),
            "%zu of %d timers fired after the restart",
            fired_log_distinct(&log), N);
  CHECK(!test_pending_has(e, TOPIC, false, 0, "during-outage", NULL));
  timers_timer t = timer_in(TOPIC, "after", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK_MSG(fired_wait_distinct(&log, N + 1, 30000),
            "a timer scheduled after the restart never fired");
  CHECK_EQ_INT(fired_log_count(&log, "during-outage"), 0);
  CHECK(!fired_log_any_early(&log));
  timers_counters c = test_counters(e);
  CHECK(c.redis_errors >= 1);

  CHECK_OK(timers_engine_stop(e));
  timers_engine_destroy(e);
  fired_log_free(&log);
}

int main(void) {
  test_redis_start(&rs, true);
  TEST_RUN(test_redis_restart);
  test_redis_stop(&rs);
  printf("test_outage: ok\n");
  return 0;
}
