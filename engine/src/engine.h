/*
 * engine.h - the engine's private structures, shared by its modules.
 *
 *  app threads --schedule--> producer pool (producer.c) ----------> Redis
 *  poller threads (poller.c), each owning some shards and one connection:
 *      claim --> work ring (SPMC) --> worker threads (worker.c) run handlers
 *      commit <-- done ring (MPSC) <--
 *  notify thread (notify.c): SUBSCRIBE to wake channels, kicks pollers.
 *
 * Ownership: the engine owns topics, shards, pollers and rings. A job is
 * owned by whoever holds it: its poller until pushed, then the worker that
 * popped it, then the poller again once it is back on the done ring.
 */
#ifndef TIMERS_ENGINE_H
#define TIMERS_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "conn.h"
#include "keys.h"
#include "ring.h"
#include "timers.h"

/* Longest gap between two claims on a FASTSTREAM shard: other clients of
 * that layout publish no wake-ups. */
#define TM_FASTSTREAM_POLL_MS 50
#define TM_LEASE_MAX 32 /* bytes of a lease token, "%.6f" of a score */

typedef struct tm_poller tm_poller;
typedef struct tm_topic tm_topic;

/* Counters of one shard; relaxed atomics (readers only need each value). */
typedef struct tm_counters {
  _Atomic uint64_t scheduled, claimed, fired, acked, nacked, rejected,
      stale_commits, claim_calls, contested, ring_full, redis_errors;
} tm_counters;

typedef struct tm_job tm_job;

/* A shard: three keys in Redis, one owning poller here. */
typedef struct tm_shard {
  tm_topic *topic;
  uint32_t index;
  tm_poller *owner;
  char *zkey, *pkey, *akey;        /* owned */
  /* Earliest known score (µs since epoch), INT64_MAX when empty. Written by
   * the owner; read by notify and producers to decide whether to kick. */
  _Atomic int64_t next_due_us;
  /* Earliest due time announced since the owner last looked (atomic min),
   * INT64_MAX for none. Written by anyone, exchanged by the owner. */
  _Atomic int64_t hint_us;
  /* Owner-only: finished jobs waiting for their commit (ack/reject). */
  tm_job **commits;
  size_t ncommits, commits_cap;
  tm_counters counters;
} tm_shard;

/* Where a topic's timers are: shard count and layout. */
typedef struct tm_layout {
  uint32_t nshards;
  timers_layout kind;
} tm_layout;

struct tm_topic {
  timers_engine *engine;
  char *name;                    /* owned */
  timers_layout layout;
  timers_handler handler;
  void *userdata;
  int lease_ms, max_inflight;    /* max_inflight 0: unlimited */
  uint32_t nshards;
  tm_shard *shards;              /* owned, nshards */
  _Atomic int inflight;          /* claimed, not yet back from a worker */
};

/* A claimed timer on its way through the rings. One allocation: the struct,
 * then id (NUL-terminated), then the envelope blob. */
struct tm_job {
  tm_shard *shard;
  char lease[TM_LEASE_MAX];      /* fencing token of the claim */
  uint32_t attempt;
  timers_outcome outcome;        /* set by the worker */
  double activate_at;            /* set by the worker from the envelope */
  double claimed_score;          /* the score before the claim */
  double fired_at;               /* wall time the handler started */
  size_t id_len, blob_len;
  char *id, *blob;               /* point into data */
  char data[];
};

struct tm_poller {
  timers_engine *engine;
  int index;
  pthread_t thread;
  tm_conn conn;                  /* owned by the poller thread */
  tm_shard **shards;             /* not owned; nshards */
  size_t nshards;
  tm_ring work;                  /* SPMC: this poller -> workers */
  tm_ring done;                  /* MPSC: workers -> this poller */
  unsigned capacity;             /* jobs in flight at most: ring size - 1 */
  unsigned kick_threshold;       /* outcomes that make a worker kick */
  unsigned inflight;             /* poller-only */
  size_t rotor;                  /* poller-only: fair start among shards */
  unsigned budget;               /* poller-only: timers to claim per turn */
  /* Sleep/wake: a kicker sets `kicked` then, if `sleeping`, signals under
   * `lock`. Both seq_cst: the sleeper sets `sleeping` then re-checks
   * `kicked` and the done ring (Dekker), so no wake-up is lost. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  _Atomic int sleeping;
  _Atomic int kicked;
  _Atomic uint64_t lateness[TIMERS_LATENCY_BUCKETS]; /* poller writes */
  _Atomic uint64_t outstanding;  /* claimed, not yet committed or nacked */
  _Atomic uint64_t lateness_sum_us; /* poller writes */
};

enum { TM_CREATED, TM_RUNNING, TM_STOPPING, TM_STOPPED };

