/*
 * codec.c - encoding and defensive decoding of the payload envelope. A blob
 * is untrusted (any client can write the hash): every length is checked
 * against what remains before it is used.
 */
#include "codec.h"

#include "bytes.h"

#include "alloc.h"
#include "faststream.h"

#include <math.h>
#include <string.h>

size_t tm__envelope_size(const timers_timer *t) {
  size_t n = 1 + 8 + 2 + t->payload_len;
  for (size_t i = 0; i < t->header_count; i++)
    n += 2 + strlen(t->headers[i].key) + 4 + strlen(t->headers[i].value);
  return n;
}

void tm__envelope_encode(const timers_timer *t, double at, char *out) {
  char *p = out;
  *p++ = TM_ENVELOPE_FORMAT;
  p = tm__put_be(p, (uint64_t)llround(at * 1e6), 8);
  p = tm__put_be(p, t->header_count, 2);
  for (size_t i = 0; i < t->header_count; i++) {
    size_t k = strlen(t->headers[i].key), v = strlen(t->headers[i].value);
    p = tm__put_be(p, k, 2);
    memcpy(p, t->headers[i].key, k);
    p = tm__put_be(p + k, v, 4);
    memcpy(p, t->headers[i].value, v);
    p += v;
  }
  if (t->payload_len) memcpy(p, t->payload, t->payload_len);
}

/* Copies n bytes at *p into strings as a C string; advances both. */
static const char *take_string(const char **p, size_t n, char **strings) {
  char *s = *strings;
  memcpy(s, *p, n);
  s[n] = '\0';
  *p += n;
  *strings += n + 1;
  return s;
}

static int decode_headers(const char **pp, const char *end, size_t count,
                          timers_header *headers, char *strings) {
  const char *p = *pp;
  for (size_t i = 0; i < count; i++) {
    if (end - p < 2) return -1;
    size_t k = tm__get_be(p, 2);
    p += 2;
    if ((size_t)(end - p) < k + 4) return -1;
    headers[i].key = take_string(&p, k, &strings);
    size_t v = tm__get_be(p, 4);
    p += 4;
    if ((size_t)(end - p) < v) return -1;
    headers[i].value = take_string(&p, v, &strings);
  }
  *pp = p;
  return 0;
}

int tm__envelope_decode(const char *blob, size_t len, tm_envelope *env,
                        timers_header *headers, char *strings) {
  const char *p = blob, *end = blob + len;
  env->activate_at = 0;
  env->payload = blob;
  env->payload_len = len;
  env->header_count = 0;
  if (len < 11 || p[0] != TM_ENVELOPE_FORMAT) return -1;
  double at = (double)tm__get_be(p + 1, 8) / 1e6;
  size_t count = tm__get_be(p + 9, 2);
  p += 11;
  if (count > TIMERS_HEADERS_MAX) return -1;
  if (decode_headers(&p, end, count, headers, strings) != 0) return -1;
  env->activate_at = at;
  env->payload = p;
  env->payload_len = (size_t)(end - p);
  env->header_count = count;
  return 0;
}

size_t tm__blob_size(timers_layout kind, const timers_timer *t) {
  if (kind == TIMERS_LAYOUT_FASTSTREAM)
    return tm__fs_encode_size(t->headers, t->header_count, t->payload_len);
  return tm__envelope_size(t);
}

void tm__blob_encode(timers_layout kind, const timers_timer *t, double at,
                     char *out) {
  if (kind == TIMERS_LAYOUT_FASTSTREAM)
    tm__fs_encode(t->headers, t->header_count, t->payload, t->payload_len, out);
  else
    tm__envelope_encode(t, at, out);
}

void tm__blob_decode(timers_layout kind, const char *blob, size_t len,
                     tm_envelope *env, timers_header *headers, char *strings) {
  if (kind == TIMERS_LAYOUT_NATIVE) {
    tm__envelope_decode(blob, len, env, headers, strings);
    return;
  }
  /* Interim until callers size headers by TM_FS_HEADERS_BOUND (the engine
   * refactor): decode into a large enough array, hand over at most
   * TIMERS_HEADERS_MAX, and deliver what Python would not (python !=
   * DELIVER, FASTSTREAM.md) as the raw blob, as before. */
  tm_fs_message m;
  timers_header local[256], *hs = local;
  size_t cap = TM_FS_HEADERS_BOUND(len);
  if (cap > 256 && !(hs = tm__malloc(cap * sizeof *hs))) {
    m = (tm_fs_message){.body = blob, .body_len = len};
  } else {
    tm__fs_decode(blob, len, &m, hs, strings);
    if (m.python != TM_FS_PY_DELIVER)
      m = (tm_fs_message){.body = blob, .body_len = len};
    if (m.header_count > TIMERS_HEADERS_MAX) m.header_count = TIMERS_HEADERS_MAX;
    memcpy(headers, hs, m.header_count * sizeof *hs);
  }
  if (hs != local) tm__free(hs);
  env->activate_at = 0; /* not in the envelope: the caller knows it */
  env->payload = m.body;
  env->payload_len = m.body_len;
  env->header_count = m.header_count;
}
