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

typedef enum field_kind { FIELD_STR, FIELD_INT, FIELD_LEVEL } field_kind;

typedef struct field {
  const char *section, *key;
  field_kind kind;
  size_t offset; /* in timers_config */
  bool secret;   /* shown as *** when set */
} field;

#define STR_(sec, key, f) {sec, key, FIELD_STR, offsetof(timers_config, f), 0}
#define INT_(sec, f) {sec, #f, FIELD_INT, offsetof(timers_config, f), 0}
static const field fields[] = {
    STR_("redis", "address", redis),
    STR_("redis", "username", username),
    {"redis", "password", FIELD_STR, offsetof(timers_config, password), true},
    INT_("redis", db),
    INT_("redis", connect_timeout_ms),
    INT_("redis", command_timeout_ms),
    INT_("redis", retry_ms),
    STR_("redis", "key_prefix", key_prefix),
    INT_("engine", shards),
    INT_("engine", pollers),
    INT_("engine", workers),
    INT_("engine", ring_capacity),
    INT_("engine", claim_batch),
    INT_("engine", lease_ms),
    INT_("engine", max_sleep_ms),
    INT_("engine", drain_timeout_ms),
    {"engine", "log_level", FIELD_LEVEL, offsetof(timers_config, log_level), 0},
    STR_("faststream", "timeline_key", faststream_timeline_key),
    STR_("faststream", "payloads_key", faststream_payloads_key),
};
#undef STR_
#undef INT_
#define FIELD_COUNT (sizeof fields / sizeof fields[0])

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

static const char *str_field(const timers_config *c, const field *f) {
  const char *v;
  memcpy(&v, (const char *)c + f->offset, sizeof v);
  if (v && *v && f->secret) return "***";
  return v ? v : "";
}

static int int_field(const timers_config *c, const field *f) {
  int v;
  memcpy(&v, (const char *)c + f->offset, sizeof v);
  return v;
}

static const char *layout_name(timers_layout l) {
  return l == TIMERS_LAYOUT_FASTSTREAM ? "faststream" : "native";
}

static void print_ini(const timers_settings *s) {
  const timers_config *c = timers_settings_config(s);
  const char *section = "";
  for (size_t i = 0; i < FIELD_COUNT; i++) {
    const field *f = &fields[i];
    if (strcmp(section, f->section) != 0)
      printf("%s[%s]\n", i ? "\n" : "", section = f->section);
    if (f->kind == FIELD_STR) printf("%s = %s\n", f->key, str_field(c, f));
    else if (f->kind == FIELD_INT) printf("%s = %d\n", f->key, int_field(c, f));
    else printf("%s = %s\n", f->key, level_names[int_field(c, f) & 3]);
  }
  for (size_t i = 0; i < timers_settings_topic_count(s); i++) {
    const char *name = timers_settings_topic_name(s, i);
    timers_subscribe_options t;
    timers_settings_topic(s, name, &t);
    printf("\n[topic %s]\n", name);
    if (t.shards) printf("shards = %d\n", t.shards);
    if (t.lease_ms) printf("lease_ms = %d\n", t.lease_ms);
    if (t.max_inflight) printf("max_inflight = %d\n", t.max_inflight);
    printf("layout = %s\n", layout_name(t.layout));
  }
}

static void print_json(const timers_settings *s) {
  const timers_config *c = timers_settings_config(s);
  const char *section = NULL;
  printf("{");
  for (size_t i = 0; i < FIELD_COUNT; i++) {
    const field *f = &fields[i];
    bool open = !section || strcmp(section, f->section) != 0;
    if (open) printf("%s\"%s\":{", section ? "}," : "", f->section);
    section = f->section;
    printf("%s\"%s\":", open ? "" : ",", f->key);
    if (f->kind == FIELD_STR) cli_json_cstr(stdout, str_field(c, f));
    else if (f->kind == FIELD_INT) printf("%d", int_field(c, f));
    else printf("\"%s\"", level_names[int_field(c, f) & 3]);
  }
  printf("},\"topics\":{");
  for (size_t i = 0; i < timers_settings_topic_count(s); i++) {
    const char *name = timers_settings_topic_name(s, i);
    timers_subscribe_options t;
    timers_settings_topic(s, name, &t);
    printf("%s", i ? "," : "");
    cli_json_cstr(stdout, name);
    printf(":{\"shards\":%d,\"lease_ms\":%d,\"max_inflight\":%d,"
           "\"layout\":\"%s\"}",
           t.shards, t.lease_ms, t.max_inflight, layout_name(t.layout));
  }
  printf("}}\n");
}

/* --------------------------------------------------------------- sample */

static void print_sample(void) {
  timers_config d;
  timers_config_init(&d);
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
      d.redis, d.db, d.connect_timeout_ms, d.command_timeout_ms, d.retry_ms,
      d.key_prefix);
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
      "; how long a handler holds a timer before another process may take "
      "it.\n"
      "lease_ms = %d\n"
      "; longest idle sleep of a poller (wake-ups come earlier when timers "
      "do).\n"
      "max_sleep_ms = %d\n"
      "; stop(): how long running and queued handlers may take.\n"
      "drain_timeout_ms = %d\n"
      "; error, warn, info or debug.\n"
      "log_level = %s\n",
      d.shards, d.pollers, d.workers, d.ring_capacity, d.claim_batch,
      d.lease_ms, d.max_sleep_ms, d.drain_timeout_ms,
      level_names[d.log_level & 3]);
  printf(
      "\n; Key base names of topics in the faststream-redis-timers layout,\n"
      "; as configured in the Python library: <timeline_key>:{<topic>}.\n"
      "[faststream]\n"
      "timeline_key = %s\n"
      "payloads_key = %s\n"
      "\n; Per-topic options (also set through timers_subscribe_options);\n"
      "; layout native (this engine's shards) or faststream (one shard,\n"
      "; shared with Python services).\n"
      "; [topic orders]\n"
      "; shards = 16\n"
      "; lease_ms = 60000\n"
      "; max_inflight = 100\n"
      "; layout = native\n",
      d.faststream_timeline_key, d.faststream_payloads_key);
}

/* ------------------------------------------------------------ commands */

/* Loads path as the engine would see it: the file, the environment, then
 * an engine made from it (which checks what one key cannot). */
static int check(const char *path, bool json) {
  timers_settings *s = NULL;
  int rc = timers_settings_load(path, &s);
  timers_engine *e = NULL;
  if (rc == TIMERS_OK) rc = timers_engine_create(timers_settings_config(s), &e);
  timers_engine_destroy(e);
  if (rc != TIMERS_OK) {
    fprintf(stderr, "timers config: %s\n", timers_last_error());
    timers_settings_free(s);
    return 1;
  }
  if (json) print_json(s);
  else print_ini(s);
  timers_settings_free(s);
  return 0;
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
