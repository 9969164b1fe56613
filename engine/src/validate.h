/*
 * validate.h - input checks done before any I/O: invalid input never reaches
 * Redis. Each returns TIMERS_OK or an error with a detail naming the field.
 */
#ifndef TIMERS_VALIDATE_H
#define TIMERS_VALIDATE_H

#include "timers.h"

int tm__check_topic(const char *topic);
int tm__check_id(const char *id);
/* Checks the whole timer and computes its activation time (Unix seconds). */
int tm__check_timer(const timers_timer *t, double now, double *at);

#endif
