"""Measured tolerances for the workloads of a suite: the reference's own error, a correct reordering and a
wrong output, each compared with `solgym.harness.compare` under the workload's tolerance.

Per problem and per picked workload (by default the 2 smallest and the largest within --max-elements):

1. inputs from `solgym.inputs.make_inputs` on the device;
2. the reference twice on the same inputs, in its own dtypes (run-to-run: bitwise equal, max difference);
3. the reference on the CPU with floating inputs upcast to float64 (ints, bools and fp8/fp4 left alone; casts
   inside the reference are kept), falling back to float32 on the CPU, then float32 on the device, where
   float64 cannot run: the "true" answer (the mode used is recorded);
4. `torch.compile` of the reference on the device (another fusion and summation order), compared with the
   native reference: a correct kernel;
5. the native reference compared with the float64 answer;
6. a wrong output (the native output x 1.01, or 2 ulps for fp8, plus noise at 5% of its std; 5% of integer
   values off by one), which must fail.

Verdicts: `ok` when the compiled reference passes with the --margin (the tolerance could shrink by that
factor and it would still pass), the native reference passes against float64 and against its own second
run, and every wrong output fails; `admits-wrong` when the correct outputs pass but a wrong one does too
(loosening cannot fix that: a person must look); otherwise `change`, with the recommended tolerance: the
smallest loosening on a fixed atol/rtol grid (matched ratio kept, never tighter than now) under which all
of that holds, or `no-fit` when no grid point does. `error` and `skipped` (time limit) say why.

    python benchmarks/calibrate_tolerances.py [SUITE] [--problems a,b] [--max-elements N] [--workloads 3]
        [--device cuda] [--seed 0] [--margin 2] [--problem-timeout-s 240] [--no-compile] [--shard K/N]
        [--budget-s S] [--out FILE.jsonl] [--append | --resume]
    python benchmarks/calibrate_tolerances.py [SUITE] --table FILE.jsonl [FILE.jsonl ...]
    python benchmarks/calibrate_tolerances.py [SUITE] --apply FILE.jsonl [--apply-to-problem]

SUITE defaults to envs/core. Results: one JSON line per workload in --out (written as it goes; an exact
match's infinite margin is the string "inf"), and a markdown table (one row per problem) printed and written
beside it as FILE.md. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import platform
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solgym.harness import compare  # noqa: E402
from solgym.inputs import make_inputs, reference_module, run_reference  # noqa: E402
from solgym.problem import (  # noqa: E402
    DEFAULT_ATOL,
    DEFAULT_MATCHED_RATIO,
    DEFAULT_RTOL,
    WORKLOAD_FILE,
    Problem,
    Tolerance,
    Workload,
    load_problem,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = REPO / "envs" / "core"

# Candidate tolerances: roughly doubling steps, so a recommendation is at most ~2x looser than it must be.
ATOL_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 4e-3, 8e-3, 0.016, 0.032, 0.064, 0.125, 0.25, 0.5, 1.0, 2.0)
RTOL_GRID = (1e-4, 1e-3, 2e-3, 4e-3, 8e-3, 0.016, 0.02, 0.032, 0.064, 0.125, 0.25)
UPCAST = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
WRONG_SCALE = 0.01  # relative; at least 2 ulps of the output's dtype, else fp8 rounds the change away
WRONG_NOISE = 0.05  # of the output's std
WRONG_FRACTION = 0.05  # of integer elements moved by one (at least one element)
_PACKED = tuple(getattr(torch, n) for n in ("float4_e2m1fn_x2",) if hasattr(torch, n))


class ProblemTimeout(BaseException):
    """The per-problem time budget ran out (a BaseException, so that no `except Exception` on the way,
    ours or torch's, swallows it)."""


# ------------------------------------------------------------------------------------------ picking workloads


def elements(problem: Problem, workload: Workload) -> int:
    """Elements of all tensor inputs and outputs of a workload."""
    total = 0
    for name in (*problem.definition.inputs, *problem.definition.outputs):
        shape = problem.shape(name, workload)
        if shape is not None:
            total += math.prod(shape)
    return total


def pick_workloads(problem: Problem, max_elements: int, count: int = 3) -> list[Workload]:
    """The workloads to measure, in size order: of those within `max_elements`, the `count - 1` smallest
    and the largest (all of them for a count of 0); the single smallest when none fits."""
    ranked = sorted(problem.workloads, key=lambda w: elements(problem, w))
    fitting = [w for w in ranked if elements(problem, w) <= max_elements] or ranked[:1]
    if count <= 0 or len(fitting) <= count:
        return fitting
    return [*fitting[: count - 1], fitting[-1]]


# ------------------------------------------------------------------------------------------------ measuring


def tolerance_scale(output: Any, reference: Any, tolerance: Tolerance) -> float:
    """The smallest factor s such that the output would pass with atol and rtol both multiplied by s (the
    matched ratio kept): <= 1 passes, and 1/s is the margin. Infinite where no scaling can pass (a NaN, an
    infinity where none is allowed, a value where the reference is not finite)."""
    if not isinstance(reference, torch.Tensor):
        want = float(reference)
        err = abs(float(output) - want)
        bound = tolerance.atol + tolerance.rtol * abs(want)
        return 0.0 if err == 0 else (err / bound if bound > 0 else math.inf)
    out = output.detach().to(device=reference.device, dtype=torch.float32).flatten()
    ref = reference.detach().to(torch.float32).flatten()
    if out.numel() == 0:
        return 0.0
    allowed = torch.isneginf(out) & torch.isneginf(ref) if tolerance.allow_negative_inf else None
    bad = ~torch.isfinite(out) if allowed is None else ~torch.isfinite(out) & ~allowed
    if bool(bad.any()):
        return math.inf
    finite = torch.isfinite(out) & torch.isfinite(ref)
    diff = torch.where(finite, (out - ref).abs(), torch.zeros_like(out))
    bound = tolerance.atol + tolerance.rtol * torch.where(finite, ref.abs(), torch.zeros_like(ref))
    need = torch.where(diff == 0, torch.zeros_like(diff), diff / bound)  # x/0 -> inf: no scale helps
    need = torch.where(finite, need, torch.full_like(need, math.inf))
    if allowed is not None:
        need = torch.where(allowed, torch.zeros_like(need), need)
    n = need.numel()
    k = max(1, math.ceil(tolerance.matched_ratio * n - 1e-9))
    # The k-th smallest, through topk from the nearer end: CUDA's kthvalue runs a whole slice in one
    # block, which is slow for one long tensor, and matched ratios put k near the top.
    if n - k + 1 <= k:
        scale = float(torch.topk(need, n - k + 1, largest=True, sorted=False).values.min())
    else:
        scale = float(torch.topk(need, k, largest=False, sorted=False).values.max())
    if tolerance.error_cap is not None and float(diff.max()) > tolerance.error_cap:
        return math.inf
    return scale


def compare_outputs(
    names: Sequence[str], outputs: Sequence[Any], references: Sequence[Any], tolerance: Tolerance
) -> dict[str, Any]:
    """Every output compared with its reference: per output the judge's verdict and error stats plus the
    tolerance scale it needs; overall `ok` and the largest `scale`."""
    per: dict[str, Any] = {}
    for name, out, ref in zip(names, outputs, references, strict=True):
        if isinstance(ref, torch.Tensor) and (
            not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ref.shape)
        ):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            per[name] = {
                "ok": False,
                "reason": f"shape {got}, expected {tuple(ref.shape)}",
                "scale": math.inf,
            }
            continue
        held_to = tolerance.for_output(name)
        c = compare(out, ref, held_to)
        per[name] = {
            "ok": c.ok,
            "reason": c.reason,
            "max_abs_error": c.max_abs_error,
            "max_rel_error": c.max_rel_error,
            "matched_ratio": c.matched_ratio,
            "scale": tolerance_scale(out, ref, held_to),
        }
    return {
        "ok": all(p["ok"] for p in per.values()),
        "scale": max(p["scale"] for p in per.values()),
        "outputs": per,
    }


