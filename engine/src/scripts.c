/*
 * scripts.c - the Lua side of the protocol (shapes in scripts.h).
 *
 * Fencing: a claim moves each due member's score to the lease expiry (Redis
 * time + lease) and returns it as Redis prints scores (so later steps
 * compare strings, not numbers); it is the holder's token. Every
 * later step of the holder (commit, extend, release, nack) acts only while
 * the member's score still equals its token. A claim only takes a member
 * whose score is <= now and sets now + lease, and an extension sets a later
 * now + lease, so one member's tokens only grow: a holder whose lease ran
 * out and was re-claimed can change nothing.
 *
 * Nothing half-done: Redis does not roll a script back when a command in it
 * fails, so every script first checks the types of its keys (a wrong-type
 * key is an error before any write), and reads before it writes.
 *
 * unpack() is bounded by Lua's C stack (LUAI_MAXCSTACK = 8000), hence the
 * engine's limits: claim_batch <= 2048 (2 values per timer), settle calls of
 * at most TM_COMMIT_MAX items, schedule groups of at most TM_SCHEDULE_MAX.
 */
#include "scripts.h"

/* Declared first in scripts that write: they still run under maxmemory
 * with noeviction (they free memory, or write a bounded amount). */
#define ALLOW_OOM "#!lua flags=allow-oom\n"
#define DENY_OOM "#!lua\n"

/* A WRONGTYPE error before anything is written. KEYS z, p, a, x, y (what
 * follows them, tombstone sets or the ownership hash, is checked where it
 * is used). */
#define CHECK_TYPES                                                          \
  "local want = {'zset', 'hash', 'hash', 'zset', 'hash'}\n"                  \
  "for k = 1, math.min(#KEYS, 5) do\n"                                       \
  "  local ty = redis.call('TYPE', KEYS[k])['ok']\n"                         \
  "  if ty ~= 'none' and ty ~= want[k] then\n"                               \
  "    return redis.error_reply('WRONGTYPE key ' .. KEYS[k] .. ' holds a ' ..\n" \
  "                             ty .. ', not a ' .. want[k])\n"              \
  "  end\n"                                                                  \
  "end\n"

/* Redis's clock, seconds. */
#define NOW                                                                  \
  "local t = redis.call('TIME')\n"                                           \
  "local now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n"                      \
  "local function score(s) return string.format('%.6f', s) end\n"

/* Shard ownership (owned topics): a claim or settle of a process that no
 * longer owns the shard, under the epoch it was given, changes nothing.
 * okey: the shard's ownership hash; me "" for shared topics. */
#define FENCE                                                                \
  "local function fenced(okey, me, epoch)\n"                                 \
  "  if me == '' then return false end\n"                                    \
  "  local o = redis.call('HMGET', okey, 'owner', 'epoch', 'until')\n"       \
  "  return not (o[1] == me and o[2] == epoch and\n"                         \
  "              tonumber(o[3] or 0) >= now * 1000)\n"                       \
  "end\n"

/* Reads before writes: a wrong-type z, p or tombstone set fails in HMGET /
 * ZSCORE / SMISMEMBER before anything is written; a (only written when a
 * timer is replaced) is checked by type. KEYS z, p, a, then the tombstone
 * sets of the buckets before, at and after now. */
