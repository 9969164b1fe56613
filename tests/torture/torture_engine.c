/*
 * torture_engine.c - the engine role: one timers engine subscribed to every
 * topic of the plan, shaped by (seed, index, incarnation).
 *
 * The handler logs a START record (id, attempt, payload version, what it
 * plans to do) before it does anything, sleeps the planned time, logs an
 * END record with the outcome, and returns that outcome: the oracle sees
 * every delivery even if the process is SIGKILLed in the middle.
 *
 * SIGTERM is a clean stop: STOP_BEGIN, timers_engine_stop(), STOP_DONE,
 * exit 0. The main thread waits for it with sigwait (blocked in every
 * thread, so no engine thread is interrupted).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "torture.h"

typedef struct engine_role {
  tt_plan plan;
  int index, inc;
  int fd;                  /* the write-ahead log                          */
  timers_engine *probe;    /* never started: timers_inspect from handlers  */
  _Atomic uint32_t seq;    /* deliveries started in this process           */
  int topic_ids[TT_TOPICS_MAX];
} engine_role;

static engine_role g; /* one per process; the handler reaches it here */

/* ------------------------------------------------------------- logging */

/* Engine log lines go to stderr (a file in the run folder), at most
 * LOG_PER_SECOND a second: a spinning poller must not fill the disk. */
enum { LOG_PER_SECOND = 20 };
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static time_t log_second;
static unsigned log_count, log_dropped;

static void engine_log(void *ud, timers_log_level level, const char *msg) {
  (void)ud;
  static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  time_t now = time(NULL);
  pthread_mutex_lock(&log_mu);
  if (now != log_second) {
    if (log_dropped)
      fprintf(stderr, "%.3f [torture] %u log lines dropped\n", tt_now(),
              log_dropped);
    log_second = now, log_count = 0, log_dropped = 0;
  }
  if (log_count++ < LOG_PER_SECOND)
    fprintf(stderr, "%.3f [timers %s] %s\n", tt_now(),
            level <= TIMERS_LOG_DEBUG ? names[level] : "?", msg);
  else
    log_dropped++;
  pthread_mutex_unlock(&log_mu);
}

static void log_simple(tt_kind kind, int value) {
  tt_rec r;
  tt_rec_init(&r, kind);
  r.role = TT_ROLE_ENGINE;
  r.attempt = (uint32_t)g.index;
  r.index = (uint32_t)g.index;
  r.seq = (uint32_t)g.inc;
  r.value = value;
  tt_log_append(g.fd, &r, 1);
}

/* ------------------------------------------------------------- handler */

static bool header_matches(const timers_message *m, uint64_t version) {
  char want[24];
  snprintf(want, sizeof want, "%016" PRIx64, version);
  for (size_t i = 0; i < m->header_count; i++)
    if (strcmp(m->headers[i].key, "v") == 0)
      return strcmp(m->headers[i].value, want) == 0;
  return false;
}

/* What Redis holds for the timer being handled (see TT_P_*). */
static void probe_timer(const timers_message *m, uint64_t version, tt_rec *r) {
  timers_timer_info info;
  bool found = false;
  if (!g.probe || timers_inspect(g.probe, m->topic, m->id, &found, &info) !=
                      TIMERS_OK)
    return;
  r->z |= TT_P_OK;
  if (!found) return;
  r->z |= TT_P_FOUND;
  r->x = info.score;
  r->y = info.attempts;
  uint64_t v = 0;
  int t = -1;
  if (tt_payload_decode(info.payload, info.payload_len, &v, &t) && v == version)
    r->z |= TT_P_SAME_VERSION;
  timers_timer_info_free(&info);
}

