/*
 * test_util.h - shared helpers of the test suite (tests/support: this
 * header and test_util.c, built as the timers_testsupport library).
 *
 *  - CHECK / CHECK_EQ_INT / CHECK_OK / CHECK_ERR: on failure print
 *    file:line, the expression and timers_last_error(), stop the Redis
 *    servers this process started, and _exit(1) (no atexit handlers: engine
 *    threads may still run, and sanitizer leak reports would bury the cause).
 *  - wait_until(pred, ctx, timeout_ms): polls pred every 2 ms, returns as
 *    soon as it holds; the timeout is only an upper bound.
 *  - fired_log: a mutex-protected record of deliveries (by id: count, last
 *    attempt, payload, headers, fire times; plus the delivery order) that
 *    handlers on any worker thread record into.
 *  - test_redis_start / test_config: a private redis-server per process and a
 *    timers_config pointing at it (workers 2, pollers 1, WARN log to stderr).
 */
#ifndef TIMERS_TEST_UTIL_H
#define TIMERS_TEST_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redis_server.h"
#include "timers.h"

/* ------------------------------------------------------------ failures */

#define TEST_MAX_SERVERS 4

typedef struct test_cleanup_state {
  pid_t owner; /* only the process that started the servers stops them */
  redis_server *servers[TEST_MAX_SERVERS];
  int count;
} test_cleanup_state;

void test_register_server(redis_server *rs);

void test_unregister_server(redis_server *rs);

void test_run_cleanup(void);

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);           \
  } while (0)

