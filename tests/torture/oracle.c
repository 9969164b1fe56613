/*
 * oracle.c - the checker of the torture test.
 *
 * It reads every write-ahead log of a run (the .bin files under logs/:
 * the driver's processes, signals and faults; the engines' handler starts and ends; the
 * producers' schedule and cancel intents and results) and checks the
 * engine's delivery contract:
 *
 *  - nothing lost: the last version of a key that is known to exist (its
 *    schedule returned OK, or it was delivered) reaches ACK or REJECT,
 *    unless a later cancel removed it (or may have: the cancel failed);
 *  - no duplicate but the ones the contract allows (see explain_dup()):
 *    each later delivery of a version is explained by what happened to an
 *    earlier one (NACKed; its process SIGKILLed or SIGSTOPped; Redis
 *    stalled or restarted during it; its handler outlived the lease), or it
 *    is a violation, classified by its likeliest engine-side cause;
 *  - a successful cancel, and a replace, are not followed by a delivery of
 *    a version they removed (deliveries claimed before them may start
 *    within a lease: they are counted as races);
 *  - failed schedules: landed (delivered, then must finish) or not, logged;
 *  - payloads intact, right topic and id, never before their time;
 *  - Redis holds no timer member at the end (the driver scans it);
 *  - liveness probes: firing continues while Redis is at maxmemory; a
 *    wrong-type key does not make a poller spin.
 *
 * Deliveries of one version are ordered by attempt (the engine's claim
 * counter: it tells which claim came first), then by start time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

/* ------------------------------------------------------------ the rules */

/* Time after a handler returns in which its outcome is normally committed;
 * a fault inside it may delay or lose the commit. */
#define COMMIT_SLACK_S 0.5
/* What a healthy engine spends between claim and handler start and
 * between handler end and commit, subtracted from the lease below. */
#define HANDLER_MARGIN_S 0.25

/* A handler that runs at least this long may be delivered again: the
 * engine extends a running handler's lease up to the topic's
 * max_handler_ms, then lets it run out. Shorter handlers keep their timer
 * (a dead or stopped process is explained apart). */
static double handler_dup_threshold_s(const tt_topic *t) {
  return t->max_handler_ms / 1e3 - HANDLER_MARGIN_S;
}

/* A handler that starts this soon after a Redis stall ended had its
 * claim's reply held up by the stall (see diagnose_expired). */
#define STALE_START_S 0.5

/* Allowed causes of a duplicate (counted, reported). */
typedef enum cause {
  C_NONE = -1,
  C_NACK = 0,        /* the earlier delivery NACKed: redelivery expected  */
  C_KILLED,          /* its process was SIGKILLed during it               */
  C_CRASHED,         /* its process died on its own (also a violation)    */
  C_SIGSTOP,         /* its process was SIGSTOPped during it              */
  C_LONG_HANDLER,    /* its handler ran past the threshold above          */
  C_REDIS_STALL,     /* Redis was SIGSTOPped during it                    */
  C_REDIS_RESTART,   /* Redis was killed / restarting during it           */
  C_COUNT
} cause;

static const char *const cause_names[C_COUNT] = {
    "redelivery after NACK", "process SIGKILLed during it",
    "process crashed during it", "process SIGSTOPped during it",
    "handler outlived the lease", "Redis stalled (SIGSTOP) during it",
    "Redis killed/restarting during it"};

typedef enum vkind {
  V_LOST = 0,
  V_LOST_CANCEL,
  V_STUCK,
  V_DUP_QUEUED,
  V_DUP_RESURRECTED,
  V_DUP_STOP,
  V_DUP_OOM,
  V_DUP_STALE_LEASE,
  V_DUP_CLIENT_KILL,
  V_DUP_POISON,
  V_DUP_SAME_ATTEMPT,
  V_DUP_UNEXPLAINED,
  V_AFTER_CANCEL,
  V_AFTER_CANCEL_ABSENT,
  V_OLD_AFTER_REPLACE,
  V_EARLY,
  V_CORRUPT,
  V_WRONG_TOPIC,
  V_WRONG_ID,
  V_PHANTOM,
  V_LEFTOVER,
  V_OOM_NO_FIRING,
  V_POISON_SPIN,
  V_CRASH,
  V_STOP_HANG,
  V_STOP_LATE_START,
  V_TORN,
  V_COUNT
} vkind;

static const char *const vkind_names[V_COUNT] = {
    [V_LOST] = "lost: never delivered",
    [V_LOST_CANCEL] = "lost: never delivered, and a cancel before its time "
                      "returned 'not pending' (removed it, said it did not)",
    [V_STUCK] = "lost: delivered but never finished (no ACK/REJECT)",
    [V_DUP_QUEUED] = "duplicate: an earlier claim's handler started after "
                     "the timer was re-claimed (queued past its lease)",
    [V_DUP_RESURRECTED] = "duplicate: fired timer re-created by a retry "
                          "inside its schedule call",
    [V_DUP_STOP] = "duplicate: outcome lost at a clean stop()",
    [V_DUP_OOM] = "duplicate: outcome dropped while Redis was at maxmemory",
    [V_DUP_STALE_LEASE] = "duplicate: claim ran after a Redis stall with a "
                          "lease computed before it (already over)",
    [V_DUP_CLIENT_KILL] = "duplicate: after CLIENT KILL (no process or "
                          "Redis fault)",
    [V_DUP_POISON] = "duplicate: while a wrong-type key was present",
    [V_DUP_SAME_ATTEMPT] = "duplicate: same attempt number delivered twice",
    [V_DUP_UNEXPLAINED] = "duplicate: unexplained (outcome not committed "
                          "within the lease)",
    [V_AFTER_CANCEL] = "delivered after a cancel that returned removed",
    [V_AFTER_CANCEL_ABSENT] = "delivered after a cancel that found nothing",
    [V_OLD_AFTER_REPLACE] = "old version delivered after its replace",
    [V_EARLY] = "delivered before its activation time",
    [V_CORRUPT] = "payload or headers corrupt",
    [V_WRONG_TOPIC] = "delivered on another topic",
    [V_WRONG_ID] = "delivered under another id",
    [V_PHANTOM] = "delivery of a version never scheduled",
    [V_LEFTOVER] = "timer member left in Redis at the end",
    [V_OOM_NO_FIRING] = "firing stopped while Redis was at maxmemory",
    [V_POISON_SPIN] = "poller spins on a wrong-type key",
    [V_CRASH] = "process died on its own",
    [V_STOP_HANG] = "stop() did not return in time",
    [V_STOP_LATE_START] = "handler started after stop()'s drain timeout (its "
                          "outcome can no longer be committed)",
    [V_TORN] = "log records torn (evidence incomplete)",
};

/* ------------------------------------------------------------- storage */

#define RC_UNKNOWN 1000 /* a call whose result was never logged */

typedef struct proc {
  int role, index, inc;
  int pid;
  double spawn_t, up_t, exit_t, kill_t, term_t, stop_begin_t, stop_done_t;
  int exit_status;
  bool unexpected;
  int drain_ms;         /* engine: its drain timeout */
  double *stops; /* pairs: SIGSTOP time, SIGCONT time (INFINITY: open) */
  size_t nstops, capstops;
} proc;

typedef struct lfile {
  char name[256];
  int fd;
  off_t off;
  int proc;           /* -1: the driver's log                          */
  int *seqmap;        /* delivery seq -> delivery index + 1            */
  size_t nseq;
  int last_cancel;
} lfile;

typedef struct fault {
  int kind, seq, target, param;
  double t0, t1;
} fault;

typedef struct note {
  int kind, value, engines;
  double t, at;
} note;

typedef struct version {
  uint64_t v;
  int topic;
  char id[TT_ID_CAP];
  int prod;
  uint32_t op, bidx, batch_n;
  int flags;
  double intent_t, result_t, at;
  int rc;
  int key;
  int *dels;
  size_t ndels, capdels;
  bool required, finalized;
} version;

typedef struct key_ev {
  bool is_cancel;
  int idx;
} key_ev;

typedef struct tkey {
  int topic;
  char id[TT_ID_CAP];
  key_ev *ev;
  size_t nev, capev;
} tkey;

typedef struct cancel_op {
  int key, prod;
  uint32_t op;
  double intent_t, result_t;
  int rc;
  bool removed, has_result;
} cancel_op;

typedef struct delivery {
  int proc;
  uint32_t seq;
  int topic;
  char id[TT_ID_CAP];
  uint64_t version;
  uint32_t attempt;
  double start, end, at;
  int planned, outcome, planned_ms;
  bool bad;
  int ver;
  unsigned probe;      /* TT_P_* */
  double pscore;       /* the timer's score in Redis at handler entry */
  uint32_t pattempts;  /* its attempts then */
} delivery;

typedef struct viol {
  vkind kind;
  int ver;      /* -1: not about one version */
  int a, b;     /* deliveries, -1 when none  */
  char text[512];
} viol;

