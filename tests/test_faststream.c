/*
 * test_faststream.c - faststream-redis-timers' envelopes
 * (engine/src/faststream.c), no Redis. Decoding must give what the Python
 * library's parser gives; encoding must give what its publisher writes.
 *
 *  - Fixtures marked "python:" are the bytes the library writes, produced
 *    with tests/faststream_peer.py (its re-implementation of FastStream's
 *    BinaryMessageFormatV1 writer and MessageFormat.build, and of the 0.x
 *    json.dumps({"b": hex, "ct": ct})), with the call that writes them and
 *    what the library's own parser returns for them.
 *  - The V1 reader is Python's: u16 lengths as byte counts (its writer
 *    counts characters, so non-ASCII headers come back cut short), strings
 *    cut at the end of the input, no check of the header block's end, the
 *    body empty past the end; then FastStream's JSON, then raw.
 *  - The 0.x envelope, more than 64 headers, headers C cannot hold, the
 *    content-type rule and the publisher's header order.
 *
 * Every decode gets its input in a heap block of exactly len bytes, a
 * strings buffer of exactly TM_FS_STRINGS_SIZE(len) bytes and a headers
 * array of exactly TM_FS_HEADERS_BOUND(len) entries, each followed by a
 * canary, so an over-read or over-write shows (under ASan as a report).
 * tests/faststream_peer.py check-decoder (test test_faststream_vs_python)
 * compares the decoder with the Python code on thousands more inputs.
 */
#include "faststream.h"
#include "faststream_fixture.h"
#include "test_util.h"

/* ------------------------------------------------------------- helpers */

#define CANARY 16

typedef struct decoded {
  int rc;
  tm_fs_message m;
  timers_header *h;
  char *buf;
  char *strings;
  size_t len;
} decoded;

static bool in_range(const void *p, size_t n, const char *lo, size_t cap) {
  const char *c = p;
  return n == 0 || (c >= lo && c + n <= lo + cap);
}

/* Invariants every decode must keep, whatever the input. */
static void check_invariants(const decoded *d) {
  size_t cap = TM_FS_STRINGS_SIZE(d->len);
  size_t hbytes = TM_FS_HEADERS_BOUND(d->len) * sizeof *d->h;
  for (size_t i = 0; i < CANARY; i++) {
    CHECK((unsigned char)d->strings[cap + i] == 0xA5);
    CHECK(((unsigned char *)d->h)[hbytes + i] == 0xA5);
  }
  CHECK(d->m.header_count <= TM_FS_HEADERS_MAX_OF(d->len));
  if (d->m.format == TM_FS_RAW) {
    CHECK_EQ_INT(d->rc, -1);
    CHECK(d->m.body == d->buf && d->m.body_len == d->len);
    CHECK_EQ_INT(d->m.header_count, 0);
  } else {
    CHECK_EQ_INT(d->rc, 0);
  }
  if (d->m.format == TM_FS_BINARY)
    CHECK(in_range(d->m.body, d->m.body_len, d->buf, d->len));
  if (d->m.format == TM_FS_JSON || d->m.format == TM_FS_LEGACY) {
    CHECK(in_range(d->m.body, d->m.body_len + 1, d->strings, cap));
    CHECK(((const char *)d->m.body)[d->m.body_len] == '\0');
  }
  for (size_t i = 0; i < d->m.header_count; i++) {
    const char *k = d->h[i].key, *v = d->h[i].value;
    if (d->m.format != TM_FS_LEGACY)
      CHECK(in_range(k, strlen(k) + 1, d->strings, cap));
    CHECK(in_range(v, strlen(v) + 1, d->strings, cap));
  }
}

static void dec(decoded *d, const void *data, size_t len) {
  size_t cap = TM_FS_STRINGS_SIZE(len);
  size_t hbytes = TM_FS_HEADERS_BOUND(len) * sizeof(timers_header);
  memset(d, 0, sizeof *d);
  d->len = len;
  d->buf = xrealloc(NULL, len);
  if (len) memcpy(d->buf, data, len);
  d->strings = xrealloc(NULL, cap + CANARY);
  memset(d->strings, 0xA5, cap + CANARY);
  d->h = xrealloc(NULL, hbytes + CANARY);
  memset(d->h, 0xA5, hbytes + CANARY);
  d->rc = tm__fs_decode(d->buf, len, &d->m, d->h, d->strings);
  check_invariants(d);
}

static void dec_free(decoded *d) {
  free(d->buf);
  free(d->strings);
  free(d->h);
}

static const char *header(const decoded *d, const char *key) {
  for (size_t i = 0; i < d->m.header_count; i++)
    if (strcmp(d->h[i].key, key) == 0) return d->h[i].value;
  return NULL;
}

static bool body_is(const decoded *d, const void *b, size_t n) {
  return d->m.body_len == n && (n == 0 || memcmp(d->m.body, b, n) == 0);
}

/* The headers, in order, are exactly kv[0]=kv[1], kv[2]=kv[3], ... */
static void expect_headers(const decoded *d, const char *const *kv, size_t n) {
  CHECK_EQ_INT(d->m.header_count, n);
  for (size_t i = 0; i < n && i < d->m.header_count; i++) {
    CHECK_MSG(strcmp(d->h[i].key, kv[2 * i]) == 0, "header %zu key '%s'", i,
              d->h[i].key);
    CHECK_MSG(strcmp(d->h[i].value, kv[2 * i + 1]) == 0,
              "header '%s' = '%s', want '%s'", d->h[i].key, d->h[i].value,
              kv[2 * i + 1]);
  }
}

/* Decodes and expects raw: the whole input as body, no headers. */
static void expect_raw(const void *data, size_t len) {
  decoded d;
  dec(&d, data, len);
  CHECK_MSG(d.m.format == TM_FS_RAW, "format %d, want raw (len %zu)",
            (int)d.m.format, len);
  dec_free(&d);
}

static void expect_raw_str(const char *s) { expect_raw(s, strlen(s)); }

