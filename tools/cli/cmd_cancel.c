/*
 * cmd_cancel.c - `timers cancel TOPIC ID...` and `timers cancel-all TOPIC`.
 *
 * cancel exits 1 when any id was not pending (like rm on a missing file),
 * after trying every id; cancel-all succeeds whatever the count.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

#define CANCEL_IDS_MAX 1024

typedef struct cancel_opts {
  cli_global g;
} cancel_opts;

static void usage_cancel(FILE *out) {
  fprintf(out,
          "usage: timers cancel TOPIC ID [ID...] [options]\n"
          "\n"
          "Removes pending timers. Prints one line per id: \"cancelled ID\"\n"
          "or \"not found ID\" (--json: {\"topic\",\"id\",\"removed\"}).\n"
          "Exits 0 if every id was removed, 1 if one was not pending or\n"
          "Redis failed, 2 on bad usage.\n"
          "\n"
          "options:\n" CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static void usage_cancel_all(FILE *out) {
  fprintf(out,
          "usage: timers cancel-all TOPIC [options]\n"
          "\n"
          "Removes every timer of TOPIC and prints how many\n"
          "(--json: {\"topic\",\"removed\"}). Exits 0, 1 on failure, 2 on\n"
          "bad usage.\n"
          "\n"
          "options:\n" CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag cancel_flags[] = {CLI_GLOBAL_COMPAT_FLAG,
                                        CLI_GLOBAL_FLAGS};

static bool apply_option(void *opts, const char *name, const char *v) {
  bool ok;
  cancel_opts *o = opts;
  return cli_global_apply(&o->g, name, v, &ok) && ok;
}

/* Parses flags and up to max_pos positionals (the topic, then for cancel
 * the ids); 0, or the exit status plus 1 (so that 0 can mean "go on"). */
static int parse(const char *cmd, int argc, char **argv, cancel_opts *o,
                 void (*usage)(FILE *), const char **pos, int max_pos,
                 int *npos) {
  int status = cli_parse_args(cmd, argc, argv, cancel_flags,
                              sizeof cancel_flags / sizeof *cancel_flags,
                              apply_option, o, usage, pos, max_pos, npos);
  if (status) return (status == 1 ? 0 : status) + 1;
  if (*npos < (max_pos > 1 ? 2 : 1)) {
    fprintf(stderr, "timers %s: %s missing\n\n", cmd,
            *npos ? "ID is" : max_pos > 1 ? "TOPIC and ID are" : "TOPIC is");
    return usage(stderr), 3;
  }
  return 0;
}

static void print_one(const cancel_opts *o, const char *topic, const char *id,
                      bool removed) {
  if (o->g.json) {
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, topic);
    fputc(',', stdout);
    cli_json_name(stdout, "id", id);
    printf(",\"removed\":%s}\n", removed ? "true" : "false");
  } else {
    fputs(removed ? "cancelled " : "not found ", stdout);
    cli_name_print(stdout, id);
    fputc('\n', stdout);
  }
}

int cli_cancel(int argc, char **argv) {
  cancel_opts o = {0};
  const char *pos[1 + CANCEL_IDS_MAX];
  int npos, status = parse("cancel", argc, argv, &o, usage_cancel, pos,
                           1 + CANCEL_IDS_MAX, &npos);
  if (status) return status - 1;
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", pos + 1, (size_t)npos - 1, "ID"};
  if ((status = cli_client_open("cancel", &o.g, &names, &s, &e)) != 0)
    return status;
  for (int i = 1; i < npos; i++) {
    bool removed = false;
    int rc = timers_cancel(e, pos[0], pos[i], &removed);
    if (rc != TIMERS_OK) {
      cli_fail("cancel", "timers_cancel", rc);
      status = 1;
      break;
    }
    print_one(&o, pos[0], pos[i], removed);
    if (!removed) status = 1;
  }
  cli_client_close(s, e);
  return status;
}

int cli_cancel_all(int argc, char **argv) {
  cancel_opts o = {0};
  const char *pos[1];
  int npos, status = parse("cancel-all", argc, argv, &o, usage_cancel_all,
                           pos, 1, &npos);
  if (status) return status - 1;
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", NULL, 0, NULL};
  if ((status = cli_client_open("cancel-all", &o.g, &names, &s, &e)) != 0)
    return status;
  uint64_t count = 0;
  int rc = timers_cancel_all(e, pos[0], &count);
  if (rc != TIMERS_OK) {
    cli_fail("cancel-all", "timers_cancel_all", rc);
    status = 1;
  } else if (o.g.json) {
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, pos[0]);
    printf(",\"removed\":%llu}\n", (unsigned long long)count);
  } else {
    printf("%llu\n", (unsigned long long)count);
  }
  cli_client_close(s, e);
  return status;
}
