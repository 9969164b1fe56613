/*
 * torture_common.c - what every role of the torture test shares: the plan
 * drawn from the seed (topics, handler rules, engine shapes), randomness,
 * the payload format and the write-ahead log.
 *
 * Everything here is a pure function of the seed (and of its arguments),
 * so the driver, the engines, the producers and the oracle agree without
 * talking to each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "torture.h"

/* ------------------------------------------------ hashing, randomness */

uint64_t tt_mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t tt_hash_str(uint64_t seed, const char *s) {
  uint64_t h = 0xcbf29ce484222325ull ^ tt_mix64(seed);
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return tt_mix64(h);
}

void tt_rng_seed(tt_rng *r, uint64_t a, uint64_t b, uint64_t c) {
  r->s = tt_mix64(tt_mix64(tt_mix64(a) ^ b) ^ c);
}

uint64_t tt_rng_next(tt_rng *r) {
  r->s += 0x9e3779b97f4a7c15ull;
  return tt_mix64(r->s);
}

uint64_t tt_rng_below(tt_rng *r, uint64_t n) { return tt_rng_next(r) % n; }

double tt_rng_uniform(tt_rng *r, double lo, double hi) {
  double u = (double)(tt_rng_next(r) >> 11) / (double)(1ull << 53);
  return lo + (hi - lo) * u;
}

bool tt_rng_chance(tt_rng *r, int permille) {
  return (int)tt_rng_below(r, 1000) < permille;
}

/* ------------------------------------------------------------ the plan */

static void topic_set(tt_topic *t, const char *name, int shards, int lease,
                      int weight, int slow, int fast_max) {
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->shards = shards;
  t->lease_ms = lease;
  t->max_handler_ms = 3 * lease; /* above every planned handler */
  t->weight = weight;
  t->slow_permille = slow;
  t->fast_max_ms = fast_max;
}

/* Four to five test topics (one shard and eight shards, short leases, fast
 * and slow handlers), then the poison topic, which holds no timers. The
 * slow share is kept small: a correct engine must finish the run's work
 * well within its capacity on 2 cores, so a backlog is the engine's doing. */
void tt_plan_init(tt_plan *p, uint64_t seed) {
  tt_rng r;
  tt_rng_seed(&r, seed, 0x706c616eu, 0);
  memset(p, 0, sizeof *p);
  p->seed = seed;
  int lease1 = 1000 + 250 * (int)tt_rng_below(&r, 3); /* 1000..1500 */
  int lease2 = 1500 + 250 * (int)tt_rng_below(&r, 3); /* 1500..2000 */
  topic_set(&p->topics[0], "t0.one", 1, 1000, 30, 4, 2);
  topic_set(&p->topics[1], "t1.eight", 8, lease1, 30, 4, 5);
  topic_set(&p->topics[2], "t2.one-slow", 1, 2000, 8, 40, 20);
  /* Its slowest handlers (up to 2 x lease) outlive max_handler_ms: their
   * leases are left to run out, a duplicate the contract allows. */
  p->topics[2].max_handler_ms = 3 * 2000 / 2;
  topic_set(&p->topics[3], "t3.eight-slow", 8, lease2, 15, 15, 10);
  p->ntopics = 4;
  if (tt_rng_chance(&r, 700)) {
    int shards = 2 + (int)tt_rng_below(&r, 4);
    int lease = 1000 + 100 * (int)tt_rng_below(&r, 11);
    topic_set(&p->topics[4], "t4/mixed_x", shards, lease, 12, 20, 8);
    p->ntopics = 5;
  }
  for (int i = 0; i < p->ntopics; i++) {
    p->topics[i].nack_permille = 60 + (int)tt_rng_below(&r, 120);
    p->topics[i].reject_permille = 40 + (int)tt_rng_below(&r, 120);
    if (p->topics[i].lease_ms > p->lease_max_ms)
      p->lease_max_ms = p->topics[i].lease_ms;
  }
  const char *owned = getenv("TORTURE_OWNED");
  const char *shards = getenv("TORTURE_SHARDS");
  const char *fast = getenv("TORTURE_FAST");
  for (int i = 0; i < p->ntopics; i++) {
    p->topics[i].owned = owned && strcmp(owned, "1") == 0;
    if (fast && strcmp(fast, "1") == 0) { /* handlers return at once */
      p->topics[i].slow_permille = 0;
      p->topics[i].fast_max_ms = 0;
    }
    if (shards && atoi(shards) > 0 && p->topics[i].shards > 1)
      p->topics[i].shards = atoi(shards);
  }
  tt_topic *poison = &p->topics[p->ntopics++];
  topic_set(poison, "poison", TT_POISON_SHARDS, 1000, 0, 0, 0);
  poison->poison = true;
}