def wrong_outputs(references: Sequence[Any], seed: int) -> list[Any]:
    """Plausibly wrong versions of the reference outputs, in their own dtypes: floats scaled by 1.01 (by
    2 ulps where the dtype is coarser) plus noise at 5% of their std, 5% of integer elements (at least
    one) moved by one, bools flipped; None where there is nothing to perturb (Python scalars, empty
    tensors)."""
    wrong: list[Any] = []
    for i, ref in enumerate(references):
        # Packed fp4 has no elementwise arithmetic in torch: nothing to perturb value by value.
        if not isinstance(ref, torch.Tensor) or ref.numel() == 0 or ref.dtype in _PACKED:
            wrong.append(None)
            continue
        generator = torch.Generator(device=ref.device)
        generator.manual_seed(seed + i)
        if ref.dtype.is_floating_point:
            values = ref.float()
            finite = values[torch.isfinite(values)]
            # A constant output has no spread; its magnitude (or 1 for zeros) sizes the noise instead.
            spread = float(finite.std()) if finite.numel() > 1 else 0.0
            if spread == 0:
                spread = float(finite.abs().mean()) if finite.numel() else 0.0
            noise = torch.randn(values.shape, generator=generator, device=ref.device)
            scale = 1 + max(WRONG_SCALE, 2 * _eps(ref.dtype))
            wrong.append((values * scale + noise * WRONG_NOISE * (spread or 1.0)).to(ref.dtype))
        else:
            hit = torch.rand(ref.shape, generator=generator, device=ref.device) < WRONG_FRACTION
            if not bool(hit.any()):
                hit.view(-1)[0] = True
            if ref.dtype == torch.bool:
                wrong.append(ref ^ hit)
            else:
                wrong.append(ref + hit.to(ref.dtype))
    return wrong


