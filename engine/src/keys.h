/*
 * keys.h - where a NATIVE topic's timers live in Redis, and the names the
 * engine was configured with.
 *
 * Shard s of topic t (prefix p) is these keys sharing one hash tag, so they
 * sit on one Redis Cluster slot while different shards spread out:
 *   p:{t:s}:z  sorted set   member id -> activation time, or lease expiry
 *   p:{t:s}:p  hash         id -> payload envelope (codec.h)
 *   p:{t:s}:a  hash         id -> deliveries so far (written by re-claims)
 *   p:{t:s}:x  sorted set   dead letters: id -> when it was dead-lettered
 *   p:{t:s}:y  hash         dead letters: id -> record (attempts, time,
 *                           reason, envelope; scripts.c DEAD_LETTER)
 *   p:{t:s}:o  hash         owned topics: owner, epoch, until (Redis ms)
 *   p:{t:s}:d:B set         tombstones (tm__timer_token, 8 bytes) of timers
 *                           acked/rejected in time bucket B = floor(Redis
 *                           time / dedup_window_ms); the key expires at
 *                           the end of bucket B + 1, so a tombstone lives
 *                           between one and two windows
 * plus, per topic:
 *   p:{t}:meta hash         "shards" -> the topic's shard count
 *   p:{t}:members sorted set owned topics: live member ids -> expiry
 *   p:wake:t   channel      "s score" when a schedule makes a new earliest
 * The shard of an id is timers_shard_of(id) = FNV-1a-32(id) mod shards.
 * (The FASTSTREAM layout's keys are in layout_faststream.c.)
 */
#ifndef TIMERS_KEYS_H
#define TIMERS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "timers.h"

#define TM_NAME_MAX 128   /* key prefix: bytes of [A-Za-z0-9_.-/] */
#define TM_BASE_MAX 256   /* FASTSTREAM base key names: bytes of UTF-8 */
#define TM_KEY_MAX 1024   /* any key: prefix or base + topic + suffixes */

/* A shard's keys, in the order the scripts take them (scripts.h): claim,
 * settle and the dead-letter scripts take the first TM_CORE_KEYS, settle
 * and schedule then tombstone sets named from TM_KEY_D. */
enum {
  TM_KEY_Z, TM_KEY_P, TM_KEY_A, TM_KEY_X, TM_KEY_Y, /* TM_CORE_KEYS */
  TM_KEY_D,                                         /* tombstone base */
  TM_KEY_O,                                         /* ownership hash */
  TM_NKEYS
};
#define TM_CORE_KEYS 5

typedef char tm_keys[TM_NKEYS][TM_KEY_MAX];

/* Names from the config, owned by the engine. */
typedef struct tm_names {
  char *prefix;
  char *fs_timeline, *fs_payloads;
} tm_names;

void tm__native_keys(tm_keys keys, const char *prefix, const char *topic,
                     uint32_t shard);
int tm__meta_key(char *buf, const char *prefix, const char *topic);
int tm__members_key(char *buf, const char *prefix, const char *topic);
int tm__wake_channel(char *buf, const char *prefix, const char *topic);

/* Splits a wake message: channel "p:wake:<topic>" and data "<shard>
 * <sender> <score>" (sender: the member id of the engine that scheduled;
 * "<shard> <score>" is accepted too). Returns 0 and points *topic into
 * chan and *from into data (NULL when absent), or -1 if it is not one. */
int tm__wake_parse(const char *prefix, const char *chan, const char *data,
                   const char **topic, uint32_t *shard, double *score,
                   const char **from, size_t *from_len);

/* A fresh random id of TIMERS_ID_GEN_LEN hex digits plus NUL. Thread-safe. */
void tm__id_generate(char *out);
/* 64 random bits (the same per-thread generator). Thread-safe. */
uint64_t tm__random64(void);

/* FNV-1a 64-bit of a and b, the tombstone token of a timer: its id and its
 * stored payload envelope (which holds its activation time and headers). */
uint64_t tm__timer_token(const char *id, size_t id_len, const char *blob,
                         size_t blob_len);
/* The token as a tombstone member: 8 bytes, big-endian. */
void tm__token_bytes(uint64_t token, char out[8]);

/* The dedup time bucket of a Redis-clock time, and its tombstone key
 * (base: the shard's TM_KEY_D). */
int64_t tm__tomb_bucket(int64_t now_us, int window_ms);
int tm__tomb_key(char *buf, const char *base, int64_t bucket);

#endif
