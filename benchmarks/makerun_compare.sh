#!/usr/bin/env bash
# `make run` of two clones interleaved (A, B, A, B, ...), RUNS times each; every run starts from a clean
# tree and an empty DVC cache (git checkout + git clean -fdx, keeping .venv). Results: a TSV.
#
#   benchmarks/makerun_compare.sh OLD_CLONE NEW_CLONE [RUNS=3] [OUT=makerun_compare.tsv]
#
# Each clone needs its own .venv (`make .venv/.installed` in it first). Runs take the benchmark lock
# (/work/notes/bench.lock, or $BENCH_LOCK) and run at nice -10 so other jobs at nice >= 0 disturb them less.
set -u
old=$(realpath "$1"); new=$(realpath "$2"); runs=${3:-3}; out=$(realpath -m "${4:-makerun_compare.tsv}")
lock=${BENCH_LOCK:-/work/notes/bench.lock}
echo -e "run\tcode\tcommit\twall_s\tuser_s\tsys_s\tload_before\texit" > "$out"
for i in $(seq 1 "$runs"); do
  for clone in "$old" "$new"; do
    cd "$clone"
    git checkout -q -- . && git clean -fdxq -e .venv
    commit=$(git rev-parse --short HEAD)
    load=$(cut -d' ' -f1 /proc/loadavg)
    timing=$(mktemp)
    flock "$lock" /usr/bin/time -f "%e\t%U\t%S" -o "$timing" nice -n -10 make run > "$clone/../makerun_${commit}_$i.log" 2>&1
    rc=$?
    echo -e "$i\t$(basename "$clone")\t$commit\t$(tail -n1 "$timing")\t$load\t$rc" >> "$out"
    rm -f "$timing"
  done
done