/* u64 -> index, open addressing; string keys are hashed and compared by
 * the caller through eq(). */
typedef struct imap {
  uint64_t *h;
  int *v;
  size_t cap, n;
} imap;

struct tt_oracle {
  tt_oracle_opts opt;
  tt_plan plan;
  char logdir[600];
  lfile *files;
  size_t nfiles, capfiles;
  proc *procs;
  size_t nprocs, capprocs;
  fault *faults;
  size_t nfaults, capfaults;
  note *notes;
  size_t nnotes, capnotes;
  version *vers;
  size_t nvers, capvers;
  imap vmap;
  tkey *keys;
  size_t nkeys, capkeys;
  imap kmap;
  cancel_op *cancels;
  size_t ncancels, capcancels;
  delivery *dels;
  size_t ndels, capdels;
  double t0, t_heal, t_settle, t_final, t_done, last_record_t;
  size_t torn;
  tt_leftover *left;
  size_t nleft;
  char *patterns;
  viol *viols;
  size_t nviols, capviols;
  size_t dup_by_cause[C_COUNT];
  size_t raced_cancel, raced_replace, poison_probes;
  char oom_report[2048];
  double raced_cancel_max, raced_replace_max;
};

/* ------------------------------------------------------------- helpers */

static void *vec_push(void *arrp, size_t *n, size_t *cap, size_t size) {
  void **arr = arrp;
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    void *g = realloc(*arr, c * size);
    if (!g) {
      fprintf(stderr, "oracle: out of memory\n");
      abort();
    }
    *arr = g, *cap = c;
  }
  void *e = (char *)*arr + (*n)++ * size;
  memset(e, 0, size);
  return e;
}

#define PUSH(o, arr) \
  ((__typeof__((o)->arr))vec_push(&(o)->arr, &(o)->n##arr, &(o)->cap##arr, \
                                  sizeof *(o)->arr))

static void imap_grow(imap *m);

static size_t imap_slot(const imap *m, uint64_t h, bool (*eq)(void *, int),
                        void *ctx, bool *found) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (m->h[i] == 0) {
      *found = false;
      return i;
    }
    if (m->h[i] == h && (!eq || eq(ctx, m->v[i]))) {
      *found = true;
      return i;
    }
  }
}

static int imap_get(imap *m, uint64_t h, bool (*eq)(void *, int), void *ctx) {
  if (!m->cap) return -1;
  bool found;
  size_t i = imap_slot(m, h ? h : 1, eq, ctx, &found);
  return found ? m->v[i] : -1;
}

static void imap_put(imap *m, uint64_t h, int v) {
  if (2 * (m->n + 1) > m->cap) imap_grow(m);
  h = h ? h : 1;
  size_t mask = m->cap - 1, i = h & mask;
  while (m->h[i]) i = (i + 1) & mask;
  m->h[i] = h, m->v[i] = v, m->n++;
}

static void imap_grow(imap *m) {
  imap old = *m;
  m->cap = old.cap ? old.cap * 2 : 1024;
  m->h = calloc(m->cap, sizeof *m->h);
  m->v = calloc(m->cap, sizeof *m->v);
  if (!m->h || !m->v) abort();
  m->n = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.h[i]) imap_put(m, old.h[i], old.v[i]);
  free(old.h), free(old.v);
}

static double rel(const tt_oracle *o, double t) {
  return isfinite(t) ? t - o->t0 : t;
}

static double topic_lease_s(const tt_oracle *o, int topic) {
  if (topic < 0 || topic >= o->plan.ntopics) return o->plan.lease_max_ms / 1e3;
  return o->plan.topics[topic].lease_ms / 1e3;
}

/* --------------------------------------------------------------- lookup */

static int proc_get(tt_oracle *o, int role, int index, int inc) {
  for (size_t i = 0; i < o->nprocs; i++)
    if (o->procs[i].role == role && o->procs[i].index == index &&
        o->procs[i].inc == inc)
      return (int)i;
  proc *p = PUSH(o, procs);
  p->role = role, p->index = index, p->inc = inc;
  return (int)(o->nprocs - 1);
}

typedef struct key_probe {
  tt_oracle *o;
  int topic;
  const char *id;
} key_probe;

static bool key_eq(void *ctx, int idx) {
  key_probe *k = ctx;
  tkey *t = &k->o->keys[idx];
  return t->topic == k->topic && strcmp(t->id, k->id) == 0;
}

static uint64_t key_hash(int topic, const char *id) {
  return tt_hash_str((uint64_t)topic * 0x9e3779b97f4a7c15ull + 7, id);
}

static int key_get(tt_oracle *o, int topic, const char *id, bool add) {
  key_probe kp = {o, topic, id};
  uint64_t h = key_hash(topic, id);
  int k = imap_get(&o->kmap, h, key_eq, &kp);
  if (k >= 0 || !add) return k;
  tkey *t = PUSH(o, keys);
  t->topic = topic;
  snprintf(t->id, sizeof t->id, "%s", id);
  imap_put(&o->kmap, h, (int)(o->nkeys - 1));
  return (int)(o->nkeys - 1);
}

static void key_add_event(tt_oracle *o, int key, bool is_cancel, int idx) {
  tkey *t = &o->keys[key];
  key_ev *e = vec_push(&t->ev, &t->nev, &t->capev, sizeof *t->ev);
  e->is_cancel = is_cancel, e->idx = idx;
}

typedef struct version_probe {
  tt_oracle *o;
  uint64_t v;
} version_probe;

static bool version_eq(void *ctx, int idx) {
  version_probe *p = ctx;
  return p->o->vers[idx].v == p->v;
}

static int version_get(tt_oracle *o, uint64_t v) {
  version_probe p = {o, v};
  return imap_get(&o->vmap, tt_mix64(v), version_eq, &p);
}

/* ------------------------------------------------------------- loading */

static void on_delivery_start(tt_oracle *o, lfile *f, const tt_rec *r) {
  delivery *d = PUSH(o, dels);
  d->proc = f->proc;
  d->seq = r->seq;
  d->topic = r->topic;
  snprintf(d->id, sizeof d->id, "%s", r->id);
  d->version = r->version;
  d->attempt = r->attempt;
  d->start = r->t;
  d->end = NAN;
  d->at = r->at;
  d->planned = r->value;
  d->outcome = -1;
  d->planned_ms = (int)r->aux;
  d->bad = (r->flags & TT_F_PAYLOAD_BAD) != 0;
  d->ver = -1;
  d->probe = r->z;
  d->pscore = r->x;
  d->pattempts = r->y;
  if (r->seq >= f->nseq) {
    size_t n = f->nseq ? f->nseq : 256;
    while (n <= r->seq) n *= 2;
    int *g = realloc(f->seqmap, n * sizeof *g);
    if (!g) abort();
    memset(g + f->nseq, 0, (n - f->nseq) * sizeof *g);
    f->seqmap = g, f->nseq = n;
  }
  f->seqmap[r->seq] = (int)o->ndels;
}

static void on_delivery_end(tt_oracle *o, lfile *f, const tt_rec *r) {
  if (r->seq >= f->nseq || !f->seqmap[r->seq]) return;
  delivery *d = &o->dels[f->seqmap[r->seq] - 1];
  d->end = r->t;
  d->outcome = r->value;
}

static void on_sched_intent(tt_oracle *o, lfile *f, const tt_rec *r) {
  version *v = PUSH(o, vers);
  v->v = r->version;
  v->topic = r->topic;
  v->prod = f->proc;
  v->op = r->seq, v->bidx = r->index, v->batch_n = (uint32_t)r->aux;
  v->flags = r->flags;
  v->intent_t = r->t;
  v->result_t = NAN;
  v->at = r->at;
  v->rc = RC_UNKNOWN;
  v->key = -1;
  imap_put(&o->vmap, tt_mix64(r->version), (int)(o->nvers - 1));
  if (!(r->flags & TT_F_GENERATED)) {
    snprintf(v->id, sizeof v->id, "%s", r->id);
    v->key = key_get(o, r->topic, r->id, true);
    key_add_event(o, v->key, false, (int)(o->nvers - 1));
  }
}

static void on_sched_result(tt_oracle *o, const tt_rec *r) {
  int vi = version_get(o, r->version);
  if (vi < 0) return;
  version *v = &o->vers[vi];
  v->rc = r->value;
  v->result_t = r->t;
  if ((v->flags & TT_F_GENERATED) && r->value == TIMERS_OK && r->id[0]) {
    snprintf(v->id, sizeof v->id, "%s", r->id);
    v->key = key_get(o, v->topic, r->id, true);
    key_add_event(o, v->key, false, vi);
  }
}