int tt_topic_index(const tt_plan *p, const char *name) {
  for (int i = 0; i < p->ntopics; i++)
    if (strcmp(p->topics[i].name, name) == 0) return i;
  return -1;
}

static int pick(tt_rng *r, const int *v, size_t n) {
  return v[tt_rng_below(r, n)];
}

/* Shapes vary per incarnation: more workers than cores, tiny and huge
 * rings, claim batches of 1 to 256, short and long idle sleeps. */
void tt_engine_shape_of(const tt_plan *p, int index, int inc, bool gentle,
                        tt_engine_shape *out) {
  static const int workers[] = {1, 2, 2, 3, 4, 4, 8, 16};
  static const int rings[] = {16, 64, 256, 1024, 4096};
  static const int batches[] = {1, 8, 32, 64, 256, 256};
  static const int sleeps[] = {500, 5000, 30000};
  static const int timeouts[] = {1500, 5000, 5000};
  static const int inflight[] = {0, 0, 0, 0, 8, 64};
  tt_rng r;
  tt_rng_seed(&r, p->seed, 0x656e67u + (uint64_t)index, (uint64_t)inc);
  out->pollers = tt_rng_chance(&r, 300) ? 2 : 1;
  out->workers = pick(&r, workers, sizeof workers / sizeof *workers);
  out->ring_capacity = pick(&r, rings, sizeof rings / sizeof *rings);
  out->claim_batch = pick(&r, batches, sizeof batches / sizeof *batches);
  out->max_sleep_ms = pick(&r, sleeps, sizeof sleeps / sizeof *sleeps);
  out->command_timeout_ms = pick(&r, timeouts, sizeof timeouts / sizeof *timeouts);
  /* Mostly longer than any handler (2 x lease); sometimes shorter than a
   * lease, as an application in a hurry sets it: stop() must still commit
   * what the handlers it lets finish answer. */
  static const int drains[] = {500, 2000, 10000, 10000};
  out->drain_timeout_ms = pick(&r, drains, sizeof drains / sizeof *drains);
  out->max_inflight = pick(&r, inflight, sizeof inflight / sizeof *inflight);
  if (gentle)
    *out = (tt_engine_shape){.pollers = 1, .workers = 4, .ring_capacity = 16,
                             .claim_batch = 1, .max_sleep_ms = 5000,
                             .command_timeout_ms = 5000,
                             .drain_timeout_ms = 10000};
  const char *fast = getenv("TORTURE_FAST");
  if (fast && strcmp(fast, "1") == 0) { /* the library's defaults */
    timers_config c;
    timers_config_init(&c);
    *out = (tt_engine_shape){.pollers = c.pollers, .workers = c.workers,
                             .ring_capacity = c.ring_capacity,
                             .claim_batch = c.claim_batch,
                             .max_sleep_ms = c.max_sleep_ms,
                             .command_timeout_ms = c.command_timeout_ms,
                             .drain_timeout_ms = c.drain_timeout_ms};
  }
}

/* ------------------------------------------------------ handler rules */

static uint64_t rule_hash(const tt_plan *p, const char *id, uint32_t attempt,
                          uint64_t salt) {
  return tt_mix64(tt_hash_str(p->seed, id) ^ tt_mix64(attempt * 0x1000193ull + salt));
}

timers_outcome tt_outcome_for(const tt_plan *p, int topic, const char *id,
                              uint32_t attempt) {
  const tt_topic *t = &p->topics[topic];
  if (attempt >= 1 && attempt <= TT_NACK_MAX_ATTEMPT &&
      (int)(rule_hash(p, id, attempt, 1) % 1000) < t->nack_permille)
    return TIMERS_NACK;
  /* The final outcome does not depend on the attempt: every attempt that
   * does not NACK answers the same. */
  return (int)(rule_hash(p, id, 0, 2) % 1000) < t->reject_permille
             ? TIMERS_REJECT : TIMERS_ACK;
}

int tt_handler_ms_for(const tt_plan *p, int topic, const char *id,
                      uint32_t attempt) {
  const tt_topic *t = &p->topics[topic];
  uint64_t h = rule_hash(p, id, attempt, 3);
  if ((int)(h % 1000) < t->slow_permille)
    return (int)((h >> 20) % (uint64_t)(2 * t->lease_ms + 1));
  return (int)((h >> 20) % (uint64_t)(t->fast_max_ms + 1));
}

/* ------------------------------------------------------------- payload */

static uint32_t fnv1a32(const void *data, size_t n) {
  const unsigned char *b = data;
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x01000193u;
  return h;
}

#define TT_PAYLOAD_HEAD 45 /* "TT1 v=%016x t=%02d n=%03u c=%08x;" */

static void filler_fill(uint64_t version, unsigned char *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (unsigned char)(tt_mix64(version * 131 + i) & 0xff);
}

