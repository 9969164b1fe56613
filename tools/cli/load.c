/*
 * load.c - `timers load`: load-test a Redis with the timer engine.
 *
 * Two modes. Rate mode schedules R timers a second for D seconds, each due
 * after a delay drawn from a distribution (fixed, uniform, exponential);
 * burst mode schedules N timers all due at one instant T0, far enough ahead
 * that scheduling ends before it, and measures how fast they drain.
 *
 * Every fire is recorded by id, never assumed: ids are "<run tag>-<index>"
 * and the handler counts deliveries per index in a table that lives in
 * shared memory (mmap MAP_SHARED | MAP_ANONYMOUS, made before any fork), with
 * the lateness of the first delivery (handler start minus activate_at).
 * Duplicates are the deliveries beyond the first, losses the indexes never
 * delivered by the drain deadline (last due time + grace), and the lateness
 * percentiles are exact, from the per-index values.
 *
 * With --processes 1 one engine in this process schedules and fires. With
 * --processes N > 1, N children are forked before any engine exists (so no
 * thread or Redis connection crosses a fork); each runs an engine subscribed
 * to every topic with the same config, and the parent schedules through an
 * engine it never starts (scheduling needs no pollers). At the end each
 * process writes its engine totals into its slot of the shared memory.
 *
 * Signals: SIGINT/SIGTERM are blocked before the fork (cli_redis_open), so
 * every thread of every process inherits the mask; each main thread takes
 * them with sigtimedwait. The parent also raises the shared stop flag, the
 * children stop their engines, and the run reports what it saw and exits
 * 128 + signal.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "timers.h"

#define LOAD_TIMERS_MAX 50000000 /* 8 bytes of shared memory per timer     */
#define LOAD_PROCESSES_MAX 64
#define LOAD_TOPICS_MAX 1024
#define LOAD_SCHED_BATCH 1000    /* default timers per schedule call       */
#define LOAD_TOPIC_CAP 24
#define LOAD_ID_CAP 48
#define LOAD_READY_S 30.0        /* children must start their engines     */
#define LOAD_REAP_S 40.0         /* children must stop (drain + margin)   */

/* ---------------------------------------------------------------- types */

typedef enum load_dist { DIST_FIXED, DIST_UNIFORM, DIST_EXP } load_dist;

typedef struct load_delay {
  load_dist dist;
  double a, b; /* seconds: fixed a; uniform [a, b]; exp mean a */
  const char *text;
} load_delay;

typedef struct load_opts {
  const char *redis, *key_prefix, *handler_text, *config;
  const timers_config *base; /* from --config; NULL: the defaults */
  double rate, duration, grace, lead, handler_sleep; /* seconds, /s */
  load_delay delay;
  long burst; /* 0: rate mode */
  int topics, shards, pollers, workers, batch, sched_batch, processes;
  bool json, progress;
  bool rate_set, duration_set, delay_set, lead_set;
} load_opts;

enum { SLOT_STARTING, SLOT_READY, SLOT_FAILED, SLOT_REPORTED };

/* One engine's totals, written by its process after the engine stopped and
 * published by the release store of state (the parent also reads them only
 * after waitpid). */
typedef struct load_report {
  timers_counters c;
  timers_contention k;
  uint64_t inflight;
  atomic_int state;
} load_report;

/* The shared memory header. Fire counters are relaxed: they are displayed,
 * and the final figures are read after every engine stopped (thread join or
 * waitpid order those reads after all writes). */
typedef struct load_shared {
  atomic_uint_fast64_t fired, distinct, foreign;
  atomic_uint_fast64_t first_ns, last_ns; /* monotonic, of our fires    */
  atomic_uint_fast64_t hist[TIMERS_LATENCY_BUCKETS]; /* live lateness   */
  atomic_int stop;                        /* parent -> children, release */
  load_report slots[LOAD_PROCESSES_MAX + 1]; /* + the parent's scheduler */
} load_shared;

/* What a process's handler needs; copied into each child by fork. */
typedef struct load_ctx {
  load_shared *sh;
  atomic_uint *counts; /* n deliveries per index                       */
  float *late_ms;      /* n lateness of the first delivery, ms         */
  void *map;
  size_t map_len;
  char tag[16];
  size_t tag_len;
  uint64_t n;
  long sleep_ns;
  uint64_t bound_us[TIMERS_LATENCY_BUCKETS];
} load_ctx;

/* The parent's run: scheduling progress and the live status. */
typedef struct load_state {
  const load_opts *o;
  load_ctx *c;
  timers_engine *e;
  timers_timer *ts;
  char (*ids)[LOAD_ID_CAP];
  char (*topics)[LOAD_TOPIC_CAP];
  uint64_t rng, scheduled;
  double t0, sched_s;      /* monotonic start, seconds scheduling      */
  double last_due;         /* wall: the latest activate_at written     */
  double burst_wall, burst_mono; /* T0 of a burst                      */
  int rc;                  /* of the last schedule call                */
  cli_status line;
  uint64_t line_fired;
  double line_at;
} load_state;

typedef struct load_result {
  uint64_t scheduled, fired, duplicates, lost, foreign;
  double schedule_per_s, fire_window_s, fires_per_s;
  double p50, p90, p99, p999, max, mean; /* ms */
  timers_counters c;
  timers_contention k;
  uint64_t inflight;
  bool failed; /* an engine call or a child failed */
} load_result;

