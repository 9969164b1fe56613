/*
 * test_bad_input.c - every invalid call fails with the documented code
 * (TIMERS_EINVAL / ETOOBIG / ESTATE / EEXIST / ECONN), leaves a non-empty
 * timers_last_error(), and writes nothing to Redis (DBSIZE is unchanged):
 * bad topics, ids, payloads, headers, times, batches with one bad timer,
 * bad engine configs and subscriptions, an unreachable Redis. Also: the
 * boundaries themselves are accepted; destroy(NULL) and stop twice are fine.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "test_util.h"

#define T_OK "bad.ok"
#define T_BATCH "bad.batch"

static redis_server rs;
static timers_engine *eng;

static timers_outcome noop_handler(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  return TIMERS_ACK;
}

static void setup(void) {
  test_redis_start(&rs, false);
  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  CHECK_OK(timers_subscribe(eng, "bad.sub", noop_handler, NULL, NULL));
  CHECK_OK(timers_engine_start(eng));
}

static void teardown(void) {
  CHECK_OK(timers_engine_stop(eng));
  CHECK_OK(timers_engine_stop(eng));
  timers_engine_destroy(eng);
  timers_engine_destroy(NULL);
  test_redis_stop(&rs);
}

static char *repeat(char c, size_t n) {
  char *s = xrealloc(NULL, n + 1);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* Limits and odd-but-legal values are accepted (written before the
 * DBSIZE baseline is taken). */
static void test_boundaries_accepted(void) {
  char *topic = repeat('t', TIMERS_TOPIC_MAX);
  char *id = repeat('i', TIMERS_ID_MAX);
  timers_timer t = timer_in(topic, id, 3600);
  char out[TIMERS_ID_MAX + 1];
  CHECK_OK(timers_schedule(eng, &t, out, sizeof out));
  CHECK(strcmp(out, id) == 0);
  CHECK(test_is_pending(eng, topic, id));
  t = timer_in("Az09_.-/x", "~!@#$%^&*()[]{}:;'\"<>?,./|\\`=+", 3600);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK(test_is_pending(eng, t.topic, t.id));
  timers_header hs[TIMERS_HEADERS_MAX];
  for (int i = 0; i < TIMERS_HEADERS_MAX; i++) hs[i] = (timers_header){"k", ""};
  t = timer_in(T_OK, "max-headers", 3600);
  t.headers = hs;
  t.header_count = TIMERS_HEADERS_MAX;
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  t = timer_at(T_OK, "ok", timers_now() + 3600);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  free(topic);
  free(id);
}

/* Schedules t alone, and as the middle of a batch of valid ones on a
 * fresh topic: both fail with code, the batch writes none. */
static void expect_rejected(const timers_timer *t, int code, const char *what) {
  int rc = timers_schedule(eng, t, NULL, 0);
  CHECK_MSG(rc == code, "%s: schedule returned %s, want %s", what,
            timers_err_name(rc), timers_err_name(code));
  CHECK_MSG(timers_last_error()[0], "%s: timers_last_error() is empty", what);
  timers_timer ts[5];
  for (int i = 0; i < 5; i++) ts[i] = timer_in(T_BATCH, NULL, 0);
  ts[3] = *t;
  rc = timers_schedule_batch(eng, ts, 5, NULL);
  CHECK_MSG(rc == code, "%s: schedule_batch returned %s, want %s", what,
            timers_err_name(rc), timers_err_name(code));
  CHECK_MSG(timers_last_error()[0], "%s: batch: empty timers_last_error()",
            what);
}

