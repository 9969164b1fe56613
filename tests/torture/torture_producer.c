/*
 * torture_producer.c - the producer role: a seeded stream of schedules
 * (single and batches of 2..500 mixing topics, caller-chosen and generated
 * ids), replaces (an existing id, a new payload version and time) and
 * cancels, racing with the engines that fire them.
 *
 * Every call is logged before it is made (intent) and after it returns
 * (result), one write(2) per batch each way. Each call schedules its own
 * payload versions: an application-level retry of a failed call is a new
 * call with new versions (a replace of the same ids), so a version belongs
 * to exactly one call and the oracle can tell an engine-internal retry
 * that resurrects a fired timer from a second call.
 *
 * A producer owns its keys (ids carry its index and incarnation), so the
 * operations on one key are sequential in time.
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "torture.h"

#define BATCH_MAX 500
#define POOL 256 /* recent keys, for replaces and cancels */

typedef struct pool_key {
  int topic;
  char id[TT_ID_CAP];
} pool_key;

typedef struct producer {
  tt_plan plan;
  int index, inc;
  int fd;
  timers_engine *e;
  tt_rng ops;      /* the op stream: a function of the seed only        */
  tt_rng retries;  /* decisions that depend on results (timing)         */
  uint32_t vseq;   /* versions made                                     */
  uint32_t opseq;  /* calls made                                        */
  uint32_t idseq;  /* caller-chosen ids made                            */
  pool_key pool[POOL];
  size_t npool;    /* total ever added; pool[npool % POOL] is next      */
  double rate;     /* timers per second                                 */
  double paced;    /* monotonic time the timers made so far are due by  */
  double until;    /* wall time: no new operation after it              */
  bool single;     /* every batch on one topic                          */
} producer;

static volatile sig_atomic_t stop_flag;
static void on_term(int sig) { (void)sig, stop_flag = 1; }

static bool stopping(const producer *p) {
  return stop_flag || tt_now() >= p->until;
}

/* Sleeps in slices so SIGTERM ends it early. */
static void nap(const producer *p, double seconds) {
  double end = tt_mono() + seconds;
  while (!stopping(p) && tt_mono() < end) {
    double left = end - tt_mono();
    tt_sleep(left < 0.05 ? left : 0.05);
  }
}

/* Keeps the rate (paced, not slept after each call, so the time a call
 * takes counts): the next call waits until `seconds` of budget past the
 * last one. A producer more than a second behind does not burst. */
static void pace(producer *p, double seconds) {
  double now = tt_mono();
  if (p->paced < now - 1) p->paced = now - 1;
  p->paced += seconds;
  if (p->paced > now) nap(p, p->paced - now);
}

/* ------------------------------------------------------------- timers */

/* One timer of a call and the storage its pointers refer to. */
typedef struct item {
  timers_timer t;
  timers_header headers[2];
  char vhex[24];
  char id[TT_ID_CAP];
  char payload[TT_PAYLOAD_MAX];
  int topic;
  bool generated, replace;
  uint64_t version;
} item;

