"""Run-to-run stability of solgym's timing: the same kernel evaluated in several fresh children.

    python benchmarks/timing_stability.py [--runs 10] [--gpu 0]

Reports, per workload of the problem, the median latency of each run, the coefficient of variation across
runs, and the median within-run CV, with the SM clock and throttle reasons NVML saw around each window.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from solgym import judge
from solgym.harness import ENTRY
from solgym.pool import EvalPool
from solgym.problem import load_problem

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default=str(ROOT / "envs" / "core" / "rmsnorm_llama3_8b"))
    parser.add_argument("--action", default=str(ROOT / "examples" / "kernels" / "rmsnorm_triton.py"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gpu", type=int, default=0)
    args = parser.parse_args()
    problem = load_problem(args.problem)
    source = Path(args.action).read_text()
    per_workload: dict[str, list[float]] = {}
    within: dict[str, list[float]] = {}
    clocks = []
    with EvalPool([args.gpu]) as pool:
        for run in range(args.runs):
            outcome = pool.submit_job(
                ENTRY, judge.payload(problem, {"source": source}, seed=run, mode="gpu", policy="permissive")
            ).result()
            report = outcome.result or {}
            env = report.get("environment", {})
            clocks.append(
                {k: env.get(k, {}).get("sm_clock_mhz") for k in ("nvml_before", "nvml_after")}
                | {"reasons": env.get("nvml_after", {}).get("clock_event_reasons")}
            )
            for record in report.get("workloads", []):
                if record.get("latency_ms") is not None:
                    per_workload.setdefault(record["uuid"], []).append(record["latency_ms"])
                    within.setdefault(record["uuid"], []).append(record["timing"]["cv"])
    rows = []
    for uuid, values in per_workload.items():
        mean = statistics.fmean(values)
        rows.append(
            {
                "workload": uuid,
                "median_ms": statistics.median(values),
                "cv_across_runs": statistics.pstdev(values) / mean,
                "cv_within_run_p50": statistics.median(within[uuid]),
            }
        )
        print(
            f"{uuid[:12]:12} median {rows[-1]['median_ms']:.5f} ms  cv across runs {rows[-1]['cv_across_runs']:.3f}  within {rows[-1]['cv_within_run_p50']:.3f}"
        )
    print(json.dumps({"problem": problem.name, "runs": args.runs, "rows": rows, "clocks": clocks}))


if __name__ == "__main__":
    main()