static void test_bad_topics(void) {
  char *long_topic = repeat('t', TIMERS_TOPIC_MAX + 1);
  const char *einval[] = {"", "a{b", "a}b", "{x}", "a b", "a:b", "a*b",
                          "a\nb", "caf\xc3\xa9", "tab\t"};
  const char *what[] = {"empty topic", "topic a{b", "topic a}b", "topic {x}",
                        "topic with space", "topic with ':'", "topic a*b",
                        "topic with newline", "non-ASCII topic",
                        "topic with tab"};
  for (size_t i = 0; i < sizeof einval / sizeof *einval; i++) {
    timers_timer t = timer_in(einval[i], "x", 1);
    expect_rejected(&t, TIMERS_EINVAL, what[i]);
  }
  timers_timer t = timer_in(NULL, "x", 1);
  expect_rejected(&t, TIMERS_EINVAL, "NULL topic");
  t = timer_in(long_topic, "x", 1);
  expect_rejected(&t, TIMERS_ETOOBIG, "topic over TIMERS_TOPIC_MAX");
  free(long_topic);
}

static void test_bad_ids(void) {
  char *long_id = repeat('i', TIMERS_ID_MAX + 1);
  const char *einval[] = {"", "a b", " ", "a\nb", "a\tb", "\x7f", "a\x01",
                          "caf\xc3\xa9"};
  const char *what[] = {"empty id", "id with space", "id ' '",
                        "id with newline", "id with tab", "id DEL",
                        "id with 0x01", "non-ASCII id"};
  for (size_t i = 0; i < sizeof einval / sizeof *einval; i++) {
    timers_timer t = timer_in(T_OK, einval[i], 1);
    expect_rejected(&t, TIMERS_EINVAL, what[i]);
  }
  timers_timer t = timer_in(T_OK, long_id, 1);
  expect_rejected(&t, TIMERS_ETOOBIG, "id over TIMERS_ID_MAX");
  free(long_id);
}

static void test_bad_payloads(void) {
  size_t big = (size_t)TIMERS_PAYLOAD_MAX + 1;
  char *p = xrealloc(NULL, big);
  memset(p, 'p', big);
  timers_timer t = timer_in(T_OK, "big", 1);
  t.payload = p;
  t.payload_len = big;
  expect_rejected(&t, TIMERS_ETOOBIG, "payload over TIMERS_PAYLOAD_MAX");
  /* Payload just under the limit plus a header over it. */
  char *value = repeat('v', 200);
  timers_header h = {"k", value};
  t.payload_len = TIMERS_PAYLOAD_MAX - 10;
  t.headers = &h;
  t.header_count = 1;
  expect_rejected(&t, TIMERS_ETOOBIG, "payload plus headers over the limit");
  t = timer_in(T_OK, "nullpayload", 1);
  t.payload = NULL;
  t.payload_len = 5;
  expect_rejected(&t, TIMERS_EINVAL, "NULL payload with a length");
  free(value);
  free(p);
}

static void test_bad_headers(void) {
  timers_header many[TIMERS_HEADERS_MAX + 1];
  for (int i = 0; i <= TIMERS_HEADERS_MAX; i++) many[i] = (timers_header){"k", "v"};
  timers_timer t = timer_in(T_OK, "h", 1);
  t.headers = many;
  t.header_count = TIMERS_HEADERS_MAX + 1;
  expect_rejected(&t, TIMERS_ETOOBIG, "over TIMERS_HEADERS_MAX headers");
  t.headers = NULL;
  t.header_count = 1;
  expect_rejected(&t, TIMERS_EINVAL, "NULL headers with a count");
  timers_header bad[][1] = {{{NULL, "v"}}, {{"", "v"}}, {{"k", NULL}}};
  for (int i = 0; i < 3; i++) {
    t.headers = bad[i];
    expect_rejected(&t, TIMERS_EINVAL, "header with NULL/empty key or NULL value");
  }
}

static void test_bad_times(void) {
  const double bad[] = {NAN, INFINITY, -INFINITY, -1.0, -1e-9};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    timers_timer t = timer_at(T_OK, "time", bad[i]);
    expect_rejected(&t, TIMERS_EINVAL, "bad activate_at");
    t = timer_in(T_OK, "time", bad[i]);
    expect_rejected(&t, TIMERS_EINVAL, "bad activate_in");
  }
  timers_timer t = timer_in(T_OK, "both", 1);
  t.has_activate_at = true;
  t.activate_at = timers_now() + 1;
  expect_rejected(&t, TIMERS_EINVAL, "both activate_at and activate_in");
  t.has_activate_at = t.has_activate_in = false;
  expect_rejected(&t, TIMERS_EINVAL, "neither activate_at nor activate_in");
}

