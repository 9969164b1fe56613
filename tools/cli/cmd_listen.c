/*
 * cmd_listen.c - `timers listen TOPIC...`: run an engine whose handler
 * prints each fired timer as one JSON line and acks it (or, for testing,
 * nacks or rejects it; --nack-delay sets the redelivery delay of a nack
 * with timers_retry_in instead of the topic's backoff).
 *
 * Handlers run on the engine's worker threads; one mutex orders the lines
 * and the count, and each line is flushed as it is written so that a pipe
 * reader sees it at once.
 *
 * --count N claims no more than it handles: one worker, and at most one
 * timer of each topic claimed at a time (max_inflight 1), so at most one
 * per topic is claimed past the Nth. Those extras are handed back with
 * TIMERS_RELEASE (at once, their attempt not counted; a NACK would hide
 * them for a whole lease), the Nth handler wakes the main thread, and
 * stop() hands back whatever was claimed and not started.
 *
 * Signals: blocked before the engine's threads exist; the main thread takes
 * SIGINT/SIGTERM with sigtimedwait while it waits, then stops the engine
 * (handlers already running finish) and exits 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

#define LISTEN_TOPICS_MAX 64

typedef struct listen_opts {
  cli_global g;
  timers_outcome outcome; /* from nack / reject */
  bool nack, reject;
  long count;     /* 0: unlimited */
  double timeout; /* seconds; 0: none */
  int nack_delay_ms; /* -1: the topic's backoff */
} listen_opts;

/* Shared by the handler (any worker thread) and the main thread; every
 * field after mu is guarded by it. done is signalled when printed reaches
 * count. */
typedef struct listen_run {
  pthread_mutex_t mu;
  pthread_cond_t done;
  long count, printed;
  timers_outcome outcome;
  int nack_delay_ms;
} listen_run;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers listen TOPIC [TOPIC...] [options]\n"
          "\n"
          "Runs an engine subscribed to the topics and prints each fired\n"
          "timer as one JSON line: id, topic, shard, attempt, activate_at,\n"
          "fired_at (ISO-8601), headers, and \"payload\" (valid UTF-8) or\n"
          "\"payload_b64\". Then acks it. Stops on SIGINT/SIGTERM, after\n"
          "--count timers or after --timeout; exits 0 (1 if the engine\n"
          "fails, 2 on bad usage).\n"
          "\n"
          "options:\n"
          "  --nack             nack each timer instead (redelivered after\n"
          "                     the topic's backoff; its last attempt, see\n"
          "                     max_attempts, goes to the dead-letter set)\n"
          "  --nack-delay D     with --nack: redeliver after D (0 to 1d)\n"
          "  --reject           reject each timer instead (dropped, or a dead\n"
          "                     letter with dead_letter_rejects = 1)\n"
          "  --count N          stop after N timers; claims one timer per topic\n"
          "                     at a time, and hands any timer past the Nth\n"
          "                     back at once (release), unprinted\n"
          "  --timeout D        stop after D (30s, 5m, ...)\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag listen_flags[] = {
    {"--nack", false, "takes no value"},
    {"--nack-delay", true, "a duration from 0 to 1d, e.g. 0, 250ms, 5s"},
    {"--reject", false, "takes no value"},
    {"--count", true, "an integer from 1 to 1000000000"},
    {"--timeout", true, "a duration from 1ms to 100 days, e.g. 500ms, 30s"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  listen_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (strcmp(name, "--nack") == 0) return o->nack = true, true;
  if (strcmp(name, "--reject") == 0) return o->reject = true, true;
  double d;
  if (strcmp(name, "--nack-delay") == 0) {
    if (!cli_parse_duration(v, 86400, &d)) return false;
    o->nack_delay_ms = (int)(d * 1000 + 0.5);
    return true;
  }
  if (strcmp(name, "--count") == 0)
    return cli_parse_long(v, 1, 1000000000, &o->count);
  return cli_parse_duration(v, 100 * 86400.0, &o->timeout) &&
         o->timeout >= 1e-3; /* --timeout */
}

static void print_message(const timers_message *m, double fired_at) {
  char at[CLI_TIME_CAP], fired[CLI_TIME_CAP];
  cli_iso_time(m->activate_at, 6, at, sizeof at);
  cli_iso_time(fired_at, 6, fired, sizeof fired);
  fputc('{', stdout);
  cli_json_name(stdout, "id", m->id);
  fputs(",\"topic\":", stdout);
  cli_json_cstr(stdout, m->topic);
  printf(",\"shard\":%u,\"attempt\":%u,\"activate_at\":\"%s\","
         "\"fired_at\":\"%s\",\"headers\":",
         m->shard, m->attempt, at, fired);
  cli_json_headers(stdout, m->headers, m->header_count);
  fputc(',', stdout);
  cli_json_payload(stdout, m->payload, m->payload_len, 0);
  fputs("}\n", stdout);
  fflush(stdout);
}

