/*
 * poller.c - a poller thread: it owns some shards and one Redis connection,
 * and is the only thread that claims and commits them.
 *
 * Each turn of the loop is ONE pipelined round trip: the commits of finished
 * jobs (fenced by their lease) and the claims of every due shard, sized to
 * the room left downstream (capacity - inflight), so claimed timers never
 * wait in a queue past their lease for lack of a worker. Then it sleeps until
 * the earliest known due time of its shards (bounded by max_sleep_ms), woken
 * early by a kick: a worker finished a job, a local schedule or a wake
 * message from another process announced an earlier timer, or stop().
 * Sleeps are local condition-variable waits on the monotonic clock, never a
 * blocking Redis command's timeout (Redis rounds those to its hz tick).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "engine.h"
#include "error.h"

int tm__poller_init(tm_poller *p, timers_engine *e, int index) {
  p->engine = e;
  p->index = index;
  p->capacity = (unsigned)e->cfg.ring_capacity - 1;
  p->budget = (unsigned)e->cfg.claim_batch;
  p->kick_threshold = (unsigned)e->cfg.claim_batch < p->capacity / 2
                          ? (unsigned)e->cfg.claim_batch
                          : p->capacity / 2;
  tm__cond_init_monotonic(&p->cond);
  pthread_mutex_init(&p->lock, NULL);
  if (tm__ring_init(&p->work, (unsigned)e->cfg.ring_capacity) != 0 ||
      tm__ring_init(&p->done, (unsigned)e->cfg.ring_capacity) != 0)
    return tm__error(TIMERS_ENOMEM, "out of memory");
  return TIMERS_OK;
}

/* After every thread has stopped: frees jobs left anywhere. */
void tm__poller_destroy(tm_poller *p) {
  if (!p->engine) return;
  tm_job *j;
  while (p->work.slots && tm__ring_pop_spmc(&p->work, &j)) tm__free(j);
  while (p->done.slots && tm__ring_pop_mpsc(&p->done, &j)) tm__free(j);
  for (size_t i = 0; i < p->nshards; i++) {
    tm_shard *s = p->shards[i];
    for (size_t k = 0; k < s->ncommits; k++) tm__free(s->commits[k]);
    s->ncommits = 0;
  }
  tm__ring_free(&p->work);
  tm__ring_free(&p->done);
  tm__free(p->shards);
  tm__conn_close(&p->conn);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  p->engine = NULL;
}

/* ----------------------------------------------------------- sleep, wake */

void tm__poller_kick(tm_poller *p) {
  atomic_store(&p->kicked, 1);
  if (atomic_load(&p->sleeping)) {
    tm__lock(p->engine, &p->lock);
    tm__count(&p->engine->contention.poller_kicks, 1);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
  }
}

static void poller_sleep(tm_poller *p, int64_t ns) {
  if (ns > 0) {
    struct timespec until = tm__mono_timespec(tm__mono_ns() + ns);
    tm__lock(p->engine, &p->lock);
    atomic_store(&p->sleeping, 1);
    if (!atomic_load(&p->kicked) && tm__ring_size(&p->done) == 0) {
      tm__count(&p->engine->contention.poller_sleeps, 1);
      pthread_cond_timedwait(&p->cond, &p->lock, &until);
    }
    atomic_store(&p->sleeping, 0);
    pthread_mutex_unlock(&p->lock);
  }
  /* An RMW, so it synchronizes with the kicker's store (and its push). */
  atomic_exchange(&p->kicked, 0);
}

/* Returns the number of failed compare-and-swap attempts. */
static uint64_t atomic_min64(_Atomic int64_t *v, int64_t x) {
  uint64_t retries = 0;
  int64_t cur = atomic_load_explicit(v, memory_order_relaxed);
  while (x < cur && !atomic_compare_exchange_weak(v, &cur, x)) retries++;
  return retries;
}

void tm__shard_hint(tm_shard *s, int64_t at_us) {
  uint64_t retries = atomic_min64(&s->hint_us, at_us);
  if (retries) tm__count(&s->topic->engine->contention.cas_retries, retries);
  if (at_us < atomic_load_explicit(&s->next_due_us, memory_order_relaxed))
    tm__poller_kick(s->owner);
}

/* Folds an announced due time into what the owner knows. Owner only. */
static int64_t shard_due(tm_shard *s) {
  int64_t h = atomic_exchange(&s->hint_us, INT64_MAX);
  int64_t due = atomic_load_explicit(&s->next_due_us, memory_order_relaxed);
  if (h < due) {
    due = h;
    atomic_store_explicit(&s->next_due_us, due, memory_order_relaxed);
  }
  return due;
}