static const char schedule_lua[] = DENY_OOM
    "local ty = redis.call('TYPE', KEYS[3])['ok']\n"
    "if ty ~= 'none' and ty ~= 'hash' then\n"
    "  return redis.error_reply('WRONGTYPE key ' .. KEYS[3] .. ' holds a ' ..\n"
    "                           ty .. ', not a hash')\n"
    "end\n"
    "local n = tonumber(ARGV[3])\n"
    "local ids, tombs, anytomb = {}, {}, false\n"
    "for k = 1, n do\n"
    "  local b = 3 + 4 * (k - 1)\n"
    "  ids[k] = ARGV[b + 2]\n"
    "  tombs[k] = ARGV[b + 4] ~= '' and ARGV[b + 4] or '-'\n"
    "  anytomb = anytomb or ARGV[b + 4] ~= ''\n"
    "end\n"
    "local stored = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "local same = {}\n" /* stored with this very envelope: still there? */
    "for k = 1, n do\n"
    "  if stored[k] and stored[k] == ARGV[3 + 4 * (k - 1) + 3] then\n"
    "    same[#same + 1] = k\n"
    "  end\n"
    "end\n"
    "local present = {}\n"
    "if #same > 0 then\n"
    "  local ask = {}\n"
    "  for i, k in ipairs(same) do ask[i] = ids[k] end\n"
    "  local got = redis.call('ZMSCORE', KEYS[1], unpack(ask))\n"
    "  for i, k in ipairs(same) do present[k] = got[i] end\n"
    "else\n"
    "  redis.call('ZSCORE', KEYS[1], '-')\n" /* type check of z */
    "end\n"
    "local dead = {}\n"
    "for d = 4, #KEYS do\n"
    "  if anytomb and redis.call('EXISTS', KEYS[d]) == 1 then\n"
    "    local in_d = redis.call('SMISMEMBER', KEYS[d], unpack(tombs))\n"
    "    for k = 1, n do dead[k] = dead[k] or in_d[k] == 1 end\n"
    "  end\n"
    "end\n"
    "local zargs, hargs, reset, skipped = {}, {}, {}, 0\n"
    "local earliest, earliest_s\n"
    "for k = 1, n do\n"
    "  local b = 3 + 4 * (k - 1)\n"
    "  local s, id, blob = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]\n"
    "  if present[k] or dead[k] then\n"
    "    skipped = skipped + 1\n" /* a retried write, or fired recently */
    "  else\n"
    "    zargs[#zargs + 1] = s\n"
    "    zargs[#zargs + 1] = id\n"
    "    hargs[#hargs + 1] = id\n"
    "    hargs[#hargs + 1] = blob\n"
    "    if stored[k] then reset[#reset + 1] = id end\n"
    "    local v = tonumber(s)\n"
    "    if not earliest or v < earliest then earliest, earliest_s = v, s end\n"
    "  end\n"
    "end\n"
    "if #zargs > 0 then\n"
    "  redis.call('ZADD', KEYS[1], unpack(zargs))\n"
    "  redis.call('HSET', KEYS[2], unpack(hargs))\n"
    "  if #reset > 0 then redis.call('HDEL', KEYS[3], unpack(reset)) end\n"
    "  if ARGV[1] ~= '' then\n"
    "    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "    if first[2] and tonumber(first[2]) >= earliest then\n"
    "      redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. earliest_s)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {#zargs / 2, skipped}\n";

/* Python's strict UTF-8: no overlong forms, surrogates or code points past
 * U+10FFFF (the reference library drops members it cannot decode). */
#define UTF8_OK                                                              \
  "local function utf8_ok(s)\n"                                              \
  "  local i, n = 1, #s\n"                                                   \
  "  while i <= n do\n"                                                      \
  "    local c, len, lo, hi = string.byte(s, i), 1, 0x80, 0xBF\n"            \
  "    if c >= 0x80 then\n"                                                  \
  "      if c >= 0xC2 and c <= 0xDF then len = 2\n"                          \
  "      elseif c >= 0xE0 and c <= 0xEF then len = 3\n"                      \
  "        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end\n" \
  "      elseif c >= 0xF0 and c <= 0xF4 then len = 4\n"                      \
  "        if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end\n" \
  "      else return false end\n"                                            \
  "      if i + len - 1 > n then return false end\n"                         \
  "      local c2 = string.byte(s, i + 1)\n"                                 \
  "      if c2 < lo or c2 > hi then return false end\n"                      \
  "      for j = i + 2, i + len - 1 do\n"                                    \
  "        local cj = string.byte(s, j)\n"                                   \
  "        if cj < 0x80 or cj > 0xBF then return false end\n"                \
  "      end\n"                                                              \
  "    end\n"                                                                \
  "    i = i + len\n"                                                        \
  "  end\n"                                                                  \
  "  return true\n"                                                          \
  "end\n"