size_t tt_payload_encode(uint64_t version, int topic, size_t filler,
                         char *out, size_t cap) {
  if (filler > TT_PAYLOAD_MAX - TT_PAYLOAD_HEAD - 1)
    filler = TT_PAYLOAD_MAX - TT_PAYLOAD_HEAD - 1;
  if (cap < TT_PAYLOAD_HEAD + filler + 1) return 0;
  unsigned char *body = (unsigned char *)out + TT_PAYLOAD_HEAD;
  filler_fill(version, body, filler);
  char head[TT_PAYLOAD_HEAD + 1];
  snprintf(head, sizeof head, "TT1 v=%016" PRIx64 " t=%02d n=%03zu c=%08x;",
           version, topic, filler, fnv1a32(body, filler));
  memcpy(out, head, TT_PAYLOAD_HEAD);
  return TT_PAYLOAD_HEAD + filler;
}

bool tt_payload_decode(const void *data, size_t len, uint64_t *version,
                       int *topic) {
  if (len < TT_PAYLOAD_HEAD) return false;
  char head[TT_PAYLOAD_HEAD + 1];
  memcpy(head, data, TT_PAYLOAD_HEAD);
  head[TT_PAYLOAD_HEAD] = '\0';
  uint64_t v;
  int t;
  unsigned n, c;
  if (sscanf(head, "TT1 v=%16" SCNx64 " t=%2d n=%3u c=%8x;", &v, &t, &n, &c) != 4)
    return false;
  if (head[TT_PAYLOAD_HEAD - 1] != ';' || len != TT_PAYLOAD_HEAD + n)
    return false;
  const unsigned char *body = (const unsigned char *)data + TT_PAYLOAD_HEAD;
  unsigned char want[TT_PAYLOAD_MAX];
  filler_fill(v, want, n);
  if (fnv1a32(body, n) != c || memcmp(body, want, n) != 0) return false;
  *version = v;
  *topic = t;
  return true;
}

/* ------------------------------------------------------------- records */

static const char *const fault_names[TT_FAULT_COUNT] = {
    [TT_FAULT_ENGINE_KILL] = "engine_sigkill",
    [TT_FAULT_ENGINE_STOP] = "engine_sigstop",
    [TT_FAULT_ENGINE_RESTART] = "engine_clean_restart",
    [TT_FAULT_REDIS_STALL] = "redis_sigstop",
    [TT_FAULT_REDIS_KILL] = "redis_sigkill_restart",
    [TT_FAULT_CLIENT_KILL] = "client_kill",
    [TT_FAULT_MAXMEMORY] = "maxmemory_noeviction",
    [TT_FAULT_POISON] = "wrong_type_key",
    [TT_FAULT_PRODUCER_KILL] = "producer_sigkill",
    [TT_FAULT_PRODUCER_RESTART] = "producer_clean_restart",
};

const char *tt_fault_name(int f) {
  return f >= 0 && f < TT_FAULT_COUNT ? fault_names[f] : "?";
}

bool tt_fault_is_redis(int f) {
  return f == TT_FAULT_REDIS_STALL || f == TT_FAULT_REDIS_KILL ||
         f == TT_FAULT_CLIENT_KILL || f == TT_FAULT_MAXMEMORY ||
         f == TT_FAULT_POISON;
}

int tt_log_open(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fprintf(stderr, "torture: open %s: %s\n", path, strerror(errno));
  return fd;
}

static uint32_t rec_crc(const tt_rec *r) {
  tt_rec copy = *r;
  copy.crc = 0;
  return fnv1a32(&copy, sizeof copy);
}

bool tt_rec_valid(const tt_rec *r) {
  return r->magic == TT_MAGIC && r->crc == rec_crc(r);
}

void tt_rec_init(tt_rec *r, tt_kind kind) {
  memset(r, 0, sizeof *r);
  r->kind = (uint8_t)kind;
  r->pid = (int32_t)getpid();
  r->t = tt_now();
}

void tt_log_append(int fd, tt_rec *recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    recs[i].magic = TT_MAGIC;
    recs[i].crc = 0;
    recs[i].crc = rec_crc(&recs[i]);
  }
  size_t len = n * sizeof *recs;
  ssize_t w;
  do {
    w = write(fd, recs, len);
  } while (w < 0 && errno == EINTR);
  if (w != (ssize_t)len) {
    /* A short append would misalign every later record of this file. */
    fprintf(stderr, "torture: log write failed (%zd of %zu bytes): %s\n", w,
            len, w < 0 ? strerror(errno) : "short write");
    abort();
  }
}

/* ---------------------------------------------------------------- misc */

double tt_now(void) { return timers_now(); }

double tt_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tt_sleep(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