/* ----------------------------------------------------------- completions */

/* First deliveries only (attempt 0: not tracked, FASTSTREAM layout). */
static void record_lateness(tm_poller *p, const tm_job *j) {
  if (j->attempt > 1 || j->activate_at <= 0) return;
  double late = j->fired_at - j->activate_at;
  tm__count(&p->lateness[tm__lateness_bucket(late)], 1);
  if (late > 0) tm__count(&p->lateness_sum_us, (uint64_t)(late * 1e6));
}

static int queue_commit(tm_shard *s, tm_job *j) {
  if (s->ncommits == s->commits_cap) {
    size_t cap = s->commits_cap ? s->commits_cap * 2 : 64;
    tm_job **g = tm__realloc(s->commits, sizeof *g * cap);
    if (!g) return -1;
    s->commits = g, s->commits_cap = cap;
  }
  s->commits[s->ncommits++] = j;
  return 0;
}

/* Takes finished jobs back from the workers. */
static void drain_done(tm_poller *p) {
  tm_job *j;
  while (tm__ring_pop_mpsc(&p->done, &j)) {
    tm_shard *s = j->shard;
    p->inflight--;
    atomic_fetch_sub_explicit(&s->topic->inflight, 1, memory_order_relaxed);
    tm__count(&s->counters.fired, 1);
    record_lateness(p, j);
    if (j->outcome == TIMERS_NACK) {
      tm__count(&s->counters.nacked, 1);
      atomic_fetch_sub_explicit(&p->outstanding, 1, memory_order_relaxed);
      tm__free(j); /* the lease runs out, then it is claimed again */
      continue;
    }
    tm__count(j->outcome == TIMERS_REJECT ? &s->counters.rejected
                                          : &s->counters.acked, 1);
    if (queue_commit(s, j) != 0) { /* OOM: the lease runs out */
      atomic_fetch_sub_explicit(&p->outstanding, 1, memory_order_relaxed);
      tm__free(j);
    }
  }
}

/* ------------------------------------------------------------ round trip */

typedef enum { CALL_COMMIT, CALL_CLAIM } call_kind;

typedef struct tm_call {
  call_kind kind;
  tm_shard *shard;
  unsigned count;    /* commit: jobs sent; claim: timers asked for */
  bool expected_due; /* claim: a known score said the shard was due */
  char lease[TM_LEASE_MAX]; /* claim: the lease it sets, the fencing token */
} tm_call;

typedef struct tm_turn {
  tm_call *calls;   /* a commit per shard, claims within the budget */
  size_t ncalls, max_calls;
  double now;
  char now_str[TM_LEASE_MAX];
  bool starved;     /* a due shard got no room */
  bool caught_up;   /* a claim got fewer timers than it asked for */
} tm_turn;

static int append_commit(tm_poller *p, tm_shard *s, tm_turn *t) {
  unsigned n = s->ncommits < TM_COMMIT_MAX ? (unsigned)s->ncommits
                                             : TM_COMMIT_MAX;
  const char *argv[3 + 2 * TM_COMMIT_MAX];
  size_t len[3 + 2 * TM_COMMIT_MAX];
  argv[0] = s->zkey, argv[1] = s->pkey, argv[2] = s->akey;
  len[0] = strlen(s->zkey), len[1] = strlen(s->pkey), len[2] = strlen(s->akey);
  for (unsigned k = 0; k < n; k++) {
    tm_job *j = s->commits[k];
    argv[3 + 2 * k] = j->lease, len[3 + 2 * k] = strlen(j->lease);
    argv[4 + 2 * k] = j->id, len[4 + 2 * k] = j->id_len;
  }
  int rc = tm__conn_append_script(&p->conn, TM_SCRIPT_COMMIT, 3, 3 + 2 * (int)n,
                                  argv, len);
  if (rc == TIMERS_OK)
    t->calls[t->ncalls++] = (tm_call){CALL_COMMIT, s, n, false, {0}};
  return rc;
}

/* Room for a claim on s: downstream capacity and the topic's limit. The
 * topic share is reserved now and the unused part given back later. */
static unsigned claim_room(tm_poller *p, tm_shard *s, unsigned room) {
  unsigned n = (unsigned)p->engine->cfg.claim_batch;
  if (n > room) n = room;
  tm_topic *tp = s->topic;
  if (tp->max_inflight) {
    int used = atomic_fetch_add(&tp->inflight, (int)n);
    int left = tp->max_inflight - used;
    unsigned take = left <= 0 ? 0 : (unsigned)left < n ? (unsigned)left : n;
    atomic_fetch_sub(&tp->inflight, (int)(n - take));
    return take;
  }
  atomic_fetch_add_explicit(&tp->inflight, (int)n, memory_order_relaxed);
  return n;
}

