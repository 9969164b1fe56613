/*
 * conn.c - connecting (TCP or unix socket, AUTH, SELECT), loading scripts and
 * the EVALSHA calls. hiredis failures (a NULL context, c->err/c->errstr) are
 * mapped here into TIMERS_ECONN / TIMERS_EREDIS with their text.
 */
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"

int tm__redis_opts_parse(tm_redis_opts *o, const char *addr) {
  if (!addr || !*addr) addr = "127.0.0.1:6379";
  if (strncmp(addr, "unix:", 5) == 0) addr += 5;
  if (addr[0] == '/') {
    o->path = tm__strdup(addr);
    return o->path ? TIMERS_OK : tm__error(TIMERS_ENOMEM, "out of memory");
  }
  const char *colon = strrchr(addr, ':');
  size_t hlen = colon ? (size_t)(colon - addr) : strlen(addr);
  o->port = 6379;
  if (colon) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 1 || port > 65535)
      return tm__error(TIMERS_EINVAL,
                       "redis address '%s': port must be 1..65535", addr);
    o->port = (int)port;
  }
  if (hlen == 0)
    return tm__error(TIMERS_EINVAL, "redis address '%s' has no host", addr);
  o->host = tm__malloc(hlen + 1);
  if (!o->host) return tm__error(TIMERS_ENOMEM, "out of memory");
  memcpy(o->host, addr, hlen);
  o->host[hlen] = '\0';
  return TIMERS_OK;
}

void tm__redis_opts_free(tm_redis_opts *o) {
  tm__free(o->host);
  tm__free(o->path);
  tm__free(o->username);
  tm__free(o->password);
  memset(o, 0, sizeof *o);
}

static struct timeval ms_to_tv(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  return tv;
}

static const char *where(const tm_redis_opts *o, char *buf, size_t n) {
  if (o->path) return o->path;
  snprintf(buf, n, "%s:%d", o->host, o->port);
  return buf;
}

/* Runs one command on a fresh connection during set-up; status or integer. */
static int setup_command(tm_conn *c, const tm_redis_opts *o, int argc,
                         const char **argv) {
  char at[300];
  redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
  if (!r)
    return tm__error(TIMERS_ECONN, "redis %s: %s failed: %s",
                     where(o, at, sizeof at), argv[0], c->ctx->errstr);
  int rc = TIMERS_OK;
  if (r->type == REDIS_REPLY_ERROR)
    rc = tm__error(TIMERS_EREDIS, "redis %s: %s: %s", where(o, at, sizeof at),
                   argv[0], r->str);
  freeReplyObject(r);
  return rc;
}

static int load_scripts(tm_conn *c, const tm_redis_opts *o) {
  char at[300];
  for (int s = 0; s < TM_SCRIPT_COUNT; s++) {
    redisReply *r = redisCommand(c->ctx, "SCRIPT LOAD %s", tm__script_source[s]);
    if (!r)
      return tm__error(TIMERS_ECONN, "redis %s: SCRIPT LOAD failed: %s",
                       where(o, at, sizeof at), c->ctx->errstr);
    int ok = r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok) memcpy(c->sha[s], r->str, 41);
    int rc = ok ? TIMERS_OK
                : tm__error(TIMERS_EREDIS, "redis %s: SCRIPT LOAD: %s",
                            where(o, at, sizeof at),
                            r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    freeReplyObject(r);
    if (rc) return rc;
  }
  return TIMERS_OK;
}

static int authenticate(tm_conn *c, const tm_redis_opts *o) {
  int rc = TIMERS_OK;
  if (o->password && o->username) {
    const char *argv[] = {"AUTH", o->username, o->password};
    rc = setup_command(c, o, 3, argv);
  } else if (o->password) {
    const char *argv[] = {"AUTH", o->password};
    rc = setup_command(c, o, 2, argv);
  }
  if (rc == TIMERS_OK && o->db) {
    char db[16];
    snprintf(db, sizeof db, "%d", o->db);
    const char *argv[] = {"SELECT", db};
    rc = setup_command(c, o, 2, argv);
  }
  return rc;
}