/* Moves timers to the dead-letter set, atomically with their removal from
 * the timeline: x (sorted set, id -> dead time) and y (hash, id -> record:
 * u8 1, u32 attempts, u64 dead time in microseconds, u16 reason length,
 * reason, then the envelope). Then bounds the set: records older than
 * ttl_ms, then the oldest beyond max. items: {id, envelope, attempts,
 * reason}... Needs `now` (NOW). */
#define DEAD_LETTER                                                          \
  "local function dead_letter(items, max, ttl_ms)\n"                         \
  "  if #items == 0 then return end\n"                                       \
  "  local ids, zx, hy = {}, {}, {}\n"                                       \
  "  local us = math.floor(now * 1e6)\n"                                     \
  "  for _, it in ipairs(items) do\n"                                        \
  "    ids[#ids + 1] = it[1]\n"                                              \
  "    zx[#zx + 1] = score(now)\n"                                           \
  "    zx[#zx + 1] = it[1]\n"                                                \
  "    hy[#hy + 1] = it[1]\n"                                                \
  "    hy[#hy + 1] = struct.pack('>BI4I8H', 1, it[3], us, #it[4]) ..\n"       \
  "                  it[4] .. it[2]\n"                                       \
  "  end\n"                                                                  \
  "  redis.call('ZREM', KEYS[1], unpack(ids))\n"                             \
  "  redis.call('HDEL', KEYS[2], unpack(ids))\n"                             \
  "  redis.call('HDEL', KEYS[3], unpack(ids))\n"                             \
  "  redis.call('ZADD', KEYS[4], unpack(zx))\n"                              \
  "  redis.call('HSET', KEYS[5], unpack(hy))\n"                              \
  "  local old = redis.call('ZRANGE', KEYS[4], '-inf',\n"                    \
  "                         score(now - ttl_ms / 1000), 'BYSCORE',\n"        \
  "                         'LIMIT', 0, 1000)\n"                             \
  "  local over = redis.call('ZCARD', KEYS[4]) - #old - max\n"               \
  "  if over > 0 then\n"                                                     \
  "    for _, id in ipairs(redis.call('ZRANGE', KEYS[4], #old,\n"            \
  "                                   #old + over - 1)) do\n"                \
  "      old[#old + 1] = id\n"                                               \
  "    end\n"                                                                \
  "  end\n"                                                                  \
  "  if #old > 0 then\n"                                                     \
  "    redis.call('ZREM', KEYS[4], unpack(old))\n"                           \
  "    redis.call('HDEL', KEYS[5], unpack(old))\n"                           \
  "  end\n"                                                                  \
  "end\n"

/* A first delivery writes no attempt count: a member whose score still
 * equals the activation time in its envelope (format 1: byte 1 is the
 * format, bytes 2-9 the time in microseconds) was never claimed, so it is
 * attempt 1. Only a re-claim (the score is an old lease, or a nack's retry
 * time) reads and writes KEYS[3], counting a missing entry as 1. A payload
 * that is not this envelope has no activation time: its attempts are
 * always counted in KEYS[3] (a missing entry is 0). A re-claim past
 * max_attempts (its process died in every delivery, or let every lease run
 * out) goes to the dead-letter set instead of a handler. */
