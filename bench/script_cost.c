/*
 * script_cost.c - Redis instructions per fire of the claim + settle
 * protocol, counted by callgrind (bench/script_cost.sh runs it): exact and
 * repeatable, unlike times on a shared 2-core machine.
 *
 *   script_cost PORT REDIS_PID [TIMERS [SHARDS [DEDUP_WINDOW_MS]]]
 *
 * Loads TIMERS due timers (16-byte ids, 32-byte payloads, the engine's
 * envelope) with plain pipelined ZADD + HSET, then switches callgrind's
 * instrumentation on in the redis-server (callgrind_control) and drains
 * them as a poller does: per round trip one SETTLE per shard committing the
 * previous claims (tombstones when DEDUP_WINDOW_MS > 0), then one CLAIM of
 * 256 per shard still due. The script arguments and reply shapes are the
 * engine's own (scripts.h, keys.h, codec.h), from the static library.
 */
#include <hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "keys.h"
#include "scripts.h"
#include "timers.h"

enum { BATCH = 256, TOKEN = 40 };

static redisContext *c;
static char sha[TM_SCRIPT_COUNT][41];

static redisReply *must(redisReply *r, const char *what) {
  if (!r || r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "script_cost: %s: %s\n", what, r ? r->str : c->errstr);
    exit(1);
  }
  return r;
}

typedef struct commit {
  char token[TOKEN], id[32], tomb[8];
} commit;

typedef struct shard {
  tm_keys keys;
  commit *pend;
  size_t npend;
  int done;
} shard;

static void load(shard *sh, int shards, int n, double at) {
  char payload[32], score[32];
  memset(payload, 'p', sizeof payload);
  snprintf(score, sizeof score, "%.6f", at);
  for (int i = 0; i < n; i++) {
    char id[32], env[64];
    snprintf(id, sizeof id, "id-%013d", i);
    shard *s = &sh[timers_shard_of(id, strlen(id), (uint32_t)shards)];
    timers_timer t = {.topic = "bench", .id = id, .payload = payload,
                      .payload_len = sizeof payload};
    size_t len = tm__envelope_size(&t);
    tm__envelope_encode(&t, at, env);
    redisAppendCommand(c, "ZADD %s %s %s", s->keys[TM_KEY_Z], score, id);
    redisAppendCommand(c, "HSET %s %s %b", s->keys[TM_KEY_P], id, env, len);
  }
  for (int i = 0; i < 2 * n; i++) {
    redisReply *r;
    if (redisGetReply(c, (void **)&r) != REDIS_OK) must(NULL, "load");
    freeReplyObject(must(r, "load"));
  }
}

/* One SETTLE committing everything s holds (at most TM_COMMIT_MAX). */
/* The shapes this file sends; if scripts.h changes them, it fails to
 * compile instead of measuring something else. */
_Static_assert(TM_SETTLE_KEYS == TM_CORE_KEYS + 2 && TM_SETTLE_ARGS == 6 &&
                   TM_SETTLE_STRIDE == 5,
               "SETTLE is KEYS z p a x y, tombstone set, ownership hash; "
               "ARGV lease, expiry, dead_max, dead_ttl, owner, epoch, then "
               "(op, token, id, x, y): update append_settle()");
_Static_assert(TM_CLAIM_KEYS == TM_CORE_KEYS + 1 && TM_CLAIM_ARGS == 8,
               "CLAIM is KEYS z p a x y, ownership hash; ARGV lease, count, "
               "flags, max_attempts, dead_max, dead_ttl, owner, epoch: update "
               "drain()");

static void append_settle(shard *s, double now, int window) {
  size_t m = s->npend, argc = 3 + TM_SETTLE_KEYS + TM_SETTLE_ARGS + 5 * m;
  size_t a = 0;
  const char **av = malloc(sizeof *av * argc);
  size_t *al = malloc(sizeof *al * argc);
  int64_t b = tm__tomb_bucket((int64_t)(now * 1e6), window);
  char nk[8], expire[32], tkey[TM_KEY_MAX];
  snprintf(nk, sizeof nk, "%d", TM_SETTLE_KEYS);
  snprintf(expire, sizeof expire, "%lld", window ? (long long)((b + 2) * window) : 0LL);
  tm__tomb_key(tkey, s->keys[TM_KEY_D], b);
  av[a++] = "EVALSHA", av[a++] = sha[TM_SCRIPT_SETTLE], av[a++] = nk;
  for (int k = 0; k < TM_CORE_KEYS; k++) av[a++] = s->keys[k];
  av[a++] = tkey, av[a++] = s->keys[TM_KEY_O];
  av[a++] = "30000", av[a++] = expire, av[a++] = "100000";
  av[a++] = "604800000", av[a++] = "", av[a++] = ""; /* shared: no owner */
  for (size_t k = 0; k < a; k++) al[k] = strlen(av[k]);
  for (size_t k = 0; k < m; k++) {
    commit *p = &s->pend[k];
    al[a] = 1, av[a++] = "c";
    al[a] = strlen(p->token), av[a++] = p->token;
    al[a] = strlen(p->id), av[a++] = p->id;
    al[a] = window ? 8 : 0, av[a++] = p->tomb;
    al[a] = 0, av[a++] = "";
  }
  redisAppendCommandArgv(c, (int)a, av, al);
  free(av);
  free(al);
}

