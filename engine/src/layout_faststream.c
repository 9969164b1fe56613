/*
 * layout_faststream.c - the keys, envelope and lease protocol of the Python
 * library faststream-redis-timers (engine/FASTSTREAM.md), so Python
 * services and this engine share a topic's timers both ways:
 *   <timeline>:<topic>  sorted set, id -> activation time (float seconds)
 *   <payloads>:<topic>  hash, id -> FastStream BinaryMessageFormatV1
 * one shard, no hash tag (the library does not support Redis Cluster).
 * The library keeps no attempt counts, tombstones or wake messages: this
 * layout writes none (its attempts key is never created), polls at least
 * every poll_ms, and removes members that are not UTF-8 as the library's
 * due() does.
 */
#include "error.h"
#include "faststream.h"
#include "layout.h"
#include "validate.h"

#include <stdio.h>

static int check_topic(const char *topic) {
  return tm__check_utf8("topic", topic, TIMERS_TOPIC_MAX);
}

static int check_id(const char *id) {
  return tm__check_utf8("id", id, TIMERS_ID_MAX);
}

static void keys(tm_keys k, const tm_names *names, const char *topic,
                 uint32_t shard) {
  (void)shard;
  snprintf(k[TM_KEY_Z], TM_KEY_MAX, "%s:%s", names->fs_timeline, topic);
  snprintf(k[TM_KEY_P], TM_KEY_MAX, "%s:%s", names->fs_payloads, topic);
  /* Never written (the scripts only delete from it, or read it). */
  snprintf(k[TM_KEY_A], TM_KEY_MAX, "%s:fs-attempts:%s", names->prefix, topic);
  snprintf(k[TM_KEY_D], TM_KEY_MAX, "%s:fs-tombstones:%s", names->prefix,
           topic);
}

static size_t blob_size(const timers_timer *t) {
  size_t n = tm__fs_encode_size(t->headers, t->header_count, t->payload_len);
  if (n == 0)
    tm__error(TIMERS_ETOOBIG, "topic '%s' uses the faststream layout, whose "
              "header keys and values are at most 65535 bytes", t->topic);
  return n;
}

static void blob_encode(const timers_timer *t, double at, char *out) {
  (void)at; /* the score is the activation time; the envelope has none */
  tm__fs_encode(t->headers, t->header_count, t->payload, t->payload_len, out);
}

static size_t headers_bound(size_t len) {
  (void)len;
  return TIMERS_HEADERS_MAX;
}

static size_t strings_bound(size_t len) { return TM_FS_STRINGS_SIZE(len); }

static void decode(const char *blob, size_t len, double score,
                   tm_decoded *out, timers_header *headers, char *strings) {
  tm_fs_message m;
  tm__fs_decode(blob, len, &m, headers, strings);
  out->corrupt = false; /* raw bytes are a valid FastStream message */
  out->activate_at = score;
  out->payload = m.body;
  out->payload_len = m.body_len;
  out->headers = m.header_count ? headers : NULL;
  out->header_count = m.header_count;
}

const tm_layout_ops tm__layout_faststream = {
    .kind = TIMERS_LAYOUT_FASTSTREAM,
    .name = "faststream",
    .claim_flags = "u",
    .has_meta = false,
    .has_wake = false,
    .has_tombstones = false,
    .fixed_one_shard = true,
    .poll_ms = 50,
    .check_topic = check_topic,
    .check_id = check_id,
    .keys = keys,
    .blob_size = blob_size,
    .blob_encode = blob_encode,
    .headers_bound = headers_bound,
    .strings_bound = strings_bound,
    .decode = decode,
};