static const char claim_lua[] = ALLOW_OOM CHECK_TYPES NOW FENCE UTF8_OK DEAD_LETTER
    "if fenced(KEYS[6], ARGV[7], ARGV[8]) then\n"
    "  return redis.error_reply('FENCED ' .. KEYS[6] .. ': not the owner')\n"
    "end\n"
    "local function activation_us(blob)\n"
    "  if #blob < 11 or string.byte(blob, 1) ~= 1 then return nil end\n"
    "  return (struct.unpack('>I8', blob, 2))\n"
    "end\n"
    "local now_s, lease = score(now), score(now + tonumber(ARGV[1]) / 1000)\n"
    "local track = string.find(ARGV[3], 'a', 1, true) ~= nil\n"
    "local utf8 = string.find(ARGV[3], 'u', 1, true) ~= nil\n"
    "local max_attempts = tonumber(ARGV[4])\n"
    "local once = string.find(ARGV[3], 'm', 1, true) ~= nil\n"
    "local due = redis.call('ZRANGE', KEYS[1], '-inf', now_s, 'BYSCORE',\n"
    "                       'LIMIT', 0, tonumber(ARGV[2]), 'WITHSCORES')\n"
    "local ids, scores, bad = {}, {}, {}\n"
    "for i = 1, #due, 2 do\n"
    "  if utf8 and not utf8_ok(due[i]) then bad[#bad + 1] = due[i]\n"
    "  else ids[#ids + 1] = due[i]; scores[#scores + 1] = due[i + 1] end\n"
    "end\n"
    "local blobs = #ids > 0 and redis.call('HMGET', KEYS[2], unpack(ids)) or {}\n"
    /* attempt of each: 1 (first delivery), 0 (not counted), or from KEYS[3] */
    "local attempt, again, base, dead = {}, {}, {}, {}\n"
    "for i, id in ipairs(ids) do\n"
    "  if not blobs[i] then\n" /* self-heal: no payload, can never fire */
    "    dead[#dead + 1] = id\n"
    "  elseif track then\n"
    "    local at = activation_us(blobs[i])\n"
    "    if at and math.abs(tonumber(scores[i]) * 1e6 - at) < 2 then\n"
    "      attempt[i] = 1\n"
    "    else\n"
    "      again[#again + 1] = i\n"
    "      base[#base + 1] = at and 1 or 0\n"
    "    end\n"
    "  else\n"
    "    attempt[i] = 0\n"
    "  end\n"
    "end\n"
    "local counts, buried = {}, {}\n"
    "if #again > 0 then\n"
    "  local names = {}\n"
    "  for k, i in ipairs(again) do names[k] = ids[i] end\n"
    "  local seen = redis.call('HMGET', KEYS[3], unpack(names))\n"
    "  for k, i in ipairs(again) do\n"
    "    local n = (tonumber(seen[k]) or base[k]) + 1\n"
    "    if max_attempts > 0 and n > max_attempts then\n"
    "      buried[#buried + 1] = {ids[i], blobs[i], n - 1,\n"
    "        'max_attempts (' .. max_attempts .. ') reached: the last ' ..\n"
    "        'delivery did not end (its process died, or its lease ran out)'}\n"
    "      attempt[i] = -1\n"
    "    else\n"
    "      attempt[i] = n\n"
    "      counts[#counts + 1] = ids[i]\n"
    "      counts[#counts + 1] = n\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out, leases = {}, {}\n"
    "for i, id in ipairs(ids) do\n"
    "  if blobs[i] and attempt[i] >= 0 then\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = blobs[i]\n"
    "    out[#out + 1] = attempt[i]\n"
    "    out[#out + 1] = scores[i]\n"
    "    leases[#leases + 1] = lease\n"
    "    leases[#leases + 1] = id\n"
    "  end\n"
    "end\n"
    "if #leases > 0 and once then\n" /* at most once: gone when claimed */
    "  local gone = {}\n"
    "  for i = 2, #leases, 2 do gone[#gone + 1] = leases[i] end\n"
    "  redis.call('ZREM', KEYS[1], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[2], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[3], unpack(gone))\n"
    "elseif #leases > 0 then\n"
    "  redis.call('ZADD', KEYS[1], 'XX', unpack(leases))\n"
    /* the token as Redis prints scores, so settle compares strings */
    "  lease = redis.call('ZSCORE', KEYS[1], leases[2])\n"
    "end\n"
    "if #counts > 0 and not once then\n"
    "  redis.call('HSET', KEYS[3], unpack(counts))\n"
    "end\n"
    "if #bad > 0 then\n"
    "  redis.call('ZREM', KEYS[1], unpack(bad))\n"
    "  redis.call('HDEL', KEYS[2], unpack(bad))\n"
    "end\n"
    "if #dead > 0 then\n"
    "  redis.call('ZREM', KEYS[1], unpack(dead))\n"
    "  redis.call('HDEL', KEYS[3], unpack(dead))\n"
    "end\n"
    "dead_letter(buried, tonumber(ARGV[5]), tonumber(ARGV[6]))\n"
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "return {now_s, lease, first[2] or '', #bad + #dead, #buried, out}\n";

