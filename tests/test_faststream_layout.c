/*
 * test_faststream_layout.c - the FASTSTREAM topic layout against the
 * faststream-redis-timers protocol as written in the issue: keys
 * timers_timeline:<topic> (sorted set, score = activation time in Unix
 * seconds) and timers_payloads:<topic> (hash, FastStream BinaryMessageFormatV1
 * envelopes), one shard, claim moves the score forward by the lease, ack
 * removes, nack lets the lease run out. The "Python side" here is raw Redis
 * commands with envelopes built byte by byte.
 */
#include <hiredis.h>

#include "faststream_fixture.h"
#include "test_util.h"

#define T_PY "fs.orders"
#define T_C "fs.out"

static redis_server rs;
static fired_log fired;
static int nack_first = 0;

static redisContext *raw(void) {
  struct timeval tv = {2, 0};
  redisContext *c = rs.unix_socket ? redisConnectUnixWithTimeout(rs.addr, tv)
                                   : redisConnectWithTimeout("127.0.0.1", rs.port, tv);
  CHECK(c && !c->err);
  return c;
}

/* body {"x":1} after the fixture's headers */
static const unsigned char envelope[] = {FS_FIXTURE_HEAD,
                                         '{', '"', 'x', '"', ':', '1', '}'};

static gate nack_gate; /* the first delivery NACKs once the test looked */

static timers_outcome handler(const timers_message *m, void *ud) {
  (void)ud;
  unsigned n = fired_log_record(&fired, m);
  if (__atomic_load_n(&nack_first, __ATOMIC_ACQUIRE) && n == 1) {
    gate_wait(&nack_gate);
    return TIMERS_NACK;
  }
  return TIMERS_ACK;
}

static timers_engine *fs_engine(const char *topic, int lease_ms, bool start) {
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options o = {.layout = TIMERS_LAYOUT_FASTSTREAM,
                                .lease_ms = lease_ms};
  if (start) {
    CHECK_OK(timers_subscribe(e, topic, handler, NULL, &o));
    CHECK_OK(timers_engine_start(e));
  } else {
    CHECK_OK(timers_declare(e, topic, &o));
  }
  return e;
}

/* A timer written as the Python library writes it fires here, with its
 * headers and body, and the ack removes it from both keys. */
static void test_python_to_c(void) {
  CHECK_EQ_INT(sizeof envelope, FS_FIXTURE_BODY_OFFSET + 7);
  redisContext *c = raw();
  double at = timers_now() - 0.5;
  freeReplyObject(redisCommand(c, "ZADD timers_timeline:%s %.6f py-1", T_PY, at));
  freeReplyObject(redisCommand(c, "HSET timers_payloads:%s py-1 %b", T_PY,
                               envelope, sizeof envelope));
  timers_engine *e = fs_engine(T_PY, 30000, true);
  CHECK_MSG(fired_wait_distinct(&fired, 1, 20000), "py-1 never fired");
  fired_rec r;
  CHECK(fired_log_get(&fired, "py-1", &r));
  CHECK(fired_log_payload_eq(&fired, "py-1", T_PY, "{\"x\":1}", 7));
  char v[64];
  size_t count = 0;
  CHECK(fired_log_header(&fired, "py-1", "content-type", v, sizeof v, &count));
  CHECK(strcmp(v, "application/json") == 0 && count == 2);
  CHECK(fired_log_header(&fired, "py-1", "correlation_id", v, sizeof v, &count));
  CHECK(strcmp(v, "abc") == 0);
  CHECK_EQ_INT(r.max_attempt, 0); /* not tracked in this layout */
  CHECK_MSG(wait_not_pending(e, T_PY, "py-1", 10000), "ack did not remove py-1");
  redisReply *k = redisCommand(c, "EXISTS timers_payloads:%s", T_PY);
  CHECK(k && k->integer == 0); /* the hash emptied, so it is gone */
  freeReplyObject(k);
  /* Nothing of the native layout was written for this topic. */
  k = redisCommand(c, "KEYS timers:*");
  CHECK_MSG(k && k->elements == 0, "native keys appeared: %zu", k ? k->elements : 0);
  freeReplyObject(k);
  timers_engine_destroy(e);
  redisFree(c);
}

