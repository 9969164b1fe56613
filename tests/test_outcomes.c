/*
 * test_outcomes.c - what a handler's outcome does (lease 500 ms):
 * NACK redelivers after the lease with attempt 2; REJECT drops for good;
 * a handler that runs past max_handler_ms (its lease is extended until
 * then) sees its timer re-claimed (attempt 2) while it still runs, and its
 * late ACK is fenced off: it must not remove
 * the timer the second delivery holds (stats.stale_commits counts it).
 * Also: max_inflight 1 never runs two handlers of a topic at once, and
 * stop() lets a running handler finish and commits its ACK.
 */
#include "test_util.h"

#define T_NACK "outcome.nack"
#define T_REJECT "outcome.reject"
#define T_FENCE "outcome.fence"
#define LEASE_MS 500

static redis_server rs;
static timers_engine *eng;
static fired_log log_nack, log_reject, log_fence;

/* Fencing choreography, all flags atomic. */
static gate gate_first;    /* releases attempt 1 (which then ACKs)      */
static gate gate_later;    /* releases attempts >= 2                    */
static int first_running;  /* attempt 1 is inside its handler           */
static int first_returned;
static int second_started; /* attempt 2 entered while attempt 1 ran     */
static int second_saw_first_running;

static timers_outcome nack_handler(const timers_message *m, void *ud) {
  (void)ud;
  fired_log_record(&log_nack, m);
  return m->attempt == 1 ? TIMERS_NACK : TIMERS_ACK;
}

static timers_outcome reject_handler(const timers_message *m, void *ud) {
  (void)ud;
  fired_log_record(&log_reject, m);
  return TIMERS_REJECT;
}

/* Attempt 1 blocks past its lease then ACKs (stale); attempt 2 blocks and
 * NACKs; later attempts ACK once released. */
static timers_outcome fence_handler(const timers_message *m, void *ud) {
  (void)ud;
  fired_log_record(&log_fence, m);
  if (m->attempt == 1) {
    flag_set(&first_running, 1);
    gate_wait(&gate_first);
    flag_set(&first_running, 0);
    flag_set(&first_returned, 1);
    return TIMERS_ACK;
  }
  if (m->attempt == 2) {
    flag_set(&second_saw_first_running, flag_get(&first_running));
    flag_set(&second_started, 1);
  }
  gate_wait(&gate_later);
  return m->attempt == 2 ? TIMERS_NACK : TIMERS_ACK;
}

static void setup(void) {
  test_redis_start(&rs, false);
  fired_log_init(&log_nack);
  fired_log_init(&log_reject);
  fired_log_init(&log_fence);
  gate_init(&gate_first);
  gate_init(&gate_later);
  timers_config cfg;
  test_config(&cfg, &rs);
  eng = test_engine(&cfg);
  timers_subscribe_options o = {.lease_ms = LEASE_MS};
  CHECK_OK(timers_subscribe(eng, T_NACK, nack_handler, NULL, &o));
  CHECK_OK(timers_subscribe(eng, T_REJECT, reject_handler, NULL, &o));
  /* The engine extends a running handler's lease up to max_handler_ms:
   * here that is one lease, after which it is left to run out. */
  timers_subscribe_options fo = {.lease_ms = LEASE_MS,
                                 .max_handler_ms = LEASE_MS};
  CHECK_OK(timers_subscribe(eng, T_FENCE, fence_handler, NULL, &fo));
  CHECK_OK(timers_engine_start(eng));
}

static void teardown(void) {
  gate_open(&gate_first);
  gate_open(&gate_later);
  CHECK_OK(timers_engine_stop(eng));
  timers_engine_destroy(eng);
  fired_log_free(&log_nack);
  fired_log_free(&log_reject);
  fired_log_free(&log_fence);
  gate_destroy(&gate_first);
  gate_destroy(&gate_later);
  test_redis_stop(&rs);
}

