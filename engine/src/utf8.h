/*
 * utf8.h - strict UTF-8 validation, the set Python's "utf-8" codec accepts:
 * no overlong forms, no surrogates, nothing past U+10FFFF.
 */
#ifndef TIMERS_UTF8_H
#define TIMERS_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed sequence at p (avail >= 1), 0 if there is none.
 * surrogates: accept U+D800..U+DFFF too (Python's "surrogatepass"), and
 * set *surr when the sequence is one. */
static inline size_t tm__utf8_seq_ex(const unsigned char *p, size_t avail,
                                     bool surrogates, bool *surr) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED && !surrogates) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  if (c == 0xED && p[1] >= 0xA0 && surr) *surr = true;
  return n;
}

/* Strict: no surrogates. */
static inline size_t tm__utf8_seq(const unsigned char *p, size_t avail) {
  return tm__utf8_seq_ex(p, avail, false, NULL);
}

static inline bool tm__utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = tm__utf8_seq(p + i, n - i);
    if (!k) return false;
    i += k;
  }
  return true;
}

#endif
