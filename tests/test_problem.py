"""Loading and validating problem directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import RMSNORM, add_definition, add_workload, dev_problems, needs_dev, write_problem

from solgym.problem import ProblemError, check_grammar, evaluate, load_problem


def test_shipped_rmsnorm_loads_with_provenance():
    problem = load_problem(RMSNORM)
    assert problem.name == "rmsnorm_llama3_8b"
    assert problem.definition.extra["provenance"]["model"] == "meta-llama/Llama-3.1-8B"
    assert [problem.axes(w)["num_tokens"] for w in problem.workloads] == [1, 7, 128, 1000, 4096, 16384]
    assert problem.shape("output", problem.workloads[2]) == (128, 4096)


def test_expr_axes_resolve_in_any_order(tmp_path):
    definition = add_definition(
        axes={
            "rows": {"type": "var"},
            "cols": {"type": "expr", "expression": "half * 2"},
            "half": {"type": "expr", "expression": "rows // 2 + 1"},
        }
    )
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload(6)]))
    assert problem.axes(problem.workloads[0]) == {"rows": 6, "cols": 8, "half": 4}


def test_unknown_fields_are_kept(tmp_path):
    definition = add_definition(hf_id="org/model", my_field={"a": 1})
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload(extra_note="kept")]))
    assert problem.definition.extra == {"hf_id": "org/model", "my_field": {"a": 1}}
    assert problem.workloads[0].extra == {"extra_note": "kept"}


def test_tolerance_read_in_both_spellings_and_defaulted(tmp_path):
    workloads = [
        add_workload(uuid="a", tolerance={"max_atol": 0.1, "max_rtol": 0.2, "required_matched_ratio": 0.9}),
        add_workload(uuid="b", tolerance={"required_match_ratio": 0.95, "allow_negative_inf": True}),
        add_workload(uuid="c"),
    ]
    problem = load_problem(write_problem(tmp_path / "p", add_definition(), workloads))
    a, b, c = (w.tolerance for w in problem.workloads)
    assert (a.atol, a.rtol, a.matched_ratio, a.is_default) == (0.1, 0.2, 0.9, False)
    assert (b.matched_ratio, b.allow_negative_inf) == (0.95, True)
    assert (c.atol, c.rtol, c.matched_ratio, c.is_default) == (1e-2, 1e-2, 0.99, True)


def test_an_output_may_have_its_own_tolerance_inheriting_the_rest(tmp_path):
    tolerance = {"max_atol": 0.01, "max_rtol": 0.02, "outputs": {"out": {"max_atol": 0.5}}}
    problem = load_problem(
        write_problem(tmp_path / "p", add_definition(), [add_workload(tolerance=tolerance)])
    )
    t = problem.workloads[0].tolerance
    own = t.for_output("out")
    assert (own.atol, own.rtol, own.matched_ratio) == (0.5, 0.02, 0.99)
    assert t.for_output("another") is t
    bad = {"max_atol": 0.01, "outputs": {"outt": {"max_atol": 0.5}}}
    with pytest.raises(ProblemError) as err:
        load_problem(write_problem(tmp_path / "q", add_definition(), [add_workload(tolerance=bad)]))
    assert "tolerance.outputs" in str(err.value) and "outt" in str(err.value)
    with pytest.raises(ProblemError, match="must be a non-negative number"):
        load_problem(
            write_problem(
                tmp_path / "r",
                add_definition(),
                [add_workload(tolerance={"outputs": {"out": {"max_rtol": -1}}})],
            )
        )


@pytest.mark.parametrize(
    ("mutate", "where", "message"),
    [
        (lambda d: d["inputs"]["x"].update(dtype="float33"), "inputs.x.dtype", "unsupported dtype 'float33'"),
        (lambda d: d["inputs"]["x"].update(shape=["rows", "colz"]), "inputs.x.shape", "unknown axis 'colz'"),
        (
            lambda d: d["inputs"]["x"].update(shape=["rows", "cols * 2"]),
            "inputs.x.shape",
            """unknown axis 'cols * 2'; axes are rows, cols (a size computed from others is an axis of its own: {"type": "expr", "expression": "cols * 2"})""",
        ),
        (lambda d: d.pop("reference"), "reference", "required field is missing"),
        (
            lambda d: d.update(reference="def forward(x, y, alpha):\n    return x"),
            "reference",
            "found forward",
        ),
        (lambda d: d.update(reference="def run(x, y):\n    return x"), "reference", "run takes 2 parameters"),
        (
            lambda d: d.update(reference="def run(x, alpha, y):\n    return x"),
            "reference",
            "parameter 2 is 'alpha'",
        ),
        (
            lambda d: d.update(reference="def run(x, y, alpha):\n  return (x"),
            "reference",
            "syntax error at line 2",
        ),
        (
            lambda d: d["axes"].update(cols={"type": "expr", "expression": "rows ** "}),
            "axes.cols",
            "not a valid expression",
        ),
        (
            lambda d: d["axes"].update(cols={"type": "expr", "expression": "depth * 2"}),
            "axes.cols",
            "unknown axis",
        ),
        (
            lambda d: d["axes"].update(cols={"type": "expr", "expression": "__import__('os')"}),
            "axes.cols",
            "is not allowed",
        ),
        (
            lambda d: d["axes"].update(cols={"type": "fixed", "value": 8}),
            "axes.cols",
            "unknown axis type 'fixed'",
        ),
        (
            lambda d: d.update(custom_inputs_entrypoint="make"),
            "custom_inputs_entrypoint",
            "no function 'make'",
        ),
        (lambda d: d.update(outputs={}), "outputs", "at least one output"),
    ],
)
def test_malformed_definition_names_file_field_and_problem(tmp_path, mutate, where, message):
    definition = add_definition()
    mutate(definition)
    folder = write_problem(tmp_path / "p", definition, [add_workload()])
    with pytest.raises(ProblemError) as info:
        load_problem(folder)
    assert info.value.where == where
    assert message in info.value.message
    assert str(folder / "definition.json") in str(info.value)


@pytest.mark.parametrize(
    ("workload", "where", "message"),
    [
        (add_workload(axes={}), "line 1.axes", "no value for var axes rows"),
        (add_workload(axes={"rows": 2, "depth": 3}), "line 1.axes.depth", "unknown axis"),
        (add_workload(axes={"rows": 2, "cols": 9}), "line 1.axes.cols", "const axis is 8"),
        (add_workload(axes={"rows": -1}), "line 1.axes.rows", "non-negative integer"),
        (
            add_workload(inputs={"x": {"type": "random"}, "y": {"type": "random"}}),
            "line 1.inputs.alpha",
            "no source",
        ),
        (
            add_workload(
                inputs={"x": {"type": "random"}, "y": {"type": "random"}, "alpha": {"type": "random"}}
            ),
            "line 1.inputs.alpha",
            "cannot be random",
        ),
        (
            add_workload(
                inputs={
                    "x": {"type": "custom"},
                    "y": {"type": "random"},
                    "alpha": {"type": "scalar", "value": 1},
                }
            ),
            "line 1.inputs.x",
            "no custom_inputs_entrypoint",
        ),
        (add_workload(tolerance={"max_atol": "small"}), "line 1.tolerance.max_atol", "non-negative number"),
        (
            add_workload(tolerance={"required_matched_ratio": 2}),
            "line 1.tolerance.required_matched_ratio",
            "between 0 and 1",
        ),
    ],
)
def test_malformed_workload_names_line_and_field(tmp_path, workload, where, message):
    folder = write_problem(tmp_path / "p", add_definition(), [workload])
    with pytest.raises(ProblemError) as info:
        load_problem(folder)
    assert (info.value.where, message in info.value.message) == (where, True)
    assert str(folder / "workload.jsonl") in str(info.value)


def test_bad_json_reports_line_and_column(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "definition.json").write_text('{"name": "x",\n  "axes": {,}}')
    with pytest.raises(ProblemError) as info:
        load_problem(folder)
    assert info.value.where == "line 2 column 12"
    assert "invalid JSON" in info.value.message


def test_bad_json_in_workloads_reports_line(tmp_path):
    folder = write_problem(tmp_path / "p", add_definition(), [add_workload()])
    (folder / "workload.jsonl").write_text(json.dumps(add_workload()) + "\n{broken\n")
    with pytest.raises(ProblemError, match="line 2: invalid JSON"):
        load_problem(folder)


def test_duplicate_workload_uuid_is_rejected(tmp_path):
    folder = write_problem(
        tmp_path / "p", add_definition(), [add_workload(uuid="same"), add_workload(uuid="same")]
    )
    with pytest.raises(ProblemError, match="duplicate workload uuid 'same'"):
        load_problem(folder)


def test_constraint_violation_names_the_constraint(tmp_path):
    definition = add_definition(constraints=["rows % 2 == 0"])
    folder = write_problem(
        tmp_path / "p", definition, [add_workload(rows=4, uuid="even"), add_workload(rows=3, uuid="odd")]
    )
    with pytest.raises(ProblemError) as info:
        load_problem(folder)
    assert info.value.where == "line 2.axes"
    assert "rows % 2 == 0" in info.value.message


def test_missing_directory_and_files_are_explained(tmp_path):
    with pytest.raises(ProblemError, match="not a problem directory"):
        load_problem(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProblemError, match="no definition.json"):
        load_problem(tmp_path / "empty")


def test_expression_grammar_refuses_code():
    assert evaluate("a * 2 + max(b, 3) // 2", {"a": 3, "b": 8}) == 10
    assert evaluate("a == b + 1 and a > 0", {"a": 3, "b": 2}) is True
    with pytest.raises(ValueError):
        evaluate("a.__class__", {"a": 1})
    with pytest.raises(ValueError):
        evaluate("2 ** 1000", {})
    with pytest.raises(NameError):
        evaluate("c + 1", {"a": 1})


def test_constraints_may_ask_of_an_inputs_data_what_flashinfer_trace_definitions_ask():
    names = {"n": 7, "kv_indptr": torch.tensor([0, 3, 7]), "idx": torch.zeros(5, 2), "b": 3}
    assert evaluate("n == kv_indptr[-1].item()", names) is True
    assert evaluate("idx.shape[0] == 5 and idx.shape[-1] == 2 and idx.numel() == 10", names) is True
    assert evaluate("len(kv_indptr) == b and kv_indptr.size(0) == b", names) is True
    with pytest.raises(TypeError):
        evaluate("b[0] == 1", names)  # an axis is a number: no data to index
    for code in ("kv_indptr[-1] + __import__('os')", "kv_indptr[0:2] == 1", "kv_indptr.tolist()", "n.real"):
        with pytest.raises(ValueError, match="not allowed"):
            check_grammar(code)


def test_a_constraint_outside_the_grammar_anywhere_in_it_is_refused_at_load(tmp_path):
    definition = add_definition(constraints=["rows == ids[-1].item() + exec('1')"])
    with pytest.raises(ProblemError, match=r"constraints\[0\].*not allowed"):
        load_problem(write_problem(tmp_path / "p", definition, [add_workload(4)]))


def test_workload_lookup_by_uuid_prefix_and_index():
    problem = load_problem(RMSNORM)
    assert problem.workload("c2a9").axes == {"num_tokens": 128}
    assert problem.workload(0).axes == {"num_tokens": 1}
    with pytest.raises(KeyError):
        problem.workload("zzz")


@needs_dev
@pytest.mark.parametrize("folder", dev_problems(), ids=lambda p: p.name)
def test_every_dev_problem_loads_unchanged(folder: Path):
    problem = load_problem(folder)
    raw = json.loads((folder / "definition.json").read_text())
    assert problem.name == raw["name"]
    assert list(problem.definition.inputs) == list(raw["inputs"])
    lines = [line for line in (folder / "workload.jsonl").read_text().splitlines() if line.strip()]
    assert len(problem.workloads) == len(lines)
    for workload in problem.workloads:
        axes = problem.axes(workload)
        assert all(isinstance(v, int) for v in axes.values())
