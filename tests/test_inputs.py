"""Trusted, seeded input generation and reference execution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import RMSNORM, add_definition, add_workload, write_problem

from solgym.bounds import derive
from solgym.hardware import get_profile
from solgym.inputs import footprint_bytes, make_inputs, random_tensor, run_reference, shrink
from solgym.problem import ProblemError, load_problem


def test_inputs_are_deterministic_per_seed_and_differ_across_seeds(tiny_add):
    problem = load_problem(tiny_add)
    w = problem.workloads[0]
    a, b, c = (make_inputs(problem, w, seed=s) for s in (1, 1, 2))
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    assert not torch.equal(a["x"], c["x"])
    assert not torch.equal(a["x"], a["y"]), "two inputs of one workload must not share a stream"


def test_scalar_inputs_are_python_values(tiny_add):
    problem = load_problem(tiny_add)
    inputs = make_inputs(problem, problem.workloads[0], seed=0)
    assert inputs["alpha"] == 0.5 and isinstance(inputs["alpha"], float)
    out = run_reference(problem, inputs)
    assert torch.allclose(out[0], inputs["x"] + 0.5 * inputs["y"])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_random_floats_exercise_every_element(dtype):
    t = random_tensor((64, 64), dtype, seed=7)
    values = t.float()
    assert t.dtype == getattr(torch, dtype)
    assert torch.isfinite(values).all()
    assert values.std() > 0.5 and (values != 0).float().mean() > 0.9 and (values < 0).any()


def test_packed_fp4_and_integer_and_bool_tensors():
    fp4 = random_tensor((16, 8), "float4_e2m1fn_x2", seed=1)
    assert fp4.dtype == torch.float4_e2m1fn_x2 and len(torch.unique(fp4.view(torch.uint8))) > 16
    ints = random_tensor((1000,), "int32", seed=1)
    assert ints.dtype == torch.int32 and ints.min() >= 0 and len(torch.unique(ints)) > 8
    flags = random_tensor((1000,), "bool", seed=1)
    assert 0.3 < flags.float().mean() < 0.7


def test_weights_are_not_chosen_by_name(tmp_path):
    # A kernel that skips the weight multiply must fail: weight and bias are random like any input.
    definition = add_definition(
        inputs={
            "x": {"shape": ["rows", "cols"], "dtype": "float32"},
            "weight": {"shape": ["cols"], "dtype": "float32"},
            "bias": {"shape": ["cols"], "dtype": "float32"},
        },
        reference="def run(x, weight, bias):\n    return x * weight + bias\n",
    )
    workload = add_workload(inputs={k: {"type": "random"} for k in ("x", "weight", "bias")})
    problem = load_problem(write_problem(tmp_path / "p", definition, [workload]))
    inputs = make_inputs(problem, problem.workloads[0], seed=0)
    assert not torch.allclose(inputs["weight"], torch.ones(8))
    assert not torch.allclose(inputs["bias"], torch.zeros(8))


def test_meta_inputs_have_shapes_without_data():
    problem = load_problem(RMSNORM)
    inputs = make_inputs(problem, problem.workloads[-1], device="meta")
    assert inputs["hidden_states"].device.type == "meta"
    assert tuple(inputs["hidden_states"].shape) == (16384, 4096)


CUSTOM_REFERENCE = """import torch

def make(axes, device):
    n = axes["rows"]
    idx = torch.randperm(n, device=device).to(torch.int64)
    return {"values": torch.randn(n, 8, device=device), "index": idx}

def run(values, index):
    return values[index]
