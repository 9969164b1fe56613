/*
 * cmd_stats.c - `timers stats [TOPIC...]` (one reading) and `timers top
 * [TOPIC...]` (the same, refreshed live): per topic and shard, pending,
 * overdue, the age of the oldest overdue timer, how many come due within
 * a minute, an hour and a day, and the dead letters; top adds rates of
 * change.
 *
 * Each reading is one timers_topic_depth_get per topic (one pipelined round
 * trip over its shards). Topics come from the arguments, else from the
 * config's [topic NAME] sections.
 *
 * --prometheus prints the library's exposition of all the topics' depths.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "text.h"
#include "timers.h"

#define STATS_TOPICS_MAX 256

typedef struct stats_opts {
  cli_global g;
  bool prometheus, totals;
  double interval;
  long iterations; /* top: 0 = until q or a signal */
} stats_opts;

/* One reading of every topic. */
typedef struct snapshot {
  size_t n;
  timers_topic_depth *d[STATS_TOPICS_MAX];
  double mono; /* when it was taken */
} snapshot;

/* A shard's rates between two readings (top). */
typedef struct rates {
  bool valid;
  double pending, overdue; /* change per second */
} rates;

/* ---------------------------------------------------------------- usage */

static void usage_stats(FILE *out) {
  fprintf(out,
          "usage: timers stats [TOPIC...] [options]\n"
          "\n"
          "Per topic and shard: timers pending, overdue (due, not claimed),\n"
          "age of the oldest overdue timer, how many come due within\n"
          "1m / 1h / 1d, and dead letters (timers dead list). Topics: the\n"
          "arguments, else the config's [topic NAME] sections. Exits 0, 1 on\n"
          "failure, 2 on bad usage.\n"
          "\n"
          "options:\n"
          "  --totals           one row per topic, no shard rows\n"
          "  --prometheus       Prometheus text format (gauges per shard)\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static void usage_top(FILE *out) {
  fprintf(out,
          "usage: timers top [TOPIC...] [options]\n"
          "\n"
          "The table of `timers stats`, redrawn every --interval with the\n"
          "change per second of pending and overdue. Quits on q or SIGINT.\n"
          "When stdout is not a terminal, prints one table (or with --json\n"
          "one JSON line) per interval. Exits 0, 1 on failure, 2 on bad\n"
          "usage.\n"
          "\n"
          "options:\n"
          "  --interval D       time between readings (default 2s)\n"
          "  --iterations N     stop after N readings\n"
          "  --totals           one row per topic, no shard rows\n"
          CLI_GLOBAL_COMPAT_USAGE CLI_GLOBAL_USAGE
          "  -h, --help         this help\n");
}

static const cli_flag stats_flags[] = {
    {"--totals", false, "takes no value"},
    {"--prometheus", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static const cli_flag top_flags[] = {
    {"--interval", true, "a duration from 100ms to 1h, e.g. 500ms, 2s"},
    {"--iterations", true, "an integer from 1 to 1000000000"},
    {"--totals", false, "takes no value"},
    CLI_GLOBAL_COMPAT_FLAG,
    CLI_GLOBAL_FLAGS,
};

static bool apply_option(void *opts, const char *name, const char *v) {
  stats_opts *o = opts;
  bool ok;
  if (cli_global_apply(&o->g, name, v, &ok)) return ok;
  if (strcmp(name, "--totals") == 0) return o->totals = true;
  if (strcmp(name, "--prometheus") == 0) return o->prometheus = true;
  if (strcmp(name, "--iterations") == 0)
    return cli_parse_long(v, 1, 1000000000, &o->iterations);
  return cli_parse_duration(v, 3600, &o->interval) &&
         o->interval >= 0.1; /* --interval */
}

/* ------------------------------------------------------------- readings */

static void snapshot_free(snapshot *s) {
  for (size_t i = 0; i < s->n; i++) timers_topic_depth_free(s->d[i]);
  s->n = 0;
}

static int snapshot_take(timers_engine *e, const char *const *topics,
                         size_t n, snapshot *s) {
  s->n = 0;
  s->mono = cli_mono_s();
  for (size_t i = 0; i < n; i++) {
    int rc = timers_topic_depth_get(e, topics[i], &s->d[i]);
    if (rc != TIMERS_OK) {
      cli_fail("stats", topics[i], rc);
      return snapshot_free(s), 1;
    }
    s->n = i + 1;
  }
  return 0;
}

static double overdue_age(const timers_shard_depth *sd, double now) {
  return sd->overdue && sd->oldest < now ? now - sd->oldest : 0;
}

/* Rates of shard `shard` (UINT32_MAX: the total) of topic i. */
static rates rates_of(const snapshot *cur, const snapshot *prev, size_t i,
                      uint32_t shard) {
  rates r = {0};
  if (!prev || prev->n != cur->n) return r;
  const timers_topic_depth *a = prev->d[i], *b = cur->d[i];
  double dt = cur->mono - prev->mono;
  if (a->shards != b->shards || dt <= 0) return r;
  const timers_shard_depth *x = shard == UINT32_MAX ? &a->total
                                                    : &a->per_shard[shard];
  const timers_shard_depth *y = shard == UINT32_MAX ? &b->total
                                                    : &b->per_shard[shard];
  r.valid = true;
  r.pending = ((double)y->pending - (double)x->pending) / dt;
  r.overdue = ((double)y->overdue - (double)x->overdue) / dt;
  return r;
}

/* ---------------------------------------------------------------- table */

static void table_head(bool with_rates) {
  printf("%-24s %5s %10s %10s %14s %9s %9s %9s %9s", "TOPIC", "SHARD",
         "PENDING", "OVERDUE", "OLDEST OVERDUE", "DUE 1M", "DUE 1H", "DUE 1D",
         "DEAD");
  if (with_rates) printf(" %11s %11s", "PENDING/S", "OVERDUE/S");
  printf("\n");
}

/* A topic in the TOPIC column: as is, or JSON-quoted (cli_name_bare). */
static void print_topic(const char *topic) {
  if (cli_name_bare(topic) || !topic[0]) {
    printf("%-24s", topic);
    return;
  }
  char *q = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&q, &len);
  if (m) cli_json_cstr(m, topic);
  if (m && fclose(m) == 0) printf("%-24s", q);
  free(q);
}

static void table_row(const char *topic, const char *shard,
                      const timers_shard_depth *sd, double now,
                      const rates *r) {
  char age[32];
  cli_age(overdue_age(sd, now), age, sizeof age);
  print_topic(topic);
  printf(" %5s %10llu %10llu %14s %9llu %9llu %9llu %9llu", shard,
         (unsigned long long)sd->pending, (unsigned long long)sd->overdue,
         age, (unsigned long long)sd->due_1m, (unsigned long long)sd->due_1h,
         (unsigned long long)sd->due_1d, (unsigned long long)sd->dead);
  if (r && r->valid) printf(" %+11.1f %+11.1f", r->pending, r->overdue);
  else if (r) printf(" %11s %11s", "-", "-");
  printf("\n");
}

static void print_table(const stats_opts *o, const char *const *topics,
                        const snapshot *cur, const snapshot *prev,
                        bool with_rates) {
  table_head(with_rates);
  for (size_t i = 0; i < cur->n; i++) {
    const timers_topic_depth *d = cur->d[i];
    rates r = rates_of(cur, prev, i, UINT32_MAX);
    table_row(topics[i], "all", &d->total, d->now, with_rates ? &r : NULL);
    for (uint32_t s = 0; !o->totals && d->shards > 1 && s < d->shards; s++) {
      char label[16];
      snprintf(label, sizeof label, "%u", s);
      r = rates_of(cur, prev, i, s);
      table_row("", label, &d->per_shard[s], d->now, with_rates ? &r : NULL);
    }
  }
}

/* ----------------------------------------------------------------- JSON */

static void json_depth(const timers_shard_depth *sd, double now,
                       const rates *r) {
  printf("\"pending\":%llu,\"overdue\":%llu,\"oldest_overdue_s\":%.6f,"
         "\"due_1m\":%llu,\"due_1h\":%llu,\"due_1d\":%llu,\"dead\":%llu",
         (unsigned long long)sd->pending, (unsigned long long)sd->overdue,
         overdue_age(sd, now), (unsigned long long)sd->due_1m,
         (unsigned long long)sd->due_1h, (unsigned long long)sd->due_1d,
         (unsigned long long)sd->dead);
  if (r->valid)
    printf(",\"pending_per_s\":%.3f,\"overdue_per_s\":%.3f", r->pending,
           r->overdue);
}

static void print_json(const stats_opts *o, const char *const *topics,
                       const snapshot *cur, const snapshot *prev) {
  char now[CLI_TIME_CAP];
  cli_iso_time(timers_now(), 6, now, sizeof now);
  printf("{\"now\":\"%s\",\"topics\":[", now);
  for (size_t i = 0; i < cur->n; i++) {
    const timers_topic_depth *d = cur->d[i];
    rates r = rates_of(cur, prev, i, UINT32_MAX);
    printf("%s{\"topic\":", i ? "," : "");
    cli_json_cstr(stdout, topics[i]);
    printf(",\"shards\":%u,", d->shards);
    json_depth(&d->total, d->now, &r);
    printf(",\"per_shard\":[");
    for (uint32_t s = 0; !o->totals && s < d->shards; s++) {
      r = rates_of(cur, prev, i, s);
      printf("%s{\"shard\":%u,", s ? "," : "", s);
      json_depth(&d->per_shard[s], d->now, &r);
      printf("}");
    }
    printf("]}");
  }
  printf("]}\n");
}

/* ----------------------------------------------------------- prometheus */

static int print_prometheus(const char *const *topics, const snapshot *cur) {
  const timers_topic_depth *const *d = (const timers_topic_depth *const *)cur->d;
  size_t len = timers_topic_depth_prometheus(d, topics, cur->n, NULL, 0);
  char *text = malloc(len + 1);
  if (!text) {
    fprintf(stderr, "timers stats: out of memory\n");
    return 1;
  }
  timers_topic_depth_prometheus(d, topics, cur->n, text, len + 1);
  fputs(text, stdout);
  free(text);
  return 0;
}

/* ---------------------------------------------------------------- topics */

/* The arguments, else the config's [topic] sections; 0 or 2. */
static int pick_topics(const char *cmd, const timers_settings *s,
                       const char **pos, int npos, const char **topics,
                       size_t *n) {
  *n = 0;
  for (int i = 0; i < npos; i++) topics[(*n)++] = pos[i];
  size_t k = timers_settings_topic_count(s);
  for (size_t i = 0; npos == 0 && i < k && i < STATS_TOPICS_MAX; i++)
    topics[(*n)++] = timers_settings_topic_name(s, i);
  if (*n) return 0;
  fprintf(stderr,
          "timers %s: no topics: name them, or add [topic NAME] sections "
          "to the config\n",
          cmd);
  return 2;
}

/* Parses, loads the settings and opens the client; 0 or the exit status
 * plus 1. */
static int stats_open(const char *cmd, int argc, char **argv,
                      const cli_flag *flags, size_t nflags,
                      void (*usage)(FILE *), stats_opts *o,
                      const char **topics, size_t *n, timers_settings **s,
                      timers_engine **e) {
  const char *pos[STATS_TOPICS_MAX];
  int npos, status = cli_parse_args(cmd, argc, argv, flags, nflags,
                                    apply_option, o, usage, pos,
                                    STATS_TOPICS_MAX, &npos);
  if (status) return (status == 1 ? 0 : status) + 1;
  if (cli_settings_open(cmd, &o->g, s) != 0) return 2;
  status = pick_topics(cmd, *s, pos, npos, topics, n);
  cli_names names = {topics, *n,
                     npos ? "TOPIC" : "topic of a [topic NAME] section",
                     NULL, 0, NULL};
  if (!status) status = cli_names_check(cmd, &o->g, *s, &names);
  if (!status && cli_engine_open(cmd, &o->g, *s, topics, *n, e) != 0)
    status = 1;
  if (!status) return 0;
  timers_settings_free(*s);
  *s = NULL;
  return status + 1;
}

int cli_stats(int argc, char **argv) {
  stats_opts o = {0};
  const char *topics[STATS_TOPICS_MAX];
  size_t n;
  timers_settings *s = NULL;
  timers_engine *e = NULL;
  int status = stats_open("stats", argc, argv, stats_flags,
                          sizeof stats_flags / sizeof *stats_flags,
                          usage_stats, &o, topics, &n, &s, &e);
  if (status) return status - 1;
  snapshot cur;
  status = snapshot_take(e, topics, n, &cur);
  if (!status) {
    if (o.prometheus) status = print_prometheus(topics, &cur);
    else if (o.g.json) print_json(&o, topics, &cur, NULL);
    else print_table(&o, topics, &cur, NULL, false);
    snapshot_free(&cur);
  }
  cli_client_close(s, e);
  return status;
}

/* ------------------------------------------------------------------- top */

/* The terminal in non-canonical mode without echo, so that q needs no
 * Enter; restored by key_mode_end. */
typedef struct key_mode {
  bool on;
  struct termios saved;
} key_mode;

static void key_mode_begin(key_mode *k) {
  k->on = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &k->saved) == 0;
  if (!k->on) return;
  struct termios raw = k->saved;
  raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  tcsetattr(STDIN_FILENO, TCSANOW, &raw);
}

static void key_mode_end(key_mode *k) {
  if (k->on) tcsetattr(STDIN_FILENO, TCSANOW, &k->saved);
}

/* Waits up to `seconds`; true when q was pressed or a signal arrived. */
static bool top_wait(const key_mode *k, double seconds) {
  double end = cli_mono_s() + seconds;
  while (cli_mono_s() < end) {
    if (cli_interrupted(0)) return true;
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    if (!k->on) {
      if (cli_interrupted(0.05)) return true;
      continue;
    }
    if (poll(&p, 1, 50) == 1) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
        return true;
    }
  }
  return false;
}

