/*
 * error.h - the thread-local detail behind timers_last_error().
 *
 * Every public function that can fail starts with tm__error_clear(), so the
 * detail always describes the calling thread's last such call ("" after a
 * success); failing paths set it with tm__error().
 */
#ifndef TIMERS_ERROR_H
#define TIMERS_ERROR_H

#include "timers.h"

/* Records a printf-style detail for this thread and returns err, so a failing
 * path reads `return tm__error(TIMERS_EINVAL, "topic is empty");`. */
int tm__error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void tm__error_clear(void);

#endif
