/*
 * faststream.c - faststream-redis-timers' payload envelopes: the V1 binary
 * encoder, its publisher's header and content-type rules, and a decoder
 * that gives what the library's parser gives, byte for byte.
 *
 * The reading rules come from (FASTSTREAM.md cites them in full):
 *  - modern-python/faststream-redis-timers envelope.py,
 *    TimerMessageFormat.parse: input starting with '{' goes through
 *    json.loads (the standard library); an object with "b" is the 0.x
 *    envelope: bytes.fromhex(b), which raising makes parser/parser.py
 *    remove the timer; content-type = ct when truthy. Otherwise:
 *  - ag2ai/faststream faststream/redis/parser/binary.py,
 *    BinaryMessageFormatV1.parse with its BinaryReader: slices that stop at
 *    the end of the input instead of failing, u16 lengths used as byte
 *    counts, strict UTF-8 decoding, the body from the body offset (empty
 *    past the end), no check that the header block ends there. Anything
 *    raising falls back to json_loads(data) with body = data["data"]
 *    .encode() and headers = data.get("headers", {}), then to raw bytes.
 *  - json_loads is orjson.loads when orjson is installed, else json.loads;
 *    neither FastStream nor the timers library depends on orjson, so the
 *    standard library's rules are followed: NaN, Infinity and -Infinity
 *    are numbers; a lone surrogate (escaped, or raw bytes through the
 *    "surrogatepass" decoding) is kept in a string, which a C string
 *    cannot hold, and .encode() of a body holding one raises; a UTF-8 BOM
 *    is skipped.
 *
 * Where this decoder cannot be Python (FASTSTREAM.md, "Known gaps"):
 *  - a header string holding a NUL or a lone surrogate is left out and
 *    counted in headers_dropped;
 *  - JSON in UTF-16 or UTF-32 (json.loads detects them from NUL bytes and
 *    BOMs) is not decoded: that input falls back to the next format;
 *  - nesting deeper than FS_JSON_MAX_DEPTH containers counts as Python's
 *    RecursionError, whose real depth depends on the Python version;
 *  - a non-string legacy "ct" is tested for truthiness as Python does,
 *    numbers to 17 significant digits near the smallest double.
 *
 * Bounds: TM_FS_HEADERS_MAX_OF and TM_FS_STRINGS_SIZE in faststream.h say
 * why the caller's arrays suffice; every write is still checked against
 * them, and asserted.
 */
#include "faststream.h"

#include "bytes.h"
#include "utf8.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

static const unsigned char fs_magic[8] = {0x89, 'B', 'I', 'N',
                                          0x0D, 0x0A, 0x1A, 0x0A};

static const char fs_content_type_key[] = "content-type";

#define FS_JSON_MAX_DEPTH 1024
/* Up to this many headers a repeated key is looked for by a linear scan;
 * past it through the index. */
#define FS_LINEAR_MAX 16

/* ------------------------------------------------------------- encoder */

size_t tm__fs_encode_size(const timers_header *h, size_t nh, size_t body_len) {
  if (nh > TM_FS_U16_MAX) return 0;
  uint64_t body_off = TM_FS_PRELUDE + 2;
  for (size_t i = 0; i < nh; i++) {
    size_t k = strlen(h[i].key), v = strlen(h[i].value);
    if (k > TM_FS_U16_MAX || v > TM_FS_U16_MAX) return 0;
    body_off += 4 + (uint64_t)k + v;
  }
  if (body_off > UINT32_MAX || body_len > SIZE_MAX - (size_t)body_off)
    return 0;
  return (size_t)body_off + body_len;
}

