/*
 * validate.c - what may go into a key, a member or a payload.
 *
 * Topics become part of key names inside a Redis Cluster hash tag, so their
 * alphabet excludes '{', '}', ':' and blanks. Ids are sorted-set members and
 * hash fields (binary-safe in Redis) but also appear in logs, CLIs and other
 * languages' clients, so they are printable ASCII without blanks.
 */
#include "validate.h"

#include <math.h>
#include <string.h>

#include "error.h"

static int topic_char_ok(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' ||
         ch == '/';
}

int tm__check_name(const char *what, const char *name) {
  if (!name) return tm__error(TIMERS_EINVAL, "%s is NULL", what);
  size_t n = strnlen(name, TIMERS_TOPIC_MAX + 1);
  if (n == 0) return tm__error(TIMERS_EINVAL, "%s is empty", what);
  if (n > TIMERS_TOPIC_MAX)
    return tm__error(TIMERS_ETOOBIG, "%s is longer than %d bytes", what,
                     TIMERS_TOPIC_MAX);
  for (size_t i = 0; i < n; i++)
    if (!topic_char_ok((unsigned char)name[i]))
      return tm__error(TIMERS_EINVAL,
                       "%s has character 0x%02x at %zu; allowed: "
                       "A-Z a-z 0-9 _ . - /",
                       what, (unsigned char)name[i], i);
  return TIMERS_OK;
}

int tm__check_topic(const char *topic) {
  return tm__check_name("topic", topic);
}

int tm__check_id(const char *id) {
  if (!id) return tm__error(TIMERS_EINVAL, "id is NULL");
  size_t n = strnlen(id, TIMERS_ID_MAX + 1);
  if (n == 0) return tm__error(TIMERS_EINVAL, "id is empty");
  if (n > TIMERS_ID_MAX)
    return tm__error(TIMERS_ETOOBIG, "id is longer than %d bytes",
                     TIMERS_ID_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)id[i];
    if (ch <= 0x20 || ch >= 0x7f)
      return tm__error(TIMERS_EINVAL,
                       "id has character 0x%02x at %zu; allowed: printable "
                       "ASCII without blanks",
                       ch, i);
  }
  return TIMERS_OK;
}

static int check_headers(const timers_timer *t, size_t *bytes) {
  if (t->header_count > TIMERS_HEADERS_MAX)
    return tm__error(TIMERS_ETOOBIG, "%zu headers; at most %d",
                     t->header_count, TIMERS_HEADERS_MAX);
  if (t->header_count && !t->headers)
    return tm__error(TIMERS_EINVAL, "header_count is %zu but headers is NULL",
                     t->header_count);
  for (size_t i = 0; i < t->header_count; i++) {
    const timers_header *h = &t->headers[i];
    if (!h->key || !h->key[0])
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

int tm__check_timer(const timers_timer *t, double now, double *at) {
  if (!t) return tm__error(TIMERS_EINVAL, "timer is NULL");
  int rc = tm__check_topic(t->topic);
  if (rc == TIMERS_OK && t->id) rc = tm__check_id(t->id);
  if (rc != TIMERS_OK) return rc;
  if (t->payload_len && !t->payload)
    return tm__error(TIMERS_EINVAL, "payload_len is %zu but payload is NULL",
                     t->payload_len);
  size_t bytes = t->payload_len;
  if ((rc = check_headers(t, &bytes)) != TIMERS_OK) return rc;
  if (bytes > TIMERS_PAYLOAD_MAX)
    return tm__error(TIMERS_ETOOBIG,
                     "payload and headers are %zu bytes; at most %u", bytes,
                     TIMERS_PAYLOAD_MAX);
  return check_time(t, now, at);
}
