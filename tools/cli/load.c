/*
 * load.c - `timers load`: load-test a Redis with the timer engine.
 *
 * Two modes. Rate mode schedules R timers a second for D seconds, each due
 * after a delay drawn from a distribution (fixed, uniform, exponential);
 * burst mode schedules N timers all due at one instant T0, far enough ahead
 * that scheduling ends before it, and measures how fast they drain.
 *
 * Every fire is recorded by id, never assumed, in shared memory that every
 * process writes (load_procs.c); duplicates, losses and exact lateness
 * percentiles come from it (load_report.c). The options (load_options.c)
 * take a --config file as their base, including the [topic load.N]
 * sections of the topics used.
 *
 * With --processes 1 one engine in this process schedules and fires. With
 * --processes N > 1, N children are forked before any engine exists (so no
 * thread or Redis connection crosses a fork); each runs an engine subscribed
 * to every topic with the same config, and the parent schedules through an
 * engine it never starts (scheduling needs no pollers). At the end each
 * process writes its engine totals into its slot of the shared memory.
 *
 * Signals: SIGINT/SIGTERM are blocked before the fork (cli_redis_open), so
 * every thread of every process inherits the mask; each main thread takes
 * them with sigtimedwait. The parent also raises the shared stop flag, the
 * children stop their engines, and the run reports what it saw and exits
 * 128 + signal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli.h"
#include "load.h"

/* ----------------------------------------------------------- scheduling */

