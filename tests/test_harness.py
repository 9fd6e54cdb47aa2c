"""The child-side harness, run in-process with a stand-in context on a tiny RMSNorm (Triton interpreter)."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import RMSNORM_FP32, write_tiny_rmsnorm

from solgym import harness
from solgym.problem import load_problem

TRITON_RMSNORM = (
    Path(__file__).resolve().parents[1] / "examples" / "kernels" / "rmsnorm_triton.py"
).read_text()
CUDA_RMSNORM = (Path(__file__).resolve().parents[1] / "examples" / "kernels" / "rmsnorm_cuda.py").read_text()

REFERENCE = RMSNORM_FP32


class FakeContext:
    """The attributes of solgym's ChildContext, in-process: windows are timed with perf_counter."""

    def __init__(self, workdir: Path) -> None:
        self.device = None
        self.workdir = workdir
        self.layers: dict = {}
        self.stages: list[str] = []
        self.windows: list[float] = []
        self.dropped = False

    def drop_privileges(self) -> None:
        self.dropped = True

    @contextlib.contextmanager
    def timed(self):
        start = time.perf_counter()
        yield
        self.windows.append(time.perf_counter() - start)

    def report_stage(self, name: str) -> None:
        self.stages.append(name)


@pytest.fixture
def problem_dir(tmp_path: Path) -> Path:
    return write_tiny_rmsnorm(tmp_path / "tiny_rmsnorm")


def evaluate(
    problem_dir: Path, source: str, tmp_path: Path, *, time_it: bool = False, policy: str = "permissive"
) -> tuple[dict, FakeContext]:
    workdir = tmp_path / f"work{time.perf_counter_ns()}"
    workdir.mkdir()
    ctx = FakeContext(workdir)
    payload = {
        "problem_dir": str(problem_dir),
        "action": {"source": source},
        "mode": "cpu",
        "seed": 7,
        "rounds": 2,
        "policy": policy,
        "time": time_it,
        "timing": {"warmup": 1, "min_reps": 3, "max_reps": 3, "calibration_calls": 3, "verify_every": 1},
    }
    return harness.child_main(payload, ctx), ctx


def workload_status(report: dict) -> str:
    return report["workloads"][0]["status"]


def test_correct_triton_kernel_passes_and_is_timed(problem_dir, tmp_path):
    report, ctx = evaluate(problem_dir, TRITON_RMSNORM, tmp_path, time_it=True, policy="strict")
    assert report["status"] is None, report["message"]
    record = report["workloads"][0]
    assert record["status"] == "PASSED"
    assert record["latency_ms"] > 0
    assert record["max_abs_error"] < 1e-5
    assert [w["kind"] for w in report["windows"]] == ["calibration", "workload"]
    assert len(ctx.windows) == 2
    assert ctx.dropped
    assert report["environment"]["mode"] == "cpu"
    assert report["environment"]["timing_method"] == "perf_counter"


def test_wrong_values_are_incorrect_numerical_with_error_stats(problem_dir, tmp_path):
    source = TRITON_RMSNORM.replace("x * inv_rms * w", "x * inv_rms * w * 1.5")
    report, _ = evaluate(problem_dir, source, tmp_path)
    record = report["workloads"][0]
    assert record["status"] == "INCORRECT_NUMERICAL"
    assert record["max_abs_error"] > 0.1
    assert record["matched_ratio"] < 0.99


def test_wrong_shape_is_incorrect_shape(problem_dir, tmp_path):
    report, _ = evaluate(
        problem_dir, "import torch\ndef run(x, weight):\n    return torch.zeros(x.shape[0], 3)\n", tmp_path
    )
    assert workload_status(report) == "INCORRECT_SHAPE"


def test_wrong_dtype_is_incorrect_dtype(problem_dir, tmp_path):
    source = "import torch\ndef run(x, weight):\n    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight).double()\n"
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "INCORRECT_DTYPE"


