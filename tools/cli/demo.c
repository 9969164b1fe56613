/*
 * demo.c - `timers demo`: schedule many timers and watch them fire.
 *
 * Starts a private redis-server (unix socket in a temporary folder) unless
 * --redis (or --config, whose address it then uses) is given, runs one
 * engine with a no-op handler on topic "demo", schedules N timers spread
 * evenly over SPREAD seconds starting LEAD seconds from now, in pipelined
 * batches, shows a live status line, and ends with a summary. It exits 0
 * only if every timer fired exactly once. The lead lets scheduling finish
 * before the timers come due, so lateness measures firing, not a
 * scheduler that runs behind its own timeline (it says so when it did).
 *
 * Timer ids are "<run tag>-<index>", so the handler can tell each timer's
 * first delivery from a duplicate, and timers left in a shared Redis by
 * another run from ours. Only the public API of timers.h is used.
 *
 * Signals: SIGINT/SIGTERM are blocked once the private Redis runs, so every
 * engine thread inherits a blocked mask; the main thread alone takes them
 * with sigtimedwait() while it waits (common.c), then stops the engine and
 * Redis (its folder included) and exits 128 + signal.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "timers.h"

#define DEMO_TOPIC "demo"
#define DEMO_CHUNK 1000          /* timers per timers_schedule_batch()     */
#define DEMO_TIMERS_MAX 50000000 /* one byte of bookkeeping per timer      */
#define DEMO_GRACE_S 30.0        /* wait this long after the last due time */
#define DEMO_ID_CAP 32

typedef struct demo_opts {
  const char *redis;  /* NULL: start a private redis-server */
  const char *config; /* --config FILE: the engine's base settings */
  const timers_config *base; /* from it; NULL: the defaults */
  long timers;
  double spread, lead; /* seconds */
  int shards, pollers, workers, batch; /* 0: the engine's default */
} demo_opts;

/* Shared by the main thread and the handler (worker threads). Counters are
 * relaxed: the main thread only displays them, nothing is published
 * through them. */
typedef struct demo_run {
  char tag[16];
  size_t tag_len;
  uint32_t n;
  atomic_uchar *seen;         /* n flags: timer i was delivered once     */
  atomic_uint_fast64_t fired; /* deliveries of our timers                */
  atomic_uint_fast64_t distinct;
  atomic_uint_fast64_t foreign; /* timers of another run, acked          */
  atomic_uint_fast64_t first_ns, last_ns; /* monotonic, of deliveries    */
} demo_run;

static void fail(const char *what, int rc) { cli_fail("demo", what, rc); }

/* -------------------------------------------------------------- options */

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: timers demo [options]\n"
      "\n"
      "Schedules N timers on topic \"" DEMO_TOPIC
      "\", due evenly over S seconds\n"
      "that start L seconds from now, fires them with a no-op handler, and\n"
      "reports rates and lateness. Exits 0 only if every timer fired\n"
      "exactly once.\n"
      "\n"
      "options:\n"
      "  --redis ADDR     use this Redis (host:port, /path.sock, unix:/path)\n"
      "                   instead of starting a private redis-server\n"
      "  --config FILE    settings file: the base for the engine (and its\n"
      "                   [redis] address is used instead of a private\n"
      "                   server); the flags below override it\n"
      "  --timers N       timers to schedule (default 200000)\n"
      "  --spread S       seconds over which they come due (default 3)\n"
      "  --lead L         the first is due L from now (default 2s): time\n"
      "                   to schedule them all before they come due; 0:\n"
      "                   scheduling and firing overlap, and timers\n"
      "                   written late count as late\n"
      "  --shards N       shards of the topic (default 8, or the config's)\n"
      "  --pollers N      poller threads (default: the engine's, 1)\n"
      "  --workers N      handler threads (default: the engine's, 2)\n"
      "  --batch N        timers per claim call (default: the engine's, 256)\n"
      "  -h, --help       this help\n");
}

static const cli_flag demo_flags[] = {
    {"--redis", true, "an address: host:port, /path.sock or unix:/path"},
    {"--config", true, "the path of an INI file (see timers config sample)"},
    {"--timers", true, "an integer from 1 to 50000000"},
    {"--spread", true, "seconds from 0 to 86400, e.g. 3, 500ms, 2m"},
    {"--lead", true, "seconds from 0 to 3600, e.g. 2, 500ms, 0"},
    {"--shards", true, "an integer from 1 to 4096"},
    {"--pollers", true, "an integer from 1 to 1024"},
    {"--workers", true, "an integer from 1 to 1024"},
    {"--batch", true, "an integer from 1 to 1000000"},
};