/* The Python library publishes no wake-up: a timer it writes while the
 * engine idles is still found within TM_FASTSTREAM_POLL_MS, not after the
 * engine's 30 s longest sleep. */
static void test_python_while_idle(void) {
  timers_engine *e = fs_engine(T_PY, 30000, true);
  sleep_ms(300); /* idle: the shard was looked at and found empty */
  redisContext *c = raw();
  double at = timers_now() + 0.2;
  freeReplyObject(redisCommand(c, "ZADD timers_timeline:%s %.6f py-idle",
                               T_PY, at));
  freeReplyObject(redisCommand(c, "HSET timers_payloads:%s py-idle %b", T_PY,
                               envelope, sizeof envelope));
  size_t before = fired_log_distinct(&fired);
  CHECK_MSG(fired_wait_distinct(&fired, before + 1, 10000),
            "a timer written by another client while idle never fired");
  fired_rec r;
  CHECK(fired_log_get(&fired, "py-idle", &r));
  CHECK_MSG(r.first_fire - at < 5.0, "fired %.3f s late", r.first_fire - at);
  timers_engine_destroy(e);
  redisFree(c);
}

/* A timer scheduled here is exactly what the Python library reads. */
static void test_c_to_python(void) {
  timers_engine *e = fs_engine(T_C, 30000, false);
  timers_header hs[] = {{"content-type", "application/json"},
                        {"correlation_id", "abc"}};
  double at = timers_now() + 3600;
  timers_timer t = {.topic = T_C, .id = "c-1", .payload = "{\"x\":1}",
                    .payload_len = 7, .headers = hs, .header_count = 2,
                    .has_activate_at = true, .activate_at = at};
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  redisContext *c = raw();
  redisReply *s = redisCommand(c, "ZSCORE timers_timeline:%s c-1", T_C);
  CHECK(s && s->type == REDIS_REPLY_STRING);
  CHECK_MSG(fabs(strtod(s->str, NULL) - at) < 1e-5, "score %s", s->str);
  freeReplyObject(s);
  redisReply *p = redisCommand(c, "HGET timers_payloads:%s c-1", T_C);
  CHECK(p && p->type == REDIS_REPLY_STRING);
  /* as Python's publish writes it: correlation_id first */
  static const unsigned char published[] = {FS_FIXTURE_HEAD_PUBLISH, '{', '"',
                                            'x', '"', ':', '1', '}'};
  CHECK_EQ_INT(p->len, sizeof published);
  CHECK(memcmp(p->str, published, sizeof published) == 0);
  freeReplyObject(p);
  bool pending = false;
  CHECK_OK(timers_is_pending(e, T_C, "c-1", &pending));
  CHECK(pending);
  uint64_t n = 0;
  CHECK_OK(timers_cancel_all(e, T_C, &n));
  CHECK_EQ_INT(n, 1);
  timers_engine_destroy(e);
  redisFree(c);
}

/* A claim moves the score forward by the lease; a nack changes nothing,
 * as in the library: the timer fires again when that lease runs out, not
 * after the engine's retry backoff (retry_min_ms is 1 s, the lease 3 s). */
