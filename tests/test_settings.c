/*
 * test_settings.c - the INI settings loader (no Redis): every key lands in
 * timers_config or the topic options, the sample file in tools/ parses to
 * the defaults, environment variables override the file and
 * timers_settings_set overrides both, and each kind of bad input is an
 * error naming the file, line, section, key, value and allowed range.
 */
#include "test_util.h"

static char dir[] = "/tmp/timers-settings-XXXXXX";

static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_full_file(void) {
  const char *p = write_file("full.ini",
      "[redis]\naddress = /tmp/r.sock\nusername = app\npassword = s3cret\n"
      "db = 3\nconnect_timeout_ms = 250\ncommand_timeout_ms = 750\n"
      "retry_ms = 50\nkey_prefix = svc\n"
      "[engine]\nshards = 16\npollers = 2\nworkers = 4\nring_capacity = 1024\n"
      "claim_batch = 128\nlease_ms = 5000\nmax_sleep_ms = 2000\n"
      "drain_timeout_ms = 100\nlog_level = debug\n"
      "[topic orders]\nshards = 32\nlease_ms = 60000\nmax_inflight = 7\n");
  timers_settings *s;
  CHECK_OK(timers_settings_load(p, &s));
  const timers_config *c = timers_settings_config(s);
  CHECK(strcmp(c->redis, "/tmp/r.sock") == 0);
  CHECK(strcmp(c->username, "app") == 0 && strcmp(c->password, "s3cret") == 0);
  CHECK(c->db == 3 && c->connect_timeout_ms == 250 && c->command_timeout_ms == 750);
  CHECK(c->retry_ms == 50 && strcmp(c->key_prefix, "svc") == 0);
  CHECK(c->shards == 16 && c->pollers == 2 && c->workers == 4);
  CHECK(c->ring_capacity == 1024 && c->claim_batch == 128 && c->lease_ms == 5000);
  CHECK(c->max_sleep_ms == 2000 && c->drain_timeout_ms == 100);
  CHECK(c->log_level == TIMERS_LOG_DEBUG);
  timers_subscribe_options o;
  CHECK(timers_settings_topic(s, "orders", &o));
  CHECK(o.shards == 32 && o.lease_ms == 60000 && o.max_inflight == 7);
  CHECK(!timers_settings_topic(s, "other", &o));
  CHECK(o.shards == 0);
  CHECK_EQ_INT(timers_settings_topic_count(s), 1);
  CHECK(strcmp(timers_settings_topic_name(s, 0), "orders") == 0);
  /* The loaded config is a valid engine config. */
  timers_engine *e;
  CHECK_OK(timers_engine_create(c, &e));
  timers_engine_destroy(e);
  timers_settings_free(s);
}

static void test_sample_is_defaults(void) {
  timers_settings *s;
  CHECK_OK(timers_settings_load(TIMERS_SOURCE_DIR "/tools/timers.sample.ini", &s));
  const timers_config *c = timers_settings_config(s);
  timers_config d;
  timers_config_init(&d);
  CHECK(strcmp(c->redis, d.redis) == 0 && strcmp(c->key_prefix, d.key_prefix) == 0);
  CHECK(c->username == NULL && c->password == NULL);
  CHECK(c->shards == d.shards && c->pollers == d.pollers && c->workers == d.workers);
  CHECK(c->ring_capacity == d.ring_capacity && c->claim_batch == d.claim_batch);
  CHECK(c->lease_ms == d.lease_ms && c->max_sleep_ms == d.max_sleep_ms);
  CHECK(c->drain_timeout_ms == d.drain_timeout_ms && c->retry_ms == d.retry_ms);
  CHECK(c->log_level == d.log_level);
  timers_settings_free(s);
}

