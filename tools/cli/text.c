/*
 * text.c - JSON, base64, UTF-8 and time text for the subcommands (text.h).
 *
 * The ISO-8601 parser is strict on purpose: one spelling of a date and time
 * with an explicit zone (Z or an offset), every field range-checked, so a
 * timer is never scheduled at a time the user did not mean; timegm() does
 * the calendar arithmetic.
 */
#include "text.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common.h"

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (len == 0 || c > 0xf4 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
  if (c == 0xed && p[1] > 0x9f) return 0; /* surrogate */
  if (c == 0xf0 && p[1] < 0x90) return 0; /* overlong */
  if (c == 0xf4 && p[1] > 0x8f) return 0; /* past U+10FFFF */
  return len;
}

bool cli_utf8_valid(const void *p, size_t len) {
  const unsigned char *b = p;
  for (size_t i = 0; i < len;) {
    size_t k = utf8_seq(b + i, len - i);
    if (k == 0) return false;
    i += k;
  }
  return true;
}

bool cli_text_printable(const void *p, size_t len) {
  const unsigned char *b = p;
  for (size_t i = 0; i < len; i++)
    if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') ||
        b[i] == 0x7f)
      return false;
  return cli_utf8_valid(p, len);
}

size_t cli_utf8_cut(const void *p, size_t len, size_t max) {
  if (max == 0 || len <= max) return len;
  const unsigned char *b = p;
  size_t cut = max;
  while (cut > 0 && (b[cut] & 0xc0) == 0x80) cut--; /* b[cut] continues */
  return cut;
}

/* ----------------------------------------------------------------- JSON */

void cli_json_str(FILE *out, const char *s, size_t len) {
  const unsigned char *b = (const unsigned char *)s;
  fputc('"', out);
  for (size_t i = 0; i < len;) {
    unsigned char c = b[i];
    size_t k = utf8_seq(b + i, len - i);
    if (k == 0) {
      fputs("\\ufffd", out);
      i++;
    } else if (k > 1) {
      fwrite(b + i, 1, k, out);
      i += k;
    } else {
      if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
      else if (c == '\n') fputs("\\n", out);
      else if (c == '\t') fputs("\\t", out);
      else if (c == '\r') fputs("\\r", out);
      else if (c < 0x20 || c == 0x7f) fprintf(out, "\\u%04x", c);
      else fputc(c, out);
      i++;
    }
  }
  fputc('"', out);
}

void cli_json_cstr(FILE *out, const char *s) {
  cli_json_str(out, s, strlen(s));
}

void cli_json_headers(FILE *out, const timers_header *h, size_t n) {
  fputc('{', out);
  for (size_t i = 0; i < n; i++) {
    if (i) fputc(',', out);
    cli_json_cstr(out, h[i].key);
    fputc(':', out);
    cli_json_cstr(out, h[i].value);
  }
  fputc('}', out);
}

/* How much of a payload to show within max bytes (0: all): text is cut at
 * a character boundary, other bytes anywhere. */
static size_t shown_len(const void *p, size_t len, size_t max, bool text) {
  if (text) return cli_utf8_cut(p, len, max);
  return max && len > max ? max : len;
}

void cli_json_payload(FILE *out, const void *p, size_t len, size_t max) {
  bool text = cli_utf8_valid(p, len);
  size_t shown = shown_len(p, len, max, text);
  fputs(text ? "\"payload\":" : "\"payload_b64\":", out);
  if (text) cli_json_str(out, p, shown);
  else {
    fputc('"', out);
    cli_base64(out, p, shown);
    fputc('"', out);
  }
  if (shown < len) fputs(",\"truncated\":true", out);
}

/* ------------------------------------------------------------ ids, names */

bool cli_name_bare(const char *s) {
  if (!s[0] || s[0] == '"') return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f) return false;
  return true;
}

void cli_name_print(FILE *out, const char *s) {
  if (cli_name_bare(s)) fputs(s, out);
  else cli_json_cstr(out, s);
}

void cli_json_name(FILE *out, const char *key, const char *s) {
  size_t len = strlen(s);
  bool text = cli_utf8_valid(s, len);
  fprintf(out, "\"%s%s\":", key, text ? "" : "_b64");
  if (text) {
    cli_json_str(out, s, len);
    return;
  }
  fputc('"', out);
  cli_base64(out, s, len);
  fputc('"', out);
}

/* ---------------------------------------------------------- id listings */

void cli_list_print(FILE *out, cli_list_form form, const char *time_key,
                    const char *id, double at) {
  char iso[CLI_TIME_CAP];
  cli_iso_time(at, form == CLI_LIST_TEXT ? 3 : 6, iso, sizeof iso);
  if (form == CLI_LIST_NUL) {
    fprintf(out, "%s %s%c", id, iso, '\0');
  } else if (form == CLI_LIST_JSON) {
    fputc('{', out);
    cli_json_name(out, "id", id);
    fprintf(out, ",\"%s\":\"%s\"}\n", time_key, iso);
  } else {
    cli_name_print(out, id);
    fprintf(out, " %s\n", iso);
  }
}

/* ------------------------------------------------------- show's blocks */

void cli_headers_print(FILE *out, const timers_header *h, size_t n) {
  fprintf(out, "headers:   %zu\n", n);
  for (size_t i = 0; i < n; i++) {
    fputs("  ", out);
    cli_name_print(out, h[i].key);
    fputc('=', out);
    cli_name_print(out, h[i].value);
    fputc('\n', out);
  }
}

