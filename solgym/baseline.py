"""The scoring baseline T_b: the faster of the eager and `torch.compile`d reference, timed by the same
harness on the same device, cached per (problem, workload, device, versions) (DESIGN §6, §11.6).

On a CPU, T_b is the eager reference timed by the harness (the Triton interpreter has no compiled
counterpart worth timing), cached locally and never shipped. `solgym baseline PROBLEM_DIR` fills the
cache; evaluations read it and measure what is missing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from solgym.problem import Problem, Workload

CACHE_ENV = "SOLGYM_CACHE"
COMPILE_WALL_S = 240.0  # the whole torch.compile baseline job of one problem
# How the harness prepares a timed call; a time is comparable only with times of the same protocol, so
# anchors and cached baselines record it and a change of protocol must bump it (and re-anchor).
# 1: the last-level cache is evicted by *writing* a buffer twice its size (`harness.Clock.flush`); a GPU
#    call's time is the extent of its kernels (first start to last end).
# 2: as 1, but a GPU call's time is its busy time: the union of its kernels' intervals, without the idle
#    gaps in which the GPU waited for the host to launch the next kernel. Those gaps made a launch-bound
#    reference's T_b a measure of the host's speed (docs/suite.md, "How well T_b repeats").
TIMING_PROTOCOL = 2


@dataclass(frozen=True)
class Baseline:
    """T_b of one workload with how it was measured. `eager_ms` / `compile_ms` are None when that method
    was not measured or failed (the reason in `note`)."""

    problem: str
    workload_uuid: str
    axes: dict[str, int]
    t_baseline_ms: float
    baseline_method: str
    eager_ms: float | None
    compile_ms: float | None
    device: str
    mode: str
    torch: str
    triton: str | None
    timing_method: str
    date: str
    note: str = ""
    passes: int = 1  # independent measurements (fresh children, torch.compile afresh); T_b is the fastest
    spread: float = 0.0  # slowest pass's T_b over the fastest's, less 1 (0.0 for one pass)
    pass_ms: tuple[dict[str, float], ...] = ()  # per pass, the time of each method that was timed
    # Kernel extent (first kernel start to last kernel end: the busy time plus the idle gaps in which the
    # GPU waited for the host; GPU only), reported apart: the least over passes and methods, and per pass
    # and method. It does not set T_b.
    extent_ms: float | None = None
    pass_extent_ms: tuple[dict[str, float], ...] = ()
    sm_clock_mhz: float | None = None  # mean of NVML's SM clock readings around the timed windows


def cache_dir() -> Path:
    """$SOLGYM_CACHE, else ~/.cache/solgym."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "solgym")


def cache_key(problem: Problem, workload: Workload, device: str, versions: tuple[str, ...]) -> str:
    """What a cached T_b is valid for: the reference's source, the workload's axes, the device (for the
    CPU, with the intra-op threads its children run with) and the library and timing-protocol versions."""
    where = device_key(device)
    if where == "cpu":
        from solgym.sandbox import cpu_child_threads

        where = f"cpu-threads-{cpu_child_threads()}"
    blob = json.dumps(
        [
            problem.name,
            problem.definition.reference,
            workload.uuid,
            sorted(workload.axes.items()),
            where,
            list(versions),
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def device_key(name: str) -> str:
    """One spelling per device model, whatever named it: the hardware table's slug for a known GPU (so
    NVML's "NVIDIA H100 80GB HBM3" and the table's name meet), the lowered name otherwise."""
    if name.strip().lower() == "cpu":
        return "cpu"
    from solgym.hardware import get_profile

    try:
        return get_profile(name).slug
    except KeyError:
        return name.strip().lower()


def _versions() -> tuple[str, ...]:
    import torch

    protocol = f"timing-protocol-{TIMING_PROTOCOL}"
    try:
        import triton

        return (torch.__version__, triton.__version__, protocol)
    except ImportError:
        return (torch.__version__, "none", protocol)


def _path(key: str, cache: Path | None) -> Path:
    return (cache or cache_dir()) / "baselines" / f"{key}.json"


def cached(
    problem: Problem, workload: Workload, device: str, *, cache: Path | None = None
) -> Baseline | None:
    """The cached T_b of a workload on `device` (a GPU name or "cpu"), None when not measured yet."""
    file = _path(cache_key(problem, workload, device, _versions()), cache)
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
        for key in ("pass_ms", "pass_extent_ms"):  # JSON has no tuples
            if key in data:
                data[key] = tuple(data[key])
        return Baseline(**data)
    except (ValueError, TypeError):
        return None


def store(problem: Problem, workload: Workload, baseline: Baseline, *, cache: Path | None = None) -> Path:
    """Write one T_b into the cache (atomically)."""
    file = _path(cache_key(problem, workload, baseline.device, _versions()), cache)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(baseline), indent=1))
    os.replace(tmp, file)
    return file


