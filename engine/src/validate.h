/*
 * validate.h - input checks done before any I/O: invalid input never reaches
 * Redis. Each returns TIMERS_OK or an error with a detail naming the field.
 */
#ifndef TIMERS_VALIDATE_H
#define TIMERS_VALIDATE_H

#include "timers.h"

/* A topic or a key prefix: 1..TIMERS_TOPIC_MAX bytes of [A-Za-z0-9_.-/]. */
int tm__check_name(const char *what, const char *name);
int tm__check_topic(const char *topic);
int tm__check_id(const char *id);
/* Checks the whole timer and computes its activation time (Unix seconds). */
int tm__check_timer(const timers_timer *t, double now, double *at);

#endif
