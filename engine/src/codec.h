/*
 * codec.h - the payload envelope stored in a shard's hash (format 1):
 *
 *   u8  format (1)
 *   u64 activation time, microseconds since the Unix epoch
 *   u16 header count, then per header: u16 key length, key,
 *                                      u32 value length, value
 *   payload bytes to the end
 *
 * All integers big-endian. The activation time travels with the payload so
 * that a redelivery (whose score is by then a lease) still reports it.
 */
#ifndef TIMERS_CODEC_H
#define TIMERS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "timers.h"

#define TM_ENVELOPE_FORMAT 1

size_t tm__envelope_size(const timers_timer *t);
/* Writes tm__envelope_size(t) bytes into out. */
void tm__envelope_encode(const timers_timer *t, double at, char *out);

typedef struct tm_envelope {
  double activate_at;
  const void *payload; /* points into the blob */
  size_t payload_len;
  size_t header_count;
} tm_envelope;

/* Parses blob without allocating: fills env; headers (capacity
 * TIMERS_HEADERS_MAX) get keys and values copied NUL-terminated into
 * strings, which needs at most len bytes. Returns 0, or -1 on a malformed
 * envelope (then the whole blob is the payload, with no headers). */
int tm__envelope_decode(const char *blob, size_t len, tm_envelope *env,
                        timers_header *headers, char *strings);

/* The stored blob of a timer in a layout. */
size_t tm__blob_size(timers_layout kind, const timers_timer *t);
void tm__blob_encode(timers_layout kind, const timers_timer *t, double at,
                     char *out);
/* Parses a blob of a layout like tm__envelope_decode; strings must hold
 * len + 2 * TIMERS_HEADERS_MAX bytes. */
void tm__blob_decode(timers_layout kind, const char *blob, size_t len,
                     tm_envelope *env, timers_header *headers, char *strings);

#endif
