/*
 * log.h - the application's log callback, and rate limiting for messages
 * that a failing loop would otherwise repeat thousands of times a second.
 */
#ifndef TIMERS_LOG_H
#define TIMERS_LOG_H

#include <stdint.h>

#include "timers.h"

typedef struct tm_log {
  timers_log_fn fn;          /* NULL: no logging */
  void *userdata;
  timers_log_level level;    /* most verbose level passed */
} tm_log;

/* Thread-safe when fn is. */
void tm__log(const tm_log *log, timers_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At most one message per interval; owned by one thread (no locking). */
typedef struct tm_ratelimit {
  int64_t next_ns;           /* monotonic; 0: the next message passes */
  uint64_t suppressed;       /* messages dropped since the last one */
} tm_ratelimit;

#define TM_LOG_INTERVAL_NS (10 * 1000000000LL)

/* Logs unless another message went out within TM_LOG_INTERVAL_NS; a message
 * that follows dropped ones says how many were dropped. */
void tm__log_limited(const tm_log *log, tm_ratelimit *rl, timers_log_level lvl,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Forget the limit, so the next message (e.g. a recovery) goes out. */
static inline void tm__ratelimit_reset(tm_ratelimit *rl) {
  rl->next_ns = 0;
  rl->suppressed = 0;
}

#endif