/* A V1 envelope under construction, byte by byte. */
typedef struct bytes {
  unsigned char b[32768];
  size_t n;
} bytes;

static void b_raw(bytes *x, const void *p, size_t n) {
  CHECK(x->n + n <= sizeof x->b);
  memcpy(x->b + x->n, p, n);
  x->n += n;
}
static void b_u16(bytes *x, unsigned v) {
  unsigned char t[2] = {(unsigned char)(v >> 8), (unsigned char)v};
  b_raw(x, t, 2);
}
static void b_u32(bytes *x, uint32_t v) {
  unsigned char t[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  b_raw(x, t, 4);
}
/* A length-prefixed string, with the length given explicitly. */
static void b_str_n(bytes *x, const char *s, unsigned len_field) {
  b_u16(x, len_field);
  b_raw(x, s, strlen(s));
}
static void b_str(bytes *x, const char *s) {
  b_str_n(x, s, (unsigned)strlen(s));
}
/* Magic, version, offsets. */
static void b_prelude(bytes *x, unsigned version, uint32_t hoff,
                      uint32_t boff) {
  static const unsigned char magic[8] = {0x89, 'B', 'I', 'N',
                                         0x0D, 0x0A, 0x1A, 0x0A};
  x->n = 0;
  b_raw(x, magic, 8);
  b_u16(x, version);
  b_u32(x, hoff);
  b_u32(x, boff);
}
static void b_patch_u32(bytes *x, size_t at, uint32_t v) {
  x->b[at] = (unsigned char)(v >> 24);
  x->b[at + 1] = (unsigned char)(v >> 16);
  x->b[at + 2] = (unsigned char)(v >> 8);
  x->b[at + 3] = (unsigned char)v;
}

/* ------------------------------------------------------------ fixtures */

/* body "hello" after the fixture's headers */
static const unsigned char hello_v1[] = {FS_FIXTURE_HEAD,
                                         'h', 'e', 'l', 'l', 'o'};

static const timers_header hello_headers[] = {
    {"content-type", "application/json"}, {"correlation_id", "abc"}};

static void test_encode_fixture(void) {
  CHECK_EQ_INT(sizeof hello_v1, 78);
  size_t n = tm__fs_encode_size(hello_headers, 2, 5);
  CHECK_EQ_INT(n, sizeof hello_v1);
  char out[sizeof hello_v1];
  tm__fs_encode(hello_headers, 2, "hello", 5, out);
  CHECK(memcmp(out, hello_v1, sizeof hello_v1) == 0);
}

static void test_decode_fixture(void) {
  decoded d;
  dec(&d, hello_v1, sizeof hello_v1);
  CHECK_EQ_INT(d.rc, 0);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, 2);
  CHECK(strcmp(d.h[0].key, "content-type") == 0);
  CHECK(strcmp(d.h[0].value, "application/json") == 0);
  CHECK(strcmp(d.h[1].key, "correlation_id") == 0);
  CHECK(strcmp(d.h[1].value, "abc") == 0);
  CHECK(body_is(&d, "hello", 5));
  CHECK(d.m.body == d.buf + 73); /* no copy of the body */
  dec_free(&d);
}

/* Encodes, decodes, compares. */
static void round_trip(const timers_header *h, size_t nh, const void *body,
                       size_t len) {
  size_t n = tm__fs_encode_size(h, nh, len);
  CHECK(n >= TM_FS_PRELUDE + 2 + len);
  char *out = xrealloc(NULL, n);
  tm__fs_encode(h, nh, body, len, out);
  decoded d;
  dec(&d, out, n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, nh);
  for (size_t i = 0; i < nh; i++) {
    CHECK(strcmp(d.h[i].key, h[i].key) == 0);
    CHECK(strcmp(d.h[i].value, h[i].value) == 0);
  }
  CHECK(body_is(&d, body, len));
  dec_free(&d);
  free(out);
}

static void test_round_trips(void) {
  round_trip(NULL, 0, NULL, 0);
  round_trip(NULL, 0, "x", 1);
  round_trip(hello_headers, 2, "", 0);
  const char bin[] = {0, 1, 2, (char)0x89, 'B', 'I', 'N', 0, (char)0xff};
  round_trip(hello_headers, 2, bin, sizeof bin);
  /* Non-ASCII counted in bytes, as this encoder does: consistent. */
  timers_header utf[] = {{"ключ", "значение"}, {"emoji", "\xF0\x9F\x98\x80"},
                         {"", ""}, {"e", ""}};
  round_trip(utf, 4, "{\"a\":1}", 7);
  /* Many headers (no limit but the format's), and a value of the largest
   * encodable length. */
  enum { MANY = 1000 };
  static char keys[MANY][8];
  static timers_header many[MANY];
  char *big = xrealloc(NULL, 65536);
  memset(big, 'v', 65535);
  big[65535] = '\0';
  for (int i = 0; i < MANY; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    many[i] = (timers_header){keys[i], i == 7 ? big : "v"};
  }
  round_trip(many, 65, "body", 4);
  round_trip(many, MANY, "body", 4);
  /* Not encodable: a value over 65535 bytes. */
  big = xrealloc(big, 65537);
  memset(big, 'v', 65536);
  big[65536] = '\0';
  many[3].value = big;
  CHECK_EQ_INT(tm__fs_encode_size(many, MANY, 4), 0);
  free(big);
}

/* The Python encoder writes len(str) (characters) as the u16, then the
 * UTF-8 bytes; its header block length and body offset count bytes. */
static void python_style(bytes *x, const char *const *kv, const unsigned *chars,
                         size_t nh, const char *body) {
  size_t block = 0;
  for (size_t i = 0; i < 2 * nh; i++) block += 2 + strlen(kv[i]);
  b_prelude(x, 1, 18, (uint32_t)(18 + 2 + block));
  b_u16(x, (unsigned)nh);
  for (size_t i = 0; i < 2 * nh; i++) b_str_n(x, kv[i], chars[i]);
  b_raw(x, body, strlen(body));
}

