/*
 * torture.h - private header of the randomized, seeded torture test.
 *
 * One binary (timers_torture), four roles:
 *   driver   (default) starts a private redis-server with appendonly,
 *            several engine processes and producer processes (fork + exec
 *            of itself), injects faults on a schedule drawn from the seed,
 *            heals everything, waits for the timers to settle, stops the
 *            engines cleanly and runs the oracle;
 *   engine   runs a timers engine subscribed to every topic; its handler
 *            sleeps and answers ACK / NACK / REJECT as decided by
 *            (seed, id, attempt);
 *   producer schedules (batches mixing topics, generated and caller-chosen
 *            ids), replaces and cancels, from a stream drawn from the seed;
 *   check    runs the oracle alone over the logs of a kept run folder.
 *
 * Every process appends fixed-size records (tt_rec) with one write(2) per
 * record (or per batch of records) to its own O_APPEND file, BEFORE it acts
 * (write-ahead): a SIGKILL loses nothing the oracle needs. The driver logs
 * the processes it starts, the signals it sends and the faults it injects
 * in the same format, so the oracle reads only files.
 *
 * Only the public API (timers.h), tools/devtools/redis_server.h and hiredis
 * (for fault injection and inspection) are used.
 */
#ifndef TIMERS_TORTURE_H
#define TIMERS_TORTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "timers.h"

/* ------------------------------------------------------------ the plan */

#define TT_TOPICS_MAX 8    /* test topics plus the poison topic          */
#define TT_ID_CAP 48       /* ids in records; ours are at most 40 bytes   */
#define TT_KEY_PREFIX "torture"
#define TT_POISON_SHARDS 4

/* One topic: everything the handler, the producers and the oracle must
 * agree on, derived from the seed alone. */
typedef struct tt_topic {
  char name[24];
  int shards;
  int lease_ms;
  int max_handler_ms;  /* the engine extends a running handler's lease up
                          to this (handlers run up to 2 x lease)          */
  int weight;          /* share of scheduled timers (producers)            */
  int slow_permille;   /* handler time uniform in [0, 2 * lease]           */
  int fast_max_ms;     /* otherwise uniform in [0, fast_max_ms]            */
  int nack_permille;   /* per attempt (attempts 1..TT_NACK_MAX_ATTEMPT)    */
  int reject_permille; /* of the final outcomes                            */
  bool poison;         /* the dedicated topic of the wrong-type fault      */
  bool owned;          /* shards owned by one engine at a time            */
} tt_topic;

#define TT_NACK_MAX_ATTEMPT 3 /* later attempts never NACK: every chain ends */

typedef struct tt_plan {
  uint64_t seed;
  int ntopics;                   /* including the poison topic (the last) */
  tt_topic topics[TT_TOPICS_MAX];
  int lease_max_ms;              /* of the test topics                    */
} tt_plan;

/* The topics and their rules for a seed. Same result in every process:
 * the driver passes its --owned / --shards to the others through the
 * environment (TORTURE_OWNED=1: every test topic owned; TORTURE_SHARDS=N:
 * the multi-shard topics get N shards). */
void tt_plan_init(tt_plan *p, uint64_t seed);
/* Index of a topic name, or -1. */
int tt_topic_index(const tt_plan *p, const char *name);

/* Engine settings of engine `index`, incarnation `inc` (seeded). */
typedef struct tt_engine_shape {
  int pollers, workers, ring_capacity, claim_batch, max_sleep_ms;
  int command_timeout_ms, drain_timeout_ms;
  int max_inflight; /* per topic; 0: unlimited */
} tt_engine_shape;
/* gentle: the same small shape for every engine (one claim at a time, a
 * ring of 16, 4 workers), for telling shape-dependent defects apart. */
void tt_engine_shape_of(const tt_plan *p, int index, int inc, bool gentle,
                        tt_engine_shape *out);

/* ------------------------------------------------ hashing, randomness */

uint64_t tt_mix64(uint64_t x);
uint64_t tt_hash_str(uint64_t seed, const char *s);

/* splitmix64 stream: cheap, seedable, good enough for choices. */
typedef struct tt_rng {
  uint64_t s;
} tt_rng;
void tt_rng_seed(tt_rng *r, uint64_t a, uint64_t b, uint64_t c);
uint64_t tt_rng_next(tt_rng *r);
/* Uniform in [0, n) (n > 0). */
uint64_t tt_rng_below(tt_rng *r, uint64_t n);
/* Uniform in [lo, hi). */
double tt_rng_uniform(tt_rng *r, double lo, double hi);
bool tt_rng_chance(tt_rng *r, int permille);

/* ------------------------------------------------------ handler rules */

/* What the handler answers for (seed, id, attempt): NACK on early
 * attempts with the topic's probability, then ACK or REJECT. */
timers_outcome tt_outcome_for(const tt_plan *p, int topic, const char *id,
                              uint32_t attempt);