static char *put_string(char *p, const char *s) {
  size_t n = strlen(s);
  assert(n <= TM_FS_U16_MAX);
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

size_t tm__fs_publish_headers(const char *correlation_id,
                              const char *content_type, const timers_header *h,
                              size_t nh, timers_header *out) {
  size_t n = 0;
  out[n++] = (timers_header){"correlation_id", correlation_id};
  if (content_type) out[n++] = (timers_header){fs_content_type_key, content_type};
  for (size_t i = 0; i < nh; i++) {
    size_t k = 0;
    while (k < n && strcmp(out[k].key, h[i].key) != 0) k++;
    if (k == n) out[n++].key = h[i].key;
    out[k].value = h[i].value;
  }
  return n;
}

/* ------------------------------------------------------- UTF-8, shared */

/* ------------------------------------------------ decoder: the headers */

/* The headers of one decoding attempt and its strings. An entry whose
 * value is NULL is a key Python has with a value C cannot hold: it keeps
 * the key's position (a later valid value for it restores the header) and
 * is removed at the end. */
typedef struct fs_ctx {
  timers_header *h;
  size_t cap;            /* TM_FS_HEADERS_MAX_OF(len)                     */
  size_t count;
  size_t bad_keys;       /* headers whose key C cannot hold (not in h)    */
  unsigned char *index;  /* h[cap, 2 * cap) as uint32 slots: entry + 1    */
  size_t index_max;      /* slots that fit there                          */
  size_t slots;          /* slots in use; 0: linear scan                  */
  char *strings, *w;     /* the strings buffer, its next free byte        */
  const char *limit;     /* strings + len                                 */
} fs_ctx;

static void ctx_init(fs_ctx *c, timers_header *h, size_t len, char *strings) {
  c->h = h;
  c->cap = TM_FS_HEADERS_MAX_OF(len);
  c->index = (unsigned char *)(h + c->cap);
  c->index_max = c->cap * sizeof *h / sizeof(uint32_t);
  c->strings = strings;
  c->limit = strings + len;
}

static void ctx_reset(fs_ctx *c) {
  c->count = 0;
  c->bad_keys = 0;
  c->slots = 0;
  c->w = c->strings;
}

/* Room for n bytes and a NUL at c->w. Never false, by the bound. */
static bool ctx_room(const fs_ctx *c, size_t n) {
  bool ok = n < (size_t)(c->limit - c->w);
  assert(ok);
  return ok;
}

/* Copies n bytes as a C string into strings; NULL if there is no room. */
static const char *ctx_copy(fs_ctx *c, const char *src, size_t n) {
  if (!ctx_room(c, n)) return NULL;
  char *s = c->w;
  if (n) memcpy(s, src, n);
  s[n] = '\0';
  c->w += n + 1;
  return s;
}

static uint32_t slot_get(const fs_ctx *c, size_t i) {
  uint32_t v;
  memcpy(&v, c->index + i * sizeof v, sizeof v);
  return v;
}

static void slot_set(fs_ctx *c, size_t i, uint32_t v) {
  memcpy(c->index + i * sizeof v, &v, sizeof v);
}

static size_t key_hash(const char *k) {
  uint32_t h = 0x811c9dc5u; /* FNV-1a */
  for (; *k; k++) h = (h ^ (unsigned char)*k) * 0x01000193u;
  return h;
}

/* The slot holding key, or the empty one where it goes. Terminates: the
 * table is at most half full. */
static size_t index_find(const fs_ctx *c, const char *key) {
  for (size_t i = key_hash(key) % c->slots;; i = (i + 1) % c->slots) {
    uint32_t v = slot_get(c, i);
    if (v == 0 || strcmp(c->h[v - 1].key, key) == 0) return i;
  }
}

/* (Re)builds the index at 8 slots per entry, at most index_max: since
 * index_max >= 2 * cap >= 2 * count, the table stays at most half full, and
 * growing by 8 keeps the total rebuild work linear. */
static void index_build(fs_ctx *c) {
  size_t want = 8 * c->count;
  c->slots = want < c->index_max ? want : c->index_max;
  memset(c->index, 0, c->slots * sizeof(uint32_t));
  for (size_t e = 0; e < c->count; e++)
    slot_set(c, index_find(c, c->h[e].key), (uint32_t)(e + 1));
}

/* headers[key] = value, as a Python dict does (value NULL: see fs_ctx). */
static int ctx_put(fs_ctx *c, const char *key, const char *value) {
  size_t slot = 0;
  if (c->slots) {
    slot = index_find(c, key);
    uint32_t v = slot_get(c, slot);
    if (v) {
      c->h[v - 1].value = value;
      return 0;
    }
  } else {
    for (size_t e = 0; e < c->count; e++)
      if (strcmp(c->h[e].key, key) == 0) {
        c->h[e].value = value;
        return 0;
      }
  }
  if (c->count == c->cap) {
    assert(!"headers bound");
    return -1;
  }
  c->h[c->count++] = (timers_header){key, value};
  if (c->slots && 2 * c->count <= c->slots)
    slot_set(c, slot, (uint32_t)c->count);
  else if (c->slots || (c->count > FS_LINEAR_MAX && c->cap < UINT32_MAX))
    index_build(c);
  return 0;
}

/* Drops the entries C cannot hold, keeping the order of the others. */
static void ctx_finish(fs_ctx *c, tm_fs_message *out) {
  size_t n = 0;
  for (size_t e = 0; e < c->count; e++)
    if (c->h[e].value) c->h[n++] = c->h[e];
  out->header_count = n;
  out->headers_dropped = c->bad_keys + (c->count - n);
}

/* ---------------------------------------------------------- decoder: V1 */

/* BinaryReader.read_short at *off: both bytes inside the input. */
static bool rd_u16(const char *buf, size_t len, uint64_t *off, size_t *v) {
  if (len < 2 || *off > len - 2) return false;
  *v = (size_t)tm__get_be(buf + *off, 2);
  *off += 2;
  return true;
}

/* BinaryReader.read_string: n bytes after the length, cut short by the end
 * of the input, then strict UTF-8. *s is NULL when the string holds a NUL
 * (valid in Python, not in a C string). */
static int bin_string(const char *buf, size_t len, uint64_t *off, fs_ctx *c,
                      const char **s) {
  size_t n;
  if (!rd_u16(buf, len, off, &n)) return -1;
  size_t take = *off >= len ? 0 : TM__FS_MIN(n, (size_t)(len - *off));
  const char *p = buf + (take ? *off : 0);
  if (!tm__utf8_valid(p, take)) return -1;
  *s = NULL;
  if (!memchr(p, '\0', take) && !(*s = ctx_copy(c, p, take))) return -1;
  *off += n;
  return 0;
}

static int bin_decode(const char *buf, size_t len, fs_ctx *c,
                      tm_fs_message *out) {
  if (len < TM_FS_PRELUDE || memcmp(buf, fs_magic, sizeof fs_magic) != 0 ||
      tm__get_be(buf + 8, 2) != TM_FS_VERSION)
    return -1;
  uint64_t off = tm__get_be(buf + 10, 4);
  size_t boff = (size_t)tm__get_be(buf + 14, 4), count;
  if (!rd_u16(buf, len, &off, &count)) return -1;
  for (size_t i = 0; i < count; i++) {
    const char *key, *value;
    if (bin_string(buf, len, &off, c, &key) != 0 ||
        bin_string(buf, len, &off, c, &value) != 0)
      return -1;
    if (!key)
      c->bad_keys++;
    else if (ctx_put(c, key, value) != 0)
      return -1;
  }
  out->format = TM_FS_BINARY;
  out->body = boff < len ? buf + boff : buf + len;
  out->body_len = boff < len ? len - boff : 0;
  return 0;
}

/* -------------------------------------------------------- decoder: JSON */

/* One JSON text being read. py: Python's json.loads (NaN and Infinity,
 * surrogates kept); otherwise RFC 8259. */
typedef struct json {
  const char *p, *end;
  fs_ctx *c;  /* where strings go; NULL when only validating */
  bool py;
  bool deep;  /* failed for nesting (Python: RecursionError) */
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

static int hex_digit(char h) {
  return h >= '0' && h <= '9'   ? h - '0'
         : h >= 'a' && h <= 'f' ? h - 'a' + 10
         : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                : -1;
}

static int hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(p[i]);
    if (d < 0) return -1;
    *v = (*v << 4) | (unsigned)d;
  }
  return 0;
}

