"""Generated stand-ins for absent FlashInfer-Trace blobs: what they hold, where they go, and a bound derived
with them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from solgym import substitutes
from solgym.bounds import derive
from solgym.cli import main
from solgym.hardware import get_profile
from solgym.inputs import make_inputs, shrink
from solgym.problem import ProblemError, load_problem

DEV = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"
BLOB = "blob/decode_{}.safetensors"

# A paged decode step, page size 1: each sequence reads the pages its indices name.
DECODE = """import torch

def run(q, cache, kv_indptr, kv_indices, kv_last_page_len):
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        pages = kv_indices[int(kv_indptr[b].item()):int(kv_indptr[b + 1].item())].long()
        k = cache[pages].float()
        p = torch.softmax(k @ q[b].float(), 0)
        out[b] = (p @ k).to(q.dtype)
    return out
"""


def decode_problem(
    tmp_path: Path, workloads: list[dict], constraints: list[str] | None = None, q_dtype: str = "bfloat16"
) -> object:
    folder = tmp_path / "paged_decode"
    folder.mkdir()
    definition = {
        "name": "paged_decode",
        "axes": {
            "batch_size": {"type": "var"},
            "len_indptr": {"type": "var"},
            "num_kv_indices": {"type": "var"},
            "num_pages": {"type": "var"},
            "page_size": {"type": "const", "value": 1},
            "head_dim": {"type": "const", "value": 64},
        },
        "inputs": {
            "q": {"shape": ["batch_size", "head_dim"], "dtype": q_dtype},
            "cache": {"shape": ["num_pages", "head_dim"], "dtype": "bfloat16"},
            "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
            "kv_indices": {"shape": ["num_kv_indices"], "dtype": "int32"},
            "kv_last_page_len": {"shape": ["batch_size"], "dtype": "int32"},
        },
        "outputs": {"out": {"shape": ["batch_size", "head_dim"], "dtype": "bfloat16"}},
        "reference": DECODE,
    }
    if constraints is not None:
        definition["constraints"] = constraints
    (folder / "definition.json").write_text(json.dumps(definition))
    lines = []
    for i, axes in enumerate(workloads):
        blob = {"type": "safetensors", "path": BLOB.format(i)}
        inputs = {"q": {"type": "random"}, "cache": {"type": "random"}}
        inputs |= {n: blob | {"tensor_key": n} for n in ("kv_indptr", "kv_indices", "kv_last_page_len")}
        lines.append(json.dumps({"uuid": f"w{i}", "axes": axes, "inputs": inputs}))
    (folder / "workload.jsonl").write_text("\n".join(lines))
    return load_problem(folder)


AXES = {"batch_size": 3, "len_indptr": 4, "num_kv_indices": 10, "num_pages": 50}


def test_index_stand_ins_hold_offsets_distinct_pages_and_full_last_pages(tmp_path):
    p = decode_problem(tmp_path, [AXES, AXES | {"num_kv_indices": 60}])
    w, crowded = p.workloads
    assert substitutes.tensor(p, w, "kv_indptr").tolist() == [0, 3, 7, 10]  # as even as whole numbers allow
    pages = substitutes.tensor(p, w, "kv_indices")
    assert (
        pages.dtype == torch.int32 and len(set(pages.tolist())) == 10 and 0 <= pages.min() <= pages.max() < 50
    )
    assert torch.equal(pages, substitutes.tensor(p, w, "kv_indices"))  # the same every run
    assert len(set(substitutes.tensor(p, crowded, "kv_indices").tolist())) == 50  # every page, then repeats
    assert substitutes.tensor(p, w, "kv_last_page_len").tolist() == [1, 1, 1]


def test_float_stand_ins_are_seeded_normal_draws_and_a_bias_is_zeros(tmp_path):
    # MoE routing logits and bias come as blobs in FlashInfer-Trace: logits drawn, the bias neutral.
    p = decode_problem(tmp_path, [AXES])
    w = p.workloads[0]
    q = substitutes.tensor(p, w, "q")
    assert q.shape == (3, 64) and q.dtype == torch.bfloat16 and 0.5 < q.float().std() < 1.5
    assert torch.equal(q, substitutes.tensor(p, w, "q"))  # the same every run
    definition = json.loads((p.path / "definition.json").read_text())
    definition["inputs"]["routing_bias"] = {"shape": ["head_dim"], "dtype": "bfloat16"}
    definition["inputs"]["q"]["dtype"] = "float8_e4m3fn"
    definition["reference"] = definition["reference"].replace(
        "kv_last_page_len)", "kv_last_page_len, routing_bias)"
    )
    (p.path / "definition.json").write_text(json.dumps(definition))
    lines = json.loads((p.path / "workload.jsonl").read_text())
    lines["inputs"]["routing_bias"] = {"type": "random"}
    (p.path / "workload.jsonl").write_text(json.dumps(lines))
    p = load_problem(p.path)
    assert torch.equal(
        substitutes.tensor(p, p.workloads[0], "routing_bias"), torch.zeros(64, dtype=torch.bfloat16)
    )
    with pytest.raises(ProblemError, match="only 1-D integer index blobs and float blobs"):
        substitutes.tensor(p, p.workloads[0], "q")  # fp8: no known scale to draw at


def test_blobs_are_written_at_the_workloads_paths_and_make_the_bound_derivable(tmp_path, monkeypatch):
    p = decode_problem(tmp_path, [AXES])
    profile = get_profile("H100")
    with pytest.raises(ProblemError, match="blob/decode_0.safetensors"):
        derive(p, p.workloads[0], profile)  # absent: the bound depends on that data
    assert main(["substitute", str(p.path), "--out", str(tmp_path / "data"), "--json"]) == 0
    assert (tmp_path / "data" / BLOB.format(0)).is_file()
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "data"))
    b = derive(p, p.workloads[0], profile)
    # The 10 distinct pages of 64 bf16 values, q and the output, the two index tensors it reads (it never
    # reads the last pages' lengths).
    assert b.bytes_read + b.bytes_written == 10 * 64 * 2 + 2 * 3 * 64 * 2 + (4 + 10) * 4
    assert b.macs_by_precision == {"fp32": 2 * 10 * 64}


# FlashInfer-Trace's own constraints on a paged decode: on the axes, and on the index blobs' data.
TRACE_CONSTRAINTS = ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"]


def test_constraints_on_blob_data_load_and_are_checked_when_the_blobs_are_read(tmp_path, monkeypatch):
    p = decode_problem(tmp_path, [AXES], constraints=TRACE_CONSTRAINTS)
    substitutes.write([p], tmp_path / "data")  # stand-ins that satisfy them
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "data"))
    assert derive(p, p.workloads[0], get_profile("H100")).macs_by_precision == {"fp32": 2 * 10 * 64}
    # Blobs that break one: the workload names it, nothing is counted from them.
    blob = tmp_path / "data" / BLOB.format(0)
    tensors = {
        n: substitutes.tensor(p, p.workloads[0], n) for n in ("kv_indptr", "kv_indices", "kv_last_page_len")
    }
    tensors["kv_indptr"][-1] = 9
    save_file(tensors, str(blob))
    with pytest.raises(
        ProblemError, match=r"violate constraints: num_kv_indices == kv_indptr\[-1\]\.item\(\)"
    ):
        make_inputs(p, p.workloads[0])


def test_a_paged_cache_over_64_mb_stays_on_meta_while_the_blob_indices_are_read(tmp_path, monkeypatch):
    # 600 000 pages of 64 bf16 values: 77 MB that the trace never allocates.
    p = decode_problem(tmp_path, [AXES | {"num_pages": 600_000}])
    substitutes.write([p], tmp_path / "data")
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "data"))
    b = derive(p, p.workloads[0], get_profile("H100"))
    assert any("counted on meta" in note for note in b.notes)
    assert b.bytes_read + b.bytes_written == 10 * 64 * 2 + 2 * 3 * 64 * 2 + (4 + 10) * 4


def test_a_blob_of_unknown_meaning_is_refused_and_nothing_is_written(tmp_path):
    p = decode_problem(tmp_path, [AXES])
    definition = json.loads((p.path / "definition.json").read_text())
    definition["inputs"]["seq_lens"] = definition["inputs"].pop("kv_last_page_len")
    definition["reference"] = DECODE.replace("kv_last_page_len", "seq_lens")
    (p.path / "definition.json").write_text(json.dumps(definition))
    lines = (p.path / "workload.jsonl").read_text().replace("kv_last_page_len", "seq_lens")
    (p.path / "workload.jsonl").write_text(lines)
    with pytest.raises(ProblemError, match="seq_lens: cannot generate"):
        substitutes.write([load_problem(p.path)], tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_an_existing_blob_is_kept_unless_overwritten(tmp_path):
    p = decode_problem(tmp_path, [AXES])
    target = tmp_path / "data" / BLOB.format(0)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"real trace")
    assert substitutes.write([p], tmp_path / "data") == []
    assert target.read_bytes() == b"real trace"
    assert [w.path for w in substitutes.write([p], tmp_path / "data", overwrite=True)] == [BLOB.format(0)]


def test_a_blob_supplied_by_hand_stands_for_an_input_that_cannot_be_generated(tmp_path):
    # An fp8 `q` cannot be generated; a blob already at its path is kept and nothing is asked of it.
    p = decode_problem(tmp_path, [AXES], q_dtype="float8_e4m3fn")
    lines = (
        (p.path / "workload.jsonl")
        .read_text()
        .replace(
            '"q": {"type": "random"}',
            '"q": {"type": "safetensors", "path": "blob/q.safetensors", "tensor_key": "q"}',
        )
    )
    (p.path / "workload.jsonl").write_text(lines)
    p = load_problem(p.path)
    with pytest.raises(ProblemError, match="only 1-D integer index blobs"):
        substitutes.write([p], tmp_path / "data")
    (tmp_path / "data" / "blob").mkdir(parents=True)
    save_file(
        {"q": torch.zeros(3, 64, dtype=torch.float8_e4m3fn)},
        str(tmp_path / "data" / "blob" / "q.safetensors"),
    )
    assert [w.path for w in substitutes.write([p], tmp_path / "data")] == [BLOB.format(0)]


def test_counts_traced_on_blobs_follow_the_files_not_only_their_paths(tmp_path, monkeypatch):
    # Two folders of trace data, read in one process: the second's pages are counted, not the first's.
    p = decode_problem(tmp_path, [AXES])
    profile = get_profile("H100")
    substitutes.write([p], tmp_path / "a")
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "a"))
    ten_pages = derive(p, p.workloads[0], profile)
    (tmp_path / "b" / "blob").mkdir(parents=True)
    indices = {"kv_indptr": torch.tensor([0, 3, 7, 10], dtype=torch.int32)}
    indices |= {
        "kv_indices": torch.zeros(10, dtype=torch.int32),
        "kv_last_page_len": torch.ones(3, dtype=torch.int32),
    }
    save_file(indices, str(tmp_path / "b" / BLOB.format(0)))
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "b"))
    one_page = derive(p, p.workloads[0], profile)
    assert ten_pages.bytes_read - one_page.bytes_read == 9 * 64 * 2  # nine pages fewer
    monkeypatch.delenv("SOLGYM_TRACE_DATA")
    with pytest.raises(ProblemError, match="not found"):
        derive(p, p.workloads[0], profile)  # and none at all: refused, not taken from before


@pytest.mark.skipif(not DEV.is_dir(), reason="SOL-ExecBench dev problems not present")
def test_a_paged_decode_with_stand_ins_lands_on_its_published_bound(tmp_path, monkeypatch):
    p = load_problem(DEV / "013_gqa_paged_decode_h32_kv8_d128_ps1")
    published = json.loads((p.path / "published.json").read_text())["workloads"]
    substitutes.write([p], tmp_path)
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path))
    profile = get_profile("B200").at_clock(1500)
    for w, pub in list(zip(p.workloads, published, strict=True))[:48:8]:
        ours = derive(p, w, profile, convention="solar").t_sol_ms
        assert round(ours, 4) == pytest.approx(pub["sol_ms"], rel=0.1), w.axes


def test_offsets_end_where_a_constraint_on_their_data_says(tmp_path):
    # FlashInfer-Trace's gated delta rule prefill: `cu_seqlens` ends at the token count its constraint names,
    # though no input is named after it.
    folder = tmp_path / "prefill"
    folder.mkdir()
    definition = {
        "name": "prefill",
        "axes": {
            "total_seq_len": {"type": "var"},
            "num_seqs": {"type": "var"},
            "len_cu_seqlens": {"type": "var"},
        },
        "inputs": {
            "x": {"shape": ["total_seq_len", 8], "dtype": "float32"},
            "cu_seqlens": {"shape": ["len_cu_seqlens"], "dtype": "int64"},
        },
        "outputs": {"y": {"shape": ["num_seqs", 8], "dtype": "float32"}},
        "reference": "import torch\ndef run(x, cu_seqlens):\n"
        "    n = cu_seqlens.shape[0] - 1\n"
        "    return torch.stack([x[int(cu_seqlens[i]):int(cu_seqlens[i + 1])].sum(0) for i in range(n)])\n",
        "constraints": ["len_cu_seqlens == num_seqs + 1", "total_seq_len == cu_seqlens[-1].item()"],
    }
    (folder / "definition.json").write_text(json.dumps(definition))
    blob = {"type": "safetensors", "path": "blob/p.safetensors", "tensor_key": "cu_seqlens"}
    axes = {"total_seq_len": 10, "num_seqs": 3, "len_cu_seqlens": 4}
    (folder / "workload.jsonl").write_text(
        json.dumps({"uuid": "w", "axes": axes, "inputs": {"x": {"type": "random"}, "cu_seqlens": blob}})
    )
    p = load_problem(folder)
    assert substitutes.tensor(p, p.workloads[0], "cu_seqlens").tolist() == [0, 3, 7, 10]
    assert main(["substitute", str(folder), "--out", str(tmp_path / "data")]) == 0
    make_inputs(p, p.workloads[0], data_root=tmp_path / "data")  # satisfies its constraints


def test_a_workload_reading_blobs_is_evaluated_at_its_own_size_with_the_trace_data(
    tmp_path, monkeypatch, capsys
):
    # The sandboxed child reads the blobs from $SOLGYM_TRACE_DATA (passed and exposed to it), and CPU mode
    # keeps the workload whole: its page indices address the full cache.
    p = decode_problem(tmp_path, [AXES | {"num_pages": 5000}], constraints=TRACE_CONSTRAINTS)
    assert shrink(p, p.workloads[0], 1 << 10) is p.workloads[0]
    substitutes.write([p], tmp_path / "data")
    monkeypatch.setenv("SOLGYM_TRACE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SOLGYM_CACHE", str(tmp_path / "cache"))
    action = tmp_path / "action.py"
    action.write_text(DECODE)
    code = main(
        ["eval", str(p.path), str(action), "--cpu", "--json", "--rounds", "1", "--policy", "permissive"]
    )
    out = json.loads(capsys.readouterr().out)
    assert (code, out["status"]) == (0, "PASSED"), out.get("message")


def test_the_fidelity_benchmark_derives_absent_blobs_on_stand_ins_and_says_so(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bounds_fidelity

    monkeypatch.delenv("SOLGYM_TRACE_DATA", raising=False)
    (tmp_path / "dev").mkdir()
    p = decode_problem(tmp_path / "dev", [AXES, AXES | {"num_kv_indices": 40}])
    published = [{"index": i, "axes": w.axes, "sol_ms": 0.0004} for i, w in enumerate(p.workloads)]
    (p.path / "published.json").write_text(json.dumps({"workloads": published}))

    strict = bounds_fidelity.evaluate(tmp_path / "dev")
    assert strict["rows"][0]["derived"] == 0 and "not found" in strict["rows"][0]["error"]
    assert not strict["rows"][0]["stand_ins"]

    result = bounds_fidelity.evaluate(tmp_path / "dev", stand_ins=tmp_path / "stand-ins")
    row = result["rows"][0]
    assert row["stand_ins"] and row["derived"] == 2 and row["error"] is None
    assert all(w["stand_ins"] and w["ratio"] > 0 for w in result["workloads"])
    assert result["summary"]["derived_on_stand_in_blobs"] == 2
    assert (tmp_path / "stand-ins" / BLOB.format(1)).is_file()
    assert "SOLGYM_TRACE_DATA" not in os.environ  # set for the problem's derivation only

    # A defect of a bound that leaves out compute marks only the workloads where compute binds.
    monkeypatch.setitem(bounds_fidelity.KNOWN_DEFECTS, "paged_decode", ("leaves out the MACs", "compute"))
    marked = bounds_fidelity.evaluate(tmp_path / "dev", stand_ins=tmp_path / "stand-ins")["workloads"]
    assert [w["known_defect"] for w in marked] == [w["bound_by"] == "compute" for w in marked]
    monkeypatch.setitem(bounds_fidelity.KNOWN_DEFECTS, "paged_decode", ("leaves out the bytes", "memory"))
    marked = bounds_fidelity.evaluate(tmp_path / "dev", stand_ins=tmp_path / "stand-ins")["workloads"]
    assert [w["known_defect"] for w in marked] == [w["bound_by"] == "memory" for w in marked]
