/*
 * keys.c - key names, wake messages, the shard hash, timer tokens and id
 * generation.
 */
#include "keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "timers.h"

uint32_t timers_shard_of(const char *id, size_t id_len, uint32_t n) {
  uint32_t h = 0x811c9dc5u; /* FNV-1a 32-bit offset basis */
  for (size_t i = 0; i < id_len; i++) {
    h ^= (unsigned char)id[i];
    h *= 0x01000193u; /* FNV prime */
  }
  return n ? h % n : 0;
}

void tm__native_keys(tm_keys keys, const char *prefix, const char *topic,
                     uint32_t shard) {
  static const char kind[TM_NKEYS] = {'z', 'p', 'a', 'x', 'y', 'd', 'o'};
  for (int k = 0; k < TM_NKEYS; k++)
    snprintf(keys[k], TM_KEY_MAX, "%s:{%s:%u}:%c", prefix, topic, shard,
             kind[k]);
}

int tm__meta_key(char *buf, const char *prefix, const char *topic) {
  return snprintf(buf, TM_KEY_MAX, "%s:{%s}:meta", prefix, topic);
}

int tm__members_key(char *buf, const char *prefix, const char *topic) {
  return snprintf(buf, TM_KEY_MAX, "%s:{%s}:members", prefix, topic);
}

int tm__wake_channel(char *buf, const char *prefix, const char *topic) {
  return snprintf(buf, TM_KEY_MAX, "%s:wake:%s", prefix, topic);
}

int tm__wake_parse(const char *prefix, const char *chan, const char *data,
                   const char **topic, uint32_t *shard, double *score,
                   const char **from, size_t *from_len) {
  size_t plen = strlen(prefix);
  if (strncmp(chan, prefix, plen) != 0 || strncmp(chan + plen, ":wake:", 6))
    return -1;
  char *end;
  errno = 0;
  unsigned long s = strtoul(data, &end, 10);
  if (end == data || *end != ' ' || errno || s >= TIMERS_SHARDS_MAX) return -1;
  const char *num = end + 1;
  *from = NULL, *from_len = 0;
  const char *blank = strchr(num, ' ');
  if (blank) { /* "shard sender score" */
    *from = num, *from_len = (size_t)(blank - num);
    num = blank + 1;
  }
  double v = strtod(num, &end);
  if (end == num || *end || !(v >= 0 && v < 1e13)) return -1;
  *topic = chan + plen + 6;
  *shard = (uint32_t)s;
  *score = v;
  return 0;
}

uint64_t tm__timer_token(const char *id, size_t id_len, const char *blob,
                         size_t blob_len) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64-bit offset basis */
  for (size_t i = 0; i < id_len; i++)
    h = (h ^ (unsigned char)id[i]) * 0x100000001b3ull;
  h = (h ^ 0xffu) * 0x100000001b3ull; /* separator: no byte of an id */
  for (size_t i = 0; i < blob_len; i++)
    h = (h ^ (unsigned char)blob[i]) * 0x100000001b3ull;
  return h;
}

void tm__token_bytes(uint64_t token, char out[8]) {
  for (int i = 0; i < 8; i++) out[i] = (char)(token >> (56 - 8 * i));
}

int64_t tm__tomb_bucket(int64_t now_us, int window_ms) {
  return window_ms > 0 ? now_us / 1000 / window_ms : 0;
}

int tm__tomb_key(char *buf, const char *base, int64_t bucket) {
  return snprintf(buf, TM_KEY_MAX, "%s:%lld", base, (long long)bucket);
}

/* xoshiro256** per thread, seeded from getrandom(): 128 random bits per id
 * make collisions across processes negligible without a syscall per id. */
static _Thread_local uint64_t rng[4];
static _Thread_local unsigned rng_generation; /* 0: never seeded */
/* Bumped in a fork child, so no two processes continue one sequence. */
static _Atomic unsigned fork_generation = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { fork_generation++; }
static void install_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(void) {
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl(rng[3], 45);
  return r;
}

static void rng_seed(void) {
  if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    rng[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    rng[2] = 0x9e3779b97f4a7c15ull;
    rng[3] = 0xbf58476d1ce4e5b9ull;
  }
  rng_generation = fork_generation;
}

uint64_t tm__random64(void) {
  pthread_once(&atfork_once, install_atfork);
  if (rng_generation != fork_generation) rng_seed();
  return rng_next();
}

void tm__id_generate(char *out) {
  static const char hex[] = "0123456789abcdef";
  uint64_t a = tm__random64(), b = tm__random64();
  for (int i = 0; i < 16; i++) {
    out[i] = hex[(a >> (60 - 4 * i)) & 15];
    out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
  }
  out[TIMERS_ID_GEN_LEN] = '\0';
}
