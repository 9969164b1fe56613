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
 * chunking helpers and the engine's claim_batch limit.
 */
#include "scripts.h"

#define TM_LUA_CHUNKED                                                      \
  "local function each_chunk(cmd, key, list)\n"                             \
  "  for i = 1, #list, 4000 do\n"                                           \
  "    redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))\n" \
  "  end\n"                                                                 \
  "end\n"

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

static const char claim_lua[] =
    "local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE',\n"
    "                       'LIMIT', 0, tonumber(ARGV[3]))\n"
    "local out = {}\n"
    "if #ids > 0 then\n"
    "  local pairs_ = {}\n"
    "  for i, id in ipairs(ids) do\n"
    "    pairs_[2 * i - 1] = ARGV[2]\n"
    "    pairs_[2 * i] = id\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[1], 'XX', unpack(pairs_))\n"
    "  local blobs = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "  for i, id in ipairs(ids) do\n"
    "    if blobs[i] then\n"
    "      out[#out + 1] = id\n"
    "      out[#out + 1] = blobs[i]\n"
    "      out[#out + 1] = redis.call('HINCRBY', KEYS[3], id, 1)\n"
    "    else\n" /* self-heal: a member without payload can never fire */
    "      redis.call('ZREM', KEYS[1], id)\n"
    "      redis.call('HDEL', KEYS[3], id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "return {first[2] or '', out}\n";

static const char commit_lua[] =
    TM_LUA_CHUNKED
    "local gone = {}\n"
    "for i = 1, #ARGV, 2 do\n"
    "  local s = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])\n"
    "  if s and tonumber(s) == tonumber(ARGV[i]) then\n"
    "    gone[#gone + 1] = ARGV[i + 1]\n"
    "  end\n"
    "end\n"
    "if #gone > 0 then\n"
    "  each_chunk('ZREM', KEYS[1], gone)\n"
    "  each_chunk('HDEL', KEYS[2], gone)\n"
    "  each_chunk('HDEL', KEYS[3], gone)\n"
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