/* Redis's clock minus ours, from TIME, halfway through the round trip. */
static int measure_skew(tm_conn *c, const tm_redis_opts *o) {
  char at[300];
  int64_t before = tm__secs_to_us(tm__wall());
  redisReply *r = redisCommand(c->ctx, "TIME");
  int64_t after = tm__secs_to_us(tm__wall());
  if (!r)
    return tm__error(TIMERS_ECONN, "redis %s: TIME failed: %s",
                     where(o, at, sizeof at), c->ctx->errstr);
  int rc = TIMERS_OK;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[0]->type == REDIS_REPLY_STRING &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    int64_t server = strtoll(r->element[0]->str, NULL, 10) * 1000000 +
                     strtoll(r->element[1]->str, NULL, 10);
    c->skew_us = server - (before + (after - before) / 2);
  } else {
    rc = tm__error(TIMERS_EREDIS, "redis %s: TIME: unexpected reply",
                   where(o, at, sizeof at));
  }
  freeReplyObject(r);
  return rc;
}

int tm__conn_open(tm_conn *c, const tm_redis_opts *o, bool command_timeout) {
  char at[300];
  struct timeval tv = ms_to_tv(o->connect_timeout_ms);
  c->ctx = o->path ? redisConnectUnixWithTimeout(o->path, tv)
                   : redisConnectWithTimeout(o->host, o->port, tv);
  if (!c->ctx)
    return tm__error(TIMERS_ECONN, "redis %s: cannot allocate a connection",
                     where(o, at, sizeof at));
  int rc = TIMERS_OK;
  if (c->ctx->err)
    rc = tm__error(TIMERS_ECONN, "redis %s: %s", where(o, at, sizeof at),
                   c->ctx->errstr);
  if (rc == TIMERS_OK &&
      redisSetTimeout(c->ctx, ms_to_tv(o->command_timeout_ms)) != REDIS_OK)
    rc = tm__error(TIMERS_ECONN, "redis %s: cannot set timeout",
                   where(o, at, sizeof at));
  if (rc == TIMERS_OK) rc = authenticate(c, o);
  if (rc == TIMERS_OK) rc = load_scripts(c, o);
  if (rc == TIMERS_OK) rc = measure_skew(c, o);
  if (rc == TIMERS_OK && !command_timeout) {
    struct timeval forever = {0, 0};
    if (redisSetTimeout(c->ctx, forever) != REDIS_OK)
      rc = tm__error(TIMERS_ECONN, "redis: cannot clear timeout");
  }
  if (rc != TIMERS_OK) tm__conn_close(c);
  return rc;
}

void tm__conn_close(tm_conn *c) {
  if (c->ctx) redisFree(c->ctx);
  c->ctx = NULL;
}

static int append_result(tm_conn *c, int r) {
  if (r == REDIS_OK) return TIMERS_OK;
  return tm__error(c->ctx->err == REDIS_ERR_OOM ? TIMERS_ENOMEM : TIMERS_ECONN,
                   "redis: cannot queue a command: %s", c->ctx->errstr);
}

int tm__conn_append(tm_conn *c, const char *fmt, ...) {
  if (!c->ctx) return tm__error(TIMERS_ECONN, "redis: not connected");
  va_list ap;
  va_start(ap, fmt);
  int r = redisvAppendCommand(c->ctx, fmt, ap);
  va_end(ap);
  return append_result(c, r);
}

int tm__conn_append_argv(tm_conn *c, int argc, const char **argv,
                         const size_t *argvlen) {
  if (!c->ctx) return tm__error(TIMERS_ECONN, "redis: not connected");
  return append_result(c, redisAppendCommandArgv(c->ctx, argc, argv, argvlen));
}

int tm__conn_command(tm_conn *c, redisReply **out, const char *fmt, ...) {
  *out = NULL;
  if (!c->ctx) return tm__error(TIMERS_ECONN, "redis: not connected");
  va_list ap;
  va_start(ap, fmt);
  int r = redisvAppendCommand(c->ctx, fmt, ap);
  va_end(ap);
  int rc = append_result(c, r);
  return rc == TIMERS_OK ? tm__conn_reply(c, out) : rc;
}

