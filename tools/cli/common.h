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
#include "text.h"
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

/* A timers_log_fn writing "timers [level] msg" lines on stderr, after a
 * newline (so that it never lands in the middle of a live status line). */
void cli_log_to_stderr(void *userdata, timers_log_level level,
                       const char *msg);
/* The same without the leading newline, for commands with no status line.
 * Thread-safe (one fprintf per line). */
void cli_log_line(void *userdata, timers_log_level level, const char *msg);

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

/* Like cli_parse_flags, and also collects up to max_pos positional
 * arguments (words not starting with '-', "-" itself, and everything after
 * "--") into pos[], *npos of them. One more is bad usage (2). */
int cli_parse_args(const char *cmd, int argc, char **argv,
                   const cli_flag *flags, size_t flag_count, cli_flag_fn apply,
                   void *opts, void (*usage)(FILE *), const char **pos,
                   int max_pos, int *npos);

/* Strict number parsers: the whole string, within [lo, hi]. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);
bool cli_parse_int(const char *s, long lo, long hi, int *out);
bool cli_parse_double(const char *s, double lo, double hi, double *out);

/* A duration in seconds: "1.5" (seconds), "250us", "50ms", "2s", "3m",
 * "2h", "1d"; within [0, hi] seconds. */
bool cli_parse_duration(const char *s, double hi, double *out);

/* ------------------------------------------------------ global options */

/* The options of every subcommand that talks to Redis. Settings come from
 * the file (--config, else $TIMERS_CONFIG, else none), then the environment
 * (TIMERS_<SECTION>_<KEY>, applied by timers_settings_load), then these
 * flags, each later source overriding the earlier. */
typedef struct cli_global {
  const char *config;     /* --config FILE                               */
  const char *redis;      /* --redis ADDR                                */
  const char *key_prefix; /* --key-prefix P                              */
  const char *shards;     /* --shards N (validated text)                 */
  bool json;              /* --json                                      */
  bool compat;            /* --compat: the named topics use FASTSTREAM   */
  int verbose;            /* -v: info, -v -v: debug                      */
} cli_global;

/* The rows of the global flags, to splice into a command's flag table;
 * CLI_GLOBAL_COMPAT_FLAG only where --compat means something. */
#define CLI_GLOBAL_FLAGS                                                      \
  {"--config", true, "the path of an INI file (see timers config sample)"},  \
      {"--redis", true, "an address: host:port, /path.sock or unix:/path"},   \
      {"--key-prefix", true, "1 to 128 characters of [A-Za-z0-9_.-/]"},       \
      {"--shards", true, "an integer from 1 to 4096"},                        \
      {"--json", false, "takes no value"},                                    \
      {"--verbose", false, "takes no value"}, {"-v", false, "takes no value"}
#define CLI_GLOBAL_COMPAT_FLAG {"--compat", false, "takes no value"}

/* The usage lines of the global flags. */
#define CLI_GLOBAL_USAGE                                                      \
  "  --config FILE      settings file (default: $TIMERS_CONFIG, if set)\n"    \
  "  --redis ADDR       Redis address: host:port, /path.sock, unix:/path\n"   \
  "  --key-prefix P     first part of every key (default \"timers\")\n"       \
  "  --shards N         shards of a topic new to Redis (default 8)\n"        \
  "  --json             machine-readable output\n"                           \
  "  -v, --verbose      log info (twice: debug) to stderr\n"
#define CLI_GLOBAL_COMPAT_USAGE                                               \
  "  --compat           the topic uses the faststream-redis-timers layout\n"

/* --at TIME / --in D: when a timer is due (schedule, move, dead requeue). */
typedef struct cli_when {
  bool has_at, has_in;
  double at, in; /* Unix seconds; seconds from now */
} cli_when;

