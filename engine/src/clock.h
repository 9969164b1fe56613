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
