"""GPU lane (`pytest -m gpu`): correct Triton and load_inline kernels pass through the real sandbox; the
hostile kernels of examples/kernels/hostile are caught by the runtime guards themselves (permissive
policy, so static analysis does not stop them first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)

from solgym import bounds as bounds_module  # noqa: E402
from solgym import hardware, judge  # noqa: E402
from solgym.harness import ENTRY, TimingConfig  # noqa: E402
from solgym.problem import load_problem  # noqa: E402
from solgym.result import Status  # noqa: E402
from solgym.sandbox import Lane  # noqa: E402

KERNELS = Path(__file__).resolve().parents[2] / "examples" / "kernels"
REFERENCE = "import torch\ndef run(x, weight):\n    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n"


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu") / "rmsnorm_fp32"
    folder.mkdir()
    definition = {
        "name": "rmsnorm_fp32",
        "axes": {"B": {"type": "var"}, "H": {"type": "const", "value": 1024}},
        "inputs": {
            "x": {"shape": ["B", "H"], "dtype": "float32"},
            "weight": {"shape": ["H"], "dtype": "float32"},
        },
        "outputs": {"out": {"shape": ["B", "H"], "dtype": "float32"}},
        "reference": REFERENCE,
    }
    (folder / "definition.json").write_text(json.dumps(definition))
    workload = {
        "uuid": "w-gpu",
        "axes": {"B": 2048},
        "inputs": {"x": {"type": "random"}, "weight": {"type": "random"}},
    }
    (folder / "workload.jsonl").write_text(json.dumps(workload) + "\n")
    return load_problem(folder)


@pytest.fixture(scope="module")
def lane():
    with Lane(0, spares=1) as lane:
        yield lane


def run_action(lane, problem, file: str, policy: str = "permissive"):
    source = (KERNELS / file).read_text()
    job = judge.payload(
        problem, {"source": source}, seed=11, mode="gpu", policy=policy, timing={"max_reps": 50}
    )
    outcome = lane.run(ENTRY, job)
    bound = bounds_module.derive(problem, problem.workloads[0], hardware.detect(0))
    result = judge.judge(
        outcome,
        problem,
        policy=policy,
        bounds={"w-gpu": bound},
        workloads=problem.workloads,
        calibration_calls=TimingConfig().calibration_calls,
    )
    return outcome, result


def test_correct_triton_kernel_passes(lane, problem):
    outcome, result = run_action(lane, problem, "rmsnorm_triton.py", policy="strict")
    assert result.status == Status.PASSED, result.message
    w = result.workloads[0]
    assert w.latency_ms > 0
    timing = outcome.result["workloads"][0]["timing"]
    assert timing["method"] == "profiler-kernel-busy"
    assert timing["custom_fraction"] > 0.5
    assert "nvml_before" in result.environment


def test_correct_load_inline_kernel_passes(lane, problem):
    outcome, result = run_action(lane, problem, "rmsnorm_cuda.py", policy="strict")
    assert result.status == Status.PASSED, result.message + result.compile_log
    assert outcome.result["build"]["builds"][0]["ms"] > 0


def test_side_stream_work_is_counted(lane, problem):
    outcome, result = run_action(lane, problem, "hostile/side_stream.py")
    assert result.status == Status.PASSED, result.message
    # the side stream spins about 1 ms per call: a current-stream timer would report microseconds
    assert result.workloads[0].latency_ms > 0.5


def test_pointer_keyed_cache_is_caught(lane, problem):
    _, result = run_action(lane, problem, "hostile/pointer_cache.py")
    assert result.status in (Status.INCORRECT_NUMERICAL, Status.REWARD_HACK)


def test_lazy_output_is_caught(lane, problem):
    _, result = run_action(lane, problem, "hostile/lazy_output.py")
    assert result.status == Status.REWARD_HACK
    assert result.workloads[0].status == Status.REWARD_HACK


def test_unwritten_empty_output_is_caught(lane, problem):
    _, result = run_action(lane, problem, "hostile/empty_output.py")
    assert result.status == Status.INCORRECT_NUMERICAL


def test_forged_fast_time_is_caught_by_the_parent_clock(lane, problem):
    outcome, result = run_action(lane, problem, "hostile/forged_time.py")
    assert result.status == Status.REWARD_HACK, result.message
    # The rewritten profiler method is caught by the identity snapshots before any window is judged; the
    # parent-clock rule itself ("forged-time") is tested with forged windows in tests/test_judge.py.
    rules = {v.rule for v in result.violations}
    assert rules & {"forged-time", "tampered-harness"}, f"{result.violations} {outcome.timed_windows_s}"


def test_raw_profiler_records_agree_with_the_event_list():
    # The harness reads the profiler's raw records; they must give the same ranges and kernels as the
    # documented (slower) event list.
    from torch.profiler import ProfilerActivity

    from solgym.harness import _profiled_events

    x = torch.randn(1 << 20, device="cuda")
    with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(3):
            with torch.profiler.record_function(f"solgym_t_{i}"):
                (x * 2).sum()
                torch.cuda.synchronize()
    tags = {f"solgym_t_{i}" for i in range(3)}
    fast = _profiled_events(prof, tags)

    class EventsOnly:  # no raw interface: the fallback path
        def events(self):
            return prof.events()

    slow = _profiled_events(EventsOnly(), tags)
    assert set(fast[0]) == set(slow[0]) == tags
    assert sorted(n for *_, n in fast[1]) == sorted(n for *_, n in slow[1])
    assert len(fast[1]) >= 6
    # Both on one clock: every kernel lies inside one tagged range in both readings, durations agree.
    for ranges, kernels in (fast, slow):
        assert all(any(lo <= s <= hi for lo, hi in ranges.values()) for s, _, _ in kernels)
    fast_k = sorted((n, round(e - s, 3)) for s, e, n in fast[1])
    slow_k = sorted((n, round(e - s, 3)) for s, e, n in slow[1])
    assert all(abs(a[1] - b[1]) < 0.05 for a, b in zip(fast_k, slow_k, strict=True)), (fast_k, slow_k)
