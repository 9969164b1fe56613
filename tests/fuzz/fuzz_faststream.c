/*
 * fuzz_faststream.c - libFuzzer target for tm__fs_decode
 * (engine/src/faststream.c): FastStream envelopes are untrusted input.
 *
 * Checks, beyond the sanitizers: the return code agrees with the format; a
 * RAW result is the whole input with no headers; a BINARY body lies inside
 * the input, a JSON or LEGACY body inside the strings buffer and
 * NUL-terminated; a dropped message (python DROP) has nothing; every key
 * and value is NUL-terminated inside the strings buffer (the LEGACY
 * content-type key excepted), keys distinct; nothing is written past
 * TM_FS_STRINGS_SIZE(len) nor past TM_FS_HEADERS_BOUND(len) headers
 * (heap blocks of exactly that size, canaries after them). Then a
 * differential check: any decoded envelope re-encoded as V1 decodes to the
 * same headers and body. (tests/faststream_peer.py check-decoder compares
 * the decoder with the Python library itself.)
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
  FUZZ_CHECK(m->header_count <= TM_FS_HEADERS_MAX_OF(len));
  FUZZ_CHECK(m->python <= TM_FS_PY_STUCK);
  switch (m->format) {
    case TM_FS_RAW:
      FUZZ_CHECK(rc == -1 && m->body == buf && m->body_len == len);
      FUZZ_CHECK(m->header_count == 0 && m->python != TM_FS_PY_DROP);
      break;
    case TM_FS_BINARY:
      FUZZ_CHECK(rc == 0 && fs_within(m->body, m->body_len, buf, len));
      FUZZ_CHECK(m->python == TM_FS_PY_DELIVER);
      break;
    case TM_FS_JSON:
    case TM_FS_LEGACY:
      FUZZ_CHECK(rc == 0 && fs_within(m->body, m->body_len + 1, strings, cap));
      FUZZ_CHECK(((const char *)m->body)[m->body_len] == '\0');
      FUZZ_CHECK(m->format == TM_FS_JSON || m->python != TM_FS_PY_STUCK);
      FUZZ_CHECK(m->python != TM_FS_PY_DROP ||
                 (m->body_len == 0 && m->header_count == 0));
      break;
    default:
      FUZZ_CHECK(!"unknown format");
  }
  for (size_t i = 0; i < m->header_count; i++) {
    if (m->format == TM_FS_LEGACY)
      FUZZ_CHECK(strcmp(h[i].key, "content-type") == 0);
    else
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
  timers_header *h2 = malloc(TM_FS_HEADERS_BOUND(n) * sizeof *h2);
  FUZZ_CHECK(enc && strings && h2);
  tm__fs_encode(h, m->header_count, m->body, m->body_len, enc);
  tm_fs_message m2;
  FUZZ_CHECK(tm__fs_decode(enc, n, &m2, h2, strings) == 0);
  FUZZ_CHECK(m2.format == TM_FS_BINARY && m2.headers_dropped == 0);
  fuzz_check_same(h, m->header_count, m->body, m->body_len, h2,
                  m2.header_count, m2.body, m2.body_len);
  free(h2);
  free(strings);
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t cap = TM_FS_STRINGS_SIZE(size), hcap = TM_FS_HEADERS_BOUND(size);
  char *buf = malloc(size ? size : 1); /* exact sizes: overruns show */
  char *strings = malloc(cap + FUZZ_CANARY);
  timers_header *h = malloc(hcap * sizeof *h + FUZZ_CANARY);
  FUZZ_CHECK(buf && strings && h);
  if (size) memcpy(buf, data, size);
  memset(strings, 0xA5, cap + FUZZ_CANARY);
  memset((char *)h + hcap * sizeof *h, 0xA5, FUZZ_CANARY);
  tm_fs_message m;
  int rc = tm__fs_decode(buf, size, &m, h, strings);
  fs_check(buf, size, rc, &m, h, strings);
  fuzz_check_canary((const char *)h, hcap * sizeof *h);
  if (rc == 0) fs_round_trip(&m, h);
  free(h);
  free(strings);
  free(buf);
  return 0;
}
