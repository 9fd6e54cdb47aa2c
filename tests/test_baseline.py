"""T_b: the faster of eager and compile, per workload, cached by (problem, workload, device, versions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_scale_problem

from solgym import baseline
from solgym.problem import load_problem


@pytest.fixture
def problem(tmp_path: Path):
    return load_problem(write_scale_problem(tmp_path / "p"))


def report(*latencies: float | None) -> dict:
    records = [
        {"uuid": u, "status": "PASSED" if t else "RUNTIME_ERROR", "message": "", "latency_ms": t}
        for u, t in zip("ab", latencies, strict=True)
    ]
    return {
        "workloads": records,
        "environment": {"gpu": "NVIDIA H100 80GB HBM3", "timing_method": "profiler-kernel-busy"},
    }


def test_the_faster_method_sets_t_b(problem):
    jobs = []

    def run_job(job: dict) -> dict:
        jobs.append(job)
        return report(0.05, 0.08) if job["baseline"] == "eager" else report(0.03, None)

    measured = baseline.measure(problem, list(problem.workloads), device=0, run_job=run_job)
    assert [j["baseline"] for j in jobs] == ["eager", "compile"]
    assert (measured[0].t_baseline_ms, measured[0].baseline_method) == (0.03, "compile")
    assert (measured[1].t_baseline_ms, measured[1].baseline_method) == (0.08, "eager")
    assert "compile" in measured[1].note
    assert measured[0].device == "NVIDIA H100 80GB HBM3"


def test_a_compile_job_past_its_wall_limit_leaves_the_eager_baseline(problem):
    jobs = []

    def run_job(job: dict) -> dict:
        jobs.append(job)
        if job["baseline"] == "compile":  # what the pool answers for a child killed at its wall limit
            return {"status": "INFRA_ERROR", "message": "exceeded wall limit 7 s"}
        return report(0.05, 0.08)

    measured = baseline.measure(
        problem, list(problem.workloads), device=0, run_job=run_job, compile_wall_s=7.0
    )
    assert [j.get("wall_s") for j in jobs] == [None, 7.0]
    assert [(m.t_baseline_ms, m.baseline_method) for m in measured] == [(0.05, "eager"), (0.08, "eager")]
    assert all("exceeded wall limit" in m.note for m in measured)


def test_cpu_baseline_is_the_eager_reference_only(problem):
    kinds = []

    def run_job(job: dict) -> dict:
        kinds.append((job["baseline"], job["mode"]))
        return report(1.0, 2.0)

    measured = baseline.measure(problem, list(problem.workloads), device=None, run_job=run_job)
    assert kinds == [("eager", "cpu")]
    assert measured[0].device == "cpu"


def test_no_timed_method_is_an_error_naming_the_workload(problem):
    with pytest.raises(RuntimeError, match="workload a"):
        baseline.measure(
            problem, list(problem.workloads), device=None, run_job=lambda job: report(None, None)
        )


def test_cache_round_trip_is_keyed_by_device_model(problem, tmp_path):
    b = baseline.measure(problem, list(problem.workloads), device=0, run_job=lambda job: report(0.05, 0.08))[
        0
    ]
    baseline.store(problem, problem.workloads[0], b, cache=tmp_path)
    # the same model under the hardware table's own name finds it; another GPU does not
    from solgym.hardware import get_profile

    assert baseline.cached(problem, problem.workloads[0], get_profile("h100-sxm").name, cache=tmp_path) == b
    assert baseline.cached(problem, problem.workloads[0], "cpu", cache=tmp_path) is None
    assert baseline.cached(problem, problem.workloads[1], b.device, cache=tmp_path) is None


def test_a_changed_reference_misses_the_cache(problem, tmp_path):
    b = baseline.measure(problem, list(problem.workloads), device=None, run_job=lambda job: report(1.0, 1.0))[
        0
    ]
    baseline.store(problem, problem.workloads[0], b, cache=tmp_path)
    from dataclasses import replace

    changed = replace(
        problem, definition=replace(problem.definition, reference="def run(x):\n    return x * 3\n")
    )
    assert baseline.cached(changed, problem.workloads[0], "cpu", cache=tmp_path) is None


def test_a_new_timing_protocol_misses_the_cache(problem, tmp_path, monkeypatch):
    b = baseline.measure(problem, list(problem.workloads), device=None, run_job=lambda job: report(1.0, 1.0))[
        0
    ]
    baseline.store(problem, problem.workloads[0], b, cache=tmp_path)
    assert baseline.cached(problem, problem.workloads[0], "cpu", cache=tmp_path) == b
    monkeypatch.setattr(baseline, "TIMING_PROTOCOL", baseline.TIMING_PROTOCOL + 1)
    assert baseline.cached(problem, problem.workloads[0], "cpu", cache=tmp_path) is None


def test_a_cpu_baseline_is_cached_per_child_thread_count(problem, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    b = baseline.measure(problem, list(problem.workloads), device=None, run_job=lambda job: report(1.0, 1.0))[
        0
    ]
    baseline.store(problem, problem.workloads[0], b, cache=tmp_path)
    assert baseline.cached(problem, problem.workloads[0], "cpu", cache=tmp_path) == b
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # children would time with two threads: another scale
    assert baseline.cached(problem, problem.workloads[0], "cpu", cache=tmp_path) is None


def test_several_passes_keep_the_fastest_of_each_method_and_their_spread(problem):
    answers = iter(
        [
            report(0.05, 0.08),  # pass 1: eager, compile
            report(0.09, 0.06),
            report(0.04, 0.10),  # pass 2
            report(0.06, None),
        ]
    )
    jobs = []

    def run_job(job: dict) -> dict:
        jobs.append(job["baseline"])
        return next(answers)

    a, b = baseline.measure(problem, list(problem.workloads), device=0, run_job=run_job, passes=2)
    assert jobs == ["eager", "compile", "eager", "compile"]  # every pass is new jobs: compiled afresh
    assert (a.eager_ms, a.compile_ms, a.t_baseline_ms, a.baseline_method) == (0.04, 0.06, 0.04, "eager")
    assert a.passes == 2 and a.spread == pytest.approx(0.05 / 0.04 - 1)  # T_b per pass: 0.05, 0.04
    assert (b.eager_ms, b.compile_ms, b.baseline_method) == (0.08, 0.06, "compile")
    assert b.spread == pytest.approx(0.1 / 0.06 - 1) and "compile: RUNTIME_ERROR" in b.note
    with pytest.raises(ValueError, match="passes must be >= 1"):
        baseline.measure(problem, list(problem.workloads), device=0, run_job=run_job, passes=0)


def test_the_extent_and_the_timing_clock_are_reported_apart_from_t_b(problem):
    def timed(eager: bool, pass_no: int) -> dict:
        r = report(0.05, 0.08) if eager else report(0.03, 0.09)
        for record, extent in zip(r["workloads"], (0.10, 0.20) if eager else (0.12, 0.30), strict=True):
            record["timing"] = {"extent_median_ms": extent + 0.01 * pass_no}
        r["environment"]["nvml_before"] = {"sm_clock_mhz": 1980.0}
        r["environment"]["nvml_after"] = {"sm_clock_mhz": 1970.0 if pass_no else 1980.0}
        return r

    answers = iter([timed(True, 0), timed(False, 0), timed(True, 1), timed(False, 1)])
    a, b = baseline.measure(
        problem, list(problem.workloads), device=0, run_job=lambda job: next(answers), passes=2
    )
    # T_b is the call time (busy time, 0.03, compile); the extent is the least of any method and pass.
    assert (a.t_baseline_ms, a.baseline_method, a.extent_ms) == (0.03, "compile", 0.10)
    assert [p["eager"] for p in a.pass_extent_ms] == pytest.approx([0.10, 0.11])
    assert [p["compile"] for p in a.pass_extent_ms] == pytest.approx([0.12, 0.13])
    assert b.extent_ms == 0.20
    assert a.sm_clock_mhz == pytest.approx((3 * 1980 + 1970) / 4)  # two reports per pass, two readings each
    cpu = baseline.measure(
        problem, list(problem.workloads), device=None, run_job=lambda job: report(1.0, 2.0)
    )
    assert cpu[0].extent_ms is None and cpu[0].pass_extent_ms == () and cpu[0].sm_clock_mhz is None


def test_the_compile_baseline_gives_every_workload_a_static_graph_of_its_own(tmp_path: Path, monkeypatch):
    """Ten shapes through one compile baseline: ten static graphs (no dynamic graph shared between
    workloads, and no silent fall back to eager past Dynamo's default limit of eight recompiles)."""
    import torch
    from conftest import write_tiny_rmsnorm

    from solgym import harness

    graphs: list[tuple[tuple[int, ...], ...]] = []

    def recording_backend(gm, example_inputs):
        # Symbolic sizes would show up as SymInt here, not int.
        graphs.append(tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)))
        return gm.forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend=recording_backend, **kw))
    torch._dynamo.reset()
    problem = load_problem(write_tiny_rmsnorm(tmp_path / "p"))
    candidate = harness._baseline_candidate(problem, "compile", shapes=10)
    weight = torch.ones(32)
    try:
        for rows in range(1, 11):
            out = candidate.run(torch.randn(rows, 32), weight)
            assert out.shape == (rows, 32) and not out.__dict__
    finally:
        torch._dynamo.reset()
    assert len(graphs) == 10
    assert all(isinstance(d, int) for shapes in graphs for shape in shapes for d in shape)
    assert sorted(shapes[0][0] for shapes in graphs) == list(range(1, 11))