static void test_lease_protocol(void) {
  gate_init(&nack_gate);
  __atomic_store_n(&nack_first, 1, __ATOMIC_RELEASE);
  redisContext *c = raw();
  double at = timers_now() - 0.1;
  freeReplyObject(redisCommand(c, "ZADD timers_timeline:%s %.6f py-2", T_PY, at));
  freeReplyObject(redisCommand(c, "HSET timers_payloads:%s py-2 %b", T_PY,
                               envelope, sizeof envelope));
  double before = timers_now();
  size_t total = fired_log_total(&fired);
  timers_engine *e = fs_engine(T_PY, 3000, true);
  CHECK_MSG(fired_wait_total(&fired, total + 1, 20000), "py-2 never fired");
  redisReply *s = redisCommand(c, "ZSCORE timers_timeline:%s py-2", T_PY);
  CHECK(s && s->type == REDIS_REPLY_STRING);
  double leased = strtod(s->str, NULL);
  freeReplyObject(s);
  CHECK_MSG(leased >= before + 3.0 - 0.05 && leased <= timers_now() + 3.0 + 0.05,
            "score %.6f is not claim time + 3 s lease", leased);
  gate_open(&nack_gate);
  CHECK_MSG(fired_wait_total(&fired, total + 2, 20000), "py-2 not redelivered");
  fired_rec r;
  CHECK(fired_log_get(&fired, "py-2", &r));
  CHECK_MSG(r.last_fire >= leased - 0.05,
            "redelivered at %.3f, before its lease ran out at %.3f",
            r.last_fire, leased);
  CHECK_MSG(wait_not_pending(e, T_PY, "py-2", 10000), "py-2 not removed");
  timers_engine_destroy(e);
  redisFree(c);
}

static void test_custom_key_names(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.faststream_timeline_key = "tl";
  cfg.faststream_payloads_key = "pl";
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options o = {.layout = TIMERS_LAYOUT_FASTSTREAM};
  CHECK_OK(timers_declare(e, "fs.custom", &o));
  timers_timer t = {.topic = "fs.custom", .id = "k", .has_activate_in = true,
                    .activate_in = 60};
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  redisContext *c = raw();
  redisReply *s = redisCommand(c, "ZSCORE tl:fs.custom k");
  CHECK(s && s->type == REDIS_REPLY_STRING);
  freeReplyObject(s);
  s = redisCommand(c, "HEXISTS pl:fs.custom k");
  CHECK(s && s->integer == 1);
  freeReplyObject(s);
  redisFree(c);
  cfg.faststream_payloads_key = "bad\xffkey"; /* not UTF-8 */
  timers_engine *bad = NULL;
  CHECK_ERR(timers_engine_create(&cfg, &bad), TIMERS_EINVAL);
  timers_engine_destroy(e);
}

/* declare() takes what subscribe() takes, and refuses the same things. */
static void test_declare_errors(void) {
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options bad = {.layout = (timers_layout)7};
  CHECK_ERR(timers_declare(e, "fs.bad", &bad), TIMERS_EINVAL);
  CHECK_ERR(timers_subscribe(e, "fs.bad", handler, NULL, &bad), TIMERS_EINVAL);
  CHECK_ERR(timers_declare(e, "bad topic", NULL), TIMERS_EINVAL);
  CHECK_OK(timers_declare(e, "fs.d", NULL));
  CHECK_ERR(timers_declare(e, "fs.d", NULL), TIMERS_EEXIST);
  CHECK_ERR(timers_subscribe(e, "fs.d", handler, NULL, NULL), TIMERS_EEXIST);
  CHECK_OK(timers_subscribe(e, "fs.s", handler, NULL, NULL));
  CHECK_ERR(timers_declare(e, "fs.s", NULL), TIMERS_EEXIST);
  CHECK_OK(timers_engine_start(e));
  CHECK_ERR(timers_declare(e, "fs.late", NULL), TIMERS_ESTATE);
  CHECK_ERR(timers_declare(NULL, "fs.x", NULL), TIMERS_EINVAL);
  timers_engine_destroy(e);
}

int main(void) {
  test_redis_start(&rs, false);
  fired_log_init(&fired);
  TEST_RUN(test_python_to_c);
  TEST_RUN(test_python_while_idle);
  TEST_RUN(test_c_to_python);
  TEST_RUN(test_lease_protocol);
  TEST_RUN(test_custom_key_names);
  TEST_RUN(test_declare_errors);
  fired_log_free(&fired);
  test_redis_stop(&rs);
  printf("test_faststream_layout: ok\n");
  return 0;
}
