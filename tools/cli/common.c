/*
 * common.c - helpers shared by the `timers` subcommands (see common.h).
 *
 * Signals: the handler only records the signal. Once cli_redis_open() has
 * blocked SIGINT/SIGTERM, a subcommand's main thread takes them with
 * sigtimedwait() in cli_interrupted() while it waits, and no engine thread
 * (they inherit the blocked mask) is ever interrupted by one.
 */
#include "common.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "text.h"

static volatile sig_atomic_t g_signal;

/* ---------------------------------------------------------------- clocks */

uint64_t cli_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double cli_mono_s(void) { return (double)cli_mono_ns() / 1e9; }

/* -------------------------------------------------------------- signals */

int cli_signal(void) { return g_signal; }

static void on_signal(int sig) { g_signal = sig; }

static void signals_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
}

static void signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static void signals_block(void) {
  sigset_t set;
  signals_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

bool cli_interrupted(double seconds) {
  if (g_signal) return true;
  if (!(seconds > 0)) seconds = 0;
  sigset_t set;
  signals_set(&set);
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - floor(seconds)) * 1e9)};
  int sig = sigtimedwait(&set, NULL, &ts);
  if (sig > 0) g_signal = sig;
  return g_signal != 0;
}

/* -------------------------------------------------------------- logging */

void cli_log_to_stderr(void *userdata, timers_log_level level,
                       const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  (void)userdata;
  fprintf(stderr, "\ntimers [%s] %s\n", names[level & 3], msg);
}

void cli_log_line(void *userdata, timers_log_level level, const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  (void)userdata;
  fprintf(stderr, "timers [%s] %s\n", names[level & 3], msg);
}

void cli_fail(const char *cmd, const char *what, int rc) {
  fprintf(stderr, "timers %s: %s: %s (%s)\n", cmd, what, timers_strerror(rc),
          timers_last_error());
}

/* ---------------------------------------------------------------- flags */

bool cli_parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool cli_parse_int(const char *s, long lo, long hi, int *out) {
  long v;
  if (!cli_parse_long(s, lo, hi, &v)) return false;
  *out = (int)v;
  return true;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

bool cli_parse_duration(const char *s, double hi, double *out) {
  static const struct {
    const char *suffix;
    double scale;
  } units[] = {{"", 1},  {"us", 1e-6}, {"ms", 1e-3}, {"s", 1},
               {"m", 60}, {"h", 3600},  {"d", 86400}};
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v < 0) return false;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix) != 0) continue;
    v *= units[i].scale;
    if (v > hi) return false;
    *out = v;
    return true;
  }
  return false;
}

/* Matches "--name VALUE" and "--name=VALUE" (a switch: "--name" alone);
 * advances *i past the value. */
static bool flag_match(int argc, char **argv, int *i, const cli_flag *f,
                       const char **value, bool *missing) {
  const char *a = argv[*i];
  size_t len = strlen(f->name);
  if (strncmp(a, f->name, len) != 0) return false;
  if (!f->takes_value) return a[len] == '\0';
  if (a[len] == '=') {
    *value = a + len + 1;
    return true;
  }
  if (a[len] != '\0') return false;
  if (*i + 1 >= argc) {
    *missing = true;
    return true;
  }
  *value = argv[++*i];
  return true;
}

/* Parses argv[*i]; returns 0 or 2 after printing what was wrong. */
static int parse_one(const char *cmd, int argc, char **argv, int *i,
                     const cli_flag *flags, size_t flag_count,
                     cli_flag_fn apply, void *opts) {
  const char *arg = argv[*i];
  for (size_t k = 0; k < flag_count; k++) {
    const char *v = NULL;
    bool missing = false;
    if (!flag_match(argc, argv, i, &flags[k], &v, &missing)) continue;
    if (missing) {
      fprintf(stderr, "timers %s: %s needs a value (%s)\n\n", cmd,
              flags[k].name, flags[k].allowed);
      return 2;
    }
    if (apply(opts, flags[k].name, v)) return 0;
    if (v)
      fprintf(stderr, "timers %s: invalid value for %s: '%s' (allowed: %s)\n\n",
              cmd, flags[k].name, v, flags[k].allowed);
    else
      fprintf(stderr, "timers %s: %s: %s\n\n", cmd, flags[k].name,
              flags[k].allowed);
    return 2;
  }
  fprintf(stderr, "timers %s: unknown option '%s'\n\n", cmd, arg);
  return 2;
}

