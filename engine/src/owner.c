/*
 * owner.c - shard ownership for topics subscribed with `owned`: each shard
 * is claimed by one process at a time, balanced over the live processes.
 *
 * Membership: each process heartbeats its member id into the topic's
 * members set (expiry owner_ttl_ms, every third of it) and reads the live
 * members back. The shards it should own are the ones rendezvous hashing
 * with bounded load gives it (assign()): shard s goes to the member with
 * the highest weight mix(FNV-1a-64(member), FNV-1a-64(topic) + s) among
 * those under ceil(shards / members), so each process gets its share and
 * one that joins or leaves moves few shards.
 *
 * Ownership: a lease on the shard itself, in the shard's hash slot
 * ({owner, epoch, until}: scripts.c OWN), renewed every third of
 * owner_ttl_ms. A new owner gets a new epoch; every claim and settle of an
 * owned shard carries (member, epoch) and Redis refuses it (FENCED) once
 * the lease is another's or over, so a process paused past its lease
 * (SIGSTOP) claims and commits nothing on a shard it lost, and notices on
 * its next turn. A shard it should no longer own (a new member took its
 * share) is claimed no more; once its held timers are settled it is
 * released, and the new owner, retrying every tenth of the ttl, takes it:
 * no overlap (one lease), a short gap. A dead owner's shard is taken over
 * once its member entry and its lease have run out (each owner_ttl_ms
 * after its last heartbeat) and a survivor has read the members again
 * (every third of the ttl), then retried (every tenth): about 1.5 x
 * owner_ttl_ms at worst.
 *
 * All of this runs on the shard's poller thread, within its round trips.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "poller.h"
#include "scripts.h"

/* One owned topic of this poller: its live members, as last read. */
typedef struct tm_members {
  tm_topic *topic;
  int64_t next_ns;          /* next heartbeat */
  bool known;               /* read at least once */
  char **ids;               /* owned */
  size_t n;
} tm_members;

static int64_t ttl_ns(const tm_poller *p) {
  return (int64_t)p->core->cfg.owner_ttl_ms * 1000000;
}

int tm__owner_init(tm_poller *p) {
  for (size_t k = 0; k < p->nshards; k++) {
    tm_topic *t = p->shards[k]->topic;
    if (!t->owned_shards) continue;
    bool seen = false;
    for (size_t i = 0; i < p->nmembers && !seen; i++)
      seen = p->members[i].topic == t;
    if (seen) continue;
    tm_members *g = tm__realloc(p->members, sizeof *g * (p->nmembers + 1));
    if (!g) return tm__error(TIMERS_ENOMEM, "out of memory");
    p->members = g;
    p->members[p->nmembers++] = (tm_members){t, 0, false, NULL, 0};
  }
  return TIMERS_OK;
}

static void members_clear(tm_members *m) {
  for (size_t i = 0; i < m->n; i++) tm__free(m->ids[i]);
  tm__free(m->ids);
  m->ids = NULL;
  m->n = 0;
}

void tm__owner_free(tm_poller *p) {
  for (size_t i = 0; i < p->nmembers; i++) members_clear(&p->members[i]);
  tm__free(p->members);
  p->members = NULL;
  p->nmembers = 0;
}

size_t tm__owner_max_calls(const tm_poller *p) {
  size_t n = p->nmembers;
  for (size_t k = 0; k < p->nshards; k++) n += p->shards[k]->topic->owned_shards;
  return n;
}

/* ------------------------------------------------------------ rendezvous */

static uint64_t fnv64(const char *str) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *c = str; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
  return h;
}

/* splitmix64's finalizer: every input bit moves every output bit, so the
 * members' order differs from shard to shard (FNV alone keeps it). */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27, x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Rendezvous weight of (member, topic, shard), from the hashes of the
 * member and the topic. */
static uint64_t weight(uint64_t member, uint64_t topic, uint32_t s) {
  return mix64(member ^ mix64(topic + s));
}

/* Which member owns shard s, from the members' hashes hm, under a cap of
 * shards per member (load: shards given so far): the highest weight among
 * the members under the cap (ties: the greater id). */
static size_t pick(const tm_members *m, const uint64_t *hm, uint64_t ht,
                   uint32_t s, const uint32_t *load, uint32_t cap) {
  size_t best = m->n;
  uint64_t top = 0;
  for (size_t i = 0; i < m->n; i++) {
    if (load[i] >= cap) continue;
    uint64_t w = weight(hm[i], ht, s);
    if (best == m->n || w > top ||
        (w == top && strcmp(m->ids[i], m->ids[best]) > 0))
      best = i, top = w;
  }
  return best;
}

