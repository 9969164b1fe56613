/*
 * torture.c - main() of every role, and the driver.
 *
 * The driver: a private redis-server with appendonly; E engine processes
 * and P producer processes (fork + exec of this binary); a fault schedule
 * drawn from the seed, executed on the main thread (the only thread: the
 * redis-server and every child get a parent-death SIGKILL tied to it);
 * then heal (no more faults, everything restarted healthy), settle (wait,
 * bounded, until every timer has its final outcome and Redis holds no
 * timer), a clean stop of the engines, a scan of what Redis still holds,
 * and the oracle. Every wait is bounded; every process and server started
 * is stopped on every path, SIGINT included.
 *
 * The schedule of operations and faults is a function of the seed; their
 * timing is not (real processes, real Redis), so a seed reproduces the
 * same kind of run, not the same interleaving.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis_server.h"
#include "torture.h"

#ifndef TORTURE_DEFAULT_DURATION
#define TORTURE_DEFAULT_DURATION 45
#endif
#ifndef TORTURE_DEFAULT_RATE
#define TORTURE_DEFAULT_RATE 40
#endif
#ifndef TORTURE_DEFAULT_SETTLE
#define TORTURE_DEFAULT_SETTLE 60
#endif

#define MAX_CHILDREN 8
#define STOP_BOUND_S 30.0  /* stop() must return within drain + a handler */
#define MAX_EVENTS 4096
#define MAX_ACTIONS 64
#define MAX_LEFTOVERS 20000

/* ------------------------------------------------------------- options */

typedef struct options {
  uint64_t seed;
  double duration;  /* seconds of faults and producing                   */
  int engines, producers;
  double rate;      /* timers per second per producer                    */
  double settle;    /* bound of the wait for final outcomes               */
  const char *base; /* folder for the run folder                          */
  bool keep, verbose;
  bool gentle;      /* --shape gentle: every engine small and alike        */
  bool single;      /* --batches single: one topic per batch               */
  int workers;      /* --workers N: every engine's worker count (0: shape) */
  unsigned faults;  /* bit per tt_fault enabled                           */
  int examples;
} options;

static void usage(FILE *out) {
  fprintf(out,
"usage: timers_torture [--seed N] [--duration S] [--engines N] [--producers N]\n"
"                      [--rate R] [--settle S] [--faults K,K,...|none]\n"
"                      [--shape random|gentle] [--batches mixed|single]\n"
"                      [--workers N]\n"
"                      [--dir BASE] [--keep] [--verbose] [--examples N]\n"
"       timers_torture check --dir RUN [--verbose] [--examples N]\n"
"\n"
"Randomized, seeded torture test of the timers engine: a private redis-server,\n"
"engine and producer processes, injected faults, then an oracle over every\n"
"delivery. Exit 0 only when every check passes, 1 on violations, 2 when the\n"
"test itself could not run.\n"
"  --seed N        the seed (default: $TORTURE_SEED, else random); printed first\n"
"  --duration S    seconds of producing and faults (default %d)\n"
"  --engines N     engine processes, 2..%d (default 3)\n"
"  --producers N   producer processes, 1..%d (default 2)\n"
"  --rate R        timers per second per producer (default %d)\n"
"  --settle S      bound of the final wait for outcomes (default %d)\n"
"  --faults LIST   fault kinds to inject (default all):\n"
"                  engine_sigkill engine_sigstop engine_clean_restart\n"
"                  redis_sigstop redis_sigkill_restart client_kill\n"
"                  maxmemory_noeviction wrong_type_key producer_sigkill\n"
"                  producer_clean_restart; 'none' for a fault-free run\n"
"  --shape S       engine shapes: random per engine and incarnation (default),\n"
"                  or gentle (all alike: claim 1, ring 16, 4 workers)\n"
"  --batches B     mixed: batches mix topics (default); single: one topic each\n"
"  --workers N     every engine runs N worker threads (default: its shape's)\n"
"  --owned         every test topic's shards are owned (one engine each)\n"
"  --fast          handlers return at once and engines run the library's\n"
"                  default settings (a high --rate: many timers due)\n"
"  --shards N      the multi-shard topics get N shards (default 8 or so)\n"
"  --dir BASE      where the run folder is made (default $TMPDIR or /tmp)\n"
"  --keep          keep the run folder (logs) even when the run passes\n"
"  --verbose       list every fault in the summary\n"
"  --examples N    delivery histories shown per violation kind (default 3)\n",
          TORTURE_DEFAULT_DURATION, MAX_CHILDREN, MAX_CHILDREN,
          TORTURE_DEFAULT_RATE, TORTURE_DEFAULT_SETTLE);
}

static bool parse_faults(const char *list, unsigned *mask) {
  *mask = 0;
  if (strcmp(list, "none") == 0) return true;
  if (strcmp(list, "all") == 0) {
    *mask = (1u << TT_FAULT_COUNT) - 1;
    return true;
  }
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    int k = 0;
    while (k < TT_FAULT_COUNT && strcmp(tt_fault_name(k), tok) != 0) k++;
    if (k == TT_FAULT_COUNT) {
      fprintf(stderr, "torture: unknown fault kind '%s'\n", tok);
      return false;
    }
    *mask |= 1u << k;
  }
  return true;
}

static uint64_t random_seed(void) {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
    s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  return s % 1000000000ull; /* short enough to type */
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){.duration = TORTURE_DEFAULT_DURATION, .engines = 3,
                 .producers = 2, .rate = TORTURE_DEFAULT_RATE,
                 .settle = TORTURE_DEFAULT_SETTLE,
                 .faults = (1u << TT_FAULT_COUNT) - 1, .examples = 3};
  const char *env = getenv("TORTURE_SEED");
  bool seeded = env && *env;
  if (seeded) o->seed = strtoull(env, NULL, 10);
  const char *tmp = getenv("TMPDIR");
  o->base = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--keep") == 0) { o->keep = true; continue; }
    if (strcmp(a, "--verbose") == 0) { o->verbose = true; continue; }
    /* Passed to every process through the environment (tt_plan_init). */
    if (strcmp(a, "--owned") == 0) { setenv("TORTURE_OWNED", "1", 1); continue; }
    if (strcmp(a, "--fast") == 0) { setenv("TORTURE_FAST", "1", 1); continue; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (!v) goto bad;
    i++;
    if (strcmp(a, "--seed") == 0) o->seed = strtoull(v, NULL, 10), seeded = true;
    else if (strcmp(a, "--duration") == 0) o->duration = atof(v);
    else if (strcmp(a, "--engines") == 0) o->engines = atoi(v);
    else if (strcmp(a, "--producers") == 0) o->producers = atoi(v);
    else if (strcmp(a, "--rate") == 0) o->rate = atof(v);
    else if (strcmp(a, "--settle") == 0) o->settle = atof(v);
    else if (strcmp(a, "--dir") == 0) o->base = v;
    else if (strcmp(a, "--examples") == 0) o->examples = atoi(v);
    else if (strcmp(a, "--workers") == 0) o->workers = atoi(v);
    else if (strcmp(a, "--shards") == 0 && atoi(v) > 0 && atoi(v) <= 4096)
      setenv("TORTURE_SHARDS", v, 1);
    else if (strcmp(a, "--shape") == 0 && (!strcmp(v, "random") || !strcmp(v, "gentle")))
      o->gentle = strcmp(v, "gentle") == 0;
    else if (strcmp(a, "--batches") == 0 && (!strcmp(v, "mixed") || !strcmp(v, "single")))
      o->single = strcmp(v, "single") == 0;
    else if (strcmp(a, "--faults") == 0) {
      if (!parse_faults(v, &o->faults)) return -1;
    } else goto bad;
  }
  if (o->engines < 2 || o->engines > MAX_CHILDREN || o->producers < 1 ||
      o->producers > MAX_CHILDREN || o->duration < 1 || o->rate <= 0 ||
      o->settle < 5 || o->workers < 0 || o->workers > 1024) {
    fprintf(stderr, "torture: --engines 2..%d, --producers 1..%d, "
            "--duration >= 1, --rate > 0, --settle >= 5\n", MAX_CHILDREN,
            MAX_CHILDREN);
    return -1;
  }
  if (!seeded) o->seed = random_seed();
  return 0;