static void on_cancel(tt_oracle *o, lfile *f, const tt_rec *r) {
  if (r->kind == TT_REC_CANCEL_INTENT) {
    cancel_op *c = PUSH(o, cancels);
    c->key = key_get(o, r->topic, r->id, true);
    c->prod = f->proc;
    c->op = r->seq;
    c->intent_t = r->t;
    c->result_t = NAN;
    c->rc = RC_UNKNOWN;
    f->last_cancel = (int)o->ncancels - 1;
    key_add_event(o, c->key, true, f->last_cancel);
    return;
  }
  if (f->last_cancel < 0) return;
  cancel_op *c = &o->cancels[f->last_cancel];
  if (c->op != r->seq) return;
  c->result_t = r->t;
  c->rc = r->value;
  c->removed = (r->flags & TT_F_REMOVED) != 0;
  c->has_result = true;
}

static void on_signal(tt_oracle *o, const tt_rec *r) {
  int pi = proc_get(o, r->role, (int)r->index, (int)r->seq);
  proc *p = &o->procs[pi];
  if (r->value == SIGKILL && !p->kill_t) p->kill_t = r->t;
  if (r->value == SIGTERM && !p->term_t) p->term_t = r->t;
  if (r->value == SIGSTOP) {
    double *s = vec_push(&p->stops, &p->nstops, &p->capstops, sizeof *p->stops);
    *s = r->t;
    s = vec_push(&p->stops, &p->nstops, &p->capstops, sizeof *p->stops);
    *s = INFINITY;
  }
  if (r->value == SIGCONT && p->nstops && isinf(p->stops[p->nstops - 1]))
    p->stops[p->nstops - 1] = r->t;
}

static void on_driver(tt_oracle *o, const tt_rec *r) {
  switch (r->kind) {
  case TT_REC_SPAWN: {
    int pi = proc_get(o, r->role, (int)r->index, (int)r->seq);
  proc *p = &o->procs[pi];
    p->pid = r->pid, p->spawn_t = r->t;
    break;
  }
  case TT_REC_SIGNAL:
    on_signal(o, r);
    break;
  case TT_REC_EXIT: {
    int pi = proc_get(o, r->role, (int)r->index, (int)r->seq);
  proc *p = &o->procs[pi];
    p->exit_t = r->t, p->exit_status = r->value;
    p->unexpected = (r->flags & TT_F_UNEXPECTED) != 0;
    break;
  }
  case TT_REC_FAULT_BEGIN: {
    fault *f = PUSH(o, faults);
    f->kind = (int)r->aux, f->seq = (int)r->seq, f->target = (int)r->index;
    f->param = r->value, f->t0 = r->t, f->t1 = INFINITY;
    break;
  }
  case TT_REC_FAULT_END:
    for (size_t i = o->nfaults; i-- > 0;)
      if (o->faults[i].seq == (int)r->seq) {
        o->faults[i].t1 = r->t;
        break;
      }
    break;
  case TT_REC_PHASE:
    if (r->value == TT_PHASE_CHAOS) o->t0 = r->t;
    if (r->value == TT_PHASE_HEAL) o->t_heal = r->t;
    if (r->value == TT_PHASE_SETTLE) o->t_settle = r->t;
    if (r->value == TT_PHASE_FINAL) o->t_final = r->t;
    if (r->value == TT_PHASE_DONE) o->t_done = r->t;
    break;
  case TT_REC_NOTE: {
    note *n = PUSH(o, notes);
    n->kind = (int)r->aux, n->value = r->value, n->t = r->t, n->at = r->at;
    n->engines = (int)r->index;
    break;
  }
  default:
    break;
  }
}

static void dispatch(tt_oracle *o, lfile *f, const tt_rec *r) {
  if (f->proc < 0) {
    on_driver(o, r);
    return;
  }
  if (r->kind != TT_REC_HELLO && r->t > o->last_record_t)
    o->last_record_t = r->t;
  proc *p = &o->procs[f->proc];
  switch (r->kind) {
  case TT_REC_HELLO: p->drain_ms = r->value; break;
  case TT_REC_ENGINE_UP: p->up_t = r->t; break;
  case TT_REC_STOP_BEGIN: p->stop_begin_t = r->t; break;
  case TT_REC_STOP_DONE: p->stop_done_t = r->t; break;
  case TT_REC_START: on_delivery_start(o, f, r); break;
  case TT_REC_END: on_delivery_end(o, f, r); break;
  case TT_REC_SCHED_INTENT: on_sched_intent(o, f, r); break;
  case TT_REC_SCHED_RESULT: on_sched_result(o, r); break;
  case TT_REC_CANCEL_INTENT:
  case TT_REC_CANCEL_RESULT: on_cancel(o, f, r); break;
  default: break;
  }
}

static lfile *file_get(tt_oracle *o, const char *name) {
  for (size_t i = 0; i < o->nfiles; i++)
    if (strcmp(o->files[i].name, name) == 0) return &o->files[i];
  int role, index, inc;
  int pi = -1;
  if (sscanf(name, "engine-%d-%d.bin", &index, &inc) == 2)
    role = TT_ROLE_ENGINE;
  else if (sscanf(name, "producer-%d-%d.bin", &index, &inc) == 2)
    role = TT_ROLE_PRODUCER;
  else if (strcmp(name, "driver.bin") == 0)
    role = TT_ROLE_DRIVER;
  else
    return NULL;
  if (role != TT_ROLE_DRIVER) pi = proc_get(o, role, index, inc);
  char path[900];
  snprintf(path, sizeof path, "%s/%s", o->logdir, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  lfile *f = PUSH(o, files);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->fd = fd;
  f->proc = pi;
  f->last_cancel = -1;
  return f;
}

static void load_file(tt_oracle *o, lfile *f) {
  static tt_rec buf[512];
  for (;;) {
    ssize_t n = pread(f->fd, buf, sizeof buf, f->off);
    if (n < (ssize_t)sizeof(tt_rec)) return; /* a partial tail waits */
    size_t whole = (size_t)n / sizeof(tt_rec);
    for (size_t i = 0; i < whole; i++) {
      if (tt_rec_valid(&buf[i]))
        dispatch(o, f, &buf[i]);
      else
        o->torn++;
    }
    f->off += (off_t)(whole * sizeof(tt_rec));
  }
}

void tt_oracle_load(tt_oracle *o) {
  /* The driver's log first: processes and phases before what refers to
   * them. Files are found by name (new processes add files). */
  if (file_get(o, "driver.bin")) load_file(o, &o->files[0]);
  DIR *d = opendir(o->logdir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 4, ".bin") != 0 ||
        strcmp(de->d_name, "driver.bin") == 0)
      continue;
    lfile *f = file_get(o, de->d_name);
    if (f) load_file(o, f);
  }
  closedir(d);
}

tt_oracle *tt_oracle_new(const tt_oracle_opts *opt) {
  tt_oracle *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->opt = *opt;
  o->plan = *opt->plan;
  snprintf(o->logdir, sizeof o->logdir, "%s/logs", opt->dir);
  return o;
}

void tt_oracle_free(tt_oracle *o) {
  if (!o) return;
  for (size_t i = 0; i < o->nfiles; i++) {
    close(o->files[i].fd);
    free(o->files[i].seqmap);
  }
  for (size_t i = 0; i < o->nprocs; i++) free(o->procs[i].stops);
  for (size_t i = 0; i < o->nvers; i++) free(o->vers[i].dels);
  for (size_t i = 0; i < o->nkeys; i++) free(o->keys[i].ev);
  free(o->files), free(o->procs), free(o->faults), free(o->notes);
  free(o->vers), free(o->vmap.h), free(o->vmap.v);
  free(o->keys), free(o->kmap.h), free(o->kmap.v);
  free(o->cancels), free(o->dels), free(o->left), free(o->patterns);
  free(o->viols);
  free(o);
}

void tt_oracle_set_leftovers(tt_oracle *o, const tt_leftover *l, size_t n,
                             const char *patterns) {
  free(o->left);
  o->left = n ? malloc(n * sizeof *l) : NULL;
  if (n && !o->left) abort();
  if (n) memcpy(o->left, l, n * sizeof *l);
  o->nleft = n;
  free(o->patterns);
  o->patterns = patterns ? strdup(patterns) : NULL;
}

/* ------------------------------------------------------------ analysis */

static bool is_final(int outcome) {
  return outcome == TIMERS_ACK || outcome == TIMERS_REJECT;
}

static bool landed(const version *v) {
  return v->rc == TIMERS_OK || v->ndels > 0;
}

static int cmp_del_ctx_attempt(const delivery *a, const delivery *b) {
  if (a->attempt != b->attempt) return a->attempt < b->attempt ? -1 : 1;
  return a->start < b->start ? -1 : a->start > b->start;
}

static tt_oracle *sort_ctx; /* qsort has no context argument */
static int cmp_del_idx(const void *x, const void *y) {
  return cmp_del_ctx_attempt(&sort_ctx->dels[*(const int *)x],
                             &sort_ctx->dels[*(const int *)y]);
}

