/*
 * timers.h - a sharded, multithreaded, distributed timer engine on Redis.
 *
 * An application creates an engine, subscribes handlers to topics, starts it,
 * and schedules timers (topic, id, payload, headers, activation time). Any
 * number of processes may share one Redis: a due timer is leased by exactly
 * one of them at a time, handed to one handler, and removed when the handler
 * acknowledges it. A crashed process loses nothing: its leases run out and
 * another process re-claims the timers (at-least-once delivery).
 *
 * Conventions
 *  - Every function that can fail returns an int: TIMERS_OK (0) or a negative
 *    timers_err code. timers_strerror() names the code; timers_last_error()
 *    gives the detail of the last failure on the calling thread.
 *  - Thread safety: a function is NOT thread-safe unless its comment says so.
 *  - Strings passed in are copied unless a comment says otherwise; pointers
 *    handed to callbacks are valid only during the callback.
 *  - Times are Unix seconds as doubles (the reference library's unit);
 *    durations in the config are milliseconds.
 */
#ifndef TIMERS_H
#define TIMERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TIMERS_STATIC) || !defined(__GNUC__)
#define TIMERS_API
#else
#define TIMERS_API __attribute__((visibility("default")))
#endif

#define TIMERS_VERSION_MAJOR 0
#define TIMERS_VERSION_MINOR 1
#define TIMERS_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

/* Codes are never renumbered; new ones are appended. */
#define TIMERS_ERRNO_MAP(XX)                                                  \
  XX(OK, 0, "success")                                                        \
  XX(EINVAL, -1, "invalid argument")                                          \
  XX(ENOMEM, -2, "out of memory")                                             \
  XX(ECONN, -3, "cannot reach Redis")                                         \
  XX(EREDIS, -4, "Redis replied with an error")                               \
  XX(ESTATE, -5, "operation not allowed in the engine's current state")       \
  XX(EEXIST, -6, "already exists")                                            \
  XX(ESHARDS, -7, "shard count differs from the one recorded in Redis")       \
  XX(ETOOBIG, -8, "value exceeds a documented limit")                         \
  XX(ESYS, -9, "system call failed")                                          \
  XX(EDONE, -10, "iteration finished")                                        \
  XX(ELEASE, -11, "the timer's lease was lost to another holder")

typedef enum timers_err {
#define TIMERS_ERR_ENUM_(name, code, msg) TIMERS_##name = (code),
  TIMERS_ERRNO_MAP(TIMERS_ERR_ENUM_)
#undef TIMERS_ERR_ENUM_
} timers_err;

/* Static text for a code ("invalid argument"); never NULL. Thread-safe. */
TIMERS_API const char *timers_strerror(int err);
/* The code's name ("TIMERS_EINVAL"); never NULL. Thread-safe. */
TIMERS_API const char *timers_err_name(int err);
/* Detail of the last call made by this thread that can fail: why it
 * failed, or "" after a success (thread-local). Never NULL. Thread-safe. */
TIMERS_API const char *timers_last_error(void);

/* ---------------------------------------------------------------- limits */

/* Topics and ids: NATIVE topics are [A-Za-z0-9_.-/] (they sit inside a
 * Redis Cluster hash tag), NATIVE ids printable ASCII without blanks;
 * FASTSTREAM topics and ids are any UTF-8 text without NUL, as the Python
 * library accepts. The byte limits are the same for both. */
#define TIMERS_TOPIC_MAX 512           /* bytes                            */
#define TIMERS_ID_MAX 512              /* bytes                            */
#define TIMERS_PAYLOAD_MAX (16u << 20) /* bytes, payload plus headers      */
#define TIMERS_HEADERS_MAX 64          /* headers per timer scheduled here;
                                          FASTSTREAM messages written by
                                          others may carry more            */
#define TIMERS_SHARDS_MAX 4096
#define TIMERS_ID_GEN_LEN 32           /* generated ids: 32 hex digits     */

/* ---------------------------------------------------------------- config */

typedef enum timers_log_level {
  TIMERS_LOG_ERROR = 0,
  TIMERS_LOG_WARN = 1,
  TIMERS_LOG_INFO = 2,
  TIMERS_LOG_DEBUG = 3
} timers_log_level;

