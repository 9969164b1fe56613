#!/usr/bin/env python3
"""summary.py - the figures of a benchmark run as Markdown tables (medians).

    python3 bench/summary.py [RESULTS_DIR]     default: bench/results

Reads the Google Benchmark JSON files written by `tools/run bench` and
prints: fires/s against the ceiling, what the scripts cost (the ceiling
against plain Redis commands), fires/s against workers with no-op and
1 ms handlers, at-most-once topics, pollers / batch / instances, shared
against owned topics
(one process per instance) and the takeover of a killed owner's shards,
schedule rates against their ceilings, lateness, idle cost, memory,
rings, and the targets of the benchmark issue, met or missed. Errors reported by any benchmark are
listed first.
"""
import json
import os
import re
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results")


def load(name):
    path = os.path.join(DIR, name + ".json")
    if not os.path.exists(path):
        return []
    return json.load(open(path))["benchmarks"]


def args(run_name):
    return {k: int(v) for k, v in re.findall(r"/(\w+):(\d+)", run_name)}


def rows(benches, prefix):
    """Median rows (or the single run when not aggregated) by run name."""
    out = []
    for b in benches:
        if not b["run_name"].startswith(prefix):
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):  # listed under Errors, no counters
            continue
        out.append((args(b["run_name"]), b))
    return out


def cv(benches, run_name, field):
    """Coefficient of variation of a counter over the repetitions."""
    for b in benches:
        if b["run_name"] == run_name and b.get("aggregate_name") == "cv":
            return b.get(field, 0)
    return 0


def pooled(rate):
    """p99, p999, max (ms) over every repetition, from lateness_<rate>.txt."""
    path = os.path.join(DIR, f"lateness_{rate}.txt")
    if not os.path.exists(path):
        return None
    pts = [tuple(map(float, line.split())) for line in open(path)
           if line.strip() and not line.startswith("#")]
    def q(x):
        return next((ms for qq, ms in pts if qq >= x), pts[-1][1])
    return q(0.99), q(0.999), pts[-1][1]


def errors(benches):
    return [(b["name"], b.get("error_message", "")) for b in benches
            if b.get("error_occurred")]


def k(v):
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.3g}"


def table(head, lines):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for line in lines:
        print("| " + " | ".join(str(x) for x in line) + " |")
    print()


fire, sched, late = load("fire"), load("schedule"), load("lateness")
idle, ring = load("idle_memory"), load("ring")
errs = [e for f in (fire, sched, late, idle, ring) for e in errors(f)]
if errs:
    print("## Errors\n")
    for name, msg in errs:
        print(f"- {name}: {msg}")
    print()

targets = []

SWEEP = (8, 1, 256, 1)  # shards, pollers, batch, instances of the worker sweep


def handler_ms(a):
    return a.get("handler_ms", 0)  # runs before the handler dimension: 0


def forked(a):
    return a.get("forked", 0) == 1  # runs before the dimension: in-process


def in_sweep(a):
    return (a["shards"], a["pollers"], a["batch"], a["instances"]) == SWEEP \
        and not forked(a)


def per_1k(b):
    return 1000 * b.get("contested", 0) / b["timers"] if b.get("timers") else 0