/* Applies one "--name value" option; false if the value is invalid. */
static bool apply_option(void *opts, const char *name, const char *v) {
  demo_opts *o = opts;
  if (strcmp(name, "--redis") == 0) {
    o->redis = v;
    return *v != '\0';
  }
  if (strcmp(name, "--config") == 0) return o->config = v, *v != '\0';
  if (strcmp(name, "--timers") == 0)
    return cli_parse_long(v, 1, DEMO_TIMERS_MAX, &o->timers);
  if (strcmp(name, "--spread") == 0)
    return cli_parse_duration(v, 86400, &o->spread);
  if (strcmp(name, "--lead") == 0)
    return cli_parse_duration(v, 3600, &o->lead);
  if (strcmp(name, "--shards") == 0)
    return cli_parse_int(v, 1, TIMERS_SHARDS_MAX, &o->shards);
  if (strcmp(name, "--pollers") == 0)
    return cli_parse_int(v, 1, 1024, &o->pollers);
  if (strcmp(name, "--workers") == 0)
    return cli_parse_int(v, 1, 1024, &o->workers);
  return cli_parse_int(v, 1, 1000000, &o->batch); /* --batch */
}

/* Returns 0, 1 when --help was printed, or 2 on bad usage. */
static int parse_options(int argc, char **argv, demo_opts *o) {
  *o = (demo_opts){.timers = 200000, .spread = 3.0, .lead = 2.0};
  return cli_parse_flags("demo", argc, argv, demo_flags,
                         sizeof demo_flags / sizeof demo_flags[0],
                         apply_option, o, usage);
}

/* -------------------------------------------------------------- handler */

static timers_outcome on_fire(const timers_message *m, void *userdata) {
  demo_run *r = userdata;
  uint64_t now = cli_mono_ns(), zero = 0;
  long i = cli_id_index(r->tag, r->tag_len, r->n, m->id);
  if (i < 0) {
    atomic_fetch_add_explicit(&r->foreign, 1, memory_order_relaxed);
    return TIMERS_ACK;
  }
  atomic_compare_exchange_strong_explicit(
      &r->first_ns, &zero, now, memory_order_relaxed, memory_order_relaxed);
  atomic_store_explicit(&r->last_ns, now, memory_order_relaxed);
  atomic_fetch_add_explicit(&r->fired, 1, memory_order_relaxed);
  if (!atomic_exchange_explicit(&r->seen[i], 1, memory_order_relaxed))
    atomic_fetch_add_explicit(&r->distinct, 1, memory_order_relaxed);
  return TIMERS_ACK;
}

