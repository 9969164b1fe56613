/*
 * test_cli.c - the `timers` command line, run as a program against a
 * private redis-server: schedule (argument and stdin payloads, --in, --at,
 * --header, --content-type), show, pending (its three output forms),
 * cancel, cancel-all, move, listen (--count hands extras back,
 * --nack-delay), dead list/show/requeue/purge (dead letters made by listen
 * --reject and --nack on topics configured for them), stats (--json,
 * --prometheus, dead counts), config check and sample, --compat and
 * [topic NAME] layouts (topics and ids each layout accepts, and refuses),
 * load's [topic load.N] settings, and the exit codes.
 *
 * Each run forks and execs the binary (TIMERS_CLI_PATH) with pipes for
 * stdin, stdout and stderr and a deadline: a run that outlives it is
 * killed and fails the test. The test process itself runs no engine
 * threads, so forking is safe.
 */
#include <fcntl.h>
#include <hiredis.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_util.h"

#ifndef TIMERS_CLI_PATH
#error "TIMERS_CLI_PATH must name the built timers binary"
#endif

#define RUN_DEADLINE_MS 20000
#define OUT_CAP 65536

static redis_server g_rs;
static char g_dir[256]; /* temporary folder for config files */

typedef struct run_result {
  int status; /* exit code, or 128 + signal */
  char out[OUT_CAP], err[OUT_CAP];
  size_t out_len; /* bytes in out (it may hold NULs: pending -0) */
} run_result;

static run_result g_res;

/* ------------------------------------------------------------ running */

typedef struct child {
  pid_t pid;
  int in, out, err; /* our ends of the pipes; -1 once closed */
} child;

static void child_start(child *c, char *const argv[]) {
  int pin[2], pout[2], perr[2];
  CHECK(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
  c->pid = fork();
  CHECK(c->pid >= 0);
  if (c->pid == 0) {
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    for (int fd = 3; fd < 256; fd++) close(fd);
    execv(TIMERS_CLI_PATH, argv);
    _exit(127);
  }
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  c->in = pin[1];
  c->out = pout[0];
  c->err = perr[0];
  signal(SIGPIPE, SIG_IGN);
}

/* Reads what is ready on fd into buf (NUL-terminated); closes it at EOF. */
static void drain_fd(int *fd, char *buf, size_t *len) {
  char tmp[4096];
  ssize_t n = read(*fd, tmp, sizeof tmp);
  if (n <= 0) {
    close(*fd);
    *fd = -1;
    return;
  }
  size_t k = (size_t)n < OUT_CAP - 1 - *len ? (size_t)n : OUT_CAP - 1 - *len;
  memcpy(buf + *len, tmp, k);
  *len += k;
  buf[*len] = '\0';
}

/* Collects output until both pipes close and the child exits, within the
 * deadline (then it is killed and the test fails). */
static void child_finish(child *c, run_result *r, int deadline_ms,
                         const char *what) {
  size_t olen = 0, elen = 0;
  r->out[0] = r->err[0] = '\0';
  double end = mono_ms() + deadline_ms;
  while (c->out >= 0 || c->err >= 0) {
    struct pollfd p[2] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}};
    int left = (int)(end - mono_ms());
    if (left <= 0) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, NULL, 0);
      test_fail(__FILE__, __LINE__, "%s: no exit within %d ms", what,
                deadline_ms);
    }
    if (poll(p, 2, left < 100 ? left : 100) < 0) continue;
    if (c->out >= 0 && p[0].revents) drain_fd(&c->out, r->out, &olen);
    if (c->err >= 0 && p[1].revents) drain_fd(&c->err, r->err, &elen);
  }
  r->out_len = olen;
  int st = 0;
  CHECK(waitpid(c->pid, &st, 0) == c->pid);
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs `timers ARGS... --redis ADDR` (no --redis when the first argument
 * is "config" or "frob") with input on stdin; returns the exit code, the
 * output in g_res. */
static int run_in(const char *input, const char *arg0, ...) {
  char *argv[64];
  int n = 0;
  argv[n++] = "timers";
  va_list ap;
  va_start(ap, arg0);
  for (const char *a = arg0; a && n < 60; a = va_arg(ap, const char *))
    argv[n++] = (char *)a;
  va_end(ap);
  if (strcmp(arg0, "config") != 0 && strcmp(arg0, "frob") != 0) {
    argv[n++] = "--redis";
    argv[n++] = g_rs.addr;
  }
  argv[n] = NULL;
  child c;
  child_start(&c, argv);
  if (input) CHECK(write(c.in, input, strlen(input)) == (ssize_t)strlen(input));
  close(c.in);
  child_finish(&c, &g_res, RUN_DEADLINE_MS, arg0);
  return g_res.status;
}

#define RUN(...) run_in(NULL, __VA_ARGS__, (const char *)NULL)
#define RUN_STDIN(in, ...) run_in(in, __VA_ARGS__, (const char *)NULL)

#define CHECK_RUN(want, call)                                                 \
  do {                                                                        \
    int rr_ = (call);                                                         \
    CHECK_MSG(rr_ == (want),                                                  \
              "%s exited %d, want %d\n--- stdout:\n%s\n--- stderr:\n%s", #call, \
              rr_, (want), g_res.out, g_res.err);                             \
  } while (0)

#define CHECK_HAS(text, needle)                                               \
  CHECK_MSG(strstr((text), (needle)) != NULL, "'%s' not in:\n%s", (needle),    \
            (text))

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static size_t count_of(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* --------------------------------------------------------- JSON syntax */

static const char *json_value(const char *p);

static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
  return p;
}

static const char *json_string(const char *p) {
  if (*p++ != '"') return NULL;
  for (; *p && *p != '"'; p++) {
    if ((unsigned char)*p < 0x20) return NULL;
    if (*p == '\\' && !*++p) return NULL;
  }
  return *p == '"' ? p + 1 : NULL;
}

static const char *json_list(const char *p, char close, bool object) {
  p = json_ws(p + 1);
  if (*p == close) return p + 1;
  for (;;) {
    if (object) {
      if (!(p = json_string(json_ws(p)))) return NULL;
      p = json_ws(p);
      if (*p++ != ':') return NULL;
    }
    if (!(p = json_value(p))) return NULL;
    p = json_ws(p);
    if (*p == close) return p + 1;
    if (*p++ != ',') return NULL;
  }
}

static const char *json_value(const char *p) {
  p = json_ws(p);
  if (*p == '{') return json_list(p, '}', true);
  if (*p == '[') return json_list(p, ']', false);
  if (*p == '"') return json_string(p);
  if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) return p + 4;
  if (strncmp(p, "false", 5) == 0) return p + 5;
  char *end;
  strtod(p, &end);
  return end == p ? NULL : end;
}

/* Each line of text is one complete JSON value. */
static bool json_lines_valid(const char *text) {
  while (*text) {
    const char *end = json_value(text);
    if (!end || *end != '\n') return false;
    text = end + 1;
  }
  return true;
}

