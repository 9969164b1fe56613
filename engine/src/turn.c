/*
 * turn.c - one round trip of a poller: the settle steps of its shards
 * (commits, extensions, hand-backs, nacks: one SETTLE call per shard), then
 * the claims of every due shard, all pipelined; then every reply in order.
 *
 * Claims are sized by what the workers can start soon, not by ring room:
 * a poller keeps out at most its share of the workers plus as many queued
 * timers as that share starts within a quarter of the lease (from the
 * measured handler time), never more than the ring holds. A timer claimed
 * is thus started well within its lease; one that is not is handed back
 * (inflight.c).
 *
 * The claim budget starts at one claim_batch (Redis writes a pipeline's
 * replies only after running all of it, so 8 shards x 256 timers at once
 * would delay the first handler of a burst by the whole pipeline). While
 * every claim comes back full (a backlog), the budget doubles each turn up
 * to budget_max(); the first short claim resets it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "poller.h"
#include "scripts.h"

/* At most this many timers per turn: a batch per shard, and at least
 * TM_BACKLOG_BATCHES batches, so a backlog on few shards pipelines claims. */
enum { TM_BACKLOG_BATCHES = 4 };

/* The (member, epoch) an owned shard's calls carry; "" for shared. */
static const char *owner_of(const tm_poller *p, const tm_shard *s) {
  return s->topic->owned_shards ? p->core->member_id : "";
}
static const char *epoch_of(const tm_shard *s) {
  return s->topic->owned_shards ? s->epoch : "";
}

/* Whether a reply says the shard's ownership was lost (scripts.c FENCE). */
static bool is_fenced(const redisReply *r) {
  return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "FENCED", 6) == 0;
}

/* ---------------------------------------------------------------- settle */

/* Per step: op, token, id, x, y; x and y point into the job or into
 * scratch (TM_SCRATCH bytes each), their lengths in xl, yl (a tombstone
 * token is 8 raw bytes). */
enum { TM_SCRATCH = 48 };

static void step_args(const tm_settle *st, bool tomb, char *scratch,
                      const char **x, size_t *xl, const char **y, size_t *yl) {
  tm_job *j = st->job;
  char *sx = scratch, *sy = scratch + TM_SCRATCH;
  *x = sx, *y = sy;
  *xl = *yl = 0;
  switch (st->op) {
    case 'c':
      if (tomb) {
        tm__token_bytes(tm__timer_token(j->id, j->id_len, j->blob,
                                        j->blob_len), sx);
        *xl = 8;
      }
      break;
    case 'r':
      *xl = (size_t)snprintf(sx, TM_SCRATCH, "%s", j->prev_score);
      if (j->attempt >= 2)
        *yl = (size_t)snprintf(sy, TM_SCRATCH, "%" PRIu32, j->attempt - 1);
      break;
    case 'x':
      *xl = (size_t)snprintf(sx, TM_SCRATCH, "%" PRIu32, j->attempt);
      *y = j->reason, *yl = strlen(j->reason);
      break;
    case 'n':
      *xl = (size_t)snprintf(sx, TM_SCRATCH, "%d", j->retry_ms);
      break;
    default:
      break;
  }
}

static const char *op_name(char op) {
  switch (op) {
    case 'c': return "c";
    case 'e': return "e";
    case 'r': return "r";
    case 'x': return "x";
    default: return "n";
  }
}

