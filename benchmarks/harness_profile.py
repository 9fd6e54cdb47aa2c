"""Where one evaluation's time goes inside the harness: `child_main` run in this process (no sandbox, no
pool) on the GPU, stage times per evaluation, then a cProfile of one evaluation by cumulative time.

    python benchmarks/harness_profile.py [--problem envs/core/rmsnorm_llama3_8b] [--workloads 3] [--evals 3]

The first evaluation pays the Triton compile into a fresh cache directory; later ones reuse that cache
(the case of a cached action). Not a throughput figure: the sandbox, the pool and the parent are absent.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from pathlib import Path

from solgym import harness, judge
from solgym.problem import load_problem

ROOT = Path(__file__).resolve().parents[1]


class InProcessContext:
    """The child context's interface, in this process: the timing slot is always free."""

    def __init__(self, workdir: Path) -> None:
        self.device = 0
        self.workdir = workdir
        self.layers: dict = {}

    def drop_privileges(self) -> None:
        """Nothing to drop in-process."""

    @contextlib.contextmanager
    def timed(self):
        """No other job competes for the GPU here."""
        yield

    def report_stage(self, name: str) -> None:
        """Stages are read from the report instead."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default=str(ROOT / "envs" / "core" / "rmsnorm_llama3_8b"))
    parser.add_argument("--action", default=str(ROOT / "examples" / "kernels" / "rmsnorm_triton.py"))
    parser.add_argument("--workloads", type=int, default=3, help="the first N workloads of the problem")
    parser.add_argument("--evals", type=int, default=3)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--cpu", action="store_true", help="CPU mode (Triton interpreted), for a dry run")
    args = parser.parse_args()
    problem = load_problem(args.problem)
    workloads = list(problem.workloads)[: args.workloads]
    source = Path(args.action).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "triton"
        os.environ["TRITON_CACHE_DIR"] = str(cache)
        rows = []
        profiler = cProfile.Profile()
        for i in range(args.evals):
            workdir = Path(tmp) / f"eval{i}"
            workdir.mkdir()
            payload = judge.payload(
                problem,
                {"source": source},
                workloads=workloads,
                seed=i + 1,
                mode="cpu" if args.cpu else "gpu",
                policy="strict",
            )
            start = time.perf_counter()
            if i == args.evals - 1:
                profiler.enable()
            report = harness.child_main(payload, InProcessContext(workdir))
            if i == args.evals - 1:
                profiler.disable()
            wall = time.perf_counter() - start
            rows.append(
                {"eval": i, "wall_s": round(wall, 3), "status": report["status"], **report["stage_ms"]}
            )
            print(json.dumps(rows[-1]), flush=True)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
