/*
 * test_faststream_peer.c - the FASTSTREAM layout against a peer that
 * behaves byte for byte like faststream-redis-timers: tests/
 * faststream_peer.py (its store operations, Lua scripts, envelope writer
 * and reader), run with Debian's python3 and python3-redis against this
 * test's private redis-server. The engine is used through its public API
 * only (faststream.h only to build expected values).
 *
 * Two lists of cases, each case in a forked child with a deadline:
 *  - `shared`: timers going both ways, both sides consuming one topic,
 *    fencing, each side's cancel/pending on the other's timers;
 *  - `as_python`: what made the engine different from the library
 *    (engine/FASTSTREAM.md section 9): topics and key names with ':', more
 *    than 64 headers, non-UTF-8 members, ids outside printable ASCII,
 *    messages Python drops or never delivers, the publisher's headers and
 *    ids, empty header keys.
 * Each prints PASS or FAIL per case; the exit status is the number failed.
 */
#include <fcntl.h>
#include <hiredis.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "faststream.h"
#include "test_util.h"

#ifndef TIMERS_PYTHON3
#define TIMERS_PYTHON3 "/usr/bin/python3"
#endif
#define PEER_SCRIPT TIMERS_SOURCE_DIR "/tests/faststream_peer.py"

static redis_server rs;
static fired_log fired;

/* ---------------------------------------------------------------- peer */

typedef struct peer {
  const char *timeline, *payloads, *prefix; /* NULL: the library's defaults */
} peer;

static const peer py = {NULL, NULL, NULL};

/* argv of the peer: python3 script --redis ADDR [keys] args... */
static size_t peer_argv(const peer *p, const char *const *args,
                        const char **argv, size_t cap) {
  static char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rs.port);
  size_t n = 0;
  argv[n++] = TIMERS_PYTHON3;
  argv[n++] = PEER_SCRIPT;
  argv[n++] = "--redis";
  argv[n++] = addr;
  if (p->timeline) argv[n++] = "--timeline", argv[n++] = p->timeline;
  if (p->payloads) argv[n++] = "--payloads", argv[n++] = p->payloads;
  if (p->prefix) argv[n++] = "--prefix", argv[n++] = p->prefix;
  for (size_t i = 0; args[i]; i++) {
    CHECK(n + 2 < cap);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  return n;
}

/* Starts the peer with stdout into fd (-1: /dev/null); returns its pid. */
static pid_t peer_spawn(const peer *p, const char *const *args, int fd) {
  const char *argv[1024];
  peer_argv(p, args, argv, 1024);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int out = fd >= 0 ? fd : open("/dev/null", O_WRONLY);
    dup2(out, STDOUT_FILENO);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Runs the peer to completion (at most timeout_ms: killed past it) and
 * returns its output; fails the test unless it exits 0. */
static char *peer_run(const peer *p, int timeout_ms, const char *const *args) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t pid = peer_spawn(p, args, fds[1]);
  close(fds[1]);
  size_t cap = 1 << 16, len = 0;
  char *out = xrealloc(NULL, cap);
  double deadline = mono_ms() + timeout_ms;
  for (;;) {
    struct pollfd pf = {fds[0], POLLIN, 0};
    int left = (int)(deadline - mono_ms());
    if (left <= 0 || poll(&pf, 1, left) <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      CHECK_MSG(false, "peer %s timed out", args[0]);
    }
    if (len + 4096 > cap) out = xrealloc(out, cap *= 2);
    ssize_t got = read(fds[0], out + len, cap - len - 1);
    if (got <= 0) break;
    len += (size_t)got;
  }
  close(fds[0]);
  out[len] = '\0';
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "peer %s failed (status %d), output:\n%s", args[0], status, out);
  return out;
}

/* The value of the first line "key=value" of out, into buf. */
static bool out_get(const char *out, const char *key, char *buf, size_t cap) {
  size_t k = strlen(key);
  for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
    if (strncmp(l, key, k) == 0 && l[k] == '=') {
      size_t n = strcspn(l + k + 1, "\n");
      CHECK(n < cap);
      memcpy(buf, l + k + 1, n);
      buf[n] = '\0';
      return true;
    }
  }
  return false;
}

static long out_long(const char *out, const char *key) {
  char v[64];
  CHECK_MSG(out_get(out, key, v, sizeof v), "no %s= in:\n%s", key, out);
  return strtol(v, NULL, 10);
}

static void hex_encode(const void *p, size_t n, char *out) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
  out[2 * n] = '\0';
}