/* Called from any engine thread; must be thread-safe and must not call back
 * into the engine. msg is valid only during the call. */
typedef void (*timers_log_fn)(void *userdata, timers_log_level level,
                              const char *msg);

typedef struct timers_config {
  /* "host:port", "host" (port 6379), "/path/to.sock" or "unix:/path";
   * NULL or "": 127.0.0.1:6379.                                          */
  const char *redis;
  const char *username;       /* NULL: no ACL user                      */
  const char *password;       /* NULL: no AUTH                          */
  int db;                     /* SELECT db; 0                           */
  int connect_timeout_ms;     /* 1000                                   */
  int command_timeout_ms;     /* 5000                                   */
  const char *key_prefix;     /* "timers"; same charset as a topic      */
  int shards;                 /* shards of a new topic; 8               */
  int pollers;                /* poller threads; 1                      */
  int workers;                /* handler threads; 2                     */
  int ring_capacity;          /* jobs in flight per poller; power of 2; 4096 */
  int claim_batch;            /* timers per claim call; 256             */
  int lease_ms;               /* default lease; 30000. While a handler
                                 runs, the engine extends its lease (a
                                 heartbeat every lease_ms / 3)          */
  int max_handler_ms;         /* default longest handler run the engine
                                 keeps extending; then the lease runs
                                 out and the timer is redelivered;
                                 300000                                 */
  int dedup_window_ms;        /* a schedule identical to a timer acked
                                 or rejected this recently is skipped
                                 (NATIVE layout); 0: off; 10000         */
  /* Failures (NATIVE layout: FASTSTREAM counts no attempts). A NACK is
   * redelivered after an exponential backoff with jitter (from
   * retry_min_ms doubling per attempt, capped at retry_max_ms, each delay
   * drawn in [d/2, d]) unless the handler chose a delay
   * (timers_retry_in). A timer whose attempt max_attempts fails (NACK),
   * or that is claimed again after max_attempts deliveries that never
   * ended (crashes, expired leases), moves to the topic's dead-letter set
   * (timers_dead_*), atomically with its removal from the timeline. */
  int max_attempts;           /* 0: unlimited; 20                       */
  int retry_min_ms;           /* 1000                                   */
  int retry_max_ms;           /* 300000                                 */
  int dead_max;               /* dead letters kept per shard, the oldest
                                 dropped beyond; 100000                 */
  int dead_ttl_ms;            /* dead letters older than this dropped;
                                 604800000 (7 days)                     */
  int owner_ttl_ms;           /* owned topics: ownership and membership
                                 leases, renewed every third; 5000      */
  int max_sleep_ms;           /* longest idle sleep of a poller; 30000  */
  int drain_timeout_ms;       /* stop(): wait for handlers; 10000       */
  int retry_ms;               /* schedule/cancel: keep retrying an
                                 unreachable Redis this long; 1000      */
  /* Key base names of the FASTSTREAM layout, as configured in the Python
   * library: "timers_timeline" and "timers_payloads".                   */
  const char *faststream_timeline_key;
  const char *faststream_payloads_key;
  timers_log_fn log;          /* NULL: no logging                       */
  void *log_userdata;
  timers_log_level log_level; /* most verbose level passed; WARN        */
} timers_config;

/* Fills cfg with the defaults above. */
TIMERS_API void timers_config_init(timers_config *cfg);

/* ---------------------------------------------------------------- engine */

typedef struct timers_engine timers_engine;

/* Creates an engine; cfg is copied (strings too). Connects nothing yet:
 * start() and the first schedule() do. On failure *out is NULL. */
TIMERS_API int timers_engine_create(const timers_config *cfg,
                                    timers_engine **out);

/* Connects, checks each subscribed topic's shard count against Redis
 * (TIMERS_ESHARDS on a mismatch), and starts pollers and workers. */
TIMERS_API int timers_engine_start(timers_engine *e);

/* Graceful stop: no new claims; timers claimed but not yet started are
 * handed back at once (fenced), so another process can take them without
 * waiting out a lease; running handlers finish (their leases are extended
 * up to drain_timeout_ms) and every outcome is committed before stop
 * returns. Blocks until every engine thread has returned (a handler still
 * running past the drain timeout is waited for; its timer may by then be
 * redelivered elsewhere). If Redis is unreachable, outcomes are retried
 * until the drain timeout, then left to their leases. May run while other
 * threads schedule (they keep working: schedule needs no running engine).
 * Idempotent. From inside a handler it returns TIMERS_ESTATE. */
