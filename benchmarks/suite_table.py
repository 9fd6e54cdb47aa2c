"""The table of docs/suite.md: one row per problem of a suite with its provenance and, from the shipped
anchors of one GPU, T_SOL, T_b and the headroom T_b / T_SOL of its largest workload (and the median
headroom over its workloads).

    python benchmarks/suite_table.py [--suite core] [--gpu h100-sxm]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solgym.bounds import derive  # noqa: E402
from solgym.hardware import get_profile  # noqa: E402
from solgym.inputs import footprint_bytes  # noqa: E402
from solgym.problem import load_problem  # noqa: E402
from solgym.rewards import load_anchors  # noqa: E402
from solgym.suite import problems  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="core")
    parser.add_argument("--gpu", default="h100-sxm")
    args = parser.parse_args()
    anchors = load_anchors(args.gpu)
    profile = get_profile(args.gpu)
    print(
        "| problem | model | kind | dtype | dir | roof (largest) | T_SOL µs | T_b µs | T_b/T_SOL | median T_b/T_SOL | workloads |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in sorted(problems(args.suite).items()):
        problem = load_problem(entry.path)
        extra = problem.definition.extra
        provenance = extra.get("provenance", {})
        tags = extra.get("tags", [])
        kind = next((t for t in tags if t in ("single", "fused", "quantized")), "single")
        dtype = next(
            (t for t in tags if t in ("bf16", "fp16", "fp32", "fp8", "bfloat16", "float16", "float32")), ""
        )
        dtype = dtype or next(iter(problem.definition.outputs.values())).dtype
        found = [(w, anchors.get((name, w.uuid))) for w in problem.workloads]
        found = [(w, a) for w, a in found if a is not None]
        if not found:
            print(
                f"| {name} | {provenance.get('model', '')} | {kind} | {dtype} | {provenance.get('direction', '')} "
                f"| | | | | | {len(problem.workloads)} (not anchored) |"
            )
            continue
        largest, anchor = max(found, key=lambda pair: footprint_bytes(problem, pair[0]))
        roof = derive(problem, largest, profile).bound_by
        median = statistics.median(a.t_baseline_ms / a.t_sol_ms for _, a in found)
        print(
            f"| {name} | {provenance.get('model', '')} | {kind} | {dtype} | {provenance.get('direction', '')} "
            f"| {roof} | {anchor.t_sol_ms * 1e3:.2f} | {anchor.t_baseline_ms * 1e3:.2f} "
            f"| {anchor.t_baseline_ms / anchor.t_sol_ms:.1f} | {median:.1f} | {len(found)}/{len(problem.workloads)} |"
        )


if __name__ == "__main__":
    main()