bad:
  fprintf(stderr, "torture: bad option or missing value\n");
  usage(stderr);
  return -1;
}

/* -------------------------------------------------------------- state */

typedef struct child {
  int role, index, inc; /* inc: incarnation of the running process      */
  int next_inc;
  pid_t pid;            /* 0: not running                               */
  bool stopped;         /* SIGSTOPped by us                             */
  bool term_sent, kill_sent;
  double term_at;       /* monotonic                                    */
  bool respawn;         /* start a new incarnation once it has exited   */
  double respawn_at;    /* monotonic, not before                        */
  int respawn_fault;    /* fault seq to end at the respawn, or -1       */
} child;

typedef enum action_kind {
  ACT_ENGINE_CONT,
  ACT_REDIS_CONT,
  ACT_REDIS_RESTART,
  ACT_OOM_END,
  ACT_POISON_END,
  ACT_KILL_STORM   /* CLIENT KILL again, until `until` */
} action_kind;

typedef struct action {
  action_kind kind;
  double at;   /* monotonic */
  int target;  /* engine index */
  pid_t pid;   /* the process the action is for */
  int seq;     /* fault seq */
  double until; /* ACT_KILL_STORM: last tick, monotonic */
} action;

typedef struct fault_ev {
  double t, dur; /* seconds from the start of the chaos phase */
  int kind, target, param;
} fault_ev;

typedef struct driver {
  options opt;
  tt_plan plan;
  char dir[512], logdir[600], exe[1024];
  int fd;
  redis_server rs;
  bool redis_down, redis_stopped;
  int redis_inc;
  child eng[MAX_CHILDREN], prod[MAX_CHILDREN];
  double chaos_t0, chaos_end; /* monotonic */
  double chaos_end_wall;
  fault_ev ev[MAX_EVENTS];
  size_t nev, next_ev;
  action act[MAX_ACTIONS];
  size_t nact;
  int fault_seq;
  size_t done[TT_FAULT_COUNT], skipped;
  tt_rng rng;              /* choices made while running (client kill)   */
  long long poison_err0;
  double poison_t0;
  char poison_key[128], poison_id[64];
  tt_oracle *oracle;
  bool healing;            /* run_actions(all): storms end now            */
} driver;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

static double since(const driver *d) { return tt_mono() - d->chaos_t0; }

static void say(const driver *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const driver *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("[%+7.2f] ", d->chaos_t0 ? since(d) : 0.0);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

/* ------------------------------------------------------- driver records */

static void rec_proc(driver *d, tt_kind kind, int role, int index, int inc,
                     pid_t pid, int value, int flags) {
  tt_rec r;
  tt_rec_init(&r, kind);
  r.role = (uint8_t)role;
  r.index = r.attempt = (uint32_t)index;
  r.seq = (uint32_t)inc;
  r.pid = (int32_t)pid;
  r.value = value;
  r.flags = (uint8_t)flags;
  tt_log_append(d->fd, &r, 1);
}

static void rec_signal(driver *d, const child *c, int sig) {
  rec_proc(d, TT_REC_SIGNAL, c->role, c->index, c->inc, c->pid, sig, 0);
}

static void rec_redis_signal(driver *d, int sig) {
  rec_proc(d, TT_REC_SIGNAL, TT_ROLE_REDIS, 0, d->redis_inc, d->rs.pid, sig, 0);
}

static int rec_fault(driver *d, tt_kind kind, int fault, int seq, int target,
                     int param) {
  tt_rec r;
  tt_rec_init(&r, kind);
  r.aux = (uint64_t)fault;
  r.seq = (uint32_t)(seq < 0 ? ++d->fault_seq : seq);
  r.index = (uint32_t)target;
  r.value = param;
  tt_log_append(d->fd, &r, 1);
  return (int)r.seq;
}

static void rec_phase(driver *d, tt_phase ph) {
  tt_rec r;
  tt_rec_init(&r, TT_REC_PHASE);
  r.value = ph;
  tt_log_append(d->fd, &r, 1);
}

static void rec_note(driver *d, tt_note kind, int value, double at,
                     int engines) {
  tt_rec r;
  tt_rec_init(&r, TT_REC_NOTE);
  r.aux = (uint64_t)kind;
  r.value = value;
  r.at = at;
  r.index = (uint32_t)engines;
  tt_log_append(d->fd, &r, 1);
}

/* ----------------------------------------------------------- processes */

static const char *role_name(int role) {
  return role == TT_ROLE_ENGINE ? "engine" : "producer";
}

static void spawn(driver *d, child *c) {
  char idx[16], inc[16], seed[32], rate[32], until[64], err[700], workers[16];
  snprintf(workers, sizeof workers, "%d", d->opt.workers);
  c->inc = c->next_inc++;
  snprintf(idx, sizeof idx, "%d", c->index);
  snprintf(inc, sizeof inc, "%d", c->inc);
  snprintf(seed, sizeof seed, "%" PRIu64, d->plan.seed);
  snprintf(rate, sizeof rate, "%g", d->opt.rate);
  snprintf(until, sizeof until, "%.6f", d->chaos_end_wall);
  snprintf(err, sizeof err, "%s/%s-%d-%d.err", d->logdir, role_name(c->role),
           c->index, c->inc);
  const char *argv[20] = {d->exe, role_name(c->role), "--dir", d->dir,
                          "--redis", d->rs.addr, "--seed", seed,
                          "--index", idx, "--inc", inc};
  int argc = 12;
  if (c->role == TT_ROLE_PRODUCER) {
    argv[argc++] = "--rate", argv[argc++] = rate;
    argv[argc++] = "--until", argv[argc++] = until;
    if (d->opt.single) argv[argc++] = "--single-topic";
  } else {
    if (d->opt.gentle) argv[argc++] = "--gentle";
    if (d->opt.workers > 0) argv[argc++] = "--workers", argv[argc++] = workers;
  }
  argv[argc] = NULL;
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int fd = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(d->exe, (char *const *)argv);
    _exit(127);
  }
  if (pid < 0) {
    say(d, "fork: %s", strerror(errno));
    c->respawn = true, c->respawn_at = tt_mono() + 1;
    return;
  }
  c->pid = pid;
  c->stopped = c->term_sent = c->kill_sent = false;
  c->respawn = false;
  rec_proc(d, TT_REC_SPAWN, c->role, c->index, c->inc, pid, 0, 0);
  if (c->respawn_fault >= 0) {
    rec_fault(d, TT_REC_FAULT_END, -1, c->respawn_fault, c->index, 0);
    c->respawn_fault = -1;
  }
}

