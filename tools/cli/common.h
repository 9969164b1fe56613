/*
 * common.h - helpers shared by the subcommands of the `timers` command line:
 * clocks, SIGINT/SIGTERM handling, flag parsing, the live status line, run
 * tags and timer ids, and the private redis-server.
 *
 * Everything here is for the main thread of a subcommand unless a comment
 * says otherwise. Only the public API of timers.h is used.
 */
#ifndef TIMERS_CLI_COMMON_H
#define TIMERS_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redis_server.h"
#include "timers.h"

/* ---------------------------------------------------------------- clocks */

/* Monotonic clock (system-wide, so comparable between processes of one
 * machine). Thread-safe. */
uint64_t cli_mono_ns(void);
double cli_mono_s(void);

/* -------------------------------------------------------------- signals */

/* The SIGINT/SIGTERM received so far, or 0. Thread-safe. */
int cli_signal(void);

/* Waits up to `seconds` (0: just looks) for SIGINT/SIGTERM, which must be
 * blocked in this thread (cli_redis_open does it); true once one arrived. */
bool cli_interrupted(double seconds);

/* -------------------------------------------------------------- logging */

/* A timers_log_fn writing "timers [level] msg" lines on stderr. */
void cli_log_to_stderr(void *userdata, timers_log_level level,
                       const char *msg);

/* Prints "timers CMD: WHAT: <strerror> (<last error>)" on stderr. */
void cli_fail(const char *cmd, const char *what, int rc);

/* ---------------------------------------------------------------- flags */

typedef struct cli_flag {
  const char *name;    /* "--rate"                                     */
  bool takes_value;    /* false: a switch, applied with value NULL     */
  const char *allowed; /* what a valid value looks like (for errors)   */
} cli_flag;

/* Applies one flag to opts; false if the value is invalid. */
typedef bool (*cli_flag_fn)(void *opts, const char *name, const char *value);

/* Parses argv[1..] ("--name VALUE", "--name=VALUE", switches, -h/--help).
 * Returns 0, 1 when the usage was printed on stdout for --help, or 2 after
 * printing on stderr which flag was wrong, the allowed values and the
 * usage. */
int cli_parse_flags(const char *cmd, int argc, char **argv,
                    const cli_flag *flags, size_t flag_count,
                    cli_flag_fn apply, void *opts, void (*usage)(FILE *));

/* Strict number parsers: the whole string, within [lo, hi]. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);
bool cli_parse_int(const char *s, long lo, long hi, int *out);
bool cli_parse_double(const char *s, double lo, double hi, double *out);

/* A duration in seconds: "1.5" (seconds), "250us", "50ms", "2s", "3m";
 * within [0, hi] seconds. */
bool cli_parse_duration(const char *s, double hi, double *out);

/* ---------------------------------------------------------- status line */

/* A live one-line status: on a terminal rewritten in place ('\r', erase to
 * the end of the line) every tty_every seconds; elsewhere one line every
 * pipe_every seconds, or nothing unless forced. */
typedef struct cli_status {
  FILE *out;
  bool enabled, tty, printed;
  double every, next; /* monotonic seconds */
} cli_status;

void cli_status_init(cli_status *st, FILE *out, bool force, double tty_every,
                     double pipe_every);
/* Whether a line is due now. */
bool cli_status_due(const cli_status *st);
/* Prints a status line (no trailing newline in fmt) and schedules the next. */
void cli_status_printf(cli_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ends the line on a terminal so that ordinary lines can follow. */
void cli_status_end(cli_status *st);

/* -------------------------------------------------------- tags and ids */

/* A fresh 8-hex-digit tag for the ids of one run ("<tag>-<index>"). */
void cli_run_tag(char *tag, size_t cap);

/* The index of id "<tag>-<index>" with index < n, or -1 (another run's).
 * Thread-safe. */
long cli_id_index(const char *tag, size_t tag_len, uint64_t n, const char *id);

/* ------------------------------------------------------- private Redis */

/* Installs the SIGINT/SIGTERM handler, starts a private redis-server (unix
 * socket) unless addr is given, then blocks both signals in the calling
 * thread, so every thread and process it creates later inherits the mask.
 * *out is the address to use (addr, or rs->addr). Returns 0, or 1 with a
 * message on stderr. */
int cli_redis_open(const char *cmd, const char *addr, redis_server *rs,
                   const char **out);

/* Stops the private server (and removes its folder) if one was started. */
void cli_redis_close(redis_server *rs);

#endif