static int append_claim(tm_poller *p, tm_shard *s, tm_turn *t, unsigned n,
                        int64_t due) {
  tm_call *c = &t->calls[t->ncalls];
  *c = (tm_call){CALL_CLAIM, s, n, due > 0, {0}};
  char count[16];
  snprintf(c->lease, sizeof c->lease, "%.6f",
           t->now + s->topic->lease_ms / 1000.0);
  snprintf(count, sizeof count, "%u", n);
  const char *track = s->topic->layout == TIMERS_LAYOUT_NATIVE ? "1" : "0";
  const char *argv[] = {s->zkey, s->pkey,  s->akey, t->now_str,
                        c->lease, count,   track};
  size_t len[7];
  for (int k = 0; k < 7; k++) len[k] = strlen(argv[k]);
  int rc = tm__conn_append_script(&p->conn, TM_SCRIPT_CLAIM, 3, 7, argv, len);
  if (rc == TIMERS_OK) t->ncalls++;
  return rc;
}

/* Claims every due shard for an equal share of the turn's budget (or of
 * the room left, if less). The budget starts at one claim_batch: Redis
 * writes a pipeline's replies only after running all of it, so claiming
 * 8 shards x 256 timers at once would delay the first handler of a burst by
 * the whole pipeline (tens of ms). While every claim comes back full (a
 * backlog), the budget doubles each turn, up to budget_max(), for
 * throughput; the first partial claim (caught up) resets it. Equal shares
 * also keep the last of many due shards from starving. */
static int append_claims(tm_poller *p, tm_turn *t) {
  int64_t now_us = tm__secs_to_us(t->now);
  unsigned room = p->capacity - p->inflight, ndue = 0;
  unsigned budget = p->budget;
  if (budget > room) budget = room;
  for (size_t k = 0; k < p->nshards; k++)
    ndue += shard_due(p->shards[k]) <= now_us;
  if (ndue && room == 0) { /* the ring drains, then more */
    t->starved = true;
    tm__count(&p->shards[p->rotor % p->nshards]->counters.ring_full, 1);
  }
  for (size_t k = 0; k < p->nshards && ndue && budget; k++) {
    tm_shard *s = p->shards[(p->rotor + k) % p->nshards];
    int64_t due = atomic_load_explicit(&s->next_due_us, memory_order_relaxed);
    if (due > now_us) continue;
    unsigned share = budget / ndue--; /* shards left over wait a turn */
    if (share == 0) share = budget;
    /* A share over claim_batch is several claims, pipelined: each takes
     * the next timers, as the previous ones are leased by then. */
    for (bool first = true; share && t->ncalls < t->max_calls; first = false) {
      unsigned n = claim_room(p, s, share);
      if (n == 0) { /* the topic's max_inflight is reached */
        t->starved = true;
        break;
      }
      /* Only the first claim of a shard expects timers for sure: an empty
       * one after it means the backlog ended, not contention. */
      int rc = append_claim(p, s, t, n, first ? due : 0);
      if (rc != TIMERS_OK) {
        atomic_fetch_sub(&s->topic->inflight, (int)n);
        return rc;
      }
      budget -= n, share -= n;
      p->inflight += n; /* reserved; the unused part is given back */
    }
  }
  p->rotor++;
  return TIMERS_OK;
}

static tm_job *job_new(tm_shard *s, const redisReply *id,
                       const redisReply *blob, const char *lease) {
  tm_job *j = tm__malloc(sizeof *j + id->len + 1 + blob->len);
  if (!j) return NULL;
  memset(j, 0, sizeof *j);
  j->shard = s;
  snprintf(j->lease, sizeof j->lease, "%s", lease);
  j->id = j->data;
  j->id_len = id->len;
  memcpy(j->id, id->str, id->len);
  j->id[id->len] = '\0';
  j->blob = j->data + id->len + 1;
  j->blob_len = blob->len;
  memcpy(j->blob, blob->str, blob->len);
  return j;
}

static int64_t parse_score_us(const redisReply *r) {
  if (r->type != REDIS_REPLY_STRING || r->len == 0) return INT64_MAX;
  double v = strtod(r->str, NULL);
  return isfinite(v) ? tm__secs_to_us(v) : INT64_MAX;
}