/* After "\u": one code point, a surrogate pair joined. A lone half is kept
 * in py mode (*surr set) and refused otherwise; a "\u" after a high half
 * must be 4 hex digits either way. */
static int json_u(json *j, unsigned *cp, bool *surr) {
  unsigned lo;
  if (j->end - j->p < 4 || hex4(j->p, cp) != 0) return -1;
  j->p += 4;
  if (*cp < 0xD800 || *cp > 0xDFFF) return 0;
  if (*cp <= 0xDBFF && j->end - j->p >= 2 && j->p[0] == '\\' &&
      j->p[1] == 'u') {
    if (j->end - j->p < 6 || hex4(j->p + 2, &lo) != 0) return -1;
    if (lo >= 0xDC00 && lo <= 0xDFFF) {
      j->p += 6;
      *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
      return 0;
    }
  }
  *surr = true;
  return j->py ? 0 : -1;
}

/* Writes cp as UTF-8 (a lone surrogate as its 3-byte form) at dst when not
 * NULL; returns its length. */
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
static int json_escape(json *j, unsigned *cp, bool *surr) {
  if (j->p >= j->end) return -1;
  char e = *j->p++;
  switch (e) {
    case '"': case '\\': case '/': *cp = (unsigned char)e; return 0;
    case 'b': *cp = '\b'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'u': return json_u(j, cp, surr);
    default: return -1;
  }
}

