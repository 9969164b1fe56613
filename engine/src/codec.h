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

/* Header entries a decode of len bytes may fill: each takes >= 6 bytes. */
static inline size_t tm__envelope_headers_bound(size_t len) {
  size_t n = len < 11 ? 0 : (len - 11) / 6;
  return n < TIMERS_HEADERS_MAX ? n : TIMERS_HEADERS_MAX;
}

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
 * tm__envelope_headers_bound(len)) get keys and values copied
 * NUL-terminated into strings, which needs at most len bytes. Returns 0, or -1 on a malformed
 * envelope (then the whole blob is the payload, with no headers). */
int tm__envelope_decode(const char *blob, size_t len, tm_envelope *env,
                        timers_header *headers, char *strings);

#endif