/* Pushes claimed timers to the workers. Returns how many were claimed. */
static unsigned take_claim(tm_poller *p, tm_call *c, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[1]->type != REDIS_REPLY_ARRAY)
    return 0;
  const redisReply *items = r->element[1];
  unsigned got = 0;
  for (size_t k = 0; k + 3 < items->elements && got < c->count; k += 4) {
    redisReply *const *f = &items->element[k]; /* id, blob, attempts, score */
    if (f[0]->type != REDIS_REPLY_STRING || f[1]->type != REDIS_REPLY_STRING)
      continue;
    tm_job *j = job_new(c->shard, f[0], f[1], c->lease);
    if (!j) break; /* OOM: the lease runs out, then it is claimed again */
    j->attempt = f[2]->type == REDIS_REPLY_INTEGER ? (uint32_t)f[2]->integer : 0;
    j->claimed_score = f[3]->type == REDIS_REPLY_STRING ? strtod(f[3]->str, NULL) : 0;
    tm__ring_push_spmc(&p->work, j); /* cannot fail: inflight <= capacity */
    got++;
  }
  int64_t next = parse_score_us(r->element[0]);
  /* The Python library announces nothing: look at a FASTSTREAM shard at
   * least every TM_FASTSTREAM_POLL_MS, so its timers fire on time too. */
  if (c->shard->topic->layout == TIMERS_LAYOUT_FASTSTREAM) {
    int64_t poll = tm__secs_to_us(tm__wall()) + TM_FASTSTREAM_POLL_MS * 1000;
    if (next > poll) next = poll;
  }
  atomic_store_explicit(&c->shard->next_due_us, next, memory_order_relaxed);
  return got;
}

static void finish_claim(tm_poller *p, tm_call *c, const redisReply *r,
                         tm_turn *t) {
  tm_shard *s = c->shard;
  unsigned got = r ? take_claim(p, c, r) : 0;
  if (got < c->count) t->caught_up = true;
  unsigned unused = c->count - got;
  p->inflight -= unused;
  atomic_fetch_sub(&s->topic->inflight, (int)unused);
  tm__count(&s->counters.claim_calls, 1);
  tm__count(&s->counters.claimed, got);
  tm__count(&p->outstanding, got);
  if (got == 0 && r && c->expected_due) tm__count(&s->counters.contested, 1);
  if (got) tm__workers_wake(p->engine);
}

static void finish_commit(tm_poller *p, tm_call *c, const redisReply *r) {
  tm_shard *s = c->shard;
  long long removed = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (removed < c->count)
    tm__count(&s->counters.stale_commits, (uint64_t)(c->count - removed));
  for (unsigned k = 0; k < c->count; k++) tm__free(s->commits[k]);
  s->ncommits -= c->count;
  memmove(s->commits, s->commits + c->count, sizeof *s->commits * s->ncommits);
  atomic_fetch_sub_explicit(&p->outstanding, c->count, memory_order_relaxed);
}

/* Reads every reply of the turn in order. On a lost connection the claims
 * are forgotten (their leases run out) and the commits stay queued. */
static int read_replies(tm_poller *p, tm_turn *t) {
  int rc = TIMERS_OK;
  for (size_t k = 0; k < t->ncalls; k++) {
    tm_call *c = &t->calls[k];
    redisReply *r = NULL;
    int rr = p->conn.ctx ? tm__conn_reply(&p->conn, &r) : TIMERS_ECONN;
    if (rr == TIMERS_EREDIS) {
      tm__log(p->engine, TIMERS_LOG_ERROR, "shard %s: %s", c->shard->zkey,
              timers_last_error());
      tm__count(&c->shard->counters.redis_errors, 1);
    }
    if (rr == TIMERS_ECONN && rc == TIMERS_OK) rc = rr;
    if (c->kind == CALL_CLAIM)
      finish_claim(p, c, rr == TIMERS_OK ? r : NULL, t);
    else if (rr != TIMERS_ECONN) /* an error reply drops them: leases run out */
      finish_commit(p, c, rr == TIMERS_OK ? r : NULL);
    if (r) freeReplyObject(r);
  }
  return rc;
}

/* At most this many timers per turn: a batch per shard, and at least
 * TM_BACKLOG_BATCHES batches, so a backlog on few shards pipelines claims. */
enum { TM_BACKLOG_BATCHES = 4 };

static unsigned budget_max(const tm_poller *p) {
  size_t batches = p->nshards > TM_BACKLOG_BATCHES ? p->nshards
                                                   : TM_BACKLOG_BATCHES;
  return (unsigned)p->engine->cfg.claim_batch * (unsigned)batches;
}

