/*
 * test_faststream.c - FastStream's envelopes (engine/src/faststream.c), no
 * Redis: the V1 bytes of a known message written out by hand from the spec
 * and compared with the encoder; decoding, round trips; the fallbacks
 * (V1 -> JSON -> raw) for inconsistent lengths (FastStream's encoder counts
 * characters, not bytes), bad versions, offsets and counts, every truncation
 * of a valid envelope; the legacy JSON envelope with escapes.
 *
 * Every decode gets its input in a heap block of exactly len bytes and a
 * strings buffer of exactly TM_FS_STRINGS_SIZE(len) bytes followed by a
 * canary, so an over-read or over-write shows (under ASan as a report).
 */
#include "faststream.h"
#include "faststream_fixture.h"
#include "test_util.h"

/* ------------------------------------------------------------- helpers */

#define CANARY 16

typedef struct decoded {
  int rc;
  tm_fs_message m;
  timers_header h[TIMERS_HEADERS_MAX];
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
  for (size_t i = 0; i < CANARY; i++)
    CHECK((unsigned char)d->strings[cap + i] == 0xA5);
  CHECK(d->m.header_count <= TIMERS_HEADERS_MAX);
  if (d->m.format == TM_FS_RAW) {
    CHECK_EQ_INT(d->rc, -1);
    CHECK(d->m.body == d->buf && d->m.body_len == d->len);
    CHECK_EQ_INT(d->m.header_count, 0);
  } else {
    CHECK_EQ_INT(d->rc, 0);
  }
  if (d->m.format == TM_FS_BINARY)
    CHECK(in_range(d->m.body, d->m.body_len, d->buf, d->len));
  if (d->m.format == TM_FS_JSON) {
    CHECK(in_range(d->m.body, d->m.body_len + 1, d->strings, cap));
    CHECK(((const char *)d->m.body)[d->m.body_len] == '\0');
  }
  for (size_t i = 0; i < d->m.header_count; i++) {
    const char *k = d->h[i].key, *v = d->h[i].value;
    CHECK(in_range(k, strlen(k) + 1, d->strings, cap));
    CHECK(in_range(v, strlen(v) + 1, d->strings, cap));
  }
}

static void dec(decoded *d, const void *data, size_t len) {
  size_t cap = TM_FS_STRINGS_SIZE(len);
  memset(d, 0, sizeof *d);
  d->len = len;
  d->buf = xrealloc(NULL, len);
  if (len) memcpy(d->buf, data, len);
  d->strings = xrealloc(NULL, cap + CANARY);
  memset(d->strings, 0xA5, cap + CANARY);
  d->rc = tm__fs_decode(d->buf, len, &d->m, d->h, d->strings);
  check_invariants(d);
}

static void dec_free(decoded *d) {
  free(d->buf);
  free(d->strings);
}

static const char *header(const decoded *d, const char *key) {
  for (size_t i = 0; i < d->m.header_count; i++)
    if (strcmp(d->h[i].key, key) == 0) return d->h[i].value;
  return NULL;
}