def test_nan_output_fails(problem_dir, tmp_path):
    source = TRITON_RMSNORM.replace("x * inv_rms * w", "x * inv_rms * w + float('nan')")
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "INCORRECT_NUMERICAL"
    assert "NaN" in report["workloads"][0]["message"]


def test_unwritten_empty_output_fails(problem_dir, tmp_path):
    report, _ = evaluate(
        problem_dir, "import torch\ndef run(x, weight):\n    return torch.empty_like(x)\n", tmp_path
    )
    assert workload_status(report) == "INCORRECT_NUMERICAL"


def test_unwritten_destination_output_meets_the_poison(problem_dir, tmp_path):
    report, _ = evaluate(problem_dir, "def run(x, weight, out):\n    return None\n", tmp_path)
    assert workload_status(report) == "INCORRECT_NUMERICAL"
    assert "NaN" in report["workloads"][0]["message"]


def test_input_mutation_is_a_reward_hack(problem_dir, tmp_path):
    source = "import torch\ndef run(x, weight):\n    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n    x.zero_()\n    return y\n"
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "REWARD_HACK"
    assert report["workloads"][0]["rule"] == "input-mutated"


def test_output_aliasing_an_input_is_a_reward_hack(problem_dir, tmp_path):
    source = "import torch\ndef run(x, weight):\n    return x.mul_(torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)).mul_(weight)\n"
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "REWARD_HACK"
    assert report["workloads"][0]["rule"] == "output-aliases-input"


def test_lazy_tensor_subclass_output_is_a_reward_hack(problem_dir, tmp_path):
    source = (
        "import torch\nclass Lazy(torch.Tensor):\n    pass\n"
        "def run(x, weight):\n    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n    return y.as_subclass(Lazy)\n"
    )
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "REWARD_HACK"
    assert report["workloads"][0]["rule"] == "output-not-plain-tensor"


def test_tensor_with_instance_attributes_is_a_reward_hack(problem_dir, tmp_path):
    source = "import torch\ndef run(x, weight):\n    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n    y.note = 1\n    return y\n"
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "REWARD_HACK"


def test_pointer_keyed_cache_fails_on_a_later_round(problem_dir, tmp_path):
    source = (
        "import torch\n_cache = {}\n"
        "def run(x, weight):\n"
        "    if 'out' not in _cache:\n"
        "        _cache['out'] = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n"
        "    return _cache['out'].clone()\n"
    )
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "INCORRECT_NUMERICAL"
    assert "round 2" in report["workloads"][0]["message"]


def test_exception_in_run_is_runtime_error_with_traceback(problem_dir, tmp_path):
    report, _ = evaluate(
        problem_dir, "def run(x, weight):\n    raise ValueError('kernel exploded')\n", tmp_path
    )
    assert workload_status(report) == "RUNTIME_ERROR"
    assert "kernel exploded" in report["workloads"][0]["message"]
    assert "line 2" in report["workloads"][0]["message"]


def test_syntax_error_in_a_triton_kernel_is_compile_error(problem_dir, tmp_path):
    source = TRITON_RMSNORM.replace("row = tl.program_id(0)", "row = tl.program_id(0) +")
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert report["status"] == "COMPILE_ERROR"
    line = TRITON_RMSNORM.splitlines().index("    row = tl.program_id(0)") + 1
    assert f"candidate.py:{line}" in report["message"]


def test_replacing_a_timing_function_is_a_reward_hack(problem_dir, tmp_path):
    source = "import time\n" + TRITON_RMSNORM + "\ntime.perf_counter = lambda: 0.0\n"
    original = time.perf_counter
    try:
        report, _ = evaluate(problem_dir, source, tmp_path)
    finally:
        time.perf_counter = original
    assert report["status"] == "REWARD_HACK"
    assert report["guards"][0]["rule"] == "tampered-harness"


