/*
 * load_report.c - what `timers load` shows: the live status line while it
 * runs and the final report, as text or one JSON object.
 *
 * Duplicates are the deliveries beyond the first, losses the indexes never
 * delivered by the drain deadline (last due time + grace), and the lateness
 * percentiles are exact, from the per-index values in the shared memory;
 * the engine counters are the sums of every process's slot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

typedef struct load_result {
  uint64_t scheduled, fired, duplicates, lost, foreign;
  double schedule_per_s, fire_window_s, fires_per_s;
  double p50, p90, p99, p999, max, mean; /* ms */
  timers_counters c;
  timers_contention k;
  uint64_t inflight;
  bool failed; /* an engine call or a child failed */
} load_result;

/* ---------------------------------------------------------- status line */

/* Lateness quantile of the first deliveries so far, from the shared
 * histogram (bucket upper bounds). */
static double live_lateness_ms(load_shared *sh, double q) {
  static timers_stats s; /* main thread only */
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++)
    s.lateness[b] = load64(&sh->hist[b]);
  return timers_stats_lateness_ms(&s, q);
}

void load_status_print(load_state *st) {
  load_shared *sh = st->c->sh;
  uint64_t fired = load64(&sh->fired), distinct = load64(&sh->distinct);
  double now = cli_mono_s(), dt = now - st->line_at;
  double rate = dt > 0 ? (double)(fired - st->line_fired) / dt : 0;
  cli_status_printf(&st->line,
                    "%6.1f s  scheduled %llu  fired %llu  fires/s %.0f  "
                    "lateness p99 %.2f ms  pending %llu",
                    now - st->t0, (unsigned long long)st->scheduled,
                    (unsigned long long)fired, rate,
                    live_lateness_ms(sh, 0.99),
                    (unsigned long long)(st->scheduled > distinct
                                             ? st->scheduled - distinct
                                             : 0));
  st->line_fired = fired;
  st->line_at = now;
}

void load_status_tick(load_state *st) {
  if (cli_status_due(&st->line)) load_status_print(st);
}

/* ---------------------------------------------------------------- report */

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank quantile of sorted v[0..n). */
static double quantile(const float *v, size_t n, double q) {
  if (n == 0) return 0;
  size_t rank = (size_t)ceil(q * (double)n);
  return v[rank ? rank - 1 : 0];
}

/* Counts duplicates and losses and sorts the lateness of delivered
 * indexes; false when out of memory. */
static bool tally(const load_ctx *c, uint64_t scheduled, load_result *r) {
  float *v = malloc((size_t)(scheduled ? scheduled : 1) * sizeof *v);
  if (!v) return false;
  size_t m = 0;
  double sum = 0;
  for (uint64_t i = 0; i < scheduled; i++) {
    unsigned n = atomic_load_explicit(&c->counts[i], memory_order_relaxed);
    r->fired += n;
    if (n == 0) r->lost++;
    else r->duplicates += n - 1, sum += (v[m++] = c->late_ms[i]);
  }
  qsort(v, m, sizeof *v, cmp_float);
  r->p50 = quantile(v, m, 0.5);
  r->p90 = quantile(v, m, 0.9);
  r->p99 = quantile(v, m, 0.99);
  r->p999 = quantile(v, m, 0.999);
  r->max = m ? v[m - 1] : 0;
  r->mean = m ? sum / (double)m : 0;
  free(v);
  return true;
}

static void add_report(load_result *r, const load_report *s) {
#define LOAD_ADD_(f) r->c.f += s->c.f
  LOAD_ADD_(scheduled), LOAD_ADD_(claimed), LOAD_ADD_(fired);
  LOAD_ADD_(acked), LOAD_ADD_(nacked), LOAD_ADD_(rejected);
  LOAD_ADD_(stale_commits), LOAD_ADD_(claim_calls), LOAD_ADD_(contested);
  LOAD_ADD_(ring_full), LOAD_ADD_(redis_errors), LOAD_ADD_(extended);
  LOAD_ADD_(released), LOAD_ADD_(lease_lost), LOAD_ADD_(overran);
  LOAD_ADD_(deduplicated), LOAD_ADD_(self_healed), LOAD_ADD_(corrupt);
#undef LOAD_ADD_
#define LOAD_ADD_(f) r->k.f += s->k.f
  LOAD_ADD_(poller_sleeps), LOAD_ADD_(poller_kicks), LOAD_ADD_(worker_sleeps);
  LOAD_ADD_(worker_wakeups), LOAD_ADD_(lock_waits), LOAD_ADD_(lock_wait_ns);
  LOAD_ADD_(cas_retries);
#undef LOAD_ADD_
  r->inflight += s->inflight;
}

