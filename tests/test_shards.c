/*
 * test_shards.c - the shard count of a topic is recorded in Redis: engine A
 * (shards 8) starts on topic T and schedules to it; engine B configured with
 * 4 shards fails timers_engine_start with TIMERS_ESHARDS, while an engine
 * with 4 shards whose subscription asks for 8 starts fine. A's timers still
 * fire, each in the shard timers_shard_of names.
 */
#include "test_util.h"

#define TOPIC "shards.topic"
#define N 200

static redis_server rs;

static void test_shard_count_recorded(void) {
  fired_log log;
  fired_log_init(&log);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 8;
  timers_engine *a = test_engine(&cfg);
  CHECK_OK(timers_subscribe(a, TOPIC, record_ack_handler, &log, NULL));
  CHECK_OK(timers_engine_start(a));
  static char names[N][16];
  timers_timer ts[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "s-%d", i);
    ts[i] = timer_in(TOPIC, names[i], 3600);
  }
  CHECK_OK(timers_schedule_batch(a, ts, N, NULL));

  cfg.shards = 4;
  timers_engine *b = test_engine(&cfg);
  CHECK_OK(timers_subscribe(b, TOPIC, record_ack_handler, &log, NULL));
  CHECK_ERR(timers_engine_start(b), TIMERS_ESHARDS);
  timers_engine_destroy(b);

  timers_engine *c = test_engine(&cfg);
  timers_subscribe_options o = {.shards = 8};
  CHECK_OK(timers_subscribe(c, TOPIC, record_ack_handler, &log, &o));
  CHECK_OK(timers_engine_start(c));
  CHECK_OK(timers_engine_stop(c));
  timers_engine_destroy(c);

  /* The timers are intact and fire (rescheduled to now), in their shard. */
  for (int i = 0; i < N; i++) ts[i] = timer_in(TOPIC, names[i], 0);
  CHECK_OK(timers_schedule_batch(a, ts, N, NULL));
  CHECK_MSG(fired_wait_distinct(&log, N, 30000), "%zu of %d fired",
            fired_log_distinct(&log), N);
  fired_delivery d;
  char id[TIMERS_ID_MAX + 1];
  for (size_t i = 0; fired_log_delivery(&log, i, &d, id, sizeof id); i++) {
    fired_rec r;
    CHECK(fired_log_get(&log, id, &r));
    CHECK_EQ_INT(r.count, 1);
  }
  CHECK_OK(timers_engine_stop(a));
  timers_engine_destroy(a);
  fired_log_free(&log);
}

/* Each fired message names the shard timers_shard_of gives its id. */
static fired_log shard_log;
static int wrong_shard;

static timers_outcome shard_handler(const timers_message *m, void *ud) {
  uint32_t n = (uint32_t)(uintptr_t)ud;
  if (m->shard != timers_shard_of(m->id, strlen(m->id), n))
    flag_set(&wrong_shard, 1);
  fired_log_record(&shard_log, m);
  return TIMERS_ACK;
}

static void test_message_shard(void) {
  fired_log_init(&shard_log);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 16;
  timers_engine *e = test_engine(&cfg);
  CHECK_OK(timers_subscribe(e, "shards.sixteen", shard_handler,
                            (void *)(uintptr_t)16, NULL));
  CHECK_OK(timers_engine_start(e));
  enum { M = 100 };
  timers_timer ts[M];
  for (int i = 0; i < M; i++) ts[i] = timer_in("shards.sixteen", NULL, 0);
  CHECK_OK(timers_schedule_batch(e, ts, M, NULL));
  CHECK(fired_wait_distinct(&shard_log, M, 30000));
  CHECK_MSG(!flag_get(&wrong_shard),
            "a message's shard differs from timers_shard_of(id)");
  timers_stats *s = NULL;
  CHECK_OK(timers_stats_get(e, &s));
  CHECK(s->shard_count >= 16);
  timers_stats_free(s);
  CHECK_OK(timers_engine_stop(e));
  timers_engine_destroy(e);
  fired_log_free(&shard_log);
}

int main(void) {
  test_redis_start(&rs, false);
  TEST_RUN(test_shard_count_recorded);
  TEST_RUN(test_message_shard);
  test_redis_stop(&rs);
  printf("test_shards: ok\n");
  return 0;
}