def _fake_compile(
    monkeypatch, *, static_fails: set[int], dynamic_fails: set[int] = frozenset()
) -> list[tuple]:
    """torch.compile stand-in: the static compile raises the compiler's error on inputs with a row count in
    `static_fails`; the dynamic one on those in `dynamic_fails`. Returns the log of (mode, rows, code object) calls."""
    import torch
    from torch._dynamo.exc import BackendCompilerFailed

    calls: list[tuple] = []

    def fake(fn, dynamic=None, **kw):
        def compiled(*args):
            rows = args[0].shape[0]
            calls.append(("dynamic" if dynamic else "static", rows, fn.__code__))
            if rows in (dynamic_fails if dynamic else static_fails):
                raise BackendCompilerFailed(fn, TypeError("list indices must be integers"), None)
            return fn(*args)

        return compiled

    monkeypatch.setattr(torch, "compile", fake)
    return calls


def test_a_shape_the_static_compile_fails_on_is_compiled_with_dynamic_shapes(tmp_path: Path, monkeypatch):
    import torch
    from conftest import write_tiny_rmsnorm

    from solgym import harness

    calls = _fake_compile(monkeypatch, static_fails={3})
    problem = load_problem(write_tiny_rmsnorm(tmp_path / "p"))
    candidate = harness._baseline_candidate(problem, "compile", shapes=4)
    weight = torch.ones(32)
    for rows in (1, 3, 3, 2, 3):
        assert candidate.run(torch.randn(rows, 32), weight).shape == (rows, 32)
    # The failing shape is tried statically once, then always goes to the dynamic compile; the others
    # stay static.
    assert [(mode, rows) for mode, rows, _ in calls] == [
        ("static", 1),
        ("static", 3),
        ("dynamic", 3),
        ("dynamic", 3),
        ("static", 2),
        ("dynamic", 3),
    ]
    # The dynamic graph comes from a twin code object: Dynamo's per-code cache never offers it to the
    # static shapes.
    static_code = {id(code) for mode, _, code in calls if mode == "static"}
    dynamic_code = {id(code) for mode, _, code in calls if mode == "dynamic"}
    assert len(static_code) == len(dynamic_code) == 1 and static_code != dynamic_code
    assert len(candidate.notes) == 1 and "dynamic shapes" in candidate.notes[0]
    assert "list indices" in candidate.notes[0]