/* ------------------------------------------------------------- tests */

static void test_schedule_show(void) {
  CHECK_RUN(0, RUN("schedule", "t", "hello", "--in", "30s", "--id", "t-1",
                   "--header", "a=b", "--header", "k=v=2", "--json"));
  CHECK_HAS(g_res.out, "\"id\":\"t-1\"");
  CHECK_HAS(g_res.out, "\"topic\":\"t\"");
  CHECK(json_lines_valid(g_res.out));

  CHECK_RUN(0, RUN_STDIN("from stdin", "schedule", "t"));
  char id[64];
  CHECK_EQ_INT(strlen(g_res.out), TIMERS_ID_GEN_LEN + 1);
  snprintf(id, sizeof id, "%.*s", TIMERS_ID_GEN_LEN, g_res.out);
  CHECK_RUN(0, RUN("show", "t", id, "--json"));
  CHECK_HAS(g_res.out, "\"payload\":\"from stdin\"");
  CHECK_RUN(0, RUN_STDIN("dash", "schedule", "t", "-", "--id", "t-dash",
                         "--in", "2h"));
  CHECK_RUN(0, RUN("show", "t", "t-dash", "--json"));
  CHECK_HAS(g_res.out, "\"payload\":\"dash\"");

  CHECK_RUN(0, RUN("schedule", "t", "later", "--id", "at-1", "--at",
                   "2030-01-02T03:04:05.250+01:00"));
  CHECK_RUN(0, RUN("show", "t", "at-1", "--json"));
  CHECK_HAS(g_res.out, "\"activate_at\":\"2030-01-02T02:04:05.250000Z\"");
  CHECK(json_lines_valid(g_res.out));

  CHECK_RUN(0, RUN("show", "t", "t-1"));
  CHECK_HAS(g_res.out, "due:");
  CHECK_HAS(g_res.out, "(in ");
  CHECK_HAS(g_res.out, "attempts:  0");
  CHECK_HAS(g_res.out, "leased:    no");
  CHECK_HAS(g_res.out, "a=b");
  CHECK_HAS(g_res.out, "hello");
  CHECK_RUN(0, RUN("show", "t", "t-1", "--json"));
  CHECK_HAS(g_res.out, "\"headers\":{\"a\":\"b\",\"k\":\"v=2\"}");
  CHECK_HAS(g_res.out, "\"payload\":\"hello\"");
  CHECK_HAS(g_res.out, "\"attempts\":0");
  CHECK_RUN(1, RUN("show", "t", "missing"));
  CHECK_HAS(g_res.err, "missing");
}

static void test_pending(void) {
  /* t: t-1 (in 30 s), the stdin one (now), t-dash (2 h), at-1 (2030) */
  CHECK_RUN(0, RUN("pending", "t"));
  CHECK_EQ_INT(count_lines(g_res.out), 4);
  CHECK_HAS(g_res.out, "t-1 ");
  CHECK_RUN(0, RUN("pending", "t", "--before", "+1m"));
  CHECK_EQ_INT(count_lines(g_res.out), 2);
  CHECK_RUN(0, RUN("pending", "t", "--before", "2029-01-01T00:00:00Z"));
  CHECK_EQ_INT(count_lines(g_res.out), 3);
  CHECK_RUN(0, RUN("pending", "t", "--limit", "1", "--json"));
  CHECK_EQ_INT(count_lines(g_res.out), 1);
  CHECK_HAS(g_res.out, "\"at\":\"");
  CHECK(json_lines_valid(g_res.out));
}

