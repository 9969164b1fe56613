/*
 * test_unit.c - what needs no Redis: error names and messages for every code,
 * the documented shard hash (FNV-1a 32-bit modulo n, recomputed here),
 * timers_config_init defaults, the lateness buckets, timers_now, and that
 * engine_create connects nothing.
 */
#include "test_util.h"

/* Codes are part of the ABI: compared with literal numbers and texts, so a
 * renumbered or renamed code fails here. */
static void test_error_table(void) {
  static const struct {
    int code;
    const char *name, *msg;
  } want[] = {
      {0, "TIMERS_OK", "success"},
      {-1, "TIMERS_EINVAL", "invalid argument"},
      {-2, "TIMERS_ENOMEM", "out of memory"},
      {-3, "TIMERS_ECONN", "cannot reach Redis"},
      {-4, "TIMERS_EREDIS", "Redis replied with an error"},
      {-5, "TIMERS_ESTATE", "operation not allowed in the engine's current state"},
      {-6, "TIMERS_EEXIST", "already exists"},
      {-7, "TIMERS_ESHARDS", "shard count differs from the one recorded in Redis"},
      {-8, "TIMERS_ETOOBIG", "value exceeds a documented limit"},
      {-9, "TIMERS_ESYS", "system call failed"},
      {-10, "TIMERS_EDONE", "iteration finished"},
      {-11, "TIMERS_ELEASE", "the timer's lease was lost to another holder"},
  };
  CHECK_EQ_INT(TIMERS_OK, 0);
  CHECK_EQ_INT(TIMERS_EINVAL, -1);
  CHECK_EQ_INT(TIMERS_ENOMEM, -2);
  CHECK_EQ_INT(TIMERS_ECONN, -3);
  CHECK_EQ_INT(TIMERS_EREDIS, -4);
  CHECK_EQ_INT(TIMERS_ESTATE, -5);
  CHECK_EQ_INT(TIMERS_EEXIST, -6);
  CHECK_EQ_INT(TIMERS_ESHARDS, -7);
  CHECK_EQ_INT(TIMERS_ETOOBIG, -8);
  CHECK_EQ_INT(TIMERS_ESYS, -9);
  CHECK_EQ_INT(TIMERS_EDONE, -10);
  CHECK_EQ_INT(TIMERS_ELEASE, -11);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    CHECK_MSG(strcmp(timers_err_name(want[i].code), want[i].name) == 0,
              "name of %d: %s", want[i].code, timers_err_name(want[i].code));
    CHECK_MSG(strcmp(timers_strerror(want[i].code), want[i].msg) == 0,
              "text of %d: %s", want[i].code, timers_strerror(want[i].code));
  }
  int codes = 0;
#define COUNT_(name, code, msg) codes++;
  TIMERS_ERRNO_MAP(COUNT_)
#undef COUNT_
  CHECK_EQ_INT(codes, (int)(sizeof want / sizeof *want));
  /* Unknown codes still give text. */
  const int unknown[] = {1, -12, -1000, 12345};
  for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
    CHECK(strcmp(timers_strerror(unknown[i]), "unknown error") == 0);
    CHECK(strcmp(timers_err_name(unknown[i]), "TIMERS_UNKNOWN") == 0);
  }
  CHECK(timers_last_error() != NULL);
}

/* FNV-1a 32-bit, written out independently of the engine. */
static uint32_t expect_shard(const char *id, size_t len, uint32_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)id[i];
    h *= 16777619u;
  }
  return h % n;
}

static void test_shard_of(void) {
  CHECK_EQ_INT(expect_shard("a", 1, 0xffffffffu), 0xe40c292cu % 0xffffffffu);
  CHECK_EQ_INT(timers_shard_of("a", 1, 0xffffffffu), 0xe40c292cu % 0xffffffffu);
  CHECK_EQ_INT(timers_shard_of("", 0, 1000), 2166136261u % 1000);
  /* Known FNV-1a values: "a" = 0xe40c292c, "foobar" = 0xbf9cf968. */
  CHECK_EQ_INT(timers_shard_of("a", 1, 8), 0xe40c292cu % 8);
  CHECK_EQ_INT(timers_shard_of("a", 1, 4096), 0xe40c292cu % 4096);
  CHECK_EQ_INT(timers_shard_of("foobar", 6, 7), 0xbf9cf968u % 7);
  const char *ids[] = {"order-1", "order-2", "x", "0123456789abcdef",
                       "timer:with:colons", "~!@#$%^&*()"};
  const uint32_t ns[] = {1, 2, 3, 8, 16, 1000, 4096};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
    for (size_t j = 0; j < sizeof ns / sizeof *ns; j++) {
      size_t len = strlen(ids[i]);
      uint32_t got = timers_shard_of(ids[i], len, ns[j]);
      CHECK_EQ_INT(got, expect_shard(ids[i], len, ns[j]));
      CHECK(got < ns[j]);
      CHECK_EQ_INT(timers_shard_of(ids[i], len, ns[j]), got); /* stable */
    }
  /* Only id_len bytes count: "ab" with length 1 is "a". */
  CHECK_EQ_INT(timers_shard_of("ab", 1, 1000), timers_shard_of("a", 1, 1000));
  /* Bytes with the high bit set hash as unsigned. */
  CHECK_EQ_INT(timers_shard_of("\xff\x80", 2, 977), expect_shard("\xff\x80", 2, 977));
}