/* The next turn's claim budget (see append_claims). */
static void adapt_budget(tm_poller *p, const tm_turn *t) {
  unsigned batch = (unsigned)p->engine->cfg.claim_batch;
  unsigned most = budget_max(p);
  bool claimed = false;
  for (size_t k = 0; k < t->ncalls && !claimed; k++)
    claimed = t->calls[k].kind == CALL_CLAIM;
  if (!claimed) return;
  if (t->caught_up)
    p->budget = batch;
  else if (p->budget < most)
    p->budget = p->budget * 2 < most ? p->budget * 2 : most;
}

static int round_trip(tm_poller *p, bool claim, tm_turn *t) {
  t->ncalls = 0;
  t->starved = false;
  t->caught_up = false;
  t->now = tm__wall();
  snprintf(t->now_str, sizeof t->now_str, "%.6f", t->now);
  int rc = TIMERS_OK;
  for (size_t k = 0; k < p->nshards && rc == TIMERS_OK; k++)
    if (p->shards[k]->ncommits) rc = append_commit(p, p->shards[k], t);
  if (claim && rc == TIMERS_OK) rc = append_claims(p, t);
  int rr = read_replies(p, t);
  adapt_budget(p, t);
  return rc != TIMERS_OK ? rc : rr;
}

/* ------------------------------------------------------------- the loop */

static bool has_commits(const tm_poller *p) {
  for (size_t k = 0; k < p->nshards; k++)
    if (p->shards[k]->ncommits) return true;
  return false;
}

/* How long the poller may sleep: until its earliest shard is due. */
static int64_t sleep_ns(tm_poller *p, const tm_turn *t, bool stopping) {
  timers_engine *e = p->engine;
  int64_t max = (int64_t)e->cfg.max_sleep_ms * 1000000;
  if (stopping) {
    if (p->inflight == 0 && !has_commits(p)) return 0; /* drained: exit */
    int64_t left = e->drain_deadline_ns - tm__mono_ns();
    return left < max ? left : max;
  }
  if (has_commits(p)) return 0;
  /* Starved with jobs out: the worker that drains the ring kicks us. With
   * none out, only a topic limit held by another poller is in the way. */
  if (t->starved) return p->inflight ? max : 1000000;
  int64_t now_us = tm__secs_to_us(tm__wall()), due = INT64_MAX;
  for (size_t k = 0; k < p->nshards; k++) {
    int64_t d = shard_due(p->shards[k]);
    if (d < due) due = d;
  }
  if (due == INT64_MAX) return max;
  int64_t ns = (due - now_us) * 1000;
  return ns < max ? ns : max;
}

/* Reconnects with capped exponential backoff; after a reconnect every shard
 * is looked at again (claims may have been lost, wake messages missed). */
static void reconnect(tm_poller *p, int64_t *backoff) {
  timers_engine *e = p->engine;
  if (tm__conn_open(&p->conn, &e->redis, true) == TIMERS_OK) {
    if (*backoff) tm__log(e, TIMERS_LOG_WARN, "poller %d: reconnected", p->index);
    *backoff = 0;
    for (size_t k = 0; k < p->nshards; k++)
      atomic_store(&p->shards[k]->next_due_us, 0);
    return;
  }
  tm__log(e, TIMERS_LOG_ERROR, "poller %d: %s", p->index, timers_last_error());
  tm__count(&e->conn_errors, 1);
  *backoff = *backoff ? *backoff * 2 : 50 * 1000000;
  if (*backoff > 2000 * 1000000LL) *backoff = 2000 * 1000000LL;
  poller_sleep(p, *backoff);
}

void *tm__poller_main(void *arg) {
  tm_poller *p = arg;
  timers_engine *e = p->engine;
  /* Calls per turn: a commit per shard, and claims: at most one per due
   * shard plus one per batch of budget_max(). */
  size_t max_calls = 3 * p->nshards + TM_BACKLOG_BATCHES + 1;
  tm_turn t = {.calls = tm__calloc(max_calls, sizeof(tm_call)),
               .max_calls = max_calls};
  int64_t backoff = 0;
  while (t.calls) {
    drain_done(p);
    bool stopping = atomic_load(&e->state) != TM_RUNNING;
    if (stopping && ((p->inflight == 0 && !has_commits(p)) ||
                     tm__mono_ns() >= e->drain_deadline_ns))
      break;
    if (!p->conn.ctx) {
      reconnect(p, &backoff);
      continue;
    }
    if (round_trip(p, !stopping, &t) == TIMERS_ECONN) {
      tm__log(e, TIMERS_LOG_ERROR, "poller %d: %s", p->index,
              timers_last_error());
      tm__count(&e->conn_errors, 1);
      continue;
    }
    poller_sleep(p, sleep_ns(p, &t, stopping));
  }
  tm__free(t.calls);
  tm__conn_close(&p->conn);
  return NULL;
}