static size_t take_claim(shard *s, redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != TM_CLAIM_REPLY_LEN)
    must(NULL, "claim reply");
  redisReply *it = r->element[TM_CLAIM_ITEMS];
  const char *lease = r->element[TM_CLAIM_LEASE]->str;
  size_t got = it->elements / TM_CLAIM_STRIDE;
  for (size_t i = 0; i < it->elements; i += TM_CLAIM_STRIDE) {
    commit *p = &s->pend[s->npend++];
    const redisReply *id = it->element[i], *blob = it->element[i + 1];
    snprintf(p->token, sizeof p->token, "%s", lease);
    snprintf(p->id, sizeof p->id, "%s", id->str);
    tm__token_bytes(tm__timer_token(id->str, id->len, blob->str, blob->len),
                    p->tomb);
  }
  if (got < BATCH) s->done = 1;
  return got;
}

static size_t drain(shard *sh, int shards, int window) {
  size_t fired = 0;
  int *kind = malloc(sizeof *kind * 2 * (size_t)shards);
  for (;;) {
    redisReply *t = must(redisCommand(c, "TIME"), "TIME");
    double now = atof(t->element[0]->str) + atof(t->element[1]->str) / 1e6;
    freeReplyObject(t);
    int calls = 0;
    for (int s = 0; s < shards; s++)
      if (sh[s].npend) append_settle(&sh[s], now, window), kind[calls++] = -1 - s;
    for (int s = 0; s < shards; s++)
      if (!sh[s].done) {
        redisAppendCommand(c, "EVALSHA %s %d %s %s %s %s %s %s 30000 %d a "
                           "20 100000 604800000 %b %b",
                           sha[TM_SCRIPT_CLAIM], TM_CLAIM_KEYS,
                           sh[s].keys[TM_KEY_Z], sh[s].keys[TM_KEY_P],
                           sh[s].keys[TM_KEY_A], sh[s].keys[TM_KEY_X],
                           sh[s].keys[TM_KEY_Y], sh[s].keys[TM_KEY_O], BATCH,
                           "", (size_t)0, "", (size_t)0);
        kind[calls++] = s;
      }
    if (!calls) break;
    for (int k = 0; k < calls; k++) {
      redisReply *r;
      if (redisGetReply(c, (void **)&r) != REDIS_OK) must(NULL, "reply");
      must(r, "script");
      if (kind[k] < 0)
        sh[-1 - kind[k]].npend = 0;
      else
        fired += take_claim(&sh[kind[k]], r);
      freeReplyObject(r);
    }
  }
  free(kind);
  return fired;
}

static void instrument(int pid, const char *onoff) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "callgrind_control -i %s %d >/dev/null", onoff, pid);
  if (system(cmd) != 0) fprintf(stderr, "script_cost: %s failed\n", cmd);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: script_cost PORT REDIS_PID [TIMERS [SHARDS "
                    "[DEDUP_WINDOW_MS]]]\n");
    return 2;
  }
  int port = atoi(argv[1]), pid = atoi(argv[2]);
  int n = argc > 3 ? atoi(argv[3]) : 20000;
  int shards = argc > 4 ? atoi(argv[4]) : 8;
  int window = argc > 5 ? atoi(argv[5]) : 10000;
  c = redisConnect("127.0.0.1", port);
  if (!c || c->err) must(NULL, "connect");
  for (int s = 0; s < TM_SCRIPT_COUNT; s++) {
    redisReply *r =
        must(redisCommand(c, "SCRIPT LOAD %s", tm__script_source[s]), "load");
    memcpy(sha[s], r->str, 41);
    freeReplyObject(r);
  }
  shard *sh = calloc((size_t)shards, sizeof *sh);
  for (int s = 0; s < shards; s++) {
    tm__native_keys(sh[s].keys, "timers", "bench", (uint32_t)s);
    sh[s].pend = calloc(BATCH, sizeof *sh[s].pend);
  }
  redisReply *t = must(redisCommand(c, "TIME"), "TIME");
  double at = atof(t->element[0]->str) - 1;
  freeReplyObject(t);
  load(sh, shards, n, at);
  instrument(pid, "on");
  size_t fired = drain(sh, shards, window);
  instrument(pid, "off");
  if (fired != (size_t)n) {
    fprintf(stderr, "script_cost: fired %zu of %d\n", fired, n);
    return 1;
  }
  return 0;
}