def from_reports(
    problem: Problem,
    workloads: list[Workload],
    passes: list[dict[str, dict[str, Any]]],
    device: str,
    mode: str,
) -> list[Baseline]:
    """Baselines from the harness reports of the `eager` (and `compile`) jobs, one {kind: report} per
    pass. Per workload and method the fastest pass counts; T_b is the faster method, and `spread` says how
    far its passes were apart."""
    if not passes:
        raise ValueError("no baseline reports")
    versions = _versions()
    date = datetime.date.today().isoformat()
    clock = _timing_clock(passes)
    result = []
    for i, workload in enumerate(workloads):
        per_pass: list[dict[str, float]] = []
        extent_per_pass: list[dict[str, float]] = []
        notes: list[str] = []
        method_used = "perf_counter"
        for pass_reports in passes:
            timed: dict[str, float] = {}
            extent: dict[str, float] = {}
            for kind, report in pass_reports.items():
                records = report.get("workloads") or []
                record = records[i] if i < len(records) else {}
                latency = record.get("latency_ms")
                if latency is None:  # why it has no time
                    note = f"{kind}: {record.get('status') or report.get('status')} {record.get('message') or report.get('message')}".strip()
                else:  # and what a timed baseline had to do (e.g. dynamic shapes for a compile)
                    timed[kind] = latency
                    note = f"{kind}: {record['message']}" if record.get("message") else ""
                    if (record.get("timing") or {}).get("extent_median_ms") is not None:
                        extent[kind] = record["timing"]["extent_median_ms"]
                if note and note not in notes:
                    notes.append(note)
                method_used = (report.get("environment") or {}).get("timing_method", method_used)
            per_pass.append(timed)
            extent_per_pass.append(extent)
        kinds = list(passes[0])
        times = {k: min((p[k] for p in per_pass if k in p), default=None) for k in kinds}
        measured = {k: v for k, v in times.items() if v is not None}
        if not measured:
            raise RuntimeError(
                f"{problem.name} workload {workload.uuid}: no baseline could be timed ({'; '.join(notes)})"
            )
        best = min(measured, key=measured.__getitem__)
        # T_b of each pass (its faster method), for the spread between passes.
        t_b_passes = [min(p.values()) for p in per_pass if p]
        extent_all = [t for p in extent_per_pass for t in p.values()]
        result.append(
            Baseline(
                problem=problem.name,
                workload_uuid=workload.uuid,
                axes=dict(workload.axes),
                t_baseline_ms=measured[best],
                baseline_method=best,
                eager_ms=times.get("eager"),
                compile_ms=times.get("compile"),
                device=device,
                mode=mode,
                torch=versions[0],
                triton=versions[1],
                timing_method=method_used,
                date=date,
                note="; ".join(notes),
                passes=len(passes),
                spread=max(t_b_passes) / min(t_b_passes) - 1.0 if t_b_passes else 0.0,
                pass_ms=tuple(per_pass),
                extent_ms=min(extent_all) if extent_all else None,
                pass_extent_ms=tuple(extent_per_pass) if extent_all else (),
                sm_clock_mhz=clock,
            )
        )
    return result


def _timing_clock(passes: list[dict[str, dict[str, Any]]]) -> float | None:
    """Mean SM clock (MHz) that NVML read just before and after the timed windows of the reports; None
    without readings (a CPU, no NVML)."""
    readings = [
        snap["sm_clock_mhz"]
        for pass_reports in passes
        for report in pass_reports.values()
        for key in ("nvml_before", "nvml_after")
        for snap in [(report.get("environment") or {}).get(key) or {}]
        if isinstance(snap.get("sm_clock_mhz"), int | float)
    ]
    return round(sum(readings) / len(readings), 1) if readings else None


def measure(
    problem: Problem,
    workloads: list[Workload],
    *,
    device: int | None,
    run_job: Any,
    seed: int = 0,
    timing: dict[str, Any] | None = None,
    compile_wall_s: float = COMPILE_WALL_S,
    passes: int = 1,
) -> list[Baseline]:
    """Time the reference on `device` (None: the CPU) through the harness and return T_b per workload.
    `run_job(payload) -> report` runs one harness job in a child (the caller owns the sandbox). The
    torch.compile job gets `compile_wall_s` in all: a reference that Dynamo cannot compile in that time
    (a Python loop over thousands of steps unrolls into a graph as long) keeps the eager baseline, and
    the baseline's note says why.

    `passes` > 1 runs both jobs that many times, each in a fresh child (so torch.compile compiles
    afresh): one process's T_b of a launch-bound reference, or the program one compilation picked, can be
    up to twice another's (docs/suite.md), and the fastest pass is what PyTorch can do."""
    from solgym import judge

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    mode = "cpu" if device is None else "gpu"
    kinds = ("eager",) if mode == "cpu" else ("eager", "compile")
    rounds: list[dict[str, dict[str, Any]]] = []
    for _ in range(passes):
        reports = {}
        for kind in kinds:
            job = judge.payload(
                problem,
                None,
                workloads=workloads,
                seed=seed,
                mode=mode,
                policy="permissive",
                baseline=kind,
                timing=timing,
                rounds=1,
                wall_s=compile_wall_s if kind == "compile" else None,
            )
            reports[kind] = run_job(job)
        rounds.append(reports)
    name = "cpu"
    if mode == "gpu":
        name = (rounds[0]["eager"].get("environment") or {}).get("gpu") or f"cuda:{device}"
    return from_reports(problem, workloads, rounds, name, mode)
