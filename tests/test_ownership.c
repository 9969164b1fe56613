/*
 * test_ownership.c - owned topics: each shard claimed by one process at a
 * time. Engines in this process and in children (fork), owner_ttl 1 s:
 *  - one engine owns every shard and fires everything once;
 *  - two engines split the shards (none owned twice, none left), and every
 *    timer fires once with no contested claim;
 *  - a SIGKILLed owner's shards are taken over within the ownership lease
 *    (plus a heartbeat), and its timers fire;
 *  - while another member's ownership lease lasts, an engine claims
 *    nothing on that shard; then it takes it over under a new epoch;
 *  - a SIGSTOPped owner resumed after its lease: the other process took its
 *    shards; the resumed one notices (fenced off) and nothing is lost.
 * Waits are bounded and generous: nothing here measures speed.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include <hiredis.h>

#include "test_util.h"

#define TTL_MS 1000

static redis_server rs;
static fired_log fired;

static timers_engine *owned_engine(const char *topic, int shards,
                                   timers_handler h, void *ud) {
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.owner_ttl_ms = TTL_MS;
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options o = {.shards = shards, .owned = 1,
                                .lease_ms = 1000};
  CHECK_OK(timers_subscribe(e, topic, h, ud, &o));
  CHECK_OK(timers_engine_start(e));
  return e;
}

static double process_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Shards this engine owns (not standby). */
static int owned_count(timers_engine *e) {
  timers_stats *s;
  CHECK_OK(timers_stats_get(e, &s));
  int n = 0;
  for (size_t i = 0; i < s->shard_count; i++)
    n += s->shards[i].state == TIMERS_SHARD_OK;
  timers_stats_free(s);
  return n;
}

typedef struct split_probe {
  timers_engine *a, *b;
  int want;
} split_probe;

static bool split_pred(void *ctx) {
  split_probe *p = ctx;
  int a = owned_count(p->a), b = p->b ? owned_count(p->b) : 0;
  /* bounded load: two members split the shards evenly */
  return a + b == p->want && (!p->b || (a == p->want / 2 && b == p->want / 2));
}

static void schedule_n(timers_engine *e, const char *topic, int n,
                       const char *prefix) {
  timers_timer *ts = xrealloc(NULL, sizeof *ts * (size_t)n);
  char(*ids)[24] = xrealloc(NULL, 24 * (size_t)n);
  for (int k = 0; k < n; k++) {
    snprintf(ids[k], 24, "%s%d", prefix, k);
    ts[k] = timer_in(topic, ids[k], 0);
  }
  CHECK_OK(timers_schedule_batch(e, ts, (size_t)n, NULL));
  free(ts);
  free(ids);
}

static void check_once(size_t n) {
  char id[TIMERS_ID_MAX + 1];
  CHECK_EQ_INT(fired_log_distinct(&fired), n);
  unsigned max = fired_log_max_count(&fired, id, sizeof id);
  CHECK_MSG(max == 1, "'%s' delivered %u times", id, max);
}

static void test_one_owner(void) {
  fired_log_init(&fired);
  timers_engine *e = owned_engine("own.one", 4, record_ack_handler, &fired);
  split_probe p = {e, NULL, 4};
  CHECK_MSG(wait_until(split_pred, &p, 10000), "owns %d of 4 shards",
            owned_count(e));
  schedule_n(e, "own.one", 400, "a");
  CHECK(fired_wait_distinct(&fired, 400, 20000));
  sleep_ms(200);
  check_once(400);
  timers_engine_destroy(e);
  fired_log_free(&fired);
}

static void test_two_owners_split(void) {
  fired_log_init(&fired);
  timers_engine *a = owned_engine("own.two", 8, record_ack_handler, &fired);
  timers_engine *b = owned_engine("own.two", 8, record_ack_handler, &fired);
  split_probe p = {a, b, 8};
  CHECK_MSG(wait_until(split_pred, &p, 15000), "owned %d + %d of 8",
            owned_count(a), owned_count(b));
  /* Idle, each with standby shards: the pollers sleep (a poller that took
   * a standby shard for a due one spun a whole core). */
  double cpu = process_cpu_s();
  sleep_ms(2000);
  cpu = process_cpu_s() - cpu;
  CHECK_MSG(cpu < 0.5, "two idle owned engines used %.2f s of CPU in 2 s",
            cpu);
  schedule_n(a, "own.two", 2000, "b");
  CHECK(fired_wait_distinct(&fired, 2000, 30000));
  sleep_ms(300);
  check_once(2000);
  timers_counters ca = test_counters(a), cb = test_counters(b);
  CHECK_MSG(ca.claimed > 0 && cb.claimed > 0, "claimed %" PRIu64 " + %" PRIu64,
            ca.claimed, cb.claimed);
  CHECK_EQ_INT(ca.contested + cb.contested, 0);
  timers_engine_destroy(b);
  /* b left: a takes every shard back */
  split_probe q = {a, NULL, 8};
  CHECK_MSG(wait_until(split_pred, &q, 15000), "owns %d of 8 after b left",
            owned_count(a));
  timers_engine_destroy(a);
  fired_log_free(&fired);
}

/* A child process running an owned engine until killed, its log (INFO)
 * in rs.dir/<name>. */