static size_t hex_decode(const char *hex, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    unsigned v;
    sscanf(hex + i, "%2x", &v);
    out[k++] = (char)v;
  }
  out[k] = '\0';
  return k;
}

static char *hexs(const char *s) {
  char *h = xrealloc(NULL, 2 * strlen(s) + 1);
  hex_encode(s, strlen(s), h);
  return h;
}

/* What Python's handler gets for one timer, from the peer's lines
 * (prefix "expect." after publish, "" after parse-stored). */
typedef struct pymsg {
  char outcome[16];
  char *body;
  size_t body_len;
  size_t n, dropped;
  char *key[512], *val[512];
  char decoded[32];
} pymsg;

static void pymsg_parse(const char *out, const char *prefix, pymsg *m) {
  memset(m, 0, sizeof *m);
  char key[64];
  snprintf(key, sizeof key, "%soutcome", prefix);
  CHECK_MSG(out_get(out, key, m->outcome, sizeof m->outcome), "no outcome:\n%s", out);
  size_t pl = strlen(prefix);
  for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
    if (strncmp(l, prefix, pl) != 0) continue;
    const char *r = l + pl;
    size_t n = strcspn(r, "\n");
    if (strncmp(r, "body=", 5) == 0) {
      m->body = xrealloc(NULL, n);
      m->body_len = hex_decode(r + 5, n - 5, m->body);
    } else if (strncmp(r, "h=", 2) == 0) {
      const char *colon = memchr(r, ':', n);
      CHECK(colon && m->n < 512);
      m->key[m->n] = xrealloc(NULL, n);
      m->val[m->n] = xrealloc(NULL, n);
      hex_decode(r + 2, (size_t)(colon - r - 2), m->key[m->n]);
      hex_decode(colon + 1, n - (size_t)(colon + 1 - r), m->val[m->n]);
      m->n++;
    } else if (strncmp(r, "hx=", 3) == 0) {
      m->dropped++;
    } else if (strncmp(r, "decoded=", 8) == 0) {
      snprintf(m->decoded, sizeof m->decoded, "%.*s", (int)(n - 8), r + 8);
    }
  }
}

static void pymsg_free(pymsg *m) {
  free(m->body);
  for (size_t i = 0; i < m->n; i++) free(m->key[i]), free(m->val[i]);
}

/* Publishes one timer as TimersBroker.publish does; *m gets what Python's
 * handler would get for it. kind: none|bytes|text|json. */
static void py_publish(const peer *p, const char *topic, const char *id,
                       const char *kind, const void *body, size_t len,
                       const char *const *hdr_kv, size_t nh, pymsg *m) {
  char *bh = xrealloc(NULL, 2 * len + 1), *ih = hexs(id);
  hex_encode(body, len, bh);
  const char *args[64 + 2 * 300] = {"publish", "--topic", topic, "--id", ih,
                                    "--kind", kind, "--body", bh};
  size_t a = 9;
  char **hh = xrealloc(NULL, (nh + 1) * sizeof *hh);
  for (size_t i = 0; i < nh; i++) {
    char *k = hexs(hdr_kv[2 * i]), *v = hexs(hdr_kv[2 * i + 1]);
    hh[i] = xrealloc(NULL, strlen(k) + strlen(v) + 2);
    sprintf(hh[i], "%s:%s", k, v);
    free(k), free(v);
    args[a++] = "--header";
    args[a++] = hh[i];
  }
  args[a] = NULL;
  char *out = peer_run(p, 20000, args);
  if (m) pymsg_parse(out, "expect.", m);
  for (size_t i = 0; i < nh; i++) free(hh[i]);
  free(hh), free(out), free(bh), free(ih);
}

/* Stores raw bytes as a timer's payload, the way the library schedules. */
static void py_publish_raw(const peer *p, const char *topic, const char *id,
                           const void *payload, size_t len) {
  char *ph = xrealloc(NULL, 2 * len + 1), *ih = hexs(id);
  hex_encode(payload, len, ph);
  const char *args[] = {"publish", "--topic", topic, "--id", ih, "--raw", ph, NULL};
  free(peer_run(p, 20000, args));
  free(ph), free(ih);
}

/* What Python's handler would get for a stored timer. */
static void py_parse_stored(const peer *p, const char *topic, const char *id,
                            pymsg *m) {
  char *ih = hexs(id);
  const char *args[] = {"parse-stored", "--topic", topic, "--id", ih, NULL};
  char *out = peer_run(p, 20000, args);
  pymsg_parse(out, "", m);
  free(out), free(ih);
}