def _eps(dt: torch.dtype) -> float:
    try:
        return float(torch.finfo(dt).eps)
    except TypeError:  # dtypes finfo does not describe (e8m0 scales: powers of two only)
        return 1.0


def discriminates(
    names: Sequence[str], wrong: Sequence[Any], references: Sequence[Any], tolerance: Tolerance
) -> dict[str, Any]:
    """Whether each wrong output fails under `tolerance` (it must), with the matched ratio it reached."""
    per: dict[str, Any] = {}
    for name, bad, ref in zip(names, wrong, references, strict=True):
        if bad is None:
            continue
        c = compare(bad, ref, tolerance.for_output(name))
        per[name] = {"fails": not c.ok, "matched_ratio": c.matched_ratio}
    return {"ok": all(p["fails"] for p in per.values()), "outputs": per}


def _clone(inputs: Mapping[str, Any], device: torch.device | None = None, dtype: torch.dtype | None = None):
    """Fresh copies of the inputs (a reference may write into them), optionally moved and with floating
    inputs cast to `dtype`."""
    copied = {}
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().to(device or value.device)
            value = value.to(dtype) if dtype is not None and value.dtype in UPCAST else value.clone()
        copied[name] = value
    return copied


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(problem: Problem, inputs: Mapping[str, Any], device: torch.device, fn: Any = None) -> tuple:
    # The judge computes reference outputs under no_grad; backward references enable grad themselves.
    with torch.no_grad():
        if fn is None:
            outputs = run_reference(problem, inputs)
        else:
            raw = fn(*(inputs[name] for name in problem.definition.inputs))
            outputs = tuple(raw) if isinstance(raw, list | tuple) else (raw,)
    _sync(device)
    return tuple(o.detach() if isinstance(o, torch.Tensor) else o for o in outputs)


def _error_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def true_outputs(
    problem: Problem, inputs: Mapping[str, Any], device: torch.device
) -> tuple[str, tuple, list[str]]:
    """The reference with floating inputs in float64 on the CPU, else float32 on the CPU, else float32 on
    `device` (for references with device-only kernels): (mode, outputs, the errors of the modes that
    failed)."""
    cpu = torch.device("cpu")
    modes = [("float64", torch.float64, cpu), ("float32", torch.float32, cpu)]
    if device != cpu:
        modes.append((f"float32 on {device.type}", torch.float32, device))
    failures = []
    for mode, dt, where in modes:
        try:
            return mode, _run(problem, _clone(inputs, where, dt), where), failures
        except Exception as e:  # noqa: BLE001 -- any failure means: try the next precision
            failures.append(f"{mode}: {_error_line(e)}")
    raise RuntimeError("; ".join(failures))


