/*
 * log.c - formatting log messages for the application's callback.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "clock.h"

static void emit(const tm_log *log, timers_log_level lvl, const char *prefix,
                 const char *fmt, va_list ap) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s", prefix);
  if (n < 0 || (size_t)n >= sizeof msg) n = 0;
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  log->fn(log->userdata, lvl, msg);
}

void tm__log(const tm_log *log, timers_log_level lvl, const char *fmt, ...) {
  if (!log->fn || lvl > log->level) return;
  va_list ap;
  va_start(ap, fmt);
  emit(log, lvl, "", fmt, ap);
  va_end(ap);
}

void tm__log_limited(const tm_log *log, tm_ratelimit *rl, timers_log_level lvl,
                     const char *fmt, ...) {
  if (!log->fn || lvl > log->level) return;
  int64_t now = tm__mono_ns();
  if (now < rl->next_ns) {
    rl->suppressed++;
    return;
  }
  char prefix[64] = "";
  if (rl->suppressed)
    snprintf(prefix, sizeof prefix, "(%llu similar messages dropped) ",
             (unsigned long long)rl->suppressed);
  rl->next_ns = now + TM_LOG_INTERVAL_NS;
  rl->suppressed = 0;
  va_list ap;
  va_start(ap, fmt);
  emit(log, lvl, prefix, fmt, ap);
  va_end(ap);
}