void cli_payload_print(FILE *out, const void *p, size_t len, size_t max) {
  bool text = cli_text_printable(p, len);
  size_t shown = shown_len(p, len, max, text);
  fprintf(out, "payload:   %zu byte%s%s%s\n", len, len == 1 ? "" : "s",
          text ? "" : ", base64",
          shown < len ? " (truncated; --full for all)" : "");
  if (len == 0) return;
  fputs("  ", out);
  if (!text) cli_base64(out, p, shown);
  for (size_t i = 0; text && i < shown; i++) { /* every line indented */
    char c = ((const char *)p)[i];
    fputc(c, out);
    if (c == '\n' && i + 1 < shown) fputs("  ", out);
  }
  fputc('\n', out);
}

/* --------------------------------------------------------------- base64 */

void cli_base64(FILE *out, const void *p, size_t len) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *b = p;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16;
    if (i + 1 < len) v |= (uint32_t)b[i + 1] << 8;
    if (i + 2 < len) v |= b[i + 2];
    char q[4] = {abc[v >> 18], abc[(v >> 12) & 63],
                 i + 1 < len ? abc[(v >> 6) & 63] : '=',
                 i + 2 < len ? abc[v & 63] : '='};
    fwrite(q, 1, 4, out);
  }
}

/* ---------------------------------------------------------------- times */

void cli_iso_time(double t, int digits, char *buf, size_t cap) {
  if (!(t >= 0)) t = 0;
  if (digits < 0) digits = 0;
  if (digits > 6) digits = 6;
  long long scale = 1;
  for (int i = 0; i < digits; i++) scale *= 10;
  long long units = llround(t * (double)scale);
  time_t whole = (time_t)(units / scale);
  struct tm tm;
  gmtime_r(&whole, &tm);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  if (digits)
    snprintf(buf, cap, "%s.%0*lldZ", date, digits, units % scale);
  else
    snprintf(buf, cap, "%sZ", date);
}

/* Reads exactly n digits. */
static bool take_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool take_char(const char **p, char c) {
  if (**p != c) return false;
  (*p)++;
  return true;
}

static int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

/* ".123" (1 to 9 digits) or nothing. */
static bool take_fraction(const char **p, double *frac) {
  *frac = 0;
  if (!take_char(p, '.')) return true;
  double scale = 0.1;
  int n = 0;
  for (; **p >= '0' && **p <= '9'; (*p)++, n++, scale /= 10)
    *frac += (**p - '0') * scale;
  return n >= 1 && n <= 9;
}

/* "Z", "+hh:mm" or "-hh:mm": seconds east of UTC. */
static bool take_zone(const char **p, long *offset) {
  *offset = 0;
  if (take_char(p, 'Z')) return true;
  int sign = **p == '+' ? 1 : **p == '-' ? -1 : 0, hh, mm;
  if (!sign) return false;
  (*p)++;
  if (!take_digits(p, 2, &hh) || !take_char(p, ':') ||
      !take_digits(p, 2, &mm) || hh > 23 || mm > 59)
    return false;
  *offset = sign * (hh * 3600L + mm * 60L);
  return true;
}

bool cli_parse_iso(const char *s, double *out) {
  const char *p = s;
  int y, mo, d, h, mi, se;
  double frac;
  long offset;
  if (!take_digits(&p, 4, &y) || !take_char(&p, '-') ||
      !take_digits(&p, 2, &mo) || !take_char(&p, '-') ||
      !take_digits(&p, 2, &d) || !take_char(&p, 'T') ||
      !take_digits(&p, 2, &h) || !take_char(&p, ':') ||
      !take_digits(&p, 2, &mi) || !take_char(&p, ':') ||
      !take_digits(&p, 2, &se) || !take_fraction(&p, &frac) ||
      !take_zone(&p, &offset) || *p)
    return false;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
      h > 23 || mi > 59 || se > 59)
    return false;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                  .tm_hour = h, .tm_min = mi, .tm_sec = se};
  double t = (double)timegm(&tm) + frac - (double)offset;
  if (t < 0) return false;
  *out = t;
  return true;
}

bool cli_parse_time(const char *s, double now, double *out) {
  double d;
  if (strcmp(s, "now") == 0) return *out = now, true;
  if (s[0] == '+') {
    if (!cli_parse_duration(s + 1, 100 * 365 * 86400.0, &d)) return false;
    return *out = now + d, true;
  }
  if (strchr(s, 'T')) return cli_parse_iso(s, out);
  return cli_parse_double(s, 0, 1e11, out);
}

void cli_age(double s, char *buf, size_t cap) {
  if (s < 0) s = -s;
  if (s == 0) snprintf(buf, cap, "-");
  else if (s < 1) snprintf(buf, cap, "%.0f ms", s * 1e3);
  else if (s < 120) snprintf(buf, cap, "%.1f s", s);
  else if (s < 7200) snprintf(buf, cap, "%.1f min", s / 60);
  else if (s < 172800) snprintf(buf, cap, "%.1f h", s / 3600);
  else snprintf(buf, cap, "%.1f d", s / 86400);
}

void cli_relative(double from_now, char *buf, size_t cap) {
  char age[32];
  cli_age(from_now, age, sizeof age);
  if (fabs(from_now) < 0.0005) snprintf(buf, cap, "now");
  else if (from_now > 0) snprintf(buf, cap, "in %s", age);
  else snprintf(buf, cap, "%s ago", age);
}
