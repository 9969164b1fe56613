/*
 * cmd_config.c - `timers config check FILE | show | sample`: the settings
 * file (timers_settings_load) seen from the command line.
 *
 * The key list below mirrors the one documented in timers.h (the library
 * exposes values, not a list of keys); `config sample` writes the defaults
 * of timers_config_init, so it cannot drift from the library's values, and
 * a settings file written by it loads as is.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

typedef struct config_opts {
  cli_global g;
} config_opts;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers config check FILE [--json]\n"
          "       timers config show [options]\n"
          "       timers config sample\n"
          "\n"
          "check   loads FILE (plus TIMERS_<SECTION>_<KEY> environment\n"
          "        overrides), validates it as an engine would, and prints\n"
          "        the effective settings; on an error prints where\n"
          "        (FILE:LINE, key, value, allowed values) and exits 1.\n"
          "show    prints the effective settings from --config (or\n"
          "        $TIMERS_CONFIG), the environment and the flags.\n"
          "sample  prints a commented settings file with every key at its\n"
          "        default.\n"
          "Exits 0, 1 on an invalid file, 2 on bad usage.\n"
          "\n"
          "options (show; check takes --json):\n" CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag config_flags[] = {CLI_GLOBAL_FLAGS};

static bool apply_option(void *opts, const char *name, const char *v) {
  bool ok;
  config_opts *o = opts;
  return cli_global_apply(&o->g, name, v, &ok) && ok;
}

/* ------------------------------------------------------------- printing */

/* The library lists every effective setting (file, environment, flags). */
static const char *shown(const timers_setting *t) {
  return t->secret && t->value[0] ? "***" : t->value;
}

static void print_ini(const timers_settings *s) {
  timers_setting t;
  const char *section = NULL;
  for (size_t i = 0; timers_settings_entry(s, i, &t) == TIMERS_OK; i++) {
    if (!section || strcmp(section, t.section) != 0) {
      printf("%s[%s]\n", section ? "\n" : "", t.section);
      section = t.section;
    }
    printf("%s = %s\n", t.key, shown(&t));
  }
}

static void print_json(const timers_settings *s) {
  timers_setting t;
  const char *section = NULL;
  printf("{");
  for (size_t i = 0; timers_settings_entry(s, i, &t) == TIMERS_OK; i++) {
    bool open = !section || strcmp(section, t.section) != 0;
    if (open) {
      printf("%s", section ? "}," : "");
      cli_json_cstr(stdout, t.section);
      printf(":{");
    }
    section = t.section;
    printf("%s\"%s\":", open ? "" : ",", t.key);
    if (t.is_number)
      printf("%s", t.value);
    else
      cli_json_cstr(stdout, shown(&t));
  }
  printf("%s}\n", section ? "}" : "");
}

/* --------------------------------------------------------------- sample */

static void sample_redis(const timers_config *d) {
  printf(
      "; timers.ini - every setting of libtimers, with its default.\n"
      ";\n"
      "; Read by timers_settings_load() in an application and by `timers\n"
      "; --config FILE` (or $TIMERS_CONFIG). Environment variables\n"
      "; TIMERS_<SECTION>_<KEY> (for example TIMERS_REDIS_ADDRESS or\n"
      "; TIMERS_ENGINE_SHARDS) override this file, and command-line flags\n"
      "; override both. Check a file with `timers config check FILE`.\n"
      "\n[redis]\n"
      "; \"host:port\", \"host\" (port 6379), \"/path/to.sock\" or "
      "\"unix:/path\".\n"
      "address = %s\n"
      "; ACL user and password; empty: none.\n"
      "username =\npassword =\n"
      "db = %d\n"
      "connect_timeout_ms = %d\n"
      "command_timeout_ms = %d\n"
      "; schedule/cancel keep retrying an unreachable Redis this long, then "
      "fail.\n"
      "retry_ms = %d\n"
      "; first part of every key: <key_prefix>:{<topic>:<shard>}:z\n"
      "key_prefix = %s\n",
      d->redis, d->db, d->connect_timeout_ms, d->command_timeout_ms,
      d->retry_ms, d->key_prefix);
}

/* [engine] up to the leases. */
static void sample_engine_threads(const timers_config *d) {
  printf(
      "\n[engine]\n"
      "; shards of a topic seen for the first time; recorded in Redis per "
      "topic.\n"
      "shards = %d\n"
      "; poller threads (each owns a share of the shards and one "
      "connection).\n"
      "pollers = %d\n"
      "; handler threads.\n"
      "workers = %d\n"
      "; jobs in flight per poller, a power of two (holds ring_capacity - "
      "1).\n"
      "ring_capacity = %d\n"
      "; timers per claim round trip, 1..2048.\n"
      "claim_batch = %d\n"
      "; how long a claimed timer is held; while its handler runs the engine\n"
      "; extends the lease (every lease_ms / 3), up to max_handler_ms, then\n"
      "; lets it run out and the timer is delivered again.\n"
      "lease_ms = %d\n"
      "max_handler_ms = %d\n"
      "; a schedule identical to a timer acked or rejected this recently is\n"
      "; skipped (native layout), so a retried call cannot resurrect it; "
      "0: off.\n"
      "dedup_window_ms = %d\n",
      d->shards, d->pollers, d->workers, d->ring_capacity, d->claim_batch,
      d->lease_ms, d->max_handler_ms, d->dedup_window_ms);
}

