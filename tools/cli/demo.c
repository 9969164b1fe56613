/*
 * demo.c - `timers demo`: schedule many timers and watch them fire.
 *
 * Starts a private redis-server (unix socket in a temporary folder) unless
 * --redis is given, runs one engine with a no-op handler on topic "demo",
 * schedules N timers spread evenly over the next SPREAD seconds in pipelined
 * batches, shows a live status line, and ends with a summary. It exits 0
 * only if every timer fired exactly once.
 *
 * Timer ids are "<run tag>-<index>", so the handler can tell each timer's
 * first delivery from a duplicate, and timers left in a shared Redis by
 * another run from ours. Only the public API of timers.h is used.
 *
 * Signals: SIGINT/SIGTERM are blocked once the private Redis runs, so every
 * engine thread inherits a blocked mask; the main thread alone takes them
 * with sigtimedwait() while it waits, then stops the engine and Redis (its
 * folder included) and exits 128 + signal.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "redis_server.h"
#include "timers.h"

#define DEMO_TOPIC "demo"
#define DEMO_CHUNK 1000          /* timers per timers_schedule_batch()     */
#define DEMO_TIMERS_MAX 50000000 /* one byte of bookkeeping per timer      */
#define DEMO_GRACE_S 30.0        /* wait this long after the last due time */
#define DEMO_ID_CAP 32

typedef struct demo_opts {
  const char *redis; /* NULL: start a private redis-server */
  long timers;
  double spread;
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

static volatile sig_atomic_t g_signal;

/* ------------------------------------------------------------ utilities */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double mono_s(void) { return (double)mono_ns() / 1e9; }

static void on_signal(int sig) { g_signal = sig; }

static void signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static void signals_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
}

/* Blocks SIGINT/SIGTERM in this thread and in every thread it creates. */
static void signals_block(void) {
  sigset_t set;
  signals_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Waits up to ms for SIGINT/SIGTERM; true once one has arrived. */
static bool interrupted(int ms) {
  if (g_signal) return true;
  sigset_t set;
  signals_set(&set);
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  int sig = sigtimedwait(&set, NULL, &ts);
  if (sig > 0) g_signal = sig;
  return g_signal != 0;
}

static void log_to_stderr(void *userdata, timers_log_level level,
                          const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  (void)userdata;
  fprintf(stderr, "\ntimers [%s] %s\n", names[level & 3], msg);
}

static void fail(const char *what, int rc) {
  fprintf(stderr, "timers demo: %s: %s (%s)\n", what, timers_strerror(rc),
          timers_last_error());
}

/* -------------------------------------------------------------- options */

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: timers demo [options]\n"
      "\n"
      "Schedules N timers on topic \"" DEMO_TOPIC
      "\", due evenly over the next\n"
      "S seconds, fires them with a no-op handler, and reports rates and\n"
      "lateness. Exits 0 only if every timer fired exactly once.\n"
      "\n"
      "options:\n"
      "  --redis ADDR     use this Redis (host:port, /path.sock, unix:/path)\n"
      "                   instead of starting a private redis-server\n"
      "  --timers N       timers to schedule (default 200000)\n"
      "  --spread S       seconds over which they come due (default 3)\n"
      "  --shards N       shards of the topic (default 8)\n"
      "  --pollers N      poller threads (default: the engine's, 1)\n"
      "  --workers N      handler threads (default: the engine's, 2)\n"
      "  --batch N        timers per claim call (default: the engine's, 256)\n"
      "  -h, --help       this help\n");
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 86400)
    return false;
  *out = v;
  return true;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value. */
static bool option_value(int argc, char **argv, int *i, const char *name,
                         const char **value, bool *missing) {
  const char *a = argv[*i];
  size_t len = strlen(name);
  if (strncmp(a, name, len) != 0) return false;
  if (a[len] == '=') {
    *value = a + len + 1;
    return true;
  }
  if (a[len] != '\0') return false;
  if (*i + 1 >= argc) {
    *missing = true;
    return true;
  }
  *value = argv[++*i];
  return true;
}