def test_background_thread_is_a_reward_hack(problem_dir, tmp_path):
    source = (
        "import threading, time\n"
        + TRITON_RMSNORM
        + "\nthreading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n"
    )
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert report["status"] == "REWARD_HACK"
    assert any(g["rule"] == "background-thread" for g in report["guards"])


def test_strict_policy_needs_a_custom_kernel_launch(problem_dir, tmp_path):
    report, _ = evaluate(
        problem_dir,
        "import torch\ndef run(x, weight):\n    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n",
        tmp_path,
        policy="strict",
    )
    assert workload_status(report) == "REWARD_HACK"
    assert report["workloads"][0]["rule"] == "no-custom-kernel"


def test_references_exist_before_the_action_is_imported(problem_dir, tmp_path):
    report, ctx = evaluate(problem_dir, TRITON_RMSNORM, tmp_path)
    assert ctx.stages.index("prepare") < ctx.stages.index("build") < ctx.stages.index("correctness")


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not installed")
def test_cuda_syntax_error_is_compile_error_with_the_compiler_line(problem_dir, tmp_path):
    source = CUDA_RMSNORM.replace("float acc = 0.f;", "float acc = 0.f")
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert report["status"] == "COMPILE_ERROR"
    assert "cuda_sources(6)" in report["message"]


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not installed")
def test_correct_cuda_action_is_compile_checked_only_on_a_cpu(problem_dir, tmp_path):
    report, _ = evaluate(problem_dir, CUDA_RMSNORM, tmp_path)
    assert workload_status(report) == "UNSUPPORTED"
    assert "compile-checked only" in report["workloads"][0]["message"]
    assert report["build"]["builds"][0]["variant"] == "light"  # the light headers sufficed


@pytest.mark.parametrize(
    ("name", "custom"),
    [
        ("rmsnorm_kernel(float const*, float const*, float*, int, float)", True),
        ("void rmsnorm_kernel<float>(float*, int)", True),
        ("_rmsnorm_kernel", True),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >(int)", False),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n", False),
        ("other_kernel(float*)", False),
    ],
)
def test_custom_kernels_are_the_candidates_own_by_exact_name(name, custom):
    names = {
        "rmsnorm_kernel",
        "_rmsnorm_kernel",
        "vectorized_elementwise_kernel",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n",
    }
    assert harness.is_custom_kernel(name, names) is custom


def test_launch_counter_records_the_triton_functions_launched(problem_dir, tmp_path):
    counter = harness.LaunchCounter()
    counter.install()
    evaluate(problem_dir, TRITON_RMSNORM, tmp_path)
    assert counter.count >= 2
    assert "_rmsnorm_kernel" in counter.names


def test_rewriting_the_reference_in_memory_is_a_reward_hack(problem_dir, tmp_path):
    # Finds the trusted reference tensors through the garbage collector and overwrites them with zeros,
    # then returns zeros itself (the all-zero rule is bypassed because the reference is zero too).
    source = (
        "import gc, torch\n"
        "def run(x, weight):\n"
        "    for obj in gc.get_objects():\n"
        "        if type(obj) is tuple and len(obj) == 1 and isinstance(obj[0], torch.Tensor) and obj[0].shape == x.shape:\n"
        "            obj[0].zero_()\n"
        "    return x.new_zeros(x.shape)\n"
    )
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert report["status"] == "REWARD_HACK"
    assert any(g["rule"] == "tampered-reference" for g in report["guards"])


class _Range:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end


class _Event:
    def __init__(self, name: str, device: str, start: float, end: float, annotation: bool = False) -> None:
        from torch.autograd import DeviceType

        self.name = name
        self.device_type = DeviceType.CUDA if device == "cuda" else DeviceType.CPU
        self.time_range = _Range(start, end)
        self.is_user_annotation = annotation


class _Profile:
    def __init__(self, events: list[_Event]) -> None:
        self._events = events

    def events(self) -> list[_Event]:
        return self._events


