"""Importing the SOL-ExecBench parquet export into problem directories."""

from __future__ import annotations

import json

import pytest
from conftest import ADD_REFERENCE, add_workload

from solgym.cli import main
from solgym.dataset import import_parquet
from solgym.problem import ProblemError, load_problem

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _row(name: str, **overrides) -> dict:
    row = {
        "name": name,
        "hf_id": "org/model",
        "description": "x + alpha * y",
        "axes": json.dumps({"rows": {"type": "var"}, "cols": {"type": "const", "value": 8}}),
        "custom_inputs_entrypoint": None,
        "inputs": json.dumps(
            {
                "x": {"shape": ["rows", "cols"], "dtype": "float32"},
                "y": {"shape": ["rows", "cols"], "dtype": "float32"},
                "alpha": {"shape": None, "dtype": "float32"},
            }
        ),
        "outputs": json.dumps({"out": {"shape": ["rows", "cols"], "dtype": "float32"}}),
        "reference": ADD_REFERENCE,
        "workloads": json.dumps([add_workload(2, "a"), add_workload(5, "b")]),
    }
    row.update(overrides)
    return row


def _write(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_rows_become_loadable_problem_directories(tmp_path):
    parquet = _write(tmp_path / "export.parquet", [_row("p_one"), _row("p_two")])
    written = import_parquet(parquet, tmp_path / "out")
    assert [p.name for p in written] == ["p_one", "p_two"]
    problem = load_problem(tmp_path / "out" / "p_two")
    assert problem.definition.extra["hf_id"] == "org/model"
    assert [w.uuid for w in problem.workloads] == ["a", "b"]


def test_a_bad_row_writes_nothing_and_names_row_and_column(tmp_path):
    parquet = _write(tmp_path / "export.parquet", [_row("good"), _row("bad", axes="{not json")])
    with pytest.raises(ProblemError) as info:
        import_parquet(parquet, tmp_path / "out")
    assert "row 1" in str(info.value) and info.value.where == "axes"
    assert not (tmp_path / "out").exists()


def test_existing_directories_need_overwrite(tmp_path, capsys):
    parquet = _write(tmp_path / "export.parquet", [_row("p_one")])
    assert main(["import", str(parquet), str(tmp_path / "out")]) == 0
    assert main(["import", str(parquet), str(tmp_path / "out")]) == 2
    assert "already holds p_one" in capsys.readouterr().err
    assert main(["import", str(parquet), str(tmp_path / "out"), "--overwrite", "--json"]) == 0


def test_workloads_given_as_json_lines_are_accepted(tmp_path):
    lines = "\n".join(json.dumps(w) for w in [add_workload(2, "a"), add_workload(3, "b")])
    parquet = _write(tmp_path / "export.parquet", [_row("p_lines", workloads=lines)])
    import_parquet(parquet, tmp_path / "out")
    assert len(load_problem(tmp_path / "out" / "p_lines").workloads) == 2


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["import", str(tmp_path / "none.parquet"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
