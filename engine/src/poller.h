/*
 * poller.h - a poller thread: it owns some shards and one Redis connection
 * and is the only thread that claims, extends and settles their timers.
 *
 *   poller.c    the thread: turns, sleeping, reconnecting, stopping
 *   turn.c      one round trip: settle steps, then claims, pipelined
 *   inflight.c  the timers it holds: taking outcomes back from workers,
 *               heartbeats of running handlers, handing back unstarted ones
 *
 * Fields under "poller only" are touched by the poller thread alone; the
 * rest say who writes them and with which memory order.
 */
#ifndef TIMERS_POLLER_H
#define TIMERS_POLLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "core.h"
#include "job.h"
#include "lane.h"
#include "topic.h"

struct tm_members;

typedef struct tm_poller {
  tm_core *core;
  tm_idle *idle;                 /* sleeping workers, woken after a push */
  int index;
  int nworkers;                  /* all workers (each has a done ring) */
  int worker_share;              /* workers per poller, at least 1 */
  pthread_t thread;
  bool started;
  tm_shard **shards;             /* not owned */
  size_t nshards;
  tm_lane lane;
  unsigned capacity;             /* jobs out at most: ring size - 1 */

  /* ---- poller only */
  tm_conn conn;
  tm_link held;                  /* sentinel: jobs whose lease it holds */
  unsigned nheld;
  unsigned out;                  /* jobs pushed, not yet back */
  int64_t next_scan_ns;          /* monotonic: next heartbeat/release check */
  int64_t avg_run_ns;            /* EWMA of handler durations; 0: unknown */
  unsigned budget;               /* timers to claim per turn (adaptive) */
  size_t rotor;                  /* fair start among due shards */
  bool starved;                  /* the last turn had no room for a due
                                    shard: outcomes will wake it */
  int64_t backoff_ns;            /* reconnect backoff */
  uint64_t rng;                  /* retry jitter (xorshift64*) */
  tm_ratelimit log_conn, log_overrun, log_lost, log_corrupt;
  struct tm_members *members;    /* owned topics' membership (owner.c) */
  size_t nmembers;

  /* ---- written by the poller, read by stats (relaxed) */
  char pad_[64];                 /* apart from the poller-only fields */
  _Atomic int connected;
  _Atomic uint64_t lateness[TIMERS_LATENCY_BUCKETS];
  _Atomic uint64_t lateness_sum_us;
  _Atomic uint64_t inflight;     /* claimed, not yet settled */
} tm_poller;

/* engine.c's side */
int tm__poller_init(tm_poller *p, tm_core *core, tm_idle *idle, int index,
                    int nworkers, int npollers, size_t max_shards);
int tm__poller_start(tm_poller *p);
void tm__poller_join(tm_poller *p);
/* After every thread has stopped. */
void tm__poller_destroy(tm_poller *p);
/* Thread-safe. */
void tm__poller_kick(tm_poller *p);

/* One call of a round trip, and the round trip (turn.c, owner.c). */
typedef enum { CALL_SETTLE, CALL_CLAIM, CALL_OWN, CALL_MEMBERS } call_kind;

typedef struct tm_call {
  call_kind kind;
  tm_shard *shard;   /* settle, claim, own */
  unsigned count;    /* settle: steps sent; claim: timers asked for;
                        members: index in p->members */
  bool expected_due; /* claim: a known score said the shard was due */
  char op;           /* own: 'a' or 'r' */
  int64_t due_us;    /* claim: that score (Redis clock, microseconds) */
} tm_call;

typedef struct tm_turn {
  tm_call *calls;
  size_t ncalls, max_calls;
  int64_t sent_ns;          /* monotonic, when the pipeline was written */
  int64_t sent_wall_us;
  bool starved;             /* a due shard got no room */
  bool caught_up;           /* a claim got fewer timers than it asked */
  bool stopping;
} tm_turn;

/* turn.c: one round trip; TIMERS_ECONN when the connection was lost. */
int tm__turn(tm_poller *p, bool stopping);

/* owner.c: shard ownership of owned topics (see owner.c). */
int tm__owner_init(tm_poller *p);
void tm__owner_free(tm_poller *p);
/* Appends the membership heartbeats and ownership steps due now. */
int tm__owner_append(tm_poller *p, tm_turn *t);
void tm__owner_reply(tm_poller *p, const tm_call *c, const redisReply *r,
                     int rr, const tm_turn *t);
/* Whether this process may claim s now. */
bool tm__owner_claimable(const tm_shard *s, int64_t mono);
/* A claim or settle was fenced off: s is no longer ours. */
void tm__owner_lost(tm_poller *p, tm_shard *s);
/* Next monotonic time the owner logic needs a turn (INT64_MAX: none). */
int64_t tm__owner_next_ns(const tm_poller *p);
/* At exit: release owned shards, leave the membership (one round trip). */
void tm__owner_leave(tm_poller *p);
/* Calls a turn may append: per owned shard one, per topic one. */
size_t tm__owner_max_calls(const tm_poller *p);

/* inflight.c */
void tm__held_add(tm_poller *p, tm_job *j);
/* Hands a held job back to Redis unstarted (CAS QUEUED -> RELEASED, an 'r'
 * step); false when a worker started it first. */
bool tm__held_release(tm_poller *p, tm_job *j);
/* Takes finished and skipped jobs back from the workers. */
void tm__drain_done(tm_poller *p);
/* Queues extensions of running handlers and hand-backs of unstarted
 * timers (all of them when stopping) when they are due. */
void tm__scan_held(tm_poller *p, bool stopping, int64_t drain_deadline);
/* A settle step was answered (result: 0 fenced off, 1 done, or for an
 * extension the new token) or dropped (result NULL). */
void tm__settled(tm_poller *p, tm_settle *st, const redisReply *result);
/* Whether anything still needs this poller before it may exit. */
bool tm__poller_busy(const tm_poller *p);
void tm__job_free(void *job);

#endif