static bool is_positional(const char *a) {
  return a[0] != '-' || strcmp(a, "-") == 0;
}

int cli_parse_args(const char *cmd, int argc, char **argv,
                   const cli_flag *flags, size_t flag_count, cli_flag_fn apply,
                   void *opts, void (*usage)(FILE *), const char **pos,
                   int max_pos, int *npos) {
  bool flags_done = false;
  *npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!flags_done && max_pos > 0 && strcmp(a, "--") == 0) {
      flags_done = true;
      continue;
    }
    if (max_pos > 0 && (flags_done || is_positional(a))) {
      if (*npos == max_pos) {
        fprintf(stderr, "timers %s: unexpected argument '%s'\n\n", cmd, a);
        usage(stderr);
        return 2;
      }
      pos[(*npos)++] = a;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    }
    if (parse_one(cmd, argc, argv, &i, flags, flag_count, apply, opts)) {
      usage(stderr);
      return 2;
    }
  }
  return 0;
}

int cli_parse_flags(const char *cmd, int argc, char **argv,
                    const cli_flag *flags, size_t flag_count,
                    cli_flag_fn apply, void *opts, void (*usage)(FILE *)) {
  int npos;
  return cli_parse_args(cmd, argc, argv, flags, flag_count, apply, opts,
                        usage, NULL, 0, &npos);
}

/* ------------------------------------------------------ global options */

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || strchr("_.-/", c) != NULL;
}

static bool valid_name(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return false;
  for (size_t i = 0; i < n; i++)
    if (!name_char(s[i])) return false;
  return true;
}

bool cli_when_apply(cli_when *w, const char *name, const char *value,
                    bool *ok) {
  if (strcmp(name, "--at") == 0) {
    w->has_at = true;
    *ok = cli_parse_time(value, timers_now(), &w->at);
  } else if (strcmp(name, "--in") == 0) {
    w->has_in = true;
    *ok = cli_parse_duration(value, 100 * 365 * 86400.0, &w->in);
  } else {
    return false;
  }
  return true;
}

double cli_when_time(const cli_when *w, double now) {
  return w->has_at ? w->at : now + (w->has_in ? w->in : 0);
}

bool cli_global_apply(cli_global *g, const char *name, const char *v,
                      bool *ok) {
  int shards;
  *ok = true;
  if (strcmp(name, "--config") == 0) *ok = *(g->config = v) != '\0';
  else if (strcmp(name, "--redis") == 0) *ok = *(g->redis = v) != '\0';
  else if (strcmp(name, "--key-prefix") == 0)
    *ok = valid_name(g->key_prefix = v, TIMERS_TOPIC_MAX);
  else if (strcmp(name, "--shards") == 0)
    *ok = cli_parse_int(g->shards = v, 1, TIMERS_SHARDS_MAX, &shards);
  else if (strcmp(name, "--json") == 0) g->json = true;
  else if (strcmp(name, "--compat") == 0) g->compat = true;
  else if (strcmp(name, "--verbose") == 0 || strcmp(name, "-v") == 0)
    g->verbose++;
  else return false;
  return true;
}

int cli_settings_open(const char *cmd, const cli_global *g,
                      timers_settings **out) {
  const char *path = g->config ? g->config : getenv("TIMERS_CONFIG");
  if (path && !*path) path = NULL;
  int rc = timers_settings_load(path, out);
  const struct {
    const char *section, *key, *value;
  } flags[] = {{"redis", "address", g->redis},
               {"redis", "key_prefix", g->key_prefix},
               {"engine", "shards", g->shards}};
  for (size_t i = 0; rc == TIMERS_OK && i < sizeof flags / sizeof *flags; i++)
    if (flags[i].value)
      rc = timers_settings_set(*out, flags[i].section, flags[i].key,
                               flags[i].value);
  if (rc == TIMERS_OK) return 0;
  fprintf(stderr, "timers %s: %s\n", cmd, timers_last_error());
  timers_settings_free(*out);
  *out = NULL;
  return 1;
}

bool cli_topic_options(const cli_global *g, const timers_settings *s,
                       const char *topic, timers_subscribe_options *opts) {
  bool has = timers_settings_topic(s, topic, opts);
  if (g->compat) {
    opts->layout = TIMERS_LAYOUT_FASTSTREAM;
    opts->shards = 0; /* FASTSTREAM: always one */
  }
  return has || g->compat;
}

