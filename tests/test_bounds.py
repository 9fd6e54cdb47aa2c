"""Speed-of-light bounds derived from references: counts checked against hand derivations."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from solgym import bounds
from solgym.bounds import derive, derive_all
from solgym.cli import main
from solgym.hardware import get_profile
from solgym.inputs import INT_HIGH, make_inputs, run_reference
from solgym.opcount import count, count_on_data, count_on_meta
from solgym.problem import Problem, ProblemError, load_problem
from solgym.value_range import distinct_drawn

DEV = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"
B200 = get_profile("B200").at_clock(1500)
BF16_RATE = 1.811e15
DRAM = 7.667e12


def make_problem(
    tmp_path: Path, reference: str, inputs: dict, outputs: dict, axes: dict, workloads: list[dict], **extra
) -> object:
    """Write a problem directory and load it. `inputs`/`outputs` map names to (shape, dtype)."""
    folder = tmp_path / extra.pop("folder", "problem")
    folder.mkdir()
    definition = {
        "name": folder.name,
        "axes": {k: _axis(v) for k, v in axes.items()},
        "inputs": {k: {"shape": s, "dtype": d} for k, (s, d) in inputs.items()},
        "outputs": {k: {"shape": s, "dtype": d} for k, (s, d) in outputs.items()},
        "reference": reference,
        **extra,
    }
    (folder / "definition.json").write_text(json.dumps(definition))
    lines = []
    for i, w in enumerate(workloads):
        sources = {
            name: {"type": "scalar", "value": w["scalars"][name]}
            if name in w.get("scalars", {})
            else {"type": w.get("kind", "random")}
            for name in inputs
        }
        lines.append(json.dumps({"uuid": f"w{i}", "axes": w["axes"], "inputs": sources}))
    (folder / "workload.jsonl").write_text("\n".join(lines))
    return load_problem(folder)


def _axis(value: int | str | None) -> dict:
    if isinstance(value, int):
        return {"type": "const", "value": value}
    return {"type": "expr", "expression": value} if isinstance(value, str) else {"type": "var"}


def one(problem, **kw) -> bounds.Bound:
    return derive(problem, problem.workloads[0], B200, **kw)


GEMM = "import torch\ndef run(A, B):\n    return A @ B.T\n"


def gemm(tmp_path: Path, dtype: str = "bfloat16", m: int = 256, **extra) -> object:
    return make_problem(
        tmp_path,
        GEMM,
        {"A": (["M", "K"], dtype), "B": (["N", "K"], dtype)},
        {"C": (["M", "N"], dtype)},
        {"M": None, "N": 4096, "K": 4096},
        [{"axes": {"M": m}}],
        **extra,
    )


def small_gemm(tmp_path: Path, ms: tuple[int, ...]) -> object:
    """A bf16 GEMM of N = K = 64, one workload per M in `ms`."""
    return make_problem(
        tmp_path,
        GEMM,
        {"A": (["M", "K"], "bfloat16"), "B": (["N", "K"], "bfloat16")},
        {"C": (["M", "N"], "bfloat16")},
        {"M": None, "N": 64, "K": 64},
        [{"axes": {"M": m}} for m in ms],
    )


def test_gemm_counts_mnk_macs_and_each_tensor_once(tmp_path):
    b = one(gemm(tmp_path), floor=False)
    assert b.macs_by_precision == {"bf16": 256 * 4096 * 4096}
    assert b.bytes_read == (256 * 4096 + 4096 * 4096) * 2
    assert b.bytes_written == 256 * 4096 * 2
    assert b.compute_ms == pytest.approx(2 * 256 * 4096 * 4096 / BF16_RATE * 1e3)
    assert b.memory_ms == pytest.approx((256 * 4096 * 2 + 4096 * 4096 * 2 + 256 * 4096 * 2) / DRAM * 1e3)
    assert b.t_sol_ms == b.roofline_ms == max(b.compute_ms, b.memory_ms)
    assert b.traced_on == "meta" and b.convention == "physical" and b.profile == B200.name


def test_fp32_contraction_is_priced_at_bf16_rate_with_bytes_at_4(tmp_path):
    b = one(gemm(tmp_path, "float32"), floor=False)
    assert b.priced_as == {"fp32": "bf16"}
    assert b.compute_ms == pytest.approx(2 * 256 * 4096 * 4096 / BF16_RATE * 1e3)
    assert b.bytes_read == (256 * 4096 + 4096 * 4096) * 4


@pytest.mark.parametrize(("minimum", "cls"), [("tf32", "tf32"), ("fp32", "fp32")])
def test_min_precision_forbids_bf16_math(tmp_path, minimum, cls):
    b = one(gemm(tmp_path, "float32", min_precision=minimum), floor=False)
    assert b.priced_as == {"fp32": cls}
    assert b.compute_ms == pytest.approx(2 * 256 * 4096 * 4096 / B200.peak(cls) * 1e3)


def test_linear_with_bias_reads_the_bias(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, w, b):\n    return torch.nn.functional.linear(x, w, b)\n",
        {"x": (["M", "K"], "float16"), "w": (["N", "K"], "float16"), "b": (["N"], "float16")},
        {"y": (["M", "N"], "float16")},
        {"M": None, "N": 512, "K": 1024},
        [{"axes": {"M": 64}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"fp16": 64 * 512 * 1024}
    assert b.bytes_read == (64 * 1024 + 512 * 1024 + 512) * 2


@pytest.mark.parametrize("body", ["torch.bmm(a, b)", "torch.einsum('bik,bkj->bij', a, b)", "a @ b"])
def test_batched_contractions_count_b_m_n_k(tmp_path, body):
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(a, b):\n    return {body}\n",
        {"a": (["B", "M", "K"], "bfloat16"), "b": (["B", "K", "N"], "bfloat16")},
        {"c": (["B", "M", "N"], "bfloat16")},
        {"B": None, "M": 128, "K": 64, "N": 96},
        [{"axes": {"B": 3}}],
    )
    assert one(p).macs_by_precision == {"bf16": 3 * 128 * 96 * 64}


def test_int8_products_and_pairwise_distances_count_their_macs(tmp_path):
    int8 = make_problem(
        tmp_path,
        "import torch\ndef run(a, b):\n    return torch._int_mm(a, b)\n",
        {"a": (["M", 256], "int8"), "b": ([256, 128], "int8")},
        {"c": (["M", 128], "int32")},
        {"M": None},
        [{"axes": {"M": 64}}],
        folder="int8",
    )
    assert one(int8).macs_by_precision == {"int8": 64 * 128 * 256}
    for rows in (8, 2048):  # cdist is `_cdist_forward` for few rows, `_euclidean_dist` for many
        dist = make_problem(
            tmp_path,
            "import torch\ndef run(a, b):\n    return torch.cdist(a, b)\n",
            {"a": (["P", 128], "float32"), "b": ([64, 128], "float32")},
            {"d": (["P", 64], "float32")},
            {"P": None},
            [{"axes": {"P": rows}}],
            folder=f"cdist{rows}",
        )
        assert one(dist).macs_by_precision == {"fp32": rows * 64 * 128}


@pytest.mark.parametrize("groups", [1, 4, 64])
def test_convolution_macs_are_divided_by_groups(tmp_path, groups):
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x, w):\n    return torch.nn.functional.conv2d(x, w, padding=1, groups={groups})\n",
        {"x": (["N", 64, 32, 32], "bfloat16"), "w": ([64, 64 // groups, 3, 3], "bfloat16")},
        {"y": (["N", 64, 32, 32], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 2}}],
    )
    assert one(p).macs_by_precision == {"bf16": 2 * 64 * 32 * 32 * (64 // groups) * 9}


def test_transposed_convolution_counts_input_positions(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, w):\n    return torch.nn.functional.conv_transpose2d(x, w, stride=2)\n",
        {"x": (["N", 16, 8, 8], "float16"), "w": ([16, 8, 2, 2], "float16")},
        {"y": (["N", 8, 16, 16], "float16")},
        {"N": None},
        [{"axes": {"N": 1}}],
    )
    assert one(p).macs_by_precision == {"fp16": 16 * 8 * 8 * 8 * 4}


@pytest.mark.parametrize("asked", ["weight", "input"])
def test_a_convolution_gradient_reads_what_it_is_asked_for(tmp_path, asked):
    # A ResNet shortcut's 1x1 stride-2 convolution: its weight gradient reads the quarter of x the
    # windows touch, its input gradient reads no x at all (before 2026-11-28, x whole either way).
    body = {
        "weight": "torch.nn.grad.conv2d_weight(x, w.shape, g, stride=2)",
        "input": "torch.nn.grad.conv2d_input(x.shape, w, g, stride=2)",
    }[asked]
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x, w, g):\n    return {body}\n",
        {
            "x": (["N", 64, 16, 16], "bfloat16"),
            "w": ([128, 64, 1, 1], "bfloat16"),
            "g": (["N", 128, 8, 8], "bfloat16"),
        },
        {"d": ([128, 64, 1, 1] if asked == "weight" else ["N", 64, 16, 16], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 2}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"bf16": 2 * 128 * 64 * 64}
    grad = 2 * 128 * 64 * 2
    assert b.bytes_read == grad + (2 * 64 * 64 * 2 if asked == "weight" else 128 * 64 * 2)


@pytest.mark.parametrize(
    "body, read",
    [
        # The pooling's input is taken for its shape: only the output gradient is read.
        (
            "with torch.enable_grad():\n        x = x.detach().requires_grad_()\n"
            "        return torch.autograd.grad(F.avg_pool2d(x, 2), x, g)[0]",
            2 * 32 * 8 * 8 * 2,
        ),
        (
            "one = torch.ones((), device=x.device)\n"
            "    t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)\n"
            "    return torch.ops.aten.nll_loss_backward(one, x.flatten(1), t, None, 1, -100, one).view_as(x)",
            0,
        ),
    ],
)
def test_a_backward_op_does_not_read_what_it_takes_for_its_shape(tmp_path, body, read):
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\ndef run(x, g):\n    {body}\n",
        {"x": (["N", 32, 16, 16], "bfloat16"), "g": (["N", 32, 8, 8], "bfloat16")},
        {"d": (["N", 32, 16, 16], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 2}}],
    )
    assert one(p).bytes_read == read


CONV_GRADS = {
    "torch.nn.grad.conv2d_weight(x, w.shape, g, padding=1, groups=2)": {"dw": ([32, 8, 3, 3], "bfloat16")},
    "torch.nn.grad.conv2d_input(x.shape, w, g, padding=1, groups=2)": {"dx": ([2, 16, 8, 8], "bfloat16")},
    "torch.autograd.grad(F.conv2d(x, w, padding=1, groups=2), (x, w), g)": {
        "dx": ([2, 16, 8, 8], "bfloat16"),
        "dw": ([32, 8, 3, 3], "bfloat16"),
    },
}


@pytest.mark.parametrize("body", CONV_GRADS)
def test_each_convolution_gradient_takes_the_forward_products(tmp_path, body):
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(x, w, g):\n    with torch.enable_grad():\n"
        "        x, w = x.detach().requires_grad_(), w.detach().requires_grad_()\n"
        f"        return {body}\n",
        {
            "x": ([2, 16, 8, 8], "bfloat16"),
            "w": ([32, 8, 3, 3], "bfloat16"),
            "g": ([2, 32, 8, 8], "bfloat16"),
        },
        CONV_GRADS[body],
        {"O": None},
        [{"axes": {"O": 1}}],
    )
    forward = 2 * 32 * 8 * 8 * (16 // 2) * 9  # output positions x C_in / groups x taps
    assert one(p).macs_by_precision == {"bf16": len(CONV_GRADS[body]) * forward}


ATTN_IO = (
    {
        "q": ([2, 4, 128, 64], "bfloat16"),
        "k": ([2, 4, 256, 64], "bfloat16"),
        "v": ([2, 4, 256, 64], "bfloat16"),
    },
    {"o": ([2, 4, 128, 64], "bfloat16")},
)


def test_sdpa_and_spelled_out_attention_count_the_same_macs(tmp_path):
    sdpa = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n    return torch.nn.functional.scaled_dot_product_attention(q, k, v)\n",
        *ATTN_IO,
        {"L": None},
        [{"axes": {"L": 1}}],
        folder="sdpa",
    )
    spelled = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n    s = (q @ k.transpose(-1, -2)) * 0.125\n    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        *ATTN_IO,
        {"L": None},
        [{"axes": {"L": 1}}],
        folder="spelled",
    )
    expected = 2 * 4 * 128 * 256 * (64 + 64)
    assert one(sdpa).macs_by_precision == {"bf16": expected}
    assert one(spelled).macs_by_precision == {"bf16": expected}
    assert one(sdpa).bytes_read == one(spelled).bytes_read


SDPA_CAUSAL = [
    "is_causal=True",
    "attn_mask=torch.ones(64, 64, dtype=torch.bool).tril()",
    "attn_mask=torch.full((64, 64), float('-inf')).triu(1)",
]


@pytest.mark.parametrize("causal", SDPA_CAUSAL)
def test_causal_sdpa_counts_only_the_unmasked_triangle(tmp_path, causal):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n"
        f"    return torch.nn.functional.scaled_dot_product_attention(q, k, v, {causal})\n",
        {
            "q": ([1, 2, 64, 32], "float16"),
            "k": ([1, 2, 64, 32], "float16"),
            "v": ([1, 2, 64, 32], "float16"),
        },
        {"o": ([1, 2, 64, 32], "float16")},
        {"L": None},
        [{"axes": {"L": 1}}],
    )
    assert one(p).macs_by_precision == {"fp16": 2 * (64 * 65 // 2) * (32 + 32)}


RMSNORM = """import torch
def run(x, w):
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)
    return (y * w.float()).to(x.dtype)