static const char settle_lua[] = ALLOW_OOM CHECK_TYPES NOW FENCE DEAD_LETTER
    "if fenced(KEYS[7], ARGV[5], ARGV[6]) then\n"
    "  return redis.error_reply('FENCED ' .. KEYS[7] .. ': not the owner')\n"
    "end\n"
    "local ty = redis.call('TYPE', KEYS[6])['ok']\n"
    "if ty ~= 'none' and ty ~= 'set' then\n"
    "  return redis.error_reply('WRONGTYPE key ' .. KEYS[6] .. ' holds a ' ..\n"
    "                           ty .. ', not a set')\n"
    "end\n"
    "local lease = score(now + tonumber(ARGV[1]) / 1000)\n"
    "local n = (#ARGV - 6) / 5\n"
    /* Who still holds which token: the members whose score equals each
     * distinct token (a range query per token, not a score per member:
     * Redis prints scores slowly). */
    "local held = {}\n"
    "for k = 1, n do\n"
    "  local token = ARGV[6 + 5 * (k - 1) + 2]\n"
    "  if not held[token] then\n"
    "    local set = {}\n"
    "    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], token, token, 'BYSCORE')) do\n"
    "      set[m] = true\n"
    "    end\n"
    "    held[token] = set\n"
    "  end\n"
    "end\n"
    "local out, gone, tombs, moves, counts, extended = {}, {}, {}, {}, {}, {}\n"
    "local buried, bury = {}, {}\n"
    "for k = 1, n do\n"
    "  local b = 6 + 5 * (k - 1)\n"
    "  local op, id, x = ARGV[b + 1], ARGV[b + 3], ARGV[b + 4]\n"
    "  if held[ARGV[b + 2]][id] then\n"
    "    out[k] = 1\n"
    "    if op == 'c' then\n"
    "      gone[#gone + 1] = id\n"
    "      if x ~= '' then tombs[#tombs + 1] = x end\n"
    "    elseif op == 'e' then\n"
    "      moves[#moves + 1] = lease\n"
    "      moves[#moves + 1] = id\n"
    "      extended[#extended + 1] = k\n"
    "    elseif op == 'r' then\n"
    "      moves[#moves + 1] = x\n"
    "      moves[#moves + 1] = id\n"
    "      if ARGV[b + 5] ~= '' then\n"
    "        counts[#counts + 1] = id\n"
    "        counts[#counts + 1] = ARGV[b + 5]\n"
    "      end\n"
    "    elseif op == 'x' then\n"
    "      bury[#bury + 1] = {id, tonumber(x), ARGV[b + 5]}\n"
    "    else\n"
    "      moves[#moves + 1] = score(now + tonumber(x) / 1000)\n"
    "      moves[#moves + 1] = id\n"
    "    end\n"
    "  else\n"
    "    out[k] = 0\n"
    "  end\n"
    "end\n"
    "if #bury > 0 then\n" /* their envelopes, before anything is removed */
    "  local names = {}\n"
    "  for i, it in ipairs(bury) do names[i] = it[1] end\n"
    "  local blobs = redis.call('HMGET', KEYS[2], unpack(names))\n"
    "  for i, it in ipairs(bury) do\n"
    "    buried[i] = {it[1], blobs[i] or '', it[2], it[3]}\n"
    "  end\n"
    "end\n"
    "if #gone > 0 then\n"
    "  redis.call('ZREM', KEYS[1], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[2], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[3], unpack(gone))\n"
    "end\n"
    "if #moves > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(moves)) end\n"
    "if #extended > 0 then\n" /* the new token, as Redis prints it */
    "  local token = redis.call('ZSCORE', KEYS[1], ARGV[6 + 5 * (extended[1] - 1) + 3])\n"
    "  for _, k in ipairs(extended) do out[k] = token end\n"
    "end\n"
    "if #counts > 0 then redis.call('HSET', KEYS[3], unpack(counts)) end\n"
    "if #tombs > 0 and ARGV[2] ~= '0' then\n"
    "  redis.call('SADD', KEYS[6], unpack(tombs))\n"
    "  redis.call('PEXPIREAT', KEYS[6], ARGV[2])\n"
    "end\n"
    "dead_letter(buried, tonumber(ARGV[3]), tonumber(ARGV[4]))\n"
    "return out\n";

