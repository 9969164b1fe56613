/*
 * test_fire.c - timers fire: once, with the right topic, id, payload bytes
 * (binary, with a NUL inside) and headers; attempt 1; never before their
 * time; a past activation fires at once; rescheduling an id replaces it;
 * generated ids are unique 32-hex-digit strings; one shard with one worker
 * fires in activation order.
 */
#include "test_util.h"

#define T_MAIN "fire.main"
#define T_GEN "fire.gen"
#define T_ORDER "fire.order"

static redis_server rs;
static timers_engine *eng;       /* workers 2, shards 8: T_MAIN, T_GEN */
static timers_engine *eng_order; /* workers 1, shards 1: T_ORDER */
static fired_log log_main, log_gen, log_order;

static void setup(void) {
  test_redis_start(&rs, false);
  fired_log_init(&log_main);
  fired_log_init(&log_gen);
  fired_log_init(&log_order);
  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  CHECK_OK(timers_subscribe(eng, T_MAIN, record_ack_handler, &log_main, NULL));
  CHECK_OK(timers_subscribe(eng, T_GEN, record_ack_handler, &log_gen, NULL));
  CHECK_OK(timers_engine_start(eng));
  cfg.workers = 1;
  cfg.shards = 1;
  eng_order = test_engine(&cfg);
  CHECK_OK(timers_subscribe(eng_order, T_ORDER, record_ack_handler,
                            &log_order, NULL));
  CHECK_OK(timers_engine_start(eng_order));
}

static void teardown(void) {
  CHECK_OK(timers_engine_stop(eng));
  CHECK_OK(timers_engine_stop(eng_order));
  timers_engine_destroy(eng);
  timers_engine_destroy(eng_order);
  fired_log_free(&log_main);
  fired_log_free(&log_gen);
  fired_log_free(&log_order);
  test_redis_stop(&rs);
}

static void check_header(const char *id, const char *key, const char *want,
                         size_t want_count) {
  char buf[256];
  size_t count = 0;
  CHECK_MSG(fired_log_header(&log_main, id, key, buf, sizeof buf, &count),
            "%s: header %s missing", id, key);
  CHECK_MSG(strcmp(buf, want) == 0, "%s: header %s = \"%s\", want \"%s\"", id,
            key, buf, want);
  CHECK_EQ_INT(count, want_count);
}

/* One timer with binary payload and headers fires exactly once. */
static void test_fires_once_with_content(void) {
  static const char payload[] = {'a', 'b', '\0', 'c', '\xff', '\x01', '\0'};
  timers_header hs[] = {{"correlation_id", "corr-42"},
                        {"content-type", "application/octet-stream"},
                        {"empty", ""}};
  double at = timers_now() + 0.3;
  timers_timer t = timer_at(T_MAIN, "one", at);
  t.payload = payload;
  t.payload_len = sizeof payload;
  t.headers = hs;
  t.header_count = 3;
  char id[TIMERS_ID_MAX + 1];
  CHECK_OK(timers_schedule(eng, &t, id, sizeof id));
  CHECK(strcmp(id, "one") == 0);
  CHECK(test_is_pending(eng, T_MAIN, "one"));

  CHECK_MSG(fired_wait_distinct(&log_main, 1, 20000), "timer never fired");
  fired_rec r;
  CHECK(fired_log_get(&log_main, "one", &r));
  CHECK_EQ_INT(r.attempt, 1);
  CHECK(fabs(r.activate_at - at) < 1e-3);
  CHECK_MSG(r.first_fire >= at - 0.001, "fired %.6f s early",
            at - r.first_fire);
  CHECK(fired_log_payload_eq(&log_main, "one", T_MAIN, payload,
                             sizeof payload));
  check_header("one", "correlation_id", "corr-42", 3);
  check_header("one", "content-type", "application/octet-stream", 3);
  check_header("one", "empty", "", 3);
  CHECK_MSG(wait_not_pending(eng, T_MAIN, "one", 20000),
            "acked timer still pending");
  sleep_ms(500); /* a duplicate would show up here */
  CHECK_EQ_INT(fired_log_count(&log_main, "one"), 1);
}

