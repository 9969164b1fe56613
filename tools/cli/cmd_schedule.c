/*
 * cmd_schedule.c - `timers schedule TOPIC [PAYLOAD]`: schedule one timer.
 *
 * The payload is the argument, or stdin when it is "-" or absent (absent
 * on a terminal: empty). The time is --in D or --at TIME (ISO-8601 with a
 * zone, or a Unix timestamp); neither means now. Prints the id. The topic
 * and the id are checked by the topic's layout (cli_names_check); a
 * payload or header the library rejects is bad usage (exit 2), like a bad
 * flag. Headers are left to the library too: their number and empty keys
 * are allowed per layout. --content-type is the "content-type" header;
 * without it the FASTSTREAM layout chooses one from the body, as the
 * Python publisher does.
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
  cli_when when; /* neither: due now */
  const char **header_args; /* "K=V", owned array of argv strings */
  size_t header_count, header_cap;
  const char *content_type; /* NULL: none given */
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
          CLI_WHEN_USAGE
          "                     (neither --at nor --in: due now)\n"
          "  --id ID            the timer's id (default: generated). native\n"
          "                     layout: printable ASCII without blanks;\n"
          "                     faststream: any UTF-8; up to 512 bytes\n"
          "  --header K=V       a header; repeat for more (native: up to 64,\n"
          "                     non-empty keys; faststream: up to 65533)\n"
          "  --content-type T   the content-type header (\"\": none). Without\n"
          "                     it, --compat topics get the Python publisher's\n"
          "                     choice: application/json for a JSON object or\n"
          "                     array, text/plain for other UTF-8, else none\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n"
          "\n"
          "--json prints {\"id\":...,\"topic\":...,\"activate_at\":...}.\n");
}

