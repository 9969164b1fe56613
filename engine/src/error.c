/*
 * error.c - the error table (one X-macro in timers.h gives codes, names and
 * messages) and the thread-local detail of the last failure.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[256];

const char *timers_strerror(int err) {
  switch (err) {
#define TM_MSG_(name, code, msg) \
  case code:                     \
    return msg;
    TIMERS_ERRNO_MAP(TM_MSG_)
#undef TM_MSG_
  }
  return "unknown error";
}

const char *timers_err_name(int err) {
  switch (err) {
#define TM_NAME_(name, code, msg) \
  case code:                      \
    return "TIMERS_" #name;
    TIMERS_ERRNO_MAP(TM_NAME_)
#undef TM_NAME_
  }
  return "TIMERS_UNKNOWN";
}

const char *timers_last_error(void) { return last_error; }

void tm__error_clear(void) { last_error[0] = '\0'; }

/* Formats into a scratch buffer first: callers may pass timers_last_error()
 * itself as an argument, to prefix context to a detail. */
int tm__error(int err, const char *fmt, ...) {
  char msg[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_error, msg, sizeof msg);
  return err;
}
