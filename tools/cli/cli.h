/*
 * cli.h - subcommands of the `timers` command line.
 *
 * Each subcommand lives in its own file under tools/cli/ and gets the
 * arguments after its name (argv[0] is the subcommand's name). It returns
 * the process exit status: 0 success, 1 failure, 2 bad usage. `--help`
 * prints its usage on stdout and returns 0.
 */
#ifndef TIMERS_CLI_H
#define TIMERS_CLI_H

/* timers demo: schedule many timers on a private Redis and watch them fire. */
int cli_demo(int argc, char **argv);

/* timers load: load-test a Redis (rate or burst mode), report fires,
 * duplicates, losses and lateness. */
int cli_load(int argc, char **argv);

#endif