def _identical(native: Sequence[Any], other: Sequence[Any]) -> bool:
    return all(
        torch.equal(a.float(), b.float())
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
        else a == b
        for a, b in zip(native, other, strict=True)
    )


def _to_device_fp32(outputs: Sequence[Any], device: torch.device) -> list[Any]:
    # compare() works in fp32 anyway; moving the CPU answer once keeps every later comparison on the device.
    return [o.to(device=device, dtype=torch.float32) if isinstance(o, torch.Tensor) else o for o in outputs]


def measure_workload(
    problem: Problem,
    workload: Workload,
    *,
    device: torch.device,
    seed: int,
    margin: float,
    compiled: Any,
) -> dict[str, Any]:
    """All figures of one workload (see the module docstring) and its verdict, as one JSON-ready record.
    `compiled` is the problem's `torch.compile`d reference, or a string saying why there is none."""
    names = list(problem.definition.outputs)
    tolerance = workload.tolerance
    record: dict[str, Any] = {"elements": elements(problem, workload)}
    inputs = make_inputs(problem, workload, seed=seed, device=device)

    native = _run(problem, _clone(inputs), device)
    again = _run(problem, _clone(inputs), device)
    record["run_to_run"] = {
        "bitwise_equal": all(
            torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
            for a, b in zip(native, again, strict=True)
        ),
        **compare_outputs(names, again, native, tolerance),
    }

    truth: list[Any] | None = None
    try:
        mode, outputs, failures = true_outputs(problem, inputs, device)
        truth = _to_device_fp32(outputs, device)
        # Identical outputs mean the reference casts its inputs itself: then this is no independent answer.
        record["fp64"] = {
            "mode": mode,
            "fallback_reasons": failures,
            "identical_to_native": _identical(native, truth),
        }
        record["fp64"].update(compare_outputs(names, native, truth, tolerance))
    except Exception as e:  # noqa: BLE001 -- recorded; the verdict then rests on the other checks
        record["fp64"] = {"skipped": _error_line(e)}

    other: tuple | None = None
    if isinstance(compiled, str):
        record["compile"] = {"skipped": compiled}
    else:
        try:
            other = _run(problem, _clone(inputs), device, compiled)
            # Identical outputs mean Dynamo fell back to eager (a graph break around autograd, say).
            record["compile"] = {
                "identical_to_native": _identical(native, other),
                **compare_outputs(names, other, native, tolerance),
            }
        except Exception as e:  # noqa: BLE001 -- recorded; a compile failure says nothing about tolerance
            record["compile"] = {"skipped": _error_line(e)}

    wrong = wrong_outputs(native, seed)
    record["discrimination"] = discriminates(names, wrong, native, tolerance)

    checks = _Checks(names, native, again, truth, other, wrong, margin)
    record["margin_required"] = margin
    record["recommended"] = None
    if checks.correct(tolerance):
        # A tolerance that admits the wrong output cannot be fixed by loosening it: reported, not changed.
        record["verdict"] = "ok" if checks.discriminates(tolerance) else "admits-wrong"
    else:
        found = recommend(checks, tolerance)
        record["verdict"] = "change" if found is not None else "no-fit"
        if found is not None:
            record["recommended"] = tolerance_json(found)
            record["recommended_margins"] = checks.margins(found)
    record["margins"] = checks.margins(tolerance)
    return record


def _shrunk(tolerance: Tolerance, margin: float) -> Tolerance:
    """`tolerance` with atol and rtol divided by `margin`."""
    return replace(tolerance, atol=tolerance.atol / margin, rtol=tolerance.rtol / margin)