static bool result_make(const load_state *st, int slots, load_result *r) {
  load_shared *sh = st->c->sh;
  *r = (load_result){.scheduled = st->scheduled, .foreign = load64(&sh->foreign)};
  for (int k = 0; k < slots; k++) add_report(r, &sh->slots[k]);
  r->schedule_per_s = st->sched_s > 0 ? (double)st->scheduled / st->sched_s : 0;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  r->fire_window_s = last > first ? (double)(last - first) / 1e9 : 0;
  if (!tally(st->c, st->scheduled, r)) return false;
  r->fires_per_s = r->fire_window_s > 0 ? (double)r->fired / r->fire_window_s
                                        : 0;
  return true;
}

static const char *verdict(const load_result *r) {
  if (cli_signal()) return "interrupted";
  if (r->lost || r->duplicates || r->failed) return "failed";
  return "ok";
}

/* Topic t's shard count as its engines use it. */
static int topic_shards(const load_opts *o, int t) {
  char topic[LOAD_TOPIC_CAP];
  timers_subscribe_options opts;
  load_topic_name(topic, sizeof topic, t);
  if (!o->settings || !load_topic_options(o, topic, &opts)) return o->shards;
  if (opts.layout == TIMERS_LAYOUT_FASTSTREAM) return 1;
  return opts.shards ? opts.shards : o->shards;
}

/* The shard count every topic has; 0 if they differ. */
static int common_shards(const load_opts *o) {
  int n = topic_shards(o, 0);
  for (int t = 1; t < o->topics; t++)
    if (topic_shards(o, t) != n) return 0;
  return n;
}

/* The effective options of the topics that have a [topic load.N] section
 * (o->base is set whenever o->settings is). */
static void print_topic_options(const load_opts *o, FILE *out) {
  for (int t = 0; o->settings && t < o->topics; t++) {
    char topic[LOAD_TOPIC_CAP];
    timers_subscribe_options opts;
    load_topic_name(topic, sizeof topic, t);
    if (!load_topic_options(o, topic, &opts)) continue;
    bool fs = opts.layout == TIMERS_LAYOUT_FASTSTREAM;
    fprintf(out, "  topic %s: layout %s, shards %d, lease %d ms, "
            "max_inflight ", topic, fs ? "faststream" : "native",
            topic_shards(o, t),
            opts.lease_ms ? opts.lease_ms : o->base->lease_ms);
    if (opts.max_inflight) fprintf(out, "%d\n", opts.max_inflight);
    else fputs("unlimited\n", out);
  }
}

void load_print_setup(const load_opts *o, const char *addr, FILE *out) {
  if (o->burst)
    fprintf(out, "timers load: burst of %ld timers", o->burst);
  else
    fprintf(out, "timers load: %.0f timers/s for %.3g s, delay %s", o->rate,
            o->duration, o->delay.text);
  int shards = common_shards(o);
  fprintf(out, ", handler %s,\n  %d topic(s) x ", o->handler_text, o->topics);
  if (shards) fprintf(out, "%d shards", shards);
  for (int t = 0; !shards && t < o->topics; t++)
    fprintf(out, "%s%d", t ? "/" : "shards ", topic_shards(o, t));
  fprintf(out, ", %d process(es) x (%d poller(s), %d worker(s)), on %s\n",
          o->processes, o->pollers ? o->pollers : 1,
          o->workers ? o->workers : 2, addr);
  print_topic_options(o, out);
}

static void print_burst(const load_state *st, FILE *out) {
  load_shared *sh = st->c->sh;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  if (last < first) return;
  double t0 = st->burst_mono, sched_end = st->t0 + st->sched_s;
  fprintf(out,
          "burst:         T0 %.3f s after the start, scheduling ended %.3f s "
          "%s it;\n               first fire T0%+.1f ms, last fire T0%+.1f "
          "ms\n",
          t0 - st->t0, fabs(t0 - sched_end), sched_end <= t0 ? "before" : "AFTER",
          ((double)first / 1e9 - t0) * 1e3, ((double)last / 1e9 - t0) * 1e3);
}