def test_a_compile_baseline_times_every_workload_that_passed(tmp_path: Path, monkeypatch):
    from conftest import write_tiny_rmsnorm

    from solgym import harness, judge

    folder = write_tiny_rmsnorm(tmp_path / "p", rows=4)
    lines = (folder / "workload.jsonl").read_text().splitlines()
    extra = [json.loads(lines[0]) | {"uuid": u, "axes": {"B": b}} for u, b in (("w-three", 3), ("w-two", 2))]
    (folder / "workload.jsonl").write_text("\n".join(lines + [json.dumps(w) for w in extra]) + "\n")
    problem = load_problem(folder)
    # rows 3: static and dynamic both fail (no compile time); rows 2: only static fails (dynamic time).
    _fake_compile(monkeypatch, static_fails={2, 3}, dynamic_fails={3})
    job = judge.payload(problem, None, seed=1, mode="cpu", policy="permissive", baseline="compile", rounds=1)
    job["timing"] = {"warmup": 1, "min_reps": 3, "max_reps": 3, "calibration_calls": 3}
    workdir = tmp_path / "work"
    workdir.mkdir()
    from test_harness import FakeContext

    report = harness.child_main(job, FakeContext(workdir))
    records = {r["uuid"]: r for r in report["workloads"]}
    assert records["w-small"]["status"] == "PASSED" and records["w-small"]["latency_ms"] > 0
    assert records["w-three"]["status"] != "PASSED" and "latency_ms" not in records["w-three"]
    eager = harness.child_main({**job, "baseline": "eager"}, FakeContext(workdir))
    passes = [{"eager": eager, "compile": report}]
    [b4, b3, b2] = baseline.from_reports(problem, list(problem.workloads), passes, "cpu", "cpu")
    assert b4.compile_ms == records["w-small"]["latency_ms"] and b4.note == ""
    assert b3.compile_ms is None and b3.eager_ms is not None and "compile: RUNTIME_ERROR" in b3.note
    assert b2.compile_ms is not None and "compile: compiled with dynamic shapes" in b2.note