static bool body_is(const decoded *d, const void *b, size_t n) {
  return d->m.body_len == n && (n == 0 || memcmp(d->m.body, b, n) == 0);
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
  unsigned char b[4096];
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
  /* The most headers, and a value of the largest encodable length. */
  static char keys[TIMERS_HEADERS_MAX][8];
  timers_header many[TIMERS_HEADERS_MAX];
  char *big = xrealloc(NULL, 65536);
  memset(big, 'v', 65535);
  big[65535] = '\0';
  for (int i = 0; i < TIMERS_HEADERS_MAX; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    many[i] = (timers_header){keys[i], i == 7 ? big : "v"};
  }
  round_trip(many, TIMERS_HEADERS_MAX, "body", 4);
  /* Not encodable: a value over 65535 bytes. */
  big = xrealloc(big, 65537);
  memset(big, 'v', 65536);
  big[65536] = '\0';
  many[3].value = big;
  CHECK_EQ_INT(tm__fs_encode_size(many, TIMERS_HEADERS_MAX, 4), 0);
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
  /* "ключ" is 4 characters, 8 bytes; "значение" 8 characters, 16 bytes. */
  const char *kv1[] = {"correlation_id", "abc", "ключ", "значение"};
  const unsigned ch1[] = {14, 3, 4, 8};
  python_style(&x, kv1, ch1, 2, "hello");
  expect_raw(x.b, x.n);
  /* "é" is 1 character, 2 bytes: a 1-byte read splits it (bad UTF-8). */
  const char *kv2[] = {"k", "\xC3\xA9"};
  const unsigned ch2[] = {1, 1};
  python_style(&x, kv2, ch2, 1, "hello");
  expect_raw(x.b, x.n);
  /* "éé": the 2-byte read is a valid "é" and 2 bytes are left over before
   * the body. Python would deliver {"k": "é"} here; the block does not end
   * at the body offset, so this decoder refuses to guess. */
  const char *kv3[] = {"k", "\xC3\xA9\xC3\xA9"};
  const unsigned ch3[] = {1, 2};
  python_style(&x, kv3, ch3, 1, "hello");
  expect_raw(x.b, x.n);
  /* The same header with its length in bytes decodes. */
  const unsigned ch4[] = {1, 4};
  python_style(&x, kv3, ch4, 1, "hello");
  decoded d;
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK(strcmp(header(&d, "k"), "\xC3\xA9\xC3\xA9") == 0);
  CHECK(body_is(&d, "hello", 5));
  dec_free(&d);
}