/* One character of a string body at j->p: its UTF-8 into dst when not
 * NULL, its length into *k. */
static int json_char(json *j, char *dst, size_t *k, bool *surr) {
  unsigned char ch = (unsigned char)*j->p;
  if (ch < 0x20) return -1;
  if (ch == '\\') {
    unsigned cp = 0;
    j->p++;
    if (json_escape(j, &cp, surr) != 0) return -1;
    *k = put_utf8(dst, cp);
    return 0;
  }
  const char *src = j->p;
  *k = tm__utf8_seq_ex((const unsigned char *)src, (size_t)(j->end - src),
                       j->py, surr);
  if (!*k) return -1;
  if (dst) memcpy(dst, src, *k);
  j->p += *k;
  return 0;
}

/* A string at j->p (its opening quote), unescaped into dst[0, cap) when
 * dst is not NULL (always leaving room for a NUL), else only validated.
 * *surr tells whether it holds a surrogate code point. */
static int json_string(json *j, char *dst, size_t cap, size_t *len,
                       bool *surr) {
  size_t n = 0;
  *surr = false;
  if (j->p >= j->end || *j->p != '"') return -1;
  for (j->p++;;) {
    if (j->p >= j->end) return -1;
    if (*j->p == '"') break;
    char tmp[4];
    size_t k;
    if (json_char(j, dst ? tmp : NULL, &k, surr) != 0) return -1;
    if (dst) {
      if (n + k >= cap) {
        assert(!"strings bound");
        return -1;
      }
      memcpy(dst + n, tmp, k);
    }
    n += k;
  }
  j->p++;
  *len = n;
  return 0;
}

/* A string unescaped into the strings buffer, NUL-terminated. */
static int json_take(json *j, const char **s, size_t *len, bool *surr) {
  fs_ctx *c = j->c;
  char *dst = c->w;
  if (!ctx_room(c, 0)) return -1;
  if (json_string(j, dst, (size_t)(c->limit - dst), len, surr) != 0)
    return -1;
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

static bool json_literal(json *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return false;
  j->p += n;
  return true;
}

/* A number; in py mode also NaN, Infinity, -Infinity. (Python's scanner
 * backtracks over a bare "." or "e", which then fails as extra text: the
 * same verdict as RFC 8259's grammar.) */
static int json_number(json *j) {
  if (j->py && (json_literal(j, "NaN") || json_literal(j, "Infinity") ||
                json_literal(j, "-Infinity")))
    return 0;
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

/* A string, number, true, false or null at j->p, validated. */
static int json_scalar(json *j) {
  size_t n;
  bool surr;
  if (j->p >= j->end) return -1;
  switch (*j->p) {
    case '"': return json_string(j, NULL, 0, &n, &surr);
    case 't': return json_literal(j, "true") ? 0 : -1;
    case 'f': return json_literal(j, "false") ? 0 : -1;
    case 'n': return json_literal(j, "null") ? 0 : -1;
    default: return json_number(j);
  }
}

/* An object member's key and colon, validated. */
static int json_key(json *j) {
  size_t n;
  bool surr;
  json_ws(j);
  if (json_string(j, NULL, 0, &n, &surr) != 0) return -1;
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
      if (s.depth >= s.max) {
        j->deep = true;
        return -1;
      }
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

/* A value of any type copied as its JSON text into strings. */
static int json_copy_value(json *j, int open, const char **s, size_t *len) {
  json_ws(j);
  const char *start = j->p;
  if (json_skip(j, open) != 0) return -1;
  *len = (size_t)(j->p - start);
  return (*s = ctx_copy(j->c, start, *len)) ? 0 : -1;
}

/* Where json.loads(bytes) would start reading: after a UTF-8 BOM; -1 for
 * the UTF-16 and UTF-32 texts it detects (not decoded here). */
static int py_text_start(const char *buf, size_t len, size_t *start) {
  const unsigned char *b = (const unsigned char *)buf;
  *start = 0;
  if (len >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) ||
                   (b[0] == 0xFE && b[1] == 0xFF)))
    return -1; /* BOMs of UTF-16 and UTF-32 (00 00 FE FF caught below) */
  if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) {
    *start = 3;
    return 0;
  }
  if ((len >= 4 || len == 2) && (b[0] == 0 || b[1] == 0)) return -1;
  return 0;
}

