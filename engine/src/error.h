/*
 * error.h - setting the thread-local error detail behind timers_last_error().
 */
#ifndef TIMERS_ERROR_H
#define TIMERS_ERROR_H

#include "timers.h"

/* Records a printf-style detail for this thread and returns err, so a failing
 * path reads `return tm__error(TIMERS_EINVAL, "topic is empty");`. */
int tm__error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
