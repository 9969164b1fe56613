/*
 * faststream.c - FastStream's payload envelopes: the V1 binary encoder, and
 * a defensive decoder for V1, the legacy JSON envelope and raw bytes.
 *
 * The fallback order and the JSON envelope follow FastStream's parser:
 *  - ag2ai/faststream faststream/redis/parser/binary.py,
 *    BinaryMessageFormatV1.parse: V1 when the magic and version 1 match; if
 *    they do not, or anything in V1 parsing raises, json_loads(data) with
 *    body = parsed["data"].encode() (so "data" must be a str; the body is
 *    its UTF-8) and headers = parsed.get("headers", {}); if that raises,
 *    the input is the body and there are no headers.
 *  - airtai/faststream faststream/redis/parser.py (0.5 line),
 *    JSONMessageFormat: encode writes {"data": msg.data, "headers": ...};
 *    its parse required "headers" (newer ones default it to {}: we do).
 *  - ag2ai/faststream faststream/_internal/_compat.py: json_loads is
 *    orjson.loads when installed, else json.loads; dump_json goes through
 *    pydantic's to_jsonable_python, which renders the body bytes as a UTF-8
 *    str, hence "data" is a JSON string.
 *
 * Where this decoder is stricter than Python (each case falls back instead
 * of guessing):
 *  - V1: the header offset must be >= 18, header offset <= body offset <=
 *    len, and the header block must end exactly at the body offset. Python
 *    slices silently, so an envelope from its encoder with non-ASCII headers
 *    (u16 lengths counting characters) may come out there with truncated
 *    header values; here it is malformed, and becomes RAW.
 *  - JSON: RFC 8259 only, as orjson (no NaN/Infinity, no BOM, no UTF-16/32
 *    detection); at most 1024 levels of nesting (orjson's limit; json.loads
 *    stops near 1000 with RecursionError, which also falls back).
 *  - JSON: a lone surrogate escape anywhere is malformed. (In "data" Python
 *    also fails, at .encode(); in a header value json.loads would keep it.)
 *  - JSON: "headers": null means no headers (Python would return None and
 *    fail later); "headers" of another non-object type is malformed.
 *  - JSON: a header value that is not a string (Python keeps it as an int,
 *    list, ...) is returned as its JSON text, exactly as in the input.
 *  - NUL bytes and duplicate keys: see faststream.h.
 *
 * Bound on the strings buffer: every string written is a copy or an
 * unescaping of a disjoint run of the input that is at least as long as the
 * copy plus its NUL (V1: 2 length bytes per string; JSON: the quotes, or for
 * a non-string header value the key's quotes and the colon), so the decoder
 * writes at most len bytes. Every write is still checked against that
 * limit, and asserted.
 */
#include "faststream.h"

#include "bytes.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

static const unsigned char fs_magic[8] = {0x89, 'B', 'I', 'N',
                                          0x0D, 0x0A, 0x1A, 0x0A};

#define FS_U16_MAX 0xffffu
#define FS_JSON_MAX_DEPTH 1024

/* ------------------------------------------------------------- encoder */

size_t tm__fs_encode_size(const timers_header *h, size_t nh, size_t body_len) {
  if (nh > FS_U16_MAX) return 0;
  uint64_t body_off = TM_FS_PRELUDE + 2;
  for (size_t i = 0; i < nh; i++) {
    size_t k = strlen(h[i].key), v = strlen(h[i].value);
    if (k > FS_U16_MAX || v > FS_U16_MAX) return 0;
    body_off += 4 + (uint64_t)k + v;
  }
  if (body_off > UINT32_MAX || body_len > SIZE_MAX - (size_t)body_off)
    return 0;
  return (size_t)body_off + body_len;
}

static char *put_string(char *p, const char *s) {
  size_t n = strlen(s);
  assert(n <= FS_U16_MAX);
  p = tm__put_be(p, n, 2);
  memcpy(p, s, n);
  return p + n;
}

void tm__fs_encode(const timers_header *h, size_t nh, const void *body,
                   size_t body_len, char *out) {
  assert(tm__fs_encode_size(h, nh, body_len) != 0);
  char *p = tm__put_be(out + TM_FS_PRELUDE, nh, 2);
  for (size_t i = 0; i < nh; i++) {
    p = put_string(p, h[i].key);
    p = put_string(p, h[i].value);
  }
  size_t body_off = (size_t)(p - out);
  char *q = out;
  memcpy(q, fs_magic, sizeof fs_magic);
  q = tm__put_be(q + sizeof fs_magic, TM_FS_VERSION, 2);
  q = tm__put_be(q, TM_FS_PRELUDE, 4);
  tm__put_be(q, body_off, 4);
  if (body_len) memcpy(p, body, body_len);
}

