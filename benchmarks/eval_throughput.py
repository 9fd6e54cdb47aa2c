"""Evaluation throughput on one GPU: step wall time (submit to EvalResult, one at a time) and evals/min
(many submitted at once through the pool's pre-warmed children), with the stage breakdown.

    python benchmarks/eval_throughput.py [--problem envs/core/rmsnorm_llama3_8b] [--workloads 3]
                                         [--steps 10] [--evals 64] [--gpu 0]

The action is examples/kernels/rmsnorm_triton.py; every evaluation gets its own seed, so nothing is
shared between evaluations except the warm worker pool.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from solgym import judge
from solgym.harness import ENTRY
from solgym.pool import GPU_SPARES, EvalPool
from solgym.problem import load_problem

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default=str(ROOT / "envs" / "core" / "rmsnorm_llama3_8b"))
    parser.add_argument("--action", default=str(ROOT / "examples" / "kernels" / "rmsnorm_triton.py"))
    parser.add_argument(
        "--workloads", type=int, default=3, help="N of the problem's workloads, evenly spread (0: all)"
    )
    parser.add_argument("--steps", type=int, default=10, help="evaluations one at a time, for step wall time")
    parser.add_argument("--evals", type=int, default=64, help="evaluations submitted at once")
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--policy", default="strict")
    parser.add_argument("--diagnose", action="store_true", help="print a cProfile of one child's evaluation")
    parser.add_argument("--no-triton-cache", action="store_true", help="compile the kernel in every child")
    args = parser.parse_args()
    problem = load_problem(args.problem)
    every = list(problem.workloads)
    n = min(args.workloads or len(every), len(every))
    # Evenly spread over the file's workloads, smallest and largest included: not the cheapest three.
    workloads = [every[round(i * (len(every) - 1) / max(n - 1, 1))] for i in range(n)]
    source = Path(args.action).read_text()
    cache_root = tempfile.TemporaryDirectory()  # the action's compiled kernels, kept across its evaluations

    def job(seed: int) -> dict:
        return judge.payload(
            problem,
            {"source": source},
            workloads=workloads,
            seed=seed,
            mode="gpu",
            policy=args.policy,
            triton_cache=None if args.no_triton_cache else Path(cache_root.name),
        )

    with EvalPool([args.gpu]) as pool:
        pool.submit_job(ENTRY, job(0)).result()  # warm: first Triton compile, spare children started
        ready_by = time.monotonic() + 120  # a warm pool: its spares are up before the clock starts
        while pool.health()["live_spares"] < GPU_SPARES and time.monotonic() < ready_by:
            time.sleep(0.2)
        steps, stages = [], []
        for seed in range(1, args.steps + 1):
            start = time.perf_counter()
            outcome = pool.submit_job(ENTRY, job(seed)).result()
            result = judge.judge(outcome, problem, policy=args.policy, workloads=workloads)
            steps.append(time.perf_counter() - start)
            stages.append(result.stage_ms)
            if result.status.value != "PASSED":
                raise SystemExit(f"the benchmark action failed: {result.status} {result.message}")
        if args.diagnose:  # one more step, profiled inside the child
            diagnosed = pool.submit_job(ENTRY, {**job(99), "diagnose": True}).result()
            print((diagnosed.result or {}).get("diagnostics", diagnosed.error), flush=True)
        start = time.perf_counter()
        futures = [pool.submit_job(ENTRY, job(100 + i)) for i in range(args.evals)]
        outcomes = [f.result() for f in futures]
        elapsed = time.perf_counter() - start
        health = pool.health()
    results = [judge.judge(o, problem, policy=args.policy, workloads=workloads) for o in outcomes]
    statuses = [r.status.value for r in results]
    report = {
        "problem": problem.name,
        "workloads": len(workloads),
        "evals": args.evals,
        "steps": len(steps),
        "step_wall_s_p50": statistics.median(steps),
        "step_wall_s_p90": sorted(steps)[max(0, math.ceil(0.9 * len(steps)) - 1)],
        "evals_per_min": args.evals / elapsed * 60,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        "triton_cache_files_first5": [(r.environment or {}).get("triton_cache_files") for r in results[:5]],
        "pool": health,
        "not_passed": [
            {
                "status": r.status.value,
                "message": r.message,
                "violations": [str(v) for v in r.violations],
                "workloads": [f"{w.status}: {w.message}" for w in r.workloads if str(w.status) != "PASSED"],
            }
            for r in results
            if r.status.value != "PASSED"
        ],
        "stage_ms_p50": {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stages[0]},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