static void test_stats(void) {
  CHECK_RUN(0, RUN("schedule", "u", "x", "--in", "5m"));
  CHECK_RUN(0, RUN("stats", "t", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "\"topic\":\"t\",\"shards\":8,\"pending\":4,");
  CHECK_RUN(0, RUN("stats", "t"));
  CHECK_HAS(g_res.out, "PENDING");
  CHECK_RUN(0, RUN("stats", "t", "u", "--prometheus"));
  CHECK_HAS(g_res.out, "timers_pending{topic=\"t\",shard=\"0\"}");
  CHECK_HAS(g_res.out, "timers_pending{topic=\"u\",shard=\"0\"}");
  CHECK_EQ_INT(count_of(g_res.out, "# TYPE timers_pending gauge"), 1);
  CHECK_RUN(0, RUN("top", "t", "--iterations", "2", "--interval", "100ms"));
  CHECK_HAS(g_res.out, "PENDING/S");
  CHECK_RUN(2, RUN("stats"));
}

static void test_cancel(void) {
  CHECK_RUN(0, RUN("cancel", "t", "t-1"));
  CHECK_HAS(g_res.out, "cancelled t-1");
  CHECK_RUN(1, RUN("cancel", "t", "t-1"));
  CHECK_HAS(g_res.out, "not found t-1");
  CHECK_RUN(0, RUN("cancel-all", "t", "--json"));
  CHECK_HAS(g_res.out, "\"removed\":3");
  CHECK_RUN(0, RUN("cancel-all", "t"));
  CHECK_HAS(g_res.out, "0\n");
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void test_config_file(void) {
  char good[300], bad[300], sample[300];
  snprintf(good, sizeof good, "%s/good.ini", g_dir);
  snprintf(bad, sizeof bad, "%s/bad.ini", g_dir);
  snprintf(sample, sizeof sample, "%s/sample.ini", g_dir);
  write_file(good, "[engine]\nshards = 3\n\n[topic fs]\nlayout = faststream\n");
  write_file(bad, "[redis]\ndb = 0\n[engine]\nworkers = 0\n");
  CHECK_RUN(0, RUN("config", "check", good));
  CHECK_HAS(g_res.out, "shards = 3");
  CHECK_HAS(g_res.out, "[topic fs]");
  CHECK_RUN(0, RUN("config", "check", good, "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_RUN(1, RUN("config", "check", bad));
  char where[320];
  snprintf(where, sizeof where, "%s:4", bad);
  CHECK_HAS(g_res.err, where);
  CHECK_HAS(g_res.err, "workers");
  CHECK_RUN(0, RUN("config", "sample"));
  /* The commented sample in the repository is this output, kept in step. */
  FILE *f = fopen(TIMERS_SOURCE_DIR "/tools/timers.sample.ini", "r");
  CHECK(f != NULL);
  static char repo[OUT_CAP];
  size_t n = fread(repo, 1, sizeof repo - 1, f);
  fclose(f);
  repo[n] = '\0';
  CHECK_MSG(strcmp(repo, g_res.out) == 0,
            "tools/timers.sample.ini differs from `timers config sample`; "
            "regenerate it with: timers config sample > tools/timers.sample.ini");
  write_file(sample, g_res.out);
  CHECK_RUN(0, RUN("config", "check", sample));
  CHECK_RUN(2, RUN("config", "frob"));
  /* the file's [topic fs] gives the layout, flags beat the file */
  CHECK_RUN(0, RUN("config", "show", "--config", good, "--shards", "5"));
  CHECK_HAS(g_res.out, "shards = 5");
  CHECK_RUN(0, RUN("schedule", "fs", "p", "--id", "f-1", "--config", good));
  CHECK_RUN(0, RUN("stats", "--config", good, "--json"));
  CHECK_HAS(g_res.out, "\"topic\":\"fs\",\"shards\":1,\"pending\":1,");
}

/* The raw score of member in key, or -1 when absent. */
static double zscore(const char *key, const char *member) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", g_rs.port, tv);
  CHECK(c && !c->err);
  redisReply *r = redisCommand(c, "ZSCORE %s %s", key, member);
  CHECK(r != NULL);
  double v = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : -1;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

static void test_compat(void) {
  CHECK_RUN(0, RUN("schedule", "fsc", "hi", "--compat", "--id", "c-1",
                   "--in", "1h"));
  double s = zscore("timers_timeline:fsc", "c-1");
  CHECK_MSG(s > timers_now() + 3500 && s < timers_now() + 3700,
            "ZSCORE timers_timeline:fsc c-1 = %f", s);
  CHECK_RUN(0, RUN("show", "fsc", "c-1", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"payload\":\"hi\"");
  CHECK_RUN(0, RUN("pending", "fsc", "--compat"));
  CHECK_EQ_INT(count_lines(g_res.out), 1);
}

static void test_listen(void) {
  char *argv[] = {"timers", "listen", "l", "--count", "2", "--timeout",
                  "20s", "--redis", g_rs.addr, NULL};
  child c;
  child_start(&c, argv);
  close(c.in);
  CHECK_RUN(0, RUN("schedule", "l", "one", "--in", "200ms", "--id", "l-1",
                   "--header", "h=1"));
  CHECK_RUN(0, RUN("schedule", "l", "two", "--in", "200ms", "--id", "l-2"));
  static run_result r;
  child_finish(&c, &r, RUN_DEADLINE_MS + 5000, "listen");
  CHECK_MSG(r.status == 0, "listen exited %d\n%s\n%s", r.status, r.out, r.err);
  CHECK_EQ_INT(count_lines(r.out), 2);
  CHECK(json_lines_valid(r.out));
  CHECK_HAS(r.out, "\"id\":\"l-1\"");
  CHECK_HAS(r.out, "\"headers\":{\"h\":\"1\"},\"payload\":\"one\"");
  CHECK_HAS(r.out, "\"headers\":{},\"payload\":\"two\"");
  CHECK_HAS(r.out, "\"attempt\":1");
  CHECK_HAS(r.out, "\"fired_at\":\"");
  CHECK_RUN(0, RUN("pending", "l"));
  CHECK_EQ_INT(count_lines(g_res.out), 0); /* acked */
}

/* text is one JSON value (over several lines). */
static bool json_valid(const char *text) {
  const char *end = json_value(text);
  return end && *json_ws(end) == '\0';
}

/* The number after "key": in text (its first occurrence), or -1. */
static double json_number(const char *text, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(text, pat);
  return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* The shard count a topic's engines recorded in Redis, or -1. */
static long meta_shards(const char *prefix, const char *topic) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", g_rs.port, tv);
  CHECK(c && !c->err);
  redisReply *r = redisCommand(c, "HGET %s:{%s}:meta shards", prefix, topic);
  CHECK(r != NULL);
  long v = r->type == REDIS_REPLY_STRING ? strtol(r->str, NULL, 10) : -1;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

/* `timers load --config` gives load.N the options of its [topic load.N]
 * section. Each run has its own key prefix: a topic's shard count, once
 * recorded, is fixed. */
static void test_load_topic_config(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/load.ini", g_dir);
  /* shards: recorded in Redis. max_inflight = 1 with 4 workers: handlers
   * of 50 ms run one at a time, so 12 fires span at least 11 x 50 ms
   * (about 150 ms when 4 run at once). */
  write_file(path, "[topic load.0]\nshards = 3\nmax_inflight = 1\n");
  CHECK_RUN(0, RUN("load", "--config", path, "--burst", "12", "--workers",
                   "4", "--handler", "sleep:50ms", "--key-prefix", "lc1",
                   "--json"));
  CHECK(json_valid(g_res.out));
  CHECK_EQ_INT(meta_shards("lc1", "load.0"), 3);
  CHECK_MSG(json_number(g_res.out, "fire_window_s") >= 0.55,
            "max_inflight ignored:\n%s", g_res.out);
  CHECK_HAS(g_res.err, "topic load.0: layout native, shards 3");
  CHECK_HAS(g_res.err, "1 topic(s) x 3 shards");
  CHECK_EQ_INT(json_number(g_res.out, "shards"), 3);
  /* --shards beats the section's shards. */
  CHECK_RUN(0, RUN("load", "--config", path, "--burst", "2", "--shards", "5",
                   "--key-prefix", "lc2", "--json"));
  CHECK_EQ_INT(meta_shards("lc2", "load.0"), 5);
  /* lease_ms = 100 under handlers of 300 ms on one worker: the engine
   * extends each running handler's lease (with the default 30 s lease a
   * 300 ms handler needs no extension), and nothing is delivered twice. */
  write_file(path, "[topic load.0]\nlease_ms = 100\n");
  CHECK_RUN(0, RUN("load", "--config", path, "--burst", "2", "--workers", "1",
                   "--handler", "sleep:300ms", "--key-prefix", "lc3",
                   "--json"));
  CHECK(json_valid(g_res.out));
  CHECK_MSG(json_number(g_res.out, "extended") >= 2,
            "lease_ms ignored:\n%s", g_res.out);
  CHECK_EQ_INT(json_number(g_res.out, "duplicates"), 0);
}

/* The quick start's main job, small: every timer fired exactly once. */
static void test_demo(void) {
  CHECK_RUN(0, RUN("demo", "--timers", "3000", "--spread", "500ms", "--lead",
                   "300ms"));
  CHECK_HAS(g_res.out, "due over 0.5 s, starting in 0.3 s");
  CHECK_HAS(g_res.out, "fired:         3000 (distinct 3000, missing 0, "
                       "duplicates 0)");
  CHECK_HAS(g_res.out, "result:        OK, every timer fired exactly once");
  CHECK_RUN(2, RUN("demo", "--lead", "-1s"));
}

/* Native topics and ids: what the library refuses is bad usage (2), with
 * the argument named and what the layout allows. */
static void test_names_native(void) {
  CHECK_RUN(2, RUN("schedule", "a:b", "x"));
  CHECK_HAS(g_res.err, "invalid TOPIC \"a:b\"");
  CHECK_HAS(g_res.err, "A-Z a-z 0-9 _ . - /");
  CHECK_HAS(g_res.err, "--compat");
  CHECK_RUN(2, RUN("schedule", "t", "x", "--id", "a b"));
  CHECK_HAS(g_res.err, "invalid --id \"a b\"");
  CHECK_HAS(g_res.err, "printable ASCII without blanks");
  CHECK_RUN(2, RUN("schedule", "t", "x", "--id", ""));
  CHECK_HAS(g_res.err, "--id");
  CHECK_RUN(2, RUN("cancel", "t", "ok-1", "a\nb"));
  CHECK_HAS(g_res.err, "invalid ID \"a\\nb\"");
  CHECK_RUN(2, RUN("show", "t", "\xc3\xa9"));
  CHECK_HAS(g_res.err, "invalid ID");
  const char *cmds[] = {"pending", "cancel-all", "listen", "stats", "top"};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
    CHECK_RUN(2, RUN(cmds[i], "my-service:invoices"));
    CHECK_HAS(g_res.err, "invalid TOPIC \"my-service:invoices\"");
  }
  char path[300];
  snprintf(path, sizeof path, "%s/native-colon.ini", g_dir);
  write_file(path, "[topic a:b]\nshards = 2\n");
  CHECK_RUN(1, RUN("config", "check", path));
  CHECK_HAS(g_res.err, "[topic a:b]");
  CHECK_HAS(g_res.err, "0x3a");
}

/* --compat: ids with blanks, newlines, quotes and non-ASCII go through
 * every command; pending prints them unambiguously in its three forms. */
static void test_names_faststream(void) {
  const char *ids[] = {"a b", "line\nbreak", "\xc3\xa9t\xc3\xa9", "\"q",
                       "plain-1"};
  for (int i = 0; i < 5; i++) {
    char at[32];
    snprintf(at, sizeof at, "%d", 2000000000 + i); /* in activation order */
    CHECK_RUN(0, RUN("schedule", "svc:names", "p", "--compat", "--id",
                     ids[i], "--at", at));
  }
  CHECK_RUN(0, RUN("show", "svc:names", "line\nbreak", "--compat"));
  CHECK_HAS(g_res.out, "id:        \"line\\nbreak\"");
  CHECK_RUN(0, RUN("pending", "svc:names", "--compat"));
  CHECK_MSG(strcmp(g_res.out,
                   "\"a b\" 2033-05-18T03:33:20.000Z\n"
                   "\"line\\nbreak\" 2033-05-18T03:33:21.000Z\n"
                   "\"\xc3\xa9t\xc3\xa9\" 2033-05-18T03:33:22.000Z\n"
                   "\"\\\"q\" 2033-05-18T03:33:23.000Z\n"
                   "plain-1 2033-05-18T03:33:24.000Z\n") == 0,
            "pending:\n%s", g_res.out);
  CHECK_RUN(0, RUN("pending", "svc:names", "--compat", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_EQ_INT(count_lines(g_res.out), 5);
  CHECK_HAS(g_res.out, "{\"id\":\"line\\nbreak\",\"at\":\"");
  CHECK_HAS(g_res.out, "{\"id\":\"\\\"q\",\"at\":\"");
  CHECK_RUN(0, RUN("pending", "svc:names", "--compat", "-0"));
  static const char want0[] = "a b 2033-05-18T03:33:20.000000Z\0"
                              "line\nbreak 2033-05-18T03:33:21.000000Z\0";
  CHECK_MSG(g_res.out_len > sizeof want0 &&
                memcmp(g_res.out, want0, sizeof want0 - 1) == 0,
            "pending -0: %zu bytes", g_res.out_len);
  size_t nuls = 0;
  for (size_t i = 0; i < g_res.out_len; i++) nuls += g_res.out[i] == '\0';
  CHECK_EQ_INT(nuls, 5);
  CHECK_RUN(2, RUN("pending", "svc:names", "--compat", "-0", "--json"));
  CHECK_RUN(0, RUN("cancel", "svc:names", "a b", "\xc3\xa9t\xc3\xa9",
                   "--compat"));
  CHECK_HAS(g_res.out, "cancelled \"a b\"\ncancelled \"\xc3\xa9t\xc3\xa9\"\n");
  CHECK_RUN(2, RUN("schedule", "svc:names", "p", "--compat", "--id",
                   "\xff"));
  CHECK_HAS(g_res.err, "UTF-8");
  CHECK_RUN(0, RUN("cancel-all", "svc:names", "--compat"));
  CHECK_HAS(g_res.out, "3\n");
}

/* A [topic NAME] section with ':' in NAME and a base key name with ':'
 * (a FastStream router prefix, a custom timeline_key) work in every
 * command. */
static void test_config_colon_topic(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/router.ini", g_dir);
  write_file(path, "[faststream]\ntimeline_key = svc:timeline\n"
                   "[topic my-service:invoices]\nlayout = faststream\n");
  const char *t = "my-service:invoices";
  CHECK_RUN(0, RUN("schedule", t, "one", "--config", path, "--id", "inv 1",
                   "--in", "1h"));
  CHECK(zscore("svc:timeline:my-service:invoices", "inv 1") > timers_now());
  CHECK_RUN(0, RUN("show", t, "inv 1", "--config", path));
  CHECK_HAS(g_res.out, "topic:     my-service:invoices");
  CHECK_RUN(0, RUN("pending", t, "--config", path));
  CHECK_HAS(g_res.out, "\"inv 1\" ");
  CHECK_RUN(0, RUN("stats", "--config", path, "--json"));
  CHECK_HAS(g_res.out, "\"topic\":\"my-service:invoices\",\"shards\":1,"
                       "\"pending\":1,");
  CHECK_RUN(0, RUN("top", t, "--config", path, "--iterations", "1"));
  CHECK_RUN(0, RUN("schedule", t, "two", "--config", path, "--id", "inv 2"));
  CHECK_RUN(0, RUN("listen", t, "--config", path, "--count", "1",
                   "--timeout", "10s"));
  CHECK_HAS(g_res.out, "\"id\":\"inv 2\",\"topic\":\"my-service:invoices\"");
  CHECK_RUN(0, RUN("cancel", t, "inv 1", "--config", path));
  CHECK_RUN(0, RUN("cancel-all", t, "--config", path));
  CHECK_HAS(g_res.out, "0\n");
  CHECK_RUN(0, RUN("config", "check", path));
  CHECK_HAS(g_res.out, "[topic my-service:invoices]");
}

/* --compat follows the Python publisher's content-type rule; --content-type
 * sets it in both layouts ("": none). */
static void test_content_type(void) {
  CHECK_RUN(0, RUN("schedule", "ct", "123", "--compat", "--id", "n"));
  CHECK_RUN(0, RUN("show", "ct", "n", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"content-type\":\"text/plain\"");
  CHECK_HAS(g_res.out, "\"correlation_id\":\"n\"");
  CHECK_RUN(0, RUN("schedule", "ct", "{\"a\":1}", "--compat", "--id", "j"));
  CHECK_RUN(0, RUN("show", "ct", "j", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"content-type\":\"application/json\"");
  CHECK_RUN(0, RUN_STDIN("\xff\xfe", "schedule", "ct", "--compat", "--id",
                         "b"));
  CHECK_RUN(0, RUN("show", "ct", "b", "--compat", "--json"));
  CHECK(strstr(g_res.out, "content-type") == NULL);
  CHECK_RUN(0, RUN("schedule", "ct", "42", "--compat", "--id", "x",
                   "--content-type", "application/json"));
  CHECK_RUN(0, RUN("show", "ct", "x", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"content-type\":\"application/json\"");
  CHECK_RUN(0, RUN("schedule", "ct", "text", "--compat", "--id", "e",
                   "--content-type", ""));
  CHECK_RUN(0, RUN("show", "ct", "e", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"content-type\":\"\"");
  /* native: only what is asked for */
  CHECK_RUN(0, RUN("schedule", "ctn", "{\"a\":1}", "--id", "d"));
  CHECK_RUN(0, RUN("show", "ctn", "d", "--json"));
  CHECK_HAS(g_res.out, "\"headers\":{}");
  CHECK_RUN(0, RUN("schedule", "ctn", "x", "--id", "s", "--content-type",
                   "text/csv"));
  CHECK_RUN(0, RUN("show", "ctn", "s", "--json"));
  CHECK_HAS(g_res.out, "\"headers\":{\"content-type\":\"text/csv\"}");
  CHECK_RUN(0, RUN("schedule", "ctn", "x", "--id", "z", "--content-type", ""));
  CHECK_RUN(0, RUN("show", "ctn", "z", "--json"));
  CHECK_HAS(g_res.out, "\"headers\":{}");
  CHECK_RUN(2, RUN("schedule", "ctn", "x", "--content-type", "a/b",
                   "--header", "content-type=c/d"));
  CHECK_HAS(g_res.err, "--content-type");
  CHECK_RUN(0, RUN("cancel-all", "ct", "--compat"));
  CHECK_RUN(0, RUN("cancel-all", "ctn"));
}

/* Headers are the library's to judge: 70 and an empty key are fine in
 * the faststream layout, bad usage in the native one. */
static void test_headers_per_layout(void) {
  static char hdr[71][16];
  char *argv[100];
  for (int compat = 0; compat < 2; compat++) {
    int n = 0;
    argv[n++] = "timers";
    argv[n++] = "schedule";
    argv[n++] = "hdr";
    argv[n++] = "x";
    argv[n++] = "--id";
    argv[n++] = "h-1";
    for (int i = 0; i < 70; i++) {
      snprintf(hdr[i], sizeof hdr[i], "--header=k%d=v", i);
      argv[n++] = hdr[i];
    }
    argv[n++] = "--header==empty";
    if (compat) argv[n++] = "--compat";
    argv[n++] = "--redis";
    argv[n++] = g_rs.addr;
    argv[n] = NULL;
    child c;
    child_start(&c, argv);
    close(c.in);
    child_finish(&c, &g_res, RUN_DEADLINE_MS, "schedule 71 headers");
    CHECK_MSG(g_res.status == (compat ? 0 : 2), "compat %d: exit %d: %s",
              compat, g_res.status, g_res.err);
  }
  CHECK_HAS(g_res.out, "h-1");
  CHECK_RUN(0, RUN("show", "hdr", "h-1", "--compat", "--json"));
  CHECK_HAS(g_res.out, "\"k69\":\"v\",\"\":\"empty\"");
  CHECK_RUN(0, RUN("cancel-all", "hdr", "--compat"));
}

/* show in the faststream layout: the lease cannot be known, and says so. */
static void test_show_lease_unknown(void) {
  CHECK_RUN(0, RUN("schedule", "fsl", "x", "--compat", "--id", "k",
                   "--in", "1h"));
  CHECK_RUN(0, RUN("show", "fsl", "k", "--compat", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "\"leased\":null,\"attempts\":null");
  CHECK_RUN(0, RUN("show", "fsl", "k", "--compat"));
  CHECK_HAS(g_res.out, "leased:    unknown in the faststream layout");
  CHECK_RUN(0, RUN("cancel-all", "fsl", "--compat"));
}

/* listen --count 2 with 5 timers due: the other 3 are handed back at once
 * (not leased), so a second listener fires them now, as first attempts. */
static void test_listen_count_release(void) {
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "rel-%d", i);
    CHECK_RUN(0, RUN("schedule", "rel", "x", "--id", id));
  }
  CHECK_RUN(0, RUN("listen", "rel", "--count", "2", "--timeout", "10s"));
  CHECK_EQ_INT(count_lines(g_res.out), 2);
  int left = 0;
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "rel-%d", i);
    int rc = RUN("show", "rel", id, "--json");
    CHECK_MSG(rc == 0 || rc == 1, "show exited %d: %s", rc, g_res.err);
    if (rc == 1) continue; /* one of the two acked */
    left++;
    CHECK_HAS(g_res.out, "\"leased\":false,\"attempts\":0");
  }
  CHECK_EQ_INT(left, 3);
  double t0 = mono_ms();
  CHECK_RUN(0, RUN("listen", "rel", "--count", "3", "--timeout", "10s"));
  CHECK_MSG(mono_ms() - t0 < 5000, "second listen took %.0f ms",
            mono_ms() - t0);
  CHECK_EQ_INT(count_lines(g_res.out), 3);
  CHECK_EQ_INT(count_of(g_res.out, "\"attempt\":1,"), 3);
  CHECK_RUN(0, RUN("pending", "rel"));
  CHECK_EQ_INT(count_lines(g_res.out), 0);
  /* 30 due in one shard, where an engine claiming ahead would take many
   * at once: after --count 2, the other 28 are due, none leased. */
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 30; i++) {
      char id[16];
      snprintf(id, sizeof id, "one-%d", i);
      CHECK_RUN(0, RUN("schedule", "rel1", "x", "--id", id, "--shards", "1"));
    }
    CHECK_RUN(0, RUN("listen", "rel1", "--count", "2", "--timeout", "10s"));
    CHECK_EQ_INT(count_lines(g_res.out), 2);
    CHECK_RUN(0, RUN("pending", "rel1", "--before", "now"));
    CHECK_MSG(count_lines(g_res.out) == 28, "%zu of 28 timers due, the "
              "others leased", count_lines(g_res.out));
    CHECK_RUN(0, RUN("cancel-all", "rel1"));
  }
}

/* Every key `config check` lists (each section's, and a [topic NAME]'s)
 * is in the sample: set in [redis], [engine] and [faststream], commented
 * out in the example [topic orders]. */
static void test_config_sample_keys(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/keys.ini", g_dir);
  write_file(path, "[topic x]\nshards = 2\n");
  CHECK_RUN(0, RUN("config", "sample"));
  static char sample[OUT_CAP + 1] = "\n";
  memcpy(sample + 1, g_res.out, strlen(g_res.out) + 1);
  CHECK_RUN(0, RUN("config", "check", path));
  bool topic = false;
  size_t keys = 0;
  for (char *line = strtok(g_res.out, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '[') {
      topic = strncmp(line, "[topic ", 7) == 0;
      continue;
    }
    char want[128];
    snprintf(want, sizeof want, "\n%s%.*s =", topic ? "; " : "",
             (int)strcspn(line, " "), line);
    CHECK_MSG(strstr(sample, want) != NULL,
              "`config sample` lacks '%s' (from `config check`: %s)",
              want + 1, line);
    keys++;
  }
  CHECK_MSG(keys >= 35, "only %zu keys listed", keys);
}

/* A settings file giving topics dead letters: dl keeps rejected timers
 * (2 shards), dn dead-letters a timer at its first nack, fsd has the
 * faststream layout (no dead-letter set). */
static const char *dead_config(void) {
  static char path[300];
  snprintf(path, sizeof path, "%s/dead.ini", g_dir);
  write_file(path, "[topic dl]\ndead_letter_rejects = 1\nshards = 2\n"
                   "[topic dn]\nmax_attempts = 1\n"
                   "[topic fsd]\nlayout = faststream\n");
  return path;
}

/* The first line of text that holds needle, copied into buf. */
static const char *line_with(const char *text, const char *needle, char *buf,
                             size_t cap) {
  const char *p = strstr(text, needle);
  CHECK_MSG(p != NULL, "'%s' not in:\n%s", needle, text);
  while (p > text && p[-1] != '\n') p--;
  snprintf(buf, cap, "%.*s", (int)strcspn(p, "\n"), p);
  return buf;
}

/* Rejected timers of a dead_letter_rejects topic land in the dead-letter
 * set: dead list (three forms, in the order they died), dead show (text
 * and JSON, --full), stats' dead counts. */
static void test_dead_list_show(void) {
  const char *cfg = dead_config();
  char big[301];
  memset(big, 'x', 300);
  big[300] = '\0';
  const char *payloads[] = {"payload 1", "payload 2", big};
  for (int i = 0; i < 3; i++) {
    char id[16], h[16];
    snprintf(id, sizeof id, "d-%d", i + 1);
    snprintf(h, sizeof h, "h=%d", i + 1);
    CHECK_RUN(0, RUN("schedule", "dl", payloads[i], "--id", id, "--header",
                     h, "--config", cfg));
  }
  CHECK_RUN(0, RUN("listen", "dl", "--reject", "--count", "3", "--timeout",
                   "10s", "--config", cfg));
  CHECK_EQ_INT(count_lines(g_res.out), 3);
  CHECK_RUN(0, RUN("pending", "dl"));
  CHECK_EQ_INT(count_lines(g_res.out), 0);

  CHECK_RUN(0, RUN("dead", "list", "dl"));
  CHECK_EQ_INT(count_lines(g_res.out), 3);
  char prev[64] = "", line[128];
  for (const char *p = g_res.out; *p; p = strchr(p, '\n') + 1) {
    snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
    const char *at = strchr(line, ' ');
    CHECK_MSG(at && strncmp(line, "d-", 2) == 0 && strlen(at + 1) == 24,
              "dead list line '%s'", line);
    CHECK_MSG(strcmp(prev, at + 1) <= 0, "not in the order they died:\n%s",
              g_res.out);
    snprintf(prev, sizeof prev, "%s", at + 1);
  }
  CHECK_HAS(g_res.out, "d-1 ");
  CHECK_HAS(g_res.out, "d-3 ");
  CHECK_RUN(0, RUN("dead", "list", "dl", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_EQ_INT(count_lines(g_res.out), 3);
  CHECK_HAS(g_res.out, "{\"id\":\"d-2\",\"dead_at\":\"");
  CHECK_RUN(0, RUN("dead", "list", "dl", "-0"));
  size_t nuls = 0;
  for (size_t i = 0; i < g_res.out_len; i++) nuls += g_res.out[i] == '\0';
  CHECK_EQ_INT(nuls, 3);
  CHECK(memchr(g_res.out, '\n', g_res.out_len) == NULL);
  CHECK_RUN(0, RUN("dead", "list", "dl", "--limit", "1"));
  CHECK_EQ_INT(count_lines(g_res.out), 1);
  CHECK_RUN(2, RUN("dead", "list", "dl", "-0", "--json"));
  CHECK_RUN(2, RUN("dead", "list", "dl", "--full"));
  CHECK_HAS(g_res.err, "unknown option '--full'");

  CHECK_RUN(0, RUN("dead", "show", "dl", "d-1"));
  CHECK_HAS(g_res.out, "id:        d-1\ntopic:     dl\nshard:     ");
  CHECK_HAS(line_with(g_res.out, "dead:", line, sizeof line), " ago)");
  CHECK_HAS(g_res.out, "attempts:  1\nreason:    rejected\ndue:       ");
  CHECK_HAS(g_res.out,
            "headers:   1\n  h=1\npayload:   9 bytes\n  payload 1\n");
  CHECK_RUN(0, RUN("dead", "show", "dl", "d-1", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "{\"id\":\"d-1\",\"topic\":\"dl\",\"shard\":");
  CHECK_HAS(g_res.out, "\"attempts\":1,\"reason\":\"rejected\","
                       "\"activate_at\":\"");
  CHECK_HAS(g_res.out, "\"headers\":{\"h\":\"1\"},\"payload_len\":9,"
                       "\"payload\":\"payload 1\"}");
  CHECK_RUN(0, RUN("dead", "show", "dl", "d-3"));
  CHECK_HAS(g_res.out, "payload:   300 bytes (truncated; --full for all)");
  CHECK_RUN(0, RUN("dead", "show", "dl", "d-3", "--full", "--json"));
  CHECK_HAS(g_res.out, "\"payload_len\":300,\"payload\":\"xxx");
  CHECK(strstr(g_res.out, "truncated") == NULL);
  CHECK_RUN(1, RUN("dead", "show", "dl", "nope"));
  CHECK_HAS(g_res.err, "no dead letter \"nope\" in topic \"dl\"");
  CHECK_RUN(2, RUN("dead", "show", "dl"));
  CHECK_HAS(g_res.err, "ID is missing");
  CHECK_RUN(2, RUN("dead", "show", "dl", "a b"));
  CHECK_HAS(g_res.err, "invalid ID \"a b\"");

  CHECK_RUN(0, RUN("stats", "dl", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "\"due_1d\":0,\"dead\":3,\"per_shard\"");
  CHECK_RUN(0, RUN("stats", "dl"));
  CHECK_HAS(g_res.out, "DUE 1D      DEAD\n");
  CHECK_HAS(line_with(g_res.out, "dl ", line, sizeof line), " 3");
  CHECK_RUN(0, RUN("stats", "dl", "--prometheus"));
  CHECK_HAS(g_res.out, "timers_dead{topic=\"dl\",shard=\"0\"}");
  CHECK_RUN(0, RUN("top", "dl", "--iterations", "1", "--json"));
  CHECK_HAS(g_res.out, "\"dead\":3,");
}

/* requeue puts a dead letter back (listen sees it as a first attempt, its
 * payload and headers kept), --in sets its time, an id not dead exits 1;
 * purge counts; a nack on the last attempt (max_attempts = 1) gives its
 * reason. After test_dead_list_show: d-1, d-2 and d-3 are dead. */
static void test_dead_requeue_purge(void) {
  const char *cfg = dead_config();
  CHECK_RUN(1, RUN("dead", "requeue", "dl", "d-1", "nope"));
  CHECK_HAS(g_res.out, "requeued d-1\nnot dead nope\n");
  CHECK_RUN(0, RUN("dead", "list", "dl"));
  CHECK_EQ_INT(count_lines(g_res.out), 2);
  CHECK_RUN(0, RUN("pending", "dl", "--before", "now"));
  CHECK_HAS(g_res.out, "d-1 ");
  CHECK_RUN(0, RUN("listen", "dl", "--count", "1", "--timeout", "10s"));
  CHECK_HAS(g_res.out, "{\"id\":\"d-1\",\"topic\":\"dl\",");
  CHECK_HAS(g_res.out, "\"attempt\":1,");
  CHECK_HAS(g_res.out, "\"headers\":{\"h\":\"1\"},\"payload\":\"payload 1\"");
  CHECK_RUN(0, RUN("pending", "dl"));
  CHECK_EQ_INT(count_lines(g_res.out), 0); /* acked */

  CHECK_RUN(0, RUN("dead", "requeue", "dl", "d-2", "--in", "1h", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "{\"topic\":\"dl\",\"id\":\"d-2\",\"requeued\":true}");
  CHECK_RUN(0, RUN("pending", "dl", "--before", "+59m"));
  CHECK_EQ_INT(count_lines(g_res.out), 0);
  CHECK_RUN(0, RUN("pending", "dl", "--before", "+61m"));
  CHECK_HAS(g_res.out, "d-2 ");
  CHECK_RUN(0, RUN("show", "dl", "d-2", "--json"));
  CHECK_HAS(g_res.out, "\"leased\":false,\"attempts\":0,");
  CHECK_RUN(1, RUN("dead", "requeue", "dl", "d-2"));
  CHECK_HAS(g_res.out, "not dead d-2\n");
  CHECK_RUN(2, RUN("dead", "requeue", "dl", "d-3", "--in", "1s", "--at",
                   "now"));
  CHECK_RUN(2, RUN("dead", "requeue", "dl"));
  CHECK_HAS(g_res.err, "ID is missing");

  CHECK_RUN(2, RUN("dead", "purge", "dl"));
  CHECK_HAS(g_res.err, "--all");
  CHECK_RUN(2, RUN("dead", "purge", "dl", "d-3", "--all"));
  CHECK_HAS(g_res.err, "IDs and --all exclude each other");
  CHECK_RUN(0, RUN("dead", "purge", "dl", "d-3", "nope"));
  CHECK_MSG(strcmp(g_res.out, "1\n") == 0, "purge printed '%s'", g_res.out);
  CHECK_RUN(0, RUN("dead", "list", "dl"));
  CHECK_EQ_INT(count_lines(g_res.out), 0);
  CHECK_RUN(0, RUN("cancel-all", "dl"));

  CHECK_RUN(0, RUN("schedule", "dn", "x", "--id", "n-1"));
  CHECK_RUN(0, RUN("schedule", "dn", "y", "--id", "n-2"));
  CHECK_RUN(0, RUN("listen", "dn", "--nack", "--count", "2", "--timeout",
                   "10s", "--config", cfg));
  CHECK_EQ_INT(count_of(g_res.out, "\"attempt\":1,"), 2);
  CHECK_RUN(0, RUN("dead", "show", "dn", "n-2"));
  CHECK_HAS(g_res.out, "attempts:  1\nreason:    NACK on the last attempt "
                       "(1 of 1)\n");
  CHECK_RUN(0, RUN("dead", "purge", "dn", "--all", "--json"));
  CHECK_HAS(g_res.out, "{\"topic\":\"dn\",\"purged\":2}\n");
  CHECK_RUN(0, RUN("dead", "purge", "dn", "--all"));
  CHECK_MSG(strcmp(g_res.out, "0\n") == 0, "purge printed '%s'", g_res.out);
  CHECK_RUN(0, RUN("pending", "dn"));
  CHECK_EQ_INT(count_lines(g_res.out), 0);
}

/* The faststream layout has no dead-letter set: every dead subcommand is
 * bad usage of that topic (2), saying so; the dispatcher's own usage. */
static void test_dead_faststream_usage(void) {
  const char *cfg = dead_config();
  const char *want = "uses the faststream layout, which has no dead-letter "
                     "set";
  CHECK_RUN(2, RUN("dead", "list", "fsd", "--config", cfg));
  CHECK_HAS(g_res.err, want);
  CHECK_RUN(2, RUN("dead", "show", "fsd", "a b", "--compat"));
  CHECK_HAS(g_res.err, want);
  CHECK_RUN(2, RUN("dead", "requeue", "fsd", "x", "--config", cfg));
  CHECK_HAS(g_res.err, want);
  CHECK_RUN(2, RUN("dead", "purge", "fsd", "--all", "--compat"));
  CHECK_HAS(g_res.err, want);
  CHECK_RUN(2, RUN("dead"));
  CHECK_HAS(g_res.err, "usage: timers dead list");
  CHECK_RUN(2, RUN("dead", "frob", "t"));
  CHECK_HAS(g_res.err, "unknown subcommand 'frob'");
  CHECK_RUN(0, RUN("dead", "--help"));
  CHECK_HAS(g_res.out, "timers dead purge TOPIC (ID... | --all)");
  CHECK_RUN(0, RUN("dead", "requeue", "--help"));
  CHECK_HAS(g_res.out, "usage: timers dead requeue");
  CHECK_RUN(2, RUN("dead", "list", "a:b"));
  CHECK_HAS(g_res.err, "invalid TOPIC \"a:b\"");
}

/* move: a pending timer gets a new time (show and pending see it), exit 1
 * when it is not pending, the time is required; faststream too. */
static void test_move(void) {
  CHECK_RUN(0, RUN("schedule", "mv", "x", "--id", "m-1", "--in", "1h"));
  CHECK_RUN(0, RUN("move", "mv", "m-1", "--at", "2030-01-01T00:00:00Z"));
  CHECK_MSG(strcmp(g_res.out, "moved m-1 2030-01-01T00:00:00.000Z\n") == 0,
            "move printed '%s'", g_res.out);
  CHECK_RUN(0, RUN("show", "mv", "m-1"));
  CHECK_HAS(g_res.out, "due:       2030-01-01T00:00:00.000Z (in ");
  CHECK_HAS(g_res.out, "attempts:  0\n");
  CHECK_RUN(0, RUN("show", "mv", "m-1", "--json"));
  CHECK_HAS(g_res.out, "\"activate_at\":\"2030-01-01T00:00:00.000000Z\"");
  CHECK_RUN(0, RUN("move", "mv", "m-1", "--in", "30s", "--json"));
  CHECK(json_lines_valid(g_res.out));
  CHECK_HAS(g_res.out, "{\"topic\":\"mv\",\"id\":\"m-1\",\"moved\":true,"
                       "\"activate_at\":\"");
  CHECK_RUN(0, RUN("pending", "mv", "--before", "+1m"));
  CHECK_HAS(g_res.out, "m-1 ");
  CHECK_RUN(1, RUN("move", "mv", "nope", "--in", "1m"));
  CHECK_HAS(g_res.out, "not found nope\n");
  CHECK_RUN(2, RUN("move", "mv", "m-1"));
  CHECK_HAS(g_res.err, "--at");
  CHECK_RUN(2, RUN("move", "mv", "m-1", "--at", "now", "--in", "1s"));
  CHECK_RUN(2, RUN("move", "mv"));
  CHECK_HAS(g_res.err, "ID is missing");
  CHECK_RUN(2, RUN("move", "mv", "m-1", "--at", "2030-01-01T00:00:00"));
  CHECK_RUN(0, RUN("cancel-all", "mv"));

  CHECK_RUN(0, RUN("schedule", "fsm", "p", "--compat", "--id", "a b",
                   "--in", "1h"));
  CHECK_RUN(0, RUN("move", "fsm", "a b", "--compat", "--at",
                   "2031-01-01T00:00:00Z"));
  CHECK_HAS(g_res.out, "moved \"a b\" 2031-01-01T00:00:00.000Z\n");
  CHECK_EQ_INT((long long)zscore("timers_timeline:fsm", "a b"), 1924992000);
  CHECK_RUN(0, RUN("cancel-all", "fsm", "--compat"));
}

/* Unix seconds of "...fired_at":"<ISO>" at or after p, or -1. */
static double fired_at(const char *p) {
  const char *f = strstr(p, "\"fired_at\":\"");
  int y, mo, d, h, mi;
  double sec;
  if (!f || sscanf(f + 12, "%d-%d-%dT%d:%d:%lfZ", &y, &mo, &d, &h, &mi,
                   &sec) != 6)
    return -1;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                  .tm_hour = h, .tm_min = mi};
  return (double)timegm(&tm) + sec;
}

/* listen --nack-delay: the handler sets the redelivery delay (the default
 * backoff of a first attempt is 0.5 to 1 s). */
static void test_listen_nack_delay(void) {
  CHECK_RUN(0, RUN("schedule", "nd", "x", "--id", "q"));
  CHECK_RUN(0, RUN("listen", "nd", "--nack", "--nack-delay", "2s", "--count",
                   "2", "--timeout", "15s"));
  CHECK_EQ_INT(count_lines(g_res.out), 2);
  const char *second = strstr(g_res.out, "\"attempt\":2,");
  CHECK_MSG(strstr(g_res.out, "\"attempt\":1,") && second,
            "attempts:\n%s", g_res.out);
  double gap = fired_at(second) - fired_at(g_res.out);
  CHECK_MSG(gap >= 1.95 && gap < 10, "redelivered after %.3f s, want 2 s",
            gap);
  CHECK_RUN(0, RUN("cancel", "nd", "q"));
  CHECK_RUN(2, RUN("listen", "nd", "--reject", "--nack-delay", "1s"));
  CHECK_HAS(g_res.err, "--nack-delay needs --nack");
  CHECK_RUN(2, RUN("listen", "nd", "--nack", "--reject"));
  CHECK_HAS(g_res.err, "--nack and --reject exclude each other");
  CHECK_RUN(2, RUN("listen", "nd", "--nack", "--nack-delay", "2d"));
  CHECK_HAS(g_res.err, "--nack-delay");
}

static void test_usage(void) {
  CHECK_RUN(2, RUN("schedule"));
  CHECK_RUN(2, RUN("frob"));
  CHECK_RUN(2, RUN("pending", "t", "--limit", "0"));
  CHECK_HAS(g_res.err, "--limit");
  CHECK_RUN(2, RUN("schedule", "t", "x", "--at", "2030-13-01T00:00:00Z"));
  CHECK_HAS(g_res.err, "--at");
  CHECK_RUN(2, RUN("schedule", "t", "x", "--at", "2030-01-01T00:00:00"));
  CHECK_RUN(2, RUN("schedule", "t", "x", "--in", "1s", "--at", "now"));
  CHECK_RUN(2, RUN("schedule", "bad topic", "x"));
  CHECK_RUN(0, RUN("schedule", "--help"));
  CHECK_HAS(g_res.out, "usage: timers schedule");
  /* an unreachable Redis: exit 1 after the retry window */
  char *argv[] = {"timers", "schedule", "t", "x", "--redis", "127.0.0.1:1",
                  NULL};
  child c;
  child_start(&c, argv);
  close(c.in);
  static run_result r;
  child_finish(&c, &r, RUN_DEADLINE_MS, "unreachable");
  CHECK_MSG(r.status == 1, "exit %d: %s", r.status, r.err);
}

int main(void) {
  unsetenv("TIMERS_CONFIG");
  snprintf(g_dir, sizeof g_dir, "/tmp/timers-cli-XXXXXX");
  CHECK(mkdtemp(g_dir) != NULL);
  test_redis_start(&g_rs, false);
  TEST_RUN(test_schedule_show);
  TEST_RUN(test_pending);
  TEST_RUN(test_stats);
  TEST_RUN(test_cancel);
  TEST_RUN(test_config_file);
  TEST_RUN(test_compat);
  TEST_RUN(test_listen);
  TEST_RUN(test_load_topic_config);
  TEST_RUN(test_demo);
  TEST_RUN(test_names_native);
  TEST_RUN(test_names_faststream);
  TEST_RUN(test_config_colon_topic);
  TEST_RUN(test_content_type);
  TEST_RUN(test_headers_per_layout);
  TEST_RUN(test_show_lease_unknown);
  TEST_RUN(test_listen_count_release);
  TEST_RUN(test_config_sample_keys);
  TEST_RUN(test_dead_list_show);
  TEST_RUN(test_dead_requeue_purge);
  TEST_RUN(test_dead_faststream_usage);
  TEST_RUN(test_move);
  TEST_RUN(test_listen_nack_delay);
  TEST_RUN(test_usage);
  test_redis_stop(&g_rs);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  CHECK(system(cmd) == 0);
  printf("test_cli: all passed\n");
  return 0;
}
