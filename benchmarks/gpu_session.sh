#!/usr/bin/env bash
# One GPU session: the GPU test lane, then the evaluation benchmarks, each step time-limited, logs in $OUT.
# usage (on the GPU host, from the checkout root, wheels in .whl/): bash benchmarks/gpu_session.sh [steps...]
# steps: lane baseline eval methods compile throughput stability ncu profile scores scan tolerances
# (default: lane baseline eval methods compile throughput stability)
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
    compile) run compile 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/compile_time.py --reps ${COMPILE_REPS:-3} ${COMPILE_ARGS:-} ;;
    gpubuild) run gpubuild 240 bash .whl/gpu-lane.sh -q -rf tests/test_build.py ;;
    throughput) run throughput 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/eval_throughput.py --workloads 3 --steps 20 --evals 64 ;;
    stability) run stability 300 env PYTHONPATH=/tmp/site:. python3 benchmarks/timing_stability.py --runs 5 ;;
    ncu) run ncu 240 env PYTHONPATH=/tmp/site:. python3 benchmarks/ncu_agreement.py --calls 50 ${NCU_ARGS:-} ;;
    profile) run profile 180 env PYTHONPATH=/tmp/site:. python3 benchmarks/harness_profile.py --workloads 3 --evals 4 ;;
    scores)
        PYTHONPATH=/tmp/site:. python3 benchmarks/solution_candidates.py > "$OUT/candidates.jsonl"
        run scores 420 env PYTHONPATH=/tmp/site:. python3 -m solgym.cli score core "$OUT/candidates.jsonl" \
            -o "$OUT/scores.jsonl" --json ;;
    scan) run scan 420 env PYTHONPATH=/tmp/site:. SOLGYM_CACHE=/tmp/solgym-cache python3 -m solgym.cli anchors core \
            --problem selective_scan_mamba_2_8b --compile-wall-s 90 --sentinels 0 --out "$OUT/scan" --report "$OUT/scan-validity.json" ;;
    tolerances)  # 8 shards side by side on the one GPU (compile-bound on the host's cores); TOL_BUDGET_S each
        echo "== tolerances ($(date -u +%FT%TZ))"
        for i in 0 1 2 3 4 5 6 7; do
            OMP_NUM_THREADS=2 PYTHONPATH=/tmp/site:. timeout $(( ${TOL_BUDGET_S:-300} + 120 )) python3 \
                benchmarks/calibrate_tolerances.py envs/core --shard $i/8 --resume --budget-s "${TOL_BUDGET_S:-300}" \
                --out "$OUT/tol_$i.jsonl" 2> "$OUT/tol_$i.log" &
        done
        wait
        PYTHONPATH=/tmp/site:. python3 benchmarks/calibrate_tolerances.py --table "$OUT"/tol_*.jsonl > "$OUT/tolerances.md" 2>&1
        tail -n 70 "$OUT/tolerances.md" ;;
    *) echo "unknown step $step" ;;
    esac
done