"""


def _custom_problem(tmp_path, reference=CUSTOM_REFERENCE):
    definition = add_definition(
        inputs={
            "values": {"shape": ["rows", "cols"], "dtype": "float32"},
            "index": {"shape": ["rows"], "dtype": "int64"},
        },
        reference=reference,
        custom_inputs_entrypoint="make",
    )
    workload = add_workload(rows=16, inputs={"values": {"type": "custom"}, "index": {"type": "custom"}})
    return load_problem(write_problem(tmp_path / "p", definition, [workload]))


def test_custom_entrypoint_is_seeded_and_leaves_global_rng_alone(tmp_path):
    problem = _custom_problem(tmp_path)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = make_inputs(problem, problem.workloads[0], seed=5)
    after = torch.rand(1)
    b = make_inputs(problem, problem.workloads[0], seed=5)
    assert torch.equal(before, after)
    assert torch.equal(a["index"], b["index"]) and sorted(a["index"].tolist()) == list(range(16))


def test_custom_entrypoint_with_wrong_shape_is_an_error(tmp_path):
    bad = CUSTOM_REFERENCE.replace("torch.randn(n, 8", "torch.randn(n, 9")
    problem = _custom_problem(tmp_path, bad)
    with pytest.raises(
        ProblemError, match=r"produced \(16, 9\) torch.float32, the definition says \(16, 8\) float32"
    ):
        make_inputs(problem, problem.workloads[0], seed=0)


def _safetensors_problem(tmp_path):
    definition = add_definition(
        inputs={"x": {"shape": ["rows", "cols"], "dtype": "float32"}},
        reference="def run(x):\n    return x * 2\n",
    )
    workload = add_workload(
        inputs={"x": {"type": "safetensors", "path": "blobs/x.safetensors", "tensor_key": "x"}}
    )
    return load_problem(write_problem(tmp_path / "p", definition, [workload]))


def test_safetensors_input_is_read_from_data_root(tmp_path):
    from safetensors.torch import save_file

    problem = _safetensors_problem(tmp_path)
    (tmp_path / "data" / "blobs").mkdir(parents=True)
    x = torch.arange(32, dtype=torch.float32).reshape(4, 8)
    save_file({"x": x}, str(tmp_path / "data" / "blobs" / "x.safetensors"))
    inputs = make_inputs(problem, problem.workloads[0], data_root=tmp_path / "data")
    assert torch.equal(inputs["x"], x)


def test_missing_safetensors_blob_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SOLGYM_TRACE_DATA", raising=False)
    problem = _safetensors_problem(tmp_path)
    with pytest.raises(ProblemError, match=r"safetensors blob blobs/x.safetensors not found"):
        make_inputs(problem, problem.workloads[0])


def test_reference_output_count_is_checked(tmp_path):
    definition = add_definition(
        outputs={
            "a": {"shape": ["rows", "cols"], "dtype": "float32"},
            "b": {"shape": ["rows", "cols"], "dtype": "float32"},
        }
    )
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload()]))
    with pytest.raises(ValueError, match="run returned 1 outputs, the definition has 2"):
        run_reference(problem, make_inputs(problem, problem.workloads[0]))


def test_shrink_halves_var_axes_until_the_footprint_fits():
    problem = load_problem(RMSNORM)
    big = problem.workloads[-1]
    small = shrink(problem, big, 1 << 20)
    assert footprint_bytes(problem, small) <= 1 << 20
    # 64 rows in and out plus the weight is 1,056,768 bytes: one halving more is needed.
    assert small.axes["num_tokens"] == 32 and big.axes["num_tokens"] == 16384


def test_rmsnorm_reference_matches_formula():
    problem = load_problem(RMSNORM)
    inputs = make_inputs(problem, problem.workloads[1], seed=0)
    (out,) = run_reference(problem, inputs)
    x = inputs["hidden_states"].float()
    expected = inputs["weight"] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16()
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected)


CUDA_REFERENCE = """import torch

def get_inputs(axes, device):
    x = torch.randn(axes["rows"], 8, device="cuda:0")
    return {"x": x.cuda(), "y": torch.ones(axes["rows"], 8).to("cuda"), "alpha": 0.5}

def run(x, y, alpha):
    bias = torch.full((8,), 2.0, device=torch.device("cuda"))
    return (x + alpha * y).to("cuda", torch.float32) + bias.cuda()
"""


def test_a_reference_that_names_cuda_runs_where_its_inputs_are(tmp_path):
    # References written for a GPU ask for "cuda" by name; without one, and in a trace on meta tensors,
    # those tensors are made where the inputs are (before, "Torch not compiled with CUDA enabled").
    definition = add_definition(reference=CUDA_REFERENCE, custom_inputs_entrypoint="get_inputs")
    sources = {"x": {"type": "custom"}, "y": {"type": "custom"}, "alpha": {"type": "custom"}}
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload(rows=4, inputs=sources)]))
    inputs = make_inputs(problem, problem.workloads[0])
    assert inputs["x"].device.type == "cpu" and torch.equal(inputs["y"], torch.ones(4, 8))
    (out,) = run_reference(problem, inputs)
    assert out.device.type == "cpu"
    assert torch.allclose(out, inputs["x"] + 0.5 + 2.0)

    from solgym.opcount import count

    counted = count(problem, problem.workloads[0])
    assert counted.traced_on == "meta"
    assert counted.write_elements == {"out": 32.0}


GPU_RUNTIME_REFERENCE = """import torch

def run(x, y, alpha):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    torch.cuda.nvtx.range_push("add")
    with torch.cuda.stream(s):
        out = x + alpha * y
    torch.cuda.nvtx.range_pop()
    torch.cuda.synchronize()
    torch.set_default_device("cuda")
    return out + torch.ones(8)
