/*
 * settings.c - the INI configuration file (parsed by libinih), environment
 * overrides, and explicit overrides, onto a timers_config and per-topic
 * subscribe options. Names and ranges come from config.c's field table.
 *
 * Ownership: string values are copied into the settings object; the
 * timers_config it hands out points at those copies.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "error.h"
#include "keys.h"
#include "validate.h"

typedef struct tm_topic_opts {
  char *name;
  char *section; /* "topic NAME" */
  timers_subscribe_options opts;
} tm_topic_opts;

struct timers_settings {
  timers_config cfg;
  char *strings[32];         /* owned copies, by index in the field table */
  tm_topic_opts *topics;
  size_t ntopics;
  /* Parse state: where the first error happened. */
  const char *source;        /* file name or "environment" */
  char first_error[400];
  int first_rc;              /* its code */
};

static const tm_field *find_field(const tm_field *f, size_t n,
                                  const char *section, const char *key) {
  for (size_t k = 0; k < n; k++)
    if (strcmp(f[k].section, section) == 0 && strcmp(f[k].name, key) == 0)
      return &f[k];
  return NULL;
}

static int parse_int(const tm_field *f, const char *value, int *out) {
  char *end;
  errno = 0;
  long v = strtol(value, &end, 10);
  while (*end && isspace((unsigned char)*end)) end++;
  if (errno || end == value || *end || v < f->lo || v > f->hi)
    return tm__error(TIMERS_EINVAL, "[%s] %s = %s: allowed integers %d..%d",
                     f->section, f->name, value, f->lo, f->hi);
  *out = (int)v;
  return TIMERS_OK;
}

static int set_string(timers_settings *s, const tm_field *f, const char *v) {
  size_t slot = (size_t)(f - tm__config_fields);
  if (f->offset == offsetof(timers_config, redis) && !*v)
    return tm__error(TIMERS_EINVAL, "[redis] address is empty");
  char *copy = tm__strdup(v);
  if (!copy || slot >= sizeof s->strings / sizeof *s->strings) {
    tm__free(copy);
    return tm__error(TIMERS_ENOMEM, "out of memory");
  }
  int bad = TIMERS_OK;
  if (f->offset == offsetof(timers_config, key_prefix))
    bad = tm__check_name(f->name, v, TM_NAME_MAX);
  else if (f->offset == offsetof(timers_config, faststream_timeline_key) ||
           f->offset == offsetof(timers_config, faststream_payloads_key))
    bad = tm__check_utf8(f->name, v, TM_BASE_MAX);
  if (bad != TIMERS_OK) {
    tm__free(copy);
    return tm__error(TIMERS_EINVAL, "[%s] %s = %s: %s", f->section, f->name,
                     v, timers_last_error());
  }
  tm__free(s->strings[slot]);
  s->strings[slot] = copy;
  /* Only a username or password can be empty here: it means none. */
  const char *as_const = *copy ? copy : NULL;
  memcpy((char *)&s->cfg + f->offset, &as_const, sizeof as_const);
  return TIMERS_OK;
}

static int set_engine_key(timers_settings *s, const char *section,
                          const char *key, const char *value) {
  const tm_field *f = find_field(tm__config_fields, tm__config_field_count,
                                 section, key);
  if (!f)
    return tm__error(TIMERS_EINVAL, "[%s] %s: unknown key", section, key);
  if (f->kind == TM_FIELD_STRING) return set_string(s, f, value);
  int v;
  if (f->kind == TM_FIELD_LEVEL) {
    if ((v = tm__log_level_parse(value)) < 0)
      return tm__error(TIMERS_EINVAL, "[%s] %s = %s: allowed error, warn, "
                       "info, debug", section, key, value);
  } else {
    int rc = parse_int(f, value, &v);
    if (rc != TIMERS_OK) return rc;
    if (strcmp(key, "ring_capacity") == 0 && (v & (v - 1)))
      return tm__error(TIMERS_EINVAL, "[engine] ring_capacity = %s: must be "
                       "a power of two", value);
  }
  memcpy((char *)&s->cfg + f->offset, &v, sizeof v);
  return TIMERS_OK;
}