static void test_char_counted_lengths(void) {
  bytes x;
  decoded d;
  /* "ключ" is 4 characters, 8 bytes: Python reads the key "кл", then the
   * bytes of "ю" as a length (0xD18E) that runs to the end: the value is
   * "ч", the value's length field and the rest, NUL included. Python has
   * {"correlation_id": "abc", "кл": "ч\x00\x08значениеhello"}; C gets the
   * first and counts the second as dropped. The body is still right. */
  const char *kv1[] = {"correlation_id", "abc", "ключ", "значение"};
  const unsigned ch1[] = {14, 3, 4, 8};
  python_style(&x, kv1, ch1, 2, "hello");
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  expect_headers(&d, kv1, 1);
  CHECK_EQ_INT(d.m.headers_dropped, 1);
  CHECK(body_is(&d, "hello", 5));
  dec_free(&d);
  /* "é" is 1 character, 2 bytes: a 1-byte read splits it (bad UTF-8):
   * Python's V1 read fails, then JSON, so the whole input is the body. */
  const char *kv2[] = {"k", "\xC3\xA9"};
  const unsigned ch2[] = {1, 1};
  python_style(&x, kv2, ch2, 1, "hello");
  expect_raw(x.b, x.n);
  /* "éé": the 2-byte read is a valid "é"; 2 bytes are left before the body
   * offset, which Python ignores: {"k": "é"}, body intact. */
  const char *kv3[] = {"k", "\xC3\xA9\xC3\xA9"};
  const unsigned ch3[] = {1, 2};
  python_style(&x, kv3, ch3, 1, "hello");
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK(strcmp(header(&d, "k"), "\xC3\xA9") == 0);
  CHECK(body_is(&d, "hello", 5));
  dec_free(&d);
  /* The same header with its length in bytes decodes whole. */
  const unsigned ch4[] = {1, 4};
  python_style(&x, kv3, ch4, 1, "hello");
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK(strcmp(header(&d, "k"), "\xC3\xA9\xC3\xA9") == 0);
  CHECK(body_is(&d, "hello", 5));
  dec_free(&d);
}

static void test_truncated(void) {
  /* Python reads until the last length field (bytes 68-69), then slices:
   * from 70 bytes on, the last value is "abc" cut short and the body is
   * what is left past offset 73 (nothing before it). */
  for (size_t len = 0; len <= sizeof hello_v1; len++) {
    decoded d;
    dec(&d, hello_v1, len);
    if (len < 70) {
      CHECK_MSG(d.m.format == TM_FS_RAW, "prefix %zu not raw", len);
    } else {
      CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
      CHECK_EQ_INT(d.m.header_count, 2);
      CHECK_EQ_INT(strlen(header(&d, "correlation_id")), len < 73 ? len - 70 : 3);
      CHECK(body_is(&d, "hello", len < 73 ? 0 : len - 73));
    }
    dec_free(&d);
  }
  const char *js = "{\"data\":\"hi\\u00e9\",\"headers\":{\"a\":\"b\"}}";
  for (size_t len = 0; len < strlen(js); len++) expect_raw(js, len);
}

static void test_bad_prelude(void) {
  bytes x;
  memcpy(x.b, hello_v1, sizeof hello_v1);
  x.n = sizeof hello_v1;
  const unsigned versions[] = {0, 2, 0x100, 0xffff};
  for (size_t i = 0; i < 4; i++) {
    x.b[8] = (unsigned char)(versions[i] >> 8);
    x.b[9] = (unsigned char)versions[i];
    expect_raw(x.b, x.n);
  }
  x.b[8] = 0;
  x.b[9] = 1;
  x.b[3] = 'X'; /* magic */
  expect_raw(x.b, x.n);
}

/* hello_v1 with its offsets replaced: raw (body NULL), or BINARY with
 * this body of blen bytes. */
static void with_offsets_n(uint32_t hoff, uint32_t boff, const char *body,
                           size_t blen) {
  bytes x;
  memcpy(x.b, hello_v1, sizeof hello_v1);
  x.n = sizeof hello_v1;
  b_patch_u32(&x, 10, hoff);
  b_patch_u32(&x, 14, boff);
  decoded d;
  dec(&d, x.b, x.n);
  CHECK_MSG((d.m.format == TM_FS_RAW) == !body, "offsets %u/%u: format %d",
            hoff, boff, (int)d.m.format);
  if (body) CHECK(body_is(&d, body, blen));
  dec_free(&d);
}

static void with_offsets(uint32_t hoff, uint32_t boff, const char *body) {
  with_offsets_n(hoff, boff, body, body ? strlen(body) : 0);
}

static void test_offsets(void) {
  with_offsets(18, 73, "hello");
  /* Header offsets Python follows wherever they point: counts read from
   * the prelude or the headers, lengths running past the end: raw. */
  with_offsets(0, 73, NULL);
  with_offsets(17, 73, NULL);
  with_offsets(19, 73, NULL);
  with_offsets(74, 73, NULL); /* header offset past the body's */
  with_offsets(0xffffffffu, 0xffffffffu, NULL);
  with_offsets(77, 78, NULL); /* count cut short */
  with_offsets(78, 78, NULL);
  /* The body offset is only where the body starts: past the end it is
   * empty, and it need not be where the headers end. */
  with_offsets(18, 79, "");
  with_offsets(18, 0xffffffffu, "");
  with_offsets(18, 72, "chello");
  with_offsets(18, 74, "ello");
  with_offsets_n(18, 18, (const char *)hello_v1 + 18, sizeof hello_v1 - 18);
  /* A gap between the prelude and the header block is allowed (Python's
   * reader seeks to the header offset). */
  bytes x;
  b_prelude(&x, 1, 20, 20 + 2 + 5 + 3);
  b_u16(&x, 0xBEEF);
  b_u16(&x, 1);
  b_str(&x, "key");
  b_str(&x, "v");
  b_raw(&x, "body", 4);
  decoded d;
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK(strcmp(header(&d, "key"), "v") == 0);
  CHECK(body_is(&d, "body", 4));
  dec_free(&d);
}

