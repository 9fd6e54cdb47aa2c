"""The shipped `core` suite: every problem is well-formed, from a named model, and runs on the CPU; every
shipped solution matches its reference under the Triton interpreter."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from solgym.inputs import footprint_bytes, make_inputs, run_reference
from solgym.problem import Problem, load_problem

CORE = Path(__file__).resolve().parents[1] / "envs" / "core"
PROBLEMS = sorted(p for p in CORE.iterdir() if (p / "definition.json").is_file())
SOLUTIONS = sorted(s for p in PROBLEMS for s in (p / "solutions").glob("*.py"))
# The smallest workload of each problem must run on a CPU: CI runs all of them.
CPU_SMALLEST_MAX_BYTES = 256 << 20


def smallest(problem: Problem):
    return min(problem.workloads, key=lambda w: footprint_bytes(problem, w))


@pytest.mark.parametrize("folder", PROBLEMS, ids=lambda p: p.name)
def test_problem_is_well_formed_and_from_a_named_model(folder):
    problem = load_problem(folder)
    extra = problem.definition.extra
    assert problem.name == folder.name
    provenance = extra["provenance"]
    assert provenance["model"] and provenance["layer"] and provenance["config"]
    assert provenance["direction"] in ("fwd", "bwd")
    assert set(extra["tags"]) & {"single", "fused", "quantized"} or problem.name == "rmsnorm_llama3_8b"
    assert 4 <= len(problem.workloads) <= 8
    var_axes = [a.name for a in problem.definition.axes.values() if a.kind == "var"]
    assert var_axes, "a problem needs a var axis to draw hidden shapes from"
    ranges = extra["axis_ranges"]
    for axis in var_axes:
        lo, hi = ranges[axis]
        assert 1 <= lo <= hi
        assert all(lo <= w.axes[axis] <= hi for w in problem.workloads)
    odd = [w for w in problem.workloads if any(v % 16 for v in w.axes.values())]
    assert odd, "at least one workload with a size that is not a multiple of 16"


@pytest.mark.parametrize("folder", PROBLEMS, ids=lambda p: p.name)
def test_reference_runs_on_cpu_for_the_smallest_workload(folder):
    problem = load_problem(folder)
    workload = smallest(problem)
    assert footprint_bytes(problem, workload) <= CPU_SMALLEST_MAX_BYTES
    outputs = run_reference(problem, make_inputs(problem, workload, seed=0))
    axes = problem.axes(workload)
    for spec, out in zip(problem.definition.outputs.values(), outputs, strict=True):
        assert tuple(out.shape) == problem.definition.shape(spec, axes)
        assert out.dtype == getattr(torch, spec.dtype)
        assert torch.isfinite(out.float()).all()


def _load_solution(path: Path):
    spec = importlib.util.spec_from_file_location(f"solution_{path.parent.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="Triton needs a GPU or TRITON_INTERPRET=1",
)
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_shipped_solution_matches_reference(path):
    problem = load_problem(path.parent.parent)
    workload = smallest(problem)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs = make_inputs(problem, workload, seed=11, device=device)
    expected = run_reference(problem, inputs)
    got = _load_solution(path).run(*inputs.values())
    got = got if isinstance(got, tuple | list) else (got,)
    tol = workload.tolerance
    for name, e, g in zip(problem.definition.outputs, expected, got, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype, name
        e, g = e.float(), g.float()
        close = (g - e).abs() <= tol.atol + tol.rtol * e.abs()
        assert close.float().mean().item() >= tol.matched_ratio, (
            f"{name}: max error {(g - e).abs().max().item()}"
        )