int tm__conn_append_script(tm_conn *c, tm_script s, int nkeys, int argc,
                           const char **argv, const size_t *argvlen) {
  enum { INLINE = 64 };
  const char *sv[INLINE + 3];
  size_t sl[INLINE + 3];
  const char **av = sv;
  size_t *al = sl;
  if (argc > INLINE) {
    av = tm__malloc(sizeof *av * (size_t)(argc + 3));
    al = tm__malloc(sizeof *al * (size_t)(argc + 3));
    if (!av || !al) {
      tm__free(av), tm__free(al);
      return tm__error(TIMERS_ENOMEM, "out of memory");
    }
  }
  char nk[16];
  av[0] = "EVALSHA", al[0] = 7;
  av[1] = c->sha[s], al[1] = 40;
  al[2] = (size_t)snprintf(nk, sizeof nk, "%d", nkeys), av[2] = nk;
  memcpy(av + 3, argv, sizeof *av * (size_t)argc);
  for (int k = 0; k < argc; k++)
    al[3 + k] = argvlen ? argvlen[k] : strlen(argv[k]);
  int rc = tm__conn_append_argv(c, argc + 3, av, al);
  if (av != sv) tm__free(av), tm__free(al);
  return rc;
}

int tm__conn_reply(tm_conn *c, redisReply **out) {
  void *r = NULL;
  *out = NULL;
  if (!c->ctx) return tm__error(TIMERS_ECONN, "redis: not connected");
  if (redisGetReply(c->ctx, &r) != REDIS_OK || !r) {
    int rc = tm__error(TIMERS_ECONN, "redis: %s",
                       c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
    tm__conn_close(c);
    return rc;
  }
  *out = r;
  if ((*out)->type != REDIS_REPLY_ERROR) return TIMERS_OK;
  if (tm__reply_is_noscript(*out)) {
    /* Scripts were flushed: a reconnect reloads them; callers retry. */
    tm__conn_close(c);
    return tm__error(TIMERS_ECONN, "redis: scripts were flushed; reloading");
  }
  if (strncmp((*out)->str, "OOM ", 4) == 0)
    return tm__error(TIMERS_EREDIS, "redis is out of memory (maxmemory "
                     "reached, no eviction): %s", (*out)->str);
  return tm__error(TIMERS_EREDIS, "redis: %s", (*out)->str);
}

int tm__conn_script(tm_conn *c, tm_script s, int nkeys, int argc,
                    const char **argv, const size_t *argvlen,
                    redisReply **out) {
  *out = NULL; /* also when the append fails */
  int rc = tm__conn_append_script(c, s, nkeys, argc, argv, argvlen);
  return rc ? rc : tm__conn_reply(c, out);
}

int tm__conn_script_int(tm_conn *c, tm_script s, int nkeys, int argc,
                        const char **argv, const size_t *argvlen,
                        long long *out) {
  redisReply *r = NULL;
  int rc = tm__conn_script(c, s, nkeys, argc, argv, argvlen, &r);
  *out = rc == TIMERS_OK && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r) freeReplyObject(r);
  return rc;
}

int tm__conn_sum_replies(tm_conn *c, uint32_t n, long long *sum) {
  int rc = TIMERS_OK;
  for (uint32_t k = 0; k < n; k++) {
    redisReply *r;
    int rr = tm__conn_reply(c, &r);
    if (rr == TIMERS_OK && r->type == REDIS_REPLY_INTEGER) *sum += r->integer;
    if (r) freeReplyObject(r);
    if (rc == TIMERS_OK) rc = rr;
    if (rr == TIMERS_ECONN) break;
  }
  return rc;
}

bool tm__reply_is_noscript(const redisReply *r) {
  return r && r->type == REDIS_REPLY_ERROR &&
         strncmp(r->str, "NOSCRIPT", 8) == 0;
}
