/*
 * fuzz_faststream.c - libFuzzer target for tm__fs_decode
 * (engine/src/faststream.c): FastStream envelopes are untrusted input.
 *
 * Checks, beyond the sanitizers: the return code agrees with the format; a
 * RAW result is the whole input with no headers; a BINARY body lies inside
 * the input, a JSON body inside the strings buffer and NUL-terminated;
 * every key and value is NUL-terminated inside the strings buffer, valid
 * as a C string of the bytes; nothing is written past
 * TM_FS_STRINGS_SIZE(len) (a canary follows it). Then a differential
 * check: any decoded envelope re-encoded as V1 decodes to the same headers
 * and body.
 *
 * tests/test_fuzz_corpus.c includes this file (renaming the entry point)
 * to run the same checks over tests/fuzz/corpus with gcc in CI.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faststream.h"
#include "fuzz_common.h"


/* Whether [p, p + n) lies in [lo, lo + cap). */
static int fs_within(const void *p, size_t n, const char *lo, size_t cap) {
  const char *c = p;
  return n == 0 || (c >= lo && (size_t)(c - lo) <= cap && n <= cap - (size_t)(c - lo));
}

static void fs_check(const char *buf, size_t len, int rc,
                     const tm_fs_message *m, const timers_header *h,
                     const char *strings) {
  size_t cap = TM_FS_STRINGS_SIZE(len);
  fuzz_check_canary(strings, cap);
  FUZZ_CHECK(m->header_count <= TIMERS_HEADERS_MAX);
  switch (m->format) {
    case TM_FS_RAW:
      FUZZ_CHECK(rc == -1 && m->body == buf && m->body_len == len);
      FUZZ_CHECK(m->header_count == 0);
      break;
    case TM_FS_BINARY:
      FUZZ_CHECK(rc == 0 && fs_within(m->body, m->body_len, buf, len));
      break;
    case TM_FS_JSON:
      FUZZ_CHECK(rc == 0 && fs_within(m->body, m->body_len + 1, strings, cap));
      FUZZ_CHECK(((const char *)m->body)[m->body_len] == '\0');
      break;
    default:
      FUZZ_CHECK(!"unknown format");
  }
  for (size_t i = 0; i < m->header_count; i++) {
    fuzz_check_string(h[i].key, strings, cap);
    fuzz_check_string(h[i].value, strings, cap);
    for (size_t j = 0; j < i; j++) FUZZ_CHECK(strcmp(h[i].key, h[j].key) != 0);
  }
}

/* Re-encodes a decoded message as V1; it must decode to the same. */
static void fs_round_trip(const tm_fs_message *m, const timers_header *h) {
  size_t n = tm__fs_encode_size(h, m->header_count, m->body_len);
  if (n == 0) return; /* a JSON header value over 65535 bytes */
  char *enc = malloc(n);
  char *strings = malloc(TM_FS_STRINGS_SIZE(n));
  FUZZ_CHECK(enc && strings);
  tm__fs_encode(h, m->header_count, m->body, m->body_len, enc);
  timers_header h2[TIMERS_HEADERS_MAX];
  tm_fs_message m2;
  FUZZ_CHECK(tm__fs_decode(enc, n, &m2, h2, strings) == 0);
  FUZZ_CHECK(m2.format == TM_FS_BINARY);
  fuzz_check_same(h, m->header_count, m->body, m->body_len, h2,
                  m2.header_count, m2.body, m2.body_len);
  free(strings);
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t cap = TM_FS_STRINGS_SIZE(size);
  char *buf = malloc(size ? size : 1); /* exact size: over-reads show */
  char *strings = malloc(cap + FUZZ_CANARY);
  FUZZ_CHECK(buf && strings);
  if (size) memcpy(buf, data, size);
  memset(strings, 0xA5, cap + FUZZ_CANARY);
  timers_header h[TIMERS_HEADERS_MAX];
  tm_fs_message m;
  int rc = tm__fs_decode(buf, size, &m, h, strings);
  fs_check(buf, size, rc, &m, h, strings);
  if (rc == 0) fs_round_trip(&m, h);
  free(strings);
  free(buf);
  return 0;
}