TIMERS_API int timers_engine_stop(timers_engine *e);

/* Stops if needed and frees everything. Accepts NULL. No other call on e
 * may run concurrently or follow; from inside a handler it does nothing. */
TIMERS_API void timers_engine_destroy(timers_engine *e);

/* --------------------------------------------------------------- handlers */

typedef enum timers_outcome {
  TIMERS_ACK = 0,    /* done: remove the timer                          */
  TIMERS_NACK = 1,   /* failed: redeliver after the topic's backoff
                        (timers_config retry_*, or timers_retry_in);
                        the last of max_attempts: dead-letter it.
                        FASTSTREAM topics (no attempts): when the lease
                        runs out, as the Python library does           */
  TIMERS_REJECT = 2, /* drop for good                                   */
  TIMERS_RELEASE = 3 /* not handled: hand it back at once, as if it had
                        not been delivered (its attempt is not counted),
                        e.g. a consumer that wanted no more messages     */
} timers_outcome;

typedef struct timers_header {
  const char *key;   /* NUL-terminated; non-empty                        */
  const char *value; /* NUL-terminated                                   */
} timers_header;

/* A fired timer. Every pointer is owned by the engine and valid only until
 * the handler returns: copy what you keep. payload is not NUL-terminated. */
typedef struct timers_message {
  const char *topic;
  const char *id;
  const void *payload;
  size_t payload_len;
  const timers_header *headers;
  size_t header_count;
  double activate_at;  /* the time it was scheduled for (Unix seconds)   */
  uint32_t attempt;    /* 1 on the first delivery                        */
  uint32_t shard;
} timers_message;

/* Runs on a worker thread; handlers of one topic run concurrently on
 * several workers, so a handler must be thread-safe. It may call
 * schedule/cancel (also of the timer being handled: the cancel wins, the
 * later ack is a no-op; a re-schedule of the same id with a new time or
 * payload wins too).
 *
 * Leases: while a handler runs, its engine extends the timer's lease
 * (fenced: only while it still holds it), so a slow handler is not
 * redelivered elsewhere, up to the topic's max_handler_ms; past that, or
 * if its process stops (crash, SIGSTOP past the lease), the lease runs out
 * and the timer is delivered again (at-least-once). */
typedef timers_outcome (*timers_handler)(const timers_message *msg,
                                         void *userdata);

/* From inside a handler, about msg (the message it was given): keep the
 * lease for at least `ms` more milliseconds, beyond max_handler_ms if
 * needed (like extending a job lock): the engine's heartbeat (every
 * lease_ms / 3) keeps extending the lease until then. TIMERS_ELEASE if the
 * engine already
 * knows the lease was lost (another holder has the timer: the outcome of
 * this run will be fenced off); TIMERS_EINVAL if msg is not the message
 * of the handler running on this thread, or ms is not 1..86400000. */
TIMERS_API int timers_extend_lease(const timers_message *msg, int ms);

/* From inside a handler that will return NACK: redeliver after `ms`
 * milliseconds (0..86400000) instead of the topic's backoff. TIMERS_EINVAL
 * as for timers_extend_lease. */
TIMERS_API int timers_retry_in(const timers_message *msg, int ms);

/* From inside a handler: the reason recorded if this run sends the timer
 * to the dead-letter set (its last attempt NACKs, or it REJECTs on a topic
 * with dead_letter_rejects). Copied; at most 255 bytes are kept. */
TIMERS_API int timers_set_reason(const timers_message *msg,
                                 const char *reason);

/* How a topic's timers are stored. */
typedef enum timers_layout {
  /* This engine's: N shards, keys <prefix>:{topic:s}:z|p|a, its envelope. */
  TIMERS_LAYOUT_NATIVE = 0,
  /* faststream-redis-timers': one shard, keys <timeline>:<topic> and
   * <payloads>:<topic> (base names in timers_config), FastStream's binary
   * envelope (headers + body). Python services using that library and this
   * engine share such a topic's timers both ways. Attempts are not tracked
   * (the message's attempt is 0) and activate_at is the score the timer had
   * when claimed. */
  TIMERS_LAYOUT_FASTSTREAM = 1
} timers_layout;

