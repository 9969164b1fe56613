/*
 * load.h - private to `timers load` (tools/cli/load*.c).
 *
 * load.c runs the test (see its design note): it schedules, drains and
 * hands over to the report. load_options.c parses the flags and the
 * --config file (engine settings and the topics' [topic load.N] sections).
 * load_procs.c owns the shared memory every process records fires in, the
 * fire handler, the engines, and the forked children. load_report.c turns
 * the shared counts into the live status line and the final report (text
 * or JSON).
 *
 * Not thread-safe unless stated: everything here runs on the main thread
 * of its process, except the fire handler (load_procs.c), which runs on the
 * engine's workers and touches only the shared memory.
 */
#ifndef TIMERS_CLI_LOAD_H
#define TIMERS_CLI_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common.h"
#include "timers.h"

#define LOAD_TIMERS_MAX 50000000 /* 8 bytes of shared memory per timer     */
#define LOAD_PROCESSES_MAX 64
#define LOAD_TOPIC_CAP 24
#define LOAD_ID_CAP 48

/* ---------------------------------------------------------------- options */

typedef enum load_dist { DIST_FIXED, DIST_UNIFORM, DIST_EXP } load_dist;

typedef struct load_delay {
  load_dist dist;
  double a, b; /* seconds: fixed a; uniform [a, b]; exp mean a */
  const char *text;
} load_delay;

/* The strings point into argv or into settings, which outlive the run. */
typedef struct load_opts {
  const char *redis, *key_prefix, *handler_text, *config;
  const timers_config *base; /* from --config; NULL: the defaults */
  const timers_settings *settings; /* --config's; NULL without it  */
  double rate, duration, grace, lead, handler_sleep; /* seconds, /s */
  load_delay delay;
  long burst; /* 0: rate mode */
  int topics, shards, pollers, workers, batch, sched_batch, processes;
  bool json, progress;
  bool rate_set, duration_set, delay_set, lead_set;
  bool shards_set; /* --shards given: it beats the topics' sections */
} load_opts;

/* Parses argv into o (o needs no initialisation). Returns 0, 1 when
 * --help was printed, or 2 on bad usage (with a message on stderr). */
int load_options_parse(int argc, char **argv, load_opts *o);

/* With --config, loads the file into *s (the caller frees it with
 * timers_settings_free after the run; NULL without --config) and fills
 * what no flag set: Redis address, shards, pollers, workers, claim batch,
 * key prefix. Returns 0, or 1 with a message on stderr. */
int load_options_config(load_opts *o, timers_settings **s);

/* Topic t's name, "load.<t>". */
void load_topic_name(char *buf, size_t cap, int t);

/* The subscribe options of topic: its [topic NAME] section of --config
 * (lease_ms, max_inflight, shards, layout), a --shards flag beating the
 * section's shards. False when the topic has no section (the engine's
 * defaults apply). */
bool load_topic_options(const load_opts *o, const char *topic,
                        timers_subscribe_options *opts);

/* How many timers the run schedules. */
uint64_t load_timer_count(const load_opts *o);

/* ---------------------------------------------------------- shared memory */

enum { SLOT_STARTING, SLOT_READY, SLOT_FAILED, SLOT_REPORTED };

/* One engine's totals, written by its process after the engine stopped and
 * published by the release store of state (the parent also reads them only
 * after waitpid). */
typedef struct load_report {
  timers_counters c;
  timers_contention k;
  uint64_t inflight;
  atomic_int state;
} load_report;

/* The shared memory header. Fire counters are relaxed: they are displayed,
 * and the final figures are read after every engine stopped (thread join or
 * waitpid order those reads after all writes). */
typedef struct load_shared {
  atomic_uint_fast64_t fired, distinct, foreign;
  atomic_uint_fast64_t first_ns, last_ns; /* monotonic, of our fires    */
  atomic_uint_fast64_t hist[TIMERS_LATENCY_BUCKETS]; /* live lateness   */
  atomic_int stop;                        /* parent -> children, release */
  load_report slots[LOAD_PROCESSES_MAX + 1]; /* + the parent's scheduler */
} load_shared;

/* What a process's handler needs; copied into each child by fork. */
typedef struct load_ctx {
  load_shared *sh;
  atomic_uint *counts; /* n deliveries per index                       */
  float *late_ms;      /* n lateness of the first delivery, ms         */
  void *map;
  size_t map_len;
  char tag[16];
  size_t tag_len;
  uint64_t n;
  long sleep_ns;
} load_ctx;

static inline uint64_t load64(atomic_uint_fast64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* Maps the header and the per-index tables for n timers, zero-filled, before
 * any fork; 0, or 1 with a message. Unmap accepts an unmapped c. */
int load_shared_map(load_ctx *c, uint64_t n);
void load_shared_unmap(load_ctx *c);

/* ---------------------------------------------------------------- engines */

/* Creates an engine on addr; with fire set, subscribes every topic (c is
 * the handler's userdata) and starts it, else only declares the topics
 * that have options (for scheduling). 0, or 1 with a message (*out may
 * then be an engine to destroy). */
int load_engine_make(const load_opts *o, const char *addr, load_ctx *c,
                     bool fire, timers_engine **out);

/* Stops e, writes its totals into slot, destroys it; 0 or 1. */
int load_engine_finish(timers_engine *e, load_report *slot);

/* Forks o->processes children that each run a firing engine until the stop
 * flag; returns how many were started. */
int load_children_spawn(const load_opts *o, const char *addr, load_ctx *c,
                        pid_t *pids);
/* Waits until every child's engine runs; 0, or 1 if one failed or died. */
int load_children_ready(load_ctx *c, const pid_t *pids, int n);
/* Raises stop and reaps every child (killing one that hangs); 0, or 1 if
 * one failed, hung or died. */
int load_children_reap(load_ctx *c, const pid_t *pids, int n);

/* -------------------------------------------------------------------- run */

/* The parent's run: scheduling progress and the live status. */
typedef struct load_state {
  const load_opts *o;
  load_ctx *c;
  timers_engine *e;
  timers_timer *ts;
  char (*ids)[LOAD_ID_CAP];
  char (*topics)[LOAD_TOPIC_CAP];
  uint64_t rng, scheduled;
  double t0, sched_s;      /* monotonic start, seconds scheduling      */
  double last_due;         /* wall: the latest activate_at written     */
  double burst_wall, burst_mono; /* T0 of a burst                      */
  int rc;                  /* of the last schedule call                */
  cli_status line;
  uint64_t line_fired;
  double line_at;
} load_state;

/* ----------------------------------------------------------------- report */

/* The live status line (stderr): print one now, or only when due. */
void load_status_print(load_state *st);
void load_status_tick(load_state *st);

/* What is about to run, and the topics' own options, on out. */
void load_print_setup(const load_opts *o, const char *addr, FILE *out);

/* Sums the engines' totals of slots[0..slots), counts duplicates and
 * losses, prints the report (text or --json) on stdout; status is the
 * run's so far. Returns the exit status. */
int load_report_finish(load_state *st, int slots, int status);

#endif
