/*
 * config.c - defaults and range checks of timers_config and subscribe
 * options. Every rejected value is named with its allowed range.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "error.h"
#include "keys.h"
#include "validate.h"

void timers_config_init(timers_config *cfg) {
  *cfg = (timers_config){
      .redis = "127.0.0.1:6379",
      .connect_timeout_ms = 1000,
      .command_timeout_ms = 5000,
      .key_prefix = "timers",
      .shards = 8,
      .pollers = 1,
      .workers = 2,
      .ring_capacity = 4096,
      .claim_batch = 256,
      .lease_ms = 30000,
      .max_handler_ms = 300000,
      .dedup_window_ms = 10000,
      .max_attempts = 20,
      .retry_min_ms = 1000,
      .retry_max_ms = 300000,
      .dead_max = 100000,
      .dead_ttl_ms = 604800000,
      .max_sleep_ms = 30000,
      .drain_timeout_ms = 10000,
      .retry_ms = 1000,
      .faststream_timeline_key = "timers_timeline",
      .faststream_payloads_key = "timers_payloads",
      .log_level = TIMERS_LOG_WARN,
  };
}

#define TM_INT_(sec, f, lo, hi) \
  {sec, #f, TM_FIELD_INT, offsetof(timers_config, f), lo, hi}
#define TM_STR_(sec, name, f) \
  {sec, name, TM_FIELD_STRING, offsetof(timers_config, f), 0, 0}

const tm_field tm__config_fields[] = {
    TM_STR_("redis", "address", redis),
    TM_STR_("redis", "username", username),
    TM_STR_("redis", "password", password),
    TM_INT_("redis", db, 0, 1 << 20),
    TM_INT_("redis", connect_timeout_ms, 1, 3600000),
    TM_INT_("redis", command_timeout_ms, 1, 3600000),
    TM_INT_("redis", retry_ms, 0, 3600000),
    TM_STR_("redis", "key_prefix", key_prefix),
    TM_INT_("engine", shards, 1, TIMERS_SHARDS_MAX),
    TM_INT_("engine", pollers, 1, 64),
    TM_INT_("engine", workers, 1, 1024),
    TM_INT_("engine", ring_capacity, 4, 1 << 20),
    TM_INT_("engine", claim_batch, 1, TM_CLAIM_BATCH_MAX),
    TM_INT_("engine", lease_ms, 10, 86400000),
    TM_INT_("engine", max_handler_ms, 1, 86400000),
    TM_INT_("engine", dedup_window_ms, 0, 86400000),
    TM_INT_("engine", max_attempts, 0, 1000000),
    TM_INT_("engine", retry_min_ms, 1, 86400000),
    TM_INT_("engine", retry_max_ms, 1, 86400000),
    TM_INT_("engine", dead_max, 1, 100000000),
    TM_INT_("engine", dead_ttl_ms, 1000, 2000000000),
    TM_INT_("engine", max_sleep_ms, 1, 3600000),
    TM_INT_("engine", drain_timeout_ms, 0, 3600000),
    {"engine", "log_level", TM_FIELD_LEVEL, offsetof(timers_config, log_level),
     TIMERS_LOG_ERROR, TIMERS_LOG_DEBUG},
    TM_STR_("faststream", "timeline_key", faststream_timeline_key),
    TM_STR_("faststream", "payloads_key", faststream_payloads_key),
};
const size_t tm__config_field_count =
    sizeof tm__config_fields / sizeof *tm__config_fields;

/* 0 in lease_ms or shards means "the engine's"; the check skips it. */
const tm_field tm__topic_fields[] = {
    {"topic", "lease_ms", TM_FIELD_INT,
     offsetof(timers_subscribe_options, lease_ms), 10, 86400000},
    {"topic", "max_inflight", TM_FIELD_INT,
     offsetof(timers_subscribe_options, max_inflight), 0, 1 << 30},
    {"topic", "max_handler_ms", TM_FIELD_INT,
     offsetof(timers_subscribe_options, max_handler_ms), 1, 86400000},
    {"topic", "max_attempts", TM_FIELD_INT,
     offsetof(timers_subscribe_options, max_attempts), -1, 1000000},
    {"topic", "retry_min_ms", TM_FIELD_INT,
     offsetof(timers_subscribe_options, retry_min_ms), 1, 86400000},
    {"topic", "retry_max_ms", TM_FIELD_INT,
     offsetof(timers_subscribe_options, retry_max_ms), 1, 86400000},
    {"topic", "dead_letter_rejects", TM_FIELD_INT,
     offsetof(timers_subscribe_options, dead_letter_rejects), 0, 1},
    {"topic", "at_most_once", TM_FIELD_INT,
     offsetof(timers_subscribe_options, at_most_once), 0, 1},
    {"topic", "shards", TM_FIELD_INT,
     offsetof(timers_subscribe_options, shards), 1, TIMERS_SHARDS_MAX},
    {"topic", "layout", TM_FIELD_LAYOUT,
     offsetof(timers_subscribe_options, layout), TIMERS_LAYOUT_NATIVE,
     TIMERS_LAYOUT_FASTSTREAM},
};
const size_t tm__topic_field_count =
    sizeof tm__topic_fields / sizeof *tm__topic_fields;

int tm__layout_parse(const char *s) {
  if (strcasecmp(s, "native") == 0) return TIMERS_LAYOUT_NATIVE;
  if (strcasecmp(s, "faststream") == 0) return TIMERS_LAYOUT_FASTSTREAM;
  return -1;
}

int tm__log_level_parse(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, names[i]) == 0) return i;
  return -1;
}

static int check_ints(const void *base, const tm_field *f, size_t n,
                      const char *what, bool zero_is_default) {
  for (size_t k = 0; k < n; k++) {
    if (f[k].kind == TM_FIELD_STRING) continue;
    int v;
    memcpy(&v, (const char *)base + f[k].offset, sizeof v);
    if (zero_is_default && v == 0) continue;
    if (v < f[k].lo || v > f[k].hi)
      return tm__error(TIMERS_EINVAL, "%s %s = %d; allowed %d..%d", what,
                       f[k].name, v, f[k].lo, f[k].hi);
  }
  return TIMERS_OK;
}

int tm__config_check(const timers_config *c) {
  int rc = check_ints(c, tm__config_fields, tm__config_field_count, "config",
                      false);
  if (rc != TIMERS_OK) return rc;
  if (c->ring_capacity & (c->ring_capacity - 1))
    return tm__error(TIMERS_EINVAL,
                     "config ring_capacity = %d; must be a power of two",
                     c->ring_capacity);
  if (c->key_prefix)
    rc = tm__check_name("config key_prefix", c->key_prefix, TM_NAME_MAX);
  if (rc == TIMERS_OK && c->faststream_timeline_key)
    rc = tm__check_utf8("config faststream_timeline_key",
                        c->faststream_timeline_key, TM_BASE_MAX);
  if (rc == TIMERS_OK && c->faststream_payloads_key)
    rc = tm__check_utf8("config faststream_payloads_key",
                        c->faststream_payloads_key, TM_BASE_MAX);
  return rc;
}

int tm__subscribe_options_check(const timers_subscribe_options *o) {
  return check_ints(o, tm__topic_fields, tm__topic_field_count,
                    "subscribe option", true);
}