typedef struct timers_subscribe_options {
  int lease_ms;      /* 0: the engine's lease_ms                          */
  int max_inflight;  /* handlers of this topic at once; 0: unlimited      */
  int max_handler_ms;/* 0: the engine's max_handler_ms                    */
  int max_attempts;  /* 0: the engine's max_attempts; -1: unlimited       */
  int retry_min_ms;  /* 0: the engine's                                   */
  int retry_max_ms;  /* 0: the engine's                                   */
  int dead_letter_rejects; /* 1: REJECT moves the timer to the dead-letter
                              set (with timers_set_reason's reason)
                              instead of dropping it                      */
  int owned;         /* 1: each shard is claimed by one process at a time
                        (an ownership lease of owner_ttl_ms, renewed,
                        balanced over the live processes subscribed with
                        owned, taken over within about 1.5 x
                        owner_ttl_ms when its owner dies: its leases run
                        out, the others see it gone at their next
                        membership read, every third of the ttl);
                        0: every process claims every shard             */
  int at_most_once;  /* 1: a claim removes the timer (no lease): never
                        delivered twice, but lost if its process dies
                        before the handler runs; outcomes do nothing
                        (NACK and RELEASE cannot redeliver). The cheapest
                        delivery. stop() still runs every claimed one.   */
  int shards;        /* 0: the engine's shards (FASTSTREAM: always 1)     */
  timers_layout layout;
} timers_subscribe_options;

/* Registers handler for topic; before start() only (TIMERS_ESTATE after),
 * once per topic (TIMERS_EEXIST). opts may be NULL. */
TIMERS_API int timers_subscribe(timers_engine *e, const char *topic,
                                timers_handler handler, void *userdata,
                                const timers_subscribe_options *opts);

/* Declares a topic's options (layout, shards) for scheduling and inspecting
 * it without subscribing, e.g. a FASTSTREAM topic another process handles.
 * Before start() only; a subscribed topic needs no declaration. */
TIMERS_API int timers_declare(timers_engine *e, const char *topic,
                              const timers_subscribe_options *opts);

/* -------------------------------------------------------------- settings */

/* A configuration file (INI) for everything tunable, so an application and
 * the `timers` command line read the same file:
 *
 *   [redis]   address username password db connect_timeout_ms
 *             command_timeout_ms retry_ms key_prefix
 *   [engine]  shards pollers workers ring_capacity claim_batch lease_ms
 *             max_handler_ms dedup_window_ms max_attempts retry_min_ms
 *             retry_max_ms dead_max dead_ttl_ms owner_ttl_ms max_sleep_ms
 *             drain_timeout_ms log_level (error|warn|info|debug)
 *   [faststream] timeline_key payloads_key
 *   [topic NAME]  shards lease_ms max_inflight max_handler_ms max_attempts
 *             retry_min_ms retry_max_ms dead_letter_rejects at_most_once
 *             owned layout (native|faststream)
 *
 * Keys are the timers_config / timers_subscribe_options field names
 * (address = cfg.redis). Environment variables TIMERS_<SECTION>_<KEY>
 * (e.g. TIMERS_REDIS_ADDRESS, TIMERS_ENGINE_SHARDS) override the file;
 * timers_settings_set (command-line flags) overrides both. */
typedef struct timers_settings timers_settings;

/* Loads path (NULL: defaults plus environment only). Errors name the file,
 * line, section, key, value and the allowed range; an unknown section or
 * key is an error. */
TIMERS_API int timers_settings_load(const char *path, timers_settings **out);
/* Sets one key as a file line would ("engine", "shards", "16"); section
 * "topic NAME" for topic keys. */
TIMERS_API int timers_settings_set(timers_settings *s, const char *section,
                                   const char *key, const char *value);
/* The engine config; its strings belong to s (valid until it is freed or
 * set again). */
TIMERS_API const timers_config *timers_settings_config(const timers_settings *s);
/* Topics with a [topic NAME] section, and their options. */
TIMERS_API size_t timers_settings_topic_count(const timers_settings *s);
TIMERS_API const char *timers_settings_topic_name(const timers_settings *s,
                                                  size_t i);