"""


def test_a_reference_that_orders_its_work_on_cuda_streams_runs_where_there_is_no_gpu(tmp_path):
    # Streams, synchronization and profiling ranges change no value: without a GPU they do nothing, and a
    # default device of "cuda" is the inputs' device for the run and is restored after it.
    definition = add_definition(reference=GPU_RUNTIME_REFERENCE)
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload(rows=4)]))
    inputs = make_inputs(problem, problem.workloads[0])
    (out,) = run_reference(problem, inputs)
    assert torch.allclose(out, inputs["x"] + inputs["alpha"] * inputs["y"] + 1)
    assert torch.get_default_device().type == "cpu"

    from solgym.opcount import count

    assert count(problem, problem.workloads[0]).write_elements == {"out": 32.0}


def test_a_reference_that_asks_which_gpu_it_runs_on_is_refused_in_its_terms(tmp_path):
    reference = "import torch\n\ndef run(x, y, alpha):\n    assert torch.cuda.get_device_capability()[0] >= 8\n    return x + y\n"
    problem = load_problem(
        write_problem(tmp_path / "p", add_definition(reference=reference), [add_workload(rows=4)])
    )
    with pytest.raises(RuntimeError, match=r"torch\.cuda\.get_device_capability\(\), which asks which GPU"):
        run_reference(problem, make_inputs(problem, problem.workloads[0]))


def test_a_compiled_run_finds_its_module(tmp_path):
    # torch.compile looks the function's module up by name: the reference's module is registered.
    reference = (
        "import torch\nimport torch.nn.functional as F\n\n@torch.compile(backend='eager')\n@torch.no_grad()\n"
        "def run(x, y, alpha):\n    return F.relu(x + alpha * y)\n"
    )
    problem = load_problem(
        write_problem(tmp_path / "p", add_definition(reference=reference), [add_workload(rows=4)])
    )
    inputs = make_inputs(problem, problem.workloads[0])
    (out,) = run_reference(problem, inputs)
    assert torch.allclose(out, F.relu(inputs["x"] + inputs["alpha"] * inputs["y"]))


SAMPLING = """import torch

def run(probs, top_p):
    if not bool((probs >= 0).all()):
        raise RuntimeError("probability tensor contains either inf, nan or element < 0")
    keep = probs.sort(-1, descending=True).values.cumsum(-1) <= top_p
    return torch.multinomial(probs * keep.any(-1, keepdim=True), 1).squeeze(-1)
"""


@pytest.mark.parametrize("op_type", ["sampling", "elementwise"])
def test_the_probs_of_a_sampling_definition_are_drawn_as_probabilities(tmp_path, op_type):
    # As the FlashInfer-Trace schema draws them: softmax over the vocabulary of the normal draws, so that
    # the reference's `torch.multinomial` accepts them; any other definition's inputs as drawn.
    definition = {
        "name": "sampler",
        "op_type": op_type,
        "axes": {"batch": {"type": "var"}, "vocab": {"type": "const", "value": 1000}},
        "inputs": {
            "probs": {"shape": ["batch", "vocab"], "dtype": "float32"},
            "top_p": {"shape": None, "dtype": "float32"},
        },
        "outputs": {"samples": {"shape": ["batch"], "dtype": "int64"}},
        "reference": SAMPLING,
    }
    workload = {
        "uuid": "w",
        "axes": {"batch": 4},
        "inputs": {"probs": {"type": "random"}, "top_p": {"type": "scalar", "value": 0.9}},
    }
    problem = load_problem(write_problem(tmp_path / "p", definition, [workload]))
    probs = make_inputs(problem, problem.workloads[0], seed=3)["probs"]
    if op_type == "sampling":
        assert (probs >= 0).all() and torch.allclose(probs.sum(-1), torch.ones(4))
        assert run_reference(problem, make_inputs(problem, problem.workloads[0], seed=3))[0].shape == (4,)
        # The bound's trace on data draws them the same way (multinomial refused the normal draws).
        bound = derive(problem, problem.workloads[0], get_profile("B200"))
        assert bound.traced_on.startswith("cpu data") and bound.bytes_read == 4 * 1000 * 4
    else:
        assert (probs < 0).any()


def test_a_workload_with_random_ids_is_not_shrunk_below_the_range_they_are_drawn_from(tmp_path):
    # Slot ids drawn in [0, 64) index a pool of states: a pool halved below 64 would put ids past its end.
    definition = {
        "name": "pooled",
        "axes": {"pool": {"type": "var"}, "batch": {"type": "var"}, "d": {"type": "const", "value": 4096}},
        "inputs": {
            "state": {"shape": ["pool", "d"], "dtype": "float32"},
            "slot": {"shape": ["batch"], "dtype": "int32"},
        },
        "outputs": {"out": {"shape": ["batch", "d"], "dtype": "float32"}},
        "reference": "def run(state, slot):\n    return state[slot.long()]\n",
    }
    workload = {
        "uuid": "w",
        "axes": {"pool": 512, "batch": 256},
        "inputs": {"state": {"type": "random"}, "slot": {"type": "random"}},
    }
    problem = load_problem(write_problem(tmp_path / "p", definition, [workload]))
    small = shrink(problem, problem.workloads[0], 1 << 16)
    assert small.axes == {"pool": 64, "batch": 64}
    run_reference(problem, make_inputs(problem, small, seed=1))  # every id names a row