int cli_engine_open(const char *cmd, const cli_global *g,
                    const timers_settings *s, const char *const *topics,
                    size_t n, timers_engine **out) {
  timers_config cfg = *timers_settings_config(s);
  cfg.log = cli_log_line;
  if (g->verbose)
    cfg.log_level = g->verbose > 1 ? TIMERS_LOG_DEBUG : TIMERS_LOG_INFO;
  int rc = timers_engine_create(&cfg, out);
  if (rc != TIMERS_OK) return cli_fail(cmd, "timers_engine_create", rc), 1;
  for (size_t i = 0; i < n; i++) {
    timers_subscribe_options opts;
    if (!cli_topic_options(g, s, topics[i], &opts)) continue;
    rc = timers_declare(*out, topics[i], &opts);
    if (rc == TIMERS_OK || rc == TIMERS_EEXIST) continue; /* named twice */
    cli_fail(cmd, "timers_declare", rc);
    timers_engine_destroy(*out);
    *out = NULL;
    return 1;
  }
  return 0;
}

/* -------------------------------------------------------- topics and ids */

timers_layout cli_topic_layout(const cli_global *g, const timers_settings *s,
                               const char *topic) {
  timers_subscribe_options o;
  return cli_topic_options(g, s, topic, &o) ? o.layout : TIMERS_LAYOUT_NATIVE;
}

/* What the layout allows, after the library's reason (which may not say). */
static void names_allowed(const char *topic, timers_layout layout, bool id) {
  fputs("  topic ", stderr);
  cli_json_cstr(stderr, topic);
  if (layout == TIMERS_LAYOUT_FASTSTREAM) {
    fprintf(stderr, " has the faststream layout: topics and ids are\n"
            "  1 to %d bytes of UTF-8 without NUL\n", TIMERS_TOPIC_MAX);
    return;
  }
  if (id)
    fprintf(stderr, " has the native layout: ids are 1 to %d bytes\n"
            "  of printable ASCII without blanks", TIMERS_ID_MAX);
  else
    fprintf(stderr, " has the native layout: topics are\n"
            "  1 to %d bytes of A-Z a-z 0-9 _ . - /", TIMERS_TOPIC_MAX);
  fputs("; the faststream layout (--compat,\n"
        "  or layout = faststream in the topic's [topic NAME] section) "
        "takes any UTF-8\n", stderr);
}

/* rc of a check of id (NULL: of topic) as 0, 1 (not about the name) or 2
 * (after saying why and what is allowed). */
static int name_status(const char *cmd, int rc, const char *call,
                       const char *what, const char *topic,
                       timers_layout layout, const char *id) {
  if (rc == TIMERS_OK) return 0;
  if (rc != TIMERS_EINVAL && rc != TIMERS_ETOOBIG)
    return cli_fail(cmd, call, rc), 1;
  fprintf(stderr, "timers %s: invalid %s ", cmd, what);
  cli_json_cstr(stderr, id ? id : topic);
  fprintf(stderr, ": %s\n", timers_last_error());
  names_allowed(topic, layout, id != NULL);
  return 2;
}

/* Declares topic's layout on the scratch engine e, then checks the name.
 * A bare declaration can fail only on the name (or memory), with the
 * reason timers_check_name would give. */
static int topic_check(const char *cmd, const cli_global *g,
                       const timers_settings *s, timers_engine *e,
                       const char *topic, const char *what) {
  timers_subscribe_options o = {.layout = cli_topic_layout(g, s, topic)};
  const char *call = "timers_declare";
  int rc = o.layout == TIMERS_LAYOUT_NATIVE ? TIMERS_OK
                                            : timers_declare(e, topic, &o);
  if (rc == TIMERS_OK || rc == TIMERS_EEXIST) { /* EEXIST: named twice */
    call = "timers_check_name";
    rc = timers_check_name(e, topic, NULL);
  }
  return name_status(cmd, rc, call, what, topic, o.layout, NULL);
}

/* The check runs on a scratch engine that knows nothing but the topics'
 * layouts, so that it cannot depend on what the command declares later
 * (and declaring a real topic with a bad name would fail as a settings
 * error, not as bad usage). Creating it does no I/O. */