static double rng_unit(uint64_t *s) { /* splitmix64, [0, 1) */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static double delay_draw(const load_delay *d, uint64_t *rng) {
  switch (d->dist) {
  case DIST_FIXED: return d->a;
  case DIST_UNIFORM: return d->a + (d->b - d->a) * rng_unit(rng);
  case DIST_EXP: return -d->a * log1p(-rng_unit(rng));
  }
  return d->a;
}

/* Writes timers [base, base + k) in one call, grouped by topic (timer i
 * belongs to topic i mod T) so that the batch has one run per topic. */
static int schedule_chunk(load_state *st, uint64_t base, size_t k) {
  const load_opts *o = st->o;
  double now = timers_now();
  size_t j = 0;
  for (int t = 0; t < o->topics; t++) {
    uint64_t first = base + (uint64_t)((t - (int)(base % (uint64_t)o->topics) +
                                        o->topics) % o->topics);
    for (uint64_t i = first; i < base + k; i += (uint64_t)o->topics, j++) {
      double at = o->burst ? st->burst_wall : now + delay_draw(&o->delay,
                                                               &st->rng);
      if (at > st->last_due) st->last_due = at;
      snprintf(st->ids[j], LOAD_ID_CAP, "%s-%llu", st->c->tag,
               (unsigned long long)i);
      st->ts[j] = (timers_timer){.topic = st->topics[t],
                                 .id = st->ids[j],
                                 .has_activate_at = true,
                                 .activate_at = at};
    }
  }
  int rc = timers_schedule_batch(st->e, st->ts, k, NULL);
  if (rc != TIMERS_OK) cli_fail("load", "timers_schedule_batch", rc);
  else st->scheduled += k;
  return rc;
}

/* Rate mode: timer i is written no earlier than t0 + i / rate; a chunk
 * (1/100 s of timers) goes out once it is due, several at once when behind. */
static int schedule_paced(load_state *st) {
  const load_opts *o = st->o;
  uint64_t n = st->c->n, chunk = (uint64_t)(o->rate / 100);
  if (chunk < 1) chunk = 1;
  if (chunk > (uint64_t)o->sched_batch) chunk = (uint64_t)o->sched_batch;
  while (st->scheduled < n && !cli_interrupted(0)) {
    double now = cli_mono_s();
    uint64_t due = (uint64_t)((now - st->t0) * o->rate) + 1;
    if (due > n) due = n;
    uint64_t want = st->scheduled + chunk < n ? st->scheduled + chunk : n;
    if (due < want) {
      double wait = st->t0 + (double)(want - 1) / o->rate - now;
      cli_interrupted(wait < 0.1 ? wait : 0.1);
    } else {
      uint64_t k = due - st->scheduled;
      if (k > (uint64_t)o->sched_batch) k = (uint64_t)o->sched_batch;
      int rc = schedule_chunk(st, st->scheduled, (size_t)k);
      if (rc != TIMERS_OK) return rc;
    }
    load_status_tick(st);
  }
  return TIMERS_OK;
}

/* Burst mode: every timer due at T0 = now + lead, written back to back. */
static int schedule_burst(load_state *st) {
  const load_opts *o = st->o;
  double lead = o->lead_set ? o->lead : 1.0 + (double)o->burst * 20e-6;
  st->burst_wall = timers_now() + lead;
  st->burst_mono = cli_mono_s() + lead;
  while (st->scheduled < st->c->n && !cli_interrupted(0)) {
    uint64_t k = st->c->n - st->scheduled;
    if (k > (uint64_t)o->sched_batch) k = (uint64_t)o->sched_batch;
    int rc = schedule_chunk(st, st->scheduled, (size_t)k);
    if (rc != TIMERS_OK) return rc;
    load_status_tick(st);
  }
  return TIMERS_OK;
}

static int schedule_all(load_state *st) {
  st->t0 = cli_mono_s();
  int rc = st->o->burst ? schedule_burst(st) : schedule_paced(st);
  st->sched_s = cli_mono_s() - st->t0;
  if (st->o->burst && cli_mono_s() > st->burst_mono)
    fprintf(stderr,
            "timers load: warning: scheduling overran the burst instant by "
            "%.3f s (fires began before it ended); use a longer --lead\n",
            cli_mono_s() - st->burst_mono);
  return rc;
}

/* Waits until every scheduled timer fired once, the last due time plus
 * grace, or a signal. */
static void drain(load_state *st) {
  double deadline =
      cli_mono_s() + (st->last_due - timers_now()) + st->o->grace;
  while (load64(&st->c->sh->distinct) < st->scheduled &&
         cli_mono_s() < deadline && !cli_interrupted(0.02))
    load_status_tick(st);
  if (st->line.tty || load64(&st->c->sh->fired) != st->line_fired)
    load_status_print(st);
  cli_status_end(&st->line);
}

/* ------------------------------------------------------------------ run */

/* Allocates the scheduling buffers and names the topics; 0 or 1. */
static int state_init(load_state *st, const load_opts *o, load_ctx *c) {
  *st = (load_state){.o = o, .c = c, .rng = cli_mono_ns() ^ 0x5eed};
  st->ts = calloc((size_t)o->sched_batch, sizeof *st->ts);
  st->ids = calloc((size_t)o->sched_batch, sizeof *st->ids);
  st->topics = calloc((size_t)o->topics, sizeof *st->topics);
  if (!st->ts || !st->ids || !st->topics) {
    fprintf(stderr, "timers load: out of memory\n");
    return 1;
  }
  for (int t = 0; t < o->topics; t++)
    load_topic_name(st->topics[t], LOAD_TOPIC_CAP, t);
  cli_status_init(&st->line, stderr, o->progress, 1.0, 1.0);
  return 0;
}

static void state_free(load_state *st) {
  free(st->ts);
  free(st->ids);
  free(st->topics);
}

/* Schedules, drains, stops the parent's engine; 0 or 1. */
static int run_phases(load_state *st, int slot) {
  st->line_at = cli_mono_s();
  int status = schedule_all(st) != TIMERS_OK;
  if (st->line.tty) load_status_print(st);
  cli_status_end(&st->line);
  fprintf(stderr, "scheduled %llu timers in %.3f s; waiting for fires ...\n",
          (unsigned long long)st->scheduled, st->sched_s);
  drain(st);
  status |= load_engine_finish(st->e, &st->c->sh->slots[slot]);
  st->e = NULL;
  return status;
}

/* Starts the engines: the children's (if any), then this process's. */
static int start_engines(load_state *st, const char *addr, pid_t *pids,
                         int *kids) {
  const load_opts *o = st->o;
  if (o->processes > 1) {
    *kids = load_children_spawn(o, addr, st->c, pids);
    if (*kids < o->processes) return 1;
  }
  if (load_engine_make(o, addr, st->c, o->processes == 1, &st->e) != 0)
    return 1;
  return *kids ? load_children_ready(st->c, pids, *kids) : 0;
}

static int run(const load_opts *o, const char *addr, load_ctx *c) {
  pid_t pids[LOAD_PROCESSES_MAX];
  int kids = 0, slot = o->processes > 1 ? o->processes : 0;
  load_state st;
  int status = state_init(&st, o, c);
  bool started = !status && start_engines(&st, addr, pids, &kids) == 0;
  if (started) {
    load_print_setup(o, addr, stderr);
    status = run_phases(&st, slot);
  } else {
    timers_engine_destroy(st.e);
    status = 1;
  }
  if (kids) status |= load_children_reap(c, pids, kids);
  if (started) status = load_report_finish(&st, slot + 1, status);
  state_free(&st);
  return status;
}

/* Runs the test on the Redis of o (a private one when none is set). */
static int run_load(const load_opts *o) {
  int status;
  load_ctx c = {.sleep_ns = (long)llround(o->handler_sleep * 1e9)};
  cli_run_tag(c.tag, sizeof c.tag);
  c.tag_len = strlen(c.tag);
  if (load_shared_map(&c, load_timer_count(o)) != 0) return 1;
  redis_server rs;
  const char *addr = NULL;
  if (cli_redis_open("load", o->redis, &rs, &addr) != 0)
    return load_shared_unmap(&c), 1;
  status = cli_signal() ? 128 + cli_signal() : run(o, addr, &c);
  cli_redis_close(&rs);
  load_shared_unmap(&c);
  return status;
}

int cli_load(int argc, char **argv) {
  load_opts o;
  timers_settings *settings;
  int status = load_options_parse(argc, argv, &o);
  if (status) return status == 1 ? 0 : status;
  if (load_options_config(&o, &settings) != 0) return 1;
  status = run_load(&o);
  timers_settings_free(settings);
  return status;
}
