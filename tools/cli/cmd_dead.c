/*
 * cmd_dead.c - `timers dead list|show|requeue|purge`: a topic's dead-letter
 * set (timers_dead_*): timers whose last attempt failed, that were claimed
 * again after max_attempts deliveries that never ended, or that were
 * rejected on a topic with dead_letter_rejects.
 *
 * list prints in the forms of `pending` (text with its quoting rule,
 * --json, -0), in the order the timers died; show renders like `show`.
 * requeue exits 1 when an id was not dead (after trying every id, like
 * cancel); purge takes ids or --all, never both, and prints the count.
 *
 * Only the NATIVE layout has a dead-letter set. For a FASTSTREAM topic
 * show, requeue and purge get TIMERS_EINVAL from the library, whose detail
 * is printed as bad usage of that topic (exit 2); timers_dead_open does
 * not refuse one (it would list nothing), so list checks the layout itself
 * and says the same.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

#define DEAD_IDS_MAX 1024

typedef struct dead_opts {
  cli_global g;
  long limit;          /* list: 0 = all                    */
  bool null;           /* list: -0                         */
  bool full;           /* show: the whole payload          */
  cli_when when;       /* requeue: --at TIME, --in D       */
  bool all;            /* purge: every dead letter         */
} dead_opts;

/* What a subcommand runs on: its arguments (pos[0] the topic, then ids)
 * and an engine declaring the topic. */
typedef struct dead_ctx {
  const char *cmd; /* "dead list", for messages */
  const dead_opts *o;
  const timers_settings *s;
  timers_engine *e;
  const char *const *pos;
  int npos;
} dead_ctx;

typedef struct dead_cmd {
  const char *name;
  const cli_flag *flags;
  size_t nflags;
  void (*usage)(FILE *);
  int min_pos, max_pos; /* TOPIC, then IDs */
  int (*run)(const dead_ctx *c);
} dead_cmd;

/* ---------------------------------------------------------------- usage */

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers dead list TOPIC [--limit N] [-0] [options]\n"
          "       timers dead show TOPIC ID [--full] [options]\n"
          "       timers dead requeue TOPIC ID... [--at TIME | --in D]\n"
          "       timers dead purge TOPIC (ID... | --all)\n"
          "\n"
          "A topic's dead letters: timers whose last attempt (max_attempts)\n"
          "was nacked, that were claimed again after max_attempts deliveries\n"
          "that never ended, or that were rejected on a topic with\n"
          "dead_letter_rejects = 1. Kept up to dead_max per shard and\n"
          "dead_ttl_ms. Native layout only (a faststream topic: exit 2).\n"
          "'timers dead <subcommand> --help' describes each.\n");
}