/* A top-level object: calls member(j, key, klen, ctx) positioned at each
 * value, which must consume it. Keys are unescaped into strings and given
 * back afterwards. */
typedef int (*json_member_fn)(json *j, const char *key, size_t klen,
                              void *ctx);

static int json_object(json *j, json_member_fn member, void *ctx) {
  if (!json_eat(j, '{')) return -1;
  if (json_eat(j, '}')) return 0;
  do {
    const char *key;
    size_t klen;
    bool surr;
    char *mark = j->c->w;
    json_ws(j);
    if (json_take(j, &key, &klen, &surr) != 0 || !json_eat(j, ':')) return -1;
    j->c->w = mark; /* member() compares it before writing anything */
    if (surr) klen = 0; /* matches no member name */
    if (member(j, key, klen, ctx) != 0) return -1;
  } while (json_eat(j, ','));
  return json_eat(j, '}') ? 0 : -1;
}

static bool key_is(const char *key, size_t klen, const char *name) {
  return klen == strlen(name) && memcmp(key, name, klen) == 0;
}

/* The whole input as one JSON object, Python's way. */
static int json_py_document(const char *buf, size_t len, fs_ctx *c,
                            json_member_fn member, void *ctx, bool *deep) {
  size_t start;
  if (py_text_start(buf, len, &start) != 0) return -1;
  json j = {buf + start, buf + len, c, true, false};
  json_ws(&j);
  int rc = json_object(&j, member, ctx);
  if (rc == 0) {
    json_ws(&j);
    rc = j.p == j.end ? 0 : -1;
  }
  *deep = j.deep;
  return rc;
}

/* ------------------------------------------- decoder: FastStream's JSON */

typedef struct fs_json {
  tm_fs_message *out;
  int data;          /* 0 absent, 1 a string without surrogates, -1 other */
  int headers;       /* 0 absent, 1 an object, -1 another type */
} fs_json;

/* One member of "headers": a string key, any value. */
static int json_header(json *j) {
  const char *key, *value;
  size_t klen, vlen;
  bool ksurr, vsurr = false;
  json_ws(j);
  if (json_take(j, &key, &klen, &ksurr) != 0 || !json_eat(j, ':')) return -1;
  json_ws(j);
  if (json_peek(j, '"')) {
    if (json_take(j, &value, &vlen, &vsurr) != 0) return -1;
  } else if (json_copy_value(j, 2, &value, &vlen) != 0) {
    return -1;
  }
  if (ksurr || memchr(key, '\0', klen)) {
    j->c->bad_keys++;
    return 0;
  }
  if (vsurr || memchr(value, '\0', vlen)) value = NULL;
  return ctx_put(j->c, key, value);
}

/* The value of "headers"; a later "headers" member replaces an earlier. */
static int json_headers(json *j, fs_json *f) {
  fs_ctx *c = j->c;
  c->count = c->bad_keys = c->slots = 0;
  if (!json_peek(j, '{')) {
    f->headers = -1;
    return json_skip(j, 1);
  }
  f->headers = 1;
  j->p++;
  if (json_eat(j, '}')) return 0;
  do {
    if (json_header(j) != 0) return -1;
  } while (json_eat(j, ','));
  return json_eat(j, '}') ? 0 : -1;
}

