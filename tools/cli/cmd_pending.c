/*
 * cmd_pending.c - `timers pending TOPIC`: list a topic's timers, in
 * activation order, one line each.
 *
 * Three forms: "ID TIME" lines (the id JSON-quoted unless it is plain
 * printable ASCII, text.h cli_name_bare), --json lines, and -0 records
 * ("ID TIME", the id as is, each ended by a NUL) for ids of any bytes.
 *
 * Streams through the library's pending iterator (pages of at most a
 * thousand per shard), so memory stays flat for millions of timers; stdout
 * is block-buffered and flushed at the end or when the pipe reader stops
 * (SIGPIPE ends the process, as for any filter).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

typedef struct pending_opts {
  cli_global g;
  bool has_before;
  double before;
  long limit; /* 0: all */
  bool null;  /* -0: NUL-terminated records */
} pending_opts;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers pending TOPIC [options]\n"
          "\n"
          "Lists TOPIC's timers in activation order, one line per timer:\n"
          "\"ID TIME\". The ID is printed as is when it is printable ASCII\n"
          "without blanks and does not start with '\"'; otherwise as a JSON\n"
          "string (\"a b\", \"x\\ny\"; non-ASCII stays raw UTF-8 inside).\n"
          "A timer being handled shows its lease expiry. Exits 0, 1 on\n"
          "failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --before TIME      only timers due at or before TIME: ISO-8601\n"
          "                     with a zone, a Unix timestamp, now, +30s\n"
          "  --limit N          at most N timers\n"
          "  -0, --null         records \"ID TIME\" with the ID as is, each\n"
          "                     ended by a NUL byte instead of a newline\n"
          "                     (TIME, microseconds, follows the last blank)\n"
          "  --json             {\"id\",\"at\"} lines (\"id_b64\" for an id\n"
          "                     that is not UTF-8)\n" CLI_GLOBAL_COMPAT_USAGE
          CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag pending_flags[] = {
    {"--before", true,
     "ISO-8601 with a zone (2026-12-01T10:00:00Z), a Unix timestamp, now, "
     "or +DURATION (+30s)"},
    {"--limit", true, "an integer from 1 to 9223372036854775807"},
    {"--null", false, "takes no value"},
    {"-0", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  pending_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (strcmp(name, "--before") == 0)
    return o->has_before = true, cli_parse_time(v, timers_now(), &o->before);
  if (strcmp(name, "--null") == 0 || strcmp(name, "-0") == 0)
    return o->null = true;
  return cli_parse_long(v, 1, __LONG_MAX__, &o->limit); /* --limit */
}

/* Walks the iterator; 0, or 1 after a failure. SIGINT keeps its default
 * action: nothing here needs a clean stop. */
static int walk(const pending_opts *o, timers_engine *e, const char *topic) {
  timers_pending_iter *it = NULL;
  int rc = timers_pending_open(e, topic, o->has_before, o->before, &it);
  if (rc != TIMERS_OK) return cli_fail("pending", "timers_pending_open", rc), 1;
  cli_list_form form = o->null     ? CLI_LIST_NUL
                       : o->g.json ? CLI_LIST_JSON
                                   : CLI_LIST_TEXT;
  int status = cli_iter_print("pending", it, form, "at", o->limit);
  timers_pending_close(it);
  return status;
}

int cli_pending(int argc, char **argv) {
  pending_opts o = {0};
  const char *pos[1];
  int npos, status = cli_parse_args(
      "pending", argc, argv, pending_flags,
      sizeof pending_flags / sizeof *pending_flags, apply_option, &o, usage,
      pos, 1, &npos);
  if (status) return status == 1 ? 0 : status;
  if (npos < 1) {
    fprintf(stderr, "timers pending: TOPIC is missing\n\n");
    return usage(stderr), 2;
  }
  if (o.null && o.g.json) {
    fprintf(stderr, "timers pending: -0 and --json exclude each other\n");
    return 2;
  }
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", NULL, 0, NULL};
  if ((status = cli_client_open("pending", &o.g, &names, &s, &e)) != 0)
    return status;
  status = walk(&o, e, pos[0]);
  cli_client_close(s, e);
  return status;
}