int cli_names_check(const char *cmd, const cli_global *g,
                    const timers_settings *s, const cli_names *n) {
  assert(n->nids == 0 || n->ntopics == 1);
  timers_config cfg;
  timers_config_init(&cfg);
  timers_engine *e = NULL;
  int rc = timers_engine_create(&cfg, &e), status = 0;
  if (rc != TIMERS_OK) return cli_fail(cmd, "timers_engine_create", rc), 1;
  for (size_t i = 0; !status && i < n->ntopics; i++)
    status = topic_check(cmd, g, s, e, n->topics[i], n->topic_what);
  timers_layout layout =
      n->nids ? cli_topic_layout(g, s, n->topics[0]) : TIMERS_LAYOUT_NATIVE;
  for (size_t i = 0; !status && i < n->nids; i++)
    status = name_status(cmd, timers_check_name(e, n->topics[0], n->ids[i]),
                         "timers_check_name", n->id_what, n->topics[0],
                         layout, n->ids[i]);
  timers_engine_destroy(e);
  return status;
}

int cli_client_open(const char *cmd, const cli_global *g,
                    const cli_names *names, timers_settings **s,
                    timers_engine **e) {
  *e = NULL;
  if (cli_settings_open(cmd, g, s) != 0) return 1;
  int status = cli_names_check(cmd, g, *s, names);
  if (!status)
    status = cli_engine_open(cmd, g, *s, names->topics, names->ntopics, e);
  if (!status) return 0;
  timers_settings_free(*s);
  *s = NULL;
  return status;
}

void cli_client_close(timers_settings *s, timers_engine *e) {
  timers_engine_destroy(e);
  timers_settings_free(s);
}

int cli_iter_print(const char *cmd, timers_pending_iter *it,
                   cli_list_form form, const char *time_key, long limit) {
  const char *id;
  double at;
  long n = 0;
  int rc = TIMERS_OK;
  while ((limit == 0 || n < limit) &&
         (rc = timers_pending_next(it, &id, &at)) == TIMERS_OK) {
    cli_list_print(stdout, form, time_key, id, at);
    n++;
  }
  if (rc == TIMERS_OK || rc == TIMERS_EDONE) return 0;
  cli_fail(cmd, "timers_pending_next", rc);
  return 1;
}

void cli_signals_take(void) {
  signals_install();
  signals_block();
}

/* ---------------------------------------------------------- status line */

void cli_status_init(cli_status *st, FILE *out, bool force, double tty_every,
                     double pipe_every) {
  bool tty = isatty(fileno(out));
  double every = tty ? tty_every : pipe_every;
  *st = (cli_status){.out = out,
                     .enabled = tty || force,
                     .tty = tty,
                     .every = every,
                     .next = cli_mono_s() + every};
}

bool cli_status_due(const cli_status *st) {
  return st->enabled && cli_mono_s() >= st->next;
}

void cli_status_printf(cli_status *st, const char *fmt, ...) {
  if (!st->enabled) return;
  va_list ap;
  va_start(ap, fmt);
  if (st->tty) fputc('\r', st->out);
  vfprintf(st->out, fmt, ap);
  va_end(ap);
  fputs(st->tty ? "\033[K" : "\n", st->out);
  fflush(st->out);
  st->printed = true;
  st->next = cli_mono_s() + st->every;
}

void cli_status_end(cli_status *st) {
  if (st->tty && st->printed) {
    fputc('\n', st->out);
    fflush(st->out);
  }
  st->printed = false;
}

/* -------------------------------------------------------- tags and ids */

void cli_run_tag(char *tag, size_t cap) {
  uint64_t mix = cli_mono_ns() ^ ((uint64_t)getpid() << 32);
  mix ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u;
  snprintf(tag, cap, "%08x", (unsigned)(mix ^ (mix >> 32)));
}

long cli_id_index(const char *tag, size_t tag_len, uint64_t n,
                  const char *id) {
  if (strncmp(id, tag, tag_len) != 0 || id[tag_len] != '-') return -1;
  const char *digits = id + tag_len + 1;
  if (*digits < '0' || *digits > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long i = strtoull(digits, &end, 10);
  if (errno || *end || i >= n) return -1;
  return (long)i;
}

/* ------------------------------------------------------- private Redis */

int cli_redis_open(const char *cmd, const char *addr, redis_server *rs,
                   const char **out) {
  memset(rs, 0, sizeof *rs);
  signals_install();
  if (!addr && redis_server_start(rs, true, false) != 0) {
    fprintf(stderr, "timers %s: cannot start a private redis-server\n", cmd);
    return 1;
  }
  signals_block();
  *out = addr ? addr : rs->addr;
  return 0;
}

void cli_redis_close(redis_server *rs) { redis_server_stop(rs); }