static long py_simple(const peer *p, const char *cmd, const char *topic,
                      const char *id, const char *key) {
  char *ih = id ? hexs(id) : NULL;
  const char *args[] = {cmd, "--topic", topic, ih ? "--id" : NULL, ih, NULL};
  char *out = peer_run(p, 20000, args);
  long v = out_long(out, key);
  free(out), free(ih);
  return v;
}

/* -------------------------------------------------------------- engine */

static timers_engine *fs_engine(const char *topic, int lease_ms,
                                int max_inflight, timers_handler h,
                                const char *timeline, const char *payloads) {
  timers_config cfg;
  test_config(&cfg, &rs);
  if (timeline) cfg.faststream_timeline_key = timeline;
  if (payloads) cfg.faststream_payloads_key = payloads;
  timers_engine *e = test_engine(&cfg);
  /* max_handler_ms = the lease: a handler blocked past it loses its
   * lease (the fencing case), as it would with a Python consumer. */
  timers_subscribe_options o = {.layout = TIMERS_LAYOUT_FASTSTREAM,
                                .lease_ms = lease_ms,
                                .max_inflight = max_inflight,
                                .max_handler_ms = lease_ms};
  if (h) {
    CHECK_OK(timers_subscribe(e, topic, h, &fired, &o));
    CHECK_OK(timers_engine_start(e));
  } else {
    CHECK_OK(timers_declare(e, topic, &o));
  }
  return e;
}

/* Schedules like TimersBroker.publish: correlation_id = id, the
 * content-type rule, then the caller's headers. */
static void c_publish(timers_engine *e, const char *topic, const char *id,
                      const void *body, size_t len, const timers_header *user,
                      size_t nuser, double in, timers_header *written,
                      size_t *nwritten) {
  /* The engine adds correlation_id and content-type itself; `written` is
   * what it should have written, as Python's publish would. */
  timers_timer t = {.topic = topic, .id = id, .payload = body,
                    .payload_len = len, .headers = user, .header_count = nuser,
                    .has_activate_in = true, .activate_in = in};
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  if (written)
    *nwritten = tm__fs_publish_headers(
        id, tm__fs_content_type(body, len, NULL), user, nuser, written);
}

/* The C handler's view of id equals Python's. */
static void expect_same(const char *id, const pymsg *m) {
  CHECK_MSG(strcmp(m->outcome, "deliver") == 0, "%s: Python outcome %s", id,
            m->outcome);
  pthread_mutex_lock(&fired.mu);
  size_t v = *fired_slot_locked(&fired, id);
  CHECK_MSG(v != 0, "%s never fired in C", id);
  fired_rec *r = &fired.recs[v - 1];
  bool body_ok = r->payload_len == m->body_len &&
                 (m->body_len == 0 || memcmp(r->payload, m->body, m->body_len) == 0);
  bool count_ok = r->header_count == m->n;
  size_t bad = m->n;
  for (size_t i = 0; count_ok && i < m->n; i++)
    if (strcmp(r->header_kv[2 * i], m->key[i]) != 0 ||
        strcmp(r->header_kv[2 * i + 1], m->val[i]) != 0) {
      bad = i;
      break;
    }
  size_t got = r->header_count;
  pthread_mutex_unlock(&fired.mu);
  CHECK_MSG(body_ok, "%s: C body differs from Python's (%zu bytes, want %zu)",
            id, r->payload_len, m->body_len);
  CHECK_MSG(count_ok, "%s: C has %zu headers, Python %zu", id, got, m->n);
  CHECK_MSG(bad == m->n, "%s: header %zu ('%s') differs", id, bad,
            bad < m->n ? m->key[bad] : "");
}

/* ------------------------------------------------- cases: today's list */

/* Python -> C: text, bytes, empty and JSON bodies with headers. */
static void case_py_to_c_bodies(void) {
  const char *topic = "fs.p2c";
  const char *hk[] = {"x-a", "1", "x-b", "two words"};
  struct {
    const char *id, *kind, *body;
    size_t len;
  } cases[] = {{"p2c-text", "text", "hello", 5},
               {"p2c-bytes", "bytes", "\x00\xff\x80", 3},
               {"p2c-none", "none", "", 0},
               {"p2c-json", "json", "{\"a\": [1, 2]}", 13}};
  pymsg m[4];
  for (int i = 0; i < 4; i++)
    py_publish(&py, topic, cases[i].id, cases[i].kind, cases[i].body,
               cases[i].len, hk, 2, &m[i]);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 4, 20000), "not all fired");
  for (int i = 0; i < 4; i++) {
    expect_same(cases[i].id, &m[i]);
    CHECK(wait_not_pending(e, topic, cases[i].id, 10000));
    CHECK_EQ_INT(py_simple(&py, "has-pending", topic, cases[i].id, "pending"), 0);
    pymsg_free(&m[i]);
  }
  timers_engine_destroy(e);
}