static timers_outcome on_fire(const timers_message *m, void *userdata) {
  listen_run *r = userdata;
  double now = timers_now();
  pthread_mutex_lock(&r->mu);
  bool print = r->count == 0 || r->printed < r->count;
  if (print) {
    print_message(m, now);
    if (++r->printed == r->count) pthread_cond_signal(&r->done);
  }
  timers_outcome outcome = print ? r->outcome : TIMERS_RELEASE;
  pthread_mutex_unlock(&r->mu);
  /* r->nack_delay_ms is set before the engine starts, read-only since. */
  if (outcome == TIMERS_NACK && r->nack_delay_ms >= 0)
    timers_retry_in(m, r->nack_delay_ms);
  return outcome;
}

/* Subscribes topic with its options; a native topic without a configured
 * shard count takes the one recorded in Redis (else the start would fail
 * with TIMERS_ESHARDS). */
static int subscribe(const listen_opts *o, const timers_settings *s,
                     timers_engine *e, const char *topic, listen_run *r) {
  timers_subscribe_options opts;
  cli_topic_options(&o->g, s, topic, &opts);
  if (o->count) opts.max_inflight = 1;
  int rc = TIMERS_OK;
  if (opts.layout == TIMERS_LAYOUT_NATIVE && opts.shards == 0) {
    timers_topic_depth *d = NULL;
    rc = timers_topic_depth_get(e, topic, &d);
    if (rc == TIMERS_OK) opts.shards = (int)d->shards;
    timers_topic_depth_free(d);
    if (rc != TIMERS_OK)
      return cli_fail("listen", "reading the topic's shard count", rc), 1;
  }
  rc = timers_subscribe(e, topic, on_fire, r, &opts);
  if (rc != TIMERS_OK) return cli_fail("listen", "timers_subscribe", rc), 1;
  return 0;
}

/* With --count: one worker (settings set like a flag), and claims of one
 * timer (max_inflight caps them anyway; this keeps the intent visible). */
static int limit_claims(const listen_opts *o, timers_settings *s) {
  int rc = TIMERS_OK;
  if (o->count) rc = timers_settings_set(s, "engine", "workers", "1");
  if (o->count && rc == TIMERS_OK)
    rc = timers_settings_set(s, "engine", "claim_batch", "1");
  if (rc != TIMERS_OK) return cli_fail("listen", "--count settings", rc), 1;
  return 0;
}

/* Waits for the count (woken by the handler), the timeout or a signal
 * (looked at every 20 ms). */
static void wait_end(const listen_opts *o, listen_run *r) {
  double deadline = o->timeout > 0 ? cli_mono_s() + o->timeout : 0;
  pthread_mutex_lock(&r->mu);
  while (!(r->count && r->printed >= r->count) && !cli_interrupted(0) &&
         !(deadline && cli_mono_s() >= deadline)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 20 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&r->done, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
}

static int listen_topics(const listen_opts *o, const char **topics, int n,
                         listen_run *r) {
  timers_settings *s = NULL;
  timers_engine *e = NULL;
  int status = cli_settings_open("listen", &o->g, &s);
  cli_names names = {topics, (size_t)n, "TOPIC", NULL, 0, NULL};
  if (!status) status = cli_names_check("listen", &o->g, s, &names);
  if (!status) status = limit_claims(o, s);
  if (!status) status = cli_engine_open("listen", &o->g, s, NULL, 0, &e);
  for (int i = 0; !status && i < n; i++)
    status = subscribe(o, s, e, topics[i], r);
  int rc = status ? TIMERS_OK : timers_engine_start(e);
  if (rc != TIMERS_OK) cli_fail("listen", "timers_engine_start", rc), status = 1;
  if (!status) {
    wait_end(o, r);
    rc = timers_engine_stop(e);
    if (rc != TIMERS_OK) cli_fail("listen", "timers_engine_stop", rc), status = 1;
  }
  cli_client_close(s, e);
  return status;
}

int cli_listen(int argc, char **argv) {
  listen_opts o = {.outcome = TIMERS_ACK, .nack_delay_ms = -1};
  const char *topics[LISTEN_TOPICS_MAX];
  int n, status = cli_parse_args(
      "listen", argc, argv, listen_flags,
      sizeof listen_flags / sizeof *listen_flags, apply_option, &o, usage,
      topics, LISTEN_TOPICS_MAX, &n);
  if (status) return status == 1 ? 0 : status;
  if (n < 1) {
    fprintf(stderr, "timers listen: TOPIC is missing\n\n");
    return usage(stderr), 2;
  }
  if (o.nack && o.reject) {
    fprintf(stderr, "timers listen: --nack and --reject exclude each other\n");
    return 2;
  }
  o.outcome = o.nack ? TIMERS_NACK : o.reject ? TIMERS_REJECT : TIMERS_ACK;
  if (o.nack_delay_ms >= 0 && o.outcome != TIMERS_NACK) {
    fprintf(stderr, "timers listen: --nack-delay needs --nack\n");
    return 2;
  }
  listen_run r = {.count = o.count, .outcome = o.outcome,
                  .nack_delay_ms = o.nack_delay_ms};
  pthread_mutex_init(&r.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r.done, &ca);
  pthread_condattr_destroy(&ca);
  cli_signals_take();
  status = listen_topics(&o, topics, n, &r);
  pthread_cond_destroy(&r.done);
  pthread_mutex_destroy(&r.mu);
  return status;
}