/* A consistent V1 envelope whose count field says count, with n headers. */
static void counted(bytes *x, unsigned count, unsigned n) {
  bytes hb = {{0}, 0};
  b_u16(&hb, count);
  for (unsigned i = 0; i < n; i++) {
    char k[16];
    snprintf(k, sizeof k, "h%u", i);
    b_str(&hb, k);
    b_str(&hb, "v");
  }
  b_prelude(x, 1, 18, (uint32_t)(18 + hb.n));
  b_raw(x, hb.b, hb.n);
  b_raw(x, "B", 1);
}

static void test_counts(void) {
  bytes x;
  decoded d;
  /* No limit but the format's: 65 and 1000 headers. */
  const unsigned ns[] = {TIMERS_HEADERS_MAX, TIMERS_HEADERS_MAX + 1, 1000};
  for (size_t i = 0; i < 3; i++) {
    counted(&x, ns[i], ns[i]);
    dec(&d, x.b, x.n);
    CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
    CHECK_EQ_INT(d.m.header_count, ns[i]);
    char last[16];
    snprintf(last, sizeof last, "h%u", ns[i] - 1);
    CHECK(strcmp(d.h[ns[i] - 1].key, last) == 0);
    CHECK(body_is(&d, "B", 1));
    dec_free(&d);
  }
  counted(&x, 0xffff, 2); /* the third read hits the 1-byte body */
  expect_raw(x.b, x.n);
  counted(&x, 3, 2);
  expect_raw(x.b, x.n);
  counted(&x, 1, 2); /* more than counted: Python reads 1, ignores the rest */
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, 1);
  CHECK(body_is(&d, "B", 1));
  dec_free(&d);
}

static void test_header_bytes(void) {
  bytes x;
  decoded d;
  /* A repeated key: first position, last value (a Python dict). */
  b_prelude(&x, 1, 18, 18 + 2 + 3 * 6);
  b_u16(&x, 3);
  b_str(&x, "a");
  b_str(&x, "1");
  b_str(&x, "b");
  b_str(&x, "2");
  b_str(&x, "a");
  b_str(&x, "3");
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, 2);
  CHECK(strcmp(d.h[0].key, "a") == 0 && strcmp(d.h[0].value, "3") == 0);
  CHECK(strcmp(d.h[1].key, "b") == 0 && strcmp(d.h[1].value, "2") == 0);
  dec_free(&d);
  /* A NUL inside a value: valid in Python, not in a C string. The header
   * is left out (not truncated into another string) and counted; a value
   * of the same key read later puts it back in its first position. */
  b_prelude(&x, 1, 18, 18 + 2 + 3 + 5 + 3 + 3 + 3 + 5);
  b_u16(&x, 3);
  b_str(&x, "a");
  b_u16(&x, 3);
  b_raw(&x, "x\0y", 3);
  b_str(&x, "b");
  b_str(&x, "1");
  b_u16(&x, 3);
  b_raw(&x, "k\0y", 3);
  b_str(&x, "v");
  b_raw(&x, "body", 4);
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, 1);
  CHECK(strcmp(header(&d, "b"), "1") == 0);
  CHECK_EQ_INT(d.m.headers_dropped, 2); /* "a", and the key "k\0y" */
  CHECK(body_is(&d, "body", 4));
  dec_free(&d);
  b_prelude(&x, 1, 18, 18 + 2 + 3 + 5 + 3 + 3 + 3 + 3);
  b_u16(&x, 3);
  b_str(&x, "a");
  b_u16(&x, 3);
  b_raw(&x, "x\0y", 3);
  b_str(&x, "b");
  b_str(&x, "1");
  b_str(&x, "a");
  b_str(&x, "2");
  dec(&d, x.b, x.n);
  const char *kv[] = {"a", "2", "b", "1"};
  expect_headers(&d, kv, 2);
  CHECK_EQ_INT(d.m.headers_dropped, 0);
  dec_free(&d);
  /* Invalid UTF-8 (Python's strict decode fails): an overlong '/', a
   * surrogate, a stray continuation byte. */
  const char *bad[] = {"\xC0\xAF", "\xED\xA0\x80", "\x80", "\xF4\x90\x80\x80"};
  for (size_t i = 0; i < 4; i++) {
    b_prelude(&x, 1, 18, (uint32_t)(18 + 2 + 3 + 2 + strlen(bad[i])));
    b_u16(&x, 1);
    b_str(&x, "a");
    b_str(&x, bad[i]);
    expect_raw(x.b, x.n);
  }
}

/* ------------------------------------------------------------- JSON */

