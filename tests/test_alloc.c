/*
 * test_alloc.c - out of memory, through timers_set_allocator: for each API
 * call, the k-th allocation of the library fails, for k = 1, 2, ... until
 * the call gets through without failing. Every failing call must return
 * TIMERS_ENOMEM (and "out of memory" in its detail), leave the engine
 * usable, and leak nothing (run under ASan in CI). Then the same call must
 * succeed with the allocator healthy.
 */
#include "test_util.h"

static redis_server rs;

/* ------------------------------------------------------- failing malloc */

static long long fail_at = -1; /* allocation number that fails; -1: none */
static long long allocs;       /* allocations since arming */
static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static bool failed;            /* the armed failure happened */

static bool should_fail(void) {
  pthread_mutex_lock(&alloc_mu);
  bool f = fail_at >= 0 && ++allocs == fail_at;
  if (f) failed = true;
  pthread_mutex_unlock(&alloc_mu);
  return f;
}

static void *f_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
static void *f_calloc(size_t n, size_t s) {
  return should_fail() ? NULL : calloc(n, s);
}
static void *f_realloc(void *p, size_t n) {
  return should_fail() ? NULL : realloc(p, n);
}

static void arm(long long k) {
  pthread_mutex_lock(&alloc_mu);
  fail_at = k;
  allocs = 0;
  failed = false;
  pthread_mutex_unlock(&alloc_mu);
}

static bool disarm(void) {
  pthread_mutex_lock(&alloc_mu);
  bool f = failed;
  fail_at = -1;
  pthread_mutex_unlock(&alloc_mu);
  return f;
}

/* Runs op with the k-th allocation failing, k = 1.. until it does not
 * fail; each failure must be a clean TIMERS_ENOMEM. */
typedef int (*op_fn)(void *ctx);

static int sweep(const char *what, op_fn op, void *ctx) {
  for (long long k = 1; k < 10000; k++) {
    arm(k);
    int rc = op(ctx);
    bool hit = disarm();
    if (!hit) {
      CHECK_MSG(rc == TIMERS_OK, "%s: no allocation failed, yet %s (%s)",
                what, timers_err_name(rc), timers_last_error());
      return (int)k;
    }
    CHECK_MSG(rc == TIMERS_ENOMEM || rc == TIMERS_OK,
              "%s: allocation %lld failed and the call returned %s (%s)",
              what, k, timers_err_name(rc), timers_last_error());
    if (rc == TIMERS_ENOMEM)
      CHECK_MSG(strstr(timers_last_error(), "out of memory"),
                "%s: detail \"%s\"", what, timers_last_error());
  }
  CHECK_MSG(false, "%s: never succeeded", what);
  return 0;
}

/* ------------------------------------------------------------------ ops */

static timers_outcome ack(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  return TIMERS_ACK;
}

static int op_settings(void *ctx) {
  timers_settings *s = NULL;
  int rc = timers_settings_load((const char *)ctx, &s);
  if (rc == TIMERS_OK) {
    timers_subscribe_options o;
    CHECK(timers_settings_topic(s, "orders", &o));
    CHECK_EQ_INT(o.lease_ms, 2000);
  }
  timers_settings_free(s);
  return rc;
}

/* Create, subscribe, declare: a whole engine set up, then destroyed. */
static int op_setup(void *ctx) {
  (void)ctx;
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = NULL;
  int rc = timers_engine_create(&cfg, &e);
  if (rc == TIMERS_OK) rc = timers_subscribe(e, "a", ack, NULL, NULL);
  timers_subscribe_options fs = {.layout = TIMERS_LAYOUT_FASTSTREAM};
  if (rc == TIMERS_OK) rc = timers_declare(e, "py:b", &fs);
  timers_engine_destroy(e);
  return rc;
}

static timers_engine *eng; /* created healthy, for the calls below */

