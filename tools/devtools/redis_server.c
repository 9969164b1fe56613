/*
 * redis_server.c - private redis-server processes for tests, demo, benches.
 *
 * Ownership: a redis_server is a caller-allocated record; its folder and
 * child process belong to it until redis_server_stop().
 */
#ifndef _GNU_SOURCE /* also set by the build */
#define _GNU_SOURCE
#endif
#include "redis_server.h"

#include <errno.h>
#include <ftw.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static redisContext *connect_to(const redis_server *rs) {
  struct timeval tv = {1, 0};
  redisContext *c = rs->unix_socket
                        ? redisConnectUnixWithTimeout(rs->addr, tv)
                        : redisConnectWithTimeout("127.0.0.1", rs->port, tv);
  if (c && c->err) {
    redisFree(c);
    return NULL;
  }
  return c;
}

static bool answers_ping(const redis_server *rs) {
  redisContext *c = connect_to(rs);
  if (!c) return false;
  redisReply *r = redisCommand(c, "PING");
  bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  redisFree(c);
  return ok;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static pid_t spawn(const redis_server *rs) {
  char port[16], logfile[300];
  snprintf(port, sizeof port, "%d", rs->port);
  snprintf(logfile, sizeof logfile, "%s/redis.log", rs->dir);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  const char *argv[] = {"redis-server", "--daemonize", "no",
                        "--dir", rs->dir, "--logfile", logfile,
                        "--save", "", "--appendonly",
                        rs->appendonly ? "yes" : "no",
                        "--appendfsync", "no",
                        "--bind", "127.0.0.1", "--port", rs->unix_socket ? "0" : port,
                        "--unixsocket", rs->unix_socket ? rs->addr : "",
                        "--unixsocketperm", "700", NULL};
  execvp("redis-server", (char *const *)argv);
  fprintf(stderr, "redis_server: cannot run redis-server: %s\n",
          strerror(errno));
  _exit(127);
}

/* Forks the server and polls PING every 10 ms for at most 10 s. */
static int launch(redis_server *rs) {
  rs->pid = spawn(rs);
  if (rs->pid < 0) return -1;
  for (int i = 0; i < 1000; i++) {
    if (answers_ping(rs)) return 0;
    int st;
    if (waitpid(rs->pid, &st, WNOHANG) == rs->pid) {
      rs->pid = 0;
      return -1;
    }
    sleep_ms(10);
  }
  redis_server_halt(rs, true);
  return -1;
}

int redis_server_start(redis_server *rs, bool unix_socket, bool appendonly) {
  memset(rs, 0, sizeof *rs);
  rs->unix_socket = unix_socket;
  rs->appendonly = appendonly;
  const char *tmp = getenv("TMPDIR");
  snprintf(rs->dir, sizeof rs->dir, "%s/timers-redis-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(rs->dir)) {
    fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
    return -1;
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    if (unix_socket) {
      snprintf(rs->addr, sizeof rs->addr, "%s/redis.sock", rs->dir);
    } else {
      rs->port = free_port();
      snprintf(rs->addr, sizeof rs->addr, "127.0.0.1:%d", rs->port);
    }
    if (launch(rs) == 0) return 0;
  }
  fprintf(stderr, "redis_server: redis-server did not start (see %s)\n",
          rs->dir);
  return -1;
}

void redis_server_halt(redis_server *rs, bool hard) {
  if (rs->pid <= 0) return;
  kill(rs->pid, hard ? SIGKILL : SIGTERM);
  int st;
  for (int i = 0; i < 1000; i++) { /* 10 s, then force */
    if (waitpid(rs->pid, &st, WNOHANG) == rs->pid) {
      rs->pid = 0;
      return;
    }
    sleep_ms(10);
  }
  kill(rs->pid, SIGKILL);
  waitpid(rs->pid, &st, 0);
  rs->pid = 0;
}

int redis_server_restart(redis_server *rs) {
  redis_server_halt(rs, false);
  return launch(rs);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* Depth-first removal of the server's folder (data, log, socket, AOF dir). */
static void remove_dir(const char *dir) {
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

void redis_server_stop(redis_server *rs) {
  redis_server_halt(rs, false);
  if (rs->dir[0]) remove_dir(rs->dir);
  rs->dir[0] = '\0';
}

long long redis_server_int(const redis_server *rs, const char *fmt, ...) {
  redisContext *c = connect_to(rs);
  if (!c) return -1;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  long long v = -1;
  if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
  if (r) freeReplyObject(r);
  redisFree(c);
  return v;
}