static void test_json(void) {
  const char *js =
      " {\"data\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\\u20AC\","
      " \"headers\": {\"content-type\": \"text/plain\", \"x\\tkey\": "
      "\"\\u0041\\u00df\", \"n\": 3, \"o\": {\"a\": [1, 2.5e-3, null]}, "
      "\"t\": true, \"z\": null}, \"other\": [{}, [], \"x\"]}\r\n";
  decoded d;
  dec(&d, js, strlen(js));
  CHECK_EQ_INT(d.rc, 0);
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  const char want[] = "a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80\xE2\x82\xAC";
  CHECK(body_is(&d, want, sizeof want - 1));
  CHECK_EQ_INT(d.m.header_count, 6);
  CHECK(strcmp(header(&d, "content-type"), "text/plain") == 0);
  CHECK(strcmp(header(&d, "x\tkey"), "A\xC3\x9F") == 0);
  /* Non-string values: their JSON text as written. */
  CHECK(strcmp(header(&d, "n"), "3") == 0);
  CHECK(strcmp(header(&d, "o"), "{\"a\": [1, 2.5e-3, null]}") == 0);
  CHECK(strcmp(header(&d, "t"), "true") == 0);
  CHECK(strcmp(header(&d, "z"), "null") == 0);
  dec_free(&d);

  /* What FastStream's JSON encoder writes (compact, correlation_id first). */
  const char *fs = "{\"data\":\"hello\",\"headers\":{\"correlation_id\":"
                   "\"abc\",\"content-type\":\"text/plain\"}}";
  dec(&d, fs, strlen(fs));
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK(body_is(&d, "hello", 5));
  CHECK(strcmp(header(&d, "correlation_id"), "abc") == 0);
  dec_free(&d);

  /* No "headers": no headers. A NUL in data is fine. "headers" that is
   * not an object: FastStream returns it as it is, and the timers parser's
   * headers.get() raises: Python never delivers it (STUCK). */
  const char *nh[] = {"{\"data\":\"\"}", "{\"data\":\"a\\u0000b\",\"headers\":{}}",
                      "{\"headers\":null,\"data\":\"x\"}",
                      "{\"data\":\"x\",\"headers\":[]}",
                      "{\"data\":\"x\",\"headers\":\"a\"}",
                      "{\"data\":\"x\",\"headers\":{\"a\":\"b\"},\"headers\":3}"};
  const size_t nh_len[] = {0, 3, 1, 1, 1, 1};
  for (size_t i = 0; i < 6; i++) {
    dec(&d, nh[i], strlen(nh[i]));
    CHECK_EQ_INT(d.m.format, TM_FS_JSON);
    CHECK_EQ_INT(d.m.python, i < 2 ? TM_FS_PY_DELIVER : TM_FS_PY_STUCK);
    CHECK_EQ_INT(d.m.header_count, 0);
    CHECK_EQ_INT(d.m.body_len, nh_len[i]);
    dec_free(&d);
  }
  /* Python's json.loads, not RFC 8259 only: NaN and Infinity are numbers,
   * a UTF-8 BOM is skipped; a header Python holds with a lone surrogate or
   * a NUL is left out here and counted. */
  const char *py =
      "\xEF\xBB\xBF{\"data\":\"x\",\"n\":NaN,\"headers\":{\"i\":-Infinity,"
      "\"s\":\"\\ud83d\",\"z\":\"a\\u0000\",\"k\\u0000\":\"v\",\"ok\":\"1\"}}";
  dec(&d, py, strlen(py));
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK(body_is(&d, "x", 1));
  const char *pykv[] = {"i", "-Infinity", "ok", "1"};
  expect_headers(&d, pykv, 2);
  CHECK_EQ_INT(d.m.headers_dropped, 3);
  dec_free(&d);

  /* Repeated members: the last wins, in "data", "headers" and a key. */
  const char *dup = "{\"data\":1,\"headers\":[],\"data\":\"d\",\"headers\":"
                    "{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}";
  dec(&d, dup, strlen(dup));
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK(body_is(&d, "d", 1));
  CHECK_EQ_INT(d.m.header_count, 2);
  CHECK(strcmp(d.h[0].key, "k") == 0 && strcmp(d.h[0].value, "3") == 0);
  dec_free(&d);

  /* Nesting within the limit is fine. */
  char deep[2200];
  int n = snprintf(deep, sizeof deep, "{\"data\":\"\",\"headers\":{\"a\":");
  for (int i = 0; i < 1000; i++) deep[n++] = '[';
  for (int i = 0; i < 1000; i++) deep[n++] = ']';
  deep[n++] = '}';
  deep[n++] = '}';
  dec(&d, deep, (size_t)n);
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK_EQ_INT(strlen(header(&d, "a")), 2000);
  dec_free(&d);
}

static void test_json_fallbacks(void) {
  const char *raw[] = {
      "",
      "hello",
      "{}",                                     /* no data */
      "{\"data\":5}",                           /* data not a string */
      "{\"data\":null,\"headers\":{}}",
      "[\"data\"]",
      "\"data\"",
      "{\"data\":\"x\",\"headers\":{\"a\":1,}}",/* trailing comma */
      "{\"data\":\"x\"} x",                     /* trailing garbage */
      "{\"data\":\"x\",}",
      "{\"data\":'x'}",
      "{\"data\":\"\\ud800\"}",                 /* lone surrogates */
      "{\"data\":\"\\udc00x\"}",
      "{\"data\":\"\\ud800\\u0041\"}",
      "{\"data\":\"\xED\xA0\x80\"}",               /* encoded surrogate */
      "{\"data\":\"\\x41\"}",                   /* bad escapes */
      "{\"data\":\"\\u12G4\"}",
      "{\"data\":\"\\u12\"}",
      "{\"data\":\"a\tb\"}",                    /* raw control character */
      "{\"data\":\"\xC3\"}",                    /* bad UTF-8 */
      "{\"data\":\"x\",\"n\":nan}",             /* not Python's either */
      "{\"data\":\"x\",\"n\":-NaN}",
      "{\"data\":\"x\",\"n\":01}",
      "{\"data\":\"x\",\"n\":1.}",
      "{\"data\":\"x\",\"n\":-}",
      "{\"data\":\"x\",\"n\":1e}",
      "{\"data\":\"x\",\"n\":tru}",
      "{\"data\":\"x\",\"n\":[1 2]}",
      "{\"data\":\"x\",\"n\":{\"a\" 1}}",
      "{\"data\":\"x\",\"n\":{1:2}}",
      "{\"data\":\"x\",\"n\":[}",
      "{\"data\":\"x\",\"n\":{]}",
  };
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) expect_raw_str(raw[i]);
  /* JSON in UTF-16 (json.loads would detect it; not decoded here). */
  expect_raw("\xFF\xFE{\x00}\x00", 6);
  expect_raw("{\x00\"\x00b\x00\"\x00", 8);

  /* Nesting past the limit, and deep unclosed input: no crash. Input
   * starting with '{' meets the 0.x reader's json.loads first, whose
   * RecursionError escapes the library's parser: Python never delivers
   * it (STUCK); C has it as raw. Without the '{', FastStream's reader
   * catches it: raw, delivered. */
  size_t big = 200000;
  char *deep = xrealloc(NULL, big);
  int n = snprintf(deep, big, "{\"data\":\"\",\"headers\":{\"a\":");
  const char opens[] = "[{";
  for (int k = 0; k < 2; k++) {
    memset(deep + n, opens[k], big - (size_t)n);
    decoded d;
    dec(&d, deep, big);
    CHECK_EQ_INT(d.m.format, TM_FS_RAW);
    /* "{{" is a syntax error at depth 2, before any recursion limit */
    CHECK_EQ_INT(d.m.python, k == 0 ? TM_FS_PY_STUCK : TM_FS_PY_DELIVER);
    dec_free(&d);
    dec(&d, deep + 1, big - 1);
    CHECK_EQ_INT(d.m.format, TM_FS_RAW);
    CHECK_EQ_INT(d.m.python, TM_FS_PY_DELIVER);
    dec_free(&d);
  }
  n = snprintf(deep, big, "{\"data\":\"\",\"headers\":{\"a\":");
  for (int i = 0; i < 1100; i++) deep[n++] = '[';
  for (int i = 0; i < 1100; i++) deep[n++] = ']';
  deep[n++] = '}';
  deep[n++] = '}';
  decoded d;
  dec(&d, deep, (size_t)n);
  CHECK_EQ_INT(d.m.format, TM_FS_RAW);
  CHECK_EQ_INT(d.m.python, TM_FS_PY_STUCK);
  dec_free(&d);
  free(deep);

}