if fire:
    ceil = {(a["shards"], a["batch"]): b["fires_per_s"]
            for a, b in rows(fire, "BM_Ceiling/")}
    ceil_cpu = {(a["shards"], a["batch"]): b.get("redis_cpu_util", 0)
                for a, b in rows(fire, "BM_Ceiling/")}
    ceil_cv = {(a["shards"], a["batch"]): cv(fire, b["run_name"], "fires_per_s")
               for a, b in rows(fire, "BM_Ceiling/")}
    every = rows(fire, "BM_Engine/")
    eng = [(a, b) for a, b in every if not forked(a)]
    print("## Fires per second (100k due timers, no-op handlers)\n")
    lines = []
    for a, b in eng:
        if (a["pollers"], a["workers"], a["batch"], a["instances"],
                handler_ms(a)) == (1, 2, 256, 1, 0):
            lines.append((a["shards"], k(b["fires_per_s"]),
                          f"{cv(fire, b['run_name'], 'fires_per_s'):.2f}",
                          k(ceil.get((a["shards"], 256), 0)),
                          f"{ceil_cv.get((a['shards'], 256), 0):.2f}",
                          f"{b['ratio_to_ceiling']:.2f}",
                          f"{b.get('paired_ratio', 0):.2f}",
                          f"{b.get('redis_cpu_util', 0):.2f}",
                          f"{ceil_cpu.get((a['shards'], 256), 0):.2f}",
                          int(b["contested"]),
                          int(b["lock_waits"]), int(b["ring_full"])))
            targets.append((f"fires/s >= 90% of ceiling, {a['shards']} shards",
                            b["ratio_to_ceiling"] >= 0.9,
                            f"{b['ratio_to_ceiling']:.2f} "
                            f"(paired {b.get('paired_ratio', 0):.2f})"))
    table(["shards", "engine fires/s", "cv", "ceiling fires/s", "cv", "ratio",
           "paired ratio",
           "Redis CPU (engine)", "Redis CPU (ceiling)",
           "contested", "lock waits", "ring full"], lines)

    once = rows(fire, "BM_EngineAtMostOnce/")
    if once:
        base = {a["shards"]: b for a, b in eng
                if (a["pollers"], a["workers"], a["batch"], a["instances"],
                    handler_ms(a)) == (1, 2, 256, 1, 0)}
        print("## At-most-once topics (a claim removes: no lease, no settle; "
              "no-op handlers, 1 poller, 2 workers)\n")
        lines = []
        for a, b in once:
            r = base.get(a["shards"], {})
            lines.append((a["shards"], k(b["fires_per_s"]),
                          k(r.get("fires_per_s", 0)),
                          f"{b['fires_per_s'] / r['fires_per_s']:.2f}"
                          if r.get("fires_per_s") else "",
                          f"{b.get('paired_ratio', 0):.2f}",
                          f"{b.get('redis_us_per_fire', 0):.2f}",
                          f"{r.get('redis_us_per_fire', 0):.2f}"))
        table(["shards", "at-most-once fires/s", "at-least-once fires/s",
               "ratio", "paired ratio (to the at-least-once ceiling)",
               "Redis us/fire (at most once)",
               "Redis us/fire (at least once)"], lines)

    plain = rows(fire, "BM_CeilingPlain/")
    if plain:
        scripts_us = {(a["shards"], a["batch"]): b.get("redis_us_per_fire", 0)
                      for a, b in rows(fire, "BM_Ceiling/")}
        print("## What the scripts cost (bare loops, one connection, batch 256)\n")
        lines = []
        for a, b in plain:
            key = (a["shards"], a["batch"])
            lines.append((a["shards"], a["batch"],
                          "on" if a["tombstones"] else "off",
                          k(ceil.get(key, 0)),
                          f"{scripts_us.get(key, 0):.2f}",
                          k(b["fires_per_s"]),
                          f"{b.get('redis_us_per_fire', 0):.2f}",
                          f"{b.get('scripts_ratio', 0):.2f}",
                          int(b.get("commands", 0))))
        table(["shards", "batch", "tombstones", "scripts fires/s",
               "Redis us/fire (scripts)", "plain commands fires/s",
               "Redis us/fire (plain)", "scripts / plain", "plain commands"],
              lines)
        print("(scripts: the CLAIM + SETTLE Lua, the engine's ceiling; plain: "
              "ZRANGE BYSCORE, ZADD XX, HMGET, ZREM, HDEL (+ tombstone ZADD, "
              "ZREMRANGEBYSCORE, PEXPIRE) without Lua, atomicity or fencing: "
              "the least work per fire, an upper bound, not a protocol.)\n")

    sweep = sorted(((a, b) for a, b in eng if in_sweep(a)),
                   key=lambda x: (handler_ms(x[0]), x[0]["workers"]))
    for ms in sorted({handler_ms(a) for a, _ in sweep}):
        part = [(a, b) for a, b in sweep if handler_ms(a) == ms]
        if ms == 0:
            print("## Fires per second against workers, no-op handlers "
                  "(8 shards, 1 poller, batch 256)\n")
            ref_head = ["paired ceiling", "paired ratio"]
            ref = lambda b: (k(b.get("paired_ceiling_fires_per_s", 0)),
                             f"{b.get('paired_ratio', 0):.2f}")
        else:
            print(f"## Fires per second against workers, {ms} ms handlers "
                  "(sleep; 8 shards, 1 poller, batch 256)\n")
            ref_head = ["ideal (workers x 1000 / ms)", "ratio to ideal",
                        "worker busy"]
            ref = lambda b: (k(b.get("ideal_fires_per_s", 0)),
                             f"{b.get('ratio_to_ideal', 0):.2f}",
                             f"{b.get('worker_busy', 0):.2f}")
        lines = []
        for a, b in part:
            lines.append((a["workers"], int(b["timers"]), k(b["fires_per_s"]),
                          *ref(b), f"{b.get('redis_cpu_util', 0):.2f}",
                          int(b.get("worker_sleeps", 0)),
                          int(b.get("worker_wakeups", 0)),
                          int(b.get("poller_kicks", 0)),
                          int(b["lock_waits"]), int(b["ring_full"]),
                          int(b.get("extended", 0)), int(b.get("released", 0))))
        table(["workers", "timers", "fires/s", *ref_head, "Redis CPU",
               "worker sleeps", "worker wakeups", "poller kicks", "lock waits",
               "ring full", "extended", "released"], lines)

    print("## Pollers, claim batch, instances (8 shards, no-op handlers)\n")
    lines = []
    for a, b in eng:
        default = (a["shards"], a["pollers"], a["workers"], a["batch"],
                   a["instances"], handler_ms(a)) == (8, 1, 2, 256, 1, 0)
        if a["shards"] == 8 and handler_ms(a) == 0 and \
                (default or not in_sweep(a)):
            lines.append((a["pollers"], a["workers"], a["batch"], a["instances"],
                          k(b["fires_per_s"]), f"{b['ratio_to_ceiling']:.2f}",
                          f"{b.get('paired_ratio', 0):.2f}",
                          f"{b.get('redis_cpu_util', 0):.2f}",
                          int(b["contested"]), int(b["claim_calls"]),
                          int(b["lock_waits"]), f"{b['lock_wait_ns'] / 1e6:.2f}",
                          int(b["ring_full"]), int(b["poller_sleeps"]),
                          int(b["worker_sleeps"]), int(b["cas_retries"])))
    table(["pollers", "workers", "batch", "instances", "fires/s", "ratio",
           "paired ratio", "Redis CPU", "contested", "claim calls", "lock waits", "lock wait ms",
           "ring full", "poller sleeps", "worker sleeps", "cas retries"], lines)