/* Options of topic (zeros: engine defaults); false if it has no section. */
TIMERS_API bool timers_settings_topic(const timers_settings *s,
                                      const char *topic,
                                      timers_subscribe_options *opts);
/* One effective setting, for showing a configuration. */
typedef struct timers_setting {
  const char *section;  /* "redis", "engine", "faststream" or "topic NAME";
                           valid while the settings live                  */
  const char *key;
  char value[256];      /* as a file line would have it; "" when unset   */
  bool is_number;       /* an integer (unquoted in JSON)                  */
  bool secret;          /* the password: mask it when showing             */
} timers_setting;

/* The i-th effective setting, every key of [redis], [engine] and
 * [faststream] then of each [topic NAME], in file order: TIMERS_OK, or
 * TIMERS_EDONE past the last. Environment overrides apply to the first
 * three sections only. */
TIMERS_API int timers_settings_entry(const timers_settings *s, size_t i,
                                     timers_setting *out);
/* Accepts NULL. */
TIMERS_API void timers_settings_free(timers_settings *s);

/* -------------------------------------------------------------- scheduling */

typedef struct timers_timer {
  const char *topic;
  const char *id;            /* NULL: a fresh random id is generated     */
  const void *payload;       /* may be NULL when payload_len is 0        */
  size_t payload_len;
  const timers_header *headers;
  size_t header_count;
  /* Exactly one of the two must be set (has_* true). */
  bool has_activate_at;
  double activate_at;        /* absolute, Unix seconds, >= 0            */
  bool has_activate_in;
  double activate_in;        /* relative to now, seconds, >= 0          */
} timers_timer;

/* Schedules one timer. Scheduling an id that already exists in the topic
 * replaces it (new time, payload and headers; attempts reset); scheduling
 * it again with the same time, payload and headers changes nothing (so a
 * retried call cannot disturb a timer being handled).
 *
 * Retries are safe: a NATIVE timer acked or rejected less than
 * dedup_window_ms ago is not written again by a schedule with the same
 * id, activation time, payload and headers (it is counted as
 * `deduplicated`), so neither the engine's own retry after a lost reply
 * nor an application's retry of a failed call resurrects a fired timer.
 * A retry with activate_in computes a new time, hence is a new timer: use
 * activate_at for calls you may retry.
 * Writes the id
 * (NUL-terminated) into id_out when id_out is not NULL; id_cap must then be
 * at least TIMERS_ID_MAX + 1. Validates everything before any I/O: invalid
 * input writes nothing. Thread-safe. */
TIMERS_API int timers_schedule(timers_engine *e, const timers_timer *t,
                               char *id_out, size_t id_cap);

/* Schedules n timers (any mix of topics) in one pipelined round trip. All
 * are validated first: if any is invalid, none is written. ids_out, when
 * not NULL, receives n ids, each in a slot of TIMERS_ID_MAX + 1 bytes.
 * Timers of one shard are written atomically together; different shards
 * cannot be (they may live on different Redis Cluster nodes), so on an
 * error some shards' timers may be written: the detail says how many, and
 * timers_schedule_each says which. Thread-safe. */
TIMERS_API int timers_schedule_batch(timers_engine *e, const timers_timer *ts,
                                     size_t n, char *ids_out);

/* timers_schedule_batch, and status[k] (n entries, required) receives
 * each timer's own result: TIMERS_OK when it is stored (or was already,
 * identically), else the error of its shard's write. Returns the first
 * error, or TIMERS_OK when all are stored. Thread-safe. */
TIMERS_API int timers_schedule_each(timers_engine *e, const timers_timer *ts,
                                    size_t n, char *ids_out, int *status);

/* Checks a topic name, and an id unless id is NULL, by the rules of the
 * topic's layout as configured on e (subscribe/declare; otherwise NATIVE),
 * without any I/O: TIMERS_OK, or the error and detail schedule() would
 * give. For tools that validate input before doing anything. Thread-safe. */
TIMERS_API int timers_check_name(timers_engine *e, const char *topic,
                                 const char *id);