static void test_config_defaults(void) {
  timers_config cfg;
  memset(&cfg, 0xab, sizeof cfg);
  timers_config_init(&cfg);
  CHECK(cfg.username == NULL);
  CHECK(cfg.password == NULL);
  CHECK_EQ_INT(cfg.db, 0);
  CHECK_EQ_INT(cfg.connect_timeout_ms, 1000);
  CHECK_EQ_INT(cfg.command_timeout_ms, 5000);
  CHECK(cfg.key_prefix != NULL && strcmp(cfg.key_prefix, "timers") == 0);
  CHECK_EQ_INT(cfg.shards, 8);
  CHECK_EQ_INT(cfg.pollers, 1);
  CHECK_EQ_INT(cfg.workers, 2);
  CHECK_EQ_INT(cfg.ring_capacity, 4096);
  CHECK_EQ_INT(cfg.claim_batch, 256);
  CHECK_EQ_INT(cfg.lease_ms, 30000);
  CHECK_EQ_INT(cfg.max_sleep_ms, 30000);
  CHECK_EQ_INT(cfg.drain_timeout_ms, 10000);
  CHECK_EQ_INT(cfg.retry_ms, 1000);
  CHECK(cfg.log == NULL);
  CHECK(cfg.log_level == TIMERS_LOG_WARN);
}

static void test_lateness_buckets(void) {
  uint64_t prev = timers_lateness_bound_us(0);
  CHECK(prev > 0);
  for (int i = 1; i < TIMERS_LATENCY_BUCKETS; i++) {
    uint64_t b = timers_lateness_bound_us(i);
    CHECK_MSG(b > prev, "bound(%d) = %" PRIu64 " <= bound(%d) = %" PRIu64, i,
              b, i - 1, prev);
    prev = b;
  }
  /* The buckets reach far enough for real lateness (at least a minute). */
  CHECK(timers_lateness_bound_us(TIMERS_LATENCY_BUCKETS - 1) >= 60000000u);

  timers_stats s;
  memset(&s, 0, sizeof s);
  CHECK(timers_stats_lateness_ms(&s, 0.5) == 0.0);
  s.lateness[5] = 10;
  double want = (double)timers_lateness_bound_us(5) / 1000.0;
  CHECK(fabs(timers_stats_lateness_ms(&s, 0.5) - want) < 1e-9);
  CHECK(fabs(timers_stats_lateness_ms(&s, 1.0) - want) < 1e-9);
  s.lateness[20] = 90; /* 10 % in bucket 5, 90 % in bucket 20 */
  double hi = (double)timers_lateness_bound_us(20) / 1000.0;
  CHECK(fabs(timers_stats_lateness_ms(&s, 0.05) - want) < 1e-9);
  CHECK(fabs(timers_stats_lateness_ms(&s, 0.5) - hi) < 1e-9);
  CHECK(fabs(timers_stats_lateness_ms(&s, 0.99) - hi) < 1e-9);
}

static void test_now(void) {
  double a = timers_now();
  CHECK(fabs(a - (double)time(NULL)) < 2.0);
  double b = timers_now();
  CHECK(b >= a - 0.5); /* wall clock; allow a small step */
}

static void test_create_connects_nothing(void) {
  timers_config cfg;
  timers_config_init(&cfg);
  cfg.redis = "127.0.0.1:1"; /* nothing listens there */
  timers_engine *e = NULL;
  CHECK_OK(timers_engine_create(&cfg, &e));
  CHECK(e != NULL);
  timers_engine_destroy(e);
  timers_engine_destroy(NULL);
  timers_pending_close(NULL);
}

/* Label values are escaped (FASTSTREAM topics may hold any text). */
static void test_prometheus_labels(void) {
  timers_shard_depth per = {.shard = 0, .pending = 3};
  timers_topic_depth d = {.shards = 1, .now = 100, .per_shard = &per};
  const timers_topic_depth *ds[] = {&d};
  const char *topics[] = {"a\"b\\c\nd"};
  char buf[4096];
  size_t n = timers_topic_depth_prometheus(ds, topics, 1, buf, sizeof buf);
  CHECK(n < sizeof buf);
  CHECK_MSG(strstr(buf, "timers_pending{topic=\"a\\\"b\\\\c\\nd\",shard=\"0\"} 3\n"),
            "%s", buf);
}

int main(void) {
  TEST_RUN(test_error_table);
  TEST_RUN(test_prometheus_labels);
  TEST_RUN(test_shard_of);
  TEST_RUN(test_config_defaults);
  TEST_RUN(test_lateness_buckets);
  TEST_RUN(test_now);
  TEST_RUN(test_create_connects_nothing);
  printf("test_unit: ok\n");
  return 0;
}
