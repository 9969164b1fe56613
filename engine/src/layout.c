/*
 * layout.c - picking a layout, and decoding with bounded scratch.
 */
#include "layout.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

const tm_layout_ops *tm__layout_ops(timers_layout kind) {
  return kind == TIMERS_LAYOUT_FASTSTREAM ? &tm__layout_faststream
                                          : &tm__layout_native;
}

int tm__layout_decode(const tm_layout_ops *ops, const char *blob, size_t len,
                      double score, tm_decode_buf *buf, tm_decoded *out) {
  size_t nh = ops->headers_bound(len), ns = ops->strings_bound(len);
  buf->headers = nh <= sizeof buf->small_headers / sizeof *buf->small_headers
                     ? buf->small_headers
                     : tm__calloc(nh, sizeof *buf->headers);
  buf->strings = ns <= sizeof buf->small_strings ? buf->small_strings
                                                 : tm__malloc(ns);
  if (!buf->headers || !buf->strings) {
    tm__decode_buf_free(buf);
    return tm__error(TIMERS_ENOMEM, "out of memory decoding %zu bytes", len);
  }
  ops->decode(blob, len, score, out, buf->headers, buf->strings);
  return TIMERS_OK;
}

void tm__decode_buf_free(tm_decode_buf *buf) {
  if (buf->headers != buf->small_headers) tm__free(buf->headers);
  if (buf->strings != buf->small_strings) tm__free(buf->strings);
  buf->headers = NULL;
  buf->strings = NULL;
}

int tm__layout_decode_copy(const tm_layout_ops *ops, const char *blob,
                           size_t len, double score, tm_message_copy *m) {
  tm_decode_buf buf;
  tm_decoded d;
  int rc = tm__layout_decode(ops, blob, len, score, &buf, &d);
  if (rc != TIMERS_OK) return rc;
  m->activate_at = d.activate_at;
  m->payload = tm__malloc(d.payload_len + 1);
  m->headers = tm__calloc(d.header_count, sizeof *m->headers);
  if (!m->payload || !m->headers)
    rc = tm__error(TIMERS_ENOMEM, "out of memory");
  if (rc == TIMERS_OK) {
    memcpy(m->payload, d.payload, d.payload_len);
    ((char *)m->payload)[d.payload_len] = '\0';
    m->payload_len = d.payload_len;
  }
  for (size_t k = 0; rc == TIMERS_OK && k < d.header_count; k++) {
    m->headers[k].key = tm__strdup(d.headers[k].key);
    m->headers[k].value = tm__strdup(d.headers[k].value);
    m->header_count = k + 1;
    if (!m->headers[k].key || !m->headers[k].value)
      rc = tm__error(TIMERS_ENOMEM, "out of memory");
  }
  tm__decode_buf_free(&buf);
  return rc;
}

void tm__message_copy_free(tm_message_copy *m) {
  for (size_t k = 0; k < m->header_count; k++) {
    tm__free((void *)m->headers[k].key);
    tm__free((void *)m->headers[k].value);
  }
  tm__free(m->headers);
  tm__free(m->payload);
  m->headers = NULL;
  m->payload = NULL;
  m->header_count = m->payload_len = 0;
}
