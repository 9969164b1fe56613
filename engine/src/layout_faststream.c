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
 * due() does. It writes what the library's publish writes (correlation_id,
 * content-type by the body, the caller's headers as a dict update) and
 * reads as its parser reads, including what Python never hands to a
 * handler (dropped, or stuck).
 */
#include <stdio.h>

#include "alloc.h"
#include "error.h"
#include "faststream.h"
#include "keys.h"
#include "layout.h"
#include "validate.h"

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
  /* Never written (the scripts only delete from them, or read them: no
   * attempts, dead letters or tombstones in this layout). */
  snprintf(k[TM_KEY_A], TM_KEY_MAX, "%s:fs-attempts:%s", names->prefix, topic);
  snprintf(k[TM_KEY_X], TM_KEY_MAX, "%s:fs-dead:%s", names->prefix, topic);
  snprintf(k[TM_KEY_Y], TM_KEY_MAX, "%s:fs-dead-records:%s", names->prefix,
           topic);
  snprintf(k[TM_KEY_D], TM_KEY_MAX, "%s:fs-tombstones:%s", names->prefix,
           topic);
  /* Written when the topic's shard is owned (subscribe option owned). */
  snprintf(k[TM_KEY_O], TM_KEY_MAX, "%s:fs-owner:%s", names->prefix, topic);
}

/* What Python's TimersBroker.publish writes for t: headers correlation_id
 * (the id), content-type by the body, then the caller's as a dict update;
 * the V1 envelope of those and the body. */
static char *encode(const timers_timer *t, const char *id, double at,
                    size_t *len, int *err) {
  (void)at; /* the score is the activation time; the envelope has none */
  timers_header small[16];
  timers_header *h = t->header_count + 2 <= 16
                         ? small
                         : tm__malloc(sizeof *h * (t->header_count + 2));
  char *out = NULL;
  if (!h) {
    *err = tm__error(TIMERS_ENOMEM, "out of memory");
    return NULL;
  }
  const char *ct = tm__fs_content_type(t->payload, t->payload_len, NULL);
  size_t nh = tm__fs_publish_headers(id, ct, t->headers, t->header_count, h);
  *len = tm__fs_encode_size(h, nh, t->payload_len);
  if (*len == 0)
    *err = tm__error(TIMERS_ETOOBIG, "topic '%s' uses the faststream layout: "
                     "at most 65535 headers, keys and values of at most "
                     "65535 bytes", t->topic);
  else if (!(out = tm__malloc(*len)))
    *err = tm__error(TIMERS_ENOMEM, "out of memory");
  else
    tm__fs_encode(h, nh, t->payload, t->payload_len, out);
  if (h != small) tm__free(h);
  return out;
}

/* str(uuid4()): 36 characters, version 4, variant 10xx, lower-case hex. */
static void id_generate(char *out) {
  char hex[TIMERS_ID_GEN_LEN + 1];
  tm__id_generate(hex);
  static const char digits[] = "0123456789abcdef";
  hex[12] = '4';
  hex[16] = digits[8 + (hex[16] >= 'a' ? hex[16] - 'a' + 10 : hex[16] - '0') % 4];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
           hex + 16, hex + 20);
}

static size_t headers_bound(size_t len) { return TM_FS_HEADERS_BOUND(len); }

static size_t strings_bound(size_t len) { return TM_FS_STRINGS_SIZE(len); }

static void decode(const char *blob, size_t len, double score,
                   tm_decoded *out, timers_header *headers, char *strings) {
  tm_fs_message m;
  tm__fs_decode(blob, len, &m, headers, strings);
  out->corrupt = m.python != TM_FS_PY_DELIVER;
  out->verdict = m.python == TM_FS_PY_DROP    ? TM_DROP
                 : m.python == TM_FS_PY_STUCK ? TM_HOLD
                                              : TM_DELIVER;
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
    .has_dead_letters = false,
    .fixed_one_shard = true,
    .empty_header_keys = true,
    .max_headers = TM_FS_U16_MAX - 2, /* + correlation_id, content-type */
    .poll_ms = 50,
    .check_topic = check_topic,
    .check_id = check_id,
    .keys = keys,
    .id_generate = id_generate,
    .encode = encode,
    .headers_bound = headers_bound,
    .strings_bound = strings_bound,
    .decode = decode,
};