static pid_t spawn_owner(const char *topic, int shards, const char *name,
                         timers_handler h) {
  char log[320];
  snprintf(log, sizeof log, "%s/%s", rs.dir, name);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0) dup2(fd, 2);
  timers_config cfg;
  test_config(&cfg, &rs);
  cfg.owner_ttl_ms = TTL_MS;
  cfg.log_level = TIMERS_LOG_INFO;
  timers_engine *e = NULL;
  timers_subscribe_options o = {.shards = shards, .owned = 1,
                                .lease_ms = 1000};
  if (timers_engine_create(&cfg, &e) != TIMERS_OK ||
      timers_subscribe(e, topic, h, &fired, &o) != TIMERS_OK ||
      timers_engine_start(e) != TIMERS_OK)
    _exit(2);
  for (;;) pause();
}

static void test_takeover_after_kill(void) {
  fired_log_init(&fired);
  pid_t child = spawn_owner("own.kill", 8, "owner-kill.log", record_ack_handler);
  timers_engine *a = owned_engine("own.kill", 8, record_ack_handler, &fired);
  split_probe p = {a, NULL, 8};
  /* the child holds part of the shards: a owns fewer than 8 */
  double t0 = mono_ms();
  while (owned_count(a) == 8 && mono_ms() - t0 < 10000) sleep_ms(50);
  CHECK_MSG(owned_count(a) < 8, "the child never owned a shard");
  CHECK(kill(child, SIGKILL) == 0);
  waitpid(child, NULL, 0);
  double killed = mono_ms();
  CHECK_MSG(wait_until(split_pred, &p, 15000), "owns %d of 8 after the kill",
            owned_count(a));
  double took = mono_ms() - killed;
  printf("   takeover of a SIGKILLed owner's shards: %.0f ms (owner_ttl %d)\n",
         took, TTL_MS);
  CHECK_MSG(took < 2 * TTL_MS + 3000, "takeover took %.0f ms", took);
  schedule_n(a, "own.kill", 300, "k");
  CHECK(fired_wait_distinct(&fired, 300, 20000));
  timers_engine_destroy(a);
  fired_log_free(&fired);
}

/* Another member holds the shard's ownership lease under its epoch: an
 * owned engine claims nothing there (its calls would be FENCED) until that
 * lease is over, then takes the shard over. */
static void test_foreign_owner_fences(void) {
  redisContext *c = redisConnect("127.0.0.1", rs.port);
  CHECK(c && !c->err);
  const char *okey = "timers:{own.fence:0}:o";
  redisReply *r = redisCommand(c, "HSET %s owner m-other epoch 7 until %lld",
                               okey, (long long)(timers_now() * 1000) + 60000);
  CHECK(r && r->type == REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  fired_log_init(&fired);
  timers_engine *o = owned_engine("own.fence", 1, record_ack_handler, &fired);
  timers_timer t = timer_in("own.fence", "f1", 0);
  CHECK_OK(timers_schedule(o, &t, NULL, 0));
  sleep_ms(2 * TTL_MS);
  CHECK_EQ_INT(fired_log_total(&fired), 0);
  CHECK_EQ_INT(owned_count(o), 0);
  r = redisCommand(c, "HSET %s until 0", okey); /* its lease ends */
  freeReplyObject(r);
  CHECK_MSG(fired_wait_distinct(&fired, 1, 15000), "not taken over");
  r = redisCommand(c, "HGET %s epoch", okey);
  CHECK(r && r->type == REDIS_REPLY_STRING && atoi(r->str) == 8);
  freeReplyObject(r);
  timers_engine_destroy(o);
  fired_log_free(&fired);
  redisFree(c);
}

static timers_outcome slow_ack(const timers_message *m, void *ud) {
  fired_log_record(ud, m);
  sleep_ms(3000);
  return TIMERS_ACK;
}

/* The child owns the only shard and is SIGSTOPped inside a handler past
 * both its ownership lease and the timer's lease: the parent takes the
 * shard, delivers the timer again (allowed: the process was stopped) and
 * acks it; the resumed child is fenced off and says so. */
static void test_sigstop_owner(void) {
  fired_log_init(&fired);
  pid_t child = spawn_owner("own.stop", 1, "owner-stop.log", slow_ack);
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *prod = test_engine(&cfg);
  sleep_ms(1500); /* the child owns the shard */
  timers_timer t = timer_in("own.stop", "s1", 0);
  CHECK_OK(timers_schedule(prod, &t, NULL, 0));
  /* the child's handler holds s1 for 3 s; stop it inside */
  sleep_ms(300);
  CHECK(kill(child, SIGSTOP) == 0);
  timers_engine *a = owned_engine("own.stop", 1, record_ack_handler, &fired);
  CHECK_MSG(fired_wait_distinct(&fired, 1, 20000),
            "the stopped owner's timer was not taken over");
  CHECK(wait_not_pending(a, "own.stop", "s1", 10000));
  CHECK(kill(child, SIGCONT) == 0);
  sleep_ms(4000); /* its handler returns; its ack and claims are fenced */
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  static char buf[1 << 18]; /* the whole log */
  char log[320];
  snprintf(log, sizeof log, "%s/owner-stop.log", rs.dir);
  FILE *f = fopen(log, "r");
  if (f) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  CHECK_MSG(strstr(buf, "fenced off") || strstr(buf, "ownership lost"),
            "the resumed owner did not notice:\n%s", buf);
  CHECK(!test_is_pending(a, "own.stop", "s1"));
  timers_engine_destroy(a);
  timers_engine_destroy(prod);
  fired_log_free(&fired);
}

int main(void) {
  test_redis_start(&rs, false);
  TEST_RUN(test_one_owner);
  TEST_RUN(test_two_owners_split);
  TEST_RUN(test_takeover_after_kill);
  TEST_RUN(test_foreign_owner_fences);
  TEST_RUN(test_sigstop_owner);
  test_redis_stop(&rs);
  printf("test_ownership: ok\n");
  return 0;
}
