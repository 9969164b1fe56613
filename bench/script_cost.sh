#!/usr/bin/env bash
# script_cost.sh - Redis instructions per fire of the claim + settle
# protocol, under callgrind (exact and repeatable on a noisy machine).
#
#   bench/script_cost.sh [BUILD_DIR] [TIMERS] [SHARDS]
#
# Runs a private redis-server under valgrind --tool=callgrind with its
# instrumentation off; build-bench/bench/script_cost loads the timers with
# plain commands, turns it on, drains them with the engine's scripts, turns
# it off. Prints instructions per fire with tombstones (the default
# dedup_window_ms) and without. Needs valgrind (Debian: valgrind).
set -euo pipefail
build=${1:-build-bench}
n=${2:-20000}
shards=${3:-8}
bin=$build/bench/script_cost
[ -x "$bin" ] || { echo "script_cost.sh: build $bin first (TIMERS_BUILD_BENCH=ON)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "script_cost.sh: valgrind is not installed" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run() { # window label
  local port=$((20000 + RANDOM % 20000))
  valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$dir/cg.out" \
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" >/dev/null 2>&1 &
  local vpid=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$bin" "$port" "$vpid" "$n" "$shards" "$1"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$vpid" || true
  local total
  total=$(awk '/^totals:/ {print $2}' "$dir/cg.out")
  printf '%-22s %6d instructions per fire (%d timers, %d shards)\n' \
    "$2" $((total / n)) "$n" "$shards"
}
run 10000 "claim+settle, dedup:"
run 0 "claim+settle, no dedup:"