#define CLI_WHEN_FLAGS                                                        \
  {"--at", true,                                                              \
   "ISO-8601 with a zone (2026-12-01T10:00:00Z, ...T10:00:00.5+02:00), a "   \
   "Unix timestamp, now, or +DURATION (+30s)"},                               \
      {"--in", true, "a duration, e.g. 30s, 5m, 2h, 1d, 250ms, or seconds"}

#define CLI_WHEN_USAGE                                                        \
  "  --at TIME          due at TIME: ISO-8601 with a zone\n"                 \
  "                     (2026-12-01T10:00:00Z, ...T10:00:00.5+02:00), a\n"   \
  "                     Unix timestamp (1780000000.25), now, or +30s\n"      \
  "  --in D             due after D: 30s, 5m, 2h, 1d, 250ms (a bare\n"       \
  "                     number is seconds)\n"

/* Applies name if it is --at or --in: true, with *ok whether the value was
 * valid. False for any other flag. */
bool cli_when_apply(cli_when *w, const char *name, const char *value,
                    bool *ok);
/* The time it names: at, now + in, or now when neither was given. */
double cli_when_time(const cli_when *w, double now);

/* Applies name if it is a global flag: true, with *ok whether the value was
 * valid. False for any other flag. */
bool cli_global_apply(cli_global *g, const char *name, const char *value,
                      bool *ok);

/* Loads the settings (file, environment, flags). Returns 0, or 1 after
 * printing the library's message (file:line: ...) on stderr. */
int cli_settings_open(const char *cmd, const cli_global *g,
                      timers_settings **out);

/* Options of topic: its [topic NAME] section, and with --compat the
 * FASTSTREAM layout. False when both are absent (nothing to declare). */
bool cli_topic_options(const cli_global *g, const timers_settings *s,
                       const char *topic, timers_subscribe_options *opts);
/* The layout of topic from those options; NATIVE without any. */
timers_layout cli_topic_layout(const cli_global *g, const timers_settings *s,
                               const char *topic);

/* Topic and id arguments, checked before any I/O by the library's own
 * rules (timers_check_name) for each topic's layout: --compat, else its
 * [topic NAME] section's, else NATIVE. The ids, if any, are of topics[0];
 * topic_what and id_what name the arguments in messages ("TOPIC", "--id"). */
typedef struct cli_names {
  const char *const *topics;
  size_t ntopics;
  const char *topic_what;
  const char *const *ids;
  size_t nids;
  const char *id_what;
} cli_names;

/* 0; 2 after printing on stderr which argument is invalid, the library's
 * reason and what the topic's layout allows; 1 when the check itself
 * failed (out of memory). */
int cli_names_check(const char *cmd, const cli_global *g,
                    const timers_settings *s, const cli_names *n);

/* Creates an engine from s, logging to stderr (level: -v, else the
 * file's), and declares each of topics[0..n) that has options. Not
 * started: scheduling and inspecting need no pollers. Returns 0, or 1 with
 * a message on stderr (*out is then NULL). */
int cli_engine_open(const char *cmd, const cli_global *g,
                    const timers_settings *s, const char *const *topics,
                    size_t n, timers_engine **out);

/* Settings, the names check, then an engine declaring names->topics, for
 * the producer-side commands; on failure both are freed and *s, *e are
 * NULL. Returns 0, 1 (settings or engine) or 2 (an invalid name). */
int cli_client_open(const char *cmd, const cli_global *g,
                    const cli_names *names, timers_settings **s,
                    timers_engine **e);
void cli_client_close(timers_settings *s, timers_engine *e);

/* Prints up to limit (0: all) entries of it on stdout in form (text.h
 * cli_list_print, time_key naming the time in JSON); 0, or 1 after a
 * failure (printed). The caller closes it. */
int cli_iter_print(const char *cmd, timers_pending_iter *it,
                   cli_list_form form, const char *time_key, long limit);

/* Installs the SIGINT/SIGTERM handler and blocks both signals in the
 * calling thread (see cli_interrupted); call before creating threads. */
void cli_signals_take(void);

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