static void print_text(const load_state *st, const load_result *r) {
  printf("scheduled:     %llu timers in %.3f s (%.0f /s)\n",
         (unsigned long long)r->scheduled, st->sched_s, r->schedule_per_s);
  printf("fired:         %llu (duplicates %llu, %s %llu)\n",
         (unsigned long long)r->fired, (unsigned long long)r->duplicates,
         cli_signal() ? "not fired before the interruption" : "lost",
         (unsigned long long)r->lost);
  printf("firing window: %.3f s, %.0f fires/s\n", r->fire_window_s,
         r->fires_per_s);
  if (st->o->burst) print_burst(st, stdout);
  printf("lateness:      p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f "
         "ms, max %.2f ms, mean %.2f ms (exact)\n",
         r->p50, r->p90, r->p99, r->p999, r->max, r->mean);
  printf("engine:        claimed %llu, claim calls %llu, contested %llu, ring "
         "full %llu,\n               redis errors %llu, stale commits %llu, "
         "nacked %llu, rejected %llu, inflight %llu,\n"
         "               extended %llu, released %llu, lease lost %llu, "
         "overran %llu\n",
         (unsigned long long)r->c.claimed, (unsigned long long)r->c.claim_calls,
         (unsigned long long)r->c.contested, (unsigned long long)r->c.ring_full,
         (unsigned long long)r->c.redis_errors,
         (unsigned long long)r->c.stale_commits,
         (unsigned long long)r->c.nacked, (unsigned long long)r->c.rejected,
         (unsigned long long)r->inflight, (unsigned long long)r->c.extended,
         (unsigned long long)r->c.released,
         (unsigned long long)r->c.lease_lost,
         (unsigned long long)r->c.overran);
  printf("contention:    poller sleeps %llu, kicks %llu; worker sleeps %llu, "
         "wake-ups %llu;\n               lock waits %llu (%.3f ms), CAS "
         "retries %llu\n",
         (unsigned long long)r->k.poller_sleeps,
         (unsigned long long)r->k.poller_kicks,
         (unsigned long long)r->k.worker_sleeps,
         (unsigned long long)r->k.worker_wakeups,
         (unsigned long long)r->k.lock_waits, (double)r->k.lock_wait_ns / 1e6,
         (unsigned long long)r->k.cas_retries);
  if (r->foreign)
    printf("foreign:       %llu timers of another run fired (acked)\n",
           (unsigned long long)r->foreign);
  const char *v = verdict(r);
  printf("result:        %s\n", strcmp(v, "ok") == 0
                                    ? "OK, every timer fired exactly once"
                                    : strcmp(v, "failed") == 0 ? "FAILED"
                                                               : "INTERRUPTED");
}

/* Prints s as a JSON string (the inputs are flags: escape the few
 * characters JSON requires). */
static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void json_options(const load_opts *o) {
  printf("{\"mode\": \"%s\", ", o->burst ? "burst" : "rate");
  if (o->burst) {
    printf("\"burst\": %ld, \"rate\": null, \"duration\": null, "
           "\"delay\": null, ", o->burst);
  } else {
    printf("\"burst\": null, \"rate\": %.6g, \"duration\": %.6g, "
           "\"delay\": ", o->rate, o->duration);
    json_string(o->delay.text);
    printf(", ");
  }
  printf("\"handler\": ");
  json_string(o->handler_text);
  printf(", \"topics\": %d, \"shards\": ", o->topics);
  int shards = common_shards(o);
  if (shards) printf("%d", shards);
  else fputs("null", stdout);
  printf(", \"topic_shards\": [");
  for (int t = 0; t < o->topics; t++)
    printf("%s%d", t ? ", " : "", topic_shards(o, t));
  printf("], \"processes\": %d, \"pollers\": "
         "%d, \"workers\": %d, \"batch\": %d, \"schedule_batch\": %d, "
         "\"grace_s\": %.6g,\n",
         o->processes, o->pollers ? o->pollers : 1,
         o->workers ? o->workers : 2, o->batch ? o->batch : 256,
         o->sched_batch, o->grace);
}

