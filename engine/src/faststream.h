/*
 * faststream.h - the payload envelopes of faststream-redis-timers (Python),
 * read exactly as that library reads them and written as it writes them,
 * so a C handler and a Python handler of one topic see the same message.
 * engine/FASTSTREAM.md is the protocol, with its sources; this header is
 * the C side of its "Envelope" sections.
 *
 * Reading, in the library's order (TimerMessageFormat.parse, then
 * FastStream's BinaryMessageFormatV1.parse):
 *  1. input starting with '{' that Python's json.loads takes as an object
 *     with a "b" member: the 0.x envelope {"b": "<hex>", "ct": "<type>"}
 *     (LEGACY): body = bytes.fromhex(b), header content-type = ct if truthy;
 *  2. BinaryMessageFormatV1 (BINARY), read as Python's BinaryReader does:
 *     u16 lengths taken as byte counts, strings cut short by the end of the
 *     input, no check that the header block ends at the body offset. Its
 *     writer counts characters, so a non-ASCII header it wrote comes back
 *     cut short, or the whole V1 read fails (bad UTF-8, a length read past
 *     the end): exactly what Python's handler gets;
 *  3. FastStream's JSON envelope {"data": "<text>", "headers": {...}}
 *     (JSON), read with Python's json.loads rules;
 *  4. otherwise the whole input is the body, without headers (RAW).
 *
 * Writing: BinaryMessageFormatV1 with header lengths in bytes (what every
 * reader, Python's included, needs), the headers Python's publisher writes
 * (tm__fs_publish_headers) and its content-type rule (tm__fs_content_type).
 *
 * Thread-safe: no state. Nothing allocates.
 */
#ifndef TIMERS_FASTSTREAM_H
#define TIMERS_FASTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "timers.h"

#define TM_FS_VERSION 1
#define TM_FS_PRELUDE 18 /* magic, version, two offsets */
#define TM_FS_U16_MAX 65535u

#define TM__FS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TM__FS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Most headers one decoding returns for an input of len bytes. V1: each
 * header costs two u16 length fields that must lie inside the input, and
 * the count field is a u16: min(len / 4, 65535). JSON: each distinct key
 * costs at least 5 bytes ("":0,): len / 5 + 1. LEGACY: 1. */
#define TM_FS_HEADERS_MAX_OF(len)                                           \
  TM__FS_MAX(TM__FS_MIN((size_t)(len) / 4, (size_t)TM_FS_U16_MAX),          \
             (size_t)(len) / 5 + 1)

/* Entries the headers array given to tm__fs_decode must have for an input
 * of len bytes: twice TM_FS_HEADERS_MAX_OF(len). The decoder returns the
 * headers in the first entries and uses the rest as scratch space (an
 * index of the keys, so a repeated key is found in constant time, as in
 * Python's dict: a hostile envelope with 65535 headers costs linear time). */
#define TM_FS_HEADERS_BOUND(len) (2 * TM_FS_HEADERS_MAX_OF(len))

/* Bytes of the strings buffer for an input of len bytes. The decoder writes
 * at most len of them (every string is a copy, an unescaping or a hex
 * decoding of a disjoint run of the input that also holds room for its
 * NUL); the one more byte keeps the size non-zero. */
#define TM_FS_STRINGS_SIZE(len) ((size_t)(len) + 1)

typedef enum tm_fs_format {
  TM_FS_RAW = 0,    /* no envelope: the whole input is the body           */
  TM_FS_BINARY = 1, /* BinaryMessageFormatV1                               */
  TM_FS_JSON = 2,   /* FastStream's {"data": ..., "headers": ...}          */
  TM_FS_LEGACY = 3  /* faststream-redis-timers 0.x {"b": hex, "ct": ...}   */
} tm_fs_format;

/* What the Python library does with the message (FASTSTREAM.md,
 * "Messages Python never delivers"). */
typedef enum tm_fs_python {
  TM_FS_PY_DELIVER = 0, /* its handler gets body and headers as decoded     */
  TM_FS_PY_DROP = 1,    /* its parser removes the timer, no handler runs:
                           a LEGACY envelope whose "b" is not hex (body and
                           headers are then empty)                         */
  TM_FS_PY_STUCK = 2    /* its parser raises something else: no handler
                           runs, the timer stays leased and is claimed again
                           every lease, for ever ("headers" not an object in
                           the JSON envelope; a '{' input nested past the
                           depth limit). body and headers are filled as a
                           C handler would best get them.                  */
} tm_fs_python;

