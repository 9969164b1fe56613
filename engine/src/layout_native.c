/*
 * layout_native.c - this engine's own layout: N shards per topic (keys.h),
 * the binary envelope of codec.h (activation time, headers, payload),
 * attempts counted, tombstones for deduplication, wake messages.
 */
#include "alloc.h"
#include "codec.h"
#include "error.h"
#include "layout.h"
#include "validate.h"

static int check_topic(const char *topic) {
  return tm__check_name("topic", topic, TIMERS_TOPIC_MAX);
}

static void keys(tm_keys k, const tm_names *names, const char *topic,
                 uint32_t shard) {
  tm__native_keys(k, names->prefix, topic, shard);
}

static char *encode(const timers_timer *t, const char *id, double at,
                    size_t *len, int *err) {
  (void)id;
  *len = tm__envelope_size(t);
  char *out = tm__malloc(*len);
  if (!out) {
    *err = tm__error(TIMERS_ENOMEM, "out of memory");
    return NULL;
  }
  tm__envelope_encode(t, at, out);
  return out;
}

static size_t strings_bound(size_t len) { return len + 1; }

static void decode(const char *blob, size_t len, double score,
                   tm_decoded *out, timers_header *headers, char *strings) {
  tm_envelope env;
  out->corrupt = tm__envelope_decode(blob, len, &env, headers, strings) != 0;
  out->verdict = TM_DELIVER;
  out->activate_at = out->corrupt ? score : env.activate_at;
  out->payload = env.payload;
  out->payload_len = env.payload_len;
  out->headers = env.header_count ? headers : NULL;
  out->header_count = env.header_count;
}

const tm_layout_ops tm__layout_native = {
    .kind = TIMERS_LAYOUT_NATIVE,
    .name = "native",
    .claim_flags = "a",
    .has_meta = true,
    .has_wake = true,
    .has_tombstones = true,
    .has_dead_letters = true,
    .fixed_one_shard = false,
    .empty_header_keys = false,
    .max_headers = TIMERS_HEADERS_MAX,
    .poll_ms = 0,
    .check_topic = check_topic,
    .check_id = tm__check_ascii_id,
    .keys = keys,
    .id_generate = tm__id_generate,
    .encode = encode,
    .headers_bound = tm__envelope_headers_bound,
    .strings_bound = strings_bound,
    .decode = decode,
};
