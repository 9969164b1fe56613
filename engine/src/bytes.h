/*
 * bytes.h - big-endian integers in byte buffers, for the envelope codecs.
 */
#ifndef TIMERS_BYTES_H
#define TIMERS_BYTES_H

#include <stdint.h>

/* Writes the low `bytes` bytes of v, most significant first; returns the
 * position after them. */
static inline char *tm__put_be(char *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) *p++ = (char)(v >> (8 * i));
  return p;
}

static inline uint64_t tm__get_be(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | (unsigned char)p[i];
  return v;
}

#endif