static void test_nack_redelivers(void) {
  timers_timer t = timer_in(T_NACK, "n1", 0);
  t.payload = "keep";
  t.payload_len = 4;
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(fired_wait_total(&log_nack, 2, 20000),
            "nacked timer not redelivered (%zu deliveries)",
            fired_log_total(&log_nack));
  fired_delivery d1, d2;
  CHECK(fired_log_delivery(&log_nack, 0, &d1, NULL, 0));
  CHECK(fired_log_delivery(&log_nack, 1, &d2, NULL, 0));
  CHECK_EQ_INT(d1.attempt, 1);
  CHECK_EQ_INT(d2.attempt, 2);
  /* The lease began at the claim, no earlier than the activation time. */
  CHECK_MSG(d2.fired_at >= d1.activate_at + LEASE_MS / 1000.0 - 0.001,
            "redelivered %.3f s after its activation, lease is %.3f s",
            d2.fired_at - d1.activate_at, LEASE_MS / 1000.0);
  CHECK(fired_log_payload_eq(&log_nack, "n1", T_NACK, "keep", 4));
  CHECK(wait_not_pending(eng, T_NACK, "n1", 20000));
  sleep_ms(2 * LEASE_MS);
  CHECK_EQ_INT(fired_log_total(&log_nack), 2);
  timers_counters c = test_counters(eng);
  CHECK(c.nacked >= 1);
}

static void test_reject_drops(void) {
  timers_timer t = timer_in(T_REJECT, "r1", 0);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(fired_wait_total(&log_reject, 1, 20000), "never fired");
  CHECK_MSG(wait_not_pending(eng, T_REJECT, "r1", 20000),
            "rejected timer still pending");
  sleep_ms(3 * LEASE_MS);
  CHECK_EQ_INT(fired_log_total(&log_reject), 1);
  CHECK(!test_is_pending(eng, T_REJECT, "r1"));
  size_t total = 99;
  test_pending_has(eng, T_REJECT, false, 0, NULL, &total);
  CHECK_EQ_INT(total, 0);
  timers_counters c = test_counters(eng);
  CHECK(c.rejected >= 1);
}

typedef struct stale_probe {
  timers_engine *e;
} stale_probe;

static bool stale_or_gone_pred(void *ctx) {
  stale_probe *p = ctx;
  return test_counters(p->e).stale_commits >= 1 ||
         !test_is_pending(p->e, T_FENCE, "f1");
}

static void test_lease_overrun_is_fenced(void) {
  timers_timer t = timer_in(T_FENCE, "f1", 0);
  CHECK_OK(timers_schedule(eng, &t, NULL, 0));
  CHECK_MSG(wait_until(flag_pred, &first_running, 20000),
            "attempt 1 never started");
  CHECK_MSG(wait_until(flag_pred, &second_started, 20000),
            "timer not re-claimed while its handler overran the lease");
  CHECK_MSG(flag_get(&second_saw_first_running),
            "attempt 2 started only after attempt 1 returned");
  CHECK(test_is_pending(eng, T_FENCE, "f1"));

  gate_open(&gate_first); /* attempt 1 now ACKs with a lost lease */
  CHECK(wait_until(flag_pred, &first_returned, 20000));
  stale_probe p = {eng};
  CHECK_MSG(wait_until(stale_or_gone_pred, &p, 20000),
            "the late ack was neither fenced nor applied");
  CHECK_MSG(test_is_pending(eng, T_FENCE, "f1"),
            "the stale ACK of attempt 1 removed the timer attempt 2 holds");
  timers_counters c = test_counters(eng);
  CHECK_MSG(c.stale_commits >= 1, "stale_commits = %" PRIu64,
            c.stale_commits);

  gate_open(&gate_later); /* attempt 2 NACKs, a later attempt ACKs */
  CHECK_MSG(wait_not_pending(eng, T_FENCE, "f1", 20000),
            "timer never acked after the fenced commit");
  fired_rec r;
  CHECK(fired_log_get(&log_fence, "f1", &r));
  CHECK(r.max_attempt >= 3);
}

