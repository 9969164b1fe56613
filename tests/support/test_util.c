/*
 * test_util.c - the test-support library (what each helper does:
 * test_util.h).
 */
#include "test_util.h"

static test_cleanup_state test_cleanup_g;

void test_register_server(redis_server *rs) {
  test_cleanup_g.owner = getpid();
  if (test_cleanup_g.count < TEST_MAX_SERVERS)
    test_cleanup_g.servers[test_cleanup_g.count++] = rs;
}

void test_unregister_server(redis_server *rs) {
  for (int i = 0; i < test_cleanup_g.count; i++)
    if (test_cleanup_g.servers[i] == rs) test_cleanup_g.servers[i] = NULL;
}

void test_run_cleanup(void) {
  if (test_cleanup_g.owner != getpid()) return;
  for (int i = 0; i < test_cleanup_g.count; i++)
    if (test_cleanup_g.servers[i]) redis_server_stop(test_cleanup_g.servers[i]);
  test_cleanup_g.count = 0;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
  const char *detail = timers_last_error();
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  timers_last_error(): \"%s\"\n",
          detail ? detail : "(NULL)");
  fflush(NULL);
  test_run_cleanup();
  _exit(1);
}

double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void sleep_until_wall(double t) {
  for (double now = timers_now(); now < t; now = timers_now()) {
    double ms = (t - now) * 1e3;
    sleep_ms(ms > 50 ? 50 : (int)ms + 1);
  }
}

bool flag_get(const int *f) {
  return __atomic_load_n(f, __ATOMIC_ACQUIRE) != 0;
}

void flag_set(int *f, int v) { __atomic_store_n(f, v, __ATOMIC_RELEASE); }

bool flag_pred(void *f) { return flag_get((const int *)f); }

void gate_init(gate *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = false;
}

void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

void gate_wait(gate *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

void gate_destroy(gate *g) {
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) test_fail(__FILE__, __LINE__, "out of memory (%zu bytes)", n);
  return q;
}

char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xrealloc(NULL, n), s, n);
}

uint32_t fnv1a(const void *p, size_t n) {
  const unsigned char *b = p;
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x01000193u;
  return h;
}

void fired_log_init(fired_log *log) {
  memset(log, 0, sizeof *log);
  pthread_mutex_init(&log->mu, NULL);
  log->slots_cap = 1024;
  log->slots = xrealloc(NULL, log->slots_cap * sizeof *log->slots);
  memset(log->slots, 0, log->slots_cap * sizeof *log->slots);
}

void fired_rec_free_details(fired_rec *r) {
  free(r->payload);
  for (size_t i = 0; i < 2 * r->header_count; i++) free(r->header_kv[i]);
  free(r->header_kv);
  r->payload = NULL;
  r->header_kv = NULL;
}

void fired_log_free(fired_log *log) {
  for (size_t i = 0; i < log->nrecs; i++) {
    fired_rec_free_details(&log->recs[i]);
    free(log->recs[i].id);
    free(log->recs[i].topic);
  }
  free(log->recs);
  free(log->slots);
  free(log->order);
  pthread_mutex_destroy(&log->mu);
}

size_t *fired_slot_locked(fired_log *log, const char *id) {
  size_t mask = log->slots_cap - 1;
  for (size_t i = fnv1a(id, strlen(id)) & mask;; i = (i + 1) & mask) {
    size_t v = log->slots[i];
    if (v == 0 || strcmp(log->recs[v - 1].id, id) == 0) return &log->slots[i];
  }
}

void fired_grow_locked(fired_log *log) {
  size_t old_cap = log->slots_cap;
  size_t *old = log->slots;
  log->slots_cap *= 2;
  log->slots = xrealloc(NULL, log->slots_cap * sizeof *log->slots);
  memset(log->slots, 0, log->slots_cap * sizeof *log->slots);
  for (size_t i = 0; i < old_cap; i++)
    if (old[i]) *fired_slot_locked(log, log->recs[old[i] - 1].id) = old[i];
  free(old);
}

fired_rec *fired_upsert_locked(fired_log *log, const char *id,
                               const char *topic) {
  size_t *slot = fired_slot_locked(log, id);
  if (*slot) return &log->recs[*slot - 1];
  if (log->nrecs == log->recs_cap) {
    log->recs_cap = log->recs_cap ? 2 * log->recs_cap : 256;
    log->recs = xrealloc(log->recs, log->recs_cap * sizeof *log->recs);
  }
  fired_rec *r = &log->recs[log->nrecs++];
  memset(r, 0, sizeof *r);
  r->id = xstrdup(id);
  r->topic = xstrdup(topic ? topic : "");
  *slot = log->nrecs;
  if (2 * log->nrecs > log->slots_cap) fired_grow_locked(log);
  return r;
}

