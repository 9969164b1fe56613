/*
 * validate.c - what may go into a key, a member or a payload.
 *
 * NATIVE topics become part of key names inside a Redis Cluster hash tag,
 * so their alphabet excludes '{', '}', ':' and blanks. NATIVE ids are
 * sorted-set members and hash fields (binary-safe in Redis) but also appear
 * in logs, CLIs and other languages' clients, so they are printable ASCII
 * without blanks. FASTSTREAM topics and ids are what the Python library
 * accepts: any text (it decodes ids as UTF-8 and drops members that are not).
 */
#include "validate.h"

#include <math.h>
#include <string.h>

#include "error.h"
#include "utf8.h"

static int name_char_ok(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' ||
         ch == '/';
}

/* NULL, empty and too long, for every kind of name. */
static int check_length(const char *what, const char *s, size_t max,
                        size_t *n) {
  *n = 0;
  if (!s) return tm__error(TIMERS_EINVAL, "%s is NULL", what);
  *n = strnlen(s, max + 1);
  if (*n == 0) return tm__error(TIMERS_EINVAL, "%s is empty", what);
  if (*n > max)
    return tm__error(TIMERS_ETOOBIG, "%s is longer than %zu bytes", what, max);
  return TIMERS_OK;
}

int tm__check_name(const char *what, const char *name, size_t max) {
  size_t n;
  int rc = check_length(what, name, max, &n);
  for (size_t i = 0; rc == TIMERS_OK && i < n; i++)
    if (!name_char_ok((unsigned char)name[i]))
      rc = tm__error(TIMERS_EINVAL,
                     "%s has character 0x%02x at %zu; allowed: "
                     "A-Z a-z 0-9 _ . - / (use the faststream layout for "
                     "other topic names)",
                     what, (unsigned char)name[i], i);
  return rc;
}

int tm__check_ascii_id(const char *id) {
  size_t n;
  int rc = check_length("id", id, TIMERS_ID_MAX, &n);
  for (size_t i = 0; rc == TIMERS_OK && i < n; i++) {
    unsigned char ch = (unsigned char)id[i];
    if (ch <= 0x20 || ch >= 0x7f)
      rc = tm__error(TIMERS_EINVAL,
                     "id has character 0x%02x at %zu; allowed: printable "
                     "ASCII without blanks",
                     ch, i);
  }
  return rc;
}

int tm__check_utf8(const char *what, const char *s, size_t max) {
  size_t n;
  int rc = check_length(what, s, max, &n);
  if (rc == TIMERS_OK && !tm__utf8_valid(s, n))
    rc = tm__error(TIMERS_EINVAL, "%s is not valid UTF-8", what);
  return rc;
}

static int check_headers(const timers_timer *t, const tm_layout_ops *ops,
                         size_t *bytes) {
  if (t->header_count > ops->max_headers)
    return tm__error(TIMERS_ETOOBIG, "%zu headers; at most %zu in the %s "
                     "layout", t->header_count, ops->max_headers, ops->name);
  if (t->header_count && !t->headers)
    return tm__error(TIMERS_EINVAL, "header_count is %zu but headers is NULL",
                     t->header_count);
  for (size_t i = 0; i < t->header_count; i++) {
    const timers_header *h = &t->headers[i];
    if (!h->key)
      return tm__error(TIMERS_EINVAL, "header %zu has a NULL key", i);
    if (!h->key[0] && !ops->empty_header_keys)
      return tm__error(TIMERS_EINVAL, "header %zu has an empty key", i);
    if (!h->value)
      return tm__error(TIMERS_EINVAL, "header '%s' has a NULL value", h->key);
    size_t k = strlen(h->key), v = strlen(h->value);
    if (k > 0xffff)
      return tm__error(TIMERS_ETOOBIG, "header %zu key over 65535 bytes", i);
    *bytes += k + v;
  }
  return TIMERS_OK;
}

static int check_time(const timers_timer *t, double now, double *at) {
  if (t->has_activate_at == t->has_activate_in)
    return tm__error(TIMERS_EINVAL, t->has_activate_at
                                        ? "both activate_at and activate_in "
                                          "are set; set exactly one"
                                        : "neither activate_at nor "
                                          "activate_in is set");
  double v = t->has_activate_at ? t->activate_at : t->activate_in;
  const char *name = t->has_activate_at ? "activate_at" : "activate_in";
  if (!isfinite(v))
    return tm__error(TIMERS_EINVAL, "%s is not a finite number", name);
  if (v < 0) return tm__error(TIMERS_EINVAL, "%s is negative (%g)", name, v);
  /* Year 9999: past it, double scores lose sub-millisecond precision. */
  double when = t->has_activate_at ? v : now + v;
  if (when > 253402300799.0)
    return tm__error(TIMERS_EINVAL, "%s is past the year 9999", name);
  *at = when;
  return TIMERS_OK;
}

int tm__check_timer(const timers_timer *t, const tm_layout_ops *ops,
                    double now, double *at) {
  if (!t) return tm__error(TIMERS_EINVAL, "timer is NULL");
  int rc = ops->check_topic(t->topic);
  if (rc == TIMERS_OK && t->id) rc = ops->check_id(t->id);
  if (rc != TIMERS_OK) return rc;
  if (t->payload_len && !t->payload)
    return tm__error(TIMERS_EINVAL, "payload_len is %zu but payload is NULL",
                     t->payload_len);
  size_t bytes = t->payload_len;
  if ((rc = check_headers(t, ops, &bytes)) != TIMERS_OK) return rc;
  if (bytes > TIMERS_PAYLOAD_MAX)
    return tm__error(TIMERS_ETOOBIG,
                     "payload and headers are %zu bytes; at most %u", bytes,
                     TIMERS_PAYLOAD_MAX);
  return check_time(t, now, at);
}
