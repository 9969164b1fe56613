/*
 * test_two_engines.c - two engines in one process share the keys and one
 * topic (8 shards): 100,000 timers, scheduled in batches of 1000 by both
 * engines and due over about 2 s, each fire exactly once overall, with the
 * payload they were scheduled with. None lost, none duplicated.
 */
#include "test_util.h"

#define TOPIC "shared.topic"
#define N 100000
#define CHUNK 1000

static redis_server rs;
static timers_engine *eng[2];
static fired_log fired;
static int bad_payload; /* set by a handler that saw a wrong payload */

static timers_outcome handler(const timers_message *m, void *ud) {
  (void)ud;
  char want[16];
  int len = snprintf(want, sizeof want, "v%s", m->id + 2); /* "t-123" */
  if (m->payload_len != (size_t)len || memcmp(m->payload, want, len) != 0 ||
      m->attempt != 1)
    flag_set(&bad_payload, 1);
  fired_log_record(&fired, m);
  return TIMERS_ACK;
}

static void setup(void) {
  test_redis_start(&rs, false);
  fired_log_init(&fired);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.shards = 8;
  for (int i = 0; i < 2; i++) {
    eng[i] = test_engine(&cfg);
    CHECK_OK(timers_subscribe(eng[i], TOPIC, handler, NULL, NULL));
    CHECK_OK(timers_engine_start(eng[i]));
  }
}

static void teardown(void) {
  for (int i = 0; i < 2; i++) {
    CHECK_OK(timers_engine_stop(eng[i]));
    timers_engine_destroy(eng[i]);
  }
  fired_log_free(&fired);
  test_redis_stop(&rs);
}

/* Chunk c (timers c*CHUNK ..) is scheduled by engine c % 2. */
static void schedule_all(double start) {
  static char ids[CHUNK][16], payloads[CHUNK][16];
  timers_timer ts[CHUNK];
  for (int c = 0; c < N / CHUNK; c++) {
    for (int k = 0; k < CHUNK; k++) {
      int i = c * CHUNK + k;
      snprintf(ids[k], sizeof ids[k], "t-%d", i);
      int len = snprintf(payloads[k], sizeof payloads[k], "v%d", i);
      /* Interleave due times across chunks: i -> spread over 2 s. */
      double at = start + (double)((i * 7919) % N) * (2.0 / N);
      ts[k] = timer_at(TOPIC, ids[k], at);
      ts[k].payload = payloads[k];
      ts[k].payload_len = (size_t)len;
    }
    CHECK_OK(timers_schedule_batch(eng[c % 2], ts, CHUNK, NULL));
  }
}

typedef struct progress {
  size_t last;
  double last_change_ms;
} progress;

/* Done when all fired; fails early only if nothing moved for 60 s. */
static bool all_fired_or_stuck(void *ctx) {
  progress *p = ctx;
  size_t n = fired_log_distinct(&fired);
  if (n != p->last) {
    p->last = n;
    p->last_change_ms = mono_ms();
  }
  return n >= N || mono_ms() - p->last_change_ms > 60000;
}

static bool nothing_pending_pred(void *ctx) {
  (void)ctx;
  size_t left = 0;
  test_pending_has(eng[1], TOPIC, false, 0, NULL, &left);
  return left == 0;
}

static void test_exactly_once(void) {
  double start = timers_now() + 1.0;
  schedule_all(start);
  progress p = {0, mono_ms()};
  wait_until(all_fired_or_stuck, &p, 270000);
  size_t distinct = fired_log_distinct(&fired);
  CHECK_MSG(distinct == N, "%zu of %d timers fired (lost %zu)", distinct, N,
            (size_t)N - distinct);
  sleep_ms(1000); /* let duplicates, if any, show up */
  char dup[TIMERS_ID_MAX + 1] = "";
  unsigned max = fired_log_max_count(&fired, dup, sizeof dup);
  CHECK_MSG(max == 1, "%s fired %u times; %zu deliveries for %d timers", dup,
            max, fired_log_total(&fired), N);
  CHECK_EQ_INT(fired_log_total(&fired), N);
  CHECK_MSG(!flag_get(&bad_payload), "a delivery had a wrong payload/attempt");
  CHECK(!fired_log_any_early(&fired));

  timers_counters a = test_counters(eng[0]), b = test_counters(eng[1]);
  CHECK_EQ_INT(a.scheduled + b.scheduled, N);
  printf("engine 0 fired %" PRIu64 ", engine 1 fired %" PRIu64
         ", contested claims %" PRIu64 "\n",
         a.fired, b.fired, a.contested + b.contested);
  CHECK(wait_not_pending(eng[0], TOPIC, "t-0", 30000));
  CHECK_MSG(wait_until(nothing_pending_pred, NULL, 30000),
            "timers still pending after every one fired and was acked");
}

int main(void) {
  setup();
  TEST_RUN(test_exactly_once);
  teardown();
  printf("test_two_engines: ok\n");
  return 0;
}