if fire:
    fk = {(a["shards"], a["instances"], a.get("owned", 0)): b
          for a, b in every if forked(a)}
    if fk:
        print("## Shared against owned (one process per instance, no-op "
              "handlers, 1 poller, 2 workers, batch 256)\n")
        lines = []
        for shards, inst in sorted({(s, i) for s, i, _ in fk}):
            sh, ow = fk.get((shards, inst, 0)), fk.get((shards, inst, 1))
            def f(b, key, fmt="{:.0f}"):
                return fmt.format(b.get(key, 0)) if b else "-"
            lines.append((
                shards, inst,
                k(sh["fires_per_s"]) if sh else "-",
                k(ow["fires_per_s"]) if ow else "-",
                f"{ow['fires_per_s'] / sh['fires_per_s']:.2f}"
                if sh and ow else "-",
                f(sh, "paired_ratio", "{:.2f}") + " / " +
                f(ow, "paired_ratio", "{:.2f}"),
                f"{per_1k(sh):.1f}" if sh else "-",
                f"{per_1k(ow):.1f}" if ow else "-",
                f(sh, "claim_calls") + " / " + f(ow, "claim_calls"),
                f(ow, "settle_s", "{:.2f}"),
                f(ow, "shards_most") + "-" + f(ow, "shards_fewest")
                if ow else "-",
                f(ow, "ownership_moves")))
        table(["shards", "instances", "shared fires/s", "owned fires/s",
               "owned / shared", "paired ratio (shared / owned)",
               "contested per 1k fires, shared", "contested per 1k, owned",
               "claim calls (shared / owned)", "owned: settle s",
               "owned: shards per instance (most-fewest)",
               "owned: ownership moves"], lines)
        print("(Each instance is its own process. Timers are loaded after the "
              "engines settled (owned: every shard OK in exactly one engine, "
              "the rendezvous split; settle s = from the start signal until "
              "then), all due at one moment after the load; fires/s counts "
              "from that moment to the last handler call. Counters are those "
              "of the timed part, summed over the instances.)\n")
    take = rows(fire, "BM_Takeover/")
    if take:
        print("## Takeover of a killed owner's shards (owned topic, 2 "
              "processes)\n")
        lines = []
        for a, b in sorted(take, key=lambda x: x[0]["owner_ttl_ms"]):
            ttl = a["owner_ttl_ms"]
            lines.append((a["shards"], ttl, f"{b['takeover_s']:.2f}",
                          f"{b['takeover_per_ttl']:.2f}",
                          f"{cv(fire, b['run_name'], 'takeover_s'):.2f}",
                          f"{b['probe_fire_s']:.2f}",
                          f"{b['probe_per_ttl']:.2f}",
                          f"{b['settle_s']:.2f}", f"{b['child_shards']:.0f}"))
            targets.append((f"killed owner's shards taken over within "
                            f"1.5 x owner_ttl_ms ({ttl} ms; timers.h)",
                            b["takeover_s"] * 1000 <= 1.5 * ttl,
                            f"{b['takeover_s']:.2f} s (median)"))
        table(["shards", "owner_ttl_ms", "takeover s", "/ ttl", "cv",
               "probe fired s", "/ ttl", "split settle s",
               "child's shards"], lines)
        print("(From the SIGKILL of the child: until this process's engine "
              "owns every shard; until a timer due at the kill on one of the "
              "child's shards fires. Medians.)\n")