static int append_settle(tm_poller *p, tm_shard *s, tm_turn *t) {
  unsigned n = s->nsettle < TM_COMMIT_MAX ? (unsigned)s->nsettle : TM_COMMIT_MAX;
  size_t argc = TM_SETTLE_KEYS + TM_SETTLE_ARGS + TM_SETTLE_STRIDE * (size_t)n;
  const char **argv = tm__malloc(sizeof *argv * argc);
  size_t *len = tm__malloc(sizeof *len * argc);
  char *scratch = tm__malloc((size_t)n * 2 * TM_SCRATCH);
  int rc = TIMERS_OK;
  if (!argv || !len || !scratch) {
    rc = tm__error(TIMERS_ENOMEM, "out of memory");
    goto out;
  }
  const tm_topic *tp = s->topic;
  int window = p->core->cfg.dedup_window_ms;
  bool tomb = tp->ops->has_tombstones && window > 0;
  /* Tombstones go to the current bucket's set, which lives until the end
   * of the next bucket (keys.h). */
  int64_t bucket = tm__tomb_bucket(tm__server_now_us(p->core), window);
  char lease[16], expire[32] = "0", tkey[TM_KEY_MAX], dmax[16], dttl[16];
  snprintf(lease, sizeof lease, "%d", tp->lease_ms);
  snprintf(dmax, sizeof dmax, "%d", p->core->cfg.dead_max);
  snprintf(dttl, sizeof dttl, "%d", p->core->cfg.dead_ttl_ms);
  if (tomb) snprintf(expire, sizeof expire, "%lld",
                     (long long)((bucket + 2) * window));
  tm__tomb_key(tkey, s->keys[TM_KEY_D], bucket);
  size_t a = 0;
  for (int k = 0; k < TM_CORE_KEYS; k++)
    argv[a] = s->keys[k], len[a++] = strlen(s->keys[k]);
  argv[a] = tkey, len[a++] = strlen(tkey);
  argv[a] = s->keys[TM_KEY_O], len[a++] = strlen(s->keys[TM_KEY_O]);
  argv[a] = lease, len[a++] = strlen(lease);
  argv[a] = expire, len[a++] = strlen(expire);
  argv[a] = dmax, len[a++] = strlen(dmax);
  argv[a] = dttl, len[a++] = strlen(dttl);
  argv[a] = owner_of(p, s), len[a++] = strlen(owner_of(p, s));
  argv[a] = epoch_of(s), len[a++] = strlen(epoch_of(s));
  for (unsigned k = 0; k < n; k++) {
    tm_settle *st = &s->settle[k];
    const char *x, *y;
    size_t xl, yl;
    step_args(st, tomb, scratch + 2 * k * TM_SCRATCH, &x, &xl, &y, &yl);
    argv[a] = op_name(st->op), len[a++] = 1;
    argv[a] = st->job->token, len[a++] = strlen(st->job->token);
    argv[a] = st->job->id, len[a++] = st->job->id_len;
    argv[a] = x, len[a++] = xl;
    argv[a] = y, len[a++] = yl;
  }
  rc = tm__conn_append_script(&p->conn, TM_SCRIPT_SETTLE, TM_SETTLE_KEYS,
                              (int)argc, argv, len);
  if (rc == TIMERS_OK)
    t->calls[t->ncalls++] = (tm_call){CALL_SETTLE, s, n, false, 0, 0};
out:
  tm__free(argv), tm__free(len), tm__free(scratch);
  return rc;
}

/* Removes the first n steps of s (answered or dropped). */
static void settle_consume(tm_shard *s, size_t n) {
  s->nsettle -= n;
  memmove(s->settle, s->settle + n, sizeof *s->settle * s->nsettle);
}

/* ----------------------------------------------------------------- claims */

/* Jobs this poller may have out for shard s's topic: its workers plus the
 * queued timers they start within a quarter of the lease. */
static unsigned target_out(const tm_poller *p, const tm_shard *s) {
  unsigned share = (unsigned)p->worker_share;
  if (p->avg_run_ns <= 0) return share; /* unknown: be careful */
  double window = (double)s->topic->lease_ms * 1e6 / 4;
  double queued = share * window / (double)p->avg_run_ns;
  double total = share + queued;
  return total >= p->capacity ? p->capacity : (unsigned)total;
}

/* Room for a claim on s: the target, the ring, the topic's limit. The
 * topic share is reserved now and the unused part given back later. */
static unsigned claim_room(tm_poller *p, tm_shard *s, unsigned want) {
  unsigned target = target_out(p, s);
  unsigned room = target > p->out ? target - p->out : 0;
  unsigned n = want < room ? want : room;
  tm_topic *tp = s->topic;
  if (n && tp->max_inflight) {
    int used = atomic_fetch_add_explicit(&tp->inflight, (int)n,
                                         memory_order_relaxed);
    int left = tp->max_inflight - used;
    unsigned take = left <= 0 ? 0 : (unsigned)left < n ? (unsigned)left : n;
    atomic_fetch_sub_explicit(&tp->inflight, (int)(n - take),
                              memory_order_relaxed);
    return take;
  }
  if (n) atomic_fetch_add_explicit(&tp->inflight, (int)n, memory_order_relaxed);
  return n;
}

