/*
 * timers_cli.c - the `timers` command line: dispatches to a subcommand.
 *
 * A subcommand is one row of the table below and one file under tools/cli/
 * (cancel and cancel-all share one, as do stats and top; dead has its own
 * list, show, requeue and purge). Exit status:
 * 0 success, 1 failure, 2 bad usage; unknown subcommands print the usage on
 * stderr and exit 2.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "timers.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"schedule", cli_schedule, "schedule a timer (payload: argument or stdin)"},
    {"move", cli_move, "move a pending timer to a new time"},
    {"cancel", cli_cancel, "remove timers by id"},
    {"cancel-all", cli_cancel_all, "remove every timer of a topic"},
    {"pending", cli_pending, "list a topic's timers in activation order"},
    {"show", cli_show, "one timer: time, lease, attempts, headers, payload"},
    {"dead", cli_dead, "dead letters: list, show, requeue or purge them"},
    {"listen", cli_listen, "print fired timers as JSON lines and ack them"},
    {"stats", cli_stats, "depth, overdue and due-soon forecast per shard"},
    {"top", cli_top, "the stats, refreshed live"},
    {"config", cli_config, "check, show or sample the settings file"},
    {"demo", cli_demo,
     "schedule many timers on a private Redis and watch them fire"},
    {"load", cli_load,
     "load-test a Redis: timers at a rate or in a burst; losses, lateness"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out,
          "usage: timers <command> [options]\n"
          "       timers help [command]\n"
          "       timers --version\n\ncommands:\n");
  for (size_t i = 0; i < COMMAND_COUNT; i++)
    fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "\n'timers <command> --help' describes a command's options.\n"
          "Commands that talk to Redis take --config FILE (default\n"
          "$TIMERS_CONFIG), --redis ADDR, --key-prefix P, --shards N, --json\n"
          "and -v; flags override the environment (TIMERS_<SECTION>_<KEY>),\n"
          "which overrides the file.\n"
          "\nExit status: 0 success, 1 failure (Redis unreachable, timer not\n"
          "found for show/cancel/move, not a dead letter for dead show or\n"
          "requeue, invalid settings file), 2 bad usage.\n");
}

static const command *find_command(const char *name) {
  for (size_t i = 0; i < COMMAND_COUNT; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* `timers help CMD` is `timers CMD --help`. */
static int help(int argc, char **argv) {
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  const command *c = find_command(argv[1]);
  if (!c) {
    fprintf(stderr, "timers: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  char *sub_argv[] = {argv[1], "--help", NULL};
  return c->run(2, sub_argv);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "help") == 0) return help(argc - 1, argv + 1);
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(name, "--version") == 0) {
    printf("timers %d.%d.%d\n", TIMERS_VERSION_MAJOR, TIMERS_VERSION_MINOR,
           TIMERS_VERSION_PATCH);
    return 0;
  }
  const command *c = find_command(name);
  if (!c) {
    fprintf(stderr, "timers: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
  }
  return c->run(argc - 1, argv + 1);
}