static uint64_t load(atomic_uint_fast64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* ---------------------------------------------------------- status line */

/* The live status line, printed from the main thread while it schedules and
 * while it waits: 4 times a second with '\r' on a terminal, else one line a
 * second. fires/s is over the interval since the previous line. */
typedef struct demo_status {
  cli_status line;
  timers_engine *e;
  demo_run *r;
  uint64_t fired; /* at the previous line */
  double at;      /* monotonic seconds    */
} demo_status;

static void status_init(demo_status *st, timers_engine *e, demo_run *r) {
  *st = (demo_status){.e = e, .r = r, .fired = load(&r->fired),
                      .at = cli_mono_s()};
  cli_status_init(&st->line, stdout, true, 0.25, 1.0);
}

static double lateness_ms(timers_engine *e, double q) {
  timers_stats *s = NULL;
  if (timers_stats_get(e, &s) != TIMERS_OK) return NAN;
  double v = timers_stats_lateness_ms(s, q);
  timers_stats_free(s);
  return v;
}

static void status_print(demo_status *st, uint32_t scheduled) {
  uint64_t fired = load(&st->r->fired);
  double now = cli_mono_s(), dt = now - st->at;
  double rate = dt > 0 ? (double)(fired - st->fired) / dt : 0;
  uint64_t pending = fired < scheduled ? scheduled - fired : 0;
  cli_status_printf(&st->line,
                    "fired %llu  pending %llu  fires/s %.0f  lateness p99 "
                    "%.2f ms",
                    (unsigned long long)fired, (unsigned long long)pending,
                    rate, lateness_ms(st->e, 0.99));
  st->fired = fired;
  st->at = now;
}

/* Prints the status line when it is due. */
static void status_tick(demo_status *st, uint32_t scheduled) {
  if (cli_status_due(&st->line)) status_print(st, scheduled);
}

/* Ends the status line so that ordinary lines can follow. */
static void status_end(demo_status *st, uint32_t scheduled) {
  if (st->line.tty || load(&st->r->fired) != st->fired)
    status_print(st, scheduled);
  cli_status_end(&st->line);
}

/* ----------------------------------------------------------- scheduling */

/* Schedules timers [base, base + k), due evenly over [t0, t0 + spread]. */
static int schedule_chunk(timers_engine *e, const demo_run *r, uint32_t base,
                          uint32_t k, double t0, double spread) {
  static timers_timer ts[DEMO_CHUNK]; /* main thread only */
  static char ids[DEMO_CHUNK][DEMO_ID_CAP];
  for (uint32_t j = 0; j < k; j++) {
    uint32_t i = base + j;
    snprintf(ids[j], sizeof ids[j], "%s-%u", r->tag, i);
    ts[j] = (timers_timer){.topic = DEMO_TOPIC,
                           .id = ids[j],
                           .has_activate_at = true,
                           .activate_at = t0 + spread * (i + 1) / r->n};
  }
  return timers_schedule_batch(e, ts, k, NULL);
}

/* Schedules all n timers, due over [t0, t0 + spread], showing the status
 * line meanwhile; *scheduled counts those written. */
static int schedule_all(demo_status *st, double t0, double spread,
                        uint32_t *scheduled) {
  const demo_run *r = st->r;
  *scheduled = 0;
  while (*scheduled < r->n && !cli_interrupted(0)) {
    uint32_t k =
        r->n - *scheduled < DEMO_CHUNK ? r->n - *scheduled : DEMO_CHUNK;
    int rc = schedule_chunk(st->e, r, *scheduled, k, t0, spread);
    if (rc != TIMERS_OK) return rc;
    *scheduled += k;
    status_tick(st, *scheduled);
  }
  return TIMERS_OK;
}

/* Shows the status until every timer fired once, the deadline, or a
 * signal; checks for the end every 50 ms. */
static void watch(demo_status *st, uint32_t scheduled, double deadline) {
  while (load(&st->r->distinct) < scheduled && cli_mono_s() < deadline &&
         !cli_interrupted(0.05))
    status_tick(st, scheduled);
  status_end(st, scheduled);
}

/* -------------------------------------------------------------- summary */

static void print_counters(const timers_counters *c) {
  printf(
      "engine:        claimed %llu, claim calls %llu, contested %llu, "
      "ring full %llu,\n               redis errors %llu, stale commits "
      "%llu, nacked %llu, rejected %llu\n",
      (unsigned long long)c->claimed, (unsigned long long)c->claim_calls,
      (unsigned long long)c->contested, (unsigned long long)c->ring_full,
      (unsigned long long)c->redis_errors, (unsigned long long)c->stale_commits,
      (unsigned long long)c->nacked, (unsigned long long)c->rejected);
}

static void print_lateness(timers_engine *e) {
  timers_stats *s = NULL;
  int rc = timers_stats_get(e, &s);
  if (rc != TIMERS_OK) {
    fail("timers_stats_get", rc);
    return;
  }
  printf(
      "lateness:      p50 %.2f ms, p99 %.2f ms, max %.2f ms "
      "(bucket upper bounds)\n",
      timers_stats_lateness_ms(s, 0.5), timers_stats_lateness_ms(s, 0.99),
      timers_stats_lateness_ms(s, 1.0));
  print_counters(&s->total);
  timers_stats_free(s);
}

/* Prints the summary; returns the exit status (0: each fired exactly once). */
static int summarize(timers_engine *e, demo_run *r, uint32_t scheduled,
                     double sched_s) {
  uint64_t fired = load(&r->fired), distinct = load(&r->distinct);
  uint64_t missing = distinct < scheduled ? scheduled - distinct : 0;
  uint64_t dups = fired - distinct;
  double window = (double)(load(&r->last_ns) - load(&r->first_ns)) / 1e9;
  printf("\nscheduled:     %u timers in %.3f s (%.0f /s)\n", scheduled, sched_s,
         sched_s > 0 ? scheduled / sched_s : 0);
  printf("fired:         %llu (distinct %llu, missing %llu, duplicates %llu)\n",
         (unsigned long long)fired, (unsigned long long)distinct,
         (unsigned long long)missing, (unsigned long long)dups);
  if (window > 0)
    printf("firing window: %.3f s, %.0f fires/s\n", window, fired / window);
  print_lateness(e);
  if (load(&r->foreign))
    printf(
        "foreign:       %llu timers of another run on topic \"%s\" (acked)\n",
        (unsigned long long)load(&r->foreign), DEMO_TOPIC);
  bool ok = fired == scheduled && distinct == scheduled && scheduled == r->n;
  printf("result:        %s\n", ok ? "OK, every timer fired exactly once"
                                : cli_signal() ? "INTERRUPTED"
                                           : "FAILED");
  fflush(stdout);
  return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ run */

static int make_engine(const demo_opts *o, const char *addr, demo_run *r,
                       timers_engine **out) {
  timers_config cfg;
  if (o->base) cfg = *o->base;
  else timers_config_init(&cfg), cfg.log_level = TIMERS_LOG_WARN;
  cfg.redis = addr;
  if (o->shards) cfg.shards = o->shards;
  if (o->pollers) cfg.pollers = o->pollers;
  if (o->workers) cfg.workers = o->workers;
  if (o->batch) cfg.claim_batch = o->batch;
  cfg.log = cli_log_to_stderr;
  int rc = timers_engine_create(&cfg, out);
  if (rc != TIMERS_OK) return fail("timers_engine_create", rc), 1;
  rc = timers_subscribe(*out, DEMO_TOPIC, on_fire, r, NULL);
  if (rc != TIMERS_OK) return fail("timers_subscribe", rc), 1;
  rc = timers_engine_start(*out);
  if (rc != TIMERS_OK) return fail("timers_engine_start", rc), 1;
  return 0;
}

static int run_engine(const demo_opts *o, const char *addr, demo_run *r) {
  timers_engine *e = NULL;
  int status = make_engine(o, addr, r, &e);
  if (status == 0) {
    printf("scheduling %u timers due over %.3g s, starting in %.3g s, on "
           "%s ...\n", r->n, o->spread, o->lead, addr);
    fflush(stdout);
    uint32_t scheduled = 0;
    demo_status st;
    status_init(&st, e, r);
    double t0 = st.at;
    int rc = schedule_all(&st, timers_now() + o->lead, o->spread, &scheduled);
    double sched_s = cli_mono_s() - t0;
    status_end(&st, scheduled);
    if (rc != TIMERS_OK) fail("timers_schedule_batch", rc);
    printf("scheduled %u timers in %.3f s (%.0f /s)\n", scheduled, sched_s,
           sched_s > 0 ? scheduled / sched_s : 0);
    if (sched_s > o->lead)
      printf("note:          scheduling took longer than --lead (%.3g s): "
             "timers written\n               after their due time count "
             "as late\n", o->lead);
    double now = cli_mono_s();
    double end = t0 + o->lead + o->spread;
    double due = end > now ? end : now;
    watch(&st, scheduled, due + DEMO_GRACE_S);
    status = summarize(e, r, scheduled, sched_s);
    if (rc != TIMERS_OK) status = 1;
    rc = timers_engine_stop(e);
    if (rc != TIMERS_OK) fail("timers_engine_stop", rc), status = 1;
  }
  timers_engine_destroy(e);
  if (cli_signal()) {
    fprintf(stderr, "timers demo: interrupted by %s\n",
            strsignal(cli_signal()));
    status = 128 + cli_signal();
  }
  return status;
}

/* r is zeroed (calloc). */
static void run_init(demo_run *r, uint32_t n) {
  r->n = n;
  cli_run_tag(r->tag, sizeof r->tag);
  r->tag_len = strlen(r->tag);
}

/* Runs the demo with o's options on their Redis. */
static int run_demo(const demo_opts *o) {
  demo_run *r = calloc(1, sizeof *r);
  atomic_uchar *seen = calloc((size_t)o->timers, sizeof *seen);
  if (!r || !seen) {
    fprintf(stderr, "timers demo: out of memory\n");
    return free(r), free(seen), 1;
  }
  run_init(r, (uint32_t)o->timers);
  r->seen = seen;
  redis_server rs;
  const char *addr = NULL;
  if (cli_redis_open("demo", o->redis, &rs, &addr) != 0)
    return free(r), free(seen), 1;
  int status = cli_signal() ? 128 + cli_signal() : run_engine(o, addr, r);
  cli_redis_close(&rs);
  free(seen);
  free(r);
  return status;
}

int cli_demo(int argc, char **argv) {
  demo_opts o;
  int status = parse_options(argc, argv, &o);
  if (status) return status == 1 ? 0 : status;
  timers_settings *s = NULL;
  if (o.config) { /* the base; its address unless --redis */
    cli_global g = {.config = o.config};
    if (cli_settings_open("demo", &g, &s) != 0) return 1;
    o.base = timers_settings_config(s);
    if (!o.redis && o.base->redis && *o.base->redis) o.redis = o.base->redis;
  }
  status = run_demo(&o);
  timers_settings_free(s);
  return status;
}