static int fs_json_member(json *j, const char *key, size_t klen, void *ctx) {
  fs_json *f = ctx;
  if (key_is(key, klen, "headers")) return json_headers(j, f);
  if (!key_is(key, klen, "data")) return json_skip(j, 1);
  if (!json_peek(j, '"')) {
    f->data = -1;
    return json_skip(j, 1);
  }
  const char *s;
  size_t n;
  bool surr;
  if (json_take(j, &s, &n, &surr) != 0) return -1;
  f->out->body = s;
  f->out->body_len = n;
  f->data = surr ? -1 : 1; /* .encode() of a lone surrogate raises */
  return 0;
}

static int json_decode(const char *buf, size_t len, fs_ctx *c,
                       tm_fs_message *out) {
  fs_json f = {out, 0, 0};
  bool deep;
  if (json_py_document(buf, len, c, fs_json_member, &f, &deep) != 0 ||
      f.data != 1)
    return -1; /* RecursionError too: FastStream catches Exception */
  if (f.headers < 0) {
    c->count = c->bad_keys = 0;
    out->python = TM_FS_PY_STUCK; /* the timers parser calls headers.get */
  }
  out->format = TM_FS_JSON;
  return 0;
}

/* ------------------------------- decoder: faststream-redis-timers 0.x */

typedef struct fs_legacy {
  int b;            /* 0 absent, 1 a string, -1 another type */
  char *b_text;     /* the unescaped string, in strings */
  size_t b_len;
  bool b_surr;
  int ct;           /* 0 absent or falsy, 1 a string, 2 another truthy */
  const char *ct_text;
  size_t ct_len;
  bool ct_surr;
} fs_legacy;

/* Whether a JSON number's text is 0.0 to Python's float() or int(): all
 * its digits zero, or below half the smallest double (4.94e-324), compared
 * on 17 significant digits. */
static bool number_is_zero(const char *s, size_t n) {
  static const char half_min[] = "24703282292062327";
  const char *p = s + (n > 0 && *s == '-'), *end = s + n, *first = NULL;
  long intdigits = 0, pos = 0, first_pos = 0, e = 0;
  bool frac = false;
  for (; p < end && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.') {
      frac = true;
      continue;
    }
    intdigits += !frac;
    if (*p != '0' && !first) {
      first = p;
      first_pos = pos;
    }
    pos++;
  }
  if (!first) return true;
  if (p < end) { /* the exponent, saturated */
    bool neg = ++p < end && *p == '-';
    p += p < end && (*p == '-' || *p == '+');
    for (; p < end && e < 100000; p++) e = e * 10 + (*p - '0');
    e = neg ? -e : e;
  }
  e += intdigits - 1 - first_pos; /* value = first.rest x 10^e */
  if (e != -324) return e < -324;
  char sig[17];
  size_t k = 0;
  for (const char *q = first; q < end && *q != 'e' && *q != 'E' && k < 17; q++)
    if (*q != '.') sig[k++] = *q;
  while (k < 17) sig[k++] = '0';
  return memcmp(sig, half_min, 17) <= 0;
}

/* Python's truth value of a JSON value's text (not a string). */
static bool json_truthy(const char *s, size_t n) {
  json j = {s + 1, s + n, NULL, true, false};
  switch (s[0]) {
    case '{': return !json_peek(&j, '}');
    case '[': return !json_peek(&j, ']');
    case 't': case 'N': case 'I': return true;
    case 'f': case 'n': return false;
    case '-': return (n > 1 && s[1] == 'I') || !number_is_zero(s, n);
    default: return !number_is_zero(s, n);
  }
}