/* Python -> C: headers the library's writer counts in characters. C gets
 * what Python's parser gets: cut short, left out (a NUL), or the whole
 * envelope as raw body when the read fails. */
static void case_py_to_c_non_ascii_headers(void) {
  const char *topic = "fs.p2c.utf8";
  const char *h1[] = {"ключ", "значение"};
  const char *h2[] = {"x-e", "\xE2\x82\xAC" "uro"};
  const char *h3[] = {"k", "\xC3\xA9\xC3\xA9"};
  const char *h4[] = {"k", "\xC3\xA9"};
  const char *const *hs[] = {h1, h2, h3, h4};
  const char *ids[] = {"utf8-1", "utf8-2", "utf8-3", "utf8-4"};
  pymsg m[4];
  for (int i = 0; i < 4; i++)
    py_publish(&py, topic, ids[i], "text", "hello", 5, hs[i], 1, &m[i]);
  CHECK_EQ_INT(m[0].dropped, 1);  /* "кл" -> a value with a NUL */
  CHECK(m[1].n == 3 && strcmp(m[1].val[2], "\xE2\x82\xAC" "u") == 0);
  CHECK(m[2].n == 3 && strcmp(m[2].val[2], "\xC3\xA9") == 0);
  CHECK(m[3].n == 0 && m[3].body_len > 5); /* raw: the whole envelope */
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 4, 20000), "not all fired");
  for (int i = 0; i < 4; i++) expect_same(ids[i], &m[i]), pymsg_free(&m[i]);
  timers_engine_destroy(e);
}

/* Python 0.x -> C: {"b": hex, "ct": ...} still fires, with its body and
 * content-type. */
static void case_py_to_c_legacy(void) {
  const char *topic = "fs.p2c.legacy";
  const char *l1 = "{\"b\": \"68656c6c6f\", \"ct\": \"text/plain\"}";
  const char *l2 = "{\"b\": \"00ff\", \"ct\": null}";
  py_publish_raw(&py, topic, "legacy-1", l1, strlen(l1));
  py_publish_raw(&py, topic, "legacy-2", l2, strlen(l2));
  pymsg m1, m2;
  py_parse_stored(&py, topic, "legacy-1", &m1);
  py_parse_stored(&py, topic, "legacy-2", &m2);
  CHECK(m1.n == 1 && strcmp(m1.val[0], "text/plain") == 0);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 2, 20000), "not all fired");
  expect_same("legacy-1", &m1);
  expect_same("legacy-2", &m2);
  pymsg_free(&m1), pymsg_free(&m2);
  timers_engine_destroy(e);
}

/* C -> Python: what the library's parser and decode_message make of
 * timers the engine writes, non-ASCII headers whole; then Python's
 * subscriber loop fires and removes them. */
static void case_c_to_py_bodies(void) {
  const char *topic = "fs.c2p";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  timers_header user[] = {{"ключ", "значение"}, {"x-e", "\xE2\x82\xAC" "uro"}};
  struct {
    const char *id, *body, *decoded;
    size_t len;
  } cases[] = {{"c2p-text", "hello", "str", 5},
               {"c2p-bytes", "\x00\xff\x80", "bytes", 3},
               {"c2p-empty", "", "bytes", 0},
               {"c2p-json", "{\"a\": [1, 2]}", "dict", 13}};
  for (int i = 0; i < 4; i++) {
    timers_header w[8];
    size_t nw;
    c_publish(e, topic, cases[i].id, cases[i].body, cases[i].len, user, 2, 0,
              w, &nw);
    pymsg m;
    py_parse_stored(&py, topic, cases[i].id, &m);
    CHECK_MSG(strcmp(m.outcome, "deliver") == 0, "%s: %s", cases[i].id, m.outcome);
    CHECK(m.body_len == cases[i].len &&
          memcmp(m.body, cases[i].body, cases[i].len) == 0);
    CHECK_EQ_INT(m.n, nw);
    for (size_t k = 0; k < nw; k++)
      CHECK_MSG(strcmp(m.key[k], w[k].key) == 0 && strcmp(m.val[k], w[k].value) == 0,
                "%s: Python reads header '%s' as '%s'", cases[i].id, w[k].key,
                m.val[k]);
    CHECK_MSG(strcmp(m.decoded, cases[i].decoded) == 0,
              "%s: Python's handler gets a %s", cases[i].id, m.decoded);
    pymsg_free(&m);
  }
  const char *args[] = {"consume", "--topic", topic, "--count", "4",
                        "--timeout", "15", NULL};
  char *out = peer_run(&py, 30000, args);
  CHECK_MSG(out_long(out, "count") == 4, "Python fired:\n%s", out);
  free(out);
  for (int i = 0; i < 4; i++) CHECK(!test_is_pending(e, topic, cases[i].id));
  timers_engine_destroy(e);
}

