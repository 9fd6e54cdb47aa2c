#!/usr/bin/env bash
# Calibrate the tolerances of the named problems side by side on one GPU (one process each), into ONE
# results file: bash benchmarks/tolerances_redo.sh OUT_FILE BUDGET_S PROBLEM...
set -uo pipefail
out=$1 budget=$2
shift 2
work=$(mktemp -d)
for p in "$@"; do
    OMP_NUM_THREADS=2 PYTHONPATH=/tmp/site:. timeout $((budget + 60)) python3 benchmarks/calibrate_tolerances.py \
        envs/core --problems "$p" --budget-s "$budget" --out "$work/$p.jsonl" 2> "$work/$p.log" > /dev/null &
done
wait
cat "$work"/*.jsonl > "$out"
tail -n 3 "$work"/*.log
PYTHONPATH=/tmp/site:. python3 benchmarks/calibrate_tolerances.py --table "$out"