/* How long the handler sleeps, in milliseconds (0 .. 2 * lease). */
int tt_handler_ms_for(const tt_plan *p, int topic, const char *id,
                      uint32_t attempt);

/* ------------------------------------------------------------- payload */

/* A payload: "TT1 v=<16 hex> t=<topic> n=<filler bytes> c=<8 hex>;" then
 * the filler (bytes drawn from the version, some non-printable). The
 * header "v" carries the version too. */
#define TT_PAYLOAD_MAX 400
size_t tt_payload_encode(uint64_t version, int topic, size_t filler,
                         char *out, size_t cap);
/* Parses and verifies (checksum, length). false: corrupt. */
bool tt_payload_decode(const void *data, size_t len, uint64_t *version,
                       int *topic);

/* Version numbers: unique per schedule call in a run. */
static inline uint64_t tt_version_make(int producer, int inc, uint32_t seq) {
  return ((uint64_t)(unsigned)(producer + 1) << 48) |
         ((uint64_t)(unsigned)inc << 32) | seq;
}

/* ------------------------------------------------------------- records */

typedef enum tt_role {
  TT_ROLE_DRIVER = 0,
  TT_ROLE_ENGINE = 1,
  TT_ROLE_PRODUCER = 2,
  TT_ROLE_REDIS = 3
} tt_role;

typedef enum tt_kind {
  TT_REC_HELLO = 1,        /* a process began (role, index, inc, pid)     */
  TT_REC_ENGINE_UP = 2,    /* engine: timers_engine_start returned OK     */
  TT_REC_STOP_BEGIN = 3,   /* engine: SIGTERM seen, calling stop()        */
  TT_REC_STOP_DONE = 4,    /* engine: stop() returned (value = rc)        */
  TT_REC_START = 5,        /* handler began (seq, id, attempt, version)   */
  TT_REC_END = 6,          /* handler returns (seq, value = outcome)      */
  TT_REC_SCHED_INTENT = 7, /* producer: about to schedule (version, at)   */
  TT_REC_SCHED_RESULT = 8, /* producer: call returned (value = rc, id)    */
  TT_REC_CANCEL_INTENT = 9,
  TT_REC_CANCEL_RESULT = 10, /* value = rc, flags & TT_F_REMOVED          */
  TT_REC_SPAWN = 11,       /* driver: started pid (role, index, inc)      */
  TT_REC_SIGNAL = 12,      /* driver: sent signal `value` to pid          */
  TT_REC_EXIT = 13,        /* driver: reaped pid, value = wait status     */
  TT_REC_FAULT_BEGIN = 14, /* driver: fault aux (tt_fault), seq, target   */
  TT_REC_FAULT_END = 15,
  TT_REC_PHASE = 16,       /* driver: value = tt_phase                    */
  TT_REC_NOTE = 17         /* driver: a measurement (aux = what, at = v)  */
} tt_kind;

/* flags */
#define TT_F_GENERATED 0x01 /* schedule: the engine generated the id     */
#define TT_F_REPLACE 0x02   /* schedule: the id had an earlier version    */
#define TT_F_RETRY 0x04     /* schedule: app-level retry of a failed call */
#define TT_F_REMOVED 0x08   /* cancel result: removed                     */
#define TT_F_PAYLOAD_BAD 0x10 /* start: payload corrupt / header mismatch */
#define TT_F_UNEXPECTED 0x20  /* exit: not caused by the driver           */

typedef enum tt_phase {
  TT_PHASE_CHAOS = 1,  /* faults may be injected                        */
  TT_PHASE_HEAL = 2,   /* no more faults; everything restored           */
  TT_PHASE_SETTLE = 3, /* waiting for every timer's final outcome       */
  TT_PHASE_FINAL = 4,  /* engines stopped cleanly                       */
  TT_PHASE_DONE = 5
} tt_phase;

typedef enum tt_note {
  TT_NOTE_ERRORS = 1,  /* error replies of Redis during a poison window  */
  TT_NOTE_STOP_HANG = 2 /* an engine's stop() did not return in time     */
} tt_note;

typedef enum tt_fault {
  TT_FAULT_ENGINE_KILL = 0,    /* SIGKILL an engine, restart it later      */
  TT_FAULT_ENGINE_STOP,        /* SIGSTOP an engine, SIGCONT later         */
  TT_FAULT_ENGINE_RESTART,     /* SIGTERM (clean stop), start it again     */
  TT_FAULT_REDIS_STALL,        /* SIGSTOP redis longer than a lease        */
  TT_FAULT_REDIS_KILL,         /* SIGKILL redis, restart on its AOF        */
  TT_FAULT_CLIENT_KILL,        /* CLIENT KILL some or all connections      */
  TT_FAULT_MAXMEMORY,          /* maxmemory below use, noeviction          */
  TT_FAULT_POISON,             /* a string at a poison shard's zset key    */
  TT_FAULT_PRODUCER_KILL,      /* SIGKILL a producer (a call cut short)    */
  TT_FAULT_PRODUCER_RESTART,   /* SIGTERM a producer, start a new one      */
  TT_FAULT_COUNT
} tt_fault;

