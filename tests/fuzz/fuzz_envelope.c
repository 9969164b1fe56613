/*
 * fuzz_envelope.c - libFuzzer target for the engine's own envelope decoder,
 * tm__envelope_decode (engine/src/codec.c): any client can write the hash,
 * so blobs are untrusted.
 *
 * Checks, beyond the sanitizers: -1 leaves the whole blob as payload with
 * no headers; 0 gives a payload inside the blob, at most
 * TIMERS_HEADERS_MAX headers, each key and value NUL-terminated inside a
 * strings buffer of exactly len bytes (the documented need; a canary
 * follows it). Then a differential check: a decoded envelope re-encoded
 * decodes to the same headers (as C strings) and payload.
 *
 * tests/test_fuzz_corpus.c includes this file (renaming the entry point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,          \
              __LINE__, #cond);                                           \
      abort();                                                            \
    }                                                                     \
  } while (0)
#endif

#define ENV_FUZZ_CANARY 16

static void env_check_string(const char *s, const char *strings, size_t cap) {
  FUZZ_CHECK(s != NULL && s >= strings && s < strings + cap);
  FUZZ_CHECK(memchr(s, '\0', cap - (size_t)(s - strings)) != NULL);
}

static void env_check(const char *blob, size_t len, int rc,
                      const tm_envelope *env, const timers_header *h,
                      const char *strings) {
  for (size_t i = 0; i < ENV_FUZZ_CANARY; i++)
    FUZZ_CHECK((unsigned char)strings[len + i] == 0xA5);
  FUZZ_CHECK(rc == 0 || rc == -1);
  if (rc != 0) {
    FUZZ_CHECK(env->payload == blob && env->payload_len == len);
    FUZZ_CHECK(env->header_count == 0);
    return;
  }
  const char *p = env->payload;
  FUZZ_CHECK(p >= blob && p <= blob + len);
  FUZZ_CHECK(env->payload_len == (size_t)(blob + len - p));
  FUZZ_CHECK(env->header_count <= TIMERS_HEADERS_MAX);
  for (size_t i = 0; i < env->header_count; i++) {
    env_check_string(h[i].key, strings, len);
    env_check_string(h[i].value, strings, len);
  }
}

static void env_round_trip(const tm_envelope *env, const timers_header *h) {
  timers_timer t = {0};
  t.headers = h;
  t.header_count = env->header_count;
  t.payload = env->payload;
  t.payload_len = env->payload_len;
  size_t n = tm__envelope_size(&t);
  char *blob = malloc(n);
  char *strings = malloc(n);
  FUZZ_CHECK(blob && strings);
  tm__envelope_encode(&t, 0, blob);
  timers_header h2[TIMERS_HEADERS_MAX];
  tm_envelope env2;
  FUZZ_CHECK(tm__envelope_decode(blob, n, &env2, h2, strings) == 0);
  FUZZ_CHECK(env2.header_count == env->header_count);
  for (size_t i = 0; i < env->header_count; i++) {
    FUZZ_CHECK(strcmp(h2[i].key, h[i].key) == 0);
    FUZZ_CHECK(strcmp(h2[i].value, h[i].value) == 0);
  }
  FUZZ_CHECK(env2.payload_len == env->payload_len);
  FUZZ_CHECK(env->payload_len == 0 ||
             memcmp(env2.payload, env->payload, env->payload_len) == 0);
  free(strings);
  free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *blob = malloc(size ? size : 1); /* exact size: over-reads show */
  char *strings = malloc(size + ENV_FUZZ_CANARY);
  FUZZ_CHECK(blob && strings);
  if (size) memcpy(blob, data, size);
  memset(strings, 0xA5, size + ENV_FUZZ_CANARY);
  timers_header h[TIMERS_HEADERS_MAX];
  tm_envelope env;
  int rc = tm__envelope_decode(blob, size, &env, h, strings);
  env_check(blob, size, rc, &env, h, strings);
  if (rc == 0) env_round_trip(&env, h);
  free(strings);
  free(blob);
  return 0;
}
