"""The evaluation pool: jobs scheduled over lanes, one lane per local GPU (DESIGN §8).

`EvalPool` hands each job to the least-loaded lane. A GPU lane runs one job at a time by default: the
timing slot (`ChildContext.timed`) keeps timed windows apart, but a second job's inputs, references and
correctness rounds would still share the GPU with a timed window, stretching it (on an H100, five of 29
correct solutions scored at two jobs per GPU were flagged by the parent-clock rule, two more ran out of
memory next to a large neighbour). Starting children (spares) is what overlaps the jobs. A CPU lane runs
two; `jobs_per_device` sets either. Every job runs in a single-use sandboxed child (`solgym.sandbox`); a child that
crashes, hangs or misbehaves costs only its own job and is replaced.

The pool's process never initialises CUDA: GPUs are found through NVML.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from solgym.sandbox import ChildOutcome, Lane, Limits

if TYPE_CHECKING:
    from solgym.problem import Problem, Workload
    from solgym.result import EvalResult

__all__ = ["EvalPool", "visible_gpus"]

# What a spare child does before any job reaches it: import torch, then the harness's one-off set-up.
PREWARM = ("torch", "solgym.harness:warm_up")
# Spares kept ready per lane by default. A GPU child takes seconds to start (more when several start at
# once) and a cached evaluation about one second to run, so a GPU lane keeps enough starting side by side
# to feed two jobs at once (each spare holds a CUDA context, about 0.5 GB of device memory and 1 GB of
# host memory); a CPU lane keeps one.
GPU_SPARES = 6
CPU_SPARES = 1
# Jobs a lane runs at once by default (see the module docstring).
GPU_JOBS = 1
CPU_JOBS = 2


def visible_gpus() -> list[int]:
    """GPU indices (NVML order, which children follow through CUDA_DEVICE_ORDER=PCI_BUS_ID) this process
    may use: all that NVML reports, narrowed by integer entries of CUDA_VISIBLE_DEVICES. Empty when NVML
    is missing or fails."""
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception:
        return []
    gpus = list(range(count))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        if all(entry.lstrip("-").isdigit() for entry in entries):
            wanted = []
            for entry in entries:
                # CUDA stops at the first invalid index; so do we.
                if int(entry) not in gpus:
                    break
                wanted.append(int(entry))
            gpus = wanted
    return gpus


class EvalPool:
    """Submit jobs, get futures; every local GPU used, one timed job per GPU at a time.

    `devices`: "auto" (every GPU NVML shows, else `cpu_lanes` CPU lanes), "cpu" (CPU lanes only), or a
    sequence of GPU indices. Other keywords go to each `Lane`. Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        devices: str | Sequence[int] = "auto",
        *,
        spares_per_device: int | None = None,
        limits: Limits | None = None,
        jobs_per_device: int | None = None,
        cpu_lanes: int = 1,
        prewarm: Sequence[str] = PREWARM,
        disable_layers: Sequence[str] = (),
        expose: Sequence[str] | None = None,
    ) -> None:
        if devices == "auto":
            chosen: list[int | None] = list(visible_gpus()) or [None] * cpu_lanes
        elif devices == "cpu":
            chosen = [None] * cpu_lanes
        elif isinstance(devices, str):
            raise ValueError(f"devices must be 'auto', 'cpu' or a sequence of GPU indices, not {devices!r}")
        else:
            chosen = [int(device) for device in devices]
        if not chosen:
            raise ValueError("the pool needs at least one device or CPU lane")
        if jobs_per_device is None:
            jobs_per_device = GPU_JOBS if chosen[0] is not None else CPU_JOBS
        if jobs_per_device < 1:
            raise ValueError("jobs_per_device must be at least 1")
        self.devices: list[int | None] = chosen
        self._lanes = [
            Lane(
                device,
                spares=spares_per_device
                if spares_per_device is not None
                else (GPU_SPARES if device is not None else CPU_SPARES),
                limits=limits or Limits(),
                prewarm=prewarm,
                disable=disable_layers,
                expose=expose,
            )
            for device in chosen
        ]
        self._executors = [
            ThreadPoolExecutor(jobs_per_device, thread_name_prefix=f"solgym-pool-{'cpu' if d is None else d}")
            for d in chosen
        ]
        self._load = [0] * len(chosen)
        self._lock = threading.Lock()
        self._closed = False
        # Evaluations wait on their jobs' futures; enough threads that every lane slot can be kept busy
        # while other evaluations derive bounds or wait for baselines.
        self._evaluations = ThreadPoolExecutor(
            max(4, 2 * jobs_per_device * len(chosen)), thread_name_prefix="solgym-eval"
        )

    def submit_job(self, entry: str, payload: dict, *, limits: Limits | None = None) -> Future[ChildOutcome]:
        """Queue one job ("module:function" called with `payload` in a fresh child) on the least-loaded
        lane; the future gives its ChildOutcome."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this pool is closed")
            index = min(range(len(self._lanes)), key=self._load.__getitem__)
            self._load[index] += 1
        future = self._executors[index].submit(self._lanes[index].run, entry, payload, limits=limits)
        future.add_done_callback(lambda _: self._finished(index))
        return future

    def submit(
        self,
        problem: Problem,
        action: Any,
        *,
        workloads: Sequence[Workload] | None = None,
        policy: str = "strict",
        seed: int | None = None,
        rounds: int = 5,
        timing: dict | None = None,
    ) -> Future[EvalResult]:
        """Evaluate one action on one problem: static analysis in this process, then bounds, baselines
        and the candidate's sandboxed job on the pool's lanes, judged by trusted code. The future gives the
        EvalResult; our own failures come back as INFRA_ERROR, never as an exception."""
        from solgym.harness import ENTRY
        from solgym.judge import evaluate

        with self._lock:
            if self._closed:
                raise RuntimeError("this pool is closed")
        # Mode and profile follow the pool's first lane: a pool mixes no CPU and GPU lanes, and a host's
        # GPUs are one model.
        device = self.devices[0]

        def run_job(job: dict, entry: str = ENTRY) -> ChildOutcome:
            return self.submit_job(entry, job).result()

        def work() -> EvalResult:
            try:
                return evaluate(
                    problem,
                    action,
                    device=device,
                    policy=policy,
                    seed=seed,
                    workloads=workloads,
                    rounds=rounds,
                    timing=timing,
                    run_job=run_job,
                )
            except Exception as e:  # noqa: BLE001 - whatever breaks here is ours, not the candidate's
                from solgym.result import EvalResult, Status

                return EvalResult(problem.name, Status.INFRA_ERROR, policy=policy, message=f"infra: {e!r}")

        return self._evaluations.submit(work)

    def evaluate_many(self, items: Iterable[tuple[Problem, Any]], **kwargs: Any) -> list[EvalResult]:
        """Evaluate (problem, action) pairs concurrently over every lane; results in the input order.
        Keywords are those of `submit`."""
        futures = [self.submit(problem, action, **kwargs) for problem, action in items]
        return [future.result() for future in futures]

    async def aevaluate(self, problem: Problem, action: Any, **kwargs: Any) -> EvalResult:
        """`submit` for asyncio code."""
        return await asyncio.wrap_future(self.submit(problem, action, **kwargs))

    def _finished(self, index: int) -> None:
        with self._lock:
            self._load[index] -= 1

    def run_jobs(self, jobs: Iterable[tuple[str, dict]]) -> list[ChildOutcome]:
        """Run many jobs concurrently; the outcomes in the order of `jobs`."""
        futures = [self.submit_job(entry, payload) for entry, payload in jobs]
        return [future.result() for future in futures]

    async def arun_job(self, entry: str, payload: dict, *, limits: Limits | None = None) -> ChildOutcome:
        """`submit_job` for asyncio code: awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit_job(entry, payload, limits=limits))

    def health(self) -> dict:
        """Per lane and in total: live spares, jobs running and done, children started and replaced,
        spares lost while idle, start failures."""
        lanes = [lane.health() for lane in self._lanes]
        totals = {
            key: sum(lane[key] for lane in lanes)
            for key in (
                "live_spares",
                "running",
                "jobs_done",
                "children_started",
                "children_replaced",
                "spares_lost",
                "start_failures",
            )
        }
        return {**totals, "lanes": lanes}

    def close(self) -> None:
        """Finish queued jobs, then stop every lane and its children. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._evaluations.shutdown(wait=True)
        for executor in self._executors:
            executor.shutdown(wait=True)
        for lane in self._lanes:
            lane.close()

    def __enter__(self) -> EvalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