static tm_topic_opts *topic_entry(timers_settings *s, const char *name) {
  for (size_t k = 0; k < s->ntopics; k++)
    if (strcmp(s->topics[k].name, name) == 0) return &s->topics[k];
  tm_topic_opts *g = tm__realloc(s->topics, sizeof *g * (s->ntopics + 1));
  if (!g) return NULL;
  s->topics = g;
  tm_topic_opts *t = &s->topics[s->ntopics];
  size_t n = strlen(name) + 7;
  *t = (tm_topic_opts){tm__strdup(name), tm__malloc(n), {0}};
  if (!t->name || !t->section) {
    tm__free(t->name), tm__free(t->section);
    return NULL;
  }
  snprintf(t->section, n, "topic %s", name);
  s->ntopics++;
  return t;
}

static int set_topic_key(timers_settings *s, const char *topic,
                         const char *key, const char *value) {
  if (tm__check_utf8("topic name", topic, TIMERS_TOPIC_MAX) != TIMERS_OK)
    return tm__error(TIMERS_EINVAL, "[topic %s]: %s", topic,
                     timers_last_error());
  const tm_field *f = find_field(tm__topic_fields, tm__topic_field_count,
                                 "topic", key);
  if (!f)
    return tm__error(TIMERS_EINVAL, "[topic %s] %s: unknown key; allowed "
                     "shards, lease_ms, max_inflight, max_handler_ms, max_attempts, "
                     "retry_min_ms, retry_max_ms, dead_letter_rejects, at_most_once, "
                     "layout", topic, key);
  int v, rc = TIMERS_OK;
  if (f->kind == TM_FIELD_LAYOUT) {
    if ((v = tm__layout_parse(value)) < 0)
      return tm__error(TIMERS_EINVAL, "[topic %s] layout = %s: allowed "
                       "native, faststream", topic, value);
  } else if ((rc = parse_int(f, value, &v)) != TIMERS_OK) {
    return tm__error(rc, "[topic %s] %s = %s: allowed integers %d..%d", topic,
                     key, value, f->lo, f->hi);
  }
  tm_topic_opts *t = topic_entry(s, topic);
  if (!t) return tm__error(TIMERS_ENOMEM, "out of memory");
  memcpy((char *)&t->opts + f->offset, &v, sizeof v);
  return TIMERS_OK;
}

int timers_settings_set(timers_settings *s, const char *section,
                        const char *key, const char *value) {
  tm__error_clear();
  if (!s || !section || !key || !value)
    return tm__error(TIMERS_EINVAL, "settings, section, key or value is NULL");
  if (strncmp(section, "topic ", 6) == 0)
    return set_topic_key(s, section + 6, key, value);
  if (strcmp(section, "redis") != 0 && strcmp(section, "engine") != 0 &&
      strcmp(section, "faststream") != 0)
    return tm__error(TIMERS_EINVAL, "[%s]: unknown section; allowed redis, "
                     "engine, faststream, topic NAME", section);
  return set_engine_key(s, section, key, value);
}

/* inih callback: records the first error, returns 0 so that ini_parse
 * reports its line. */
static int on_ini(void *user, const char *section, const char *key,
                  const char *value) {
  timers_settings *s = user;
  int rc = timers_settings_set(s, section, key, value);
  if (rc == TIMERS_OK) return 1;
  if (!s->first_error[0]) {
    snprintf(s->first_error, sizeof s->first_error, "%s", timers_last_error());
    s->first_rc = rc;
  }
  return 0;
}

/* TIMERS_<SECTION>_<KEY> for every engine key. */
static int apply_environment(timers_settings *s) {
  for (size_t k = 0; k < tm__config_field_count; k++) {
    const tm_field *f = &tm__config_fields[k];
    char name[96];
    snprintf(name, sizeof name, "TIMERS_%s_%s", f->section, f->name);
    for (char *p = name; *p; p++) *p = (char)toupper((unsigned char)*p);
    const char *v = getenv(name);
    if (!v) continue;
    int rc = set_engine_key(s, f->section, f->name, v);
    if (rc != TIMERS_OK)
      return tm__error(rc, "environment %s: %s", name, timers_last_error());
  }
  return TIMERS_OK;
}