/* Back from the dead-letter set to the timeline, due at ARGV[2] (score;
 * "" for now), the envelope's activation time patched to match, attempts
 * reset; a wake message when ARGV[3] (channel) is set. */
static const char requeue_lua[] = DENY_OOM CHECK_TYPES NOW
    "local rec = redis.call('HGET', KEYS[5], ARGV[1])\n"
    "if not rec then return 0 end\n"
    "local _, _, _, rlen, pos = struct.unpack('>BI4I8H', rec)\n"
    "local env = string.sub(rec, pos + rlen)\n"
    "local at = ARGV[2] ~= '' and tonumber(ARGV[2]) or now\n"
    "if #env >= 11 and string.byte(env, 1) == 1 then\n"
    "  env = string.sub(env, 1, 1) .. struct.pack('>I8', math.floor(at * 1e6 + 0.5)) ..\n"
    "        string.sub(env, 10)\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], score(at), ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], env)\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "redis.call('HDEL', KEYS[5], ARGV[1])\n"
    "if ARGV[3] ~= '' then\n"
    "  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. score(at))\n"
    "end\n"
    "return 1\n";

/* Moves a timer to ARGV[2] (score) without resending its payload: the
 * envelope's activation time (NATIVE, format 1) patched in place, attempts
 * reset; a wake message when ARGV[3] (channel) is set. A holder's outcome
 * is fenced off by the new score. */
static const char move_lua[] = DENY_OOM CHECK_TYPES
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
    "local env = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if env and #env >= 11 and string.byte(env, 1) == 1 then\n"
    "  env = string.sub(env, 1, 1) .. struct.pack('>I8', tonumber(ARGV[5])) ..\n"
    "        string.sub(env, 10)\n"
    "  redis.call('HSET', KEYS[2], ARGV[1], env)\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "if ARGV[3] ~= '' then\n"
    "  local first = redis.call('ZRANGE', KEYS[1], 0, 0)\n"
    "  if first[1] == ARGV[1] then\n"
    "    redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. ARGV[2])\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* A shard's ownership lease (owned topics). KEYS: the shard's ownership
 * hash {owner, epoch, until (Redis ms)}. ARGV: me, op ('a' acquire or
 * renew, 'r' release), ttl_ms, my epoch ("" when I hold none).
 * 'a' returns {epoch, until}: epoch > 0 when I own it (a new epoch each
 * time the owner changes), 0 when another process holds it until `until`.
 * 'r' returns 1 when it was mine and is now free. */
static const char own_lua[] = ALLOW_OOM NOW
    "local o = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'until')\n"
    "local owner, epoch = o[1], tonumber(o[2] or 0)\n"
    "local held_until = tonumber(o[3] or 0)\n"
    "local now_ms = math.floor(now * 1000)\n"
    "local mine = owner == ARGV[1] and o[2] == ARGV[4]\n"
    "if ARGV[2] == 'r' then\n"
    "  if not mine then return 0 end\n"
    "  redis.call('HSET', KEYS[1], 'until', 0)\n"
    "  return 1\n"
    "end\n"
    "local until_ms = now_ms + tonumber(ARGV[3])\n"
    "if not (mine and held_until >= now_ms) then\n"
    "  if owner and held_until >= now_ms then return {0, held_until} end\n"
    "  epoch = epoch + 1\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', epoch)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'until', until_ms)\n"
    "redis.call('PEXPIRE', KEYS[1], 86400000)\n"
    "return {epoch, until_ms}\n";

