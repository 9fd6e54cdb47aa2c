#!/usr/bin/env bash
# Anchor the same problems RUNS times in a row (one run after the other, each through anchor_gpus.sh), in
# the background, to see how well T_b repeats between independent anchoring runs.
#   bash benchmarks/anchor_repeat.sh start DIR RUNS PROBLEM...   start (returns at once)
#   bash benchmarks/anchor_repeat.sh collect DIR SECONDS         wait until done or SECONDS pass; pack into
#                                                               $OUT/repeat.tgz every run's validity.json
#                                                               and logs; print the progress
# Then, here: python benchmarks/tb_repeat.py DIR/run1 DIR/run2 (after unpacking).
set -uo pipefail
cmd=$1 dir=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
case $cmd in
start)
    runs=$1
    shift
    mkdir -p "$dir"
    setsid nohup bash "$0" chain "$dir" "$runs" "$@" > "$dir/chain.log" 2>&1 < /dev/null &
    echo "started $runs runs of $# problems at $(date -u +%FT%TZ)"
    ;;
chain)
    runs=$1
    shift
    for ((r = 1; r <= runs; r++)); do
        echo "run $r start $(date -u +%FT%TZ)"
        bash "$here/anchor_gpus.sh" start "$dir/run$r" "$@"
        mkdir -p "$dir/run$r/out"
        OUT="$dir/run$r/out" bash "$here/anchor_gpus.sh" wait "$dir/run$r" 100000
        echo "run $r end $(date -u +%FT%TZ)"
    done
    echo finished > "$dir/finished"
    ;;
collect)
    limit=$1 t0=$(date +%s)
    while [ ! -f "$dir/finished" ] && [ $(($(date +%s) - t0)) -lt "$limit" ]; do sleep 5; done
    cat "$dir/chain.log"
    for d in "$dir"/run*; do
        echo "== $d"
        cat "$d/done" 2> /dev/null
        for f in "$d"/running.*; do [ -f "$f" ] && echo "running: $(cat "$f")"; done
    done
    (cd "$dir" && tar czf "$OUT/repeat.tgz" --exclude='*.tmp*' chain.log run*/done run*/work/*.log run*/work/*/validity.json run*/work/*/*/core.jsonl 2> /dev/null)
    ls -la "$OUT"
    ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