void fired_copy_details(fired_rec *r, const timers_message *m) {
  fired_rec_free_details(r);
  r->payload_len = m->payload_len;
  r->payload = xrealloc(NULL, m->payload_len);
  if (m->payload_len) memcpy(r->payload, m->payload, m->payload_len);
  r->header_count = m->header_count;
  r->header_kv = xrealloc(NULL, 2 * m->header_count * sizeof(char *));
  for (size_t i = 0; i < m->header_count; i++) {
    r->header_kv[2 * i] = xstrdup(m->headers[i].key ? m->headers[i].key : "");
    r->header_kv[2 * i + 1] =
        xstrdup(m->headers[i].value ? m->headers[i].value : "");
  }
}

void fired_push_order_locked(fired_log *log, size_t rec,
                             const timers_message *m, double now) {
  if (log->norder == log->order_cap) {
    log->order_cap = log->order_cap ? 2 * log->order_cap : 256;
    log->order = xrealloc(log->order, log->order_cap * sizeof *log->order);
  }
  log->order[log->norder++] =
      (fired_delivery){rec, m->attempt, m->activate_at, now};
}

unsigned fired_log_record(fired_log *log, const timers_message *m) {
  double now = timers_now();
  pthread_mutex_lock(&log->mu);
  fired_rec *r = fired_upsert_locked(log, m->id, m->topic);
  if (r->count == 0) r->first_fire = now;
  r->last_fire = now;
  r->count++;
  r->attempt = m->attempt;
  if (m->attempt > r->max_attempt) r->max_attempt = m->attempt;
  r->activate_at = m->activate_at;
  if (now < m->activate_at - 0.001) log->early = true;
  fired_copy_details(r, m);
  fired_push_order_locked(log, (size_t)(r - log->recs), m, now);
  unsigned count = r->count;
  pthread_mutex_unlock(&log->mu);
  return count;
}

timers_outcome record_ack_handler(const timers_message *m, void *userdata) {
  fired_log_record((fired_log *)userdata, m);
  return TIMERS_ACK;
}

bool fired_log_get(fired_log *log, const char *id, fired_rec *out) {
  pthread_mutex_lock(&log->mu);
  size_t v = *fired_slot_locked(log, id);
  if (v) {
    *out = log->recs[v - 1];
    out->id = out->topic = NULL;
    out->payload = NULL;
    out->header_kv = NULL;
  }
  pthread_mutex_unlock(&log->mu);
  return v != 0;
}

unsigned fired_log_count(fired_log *log, const char *id) {
  fired_rec r;
  return fired_log_get(log, id, &r) ? r.count : 0;
}

bool fired_log_payload_eq(fired_log *log, const char *id, const char *topic,
                          const void *data, size_t len) {
  pthread_mutex_lock(&log->mu);
  size_t v = *fired_slot_locked(log, id);
  bool eq = false;
  if (v) {
    fired_rec *r = &log->recs[v - 1];
    eq = strcmp(r->topic, topic) == 0 && r->payload_len == len &&
         (len == 0 || memcmp(r->payload, data, len) == 0);
  }
  pthread_mutex_unlock(&log->mu);
  return eq;
}

bool fired_log_header(fired_log *log, const char *id, const char *key,
                      char *buf, size_t cap, size_t *count) {
  pthread_mutex_lock(&log->mu);
  size_t v = *fired_slot_locked(log, id);
  bool found = false;
  buf[0] = '\0';
  *count = 0;
  if (v) {
    fired_rec *r = &log->recs[v - 1];
    *count = r->header_count;
    for (size_t i = 0; i < r->header_count && !found; i++)
      if (strcmp(r->header_kv[2 * i], key) == 0) {
        snprintf(buf, cap, "%s", r->header_kv[2 * i + 1]);
        found = true;
      }
  }
  pthread_mutex_unlock(&log->mu);
  return found;
}

size_t fired_log_distinct(fired_log *log) {
  pthread_mutex_lock(&log->mu);
  size_t n = log->nrecs;
  pthread_mutex_unlock(&log->mu);
  return n;
}

size_t fired_log_total(fired_log *log) {
  pthread_mutex_lock(&log->mu);
  size_t n = log->norder;
  pthread_mutex_unlock(&log->mu);
  return n;
}

bool fired_log_any_early(fired_log *log) {
  pthread_mutex_lock(&log->mu);
  bool early = log->early;
  pthread_mutex_unlock(&log->mu);
  return early;
}

bool fired_log_delivery(fired_log *log, size_t i, fired_delivery *out, char *id,
                        size_t id_cap) {
  pthread_mutex_lock(&log->mu);
  bool ok = i < log->norder;
  if (ok) {
    *out = log->order[i];
    if (id) snprintf(id, id_cap, "%s", log->recs[out->rec].id);
  }
  pthread_mutex_unlock(&log->mu);
  return ok;
}

