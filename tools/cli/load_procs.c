/*
 * load_procs.c - the processes of `timers load`: the shared memory, the fire
 * handler, the engines, and the forked children.
 *
 * Every fire is recorded by id, never assumed: ids are "<run tag>-<index>"
 * and the handler counts deliveries per index in a table that lives in
 * shared memory (mmap MAP_SHARED | MAP_ANONYMOUS, made before any fork), with
 * the lateness of the first delivery (handler start minus activate_at).
 *
 * Children are forked before any engine exists (so no thread or Redis
 * connection crosses a fork); each runs an engine subscribed to every topic
 * with the same config until the parent raises the shared stop flag (or a
 * signal arrives), then writes its engine totals into its slot.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define LOAD_READY_S 30.0        /* children must start their engines     */
#define LOAD_REAP_S 40.0         /* children must stop (drain + margin)   */

/* ------------------------------------------------------- shared memory */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Zero-filled by the kernel. */
int load_shared_map(load_ctx *c, uint64_t n) {
  size_t head = align64(sizeof(load_shared));
  size_t counts = align64((size_t)n * sizeof(atomic_uint));
  c->map_len = head + counts + (size_t)n * sizeof(float);
  c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (c->map == MAP_FAILED) {
    fprintf(stderr, "timers load: mmap %zu bytes: %s\n", c->map_len,
            strerror(errno));
    return c->map = NULL, 1;
  }
  char *base = c->map;
  c->sh = c->map;
  c->counts = (atomic_uint *)(void *)(base + head);
  c->late_ms = (float *)(void *)(base + head + counts);
  c->n = n;
  atomic_init(&c->sh->first_ns, UINT64_MAX);
  return 0;
}

void load_shared_unmap(load_ctx *c) {
  if (c->map) munmap(c->map, c->map_len);
  c->map = NULL;
}

/* -------------------------------------------------------------- handler */

static void fetch_min(atomic_uint_fast64_t *v, uint64_t x) {
  uint64_t cur = load64(v);
  while (x < cur && !atomic_compare_exchange_weak_explicit(
                        v, &cur, x, memory_order_relaxed, memory_order_relaxed))
    ;
}

static void fetch_max(atomic_uint_fast64_t *v, uint64_t x) {
  uint64_t cur = load64(v);
  while (x > cur && !atomic_compare_exchange_weak_explicit(
                        v, &cur, x, memory_order_relaxed, memory_order_relaxed))
    ;
}

/* The first delivery of index i alone writes its lateness; nobody reads it
 * before every engine stopped. */
static void record_fire(load_ctx *c, size_t i, double late_ms, uint64_t now) {
  load_shared *sh = c->sh;
  atomic_fetch_add_explicit(&sh->fired, 1, memory_order_relaxed);
  fetch_min(&sh->first_ns, now);
  fetch_max(&sh->last_ns, now);
  if (atomic_fetch_add_explicit(&c->counts[i], 1, memory_order_relaxed) != 0)
    return; /* a duplicate */
  c->late_ms[i] = (float)late_ms;
  atomic_fetch_add_explicit(&sh->hist[timers_lateness_bucket(late_ms / 1e3)], 1,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&sh->distinct, 1, memory_order_relaxed);
}