/* More than 64 headers in JSON: all of them (no limit but the input). */
static void test_json_many(void) {
  enum { N = 500 };
  char *many = xrealloc(NULL, 16 * N + 64);
  int n = sprintf(many, "{\"data\":\"\",\"headers\":{");
  for (int i = 0; i < N; i++)
    n += sprintf(many + n, "%s\"k%d\":\"v%d\"", i ? "," : "", i % 400, i);
  n += sprintf(many + n, "}}");
  decoded d;
  dec(&d, many, (size_t)n);
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK_EQ_INT(d.m.header_count, 400); /* keys repeat past 400 */
  CHECK(strcmp(d.h[0].key, "k0") == 0 && strcmp(d.h[0].value, "v400") == 0);
  CHECK(strcmp(d.h[399].key, "k399") == 0 && strcmp(d.h[399].value, "v399") == 0);
  dec_free(&d);
  free(many);
}


/* ------------------------------------------ fixtures from the library */

/* python: broker.publish("hello", "t", timer_id="t-1",
 *                        headers={"ключ": "значение"})
 * Python's parser returns b"hello" and {"correlation_id": "t-1",
 * "content-type": "text/plain", "кл": "ч\x00\x08значениеhello"}. */
static const unsigned char py_f1[] = {
    0x89, 0x42, 0x49, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x5f, 0x00, 0x03, 0x00, 0x0e, 0x63, 0x6f,
    0x72, 0x72, 0x65, 0x6c, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x69, 0x64,
    0x00, 0x03, 0x74, 0x2d, 0x31, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65,
    0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x0a, 0x74, 0x65, 0x78,
    0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x00, 0x04, 0xd0, 0xba, 0xd0,
    0xbb, 0xd1, 0x8e, 0xd1, 0x87, 0x00, 0x08, 0xd0, 0xb7, 0xd0, 0xbd, 0xd0,
    0xb0, 0xd1, 0x87, 0xd0, 0xb5, 0xd0, 0xbd, 0xd0, 0xb8, 0xd0, 0xb5, 0x68,
    0x65, 0x6c, 0x6c, 0x6f};

/* python: broker.publish(b"\x00\xff", "t", timer_id="t-2",
 *                        headers={"k": "éé"})
 * -> b"\x00\xff", {"correlation_id": "t-2", "k": "é"} (no content-type:
 * bytes carry none). */
static const unsigned char py_f2[] = {
    0x89, 0x42, 0x49, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x32, 0x00, 0x02, 0x00, 0x0e, 0x63, 0x6f,
    0x72, 0x72, 0x65, 0x6c, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x69, 0x64,
    0x00, 0x03, 0x74, 0x2d, 0x32, 0x00, 0x01, 0x6b, 0x00, 0x02, 0xc3, 0xa9,
    0xc3, 0xa9, 0x00, 0xff};

/* python: broker.publish({"a": 1}, "t", timer_id="t-5") (json.dumps body)
 * -> b'{"a": 1}', {"correlation_id": "t-5",
 * "content-type": "application/json"}. */
static const unsigned char py_f5[] = {
    0x89, 0x42, 0x49, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x49, 0x00, 0x02, 0x00, 0x0e, 0x63, 0x6f,
    0x72, 0x72, 0x65, 0x6c, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x69, 0x64,
    0x00, 0x03, 0x74, 0x2d, 0x35, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65,
    0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x10, 0x61, 0x70, 0x70,
    0x6c, 0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f,
    0x6e, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x20, 0x31, 0x7d};

/* python: broker.publish(None, "t", timer_id="t-6")
 * -> b"", {"correlation_id": "t-6"}. */
static const unsigned char py_f6[] = {
    0x89, 0x42, 0x49, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x29, 0x00, 0x01, 0x00, 0x0e, 0x63, 0x6f,
    0x72, 0x72, 0x65, 0x6c, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x69, 0x64,
    0x00, 0x03, 0x74, 0x2d, 0x36};

/* python: broker.publish("€", "t", timer_id="t-7", headers={"x-e": "€uro"})
 * -> "€".encode(), {"correlation_id": "t-7", "content-type": "text/plain",
 * "x-e": "€u"}: the known bug, 4 characters written, 4 bytes read. */
static const unsigned char py_f7[] = {
    0x89, 0x42, 0x49, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x50, 0x00, 0x03, 0x00, 0x0e, 0x63, 0x6f,
    0x72, 0x72, 0x65, 0x6c, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x69, 0x64,
    0x00, 0x03, 0x74, 0x2d, 0x37, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65,
    0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x0a, 0x74, 0x65, 0x78,
    0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x00, 0x03, 0x78, 0x2d, 0x65,
    0x00, 0x04, 0xe2, 0x82, 0xac, 0x75, 0x72, 0x6f, 0xe2, 0x82, 0xac};

