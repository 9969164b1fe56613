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

/* timers schedule TOPIC [PAYLOAD]: schedule one timer, print its id. */
int cli_schedule(int argc, char **argv);

/* timers move TOPIC ID --at TIME | --in D: move a pending timer. */
int cli_move(int argc, char **argv);

/* timers cancel TOPIC ID...: remove timers (exit 1 if one was missing). */
int cli_cancel(int argc, char **argv);

/* timers cancel-all TOPIC: remove every timer of a topic, print how many. */
int cli_cancel_all(int argc, char **argv);

/* timers pending TOPIC: stream a topic's timers in activation order. */
int cli_pending(int argc, char **argv);

/* timers show TOPIC ID: one timer as stored. */
int cli_show(int argc, char **argv);

/* timers dead list|show|requeue|purge TOPIC ...: a topic's dead letters. */
int cli_dead(int argc, char **argv);

/* timers listen TOPIC...: print fired timers as JSON lines and ack them. */
int cli_listen(int argc, char **argv);

/* timers stats [TOPIC...]: depth, overdue and forecast per topic and
 * shard; timers top: the same, refreshed live. */
int cli_stats(int argc, char **argv);
int cli_top(int argc, char **argv);

/* timers config check FILE | show | sample. */
int cli_config(int argc, char **argv);

#endif