static int append_claim(tm_poller *p, tm_shard *s, tm_turn *t, unsigned n,
                        bool expected) {
  const tm_topic *tp = s->topic;
  char lease[16], count[16], max[16], dmax[16], dttl[16];
  snprintf(lease, sizeof lease, "%d", tp->lease_ms);
  snprintf(count, sizeof count, "%u", n);
  snprintf(max, sizeof max, "%d", tp->max_attempts);
  snprintf(dmax, sizeof dmax, "%d", p->core->cfg.dead_max);
  snprintf(dttl, sizeof dttl, "%d", p->core->cfg.dead_ttl_ms);
  enum { ARGC = TM_CLAIM_KEYS + TM_CLAIM_ARGS };
  const char *argv[ARGC];
  size_t len[ARGC];
  for (int k = 0; k < TM_CORE_KEYS; k++) argv[k] = s->keys[k];
  argv[TM_CORE_KEYS] = s->keys[TM_KEY_O];
  const char *args[TM_CLAIM_ARGS] = {lease, count, tp->claim_flags,
                                     max,   dmax,  dttl,
                                     owner_of(p, s), epoch_of(s)};
  for (int k = 0; k < TM_CLAIM_ARGS; k++) argv[TM_CLAIM_KEYS + k] = args[k];
  for (int k = 0; k < ARGC; k++) len[k] = strlen(argv[k]);
  int rc = tm__conn_append_script(&p->conn, TM_SCRIPT_CLAIM, TM_CLAIM_KEYS,
                                  ARGC, argv, len);
  if (rc == TIMERS_OK)
    t->calls[t->ncalls++] = (tm_call){
        CALL_CLAIM, s, n, expected, 0,
        atomic_load_explicit(&s->next_due_us, memory_order_relaxed)};
  return rc;
}

static bool shard_due_now(tm_shard *s, int64_t now_us, int64_t mono) {
  return tm__shard_due(s) <= now_us && mono >= s->retry_at_ns &&
         tm__owner_claimable(s, mono);
}


/* Claims every due shard for an equal share of the turn's budget (equal
 * shares keep the last of many due shards from starving). A share over
 * claim_batch is several claims, pipelined: each takes the next timers, as
 * the previous ones are leased by then. */
static int append_claims(tm_poller *p, tm_turn *t) {
  int64_t now_us = tm__server_now_us(p->core), mono = tm__mono_ns();
  unsigned batch = (unsigned)p->core->cfg.claim_batch;
  unsigned budget = p->budget, ndue = 0;
  unsigned room = p->capacity - p->out;
  bool room_bound = budget >= room;
  if (budget > room) budget = room;
  /* In a backlog (the budget grew: claims came back full) fewer, fuller
   * claims: each gets at least half a claim_batch, as Redis's cost per
   * call dominates small ones (64 shards sharing 4096 got 64 each), and
   * the shards left out go first next turn. */
  unsigned least = p->budget > batch ? batch / 2 : 1;
  size_t next = SIZE_MAX; /* the first due shard left out: where the next
                             turn starts (none: one further) */
  for (size_t k = 0; k < p->nshards; k++)
    ndue += shard_due_now(p->shards[k], now_us, mono);
  for (size_t k = 0; k < p->nshards && ndue; k++) {
    tm_shard *s = p->shards[(p->rotor + k) % p->nshards];
    if (!shard_due_now(s, now_us, mono)) continue;
    if (budget == 0 && !room_bound) { /* spent: left out from here */
      if (next == SIZE_MAX) next = k;
      break;
    }
    /* 0: unknown (start, reconnect, new owner): a look, not an expectation */
    bool known = atomic_load_explicit(&s->next_due_us, memory_order_relaxed) > 0;
    unsigned share = budget / ndue--;
    if (share < least) share = least;
    if (share > budget || share == 0) share = budget;
    for (bool first = true; t->ncalls < t->max_calls; first = false) {
      unsigned want = share < batch ? share : batch;
      unsigned n = want ? claim_room(p, s, want) : 0;
      if (n == 0) { /* no room: workers busy, or max_inflight */
        if (first) {
          t->starved = true;
          tm__count(&s->counters.ring_full, 1);
          if (next == SIZE_MAX) next = k;
        }
        break;
      }
      /* Only the first claim of a shard expects timers for sure: an empty
       * one after it means the backlog ended, not contention. */
      int rc = append_claim(p, s, t, n, first && known);
      if (rc != TIMERS_OK) {
        atomic_fetch_sub_explicit(&s->topic->inflight, (int)n,
                                  memory_order_relaxed);
        return rc;
      }
      budget -= n, share -= n;
      p->out += n; /* reserved; the unused part is given back */
      if (share == 0) break;
    }
  }
  if (p->nshards)
    p->rotor = (p->rotor + (next == SIZE_MAX ? 1 : next)) % p->nshards;
  return TIMERS_OK;
}