static void send_signal(driver *d, child *c, int sig) {
  if (c->pid <= 0) return;
  rec_signal(d, c, sig); /* logged before it happens: write-ahead */
  kill(c->pid, sig);
  if (sig == SIGSTOP) c->stopped = true;
  if (sig == SIGCONT) c->stopped = false;
  if (sig == SIGKILL) c->kill_sent = true;
  if (sig == SIGTERM && !c->term_sent) c->term_sent = true, c->term_at = tt_mono();
}

/* Reaps one child if it exited; a process that ended without being told
 * to is logged as unexpected (a crash) and restarted. */
static void reap_one(driver *d, child *c, bool restart_crashed) {
  int st;
  if (c->pid <= 0 || waitpid(c->pid, &st, WNOHANG) != c->pid) return;
  /* A producer ends by itself (status 0) when the chaos phase is over. */
  bool expected = c->term_sent || c->kill_sent ||
                  (c->role == TT_ROLE_PRODUCER && WIFEXITED(st) &&
                   WEXITSTATUS(st) == 0);
  rec_proc(d, TT_REC_EXIT, c->role, c->index, c->inc, c->pid, st,
           expected ? 0 : TT_F_UNEXPECTED);
  if (!expected) {
    say(d, "%s %d.%d (pid %d) ended on its own: %s %d", role_name(c->role),
        c->index, c->inc, (int)c->pid,
        WIFSIGNALED(st) ? "signal" : "status",
        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    if (restart_crashed && !c->respawn)
      c->respawn = true, c->respawn_at = tt_mono() + 0.5, c->respawn_fault = -1;
  }
  c->pid = 0;
  c->stopped = false;
}

/* A clean stop that does not end in time is a hang: SIGKILL, noted. */
static void watch_stop(driver *d, child *c) {
  if (c->pid <= 0 || !c->term_sent || c->kill_sent) return;
  if (tt_mono() - c->term_at < STOP_BOUND_S) return;
  say(d, "%s %d.%d did not stop within %.0f s after SIGTERM: SIGKILL",
      role_name(c->role), c->index, c->inc, STOP_BOUND_S);
  if (c->role == TT_ROLE_ENGINE)
    rec_note(d, TT_NOTE_STOP_HANG, c->index, STOP_BOUND_S, 0);
  send_signal(d, c, SIGKILL);
}

static void reap_all(driver *d, bool restart_crashed) {
  for (int i = 0; i < d->opt.engines; i++) {
    watch_stop(d, &d->eng[i]);
    reap_one(d, &d->eng[i], restart_crashed);
    child *c = &d->eng[i];
    if (c->pid == 0 && c->respawn && tt_mono() >= c->respawn_at) spawn(d, c);
  }
  for (int i = 0; i < d->opt.producers; i++) {
    watch_stop(d, &d->prod[i]);
    reap_one(d, &d->prod[i], restart_crashed);
    child *c = &d->prod[i];
    if (c->pid == 0 && c->respawn && tt_mono() >= c->respawn_at) spawn(d, c);
  }
}

static int engines_running(const driver *d) {
  int n = 0;
  for (int i = 0; i < d->opt.engines; i++)
    n += d->eng[i].pid > 0 && !d->eng[i].stopped;
  return n;
}

/* Kills every child still running and reaps it (bounded: SIGKILL). */
static void kill_children(driver *d) {
  child *all[2 * MAX_CHILDREN];
  int n = 0;
  for (int i = 0; i < d->opt.engines; i++) all[n++] = &d->eng[i];
  for (int i = 0; i < d->opt.producers; i++) all[n++] = &d->prod[i];
  for (int i = 0; i < n; i++) {
    if (all[i]->pid <= 0) continue;
    send_signal(d, all[i], SIGKILL);
    int st;
    waitpid(all[i]->pid, &st, 0);
    rec_proc(d, TT_REC_EXIT, all[i]->role, all[i]->index, all[i]->inc,
             all[i]->pid, st, 0);
    all[i]->pid = 0;
  }
}

/* ---------------------------------------------------------------- redis */

/* A fresh connection with timeouts (never blocks long on a stalled
 * server; the driver avoids talking to it while it is stopped anyway). */
static redisContext *rconnect(const driver *d) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", d->rs.port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return NULL;
  }
  struct timeval cmd = {3, 0};
  redisSetTimeout(c, cmd);
  return c;
}

static redisReply *rcmd(redisContext *c, const char *fmt, ...) {
  if (!c) return NULL;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  return r;
}

static long long info_field(redisContext *c, const char *section,
                            const char *field) {
  redisReply *r = rcmd(c, "INFO %s", section);
  long long v = -1;
  if (r && r->type == REDIS_REPLY_STRING) {
    const char *p = strstr(r->str, field);
    if (p) v = strtoll(p + strlen(field), NULL, 10);
    else v = 0;
  }
  if (r) freeReplyObject(r);
  return v;
}

static bool redis_restart(driver *d) {
  for (int attempt = 0; attempt < 5; attempt++) {
    if (redis_server_restart(&d->rs) == 0) {
      d->redis_inc++;
      d->redis_down = false;
      rec_proc(d, TT_REC_SPAWN, TT_ROLE_REDIS, 0, d->redis_inc, d->rs.pid, 0, 0);
      return true;
    }
    say(d, "redis-server did not restart (attempt %d)", attempt + 1);
    tt_sleep(1);
  }
  return false;
}