static void test_overrides(void) {
  const char *p = write_file("o.ini", "[engine]\nshards = 4\nworkers = 3\n");
  setenv("TIMERS_ENGINE_SHARDS", "12", 1);
  setenv("TIMERS_REDIS_ADDRESS", "10.0.0.1:7000", 1);
  timers_settings *s;
  CHECK_OK(timers_settings_load(p, &s));
  const timers_config *c = timers_settings_config(s);
  CHECK_EQ_INT(c->shards, 12);
  CHECK_EQ_INT(c->workers, 3);
  CHECK(strcmp(c->redis, "10.0.0.1:7000") == 0);
  CHECK_OK(timers_settings_set(s, "engine", "shards", "20"));
  CHECK_OK(timers_settings_set(s, "topic load.0", "max_inflight", "5"));
  CHECK_EQ_INT(timers_settings_config(s)->shards, 20);
  timers_subscribe_options o;
  CHECK(timers_settings_topic(s, "load.0", &o) && o.max_inflight == 5);
  CHECK_ERR(timers_settings_set(s, "engine", "shards", "0"), TIMERS_EINVAL);
  timers_settings_free(s);

  setenv("TIMERS_ENGINE_SHARDS", "lots", 1);
  CHECK_ERR(timers_settings_load(NULL, &s), TIMERS_EINVAL);
  CHECK(strstr(timers_last_error(), "TIMERS_ENGINE_SHARDS") != NULL);
  unsetenv("TIMERS_ENGINE_SHARDS");
  unsetenv("TIMERS_REDIS_ADDRESS");
  CHECK_OK(timers_settings_load(NULL, &s));
  CHECK_EQ_INT(timers_settings_config(s)->shards, 8);
  timers_settings_free(s);
}

/* Each bad file: the error names file:line and the offending part. */
static void expect_error(const char *text, const char *want1, const char *want2) {
  const char *p = write_file("bad.ini", text);
  timers_settings *s = (timers_settings *)1;
  CHECK_ERR(timers_settings_load(p, &s), TIMERS_EINVAL);
  CHECK(s == NULL);
  const char *msg = timers_last_error();
  CHECK_MSG(strstr(msg, p) && strstr(msg, want1) && strstr(msg, want2),
            "message \"%s\" lacks \"%s\" / \"%s\"", msg, want1, want2);
}

static void test_errors(void) {
  expect_error("[engine]\n\nshards = 0\n", ":3: [engine] shards = 0", "1..4096");
  expect_error("[engine]\nworkers = two\n", "workers = two", "1..1024");
  expect_error("[engine]\nring_capacity = 1000\n", "ring_capacity", "power of two");
  expect_error("[engine]\nlog_level = loud\n", "log_level = loud", "debug");
  expect_error("[engine]\nshard = 4\n", ":2:", "unknown key");
  expect_error("[nope]\nx = 1\n", "[nope]", "unknown section");
  expect_error("[redis]\nkey_prefix = a{b}\n", "key_prefix", "character");
  expect_error("[topic bad\xff]\nshards = 2\n", "[topic bad\xff]", "UTF-8");
  expect_error("[topic t]\nlease_ms = 1\n", "lease_ms = 1", "10..86400000");
  expect_error("[engine]\nthis is not ini\n", ":2:", "");
  expect_error("[redis]\nkey_prefix =\n", "key_prefix", "empty");
  expect_error("[redis]\naddress =\n", "address", "empty");
  expect_error("[topic t]\nlayout = python\n", "layout = python", "faststream");
  timers_settings *s;
  CHECK_ERR(timers_settings_load("/nonexistent/timers.ini", &s), TIMERS_EINVAL);
  CHECK(strstr(timers_last_error(), "/nonexistent/timers.ini") != NULL);
  CHECK_ERR(timers_settings_load(NULL, NULL), TIMERS_EINVAL);
  timers_settings_free(NULL);
}

/* Every setting is listed once, in file order, with its effective value. */
static void test_entries(void) {
  const char *p = write_file("e.ini", "[redis]\npassword = pw\n"
                                      "[topic fs]\nlayout = faststream\n");
  timers_settings *s;
  CHECK_OK(timers_settings_load(p, &s));
  timers_setting t;
  size_t n = 0;
  bool saw_pw = false, saw_layout = false, saw_shards = false;
  for (; timers_settings_entry(s, n, &t) == TIMERS_OK; n++) {
    if (strcmp(t.key, "password") == 0)
      saw_pw = t.secret && strcmp(t.value, "pw") == 0;
    if (strcmp(t.section, "topic fs") == 0 && strcmp(t.key, "layout") == 0)
      saw_layout = strcmp(t.value, "faststream") == 0;
    if (strcmp(t.section, "engine") == 0 && strcmp(t.key, "shards") == 0)
      saw_shards = t.is_number && strcmp(t.value, "8") == 0;
  }
  CHECK(saw_pw && saw_layout && saw_shards);
  CHECK_ERR(timers_settings_entry(s, n, &t), TIMERS_EDONE);
  timers_settings_free(s);
}

int main(void) {
  CHECK(mkdtemp(dir) != NULL);
  TEST_RUN(test_full_file);
  TEST_RUN(test_sample_is_defaults);
  TEST_RUN(test_overrides);
  TEST_RUN(test_errors);
  TEST_RUN(test_entries);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  printf("test_settings: ok\n");
  return 0;
}
