/*
 * test_inspect.c - reading timers without touching them: timers_inspect
 * (score, attempts, payload, headers, leased), timers_topic_depth_get
 * (pending, overdue, oldest, forecast windows per shard and in total), and
 * the Prometheus exposition of stats and depths.
 */
#include "test_util.h"

#define T_INS "inspect.one"
#define T_DEPTH "inspect.depth"

static redis_server rs;
static timers_engine *eng;

static void test_inspect_one(void) {
  timers_header hs[] = {{"correlation_id", "c-42"}, {"content-type", "text/plain"}};
  double at = timers_now() + 3600;
  timers_timer t = {.topic = T_INS, .id = "t1", .payload = "hello\0x",
                    .payload_len = 7, .headers = hs, .header_count = 2,
                    .has_activate_at = true, .activate_at = at};
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  bool found = false;
  timers_timer_info info;
  CHECK_OK(timers_inspect(eng, T_INS, "t1", &found, &info));
  CHECK(found);
  CHECK(strcmp(info.id, "t1") == 0);
  CHECK(info.shard == timers_shard_of("t1", 2, 8));
  CHECK_MSG(fabs(info.score - at) < 1e-5, "score %.6f, want %.6f", info.score, at);
  CHECK(fabs(info.activate_at - at) < 1e-5);
  CHECK(!info.leased);
  CHECK_EQ_INT(info.attempts, 0);
  CHECK_EQ_INT(info.payload_len, 7);
  CHECK(memcmp(info.payload, "hello\0x", 7) == 0);
  CHECK_EQ_INT(info.header_count, 2);
  CHECK(strcmp(info.headers[0].key, "correlation_id") == 0);
  CHECK(strcmp(info.headers[0].value, "c-42") == 0);
  CHECK(strcmp(info.headers[1].value, "text/plain") == 0);
  timers_timer_info_free(&info);

  found = true;
  CHECK_OK(timers_inspect(eng, T_INS, "missing", &found, &info));
  CHECK(!found);
  CHECK_ERR(timers_inspect(eng, "bad topic", "t1", &found, &info), TIMERS_EINVAL);
  CHECK_ERR(timers_inspect(eng, T_INS, "t1", NULL, &info), TIMERS_EINVAL);
}

/* 10 overdue, 20 due within a minute, 30 within an hour, 40 within a day. */
static void test_depth(void) {
  double now = timers_now();
  static const struct { int n; double offset; } groups[] = {
      {10, -30}, {20, 30}, {30, 1800}, {40, 43200}};
  int total = 0;
  for (size_t g = 0; g < 4; g++)
    for (int i = 0; i < groups[g].n; i++, total++) {
      timers_timer t = {.topic = T_DEPTH, .has_activate_at = true,
                        .activate_at = now + groups[g].offset + i * 0.001};
      CHECK_OK(timers_schedule(eng, &t, NULL, 0));
    }
  timers_topic_depth *d = NULL;
  CHECK_OK(timers_topic_depth_get(eng, T_DEPTH, &d));
  CHECK_EQ_INT(d->shards, 8);
  CHECK_EQ_INT(d->total.pending, total);
  CHECK_EQ_INT(d->total.overdue, 10);
  CHECK_EQ_INT(d->total.due_1m, 20);
  CHECK_EQ_INT(d->total.due_1h, 50);
  CHECK_EQ_INT(d->total.due_1d, 90);
  CHECK_MSG(fabs(d->total.oldest - (now - 30)) < 1e-3, "oldest %.6f", d->total.oldest);
  uint64_t sum = 0;
  for (uint32_t s = 0; s < d->shards; s++) sum += d->per_shard[s].pending;
  CHECK_EQ_INT(sum, total);

  /* Two topics (the same depths twice): each family's header once. */
  const timers_topic_depth *ds[] = {d, d};
  const char *names[] = {T_DEPTH, "inspect.other"};
  size_t need = timers_topic_depth_prometheus(ds, names, 2, NULL, 0);
  char *text = malloc(need + 1);
  CHECK(timers_topic_depth_prometheus(ds, names, 2, text, need + 1) == need);
  CHECK(strlen(text) == need);
  const char *first = strstr(text, "# TYPE timers_pending gauge");
  CHECK(first != NULL && strstr(first + 1, "# TYPE timers_pending gauge") == NULL);
  CHECK(strstr(text, "timers_overdue{topic=\"inspect.depth\",shard=\"0\"}") != NULL);
  CHECK(strstr(text, "timers_overdue{topic=\"inspect.other\",shard=\"7\"}") != NULL);
  free(text);
  timers_topic_depth_free(d);
}