static void test_bad_calls(void) {
  timers_timer t = timer_in(T_OK, "x", 1);
  char small[TIMERS_ID_MAX];
  CHECK_ERR(timers_schedule(eng, &t, small, sizeof small), TIMERS_EINVAL);
  CHECK_ERR(timers_schedule(NULL, &t, NULL, 0), TIMERS_EINVAL);
  CHECK_ERR(timers_schedule(eng, NULL, NULL, 0), TIMERS_EINVAL);
  CHECK_ERR(timers_schedule_batch(NULL, &t, 1, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_schedule_batch(eng, NULL, 3, NULL), TIMERS_EINVAL);
  bool b;
  uint64_t n;
  CHECK_ERR(timers_cancel(NULL, T_OK, "x", &b), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel(eng, NULL, "x", &b), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel(eng, "a b", "x", &b), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel(eng, T_OK, NULL, &b), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel(eng, T_OK, "a b", &b), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel_all(NULL, T_OK, &n), TIMERS_EINVAL);
  CHECK_ERR(timers_cancel_all(eng, "a:b", &n), TIMERS_EINVAL);
  CHECK_ERR(timers_is_pending(NULL, T_OK, "ok", &b), TIMERS_EINVAL);
  CHECK_ERR(timers_is_pending(eng, T_OK, "ok", NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_is_pending(eng, T_OK, "a\nb", &b), TIMERS_EINVAL);
  timers_pending_iter *it = NULL;
  CHECK_ERR(timers_pending_open(NULL, T_OK, false, 0, &it), TIMERS_EINVAL);
  CHECK_ERR(timers_pending_open(eng, "a}", false, 0, &it), TIMERS_EINVAL);
  CHECK(it == NULL);
  CHECK_ERR(timers_pending_open(eng, T_OK, false, 0, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_stats_get(NULL, NULL), TIMERS_EINVAL);
  timers_stats *s = NULL;
  CHECK_ERR(timers_stats_get(eng, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_stats_get(NULL, &s), TIMERS_EINVAL);
}

static void test_bad_subscribe(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *f = test_engine(&cfg);
  CHECK_ERR(timers_subscribe(NULL, "s", noop_handler, NULL, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_subscribe(f, "s", NULL, NULL, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_subscribe(f, NULL, noop_handler, NULL, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_subscribe(f, "", noop_handler, NULL, NULL), TIMERS_EINVAL);
  CHECK_ERR(timers_subscribe(f, "s{1}", noop_handler, NULL, NULL), TIMERS_EINVAL);
  timers_subscribe_options o = {.lease_ms = -1};
  CHECK_ERR(timers_subscribe(f, "s", noop_handler, NULL, &o), TIMERS_EINVAL);
  o = (timers_subscribe_options){.max_inflight = -1};
  CHECK_ERR(timers_subscribe(f, "s", noop_handler, NULL, &o), TIMERS_EINVAL);
  o = (timers_subscribe_options){.shards = -1};
  CHECK_ERR(timers_subscribe(f, "s", noop_handler, NULL, &o), TIMERS_EINVAL);
  CHECK_OK(timers_subscribe(f, "s", noop_handler, NULL, NULL));
  CHECK_ERR(timers_subscribe(f, "s", noop_handler, NULL, NULL), TIMERS_EEXIST);
  CHECK_OK(timers_engine_stop(f)); /* never started: nothing to stop */
  timers_engine_destroy(f);

  CHECK_ERR(timers_subscribe(eng, "late", noop_handler, NULL, NULL),
            TIMERS_ESTATE);
  CHECK_ERR(timers_engine_start(eng), TIMERS_ESTATE);
  CHECK_ERR(timers_engine_start(NULL), TIMERS_EINVAL);
}

typedef void (*cfg_mutator)(timers_config *cfg);
static void m_shards0(timers_config *c) { c->shards = 0; }
static void m_workers0(timers_config *c) { c->workers = 0; }
static void m_pollers0(timers_config *c) { c->pollers = 0; }
static void m_ring(timers_config *c) { c->ring_capacity = 1000; }
static void m_batch0(timers_config *c) { c->claim_batch = 0; }
static void m_lease(timers_config *c) { c->lease_ms = -1; }
static void m_prefix(timers_config *c) { c->key_prefix = "a b"; }
static void m_prefix2(timers_config *c) { c->key_prefix = "p{x}"; }

static void test_bad_config(void) {
  static char sentinel;
  timers_engine *e = (timers_engine *)(void *)&sentinel;
  CHECK_ERR(timers_engine_create(NULL, &e), TIMERS_EINVAL);
  CHECK(e == NULL);
  timers_config cfg;
  test_config(&cfg, &rs);
  CHECK_ERR(timers_engine_create(&cfg, NULL), TIMERS_EINVAL);
  const cfg_mutator bad[] = {m_shards0, m_workers0, m_pollers0, m_ring,
                             m_batch0,  m_lease,    m_prefix,   m_prefix2};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    test_config(&cfg, &rs);
    bad[i](&cfg);
    e = (timers_engine *)(void *)&sentinel;
    CHECK_ERR(timers_engine_create(&cfg, &e), TIMERS_EINVAL);
    CHECK_MSG(e == NULL, "bad config %zu: *out not NULL", i);
  }
  test_config(&cfg, &rs);
  cfg.shards = TIMERS_SHARDS_MAX + 1;
  int rc = timers_engine_create(&cfg, &e);
  CHECK_MSG(rc == TIMERS_EINVAL || rc == TIMERS_ETOOBIG,
            "shards over TIMERS_SHARDS_MAX: %s", timers_err_name(rc));
  CHECK(e == NULL);
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_unreachable(void) {
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", closed_port());
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.redis = addr;
  cfg.retry_ms = 200;
  cfg.connect_timeout_ms = 200;
  cfg.log_level = TIMERS_LOG_ERROR;
  timers_engine *e = test_engine(&cfg);
  timers_timer t = timer_in(T_OK, "x", 1);
  CHECK_ERR(timers_schedule(e, &t, NULL, 0), TIMERS_ECONN);
  CHECK_ERR(timers_schedule_batch(e, &t, 1, NULL), TIMERS_ECONN);
  bool b;
  CHECK_ERR(timers_cancel(e, T_OK, "x", &b), TIMERS_ECONN);
  CHECK_OK(timers_subscribe(e, "s", noop_handler, NULL, NULL));
  CHECK_ERR(timers_engine_start(e), TIMERS_ECONN);
  CHECK_OK(timers_engine_stop(e));
  timers_engine_destroy(e);
}

int main(void) {
  setup();
  TEST_RUN(test_boundaries_accepted);
  long long keys = test_dbsize(&rs);
  TEST_RUN(test_bad_topics);
  TEST_RUN(test_bad_ids);
  TEST_RUN(test_bad_payloads);
  TEST_RUN(test_bad_headers);
  TEST_RUN(test_bad_times);
  TEST_RUN(test_bad_calls);
  TEST_RUN(test_bad_subscribe);
  TEST_RUN(test_bad_config);
  TEST_RUN(test_unreachable);
  CHECK_MSG(test_dbsize(&rs) == keys, "invalid calls wrote to Redis: DBSIZE "
            "%lld, was %lld", test_dbsize(&rs), keys);
  size_t listed = 99;
  test_pending_has(eng, T_BATCH, false, 0, NULL, &listed);
  CHECK_EQ_INT(listed, 0);
  teardown();
  printf("test_bad_input: ok\n");
  return 0;
}