/* Removes a pending timer. *removed (may be NULL) tells whether it was
 * there. A timer already claimed (due, on its way to a handler) is removed
 * too, but that handler may still run, once, within the lease; its outcome
 * then changes nothing. When an attempt times out or loses its connection
 * and the call retries (retry_ms), a removal made by the lost attempt is
 * still reported (NATIVE topics with dedup_window_ms > 0: the call leaves
 * a token in the shard's tombstone set; FASTSTREAM: the retry reports only
 * what it removed itself). Thread-safe. */
TIMERS_API int timers_cancel(timers_engine *e, const char *topic,
                             const char *id, bool *removed);

/* Moves a pending timer to activation time `at` (Unix seconds) without
 * resending its payload; its attempts start over. *moved (may be NULL)
 * is false when it was not pending. Atomic against claims: if a handler
 * holds it right now, that run's outcome is fenced off and the timer fires
 * again at the new time. Thread-safe. */
TIMERS_API int timers_reschedule(timers_engine *e, const char *topic,
                                 const char *id, double at, bool *moved);

/* Removes every timer of a topic; *count (may be NULL) gets how many.
 * Thread-safe. */
TIMERS_API int timers_cancel_all(timers_engine *e, const char *topic,
                                 uint64_t *count);

/* Whether the timer exists (due, leased to a handler, or in the future).
 * Thread-safe. */
TIMERS_API int timers_is_pending(timers_engine *e, const char *topic,
                                 const char *id, bool *pending);

/* --------------------------------------------------------------- pending */

/* Walks the ids of a topic's timers in pages (never one giant reply), in
 * activation order across all shards. A timer being handled has its lease
 * expiry as time: it is listed without `before`, not with before = now.
 * Close every iterator before destroying its engine. */
typedef struct timers_pending_iter timers_pending_iter;

/* has_before false: all timers. Thread-safe (the iterator is not: use it
 * from one thread at a time). */
TIMERS_API int timers_pending_open(timers_engine *e, const char *topic,
                                   bool has_before, double before,
                                   timers_pending_iter **out);
/* Next timer: TIMERS_OK, TIMERS_EDONE at the end, or an error. *id stays
 * valid until the next call on the iterator. at may be NULL. */
TIMERS_API int timers_pending_next(timers_pending_iter *it, const char **id,
                                   double *at);
/* Accepts NULL. */
TIMERS_API void timers_pending_close(timers_pending_iter *it);

/* ----------------------------------------------------------- dead letters */

/* A timer in its topic's dead-letter set (NATIVE layout): its last attempt
 * failed, it was claimed again after max_attempts deliveries that never
 * ended, or it was rejected on a topic with dead_letter_rejects. Kept up
 * to dead_max per shard and dead_ttl_ms (timers_config). */
typedef struct timers_dead_info {
  char id[TIMERS_ID_MAX + 1];
  uint32_t shard;
  double dead_at;          /* Unix seconds (Redis clock)                  */
  uint32_t attempts;       /* deliveries it had                           */
  char reason[256];
  double activate_at;      /* when it was due                             */
  void *payload;           /* owned; NUL-terminated for convenience       */
  size_t payload_len;
  timers_header *headers;  /* owned, header_count entries                 */
  size_t header_count;
} timers_dead_info;

/* Reads one dead letter. *found false (info untouched) when it is not
 * there. Free with timers_dead_info_free. Thread-safe. */
TIMERS_API int timers_dead_inspect(timers_engine *e, const char *topic,
                                   const char *id, bool *found,
                                   timers_dead_info *info);
TIMERS_API void timers_dead_info_free(timers_dead_info *info);

/* Walks the dead letters of a topic in the order they died (`at` of
 * timers_pending_next is the dead time), with the pending iterator.
 * Thread-safe (the iterator is not). */
TIMERS_API int timers_dead_open(timers_engine *e, const char *topic,
                                timers_pending_iter **out);

/* Puts a dead letter back on the timeline, due at `at` (has_at) or now,
 * with its payload and headers, attempts starting over. *requeued (may be
 * NULL) tells whether it was there. Thread-safe. */
TIMERS_API int timers_dead_requeue(timers_engine *e, const char *topic,
                                   const char *id, bool has_at, double at,
                                   bool *requeued);

/* Removes one dead letter, or all of the topic's when id is NULL; *count
 * (may be NULL) gets how many. Thread-safe. */
TIMERS_API int timers_dead_purge(timers_engine *e, const char *topic,
                                 const char *id, uint64_t *count);

