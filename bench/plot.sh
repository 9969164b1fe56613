#!/usr/bin/env bash
# plot.sh - PNG plots of a benchmark run, with gnuplot (Debian: gnuplot-nox).
#
#   bench/plot.sh [RESULTS_DIR]       default: bench/results
#
# Reads fire.json and lateness_<rate>.txt from RESULTS_DIR (written by
# `tools/run bench`) and writes there:
#   fires_vs_shards.png         engine fires/s, the bare-Redis ceiling
#                               (our scripts) and plain commands (no Lua:
#                               the least work, an upper bound)
#                               against the shard count (medians)
#   fires_vs_workers.png        engine fires/s against workers, no-op and
#                               1 ms handlers, with the workers' limit
#   lateness_cdf.png            lateness CDF per schedule rate (log x)
#   lateness_tail.png           the same as a tail: 1 - quantile (log y)
#   contention_vs_instances.png contested claims, lock waits, ring-full
#                               stalls and fires/s against engine instances
#   shared_vs_owned.png         fires/s and contested claims per 1k fires
#                               against instances (one process each),
#                               shared and owned topics, 8 and 16 shards
# The medians are read from the Google Benchmark JSON with jq when it is
# installed, else with python3.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/bench/results}
fire=$dir/fire.json

command -v gnuplot >/dev/null 2>&1 || {
  echo "plot.sh: gnuplot not found: apt-get install gnuplot-nox" \
       "(tools/setup.sh installs it)" >&2
  exit 1
}
[ -f "$fire" ] || { echo "plot.sh: $fire not found: run tools/run bench" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# medians FILE PREFIX FIELD... : one line per median row (or single run,
# when a benchmark ran once: TIMERS_BENCH_REPS=1) whose name starts with
# PREFIX: the run name, then the fields (missing ones as 0).
medians() {
  local file=$1 prefix=$2; shift 2
  if command -v jq >/dev/null 2>&1; then
    local fields
    fields=$(printf ', (.%s // 0)' "$@")
    jq -r --arg p "$prefix" \
      ".benchmarks[] | select((.aggregate_name == \"median\" or
        .run_type != \"aggregate\") and (.run_name | startswith(\$p)))
        | [.run_name $fields] | @tsv" "$file"
  else
    python3 - "$file" "$prefix" "$@" <<'PY'
import json, sys
path, prefix, fields = sys.argv[1], sys.argv[2], sys.argv[3:]
for b in json.load(open(path))["benchmarks"]:
    if (b.get("aggregate_name") == "median" or
            b.get("run_type") != "aggregate") and b["run_name"].startswith(prefix):
        print("\t".join([b["run_name"]] + [str(b.get(f, 0)) for f in fields]))
PY
  fi
}

# arg NAME RUN_NAME: the value of "NAME:value" in a run name.
arg() { sed -n "s|.*/$1:\([0-9]*\).*|\1|p" <<<"$2"; }

# Drops engine rows with sleeping handlers (handler_ms > 0), and the rows
# of one process per instance (forked:1: shared_vs_owned.png only).
noop() { grep -v -e '/handler_ms:[1-9]' -e '/forked:1' || true; }
# Drops the forked rows only.
inproc() { grep -v '/forked:1' || true; }

# fires/s against shards: engine at 1 poller, 2 workers, batch 256, 1
# instance; ceiling at batch 256.
while IFS=$'\t' read -r name rate; do
  echo "$(arg shards "$name") $rate"
done < <(medians "$fire" "BM_Ceiling/" fires_per_s | grep '/batch:256/') |
  sort -n > "$tmp/ceiling.dat"
while IFS=$'\t' read -r name rate ratio; do
  echo "$(arg shards "$name") $rate $ratio"
done < <(medians "$fire" "BM_Engine/" fires_per_s ratio_to_ceiling |
           grep '/pollers:1/workers:2/batch:256/instances:1/' | noop) |
  sort -n > "$tmp/engine.dat"
while IFS=$'\t' read -r name rate; do
  echo "$(arg shards "$name") $rate"
done < <(medians "$fire" "BM_CeilingPlain/" fires_per_s |
           grep '/batch:256/tombstones:1/' || true) |
  sort -n > "$tmp/plain.dat"

# fires/s against workers at 8 shards, 1 poller, batch 256, 1 instance:
# workers, handler_ms, fires/s, ideal.
while IFS=$'\t' read -r name rate ideal; do
  echo "$(arg workers "$name") $(arg handler_ms "$name") $rate $ideal"
done < <(medians "$fire" "BM_Engine/shards:8/pollers:1/" fires_per_s \
           ideal_fires_per_s | grep '/batch:256/instances:1/handler_ms:' |
           inproc) |
  sort -n > "$tmp/workers.dat"
awk '$2 == 0' "$tmp/workers.dat" > "$tmp/workers_noop.dat"
awk '$2 == 1' "$tmp/workers.dat" > "$tmp/workers_1ms.dat"

# contention against instances, at 8 shards.
while IFS=$'\t' read -r name contested lock_waits ring_full rate; do
  echo "$(arg instances "$name") $contested $lock_waits $ring_full $rate"
done < <(medians "$fire" "BM_Engine/shards:8/pollers:1/workers:2/batch:256/" \
           contested lock_waits ring_full fires_per_s | noop) |
  sort -n > "$tmp/instances.dat"

# shared against owned, one process per instance: shards, owned,
# instances, fires/s, contested per 1k fires.
while IFS=$'\t' read -r name rate contested timers; do
  echo "$(arg shards "$name") $(arg owned "$name") $(arg instances "$name")" \
       "$rate $(awk -v c="$contested" -v n="$timers" \
                'BEGIN { print (n > 0 ? 1000 * c / n : 0) }')"
done < <(medians "$fire" "BM_Engine/" fires_per_s contested timers |
           grep '/forked:1' || true) |
  sort -n -k1,1 -k2,2 -k3,3 > "$tmp/owned.dat"
for s in 8 16; do
  for o in 0 1; do
    awk -v s=$s -v o=$o '$1 == s && $2 == o && $4 > 0' "$tmp/owned.dat" \
      > "$tmp/owned_${s}_$o.dat"
  done
done

lateness=()
for f in "$dir"/lateness_*.txt; do
  [ -f "$f" ] && lateness+=("$f")
done
[ ${#lateness[@]} -eq 0 ] ||  # (printf of nothing prints one empty line)
  mapfile -t lateness < <(printf '%s\n' "${lateness[@]}" |
                          sed 's/.*lateness_\([0-9]*\)\.txt/\1 &/' |
                          sort -n | cut -d' ' -f2-)

common='set terminal pngcairo size 900,560 font "DejaVu Sans,11"
set grid
set key top left'
# x: 1, 2, 4 instances; two y axes from 0
instances_axes='set xtics (1, 2, 4)
set xrange [0.5:4.5]
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics'

gnuplot <<GP
$common
set output "$dir/fires_vs_shards.png"
set title "Due timers fired per second against shards (medians; no-op handlers, 1 poller, 2 workers, claim batch 256)"
set title font ",10"
set xlabel "shards"
set ylabel "timers fired per second"
set logscale x 2
set xrange [0.8:80]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set key top right
set yrange [0:*]
set format y "%.0s%c"
plot "$tmp/ceiling.dat" using 1:2 with linespoints lw 2 pt 7 title "ceiling: bare hiredis loop, same Lua", \
     "$tmp/engine.dat" using 1:2 with linespoints lw 2 pt 5 title "engine", \
     "$tmp/engine.dat" using 1:2:(sprintf("%.0f%%", 100*\$3)) with labels offset 0,1 notitle$(
  [ -s "$tmp/plain.dat" ] && printf '%s' ', \
     "'"$tmp/plain.dat"'" using 1:2 with linespoints lw 2 dt 2 pt 9 title "plain commands, no Lua: an upper bound (no atomicity, no fencing)"')
GP

if [ -s "$tmp/workers.dat" ]; then
  gnuplot <<GP
$common
set output "$dir/fires_vs_workers.png"
set title "Due timers fired per second against workers (medians; 8 shards, 1 poller, claim batch 256)"
set title font ",10"
set xlabel "workers"
set ylabel "timers fired per second"
set logscale x 2
set logscale y 10
set xrange [0.8:80]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set format y "%.0s%c"
set key bottom right
plot "$tmp/workers_noop.dat" using 1:3 with linespoints lw 2 pt 7 title "no-op handlers", \
     "$tmp/workers_1ms.dat" using 1:3 with linespoints lw 2 pt 5 title "1 ms handlers (sleep)", \
     "$tmp/workers_1ms.dat" using 1:4 with lines lw 1 dt 2 title "workers x 1000/s (1 ms handlers' limit)"
GP
fi

if [ ${#lateness[@]} -gt 0 ]; then
  cdf="" tail=""
  for f in "${lateness[@]}"; do
    rate=$(sed 's/.*lateness_\([0-9]*\)\.txt/\1/' <<<"$f")
    cdf+="${cdf:+, }\"$f\" using 2:1 with lines lw 2 title \"$rate timers/s\""
    tail+="${tail:+, }\"$f\" using 2:(1-\$1+1e-7) with lines lw 2 title \"$rate timers/s\""
  done
  gnuplot <<GP
$common
set key bottom right
set output "$dir/lateness_cdf.png"
set title "Lateness CDF (fire time minus activation time; steady rates, 50 ms ahead)"
set xlabel "lateness (ms)"
set ylabel "fraction of timers"
set logscale x 10
set yrange [0:1]
plot $cdf
set output "$dir/lateness_tail.png"
set title "Lateness tail: fraction of timers later than x"
set key top right
set logscale y 10
set yrange [1e-5:1]
set ylabel "1 - quantile"
set format y "10^{%L}"
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2
set arrow from 2, graph 0 to 2, graph 1 nohead dt 2
plot $tail
GP
fi

[ -s "$tmp/instances.dat" ] && gnuplot <<GP
$common
set output "$dir/contention_vs_instances.png"
set title "Engines competing for the same 8 shards (medians per run of the fire benchmark)"
set xlabel "engine instances"
set ylabel "events per run"
set y2label "timers fired per second"
$instances_axes
set format y2 "%.0s%c"
plot "$tmp/instances.dat" using 1:2 with linespoints lw 2 pt 7 title "contested claims", \
     "$tmp/instances.dat" using 1:3 with linespoints lw 2 pt 5 title "lock waits", \
     "$tmp/instances.dat" using 1:4 with linespoints lw 2 pt 9 title "ring-full stalls", \
     "$tmp/instances.dat" using 1:5 axes x1y2 with linespoints lw 2 dt 2 pt 4 title "fires/s (right)"
GP

if [ -n "$(cat "$tmp"/owned_*.dat)" ]; then
  series="" sep=""
  for s in 8 16; do
    for o in 0 1; do
      f=$tmp/owned_${s}_$o.dat
      [ -s "$f" ] || continue
      mode=$([ $o = 1 ] && echo owned || echo shared)
      lc=$([ $s = 8 ] && echo '"#1f77b4"' || echo '"#d62728"')
      series+="$sep\"$f\" using 3:4 with linespoints lw 2 lc rgb $lc pt $((5 + 2 * o)) dt $((1 + o)) title \"$mode, $s shards: fires/s\""
      sep=", "
      series+="$sep\"$f\" using 3:5 axes x1y2 with points lc rgb $lc pt $((4 + 2 * o)) ps 1.5 title \"$mode, $s shards: contested per 1k fires (right)\""
    done
  done
  gnuplot <<GP
$common
set output "$dir/shared_vs_owned.png"
set title "Shared against owned topics, one process per instance (medians; timed after ownership settled)"
set title font ",10"
set xlabel "instances (processes)"
set ylabel "timers fired per second"
set y2label "contested claims per 1000 fires"
$instances_axes
set format y "%.0s%c"
set terminal pngcairo size 900,680 font "DejaVu Sans,11"
set output "$dir/shared_vs_owned.png"
set key outside bottom center horizontal maxcols 2 font ",9"
plot $series
GP
fi

echo "plot.sh: wrote $(cd "$dir" && ls -1 ./*.png | tr '\n' ' ')"