/* Redis died without being told to (not expected: logged, restarted). */
static bool check_redis(driver *d) {
  if (d->redis_down || d->rs.pid <= 0) return true;
  siginfo_t si = {0};
  if (waitid(P_PID, (id_t)d->rs.pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      si.si_pid == 0)
    return true;
  say(d, "redis-server ended on its own; restarting it");
  rec_proc(d, TT_REC_EXIT, TT_ROLE_REDIS, 0, d->redis_inc, d->rs.pid,
           si.si_status, TT_F_UNEXPECTED);
  redis_server_halt(&d->rs, true);
  return redis_restart(d);
}

/* ----------------------------------------------------------- the faults */

static void add_action(driver *d, action_kind k, double at, int target,
                       pid_t pid, int seq) {
  if (d->nact == MAX_ACTIONS) return;
  d->act[d->nact++] = (action){k, at, target, pid, seq, 0};
}

static child *engine_target(driver *d, int i) {
  child *c = &d->eng[i];
  return c->pid > 0 && !c->stopped && !c->term_sent && !c->respawn ? c : NULL;
}

static child *producer_target(driver *d, int i) {
  child *c = &d->prod[i];
  return c->pid > 0 && !c->term_sent && !c->respawn ? c : NULL;
}

/* CLIENT KILL: every normal client, a random half of them, or the pub/sub
 * subscribers (wake messages are then missed). Returns how many. */
static long long client_kill(driver *d, int mode) {
  redisContext *c = rconnect(d);
  long long n = 0;
  redisReply *r = NULL;
  if (mode == 0) r = rcmd(c, "CLIENT KILL TYPE normal SKIPME yes");
  if (mode == 2) r = rcmd(c, "CLIENT KILL TYPE pubsub");
  if (r && r->type == REDIS_REPLY_INTEGER) n = r->integer;
  if (mode == 1) {
    long long me = -1;
    redisReply *id = rcmd(c, "CLIENT ID");
    if (id && id->type == REDIS_REPLY_INTEGER) me = id->integer;
    if (id) freeReplyObject(id);
    r = rcmd(c, "CLIENT LIST TYPE normal");
    for (const char *p = r && r->type == REDIS_REPLY_STRING ? r->str : "";
         (p = strstr(p, "id=")) != NULL; p += 3) {
      long long cid = strtoll(p + 3, NULL, 10);
      if (cid == me || !tt_rng_chance(&d->rng, 500)) continue;
      redisReply *k = rcmd(c, "CLIENT KILL ID %lld", cid);
      if (k && k->type == REDIS_REPLY_INTEGER) n += k->integer;
      if (k) freeReplyObject(k);
    }
  }
  if (r) freeReplyObject(r);
  if (c) redisFree(c);
  return n;
}

static bool redis_ok_cmd(driver *d, const char *fmt, ...) {
  for (int attempt = 0; attempt < 10; attempt++) {
    redisContext *c = rconnect(d);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = c ? redisvCommand(c, fmt, ap) : NULL;
    va_end(ap);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    if (ok) return true;
    tt_sleep(0.2);
  }
  say(d, "a Redis command of the driver failed: %s", fmt);
  return false;
}

static void begin_oom(driver *d, int seq_kind) {
  redisContext *c = rconnect(d);
  long long used = info_field(c, "memory", "used_memory:");
  if (c) redisFree(c);
  /* Half of what is used: far over the limit, which no engine's deletes
   * can undo within the window; writes that need memory are refused. */
  long long limit = used > 0 ? used / 2 : 1 << 20;
  rec_fault(d, TT_REC_FAULT_BEGIN, seq_kind, -1, 0, (int)(limit >> 10));
  redis_ok_cmd(d, "CONFIG SET maxmemory-policy noeviction");
  redis_ok_cmd(d, "CONFIG SET maxmemory %lld", limit);
}

/* An engine handle of the driver's own, for the poison probe only:
 * created and destroyed around each use, so no child inherits its socket. */
static timers_engine *driver_engine(driver *d) {
  timers_config cfg;
  timers_config_init(&cfg);
  cfg.redis = d->rs.addr;
  cfg.key_prefix = TT_KEY_PREFIX;
  cfg.retry_ms = 500;
  const tt_topic *t = &d->plan.topics[d->plan.ntopics - 1];
  timers_subscribe_options o = {.lease_ms = t->lease_ms, .shards = t->shards};
  timers_engine *e = NULL;
  if (timers_engine_create(&cfg, &e) != TIMERS_OK) return NULL;
  if (timers_declare(e, t->name, &o) != TIMERS_OK) {
    timers_engine_destroy(e);
    return NULL;
  }
  return e;
}

/* A probe timer on the poisoned shard, due in a second (its wake message
 * tells every engine to claim that shard then), and the zset key turned
 * into a string right away: the engines meet a wrong-type key where they
 * expect due timers. The poison topic holds no timer under test. */
static void begin_poison(driver *d, int shard) {
  const tt_topic *t = &d->plan.topics[d->plan.ntopics - 1];
  int n = 0;
  do {
    snprintf(d->poison_id, sizeof d->poison_id, "poison-%d-%d", d->fault_seq, n++);
  } while (timers_shard_of(d->poison_id, strlen(d->poison_id),
                           (uint32_t)t->shards) != (uint32_t)shard);
  snprintf(d->poison_key, sizeof d->poison_key, "%s:{%s:%d}:z", TT_KEY_PREFIX,
           t->name, shard);
  char payload[TT_PAYLOAD_MAX];
  timers_header h = {"v", "0000000000000000"};
  timers_timer tm = {.topic = t->name, .id = d->poison_id, .payload = payload,
                     .payload_len = tt_payload_encode(0, d->plan.ntopics - 1, 0,
                                                      payload, sizeof payload),
                     .headers = &h, .header_count = 1,
                     .has_activate_in = true, .activate_in = 1.0};
  timers_engine *e = driver_engine(d);
  if (!e || timers_schedule(e, &tm, NULL, 0) != TIMERS_OK)
    say(d, "poison probe timer not scheduled: %s", timers_last_error());
  timers_engine_destroy(e);
  redisContext *c = rconnect(d);
  d->poison_err0 = info_field(c, "errorstats", "errorstat_WRONGTYPE:count=");
  if (c) redisFree(c);
  d->poison_t0 = tt_mono();
  redis_ok_cmd(d, "SET %s not-a-sorted-set", d->poison_key);
}

/* The key back to nothing, and the probe's payload entry with it. */
static void end_poison(driver *d) {
  redisContext *c = rconnect(d);
  long long err1 = info_field(c, "errorstats", "errorstat_WRONGTYPE:count=");
  if (c) redisFree(c);
  redis_ok_cmd(d, "DEL %s", d->poison_key);
  timers_engine *e = driver_engine(d);
  if (e) timers_cancel(e, d->plan.topics[d->plan.ntopics - 1].name,
                       d->poison_id, NULL);
  timers_engine_destroy(e);
  double secs = tt_mono() - d->poison_t0;
  long long n = err1 >= d->poison_err0 && d->poison_err0 >= 0
                    ? err1 - d->poison_err0 : 0;
  rec_note(d, TT_NOTE_ERRORS, (int)n, secs, engines_running(d));
  say(d, "wrong-type key removed: %lld WRONGTYPE errors in %.1f s", n, secs);
}

/* Starts one fault of the schedule; false when its target is not in a
 * state to take it (skipped, counted). */
static bool begin_fault(driver *d, const fault_ev *e) {
  double now = tt_mono();
  int k = e->kind, seq;
  bool redis_busy = d->redis_down || d->redis_stopped;
  if (tt_fault_is_redis(k) && redis_busy) return false;
  if (k == TT_FAULT_ENGINE_KILL || k == TT_FAULT_ENGINE_STOP ||
      k == TT_FAULT_ENGINE_RESTART) {
    child *c = engine_target(d, e->target);
    if (!c || engines_running(d) < 2) return false;
    seq = rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, e->target, 0);
    if (k == TT_FAULT_ENGINE_STOP) {
      send_signal(d, c, SIGSTOP);
      add_action(d, ACT_ENGINE_CONT, now + e->dur, e->target, c->pid, seq);
      return true;
    }
    send_signal(d, c, k == TT_FAULT_ENGINE_KILL ? SIGKILL : SIGTERM);
    c->respawn = true, c->respawn_at = now + e->dur, c->respawn_fault = seq;
    return true;
  }
  if (k == TT_FAULT_PRODUCER_KILL || k == TT_FAULT_PRODUCER_RESTART) {
    child *c = producer_target(d, e->target);
    if (!c) return false;
    seq = rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, e->target, 0);
    send_signal(d, c, k == TT_FAULT_PRODUCER_KILL ? SIGKILL : SIGTERM);
    c->respawn = true, c->respawn_at = now + e->dur, c->respawn_fault = seq;
    return true;
  }
  switch (k) {
  case TT_FAULT_REDIS_STALL:
    seq = rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, 0, (int)(e->dur * 1000));
    rec_redis_signal(d, SIGSTOP);
    kill(d->rs.pid, SIGSTOP);
    d->redis_stopped = true;
    add_action(d, ACT_REDIS_CONT, now + e->dur, 0, d->rs.pid, seq);
    return true;
  case TT_FAULT_REDIS_KILL:
    seq = rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, 0, (int)(e->dur * 1000));
    rec_redis_signal(d, SIGKILL);
    redis_server_halt(&d->rs, true);
    d->redis_down = true;
    add_action(d, ACT_REDIS_RESTART, now + e->dur, 0, 0, seq);
    return true;
  case TT_FAULT_CLIENT_KILL: {
    seq = rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, 0, e->param);
    long long n = client_kill(d, e->param == 3 ? 0 : e->param);
    if (e->param == 3) { /* a storm: again and again for dur seconds */
      add_action(d, ACT_KILL_STORM, now + 0.03, 0, 0, seq);
      d->act[d->nact - 1].until = now + e->dur;
      return true;
    }
    rec_fault(d, TT_REC_FAULT_END, k, seq, 0, (int)n);
    return true;
  }
  case TT_FAULT_MAXMEMORY:
    begin_oom(d, k);
    add_action(d, ACT_OOM_END, now + e->dur, 0, 0, d->fault_seq);
    return true;
  case TT_FAULT_POISON:
    rec_fault(d, TT_REC_FAULT_BEGIN, k, -1, e->param, e->param);
    begin_poison(d, e->param);
    add_action(d, ACT_POISON_END, now + e->dur, 0, 0, d->fault_seq);
    return true;
  default:
    return false;
  }
}