static void test_truncated(void) {
  for (size_t len = 0; len <= sizeof hello_v1; len++) {
    decoded d;
    dec(&d, hello_v1, len);
    if (len < 73) {
      CHECK_MSG(d.m.format == TM_FS_RAW, "prefix %zu not raw", len);
    } else { /* the body offset is in range: a shorter body */
      CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
      CHECK_EQ_INT(d.m.header_count, 2);
      CHECK(body_is(&d, "hello", len - 73));
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

/* hello_v1 with its offsets replaced. */
static void with_offsets(uint32_t hoff, uint32_t boff, bool want_raw) {
  bytes x;
  memcpy(x.b, hello_v1, sizeof hello_v1);
  x.n = sizeof hello_v1;
  b_patch_u32(&x, 10, hoff);
  b_patch_u32(&x, 14, boff);
  decoded d;
  dec(&d, x.b, x.n);
  CHECK_MSG((d.m.format == TM_FS_RAW) == want_raw,
            "offsets %u/%u: format %d", hoff, boff, (int)d.m.format);
  dec_free(&d);
}

static void test_offsets(void) {
  with_offsets(18, 73, false);
  with_offsets(0, 73, true);          /* inside the prelude */
  with_offsets(17, 73, true);
  with_offsets(19, 73, true);         /* count read mid-field */
  with_offsets(74, 73, true);         /* header offset past the body's */
  with_offsets(18, 79, true);         /* body offset past the end */
  with_offsets(18, 0xffffffffu, true);
  with_offsets(0xffffffffu, 0xffffffffu, true);
  with_offsets(18, 72, true);         /* block does not end at the body */
  with_offsets(18, 74, true);
  with_offsets(77, 78, true);         /* count cut short */
  with_offsets(78, 78, true);
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
  counted(&x, TIMERS_HEADERS_MAX, TIMERS_HEADERS_MAX);
  dec(&d, x.b, x.n);
  CHECK_EQ_INT(d.m.format, TM_FS_BINARY);
  CHECK_EQ_INT(d.m.header_count, TIMERS_HEADERS_MAX);
  dec_free(&d);
  counted(&x, TIMERS_HEADERS_MAX + 1, TIMERS_HEADERS_MAX + 1);
  expect_raw(x.b, x.n);
  counted(&x, 0xffff, 2);
  expect_raw(x.b, x.n);
  counted(&x, 3, 2); /* fewer headers than counted */
  expect_raw(x.b, x.n);
  counted(&x, 1, 2); /* more */
  expect_raw(x.b, x.n);
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
  /* A NUL inside a value is malformed (not truncated). */
  b_prelude(&x, 1, 18, 18 + 2 + 3 + 5);
  b_u16(&x, 1);
  b_str(&x, "a");
  b_u16(&x, 3);
  b_raw(&x, "x\0y", 3);
  expect_raw(x.b, x.n);
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

  /* No "headers", or null: no headers. A NUL in data is fine. */
  const char *nh[] = {"{\"data\":\"\"}", "{\"headers\":null,\"data\":\"x\"}",
                      "{\"data\":\"a\\u0000b\",\"headers\":{}}"};
  const size_t nh_len[] = {0, 1, 3};
  for (size_t i = 0; i < 3; i++) {
    dec(&d, nh[i], strlen(nh[i]));
    CHECK_EQ_INT(d.m.format, TM_FS_JSON);
    CHECK_EQ_INT(d.m.header_count, 0);
    CHECK_EQ_INT(d.m.body_len, nh_len[i]);
    dec_free(&d);
  }

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
      "{\"data\":\"x\",\"headers\":[]}",        /* headers not an object */
      "{\"data\":\"x\",\"headers\":\"a\"}",
      "{\"data\":\"x\",\"headers\":{\"a\":1,}}",/* trailing comma */
      "{\"data\":\"x\"} x",                     /* trailing garbage */
      "{\"data\":\"x\",}",
      "{\"data\":'x'}",
      "{\"data\":\"\\ud800\"}",                 /* lone surrogates */
      "{\"data\":\"\\udc00x\"}",
      "{\"data\":\"\\ud800\\u0041\"}",
      "{\"data\":\"x\",\"headers\":{\"a\":\"\\ud83d\"}}",
      "{\"data\":\"x\",\"headers\":{\"a\":\"b\\u0000c\"}}", /* NUL */
      "{\"data\":\"x\",\"headers\":{\"a\\u0000\":\"b\"}}",
      "{\"data\":\"\\x41\"}",                   /* bad escapes */
      "{\"data\":\"\\u12G4\"}",
      "{\"data\":\"\\u12\"}",
      "{\"data\":\"a\tb\"}",                    /* raw control character */
      "{\"data\":\"\xC3\"}",                    /* bad UTF-8 */
      "{\"data\":\"\xED\xA0\x80\"}",
      "{\"data\":\"x\",\"n\":NaN}",             /* not RFC 8259 */
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
      "\xEF\xBB\xBF{\"data\":\"x\"}",           /* BOM */
  };
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) expect_raw_str(raw[i]);

  /* Nesting past the limit, and deep unclosed input: raw, no crash. */
  size_t big = 200000;
  char *deep = xrealloc(NULL, big);
  int n = snprintf(deep, big, "{\"data\":\"\",\"headers\":{\"a\":");
  memset(deep + n, '[', big - (size_t)n);
  expect_raw(deep, big);
  memset(deep + n, '{', big - (size_t)n);
  expect_raw(deep, big);
  n = snprintf(deep, big, "{\"data\":\"\",\"headers\":{\"a\":");
  for (int i = 0; i < 1100; i++) deep[n++] = '[';
  for (int i = 0; i < 1100; i++) deep[n++] = ']';
  deep[n++] = '}';
  deep[n++] = '}';
  expect_raw(deep, (size_t)n);
  free(deep);

  /* More than TIMERS_HEADERS_MAX distinct keys. */
  char many[4096];
  n = snprintf(many, sizeof many, "{\"data\":\"\",\"headers\":{");
  for (int i = 0; i <= TIMERS_HEADERS_MAX; i++)
    n += snprintf(many + n, sizeof many - (size_t)n, "%s\"k%d\":\"v\"",
                  i ? "," : "", i);
  n += snprintf(many + n, sizeof many - (size_t)n, "}}");
  expect_raw(many, (size_t)n);
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
  TEST_RUN(test_order);
  return 0;
}