static tm_job *job_new(tm_shard *s, redisReply *const *f, const char *lease,
                       int64_t sent_ns) {
  const redisReply *id = f[0], *blob = f[1];
  tm_job *j = tm__malloc(sizeof *j + id->len + 1 + blob->len);
  if (!j) return NULL;
  memset(j, 0, sizeof *j);
  j->shard = s;
  j->retry_ms = -1;
  snprintf(j->token, sizeof j->token, "%s", lease);
  snprintf(j->prev_score, sizeof j->prev_score, "%s",
           f[3]->type == REDIS_REPLY_STRING ? f[3]->str : "0");
  j->claimed_score = strtod(j->prev_score, NULL);
  j->attempt = f[2]->type == REDIS_REPLY_INTEGER ? (uint32_t)f[2]->integer : 0;
  j->refreshed_ns = sent_ns; /* the lease began after this */
  j->lease_until_ns = sent_ns + (int64_t)s->topic->lease_ms * 1000000;
  atomic_init(&j->state, TM_JOB_QUEUED);
  j->id = j->data;
  j->id_len = id->len;
  memcpy(j->id, id->str, id->len);
  j->id[id->len] = '\0';
  j->blob = j->data + id->len + 1;
  j->blob_len = blob->len;
  memcpy(j->blob, blob->str, blob->len);
  return j;
}

static bool claim_reply_ok(const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != TM_CLAIM_REPLY_LEN)
    return false;
  for (int k = 0; k < TM_CLAIM_ITEMS; k++)
    if (k != TM_CLAIM_HEALED && k != TM_CLAIM_BURIED &&
        r->element[k]->type != REDIS_REPLY_STRING)
      return false;
  return r->element[TM_CLAIM_ITEMS]->type == REDIS_REPLY_ARRAY;
}

/* Server time from the reply: the clock skew, and when the shard is next
 * due (a FASTSTREAM shard at least every poll_ms: other writers of that
 * layout announce nothing). */
static void note_times(tm_poller *p, tm_shard *s, const redisReply *r,
                       const tm_turn *t) {
  int64_t server = tm__secs_to_us(strtod(r->element[TM_CLAIM_NOW]->str, NULL));
  int64_t local = (t->sent_wall_us + tm__secs_to_us(tm__wall())) / 2;
  if (server != INT64_MAX)
    atomic_store_explicit(&p->core->skew_us, server - local,
                          memory_order_relaxed);
  const redisReply *nx = r->element[TM_CLAIM_NEXT];
  int64_t next = nx->len ? tm__secs_to_us(strtod(nx->str, NULL)) : INT64_MAX;
  int poll = s->topic->ops->poll_ms;
  if (poll && server != INT64_MAX && next > server + poll * 1000LL)
    next = server + poll * 1000LL;
  atomic_store_explicit(&s->next_due_us, next, memory_order_relaxed);
  atomic_store_explicit(&s->last_claim_us, server, memory_order_relaxed);
}