static timers_outcome slow_ack(const timers_message *m, void *ud) {
  fired_log_record(ud, m);
  sleep_ms(3);
  return TIMERS_ACK;
}

/* Python and C consume one topic at once: every timer fires exactly once
 * overall, and both sides take part. */
static void case_both_consume(void) {
  const char *topic = "fs.both";
  enum { N = 100 };
  const char *pub[] = {"publish", "--topic", topic, "--count", "100",
                       "--id-prefix", "py-", "--kind", "text", "--body",
                       "6869", "--delay", "2", NULL};
  free(peer_run(&py, 30000, pub));
  timers_engine *e = fs_engine(topic, 30000, 4, slow_ack, NULL, NULL);
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "c-%d", i);
    c_publish(e, topic, id, "hi", 2, NULL, 0, 2.0, NULL, NULL);
  }
  char path[] = "/tmp/fs_both_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  const char *con[] = {"consume", "--topic", topic, "--count", "1000",
                       "--timeout", "30", "--out", path, NULL};
  pid_t pid = peer_spawn(&py, con, -1);
  size_t py_n = 0;
  char *text = NULL;
  double deadline = mono_ms() + 40000;
  for (;;) {
    free(text);
    FILE *f = fopen(path, "r");
    CHECK(f);
    text = xrealloc(NULL, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    py_n = 0;
    for (const char *l = text; (l = strstr(l, "fired=")); l++) py_n++;
    if (py_n + fired_log_distinct(&fired) >= 2 * N || mono_ms() > deadline) break;
    sleep_ms(20);
  }
  sleep_ms(300); /* a duplicate would show now */
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  FILE *f = fopen(path, "r");
  size_t n = fread(text, 1, (1 << 16) - 1, f);
  text[n] = '\0';
  fclose(f);
  unlink(path);
  close(fd);
  size_t c_n = fired_log_distinct(&fired);
  CHECK_EQ_INT(fired_log_total(&fired), c_n); /* no C duplicates */
  py_n = 0;
  for (const char *l = text; (l = strstr(l, "fired=")); l++) {
    char hex[64], id[32];
    sscanf(l, "fired=%63s", hex);
    hex_decode(hex, strlen(hex), id);
    CHECK_MSG(fired_log_count(&fired, id) == 0, "%s fired in C and Python", id);
    py_n++;
  }
  printf("   C fired %zu, Python fired %zu\n", c_n, py_n);
  CHECK_EQ_INT(c_n + py_n, 2 * N);
  CHECK_MSG(c_n > 0 && py_n > 0, "one side fired nothing");
  CHECK_EQ_INT(py_simple(&py, "cancel-all", topic, NULL, "count"), 0);
  free(text);
  timers_engine_destroy(e);
}

static int fence_entered;
static gate fence_gate;

static timers_outcome fence_handler(const timers_message *m, void *ud) {
  fired_log_record(ud, m);
  flag_set(&fence_entered, 1);
  gate_wait(&fence_gate);
  return TIMERS_ACK;
}

/* A C handler outlives its lease, Python re-leases the timer: the late C
 * ack is fenced off and the timer stays with Python. */
static void case_late_c_ack_fenced(void) {
  const char *topic = "fs.fence";
  gate_init(&fence_gate);
  py_publish(&py, topic, "fence-1", "text", "x", 1, NULL, 0, NULL);
  timers_engine *e = fs_engine(topic, 1000, 1, fence_handler, NULL, NULL);
  CHECK_MSG(wait_until(flag_pred, &fence_entered, 20000), "never delivered");
  /* The engine extends the lease until max_handler_ms (1 s), then lets it
   * run out (at most one more lease): after 2.3 s it has. max_inflight 1:
   * C re-claims nothing while its handler runs. */
  sleep_ms(2300);
  const char *claim[] = {"claim", "--topic", topic, "--id", hexs("fence-1"),
                         "--lease", "30", NULL};
  char *out = peer_run(&py, 20000, claim);
  CHECK_MSG(!strstr(out, "payload=none"), "Python could not re-lease:\n%s", out);
  free(out);
  uint64_t stale = test_counters(e).stale_commits;
  gate_open(&fence_gate);
  double deadline = mono_ms() + 10000;
  while (test_counters(e).stale_commits == stale && mono_ms() < deadline)
    sleep_ms(5);
  CHECK_MSG(test_counters(e).stale_commits == stale + 1, "the C ack was not fenced");
  CHECK_EQ_INT(py_simple(&py, "has-pending", topic, "fence-1", "pending"), 1);
  CHECK(test_is_pending(e, topic, "fence-1"));
  CHECK_EQ_INT(fired_log_count(&fired, "fence-1"), 1);
  py_simple(&py, "ack", topic, "fence-1", "ok");
  CHECK(!test_is_pending(e, topic, "fence-1"));
  timers_engine_destroy(e);
  gate_destroy(&fence_gate);
}