/* ------------------------------------------------- decoder: shared parts */

/* Headers and strings filled so far by one decoding attempt. */
typedef struct fs_ctx {
  timers_header *headers; /* capacity TIMERS_HEADERS_MAX */
  size_t count;
  char *w;           /* next free byte of strings */
  const char *limit; /* strings + len: see the bound in the design note */
} fs_ctx;

/* Room for n bytes and a NUL at c->w. Never false, by the bound above. */
static bool ctx_room(const fs_ctx *c, size_t n) {
  bool ok = n < (size_t)(c->limit - c->w);
  assert(ok);
  return ok;
}

/* Copies n bytes as a C string into strings; NULL if there is no room. */
static const char *ctx_copy(fs_ctx *c, const char *src, size_t n) {
  if (!ctx_room(c, n)) return NULL;
  char *s = c->w;
  memcpy(s, src, n);
  s[n] = '\0';
  c->w += n + 1;
  return s;
}

/* Adds a header, a repeated key taking the new value in place. */
static int ctx_add_header(fs_ctx *c, const char *key, const char *value) {
  for (size_t i = 0; i < c->count; i++)
    if (strcmp(c->headers[i].key, key) == 0) {
      c->headers[i].value = value;
      return 0;
    }
  if (c->count == TIMERS_HEADERS_MAX) return -1;
  c->headers[c->count].key = key;
  c->headers[c->count].value = value;
  c->count++;
  return 0;
}

/* Length of the well-formed UTF-8 sequence at p (avail >= 1), 0 if it is
 * not one: no overlong forms, no surrogates, nothing past U+10FFFF; the
 * same set Python's strict "utf-8" codec and orjson accept. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

/* Whether s[0, n) is UTF-8 without NUL: acceptable as a header string. */
static bool header_text_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = p[i] ? utf8_seq(p + i, n - i) : 0;
    if (!k) return false;
    i += k;
  }
  return true;
}

/* ---------------------------------------------------------- decoder: V1 */

/* One u16-length-prefixed string of the header block [*pp, end). */
static int bin_string(const char **pp, const char *end, fs_ctx *c,
                      const char **out) {
  const char *p = *pp;
  if (end - p < 2) return -1;
  size_t n = tm__get_be(p, 2);
  p += 2;
  if ((size_t)(end - p) < n || !header_text_ok(p, n)) return -1;
  if (!(*out = ctx_copy(c, p, n))) return -1;
  *pp = p + n;
  return 0;
}

static int bin_decode(const char *buf, size_t len, fs_ctx *c,
                      tm_fs_message *out) {
  if (len < TM_FS_PRELUDE + 2 || memcmp(buf, fs_magic, sizeof fs_magic) != 0 ||
      tm__get_be(buf + 8, 2) != TM_FS_VERSION)
    return -1;
  size_t hoff = tm__get_be(buf + 10, 4), boff = tm__get_be(buf + 14, 4);
  if (hoff < TM_FS_PRELUDE || hoff > boff || boff > len || boff - hoff < 2)
    return -1;
  size_t count = tm__get_be(buf + hoff, 2);
  if (count > TIMERS_HEADERS_MAX) return -1;
  const char *p = buf + hoff + 2, *end = buf + boff;
  for (size_t i = 0; i < count; i++) {
    const char *key, *value;
    if (bin_string(&p, end, c, &key) != 0 ||
        bin_string(&p, end, c, &value) != 0 ||
        ctx_add_header(c, key, value) != 0)
      return -1;
  }
  if (p != end) return -1; /* lengths that do not add up */
  out->format = TM_FS_BINARY;
  out->body = end;
  out->body_len = len - boff;
  return 0;
}

/* -------------------------------------------------------- decoder: JSON */

typedef struct json {
  const char *p, *end;
  fs_ctx *c;
} json;

static void json_ws(json *j) {
  while (j->p < j->end &&
         (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

/* Skips blanks, then consumes ch if it is next. */
static bool json_eat(json *j, char ch) {
  json_ws(j);
  if (j->p < j->end && *j->p == ch) {
    j->p++;
    return true;
  }
  return false;
}

static bool json_peek(json *j, char ch) {
  json_ws(j);
  return j->p < j->end && *j->p == ch;
}

static int hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char h = p[i];
    unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                 : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                 : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                        : 16u;
    if (d == 16) return -1;
    *v = (*v << 4) | d;
  }
  return 0;
}

/* After "\u": one code point, a surrogate pair joined; lone halves fail. */
static int json_u(json *j, unsigned *cp) {
  unsigned lo;
  if (j->end - j->p < 4 || hex4(j->p, cp) != 0) return -1;
  j->p += 4;
  if (*cp >= 0xDC00 && *cp <= 0xDFFF) return -1;
  if (*cp < 0xD800 || *cp > 0xDBFF) return 0;
  if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
      hex4(j->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
    return -1;
  j->p += 6;
  *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
  return 0;
}

/* Writes cp as UTF-8 at dst (when not NULL); returns its length. */
static size_t put_utf8(char *dst, unsigned cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | cp >> 6);
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | cp >> 12);
    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | cp >> 18);
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  if (dst) memcpy(dst, b, n);
  return n;
}