static bool set_int(const char *v, long lo, long hi, int *out) {
  long x;
  if (!parse_long(v, lo, hi, &x)) return false;
  *out = (int)x;
  return true;
}

/* Applies one "--name value" option; false if the value is invalid. */
static bool apply_option(demo_opts *o, const char *name, const char *v) {
  if (strcmp(name, "--redis") == 0) {
    o->redis = v;
    return *v != '\0';
  }
  if (strcmp(name, "--timers") == 0)
    return parse_long(v, 1, DEMO_TIMERS_MAX, &o->timers);
  if (strcmp(name, "--spread") == 0) return parse_seconds(v, &o->spread);
  if (strcmp(name, "--shards") == 0)
    return set_int(v, 1, TIMERS_SHARDS_MAX, &o->shards);
  if (strcmp(name, "--pollers") == 0) return set_int(v, 1, 1024, &o->pollers);
  if (strcmp(name, "--workers") == 0) return set_int(v, 1, 1024, &o->workers);
  return set_int(v, 1, 1000000, &o->batch); /* --batch */
}

/* Returns 0, 1 when --help was printed, or 2 on bad usage. */
static int parse_options(int argc, char **argv, demo_opts *o) {
  static const char *const names[] = {"--redis",  "--timers",  "--spread",
                                      "--shards", "--pollers", "--workers",
                                      "--batch"};
  *o = (demo_opts){.timers = 200000, .spread = 3.0, .shards = 8};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 1;
    }
    const char *arg = argv[i], *v = NULL;
    bool known = false, missing = false;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !known; k++) {
      if (!option_value(argc, argv, &i, names[k], &v, &missing)) continue;
      known = true;
      if (missing) {
        fprintf(stderr, "timers demo: %s needs a value\n\n", names[k]);
      } else if (!apply_option(o, names[k], v)) {
        fprintf(stderr, "timers demo: invalid value for %s: '%s'\n\n", names[k],
                v);
        missing = true;
      }
    }
    if (!known) fprintf(stderr, "timers demo: unknown option '%s'\n\n", arg);
    if (!known || missing) {
      usage(stderr);
      return 2;
    }
  }
  return 0;
}

/* -------------------------------------------------------------- handler */

/* Index of one of our timer ids, or -1 for a timer of another run. */
static long index_of(const demo_run *r, const char *id) {
  if (strncmp(id, r->tag, r->tag_len) != 0 || id[r->tag_len] != '-') return -1;
  char *end;
  errno = 0;
  unsigned long i = strtoul(id + r->tag_len + 1, &end, 10);
  if (errno || *end || i >= r->n) return -1;
  return (long)i;
}

static timers_outcome on_fire(const timers_message *m, void *userdata) {
  demo_run *r = userdata;
  uint64_t now = mono_ns(), zero = 0;
  long i = index_of(r, m->id);
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
  timers_engine *e;
  demo_run *r;
  bool tty;
  double every, next; /* monotonic seconds */
  uint64_t fired;     /* at the previous line */
  double at;
} demo_status;

static void status_init(demo_status *st, timers_engine *e, demo_run *r) {
  bool tty = isatty(STDOUT_FILENO);
  double now = mono_s(), every = tty ? 0.25 : 1.0;
  *st = (demo_status){e, r, tty, every, now + every, load(&r->fired), now};
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
  double now = mono_s(), dt = now - st->at;
  double rate = dt > 0 ? (double)(fired - st->fired) / dt : 0;
  uint64_t pending = fired < scheduled ? scheduled - fired : 0;
  printf("%sfired %llu  pending %llu  fires/s %.0f  lateness p99 %.2f ms%s",
         st->tty ? "\r" : "", (unsigned long long)fired,
         (unsigned long long)pending, rate, lateness_ms(st->e, 0.99),
         st->tty ? "\033[K" : "\n");
  fflush(stdout);
  st->fired = fired;
  st->at = now;
  st->next = now + st->every;
}

/* Prints the status line when it is due. */
static void status_tick(demo_status *st, uint32_t scheduled) {
  if (mono_s() >= st->next) status_print(st, scheduled);
}

