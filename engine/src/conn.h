/*
 * conn.h - one Redis connection and its loaded scripts. A tm_conn is used by
 * one thread at a time (pollers own theirs; producers borrow from a pool).
 */
#ifndef TIMERS_CONN_H
#define TIMERS_CONN_H

#include <hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "scripts.h"
#include "timers.h"

/* Where and how to connect; parsed once from the config, shared read-only. */
typedef struct tm_redis_opts {
  char *host;   /* NULL for a unix socket */
  int port;
  char *path;   /* unix socket path or NULL */
  char *username, *password;
  int db;
  int connect_timeout_ms, command_timeout_ms;
} tm_redis_opts;

/* Parses "host:port", "host", "/path", "unix:/path" into o (host/path owned
 * by o, freed by tm__redis_opts_free). */
int tm__redis_opts_parse(tm_redis_opts *o, const char *addr);
void tm__redis_opts_free(tm_redis_opts *o);

typedef struct tm_conn {
  redisContext *ctx;          /* NULL while disconnected */
  char sha[TM_SCRIPT_COUNT][41];
  int64_t skew_us;            /* Redis's clock minus ours, at connect */
} tm_conn;

/* Connects, authenticates, selects the db, loads the scripts and measures
 * the clock skew. On failure returns TIMERS_ECONN/TIMERS_EREDIS with the
 * detail set, ctx stays NULL. command_timeout false: blocking reads never
 * time out (subscriber). */
int tm__conn_open(tm_conn *c, const tm_redis_opts *o, bool command_timeout);
void tm__conn_close(tm_conn *c);

/* Appends one command (hiredis format string, or argv). Every command the
 * engine sends goes through these and every reply through tm__conn_reply:
 * the caller reads exactly one reply per command appended, in order. */
int tm__conn_append(tm_conn *c, const char *fmt, ...);
int tm__conn_append_argv(tm_conn *c, int argc, const char **argv,
                         const size_t *argvlen);
/* Append + reply. */
int tm__conn_command(tm_conn *c, redisReply **out, const char *fmt, ...);

/* Appends EVALSHA of script s with nkeys keys then args (argv/argvlen hold
 * keys first; argvlen NULL: NUL-terminated strings). Pipelined: read the
 * reply with tm__conn_reply. */
int tm__conn_append_script(tm_conn *c, tm_script s, int nkeys, int argc,
                           const char **argv, const size_t *argvlen);
/* Reads the next reply. TIMERS_ECONN on I/O failure (the connection is then
 * closed), TIMERS_EREDIS on an error reply (*out holds it), else TIMERS_OK.
 * The caller frees *out with freeReplyObject. */
int tm__conn_reply(tm_conn *c, redisReply **out);

/* One EVALSHA round trip (append + reply). */
int tm__conn_script(tm_conn *c, tm_script s, int nkeys, int argc,
                    const char **argv, const size_t *argvlen,
                    redisReply **out);

/* One EVALSHA round trip whose reply is an integer: *out (0 when the reply
 * is another type or the call failed). argvlen NULL: NUL-terminated. */
int tm__conn_script_int(tm_conn *c, tm_script s, int nkeys, int argc,
                        const char **argv, const size_t *argvlen,
                        long long *out);

/* Reads n pipelined replies, adding the integer ones to *sum. Returns the
 * first error (it stops at a lost connection). */
int tm__conn_sum_replies(tm_conn *c, uint32_t n, long long *sum);

/* Whether an error reply means the scripts must be reloaded. */
bool tm__reply_is_noscript(const redisReply *r);

#endif
