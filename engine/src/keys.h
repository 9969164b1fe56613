/*
 * keys.h - where a topic's timers live in Redis.
 *
 * Shard s of topic t (prefix p) is three keys sharing one hash tag, so they
 * sit on one Redis Cluster slot while different shards spread out:
 *   p:{t:s}:z  sorted set   member id -> score activation time (or lease)
 *   p:{t:s}:p  hash         id -> payload envelope (codec.h)
 *   p:{t:s}:a  hash         id -> delivery attempts so far
 * (the FASTSTREAM layout instead: <timeline>:t, <payloads>:t, and
 * p:fs-attempts:t, which is never written: one shard, no hash tag)
 * plus, per topic:
 *   p:{t}:meta hash         "shards" -> the topic's shard count
 *   p:wake:t   channel      "s score" when a schedule makes a new earliest
 * The shard of an id is timers_shard_of(id) = FNV-1a-32(id) mod shards.
 */
#ifndef TIMERS_KEYS_H
#define TIMERS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define TM_KEY_MAX (2 * 128 + 32)

enum { TM_KEY_Z = 'z', TM_KEY_P = 'p', TM_KEY_A = 'a' };

/* Shard key `kind` (TM_KEY_*) into buf (TM_KEY_MAX bytes); returns length. */
int tm__shard_key(char *buf, const char *prefix, const char *topic,
                  uint32_t shard, char kind);
/* The z, p and a keys of a shard, in that order (the scripts' KEYS). */
void tm__shard_keys(char keys[3][TM_KEY_MAX], const char *prefix,
                    const char *topic, uint32_t shard);
int tm__meta_key(char *buf, const char *prefix, const char *topic);
int tm__wake_channel(char *buf, const char *prefix, const char *topic);

/* A fresh random id of TIMERS_ID_GEN_LEN hex digits plus NUL. Thread-safe. */
void tm__id_generate(char *out);

#endif
