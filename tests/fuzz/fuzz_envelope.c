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
#include "fuzz_common.h"


static void env_check(const char *blob, size_t len, int rc,
                      const tm_envelope *env, const timers_header *h,
                      const char *strings) {
  fuzz_check_canary(strings, len);
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
    fuzz_check_string(h[i].key, strings, len);
    fuzz_check_string(h[i].value, strings, len);
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
  fuzz_check_same(h, env->header_count, env->payload, env->payload_len, h2,
                  env2.header_count, env2.payload, env2.payload_len);
  free(strings);
  free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *blob = malloc(size ? size : 1); /* exact size: over-reads show */
  char *strings = malloc(size + FUZZ_CANARY);
  FUZZ_CHECK(blob && strings);
  if (size) memcpy(blob, data, size);
  memset(strings, 0xA5, size + FUZZ_CANARY);
  timers_header h[TIMERS_HEADERS_MAX];
  tm_envelope env;
  int rc = tm__envelope_decode(blob, size, &env, h, strings);
  env_check(blob, size, rc, &env, h, strings);
  if (rc == 0) env_round_trip(&env, h);
  free(strings);
  free(blob);
  return 0;
}