/* Ids here are at most TT_ID_CAP - 1 bytes (ours are far shorter). */
static void copy_id(char *dst, const char *src) {
  size_t n = strnlen(src, TT_ID_CAP - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static int pick_topic(producer *p) {
  int total = 0;
  for (int i = 0; i < p->plan.ntopics; i++) total += p->plan.topics[i].weight;
  int x = (int)tt_rng_below(&p->ops, (uint64_t)total);
  for (int i = 0; i < p->plan.ntopics; i++) {
    x -= p->plan.topics[i].weight;
    if (x < 0) return i;
  }
  return 0;
}

/* Caller-chosen ids: unique per producer incarnation, some with
 * punctuation (braces, colons, quotes) that must survive as members. */
static void make_id(producer *p, char *out) {
  static const char punct[] = "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  int n = snprintf(out, TT_ID_CAP, "p%d.%d-%u", p->index, p->inc, p->idseq++);
  if (tt_rng_chance(&p->ops, 120)) {
    out[n++] = punct[tt_rng_below(&p->ops, sizeof punct - 1)];
    out[n++] = punct[tt_rng_below(&p->ops, sizeof punct - 1)];
    out[n] = '\0';
  }
}

/* Due at once, within a few hundred ms, within seconds, or later. */
static double pick_delay(producer *p) {
  int x = (int)tt_rng_below(&p->ops, 1000);
  if (x < 300) return 0;
  if (x < 450) return tt_rng_uniform(&p->ops, 0, 0.3);
  if (x < 850) return tt_rng_uniform(&p->ops, 0.3, 5);
  return tt_rng_uniform(&p->ops, 5, 12);
}

static void fill_item(producer *p, item *it, int topic, const char *id,
                      double delay, bool replace) {
  memset(it, 0, sizeof *it);
  it->topic = topic;
  it->replace = replace;
  it->version = tt_version_make(p->index, p->inc, ++p->vseq);
  it->generated = id == NULL;
  if (id) copy_id(it->id, id);
  size_t filler = tt_rng_chance(&p->ops, 100) ? tt_rng_below(&p->ops, 300)
                                              : tt_rng_below(&p->ops, 40);
  size_t len = tt_payload_encode(it->version, topic, filler, it->payload,
                                 sizeof it->payload);
  snprintf(it->vhex, sizeof it->vhex, "%016" PRIx64, it->version);
  it->headers[0] = (timers_header){"v", it->vhex};
  it->headers[1] = (timers_header){"x-producer", "torture"};
  timers_timer *t = &it->t;
  t->topic = p->plan.topics[topic].name;
  t->id = id ? it->id : NULL;
  t->payload = it->payload;
  t->payload_len = len;
  t->headers = it->headers;
  t->header_count = tt_rng_chance(&p->ops, 300) ? 2 : 1;
  /* Mostly absolute times; some relative (the logged time is then a lower
   * bound of the real one, which keeps the early-firing check sound). */
  if (tt_rng_chance(&p->ops, 100)) {
    t->has_activate_in = true;
    t->activate_in = delay;
  } else {
    t->has_activate_at = true;
    t->activate_at = tt_now() + delay;
  }
}

static double item_at(const item *it, double now) {
  return it->t.has_activate_at ? it->t.activate_at : now + it->t.activate_in;
}

static void pool_add(producer *p, int topic, const char *id) {
  pool_key *k = &p->pool[p->npool++ % POOL];
  k->topic = topic;
  copy_id(k->id, id);
}

/* One of the recent keys (the last 32 mostly: they race with firing). */
static const pool_key *pool_pick(producer *p) {
  if (!p->npool) return NULL;
  size_t have = p->npool < POOL ? p->npool : POOL;
  size_t span = tt_rng_chance(&p->ops, 700) && have > 32 ? 32 : have;
  size_t back = 1 + tt_rng_below(&p->ops, span);
  return &p->pool[(p->npool - back) % POOL];
}

/* -------------------------------------------------------------- calls */

static void log_intents(producer *p, item *items, size_t n, uint32_t op) {
  static tt_rec recs[BATCH_MAX];
  double now = tt_now();
  for (size_t k = 0; k < n; k++) {
    tt_rec *r = &recs[k];
    tt_rec_init(r, TT_REC_SCHED_INTENT);
    r->t = now;
    r->role = TT_ROLE_PRODUCER;
    r->topic = (uint8_t)items[k].topic;
    r->flags = (uint8_t)((items[k].generated ? TT_F_GENERATED : 0) |
                         (items[k].replace ? TT_F_REPLACE : 0));
    r->version = items[k].version;
    r->seq = op;
    r->index = (uint32_t)k;
    r->aux = n;
    r->at = item_at(&items[k], now);
    copy_id(r->id, items[k].id);
  }
  tt_log_append(p->fd, recs, n);
}

static void log_results(producer *p, item *items, size_t n, uint32_t op,
                        int rc, const char *ids) {
  static tt_rec recs[BATCH_MAX];
  for (size_t k = 0; k < n; k++) {
    tt_rec *r = &recs[k];
    tt_rec_init(r, TT_REC_SCHED_RESULT);
    r->role = TT_ROLE_PRODUCER;
    r->topic = (uint8_t)items[k].topic;
    r->flags = (uint8_t)(items[k].generated ? TT_F_GENERATED : 0);
    r->version = items[k].version;
    r->seq = op;
    r->index = (uint32_t)k;
    r->value = rc;
    const char *id = items[k].id;
    if (items[k].generated && rc == TIMERS_OK)
      id = ids + k * (TIMERS_ID_MAX + 1);
    copy_id(r->id, id);
  }
  tt_log_append(p->fd, recs, n);
}

static item items_g[BATCH_MAX];
static char ids_g[BATCH_MAX * (TIMERS_ID_MAX + 1)];

/* Schedules items_g[0..n) in one call (batch when n > 1), logs both ways,
 * adds the known ids to the pool. Returns the call's rc. */
static int schedule_items(producer *p, size_t n) {
  timers_timer ts[BATCH_MAX];
  for (size_t k = 0; k < n; k++) ts[k] = items_g[k].t;
  uint32_t op = ++p->opseq;
  log_intents(p, items_g, n, op);
  int rc = n == 1 ? timers_schedule(p->e, ts, ids_g, TIMERS_ID_MAX + 1)
                  : timers_schedule_batch(p->e, ts, n, ids_g);
  log_results(p, items_g, n, op, rc, ids_g);
  if (rc == TIMERS_OK)
    for (size_t k = 0; k < n; k++)
      pool_add(p, items_g[k].topic, items_g[k].generated
                                        ? ids_g + k * (TIMERS_ID_MAX + 1)
                                        : items_g[k].id);
  return rc;
}

/* An application's retry of a failed call: the caller-chosen ids again,
 * with new versions (generated ids cannot be retried safely: a second
 * call would make a second timer). Up to two retries, half the time. */
static void maybe_retry(producer *p, size_t n, int rc) {
  for (int round = 0; round < 2 && rc != TIMERS_OK && rc != TIMERS_EINVAL;
       round++) {
    if (!tt_rng_chance(&p->retries, 500) || stopping(p)) return;
    nap(p, tt_rng_uniform(&p->retries, 0.05, 0.5));
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
      if (items_g[k].generated) continue;
      item old = items_g[k];
      double delay = item_at(&old, tt_now()) - tt_now();
      fill_item(p, &items_g[m], old.topic, old.id, delay > 0 ? delay : 0, true);
      m++;
    }
    if (m == 0) return;
    n = m;
    rc = schedule_items(p, n);
  }
}

static bool in_batch(const item *items, size_t n, int topic, const char *id) {
  for (size_t k = 0; k < n; k++)
    if (!items[k].generated && items[k].topic == topic &&
        strcmp(items[k].id, id) == 0)
      return true;
  return false;
}

static void op_batch(producer *p) {
  /* Log-uniform size 2..500: many small batches, some huge. */
  double lg = tt_rng_uniform(&p->ops, 0.7, 6.22);
  size_t n = (size_t)exp(lg);
  if (n < 2) n = 2;
  if (n > BATCH_MAX) n = BATCH_MAX;
  bool same_time = tt_rng_chance(&p->ops, 400); /* a burst due together */
  double base = pick_delay(p);
  size_t chosen_from_pool = 0;
  int batch_topic = pick_topic(p);
  for (size_t k = 0; k < n; k++) {
    int topic = p->single ? batch_topic : pick_topic(p);
    double delay = same_time ? base : pick_delay(p);
    char id[TT_ID_CAP];
    const char *use = NULL;
    bool replace = false;
    const pool_key *pk = p->npool > 64 && chosen_from_pool < 8 &&
                                 tt_rng_chance(&p->ops, 30)
                             ? &p->pool[(p->npool - 33 - chosen_from_pool) % POOL]
                             : NULL;
    if (pk && !in_batch(items_g, k, pk->topic, pk->id) &&
        (!p->single || pk->topic == batch_topic)) {
      /* A replace inside a batch (each id at most once per batch). */
      snprintf(id, sizeof id, "%s", pk->id);
      topic = pk->topic, use = id, replace = true;
      chosen_from_pool++;
    } else if (tt_rng_chance(&p->ops, 600)) {
      make_id(p, id);
      use = id;
    }
    fill_item(p, &items_g[k], topic, use, delay, replace);
  }
  int rc = schedule_items(p, n);
  maybe_retry(p, n, rc);
  pace(p, (double)n / p->rate < 3 ? (double)n / p->rate : 3);
}

static void op_single(producer *p) {
  char id[TT_ID_CAP];
  bool chosen = tt_rng_chance(&p->ops, 600);
  if (chosen) make_id(p, id);
  fill_item(p, &items_g[0], pick_topic(p), chosen ? id : NULL, pick_delay(p),
            false);
  int rc = schedule_items(p, 1);
  maybe_retry(p, 1, rc);
  pace(p, 1.0 / p->rate);
}

/* A new version of a recent key, due at once or within a few seconds:
 * it races with the firing of the old version. */
static void op_replace(producer *p, bool due_now) {
  const pool_key *k = pool_pick(p);
  if (!k) return;
  char id[TT_ID_CAP];
  snprintf(id, sizeof id, "%s", k->id);
  double delay = due_now ? tt_rng_uniform(&p->ops, 0, 0.2)
                         : tt_rng_uniform(&p->ops, 0.2, 4);
  fill_item(p, &items_g[0], k->topic, id, delay, true);
  int rc = schedule_items(p, 1);
  maybe_retry(p, 1, rc);
  pace(p, 1.0 / p->rate);
}

static void op_cancel(producer *p) {
  const pool_key *k = pool_pick(p);
  if (!k) return;
  tt_rec r;
  tt_rec_init(&r, TT_REC_CANCEL_INTENT);
  r.role = TT_ROLE_PRODUCER;
  r.topic = (uint8_t)k->topic;
  r.seq = ++p->opseq;
  snprintf(r.id, sizeof r.id, "%s", k->id);
  tt_log_append(p->fd, &r, 1);
  bool removed = false;
  int rc = timers_cancel(p->e, p->plan.topics[k->topic].name, k->id, &removed);
  tt_rec res = r;
  res.kind = TT_REC_CANCEL_RESULT;
  res.t = tt_now();
  res.value = rc;
  res.flags = removed ? TT_F_REMOVED : 0;
  tt_log_append(p->fd, &res, 1);
}

static void run(producer *p) {
  while (!stopping(p)) {
    int x = (int)tt_rng_below(&p->ops, 1000);
    if (x < 300)
      op_batch(p);
    else if (x < 500)
      op_single(p);
    else if (x < 620)
      op_replace(p, false);
    else if (x < 720)
      op_replace(p, true);
    else if (x < 880)
      op_cancel(p);
    else
      nap(p, tt_rng_uniform(&p->ops, 0.01, 0.2));
  }
}

/* --------------------------------------------------------------- setup */

static const char *arg_value(int argc, char **argv, const char *name) {
  for (int i = 0; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

/* Retry and timeout settings an application might choose: some give up
 * fast, some wait a stall out, some time out and retry inside the call. */
static int open_engine(producer *p, const char *redis, int retry_ms,
                       int timeout_ms) {
  timers_config cfg;
  timers_config_init(&cfg);
  cfg.redis = redis;
  cfg.key_prefix = TT_KEY_PREFIX;
  cfg.retry_ms = retry_ms;
  cfg.command_timeout_ms = timeout_ms;
  int rc = timers_engine_create(&cfg, &p->e);
  for (int i = 0; rc == TIMERS_OK && i < p->plan.ntopics; i++) {
    timers_subscribe_options o = {.lease_ms = p->plan.topics[i].lease_ms,
                                  .shards = p->plan.topics[i].shards};
    rc = timers_declare(p->e, p->plan.topics[i].name, &o);
  }
  if (rc != TIMERS_OK) fprintf(stderr, "producer: %s\n", timers_last_error());
  return rc;
}

int tt_producer_main(int argc, char **argv) {
  static producer p;
  const char *dir = arg_value(argc, argv, "--dir");
  const char *redis = arg_value(argc, argv, "--redis");
  const char *seed = arg_value(argc, argv, "--seed");
  const char *index = arg_value(argc, argv, "--index");
  const char *inc = arg_value(argc, argv, "--inc");
  const char *rate = arg_value(argc, argv, "--rate");
  const char *until = arg_value(argc, argv, "--until");
  if (!dir || !redis || !seed || !index || !inc || !rate || !until) {
    fprintf(stderr, "producer: --dir --redis --seed --index --inc --rate "
                    "--until required\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct sigaction sa = {.sa_handler = on_term, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  tt_plan_init(&p.plan, strtoull(seed, NULL, 10));
  p.plan.ntopics--; /* producers never schedule on the poison topic */
  p.index = atoi(index);
  p.inc = atoi(inc);
  p.rate = atof(rate) > 0 ? atof(rate) : 50;
  p.paced = tt_mono();
  p.until = atof(until);
  for (int i = 0; i < argc; i++) p.single |= strcmp(argv[i], "--single-topic") == 0;
  tt_rng_seed(&p.ops, p.plan.seed, 0x70726f64u + (uint64_t)p.index,
              (uint64_t)p.inc);
  tt_rng_seed(&p.retries, p.plan.seed, 0x72657472u + (uint64_t)p.index,
              (uint64_t)p.inc);
  char path[512];
  snprintf(path, sizeof path, "%s/logs/producer-%d-%d.bin", dir, p.index,
           p.inc);
  if ((p.fd = tt_log_open(path)) < 0) return 2;
  tt_rec hello;
  tt_rec_init(&hello, TT_REC_HELLO);
  hello.role = TT_ROLE_PRODUCER;
  hello.attempt = hello.index = (uint32_t)p.index;
  hello.seq = (uint32_t)p.inc;
  tt_log_append(p.fd, &hello, 1);

  static const int retry_ms[] = {200, 1000, 1000, 3000};
  static const int timeout_ms[] = {250, 1000, 3000};
  int retry = retry_ms[tt_rng_below(&p.ops, 4)];
  int timeout = timeout_ms[tt_rng_below(&p.ops, 3)];
  if (open_engine(&p, redis, retry, timeout) != TIMERS_OK) return 3;
  run(&p);
  timers_engine_destroy(p.e);
  close(p.fd);
  return 0;
}