/* Links deliveries to versions; marks finalized versions. */
static void link_deliveries(tt_oracle *o) {
  for (size_t i = 0; i < o->nvers; i++) {
    o->vers[i].ndels = 0;
    o->vers[i].finalized = false;
  }
  for (size_t i = 0; i < o->ndels; i++) {
    delivery *d = &o->dels[i];
    d->ver = d->version ? version_get(o, d->version) : -1;
    if (d->ver < 0) continue;
    version *v = &o->vers[d->ver];
    int *slot = vec_push(&v->dels, &v->ndels, &v->capdels, sizeof *v->dels);
    *slot = (int)i;
    if (is_final(d->outcome)) v->finalized = true;
  }
  sort_ctx = o;
  for (size_t i = 0; i < o->nvers; i++)
    if (o->vers[i].ndels > 1)
      qsort(o->vers[i].dels, o->vers[i].ndels, sizeof(int), cmp_del_idx);
}

static void add_viol(tt_oracle *o, vkind k, int ver, int a, int b,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add_viol(tt_oracle *o, vkind k, int ver, int a, int b,
                     const char *fmt, ...) {
  viol *v = PUSH(o, viols);
  v->kind = k, v->ver = ver, v->a = a, v->b = b;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->text, sizeof v->text, fmt, ap);
  va_end(ap);
}

/* Deliveries of version u that start after `after` (a cancel or replace
 * returned then): within a lease it is a claim made before the call (a
 * race, counted); later, a violation. strict: none may start at all (the
 * call found nothing, so no claim could be pending). */
static void check_after(tt_oracle *o, int ui, double after, bool strict,
                        vkind kind, bool report, const char *what) {
  version *u = &o->vers[ui];
  double grace = strict ? 0 : topic_lease_s(o, u->topic);
  for (size_t j = 0; j < u->ndels; j++) {
    delivery *d = &o->dels[u->dels[j]];
    if (d->start <= after) continue;
    double late = d->start - after;
    if (late <= grace) {
      if (!report) continue;
      if (kind == V_AFTER_CANCEL) {
        o->raced_cancel++;
        if (late > o->raced_cancel_max) o->raced_cancel_max = late;
      } else {
        o->raced_replace++;
        if (late > o->raced_replace_max) o->raced_replace_max = late;
      }
      continue;
    }
    if (report)
      add_viol(o, kind, ui, u->dels[j], -1,
               "attempt %u started %.3f s after %s returned (at %+.3f)",
               d->attempt, late, what, rel(o, after));
    return; /* one per version and kind */
  }
}

/* Whether version event j was removed (a cancel that removed, or a
 * replace that landed) by an event before i: then a later cancel finds
 * nothing while a claim made before that event may still start (the
 * earlier event's own check bounds it by the lease). */
static bool gone_before(const tt_oracle *o, const tkey *k, size_t j,
                        size_t i) {
  for (size_t m = j + 1; m < i; m++) {
    const key_ev *ev = &k->ev[m];
    if (ev->is_cancel) {
      const cancel_op *c = &o->cancels[ev->idx];
      if (c->has_result && c->rc == TIMERS_OK && c->removed) return true;
    } else if (landed(&o->vers[ev->idx])) {
      return true;
    }
  }
  return false;
}

/* Walks one key's operations in order: replace and cancel checks, and
 * which version (if any) must reach a final outcome. */
static void walk_key(tt_oracle *o, tkey *k, bool report) {
  int last = -1; /* event index of the last version known to exist */
  for (size_t i = 0; i < k->nev; i++) {
    key_ev *ev = &k->ev[i];
    if (ev->is_cancel) {
      cancel_op *c = &o->cancels[ev->idx];
      if (!c->has_result || c->rc != TIMERS_OK) continue;
      for (size_t j = 0; j < i; j++)
        if (!k->ev[j].is_cancel && (c->removed || !gone_before(o, k, j, i)))
          check_after(o, k->ev[j].idx, c->result_t, !c->removed,
                      c->removed ? V_AFTER_CANCEL : V_AFTER_CANCEL_ABSENT,
                      report, c->removed ? "cancel (removed)"
                                         : "cancel (not pending)");
      continue;
    }
    version *v = &o->vers[ev->idx];
    o->vers[ev->idx].required = false;
    if (!landed(v)) continue;
    last = (int)i;
    /* A replace that failed may have landed at any time: no bound. */
    if (isnan(v->result_t) || v->rc != TIMERS_OK) continue;
    for (size_t j = 0; j < i; j++)
      if (!k->ev[j].is_cancel)
        check_after(o, k->ev[j].idx, v->result_t, false, V_OLD_AFTER_REPLACE,
                    report, "the replace");
  }
  if (last < 0) return;
  for (size_t j = (size_t)last + 1; j < k->nev; j++) {
    if (!k->ev[j].is_cancel) continue;
    cancel_op *c = &o->cancels[k->ev[j].idx];
    if (!c->has_result || c->rc != TIMERS_OK || c->removed) return;
  }
  o->vers[k->ev[last].idx].required = true;
}

static void compute_required(tt_oracle *o, bool report) {
  for (size_t i = 0; i < o->nvers; i++) {
    version *v = &o->vers[i];
    /* A generated id whose call failed has no key: it must finish if it
     * shows up at all. */
    v->required = v->key < 0 && v->ndels > 0;
  }
  for (size_t i = 0; i < o->nkeys; i++) walk_key(o, &o->keys[i], report);
}

void tt_oracle_progress(tt_oracle *o, tt_progress *out) {
  link_deliveries(o);
  compute_required(o, false);
  memset(out, 0, sizeof *out);
  out->versions = o->nvers;
  out->deliveries = o->ndels;
  out->last_record_t = o->last_record_t;
  for (size_t i = 0; i < o->nvers; i++) {
    version *v = &o->vers[i];
    if (v->at > out->latest_at && landed(v)) out->latest_at = v->at;
    if (!v->required) continue;
    out->required++;
    if (v->finalized) out->finalized++;
  }
  for (size_t i = 0; i < o->ndels; i++) {
    delivery *d = &o->dels[i];
    if (isnan(d->end) && d->proc >= 0 && !o->procs[d->proc].exit_t)
      out->open_deliveries++;
  }
}

bool tt_oracle_proc_up(tt_oracle *o, int role, int index, int inc) {
  for (size_t i = 0; i < o->nprocs; i++)
    if (o->procs[i].role == role && o->procs[i].index == index &&
        o->procs[i].inc == inc)
      return o->procs[i].up_t > 0;
  return false;
}

/* ------------------------------------------------------------ duplicates */

static bool overlaps(double a0, double a1, double b0, double b1) {
  return a0 <= b1 && b0 <= a1;
}

static bool proc_stopped_in(const proc *p, double t0, double t1) {
  for (size_t i = 0; i + 1 < p->nstops; i += 2)
    if (overlaps(p->stops[i], p->stops[i + 1], t0, t1)) return true;
  return false;
}

static bool fault_in(const tt_oracle *o, int kind, double t0, double t1) {
  for (size_t i = 0; i < o->nfaults; i++)
    if (o->faults[i].kind == kind &&
        overlaps(o->faults[i].t0, o->faults[i].t1, t0, t1))
      return true;
  return false;
}

/* The latest end of a fault of `kind` within [t0, t1], or NAN. */
static double fault_end_in(const tt_oracle *o, int kind, double t0, double t1) {
  double best = NAN;
  for (size_t i = 0; i < o->nfaults; i++) {
    const fault *f = &o->faults[i];
    if (f->kind == kind && f->t1 >= t0 && f->t1 <= t1 &&
        (isnan(best) || f->t1 > best))
      best = f->t1;
  }
  return best;
}

/* The end of the window in which an earlier delivery's outcome is at
 * stake: its lease ran out at most a lease after it started (its claim
 * came before the start), and a commit takes up to COMMIT_SLACK_S. */
static double stake_end(const tt_oracle *o, const delivery *e) {
  double end = isnan(e->end) ? INFINITY : e->end + COMMIT_SLACK_S;
  double lease_end = e->start + topic_lease_s(o, e->topic);
  return end > lease_end ? end : lease_end;
}

/* The probe saw this delivery's own claim: *claim_now gets the "now" the
 * claim computed its lease from (lease expiry minus the lease). */
static bool claim_time(const tt_oracle *o, const delivery *e, double *claim_now) {
  unsigned want = TT_P_OK | TT_P_FOUND | TT_P_SAME_VERSION;
  if ((e->probe & want) != want || e->pattempts != e->attempt) return false;
  *claim_now = e->pscore - topic_lease_s(o, e->topic);
  return true;
}

/* The handler began after its lease had run out: Redis showed its lease
 * expiry in the past, or a later claim already counted. */
static bool started_expired(const delivery *e) {
  unsigned want = TT_P_OK | TT_P_FOUND | TT_P_SAME_VERSION;
  if ((e->probe & want) != want) return false;
  return e->pattempts > e->attempt ||
         (e->pattempts == e->attempt && e->pscore < e->start);
}

