"""The trusted side of an evaluation: turn what the child reported, and what the parent measured, into an
`EvalResult` (DESIGN §2, §5, §6, §11.4, §11.5).

Everything in the child's report after the action was imported is the candidate's claim. The judge
believes it only as far as its own evidence allows:

- **Timing windows.** The parent timed every `ctx.timed()` window with its own clock. The first window of
  each workload ran before the action existed: `calibration_calls` null calls through the same loop, so
  its wall time per call is the harness's own overhead, measured by trusted code on both sides. For the
  candidate's window, the wall time per call beyond that overhead must be explained by the reported
  per-call time: a window whose excess per call exceeds `FORGE_FACTOR` x the reported median plus
  `HOST_ALLOWANCE_MS` (Python and launch time the device timer does not see) is a forged time. And the
  reported device times must fit inside the window. A forger must either slow down its own window (and
  lose the speed it claims) or keep the window and be caught.
- **Physics.** A time below (1 - margin) x T_SOL is `REWARD_HACK` (§11.4).
- **Score.** Per DESIGN §6 via `solgym.score`; any failed workload makes the reward 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from solgym import triton_cache as triton_cache_module
from solgym.problem import DEFINITION_FILE, WORKLOAD_FILE, Problem, Workload
from solgym.result import EvalResult, Status, Violation, WorkloadResult
from solgym.score import PHYSICS_MARGIN, below_physics_floor, fraction_of_sol, reward, sol_score, speedup

FORGE_FACTOR = 2.0
HOST_ALLOWANCE_MS = 0.5
CONTAIN_SLACK = 1.02  # device time reported may exceed the window by clock-skew noise only


def payload(
    problem: Problem,
    action: Mapping[str, Any] | None,
    *,
    workloads: Sequence[Workload] | None = None,
    seed: int,
    mode: str,
    policy: str = "strict",
    rounds: int = 5,
    time: bool = True,
    timing: Mapping[str, Any] | None = None,
    baseline: str | None = None,
    build_cache: str | Path | None = None,
    build_timeout_s: float | None = None,
    wall_s: float | None = None,
    triton_cache: str | Path | None = None,
) -> dict[str, Any]:
    """The JSON payload of one harness job (see `solgym.harness.child_main`). `wall_s` lowers the lane's
    wall limit for this job (the lane never raises it). `triton_cache` is the root of the per-action Triton
    caches (`solgym.triton_cache`): the job names its action's own directory under it."""
    if problem.path is None:
        raise ValueError(f"problem {problem.name} has no directory; the child loads problems from disk")
    chosen = list(workloads) if workloads is not None else list(problem.workloads)
    # The child may not see the problem's folder (a sandbox hides /tmp and home directories), so the two
    # small files travel with the job; data blobs beside them are found through the folder when visible.
    files = {
        name: (problem.path / name).read_text(encoding="utf-8") for name in (DEFINITION_FILE, WORKLOAD_FILE)
    }
    data: dict[str, Any] = {
        "problem_dir": str(problem.path),
        "problem_files": files,
        "workloads": [
            {
                "uuid": w.uuid,
                "axes": dict(w.axes),
                **({"like": w.extra["like"]} if w.extra.get("like") else {}),
            }
            for w in chosen
        ],
        "seed": int(seed),
        "mode": mode,
        "policy": policy,
        "rounds": rounds,
        "time": time,
        "timing": dict(timing or {}),
        "build_cache": str(build_cache) if build_cache else None,
    }
    if build_timeout_s is not None:
        data["build_timeout_s"] = build_timeout_s
    if wall_s is not None:
        data["wall_s"] = float(wall_s)
    if baseline:
        data["baseline"] = baseline
    else:
        data["action"] = dict(action or {})
        if triton_cache is not None:
            data["triton_cache"] = str(triton_cache_module.directory(triton_cache, data["action"]))
    return data


def action_dict(action: Any) -> dict[str, Any]:
    """The payload form of a decoded `solgym.action.Action` (or a plain source string)."""
    if isinstance(action, str):
        return {"source": action}
    return {"source": action.source, "files": dict(action.files), "entry_point": action.entry_point}