/* ----------------------------------------------------------------- stats */

typedef struct timers_counters {
  uint64_t scheduled;      /* timers written by this engine              */
  uint64_t claimed;        /* timers leased by this engine's pollers     */
  uint64_t fired;          /* handlers run to completion                 */
  uint64_t acked;
  uint64_t nacked;
  uint64_t rejected;
  uint64_t stale_commits;  /* acks/rejects fenced off: lease was lost    */
  uint64_t claim_calls;    /* claim round trips                          */
  uint64_t contested;      /* claims that expected due timers, got none  */
  uint64_t ring_full;      /* claims skipped or cut for lack of room     */
  uint64_t redis_errors;   /* failed Redis calls (then retried)          */
  uint64_t extended;       /* lease extensions of running handlers       */
  uint64_t released;       /* claimed timers handed back unstarted       */
  uint64_t lease_lost;     /* extensions refused: another holder has it  */
  uint64_t overran;        /* handlers past max_handler_ms (lease left
                              to run out)                                */
  uint64_t deduplicated;   /* schedules skipped: identical to a timer
                              fired within dedup_window_ms               */
  uint64_t self_healed;    /* members removed at claim: no payload, or
                              (FASTSTREAM) an id that is not UTF-8       */
  uint64_t corrupt;        /* payloads that did not decode: delivered as
                              raw bytes, no headers, activate_at = score */
  uint64_t dead_lettered;  /* timers moved to the dead-letter set        */
} timers_counters;

/* Lateness (handler start minus activation time, first attempts only) in
 * buckets: bucket i counts lateness in [bound(i-1), bound(i)) microseconds,
 * bounds from timers_lateness_bound_us(). */
#define TIMERS_LATENCY_BUCKETS 128

typedef enum timers_shard_state {
  TIMERS_SHARD_OK = 0,           /* its last claim succeeded (or none yet) */
  TIMERS_SHARD_ERROR = 1,        /* claims fail (e.g. a wrong-type key);
                                    retried with capped backoff           */
  TIMERS_SHARD_DISCONNECTED = 2, /* its poller cannot reach Redis        */
  TIMERS_SHARD_STANDBY = 3       /* owned topic: another process owns it */
} timers_shard_state;

typedef struct timers_shard_stats {
  const char *topic;   /* points into the engine: valid until destroy    */
  uint32_t shard;
  timers_counters counters;
  timers_shard_state state;
  uint32_t consecutive_errors;   /* failed claims since the last success */
  double last_claim_at;          /* Unix seconds (Redis clock) of the last
                                    successful claim; 0: none yet        */
} timers_shard_stats;

/* Where threads on the fire path waited or collided (engine-wide). */
typedef struct timers_contention {
  uint64_t poller_sleeps;   /* pollers blocked on their condition variable */
  uint64_t poller_kicks;    /* signals sent to a sleeping poller           */
  uint64_t worker_sleeps;   /* workers blocked on their condition variable */
  uint64_t worker_wakeups;  /* broadcasts sent to sleeping workers         */
  uint64_t lock_waits;      /* mutex acquisitions that found it held       */
  uint64_t lock_wait_ns;    /* time spent in those acquisitions            */
  uint64_t cas_retries;     /* failed compare-and-swap loops (hints)       */
} timers_contention;

typedef struct timers_stats {
  timers_counters total;
  timers_contention contention;
  uint64_t lateness[TIMERS_LATENCY_BUCKETS];
  uint64_t lateness_sum_us;       /* sum of the lateness counted above   */
  uint64_t inflight;              /* claimed and not yet committed       */
  size_t shard_count;
  timers_shard_stats *shards;     /* shard_count entries                  */
} timers_stats;

/* A consistent-enough snapshot (each counter read atomically). Free it with
 * timers_stats_free. Thread-safe. */
TIMERS_API int timers_stats_get(timers_engine *e, timers_stats **out);
TIMERS_API void timers_stats_free(timers_stats *s);
/* Upper bound in microseconds of lateness bucket i. Thread-safe. */
TIMERS_API uint64_t timers_lateness_bound_us(int i);
/* The bucket a lateness of `seconds` is counted in. Thread-safe. */
TIMERS_API int timers_lateness_bucket(double seconds);
/* Lateness quantile q (0..1) in milliseconds, from the buckets (upper bound
 * of the bucket holding it); 0 if nothing fired. Thread-safe. */