/* Past activation times (and activate_in 0) fire at once. */
static void test_past_fires_now(void) {
  size_t before = fired_log_distinct(&log_main);
  timers_timer ts[3] = {timer_at(T_MAIN, "past-10s", timers_now() - 10),
                        timer_at(T_MAIN, "past-epoch", 0.0),
                        timer_in(T_MAIN, "in-zero", 0.0)};
  for (int i = 0; i < 3; i++) CHECK_OK(timers_schedule(eng, &ts[i], NULL, 0));
  CHECK_MSG(fired_wait_distinct(&log_main, before + 3, 20000),
            "past timers did not fire");
  CHECK_EQ_INT(fired_log_count(&log_main, "past-10s"), 1);
  CHECK_EQ_INT(fired_log_count(&log_main, "past-epoch"), 1);
  CHECK_EQ_INT(fired_log_count(&log_main, "in-zero"), 1);
  fired_rec r;
  CHECK(fired_log_get(&log_main, "past-epoch", &r));
  CHECK(fabs(r.activate_at) < 1e-6);
  CHECK_EQ_INT(r.attempt, 1);
  CHECK(fired_log_payload_eq(&log_main, "in-zero", T_MAIN, NULL, 0));
}

/* Scheduling an existing id replaces time and payload: it fires once. */
static void test_reschedule_replaces(void) {
  size_t before = fired_log_distinct(&log_main);
  timers_timer t = timer_in(T_MAIN, "replaced", 3600);
  t.payload = "v1";
  t.payload_len = 2;
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  t = timer_in(T_MAIN, "replaced", 0.2);
  t.payload = "v2";
  t.payload_len = 2;
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(fired_wait_distinct(&log_main, before + 1, 20000),
            "replaced timer did not fire at its new time");
  CHECK(fired_log_payload_eq(&log_main, "replaced", T_MAIN, "v2", 2));
  CHECK(wait_not_pending(eng, T_MAIN, "replaced", 20000));
  sleep_ms(300);
  CHECK_EQ_INT(fired_log_count(&log_main, "replaced"), 1);
}

static bool is_hex_id(const char *id) {
  if (strlen(id) != TIMERS_ID_GEN_LEN) return false;
  for (const char *p = id; *p; p++)
    if (!strchr("0123456789abcdefABCDEF", *p)) return false;
  return true;
}

/* Generated ids: unique, TIMERS_ID_GEN_LEN hex digits, and they fire. */
static void test_generated_ids(void) {
  enum { N = 300 };
  timers_timer ts[N];
  for (int i = 0; i < N; i++) ts[i] = timer_in(T_GEN, NULL, 0.1);
  static char ids[N][TIMERS_ID_MAX + 1];
  memset(ids, 0, sizeof ids);
  CHECK_OK(timers_schedule_batch(eng, ts, N - 1, &ids[0][0]));
  CHECK_OK(timers_schedule(eng, &ts[N - 1], ids[N - 1], sizeof ids[N - 1]));
  for (int i = 0; i < N; i++) {
    CHECK_MSG(is_hex_id(ids[i]), "generated id %d is \"%s\"", i, ids[i]);
    for (int j = 0; j < i; j++)
      CHECK_MSG(strcmp(ids[i], ids[j]) != 0, "ids %d and %d equal", i, j);
  }
  CHECK_MSG(fired_wait_distinct(&log_gen, N, 30000), "%zu of %d fired",
            fired_log_distinct(&log_gen), N);
  for (int i = 0; i < N; i++)
    CHECK_MSG(fired_log_count(&log_gen, ids[i]) == 1, "id %s fired %u times",
              ids[i], fired_log_count(&log_gen, ids[i]));
}

