#!/usr/bin/env bash
# Anchor part of the core suite on this GPU, a few problems per process so that one slow problem costs only
# its group: bash benchmarks/anchor_chunk.sh NAME GROUP_TIMEOUT_S PROBLEM...
# Appends to $OUT/NAME.jsonl (anchor lines) and $OUT/NAME-validity.jsonl (T_SOL against eager and compile).
# Problems are measured one at a time (ANCHOR_JOBS=1): side by side they share the GPU with timed windows.
set -uo pipefail
[ -d /tmp/site/gymnasium ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
name=$1 limit=$2
shift 2
problems=("$@")
for ((i = 0; i < ${#problems[@]}; i += 4)); do
    group=("${problems[@]:i:4}")
    args=()
    for p in "${group[@]}"; do args+=(--problem "$p"); done
    work=$(mktemp -d)
    echo "== ${group[*]}"
    PYTHONPATH=/tmp/site:. SOLGYM_CACHE=/tmp/solgym-cache timeout "$limit" python3 -m solgym.cli anchors core \
        "${args[@]}" --out "$work" --jobs "${ANCHOR_JOBS:-1}" --sentinels 0 --report "$work/validity.json" 2>&1 | tail -3
    cat "$work"/*/core.jsonl >> "$OUT/$name.jsonl" 2>/dev/null
    python3 -c "import json,sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))['workloads']]" \
        "$work/validity.json" >> "$OUT/$name-validity.jsonl" 2>/dev/null
done
