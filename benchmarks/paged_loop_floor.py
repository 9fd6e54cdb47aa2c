"""The least time any derivation that runs the paged dev problems' references can take.

The two paged FlashInfer-Trace problems of the SOL-ExecBench development set loop in Python: the prefill
over every query token of every request, the decode over every head of every request. A derivation that
runs the reference (on meta tensors or on data) issues those loops' torch calls one by one. This script
times the reference run plainly by torch on the CPU, with no recorder, on the least work per step that the
definition allows (every request one query and one key), and multiplies the time per step by the steps
all of the problem's workloads hold: the time the loops alone take, before anything is counted.

    python benchmarks/paged_loop_floor.py [--data DIR] [--steps N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from solgym.problem import load_problem

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"
PREFILL = "019_mla_paged_prefill_causal_h16_ckv512_kpe64_ps1"
DECODE = "013_gqa_paged_decode_h32_kv8_d128_ps1"


def _prefill_inputs(n: int) -> tuple:
    """`n` requests of one query token over one cached token each."""
    bf16, offsets = torch.bfloat16, torch.arange(n + 1, dtype=torch.int32)
    return (
        torch.randn(n, 16, 512, dtype=bf16),
        torch.randn(n, 16, 64, dtype=bf16),
        torch.randn(n, 1, 512, dtype=bf16),
        torch.randn(n, 1, 64, dtype=bf16),
        offsets,
        offsets.clone(),
        torch.arange(n, dtype=torch.int32),
        0.07,
    )


def _decode_inputs(n: int) -> tuple:
    """`n` requests over one cached token each."""
    bf16 = torch.bfloat16
    return (
        torch.randn(n, 32, 128, dtype=bf16),
        torch.randn(n, 1, 8, 128, dtype=bf16),
        torch.randn(n, 1, 8, 128, dtype=bf16),
        torch.arange(n + 1, dtype=torch.int32),
        torch.arange(n, dtype=torch.int32),
        0.088,
    )


def floor(data: Path, steps: int) -> list[dict]:
    """Per problem: the loop steps of all its workloads, the seconds per step measured, and their product."""
    rows = []
    for name, inputs, per_request, axis in (
        (PREFILL, _prefill_inputs, 1, "total_q"),
        (DECODE, _decode_inputs, 32, "batch_size"),
    ):
        problem = load_problem(data / name)
        run = problem.definition.reference_module().run
        args = inputs(steps // per_request)
        run(*args)  # warm-up
        start = time.perf_counter()
        run(*args)
        per_step = (time.perf_counter() - start) / steps
        total = sum(int(w.axes[axis]) for w in problem.workloads) * per_request
        rows.append(
            {
                "problem": name,
                "workloads": len(problem.workloads),
                "loop_steps": total,
                "seconds_per_step": per_step,
                "loop_seconds": per_step * total,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SOL-ExecBench dev problems")
    parser.add_argument("--steps", type=int, default=2048, help="loop steps timed per problem")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if not (args.data / PREFILL).is_dir() or not (args.data / DECODE).is_dir():
        print(f"the paged dev problems are not under {args.data}; pass --data", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rows = floor(args.data, args.steps)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['problem']}: {row['loop_steps']} loop steps over {row['workloads']} workloads, "
            f"{row['seconds_per_step'] * 1e6:.1f} us a step on the CPU: {row['loop_seconds']:.1f} s for the loops alone"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