"""


def test_softmax_and_rmsnorm_are_memory_bound_with_other_flops_reported(tmp_path):
    norm = make_problem(
        tmp_path,
        RMSNORM,
        {"x": (["T", 4096], "bfloat16"), "w": ([4096], "bfloat16")},
        {"y": (["T", 4096], "bfloat16")},
        {"T": None},
        [{"axes": {"T": 1024}}],
        folder="norm",
    )
    soft = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    return torch.softmax(x, dim=-1)\n",
        {"x": (["T", 4096], "float32")},
        {"y": (["T", 4096], "float32")},
        {"T": None},
        [{"axes": {"T": 1024}}],
        folder="soft",
    )
    for p, nbytes in ((norm, (2 * 1024 * 4096 + 4096) * 2), (soft, 2 * 1024 * 4096 * 4)):
        b = one(p, floor=False)
        assert (b.bound_by, b.macs_by_precision, b.compute_ms) == ("memory", {}, 0.0)
        assert b.bytes_read + b.bytes_written == nbytes
        assert b.flops_other >= 1024 * 4096


def test_views_and_casts_move_no_bytes_of_their_own(tmp_path):
    plain = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    return x * 2\n",
        {"x": (["T", 64], "bfloat16")},
        {"y": (["T", 64], "bfloat16")},
        {"T": None},
        [{"axes": {"T": 32}}],
        folder="plain",
    )
    shuffled = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    y = x.float().t().contiguous().view(64, -1).t() * 2\n    return y.to(torch.bfloat16).reshape(-1, 64)\n",
        {"x": (["T", 64], "bfloat16")},
        {"y": (["T", 64], "bfloat16")},
        {"T": None},
        [{"axes": {"T": 32}}],
        folder="shuffled",
    )
    a, b = one(plain), one(shuffled)
    assert (a.bytes_read, a.bytes_written) == (b.bytes_read, b.bytes_written) == (32 * 64 * 2, 32 * 64 * 2)


GATHER_IO = ({"table": (["V", 64], "bfloat16"), "idx": (["n"], "int64")}, {"rows": (["n", 64], "bfloat16")})


@pytest.mark.parametrize(
    "body", ["table[idx]", "torch.index_select(table, 0, idx)", "torch.nn.functional.embedding(idx, table)"]
)
def test_gathers_read_only_the_addressed_rows(tmp_path, body):
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(table, idx):\n    return {body}\n",
        *GATHER_IO,
        {"V": 100000, "n": None},
        [{"axes": {"n": 16}}],
    )
    b = one(p)
    # 16 lookups of random ids drawn from [0, 64): the distinct rows they name (`distinct_drawn`).
    assert b.bytes_read == pytest.approx(distinct_drawn(16, 1, INT_HIGH) * 64 * 2 + 16 * 8)
    assert b.bytes_written == 16 * 64 * 2


@pytest.mark.parametrize(
    "body", ["table[idx]", "table[idx.view(-1, 8) + 7]", "F.embedding(idx.int(), table)"]
)
def test_random_indices_address_at_most_the_rows_their_range_holds(tmp_path, body):
    # Random integer inputs are drawn from [0, INT_HIGH): 1024 lookups name at most 64 distinct rows, which a
    # kernel reads once each. Counted on meta from the range; on data, the distinct rows drawn.
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\ndef run(table, idx):\n    return {body}.reshape(-1, 64)\n",
        *GATHER_IO,
        {"V": 100000, "n": None},
        [{"axes": {"n": 1024}}],
    )
    b = one(p)
    assert b.traced_on == "meta"
    assert b.bytes_read == pytest.approx(distinct_drawn(1024, 1, INT_HIGH) * 64 * 2 + 1024 * 8)
    assert distinct_drawn(1024, 1, INT_HIGH) > INT_HIGH - 0.5  # 1024 draws name all 64 values
    on_data = count_on_data(p, p.workloads[0])
    assert 0 < on_data.read_bytes["table"] <= INT_HIGH * 64 * 2


@pytest.mark.parametrize(
    "prefixed",
    [
        "F.pad(ids, (3, 0), value=2048)",
        "torch.cat([torch.full((ids.shape[0], 3), 2048, dtype=ids.dtype, device=ids.device), ids], 1)",
        "torch.full((ids.shape[0], ids.shape[1] + 3), 2048, dtype=ids.dtype, device=ids.device)",
    ],
)
def test_random_ids_behind_a_pad_id_name_the_rows_drawn_and_the_pad_row(tmp_path, prefixed):
    # MusicGen's delay pattern, an ASR blank before the labels: 2 x 500 ids drawn from [0, 64) and a pad id
    # name 65 rows of the table (before 2026-11-28, one row per lookup: 1006).
    fill = "    s[:, 3:] = ids\n" if prefixed.startswith("torch.full") else ""
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\ndef run(ids, emb):\n    s = {prefixed}\n{fill}"
        "    return F.embedding(s, emb)\n",
        {"ids": (["B", 500], "int64"), "emb": ([2049, 64], "bfloat16")},
        {"o": (["B", 503, 64], "bfloat16")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    rows = distinct_drawn(2 * 503, 1, INT_HIGH) + 1
    assert one(p).bytes_read == pytest.approx(rows * 64 * 2 + 2 * 500 * 8)


@pytest.mark.parametrize(
    "made",
    [
        "torch.arange(1024, device=device).repeat(T // 1024)",
        "torch.arange(T, device=device) % 1024",
        "torch.randint(0, 1024, (T,), device=device)",
        "torch.randint(0, 4096, (T,), device=device).clamp(0, 1023)",
        "torch.randperm(1024, device=device).repeat_interleave(T // 1024)",
        "torch.cat([torch.arange(512, device=device), torch.arange(512, 1024, device=device)]).repeat(T // 1024)",
    ],
)
def test_indices_an_entry_point_makes_address_at_most_the_rows_their_range_holds(tmp_path, made):
    # A position table read at 8192 positions that take 1024 values: 1024 rows read, as a kernel does.
    p = make_problem(
        tmp_path,
        "import torch\ndef get_inputs(axes, device):\n    T = axes['T']\n"
        f"    return {{'positions': {made}, 'cache': torch.randn(32768, 128, device=device)}}\n"
        "def run(positions, cache):\n    return cache[positions] * 2.0\n",
        {"positions": (["T"], "int64"), "cache": ([32768, 128], "float32")},
        {"y": (["T", 128], "float32")},
        {"T": None},
        [{"axes": {"T": 8192}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    b = one(p)
    if made.startswith("torch.randint(0, 1024"):
        # Random draws repeat: 8192 of them from 1024 values name all but a few (e^-8 of them, and less
        # three standard deviations), counted on meta.
        assert b.traced_on == "meta"
        rows = distinct_drawn(8192, 1, 1024)
    else:
        # Positions no draws describe are read on data: the rows they name. Clamped draws from 4096
        # values leave about e^-2 of the 1023 values below the bound unnamed.
        assert b.traced_on.startswith("cpu data")
        rows = torch.unique(make_inputs(p, p.workloads[0], device="cpu")["positions"]).numel()
        assert (rows == 1024) != made.startswith("torch.randint(0, 4096")
    assert b.bytes_read == pytest.approx(8192 * 8 + rows * 128 * 4)


@pytest.mark.parametrize("index", ["ids", "ids.clamp(min=0)", "ids.clamp(0, INT_HIGH - 1)"])
def test_a_clamp_that_holds_every_draw_keeps_the_ids_drawn(tmp_path, index):
    # Bounds that change no id (`ids.clamp(min=0)` before a lookup, in case of a -1) leave them uniform draws
    # that repeat: 64 lookups into 64 rows name about 33 of them, not 64.
    p = make_problem(
        tmp_path,
        f"import torch\nINT_HIGH = {INT_HIGH}\ndef run(w, ids):\n    return w[{index}]\n",
        {"w": ([INT_HIGH, 256], "float32"), "ids": (["n"], "int64")},
        {"y": (["n", 256], "float32")},
        {"n": None},
        [{"axes": {"n": 64}}],
    )
    rows = distinct_drawn(64, 1, INT_HIGH)
    assert rows < 40
    assert count(p, p.workloads[0]).read_bytes["w"] == pytest.approx(rows * 256 * 4)


def test_ids_outside_a_vocabulary_shard_name_only_the_rows_that_land_in_it(tmp_path):
    # A vocabulary-parallel embedding: ids outside this shard's quarter are set to row 0 and their results
    # zeroed. Of 4096 ids drawn from 32768 values, about a quarter land in the shard's 8192 rows: the rows
    # they name (less three standard deviations, twice), not 4096 lookups' worth of distinct rows.
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\n"
        "def get_inputs(axes, device):\n"
        "    return {'ids': torch.randint(0, 4 * 8192, (axes['n'],), device=device),\n"
        "            'weight': torch.randn(8192, 256, device=device)}\n"
        "def run(ids, weight):\n"
        "    mask = (ids < 8192) | (ids >= 16384)\n"
        "    local = (ids - 8192).masked_fill(mask, 0)\n"
        "    return F.embedding(local, weight).masked_fill(mask.unsqueeze(-1), 0.0)\n",
        {"ids": (["n"], "int64"), "weight": ([8192, 256], "float32")},
        {"y": (["n", 256], "float32")},
        {"n": None},
        [{"axes": {"n": 4096}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    counted = count(p, p.workloads[0])
    assert counted.traced_on == "meta"
    landing = 4096 / 4 - 3 * math.sqrt(4096 * 0.25 * 0.75)
    rows = distinct_drawn(landing, 1, 8192)
    assert counted.read_bytes["weight"] == pytest.approx(rows * 256 * 4)
    ids = make_inputs(p, p.workloads[0], device="cpu")["ids"]
    in_shard = torch.unique(ids[(ids >= 8192) & (ids < 16384)]).numel()
    assert rows <= in_shard < 1.2 * rows  # a kernel reads the rows of the ids in the shard (and row 0)


@pytest.mark.parametrize(
    "op", ["cache.index_select(0, beam_idx)", "cache[beam_idx]", "cache[beam_idx.clamp(min=0)]"]
)
def test_positions_an_entry_point_makes_are_read_on_data_for_the_rows_they_name(tmp_path, op):
    # A KV cache reordered by beam origins (each row's origin an even row): half of its rows are read. On
    # meta, with no draws to describe them, every lookup would count a row of its own. Integers computed
    # from them element by element (a clamp in case of a -1) are theirs too.
    p = make_problem(
        tmp_path,
        "import torch\ndef get_inputs(axes, device):\n    r = axes['rows']\n"
        "    return {'cache': torch.randn(r, 256, device=device),\n"
        "            'beam_idx': torch.arange(r, device=device) // 2 * 2}\n"
        f"def run(cache, beam_idx):\n    return {op}\n",
        {"cache": (["rows", 256], "float32"), "beam_idx": (["rows"], "int64")},
        {"y": (["rows", 256], "float32")},
        {"rows": None},
        [{"axes": {"rows": 64}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    counted = count(p, p.workloads[0])
    assert counted.traced_on.startswith("cpu data")
    assert counted.read_bytes == {"cache": 32 * 256 * 4, "beam_idx": 64 * 8}


def test_an_input_on_a_larger_storage_is_read_at_most_whole(tmp_path):
    # The entry point returns slots cut from a larger permutation (`randperm(4 n)[:n]`): read once for the
    # mask and again where it keeps them, they still count at most their own n elements.
    p = make_problem(
        tmp_path,
        "import torch\ndef get_inputs(axes, device):\n    n = axes['n']\n"
        "    s = torch.randperm(4 * n, device=device)[:n]\n    s[::4] = -1\n"
        "    return {'slots': s, 'k': torch.randn(n, device=device), 'cache': torch.randn(4 * n, device=device)}\n"
        "def run(slots, k, cache):\n    cache = cache.clone()\n    valid = slots >= 0\n"
        "    cache[slots[valid]] = k[valid]\n    return cache\n",
        {"slots": (["n"], "int64"), "k": (["n"], "float32"), "cache": (["m"], "float32")},
        {"y": (["m"], "float32")},
        {"n": None, "m": "4 * n"},
        [{"axes": {"n": 1024}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    assert count(p, p.workloads[0]).read_bytes["slots"] == 1024 * 8


def test_a_key_padding_mask_of_lengths_through_sdpa_counts_the_keys_each_request_keeps(tmp_path):
    # `arange(T) < lengths[:, None]` passed to SDPA as `mask[:, None, None, :]`: each request attends to
    # its own keys, as the same attention spelled out is counted.
    entry = (
        "import torch\nimport torch.nn.functional as F\ndef get_inputs(axes, device):\n"
        "    q, k, v = (torch.randn(4, 2, 128, 64, device=device, dtype=torch.bfloat16) for _ in range(3))\n"
        "    return {'q': q, 'k': k, 'v': v, 'lengths': torch.tensor([128, 112, 96, 80], device=device)}\n"
        "def run(q, k, v, lengths):\n    mask = torch.arange(k.shape[2])[None, :] < lengths[:, None]\n"
    )
    bodies = {
        "sdpa": "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])\n",
        "spelled": "    s = (q @ k.transpose(-2, -1)) * 0.125\n"
        "    s = s.masked_fill(~mask[:, None, None, :], float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
    }
    counted = {}
    for name, body in bodies.items():
        qkv = (["B", 2, 128, 64], "bfloat16")
        p = make_problem(
            tmp_path,
            entry + body,
            {"q": qkv, "k": qkv, "v": qkv, "lengths": (["B"], "int64")},
            {"o": qkv},
            {"B": 4},
            [{"axes": {}, "kind": "custom"}],
            custom_inputs_entrypoint="get_inputs",
            folder=name,
        )
        counted[name] = count(p, p.workloads[0])
    kept = 128 + 112 + 96 + 80
    assert counted["sdpa"].macs == counted["spelled"].macs == {"bf16": 2 * 128 * kept * (64 + 64)}
    assert counted["sdpa"].read_bytes == counted["spelled"].read_bytes
    assert counted["sdpa"].read_bytes["k"] == 2 * kept * 64 * 2


@pytest.mark.parametrize(
    "frames",
    [
        "x.unfold(-1, 400, 160)",
        "x.as_strided((x.shape[0], (x.shape[1] - 400) // 160 + 1, 400), (x.stride(0), 160, 1))",
    ],
)
def test_overlapping_frames_read_the_samples_they_reach_once(tmp_path, frames):
    # Four frames of 400 samples 160 apart reach 880 samples of a 1039-sample clip: each once, not 4 x 400,
    # and not the tail no frame reaches.
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x):\n    return {frames}.sum(-1)\n",
        {"x": (["B", 1039], "float32")},
        {"y": (["B", 4], "float32")},
        {"B": None},
        [{"axes": {"B": 16}}],
    )
    assert count(p, p.workloads[0]).read_bytes["x"] == 16 * 880 * 4


def test_an_embedding_bag_reads_only_the_addressed_rows(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(table, idx, offsets):\n"
        "    return torch.nn.functional.embedding_bag(idx, table, offsets, mode='sum')\n",
        {"table": ([100000, 64], "float32"), "idx": (["n"], "int64"), "offsets": ([4], "int64")},
        {"bags": ([4, 64], "float32")},
        {"n": None},
        [{"axes": {"n": 32}}],
    )
    assert one(p).bytes_read == pytest.approx(distinct_drawn(32, 1, INT_HIGH) * 64 * 4 + 32 * 8 + 4 * 8)


def test_a_gather_through_a_cast_still_reads_only_the_addressed_rows(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(table, idx):\n    return table.float()[idx].to(torch.bfloat16)\n",
        *GATHER_IO,
        {"V": 100000, "n": None},
        [{"axes": {"n": 16}}],
    )
    assert one(p).bytes_read == pytest.approx(distinct_drawn(16, 1, INT_HIGH) * 64 * 2 + 16 * 8)


@pytest.mark.parametrize(
    "body, macs",
    [
        ("acc.addmm_(a, b)", 64 * 32 * 48),
        ("acc.view(1, 64, 48).baddbmm_(a[None], b[None])", 64 * 32 * 48),
        ("acc.addbmm_(a.view(2, 64, 16), b.view(2, 16, 48))", 64 * 32 * 48),
        ("acc[:, 0].addmv_(a, b[:, 0])", 64 * 32),
    ],
)
def test_products_accumulated_in_place_count_their_macs(tmp_path, body, macs):
    # Megatron's weight gradient: `main_grad.addmm_(dy.t(), x)` into an fp32 buffer.
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(a, b, acc):\n    {body}\n    return acc\n",
        {"a": ([64, 32], "float32"), "b": ([32, 48], "float32"), "acc": ([64, "V"], "float32")},
        {"out": ([64, "V"], "float32")},
        {"V": None},
        [{"axes": {"V": 48}}],
    )
    assert one(p).macs_by_precision == {"fp32": macs}


def test_autograd_seeding_its_backward_with_ones_like_the_loss_does_not_need_the_loss(tmp_path):
    # autograd.grad(loss, ...) starts from ones_like(loss): the loss's value, and the forward product that
    # made it, reach no gradient. dX = G W and dW = Gᵀ X: two products.
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(x, w, g):\n    with torch.enable_grad():\n"
        "        x_, w_ = x.detach().requires_grad_(), w.detach().requires_grad_()\n"
        "        loss = (F.linear(x_, w_) * g).sum()\n        return torch.autograd.grad(loss, (x_, w_))\n",
        {"x": (["V", 128], "bfloat16"), "w": ([512, 128], "bfloat16"), "g": (["V", 512], "bfloat16")},
        {"dx": (["V", 128], "bfloat16"), "dw": ([512, 128], "bfloat16")},
        {"V": None},
        [{"axes": {"V": 256}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"bf16": 2 * 256 * 512 * 128}
    assert b.bytes_read == (256 * 128 + 512 * 128 + 256 * 512) * 2


@pytest.mark.parametrize("copy", [".reshape(-1)", ".contiguous().view(-1)"])
def test_a_slice_of_a_reshaped_copy_demands_only_the_slice(tmp_path, copy):
    # reshape of a transposed product is a copy and `_unsafe_view` on the copy's storage: the half kept
    # counts half the product, as the same slice of `.contiguous().view(-1)` does.
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(a, b):\n    y = (a @ b).t(){copy}\n    return y[: y.numel() // 2]\n",
        {"a": (["V", 1024], "bfloat16"), "b": ([1024, 1024], "bfloat16")},
        {"y": ([32768], "bfloat16")},
        {"V": None},
        [{"axes": {"V": 64}}],
    )
    assert one(p).macs_by_precision == {"bf16": 64 * 1024 * 512}


def test_work_computed_and_discarded_is_not_counted(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, w):\n    unused = x @ w\n    kept = x.float().sum(-1)\n    return kept\n",
        {"x": (["M", 512], "bfloat16"), "w": ([512, 512], "bfloat16")},
        {"s": (["M"], "float32")},
        {"M": None},
        [{"axes": {"M": 128}}],
    )
    b = one(p)
    assert b.macs_by_precision == {}
    assert b.bytes_read == 128 * 512 * 2  # w is never needed


def test_half_of_a_result_kept_counts_half_the_work(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, w):\n    return (x @ w)[:, :256].contiguous()\n",
        {"x": (["M", 512], "bfloat16"), "w": ([512, 512], "bfloat16")},
        {"y": (["M", 256], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 128}}],
    )
    assert one(p).macs_by_precision == {"bf16": 128 * 512 * 512 / 2}


def test_several_outputs_are_each_written_once_and_scalar_inputs_cost_nothing(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, scale):\n    y = x * scale\n    return y, y.sum(-1)\n",
        {"x": (["T", 256], "float16"), "scale": (None, "float32")},
        {"y": (["T", 256], "float16"), "s": (["T"], "float16")},
        {"T": None},
        [{"axes": {"T": 64}, "scalars": {"scale": 0.5}}],
    )
    b = one(p)
    assert b.bytes_read == 64 * 256 * 2
    assert b.bytes_written == (64 * 256 + 64) * 2


def test_a_complex_intermediate_traces_on_meta(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    return torch.fft.fft2(x).abs()\n",
        {"x": (["B", 64, 64], "float32")},
        {"y": (["B", 64, 64], "float32")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    b = one(p)
    assert b.traced_on == "meta" and b.bytes_read == b.bytes_written == 2 * 64 * 64 * 4


def test_a_reference_that_fails_everywhere_is_a_problem_error_with_both_reasons(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    if x.device.type == 'meta':\n        raise ValueError('no meta')\n"
        "    raise RuntimeError('no data either')\n",
        {"x": (["B", 8], "float32")},
        {"y": (["B", 8], "float32")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    with pytest.raises(
        ProblemError, match=r"w0: on meta tensors, ValueError: no meta; on CPU data, RuntimeError: no data"
    ):
        one(p)


def test_an_output_is_written_at_the_dtype_the_definition_gives_it(tmp_path):
    # bf16 times an fp32 table is fp32 in the reference; a kernel must return the declared bf16.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, scale):\n    return x * scale\n",
        {"x": (["M", 64], "bfloat16"), "scale": ([64], "float32")},
        {"y": (["M", 64], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 32}}],
    )
    assert one(p).bytes_written == 32 * 64 * 2


def test_an_input_updated_in_place_and_returned_is_read_and_written_once(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, y):\n    x.add_(y)\n    return x\n",
        {"x": (["T", 128], "bfloat16"), "y": (["T", 128], "bfloat16")},
        {"out": (["T", 128], "bfloat16")},
        {"T": None},
        [{"axes": {"T": 64}}],
    )
    b = one(p)
    assert (b.bytes_read, b.bytes_written) == (2 * 64 * 128 * 2, 64 * 128 * 2)


SEGMENTS = """import torch

def get_inputs(axes, device):
    n, rows = axes["n_seg"], axes["rows"]
    cuts = torch.sort(torch.randint(0, rows + 1, (n - 1,))).values
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), cuts, torch.tensor([rows])]).to(device)
    return {"x": torch.randn(rows, 64, device=device, dtype=torch.bfloat16), "indptr": indptr,
            "w": torch.randn(64, 32, device=device, dtype=torch.bfloat16)}

def run(x, indptr, w):
    out = torch.empty(x.shape[0], 32, dtype=x.dtype)
    for b in range(indptr.shape[0] - 1):
        lo, hi = int(indptr[b].item()), int(indptr[b + 1].item())
        out[lo:hi] = x[lo:hi] @ w
    return out
"""


def segments(tmp_path: Path, rows: int) -> object:
    return make_problem(
        tmp_path,
        SEGMENTS,
        {"x": (["rows", 64], "bfloat16"), "indptr": (["n_ptr"], "int64"), "w": ([64, 32], "bfloat16")},
        {"out": (["rows", 32], "bfloat16")},
        {"rows": None, "n_seg": None, "n_ptr": "n_seg + 1"},
        [{"axes": {"rows": rows, "n_seg": 8}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
        folder=f"segments{rows}",
    )


MASKED_GROUPS = (
    "import torch\n"
    "def run(x, w, masked_m):\n"
    "    out = torch.zeros(x.shape[0], x.shape[1], w.shape[1], device=x.device)\n"
    "    for e in range(x.shape[0]):\n"
    "        rows = int(masked_m[e].item())\n"
    "        out[e, :rows] = x[e, :rows] @ w[e].t()\n"
    "    return out\n"
)


def test_shrunk_traces_of_a_seed_decided_workload_are_its_own(tmp_path):
    # The rows each expert takes (`masked_m[E]`, a random integer input of fixed shape, under 64) are the
    # workload's own draws at any shrunk size: the 256-row workload's shrunk traces at 128 and 64 rows are
    # not the 128-row workload's trace, which holds another seed's draws.
    from solgym.inputs import make_inputs
    from solgym.opcount import count

    p = make_problem(
        tmp_path,
        MASKED_GROUPS,
        {"x": (["e", "m", 32], "float32"), "w": (["e", 32, 32], "float32"), "masked_m": (["e"], "int32")},
        {"out": (["e", "m", 32], "float32")},
        {"e": 4, "m": None},
        [{"axes": {"m": 128}}, {"axes": {"m": 256}}],
    )
    for w in p.workloads:
        rows = make_inputs(p, w, device="cpu")["masked_m"].tolist()
        counted = count(p, w, max_bytes=200_000)  # the 256-row workload shrinks to 128 and 64 rows
        assert counted.macs == {"fp32": sum(rows) * 32 * 32}, (w.uuid, counted.traced_on)


def test_a_data_dependent_reference_is_traced_on_data(tmp_path):
    b = one(segments(tmp_path, 1000))
    assert b.traced_on == "cpu data, scaled x1"
    assert b.notes[0].startswith("the reference reads a tensor value") and b.notes[0].endswith(
        "; traced on data"
    )
    assert b.macs_by_precision == {"bf16": 1000 * 64 * 32}
    assert b.bytes_read == 1000 * 64 * 2 + 9 * 8 + 64 * 32 * 2


@pytest.mark.parametrize(
    "body, note",
    [
        (
            "    return x[(x > 0).nonzero()[:, 0]].sum(0)\n",
            "the reference reads tensor values (aten.nonzero.default: the size of its result depends on them)"
            "; traced on data",
        ),
        (
            "    return (x + torch.ones(x.shape[1])).sum(0)\n",
            "meta tracing failed (aten.add.Tensor meets a tensor made on the CPU (a factory without `device=`, "
            "or `.cpu()`) beside the inputs on meta); traced on data",
        ),
    ],
)
def test_why_a_reference_is_traced_on_data_is_said_in_its_terms(tmp_path, body, note):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n" + body,
        {"x": (["n", 4], "float32")},
        {"y": ([4], "float32")},
        {"n": None},
        [{"axes": {"n": 16}}],
    )
    assert one(p).notes[0] == note


def test_values_read_through_tolist_are_read(tmp_path):
    # `.tolist()` reads memory without an ATen op; what it reads feeds control flow, as `.item()` does, so
    # the offsets are read whole (before 2026-11-28: not at all).
    p = make_problem(
        tmp_path,
        SEGMENTS.replace(
            "    for b in range(indptr.shape[0] - 1):\n        lo, hi = int(indptr[b].item()), int(indptr[b + 1].item())\n",
            "    bounds = indptr.tolist()\n    for lo, hi in zip(bounds[:-1], bounds[1:]):\n",
        ),
        {"x": (["rows", 64], "bfloat16"), "indptr": (["n_ptr"], "int64"), "w": ([64, 32], "bfloat16")},
        {"out": (["rows", 32], "bfloat16")},
        {"rows": None, "n_seg": None, "n_ptr": "n_seg + 1"},
        [{"axes": {"rows": 1000, "n_seg": 8}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    assert "tolist" in p.definition.reference
    b = one(p)
    assert b.traced_on == "cpu data, scaled x1"
    assert b.bytes_read == 1000 * 64 * 2 + 9 * 8 + 64 * 32 * 2


BALL_QUERY = """
import torch

def run(xyz):
    B, N, _ = xyz.shape
    d = -2 * torch.matmul(xyz, xyz.transpose(1, 2))
    d += (xyz ** 2).sum(-1)[:, :, None]
    d += (xyz ** 2).sum(-1)[:, None, :]
    idx = torch.arange(N).expand(B, N, N).clone()
    near = d <= 0.01
    idx[~near] = N
    first = idx.min(-1).values  # each point is in its own ball: first < N
    return xyz[torch.arange(B)[:, None], first] + d[near].sum()
"""


def test_a_reference_that_noise_in_its_products_breaks_is_traced_with_them_computed(tmp_path):
    # PointNet++'s ball query takes squared distances from a product: with noise in its place a point is no
    # longer in its own ball, and the reference's own indexing fails (before: the workload could not be
    # counted). Its products are then computed.
    p = make_problem(
        tmp_path,
        BALL_QUERY,
        {"xyz": ([2, "N", 3], "float32")},
        {"o": ([2, "N", 3], "float32")},
        {"N": None},
        [{"axes": {"N": 64}}],
    )
    b = one(p, floor=False)
    assert b.macs_by_precision == {"fp32": 2 * 64 * 64 * 3}
    assert any("products computed" in n for n in b.notes)


HASHED_LOOKUP = """
import torch

def get_inputs(axes, device):
    return {"ids": torch.randint(0, 10 ** 6, (axes["b"], 8)), "table": torch.randn(8000, 64)}

def run(ids, table):
    return table[FOLD].sum(1)
"""


@pytest.mark.parametrize(
    ("fold", "rows"),
    [
        ("ids % 1000", distinct_drawn(1024, 1, 1000)),
        ("ids // 1000", distinct_drawn(1024, 1, 1000)),
        ("torch.div(ids, 4000, rounding_mode='floor')", distinct_drawn(1024, 1, 250)),
        ("ids % 999", None),  # 10^6 ids over 999 buckets: not uniform, so read on data
    ],
)
def test_ids_hashed_or_divided_stay_draws(tmp_path, fold, rows):
    # A hashed embedding (`ids % buckets`) or a quotient-remainder one (`ids // rows`) of uniform ids looks up
    # uniform ids of fewer values: as many distinct rows as that many draws name (before: one row per lookup,
    # 1024 of 1000, or every value of the range).
    p = make_problem(
        tmp_path,
        HASHED_LOOKUP.replace("FOLD", fold),
        {"ids": (["b", 8], "int64"), "table": ([8000, 64], "float32")},
        {"out": (["b", 64], "float32")},
        {"b": None},
        [{"axes": {"b": 128}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    counted = count(p, p.workloads[0])
    if rows is None:
        assert counted.traced_on.startswith("cpu data")
        rows = torch.unique(make_inputs(p, p.workloads[0], device="cpu")["ids"] % 999).numel()
    assert counted.read_bytes["table"] == pytest.approx(rows * 64 * 4)


LENGTHS_DECODE = """
import torch

def get_inputs(axes, device):
    b = axes["b"]
    return {"q": torch.randn(b, 128, dtype=torch.bfloat16), "kc": torch.randn(b, 1024, 128, dtype=torch.bfloat16),
            "vc": torch.randn(b, 1024, 128, dtype=torch.bfloat16),
            "seq_lens": torch.full((b,), 192, dtype=torch.int32)}

def run(q, kc, vc, seq_lens):
    s = torch.einsum("bd,bsd->bs", q, kc).float()
    s = s.masked_fill(torch.arange(kc.shape[1])[None, :] >= seq_lens[:, None], float("-inf"))
    return torch.einsum("bs,bsd->bd", s.softmax(-1).to(q.dtype), vc)
"""


def decode_on_data(tmp_path: Path, reference: str) -> object:
    """The counts on data of a decode step over a cache of 1024 keys for 8 requests (`LENGTHS_DECODE`)."""
    p = make_problem(
        tmp_path,
        reference,
        {
            "q": (["b", 128], "bfloat16"),
            "kc": (["b", 1024, 128], "bfloat16"),
            "vc": (["b", 1024, 128], "bfloat16"),
            "seq_lens": (["b"], "int32"),
        },
        {"o": (["b", 128], "bfloat16")},
        {"b": None},
        [{"axes": {"b": 8}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    return count_on_data(p, p.workloads[0])


def test_a_length_per_request_known_from_data_masks_the_keys_past_it(tmp_path):
    # Each request attends to its first 192 of 1024 cached keys: on data the lengths are known, and only
    # those keys' products and rows count (before 2026-11-28: all 1024 of each).
    c = decode_on_data(tmp_path, LENGTHS_DECODE)
    kept = 8 * 192  # keys attended over the 8 requests
    assert c.macs["bf16"] == 2 * kept * 128
    assert c.read_bytes["kc"] == c.read_bytes["vc"] == kept * 128 * 2


PROMPT_IGNORED = """
import torch
import torch.nn.functional as F

