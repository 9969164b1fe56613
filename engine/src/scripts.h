/*
 * scripts.h - the server-side Lua scripts of the protocol, and the shape of
 * their arguments and replies (one definition, for the poller, producers
 * and the benchmarks). Each script is loaded once per connection (SCRIPT
 * LOAD) and called by EVALSHA. Every script takes the keys of one shard
 * (keys.h: z, p, a, then tombstone sets), so a call touches one Redis
 * Cluster slot.
 *
 * Time: claim and settle read Redis's own clock (TIME) where they take
 * effect, so a call that waited in a stalled Redis never sets a lease that
 * is already over, and clients' clocks do not matter for leases and due
 * checks. Scores are Unix seconds, written "%.6f"; a lease token is the
 * score as Redis prints it, so fencing compares strings.
 *
 * Under maxmemory with noeviction, claim and settle still run (they are
 * declared allow-oom: firing is what frees memory); schedule is refused
 * with an OOM error before it writes anything.
 */
#ifndef TIMERS_SCRIPTS_H
#define TIMERS_SCRIPTS_H

#define TM_COMMIT_MAX 1024   /* items per settle call */
#define TM_SCHEDULE_MAX 1000 /* timers per schedule call */

typedef enum tm_script {
  TM_SCRIPT_SCHEDULE,
  TM_SCRIPT_CLAIM,
  TM_SCRIPT_SETTLE,
  TM_SCRIPT_CANCEL,
  TM_SCRIPT_CLEAR,
  TM_SCRIPT_META,
  TM_SCRIPT_REQUEUE,
  TM_SCRIPT_PURGE,
  TM_SCRIPT_MOVE,
  TM_SCRIPT_OWN,
  TM_SCRIPT_MEMBERS,
  TM_SCRIPT_COUNT
} tm_script;

extern const char *const tm__script_source[TM_SCRIPT_COUNT];

/* SCHEDULE  KEYS: z, p, a, the tombstone sets of buckets B-1, B, B+1.
 *           ARGV: channel ("" for none), shard, n, then n quads (score, id,
 *           envelope, tombstone token (8 bytes, "" for none)).
 *           Returns {written, skipped}: skipped timers are identical to the
 *           stored one (a retried write) or tombstoned (fired recently). */
enum { TM_SCHEDULE_ARGS = 3, TM_SCHEDULE_STRIDE = 4, TM_SCHEDULE_KEYS = 6 };

/* CLAIM     KEYS: z, p, a, x, y, the shard's ownership hash.
 *           ARGV: lease_ms, count, flags ("a": count attempts, "u": remove
 *           members that are not UTF-8, "m": at most once, remove what is
 *           claimed instead of leasing it), max_attempts ("0": unlimited),
 *           dead_max, dead_ttl_ms, owner ("" for a shared topic), epoch.
 *           An owner that lost the shard (FENCE) gets a "FENCED" error.
 *           Returns {now, lease, earliest score after the claim or "",
 *           self-healed count, dead-lettered count, {id, envelope, attempt,
 *           score before}...}; attempt is 0 when not counted. The lease
 *           string is the fencing token of every timer of this claim. A
 *           re-claim past max_attempts is dead-lettered, not returned. */
enum {
  TM_CLAIM_NOW = 0,
  TM_CLAIM_LEASE = 1,
  TM_CLAIM_NEXT = 2,
  TM_CLAIM_HEALED = 3,
  TM_CLAIM_BURIED = 4,
  TM_CLAIM_ITEMS = 5,
  TM_CLAIM_REPLY_LEN = 6,
  TM_CLAIM_ARGS = 8,
  TM_CLAIM_KEYS = 6,
  TM_CLAIM_STRIDE = 4 /* id, envelope, attempt, score before */
};

/* SETTLE    KEYS: z, p, a, x, y, the tombstone set of the current bucket B,
 *           the shard's ownership hash.
 *           ARGV: lease_ms, the tombstone set's expiry (Unix ms, the end
 *           of bucket B + 1; "0": no tombstones), dead_max, dead_ttl_ms,
 *           owner ("" for a shared topic), epoch, then items of TM_SETTLE_STRIDE: op, token, id, x, y. Each item
 *           acts only while the member's score still equals token (the
 *           lease its holder was given):
 *             'c' commit (ack/reject): remove; x: tombstone token or ""
 *             'x' dead-letter: move to x/y; x: attempts, y: reason
 *             'e' extend: score = now + lease_ms
 *             'r' release (unstarted): score = x (its score before the
 *                 claim); y: attempts to record, "" to leave them
 *             'n' nack: score = now + x milliseconds
 *           Returns one entry per item: 0 when fenced off (the lease was
 *           lost), else 1, or for 'e' the new token. */
enum { TM_SETTLE_ARGS = 6, TM_SETTLE_STRIDE = 5, TM_SETTLE_KEYS = 7 };

/* CANCEL    KEYS: z, p, a (and, with tombstones, the tombstone sets of the
 *           buckets before, at and after now). ARGV: id (and the call's
 *           8-byte token, the current set's expiry in Unix ms) -> 1
 *           removed (by this call, also by an earlier attempt of it),
 *           0 not there.
 * CLEAR     KEYS: z, p, a -> members removed (cancel_all of one shard).
 * REQUEUE   KEYS: z, p, a, x, y. ARGV: id, score ("" now), wake channel
 *           ("" none), shard -> 1 moved back to the timeline, 0 not dead.
 * PURGE     KEYS: z, p, a, x, y. ARGV: ids (none: all) -> removed.
 * MOVE      KEYS: z, p, a. ARGV: id, score, wake channel ("" none), shard,
 *           activation microseconds -> 1 moved, 0 not pending.
 * OWN       KEYS: ownership hash. ARGV: me, 'a'|'r', ttl_ms, my epoch
 *           -> 'a': {epoch (0: another owner), until ms}; 'r': 0|1.
 * MEMBERS   KEYS: members set. ARGV: me, ttl_ms, 'j'|'l' -> live members.
 * META      KEYS: meta; ARGV: shards to record ("" only reads) -> the
 *           recorded value as stored (a string, or nil). */

#endif