class _Checks:
    """The comparisons a tolerance must satisfy for one workload (those that could be run)."""

    def __init__(
        self,
        names: list[str],
        native: Sequence[Any],
        again: Sequence[Any],
        truth: Sequence[Any] | None,
        other: Sequence[Any] | None,
        wrong: Sequence[Any],
        margin: float,
    ) -> None:
        self.names, self.native, self.again, self.truth = names, native, again, truth
        self.other, self.wrong, self.margin = other, wrong, margin

    def margins(self, tolerance: Tolerance) -> dict[str, float | None]:
        """1 / needed scale of each correct comparison (>= 1 passes; None where not run)."""

        def margin(outputs: Sequence[Any] | None, refs: Sequence[Any] | None) -> float | None:
            if outputs is None or refs is None:
                return None
            scale = max(
                tolerance_scale(o, r, tolerance.for_output(n))
                for n, o, r in zip(self.names, outputs, refs, strict=True)
            )
            return math.inf if scale == 0 else 1 / scale

        return {
            "compile_vs_native": margin(self.other, self.native),
            "native_vs_fp64": margin(self.native, self.truth),
            "run_to_run": margin(self.again, self.native),
        }

    def correct(self, tolerance: Tolerance) -> bool:
        """Correct outputs pass: the compiled one with the margin, the native one against float64 and
        against its own second run."""

        # The judge's own compare() under the tolerance shrunk by the margin: the same answer as the margin
        # figures, without a selection over every element for each point of the grid.
        def passes(outputs: Sequence[Any] | None, refs: Sequence[Any] | None, margin: float) -> bool:
            if outputs is None or refs is None:
                return True
            return all(
                compare(o, r, _shrunk(tolerance.for_output(n), margin)).ok
                for n, o, r in zip(self.names, outputs, refs, strict=True)
            )

        return (
            passes(self.again, self.native, 1.0)
            and passes(self.native, self.truth, 1.0)
            and passes(self.other, self.native, self.margin)
        )

    def discriminates(self, tolerance: Tolerance) -> bool:
        """Every wrong output fails."""
        return discriminates(self.names, self.wrong, self.native, tolerance)["ok"]


def recommend(checks: _Checks, current: Tolerance) -> Tolerance | None:
    """The smallest loosening of `current` on the atol/rtol grid (matched ratio and cap kept) under which
    the checks hold: the least factor by which either bound grows, then the least sum of both factors."""
    atols = sorted({a for a in (*ATOL_GRID, current.atol) if a >= current.atol})
    rtols = sorted({r for r in (*RTOL_GRID, current.rtol) if r >= current.rtol})

    def cost(pair: tuple[float, float]) -> tuple[float, float]:
        fa = pair[0] / current.atol if current.atol > 0 else (1.0 if pair[0] == 0 else math.inf)
        fr = pair[1] / current.rtol if current.rtol > 0 else (1.0 if pair[1] == 0 else math.inf)
        return max(fa, fr), fa + fr

    for atol, rtol in sorted(((a, r) for a in atols for r in rtols), key=cost):
        candidate = replace(current, atol=atol, rtol=rtol, is_default=False)
        if checks.correct(candidate) and checks.discriminates(candidate):
            return candidate
    return None


def tolerance_json(tolerance: Tolerance) -> dict[str, Any]:
    """A tolerance in workload.jsonl spelling."""
    data: dict[str, Any] = {
        "max_atol": tolerance.atol,
        "max_rtol": tolerance.rtol,
        "required_matched_ratio": tolerance.matched_ratio,
    }
    if tolerance.error_cap is not None:
        data["max_error_cap"] = tolerance.error_cap
    if tolerance.allow_negative_inf:
        data["allow_negative_inf"] = True
    return data