def check_windows(
    report: Mapping[str, Any],
    walls_s: Sequence[float],
    *,
    uuids: Sequence[str] | None = None,
    calibration_calls: int | None = None,
    forge_factor: float = FORGE_FACTOR,
    host_allowance_ms: float = HOST_ALLOWANCE_MS,
) -> list[Violation]:
    """Cross-check the child's timing claims against the parent's window walls; the violations found.

    The first windows ran before the action existed, one calibration window per workload in the job's
    order (`uuids`, the payload's; the report's own order when not given), each of `calibration_calls`
    calls (the job's setting; the report's claim when not given). Only those are accepted as calibration:
    the action could open windows of its own and label them."""
    windows = list(report.get("windows") or [])
    if len(windows) != len(walls_s):
        return [
            Violation(
                "timing-window-mismatch",
                f"the child reported {len(windows)} timed windows, the parent measured {len(walls_s)}",
            )
        ]
    if not windows:
        return []
    order = list(uuids) if uuids is not None else [r.get("uuid") for r in report.get("workloads") or []]
    head = windows[: len(order)]
    if len(head) < len(order) or any(
        w.get("kind") != "calibration" or w.get("uuid") != u for w, u in zip(head, order, strict=True)
    ):
        return [
            Violation(
                "timing-window-mismatch",
                "the calibration windows are not the first windows, one per workload",
            )
        ]
    calibration = {}
    for w, u, wall_s in zip(head, order, walls_s[: len(order)], strict=True):
        calls = calibration_calls if calibration_calls is not None else int(w.get("calls") or 0)
        calibration[u] = wall_s * 1e3 / max(calls, 1)
    violations = []
    rest = list(zip(windows[len(order) :], walls_s[len(order) :], strict=True))
    for index, (window, wall_s) in enumerate(rest):
        wall_ms = wall_s * 1e3
        calls = int(window.get("calls") or 0)
        uuid = window.get("uuid")
        kind = window.get("kind")
        if kind == "discarded":  # a profiler that saw nothing: the retry's window must follow
            following = rest[index + 1] if index + 1 < len(rest) else None
            if (
                following is None
                or following[0].get("kind") != "workload"
                or following[0].get("uuid") != uuid
            ):
                violations.append(
                    Violation(
                        "timing-window-mismatch", f"workload {uuid}: a discarded window without its retry"
                    )
                )
            elif (
                calls > 0
                and wall_ms / calls
                > forge_factor * following[1] * 1e3 / max(int(following[0].get("calls") or 0), 1)
                + host_allowance_ms
            ):
                violations.append(
                    Violation(
                        "forged-time",
                        f"workload {uuid}: the discarded window ran far slower than the one reported",
                    )
                )
            continue
        if kind != "workload":
            violations.append(
                Violation("timing-window-mismatch", f"an unexpected {kind!r} window after the calibration")
            )
            continue
        device_ms = float(window.get("device_ms") or 0.0)
        median_ms = float(window.get("median_ms") or 0.0)
        if calls <= 0:
            violations.append(Violation("forged-time", f"workload {uuid}: a timed window with {calls} calls"))
            continue
        if device_ms > wall_ms * CONTAIN_SLACK + 0.5:
            violations.append(
                Violation(
                    "forged-time",
                    f"workload {uuid}: {device_ms:.3f} ms of reported device time cannot fit in a {wall_ms:.3f} ms window",
                )
            )
            continue
        overhead = calibration.get(uuid)
        if overhead is None:
            violations.append(
                Violation("timing-window-mismatch", f"workload {uuid}: no calibration window for it")
            )
            continue
        excess = wall_ms / calls - overhead
        if excess > forge_factor * median_ms + host_allowance_ms:
            violations.append(
                Violation(
                    "forged-time",
                    f"workload {uuid}: the timed window took {wall_ms / calls:.3f} ms per call ({excess:.3f} ms beyond the harness's own "
                    f"{overhead:.3f} ms), which a reported {median_ms:.4f} ms per call cannot explain",
                )
            )
    return violations