static uint64_t load64(atomic_uint_fast64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* ---------------------------------------------------------------- usage */

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: timers load [options]\n"
      "\n"
      "Load-tests a Redis with the timer engine. Rate mode schedules --rate\n"
      "timers a second for --duration, each due after a --delay; burst mode\n"
      "(--burst N) schedules N timers all due at one instant and measures\n"
      "how fast they drain. Every fire is recorded by id: the report counts\n"
      "duplicates and losses and gives exact lateness percentiles. Exits 0\n"
      "if every timer fired exactly once, 1 otherwise, 2 on bad options.\n"
      "\n"
      "Durations: a number of seconds or a number with us, ms, s or m\n"
      "(250ms, 1.5s, 2m).\n"
      "\n"
      "options:\n"
      "  --redis ADDR        use this Redis (host:port, /path.sock,\n"
      "                      unix:/path) instead of starting a private one\n"
      "  --config FILE       settings file: the base for the engine (and its\n"
      "                      [redis] address is used instead of a private\n"
      "                      server); the flags below override it\n"
      "  --rate R            timers scheduled per second (default 1000)\n"
      "  --duration D        how long to schedule (default 10s)\n"
      "  --delay DIST        delay from scheduling to due time (default\n"
      "                      fixed:1s): fixed:D, uniform:MIN:MAX, exp:MEAN\n"
      "  --burst N           burst mode: N timers due at one instant\n"
      "  --lead D            burst: schedule T0 this far ahead (default\n"
      "                      1s + 20us per timer); warns if scheduling\n"
      "                      takes longer\n"
      "  --topics T          topics load.0 .. load.T-1, timers round-robin\n"
      "                      over them (default 1)\n"
      "  --shards N          shards of each topic (default 8, or the\n"
      "                      config's)\n"
      "  --pollers N         poller threads per engine (default 1)\n"
      "  --workers N         handler threads per engine (default 2)\n"
      "  --batch N           timers per claim call (default 256)\n"
      "  --schedule-batch N  most timers per schedule call (default 1000)\n"
      "  --handler H         noop (default) or sleep:D (each fire sleeps D)\n"
      "  --processes N       engines in N processes that all fire; the\n"
      "                      parent schedules (default 1: one process)\n"
      "  --grace D           after the last due time, wait this long for\n"
      "                      missing fires before counting them lost\n"
      "                      (default 10s)\n"
      "  --key-prefix P      Redis key prefix (default \"timers\")\n"
      "  --json              the report as one JSON object on stdout\n"
      "  --progress          the live status line (on stderr) also when\n"
      "                      stderr is not a terminal\n"
      "  -h, --help          this help\n");
}

/* -------------------------------------------------------------- options */

static const cli_flag load_flags[] = {
    {"--redis", true, "an address: host:port, /path.sock or unix:/path"},
    {"--config", true, "the path of an INI file (see timers config sample)"},
    {"--rate", true, "timers per second, a number from 0.001 to 10000000"},
    {"--duration", true, "a duration from 1ms to 24h, e.g. 500ms, 10s, 2m"},
    {"--delay", true,
     "fixed:D, uniform:MIN:MAX (MIN <= MAX) or exp:MEAN, with D a duration "
     "up to 24h such as 50ms, 1s, 2m"},
    {"--burst", true, "an integer from 1 to 50000000"},
    {"--lead", true, "a duration up to 1h, e.g. 5s"},
    {"--topics", true, "an integer from 1 to 1024"},
    {"--shards", true, "an integer from 1 to 4096"},
    {"--pollers", true, "an integer from 1 to 1024"},
    {"--workers", true, "an integer from 1 to 1024"},
    {"--batch", true, "an integer from 1 to 1000000"},
    {"--schedule-batch", true, "an integer from 1 to 100000"},
    {"--handler", true, "noop or sleep:D with D a duration up to 60s"},
    {"--processes", true, "an integer from 1 to 64"},
    {"--grace", true, "a duration up to 24h, e.g. 10s"},
    {"--key-prefix", true, "1 to 64 characters of [A-Za-z0-9_.-/]"},
    {"--json", false, "takes no value"},
    {"--progress", false, "takes no value"},
};
#define LOAD_FLAG_COUNT (sizeof load_flags / sizeof load_flags[0])

static bool parse_delay(const char *v, load_delay *d) {
  char buf[128];
  if (strlen(v) >= sizeof buf) return false;
  strcpy(buf, v);
  char *colon = strchr(buf, ':');
  if (!colon) return false;
  *colon = '\0';
  const char *arg = colon + 1;
  d->text = v;
  if (strcmp(buf, "fixed") == 0)
    return d->dist = DIST_FIXED, cli_parse_duration(arg, 86400, &d->a);
  if (strcmp(buf, "exp") == 0)
    return d->dist = DIST_EXP, cli_parse_duration(arg, 86400, &d->a);
  if (strcmp(buf, "uniform") != 0) return false;
  char *second = strchr(colon + 1, ':');
  if (!second) return false;
  *second = '\0';
  d->dist = DIST_UNIFORM;
  return cli_parse_duration(arg, 86400, &d->a) &&
         cli_parse_duration(second + 1, 86400, &d->b) && d->a <= d->b;
}

static bool parse_handler(const char *v, load_opts *o) {
  o->handler_text = v;
  if (strcmp(v, "noop") == 0) return o->handler_sleep = 0, true;
  if (strncmp(v, "sleep:", 6) != 0) return false;
  return cli_parse_duration(v + 6, 60, &o->handler_sleep);
}

static bool valid_prefix(const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n > 64) return false;
  return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_.-/") == n;
}

/* Options with a number of seconds or per second. */
static bool apply_timing(load_opts *o, const char *name, const char *v) {
  if (strcmp(name, "--rate") == 0)
    return o->rate_set = true, cli_parse_double(v, 0.001, 1e7, &o->rate);
  if (strcmp(name, "--duration") == 0)
    return o->duration_set = true,
           cli_parse_duration(v, 86400, &o->duration) && o->duration >= 1e-3;
  if (strcmp(name, "--delay") == 0)
    return o->delay_set = true, parse_delay(v, &o->delay);
  if (strcmp(name, "--lead") == 0)
    return o->lead_set = true, cli_parse_duration(v, 3600, &o->lead);
  if (strcmp(name, "--grace") == 0)
    return cli_parse_duration(v, 86400, &o->grace);
  return parse_handler(v, o); /* --handler */
}