/* One shard, one worker: deliveries in activation order, past and future. */
static void test_order_one_shard(void) {
  enum { PAST = 20, FUTURE = 40 };
  double now = timers_now();
  timers_timer ts[PAST + FUTURE];
  char names[PAST + FUTURE][32];
  for (int i = 0; i < PAST + FUTURE; i++) {
    /* Scheduled in reverse order; past ones 10 ms apart, future 20 ms. */
    int k = PAST + FUTURE - 1 - i;
    double at = k < PAST ? now - 5 + k * 0.01 : now + 0.8 + (k - PAST) * 0.02;
    snprintf(names[i], sizeof names[i], "ord-%03d", k);
    ts[i] = timer_at(T_ORDER, names[i], at);
  }
  CHECK_OK(timers_schedule_batch(eng_order, ts, PAST + FUTURE, NULL));
  CHECK_MSG(fired_wait_distinct(&log_order, PAST + FUTURE, 30000),
            "%zu of %d fired", fired_log_distinct(&log_order), PAST + FUTURE);
  CHECK_EQ_INT(fired_log_total(&log_order), PAST + FUTURE);
  fired_delivery d;
  char id[TIMERS_ID_MAX + 1], want[32];
  for (size_t i = 0; fired_log_delivery(&log_order, i, &d, id, sizeof id);
       i++) {
    snprintf(want, sizeof want, "ord-%03zu", i);
    CHECK_MSG(strcmp(id, want) == 0, "delivery %zu was %s, want %s", i, id,
              want);
    CHECK_EQ_INT(d.attempt, 1);
  }
}

typedef struct stats_wait {
  timers_engine *e;
  uint64_t fired;
} stats_wait;

static bool all_committed_pred(void *ctx) {
  stats_wait *w = ctx;
  timers_counters c = test_counters(w->e);
  return c.fired >= w->fired && c.acked >= w->fired;
}

static void test_never_early_and_stats(void) {
  CHECK(!fired_log_any_early(&log_main));
  CHECK(!fired_log_any_early(&log_gen));
  CHECK(!fired_log_any_early(&log_order));
  size_t fired = fired_log_total(&log_main) + fired_log_total(&log_gen);
  stats_wait w = {eng, fired};
  CHECK_MSG(wait_until(all_committed_pred, &w, 20000),
            "stats never counted %zu fired and acked", fired);
  timers_stats *s = NULL;
  CHECK_OK(timers_stats_get(eng, &s));
  CHECK_MSG(s->total.fired == fired, "stats fired %" PRIu64 ", handlers %zu",
            s->total.fired, fired);
  CHECK(s->total.acked == fired);
  CHECK(s->total.scheduled >= fired);
  CHECK(s->total.claimed >= fired);
  uint64_t in_buckets = 0;
  for (int i = 0; i < TIMERS_LATENCY_BUCKETS; i++) in_buckets += s->lateness[i];
  /* All were first attempts. The timer scheduled at time 0 may be left out:
   * a lateness of decades says nothing about the engine. */
  CHECK_MSG(in_buckets == fired || in_buckets + 1 == fired,
            "lateness buckets hold %" PRIu64 ", fired %zu", in_buckets, fired);
  CHECK(timers_stats_lateness_ms(s, 0.5) > 0);
  uint64_t shard_fired = 0;
  for (size_t i = 0; i < s->shard_count; i++) {
    CHECK(s->shards[i].topic != NULL);
    shard_fired += s->shards[i].counters.fired;
  }
  CHECK(shard_fired == fired);
  timers_stats_free(s);
}

int main(void) {
  setup();
  TEST_RUN(test_fires_once_with_content);
  TEST_RUN(test_past_fires_now);
  TEST_RUN(test_reschedule_replaces);
  TEST_RUN(test_generated_ids);
  TEST_RUN(test_order_one_shard);
  TEST_RUN(test_never_early_and_stats);
  teardown();
  printf("test_fire: ok\n");
  return 0;
}