#define CHECK_MSG(cond, ...)                                                  \
  do {                                                                        \
    if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                  \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
  do {                                                                        \
    long long chk_a_ = (long long)(a), chk_b_ = (long long)(b);               \
    if (chk_a_ != chk_b_)                                                     \
      test_fail(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld != %lld", #a, \
                #b, chk_a_, chk_b_);                                          \
  } while (0)

#define CHECK_OK(call)                                                        \
  do {                                                                        \
    int chk_rc_ = (call);                                                     \
    if (chk_rc_ != TIMERS_OK)                                                 \
      test_fail(__FILE__, __LINE__, "CHECK_OK(%s) returned %s", #call,        \
                timers_err_name(chk_rc_));                                    \
  } while (0)

/* The call fails with exactly `code` and leaves a non-empty detail. */
#define CHECK_ERR(call, code)                                                 \
  do {                                                                        \
    int chk_rc_ = (call);                                                     \
    if (chk_rc_ != (code))                                                    \
      test_fail(__FILE__, __LINE__, "CHECK_ERR(%s) returned %s, want %s",     \
                #call, timers_err_name(chk_rc_), timers_err_name(code));      \
    const char *chk_msg_ = timers_last_error();                               \
    if (!chk_msg_ || !chk_msg_[0])                                            \
      test_fail(__FILE__, __LINE__,                                           \
                "CHECK_ERR(%s): timers_last_error() is empty", #call);        \
  } while (0)

#define TEST_RUN(fn)                                                          \
  do {                                                                        \
    printf("-- %s\n", #fn);                                                   \
    fflush(stdout);                                                           \
    double run_t0_ = mono_ms();                                               \
    fn();                                                                     \
    printf("   %s: ok (%.0f ms)\n", #fn, mono_ms() - run_t0_);                \
    fflush(stdout);                                                           \
  } while (0)

/* ------------------------------------------------------------- waiting */

double mono_ms(void);

void sleep_ms(int ms);

/* Polls pred every 2 ms; true as soon as it holds, false after timeout_ms. */
static inline bool wait_until(bool (*pred)(void *ctx), void *ctx,
                              int timeout_ms) {
  double deadline = mono_ms() + timeout_ms;
  for (;;) {
    if (pred(ctx)) return true;
    if (mono_ms() >= deadline) return pred(ctx);
    sleep_ms(2);
  }
}

/* Sleeps until the wall clock (timers_now) passes t. */
void sleep_until_wall(double t);

/* An atomic flag for handler/test hand-offs. */
bool flag_get(const int *f);
void flag_set(int *f, int v);
bool flag_pred(void *f);

/* A gate a handler blocks on until the test opens it. */
typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
} gate;

void gate_init(gate *g);
void gate_open(gate *g);
void gate_wait(gate *g);
void gate_destroy(gate *g);

/* ----------------------------------------------------------- fired log */

typedef struct fired_rec {
  char *id;
  char *topic;
  unsigned count;        /* deliveries of this id                        */
  uint32_t attempt;      /* of the last delivery                         */
  uint32_t max_attempt;
  double activate_at;    /* msg->activate_at of the last delivery        */
  double first_fire;     /* timers_now() at the first delivery           */
  double last_fire;
  void *payload;         /* of the last delivery                         */
  size_t payload_len;
  size_t header_count;
  char **header_kv;      /* 2 * header_count strings: key, value, ...    */
} fired_rec;

typedef struct fired_delivery {
  size_t rec;            /* index into recs                              */
  uint32_t attempt;
  double activate_at;
  double fired_at;       /* timers_now() when the handler started        */
} fired_delivery;

typedef struct fired_log {
  pthread_mutex_t mu;
  fired_rec *recs;
  size_t nrecs, recs_cap;
  size_t *slots;         /* open addressing: rec index + 1, 0 = empty     */
  size_t slots_cap;      /* power of 2                                   */
  fired_delivery *order; /* every delivery, in order                     */
  size_t norder, order_cap;
  bool early;            /* some delivery started before activate_at - 1 ms */
} fired_log;

void * xrealloc(void *p, size_t n);

char * xstrdup(const char *s);

uint32_t fnv1a(const void *p, size_t n);

void fired_log_init(fired_log *log);

void fired_rec_free_details(fired_rec *r);

void fired_log_free(fired_log *log);

/* Caller holds mu. Returns the slot of id: holding it, or empty. */
size_t * fired_slot_locked(fired_log *log, const char *id);

void fired_grow_locked(fired_log *log);

/* Caller holds mu. Finds or adds the record of id. */
fired_rec *fired_upsert_locked(fired_log *log, const char *id,
                               const char *topic);

void fired_copy_details(fired_rec *r, const timers_message *m);

void fired_push_order_locked(fired_log *log, size_t rec,
                             const timers_message *m, double now);

/* Records one delivery; returns how many times this id has been delivered
 * (this one included). Thread-safe. */
unsigned fired_log_record(fired_log *log, const timers_message *m);

/* A handler that records and acks; userdata is a fired_log. */
timers_outcome record_ack_handler(const timers_message *m, void *userdata);

/* Copies the scalar fields of id's record into *out (pointers cleared).
 * False if id never fired. Thread-safe. */
bool fired_log_get(fired_log *log, const char *id, fired_rec *out);

unsigned fired_log_count(fired_log *log, const char *id);

/* Whether id's last delivery carried exactly this topic and payload. */
bool fired_log_payload_eq(fired_log *log, const char *id, const char *topic,
                          const void *data, size_t len);

/* The value of header key in id's last delivery copied to buf ("" and
 * false when absent); *count gets the delivery's header count. */
bool fired_log_header(fired_log *log, const char *id, const char *key,
                      char *buf, size_t cap, size_t *count);

size_t fired_log_distinct(fired_log *log);

size_t fired_log_total(fired_log *log);

bool fired_log_any_early(fired_log *log);

/* The i-th delivery (in order); false past the end. Thread-safe. */
bool fired_log_delivery(fired_log *log, size_t i, fired_delivery *out, char *id,
                        size_t id_cap);

/* Largest count of any id (1 = no duplicates). Thread-safe. */
unsigned fired_log_max_count(fired_log *log, char *id, size_t id_cap);

typedef struct fired_wait {
  fired_log *log;
  size_t n;
} fired_wait;

bool fired_distinct_pred(void *ctx);

bool fired_total_pred(void *ctx);

/* Waits (bounded) until n distinct ids have fired. */
bool fired_wait_distinct(fired_log *log, size_t n, int timeout_ms);

bool fired_wait_total(fired_log *log, size_t n, int timeout_ms);

/* ------------------------------------------------------ redis, engines */

void test_log(void *userdata, timers_log_level level, const char *msg);

/* Starts a private redis-server (registered for cleanup on failure). */
void test_redis_start(redis_server *rs, bool appendonly);

void test_redis_stop(redis_server *rs);

/* Defaults, pointed at rs, with the suite's standard thread counts. */
void test_config(timers_config *cfg, const redis_server *rs);

timers_engine * test_engine(const timers_config *cfg);

long long test_dbsize(const redis_server *rs);

timers_counters test_counters(timers_engine *e);

bool test_is_pending(timers_engine *e, const char *topic, const char *id);

typedef struct pending_probe {
  timers_engine *e;
  const char *topic;
  const char *id;
} pending_probe;

bool not_pending_pred(void *ctx);

/* Waits (bounded) until id is no longer pending. */
bool wait_not_pending(timers_engine *e, const char *topic, const char *id,
                      int timeout_ms);

/* Whether the pending listing (optionally with before) contains id; also
 * returns the listing's length in *total when total is not NULL. */
bool test_pending_has(timers_engine *e, const char *topic, bool has_before,
                      double before, const char *id, size_t *total);

/* A timer with activate_at / activate_in set. */
timers_timer timer_at(const char *topic, const char *id, double at);

timers_timer timer_in(const char *topic, const char *id, double in);

#endif /* TIMERS_TEST_UTIL_H */
