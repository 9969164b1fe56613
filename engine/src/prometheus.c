/*
 * prometheus.c - the stats and depths in Prometheus text exposition format
 * (0.0.4). Writes like snprintf: never past cap, returns the full length.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timers.h"

typedef struct tm_out {
  char *buf;
  size_t cap, len;
} tm_out;

__attribute__((format(printf, 2, 3))) static void put(tm_out *o,
                                                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

/* A label value, escaped as the exposition format requires: backslash,
 * double quote and newline (topics of the FASTSTREAM layout may hold any
 * UTF-8). */
static void put_label(tm_out *o, const char *v) {
  for (; *v; v++) {
    if (*v == '\\') put(o, "\\\\");
    else if (*v == '"') put(o, "\\\"");
    else if (*v == '\n') put(o, "\\n");
    else put(o, "%c", *v);
  }
}

/* name{topic="...",shard="s"} */
static void put_series(tm_out *o, const char *name, const char *topic,
                       uint32_t shard) {
  put(o, "%s{topic=\"", name);
  put_label(o, topic);
  put(o, "\",shard=\"%u\"}", shard);
}

static void head(tm_out *o, const char *name, const char *type,
                 const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct tm_counter_desc {
  const char *name, *help;
  size_t offset;
} tm_counter_desc;

#define TM_C_(f, h) {"timers_" #f "_total", h, offsetof(timers_counters, f)}
static const tm_counter_desc counters[] = {
    TM_C_(scheduled, "Timers written by this engine."),
    TM_C_(claimed, "Timers leased by this engine's pollers."),
    TM_C_(fired, "Handlers run to completion."),
    TM_C_(acked, "Handlers that returned ACK."),
    TM_C_(nacked, "Handlers that returned NACK."),
    TM_C_(rejected, "Handlers that returned REJECT."),
    TM_C_(stale_commits, "Acks or rejects fenced off because the lease was lost."),
    TM_C_(claim_calls, "Claim round trips."),
    TM_C_(contested, "Claims that expected due timers and got none."),
    TM_C_(ring_full, "Claims skipped or cut for lack of room downstream."),
    TM_C_(redis_errors, "Failed Redis calls (retried)."),
    TM_C_(extended, "Lease extensions of running handlers."),
    TM_C_(released, "Claimed timers handed back unstarted."),
    TM_C_(lease_lost, "Lease extensions refused: another holder has the timer."),
    TM_C_(overran, "Handlers that ran past max_handler_ms."),
    TM_C_(deduplicated, "Schedules skipped as identical to a stored or recently fired timer."),
    TM_C_(self_healed, "Members removed at claim: no payload, or an id that is not UTF-8."),
    TM_C_(corrupt, "Payloads that did not decode (delivered as raw bytes)."),
    TM_C_(dead_lettered, "Timers moved to the dead-letter set."),
};
#undef TM_C_

static uint64_t field(const timers_counters *c, size_t offset) {
  uint64_t v;
  memcpy(&v, (const char *)c + offset, sizeof v);
  return v;
}

static void put_counters(tm_out *o, const timers_stats *s) {
  for (size_t k = 0; k < sizeof counters / sizeof *counters; k++) {
    const tm_counter_desc *d = &counters[k];
    head(o, d->name, "counter", d->help);
    for (size_t i = 0; i < s->shard_count; i++) {
      put_series(o, d->name, s->shards[i].topic, s->shards[i].shard);
      put(o, " %llu\n",
          (unsigned long long)field(&s->shards[i].counters, d->offset));
    }
    if (s->shard_count == 0)
      put(o, "%s %llu\n", d->name,
          (unsigned long long)field(&s->total, d->offset));
  }
}

static void put_contention(tm_out *o, const timers_contention *c) {
  const struct {
    const char *name, *help;
    uint64_t v;
  } rows[] = {
      {"timers_poller_sleeps_total", "Pollers blocked on their condvar.", c->poller_sleeps},
      {"timers_poller_kicks_total", "Signals sent to sleeping pollers.", c->poller_kicks},
      {"timers_worker_sleeps_total", "Workers blocked on their condvar.", c->worker_sleeps},
      {"timers_worker_wakeups_total", "Broadcasts to sleeping workers.", c->worker_wakeups},
      {"timers_lock_waits_total", "Mutex acquisitions that found it held.", c->lock_waits},
      {"timers_cas_retries_total", "Failed compare-and-swap attempts.", c->cas_retries},
  };
  for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
    head(o, rows[k].name, "counter", rows[k].help);
    put(o, "%s %llu\n", rows[k].name, (unsigned long long)rows[k].v);
  }
  head(o, "timers_lock_wait_seconds_total", "counter",
       "Time spent acquiring held mutexes.");
  put(o, "timers_lock_wait_seconds_total %.9f\n", (double)c->lock_wait_ns / 1e9);
}

static void put_lateness(tm_out *o, const timers_stats *s) {
  const char *n = "timers_lateness_seconds";
  head(o, n, "histogram", "Handler start minus activation time, first attempts.");
  uint64_t cum = 0;
  for (int b = 0; b < TIMERS_LATENCY_BUCKETS; b++) {
    cum += s->lateness[b];
    if (s->lateness[b] || b == TIMERS_LATENCY_BUCKETS - 1)
      put(o, "%s_bucket{le=\"%.6f\"} %llu\n", n,
          (double)timers_lateness_bound_us(b) / 1e6, (unsigned long long)cum);
  }
  put(o, "%s_bucket{le=\"+Inf\"} %llu\n", n, (unsigned long long)cum);
  put(o, "%s_sum %.6f\n%s_count %llu\n", n, (double)s->lateness_sum_us / 1e6,
      n, (unsigned long long)cum);
}

size_t timers_stats_prometheus(const timers_stats *s, char *buf, size_t cap) {
  tm_out o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  if (!s) return 0;
  put_counters(&o, s);
  put_contention(&o, &s->contention);
  head(&o, "timers_inflight", "gauge", "Timers claimed and not yet committed.");
  put(&o, "timers_inflight %llu\n", (unsigned long long)s->inflight);
  put_lateness(&o, s);
  return o.len;
}

size_t timers_topic_depth_prometheus(const timers_topic_depth *const *depths,
                                     const char *const *topics, size_t n,
                                     char *buf, size_t cap) {
  tm_out o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  if (!depths || !topics) return 0;
  static const char *names[] = {"timers_pending", "timers_overdue",
                                "timers_oldest_overdue_seconds",
                                "timers_due_1m", "timers_due_1h",
                                "timers_due_1d", "timers_dead"};
  static const char *helps[] = {
      "Timers in the shard.", "Timers due and not claimed.",
      "Age of the earliest overdue timer.", "Timers due within a minute.",
      "Timers due within an hour.", "Timers due within a day.",
      "Timers in the dead-letter set."};
  enum { GAUGES = sizeof names / sizeof *names };
  for (int m = 0; m < GAUGES; m++) {
    head(&o, names[m], "gauge", helps[m]);
    for (size_t t = 0; t < n; t++) {
      const timers_topic_depth *d = depths[t];
      for (uint32_t i = 0; d && topics[t] && i < d->shards; i++) {
        const timers_shard_depth *sd = &d->per_shard[i];
        double v[GAUGES] = {
            (double)sd->pending, (double)sd->overdue,
            sd->overdue && sd->oldest < d->now ? d->now - sd->oldest : 0,
            (double)sd->due_1m, (double)sd->due_1h, (double)sd->due_1d,
            (double)sd->dead};
        put_series(&o, names[m], topics[t], i);
        put(&o, " %.15g\n", v[m]);
      }
    }
  }
  return o.len;
}
