/*
 * faststream.h - the payload envelope of FastStream (Python), so timers
 * scheduled by faststream-redis-timers fire in C handlers and back.
 *
 * BinaryMessageFormatV1, all integers big-endian:
 *
 *   8 bytes  magic 0x89 'B' 'I' 'N' 0x0D 0x0A 0x1A 0x0A
 *   u16      version (1)
 *   u32      offset of the header block (the encoder: 18, right after this)
 *   u32      offset of the body
 *   at the header offset: u16 header count, then per header a u16 byte
 *            length + key and a u16 byte length + value (UTF-8)
 *   the body, from the body offset to the end
 *
 * Anything that is not a consistent V1 envelope is tried as FastStream's
 * legacy JSON envelope {"data": "<body as a string>", "headers": {...}},
 * then taken as raw bytes (the whole input is the body, no headers), in the
 * order FastStream's own parser falls back; faststream.c says where that
 * order comes from and where this decoder is stricter.
 *
 * Not wired into the engine yet. Thread-safe: no state.
 */
#ifndef TIMERS_FASTSTREAM_H
#define TIMERS_FASTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "timers.h"

#define TM_FS_VERSION 1
#define TM_FS_PRELUDE 18 /* magic, version, two offsets */

/* Bytes the decoder's strings buffer must have for an input of len bytes.
 * (It writes at most len of them; the margin is the documented contract.) */
#define TM_FS_STRINGS_SIZE(len) ((size_t)(len) + 2 * (size_t)TIMERS_HEADERS_MAX)

typedef enum tm_fs_format {
  TM_FS_RAW = 0,    /* no envelope: the whole input is the body           */
  TM_FS_BINARY = 1, /* BinaryMessageFormatV1                               */
  TM_FS_JSON = 2    /* legacy {"data": ..., "headers": ...}                */
} tm_fs_format;

typedef struct tm_fs_message {
  tm_fs_format format;
  /* BINARY, RAW: points into the input buffer (not NUL-terminated).
   * JSON: the decoded "data" string in the strings buffer, NUL-terminated
   * (the NUL is not counted; the body may itself contain NULs). */
  const void *body;
  size_t body_len;
  size_t header_count; /* entries of headers filled */
} tm_fs_message;

/* Size of the V1 envelope of these headers and body; 0 when they cannot be
 * encoded (more than 65535 headers, a key or value over 65535 bytes, or a
 * body offset past 4 GiB). Keys and values are taken with strlen: they
 * should be UTF-8 and keys distinct, or the Python side cannot read them
 * (it decodes them strictly into a dict). */
size_t tm__fs_encode_size(const timers_header *h, size_t nh, size_t body_len);

/* Writes exactly tm__fs_encode_size(h, nh, body_len) bytes (which must not
 * be 0) into out: header offset 18, body offset right after the headers,
 * lengths in bytes. body may be NULL when body_len is 0. */
void tm__fs_encode(const timers_header *h, size_t nh, const void *body,
                   size_t body_len, char *out);

/* Decodes an untrusted buffer of len bytes without allocating. headers has
 * room for TIMERS_HEADERS_MAX entries; strings for TM_FS_STRINGS_SIZE(len)
 * bytes, where keys and values are copied NUL-terminated (they, and a JSON
 * body, stay valid while strings does; a BINARY or RAW body while buf does).
 *
 * Returns 0 when an envelope (BINARY or JSON) was recognised, -1 when the
 * input is taken as RAW; out is filled either way, never a crash, never a
 * read outside buf[0, len).
 *
 * Header rules, for both envelopes:
 *  - keys and values must be valid UTF-8 (as Python's strict decode);
 *  - a key or value containing a NUL byte makes the envelope malformed
 *    (next fallback), rather than being truncated into a different,
 *    possibly colliding, C string;
 *  - a repeated key keeps its first position and takes the last value
 *    (a Python dict built in order);
 *  - more than TIMERS_HEADERS_MAX distinct keys: malformed;
 *  - keys may be empty (Python allows it; the engine's own encoder never
 *    produces one). */
int tm__fs_decode(const char *buf, size_t len, tm_fs_message *out,
                  timers_header *headers, char *strings);

#endif
