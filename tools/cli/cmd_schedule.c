/*
 * cmd_schedule.c - `timers schedule TOPIC [PAYLOAD]`: schedule one timer.
 *
 * The payload is the argument, or stdin when it is "-" or absent (absent
 * on a terminal: empty). The time is --in D or --at TIME (ISO-8601 with a
 * zone, or a Unix timestamp); neither means now. Prints the id. A payload
 * or header the library rejects is bad usage (exit 2), like a bad flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

typedef struct sched_opts {
  cli_global g;
  const char *id;
  bool has_in, has_at;
  double in, at;
  const char *header_args[TIMERS_HEADERS_MAX];
  size_t header_count;
} sched_opts;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers schedule TOPIC [PAYLOAD] [options]\n"
          "\n"
          "Schedules one timer on TOPIC and prints its id. The payload is\n"
          "PAYLOAD, or stdin when PAYLOAD is \"-\" or absent (absent with a\n"
          "terminal on stdin: empty). Scheduling an existing id replaces it.\n"
          "Exits 0, 1 on failure (Redis unreachable), 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --in D             due after D: 30s, 5m, 2h, 1d, 250ms\n"
          "  --at TIME          due at TIME: ISO-8601 with a zone\n"
          "                     (2026-12-01T10:00:00Z, ...T10:00:00.5+02:00)\n"
          "                     or a Unix timestamp (1780000000.25)\n"
          "                     (neither --in nor --at: due now)\n"
          "  --id ID            the timer's id (default: 32 random hex digits)\n"
          "  --header K=V       a header; repeat for more (up to 64)\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n"
          "\n"
          "--json prints {\"id\":...,\"topic\":...,\"activate_at\":...}.\n");
}

static const cli_flag sched_flags[] = {
    {"--in", true, "a duration, e.g. 30s, 5m, 2h, 1d, 250ms"},
    {"--at", true,
     "ISO-8601 with a zone (2026-12-01T10:00:00Z, 2026-12-01T10:00:00.5+02:00)"
     ", a Unix timestamp, now, or +DURATION"},
    {"--id", true, "1 to 200 printable ASCII characters, no space"},
    {"--header", true, "KEY=VALUE with a non-empty KEY (at most 64 headers)"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  sched_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (strcmp(name, "--in") == 0)
    return o->has_in = true, cli_parse_duration(v, 100 * 365 * 86400.0, &o->in);
  if (strcmp(name, "--at") == 0)
    return o->has_at = true, cli_parse_time(v, timers_now(), &o->at);
  if (strcmp(name, "--id") == 0) {
    o->id = v;
    size_t n = strlen(v);
    bool valid = n > 0 && n <= TIMERS_ID_MAX;
    for (size_t i = 0; valid && i < n; i++) valid = v[i] > ' ' && v[i] < 127;
    return valid;
  }
  /* --header */
  const char *eq = strchr(v, '=');
  if (!eq || eq == v || o->header_count == TIMERS_HEADERS_MAX) return false;
  o->header_args[o->header_count++] = v;
  return true;
}

/* Reads all of stdin (at most TIMERS_PAYLOAD_MAX bytes) into *buf. */
static int read_stdin(char **buf, size_t *len) {
  size_t cap = 4096;
  *len = 0;
  *buf = malloc(cap);
  while (*buf) {
    size_t n = fread(*buf + *len, 1, cap - *len, stdin);
    *len += n;
    if (n == 0) break;
    if (*len > TIMERS_PAYLOAD_MAX) {
      fprintf(stderr, "timers schedule: the payload on stdin exceeds %u "
                      "bytes\n", TIMERS_PAYLOAD_MAX);
      return 2;
    }
    if (*len == cap) {
      char *g = realloc(*buf, cap *= 2);
      if (!g) free(*buf);
      *buf = g;
    }
  }
  if (!*buf) {
    fprintf(stderr, "timers schedule: out of memory\n");
    return 1;
  }
  if (ferror(stdin)) {
    perror("timers schedule: reading stdin");
    return 1;
  }
  return 0;
}

/* Splits "K=V" arguments into header strings (one allocation each). */
static int make_headers(const sched_opts *o, timers_header *h) {
  for (size_t i = 0; i < o->header_count; i++) {
    char *kv = strdup(o->header_args[i]);
    if (!kv) return fprintf(stderr, "timers schedule: out of memory\n"), 1;
    char *eq = strchr(kv, '=');
    *eq = '\0';
    h[i] = (timers_header){kv, eq + 1};
  }
  return 0;
}

static void free_headers(timers_header *h, size_t n) {
  for (size_t i = 0; i < n; i++) free((char *)h[i].key);
}

static void print_result(const sched_opts *o, const char *topic,
                         const char *id, double at) {
  if (!o->g.json) {
    printf("%s\n", id);
    return;
  }
  char iso[CLI_TIME_CAP];
  cli_iso_time(at, 6, iso, sizeof iso);
  fputs("{\"id\":", stdout);
  cli_json_cstr(stdout, id);
  fputs(",\"topic\":", stdout);
  cli_json_cstr(stdout, topic);
  printf(",\"activate_at\":\"%s\"}\n", iso);
}

static int schedule(const sched_opts *o, const char *topic, const void *p,
                    size_t len, const timers_header *h) {
  timers_settings *s;
  timers_engine *e;
  if (cli_client_open("schedule", &o->g, &topic, 1, &s, &e) != 0) return 1;
  double now = timers_now();
  timers_timer t = {.topic = topic,
                    .id = o->id,
                    .payload = p,
                    .payload_len = len,
                    .headers = h,
                    .header_count = o->header_count,
                    .has_activate_at = true,
                    .activate_at = o->has_at ? o->at : now + o->in};
  char id[TIMERS_ID_MAX + 1];
  int rc = timers_schedule(e, &t, id, sizeof id), status = 0;
  if (rc == TIMERS_OK) print_result(o, topic, id, t.activate_at);
  else {
    cli_fail("schedule", "timers_schedule", rc);
    status = rc == TIMERS_EINVAL || rc == TIMERS_ETOOBIG ? 2 : 1;
  }
  cli_client_close(s, e);
  return status;
}

int cli_schedule(int argc, char **argv) {
  sched_opts o = {0};
  const char *pos[2];
  int npos, status = cli_parse_args(
      "schedule", argc, argv, sched_flags,
      sizeof sched_flags / sizeof *sched_flags, apply_option, &o, usage, pos,
      2, &npos);
  if (status) return status == 1 ? 0 : status;
  if (npos < 1) {
    fprintf(stderr, "timers schedule: TOPIC is missing\n\n");
    return usage(stderr), 2;
  }
  if (o.has_in && o.has_at) {
    fprintf(stderr, "timers schedule: --in and --at exclude each other\n");
    return 2;
  }
  if (!cli_check_topic("schedule", pos[0])) return 2;
  char *buf = NULL;
  size_t len = 0;
  const char *payload = npos == 2 ? pos[1] : NULL;
  if (payload && strcmp(payload, "-") != 0) len = strlen(payload);
  else if (payload || !isatty(STDIN_FILENO))
    status = read_stdin(&buf, &len), payload = buf;
  timers_header h[TIMERS_HEADERS_MAX] = {{0}};
  if (!status) status = make_headers(&o, h);
  if (!status) status = schedule(&o, pos[0], payload, len, h);
  free_headers(h, o.header_count);
  free(buf);
  return status;
}