/* Each side's cancel, cancel-all, pending and has-pending on the other's
 * timers. */
static void case_cross_ops(void) {
  const char *topic = "fs.ops";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  const char *later[] = {"publish", "--topic", topic, "--count", "3",
                         "--id-prefix", "po-", "--delay", "3600", NULL};
  free(peer_run(&py, 20000, later));
  size_t total = 0;
  CHECK(test_is_pending(e, topic, "po-1"));
  CHECK(test_pending_has(e, topic, false, 0, "po-2", &total) && total == 3);
  bool removed = false;
  CHECK_OK(timers_cancel(e, topic, "po-1", &removed));
  CHECK(removed);
  CHECK_EQ_INT(py_simple(&py, "has-pending", topic, "po-1", "pending"), 0);
  uint64_t n = 0;
  CHECK_OK(timers_cancel_all(e, topic, &n));
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(py_simple(&py, "pending", topic, NULL, "count"), 0);

  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "co-%d", i);
    c_publish(e, topic, id, "x", 1, NULL, 0, 3600, NULL, NULL);
  }
  CHECK_EQ_INT(py_simple(&py, "has-pending", topic, "co-1", "pending"), 1);
  const char *pend[] = {"pending", "--topic", topic, NULL};
  char *out = peer_run(&py, 20000, pend);
  CHECK_MSG(out_long(out, "count") == 3 && strstr(out, "id=636f2d32"),
            "Python's pending:\n%s", out);
  free(out);
  py_simple(&py, "cancel", topic, "co-1", "ok");
  CHECK(!test_is_pending(e, topic, "co-1"));
  CHECK_EQ_INT(py_simple(&py, "cancel-all", topic, NULL, "count"), 2);
  CHECK(!test_is_pending(e, topic, "co-0"));
  timers_engine_destroy(e);
}

/* ------------------------- cases: where the engine used to differ */

/* TimersRouter(prefix="my-service:"): topic my-service:invoices, both ways. */
static void case_router_prefix(void) {
  const peer routed = {NULL, NULL, "my-service:"};
  const char *topic = "my-service:invoices";
  pymsg m;
  py_publish(&routed, "invoices", "inv-1", "text", "hello", 5, NULL, 0, &m);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 1, 20000), "inv-1 never fired");
  expect_same("inv-1", &m);
  pymsg_free(&m);
  c_publish(e, topic, "inv-2", "x", 1, NULL, 0, 3600, NULL, NULL);
  CHECK_EQ_INT(py_simple(&routed, "has-pending", "invoices", "inv-2", "pending"), 1);
  timers_engine_destroy(e);
}

/* TimersBroker(timeline_key="svc:timeline", payloads_key="svc:payloads"). */
static void case_custom_base_keys(void) {
  const peer svc = {"svc:timeline", "svc:payloads", NULL};
  const char *topic = "fs.svc";
  pymsg m;
  py_publish(&svc, topic, "svc-1", "text", "hello", 5, NULL, 0, &m);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler,
                               "svc:timeline", "svc:payloads");
  CHECK_MSG(fired_wait_distinct(&fired, 1, 20000), "svc-1 never fired");
  expect_same("svc-1", &m);
  pymsg_free(&m);
  c_publish(e, topic, "svc-2", "x", 1, NULL, 0, 3600, NULL, NULL);
  CHECK_EQ_INT(py_simple(&svc, "has-pending", topic, "svc-2", "pending"), 1);
  timers_engine_destroy(e);
}

static const char **many_headers(size_t n) {
  const char **kv = xrealloc(NULL, 2 * n * sizeof *kv);
  for (size_t i = 0; i < n; i++) {
    char *k = xrealloc(NULL, 24);
    snprintf(k, 24, "h%zu", i);
    kv[2 * i] = k;
    kv[2 * i + 1] = "v";
  }
  return kv;
}