typedef struct tm_fs_message {
  tm_fs_format format;
  tm_fs_python python;
  /* BINARY, RAW: points into the input buffer (not NUL-terminated).
   * JSON, LEGACY: in the strings buffer, followed by a NUL that is not
   * counted (the body may itself contain NULs). */
  const void *body;
  size_t body_len;
  size_t header_count; /* entries of headers filled */
  /* Headers Python's handler has that a C string cannot hold (a NUL in the
   * key or value, a lone surrogate from a JSON escape): left out here. */
  size_t headers_dropped;
} tm_fs_message;

/* Size of the V1 envelope of these headers and body; 0 when they cannot be
 * encoded (more than 65535 headers, a key or value over 65535 bytes, or a
 * body offset past 4 GiB). Keys and values are taken with strlen. */
size_t tm__fs_encode_size(const timers_header *h, size_t nh, size_t body_len);

/* Writes exactly tm__fs_encode_size(h, nh, body_len) bytes (which must not
 * be 0) into out: header offset 18, body offset right after the headers,
 * header lengths in bytes (Python's writer counts characters, which only
 * differs for non-ASCII text, where its own reader then cuts the value;
 * byte lengths are read back whole, by Python too). Headers are written in
 * the given order, repeated keys too (a reader keeps the last value). body
 * may be NULL when body_len is 0. */
void tm__fs_encode(const timers_header *h, size_t nh, const void *body,
                   size_t body_len, char *out);

/* The content-type header that faststream-redis-timers' publish writes for
 * this body, or NULL for none. FastStream's encode_message decides by the
 * Python type of the body (bytes/None: none, str: text/plain, anything
 * else: JSON, application/json); from bytes alone the rule is:
 *  - requested not NULL: requested, or NULL when it is "" (no header);
 *  - an empty body: NULL (Python's None and b"");
 *  - a JSON object or array (RFC 8259, surrounding blanks allowed): what a
 *    dict, list or model publishes, "application/json";
 *  - other valid UTF-8 (a JSON scalar included: "42" is text here, pass
 *    "application/json" to send a number): what a str publishes,
 *    "text/plain";
 *  - anything else: what bytes publish, NULL.
 * Each choice is one a Python subscriber decodes without error. Returns
 * requested itself or a static string. */
const char *tm__fs_content_type(const void *body, size_t len,
                                const char *requested);

/* The headers TimersBroker.publish writes, in its order (FastStream's
 * MessageFormat.build): correlation_id (Python: the caller's correlation
 * id, else the timer id), content-type when not NULL, then h in order, a
 * key already there taking the new value in place (dict.update). out has
 * room for nh + 2 entries; returns the count. Pointers are copied, not the
 * strings. O(n^2) in the count: meant for the few headers of one publish. */
size_t tm__fs_publish_headers(const char *correlation_id,
                              const char *content_type, const timers_header *h,
                              size_t nh, timers_header *out);

/* Decodes an untrusted buffer of len bytes as the Python library would,
 * without allocating. headers has room for TM_FS_HEADERS_BOUND(len)
 * entries (the first out->header_count get the headers, the rest is
 * scratch); strings for TM_FS_STRINGS_SIZE(len) bytes, where keys and
 * values are copied NUL-terminated (they, and a JSON or LEGACY body, stay
 * valid while strings does; a BINARY or RAW body while buf does). buf may
 * be NULL when len is 0.
 *
 * Returns 0 when an envelope was recognised (format BINARY, JSON or
 * LEGACY), -1 when the input is taken as RAW; out is filled either way,
 * never a crash, never a read outside buf[0, len). Check out->python too.
 *
 * Headers: a repeated key keeps its first position and takes the last
 * value (a Python dict built in order); keys may be empty; a JSON header
 * value that is not a string (Python keeps the number, list, ...) is given
 * as its JSON text, as written; the LEGACY content-type key is a static
 * string. */
int tm__fs_decode(const char *buf, size_t len, tm_fs_message *out,
                  timers_header *headers, char *strings);

#endif