/* After a backslash: the escape's code point. */
static int json_escape(json *j, unsigned *cp) {
  if (j->p >= j->end) return -1;
  char e = *j->p++;
  switch (e) {
    case '"': case '\\': case '/': *cp = (unsigned char)e; return 0;
    case 'b': *cp = '\b'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'u': return json_u(j, cp);
    default: return -1;
  }
}

/* A string at j->p (its opening quote), unescaped into dst[0, cap) when
 * dst is not NULL (always leaving room for a NUL), else only validated. */
static int json_string(json *j, char *dst, size_t cap, size_t *len) {
  size_t n = 0;
  if (j->p >= j->end || *j->p != '"') return -1;
  for (j->p++;;) {
    if (j->p >= j->end) return -1;
    unsigned char ch = (unsigned char)*j->p;
    size_t k;
    unsigned cp = 0;
    if (ch == '"') break;
    if (ch < 0x20) return -1;
    const char *src = j->p;
    if (ch == '\\') {
      j->p++;
      if (json_escape(j, &cp) != 0) return -1;
      k = put_utf8(NULL, cp);
    } else {
      if (!(k = utf8_seq((const unsigned char *)j->p, (size_t)(j->end - j->p))))
        return -1;
      j->p += k;
    }
    if (dst) {
      if (n + k >= cap) { assert(!"strings bound"); return -1; }
      if (ch == '\\') put_utf8(dst + n, cp);
      else memcpy(dst + n, src, k);
    }
    n += k;
  }
  j->p++;
  *len = n;
  return 0;
}

/* A string unescaped into the strings buffer, NUL-terminated. */
static int json_take(json *j, const char **s, size_t *len) {
  fs_ctx *c = j->c;
  char *dst = c->w;
  if (!ctx_room(c, 0)) return -1;
  if (json_string(j, dst, (size_t)(c->limit - dst), len) != 0) return -1;
  dst[*len] = '\0';
  c->w += *len + 1;
  *s = dst;
  return 0;
}

static size_t json_digits(json *j) {
  const char *s = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  return (size_t)(j->p - s);
}

static int json_number(json *j) {
  if (j->p < j->end && *j->p == '-') j->p++;
  if (j->p < j->end && *j->p == '0') j->p++;
  else if (j->p >= j->end || *j->p < '1' || *j->p > '9' || !json_digits(j))
    return -1;
  if (j->p < j->end && *j->p == '.') {
    j->p++;
    if (!json_digits(j)) return -1;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (!json_digits(j)) return -1;
  }
  return 0;
}

static bool json_literal(json *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return false;
  j->p += n;
  return true;
}

/* A string, number, true, false or null at j->p, validated. */
static int json_scalar(json *j) {
  size_t n;
  if (j->p >= j->end) return -1;
  switch (*j->p) {
    case '"': return json_string(j, NULL, 0, &n);
    case 't': return json_literal(j, "true") ? 0 : -1;
    case 'f': return json_literal(j, "false") ? 0 : -1;
    case 'n': return json_literal(j, "null") ? 0 : -1;
    default: return json_number(j);
  }
}

/* An object member's key and colon, validated. */
static int json_key(json *j) {
  size_t n;
  json_ws(j);
  if (json_string(j, NULL, 0, &n) != 0) return -1;
  return json_eat(j, ':') ? 0 : -1;
}

/* Open containers of json_skip: one bit per level, set for an object. */
typedef struct json_stack {
  unsigned char obj[FS_JSON_MAX_DEPTH / 8];
  int depth, max;
} json_stack;

static bool stack_obj(const json_stack *s) {
  return s->obj[(s->depth - 1) / 8] & (1u << ((s->depth - 1) % 8));
}

/* After a value: closes containers; 1 when the outermost value is done,
 * 0 when another value follows (its key consumed), -1 on a syntax error. */
static int json_after_value(json *j, json_stack *s) {
  while (s->depth > 0) {
    bool obj = stack_obj(s);
    if (json_eat(j, ',')) return obj && json_key(j) != 0 ? -1 : 0;
    if (!json_eat(j, obj ? '}' : ']')) return -1;
    s->depth--;
  }
  return 1;
}

/* Validates one value of any type without recursion; `open` containers
 * enclose it already (they count towards the depth limit). */