/* 70 headers written by Python: all 71 (with correlation_id) reach the C
 * handler. */
static void case_py_to_c_70_headers(void) {
  const char *topic = "fs.many.p2c";
  const char **kv = many_headers(70);
  pymsg m;
  py_publish(&py, topic, "many-1", "bytes", "x", 1, kv, 70, &m);
  CHECK_EQ_INT(m.n, 71);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 1, 20000), "many-1 never fired");
  expect_same("many-1", &m);
  pymsg_free(&m);
  timers_engine_destroy(e);
}

/* 70 headers written by C reach Python. */
static void case_c_to_py_70_headers(void) {
  const char *topic = "fs.many.c2p";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  const char **kv = many_headers(70);
  timers_header h[70];
  for (int i = 0; i < 70; i++) h[i] = (timers_header){kv[2 * i], kv[2 * i + 1]};
  c_publish(e, topic, "many-2", "x", 1, h, 70, 3600, NULL, NULL);
  pymsg m;
  py_parse_stored(&py, topic, "many-2", &m);
  CHECK_EQ_INT(m.n, 72);
  pymsg_free(&m);
  timers_engine_destroy(e);
}

/* Starts a C consumer, stores a "marker" timer after the others, waits
 * for it to fire; the others have been looked at by then. */
static timers_engine *consume_until_marker(const char *topic) {
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  py_publish(&py, topic, "marker", "text", "m", 1, NULL, 0, NULL);
  double deadline = mono_ms() + 20000;
  while (fired_log_count(&fired, "marker") == 0 && mono_ms() < deadline)
    sleep_ms(5);
  CHECK_MSG(fired_log_count(&fired, "marker") == 1, "marker never fired");
  sleep_ms(300);
  return e;
}

/* A member that is not UTF-8: Python's due() removes it unread; so must
 * the engine's claim. */
static void case_non_utf8_member(void) {
  const char *topic = "fs.badid";
  redisContext *c = redisConnect("127.0.0.1", rs.port);
  CHECK(c && !c->err);
  const char bad[] = "\xff\xfe";
  freeReplyObject(redisCommand(c, "ZADD timers_timeline:%s %f %b", topic,
                               timers_now() - 1, bad, (size_t)2));
  freeReplyObject(redisCommand(c, "HSET timers_payloads:%s %b x", topic, bad,
                               (size_t)2));
  timers_engine *e = consume_until_marker(topic);
  CHECK_MSG(fired_log_count(&fired, bad) == 0, "a non-UTF-8 id was delivered");
  redisReply *r = redisCommand(c, "ZSCORE timers_timeline:%s %b", topic, bad, (size_t)2);
  CHECK_MSG(r && r->type == REDIS_REPLY_NIL, "the non-UTF-8 member is still there");
  freeReplyObject(r);
  redisFree(c);
  timers_engine_destroy(e);
}

/* Ids are any str in Python: C fires, inspects and cancels them. */
static void case_non_ascii_ids(void) {
  const char *topic = "fs.ids";
  const char *id = "заказ 1";
  py_publish(&py, topic, id, "text", "x", 1, NULL, 0, NULL);
  py_publish(&py, topic, "будущий", "text", "x", 1, NULL, 0, NULL);
  timers_engine *e = fs_engine(topic, 30000, 0, record_ack_handler, NULL, NULL);
  CHECK_MSG(fired_wait_distinct(&fired, 2, 20000), "never fired");
  /* acked after the handler returned: gone within a round trip */
  CHECK(wait_not_pending(e, topic, id, 10000));
  timers_engine_destroy(e);
}

/* A 0.x envelope whose "b" is not hex: Python's parser removes the timer
 * without running a handler. */
static void case_legacy_not_hex_dropped(void) {
  const char *topic = "fs.drop";
  const char *bad = "{\"b\": \"zz\", \"ct\": \"text/plain\"}";
  py_publish_raw(&py, topic, "drop-1", bad, strlen(bad));
  timers_engine *e = consume_until_marker(topic);
  CHECK_MSG(fired_log_count(&fired, "drop-1") == 0, "drop-1 was delivered");
  CHECK(!test_is_pending(e, topic, "drop-1"));
  timers_engine_destroy(e);
}

/* FastStream JSON with "headers": null: Python's parser raises, the
 * timer is never handled and stays leased. */