/* A stall of Redis inside [t0, t1], or one that the claim preceded and the
 * handler's start followed (the claim ran before it, its reply after). */
static bool stall_explains(const tt_oracle *o, const delivery *e, double w1) {
  double claim;
  bool known = claim_time(o, e, &claim);
  for (size_t i = 0; i < o->nfaults; i++) {
    const fault *f = &o->faults[i];
    if (f->kind != TT_FAULT_REDIS_STALL) continue;
    if (overlaps(f->t0, f->t1, e->start, w1)) return true;
    if (known && claim < f->t0 && f->t0 < e->start) return true;
  }
  return false;
}

/* Why a later claim of e's version may legitimately happen: what the
 * contract allows. C_NONE: nothing allows it. */
static cause explain_dup(const tt_oracle *o, const delivery *e) {
  if (e->outcome == TIMERS_NACK) return C_NACK;
  const proc *p = &o->procs[e->proc];
  double w1 = stake_end(o, e), claim;
  if (!claim_time(o, e, &claim)) claim = e->start - topic_lease_s(o, e->topic);
  if (p->kill_t && p->kill_t >= e->start && p->kill_t <= w1) return C_KILLED;
  if (p->unexpected && p->exit_t >= e->start && (isnan(e->end) || p->exit_t <= w1))
    return C_CRASHED;
  if (proc_stopped_in(p, claim, w1)) return C_SIGSTOP;
  const tt_topic *t = &o->plan.topics[e->topic];
  if (!isnan(e->end) && e->end - e->start >= handler_dup_threshold_s(t))
    return C_LONG_HANDLER;
  if (stall_explains(o, e, w1)) return C_REDIS_STALL;
  if (fault_in(o, TT_FAULT_REDIS_KILL, e->start, w1)) return C_REDIS_RESTART;
  return C_NONE;
}

/* A CLIENT KILL of normal connections (not only the subscribers) while
 * the outcome was at stake. */
static bool client_kill_in(const tt_oracle *o, double t0, double t1) {
  for (size_t i = 0; i < o->nfaults; i++)
    if (o->faults[i].kind == TT_FAULT_CLIENT_KILL && o->faults[i].param != 2 &&
        overlaps(o->faults[i].t0, o->faults[i].t1, t0, t1))
      return true;
  return false;
}

/* What the probe saw at e's start, in words. */
static void probe_words(const tt_oracle *o, const delivery *e, char *out,
                        size_t cap) {
  if (!(e->probe & TT_P_OK)) snprintf(out, cap, "probe failed");
  else if (!(e->probe & TT_P_FOUND)) snprintf(out, cap, "not in Redis");
  else if (!(e->probe & TT_P_SAME_VERSION))
    snprintf(out, cap, "another version in Redis");
  else
    snprintf(out, cap, "Redis: score %+.3f, attempts %u", rel(o, e->pscore),
             e->pattempts);
}

/* A later claim (higher attempt) that started first, if any. */
static const delivery *overtaken_by(const tt_oracle *o, const version *v,
                                    const delivery *e) {
  for (size_t i = 0; i < v->ndels; i++) {
    const delivery *x = &o->dels[v->dels[i]];
    if (x->attempt > e->attempt && x->start < e->start) return x;
  }
  return NULL;
}

/* e's handler began so late in its lease (known from the probe) that the
 * lease ran out before the handler was done, or nearly: the timer had
 * waited in the engine. *wait gets how long. */
static bool started_late(const tt_oracle *o, const delivery *e, double *wait) {
  double claim, lease = topic_lease_s(o, e->topic);
  if (!claim_time(o, e, &claim)) return false;
  double end = isnan(e->end) ? e->start : e->end;
  *wait = e->start - claim;
  return *wait > HANDLER_MARGIN_S && end + HANDLER_MARGIN_S > claim + lease;
}

/* A Redis stall that ended within [t0, t1] (the latest). */
static const fault *stall_ending_in(const tt_oracle *o, double t0, double t1) {
  const fault *best = NULL;
  for (size_t i = 0; i < o->nfaults; i++) {
    const fault *f = &o->faults[i];
    if (f->kind == TT_FAULT_REDIS_STALL && f->t1 >= t0 && f->t1 <= t1 &&
        (!best || f->t1 > best->t1))
      best = f;
  }
  return best;
}

/* No claim of e can precede this: its due time, or the end of the lease
 * of an earlier claim whose lease the probe saw (a claim takes a timer only
 * once its score, the earlier lease, has passed). */
static double claim_lower_bound(const tt_oracle *o, const version *v,
                                const delivery *e) {
  double lb = v->at, claim;
  for (size_t i = 0; i < v->ndels; i++) {
    const delivery *x = &o->dels[v->dels[i]];
    if (x->attempt < e->attempt && claim_time(o, x, &claim) &&
        claim + topic_lease_s(o, x->topic) > lb)
      lb = claim + topic_lease_s(o, x->topic);
  }
  return lb;
}

/* e began after its lease ran out (or too late in it to finish): with a
 * lease computed while Redis was stopped (stale once executed), or after
 * waiting in the engine. */
static vkind diagnose_expired(const tt_oracle *o, const version *v,
                              const delivery *e, const delivery *l,
                              char *why, size_t cap) {
  double lease = topic_lease_s(o, e->topic), claim;
  char pw[96];
  probe_words(o, e, pw, sizeof pw);
  if (claim_time(o, e, &claim))
    for (size_t i = 0; i < o->nfaults; i++) {
      const fault *f = &o->faults[i];
      if (f->kind != TT_FAULT_REDIS_STALL || claim < f->t0 || claim > f->t1)
        continue;
      snprintf(why, cap, "attempt %u's claim computed its lease at %+.3f, "
               "while Redis was stopped (%+.3f..%+.3f); it ran after the "
               "stall with that lease already over (until %+.3f) and the "
               "handler started at %+.3f; attempt %u at %+.3f", e->attempt,
               rel(o, claim), rel(o, f->t0), rel(o, f->t1),
               rel(o, claim + lease), rel(o, e->start), l->attempt,
               rel(o, l->start));
      return V_DUP_STALE_LEASE;
    }
  /* Without the claim's own lease (already re-claimed when probed): a
   * handler that began right after a stall, already overtaken, most likely
   * had its claim run after the stall with a lease computed before it (a
   * claim run before the stall would normally have started before it). */
  const fault *st = stall_ending_in(o, e->start - STALE_START_S, e->start);
  if (st) {
    double lb = claim_lower_bound(o, v, e);
    if (lb > st->t0)
      snprintf(why, cap, "attempt %u started at %+.3f, %.3f s after a Redis "
               "stall (%+.3f..%+.3f) ended, and another claim had already "
               "taken the timer (%s; lease %.2f s); its claim came after "
               "%+.3f (%s), i.e. during the stall: it ran after the stall "
               "with a lease computed before it; attempt %u at %+.3f",
               e->attempt, rel(o, e->start), e->start - st->t1,
               rel(o, st->t0), rel(o, st->t1), pw, lease, rel(o, lb),
               lb == v->at ? "its due time" : "an earlier claim's lease end",
               l->attempt, rel(o, l->start));
    else
      snprintf(why, cap, "attempt %u started at %+.3f, %.3f s after a Redis "
               "stall (%+.3f..%+.3f) ended, and another claim had already "
               "taken the timer (%s; lease %.2f s): its claim most likely ran "
               "after the stall with a lease computed before it; attempt %u "
               "at %+.3f", e->attempt, rel(o, e->start), e->start - st->t1,
               rel(o, st->t0), rel(o, st->t1), pw, lease, l->attempt,
               rel(o, l->start));
    return V_DUP_STALE_LEASE;
  }
  const delivery *x = overtaken_by(o, v, e);
  double wait;
  if (!x && !started_expired(e) && started_late(o, e, &wait))
    snprintf(why, cap, "attempt %u was claimed at %+.3f and waited %.3f s of "
             "its %.2f s lease in the engine before its handler ran "
             "(%+.3f..%+.3f): the lease ran out (at %+.3f) before the "
             "outcome could be committed; attempt %u at %+.3f", e->attempt,
             rel(o, e->start - wait), wait, lease, rel(o, e->start),
             rel(o, isnan(e->end) ? e->start : e->end),
             rel(o, e->start - wait + lease), l->attempt, rel(o, l->start));
  else if (x)
    snprintf(why, cap, "attempt %u started at %+.3f (%s), after attempt %u "
             "had started at %+.3f: claimed first, it waited past its %.2f s "
             "lease before its handler ran", e->attempt, rel(o, e->start), pw,
             x->attempt, rel(o, x->start), lease);
  else
    snprintf(why, cap, "attempt %u started at %+.3f with its lease already "
             "over (%s; lease %.2f s); attempt %u at %+.3f", e->attempt,
             rel(o, e->start), pw, lease, l->attempt, rel(o, l->start));
  return V_DUP_QUEUED;
}

