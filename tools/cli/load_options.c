/*
 * load_options.c - the options of `timers load`: flags, and the --config
 * file as their base.
 *
 * Flags beat the file. The file gives the engine settings no flag set, and
 * its [topic load.N] sections give the topics the load test uses their own
 * options (every [topic] key), as they would an application
 * subscribing through timers_settings_topic(); a --shards flag beats a
 * section's shards as it beats [engine] shards.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "load.h"

#define LOAD_TOPICS_MAX 1024
#define LOAD_SCHED_BATCH 1000 /* default timers per schedule call */

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
      "only if every timer fired exactly once and every process ended\n"
      "well, 1 otherwise, 2 on bad options.\n"
      "\n"
      "Durations: a number of seconds or a number with us, ms, s or m\n"
      "(250ms, 1.5s, 2m).\n"
      "\n"
      "options:\n"
      "  --redis ADDR        use this Redis (host:port, /path.sock,\n"
      "                      unix:/path) instead of starting a private one\n"
      "  --config FILE       settings file: the base for the engine (and its\n"
      "                      [redis] address is used instead of a private\n"
      "                      server); its [topic load.N] sections give those\n"
      "                      topics' options, every [topic] key (shards,\n"
      "                      layout, lease_ms, max_inflight, owned, ...);\n"
      "                      the flags below override it\n"
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
      "                      config's: [engine], or a [topic load.N])\n"
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

/* The field of o that the integer option name sets, and its largest value;
 * NULL when name is not an integer option. */
static int *int_option(load_opts *o, const char *name, long *hi) {
  const struct {
    const char *name;
    long hi;
    int *field;
  } ints[] = {
      {"--topics", LOAD_TOPICS_MAX, &o->topics},
      {"--shards", TIMERS_SHARDS_MAX, &o->shards},
      {"--pollers", 1024, &o->pollers},
      {"--workers", 1024, &o->workers},
      {"--batch", 1000000, &o->batch},
      {"--schedule-batch", 100000, &o->sched_batch},
      {"--processes", LOAD_PROCESSES_MAX, &o->processes},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (strcmp(name, ints[i].name) == 0) return *hi = ints[i].hi, ints[i].field;
  return NULL;
}

static bool apply_option(void *opts, const char *name, const char *v) {
  load_opts *o = opts;
  long hi;
  int *field = int_option(o, name, &hi);
  if (field) return cli_parse_int(v, 1, hi, field);
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

int load_options_parse(int argc, char **argv, load_opts *o) {
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

int load_options_config(load_opts *o, timers_settings **s) {
  *s = NULL;
  o->shards_set = o->shards != 0; /* only a flag has set it so far */
  if (o->config) {
    cli_global g = {.config = o->config};
    if (cli_settings_open("load", &g, s) != 0) return 1;
    o->settings = *s;
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

void load_topic_name(char *buf, size_t cap, int t) {
  snprintf(buf, cap, "load.%d", t);
}

bool load_topic_options(const load_opts *o, const char *topic,
                        timers_subscribe_options *opts) {
  *opts = (timers_subscribe_options){0};
  if (!o->settings || !timers_settings_topic(o->settings, topic, opts)) {
    *opts = (timers_subscribe_options){0};
    return false;
  }
  /* FASTSTREAM topics have one shard whatever the flags say. */
  if (o->shards_set && opts->layout == TIMERS_LAYOUT_NATIVE)
    opts->shards = o->shards;
  return true;
}

uint64_t load_timer_count(const load_opts *o) {
  return o->burst ? (uint64_t)o->burst
                  : (uint64_t)llround(o->rate * o->duration);
}