/* Pushes the claimed timers to the workers; returns how many. */
static unsigned take_claim(tm_poller *p, tm_call *c, const redisReply *r,
                           const tm_turn *t) {
  tm_shard *s = c->shard;
  note_times(p, s, r, t);
  const redisReply *h = r->element[TM_CLAIM_HEALED];
  if (h->type == REDIS_REPLY_INTEGER && h->integer > 0)
    tm__count(&s->counters.self_healed, (uint64_t)h->integer);
  const redisReply *dl = r->element[TM_CLAIM_BURIED];
  if (dl->type == REDIS_REPLY_INTEGER && dl->integer > 0) {
    tm__count(&s->counters.dead_lettered, (uint64_t)dl->integer);
    tm__log_limited(&p->core->log, &s->errlog, TIMERS_LOG_WARN,
                    "shard %s: %lld timers reached max_attempts (%d) without "
                    "an outcome (their processes died, or their leases ran "
                    "out): moved to the dead-letter set",
                    s->keys[TM_KEY_Z], dl->integer, s->topic->max_attempts);
  }
  const char *lease = r->element[TM_CLAIM_LEASE]->str;
  const redisReply *items = r->element[TM_CLAIM_ITEMS];
  unsigned got = 0;
  for (size_t k = 0; k + TM_CLAIM_STRIDE <= items->elements && got < c->count;
       k += TM_CLAIM_STRIDE) {
    redisReply *const *f = &items->element[k];
    if (f[0]->type != REDIS_REPLY_STRING || f[1]->type != REDIS_REPLY_STRING)
      continue;
    tm_job *j = job_new(s, f, lease, t->sent_ns);
    if (!j) break; /* OOM: the lease runs out, then it is claimed again */
    if (!s->topic->at_most_once) { /* else: no lease, it must run */
      tm__held_add(p, j);
      /* stop() began while this claim was on its way (e.g. Redis stalled):
       * hand it back unstarted, as stop() did with the queued ones. */
      if (atomic_load_explicit(&p->core->state, memory_order_seq_cst) !=
          TM_RUNNING)
        tm__held_release(p, j);
    }
    tm__ring_push_spmc(&p->lane.work, j); /* cannot fail: out <= capacity */
    got++;
  }
  return got;
}

static void claim_failed(tm_poller *p, tm_shard *s) {
  uint32_t n = atomic_load_explicit(&s->consecutive_errors,
                                    memory_order_relaxed) + 1;
  atomic_store_explicit(&s->consecutive_errors, n, memory_order_relaxed);
  atomic_store_explicit(&s->state, TIMERS_SHARD_ERROR, memory_order_relaxed);
  tm__count(&s->counters.redis_errors, 1);
  s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2 : 10 * 1000000;
  if (s->backoff_ns > 5000 * 1000000LL) s->backoff_ns = 5000 * 1000000LL;
  s->retry_at_ns = tm__mono_ns() + s->backoff_ns;
  tm__log_limited(&p->core->log, &s->errlog, TIMERS_LOG_ERROR,
                  "shard %s: %s (%u failures in a row; retrying in %lld ms)",
                  s->keys[TM_KEY_Z], timers_last_error(), n,
                  (long long)(s->backoff_ns / 1000000));
}

static void claim_succeeded(tm_poller *p, tm_shard *s) {
  if (atomic_load_explicit(&s->state, memory_order_relaxed) !=
      TIMERS_SHARD_OK) {
    tm__log(&p->core->log, TIMERS_LOG_WARN, "shard %s: claims work again",
            s->keys[TM_KEY_Z]);
    tm__ratelimit_reset(&s->errlog);
  }
  atomic_store_explicit(&s->state, TIMERS_SHARD_OK, memory_order_relaxed);
  atomic_store_explicit(&s->consecutive_errors, 0, memory_order_relaxed);
  s->backoff_ns = 0;
  s->retry_at_ns = 0;
}

static void finish_claim(tm_poller *p, tm_call *c, const redisReply *r,
                         int rr, tm_turn *t) {
  tm_shard *s = c->shard;
  unsigned got = 0;
  if (rr == TIMERS_OK && !claim_reply_ok(r))
    rr = tm__error(TIMERS_EREDIS, "unexpected claim reply");
  if (rr == TIMERS_OK) {
    claim_succeeded(p, s);
    got = take_claim(p, c, r, t);
  } else if (rr == TIMERS_EREDIS && is_fenced(r)) {
    tm__owner_lost(p, s);
  } else if (rr == TIMERS_EREDIS) {
    claim_failed(p, s);
  }
  if (got < c->count) t->caught_up = true;
  unsigned unused = c->count - got;
  p->out -= unused;
  atomic_fetch_sub_explicit(&s->topic->inflight, (int)unused,
                            memory_order_relaxed);
  tm__count(&s->counters.claim_calls, 1);
  tm__count(&s->counters.claimed, got);
  /* Contested: a timer known to be due by Redis's clock was not there (a
   * claim sent early by our skew estimate finds nothing, uncontested). */
  if (got == 0 && rr == TIMERS_OK && c->expected_due &&
      (double)c->due_us <= 1e6 * atof(r->element[TM_CLAIM_NOW]->str))
    tm__count(&s->counters.contested, 1);
  if (got) tm__idle_wake(p->idle, got, &p->core->contention);
}

