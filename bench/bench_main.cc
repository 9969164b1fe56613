// bench_main.cc - main() of every benchmark binary: one private
// redis-server for the whole process run, started before the benchmarks
// and stopped after them (also when a benchmark fails).
#include <sched.h>

#include <cstdio>
#include <cstdlib>

#include "bench_common.h"

extern "C" {
#include "redis_server.h"
}

namespace tb {
extern redis_server g_server;  // bench_common.cc
}

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Unix socket: the transport with the least overhead on one machine; the
  // engine and the bare-hiredis ceilings use the same one.
  if (redis_server_start(&tb::g_server, true, false) != 0) {
    std::fprintf(stderr, "bench: cannot start redis-server\n");
    return 1;
  }
  std::fprintf(stderr, "bench: redis-server pid %d on %s\n",
               (int)tb::g_server.pid, tb::g_server.addr);
  // TIMERS_BENCH_REDIS_CPU=n pins redis-server to CPU n (the benchmark
  // itself stays unpinned).
  if (const char *cpu = std::getenv("TIMERS_BENCH_REDIS_CPU")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::atoi(cpu), &set);
    if (sched_setaffinity(tb::g_server.pid, sizeof set, &set) != 0)
      std::perror("bench: sched_setaffinity(redis-server)");
  }
  // TIMERS_BENCH_REDIS_CONFIG="name value [name value ...]": CONFIG SET
  // before any benchmark (e.g. "zset-max-listpack-entries 0").
  if (const char *conf = std::getenv("TIMERS_BENCH_REDIS_CONFIG")) {
    try {
      tb::redis_config_set(conf);
    } catch (const std::exception &ex) {
      std::fprintf(stderr, "bench: TIMERS_BENCH_REDIS_CONFIG: %s\n", ex.what());
      redis_server_stop(&tb::g_server);
      return 1;
    }
  }
  bench_register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  redis_server_stop(&tb::g_server);
  return 0;
}