static void json_burst(const load_state *st) {
  load_shared *sh = st->c->sh;
  uint64_t first = load64(&sh->first_ns), last = load64(&sh->last_ns);
  double t0 = st->burst_mono;
  printf(" \"burst_t0_s\": %.6f, \"burst_schedule_end_s\": %.6f, "
         "\"burst_first_fire_ms\": %.3f, \"burst_last_fire_ms\": %.3f,\n",
         t0 - st->t0, st->sched_s,
         last >= first ? ((double)first / 1e9 - t0) * 1e3 : 0,
         last >= first ? ((double)last / 1e9 - t0) * 1e3 : 0);
}

static void json_engine(const load_result *r) {
  const timers_counters *c = &r->c;
  const timers_contention *k = &r->k;
  printf(" \"engine\": {\"scheduled\": %llu, \"claimed\": %llu, \"fired\": "
         "%llu, \"acked\": %llu, \"nacked\": %llu, \"rejected\": %llu, "
         "\"stale_commits\": %llu, \"claim_calls\": %llu, \"contested\": "
         "%llu, \"ring_full\": %llu, \"redis_errors\": %llu, \"inflight\": "
         "%llu, \"extended\": %llu, \"released\": %llu, \"lease_lost\": "
         "%llu, \"overran\": %llu, \"deduplicated\": %llu,\n  \"poller_sleeps\": %llu, \"poller_kicks\": %llu, "
         "\"worker_sleeps\": %llu, \"worker_wakeups\": %llu, \"lock_waits\": "
         "%llu, \"lock_wait_ms\": %.3f, \"cas_retries\": %llu}}\n",
         (unsigned long long)c->scheduled, (unsigned long long)c->claimed,
         (unsigned long long)c->fired, (unsigned long long)c->acked,
         (unsigned long long)c->nacked, (unsigned long long)c->rejected,
         (unsigned long long)c->stale_commits,
         (unsigned long long)c->claim_calls, (unsigned long long)c->contested,
         (unsigned long long)c->ring_full, (unsigned long long)c->redis_errors,
         (unsigned long long)r->inflight, (unsigned long long)c->extended,
         (unsigned long long)c->released, (unsigned long long)c->lease_lost,
         (unsigned long long)c->overran, (unsigned long long)c->deduplicated,
         (unsigned long long)k->poller_sleeps,
         (unsigned long long)k->poller_kicks,
         (unsigned long long)k->worker_sleeps,
         (unsigned long long)k->worker_wakeups,
         (unsigned long long)k->lock_waits, (double)k->lock_wait_ns / 1e6,
         (unsigned long long)k->cas_retries);
}

static void print_json(const load_state *st, const load_result *r) {
  json_options(st->o);
  printf(" \"result\": \"%s\", \"scheduled\": %llu, \"fired\": %llu, "
         "\"duplicates\": %llu, \"lost\": %llu, \"foreign\": %llu,\n"
         " \"schedule_s\": %.6f, \"schedule_per_s\": %.1f, \"fire_window_s\": "
         "%.6f, \"fires_per_s\": %.1f,\n",
         verdict(r), (unsigned long long)r->scheduled,
         (unsigned long long)r->fired, (unsigned long long)r->duplicates,
         (unsigned long long)r->lost, (unsigned long long)r->foreign,
         st->sched_s, r->schedule_per_s, r->fire_window_s, r->fires_per_s);
  if (st->o->burst) json_burst(st);
  printf(" \"lateness_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
         "\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f},\n",
         r->p50, r->p90, r->p99, r->p999, r->max, r->mean);
  json_engine(r);
}

int load_report_finish(load_state *st, int slots, int status) {
  load_result r;
  if (!result_make(st, slots, &r)) {
    fprintf(stderr, "timers load: out of memory\n");
    return 1;
  }
  r.failed = status != 0 || st->scheduled < st->c->n;
  if (st->o->json) print_json(st, &r);
  else print_text(st, &r);
  fflush(stdout);
  if (cli_signal()) {
    fprintf(stderr, "timers load: interrupted by %s\n",
            strsignal(cli_signal()));
    return 128 + cli_signal();
  }
  return strcmp(verdict(&r), "ok") == 0 ? 0 : 1;
}