/* A settle call's replies; on failure its steps stay queued and the shard
 * backs off, except past the drain deadline of a stop (then dropped: the
 * leases run out and the timers are delivered again). */
static void finish_settle(tm_poller *p, tm_call *c, const redisReply *r,
                          int rr, const tm_turn *t) {
  tm_shard *s = c->shard;
  bool ok = rr == TIMERS_OK && r->type == REDIS_REPLY_ARRAY &&
            r->elements == c->count;
  /* Fenced off: the shard is another's, and so are these timers' leases
   * (they run out there); the steps are dropped. Past the drain deadline
   * of a stop, failing steps are dropped too (leases run out). */
  bool fenced = rr == TIMERS_EREDIS && is_fenced(r);
  if (fenced) tm__owner_lost(p, s);
  if (ok || fenced ||
      (t->stopping &&
       tm__mono_ns() >= atomic_load_explicit(&p->core->drain_deadline_ns,
                                             memory_order_relaxed))) {
    for (unsigned k = 0; k < c->count; k++)
      tm__settled(p, &s->settle[k], ok ? r->element[k] : NULL);
    settle_consume(s, c->count);
    return;
  }
  if (rr == TIMERS_OK) tm__error(TIMERS_EREDIS, "unexpected settle reply");
  if (rr != TIMERS_ECONN) claim_failed(p, s);
}

/* Reads every reply of the turn in order; after a lost connection the
 * remaining claims are forgotten (their leases run out) and the remaining
 * settle steps stay queued. */
static int read_replies(tm_poller *p, tm_turn *t) {
  int rc = TIMERS_OK;
  for (size_t k = 0; k < t->ncalls; k++) {
    tm_call *c = &t->calls[k];
    redisReply *r = NULL;
    int rr = rc == TIMERS_OK ? tm__conn_reply(&p->conn, &r) : TIMERS_ECONN;
    if (rr == TIMERS_ECONN) rc = rr;
    if (c->kind == CALL_CLAIM)
      finish_claim(p, c, r, rr, t);
    else if (c->kind == CALL_SETTLE)
      finish_settle(p, c, r, rr, t);
    else
      tm__owner_reply(p, c, r, rr, t);
    if (r) freeReplyObject(r);
  }
  return rc;
}

static unsigned budget_max(const tm_poller *p) {
  size_t batches = p->nshards > TM_BACKLOG_BATCHES ? p->nshards
                                                   : TM_BACKLOG_BATCHES;
  return (unsigned)p->core->cfg.claim_batch * (unsigned)batches;
}

static void adapt_budget(tm_poller *p, const tm_turn *t) {
  bool claimed = false;
  for (size_t k = 0; k < t->ncalls && !claimed; k++)
    claimed = t->calls[k].kind == CALL_CLAIM;
  if (!claimed) return;
  unsigned most = budget_max(p);
  if (t->caught_up)
    p->budget = (unsigned)p->core->cfg.claim_batch;
  else if (p->budget < most)
    p->budget = p->budget * 2 < most ? p->budget * 2 : most;
}

int tm__turn(tm_poller *p, bool stopping) {
  size_t max_calls =
      2 * p->nshards + TM_BACKLOG_BATCHES + 1 + tm__owner_max_calls(p);
  tm_call calls_small[64];
  tm_turn t = {.calls = max_calls <= 64 ? calls_small
                                        : tm__malloc(sizeof(tm_call) * max_calls),
               .max_calls = max_calls,
               .stopping = stopping};
  if (!t.calls) return tm__error(TIMERS_ENOMEM, "out of memory");
  t.sent_ns = tm__mono_ns();
  t.sent_wall_us = tm__secs_to_us(tm__wall());
  int rc = tm__owner_append(p, &t);
  for (size_t k = 0; k < p->nshards && rc == TIMERS_OK; k++) {
    tm_shard *s = p->shards[k];
    if (s->nsettle && t.sent_ns >= s->retry_at_ns)
      rc = append_settle(p, s, &t);
  }
  if (!stopping && rc == TIMERS_OK) rc = append_claims(p, &t);
  int rr = read_replies(p, &t);
  adapt_budget(p, &t);
  if (t.calls != calls_small) tm__free(t.calls);
  /* Starved waits for outcomes to free room; room a short claim gave back
   * is free now (e.g. a new owner's first looks at empty shards). */
  p->starved = t.starved && !t.caught_up;
  return rr != TIMERS_OK ? rr : rc;
}
