/*
 * cmd_move.c - `timers move TOPIC ID --at TIME | --in D`: move a pending
 * timer to a new activation time (timers_reschedule) without resending its
 * payload; its attempts start over, and a handler holding it right now is
 * fenced off (the timer fires again at the new time).
 *
 * Exits 1 when the timer was not pending, like cancel. The time is
 * required: moving to "now" is --at now, said on purpose.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

typedef struct move_opts {
  cli_global g;
  cli_when when;
} move_opts;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers move TOPIC ID (--at TIME | --in D) [options]\n"
          "\n"
          "Moves a pending timer to a new due time without resending its\n"
          "payload; its attempts start over. If a handler holds it now, that\n"
          "run's outcome is ignored and the timer fires at the new time.\n"
          "Prints \"moved ID TIME\" or \"not found ID\" (--json:\n"
          "{\"topic\",\"id\",\"moved\",\"activate_at\"}). Exits 0, 1 when the\n"
          "timer is not pending or on failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          CLI_WHEN_USAGE CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag move_flags[] = {
    CLI_WHEN_FLAGS,
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  move_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  return cli_when_apply(&o->when, name, v, &ok) && ok;
}

static void print_result(const move_opts *o, const char *topic,
                         const char *id, bool moved, double at) {
  char iso[CLI_TIME_CAP];
  cli_iso_time(at, o->g.json ? 6 : 3, iso, sizeof iso);
  if (o->g.json) {
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, topic);
    fputc(',', stdout);
    cli_json_name(stdout, "id", id);
    printf(",\"moved\":%s,\"activate_at\":\"%s\"}\n",
           moved ? "true" : "false", iso);
    return;
  }
  fputs(moved ? "moved " : "not found ", stdout);
  cli_name_print(stdout, id);
  if (moved) printf(" %s", iso);
  fputc('\n', stdout);
}

static int parse(int argc, char **argv, move_opts *o, const char **pos,
                 int *npos) {
  int status = cli_parse_args("move", argc, argv, move_flags,
                              sizeof move_flags / sizeof *move_flags,
                              apply_option, o, usage, pos, 2, npos);
  if (status) return status == 1 ? -1 : status;
  if (*npos < 2) {
    fprintf(stderr, "timers move: %s missing\n\n",
            *npos ? "ID is" : "TOPIC and ID are");
    return usage(stderr), 2;
  }
  if (o->when.has_at == o->when.has_in) {
    fprintf(stderr, "timers move: give exactly one of --at TIME and --in D "
                    "(--at now: due now)\n");
    return 2;
  }
  return 0;
}

int cli_move(int argc, char **argv) {
  move_opts o = {0};
  const char *pos[2];
  int npos, status = parse(argc, argv, &o, pos, &npos);
  if (status) return status < 0 ? 0 : status;
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", pos + 1, 1, "ID"};
  if ((status = cli_client_open("move", &o.g, &names, &s, &e)) != 0)
    return status;
  double at = cli_when_time(&o.when, timers_now());
  bool moved = false;
  int rc = timers_reschedule(e, pos[0], pos[1], at, &moved);
  if (rc != TIMERS_OK) {
    cli_fail("move", "timers_reschedule", rc);
    status = 1;
  } else {
    print_result(&o, pos[0], pos[1], moved, at);
    status = moved ? 0 : 1;
  }
  cli_client_close(s, e);
  return status;
}