static int legacy_member(json *j, const char *key, size_t klen, void *ctx) {
  fs_legacy *l = ctx;
  bool is_b = key_is(key, klen, "b"), is_ct = key_is(key, klen, "ct");
  if (!is_b && !is_ct) return json_skip(j, 1);
  bool str = json_peek(j, '"');
  if (is_b && !str) {
    l->b = -1;
    return json_skip(j, 1);
  }
  const char *s;
  size_t n;
  bool surr = false;
  if (str ? json_take(j, &s, &n, &surr) : json_copy_value(j, 1, &s, &n))
    return -1;
  if (is_b) {
    l->b = 1;
    l->b_text = (char *)s; /* in strings: fromhex rewrites it in place */
    l->b_len = n;
    l->b_surr = surr;
  } else {
    l->ct = str ? (n > 0) : (json_truthy(s, n) ? 2 : 0);
    l->ct_text = s;
    l->ct_len = n;
    l->ct_surr = surr;
  }
  return 0;
}

/* bytes.fromhex in place: pairs of hex digits, ASCII whitespace allowed
 * between pairs (Python 3.7+), nothing else. */
static int fromhex(char *s, size_t n, size_t *out_len) {
  size_t w = 0;
  for (size_t i = 0; i < n;) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == ' ' || (ch >= '\t' && ch <= '\r')) {
      i++;
      continue;
    }
    int hi = hex_digit(s[i]), lo = i + 1 < n ? hex_digit(s[i + 1]) : -1;
    if (hi < 0 || lo < 0) return -1;
    s[w++] = (char)(hi << 4 | lo);
    i += 2;
  }
  s[w] = '\0';
  *out_len = w;
  return 0;
}

static int legacy_decode(const char *buf, size_t len, fs_ctx *c,
                         tm_fs_message *out, bool *stuck) {
  fs_legacy l = {0};
  bool deep = false;
  int rc = json_py_document(buf, len, c, legacy_member, &l, &deep);
  *stuck = deep; /* RecursionError escapes TimerMessageFormat.parse */
  if (rc != 0 || l.b == 0) return -1;
  out->format = TM_FS_LEGACY;
  size_t body_len;
  if (l.b < 0 || l.b_surr || fromhex(l.b_text, l.b_len, &body_len) != 0) {
    out->python = TM_FS_PY_DROP; /* ValueError: the parser removes it */
    out->body = c->strings;
    out->body_len = 0;
    c->strings[0] = '\0';
    c->count = c->bad_keys = 0;
    return 0;
  }
  out->body = l.b_text;
  out->body_len = body_len;
  if (l.ct) {
    bool bad = l.ct_surr || memchr(l.ct_text, '\0', l.ct_len);
    if (ctx_put(c, fs_content_type_key, bad ? NULL : l.ct_text) != 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------- the content-type rule */

/* Whether body is a JSON object or array (RFC 8259), blanks around it. */
static bool json_container(const void *body, size_t len) {
  json j = {body, (const char *)body + len, NULL, false, false};
  if (!json_peek(&j, '{') && !json_peek(&j, '[')) return false;
  if (json_skip(&j, 0) != 0) return false;
  json_ws(&j);
  return j.p == j.end;
}

const char *tm__fs_content_type(const void *body, size_t len,
                                const char *requested) {
  if (requested) return requested[0] ? requested : NULL;
  if (len == 0) return NULL;
  if (json_container(body, len)) return "application/json";
  if (tm__utf8_valid(body, len)) return "text/plain";
  return NULL;
}

/* ------------------------------------------------------------- decoder */

int tm__fs_decode(const char *buf, size_t len, tm_fs_message *out,
                  timers_header *headers, char *strings) {
  fs_ctx c;
  ctx_init(&c, headers, len, strings);
  ctx_reset(&c);
  *out = (tm_fs_message){TM_FS_RAW, TM_FS_PY_DELIVER, buf, len, 0, 0};
  bool stuck = false;
  int rc = -1;
  if (len > 0 && buf[0] == '{') {
    rc = legacy_decode(buf, len, &c, out, &stuck);
    if (rc != 0) ctx_reset(&c); /* nothing of a failed attempt is kept */
  }
  if (rc != 0 && (rc = bin_decode(buf, len, &c, out)) != 0) ctx_reset(&c);
  if (rc != 0 && (rc = json_decode(buf, len, &c, out)) != 0) ctx_reset(&c);
  if (rc != 0) {
    out->format = TM_FS_RAW;
    out->body = buf;
    out->body_len = len;
  }
  if (stuck) out->python = TM_FS_PY_STUCK;
  ctx_finish(&c, out);
  return rc == 0 ? 0 : -1;
}