unsigned fired_log_max_count(fired_log *log, char *id, size_t id_cap) {
  pthread_mutex_lock(&log->mu);
  unsigned max = 0;
  for (size_t i = 0; i < log->nrecs; i++)
    if (log->recs[i].count > max) {
      max = log->recs[i].count;
      if (id) snprintf(id, id_cap, "%s", log->recs[i].id);
    }
  pthread_mutex_unlock(&log->mu);
  return max;
}

bool fired_distinct_pred(void *ctx) {
  fired_wait *w = ctx;
  return fired_log_distinct(w->log) >= w->n;
}

bool fired_total_pred(void *ctx) {
  fired_wait *w = ctx;
  return fired_log_total(w->log) >= w->n;
}

bool fired_wait_distinct(fired_log *log, size_t n, int timeout_ms) {
  fired_wait w = {log, n};
  return wait_until(fired_distinct_pred, &w, timeout_ms);
}

bool fired_wait_total(fired_log *log, size_t n, int timeout_ms) {
  fired_wait w = {log, n};
  return wait_until(fired_total_pred, &w, timeout_ms);
}

void test_log(void *userdata, timers_log_level level, const char *msg) {
  static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  (void)userdata;
  fprintf(stderr, "[timers %s] %s\n",
          level >= 0 && level <= 3 ? names[level] : "?", msg);
}

void test_redis_start(redis_server *rs, bool appendonly) {
  CHECK_MSG(redis_server_start(rs, false, appendonly) == 0,
            "redis_server_start failed (is redis-server installed?)");
  test_register_server(rs);
}

void test_redis_stop(redis_server *rs) {
  test_unregister_server(rs);
  redis_server_stop(rs);
}

void test_config(timers_config *cfg, const redis_server *rs) {
  timers_config_init(cfg);
  cfg->redis = rs->addr;
  cfg->workers = 2;
  cfg->pollers = 1;
  cfg->log = test_log;
  /* TIMERS_TEST_LOG=debug|info|warn|error overrides the level. */
  const char *lv = getenv("TIMERS_TEST_LOG");
  cfg->log_level = !lv                        ? TIMERS_LOG_WARN
                   : strcmp(lv, "debug") == 0 ? TIMERS_LOG_DEBUG
                   : strcmp(lv, "info") == 0  ? TIMERS_LOG_INFO
                   : strcmp(lv, "error") == 0 ? TIMERS_LOG_ERROR
                                              : TIMERS_LOG_WARN;
}

timers_engine *test_engine(const timers_config *cfg) {
  timers_engine *e = NULL;
  CHECK_OK(timers_engine_create(cfg, &e));
  CHECK(e != NULL);
  return e;
}

long long test_dbsize(const redis_server *rs) {
  long long n = redis_server_int(rs, "DBSIZE");
  CHECK_MSG(n >= 0, "DBSIZE failed");
  return n;
}

timers_counters test_counters(timers_engine *e) {
  timers_stats *s = NULL;
  CHECK_OK(timers_stats_get(e, &s));
  CHECK(s != NULL);
  timers_counters c = s->total;
  timers_stats_free(s);
  return c;
}

bool test_is_pending(timers_engine *e, const char *topic, const char *id) {
  bool pending = false;
  CHECK_OK(timers_is_pending(e, topic, id, &pending));
  return pending;
}

bool not_pending_pred(void *ctx) {
  pending_probe *p = ctx;
  return !test_is_pending(p->e, p->topic, p->id);
}

bool wait_not_pending(timers_engine *e, const char *topic, const char *id,
                      int timeout_ms) {
  pending_probe p = {e, topic, id};
  return wait_until(not_pending_pred, &p, timeout_ms);
}

bool test_pending_has(timers_engine *e, const char *topic, bool has_before,
                      double before, const char *id, size_t *total) {
  timers_pending_iter *it = NULL;
  CHECK_OK(timers_pending_open(e, topic, has_before, before, &it));
  bool found = false;
  size_t n = 0;
  const char *cur;
  int rc;
  while ((rc = timers_pending_next(it, &cur, NULL)) == TIMERS_OK) {
    n++;
    if (id && strcmp(cur, id) == 0) found = true;
  }
  timers_pending_close(it);
  CHECK_EQ_INT(rc, TIMERS_EDONE);
  if (total) *total = n;
  return found;
}

timers_timer timer_at(const char *topic, const char *id, double at) {
  timers_timer t = {0};
  t.topic = topic;
  t.id = id;
  t.has_activate_at = true;
  t.activate_at = at;
  return t;
}

timers_timer timer_in(const char *topic, const char *id, double in) {
  timers_timer t = {0};
  t.topic = topic;
  t.id = id;
  t.has_activate_in = true;
  t.activate_in = in;
  return t;
}
