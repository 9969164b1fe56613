/*
 * config.h - the tunables of timers_config and of subscribe options, as one
 * table: names (as in the config file), ranges, and where each lives. The
 * checks of timers_engine_create and the file loader both read it, so a
 * range is written once.
 */
#ifndef TIMERS_CONFIG_H
#define TIMERS_CONFIG_H

#include <stddef.h>

#include "timers.h"

/* Lua's unpack() in the claim script takes 2 arguments per timer. */
#define TM_CLAIM_BATCH_MAX 2048

typedef enum {
  TM_FIELD_INT,
  TM_FIELD_STRING,
  TM_FIELD_LEVEL,  /* error|warn|info|debug -> timers_log_level */
  TM_FIELD_LAYOUT  /* native|faststream -> timers_layout */
} tm_field_kind;

typedef struct tm_field {
  const char *section; /* "redis" or "engine" */
  const char *name;    /* key in the file */
  tm_field_kind kind;
  size_t offset;       /* in timers_config */
  int lo, hi;          /* TM_FIELD_INT */
} tm_field;

extern const tm_field tm__config_fields[];
extern const size_t tm__config_field_count;

/* Per-topic keys ([topic NAME] sections) in timers_subscribe_options. */
extern const tm_field tm__topic_fields[];
extern const size_t tm__topic_field_count;

/* "native" "faststream" -> layout; -1 if none. */
int tm__layout_parse(const char *s);
/* "error" "warn" "info" "debug" -> level; -1 if none. */
int tm__log_level_parse(const char *s);

int tm__config_check(const timers_config *c);
int tm__subscribe_options_check(const timers_subscribe_options *o);

#endif