/* Which of m's topic shards this process should own: rendezvous hashing
 * with bounded load. Every member computes the same answer from the same
 * member list: shards 0..N-1 in order, each to the highest-weight member
 * still under ceil(N / members) shards. A member that joins or leaves
 * moves few shards, and no member gets more than its share (plain
 * rendezvous gave 4-0 splits of 8 shards over 4 members). */
static void assign(tm_poller *p, const tm_members *m) {
  const char *me = p->core->member_id;
  uint32_t n = m->topic->nshards;
  uint64_t ht = fnv64(m->topic->name);
  uint64_t *hm = m->n ? tm__calloc(m->n, sizeof *hm) : NULL;
  uint32_t *load = m->n ? tm__calloc(m->n, sizeof *load) : NULL;
  uint8_t *mine = tm__calloc(n, 1);
  if (m->n && (!hm || !load || !mine)) { /* keep the last answer */
    tm__free(hm), tm__free(load), tm__free(mine);
    return;
  }
  for (size_t i = 0; i < m->n; i++) hm[i] = fnv64(m->ids[i]);
  uint32_t cap = m->n ? (n + (uint32_t)m->n - 1) / (uint32_t)m->n : 0;
  for (uint32_t s = 0; s < n && m->n; s++) {
    size_t w = pick(m, hm, ht, s, load, cap);
    load[w]++;
    mine[s] = strcmp(m->ids[w], me) == 0;
  }
  for (size_t k = 0; k < p->nshards; k++) {
    tm_shard *s = p->shards[k];
    if (s->topic != m->topic) continue;
    bool want = mine && mine[s->index];
    if (want && !s->wanted) s->own_next_ns = 0; /* try at once */
    s->wanted = want;
  }
  tm__free(hm), tm__free(load), tm__free(mine);
}

/* ---------------------------------------------------------------- calls */

static int append_members(tm_poller *p, tm_turn *t, size_t i, char op) {
  tm_members *m = &p->members[i];
  char ttl[16], o[2] = {op, '\0'};
  snprintf(ttl, sizeof ttl, "%d", p->core->cfg.owner_ttl_ms);
  const char *argv[] = {m->topic->members_key, p->core->member_id, ttl, o};
  int rc = tm__conn_append_script(&p->conn, TM_SCRIPT_MEMBERS, 1, 4, argv, NULL);
  if (rc == TIMERS_OK && t)
    t->calls[t->ncalls++] = (tm_call){CALL_MEMBERS, NULL, (unsigned)i, false, op, 0};
  return rc;
}

static int append_own(tm_poller *p, tm_turn *t, tm_shard *s, char op) {
  char ttl[16], o[2] = {op, '\0'};
  snprintf(ttl, sizeof ttl, "%d", p->core->cfg.owner_ttl_ms);
  const char *argv[] = {s->keys[TM_KEY_O], p->core->member_id, o, ttl,
                        s->owned ? s->epoch : ""};
  int rc = tm__conn_append_script(&p->conn, TM_SCRIPT_OWN, 1, 5, argv, NULL);
  if (rc == TIMERS_OK && t)
    t->calls[t->ncalls++] = (tm_call){CALL_OWN, s, 0, false, op, 0};
  return rc;
}

/* The ownership step s needs now, or 0: release it once drained when it
 * should go to another process (or at stop), else acquire or renew it. */
static char own_step(const tm_shard *s, int64_t now, bool stopping) {
  if (!s->topic->owned_shards) return 0;
  bool drained = s->nheld == 0 && s->nsettle == 0;
  if (s->owned && (!s->wanted || stopping) && drained) return 'r';
  if (!s->owned && (stopping || !s->wanted)) return 0;
  return now >= s->own_next_ns ? 'a' : 0;
}

int tm__owner_append(tm_poller *p, tm_turn *t) {
  int64_t now = tm__mono_ns();
  int rc = TIMERS_OK;
  for (size_t i = 0; i < p->nmembers && rc == TIMERS_OK; i++)
    if (!t->stopping && now >= p->members[i].next_ns)
      rc = append_members(p, t, i, 'j');
  for (size_t k = 0; k < p->nshards && rc == TIMERS_OK; k++) {
    tm_shard *s = p->shards[k];
    char op = own_step(s, now, t->stopping);
    if (op) rc = append_own(p, t, s, op);
  }
  return rc;
}

/* --------------------------------------------------------------- replies */

