#!/usr/bin/env bash
# Anchor the whole core suite on a multi-GPU host, with the GPU lane, the README's evaluation and a
# repeatability check alongside, in two or three commands of under ten minutes each (the anchoring runs in
# the background between them; benchmarks/anchor_gpus.sh does it).
#   bash benchmarks/reanchor_session.sh begin    queue PROBLEMS (default: the core suite, selective scan
#                                                first with a 90 s compile budget) on GPUs 1.., run the
#                                                GPU lane on GPU 0, then let GPU 0 join; wait BEGIN_WAIT_S
#   bash benchmarks/reanchor_session.sh finish   wait for the rest (FINISH_WAIT_S), merge the anchors into
#                                                rewards/ (benchmarks/ship_anchors.py), run `solgym eval`,
#                                                anchor REPEAT (12 problems) again on all GPUs, compare the
#                                                two runs (benchmarks/tb_repeat.py)
# Files come back in $OUT: anchors.jsonl, validity.jsonl, progress.txt, failures.log (anchor_gpus.sh),
# lane.log and gpu-junit.xml, ship.log and <suite>.jsonl (the merged file), eval.txt, run1.tgz and
# run2.tgz (each run's validity reports), repeat.txt.
set -uo pipefail
run1=/tmp/reanchor/run1 run2=/tmp/reanchor/run2
export PYTHONUNBUFFERED=1
repeat_set=(rmsnorm_llama3_8b fp8_act_quant_deepseek_v3 add_rmsnorm_llama3_405b swiglu_mlp_qwen3_0_6b
    layernorm_whisper_large_v3_bwd decoder_self_attention_whisper_large_v3 causal_conv1d_mamba_2_8b
    silu_mul_fp8_quant_deepseek_v3 qk_norm_rope_qwen3_8b gated_rmsnorm_mamba2_2_7b
    moe_topk_softmax_mixtral_8x7b geglu_gemma2_9b)
finished() { [ ! -s "$1/queue" ] && ! ls "$1"/running.* > /dev/null 2>&1; }
case ${1:-} in
begin)
    if [ -n "${PROBLEMS:-}" ]; then
        mapfile -t problems < "$PROBLEMS"
    else
        problems=("selective_scan_mamba_2_8b --compile-wall-s 90")
        for p in $(ls envs/core); do [ "$p" = selective_scan_mamba_2_8b ] || problems+=("$p"); done
    fi
    gpus=$(nvidia-smi -L | wc -l)
    ANCHOR_GPUS=$(seq -s ' ' 1 $((gpus - 1))) bash benchmarks/anchor_gpus.sh start "$run1" "${problems[@]}"
    CUDA_VISIBLE_DEVICES=0 PYTHONPATH=/tmp/site timeout 360 python3 -m pytest -m gpu -q -p no:cacheprovider \
        -rf --junitxml="$OUT/gpu-junit.xml" > "$OUT/lane.log" 2>&1
    echo "lane exit $?"
    tail -n 5 "$OUT/lane.log"
    bash benchmarks/anchor_gpus.sh join "$run1" 0
    bash benchmarks/anchor_gpus.sh wait "$run1" "${BEGIN_WAIT_S:-420}"
    ;;
finish)
    bash benchmarks/anchor_gpus.sh wait "$run1" "${FINISH_WAIT_S:-300}"
    (cd "$run1" && tar czf "$OUT/run1.tgz" done work/*/validity.json)
    finished "$run1" || { echo "run 1 is not finished: nothing shipped"; exit 1; }
    PYTHONPATH=/tmp/site:. python3 benchmarks/ship_anchors.py "$run1" > "$OUT/ship.log" 2>&1 || { cat "$OUT/ship.log"; exit 1; }
    cat "$OUT/ship.log"
    python3 -c "import json,sys; [print(json.loads(l)['file']) for l in open(sys.argv[1])]" "$OUT/ship.log" |
        while read -r f; do cp "$f" "$OUT/"; done
    PYTHONPATH=/tmp/site:. timeout 240 python3 -m solgym.cli eval > "$OUT/eval.txt" 2>&1
    echo "eval exit $?"
    cat "$OUT/eval.txt"
    bash benchmarks/anchor_gpus.sh start "$run2" "${repeat_set[@]}"
    mkdir -p "$OUT/run2"
    OUT=$OUT/run2 bash benchmarks/anchor_gpus.sh wait "$run2" "${REPEAT_WAIT_S:-240}"
    (cd "$run2" && tar czf "$OUT/run2.tgz" done work/*/validity.json)
    python3 benchmarks/tb_repeat.py "$run1" "$run2" > "$OUT/repeat.txt" 2>&1
    cat "$OUT/repeat.txt"
    ;;
*) echo "usage: bash benchmarks/reanchor_session.sh begin|finish" >&2; exit 2 ;;
esac
