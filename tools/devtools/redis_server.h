/*
 * redis_server.h - start and stop a private redis-server for tests, the demo
 * and the benchmarks. Not part of the library: a developer tool.
 *
 * The server runs in a fresh temporary folder (its data, log and, in unix
 * mode, its socket), which redis_server_stop() removes. TCP mode picks a
 * free loopback port. The server is started with --daemonize no as a child
 * of the calling process; a parent-death signal stops it if we crash.
 */
#ifndef TIMERS_REDIS_SERVER_H
#define TIMERS_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct redis_server {
  pid_t pid;
  int port;           /* 0 in unix-socket mode                      */
  bool unix_socket;
  bool appendonly;
  char dir[256];      /* temporary folder, owned                    */
  char addr[300];     /* "127.0.0.1:PORT" or the socket path        */
} redis_server;

/* Starts a server and waits (bounded, 10 s) until it answers PING.
 * Returns 0 or -1 with a message on stderr. */
int redis_server_start(redis_server *rs, bool unix_socket, bool appendonly);

/* Stops the process (SIGKILL when hard, else SIGTERM), keeps the folder and
 * port so that redis_server_restart() brings the same data back. */
void redis_server_halt(redis_server *rs, bool hard);
int redis_server_restart(redis_server *rs);

/* Stops the server if running and removes its folder. Idempotent. */
void redis_server_stop(redis_server *rs);

/* Runs one command (argv style, via hiredis) and returns its integer reply
 * or -1 on error; for tests that read INFO-like numbers use the string API. */
long long redis_server_int(const redis_server *rs, const char *fmt, ...);

#endif