if sched:
    print("## Scheduling (16-byte ids, 32-byte payload, 8 shards)\n")
    ev = {a["batch"]: b["timers_per_s"]
          for a, b in rows(sched, "BM_ScheduleCeiling_evalsha/")}
    pl = {a["batch"]: b["timers_per_s"]
          for a, b in rows(sched, "BM_ScheduleCeiling_plain/")}
    lines = []
    for a, b in rows(sched, "BM_Schedule_"):
        kind = "schedule" if "single" in b["run_name"] else "schedule_batch"
        lines.append((kind, a["batch"], a["threads"], k(b["timers_per_s"]),
                      k(ev.get(a["batch"], 0)), f"{b['ratio_to_ceiling']:.2f}",
                      f"{b.get('paired_ratio', 0):.2f}",
                      k(pl.get(a["batch"], 0)), f"{b['ratio_to_plain']:.2f}"))
        if kind == "schedule_batch" and a["threads"] == 1:
            targets.append((f"schedule_batch({a['batch']}) >= 90% of bare "
                            "EVALSHA pipeline", b["ratio_to_ceiling"] >= 0.9,
                            f"{b['ratio_to_ceiling']:.2f} "
                            f"(paired {b.get('paired_ratio', 0):.2f})"))
    table(["call", "batch", "threads", "timers/s", "ceiling (EVALSHA)",
           "ratio", "paired ratio", "plain ZADD+HSET", "ratio to plain"],
          lines)

