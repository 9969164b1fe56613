/*
 * validate.h - input checks done before any I/O: invalid input never reaches
 * Redis. Each returns TIMERS_OK or an error with a detail naming the field.
 * Topic and id rules depend on the topic's layout (layout.h: check_topic,
 * check_id); these are the pieces they are made of.
 */
#ifndef TIMERS_VALIDATE_H
#define TIMERS_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "layout.h"
#include "timers.h"

/* A key prefix or NATIVE topic: 1..max bytes of [A-Za-z0-9_.-/]. */
int tm__check_name(const char *what, const char *name, size_t max);
/* NATIVE id: 1..TIMERS_ID_MAX bytes of printable ASCII without blanks. */
int tm__check_ascii_id(const char *id);
/* FASTSTREAM names: 1..max bytes of UTF-8 (what the Python library, which
 * decodes them as str, can represent). */
int tm__check_utf8(const char *what, const char *s, size_t max);

/* Checks the whole timer (topic and id by ops' rules) and computes its
 * activation time: activate_at as given, or now + activate_in. */
int tm__check_timer(const timers_timer *t, const tm_layout_ops *ops,
                    double now, double *at);

#endif