/* [engine] from the failures on. */
static void sample_engine_failures(const timers_config *d) {
  printf(
      "; Failures (native layout). A NACK is redelivered after a backoff\n"
      "; from retry_min_ms, doubling per attempt up to retry_max_ms, with\n"
      "; jitter. A timer whose attempt max_attempts is nacked, or that is\n"
      "; claimed again after max_attempts deliveries that never ended, moves\n"
      "; to its topic's dead-letter set (`timers dead list`); 0: unlimited.\n"
      "max_attempts = %d\n"
      "retry_min_ms = %d\n"
      "retry_max_ms = %d\n"
      "; dead letters kept per shard (the oldest dropped beyond), and for "
      "how long.\n"
      "dead_max = %d\n"
      "dead_ttl_ms = %d\n"
      "; topics with owned = 1: a shard's ownership lease, renewed every\n"
      "; third; a dead owner's shards are taken over within about 1.5 x\n"
      "; it (its lease and member entry run out, then survivors look).\n"
      "owner_ttl_ms = %d\n"
      "; longest idle sleep of a poller (wake-ups come earlier when timers "
      "do).\n"
      "max_sleep_ms = %d\n"
      "; stop(): how long running and queued handlers may take.\n"
      "drain_timeout_ms = %d\n"
      "; error, warn, info or debug.\n"
      "log_level = %s\n",
      d->max_attempts, d->retry_min_ms, d->retry_max_ms, d->dead_max,
      d->dead_ttl_ms, d->owner_ttl_ms, d->max_sleep_ms, d->drain_timeout_ms,
      level_names[d->log_level & 3]);
}

static void sample_topics(const timers_config *d) {
  printf(
      "\n; Key base names of topics in the faststream-redis-timers layout,\n"
      "; as configured in the Python library: <timeline_key>:<topic>.\n"
      "[faststream]\n"
      "timeline_key = %s\n"
      "payloads_key = %s\n"
      "\n; Per-topic options (also set through timers_subscribe_options);\n"
      "; absent or 0: the [engine] value. max_attempts -1: unlimited;\n"
      "; dead_letter_rejects = 1: a REJECT moves the timer to the\n"
      "; dead-letter set instead of dropping it. at_most_once = 1: a claim\n"
      "; removes the timer (no lease): never delivered twice, lost if its\n"
      "; process dies first; NACK and RELEASE cannot redeliver. owned = 1:\n"
      "; each shard is claimed by one process at a time, balanced over the\n"
      "; live processes (owner_ttl_ms); 0: every process claims. layout\n"
      "; native (this engine's shards) or faststream (one shard, shared\n"
      "; with Python services; no attempts are counted there, and no dead\n"
      "; letters).\n"
      "; [topic orders]\n"
      "; shards = 16\n"
      "; lease_ms = 60000\n"
      "; max_inflight = 100\n"
      "; max_handler_ms = 600000\n"
      "; max_attempts = 5\n"
      "; retry_min_ms = 500\n"
      "; retry_max_ms = 60000\n"
      "; dead_letter_rejects = 1\n"
      "; at_most_once = 0\n"
      "; owned = 1\n"
      "; layout = native\n",
      d->faststream_timeline_key, d->faststream_payloads_key);
}

static void print_sample(void) {
  timers_config d;
  timers_config_init(&d);
  sample_redis(&d);
  sample_engine_threads(&d);
  sample_engine_failures(&d);
  sample_topics(&d);
}

/* ------------------------------------------------------------ commands */

/* Declares every [topic NAME] section on e, as a command naming the topic
 * would: a name its layout refuses (a ':' in a native topic) is an error
 * of the file. */
static int check_topics(const timers_settings *s, timers_engine *e,
                        const char *path) {
  for (size_t i = 0; i < timers_settings_topic_count(s); i++) {
    const char *name = timers_settings_topic_name(s, i);
    timers_subscribe_options opts;
    timers_settings_topic(s, name, &opts);
    if (timers_declare(e, name, &opts) == TIMERS_OK) continue;
    fprintf(stderr, "timers config: %s: [topic %s]: %s\n", path, name,
            timers_last_error());
    return 1;
  }
  return 0;
}

/* Loads path as the engine would see it: the file, the environment, then
 * an engine made from it (which checks what one key cannot). */
static int check(const char *path, bool json) {
  timers_settings *s = NULL;
  int rc = timers_settings_load(path, &s), status = 1;
  timers_engine *e = NULL;
  if (rc == TIMERS_OK) rc = timers_engine_create(timers_settings_config(s), &e);
  if (rc != TIMERS_OK)
    fprintf(stderr, "timers config: %s\n", timers_last_error());
  else if ((status = check_topics(s, e, path)) == 0 && json)
    print_json(s);
  else if (status == 0)
    print_ini(s);
  timers_engine_destroy(e);
  timers_settings_free(s);
  return status;
}

static int show(const config_opts *o) {
  timers_settings *s;
  if (cli_settings_open("config", &o->g, &s) != 0) return 1;
  if (o->g.json) print_json(s);
  else print_ini(s);
  timers_settings_free(s);
  return 0;
}

int cli_config(int argc, char **argv) {
  config_opts o = {0};
  const char *pos[2];
  int npos, status = cli_parse_args(
      "config", argc, argv, config_flags,
      sizeof config_flags / sizeof *config_flags, apply_option, &o, usage,
      pos, 2, &npos);
  if (status) return status == 1 ? 0 : status;
  const char *what = npos ? pos[0] : "";
  if (strcmp(what, "check") == 0 && npos == 2) return check(pos[1], o.g.json);
  if (strcmp(what, "show") == 0 && npos == 1) return show(&o);
  if (strcmp(what, "sample") == 0 && npos == 1) return print_sample(), 0;
  if (strcmp(what, "check") == 0 && npos == 1)
    fprintf(stderr, "timers config: check needs a FILE\n\n");
  else
    fprintf(stderr, "timers config: expected check FILE, show or sample\n\n");
  usage(stderr);
  return 2;
}