/* Reading a topic nobody wrote writes nothing (no shard count recorded). */
static void test_read_only(void) {
  long long before = test_dbsize(&rs);
  timers_topic_depth *d = NULL;
  CHECK_OK(timers_topic_depth_get(eng, "inspect.none", &d));
  CHECK_EQ_INT(d->total.pending, 0);
  timers_topic_depth_free(d);
  bool found = true, pending = true;
  timers_timer_info info;
  CHECK_OK(timers_inspect(eng, "inspect.none", "x", &found, &info));
  CHECK_OK(timers_is_pending(eng, "inspect.none", "x", &pending));
  CHECK(!found && !pending);
  timers_pending_iter *it;
  const char *id;
  CHECK_OK(timers_pending_open(eng, "inspect.none", false, 0, &it));
  CHECK_EQ_INT(timers_pending_next(it, &id, NULL), TIMERS_EDONE);
  timers_pending_close(it);
  CHECK_EQ_INT(test_dbsize(&rs), before);
}

static void test_prometheus_stats(void) {
  timers_stats *s = NULL;
  CHECK_OK(timers_stats_get(eng, &s));
  size_t need = timers_stats_prometheus(s, NULL, 0);
  CHECK(need > 0);
  char small[64];
  CHECK(timers_stats_prometheus(s, small, sizeof small) == need);
  CHECK(strlen(small) == sizeof small - 1); /* truncated, terminated */
  char *text = malloc(need + 1);
  CHECK(timers_stats_prometheus(s, text, need + 1) == need);
  CHECK(strstr(text, "# TYPE timers_scheduled_total counter") != NULL);
  CHECK(strstr(text, "timers_lateness_seconds_bucket{le=\"+Inf\"}") != NULL);
  CHECK(strstr(text, "timers_lateness_seconds_count") != NULL);
  CHECK(strstr(text, "timers_lock_wait_seconds_total") != NULL);
  /* Every line is a comment or "name[{labels}] value". */
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    CHECK_MSG(line[0] == '#' || strchr(line, ' ') != NULL, "bad line: %s", line);
  free(text);
  timers_stats_free(s);
}

static timers_outcome noop(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  return TIMERS_ACK;
}

static gate held_gate;
static int held_entered;

static timers_outcome hold(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  flag_set(&held_entered, 1);
  gate_wait(&held_gate);
  return TIMERS_ACK;
}

/* A timer a handler holds: one delivery so far, its score a live lease. */
static void test_inspect_held(void) {
  timers_timer t = {.topic = "inspect.held", .id = "h1",
                    .has_activate_in = true, .activate_in = 0};
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(wait_until(flag_pred, &held_entered, 20000), "never delivered");
  bool found = false;
  timers_timer_info info;
  CHECK_OK(timers_inspect(eng, "inspect.held", "h1", &found, &info));
  CHECK(found);
  CHECK_EQ_INT(info.attempts, 1);
  CHECK(info.leased);
  CHECK(info.score > timers_now());
  timers_timer_info_free(&info);
  gate_open(&held_gate);
  CHECK(wait_not_pending(eng, "inspect.held", "h1", 20000));
}

int main(void) {
  test_redis_start(&rs, false);
  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  CHECK_OK(timers_subscribe(eng, "inspect.idle", noop, NULL, NULL));
  gate_init(&held_gate);
  CHECK_OK(timers_subscribe(eng, "inspect.held", hold, NULL, NULL));
  CHECK_OK(timers_engine_start(eng));
  TEST_RUN(test_inspect_one);
  TEST_RUN(test_inspect_held);
  TEST_RUN(test_depth);
  TEST_RUN(test_read_only);
  TEST_RUN(test_prometheus_stats);
  timers_engine_destroy(eng);
  gate_destroy(&held_gate);
  test_redis_stop(&rs);
  printf("test_inspect: ok\n");
  return 0;
}
