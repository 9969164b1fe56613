/*
 * test_crash.c - a process dies holding leases and loses nothing.
 *
 * The parent forks a child before creating any engine. The child runs an
 * engine (lease 1 s) whose handler reports the id it holds through a pipe
 * and then blocks forever. The parent schedules timers (some due at once,
 * some a few seconds later), SIGKILLs the child as soon as it holds one,
 * then starts its own engine on the topic: every timer fires in the parent,
 * once, the held one with attempt >= 2.
 */
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "test_util.h"

#define TOPIC "crash.topic"
#define LEASE_MS 1000
#define NOW_N 30
#define LATER_N 20

static redis_server rs;
static int report_fd = -1; /* child: write end of the pipe */

static timers_outcome child_handler(const timers_message *m, void *ud) {
  (void)ud;
  char line[TIMERS_ID_MAX + 2];
  int len = snprintf(line, sizeof line, "%s\n", m->id);
  if (write(report_fd, line, (size_t)len) < 0) _exit(3);
  for (;;) sleep(60); /* hold the lease until killed */
  return TIMERS_ACK;
}

/* The child: never returns. Failures are reported as "!" on the pipe. */
static void child_main(int fd, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  report_fd = fd;
  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *e = NULL;
  timers_subscribe_options o = {.lease_ms = LEASE_MS};
  if (timers_engine_create(&cfg, &e) != TIMERS_OK ||
      timers_subscribe(e, TOPIC, child_handler, NULL, &o) != TIMERS_OK ||
      timers_engine_start(e) != TIMERS_OK) {
    fprintf(stderr, "child: %s\n", timers_last_error());
    if (write(fd, "!\n", 2) < 0) _exit(3);
    _exit(2);
  }
  for (;;) pause();
}

/* Reads one line from fd within timeout_ms; false on timeout or EOF. */
static bool read_line(int fd, char *buf, size_t cap, int timeout_ms) {
  size_t n = 0;
  double deadline = mono_ms() + timeout_ms;
  while (n + 1 < cap) {
    struct pollfd p = {fd, POLLIN, 0};
    int left = (int)(deadline - mono_ms());
    if (left <= 0 || poll(&p, 1, left) <= 0) return false;
    if (read(fd, buf + n, 1) != 1) return false;
    if (buf[n] == '\n') break;
    n++;
  }
  buf[n] = '\0';
  return true;
}

static void schedule_timers(timers_engine *s) {
  static char names[NOW_N + LATER_N][32];
  timers_timer ts[NOW_N + LATER_N];
  double now = timers_now();
  for (int i = 0; i < NOW_N + LATER_N; i++) {
    snprintf(names[i], sizeof names[i], "c-%02d", i);
    ts[i] = i < NOW_N ? timer_at(TOPIC, names[i], now + 0.2)
                      : timer_at(TOPIC, names[i], now + 4.0 + i * 0.01);
  }
  CHECK_OK(timers_schedule_batch(s, ts, NOW_N + LATER_N, NULL));
}

static void test_crash_loses_nothing(void) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t parent = getpid();
  fflush(NULL);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    close(fds[0]);
    child_main(fds[1], parent);
  }
  close(fds[1]);

  timers_config cfg;
  test_config(&cfg, &rs);
  timers_engine *sched = test_engine(&cfg); /* schedules only */
  schedule_timers(sched);

  char held[TIMERS_ID_MAX + 2];
  bool got = read_line(fds[0], held, sizeof held, 30000);
  kill(child, SIGKILL);
  int st;
  CHECK(waitpid(child, &st, 0) == child);
  close(fds[0]);
  CHECK_MSG(got, "the child never reported a timer it holds");
  CHECK_MSG(strcmp(held, "!") != 0, "the child's engine failed to start");
  CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
            "the child ended before it was killed (status %d)", st);
  CHECK(test_is_pending(sched, TOPIC, held));

  fired_log log;
  fired_log_init(&log);
  timers_engine *e = test_engine(&cfg);
  timers_subscribe_options o = {.lease_ms = LEASE_MS};
  CHECK_OK(timers_subscribe(e, TOPIC, record_ack_handler, &log, &o));
  CHECK_OK(timers_engine_start(e));
  CHECK_MSG(fired_wait_distinct(&log, NOW_N + LATER_N, 30000),
            "%zu of %d timers fired after the crash", fired_log_distinct(&log),
            NOW_N + LATER_N);
  fired_rec r;
  CHECK(fired_log_get(&log, held, &r));
  CHECK_MSG(r.max_attempt >= 2, "%s was delivered in the child, yet attempt "
            "%u in the parent", held, r.max_attempt);
  sleep_ms(2 * LEASE_MS);
  char dup[TIMERS_ID_MAX + 1] = "";
  CHECK_MSG(fired_log_max_count(&log, dup, sizeof dup) == 1,
            "%s fired more than once in the parent", dup);
  CHECK(!fired_log_any_early(&log));
  CHECK(wait_not_pending(e, TOPIC, held, 20000));

  CHECK_OK(timers_engine_stop(e));
  timers_engine_destroy(e);
  timers_engine_destroy(sched);
  fired_log_free(&log);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  test_redis_start(&rs, false);
  TEST_RUN(test_crash_loses_nothing);
  test_redis_stop(&rs);
  printf("test_crash: ok\n");
  return 0;
}