static timers_outcome handler(const timers_message *m, void *ud) {
  int topic = *(const int *)ud;
  tt_rec r;
  tt_rec_init(&r, TT_REC_START); /* its time: handler entry */
  r.role = TT_ROLE_ENGINE;
  r.topic = (uint8_t)topic;
  r.index = (uint32_t)g.index;
  r.seq = atomic_fetch_add_explicit(&g.seq, 1, memory_order_relaxed);
  r.attempt = m->attempt;
  r.at = m->activate_at;
  snprintf(r.id, sizeof r.id, "%s", m->id);
  uint64_t version = 0;
  int ptopic = -1;
  if (!tt_payload_decode(m->payload, m->payload_len, &version, &ptopic) ||
      ptopic != topic || !header_matches(m, version) ||
      strlen(m->id) >= sizeof r.id)
    r.flags |= TT_F_PAYLOAD_BAD;
  r.version = version;
  int ms = tt_handler_ms_for(&g.plan, topic, m->id, m->attempt);
  timers_outcome o = tt_outcome_for(&g.plan, topic, m->id, m->attempt);
  r.aux = (uint64_t)ms;
  r.value = (int32_t)o;
  probe_timer(m, version, &r);
  tt_log_append(g.fd, &r, 1); /* write-ahead: before the work */

  tt_sleep(ms / 1e3);

  tt_rec e = r;
  e.kind = TT_REC_END;
  e.t = tt_now();
  tt_log_append(g.fd, &e, 1);
  return o;
}

/* --------------------------------------------------------------- setup */

static void configure(timers_config *cfg, const char *redis,
                      const tt_engine_shape *s) {
  timers_config_init(cfg);
  cfg->redis = redis;
  cfg->key_prefix = TT_KEY_PREFIX;
  cfg->pollers = s->pollers;
  cfg->workers = s->workers;
  cfg->ring_capacity = s->ring_capacity;
  cfg->claim_batch = s->claim_batch;
  cfg->max_sleep_ms = s->max_sleep_ms;
  cfg->command_timeout_ms = s->command_timeout_ms;
  cfg->drain_timeout_ms = s->drain_timeout_ms;
  cfg->owner_ttl_ms = 1500; /* owned topics: takeover within 1.5 s */
  cfg->retry_ms = 1000;
  cfg->log = engine_log;
  cfg->log_level = TIMERS_LOG_WARN;
}

static int subscribe_all(timers_engine *e, const tt_engine_shape *s) {
  for (int i = 0; i < g.plan.ntopics; i++) {
    const tt_topic *t = &g.plan.topics[i];
    /* The engine extends a running handler's lease up to max_handler_ms
     * (oracle.c handler_dup_threshold_s allows duplicates only past it). */
    /* max_attempts unlimited: the oracle wants every timer's final
     * outcome (dead letters are test_retries' business). */
    timers_subscribe_options o = {
        .lease_ms = t->lease_ms,
        .max_handler_ms = t->max_handler_ms,
        .max_attempts = -1,
        .owned = t->owned,
        .shards = t->shards,
        .max_inflight = t->poison ? 0 : s->max_inflight,
        .layout = TIMERS_LAYOUT_NATIVE,
    };
    g.topic_ids[i] = i;
    int rc = timers_subscribe(e, t->name, handler, &g.topic_ids[i], &o);
    if (rc != TIMERS_OK) {
      fprintf(stderr, "engine: subscribe %s: %s\n", t->name,
              timers_last_error());
      return rc;
    }
  }
  return TIMERS_OK;
}

/* Waits up to `seconds` for SIGTERM/SIGINT; true if one came. */
static bool wait_term(const sigset_t *set, double seconds) {
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  for (;;) {
    int sig = seconds < 0 ? sigwaitinfo(set, NULL) : sigtimedwait(set, NULL, &ts);
    if (sig > 0) return true;
    if (errno != EINTR) return false;
  }
}

/* Redis may be down or stalled while an engine (re)starts: keep trying for
 * a bounded time, and stop trying when told to stop. */