/* A topic's live members (owned topics). KEYS: the members sorted set (id
 * -> expiry, Redis ms). ARGV: me, ttl_ms, op ('j' heartbeat, 'l' leave).
 * Returns the live members (after the heartbeat). */
static const char members_lua[] = ALLOW_OOM NOW
    "local now_ms = math.floor(now * 1000)\n"
    "if ARGV[3] == 'l' then\n"
    "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "  return {}\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)\n"
    "redis.call('PEXPIRE', KEYS[1], 86400000)\n"
    "return redis.call('ZRANGE', KEYS[1], 0, -1)\n";

/* ARGV: ids, or none for every dead letter of the shard -> removed. */
static const char purge_lua[] = ALLOW_OOM CHECK_TYPES
    "if #ARGV == 0 then\n"
    "  local n = redis.call('ZCARD', KEYS[4])\n"
    "  redis.call('UNLINK', KEYS[4], KEYS[5])\n"
    "  return n\n"
    "end\n"
    "local n = redis.call('ZREM', KEYS[4], unpack(ARGV))\n"
    "redis.call('HDEL', KEYS[5], unpack(ARGV))\n"
    "return n\n";

/* A removal leaves the call's token in the current bucket's tombstone set,
 * so a retry of the same call (its first reply lost to a timeout or a
 * dropped connection after Redis ran it) that finds nothing still reports
 * the removal. KEYS z, p, a, then (when tokens are kept) the tombstone sets
 * of the buckets before, at and after now. */
static const char cancel_lua[] = ALLOW_OOM
    "local want = {'zset', 'hash', 'hash', 'set', 'set', 'set'}\n"
    "for k = 1, #KEYS do\n"
    "  local ty = redis.call('TYPE', KEYS[k])['ok']\n"
    "  if ty ~= 'none' and ty ~= want[k] then\n"
    "    return redis.error_reply('WRONGTYPE key ' .. KEYS[k] .. ' holds a ' ..\n"
    "                             ty .. ', not a ' .. want[k])\n"
    "  end\n"
    "end\n"
    "local n = redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "if #KEYS == 6 and n == 1 then\n"
    "  redis.call('SADD', KEYS[5], ARGV[2])\n"
    "  redis.call('PEXPIREAT', KEYS[5], ARGV[3])\n"
    "elseif #KEYS == 6 then\n"
    "  for d = 4, 6 do\n"
    "    if redis.call('SISMEMBER', KEYS[d], ARGV[2]) == 1 then n = 1 end\n"
    "  end\n"
    "end\n"
    "return n\n";

/* ZCARD fails first on a wrong-type key; UNLINK removes any type. */
static const char clear_lua[] = ALLOW_OOM
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3])\n"
    "return n\n";

/* allow-oom: readers call it too (a read-only call still counts as a
 * write for the OOM check); the HSETNX is a few bytes once per topic. */
static const char meta_lua[] = ALLOW_OOM
    "if ARGV[1] ~= '' then redis.call('HSETNX', KEYS[1], 'shards', ARGV[1]) end\n"
    "return redis.call('HGET', KEYS[1], 'shards')\n";

const char *const tm__script_source[TM_SCRIPT_COUNT] = {
    [TM_SCRIPT_SCHEDULE] = schedule_lua, [TM_SCRIPT_CLAIM] = claim_lua,
    [TM_SCRIPT_SETTLE] = settle_lua,     [TM_SCRIPT_CANCEL] = cancel_lua,
    [TM_SCRIPT_CLEAR] = clear_lua,       [TM_SCRIPT_META] = meta_lua,
    [TM_SCRIPT_REQUEUE] = requeue_lua,   [TM_SCRIPT_PURGE] = purge_lua,
    [TM_SCRIPT_MOVE] = move_lua,         [TM_SCRIPT_OWN] = own_lua,
    [TM_SCRIPT_MEMBERS] = members_lua,
};