/* The likeliest engine-side cause of a duplicate nothing allows, with
 * the evidence in words. */
static vkind diagnose_dup(const tt_oracle *o, const version *v,
                          const delivery *e, const delivery *l, char *why,
                          size_t cap) {
  const proc *p = &o->procs[e->proc];
  double lease = topic_lease_s(o, e->topic), w1 = stake_end(o, e), claim = 0;
  double end = isnan(e->end) ? e->start : e->end;
  bool known = claim_time(o, e, &claim);
  char pw[96];
  probe_words(o, e, pw, sizeof pw);
  double wait;
  if (started_expired(e) || overtaken_by(o, v, e) || started_late(o, e, &wait))
    return diagnose_expired(o, v, e, l, why, cap);
  if (!isnan(v->result_t) && v->result_t > end && l->start > end) {
    snprintf(why, cap, "attempt %u ended (%s) at %+.3f while its schedule "
             "call (from %+.3f) had not returned yet (returned at %+.3f, "
             "rc %d); attempt %u followed at %+.3f", e->attempt,
             e->outcome == TIMERS_REJECT ? "REJECT" : "ACK", rel(o, end),
             rel(o, v->intent_t), rel(o, v->result_t), v->rc, l->attempt,
             rel(o, l->start));
    return V_DUP_RESURRECTED;
  }
  /* Ended while stop() drained (or just before it began): stop() must
   * commit the outcomes of the handlers it lets finish. */
  if (p->term_t && end >= p->term_t - COMMIT_SLACK_S &&
      (!p->stop_done_t || end <= p->stop_done_t)) {
    snprintf(why, cap, "attempt %u ran %+.3f..%+.3f (%s) in an engine told "
             "to stop at %+.3f (drain timeout %.1f s: until %+.3f), whose "
             "stop() returned at %+.3f; attempt %u at %+.3f", e->attempt,
             rel(o, e->start), rel(o, end), pw, rel(o, p->term_t),
             p->drain_ms / 1e3, rel(o, p->term_t + p->drain_ms / 1e3),
             rel(o, p->stop_done_t), l->attempt, rel(o, l->start));
    return V_DUP_STOP;
  }
  if (fault_in(o, TT_FAULT_MAXMEMORY, end, w1)) {
    snprintf(why, cap, "attempt %u ended at %+.3f while Redis was at "
             "maxmemory; attempt %u at %+.3f", e->attempt, rel(o, end),
             l->attempt, rel(o, l->start));
    return V_DUP_OOM;
  }
  double fe = fault_end_in(o, TT_FAULT_REDIS_STALL, e->start - lease, e->start);
  if (!known && !isnan(fe)) {
    snprintf(why, cap, "attempt %u started at %+.3f, %.3f s after a Redis "
             "stall ended (%s), and ran %.3f s (lease %.2f s); attempt %u "
             "at %+.3f", e->attempt, rel(o, e->start), e->start - fe, pw,
             end - e->start, lease, l->attempt, rel(o, l->start));
    return V_DUP_STALE_LEASE;
  }
  if (client_kill_in(o, e->start, w1)) {
    snprintf(why, cap, "attempt %u (%+.3f..%+.3f) near a CLIENT KILL; "
             "attempt %u at %+.3f", e->attempt, rel(o, e->start),
             rel(o, end), l->attempt, rel(o, l->start));
    return V_DUP_CLIENT_KILL;
  }
  if (fault_in(o, TT_FAULT_POISON, e->start - lease, w1)) {
    snprintf(why, cap, "attempt %u (%+.3f..%+.3f) while a wrong-type key "
             "existed; attempt %u at %+.3f", e->attempt, rel(o, e->start),
             rel(o, end), l->attempt, rel(o, l->start));
    return V_DUP_POISON;
  }
  if (known)
    snprintf(why, cap, "attempt %u ran %+.3f..%+.3f and %s; its lease (claimed "
             "at %+.3f) was valid until %+.3f, %.3f s after the handler "
             "returned, yet the outcome was not committed: attempt %u started "
             "at %+.3f", e->attempt, rel(o, e->start), rel(o, end),
             e->outcome == TIMERS_REJECT ? "REJECTed" : "ACKed",
             rel(o, claim), rel(o, claim + lease), claim + lease - end,
             l->attempt, rel(o, l->start));
  else
    snprintf(why, cap, "attempt %u ran %+.3f..%+.3f (%.3f s; %s; lease %.2f "
             "s) and %s; attempt %u started at %+.3f", e->attempt,
             rel(o, e->start), rel(o, end), end - e->start, pw, lease,
             e->outcome == TIMERS_REJECT ? "REJECTed" : "ACKed", l->attempt,
             rel(o, l->start));
  return l->attempt == e->attempt ? V_DUP_SAME_ATTEMPT : V_DUP_UNEXPLAINED;
}

/* Every later delivery of a version against the earlier ones. One
 * violation per version and kind; allowed duplicates counted by cause. */
static void check_duplicates(tt_oracle *o, int vi) {
  version *v = &o->vers[vi];
  bool seen[V_COUNT] = {false};
  for (size_t j = 1; j < v->ndels; j++) {
    const delivery *l = &o->dels[v->dels[j]];
    cause counted = C_NACK;
    for (size_t i = 0; i < j; i++) {
      const delivery *e = &o->dels[v->dels[i]];
      cause c = explain_dup(o, e);
      if (c != C_NONE) {
        if (c != C_NACK) counted = c;
        continue;
      }
      char why[512];
      vkind k = diagnose_dup(o, v, e, l, why, sizeof why);
      if (!seen[k])
        add_viol(o, k, vi, v->dels[i], v->dels[j], "%s", why);
      seen[k] = true;
      counted = C_NONE;
      break;
    }
    if (counted != C_NONE) o->dup_by_cause[counted]++;
  }
}

/* --------------------------------------------------------------- checks */

/* stop(): "timers still queued after drain_timeout_ms are left to their
 * leases": no handler may start after that. */
static void check_stop_start(tt_oracle *o, int di) {
  const delivery *d = &o->dels[di];
  const proc *p = &o->procs[d->proc];
  if (!p->term_t || !p->drain_ms) return;
  double deadline = p->term_t + p->drain_ms / 1e3;
  if (d->start > deadline + 0.1)
    add_viol(o, V_STOP_LATE_START, d->ver, di, -1,
             "engine %d.%d was told to stop at %+.3f (drain timeout %.1f s, "
             "until %+.3f) and started attempt %u of %s at %+.3f; stop() "
             "returned at %+.3f", p->index, p->inc, rel(o, p->term_t),
             p->drain_ms / 1e3, rel(o, deadline), d->attempt, d->id,
             rel(o, d->start), rel(o, p->stop_done_t));
}

static void check_deliveries(tt_oracle *o) {
  for (size_t i = 0; i < o->ndels; i++) {
    delivery *d = &o->dels[i];
    check_stop_start(o, (int)i);
    if (d->bad) {
      add_viol(o, V_CORRUPT, d->ver, (int)i, -1,
               "id %s attempt %u: payload, topic or version header did not "
               "verify", d->id, d->attempt);
      continue;
    }
    if (d->ver < 0 && d->version == 0 && o->plan.topics[d->topic].poison) {
      o->poison_probes++; /* the driver's own probe timer (see torture.c) */
      continue;
    }
    if (d->ver < 0) {
      add_viol(o, V_PHANTOM, -1, (int)i, -1,
               "topic %s id %s version %016" PRIx64 " was never scheduled",
               o->plan.topics[d->topic].name, d->id, d->version);
      continue;
    }
    version *v = &o->vers[d->ver];
    if (v->topic != d->topic)
      add_viol(o, V_WRONG_TOPIC, d->ver, (int)i, -1,
               "scheduled on %s, delivered on %s",
               o->plan.topics[v->topic].name, o->plan.topics[d->topic].name);
    if (v->id[0] && strcmp(v->id, d->id) != 0)
      add_viol(o, V_WRONG_ID, d->ver, (int)i, -1,
               "scheduled as %s, delivered as %s", v->id, d->id);
    if (d->start < v->at - 0.005)
      add_viol(o, V_EARLY, d->ver, (int)i, -1,
               "started %.3f s before its activation time", v->at - d->start);
  }
}

/* ", spanning <fault>" for the first Redis-side fault inside [t0, t1]. */
static const char *redis_fault_words(const tt_oracle *o, double t0, double t1) {
  static char buf[128];
  buf[0] = '\0';
  for (size_t i = 0; i < o->nfaults; i++) {
    const fault *f = &o->faults[i];
    if (!tt_fault_is_redis(f->kind) || !overlaps(f->t0, f->t1, t0, t1)) continue;
    snprintf(buf, sizeof buf, ", spanning %s %+.3f..%+.3f",
             tt_fault_name(f->kind), rel(o, f->t0), rel(o, f->t1));
    break;
  }
  return buf;
}

