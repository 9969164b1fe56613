/*
 * layout.c - picking a layout, and decoding with bounded scratch.
 */
#include "layout.h"

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