static void case_stuck_not_delivered(void) {
  const char *topic = "fs.stuck";
  const char *bad = "{\"data\": \"x\", \"headers\": null}";
  py_publish_raw(&py, topic, "stuck-1", bad, strlen(bad));
  timers_engine *e = consume_until_marker(topic);
  CHECK_MSG(fired_log_count(&fired, "stuck-1") == 0, "stuck-1 was delivered");
  CHECK(test_is_pending(e, topic, "stuck-1"));
  timers_engine_destroy(e);
}

/* timers_schedule in the FASTSTREAM layout writes what TimersBroker.publish
 * writes: correlation_id and the content-type. */
static void case_c_publish_headers(void) {
  const char *topic = "fs.hdr";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  timers_timer t = {.topic = topic, .id = "hdr-1", .payload = "hello",
                    .payload_len = 5, .has_activate_in = true,
                    .activate_in = 3600};
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  pymsg m;
  py_parse_stored(&py, topic, "hdr-1", &m);
  CHECK_EQ_INT(m.n, 2);
  CHECK(strcmp(m.key[0], "correlation_id") == 0 && strcmp(m.val[0], "hdr-1") == 0);
  CHECK(strcmp(m.key[1], "content-type") == 0 && strcmp(m.val[1], "text/plain") == 0);
  pymsg_free(&m);
  timers_engine_destroy(e);
}

/* A generated id looks like Python's str(uuid4()). */
static void case_c_generated_id(void) {
  const char *topic = "fs.genid";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  timers_timer t = {.topic = topic, .has_activate_in = true, .activate_in = 60};
  char id[TIMERS_ID_MAX + 1];
  CHECK_OK(timers_schedule(e, &t, id, sizeof id));
  CHECK_MSG(strlen(id) == 36 && id[8] == '-' && id[13] == '-' &&
                id[14] == '4' && id[18] == '-' && id[23] == '-' &&
                strchr("89ab", id[19]),
            "id %s is not a uuid4 string", id);
  timers_engine_destroy(e);
}

/* Python allows an empty header key. */
static void case_c_empty_header_key(void) {
  const char *topic = "fs.emptykey";
  timers_engine *e = fs_engine(topic, 0, 0, NULL, NULL, NULL);
  timers_header h[] = {{"", "v"}};
  c_publish(e, topic, "ek-1", "x", 1, h, 1, 3600, NULL, NULL);
  pymsg m;
  py_parse_stored(&py, topic, "ek-1", &m);
  CHECK(m.n == 3 && strcmp(m.key[2], "") == 0 && strcmp(m.val[2], "v") == 0);
  pymsg_free(&m);
  timers_engine_destroy(e);
}

/* --------------------------------------------------------------- main */

typedef struct tcase {
  const char *name;
  void (*fn)(void);
} tcase;

#define CASE(f) {#f, f}

static const tcase shared[] = {
    CASE(case_py_to_c_bodies),      CASE(case_py_to_c_non_ascii_headers),
    CASE(case_py_to_c_legacy),      CASE(case_c_to_py_bodies),
    CASE(case_both_consume),        CASE(case_late_c_ack_fenced),
    CASE(case_cross_ops),
};

static const tcase as_python[] = {
    CASE(case_router_prefix),        CASE(case_custom_base_keys),
    CASE(case_py_to_c_70_headers),   CASE(case_c_to_py_70_headers),
    CASE(case_non_utf8_member),      CASE(case_non_ascii_ids),
    CASE(case_legacy_not_hex_dropped), CASE(case_stuck_not_delivered),
    CASE(case_c_publish_headers),    CASE(case_c_generated_id),
    CASE(case_c_empty_header_key),
};

/* Runs one case in a child, at most 90 s. */
static bool run_case(const tcase *t) {
  printf("-- %s\n", t->name);
  fflush(stdout);
  double t0 = mono_ms();
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    fired_log_init(&fired);
    t->fn();
    fflush(NULL);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (mono_ms() - t0 > 90000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      printf("   (timed out)\n");
      break;
    }
    sleep_ms(10);
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("   %s %s (%.0f ms)\n", ok ? "PASS" : "FAIL", t->name, mono_ms() - t0);
  fflush(stdout);
  return ok;
}

int main(void) {
  test_redis_start(&rs, false);
  int failed = 0;
  size_t n = 0;
  for (size_t i = 0; i < sizeof shared / sizeof *shared; i++, n++)
    failed += !run_case(&shared[i]);
  for (size_t i = 0; i < sizeof as_python / sizeof *as_python; i++, n++)
    failed += !run_case(&as_python[i]);
  test_redis_stop(&rs);
  printf("%d passed, %d failed\n", (int)n - failed, failed);
  return failed;
}