static int op_schedule(void *ctx) {
  (void)ctx;
  timers_timer ts[6];
  static const char *topics[] = {"t1", "t2", "py:b"};
  timers_header h = {"k", "v"};
  for (int k = 0; k < 6; k++) {
    ts[k] = timer_in(topics[k % 3], NULL, 3600);
    ts[k].payload = "payload";
    ts[k].payload_len = 7;
    ts[k].headers = &h;
    ts[k].header_count = 1;
  }
  char ids[6 * (TIMERS_ID_MAX + 1)];
  return timers_schedule_batch(eng, ts, 6, ids);
}

static int op_inspect(void *ctx) {
  timers_timer_info info;
  bool found = false;
  int rc = timers_inspect(eng, "t1", (const char *)ctx, &found, &info);
  if (rc == TIMERS_OK) {
    CHECK(found);
    CHECK_EQ_INT(info.header_count, 1);
    timers_timer_info_free(&info);
  }
  return rc;
}

static int op_pending(void *ctx) {
  (void)ctx;
  timers_pending_iter *it = NULL;
  int rc = timers_pending_open(eng, "t1", false, 0, &it);
  const char *id;
  while (rc == TIMERS_OK) rc = timers_pending_next(it, &id, NULL);
  timers_pending_close(it);
  return rc == TIMERS_EDONE ? TIMERS_OK : rc;
}

static int op_depth_stats(void *ctx) {
  (void)ctx;
  timers_topic_depth *d = NULL;
  int rc = timers_topic_depth_get(eng, "t1", &d);
  timers_topic_depth_free(d);
  timers_stats *s = NULL;
  if (rc == TIMERS_OK) rc = timers_stats_get(eng, &s);
  timers_stats_free(s);
  return rc;
}

static int op_cancel(void *ctx) {
  bool removed;
  return timers_cancel(eng, "t1", (const char *)ctx, &removed);
}

/* A started engine: start fails cleanly at any allocation. */
static int op_start(void *ctx) {
  (void)ctx;
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.pollers = 2;
  timers_engine *e = NULL;
  int rc = timers_engine_create(&cfg, &e);
  if (rc == TIMERS_OK) rc = timers_subscribe(e, "s1", ack, NULL, NULL);
  if (rc == TIMERS_OK) rc = timers_engine_start(e);
  timers_engine_destroy(e);
  return rc;
}

int main(void) {
  timers_allocator a = {f_malloc, f_calloc, f_realloc, free};
  CHECK_OK(timers_set_allocator(&a));
  timers_allocator half = {f_malloc, NULL, f_realloc, free};
  CHECK_ERR(timers_set_allocator(&half), TIMERS_EINVAL);
  test_redis_start(&rs, false);

  char path[] = "/tmp/timers-alloc-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  const char ini[] = "[engine]\nshards = 4\n[topic orders]\nlease_ms = 2000\n"
                     "[topic py:x]\nlayout = faststream\n";
  CHECK(write(fd, ini, sizeof ini - 1) == (ssize_t)(sizeof ini - 1));
  close(fd);
  printf("settings: %d allocations\n", sweep("settings_load", op_settings, path));
  unlink(path);
  printf("setup: %d allocations\n", sweep("create/subscribe/declare", op_setup, NULL));

  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  timers_subscribe_options fs = {.layout = TIMERS_LAYOUT_FASTSTREAM};
  CHECK_OK(timers_declare(eng, "py:b", &fs));
  printf("schedule: %d allocations\n", sweep("schedule_batch", op_schedule, NULL));
  timers_timer t = timer_in("t1", "known", 3600);
  timers_header h = {"k", "v"};
  t.headers = &h;
  t.header_count = 1;
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  printf("inspect: %d allocations\n", sweep("inspect", op_inspect, "known"));
  printf("pending: %d allocations\n", sweep("pending", op_pending, NULL));
  printf("depth+stats: %d allocations\n", sweep("depth/stats", op_depth_stats, NULL));
  printf("cancel: %d allocations\n", sweep("cancel", op_cancel, "known"));
  timers_engine_destroy(eng);
  printf("start: %d allocations\n", sweep("start", op_start, NULL));

  CHECK_OK(timers_set_allocator(NULL));
  test_redis_stop(&rs);
  printf("test_alloc: ok\n");
  return 0;
}