def test_call_time_counts_every_stream_inside_each_call():
    prof = _Profile(
        [
            _Event("solgym_t_0", "cpu", 0.0, 100.0),
            _Event("my_kernel(float*)", "cuda", 10.0, 20.0),
            _Event("side_kernel(float*)", "cuda", 15.0, 60.0),  # another stream, overlapping
            _Event("solgym_t_1", "cpu", 200.0, 300.0),
            _Event("my_kernel(float*)", "cuda", 210.0, 215.0),
            _Event("void at::native::vectorized_elementwise_kernel<4>(int)", "cuda", 216.0, 221.0),
            _Event("my_annotation", "cuda", 205.0, 290.0, annotation=True),  # not work
            _Event("flush_kernel", "cuda", 150.0, 180.0),  # between calls: not counted
        ]
    )
    timing = harness.Timing(method="test")
    harness._kernel_times(prof, ["solgym_t_0", "solgym_t_1"], timing, frozenset({"my_kernel", "side_kernel"}))
    assert timing.samples_ms == pytest.approx([0.050, 0.010])  # busy time: overlap counted once
    assert timing.extent_ms == pytest.approx([0.050, 0.011])
    assert timing.kernel_count == 4
    assert timing.custom_fraction == pytest.approx((10 + 45 + 5) / (10 + 45 + 5 + 5))


def test_call_time_leaves_out_the_idle_gaps_between_kernels():
    # Launch-bound calls: a few short kernels with host gaps between them. The extent counts the gaps
    # (how fast the host launched), the busy time (timing protocol 2) only the union of the kernels'
    # intervals.
    prof = _Profile(
        [
            _Event("solgym_t_0", "cpu", 0.0, 500.0),
            _Event("k1", "cuda", 10.0, 14.0),
            _Event("k2", "cuda", 100.0, 106.0),
            _Event("k3", "cuda", 104.0, 110.0),  # overlaps k2 on another stream: counted once
            _Event("k4", "cuda", 300.0, 302.0),
        ]
    )
    timing = harness.Timing(method="test")
    harness._kernel_times(prof, ["solgym_t_0"], timing, frozenset())
    assert timing.samples_ms == pytest.approx([0.016])
    assert timing.extent_ms == pytest.approx([0.292])


def test_the_flush_writes_its_whole_buffer():
    # Protocol 1: a written (dirty) cache makes every line a timed call brings in cost a DRAM write-back.
    clock = harness.Clock(torch.device("cpu"))
    clock.flush_buffer.fill_(7)
    clock.flush()
    assert clock.flush_buffer.numel() >= 8 << 20 and not clock.flush_buffer.any()


def test_a_call_without_device_activity_measures_zero():
    prof = _Profile([_Event("solgym_t_0", "cpu", 0.0, 100.0)])
    timing = harness.Timing(method="test")
    harness._kernel_times(prof, ["solgym_t_0"], timing, frozenset())
    assert timing.samples_ms == [0.0] and timing.extent_ms == [0.0]
    assert timing.kernel_count == 0


def test_autotuned_triton_kernel_runs_in_cpu_mode_with_its_first_config(problem_dir, tmp_path):
    source = TRITON_RMSNORM.replace(
        "@triton.jit",
        "@triton.autotune(configs=[triton.Config({}, num_warps=1), triton.Config({}, num_warps=2)], key=['n_cols'])\n@triton.jit",
    )
    report, _ = evaluate(problem_dir, source, tmp_path)
    assert workload_status(report) == "PASSED", report["workloads"][0]["message"]
    assert any("autotune" in note for note in report["environment"]["cpu_workarounds"])