static const cli_flag sched_flags[] = {
    CLI_WHEN_FLAGS,
    {"--id", true, "an id the topic's layout accepts"},
    {"--header", true, "KEY=VALUE"},
    {"--content-type", true, "a content type, e.g. application/json; \"\": none"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  sched_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (cli_when_apply(&o->when, name, v, &ok)) return ok;
  if (strcmp(name, "--id") == 0) return o->id = v, true;
  if (strcmp(name, "--content-type") == 0) return o->content_type = v, true;
  /* --header */
  if (!strchr(v, '=')) return false;
  if (o->header_count == o->header_cap) {
    size_t cap = o->header_cap ? o->header_cap * 2 : 8;
    const char **g = realloc(o->header_args, cap * sizeof *g);
    if (!g) return false;
    o->header_args = g, o->header_cap = cap;
  }
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

/* Splits "K=V" arguments into h[] (one allocation each: h[i].key). */
static int split_headers(const sched_opts *o, timers_header *h) {
  for (size_t i = 0; i < o->header_count; i++) {
    char *kv = strdup(o->header_args[i]);
    if (!kv) return fprintf(stderr, "timers schedule: out of memory\n"), 1;
    char *eq = strchr(kv, '=');
    *eq = '\0';
    h[i] = (timers_header){kv, eq + 1};
    if (o->content_type && strcmp(kv, "content-type") == 0) {
      fprintf(stderr, "timers schedule: --content-type and --header "
                      "content-type=... exclude each other\n");
      return 2;
    }
  }
  return 0;
}

/* The --header list plus --content-type; *n headers in *out (free with
 * free_headers). An empty content type is no header in the NATIVE layout
 * and an empty one in the FASTSTREAM layout, where it stops the engine
 * choosing one and FastStream reads it as none (as Python's publish with
 * headers={"content-type": ""}). */
static int make_headers(const sched_opts *o, timers_layout layout,
                        timers_header **out, size_t *n) {
  *n = 0;
  *out = calloc(o->header_count + 1, sizeof **out);
  if (!*out) return fprintf(stderr, "timers schedule: out of memory\n"), 1;
  int status = split_headers(o, *out);
  *n = o->header_count;
  const char *ct = o->content_type;
  if (!status && ct && (ct[0] || layout == TIMERS_LAYOUT_FASTSTREAM)) {
    char *key = strdup("content-type");
    if (!key) return fprintf(stderr, "timers schedule: out of memory\n"), 1;
    (*out)[(*n)++] = (timers_header){key, ct};
  }
  return status;
}

static void free_headers(timers_header *h, size_t n) {
  for (size_t i = 0; h && i < n; i++) free((char *)h[i].key);
  free(h);
}

static void print_result(const sched_opts *o, const char *topic,
                         const char *id, double at) {
  if (!o->g.json) {
    cli_name_print(stdout, id);
    fputc('\n', stdout);
    return;
  }
  char iso[CLI_TIME_CAP];
  cli_iso_time(at, 6, iso, sizeof iso);
  fputc('{', stdout);
  cli_json_name(stdout, "id", id);
  fputs(",\"topic\":", stdout);
  cli_json_cstr(stdout, topic);
  printf(",\"activate_at\":\"%s\"}\n", iso);
}

static int schedule(const sched_opts *o, timers_engine *e, const char *topic,
                    const void *p, size_t len, const timers_header *h,
                    size_t nh) {
  double now = timers_now();
  timers_timer t = {.topic = topic,
                    .id = o->id,
                    .payload = p,
                    .payload_len = len,
                    .headers = h,
                    .header_count = nh,
                    .has_activate_at = true,
                    .activate_at = cli_when_time(&o->when, now)};
  char id[TIMERS_ID_MAX + 1];
  int rc = timers_schedule(e, &t, id, sizeof id);
  if (rc == TIMERS_OK) return print_result(o, topic, id, t.activate_at), 0;
  /* The library numbers headers as given: --header flags first. */
  if (nh && strstr(timers_last_error(), "header"))
    cli_fail("schedule", "--header / --content-type", rc);
  else
    cli_fail("schedule", "timers_schedule", rc);
  return rc == TIMERS_EINVAL || rc == TIMERS_ETOOBIG ? 2 : 1;
}

/* Reads the payload (argument, or stdin), builds the headers, schedules. */
static int run(const sched_opts *o, const timers_settings *s,
               timers_engine *e, const char *topic, const char *payload) {
  char *buf = NULL;
  size_t len = 0, nh = 0;
  int status = 0;
  if (payload && strcmp(payload, "-") != 0) len = strlen(payload);
  else if (payload || !isatty(STDIN_FILENO))
    status = read_stdin(&buf, &len), payload = buf;
  timers_layout layout = cli_topic_layout(&o->g, s, topic);
  timers_header *h = NULL;
  if (!status) status = make_headers(o, layout, &h, &nh);
  if (!status) status = schedule(o, e, topic, payload, len, h, nh);
  free_headers(h, nh);
  free(buf);
  return status;
}

static int parse(int argc, char **argv, sched_opts *o, const char **pos,
                 int *npos) {
  int status = cli_parse_args("schedule", argc, argv, sched_flags,
                              sizeof sched_flags / sizeof *sched_flags,
                              apply_option, o, usage, pos, 2, npos);
  if (status) return status == 1 ? -1 : status;
  if (*npos < 1) {
    fprintf(stderr, "timers schedule: TOPIC is missing\n\n");
    return usage(stderr), 2;
  }
  if (o->when.has_in && o->when.has_at) {
    fprintf(stderr, "timers schedule: --in and --at exclude each other\n");
    return 2;
  }
  return 0;
}

int cli_schedule(int argc, char **argv) {
  sched_opts o = {0};
  const char *pos[2];
  int npos, status = parse(argc, argv, &o, pos, &npos);
  timers_settings *s = NULL;
  timers_engine *e = NULL;
  /* Names are checked before stdin is read: a bad one never waits. */
  cli_names names = {pos, 1, "TOPIC", &o.id, o.id ? 1 : 0, "--id"};
  if (!status) status = cli_client_open("schedule", &o.g, &names, &s, &e);
  if (!status) status = run(&o, s, e, pos[0], npos == 2 ? pos[1] : NULL);
  cli_client_close(s, e);
  free(o.header_args);
  return status < 0 ? 0 : status;
}
