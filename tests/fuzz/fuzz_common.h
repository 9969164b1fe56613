/*
 * fuzz_common.h - what both envelope fuzz targets check: an invariant
 * macro, the canary after the strings buffer, header strings inside it,
 * and that a re-encoded message decodes to the same headers and body.
 * Both targets are included into one file by tests/test_fuzz_corpus.c,
 * hence the guard and static functions.
 */
#ifndef TIMERS_FUZZ_COMMON_H
#define TIMERS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timers.h"

#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,          \
              __LINE__, #cond);                                           \
      abort();                                                            \
    }                                                                     \
  } while (0)

/* Bytes after a strings buffer, set to 0xA5 before decoding. */
#define FUZZ_CANARY 16

static inline void fuzz_check_canary(const char *strings, size_t cap) {
  for (size_t i = 0; i < FUZZ_CANARY; i++)
    FUZZ_CHECK((unsigned char)strings[cap + i] == 0xA5);
}

/* A NUL-terminated string wholly inside strings[0, cap). */
static inline void fuzz_check_string(const char *s, const char *strings,
                                     size_t cap) {
  FUZZ_CHECK(s != NULL && s >= strings && s < strings + cap);
  FUZZ_CHECK(memchr(s, '\0', cap - (size_t)(s - strings)) != NULL);
}

/* The second decoding equals the first: headers as C strings, body bytes. */
static inline void fuzz_check_same(const timers_header *h, size_t nh,
                                   const void *body, size_t len,
                                   const timers_header *h2, size_t nh2,
                                   const void *body2, size_t len2) {
  FUZZ_CHECK(nh2 == nh);
  for (size_t i = 0; i < nh; i++) {
    FUZZ_CHECK(strcmp(h2[i].key, h[i].key) == 0);
    FUZZ_CHECK(strcmp(h2[i].value, h[i].value) == 0);
  }
  FUZZ_CHECK(len2 == len);
  FUZZ_CHECK(len == 0 || memcmp(body2, body, len) == 0);
}

#endif