static bool apply_option(void *opts, const char *name, const char *v) {
  static const struct {
    const char *name;
    long hi;
    size_t off;
  } ints[] = {
      {"--topics", LOAD_TOPICS_MAX, offsetof(load_opts, topics)},
      {"--shards", TIMERS_SHARDS_MAX, offsetof(load_opts, shards)},
      {"--pollers", 1024, offsetof(load_opts, pollers)},
      {"--workers", 1024, offsetof(load_opts, workers)},
      {"--batch", 1000000, offsetof(load_opts, batch)},
      {"--schedule-batch", 100000, offsetof(load_opts, sched_batch)},
      {"--processes", LOAD_PROCESSES_MAX, offsetof(load_opts, processes)},
  };
  load_opts *o = opts;
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (strcmp(name, ints[i].name) == 0)
      return cli_parse_int(v, 1, ints[i].hi, (int *)((char *)o + ints[i].off));
  if (strcmp(name, "--redis") == 0) return o->redis = v, *v != '\0';
  if (strcmp(name, "--config") == 0) return o->config = v, *v != '\0';
  if (strcmp(name, "--key-prefix") == 0)
    return o->key_prefix = v, valid_prefix(v);
  if (strcmp(name, "--burst") == 0)
    return cli_parse_long(v, 1, LOAD_TIMERS_MAX, &o->burst);
  if (strcmp(name, "--json") == 0) return o->json = true;
  if (strcmp(name, "--progress") == 0) return o->progress = true;
  return apply_timing(o, name, v);
}

/* Checks what no single flag can; returns 0 or 2 with a message. */
static int check_options(const load_opts *o) {
  const char *why = NULL;
  if (o->burst && (o->rate_set || o->duration_set || o->delay_set))
    why = "--burst cannot be combined with --rate, --duration or --delay";
  else if (!o->burst && o->lead_set)
    why = "--lead needs --burst";
  else if (!o->burst && (o->rate * o->duration < 1 ||
                         o->rate * o->duration > LOAD_TIMERS_MAX))
    why = "--rate times --duration must give 1 to 50000000 timers";
  if (!why) return 0;
  fprintf(stderr, "timers load: %s\n", why);
  return 2;
}

/* Returns 0, 1 when --help was printed, or 2 on bad usage. */
static int parse_options(int argc, char **argv, load_opts *o) {
  *o = (load_opts){.rate = 1000,
                   .duration = 10,
                   .grace = 10,
                   .delay = {DIST_FIXED, 1, 0, "fixed:1s"},
                   .handler_text = "noop",
                   .topics = 1,
                   .sched_batch = LOAD_SCHED_BATCH,
                   .processes = 1};
  int rc = cli_parse_flags("load", argc, argv, load_flags, LOAD_FLAG_COUNT,
                           apply_option, o, usage);
  return rc ? rc : check_options(o);
}

static uint64_t timer_count(const load_opts *o) {
  return o->burst ? (uint64_t)o->burst
                  : (uint64_t)llround(o->rate * o->duration);
}

/* ------------------------------------------------------- shared memory */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Maps the header and the per-index tables; zero-filled by the kernel. */
static int shared_map(load_ctx *c, uint64_t n) {
  size_t head = align64(sizeof(load_shared));
  size_t counts = align64((size_t)n * sizeof(atomic_uint));
  c->map_len = head + counts + (size_t)n * sizeof(float);
  c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (c->map == MAP_FAILED) {
    fprintf(stderr, "timers load: mmap %zu bytes: %s\n", c->map_len,
            strerror(errno));
    return c->map = NULL, 1;
  }
  char *base = c->map;
  c->sh = c->map;
  c->counts = (atomic_uint *)(void *)(base + head);
  c->late_ms = (float *)(void *)(base + head + counts);
  c->n = n;
  atomic_init(&c->sh->first_ns, UINT64_MAX);
  return 0;
}

static void shared_unmap(load_ctx *c) {
  if (c->map) munmap(c->map, c->map_len);
  c->map = NULL;
}

/* -------------------------------------------------------------- handler */