static bool run_action(driver *d, const action *a) {
  switch (a->kind) {
  case ACT_ENGINE_CONT: {
    child *c = &d->eng[a->target];
    if (c->pid == a->pid && c->stopped) send_signal(d, c, SIGCONT);
    break;
  }
  case ACT_REDIS_CONT:
    rec_redis_signal(d, SIGCONT);
    kill(d->rs.pid, SIGCONT);
    d->redis_stopped = false;
    break;
  case ACT_REDIS_RESTART:
    if (!redis_restart(d)) return false;
    break;
  case ACT_OOM_END:
    redis_ok_cmd(d, "CONFIG SET maxmemory 0");
    break;
  case ACT_POISON_END:
    end_poison(d);
    break;
  case ACT_KILL_STORM:
    client_kill(d, 0);
    if (tt_mono() < a->until && !d->healing) {
      add_action(d, ACT_KILL_STORM, tt_mono() + 0.03, 0, 0, a->seq);
      d->act[d->nact - 1].until = a->until;
      return true; /* not over yet */
    }
    break;
  }
  rec_fault(d, TT_REC_FAULT_END, -1, a->seq, a->target, 0);
  return true;
}

/* Runs the actions that are due (all of them when healing). false: Redis
 * could not be brought back (the run cannot go on). */
static bool run_actions(driver *d, bool all) {
  bool ok = true;
  for (size_t i = 0; i < d->nact;) {
    if (!all && d->act[i].at > tt_mono()) {
      i++;
      continue;
    }
    action a = d->act[i];
    d->act[i] = d->act[--d->nact];
    ok &= run_action(d, &a);
  }
  return ok;
}

/* ------------------------------------------------------- fault schedule */

static const int fault_weight[TT_FAULT_COUNT] = {
    [TT_FAULT_ENGINE_KILL] = 6,  [TT_FAULT_ENGINE_STOP] = 6,
    [TT_FAULT_ENGINE_RESTART] = 4, [TT_FAULT_REDIS_STALL] = 4,
    [TT_FAULT_REDIS_KILL] = 4,   [TT_FAULT_CLIENT_KILL] = 4,
    [TT_FAULT_MAXMEMORY] = 3,    [TT_FAULT_POISON] = 2,
    [TT_FAULT_PRODUCER_KILL] = 2, [TT_FAULT_PRODUCER_RESTART] = 2};

static double fault_duration(const driver *d, tt_rng *r, int kind, int *param) {
  double lease = d->plan.lease_max_ms / 1e3;
  *param = 0;
  switch (kind) {
  case TT_FAULT_ENGINE_KILL: return tt_rng_uniform(r, 0.2, 3);
  case TT_FAULT_ENGINE_STOP: return tt_rng_uniform(r, 0.3, 3) * lease;
  case TT_FAULT_ENGINE_RESTART: return tt_rng_uniform(r, 0, 1);
  case TT_FAULT_REDIS_STALL: /* mostly longer than any lease */
    return tt_rng_chance(r, 800) ? tt_rng_uniform(r, 1.2, 2.5) * lease
                                 : tt_rng_uniform(r, 0.2, 0.8) * lease;
  case TT_FAULT_REDIS_KILL: return tt_rng_uniform(r, 0, 1.5);
  case TT_FAULT_CLIENT_KILL: /* all, half, subscribers, a storm of kills */
    *param = (int)tt_rng_below(r, 4);
    return *param == 3 ? tt_rng_uniform(r, 1, 2) : 0;
  case TT_FAULT_MAXMEMORY: return tt_rng_uniform(r, 2.5, 5);
  case TT_FAULT_POISON:
    *param = (int)tt_rng_below(r, TT_POISON_SHARDS);
    return tt_rng_uniform(r, 2, 4);
  case TT_FAULT_PRODUCER_KILL: return tt_rng_uniform(r, 0.1, 1);
  default: return tt_rng_uniform(r, 0, 0.5);
  }
}

static int cmp_double_asc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_ev(const void *a, const void *b) {
  return cmp_double_asc(&((const fault_ev *)a)->t, &((const fault_ev *)b)->t);
}

/* The kinds in schedule order: every enabled kind once (shuffled), then
 * by weight. */
static size_t plan_kinds(driver *d, tt_rng *r, int *order, size_t n) {
  int kinds[TT_FAULT_COUNT], nk = 0, total = 0;
  for (int k = 0; k < TT_FAULT_COUNT; k++)
    if (d->opt.faults & (1u << k)) kinds[nk++] = k, total += fault_weight[k];
  if (!nk) return 0;
  for (int i = nk - 1; i > 0; i--) {
    int j = (int)tt_rng_below(r, (uint64_t)i + 1), t = kinds[i];
    kinds[i] = kinds[j], kinds[j] = t;
  }
  if (n < (size_t)nk) n = (size_t)nk;
  for (size_t i = 0; i < n; i++) {
    if (i < (size_t)nk) {
      order[i] = kinds[i];
      continue;
    }
    int x = (int)tt_rng_below(r, (uint64_t)total), k = 0;
    while (k < TT_FAULT_COUNT &&
           (!(d->opt.faults & (1u << k)) || (x -= fault_weight[k]) >= 0))
      k++;
    order[i] = k < TT_FAULT_COUNT ? k : kinds[0];
  }
  return n;
}