static int load_file(timers_settings *s, const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp)
    return tm__error(TIMERS_EINVAL, "%s: cannot open: %s", path,
                     strerror(errno));
  int line = ini_parse_file(fp, on_ini, s);
  fclose(fp);
  if (line == 0) return TIMERS_OK;
  if (s->first_error[0])
    return tm__error(s->first_rc, "%s:%d: %s", path, line, s->first_error);
  return tm__error(TIMERS_EINVAL, "%s:%d: not an INI line (or over %d bytes)",
                   path, line, INI_MAX_LINE);
}

int timers_settings_load(const char *path, timers_settings **out) {
  tm__error_clear();
  if (!out) return tm__error(TIMERS_EINVAL, "out is NULL");
  *out = NULL;
  timers_settings *s = tm__calloc(1, sizeof *s);
  if (!s) return tm__error(TIMERS_ENOMEM, "out of memory");
  timers_config_init(&s->cfg);
  int rc = path ? load_file(s, path) : TIMERS_OK;
  if (rc == TIMERS_OK) rc = apply_environment(s);
  if (rc != TIMERS_OK) {
    timers_settings_free(s);
    return rc;
  }
  *out = s;
  return TIMERS_OK;
}

const timers_config *timers_settings_config(const timers_settings *s) {
  return s ? &s->cfg : NULL;
}

size_t timers_settings_topic_count(const timers_settings *s) {
  return s ? s->ntopics : 0;
}

const char *timers_settings_topic_name(const timers_settings *s, size_t i) {
  return s && i < s->ntopics ? s->topics[i].name : NULL;
}

bool timers_settings_topic(const timers_settings *s, const char *topic,
                           timers_subscribe_options *opts) {
  for (size_t k = 0; s && topic && k < s->ntopics; k++)
    if (strcmp(s->topics[k].name, topic) == 0) {
      if (opts) *opts = s->topics[k].opts;
      return true;
    }
  if (opts) *opts = (timers_subscribe_options){0};
  return false;
}

/* A field's value from base, as the file would have it. */
static void format_field(const tm_field *f, const void *base,
                         timers_setting *out) {
  static const char *levels[] = {"error", "warn", "info", "debug"};
  static const char *layouts[] = {"native", "faststream"};
  int v = 0;
  const char *str = NULL;
  if (f->kind == TM_FIELD_STRING)
    memcpy(&str, (const char *)base + f->offset, sizeof str);
  else
    memcpy(&v, (const char *)base + f->offset, sizeof v);
  out->key = f->name;
  out->section = f->section;
  out->is_number = f->kind == TM_FIELD_INT;
  out->secret = strcmp(f->name, "password") == 0;
  if (f->kind == TM_FIELD_STRING)
    snprintf(out->value, sizeof out->value, "%s", str ? str : "");
  else if (f->kind == TM_FIELD_LEVEL)
    snprintf(out->value, sizeof out->value, "%s", levels[v & 3]);
  else if (f->kind == TM_FIELD_LAYOUT)
    snprintf(out->value, sizeof out->value, "%s", layouts[v & 1]);
  else
    snprintf(out->value, sizeof out->value, "%d", v);
}

int timers_settings_entry(const timers_settings *s, size_t i,
                          timers_setting *out) {
  tm__error_clear();
  if (!s || !out) return tm__error(TIMERS_EINVAL, "settings or out is NULL");
  if (i < tm__config_field_count) {
    format_field(&tm__config_fields[i], &s->cfg, out);
    return TIMERS_OK;
  }
  i -= tm__config_field_count;
  size_t topic = i / tm__topic_field_count;
  if (topic >= s->ntopics)
    return tm__error(TIMERS_EDONE, "no setting past the last");
  format_field(&tm__topic_fields[i % tm__topic_field_count],
               &s->topics[topic].opts, out);
  out->section = s->topics[topic].section;
  return TIMERS_OK;
}

void timers_settings_free(timers_settings *s) {
  if (!s) return;
  for (size_t k = 0; k < sizeof s->strings / sizeof *s->strings; k++)
    tm__free(s->strings[k]);
  for (size_t k = 0; k < s->ntopics; k++) {
    tm__free(s->topics[k].name);
    tm__free(s->topics[k].section);
  }
  tm__free(s->topics);
  tm__free(s);
}