# ------------------------------------------------------------------------------------------------ the run


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ProblemTimeout in the main thread after `seconds` (checked between Python bytecodes, so one
    long native call finishes first). No limit off the main thread or without SIGALRM."""
    usable = (
        seconds > 0 and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ProblemTimeout(f"problem time limit of {seconds:g} s reached")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _compiled_reference(problem: Problem) -> Any:
    module = reference_module(problem)
    # Dynamo resolves the function's globals by importing its module by name.
    sys.modules.setdefault(module.__name__, module)
    try:
        return torch.compile(module.run)
    except Exception as e:  # noqa: BLE001 -- recorded as the reason compile was skipped
        return _error_line(e)


def environment(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": str(device),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def calibrate_problem(
    problem: Problem,
    *,
    device: torch.device,
    seed: int,
    margin: float,
    max_elements: int,
    count: int,
    timeout_s: float,
    compile_reference: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per picked workload of `problem`; workloads left when the time limit hits are recorded
    as skipped."""
    picked = pick_workloads(problem, max_elements, count)
    done: set[str] = set()
    start = time.monotonic()
    base = {"problem": problem.name, "seed": seed, **environment(device)}
    pending: list[dict[str, Any]] = []
    try:
        with time_limit(timeout_s):
            compiled = _compiled_reference(problem) if compile_reference else "disabled (--no-compile)"
            for workload in picked:
                t0 = time.monotonic()
                record = {**base, "uuid": workload.uuid, "axes": dict(workload.axes)}
                record["tolerance"] = tolerance_json(workload.tolerance)
                try:
                    record.update(
                        measure_workload(
                            problem, workload, device=device, seed=seed, margin=margin, compiled=compiled
                        )
                    )
                except Exception as e:  # noqa: BLE001 -- one broken workload must not end the run
                    record.update(verdict="error", error=_error_line(e))
                record["seconds"] = round(time.monotonic() - t0, 3)
                done.add(workload.uuid)
                pending.append(record)
                _progress(record)
    except ProblemTimeout as e:
        for workload in picked:
            if workload.uuid not in done:
                record = {**base, "uuid": workload.uuid, "axes": dict(workload.axes)}
                record.update(
                    tolerance=tolerance_json(workload.tolerance),
                    verdict="skipped",
                    error=f"{e} after {time.monotonic() - start:.0f} s",
                )
                pending.append(record)
                _progress(record)
    finally:
        with contextlib.suppress(Exception):
            torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    yield from pending