/* Draws the schedule from the seed, simulating who is busy so that Redis
 * faults never overlap (each one is then attributable) and one engine is
 * always left alone. */
static void plan_faults(driver *d) {
  tt_rng r;
  tt_rng_seed(&r, d->plan.seed, 0x6661756cu, 0);
  double dur = d->opt.duration;
  d->nev = 0;
  if (!d->opt.faults || dur < 6) return;
  int order[MAX_EVENTS];
  size_t n = plan_kinds(d, &r, order, (size_t)(dur / 2.5) < MAX_EVENTS
                                          ? (size_t)(dur / 2.5) : MAX_EVENTS);
  double times[MAX_EVENTS];
  for (size_t i = 0; i < n; i++) times[i] = tt_rng_uniform(&r, 1.5, dur - 2.5);
  qsort(times, n, sizeof *times, cmp_double_asc);
  double redis_free = 0, eng_free[MAX_CHILDREN] = {0}, prod_free[MAX_CHILDREN] = {0};
  for (size_t i = 0; i < n; i++) {
    fault_ev e = {times[i], 0, order[i], 0, 0};
    e.dur = fault_duration(d, &r, e.kind, &e.param);
    if (tt_fault_is_redis(e.kind)) {
      if (e.t < redis_free) e.t = redis_free;
      if (e.t + e.dur > dur - 1) continue;
      redis_free = e.t + e.dur + (e.kind == TT_FAULT_REDIS_KILL ? 2.0 : 0.7);
    } else if (e.kind <= TT_FAULT_ENGINE_RESTART) {
      int cand[MAX_CHILDREN], nc = 0;
      for (int k = 0; k < d->opt.engines; k++)
        if (eng_free[k] <= e.t) cand[nc++] = k;
      if (nc < 2) continue; /* one engine always stays untouched */
      e.target = cand[tt_rng_below(&r, (uint64_t)nc)];
      eng_free[e.target] = e.t + e.dur + (e.kind == TT_FAULT_ENGINE_STOP ? 0.3 : 3);
    } else {
      e.target = (int)tt_rng_below(&r, (uint64_t)d->opt.producers);
      if (prod_free[e.target] > e.t) continue;
      prod_free[e.target] = e.t + e.dur + 2;
    }
    d->ev[d->nev++] = e;
  }
  qsort(d->ev, d->nev, sizeof *d->ev, cmp_ev);
}

/* ---------------------------------------------------------------- phases */

static void progress_line(driver *d) {
  tt_progress pr;
  tt_oracle_load(d->oracle);
  tt_oracle_progress(d->oracle, &pr);
  size_t faults = 0;
  for (int k = 0; k < TT_FAULT_COUNT; k++) faults += d->done[k];
  say(d, "versions %zu, deliveries %zu, finished %zu/%zu, faults %zu, engines "
      "running %d", pr.versions, pr.deliveries, pr.finalized, pr.required,
      faults, engines_running(d));
}

static bool chaos(driver *d) {
  double next_progress = tt_mono() + 5;
  while (!interrupted && tt_mono() < d->chaos_end) {
    reap_all(d, true);
    if (!run_actions(d, false) || !check_redis(d)) return false;
    while (d->next_ev < d->nev && d->ev[d->next_ev].t <= since(d)) {
      const fault_ev *e = &d->ev[d->next_ev++];
      if (begin_fault(d, e)) {
        d->done[e->kind]++;
        say(d, "fault %s target %d for %.2f s", tt_fault_name(e->kind),
            e->target, e->dur);
      } else {
        d->skipped++;
        say(d, "fault %s skipped (target busy)", tt_fault_name(e->kind));
      }
    }
    if (tt_mono() >= next_progress) {
      progress_line(d);
      next_progress += 5;
    }
    tt_sleep(0.01);
  }
  return !interrupted;
}

/* Waits (bounded) until every child in `set` has exited; SIGKILL after. */
static void wait_exit(driver *d, child *set, int n, double bound) {
  double end = tt_mono() + bound;
  for (;;) {
    int running = 0;
    for (int i = 0; i < n; i++) {
      reap_one(d, &set[i], false);
      running += set[i].pid > 0;
    }
    if (!running || interrupted) return;
    if (tt_mono() > end) {
      for (int i = 0; i < n; i++)
        if (set[i].pid > 0) {
          say(d, "%s %d.%d still running %.0f s after SIGTERM: SIGKILL",
              role_name(set[i].role), set[i].index, set[i].inc, bound);
          if (set[i].role == TT_ROLE_ENGINE)
            rec_note(d, TT_NOTE_STOP_HANG, set[i].index, bound, 0);
          send_signal(d, &set[i], SIGKILL);
        }
      end = INFINITY;
    }
    tt_sleep(0.02);
  }
}

/* No more faults: what is stopped continues, Redis is whole, producers end,
 * every engine runs (bounded wait for all of them to be up). */
static bool heal(driver *d) {
  rec_phase(d, TT_PHASE_HEAL);
  say(d, "heal: ending faults, stopping producers, restarting engines");
  d->healing = true;
  if (!run_actions(d, true) || !check_redis(d)) return false;
  for (int i = 0; i < d->opt.producers; i++) {
    d->prod[i].respawn = false;
    if (d->prod[i].pid > 0) send_signal(d, &d->prod[i], SIGTERM);
  }
  wait_exit(d, d->prod, d->opt.producers, 20);
  double end = tt_mono() + 60;
  while (!interrupted && tt_mono() < end) {
    reap_all(d, true);
    int up = 0;
    tt_oracle_load(d->oracle);
    for (int i = 0; i < d->opt.engines; i++) {
      child *c = &d->eng[i];
      if (c->stopped) send_signal(d, c, SIGCONT);
      if (c->pid == 0 && !c->respawn)
        c->respawn = true, c->respawn_at = 0, c->respawn_fault = -1;
      if (c->pid > 0 && !c->term_sent &&
          tt_oracle_proc_up(d->oracle, TT_ROLE_ENGINE, i, c->inc))
        up++;
    }
    if (up == d->opt.engines) return true;
    tt_sleep(0.05);
  }
  say(d, "heal: not every engine came up within 60 s");
  return !interrupted;
}

/* Members of every zset under the key prefix (-1: Redis did not answer). */
static long long redis_members(driver *d) {
  redisContext *c = rconnect(d);
  if (!c) return -1;
  long long total = 0;
  char cursor[32] = "0";
  do {
    redisReply *r = rcmd(c, "SCAN %s MATCH %s:* COUNT 1000 TYPE zset", cursor,
                         TT_KEY_PREFIX);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r) freeReplyObject(r);
      redisFree(c);
      return -1;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      redisReply *z = rcmd(c, "ZCARD %s", r->element[1]->element[i]->str);
      if (z && z->type == REDIS_REPLY_INTEGER) total += z->integer;
      if (z) freeReplyObject(z);
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  redisFree(c);
  return total;
}

