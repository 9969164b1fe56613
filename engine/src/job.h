/*
 * job.h - a claimed timer on its way from a poller to a worker and back.
 *
 * Ownership: the poller creates a job when its claim reply arrives, keeps
 * it on its in-flight list while it holds the timer's lease, and pushes it
 * to the work ring; a worker pops it, runs the handler (or skips it, see
 * below), and pushes it back on its own done ring; the poller frees it once
 * it is back AND its last settle step (commit, release, nack) was sent and
 * answered.
 *
 * State (the only field both sides write):
 *   QUEUED --worker CAS--> RUNNING --> (outcome set, pushed back)
 *   QUEUED --poller CAS--> RELEASED: handed back to Redis unstarted (lease
 *          about to run out in the queue, or stop()); the worker that pops
 *          it pushes it back without running it.
 * The CAS decides who wins; acq_rel on success, so the winner sees the
 * loser's earlier writes (started_ns by the worker).
 */
#ifndef TIMERS_JOB_H
#define TIMERS_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "timers.h"

struct tm_shard;

enum { TM_JOB_QUEUED, TM_JOB_RUNNING, TM_JOB_RELEASED };

/* A node of the poller's held list (the first member of a job, so a link
 * pointer converts to its job). */
typedef struct tm_link {
  struct tm_link *prev, *next;
} tm_link;

#define TM_TOKEN_MAX 40 /* a score as Redis prints it ("%.17g" or "%.6f") */
#define TM_REASON_MAX 256 /* a dead letter's reason, NUL included */

typedef struct tm_job {
  /* ---- poller only */
  tm_link link;                  /* held list; first member */
  char token[TM_TOKEN_MAX];      /* current lease score: the fencing token */
  char prev_score[TM_TOKEN_MAX]; /* score before the claim (for release) */
  int64_t refreshed_ns;          /* monotonic: claim or last extension
                                    (a worker reads the claim's before it
                                    starts the job: past_handback) */
  int64_t lease_until_ns;        /* monotonic estimate of the lease's end */
  char queued_op;                /* settle step waiting ('\0': none) */
  bool back;                     /* returned by a worker */
  bool listed;                   /* on the in-flight list */
  bool overran;                  /* past max_handler_ms: no more extensions */
  /* ---- shared */
  _Atomic int state;             /* TM_JOB_* above */
  /* Handler-requested: keep the lease until this monotonic time (atomic
   * max, relaxed: the poller reads it at its next heartbeat check). */
  _Atomic int64_t keep_until_ns;
  /* Set by the poller when an extension was fenced off (relaxed; read by
   * timers_extend_lease as a hint). */
  _Atomic bool lost;
  /* ---- set by the poller before the push, read-only afterwards */
  struct tm_shard *shard;
  uint32_t attempt;
  double claimed_score;          /* prev_score as a number */
  size_t id_len, blob_len;
  char *id, *blob;               /* point into data */
  /* ---- written by the worker before the push back (the ring orders it) */
  int64_t started_ns;            /* monotonic, written before RUNNING */
  int64_t ran_ns;                /* handler duration */
  timers_outcome outcome;
  int retry_ms;                  /* timers_retry_in for a NACK; -1: none */
  char reason[TM_REASON_MAX];    /* timers_set_reason; "" for the default */
  bool handled;                  /* a handler ran (not a dropped or held
                                    payload) */
  double activate_at;            /* from the envelope (or the score) */
  double fired_at;               /* Redis-clock estimate of the start */
  bool corrupt;                  /* the envelope did not decode */
  char data[];                   /* id, NUL, envelope */
} tm_job;

/* When a queued (unstarted) job is handed back: half its topic's lease
 * after the claim. The poller does it; a worker that gets the job later
 * hands it back itself. */
static inline int64_t tm__job_handback_ns(const tm_job *j, int lease_ms) {
  return j->refreshed_ns + (int64_t)lease_ms * 1000000 / 2;
}

#endif