static void take_members(tm_poller *p, tm_members *m, const redisReply *r) {
  char **ids = tm__calloc(r->elements, sizeof *ids);
  size_t n = 0;
  for (size_t i = 0; ids && i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        (ids[n] = tm__strndup(r->element[i]->str, r->element[i]->len)))
      n++;
  if (!ids) return; /* out of memory: keep the last list */
  members_clear(m);
  m->ids = ids, m->n = n, m->known = true;
  assign(p, m);
}

static void set_standby(tm_shard *s) {
  atomic_store_explicit(&s->standby, !s->owned, memory_order_relaxed);
}

static void take_own(tm_poller *p, tm_shard *s, char op, const redisReply *r,
                     const tm_turn *t) {
  int64_t ttl = ttl_ns(p);
  if (op == 'r') {
    s->owned = false;
    s->epoch[0] = '\0';
    s->own_next_ns = t->sent_ns + ttl / 10;
    set_standby(s);
    return;
  }
  long long epoch = 0;
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
      r->element[0]->type == REDIS_REPLY_INTEGER)
    epoch = r->element[0]->integer;
  bool was = s->owned;
  if (epoch > 0) {
    s->owned = true;
    snprintf(s->epoch, sizeof s->epoch, "%lld", epoch);
    s->own_until_ns = t->sent_ns + ttl; /* its lease began after sending */
    s->own_next_ns = t->sent_ns + ttl / 3;
    if (!was) {
      atomic_store_explicit(&s->next_due_us, 0, memory_order_relaxed);
      tm__log(&p->core->log, TIMERS_LOG_INFO, "shard %s: owned (epoch %lld)",
              s->keys[TM_KEY_Z], epoch);
    }
  } else {
    if (was)
      tm__log(&p->core->log, TIMERS_LOG_WARN, "shard %s: ownership lost",
              s->keys[TM_KEY_Z]);
    s->owned = false;
    s->epoch[0] = '\0';
    s->own_next_ns = t->sent_ns + ttl / 10;
  }
  set_standby(s);
}

void tm__owner_reply(tm_poller *p, const tm_call *c, const redisReply *r,
                     int rr, const tm_turn *t) {
  if (rr != TIMERS_OK || !r) {
    if (c->kind == CALL_OWN) c->shard->own_next_ns = t->sent_ns + ttl_ns(p) / 10;
    return; /* retried on a later turn; fencing keeps it safe meanwhile */
  }
  if (c->kind == CALL_MEMBERS) {
    tm_members *m = &p->members[c->count];
    m->next_ns = t->sent_ns + ttl_ns(p) / 3;
    if (r->type == REDIS_REPLY_ARRAY) take_members(p, m, r);
    return;
  }
  take_own(p, c->shard, c->op, r, t);
}

void tm__owner_lost(tm_poller *p, tm_shard *s) {
  if (s->owned)
    tm__log(&p->core->log, TIMERS_LOG_WARN,
            "shard %s: fenced off (another process owns it now)",
            s->keys[TM_KEY_Z]);
  s->owned = false;
  s->epoch[0] = '\0';
  s->own_next_ns = tm__mono_ns() + ttl_ns(p) / 10;
  set_standby(s);
}

bool tm__owner_claimable(const tm_shard *s, int64_t mono) {
  if (!s->topic->owned_shards) return true;
  return s->owned && s->wanted && s->own_until_ns > mono + 100 * 1000000LL;
}

int64_t tm__owner_next_ns(const tm_poller *p) {
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < p->nmembers; i++)
    if (p->members[i].next_ns < next) next = p->members[i].next_ns;
  for (size_t k = 0; k < p->nshards; k++) {
    const tm_shard *s = p->shards[k];
    if (s->topic->owned_shards && (s->owned || s->wanted) &&
        s->own_next_ns < next)
      next = s->own_next_ns;
  }
  return next;
}

void tm__owner_leave(tm_poller *p) {
  if (!p->nmembers || !p->conn.ctx) return;
  size_t calls = 0;
  for (size_t k = 0; k < p->nshards; k++)
    if (p->shards[k]->owned && append_own(p, NULL, p->shards[k], 'r') == TIMERS_OK)
      calls++;
  for (size_t i = 0; i < p->nmembers; i++)
    if (append_members(p, NULL, i, 'l') == TIMERS_OK) calls++;
  for (size_t k = 0; k < calls; k++) {
    redisReply *r;
    if (tm__conn_reply(&p->conn, &r) == TIMERS_ECONN) break;
    if (r) freeReplyObject(r);
  }
}