static void top_draw(const stats_opts *o, const char *const *topics,
                     const snapshot *cur, const snapshot *prev, bool tty) {
  char now[CLI_TIME_CAP];
  cli_iso_time(timers_now(), 0, now, sizeof now);
  if (o->g.json) {
    print_json(o, topics, cur, prev);
  } else {
    if (tty) printf("\033[H\033[2J");
    printf("timers top  %s  every %.3g s%s\n\n", now, o->interval,
           tty ? "  (q to quit)" : "");
    print_table(o, topics, cur, prev, true);
    if (!tty) printf("\n");
  }
  fflush(stdout);
}

static int top_loop(const stats_opts *o, timers_engine *e,
                    const char *const *topics, size_t n) {
  bool tty = isatty(STDOUT_FILENO) && !o->g.json;
  key_mode k = {0};
  if (tty) key_mode_begin(&k);
  snapshot a = {0}, b = {0}, *cur = &a, *prev = NULL;
  int status = 0;
  for (long i = 0; !o->iterations || i < o->iterations; i++) {
    if ((status = snapshot_take(e, topics, n, cur)) != 0) break;
    top_draw(o, topics, cur, prev, tty);
    if (prev) snapshot_free(prev);
    prev = cur;
    cur = cur == &a ? &b : &a;
    if ((o->iterations && i + 1 == o->iterations) || top_wait(&k, o->interval))
      break;
  }
  if (prev) snapshot_free(prev);
  key_mode_end(&k);
  return status;
}

int cli_top(int argc, char **argv) {
  stats_opts o = {.interval = 2};
  const char *topics[STATS_TOPICS_MAX];
  size_t n;
  timers_settings *s = NULL;
  timers_engine *e = NULL;
  int status = stats_open("top", argc, argv, top_flags,
                          sizeof top_flags / sizeof *top_flags, usage_top, &o,
                          topics, &n, &s, &e);
  if (status) return status - 1;
  cli_signals_take();
  status = top_loop(&o, e, topics, n);
  cli_client_close(s, e);
  return status;
}
