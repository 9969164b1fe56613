/*
 * cmd_show.c - `timers show TOPIC ID`: one timer as stored (time, shard,
 * lease, attempts, headers, payload preview). Exits 1 when it is not there.
 *
 * In the FASTSTREAM layout a lease and a future due time look alike in
 * Redis (timers_timer_info.lease_known is false) and attempts are not
 * recorded: both are shown as unknown (JSON null), never guessed.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

typedef struct show_opts {
  cli_global g;
  bool full;
} show_opts;

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers show TOPIC ID [options]\n"
          "\n"
          "Shows one timer: due time (ISO-8601 and relative), shard, whether\n"
          "a handler holds it (and until when), delivery attempts, headers\n"
          "and the payload (text when it is printable UTF-8, else base64;\n"
          "the first 200 bytes unless --full). In the faststream layout the\n"
          "time is the timer's score, its due time or the end of a lease,\n"
          "which look alike: the lease and the attempts are shown as unknown\n"
          "(--json: null). Exits 0, 1 when the timer is not pending or on\n"
          "failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --full             the whole payload\n" CLI_GLOBAL_COMPAT_USAGE
          CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag show_flags[] = {
    {"--full", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  show_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  return o->full = true; /* --full */
}

static void print_json(const show_opts *o, const char *topic,
                       const timers_timer_info *t, double now) {
  char at[CLI_TIME_CAP], score[CLI_TIME_CAP];
  cli_iso_time(t->activate_at, 6, at, sizeof at);
  cli_iso_time(t->score, 6, score, sizeof score);
  fputc('{', stdout);
  cli_json_name(stdout, "id", t->id);
  fputs(",\"topic\":", stdout);
  cli_json_cstr(stdout, topic);
  printf(",\"shard\":%u,\"activate_at\":\"%s\",\"due_in_s\":%.6f,"
         "\"score\":\"%s\",\"leased\":%s,\"attempts\":",
         t->shard, at, t->activate_at - now, score,
         !t->lease_known ? "null" : t->leased ? "true" : "false");
  if (t->lease_known) printf("%u", t->attempts);
  else fputs("null", stdout);
  fputs(",\"headers\":", stdout);
  cli_json_headers(stdout, t->headers, t->header_count);
  printf(",\"payload_len\":%zu,", t->payload_len);
  cli_json_payload(stdout, t->payload, t->payload_len,
                   o->full ? 0 : CLI_SHOW_PREVIEW);
  fputs("}\n", stdout);
}

/* The lease and attempts lines (unknown in the FASTSTREAM layout). */
static void print_lease(const timers_timer_info *t, double now) {
  char at[CLI_TIME_CAP], rel[64];
  if (!t->lease_known) {
    printf("leased:    unknown in the faststream layout (a lease and a "
           "future due time look alike)\n"
           "attempts:  not recorded in the faststream layout\n");
    return;
  }
  if (t->leased) {
    cli_iso_time(t->score, 3, at, sizeof at);
    cli_relative(t->score - now, rel, sizeof rel);
    printf("leased:    yes, until %s (%s)\n", at, rel);
  } else {
    printf("leased:    no\n");
  }
  printf("attempts:  %u\n", t->attempts);
}

static void print_human(const show_opts *o, const char *topic,
                        const timers_timer_info *t, double now) {
  char at[CLI_TIME_CAP], rel[64];
  cli_iso_time(t->activate_at, 3, at, sizeof at);
  cli_relative(t->activate_at - now, rel, sizeof rel);
  fputs("id:        ", stdout);
  cli_name_print(stdout, t->id);
  fputs("\ntopic:     ", stdout);
  cli_name_print(stdout, topic);
  printf("\nshard:     %u\n", t->shard);
  printf("due:       %s (%s)%s\n", at, rel,
         t->lease_known ? "" : ", or the end of a lease");
  print_lease(t, now);
  cli_headers_print(stdout, t->headers, t->header_count);
  cli_payload_print(stdout, t->payload, t->payload_len,
                    o->full ? 0 : CLI_SHOW_PREVIEW);
}

static int show(const show_opts *o, timers_engine *e, const char *topic,
                const char *id) {
  bool found = false;
  timers_timer_info info;
  int rc = timers_inspect(e, topic, id, &found, &info);
  if (rc != TIMERS_OK) return cli_fail("show", "timers_inspect", rc), 1;
  if (!found) {
    fputs("timers show: no timer ", stderr);
    cli_json_cstr(stderr, id);
    fputs(" in topic ", stderr);
    cli_json_cstr(stderr, topic);
    fputc('\n', stderr);
    return 1;
  }
  double now = timers_now();
  if (o->g.json) print_json(o, topic, &info, now);
  else print_human(o, topic, &info, now);
  timers_timer_info_free(&info);
  return 0;
}

int cli_show(int argc, char **argv) {
  show_opts o = {0};
  const char *pos[2];
  int npos, status = cli_parse_args("show", argc, argv, show_flags,
                                    sizeof show_flags / sizeof *show_flags,
                                    apply_option, &o, usage, pos, 2, &npos);
  if (status) return status == 1 ? 0 : status;
  if (npos < 2) {
    fprintf(stderr, "timers show: %s missing\n\n",
            npos ? "ID is" : "TOPIC and ID are");
    return usage(stderr), 2;
  }
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", pos + 1, 1, "ID"};
  if ((status = cli_client_open("show", &o.g, &names, &s, &e)) != 0)
    return status;
  status = show(&o, e, pos[0], pos[1]);
  cli_client_close(s, e);
  return status;
}