def get_inputs(axes, device):
    t = axes["t"]
    labels = torch.randint(0, 4096, (2, t), dtype=torch.int64, device=device)
    labels[:, : t // 2] = -100  # the prompt's tokens: no loss
    return {"logits": torch.randn(2, t, 4096, device=device).to(torch.bfloat16), "labels": labels}

def run(logits, labels):
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
"""


@pytest.mark.parametrize("kind", ["custom", "random"])
def test_the_rows_of_ignored_labels_are_not_read(tmp_path, kind):
    # A language-model loss over the completion only: the rows of the prompt's logits, whose labels are
    # -100, reach no output (before 2026-11-29: read whole). Random labels, which cannot be -100, keep
    # every row.
    p = make_problem(
        tmp_path,
        PROMPT_IGNORED,
        {"logits": ([2, "t", 4096], "bfloat16"), "labels": ([2, "t"], "int64")},
        {"loss": ([], "float32")},
        {"t": None},
        [{"axes": {"t": 64}, "kind": kind}],
        custom_inputs_entrypoint="get_inputs",
    )
    b = one(p, floor=False)
    rows = 2 * 32 if kind == "custom" else 2 * 64
    assert b.bytes_read == rows * 4096 * 2 + 2 * 64 * 8


PROMPT_IGNORED_BACKWARD = """
import torch
import torch.nn.functional as F

def get_inputs(axes, device):
    t = axes["t"]
    labels = torch.randint(0, 4096, (t,), dtype=torch.int64, device=device)
    labels[: t // 2] = -100
    return {"logits": torch.randn(t, 4096, device=device), "labels": labels, "g": torch.ones((), device=device)}

def run(logits, labels, g):
    with torch.enable_grad():
        x = logits.detach().requires_grad_()
        (gx,) = torch.autograd.grad(F.cross_entropy(x, labels), (x,), g)
    return gx
"""


def test_the_gradient_of_ignored_labels_needs_no_logits(tmp_path):
    # The gradient of the loss is zero in the rows of ignored labels, written without reading them (before
    # 2026-11-29: every row read).
    p = make_problem(
        tmp_path,
        PROMPT_IGNORED_BACKWARD,
        {"logits": (["t", 4096], "float32"), "labels": (["t"], "int64"), "g": ([], "float32")},
        {"gx": (["t", 4096], "float32")},
        {"t": None},
        [{"axes": {"t": 64}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    c = bounds.counts(p, p.workloads[0])
    # (and the one element of each kept row that the forward picks, counted again beside the rows)
    assert c.read_bytes["logits"] == 32 * (4096 + 1) * 4
    assert c.write_bytes["gx"] == 64 * 4096 * 4


SCATTERED_IGNORED = """
import torch
import torch.nn.functional as F

def get_inputs(axes, device):
    n = axes["n"]
    labels = torch.randint(0, 4096, (n,), device=device)
    logits = torch.randn(n, 4096, device=device).to(torch.bfloat16)
    return {"logits": logits, "labels": labels.masked_fill(torch.rand(n, device=device) < 0.1, -100)}

def run(logits, labels):
    return F.cross_entropy(logits.float(), labels, reduction="none")
"""


def test_labels_ignored_at_random_are_counted_at_full_size(tmp_path):
    # A tenth of the labels ignored at random, in a workload too large to trace on data at full size: its
    # own labels decide the rows read (traced with the logits on meta), where traces at shrunk sizes, each
    # with other draws, would fit a line through theirs.
    p = make_problem(
        tmp_path,
        SCATTERED_IGNORED,
        {"logits": (["n", 4096], "bfloat16"), "labels": (["n"], "int64")},
        {"loss": (["n"], "float32")},
        {"n": None},
        [{"axes": {"n": 4096}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    w = p.workloads[0]
    labels = make_inputs(p, w, device="cpu")["labels"]
    kept = int((labels != -100).sum())
    assert 0.85 * 4096 < kept < 0.95 * 4096
    b = derive(p, w, B200, floor=False)
    assert b.bytes_read == kept * 4096 * 2 + 4096 * 8


def test_lengths_that_differ_per_request_mask_each_requests_keys(tmp_path):
    # Request i attends to its first 128 (i + 1) keys: each row of the scores keeps its own columns, and
    # P·V reads each request's own rows of its cache (before 2026-11-29: all 1024 keys of every request).
    reference = LENGTHS_DECODE.replace(
        "torch.full((b,), 192, dtype=torch.int32)", "(torch.arange(b, dtype=torch.int32) + 1) * 128"
    )
    c = decode_on_data(tmp_path, reference)
    kept = 128 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8)
    assert c.macs["bf16"] == 2 * kept * 128
    assert c.read_bytes["kc"] == c.read_bytes["vc"] == kept * 128 * 2


POSITIONS_DECODE = """
import torch

def get_inputs(axes, device):
    b = axes["b"]
    return {"q": torch.randn(b, 4, 128, dtype=torch.bfloat16, device=device),
            "k": torch.randn(b, 64, 128, dtype=torch.bfloat16, device=device),
            "v": torch.randn(b, 64, 128, dtype=torch.bfloat16, device=device),
            "pos": (torch.arange(b, device=device) * 8 + 7) % 64}

@torch.no_grad()
def run(q, k, v, pos):
    valid = torch.arange(k.shape[1], device=q.device)[None, :] <= pos[:, None]
    if HEADS:  # [b, h, 1, s], the cache expanded over the heads
        kh, vh = k[:, None].expand(-1, 4, -1, -1), v[:, None].expand(-1, 4, -1, -1)
        s = torch.matmul(q[:, :, None], kh.transpose(-1, -2)).float()
        p = torch.softmax(s.masked_fill(~valid[:, None, None, :], float("-inf")), -1)
        return torch.matmul(p.to(v.dtype), vh)[:, :, 0]
    s = torch.matmul(q, k.transpose(1, 2)).float().masked_fill(~valid[:, None, :], float("-inf"))
    return torch.matmul(torch.softmax(s, -1).to(v.dtype), v)
"""


@pytest.mark.parametrize("heads", [False, True])
def test_a_position_per_request_made_by_the_entry_point_masks_its_keys(tmp_path, heads):
    # Request i keeps the slots up to its position (8 i + 7): the positions are read on data (the trace at
    # full size, the rest on meta), and each request's own keys and values are read, with 4 query heads
    # between its two axes (before 2026-11-29: every slot of every request).
    p = make_problem(
        tmp_path,
        POSITIONS_DECODE.replace("HEADS", str(heads)),
        {
            "q": (["b", 4, 128], "bfloat16"),
            "k": (["b", 64, 128], "bfloat16"),
            "v": (["b", 64, 128], "bfloat16"),
            "pos": (["b"], "int64"),
        },
        {"o": (["b", 4, 128], "bfloat16")},
        {"b": None},
        [{"axes": {"b": 4}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    kept = 8 + 16 + 24 + 32
    c = bounds.counts(p, p.workloads[0])
    assert c.macs["bf16"] == 2 * 4 * kept * 128
    assert c.read_bytes["k"] == c.read_bytes["v"] == kept * 128 * 2
    assert c.read_bytes["q"] == 4 * 4 * 128 * 2


def test_lengths_that_only_a_gpu_run_reads_are_counted_on_meta_as_before(tmp_path):
    # A reference that runs on meta but not on CPU data: positions compared with its lengths cannot be
    # read, and every position counts, as it did before lengths were read on data.
    p = make_problem(
        tmp_path,
        "import torch\n"
        "def run(x, lengths):\n"
        "    if x.device.type == 'cpu':\n"
        "        raise RuntimeError('this kernel needs a GPU')\n"
        "    mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]\n"
        "    return (x * mask).sum(1)\n",
        {"x": (["b", 128], "float32"), "lengths": (["b"], "int64")},
        {"y": (["b"], "float32")},
        {"b": None},
        [{"axes": {"b": 8}}],
    )
    c = count(p, p.workloads[0])
    assert c.traced_on == "meta"
    assert c.read_bytes["x"] == 8 * 128 * 4
    assert any("every position taken as kept" in n for n in c.notes)


def test_a_large_data_dependent_workload_is_traced_shrunk_and_extrapolated(tmp_path):
    p = segments(tmp_path, 40000)
    w = p.workloads[0].with_axes(n_seg=64)
    counted = count_on_data(p, w, max_bytes=1 << 20)
    assert "extrapolated" in counted.traced_on
    # MACs and x's bytes are linear in rows: the two-point fit recovers them up to rounding of the axes.
    assert counted.macs["bf16"] == pytest.approx(40000 * 64 * 32, rel=0.02)
    assert counted.read_bytes["x"] == pytest.approx(40000 * 64 * 2, rel=0.02)
    assert counted.read_bytes["w"] == 64 * 32 * 2


def test_latency_floor_binds_small_workloads_and_can_be_switched_off(tmp_path):
    profile = dataclasses.replace(B200, launch_floor_ms=0.002)
    p = small_gemm(tmp_path, (1,))
    with_floor = derive(p, p.workloads[0], profile)
    without = derive(p, p.workloads[0], profile, floor=False)
    assert (with_floor.bound_by, with_floor.t_sol_ms, with_floor.floor_ms) == ("floor", 0.002, 0.002)
    assert without.t_sol_ms == without.roofline_ms < 0.002 and without.bound_by == "memory"


def test_the_larger_roof_binds(tmp_path):
    assert one(gemm(tmp_path, m=8192)).bound_by == "compute"
    assert one(gemm(tmp_path / "..", m=16, folder="skinny")).bound_by == "memory"


def test_solar_prices_two_bytes_per_element_and_adds_its_constant(tmp_path):
    p = gemm(tmp_path, "float32")
    physical = one(p, floor=False)
    solar = one(p, convention="solar")
    assert solar.bytes_read == physical.bytes_read / 2
    assert solar.memory_ms == pytest.approx(physical.memory_ms / 2)
    assert solar.compute_ms == pytest.approx(physical.compute_ms)
    assert solar.t_sol_ms == pytest.approx(solar.roofline_ms + 0.0004)
    assert (solar.convention, physical.convention) == ("solar", "physical")


def test_solar_prices_a_quantized_problem_at_its_rate_and_width(tmp_path):
    p = gemm(tmp_path, folder="fp8_gemm")
    b = one(p, convention="solar", floor=False)
    assert b.priced_as == {"bf16": "fp8"}
    assert b.bytes_read == 256 * 4096 + 4096 * 4096
    assert b.compute_ms == pytest.approx(2 * 256 * 4096 * 4096 / B200.peak("fp8") * 1e3)


def test_solar_prices_bool_tensors_at_no_bytes(tmp_path):
    # The published bounds of the one dev problem with a bool input (a dropout mask as large as its score
    # tensors) are its other tensors' traffic alone; physical reads the mask's byte per element.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(g, mask):\n    return g * mask / 0.9, mask.logical_not()\n",
        {"g": (["n", "n"], "bfloat16"), "mask": (["n", "n"], "bool")},
        {"grad": (["n", "n"], "bfloat16"), "dropped": (["n", "n"], "bool")},
        {"n": None},
        [{"axes": {"n": 1024}}],
    )
    physical = one(p, floor=False)
    solar = one(p, convention="solar", floor=False)
    assert (physical.bytes_read, physical.bytes_written) == (3 * 1024 * 1024, 3 * 1024 * 1024)
    assert (solar.bytes_read, solar.bytes_written) == (2 * 1024 * 1024, 2 * 1024 * 1024)
    assert bounds.solar_widths(p) == {"g": 2.0, "mask": 0.0, "grad": 2.0, "dropped": 0.0}


def test_solar_adds_no_constant_to_a_compute_bound_quantized_workload(tmp_path):
    # As published for the FP8 and NVFP4 problems: their compute-bound bounds are their compute time.
    compute_bound = gemm(tmp_path, m=8192, folder="fp8_gemm")
    memory_bound = gemm(tmp_path, m=16, folder="fp8_skinny")
    plain = gemm(tmp_path, m=8192, folder="gemm")
    for p, bound_by, constant in (
        (compute_bound, "compute", 0.0),
        (memory_bound, "memory", 0.0004),
        (plain, "compute", 0.0004),
    ):
        b = one(p, convention="solar")
        assert b.bound_by == bound_by
        assert b.t_sol_ms == pytest.approx(b.roofline_ms + constant)


def test_fp8_operands_dequantized_in_the_reference_are_priced_at_the_fp8_rate(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, b, s):\n    return (a.to(torch.bfloat16) * s) @ b.to(torch.bfloat16).T\n",
        {
            "a": (["M", 1024], "float8_e4m3fn"),
            "b": ([1024, 1024], "float8_e4m3fn"),
            "s": (["M", 1], "bfloat16"),
        },
        {"c": (["M", 1024], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 64}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"fp8": 64 * 1024 * 1024} and b.priced_as == {"fp8": "fp8"}


# Each spelling's scales of a (per row, per 128 columns) and of b (per 128 x 128 block), made full size.
BLOCK_SCALES = {
    "repeat_interleave": (
        "sa.repeat_interleave(128, -1)",
        "sb.repeat_interleave(128, 0).repeat_interleave(128, 1)",
    ),
    # Picked per element by block index, or spread by a Kronecker product with ones (before 2026-11-28,
    # priced at the fp32 class: the full-size scale looked as varied as the operand it scales).
    "indexed": (
        "sa[:, torch.arange(512, device=sa.device) // 128]",
        "sb[(torch.arange(256) // 128)[:, None], torch.arange(512) // 128]",
    ),
    "kron": ("torch.kron(sa, torch.ones(1, 128, device=sa.device))", "torch.kron(sb, torch.ones(128, 128))"),
}


@pytest.mark.parametrize("spelling", BLOCK_SCALES)
def test_fp8_operands_dequantized_with_block_scales_made_full_size_are_priced_at_the_fp8_rate(
    tmp_path, spelling
):
    # DeepSeek-style 128-blocks: each scale repeated over its block, to the size of the operand it scales.
    scale_a, scale_b = BLOCK_SCALES[spelling]
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, sa, b, sb):\n"
        f"    a = a.float() * {scale_a}\n"
        f"    b = b.float() * {scale_b}\n"
        "    return (a @ b.T).to(torch.bfloat16)\n",
        {
            "a": (["M", 512], "float8_e4m3fn"),
            "sa": (["M", 4], "float32"),
            "b": ([256, 512], "float8_e4m3fn"),
            "sb": ([2, 4], "float32"),
        },
        {"c": (["M", 256], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 64}}],
    )
    assert one(p).macs_by_precision == {"fp8": 64 * 256 * 512}


@pytest.mark.parametrize("rowwise", [True, False])
def test_scaled_mm_reads_its_scales_as_it_reads_the_operands_they_scale(tmp_path, rowwise):
    # One row of a 64-row fp8 product kept: a's first row and its scale, all of b and of b's scales; a
    # scale of one element is read whole (before 2026-11-28, every scale at the kept share of the result).
    scales = {"sa": (["M", 1], "float32"), "sb": ([1, 256], "float32")} if rowwise else {}
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, b, sa, sb):\n"
        "    return torch._scaled_mm(a, b.t(), sa, sb, out_dtype=torch.bfloat16)[:1]\n",
        {
            "a": (["M", 512], "float8_e4m3fn"),
            "b": ([256, 512], "float8_e4m3fn"),
            **(scales or {"sa": ([1], "float32"), "sb": ([1], "float32")}),
        },
        {"c": ([1, 256], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 64}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"fp8": 256 * 512}
    assert b.bytes_read == 512 + 256 * 512 + 4 + (256 * 4 if rowwise else 4)


def test_the_result_of_an_fp8_product_is_not_itself_fp8(tmp_path):
    # The first product's result is larger than its fp8 weight: it is still a full-precision sum of
    # products, so the product that consumes it is priced at the bf16 rate.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, b, w):\n"
        "    h = a.to(torch.bfloat16) @ b.to(torch.bfloat16).T\n"
        "    return h @ w\n",
        {
            "a": (["M", 64], "float8_e4m3fn"),
            "b": ([64, 64], "float8_e4m3fn"),
            "w": ([64, 64], "bfloat16"),
        },
        {"c": (["M", 64], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 256}}],
    )
    assert one(p).macs_by_precision == {"fp8": 256 * 64 * 64, "bf16": 256 * 64 * 64}


def test_derive_all_returns_one_bound_per_workload_in_order(tmp_path):
    p = small_gemm(tmp_path, (1, 2, 3))
    assert [b.macs_by_precision["bf16"] for b in derive_all(p, B200)] == [m * 64 * 64 for m in (1, 2, 3)]


def test_cli_bounds_json_on_a_problem_directory(tmp_path, capsys):
    gemm(tmp_path)
    assert main(["bounds", str(tmp_path / "problem"), "--gpu", "B200", "--clock", "1500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["convention"] == "physical" and len(out["bounds"]) == 1
    assert out["bounds"][0]["macs_by_precision"] == {"bf16": 256 * 4096 * 4096}


def test_cli_bounds_json_stays_one_document_when_the_reference_prints(tmp_path, capsys):
    reference = "import torch\ndef run(a, b):\n    print('multiplying', a.shape)\n    return a @ b\n"
    inputs = {"a": (["M", 64], "bfloat16"), "b": ([64, 64], "bfloat16")}
    p = make_problem(
        tmp_path, reference, inputs, {"c": (["M", 64], "bfloat16")}, {"M": None}, [{"axes": {"M": 4}}]
    )
    assert main(["bounds", str(p.path), "--gpu", "B200", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["bounds"][0]["macs_by_precision"] == {"bf16": 4 * 64 * 64}
    assert "multiplying" in captured.err


def test_causal_scores_cut_to_the_last_query_need_its_query_row_and_every_key(tmp_path):
    # Before, the causal mask passed "every row and column kept" to the product behind the scores whatever
    # was demanded of them: a prefill's last token counted every query's projection.
    reference = (
        "import torch\ndef run(x, wq, k, v):\n    S = x.shape[0]\n    q = x @ wq.T\n"
        "    s = (q @ k.T).float() + torch.triu(torch.full((S, S), float('-inf'), device=x.device), 1)\n"
        "    return (torch.softmax(s, -1).to(v.dtype) @ v)[-1:]\n"
    )
    n, d = 128, 64
    inputs = {
        "x": ([n, d], "bfloat16"),
        "wq": ([d, d], "bfloat16"),
        "k": ([n, d], "bfloat16"),
        "v": ([n, d], "bfloat16"),
    }
    p = make_problem(tmp_path, reference, inputs, {"o": ([1, d], "bfloat16")}, {}, [{"axes": {}}])
    c = count_on_meta(p, p.workloads[0])
    assert c.read_elements == {"x": d, "wq": d * d, "k": n * d, "v": n * d}
    projection, row = d * d, n * d  # the last query's, and each product over its row of n keys
    assert (
        projection + row <= c.macs["bf16"] <= projection + 2 * row
    )  # the row's share of the triangle, at least


def test_a_mask_the_reference_caches_between_calls_is_followed_in_every_workload(tmp_path):
    # Each trace runs the reference's module afresh: a mask kept in an lru_cache by an earlier workload's
    # trace would otherwise reach a later one as a tensor of unknown origin, counted in full.
    reference = (
        "import functools\nimport torch\nimport torch.nn.functional as F\n"
        "@functools.lru_cache(maxsize=8)\ndef causal(n, device):\n"
        "    return torch.ones(n, n, dtype=torch.bool, device=device).tril()\n"
        "def run(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v, attn_mask=causal(q.shape[-2], q.device))\n"
    )
    shape = (["B", 2, 64, 16], "bfloat16")
    p = make_problem(
        tmp_path,
        reference,
        dict.fromkeys("qkv", shape),
        {"o": shape},
        {"B": None},
        [{"axes": {"B": 1}}, {"axes": {"B": 2}}],
    )
    triangle = 64 * 65 // 2
    assert [b.macs_by_precision["bf16"] for b in derive_all(p, B200)] == [
        batch * 2 * triangle * 32 for batch in (1, 2)
    ]


def test_cli_bounds_table_prints_each_workload_as_it_is_derived(tmp_path, capsys, monkeypatch):
    # A long derivation shows the rows it has: each is printed (and flushed) before the next workload starts.
    p = small_gemm(tmp_path, (1, 2))
    seen = []
    real = bounds.derive

    def derive_seeing_output(problem, workload, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        seen.append(capsys.readouterr().out)
        return real(problem, workload, *args, **kwargs)

    monkeypatch.setattr(bounds, "derive", derive_seeing_output)
    assert main(["bounds", str(p.path), "--gpu", "B200"]) == 0
    assert "T_SOL us" in seen[0] and "w0" not in seen[0]
    assert seen[1].startswith("w0") and "memory" in seen[1]
    assert capsys.readouterr().out.startswith("w1")


def test_cli_bounds_solar_on_a_dev_problem_matches_its_published_bound(capsys):
    folder = DEV / "007_gemm_n4096_k4096"
    if not folder.is_dir():
        pytest.skip("SOL-ExecBench dev problems not present")
    assert (
        main(
            [
                "bounds",
                str(folder),
                "--gpu",
                "B200",
                "--clock",
                "1500",
                "--convention",
                "solar",
                "--json",
                "--workload",
                "280860e6",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    published = json.loads((folder / "published.json").read_text())["workloads"][0]["sol_ms"]
    assert round(out["bounds"][0]["t_sol_ms"], 4) == pytest.approx(published, rel=0.1)


def test_cli_rejects_an_unknown_convention(tmp_path):
    gemm(tmp_path)
    with pytest.raises(SystemExit):
        main(["bounds", str(tmp_path / "problem"), "--convention", "fast"])


def test_fidelity_against_published_bounds_on_meta_traceable_dev_problems():
    if not DEV.is_dir():
        pytest.skip("SOL-ExecBench dev problems not present")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bounds_fidelity import evaluate

    result = evaluate(DEV, meta_only=True)
    summary = result["summary"]["without_known_defects"]
    assert summary["workloads"] >= 400
    assert math.isclose(summary["median_ratio"], 1.0, abs_tol=0.01)
    assert summary["within_10pct"] >= FIDELITY_WITHIN_10
    assert summary["within_25pct"] >= FIDELITY_WITHIN_25
    # The defect tests mark the published bounds below the traffic every correct kernel needs (53 here),
    # and those that price the scores a causal mask in the reference discards (5 here: four of
    # 037_qk_norm_rope_attention_core_backward, one of 019_decoder_layer_fused_attention_mlp).
    assert result["summary"]["published_below_needed"] >= 48
    assert result["summary"]["published_prices_masked"] >= 4


def test_the_fidelity_benchmark_sets_torchs_intra_op_threads(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bounds_fidelity import main as fidelity

    before = torch.get_num_threads()
    try:
        assert fidelity(["--data", str(tmp_path / "absent"), "--threads", "1"]) == 2  # no data: says so
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        fidelity(["--threads", "0"])


def test_the_paged_loop_floor_counts_every_workloads_steps(capsys):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from paged_loop_floor import main as loop_floor

    assert loop_floor(["--data", "/nonexistent"]) == 2
    if not DEV.is_dir():
        pytest.skip("SOL-ExecBench dev problems not present")
    assert loop_floor(["--data", str(DEV), "--steps", "64", "--json"]) == 0
    rows = {row["problem"][:3]: row for row in json.loads(capsys.readouterr().out)}
    # The prefill steps once per query token of its 38 workloads, the decode once per head (32) of each of
    # the requests of its 48.
    assert (rows["019"]["workloads"], rows["019"]["loop_steps"]) == (38, 87217)
    assert (rows["013"]["workloads"], rows["013"]["loop_steps"]) == (48, 41472)
    for row in rows.values():
        assert row["seconds_per_step"] > 0
        assert math.isclose(row["loop_seconds"], row["seconds_per_step"] * row["loop_steps"])


# The figures docs/bounds.md reports for the meta-traceable problems, less a margin (measured: 487
# workloads without known defects, 88.9% within 10%, 92.6% within 25%).
FIDELITY_WITHIN_10 = 0.86
FIDELITY_WITHIN_25 = 0.91


CAUSAL_MASKS = [
    "mask = torch.triu(torch.full((64, 64), float('-inf')), diagonal=1)\n    s = s + mask",
    "mask = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)\n    s = s.masked_fill(mask == 0, float('-inf'))",
    "keep = torch.tril(torch.ones(64, 64)).bool()\n    s = torch.where(keep, s, torch.finfo(s.dtype).min)",
    "keep = torch.ones(64, 64, dtype=torch.bool).tril()\n    s = s.masked_fill(keep.logical_not(), float('-inf'))",
    "upper = torch.ones(64, 64, dtype=torch.bool).triu(1)\n    s = s + torch.zeros(64, 64).masked_fill(upper, -1e9)",
    "keep = torch.arange(64)[:, None] >= torch.arange(64)[None, :]\n    s = s.masked_fill(~keep, float('-inf'))",
    "mask = torch.full((64, 64), torch.finfo(s.dtype).min)\n    i = torch.arange(64)\n"
    "    mask.masked_fill_(i < (i + 1).view(64, 1), 0)\n    s = s + mask",
    # Compared with its own value (HF's TransfoXL `attn_mask == 1`); the old PyTorch tutorial's float mask.
    "keep = torch.tril(torch.ones(64, 64)) == 1\n    s = s.masked_fill(~keep, float('-inf'))",
    "m = (torch.triu(torch.ones(64, 64)) == 1).transpose(0, 1).float()\n"
    "    m = m.masked_fill(m == 0, float('-inf')).masked_fill(m == 1, 0.0)\n    s = s + m",
    # The fill a tensor made on the device; an infinite constant made as ones times -inf (before
    # 2026-11-30, the first two counted P·V in full, the third all of the attention).
    "upper = torch.ones(64, 64, dtype=torch.bool, device=q.device).triu(1)\n"
    "    s = s.masked_fill(upper, torch.tensor(float('-inf'), device=q.device))",
    "keep = torch.ones(64, 64, dtype=torch.bool, device=q.device).tril()\n"
    "    s = torch.where(keep, s, torch.tensor(float('-inf'), device=q.device))",
    "s = s + torch.triu(torch.ones(64, 64, device=q.device) * float('-inf'), 1)",
    # Put by the mask as an index (before 2026-11-30, the scores' product counted in full).
    "upper = torch.ones(64, 64, dtype=torch.bool, device=q.device).triu(1)\n    s[..., upper] = float('-inf')",
]


def masked_attention_macs(tmp_path: Path, mask: str, folder: str = "problem") -> float:
    """The MACs of a spelled-out attention (2 heads of 64 positions, head size 32) with a mask line."""
    return one(masked_attention(tmp_path, mask, folder)).macs_by_precision["fp16"]


def masked_attention(tmp_path: Path, mask: str, folder: str = "problem") -> Problem:
    """A spelled-out attention (2 heads of 64 positions, head size 32) with a mask line."""
    return make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n"
        "    s = q @ k.transpose(-1, -2)\n"
        f"    {mask}\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {
            "q": ([1, 2, 64, 32], "float16"),
            "k": ([1, 2, 64, 32], "float16"),
            "v": ([1, 2, 64, 32], "float16"),
        },
        {"o": ([1, 2, 64, 32], "float16")},
        {"L": None},
        [{"axes": {"L": 1}}],
        folder=folder,
    )


@pytest.mark.parametrize("mask", CAUSAL_MASKS)
def test_a_causal_mask_built_in_the_reference_halves_the_attention_work_as_is_causal_does(tmp_path, mask):
    assert masked_attention_macs(tmp_path, mask) == 2 * (64 * 65 // 2) * (32 + 32)


@pytest.mark.parametrize(
    "tiled",
    [
        "m.repeat(4, 1)",
        "m[None].expand(4, 64, 64).reshape(256, 64)",
    ],
)
def test_a_causal_mask_tiled_for_query_heads_folded_into_rows_counts_each_triangle(tmp_path, tiled):
    """Grouped-query attention with the 4 query heads of a key head folded into the rows of one product,
    the causal mask tiled to match: each head's triangle (before 2026-11-30, every score)."""
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n"
        "    m = torch.full((64, 64), float('-inf'), device=q.device).triu(1)\n"
        f"    s = q.reshape(256, 32) @ k[0].mT + {tiled}\n"
        "    return (torch.softmax(s, -1) @ v[0]).view(4, 64, 32)\n",
        {"q": ([4, 64, 32], "float32"), "k": ([1, 64, 32], "float32"), "v": ([1, 64, 32], "float32")},
        {"o": ([4, 64, 32], "float32")},
        {"L": None},
        [{"axes": {"L": 1}}],
    )
    assert one(p).macs_by_precision == {"fp32": 4 * 2 * (64 * 65 // 2) * 32}


def test_counts_made_on_the_cpu_from_ids_on_meta_are_counted_on_data(tmp_path):
    """Per-expert counts made without `device=` (`torch.zeros(E).scatter_add_(0, ids, ones)`) beside ids on
    meta: torch leaves the CPU tensor's zeros, and a loop over the experts it says were hit would run
    none. It is traced on data, as `bincount` is (before 2026-11-30, counted on meta with no expert
    product at all)."""
    p = make_problem(
        tmp_path,
        "import torch\n"
        "def run(g, idx, w):\n"
        "    idx = idx.remainder(w.shape[0])\n"
        "    cnt = torch.zeros(w.shape[0], dtype=torch.long).scatter_add_(0, idx, torch.ones_like(idx))\n"
        "    out = torch.zeros(g.shape[0], w.shape[2])\n"
        "    for e in (cnt > 0).nonzero().flatten().tolist():\n"
        "        t = torch.where(idx == e)[0]\n"
        "        out.index_add_(0, t, g[t] @ w[e])\n"
        "    return out\n",
        {"g": (["T", 32], "float32"), "idx": (["T"], "int64"), "w": ([4, 32, 64], "float32")},
        {"out": (["T", 64], "float32")},
        {"T": None},
        [{"axes": {"T": 64}}],
    )
    bound = one(p)
    assert bound.traced_on != "meta"
    assert bound.macs_by_precision == {"fp32": 64 * 32 * 64}  # each token through its one expert


@pytest.mark.parametrize(
    "loop",
    [
        # Each expert's tokens put in turn: disjoint rows, each product demanded whole.
        "    for e in range(w.shape[0]):\n        t = torch.where(idx == e)[0]\n        out[t] = g[t] @ w[e]\n",
        # Every token put, then about half put again: the first product is demanded where not replaced.
        "    t = torch.where(idx >= 0)[0]\n    out[t] = g[t] @ w[0]\n"
        "    t = torch.where(idx < 2)[0]\n    out[t] = g[t] @ w[1]\n",
    ],
)
def test_rows_put_in_turn_on_data_count_the_rows_no_later_put_replaces(tmp_path, loop):
    """`out[t] = y` of each expert's tokens into a buffer returned whole (before 2026-11-30, each put
    counted at the share of the buffer that later puts left, not of its own rows: 0.54x the MACs at 16
    experts)."""
    p = make_problem(
        tmp_path,
        "import torch\n"
        "def get_inputs(axes, device):\n"
        "    t = axes['T']\n"
        "    return {'g': torch.randn(t, 32, device=device), 'idx': torch.randint(0, 4, (t,), device=device),\n"
        "            'w': torch.randn(4, 32, 64, device=device)}\n"
        "def run(g, idx, w):\n"
        "    out = torch.zeros(g.shape[0], w.shape[2])\n" + loop + "    return out\n",
        {"g": (["T", 32], "float32"), "idx": (["T"], "int64"), "w": ([4, 32, 64], "float32")},
        {"out": (["T", 64], "float32")},
        {"T": None},
        [{"axes": {"T": 64}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    assert one(p).macs_by_precision == {"fp32": 64 * 32 * 64}  # each row's product once


def test_a_value_read_after_sdpa_is_decided_by_its_values_range(tmp_path):
    """An NVFP4 quantizer's guard on the attention's output (its global scale against zero): SDPA's
    output lies within v's range, as the spelled-out product's does, so the reference traces on meta
    (before 2026-11-30, on data, and its causal count extrapolated from shrunk sizes: -1.9%)."""
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(q, k, v, s):\n"
        "    o = F.scaled_dot_product_attention(q * s.to(q.dtype), k, v, is_causal=True)\n"
        "    g = torch.div(torch.tensor(2688.0, device=q.device), o.abs().max().float())\n"
        "    if g == 0.0:\n"
        "        g = torch.tensor(1.0, device=q.device)\n"
        "    return (o.float() * g).to(o.dtype)\n",
        {**{n: ([2, 4, "S", 32], "bfloat16") for n in "qkv"}, "s": ([2, 4, "S", 32], "float8_e4m3fn")},
        {"o": ([2, 4, "S", 32], "bfloat16")},
        {"S": None},
        [{"axes": {"S": 128}}],
    )
    bound = one(p)
    assert bound.traced_on == "meta"
    assert bound.macs_by_precision == {"bf16": 2 * 4 * (128 * 129 // 2) * 64}


def test_a_soft_capped_causal_attention_differentiated_by_autograd_counts_the_triangle(tmp_path):
    """Gemma-2's tanh soft-cap before a causal mask, its backward taken by `torch.autograd.grad`:
    `tanh_backward` passes the masked zeros of the scores' gradient on (before 2026-11-30, three of the
    five products counted every score)."""
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v, do):\n"
        "    m = torch.ones(64, 64, dtype=torch.bool, device=q.device).triu(1)\n"
        "    with torch.enable_grad():\n"
        "        q, k, v = (x.detach().requires_grad_(True) for x in (q, k, v))\n"
        "        s = torch.tanh(q @ k.mT / 50.0) * 50.0\n"
        "        p = torch.softmax(s.masked_fill(m, float('-inf')), -1)\n"
        "        return torch.autograd.grad(p @ v, (q, k, v), do)\n",
        {n: ([64, 32], "float32") for n in ("q", "k", "v", "do")},
        {n: ([64, 32], "float32") for n in ("dq", "dk", "dv")},
        {"L": None},
        [{"axes": {"L": 1}}],
    )
    # QKᵀ, dV = Pᵀ dO, dP = dO Vᵀ, dQ = dS K and dK = dSᵀ Q, each over the triangle.
    assert one(p).macs_by_precision == {"fp32": 5 * (64 * 65 // 2) * 32}


@pytest.mark.parametrize(
    "mask",
    [
        "mask = torch.triu(torch.full((64, 64), float('-inf'), device=q.device), diagonal=1)\n    s = s + mask",
        "upper = torch.triu(torch.ones(64, 64, device=q.device, dtype=torch.bool), diagonal=1)\n"
        "    s = s.masked_fill(upper[None, None], float('-inf'))",
    ],
)
def test_counted_without_following_masks_every_masked_score_is_computed(tmp_path, mask):
    # What a bound that prices the masked scores assumes: the reference's work as it performs it.
    p = masked_attention(tmp_path, mask)
    full = count_on_meta(p, p.workloads[0], follow_masks=False)
    assert full.macs["fp16"] == 2 * 64 * 64 * (32 + 32)
    assert count_on_meta(p, p.workloads[0]).macs["fp16"] == 2 * (64 * 65 // 2) * (32 + 32)


# A sliding window of 8 over a causal mask: row i attends to keys i - 7 .. i.
WINDOWED_MASKS = [
    "i = torch.arange(64)\n    keep = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < 8)\n"
    "    s = s.masked_fill(~keep, float('-inf'))",
    "i = torch.arange(64)\n    keep = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - 8)\n"
    "    s = s.masked_fill(~keep, float('-inf'))",
    "ones = torch.ones(64, 64, dtype=torch.bool)\n    s = s.masked_fill(~(ones.tril() & ~ones.tril(-8)), float('-inf'))",
    "keep = torch.ones(64, 64, dtype=torch.bool).tril().triu(-7)\n    s = s.masked_fill(keep == 0, float('-inf'))",
    # HF's Mistral: a constant of the dtype's minimum, times where it attends to nothing.
    "mask = torch.full((64, 64), torch.finfo(s.dtype).min)\n    pos = torch.arange(64)\n"
    "    attend = torch.arange(64) > pos.reshape(-1, 1)\n"
    "    attend.bitwise_or_(torch.arange(64) <= (pos.reshape(-1, 1) - 8))\n    mask *= attend\n    s = s + mask",
    "i = torch.arange(64)\n    d = i[:, None] - i[None, :]\n    s = s.masked_fill((d < 0) | (d >= 8), float('-inf'))",
    "d = torch.arange(64)[None, :] - torch.arange(64)[:, None]\n"
    "    s = s + torch.where((d <= 0) & (d > -8), 0.0, float('-inf'))",
    "s = s.masked_fill(torch.ones(64, 64).triu(1).bool(), float('-inf'))\n"
    "    s = s.masked_fill(torch.ones(64, 64).tril(-8).bool(), float('-inf'))",
    "c, w = torch.ones(64, 64).tril(), torch.ones(64, 64).triu(-7)\n    s = s.masked_fill(c * w == 0, float('-inf'))",
]


@pytest.mark.parametrize("mask", WINDOWED_MASKS)
def test_a_sliding_window_mask_counts_only_the_band_it_keeps(tmp_path, mask):
    band = sum(min(i + 1, 8) for i in range(64))
    assert masked_attention_macs(tmp_path, mask) == 2 * band * (32 + 32)


def test_a_symmetric_window_its_complement_and_a_band_with_a_hole(tmp_path):
    def macs(keep: str, folder: str) -> float:
        mask = f"i = torch.arange(64)\n    d = i[:, None] - i[None, :]\n    s = s.masked_fill(~({keep}), float('-inf'))"
        return masked_attention_macs(tmp_path, mask, folder)

    near = sum(1 for i in range(64) for j in range(64) if abs(i - j) < 8)
    assert macs("d.abs() < 8", "near") == 2 * 2 * near * 32
    assert macs("d.abs() >= 8", "far") == 2 * 2 * (64 * 64 - near) * 32
    # Near the diagonal but not on it: a band with a hole, counted without the hole (before 2026-11-27, a
    # region of two intervals per row was not followed, and the work counted in full).
    assert macs("(d.abs() < 8) & (d != 0)", "hole") == 2 * 2 * (near - 64) * 32


def test_sdpa_with_a_sliding_window_mask_counts_the_band(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(q, k, v):\n"
        "    i = torch.arange(q.shape[2], device=q.device)\n"
        "    keep = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < 128)\n"
        "    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)\n",
        {n: ([2, 8, "L", 64], "bfloat16") for n in "qkv"},
        {"o": ([2, 8, "L", 64], "bfloat16")},
        {"L": None},
        [{"axes": {"L": 2048}}],
    )
    pairs = 2048 * 128 - 128 * 127 // 2
    assert one(p).macs_by_precision == {"bf16": 2 * 8 * pairs * 128}


def chunk_scan(tmp_path: Path, body: str, folder: str = "problem") -> object:
    """Mamba-2's intra-chunk product: scores of C and B (one group for all heads), decayed by a lower
    triangular mask, applied to x."""
    return make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(x, a, b, c):\n"
        "    n = x.shape[1]\n"
        "    ones = torch.ones(n, n, dtype=torch.bool)\n" + body,
        {
            "x": ([1, 64, 4, 16], "float32"),
            "a": ([1, 4, 64], "float32"),
            "b": ([1, 64, 1, 32], "float32"),
            "c": ([1, 64, 1, 32], "float32"),
        },
        {"y": ([1, 64, 4, 16], "float32")},
        {"L": None},
        [{"axes": {"L": 1}}],
        folder=folder,
    )


SEGSUM = (
    "    s = torch.cumsum(a, -1)[..., :, None] - torch.cumsum(a, -1)[..., None, :]\n"
    "    decay = torch.exp(s.masked_fill(~torch.tril(ones), {fill}))\n"  # b h i j
    "    g = torch.einsum('bihs,bjhs->bhij', {c}, {b})\n"
    "    return torch.einsum('bhij,bjhd->bihd', g * decay, x)\n"
)
HEADS = "c.expand(1, 64, 4, 32)", "b.expand(1, 64, 4, 32)"


def test_a_lower_triangular_mask_built_with_tril_and_a_negation_halves_the_masked_products(tmp_path):
    lower = 64 * 65 // 2  # the pairs (i, j) with j <= i
    full = chunk_scan(tmp_path, SEGSUM.format(fill="0.0", c=HEADS[0], b=HEADS[1]))  # exp(0) = 1: no mask
    masked = chunk_scan(tmp_path, SEGSUM.format(fill="float('-inf')", c=HEADS[0], b=HEADS[1]), "masked")
    # g is computed once for the four heads (b and c repeat along them), for the pairs the mask keeps.
    assert one(full).macs_by_precision == {"fp32": 64 * 64 * 32 + 4 * 64 * 64 * 16}
    assert one(masked).macs_by_precision == {"fp32": lower * 32 + 4 * lower * 16}


def test_einsum_products_repeated_along_a_broadcast_index_are_counted_once(tmp_path):
    fill = "float('-inf')"
    lower = 64 * 65 // 2
    # Padding copies the expanded operands; the copies still repeat along the heads.
    padded = [f"F.pad({t}, (0, 0, 0, 0, 0, 0))" for t in HEADS]
    # One operand differs per head: nothing repeats.
    varied = [f"({HEADS[0]} * x[..., :1])", HEADS[1]]
    assert one(
        chunk_scan(tmp_path, SEGSUM.format(fill=fill, c=padded[0], b=padded[1]))
    ).macs_by_precision == {"fp32": lower * 32 + 4 * lower * 16}
    assert one(
        chunk_scan(tmp_path, SEGSUM.format(fill=fill, c=varied[0], b=varied[1]), "varied")
    ).macs_by_precision == {"fp32": 4 * lower * 32 + 4 * lower * 16}


@pytest.mark.parametrize("batch", [1, 2])
def test_matmul_products_repeated_along_broadcast_heads_are_counted_once(tmp_path, batch):
    """C·Bᵀ of one group broadcast to every head, written with `matmul` as einsum's test above writes it
    with einsum: the same count. At batch 1 the operands reach `bmm` as views of stride 0 along the heads;
    at batch 2 as copies reshaped into its batch axis, which still repeat along them (before 2026-11-30,
    counted once per head: 4x these products)."""

    def problem(c: str, folder: str) -> object:
        return make_problem(
            tmp_path,
            "import torch\ndef run(x, b, c):\n"
            "    n, h, s = c.shape[0], x.shape[2], c.shape[-1]\n"
            f"    cs, bs = {c}, b.expand({batch}, 64, 4, 32)\n"
            "    g = torch.matmul(cs.permute(0, 2, 1, 3), bs.permute(0, 2, 3, 1))\n"
            "    return torch.matmul(g, x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)\n",
            {
                "x": ([batch, 64, 4, 16], "float32"),
                "b": ([batch, 64, 1, 32], "float32"),
                "c": ([batch, 64, 1, 32], "float32"),
            },
            {"y": ([batch, 64, 4, 16], "float32")},
            {"L": None},
            [{"axes": {"L": 1}}],
            folder=folder,
        )

    scores, values = 64 * 64 * 32, 4 * 64 * 64 * 16
    shared = problem(f"c.expand({batch}, 64, 4, 32)", "shared")
    assert one(shared).macs_by_precision == {"fp32": batch * (scores + values)}
    # One operand differs per head: nothing repeats.
    varied = problem(f"c.expand({batch}, 64, 4, 32) * x[..., :1]", "varied")
    assert one(varied).macs_by_precision == {"fp32": batch * (4 * scores + values)}


def test_masks_of_key_positions_count_the_keys_kept_and_a_shifted_band_its_own(tmp_path):
    def macs(mask: str, folder: str) -> float:
        return masked_attention_macs(tmp_path, mask, folder)

    full = 2 * 64 * 64 * 32 * 2
    # Keys 32 and on masked for every query (a length mask): half the work (before 2026-11-27, all of it).
    assert macs("s = s.masked_fill(torch.arange(64)[None, :] >= 32, float('-inf'))", "columns") == full // 2
    # A vector of positions made a column masks whole rows, queries 32 and on here: half the work (before
    # 2026-11-28, a vector viewed so was not followed, and the work counted in full).
    rows = "keep = torch.arange(64) < 32\n    s = s.masked_fill(~keep[:, None], float('-inf'))"
    assert macs(rows, "rows") == full // 2
    # A finite fill: the masked scores are not needed, but their probabilities are not zero (exp(5) != 0).
    lower = 64 * 65 // 2
    finite = "s = s.masked_fill(torch.ones(64, 64).triu(1).bool(), 5.0)"
    assert macs(finite, "finite") == 2 * lower * 32 + 2 * 64 * 64 * 32
    kept = sum(min(64, i + 9) for i in range(64))  # j <= i + 8
    shifted = "s = s.masked_fill(torch.arange(64)[:, None] + 8 < torch.arange(64)[None, :], float('-inf'))"
    assert macs(shifted, "shifted") == 2 * 2 * kept * 32
    # A shift scaled by alpha (j - 8 here) is not followed: the work counts in full.
    scaled = "i = torch.arange(64)\n    s = s.masked_fill(torch.sub(i, 4, alpha=2)[None, :] > i[:, None], float('-inf'))"
    assert macs(scaled, "scaled") == full


@pytest.mark.parametrize(
    "keep",
    [
        "(kv <= pos) & (kv > pos - 256)",
        "(pos - kv >= 0) & (pos - kv < 256)",
        "(kv[None, None, None, :] <= pos) & (kv[None, None, None, :] > pos - 256)",
        "(kv <= pos) & ((kv - pos).abs() < 256)",
    ],
)
def test_a_decode_step_over_a_static_cache_counts_and_reads_the_keys_its_window_keeps(tmp_path, keep):
    # One query per head against a preallocated cache of 1024 positions: a window of the 256 up to pos.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k_cache, v_cache, pos):\n    kv = torch.arange(k_cache.shape[2])\n"
        f"    keep = {keep}\n"
        "    k, v = k_cache.repeat_interleave(4, 1), v_cache.repeat_interleave(4, 1)\n"
        "    s = (q @ k.transpose(-1, -2)).masked_fill(~keep, float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {
            "q": ([2, 8, 1, 64], "bfloat16"),
            "k_cache": ([2, 2, "S", 64], "bfloat16"),
            "v_cache": ([2, 2, "S", 64], "bfloat16"),
            "pos": (None, "int64"),
        },
        {"o": ([2, 8, 1, 64], "bfloat16")},
        {"S": None},
        [{"axes": {"S": 1024}, "scalars": {"pos": 700}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"bf16": 2 * 8 * 256 * 64 * 2}
    assert b.bytes_read == 2 * 8 * 64 * 2 + 2 * (2 * 2 * 256 * 64 * 2)  # q, and the window of k and v


@pytest.mark.parametrize(
    "call, keys",
    [
        (
            "F.scaled_dot_product_attention(q, k, v, attn_mask=torch.arange(1024)[None, None, None, :] <= 700)",
            701,
        ),
        ("F.scaled_dot_product_attention(q, k, v, is_causal=True)", 64),  # aligned top-left: keys 0..63
    ],
)
def test_sdpa_reads_the_keys_and_values_some_query_attends_to(tmp_path, call, keys):
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\ndef run(q, k, v):\n    return {call}\n",
        {
            "q": ([1, 4, "Q", 64], "bfloat16"),
            "k": ([1, 4, 1024, 64], "bfloat16"),
            "v": ([1, 4, 1024, 64], "bfloat16"),
        },
        {"o": ([1, 4, "Q", 64], "bfloat16")},
        {"Q": None},
        [{"axes": {"Q": 64}}],
    )
    assert one(p).bytes_read == (4 * 64 * 64 + 2 * 4 * keys * 64) * 2


@pytest.mark.parametrize(
    "body, products",
    [
        ("a = -(k @ k.transpose(-1, -2)).tril(-1)", 2),  # the WY factor of DeltaNet and gated delta rules
        ("a = (k @ k.transpose(-1, -2)).tril(-1)\n    a = a - a.tril(-1) * 0.5", 2),
        ("a = (k @ k.transpose(-1, -2)).tril(-1) + (v @ v.transpose(-1, -2)).tril(-1)", 3),
        ("a = (k @ k.transpose(-1, -2)).tril(-1) + 1.0", None),  # one everywhere else: no longer zero there
    ],
)
def test_zeros_outside_a_triangle_stay_zero_through_negation_and_sums_of_such_terms(tmp_path, body, products):
    # Before 2026-11-27 a negation or a sum dropped the zeros: `a @ v` counted in full (+50%).
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(k, v):\n    {body}\n    return a @ v\n",
        {n: ([4, 64, 32], "float32") for n in "kv"},
        {"o": ([4, 64, 32], "float32")},
        {},
        [{"axes": {}}],
    )
    triangle = 4 * (64 * 63 // 2) * 32
    expected = products * triangle if products else triangle + 4 * 64 * 64 * 32
    assert one(p).macs_by_precision == {"fp32": expected}


@pytest.mark.parametrize(
    "body, keys, kept",
    [
        # nanoGPT: a causal table of the largest length, cut to the sequence.
        (
            "bias = torch.tril(torch.ones(1024, 1024)).view(1, 1, 1024, 1024)\n"
            "    s = s.masked_fill(bias[:, :, :64, :64] == 0, float('-inf'))",
            64,
            64 * 65 // 2,
        ),
        # GPT-2 in HF: the rows of the last 64 queries over 96 keys (32 of them cached before).
        (
            "bias = torch.tril(torch.ones(1024, 1024, dtype=torch.bool)).view(1, 1, 1024, 1024)\n"
            "    s = torch.where(bias[:, :, 32:96, :96], s, torch.finfo(s.dtype).min)",
            96,
            sum(33 + i for i in range(64)),
        ),
        # gpt-fast: the rows of a causal table at the queries' positions, an arange.
        (
            "causal = torch.tril(torch.ones(96, 96, dtype=torch.bool))\n"
            "    s = s.masked_fill(~causal[None, None, torch.arange(32, 96)], float('-inf'))",
            96,
            sum(33 + i for i in range(64)),
        ),
        (
            "causal = torch.tril(torch.ones(96, 96, dtype=torch.bool))\n"
            "    s = s.masked_fill(~causal.index_select(0, torch.arange(32, 96)), float('-inf'))",
            96,
            sum(33 + i for i in range(64)),
        ),
        # Meta's Llama 3: zeros for the 32 cached keys before the causal block.
        (
            "mask = torch.hstack([torch.zeros((64, 32)), torch.triu(torch.full((64, 64), float('-inf')), 1)])\n"
            "    s = s + mask",
            96,
            sum(33 + i for i in range(64)),
        ),
    ],
)
def test_a_causal_table_cut_to_the_sequence_or_joined_to_cached_keys_is_followed(tmp_path, body, keys, kept):
    # Before 2026-11-27 a mask viewed at other rows and columns than it was made with, or joined to
    # zeros, counted the attention in full (2x for nanoGPT, up to 4x for a decode over a long table).
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(q, k, v):\n    s = q @ k.transpose(-1, -2)\n    {body}\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {
            "q": ([1, 2, 64, 32], "float16"),
            "k": ([1, 2, keys, 32], "float16"),
            "v": ([1, 2, keys, 32], "float16"),
        },
        {"o": ([1, 2, 64, 32], "float16")},
        {},
        [{"axes": {}}],
    )
    assert one(p).macs_by_precision == {"fp16": 2 * 2 * 32 * kept}


@pytest.mark.parametrize(
    "body, share",
    [
        ("torch.topk(x, 8, dim=-1).values[:, :4]", 1.0),
        ("torch.topk(x, 2).indices[:, 0].float()", 1.0),  # the indices need whole rows too
        ("x.cummax(-1).values[:, -1]", 1.0),
        ("x.cummin(1)[0][:, :1]", 1 / 4096),  # a prefix of one column
    ],
)
def test_top_k_and_cumulative_extremes_read_the_rows_or_prefixes_they_need(tmp_path, body, share):
    # Before 2026-11-27 a slice of their result read that share of x (half for top-k, 1/4096 for cummax).
    out = [16, 4] if "[:, :4]" in body else [16, 1] if "[:, :1]" in body else [16]
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x):\n    return {body}\n",
        {"x": ([16, 4096], "float32")},
        {"y": (out, "float32")},
        {},
        [{"axes": {}}],
    )
    assert one(p).bytes_read == pytest.approx(16 * 4096 * 4 * share)


def test_a_chunk_of_queries_over_a_static_cache_reads_the_keys_any_of_them_keeps(tmp_path):
    # Chunked prefill: queries at positions 256..383 over a cache of 1024; keys 0..383 are kept by some
    # query (every query row too), keys 384.. by none.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k_cache, v_cache):\n    q_pos = torch.arange(256, 256 + q.shape[2])\n"
        "    kv_pos = torch.arange(k_cache.shape[2])\n    keep = q_pos[:, None] >= kv_pos[None, :]\n"
        "    s = (q @ k_cache.transpose(-1, -2)).masked_fill(~keep, float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v_cache\n",
        {n: ([1, 4, "C" if n == "q" else 1024, 64], "bfloat16") for n in ("q", "k_cache", "v_cache")},
        {"o": ([1, 4, "C", 64], "bfloat16")},
        {"C": None},
        [{"axes": {"C": 128}}],
    )
    b = one(p)
    kept = sum(256 + i + 1 for i in range(128))
    assert b.macs_by_precision == {"bf16": 4 * kept * 64 * 2}
    assert b.bytes_read == (4 * 128 * 64 + 2 * 4 * 384 * 64) * 2


@pytest.mark.parametrize(
    "keep, kept",
    [
        # Prefix-LM: the first 16 positions see each other, the rest are causal.
        ("(j <= i) | (j < 16)", sum(max(i + 1, 16) for i in range(64))),
        # A sliding window of 8 with 4 sink tokens every query keeps (StreamingLLM).
        (
            "(j <= i) & ((i - j < 8) | (j < 4))",
            sum(len(set(range(max(0, i - 7), i + 1)) | set(range(min(4, i + 1)))) for i in range(64)),
        ),
        # Frames of 16 positions attending to their own and earlier frames (video diffusion).
        ("(i // 16) >= (j // 16)", sum(16 * (i // 16 + 1) for i in range(64))),
        # Four packed documents of 16, their ids made by repeat_interleave: causal within each.
        (
            "(torch.arange(4).repeat_interleave(16)[:, None] == torch.arange(4).repeat_interleave(16)) & (j <= i)",
            4 * 136,
        ),
        # The same ids from 2, not causal (before 2026-11-27, counted in full: 4x).
        (
            "torch.arange(2, 6).repeat_interleave(16)[:, None] == torch.arange(2, 6).repeat_interleave(16)",
            4 * 256,
        ),
        # NeMo's chunked-limited streaming attention: chunks of 6 by truncating division, each seeing its
        # own and the 2 chunks before it (before 2026-11-28, frame differences counted in full).
        (
            "(torch.div(i, 6, rounding_mode='trunc') - torch.div(j, 6, rounding_mode='trunc') >= 0) & "
            "(i // 6 - j // 6 <= 2)",
            sum(0 <= i // 6 - j // 6 <= 2 for i in range(64) for j in range(64)),
        ),
        # Video frames of 16 seeing the frames next to theirs, by the absolute frame difference.
        (
            "(i // 16 - j // 16).abs() <= 1",
            sum(abs(i // 16 - j // 16) <= 1 for i in range(64) for j in range(64)),
        ),
    ],
)
def test_masks_that_combine_a_band_with_columns_or_frames_count_the_positions_they_keep(tmp_path, keep, kept):
    body = f"i = torch.arange(64)[:, None]\n    j = torch.arange(64)[None, :]\n    s = s.masked_fill(~({keep}), float('-inf'))"
    assert masked_attention_macs(tmp_path, body) == 2 * 2 * kept * 32


@pytest.mark.parametrize("union", ["freq[:, None] | time", "time | freq.unsqueeze(-1)"])
def test_a_band_of_rows_made_from_a_vector_joins_a_band_of_columns(tmp_path, union):
    # SpecAugment: a frequency band (a vector made a column) or a time band zeroed; x is read outside both
    # (before 2026-11-28, a vector made a column was not the same region inside `|`: all of x read).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    f, t = torch.arange(x.shape[-2]), torch.arange(x.shape[-1])\n"
        "    freq, time = (f >= 30) & (f < 57), (t >= 100) & (t < 140)\n"
        f"    return x.masked_fill({union}, 0.0)\n",
        {"x": (["B", 128, 300], "float32")},
        {"y": (["B", 128, 300], "float32")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    assert one(p).bytes_read == 2 * (128 - 27) * (300 - 40) * 4


@pytest.mark.parametrize(
    "negated", ["~m[:, None, :]", "m.unsqueeze(1) == 0", "torch.logical_not(m[:, None])"]
)
def test_a_mask_negated_after_a_unit_axis_is_put_between_its_two_keeps_its_region(tmp_path, negated):
    # Ragged prefill as FlashInfer's references write it: scores laid out [q, h, k], a causal bool mask
    # viewed [q, 1, k] and negated (before 2026-11-28, counted in full: 2x).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n    s = torch.einsum('qhd,khd->qhk', q.float(), k.float())\n"
        "    m = torch.ones(q.shape[0], k.shape[0], dtype=torch.bool, device=q.device).tril()\n"
        f"    s = s.masked_fill({negated}, float('-inf'))\n"
        "    return torch.einsum('qhk,khd->qhd', torch.softmax(s, -1), v.float()).to(q.dtype)\n",
        {n: (["L", 4, 32], "bfloat16") for n in "qkv"},
        {"o": (["L", 4, 32], "bfloat16")},
        {"L": None},
        [{"axes": {"L": 64}}],
    )
    assert one(p).macs_by_precision == {"fp32": 64 * 65 // 2 * 4 * 64}


QWEN2_VL_BLOCKS = {
    # HF's Qwen2-VL vision attention: a full minimum with one zero block per image, added to the scores.
    "eager": "    m = torch.full([1, L, L], torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype)\n"
    "    for a, b in zip(CU[:-1], CU[1:]):\n        m[..., a:b, a:b] = 0\n"
    "    s = torch.softmax(q @ k.transpose(-1, -2) / 8.0 + m, dim=-1, dtype=torch.float32)\n"
    "    return s.to(q.dtype) @ v\n",
    # Its SDPA form: a bool mask of the blocks.
    "sdpa": "    m = torch.zeros([1, L, L], device=q.device, dtype=torch.bool)\n"
    "    for a, b in zip(CU[:-1], CU[1:]):\n        m[..., a:b, a:b] = True\n"
    "    return F.scaled_dot_product_attention(q, k, v, attn_mask=m)\n",
    # The same blocks by `torch.block_diag` of ones.
    "block_diag": "    ones = [torch.ones(b - a, b - a, dtype=torch.bool, device=q.device) for a, b in zip(CU[:-1], CU[1:])]\n"
    "    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.block_diag(*ones))\n",
}


@pytest.mark.parametrize("spelling", QWEN2_VL_BLOCKS)
def test_a_mask_of_blocks_set_into_a_constant_counts_the_blocks(tmp_path, spelling):
    # Windows or images of 64, 16, 32 and 8 patches: each attends within itself (before 2026-11-28, the
    # blocks set one by one were not followed and the attention counted in full: 4.5x).
    sizes = [64, 16, 32, 8]
    cu = [sum(sizes[:n]) for n in range(len(sizes) + 1)]
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\nCU = {cu}\ndef run(q, k, v):\n    L = q.shape[-2]\n"
        + QWEN2_VL_BLOCKS[spelling],
        {n: (["B", 4, 120, 32], "bfloat16") for n in "qkv"},
        {"o": (["B", 4, 120, 32], "bfloat16")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    assert one(p).macs_by_precision == {"bf16": pytest.approx(2 * 4 * sum(s * s for s in sizes) * 64)}


@pytest.mark.parametrize(
    "body",
    [
        "s = (q @ k.transpose(-1, -2)).tril()\n    o = s @ v",
        "s = (q @ k.transpose(-1, -2)) * torch.tril(torch.ones(T, T))\n    o = s @ v",
        "decay = torch.tril(torch.exp(rel * g[:, None, None]))\n    o = ((q @ k.transpose(-1, -2)) * decay) @ v",
        "decay = torch.where(i[:, None] >= i[None, :], torch.exp(rel * g[:, None, None]), 0.0)\n"
        "    o = ((q @ k.transpose(-1, -2)) * decay) @ v",
    ],
)
def test_linear_attention_and_retention_masks_applied_by_a_product_count_the_triangle(tmp_path, body):
    # Scores zeroed above the diagonal by tril, by a 0/1 mask or by a decay of one triangle per head
    # (broadcast over the batch): both products count the lower triangle (before 2026-11-27, in full).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v, g):\n    T = q.shape[2]\n    i = torch.arange(T)\n"
        "    rel = (i[:, None] - i[None, :]).float()\n    q, k, v = q.float(), k.float(), v.float()\n"
        f"    {body}\n    return o.bfloat16()\n",
        {
            "q": (["B", 4, 64, 16], "bfloat16"),
            "k": (["B", 4, 64, 16], "bfloat16"),
            "v": (["B", 4, 64, 32], "bfloat16"),
            "g": ([4], "float32"),
        },
        {"o": (["B", 4, 64, 32], "bfloat16")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    assert one(p).macs_by_precision == {"fp32": 2 * 4 * (64 * 65 // 2) * (16 + 32)}


@pytest.mark.parametrize(
    "body",
    [
        # DeepSeek-V3's mask, made in place; gpt-oss's scores scaled and masked in place.
        "mask = torch.full((64, 64), float('-inf')).triu_(1)\n    s = s.float() * 0.125 + mask",
        "mask = torch.triu(torch.full((64, 64), float('-inf')), 1)\n    s = s.float()\n    s *= 0.125\n    s += mask",
        "keep = torch.ones(64, 64, dtype=torch.bool).tril_()\n    s = s.masked_fill(~keep, float('-inf'))",
    ],
)
def test_masks_made_or_applied_in_place_count_the_triangle(tmp_path, body):
    assert masked_attention_macs(tmp_path, body) == 2 * 2 * (64 * 65 // 2) * 32


def test_a_mask_over_queries_and_keys_of_scores_laid_out_with_heads_between_counts_the_triangle(tmp_path):
    # DeepSeek-V3's MLA prefill: scores "bsht" (heads between the query and key axes), the mask unsqueezed
    # to [s, 1, t] and added in place.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n    s_len = q.shape[1]\n"
        "    mask = torch.full((s_len, s_len), float('-inf')).triu_(1)\n"
        "    scores = torch.einsum('bshd,bthd->bsht', q, k).float()\n    scores += mask.unsqueeze(1)\n"
        "    p = scores.softmax(dim=-1).to(q.dtype)\n    return torch.einsum('bsht,bthd->bshd', p, v)\n",
        {n: ([1, "S", 4, 32], "bfloat16") for n in "qkv"},
        {"o": ([1, "S", 4, 32], "bfloat16")},
        {"S": None},
        [{"axes": {"S": 64}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"bf16": 2 * 4 * (64 * 65 // 2) * 32}
    assert b.bytes_read == 3 * 64 * 4 * 32 * 2  # every query and key takes part: read whole


@pytest.mark.parametrize(
    "body",
    [
        # Gemma-2 in HF: a sliding window filled into the causal mask, by where or by masked_fill.
        "cm = torch.triu(torch.full((64, 64), -1e9), 1)\n"
        "    sw = torch.tril(torch.ones_like(cm, dtype=torch.bool), diagonal=-8)\n"
        "    s = s.float() + torch.where(sw, -1e9, cm)",
        "cm = torch.triu(torch.full((64, 64), -1e9), 1)\n"
        "    sw = torch.tril(torch.ones_like(cm, dtype=torch.bool), diagonal=-8)\n"
        "    s = s.float() + cm.masked_fill(sw, -1e9)",
    ],
)
def test_a_window_filled_into_a_causal_mask_counts_the_window(tmp_path, body):
    kept = sum(min(i + 1, 8) for i in range(64))
    assert masked_attention_macs(tmp_path, body) == 2 * 2 * kept * 32


def test_a_causal_mask_and_a_mask_of_data_count_at_most_the_triangle(tmp_path):
    # Document masking with document ids given as an input: which positions they keep is data, but no
    # more than the causal triangle (before 2026-11-27, counted in full).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v, doc):\n    i = torch.arange(q.shape[2])\n"
        "    keep = (doc[:, None] == doc[None, :]) & (i[:, None] >= i[None, :])\n"
        "    s = (q @ k.transpose(-1, -2)).masked_fill(~keep, float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {**{n: ([1, 2, "L", 32], "bfloat16") for n in "qkv"}, "doc": (["L"], "int64")},
        {"o": ([1, 2, "L", 32], "bfloat16")},
        {"L": None},
        [{"axes": {"L": 64}}],
    )
    assert one(p).macs_by_precision == {"bf16": 2 * (64 * 65 // 2) * 64}


def test_an_extended_mask_made_from_a_causal_mask_and_the_attention_mask_input_counts_the_triangle(tmp_path):
    # HF's extended attention mask: (1 - causal * attention_mask) * finfo.min, added to the scores. The
    # attention mask is data: taken as ones, the causal triangle is what is counted (before, all of it).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v, attention_mask):\n    B, H, L, D = q.shape\n    seq_ids = torch.arange(L)\n"
        "    causal = (seq_ids[None, :] <= seq_ids[:, None])[None].expand(B, L, L).to(attention_mask.dtype)\n"
        "    ext = causal[:, None, :, :] * attention_mask[:, None, None, :]\n"
        "    ext = (1.0 - ext) * torch.finfo(q.dtype).min\n"
        "    scores = torch.matmul(q, k.transpose(3, 2)) + ext\n"
        "    return torch.matmul(torch.softmax(scores.float(), -1).to(q.dtype), v)\n",
        {**{n: (["B", 2, 64, 32], "bfloat16") for n in "qkv"}, "attention_mask": (["B", 64], "bfloat16")},
        {"o": (["B", 2, 64, 32], "bfloat16")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    assert one(p).macs_by_precision == {"bf16": 2 * 2 * (64 * 65 // 2) * 64}


def test_a_position_grid_repeated_then_compared_and_a_masked_bias_added_to_the_scores_count_the_triangle(
    tmp_path,
):
    # T5's decoder in HF: `seq_ids[None, None, :].repeat(b, l, 1) <= seq_ids[None, :, None]`, made an
    # extended mask, added to the relative position bias, and the bias added to the scores.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v, bias, attention_mask):\n    B, H, L, D = q.shape\n    seq_ids = torch.arange(L)\n"
        "    causal = (seq_ids[None, None, :].repeat(B, L, 1) <= seq_ids[None, :, None]).to(attention_mask.dtype)\n"
        "    ext = (1.0 - causal[:, None, :, :] * attention_mask[:, None, None, :]) * torch.finfo(q.dtype).min\n"
        "    scores = torch.matmul(q, k.transpose(3, 2)) + (bias + ext)\n"
        "    return torch.matmul(torch.softmax(scores.float(), -1).to(q.dtype), v)\n",
        {
            **{n: (["B", 2, 64, 32], "bfloat16") for n in "qkv"},
            "bias": ([1, 2, 64, 64], "bfloat16"),
            "attention_mask": (["B", 64], "bfloat16"),
        },
        {"o": (["B", 2, 64, 32], "bfloat16")},
        {"B": None},
        [{"axes": {"B": 2}}],
    )
    assert one(p).macs_by_precision == {"bf16": 2 * 2 * (64 * 65 // 2) * 64}


def test_chunked_attention_continuing_from_a_cache_offset_counts_the_chunks_kept(tmp_path):
    # Llama-4's chunked attention for queries at positions 40..55 over keys 0..55, chunks of 16: a query
    # sees the keys of its own chunk up to itself.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n    qp = torch.arange(40, 40 + q.shape[2])\n    kp = torch.arange(k.shape[2])\n"
        "    keep = (qp[:, None] // 16 == kp[None, :] // 16) & (qp[:, None] >= kp[None, :])\n"
        "    s = (q @ k.transpose(-1, -2)).masked_fill(~keep, float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {
            "q": ([1, 2, "Q", 32], "bfloat16"),
            "k": ([1, 2, 56, 32], "bfloat16"),
            "v": ([1, 2, 56, 32], "bfloat16"),
        },
        {"o": ([1, 2, "Q", 32], "bfloat16")},
        {"Q": None},
        [{"axes": {"Q": 16}}],
    )
    kept = sum(1 for i in range(40, 56) for j in range(56) if i // 16 == j // 16 and j <= i)
    assert one(p).macs_by_precision == {"bf16": 2 * kept * 64}


def test_sdpa_with_a_bias_made_causal_by_a_fill_counts_the_triangle(tmp_path):
    # ALiBi folded into one float mask: slopes times distance, -inf filled above the diagonal.
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(q, k, v, slopes):\n    i = torch.arange(q.shape[2])\n"
        "    bias = slopes[:, None, None] * (i[None, :] - i[:, None]).float()\n"
        "    bias = bias.masked_fill(i[None, :] > i[:, None], float('-inf'))\n"
        "    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None].to(q.dtype))\n",
        {**{n: ([1, 2, "L", 32], "bfloat16") for n in "qkv"}, "slopes": ([2], "float32")},
        {"o": ([1, 2, "L", 32], "bfloat16")},
        {"L": None},
        [{"axes": {"L": 64}}],
    )
    assert one(p).macs_by_precision == {"bf16": 2 * (64 * 65 // 2) * 64}


def needed(problem) -> dict[str, float]:
    from solgym.opcount import count

    return count(problem, problem.workloads[0]).needed_read_elements


def test_every_operand_of_a_contraction_is_needed_in_full(tmp_path):
    assert needed(gemm(tmp_path, m=64)) == {"A": 64 * 4096, "B": 4096 * 4096}


def test_a_factor_that_may_be_zero_makes_the_other_factor_not_needed(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, keep, y):\n    return x * keep, torch.relu(y) * x\n",
        {"x": (["N", 64], "bfloat16"), "keep": (["N", 64], "bool"), "y": (["N", 64], "bfloat16")},
        {"a": (["N", 64], "bfloat16"), "b": (["N", 64], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 8}}],
    )
    c = needed(p)
    # x is multiplied by a mask and by a rectified tensor (both may be zero), so no element of x is
    # provably needed; the mask and y, whose every element decides an output, are.
    assert c == {"x": 0.0, "keep": 8 * 64, "y": 8 * 64}


def test_where_needs_only_its_condition_and_discarded_work_needs_nothing(tmp_path):
    p = make_problem(
        tmp_path,
        "import torch\ndef run(c, a, b, w):\n    unused = a @ w\n    return torch.where(c > 0, a, b)\n",
        {
            "c": (["N", 32], "float32"),
            "a": (["N", 32], "float32"),
            "b": (["N", 32], "float32"),
            "w": ([32, 32], "float32"),
        },
        {"o": (["N", 32], "float32")},
        {"N": None},
        [{"axes": {"N": 4}}],
    )
    assert needed(p) == {"c": 4 * 32, "a": 0.0, "b": 0.0, "w": 0.0}


def test_disjoint_slices_of_an_input_add_up_and_overlapping_ones_do_not(tmp_path):
    p = make_problem(
        tmp_path,
        "def run(x):\n    return x[:, :32] * 2.0, x[:, 32:] + 1.0, x[:, 16:48].exp()\n",
        {"x": (["N", 64], "float32")},
        {"a": (["N", 32], "float32"), "b": (["N", 32], "float32"), "c": (["N", 32], "float32")},
        {"N": None},
        [{"axes": {"N": 8}}],
    )
    # The two halves are disjoint and cover x; the middle slice overlaps both and adds nothing.
    assert needed(p) == {"x": 8 * 64}
    assert one(p).bytes_read == 8 * 64 * 4


def test_custom_inputs_are_not_assumed_free_of_zeros_on_meta(tmp_path):
    reference = (
        "import torch\ndef get_inputs(axes, device):\n"
        "    return {'x': torch.randn(axes['N'], 16), 'w': torch.randn(16, 16)}\n"
        "def run(x, w):\n    return x @ w\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["N", 16], "float32"), "w": ([16, 16], "float32")},
        {"o": (["N", 16], "float32")},
        {"N": None},
        [{"axes": {"N": 4}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    # Either might hold zero rows or columns for all a meta trace knows, so neither is provably needed;
    # on data, values without a zero make them so.
    assert needed(p) == {"x": 0.0, "w": 0.0}
    assert count_on_data(p, p.workloads[0]).needed_read_elements == {"x": 4 * 16, "w": 16 * 16}


def test_index_add_on_data_sums_as_torch_does():
    from solgym.opcount import _index_add

    target = torch.randn(6, 5, 4)
    index = torch.tensor([0, 3, 3, 1])
    source = torch.randn(6, 4, 4)
    expected = target.clone().index_add_(1, index, source, alpha=0.5)
    assert torch.allclose(_index_add("index_add", (target, 1, index, source), {"alpha": 0.5}), expected)
    assert torch.allclose(_index_add("index_add_", (target, 1, index, source, 0.5), {}), expected)
    assert torch.equal(target, expected)  # in place


LOOKUP = (
    "import torch\ndef run(ids, table):\n"
    "    t = table{view}\n"
    "    rows = [t[int(i) % t.shape[0]] for i in ids.unique()]\n"
    "    return torch.stack(rows).sum(0)\n"
)


@pytest.mark.parametrize("view", ["", ".view(-1).view(table.shape)"])
def test_a_large_weight_traced_on_data_counts_the_rows_read_whether_or_not_it_can_be_a_window(tmp_path, view):
    from solgym.opcount import _NOISE_BLOCK

    rows = _NOISE_BLOCK // 1024 + 8  # more elements than the noise block: made as a window
    p = make_problem(
        tmp_path,
        LOOKUP.format(view=view),
        {"ids": (["N"], "int64"), "table": ([rows, 1024], "bfloat16")},
        {"o": ([1024], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 3}}],
    )
    c = count_on_data(p, p.workloads[0])
    ids = torch.unique(make_inputs(p, p.workloads[0])["ids"] % rows)
    # A window cannot be viewed flat: the reference is then traced again on copies, with the same counts.
    assert c.read_bytes["table"] == ids.numel() * 1024 * 2
    assert 1024 * 2 <= c.needed_read_bytes["table"] <= c.read_bytes["table"]


def huge_weight(tmp_path: Path, reference: str) -> object:
    """A data-dependent reference `run(n, w)` with 256 GiB of weight `w`."""
    return make_problem(
        tmp_path,
        reference,
        {"n": (["N"], "int32"), "w": ([1 << 22, 1 << 14], "float32")},
        {"o": ([1 << 14], "float32")},
        {"N": None},
        [{"axes": {"N": 2}}],
    )


def test_a_data_trace_too_large_for_this_machine_keeps_the_large_tensors_on_meta(tmp_path):
    p = huge_weight(
        tmp_path, "import torch\ndef run(n, w):\n    return w[: int(n.sum()) % 1000 + 1].sum(0)\n"
    )
    counted = count_on_data(p, p.workloads[0])
    assert any("counted on meta, the rest on data" in n and "256.0 GiB" in n for n in counted.notes)
    from solgym.opcount import mixed_inputs

    inputs, _, _ = mixed_inputs(p, p.workloads[0])
    assert inputs["w"].device.type == "meta"
    assert counted.read_bytes["w"] == (int(inputs["n"].sum()) % 1000 + 1) * (1 << 14) * 4


def test_a_data_trace_too_large_for_this_machine_fails_with_the_sizes(tmp_path):
    from solgym.problem import ProblemError

    p = huge_weight(
        tmp_path, "import torch\ndef run(n, w):\n    return w[: int(w.sum()) % 7].sum(0) + n.sum()\n"
    )
    # A value of the large tensor decides a shape: neither data nor meta can count it here.
    with pytest.raises(ProblemError, match=r"take 256\.0 GiB, more than the .*on meta, it fails"):
        count_on_data(p, p.workloads[0])


def test_a_zero_bias_on_data_leaves_the_product_needed(tmp_path):
    reference = (
        "import torch\ndef get_inputs(axes, device):\n"
        "    return {'x': torch.randn(axes['N'], 16), 'w': torch.randn(8, 16), 'b': torch.zeros(8)}\n"
        "def run(x, w, b):\n    return torch.nn.functional.linear(x, w, b)\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["N", 16], "float32"), "w": ([8, 16], "float32"), "b": ([8], "float32")},
        {"o": (["N", 8], "float32")},
        {"N": None},
        [{"axes": {"N": 4}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    # The bias holds zeros but no infinity: it makes neither factor moot, and is needed itself.
    assert count_on_data(p, p.workloads[0]).needed_read_elements == {"x": 64, "w": 128, "b": 8}


QUANTIZE = """import torch

def get_inputs(axes, device):
    rows = axes["rows"]
    x = torch.randn(rows, 64, device=device)
    w = torch.randn(1 << 21, device=device) * 0.5  # over the noise block: a deterministic draw
    scale = torch.tensor(6.0, device=w.device) / w.abs().amax()
    codes = torch.zeros_like(w, dtype=torch.uint8)
    codes[w * scale > 1.0] = 1
    codes[w * scale > 3.0] = 2
    twin = torch.randn(1 << 21, device=device) * 0.5  # the same ops on the same noise: an equal tensor
    doubled = w * 2.0
    if rows > 100:  # a var-sized value that needs an intermediate no smaller size needed
        x = x + doubled[: rows * 64].view(rows, 64)
    return {"x": x, "codes": codes, "scale": scale.item(), "twin": twin}

def run(x, codes, scale, twin):
    if bool((codes == 2).any()):
        x = x * scale
    return x.sum(-1) + twin[: x.shape[0]]
"""


def quantize(tmp_path: Path) -> object:
    return make_problem(
        tmp_path,
        QUANTIZE,
        {
            "x": (["rows", 64], "float32"),
            "codes": ([1 << 21], "uint8"),
            "scale": (None, "float32"),
            "twin": ([1 << 21], "float32"),
        },
        {"o": (["rows"], "float32")},
        {"rows": None},
        [{"axes": {"rows": 8}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )


def _identical(a: dict, b: dict) -> bool:
    for name, x in a.items():
        y = b[name]
        if not isinstance(x, torch.Tensor):
            if x != y:
                return False
        elif (x.dtype, x.shape, x.stride()) != (y.dtype, y.shape, y.stride()) or not torch.equal(x, y):
            return False
    storages = [v.untyped_storage()._cdata for v in a.values() if isinstance(v, torch.Tensor)]
    return len(set(storages)) == len(storages)


def test_an_entry_point_does_its_deterministic_work_once_per_problem_with_the_same_inputs(
    tmp_path, monkeypatch
):
    from solgym import opcount

    p = quantize(tmp_path)
    drawn = []
    noise = opcount.noise
    monkeypatch.setattr(opcount, "noise", lambda *a, **k: drawn.append(a[0]) or noise(*a, **k))
    monkeypatch.setattr(opcount, "_ENTRY_MEMO", {})

    def plain(rows: int) -> dict:
        with opcount._CheapRandom():
            return make_inputs(p, p.workloads[0].with_axes(rows=rows))

    for rows, again in ((8, True), (16, False), (200, True), (300, False)):
        drawn.clear()
        got = opcount.data_inputs(p, p.workloads[0].with_axes(rows=rows))
        # The first size draws the weight; later ones do not, except one that needs an intermediate that
        # no earlier size needed (it runs again in full, and later sizes find it kept).
        assert bool(drawn) == again
        assert _identical(got, plain(rows))


def test_counts_on_inputs_from_a_deferred_entry_point_run_equal_those_on_plain_inputs(tmp_path, monkeypatch):
    from solgym import opcount

    p = quantize(tmp_path)
    monkeypatch.setattr(opcount, "_ENTRY_MEMO", {})
    w = p.workloads[0].with_axes(rows=32)
    opcount.data_inputs(p, p.workloads[0])
    deferred = opcount.trace(p, opcount.data_inputs(p, w), with_data=True)
    with opcount._CheapRandom():
        plain = opcount.trace(p, make_inputs(p, w), with_data=True)
    assert dataclasses.asdict(deferred) == dataclasses.asdict(plain)
    assert deferred.read_bytes["codes"] == 1 << 21 and deferred.read_bytes["twin"] == 32 * 4


def test_a_product_stand_in_has_the_shape_of_the_product_and_refuses_operands_that_do_not_fit():
    from solgym.opcount import _leaves, _product_shape

    aten = torch.ops.aten
    a, b = torch.empty(3, 5), torch.empty(5, 7)
    assert _product_shape(aten.mm.default, (a, b), {}) == (3, 7)
    assert _product_shape(aten.addmm.default, (torch.empty(7), a, b), {}) == (3, 7)
    assert _product_shape(aten.bmm.default, (torch.empty(2, 3, 5), torch.empty(2, 5, 7)), {}) == (2, 3, 7)
    assert _product_shape(aten.mm.default, (a, a), {}) is None  # the meta run raises as mm would
    assert _product_shape(aten.addmm.default, (torch.empty(4), a, b), {}) is None
    assert _product_shape(aten.bmm.default, (torch.empty(2, 3, 5), torch.empty(3, 5, 7)), {}) is None
    assert _leaves((1, [a, (b, None)], ())) == [1, a, b, None]


MIXED = """import torch

def run(x, w, n):
    if int(n.sum().item()) < 0:  # reads a value: counted on data
        return x.sum(-1)
    return (x @ x.T).sum(-1) + (x @ w).sum(-1)
"""


@pytest.mark.parametrize("mixed", [False, True])
def test_workloads_whose_counts_lie_on_one_line_of_an_axis_share_their_traces(tmp_path, monkeypatch, mixed):
    from solgym import opcount

    if mixed:  # rows^2 and rows terms in one count: no line or power law through three sizes
        p = make_problem(
            tmp_path,
            MIXED,
            {"x": (["rows", 64], "bfloat16"), "w": ([64, 32], "bfloat16"), "n": (["N"], "int64")},
            {"o": (["rows"], "bfloat16")},
            {"rows": None, "N": None},
            [{"axes": {"rows": 4000, "N": 2}}],
        )
        axes, sizes, budget = {"N": 2}, (4000, 3600, 4800, 4400), 1 << 16
    else:
        p = segments(tmp_path, 40000)
        axes, sizes, budget = {"n_seg": 64}, (40000, 36000, 48000, 44000), 1 << 20
    monkeypatch.setattr(opcount, "_LINES", {})
    monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
    traced = []
    trace = opcount.trace
    # Traces on data (each shrunk size first tries meta tensors, which this reference rejects at once).
    monkeypatch.setattr(opcount, "trace", lambda *a, **k: traced.append(k["with_data"]) or trace(*a, **k))
    shared = {}
    for rows in sizes:
        traced.clear()
        shared[rows] = opcount.count_on_data(p, p.workloads[0].with_axes(rows=rows, **axes), max_bytes=budget)
        # Two traces for the first; one for the second, whose first trace is on the line of the first
        # two; none once three traces make the line. Where a count is on no line, each workload takes its
        # own pair, and a third size, as the two fits of rows^2 + rows disagree.
        assert sum(traced) == (3 if mixed else {0: 2, 1: 1}.get(sizes.index(rows), 0))
    for rows in sizes:  # each on its own pair
        monkeypatch.setattr(opcount, "_LINES", {})
        alone = opcount.count_on_data(p, p.workloads[0].with_axes(rows=rows, **axes), max_bytes=budget)
        for field in ("macs", "read_bytes", "needed_read_bytes"):
            assert getattr(shared[rows], field) == pytest.approx(getattr(alone, field), rel=1e-9)
        assert shared[rows].flops_other == pytest.approx(alone.flops_other, rel=1e-9)


TOKENS = """import torch

def run(x, w):
    flat = x.reshape(-1, x.shape[-1])  # batch and sequence flattened into tokens first
    keep = (flat[:, 0] > -1e30).nonzero().squeeze(-1)  # reads values: counted on data (keeps every token)
    return (flat[keep] @ w).reshape(x.shape[0], x.shape[1], w.shape[1])
"""

PAIRS = """import torch

def run(x, w):
    keep = (x[..., 0] > -1e30).nonzero()  # reads values: counted on data
    scores = x @ x.transpose(1, 2)  # batch x seq x seq: not a function of batch * seq
    return (scores @ x) @ w
"""


def batch_by_seq(tmp_path: Path, reference: str, folder: str) -> object:
    return make_problem(
        tmp_path,
        reference,
        {"x": (["B", "S", 64], "float32"), "w": ([64, 32], "float32")},
        {"o": (["B", "S", 32], "float32")},
        {"B": None, "S": None},
        [{"axes": {"B": 8, "S": 1024}}],
        folder=folder,
    )


@pytest.mark.parametrize("reference", [TOKENS, PAIRS])
def test_counts_that_follow_the_product_of_the_axes_share_traces_across_splits(
    tmp_path, monkeypatch, reference
):
    from solgym import opcount

    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    p = batch_by_seq(tmp_path, reference, folder=f"split{len(reference)}")
    traced = []
    trace_on_data = opcount._trace_on_data
    monkeypatch.setattr(
        opcount, "_trace_on_data", lambda pr, w, **k: traced.append(dict(w.axes)) or trace_on_data(pr, w, **k)
    )
    splits = [(8, 1024), (16, 512), (4, 2048), (32, 256)]
    counted = {}
    for b, s in splits:
        traced.clear()
        counted[b, s] = opcount.count_on_data(p, p.workloads[0].with_axes(B=b, S=s), max_bytes=1 << 20)
    by_product = ["product of the var axes" in " ".join(c.notes) for c in counted.values()]
    if reference is TOKENS:
        # Two splits agree at two products (4 x 512 and 8 x 256; 2 x 256 and 4 x 128), three products
        # lie on one line below 8192 tokens: the last split is not traced at all, and its count is exact.
        assert by_product == [False, False, False, True] and traced == []
        for (b, s), c in counted.items():
            assert c.macs == {"fp32": pytest.approx(b * s * 64 * 32, rel=1e-12)}
    else:
        # batch x seq^2 MACs differ between splits of one product: never fitted along the product.
        assert not any(by_product) and traced
        for (b, s), c in counted.items():  # the fits through its own pairs err low, never high
            assert c.macs["fp32"] <= b * s * s * 64 * 2 + b * s * 64 * 32


def test_shrunk_pairs_scale_every_shrunk_axis_by_the_ratio_it_names(tmp_path):
    from solgym.opcount import _shrunk_pairs

    p = batch_by_seq(tmp_path, TOKENS, folder="odd_sizes")
    w = p.workloads[0].with_axes(B=64, S=613)  # 613 is prime: halving it is never exact
    pairs = _shrunk_pairs(p, w, 1 << 20, {})
    assert pairs
    for pair in pairs:
        for small, t in pair:
            ratios = {k: small.axes[k] / w.axes[k] for k in w.axes if small.axes[k] != w.axes[k]}
            assert set(ratios.values()) == {t}, (small.axes, t)


def test_the_entry_point_memo_holds_at_most_its_budget_dropping_the_least_recently_used():
    from solgym.opcount import _EntryMemo

    memo = _EntryMemo(budget=3000)
    a, b, c = (torch.zeros(250) for _ in range(3))  # 1000 bytes each
    memo.keep(b"a", a)
    memo.keep(b"a base", a, base=True)  # the same storage counts once
    memo.keep(b"b", b)
    assert memo.nbytes == 2000
    assert memo.lookup(b"a") is a  # now the most recently used
    memo.keep(b"c", c)
    memo.keep(b"d", torch.zeros(250))  # over budget: b goes first
    assert memo.lookup(b"b") is None and memo.lookup(b"a") is a and memo.nbytes <= 3000
    a.add_(1)  # written since kept: not taken
    assert memo.lookup(b"a") is None


def test_deriving_a_whole_problem_releases_the_kept_inputs(tmp_path):
    from solgym import opcount

    problem = gemm(tmp_path)
    opcount._entry_memo(problem)  # as a data trace of its inputs leaves it
    assert opcount._ENTRY_MEMO
    derive_all(problem, get_profile("h100-sxm"))
    assert not opcount._ENTRY_MEMO


MULTIPLE_OF_64 = """import torch

def run(x, n):
    if int(n.sum().item()) < 0:  # reads a value: counted on data
        return x.sum(-1)
    if x.shape[0] % 64:  # checked after reading the data, as quantizing references do
        raise ValueError(f"rows must be a multiple of 64, got {x.shape[0]}")
    return (x * 2.0).sum(-1)
"""


def multiple_of_64(tmp_path: Path, rows: int, described: bool) -> object:
    p = make_problem(
        tmp_path,
        MULTIPLE_OF_64,
        {"x": (["rows", 64], "float32"), "n": (["N"], "int64")},
        {"o": (["rows"], "float32")},
        {"rows": None, "N": None},
        [{"axes": {"rows": rows, "N": 2}}],
        folder=f"multiple{rows}{described}",
    )
    if described:
        file = p.path / "definition.json"
        definition = json.loads(file.read_text())
        definition["axes"]["rows"]["description"] = "Rows, must be multiple of 64"
        file.write_text(json.dumps(definition))
    return load_problem(p.path)


@pytest.mark.parametrize("rows", [1024, 192])
def test_a_described_multiple_of_n_steers_the_shrunk_sizes(tmp_path, monkeypatch, rows):
    from solgym import opcount

    rejected = {}
    for described in (False, True):
        p = multiple_of_64(tmp_path, rows, described)
        assert opcount.divisor_hints(p) == ({"rows": 64} if described else {})
        monkeypatch.setattr(opcount, "_LINES", {})
        monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
        tried = []
        trace_on_data = opcount._trace_on_data

        def traced(problem, workload, *a, _tried=tried, _trace=trace_on_data, **k):
            _tried.append(workload.axes["rows"])
            return _trace(problem, workload, *a, **k)

        monkeypatch.setattr(opcount, "_trace_on_data", traced)
        w = p.workloads[0]
        # Only sizes under 40 rows fit the budget: at 1024 rows the search would start with sizes that
        # break the rule; at 192 every halving breaks it.
        counted = opcount.count_on_data(p, w, max_bytes=10_000)
        rejected[described] = [r for r in tried if r % 64]
        # Whatever was tried, the counts are those of the workload itself.
        full = opcount.count_on_data(p, w, max_bytes=1 << 30)
        assert full.traced_on == "cpu data, scaled x1"
        assert counted.flops_other == pytest.approx(full.flops_other, rel=1e-9)
        assert counted.read_bytes == pytest.approx(full.read_bytes, rel=1e-9)
    assert rejected[False], "without the description the search runs into the rule"
    # With it: sizes that keep to the rule first; once the reference bears the rule out, no other size
    # against it is tried.
    assert len(rejected[True]) <= 1 < len(rejected[False])


GUARDED = (
    "import torch\ndef run(x, w):\n"
    "    top = torch.tensor(448.0, device=x.device)\n"
    "    scale = torch.clamp(top / x.abs().amax().float(), max=torch.tensor(3.0e38, device=x.device))\n"
    "    if scale == 0:\n"
    "        scale = torch.ones_like(scale)\n"
    "{loop}"
    "    return (x * scale) @ w\n"
)


def guarded(tmp_path: Path, loop: str = "", rows: int = 64, reference: str | None = None) -> object:
    """A problem of x (M x 32) and w (32 x 16) whose reference reads a value: GUARDED's by default."""
    return make_problem(
        tmp_path,
        reference or GUARDED.format(loop=loop),
        {"x": (["M", 32], "float32"), "w": ([32, 16], "float32")},
        {"o": (["M", 16], "float32")},
        {"M": None},
        [{"axes": {"M": rows}}],
    )


def test_a_guard_that_follows_from_how_the_value_was_made_needs_no_data(tmp_path):
    from solgym.opcount import count

    p = guarded(tmp_path)
    counted = count(p, p.workloads[0])
    assert counted.traced_on == "meta"
    assert any("value ranges" in n for n in counted.notes)
    on_data = count_on_data(p, p.workloads[0])
    assert counted.macs == on_data.macs and counted.read_bytes == on_data.read_bytes
    assert counted.flops_other == pytest.approx(on_data.flops_other)


def test_nan_and_infinity_guards_on_inputs_need_no_data(tmp_path):
    # Random inputs hold no NaN or infinity: `isnan(x).any()`, `isfinite(x).all()` (which torch writes as
    # `abs(x) != inf` and `x == x`) and `x != x` are decided on meta.
    from solgym.opcount import count

    reference = (
        "import torch\ndef run(x, w):\n"
        "    if torch.isnan(x).any() or not torch.isfinite(w).all() or (x != x).any() or torch.isinf(x).any():\n"
        "        raise ValueError('bad input')\n"
        "    return torch.nan_to_num(x @ w)\n"
    )
    p = guarded(tmp_path, reference=reference)
    counted = count(p, p.workloads[0])
    assert counted.traced_on == "meta"
    assert counted.macs == {"fp32": 64 * 32 * 16}


def test_a_guard_on_a_value_no_range_decides_still_needs_data(tmp_path):
    from solgym.opcount import count

    reference = (
        "import torch\ndef run(x, w):\n    if x.sum() > 0:\n        return x @ w\n    return -(x @ w)\n"
    )
    p = guarded(tmp_path, reference=reference)
    counted = count(p, p.workloads[0])
    assert "data" in counted.traced_on and counted.notes[0].endswith("traced on data")


def test_custom_inputs_carry_the_ranges_their_entry_point_gives_them(tmp_path):
    from solgym.opcount import count

    reference = (
        "import torch\ndef get_inputs(axes, device):\n"
        "    x = torch.randn(axes['N'], 16, device=device)\n"
        "    return {'x': x, 's': x.abs().amax().item()}\n"
        "def run(x, s):\n"
        "    if x.abs().amax() == float('inf'):\n"
        "        raise ValueError('infinite input')\n"
        "    return x * s\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["N", 16], "float32"), "s": (None, "float32")},
        {"o": (["N", 16], "float32")},
        {"N": None},
        [{"axes": {"N": 8}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    counted = count(p, p.workloads[0])
    # randn is finite, so the guard is decided; the scale is read from a tensor no range pins down.
    assert counted.traced_on == "meta"
    assert any("counted with 1.0" in n for n in counted.notes)
    assert counted.read_bytes == {"x": 8 * 16 * 4}


READ_GUARD = "import torch\ndef run({args}):\n    if int(n.sum().item()) < 0:\n        return {first}\n"
BENT = {
    # The tokens after a fixed prefix (S - 25): affine with a negative constant; the power law through two
    # shrunk sizes overshot 4.3x at 8192 (before 2026-11-28).
    "prefix": (
        READ_GUARD.format(args="x, w, n", first="x[:1]") + "    return x[:, 25:].transpose(0, 1) @ w\n",
        {"x": ([64, "S"], "float32"), "w": ([64, 32], "float32"), "n": ([8], "int64")},
        {"y": (["T", 32], "float32")},
        {"S": None, "T": "S - 25"},
        {"S": 8192},
        (8192 - 25) * 64 * 32,
    ),
    # A chunk of queries against a fixed cache, bottom-right causal: concave in the queries (+12.5% before).
    "chunk": (
        READ_GUARD.format(args="q, k, n", first="q")
        + "    keep = torch.arange(1024)[None, :] <= torch.arange(q.shape[0])[:, None] + (1024 - q.shape[0])\n"
        "    return torch.softmax((q @ k.T).masked_fill(~keep, float('-inf')), -1) @ k\n",
        {"q": (["S", 32], "float32"), "k": ([1024, 32], "float32"), "n": ([8], "int64")},
        {"o": (["S", 32], "float32")},
        {"S": None},
        {"S": 512},
        sum(1024 - 512 + i + 1 for i in range(512)) * 32 * 2,
    ),
}


@pytest.mark.parametrize("shape", BENT)
def test_counts_the_two_fits_disagree_on_take_a_quadratic_through_a_third_size(tmp_path, monkeypatch, shape):
    from solgym import opcount

    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    reference, inputs, outputs, axes, size, macs = BENT[shape]
    p = make_problem(tmp_path, reference, inputs, outputs, axes, [{"axes": size}])
    counted = opcount.count(p, p.workloads[0], max_bytes=1 << 16)
    assert counted.traced_on.startswith("cpu data at var axes")
    assert any("by a quadratic through" in n for n in counted.notes)
    assert counted.macs == {"fp32": pytest.approx(macs, rel=1e-9)}


def test_a_count_random_data_bends_down_is_not_extrapolated_by_its_quadratic(tmp_path, monkeypatch):
    """Rows a threshold on random data selects grow linearly in the rows, but at a few dozen rows they bend
    either way by chance. A quadratic through three such sizes extrapolated 1000x went to zero (0.2% of the
    hand count); one that bends below the line through the two larger sizes is taken only where it passes
    through a fourth. Where it does not, a workload that fits the trace budget is traced as is."""
    from solgym import opcount

    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    reference = (
        READ_GUARD.format(args="x, w, n", first="x") + "    sel = torch.nonzero(x[:, 0] > 1.0).squeeze(1)\n"
        "    out = torch.zeros(x.shape[0], w.shape[1], dtype=x.dtype)\n"
        "    out[sel] = x[sel] @ w\n"
        "    return out\n"
    )
    inputs = {"x": (["T", 16], "float32"), "w": ([16, 16], "float32"), "n": ([8], "int64")}
    p = make_problem(
        tmp_path, reference, inputs, {"y": (["T", 16], "float32")}, {"T": None}, [{"axes": {"T": 65536}}]
    )
    expected = 0.158655 * 65536 * 16 * 16  # P(z > 1) of the rows, each a 16 x 16 product
    # Where the workload is too large to trace as is, the two fits stand.
    monkeypatch.setattr(opcount, "DATA_TRACE_UNFITTED_BYTES", 1 << 14)
    counted = opcount.count(p, p.workloads[0], max_bytes=1 << 14)
    assert counted.traced_on.startswith("cpu data at var axes")
    assert any(
        "taken only if it passes through" in n and "the larger of the two fits" in n for n in counted.notes
    )
    assert 0.8 < counted.macs["fp32"] / expected < 1.25
    # Where it is not, it is traced as is: its own draws' rows.
    monkeypatch.setattr(opcount, "DATA_TRACE_UNFITTED_BYTES", 1 << 28)
    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    counted = opcount.count(p, p.workloads[0], max_bytes=1 << 14)
    assert counted.traced_on == "cpu data, scaled x1"
    assert any("follow no fit" in n for n in counted.notes)
    assert 0.98 < counted.macs["fp32"] / expected < 1.02


def test_indices_from_a_blob_are_counted_on_their_data(tmp_path):
    """A gather by ids from a safetensors blob reads the distinct rows the ids name, as their data shows: on
    meta tensors every lookup would count as its own row (512 lookups of one id, 512 rows)."""
    from safetensors.torch import save_file

    p = make_problem(
        tmp_path,
        "import torch\ndef run(ids, w):\n    return w[ids]\n",
        {"ids": (["n"], "int64"), "w": ([1024, 256], "bfloat16")},
        {"y": (["n", 256], "bfloat16")},
        {"n": None},
        [{"axes": {"n": 512}}],
    )
    (p.path / "blob").mkdir()
    save_file({"ids": torch.arange(512) % 4}, str(p.path / "blob" / "ids.safetensors"))
    lines = json.loads((p.path / "workload.jsonl").read_text())
    lines["inputs"]["ids"] = {"type": "safetensors", "path": "blob/ids.safetensors", "tensor_key": "ids"}
    (p.path / "workload.jsonl").write_text(json.dumps(lines))
    p = load_problem(p.path)
    counted = count(p, p.workloads[0])
    assert counted.read_bytes == {"ids": 512 * 8, "w": 4 * 256 * 2}
    assert "blobs" in counted.notes[0]


def test_a_trace_on_data_that_outgrows_memory_goes_mixed_then_says_so(tmp_path, monkeypatch):
    """The recorder keeps every tensor a trace on data makes. Past the machine's trace budget it stops, and
    the trace is made again with its tensors over MIXED_BYTES on meta (the same counts); where that holds
    too much as well, the workload fails with the sizes rather than the machine running out of memory."""
    from solgym import opcount

    reference = (
        READ_GUARD.format(args="x, n", first="x")
        + "    y = torch.exp(x[:, None] * x[None, :])  # N x N, 4 MB\n"
        + "    return y.sum(1)\n"
    )
    inputs = {"x": (["N"], "float32"), "n": ([8], "int64")}
    p = make_problem(
        tmp_path, reference, inputs, {"o": (["N"], "float32")}, {"N": None}, [{"axes": {"N": 1024}}]
    )
    unlimited = count_on_data(p, p.workloads[0])
    monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
    monkeypatch.setattr(opcount, "MIXED_BYTES", 1 << 20)
    monkeypatch.setattr(opcount, "trace_budget", lambda: 2 << 20)
    counted = count_on_data(p, p.workloads[0])
    assert any("held" in n and "on meta" in n for n in counted.notes)
    assert (counted.read_bytes, counted.write_bytes) == (unlimited.read_bytes, unlimited.write_bytes)
    assert counted.flops_other == unlimited.flops_other
    monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
    monkeypatch.setattr(opcount, "trace_budget", lambda: 4096)
    with pytest.raises(
        ProblemError, match="held more CPU tensors than the 0.0 GiB this machine allows a trace.*more memory"
    ):
        count_on_data(p, p.workloads[0])


def test_a_long_loop_after_a_decided_read_is_counted_shrunk(tmp_path, monkeypatch):
    from solgym import opcount

    loop = "    for i in range(x.shape[0]):\n        x = x * 1.0\n"
    p = guarded(tmp_path, loop, rows=4000)
    monkeypatch.setattr(opcount, "META_OPS_WITH_READS", 200)
    monkeypatch.setattr(opcount, "_LINES", {})
    monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
    counted = opcount.count(p, p.workloads[0], max_bytes=1 << 14)
    assert counted.traced_on.startswith("meta at var axes")
    assert counted.macs["fp32"] == pytest.approx(4000 * 32 * 16, rel=0.02)
    # The loop's products (rows x rows x 32, with a linear term) are fitted, erring low, never high.
    assert 0.5 * 4000 * 4000 * 32 < counted.flops_other <= 4000 * 4000 * 32 + 2 * 4000 * 32


def test_a_reference_that_needs_values_is_not_tried_on_meta_again_at_shrunk_sizes(tmp_path, monkeypatch):
    from solgym import opcount

    p = routed_problem(tmp_path, 8, [4096])
    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    monkeypatch.setattr(opcount, "_NEEDS_VALUES", set())
    on_meta = []
    count_on_meta = opcount.count_on_meta
    monkeypatch.setattr(
        opcount, "count_on_meta", lambda pr, w: on_meta.append(dict(w.axes)) or count_on_meta(pr, w)
    )
    counted = opcount.count(p, p.workloads[0], max_bytes=1 << 14)
    # `torch.where` on the routing fails on meta at full size; the shrunk sizes go straight to data.
    assert on_meta == [{"T": 4096}]
    assert counted.traced_on.startswith("cpu data at var axes")
    assert counted.macs == {"fp32": pytest.approx(4096 * 32 * 16, rel=1e-9)}


ROUTED = (
    "import torch\n"
    "def get_inputs(axes, device):\n"
    "    t, e = axes['T'], axes['E']\n"
    "    return {'x': torch.randn(t, 32, device=device), 'idx': torch.randint(0, e, (t,), device=device),\n"
    "            'w': torch.randn(e, 32, 16, device=device) * 0.1}\n"
    "def run(x, idx, w):\n"
    "    out = torch.zeros(x.shape[0], w.shape[2], device=x.device)\n"
    "    for e in range(w.shape[0]):\n"
    "        rows = torch.where(idx == e)[0]\n"
    "        if rows.numel() == 0:\n"
    "            continue\n"
    "        out.index_add_(0, rows, x[rows] @ w[e])\n"
    "    return out\n"
)


def routed_problem(tmp_path: Path, experts: int, tokens: list[int]) -> object:
    """ROUTED with E experts, one workload per token count, inputs from its entry point."""
    return make_problem(
        tmp_path,
        ROUTED,
        {"x": (["T", 32], "float32"), "idx": (["T"], "int64"), "w": (["E", 32, 16], "float32")},
        {"o": (["T", 16], "float32")},
        {"T": None, "E": experts},
        [{"axes": {"T": t}, "kind": "custom"} for t in tokens],
        custom_inputs_entrypoint="get_inputs",
    )


def test_random_reads_that_every_fit_caps_do_not_keep_a_line_from_being_shared(tmp_path, monkeypatch):
    from solgym import opcount

    for cache in ("_LINES", "_SHRUNK_TRACES", "_SPLITS"):
        monkeypatch.setattr(opcount, cache, {})
    sizes = (2048, 2112, 2176, 2240, 2304)
    p = routed_problem(tmp_path, 256, list(sizes))
    traced = []
    trace_on_data = opcount._trace_on_data
    monkeypatch.setattr(
        opcount, "_trace_on_data", lambda pr, w, **k: traced.append(w.axes["T"]) or trace_on_data(pr, w, **k)
    )
    counted = [opcount.count(p, w, max_bytes=1 << 14) for w in p.workloads]
    # At 32-72 shrunk tokens the routing picks some of the 256 experts, at random: their weights lie on no
    # line, but every fit through them reaches all of w at 2048 tokens and more. The MACs are on a line.
    assert traced == [64, 32, 66]
    for t, c in zip(sizes, counted, strict=True):
        assert c.read_bytes["w"] == 256 * 32 * 16 * 4
        assert c.macs == {"fp32": pytest.approx(t * 32 * 16, rel=1e-12)}


def test_a_trace_too_large_for_data_keeps_the_large_tensors_on_meta(tmp_path, monkeypatch):
    from solgym import opcount
    from solgym.problem import ProblemError

    p = routed_problem(tmp_path, 8, [64])
    w = p.workloads[0]
    plain = count_on_data(p, w)
    monkeypatch.setattr(opcount, "_SHRUNK_TRACES", {})
    monkeypatch.setattr(opcount, "MIXED_BYTES", 4096)  # w (16 KB) on meta, x (8 KB) too; idx on data

    def refuse(problem, workload):
        raise ProblemError("problem", "workload", "const-size inputs too large")

    monkeypatch.setattr(opcount, "_check_memory", refuse)
    mixed = count_on_data(p, w)
    assert any("counted on meta, the rest on data" in n for n in mixed.notes)
    assert mixed.macs == plain.macs == {"fp32": 64 * 32 * 16}
    assert mixed.read_bytes == plain.read_bytes
    inputs, stale, continuous = opcount.mixed_inputs(p, w)
    assert inputs["w"].device.type == "meta" and inputs["idx"].device.type == "cpu"
    assert continuous == ["x", "w"] and stale == []


def test_a_value_computed_on_meta_never_decides_a_shape(tmp_path, monkeypatch):
    from solgym import opcount

    monkeypatch.setattr(opcount, "MIXED_BYTES", 4096)
    # Read through an ATen op, and through a method that bypasses ATen.
    for read, error in (
        ("x[torch.where(idx == 0)[0]]", "counted without data"),
        ("x[: len(set(idx.tolist()))]", "tolist reads values"),
    ):
        reference = (
            "import torch\ndef run(x, idx, w):\n"
            "    idx = idx.clone()\n"
            "    idx.add_((x @ w).sum().long())\n"  # written from meta: idx's values are unknown now
            f"    return {read}\n"
        )
        p = make_problem(
            tmp_path,
            reference,
            {"x": (["T", 32], "float32"), "idx": (["T"], "int64"), "w": ([32, 4096], "float32")},
            {"o": ([1, 32], "float32")},
            {"T": None},
            [{"axes": {"T": 8}}],
            folder=error.split()[0],
        )
        inputs, stale, _ = opcount.mixed_inputs(p, p.workloads[0])
        assert inputs["w"].device.type == "meta" and inputs["idx"].device.type == "cpu"
        with pytest.raises(opcount.DataDependent, match=error):
            opcount.trace(p, inputs, with_data=True, mixed=True, stale=stale)


def test_a_mixed_trace_makes_large_tensors_on_meta_whatever_device_they_ask_for():
    from solgym import opcount

    recorder = opcount._Recorder(with_data=True)
    recorder.mixed = True
    with recorder:
        large = torch.zeros(1 << 15, 1 << 12)  # 512 MB, no device given
        small = torch.ones(4, 4)
        also_large = small.new_zeros((1 << 15, 1 << 12))
        like = torch.zeros_like(small)
    assert [t.device.type for t in (large, small, also_large, like)] == ["meta", "cpu", "meta", "cpu"]


def test_a_mixed_trace_makes_on_meta_what_small_tensors_would_grow_into():
    from solgym import opcount

    recorder = opcount._Recorder(with_data=True)
    recorder.mixed = True
    scale = torch.rand(4, 8)
    with recorder:
        blocks = scale.repeat_interleave(1024, 0).repeat_interleave(2048, 1)  # 256 MB of fp32
        outer = scale.reshape(-1, 1) * torch.rand(1, 1 << 20)  # broadcast to 128 MB
        kept = scale * 2
        picked = scale[scale > 0.5]  # shaped by values: always on the CPU
    assert [t.device.type for t in (blocks, outer, kept, picked)] == ["meta", "meta", "cpu", "cpu"]
    assert blocks.shape == (4096, 16384) and outer.shape == (32, 1 << 20)


BLOCK_SCALED_EXPERTS = (
    "import torch\n"
    "def run(x, idx, w, s):\n"
    "    wf = w.float() * s.repeat_interleave(16, 1).repeat_interleave(16, 2)\n"  # dequantize every expert
    "    out = torch.zeros(x.shape[0], wf.shape[1])\n"
    "    for e in range(w.shape[0]):\n"
    "        rows = torch.where(idx == e)[0]\n"
    "        if rows.numel() == 0:\n"
    "            continue\n"
    "        out.index_add_(0, rows, x[rows] @ wf[e].t()){read}\n"
    "    return out\n"
)


@pytest.mark.parametrize("read", ["", "\n        out += wf[e].sum().item() * 0"])
def test_a_reference_making_a_large_tensor_before_it_reads_values_is_traced_mixed(
    tmp_path, monkeypatch, read
):
    """An FP8 expert stack dequantized to fp32 before the routing is read: the stack stays on meta (the
    routing on data), with the counts of a trace on data; where the reference then reads a value of the
    stack after all, it is traced on data."""
    from solgym import opcount

    reference = BLOCK_SCALED_EXPERTS.format(read=read) + (
        "def get_inputs(axes, device):\n"
        "    t, e = axes['T'], axes['E']\n"
        "    return {'x': torch.randn(t, 64, device=device), 'idx': torch.arange(t, device=device) % 4,\n"
        "            'w': torch.randn(e, 32, 64, device=device).to(torch.float8_e4m3fn),\n"
        "            's': torch.rand(e, 2, 4, device=device)}\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {
            "x": (["T", 64], "float32"),
            "idx": (["T"], "int64"),
            "w": (["E", 32, 64], "float8_e4m3fn"),
            "s": (["E", 2, 4], "float32"),
        },
        {"o": (["T", 32], "float32")},
        {"T": None, "E": 8},
        [{"axes": {"T": 64}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    w = p.workloads[0]
    plain = count_on_data(p, w)
    for name, value in (("_SHRUNK_TRACES", {}), ("_MADE_ON_META", {}), ("_LINES", {})):
        monkeypatch.setattr(opcount, name, value)
    monkeypatch.setattr(opcount, "MIXED_BYTES", 4096)  # w (16 KB) and x (16 KB) on meta
    monkeypatch.setattr(opcount, "HEAVY_BYTES", 32 * 1024)  # the fp32 stack, 64 KB, is heavy
    counts = opcount.count(p, w)
    mixed = any("counted on meta, the rest on data" in n for n in counts.notes)
    assert mixed == (not read)
    # Four experts get 16 rows each: 64 x 64 x 32 MACs, and only their weights and scales are read.
    assert counts.macs == plain.macs == {"fp8": 64 * 64 * 32}  # the dequantized stack keeps its class
    assert counts.read_bytes == plain.read_bytes
    assert counts.read_bytes["w"] == 4 * 32 * 64 and counts.read_bytes["s"] == 4 * 8 * 4
    assert counts.needed_read_bytes == plain.needed_read_bytes


@pytest.mark.parametrize(
    "write", ["kc.index_copy_(0, idx, new)", "kc.index_put_((idx,), new)", "kc[idx] = new", "kc[20:21] = new"]
)
def test_an_in_place_write_at_some_rows_reads_nothing_of_its_destination(tmp_path, write):
    """A KV cache row written in place, then the valid prefix read: the cache is read once, where the
    reference reads it (before, the write counted as a read of the whole cache besides)."""
    p = make_problem(
        tmp_path,
        "import torch\ndef run(kc, new):\n    idx = torch.tensor([20], device=kc.device)\n"
        f"    {write}\n    return kc[:21] * 2\n",
        {"kc": ([64, "D"], "bfloat16"), "new": ([1, "D"], "bfloat16")},
        {"o": ([21, "D"], "bfloat16")},
        {"D": None},
        [{"axes": {"D": 32}}],
    )
    c = count(p, p.workloads[0])
    # A slice written whole replaces row 20 before the prefix is read: rows 0..19 of the input are read.
    assert c.read_bytes["kc"] == (20 if ":" in write else 21) * 32 * 2
    assert 0 < c.read_bytes["new"] <= 32 * 2


CACHE_APPEND = (
    "import torch\n"
    "def get_inputs(axes, device):\n"
    "    n = axes['N']\n"
    "    return {'cache': torch.randn(1024, 64, device=device).to(torch.bfloat16),\n"
    "            'slots': torch.randperm(1024, device=device)[:n],\n"
    "            'k': torch.randn(n, 64, device=device).to(torch.bfloat16)}\n"
    "def run(cache, slots, k):\n"
    "    c = cache.clone()\n"
    "    WRITE\n"
    "    return c\n"
)


@pytest.mark.parametrize(
    "write, accumulates",
    [
        ("c.index_copy_(0, slots, k)", False),  # vLLM's slot mapping, HF's cache update
        ("c[slots] = k", False),
        ("c.index_put_((slots,), k)", False),
        ("c.index_put_((slots,), k, accumulate=True)", True),
        ("c.index_add_(0, slots, k)", True),
    ],
)
def test_a_cache_returned_after_rows_written_at_given_slots_reads_only_the_rows_kept(
    tmp_path, write, accumulates
):
    # 256 new rows put at distinct slots of a 1024-row cache that is returned whole: a kernel reads the
    # 768 rows it keeps (before, the whole cache was read: +33% of it here). An accumulating write reads
    # what it adds to.
    p = make_problem(
        tmp_path,
        CACHE_APPEND.replace("WRITE", write),
        {"cache": ([1024, 64], "bfloat16"), "slots": (["N"], "int64"), "k": (["N", 64], "bfloat16")},
        {"c": ([1024, 64], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 256}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    c = count(p, p.workloads[0])
    assert c.read_bytes["cache"] == (1024 if accumulates else 768) * 64 * 2
    assert c.read_bytes["k"] == 256 * 64 * 2
    assert c.read_bytes["slots"] == 256 * 8


def test_rows_written_at_drawn_slots_replace_at_most_the_values_drawn(tmp_path):
    # Random integer slots are drawn from INT_HIGH values: 4096 draws put rows in at most INT_HIGH of the
    # cache's rows, so the rest of the cache is read; in place on a layer of the returned input as well.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(cache, slots, k):\n    cache[1].index_copy_(0, slots, k)\n    return cache\n",
        {"cache": ([2, 1024, 64], "bfloat16"), "slots": (["N"], "int64"), "k": (["N", 64], "bfloat16")},
        {"c": ([2, 1024, 64], "bfloat16")},
        {"N": None},
        [{"axes": {"N": 4096}}],
    )
    b = one(p)
    replaced = distinct_drawn(4096, 1, INT_HIGH, most=True)
    assert replaced == INT_HIGH
    assert b.bytes_read == pytest.approx((2 * 1024 - replaced) * 64 * 2 + 4096 * 8 + 4096 * 64 * 2)


def test_a_block_of_a_buffer_that_is_never_returned_counts_nothing(tmp_path):
    """A buffer filled part by part, half of it returned: the product written into the other half is
    discarded work (before, each product counted at half, and each operand was read at half)."""
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, b, w):\n    t = a.shape[0]\n"
        "    out = torch.empty(2 * t, w.shape[1], dtype=a.dtype, device=a.device)\n"
        "    out[:t] = a @ w\n    out[t:] = b @ w\n    return out[:t]\n",
        {"a": (["T", 128], "bfloat16"), "b": (["T", 128], "bfloat16"), "w": ([128, 256], "bfloat16")},
        {"o": (["T", 256], "bfloat16")},
        {"T": None},
        [{"axes": {"T": 64}}],
    )
    c = count(p, p.workloads[0])
    assert c.macs == {"bf16": 64 * 128 * 256}
    assert c.read_bytes == {"a": 64 * 128 * 2, "b": 0, "w": 128 * 256 * 2}


@pytest.mark.parametrize(
    ("expression", "shape", "columns", "rows"),
    [
        ("x[:, :40] + x[:, 10:50]", [8, 40], 50, 8),
        ("x[:4] + x[2:6]", [4, 64], 64, 6),
        ("x[:, 1:] - x[:, :-1]", [8, 63], 64, 8),
    ],
)
def test_overlapping_views_of_an_input_read_their_common_part_once(
    tmp_path, expression, shape, columns, rows
):
    """Before, each view's bytes were added (80 columns; 8 rows; the third came out right only because the
    sum is capped at the input's size)."""
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x):\n    return {expression}\n",
        {"x": ([8, "C"], "float32")},
        {"o": (shape, "float32")},
        {"C": None},
        [{"axes": {"C": 64}}],
    )
    assert count(p, p.workloads[0]).read_bytes["x"] == rows * columns * 4


@pytest.mark.parametrize("select", ["x[mask].sum()", "x.masked_select(mask).sum()", "x[mask[:, 0]].sum()"])
def test_a_bool_mask_on_data_reads_only_what_it_keeps(tmp_path, select):
    """Rows 0-15 of 64 kept: a quarter of x is read (before, all of it)."""
    p = make_problem(
        tmp_path,
        "import torch\n"
        "def get_inputs(axes, device):\n"
        "    mask = torch.zeros(axes['N'], 8, dtype=torch.bool, device=device)\n"
        "    mask[:16] = True\n"
        "    return {'x': torch.randn(axes['N'], 8, device=device), 'mask': mask}\n"
        f"def run(x, mask):\n    return {select}\n",
        {"x": (["N", 8], "float32"), "mask": (["N", 8], "bool")},
        {"o": ([], "float32")},
        {"N": None},
        [{"axes": {"N": 64}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    assert count(p, p.workloads[0]).read_bytes["x"] == 16 * 8 * 4


def test_ops_run_on_meta_again_reuse_the_result_layout_and_never_an_alias(tmp_path, monkeypatch):
    from solgym import opcount

    p = make_problem(
        tmp_path,
        "import torch\ndef run(x, w):\n"
        "    h = (x.transpose(0, 1).reshape(64, -1) @ w).relu()\n"  # a reshape that copies, then views
        "    return torch.softmax(h.float(), -1).to(x.dtype).reshape(-1)\n",
        {"x": ([32, 64, 8], "bfloat16"), "w": ([256, 128], "bfloat16")},
        {"y": ([64 * 128], "bfloat16")},
        {},
        [{"axes": {}}],
    )
    opcount._META_RESULTS.clear()
    first = opcount.count_on_meta(p, p.workloads[0])
    assert opcount._META_RESULTS  # the second trace makes its results from these
    again = opcount.count_on_meta(p, p.workloads[0])
    monkeypatch.setattr(opcount, "_cacheable", lambda func: False)
    plain = opcount.count_on_meta(p, p.workloads[0])
    assert first == again == plain
    # `_unsafe_view` returns its input's storage without saying so in its schema: never made afresh.
    t = torch.empty(4, 6, device="meta").t().contiguous()
    views = [opcount._on_meta_cached(torch.ops.aten._unsafe_view.default, (t, [24]), {}) for _ in range(2)]
    assert all(v.untyped_storage()._cdata == t.untyped_storage()._cdata for v in views)


@pytest.mark.parametrize(
    "body",
    [
        "s.copy_(x * 2)",
        "s[:] = x * 2",
        "s.zero_()\n    s.add_(x)",
        "torch.mul(x, 2, out=s)",
        "s[:32] = x[:32]\n    s[32:] = x[32:] * 3",
        "t = x * 5\n    t.copy_(x)\n    s.copy_(t)",
    ],
)
def test_an_input_written_whole_before_it_is_read_or_returned_is_not_read(tmp_path, body):
    # A state updated in place and returned (a decode step's cache, an optimizer's buffers): what the
    # output holds is what the reference wrote, so the input's old contents are read only where the
    # reference read them first (before 2026-11-27, in full on top of the write).
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x, s):\n    {body}\n    return x + 1, s\n",
        {"x": (["V", 64], "bfloat16"), "s": (["V", 64], "bfloat16")},
        {"y": (["V", 64], "bfloat16"), "state": (["V", 64], "bfloat16")},
        {"V": None},
        [{"axes": {"V": 64}}],
    )
    c = count(p, p.workloads[0])
    assert (c.read_bytes["s"], c.needed_read_bytes["s"]) == (0, 0)
    assert c.read_bytes["x"] == 64 * 64 * 2


@pytest.mark.parametrize(
    "body, x_read, w_read",
    [
        # A product's rows need all of the second operand, its columns all of the first.
        ("(x @ w.t())[:1]", 1 / 32, 1.0),
        ("(x @ w.t())[:, :32]", 1.0, 1 / 4),
        # Also through an elementwise op or a row-wise one in between, as a language model head kept to its
        # last token writes it (before 2026-11-28, the share passed on: w read at 1/32).
        ("F.relu(x @ w.t())[:1]", 1 / 32, 1.0),
        ("(x @ w.t()).float()[:, :32]", 1.0, 1 / 4),
        ("torch.softmax((x @ w.t()).float() / 2.0, -1)[-1:]", 1 / 32, 1.0),
        # Padded, then cut back (vLLM's FP8 linear): all of w; of x, the rows kept, 8 of its 32 (the pad
        # maps them back by position; before 2026-11-28, 8 of the 64 padded rows' share).
        ("torch.narrow(F.pad(x, (0, 0, 0, 32)) @ w.t(), 0, 0, 8)", 8 / 32, 1.0),
        # A row demanded anywhere needs its whole row through softmax, sort and norms; a cumulative sum,
        # the prefix up to the last column demanded.
        ("torch.log_softmax(x.float(), -1).gather(-1, torch.zeros(32, 1, dtype=torch.long))", 1.0, 0.0),
        ("torch.softmax(x.float(), -1)[:, :3]", 1.0, 0.0),
        ("torch.sort(x, -1)[0][:, 0]", 1.0, 0.0),
        ("F.layer_norm(x, (256,))[:16, :8]", 0.5, 0.0),
        ("torch.cumsum(x, -1)[:, -1]", 1.0, 0.0),
        ("torch.cumsum(x, -1)[:, :64]", 0.25, 0.0),
        # An FFT convolution cut back to the signal's length (Hyena): every sample needs the whole row.
        (
            "torch.fft.irfft(torch.fft.rfft(x.float(), n=512) * torch.fft.rfft(x.float(), n=512), n=512)[:, :256]",
            1.0,
            0.0,
        ),
        ("torch.fft.ifft2(torch.fft.fft2(x.float().view(32, 16, 16))).real", 1.0, 0.0),
    ],
)
def test_a_part_of_a_product_or_of_a_row_wise_result_needs_the_rows_and_columns_it_meets(
    tmp_path, body, x_read, w_read
):
    inputs = {"x": (["V", 256], "bfloat16"), "w": ([128, 256], "bfloat16")}
    if not w_read:
        del inputs["w"]
    p = make_problem(
        tmp_path,
        f"import torch\nimport torch.nn.functional as F\ndef run({', '.join(inputs)}):\n"
        f"    return ({body}).float().sum()\n",
        inputs,
        {"y": ([], "float32")},
        {"V": None},
        [{"axes": {"V": 32}}],
    )
    reads = count(p, p.workloads[0]).read_bytes
    assert reads["x"] == pytest.approx(32 * 256 * 2 * x_read)
    if w_read:
        assert reads["w"] == pytest.approx(128 * 256 * 2 * w_read)


@pytest.mark.parametrize(
    "call, inputs, macs",
    [
        (
            "torch.ops.aten._weight_int8pack_mm(x, w, s)",
            {"x": (["M", 256], "bfloat16"), "w": ([128, 256], "int8"), "s": ([128], "bfloat16")},
            {"bf16": 16 * 128 * 256},
        ),
        (
            "torch._grouped_mm(a, b.transpose(-2, -1), offs=torch.tensor([4, 12, 16], dtype=torch.int32))",
            {"a": (["M", 256], "bfloat16"), "b": ([3, 128, 256], "bfloat16")},
            {"bf16": 16 * 128 * 256},  # each token in one group
        ),
        (
            "torch._scaled_grouped_mm(a, b.transpose(-2, -1), sa, sb, offs=torch.tensor([8, 16], dtype=torch.int32),"
            " out_dtype=torch.bfloat16)",
            {
                "a": (["M", 256], "float8_e4m3fn"),
                "b": ([2, 128, 256], "float8_e4m3fn"),
                "sa": (["M"], "float32"),
                "sb": ([2, 128], "float32"),
            },
            {"fp8": 16 * 128 * 256},
        ),
    ],
)
def test_products_fused_with_dequantization_or_grouping_count_their_macs(tmp_path, call, inputs, macs):
    p = make_problem(
        tmp_path,
        f"import torch\ndef run({', '.join(inputs)}):\n    return {call}\n",
        inputs,
        {"y": (["M", 128], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 16}}],
    )
    assert count(p, p.workloads[0]).macs == macs


@pytest.mark.parametrize(
    "body, x_read, w_read",
    [
        # Indices on every axis but the last take whole rows: CLIP's EOS pooling, a combine by (expert, slot).
        ("x[torch.arange(8), idx]", 8 / (8 * 16), None),
        ("(x @ w.t())[torch.arange(8), idx]", 8 / (8 * 16), 1.0),  # a classifier's last-token logits
    ],
)
def test_indices_on_every_axis_but_the_last_take_whole_rows(tmp_path, body, x_read, w_read):
    inputs = {"x": ([8, 16, "V"], "bfloat16"), "idx": ([8], "int64"), "w": ([32, "V"], "bfloat16")}
    if w_read is None:
        del inputs["w"]
    p = make_problem(
        tmp_path,
        f"import torch\ndef run({', '.join(inputs)}):\n    return ({body}).float().sum()\n",
        inputs,
        {"y": ([], "float32")},
        {"V": None},
        [{"axes": {"V": 64}}],
    )
    reads = count(p, p.workloads[0]).read_bytes
    assert reads["x"] == pytest.approx(8 * 16 * 64 * 2 * x_read)
    if w_read is not None:
        assert reads["w"] == pytest.approx(32 * 64 * 2 * w_read)


def test_an_intermediate_updated_in_place_in_a_strided_view_counts_what_is_demanded_of_that_view(tmp_path):
    body = "gate, up = (x @ w.t()).chunk(2, -1)\n    torch.nn.functional.silu(gate, inplace=True)\n    up.mul_(gate)\n    return up"
    # A fused gate/up projection's halves updated in place, then the up half returned: the whole product
    # is needed (before 2026-11-27, its demand came out at a fraction of the buffer).
    p = make_problem(
        tmp_path,
        f"import torch\ndef run(x, w):\n    {body}\n",
        {"x": ([64, "V"], "bfloat16"), "w": ([64, "V"], "bfloat16")},
        {"y": ([64, 32], "bfloat16")},
        {"V": None},
        [{"axes": {"V": 128}}],
    )
    assert count(p, p.workloads[0]).macs == {"bf16": 64 * 64 * 128}


def test_attention_kernels_below_sdpa_count_their_macs(tmp_path):
    # On data, SDPA reached inside `F.multi_head_attention_forward` runs the CPU flash kernel itself.
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, v):\n"
        "    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, True)[0]\n",
        {n: ([1, 2, "L", 16], "float32") for n in "qkv"},
        {"o": ([1, 2, "L", 16], "float32")},
        {"L": None},
        [{"axes": {"L": 32}}],
    )
    assert count_on_data(p, p.workloads[0]).macs == {"fp32": 2 * (32 * 33 // 2) * 32}


@pytest.mark.parametrize("need_weights", [False, True])
def test_multi_head_attention_forward_with_a_causal_mask_counts_the_triangle(tmp_path, need_weights):
    # `nn.TransformerEncoderLayer`'s call: SDPA's math path softmaxes with `_safe_softmax`, which did not
    # carry the mask (before 2026-11-27: 1.5x the causal attention's MACs without the weights).
    p = make_problem(
        tmp_path,
        "import torch\nimport torch.nn.functional as F\ndef run(x, w, b, ow, ob):\n"
        "    m = ~torch.tril(torch.ones((64, 64), dtype=torch.bool, device=x.device))\n"
        "    out, _ = F.multi_head_attention_forward(x, x, x, 32, 2, w, b, None, None, False, 0.0, ow, ob,\n"
        f"        training=False, attn_mask=m, need_weights={need_weights})\n"
        "    return out\n",
        {
            "x": ([64, 4, 32], "float32"),
            "w": ([96, 32], "float32"),
            "b": ([96], "float32"),
            "ow": ([32, 32], "float32"),
            "ob": ([32], "float32"),
        },
        {"o": ([64, 4, 32], "float32")},
        {},
        [{"axes": {}}],
    )
    projections = 4 * 64 * 4 * 32 * 32
    assert one(p).macs_by_precision == {"fp32": projections + 2 * 4 * (64 * 65 // 2) * 32}


# View layouts ((stride, size) innermost first) with lanes of elements, of runs, and none.
LANE_LAYOUTS = [
    ((64, 8),),
    ((1, 4), (64, 8)),
    ((1, 16), (48, 3), (480, 2)),
    ((4, 8), (64, 2)),
    ((1, 70), (64, 2)),
]


def test_lanes_two_buckets_apart_are_disjoint_views():
    # The needed-reads walk checks a view only against chosen views of its own lane bucket and the next
    # ones (a loop's 2048 slices `x[:, :, i]` then cost linear time, not quadratic): every pair it skips
    # must be one `_disjoint` proves disjoint.
    from solgym.opcount import _disjoint, _lane

    for dims in LANE_LAYOUTS:
        sigs = [(offset, 2, dims) for offset in range(0, 160)]
        for a in sigs:
            for b in sigs:
                la, lb = _lane(a), _lane(b)
                if la is not None and lb is not None and abs(la - lb) >= 2:
                    assert _disjoint(a, b), (a, b)


def test_overwritten_views_are_met_exactly_as_a_check_against_every_one_would_meet_them():
    # `_Written.meets` checks a view against the overwritten views of its own lane buckets only (a loop
    # writing `out[:, t]` column by column was quadratic: 25 s at 4096 steps); the answer must be the
    # same as checking it against every overwritten view.
    import random

    from solgym.opcount import _disjoint, _Written

    rng = random.Random(0)
    for _ in range(40):
        written, sigs = _Written(), []
        for _ in range(rng.randrange(1, 30)):
            sig = (rng.randrange(0, 200), 2, rng.choice(LANE_LAYOUTS))
            written.add(sig)
            sigs.append(sig)
        for offset in range(0, 200, 3):
            for dims in LANE_LAYOUTS:
                probe = (offset, 2, dims)
                assert written.meets(probe) == any(not _disjoint(probe, o) for o in sigs), probe


def test_demanded_views_are_found_and_counted_as_a_pass_over_all_would_find_and_count_them():
    # The demand walks find the views a write meets through a span index (a loop reading and overwriting
    # the rows of an input in place was quadratic: 105 s at 8000 steps); it must find exactly what a pass
    # over every view finds, through additions and removals.
    import random

    from solgym.opcount import _span, _Views

    rng = random.Random(1)
    layouts = [(), ((1, 8),), ((1, 64),), ((8, 4),), ((1, 3), (16, 5)), ((1, 512),)]
    views = _Views()
    for step in range(400):
        offset, size, dims = rng.randrange(0, 40) * 7, rng.choice((1, 2, 4)), rng.choice(layouts)
        sig = (offset, size, dims)
        if sig in views and rng.random() < 0.5:
            del views[sig]
        else:
            # Whole (a run over rows, where its layout is one) or part of the view, raised or lowered.
            whole = math.prod(n for _, n in dims) * size
            views[sig] = rng.choice((whole, whole / 3, float(step)))
        lo = rng.randrange(0, 2500)
        hi = lo + rng.randrange(1, 300)
        expected = {s for s in views if _span(s)[0] < hi and _span(s)[1] > lo}
        assert set(views.meeting(lo, hi)) == expected
        assert views.scattered == sum(1 for s in views if len(s[2]) > 1 or (s[2] and s[2][0][0] != 1))
        # The union kept as views come and go is the one counted afresh.
        fresh = _Views()
        for s, nbytes in views.items():
            fresh[s] = nbytes
        assert views.union() == pytest.approx(fresh.union(), rel=1e-12)


@pytest.mark.parametrize(
    "write",
    [
        "k_cache.index_copy_(2, pos, k)",  # HF's StaticCache
        "k_cache[:, :, pos] = k",  # index_put_ with one index
    ],
)
def test_a_cache_written_at_arange_positions_then_read_there_reads_only_the_new_rows(tmp_path, write):
    # The rows read back are the rows just written from k: none of the cache's old rows is read (before
    # 2026-11-27, the write's demand was passed by share: the cache was read there too, +50% here).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(q, k, k_cache):\n    pos = torch.arange(256, 256 + k.shape[2])\n"
        f"    {write}\n    return q @ k_cache[:, :, 256:256 + k.shape[2]].transpose(-1, -2)\n",
        {
            "q": ([1, 4, 128, 32], "bfloat16"),
            "k": ([1, 4, 128, 32], "bfloat16"),
            "k_cache": ([1, 4, 1024, 32], "bfloat16"),
        },
        {"o": ([1, 4, 128, 128], "bfloat16")},
        {},
        [{"axes": {}}],
    )
    assert one(p).bytes_read == 2 * 4 * 128 * 32 * 2


def test_a_product_accumulated_into_its_out_argument_counts_every_chunk(tmp_path):
    # Liger's fused linear cross-entropy accumulates a weight gradient with `addmm(gw, a, b, out=gw)`: the
    # op reads gw, so the earlier chunks stay needed (before 2026-11-27, only the last chunk counted).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(a, b):\n    gw = torch.zeros(a.shape[1], b.shape[1], device=a.device)\n"
        "    for i in range(4):\n        s = slice(i * 64, (i + 1) * 64)\n"
        "        torch.addmm(gw, a[s].t(), b[s], out=gw)\n    return gw\n",
        {"a": ([256, 128], "float32"), "b": ([256, 96], "float32")},
        {"gw": ([128, 96], "float32")},
        {},
        [{"axes": {}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"fp32": 256 * 128 * 96}
    assert b.bytes_read == (256 * 128 + 256 * 96) * 4


def test_pairs_indexed_in_every_row_of_a_batch_count_the_pairs_of_every_row(tmp_path):
    # DLRM's interaction: z[:, li, lj] takes 36 pairs of each of the 256 rows (before 2026-11-27, 36 in all,
    # and the product that made z counted 36 / (256 * 81) of its MACs).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(t):\n    z = torch.bmm(t, t.transpose(1, 2))\n"
        "    li, lj = torch.tril_indices(9, 9, offset=-1)\n    return z[:, li, lj]\n",
        {"t": ([256, 9, 32], "float32")},
        {"o": ([256, 36], "float32")},
        {},
        [{"axes": {}}],
    )
    assert one(p).macs_by_precision == {"fp32": 256 * 36 * 32}


def test_a_reference_that_sets_torch_defaults_leaves_them_as_they_were(tmp_path):
    # `torch.set_default_dtype(torch.float64)` in one reference would make the next problem's tensors fp64
    # (its products priced at the FP64 rate).
    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    torch.set_default_dtype(torch.float64)\n    return x * torch.ones(x.shape)\n",
        {"x": (["M", 64], "float32")},
        {"y": (["M", 64], "float64")},
        {"M": None},
        [{"axes": {"M": 16}}],
    )
    before = torch.get_default_dtype()
    one(p)
    run_reference(p, make_inputs(p, p.workloads[0]))
    assert torch.get_default_dtype() == before


def test_running_a_reference_leaves_no_mode_on_torchs_stack(tmp_path):
    # Restoring the default device by setting it to the CPU left a device mode on torch's function-mode
    # stack for the rest of the process: every later torch call of the caller's own passed through it.
    from torch.overrides import _get_current_function_mode_stack

    p = make_problem(
        tmp_path,
        "import torch\ndef run(x):\n    return x * torch.ones(x.shape)\n",
        {"x": (["M", 64], "float32")},
        {"y": (["M", 64], "float32")},
        {"M": None},
        [{"axes": {"M": 16}}],
    )
    assert _get_current_function_mode_stack() == []
    one(p)
    run_reference(p, make_inputs(p, p.workloads[0]))
    assert _get_current_function_mode_stack() == []
    assert torch.get_default_device().type == "cpu"


def test_a_reference_with_a_torchscript_function_is_counted(tmp_path):
    # Megatron's fused bias-gelu is `torch.jit.script`-ed, which compiles from the reference's source.
    p = make_problem(
        tmp_path,
        "import torch\n@torch.jit.script\ndef bias_gelu(b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:\n"
        "    x = b + y\n    return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))\n"
        "def run(x, w, b):\n    return bias_gelu(b, x @ w.t())\n",
        {"x": (["M", 64], "float32"), "w": ([32, 64], "float32"), "b": ([32], "float32")},
        {"y": (["M", 32], "float32")},
        {"M": None},
        [{"axes": {"M": 16}}],
    )
    assert one(p).macs_by_precision == {"fp32": 16 * 32 * 64}


def test_a_reference_returning_a_dict_of_its_outputs_is_counted_by_name(tmp_path):
    # FlashInfer-Trace's MLA decode returns {"output": o, "lse": lse}; the keys may come in any order.
    reference = (
        "import torch\ndef run(q, k):\n    s = q @ k.T\n"
        "    return {'lse': torch.logsumexp(s, -1), 'output': torch.softmax(s, -1) @ k}\n"
    )
    inputs = {"q": (["M", 64], "float32"), "k": (["N", 64], "float32")}
    outputs = {"output": (["M", 64], "float32"), "lse": (["M"], "float32")}
    b = one(make_problem(tmp_path, reference, inputs, outputs, {"M": None, "N": 128}, [{"axes": {"M": 16}}]))
    assert b.macs_by_precision == {"fp32": 2 * 16 * 128 * 64}
    assert b.bytes_written == (16 * 64 + 16) * 4  # both outputs, at 4 B each
    wrong = reference.replace("'lse'", "'log_sum_exp'")
    p = make_problem(
        tmp_path, wrong, inputs, outputs, {"M": None, "N": 128}, [{"axes": {"M": 16}}], folder="w"
    )
    with pytest.raises(ProblemError, match="dict with keys"):
        one(p)


def test_a_reference_failing_on_a_later_workloads_data_fails_that_workload_with_the_reason(tmp_path, capsys):
    # Read values (traced on data), then refuse the second workload's size: its error is the workload's,
    # and the CLI still prints the JSON of every workload.
    reference = (
        "import torch\ndef run(x):\n    if x.abs().sum().item() >= 0 and x.shape[0] > 4:\n"
        "        raise RuntimeError('probability tensor contains either inf, nan or element < 0')\n"
        "    return x * 2\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["M", 8], "float32")},
        {"y": (["M", 8], "float32")},
        {"M": None},
        [{"axes": {"M": 2}}, {"axes": {"M": 8}}],
    )
    assert derive(p, p.workloads[0], B200).traced_on.startswith("cpu data")
    with pytest.raises(ProblemError, match="probability tensor"):
        derive(p, p.workloads[1], B200)
    assert main(["bounds", str(p.path), "--gpu", "B200", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert "t_sol_ms" in doc["bounds"][0] and "probability tensor" in doc["bounds"][1]["error"]


def test_an_einsum_summing_over_a_unit_axis_counts_macs_as_the_same_product_written_with_matmul(tmp_path):
    # A gated delta rule's state update: the outer product k^T v per head, as an einsum over l = 1 (ATen:
    # a broadcast multiply) and as `@` (an mm with k = 1); an einsum summing over nothing stays elementwise.
    inputs = {"k": ([8, 128, 1], "float32"), "v": ([8, 1, 64], "float32")}
    outputs = {"s": ([8, 128, 64], "float32")}
    macs = {}
    for name, body in (
        ("einsum", "torch.einsum('hkl,hlv->hkv', k, v)"),
        ("matmul", "k @ v"),
        ("hadamard", "torch.einsum('hkv,hkv->hkv', k.expand(8, 128, 64), v.expand(8, 128, 64))"),
    ):
        p = make_problem(
            tmp_path,
            f"import torch\ndef run(k, v):\n    return {body}\n",
            inputs,
            outputs,
            {},
            [{"axes": {}}],
            folder=name,
        )
        macs[name] = one(p).macs_by_precision
    assert macs["einsum"] == macs["matmul"] == {"fp32": 8 * 128 * 64}
    assert macs["hadamard"] == {}


def test_a_class_the_profile_lacks_is_priced_at_the_next_and_says_so(tmp_path):
    # An NVFP4 problem whose dequantization the trace does not follow is priced at the FP4 rate, which an
    # H100 does not have: the FP8 peak stands in, and the note names both.
    p = make_problem(
        tmp_path,
        GEMM,
        {"A": (["M", 64], "bfloat16"), "B": ([32, 64], "bfloat16")},
        {"C": (["M", 32], "bfloat16")},
        {"M": None},
        [{"axes": {"M": 16}}],
        folder="nvfp4_projection",
    )
    h100 = get_profile("h100-sxm")
    b = derive(p, p.workloads[0], h100)
    assert b.priced_as == {"bf16": "fp8"}
    assert f"fp4 contractions priced at the fp8 peak: profile {h100.name} has no fp4 rate" in b.notes
    assert not any("peak: profile" in n for n in derive(p, p.workloads[0], B200).notes)


def test_a_data_trace_at_full_size_says_why_it_was_not_shrunk(tmp_path):
    # 37 rows of 512 KiB: over the bytes a data trace takes whole, and 37 does not halve to within 1%.
    reference = (
        "import torch\ndef run(x):\n    kept = int((x[:, 0] > 0).sum().item())\n    return x[:, :4] * kept\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["V", 131072], "float32")},
        {"y": (["V", 4], "float32")},
        {"V": None},
        [{"axes": {"V": 37}}],
    )
    b = one(p)
    assert b.traced_on == "cpu data, scaled x1"
    assert any("a small odd size does not halve" in n and "full-size data" in n for n in b.notes), b.notes
    assert not any("reference accepts" in n for n in b.notes)


def test_counts_that_follow_no_fit_are_traced_at_full_size(tmp_path):
    # BERT's unpadding: the tokens kept are the sum of lengths given by data, decreasing over the batch and
    # wrapping (a length-sorted batch): concave at the shrunk sizes and no quadratic. The larger of the two
    # fits would count 1.16x the tokens; the workload fits the trace budget, so it is traced as it is.
    reference = (
        "import torch\nimport torch.nn.functional as F\n"
        "def get_inputs(axes, device):\n"
        "    B, S = axes['B'], axes['S']\n"
        "    lengths = torch.tensor([max(1, S - (37 * b) % S) for b in range(B)], device=device)\n"
        "    mask = (torch.arange(S, device=device)[None] < lengths[:, None]).to(torch.int64)\n"
        "    hidden = torch.randn(B, S, 1024, dtype=torch.bfloat16, device=device)\n"
        "    w = torch.randn(1024, 1024, dtype=torch.bfloat16, device=device)\n"
        "    return {'hidden_states': hidden, 'attention_mask': mask, 'w': w}\n"
        "def run(hidden_states, attention_mask, w):\n"
        "    B, S, H = hidden_states.shape\n"
        "    indices = torch.nonzero(attention_mask.flatten(), as_tuple=False).flatten()\n"
        "    y = F.linear(hidden_states.reshape(B * S, H)[indices], w)\n"
        "    out = torch.zeros(B * S, H, dtype=y.dtype, device=y.device)\n"
        "    out[indices] = y\n"
        "    return out.reshape(B, S, H)\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {
            "hidden_states": (["B", "S", 1024], "bfloat16"),
            "attention_mask": (["B", "S"], "int64"),
            "w": ([1024, 1024], "bfloat16"),
        },
        {"out": (["B", "S", 1024], "bfloat16")},
        {"B": None, "S": 509},
        [{"axes": {"B": 16}, "kind": "custom"}],
        custom_inputs_entrypoint="get_inputs",
    )
    tokens = sum(max(1, 509 - (37 * b) % 509) for b in range(16))
    b = one(p)
    assert b.macs_by_precision == {"bf16": pytest.approx(tokens * 1024 * 1024)}
    assert b.traced_on == "cpu data, scaled x1"
    assert any("follow no fit" in n for n in b.notes), b.notes


def test_a_gate_that_saturates_on_random_inputs_saturates_in_a_data_trace(tmp_path):
    # Logits summed over 4096 products of unit draws are about 64 wide: the sigmoid is exactly 1.0 for
    # some of every token's 64 experts, so every token's row is computed, as in the evaluation. A data
    # trace stands in noise for the product, at the product's scale (at unit scale, no logit would
    # saturate and no row would count).
    reference = (
        "import torch\n"
        "def run(x, gate, w):\n"
        "    saturated = torch.sigmoid(x.float() @ gate.float().t()) == 1.0\n"
        "    rows = saturated.any(-1).nonzero().squeeze(-1)\n"
        "    out = torch.zeros(x.shape[0], 256, dtype=x.dtype)\n"
        "    out[rows] = x[rows] @ w.t()\n"
        "    return out\n"
    )
    p = make_problem(
        tmp_path,
        reference,
        {"x": (["V", 4096], "bfloat16"), "gate": ([64, 4096], "bfloat16"), "w": ([256, 4096], "bfloat16")},
        {"out": (["V", 256], "bfloat16")},
        {"V": None},
        [{"axes": {"V": 32}}],
    )
    b = one(p)
    assert b.macs_by_precision == {"fp32": 32 * 4096 * 64, "bf16": 32 * 4096 * 256}