TIMERS_API double timers_stats_lateness_ms(const timers_stats *s, double q);

/* ------------------------------------------------------------- inspection */

/* One pending timer as stored. Free with timers_timer_info_free. */
typedef struct timers_timer_info {
  char id[TIMERS_ID_MAX + 1];
  uint32_t shard;
  double score;            /* activation time, or lease expiry if held  */
  double activate_at;      /* from the envelope                         */
  bool lease_known;         /* false in the FASTSTREAM layout, where a
                              lease and a future due time look alike  */
  bool leased;             /* (when lease_known) its score is a future
                              lease, not its activation time          */
  uint32_t attempts;       /* deliveries so far                         */
  void *payload;           /* owned; NUL-terminated for convenience     */
  size_t payload_len;
  timers_header *headers;  /* owned, header_count entries               */
  size_t header_count;
} timers_timer_info;

/* Reads one timer. *found false (and info untouched) when it is not there.
 * Thread-safe. */
TIMERS_API int timers_inspect(timers_engine *e, const char *topic,
                              const char *id, bool *found,
                              timers_timer_info *info);
TIMERS_API void timers_timer_info_free(timers_timer_info *info);

/* Depth and forecast of one shard, read from Redis at time `now`. */
typedef struct timers_shard_depth {
  uint32_t shard;
  uint64_t pending;        /* members of the sorted set                 */
  uint64_t overdue;        /* score <= now (due, not yet claimed)       */
  double oldest;           /* earliest score; 0 when empty              */
  uint64_t due_1m, due_1h, due_1d; /* score in (now, now + window]      */
  uint64_t dead;           /* in the dead-letter set                    */
} timers_shard_depth;

typedef struct timers_topic_depth {
  uint32_t shards;
  double now;
  timers_shard_depth total;  /* sums; oldest = earliest of all          */
  timers_shard_depth *per_shard; /* owned, `shards` entries             */
} timers_topic_depth;

/* One pipelined round trip over the topic's shards. Free with
 * timers_topic_depth_free. Thread-safe. */
TIMERS_API int timers_topic_depth_get(timers_engine *e, const char *topic,
                                      timers_topic_depth **out);
TIMERS_API void timers_topic_depth_free(timers_topic_depth *d);

/* The stats in Prometheus text exposition format (version 0.0.4): counters
 * per topic and shard, contention counters, the lateness histogram.
 * Writes at most cap bytes (NUL-terminated when cap > 0) and returns the
 * full length, like snprintf: call with cap 0 to size the buffer.
 * Thread-safe. */
TIMERS_API size_t timers_stats_prometheus(const timers_stats *s, char *buf,
                                          size_t cap);
/* The same for the depths of n topics (depths[i] of topics[i]): gauges
 * per topic and shard (pending, overdue, oldest overdue age in seconds,
 * due within 1m/1h/1d), each metric family once. */
TIMERS_API size_t timers_topic_depth_prometheus(
    const timers_topic_depth *const *depths, const char *const *topics,
    size_t n, char *buf, size_t cap);

/* ------------------------------------------------------------------ misc */

/* The shard of an id among n: FNV-1a 32-bit of the id's bytes modulo n.
 * Stable and documented so other clients can find timers. */
TIMERS_API uint32_t timers_shard_of(const char *id, size_t id_len,
                                    uint32_t n);

/* Wall clock, Unix seconds with microseconds. Thread-safe. */
TIMERS_API double timers_now(void);

/* Memory functions of the library (as hiredisSetAllocators), e.g. to count
 * or to fail allocations in tests. Call before any other function of the
 * library, with every member set; NULL restores malloc and friends. Not
 * thread-safe. */
typedef struct timers_allocator {
  void *(*malloc_fn)(size_t size);
  void *(*calloc_fn)(size_t n, size_t size);
  void *(*realloc_fn)(void *p, size_t size);
  void (*free_fn)(void *p);
} timers_allocator;
TIMERS_API int timers_set_allocator(const timers_allocator *a);

#ifdef __cplusplus
}
#endif
#endif /* TIMERS_H */