def _progress(record: Mapping[str, Any]) -> None:
    margins = record.get("margins") or {}
    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in margins.items() if v is not None)
    extra = f" -> {record['recommended']}" if record.get("recommended") else ""
    why = f" ({record['error']})" if record.get("error") else ""
    print(
        f"[{record['problem']}] {record['axes']} {record['verdict']}{extra}{why}"
        f"{'; margins ' + shown if shown else ''} [{record.get('seconds', 0):.1f} s]",
        file=sys.stderr,
        flush=True,
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


# ------------------------------------------------------------------------------------------------ table


def table(records: Sequence[Mapping[str, Any]], suite: Path) -> str:
    """The markdown summary: one row per problem."""
    rows = [
        "| problem | dtype | tolerance (atol / rtol / ratio) | worst native-vs-fp64 matched | "
        "worst compile-vs-native matched | wrong output fails | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    by_problem: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_problem.setdefault(r["problem"], []).append(r)
    for name, recs in sorted(by_problem.items()):
        dtypes = _output_dtypes(suite / name)
        tols = sorted({_tol_text(r["tolerance"]) for r in recs})
        fp64 = _worst_ratio(recs, "fp64")
        comp = _worst_ratio(recs, "compile")
        disc = [r["discrimination"]["ok"] for r in recs if "discrimination" in r]
        rows.append(
            f"| {name} | {dtypes} | {'; '.join(tols)} | {fp64} | {comp} | "
            f"{('yes' if all(disc) else 'NO') if disc else '-'} | {_verdict_text(recs)} |"
        )
    return "\n".join(rows) + "\n"


def _output_dtypes(folder: Path) -> str:
    try:
        problem = load_problem(folder)
    except Exception:  # noqa: BLE001 -- the table still renders from the records
        return "?"
    return ", ".join(sorted({spec.dtype for spec in problem.definition.outputs.values()}))


def _tol_text(tol: Mapping[str, Any]) -> str:
    return f"{tol['max_atol']:g} / {tol['max_rtol']:g} / {tol['required_matched_ratio']:g}"


def _worst_ratio(recs: Sequence[Mapping[str, Any]], key: str) -> str:
    ratios = [
        out["matched_ratio"]
        for r in recs
        for out in r.get(key, {}).get("outputs", {}).values()
        if out.get("matched_ratio") is not None
    ]
    skipped = {r[key]["skipped"] for r in recs if "skipped" in r.get(key, {})}
    if not ratios:
        return f"skipped: {next(iter(skipped))[:60]}" if skipped else "-"
    notes = sorted({r[key].get("mode") for r in recs if r.get(key, {}).get("mode")} - {"float64"})
    notes = [f"{mode} reference" for mode in notes]
    if all(r[key].get("identical_to_native") for r in recs if "outputs" in r.get(key, {})):
        notes.append("bitwise equal")
    return f"{min(ratios):.5f}" + (f" ({', '.join(notes)})" if notes else "")


def _verdict_text(recs: Sequence[Mapping[str, Any]]) -> str:
    verdicts = {r["verdict"] for r in recs}
    if verdicts == {"ok"}:
        return "ok"
    parts = []
    changes = [r for r in recs if r["verdict"] == "change"]
    if changes:
        atol = max(r["recommended"]["max_atol"] for r in changes)
        rtol = max(r["recommended"]["max_rtol"] for r in changes)
        margins = [
            m
            for r in changes
            for m in (r.get("recommended_margins") or {}).values()
            if isinstance(m, int | float) and math.isfinite(m)
        ]
        least = f", least margin {min(margins):.3g}" if margins else ""
        parts.append(f"change to {atol:g} / {rtol:g} ({len(changes)}/{len(recs)} workloads{least})")
    for verdict in ("admits-wrong", "no-fit", "error", "skipped"):
        n = sum(r["verdict"] == verdict for r in recs)
        if n:
            parts.append(f"{verdict} {n}/{len(recs)}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ applying


def apply(results: Sequence[Mapping[str, Any]], suite: Path, *, whole_problem: bool = False) -> list[str]:
    """Write recommended tolerances into the suite's workload.jsonl files, changing nothing else in them.
    No bound is ever tightened. With `whole_problem`, every workload of a problem with a recommendation
    gets the loosest one measured for it. Returns a line per workload changed."""
    wanted: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        if r.get("verdict") == "change" and r.get("recommended"):
            # The same workload measured more than once (other seeds): the loosest of its recommendations.
            seen = wanted.setdefault(r["problem"], {}).setdefault(r["uuid"], r["recommended"])
            for key in ("max_atol", "max_rtol"):
                seen[key] = max(seen[key], r["recommended"][key])
    changed = []
    for name, per_uuid in sorted(wanted.items()):
        file = suite / name / WORKLOAD_FILE
        if not file.is_file():
            raise FileNotFoundError(f"{file}: the results name problem {name!r}, which this suite lacks")
        loosest = {
            "max_atol": max(t["max_atol"] for t in per_uuid.values()),
            "max_rtol": max(t["max_rtol"] for t in per_uuid.values()),
        }
        lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
        before = len(changed)
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            workload = json.loads(line)
            target = loosest if whole_problem else per_uuid.get(workload["uuid"])
            if target is None:
                continue
            old = dict(workload.get("tolerance") or {})
            new = dict(old) or {"required_matched_ratio": DEFAULT_MATCHED_RATIO}
            for key, default in (("max_atol", DEFAULT_ATOL), ("max_rtol", DEFAULT_RTOL)):
                new[key] = max(target[key], old.get(key, default))
            if new == old:
                continue
            lines[i] = replace_tolerance(line, new)
            changed.append(f"{name} {workload['uuid']}: {old} -> {new}")
        if len(changed) > before:
            file.write_text("".join(lines), encoding="utf-8")
    return changed


def replace_tolerance(line: str, tolerance: Mapping[str, Any]) -> str:
    """`line` (one workload's JSON) with only its top-level "tolerance" value replaced, in the line's own
    separators; added before the closing brace when the workload has none."""
    spaced = '": ' in line
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(dict(tolerance), separators=separators)
    decoder = json.JSONDecoder()
    for match in re.finditer(r'"tolerance"\s*:\s*', line):
        try:
            _, end = decoder.raw_decode(line, match.end())
        except json.JSONDecodeError:
            continue
        candidate = line[: match.end()] + text + line[end:]
        if json.loads(candidate).get("tolerance") == dict(tolerance):
            return candidate
    if "tolerance" in json.loads(line):
        raise ValueError(f"cannot locate the tolerance in {line[:80]!r}")
    body = line.rstrip()
    tail = line[len(body) :]
    if not body.endswith("}"):
        raise ValueError(f"not a JSON object line: {line[:80]!r}")
    return f'{body[:-1]}{separators[0]}"tolerance"{separators[1]}{text}}}{tail}'


# ------------------------------------------------------------------------------------------------ CLI


def _problem_dirs(suite: Path, names: str | None, shard: str | None) -> list[Path]:
    folders = sorted(p.parent for p in suite.glob("*/definition.json"))
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if not (suite / n / "definition.json").is_file()]
        if unknown:
            raise SystemExit(f"no such problem in {suite}: {', '.join(unknown)}")
        folders = [suite / n for n in wanted]
    if shard:
        index, _, count = shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise SystemExit(f"--shard wants K/N with 0 <= K < N, got {shard!r}")
        folders = folders[int(index) :: int(count)]
    return folders


def _finite(value: Any) -> Any:
    # Strict JSON has no Infinity; an infinite margin (an exact match) is written as the string "inf".
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The records of one or more results files."""
    return [
        json.loads(line)
        for path in paths
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure (or, with --apply, write) tolerances; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default=str(DEFAULT_SUITE), help="a folder of problem folders")
    parser.add_argument("--problems", help="comma-separated problem names (default: all of the suite)")
    parser.add_argument("--max-elements", type=int, default=1 << 25, help="input+output elements cap")
    parser.add_argument(
        "--workloads",
        type=int,
        default=3,
        help="per problem: the N-1 smallest and the largest within --max-elements (0: all of those)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, default=2.0, help="required margin of the compiled reference")
    parser.add_argument("--problem-timeout-s", type=float, default=240.0)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    parser.add_argument("--out", default="tolerances.jsonl")
    parser.add_argument("--append", action="store_true", help="add to --out; the table covers all of it")
    parser.add_argument("--resume", action="store_true", help="append to --out, skipping problems it has")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="start no problem after this many seconds, and cut each problem's limit to what is left",
    )
    parser.add_argument("--shard", metavar="K/N", help="only problems K, K+N, K+2N... (0-based)")
    parser.add_argument("--table", nargs="+", metavar="RESULTS", help="only print the table of results files")
    parser.add_argument("--apply", metavar="RESULTS", help="write the recommendations of a results file")
    parser.add_argument(
        "--apply-to-problem",
        action="store_true",
        help="with --apply: give every workload of a problem its loosest recommendation",
    )
    args = parser.parse_args(argv)
    suite = Path(args.suite)

    if args.table:
        print(table(read_results(args.table), suite))
        return 0
    if args.apply:
        results = read_results([args.apply])
        devices = {r.get("device") for r in results}
        if any(d is None or not str(d).startswith("cuda") for d in devices):
            print(
                f"warning: results measured on {sorted(map(str, devices))}, not only a GPU", file=sys.stderr
            )
        for line in apply(results, suite, whole_problem=args.apply_to_problem):
            print(line)
        return 0

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but torch sees no CUDA GPU here (use --device cpu for a smoke run)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["problem"] for r in read_results([out])} if args.resume and out.is_file() else set()
    folders = [f for f in _problem_dirs(suite, args.problems, args.shard) if f.name not in done]
    start = time.monotonic()
    with out.open("a" if args.append or args.resume else "w", encoding="utf-8") as sink:
        for index, folder in enumerate(folders):
            left = args.budget_s - (time.monotonic() - start) if args.budget_s > 0 else math.inf
            if left <= 1:
                rest = ", ".join(f.name for f in folders[index:])
                print(f"budget of {args.budget_s:g} s spent; not started: {rest}", file=sys.stderr)
                break
            try:
                problem = load_problem(folder)
            except Exception as e:  # noqa: BLE001 -- reported, the rest of the suite still runs
                print(f"[{folder.name}] cannot load: {_error_line(e)}", file=sys.stderr)
                continue
            for record in calibrate_problem(
                problem,
                device=device,
                seed=args.seed,
                margin=args.margin,
                max_elements=args.max_elements,
                count=args.workloads,
                timeout_s=min(args.problem_timeout_s, left),
                compile_reference=not args.no_compile,
            ):
                sink.write(json.dumps(_finite(record), default=str, allow_nan=False) + "\n")
                sink.flush()
    markdown = table(read_results([out]), suite)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