def judge(
    outcome: Any,
    problem: Problem,
    *,
    policy: str = "strict",
    bounds: Mapping[str, Any] | None = None,
    baselines: Mapping[str, float] | None = None,
    margin: float = PHYSICS_MARGIN,
    workloads: Sequence[Workload] | None = None,
    hidden: Mapping[str, bool] | None = None,
    calibration_calls: int | None = None,
) -> EvalResult:
    """The EvalResult of one harness job. `outcome` is a `ChildOutcome` (or its dict); `bounds` maps a
    workload uuid to its `solgym.bounds.Bound`; `baselines` to T_b in ms. `workloads` (in the job's
    order) and `calibration_calls` (the job's `timing` setting) are the trusted facts the timing windows
    are checked against; pass them whenever the job set them."""
    get = outcome.get if isinstance(outcome, Mapping) else lambda k, d=None: getattr(outcome, k, d)
    report = get("result")
    # The parent's view: the child's whole wall time (the child reports each stage's duration itself).
    stage_ms = {"child_wall": float(get("wall_s") or 0.0) * 1e3}
    environment = {"sandbox_layers": dict(get("layers") or {})}
    if report is None:
        return _no_report(problem, policy, get, stage_ms, environment)
    environment = {**report.get("environment", {}), **environment}
    stage_ms.update(report.get("stage_ms") or {})
    result = EvalResult(
        problem=problem.name,
        status=Status.PASSED,
        policy=policy,
        environment=environment,
        compile_log=report.get("compile_log") or "",
        run_log=report.get("run_log") or "",
        message=report.get("message") or "",
        stage_ms=stage_ms,
    )
    result.violations = [Violation(g["rule"], g["message"]) for g in report.get("guards") or []]
    if report.get("status"):
        result.status = Status(report["status"])
        if not report.get("workloads"):
            return result
    result.violations += check_windows(
        report,
        list(get("timed_windows_s") or []),
        uuids=[w.uuid for w in workloads] if workloads is not None else None,
        calibration_calls=calibration_calls,
    )
    leak = get("gpu_memory_leak_bytes")
    if leak:
        environment["gpu_memory_leak_bytes"] = leak
    hidden = hidden or {w.uuid: w.hidden for w in (*problem.workloads, *(workloads or ()))}
    for record in report.get("workloads") or []:
        result.workloads.append(
            _workload_result(record, bounds, baselines, margin, hidden, result.violations)
        )
        if record.get("timing"):  # method, calls, spread, host launch time apart, kernels seen
            environment.setdefault("timing", {})[record["uuid"]] = record["timing"]
    forged = {
        v.message.split(":")[0].removeprefix("workload ")
        for v in result.violations
        if v.rule == "forged-time"
    }
    for w in result.workloads:
        if w.uuid in forged and w.status == Status.PASSED:
            w.status, w.message = (
                Status.REWARD_HACK,
                "the reported time is inconsistent with the parent's clock",
            )
    failed = [w for w in result.workloads if w.status != Status.PASSED]
    if result.status == Status.PASSED:
        if result.violations:
            result.status = Status.REWARD_HACK
            result.message = "; ".join(v.message for v in result.violations)
        elif failed:
            hack = next((w for w in failed if w.status == Status.REWARD_HACK), None)
            first = hack or failed[0]
            result.status = first.status
            result.message = f"workload {first.uuid}: {first.message}"
    result.reward = reward((w.sol_score for w in result.workloads), all_passed=result.status == Status.PASSED)
    return result


def _no_report(
    problem: Problem, policy: str, get: Any, stage_ms: dict[str, float], environment: dict[str, Any]
) -> EvalResult:
    error = get("error") or ""
    tail = (get("stderr_tail") or "")[-4000:]
    if error.startswith("infra:"):
        status = Status.INFRA_ERROR
    elif get("timed_out"):
        status = Status.TIMEOUT
        error = error or f"the evaluation exceeded its time limit after {get('wall_s', 0):.1f} s"
    else:
        status = Status.RUNTIME_ERROR
        error = error or f"the worker died (exit code {get('exit_code')}, signal {get('signal')})"
    return EvalResult(
        problem=problem.name,
        status=status,
        policy=policy,
        message=error,
        run_log=tail,
        stage_ms=stage_ms,
        environment=environment,
    )


def _workload_result(
    record: Mapping[str, Any],
    bounds: Mapping[str, Any] | None,
    baselines: Mapping[str, float] | None,
    margin: float,
    hidden: Mapping[str, bool],
    violations: list[Violation],
) -> WorkloadResult:
    uuid = record["uuid"]
    w = WorkloadResult(
        uuid=uuid,
        axes=dict(record.get("axes") or {}),
        status=Status(record.get("status", "RUNTIME_ERROR")),
        message=record.get("message") or "",
        max_abs_error=record.get("max_abs_error"),
        max_rel_error=record.get("max_rel_error"),
        matched_ratio=record.get("matched_ratio"),
        hidden=bool(hidden.get(uuid)),
        rounds=record.get("rounds") if isinstance(record.get("rounds"), int) else None,
    )
    bound = (bounds or {}).get(uuid)
    if bound is not None:
        w.t_sol_ms, w.bound_by = bound.t_sol_ms, bound.bound_by
    t_b = (baselines or {}).get(uuid)
    w.t_baseline_ms = t_b
    latency = record.get("latency_ms")
    if w.status != Status.PASSED or latency is None:
        return w
    w.latency_ms = float(latency)
    if bound is not None:
        seconds = w.latency_ms * 1e-3
        if seconds > 0:
            w.achieved_bytes_per_s = (bound.bytes_read + bound.bytes_written) / seconds
            w.achieved_flop_per_s = (2 * sum(bound.macs_by_precision.values()) + bound.flops_other) / seconds
        w.fraction_of_sol = fraction_of_sol(w.latency_ms, bound.t_sol_ms)
        if below_physics_floor(w.latency_ms, bound.t_sol_ms, margin):
            w.status = Status.REWARD_HACK
            w.message = f"measured {w.latency_ms:.5f} ms, below {1 - margin:g} x T_SOL = {(1 - margin) * bound.t_sol_ms:.5f} ms: faster than the hardware allows"
            violations.append(Violation("below-speed-of-light", f"workload {uuid}: {w.message}"))
            return w
    if t_b is not None:
        w.speedup = speedup(w.latency_ms, t_b)
        if bound is not None:
            s = sol_score(w.latency_ms, bound.t_sol_ms, t_b)
            w.sol_score = s.value
            if s.degenerate:
                w.message = s.note
    return w