typedef struct tm_topic_cache_entry {
  char *topic;
  tm_layout layout;
} tm_topic_cache_entry;

struct timers_engine {
  timers_config cfg;             /* strings below replace cfg's pointers */
  char *key_prefix;
  tm_redis_opts redis;
  _Atomic int state;

  tm_topic **topics;             /* subscribed; frozen at start */
  size_t ntopics;
  tm_shard **shards;             /* all shards of subscribed topics */
  size_t nshards;

  char *fs_timeline, *fs_payloads; /* FASTSTREAM key bases, owned */
  /* Layouts of topics declared (not subscribed); frozen at start. */
  tm_topic_cache_entry *declared;
  size_t ndeclared;

  /* Layouts of topics used but neither subscribed nor declared. */
  pthread_mutex_t cache_lock;
  tm_topic_cache_entry *cache;
  size_t ncache, cache_cap;

  /* Producer connections: borrowed one per call. */
  pthread_mutex_t pool_lock;
  tm_conn **pool;
  size_t npool, pool_cap;

  tm_poller *pollers;
  int npollers;

  pthread_t *workers;
  int nworkers;
  _Atomic int workers_quit;
  pthread_mutex_t wlock;         /* worker sleep/wake, as for pollers */
  pthread_cond_t wcond;
  _Atomic int wsleepers;

  pthread_t notify_thread;
  int notify_started;
  pthread_mutex_t notify_lock;   /* guards notify_fd against stop() */
  int notify_fd;                 /* -1 when not connected */

  _Atomic uint64_t scheduled_other; /* to topics without local shards */
  _Atomic uint64_t conn_errors;  /* failed connects and lost connections */
  struct {
    _Atomic uint64_t poller_sleeps, poller_kicks, worker_sleeps,
        worker_wakeups, lock_waits, lock_wait_ns, cas_retries;
  } contention;                  /* relaxed counters, see timers_contention */
  int64_t drain_deadline_ns;     /* monotonic, set by stop() */
};

/* engine.c */
void tm__log(timers_engine *e, timers_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tm_topic *tm__topic_find(timers_engine *e, const char *name);

/* poller.c */
int tm__poller_init(tm_poller *p, timers_engine *e, int index);
void tm__poller_destroy(tm_poller *p);
void *tm__poller_main(void *arg);
void tm__poller_kick(tm_poller *p);
/* Tells the shard's owner a timer is due at `at_us`; kicks only if that is
 * earlier than anything it knows. Thread-safe. */
void tm__shard_hint(tm_shard *s, int64_t at_us);

/* worker.c */
extern _Thread_local bool tm__in_handler; /* this thread runs a handler */
void *tm__worker_main(void *arg);
void tm__workers_wake(timers_engine *e);

/* notify.c */
void *tm__notify_main(void *arg);
void tm__notify_stop(timers_engine *e);

/* producer.c */
void tm__pool_free(timers_engine *e);
typedef int (*tm_op)(timers_engine *e, tm_conn *c, void *arg);
/* Runs op on a pooled connection; on TIMERS_ECONN (the connection is then
 * closed) reconnects and runs it again, with backoff, within retry_ms. */
int tm__run_op(timers_engine *e, tm_op op, void *arg);
/* A topic's layout: subscribed, declared, cached, or its shard count read
 * from Redis. record: a topic with no recorded count gets the configured
 * one recorded (writers); else it is only assumed (readers write nothing).
 * Thread-safe. */
int tm__topic_layout(timers_engine *e, tm_conn *c, const char *topic,
                     bool record, tm_layout *out);
/* The z, p and a keys of a shard in a layout (the scripts' KEYS). */
void tm__topic_keys(const timers_engine *e, const tm_layout *l,
                    const char *topic, uint32_t shard,
                    char keys[3][TM_KEY_MAX]);
/* Records (first caller wins) and returns a topic's shard count; with
 * want 0 only reads it (*got 0: none recorded). */
int tm__meta_shards(tm_conn *c, const char *prefix, const char *topic,
                    uint32_t want, uint32_t *got);

/* stats.c */
int tm__lateness_bucket(double seconds);

static inline void tm__count(_Atomic uint64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* pthread_mutex_lock that counts how often and how long it had to wait. */
static inline void tm__lock(timers_engine *e, pthread_mutex_t *m) {
  if (pthread_mutex_trylock(m) == 0) return;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pthread_mutex_lock(m);
  clock_gettime(CLOCK_MONOTONIC, &b);
  tm__count(&e->contention.lock_waits, 1);
  tm__count(&e->contention.lock_wait_ns,
            (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000 +
                       (b.tv_nsec - a.tv_nsec)));
}

static inline int64_t tm__secs_to_us(double s) {
  return (int64_t)(s * 1e6);
}

#endif
