/*
 * clock.h - the two clocks. Wall time (Unix seconds, double) is the protocol's
 * unit: scores in Redis, activation times. Intervals and sleeps use the
 * monotonic clock, so a wall-clock step never stretches a wait.
 */
#ifndef TIMERS_CLOCK_H
#define TIMERS_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline double tm__wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds (a Redis score, a wake message) to microseconds, never undefined
 * behaviour: NaN and anything past +/-292,000 years clamp to INT64_MAX /
 * INT64_MIN ("never" / "long ago"). */
static inline int64_t tm__secs_to_us(double s) {
  if (s != s || s >= 9.2e12) return INT64_MAX;
  if (s <= -9.2e12) return INT64_MIN;
  return (int64_t)(s * 1e6);
}

/* a + b without overflow, for deadlines. */
static inline int64_t tm__add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
  return a + b;
}

/* Monotonic nanoseconds. */
static inline int64_t tm__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline struct timespec tm__mono_timespec(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  return ts;
}

static inline void tm__sleep_ns(int64_t ns) {
  struct timespec ts = tm__mono_timespec(ns);
  nanosleep(&ts, NULL);
}

/* Every timed wait in the engine takes a monotonic deadline. */
static inline void tm__cond_init_monotonic(pthread_cond_t *c) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(c, &ca);
  pthread_condattr_destroy(&ca);
}

#endif