static void test_decode_python(void) {
  decoded d;
  dec(&d, py_f1, sizeof py_f1);
  const char *kv1[] = {"correlation_id", "t-1", "content-type", "text/plain"};
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  expect_headers(&d, kv1, 2);
  CHECK_EQ_INT(d.m.headers_dropped, 1); /* "кл": its value holds a NUL */
  CHECK(body_is(&d, "hello", 5));
  dec_free(&d);

  dec(&d, py_f2, sizeof py_f2);
  const char *kv2[] = {"correlation_id", "t-2", "k", "\xC3\xA9"};
  expect_headers(&d, kv2, 2);
  CHECK(body_is(&d, "\x00\xff", 2));
  dec_free(&d);

  dec(&d, py_f5, sizeof py_f5);
  const char *kv5[] = {"correlation_id", "t-5", "content-type",
                       "application/json"};
  expect_headers(&d, kv5, 2);
  CHECK(body_is(&d, "{\"a\": 1}", 8));
  dec_free(&d);

  dec(&d, py_f6, sizeof py_f6);
  const char *kv6[] = {"correlation_id", "t-6"};
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  expect_headers(&d, kv6, 1);
  CHECK(body_is(&d, "", 0));
  dec_free(&d);

  dec(&d, py_f7, sizeof py_f7);
  const char *kv7[] = {"correlation_id", "t-7", "content-type", "text/plain",
                       "x-e", "\xE2\x82\xACu"};
  expect_headers(&d, kv7, 3);
  CHECK(body_is(&d, "\xE2\x82\xAC", 3));
  dec_free(&d);
}

/* What C writes for the same publish: byte for byte the library's bytes
 * when the headers are ASCII; with non-ASCII ones only the u16 lengths
 * differ (bytes, not characters), and the value is read back whole by
 * Python's reader (the same reading as tm__fs_decode). */
static void encode_publish(const char *id, const void *body, size_t len,
                           const timers_header *user, size_t nuser,
                           const unsigned char *want, size_t want_len,
                           bool exact) {
  timers_header h[8];
  const char *ct = tm__fs_content_type(body, len, NULL);
  size_t nh = tm__fs_publish_headers(id, ct, user, nuser, h);
  size_t n = tm__fs_encode_size(h, nh, len);
  CHECK_EQ_INT(n, want_len);
  char *out = xrealloc(NULL, n);
  tm__fs_encode(h, nh, body, len, out);
  if (exact) {
    CHECK_MSG(memcmp(out, want, n) == 0, "%s: not the library's bytes", id);
  } else {
    CHECK(memcmp(out, want, n) != 0);
    decoded d;
    dec(&d, out, n);
    CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
    CHECK_EQ_INT(d.m.header_count, nh);
    for (size_t i = 0; i < nh; i++)
      CHECK(strcmp(header(&d, h[i].key), h[i].value) == 0);
    CHECK(body_is(&d, body, len));
    dec_free(&d);
  }
  free(out);
}

static void test_encode_python(void) {
  encode_publish("t-5", "{\"a\": 1}", 8, NULL, 0, py_f5, sizeof py_f5, true);
  encode_publish("t-6", NULL, 0, NULL, 0, py_f6, sizeof py_f6, true);
  timers_header k[] = {{"k", "\xC3\xA9\xC3\xA9"}};
  /* bytes: no content-type, as Python's; 2 more length bytes */
  encode_publish("t-2", "\x00\xff", 2, k, 1, py_f2, sizeof py_f2, false);
  timers_header e[] = {{"x-e", "\xE2\x82\xAC" "uro"}};
  encode_publish("t-7", "\xE2\x82\xAC", 3, e, 1, py_f7, sizeof py_f7, false);
  timers_header r[] = {{"ключ", "значение"}};
  encode_publish("t-1", "hello", 5, r, 1, py_f1, sizeof py_f1, false);
}

/* ------------------------------------------------- the 0.x envelope */

/* Decodes a 0.x envelope: LEGACY with this body and content-type (NULL:
 * none), or DROP when body is NULL. */
static void legacy(const char *json, const char *body, size_t blen,
                   const char *ct) {
  decoded d;
  dec(&d, json, strlen(json));
  CHECK_MSG(d.m.format == TM_FS_LEGACY, "%s: format %d", json, (int)d.m.format);
  if (!body) {
    CHECK_MSG(d.m.python == TM_FS_PY_DROP, "%s: not dropped", json);
    CHECK(d.m.body_len == 0 && d.m.header_count == 0);
  } else {
    CHECK_MSG(d.m.python == TM_FS_PY_DELIVER, "%s: python %d", json,
              (int)d.m.python);
    CHECK_MSG(body_is(&d, body, blen), "%s: body", json);
    CHECK_EQ_INT(d.m.header_count, ct ? 1 : 0);
    if (ct)
      CHECK_MSG(strcmp(header(&d, "content-type"), ct) == 0, "%s: ct '%s'",
                json, header(&d, "content-type"));
  }
  dec_free(&d);
}