def evaluate(
    problem: Problem,
    raw_action: Any,
    *,
    device: int | None,
    policy: str = "strict",
    seed: int | None = None,
    workloads: Sequence[Workload] | None = None,
    rounds: int = 5,
    timing: Mapping[str, Any] | None = None,
    cpu_max_bytes: int = 1 << 20,
    run_job: Any = None,
) -> EvalResult:
    """Evaluate one action end to end on GPU `device` (None: CPU mode): static analysis, bounds,
    baselines (cached, measured when missing), one sandboxed harness job, the judge. `run_job(payload)
    -> ChildOutcome` defaults to a one-off sandboxed child on that device."""
    import os as _os
    import time as _time

    from solgym import analysis, baseline, build, hardware, opcount
    from solgym import bounds as bounds_module
    from solgym.harness import ENTRY, TimingConfig
    from solgym.inputs import shrink
    from solgym.rewards import load_anchors

    started = _time.perf_counter()
    status, action, verdict, message = analysis.check(
        raw_action,
        inputs=list(problem.definition.inputs),
        outputs=list(problem.definition.outputs),
        policy=policy,
    )
    stage_ms = {"static_analysis": (_time.perf_counter() - started) * 1e3}
    if status is not None:
        return EvalResult(
            problem=problem.name,
            status=status,
            policy=policy,
            message=message,
            stage_ms=stage_ms,
            violations=[
                Violation(v.rule, v.message, v.line, v.file) for v in (verdict.violations if verdict else ())
            ],
        )
    chosen = list(workloads) if workloads is not None else list(problem.workloads)
    if device is None:
        chosen = [shrink(problem, w, cpu_max_bytes) for w in chosen]
    if run_job is None:
        from solgym.sandbox import Lane

        def run_job(job: dict[str, Any], entry: str = ENTRY) -> Any:
            with Lane(device, spares=0) as lane:
                return lane.run(entry, job)

    profile = hardware.cpu_profile() if device is None else hardware.detect(device)
    bounds = {}
    for w in chosen:
        try:
            bounds[w.uuid] = bounds_module.derive(problem, w, profile)
        except Exception:  # noqa: BLE001 - a workload without a bound is reported unscored, not failed
            continue
    opcount.release_inputs()
    device_name = "cpu" if device is None else profile.name
    baselines: dict[str, float] = {}
    # Shipped anchors pay every user on one scale (DESIGN §1, §11.6); the measured cache fills the rest.
    # Freshly drawn shapes have no baseline: checked for correctness, never scored (§11.7).
    anchors = {} if device is None else load_anchors(profile.slug)
    missing = []
    for w in chosen:
        if w.extra.get("fresh"):
            continue
        anchor = anchors.get((problem.name, w.uuid))
        axes = problem.axes(w)
        if anchor is not None and all(axes.get(k) == v for k, v in anchor.axes.items()):
            baselines[w.uuid] = anchor.t_baseline_ms
            continue
        hit = baseline.cached(problem, w, device_name)
        if hit is None:
            missing.append(w)
        else:
            baselines[w.uuid] = hit.t_baseline_ms
    baseline_note = ""
    if missing:
        t0 = _time.perf_counter()

        def report_of(job: dict[str, Any]) -> dict[str, Any]:
            outcome = run_job(job)
            return outcome.result or {"status": "INFRA_ERROR", "message": outcome.error}

        try:
            for b, w in zip(
                baseline.measure(
                    problem, missing, device=device, run_job=report_of, timing=dict(timing or {})
                ),
                missing,
                strict=True,
            ):
                baseline.store(problem, w, b)
                baselines[w.uuid] = b.t_baseline_ms
        except RuntimeError as e:  # unscored, not failed: the result says why
            baseline_note = str(e)
        stage_ms["baseline"] = (_time.perf_counter() - t0) * 1e3
    build_cache = None if device is None else baseline.cache_dir() / "builds"
    job = payload(
        problem,
        action_dict(action),
        workloads=chosen,
        seed=seed if seed is not None else int.from_bytes(_os.urandom(8), "little") >> 1,
        mode="cpu" if device is None else "gpu",
        policy=policy,
        rounds=rounds,
        timing=timing,
        build_cache=build_cache,
        triton_cache=None if device is None else baseline.cache_dir() / "triton",
    )
    t0 = _time.perf_counter()
    outcome = run_job(job)
    stage_ms["sandbox"] = (_time.perf_counter() - t0) * 1e3
    result = judge(
        outcome,
        problem,
        policy=policy,
        bounds=bounds,
        baselines=baselines,
        workloads=chosen,
        calibration_calls=TimingConfig.from_dict(timing).calibration_calls,
    )
    if build_cache is not None:
        t0 = _time.perf_counter()
        published = publish_builds(
            outcome, build_cache, lambda build_job: run_job(build_job, build.BUILD_ENTRY)
        )
        if published:
            stage_ms["publish_builds"] = (_time.perf_counter() - t0) * 1e3
    result.stage_ms = {**stage_ms, **result.stage_ms}
    result.environment.setdefault("mode", "cpu" if device is None else "gpu")
    result.environment["profile"] = profile.name
    if baseline_note:
        result.environment["baseline_error"] = baseline_note
    result.environment["static_analysis_ms"] = verdict.elapsed_ms if verdict else None
    return result