/* Waits until every timer that must finish has, nothing runs, and Redis
 * holds no timer; then a quiet period in which nothing may come back.
 * Bounded by --settle, and cut short when nothing has happened for a while
 * after the last timer was due. */
static void settle(driver *d) {
  rec_phase(d, TT_PHASE_SETTLE);
  double lease = d->plan.lease_max_ms / 1e3, start = tt_mono();
  double quiet_since = -1, next_print = start;
  for (;;) {
    if (interrupted) return;
    reap_all(d, true);
    tt_oracle_load(d->oracle);
    tt_progress pr;
    tt_oracle_progress(d->oracle, &pr);
    long long members = redis_members(d);
    bool done = pr.finalized == pr.required && pr.open_deliveries == 0 &&
                members == 0;
    double now = tt_now();
    if (tt_mono() >= next_print || done) {
      say(d, "settle: %zu/%zu timers finished, %zu handlers running, %lld "
          "timers in Redis", pr.finalized, pr.required, pr.open_deliveries,
          members);
      next_print = tt_mono() + 5;
    }
    if (!done) quiet_since = -1;
    else if (quiet_since < 0) quiet_since = tt_mono();
    else if (tt_mono() - quiet_since >= 2 * lease + 1) return;
    if (!done && now > pr.latest_at + 3 * lease + 5 &&
        now - pr.last_record_t > 10 && pr.open_deliveries == 0) {
      say(d, "settle: nothing delivered for 10 s and every timer is overdue: "
          "giving up");
      return;
    }
    if (tt_mono() - start > d->opt.settle) {
      say(d, "settle: bound of %.0f s reached", d->opt.settle);
      return;
    }
    tt_sleep(0.25);
  }
}

static void final_stop(driver *d) {
  rec_phase(d, TT_PHASE_FINAL);
  say(d, "final: stopping the engines cleanly");
  for (int i = 0; i < d->opt.engines; i++) {
    d->eng[i].respawn = false;
    if (d->eng[i].stopped) send_signal(d, &d->eng[i], SIGCONT);
    if (d->eng[i].pid > 0) send_signal(d, &d->eng[i], SIGTERM);
  }
  wait_exit(d, d->eng, d->opt.engines, STOP_BOUND_S);
}

/* ----------------------------------------------------- what Redis holds */

typedef struct scan_stats {
  long long meta, zsets, members, pkeys, pentries, akeys, aentries, other;
  char other_example[160];
} scan_stats;

static void scan_key(redisContext *c, const char *key, scan_stats *s,
                     tt_leftover *left, size_t *nleft) {
  size_t len = strlen(key);
  char kind = len > 2 && key[len - 2] == ':' ? key[len - 1] : '?';
  bool shard_key = strchr(key, '{') && strstr(key, "}:") == key + len - 3;
  if (len > 5 && strcmp(key + len - 5, ":meta") == 0) {
    s->meta++;
    return;
  }
  redisReply *t = rcmd(c, "TYPE %s", key);
  const char *type = t && t->type == REDIS_REPLY_STATUS ? t->str : "?";
  if (shard_key && kind == 'z' && strcmp(type, "zset") == 0) {
    s->zsets++;
    redisReply *m = rcmd(c, "ZRANGE %s 0 -1 WITHSCORES", key);
    for (size_t i = 0; m && m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements;
         i += 2) {
      s->members++;
      if (*nleft >= MAX_LEFTOVERS) continue;
      tt_leftover *l = &left[(*nleft)++];
      snprintf(l->key, sizeof l->key, "%s", key);
      snprintf(l->member, sizeof l->member, "%s", m->element[i]->str);
      l->score = strtod(m->element[i + 1]->str, NULL);
    }
    if (m) freeReplyObject(m);
  } else if (shard_key && (kind == 'p' || kind == 'a') &&
             strcmp(type, "hash") == 0) {
    redisReply *h = rcmd(c, "HLEN %s", key);
    long long n = h && h->type == REDIS_REPLY_INTEGER ? h->integer : 0;
    if (h) freeReplyObject(h);
    if (kind == 'p') s->pkeys++, s->pentries += n;
    else s->akeys++, s->aentries += n;
  } else {
    if (!s->other++) snprintf(s->other_example, sizeof s->other_example,
                              "%s (%s)", key, type);
  }
  if (t) freeReplyObject(t);
}

/* Every key under the prefix, by pattern; the zset members are returned
 * for the oracle (a member left is a timer that never finished). */
static bool scan_redis(driver *d, tt_leftover *left, size_t *nleft,
                       char *report, size_t cap) {
  redisContext *c = rconnect(d);
  scan_stats s = {0};
  char cursor[32] = "0";
  *nleft = 0;
  do {
    redisReply *r = rcmd(c, "SCAN %s MATCH %s:* COUNT 1000", cursor,
                         TT_KEY_PREFIX);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r) freeReplyObject(r);
      if (c) redisFree(c);
      snprintf(report, cap, "(Redis did not answer the scan)");
      return false;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++)
      scan_key(c, r->element[1]->element[i]->str, &s, left, nleft);
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  redisFree(c);
  snprintf(report, cap,
           "%lld meta keys (%s:{<topic>}:meta, expected); %lld timer zsets "
           "with %lld members (%s:{<topic>:<shard>}:z, must be none); %lld "
           "payload hashes with %lld entries (:p, payloads without a timer); "
           "%lld attempt hashes with %lld entries (:a); %lld other keys%s%s",
           s.meta, TT_KEY_PREFIX, s.zsets, s.members, TT_KEY_PREFIX, s.pkeys,
           s.pentries, s.akeys, s.aentries, s.other, s.other ? ", e.g. " : "",
           s.other_example);
  return true;
}

/* ------------------------------------------------------------ the run */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  char buf[8192];
  size_t n;
  while (out && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  if (in) fclose(in);
  if (out) fclose(out);
}

static bool setup(driver *d) {
  ssize_t n = readlink("/proc/self/exe", d->exe, sizeof d->exe - 1);
  if (n <= 0) return false;
  d->exe[n] = '\0';
  snprintf(d->dir, sizeof d->dir, "%s/timers-torture-XXXXXX", d->opt.base);
  if (!mkdtemp(d->dir)) {
    fprintf(stderr, "torture: mkdtemp %s: %s\n", d->dir, strerror(errno));
    return false;
  }
  snprintf(d->logdir, sizeof d->logdir, "%s/logs", d->dir);
  if (mkdir(d->logdir, 0755) != 0) return false;
  char path[700];
  snprintf(path, sizeof path, "%s/driver.bin", d->logdir);
  if ((d->fd = tt_log_open(path)) < 0) return false;
  tt_rec hello;
  tt_rec_init(&hello, TT_REC_HELLO);
  hello.role = TT_ROLE_DRIVER;
  hello.version = d->plan.seed;
  tt_log_append(d->fd, &hello, 1);
  if (redis_server_start(&d->rs, false, true) != 0) {
    fprintf(stderr, "torture: redis-server did not start\n");
    return false;
  }
  rec_proc(d, TT_REC_SPAWN, TT_ROLE_REDIS, 0, 0, d->rs.pid, 0, 0);
  for (int i = 0; i < MAX_CHILDREN; i++) {
    d->eng[i] = (child){.role = TT_ROLE_ENGINE, .index = i, .respawn_fault = -1};
    d->prod[i] = (child){.role = TT_ROLE_PRODUCER, .index = i, .respawn_fault = -1};
  }
  tt_oracle_opts oo = {d->dir, &d->plan, d->opt.verbose, d->opt.examples};
  d->oracle = tt_oracle_new(&oo);
  return d->oracle != NULL;
}