static void test_legacy(void) {
  /* python 0.x: json.dumps({"b": b"hello".hex(), "ct": "text/plain"}) */
  legacy("{\"b\": \"68656c6c6f\", \"ct\": \"text/plain\"}", "hello", 5,
         "text/plain");
  /* python 0.x for bytes: ct None */
  legacy("{\"b\": \"00ff\", \"ct\": null}", "\x00\xff", 2, NULL);
  legacy("{\"b\": \"\"}", "", 0, NULL);
  /* bytes.fromhex: either case, blanks between pairs, JSON escapes. */
  legacy("{\"ct\":\"x\",\"b\":\" 6A 6b\\n\\u0036\\u0063 \"}", "jkl", 3, "x");
  /* "ct" when truthy in Python; any type, given as its JSON text. */
  const char *falsy[] = {"\"\"", "0", "-0.0e5", "0.000", "false", "null",
                         "[]", "{ }", "1e-400", "2.4e-324"};
  const char *truthy[] = {"1", "-2", "[0]", "{\"a\":1}", "true", "NaN",
                          "-Infinity", "2.5e-324", "1e400", "0.0001"};
  char js[128];
  for (size_t i = 0; i < 10; i++) {
    snprintf(js, sizeof js, "{\"b\":\"41\",\"ct\":%s}", falsy[i]);
    legacy(js, "A", 1, NULL);
    snprintf(js, sizeof js, "{\"b\":\"41\",\"ct\":%s}", truthy[i]);
    legacy(js, "A", 1, truthy[i]);
  }
  /* Before FastStream's own formats: {"b"} wins over "data". */
  legacy("{\"data\":\"x\",\"b\":\"42\",\"headers\":{\"h\":\"v\"}}", "B", 1, NULL);
  /* Not hex: Python's parser removes the timer unread (DROP). */
  const char *bad[] = {"{\"b\":\"6\"}", "{\"b\":\"6 8\"}", "{\"b\":\"zz\"}",
                       "{\"b\":\"\\u00e9\"}", "{\"b\":5}", "{\"b\":null}",
                       "{\"b\":[\"00\"]}", "{\"b\":\"00\",\"b\":1}",
                       "{\"b\":\"0\\u0000\"}", "{\"b\":\"\\ud800\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    legacy(bad[i], NULL, 0, NULL);
  /* Not the 0.x envelope: no "b", a blank before '{', not JSON. */
  expect_raw_str("{\"B\":\"00\"}");
  expect_raw_str(" {\"b\":\"00\"}");
  expect_raw_str("{\"b\":\"00\"");
  /* A content-type C cannot hold: left out, counted. */
  decoded d;
  const char *nul = "{\"b\":\"41\",\"ct\":\"a\\u0000\"}";
  dec(&d, nul, strlen(nul));
  CHECK(d.m.format == TM_FS_LEGACY && d.m.header_count == 0);
  CHECK_EQ_INT(d.m.headers_dropped, 1);
  dec_free(&d);
}

/* --------------------------------------------- what the publisher writes */

static void test_content_type(void) {
  struct {
    const char *body, *requested, *want;
  } cases[] = {
      {"", NULL, NULL},                       /* None, b"" */
      {"{\"a\": 1}", NULL, "application/json"}, /* dict */
      {" [1, 2] \n", NULL, "application/json"}, /* list */
      {"hello", NULL, "text/plain"},          /* str */
      {"42", NULL, "text/plain"},             /* a scalar: text unless asked */
      {"\"q\"", NULL, "text/plain"},
      {"{\"a\": NaN}", NULL, "text/plain"},   /* not RFC 8259 JSON */
      {"{\"a\": 1", NULL, "text/plain"},
      {"\xC3\xA9t\xC3\xA9", NULL, "text/plain"},
      {"\xFF\x00", NULL, NULL},               /* bytes */
      {"\xED\xA0\x80", NULL, NULL},           /* a surrogate: not UTF-8 */
      {"hello", "application/x-custom", "application/x-custom"},
      {"{}", "", NULL},                       /* explicitly none */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t len = strlen(cases[i].body) + (cases[i].body[0] == '\xFF');
    const char *got = tm__fs_content_type(cases[i].body, len, cases[i].requested);
    CHECK_MSG((got == NULL) == (cases[i].want == NULL) &&
                  (!got || strcmp(got, cases[i].want) == 0),
              "case %zu: '%s', want '%s'", i, got ? got : "(none)",
              cases[i].want ? cases[i].want : "(none)");
  }
}

static void test_publish_headers(void) {
  timers_header out[6];
  timers_header user[] = {{"x", "1"}, {"content-type", "text/x"},
                          {"correlation_id", "c"}, {"x", "2"}};
  size_t n = tm__fs_publish_headers("id", "text/plain", user, 4, out);
  /* MessageFormat.build: correlation_id, content-type, then update(). */
  CHECK_EQ_INT(n, 3);
  CHECK(strcmp(out[0].key, "correlation_id") == 0 && strcmp(out[0].value, "c") == 0);
  CHECK(strcmp(out[1].key, "content-type") == 0 && strcmp(out[1].value, "text/x") == 0);
  CHECK(strcmp(out[2].key, "x") == 0 && strcmp(out[2].value, "2") == 0);
  n = tm__fs_publish_headers("id", NULL, NULL, 0, out);
  CHECK(n == 1 && strcmp(out[0].value, "id") == 0);
}

/* V1 that fails falls back to JSON: a V1-looking prefix is never JSON, but
 * a JSON text after a failed V1 attempt must still decode as JSON. */
static void test_order(void) {
  decoded d;
  const char *js = "{\"data\":\"\\u0089BIN\",\"headers\":{}}";
  dec(&d, js, strlen(js));
  CHECK_EQ_INT(d.m.format, TM_FS_JSON);
  CHECK(body_is(&d, "\xC2\x89" "BIN", 5));
  dec_free(&d);
}

int main(void) {
  TEST_RUN(test_encode_fixture);
  TEST_RUN(test_decode_fixture);
  TEST_RUN(test_round_trips);
  TEST_RUN(test_char_counted_lengths);
  TEST_RUN(test_truncated);
  TEST_RUN(test_bad_prelude);
  TEST_RUN(test_offsets);
  TEST_RUN(test_counts);
  TEST_RUN(test_header_bytes);
  TEST_RUN(test_json);
  TEST_RUN(test_json_fallbacks);
  TEST_RUN(test_json_many);
  TEST_RUN(test_decode_python);
  TEST_RUN(test_encode_python);
  TEST_RUN(test_legacy);
  TEST_RUN(test_content_type);
  TEST_RUN(test_publish_headers);
  TEST_RUN(test_order);
  return 0;
}
