/*
 * scripts.c - the Lua side of the protocol.
 *
 * Scores are Unix seconds. A claim moves each due member's score to the
 * lease expiry passed in ARGV (a string formatted by the client), and that
 * same string is the fencing token: commit removes a member only while its
 * score still equals it. A second claim can only happen once the lease has
 * passed (score <= now), and it then sets a later lease, so tokens of one
 * member never repeat.
 *
 * unpack() is bounded by Lua's C stack (LUAI_MAXCSTACK = 8000), hence the
 * engine's limits: claim_batch <= 2048 (2 values per timer), commits of at
 * most TM_COMMIT_MAX ids, schedule groups of at most TM_SCHEDULE_MAX.
 */
#include "scripts.h"

/* ARGV: channel, shard, earliest score, n, then n (score, id) pairs, then
 * n (id, envelope) pairs: one ZADD and one HSET for the whole group. */
static const char schedule_lua[] =
    "local n = tonumber(ARGV[4])\n"
    "local added = redis.call('ZADD', KEYS[1], unpack(ARGV, 5, 4 + 2 * n))\n"
    "redis.call('HSET', KEYS[2], unpack(ARGV, 5 + 2 * n, 4 + 4 * n))\n"
    "if added < n then\n" /* some replaced: their attempts start over */
    "  local ids = {}\n"
    "  for i = 6, 4 + 2 * n, 2 do ids[#ids + 1] = ARGV[i] end\n"
    "  redis.call('HDEL', KEYS[3], unpack(ids))\n"
    "end\n"
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "if first[2] and tonumber(first[2]) >= tonumber(ARGV[3]) then\n"
    "  redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3])\n"
    "end\n"
    "return n\n";

/* ARGV: now, lease, count, track ("1": count attempts in KEYS[3]).
 * Returns {earliest score after the claim or "", {id, blob, attempts,
 * score before the claim}...}; attempts is 0 when not tracked.
 *
 * A first delivery writes no attempt count: a member whose score still
 * equals the activation time in its envelope (format 1: byte 1 is the
 * format, bytes 2-9 the time in microseconds) was never claimed, so it is
 * attempt 1. Only a re-claim (the score is an old lease) reads and writes
 * KEYS[3], counting a missing entry as 1 delivery. */
static const char claim_lua[] =
    "local function activation_us(blob)\n"
    "  if #blob < 11 or string.byte(blob, 1) ~= 1 then return nil end\n"
    "  local v = 0\n"
    "  for i = 2, 9 do v = v * 256 + string.byte(blob, i) end\n"
    "  return v\n"
    "end\n"
    "local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE',\n"
    "                       'LIMIT', 0, tonumber(ARGV[3]), 'WITHSCORES')\n"
    "local out = {}\n"
    "if #due > 0 then\n"
    "  local ids, leases = {}, {}\n"
    "  for i = 1, #due, 2 do\n"
    "    ids[#ids + 1] = due[i]\n"
    "    leases[#leases + 1] = ARGV[2]\n"
    "    leases[#leases + 1] = due[i]\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[1], 'XX', unpack(leases))\n"
    "  local blobs = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "  local track = ARGV[4] == '1'\n"
    "  local again, again_at, dead = {}, {}, {}\n"
    "  for i, id in ipairs(ids) do\n"
    "    if blobs[i] then\n"
    "      local n = 0\n"
    "      if track then\n"
    "        local at = activation_us(blobs[i])\n"
    "        if at and math.abs(tonumber(due[2 * i]) * 1e6 - at) < 2 then\n"
    "          n = 1\n"
    "        else\n"
    "          again[#again + 1] = id\n"
    "          again_at[#again_at + 1] = #out + 3\n"
    "        end\n"
    "      end\n"
    "      out[#out + 1] = id\n"
    "      out[#out + 1] = blobs[i]\n"
    "      out[#out + 1] = n\n"
    "      out[#out + 1] = due[2 * i]\n"
    "    else\n" /* self-heal: a member without payload can never fire */
    "      dead[#dead + 1] = id\n"
    "    end\n"
    "  end\n"
    "  if #again > 0 then\n"
    "    local seen = redis.call('HMGET', KEYS[3], unpack(again))\n"
    "    local counts = {}\n"
    "    for k, id in ipairs(again) do\n"
    "      local n = (tonumber(seen[k]) or 1) + 1\n"
    "      out[again_at[k]] = n\n"
    "      counts[#counts + 1] = id\n"
    "      counts[#counts + 1] = n\n"
    "    end\n"
    "    redis.call('HSET', KEYS[3], unpack(counts))\n"
    "  end\n"
    "  if #dead > 0 then\n"
    "    redis.call('ZREM', KEYS[1], unpack(dead))\n"
    "    redis.call('HDEL', KEYS[3], unpack(dead))\n"
    "  end\n"
    "end\n"
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "return {first[2] or '', out}\n";

/* ARGV: (lease, id) pairs, at most TM_COMMIT_MAX of them. */
static const char commit_lua[] =
    "local ids = {}\n"
    "for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end\n"
    "local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))\n"
    "local gone = {}\n"
    "for k, id in ipairs(ids) do\n"
    "  local s = scores[k]\n"
    "  if s and tonumber(s) == tonumber(ARGV[2 * k - 1]) then\n"
    "    gone[#gone + 1] = id\n"
    "  end\n"
    "end\n"
    "if #gone > 0 then\n"
    "  redis.call('ZREM', KEYS[1], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[2], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[3], unpack(gone))\n"
    "end\n"
    "return #gone\n";

static const char cancel_lua[] =
    "local n = redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "return n\n";

static const char clear_lua[] =
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "return n\n";

static const char meta_lua[] =
    "redis.call('HSETNX', KEYS[1], 'shards', ARGV[1])\n"
    "return tonumber(redis.call('HGET', KEYS[1], 'shards'))\n";

const char *const tm__script_source[TM_SCRIPT_COUNT] = {
    [TM_SCRIPT_SCHEDULE] = schedule_lua, [TM_SCRIPT_CLAIM] = claim_lua,
    [TM_SCRIPT_COMMIT] = commit_lua,     [TM_SCRIPT_CANCEL] = cancel_lua,
    [TM_SCRIPT_CLEAR] = clear_lua,       [TM_SCRIPT_META] = meta_lua,
};