static void usage_list(FILE *out) {
  fprintf(out,
          "usage: timers dead list TOPIC [options]\n"
          "\n"
          "Lists TOPIC's dead letters in the order they died, one line each:\n"
          "\"ID TIME\", TIME the dead time; the ID as `timers pending` prints\n"
          "it (JSON-quoted unless printable ASCII without blanks, not\n"
          "starting with '\"'). Exits 0, 1 on failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --limit N          at most N dead letters\n"
          "  -0, --null         records \"ID TIME\" with the ID as is, each\n"
          "                     ended by a NUL byte instead of a newline\n"
          "  --json             {\"id\",\"dead_at\"} lines (\"id_b64\" for an\n"
          "                     id that is not UTF-8)\n" CLI_GLOBAL_COMPAT_USAGE
          CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static void usage_show(FILE *out) {
  fprintf(out,
          "usage: timers dead show TOPIC ID [options]\n"
          "\n"
          "Shows one dead letter: when it died (ISO-8601 and relative), the\n"
          "deliveries it had, the reason, when it was due, its shard,\n"
          "headers and payload (text when printable UTF-8, else base64; the\n"
          "first 200 bytes unless --full). Exits 0, 1 when it is not a dead\n"
          "letter or on failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --full             the whole payload\n" CLI_GLOBAL_COMPAT_USAGE
          CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static void usage_requeue(FILE *out) {
  fprintf(out,
          "usage: timers dead requeue TOPIC ID [ID...] [options]\n"
          "\n"
          "Puts dead letters back on the timeline with their payload and\n"
          "headers, attempts starting over (a pending timer of the same id\n"
          "is replaced). Prints \"requeued ID\" or \"not dead ID\" per id\n"
          "(--json: {\"topic\",\"id\",\"requeued\"}). Exits 0 if every id was\n"
          "requeued, 1 if one was not dead or on failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          CLI_WHEN_USAGE
          "                     (neither: due now)\n" CLI_GLOBAL_COMPAT_USAGE
          CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static void usage_purge(FILE *out) {
  fprintf(out,
          "usage: timers dead purge TOPIC ID [ID...] [options]\n"
          "       timers dead purge TOPIC --all [options]\n"
          "\n"
          "Removes the named dead letters, or every one of TOPIC's, and\n"
          "prints how many were removed (--json: {\"topic\",\"purged\"}).\n"
          "Exits 0, 1 on failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --all              every dead letter of TOPIC\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

/* ---------------------------------------------------------------- flags */

static const cli_flag list_flags[] = {
    {"--limit", true, "an integer from 1 to 9223372036854775807"},
    {"--null", false, "takes no value"},
    {"-0", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static const cli_flag show_flags[] = {
    {"--full", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static const cli_flag requeue_flags[] = {
    CLI_WHEN_FLAGS,
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static const cli_flag purge_flags[] = {
    {"--all", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

/* Every subcommand's flags; each table admits only its own. */
static bool apply_option(void *opts, const char *name, const char *v) {
  dead_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (cli_when_apply(&o->when, name, v, &ok)) return ok;
  if (strcmp(name, "--limit") == 0)
    return cli_parse_long(v, 1, __LONG_MAX__, &o->limit);
  if (strcmp(name, "--null") == 0 || strcmp(name, "-0") == 0)
    return o->null = true;
  if (strcmp(name, "--full") == 0) return o->full = true;
  return o->all = true; /* --all */
}

/* A failed dead-letter call. The names were checked before, so
 * TIMERS_EINVAL is the topic's layout having no dead-letter set: bad usage
 * of that topic (2), in the library's words. Anything else: 1. */
static int dead_fail(const char *cmd, const char *call, int rc) {
  if (rc != TIMERS_EINVAL) return cli_fail(cmd, call, rc), 1;
  fprintf(stderr, "timers %s: %s\n", cmd, timers_last_error());
  return 2;
}

/* ----------------------------------------------------------------- list */

static int run_list(const dead_ctx *c) {
  const char *topic = c->pos[0];
  if (cli_topic_layout(&c->o->g, c->s, topic) == TIMERS_LAYOUT_FASTSTREAM) {
    fprintf(stderr, "timers %s: topic ", c->cmd);
    cli_json_cstr(stderr, topic);
    fputs(" uses the faststream layout, which has no dead-letter set\n",
          stderr);
    return 2;
  }
  timers_pending_iter *it = NULL;
  int rc = timers_dead_open(c->e, topic, &it);
  if (rc != TIMERS_OK) return dead_fail(c->cmd, "timers_dead_open", rc);
  cli_list_form form = c->o->null     ? CLI_LIST_NUL
                       : c->o->g.json ? CLI_LIST_JSON
                                      : CLI_LIST_TEXT;
  int status = cli_iter_print(c->cmd, it, form, "dead_at", c->o->limit);
  timers_pending_close(it);
  return status;
}

/* ----------------------------------------------------------------- show */

/* A reason is free text on one line: printed as is when it is printable
 * without tabs or line breaks and does not start with '"', else as a JSON
 * string (the quoting rule of ids, with blanks allowed). */
static void print_reason(const char *r) {
  size_t len = strlen(r);
  bool bare = len && r[0] != '"' && cli_text_printable(r, len) &&
              !strpbrk(r, "\t\r\n");
  if (bare) fputs(r, stdout);
  else cli_json_str(stdout, r, len);
}

static void show_human(const dead_ctx *c, const timers_dead_info *d,
                       double now) {
  char dead[CLI_TIME_CAP], due[CLI_TIME_CAP], rel_dead[64], rel_due[64];
  cli_iso_time(d->dead_at, 3, dead, sizeof dead);
  cli_relative(d->dead_at - now, rel_dead, sizeof rel_dead);
  cli_iso_time(d->activate_at, 3, due, sizeof due);
  cli_relative(d->activate_at - now, rel_due, sizeof rel_due);
  fputs("id:        ", stdout);
  cli_name_print(stdout, d->id);
  fputs("\ntopic:     ", stdout);
  cli_name_print(stdout, c->pos[0]);
  printf("\nshard:     %u\n", d->shard);
  printf("dead:      %s (%s)\n", dead, rel_dead);
  printf("attempts:  %u\n", d->attempts);
  fputs("reason:    ", stdout);
  print_reason(d->reason);
  printf("\ndue:       %s (%s)\n", due, rel_due);
  cli_headers_print(stdout, d->headers, d->header_count);
  cli_payload_print(stdout, d->payload, d->payload_len,
                    c->o->full ? 0 : CLI_SHOW_PREVIEW);
}

static void show_json(const dead_ctx *c, const timers_dead_info *d,
                      double now) {
  char dead[CLI_TIME_CAP], due[CLI_TIME_CAP];
  cli_iso_time(d->dead_at, 6, dead, sizeof dead);
  cli_iso_time(d->activate_at, 6, due, sizeof due);
  fputc('{', stdout);
  cli_json_name(stdout, "id", d->id);
  fputs(",\"topic\":", stdout);
  cli_json_cstr(stdout, c->pos[0]);
  printf(",\"shard\":%u,\"dead_at\":\"%s\",\"dead_age_s\":%.6f,"
         "\"attempts\":%u,\"reason\":",
         d->shard, dead, now - d->dead_at, d->attempts);
  cli_json_cstr(stdout, d->reason);
  printf(",\"activate_at\":\"%s\",\"headers\":", due);
  cli_json_headers(stdout, d->headers, d->header_count);
  printf(",\"payload_len\":%zu,", d->payload_len);
  cli_json_payload(stdout, d->payload, d->payload_len,
                   c->o->full ? 0 : CLI_SHOW_PREVIEW);
  fputs("}\n", stdout);
}

static int run_show(const dead_ctx *c) {
  bool found = false;
  timers_dead_info d;
  int rc = timers_dead_inspect(c->e, c->pos[0], c->pos[1], &found, &d);
  if (rc != TIMERS_OK) return dead_fail(c->cmd, "timers_dead_inspect", rc);
  if (!found) {
    fprintf(stderr, "timers %s: no dead letter ", c->cmd);
    cli_json_cstr(stderr, c->pos[1]);
    fputs(" in topic ", stderr);
    cli_json_cstr(stderr, c->pos[0]);
    fputc('\n', stderr);
    return 1;
  }
  double now = timers_now();
  if (c->o->g.json) show_json(c, &d, now);
  else show_human(c, &d, now);
  timers_dead_info_free(&d);
  return 0;
}

/* -------------------------------------------------------------- requeue */

static void print_requeued(const dead_ctx *c, const char *id, bool done) {
  if (c->o->g.json) {
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, c->pos[0]);
    fputc(',', stdout);
    cli_json_name(stdout, "id", id);
    printf(",\"requeued\":%s}\n", done ? "true" : "false");
    return;
  }
  fputs(done ? "requeued " : "not dead ", stdout);
  cli_name_print(stdout, id);
  fputc('\n', stdout);
}

static int run_requeue(const dead_ctx *c) {
  const dead_opts *o = c->o;
  bool has_at = o->when.has_at || o->when.has_in;
  double at = cli_when_time(&o->when, timers_now());
  int status = 0;
  for (int i = 1; i < c->npos; i++) {
    bool done = false;
    int rc = timers_dead_requeue(c->e, c->pos[0], c->pos[i], has_at, at,
                                 &done);
    if (rc != TIMERS_OK) return dead_fail(c->cmd, "timers_dead_requeue", rc);
    print_requeued(c, c->pos[i], done);
    if (!done) status = 1;
  }
  return status;
}

/* ---------------------------------------------------------------- purge */

static int run_purge(const dead_ctx *c) {
  uint64_t total = 0;
  int rc = TIMERS_OK;
  if (c->o->all) rc = timers_dead_purge(c->e, c->pos[0], NULL, &total);
  for (int i = 1; !c->o->all && rc == TIMERS_OK && i < c->npos; i++) {
    uint64_t n = 0;
    rc = timers_dead_purge(c->e, c->pos[0], c->pos[i], &n);
    total += n;
  }
  if (rc != TIMERS_OK) return dead_fail(c->cmd, "timers_dead_purge", rc);
  if (c->o->g.json) {
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, c->pos[0]);
    printf(",\"purged\":%llu}\n", (unsigned long long)total);
  } else {
    printf("%llu\n", (unsigned long long)total);
  }
  return 0;
}

/* ------------------------------------------------------------- dispatch */

#define DEAD_FLAGS_(t) t, sizeof t / sizeof *t

static const dead_cmd dead_cmds[] = {
    {"list", DEAD_FLAGS_(list_flags), usage_list, 1, 1, run_list},
    {"show", DEAD_FLAGS_(show_flags), usage_show, 2, 2, run_show},
    {"requeue", DEAD_FLAGS_(requeue_flags), usage_requeue, 2,
     1 + DEAD_IDS_MAX, run_requeue},
    {"purge", DEAD_FLAGS_(purge_flags), usage_purge, 1, 1 + DEAD_IDS_MAX,
     run_purge},
};

/* What the flags cannot say alone; 0 or 2 after saying why. */
static int check_usage(const char *cmd, const dead_opts *o, int npos,
                       bool purge) {
  const char *why = NULL;
  if (o->null && o->g.json) why = "-0 and --json exclude each other";
  else if (o->when.has_at && o->when.has_in)
    why = "--at and --in exclude each other";
  else if (purge && o->all && npos > 1)
    why = "IDs and --all exclude each other";
  else if (purge && !o->all && npos < 2)
    why = "name the IDs, or --all for every dead letter";
  if (!why) return 0;
  fprintf(stderr, "timers %s: %s\n", cmd, why);
  return 2;
}

/* Parses the subcommand's arguments; 0, or the exit status plus 1. */
static int parse(const dead_cmd *d, const char *cmd, int argc, char **argv,
                 dead_opts *o, const char **pos, int *npos) {
  int status = cli_parse_args(cmd, argc, argv, d->flags, d->nflags,
                              apply_option, o, d->usage, pos, d->max_pos,
                              npos);
  if (status) return (status == 1 ? 0 : status) + 1;
  if (*npos < d->min_pos) {
    fprintf(stderr, "timers %s: %s missing\n\n", cmd,
            *npos ? "ID is" : d->min_pos > 1 ? "TOPIC and ID are"
                                             : "TOPIC is");
    return d->usage(stderr), 3;
  }
  return check_usage(cmd, o, *npos, d->run == run_purge) ? 3 : 0;
}

static int dead_run(const dead_cmd *d, int argc, char **argv) {
  char cmd[32];
  snprintf(cmd, sizeof cmd, "dead %s", d->name);
  dead_opts o = {0};
  const char *pos[1 + DEAD_IDS_MAX];
  int npos, status = parse(d, cmd, argc, argv, &o, pos, &npos);
  if (status) return status - 1;
  timers_settings *s;
  timers_engine *e;
  cli_names names = {pos, 1, "TOPIC", pos + 1, (size_t)npos - 1, "ID"};
  if ((status = cli_client_open(cmd, &o.g, &names, &s, &e)) != 0)
    return status;
  dead_ctx c = {cmd, &o, s, e, pos, npos};
  status = d->run(&c);
  cli_client_close(s, e);
  return status;
}

int cli_dead(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "-h") == 0 || strcmp(what, "--help") == 0)
    return usage(stdout), 0;
  for (size_t i = 0; i < sizeof dead_cmds / sizeof *dead_cmds; i++)
    if (strcmp(what, dead_cmds[i].name) == 0)
      return dead_run(&dead_cmds[i], argc - 1, argv + 1);
  if (*what)
    fprintf(stderr, "timers dead: unknown subcommand '%s'\n\n", what);
  else
    fprintf(stderr, "timers dead: expected list, show, requeue or purge\n\n");
  usage(stderr);
  return 2;
}