static int json_skip(json *j, int open) {
  json_stack s = {.depth = 0, .max = FS_JSON_MAX_DEPTH - open};
  for (;;) {
    json_ws(j);
    if (j->p >= j->end) return -1;
    char ch = *j->p;
    if (ch == '{' || ch == '[') {
      if (s.depth >= s.max) return -1;
      unsigned char bit = (unsigned char)(1u << (s.depth % 8));
      if (ch == '{') s.obj[s.depth / 8] |= bit;
      else s.obj[s.depth / 8] &= (unsigned char)~bit;
      s.depth++;
      j->p++;
      if (!json_eat(j, ch == '{' ? '}' : ']')) {
        if (ch == '{' && json_key(j) != 0) return -1;
        continue;
      }
      s.depth--;
    } else if (json_scalar(j) != 0) {
      return -1;
    }
    int rc = json_after_value(j, &s);
    if (rc != 0) return rc > 0 ? 0 : -1;
  }
}

/* One member of "headers": a string key, any value. */
static int json_header(json *j) {
  const char *key, *value;
  size_t klen, vlen;
  json_ws(j);
  if (json_take(j, &key, &klen) != 0 || !json_eat(j, ':')) return -1;
  if (json_peek(j, '"')) {
    if (json_take(j, &value, &vlen) != 0) return -1;
  } else {
    const char *s = j->p;
    if (json_skip(j, 2) != 0) return -1;
    vlen = (size_t)(j->p - s);
    if (!(value = ctx_copy(j->c, s, vlen))) return -1;
  }
  if (memchr(key, '\0', klen) || memchr(value, '\0', vlen)) return -1;
  return ctx_add_header(j->c, key, value);
}

/* The value of "headers"; a later "headers" member replaces an earlier. */
static int json_headers(json *j, bool *bad) {
  json_ws(j);
  *bad = false;
  j->c->count = 0;
  if (json_literal(j, "null")) return 0;
  if (!json_eat(j, '{')) {
    *bad = true;
    return json_skip(j, 1);
  }
  if (json_eat(j, '}')) return 0;
  do {
    if (json_header(j) != 0) return -1;
  } while (json_eat(j, ','));
  return json_eat(j, '}') ? 0 : -1;
}

/* The value of "data": *data becomes 1 for a string (the body), -1 for any
 * other type (Python's .encode() would raise); the last member wins. */
static int json_data(json *j, tm_fs_message *out, int *data) {
  const char *s;
  size_t n;
  if (!json_peek(j, '"')) {
    *data = -1;
    return json_skip(j, 1);
  }
  if (json_take(j, &s, &n) != 0) return -1;
  out->body = s;
  out->body_len = n;
  *data = 1;
  return 0;
}

static int json_member(json *j, tm_fs_message *out, int *data, bool *bad) {
  const char *key;
  size_t klen;
  char *mark = j->c->w;
  json_ws(j);
  if (json_take(j, &key, &klen) != 0 || !json_eat(j, ':')) return -1;
  bool is_data = klen == 4 && memcmp(key, "data", 4) == 0;
  bool is_headers = klen == 7 && memcmp(key, "headers", 7) == 0;
  j->c->w = mark; /* the key itself is not kept */
  if (is_data) return json_data(j, out, data);
  if (is_headers) return json_headers(j, bad);
  return json_skip(j, 1);
}

static int json_decode(const char *buf, size_t len, fs_ctx *c,
                       tm_fs_message *out) {
  json j = {buf, buf + len, c};
  int data = 0;
  bool bad_headers = false;
  if (!json_eat(&j, '{')) return -1;
  if (!json_eat(&j, '}')) {
    do {
      if (json_member(&j, out, &data, &bad_headers) != 0) return -1;
    } while (json_eat(&j, ','));
    if (!json_eat(&j, '}')) return -1;
  }
  json_ws(&j);
  if (j.p != j.end || data != 1 || bad_headers) return -1;
  out->format = TM_FS_JSON;
  return 0;
}

/* ------------------------------------------------------------- decoder */

int tm__fs_decode(const char *buf, size_t len, tm_fs_message *out,
                  timers_header *headers, char *strings) {
  fs_ctx c = {headers, 0, strings, strings + len};
  out->format = TM_FS_RAW;
  out->body = buf;
  out->body_len = len;
  out->header_count = 0;
  if (len == 0) return -1;
  int rc = bin_decode(buf, len, &c, out);
  if (rc != 0) {
    c.count = 0; /* nothing of the failed attempt is kept */
    c.w = strings;
    rc = json_decode(buf, len, &c, out);
  }
  if (rc != 0) {
    out->body = buf;
    out->body_len = len;
    return -1;
  }
  out->header_count = c.count;
  return 0;
}
