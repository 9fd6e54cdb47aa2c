"""A stand-in for EvalPool's high-level API (`submit`, `evaluate_many`) that returns canned EvalResults.

The outcome is read from a marker comment in the action, `# fake: STATUS [latency_us]`, so a test states
what the evaluation returns next to the action that gets it. Every workload gets T_SOL = 2 us and
T_b = 10 us except freshly drawn shapes, which have no baseline (as in the real pool).
"""

from __future__ import annotations

import re
from concurrent.futures import Future
from pathlib import Path

from solgym.problem import Problem, Workload
from solgym.result import EvalResult, Status, WorkloadResult
from solgym.score import sol_score

T_SOL_MS = 0.002
T_B_MS = 0.010
REPO = Path(__file__).resolve().parents[1]
KERNEL = (REPO / "envs" / "core" / "rmsnorm_llama3_8b" / "solutions" / "triton_rmsnorm.py").read_text()
_MARKER = re.compile(r"# fake: (\w+)(?: ([\d.]+))?")


def kernel(status: str = "PASSED", latency_us: float = 4.0) -> str:
    """The shipped Triton RMSNorm (accepted by static analysis) with a marker telling the fake what to return."""
    return f"{KERNEL}\n# fake: {status} {latency_us}\n"


def canned(problem: Problem, action: str, workloads: list[Workload], policy: str) -> EvalResult:
    """The EvalResult the marker in `action` asks for."""
    match = _MARKER.search(action)
    status = Status[match.group(1)] if match else Status.PASSED
    latency_ms = float(match.group(2)) / 1000 if match and match.group(2) else 0.004
    rows = []
    for w in workloads:
        fresh = bool(w.extra.get("fresh"))
        t_b = None if fresh else T_B_MS
        timed = status in (Status.PASSED, Status.REWARD_HACK)
        rows.append(
            WorkloadResult(
                uuid=w.uuid,
                axes=dict(w.axes),
                status=status,
                latency_ms=latency_ms if timed else None,
                t_sol_ms=T_SOL_MS,
                t_baseline_ms=t_b,
                sol_score=sol_score(latency_ms, T_SOL_MS, t_b).value if timed and t_b else None,
                speedup=t_b / latency_ms if timed and t_b else None,
                fraction_of_sol=T_SOL_MS / latency_ms if timed else None,
                bound_by="memory",
                max_abs_error=0.5 if status is Status.INCORRECT_NUMERICAL else 0.001,
                hidden=w.hidden,
            )
        )
    return EvalResult(
        problem=problem.name,
        status=status,
        policy=policy,
        workloads=rows,
        compile_log="line 3: error: expected ')'" if status is Status.COMPILE_ERROR else "",
    )


class FakePool:
    """Records every submission; `hold=True` keeps futures pending until `release()` (to observe batching)."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[dict] = []
        self.hold = hold
        self._pending: list[tuple[Future, EvalResult]] = []
        self.devices = [None]

    def submit(self, problem, action, *, workloads=None, policy="strict", seed=None) -> Future:
        workloads = list(workloads if workloads is not None else problem.workloads)
        self.calls.append(
            {
                "problem": problem.name,
                "action": action,
                "workloads": workloads,
                "policy": policy,
                "seed": seed,
            }
        )
        future: Future = Future()
        result = canned(problem, action, workloads, policy)
        if self.hold:
            self._pending.append((future, result))
        else:
            future.set_result(result)
        return future

    def evaluate_many(self, items) -> list[EvalResult]:
        futures = [
            self.submit(problem, action, **kw)
            for problem, action, *rest in items
            for kw in [rest[0] if rest else {}]
        ]
        return [f.result() for f in futures]

    def release(self) -> None:
        for future, result in self._pending:
            future.set_result(result)
        self._pending.clear()

    def __deepcopy__(self, memo):  # gymnasium deep-copies env specs; a pool is shared, never copied
        return self


class RefusingPool(FakePool):
    """A pool that must not be reached: every submission is an error."""

    def submit(self, *args, **kwargs):
        raise AssertionError("this action should have been rejected before reaching the pool")