if late:
    print("## Lateness (steady rate, 3 s, 50 ms ahead; exact per timer)\n")
    lines = []
    for a, b in rows(late, "BM_Lateness/"):
        pool = pooled(a["rate"])
        lines.append((a["rate"], int(b["timers"]), f"{b['p50_ms']:.2f}",
                      f"{b['p99_ms']:.2f}", f"{b['p999_ms']:.2f}",
                      f"{b['max_ms']:.2f}",
                      " / ".join(f"{v:.2f}" for v in pool) if pool else "-",
                      f"{b['hist_p99_ms']:.2f}",
                      f"{b['producer_lag_max_ms']:.2f}"))
        bound = {10000: 2.0, 2000: 1.0}.get(a["rate"])
        if bound:
            targets.append((f"p99 <= {bound:g} ms at {a['rate']}/s",
                            b["p99_ms"] <= bound, f"{b['p99_ms']:.2f} ms"))
    table(["rate/s", "timers", "p50 ms", "p99 ms", "p999 ms", "max ms",
           "all repetitions pooled: p99 / p999 / max ms",
           "engine histogram p99 ms", "producer lag max ms"], lines)
    print("(p50..max: medians over the repetitions of each one's percentile; "
          "pooled: over the samples of all repetitions together.)\n")

if idle:
    for a, b in rows(idle, "BM_Idle"):
        print("## Idle engine (8 shards, nothing due)\n")
        table(["window s", "client cmds/s", "per shard", "Redis calls/s "
               "(incl. in scripts)", "wake p50 ms", "wake max ms", "wakes"],
              [(f"{b['window_s']:.1f}", f"{b['client_cmds_per_s']:.3f}",
                f"{b['client_cmds_per_s_per_shard']:.3f}",
                f"{b['redis_calls_per_s']:.3f}", f"{b['wake_p50_ms']:.2f}",
                f"{b['wake_max_ms']:.2f}", int(b["wakes"]))])
        targets.append(("idle <= 0.1 cmds/s per shard",
                        b["client_cmds_per_s_per_shard"] <= 0.1,
                        f"{b['client_cmds_per_s_per_shard']:.3f}"))
        targets.append(("wake (other process) within 2 ms, max",
                        b["wake_max_ms"] <= 2.0, f"{b['wake_max_ms']:.2f} ms"))
    lines = []
    for name in ("BM_Memory/", "BM_MemoryPlain/"):
        for a, b in rows(idle, name.rstrip("/")):
            if not b["run_name"].startswith(name.rstrip("/") + "/"):
                continue
            lines.append((name.strip("/"), int(b["timers"]),
                          f"{b['used_memory_per_timer']:.1f}",
                          f"{b['zset_per_timer']:.1f}",
                          f"{b['hash_per_timer']:.1f}",
                          f"{b['attempts_hash_per_timer']:.1f}",
                          f"{b['keys_per_timer']:.1f}", int(b["value_bytes"])))
    if lines:
        print("## Redis memory per pending timer (bytes; 16-byte id, 32-byte payload)\n")
        table(["layout", "timers", "used_memory delta", "sorted sets",
               "payload hashes", "attempt hashes", "keys total",
               "stored value bytes"], lines)

if ring:
    print("## Rings (capacity 4096)\n")
    lines = []
    for a, b in rows(ring, "BM_Ring_"):
        kind = b["run_name"].split("/")[0].replace("BM_Ring_", "")
        if kind.startswith("lane_"):
            continue
        lines.append((kind, a["producers"], a["consumers"],
                      f"{b['items_per_s'] / 1e6:.1f}M", int(b["full"]),
                      int(b["empty"]), int(b["waits"])))
    table(["queue", "producers", "consumers", "items/s", "full", "empty",
           "cond waits"], lines)
    lines = []
    for a, b in rows(ring, "BM_Ring_lane_"):
        kind = b["run_name"].split("/")[0].replace("BM_Ring_lane_", "")
        lines.append(({"spsc": "SPMC out, SPSC per worker back (engine)",
                       "mpsc": "SPMC out, one MPSC back (former)"}.get(kind, kind),
                      a["consumers"], f"{b['items_per_s'] / 1e6:.2f}M",
                      f"{cv(ring, b['run_name'], 'items_per_s'):.2f}",
                      int(b["full"]), int(b["empty"])))
    if lines:
        print("## Lane round trips (1 poller -> workers -> poller)\n")
        table(["lane", "workers", "jobs/s", "cv", "poller at limit",
               "empty polls"], lines)

if targets:
    print("## Targets\n")
    table(["target", "met", "measured"],
          [(t, "yes" if ok else "NO", v) for t, ok, v in targets])
