"""Evaluation throughput on one GPU: step wall time (submit to EvalResult, one at a time) and evals/min
(many submitted at once through the pool's pre-warmed children), with the stage breakdown.

    python benchmarks/eval_throughput.py [--problem envs/core/rmsnorm_llama3_8b] [--evals 20] [--gpu 0]

The action is examples/kernels/rmsnorm_triton.py; every evaluation gets its own seed, so nothing is
shared between evaluations except the warm worker pool.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
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
    parser.add_argument("--evals", type=int, default=20)
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--policy", default="strict")
    args = parser.parse_args()
    problem = load_problem(args.problem)
    source = Path(args.action).read_text()

    def job(seed: int) -> dict:
        return judge.payload(problem, {"source": source}, seed=seed, mode="gpu", policy=args.policy)

    with EvalPool([args.gpu]) as pool:
        pool.submit_job(ENTRY, job(0)).result()  # warm: first Triton compile, spare children started
        steps, stages = [], []
        for seed in range(1, 4):
            start = time.perf_counter()
            outcome = pool.submit_job(ENTRY, job(seed)).result()
            result = judge.judge(outcome, problem, policy=args.policy, workloads=problem.workloads)
            steps.append(time.perf_counter() - start)
            stages.append(result.stage_ms)
            if result.status.value != "PASSED":
                raise SystemExit(f"the benchmark action failed: {result.status} {result.message}")
        start = time.perf_counter()
        futures = [pool.submit_job(ENTRY, job(100 + i)) for i in range(args.evals)]
        outcomes = [f.result() for f in futures]
        elapsed = time.perf_counter() - start
    statuses = [
        judge.judge(o, problem, policy=args.policy, workloads=problem.workloads).status.value
        for o in outcomes
    ]
    report = {
        "problem": problem.name,
        "workloads": len(problem.workloads),
        "evals": args.evals,
        "step_wall_s_p50": statistics.median(steps),
        "evals_per_min": args.evals / elapsed * 60,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        "stage_ms_p50": {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stages[0]},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