def test_an_output_is_held_to_its_own_tolerance(problem_dir, tmp_path):
    off = "import torch\ndef run(x, weight):\n    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight + 0.5\n"
    lines = [json.loads(line) for line in (problem_dir / "workload.jsonl").read_text().splitlines()]
    lines[0]["tolerance"] = {"max_atol": 1e-3, "max_rtol": 1e-3}
    (problem_dir / "workload.jsonl").write_text(json.dumps(lines[0]) + "\n")
    report, _ = evaluate(problem_dir, off, tmp_path)
    assert workload_status(report) == "INCORRECT_NUMERICAL"
    lines[0]["tolerance"]["outputs"] = {"out": {"max_atol": 1.0}}
    (problem_dir / "workload.jsonl").write_text(json.dumps(lines[0]) + "\n")
    report, _ = evaluate(problem_dir, off, tmp_path)
    assert workload_status(report) == "PASSED", report


def test_rounds_that_do_not_fit_the_device_budget_are_dropped_down_to_two(problem_dir):
    problem = load_problem(problem_dir)
    workloads = list(problem.workloads)
    full = harness.prepare(problem, workloads, seed=1, rounds=5, device=torch.device("cpu"))
    assert [len(d.inputs) for d in full] == [5]
    one_round = harness._nbytes(full[0].inputs[0]) + harness._nbytes(full[0].references[0])
    tight = harness.prepare(
        problem, workloads, seed=1, rounds=5, device=torch.device("cpu"), device_budget_bytes=3 * one_round
    )
    assert len(tight[0].inputs) == len(tight[0].references) == 3
    tiny = harness.prepare(
        problem, workloads, seed=1, rounds=5, device=torch.device("cpu"), device_budget_bytes=1
    )
    assert len(tiny[0].inputs) == 2
    assert torch.equal(
        tiny[0].inputs[1]["x"], full[0].inputs[1]["x"]
    )  # the same seeded rounds, fewer of them


def test_a_workload_with_fewer_rounds_is_calibrated_checked_and_timed(problem_dir, tmp_path, monkeypatch):
    real = harness.prepare

    def two_rounds(*args, **kwargs):
        return real(*args, **{**kwargs, "device_budget_bytes": 1})

    monkeypatch.setattr(harness, "prepare", two_rounds)
    report, _ = evaluate(problem_dir, REFERENCE, tmp_path, time_it=True)
    assert report["status"] is None, report["message"]
    assert report["workloads"][0]["status"] == "PASSED"
    assert report["workloads"][0]["rounds"] == 2
    assert report["workloads"][0]["latency_ms"] > 0


def test_a_diagnosed_job_carries_a_profile_of_the_child(problem_dir, tmp_path):
    workdir = tmp_path / "diag"
    workdir.mkdir()
    payload = {
        "problem_dir": str(problem_dir),
        "action": {"source": REFERENCE},
        "mode": "cpu",
        "seed": 3,
        "rounds": 2,
        "policy": "permissive",
        "time": False,
        "diagnose": True,
    }
    report = harness.child_main(payload, FakeContext(workdir))
    assert report["workloads"][0]["status"] == "PASSED"
    assert "cumulative" in report["diagnostics"] and "_evaluate" in report["diagnostics"]
    payload["diagnose"] = False
    assert "diagnostics" not in harness.child_main(payload, FakeContext(tmp_path))


def test_the_trusted_material_is_summed_a_chunk_at_a_time_with_the_whole_tensors_sums(monkeypatch):
    # A float64 copy of a 400 M-element fp8 expert stack would take 3.2 GB; the sums are taken in chunks.
    from solgym import harness

    x = torch.randn(1000, dtype=torch.float32)
    x[3] = float("nan")
    whole = harness._sums(x)
    monkeypatch.setattr(harness, "_SUM_CHUNK", 64)
    chunked = harness._sums(x)
    assert all(abs(a - b) <= 1e-9 * max(1.0, abs(a)) for a, b in zip(whole, chunked, strict=True))
    fp8 = torch.randn(300).to(torch.float8_e4m3fn)
    before = harness._sums(fp8)
    fp8.view(torch.uint8)[7] ^= 1
    assert harness._sums(fp8) != before