static int start_engine(timers_engine *e, const sigset_t *set, bool *term) {
  double deadline = tt_mono() + 60;
  for (;;) {
    int rc = timers_engine_start(e);
    if (rc == TIMERS_OK || tt_mono() > deadline) return rc;
    if (rc != TIMERS_ECONN && rc != TIMERS_EREDIS) return rc;
    fprintf(stderr, "%.3f engine: start: %s; retrying\n", tt_now(),
            timers_last_error());
    if (wait_term(set, 0.2)) {
      *term = true;
      return rc;
    }
  }
}

/* The probe's engine: same Redis, short timeouts, no retry, so a stalled
 * or dead Redis delays a handler by at most a quarter of a second. */
static timers_engine *probe_engine(const char *redis) {
  timers_config cfg;
  timers_config_init(&cfg);
  cfg.redis = redis;
  cfg.key_prefix = TT_KEY_PREFIX;
  cfg.connect_timeout_ms = 250;
  cfg.command_timeout_ms = 250;
  cfg.retry_ms = 0;
  timers_engine *e = NULL;
  if (timers_engine_create(&cfg, &e) != TIMERS_OK) return NULL;
  for (int i = 0; i < g.plan.ntopics; i++) {
    timers_subscribe_options o = {.lease_ms = g.plan.topics[i].lease_ms,
                                  .shards = g.plan.topics[i].shards};
    if (timers_declare(e, g.plan.topics[i].name, &o) != TIMERS_OK) {
      timers_engine_destroy(e);
      return NULL;
    }
  }
  return e;
}

static const char *arg_value(int argc, char **argv, const char *name) {
  for (int i = 0; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

int tt_engine_main(int argc, char **argv) {
  const char *dir = arg_value(argc, argv, "--dir");
  const char *redis = arg_value(argc, argv, "--redis");
  const char *seed = arg_value(argc, argv, "--seed");
  const char *index = arg_value(argc, argv, "--index");
  const char *inc = arg_value(argc, argv, "--inc");
  if (!dir || !redis || !seed || !index || !inc) {
    fprintf(stderr, "engine: --dir --redis --seed --index --inc required\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* engine threads inherit it */
  signal(SIGPIPE, SIG_IGN);

  tt_plan_init(&g.plan, strtoull(seed, NULL, 10));
  g.index = atoi(index);
  g.inc = atoi(inc);
  char path[512];
  snprintf(path, sizeof path, "%s/logs/engine-%d-%d.bin", dir, g.index, g.inc);
  if ((g.fd = tt_log_open(path)) < 0) return 2;

  tt_engine_shape shape;
  bool gentle = false;
  for (int i = 0; i < argc; i++) gentle |= strcmp(argv[i], "--gentle") == 0;
  tt_engine_shape_of(&g.plan, g.index, g.inc, gentle, &shape);
  const char *workers = arg_value(argc, argv, "--workers");
  if (workers && atoi(workers) > 0) shape.workers = atoi(workers);
  log_simple(TT_REC_HELLO, shape.drain_timeout_ms);
  g.probe = probe_engine(redis);
  timers_config cfg;
  configure(&cfg, redis, &shape);
  timers_engine *e = NULL;
  if (timers_engine_create(&cfg, &e) != TIMERS_OK ||
      subscribe_all(e, &shape) != TIMERS_OK) {
    fprintf(stderr, "engine: %s\n", timers_last_error());
    return 3;
  }
  bool term = false;
  int rc = start_engine(e, &set, &term);
  if (rc != TIMERS_OK && !term) {
    fprintf(stderr, "engine: start: %s\n", timers_last_error());
    timers_engine_destroy(e);
    return 3;
  }
  if (rc == TIMERS_OK) {
    log_simple(TT_REC_ENGINE_UP, 0);
    if (!term) wait_term(&set, -1);
  }
  log_simple(TT_REC_STOP_BEGIN, 0);
  rc = timers_engine_stop(e);
  log_simple(TT_REC_STOP_DONE, rc);
  timers_engine_destroy(e);
  timers_engine_destroy(g.probe);
  close(g.fd);
  return 0;
}