static int inflight_now, inflight_max;
static fired_log log_inflight;

static timers_outcome serial_handler(const timers_message *m, void *ud) {
  (void)ud;
  int now = __atomic_add_fetch(&inflight_now, 1, __ATOMIC_ACQ_REL);
  int max = __atomic_load_n(&inflight_max, __ATOMIC_ACQUIRE);
  while (now > max && !__atomic_compare_exchange_n(&inflight_max, &max, now,
                                                   false, __ATOMIC_ACQ_REL,
                                                   __ATOMIC_ACQUIRE)) {
  }
  sleep_ms(20);
  fired_log_record(&log_inflight, m);
  __atomic_sub_fetch(&inflight_now, 1, __ATOMIC_ACQ_REL);
  return TIMERS_ACK;
}

/* A separate engine: workers 2 but max_inflight 1 on the topic. */
static void test_max_inflight(void) {
  enum { M = 12 };
  fired_log_init(&log_inflight);
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options o = {.max_inflight = 1};
  CHECK_OK(timers_subscribe(e, "outcome.serial", serial_handler, NULL, &o));
  CHECK_OK(timers_engine_start(e));
  timers_timer ts[M];
  for (int i = 0; i < M; i++) ts[i] = timer_in("outcome.serial", NULL, 0);
  CHECK_OK(timers_schedule_batch(e, ts, M, NULL));
  CHECK_MSG(fired_wait_distinct(&log_inflight, M, 30000), "%zu of %d fired",
            fired_log_distinct(&log_inflight), M);
  CHECK_MSG(__atomic_load_n(&inflight_max, __ATOMIC_ACQUIRE) == 1,
            "%d handlers ran at once with max_inflight 1",
            __atomic_load_n(&inflight_max, __ATOMIC_ACQUIRE));
  CHECK_OK(timers_engine_stop(e));
  timers_engine_destroy(e);
  fired_log_free(&log_inflight);
}

static gate drain_gate;
static int drain_entered, drain_finished;

static timers_outcome drain_handler(const timers_message *m, void *ud) {
  (void)m, (void)ud;
  flag_set(&drain_entered, 1);
  gate_wait(&drain_gate);
  sleep_ms(200);
  flag_set(&drain_finished, 1);
  return TIMERS_ACK;
}

static void *stop_thread(void *arg) {
  timers_engine_stop((timers_engine *)arg);
  return NULL;
}

/* stop() waits for the running handler and commits its ACK. */
static void test_stop_drains(void) {
  gate_init(&drain_gate);
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = test_engine(&cfg);
  CHECK_OK(timers_subscribe(e, "outcome.drain", drain_handler, NULL, NULL));
  CHECK_OK(timers_engine_start(e));
  timers_timer t = timer_in("outcome.drain", "d1", 0);
  CHECK_OK(timers_schedule(e, &t, NULL, 0));
  CHECK(wait_until(flag_pred, &drain_entered, 20000));
  pthread_t th;
  CHECK(pthread_create(&th, NULL, stop_thread, e) == 0);
  sleep_ms(100); /* let stop() begin; the outcome holds either way */
  gate_open(&drain_gate);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK_MSG(flag_get(&drain_finished), "stop() returned before the handler");
  CHECK_MSG(!test_is_pending(eng, "outcome.drain", "d1"),
            "the ACK of a handler drained by stop() was not committed");
  timers_engine_destroy(e);
  gate_destroy(&drain_gate);
}

int main(void) {
  setup();
  TEST_RUN(test_max_inflight);
  TEST_RUN(test_stop_drains);
  TEST_RUN(test_nack_redelivers);
  TEST_RUN(test_reject_drops);
  TEST_RUN(test_lease_overrun_is_fenced);
  teardown();
  printf("test_outcomes: ok\n");
  return 0;
}