/* A later cancel on v's key that returned "not pending" before v was due. */
static const cancel_op *cancel_not_pending_before(const tt_oracle *o,
                                                  const version *v) {
  if (v->key < 0) return NULL;
  const tkey *k = &o->keys[v->key];
  bool after = false;
  for (size_t i = 0; i < k->nev; i++) {
    if (!k->ev[i].is_cancel) {
      after = &o->vers[k->ev[i].idx] == v;
      continue;
    }
    const cancel_op *c = &o->cancels[k->ev[i].idx];
    if (after && c->has_result && c->rc == TIMERS_OK && !c->removed &&
        c->result_t < v->at)
      return c;
  }
  return NULL;
}

static void check_finals(tt_oracle *o) {
  for (size_t i = 0; i < o->nvers; i++) {
    version *v = &o->vers[i];
    if (!v->required || v->finalized) continue;
    const cancel_op *c = cancel_not_pending_before(o, v);
    if (v->ndels == 0 && c)
      add_viol(o, V_LOST_CANCEL, (int)i, -1, -1,
               "schedule returned OK at %+.3f, due at %+.3f; the cancel of "
               "%+.3f..%+.3f (%.3f s%s) returned 'not pending' before it was "
               "due, and the timer never fired: the cancel removed it yet said "
               "it was not there (as a retry inside the call would, finding "
               "its own first try's work)", rel(o, v->result_t),
               rel(o, v->at), rel(o, c->intent_t), rel(o, c->result_t),
               c->result_t - c->intent_t,
               redis_fault_words(o, c->intent_t, c->result_t));
    else if (v->ndels == 0)
      add_viol(o, V_LOST, (int)i, -1, -1,
               "schedule returned %s at %+.3f, due at %+.3f; never delivered",
               v->rc == TIMERS_OK ? "OK" : "an error", rel(o, v->result_t),
               rel(o, v->at));
    else
      add_viol(o, V_STUCK, (int)i, v->dels[v->ndels - 1], -1,
               "%zu deliveries, none ended with ACK or REJECT", v->ndels);
  }
}

/* A member left in Redis: which version it is and what happened to it. */
static void check_leftovers(tt_oracle *o) {
  for (size_t i = 0; i < o->nleft; i++) {
    const tt_leftover *l = &o->left[i];
    char topic[64] = "";
    unsigned shard = 0;
    sscanf(l->key, TT_KEY_PREFIX ":{%63[^:]:%u}", topic, &shard);
    int ti = tt_topic_index(&o->plan, topic);
    int k = ti >= 0 ? key_get(o, ti, l->member, false) : -1;
    int vi = -1;
    if (k >= 0)
      for (size_t j = 0; j < o->keys[k].nev; j++)
        if (!o->keys[k].ev[j].is_cancel) vi = o->keys[k].ev[j].idx;
    const char *what = vi < 0 ? "not a known key"
                       : o->vers[vi].finalized ? "finished (ACK/REJECT) but not removed"
                       : o->vers[vi].ndels ? "delivered, never finished"
                                           : "never delivered";
    bool misrouted = ti >= 0 && shard >= (unsigned)o->plan.topics[ti].shards;
    add_viol(o, V_LEFTOVER, vi, -1, -1, "%s member %s score %.3f: %s%s",
             l->key, l->member, l->score, what,
             misrouted ? " (shard index beyond the topic's shard count: "
                         "written where no engine polls)" : "");
  }
}

/* Timers due while Redis was at maxmemory should still fire: a claim
 * frees no memory but the engine cannot free any without claiming. */
static void check_oom_firing(tt_oracle *o) {
  for (size_t i = 0; i < o->nfaults; i++) {
    const fault *f = &o->faults[i];
    if (f->kind != TT_FAULT_MAXMEMORY || !isfinite(f->t1) || f->t1 - f->t0 < 2)
      continue;
    size_t due = 0, fired = 0;
    double first_after = INFINITY;
    for (size_t k = 0; k < o->nvers; k++) {
      const version *v = &o->vers[k];
      if (v->rc != TIMERS_OK || v->result_t > f->t0 || v->ndels == 0) continue;
      if (v->at < f->t0 || v->at > f->t1 - 1.0) continue;
      due++;
      double first = INFINITY;
      for (size_t j = 0; j < v->ndels; j++)
        if (o->dels[v->dels[j]].start < first) first = o->dels[v->dels[j]].start;
      if (first < f->t1) fired++;
      else if (first < first_after) first_after = first;
    }
    size_t used = strlen(o->oom_report);
    snprintf(o->oom_report + used, sizeof o->oom_report - used,
             "maxmemory %+.3f..%+.3f: %zu timers fell due in it, %zu of them "
             "fired before it was lifted\n", rel(o, f->t0), rel(o, f->t1),
             due, fired);
    /* A timer due at least a second before the end fires within the
     * window on a healthy engine; a tenth is plenty of slack for the ones
     * already in flight. */
    if (due >= 3 && fired * 10 <= due)
      add_viol(o, V_OOM_NO_FIRING, -1, -1, -1,
               "maxmemory %+.3f..%+.3f: %zu timers fell due in it (a second "
               "or more before its end), %zu fired before it was lifted; the "
               "others from %+.3f", rel(o, f->t0), rel(o, f->t1), due, fired,
               rel(o, first_after));
  }
}

#define SPIN_ERRORS_PER_S 100 /* per live engine; a backoff stays far below */

static void check_notes(tt_oracle *o) {
  for (size_t i = 0; i < o->nnotes; i++) {
    const note *n = &o->notes[i];
    if (n->kind == TT_NOTE_ERRORS && n->at > 0) {
      double rate = n->value / n->at / (n->engines > 0 ? n->engines : 1);
      if (rate > SPIN_ERRORS_PER_S)
        add_viol(o, V_POISON_SPIN, -1, -1, -1,
                 "%d WRONGTYPE errors in %.1f s with %d engines up (%.0f per "
                 "second per engine) at %+.3f", n->value, n->at, n->engines,
                 rate, rel(o, n->t));
    }
    if (n->kind == TT_NOTE_STOP_HANG)
      add_viol(o, V_STOP_HANG, -1, -1, -1,
               "an engine's stop() had not returned %.0f s after SIGTERM "
               "(at %+.3f); it was SIGKILLed", n->at, rel(o, n->t));
  }
  for (size_t i = 0; i < o->nprocs; i++) {
    const proc *p = &o->procs[i];
    if (!p->unexpected) continue;
    int st = p->exit_status;
    add_viol(o, V_CRASH, -1, -1, -1, "%s %d.%d (pid %d) %s %d at %+.3f",
             p->role == TT_ROLE_ENGINE ? "engine" : p->role == TT_ROLE_PRODUCER
                                                        ? "producer" : "redis",
             p->index, p->inc, p->pid,
             WIFSIGNALED(st) ? "died of signal" : "exited with status",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), rel(o, p->exit_t));
  }
  if (o->torn)
    add_viol(o, V_TORN, -1, -1, -1, "%zu records failed their checksum",
             o->torn);
}

/* ------------------------------------------------------------- reports */

static const char *outcome_name(int o) {
  return o == TIMERS_ACK ? "ACK" : o == TIMERS_NACK ? "NACK"
         : o == TIMERS_REJECT ? "REJECT" : "-";
}

static void print_delivery(const tt_oracle *o, int di) {
  const delivery *d = &o->dels[di];
  const proc *p = &o->procs[d->proc];
  char end[32] = "(none)";
  if (!isnan(d->end)) snprintf(end, sizeof end, "%+.3f", rel(o, d->end));
  char pw[96];
  probe_words(o, d, pw, sizeof pw);
  printf("      delivery attempt %-2u engine %d.%d pid %-7d start %+.3f end "
         "%-9s %-6s planned %d ms (%s)\n", d->attempt, p->index, p->inc,
         p->pid, rel(o, d->start), end, outcome_name(d->outcome),
         d->planned_ms, pw);
}

static void print_proc_events(const tt_oracle *o, int pi) {
  const proc *p = &o->procs[pi];
  printf("      engine %d.%d pid %d: up %+.3f", p->index, p->inc, p->pid,
         rel(o, p->up_t));
  for (size_t i = 0; i + 1 < p->nstops; i += 2)
    printf(", SIGSTOP %+.3f..%+.3f", rel(o, p->stops[i]),
           rel(o, p->stops[i + 1]));
  if (p->term_t) printf(", SIGTERM %+.3f", rel(o, p->term_t));
  if (p->stop_done_t) printf(", stop() returned %+.3f", rel(o, p->stop_done_t));
  if (p->kill_t) printf(", SIGKILL %+.3f", rel(o, p->kill_t));
  if (p->exit_t) printf(", exit %+.3f", rel(o, p->exit_t));
  printf("\n");
}