static timers_outcome on_fire(const timers_message *m, void *userdata) {
  load_ctx *c = userdata;
  double late_ms = (timers_now() - m->activate_at) * 1e3;
  uint64_t now = cli_mono_ns();
  long i = cli_id_index(c->tag, c->tag_len, c->n, m->id);
  if (i < 0)
    atomic_fetch_add_explicit(&c->sh->foreign, 1, memory_order_relaxed);
  else
    record_fire(c, (size_t)i, late_ms, now);
  if (c->sleep_ns > 0) {
    struct timespec ts = {c->sleep_ns / 1000000000L,
                          c->sleep_ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
  return TIMERS_ACK;
}

/* --------------------------------------------------------------- engines */

/* Subscribes topic t with its options (fire), or declares it when it has
 * options of its own (scheduling must use its shards and layout); 0 or 1. */
static int topic_add(const load_opts *o, timers_engine *e, load_ctx *c,
                     bool fire, int t) {
  char topic[LOAD_TOPIC_CAP];
  timers_subscribe_options opts;
  load_topic_name(topic, sizeof topic, t);
  bool has = load_topic_options(o, topic, &opts);
  int rc = fire ? timers_subscribe(e, topic, on_fire, c, &opts)
           : has ? timers_declare(e, topic, &opts)
                 : TIMERS_OK;
  if (rc == TIMERS_OK) return 0;
  cli_fail("load", fire ? "timers_subscribe" : "timers_declare", rc);
  return 1;
}

int load_engine_make(const load_opts *o, const char *addr, load_ctx *c,
                     bool fire, timers_engine **out) {
  timers_config cfg;
  if (o->base) cfg = *o->base;
  else timers_config_init(&cfg), cfg.log_level = TIMERS_LOG_WARN;
  cfg.redis = addr;
  cfg.shards = o->shards;
  if (o->key_prefix) cfg.key_prefix = o->key_prefix;
  if (o->pollers) cfg.pollers = o->pollers;
  if (o->workers) cfg.workers = o->workers;
  if (o->batch) cfg.claim_batch = o->batch;
  cfg.log = cli_log_to_stderr;
  int rc = timers_engine_create(&cfg, out);
  if (rc != TIMERS_OK) return cli_fail("load", "timers_engine_create", rc), 1;
  for (int t = 0; t < o->topics; t++)
    if (topic_add(o, *out, c, fire, t) != 0) return 1;
  rc = fire ? timers_engine_start(*out) : TIMERS_OK;
  if (rc != TIMERS_OK) return cli_fail("load", "timers_engine_start", rc), 1;
  return 0;
}

int load_engine_finish(timers_engine *e, load_report *slot) {
  int status = 0, rc = timers_engine_stop(e);
  if (rc != TIMERS_OK) cli_fail("load", "timers_engine_stop", rc), status = 1;
  timers_stats *s = NULL;
  rc = timers_stats_get(e, &s);
  if (rc == TIMERS_OK) {
    slot->c = s->total;
    slot->k = s->contention;
    slot->inflight = s->inflight;
  } else {
    cli_fail("load", "timers_stats_get", rc), status = 1;
  }
  timers_stats_free(s);
  timers_engine_destroy(e);
  atomic_store_explicit(&slot->state, status ? SLOT_FAILED : SLOT_REPORTED,
                        memory_order_release);
  return status;
}

/* A child: fires until the parent raises stop or a signal arrives. */
static void child_main(const load_opts *o, const char *addr, load_ctx *c,
                       int k) {
  load_report *slot = &c->sh->slots[k];
  timers_engine *e = NULL;
  int status = load_engine_make(o, addr, c, true, &e);
  if (status) {
    timers_engine_destroy(e);
    atomic_store_explicit(&slot->state, SLOT_FAILED, memory_order_release);
    exit(1);
  }
  atomic_store_explicit(&slot->state, SLOT_READY, memory_order_release);
  /* Pairs with the parent's release store of stop. */
  while (!atomic_load_explicit(&c->sh->stop, memory_order_acquire) &&
         !cli_interrupted(0.05))
    ;
  status = load_engine_finish(e, slot);
  exit(cli_signal() ? 128 + cli_signal() : status);
}

int load_children_spawn(const load_opts *o, const char *addr, load_ctx *c,
                        pid_t *pids) {
  fflush(stdout);
  fflush(stderr);
  for (int k = 0; k < o->processes; k++) {
    pids[k] = fork();
    if (pids[k] == 0) child_main(o, addr, c, k);
    if (pids[k] < 0) {
      fprintf(stderr, "timers load: fork: %s\n", strerror(errno));
      return k;
    }
  }
  return o->processes;
}

int load_children_ready(load_ctx *c, const pid_t *pids, int n) {
  double deadline = cli_mono_s() + LOAD_READY_S;
  for (;;) {
    int ready = 0;
    for (int k = 0; k < n; k++) {
      int st = atomic_load_explicit(&c->sh->slots[k].state,
                                    memory_order_acquire);
      if (st == SLOT_FAILED || waitpid(pids[k], NULL, WNOHANG) == pids[k]) {
        fprintf(stderr, "timers load: process %d could not start\n", k);
        return 1;
      }
      ready += st == SLOT_READY;
    }
    if (ready == n) return 0;
    if (cli_mono_s() > deadline) {
      fprintf(stderr, "timers load: processes not ready after %.0f s\n",
              LOAD_READY_S);
      return 1;
    }
    if (cli_interrupted(0.01)) return 1;
  }
}

int load_children_reap(load_ctx *c, const pid_t *pids, int n) {
  atomic_store_explicit(&c->sh->stop, 1, memory_order_release);
  int status = 0;
  double deadline = cli_mono_s() + LOAD_REAP_S;
  for (int k = 0; k < n; k++) {
    int st = 0;
    pid_t r;
    while ((r = waitpid(pids[k], &st, WNOHANG)) == 0 &&
           cli_mono_s() < deadline)
      cli_interrupted(0.01);
    if (r == 0) {
      fprintf(stderr, "timers load: process %d (pid %d) hangs in stop after "
              "%.0f s: killed\n", k, (int)pids[k], LOAD_REAP_S);
      kill(pids[k], SIGKILL);
      waitpid(pids[k], &st, 0);
      status = 1;
    } else if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && !cli_signal())) {
      fprintf(stderr, "timers load: process %d (pid %d) ended with %s %d\n",
              k, (int)pids[k], WIFEXITED(st) ? "status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      status = 1;
    }
  }
  return status;
}