const char *tt_fault_name(int f);
/* Whether a fault kind talks to Redis (those never overlap each other). */
bool tt_fault_is_redis(int f);

typedef struct tt_rec {
  uint32_t magic;   /* TT_MAGIC                                          */
  uint8_t kind;     /* tt_kind                                           */
  uint8_t topic;    /* topic index                                       */
  uint8_t role;     /* tt_role of the process the record is about        */
  uint8_t flags;    /* TT_F_*                                            */
  int32_t pid;      /* the writer, or the target of a driver record      */
  int32_t value;    /* outcome, rc, signal, status, phase, ...           */
  uint32_t attempt; /* start: msg->attempt; hello/spawn: index           */
  uint32_t seq;     /* delivery seq, op seq, fault seq, incarnation      */
  uint64_t version; /* payload version                                   */
  uint64_t aux;     /* batch id, fault kind, note kind, planned ms       */
  double t;         /* timers_now() when written                         */
  double at;        /* activate_at; fault end; a measured value          */
  char id[TT_ID_CAP]; /* NUL-terminated                                  */
  double x;         /* start: the timer's score in Redis (probe)         */
  uint32_t y;       /* start: its attempts in Redis (probe)              */
  uint32_t z;       /* start: TT_P_* probe results                       */
  uint32_t index;   /* batch index; engine/producer index                */
  uint32_t crc;     /* fnv1a of the record with crc = 0                  */
} tt_rec;

/* The handler's probe (timers_inspect on a second, never started engine,
 * 250 ms timeouts, no retry) at handler entry: what Redis holds for the
 * timer being handled. Evidence only: it tells the lease the handler
 * started with (score = lease expiry, so score - lease = the claim's
 * "now") and whether another claim came first (attempts). */
#define TT_P_OK 0x1           /* the probe got an answer                  */
#define TT_P_FOUND 0x2        /* the timer is in Redis                    */
#define TT_P_SAME_VERSION 0x4 /* ... with the payload version handled     */

#define TT_MAGIC 0x54525455u /* "UTRT" */

_Static_assert(sizeof(tt_rec) == 128, "tt_rec is 128 bytes");

/* Opens (creates) an append-only log. -1 on failure (message on stderr). */
int tt_log_open(const char *path);
/* Stamps magic and crc and appends n records in one write(2). Retries a
 * short write; aborts the process if the log cannot be written, because
 * a test whose evidence is incomplete would lie. */
void tt_log_append(int fd, tt_rec *recs, size_t n);
/* Whether a record read back is whole (magic and crc). */
bool tt_rec_valid(const tt_rec *r);
/* A zeroed record of a kind, stamped with now and this pid. */
void tt_rec_init(tt_rec *r, tt_kind kind);

/* ---------------------------------------------------------------- misc */

double tt_now(void);       /* wall clock, Unix seconds (timers_now)       */
double tt_mono(void);      /* monotonic seconds                           */
void tt_sleep(double seconds); /* restarts after signals                  */

/* Entry points of the roles; argv after the role name. */
int tt_engine_main(int argc, char **argv);
int tt_producer_main(int argc, char **argv);

/* ------------------------------------------------------------- oracle */

typedef struct tt_oracle tt_oracle;

typedef struct tt_oracle_opts {
  const char *dir;        /* the run folder (logs/ under it)              */
  const tt_plan *plan;
  bool verbose;
  int examples;           /* delivery histories printed per violation kind */
} tt_oracle_opts;

tt_oracle *tt_oracle_new(const tt_oracle_opts *o);
void tt_oracle_free(tt_oracle *o);
/* Reads what the logs gained since the last call. */
void tt_oracle_load(tt_oracle *o);

typedef struct tt_progress {
  size_t versions;       /* schedule calls seen                          */
  size_t required;       /* versions that must reach a final outcome     */
  size_t finalized;      /* ... and did                                   */
  size_t deliveries;
  size_t open_deliveries; /* started, not ended, in a live process        */
  double latest_at;      /* latest activation time scheduled             */
  double last_record_t;  /* when the newest record was written           */
} tt_progress;
void tt_oracle_progress(tt_oracle *o, tt_progress *out);
/* Whether process (role, index, inc) logged that its engine started. */
bool tt_oracle_proc_up(tt_oracle *o, int role, int index, int inc);

/* Redis members still present at the end, by key (the driver scans). */
typedef struct tt_leftover {
  char key[160];
  char member[TT_ID_CAP + 64];
  double score;
} tt_leftover;
void tt_oracle_set_leftovers(tt_oracle *o, const tt_leftover *l, size_t n,
                             const char *patterns_report);

/* Runs every check, prints the summary; returns the violation count. */
size_t tt_oracle_check(tt_oracle *o);

#endif /* TIMERS_TORTURE_H */
