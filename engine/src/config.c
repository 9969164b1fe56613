/*
 * config.c - defaults and range checks of timers_config. Every rejected
 * value is named with its allowed range.
 */
#include "config.h"

#include "error.h"
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
      .max_sleep_ms = 30000,
      .drain_timeout_ms = 10000,
      .retry_ms = 1000,
      .log_level = TIMERS_LOG_WARN,
  };
}

static int range(const char *name, int v, int lo, int hi) {
  if (v >= lo && v <= hi) return TIMERS_OK;
  return tm__error(TIMERS_EINVAL, "config %s = %d; allowed %d..%d", name, v,
                   lo, hi);
}

int tm__config_check(const timers_config *c) {
  int rc = TIMERS_OK;
#define TM_RANGE_(field, lo, hi) \
  if (rc == TIMERS_OK) rc = range(#field, c->field, lo, hi)
  TM_RANGE_(db, 0, 1 << 20);
  TM_RANGE_(connect_timeout_ms, 1, 3600000);
  TM_RANGE_(command_timeout_ms, 1, 3600000);
  TM_RANGE_(shards, 1, TIMERS_SHARDS_MAX);
  TM_RANGE_(pollers, 1, 64);
  TM_RANGE_(workers, 1, 1024);
  TM_RANGE_(ring_capacity, 4, 1 << 20);
  TM_RANGE_(claim_batch, 1, TM_CLAIM_BATCH_MAX);
  TM_RANGE_(lease_ms, 10, 86400000);
  TM_RANGE_(max_sleep_ms, 1, 3600000);
  TM_RANGE_(drain_timeout_ms, 0, 3600000);
  TM_RANGE_(retry_ms, 0, 3600000);
  TM_RANGE_(log_level, TIMERS_LOG_ERROR, TIMERS_LOG_DEBUG);
#undef TM_RANGE_
  if (rc != TIMERS_OK) return rc;
  if (c->ring_capacity & (c->ring_capacity - 1))
    return tm__error(TIMERS_EINVAL,
                     "config ring_capacity = %d; must be a power of two",
                     c->ring_capacity);
  if (c->key_prefix && tm__check_topic(c->key_prefix) != TIMERS_OK)
    return tm__error(TIMERS_EINVAL, "config key_prefix: %s",
                     timers_last_error());
  return TIMERS_OK;
}

int tm__subscribe_options_check(const timers_subscribe_options *o) {
  int rc = TIMERS_OK;
  if (o->lease_ms) rc = range("lease_ms", o->lease_ms, 10, 86400000);
  if (rc == TIMERS_OK) rc = range("max_inflight", o->max_inflight, 0, 1 << 30);
  if (rc == TIMERS_OK && o->shards)
    rc = range("shards", o->shards, 1, TIMERS_SHARDS_MAX);
  return rc;
}