/* Engines first (they record the shard counts), all up before producing. */
static bool start_children(driver *d) {
  for (int i = 0; i < d->opt.engines; i++) spawn(d, &d->eng[i]);
  double end = tt_mono() + 30;
  for (;;) {
    reap_all(d, true);
    tt_oracle_load(d->oracle);
    int up = 0;
    for (int i = 0; i < d->opt.engines; i++)
      up += tt_oracle_proc_up(d->oracle, TT_ROLE_ENGINE, i, d->eng[i].inc);
    if (up == d->opt.engines) break;
    if (tt_mono() > end || interrupted) {
      fprintf(stderr, "torture: engines did not start (see %s/*.err)\n",
              d->logdir);
      return false;
    }
    tt_sleep(0.02);
  }
  rec_phase(d, TT_PHASE_CHAOS);
  d->chaos_t0 = tt_mono();
  d->chaos_end = d->chaos_t0 + d->opt.duration;
  d->chaos_end_wall = tt_now() + d->opt.duration;
  for (int i = 0; i < d->opt.producers; i++) spawn(d, &d->prod[i]);
  return true;
}

static void print_engine_shapes(const driver *d) {
  for (int i = 0; i < d->opt.engines; i++) {
    tt_engine_shape s;
    tt_engine_shape_of(&d->plan, i, 0, d->opt.gentle, &s);
    if (d->opt.workers > 0) s.workers = d->opt.workers;
    printf("engine %d (first incarnation): pollers %d, workers %d, ring %d, "
           "claim_batch %d, max_sleep_ms %d, command_timeout_ms %d, "
           "max_inflight %d\n", i, s.pollers, s.workers, s.ring_capacity,
           s.claim_batch, s.max_sleep_ms, s.command_timeout_ms, s.max_inflight);
  }
}

static void teardown(driver *d, bool keep) {
  kill_children(d);
  if (d->rs.dir[0]) {
    char from[700], to[700];
    snprintf(from, sizeof from, "%s/redis.log", d->rs.dir);
    snprintf(to, sizeof to, "%s/redis.log", d->dir);
    copy_file(from, to);
    if (d->redis_stopped && d->rs.pid > 0) kill(d->rs.pid, SIGCONT);
    redis_server_stop(&d->rs);
  }
  if (d->fd >= 0) close(d->fd);
  tt_oracle_free(d->oracle);
  d->oracle = NULL;
  if (keep) {
    printf("torture: run folder kept: %s\n", d->dir);
  } else if (d->dir[0]) {
    nftw(d->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
}

static int driver_main(int argc, char **argv) {
  static driver d;
  if (parse_options(argc, argv, &d.opt) != 0) return 2;
  d.fd = -1;
  tt_plan_init(&d.plan, d.opt.seed);
  tt_rng_seed(&d.rng, d.opt.seed, 0x72756eu, 0);
  printf("torture: seed %" PRIu64 " (reproduce: tools/run torture --seed %"
         PRIu64 " --duration %g", d.opt.seed, d.opt.seed, d.opt.duration);
  for (int i = 1; i < argc; i++) { /* the other options, as given */
    bool valued = !strcmp(argv[i], "--seed") || !strcmp(argv[i], "--dir") ||
                  !strcmp(argv[i], "--duration");
    if (valued) i++;
    else printf(" %s", argv[i]);
  }
  printf(")\n");
  printf("torture: %d engines, %d producers at %g timers/s each, %g s of "
         "faults, settle bound %g s\n", d.opt.engines, d.opt.producers,
         d.opt.rate, d.opt.duration, d.opt.settle);
  fflush(stdout);
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  plan_faults(&d);
  print_engine_shapes(&d);
  if (!setup(&d) || !start_children(&d)) {
    teardown(&d, true);
    return 2;
  }
  bool ok = chaos(&d) && heal(&d);
  if (ok) settle(&d);
  if (ok && !interrupted) final_stop(&d);
  if (!ok || interrupted) {
    fprintf(stderr, "torture: %s\n", interrupted ? "interrupted"
                                                 : "Redis could not be restored");
    teardown(&d, true);
    return interrupted ? 130 : 2;
  }
  static tt_leftover left[MAX_LEFTOVERS];
  size_t nleft = 0;
  char report[1024];
  scan_redis(&d, left, &nleft, report, sizeof report);
  tt_oracle_load(d.oracle);
  tt_oracle_set_leftovers(d.oracle, left, nleft, report);
  rec_phase(&d, TT_PHASE_DONE);
  size_t violations = tt_oracle_check(d.oracle);
  size_t skipped = d.skipped;
  printf("faults skipped (target busy when due): %zu\n", skipped);
  printf("\ntorture: seed %" PRIu64 ": %s (%zu violations)\n", d.opt.seed,
         violations ? "FAIL" : "PASS", violations);
  fflush(stdout);
  teardown(&d, violations || d.opt.keep);
  return violations ? 1 : 0;
}

/* `check --dir RUN`: the oracle alone, over a kept run folder. */
static int check_main(int argc, char **argv) {
  const char *dir = NULL;
  tt_oracle_opts oo = {0};
  oo.examples = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
    else if (strcmp(argv[i], "--examples") == 0 && i + 1 < argc)
      oo.examples = atoi(argv[++i]);
    else if (strcmp(argv[i], "--verbose") == 0) oo.verbose = true;
  }
  if (!dir) {
    usage(stderr);
    return 2;
  }
  char path[700];
  snprintf(path, sizeof path, "%s/logs/driver.bin", dir);
  int fd = open(path, O_RDONLY);
  tt_rec hello;
  if (fd < 0 || read(fd, &hello, sizeof hello) != (ssize_t)sizeof hello ||
      !tt_rec_valid(&hello) || hello.kind != TT_REC_HELLO) {
    fprintf(stderr, "torture: %s is not a torture log\n", path);
    if (fd >= 0) close(fd);
    return 2;
  }
  close(fd);
  static tt_plan plan;
  tt_plan_init(&plan, hello.version);
  oo.dir = dir;
  oo.plan = &plan;
  tt_oracle *o = tt_oracle_new(&oo);
  tt_oracle_load(o);
  size_t v = tt_oracle_check(o);
  tt_oracle_free(o);
  return v ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "engine") == 0)
    return tt_engine_main(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "producer") == 0)
    return tt_producer_main(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "check") == 0)
    return check_main(argc - 1, argv + 1);
  return driver_main(argc, argv);
}