def publish_builds(outcome: Any, build_cache: str | Path, run_build: Any) -> int:
    """Rebuild, in fresh children where no action runs, the CUDA extensions an evaluation built privately,
    and publish them into the shared build cache (trusted writes only, DESIGN §11.13). `run_build(job)`
    runs `solgym.build.BUILD_ENTRY` and returns its ChildOutcome. Returns how many were published."""
    from solgym import build

    report = outcome.get("result") if isinstance(outcome, Mapping) else getattr(outcome, "result", None)
    count = 0
    jobs = build.rebuild_payloads(report or {}, build_cache)
    if jobs:
        build.build_pch(build_cache)  # once per toolchain: later builds' g++ units start from them
    for job in jobs:
        built = run_build(job)
        result = built.get("result") if isinstance(built, Mapping) else getattr(built, "result", None)
        if build.publish(build_cache, job, result or {}) is not None:
            count += 1
    return count


def format_result(result: EvalResult) -> str:
    """A readable summary: status and reward, then one row per workload, then violations and logs."""

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    env = result.environment
    lines = [
        f"{result.problem}: {result.status.value}  reward {result.reward:.4f}  policy {result.policy}",
        f"mode {env.get('mode', '?')}  device {env.get('gpu') or env.get('profile') or 'cpu'}  timing {env.get('timing_method', '-')}",
    ]
    if result.message:
        lines.append(f"message: {result.message}")
    if result.workloads:
        lines.append(
            f"{'workload':12} {'status':20} {'latency_ms':>11} {'T_SOL_ms':>10} {'T_b_ms':>10} {'score':>6} {'speedup':>8} {'frac_SOL':>8} {'bound':>7} {'max_abs_err':>11}"
        )
        for w in result.workloads:
            lines.append(
                f"{w.uuid[:12]:12} {w.status.value:20} {num(w.latency_ms, '11.5f')} {num(w.t_sol_ms, '10.5f')} {num(w.t_baseline_ms, '10.5f')} "
                f"{num(w.sol_score, '6.3f')} {num(w.speedup, '8.2f')} {num(w.fraction_of_sol, '8.3f')} {(w.bound_by or '-'):>7} {num(w.max_abs_error, '11.3g')}"
            )
            if w.message and w.status != Status.PASSED:
                lines.append(f"    {w.message.splitlines()[0][:200]}")
    for v in result.violations:
        lines.append(f"violation {v.rule}{'' if v.line is None else f' (line {v.line})'}: {v.message}")
    if result.compile_log:
        lines.append("compile log:\n" + result.compile_log[-2000:])
    if result.stage_ms:
        lines.append("stages: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result.stage_ms.items()))
    return "\n".join(lines)