static void print_key_events(const tt_oracle *o, const tkey *k, int vi) {
  for (size_t i = 0; i < k->nev; i++) {
    if (k->ev[i].is_cancel) {
      const cancel_op *c = &o->cancels[k->ev[i].idx];
      printf("        cancel %+.3f..%+.3f rc %d%s\n", rel(o, c->intent_t),
             rel(o, c->result_t), c->has_result ? c->rc : RC_UNKNOWN,
             !c->has_result ? " (cut short)"
             : c->removed   ? " removed"
                            : " not pending");
      continue;
    }
    const version *u = &o->vers[k->ev[i].idx];
    printf("      %s schedule %016" PRIx64 " (%s%s, call of %u) %+.3f..%+.3f "
           "rc %d due %+.3f, %zu deliveries\n",
           k->ev[i].idx == vi ? "*" : " ", u->v,
           u->flags & TT_F_REPLACE ? "replace" : "new",
           u->flags & TT_F_GENERATED ? ", generated id" : "", u->batch_n,
           rel(o, u->intent_t), rel(o, u->result_t),
           u->rc == RC_UNKNOWN ? -99 : u->rc, rel(o, u->at), u->ndels);
  }
}

/* The operations on the version's key, its deliveries, and the life of
 * the engines that delivered it. */
static void print_history(const tt_oracle *o, int vi) {
  const version *v = &o->vers[vi];
  printf("    topic %s id %s version %016" PRIx64 " due %+.3f\n",
         o->plan.topics[v->topic].name, v->id[0] ? v->id : "(unknown)", v->v,
         rel(o, v->at));
  if (v->key >= 0) print_key_events(o, &o->keys[v->key], vi);
  int shown[16];
  size_t nshown = 0;
  for (size_t j = 0; j < v->ndels; j++) {
    print_delivery(o, v->dels[j]);
    int pi = o->dels[v->dels[j]].proc;
    bool dup = false;
    for (size_t s = 0; s < nshown; s++) dup |= shown[s] == pi;
    if (!dup && nshown < 16) shown[nshown++] = pi;
  }
  for (size_t s = 0; s < nshown; s++) print_proc_events(o, shown[s]);
}

static void print_faults(const tt_oracle *o) {
  size_t count[TT_FAULT_COUNT] = {0};
  for (size_t i = 0; i < o->nfaults; i++)
    if (o->faults[i].kind >= 0 && o->faults[i].kind < TT_FAULT_COUNT)
      count[o->faults[i].kind]++;
  printf("faults injected:");
  for (int k = 0; k < TT_FAULT_COUNT; k++)
    printf(" %s %zu%s", tt_fault_name(k), count[k],
           k + 1 < TT_FAULT_COUNT ? "," : "\n");
  if (!o->opt.verbose) return;
  for (size_t i = 0; i < o->nfaults; i++)
    printf("  %-24s target %d param %d  %+.3f..%+.3f\n",
           tt_fault_name(o->faults[i].kind), o->faults[i].target,
           o->faults[i].param, rel(o, o->faults[i].t0),
           rel(o, o->faults[i].t1));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void print_schedule_counts(const tt_oracle *o) {
  size_t ok = 0, failed = 0, unknown = 0, failed_landed = 0, replaces = 0;
  size_t generated = 0, removed = 0, cancel_err = 0;
  for (size_t i = 0; i < o->nvers; i++) {
    const version *v = &o->vers[i];
    generated += (v->flags & TT_F_GENERATED) != 0;
    replaces += (v->flags & TT_F_REPLACE) != 0;
    if (v->rc == TIMERS_OK) ok++;
    else if (v->rc == RC_UNKNOWN) unknown++, failed_landed += v->ndels > 0;
    else failed++, failed_landed += v->ndels > 0;
  }
  for (size_t i = 0; i < o->ncancels; i++) {
    removed += o->cancels[i].removed;
    cancel_err += !o->cancels[i].has_result || o->cancels[i].rc != TIMERS_OK;
  }
  printf("timers: %zu versions scheduled: %zu OK, %zu failed, %zu cut short by "
         "a kill (of these %zu landed anyway and fired, %zu never showed up); "
         "%zu with generated ids, %zu replaces\n", o->nvers, ok, failed,
         unknown, failed_landed, failed + unknown - failed_landed, generated,
         replaces);
  printf("cancels: %zu (%zu removed, %zu failed); deliveries started after a "
         "successful cancel within a lease (claimed before it): %zu, latest "
         "%.3f s after; old versions started within a lease after their "
         "replace: %zu, latest %.3f s after\n", o->ncancels, removed,
         cancel_err, o->raced_cancel, o->raced_cancel_max, o->raced_replace,
         o->raced_replace_max);
}

static void print_delivery_counts(const tt_oracle *o) {
  size_t finals = 0, nacks = 0, open = 0, required = 0, finalized = 0;
  for (size_t i = 0; i < o->ndels; i++) {
    finals += is_final(o->dels[i].outcome);
    nacks += o->dels[i].outcome == TIMERS_NACK;
    open += isnan(o->dels[i].end);
  }
  for (size_t i = 0; i < o->nvers; i++) {
    required += o->vers[i].required;
    finalized += o->vers[i].required && o->vers[i].finalized;
  }
  printf("deliveries: %zu (%zu ACK/REJECT, %zu NACK, %zu never ended); %zu "
         "timers had to finish, %zu did\n", o->ndels, finals, nacks, open,
         required, finalized);
  double *late = malloc((o->nvers + 1) * sizeof *late);
  size_t nlate = 0, over5 = 0;
  for (size_t i = 0; late && i < o->nvers; i++) {
    const version *v = &o->vers[i];
    if (!v->ndels || v->rc != TIMERS_OK) continue;
    double first = INFINITY;
    for (size_t j = 0; j < v->ndels; j++)
      if (o->dels[v->dels[j]].start < first) first = o->dels[v->dels[j]].start;
    late[nlate++] = first - v->at;
    over5 += first - v->at > 5;
  }
  if (nlate) {
    qsort(late, nlate, sizeof *late, cmp_double);
    printf("lateness of first deliveries: p50 %.3f s, p99 %.3f s, max %.3f s, "
           "%zu over 5 s\n", late[nlate / 2], late[nlate * 99 / 100],
           late[nlate - 1], over5);
  }
  free(late);
}

static void print_duplicates(const tt_oracle *o) {
  size_t allowed = 0;
  for (int c = 1; c < C_COUNT; c++) allowed += o->dup_by_cause[c];
  printf("redeliveries after NACK: %zu\n", o->dup_by_cause[C_NACK]);
  printf("duplicates the contract allows: %zu\n", allowed);
  for (int c = 1; c < C_COUNT; c++)
    if (o->dup_by_cause[c])
      printf("  %-40s %zu\n", cause_names[c], o->dup_by_cause[c]);
}

static void print_violations(const tt_oracle *o) {
  size_t count[V_COUNT] = {0};
  for (size_t i = 0; i < o->nviols; i++) count[o->viols[i].kind]++;
  printf("violations: %zu\n", o->nviols);
  for (int k = 0; k < V_COUNT; k++) {
    if (!count[k]) continue;
    printf("  [%zu] %s\n", count[k], vkind_names[k]);
    int shown = 0;
    for (size_t i = 0; i < o->nviols && shown < o->opt.examples; i++) {
      const viol *v = &o->viols[i];
      if ((int)v->kind != k) continue;
      shown++;
      printf("   - %s\n", v->text);
      if (v->ver >= 0) print_history(o, v->ver);
    }
    if ((int)count[k] > shown) printf("   ... and %zu more\n", count[k] - (size_t)shown);
  }
}

size_t tt_oracle_check(tt_oracle *o) {
  o->nviols = 0;
  memset(o->dup_by_cause, 0, sizeof o->dup_by_cause);
  o->raced_cancel = o->raced_replace = o->poison_probes = 0;
  o->oom_report[0] = '\0';
  o->raced_cancel_max = o->raced_replace_max = 0;
  link_deliveries(o);
  compute_required(o, true);
  check_deliveries(o);
  for (size_t i = 0; i < o->nvers; i++) check_duplicates(o, (int)i);
  check_finals(o);
  check_leftovers(o);
  check_oom_firing(o);
  check_notes(o);

  printf("\n== torture summary (seed %" PRIu64 ") ==\n", o->plan.seed);
  printf("topics:");
  for (int i = 0; i < o->plan.ntopics; i++)
    printf(" %s(%d shards, lease %d ms)%s", o->plan.topics[i].name,
           o->plan.topics[i].shards, o->plan.topics[i].lease_ms,
           i + 1 < o->plan.ntopics ? "," : "\n");
  print_schedule_counts(o);
  print_delivery_counts(o);
  print_faults(o);
  print_duplicates(o);
  printf("redis at the end: %s\n", o->patterns ? o->patterns : "(not scanned)");
  printf("%s", o->oom_report);
  if (o->poison_probes)
    printf("poison probe timers delivered before their shard was poisoned: "
           "%zu\n", o->poison_probes);
  print_violations(o);
  return o->nviols;
}