static int lateness_bucket(const load_ctx *c, double ms) {
  double us = ms * 1e3;
  int lo = 0, hi = TIMERS_LATENCY_BUCKETS - 1;
  while (lo < hi) { /* first bucket whose upper bound exceeds us */
    int mid = (lo + hi) / 2;
    if (us < (double)c->bound_us[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

static void fetch_min(atomic_uint_fast64_t *v, uint64_t x) {
  uint64_t cur = load64(v);
  while (x < cur && !atomic_compare_exchange_weak_explicit(
                        v, &cur, x, memory_order_relaxed, memory_order_relaxed))
    ;
}

static void fetch_max(atomic_uint_fast64_t *v, uint64_t x) {
  uint64_t cur = load64(v);
  while (x > cur && !atomic_compare_exchange_weak_explicit(
                        v, &cur, x, memory_order_relaxed, memory_order_relaxed))
    ;
}

/* The first delivery of index i alone writes its lateness; nobody reads it
 * before every engine stopped. */
static void record_fire(load_ctx *c, size_t i, double late_ms, uint64_t now) {
  load_shared *sh = c->sh;
  atomic_fetch_add_explicit(&sh->fired, 1, memory_order_relaxed);
  fetch_min(&sh->first_ns, now);
  fetch_max(&sh->last_ns, now);
  if (atomic_fetch_add_explicit(&c->counts[i], 1, memory_order_relaxed) != 0)
    return; /* a duplicate */
  c->late_ms[i] = (float)late_ms;
  atomic_fetch_add_explicit(&sh->hist[lateness_bucket(c, late_ms)], 1,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&sh->distinct, 1, memory_order_relaxed);
}

static timers_outcome on_fire(const timers_message *m, void *userdata) {
  load_ctx *c = userdata;
  double late_ms = (timers_now() - m->activate_at) * 1e3;
  uint64_t now = cli_mono_ns();
  long i = cli_id_index(c->tag, c->tag_len, c->n, m->id);
  if (i < 0)
    atomic_fetch_add_explicit(&c->sh->foreign, 1, memory_order_relaxed);
  else
    record_fire(c, (size_t)i, late_ms, now);
  if (c->sleep_ns > 0) {
    struct timespec ts = {c->sleep_ns / 1000000000L,
                          c->sleep_ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
  return TIMERS_ACK;
}

/* --------------------------------------------------------------- engines */

static void topic_name(char *buf, size_t cap, int t) {
  snprintf(buf, cap, "load.%d", t);
}

/* Creates an engine; with fire set, subscribes every topic and starts it. */
static int engine_make(const load_opts *o, const char *addr, load_ctx *c,
                       bool fire, timers_engine **out) {
  timers_config cfg;
  if (o->base) cfg = *o->base;
  else timers_config_init(&cfg), cfg.log_level = TIMERS_LOG_WARN;
  cfg.redis = addr;
  cfg.shards = o->shards;
  if (o->key_prefix) cfg.key_prefix = o->key_prefix;
  if (o->pollers) cfg.pollers = o->pollers;
  if (o->workers) cfg.workers = o->workers;
  if (o->batch) cfg.claim_batch = o->batch;
  cfg.log = cli_log_to_stderr;
  int rc = timers_engine_create(&cfg, out);
  if (rc != TIMERS_OK) return cli_fail("load", "timers_engine_create", rc), 1;
  for (int t = 0; fire && t < o->topics; t++) {
    char topic[LOAD_TOPIC_CAP];
    topic_name(topic, sizeof topic, t);
    rc = timers_subscribe(*out, topic, on_fire, c, NULL);
    if (rc != TIMERS_OK) return cli_fail("load", "timers_subscribe", rc), 1;
  }
  rc = fire ? timers_engine_start(*out) : TIMERS_OK;
  if (rc != TIMERS_OK) return cli_fail("load", "timers_engine_start", rc), 1;
  return 0;
}

/* Stops e, writes its totals into slot, destroys it; 0 or 1. */
static int engine_finish(timers_engine *e, load_report *slot) {
  int status = 0, rc = timers_engine_stop(e);
  if (rc != TIMERS_OK) cli_fail("load", "timers_engine_stop", rc), status = 1;
  timers_stats *s = NULL;
  rc = timers_stats_get(e, &s);
  if (rc == TIMERS_OK) {
    slot->c = s->total;
    slot->k = s->contention;
    slot->inflight = s->inflight;
  } else {
    cli_fail("load", "timers_stats_get", rc), status = 1;
  }
  timers_stats_free(s);
  timers_engine_destroy(e);
  atomic_store_explicit(&slot->state, status ? SLOT_FAILED : SLOT_REPORTED,
                        memory_order_release);
  return status;
}

/* A child: fires until the parent raises stop or a signal arrives. */
static void child_main(const load_opts *o, const char *addr, load_ctx *c,
                       int k) {
  load_report *slot = &c->sh->slots[k];
  timers_engine *e = NULL;
  int status = engine_make(o, addr, c, true, &e);
  if (status) {
    timers_engine_destroy(e);
    atomic_store_explicit(&slot->state, SLOT_FAILED, memory_order_release);
    exit(1);
  }
  atomic_store_explicit(&slot->state, SLOT_READY, memory_order_release);
  /* Pairs with the parent's release store of stop. */
  while (!atomic_load_explicit(&c->sh->stop, memory_order_acquire) &&
         !cli_interrupted(0.05))
    ;
  status = engine_finish(e, slot);
  exit(cli_signal() ? 128 + cli_signal() : status);
}

/* Forks the children; returns how many were started. */
static int children_spawn(const load_opts *o, const char *addr, load_ctx *c,
                          pid_t *pids) {
  fflush(stdout);
  fflush(stderr);
  for (int k = 0; k < o->processes; k++) {
    pids[k] = fork();
    if (pids[k] == 0) child_main(o, addr, c, k);
    if (pids[k] < 0) {
      fprintf(stderr, "timers load: fork: %s\n", strerror(errno));
      return k;
    }
  }
  return o->processes;
}

/* Waits until every child's engine runs; 0, or 1 if one failed or died. */
static int children_ready(load_ctx *c, const pid_t *pids, int n) {
  double deadline = cli_mono_s() + LOAD_READY_S;
  for (;;) {
    int ready = 0;
    for (int k = 0; k < n; k++) {
      int st = atomic_load_explicit(&c->sh->slots[k].state,
                                    memory_order_acquire);
      if (st == SLOT_FAILED || waitpid(pids[k], NULL, WNOHANG) == pids[k]) {
        fprintf(stderr, "timers load: process %d could not start\n", k);
        return 1;
      }
      ready += st == SLOT_READY;
    }
    if (ready == n) return 0;
    if (cli_mono_s() > deadline) {
      fprintf(stderr, "timers load: processes not ready after %.0f s\n",
              LOAD_READY_S);
      return 1;
    }
    if (cli_interrupted(0.01)) return 1;
  }
}

/* Raises stop and reaps every child (killing one that hangs); 0, or 1 if
 * one failed, hung or died. */
static int children_reap(load_ctx *c, const pid_t *pids, int n) {
  atomic_store_explicit(&c->sh->stop, 1, memory_order_release);
  int status = 0;
  double deadline = cli_mono_s() + LOAD_REAP_S;
  for (int k = 0; k < n; k++) {
    int st = 0;
    pid_t r;
    while ((r = waitpid(pids[k], &st, WNOHANG)) == 0 &&
           cli_mono_s() < deadline)
      cli_interrupted(0.01);
    if (r == 0) {
      fprintf(stderr, "timers load: process %d (pid %d) hangs in stop after "
              "%.0f s: killed\n", k, (int)pids[k], LOAD_REAP_S);
      kill(pids[k], SIGKILL);
      waitpid(pids[k], &st, 0);
      status = 1;
    } else if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && !cli_signal())) {
      fprintf(stderr, "timers load: process %d (pid %d) ended with %s %d\n",
              k, (int)pids[k], WIFEXITED(st) ? "status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      status = 1;
    }
  }
  return status;
}

/* ---------------------------------------------------------- status line */

/* Lateness quantile of the first deliveries so far, from the shared
 * histogram (bucket upper bounds). */
static double live_lateness_ms(load_shared *sh, double q) {
  static timers_stats s; /* main thread only */
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++)
    s.lateness[b] = load64(&sh->hist[b]);
  return timers_stats_lateness_ms(&s, q);
}

static void status_print(load_state *st) {
  load_shared *sh = st->c->sh;
  uint64_t fired = load64(&sh->fired), distinct = load64(&sh->distinct);
  double now = cli_mono_s(), dt = now - st->line_at;
  double rate = dt > 0 ? (double)(fired - st->line_fired) / dt : 0;
  cli_status_printf(&st->line,
                    "%6.1f s  scheduled %llu  fired %llu  fires/s %.0f  "
                    "lateness p99 %.2f ms  pending %llu",
                    now - st->t0, (unsigned long long)st->scheduled,
                    (unsigned long long)fired, rate,
                    live_lateness_ms(sh, 0.99),
                    (unsigned long long)(st->scheduled > distinct
                                             ? st->scheduled - distinct
                                             : 0));
  st->line_fired = fired;
  st->line_at = now;
}

static void status_tick(load_state *st) {
  if (cli_status_due(&st->line)) status_print(st);
}

/* ----------------------------------------------------------- scheduling */

static double rng_unit(uint64_t *s) { /* splitmix64, [0, 1) */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static double delay_draw(const load_delay *d, uint64_t *rng) {
  switch (d->dist) {
  case DIST_FIXED: return d->a;
  case DIST_UNIFORM: return d->a + (d->b - d->a) * rng_unit(rng);
  case DIST_EXP: return -d->a * log1p(-rng_unit(rng));
  }
  return d->a;
}

/* Writes timers [base, base + k) in one call, grouped by topic (timer i
 * belongs to topic i mod T) so that the batch has one run per topic. */
static int schedule_chunk(load_state *st, uint64_t base, size_t k) {
  const load_opts *o = st->o;
  double now = timers_now();
  size_t j = 0;
  for (int t = 0; t < o->topics; t++) {
    uint64_t first = base + (uint64_t)((t - (int)(base % (uint64_t)o->topics) +
                                        o->topics) % o->topics);
    for (uint64_t i = first; i < base + k; i += (uint64_t)o->topics, j++) {
      double at = o->burst ? st->burst_wall : now + delay_draw(&o->delay,
                                                               &st->rng);
      if (at > st->last_due) st->last_due = at;
      snprintf(st->ids[j], LOAD_ID_CAP, "%s-%llu", st->c->tag,
               (unsigned long long)i);
      st->ts[j] = (timers_timer){.topic = st->topics[t],
                                 .id = st->ids[j],
                                 .has_activate_at = true,
                                 .activate_at = at};
    }
  }
  int rc = timers_schedule_batch(st->e, st->ts, k, NULL);
  if (rc != TIMERS_OK) cli_fail("load", "timers_schedule_batch", rc);
  else st->scheduled += k;
  return rc;
}

/* Rate mode: timer i is written no earlier than t0 + i / rate; a chunk
 * (1/100 s of timers) goes out once it is due, several at once when behind. */
static int schedule_paced(load_state *st) {
  const load_opts *o = st->o;
  uint64_t n = st->c->n, chunk = (uint64_t)(o->rate / 100);
  if (chunk < 1) chunk = 1;
  if (chunk > (uint64_t)o->sched_batch) chunk = (uint64_t)o->sched_batch;
  while (st->scheduled < n && !cli_interrupted(0)) {
    double now = cli_mono_s();
    uint64_t due = (uint64_t)((now - st->t0) * o->rate) + 1;
    if (due > n) due = n;
    uint64_t want = st->scheduled + chunk < n ? st->scheduled + chunk : n;
    if (due < want) {
      double wait = st->t0 + (double)(want - 1) / o->rate - now;
      cli_interrupted(wait < 0.1 ? wait : 0.1);
    } else {
      uint64_t k = due - st->scheduled;
      if (k > (uint64_t)o->sched_batch) k = (uint64_t)o->sched_batch;
      int rc = schedule_chunk(st, st->scheduled, (size_t)k);
      if (rc != TIMERS_OK) return rc;
    }
    status_tick(st);
  }
  return TIMERS_OK;
}

/* Burst mode: every timer due at T0 = now + lead, written back to back. */
static int schedule_burst(load_state *st) {
  const load_opts *o = st->o;
  double lead = o->lead_set ? o->lead : 1.0 + (double)o->burst * 20e-6;
  st->burst_wall = timers_now() + lead;
  st->burst_mono = cli_mono_s() + lead;
  while (st->scheduled < st->c->n && !cli_interrupted(0)) {
    uint64_t k = st->c->n - st->scheduled;
    if (k > (uint64_t)o->sched_batch) k = (uint64_t)o->sched_batch;
    int rc = schedule_chunk(st, st->scheduled, (size_t)k);
    if (rc != TIMERS_OK) return rc;
    status_tick(st);
  }
  return TIMERS_OK;
}

static int schedule_all(load_state *st) {
  st->t0 = cli_mono_s();
  int rc = st->o->burst ? schedule_burst(st) : schedule_paced(st);
  st->sched_s = cli_mono_s() - st->t0;
  if (st->o->burst && cli_mono_s() > st->burst_mono)
    fprintf(stderr,
            "timers load: warning: scheduling overran the burst instant by "
            "%.3f s (fires began before it ended); use a longer --lead\n",
            cli_mono_s() - st->burst_mono);
  return rc;
}

/* Waits until every scheduled timer fired once, the last due time plus
 * grace, or a signal. */
static void drain(load_state *st) {
  double deadline =
      cli_mono_s() + (st->last_due - timers_now()) + st->o->grace;
  while (load64(&st->c->sh->distinct) < st->scheduled &&
         cli_mono_s() < deadline && !cli_interrupted(0.02))
    status_tick(st);
  if (st->line.tty || load64(&st->c->sh->fired) != st->line_fired)
    status_print(st);
  cli_status_end(&st->line);
}

/* ---------------------------------------------------------------- report */

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank quantile of sorted v[0..n). */
static double quantile(const float *v, size_t n, double q) {
  if (n == 0) return 0;
  size_t rank = (size_t)ceil(q * (double)n);
  return v[rank ? rank - 1 : 0];
}

/* Counts duplicates and losses and sorts the lateness of delivered
 * indexes; false when out of memory. */
static bool tally(const load_ctx *c, uint64_t scheduled, load_result *r) {
  float *v = malloc((size_t)(scheduled ? scheduled : 1) * sizeof *v);
  if (!v) return false;
  size_t m = 0;
  double sum = 0;
  for (uint64_t i = 0; i < scheduled; i++) {
    unsigned n = atomic_load_explicit(&c->counts[i], memory_order_relaxed);
    r->fired += n;
    if (n == 0) r->lost++;
    else r->duplicates += n - 1, sum += (v[m++] = c->late_ms[i]);
  }
  qsort(v, m, sizeof *v, cmp_float);
  r->p50 = quantile(v, m, 0.5);
  r->p90 = quantile(v, m, 0.9);
  r->p99 = quantile(v, m, 0.99);
  r->p999 = quantile(v, m, 0.999);
  r->max = m ? v[m - 1] : 0;
  r->mean = m ? sum / (double)m : 0;
  free(v);
  return true;
}

static void add_report(load_result *r, const load_report *s) {
#define LOAD_ADD_(f) r->c.f += s->c.f
  LOAD_ADD_(scheduled), LOAD_ADD_(claimed), LOAD_ADD_(fired);
  LOAD_ADD_(acked), LOAD_ADD_(nacked), LOAD_ADD_(rejected);
  LOAD_ADD_(stale_commits), LOAD_ADD_(claim_calls), LOAD_ADD_(contested);
  LOAD_ADD_(ring_full), LOAD_ADD_(redis_errors);
#undef LOAD_ADD_
#define LOAD_ADD_(f) r->k.f += s->k.f
  LOAD_ADD_(poller_sleeps), LOAD_ADD_(poller_kicks), LOAD_ADD_(worker_sleeps);
  LOAD_ADD_(worker_wakeups), LOAD_ADD_(lock_waits), LOAD_ADD_(lock_wait_ns);
  LOAD_ADD_(cas_retries);
#undef LOAD_ADD_
  r->inflight += s->inflight;
}

static bool result_make(const load_state *st, int slots, load_result *r) {
  load_shared *sh = st->c->sh;
  *r = (load_result){.scheduled = st->scheduled, .foreign = load64(&sh->foreign)};
  for (int k = 0; k < slots; k++) add_report(r, &sh->slots[k]);
  r->schedule_per_s = st->sched_s > 0 ? (double)st->scheduled / st->sched_s : 0;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  r->fire_window_s = last > first ? (double)(last - first) / 1e9 : 0;
  if (!tally(st->c, st->scheduled, r)) return false;
  r->fires_per_s = r->fire_window_s > 0 ? (double)r->fired / r->fire_window_s
                                        : 0;
  return true;
}

static const char *verdict(const load_result *r) {
  if (cli_signal()) return "interrupted";
  if (r->lost || r->duplicates || r->failed) return "failed";
  return "ok";
}

static void print_setup(const load_opts *o, const char *addr, FILE *out) {
  if (o->burst)
    fprintf(out, "timers load: burst of %ld timers", o->burst);
  else
    fprintf(out, "timers load: %.0f timers/s for %.3g s, delay %s", o->rate,
            o->duration, o->delay.text);
  fprintf(out,
          ", handler %s,\n  %d topic(s) x %d shards, %d process(es) x (%d "
          "poller(s), %d worker(s)), on %s\n",
          o->handler_text, o->topics, o->shards, o->processes,
          o->pollers ? o->pollers : 1, o->workers ? o->workers : 2, addr);
}

static void print_burst(const load_state *st, FILE *out) {
  load_shared *sh = st->c->sh;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  if (last < first) return;
  double t0 = st->burst_mono, sched_end = st->t0 + st->sched_s;
  fprintf(out,
          "burst:         T0 %.3f s after the start, scheduling ended %.3f s "
          "%s it;\n               first fire T0%+.1f ms, last fire T0%+.1f "
          "ms\n",
          t0 - st->t0, fabs(t0 - sched_end), sched_end <= t0 ? "before" : "AFTER",
          ((double)first / 1e9 - t0) * 1e3, ((double)last / 1e9 - t0) * 1e3);
}

static void print_text(const load_state *st, const load_result *r) {
  printf("scheduled:     %llu timers in %.3f s (%.0f /s)\n",
         (unsigned long long)r->scheduled, st->sched_s, r->schedule_per_s);
  printf("fired:         %llu (duplicates %llu, %s %llu)\n",
         (unsigned long long)r->fired, (unsigned long long)r->duplicates,
         cli_signal() ? "not fired before the interruption" : "lost",
         (unsigned long long)r->lost);
  printf("firing window: %.3f s, %.0f fires/s\n", r->fire_window_s,
         r->fires_per_s);
  if (st->o->burst) print_burst(st, stdout);
  printf("lateness:      p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f "
         "ms, max %.2f ms, mean %.2f ms (exact)\n",
         r->p50, r->p90, r->p99, r->p999, r->max, r->mean);
  printf("engine:        claimed %llu, claim calls %llu, contested %llu, ring "
         "full %llu,\n               redis errors %llu, stale commits %llu, "
         "nacked %llu, rejected %llu, inflight %llu\n",
         (unsigned long long)r->c.claimed, (unsigned long long)r->c.claim_calls,
         (unsigned long long)r->c.contested, (unsigned long long)r->c.ring_full,
         (unsigned long long)r->c.redis_errors,
         (unsigned long long)r->c.stale_commits,
         (unsigned long long)r->c.nacked, (unsigned long long)r->c.rejected,
         (unsigned long long)r->inflight);
  printf("contention:    poller sleeps %llu, kicks %llu; worker sleeps %llu, "
         "wake-ups %llu;\n               lock waits %llu (%.3f ms), CAS "
         "retries %llu\n",
         (unsigned long long)r->k.poller_sleeps,
         (unsigned long long)r->k.poller_kicks,
         (unsigned long long)r->k.worker_sleeps,
         (unsigned long long)r->k.worker_wakeups,
         (unsigned long long)r->k.lock_waits, (double)r->k.lock_wait_ns / 1e6,
         (unsigned long long)r->k.cas_retries);
  if (r->foreign)
    printf("foreign:       %llu timers of another run fired (acked)\n",
           (unsigned long long)r->foreign);
  const char *v = verdict(r);
  printf("result:        %s\n", strcmp(v, "ok") == 0
                                    ? "OK, every timer fired exactly once"
                                    : strcmp(v, "failed") == 0 ? "FAILED"
                                                               : "INTERRUPTED");
}

/* Prints s as a JSON string (the inputs are flags: escape the few
 * characters JSON requires). */
static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void json_options(const load_opts *o) {
  printf("{\"mode\": \"%s\", ", o->burst ? "burst" : "rate");
  if (o->burst) {
    printf("\"burst\": %ld, \"rate\": null, \"duration\": null, "
           "\"delay\": null, ", o->burst);
  } else {
    printf("\"burst\": null, \"rate\": %.6g, \"duration\": %.6g, "
           "\"delay\": ", o->rate, o->duration);
    json_string(o->delay.text);
    printf(", ");
  }
  printf("\"handler\": ");
  json_string(o->handler_text);
  printf(", \"topics\": %d, \"shards\": %d, \"processes\": %d, \"pollers\": "
         "%d, \"workers\": %d, \"batch\": %d, \"schedule_batch\": %d, "
         "\"grace_s\": %.6g,\n",
         o->topics, o->shards, o->processes, o->pollers ? o->pollers : 1,
         o->workers ? o->workers : 2, o->batch ? o->batch : 256,
         o->sched_batch, o->grace);
}

static void json_burst(const load_state *st) {
  load_shared *sh = st->c->sh;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  double t0 = st->burst_mono;
  printf(" \"burst_t0_s\": %.6f, \"burst_schedule_end_s\": %.6f, "
         "\"burst_first_fire_ms\": %.3f, \"burst_last_fire_ms\": %.3f,\n",
         t0 - st->t0, st->sched_s,
         last >= first ? ((double)first / 1e9 - t0) * 1e3 : 0,
         last >= first ? ((double)last / 1e9 - t0) * 1e3 : 0);
}

static void json_engine(const load_result *r) {
  const timers_counters *c = &r->c;
  const timers_contention *k = &r->k;
  printf(" \"engine\": {\"scheduled\": %llu, \"claimed\": %llu, \"fired\": "
         "%llu, \"acked\": %llu, \"nacked\": %llu, \"rejected\": %llu, "
         "\"stale_commits\": %llu, \"claim_calls\": %llu, \"contested\": "
         "%llu, \"ring_full\": %llu, \"redis_errors\": %llu, \"inflight\": "
         "%llu,\n  \"poller_sleeps\": %llu, \"poller_kicks\": %llu, "
         "\"worker_sleeps\": %llu, \"worker_wakeups\": %llu, \"lock_waits\": "
         "%llu, \"lock_wait_ms\": %.3f, \"cas_retries\": %llu}}\n",
         (unsigned long long)c->scheduled, (unsigned long long)c->claimed,
         (unsigned long long)c->fired, (unsigned long long)c->acked,
         (unsigned long long)c->nacked, (unsigned long long)c->rejected,
         (unsigned long long)c->stale_commits,
         (unsigned long long)c->claim_calls, (unsigned long long)c->contested,
         (unsigned long long)c->ring_full, (unsigned long long)c->redis_errors,
         (unsigned long long)r->inflight, (unsigned long long)k->poller_sleeps,
         (unsigned long long)k->poller_kicks,
         (unsigned long long)k->worker_sleeps,
         (unsigned long long)k->worker_wakeups,
         (unsigned long long)k->lock_waits, (double)k->lock_wait_ns / 1e6,
         (unsigned long long)k->cas_retries);
}

static void print_json(const load_state *st, const load_result *r) {
  json_options(st->o);
  printf(" \"result\": \"%s\", \"scheduled\": %llu, \"fired\": %llu, "
         "\"duplicates\": %llu, \"lost\": %llu, \"foreign\": %llu,\n"
         " \"schedule_s\": %.6f, \"schedule_per_s\": %.1f, \"fire_window_s\": "
         "%.6f, \"fires_per_s\": %.1f,\n",
         verdict(r), (unsigned long long)r->scheduled,
         (unsigned long long)r->fired, (unsigned long long)r->duplicates,
         (unsigned long long)r->lost, (unsigned long long)r->foreign,
         st->sched_s, r->schedule_per_s, r->fire_window_s, r->fires_per_s);
  if (st->o->burst) json_burst(st);
  printf(" \"lateness_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
         "\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f},\n",
         r->p50, r->p90, r->p99, r->p999, r->max, r->mean);
  json_engine(r);
}

/* ------------------------------------------------------------------ run */

/* Allocates the scheduling buffers and names the topics; 0 or 1. */
static int state_init(load_state *st, const load_opts *o, load_ctx *c) {
  *st = (load_state){.o = o, .c = c, .rng = cli_mono_ns() ^ 0x5eed};
  st->ts = calloc((size_t)o->sched_batch, sizeof *st->ts);
  st->ids = calloc((size_t)o->sched_batch, sizeof *st->ids);
  st->topics = calloc((size_t)o->topics, sizeof *st->topics);
  if (!st->ts || !st->ids || !st->topics) {
    fprintf(stderr, "timers load: out of memory\n");
    return 1;
  }
  for (int t = 0; t < o->topics; t++)
    topic_name(st->topics[t], LOAD_TOPIC_CAP, t);
  cli_status_init(&st->line, stderr, o->progress, 1.0, 1.0);
  return 0;
}

static void state_free(load_state *st) {
  free(st->ts);
  free(st->ids);
  free(st->topics);
}

/* Schedules, drains, stops the parent's engine; 0 or 1. */
static int run_phases(load_state *st, int slot) {
  st->line_at = cli_mono_s();
  int status = schedule_all(st) != TIMERS_OK;
  if (st->line.tty) status_print(st);
  cli_status_end(&st->line);
  fprintf(stderr, "scheduled %llu timers in %.3f s; waiting for fires ...\n",
          (unsigned long long)st->scheduled, st->sched_s);
  drain(st);
  status |= engine_finish(st->e, &st->c->sh->slots[slot]);
  st->e = NULL;
  return status;
}

/* Reports; returns the exit status. */
static int finish(load_state *st, int slots, int status) {
  load_result r;
  if (!result_make(st, slots, &r)) {
    fprintf(stderr, "timers load: out of memory\n");
    return 1;
  }
  r.failed = status != 0 || st->scheduled < st->c->n;
  if (st->o->json) print_json(st, &r);
  else print_text(st, &r);
  fflush(stdout);
  if (cli_signal()) {
    fprintf(stderr, "timers load: interrupted by %s\n",
            strsignal(cli_signal()));
    return 128 + cli_signal();
  }
  return strcmp(verdict(&r), "ok") == 0 ? 0 : 1;
}

/* Starts the engines: the children's (if any), then this process's. */
static int start_engines(load_state *st, const char *addr, pid_t *pids,
                         int *kids) {
  const load_opts *o = st->o;
  if (o->processes > 1) {
    *kids = children_spawn(o, addr, st->c, pids);
    if (*kids < o->processes) return 1;
  }
  if (engine_make(o, addr, st->c, o->processes == 1, &st->e) != 0) return 1;
  return *kids ? children_ready(st->c, pids, *kids) : 0;
}

static int run(const load_opts *o, const char *addr, load_ctx *c) {
  pid_t pids[LOAD_PROCESSES_MAX];
  int kids = 0, slot = o->processes > 1 ? o->processes : 0;
  load_state st;
  int status = state_init(&st, o, c);
  bool started = !status && start_engines(&st, addr, pids, &kids) == 0;
  if (started) {
    print_setup(o, addr, stderr);
    status = run_phases(&st, slot);
  } else {
    timers_engine_destroy(st.e);
    status = 1;
  }
  if (kids) status |= children_reap(c, pids, kids);
  if (started) status = finish(&st, slot + 1, status);
  state_free(&st);
  return status;
}

/* Runs the test on the Redis of o (a private one when none is set). */
static int run_load(const load_opts *o) {
  int status;
  load_ctx c = {.sleep_ns = (long)llround(o->handler_sleep * 1e9)};
  cli_run_tag(c.tag, sizeof c.tag);
  c.tag_len = strlen(c.tag);
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++)
    c.bound_us[b] = timers_lateness_bound_us(b);
  if (shared_map(&c, timer_count(o)) != 0) return 1;
  redis_server rs;
  const char *addr = NULL;
  if (cli_redis_open("load", o->redis, &rs, &addr) != 0)
    return shared_unmap(&c), 1;
  status = cli_signal() ? 128 + cli_signal() : run(o, addr, &c);
  cli_redis_close(&rs);
  shared_unmap(&c);
  return status;
}

/* With --config, the settings are the base and fill what no flag set
 * (Redis address, shards, pollers, workers, claim batch, key prefix);
 * without it the defaults do. Returns 0 or 1. */
static int apply_config(load_opts *o, timers_settings **s) {
  *s = NULL;
  if (o->config) {
    cli_global g = {.config = o->config};
    if (cli_settings_open("load", &g, s) != 0) return 1;
    const timers_config *c = o->base = timers_settings_config(*s);
    if (!o->redis && c->redis && *c->redis) o->redis = c->redis;
    if (!o->key_prefix) o->key_prefix = c->key_prefix;
    if (!o->shards) o->shards = c->shards;
    if (!o->pollers) o->pollers = c->pollers;
    if (!o->workers) o->workers = c->workers;
    if (!o->batch) o->batch = c->claim_batch;
  }
  if (!o->shards) o->shards = 8;
  return 0;
}

int cli_load(int argc, char **argv) {
  load_opts o;
  timers_settings *settings;
  int status = parse_options(argc, argv, &o);
  if (status) return status == 1 ? 0 : status;
  if (apply_config(&o, &settings) != 0) return 1;
  status = run_load(&o);
  timers_settings_free(settings);
  return status;
}