/* Ends the status line so that ordinary lines can follow. */
static void status_end(demo_status *st, uint32_t scheduled) {
  if (st->tty) {
    status_print(st, scheduled);
    putchar('\n');
  } else if (load(&st->r->fired) != st->fired) {
    status_print(st, scheduled);
  }
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

/* Schedules all n timers, showing the status line meanwhile; *scheduled
 * counts those written. */
static int schedule_all(demo_status *st, double spread, uint32_t *scheduled) {
  const demo_run *r = st->r;
  double t0 = timers_now();
  *scheduled = 0;
  while (*scheduled < r->n && !interrupted(0)) {
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
  while (load(&st->r->distinct) < scheduled && mono_s() < deadline &&
         !interrupted(50))
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
                                : g_signal ? "INTERRUPTED"
                                           : "FAILED");
  fflush(stdout);
  return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ run */

static int make_engine(const demo_opts *o, const char *addr, demo_run *r,
                       timers_engine **out) {
  timers_config cfg;
  timers_config_init(&cfg);
  cfg.redis = addr;
  cfg.shards = o->shards;
  if (o->pollers) cfg.pollers = o->pollers;
  if (o->workers) cfg.workers = o->workers;
  if (o->batch) cfg.claim_batch = o->batch;
  cfg.log = log_to_stderr;
  cfg.log_level = TIMERS_LOG_WARN;
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
    printf("scheduling %u timers over the next %.3g s on %s ...\n", r->n,
           o->spread, addr);
    fflush(stdout);
    uint32_t scheduled = 0;
    demo_status st;
    status_init(&st, e, r);
    double t0 = st.at;
    int rc = schedule_all(&st, o->spread, &scheduled);
    double sched_s = mono_s() - t0;
    status_end(&st, scheduled);
    if (rc != TIMERS_OK) fail("timers_schedule_batch", rc);
    printf("scheduled %u timers in %.3f s (%.0f /s)\n", scheduled, sched_s,
           sched_s > 0 ? scheduled / sched_s : 0);
    double due = t0 + o->spread > mono_s() ? t0 + o->spread : mono_s();
    watch(&st, scheduled, due + DEMO_GRACE_S);
    status = summarize(e, r, scheduled, sched_s);
    if (rc != TIMERS_OK) status = 1;
    rc = timers_engine_stop(e);
    if (rc != TIMERS_OK) fail("timers_engine_stop", rc), status = 1;
  }
  timers_engine_destroy(e);
  if (g_signal) {
    fprintf(stderr, "timers demo: interrupted by %s\n", strsignal(g_signal));
    status = 128 + g_signal;
  }
  return status;
}

/* r is zeroed (calloc). */
static void run_init(demo_run *r, uint32_t n) {
  r->n = n;
  uint64_t mix = mono_ns() ^ ((uint64_t)getpid() << 32);
  mix ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u;
  snprintf(r->tag, sizeof r->tag, "%08x", (unsigned)(mix ^ (mix >> 32)));
  r->tag_len = strlen(r->tag);
}

int cli_demo(int argc, char **argv) {
  demo_opts o;
  int status = parse_options(argc, argv, &o);
  if (status) return status == 1 ? 0 : status;
  demo_run *r = calloc(1, sizeof *r);
  atomic_uchar *seen = calloc((size_t)o.timers, sizeof *seen);
  if (!r || !seen) {
    fprintf(stderr, "timers demo: out of memory\n");
    return free(r), free(seen), 1;
  }
  run_init(r, (uint32_t)o.timers);
  r->seen = seen;
  signals_install();
  redis_server rs = {0};
  if (!o.redis && redis_server_start(&rs, true, false) != 0) {
    fprintf(stderr, "timers demo: cannot start a private redis-server\n");
    return free(r), free(seen), 1;
  }
  signals_block();
  const char *addr = o.redis ? o.redis : rs.addr;
  status = g_signal ? 128 + g_signal : run_engine(&o, addr, r);
  if (!o.redis) redis_server_stop(&rs);
  free(seen);
  free(r);
  return status;
}
