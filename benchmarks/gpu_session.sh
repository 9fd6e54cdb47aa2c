#!/usr/bin/env bash
# One GPU session: the GPU test lane, then the evaluation benchmarks, each step time-limited, logs in $OUT.
# usage (on the GPU host, from the checkout root, wheels in .whl/): bash benchmarks/gpu_session.sh [steps...]
# steps: lane baseline eval methods compile throughput stability ncu (default: all but ncu)
set -uo pipefail
OUT=${OUT:-/tmp/solgym-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
[ -d /tmp/site/gymnasium ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
steps=${*:-lane baseline eval methods compile throughput stability}
run() {  # name, seconds, command...
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date -u +%FT%TZ))"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "   exit $? ; tail:"
    tail -n 25 "$OUT/$name.log"
}
for step in $steps; do
    case $step in
    lane) run lane 420 bash .whl/gpu-lane.sh -q -rf ;;
    baseline) run baseline 240 env PYTHONPATH=/tmp/site:. python3 -m solgym.cli baseline envs/core/rmsnorm_llama3_8b --json ;;
    eval) run eval 180 env PYTHONPATH=/tmp/site:. python3 -m solgym.cli eval ;;
    methods) run methods 180 env PYTHONPATH=/tmp/site:. python3 benchmarks/timing_methods.py --reps 200 ;;
    compile) run compile 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/compile_time.py --reps 3 ;;
    throughput) run throughput 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/eval_throughput.py --evals 64 ;;
    stability) run stability 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/timing_stability.py --runs 5 ;;
    ncu) run ncu 240 env PYTHONPATH=/tmp/site:. python3 benchmarks/ncu_agreement.py --calls 50 ;;
    *) echo "unknown step $step" ;;
    esac
done
