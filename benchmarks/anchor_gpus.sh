#!/usr/bin/env bash
# Anchor problems of the core suite on every GPU of this host: one problem per GPU at a time (a GPU never
# shares a timed window), the longest problems first, in the background so that the work outlives one
# command of a few minutes.
#   bash benchmarks/anchor_gpus.sh start DIR PROBLEM...   queue the problems, start one worker per GPU
#     (a PROBLEM may carry its own arguments after it, quoted as one word: "selective_scan_mamba_2_8b
#     --compile-wall-s 90")
#   bash benchmarks/anchor_gpus.sh join DIR GPU           one more worker, on GPU, for what is still queued
#   bash benchmarks/anchor_gpus.sh wait DIR SECONDS       wait until all are done or SECONDS pass, collect
# ANCHOR_GPUS (e.g. "1 2 3") names the GPUs `start` uses; default: all of them.
# Each problem runs `solgym anchors core --problem P --device G --out DIR/work/P --sentinels 0` under
# ANCHOR_LIMIT_S (default 1800: three passes of each baseline), with ANCHOR_ARGS added (e.g. --passes 1).
# `wait` writes into $OUT: anchors.jsonl
# (the lines of every finished problem), validity.jsonl (T_SOL against eager and compile), progress.txt
# (problem, GPU, exit status, seconds; then what is running and queued) and failures.log (the tail of each
# failed problem's log).
set -uo pipefail
cmd=$1 dir=$2
shift 2
site() { [ -d /tmp/site/gymnasium ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; }
take() {  # the next queued problem, or nothing
    (
        flock 9
        head -n 1 "$dir/queue"
        sed -i 1d "$dir/queue"
    ) 9> "$dir/queue.lock"
}
case $cmd in
start)
    site
    mkdir -p "$dir/work"
    printf '%s\n' "$@" > "$dir/queue"
    : > "$dir/done"
    gpus=${ANCHOR_GPUS:-$(seq -s ' ' 0 $(($(nvidia-smi -L | wc -l) - 1)))}
    for g in $gpus; do
        setsid nohup bash "$0" worker "$dir" "$g" > "$dir/worker$g.log" 2>&1 < /dev/null &
    done
    echo "started workers on GPUs $gpus for $# problems at $(date -u +%FT%TZ)"
    ;;
join)  # one more worker, on GPU $1, for the problems still queued
    setsid nohup bash "$0" worker "$dir" "$1" > "$dir/worker$1.log" 2>&1 < /dev/null &
    echo "GPU $1 joined at $(date -u +%FT%TZ)"
    ;;
worker)
    g=$1
    while line=$(take) && [ -n "$line" ]; do
        read -r p own <<< "$line"
        echo "$p" > "$dir/running.$g"
        t0=$(date +%s)
        mkdir -p "$dir/work/$p"
        PYTHONPATH=/tmp/site:. SOLGYM_CACHE=/tmp/solgym-cache OMP_NUM_THREADS=4 timeout "${ANCHOR_LIMIT_S:-1800}" \
            python3 -m solgym.cli anchors core --problem "$p" --device "$g" --out "$dir/work/$p" --sentinels 0 \
            ${ANCHOR_ARGS:-} $own --report "$dir/work/$p/validity.json" > "$dir/work/$p.log" 2>&1
        rc=$?
        echo "$p gpu$g rc=$rc $(($(date +%s) - t0))s" >> "$dir/done"
        rm -f "$dir/running.$g"
    done
    ;;
wait)
    limit=$1 t0=$(date +%s)
    while [ $(($(date +%s) - t0)) -lt "$limit" ]; do
        [ -s "$dir/queue" ] || ls "$dir"/running.* > /dev/null 2>&1 || break
        sleep 5
    done
    cat "$dir"/work/*/*/core.jsonl > "$OUT/anchors.jsonl" 2> /dev/null
    for f in "$dir"/work/*/validity.json; do
        [ -f "$f" ] && python3 -c "import json,sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))['workloads']]" "$f"
    done > "$OUT/validity.jsonl"
    {
        cat "$dir/done"
        for f in "$dir"/running.*; do [ -f "$f" ] && echo "running: $(cat "$f")"; done
        echo "queued: $(tr '\n' ' ' < "$dir/queue")"
    } > "$OUT/progress.txt"
    grep -v 'rc=0 ' "$dir/done" | while read -r p _; do
        echo "== $p"
        tail -n 15 "$dir/work/$p.log"
    done > "$OUT/failures.log"
    echo "done $(wc -l < "$dir/done"), anchors $(wc -l < "$OUT/anchors.jsonl"), at $(date -u +%FT%TZ)"
    tail -n 8 "$OUT/progress.txt"
    ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
