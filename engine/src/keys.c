/*
 * keys.c - key names, the shard hash and id generation.
 */
#include "keys.h"

#include <pthread.h>
#include <stdio.h>
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

int tm__shard_key(char *buf, const char *prefix, const char *topic,
                  uint32_t shard, char kind) {
  return snprintf(buf, TM_KEY_MAX, "%s:{%s:%u}:%c", prefix, topic, shard,
                  kind);
}

void tm__shard_keys(char keys[3][TM_KEY_MAX], const char *prefix,
                    const char *topic, uint32_t shard) {
  tm__shard_key(keys[0], prefix, topic, shard, TM_KEY_Z);
  tm__shard_key(keys[1], prefix, topic, shard, TM_KEY_P);
  tm__shard_key(keys[2], prefix, topic, shard, TM_KEY_A);
}

int tm__meta_key(char *buf, const char *prefix, const char *topic) {
  return snprintf(buf, TM_KEY_MAX, "%s:{%s}:meta", prefix, topic);
}

int tm__wake_channel(char *buf, const char *prefix, const char *topic) {
  return snprintf(buf, TM_KEY_MAX, "%s:wake:%s", prefix, topic);
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

void tm__id_generate(char *out) {
  static const char hex[] = "0123456789abcdef";
  pthread_once(&atfork_once, install_atfork);
  if (rng_generation != fork_generation) rng_seed();
  uint64_t a = rng_next(), b = rng_next();
  for (int i = 0; i < 16; i++) {
    out[i] = hex[(a >> (60 - 4 * i)) & 15];
    out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
  }
  out[TIMERS_ID_GEN_LEN] = '\0';
}
